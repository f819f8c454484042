//! The embedded sink: NDJSON files in ClickHouse `JSONEachRow` form, loadable into the
//! tables of `schemas/clickhouse/` unchanged.

use super::kafka::FindingsTopic;
use super::{AgentRow, DeadLetter, RolloutRow, RowSink, SurfaceRow};
use crate::policy::Finding;
use serde::Serialize;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The output files, by table.
pub const FINDINGS_FILE: &str = "findings.ndjson";
/// `rollout_daily` rows.
pub const ROLLOUT_FILE: &str = "rollout_daily.ndjson";
/// `rollout_surfaces` rows: every declared surface's MFA share per tenant and day.
pub const SURFACES_FILE: &str = "rollout_surfaces.ndjson";
/// `agents` rows.
pub const AGENTS_FILE: &str = "agents.ndjson";
/// `dead_letters` rows.
pub const DEAD_LETTERS_FILE: &str = "dead_letters.ndjson";

/// The mode of every file mfa-audit writes: rows and dead letters may hold user names
/// and excerpts of records, so they are not for every local user (owner reads and
/// writes, the group reads).
pub const FILE_MODE: u32 = 0o640;
/// The mode of an output folder mfa-audit creates.
pub const DIR_MODE: u32 = 0o750;

/// Creates `dir` and its missing parents with [`DIR_MODE`].
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, DIR_MODE);
    b.create(dir)
}

/// Writes a whole file at `path` as a new one: `write` fills a file created under a
/// fresh random name in the same folder (exclusively, [`FILE_MODE`]: no existing file or
/// planted link is opened), which is then renamed over `path` (a link standing at `path`
/// is replaced, never followed), so a reader never sees half of it.
pub fn write_new(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let prefix = format!(".{name}.");
    let mut b = tempfile::Builder::new();
    b.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    b.permissions(std::os::unix::fs::PermissionsExt::from_mode(FILE_MODE));
    let tmp = b.tempfile_in(dir)?;
    let mut w = BufWriter::new(tmp);
    write(&mut w)?;
    let tmp = w.into_inner().map_err(io::IntoInnerError::into_error)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Opens `path` as a new, empty file to append rows to: whatever stands there (an old
/// file, or a link planted in the folder) is removed, not followed, and the file is
/// created exclusively with [`FILE_MODE`] (if anything takes the name in between, this
/// fails rather than write through it).
fn create_fresh(path: &Path) -> io::Result<File> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, FILE_MODE);
    o.open(path)
}

/// A write to the output folder failed.
#[derive(Debug, Error)]
#[error("cannot write `{path}`: {source}")]
pub struct FileSinkError {
    path: String,
    source: io::Error,
}

/// Writes the five tables as NDJSON files in one folder (and, with
/// [`FileSink::with_findings_topic`], every line of `findings.ndjson` to a Kafka topic).
pub struct FileSink {
    dir: PathBuf,
    findings: BufWriter<File>,
    dead_letters: BufWriter<File>,
    line: Vec<u8>,
    topic: Option<FindingsTopic>,
}

/// A failed publication, as the sink's error: where (the topic) and why.
fn topic_error(topic: &FindingsTopic, e: crate::source::kafka::KafkaOpError) -> FileSinkError {
    FileSinkError {
        path: format!("Kafka topic {}", topic.topic()),
        source: io::Error::other(e),
    }
}

impl FileSink {
    /// Creates the folder (if needed) and empties the five files.
    pub fn create(dir: &Path) -> Result<Self, FileSinkError> {
        let err = |p: &Path| {
            let path = p.display().to_string();
            move |source| FileSinkError { path, source }
        };
        create_dir(dir).map_err(err(dir))?;
        let open = |name: &str| {
            let p = dir.join(name);
            create_fresh(&p).map(BufWriter::new).map_err(err(&p))
        };
        let findings = open(FINDINGS_FILE)?;
        let dead_letters = open(DEAD_LETTERS_FILE)?;
        let sink = Self {
            dir: dir.to_owned(),
            findings,
            dead_letters,
            line: Vec::with_capacity(1024),
            topic: None,
        };
        sink.write_whole(ROLLOUT_FILE, &[] as &[RolloutRow])?;
        sink.write_whole(SURFACES_FILE, &[] as &[SurfaceRow])?;
        sink.write_whole(AGENTS_FILE, &[] as &[AgentRow])?;
        Ok(sink)
    }

    /// Also publishes every finding, as its line, to `topic`.
    pub fn with_findings_topic(mut self, topic: FindingsTopic) -> Self {
        self.topic = Some(topic);
        self
    }

    /// Findings the findings topic acknowledged (`None`: there is none).
    pub fn published(&self) -> Option<u64> {
        self.topic.as_ref().map(FindingsTopic::published)
    }

