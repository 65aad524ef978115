//! One pass over the input: every row read, every phone cell normalized and looked up in the
//! answer book, counted, and, when asked, written with its enrichment to the output.
//!
//! Contract: [`Pass::run`] reads the input in order on one thread, parses and enriches its pieces
//! on [`workers`] threads, and writes frames in input order from the calling thread, with at
//! most a few pieces in memory at once. A valid number with no fresh answer in the book is
//! [`Unknown::Collect`]ed (it is to be asked; writing stops at the first, since such a file
//! could not be the output) or, after the lookups, written as [`Unknown::Fail`]ed. The output
//! comes back unfinished, for the caller to finish with the run's figures; on any error or
//! interruption nothing is left behind. Figures do not depend on the number of workers.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Mutex;
use std::thread::{Scope, ScopedJoinHandle};

use polars::prelude::*;

use crate::config::Job;
use crate::input::{phone_text, ColumnTypes, Columns, InputReader, Piece};
use crate::normalize::{Normalized, Normalizer, E164};
use crate::output::{
    added_arrays, EncodedRowGroup, Enrichment, OutputFile, RowGroupEncoder, Status,
};
use crate::progress::{Figures, Progress, ProgressMode};
use crate::provider::NumberAnswer;
use crate::state::AnswerBook;

/// What a valid number without a fresh answer is in this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// To be asked: counted, and the output (if any) is abandoned.
    Collect,
    /// Asked and not answered: written with status `failed`.
    Fail,
}

/// What one pass found.
#[derive(Debug, Default)]
pub struct Tally {
    pub rows: u64,
    /// Null or blank cells.
    pub empty_cells: u64,
    /// Cells holding no valid number.
    pub invalid_cells: u64,
    /// Cells whose number has a fresh answer, by answer id (see [`AnswerBook::answer`]).
    pub cells_by_answer: Vec<u64>,
    /// Distinct numbers with a fresh answer.
    pub known_numbers: u64,
    /// Valid numbers without a fresh answer, with their cells.
    pub unknown: PlHashMap<E164, u64>,
}

impl Tally {
    /// Phone cells with something in them.
    pub fn phone_cells(&self) -> u64 {
        self.invalid_cells
            + self.cells_by_answer.iter().sum::<u64>()
            + self.unknown.values().sum::<u64>()
    }

    pub fn distinct_numbers(&self) -> u64 {
        self.known_numbers + self.unknown.len() as u64
    }

    /// Cells by output status (`empty` for blank cells; `failed` for numbers without an
    /// answer) and the five most frequent operators.
    pub fn by_status(&self, book: &AnswerBook) -> (BTreeMap<String, u64>, Vec<(String, u64)>) {
        let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
        let mut add = |status: &str, cells: u64| {
            if cells > 0 {
                *by_status.entry(status.to_string()).or_default() += cells;
            }
        };
        add("empty", self.empty_cells);
        add("invalid_number", self.invalid_cells);
        add(Status::Failed.as_str(), self.unknown.values().sum());
        let mut operators: HashMap<&str, u64> = HashMap::new();
        for (id, &cells) in self.cells_by_answer.iter().enumerate() {
            let answer = book.answer(id as u32);
            add(Status::of(answer).as_str(), cells);
            if let (NumberAnswer::Found(info), true) = (answer, cells > 0) {
                *operators.entry(info.operator.as_str()).or_default() += cells;
            }
        }
        let mut top: Vec<(String, u64)> = operators
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(5);
        (by_status, top)
    }
}

/// What a pass ends with.
pub struct PassOutcome {
    pub tally: Tally,
    /// The output, complete but not finished, when the pass wrote one to its end.
    pub output: Option<OutputFile>,
}

/// Threads that parse and enrich pieces: one per core.
pub fn workers() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

/// What every worker shares.
struct Shared<'a> {
    job: &'a Job,
    book: &'a AnswerBook,
    unknown: Unknown,
    /// Encodes row groups of the output, when there is one.
    encoder: Option<RowGroupEncoder>,
    /// Whether frames are still wanted for the output.
    writing: AtomicBool,
    normalizer: Normalizer,
}

/// One worker's counts, merged at the end.
struct WorkerTally {
    tally: Tally,
    /// Slots of the book seen, one bit each.
    seen: Vec<u64>,
}

/// How many cells ahead a lookup's slot is fetched.
const PREFETCH: usize = 16;

impl WorkerTally {
    fn new(book: &AnswerBook) -> Self {
        WorkerTally {
            tally: Tally {
                cells_by_answer: vec![0; book.answer_ids()],
                ..Tally::default()
            },
            seen: vec![0; book.slots().div_ceil(64)],
        }
    }

