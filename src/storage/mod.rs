//! Object storage: inputs, outputs and cache exchange files named by `s3://`, `gs://`, `az://`
//! (`abfs://`) URLs, through the `object_store` crate.
//!
//! Contract: [`Location::parse`] tells a local path from an object URL and refuses any scheme
//! the build does not support, naming it. [`Storage`] is the `[storage]` settings and the
//! `--storage-option`s (`object_store`'s configuration keys, the names polars'
//! `storage_options` takes); secrets are refused there, so they come only from the standard
//! environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`) and never reach a job file, a log, a report or
//! an output. [`Storage::client`] makes a client for a URL, refusing at once, before any
//! request, a URL for which no credentials are configured at all (rather than falling back to a
//! cloud's instance metadata, which fails slowly anywhere else). A [`Client`] checks an object
//! can be read ([`Client::check_readable`]) or written ([`Client::check_writable`]: a multipart
//! upload begun and aborted), copies an object to a local spool file ([`Client::fetch`], size
//! checked against free space first, the file removed when the [`Spooled`] is dropped) and
//! uploads a local file as a multipart upload ([`Client::upload`]) that becomes visible only
//! when complete and is aborted on any failure or interruption, so an existing object is
//! untouched until the new one is whole. Every error is a [`StorageError`] naming the URL, with
//! the [`Fault`] that picks the exit code. Nothing here knows jobs; `transfer` uses this for a
//! run, `main` for `cache export`/`import`.
//!
//! The files: `url` the locations, `options` settings and credentials, `spool` the download,
//! `upload` the multipart upload.

mod options;
mod spool;
mod upload;
mod url;

use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;

pub use options::{parse_size, Storage, DEFAULT_PART_SIZE, MIN_PART_SIZE};
pub use spool::{remove_stale_spools, spool_path, Spooled, SPOOL_DIR};
pub use url::{Location, ObjectUrl, Provider, SCHEMES};

/// Which exit a storage failure calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A setting, a URL, credentials or permissions: fix the configuration (exit 2).
    Usage,
    /// The input object is missing (exit 3).
    Input,
    /// The network or the store failed during a transfer (exit 1).
    Internal,
    /// Stopped by a signal (exit 7).
    Interrupted,
}

/// What went wrong with a location or a transfer; every message names the URL or the setting.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A URL whose scheme this build does not read.
    #[error("{url}: unsupported URL scheme `{scheme}`; use {SCHEMES}, or a local path")]
    Scheme {
        /// The URL as given.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// A URL that names no object, or carries what it must not.
    #[error("{url}: {why}")]
    Url {
        /// The URL as given (without any credentials it carried).
        url: String,
        /// Why it is refused.
        why: String,
    },
    /// A `[storage]` setting or `--storage-option` that cannot be used.
    #[error("{key}: {why}")]
    Setting {
        /// Where it was given (`storage.region`, `--storage-option region`).
        key: String,
        /// Why it is refused.
        why: String,
    },
    /// No credentials at all are configured for the URL's store.
    #[error("{url}: no credentials for {store}: {hint}")]
    NoCredentials {
        /// The object.
        url: String,
        /// The store (`S3`).
        store: &'static str,
        /// What to set.
        hint: &'static str,
    },
    /// The store refused the credentials or the action (401, 403).
    #[error(
        "{url}: access denied while {doing}: check the credentials and the bucket's permissions"
    )]
    Denied {
        /// The object.
        url: String,
        /// What was being done.
        doing: &'static str,
        /// The store's answer.
        #[source]
        source: Box<object_store::Error>,
    },
    /// The object, or its bucket, does not exist.
    #[error("{url}: not found while {doing}: {what}")]
    Missing {
        /// The object.
        url: String,
        /// What was being done.
        doing: &'static str,
        /// What is missing.
        what: &'static str,
        /// Input (exit 3) or output (exit 2).
        fault: Fault,
        /// The store's answer.
        #[source]
        source: Box<object_store::Error>,
    },
    /// Any other failure of the store or the network.
    #[error("{url}: {doing} failed")]
    Transfer {
        /// The object.
        url: String,
        /// What was being done.
        doing: &'static str,
        /// The store's answer.
        #[source]
        source: Box<object_store::Error>,
    },
    /// A local file of the transfer (the spool, the file uploaded) failed.
    #[error("{url}: {doing} {}", path.display())]
    Local {
        /// The object.
        url: String,
        /// What was being done to the local file.
        doing: &'static str,
        /// The local file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The spool's volume has too little free space for the object.
    #[error("{url}: the object is {size} bytes but {} has only {free} bytes free; set storage.spool_dir to a larger volume", dir.display())]
    Space {
        /// The object.
        url: String,
        /// Its size.
        size: u64,
        /// The spool directory.
        dir: PathBuf,
        /// Free bytes there.
        free: u64,
    },
    /// A signal arrived during a transfer (an upload is aborted first).
    #[error("{url}: interrupted while {doing}")]
    Interrupted {
        /// The object.
        url: String,
        /// What was being done.
        doing: &'static str,
    },
}

impl StorageError {
    /// Which exit this failure calls for.
    pub fn fault(&self) -> Fault {
        match self {
            StorageError::Scheme { .. }
            | StorageError::Url { .. }
            | StorageError::Setting { .. }
            | StorageError::NoCredentials { .. }
            | StorageError::Denied { .. }
            | StorageError::Space { .. } => Fault::Usage,
            StorageError::Missing { fault, .. } => *fault,
            StorageError::Transfer { .. } | StorageError::Local { .. } => Fault::Internal,
            StorageError::Interrupted { .. } => Fault::Interrupted,
        }
    }

    /// A failure of the store while `doing` something to `url`, classified; a missing object
    /// or bucket is `missing`'s fault.
    fn from_store<'a>(
        url: &'a ObjectUrl,
        doing: &'static str,
        missing: Fault,
    ) -> impl FnOnce(object_store::Error) -> StorageError + 'a {
        move |error| {
            let url = url.to_string();
            let source = Box::new(error);
            match *source {
                object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. } => {
                    StorageError::Denied { url, doing, source }
                }
                object_store::Error::NotFound { .. } => StorageError::Missing {
                    url,
                    doing,
                    what: match missing {
                        Fault::Input => "no such object (or no such bucket)",
                        _ => "no such bucket or container",
                    },
                    fault: missing,
                    source,
                },
                _ => StorageError::Transfer { url, doing, source },
            }
        }
    }
}

/// A client for one object: the store its URL names, made with the job's settings.
#[derive(Clone)]
pub struct Client {
    store: Arc<dyn ObjectStore>,
    url: ObjectUrl,
    part_size: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url.as_str())
            .finish()
    }
}

impl Client {
    /// The object this client reads or writes.
    pub fn url(&self) -> &ObjectUrl {
        &self.url
    }
}
