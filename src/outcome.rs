//! What a run or a plan ends with: its figures, and on failure the kind of failure and why.
//!
//! Contract: these are plain data, made by `job` (the run adds its stages' figures up once, in
//! `job::run`) and read by `report`, `probe` and `main`, which maps every [`ExitKind`] to an
//! exit code. [`least_time`] is the one rule for how long requests take at the job's limits
//! over its accounts. This module sits above the stages whose figures it holds (`pacer`,
//! `pass`) and below everything that shows them, so neither side imports `job`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::config::ProviderConfig;
use crate::pacer::AccountFigures;
use crate::provider::sandbox::SandboxStats;

/// What kind of failure ended a run; the binary maps each to its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitKind {
    /// The job file, a flag or a setting is wrong.
    Usage,
    /// The input file (or the state directory) cannot be used.
    Input,
    /// The output is complete, but more numbers failed than `max_failed_ratio` allows.
    TooManyFailed,
    /// The provider refused the credentials.
    Auth,
    /// The provider blocked us for longer than allowed (resumable).
    Blocked,
    /// Stopped by a signal (resumable).
    Interrupted,
    /// A bug or an environment failure (disk full, I/O error).
    Internal,
}

impl ExitKind {
    /// The kind's name in reports (`too_many_failed`).
    pub fn name(self) -> &'static str {
        match self {
            ExitKind::Usage => "usage",
            ExitKind::Input => "input",
            ExitKind::TooManyFailed => "too_many_failed",
            ExitKind::Auth => "auth",
            ExitKind::Blocked => "blocked",
            ExitKind::Interrupted => "interrupted",
            ExitKind::Internal => "internal",
        }
    }
}

/// Why a run or a command failed: the kind (which picks the exit code) and the error to print.
#[derive(Debug)]
pub struct JobError {
    pub kind: ExitKind,
    pub error: anyhow::Error,
}

impl JobError {
    /// A failure of `kind`.
    pub fn new(kind: ExitKind, error: anyhow::Error) -> Self {
        JobError { kind, error }
    }
}

/// What a plan finds: the input, the cache, and what is left to ask.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PlanFigures {
    pub rows: u64,
    /// Phone cells with something in them, over all phone columns.
    pub phone_cells: u64,
    /// Of those, cells holding no valid number.
    pub invalid_cells: u64,
    pub distinct_numbers: u64,
    /// Distinct numbers with a fresh answer in the state store.
    pub cached: u64,
    /// Of the rest, those this run asks for (only its shard's with `run --shard`).
    pub to_look_up: u64,
    pub requests: u64,
    /// The least time those requests take at the configured limits over the accounts.
    pub least_time_s: f64,
    /// The accounts the requests are spread over.
    pub accounts: u64,
    /// Numbers per request, and why that many (`provider.batch_size`, or what `auto` knows).
    pub batch_size: u64,
    pub batch_size_reason: String,
    /// `I/N` for a run of one shard.
    pub shard: Option<String>,
    /// Other runs on this machine holding one of the job's logins when the plan was made:
    /// they share each login's limits, so the least time is longer by their share.
    pub runs_sharing_logins: u64,
    /// With `plan --shards N`: the same work split over N shards.
    pub sharded: Option<ShardedFigures>,
}

/// The plan's work split over shards, each with as many accounts as this job has.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ShardedFigures {
    pub shards: u32,
    /// Numbers to ask in the largest shard, and its requests.
    pub largest_shard: u64,
    pub requests_per_shard: u64,
    /// The least time of the largest shard: the fan-out's.
    pub least_time_s: f64,
}

/// Figures of a run, as printed at its end, written by `--report` and stored in the output.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub plan: PlanFigures,
    /// Passes over the input: 1 when every number had a fresh answer (the output was written
    /// while reading) or for a shard, 2 when numbers were looked up first.
    pub passes: u8,
    /// Whether the output was written (not by a shard, nor by a run that stopped).
    pub output_written: bool,
    /// Phone cells by status (`empty` for blank cells), over all phone columns.
    pub cells_by_status: BTreeMap<String, u64>,
    /// Distinct numbers asked and answered in this run.
    pub looked_up: u64,
    /// Distinct numbers that ended `failed`.
    pub failed_numbers: u64,
    pub requests: u64,
    pub retries: u64,
    pub splits: u64,
    /// Errors by kind: `api_9`, `http_503`, `timeout`, ...
    pub errors: BTreeMap<String, u64>,
    /// Each login's requests, numbers answered and errors, and why it was dropped, if it was.
    pub accounts: Vec<AccountFigures>,
    /// Numbers per request the lookups ended with, and why (`auto`: what the provider took).
    pub batch_size: u64,
    pub batch_size_reason: String,
    /// The five most frequent operators, by phone cells.
    pub top_operators: Vec<(String, u64)>,
    pub elapsed_s: f64,
    /// Seconds spent in each stage.
    pub stages: StageTimes,
    pub sandbox: Option<SandboxStats>,
    /// Files under the state directory keeping the first answers the parser rejected.
    pub rejected_answers: Vec<std::path::PathBuf>,
    /// The numbering plans cells were read with: `normalize.metadata`'s path and SHA-256, or
    /// the built-in version (`PhoneMetadata::describe`).
    pub metadata: String,
}

/// Seconds per stage of a run: where the time went.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StageTimes {
    /// Loading the host's answers from the state store.
    pub cache_s: f64,
    /// The first pass: every row read, normalized and looked up in the answers, and written to
    /// the output as long as every number had an answer.
    pub read_s: f64,
    pub lookups_s: f64,
    /// The second pass, when the first could not write the output, and finishing the file.
    pub write_s: f64,
}

/// The least time `requests` batches holding `numbers` numbers take at the job's limits, each
/// login keeping its own (each window a little longer by the safety margin).
pub fn least_time(p: &ProviderConfig, requests: u64, numbers: u64, accounts: u64) -> Duration {
    let accounts = accounts.max(1);
    let windows =
        |units: u64, limit: u64| units.div_ceil(limit * accounts).saturating_sub(1) as u32;
    let margin = |w: Duration| w + w.mul_f64(p.safety_margin);
    let by_requests =
        margin(p.request_limit.window) * windows(requests, p.request_limit.count.get() as u64);
    let by_numbers = p
        .number_limit
        .map(|r| margin(r.window) * windows(numbers, r.count.get() as u64))
        .unwrap_or_default();
    by_requests.max(by_numbers)
}
