//! The command line as clap reads it: the commands, their flags, and the small conversions
//! from flags to the library's types (`JobArgs::load`, `ProgressArg::mode`). What each command
//! does is in `main.rs`.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use phone_enrich::config::{self, Job, Overrides, TextEncoding};
use phone_enrich::generate::Profile;
use phone_enrich::metrics::MetricsFile;
use phone_enrich::plan::Shard;
use phone_enrich::progress::ProgressMode;

/// The whole command line.
#[derive(Parser)]
#[command(
    name = "phone-enrich",
    version,
    about = "Enrich phone lists with mobile-operator data from SMSC get_operator"
)]
pub(crate) struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// How log lines are written on stderr.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// How `plan` prints its figures.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum OutputFormat {
    Text,
    Json,
}

/// A job file and what the command line changes in it.
#[derive(clap::Args)]
pub(crate) struct JobArgs {
    /// The job file (TOML).
    pub(crate) job: PathBuf,
    /// Input file or object URL (`s3://`, `gs://`, `az://`), instead of the job's `input.path`.
    #[arg(long)]
    pub(crate) input: Option<PathBuf>,
    /// Output file or object URL, instead of the job's `output.path`.
    #[arg(long)]
    pub(crate) output: Option<PathBuf>,
    /// State directory, instead of the job's `state.dir`.
    #[arg(long)]
    pub(crate) state: Option<PathBuf>,
    /// Any job key, e.g. `--set provider.batch_size=50` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) sets: Vec<String>,
    /// An object-storage setting over the job's `[storage]`, with the names polars'
    /// `storage_options` takes, e.g. `aws_region=ru-central1` (repeatable; never a secret).
    #[arg(long = "storage-option", value_name = "KEY=VALUE")]
    pub(crate) storage_options: Vec<String>,
}

impl JobArgs {
    pub(crate) fn load(self) -> anyhow::Result<Job> {
        let overrides = Overrides {
            input: self.input,
            output: self.output,
            state: self.state,
            sets: self.sets,
            storage_options: self.storage_options,
        };
        Job::load(&self.job, &overrides)
    }
}

/// `--progress`: bars, log lines, or whichever suits stderr.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ProgressArg {
    Auto,
    Bar,
    Log,
}

impl ProgressArg {
    pub(crate) fn mode(self, every: Duration) -> ProgressMode {
        match self {
            ProgressArg::Auto => ProgressMode::detect(every),
            ProgressArg::Bar => ProgressMode::Bar,
            ProgressArg::Log => ProgressMode::Log { every },
        }
    }
}

/// The commands.
#[derive(Subcommand)]
pub(crate) enum Command {
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
        /// Also write the run's figures in the Prometheus text format to this file (replaced
        /// whole), for node_exporter's textfile collector; name it `*.prom`.
        #[arg(long, value_name = "PATH", value_parser = metrics_file)]
        metrics_file: Option<MetricsFile>,
        /// Ask only the numbers of shard I of N (by a stable hash of each number) and write no
        /// output: the state keeps the answers, for `cache export`.
        #[arg(long, value_name = "I/N")]
        shard: Option<Shard>,
    },
    /// Read, normalize, deduplicate and check the cache; send nothing; print what a run would do.
    Plan {
        #[command(flatten)]
        job: JobArgs,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// Also the least time with the work split over N shards, each with this job's accounts.
        #[arg(long, value_name = "N")]
        shards: Option<NonZeroU32>,
    },
    /// Send one request with the job's credentials; show the raw answer (password redacted),
    /// what the parser made of it, and whether a run would accept it.
    Probe {
        #[command(flatten)]
        job: JobArgs,
        /// A number to ask for (repeatable); default: the provider's example, +79999999999.
        #[arg(long = "phone")]
        phones: Vec<String>,
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
    Generate(GenerateArgs),
}

