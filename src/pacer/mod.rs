//! Pacing and resilience: every request to the provider goes through one [`Pacer`].
//!
//! Contract: [`Pacer::lookup`] takes a batch of numbers and returns, for each, a terminal answer
//! or a failure, or stops the whole job ([`Stop`]). The stages a request passes on its way to
//! the wire, and their order, are written in one place: `Pacer::send`. What follows each kind
//! of failure (back off and retry, pause everyone, split the list, ask again, stop) is the
//! policy of [`Pacer::lookup`], here. `send.rs` holds the request path, `window.rs` the
//! limiters, `gate.rs` the first-request gate.

mod gate;
mod send;
mod window;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use rand::Rng;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::config::ProviderConfig;
use crate::normalize::E164;
use crate::provider::answer::{Answered, UnreadValue};
use crate::provider::rejected::RejectedBodies;
use crate::provider::{Client, ErrorClass, NumberAnswer, ProviderError, RawAnswer};
use gate::FirstRequestGate;
use window::{IdenticalGuard, SlidingWindow};

/// Why the whole job must stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Error 2: the provider refused the credentials (or our IP).
    AuthRejected(String),
    /// Error 4 went on past `provider.max_blocked_wait`, or answered both first requests.
    Blocked(String),
    /// Neither of the first two requests was answered (an HTML page, a broken server, ...):
    /// the numbers not asked end `failed`.
    Unconfirmed(String),
    /// The provider's address redirects: `provider.base_url` needs fixing.
    Redirected(String),
    /// The run was asked to stop (signal).
    Interrupted,
    /// The state store could not keep an answer: nothing more is sent.
    StateFailed,
}

impl Stop {
    /// Why the job stops when the last request allowed before any answer failed with `error`.
    fn unconfirmed(error: &ProviderError) -> Stop {
        let why = format!("neither of the first two requests was answered, the last: {error}");
        match error.class() {
            ErrorClass::Auth => Stop::AuthRejected(why),
            ErrorClass::Blocked => Stop::Blocked(why),
            ErrorClass::Settings => Stop::Redirected(error.to_string()),
            _ => Stop::Unconfirmed(why),
        }
    }
}

/// One request as it went: the answer as it came off the wire, if any came, and what it said.
#[derive(Debug)]
pub struct Sent {
    /// How many numbers of the list were asked: all, except on the last try before any answer,
    /// which asks for the first alone.
    pub asked: usize,
    /// The answer's status, content type and bytes; `None` when none came (timeout,
    /// connection failure, redirect).
    pub raw: Option<RawAnswer>,
    /// What the answer said, or why it said nothing.
    pub result: Result<Answered, ProviderError>,
}

/// What became of a batch. Numbers in neither list were not asked: the job is stopping.
#[derive(Debug, Default)]
pub struct BatchResult {
    /// Terminal answers, one per number answered.
    pub answers: Vec<(E164, NumberAnswer)>,
    /// Numbers given up on after every retry.
    pub failed: Vec<E164>,
}

/// Counters of what the pacer did, for progress and reports.
#[derive(Debug, Default)]
pub struct PacerCounters {
    /// Requests sent to the provider.
    pub requests: AtomicU64,
    /// Requests sent again after a failure.
    pub retries: AtomicU64,
    /// Lists split in two after the provider rejected them whole.
    pub splits: AtomicU64,
    /// Failures by [`ProviderError::label`].
    pub errors: Mutex<HashMap<String, u64>>,
}

impl PacerCounters {
    fn error(&self, label: String) {
        *self.errors.lock().unwrap().entry(label).or_default() += 1;
    }
}

/// The provider's limits as this run keeps them: the stages of [`Pacer::send`] that hold
/// something while a request is out.
struct Limits {
    identical: IdenticalGuard,
    concurrency: Semaphore,
    concurrency_cap: usize,
    /// Numbers per window, if the provider counts numbers rather than requests.
    numbers: Option<SlidingWindow>,
    requests: SlidingWindow,
    timeout: Duration,
}

