//! Where a file is: a local path, or an object named by an object-store URL.
//!
//! Contract: [`Location::parse`] reads any text a user gives for a file (a job file's
//! `input.path` or `output.path`, `--input`, `--output`, a `cache export`/`import` argument).
//! Text without `scheme://` is a local path; `file://` is one too; `s3://` (`s3a://`), `gs://`,
//! `az://`, `abfs://` (`abfss://`) name an object; any other scheme is refused naming it, so an
//! object URL never becomes a local path. A URL carrying a user, a password or a query (an
//! Azure SAS token, say) is refused: credentials come from the environment, never from a URL.

use std::fmt;
use std::path::{Path, PathBuf};

use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreScheme;
use reqwest::Url;

use super::StorageError;

/// A file as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local path (relative paths are the caller's to resolve).
    Local(PathBuf),
    /// An object in an object store.
    Remote(ObjectUrl),
}

/// Which object store a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Amazon S3 and S3-compatible stores (`s3://bucket/key`).
    S3,
    /// Google Cloud Storage (`gs://bucket/key`).
    Gcs,
    /// Azure Blob Storage (`az://container/key`, `abfs://container@account.dfs.../key`).
    Azure,
}

/// An object's URL, checked: a supported scheme, a bucket and a key `object_store` accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUrl {
    url: Url,
    provider: Provider,
    key: ObjectPath,
}

/// The schemes read, lower-case.
const KNOWN: [&str; 7] = ["s3", "s3a", "gs", "az", "abfs", "abfss", "file"];

/// The schemes a location may have, for messages.
pub const SCHEMES: &str = "s3://, gs://, az://, abfs:// or file://";

impl Location {
    /// Reads `text` as a URL when it starts with `scheme://`, else as a local path.
    pub fn parse(text: &str) -> Result<Location, StorageError> {
        let Some(scheme) = url_scheme(text) else {
            if let Some((scheme, _)) = text.split_once(':').filter(|(s, _)| KNOWN.contains(s)) {
                return Err(bad_url(
                    text,
                    format!("looks like a URL without its `//`: write {scheme}://bucket/key (a local path cannot start with `{scheme}:`)"),
                ));
            }
            return Ok(Location::Local(PathBuf::from(text)));
        };
        let url = Url::parse(text).map_err(|e| bad_url(text, format!("not a URL ({e})")))?;
        if url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
            return Err(bad_url(&redacted(&url), "a URL must not carry a password, a query or a fragment (such as a SAS token); credentials come from the environment".into()));
        }
        let provider = match scheme.as_str() {
            "file" => {
                let path = url.to_file_path().map_err(|()| {
                    bad_url(
                        text,
                        "a file:// URL must name an absolute local path".into(),
                    )
                })?;
                return Ok(Location::Local(path));
            }
            "s3" | "s3a" => Provider::S3,
            "gs" => Provider::Gcs,
            "az" | "abfs" | "abfss" => Provider::Azure,
            _ => {
                return Err(StorageError::Scheme {
                    url: text.to_string(),
                    scheme,
                })
            }
        };
        if !url.username().is_empty() && provider != Provider::Azure {
            return Err(bad_url(
                &redacted(&url),
                "a URL must not carry a user name; credentials come from the environment".into(),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad_url(
                text,
                "no bucket or container after the scheme".into(),
            ));
        }
        // The key as written: `Url` would resolve `.` and `..` segments away.
        let after_scheme = &text[scheme.len() + 3..];
        let raw = after_scheme.split_once('/').map_or("", |(_, key)| key);
        if raw.is_empty() || raw.ends_with('/') {
            return Err(bad_url(
                text,
                "names a bucket or a folder, not an object".into(),
            ));
        }
        ObjectPath::parse(raw)
            .map_err(|e| bad_url(text, format!("not a valid object key ({e})")))?;
        let (_, key) = ObjectStoreScheme::parse(&url)
            .map_err(|e| bad_url(text, format!("not an object URL ({e})")))?;
        Ok(Location::Remote(ObjectUrl { url, provider, key }))
    }

