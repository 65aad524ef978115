//! A job's objects: the input object fetched to its spool file before a run reads it, the
//! output uploaded to its object once the run has written it whole.
//!
//! Contract: [`Transfer::check`] makes a client for each object the job names (refusing at
//! once when no credentials are configured) and checks, before anything is read or sent to the
//! provider, that the input object can be read and the output object written; a job of local
//! paths makes no request. [`Transfer::fetch_input`] spools the input object to `input.path`, so
//! the run's passes read a local file as they always do. [`Transfer::publish`] uploads the
//! finished output (`output.path`, a local file in the spool directory) as one multipart upload
//! that appears only when complete and is aborted on any failure or signal. Dropping the
//! transfer removes the spool file and the local output, whatever the outcome.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use crate::config::Job;
use crate::outcome::{ExitKind, JobError};
use crate::storage::{remove_stale_spools, Client, Fault, ObjectUrl, Spooled, StorageError};

/// The clients of a job's objects, and the input's spool file once fetched.
#[derive(Debug)]
pub struct Transfer {
    input: Option<Client>,
    output: Option<Client>,
    spooled: Option<Spooled>,
    /// The local output of a remote output: removed on drop.
    local_output: Option<PathBuf>,
}

impl Transfer {
    /// The clients for `job`'s objects, after checking the input can be read and the output
    /// written (one HEAD request, and one multipart upload begun and aborted).
    pub async fn check(job: &Job) -> Result<Transfer, StorageError> {
        let storage = &job.storage;
        let client = |url: &ObjectUrl| storage.settings.client(url);
        let input = storage.input.as_ref().map(client).transpose()?;
        let output = storage.output.as_ref().map(client).transpose()?;
        if let Some(input) = &input {
            input.check_readable().await?;
        }
        if let Some(output) = &output {
            output.check_writable().await?;
        }
        if input.is_some() || output.is_some() {
            remove_stale_spools(&storage.spool_dir);
        }
        Ok(Transfer {
            input,
            local_output: output.as_ref().map(|_| job.output.path.clone()),
            output,
            spooled: None,
        })
    }

    /// Copies the input object to `input.path` (nothing for a local input); stops when
    /// `interrupted` is set.
    pub async fn fetch_input(
        &mut self,
        job: &Job,
        interrupted: &AtomicBool,
    ) -> Result<(), StorageError> {
        if let Some(input) = &self.input {
            self.spooled = Some(input.fetch(&job.input.path, interrupted).await?);
        }
        Ok(())
    }

    /// The bytes of the input's spool file, when one was fetched.
    pub fn spooled_bytes(&self) -> Option<u64> {
        self.spooled.as_ref().map(Spooled::bytes)
    }

    /// Uploads the written output to its object (nothing for a local output); returns the bytes
    /// sent.
    pub async fn publish(
        &self,
        job: &Job,
        interrupted: &AtomicBool,
    ) -> Result<Option<u64>, StorageError> {
        match &self.output {
            Some(output) => output.upload(&job.output.path, interrupted).await.map(Some),
            None => Ok(None),
        }
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        if let Some(path) = &self.local_output {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A storage failure as a command's failure.
pub fn storage_error(e: StorageError) -> JobError {
    let kind = match e.fault() {
        Fault::Usage => ExitKind::Usage,
        Fault::Input => ExitKind::Input,
        Fault::Internal => ExitKind::Internal,
        Fault::Interrupted => ExitKind::Interrupted,
    };
    JobError::new(kind, e.into())
}

/// An input failure of a job whose input is an object names the object, not only its spool
/// file.
pub fn name_input_object(job: &Job, failure: JobError) -> JobError {
    match (&job.storage.input, failure.kind) {
        (Some(url), ExitKind::Input) => JobError::new(
            failure.kind,
            failure.error.context(format!(
                "input {url} (read from its spool file {})",
                job.input.path.display()
            )),
        ),
        _ => failure,
    }
}
