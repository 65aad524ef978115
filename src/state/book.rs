//! Answers in memory: the [`AnswerBook`] a run looks numbers up in, the dictionary of distinct
//! answers it points into, and the freshness rule.
//!
//! Contract: a book holds every stored answer of one host, fresh or not; [`AnswerBook::get`]
//! and [`AnswerBook::known`] give only those fresh at the book's clock. Answers are kept to
//! the second. A dictionary's ids are dense from 0 and never change: the store, its snapshots
//! and a run's book all name an answer by the same id.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use polars::prelude::PlHashMap;
use serde::{Deserialize, Serialize};

use super::{Damage, NumberTable, Part, StateError};
use crate::normalize::E164;
use crate::provider::NumberAnswer;

/// An answer as stored: when it was checked (Unix milliseconds; the store keeps seconds) and
/// what it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    pub checked_at_ms: i64,
    pub answer: NumberAnswer,
}

/// How long answers stay fresh.
#[derive(Debug, Clone, Copy)]
pub struct Ttl {
    pub found: Duration,
    /// For `NotFound` and `Rejected`.
    pub not_found: Duration,
}

impl StoredAnswer {
    /// Whether the answer is still fresh at `now_ms` under `ttl`.
    pub fn is_fresh(&self, ttl: Ttl, now_ms: i64) -> bool {
        fresh(&self.answer, self.checked_at_ms, ttl, now_ms)
    }
}

fn fresh(answer: &NumberAnswer, checked_at_ms: i64, ttl: Ttl, now_ms: i64) -> bool {
    let ttl = match answer {
        NumberAnswer::Found(_) => ttl.found,
        NumberAnswer::NotFound | NumberAnswer::Rejected => ttl.not_found,
    };
    now_ms.saturating_sub(checked_at_ms) < ttl.as_millis() as i64
}

/// Milliseconds to the stored second (clamped to what 32 bits of seconds hold: 1970–2106).
pub(super) fn to_second(ms: i64) -> u32 {
    (ms.div_euclid(1000)).clamp(0, u32::MAX as i64) as u32
}

/// The current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Distinct answers, each held once and known by its id. The store keeps one per provider host
/// (tree `dict@HOST`, ids dense from 0); a run's [`AnswerBook`] starts from a copy of it.
#[derive(Debug, Default, Clone)]
pub(super) struct Dictionary {
    pub(super) answers: Vec<NumberAnswer>,
    by_encoding: PlHashMap<Vec<u8>, u32>,
}

impl Dictionary {
    /// The id of an answer given in its postcard encoding, adding it when new; `true` if new.
    pub(super) fn intern(
        &mut self,
        encoded: &[u8],
        answer: impl FnOnce() -> NumberAnswer,
    ) -> (u32, bool) {
        if let Some(&id) = self.by_encoding.get(encoded) {
            return (id, false);
        }
        let id = self.answers.len() as u32;
        self.answers.push(answer());
        self.by_encoding.insert(encoded.to_vec(), id);
        (id, true)
    }

    /// Adds an answer given in its postcard encoding, if it decodes.
    pub(super) fn intern_encoded(&mut self, encoded: &[u8]) -> Result<u32, postcard::Error> {
        if let Some(&id) = self.by_encoding.get(encoded) {
            return Ok(id);
        }
        let answer: NumberAnswer = postcard::from_bytes(encoded)?;
        Ok(self.intern(encoded, || answer).0)
    }

    pub(super) fn len(&self) -> usize {
        self.answers.len()
    }

    /// The answers' postcard encodings by id, as a snapshot keeps them.
    pub(super) fn encodings(&self) -> Vec<Vec<u8>> {
        self.answers.iter().map(encode).collect()
    }

    /// `host`'s dictionary as its tree in sled holds it: ids must be dense from 0 and every
    /// answer must decode.
    pub(super) fn from_tree(dir: &Path, host: &str, tree: &sled::Tree) -> Result<Self, StateError> {
        let damaged = |what: String| {
            StateError::damaged(dir, Damage::new(Part::Dictionary, Some(host), what))
        };
        let mut dictionary = Dictionary::default();
        for (expected, item) in tree.iter().enumerate() {
            let (key, encoded) = item.map_err(|e| {
                StateError::sled(dir, format!("reading the answer dictionary of {host}"), e)
            })?;
            let id = <[u8; 4]>::try_from(key.as_ref())
                .map(u32::from_be_bytes)
                .map_err(|_| damaged(format!("a key of {} bytes is not an id", key.len())))?;
            if id as usize != expected {
                return Err(damaged(format!("it lacks answer id {expected}")));
            }
            dictionary
                .intern_encoded(&encoded)
                .map_err(|e| damaged(format!("answer {id} does not decode: {e}")))?;
        }
        Ok(dictionary)
    }
}

