//! A login's limits shared by every run on the machine: one small file per login, coordinated
//! with file locks, holding every request of that login still counted against a window, by any
//! run, and the login's adaptive caps (`adaptive.rs`).
//!
//! Contract: [`SharedLogin::acquire`] waits until a request fits, over every run holding the
//! login, under the request limit (lowered by error 9), the identical-request limit, the
//! numbers limit and the requests at once (at most [`MAX_CONCURRENCY`], lowered by error 9),
//! then records it; the [`SharedTicket`] it returns marks the request answered when dropped, and
//! the request stays counted a full window (plus the safety margin) after that, as in
//! `window.rs`. A run holds a lock on a file of its own (`KEY.run-HOLDER`) while it lives, so
//! a request left unanswered by a run that died (SIGKILL) is seen as answered at the moment a
//! live run finds its holder gone: it then expires with its window, and nothing leaks.
//!
//! The files live in `provider.shared_limits_dir`, else `$XDG_RUNTIME_DIR/phone-enrich`, else
//! `phone-enrich-UID` in the system's temp directory (made private, 0700, and refused if
//! another user owns it). `KEY` is the xxh3-64 of the provider's host and port and the login,
//! so the login never appears in clear. `KEY.lock` is the lock every change is made under;
//! `KEY.state` the JSON state, replaced whole (written beside, then renamed). Times are
//! milliseconds of the system's monotonic clock, the same for every process. A file that
//! cannot be used is a warning, once, and the run goes on keeping its limits alone.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::adaptive::{Adaptive, Ceiling};
use crate::config::{ProviderConfig, Rate, MAX_CONCURRENCY};
use crate::normalize::E164;

/// How often a request blocked by requests in flight (of any run) looks again.
const POLL: Duration = Duration::from_millis(10);
/// The longest a blocked request sleeps before looking again (caps raised, a run gone).
const LONGEST_SLEEP: Duration = Duration::from_millis(200);

/// The state every run under one login shares, as stored in `KEY.state`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    next_id: u64,
    adaptive: Option<Adaptive>,
    held: Vec<Held>,
}

/// One request still counted against a window.
#[derive(Debug, Serialize, Deserialize)]
struct Held {
    id: u64,
    /// The run that sent it.
    holder: u64,
    /// When its answer came; `None` while it is out.
    done: Option<u64>,
    /// Its batch's length, for the numbers limit.
    weight: u32,
    /// The xxh3-64 of its batch as sent, for the identical-request limit.
    list: u64,
}

/// How long a request counts against each limit after its answer, and how many may count.
#[derive(Debug, Clone, Copy)]
struct Hold {
    count: u32,
    ms: u64,
}

impl Hold {
    fn of(rate: Rate, margin: f64) -> Hold {
        let hold = rate.window + rate.window.mul_f64(margin);
        Hold {
            count: rate.count.get(),
            ms: hold.as_millis() as u64,
        }
    }
}

/// One login's shared limits, as this run takes part in them.
#[derive(Debug)]
pub(super) struct SharedLogin {
    dir: PathBuf,
    key: String,
    holder: u64,
    /// `KEY.lock`, locked around every change; the mutex keeps this process's tasks in turn
    /// (a file lock is shared by everything holding the same open file).
    lock: Mutex<File>,
    /// `KEY.run-HOLDER`, locked while this run lives.
    _holding: File,
    requests: Hold,
    identical: Hold,
    numbers: Option<Hold>,
    ceiling: Ceiling,
    warned: AtomicBool,
}

/// A request recorded in the shared file; dropping it (the answer came) starts its hold.
pub(super) struct SharedTicket<'a> {
    login: &'a SharedLogin,
    id: Option<u64>,
}

impl Drop for SharedTicket<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            let finished = self.login.change(|state, now| {
                if let Some(held) = state.held.iter_mut().find(|h| h.id == id) {
                    held.done = Some(now);
                }
            });
            self.login.warn_once(finished.err());
        }
    }
}

