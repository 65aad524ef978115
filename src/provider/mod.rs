//! The SMSC `get_operator` call: what it answers, how it fails, and two ends of the wire.
//!
//! Contract: a [`Client`] sends one request for a list of numbers and hands back the
//! [`RawAnswer`] as it came off the wire; [`answer::read`] turns that into a [`NumberAnswer`]
//! for each number the provider answered (numbers it did not answer are simply absent: the
//! caller asks again) or a [`ProviderError`] whose [`ProviderError::class`] is what the caller
//! branches on (the pacer's reaction to each class is its table, `pacer/reaction.rs`). [`client::SmscClient`] is the real client; [`sandbox`] is an emulator of the
//! same call, served over HTTP, used by the demo job and the tests.

pub mod answer;
pub mod client;
pub mod rejected;
pub mod sandbox;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::config::{Credentials, ProviderConfig, ProviderKind};
use crate::normalize::E164;
use client::SmscClient;
use sandbox::Sandbox;

/// What a job talks to the provider through: a client per account, and the sandbox they point
/// at when the job starts one in-process (kept alive as long as the connection).
pub struct Connection {
    pub clients: Vec<SmscClient>,
    pub sandbox: Option<Sandbox>,
}

/// Connects a job's `accounts` to its provider: its `base_url`, or a sandbox started on
/// 127.0.0.1 when the job is a sandbox job without one. The clients' own timeout is a backstop
/// 5 s behind the pacer's `provider.timeout`; they trust `provider.ca_file`'s CAs besides the
/// system's.
pub async fn connect(
    config: &ProviderConfig,
    accounts: Vec<Credentials>,
) -> anyhow::Result<Connection> {
    let timeout = config.timeout + Duration::from_secs(5);
    let sandbox = match (config.kind, &config.base_url) {
        (ProviderKind::Sandbox, None) => {
            let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            Some(Sandbox::start(config.sandbox.clone(), listen).await?)
        }
        _ => None,
    };
    let base_url = match (&sandbox, &config.base_url) {
        (Some(sandbox), _) => sandbox.base_url(),
        (None, Some(url)) => url.clone(),
        (None, None) => anyhow::bail!("provider.base_url is not set"),
    };
    if config.sends_in_clear() {
        tracing::warn!(
            base_url = %base_url,
            "provider.allow_insecure_http: the password travels unencrypted"
        );
    }
    let roots = config
        .ca_file
        .as_ref()
        .map(|f| f.certificates())
        .unwrap_or_default();
    let clients = accounts
        .into_iter()
        .map(|credentials| SmscClient::new(&base_url, credentials, timeout, roots))
        .collect::<anyhow::Result<Vec<_>>>()
        .with_context(|| format!("setting up the client for {base_url}"))?;
    Ok(Connection { clients, sandbox })
}

/// One request to the provider, and nothing more: no pacing, no retries, no parsing. The pacer
/// holds its client through this trait, so tests can script the provider's answers.
pub trait Client: Send + Sync {
    /// Asks for the operators of `numbers` in one request and returns the answer undecoded.
    fn send<'a>(&'a self, numbers: &'a [E164]) -> BoxFuture<'a, Result<RawAnswer, ProviderError>>;

    /// The login this client sends (the provider counts its limits per login).
    fn login(&self) -> &str;
}

/// An answer as it came off the wire: the HTTP status, the declared content type, the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAnswer {
    pub status: u16,
    /// The `Content-Type` header, if any (it may name a charset).
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// What the provider knows of a number's operator. `mnc` keeps its leading zeros.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorInfo {
    pub country: String,
    pub operator: String,
    pub region: String,
    pub mcc: Option<u16>,
    pub mnc: String,
    /// Hours from UTC of the number's region.
    pub tz: Option<i8>,
}

#[cfg(test)]
impl OperatorInfo {
    /// A typical answer, for tests: MTS in Moscow.
    pub(crate) fn example() -> OperatorInfo {
        OperatorInfo {
            country: "Россия".into(),
            operator: "МТС".into(),
            region: "Москва".into(),
            mcc: Some(250),
            mnc: "01".into(),
            tz: Some(3),
        }
    }
}

/// A terminal answer for one number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NumberAnswer {
    /// The provider named the number's operator.
    Found(OperatorInfo),
    /// Error 3: the provider has no operator for this number.
    NotFound,
    /// Error 1 for this number alone: the provider rejects it as a number.
    Rejected,
}

/// The provider's numbered errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiCode {
    /// 1: error in parameters.
    Parameters,
    /// 2: invalid login or password, or the caller's IP is not allowed.
    Auth,
    /// 3: operator not found.
    NotFound,
    /// 4: the IP address is temporarily blocked.
    IpBlocked,
    /// 9: over a request limit (rate, identical requests, or concurrency).
    Limit,
    /// A code the provider's page does not list.
    Other(i64),
}