    /// Reads one cell, counting it when it holds no number.
    fn read(&mut self, shared: &Shared<'_>, raw: Option<&str>) -> Normalized {
        let n = match raw {
            Some(raw) => shared.normalizer.normalize(raw),
            None => Normalized::Empty,
        };
        match n {
            Normalized::Empty => self.tally.empty_cells += 1,
            Normalized::Invalid => self.tally.invalid_cells += 1,
            Normalized::Valid(_) => {}
        }
        n
    }

    /// Counts one read cell and says what the output holds for it.
    fn enrich<'b>(&mut self, shared: &Shared<'b>, read: Normalized) -> Enrichment<'b> {
        let n = match read {
            Normalized::Empty => return Enrichment::EMPTY,
            Normalized::Invalid => {
                return Enrichment {
                    status: Some(Status::InvalidNumber),
                    ..Enrichment::EMPTY
                }
            }
            Normalized::Valid(n) => n,
        };
        let base = Enrichment {
            e164: Some(n.0),
            ..Enrichment::EMPTY
        };
        match shared.book.known(n) {
            Some(known) => {
                self.seen[known.slot / 64] |= 1 << (known.slot % 64);
                self.tally.cells_by_answer[known.id as usize] += 1;
                Enrichment {
                    status: Some(Status::of(known.answer)),
                    info: match known.answer {
                        NumberAnswer::Found(info) => Some(info),
                        _ => None,
                    },
                    checked_at_ms: Some(known.checked_at_ms),
                    ..base
                }
            }
            None => {
                *self.tally.unknown.entry(n).or_default() += 1;
                if shared.unknown == Unknown::Collect {
                    shared.writing.store(false, Ordering::Relaxed);
                }
                Enrichment {
                    status: Some(Status::Failed),
                    ..base
                }
            }
        }
    }

    /// A column's cells, read, then enriched in order (kept only if `keep`). Every cell's
    /// number is looked up in a table far larger than the CPU's caches: reading them all first
    /// lets each lookup ask for its slot [`PREFETCH`] cells ahead, so the memory waits overlap.
    fn column<'b>(
        &mut self,
        shared: &Shared<'b>,
        text: &StringChunked,
        keep: bool,
    ) -> Vec<Enrichment<'b>> {
        let read: Vec<Normalized> = text.iter().map(|v| self.read(shared, v)).collect();
        let mut rows = Vec::with_capacity(if keep { read.len() } else { 0 });
        for (i, &cell) in read.iter().enumerate() {
            if let Some(Normalized::Valid(ahead)) = read.get(i + PREFETCH) {
                shared.book.prefetch(*ahead);
            }
            let enriched = self.enrich(shared, cell);
            if keep {
                rows.push(enriched);
            }
        }
        rows
    }

    /// Reads a piece, counts its cells and, while the output is wanted, adds the enrichment and
    /// encodes the frame as a row group.
    fn process(&mut self, shared: &Shared<'_>, piece: Piece) -> Result<Processed, PassError> {
        let encoder = shared
            .encoder
            .as_ref()
            .filter(|_| shared.writing.load(Ordering::Relaxed));
        let columns = match encoder {
            Some(_) => Columns::All,
            None => Columns::PhonesOnly,
        };
        let frame = piece.into_frame(columns).map_err(PassError::Input)?;
        let rows = frame.height();
        self.tally.rows += rows as u64;
        let mut added = Vec::new();
        let input = &shared.job.input;
        for name in &input.phone_columns {
            let column = frame.column(name).map_err(|e| PassError::Input(e.into()))?;
            let text = phone_text(column, &input.path).map_err(PassError::Input)?;
            let enriched = self.column(shared, &text, encoder.is_some());
            if encoder.is_some() {
                added.extend(added_arrays(enriched.into_iter()));
            }
        }
        let Some(encoder) = encoder.filter(|_| shared.writing.load(Ordering::Relaxed)) else {
            return Ok(Processed { rows, group: None });
        };
        let group = encoder.encode(&frame, added).map_err(PassError::Output)?;
        Ok(Processed {
            rows,
            group: Some(group),
        })
    }
}

/// A piece, done: its rows, and its row group while the output is written.
struct Processed {
    rows: usize,
    group: Option<EncodedRowGroup>,
}

/// Pieces between the reader and the writer at most: what keeps memory flat.
fn pieces_in_flight(workers: usize) -> usize {
    2 * workers + 2
}

