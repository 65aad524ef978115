//! Pacing and resilience: every request to the provider goes through one [`Pacer`].
//!
//! Contract: [`Pacer::lookup`] takes a batch of numbers and returns, for each, a terminal answer
//! or a failure, or stops the whole job (bad credentials, blocked too long). On its way to the
//! wire a request passes, in this order: a job-wide pause (after error 9 or 4), the
//! identical-request guard, the concurrency cap, the request-rate limiter, and a timeout.
//! Both limiters are sliding windows that count a request from the moment it is sent until a
//! full window (plus a safety margin) after its answer came back, so however long the provider
//! took to receive it, no window as the provider sees it holds more than the limit.
//! Retries take their schedule from `backon` (exponential) with full jitter.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use rand::Rng;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::config::{ProviderConfig, Rate};
use crate::normalize::E164;
use crate::provider::client::SmscClient;
use crate::provider::{ErrorClass, NumberAnswer, ProviderError};

/// Why the whole job must stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Error 2: the provider refused the credentials (or our IP).
    AuthRejected(String),
    /// Error 4 went on past `provider.max_blocked_wait`.
    Blocked(String),
    /// The run was asked to stop (signal).
    Interrupted,
    /// The state store could not keep an answer: nothing more is sent.
    StateFailed,
}

/// What became of a batch.
#[derive(Debug, Default)]
pub struct BatchResult {
    pub answers: Vec<(E164, NumberAnswer)>,
    /// Numbers given up on, with the last error.
    pub failed: Vec<(E164, String)>,
    /// Numbers not asked because the job is stopping.
    pub unasked: Vec<E164>,
}

/// Counters of what the pacer did, for progress and reports.
#[derive(Debug, Default)]
pub struct PacerCounters {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub splits: AtomicU64,
    pub errors: Mutex<HashMap<String, u64>>,
}

impl PacerCounters {
    fn error(&self, label: String) {
        *self.errors.lock().unwrap().entry(label).or_default() += 1;
    }
}

/// A sliding-window limiter. A request takes `weight` units when it is sent (1 for a request
/// limit, its list's length for a numbers limit) and holds them until a full window after it
/// finished.
#[derive(Debug)]
pub struct SlidingWindow {
    limit: u32,
    hold: Duration,
    slots: Mutex<Slots>,
    freed: Notify,
}

#[derive(Debug, Default)]
struct Slots {
    next_id: u64,
    /// Weight, and `None` while the request is in flight, then when it finished.
    held: HashMap<u64, (u32, Option<Instant>)>,
}

/// Units held in a [`SlidingWindow`]; dropping the ticket (the request finished) starts the hold.
#[derive(Debug)]
pub struct Ticket<'a> {
    window: &'a SlidingWindow,
    id: u64,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if let Some(entry) = self.window.slots.lock().unwrap().held.get_mut(&self.id) {
            entry.1 = Some(Instant::now());
        }
        // Waiters recompute when the earliest slot frees.
        self.window.freed.notify_waiters();
    }
}

impl SlidingWindow {
    /// `margin` is the fraction of the window added to each hold, as a safety margin.
    pub fn new(rate: Rate, margin: f64) -> SlidingWindow {
        SlidingWindow {
            limit: rate.count.get(),
            hold: rate.window + rate.window.mul_f64(margin),
            slots: Mutex::new(Slots::default()),
            freed: Notify::new(),
        }
    }

    /// Whether any request still counts against this window.
    fn holds_any(&self) -> bool {
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap();
        slots
            .held
            .retain(|_, (_, done)| done.is_none_or(|t| now.duration_since(t) < self.hold));
        !slots.held.is_empty()
    }

