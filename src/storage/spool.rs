//! An object copied to a local spool file, read as a local file would be, then removed.
//!
//! Contract: [`Client::fetch`] asks the object's size, refuses it when the spool directory's
//! volume has less free space, then streams the object once into the file, checking the byte
//! count; on any failure or interruption the partial file is removed. The [`Spooled`] it
//! returns removes the file when dropped. Spool files are named `<pid>.<role>.<file name>`, so
//! runs never share one and [`remove_stale_spools`] can remove those a killed run left.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt;
use object_store::ObjectStoreExt;

use super::{Client, Fault, ObjectUrl, StorageError};

/// The spool directory's name under a state directory (the default `storage.spool_dir`).
pub const SPOOL_DIR: &str = "spool";

/// The roles a spool file plays, the start of its name after the pid (`import` is numbered).
const ROLES: [&str; 4] = ["input.", "output.", "export.", "import"];

/// A local copy of an object, removed when dropped.
#[derive(Debug)]
pub struct Spooled {
    path: PathBuf,
    bytes: u64,
}

impl Spooled {
    /// The local file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Spooled {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(file = %self.path.display(), "removing a spool file: {e}");
            }
        }
    }
}

/// The spool file of this process for `url` in `dir`, in the `role` it plays (`input`,
/// `output`, `export`, `import<N>`).
pub fn spool_path(dir: &Path, role: &str, url: &ObjectUrl) -> PathBuf {
    dir.join(format!("{}.{role}.{}", std::process::id(), url.file_name()))
}

/// Removes the spool files (and output temporaries) in `dir` that processes no longer running
/// left behind.
pub fn remove_stale_spools(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((pid, rest)) = name.trim_start_matches('.').split_once('.') else {
            continue;
        };
        if !ROLES.iter().any(|role| rest.starts_with(role)) {
            continue;
        }
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            tracing::info!(file = %entry.path().display(), "removing a spool file left by a killed run");
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Free bytes for an unprivileged writer on the volume holding `dir`.
#[cfg(target_os = "linux")]
fn free_space(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string and `stat` a valid out-parameter.
    let status = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    (status == 0).then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
}

#[cfg(not(target_os = "linux"))]
fn free_space(_dir: &Path) -> Option<u64> {
    None
}

impl Client {
    /// Checks the object exists and may be read (a HEAD request); returns its size.
    pub async fn check_readable(&self) -> Result<u64, StorageError> {
        let meta = self
            .store
            .head(self.url.key())
            .await
            .map_err(StorageError::from_store(
                &self.url,
                "checking the object",
                Fault::Input,
            ))?;
        Ok(meta.size)
    }

    /// Copies the object to the local file `to` (its directory made if missing), after checking
    /// there is room for it; stops when `interrupted` is set.
    pub async fn fetch(
        &self,
        to: &Path,
        interrupted: &AtomicBool,
    ) -> Result<Spooled, StorageError> {
        let url = &self.url;
        let local = |doing, path: &Path| {
            let path = path.to_path_buf();
            move |source| StorageError::Local {
                url: url.to_string(),
                doing,
                path,
                source,
            }
        };
        let dir = to.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(local("creating the spool directory", dir))?;
        let size = self.check_readable().await?;
        if let Some(free) = free_space(dir).filter(|free| *free < size) {
            return Err(StorageError::Space {
                url: url.to_string(),
                size,
                dir: dir.to_path_buf(),
                free,
            });
        }
        let reading = |e| StorageError::from_store(url, "reading the object", Fault::Input)(e);
        let mut stream = self
            .store
            .get(url.key())
            .await
            .map_err(reading)?
            .into_stream();
        let file = std::fs::File::create(to).map_err(local("creating the spool file", to))?;
        // From here on the file is removed on every way out but success.
        let mut spooled = Spooled {
            path: to.to_path_buf(),
            bytes: 0,
        };
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
        while let Some(chunk) = stream.next().await {
            if interrupted.load(Ordering::Relaxed) {
                return Err(StorageError::Interrupted {
                    url: url.to_string(),
                    doing: "reading the object",
                });
            }
            let chunk = chunk.map_err(reading)?;
            writer
                .write_all(&chunk)
                .map_err(local("writing the spool file", to))?;
            spooled.bytes += chunk.len() as u64;
        }
        writer
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .map_err(local("writing the spool file", to))?;
        if spooled.bytes != size {
            return Err(StorageError::Local {
                url: url.to_string(),
                doing: "reading the object into",
                path: to.to_path_buf(),
                source: std::io::Error::other(format!(
                    "{} bytes arrived of the {size} the store announced",
                    spooled.bytes
                )),
            });
        }
        tracing::info!(url = %url, file = %to.display(), bytes = size, "spooled the input");
        Ok(spooled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_spool_files_of_ended_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // No process has this id (Linux's pid_max is at most 2^22).
        let gone = 999_999_999u32;
        let mine = std::process::id();
        let names = [
            (format!("{gone}.input.crm.csv.gz"), false),
            (format!("{gone}.output.o.parquet"), false),
            (format!(".{gone}.output.o.parquet.{gone}.tmp"), false),
            (format!("{gone}.import3.answers.parquet"), false),
            (format!("{mine}.input.crm.csv.gz"), true),
            (format!("{gone}.notes.txt"), true),
            ("crm.csv".to_string(), true),
        ];
        for (name, _) in &names {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        remove_stale_spools(dir.path());
        for (name, kept) in &names {
            assert_eq!(dir.path().join(name).exists(), *kept, "{name}");
        }
    }
}
