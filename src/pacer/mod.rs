//! Pacing and resilience: every request to the provider goes through one [`Pacer`].
//!
//! Contract: [`Pacer::ask`] takes a batch of numbers and returns, for each, a terminal answer
//! or a failure, or stops the whole job ([`Stop`]). The stages a request passes on its way to
//! the wire, and their order, are written in one place: `Pacer::send`, whose first stage gives
//! the request a free slot of whichever account has one. What follows each class of failure
//! (retry after a back-off, pause a login or every login, drop a login, split the batch, give
//! up, stop) is one table, `reaction.rs`; [`Pacer::ask`] here acts on it, and asks again for
//! numbers an answer left out. `send.rs` holds the request path, `accounts.rs` the accounts and
//! their dispatcher, `sizing.rs` the batches' length, `window.rs` the limiters, `gate.rs` the
//! first-request gate, `adaptive.rs` a login's rate and requests at once as error 9 and clean
//! answers move them, `shared.rs` a login's limits shared with every run on the machine.

mod accounts;
mod adaptive;
mod gate;
mod reaction;
mod send;
mod shared;
mod sizing;
mod window;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use rand::Rng;
use tokio::time::Instant;

use crate::config::ProviderConfig;
use crate::normalize::E164;
use crate::plan::Plan;
use crate::provider::answer::{Answered, UnreadValue};
use crate::provider::rejected::RejectedBodies;
use crate::provider::{Client, NumberAnswer, ProviderError, RawAnswer};
use crate::state::ListLimit;
pub use accounts::AccountFigures;
use accounts::{Account, Accounts};
use reaction::{reaction, Reaction};
use shared::SharedLogin;
pub use sizing::{BatchSizer, AUTO_START};

/// How many runs on this machine hold `login` of the job's provider now, sharing its limits
/// (for `plan` to show). Zero for a sandbox a run starts itself, which no other run reaches.
pub fn runs_holding(c: &ProviderConfig, login: &str) -> usize {
    match PacerBuilder::shared_dir(c) {
        Some((dir, host)) => shared::runs_holding_in(&dir, &host, login),
        None => 0,
    }
}

/// Why the whole job must stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Error 2: the provider refused the credentials (or our IP) of every account.
    AuthRejected(String),
    /// Error 4 went on past `provider.max_blocked_wait`, or answered an account's two first
    /// requests.
    Blocked(String),
    /// Every account was dropped, not every one refused: some got no answer to either of their
    /// first two requests (an HTML page, a broken server, ...). The numbers not asked end
    /// `failed`.
    Unconfirmed(String),
    /// The provider's address redirects: `provider.base_url` needs fixing.
    Redirected(String),
    /// The provider's certificate cannot be verified: the message says which setting fixes it.
    Untrusted(String),
    /// The run was asked to stop (signal).
    Interrupted,
    /// The state store could not keep an answer: nothing more is sent.
    StateFailed,
}

/// One request as it went: the answer as it came off the wire, if any came, and what it said.
#[derive(Debug)]
pub struct Sent<'a> {
    /// The index of that login's account.
    account: usize,
    /// The login's first-request gate, held (before its first answer) until the caller has
    /// acted on this answer: the pause it calls for is set before the login's next try goes.
    turn: gate::Turn<'a>,
    /// How many numbers of the batch were asked: all, except on the last try before any answer,
    /// which asks for the first alone.
    pub asked: usize,
    /// When it went out.
    sent_at: Instant,
    /// The answer's status, content type and bytes; `None` when none came (timeout,
    /// connection failure, redirect).
    pub raw: Option<RawAnswer>,
    /// What the answer said, or why it said nothing.
    pub result: Result<Answered, ProviderError>,
}

/// A batch to look up, as [`Pacer::next_batch`] cuts it.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub numbers: Vec<E164>,
    /// Whether its length is the one `batch_size = "auto"` is trying (see `sizing`).
    pub trial: bool,
}

