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
use phone_enrich::state::{now_ms, StateStore};

/// Exit codes, as documented in the README.
mod exit {
    pub const SUCCESS: u8 = 0;
    pub const INTERNAL: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const INPUT: u8 = 3;
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
enum ProgressArg {
    Auto,
    Bar,
    Log,
}

#[derive(Subcommand)]
enum Command {
    /// Run a job: read, look up, write the enriched Parquet.
    Run {
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
        /// Ignore cached answers and ask the provider again.
        #[arg(long)]
        refresh: bool,
        /// Progress display: bars on a terminal, log lines otherwise.
        #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
        progress: ProgressArg,
        /// Seconds between progress log lines (without a terminal).
        #[arg(long, default_value_t = 10)]
        progress_every: u64,
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
        CacheAction::Stats { job, state, .. } | CacheAction::Purge { job, state, .. } => {
            (job.clone(), state.clone())
        }
    };
    let dir = match state_dir(job, state) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("{e:#}");
            return exit::USAGE;
        }
    };
    let store = match StateStore::open(&dir) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
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
    };
    match result {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            exit::INTERNAL
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
            input,
            output,
            state,
            refresh,
            progress,
            progress_every,
        } => {
            let overrides = Overrides {
                input,
                output,
                state,
            };
            let job = match Job::load(&job, &overrides) {
                Ok(j) => j,
                Err(e) => {
                    tracing::error!("{e:#}");
                    return exit::USAGE;
                }
            };
            let every = Duration::from_secs(progress_every.max(1));
            let progress = match progress {
                ProgressArg::Auto => ProgressMode::detect(every),
                ProgressArg::Bar => ProgressMode::Bar,
                ProgressArg::Log => ProgressMode::Log { every },
            };
            let interrupted = Arc::new(AtomicBool::new(false));
            spawn_signal_watch(interrupted.clone());
            let options = RunOptions {
                refresh,
                progress,
                interrupted,
            };
            match run(&job, &options).await {
                Ok(summary) => {
                    tracing::info!(
                        rows = summary.rows,
                        distinct_numbers = summary.distinct_numbers,
                        cached = summary.cached,
                        looked_up = summary.looked_up,
                        requests = summary.requests,
                        retries = summary.retries,
                        elapsed_s = summary.elapsed_s,
                        statuses = %serde_json::to_string(&summary.statuses).unwrap_or_default(),
                        errors = %serde_json::to_string(&summary.errors).unwrap_or_default(),
                        output = %job.output.path.display(),
                        "done"
                    );
                    if let Some(s) = &summary.sandbox {
                        tracing::info!(sandbox = %serde_json::to_string(s).unwrap_or_default(), "sandbox counters");
                    }
                    exit::SUCCESS
                }
                Err(failure) => {
                    tracing::error!("{:#}", failure.error);
                    match failure.kind {
                        ExitKind::Usage => exit::USAGE,
                        ExitKind::Input => exit::INPUT,
                        ExitKind::Auth => exit::AUTH,
                        ExitKind::Blocked => exit::BLOCKED,
                        ExitKind::Interrupted => exit::INTERRUPTED,
                        ExitKind::Internal => exit::INTERNAL,
                    }
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
