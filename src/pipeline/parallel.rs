//! The file mode on every core. The inputs are cut into chunks of documents; each chunk
//! is
//!
//! 1. read;
//! 2. decoded by every worker, each a contiguous slice of it ([`Processor::decode_steps`]
//!    reads no state);
//! 3. applied by tenant: a tenant's events all go to one worker (a hash of its id), in
//!    their order, as the stream mode's partitions keep them, and each worker writes its
//!    rows to a [`LineBuffer`];
//! 4. written in input order, step by step, from those buffers;
//!
//! and the four stages run at once on four consecutive chunks.
//!
//! So a run on any number of threads writes the rows of a one-thread run, byte for byte:
//! a tenant's state sees the same events in the same order, and no rule reads another
//! tenant's state.

use super::{DocOutcome, Origin, Processor, Step, Totals};
use crate::sink::file::{FileSink, FileSinkError, LineBuffer};
use crate::source::file::{self as input, SourceError};
use crate::source::{Doc, Framing, LinePosition};
use thiserror::Error;

/// Decoding slices and tenant shards per thread, per stage.
const TASKS_PER_THREAD: usize = 4;

/// How many bytes of documents a chunk gathers before it is processed.
pub const CHUNK_TARGET_BYTES: usize = 8 << 20;

/// Why a parallel run stopped.
#[derive(Debug, Error)]
pub enum ParallelError {
    /// An input could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An output file could not be written.
    #[error(transparent)]
    Sink(#[from] FileSinkError),
    /// The worker threads could not be started.
    #[error("cannot start the worker threads: {0}")]
    Threads(String),
}

/// The inputs and how to read them.
pub struct Inputs<'a> {
    /// The inputs, in order (`-` is stdin).
    pub paths: &'a [String],
    /// How they are cut into documents.
    pub framing: Framing,
    /// Documents longer than this are dead letters.
    pub max_document_bytes: usize,
    /// Bytes of documents per chunk ([`CHUNK_TARGET_BYTES`] when 0).
    pub chunk_bytes: usize,
}

/// Documents of one input, copied out of the reader's buffer.
struct Chunk {
    input: usize,
    bytes: Vec<u8>,
    docs: Vec<ChunkDoc>,
}

struct ChunkDoc {
    line: u64,
    start: usize,
    end: usize,
    len: usize,
    oversized: bool,
}

impl Chunk {
    /// A chunk for about `target` bytes (the last document read may pass it).
    fn new(target: usize) -> Self {
        Self {
            input: 0,
            bytes: Vec::with_capacity(target + target / 8),
            docs: Vec::new(),
        }
    }

    fn push(&mut self, doc: &Doc<'_>) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(doc.bytes);
        self.docs.push(ChunkDoc {
            line: doc.line,
            start,
            end: self.bytes.len(),
            len: doc.len,
            oversized: doc.oversized,
        });
    }

    fn doc_bytes(&self, d: &ChunkDoc) -> &[u8] {
        self.bytes.get(d.start..d.end).unwrap_or_default()
    }
}

/// A chunk's steps, per decoding slice.
struct Decoded<'c> {
    chunk: Option<&'c Chunk>,
    parts: Vec<Slice<'c>>,
}

/// One decoding slice's steps: the worker of each, in step order, and each worker's steps
/// (with their documents) in that order, so a worker reads only its own.
#[derive(Default)]
struct Slice<'c> {
    owners: Vec<usize>,
    by_worker: Vec<Vec<(usize, Step<'c>)>>,
}

impl Decoded<'_> {
    fn none() -> Self {
        Self {
            chunk: None,
            parts: Vec::new(),
        }
    }
}

/// A chunk's rows, per applying worker: the lines, and where each step's lines end.
#[derive(Default)]
struct Applied {
    workers: Vec<(LineBuffer, Vec<(usize, usize)>)>,
    /// The worker of each step, in step order.
    order: Vec<usize>,
    totals: Totals,
}

/// What the run shares with every stage.
struct Run<'r, 'i> {
    processor: &'r Processor,
    inputs: &'r Inputs<'i>,
    /// Tasks per stage and kind: more than threads, so that a slow slice or a busy
    /// tenant's shard does not leave the other cores idle.
    tasks: usize,
    /// Bytes of documents per chunk.
    chunk_bytes: usize,
    pool: rayon::ThreadPool,
}

