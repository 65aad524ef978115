//! Who holds a state directory, and opening sled inside it.
//!
//! Contract: [`StoreLock::acquire`] takes an OS lock on `DIR/LOCK` and writes the holder (pid,
//! host, since when) into it; a second opener, in this process or another, gets
//! [`StateError::Locked`] naming that holder. The lock lasts as long as the value. [`open_sled`]
//! opens sled's database under that lock: sled takes its own lock on its data file, which a
//! handle this process just closed can keep for a moment while sled's I/O threads finish, so
//! it first waits for that lock to be free (the LOCK file already keeps other processes out).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use super::StateError;

/// The name of the lock file in a state directory.
pub(super) const LOCK_FILE: &str = "LOCK";

/// The OS lock on a state directory, held while the value lives.
#[derive(Debug)]
pub(super) struct StoreLock {
    _file: File,
}

impl StoreLock {
    /// Takes the lock of `dir` (created if missing) and records this process as its holder.
    pub(super) fn acquire(dir: &Path) -> Result<StoreLock, StateError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StateError::io(dir, "creating the directory", e))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StateError::io(&path, "opening", e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "holder unknown".to_string(),
                    named => named.to_string(),
                };
                return Err(StateError::Locked {
                    dir: dir.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(StateError::io(&path, "locking", e)),
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "unknown host".into());
        let holder = format!(
            "pid {} on {host}, since {}",
            std::process::id(),
            humantime::format_rfc3339_seconds(SystemTime::now())
        );
        // The holder is for people reading the refusal; the lock itself is what keeps others out.
        let _ = file
            .set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(holder.as_bytes()));
        Ok(StoreLock { _file: file })
    }
}

/// How long a handle this process closed may keep sled's lock (sled's I/O threads finishing).
const SLED_RELEASE_WAIT: Duration = Duration::from_secs(10);

/// Opens the sled database at `path` (created if missing). sled's default page cache is 1 GiB;
/// the log is read once per run, so little is needed.
pub(super) fn open_sled(path: &Path) -> Result<sled::Db, StateError> {
    wait_for_sled_lock(&path.join("db"))?;
    let dir = path.parent().unwrap_or(path);
    sled::Config::new()
        .path(path)
        .cache_capacity(64 << 20)
        .open()
        .map_err(|e| StateError::sled(dir, format!("opening {}", path.display()), e))
}

/// Waits until no handle holds sled's lock on its data file `db_file` (an `flock`, as sled
/// takes it). Only this process can hold it, under the directory's LOCK, and only for the
/// moment its closed handles take to let go.
fn wait_for_sled_lock(db_file: &Path) -> Result<(), StateError> {
    let file = match File::open(db_file) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StateError::io(db_file, "opening", e)),
    };
    let deadline = Instant::now() + SLED_RELEASE_WAIT;
    loop {
        match file.try_lock() {
            // Dropping `file` releases it for sled.
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(TryLockError::WouldBlock) => {
                return Err(StateError::io(
                    db_file,
                    "waiting for sled's lock on",
                    io::ErrorKind::WouldBlock.into(),
                ))
            }
            Err(TryLockError::Error(e)) => {
                return Err(StateError::io(db_file, "waiting for sled's lock on", e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_naming_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let _first = StoreLock::acquire(dir.path()).unwrap();
        match StoreLock::acquire(dir.path()) {
            Err(StateError::Locked { holder, .. }) => assert!(
                holder.contains(&format!("pid {}", std::process::id())),
                "{holder}"
            ),
            other => panic!("expected Locked, got {other:?}"),
        }
    }

    #[test]
    fn sled_is_reopened_as_soon_as_a_closed_handle_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        for round in 0..20u32 {
            let db = open_sled(&path).unwrap();
            db.insert(round.to_be_bytes(), b"x".as_slice()).unwrap();
            db.flush().unwrap();
        }
        assert_eq!(open_sled(&path).unwrap().len(), 20);
    }
}