impl ApiCode {
    /// The code for the provider's number `n`.
    pub fn from_number(n: i64) -> ApiCode {
        match n {
            1 => ApiCode::Parameters,
            2 => ApiCode::Auth,
            3 => ApiCode::NotFound,
            4 => ApiCode::IpBlocked,
            9 => ApiCode::Limit,
            other => ApiCode::Other(other),
        }
    }

    /// The provider's number for this code.
    pub fn number(self) -> i64 {
        match self {
            ApiCode::Parameters => 1,
            ApiCode::Auth => 2,
            ApiCode::NotFound => 3,
            ApiCode::IpBlocked => 4,
            ApiCode::Limit => 9,
            ApiCode::Other(n) => n,
        }
    }
}

/// Why one request got no answer about its numbers.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered one of its numbered errors.
    #[error("provider error {} ({message})", code.number())]
    Api { code: ApiCode, message: String },
    /// An HTTP status other than success, with a body that is no provider error.
    #[error("HTTP status {status}")]
    Http { status: u16 },
    /// An HTTP redirect, which is never followed: the POST would lose its form, or carry the
    /// password somewhere else.
    #[error("HTTP {status} redirect to {location}")]
    Redirected { status: u16, location: String },
    /// The provider's TLS certificate cannot be verified: a setting is wrong (the CAs this
    /// client trusts, or the address), so asking again cannot help. `host` is the provider's
    /// (with its port when the URL names one), `reason` says what is wrong in plain words and
    /// `remedy` which setting fixes it.
    #[error("the certificate of {host} cannot be verified: {reason}; {remedy}")]
    Untrusted {
        host: String,
        reason: String,
        remedy: String,
    },
    /// No answer within the pacer's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed or broke off. `message` spells the whole chain of causes (for
    /// logs, which print errors with `{}`); `source` keeps the error itself, when there is one.
    #[error("connection failed: {message}")]
    Transport {
        message: String,
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
    /// A body that is neither an answer nor a provider error.
    #[error("answer does not parse: {0}")]
    Malformed(String),
}

/// The kind of an error, which is all the pacer branches on. What it does about each class
/// (retry after a back-off, pause the login, pause every login, drop the login, split the
/// list, give up, stop) is one table, `reaction` in `src/pacer/reaction.rs`; the variants say
/// only what went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Timeout, connection error, 5xx, 408, 429, unparseable answer: likely to pass.
    Transient,
    /// Error 9: the login is over one of its limits (rate, identical requests, at once).
    RateLimited,
    /// Error 4: our IP address is temporarily blocked, whichever login asked.
    Blocked,
    /// Error 2 (or HTTP 401/403): the provider refused this login's credentials (or our IP
    /// for it).
    Auth,
    /// A redirect: the job's `base_url` is wrong.
    Settings,
    /// The provider's certificate cannot be verified: the job's trust settings
    /// (`provider.ca_file`, `SSL_CERT_FILE`) or its `base_url` are wrong, and every later
    /// request would meet the same certificate.
    Untrusted,
    /// Error 1 (or 3) for a whole list: a number in it, or its length, is refused.
    BadRequest,
    /// Anything else: an error retrying will not fix.
    Fatal,
}

impl ProviderError {
    /// The error's class (what the pacer does about it is its table, `pacer/reaction.rs`).
    pub fn class(&self) -> ErrorClass {
        match self {
            ProviderError::Timeout(_)
            | ProviderError::Transport { .. }
            | ProviderError::Malformed(_) => ErrorClass::Transient,
            ProviderError::Http { status }
                if *status >= 500 || *status == 429 || *status == 408 =>
            {
                ErrorClass::Transient
            }
            ProviderError::Http { status: 401 | 403 } => ErrorClass::Auth,
            ProviderError::Http { .. } => ErrorClass::Fatal,
            ProviderError::Redirected { .. } => ErrorClass::Settings,
            ProviderError::Untrusted { .. } => ErrorClass::Untrusted,
            ProviderError::Api { code, .. } => match code {
                ApiCode::Limit => ErrorClass::RateLimited,
                ApiCode::IpBlocked => ErrorClass::Blocked,
                ApiCode::Auth => ErrorClass::Auth,
                ApiCode::Parameters | ApiCode::NotFound => ErrorClass::BadRequest,
                ApiCode::Other(_) => ErrorClass::Fatal,
            },
        }
    }

    /// A short stable label for counters and reports: `api_9`, `http_503`, `timeout`, ...
    pub fn label(&self) -> String {
        match self {
            ProviderError::Api { code, .. } => format!("api_{}", code.number()),
            ProviderError::Http { status } | ProviderError::Redirected { status, .. } => {
                format!("http_{status}")
            }
            ProviderError::Timeout(_) => "timeout".into(),
            ProviderError::Transport { .. } => "transport".into(),
            ProviderError::Untrusted { .. } => "certificate".into(),
            ProviderError::Malformed(_) => "malformed".into(),
        }
    }
}
