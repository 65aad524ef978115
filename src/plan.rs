//! What to ask the provider: the distinct numbers without a fresh stored answer, in batches.
//!
//! Contract: [`Plan::new`] sorts the numbers a pass could not answer from the state store and
//! cuts them into batches of at most `batch_size`. A number appears in exactly one batch.

use polars::prelude::PlHashMap;
use std::num::NonZeroUsize;

use crate::normalize::E164;

#[derive(Debug, Default)]
pub struct Plan {
    pub batches: Vec<Vec<E164>>,
}

impl Plan {
    /// Batches of the numbers keyed in `unknown`.
    pub fn new<V>(unknown: &PlHashMap<E164, V>, batch_size: NonZeroUsize) -> Plan {
        let mut to_ask: Vec<E164> = unknown.keys().copied().collect();
        to_ask.sort_unstable();
        let batches = to_ask
            .chunks(batch_size.get())
            .map(<[E164]>::to_vec)
            .collect();
        Plan { batches }
    }

    /// Distinct numbers to ask.
    pub fn to_look_up(&self) -> usize {
        self.batches.iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn batches_cover_each_unknown_number_once() {
        let cases: &[(u64, usize, usize)] = &[
            // (unknown numbers, batch size, expected batches)
            (250, 100, 3),
            (200, 100, 2),
            (0, 100, 0),
            (1, 100, 1),
            (7, 1, 7),
        ];
        for &(n, size, want) in cases {
            let unknown: PlHashMap<E164, u64> =
                (0..n).map(|i| (E164(79_000_000_000 + i * 7), 1)).collect();
            let plan = Plan::new(&unknown, NonZeroUsize::new(size).unwrap());
            assert_eq!(plan.batches.len(), want, "{n} {size}");
            let asked: Vec<E164> = plan.batches.concat();
            let unique: HashSet<E164> = asked.iter().copied().collect();
            assert_eq!(asked.len(), unique.len());
            assert_eq!(asked.len() as u64, n);
            assert!(asked.windows(2).all(|w| w[0] < w[1]), "sorted");
            assert!(plan.batches.iter().all(|b| b.len() <= size));
        }
    }
}
