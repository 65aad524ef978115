//! The sandbox: an emulator of SMSC's `get_operator`, served over HTTP on loopback.
//!
//! Contract: it answers `/sys/info.php` like the provider, GET or POST, in `fmt` 0 to 3, for one
//! number or a list, with the deterministic data of `data`. Per login it keeps the provider's
//! limits (`limits`) and answers error 9 past them; it answers error 2 to wrong credentials.
//! It speaks the configured [`Dialect`] (`dialect`, `render`): the documented shape, or one
//! plausible deviation from it. On request it injects faults (HTTP 503, hangs, dropped
//! connections, truncated bodies, errors 4 and 9). It counts everything; `GET /sandbox/stats` returns the counters as JSON
//! ([`SandboxStats`]), and `GET /sandbox/arrivals?login=LOGIN` when each request of a login
//! counted against its limit arrived ([`Arrivals`]), for measuring how much of the limit the
//! clients used.

mod data;
mod dialect;
mod limits;
mod render;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rand::{Rng, SeedableRng};
use serde::Serialize;

pub use data::operator_of;
use limits::{Logins, Refusal};
use render::Item;

use crate::config::{Dialect, SandboxConfig};
use crate::normalize::E164;
use crate::provider::answer::Fmt;

/// How long a "hang" fault holds a request before answering (clients time out well before).
const HANG_FOR: Duration = Duration::from_secs(300);

/// The sandbox's counters, as served at `/sandbox/stats`.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct SandboxStats {
    /// Every request received on `/sys/info.php`.
    pub requests: u64,
    /// Requests answered with operator data (at least one entry).
    pub answered: u64,
    /// Numbers sent in answered requests.
    pub numbers_answered: u64,
    /// Whole-request errors by code ("1", "2", "3", "4", "9").
    pub errors: HashMap<String, u64>,
    /// Injected faults by kind ("http_5xx", "hang", "drop", "truncate", "blocked", "limited").
    pub faults: HashMap<String, u64>,
    /// The most requests counted against the limit within any one window.
    pub max_in_window: u64,
    /// The most requests in progress at once.
    pub max_concurrent: u64,
    /// The most times one identical request was received within one window.
    pub max_identical_in_window: u64,
    /// The limit the sandbox enforces, for reading the figures above.
    pub request_limit: u32,
    /// The window of that limit, in milliseconds.
    pub window_ms: u64,
    /// The same counters for each login that sent a request (its limits are its own).
    pub logins: BTreeMap<String, LoginStats>,
}

/// One login's counters at `/sandbox/stats`.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct LoginStats {
    /// Requests received with this login, refused ones included.
    pub requests: u64,
    /// Requests answered with operator data.
    pub answered: u64,
    /// Numbers sent in answered requests.
    pub numbers_answered: u64,
    /// Whole-request errors by code.
    pub errors: BTreeMap<String, u64>,
    /// The most of its requests counted against the limit within any one window.
    pub max_in_window: u64,
    /// The most of its requests in progress at once.
    pub max_concurrent: u64,
}

/// When a login's counted requests arrived, as served at `/sandbox/arrivals?login=LOGIN`.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct Arrivals {
    /// Milliseconds since the sandbox started, now.
    pub now_ms: u64,
    /// The request limit's window, in milliseconds.
    pub window_ms: u64,
    /// Milliseconds since the sandbox started at which each counted request arrived, in order.
    pub arrivals_ms: Vec<u64>,
}

struct Shared {
    config: SandboxConfig,
    /// When the sandbox started: the origin of [`Arrivals`].
    started: Instant,
    logins: Mutex<Logins>,
    stats: Mutex<SandboxStats>,
    /// Every counted arrival and its login, to compute `max_in_window` exactly.
    counted: Mutex<Vec<(Instant, String)>>,
    rng: Mutex<rand::rngs::StdRng>,
}