    /// Flushes the streaming files, and awaits the findings topic's acknowledgement of
    /// every finding sent to it: an error when one was not delivered.
    pub fn flush(&mut self) -> Result<(), FileSinkError> {
        let dir = self.dir.clone();
        self.findings.flush().map_err(|source| FileSinkError {
            path: dir.join(FINDINGS_FILE).display().to_string(),
            source,
        })?;
        self.dead_letters.flush().map_err(|source| FileSinkError {
            path: dir.join(DEAD_LETTERS_FILE).display().to_string(),
            source,
        })?;
        if let Some(topic) = &mut self.topic {
            topic.flush().map_err(|e| topic_error(topic, e))?;
        }
        Ok(())
    }

    /// Writes a whole file as a new one ([`write_new`]), so a reader never sees half of
    /// it and no planted link is followed.
    fn write_whole<T: Serialize>(&self, name: &str, rows: &[T]) -> Result<(), FileSinkError> {
        let path = self.dir.join(name);
        write_new(&path, |w| {
            for r in rows {
                serde_json::to_writer(&mut *w, r).map_err(io::Error::other)?;
                w.write_all(b"\n")?;
            }
            Ok(())
        })
        .map_err(|source| FileSinkError {
            path: path.display().to_string(),
            source,
        })
    }

    fn append<T: Serialize>(
        line: &mut Vec<u8>,
        w: &mut BufWriter<File>,
        row: &T,
        dir: &Path,
        name: &str,
    ) -> Result<(), FileSinkError> {
        line.clear();
        let err = |source| FileSinkError {
            path: dir.join(name).display().to_string(),
            source,
        };
        row_line(line, row).map_err(err)?;
        w.write_all(line).map_err(err)
    }

    /// Appends rows already in their file form ([`LineBuffer`]): whole lines of
    /// `findings.ndjson` and of `dead_letters.ndjson`.
    pub fn write_lines(
        &mut self,
        findings: &[u8],
        dead_letters: &[u8],
    ) -> Result<(), FileSinkError> {
        let err = |name: &str| {
            let path = self.dir.join(name).display().to_string();
            move |source| FileSinkError { path, source }
        };
        self.findings
            .write_all(findings)
            .map_err(err(FINDINGS_FILE))?;
        self.dead_letters
            .write_all(dead_letters)
            .map_err(err(DEAD_LETTERS_FILE))?;
        if let Some(topic) = &mut self.topic {
            topic
                .send_lines(findings)
                .map_err(|e| topic_error(topic, e))?;
        }
        Ok(())
    }
}

/// One row as a line of its file: JSON, then a newline (appended to `out`).
fn row_line<T: Serialize>(out: &mut Vec<u8>, row: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, row).map_err(io::Error::other)?;
    out.push(b'\n');
    Ok(())
}

/// Findings and dead letters as the lines [`FileSink`] would write, kept in memory: a
/// worker of the file mode writes here, and the lines go to the files in input order.
#[derive(Debug, Default)]
pub struct LineBuffer {
    /// Lines of `findings.ndjson`.
    pub findings: Vec<u8>,
    /// Lines of `dead_letters.ndjson`.
    pub dead_letters: Vec<u8>,
}

impl RowSink for LineBuffer {
    type Error = FileSinkError;

    fn finding(&mut self, f: &Finding) -> Result<(), FileSinkError> {
        row_line(&mut self.findings, f).map_err(|source| FileSinkError {
            path: FINDINGS_FILE.into(),
            source,
        })
    }

    fn dead_letter(&mut self, d: &DeadLetter) -> Result<(), FileSinkError> {
        row_line(&mut self.dead_letters, d).map_err(|source| FileSinkError {
            path: DEAD_LETTERS_FILE.into(),
            source,
        })
    }
}

impl RowSink for FileSink {
    type Error = FileSinkError;

    fn finding(&mut self, f: &Finding) -> Result<(), FileSinkError> {
        Self::append(
            &mut self.line,
            &mut self.findings,
            f,
            &self.dir,
            FINDINGS_FILE,
        )?;
        if let Some(topic) = &mut self.topic {
            topic
                .send_lines(&self.line)
                .map_err(|e| topic_error(topic, e))?;
        }
        Ok(())
    }

    fn dead_letter(&mut self, d: &DeadLetter) -> Result<(), FileSinkError> {
        Self::append(
            &mut self.line,
            &mut self.dead_letters,
            d,
            &self.dir,
            DEAD_LETTERS_FILE,
        )
    }

    fn snapshot(
        &mut self,
        rollout: &[RolloutRow],
        surfaces: &[SurfaceRow],
        agents: &[AgentRow],
    ) -> Result<(), FileSinkError> {
        self.flush()?;
        self.write_whole(ROLLOUT_FILE, rollout)?;
        self.write_whole(SURFACES_FILE, surfaces)?;
        self.write_whole(AGENTS_FILE, agents)
    }
}
