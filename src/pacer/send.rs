//! The request path: the stages a request passes on its way to the wire, in the order written
//! in `Pacer::send`, and what each answer teaches the run before the policy acts on it.

use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::accounts::{Account, Slot};
use super::gate::Turn;
use super::reaction::{reaction, Reaction};
use super::{Pacer, Sent, Stop};
use crate::normalize::E164;
use crate::provider::answer::{self, Answered};
use crate::provider::ProviderError;

impl Pacer {
    /// Sends one request through every stage, in the order written here, which is the order
    /// the descriptions of the pacer point at. `None`: nothing was sent (the job is stopping).
    /// A request whose login is dropped while it waits starts over, with another (the loop).
    /// The sent request keeps its login's gate until the caller drops it ([`Sent`]).
    pub(super) async fn send(&self, list: &[E164]) -> Option<Sent<'_>> {
        loop {
            // 1. Account: a free slot of whichever account has one (`concurrency` requests out
            //    at once per login), through that account's first-request gate: until the
            //    provider has answered the login, one at a time, two at most, the second for
            //    the first number of its batch only.
            let (slot, turn) = self.turn().await?;
            let account = slot.account();
            let asked = match turn {
                Turn::Alone {
                    one_number: true, ..
                } => &list[..1],
                _ => list,
            };
            // 2. Identical-request guard: `identical_limit` sends of this very batch per
            //    window, per login.
            let same_list = account.limits.identical.window(asked);
            let _same = same_list.acquire(u32::MAX).await;
            // 3. Numbers limiter, with `number_limit`: the batch's length per window, per login.
            let _numbers = match &account.limits.numbers {
                Some(w) => Some(w.acquire_weighted(asked.len() as u32, u32::MAX).await),
                None => None,
            };
            // 4. Request-rate limiter, at the login's rate, with fewer than its cap of requests
            //    out at once: both lowered after error 9 (`adaptive.rs`).
            let caps = account.caps();
            let _rate = account
                .limits
                .requests
                .acquire_capped(caps.rate, caps.at_once)
                .await;
            // 4b. The same limits over every run on the machine under this login, when they are
            //     shared (`shared.rs`): requests, identical requests, numbers, requests at once.
            let _shared = match &account.limits.shared {
                Some(shared) => Some(shared.acquire(asked).await),
                None => None,
            };
            // 5. Pauses: every account's after error 4, the login's after error 9 (or a
            //    back-off before its first answer). Waited last, so that a pause that began
            //    while this request waited above still holds it back.
            self.wait_out_pauses(account).await;
            if self.is_stopping() {
                return None;
            }
            if account.is_dropped() {
                continue;
            }
            // 6. Timeout, around the request itself.
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            account.sent();
            let sent_at = Instant::now();
            let timeout = self.policy.timeout;
            let raw = match tokio::time::timeout(timeout, account.client.send(asked)).await {
                Ok(raw) => raw,
                Err(_) => Err(ProviderError::Timeout(timeout)),
            };
            let result = raw
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|raw| answer::read(raw, asked));
            let sent = Sent {
                account: slot.index(),
                turn,
                asked: asked.len(),
                sent_at,
                raw: raw.ok(),
                result,
            };
            self.learn(slot.index(), asked, &sent);
            return Some(sent);
        }
    }

    /// Stage 1: a free slot of a live account whose gate lets the request go. A gate that lets
    /// nothing more through is an account's whose two tries went unanswered, which `learn`
    /// dropped before that gate let the next request in: the request takes another slot.
    async fn turn(&self) -> Option<(Slot<'_>, Turn<'_>)> {
        loop {
            let slot = self.accounts.take().await?;
            match slot.account().gate.enter().await {
                Turn::Closed => continue,
                // Dropped while this request waited for its gate.
                _ if slot.account().is_dropped() => continue,
                turn => return Some((slot, turn)),
            }
        }
    }

    /// What every answer teaches the run, before the policy acts on it: whether the login is
    /// answered (or refused, or spent its tries), the rate may recover, a rejected body is
    /// worth keeping, a value could not be read, the provider's address redirects.
    fn learn(&self, index: usize, list: &[E164], sent: &Sent<'_>) {
        let account = self.accounts.get(index);
        let over_limit = matches!(
            &sent.result,
            Err(e) if reaction(e.class()) == Reaction::PauseLogin
        );
        let last_try_failed = match over_limit {
            // Refused for the login's limit (another run or machine filled the window): no
            // verdict on the login, so its first-request gate gets the try back.
            true => {
                account.gate.give_back();
                false
            }
            false => account.gate.record(sent.result.is_ok()),
        };
        let error = match &sent.result {
            Ok(answered) => {
                account.answered();
                account.record(answered.answers.len(), None);
                self.note_unread(answered);
                return;
            }
            Err(error) => error,
        };
        self.counters.error(error.label());
        account.record(0, Some(error.label()));
        if let (ProviderError::Malformed(_), Some(raw), Some(kept)) =
            (error, &sent.raw, &self.rejected)
        {
            kept.keep(list, raw, error);
        }
        let why = format!("neither of the first two requests was answered, the last: {error}");
        match reaction(error.class()) {
            Reaction::DropLogin => self.drop_account(index, true, error.to_string()),
            Reaction::Stop(cause) => self.stop(cause.stop(error.to_string())),
            // Error 4 blocks the IP, whichever login asked.
            Reaction::PauseAll if last_try_failed => self.stop(Stop::Blocked(why)),
            _ if last_try_failed => self.drop_account(index, false, why),
            Reaction::PauseLogin => account.refused(sent.sent_at),
            _ => {}
        }
    }

    /// Stops sending with the account `index`, for `why` (`refused`: the provider refused its
    /// credentials), naming its login; the run goes on with the others. With none left the job
    /// stops: exit 5 when every one was refused.
    fn drop_account(&self, index: usize, refused: bool, why: String) {
        let login = &self.accounts.get(index).login;
        let left = self.accounts.drop_account(index, refused, why.clone());
        if left > 0 {
            tracing::error!(
                login = %login,
                left,
                "dropping the account `{login}`: {why}; the run goes on with the other {left}"
            );
            return;
        }
        let all = self
            .accounts
            .dropped()
            .into_iter()
            .map(|(login, why)| format!("login `{login}`: {why}"))
            .collect::<Vec<_>>()
            .join("; ");
        self.stop(match self.accounts.all_refused() {
            true => Stop::AuthRejected(all),
            false => Stop::Unconfirmed(all),
        });
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

    /// Waits until neither every account's pause nor `account`'s holds.
    async fn wait_out_pauses(&self, account: &Account) {
        loop {
            let everyone = *self.control.paused_until.lock().unwrap();
            let this_login = *account.paused_until.lock().unwrap();
            match everyone.max(this_login) {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => return,
            }
        }
    }
}
