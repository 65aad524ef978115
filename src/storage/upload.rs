//! A local file uploaded as one multipart upload, visible only once complete.
//!
//! Contract: [`Client::upload`] begins a multipart upload, sends the file in parts of the
//! configured size (a few at once), and completes it; on any failure of a part, of the local
//! file, or of completion, and when `interrupted` is set, it aborts the upload before
//! returning, so the store never shows a partial object and an existing object at the key stays
//! as it was. The upload is driven directly through `MultipartUpload` because
//! `WriteMultipart::finish` in object_store 0.13 does not abort when a part fails.
//! [`Client::check_writable`] begins an upload and aborts it at once: the store's answer to
//! "may these credentials write this key" without writing anything.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use object_store::{MultipartUpload, ObjectStoreExt, PutPayload, UploadPart};

use super::{Client, Fault, StorageError};

/// Parts in flight at once.
const PARTS_AT_ONCE: usize = 4;

impl Client {
    /// Checks the credentials may write the object, by beginning an upload and aborting it.
    pub async fn check_writable(&self) -> Result<(), StorageError> {
        let doing = "checking the object can be written";
        let mut upload = self
            .store
            .put_multipart(self.url.key())
            .await
            .map_err(StorageError::from_store(&self.url, doing, Fault::Usage))?;
        upload
            .abort()
            .await
            .map_err(StorageError::from_store(&self.url, doing, Fault::Usage))
    }

    /// Uploads the local file `from` to the object; returns the bytes sent.
    pub async fn upload(&self, from: &Path, interrupted: &AtomicBool) -> Result<u64, StorageError> {
        let url = &self.url;
        let file = std::fs::File::open(from).map_err(|source| StorageError::Local {
            url: url.to_string(),
            doing: "opening",
            path: from.to_path_buf(),
            source,
        })?;
        tracing::info!(event = "upload", url = %url, file = %from.display(), "uploading the output");
        let mut upload =
            self.store
                .put_multipart(url.key())
                .await
                .map_err(StorageError::from_store(
                    url,
                    "beginning the upload",
                    Fault::Usage,
                ))?;
        let sent = match self
            .send_parts(upload.as_mut(), file, from, interrupted)
            .await
        {
            Ok(sent) => upload
                .complete()
                .await
                .map(|_| sent)
                .map_err(StorageError::from_store(
                    url,
                    "completing the upload",
                    Fault::Usage,
                )),
            Err(e) => Err(e),
        };
        if sent.is_err() {
            match upload.abort().await {
                Ok(()) => tracing::warn!(url = %url, "aborted the upload: nothing was written"),
                Err(e) => {
                    tracing::warn!(url = %url, "aborting the upload failed ({e}); the store keeps its parts until a lifecycle rule removes them, but no object appears")
                }
            }
        }
        sent
    }

    /// Sends the file's parts, at most [`PARTS_AT_ONCE`] in flight; stops at the first failure
    /// or when `interrupted` is set.
    async fn send_parts(
        &self,
        upload: &mut dyn MultipartUpload,
        mut file: std::fs::File,
        from: &Path,
        interrupted: &AtomicBool,
    ) -> Result<u64, StorageError> {
        let url = &self.url;
        let mut in_flight = FuturesUnordered::new();
        let mut sent = 0u64;
        loop {
            if interrupted.load(Ordering::Relaxed) {
                return Err(StorageError::Interrupted {
                    url: url.to_string(),
                    doing: "uploading",
                });
            }
            let part =
                read_part(&mut file, self.part_size).map_err(|source| StorageError::Local {
                    url: url.to_string(),
                    doing: "reading",
                    path: from.to_path_buf(),
                    source,
                })?;
            // An empty file still makes one (empty) part: an upload needs one.
            if part.is_empty() && sent > 0 {
                break;
            }
            let last = part.len() < self.part_size;
            sent += part.len() as u64;
            in_flight.push(upload.put_part(PutPayload::from(part)));
            while in_flight.len() >= PARTS_AT_ONCE {
                self.next_part(&mut in_flight, interrupted).await?;
            }
            if last {
                break;
            }
        }
        while !in_flight.is_empty() {
            self.next_part(&mut in_flight, interrupted).await?;
        }
        if interrupted.load(Ordering::Relaxed) {
            return Err(StorageError::Interrupted {
                url: url.to_string(),
                doing: "uploading",
            });
        }
        Ok(sent)
    }
}

impl Client {
    /// Waits for one of the parts in flight to be sent, watching `interrupted` meanwhile.
    async fn next_part(
        &self,
        in_flight: &mut FuturesUnordered<UploadPart>,
        interrupted: &AtomicBool,
    ) -> Result<(), StorageError> {
        loop {
            tokio::select! {
                done = in_flight.next() => {
                    let done = done.expect("a part in flight");
                    return done.map_err(StorageError::from_store(&self.url, "uploading a part", Fault::Usage));
                }
                () = tokio::time::sleep(INTERRUPT_CHECK) => {
                    if interrupted.load(Ordering::Relaxed) {
                        return Err(StorageError::Interrupted {
                            url: self.url.to_string(),
                            doing: "uploading",
                        });
                    }
                }
            }
        }
    }
}

/// How often a wait for a part looks at the interruption flag.
const INTERRUPT_CHECK: Duration = Duration::from_millis(50);

/// The next `size` bytes of `file` (fewer only at its end).
fn read_part(file: &mut std::fs::File, size: usize) -> std::io::Result<Vec<u8>> {
    let mut part = Vec::with_capacity(size);
    file.by_ref().take(size as u64).read_to_end(&mut part)?;
    Ok(part)
}
