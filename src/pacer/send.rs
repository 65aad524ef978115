//! The request path: the stages a request passes on its way to the wire, in the order written
//! in `Pacer::send`, and what each answer teaches the run before the policy acts on it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::gate::Turn;
use super::{Pacer, Sent, Stop};
use crate::normalize::E164;
use crate::provider::answer::{self, Answered};
use crate::provider::ProviderError;

impl Pacer {
    /// Sends one request through every stage, in the order written here, which is the order
    /// the descriptions of the pacer point at. `None`: nothing was sent (the job is stopping).
    pub(super) async fn send(&self, list: &[E164]) -> Option<Sent> {
        // 1. First-request gate: until a request is answered, one at a time, two at most, the
        //    second for the first number of its list only.
        let turn = self.control.gate.enter().await;
        let list = match turn {
            Turn::Closed => return None,
            Turn::Alone {
                one_number: true, ..
            } => &list[..1],
            _ => list,
        };
        // 2. Identical-request guard: `identical_limit` sends of this very list per window.
        let same_list = self.limits.identical.window(list);
        let _same = same_list.acquire(u32::MAX).await;
        // 3. Concurrency cap: `concurrency` requests out at once.
        let _out = self
            .limits
            .concurrency
            .acquire()
            .await
            .expect("never closed");
        // 4. Numbers limiter, with `number_limit`: the list's length per window.
        let _numbers = match &self.limits.numbers {
            Some(w) => Some(w.acquire_weighted(list.len() as u32, u32::MAX).await),
            None => None,
        };
        // 5. Request-rate limiter, at the rate lowered after error 9.
        let cap = *self.control.rate_cap.lock().unwrap();
        let _slot = self.limits.requests.acquire(cap).await;
        // 6. Job-wide pause after error 9 or 4 (or a back-off before any answer). Waited last,
        //    so that a pause that began while this request waited above still holds it back.
        self.wait_out_pause().await;
        if self.is_stopping() {
            return None;
        }
        // 7. Timeout, around the request itself.
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let raw = match tokio::time::timeout(self.limits.timeout, self.client.send(list)).await {
            Ok(raw) => raw,
            Err(_) => Err(ProviderError::Timeout(self.limits.timeout)),
        };
        let result = raw.clone().and_then(|raw| answer::read(&raw, list));
        let sent = Sent {
            asked: list.len(),
            raw: raw.ok(),
            result,
        };
        self.learn(list, &sent);
        drop(turn);
        Some(sent)
    }

    /// What every answer teaches the run, before the policy acts on it: whether the
    /// credentials are answered, the rate may recover, a rejected body is worth keeping, a
    /// value could not be read.
    fn learn(&self, list: &[E164], sent: &Sent) {
        let last_try_failed = self.control.gate.record(sent.result.is_ok());
        match &sent.result {
            Ok(answered) => {
                self.speed_up();
                self.note_unread(answered);
            }
            Err(error) => {
                if let (ProviderError::Malformed(_), Some(raw), Some(kept)) =
                    (error, &sent.raw, &self.rejected)
                {
                    kept.keep(list, raw, error);
                }
                if last_try_failed {
                    self.stop(Stop::unconfirmed(error));
                }
            }
        }
    }

    /// Logs each value that could not be read once per run, and counts unreadable entries.
    fn note_unread(&self, answered: &Answered) {
        let mut logged = self.control.unread_logged.lock().unwrap();
        for unread in &answered.unread {
            if logged.insert(unread.clone()) {
                tracing::warn!(
                    field = unread.field,
                    value = %unread.value,
                    "the provider sent a value that cannot be read: stored empty"
                );
            }
        }
        for why in &answered.unreadable {
            tracing::debug!(entry = %why, "an entry that cannot be read: its number is asked again");
            self.counters.error("unreadable_entry".into());
        }
    }

    async fn wait_out_pause(&self) {
        loop {
            let until = *self.control.paused_until.lock().unwrap();
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => return,
            }
        }
    }

    pub(super) fn pause_all(&self, pause: Duration) {
        let until = Instant::now() + pause;
        let mut paused = self.control.paused_until.lock().unwrap();
        if paused.is_none_or(|t| t < until) {
            *paused = Some(until);
        }
    }

    fn speed_up(&self) {
        let mut cap = self.control.rate_cap.lock().unwrap();
        if *cap < self.limits.requests.limit() {
            *cap += 1;
        }
    }
}