/// Milliseconds of the system's monotonic clock (the same for every process on the machine).
pub(super) fn clock_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// The directory the shared files live in (see the module's contract), made if missing.
pub fn shared_dir(configured: Option<&Path>) -> io::Result<PathBuf> {
    if let Some(dir) = configured {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        return Ok(dir.to_path_buf());
    }
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(runtime) => PathBuf::from(runtime).join("phone-enrich"),
        None => {
            // SAFETY: getuid cannot fail.
            let uid = unsafe { libc::getuid() };
            std::env::temp_dir().join(format!("phone-enrich-{uid}"))
        }
    };
    private_dir(&dir)?;
    Ok(dir)
}

/// Makes `dir` (0700) unless it exists; refuses it when it is not this user's alone.
fn private_dir(dir: &Path) -> io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        Err(_) => {}
    }
    let meta = std::fs::symlink_metadata(dir)?;
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a directory private to this user (uid {uid}, mode 0700)",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// The file name every run gives the login `login` of the provider at `host`.
pub fn login_key(host: &str, login: &str) -> String {
    let text = format!("{host}\0{login}");
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

/// The provider's host and port as the shared files name it; `None` for a sandbox the run
/// starts itself (its own, which no other run shares).
pub fn provider_host(config: &ProviderConfig) -> Option<String> {
    let url = config.base_url.as_ref()?;
    let host = url.host_str()?;
    Some(match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

/// How many runs hold the login `login` of the provider at `host` now, in `dir`.
pub fn runs_holding_in(dir: &Path, host: &str, login: &str) -> usize {
    let prefix = format!("{}.run-", login_key(host, login));
    let Ok(listing) = std::fs::read_dir(dir) else {
        return 0;
    };
    listing
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| holder_alive(&e.path()))
        .count()
}

/// Whether the run whose holder file is `path` still lives; a dead run's file is removed.
fn holder_alive(path: &Path) -> bool {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) => return e.kind() != io::ErrorKind::NotFound,
    };
    match file.try_lock() {
        Ok(()) => {
            let _ = std::fs::remove_file(path);
            false
        }
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => true,
    }
}

