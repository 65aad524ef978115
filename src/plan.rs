//! What to ask the provider: the distinct numbers the state store does not know freshly,
//! in batches.
//!
//! Contract: [`Plan::build`] splits the run's distinct numbers into those with a fresh stored
//! answer (in `cached`, the host's answers, used as they are) and the rest, sorted and cut into batches of at most
//! `batch_size`. A number appears in at most one batch. With `refresh`, nothing counts as cached.

use polars::prelude::PlHashMap;
use std::num::NonZeroUsize;

use crate::normalize::E164;
use crate::state::{now_ms, AnswerBook, StateError, StateStore, Ttl};

#[derive(Debug, Default)]
pub struct Plan {
    pub cached: AnswerBook,
    pub batches: Vec<Vec<E164>>,
}

impl Plan {
    pub fn build<V>(
        distinct: &PlHashMap<E164, V>,
        state: &StateStore,
        host: &str,
        ttl: Ttl,
        refresh: bool,
        batch_size: NonZeroUsize,
    ) -> Result<Plan, StateError> {
        let cached = match refresh {
            true => AnswerBook::default(),
            false => state.load(host, ttl, now_ms())?,
        };
        Ok(Plan::from_known(distinct, cached, batch_size))
    }

    /// The plan given what is already known.
    pub fn from_known<V>(
        distinct: &PlHashMap<E164, V>,
        cached: AnswerBook,
        batch_size: NonZeroUsize,
    ) -> Plan {
        let mut to_ask: Vec<E164> = distinct
            .keys()
            .copied()
            .filter(|n| !cached.contains(n))
            .collect();
        to_ask.sort_unstable();
        let batches = to_ask
            .chunks(batch_size.get())
            .map(<[E164]>::to_vec)
            .collect();
        Plan { cached, batches }
    }

    /// Distinct numbers to ask.
    pub fn to_look_up(&self) -> usize {
        self.batches.iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::NumberAnswer;
    use crate::state::StoredAnswer;
    use std::collections::HashSet;

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
            let distinct: PlHashMap<E164, ()> =
                (0..n).map(|i| (E164(79_000_000_000 + i), ())).collect();
            let mut known = AnswerBook::default();
            for i in 0..cached {
                known.insert(
                    E164(79_000_000_000 + i),
                    StoredAnswer {
                        checked_at_ms: 0,
                        answer: NumberAnswer::NotFound,
                    },
                );
            }
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
