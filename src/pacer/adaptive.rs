//! How fast a login may go when others the run cannot see share it: its request rate and its
//! requests at once, lowered by error 9 and raised back by a run of clean answers.
//!
//! Contract: [`Adaptive::refused`] halves both caps (to one at least), once per
//! burst: an error 9 to a request sent before the last lowering is the same overrun, already
//! paid for. [`Adaptive::answered`] counts clean answers and raises both caps by one after two
//! windows' worth of them (twice the rate), or four before trying again the rate the last
//! refusal came at, up to the configured limits. So a login that a stranger shares settles just
//! under what the stranger leaves, probing one request a window higher now and then; once the
//! stranger goes, the caps climb back to the limits. Times
//! are milliseconds on whatever clock the caller keeps (the state lives in a run, or in the
//! login's shared file, `shared.rs`).

use serde::{Deserialize, Serialize};

/// A login's caps as error 9 and clean answers moved them (see the module's contract).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Adaptive {
    /// Requests per window the login may send now, at most the configured limit.
    pub rate: u32,
    /// Requests the login may have out at once now.
    pub at_once: u32,
    /// Clean answers since the caps last moved.
    clean: u32,
    /// When the caps were last lowered.
    lowered_at: Option<u64>,
    /// The rate the last refusal came at.
    refused_rate: Option<u32>,
}

/// The caps a login goes back to: the configured limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ceiling {
    pub rate: u32,
    pub at_once: u32,
}

impl Adaptive {
    /// A login at its configured limits.
    pub fn new(ceiling: Ceiling) -> Adaptive {
        Adaptive {
            rate: ceiling.rate,
            at_once: ceiling.at_once,
            clean: 0,
            lowered_at: None,
            refused_rate: None,
        }
    }

    /// Error 9 to a request sent at `sent_at`, seen at `now`: whether the caps went down.
    pub fn refused(&mut self, sent_at: u64, now: u64) -> bool {
        if self.lowered_at.is_some_and(|t| sent_at < t) {
            return false;
        }
        self.refused_rate = Some(self.rate);
        self.rate = (self.rate / 2).max(1);
        self.at_once = (self.at_once / 2).max(1);
        self.clean = 0;
        self.lowered_at = Some(now);
        true
    }

    /// A clean answer: whether the caps went up (see the module's contract).
    pub fn answered(&mut self, ceiling: Ceiling) -> bool {
        if self.rate >= ceiling.rate && self.at_once >= ceiling.at_once {
            self.clean = 0;
            return false;
        }
        self.clean += 1;
        let windows = match self.refused_rate {
            Some(r) if self.rate + 1 >= r => 4,
            _ => 2,
        };
        if self.clean < windows * self.rate {
            return false;
        }
        self.rate = (self.rate + 1).min(ceiling.rate);
        self.at_once = (self.at_once + 1).min(ceiling.at_once);
        self.clean = 0;
        true
    }

    /// The caps again within `ceiling` (a file written under other settings).
    pub fn within(mut self, ceiling: Ceiling) -> Adaptive {
        self.rate = self.rate.clamp(1, ceiling.rate);
        self.at_once = self.at_once.clamp(1, ceiling.at_once);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CEILING: Ceiling = Ceiling {
        rate: 20,
        at_once: 8,
    };

    #[test]
    fn a_burst_of_refusals_halves_once_and_two_windows_of_answers_raise_by_one() {
        let mut a = Adaptive::new(CEILING);
        assert!(a.refused(100, 200));
        assert_eq!((a.rate, a.at_once), (10, 4));
        // Sent before the lowering: the same overrun.
        assert!(!a.refused(150, 210));
        assert_eq!(a.rate, 10);
        // Twenty clean answers (two windows at 10) raise both by one.
        for _ in 0..19 {
            assert!(!a.answered(CEILING));
        }
        assert!(a.answered(CEILING));
        assert_eq!((a.rate, a.at_once), (11, 5));
        // Sent after it: a new overrun.
        assert!(a.refused(300, 310));
        assert_eq!((a.rate, a.at_once), (5, 2));
        // Two windows' worth a step up to 10; the step to 11, where it was refused, takes four.
        for _ in 0..(10 + 12 + 14 + 16 + 18) {
            a.answered(CEILING);
        }
        assert_eq!(a.rate, 10);
        for _ in 0..39 {
            a.answered(CEILING);
        }
        assert_eq!(a.rate, 10);
        a.answered(CEILING);
        assert_eq!(a.rate, 11);
        // Back to the limits, and no further.
        for _ in 0..10_000 {
            a.answered(CEILING);
        }
        assert_eq!((a.rate, a.at_once), (20, 8));
        let mut low = Adaptive::new(Ceiling {
            rate: 1,
            at_once: 1,
        });
        low.refused(0, 0);
        assert_eq!((low.rate, low.at_once), (1, 1));
    }
}
