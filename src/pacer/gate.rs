//! The first-request gate: until the provider has answered a request, requests go one at a
//! time and at most [`TRIES`] go out, so credentials it has not accepted cost at most two
//! requests, never `concurrency` of them and never a third. The second try is one number:
//! whatever it gets (found, not found, rejected) is an answer, where a list may be refused
//! whole for one bad number in it.
//!
//! Contract: [`FirstRequestGate::enter`] gives a request its turn (or none is needed any more,
//! or no more may go); [`FirstRequestGate::record`] learns how each request ended and says when
//! the last try allowed has failed, which stops the job.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use tokio::sync::{Mutex, MutexGuard};

/// Requests sent before the provider has answered one.
pub const TRIES: u32 = 2;

/// See the module's contract.
#[derive(Debug, Default)]
pub struct FirstRequestGate {
    answered: AtomicBool,
    tries: AtomicU32,
    alone: Mutex<()>,
}

/// A request's passage through the gate.
#[derive(Debug)]
pub enum Turn<'a> {
    /// The provider has answered a request: no gate any more.
    Open,
    /// This request goes out alone, holding the gate until it has recorded how it ended.
    Alone { _held: MutexGuard<'a, ()> },
    /// The next try must be one number: split it off and ask it first.
    OneNumberFirst,
    /// Every try is spent and none was answered: nothing more may be sent.
    Closed,
}

impl FirstRequestGate {
    /// Whether the provider has answered a request.
    pub fn is_open(&self) -> bool {
        self.answered.load(Ordering::SeqCst)
    }

    /// Waits for the turn of a request for `numbers` numbers.
    pub async fn enter(&self, numbers: usize) -> Turn<'_> {
        if self.is_open() {
            return Turn::Open;
        }
        let alone = self.alone.lock().await;
        match self.tries.load(Ordering::SeqCst) {
            _ if self.is_open() => Turn::Open,
            tries if tries >= TRIES => Turn::Closed,
            tries if tries + 1 == TRIES && numbers > 1 => Turn::OneNumberFirst,
            _ => {
                self.tries.fetch_add(1, Ordering::SeqCst);
                Turn::Alone { _held: alone }
            }
        }
    }

    /// Records whether a request was answered; `true` when it was the last try allowed and
    /// no request has been answered.
    pub fn record(&self, answered: bool) -> bool {
        if answered {
            self.answered.store(true, Ordering::SeqCst);
        }
        !self.is_open() && self.tries.load(Ordering::SeqCst) >= TRIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_tries_the_second_of_one_number_then_closed_unless_one_is_answered() {
        let gate = FirstRequestGate::default();
        assert!(matches!(gate.enter(10).await, Turn::Alone { .. }));
        assert!(!gate.record(false));
        assert!(matches!(gate.enter(10).await, Turn::OneNumberFirst));
        let second = gate.enter(1).await;
        assert!(matches!(second, Turn::Alone { .. }));
        assert!(gate.record(false), "the last try failed");
        drop(second);
        assert!(matches!(gate.enter(1).await, Turn::Closed));

        let gate = FirstRequestGate::default();
        assert!(matches!(gate.enter(1).await, Turn::Alone { .. }));
        assert!(!gate.record(false));
        assert!(matches!(gate.enter(1).await, Turn::Alone { .. }));
        assert!(!gate.record(true));
        assert!(matches!(gate.enter(10).await, Turn::Open));
        assert!(
            !gate.record(false),
            "once answered, failures are the policy's"
        );
    }
}
