//! A run of a job, stage after stage: input, normalize, plan, lookups through the pacer into the
//! state store, output.
//!
//! Contract: [`run`] reads the input twice (once for the phone columns, once to write), so memory
//! grows with the number of distinct phone values, not with rows. It sends only the plan's
//! batches, commits each answered batch to the state store before counting it, and writes the
//! output only when every number has a terminal status. Failures come back as a [`JobError`]
//! whose [`ExitKind`] the binary maps to an exit code; on every stop the state is kept, so the
//! same command resumes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use polars::prelude::*;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::config::{Job, ProviderKind};
use crate::input::{phone_text, Columns, InputReader};
use crate::normalize::{Normalized, Normalizer, E164};
use crate::output::{enrichment_columns, output_schema, Enrichment, OutputFile, Status};
use crate::pacer::{BatchResult, Pacer, PacerBuilder, Stop};
use crate::plan::Plan;
use crate::progress::{Progress, ProgressMode};
use crate::provider::client::SmscClient;
use crate::provider::sandbox::{Sandbox, SandboxStats};
use crate::provider::NumberAnswer;
use crate::state::{now_ms, StateStore, StoredAnswer, Ttl};

/// What kind of failure ended a run; the binary maps each to its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// The job file, a flag or a setting is wrong.
    Usage,
    /// The input file (or the state directory) cannot be used.
    Input,
    /// The provider refused the credentials.
    Auth,
    /// The provider blocked us for longer than allowed (resumable).
    Blocked,
    /// Stopped by a signal (resumable).
    Interrupted,
    /// A bug or an environment failure.
    Internal,
}

#[derive(Debug)]
pub struct JobError {
    pub kind: ExitKind,
    pub error: anyhow::Error,
}

impl JobError {
    fn new(kind: ExitKind, error: anyhow::Error) -> Self {
        JobError { kind, error }
    }
}

trait OrKind<T> {
    fn or_kind(self, kind: ExitKind) -> Result<T, JobError>;
}

impl<T, E: Into<anyhow::Error>> OrKind<T> for Result<T, E> {
    fn or_kind(self, kind: ExitKind) -> Result<T, JobError> {
        self.map_err(|e| JobError::new(kind, e.into()))
    }
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Ignore cached answers and ask again.
    pub refresh: bool,
    pub progress: ProgressMode,
    /// Set when the run should stop (a signal arrived).
    pub interrupted: Arc<AtomicBool>,
}

/// Figures of a finished run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub rows: u64,
    /// Row counts by status, over all phone columns (`empty` for blank cells).
    pub statuses: BTreeMap<String, u64>,
    pub distinct_numbers: u64,
    pub cached: u64,
    pub looked_up: u64,
    pub requests: u64,
    pub retries: u64,
    pub errors: BTreeMap<String, u64>,
    pub elapsed_s: f64,
    pub sandbox: Option<SandboxStats>,
}

/// The key answers are cached under: the provider's host. The sandbox's data does not depend
/// on its port, so all sandboxes share one key.
fn cache_key(job: &Job, client: Option<&SmscClient>) -> String {
    match (job.provider.kind, client) {
        (ProviderKind::Sandbox, _) => "sandbox".into(),
        (ProviderKind::Smsc, Some(c)) => c.host(),
        (ProviderKind::Smsc, None) => job
            .provider
            .base_url
            .as_ref()
            .and_then(|u| u.host_str())
            .unwrap_or("smsc")
            .to_string(),
    }
}

/// Distinct raw phone values and what they normalize to.
pub struct Scan {
    pub rows: u64,
    pub raw: HashMap<Box<str>, Normalized>,
}

impl Scan {
    pub fn distinct_numbers(&self) -> HashSet<E164> {
        self.raw
            .values()
            .filter_map(|n| {
                if let Normalized::Valid(e) = n {
                    Some(*e)
                } else {
                    None
                }
            })
            .collect()
    }
}

fn batch_rows(job: &Job) -> NonZeroUsize {
    job.output.row_group_size
}

