//! A run of a job, stage after stage: input, normalize, plan, lookups through the pacer into the
//! state store, output. Also `plan`, the same first stages without sending anything.
//!
//! Contract: [`run`] fetches an input object into its spool file and publishes the output
//! object only once the output is written in full (`transfer`). Between them it loads the
//! host's answers, then reads the input once, writing the output as it goes; only when that pass finds numbers without a fresh answer does it stop writing, look
//! them up and read the input a second time to write. Memory grows with the answers and the
//! distinct numbers, not with rows. It sends only the plan's numbers, commits each answered
//! batch to the state store before counting it, and writes the output only when every number
//! has a terminal status. A run of one shard (`--shard I/N`) asks only its shard's numbers and
//! writes no output: its state holds its answers. It always returns a [`RunSummary`]
//! (partial when the run stopped) and, on failure, a [`JobError`] whose [`ExitKind`] the binary
//! maps to an exit code; on every stop the state is kept, so the same command resumes.
//! [`plan`] computes its figures with [`run`]'s first pass, so a plan's figures match the run's.
//! Each stage returns its figures and `summary.rs` adds them up once; `figures.rs` computes a
//! plan's figures, `lookups.rs` is the lookup stage.

mod figures;
mod lookups;
mod summary;

use std::num::NonZeroU32;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context};
use polars::prelude::Schema;

use crate::config::{Credentials, Job, ProviderKind};
use crate::input::{ColumnTypes, Columns, InputReader, TypesError};
use crate::outcome::{ExitKind, JobError, PlanFigures, RunSummary, StageTimes};
use crate::output::{output_schema, refuse_writing_input, OutputFile};
use crate::pacer::{BatchSizer, Stop};
use crate::pass::{Pass, PassError, PassOutcome, Tally, Unknown};
use crate::plan::{Plan, Shard};
use crate::progress::ProgressMode;
use crate::state::{now_ms, AnswerBook, ListLimit, StateError, StateStore, Ttl};
use crate::transfer::{name_input_object, storage_error, Transfer};
use figures::{plan_figures, seconds, LookupSettings};
use lookups::{Lookups, LookupsEnd};
use summary::{Stages, WriteFigures};

/// A state store that cannot be used: exit 1 when the environment is at fault (a full disk, a
/// permission, ...: `StateError::Environment`), exit 3 when the store is (damaged, locked, ...).
fn store_error(e: StateError) -> JobError {
    let kind = match e.is_environment() {
        true => ExitKind::Internal,
        false => ExitKind::Input,
    };
    JobError::new(kind, e.into())
}

trait OrKind<T> {
    fn or_kind(self, kind: ExitKind) -> Result<T, JobError>;
}

impl<T, E: Into<anyhow::Error>> OrKind<T> for Result<T, E> {
    fn or_kind(self, kind: ExitKind) -> Result<T, JobError> {
        self.map_err(|e| JobError::new(kind, e.into()))
    }
}

/// How a run goes, beyond its job.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Ignore cached answers and ask again.
    pub refresh: bool,
    pub progress: ProgressMode,
    /// Set when the run should stop (a signal arrived).
    pub interrupted: Arc<AtomicBool>,
    /// Ask only this shard's numbers, and write no output.
    pub shard: Option<Shard>,
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
    /// What an earlier run learned of the longest batch the host takes.
    remembered: Option<ListLimit>,
}

/// How [`prepare`] goes, for a run or for `plan`.
struct Preparation<'a> {
    refresh: bool,
    /// Whether the first pass writes the output (a run of the whole job) or only counts (a
    /// plan, a shard).
    write: bool,
    progress: ProgressMode,
    interrupted: &'a Arc<AtomicBool>,
    /// The accounts the lookups are spread over.
    accounts: usize,
    /// The logins of those accounts, when this command has them (`plan` may run without).
    logins: Vec<String>,
    shard: Option<Shard>,
    /// `plan --shards N`.
    shards: Option<NonZeroU32>,
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