impl From<Vec<E164>> for Batch {
    fn from(numbers: Vec<E164>) -> Batch {
        Batch {
            numbers,
            trial: false,
        }
    }
}

/// What became of a batch. Numbers in neither batch were not asked: the job is stopping.
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
    /// Batches split in two after the provider rejected them whole.
    pub splits: AtomicU64,
    /// Failures by [`ProviderError::label`].
    pub errors: Mutex<HashMap<String, u64>>,
}

impl PacerCounters {
    fn error(&self, label: String) {
        *self.errors.lock().unwrap().entry(label).or_default() += 1;
    }
}

/// The settings of what the pacer does after each class of failure (which reaction is the
/// table in `reaction.rs`): how long, how often.
struct Policy {
    /// Back-off of transient failures: exponential, `max_retries` times at most.
    backoff: ExponentialBuilder,
    /// Applied to each back-off delay: [`full_jitter`], or none in tests.
    jitter: fn(Duration) -> Duration,
    /// Also the rounds of asking again for numbers an answer left out.
    max_retries: usize,
    /// How long an account pauses after error 9: the provider's window.
    limited_pause: Duration,
    /// The first pause of every account after error 4; it doubles on each repeat.
    blocked_pause: Duration,
    /// Past this much pausing for error 4, the job stops.
    max_blocked_wait: Duration,
    /// The longest a request may take.
    timeout: Duration,
}

/// What the answers so far decided for every request, whatever its account: set by
/// [`Pacer::ask`]'s policy, read by the stages of `Pacer::send`.
struct Control {
    /// Set once a batch's entries came back without a usable `phone`: from then on every
    /// request asks for one number.
    singles: AtomicBool,
    /// Values that could not be read, each logged once.
    unread_logged: Mutex<HashSet<UnreadValue>>,
    /// No request of any account is sent before this instant (error 4: the IP is blocked).
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
    accounts: Accounts,
    sizer: BatchSizer,
    policy: Policy,
    control: Control,
    rejected: Option<RejectedBodies>,
    /// What the pacer did so far, over every account.
    pub counters: PacerCounters,
}

/// Builds a [`Pacer`] from the job's provider settings: the one place where the accounts, the
/// policy and the control are made and put together with the clients.
pub struct PacerBuilder {
    config: ProviderConfig,
    jitter: fn(Duration) -> Duration,
    rejected: Option<RejectedBodies>,
    remembered: Option<ListLimit>,
}

impl PacerBuilder {
    /// A builder for the job's `[provider]` settings.
    pub fn new(config: &ProviderConfig) -> Self {
        PacerBuilder {
            config: config.clone(),
            jitter: full_jitter,
            rejected: None,
            remembered: None,
        }
    }

    /// Keeps the first answers the parser rejects (see `provider::rejected`).
    pub fn keep_rejected(mut self, rejected: RejectedBodies) -> Self {
        self.rejected = Some(rejected);
        self
    }

    /// Starts `batch_size = "auto"` from what an earlier run learned of the host.
    pub fn remembering(mut self, limit: Option<ListLimit>) -> Self {
        self.remembered = limit;
        self
    }

    /// Back-off delays exactly on the exponential schedule, for tests of the schedule.
    #[cfg(test)]
    fn without_jitter(self) -> Self {
        self.jitter(|d| d)
    }