/// Pass 1: every phone cell, each distinct raw value normalized once.
pub fn scan_phones(
    job: &Job,
    progress: ProgressMode,
    interrupted: &AtomicBool,
) -> Result<Scan, JobError> {
    let mut reader = InputReader::open(&job.input, Columns::PhonesOnly, batch_rows(job))
        .or_kind(ExitKind::Input)?;
    let normalizer = Normalizer::new(job.input.default_region);
    let mut raw: HashMap<Box<str>, Normalized> = HashMap::new();
    let mut rows = 0u64;
    let bar = Progress::new("reading", 0, progress);
    while let Some(batch) = reader.next_batch().or_kind(ExitKind::Input)? {
        if interrupted.load(Ordering::SeqCst) {
            return Err(JobError::new(
                ExitKind::Interrupted,
                anyhow!("interrupted while reading the input"),
            ));
        }
        for name in &job.input.phone_columns {
            let column = batch.column(name).or_kind(ExitKind::Input)?;
            let text = phone_text(column, &job.input.path).or_kind(ExitKind::Input)?;
            for value in text.iter().flatten() {
                if !raw.contains_key(value) {
                    raw.insert(value.into(), normalizer.normalize(value));
                }
            }
        }
        rows += batch.height() as u64;
        bar.inc(batch.height() as u64, || {
            format!("{} distinct values", raw.len())
        });
    }
    bar.finish();
    Ok(Scan { rows, raw })
}

/// What is known of each number at the end of the lookups.
#[derive(Default)]
pub struct Answers {
    pub known: HashMap<E164, StoredAnswer>,
    pub failed: HashMap<E164, String>,
}

impl Answers {
    fn enrichment(&self, normalized: Option<&Normalized>) -> Enrichment<'_> {
        match normalized {
            None | Some(Normalized::Empty) => Enrichment::EMPTY,
            Some(Normalized::Invalid) => Enrichment {
                status: Some(Status::InvalidNumber),
                ..Enrichment::EMPTY
            },
            Some(Normalized::Valid(n)) => {
                let base = Enrichment {
                    e164: Some(n.0),
                    ..Enrichment::EMPTY
                };
                match self.known.get(n) {
                    Some(stored) => {
                        let at = Some(stored.checked_at_ms);
                        match &stored.answer {
                            NumberAnswer::Found(info) => Enrichment {
                                status: Some(Status::Ok),
                                info: Some(info),
                                checked_at_ms: at,
                                ..base
                            },
                            NumberAnswer::NotFound => Enrichment {
                                status: Some(Status::NotFound),
                                checked_at_ms: at,
                                ..base
                            },
                            NumberAnswer::Rejected => Enrichment {
                                status: Some(Status::InvalidNumber),
                                checked_at_ms: at,
                                ..base
                            },
                        }
                    }
                    None => Enrichment {
                        status: Some(Status::Failed),
                        ..base
                    },
                }
            }
        }
    }
}