    /// The local path, if this is one.
    pub fn local(&self) -> Option<&Path> {
        match self {
            Location::Local(path) => Some(path),
            Location::Remote(_) => None,
        }
    }
}

/// A refusal of the URL `url`.
fn bad_url(url: &str, why: String) -> StorageError {
    StorageError::Url {
        url: url.to_string(),
        why,
    }
}

/// `url` without its user, password, query and fragment, for a message.
fn redacted(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_password(None);
    let _ = url.set_username("");
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// The scheme of `text` when it starts with `scheme://` (lower-cased), else `None`.
fn url_scheme(text: &str) -> Option<String> {
    let (scheme, _) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

impl ObjectUrl {
    /// The URL as written.
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The parsed URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Which store the URL names.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The object's key in its bucket or container.
    pub fn key(&self) -> &ObjectPath {
        &self.key
    }

    /// The object's file name (its key's last segment), for a spool file's name.
    pub fn file_name(&self) -> &str {
        self.key.filename().unwrap_or("object")
    }
}

impl fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(text: &str) -> ObjectUrl {
        match Location::parse(text).unwrap() {
            Location::Remote(url) => url,
            Location::Local(p) => panic!("{text} read as the local path {}", p.display()),
        }
    }

    #[test]
    fn object_urls_name_their_store_and_key() {
        let cases = [
            (
                "s3://crm/exports/2026-12-05.csv.gz",
                Provider::S3,
                "exports/2026-12-05.csv.gz",
            ),
            ("S3://crm/o.parquet", Provider::S3, "o.parquet"),
            ("s3a://crm/o.parquet", Provider::S3, "o.parquet"),
            ("gs://crm/a/b.parquet", Provider::Gcs, "a/b.parquet"),
            ("az://container/a/b.parquet", Provider::Azure, "a/b.parquet"),
            (
                "abfs://container@acct.dfs.core.windows.net/a/b.parquet",
                Provider::Azure,
                "a/b.parquet",
            ),
        ];
        for (text, provider, key) in cases {
            let url = remote(text);
            assert_eq!(
                (url.provider(), url.key().as_ref()),
                (provider, key),
                "{text}"
            );
            assert_eq!(url.file_name(), key.rsplit('/').next().unwrap());
        }
    }

    #[test]
    fn paths_and_file_urls_are_local() {
        for (text, path) in [
            ("out.parquet", "out.parquet"),
            ("/data/in.csv", "/data/in.csv"),
            ("dir/with:colon.csv", "dir/with:colon.csv"),
            ("file:///data/in.csv", "/data/in.csv"),
        ] {
            assert_eq!(
                Location::parse(text).unwrap(),
                Location::Local(PathBuf::from(path)),
                "{text}"
            );
        }
    }

    #[test]
    fn unsupported_and_unsafe_urls_are_refused_naming_what_is_wrong() {
        let cases = [
            (
                "http://example.com/o.parquet",
                "unsupported URL scheme `http`",
            ),
            ("hdfs://nn/o.parquet", "unsupported URL scheme `hdfs`"),
            ("memory://x/o.parquet", "unsupported URL scheme `memory`"),
            ("s3://bucket", "not an object"),
            ("s3://bucket/", "not an object"),
            ("s3://bucket/dir/", "not an object"),
            ("s3://bucket/a//b.csv", "not a valid object key"),
            ("s3://bucket/a/../b.csv", "s3://bucket/a/../b.csv"),
            ("s3://key:secret@bucket/o.parquet", "password"),
            ("s3://key@bucket/o.parquet", "user name"),
            ("az://container/o.parquet?sig=abc", "SAS token"),
            ("file://relative/o.parquet", "absolute local path"),
            ("s3:/bucket/o.parquet", "without its `//`"),
        ];
        for (text, want) in cases {
            let err = Location::parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: `{err}` does not say `{want}`");
            assert!(!err.contains("secret") && !err.contains("sig="), "{err}");
            assert!(err.contains("://"), "{text}: `{err}` does not name the URL");
        }
    }
}
