//! The accounts a run sends through, each a lane with the provider's limits of its own, and the
//! dispatcher that gives each request a free slot of whichever account has one.
//!
//! Contract: the provider counts its limits per login, so each [`Account`] holds its own
//! identical-request guard, numbers and request windows, caps on its rate and its requests at
//! once (lowered after error 9, `adaptive.rs`), pause, first-request gate, counters and
//! `concurrency` slots; and, when the provider is reached over the network, its part in the
//! login's limits shared with every run on the machine (`shared.rs`), which then keeps the caps. [`Accounts::take`] waits for a
//! free slot of any live account; slots go back to the end of the line when their request ends,
//! so an account whose requests wait (a full window, a pause) holds its own slots and leaves the
//! others to the rest. A dropped account's slots are never handed out again; once no account
//! is live, or the job stops, [`Accounts::close`] ends every wait with nothing.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::adaptive::{Adaptive, Ceiling};
use super::gate::FirstRequestGate;
use super::shared::{clock_ms, SharedLogin};
use super::window::{IdenticalGuard, SlidingWindow};
use crate::config::ProviderConfig;
use crate::provider::Client;

/// What one account has done so far, for progress and the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AccountFigures {
    /// The provider's login (never the password).
    pub login: String,
    /// Requests sent with this login.
    pub requests: u64,
    /// Numbers the provider answered to this login.
    pub answered: u64,
    /// Failures by [`crate::provider::ProviderError::label`].
    pub errors: BTreeMap<String, u64>,
    /// Why the run stopped using this login, if it did.
    pub dropped: Option<String>,
}

/// The provider's limits as one login keeps them: what a request holds while it is out.
pub(super) struct Limits {
    pub identical: IdenticalGuard,
    /// Numbers per window, if the provider counts numbers rather than requests.
    pub numbers: Option<SlidingWindow>,
    pub requests: SlidingWindow,
    /// The login's limits as every run on the machine shares them, if they are shared.
    pub shared: Option<SharedLogin>,
}

/// One login: its client and everything the provider counts per login.
pub(super) struct Account {
    pub login: String,
    pub client: Box<dyn Client>,
    pub limits: Limits,
    pub gate: FirstRequestGate,
    /// The login's rate and requests at once, lowered after error 9 (when not shared).
    pub adaptive: Mutex<Adaptive>,
    /// The configured limits the caps go back to.
    ceiling: Ceiling,
    /// The instant `adaptive`'s times count from.
    epoch: Instant,
    /// This login sends nothing before this instant (after error 9, or a back-off before its
    /// first answer).
    pub paused_until: Mutex<Option<Instant>>,
    requests: AtomicU64,
    answered: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    /// Why the run stopped using the login, and whether the provider refused its credentials.
    dropped: Mutex<Option<(String, bool)>>,
}

impl Account {
    /// An account sending through `client`, with the job's limits, shared through `shared`.
    pub fn new(client: Box<dyn Client>, c: &ProviderConfig, shared: Option<SharedLogin>) -> Self {
        let ceiling = Ceiling {
            rate: c.request_limit.count.get(),
            at_once: c.concurrency.get() as u32,
        };
        Account {
            login: client.login().to_string(),
            client,
            limits: Limits {
                identical: IdenticalGuard::new(c.identical_limit, c.safety_margin),
                numbers: c
                    .number_limit
                    .map(|r| SlidingWindow::new(r, c.safety_margin)),
                requests: SlidingWindow::new(c.request_limit, c.safety_margin),
                shared,
            },
            gate: FirstRequestGate::default(),
            adaptive: Mutex::new(Adaptive::new(ceiling)),
            ceiling,
            epoch: Instant::now(),
            paused_until: Mutex::new(None),
            requests: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            dropped: Mutex::new(None),
        }
    }

    pub fn is_dropped(&self) -> bool {
        self.dropped.lock().unwrap().is_some()
    }

