//! The embedded sink: NDJSON files in ClickHouse `JSONEachRow` form, loadable into the
//! tables of `schemas/clickhouse/` unchanged.

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

/// A write to the output folder failed.
#[derive(Debug, Error)]
#[error("cannot write `{path}`: {source}")]
pub struct FileSinkError {
    path: String,
    source: io::Error,
}

/// Writes the five tables as NDJSON files in one folder.
pub struct FileSink {
    dir: PathBuf,
    findings: BufWriter<File>,
    dead_letters: BufWriter<File>,
    line: Vec<u8>,
}

impl FileSink {
    /// Creates the folder (if needed) and empties the five files.
    pub fn create(dir: &Path) -> Result<Self, FileSinkError> {
        let err = |p: &Path| {
            let path = p.display().to_string();
            move |source| FileSinkError { path, source }
        };
        std::fs::create_dir_all(dir).map_err(err(dir))?;
        let open = |name: &str| {
            let p = dir.join(name);
            File::create(&p).map(BufWriter::new).map_err(err(&p))
        };
        let findings = open(FINDINGS_FILE)?;
        let dead_letters = open(DEAD_LETTERS_FILE)?;
        let sink = Self {
            dir: dir.to_owned(),
            findings,
            dead_letters,
            line: Vec::with_capacity(1024),
        };
        sink.write_whole(ROLLOUT_FILE, &[] as &[RolloutRow])?;
        sink.write_whole(SURFACES_FILE, &[] as &[SurfaceRow])?;
        sink.write_whole(AGENTS_FILE, &[] as &[AgentRow])?;
        Ok(sink)
    }

    /// Flushes the streaming files.
    pub fn flush(&mut self) -> Result<(), FileSinkError> {
        let dir = self.dir.clone();
        self.findings.flush().map_err(|source| FileSinkError {
            path: dir.join(FINDINGS_FILE).display().to_string(),
            source,
        })?;
        self.dead_letters.flush().map_err(|source| FileSinkError {
            path: dir.join(DEAD_LETTERS_FILE).display().to_string(),
            source,
        })
    }

    /// Writes a whole file through a temporary name, so a reader never sees half of it.
    fn write_whole<T: Serialize>(&self, name: &str, rows: &[T]) -> Result<(), FileSinkError> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let err = |p: &Path| {
            let path = p.display().to_string();
            move |source| FileSinkError { path, source }
        };
        let mut w = BufWriter::new(File::create(&tmp).map_err(err(&tmp))?);
        for r in rows {
            serde_json::to_writer(&mut w, r).map_err(|e| err(&tmp)(io::Error::other(e)))?;
            w.write_all(b"\n").map_err(err(&tmp))?;
        }
        w.flush().map_err(err(&tmp))?;
        drop(w);
        std::fs::rename(&tmp, &path).map_err(err(&path))
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
            .map_err(err(DEAD_LETTERS_FILE))
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
        )
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
