//! A plan's figures, computed once from the first pass's tally and the plan.
//!
//! Contract: [`plan_figures`] is the one place `plan` and `run` get their [`PlanFigures`]
//! from, so a plan's figures match its run's.

use std::num::NonZeroU32;
use std::time::Instant;

use crate::config::ProviderConfig;
use crate::outcome::{least_time, PlanFigures, ShardedFigures};
use crate::pass::Tally;
use crate::plan::{Plan, Shard};

/// Seconds since `since`, to the millisecond.
pub(super) fn seconds(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

/// How the plan's lookups go: over how many accounts, in batches of which length and why, for
/// which shard, and (with `plan --shards N`) split over how many shards.
pub(super) struct LookupSettings<'a> {
    pub provider: &'a ProviderConfig,
    pub accounts: u64,
    pub batch_size: (usize, String),
    pub shard: Option<Shard>,
    pub shards: Option<NonZeroU32>,
    /// Other runs on this machine holding the job's logins now.
    pub runs_sharing_logins: u64,
}

/// A plan's figures: the first pass's counts, and the lookups `plan` takes as `lookup` goes.
pub(super) fn plan_figures(tally: &Tally, plan: &Plan, lookup: &LookupSettings) -> PlanFigures {
    let (size, reason) = lookup.batch_size.clone();
    let requests = plan.requests(size);
    let to_look_up = plan.to_look_up() as u64;
    let least = |requests, numbers| {
        least_time(lookup.provider, requests, numbers, lookup.accounts).as_secs_f64()
    };
    let sharded = lookup.shards.map(|count| {
        let largest = plan.shard_sizes(count).into_iter().max().unwrap_or(0);
        let requests = crate::plan::requests_for(largest, size);
        let largest = largest as u64;
        ShardedFigures {
            shards: count.get(),
            largest_shard: largest,
            requests_per_shard: requests,
            least_time_s: least(requests, largest),
        }
    });
    PlanFigures {
        rows: tally.rows,
        phone_cells: tally.phone_cells(),
        invalid_cells: tally.invalid_cells,
        distinct_numbers: tally.distinct_numbers(),
        cached: tally.known_numbers,
        to_look_up,
        requests,
        least_time_s: least(requests, to_look_up),
        accounts: lookup.accounts,
        batch_size: size as u64,
        batch_size_reason: reason,
        shard: lookup.shard.map(|s| s.to_string()),
        runs_sharing_logins: lookup.runs_sharing_logins,
        sharded,
    }
}