    /// Counts a request sent.
    pub fn sent(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts what an answer said: `answered` numbers, or the failure `label`.
    pub fn record(&self, answered: usize, error: Option<String>) {
        self.answered.fetch_add(answered as u64, Ordering::Relaxed);
        if let Some(label) = error {
            *self.errors.lock().unwrap().entry(label).or_default() += 1;
        }
    }

    /// Nothing goes out with this login for `pause` (a pause already longer stays).
    pub fn pause(&self, pause: Duration) {
        extend_pause(&self.paused_until, pause);
    }

    /// The rate and the requests at once this run's own windows allow the login now: the
    /// caps, unless the shared file keeps them (then the limits).
    pub fn caps(&self) -> Ceiling {
        match &self.limits.shared {
            Some(_) => self.ceiling,
            None => {
                let a = self.adaptive.lock().unwrap();
                Ceiling {
                    rate: a.rate,
                    at_once: a.at_once,
                }
            }
        }
    }

    /// Error 9 to a request sent at `sent_at`: the login's caps are halved (once per
    /// overrun, `adaptive.rs`), for every run when they are shared.
    pub fn refused(&self, sent_at: Instant) {
        let lowered = match &self.limits.shared {
            Some(shared) => {
                let ago = Instant::now().duration_since(sent_at).as_millis() as u64;
                shared.refused(clock_ms().saturating_sub(ago))
            }
            None => {
                let mut a = self.adaptive.lock().unwrap();
                let ms = |t: Instant| t.duration_since(self.epoch).as_millis() as u64;
                a.refused(ms(sent_at), ms(Instant::now()))
                    .then(|| a.clone())
            }
        };
        if let Some(a) = lowered {
            tracing::warn!(
                login = %self.login,
                limit = a.rate,
                at_once = a.at_once,
                "the provider answered error 9: this login pauses a window and lowers its request rate and concurrency"
            );
        }
    }

    /// A clean answer: after a run of them the login's caps climb back (`adaptive.rs`).
    pub fn answered(&self) {
        let raised = match &self.limits.shared {
            Some(shared) => shared.answered(),
            None => {
                let mut a = self.adaptive.lock().unwrap();
                a.answered(self.ceiling).then(|| a.clone())
            }
        };
        if let Some(a) = raised {
            tracing::debug!(login = %self.login, limit = a.rate, at_once = a.at_once, "the login's rate goes up");
        }
    }

    fn figures(&self) -> AccountFigures {
        AccountFigures {
            login: self.login.clone(),
            requests: self.requests.load(Ordering::Relaxed),
            answered: self.answered.load(Ordering::Relaxed),
            errors: self.errors.lock().unwrap().clone(),
            dropped: self.dropped.lock().unwrap().clone().map(|(why, _)| why),
        }
    }
}

/// Moves `until` to `pause` from now, unless it is already later.
pub(super) fn extend_pause(until: &Mutex<Option<Instant>>, pause: Duration) {
    let end = Instant::now() + pause;
    let mut until = until.lock().unwrap();
    if until.is_none_or(|t| t < end) {
        *until = Some(end);
    }
}

/// Every account of the run, and their free slots.
pub(super) struct Accounts {
    list: Vec<Account>,
    /// Slots per account: requests out at once with one login.
    concurrency: usize,
    /// Free slots, by account index, in the order they came free.
    free: Mutex<VecDeque<usize>>,
    /// One permit per entry of `free`; closed when nothing more may be sent.
    slots: Semaphore,
}

/// A slot of one account, held while a request of that account is on its way and out.
pub(super) struct Slot<'a> {
    accounts: &'a Accounts,
    index: usize,
}

impl<'a> Slot<'a> {
    pub fn index(&self) -> usize {
        self.index
    }

    pub fn account(&self) -> &'a Account {
        &self.accounts.list[self.index]
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if !self.account().is_dropped() {
            self.accounts.free.lock().unwrap().push_back(self.index);
            self.accounts.slots.add_permits(1);
        }
    }
}

impl Accounts {
    /// `concurrency` slots for each account, taken in turn.
    pub fn new(list: Vec<Account>, concurrency: usize) -> Accounts {
        let free: VecDeque<usize> = (0..concurrency).flat_map(|_| 0..list.len()).collect();
        Accounts {
            slots: Semaphore::new(free.len()),
            free: Mutex::new(free),
            concurrency,
            list,
        }
    }

    /// Waits for a free slot of a live account; `None` once closed.
    pub async fn take(&self) -> Option<Slot<'_>> {
        loop {
            self.slots.acquire().await.ok()?.forget();
            let index = self
                .free
                .lock()
                .unwrap()
                .pop_front()
                .expect("a permit for every free slot");
            // A slot of an account dropped since it came free is thrown away.
            if !self.list[index].is_dropped() {
                return Some(Slot {
                    accounts: self,
                    index,
                });
            }
        }
    }

    pub fn get(&self, index: usize) -> &Account {
        &self.list[index]
    }

    /// Stops handing out slots: every wait in [`Self::take`] ends with nothing.
    pub fn close(&self) {
        self.slots.close();
    }

    /// Stops using account `index` for `why` (`refused`: its credentials were); returns how
    /// many accounts are left. An account is dropped once, for its first reason.
    pub fn drop_account(&self, index: usize, refused: bool, why: String) -> usize {
        self.list[index]
            .dropped
            .lock()
            .unwrap()
            .get_or_insert((why, refused));
        self.live()
    }

    /// Whether every account was dropped because the provider refused its credentials.
    pub fn all_refused(&self) -> bool {
        self.list
            .iter()
            .all(|a| matches!(*a.dropped.lock().unwrap(), Some((_, true))))
    }

    /// Accounts not dropped.
    pub fn live(&self) -> usize {
        self.list.iter().filter(|a| !a.is_dropped()).count()
    }

    /// How many requests may be out at once: the live accounts' slots.
    pub fn concurrency(&self) -> usize {
        self.live() * self.concurrency
    }

    /// Each account's figures so far, in the order the accounts were given.
    pub fn figures(&self) -> Vec<AccountFigures> {
        self.list.iter().map(Account::figures).collect()
    }

    /// Each dropped account's login and why, in order.
    pub fn dropped(&self) -> Vec<(String, String)> {
        self.list
            .iter()
            .filter_map(|a| {
                let (why, _) = a.dropped.lock().unwrap().clone()?;
                Some((a.login.clone(), why))
            })
            .collect()
    }
}
