//! The command line: parses arguments (`cli`), sets up logging, runs a subcommand, maps the
//! outcome to an exit code. No pipeline logic lives here.

mod cli;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use cli::{CacheAction, Cli, Command, GenerateArgs, JobArgs, LogFormat, OutputFormat};

use phone_enrich::config::StorageConfig;
use phone_enrich::config::{self, Job, Overrides};
use phone_enrich::exchange::{self, ExchangeError};
use phone_enrich::generate::{generate, GenFormat, GenerateOptions};
use phone_enrich::job::RunOptions;
use phone_enrich::metrics::MetricsFile;
use phone_enrich::outcome::{ExitKind, JobError};
use phone_enrich::progress::{print_above_bars, LogWriter, ProgressMode};
use phone_enrich::provider::sandbox::Sandbox;
use phone_enrich::report;
use phone_enrich::state::{self, now_ms, StateError, StateStore};
use phone_enrich::storage::{spool_path, Client, Location, ObjectUrl};
use phone_enrich::transfer::{name_input_object, storage_error, Transfer};

/// What a command ends with: success, or a failure whose kind picks the exit code.
type Outcome = Result<(), JobError>;

/// Files, arguments and settings a command cannot use: exit 2.
fn usage(error: anyhow::Error) -> JobError {
    JobError::new(ExitKind::Usage, error)
}

/// The one place outcomes become exit codes (the table is in the README).
fn exit_code(outcome: &Outcome) -> u8 {
    let Err(failure) = outcome else {
        return 0;
    };
    match failure.kind {
        ExitKind::Internal => 1,
        ExitKind::Usage => 2,
        ExitKind::Input => 3,
        ExitKind::TooManyFailed => 4,
        ExitKind::Auth => 5,
        ExitKind::Blocked => 6,
        ExitKind::Interrupted => 7,
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PHONE_ENRICH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogWriter)
        .with_target(false)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let outcome = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => {
            let outcome = runtime.block_on(dispatch(cli.command));
            // Hung sandbox requests must not hold the process open.
            runtime.shutdown_timeout(Duration::from_millis(100));
            outcome
        }
        Err(e) => Err(JobError::new(
            ExitKind::Internal,
            anyhow::Error::new(e).context("starting the async runtime"),
        )),
    };
    if let Err(failure) = &outcome {
        tracing::error!("{:#}", failure.error);
    }
    ExitCode::from(exit_code(&outcome))
}

async fn dispatch(command: Command) -> Outcome {
    match command {
        Command::Run {
            job,
            refresh,
            progress,
            progress_every,
            report,
            metrics_file,
            shard,
        } => {
            let options = RunOptions {
                refresh,
                progress: progress.mode(progress_every),
                interrupted: Arc::new(AtomicBool::new(false)),
                shard,
            };
            run_command(job, options, report, metrics_file).await
        }
        Command::Plan {
            job,
            format,
            shards,
        } => plan_command(job, format, shards).await,
        Command::Probe { job, phones } => probe_command(job, phones).await,
        Command::Validate { job } => validate_command(job).await,
        Command::Cache { action } => cache_command(action).await,
        Command::Sandbox { listen, config } => sandbox_command(listen, config).await,
        Command::Generate(args) => generate_command(args),
    }
}

/// `run`: the job, then the summary (a table on a terminal, a log event otherwise) and the
/// report, whatever the outcome.
async fn run_command(
    job: JobArgs,
    options: RunOptions,
    report: Option<PathBuf>,
    metrics: Option<MetricsFile>,
) -> Outcome {
    let job = job.load().map_err(usage)?;
    spawn_signal_watch(options.interrupted.clone());
    let (summary, outcome) = phone_enrich::job::run(&job, &options).await;
    let outcome = match metrics.map(|m| m.write(&job.name, &summary, exit_code(&outcome))) {
        Some(Err(e)) if outcome.is_ok() => Err(JobError::new(ExitKind::Internal, e)),
        Some(Err(e)) => {
            tracing::error!("{e:#}");
            outcome
        }
        _ => outcome,
    };
    let failure = outcome.as_ref().err();
    // A run refused before it read anything has nothing to sum up but its error.
    let refused = failure.is_some() && summary.plan.rows == 0 && summary.requests == 0;
    match options.progress {
        _ if refused => {}
        ProgressMode::Bar => print_above_bars(&report::closing_table(
            &summary,
            &job.output_name(),
            failure,
        )),
        ProgressMode::Log { .. } => report::log_summary(&summary, &job.output_name()),
    }
    let Some(path) = report else {
        return outcome;
    };
    let text = report::report_json(&summary, &job.output_name(), failure, exit_code(&outcome));
    match (std::fs::write(&path, text), outcome) {
        (Err(e), Ok(())) => Err(JobError::new(
            ExitKind::Internal,
            anyhow::Error::new(e).context(format!("writing the report {}", path.display())),
        )),
        (Err(e), failed) => {
            tracing::error!("writing the report {}: {e}", path.display());
            failed
        }
        (Ok(()), outcome) => outcome,
    }
}

