//! A run of a job, stage after stage: input, normalize, plan, lookups through the pacer into the
//! state store, output. Also `plan`, the same first stages without sending anything.
//!
//! Contract: [`run`] loads the host's answers, then reads the input once, writing the output as
//! it goes; only when that pass finds numbers without a fresh answer does it stop writing, look
//! them up and read the input a second time to write. Memory grows with the answers and the
//! distinct numbers, not with rows. It sends only the plan's batches, commits each answered
//! batch to the state store before counting it, and writes the output only when every number
//! has a terminal status. It always returns a [`RunSummary`]
//! (partial when the run stopped) and, on failure, a [`JobError`] whose [`ExitKind`] the binary
//! maps to an exit code; on every stop the state is kept, so the same command resumes.
//! [`plan`] computes its figures with [`run`]'s first pass, so a plan's figures match the run's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use polars::prelude::Schema;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::config::{Credentials, Job, ProviderKind};
use crate::input::{ColumnTypes, Columns, InputReader, TypesError};
use crate::normalize::E164;
use crate::output::{output_schema, refuse_writing_input, OutputFile};
use crate::pacer::{BatchResult, Pacer, PacerBuilder, Stop};
use crate::pass::{Pass, PassError, PassOutcome, Tally, Unknown};
use crate::plan::Plan;
use crate::progress::{Figures, Progress, ProgressMode};
use crate::provider::rejected::{Redactor, RejectedBodies};
use crate::provider::sandbox::{Sandbox, SandboxStats};
use crate::state::{now_ms, AnswerBook, StateStore, StoredAnswer, Ttl};

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
    pub to_look_up: u64,
    pub requests: u64,
    /// The least time those requests take at the configured limits.
    pub least_time_s: f64,
}

/// Figures of a run, as printed at its end, written by `--report` and stored in the output.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub plan: PlanFigures,
    /// Passes over the input: 1 when every number had a fresh answer (the output was written
    /// while reading), 2 when numbers were looked up first.
    pub passes: u8,
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
    /// The five most frequent operators, by phone cells.
    pub top_operators: Vec<(String, u64)>,
    pub elapsed_s: f64,
    /// Seconds spent in each stage.
    pub stages: StageTimes,
    pub sandbox: Option<SandboxStats>,
    /// Files under the state directory keeping the first answers the parser rejected.
    pub rejected_answers: Vec<std::path::PathBuf>,
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

fn seconds(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

/// The key answers are cached under: the provider's host and port. The sandbox's data does not
/// depend on its port, so all sandboxes share one key.
pub fn cache_key(job: &Job) -> String {
    match (job.provider.kind, &job.provider.base_url) {
        (ProviderKind::Smsc, Some(url)) => match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or("unknown")),
            None => url.host_str().unwrap_or("unknown").to_string(),
        },
        _ => "sandbox".into(),
    }
}

/// The least time `plan`'s requests take at the job's limits (each window a little longer by
/// the safety margin).
fn least_time(job: &Job, plan: &Plan) -> Duration {
    let p = &job.provider;
    let windows = |units: u64, limit: u64| units.div_ceil(limit).saturating_sub(1) as u32;
    let margin = |w: Duration| w + w.mul_f64(p.safety_margin);
    let by_requests = margin(p.request_limit.window)
        * windows(
            plan.batches.len() as u64,
            p.request_limit.count.get() as u64,
        );
    let by_numbers = p
        .number_limit
        .map(|r| margin(r.window) * windows(plan.to_look_up() as u64, r.count.get() as u64))
        .unwrap_or_default();
    by_requests.max(by_numbers)
}

/// Everything before the first request: the answers loaded, the input read once (and
/// written, if every number had an answer), the plan made.
struct Prepared {
    book: AnswerBook,
    state: Arc<StateStore>,
    first: PassOutcome,
    plan: Plan,
    figures: PlanFigures,
    /// The CSV column types every pass reads.
    types: ColumnTypes,
    schema: Schema,
    stages: StageTimes,
}