    /// Back-off delays through `jitter` instead of [`full_jitter`], for tests.
    #[cfg(test)]
    fn jitter(mut self, jitter: fn(Duration) -> Duration) -> Self {
        self.jitter = jitter;
        self
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
            timeout: c.timeout,
        }
    }

    fn control() -> Control {
        Control {
            singles: AtomicBool::new(false),
            unread_logged: Mutex::new(HashSet::new()),
            paused_until: Mutex::new(None),
            blocked_total: Mutex::new(Duration::ZERO),
            stop: Mutex::new(None),
        }
    }

    /// Where the logins' limits are shared with other runs, and the provider's host they are
    /// shared for: `None` for a sandbox the run starts itself, which no other run reaches.
    fn shared_dir(c: &ProviderConfig) -> Option<(PathBuf, String)> {
        let host = shared::provider_host(c)?;
        match shared::shared_dir(c.shared_limits_dir.as_deref()) {
            Ok(dir) => Some((dir, host)),
            Err(e) => {
                tracing::warn!("the logins' limits cannot be shared with other runs on this machine ({e}); this run keeps them alone");
                None
            }
        }
    }

    /// This run's part in the limits of `login`, shared in `dir`.
    fn share(dir: &Path, host: &str, login: &str, c: &ProviderConfig) -> Option<SharedLogin> {
        SharedLogin::open(dir, host, login, c)
            .inspect_err(|e| tracing::warn!(dir = %dir.display(), "the login's limits cannot be shared with other runs on this machine ({e}); this run keeps them alone"))
            .ok()
    }

    /// The pacer, sending through `clients`, one account each (at least one).
    pub fn build(self, clients: Vec<Box<dyn Client>>) -> Pacer {
        let c = &self.config;
        assert!(!clients.is_empty(), "a pacer needs an account");
        let shared_dir = Self::shared_dir(c);
        let accounts = clients
            .into_iter()
            .map(|client| {
                let shared = shared_dir
                    .as_ref()
                    .and_then(|(dir, host)| Self::share(dir, host, client.login(), c));
                Account::new(client, c, shared)
            })
            .collect();
        Pacer {
            accounts: Accounts::new(accounts, c.concurrency.get()),
            sizer: BatchSizer::new(c.batch_size, c.max_batch_size, self.remembered),
            policy: Self::policy(c, self.jitter),
            control: Self::control(),
            rejected: self.rejected,
            counters: PacerCounters::default(),
        }
    }
}

impl Pacer {
    /// How many requests may be in flight at once, over the accounts still in use.
    pub fn concurrency(&self) -> usize {
        self.accounts.concurrency()
    }

    /// How many batches to keep cut, out or waiting for a slot: twice the slots, so no slot waits
    /// for a batch; but one at a time while `auto` is still finding its length, so that no batch
    /// is cut at a length the next answer outgrows (a few batches in a row, once per host).
    pub fn batches_ahead(&self) -> usize {
        match self.sizer.settled() {
            true => self.concurrency() * 2,
            false => 1,
        }
    }

    /// Each account's figures so far.
    pub fn accounts(&self) -> Vec<AccountFigures> {
        self.accounts.figures()
    }

    /// The batches' length and why (see `sizing`).
    pub fn batch_size(&self) -> (usize, String) {
        self.sizer.choice()
    }

    /// What the run learned of the longest batch the provider takes (with `auto`).
    pub fn list_limit(&self) -> Option<ListLimit> {
        self.sizer.learned()
    }

    /// The next batch to look up from `plan`, as long as the sizer says; `None` when none is left.
    pub fn next_batch(&self, plan: &mut Plan) -> Option<Batch> {
        if plan.is_empty() {
            return None;
        }
        let length = self.sizer.next();
        Some(Batch {
            numbers: plan.take(length.len),
            trial: length.trial,
        })
    }

    /// Why the job stopped, if it did.
    pub fn stopped(&self) -> Option<Stop> {
        self.control.stop.lock().unwrap().clone()
    }

    /// Asks that no further request be sent; requests in flight finish.
    pub fn stop(&self, why: Stop) {
        self.control.stop.lock().unwrap().get_or_insert(why);
        self.accounts.close();
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
    pub async fn probe(&self, numbers: &[E164]) -> Option<Sent<'_>> {
        self.send(numbers).await
    }