/// `plan`: the run's first stages, then its figures on stdout.
async fn plan_command(job: JobArgs, format: OutputFormat, shards: Option<NonZeroU32>) -> Outcome {
    let job = job.load().map_err(usage)?;
    let progress = ProgressMode::detect(Duration::from_secs(10));
    let mut transfer = Transfer::check(&job).await.map_err(storage_error)?;
    let interrupted = AtomicBool::new(false);
    let fetched = transfer.fetch_input(&job, &interrupted).await;
    fetched.map_err(storage_error)?;
    let planned = job.clone();
    let figures =
        tokio::task::spawn_blocking(move || phone_enrich::job::plan(&planned, progress, shards))
            .await
            .map_err(|e| JobError::new(ExitKind::Internal, e.into()))?
            .map_err(|e| name_input_object(&job, e))?;
    drop(transfer);
    match format {
        OutputFormat::Json => print_out(&pretty_json(&figures)),
        OutputFormat::Text => print_out(&report::plan_text(&figures)),
    }
    Ok(())
}

/// `probe`: one request with the job's credentials, shown whole; ends as a run would on the
/// answer it got.
async fn probe_command(job: JobArgs, phones: Vec<String>) -> Outcome {
    let job = job.load().map_err(usage)?;
    phone_enrich::probe::probe(&job, &phones).await
}

/// `validate`: the job and its credentials, without reading data or sending anything to the
/// provider (an input or output object is checked with its store).
async fn validate_command(job: JobArgs) -> Outcome {
    let job = job.load().map_err(usage)?;
    job.provider.accounts().map_err(usage)?;
    Transfer::check(&job).await.map_err(storage_error)?;
    if job.storage.input.is_none() && !job.input.path.exists() {
        return Err(usage(anyhow::anyhow!(
            "input.path {} does not exist",
            job.input.path.display()
        )));
    }
    let mut text = format!("{}: valid\n", job.name);
    for (key, value) in job.settings() {
        text += &format!("  {key} = {value}\n");
    }
    print_out(&text);
    Ok(())
}

/// The state directory named by `--state`, or by the job file.
fn state_dir(job: Option<PathBuf>, state: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match (state, job) {
        (Some(dir), _) => Ok(dir),
        (None, Some(job)) => Ok(Job::load(&job, &Overrides::default())?.state.dir),
        (None, None) => anyhow::bail!("name a job file or give --state DIR"),
    }
}

