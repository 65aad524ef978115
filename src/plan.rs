//! What to ask the provider: the distinct numbers the state store does not know freshly,
//! in batches.
//!
//! Contract: [`Plan::build`] splits the run's distinct numbers into those with a fresh stored
//! answer (`cached`, used as they are) and the rest, sorted and cut into batches of at most
//! `batch_size`. A number appears in at most one batch. With `refresh`, nothing counts as cached.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;

use crate::normalize::E164;
use crate::state::{now_ms, StateError, StateStore, StoredAnswer, Ttl};

#[derive(Debug, Default)]
pub struct Plan {
    pub cached: HashMap<E164, StoredAnswer>,
    pub batches: Vec<Vec<E164>>,
}

impl Plan {
    pub fn build(
        distinct: &HashSet<E164>,
        state: &StateStore,
        host: &str,
        ttl: Ttl,
        refresh: bool,
        batch_size: NonZeroUsize,
    ) -> Result<Plan, StateError> {
        let now = now_ms();
        let mut cached = HashMap::new();
        if !refresh {
            cached = state.get_many(host, distinct.iter().copied())?;
            cached.retain(|_, stored| stored.is_fresh(ttl, now));
        }
        Ok(Plan::from_known(distinct, cached, batch_size))
    }

    /// The plan given what is already known.
    pub fn from_known(
        distinct: &HashSet<E164>,
        cached: HashMap<E164, StoredAnswer>,
        batch_size: NonZeroUsize,
    ) -> Plan {
        let mut to_ask: Vec<E164> = distinct
            .iter()
            .copied()
            .filter(|n| !cached.contains_key(n))
            .collect();
        to_ask.sort_unstable();
        let batches = to_ask
            .chunks(batch_size.get())
            .map(<[E164]>::to_vec)
            .collect();
        Plan { cached, batches }
    }

    pub fn to_look_up(&self) -> usize {
        self.batches.iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::NumberAnswer;

    #[test]
    fn batches_cover_each_unknown_number_once() {
        let cases: &[(u64, u64, usize, usize)] = &[
            // (distinct, cached, batch size, expected batches)
            (250, 0, 100, 3),
            (250, 50, 100, 2),
            (100, 100, 100, 0),
            (1, 0, 100, 1),
            (7, 0, 1, 7),
        ];
        for &(n, cached, size, want) in cases {
            let distinct: HashSet<E164> = (0..n).map(|i| E164(79_000_000_000 + i)).collect();
            let known: HashMap<E164, StoredAnswer> = (0..cached)
                .map(|i| {
                    (
                        E164(79_000_000_000 + i),
                        StoredAnswer {
                            checked_at_ms: 0,
                            answer: NumberAnswer::NotFound,
                        },
                    )
                })
                .collect();
            let plan = Plan::from_known(&distinct, known, NonZeroUsize::new(size).unwrap());
            assert_eq!(plan.batches.len(), want, "{n} {cached} {size}");
            let asked: Vec<E164> = plan.batches.concat();
            let unique: HashSet<E164> = asked.iter().copied().collect();
            assert_eq!(asked.len(), unique.len());
            assert_eq!(asked.len() as u64, n - cached);
            assert!(plan.batches.iter().all(|b| b.len() <= size));
        }
    }
}
