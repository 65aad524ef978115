//! A host's answers at one moment, as one sequential file: what the log is compacted into.
//!
//! Layout of `phone-enrich-snapshot/2` (little-endian): the magic line, the host (u16 length,
//! then its bytes), the log key below which every block is included (u64), the dictionary's
//! answer count (u32), the entry count (u64) and a checksum of all that; the dictionary (per
//! answer id from 0: u32 length, then the answer's postcard bytes) and its checksum; the
//! entries, 16 bytes each `(number u64, checked-at second u32, answer id u32)`, in no particular
//! order (a number appears once), in chunks of [`CHUNK`] entries each followed by its checksum;
//! last, the file's checksum (of the header's, the dictionary's and every chunk's checksums),
//! which MANIFEST records. Version 1 (format 3 stores, read for their migration) had no
//! dictionary and one checksum of all entries at the end.
//!
//! Contract: [`Snapshot::write`] writes beside the target, syncs, renames into place and syncs
//! the directory: the path holds a whole snapshot or none. [`Snapshot::open`] and
//! [`Snapshot::read_chunks`] refuse a file of another host, a truncated one or one whose
//! checksums do not match, rather than read part of it; [`salvage`] reads what can still be
//! trusted of a damaged one: every chunk whose checksum matches. The snapshot holds its host's
//! dictionary as of its writing, so its answers can be read without sled.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::checksum::Checksum;

const MAGIC_1: &[u8] = b"phone-enrich-snapshot/1\n";
const MAGIC_2: &[u8] = b"phone-enrich-snapshot/2\n";
const ENTRY: usize = 16;
/// Entries per checksummed chunk (1 MiB): damage costs at most this many answers.
pub(super) const CHUNK: usize = 65_536;
/// Bounds a header's dictionary before its checksum is known to be right.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Why a snapshot could not be read: the disk, or the file's content.
#[derive(Debug, thiserror::Error)]
pub(super) enum SnapshotError {
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The file is not what it should be; the text says how.
    #[error("{0}")]
    Invalid(String),
}

fn invalid(why: impl Into<String>) -> SnapshotError {
    SnapshotError::Invalid(why.into())
}

/// Reads exactly `buf`; an early end of file is damage (a truncated file), not an I/O failure.
fn read_exact(r: &mut impl Read, buf: &mut [u8]) -> Result<(), SnapshotError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => invalid("it ends early: truncated"),
        _ => SnapshotError::Io(e),
    })
}

fn read_u64(r: &mut impl Read) -> Result<u64, SnapshotError> {
    let mut b = [0u8; 8];
    read_exact(r, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn read_u32(r: &mut impl Read) -> Result<u32, SnapshotError> {
    let mut b = [0u8; 4];
    read_exact(r, &mut b)?;
    Ok(u32::from_le_bytes(b))
}

/// The file name of `host`'s snapshot of `generation` (`None`: format 3's single file).
pub(super) fn file_name(host: &str, generation: Option<u64>) -> String {
    let hex: String = host.bytes().map(|b| format!("{b:02x}")).collect();
    match generation {
        Some(g) => format!("answers@{hex}.{g}.snapshot"),
        None => format!("answers@{hex}.snapshot"),
    }
}

/// The host and generation a snapshot file name stands for (see [`file_name`]).
pub(super) fn parse_file_name(name: &str) -> Option<(String, Option<u64>)> {
    let stem = name.strip_prefix("answers@")?.strip_suffix(".snapshot")?;
    let (hex, generation) = match stem.split_once('.') {
        Some((hex, g)) => (hex, Some(g.parse().ok()?)),
        None => (stem, None),
    };
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    Some((String::from_utf8(bytes?).ok()?, generation))
}

/// Every snapshot file in `dir`: its path, host and generation.
pub(super) fn files_in(dir: &Path) -> io::Result<Vec<(PathBuf, String, Option<u64>)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some((host, generation)) = parse_file_name(&entry.file_name().to_string_lossy()) {
            found.push((entry.path(), host, generation));
        }
    }
    found.sort_by(|a, b| (&a.1, a.2).cmp(&(&b.1, b.2)));
    Ok(found)
}

/// An open snapshot, its header and dictionary read and checked.
pub(super) struct Snapshot {
    file: BufReader<File>,
    version: u8,
    /// Log blocks with keys below this are in the snapshot.
    pub(super) covers_below: u64,
    pub(super) entries: u64,
    /// The answers' postcard encodings by id; empty in a version 1 file.
    pub(super) dictionary: Vec<Vec<u8>>,
    /// The checksum the file ends with, which MANIFEST records.
    pub(super) checksum: u64,
    /// Checksums of the header and the dictionary, which the file's checksum covers.
    sections: Checksum,
}

