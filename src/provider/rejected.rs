//! Answers the parser rejected, kept for diagnosis, and the password kept out of whatever is
//! shown or written.
//!
//! Contract: [`RejectedBodies::keep`] writes the first [`KEPT`] rejected answers of a run, one
//! file each, under its directory (`STATE/rejected/`): what was asked, the status, the content
//! type, why the parser refused it, then the body's bytes as they came, the password replaced
//! by `***` ([`Redactor`]). Later ones are only counted by the pacer. A file that cannot be
//! written is logged, never a failure of the run.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{ProviderError, RawAnswer};
use crate::normalize::E164;

/// How many rejected answers a run keeps.
pub const KEPT: usize = 5;

/// Replaces the password, as written and as form-encoded, wherever it occurs.
#[derive(Clone)]
pub struct Redactor {
    secrets: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor(***)")
    }
}

impl Redactor {
    /// A redactor of `password` (an empty one redacts nothing).
    pub fn new(password: &str) -> Redactor {
        Redactor::of_all([password])
    }

    /// A redactor of every one of `passwords` (a run's accounts').
    pub fn of_all<'a>(passwords: impl IntoIterator<Item = &'a str>) -> Redactor {
        let mut secrets: Vec<Vec<u8>> = Vec::new();
        for password in passwords {
            let encoded = serde_urlencoded::to_string([("", password)]).unwrap_or_default();
            let encoded = encoded.trim_start_matches('=').to_string();
            secrets.extend([password.as_bytes().to_vec(), encoded.into_bytes()]);
        }
        secrets.retain(|s| !s.is_empty());
        // Longest first, so a password holding another is replaced whole.
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        secrets.dedup();
        Redactor { secrets }
    }

    /// `bytes` with every occurrence of the password replaced by `***`.
    pub fn bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        for secret in &self.secrets {
            let mut redacted = Vec::with_capacity(out.len());
            let mut rest = out.as_slice();
            while let Some(at) = memchr::memmem::find(rest, secret) {
                redacted.extend_from_slice(&rest[..at]);
                redacted.extend_from_slice(b"***");
                rest = &rest[at + secret.len()..];
            }
            redacted.extend_from_slice(rest);
            out = redacted;
        }
        out
    }

    /// `text` with every occurrence of the password replaced by `***`.
    pub fn text(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.bytes(text.as_bytes())).into_owned()
    }
}

/// The first few answers of a run the parser rejected, written under one directory.
#[derive(Debug)]
pub struct RejectedBodies {
    dir: PathBuf,
    redactor: Redactor,
    written: Mutex<Vec<PathBuf>>,
}

impl RejectedBodies {
    /// Keeps rejected answers in `dir` (created on the first), with `redactor` applied.
    pub fn new(dir: &Path, redactor: Redactor) -> RejectedBodies {
        RejectedBodies {
            dir: dir.to_path_buf(),
            redactor,
            written: Mutex::new(Vec::new()),
        }
    }

    /// The files written so far.
    pub fn files(&self) -> Vec<PathBuf> {
        self.written.lock().unwrap().clone()
    }

    /// Writes one rejected answer to a request for `numbers`, unless [`KEPT`] are written.
    pub fn keep(&self, numbers: &[E164], raw: &RawAnswer, error: &ProviderError) {
        let mut written = self.written.lock().unwrap();
        if written.len() >= KEPT {
            return;
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let path = self.dir.join(format!(
            "{stamp}-{}-{}.txt",
            std::process::id(),
            written.len() + 1
        ));
        let asked: Vec<String> = numbers.iter().map(E164::to_string).collect();
        let head = format!(
            "asked: {}\nstatus: {}\ncontent-type: {}\nrejected: {}\n\n",
            asked.join(","),
            raw.status,
            raw.content_type.as_deref().unwrap_or("(none)"),
            self.redactor.text(&error.to_string()),
        );
        let mut bytes = head.into_bytes();
        bytes.extend(self.redactor.bytes(&raw.body));
        let result = std::fs::create_dir_all(&self.dir).and_then(|()| std::fs::write(&path, bytes));
        match result {
            Ok(()) => {
                tracing::warn!(file = %path.display(), error = %error, "an answer the parser rejected is kept for diagnosis");
                written.push(path);
            }
            Err(e) => tracing::warn!(
                "cannot keep a rejected answer in {}: {e}",
                self.dir.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_redacted_as_written_and_as_form_encoded() {
        let r = Redactor::new("p@ss word&1");
        let body = b"login=acme&psw=p%40ss+word%261 ... psw: p@ss word&1.";
        assert_eq!(r.bytes(body), b"login=acme&psw=*** ... psw: ***.".to_vec());
        assert_eq!(Redactor::new("").text("anything"), "anything");
    }

    #[test]
    fn only_the_first_few_are_kept_each_with_what_was_asked() {
        let dir = tempfile::tempdir().unwrap();
        let kept = RejectedBodies::new(&dir.path().join("rejected"), Redactor::new("secret"));
        let raw = RawAnswer {
            status: 200,
            content_type: Some("text/html".into()),
            body: b"<html>psw=secret</html>".to_vec(),
        };
        let error = ProviderError::Malformed("an HTML page".into());
        for _ in 0..KEPT + 2 {
            kept.keep(&[E164(79161234567)], &raw, &error);
        }
        let files = kept.files();
        assert_eq!(files.len(), KEPT);
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(
            text.starts_with("asked: 79161234567\nstatus: 200\n"),
            "{text}"
        );
        assert!(text.ends_with("<html>psw=***</html>"), "{text}");
    }
}