/// One read of the input: what it looks numbers up in, what it does with unknown ones, and
/// whether it writes the output.
pub struct Pass<'a> {
    pub job: &'a Job,
    /// The CSV column types settled before the first pass, the same for every pass.
    pub types: &'a ColumnTypes,
    pub book: &'a AnswerBook,
    pub unknown: Unknown,
    /// The output's schema, when this pass writes the output.
    pub output: Option<&'a Schema>,
    /// The progress bar's label, and the rows expected (0 when not known yet).
    pub label: &'static str,
    pub total_rows: u64,
    pub progress: ProgressMode,
    /// Set when the run should stop (a signal): the pass ends with [`PassError::Interrupted`].
    pub interrupted: &'a AtomicBool,
}

/// A piece's place in the input, with what became of it.
type Done = (usize, Result<Processed, PassError>);

impl Pass<'_> {
    /// Reads the whole input once. With `output`, writes every row with its enrichment (to a
    /// temporary file, see [`OutputFile`]) as long as no number is [`Unknown::Collect`]ed.
    pub fn run(self) -> Result<PassOutcome, PassError> {
        let job = self.job;
        let columns = match self.output {
            Some(_) => Columns::All,
            None => Columns::PhonesOnly,
        };
        let reader = InputReader::open(&job.input, self.types, columns, job.output.row_group_size)
            .map_err(PassError::Input)?;
        let mut out = match self.output {
            Some(schema) => Some(
                OutputFile::create(&job.output.path, schema, reader.input_types())
                    .map_err(PassError::Output)?,
            ),
            None => None,
        };
        let shared = Shared {
            job,
            book: self.book,
            unknown: self.unknown,
            encoder: out.as_ref().map(OutputFile::encoder),
            writing: AtomicBool::new(out.is_some()),
            normalizer: Normalizer::new(job.input.default_region, job.normalize.metadata),
        };
        let workers = workers().get();
        let bar = Progress::new(self.label, self.total_rows, self.progress);
        let window = pieces_in_flight(workers);

        let (piece_tx, piece_rx) = sync_channel::<(usize, Piece)>(workers);
        let piece_rx = Mutex::new(piece_rx);
        let (done_tx, done_rx) = channel::<Done>();
        // A ticket per piece in flight, handed back when its frame is written.
        let (ticket_tx, ticket_rx) = sync_channel::<()>(window);
        for _ in 0..window {
            ticket_tx.send(()).expect("the channel holds a window");
        }
        let (result, tallies) = std::thread::scope(|scope| {
            let reader = spawn_reader(scope, reader, ticket_rx, piece_tx, done_tx.clone());
            let handles: Vec<_> = (0..workers)
                .map(|i| spawn_worker(scope, i, &shared, &piece_rx, done_tx.clone()))
                .collect();
            drop(done_tx);
            let writer = Writer {
                out: &mut out,
                shared: &shared,
                bar: &bar,
                tickets: &ticket_tx,
                interrupted: self.interrupted,
            };
            let result = writer.write_in_order(&done_rx);
            // Stops the reader and the workers on an early return.
            drop(ticket_tx);
            drop(done_rx);
            let tallies: Vec<WorkerTally> = handles
                .into_iter()
                .map(|h| h.join().expect("a worker panicked"))
                .collect();
            let records = reader.join().expect("the reader panicked");
            (result.map(|()| records), tallies)
        });
        bar.finish();
        let records = result?;
        if !shared.writing.load(Ordering::Relaxed) {
            out = None;
        }
        let tally = merge(tallies);
        check_rows(records, tally.rows, out.as_ref().map(OutputFile::rows))?;
        Ok(PassOutcome { tally, output: out })
    }
}

/// Rows out = records in: the rows counted (and written, when there is an output) are the
/// records the reader found. A difference is a bug, never a run to call a success.
fn check_rows(records: Option<u64>, rows: u64, written: Option<u64>) -> Result<(), PassError> {
    let Some(records) = records else {
        return Err(PassError::Internal(anyhow::anyhow!(
            "the input's reader stopped before its end without an error"
        )));
    };
    if rows != records || written.is_some_and(|w| w != rows) {
        return Err(PassError::Internal(anyhow::anyhow!(
            "the input holds {records} records, but {rows} rows were read{}; nothing was written",
            written.map_or(String::new(), |w| format!(" and {w} written"))
        )));
    }
    Ok(())
}

fn thread(name: String) -> std::thread::Builder {
    std::thread::Builder::new().name(name)
}