/// Everything before the first request, as `how` says.
fn prepare(job: &Job, how: &Preparation) -> Result<Prepared, JobError> {
    let (types, schema) = check_before_reading(job)?;
    crate::normalize::warm_up(job.normalize.metadata);
    let state = Arc::new(StateStore::open(&job.state.dir).map_err(store_error)?);
    let started = Instant::now();
    let ttl = Ttl {
        found: job.state.ttl_ok,
        not_found: job.state.ttl_not_found,
    };
    // Loaded even with `refresh`, which then sets the answers aside: loading is also when a
    // grown log is compacted, and a job run with `--refresh` every night must not grow it forever.
    let book = state
        .load(&cache_key(job), ttl, now_ms())
        .map_err(store_error)?;
    let book = match how.refresh {
        true => AnswerBook::default(),
        false => book,
    };
    let cache_s = seconds(started);
    let started = Instant::now();
    // With no answers at all the output cannot be written in this pass: do not start it.
    let output = (how.write && !book.is_empty()).then_some(&schema);
    let mut first = Pass {
        job,
        types: &types,
        book: &book,
        unknown: Unknown::Collect,
        output,
        label: "reading",
        total_rows: 0,
        progress: how.progress,
        interrupted: how.interrupted,
    }
    .run()
    .map_err(|e| pass_error(job, e, true))?;
    let stages = StageTimes {
        cache_s,
        read_s: seconds(started),
        ..Default::default()
    };
    let remembered = state.list_limit(&cache_key(job)).map_err(store_error)?;
    let p = &job.provider;
    let sizer = BatchSizer::new(p.batch_size, p.max_batch_size, remembered);
    let plan = Plan::new(&first.tally.unknown, how.shard);
    let lookup = LookupSettings {
        provider: p,
        accounts: how.accounts as u64,
        batch_size: sizer.choice(),
        shard: how.shard,
        shards: how.shards,
        runs_sharing_logins: runs_sharing_logins(job, &how.logins),
    };
    let figures = plan_figures(&first.tally, &plan, &lookup);
    // The plan holds the numbers now; the second pass counts them again.
    first.tally.unknown = Default::default();
    crate::report::log_plan(&figures);
    Ok(Prepared {
        book,
        state,
        first,
        plan,
        figures,
        types,
        schema,
        stages,
        remembered,
    })
}

/// Other runs on this machine holding one of the job's logins now, over all its logins: they
/// share each login's limits with this one.
fn runs_sharing_logins(job: &Job, logins: &[String]) -> u64 {
    let held = |login: &str| crate::pacer::runs_holding(&job.provider, login) as u64;
    logins.iter().map(|l| held(l)).sum()
}

/// The logins of `accounts`.
fn logins(accounts: &[Credentials]) -> Vec<String> {
    accounts.iter().map(|a| a.login.clone()).collect()
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
    let check = dir.join(format!(".phone-enrich-writable.{}", std::process::id()));
    std::fs::write(&check, b"")
        .with_context(|| format!("output.path: cannot write in {}", dir.display()))?;
    let _ = std::fs::remove_file(check);
    Ok(())
}

/// `phone-enrich plan`: the run's first stages, sending nothing and writing nothing; with
/// `shards`, also the work split over that many shards.
pub fn plan(
    job: &Job,
    progress: ProgressMode,
    shards: Option<NonZeroU32>,
) -> Result<PlanFigures, JobError> {
    let how = Preparation {
        refresh: false,
        write: false,
        progress,
        interrupted: &Arc::new(AtomicBool::new(false)),
        accounts: job.provider.account_count().or_kind(ExitKind::Usage)?,
        // Without credentials `plan` still plans; it then counts no other runs.
        logins: job
            .provider
            .accounts()
            .map(|a| logins(&a))
            .unwrap_or_default(),
        shard: None,
        shards,
    };
    Ok(prepare(job, &how)?.figures)
}

/// Runs a job from input to output. The summary is returned whatever the outcome.
pub async fn run(job: &Job, options: &RunOptions) -> (RunSummary, Result<(), JobError>) {
    let started = Instant::now();
    let mut stages = Stages::default();
    let result = run_between_objects(job, options, &mut stages).await;
    let summary = stages.summary(job.normalize.metadata.describe(), seconds(started));
    (summary, result)
}

/// The stages between the job's objects: an input object is checked and fetched into its spool
/// file first, an output written in full is published as its object last (`transfer`); a job of
/// local files has nothing to fetch or publish.
async fn run_between_objects(
    job: &Job,
    options: &RunOptions,
    stages: &mut Stages,
) -> Result<(), JobError> {
    let mut transfer = Transfer::check(job).await.map_err(storage_error)?;
    let interrupted = &options.interrupted;
    let fetched = transfer.fetch_input(job, interrupted).await;
    fetched.map_err(storage_error)?;
    let result = run_stages(job, options, stages).await;
    if stages.output_written {
        if let Err(e) = transfer.publish(job, interrupted).await {
            stages.output_written = false;
            return Err(storage_error(e));
        }
    }
    result.map_err(|e| name_input_object(job, e))
}

