//! The HTTP client for `get_operator`: one request in, typed answers or a typed error out.
//!
//! Contract: every request is a form-encoded POST to `{base_url}/sys/info.php` with
//! `get_operator=1`, `login`, `psw`, `phone` (comma-separated), `fmt=3` and `charset=utf-8`.
//! The password never appears in a URL, a log line or an error. The body is decoded by its
//! declared charset. This type knows nothing of pacing or retries: that is `pacer`'s job.

use std::time::Duration;

use super::answer::{self, Fmt};
use super::{NumberAnswer, ProviderError};
use crate::config::Credentials;
use crate::normalize::E164;

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
    /// `timeout` bounds one request from connect to the last byte of the body.
    pub fn new(
        base_url: &reqwest::Url,
        credentials: Credentials,
        timeout: Duration,
    ) -> anyhow::Result<SmscClient> {
        let endpoint = base_url.join("/sys/info.php")?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("phone-enrich/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(crate::config::MAX_CONCURRENCY)
            .build()?;
        Ok(SmscClient {
            http,
            endpoint,
            credentials,
            timeout,
        })
    }

    /// Asks for the operators of `numbers` in one request.
    pub async fn get_operator(
        &self,
        numbers: &[E164],
    ) -> Result<Vec<(E164, NumberAnswer)>, ProviderError> {
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
        let status = response.status();
        let body = response.text().await.map_err(|e| self.transport_error(e))?;
        if !status.is_success() {
            return Err(ProviderError::Http {
                status: status.as_u16(),
            });
        }
        answer::parse(Fmt::Json, &body)?.match_to(numbers)
    }
}

impl SmscClient {
    fn transport_error(&self, e: reqwest::Error) -> ProviderError {
        if e.is_timeout() {
            return ProviderError::Timeout(self.timeout);
        }
        describe_transport_error(e)
    }
}

fn describe_transport_error(e: reqwest::Error) -> ProviderError {
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