/// A pass's error as a job error: what stopped, and what is kept.
fn pass_error(job: &Job, e: PassError, first: bool) -> JobError {
    match e {
        PassError::Input(e) => JobError::new(ExitKind::Input, e),
        PassError::Internal(e) => JobError::new(ExitKind::Internal, e),
        PassError::Output(e) => JobError::new(
            ExitKind::Internal,
            e.context(format!("writing {}", job.output.path.display())),
        ),
        PassError::Interrupted if first => JobError::new(
            ExitKind::Interrupted,
            anyhow!("interrupted while reading the input; nothing was sent and nothing written"),
        ),
        PassError::Interrupted => JobError::new(
            ExitKind::Interrupted,
            anyhow!("interrupted while writing the output; nothing was written to {}; every answer is kept: run the same command again", job.output.path.display()),
        ),
    }
}

/// Everything that can be refused before any request, and before the data is read: the CSV
/// column types (settled here, once, for every pass), the input's schema, the output's names
/// and location. Returns the types and the output's schema.
fn check_before_reading(job: &Job) -> Result<(ColumnTypes, Schema), JobError> {
    let types = ColumnTypes::settle(&job.input).map_err(|e| match e {
        TypesError::UnknownColumn { .. } => JobError::new(ExitKind::Usage, e.into()),
        TypesError::Input(e) => JobError::new(ExitKind::Input, e),
    })?;
    let input_schema =
        InputReader::open(&job.input, &types, Columns::All, job.output.row_group_size)
            .or_kind(ExitKind::Input)?
            .schema()
            .clone();
    let schema = output_schema(&input_schema, &job.output.prefixes).or_kind(ExitKind::Usage)?;
    refuse_writing_input(&job.input.path, &job.output.path, &job.state.dir)
        .or_kind(ExitKind::Usage)?;
    check_output_location(job).or_kind(ExitKind::Usage)?;
    Ok((types, schema))
}

/// `write`: whether the first pass writes the output (a run) or only counts (a plan).
fn prepare(
    job: &Job,
    refresh: bool,
    write: bool,
    progress: ProgressMode,
    interrupted: &Arc<AtomicBool>,
) -> Result<Prepared, JobError> {
    let (types, schema) = check_before_reading(job)?;
    crate::normalize::warm_up();
    let state = Arc::new(StateStore::open(&job.state.dir).or_kind(ExitKind::Input)?);
    let started = Instant::now();
    let ttl = Ttl {
        found: job.state.ttl_ok,
        not_found: job.state.ttl_not_found,
    };
    // Loaded even with `refresh`, which then sets the answers aside: loading is also when a
    // grown log is compacted, and a job run with `--refresh` every night must not grow it forever.
    let book = state
        .load(&cache_key(job), ttl, now_ms())
        .or_kind(ExitKind::Input)?;
    let book = match refresh {
        true => AnswerBook::default(),
        false => book,
    };
    let cache_s = seconds(started);
    let started = Instant::now();
    // With no answers at all the output cannot be written in this pass: do not start it.
    let output = (write && !book.is_empty()).then_some(&schema);
    let mut first = Pass {
        job,
        types: &types,
        book: &book,
        unknown: Unknown::Collect,
        output,
        label: "reading",
        total_rows: 0,
        progress,
        interrupted,
    }
    .run()
    .map_err(|e| pass_error(job, e, true))?;
    let stages = StageTimes {
        cache_s,
        read_s: seconds(started),
        ..Default::default()
    };
    let plan = Plan::new(&first.tally.unknown, job.provider.batch_size);
    let figures = plan_figures(job, &first.tally, &plan);
    // The plan holds the numbers now; the second pass counts them again.
    first.tally.unknown = Default::default();
    tracing::info!(
        rows = figures.rows,
        distinct_numbers = figures.distinct_numbers,
        cached = figures.cached,
        to_look_up = figures.to_look_up,
        requests = figures.requests,
        least_time_s = figures.least_time_s,
        "plan"
    );
    Ok(Prepared {
        book,
        state,
        first,
        plan,
        figures,
        types,
        schema,
        stages,
    })
}

fn plan_figures(job: &Job, tally: &Tally, plan: &Plan) -> PlanFigures {
    PlanFigures {
        rows: tally.rows,
        phone_cells: tally.phone_cells(),
        invalid_cells: tally.invalid_cells,
        distinct_numbers: tally.distinct_numbers(),
        cached: tally.known_numbers,
        to_look_up: plan.to_look_up() as u64,
        requests: plan.batches.len() as u64,
        least_time_s: least_time(job, plan).as_secs_f64(),
    }
}

