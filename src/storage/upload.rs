//! A local file uploaded as one multipart upload, visible only once complete.
//!
//! Contract: [`Client::upload`] begins a multipart upload, sends the file in parts of the
//! configured size (a few at once), and completes it; on any failure of a part, of the local
//! file, or of completion, and when `interrupted` is set, it aborts the upload before
//! returning, so the store never shows a partial object and an existing object at the key stays
//! as it was. The upload is driven directly through `MultipartUpload` ([`Parts::send`])
//! because `WriteMultipart::finish` in object_store 0.13 does not abort when a part fails.
//! [`Client::check_writable`] begins an upload and aborts it at once: the store's answer to
//! "may these credentials write this key" without writing anything.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use object_store::{MultipartUpload, ObjectStoreExt, PutPayload, UploadPart};

use super::{Client, Fault, ObjectUrl, StorageError};

/// What an interrupted upload was doing, and what became of it.
const UPLOADING: &str = "uploading (the upload is aborted: nothing is written there)";

/// Parts in flight at once.
const PARTS_AT_ONCE: usize = 4;

/// How often a wait for a part looks at the interruption flag.
const INTERRUPT_CHECK: Duration = Duration::from_millis(50);

impl Client {
    /// Checks the credentials may write the object, by beginning an upload and aborting it.
    pub async fn check_writable(&self) -> Result<(), StorageError> {
        let doing = "checking the object can be written";
        let refused = || StorageError::from_store(&self.url, doing, Fault::Usage);
        let mut upload = self
            .store
            .put_multipart(self.url.key())
            .await
            .map_err(refused())?;
        upload.abort().await.map_err(refused())
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
        let upload =
            self.store
                .put_multipart(url.key())
                .await
                .map_err(StorageError::from_store(
                    url,
                    "beginning the upload",
                    Fault::Usage,
                ))?;
        let parts = Parts {
            url,
            part_size: self.part_size,
            interrupted,
        };
        parts.send(upload, file, from).await
    }
}

/// One upload's parts: where they go, their size, and the flag that stops them.
struct Parts<'a> {
    url: &'a ObjectUrl,
    part_size: usize,
    interrupted: &'a AtomicBool,
}