/// Runs a job from input to output.
pub async fn run(job: &Job, options: &RunOptions) -> Result<RunSummary, JobError> {
    let started = Instant::now();
    // Everything that can be refused is refused before any request: the schema, the names.
    let input_schema = InputReader::open(&job.input, Columns::All, batch_rows(job))
        .or_kind(ExitKind::Input)?
        .schema()
        .clone();
    let schema = output_schema(&input_schema, &job.output.prefixes).or_kind(ExitKind::Usage)?;
    let credentials = job.provider.credentials().or_kind(ExitKind::Usage)?;
    let state = Arc::new(StateStore::open(&job.state.dir).or_kind(ExitKind::Input)?);

    let scan = {
        let (job, progress, interrupted) =
            (job.clone(), options.progress, options.interrupted.clone());
        tokio::task::spawn_blocking(move || scan_phones(&job, progress, &interrupted))
            .await
            .or_kind(ExitKind::Internal)??
    };
    let distinct = scan.distinct_numbers();
    tracing::info!(
        rows = scan.rows,
        distinct_values = scan.raw.len(),
        distinct_numbers = distinct.len(),
        "input read"
    );

    let sandbox = match (job.provider.kind, &job.provider.base_url) {
        (ProviderKind::Sandbox, None) => Some(
            Sandbox::start(job.provider.sandbox.clone(), "127.0.0.1:0".parse().unwrap())
                .await
                .or_kind(ExitKind::Internal)?,
        ),
        _ => None,
    };
    let base_url = match &sandbox {
        Some(s) => s.base_url(),
        None => job
            .provider
            .base_url
            .clone()
            .expect("validated: a base URL unless the sandbox runs in-process"),
    };
    // The reqwest timeout is a backstop behind the pacer's own.
    let client = SmscClient::new(
        &base_url,
        credentials,
        job.provider.timeout + Duration::from_secs(5),
    )
    .or_kind(ExitKind::Usage)?;
    let host = cache_key(job, Some(&client));
    let ttl = Ttl {
        found: job.state.ttl_ok,
        not_found: job.state.ttl_not_found,
    };
    let plan = Plan::build(
        &distinct,
        &state,
        &host,
        ttl,
        options.refresh,
        job.provider.batch_size,
    )
    .or_kind(ExitKind::Input)?;
    tracing::info!(
        cached = plan.cached.len(),
        to_look_up = plan.to_look_up(),
        requests = plan.batches.len(),
        "plan"
    );

    let mut answers = Answers {
        known: plan.cached,
        failed: HashMap::new(),
    };
    let mut summary = RunSummary {
        rows: scan.rows,
        distinct_numbers: distinct.len() as u64,
        cached: answers.known.len() as u64,
        ..Default::default()
    };
    if !plan.batches.is_empty() {
        let pacer = Arc::new(PacerBuilder::new(&job.provider).build(client));
        let outcome = look_up(&pacer, plan.batches, &state, &host, &mut answers, options).await;
        summary.looked_up = outcome.looked_up;
        summary.requests = pacer.counters.requests.load(Ordering::Relaxed);
        summary.retries = pacer.counters.retries.load(Ordering::Relaxed);
        summary.errors = pacer
            .counters
            .errors
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        outcome.result?;
    }
    summary.sandbox = sandbox.as_ref().map(Sandbox::stats);
    drop(sandbox);
    if !answers.failed.is_empty() {
        tracing::warn!(numbers = answers.failed.len(), "numbers failed after all retries; they are marked `failed` and the next run asks again");
    }

    let statuses = {
        let (job, interrupted, progress) =
            (job.clone(), options.interrupted.clone(), options.progress);
        let rows = summary.rows;
        tokio::task::spawn_blocking(move || {
            write_output(&job, &schema, &scan, &answers, rows, progress, &interrupted)
        })
        .await
        .or_kind(ExitKind::Internal)??
    };
    summary.statuses = statuses;
    summary.elapsed_s = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    Ok(summary)
}

struct LookupOutcome {
    looked_up: u64,
    result: Result<(), JobError>,
}

