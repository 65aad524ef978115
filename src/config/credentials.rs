//! Where the provider's logins and passwords come from.
//!
//! Contract: from `SMSC_LOGIN` and `SMSC_PASSWORD` or `provider.password_file` (one account),
//! or from an accounts file (`SMSC_ACCOUNTS_FILE` or `provider.accounts_file`: several), never
//! from the job file or argv; the sandbox falls back to its own. A password or accounts file
//! group or others may access is refused, and so is an accounts file beside `SMSC_LOGIN` (which
//! accounts a run uses is never a guess). [`Credentials`] never prints its password, and no
//! message quotes a line of an accounts file.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{ProviderConfig, ProviderKind};

/// Login and password for the provider. `Debug` never shows the password.
#[derive(Clone)]
pub struct Credentials {
    /// The provider's `login` parameter.
    pub login: String,
    /// The provider's `psw` parameter; a secret.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("login", &self.login)
            .field("password", &"***")
            .finish()
    }
}

/// The environment variable naming an accounts file; it wins over `provider.accounts_file`.
pub const ACCOUNTS_FILE_ENV: &str = "SMSC_ACCOUNTS_FILE";

/// The text of the secret file `path`, set by `key`, which group and others may not access, as
/// ssh refuses such a key.
fn read_secret_file(path: &Path, key: &str) -> Result<String> {
    let reading = || format!("reading {key} {}", path.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(reading)?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "{key} {} is open to group or others (mode {:03o}): run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
    std::fs::read_to_string(path).with_context(reading)
}

/// The password in `path` (`provider.password_file`), without its line end.
fn read_password_file(path: &Path) -> Result<String> {
    let text = read_secret_file(path, "provider.password_file")?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// The accounts of an accounts file: a `login:password` a line (the first `:` splits, the
/// login is trimmed, the password taken as written), `#` comments and blank lines skipped.
/// Errors name the line, never its text.
fn parse_accounts(text: &str) -> Result<Vec<Credentials>> {
    let mut accounts: Vec<Credentials> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        let n = i + 1;
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((login, password)) = line.split_once(':') else {
            bail!("line {n}: write `login:password` (no `:` found)");
        };
        let login = login.trim();
        if login.is_empty() {
            bail!("line {n}: no login before the `:`");
        }
        if password.is_empty() {
            bail!("line {n}: the login `{login}` has no password");
        }
        if accounts.iter().any(|a| a.login == login) {
            bail!("line {n}: the login `{login}` is listed twice");
        }
        accounts.push(Credentials {
            login: login.to_string(),
            password: password.to_string(),
        });
    }
    if accounts.is_empty() {
        bail!("no account in it: write one `login:password` a line");
    }
    Ok(accounts)
}

impl ProviderConfig {
    /// Every account a run sends through: an accounts file's (`SMSC_ACCOUNTS_FILE`, else
    /// `provider.accounts_file`), or the one of `SMSC_LOGIN` and `SMSC_PASSWORD` (or the password
    /// file).
    pub fn accounts(&self) -> Result<Vec<Credentials>> {
        let Some((path, key)) = self.accounts_file() else {
            return Ok(vec![self.credentials()?]);
        };
        if std::env::var_os("SMSC_LOGIN").is_some_and(|l| !l.is_empty()) {
            bail!("{key} and SMSC_LOGIN are both set: give the accounts in one place");
        }
        let text = read_secret_file(&path, key)?;
        parse_accounts(&text).with_context(|| format!("{key} {}", path.display()))
    }

    /// How many accounts a run uses: the accounts file's (read and checked as a run reads
    /// it), else one, which needs no credential to count.
    pub fn account_count(&self) -> Result<usize> {
        match self.accounts_file() {
            Some(_) => Ok(self.accounts()?.len()),
            None => Ok(1),
        }
    }

    /// The accounts file, if one is set, and the setting that names it.
    fn accounts_file(&self) -> Option<(PathBuf, &'static str)> {
        let from_env = std::env::var_os(ACCOUNTS_FILE_ENV).filter(|p| !p.is_empty());
        match (from_env, &self.accounts_file) {
            (Some(path), _) => Some((PathBuf::from(path), ACCOUNTS_FILE_ENV)),
            (None, Some(path)) => Some((path.clone(), "provider.accounts_file")),
            (None, None) => None,
        }
    }

    /// Credentials from `SMSC_LOGIN` and `SMSC_PASSWORD` or `provider.password_file`. For the
    /// sandbox, missing credentials fall back to the sandbox's own.
    fn credentials(&self) -> Result<Credentials> {
        let login = std::env::var("SMSC_LOGIN").ok().filter(|s| !s.is_empty());
        let password = match std::env::var("SMSC_PASSWORD")
            .ok()
            .filter(|s| !s.is_empty())
        {
            Some(p) => Some(p),
            None => match &self.password_file {
                Some(path) => Some(read_password_file(path)?),
                None => None,
            },
        };
        match (self.kind, login, password) {
            (_, Some(login), Some(password)) => Ok(Credentials { login, password }),
            (ProviderKind::Sandbox, login, password) => Ok(Credentials {
                login: login.unwrap_or_else(|| self.sandbox.login.clone()),
                password: password.unwrap_or_else(|| self.sandbox.password.clone()),
            }),
            (ProviderKind::Smsc, None, _) => {
                bail!("SMSC_LOGIN is not set: provider `smsc` needs a login in the environment")
            }
            (ProviderKind::Smsc, _, None) => {
                bail!(
                    "no password: set SMSC_PASSWORD or provider.password_file for provider `smsc`"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_password_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("smsc.password");
        std::fs::write(&path, "secret\n").unwrap();
        let set_mode =
            |mode| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        set_mode(0o600);
        assert_eq!(read_password_file(&path).unwrap(), "secret");
        for mode in [0o644, 0o640, 0o604] {
            set_mode(mode);
            let err = format!("{:#}", read_password_file(&path).unwrap_err());
            assert!(
                err.contains("chmod 600") && !err.contains("secret"),
                "{mode:o}: {err}"
            );
        }
    }

    #[test]
    fn accounts_files_are_read_line_by_line_and_never_quoted() {
        /// The accounts read, or what the error says.
        type Read<'a> = Result<&'a [(&'a str, &'a str)], &'a str>;
        let cases: &[(&str, Read)] = &[
            (
                "# ours\nacme:s3cret\n\n  bob : pa:ss \r\n",
                Ok(&[("acme", "s3cret"), ("bob", " pa:ss ")]),
            ),
            ("acme:one", Ok(&[("acme", "one")])),
            ("", Err("no account")),
            ("# only a comment\n", Err("no account")),
            ("acme:one\nhunter2\n", Err("line 2: write `login:password`")),
            (":hunter2", Err("line 1: no login")),
            ("acme:", Err("line 1: the login `acme` has no password")),
            (
                "acme:one\nacme:hunter2",
                Err("line 2: the login `acme` is listed twice"),
            ),
        ];
        for (text, want) in cases {
            let got = parse_accounts(text)
                .map(|a| {
                    a.iter()
                        .map(|c| (c.login.clone(), c.password.clone()))
                        .collect::<Vec<_>>()
                })
                .map_err(|e| e.to_string());
            match (want, got) {
                (Ok(want), Ok(got)) => {
                    let want: Vec<(String, String)> = want
                        .iter()
                        .map(|(l, p)| (l.to_string(), p.to_string()))
                        .collect();
                    assert_eq!(got, want, "{text:?}");
                }
                (Err(want), Err(got)) => {
                    assert!(got.contains(want), "{text:?}: {got}");
                    assert!(!got.contains("hunter2"), "{text:?} quoted: {got}");
                }
                (want, got) => panic!("{text:?}: wanted {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn credentials_debug_hides_the_password() {
        let c = Credentials {
            login: "l".into(),
            password: "secret".into(),
        };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