/// An answer's postcard encoding, the dictionary's key.
pub(super) fn encode(answer: &NumberAnswer) -> Vec<u8> {
    postcard::to_stdvec(answer).expect("answers always encode")
}

/// A host's answers in memory: numbers pointing into a dictionary of the distinct answers (ids
/// below [`AnswerBook::answer_ids`]). It holds every stored answer, fresh or not;
/// [`AnswerBook::known`] returns only those fresh at the book's clock.
#[derive(Debug)]
pub struct AnswerBook {
    pub(super) dictionary: Dictionary,
    pub(super) numbers: NumberTable,
    /// The freshness rule and the time it is judged at; `None`: every answer counts.
    pub(super) freshness: Option<(Ttl, i64)>,
}

impl Default for AnswerBook {
    fn default() -> Self {
        AnswerBook::new(Dictionary::default(), NumberTable::with_capacity(0))
    }
}

impl AnswerBook {
    pub(super) fn new(dictionary: Dictionary, numbers: NumberTable) -> Self {
        AnswerBook {
            dictionary,
            numbers,
            freshness: None,
        }
    }

    /// Every answer held, fresh or not.
    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }

    /// The fresh answer for `n` and when it was checked (Unix milliseconds).
    #[inline]
    pub fn get(&self, n: &E164) -> Option<(&NumberAnswer, i64)> {
        self.known(*n).map(|k| (k.answer, k.checked_at_ms))
    }

    /// The fresh answer for `n`, with where it is held: its slot (below [`Self::slots`]) and its
    /// answer id (below [`Self::answer_ids`]).
    #[inline]
    pub fn known(&self, n: E164) -> Option<Known<'_>> {
        let (slot, id, at_s) = self.numbers.find(n.0)?;
        let answer = &self.dictionary.answers[id as usize];
        let at_ms = at_s as i64 * 1000;
        match self.freshness {
            Some((ttl, now_ms)) if !fresh(answer, at_ms, ttl, now_ms) => None,
            _ => Some(Known {
                slot,
                id,
                answer,
                checked_at_ms: at_ms,
            }),
        }
    }

    /// Makes room for `additional` more numbers at once (growing costs a copy of the table).
    pub fn reserve(&mut self, additional: usize) {
        self.numbers.reserve(additional);
    }

    /// Starts fetching `n`'s slot from memory, for a [`Self::known`] a little later.
    #[inline]
    pub fn prefetch(&self, n: E164) {
        self.numbers.prefetch(n.0);
    }

    /// How many slots numbers are held in (see [`Self::known`]).
    pub fn slots(&self) -> usize {
        self.numbers.slots()
    }

    /// How many distinct answers there are (see [`Self::known`]).
    pub fn answer_ids(&self) -> usize {
        self.dictionary.answers.len()
    }

    /// The answer with id `id` (below [`Self::answer_ids`]).
    pub fn answer(&self, id: u32) -> &NumberAnswer {
        &self.dictionary.answers[id as usize]
    }

    /// Holds `stored` as `n`'s answer, replacing any.
    pub fn insert(&mut self, n: E164, stored: StoredAnswer) {
        let encoded = encode(&stored.answer);
        let (id, _) = self.dictionary.intern(&encoded, || stored.answer);
        self.numbers
            .insert(n.0, id, to_second(stored.checked_at_ms));
    }

    /// Every answer held: `(number, answer, checked-at milliseconds)`, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (E164, &NumberAnswer, i64)> + '_ {
        self.numbers.iter().map(|(n, id, at_s)| {
            (
                E164(n),
                &self.dictionary.answers[id as usize],
                at_s as i64 * 1000,
            )
        })
    }
}

/// A fresh answer found in an [`AnswerBook`].
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    /// Where the number is held, below [`AnswerBook::slots`].
    pub slot: usize,
    /// The answer's id, below [`AnswerBook::answer_ids`].
    pub id: u32,
    pub answer: &'a NumberAnswer,
    pub checked_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::OperatorInfo;

    #[test]
    fn freshness_follows_the_ttl_by_status() {
        let ttl = Ttl {
            found: Duration::from_secs(30 * 86400),
            not_found: Duration::from_secs(7 * 86400),
        };
        let day = 86_400_000;
        let info = NumberAnswer::Found(OperatorInfo::example());
        let cases: &[(NumberAnswer, i64, bool)] = &[
            (info.clone(), 29 * day, true),
            (info, 31 * day, false),
            (NumberAnswer::NotFound, 6 * day, true),
            (NumberAnswer::NotFound, 8 * day, false),
            (NumberAnswer::Rejected, 8 * day, false),
        ];
        for (answer, age, fresh) in cases {
            let stored = StoredAnswer {
                checked_at_ms: 0,
                answer: answer.clone(),
            };
            assert_eq!(stored.is_fresh(ttl, *age), *fresh, "{answer:?} at {age}");
        }
    }
}
