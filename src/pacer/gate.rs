//! The first-request gate: until the provider has answered a request, requests go one at a
//! time and at most [`TRIES`] go out, so credentials it has not accepted cost at most two
//! requests, never `concurrency` of them and never a third. The second try asks for one
//! number of its batch: whatever one number gets (found, not found, rejected) is an answer,
//! where a batch may be refused whole for one bad number in it.
//!
//! Contract: [`FirstRequestGate::enter`] gives a request its turn (or none is needed any more,
//! or no more may go); [`FirstRequestGate::record`] learns how each request ended and says when
//! the last try allowed has failed, which stops the job. A try the provider refused for the
//! login's limit (error 9, when another run or machine filled its window) is no verdict on the
//! login: [`FirstRequestGate::give_back`] returns it, and the next waits the login's pause.

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
    /// This request goes out alone, holding the gate until it has recorded how it ended;
    /// `one_number`: it is the last try, for the first number of its batch only.
    Alone {
        _held: MutexGuard<'a, ()>,
        one_number: bool,
    },
    /// Every try is spent and none was answered: nothing more may be sent.
    Closed,
}

impl FirstRequestGate {
    /// Whether the provider has answered a request.
    pub fn is_open(&self) -> bool {
        self.answered.load(Ordering::SeqCst)
    }

    /// Waits for this request's turn.
    pub async fn enter(&self) -> Turn<'_> {
        if self.is_open() {
            return Turn::Open;
        }
        let alone = self.alone.lock().await;
        match self.tries.fetch_add(1, Ordering::SeqCst) {
            _ if self.is_open() => Turn::Open,
            tried if tried >= TRIES => Turn::Closed,
            tried => Turn::Alone {
                _held: alone,
                one_number: tried + 1 == TRIES,
            },
        }
    }

    /// Returns the try of a request refused for the login's limit (see the module's contract).
    pub fn give_back(&self) {
        if !self.is_open() {
            let _ = self
                .tries
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| t.checked_sub(1));
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
    async fn two_tries_the_second_for_one_number_then_closed_unless_one_is_answered() {
        let gate = FirstRequestGate::default();
        let first = gate.enter().await;
        assert!(matches!(
            first,
            Turn::Alone {
                one_number: false,
                ..
            }
        ));
        assert!(!gate.record(false));
        drop(first);
        let second = gate.enter().await;
        assert!(matches!(
            second,
            Turn::Alone {
                one_number: true,
                ..
            }
        ));
        assert!(gate.record(false), "the last try failed");
        drop(second);
        assert!(matches!(gate.enter().await, Turn::Closed));

        let gate = FirstRequestGate::default();
        assert!(matches!(gate.enter().await, Turn::Alone { .. }));
        assert!(!gate.record(false));
        assert!(matches!(gate.enter().await, Turn::Alone { .. }));
        assert!(!gate.record(true));
        assert!(matches!(gate.enter().await, Turn::Open));
        assert!(
            !gate.record(false),
            "once answered, failures are the policy's"
        );

        // Tries refused for the login's limit are given back: still two real tries.
        let gate = FirstRequestGate::default();
        for _ in 0..3 {
            let turn = gate.enter().await;
            assert!(matches!(
                turn,
                Turn::Alone {
                    one_number: false,
                    ..
                }
            ));
            gate.give_back();
        }
        assert!(matches!(
            gate.enter().await,
            Turn::Alone {
                one_number: false,
                ..
            }
        ));
        assert!(!gate.record(false));
        assert!(matches!(
            gate.enter().await,
            Turn::Alone {
                one_number: true,
                ..
            }
        ));
        assert!(gate.record(false));
    }
}