impl Parts<'_> {
    /// Sends `file` through `upload` and completes it, or aborts it on any failure.
    async fn send(
        &self,
        mut upload: Box<dyn MultipartUpload>,
        file: std::fs::File,
        from: &Path,
    ) -> Result<u64, StorageError> {
        let url = self.url;
        let sent = match self.send_parts(upload.as_mut(), file, from).await {
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
    /// or when interrupted.
    async fn send_parts(
        &self,
        upload: &mut dyn MultipartUpload,
        mut file: std::fs::File,
        from: &Path,
    ) -> Result<u64, StorageError> {
        let mut in_flight = FuturesUnordered::new();
        let mut sent = 0u64;
        loop {
            self.check_interrupted()?;
            let part =
                read_part(&mut file, self.part_size).map_err(|source| StorageError::Local {
                    url: self.url.to_string(),
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
                self.next_part(&mut in_flight).await?;
            }
            if last {
                break;
            }
        }
        while !in_flight.is_empty() {
            self.next_part(&mut in_flight).await?;
        }
        self.check_interrupted()?;
        Ok(sent)
    }

    /// Waits for one of the parts in flight to be sent, watching the flag meanwhile.
    async fn next_part(
        &self,
        in_flight: &mut FuturesUnordered<UploadPart>,
    ) -> Result<(), StorageError> {
        loop {
            tokio::select! {
                done = in_flight.next() => {
                    let done = done.expect("a part in flight");
                    return done.map_err(StorageError::from_store(self.url, "uploading a part", Fault::Usage));
                }
                () = tokio::time::sleep(INTERRUPT_CHECK) => self.check_interrupted()?,
            }
        }
    }

    fn check_interrupted(&self) -> Result<(), StorageError> {
        match self.interrupted.load(Ordering::Relaxed) {
            true => Err(StorageError::Interrupted {
                url: self.url.to_string(),
                doing: UPLOADING,
            }),
            false => Ok(()),
        }
    }
}

/// The next `size` bytes of `file` (fewer only at its end).
fn read_part(file: &mut std::fs::File, size: usize) -> std::io::Result<Vec<u8>> {
    let mut part = Vec::with_capacity(size);
    file.by_ref().take(size as u64).read_to_end(&mut part)?;
    Ok(part)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use object_store::PutResult;

    use super::*;
    use crate::storage::Location;

    /// What a test upload was asked to do.
    #[derive(Debug, Default)]
    struct Calls {
        parts: Vec<usize>,
        completed: bool,
        aborted: bool,
    }

    /// A multipart upload whose part number `fail_at` (from 1) fails.
    #[derive(Debug)]
    struct TestUpload {
        calls: Arc<Mutex<Calls>>,
        fail_at: Option<usize>,
    }

    #[async_trait::async_trait]
    impl MultipartUpload for TestUpload {
        fn put_part(&mut self, data: PutPayload) -> UploadPart {
            let mut calls = self.calls.lock().unwrap();
            calls.parts.push(data.content_length());
            let fail = Some(calls.parts.len()) == self.fail_at;
            Box::pin(async move {
                match fail {
                    true => Err(object_store::Error::Generic {
                        store: "test",
                        source: "the store refused the part".into(),
                    }),
                    false => Ok(()),
                }
            })
        }

        async fn complete(&mut self) -> object_store::Result<PutResult> {
            self.calls.lock().unwrap().completed = true;
            Ok(PutResult {
                e_tag: None,
                version: None,
            })
        }

        async fn abort(&mut self) -> object_store::Result<()> {
            self.calls.lock().unwrap().aborted = true;
            Ok(())
        }
    }

    /// Sends a file of `bytes` in parts of 10 bytes through a test upload.
    async fn send(
        bytes: usize,
        fail_at: Option<usize>,
        interrupted: bool,
    ) -> (Result<u64, StorageError>, Calls) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.parquet");
        std::fs::write(&path, vec![7u8; bytes]).unwrap();
        let Location::Remote(url) = Location::parse("s3://bucket/out.parquet").unwrap() else {
            unreachable!()
        };
        let calls = Arc::new(Mutex::new(Calls::default()));
        let upload = Box::new(TestUpload {
            calls: calls.clone(),
            fail_at,
        });
        let flag = AtomicBool::new(interrupted);
        let parts = Parts {
            url: &url,
            part_size: 10,
            interrupted: &flag,
        };
        let file = std::fs::File::open(&path).unwrap();
        let result = parts.send(upload, file, &path).await;
        let calls = std::mem::take(&mut *calls.lock().unwrap());
        (result, calls)
    }

    #[tokio::test]
    async fn every_part_is_sent_then_the_upload_completed() {
        for (bytes, parts) in [
            (95, vec![10; 9].into_iter().chain([5]).collect::<Vec<_>>()),
            (30, vec![10, 10, 10]),
            (0, vec![0]),
        ] {
            let (result, calls) = send(bytes, None, false).await;
            assert_eq!(result.unwrap(), bytes as u64);
            assert_eq!(calls.parts, parts, "{bytes} bytes");
            assert!(calls.completed && !calls.aborted);
        }
    }

    #[tokio::test]
    async fn a_failed_part_or_a_signal_aborts_the_upload_and_never_completes_it() {
        for fail_at in [1, 3, 10] {
            let (result, calls) = send(95, Some(fail_at), false).await;
            let err = result.unwrap_err();
            assert!(
                matches!(
                    err,
                    StorageError::Transfer {
                        doing: "uploading a part",
                        ..
                    }
                ),
                "{err}"
            );
            assert!(
                err.to_string().starts_with("s3://bucket/out.parquet: "),
                "{err}"
            );
            assert!(
                calls.aborted && !calls.completed,
                "part {fail_at}: {calls:?}"
            );
        }
        let (result, calls) = send(95, None, true).await;
        assert_eq!(result.unwrap_err().fault(), Fault::Interrupted);
        assert!(calls.aborted && !calls.completed && calls.parts.is_empty());
    }
}