/// What the pacer does after each kind of failure.
struct Policy {
    /// Back-off of transient failures: exponential, `max_retries` times at most.
    backoff: ExponentialBuilder,
    /// Applied to each back-off delay: [`full_jitter`], or none in tests.
    jitter: fn(Duration) -> Duration,
    /// Also the rounds of asking again for numbers an answer left out.
    max_retries: usize,
    /// How long everyone pauses after error 9: the provider's window.
    limited_pause: Duration,
    /// The first pause of everyone after error 4; it doubles on each repeat.
    blocked_pause: Duration,
    /// Past this much pausing for error 4, the job stops.
    max_blocked_wait: Duration,
}

/// What the answers so far decided for every request: set by [`Pacer::lookup`]'s policy, read
/// by the stages of `Pacer::send`.
struct Control {
    gate: FirstRequestGate,
    /// Set once a list's entries came back without a usable `phone`: from then on every
    /// request asks for one number.
    singles: AtomicBool,
    /// Values that could not be read, each logged once.
    unread_logged: Mutex<HashSet<UnreadValue>>,
    /// The request limit, lowered after error 9; recovers by one per clean request.
    rate_cap: Mutex<u32>,
    /// No request is sent before this instant.
    paused_until: Mutex<Option<Instant>>,
    /// Time paused for error 4 so far.
    blocked_total: Mutex<Duration>,
    stop: Mutex<Option<Stop>>,
}

/// Full jitter: a uniformly random delay between zero and the exponential schedule's.
pub fn full_jitter(delay: Duration) -> Duration {
    delay.mul_f64(rand::rng().random::<f64>())
}

/// How long the pacer pauses everyone after error 4, doubling each time.
const BLOCKED_PAUSE_FACTOR: u32 = 2;

/// Every request to the provider, paced and retried. Built by [`PacerBuilder`].
pub struct Pacer {
    client: Box<dyn Client>,
    limits: Limits,
    policy: Policy,
    control: Control,
    rejected: Option<RejectedBodies>,
    /// What the pacer did so far.
    pub counters: PacerCounters,
}

/// Builds a [`Pacer`] from the job's provider settings: the one place where the limits, the
/// policy and the control are made and put together with the client.
pub struct PacerBuilder {
    config: ProviderConfig,
    jitter: fn(Duration) -> Duration,
    rejected: Option<RejectedBodies>,
}

impl PacerBuilder {
    /// A builder for the job's `[provider]` settings.
    pub fn new(config: &ProviderConfig) -> Self {
        PacerBuilder {
            config: config.clone(),
            jitter: full_jitter,
            rejected: None,
        }
    }

    /// Keeps the first answers the parser rejects (see `provider::rejected`).
    pub fn keep_rejected(mut self, rejected: RejectedBodies) -> Self {
        self.rejected = Some(rejected);
        self
    }

    /// Back-off delays exactly on the exponential schedule, for tests of the schedule.
    #[cfg(test)]
    fn without_jitter(mut self) -> Self {
        self.jitter = |d| d;
        self
    }

    fn limits(c: &ProviderConfig) -> Limits {
        Limits {
            identical: IdenticalGuard::new(c.identical_limit, c.safety_margin),
            concurrency: Semaphore::new(c.concurrency.get()),
            concurrency_cap: c.concurrency.get(),
            numbers: c
                .number_limit
                .map(|r| SlidingWindow::new(r, c.safety_margin)),
            requests: SlidingWindow::new(c.request_limit, c.safety_margin),
            timeout: c.timeout,
        }
    }

    fn policy(c: &ProviderConfig, jitter: fn(Duration) -> Duration) -> Policy {
        Policy {
            backoff: ExponentialBuilder::default()
                .with_min_delay(c.retry_base_delay)
                .with_max_delay(c.retry_max_delay)
                .with_factor(2.0)
                .with_max_times(c.max_retries),
            jitter,
            max_retries: c.max_retries,
            limited_pause: c.request_limit.window,
            blocked_pause: c.blocked_pause,
            max_blocked_wait: c.max_blocked_wait,
        }
    }

    fn control(c: &ProviderConfig) -> Control {
        Control {
            gate: FirstRequestGate::default(),
            singles: AtomicBool::new(false),
            unread_logged: Mutex::new(HashSet::new()),
            rate_cap: Mutex::new(c.request_limit.count.get()),
            paused_until: Mutex::new(None),
            blocked_total: Mutex::new(Duration::ZERO),
            stop: Mutex::new(None),
        }
    }

