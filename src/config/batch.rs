//! How many numbers a request asks for: `provider.batch_size`, a number or `"auto"`.
//!
//! Contract: read while the job file is deserialized, so a bad value is refused by serde with
//! the key path it sits under: a whole number above zero, or the word `auto`. The upper bound
//! ([`MAX_BATCH_SIZE`]) is validation's; how `auto` finds its size is the pacer's
//! (`pacer::sizing`).

use std::fmt;
use std::num::NonZeroUsize;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

/// The longest list a job may ask for, fixed or found by `auto`.
pub const MAX_BATCH_SIZE: usize = 1000;

/// `provider.batch_size` as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    /// Every list this long (the last one of a run shorter).
    Fixed(NonZeroUsize),
    /// The run finds the longest list the provider takes, up to `provider.max_batch_size`.
    Auto,
}

impl fmt::Display for BatchSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchSize::Fixed(n) => write!(f, "{n}"),
            BatchSize::Auto => f.write_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for BatchSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Written;
        impl Visitor<'_> for Written {
            type Value = BatchSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number above zero or \"auto\"")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<BatchSize, E> {
                usize::try_from(n)
                    .ok()
                    .and_then(NonZeroUsize::new)
                    .map(BatchSize::Fixed)
                    .ok_or_else(|| E::custom(format!("{n} is not above zero, nor \"auto\"")))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<BatchSize, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<BatchSize, E> {
                match s {
                    "auto" => Ok(BatchSize::Auto),
                    _ => Err(E::custom(format!(
                        "`{s}` is not a number of numbers per request, nor \"auto\""
                    ))),
                }
            }
        }
        deserializer.deserialize_any(Written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_auto_read_everything_else_refused() {
        #[derive(Deserialize)]
        struct T {
            b: BatchSize,
        }
        let cases: &[(&str, Option<BatchSize>)] = &[
            (
                "b = 100",
                Some(BatchSize::Fixed(NonZeroUsize::new(100).unwrap())),
            ),
            ("b = \"auto\"", Some(BatchSize::Auto)),
            ("b = 0", None),
            ("b = -3", None),
            ("b = \"big\"", None),
            ("b = 1.5", None),
        ];
        for (text, want) in cases {
            assert_eq!(toml::from_str::<T>(text).ok().map(|t| t.b), *want, "{text}");
        }
    }
}
