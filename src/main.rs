//! The command line: parses arguments, sets up logging, runs a subcommand, maps the outcome to
//! an exit code. No pipeline logic lives here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use phone_enrich::config::{self, Job, Overrides, TextEncoding};
use phone_enrich::generate::{generate, GenFormat, GenerateOptions};
use phone_enrich::job::{run, ExitKind, RunOptions};
use phone_enrich::progress::{LogWriter, ProgressMode};
use phone_enrich::provider::sandbox::Sandbox;
use phone_enrich::state::{self, now_ms, StateStore};

/// Exit codes, as documented in the README.
mod exit {
    pub const SUCCESS: u8 = 0;
    pub const INTERNAL: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const INPUT: u8 = 3;
    pub const TOO_MANY_FAILED: u8 = 4;
    pub const AUTH: u8 = 5;
    pub const BLOCKED: u8 = 6;
    pub const INTERRUPTED: u8 = 7;
}

#[derive(Parser)]
#[command(
    name = "phone-enrich",
    version,
    about = "Enrich phone lists with mobile-operator data from SMSC get_operator"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

/// A job file and what the command line changes in it.
#[derive(clap::Args)]
struct JobArgs {
    /// The job file (TOML).
    job: PathBuf,
    /// Input file, instead of the job's `input.path`.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Output file, instead of the job's `output.path`.
    #[arg(long)]
    output: Option<PathBuf>,
    /// State directory, instead of the job's `state.dir`.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Any job key, e.g. `--set provider.batch_size=50` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

impl JobArgs {
    fn load(self) -> anyhow::Result<Job> {
        let overrides = Overrides {
            input: self.input,
            output: self.output,
            state: self.state,
            sets: self.sets,
        };
        Job::load(&self.job, &overrides)
    }
}

fn exit_code(kind: ExitKind) -> u8 {
    match kind {
        ExitKind::Usage => exit::USAGE,
        ExitKind::Input => exit::INPUT,
        ExitKind::TooManyFailed => exit::TOO_MANY_FAILED,
        ExitKind::Auth => exit::AUTH,
        ExitKind::Blocked => exit::BLOCKED,
        ExitKind::Interrupted => exit::INTERRUPTED,
        ExitKind::Internal => exit::INTERNAL,
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ProgressArg {
    Auto,
    Bar,
    Log,
}

#[derive(Subcommand)]
enum Command {
    /// Run a job: read, look up, write the enriched Parquet.
    Run {
        #[command(flatten)]
        job: JobArgs,
        /// Ignore cached answers and ask the provider again.
        #[arg(long)]
        refresh: bool,
        /// Progress display: bars on a terminal, log lines otherwise.
        #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
        progress: ProgressArg,
        /// Time between progress log lines (without a terminal), e.g. `10s`, `500ms`.
        #[arg(long, default_value = "10s", value_parser = config::parse_duration)]
        progress_every: Duration,
        /// Also write the end-of-run summary as JSON to this file.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Read, normalize, deduplicate and check the cache; send nothing; print what a run would do.
    Plan {
        #[command(flatten)]
        job: JobArgs,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Check a job file and its settings without reading data or sending anything.
    Validate {
        #[command(flatten)]
        job: JobArgs,
    },
    /// Inspect or trim the answers cache in a state directory.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Serve the provider emulator on loopback until stopped.
    Sandbox {
        /// Address to listen on; port 0 picks a free port (printed on stdout).
        #[arg(long, default_value = "127.0.0.1:8417")]
        listen: SocketAddr,
        /// A TOML file with the keys of a job's [provider.sandbox] section.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Write a synthetic CRM export.
    Generate {
        /// Where to write; `.csv`, `.csv.gz` or `.parquet`.
        path: PathBuf,
        #[arg(long, default_value_t = 5000)]
        rows: u64,
        /// Share of rows whose number was not seen earlier (0 to 1).
        #[arg(long, default_value_t = 0.6)]
        distinct_ratio: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// CSV delimiter: `,` `;` or `tab`.
        #[arg(long, default_value = ",")]
        delimiter: String,
        /// CSV encoding: `utf-8` or `windows-1251`.
        #[arg(long, default_value = "utf-8")]
        encoding: String,
    },
}

#[derive(Subcommand)]
enum CacheAction {
    /// Entries by provider host, status and age, and the size on disk.
    Stats {
        /// A job file, whose `state.dir` is used (or give --state).
        job: Option<PathBuf>,
        #[arg(long)]
        state: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove answers checked longer ago than --older-than.
    Purge {
        /// A job file, whose `state.dir` is used (or give --state).
        job: Option<PathBuf>,
        #[arg(long)]
        state: Option<PathBuf>,
        /// An age such as `30d` or `12h`.
        #[arg(long, value_parser = config::parse_duration)]
        older_than: Duration,
    },
    /// Read every part of the store and report on each; exit 3 when any is damaged.
    Verify {
        /// A job file, whose `state.dir` is used (or give --state).
        job: Option<PathBuf>,
        #[arg(long)]
        state: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild a damaged store from every answer still readable; say how many were lost.
    Repair {
        /// A job file, whose `state.dir` is used (or give --state).
        job: Option<PathBuf>,
        #[arg(long)]
        state: Option<PathBuf>,
    },
}

/// The state directory named by `--state`, or by the job file.
fn state_dir(job: Option<PathBuf>, state: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match (state, job) {
        (Some(dir), _) => Ok(dir),
        (None, Some(job)) => Ok(Job::load(&job, &Overrides::default())?.state.dir),
        (None, None) => anyhow::bail!("name a job file or give --state DIR"),
    }
}

fn cache_command(action: CacheAction) -> u8 {
    let (job, state) = match &action {
        CacheAction::Stats { job, state, .. }
        | CacheAction::Purge { job, state, .. }
        | CacheAction::Verify { job, state, .. }
        | CacheAction::Repair { job, state } => (job.clone(), state.clone()),
    };
    let dir = match state_dir(job, state) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("{e:#}");
            return exit::USAGE;
        }
    };
    match action {
        CacheAction::Verify { json, .. } => return cache_verify(&dir, json),
        CacheAction::Repair { .. } => return cache_repair(&dir),
        _ => {}
    }
    let store = match StateStore::open(&dir) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{:#}", anyhow::Error::new(e));
            return exit::INPUT;
        }
    };
    let result = match action {
        CacheAction::Stats { json, .. } => store.stats(now_ms()).map(|stats| {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&stats).unwrap_or_default()
                );
            } else {
                println!(
                    "{}: {} answers, {} bytes on disk",
                    dir.display(),
                    stats.entries,
                    stats.size_on_disk_bytes
                );
                for (host, h) in &stats.hosts {
                    println!("  {host}");
                    for (status, n) in &h.by_status {
                        println!("    {status:<16} {n:>10}");
                    }
                    for (age, n) in h.by_age.rows() {
                        println!("    {age:<16} {n:>10}");
                    }
                }
            }
        }),
        CacheAction::Purge { older_than, .. } => {
            store.purge_older_than(older_than, now_ms()).map(|n| {
                println!(
                    "removed {n} answers checked more than {} ago",
                    humantime::format_duration(older_than)
                );
            })
        }
        CacheAction::Verify { .. } | CacheAction::Repair { .. } => unreachable!("handled above"),
    };
    match result {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            tracing::error!("{:#}", anyhow::Error::new(e));
            exit::INTERNAL
        }
    }
}

/// `cache verify`: exit 0 when every part is sound, 3 when any is damaged.
fn cache_verify(dir: &std::path::Path, json: bool) -> u8 {
    match state::verify(dir) {
        Ok(report) => {
            match json {
                true => println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                ),
                false => println!("{report}"),
            }
            if report.sound {
                exit::SUCCESS
            } else {
                exit::INPUT
            }
        }
        Err(e) => {
            tracing::error!("{:#}", anyhow::Error::new(e));
            exit::INPUT
        }
    }
}