    /// The pacer, sending through `client`.
    pub fn build(self, client: impl Client + 'static) -> Pacer {
        let c = &self.config;
        Pacer {
            client: Box::new(client),
            limits: Self::limits(c),
            policy: Self::policy(c, self.jitter),
            control: Self::control(c),
            rejected: self.rejected,
            counters: PacerCounters::default(),
        }
    }
}

impl Pacer {
    /// How many requests may be in flight at once.
    pub fn concurrency(&self) -> usize {
        self.limits.concurrency_cap
    }

    /// Why the job stopped, if it did.
    pub fn stopped(&self) -> Option<Stop> {
        self.control.stop.lock().unwrap().clone()
    }

    /// Asks that no further request be sent; requests in flight finish.
    pub fn stop(&self, why: Stop) {
        self.control.stop.lock().unwrap().get_or_insert(why);
    }

    fn is_stopping(&self) -> bool {
        self.control.stop.lock().unwrap().is_some()
    }

    /// The files the first rejected answers were kept in.
    pub fn rejected_files(&self) -> Vec<PathBuf> {
        self.rejected
            .as_ref()
            .map(RejectedBodies::files)
            .unwrap_or_default()
    }

    /// Sends one request for `numbers` through every stage, without retrying: what
    /// `phone-enrich probe` shows. `None` when nothing could be sent.
    pub async fn probe(&self, numbers: &[E164]) -> Option<Sent> {
        self.send(numbers).await
    }

    /// Looks up a batch: retries transient errors, waits out limits, splits lists the provider
    /// rejects, and asks again for numbers the answer left out.
    pub async fn lookup(&self, numbers: Vec<E164>) -> BatchResult {
        let mut result = BatchResult::default();
        // Lists still to ask, with the rounds already spent on numbers left out of answers.
        let mut pending = vec![(numbers, 0usize)];
        while let Some((list, rounds)) = pending.pop() {
            if self.is_stopping() {
                continue;
            }
            if list.len() > 1 && self.control.singles.load(Ordering::SeqCst) {
                pending.extend(list.into_iter().map(|n| (vec![n], rounds)));
                continue;
            }
            let Some((asked, outcome)) = self.request_with_retries(&list).await else {
                continue;
            };
            // The rest of a list whose first number went alone is still to ask.
            let mut list = list;
            if asked < list.len() {
                pending.push((list.split_off(asked), rounds));
            }
            match outcome {
                Ok(answered) => {
                    let numbers: HashSet<E164> = answered.answers.iter().map(|(n, _)| *n).collect();
                    let missing: Vec<E164> = list
                        .iter()
                        .copied()
                        .filter(|n| !numbers.contains(n))
                        .collect();
                    result.answers.extend(answered.answers);
                    if answered.phoneless > 0 && list.len() > 1 {
                        // Not left out: answered in entries that cannot be told apart.
                        self.switch_to_singles(list.len());
                        pending.extend(missing.into_iter().map(|n| (vec![n], rounds)));
                    } else {
                        self.ask_again(missing, rounds, &mut pending, &mut result.failed);
                    }
                }
                Err(e) => self.after_failure(e, list, rounds, &mut pending, &mut result.failed),
            }
        }
        result
    }

