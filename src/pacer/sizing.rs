//! How long the batches are: `provider.batch_size` as set, or found by the run (`"auto"`).
//!
//! Contract: [`BatchSizer::next`] gives the length of the next batch. A fixed size is all there
//! is to it. With `auto` the run starts at [`AUTO_START`] (or at what an earlier run learned of
//! the host, [`ListLimit`], which the state store keeps) and one batch at a time tries a longer length in a trial: twice the longest
//! batch taken, up to `provider.max_batch_size`, until the provider refuses one for its length
//! ([`BatchSizer::too_long`]: error 1 on a batch whose halves were both answered, so no number in
//! it was at fault); from then on each trial halves the gap between the longest batch taken and
//! the shortest refused, until that gap is within [`CLOSE_ENOUGH`] of the longest taken. Every
//! batch that is not a trial has the longest length taken, so a refused trial costs one request.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use crate::config::BatchSize;
use crate::state::ListLimit;

/// The first length of `auto`, when nothing is known of the host.
pub const AUTO_START: usize = 100;

/// Probing stops once the longest batch refused is within this share (1/16) of the longest
/// taken: the batches then carry at least 94% of what the provider would take.
pub const CLOSE_ENOUGH: usize = 16;

/// The length of the next batch, and whether it is the one probing a longer length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListLength {
    pub len: usize,
    pub trial: bool,
}

/// See the module's contract.
#[derive(Debug)]
pub struct BatchSizer {
    fixed: Option<usize>,
    max: usize,
    remembered: Option<ListLimit>,
    found: Mutex<Found>,
}

#[derive(Debug, Default)]
struct Found {
    taken: usize,
    refused: Option<usize>,
    probing: bool,
}

impl Found {
    /// The length of a batch that is no trial.
    fn length(&self, max: usize) -> usize {
        match (self.taken, self.refused) {
            (0, Some(refused)) => (refused / 2).max(1),
            (0, None) => AUTO_START.min(max),
            (taken, _) => taken,
        }
    }

    /// The next length worth a trial, if any.
    fn trial(&self, max: usize) -> Option<usize> {
        let taken = self.taken;
        match self.refused {
            _ if taken == 0 || taken >= max => None,
            None => Some((taken * 2).min(max)),
            Some(refused) => {
                (refused - taken > (taken / CLOSE_ENOUGH).max(1)).then_some((taken + refused) / 2)
            }
        }
    }
}

impl BatchSizer {
    /// The sizer of a job's `batch_size`, starting from what an earlier run `remembered` of the
    /// host (with `auto`).
    pub fn new(size: BatchSize, max: NonZeroUsize, remembered: Option<ListLimit>) -> BatchSizer {
        let max = max.get();
        let remembered = remembered.map(|l| ListLimit {
            taken: l.taken.min(max),
            refused: l.refused.filter(|r| *r > l.taken.min(max)),
        });
        let found = match (size, remembered) {
            (BatchSize::Auto, Some(l)) => Found {
                taken: l.taken,
                refused: l.refused,
                probing: false,
            },
            _ => Found::default(),
        };
        BatchSizer {
            fixed: match size {
                BatchSize::Fixed(n) => Some(n.get()),
                BatchSize::Auto => None,
            },
            max,
            remembered,
            found: Mutex::new(found),
        }
    }

    /// The next batch's length: a trial when none is out and a longer length is worth trying.
    pub fn next(&self) -> ListLength {
        if let Some(len) = self.fixed {
            return ListLength { len, trial: false };
        }
        let mut found = self.found.lock().unwrap();
        match found.trial(self.max) {
            Some(len) if !found.probing => {
                found.probing = true;
                ListLength { len, trial: true }
            }
            _ => ListLength {
                len: found.length(self.max),
                trial: false,
            },
        }
    }

    /// Whether the length is found: fixed, or no longer length is worth a trial. Until then
    /// a batch cut ahead may have a length the next answer outgrows.
    pub fn settled(&self) -> bool {
        let found = self.found.lock().unwrap();
        self.fixed.is_some() || (found.taken > 0 && found.trial(self.max).is_none())
    }

    /// The trial's batch has every number answered or given up on.
    pub fn trial_done(&self) {
        self.found.lock().unwrap().probing = false;
    }

    /// The provider answered a batch of `len` numbers.
    pub fn taken(&self, len: usize) {
        let mut found = self.found.lock().unwrap();
        if self.fixed.is_some() || len <= found.taken {
            return;
        }
        found.taken = len;
        // Taken after all: the refusal was not for the length.
        if found.refused.is_some_and(|r| r <= len) {
            found.refused = None;
        }
    }

    /// The provider refused a batch of `len` numbers whose halves it answered: `len` is too long.
    pub fn too_long(&self, len: usize) {
        let mut found = self.found.lock().unwrap();
        if self.fixed.is_some() {
            return;
        }
        found.refused = Some(found.refused.map_or(len, |r| r.min(len)));
        if found.taken >= len {
            found.taken = len - len / 2;
        }
    }