/// The header as read, before its checksum and the dictionary.
struct Header {
    version: u8,
    host: String,
    covers_below: u64,
    answers: u32,
    entries: u64,
}

fn read_header(file: &mut impl Read) -> Result<(Header, Checksum), SnapshotError> {
    let mut magic = [0u8; MAGIC_2.len()];
    read_exact(file, &mut magic)?;
    let version = match &magic[..] {
        m if m == MAGIC_2 => 2,
        m if m == MAGIC_1 => 1,
        _ => return Err(invalid("not a phone-enrich snapshot")),
    };
    let mut len = [0u8; 2];
    read_exact(file, &mut len)?;
    let mut name = vec![0u8; u16::from_le_bytes(len) as usize];
    read_exact(file, &mut name)?;
    let covers_below = read_u64(file)?;
    let answers = if version == 2 { read_u32(file)? } else { 0 };
    let entries = read_u64(file)?;
    let mut sections = Checksum::new();
    if version == 2 {
        let mut header = Checksum::new();
        for piece in [&magic[..], &len, &name, &covers_below.to_le_bytes()] {
            header.add(piece);
        }
        header.add(&answers.to_le_bytes());
        header.add(&entries.to_le_bytes());
        if read_u64(file)? != header.value() {
            return Err(invalid("its header's checksum does not match: corrupt"));
        }
        sections.add(&header.value().to_le_bytes());
    }
    let header = Header {
        version,
        host: String::from_utf8_lossy(&name).into_owned(),
        covers_below,
        answers,
        entries,
    };
    Ok((header, sections))
}

/// The dictionary section: `answers` encodings and the checksum after them.
fn read_dictionary(
    file: &mut impl Read,
    answers: u32,
) -> Result<(Vec<Vec<u8>>, u64), SnapshotError> {
    let mut checksum = Checksum::new();
    let mut dictionary = Vec::with_capacity(answers as usize);
    for _ in 0..answers {
        let len = read_u32(file)?;
        if len as usize > MAX_ANSWER_BYTES {
            return Err(invalid("an answer of its dictionary is too long: corrupt"));
        }
        let mut encoded = vec![0u8; len as usize];
        read_exact(file, &mut encoded)?;
        checksum.add(&len.to_le_bytes());
        checksum.add(&encoded);
        dictionary.push(encoded);
    }
    if read_u64(file)? != checksum.value() {
        return Err(invalid("its dictionary's checksum does not match: corrupt"));
    }
    Ok((dictionary, checksum.value()))
}

/// Bytes of the entries' section: the entries, and in version 2 a checksum per chunk.
fn entries_bytes(version: u8, entries: u64) -> u64 {
    let chunks = match version {
        2 => entries.div_ceil(CHUNK as u64),
        _ => 0,
    };
    entries * ENTRY as u64 + chunks * 8
}