fn open_rw(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

impl SharedLogin {
    /// Takes part in the shared limits of `login` at `host`, in `dir`, with the job's limits.
    pub fn open(dir: &Path, host: &str, login: &str, c: &ProviderConfig) -> io::Result<Self> {
        let key = login_key(host, login);
        // Counting the runs holding the login also clears what dead ones left.
        let others = runs_holding_in(dir, host, login);
        if others > 0 {
            tracing::info!(
                login,
                others,
                "{others} other run(s) on this machine use this login: they share its limits"
            );
        }
        let lock = open_rw(&dir.join(format!("{key}.lock")))?;
        let holder: u64 = rand::random();
        let holding = open_rw(&dir.join(format!("{key}.run-{holder:016x}")))?;
        holding.try_lock().map_err(io::Error::from)?;
        Ok(SharedLogin {
            dir: dir.to_path_buf(),
            key,
            holder,
            lock: Mutex::new(lock),
            _holding: holding,
            requests: Hold::of(c.request_limit, c.safety_margin),
            identical: Hold::of(c.identical_limit, c.safety_margin),
            numbers: c.number_limit.map(|r| Hold::of(r, c.safety_margin)),
            ceiling: Ceiling {
                rate: c.request_limit.count.get(),
                at_once: MAX_CONCURRENCY as u32,
            },
            warned: AtomicBool::new(false),
        })
    }

    fn path(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}.{suffix}", self.key))
    }

    /// Waits until a request for `batch` fits under every run's requests (see the contract).
    pub async fn acquire(&self, list: &[E164]) -> SharedTicket<'_> {
        let text: Vec<String> = list.iter().map(E164::to_string).collect();
        let hash = xxhash_rust::xxh3::xxh3_64(text.join(",").as_bytes());
        let weight = list.len() as u32;
        loop {
            match self.change(|state, now| self.admit(state, now, hash, weight)) {
                Ok(Ok(id)) => {
                    return SharedTicket {
                        login: self,
                        id: Some(id),
                    }
                }
                Ok(Err(wait)) => tokio::time::sleep(wait).await,
                Err(e) => {
                    self.warn_once(Some(e));
                    return SharedTicket {
                        login: self,
                        id: None,
                    };
                }
            }
        }
    }

    /// Records the request if it fits now; otherwise how long to wait before looking again.
    fn admit(&self, state: &mut State, now: u64, list: u64, weight: u32) -> Result<u64, Duration> {
        let caps = self.caps(state);
        let counts = |h: &Held, hold: Hold| h.done.is_none_or(|d| now.saturating_sub(d) < hold.ms);
        let requests = state
            .held
            .iter()
            .filter(|h| counts(h, self.requests))
            .count() as u32;
        let out = state.held.iter().filter(|h| h.done.is_none()).count() as u32;
        let same = state
            .held
            .iter()
            .filter(|h| h.list == list && counts(h, self.identical))
            .count() as u32;
        let numbers_fit = self.numbers.is_none_or(|hold| {
            let used: u32 = state
                .held
                .iter()
                .filter(|h| counts(h, hold))
                .map(|h| h.weight)
                .sum();
            used == 0 || used + weight <= hold.count
        });
        if out >= caps.at_once {
            return Err(POLL);
        }
        if requests < caps.rate && same < self.identical.count && numbers_fit {
            let id = state.next_id;
            state.next_id += 1;
            state.held.push(Held {
                id,
                holder: self.holder,
                done: None,
                weight,
                list,
            });
            return Ok(id);
        }
        // The earliest moment a finished request stops counting.
        let next = state
            .held
            .iter()
            .filter_map(|h| h.done.map(|d| d + self.requests.ms.min(self.identical.ms)))
            .filter(|t| *t > now)
            .min();
        Err(next.map_or(POLL, |t| {
            Duration::from_millis(t - now).clamp(Duration::from_millis(1), LONGEST_SLEEP)
        }))
    }

    /// The login's caps now.
    fn caps(&self, state: &mut State) -> Adaptive {
        let adaptive = state
            .adaptive
            .take()
            .map_or_else(|| Adaptive::new(self.ceiling), |a| a.within(self.ceiling));
        state.adaptive = Some(adaptive.clone());
        adaptive
    }

    /// Error 9 to a request sent at `sent_at` (this clock): the caps it left, if it lowered them.
    pub fn refused(&self, sent_at: u64) -> Option<Adaptive> {
        let lowered = self.change(|state, now| {
            self.caps(state);
            let adaptive = state.adaptive.as_mut().expect("caps set");
            adaptive.refused(sent_at, now).then(|| adaptive.clone())
        });
        lowered.unwrap_or_else(|e| {
            self.warn_once(Some(e));
            None
        })
    }

    /// A clean answer: the caps, if it raised them.
    pub fn answered(&self) -> Option<Adaptive> {
        let raised = self.change(|state, _| {
            self.caps(state);
            let adaptive = state.adaptive.as_mut().expect("caps set");
            adaptive.answered(self.ceiling).then(|| adaptive.clone())
        });
        raised.unwrap_or_else(|e| {
            self.warn_once(Some(e));
            None
        })
    }

    /// Reads the state under the lock, forgets what no window holds any more and what dead
    /// runs left out, applies `f`, and writes the state back.
    fn change<R>(&self, f: impl FnOnce(&mut State, u64) -> R) -> io::Result<R> {
        let lock = self.lock.lock().unwrap();
        lock.lock()?;
        let result = self.change_locked(f);
        let _ = lock.unlock();
        result
    }

    fn change_locked<R>(&self, f: impl FnOnce(&mut State, u64) -> R) -> io::Result<R> {
        let path = self.path("state");
        let mut state: State = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e),
        };
        let now = clock_ms();
        let longest = [Some(self.requests), Some(self.identical), self.numbers]
            .into_iter()
            .flatten()
            .map(|h| h.ms)
            .max()
            .unwrap_or(0);
        state
            .held
            .retain(|h| h.done.is_none_or(|d| now.saturating_sub(d) < longest));
        self.settle_the_dead(&mut state, now);
        let result = f(&mut state, now);
        let temp = self.path("state.tmp");
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(&serde_json::to_vec(&state).map_err(io::Error::other)?)?;
        std::fs::rename(&temp, &path)?;
        Ok(result)
    }

    /// Requests still out of runs that no longer live count as answered now.
    fn settle_the_dead(&self, state: &mut State, now: u64) {
        let mut holders: Vec<u64> = state
            .held
            .iter()
            .filter(|h| h.done.is_none() && h.holder != self.holder)
            .map(|h| h.holder)
            .collect();
        holders.sort_unstable();
        holders.dedup();
        for holder in holders {
            if !holder_alive(&self.path(&format!("run-{holder:016x}"))) {
                tracing::debug!(
                    holder,
                    "a run under this login is gone: its requests count as answered now"
                );
                for held in state.held.iter_mut().filter(|h| h.holder == holder) {
                    held.done.get_or_insert(now);
                }
            }
        }
    }

    fn warn_once(&self, error: Option<io::Error>) {
        if let Some(e) = error {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    dir = %self.dir.display(),
                    "the login's limits cannot be shared with other runs ({e}); this run keeps them alone"
                );
            }
        }
    }
}

