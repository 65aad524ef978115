//! Progress of a phase (reading, lookups, writing): a bar on a terminal, log lines elsewhere.
//!
//! Contract: a [`Progress`] counts done units against a total. In [`ProgressMode::Bar`] it draws
//! an indicatif bar (count, rate, ETA) on stderr; log lines written through [`LogWriter`] are
//! printed above the bars without breaking them. In [`ProgressMode::Log`] it emits one
//! `progress` log event every interval with the same figures. Nothing else prints progress.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Bar,
    Log { every: Duration },
}

impl ProgressMode {
    /// Bars when stderr is a terminal, log lines every `every` otherwise.
    pub fn detect(every: Duration) -> ProgressMode {
        if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Log { every }
        }
    }
}

fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// A `tracing` writer that suspends the bars while a line is printed.
#[derive(Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        multi().suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

pub struct Progress {
    phase: &'static str,
    bar: Option<ProgressBar>,
    every: Duration,
    started: Instant,
    state: Mutex<LogState>,
}

struct LogState {
    done: u64,
    total: u64,
    last_log: Instant,
}

impl Progress {
    pub fn new(phase: &'static str, total: u64, mode: ProgressMode) -> Progress {
        let now = Instant::now();
        let (bar, every) = match mode {
            ProgressMode::Bar => {
                let bar = multi().add(ProgressBar::new(total));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>9} [{bar:30}] {human_pos}/{human_len} {per_sec} ETA {eta} {msg}",
                    )
                    .expect("the template is valid")
                    .progress_chars("=> "),
                );
                bar.set_prefix(phase);
                bar.enable_steady_tick(Duration::from_millis(200));
                (Some(bar), Duration::MAX)
            }
            ProgressMode::Log { every } => (None, every),
        };
        Progress {
            phase,
            bar,
            every,
            started: now,
            state: Mutex::new(LogState {
                done: 0,
                total,
                last_log: now,
            }),
        }
    }

    pub fn inc(&self, n: u64, message: impl FnOnce() -> String) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
            bar.set_message(message());
            return;
        }
        let mut s = self.state.lock().unwrap();
        s.done += n;
        if s.last_log.elapsed() >= self.every {
            s.last_log = Instant::now();
            self.log(&s, &message());
        }
    }

    fn log(&self, s: &LogState, message: &str) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = s.done as f64 / secs;
        let eta = if rate > 0.0 {
            (s.total.saturating_sub(s.done)) as f64 / rate
        } else {
            f64::INFINITY
        };
        tracing::info!(
            phase = self.phase,
            done = s.done,
            total = s.total,
            rate_per_s = (rate * 10.0).round() / 10.0,
            eta_s = if eta.is_finite() {
                eta.round() as i64
            } else {
                -1
            },
            detail = message,
            "progress"
        );
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
            multi().remove(bar);
        }
    }
}