impl Snapshot {
    /// The snapshot at `path`, or `None` if there is none.
    pub(super) fn open(path: &Path, host: &str) -> Result<Option<Snapshot>, SnapshotError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let size = file.metadata()?.len();
        let mut file = BufReader::with_capacity(1 << 20, file);
        let (header, mut sections) = read_header(&mut file)?;
        if header.host != host {
            return Err(invalid(format!("it holds the answers of {}", header.host)));
        }
        let dictionary = match header.version {
            2 => {
                let (dictionary, checksum) = read_dictionary(&mut file, header.answers)?;
                sections.add(&checksum.to_le_bytes());
                dictionary
            }
            _ => Vec::new(),
        };
        let start = file.stream_position()?;
        let expected = start + entries_bytes(header.version, header.entries) + 8;
        if size != expected {
            return Err(invalid(format!(
                "{size} bytes where its header promises {expected}: truncated or corrupt"
            )));
        }
        file.seek(SeekFrom::End(-8))?;
        let checksum = read_u64(&mut file)?;
        file.seek(SeekFrom::Start(start))?;
        Ok(Some(Snapshot {
            file,
            version: header.version,
            covers_below: header.covers_below,
            entries: header.entries,
            dictionary,
            checksum,
            sections,
        }))
    }

    /// Calls `each` with the entries, in file order, a chunk of whole 16-byte entries at a
    /// time `(number u64, checked-at second u32, answer id u32)`, checking every checksum;
    /// `each` may refuse an entry with a description of what is wrong.
    pub(super) fn read_chunks(
        mut self,
        mut each: impl FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), SnapshotError> {
        let mut whole = Checksum::new();
        let mut buffer = vec![0u8; ENTRY * CHUNK];
        let mut left = self.entries as usize;
        let mut index = 0;
        while left > 0 {
            let n = left.min(CHUNK);
            let chunk = &mut buffer[..n * ENTRY];
            read_exact(&mut self.file, chunk)?;
            if self.version == 2 {
                let sum = Checksum::of(chunk);
                if read_u64(&mut self.file)? != sum {
                    return Err(invalid(format!(
                        "the checksum of its chunk {index} (entries {} to {}) does not match: corrupt",
                        index * CHUNK,
                        index * CHUNK + n - 1
                    )));
                }
                self.sections.add(&sum.to_le_bytes());
            } else {
                whole.add(chunk);
            }
            each(chunk).map_err(SnapshotError::Invalid)?;
            left -= n;
            index += 1;
        }
        let computed = match self.version {
            2 => self.sections.value(),
            _ => whole.value(),
        };
        if read_u64(&mut self.file)? != computed || computed != self.checksum {
            return Err(invalid("its checksum does not match: corrupt"));
        }
        Ok(())
    }

    /// Writes the `count` `entries` (`(number, answer id, checked-at second)`) and the
    /// `dictionary` (answer encodings by id) as the snapshot at `path`, replacing any; returns
    /// the file's checksum.
    pub(super) fn write(
        path: &Path,
        host: &str,
        covers_below: u64,
        dictionary: &[Vec<u8>],
        count: usize,
        entries: impl Iterator<Item = (u64, u32, u32)>,
    ) -> io::Result<u64> {
        let temp = path.with_extension("snapshot.tmp");
        let header = Header {
            version: 2,
            host: host.to_string(),
            covers_below,
            answers: u32::try_from(dictionary.len()).map_err(io::Error::other)?,
            entries: count as u64,
        };
        let written = write_file(&temp, &header, dictionary, entries);
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        let checksum = written?;
        std::fs::rename(&temp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(checksum)
    }
}

fn write_file(
    temp: &Path,
    header: &Header,
    dictionary: &[Vec<u8>],
    entries: impl Iterator<Item = (u64, u32, u32)>,
) -> io::Result<u64> {
    let mut out = Checked::new(BufWriter::with_capacity(1 << 20, File::create(temp)?));
    let name = header.host.as_bytes();
    let name_len = u16::try_from(name.len()).map_err(|_| io::Error::other("host name too long"))?;
    out.put(MAGIC_2)?;
    out.put(&name_len.to_le_bytes())?;
    out.put(name)?;
    out.put(&header.covers_below.to_le_bytes())?;
    out.put(&header.answers.to_le_bytes())?;
    out.put(&header.entries.to_le_bytes())?;
    let mut sections = Checksum::new();
    sections.add(&out.seal()?.to_le_bytes());
    for encoded in dictionary {
        let len = u32::try_from(encoded.len()).map_err(io::Error::other)?;
        out.put(&len.to_le_bytes())?;
        out.put(encoded)?;
    }
    sections.add(&out.seal()?.to_le_bytes());
    let mut entry = [0u8; ENTRY];
    let (mut written, mut in_chunk) = (0u64, 0);
    for (number, id, at_s) in entries {
        entry[0..8].copy_from_slice(&number.to_le_bytes());
        entry[8..12].copy_from_slice(&at_s.to_le_bytes());
        entry[12..16].copy_from_slice(&id.to_le_bytes());
        out.put(&entry)?;
        written += 1;
        in_chunk += 1;
        if in_chunk == CHUNK {
            sections.add(&out.seal()?.to_le_bytes());
            in_chunk = 0;
        }
    }
    if in_chunk > 0 {
        sections.add(&out.seal()?.to_le_bytes());
    }
    if written != header.entries {
        return Err(io::Error::other(format!(
            "{written} entries where {} were announced",
            header.entries
        )));
    }
    out.inner.write_all(&sections.value().to_le_bytes())?;
    let file = out.inner.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(sections.value())
}

/// A writer that checksums what it writes, section by section.
struct Checked<W: Write> {
    inner: W,
    section: Checksum,
}

impl<W: Write> Checked<W> {
    fn new(inner: W) -> Self {
        Checked {
            inner,
            section: Checksum::new(),
        }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.section.add(bytes);
        self.inner.write_all(bytes)
    }

    /// Ends a section: writes its checksum after it and returns it.
    fn seal(&mut self) -> io::Result<u64> {
        let value = std::mem::replace(&mut self.section, Checksum::new()).value();
        self.inner.write_all(&value.to_le_bytes())?;
        Ok(value)
    }
}