    /// Waits for one free unit (with the limit lowered to `cap` when the pacer slowed down).
    pub async fn acquire(&self, cap: u32) -> Ticket<'_> {
        self.acquire_weighted(1, cap).await
    }

    /// Waits until `weight` units fit under the limit (lowered to `cap`). A request heavier
    /// than the whole limit goes alone, when nothing else is held.
    pub async fn acquire_weighted(&self, weight: u32, cap: u32) -> Ticket<'_> {
        let cap = cap.clamp(1, self.limit);
        loop {
            let notified = self.freed.notified();
            let wait = {
                let now = Instant::now();
                let hold = self.hold;
                let mut slots = self.slots.lock().unwrap();
                slots
                    .held
                    .retain(|_, (_, done)| done.is_none_or(|t| now.duration_since(t) < hold));
                let used: u32 = slots.held.values().map(|(w, _)| *w).sum();
                if used == 0 || used + weight <= cap {
                    let id = slots.next_id;
                    slots.next_id += 1;
                    slots.held.insert(id, (weight, None));
                    return Ticket { window: self, id };
                }
                // The earliest moment enough finished units expire.
                let mut done: Vec<(Instant, u32)> = slots
                    .held
                    .values()
                    .filter_map(|(w, t)| t.map(|t| (t, *w)))
                    .collect();
                done.sort();
                let mut still = used;
                done.into_iter().find_map(|(t, w)| {
                    still -= w;
                    (still == 0 || still + weight <= cap).then(|| t + hold - now)
                })
            };
            match wait {
                Some(wait) => {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = notified => {}
                    }
                }
                // Too much is in flight: wait for a request to finish.
                None => notified.await,
            }
        }
    }
}

/// Limits identical requests: one [`SlidingWindow`] per distinct list of numbers.
#[derive(Debug)]
pub struct IdenticalGuard {
    rate: Rate,
    margin: f64,
    windows: Mutex<HashMap<String, Arc<SlidingWindow>>>,
}

/// Past this many lists, windows nothing holds any more are dropped (a long run sends tens of
/// thousands of distinct lists; only the last window's worth matter).
const IDENTICAL_WINDOWS_KEPT: usize = 256;