impl Drop for SharedLogin {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path(&format!("run-{:016x}", self.holder)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Job, Overrides};

    fn provider(settings: &str) -> ProviderConfig {
        let text = format!(
            "[input]\npath = \"in.csv\"\nphone_columns = [\"phone\"]\n[output]\npath = \"out.parquet\"\n[provider]\nkind = \"sandbox\"\nbase_url = \"http://127.0.0.1:9\"\n{settings}"
        );
        Job::parse(&text, Path::new("/jobs/x.toml"), &Overrides::default())
            .unwrap()
            .provider
    }

    fn held(login: &SharedLogin) -> usize {
        login.change(|s, _| s.held.len()).unwrap()
    }

    #[tokio::test]
    async fn two_runs_share_one_window_and_a_dead_runs_requests_expire() {
        let dir = tempfile::tempdir().unwrap();
        let c = provider("request_limit = \"3/60s\"\nidentical_limit = \"2/60s\"\n");
        let a = SharedLogin::open(dir.path(), "h:1", "login", &c).unwrap();
        let b = SharedLogin::open(dir.path(), "h:1", "login", &c).unwrap();
        assert_eq!(runs_holding_in(dir.path(), "h:1", "login"), 2);
        let t1 = a.acquire(&[E164(1)]).await;
        let t2 = b.acquire(&[E164(2)]).await;
        drop(t1);
        // The third fits; a fourth does not, whichever run asks.
        let t3 = a.acquire(&[E164(3)]).await;
        assert_eq!(held(&a), 3);
        let state = b.change(|s, now| b.admit(s, now, 4, 1)).unwrap();
        assert!(state.is_err(), "a fourth request within the window");
        // b dies with its request out: it counts as answered once a sees b gone.
        drop(t3);
        std::mem::forget(t2);
        let b_file = b.path(&format!("run-{:016x}", b.holder));
        drop(b);
        assert!(!b_file.exists());
        assert_eq!(runs_holding_in(dir.path(), "h:1", "login"), 1);
        let out = a
            .change(|s, _| s.held.iter().filter(|h| h.done.is_none()).count())
            .unwrap();
        assert_eq!(out, 0);
        // Another login, or another host, has a file of its own.
        assert_ne!(login_key("h:1", "login"), login_key("h:2", "login"));
        assert!(!login_key("h:1", "login").contains("login"));
    }

    #[tokio::test]
    async fn error_9_lowers_the_caps_every_run_reads() {
        let dir = tempfile::tempdir().unwrap();
        let c = provider("request_limit = \"20/60s\"\n");
        let a = SharedLogin::open(dir.path(), "h:1", "l", &c).unwrap();
        let b = SharedLogin::open(dir.path(), "h:1", "l", &c).unwrap();
        let lowered = a.refused(clock_ms()).expect("lowered");
        assert_eq!(lowered.rate, 10);
        assert_eq!(b.change(|s, _| b.caps(s).rate).unwrap(), 10);
    }
}