/// `cache stats|purge|verify|repair|export|import`.
async fn cache_command(action: CacheAction) -> Outcome {
    let (job, state) = action.store();
    let dir = state_dir(job, state).map_err(usage)?;
    let input = store_failure;
    match action {
        CacheAction::Stats { json, .. } => {
            let stats = open_store(&dir)?.stats(now_ms()).map_err(internal)?;
            match json {
                true => print_out(&pretty_json(&stats)),
                false => print_out(&report::cache_stats_text(&dir, &stats)),
            }
        }
        CacheAction::Purge { older_than, .. } => {
            let store = open_store(&dir)?;
            let n = store
                .purge_older_than(older_than, now_ms())
                .map_err(internal)?;
            print_out(&format!(
                "removed {} answers checked more than {} ago\n",
                phone_enrich::progress::thousands(n),
                humantime::format_duration(older_than)
            ));
        }
        CacheAction::Verify { json, .. } => {
            let verdict = state::verify(&dir).map_err(input)?;
            match json {
                true => print_out(&pretty_json(&verdict)),
                false => print_out(&format!("{verdict}\n")),
            }
            if !verdict.sound {
                return Err(JobError::new(
                    ExitKind::Input,
                    anyhow::anyhow!("the state store {} is damaged", dir.display()),
                ));
            }
        }
        CacheAction::Repair { .. } => {
            let repaired = state::repair(&dir).map_err(input)?;
            print_out(&format!("{repaired}\n"));
        }
        CacheAction::Export { file, store } if is_url(&file) => {
            let storage = cache_storage(store.job, &store.storage_options, &dir)?;
            let exported = export_object(&dir, &file, &storage).await?;
            print_out(&format!("{exported}\nto {}\n", file.display()));
        }
        CacheAction::Import { files, store } if files.iter().any(|f| is_url(f)) => {
            let storage = cache_storage(store.job, &store.storage_options, &dir)?;
            let imported = import_objects(&dir, &files, &storage).await?;
            print_out(&format!("{imported}\ninto {}\n", dir.display()));
        }
        CacheAction::Export { file, .. } => {
            let parent = file.parent().filter(|p| !p.as_os_str().is_empty());
            if parent.is_some_and(|p| !p.is_dir()) {
                return Err(usage(anyhow::anyhow!(
                    "cache export: the directory of {} does not exist",
                    file.display()
                )));
            }
            let exported = exchange::export(&open_store(&dir)?, &file).map_err(exchanging)?;
            print_out(&format!("{exported}\nto {}\n", file.display()));
        }
        CacheAction::Import { files, .. } => {
            let imported = exchange::import(&open_store(&dir)?, &files).map_err(exchanging)?;
            print_out(&format!("{imported}\ninto {}\n", dir.display()));
        }
    }
    Ok(())
}

/// Whether a `cache export`/`import` argument is a URL (`scheme://...`), for the storage
/// path; an unsupported scheme is refused there, naming it.
fn is_url(file: &Path) -> bool {
    file.to_str().is_some_and(|f| f.contains("://"))
}

/// The storage settings of a cache command: the job's `[storage]`, if a job is named, with the
/// command line's options over them; the spool under the state directory.
fn cache_storage(
    job: Option<PathBuf>,
    options: &[String],
    dir: &Path,
) -> Result<StorageConfig, JobError> {
    match job {
        Some(job) => {
            let overrides = Overrides {
                storage_options: options.to_vec(),
                state: Some(dir.to_path_buf()),
                ..Overrides::default()
            };
            Ok(Job::load(&job, &overrides).map_err(usage)?.storage)
        }
        None => StorageConfig::from_command_line(options, dir).map_err(usage),
    }
}

/// The client for a `cache export`/`import` object URL.
fn object_client(file: &Path, storage: &StorageConfig) -> Result<(ObjectUrl, Client), JobError> {
    let text = file.to_string_lossy();
    let url = match Location::parse(&text).map_err(storage_error)? {
        Location::Remote(url) => url,
        Location::Local(_) => return Err(usage(anyhow::anyhow!("{text}: not an object URL"))),
    };
    let client = storage.settings.client(&url).map_err(storage_error)?;
    Ok((url, client))
}

/// `cache export` to an object: written to the spool directory, then uploaded whole.
async fn export_object(
    dir: &Path,
    file: &Path,
    storage: &StorageConfig,
) -> Result<exchange::Exported, JobError> {
    let (url, client) = object_client(file, storage)?;
    client.check_writable().await.map_err(storage_error)?;
    let store = open_store(dir)?;
    std::fs::create_dir_all(&storage.spool_dir)
        .with_context(|| {
            format!(
                "creating the spool directory {}",
                storage.spool_dir.display()
            )
        })
        .map_err(internal_error)?;
    let local = spool_path(&storage.spool_dir, "export", &url);
    let exported = exchange::export(&store, &local).map_err(exchanging);
    let uploaded = match &exported {
        Ok(_) => client
            .upload(&local, &AtomicBool::new(false))
            .await
            .map_err(storage_error),
        Err(_) => Ok(0),
    };
    let _ = std::fs::remove_file(&local);
    uploaded.and(exported)
}