/// A running sandbox; dropping it stops the server.
pub struct Sandbox {
    /// The address it listens on.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Sandbox {
    /// Binds `listen` (port 0 picks a free one) and serves until dropped.
    pub async fn start(config: SandboxConfig, listen: SocketAddr) -> anyhow::Result<Sandbox> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("binding the sandbox to {listen}: {e}"))?;
        let addr = listener.local_addr()?;
        let stats = SandboxStats {
            request_limit: config.request_limit.count.get(),
            window_ms: config.request_limit.window.as_millis() as u64,
            ..Default::default()
        };
        let shared = Arc::new(Shared {
            started: Instant::now(),
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(config.seed)),
            config,
            logins: Mutex::new(Logins::default()),
            stats: Mutex::new(stats),
            counted: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/sys/info.php", get(info).post(info))
            .route("/sandbox/stats", get(stats_handler))
            .route("/sandbox/arrivals", get(arrivals_handler))
            .with_state(shared.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Sandbox {
            addr,
            shared,
            shutdown: Some(tx),
        })
    }

    /// `http://ADDR`, the `base_url` a job points at.
    pub fn base_url(&self) -> reqwest::Url {
        reqwest::Url::parse(&format!("http://{}", self.addr))
            .expect("a socket address is a valid URL host")
    }

    /// The counters so far.
    pub fn stats(&self) -> SandboxStats {
        self.shared.snapshot()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn stats_handler(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    axum::Json(shared.snapshot())
}

async fn arrivals_handler(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> impl IntoResponse {
    let params: HashMap<String, String> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let login = params.get("login").cloned().unwrap_or_default();
    axum::Json(shared.arrivals(&login))
}

/// A request's parameters, from the query string and the form body together.
struct Request {
    params: HashMap<String, String>,
    /// The format of the answer: the one asked for, unless the dialect ignores `fmt`.
    fmt: Fmt,
    login: String,
    /// The `phone` parameter as sent.
    phone: String,
}

impl Request {
    fn parse(query: Option<&str>, body: &[u8], dialect: Dialect) -> Request {
        let mut params: HashMap<String, String> = HashMap::new();
        for source in [query.unwrap_or("").as_bytes(), body] {
            if let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(source) {
                params.extend(pairs);
            }
        }
        let fmt = Fmt::from_param(params.get("fmt").map(String::as_str));
        let fmt = dialect::answers_in(dialect, fmt);
        let login = params.get("login").cloned().unwrap_or_default();
        let phone = params
            .get("phone")
            .map(|p| p.trim())
            .unwrap_or("")
            .to_string();
        Request {
            params,
            fmt,
            login,
            phone,
        }
    }
}

/// Leaves the login's requests in progress when the request ends, however it ends.
struct InFlight {
    shared: Arc<Shared>,
    login: String,
    armed: bool,
}

impl InFlight {
    fn release(&mut self) {
        if std::mem::take(&mut self.armed) {
            self.shared.logins.lock().unwrap().leave(&self.login);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.release();
    }
}

/// A fault injected into an admitted request, drawn by `provider.sandbox.faults`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Http5xx,
    Hang,
    Drop,
    Truncate,
    Blocked,
    Limited,
}

/// The handler of `/sys/info.php`, stage by stage: a server that never answers, admission
/// (parameters, credentials, limits), an injected fault, the latency, the numbers, the answer.
async fn info(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let dialect = shared.config.dialect;
    if let Some(response) = dialect::instead_of_answers(dialect) {
        shared.stats.lock().unwrap().requests += 1;
        return response;
    }
    let request = Request::parse(query.as_deref(), &body, dialect);
    let mut in_flight = match shared.admit(&request) {
        Ok(in_flight) => in_flight,
        Err(refusal) => return shared.refuse(&request, refusal),
    };
    let fault = shared.draw_fault();
    match fault {
        Some(Fault::Blocked) => {
            return shared.refuse(&request, (4, "IP address is temporarily blocked"))
        }
        Some(Fault::Limited) => {
            return shared.refuse(&request, (9, "too many requests, wait a minute"))
        }
        _ => {}
    }
    if !shared.config.latency.is_zero() {
        tokio::time::sleep(shared.config.latency).await;
    }
    match fault {
        Some(Fault::Http5xx) => return http_503(),
        Some(Fault::Hang) => {
            // A hung request stops counting as simultaneous: the client gave up on it long ago.
            in_flight.release();
            tokio::time::sleep(HANG_FOR).await;
            return shared.refuse(&request, (9, "late"));
        }
        Some(Fault::Drop) => return dropped_connection(),
        _ => {}
    }
    let items = match shared.answer(&request) {
        Ok(items) => items,
        Err(refusal) => return shared.refuse(&request, refusal),
    };
    let list = request.phone.contains(',');
    let mut text = render::items(request.fmt, dialect, &items, list);
    if fault == Some(Fault::Truncate) {
        let mut cut = text.len() / 2;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    } else {
        let numbers = request.phone.split(',').count() as u64;
        let mut stats = shared.stats.lock().unwrap();
        stats.answered += 1;
        stats.numbers_answered += numbers;
        let login = stats.logins.entry(request.login.clone()).or_default();
        login.answered += 1;
        login.numbers_answered += numbers;
    }
    dialect::respond(dialect, request.fmt, StatusCode::OK, text)
}

impl Shared {
    fn snapshot(&self) -> SandboxStats {
        let mut stats = self.stats.lock().unwrap().clone();
        let counted = self.counted.lock().unwrap();
        let window = self.config.request_limit.window;
        let all: Vec<Instant> = counted.iter().map(|(t, _)| *t).collect();
        stats.max_in_window = limits::max_in_window(&all, window);
        for (name, login) in stats.logins.iter_mut() {
            let its: Vec<Instant> = counted
                .iter()
                .filter(|(_, l)| l == name)
                .map(|(t, _)| *t)
                .collect();
            login.max_in_window = limits::max_in_window(&its, window);
        }
        stats
    }

    /// When the counted requests of `login` arrived.
    fn arrivals(&self, login: &str) -> Arrivals {
        let since = |t: Instant| t.duration_since(self.started).as_millis() as u64;
        let counted = self.counted.lock().unwrap();
        Arrivals {
            now_ms: since(Instant::now()),
            window_ms: self.config.request_limit.window.as_millis() as u64,
            arrivals_ms: counted
                .iter()
                .filter(|(_, l)| l == login)
                .map(|(t, _)| since(*t))
                .collect(),
        }
    }

    /// Counts the request and lets it in, or says which error the provider would answer.
    fn admit(self: &Arc<Self>, request: &Request) -> Result<InFlight, Refusal> {
        let arrived = Instant::now();
        let cfg = &self.config;
        let concurrent = self.logins.lock().unwrap().enter(&request.login);
        let in_flight = InFlight {
            shared: self.clone(),
            login: request.login.clone(),
            armed: true,
        };
        {
            let mut stats = self.stats.lock().unwrap();
            stats.requests += 1;
            stats.max_concurrent = stats.max_concurrent.max(concurrent);
            let login = stats.logins.entry(request.login.clone()).or_default();
            login.requests += 1;
            login.max_concurrent = login.max_concurrent.max(concurrent);
        }
        if request.params.get("get_operator").map(String::as_str) != Some("1") {
            return Err((1, "parameters error"));
        }
        let password = request.params.get("psw").map_or("", String::as_str);
        if !cfg.accepts(&request.login, password) {
            return Err((2, "authorise error"));
        }
        let admitted =
            self.logins
                .lock()
                .unwrap()
                .admit(cfg, &request.login, &request.phone, arrived);
        let identical = admitted?;
        self.counted
            .lock()
            .unwrap()
            .push((arrived, request.login.clone()));
        let mut stats = self.stats.lock().unwrap();
        stats.max_identical_in_window = stats.max_identical_in_window.max(identical);
        Ok(in_flight)
    }

    /// Draws this request's fault, if any, by the configured ratios, and counts it.
    fn draw_fault(&self) -> Option<Fault> {
        let roll: f64 = self.rng.lock().unwrap().random();
        let mut edge = 0.0;
        // In the order of `Faults::ratios`, whose keys name them in the counters.
        let faults = [
            Fault::Http5xx,
            Fault::Hang,
            Fault::Drop,
            Fault::Truncate,
            Fault::Blocked,
            Fault::Limited,
        ];
        let ratios = self.config.faults.ratios();
        let (fault, name) = faults
            .into_iter()
            .zip(ratios)
            .find_map(|(fault, (name, ratio))| {
                edge += ratio;
                (roll < edge).then_some((fault, name))
            })?;
        count(&mut self.stats.lock().unwrap().faults, name);
        Some(fault)
    }

    /// The answer for each number asked, or the whole-request error the provider gives: error 1
    /// for a malformed, too long or rejected list, error 3 for one number without an operator.
    fn answer(&self, request: &Request) -> Result<Vec<Item>, Refusal> {
        let cfg = &self.config;
        let parts: Vec<&str> = request.phone.split(',').map(str::trim).collect();
        let numbers: Option<Vec<E164>> = parts.iter().map(|p| E164::from_digits(p)).collect();
        let rejected = |n: &E164| (data::mix(n.0) >> 40) % 100 < cfg.reject_percent as u64;
        let numbers = match numbers {
            Some(n)
                if !request.phone.is_empty()
                    && n.len() <= cfg.max_list
                    && !n.iter().any(rejected) =>
            {
                n
            }
            _ => return Err((1, "parameters error")),
        };
        let items: Vec<Item> = numbers
            .iter()
            .zip(&parts)
            .map(|(n, sent)| Item {
                number: *n,
                phone: sent.to_string(),
                info: operator_of(*n, cfg.not_found_percent),
            })
            .collect();
        // One number not found is an error for the whole request, as the provider's page has
        // it, except where the dialect answers it with an empty entry.
        match items.as_slice() {
            [one] if one.info.is_none() && cfg.dialect != Dialect::NotFoundEmpty => {
                Err(render::NOT_FOUND)
            }
            _ => Ok(items),
        }
    }

    /// Answers a whole-request error, in the dialect's words, and counts it.
    fn refuse(&self, request: &Request, (code, message): Refusal) -> Response {
        let fmt = request.fmt;
        {
            let mut stats = self.stats.lock().unwrap();
            count(&mut stats.errors, &code.to_string());
            let login = stats.logins.entry(request.login.clone()).or_default();
            *login.errors.entry(code.to_string()).or_default() += 1;
        }
        let dialect = self.config.dialect;
        let fmt = dialect::errors_in(dialect, fmt);
        let text = render::error(fmt, dialect, code, message);
        dialect::respond(dialect, fmt, dialect::error_status(dialect, code), text)
    }
}

fn count(map: &mut HashMap<String, u64>, key: &str) {
    *map.entry(key.to_string()).or_default() += 1;
}

fn http_503() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "503 Service Temporarily Unavailable",
    )
        .into_response()
}

/// Headers, then the connection breaks before the body.
fn dropped_connection() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped by the sandbox"))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(Body::from_stream(stream))
        .expect("static response parts are valid")
}
