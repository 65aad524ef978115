//! `MANIFEST`: what the store holds, kept outside sled, so that a database that lost data (sled
//! reads a damaged file as empty, or as its first half, without an error) is never taken for a
//! smaller store.
//!
//! Per provider host it records the snapshot (generation, the log key it covers below, entries,
//! checksum), the log's end (every key from the snapshot's up to `log_next` holds a committed
//! block) with its entry count, and how many answer ids the dictionary holds.
//!
//! Layout: two slots of [`SLOT`] bytes; a slot is the magic line, a sequence number (u64), the
//! body's length (u32), the body (postcard) and a checksum of all that. [`ManifestFile::write`]
//! writes the next version into the slot the older one holds and syncs: a write torn by a crash
//! leaves that slot unreadable and the other one, the version before, in force. [`read`] takes
//! the readable slot with the higher sequence number; a file with neither is damaged. Writers
//! keep this order: the parts first (sled flushed, snapshot renamed into place), then the
//! manifest, so that whatever the manifest records is on disk; a part may hold more than the
//! manifest records, never less. A commit's record is written at once for a host's first
//! batch, then at most once a second ([`ManifestFile::stage`]) and when the store closes: the
//! blocks a crash leaves after the last version written are taken in by the next open.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::checksum::Checksum;
use super::StateError;

/// The manifest's file name in a state directory.
pub(super) const FILE: &str = "MANIFEST";
const MAGIC: &[u8] = b"phone-enrich-manifest/1\n";
/// Bytes per slot: room for hundreds of hosts.
const SLOT: u64 = 32 * 1024;
const HEAD: usize = MAGIC.len() + 8 + 4;

/// What the store holds, by provider host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Manifest {
    pub(super) hosts: BTreeMap<String, HostRecord>,
}

/// What one host's parts hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct HostRecord {
    pub(super) snapshot: Option<SnapshotRecord>,
    /// Every log key from the snapshot's `covers_below` up to this one holds a block.
    pub(super) log_next: u64,
    /// Entries in those blocks.
    pub(super) log_entries: u64,
    /// Answer ids below this are in the dictionary.
    pub(super) answers: u32,
}

/// The snapshot file a host's answers start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SnapshotRecord {
    /// Its file is [`super::snapshot::file_name`]`(host, Some(generation))`.
    pub(super) generation: u64,
    pub(super) covers_below: u64,
    pub(super) entries: u64,
    /// The checksum the file ends with.
    pub(super) checksum: u64,
}

impl HostRecord {
    /// The first log key not in the snapshot.
    pub(super) fn covers_below(&self) -> u64 {
        self.snapshot.map_or(0, |s| s.covers_below)
    }

    /// Entries the snapshot and the log hold together.
    pub(super) fn entries(&self) -> u64 {
        self.snapshot.map_or(0, |s| s.entries) + self.log_entries
    }
}

impl Manifest {
    /// Whether it records any answer at all.
    pub(super) fn records_answers(&self) -> bool {
        self.hosts.values().any(|h| h.entries() > 0)
    }
}

/// What [`read`] found.
#[derive(Debug)]
pub(super) enum Found {
    Missing,
    /// Neither slot is readable; the text says what was found.
    Damaged(String),
    Sound {
        manifest: Manifest,
        sequence: u64,
    },
}

/// Reads the manifest of the store in `dir`.
pub(super) fn read(dir: &Path) -> Result<Found, StateError> {
    let path = dir.join(FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(StateError::io(&path, "opening", e)),
    };
    let mut bytes = Vec::new();
    file.take(2 * SLOT)
        .read_to_end(&mut bytes)
        .map_err(|e| StateError::io(&path, "reading", e))?;
    let slots = [0, SLOT as usize].map(|at| bytes.get(at..).and_then(decode_slot));
    Ok(match slots {
        [None, None] => Found::Damaged(format!(
            "neither of its two copies is readable ({} bytes)",
            bytes.len()
        )),
        [Some((s0, m0)), Some((s1, _))] if s0 > s1 => Found::Sound {
            manifest: m0,
            sequence: s0,
        },
        [_, Some((sequence, manifest))] | [Some((sequence, manifest)), None] => {
            Found::Sound { manifest, sequence }
        }
    })
}

/// A slot's sequence number and manifest, if its checksum matches.
fn decode_slot(slot: &[u8]) -> Option<(u64, Manifest)> {
    if slot.get(..MAGIC.len())? != MAGIC {
        return None;
    }
    let sequence = u64::from_le_bytes(slot.get(MAGIC.len()..MAGIC.len() + 8)?.try_into().ok()?);
    let len = u32::from_le_bytes(slot.get(MAGIC.len() + 8..HEAD)?.try_into().ok()?) as usize;
    let body = slot.get(HEAD..HEAD + len)?;
    let sum = u64::from_le_bytes(slot.get(HEAD + len..HEAD + len + 8)?.try_into().ok()?);
    if sum != Checksum::of(&slot[..HEAD + len]) {
        return None;
    }
    Some((sequence, postcard::from_bytes(body).ok()?))
}

fn encode_slot(sequence: u64, manifest: &Manifest) -> io::Result<Vec<u8>> {
    let body = postcard::to_stdvec(manifest).map_err(io::Error::other)?;
    let mut slot = Vec::with_capacity(HEAD + body.len() + 8);
    slot.extend_from_slice(MAGIC);
    slot.extend_from_slice(&sequence.to_le_bytes());
    slot.extend_from_slice(&(body.len() as u32).to_le_bytes());
    slot.extend_from_slice(&body);
    let sum = Checksum::of(&slot);
    slot.extend_from_slice(&sum.to_le_bytes());
    if slot.len() as u64 > SLOT {
        return Err(io::Error::other(format!(
            "{} hosts do not fit in a manifest",
            manifest.hosts.len()
        )));
    }
    Ok(slot)
}