/// `cache import` of files and objects: each object spooled, then all merged as files.
async fn import_objects(
    dir: &Path,
    files: &[PathBuf],
    storage: &StorageConfig,
) -> Result<exchange::Imported, JobError> {
    let mut spooled = Vec::new();
    let mut paths = Vec::new();
    for (i, file) in files.iter().enumerate() {
        if !is_url(file) {
            paths.push(file.clone());
            continue;
        }
        let (url, client) = object_client(file, storage)?;
        let local = spool_path(&storage.spool_dir, &format!("import{i}"), &url);
        let copy = client.fetch(&local, &AtomicBool::new(false)).await;
        spooled.push(copy.map_err(storage_error)?);
        paths.push(local);
    }
    let imported = exchange::import(&open_store(dir)?, &paths).map_err(exchanging);
    drop(spooled);
    imported
}

fn internal_error(e: anyhow::Error) -> JobError {
    JobError::new(ExitKind::Internal, e)
}

/// A failed export or import: a file or row that is no export's is the input's fault (exit 3),
/// the rest the environment's (exit 1), named as what it is when it is a full disk, a
/// permission, ... ([`state::Fault`]).
fn exchanging(e: ExchangeError) -> JobError {
    if let ExchangeError::File { path, source, .. } = &e {
        if let Some(fault) = state::Fault::in_chain(source.as_ref()) {
            let what = format!("{fault}: {}", fault.advice(path));
            return JobError::new(ExitKind::Internal, anyhow::Error::new(e).context(what));
        }
    }
    let kind = match &e {
        ExchangeError::Columns { .. } | ExchangeError::Row { .. } => ExitKind::Input,
        ExchangeError::File {
            doing: "opening" | "reading",
            ..
        } => ExitKind::Input,
        ExchangeError::Store(StateError::Damaged { .. }) => ExitKind::Input,
        ExchangeError::File { .. } | ExchangeError::Store(_) => ExitKind::Internal,
    };
    JobError::new(kind, e.into())
}

fn open_store(dir: &Path) -> Result<StateStore, JobError> {
    StateStore::open(dir).map_err(store_failure)
}

/// A store that cannot be used: the environment's fault (a full disk, a permission, ...) is
/// exit 1, like any failure of the machine; anything else about the store is exit 3.
fn store_failure(e: StateError) -> JobError {
    let kind = match e.is_environment() {
        true => ExitKind::Internal,
        false => ExitKind::Input,
    };
    JobError::new(kind, e.into())
}

fn internal(e: StateError) -> JobError {
    JobError::new(ExitKind::Internal, e.into())
}

fn pretty_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("figures serialize") + "\n"
}

/// Writes a command's result on stdout. A reader that went away (`| head`) is not an error.
fn print_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            tracing::error!("writing to stdout: {e}");
        }
    }
}

/// `generate`: a synthetic CRM export.
fn generate_command(args: GenerateArgs) -> Outcome {
    let name = args.path.to_string_lossy().to_lowercase();
    let format = match name.ends_with(".parquet") {
        true => GenFormat::Parquet,
        false => GenFormat::Csv {
            delimiter: args.delimiter.byte(),
            encoding: args.encoding.into(),
            gzip: name.ends_with(".gz"),
        },
    };
    generate(&GenerateOptions {
        path: args.path,
        rows: args.rows,
        distinct_ratio: args.distinct_ratio,
        seed: args.seed,
        format,
        profile: args.profile,
    })
    .map_err(usage)
}

/// SIGINT and SIGTERM ask the run to stop; a second one ends the process at once.
fn spawn_signal_watch(interrupted: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if interrupted.swap(true, Ordering::SeqCst) {
                let code = exit_code(&Err(JobError::new(
                    ExitKind::Interrupted,
                    anyhow::anyhow!("a second signal"),
                )));
                std::process::exit(code.into());
            }
            tracing::warn!("stopping: no new requests; waiting for those in flight (signal again to quit at once)");
        }
    });
}

/// `sandbox`: the provider emulator on `listen` until Ctrl-C.
async fn sandbox_command(listen: SocketAddr, config: Option<PathBuf>) -> Outcome {
    let config = match config {
        Some(path) => std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))
            .and_then(|text| {
                config::SandboxConfig::from_toml(&text)
                    .with_context(|| format!("invalid sandbox config {}", path.display()))
            })
            .map_err(usage)?,
        None => config::SandboxConfig::default(),
    };
    let sandbox = Sandbox::start(config, listen).await.map_err(usage)?;
    // The address on stdout, alone on its line, for scripts and tests to read.
    println!("{}", sandbox.base_url());
    tracing::info!(url = %sandbox.base_url(), "sandbox listening; Ctrl-C to stop");
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| JobError::new(ExitKind::Internal, e.into()))
}