/// What [`salvage`] could read of a snapshot file.
pub(super) struct Salvaged {
    /// The dictionary, when its checksum matches (empty in a version 1 file).
    pub(super) dictionary: Option<Vec<Vec<u8>>>,
}

/// Reads what can be trusted of `host`'s snapshot at `path`: its header (without which nothing
/// is), its dictionary if sound, and `each` chunk of entries whose checksum matches (in version
/// 1, all entries or none).
pub(super) fn salvage(
    path: &Path,
    host: &str,
    mut each: impl FnMut(&[u8]),
) -> Result<Salvaged, SnapshotError> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut file = BufReader::with_capacity(1 << 20, file);
    let (header, _) = read_header(&mut file)?;
    if header.host != host {
        return Err(invalid(format!("it holds the answers of {}", header.host)));
    }
    let section = entries_bytes(header.version, header.entries);
    let dictionary = match header.version {
        2 => match read_dictionary(&mut file, header.answers) {
            Ok((dictionary, _)) => Some(dictionary),
            // Where the entries start is then known only from the end of a whole file.
            Err(_) => {
                let start = size.checked_sub(section + 8);
                file.seek(SeekFrom::Start(start.unwrap_or(size)))?;
                None
            }
        },
        _ => Some(Vec::new()),
    };
    let start = file.stream_position()?;
    let entries = header.entries as usize;
    if header.version == 1 {
        // One checksum over every entry: all of them, or none.
        let mut sum = Checksum::new();
        let whole = read_chunks_lenient(&mut file, entries, false, |chunk, _| sum.add(chunk));
        if whole && read_u64(&mut file).ok() == Some(sum.value()) {
            file.seek(SeekFrom::Start(start))?;
            read_chunks_lenient(&mut file, entries, false, |chunk, _| each(chunk));
        }
    } else {
        read_chunks_lenient(&mut file, entries, true, |chunk, sound| {
            if sound {
                each(chunk)
            }
        });
    }
    Ok(Salvaged { dictionary })
}

