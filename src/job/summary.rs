//! The run's figures, added up once: each stage returns what it did, and [`Stages::summary`]
//! is the one place a [`RunSummary`] is made from them.
//!
//! Contract: a stage's figures are recorded whole, after it returns, and only then; a run that
//! stopped part-way has the figures of the stages it finished (and of the lookups, whatever
//! their outcome), so its summary says what it did.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::outcome::{PlanFigures, RunSummary, StageTimes};
use crate::pacer::AccountFigures;
use crate::provider::sandbox::SandboxStats;

/// What the lookup stage did, whatever its outcome.
#[derive(Debug, Clone, Default)]
pub(super) struct LookupFigures {
    /// Distinct numbers asked and answered.
    pub looked_up: u64,
    /// Distinct numbers given up on.
    pub failed_numbers: u64,
    pub requests: u64,
    pub retries: u64,
    pub splits: u64,
    /// Errors by kind: `api_9`, `http_503`, `timeout`, ...
    pub errors: BTreeMap<String, u64>,
    pub accounts: Vec<AccountFigures>,
    /// Numbers per request the lookups ended with, and why.
    pub batch_size: (u64, String),
    pub sandbox: Option<SandboxStats>,
    pub rejected_answers: Vec<PathBuf>,
}

/// What the pass that wrote the output counted.
#[derive(Debug, Clone, Default)]
pub(super) struct WriteFigures {
    /// 1 when the first pass wrote the output, 2 when a second pass did.
    pub passes: u8,
    pub cells_by_status: BTreeMap<String, u64>,
    pub top_operators: Vec<(String, u64)>,
    /// Distinct numbers written `failed`.
    pub failed_numbers: u64,
}

/// What the stages of one run returned, as far as it got.
#[derive(Debug, Clone, Default)]
pub(super) struct Stages {
    pub plan: Option<PlanFigures>,
    pub times: StageTimes,
    pub lookups: Option<LookupFigures>,
    pub written: Option<WriteFigures>,
    /// The output file is in place.
    pub output_written: bool,
    /// A shard's run, which writes no output.
    pub shard: bool,
}

impl Stages {
    /// The run's summary from its stages' figures: the one place a [`RunSummary`] is made.
    /// `metadata` names the numbering plans (`PhoneMetadata::describe`).
    pub fn summary(&self, metadata: String, elapsed_s: f64) -> RunSummary {
        let plan = self.plan.clone().unwrap_or_default();
        let lookups = self.lookups.clone().unwrap_or_default();
        let written = self.written.clone().unwrap_or_default();
        let (batch_size, batch_size_reason) = match &self.lookups {
            Some(l) => l.batch_size.clone(),
            None => (plan.batch_size, plan.batch_size_reason.clone()),
        };
        let passes = match (&self.written, self.shard && self.plan.is_some()) {
            (Some(w), _) => w.passes,
            (None, true) => 1,
            (None, false) => 0,
        };
        RunSummary {
            plan,
            passes,
            output_written: self.output_written,
            cells_by_status: written.cells_by_status,
            looked_up: lookups.looked_up,
            // What the output says when it was written; what the lookups gave up on otherwise.
            failed_numbers: match &self.written {
                Some(w) => w.failed_numbers,
                None => lookups.failed_numbers,
            },
            requests: lookups.requests,
            retries: lookups.retries,
            splits: lookups.splits,
            errors: lookups.errors,
            accounts: lookups.accounts,
            batch_size,
            batch_size_reason,
            top_operators: written.top_operators,
            elapsed_s,
            stages: self.times,
            sandbox: lookups.sandbox,
            rejected_answers: lookups.rejected_answers,
            metadata,
        }
    }
}
