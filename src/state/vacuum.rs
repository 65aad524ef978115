//! Rewriting sled's database into a fresh one: sled never gives back the space of removed
//! entries, so after a compaction dropped a large log the next open copies what is left.
//!
//! Contract: [`rewrite`] writes `db.new` whole and synced, then `db` becomes `db.old`, `db.new`
//! becomes `db`, and `db.old` is removed; [`finish`] completes any of those steps an
//! interruption left undone, so `db` always names a whole database: the old one or the copy.

use std::fs::File;
use std::path::Path;

use super::lock::open_sled;
use super::StateError;

/// Set in `meta` when the database holds much less than its files take (after a compaction).
pub(super) const VACUUM_KEY: &[u8] = b"vacuum";

/// Whether the database asks to be rewritten.
pub(super) fn wanted(dir: &Path, db: &sled::Db) -> Result<bool, StateError> {
    db.open_tree("meta")
        .and_then(|meta| meta.contains_key(VACUUM_KEY))
        .map_err(|e| StateError::sled(dir, "reading the database's meta tree", e))
}

/// Rewrites `db` (the database in `dir/db`) into a fresh one holding the same trees, less the
/// request to be rewritten, and returns it open.
pub(super) fn rewrite(dir: &Path, db: sled::Db) -> Result<sled::Db, StateError> {
    let (path, new) = (dir.join("db"), dir.join("db.new"));
    if new.exists() {
        std::fs::remove_dir_all(&new).map_err(|e| StateError::io(&new, "removing", e))?;
    }
    let sled_error = |e| {
        StateError::sled(
            dir,
            format!("copying the database into {}", new.display()),
            e,
        )
    };
    let fresh = open_sled(&new)?;
    for name in db.tree_names() {
        let (from, to) = (
            db.open_tree(&name).map_err(sled_error)?,
            fresh.open_tree(&name).map_err(sled_error)?,
        );
        for item in from.iter() {
            let (key, value) = item.map_err(sled_error)?;
            to.insert(key, value).map_err(sled_error)?;
        }
    }
    fresh
        .open_tree("meta")
        .and_then(|m| m.remove(VACUUM_KEY))
        .map_err(sled_error)?;
    fresh.flush().map_err(sled_error)?;
    drop((db, fresh));
    let old = dir.join("db.old");
    std::fs::rename(&path, &old).map_err(|e| StateError::io(&path, "renaming to db.old", e))?;
    finish(dir)?;
    open_sled(&path)
}

/// Completes an interrupted [`rewrite`]: a `db.new` beside `db` was not finished (removed); a
/// `db.new` without `db` was (moved into place); a `db.old` is garbage.
pub(super) fn finish(dir: &Path) -> Result<(), StateError> {
    let (path, new, old) = (dir.join("db"), dir.join("db.new"), dir.join("db.old"));
    if new.exists() {
        if path.exists() {
            std::fs::remove_dir_all(&new).map_err(|e| StateError::io(&new, "removing", e))?;
        } else {
            std::fs::rename(&new, &path)
                .and_then(|_| File::open(dir)?.sync_all())
                .map_err(|e| StateError::io(&new, "moving into place", e))?;
        }
    }
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| StateError::io(&old, "removing", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_rewrite_of_the_database_is_completed() {
        // (directories present, what is `db` afterwards: the one marked "new" or "current")
        let cases: &[(&[&str], &str)] = &[
            (&["db", "db.new"], "current"),
            (&["db.new", "db.old"], "new"),
            (&["db", "db.old"], "current"),
            (&["db"], "current"),
        ];
        for (present, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            for name in *present {
                let mark = if *name == "db.new" { "new" } else { "current" };
                std::fs::create_dir(dir.path().join(name)).unwrap();
                std::fs::write(dir.path().join(name).join("mark"), mark).unwrap();
            }
            finish(dir.path()).unwrap();
            let left: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(left, ["db"], "{present:?}");
            let mark = std::fs::read_to_string(dir.path().join("db/mark")).unwrap();
            assert_eq!(&mark, expected, "{present:?}");
        }
    }
}
