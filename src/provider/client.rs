//! The HTTP client for `get_operator`: one request in, the raw answer or a transport error out.
//!
//! Contract: every request is a form-encoded POST to `{base_url}/sys/info.php` with
//! `get_operator=1`, `login`, `psw`, `phone` (comma-separated), `fmt=3` and `charset=utf-8`.
//! The password never appears in a URL, a log line or an error. Redirects are never followed
//! (a POST redirected loses its form, or carries the password somewhere else): a 3xx is a
//! [`ProviderError::Redirected`] naming the `Location`. Certificates are always checked,
//! against the system's trust store (`SSL_CERT_FILE`/`SSL_CERT_DIR` when set), the compiled-in
//! web roots, and the CAs of `provider.ca_file`. `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` are
//! honoured (reqwest's system proxy). The body comes back as bytes, undecoded
//! ([`super::answer::read`] decodes and parses it). This type knows nothing of pacing or
//! retries: that is `pacer`'s job.

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{Client, ProviderError, RawAnswer};
use crate::config::Credentials;
use crate::normalize::E164;

/// The real provider's client: a reqwest client bound to one endpoint and one login.
#[derive(Clone)]
pub struct SmscClient {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    credentials: Credentials,
    timeout: Duration,
}

impl std::fmt::Debug for SmscClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmscClient")
            .field("endpoint", &self.endpoint.as_str())
            .field("login", &self.credentials.login)
            .finish()
    }
}

impl SmscClient {
    /// `timeout` bounds one request from connect to the last byte of the body; `extra_roots`
    /// are trusted besides the system's and the web's roots (`provider.ca_file`).
    pub fn new(
        base_url: &reqwest::Url,
        credentials: Credentials,
        timeout: Duration,
        extra_roots: &[reqwest::Certificate],
    ) -> anyhow::Result<SmscClient> {
        let endpoint = base_url.join("/sys/info.php")?;
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("phone-enrich/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(crate::config::MAX_CONCURRENCY)
            .redirect(reqwest::redirect::Policy::none());
        for root in extra_roots {
            builder = builder.add_root_certificate(root.clone());
        }
        let http = builder.build()?;
        Ok(SmscClient {
            http,
            endpoint,
            credentials,
            timeout,
        })
    }

    /// The URL requests go to.
    pub fn endpoint(&self) -> &reqwest::Url {
        &self.endpoint
    }

    async fn post(&self, numbers: &[E164]) -> Result<RawAnswer, ProviderError> {
        let phones = numbers
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let form = [
            ("get_operator", "1"),
            ("login", self.credentials.login.as_str()),
            ("psw", self.credentials.password.as_str()),
            ("phone", phones.as_str()),
            ("fmt", "3"),
            ("charset", "utf-8"),
        ];
        let response = self
            .http
            .post(self.endpoint.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let header = |name| {
            let value = response.headers().get(name)?;
            value.to_str().ok().map(str::to_string)
        };
        let content_type = header(reqwest::header::CONTENT_TYPE);
        if response.status().is_redirection() {
            let location = header(reqwest::header::LOCATION);
            return Err(ProviderError::Redirected {
                status,
                location: location.unwrap_or_else(|| "(no Location)".into()),
            });
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        Ok(RawAnswer {
            status,
            content_type,
            body: body.to_vec(),
        })
    }

    fn transport_error(&self, e: reqwest::Error) -> ProviderError {
        if e.is_timeout() {
            return ProviderError::Timeout(self.timeout);
        }
        // reqwest's message carries the URL (never the form body, which holds the password).
        let mut causes = String::new();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            causes.push_str(": ");
            causes.push_str(&s.to_string());
            source = s.source();
        }
        ProviderError::Transport(format!("{}{causes}", e.without_url()))
    }
}

impl Client for SmscClient {
    fn send<'a>(&'a self, numbers: &'a [E164]) -> BoxFuture<'a, Result<RawAnswer, ProviderError>> {
        Box::pin(self.post(numbers))
    }

    fn login(&self) -> &str {
        &self.credentials.login
    }
}
