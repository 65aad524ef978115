//! Sliding-window limits: how many requests (or numbers) may be counted against the provider's
//! window at once, and how many times one identical batch may be sent per window.
//!
//! Contract: a [`Ticket`] counts against its [`SlidingWindow`] from the moment it is taken (just
//! before the request is sent) until a full window, plus the safety margin, after it is dropped
//! (the answer came back). The provider receives the request somewhere between those two
//! instants, so however long the network took, no window as the provider sees it holds more
//! than the limit. governor was not used: its GCRA allows bursts a sliding window does not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::Rate;
use crate::normalize::E164;

/// A sliding-window limiter. A request takes `weight` units when it is sent (1 for a request
/// limit, its batch's length for a numbers limit) and holds them until a full window after it
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

impl Slots {
    /// Forgets the units whose hold ended by `now`; returns the units still held.
    fn expire(&mut self, now: Instant, hold: Duration) -> u32 {
        self.held
            .retain(|_, (_, done)| done.is_none_or(|t| now.duration_since(t) < hold));
        self.held.values().map(|(w, _)| *w).sum()
    }
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
        let mut slots = self.slots.lock().unwrap();
        slots.expire(Instant::now(), self.hold);
        !slots.held.is_empty()
    }

    /// Waits for one free unit (with the limit lowered to `cap` when the pacer slowed down).
    pub async fn acquire(&self, cap: u32) -> Ticket<'_> {
        self.acquire_weighted(1, cap).await
    }

    /// Waits for one free unit under the limit lowered to `cap`, with fewer than `at_once`
    /// requests out (not yet answered).
    pub async fn acquire_capped(&self, cap: u32, at_once: u32) -> Ticket<'_> {
        self.acquire_within(1, cap, at_once).await
    }

    /// Waits until `weight` units fit under the limit (lowered to `cap`). A request heavier
    /// than the whole limit goes alone, when nothing else is held.
    pub async fn acquire_weighted(&self, weight: u32, cap: u32) -> Ticket<'_> {
        self.acquire_within(weight, cap, u32::MAX).await
    }

    /// [`Self::acquire_weighted`], with fewer than `at_once` requests out.
    async fn acquire_within(&self, weight: u32, cap: u32, at_once: u32) -> Ticket<'_> {
        let cap = cap.clamp(1, self.limit);
        let at_once = at_once.max(1) as usize;
        loop {
            let notified = self.freed.notified();
            let wait = {
                let now = Instant::now();
                let mut slots = self.slots.lock().unwrap();
                let used = slots.expire(now, self.hold);
                let out = slots.held.values().filter(|(_, t)| t.is_none()).count();
                if out >= at_once {
                    // Too many out: wait for one to be answered.
                    None
                } else if used == 0 || used + weight <= cap {
                    let id = slots.next_id;
                    slots.next_id += 1;
                    slots.held.insert(id, (weight, None));
                    return Ticket { window: self, id };
                } else {
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
                        (still == 0 || still + weight <= cap).then(|| t + self.hold - now)
                    })
                }
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

/// Limits identical requests: one [`SlidingWindow`] per distinct batch of numbers.
#[derive(Debug)]
pub struct IdenticalGuard {
    rate: Rate,
    margin: f64,
    windows: Mutex<HashMap<String, Arc<SlidingWindow>>>,
}

/// Past this many batches, windows nothing holds any more are dropped (a long run sends tens of
/// thousands of distinct batches; only the last window's worth matter).
const IDENTICAL_WINDOWS_KEPT: usize = 256;

impl IdenticalGuard {
    /// At most `rate` sends of one batch, each held the safety `margin` longer.
    pub fn new(rate: Rate, margin: f64) -> Self {
        IdenticalGuard {
            rate,
            margin,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// The window of the batch `batch`, as the provider sees it: its comma-separated numbers.
    pub fn window(&self, batch: &[E164]) -> Arc<SlidingWindow> {
        let key = batch
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",");
        self.window_of(key)
    }

    fn window_of(&self, key: String) -> Arc<SlidingWindow> {
        let mut windows = self.windows.lock().unwrap();
        if windows.len() >= IDENTICAL_WINDOWS_KEPT && !windows.contains_key(&key) {
            windows.retain(|_, w| Arc::strong_count(w) > 1 || w.holds_any());
        }
        windows
            .entry(key)
            .or_insert_with(|| Arc::new(SlidingWindow::new(self.rate, self.margin)))
            .clone()
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
            let w = guard.window(&[E164(79161234567), E164(79031234567)]);
            let t = w.acquire(u32::MAX).await;
            times.push(Instant::now().duration_since(start));
            drop(t);
        }
        assert_eq!(&times[..3], &[Duration::ZERO; 3]);
        assert_eq!(times[3], Duration::from_secs(60));
        // Another batch is not held back.
        let other = guard.window(&[E164(79161234567)]);
        let _t = other.acquire(u32::MAX).await;
        assert_eq!(
            Instant::now().duration_since(start),
            Duration::from_secs(60)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn identical_guard_forgets_batches_whose_window_passed() {
        let guard = IdenticalGuard::new(rate("3/60s"), 0.0);
        for i in 0..IDENTICAL_WINDOWS_KEPT {
            drop(guard.window_of(i.to_string()).acquire(u32::MAX).await);
        }
        assert_eq!(guard.windows.lock().unwrap().len(), IDENTICAL_WINDOWS_KEPT);
        tokio::time::advance(Duration::from_secs(61)).await;
        let live = guard.window_of("live".into());
        let _ticket = live.acquire(u32::MAX).await;
        // The old batches' windows have passed: only the live one is left.
        assert_eq!(guard.windows.lock().unwrap().len(), 1);
        // A batch still within its window is kept, and still limited.
        drop(_ticket);
        drop(guard.window_of("live".into()).acquire(u32::MAX).await);
        drop(guard.window_of("live".into()).acquire(u32::MAX).await);
        let start = Instant::now();
        drop(guard.window_of("live".into()).acquire(u32::MAX).await);
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
    async fn at_once_caps_the_requests_out() {
        let window = Arc::new(SlidingWindow::new(rate("10/1s"), 0.0));
        let first = window.acquire_capped(10, 2).await;
        let _second = window.acquire_capped(10, 2).await;
        let third = {
            let window = window.clone();
            tokio::spawn(async move {
                let _t = window.acquire_capped(10, 2).await;
                Instant::now()
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!third.is_finished(), "a third request out of two allowed");
        let answered = Instant::now();
        drop(first);
        // It goes as soon as one is answered, not a window later.
        assert_eq!(third.await.unwrap(), answered);
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
}