/// `cache repair`: exit 0 once the store is sound (repaired or already so).
fn cache_repair(dir: &std::path::Path) -> u8 {
    match state::repair(dir) {
        Ok(report) => {
            println!("{report}");
            exit::SUCCESS
        }
        Err(e) => {
            tracing::error!("{:#}", anyhow::Error::new(e));
            exit::INPUT
        }
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::from(exit::INTERNAL);
        }
    };
    let code = runtime.block_on(async_main(cli.command));
    // Hung sandbox requests must not hold the process open.
    runtime.shutdown_timeout(Duration::from_millis(100));
    ExitCode::from(code)
}

async fn async_main(command: Command) -> u8 {
    match command {
        Command::Run {
            job,
            refresh,
            progress,
            progress_every,
            report,
        } => {
            let job = match job.load() {
                Ok(j) => j,
                Err(e) => {
                    tracing::error!("{e:#}");
                    return exit::USAGE;
                }
            };
            let progress = match progress {
                ProgressArg::Auto => ProgressMode::detect(progress_every),
                ProgressArg::Bar => ProgressMode::Bar,
                ProgressArg::Log => ProgressMode::Log {
                    every: progress_every,
                },
            };
            let interrupted = Arc::new(AtomicBool::new(false));
            spawn_signal_watch(interrupted.clone());
            let options = RunOptions {
                refresh,
                progress,
                interrupted,
            };
            let (summary, result) = run(&job, &options).await;
            let code = match &result {
                Ok(()) => exit::SUCCESS,
                Err(failure) => {
                    tracing::error!("{:#}", failure.error);
                    exit_code(failure.kind)
                }
            };
            print_summary(&summary, &job);
            if let Some(path) = report {
                let outcome = result.as_ref().err().map(|f| f.kind);
                let error = result.as_ref().err().map(|f| format!("{:#}", f.error));
                let report = serde_json::json!({
                    "outcome": outcome.map(|k| serde_json::to_value(k).unwrap_or_default()).unwrap_or("success".into()),
                    "exit_code": code,
                    "error": error,
                    "output": job.output.path,
                    "summary": summary,
                });
                let text = serde_json::to_string_pretty(&report).unwrap_or_default();
                if let Err(e) = std::fs::write(&path, text + "\n") {
                    tracing::error!("writing the report {}: {e}", path.display());
                    return if code == exit::SUCCESS {
                        exit::INTERNAL
                    } else {
                        code
                    };
                }
            }
            code
        }
        Command::Plan { job, format } => {
            let job = match job.load() {
                Ok(j) => j,
                Err(e) => {
                    tracing::error!("{e:#}");
                    return exit::USAGE;
                }
            };
            let progress = ProgressMode::detect(Duration::from_secs(10));
            let figures =
                match tokio::task::spawn_blocking(move || phone_enrich::job::plan(&job, progress))
                    .await
                {
                    Ok(Ok(f)) => f,
                    Ok(Err(failure)) => {
                        tracing::error!("{:#}", failure.error);
                        return exit_code(failure.kind);
                    }
                    Err(e) => {
                        tracing::error!("{e}");
                        return exit::INTERNAL;
                    }
                };
            match format {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&figures).unwrap_or_default()
                ),
                OutputFormat::Text => {
                    println!("rows               {:>12}", figures.rows);
                    println!("phone cells        {:>12}", figures.phone_cells);
                    println!("invalid numbers    {:>12}", figures.invalid_cells);
                    println!("distinct numbers   {:>12}", figures.distinct_numbers);
                    println!("already cached     {:>12}", figures.cached);
                    println!("to look up         {:>12}", figures.to_look_up);
                    println!("requests needed    {:>12}", figures.requests);
                    println!(
                        "least time         {:>12}",
                        humantime::format_duration(Duration::from_secs(
                            figures.least_time_s.ceil() as u64
                        ))
                    );
                }
            }
            exit::SUCCESS
        }
        Command::Validate { job } => {
            let checked = job.load().and_then(|job| {
                job.provider.credentials()?;
                if !job.input.path.exists() {
                    anyhow::bail!("input.path {} does not exist", job.input.path.display());
                }
                Ok(job)
            });
            match checked {
                Ok(job) => {
                    println!("{}: valid", job.name);
                    for (key, value) in job.settings() {
                        println!("  {key} = {value}");
                    }
                    exit::SUCCESS
                }
                Err(e) => {
                    tracing::error!("{e:#}");
                    exit::USAGE
                }
            }
        }
        Command::Cache { action } => cache_command(action),
        Command::Sandbox { listen, config } => match serve_sandbox(listen, config).await {
            Ok(()) => exit::SUCCESS,
            Err(e) => {
                tracing::error!("{e:#}");
                exit::USAGE
            }
        },
        Command::Generate {
            path,
            rows,
            distinct_ratio,
            seed,
            delimiter,
            encoding,
        } => {
            let result = (|| {
                let name = path.to_string_lossy().to_lowercase();
                let format = if name.ends_with(".parquet") {
                    GenFormat::Parquet
                } else {
                    let delimiter = match delimiter.as_str() {
                        "," => b',',
                        ";" => b';',
                        "tab" | "\t" => b'\t',
                        other => anyhow::bail!("--delimiter `{other}` is not one of `,` `;` `tab`"),
                    };
                    let encoding = match encoding.as_str() {
                        "utf-8" => TextEncoding::Utf8,
                        "windows-1251" => TextEncoding::Windows1251,
                        other => anyhow::bail!(
                            "--encoding `{other}` is not one of `utf-8`, `windows-1251`"
                        ),
                    };
                    GenFormat::Csv {
                        delimiter,
                        encoding,
                        gzip: name.ends_with(".gz"),
                    }
                };
                generate(&GenerateOptions {
                    path: path.clone(),
                    rows,
                    distinct_ratio,
                    seed,
                    format,
                })
            })();
            match result {
                Ok(()) => exit::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    exit::USAGE
                }
            }
        }
    }
}