/// How long a commit's record may stay in memory only: [`ManifestFile::stage`] writes at most
/// once in this time, so that the commit path costs no extra sync per batch.
const WRITE_EVERY: Duration = Duration::from_secs(1);

/// The manifest of an open store: the version in force and the file it is written to. A
/// version staged but not yet written is written when the value is dropped.
#[derive(Debug)]
pub(super) struct ManifestFile {
    file: File,
    path: PathBuf,
    sequence: u64,
    current: Manifest,
    /// When a version was last written, and whether `current` is newer.
    written_at: Instant,
    pending: bool,
}

impl ManifestFile {
    /// The manifest [`read`] found sound in `dir`, opened to write its next versions.
    pub(super) fn open(dir: &Path, manifest: Manifest, sequence: u64) -> Result<Self, StateError> {
        let path = dir.join(FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StateError::io(&path, "opening", e))?;
        Ok(ManifestFile {
            file,
            path,
            sequence,
            current: manifest,
            written_at: Instant::now(),
            pending: false,
        })
    }

    /// Writes `manifest` as the whole manifest of `dir`, replacing any: beside it, synced,
    /// renamed into place, the directory synced.
    pub(super) fn create(dir: &Path, manifest: Manifest) -> Result<Self, StateError> {
        let path = dir.join(FILE);
        let temp = dir.join(format!("{FILE}.tmp"));
        let written = (|| {
            let file = File::create(&temp)?;
            file.set_len(2 * SLOT)?;
            file.write_all_at(&encode_slot(1, &manifest)?, SLOT)?;
            file.sync_all()?;
            std::fs::rename(&temp, &path)?;
            File::open(dir)?.sync_all()
        })();
        written.map_err(|e| StateError::io(&path, "writing", e))?;
        Self::open(dir, manifest, 1)
    }

    /// The version in force.
    pub(super) fn current(&self) -> &Manifest {
        &self.current
    }

    /// Puts `manifest` in force: written over the older slot and synced before it returns.
    pub(super) fn write(&mut self, manifest: Manifest) -> Result<(), StateError> {
        let sequence = self.sequence + 1;
        let slot = encode_slot(sequence, &manifest)
            .map_err(|e| StateError::io(&self.path, "writing", e))?;
        self.file
            .write_all_at(&slot, (sequence % 2) * SLOT)
            .and_then(|_| self.file.sync_data())
            .map_err(|e| StateError::io(&self.path, "writing", e))?;
        self.sequence = sequence;
        self.current = manifest;
        self.written_at = Instant::now();
        self.pending = false;
        Ok(())
    }

    /// Takes `manifest` as the current version, written now if none was for [`WRITE_EVERY`],
    /// else later. For a record that only grows (a commit): until it is written, the parts hold
    /// more than the manifest on disk records, which the next open takes in.
    pub(super) fn stage(&mut self, manifest: Manifest) -> Result<(), StateError> {
        if self.written_at.elapsed() >= WRITE_EVERY {
            return self.write(manifest);
        }
        self.current = manifest;
        self.pending = true;
        Ok(())
    }

    /// Writes the current version if it was only staged.
    pub(super) fn flush(&mut self) -> Result<(), StateError> {
        match self.pending {
            true => self.write(self.current.clone()),
            false => Ok(()),
        }
    }
}

impl Drop for ManifestFile {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            // Harmless: the next open takes in what the parts hold beyond the manifest.
            tracing::warn!("{e}: the next open of the store completes it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_host(log_next: u64) -> Manifest {
        let mut m = Manifest::default();
        m.hosts.insert(
            "smsc.ru".into(),
            HostRecord {
                log_next,
                log_entries: log_next * 10,
                answers: 3,
                ..Default::default()
            },
        );
        m
    }

    fn log_next(dir: &Path) -> Option<u64> {
        match read(dir).unwrap() {
            Found::Sound { manifest, .. } => Some(manifest.hosts["smsc.ru"].log_next),
            _ => None,
        }
    }

    #[test]
    fn the_latest_readable_version_is_in_force() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(read(dir.path()).unwrap(), Found::Missing));
        let mut file = ManifestFile::create(dir.path(), with_host(1)).unwrap();
        assert_eq!(log_next(dir.path()), Some(1));
        for n in 2..=5 {
            file.write(with_host(n)).unwrap();
            assert_eq!(log_next(dir.path()), Some(n));
        }
        // Version 5 is in slot 1, 4 in slot 0.
        let path = dir.path().join(FILE);
        let bytes = std::fs::read(&path).unwrap();
        let damage = |slots: &[u64]| {
            let mut b = bytes.clone();
            for at in slots {
                b[*at as usize + 30] ^= 4;
            }
            b
        };
        // (case, file, the version in force: None when damaged)
        let cases: Vec<(&str, Vec<u8>, Option<u64>)> = vec![
            ("the latest torn", damage(&[SLOT]), Some(4)),
            ("the older torn", damage(&[0]), Some(5)),
            ("both torn", damage(&[0, SLOT]), None),
            ("cut short", bytes[..SLOT as usize + 20].to_vec(), Some(4)),
            ("empty", Vec::new(), None),
            (
                "random",
                (0..2 * SLOT).map(|i| (i * 7919 % 251) as u8).collect(),
                None,
            ),
        ];
        for (name, file, expected) in cases {
            std::fs::write(&path, file).unwrap();
            assert_eq!(log_next(dir.path()), expected, "{name}");
        }
    }
}