    /// Looks up a batch: reacts to each failure as the table in `reaction.rs` says (retries,
    /// pauses, splits, ...), and asks again for numbers the answer left out.
    pub async fn ask(&self, batch: impl Into<Batch>) -> BatchResult {
        let batch = batch.into();
        let mut result = BatchResult::default();
        let mut splits = Splits::default();
        let mut pending = vec![Ask::new(batch.numbers, 0)];
        while let Some(ask) = pending.pop() {
            if self.is_stopping() {
                continue;
            }
            if ask.list.len() > 1 && self.control.singles.load(Ordering::SeqCst) {
                pending.extend(ask.list.into_iter().map(|n| Ask::new(vec![n], ask.rounds)));
                continue;
            }
            let Some((asked, outcome)) = self.request_with_retries(&ask.list).await else {
                continue;
            };
            // The rest of a batch whose first number went alone is still to ask; the part asked
            // is no longer a half of anything.
            let mut ask = ask;
            if asked < ask.list.len() {
                pending.push(Ask::new(ask.list.split_off(asked), ask.rounds));
                ask.half_of = None;
            }
            match outcome {
                Ok(answered) => {
                    if let Some(len) = ask.half_of.and_then(|split| splits.answered(split)) {
                        self.sizer.too_long(len);
                    }
                    self.after_answer(answered, ask, &mut pending, &mut result);
                }
                Err(e) => self.after_failure(e, ask, &mut splits, &mut pending, &mut result.failed),
            }
        }
        if batch.trial {
            self.sizer.trial_done();
        }
        result
    }