impl IdenticalGuard {
    pub fn new(rate: Rate, margin: f64) -> Self {
        IdenticalGuard {
            rate,
            margin,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn window(&self, key: &str) -> Arc<SlidingWindow> {
        let mut windows = self.windows.lock().unwrap();
        if windows.len() >= IDENTICAL_WINDOWS_KEPT && !windows.contains_key(key) {
            windows.retain(|_, w| Arc::strong_count(w) > 1 || w.holds_any());
        }
        windows
            .entry(key.to_string())
            .or_insert_with(|| Arc::new(SlidingWindow::new(self.rate, self.margin)))
            .clone()
    }
}

/// Full jitter: a uniformly random delay between zero and the exponential schedule's.
pub fn full_jitter(delay: Duration) -> Duration {
    delay.mul_f64(rand::rng().random::<f64>())
}

/// How long the pacer pauses everyone after error 4, doubling each time.
const BLOCKED_PAUSE_FACTOR: u32 = 2;

pub struct Pacer {
    client: SmscClient,
    rate: SlidingWindow,
    /// Numbers per window, if the provider counts numbers rather than requests.
    numbers: Option<SlidingWindow>,
    identical: IdenticalGuard,
    concurrency: Semaphore,
    concurrency_cap: usize,
    timeout: Duration,
    retry: ExponentialBuilder,
    max_retries: usize,
    window: Duration,
    blocked_pause: Duration,
    max_blocked_wait: Duration,
    /// The lowered request limit after error 9; recovers by one per clean request.
    cap: Mutex<u32>,
    /// No request is sent before this instant.
    paused_until: Mutex<Option<Instant>>,
    blocked_total: Mutex<Duration>,
    stopping: AtomicBool,
    stop: Mutex<Option<Stop>>,
    /// Set once the provider has accepted a request: until then requests go one at a time, so
    /// wrong credentials cost one request, not `concurrency`.
    credentials_accepted: AtomicBool,
    first_request: tokio::sync::Mutex<()>,
    pub counters: PacerCounters,
}

/// Builds a [`Pacer`]: the one place where the limiter, identical-request guard, concurrency
/// cap, timeout and retry policy are put together.
pub struct PacerBuilder {
    config: ProviderConfig,
}

impl PacerBuilder {
    pub fn new(config: &ProviderConfig) -> Self {
        PacerBuilder {
            config: config.clone(),
        }
    }

    pub fn build(self, client: SmscClient) -> Pacer {
        let c = self.config;
        Pacer {
            client,
            rate: SlidingWindow::new(c.request_limit, c.safety_margin),
            numbers: c
                .number_limit
                .map(|r| SlidingWindow::new(r, c.safety_margin)),
            identical: IdenticalGuard::new(c.identical_limit, c.safety_margin),
            concurrency: Semaphore::new(c.concurrency.get()),
            concurrency_cap: c.concurrency.get(),
            timeout: c.timeout,
            retry: ExponentialBuilder::default()
                .with_min_delay(c.retry_base_delay)
                .with_max_delay(c.retry_max_delay)
                .with_factor(2.0)
                .with_max_times(c.max_retries),
            max_retries: c.max_retries,
            window: c.request_limit.window,
            blocked_pause: c.blocked_pause,
            max_blocked_wait: c.max_blocked_wait,
            cap: Mutex::new(c.request_limit.count.get()),
            paused_until: Mutex::new(None),
            blocked_total: Mutex::new(Duration::ZERO),
            stopping: AtomicBool::new(false),
            stop: Mutex::new(None),
            credentials_accepted: AtomicBool::new(false),
            first_request: tokio::sync::Mutex::new(()),
            counters: PacerCounters::default(),
        }
    }
}

impl Pacer {
    /// How many requests may be in flight at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency_cap
    }

    /// Why the job stopped, if it did.
    pub fn stopped(&self) -> Option<Stop> {
        self.stop.lock().unwrap().clone()
    }

    /// Asks that no further request be sent; requests in flight finish.
    pub fn stop(&self, why: Stop) {
        let mut stop = self.stop.lock().unwrap();
        if stop.is_none() {
            *stop = Some(why);
        }
        self.stopping.store(true, Ordering::SeqCst);
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Looks up a batch: retries transient errors, waits out limits, splits lists the provider
    /// rejects, and asks again for numbers the answer left out.
    pub async fn lookup(&self, numbers: Vec<E164>) -> BatchResult {
        let mut result = BatchResult::default();
        let mut pending = vec![(numbers, 0usize)];
        while let Some((batch, missing_rounds)) = pending.pop() {
            if self.is_stopping() {
                result.unasked.extend(batch);
                continue;
            }
            match self.request_with_retries(&batch).await {
                Ok(answers) => {
                    let answered: std::collections::HashSet<E164> =
                        answers.iter().map(|(n, _)| *n).collect();
                    let missing: Vec<E164> = batch
                        .iter()
                        .copied()
                        .filter(|n| !answered.contains(n))
                        .collect();
                    result.answers.extend(answers);
                    // Numbers the answer left out: asked again as a list once (a glitch), then
                    // one by one (a provider that omits unknown numbers answers a lone one).
                    match missing.len() {
                        0 => {}
                        _ if missing_rounds >= self.max_retries => {
                            result.failed.extend(missing.into_iter().map(|n| {
                                (n, "the provider's answer left this number out".to_string())
                            }));
                        }
                        1 => pending.push((missing, missing_rounds + 1)),
                        _ if missing_rounds == 0 => pending.push((missing, 1)),
                        _ => pending
                            .extend(missing.into_iter().map(|n| (vec![n], missing_rounds + 1))),
                    }
                }
                Err(e) if e.class() == ErrorClass::BadRequest && batch.len() > 1 => {
                    self.counters.splits.fetch_add(1, Ordering::Relaxed);
                    let (left, right) = batch.split_at(batch.len() / 2);
                    pending.push((right.to_vec(), missing_rounds));
                    pending.push((left.to_vec(), missing_rounds));
                }
                Err(e) if e.class() == ErrorClass::Auth => {
                    self.stop(Stop::AuthRejected(e.to_string()));
                    result.unasked.extend(batch);
                }
                Err(e)
                    if self.is_stopping()
                        && !matches!(e.class(), ErrorClass::Fatal | ErrorClass::BadRequest) =>
                {
                    result.unasked.extend(batch);
                }
                Err(e) => {
                    let message = e.to_string();
                    result
                        .failed
                        .extend(batch.into_iter().map(|n| (n, message.clone())));
                }
            }
        }
        result
    }

    /// One list, sent until it gets an answer or an error that retrying will not fix.
    async fn request_with_retries(
        &self,
        batch: &[E164],
    ) -> Result<Vec<(E164, NumberAnswer)>, ProviderError> {
        let mut schedule = self.retry.build();
        let mut blocked_pause = self.blocked_pause;
        loop {
            let error = match self.send(batch).await {
                Ok(answers) => return Ok(answers),
                Err(e) => e,
            };
            if self.is_stopping() {
                return Err(error);
            }
            self.counters.error(error.label());
            match error.class() {
                ErrorClass::Transient => match schedule.next() {
                    Some(delay) if !self.is_stopping() => {
                        let delay = full_jitter(delay);
                        tracing::debug!(error = %error, delay_ms = delay.as_millis() as u64, "retrying");
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(delay).await;
                    }
                    _ => return Err(error),
                },
                ErrorClass::RateLimited => {
                    // Over a limit despite pacing: everyone waits a window and the rate drops.
                    self.slow_down();
                    self.pause_all(self.window);
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                }
                ErrorClass::Blocked => {
                    let total = {
                        let mut total = self.blocked_total.lock().unwrap();
                        *total += blocked_pause;
                        *total
                    };
                    if total > self.max_blocked_wait {
                        self.stop(Stop::Blocked(format!(
                            "{error}; blocked for more than {}",
                            humantime::format_duration(self.max_blocked_wait)
                        )));
                        return Err(error);
                    }
                    tracing::warn!(
                        pause_s = blocked_pause.as_secs(),
                        "the provider blocked our IP (error 4): pausing all requests"
                    );
                    self.pause_all(blocked_pause);
                    blocked_pause *= BLOCKED_PAUSE_FACTOR;
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                }
                ErrorClass::Auth | ErrorClass::BadRequest | ErrorClass::Fatal => return Err(error),
            }
        }
    }

    /// Sends one request through the whole chain: first-request gate, pause, identical guard,
    /// concurrency cap, rate limit, timeout.
    async fn send(&self, batch: &[E164]) -> Result<Vec<(E164, NumberAnswer)>, ProviderError> {
        let _alone = match self.credentials_accepted.load(Ordering::SeqCst) {
            true => None,
            false => Some(self.first_request.lock().await),
        };
        self.wait_out_pause().await;
        let key = batch
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let identical = self.identical.window(&key);
        let _same = identical.acquire(u32::MAX).await;
        let _permit = self
            .concurrency
            .acquire()
            .await
            .expect("the semaphore is never closed");
        self.wait_out_pause().await;
        let cap = *self.cap.lock().unwrap();
        let _numbers = match &self.numbers {
            Some(w) => Some(w.acquire_weighted(batch.len() as u32, u32::MAX).await),
            None => None,
        };
        let _slot = self.rate.acquire(cap).await;
        if self.is_stopping() {
            return Err(ProviderError::Transport("stopping".into()));
        }
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let result = match tokio::time::timeout(self.timeout, self.client.get_operator(batch)).await
        {
            Ok(r) => r,
            Err(_) => Err(ProviderError::Timeout(self.timeout)),
        };
        match &result {
            Ok(_) => {
                self.credentials_accepted.store(true, Ordering::SeqCst);
                self.speed_up();
            }
            Err(e) if !matches!(e.class(), ErrorClass::Auth | ErrorClass::Transient) => {
                // The provider read our credentials and answered: they are good.
                self.credentials_accepted.store(true, Ordering::SeqCst);
            }
            Err(_) => {}
        }
        result
    }

    async fn wait_out_pause(&self) {
        loop {
            let until = *self.paused_until.lock().unwrap();
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => return,
            }
        }
    }

    fn pause_all(&self, pause: Duration) {
        let until = Instant::now() + pause;
        let mut paused = self.paused_until.lock().unwrap();
        if paused.is_none_or(|t| t < until) {
            *paused = Some(until);
        }
    }

    fn slow_down(&self) {
        let mut cap = self.cap.lock().unwrap();
        *cap = (*cap * 3 / 4).max(1);
        tracing::warn!(
            limit = *cap,
            "the provider answered error 9: pausing a window and lowering the request rate"
        );
    }

    fn speed_up(&self) {
        let mut cap = self.cap.lock().unwrap();
        if *cap < self.rate.limit {
            *cap += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(s: &str) -> Rate {
        s.parse().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn sliding_window_never_holds_more_than_the_limit() {
        let window = Arc::new(SlidingWindow::new(rate("20/2s"), 0.0));
        let start = Instant::now();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (window, sent) = (window.clone(), sent.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    let ticket = window.acquire(u32::MAX).await;
                    sent.lock().unwrap().push(Instant::now());
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    drop(ticket);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut sent = sent.lock().unwrap().clone();
        sent.sort();
        assert_eq!(sent.len(), 80);
        for (i, t) in sent.iter().enumerate() {
            let in_window = sent[i..]
                .iter()
                .filter(|u| u.duration_since(*t) < Duration::from_secs(2))
                .count();
            assert!(
                in_window <= 20,
                "{in_window} requests within 2 s from request {i}"
            );
        }
        // 80 requests at 20 per 2 s (each held 30 ms longer) take a little over 6 s.
        let took = sent.last().unwrap().duration_since(start);
        assert!(
            took >= Duration::from_secs(6) && took < Duration::from_millis(6_500),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn identical_requests_wait_for_the_window() {
        let guard = IdenticalGuard::new(rate("3/60s"), 0.0);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..4 {
            let w = guard.window("79161234567,79031234567");
            let t = w.acquire(u32::MAX).await;
            times.push(Instant::now().duration_since(start));
            drop(t);
        }
        assert_eq!(&times[..3], &[Duration::ZERO; 3]);
        assert_eq!(times[3], Duration::from_secs(60));
        // Another list is not held back.
        let other = guard.window("79161234567");
        let _t = other.acquire(u32::MAX).await;
        assert_eq!(
            Instant::now().duration_since(start),
            Duration::from_secs(60)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn identical_guard_forgets_lists_whose_window_passed() {
        let guard = IdenticalGuard::new(rate("3/60s"), 0.0);
        for i in 0..IDENTICAL_WINDOWS_KEPT {
            drop(guard.window(&i.to_string()).acquire(u32::MAX).await);
        }
        assert_eq!(guard.windows.lock().unwrap().len(), IDENTICAL_WINDOWS_KEPT);
        tokio::time::advance(Duration::from_secs(61)).await;
        let live = guard.window("live");
        let _ticket = live.acquire(u32::MAX).await;
        // The old lists' windows have passed: only the live one is left.
        assert_eq!(guard.windows.lock().unwrap().len(), 1);
        // A list still within its window is kept, and still limited.
        drop(_ticket);
        drop(guard.window("live").acquire(u32::MAX).await);
        drop(guard.window("live").acquire(u32::MAX).await);
        let start = Instant::now();
        drop(guard.window("live").acquire(u32::MAX).await);
        assert_eq!(
            Instant::now().duration_since(start),
            Duration::from_secs(60)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn lowered_cap_admits_fewer() {
        let window = SlidingWindow::new(rate("10/1s"), 0.0);
        let start = Instant::now();
        for _ in 0..4 {
            drop(window.acquire(2).await);
        }
        // Two per second: the 3rd and 4th wait one window.
        assert_eq!(Instant::now().duration_since(start), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn weighted_window_caps_numbers_per_window() {
        let window = SlidingWindow::new(rate("250/1s"), 0.0);
        let start = Instant::now();
        let mut at = Vec::new();
        for weight in [100, 100, 100, 50, 300] {
            drop(window.acquire_weighted(weight, u32::MAX).await);
            at.push(Instant::now().duration_since(start).as_millis());
        }
        // 100+100 fit; the third waits for the first to expire; 50 fits beside 100+100; the
        // oversized 300 goes alone once everything expired.
        assert_eq!(at, vec![0, 0, 1000, 1000, 2000]);
    }

    #[test]
    fn backoff_schedule_is_exponential_and_capped_with_full_jitter() {
        let delays: Vec<Duration> = ExponentialBuilder::default()
            .with_min_delay(Duration::from_secs(1))
            .with_max_delay(Duration::from_secs(10))
            .with_factor(2.0)
            .with_max_times(5)
            .build()
            .collect();
        let secs: Vec<u64> = delays.iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 10]);
        for d in delays {
            for _ in 0..100 {
                assert!(full_jitter(d) <= d);
            }
        }
    }
}