/// The stages in order, each one's figures recorded in `stages` as it returns.
async fn run_stages(job: &Job, options: &RunOptions, stages: &mut Stages) -> Result<(), JobError> {
    let started = Instant::now();
    let accounts = job.provider.accounts().or_kind(ExitKind::Usage)?;
    let prepared = {
        let (job, options, count) = (job.clone(), options.clone(), accounts.len());
        let logins = logins(&accounts);
        tokio::task::spawn_blocking(move || {
            let how = Preparation {
                refresh: options.refresh,
                write: options.shard.is_none(),
                progress: options.progress,
                interrupted: &options.interrupted,
                accounts: count,
                logins,
                shard: options.shard,
                shards: None,
            };
            prepare(&job, &how)
        })
        .await
        .or_kind(ExitKind::Internal)??
    };
    stages.plan = Some(prepared.figures.clone());
    stages.times = prepared.stages;
    let Prepared {
        mut book,
        state,
        first,
        plan,
        types,
        schema,
        remembered,
        ..
    } = prepared;

    let lookups_started = Instant::now();
    let mut end = LookupsEnd::Done;
    if !plan.is_empty() {
        let lookups = Lookups {
            job,
            state: &state,
            options,
            remembered,
            cached: stages.plan.as_ref().map_or(0, |p| p.cached),
        };
        let (figures, result) = lookups.run(accounts, plan, &mut book).await;
        stages.lookups = Some(figures);
        end = result?;
    }
    stages.times.lookups_s = seconds(lookups_started);
    if options.shard.is_some() {
        // A shard writes no output: its answers are in its state, for `cache export`.
        stages.shard = true;
    } else {
        let write_started = Instant::now();
        let (written, output) =
            write_pass(job, options, (first, book, types, schema), stages).await?;
        stages.written = Some(written);
        // The footer's copy of the summary says written: whoever reads it, reads the file.
        let mut footer = stages.clone();
        footer.output_written = true;
        let footer = footer.summary(job.normalize.metadata.describe(), seconds(started));
        finish_output(job, output, &footer).await?;
        stages.output_written = true;
        stages.times.write_s = seconds(write_started);
    }
    let summary = stages.summary(String::new(), 0.0);
    if let LookupsEnd::Unanswered(why) = end {
        return Err(stop_error(
            Stop::Unconfirmed(why),
            summary.looked_up,
            summary.failed_numbers,
        ));
    }
    check_failed_ratio(job, &summary)
}

/// The pass whose tally the output holds: the first, if it wrote the output already (every
/// number had an answer), or a second pass now.
async fn write_pass(
    job: &Job,
    options: &RunOptions,
    (first, book, types, schema): (PassOutcome, AnswerBook, ColumnTypes, Schema),
    stages: &Stages,
) -> Result<(WriteFigures, OutputFile), JobError> {
    let rows = stages.plan.as_ref().map_or(0, |p| p.rows);
    let (passes, (tally, output, book)) = match first.output {
        Some(output) => (1, (first.tally, output, book)),
        None => (
            2,
            second_pass(job, options, types, schema, book, rows).await?,
        ),
    };
    let (cells_by_status, top_operators) = tally.by_status(&book);
    let figures = WriteFigures {
        passes,
        cells_by_status,
        top_operators,
        failed_numbers: tally.unknown.len() as u64,
    };
    Ok((figures, output))
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
/// written by then; a shard's share is of the numbers it asked).
fn check_failed_ratio(job: &Job, summary: &RunSummary) -> Result<(), JobError> {
    let (of, written) = match summary.output_written {
        true => (
            summary.plan.distinct_numbers,
            "the output is written with status `failed` for them",
        ),
        false => (summary.plan.to_look_up, "a shard writes no output"),
    };
    let failed_ratio = summary.failed_numbers as f64 / of.max(1) as f64;
    if summary.failed_numbers == 0 || failed_ratio <= job.output.max_failed_ratio {
        return Ok(());
    }
    Err(JobError::new(
        ExitKind::TooManyFailed,
        anyhow!(
            "{} of {of} numbers ({:.2}%) failed after every retry, more than output.max_failed_ratio {}; {written}, and the next run asks again",
            summary.failed_numbers,
            failed_ratio * 100.0,
            job.output.max_failed_ratio
        ),
    ))
}

/// Writes the output's footer (the job's settings and `summary`) and moves the file into place.
async fn finish_output(
    job: &Job,
    output: OutputFile,
    summary: &RunSummary,
) -> Result<(), JobError> {
    let mut metadata = job.settings();
    metadata.push((
        "phone_enrich.summary".into(),
        serde_json::to_string(summary).expect("a summary serializes"),
    ));
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

/// Why the lookups stopped, as the run's failure.
fn stop_error(stop: Stop, looked_up: u64, failed_numbers: u64) -> JobError {
    match stop {
        Stop::AuthRejected(why) => JobError::new(
            ExitKind::Auth,
            anyhow!("the provider refused the credentials: {why}. Check SMSC_LOGIN and SMSC_PASSWORD, or the accounts file (and the provider's allowed IPs); answers so far are kept"),
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
        Stop::Untrusted(why) => JobError::new(
            ExitKind::Usage,
            anyhow!("{why}. Nothing more was sent; answers so far are kept"),
        ),
        Stop::Unconfirmed(why) => JobError::new(
            ExitKind::TooManyFailed,
            anyhow!("{why}: the provider answered no request, so the {} numbers not looked up are written with status `failed`; the next run asks again (`phone-enrich probe` shows what the provider answers)", failed_numbers),
        ),
    }
}