/// `generate`'s flags.
#[derive(clap::Args)]
pub(crate) struct GenerateArgs {
    /// Where to write; `.csv`, `.csv.gz` or `.parquet`.
    pub(crate) path: PathBuf,
    #[arg(long, default_value_t = 5000)]
    pub(crate) rows: u64,
    /// Share of rows whose number was not seen earlier (0 to 1).
    #[arg(long, default_value_t = 0.6)]
    pub(crate) distinct_ratio: f64,
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// CSV delimiter.
    #[arg(long, value_enum, default_value_t = DelimiterArg::Comma)]
    pub(crate) delimiter: DelimiterArg,
    /// CSV encoding.
    #[arg(long, value_enum, default_value_t = EncodingArg::Utf8)]
    pub(crate) encoding: EncodingArg,
    /// What the rows look like: `standard`, or `messy` (every way people type numbers,
    /// placeholders, notes, quoted names).
    #[arg(long, value_enum, default_value_t = Profile::Standard)]
    pub(crate) profile: Profile,
}

/// `generate --delimiter`.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum DelimiterArg {
    #[value(name = ",")]
    Comma,
    #[value(name = ";")]
    Semicolon,
    #[value(name = "tab", alias = "\t")]
    Tab,
}

impl DelimiterArg {
    pub(crate) fn byte(self) -> u8 {
        match self {
            DelimiterArg::Comma => b',',
            DelimiterArg::Semicolon => b';',
            DelimiterArg::Tab => b'\t',
        }
    }
}

/// `generate --encoding`.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum EncodingArg {
    #[value(name = "utf-8")]
    Utf8,
    #[value(name = "windows-1251")]
    Windows1251,
}

impl From<EncodingArg> for TextEncoding {
    fn from(e: EncodingArg) -> TextEncoding {
        match e {
            EncodingArg::Utf8 => TextEncoding::Utf8,
            EncodingArg::Windows1251 => TextEncoding::Windows1251,
        }
    }
}

/// The state directory a cache command works on.
#[derive(clap::Args)]
pub(crate) struct StoreArgs {
    /// A job file, whose `state.dir` is used (or give --state).
    pub(crate) job: Option<PathBuf>,
    #[arg(long)]
    pub(crate) state: Option<PathBuf>,
}

/// The `cache` commands.
#[derive(Subcommand)]
pub(crate) enum CacheAction {
    /// Entries by provider host, status and age, and the size on disk.
    Stats {
        #[command(flatten)]
        store: StoreArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove answers checked longer ago than --older-than.
    Purge {
        #[command(flatten)]
        store: StoreArgs,
        /// An age such as `30d` or `12h`.
        #[arg(long, value_parser = config::parse_duration)]
        older_than: Duration,
    },
    /// Read every part of the store and report on each; exit 3 when any is damaged.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild a damaged store from every answer still readable; say how many were lost.
    Repair {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Write every stored answer (host, number, status, operator fields, checked-at) as Parquet.
    Export {
        /// Where to write (a `.parquet` file, or an `s3://`, `gs://`, `az://` object).
        file: PathBuf,
        #[command(flatten)]
        store: StoreFlags,
    },
    /// Merge files `cache export` wrote into a store: per number, the newer answer wins.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        store: StoreFlags,
    },
}

/// The state directory of `cache export` and `cache import`, whose files are the arguments.
#[derive(clap::Args)]
pub(crate) struct StoreFlags {
    /// A job file, whose `state.dir` is used (or give --state).
    #[arg(long)]
    pub(crate) job: Option<PathBuf>,
    #[arg(long)]
    pub(crate) state: Option<PathBuf>,
    /// An object-storage setting for an `s3://`, `gs://` or `az://` file, over the job's
    /// `[storage]` (repeatable; never a secret).
    #[arg(long = "storage-option", value_name = "KEY=VALUE")]
    pub(crate) storage_options: Vec<String>,
}

impl CacheAction {
    /// The job file and the state directory given, if any.
    pub(crate) fn store(&self) -> (Option<PathBuf>, Option<PathBuf>) {
        match self {
            CacheAction::Stats { store, .. }
            | CacheAction::Purge { store, .. }
            | CacheAction::Verify { store, .. }
            | CacheAction::Repair { store } => (store.job.clone(), store.state.clone()),
            CacheAction::Export { store, .. } | CacheAction::Import { store, .. } => {
                (store.job.clone(), store.state.clone())
            }
        }
    }
}

/// `--metrics-file`: its directory must exist before the run starts.
fn metrics_file(path: &str) -> Result<MetricsFile, String> {
    MetricsFile::new(std::path::Path::new(path)).map_err(|e| format!("{e:#}"))
}
