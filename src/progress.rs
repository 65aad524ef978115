//! Progress of a phase (reading, lookups, writing): a bar on a terminal, log lines elsewhere.
//!
//! Contract: a [`Progress`] counts done units against a total. In [`ProgressMode::Bar`] it draws
//! an indicatif bar (count, rate, ETA) on stderr; log lines written through [`LogWriter`] are
//! printed above the bars without breaking them. In [`ProgressMode::Log`] it emits one
//! `progress` log event every interval with the same figures. Nothing else prints progress.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::pacer::AccountFigures;

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

/// Prints `text` on stderr below the bars drawn so far, as log lines are.
pub fn print_above_bars(text: &str) {
    multi().suspend(|| eprint!("{text}"));
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

/// What a lookup phase has done so far, shown beside the counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Numbers answered from the cache.
    pub cached: u64,
    pub requests: u64,
    pub retries: u64,
    pub errors: u64,
    /// Numbers given up on.
    pub failed: u64,
    /// The same per login (shown when there are several).
    pub logins: Vec<AccountFigures>,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} cached, {} requests, {} retries, {} errors, {} failed",
            self.cached, self.requests, self.retries, self.errors, self.failed
        )?;
        if self.logins.len() > 1 {
            for login in &self.logins {
                match &login.dropped {
                    Some(_) => write!(f, " · {} dropped", login.login)?,
                    None => write!(f, " · {} {} req", login.login, login.requests)?,
                }
            }
        }
        Ok(())
    }
}

/// Per login: requests, numbers answered, errors, and `dropped` when it was, as one compact
/// JSON object for a log field (`{"acme":{"requests":40,"answered":3900,"errors":0}}`).
fn logins_json(logins: &[AccountFigures]) -> String {
    let by_login: serde_json::Map<String, serde_json::Value> = logins
        .iter()
        .map(|l| {
            let mut figures = serde_json::json!({
                "requests": l.requests,
                "answered": l.answered,
                "errors": l.errors.values().sum::<u64>(),
            });
            if let Some(why) = &l.dropped {
                figures["dropped"] = why.clone().into();
            }
            (l.login.clone(), figures)
        })
        .collect();
    serde_json::Value::Object(by_login).to_string()
}

pub struct Progress {
    bar: Option<ProgressBar>,
    /// In log mode: the figures, shared with the thread that logs them every interval.
    log: Option<Arc<LogState>>,
}

struct LogState {
    phase: &'static str,
    started: Instant,
    total: u64,
    current: Mutex<(u64, Figures)>,
    stop: (Mutex<bool>, Condvar),
}

impl LogState {
    fn log(&self) {
        let (done, f) = self.current.lock().unwrap().clone();
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let eta = if rate > 0.0 && self.total > 0 {
            (self.total.saturating_sub(done)) as f64 / rate
        } else {
            -1.0
        };
        tracing::info!(
            event = "progress",
            phase = self.phase,
            done,
            total = self.total,
            rate_per_s = (rate * 10.0).round() / 10.0,
            eta_s = eta.round() as i64,
            cached = f.cached,
            requests = f.requests,
            retries = f.retries,
            errors = f.errors,
            failed = f.failed,
            logins = %logins_json(&f.logins),
            "progress"
        );
    }
}

impl Progress {
    pub fn new(phase: &'static str, total: u64, mode: ProgressMode) -> Progress {
        match mode {
            ProgressMode::Bar => {
                let bar = multi().add(ProgressBar::new(total));
                // A phase whose total is not known yet (reading) spins instead.
                let template = if total == 0 {
                    "{prefix:>9} {spinner} {human_pos} rows, {rate} {msg}"
                } else {
                    "{prefix:>9} [{bar:30}] {human_pos}/{human_len} {rate} ETA {eta} {msg}"
                };
                let unit = match phase {
                    "lookups" => "numbers/s",
                    _ => "rows/s",
                };
                let rate = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let per_sec = state.per_sec().max(0.0).round() as u64;
                    let _ = write!(w, "{} {unit}", thousands(per_sec));
                };
                bar.set_style(
                    ProgressStyle::with_template(template)
                        .expect("the templates are valid")
                        .with_key("rate", rate)
                        .progress_chars("=> "),
                );
                bar.set_prefix(phase);
                bar.enable_steady_tick(Duration::from_millis(200));
                Progress {
                    bar: Some(bar),
                    log: None,
                }
            }
            ProgressMode::Log { every } => {
                let state = Arc::new(LogState {
                    phase,
                    started: Instant::now(),
                    total,
                    current: Mutex::new((0, Figures::default())),
                    stop: (Mutex::new(false), Condvar::new()),
                });
                let ticker = state.clone();
                // Every interval, whether or not anything moved (a long pause is news too).
                std::thread::spawn(move || loop {
                    let (lock, wake) = &ticker.stop;
                    let stopped = wake
                        .wait_timeout_while(lock.lock().unwrap(), every, |stop| !*stop)
                        .unwrap()
                        .0;
                    if *stopped {
                        return;
                    }
                    drop(stopped);
                    ticker.log();
                });
                Progress {
                    bar: None,
                    log: Some(state),
                }
            }
        }
    }

    pub fn inc(&self, n: u64, figures: &Figures) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
            if *figures != Figures::default() {
                bar.set_message(figures.to_string());
            }
        }
        if let Some(log) = &self.log {
            let mut current = log.current.lock().unwrap();
            current.0 += n;
            if *figures != Figures::default() {
                current.1 = figures.clone();
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
            multi().remove(bar);
        }
        if let Some(log) = &self.log {
            *log.stop.0.lock().unwrap() = true;
            log.stop.1.notify_all();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `12345678` as `12,345,678`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
