//! What to ask the provider: the distinct numbers without a fresh stored answer (only the
//! run's shard's, with `run --shard I/N`), handed out a batch at a time.
//!
//! Contract: [`Plan::new`] sorts the numbers a pass could not answer from the state store and
//! keeps those of the run's [`Shard`]; [`Plan::take`] hands them out in that order, each once,
//! in batches as long as the caller asks (the pacer's sizer decides). A number's shard is a
//! stable hash of its E.164 text: xxh3-64 of `+79161234567` (as the output's `phone_e164`
//! writes it), modulo the shard count, plus one, the same on every machine and in every
//! version, so shards never overlap and together cover every number.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use polars::prelude::PlHashMap;

use crate::normalize::E164;

/// The numbers to ask, in order, and how many were handed out.
#[derive(Debug, Default)]
pub struct Plan {
    numbers: Vec<E164>,
    taken: usize,
}

/// Requests `numbers` numbers take in batches of `batch_size`.
pub fn requests_for(numbers: usize, batch_size: usize) -> u64 {
    numbers.div_ceil(batch_size.max(1)) as u64
}

impl Plan {
    /// The numbers keyed in `unknown`, sorted, those of `shard` only when given.
    pub fn new<V>(unknown: &PlHashMap<E164, V>, shard: Option<Shard>) -> Plan {
        let mut numbers: Vec<E164> = unknown
            .keys()
            .copied()
            .filter(|n| shard.is_none_or(|s| s.holds(*n)))
            .collect();
        numbers.sort_unstable();
        Plan { numbers, taken: 0 }
    }

    /// Distinct numbers to ask, handed out or not.
    pub fn to_look_up(&self) -> usize {
        self.numbers.len()
    }

    /// Requests the numbers take in batches of `batch_size`.
    pub fn requests(&self, batch_size: usize) -> u64 {
        requests_for(self.numbers.len(), batch_size)
    }

    /// How many of the numbers each of `count` shards holds, in shard order.
    pub fn shard_sizes(&self, count: NonZeroU32) -> Vec<usize> {
        let mut sizes = vec![0; count.get() as usize];
        for n in &self.numbers {
            sizes[Shard::of(*n, count) as usize - 1] += 1;
        }
        sizes
    }

    /// Whether every number was handed out.
    pub fn is_empty(&self) -> bool {
        self.taken == self.numbers.len()
    }

    /// The next `len` numbers (fewer at the end).
    pub fn take(&mut self, len: usize) -> Vec<E164> {
        let end = (self.taken + len.max(1)).min(self.numbers.len());
        let list = self.numbers[self.taken..end].to_vec();
        self.taken = end;
        list
    }
}

/// Shard `index` of `count` (`--shard 2/3`): the numbers whose stable hash puts them there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based, at most `count`.
    pub index: NonZeroU32,
    pub count: NonZeroU32,
}

impl Shard {
    /// The shard (1-based) of `count` that `number` belongs to.
    pub fn of(number: E164, count: NonZeroU32) -> u32 {
        let mut buffer = [0; 21];
        let text = number.plus_text(&mut buffer).as_bytes();
        (xxhash_rust::xxh3::xxh3_64(text) % count.get() as u64) as u32 + 1
    }

    /// Whether `number` is in this shard.
    pub fn holds(&self, number: E164) -> bool {
        Shard::of(number, self.count) == self.index.get()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let wrong = || format!("`{s}` is not a shard: write I/N, e.g. 2/3 (I from 1 to N)");
        let (index, count) = s.split_once('/').ok_or_else(wrong)?;
        let index: NonZeroU32 = index.trim().parse().map_err(|_| wrong())?;
        let count: NonZeroU32 = count.trim().parse().map_err(|_| wrong())?;
        if index > count {
            return Err(wrong());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn unknown(n: u64) -> PlHashMap<E164, u64> {
        (0..n).map(|i| (E164(79_000_000_000 + i * 7), 1)).collect()
    }

    #[test]
    fn lists_cover_each_unknown_number_once_in_order() {
        let cases: &[(u64, &[usize], usize)] = &[
            // (unknown numbers, lengths asked, batches handed out)
            (250, &[100], 3),
            (200, &[100], 2),
            (0, &[100], 0),
            (1, &[100], 1),
            (7, &[1], 7),
            (1000, &[100, 200, 400, 300], 4),
        ];
        for &(n, lengths, want) in cases {
            let mut plan = Plan::new(&unknown(n), None);
            assert_eq!(plan.requests(lengths[0]), n.div_ceil(lengths[0] as u64));
            let mut asked = Vec::new();
            let mut batches = 0;
            for len in lengths.iter().cycle() {
                if plan.is_empty() {
                    break;
                }
                let list = plan.take(*len);
                assert!(list.len() <= *len && !list.is_empty());
                asked.extend(list);
                batches += 1;
            }
            assert_eq!(batches, want, "{n} {lengths:?}");
            let unique: HashSet<E164> = asked.iter().copied().collect();
            assert_eq!((asked.len(), unique.len()), (n as usize, n as usize));
            assert!(asked.windows(2).all(|w| w[0] < w[1]), "sorted");
        }
    }

    #[test]
    fn shards_split_the_numbers_without_overlap_and_stably() {
        let all = unknown(3000);
        let count = NonZeroU32::new(3).unwrap();
        let shards: Vec<Plan> = (1..=3)
            .map(|i| {
                let shard = format!("{i}/3").parse::<Shard>().unwrap();
                Plan::new(&all, Some(shard))
            })
            .collect();
        let sizes: Vec<usize> = shards.iter().map(Plan::to_look_up).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 3000);
        assert!(sizes.iter().all(|s| *s > 900), "{sizes:?}");
        let union: HashSet<E164> = shards.iter().flat_map(|p| p.numbers.clone()).collect();
        assert_eq!(union.len(), 3000);
        // The hash is xxh3-64 of the number's E.164 text: fixed values, on every machine (as
        // Python's `xxhash.xxh3_64_intdigest(b"+79161234567") % 3 + 1` gives them).
        let cases: &[(u64, u32)] = &[(79161234567, 2), (79031234567, 3), (77011234567, 2)];
        let got: Vec<(u64, u32)> = cases
            .iter()
            .map(|(n, _)| (*n, Shard::of(E164(*n), count)))
            .collect();
        assert_eq!(got, cases);
        for bad in ["0/3", "4/3", "1", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
