//! `provider.ca_file`: CA certificates the provider's client trusts besides the system's.
//!
//! Contract: [`CaFile::load`] reads a PEM file of one or more certificates and checks that
//! each one can serve as a trust anchor, exactly as the client will add it, so that a missing,
//! unreadable, empty or damaged file stops the job when it is validated (exit 2), naming the
//! key and the file, rather than at the first request. Nothing else in the file (keys,
//! comments) is read.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The CAs of `provider.ca_file`, read and checked.
#[derive(Clone)]
pub struct CaFile {
    /// The file, resolved against the job file's directory.
    pub path: PathBuf,
    certificates: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for CaFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaFile")
            .field("path", &self.path)
            .field("certificates", &self.certificates.len())
            .finish()
    }
}

impl CaFile {
    /// Reads `path` and checks every certificate in it; the error names the key and the file.
    pub fn load(path: &Path) -> Result<CaFile> {
        let key = "provider.ca_file";
        let shown = path.display();
        let pem = std::fs::read(path).with_context(|| format!("{key}: reading {shown}"))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            anyhow::anyhow!("{key}: {shown} is not a PEM file of certificates ({e})")
        })?;
        if certificates.is_empty() {
            bail!("{key}: {shown} holds no certificate (a PEM `BEGIN CERTIFICATE` block)");
        }
        for (n, certificate) in certificates.iter().enumerate() {
            // The check the client makes when it adds the certificate to its roots, made now
            // on a client with no other roots (so nothing else is loaded).
            reqwest::Client::builder()
                .tls_built_in_root_certs(false)
                .add_root_certificate(certificate.clone())
                .build()
                .map_err(|e| {
                    let e = std::error::Error::source(&e).map_or(e.to_string(), |s| s.to_string());
                    anyhow::anyhow!(
                        "{key}: certificate {} of {shown} cannot be used as a CA ({e})",
                        n + 1
                    )
                })?;
        }
        Ok(CaFile {
            path: path.to_path_buf(),
            certificates,
        })
    }

    /// The certificates, for the client to add to its roots.
    pub fn certificates(&self) -> &[reqwest::Certificate] {
        &self.certificates
    }

    /// How many certificates the file holds.
    pub fn len(&self) -> usize {
        self.certificates.len()
    }

    /// Never true for a loaded file (an empty one is refused); for clippy's sake.
    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &[u8]) -> Result<CaFile> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, text).unwrap();
        CaFile::load(&path)
    }

    #[test]
    fn refuses_a_missing_file_naming_the_key_and_the_file() {
        let e = CaFile::load(Path::new("/nonexistent/ca.pem")).unwrap_err();
        let text = format!("{e:#}");
        assert!(text.contains("provider.ca_file"), "{text}");
        assert!(text.contains("/nonexistent/ca.pem"), "{text}");
    }

    #[test]
    fn refuses_a_file_without_certificates() {
        let texts: [&[u8]; 3] = [
            b"",
            b"not a certificate\n",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ];
        for text in texts {
            let e = format!("{:#}", load(text).unwrap_err());
            assert!(e.contains("provider.ca_file"), "{e}");
            assert!(e.contains("ca.pem"), "{e}");
        }
    }

    #[test]
    fn refuses_a_certificate_block_that_is_no_certificate() {
        let text = b"-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n";
        let e = format!("{:#}", load(text).unwrap_err());
        assert!(e.contains("certificate 1 of"), "{e}");
    }
}