/// The output's directory must exist or be creatable, and be writable, before any request.
fn check_output_location(job: &Job) -> anyhow::Result<()> {
    let target = &job.output.path;
    if target.is_dir() {
        anyhow::bail!("output.path {} is a directory", target.display());
    }
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("output.path: cannot create the directory {}", dir.display()))?;
    let probe = dir.join(format!(".phone-enrich-probe.{}", std::process::id()));
    std::fs::write(&probe, b"")
        .with_context(|| format!("output.path: cannot write in {}", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// `phone-enrich plan`: the run's first stages, sending nothing and writing nothing.
pub fn plan(job: &Job, progress: ProgressMode) -> Result<PlanFigures, JobError> {
    let prepared = prepare(
        job,
        false,
        false,
        progress,
        &Arc::new(AtomicBool::new(false)),
    )?;
    Ok(prepared.figures)
}

/// Runs a job from input to output. The summary is returned whatever the outcome.
pub async fn run(job: &Job, options: &RunOptions) -> (RunSummary, Result<(), JobError>) {
    let started = Instant::now();
    let mut summary = RunSummary::default();
    let result = run_stages(job, options, &mut summary).await;
    summary.elapsed_s = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    (summary, result)
}

async fn run_stages(
    job: &Job,
    options: &RunOptions,
    summary: &mut RunSummary,
) -> Result<(), JobError> {
    let credentials = job.provider.credentials().or_kind(ExitKind::Usage)?;
    let prepared = {
        let (job, options) = (job.clone(), options.clone());
        tokio::task::spawn_blocking(move || {
            prepare(
                &job,
                options.refresh,
                true,
                options.progress,
                &options.interrupted,
            )
        })
        .await
        .or_kind(ExitKind::Internal)??
    };
    summary.plan = prepared.figures.clone();
    summary.stages = prepared.stages;
    let Prepared {
        mut book,
        state,
        first,
        plan,
        types,
        schema,
        ..
    } = prepared;

    let started = Instant::now();
    // Why the provider answered no request, when the lookups stopped for that.
    let mut unanswered = None;
    if !plan.batches.is_empty() {
        let lookups = Lookups {
            job,
            state: &state,
            options,
        };
        unanswered = lookups.run(credentials, plan, &mut book, summary).await?;
    }
    summary.stages.lookups_s = seconds(started);

    let started = Instant::now();
    summary.passes = if first.output.is_some() { 1 } else { 2 };
    let (tally, output, book) = match first.output {
        // The first pass found an answer for every number and wrote the output already.
        Some(output) => (first.tally, output, book),
        None => second_pass(job, options, types, schema, book, summary.plan.rows).await?,
    };
    summary.failed_numbers = tally.unknown.len() as u64;
    (summary.cells_by_status, summary.top_operators) = tally.by_status(&book);
    let mut metadata = job.settings();
    metadata.push((
        "phone_enrich.summary".into(),
        serde_json::to_string(&*summary).expect("a summary serializes"),
    ));
    finish_output(job, output, metadata).await?;
    summary.stages.write_s = seconds(started);
    if let Some(why) = unanswered {
        return Err(stop_error(Stop::Unconfirmed(why), summary));
    }
    check_failed_ratio(job, summary)
}

/// The pass that writes the output after the lookups; numbers still without an answer are
/// written as `failed`.
async fn second_pass(
    job: &Job,
    options: &RunOptions,
    types: ColumnTypes,
    schema: Schema,
    book: AnswerBook,
    rows: u64,
) -> Result<(Tally, OutputFile, AnswerBook), JobError> {
    let (job, options) = (job.clone(), options.clone());
    tokio::task::spawn_blocking(move || {
        let second = Pass {
            job: &job,
            types: &types,
            book: &book,
            unknown: Unknown::Fail,
            output: Some(&schema),
            label: "writing",
            total_rows: rows,
            progress: options.progress,
            interrupted: &options.interrupted,
        }
        .run()
        .map_err(|e| pass_error(&job, e, false))?;
        let output = second
            .output
            .expect("a pass that fails unknown numbers writes to its end");
        Ok((second.tally, output, book))
    })
    .await
    .or_kind(ExitKind::Internal)?
}

/// Exit 4 when more numbers failed than `output.max_failed_ratio` allows (the output is
/// written by then).
fn check_failed_ratio(job: &Job, summary: &RunSummary) -> Result<(), JobError> {
    let distinct = summary.plan.distinct_numbers.max(1);
    let failed_ratio = summary.failed_numbers as f64 / distinct as f64;
    if summary.failed_numbers == 0 || failed_ratio <= job.output.max_failed_ratio {
        return Ok(());
    }
    Err(JobError::new(
        ExitKind::TooManyFailed,
        anyhow!(
            "{} of {} numbers ({:.2}%) failed after every retry, more than output.max_failed_ratio {}; the output is written with status `failed` for them, and the next run asks again",
            summary.failed_numbers,
            summary.plan.distinct_numbers,
            failed_ratio * 100.0,
            job.output.max_failed_ratio
        ),
    ))
}

/// Writes the output's footer with the run's figures and moves the file into place.
async fn finish_output(
    job: &Job,
    output: OutputFile,
    metadata: Vec<(String, String)>,
) -> Result<(), JobError> {
    let path = job.output.path.clone();
    tokio::task::spawn_blocking(move || {
        output
            .finish(metadata)
            .with_context(|| format!("writing {}", path.display()))
    })
    .await
    .or_kind(ExitKind::Internal)?
    .or_kind(ExitKind::Internal)?;
    Ok(())
}

/// The lookup stage: the plan's batches through the pacer, every answered batch committed to
/// the state store before it counts.
struct Lookups<'a> {
    job: &'a Job,
    state: &'a Arc<StateStore>,
    options: &'a RunOptions,
}

impl Lookups<'_> {
    /// Starts the provider (the in-process sandbox, or the client for the real one), looks the
    /// plan up, and fills the summary's lookup figures, whatever the outcome. `Ok(Some(why))`:
    /// the provider answered none of the first requests, and the numbers not looked up are to
    /// be written `failed`.
    async fn run(
        &self,
        credentials: Credentials,
        plan: Plan,
        book: &mut AnswerBook,
        summary: &mut RunSummary,
    ) -> Result<Option<String>, JobError> {
        let provider = &self.job.provider;
        let redactor = Redactor::new(&credentials.password);
        // The reqwest timeout is a backstop behind the pacer's own.
        let timeout = provider.timeout + Duration::from_secs(5);
        let connection = crate::provider::connect(provider, credentials, timeout)
            .await
            .or_kind(ExitKind::Internal)?;
        let rejected = RejectedBodies::new(&self.job.state.dir.join("rejected"), redactor);
        let pacer = PacerBuilder::new(provider).keep_rejected(rejected);
        let pacer = Arc::new(pacer.build(connection.client));
        // Room for every answer to come, so the table never grows (a copy) mid-run.
        book.reserve(plan.to_look_up());
        let result = self
            .look_up(&pacer, plan.batches, book, summary.plan.cached, summary)
            .await;
        summary.requests = pacer.counters.requests.load(Ordering::Relaxed);
        summary.retries = pacer.counters.retries.load(Ordering::Relaxed);
        summary.splits = pacer.counters.splits.load(Ordering::Relaxed);
        summary.errors = pacer
            .counters
            .errors
            .lock()
            .unwrap()
            .clone()
            .into_iter()
            .collect();
        summary.sandbox = connection.sandbox.as_ref().map(Sandbox::stats);
        summary.rejected_answers = pacer.rejected_files();
        result?;
        Ok(match pacer.stopped() {
            Some(Stop::Unconfirmed(why)) => Some(why),
            _ => None,
        })
    }

    /// Sends the batches, a few more than the concurrency at a time, and commits each answered
    /// one; stops sending when the pacer stops (a signal, bad credentials, a long block) or a
    /// commit fails.
    async fn look_up(
        &self,
        pacer: &Arc<Pacer>,
        batches: Vec<Vec<E164>>,
        book: &mut AnswerBook,
        cached: u64,
        summary: &mut RunSummary,
    ) -> Result<(), JobError> {
        let total: u64 = batches.iter().map(|b| b.len() as u64).sum();
        let progress = Progress::new("lookups", total, self.options.progress);
        let mut queue = batches.into_iter();
        let mut in_flight: JoinSet<BatchResult> = JoinSet::new();
        // Enough batches queued to keep every concurrency slot busy, no more.
        let lanes = pacer.concurrency() * 2;
        let mut failed = 0u64;
        let watcher = watch_interrupt(pacer.clone(), self.options.interrupted.clone());
        let mut first_error = None;
        loop {
            while in_flight.len() < lanes && pacer.stopped().is_none() {
                let Some(batch) = queue.next() else { break };
                let pacer = pacer.clone();
                in_flight.spawn(async move { pacer.lookup(batch).await });
            }
            let Some(done) = in_flight.join_next().await else {
                break;
            };
            let committed = match done {
                Ok(result) => self.commit(result, book).await,
                Err(e) => Err(JobError::new(
                    ExitKind::Internal,
                    anyhow!("a lookup task failed: {e}"),
                )),
            };
            let (answered, gave_up) = match committed {
                Ok(counts) => counts,
                Err(e) => {
                    pacer.stop(Stop::StateFailed);
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            summary.looked_up += answered;
            failed += gave_up;
            progress.inc(answered + gave_up, &pacer_figures(pacer, cached, failed));
        }
        watcher.abort();
        progress.finish();
        match (first_error, pacer.stopped()) {
            (Some(e), _) => Err(e),
            // The numbers not looked up are written `failed`; `run_stages` says why.
            (None, Some(Stop::Unconfirmed(_))) | (None, None) => Ok(()),
            (None, Some(stop)) => Err(stop_error(stop, summary)),
        }
    }

    /// Commits a batch's answers to the state store (flushed before this returns) and then to
    /// the book; returns the numbers answered and the numbers given up on.
    async fn commit(
        &self,
        result: BatchResult,
        book: &mut AnswerBook,
    ) -> Result<(u64, u64), JobError> {
        let at = now_ms();
        let stored: Vec<(E164, StoredAnswer)> = result
            .answers
            .into_iter()
            .map(|(n, answer)| {
                let checked_at_ms = at;
                (
                    n,
                    StoredAnswer {
                        checked_at_ms,
                        answer,
                    },
                )
            })
            .collect();
        if !stored.is_empty() {
            let (state, host, to_commit) =
                (self.state.clone(), cache_key(self.job), stored.clone());
            tokio::task::spawn_blocking(move || state.commit(&host, &to_commit))
                .await
                .or_kind(ExitKind::Internal)?
                .context("committing answers to the state store")
                .or_kind(ExitKind::Internal)?;
        }
        let answered = stored.len() as u64;
        for (n, answer) in stored {
            book.insert(n, answer);
        }
        Ok((answered, result.failed.len() as u64))
    }
}

/// The pacer's counters as the lookup bar shows them.
fn pacer_figures(pacer: &Pacer, cached: u64, failed: u64) -> Figures {
    Figures {
        cached,
        requests: pacer.counters.requests.load(Ordering::Relaxed),
        retries: pacer.counters.retries.load(Ordering::Relaxed),
        failed,
        errors: pacer.counters.errors.lock().unwrap().values().sum(),
    }
}

/// Stops the pacer once a signal has asked the run to stop.
fn watch_interrupt(pacer: Arc<Pacer>, interrupted: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !interrupted.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        pacer.stop(Stop::Interrupted);
    })
}

