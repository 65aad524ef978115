//! Where the provider's login and password come from.
//!
//! Contract: from `SMSC_LOGIN` and `SMSC_PASSWORD` or `provider.password_file`, never from the
//! job file or argv; the sandbox falls back to its own. A password file group or others may
//! access is refused. [`Credentials`] never prints its password.

use std::fmt;
use std::path::Path;

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

/// The password in `path`, which group and others may not access, as ssh refuses such a key.
fn read_password_file(path: &Path) -> Result<String> {
    let reading = || format!("reading provider.password_file {}", path.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(reading)?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "provider.password_file {} is open to group or others (mode {:03o}): run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
    let text = std::fs::read_to_string(path).with_context(reading)?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

impl ProviderConfig {
    /// Credentials from `SMSC_LOGIN` and `SMSC_PASSWORD` or `provider.password_file`. For the
    /// sandbox, missing credentials fall back to the sandbox's own.
    pub fn credentials(&self) -> Result<Credentials> {
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
    fn credentials_debug_hides_the_password() {
        let c = Credentials {
            login: "l".into(),
            password: "secret".into(),
        };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
