//! Sources: where documents come from, and how a byte stream is cut into documents.
//!
//! An input is NDJSON (one document per line) unless its first line holds only `{` or
//! `[`: then it is read as a stream of (pretty-printed) JSON texts, one after another.
//! The framer is a byte-level state machine, so the documents it yields do not depend on
//! how the input was chunked.

pub mod file;
pub mod kafka;

use memchr::{memchr, memchr3};

/// The default size limit of one document.
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// How an input is cut into documents (`files.framing`: `auto`, `ndjson`, `json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// NDJSON, unless the first line holds only `{` or `[` (then `json`).
    #[default]
    Auto,
    /// One document per line.
    Ndjson,
    /// JSON texts one after another, any layout.
    Json,
}

/// `line N` of an input: where a document starts, as dead letters name it.
pub struct LinePosition(pub u64);

impl std::fmt::Display for LinePosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}", self.0)
    }
}

/// One document cut from a stream.
#[derive(Debug)]
pub struct Doc<'a> {
    /// Line (1-based) where it starts.
    pub line: u64,
    /// Its bytes (only the first `max` when oversized).
    pub bytes: &'a [u8],
    /// Its full length in bytes.
    pub len: usize,
    /// Longer than the limit: `bytes` is only its beginning.
    pub oversized: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Between documents.
    Idle,
    /// In a one-line document.
    Line,
    /// In a JSON text (json framing).
    Text,
}

/// Cuts a byte stream into documents, chunk by chunk.
pub struct Framer {
    framing: Framing,
    decided: bool,
    max: usize,
    mode: Mode,
    buf: Vec<u8>,
    len: usize,
    line: u64,
    start_line: u64,
    depth: u32,
    in_string: bool,
    escape: bool,
    first_line: Vec<u8>,
}

impl Framer {
    /// A framer with a document size limit.
    pub fn new(framing: Framing, max_document_bytes: usize) -> Self {
        Self {
            framing,
            decided: false,
            max: max_document_bytes.max(1),
            mode: Mode::Idle,
            buf: Vec::new(),
            len: 0,
            line: 1,
            start_line: 1,
            depth: 0,
            in_string: false,
            escape: false,
            first_line: Vec::new(),
        }
    }