    /// What the run learned of the host, for the state store (`None` with a fixed size or
    /// before any batch was answered).
    pub fn learned(&self) -> Option<ListLimit> {
        let found = self.found.lock().unwrap();
        (self.fixed.is_none() && found.taken > 0).then_some(ListLimit {
            taken: found.taken,
            refused: found.refused,
        })
    }

    /// The length the batches have (before any answer: will have) and why, for the plan and the
    /// report.
    pub fn choice(&self) -> (usize, String) {
        let max = self.max;
        if let Some(n) = self.fixed {
            return (n, "provider.batch_size".into());
        }
        let found = self.found.lock().unwrap();
        let taken = found.taken;
        let now = Some(ListLimit {
            taken,
            refused: found.refused,
        });
        let since = match now == self.remembered {
            true => " (remembered from an earlier run)",
            false => "",
        };
        let why = match found.refused {
            _ if taken == 0 => format!(
                "auto: starts at {AUTO_START} and grows while the provider takes the batches, up to provider.max_batch_size {max}"
            ),
            Some(r) => format!("auto: the longest list the provider took is {taken}, it refused {r}{since}"),
            None if taken >= max => format!(
                "auto: the provider took batches up to provider.max_batch_size {max}{since}"
            ),
            None => format!(
                "auto: the provider took every list up to {taken}, longer ones up to {max} are tried next{since}"
            ),
        };
        (found.length(max), why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batches cut one after another against a provider taking at most `limit`: each refused batch
    /// is split, its halves answered. The length settled on, and the batches refused.
    fn settle(sizer: &BatchSizer, limit: usize) -> (usize, usize) {
        let mut refused = 0;
        for _ in 0..100 {
            let next = sizer.next();
            if next.len <= limit {
                sizer.taken(next.len);
            } else {
                refused += 1;
                sizer.taken(next.len - next.len / 2);
                sizer.too_long(next.len);
            }
            if next.trial {
                sizer.trial_done();
            }
        }
        (sizer.next().len, refused)
    }

    fn max(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap()
    }

    #[test]
    fn auto_settles_just_under_the_longest_list_the_provider_takes() {
        let cases: &[(usize, usize, usize, usize)] = &[
            // (provider's limit, max_batch_size, settled at least, batches refused at most)
            (250, 1000, 235, 5),
            (300, 1000, 282, 5),
            (1000, 1000, 1000, 0),
            (5000, 1000, 1000, 0),
            (80, 1000, 75, 5),
            (250, 120, 120, 0),
        ];
        for &(limit, most, least, refusals) in cases {
            let sizer = BatchSizer::new(BatchSize::Auto, max(most), None);
            assert_eq!(sizer.next().len, AUTO_START.min(most), "{limit}");
            let (len, refused) = settle(&sizer, limit);
            assert!(sizer.settled(), "{limit}/{most}");
            assert!(
                len <= limit.min(most) && len >= least,
                "{limit}/{most}: {len}"
            );
            assert!(refused <= refusals, "{limit}/{most}: {refused} refused");
            // A run that starts from what this one learned tries nothing more.
            let again = BatchSizer::new(BatchSize::Auto, max(most), sizer.learned());
            assert_eq!(settle(&again, limit), (len, 0), "{limit}/{most}");
        }
    }

    #[test]
    fn one_trial_at_a_time_and_a_fixed_size_never_moves() {
        let sizer = BatchSizer::new(BatchSize::Auto, max(1000), None);
        assert!(!sizer.settled());
        sizer.taken(100);
        let first = sizer.next();
        assert_eq!(
            first,
            ListLength {
                len: 200,
                trial: true
            }
        );
        // While the trial is out, batches keep the length taken.
        assert_eq!(
            sizer.next(),
            ListLength {
                len: 100,
                trial: false
            }
        );
        sizer.taken(200);
        sizer.trial_done();
        assert_eq!(
            sizer.next(),
            ListLength {
                len: 400,
                trial: true
            }
        );

        let fixed = BatchSizer::new(BatchSize::Fixed(max(50)), max(1000), None);
        assert!(fixed.settled());
        fixed.taken(50);
        fixed.too_long(50);
        assert_eq!(
            fixed.next(),
            ListLength {
                len: 50,
                trial: false
            }
        );
        assert_eq!(fixed.learned(), None);
        assert_eq!(fixed.choice(), (50, "provider.batch_size".to_string()));
    }

    #[test]
    fn the_choice_says_where_the_length_comes_from() {
        let remembered = ListLimit {
            taken: 250,
            refused: Some(262),
        };
        let cases: &[(Option<ListLimit>, usize, &str)] = &[
            (None, 100, "auto: starts at 100"),
            (
                Some(remembered),
                250,
                "took is 250, it refused 262 (remembered from an earlier run)",
            ),
            (
                Some(ListLimit {
                    taken: 400,
                    refused: None,
                }),
                400,
                "every list up to 400, longer ones up to 1000 are tried next (remembered",
            ),
        ];
        for (start, len, why) in cases {
            let (got_len, got_why) = BatchSizer::new(BatchSize::Auto, max(1000), *start).choice();
            assert_eq!(got_len, *len);
            assert!(got_why.contains(why), "{got_why}");
        }
    }
}
