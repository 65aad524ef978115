//! A host's answers at one moment, as one sequential file: what the log is compacted into.
//!
//! Layout (little-endian): the magic line `phone-enrich-snapshot/1`, the host (u16 length, then
//! its bytes), the log key below which every block is included (u64), the entry count (u64),
//! the entries, 16 bytes each `(number u64, checked-at second u32, answer id u32)`, in no
//! particular order (a number appears once), then a checksum of the entries (u64).
//!
//! Contract: [`Snapshot::write`] writes beside the target, syncs, renames into place and syncs
//! the directory: the path holds the old snapshot or the new one, whole. [`Snapshot::open`] and
//! [`Snapshot::read`] refuse a file of another host, a truncated one or one whose checksum
//! does not match, rather than read part of it.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

const MAGIC: &[u8] = b"phone-enrich-snapshot/1\n";
const ENTRY: usize = 16;

/// An open snapshot, its header read.
pub struct Snapshot {
    file: BufReader<File>,
    /// Log blocks with keys below this are in the snapshot.
    pub covers_below: u64,
    pub entries: u64,
}

fn invalid(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// A checksum of the entries, a word at a time (FNV-1a over 64-bit words).
#[derive(Clone, Copy)]
struct Checksum(u64);

impl Checksum {
    fn new() -> Self {
        Checksum(0xcbf2_9ce4_8422_2325)
    }

    fn add(&mut self, bytes: &[u8]) {
        for word in bytes.chunks_exact(8) {
            let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            self.0 = (self.0 ^ word).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn read_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

impl Snapshot {
    /// The snapshot at `path`, or `None` if there is none.
    pub fn open(path: &Path, host: &str) -> io::Result<Option<Snapshot>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let size = file.metadata()?.len();
        let mut file = BufReader::with_capacity(1 << 20, file);
        let mut magic = [0u8; MAGIC.len()];
        file.read_exact(&mut magic)?;
        if magic != MAGIC {
            return Err(invalid("not a phone-enrich snapshot"));
        }
        let mut len = [0u8; 2];
        file.read_exact(&mut len)?;
        let mut name = vec![0u8; u16::from_le_bytes(len) as usize];
        file.read_exact(&mut name)?;
        if name != host.as_bytes() {
            return Err(invalid(format!(
                "it holds the answers of {}",
                String::from_utf8_lossy(&name)
            )));
        }
        let covers_below = read_u64(&mut file)?;
        let entries = read_u64(&mut file)?;
        let expected = (MAGIC.len() + 2 + name.len() + 8 + 8 + 8) as u64 + entries * ENTRY as u64;
        if size != expected {
            return Err(invalid(format!(
                "{size} bytes where its header promises {expected}: truncated or corrupt"
            )));
        }
        Ok(Some(Snapshot {
            file,
            covers_below,
            entries,
        }))
    }

    /// Calls `each` with the entries, in file order, a chunk of whole 16-byte entries at a
    /// time `(number u64, checked-at second u32, answer id u32)`, then checks the checksum.
    pub fn read_chunks(mut self, mut each: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        let mut checksum = Checksum::new();
        let mut buffer = vec![0u8; ENTRY * 65_536];
        let mut left = self.entries as usize;
        while left > 0 {
            let n = left.min(65_536);
            let chunk = &mut buffer[..n * ENTRY];
            self.file.read_exact(chunk)?;
            checksum.add(chunk);
            each(chunk)?;
            left -= n;
        }
        if read_u64(&mut self.file)? != checksum.0 {
            return Err(invalid("its checksum does not match: corrupt"));
        }
        Ok(())
    }

    /// Writes the `count` `entries` (`(number, answer id, checked-at second)`) as the snapshot at
    /// `path`, replacing any.
    pub fn write(
        path: &Path,
        host: &str,
        covers_below: u64,
        count: usize,
        entries: impl Iterator<Item = (u64, u32, u32)>,
    ) -> io::Result<()> {
        let temp = path.with_extension("snapshot.tmp");
        let written = Self::write_file(&temp, host, covers_below, count, entries);
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written?;
        std::fs::rename(&temp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn write_file(
        temp: &Path,
        host: &str,
        covers_below: u64,
        count: usize,
        entries: impl Iterator<Item = (u64, u32, u32)>,
    ) -> io::Result<()> {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(temp)?);
        let name = host.as_bytes();
        let name_len = u16::try_from(name.len()).map_err(|_| invalid("host name too long"))?;
        out.write_all(MAGIC)?;
        out.write_all(&name_len.to_le_bytes())?;
        out.write_all(name)?;
        out.write_all(&covers_below.to_le_bytes())?;
        out.write_all(&(count as u64).to_le_bytes())?;
        let mut checksum = Checksum::new();
        let mut entry = [0u8; ENTRY];
        let mut written = 0;
        for (number, id, at_s) in entries {
            written += 1;
            entry[0..8].copy_from_slice(&number.to_le_bytes());
            entry[8..12].copy_from_slice(&at_s.to_le_bytes());
            entry[12..16].copy_from_slice(&id.to_le_bytes());
            checksum.add(&entry);
            out.write_all(&entry)?;
        }
        if written != count {
            return Err(invalid(format!(
                "{written} entries where {count} were announced"
            )));
        }
        out.write_all(&checksum.0.to_le_bytes())?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_it_wrote_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.snapshot");
        let entries: Vec<(u64, u32, u32)> = (0..100_000u64)
            .map(|i| (79_000_000_000 + i * 3, (i % 7) as u32, i as u32))
            .collect();
        Snapshot::write(&path, "smsc.ru", 42, entries.len(), entries.iter().copied()).unwrap();
        let snapshot = Snapshot::open(&path, "smsc.ru").unwrap().unwrap();
        assert_eq!((snapshot.covers_below, snapshot.entries), (42, 100_000));
        let mut back = Vec::new();
        snapshot
            .read_chunks(|chunk| {
                for e in chunk.chunks_exact(ENTRY) {
                    let number = u64::from_le_bytes(e[0..8].try_into().unwrap());
                    let at = u32::from_le_bytes(e[8..12].try_into().unwrap());
                    let id = u32::from_le_bytes(e[12..16].try_into().unwrap());
                    back.push((number, id, at));
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(back, entries);
        let short = Snapshot::write(&path, "smsc.ru", 42, 5, entries.iter().copied().take(4));
        assert!(short.is_err(), "a count that does not match is refused");
        assert!(!path.with_extension("snapshot.tmp").exists());
        assert_eq!(
            Snapshot::open(&path, "smsc.ru").unwrap().unwrap().entries,
            100_000,
            "the snapshot before is untouched"
        );
        assert!(Snapshot::open(&dir.path().join("none"), "smsc.ru")
            .unwrap()
            .is_none());

        let bytes = std::fs::read(&path).unwrap();
        let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
            ("other host", bytes.clone(), "smsc.kz", "answers of smsc.ru"),
            (
                "truncated",
                bytes[..bytes.len() - 5].to_vec(),
                "smsc.ru",
                "truncated",
            ),
            (
                "flipped",
                {
                    let mut b = bytes.clone();
                    let at = b.len() / 2;
                    b[at] ^= 1;
                    b
                },
                "smsc.ru",
                "checksum",
            ),
            ("not ours", b"hello".to_vec(), "smsc.ru", ""),
        ];
        for (name, bytes, host, want) in cases {
            std::fs::write(&path, bytes).unwrap();
            let result = Snapshot::open(&path, host)
                .and_then(|s| s.expect("present").read_chunks(|_| Ok(())));
            let err = result.expect_err(name).to_string();
            assert!(err.contains(want), "{name}: {err}");
        }
    }
}