    /// Feeds a chunk; `emit` is called for every document completed in it.
    pub fn push(&mut self, chunk: &[u8], emit: &mut dyn FnMut(Doc<'_>)) {
        let mut data = chunk;
        if !self.decided {
            // The first line decides the framing (and may open with a byte-order mark).
            match memchr(b'\n', data) {
                None => {
                    self.first_line.extend_from_slice(data);
                    if self.first_line.len() <= self.max {
                        return;
                    }
                    data = &[];
                }
                Some(i) => {
                    self.first_line.extend_from_slice(head(data, i + 1));
                    data = tail(data, i + 1);
                }
            }
            self.start_first_line(emit);
        }
        self.scan(data, emit);
    }

    /// Ends the stream: a document still open is emitted as it stands.
    pub fn finish(&mut self, emit: &mut dyn FnMut(Doc<'_>)) {
        if !self.decided {
            self.start_first_line(emit);
        }
        if self.mode != Mode::Idle {
            self.emit(emit);
        }
    }

    fn start_first_line(&mut self, emit: &mut dyn FnMut(Doc<'_>)) {
        let held = std::mem::take(&mut self.first_line);
        let first = held.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&held);
        if self.framing == Framing::Auto {
            let t = first.trim_ascii();
            self.framing = if t == b"{" || t == b"[" {
                Framing::Json
            } else {
                Framing::Ndjson
            };
        }
        self.decided = true;
        self.scan(first, emit);
    }

    fn append(&mut self, bytes: &[u8]) {
        self.len += bytes.len();
        let room = self.max.saturating_sub(self.buf.len());
        if room > 0 {
            self.buf.extend_from_slice(head(bytes, room));
        }
    }

    fn emit(&mut self, emit: &mut dyn FnMut(Doc<'_>)) {
        emit(Doc {
            line: self.start_line,
            bytes: &self.buf,
            len: self.len,
            oversized: self.len > self.max,
        });
        self.buf.clear();
        self.len = 0;
        self.mode = Mode::Idle;
    }

    fn scan(&mut self, mut data: &[u8], emit: &mut dyn FnMut(Doc<'_>)) {
        while let Some(&b) = data.first() {
            match self.mode {
                Mode::Idle => {
                    if b == b'\n' {
                        self.line += 1;
                        data = tail(data, 1);
                        continue;
                    }
                    if b.is_ascii_whitespace() {
                        data = tail(data, 1);
                        continue;
                    }
                    self.start_line = self.line;
                    if self.framing == Framing::Json && (b == b'{' || b == b'[') {
                        self.mode = Mode::Text;
                        self.depth = 0;
                        self.in_string = false;
                        self.escape = false;
                    } else {
                        self.mode = Mode::Line;
                        // The common case: the whole line is in this chunk.
                        if let Some(i) = memchr(b'\n', data) {
                            let line = head(data, i);
                            let line = line.strip_suffix(b"\r").unwrap_or(line);
                            if line.len() <= self.max {
                                emit(Doc {
                                    line: self.start_line,
                                    bytes: line,
                                    len: line.len(),
                                    oversized: false,
                                });
                                self.mode = Mode::Idle;
                                data = tail(data, i);
                                continue;
                            }
                        }
                    }
                }
                Mode::Line => match memchr(b'\n', data) {
                    None => {
                        self.append(data);
                        data = &[];
                    }
                    Some(i) => {
                        self.append(head(data, i));
                        if self.buf.last() == Some(&b'\r') && self.len <= self.max {
                            self.buf.pop();
                            self.len -= 1;
                        }
                        self.emit(emit);
                        data = tail(data, i);
                    }
                },
                Mode::Text => data = self.scan_text(data, emit),
            }
        }
    }

    /// Scans inside a JSON text; returns the rest of `data`.
    fn scan_text<'d>(&mut self, data: &'d [u8], emit: &mut dyn FnMut(Doc<'_>)) -> &'d [u8] {
        if self.in_string {
            if self.escape {
                self.escape = false;
                if data.first() == Some(&b'\n') {
                    // A raw newline cannot be in a JSON string: the text is broken here.
                    self.emit(emit);
                    return data;
                }
                self.append(head(data, 1));
                return tail(data, 1);
            }
            return match memchr3(b'"', b'\\', b'\n', data) {
                None => {
                    self.append(data);
                    &[]
                }
                Some(i) => {
                    match data.get(i).copied().unwrap_or(b'\n') {
                        b'\n' => {
                            self.append(head(data, i));
                            self.emit(emit);
                            return tail(data, i);
                        }
                        b'"' => self.in_string = false,
                        _ => self.escape = true,
                    }
                    self.append(head(data, i + 1));
                    tail(data, i + 1)
                }
            };
        }
        let Some(&b) = data.first() else {
            return data;
        };
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    self.append(head(data, 1));
                    self.emit(emit);
                    return tail(data, 1);
                }
            }
            b'\n' => self.line += 1,
            _ => {}
        }
        self.append(head(data, 1));
        tail(data, 1)
    }
}

/// The first `n` bytes (all of them when fewer): the scanner's cut points come from
/// `memchr` and are always in range; this keeps them from ever panicking.
fn head(d: &[u8], n: usize) -> &[u8] {
    d.get(..n).unwrap_or(d)
}

/// The bytes after the first `n` (none when fewer).
fn tail(d: &[u8], n: usize) -> &[u8] {
    d.get(n..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(input: &[u8], chunk: usize) -> Vec<(u64, String, bool)> {
        let mut f = Framer::new(Framing::Auto, 64);
        let mut out = Vec::new();
        let mut emit = |d: Doc<'_>| {
            out.push((
                d.line,
                String::from_utf8_lossy(d.bytes).into_owned(),
                d.oversized,
            ))
        };
        for c in input.chunks(chunk.max(1)) {
            f.push(c, &mut emit);
        }
        f.finish(&mut emit);
        out
    }

    #[test]
    fn ndjson_is_one_document_per_line() {
        let input = b"{\"a\":1}\r\n\n  {\"b\":\n{bad\nlast";
        let want = vec![
            (1, "{\"a\":1}".to_owned(), false),
            (3, "{\"b\":".to_owned(), false),
            (4, "{bad".to_owned(), false),
            (5, "last".to_owned(), false),
        ];
        for chunk in [1, 2, 3, 7, 100] {
            assert_eq!(frame(input, chunk), want, "chunk {chunk}");
        }
    }

    #[test]
    fn a_pretty_input_is_read_as_json_texts() {
        let input = b"{\n  \"a\": \"x}\\\"\",\n  \"b\": [1, {\"c\": 2}]\n}\n{\"next\": true}\n";
        let got = frame(input, 3);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, 1);
        assert!(got[0].1.ends_with("]\n}"));
        assert_eq!(got[1], (5, "{\"next\": true}".to_owned(), false));
    }

    #[test]
    fn oversized_documents_keep_only_their_beginning() {
        let long = format!("{{\"a\":\"{}\"}}\n{{}}\n", "x".repeat(200));
        let got = frame(long.as_bytes(), 5);
        assert_eq!(got.len(), 2);
        assert!(got[0].2);
        assert_eq!(got[0].1.len(), 64);
        assert_eq!(got[1], (2, "{}".to_owned(), false));
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let got = frame(b"\xEF\xBB\xBF{\"a\":1}\n", 1);
        assert_eq!(got, vec![(1, "{\"a\":1}".to_owned(), false)]);
    }
}