/// The reader thread: a piece of the input per ticket, in order, until the input ends, a
/// read fails (sent as that piece's error) or the tickets stop. Ends with the records the
/// reader found, once it read to the end.
fn spawn_reader<'scope>(
    scope: &'scope Scope<'scope, '_>,
    mut reader: InputReader,
    tickets: Receiver<()>,
    pieces: SyncSender<(usize, Piece)>,
    done: Sender<Done>,
) -> ScopedJoinHandle<'scope, Option<u64>> {
    thread("pass-reader".into())
        .spawn_scoped(scope, move || {
            for index in 0.. {
                if tickets.recv().is_err() {
                    return None;
                }
                match reader.next_piece() {
                    Ok(Some(piece)) => {
                        if pieces.send((index, piece)).is_err() {
                            return None;
                        }
                    }
                    Ok(None) => return Some(reader.records()),
                    Err(e) => {
                        let _ = done.send((index, Err(PassError::Input(e))));
                        return None;
                    }
                }
            }
            None
        })
        .expect("threads can be started")
}

/// A worker thread: processes pieces until the reader stops, and returns its tally.
fn spawn_worker<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    index: usize,
    shared: &'scope Shared<'env>,
    pieces: &'scope Mutex<Receiver<(usize, Piece)>>,
    done: Sender<Done>,
) -> ScopedJoinHandle<'scope, WorkerTally> {
    thread(format!("pass-worker-{index}"))
        .spawn_scoped(scope, move || {
            let mut tally = WorkerTally::new(shared.book);
            let mut wanted = true;
            // Until the reader stops. Once the writer has stopped (an error, a signal), pieces
            // are taken and dropped, so the reader is never left waiting on a full channel: it
            // ends when its tickets run out.
            loop {
                // The lock only for taking a piece, not while working on it.
                let next = pieces.lock().unwrap().recv();
                let Ok((index, piece)) = next else {
                    return tally;
                };
                if wanted {
                    let processed = tally.process(shared, piece);
                    wanted = done.send((index, processed)).is_ok();
                }
            }
        })
        .expect("threads can be started")
}

/// The calling thread's part: pieces' row groups appended to the output in input order.
struct Writer<'w, 'a> {
    out: &'w mut Option<OutputFile>,
    shared: &'w Shared<'a>,
    bar: &'w Progress,
    /// A ticket back to the reader for every piece written.
    tickets: &'w SyncSender<()>,
    interrupted: &'w AtomicBool,
}

impl Writer<'_, '_> {
    /// Writes frames in input order, from whichever worker finishes first, until every piece
    /// is written or one fails.
    fn write_in_order(self, done: &Receiver<Done>) -> Result<(), PassError> {
        let mut waiting = BTreeMap::new();
        let mut next = 0;
        for (index, processed) in done {
            waiting.insert(index, processed);
            while let Some(processed) = waiting.remove(&next) {
                if self.interrupted.load(Ordering::SeqCst) {
                    return Err(PassError::Interrupted);
                }
                let Processed { rows, group } = processed?;
                match (&mut *self.out, group) {
                    (Some(file), Some(group)) if self.shared.writing.load(Ordering::Relaxed) => {
                        file.write(group).map_err(PassError::Output)?
                    }
                    // Not (or no longer) written: nothing of the output survives.
                    _ => *self.out = None,
                }
                self.bar.inc(rows as u64, &Figures::default());
                next += 1;
                let _ = self.tickets.send(());
            }
        }
        Ok(())
    }
}

/// Why a pass stopped: the caller maps each to its exit.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The input cannot be read (the error names the file, and the line for CSV).
    #[error(transparent)]
    Input(anyhow::Error),
    /// The output cannot be written.
    #[error(transparent)]
    Output(anyhow::Error),
    #[error("interrupted")]
    Interrupted,
    /// A bug: the pass lost or made up rows (rows out differ from records in).
    #[error(transparent)]
    Internal(anyhow::Error),
}

fn merge(tallies: Vec<WorkerTally>) -> Tally {
    let mut seen: Vec<u64> = Vec::new();
    let mut total = Tally::default();
    for WorkerTally { tally, seen: s, .. } in tallies {
        total.rows += tally.rows;
        total.empty_cells += tally.empty_cells;
        total.invalid_cells += tally.invalid_cells;
        if total.cells_by_answer.len() < tally.cells_by_answer.len() {
            total.cells_by_answer.resize(tally.cells_by_answer.len(), 0);
        }
        for (t, c) in total.cells_by_answer.iter_mut().zip(&tally.cells_by_answer) {
            *t += c;
        }
        if total.unknown.is_empty() {
            total.unknown = tally.unknown;
        } else {
            for (n, cells) in tally.unknown {
                *total.unknown.entry(n).or_default() += cells;
            }
        }
        if seen.is_empty() {
            seen = s;
        } else {
            for (a, b) in seen.iter_mut().zip(&s) {
                *a |= b;
            }
        }
    }
    total.known_numbers = seen.iter().map(|w| w.count_ones() as u64).sum();
    total
}