    /// A list's entries came back without a usable `phone`: no list answer can be paired with
    /// its numbers, so from now on every request asks for one number (logged once).
    fn switch_to_singles(&self, list_len: usize) {
        if !self.control.singles.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                list = list_len,
                "the provider's list answers carry no usable `phone`: asking one number per request from now on (up to batch_size times the requests)"
            );
        }
    }

    /// Numbers an answer left out: asked again as a list once (a glitch), then one by one (a
    /// provider that omits unknown numbers answers a lone one), then failed.
    fn ask_again(
        &self,
        missing: Vec<E164>,
        rounds: usize,
        pending: &mut Vec<(Vec<E164>, usize)>,
        failed: &mut Vec<E164>,
    ) {
        match missing.len() {
            0 => {}
            _ if rounds >= self.policy.max_retries => failed.extend(missing),
            1 => pending.push((missing, rounds + 1)),
            _ if rounds == 0 => pending.push((missing, 1)),
            _ => pending.extend(missing.into_iter().map(|n| (vec![n], rounds + 1))),
        }
    }

    /// A list that got no answer: split it (rejected whole), stop the job (credentials, a
    /// redirect), leave it unasked (the job is stopping), or fail its numbers.
    fn after_failure(
        &self,
        error: ProviderError,
        list: Vec<E164>,
        rounds: usize,
        pending: &mut Vec<(Vec<E164>, usize)>,
        failed: &mut Vec<E164>,
    ) {
        match error.class() {
            ErrorClass::BadRequest if list.len() > 1 => {
                self.counters.splits.fetch_add(1, Ordering::Relaxed);
                let (left, right) = list.split_at(list.len() / 2);
                pending.push((right.to_vec(), rounds));
                pending.push((left.to_vec(), rounds));
            }
            ErrorClass::Auth => self.stop(Stop::AuthRejected(error.to_string())),
            ErrorClass::Settings => self.stop(Stop::Redirected(error.to_string())),
            ErrorClass::Fatal | ErrorClass::BadRequest => failed.extend(list),
            _ if self.is_stopping() => {}
            _ => failed.extend(list),
        }
    }

    /// One list, sent until it gets an answer or an error that retrying will not fix, with how
    /// many of its numbers the last try asked (see [`Sent::asked`]); `None` when the job
    /// stopped before it could be sent.
    async fn request_with_retries(
        &self,
        list: &[E164],
    ) -> Option<(usize, Result<Answered, ProviderError>)> {
        let mut backoff = self.policy.backoff.build();
        let mut blocked_pause = self.policy.blocked_pause;
        loop {
            let sent = self.send(list).await?;
            let error = match sent.result {
                Ok(answered) => return Some((sent.asked, Ok(answered))),
                Err(e) => e,
            };
            let failed = Some((sent.asked, Err(error.clone())));
            self.counters.error(error.label());
            if self.is_stopping() {
                return failed;
            }
            match error.class() {
                ErrorClass::Transient => {
                    let Some(delay) = backoff.next() else {
                        return failed;
                    };
                    let delay = (self.policy.jitter)(delay);
                    tracing::debug!(error = %error, delay_ms = delay.as_millis() as u64, "retrying");
                    // Before any answer, the next try (whichever list it is) waits too.
                    match self.control.gate.is_open() {
                        true => tokio::time::sleep(delay).await,
                        false => self.pause_all(delay),
                    }
                }
                ErrorClass::RateLimited => {
                    // Over a limit despite pacing: everyone waits a window and the rate drops.
                    self.slow_down();
                    self.pause_all(self.policy.limited_pause);
                }
                ErrorClass::Blocked => {
                    if !self.pause_for_block(blocked_pause, &error) {
                        return failed;
                    }
                    blocked_pause *= BLOCKED_PAUSE_FACTOR;
                }
                ErrorClass::Auth
                | ErrorClass::Settings
                | ErrorClass::BadRequest
                | ErrorClass::Fatal => return failed,
            }
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Error 4: pauses everyone for `pause`, or stops the job when the pauses so far would
    /// pass `max_blocked_wait`. Returns whether the request may be sent again.
    fn pause_for_block(&self, pause: Duration, error: &ProviderError) -> bool {
        let total = {
            let mut total = self.control.blocked_total.lock().unwrap();
            *total += pause;
            *total
        };
        let max = self.policy.max_blocked_wait;
        if total > max {
            let max = humantime::format_duration(max);
            self.stop(Stop::Blocked(format!(
                "{error}; blocked for more than {max}"
            )));
            return false;
        }
        tracing::warn!(
            pause_s = pause.as_secs(),
            "the provider blocked our IP (error 4): pausing all requests"
        );
        self.pause_all(pause);
        true
    }

    fn slow_down(&self) {
        let mut cap = self.control.rate_cap.lock().unwrap();
        *cap = (*cap * 3 / 4).max(1);
        tracing::warn!(
            limit = *cap,
            "the provider answered error 9: pausing a window and lowering the request rate"
        );
    }
}

#[cfg(test)]
mod tests;
