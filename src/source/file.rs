//! Files and stdin: read in chunks (memory stays bounded whatever the file's size) and
//! cut into documents by a [`Framer`].

use super::{Doc, Framer, Framing};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// How much is read at a time.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// The most documents one [`Reader::fill`] gives (one more when a document was already
/// open). A batch is bounded in documents as well as in bytes: a decoded document costs
/// about 1.1 KB whatever its size, so 8 MiB of two-byte lines would otherwise be four
/// million of them (5.5 GB, as the security review of 2026-12 measured). 16,384 decoded
/// documents are about 18 MB per batch; a batch of 8 MiB of sign-in records holds about
/// 2,000.
pub const BATCH_MAX_DOCS: usize = 16_384;

/// Why an input could not be read.
#[derive(Debug, Error)]
pub enum SourceError {
    /// The path could not be opened or listed.
    #[error("cannot open input `{path}`: {source}")]
    Open {
        /// The path.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// Reading failed part way.
    #[error("cannot read input `{path}`: {source}")]
    Read {
        /// The path.
        path: String,
        /// The cause.
        source: io::Error,
    },
}

/// The file endings read from a folder given as `--input`.
pub const FOLDER_EXTENSIONS: [&str; 4] = ["ndjson", "jsonl", "json", "log"];

/// Expands the `--input` arguments: `-` is stdin, a directory is its data files (ending
/// in `.ndjson`, `.jsonl`, `.json` or `.log`; sorted, not recursive, hidden files left
/// out), anything else a file (whatever its name).
pub fn expand(inputs: &[String]) -> Result<Vec<String>, SourceError> {
    let mut out = Vec::new();
    for i in inputs {
        let p = Path::new(i);
        if i != "-" && p.is_dir() {
            let open_err = |source| SourceError::Open {
                path: i.clone(),
                source,
            };
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(open_err)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|f| f.is_file())
                .filter(|f| {
                    f.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| !n.starts_with('.'))
                        && f.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                            FOLDER_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e))
                        })
                })
                .collect();
            files.sort();
            out.extend(files.into_iter().map(|f| f.display().to_string()));
        } else {
            out.push(i.clone());
        }
    }
    Ok(out)
}

/// Reads one input (`-` for stdin) to its end, calling `on_doc` for every document and
/// `on_bytes` after every chunk.
pub fn read(
    input: &str,
    framing: Framing,
    max_document_bytes: usize,
    on_doc: &mut dyn FnMut(Doc<'_>),
    on_bytes: &mut dyn FnMut(usize),
) -> Result<(), SourceError> {
    let inputs = [input.to_owned()];
    let mut reader = Reader::new(&inputs, framing, max_document_bytes);
    while reader.fill(usize::MAX, on_doc, on_bytes)?.is_some() {}
    Ok(())
}

/// Several inputs read in turn, a batch of documents at a time (the file mode on several
/// threads reads the next batch while the last one is processed).
pub struct Reader<'a> {
    inputs: &'a [String],
    framing: Framing,
    max_document_bytes: usize,
    /// The input being read: its index, the open file (or stdin) and its framer.
    open: Option<(usize, Box<dyn Read + Send>, Framer)>,
    next: usize,
    buf: Vec<u8>,
}

impl<'a> Reader<'a> {
    /// A reader of `inputs` (`-` is stdin), in order.
    pub fn new(inputs: &'a [String], framing: Framing, max_document_bytes: usize) -> Self {
        Self {
            inputs,
            framing,
            max_document_bytes,
            open: None,
            next: 0,
            buf: vec![0u8; CHUNK_BYTES],
        }
    }

    /// Reads on until the documents given to `on_doc` hold at least `target` bytes, or
    /// number [`BATCH_MAX_DOCS`], or the current input ends, whichever comes first; a
    /// batch never spans two inputs.
    /// Returns the index of the input the documents came from, or `None` once every input
    /// is read. `on_bytes` is called after every read.
    pub fn fill(
        &mut self,
        target: usize,
        on_doc: &mut dyn FnMut(Doc<'_>),
        on_bytes: &mut dyn FnMut(usize),
    ) -> Result<Option<usize>, SourceError> {
        let (index, reader, framer) = match &mut self.open {
            Some(o) => o,
            None => {
                let Some(input) = self.inputs.get(self.next) else {
                    return Ok(None);
                };
                let reader: Box<dyn Read + Send> = if input == "-" {
                    Box::new(io::stdin())
                } else {
                    Box::new(File::open(input).map_err(|source| SourceError::Open {
                        path: input.clone(),
                        source,
                    })?)
                };
                let framer = Framer::new(self.framing, self.max_document_bytes);
                self.next += 1;
                self.open.insert((self.next - 1, reader, framer))
            }
        };
        let index = *index;
        let bytes = std::cell::Cell::new(0usize);
        let docs = std::cell::Cell::new(0usize);
        let mut count = |doc: Doc<'_>| {
            bytes.set(bytes.get() + doc.bytes.len());
            docs.set(docs.get() + 1);
            on_doc(doc);
        };
        while bytes.get() < target && docs.get() < BATCH_MAX_DOCS {
            // A document takes two bytes at the least (one and a separator), so a read of
            // twice the documents left cannot pass the bound by more than the one open.
            let room = (2 * (BATCH_MAX_DOCS - docs.get())).min(self.buf.len());
            let buf = self.buf.get_mut(..room).unwrap_or_default();
            let n = match reader.read(buf) {
                Ok(0) => {
                    framer.finish(&mut count);
                    self.open = None;
                    return Ok(Some(index));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(SourceError::Read {
                        path: self.inputs.get(index).cloned().unwrap_or_default(),
                        source,
                    })
                }
            };
            framer.push(self.buf.get(..n).unwrap_or_default(), &mut count);
            on_bytes(n);
        }
        Ok(Some(index))
    }
}

/// The name an input goes by in dead letters (`stdin` for `-`).
pub fn source_name(input: &str) -> &str {
    if input == "-" {
        "stdin"
    } else {
        input
    }
}
