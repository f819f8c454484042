//! Files and stdin: read in chunks (memory stays bounded whatever the file's size) and
//! cut into documents by a [`Framer`].

use super::{Doc, Framer, Framing};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// How much is read at a time.
pub const CHUNK_BYTES: usize = 256 * 1024;

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
    let mut reader: Box<dyn Read> = if input == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(input).map_err(|source| SourceError::Open {
            path: input.to_owned(),
            source,
        })?)
    };
    let mut framer = Framer::new(framing, max_document_bytes);
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(SourceError::Read {
                    path: input.to_owned(),
                    source,
                })
            }
        };
        framer.push(buf.get(..n).unwrap_or_default(), on_doc);
        on_bytes(n);
    }
    framer.finish(on_doc);
    Ok(())
}

/// The name an input goes by in dead letters (`stdin` for `-`).
pub fn source_name(input: &str) -> &str {
    if input == "-" {
        "stdin"
    } else {
        input
    }
}