/// Sends the plan's batches through the pacer, committing every answered batch.
async fn look_up(
    pacer: &Arc<Pacer>,
    batches: Vec<Vec<E164>>,
    state: &Arc<StateStore>,
    host: &str,
    answers: &mut Answers,
    options: &RunOptions,
) -> LookupOutcome {
    let total: u64 = batches.iter().map(|b| b.len() as u64).sum();
    let progress = Progress::new("lookups", total, options.progress);
    let mut queue = batches.into_iter();
    let mut in_flight: JoinSet<BatchResult> = JoinSet::new();
    // Enough batches queued to keep every concurrency slot busy, no more.
    let lanes = pacer.concurrency() * 2;
    let mut looked_up = 0u64;
    let watcher = {
        let (pacer, interrupted) = (pacer.clone(), options.interrupted.clone());
        tokio::spawn(async move {
            loop {
                if interrupted.load(Ordering::SeqCst) {
                    pacer.stop(Stop::Interrupted);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let mut commit_error = None;
    loop {
        while in_flight.len() < lanes && pacer.stopped().is_none() {
            match queue.next() {
                Some(batch) => {
                    let pacer = pacer.clone();
                    in_flight.spawn(async move { pacer.lookup(batch).await });
                }
                None => break,
            }
        }
        let Some(done) = in_flight.join_next().await else {
            break;
        };
        let result = match done {
            Ok(r) => r,
            Err(e) => {
                commit_error.get_or_insert(JobError::new(
                    ExitKind::Internal,
                    anyhow!("a lookup task failed: {e}"),
                ));
                continue;
            }
        };
        let at = now_ms();
        let stored: Vec<(E164, StoredAnswer)> = result
            .answers
            .into_iter()
            .map(|(n, a)| {
                (
                    n,
                    StoredAnswer {
                        checked_at_ms: at,
                        answer: a,
                    },
                )
            })
            .collect();
        if !stored.is_empty() {
            let state = state.clone();
            let host = host.to_string();
            let to_commit = stored.clone();
            let committed =
                tokio::task::spawn_blocking(move || state.commit(&host, &to_commit)).await;
            match committed {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    pacer.stop(Stop::Interrupted);
                    commit_error.get_or_insert(JobError::new(
                        ExitKind::Internal,
                        anyhow::Error::new(e).context("committing answers to the state store"),
                    ));
                    continue;
                }
                Err(e) => {
                    pacer.stop(Stop::Interrupted);
                    commit_error.get_or_insert(JobError::new(
                        ExitKind::Internal,
                        anyhow!("committing answers: {e}"),
                    ));
                    continue;
                }
            }
        }
        let n = (stored.len() + result.failed.len()) as u64;
        looked_up += stored.len() as u64;
        answers.known.extend(stored);
        answers.failed.extend(result.failed);
        let requests = pacer.counters.requests.load(Ordering::Relaxed);
        let retries = pacer.counters.retries.load(Ordering::Relaxed);
        let failed = answers.failed.len();
        progress.inc(n, || {
            format!("{requests} requests, {retries} retries, {failed} failed")
        });
    }
    watcher.abort();
    progress.finish();
    let result = match (commit_error, pacer.stopped()) {
        (Some(e), _) => Err(e),
        (None, Some(Stop::AuthRejected(why))) => Err(JobError::new(ExitKind::Auth, anyhow!("the provider refused the credentials: {why}. Check SMSC_LOGIN and SMSC_PASSWORD (and the provider's allowed IPs); answers so far are kept"))),
        (None, Some(Stop::Blocked(why))) => Err(JobError::new(ExitKind::Blocked, anyhow!("{why}. Answers so far are kept: run the same command again later to resume"))),
        (None, Some(Stop::Interrupted)) => Err(JobError::new(ExitKind::Interrupted, anyhow!("interrupted; {looked_up} numbers answered in this run are kept: run the same command again to resume"))),
        (None, None) => Ok(()),
    };
    LookupOutcome { looked_up, result }
}

/// Pass 2: every row again, in order, with its enrichment, into the output file.
fn write_output(
    job: &Job,
    schema: &Schema,
    scan: &Scan,
    answers: &Answers,
    total_rows: u64,
    progress: ProgressMode,
    interrupted: &AtomicBool,
) -> Result<BTreeMap<String, u64>, JobError> {
    let mut reader =
        InputReader::open(&job.input, Columns::All, batch_rows(job)).or_kind(ExitKind::Input)?;
    let mut out =
        OutputFile::create(&job.output.path, schema, job.settings()).or_kind(ExitKind::Internal)?;
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let bar = Progress::new("writing", total_rows, progress);
    while let Some(mut batch) = reader.next_batch().or_kind(ExitKind::Input)? {
        if interrupted.load(Ordering::SeqCst) {
            return Err(JobError::new(
                ExitKind::Interrupted,
                anyhow!(
                    "interrupted while writing the output; nothing was written to {}",
                    job.output.path.display()
                ),
            ));
        }
        let mut added = Vec::new();
        for (name, prefix) in job.input.phone_columns.iter().zip(&job.output.prefixes) {
            let column = batch.column(name).or_kind(ExitKind::Input)?;
            let text = phone_text(column, &job.input.path).or_kind(ExitKind::Input)?;
            let rows: Vec<Enrichment> = text
                .iter()
                .map(|v| answers.enrichment(v.and_then(|v| scan.raw.get(v))))
                .collect();
            for r in &rows {
                *statuses
                    .entry(r.status.map(Status::as_str).unwrap_or("empty").to_string())
                    .or_default() += 1;
            }
            added.extend(enrichment_columns(prefix, rows.into_iter()));
        }
        for column in added {
            batch.with_column(column).or_kind(ExitKind::Internal)?;
        }
        out.write(&mut batch)
            .with_context(|| format!("writing {}", job.output.path.display()))
            .or_kind(ExitKind::Internal)?;
        bar.inc(batch.height() as u64, String::new);
    }
    bar.finish();
    out.finish().or_kind(ExitKind::Internal)?;
    Ok(statuses)
}