/// Reads every input and processes it on `threads` workers (one thread is the plain loop
/// of `Processor::process`), writing rows to `sink` in input order. `on_bytes` is called
/// from the reading thread after every read.
///
/// Three chunks are in flight: while one is read, the one before is decoded and the one
/// before that applied (and the rows of the one before that written). Each stage runs
/// every thread it needs at once, so a slow tenant's shard shares the cores with the
/// decoding of the next chunk instead of leaving them idle.
pub fn run(
    processor: &Processor,
    inputs: &Inputs<'_>,
    threads: usize,
    sink: &mut FileSink,
    on_bytes: &mut (dyn FnMut(usize) + Send),
) -> Result<Totals, ParallelError> {
    let threads = threads.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("mfa-audit-{i}"))
        .build()
        .map_err(|e| ParallelError::Threads(e.to_string()))?;
    let run = Run {
        processor,
        inputs,
        tasks: if threads > 1 {
            threads * TASKS_PER_THREAD
        } else {
            1
        },
        chunk_bytes: match inputs.chunk_bytes {
            0 => CHUNK_TARGET_BYTES,
            n => n,
        },
        pool,
    };
    let mut reader = input::Reader::new(inputs.paths, inputs.framing, inputs.max_document_bytes);
    let mut totals = Totals::default();
    let target = run.chunk_bytes;
    let (mut a, mut b, mut c) = (Chunk::new(target), Chunk::new(target), Chunk::new(target));
    let mut more = fill(&mut reader, target, &mut a, on_bytes)?;
    let mut applied = Applied::default();
    let mut dc = Decoded::none();
    // Each line of the loop is one stage: (read, decode, apply the steps of, write).
    loop {
        let (da, more_b, ap) =
            run.stage(&mut reader, more, &mut b, &a, dc, applied, sink, on_bytes)?;
        totals.add_all(&ap.totals);
        if !more && a.docs.is_empty() && da.parts.is_empty() && ap.order.is_empty() {
            break;
        }
        let (db, more_c, ap) =
            run.stage(&mut reader, more_b, &mut c, &b, da, ap, sink, on_bytes)?;
        totals.add_all(&ap.totals);
        let (dc2, more_a, ap) =
            run.stage(&mut reader, more_c, &mut a, &c, db, ap, sink, on_bytes)?;
        totals.add_all(&ap.totals);
        dc = dc2;
        applied = ap;
        more = more_a;
    }
    Ok(totals)
}

/// Fills `chunk` with the next batch of documents (emptied first); false once the inputs
/// are all read.
fn fill(
    reader: &mut input::Reader<'_>,
    target: usize,
    chunk: &mut Chunk,
    on_bytes: &mut (dyn FnMut(usize) + Send),
) -> Result<bool, SourceError> {
    chunk.bytes.clear();
    chunk.docs.clear();
    let got = reader.fill(target, &mut |doc| chunk.push(&doc), on_bytes)?;
    if let Some(i) = got {
        chunk.input = i;
    }
    Ok(got.is_some())
}

impl Run<'_, '_> {
    /// One stage: reads into `read` (when `more`), decodes `decode`, applies `apply`,
    /// writes `write`, all at once. Returns `decode`'s steps, whether more input may
    /// follow, and `apply`'s rows.
    #[allow(clippy::too_many_arguments)]
    fn stage<'y>(
        &self,
        reader: &mut input::Reader<'_>,
        more: bool,
        read: &mut Chunk,
        decode: &'y Chunk,
        apply: Decoded<'_>,
        write: Applied,
        sink: &mut FileSink,
        on_bytes: &mut (dyn FnMut(usize) + Send),
    ) -> Result<(Decoded<'y>, bool, Applied), ParallelError> {
        let parts: Vec<_> = slices(&decode.docs, self.tasks)
            .into_iter()
            .filter(|r| !r.is_empty())
            .collect();
        let mut read_result = Ok(false);
        let mut decoded: Vec<Slice<'y>> = parts.iter().map(|_| Slice::default()).collect();
        let apply = &apply;
        let workers = if apply.chunk.is_some() { self.tasks } else { 0 };
        let mut applied: Vec<_> = (0..workers).map(|_| Ok(Default::default())).collect();
        let mut written = Ok(());
        self.pool.scope(|s| {
            let read_result = &mut read_result;
            s.spawn(move |_| {
                *read_result = if more {
                    fill(reader, self.chunk_bytes, read, on_bytes)
                } else {
                    read.bytes.clear();
                    read.docs.clear();
                    Ok(false)
                };
            });
            for (slot, r) in decoded.iter_mut().zip(parts) {
                s.spawn(move |_| *slot = self.decode(decode, r));
            }
            for (w, slot) in applied.iter_mut().enumerate() {
                s.spawn(move |_| *slot = self.apply(apply, w));
            }
            written = write_rows(write, sink);
        });
        written?;
        let more = read_result?;
        let mut rows = Applied {
            order: apply
                .parts
                .iter()
                .flat_map(|p| p.owners.iter().copied())
                .collect(),
            ..Applied::default()
        };
        rows.totals.documents = apply.chunk.map_or(0, |c| c.docs.len() as u64);
        for a in applied {
            let (buf, marks, t) = a?;
            rows.totals.add_all(&t);
            rows.workers.push((buf, marks));
        }
        let decoded = Decoded {
            chunk: (!decode.docs.is_empty()).then_some(decode),
            parts: decoded,
        };
        Ok((decoded, more, rows))
    }

    /// Decodes documents `range` of `chunk`, handing each step to the worker that applies
    /// it (by tenant; a dead letter by its document).
    fn decode<'c>(&self, chunk: &'c Chunk, range: std::ops::Range<usize>) -> Slice<'c> {
        let mut out = Slice {
            owners: Vec::with_capacity(range.len() + 8),
            by_worker: (0..self.tasks)
                .map(|_| Vec::with_capacity(range.len() / self.tasks + 8))
                .collect(),
        };
        for (i, d) in chunk
            .docs
            .iter()
            .enumerate()
            .skip(range.start)
            .take(range.len())
        {
            let oversized = d.oversized.then_some(d.len);
            self.processor
                .decode_steps(chunk.doc_bytes(d), oversized, &mut |step| {
                    let owner = match step.tenant_id() {
                        Some(t) => shard(t, self.tasks),
                        None => i % self.tasks,
                    };
                    out.owners.push(owner);
                    if let Some(mine) = out.by_worker.get_mut(owner) {
                        mine.push((i, step));
                    }
                });
        }
        out
    }

    /// Applies worker `w`'s steps of a decoded chunk, in order.
    #[allow(clippy::type_complexity)]
    fn apply(
        &self,
        decoded: &Decoded<'_>,
        w: usize,
    ) -> Result<(LineBuffer, Vec<(usize, usize)>, Totals), FileSinkError> {
        let mut buf = LineBuffer::default();
        let mut marks = Vec::new();
        let mut totals = Totals::default();
        let Some(chunk) = decoded.chunk else {
            return Ok((buf, marks, totals));
        };
        let source = self
            .inputs
            .paths
            .get(chunk.input)
            .map_or("", |p| input::source_name(p));
        for (doc, step) in decoded
            .parts
            .iter()
            .filter_map(|p| p.by_worker.get(w))
            .flatten()
        {
            let line = LinePosition(chunk.docs.get(*doc).map_or(0, |d| d.line));
            let origin = Origin {
                source,
                position: &line,
            };
            let mut out = DocOutcome::default();
            self.processor
                .apply_step(origin, step, &mut buf, &mut out, &mut |_, _| {})?;
            totals.add(out);
            marks.push((buf.findings.len(), buf.dead_letters.len()));
        }
        Ok((buf, marks, totals))
    }
}