/// The end-of-run summary on stderr: one line each, or one `summary` event in JSON logs.
fn print_summary(s: &phone_enrich::job::RunSummary, job: &Job) {
    tracing::info!(
        event = "summary",
        rows = s.plan.rows,
        distinct_numbers = s.plan.distinct_numbers,
        cached = s.plan.cached,
        looked_up = s.looked_up,
        failed_numbers = s.failed_numbers,
        requests = s.requests,
        retries = s.retries,
        elapsed_s = s.elapsed_s,
        passes = s.passes,
        stages = %json(&s.stages),
        cells_by_status = %json(&s.cells_by_status),
        errors = %json(&s.errors),
        top_operators = %json(&s.top_operators),
        output = %job.output.path.display(),
        "summary"
    );
    if let Some(stats) = &s.sandbox {
        tracing::info!(event = "sandbox", sandbox = %json(stats), "sandbox counters");
    }
}

/// A value as compact JSON, for a log field.
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
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
                std::process::exit(exit::INTERRUPTED as i32);
            }
            tracing::warn!("stopping: no new requests; waiting for those in flight (signal again to quit at once)");
        }
    });
}

async fn serve_sandbox(listen: SocketAddr, config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = match config {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            config::SandboxConfig::from_toml(&text)
                .with_context(|| format!("invalid sandbox config {}", path.display()))?
        }
        None => config::SandboxConfig::default(),
    };
    let sandbox = Sandbox::start(cfg, listen).await?;
    // The address on stdout, alone on its line, for scripts and tests to read.
    println!("{}", sandbox.base_url());
    tracing::info!(url = %sandbox.base_url(), "sandbox listening; Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
