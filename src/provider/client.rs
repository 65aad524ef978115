//! The HTTP client for `get_operator`: one request in, the raw answer or a transport error out.
//!
//! Contract: every request is a form-encoded POST to `{base_url}/sys/info.php` with
//! `get_operator=1`, `login`, `psw`, `phone` (comma-separated), `fmt=3` and `charset=utf-8`.
//! The password never appears in a URL, a log line or an error. Redirects are never followed
//! (a POST redirected loses its form, or carries the password somewhere else): a 3xx is a
//! [`ProviderError::Redirected`] naming the `Location`. Certificates are always checked,
//! against the system's trust store (`SSL_CERT_FILE`/`SSL_CERT_DIR` when set), the compiled-in
//! web roots, and the CAs of `provider.ca_file`; one that cannot be verified is a
//! [`ProviderError::Untrusted`] saying why in plain words and which setting fixes it, never a
//! transport failure to retry. `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` are
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
        if let Some(refused) = certificate_error(&e) {
            return untrusted(&self.endpoint, refused);
        }
        // reqwest's message carries the URL (never the form body, which holds the password).
        let mut causes = String::new();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            causes.push_str(": ");
            causes.push_str(&s.to_string());
            source = s.source();
        }
        let e = e.without_url();
        ProviderError::Transport {
            message: format!("{e}{causes}"),
            source: Some(std::sync::Arc::new(e)),
        }
    }
}

/// Why rustls refused the server's certificate, if that is why `e` happened. rustls' error
/// travels inside `io::Error`s (hyper-rustls wraps tokio-rustls' in another), whose `source`
/// skips what they wrap, so each cause is unwrapped down to it.
fn certificate_error(e: &reqwest::Error) -> Option<&rustls::CertificateError> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(rustls::Error::InvalidCertificate(refused)) = rustls_error(s) {
            return Some(refused);
        }
        source = s.source();
    }
    None
}

/// The rustls error `e` is, or that the `io::Error`s `e` is made of wrap.
fn rustls_error<'a>(mut e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    loop {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        e = e.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

/// A refused certificate as the user must read it: the host, what is wrong in plain words
/// (never rustls' variant names where a plain one exists), and the setting that fixes it.
fn untrusted(endpoint: &reqwest::Url, refused: &rustls::CertificateError) -> ProviderError {
    use rustls::CertificateError as C;
    let name = endpoint.host_str().unwrap_or("").to_string();
    let host = match endpoint.port() {
        Some(port) => format!("{name}:{port}"),
        None => name.clone(),
    };
    let trust = "set provider.ca_file to the PEM file of the CA that issued it (a company CA, \
        or a TLS-inspecting proxy's), or SSL_CERT_FILE to a bundle that holds it";
    let not_trust = "provider.ca_file and SSL_CERT_FILE cannot fix this";
    let (reason, remedy): (String, String) = match refused {
        C::UnknownIssuer => ("it is issued by a CA this client does not trust".into(), trust.into()),
        C::Other(other)
            if other.0.downcast_ref::<webpki::Error>() == Some(&webpki::Error::CaUsedAsEndEntity) =>
        (
            "the server presents a CA's certificate as its own (a self-signed certificate made as a CA, as `openssl req -x509` makes one), which TLS never accepts".into(),
            "the server needs a certificate issued by a CA; then set provider.ca_file to that CA's PEM file, or SSL_CERT_FILE to a bundle that holds it".into(),
        ),
        C::NotValidForName => (format!("it does not name `{name}`"), format!("set provider.base_url to a name the certificate holds; {not_trust}")),
        C::NotValidForNameContext { presented, .. } => (
            format!("it does not name `{name}` (it names {})", presented.join(", ")),
            format!("set provider.base_url to a name the certificate holds; {not_trust}"),
        ),
        C::Expired | C::ExpiredContext { .. } => (
            "it has expired".into(),
            format!("the provider must renew it, or this machine's clock is wrong; {not_trust}"),
        ),
        C::NotValidYet | C::NotValidYetContext { .. } => (
            "it is not valid yet".into(),
            format!("this machine's clock is probably wrong; {not_trust}"),
        ),
        C::Revoked => ("it has been revoked".into(), format!("the provider must replace it; {not_trust}")),
        C::BadSignature => ("it is not signed by the key of the CA it names".into(), trust.into()),
        other => (format!("rustls refused it ({other})"), trust.into()),
    };
    ProviderError::Untrusted {
        host,
        reason,
        remedy,
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