/// Reads `entries` entries in chunks (each followed by its checksum when `summed`), calling
/// `each` with a chunk and whether its checksum matches; stops at the end of the file, and
/// says whether every chunk was there.
fn read_chunks_lenient(
    file: &mut impl Read,
    entries: usize,
    summed: bool,
    mut each: impl FnMut(&[u8], bool),
) -> bool {
    let mut buffer = vec![0u8; ENTRY * CHUNK.min(entries.max(1))];
    let mut left = entries;
    while left > 0 {
        let n = left.min(CHUNK);
        let chunk = &mut buffer[..n * ENTRY];
        if read_exact(file, chunk).is_err() {
            return false;
        }
        let sound = match summed {
            true => match read_u64(file) {
                Ok(sum) => sum == Checksum::of(chunk),
                Err(_) => return false,
            },
            false => true,
        };
        each(chunk, sound);
        left -= n;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: u64) -> Vec<(u64, u32, u32)> {
        (0..n)
            .map(|i| (79_000_000_000 + i * 3, (i % 7) as u32, i as u32 % 3))
            .collect()
    }

    fn dictionary() -> Vec<Vec<u8>> {
        vec![
            b"zero".to_vec(),
            b"one".to_vec(),
            b"the third answer".to_vec(),
        ]
    }

    fn read_back(path: &Path, host: &str) -> Result<Vec<(u64, u32, u32)>, SnapshotError> {
        let mut back = Vec::new();
        Snapshot::open(path, host)?
            .expect("present")
            .read_chunks(|chunk| {
                for e in chunk.chunks_exact(ENTRY) {
                    let number = u64::from_le_bytes(e[0..8].try_into().unwrap());
                    let at = u32::from_le_bytes(e[8..12].try_into().unwrap());
                    let id = u32::from_le_bytes(e[12..16].try_into().unwrap());
                    back.push((number, id, at));
                }
                Ok(())
            })?;
        Ok(back)
    }

    #[test]
    fn reads_back_what_it_wrote_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.snapshot");
        let written = entries(100_000);
        let sum = Snapshot::write(
            &path,
            "smsc.ru",
            42,
            &dictionary(),
            written.len(),
            written.iter().copied(),
        )
        .unwrap();
        let snapshot = Snapshot::open(&path, "smsc.ru").unwrap().unwrap();
        assert_eq!((snapshot.covers_below, snapshot.entries), (42, 100_000));
        assert_eq!(
            (snapshot.dictionary.clone(), snapshot.checksum),
            (dictionary(), sum)
        );
        assert_eq!(read_back(&path, "smsc.ru").unwrap(), written);
        let short = Snapshot::write(
            &path,
            "smsc.ru",
            42,
            &[],
            5,
            written.iter().copied().take(4),
        );
        assert!(short.is_err(), "a count that does not match is refused");
        assert!(!path.with_extension("snapshot.tmp").exists());
        assert_eq!(
            read_back(&path, "smsc.ru").unwrap().len(),
            100_000,
            "the snapshot before is untouched"
        );
        assert!(Snapshot::open(&dir.path().join("none"), "smsc.ru")
            .unwrap()
            .is_none());

        let bytes = std::fs::read(&path).unwrap();
        let flipped = |at: usize| {
            let mut b = bytes.clone();
            b[at] ^= 1;
            b
        };
        // (case, file, host asked for, the error names)
        let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
            ("other host", bytes.clone(), "smsc.kz", "answers of smsc.ru"),
            (
                "truncated",
                bytes[..bytes.len() - 5].to_vec(),
                "smsc.ru",
                "truncated",
            ),
            (
                "header flipped",
                flipped(30),
                "smsc.ru",
                "header's checksum",
            ),
            (
                "dictionary flipped",
                flipped(70),
                "smsc.ru",
                "dictionary's checksum",
            ),
            (
                "entry flipped",
                flipped(bytes.len() / 2),
                "smsc.ru",
                "chunk 0",
            ),
            (
                "last chunk flipped",
                flipped(bytes.len() - 20),
                "smsc.ru",
                "chunk 1",
            ),
            (
                "file checksum flipped",
                flipped(bytes.len() - 2),
                "smsc.ru",
                "its checksum",
            ),
            ("not ours", b"hello".to_vec(), "smsc.ru", "truncated"),
            ("empty", Vec::new(), "smsc.ru", "truncated"),
        ];
        for (name, bytes, host, want) in cases {
            std::fs::write(&path, bytes).unwrap();
            let err = read_back(&path, host).expect_err(name).to_string();
            assert!(err.contains(want), "{name}: {err}");
        }
    }

    #[test]
    fn salvage_keeps_every_chunk_whose_checksum_matches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.snapshot");
        let written = entries(150_000);
        Snapshot::write(
            &path,
            "h",
            7,
            &dictionary(),
            written.len(),
            written.iter().copied(),
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let start = bytes.len() - 8 - (150_000 * ENTRY + 3 * 8);
        let chunk_bytes = CHUNK * ENTRY + 8;
        let flip = |at: usize| {
            let mut b = bytes.clone();
            b[at] ^= 0x10;
            b
        };
        // (case, file, entries kept, dictionary kept)
        let cases: Vec<(&str, Vec<u8>, usize, bool)> = vec![
            ("sound", bytes.clone(), 150_000, true),
            (
                "second chunk flipped",
                flip(start + chunk_bytes + 100),
                150_000 - CHUNK,
                true,
            ),
            (
                "cut in the second chunk",
                bytes[..start + chunk_bytes + 5000].to_vec(),
                CHUNK,
                true,
            ),
            ("dictionary flipped", flip(start - 12), 150_000, false),
        ];
        for (name, file, kept, with_dictionary) in cases {
            std::fs::write(&path, file).unwrap();
            let mut got = 0;
            let salvaged = salvage(&path, "h", |chunk| got += chunk.len() / ENTRY).unwrap();
            assert_eq!(
                (got, salvaged.dictionary.is_some()),
                (kept, with_dictionary),
                "{name}"
            );
        }
        assert!(
            salvage(&path, "smsc.ru", |_| panic!("read")).is_err(),
            "another host's"
        );
        std::fs::write(&path, &bytes[..20]).unwrap();
        assert!(
            salvage(&path, "h", |_| {}).is_err(),
            "no header, nothing to trust"
        );
    }

    #[test]
    fn file_names_stand_for_host_and_generation() {
        for (host, generation) in [
            ("smsc.ru", Some(3)),
            ("sandbox", None),
            ("127.0.0.1:8080", Some(0)),
        ] {
            let name = file_name(host, generation);
            assert_eq!(
                parse_file_name(&name),
                Some((host.to_string(), generation)),
                "{name}"
            );
        }
        for name in [
            "LOCK",
            "answers@zz.snapshot",
            "answers@61.x.snapshot",
            "answers@6.snapshot",
            "answers@61.snapshot.tmp",
        ] {
            assert_eq!(parse_file_name(name), None, "{name}");
        }
    }
}