/// Writes a chunk's rows in step order, each step's lines from its worker's buffer.
fn write_rows(rows: Applied, sink: &mut FileSink) -> Result<(), FileSinkError> {
    let mut workers: Vec<_> = rows
        .workers
        .into_iter()
        .map(|(buf, marks)| (buf, marks.into_iter(), (0usize, 0usize)))
        .collect();
    for w in rows.order {
        let Some((buf, marks, at)) = workers.get_mut(w) else {
            continue;
        };
        let Some((f_end, d_end)) = marks.next() else {
            continue;
        };
        let findings = buf.findings.get(at.0..f_end).unwrap_or_default();
        let dead = buf.dead_letters.get(at.1..d_end).unwrap_or_default();
        sink.write_lines(findings, dead)?;
        *at = (f_end, d_end);
    }
    Ok(())
}

/// The worker a tenant's events go to.
fn shard(tenant: &str, workers: usize) -> usize {
    // FNV-1a: fixed (not seeded per process), so a run is the same run every time, and
    // cheap; the rows do not depend on it either way.
    let h = tenant.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (h % workers.max(1) as u64) as usize
}

/// Contiguous slices of `docs` with about the same number of bytes each.
fn slices(docs: &[ChunkDoc], parts: usize) -> Vec<std::ops::Range<usize>> {
    let total: usize = docs.iter().map(|d| d.end - d.start).sum();
    let per = total.div_ceil(parts.max(1)).max(1);
    let mut out = Vec::with_capacity(parts);
    let (mut begin, mut acc) = (0, 0);
    for (i, d) in docs.iter().enumerate() {
        acc += d.end - d.start;
        if acc >= per && out.len() + 1 < parts {
            out.push(begin..i + 1);
            begin = i + 1;
            acc = 0;
        }
    }
    out.push(begin..docs.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(start: usize, end: usize) -> ChunkDoc {
        ChunkDoc {
            line: 1,
            start,
            end,
            len: end - start,
            oversized: false,
        }
    }

    #[test]
    fn slices_cover_every_document_once_in_order() {
        let docs: Vec<ChunkDoc> = (0..10).map(|i| doc(i * 10, i * 10 + 10)).collect();
        for parts in 1..=12 {
            let s = slices(&docs, parts);
            assert!(s.len() <= parts, "{parts}: {s:?}");
            let flat: Vec<usize> = s.iter().flat_map(|r| r.clone()).collect();
            assert_eq!(flat, (0..10).collect::<Vec<_>>(), "{parts}: {s:?}");
        }
        assert_eq!(slices(&docs, 2), vec![0..5, 5..10]);
        assert_eq!(slices(&[], 3), vec![0..0]);
    }

    #[test]
    fn a_tenant_always_goes_to_the_same_worker() {
        for w in 1..5 {
            for t in ["a", "b", "tenant-3"] {
                assert_eq!(shard(t, w), shard(t, w));
                assert!(shard(t, w) < w);
            }
        }
        let spread: std::collections::HashSet<usize> =
            (0..64).map(|i| shard(&format!("t{i}"), 4)).collect();
        assert_eq!(spread.len(), 4, "64 tenants land on every one of 4 workers");
    }
}