/// Why the lookups stopped, as the run's failure.
fn stop_error(stop: Stop, summary: &RunSummary) -> JobError {
    let looked_up = summary.looked_up;
    match stop {
        Stop::AuthRejected(why) => JobError::new(
            ExitKind::Auth,
            anyhow!("the provider refused the credentials: {why}. Check SMSC_LOGIN and SMSC_PASSWORD (and the provider's allowed IPs); answers so far are kept"),
        ),
        Stop::Blocked(why) => JobError::new(
            ExitKind::Blocked,
            anyhow!("{why}. Answers so far are kept: run the same command again later to resume"),
        ),
        Stop::Interrupted => JobError::new(
            ExitKind::Interrupted,
            anyhow!("interrupted; the {looked_up} numbers answered in this run are kept: run the same command again to resume"),
        ),
        Stop::StateFailed => JobError::new(
            ExitKind::Internal,
            anyhow!("stopped: the state store failed (see the error above)"),
        ),
        Stop::Redirected(why) => JobError::new(
            ExitKind::Usage,
            anyhow!("the provider's address answered {why}; redirects are never followed (the request carries the password): set provider.base_url to the right address"),
        ),
        Stop::Unconfirmed(why) => JobError::new(
            ExitKind::TooManyFailed,
            anyhow!("{why}: the provider answered no request, so the {} numbers not looked up are written with status `failed`; the next run asks again (`phone-enrich probe` shows what the provider answers)", summary.failed_numbers),
        ),
    }
}
