//! Where the provider's login and password come from.
//!
//! Contract: from `SMSC_LOGIN` and `SMSC_PASSWORD` or `provider.password_file`, never from the
//! job file or argv; the sandbox falls back to its own. [`Credentials`] never prints its password.

use std::fmt;

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
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .with_context(|| {
                            format!("reading provider.password_file {}", path.display())
                        })?
                        .trim_end_matches(['\r', '\n'])
                        .to_string(),
                ),
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

    #[test]
    fn credentials_debug_hides_the_password() {
        let c = Credentials {
            login: "l".into(),
            password: "secret".into(),
        };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