    /// A batch answered: its answers kept, the numbers left out asked again.
    fn after_answer(
        &self,
        answered: Answered,
        ask: Ask,
        pending: &mut Vec<Ask>,
        result: &mut BatchResult,
    ) {
        let Ask { list, rounds, .. } = ask;
        self.sizer.taken(list.len());
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
            pending.extend(missing.into_iter().map(|n| Ask::new(vec![n], rounds)));
        } else {
            self.ask_again(missing, rounds, pending, &mut result.failed);
        }
    }

    /// A batch's entries came back without a usable `phone`: no batch answer can be paired with
    /// its numbers, so from now on every request asks for one number (logged once).
    fn switch_to_singles(&self, list_len: usize) {
        if !self.control.singles.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                list = list_len,
                "the provider's list answers carry no usable `phone`: asking one number per request from now on (up to batch_size times the requests)"
            );
        }
    }

    /// Numbers an answer left out: asked again as a batch once (a glitch), then one by one (a
    /// provider that omits unknown numbers answers a lone one), then failed.
    fn ask_again(
        &self,
        missing: Vec<E164>,
        rounds: usize,
        pending: &mut Vec<Ask>,
        failed: &mut Vec<E164>,
    ) {
        match missing.len() {
            0 => {}
            _ if rounds >= self.policy.max_retries => failed.extend(missing),
            1 => pending.push(Ask::new(missing, rounds + 1)),
            _ if rounds == 0 => pending.push(Ask::new(missing, 1)),
            _ => pending.extend(missing.into_iter().map(|n| Ask::new(vec![n], rounds + 1))),
        }
    }

    /// A batch that got no answer: split it (rejected whole), leave it unasked (the job is
    /// stopping, or every account was refused), or fail its numbers.
    fn after_failure(
        &self,
        error: ProviderError,
        ask: Ask,
        splits: &mut Splits,
        pending: &mut Vec<Ask>,
        failed: &mut Vec<E164>,
    ) {
        match reaction(error.class()) {
            Reaction::Split if ask.list.len() > 1 => {
                self.counters.splits.fetch_add(1, Ordering::Relaxed);
                let split = splits.add(ask.list.len());
                let (left, right) = ask.list.split_at(ask.list.len() / 2);
                pending.push(Ask::half(right.to_vec(), ask.rounds, split));
                pending.push(Ask::half(left.to_vec(), ask.rounds, split));
            }
            // What stops the job (a redirect, every account refused) was decided when the
            // answer came (`learn`).
            Reaction::DropLogin | Reaction::Stop(_) => {}
            Reaction::GiveUp | Reaction::Split => failed.extend(ask.list),
            _ if self.is_stopping() => {}
            Reaction::RetryAfter | Reaction::PauseLogin | Reaction::PauseAll => {
                failed.extend(ask.list)
            }
        }
    }

    /// One batch, sent until it gets an answer or an error that retrying will not fix, with how
    /// many of its numbers the last try asked (see [`Sent::asked`]); `None` when the job
    /// stopped before it could be sent.
    async fn request_with_retries(
        &self,
        list: &[E164],
    ) -> Option<(usize, Result<Answered, ProviderError>)> {
        let mut backoff = self.policy.backoff.build();
        let mut blocked_pause = self.policy.blocked_pause;
        loop {
            let Sent {
                asked,
                result,
                account,
                turn,
                ..
            } = self.send(list).await?;
            let error = match result {
                Ok(answered) => return Some((asked, Ok(answered))),
                Err(e) => e,
            };
            let failed = Some((asked, Err(error.clone())));
            if self.is_stopping() {
                return failed;
            }
            let account = self.accounts.get(account);
            match reaction(error.class()) {
                Reaction::RetryAfter => {
                    let Some(delay) = backoff.next() else {
                        return failed;
                    };
                    let delay = (self.policy.jitter)(delay);
                    tracing::debug!(error = %error, delay_ms = delay.as_millis() as u64, "retrying");
                    // Before the account's first answer, its next try (whichever batch) waits too.
                    match account.gate.is_open() {
                        true => tokio::time::sleep(delay).await,
                        false => account.pause(delay),
                    }
                }
                // Over a limit despite pacing: the login waits a window and slows down (`learn`
                // lowered its rate); the batch goes to whichever account is free.
                Reaction::PauseLogin => account.pause(self.policy.limited_pause),
                Reaction::PauseAll => {
                    if !self.pause_for_block(blocked_pause, &error) {
                        return failed;
                    }
                    blocked_pause *= BLOCKED_PAUSE_FACTOR;
                }
                // The account was dropped (`learn`): the batch goes to another one.
                Reaction::DropLogin => {}
                Reaction::Stop(_) | Reaction::Split | Reaction::GiveUp => return failed,
            }
            // Only now may the login's next try (before its first answer) go: after the pause.
            drop(turn);
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Error 4: pauses every account for `pause` (the IP is blocked, not the login), or stops
    /// the job when the pauses so far would pass `max_blocked_wait`. Returns whether the request
    /// may be sent again.
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
        accounts::extend_pause(&self.control.paused_until, pause);
        true
    }
}

/// A batch still to ask in a lookup.
struct Ask {
    list: Vec<E164>,
    /// Rounds already spent on numbers left out of answers.
    rounds: usize,
    /// The refused batch this is a half of (an index into the lookup's [`Splits`]).
    half_of: Option<usize>,
}

impl Ask {
    fn new(list: Vec<E164>, rounds: usize) -> Ask {
        Ask {
            list,
            rounds,
            half_of: None,
        }
    }

    fn half(list: Vec<E164>, rounds: usize, split: usize) -> Ask {
        Ask {
            list,
            rounds,
            half_of: Some(split),
        }
    }
}

/// The batches a lookup split after the provider refused them whole (error 1), each with how
/// many of its halves were answered: a batch whose halves both were was refused for its length.
#[derive(Default)]
struct Splits(Vec<(usize, u8)>);

impl Splits {
    /// A batch of `len` numbers split in two; its index.
    fn add(&mut self, len: usize) -> usize {
        self.0.push((len, 0));
        self.0.len() - 1
    }

    /// A half of split `index` was answered; the refused batch's length once both were.
    fn answered(&mut self, index: usize) -> Option<usize> {
        let (len, halves) = &mut self.0[index];
        *halves += 1;
        (*halves == 2).then_some(*len)
    }
}

#[cfg(test)]
mod tests;
