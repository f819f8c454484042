//! Reading the rows back: from a file-mode output folder or from ClickHouse.

use super::{AgentRecord, Builder, FindingCount, Report, RolloutRecord, SurfaceRecord};
use crate::sink::clickhouse::{escape, ClickHouse, ClickHouseError};
use crate::sink::file::SURFACES_FILE;
use serde::de::DeserializeOwned;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a report could not be built.
#[derive(Debug, Error)]
pub enum ReportError {
    /// A row file is missing or unreadable.
    #[error("cannot read {path}: {source} (is it a `mfa-audit run --out` folder?)")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A row does not have the shape the pipeline writes.
    #[error("{path} line {line}: not a row of this table: {message}")]
    Row {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The decoder's message.
        message: String,
    },
    /// ClickHouse failed.
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    /// There is nothing to report.
    #[error("no rollout rows{0}: run the pipeline first (`mfa-audit run`)")]
    Empty(String),
}

/// Reads `DIR/{rollout_daily,rollout_surfaces,agents,findings,dead_letters}.ndjson`; a
/// folder written before `rollout_surfaces` existed has no shares (its file is absent).
pub fn from_folder(dir: &Path, wanted: Option<&str>) -> Result<Report, ReportError> {
    let rollout: Vec<RolloutRecord> = read_all(&dir.join("rollout_daily.ndjson"))?;
    let mut present: Vec<String> = rollout.iter().map(|r| r.policy_version.clone()).collect();
    present.sort();
    present.dedup();
    let version = choose_version(wanted, &present, &format!(" in {}", dir.display()))?;
    let mut b = Builder::default();
    for r in rollout.into_iter().filter(|r| r.policy_version == version) {
        b.rollout(r);
    }
    let surfaces = dir.join(SURFACES_FILE);
    if surfaces.exists() {
        for_each::<SurfaceRecord>(&surfaces, |r| {
            if r.policy_version == version {
                b.surface(r);
            }
        })?;
    }
    for_each::<AgentRecord>(&dir.join("agents.ndjson"), |a| {
        if a.policy_version == version {
            b.agent(a);
        }
    })?;
    for_each::<FindingCount>(&dir.join("findings.ndjson"), |f| {
        if f.policy_version == version {
            b.findings(&f);
        }
    })?;
    #[derive(serde::Deserialize)]
    struct Reason {
        reason: String,
    }
    for_each::<Reason>(&dir.join("dead_letters.ndjson"), |d| {
        b.dead_letters(&d.reason, 1);
    })?;
    let policy = crate::policy::load(&version).ok();
    Ok(b.finish(
        format!("folder {}", dir.display()),
        version,
        policy.as_ref(),
    ))
}

/// The version to report: `wanted`, which the rows must hold, else the newest name
/// among `present` (shipped names sort by date). `place` says where the rows are.
fn choose_version(
    wanted: Option<&str>,
    present: &[String],
    place: &str,
) -> Result<String, ReportError> {
    let Some(version) = wanted
        .map(str::to_owned)
        .or_else(|| present.iter().max().cloned())
    else {
        return Err(ReportError::Empty(place.to_owned()));
    };
    if !present.contains(&version) {
        return Err(ReportError::Empty(format!(
            " for policy {version}{place} (it holds {})",
            present.join(", ")
        )));
    }
    Ok(version)
}

fn read_all<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, ReportError> {
    let mut out = Vec::new();
    for_each(path, |r| out.push(r))?;
    Ok(out)
}

/// Decodes every non-empty line of an NDJSON file; the first bad line is an error.
fn for_each<T: DeserializeOwned>(path: &Path, mut f: impl FnMut(T)) -> Result<(), ReportError> {
    let read_err = |source| ReportError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut line = String::new();
    let mut n = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(read_err)? == 0 {
            return Ok(());
        }
        n += 1;
        if line.trim().is_empty() {
            continue;
        }
        let row = serde_json::from_str(&line).map_err(|e| ReportError::Row {
            path: path.to_owned(),
            line: n,
            message: e.to_string(),
        })?;
        f(row);
    }
}

/// Reads the tables of `ch`'s database (`FINAL`, so replaced rows count once).
pub async fn from_clickhouse(ch: &ClickHouse, wanted: Option<&str>) -> Result<Report, ReportError> {
    #[derive(serde::Deserialize)]
    struct Version {
        policy_version: String,
    }
    let present: Vec<String> = ch
        .records::<Version>("SELECT DISTINCT policy_version FROM rollout_daily")
        .await?
        .into_iter()
        .map(|v| v.policy_version)
        .collect();
    let place = format!(" in ClickHouse database `{}`", ch.database());
    let version = choose_version(wanted, &present, &place)?;
    let v = escape(&version);
    let mut b = Builder::default();
    for r in ch
        .records::<RolloutRecord>(&format!(
            "SELECT * FROM rollout_daily FINAL WHERE policy_version = '{v}'"
        ))
        .await?
    {
        b.rollout(r);
    }
    // A database not yet migrated to `rollout_surfaces` has no shares, as an older folder.
    #[derive(serde::Deserialize)]
    struct Count {
        n: u64,
    }
    let has_surfaces = ch
        .records::<Count>(
            "SELECT count() AS n FROM system.tables \
             WHERE database = currentDatabase() AND name = 'rollout_surfaces'",
        )
        .await?
        .first()
        .is_some_and(|c| c.n > 0);
    if has_surfaces {
        for r in ch
            .records::<SurfaceRecord>(&format!(
                "SELECT tenant_id, day, policy_version, surface, enforced, total, mfa, \
                 excepted, mfa_unknown, version \
                 FROM rollout_surfaces FINAL WHERE policy_version = '{v}'"
            ))
            .await?
        {
            b.surface(r);
        }
    }
    for a in ch
        .records::<AgentRecord>(&format!(
            "SELECT tenant_id, user_id, roles, mfa_registration, policy_version, version \
             FROM agents FINAL WHERE policy_version = '{v}'"
        ))
        .await?
    {
        b.agent(a);
    }
    for f in ch
        .records::<FindingCount>(&format!(
            "SELECT rule_id, severity, enforced, excepted, count() AS n FROM findings FINAL \
             WHERE policy_version = '{v}' GROUP BY rule_id, severity, enforced, excepted"
        ))
        .await?
    {
        b.findings(&f);
    }
    for c in ch
        .records::<super::ContextRow>(&format!(
            "SELECT toString(event_time) AS event_time, rule_id, \
             if(upn = '', user_id, upn) AS user, context FROM findings FINAL \
             WHERE policy_version = '{v}' AND context != '' \
             ORDER BY event_time DESC, rule_id LIMIT {}",
            super::MAX_CONTEXT_ROWS
        ))
        .await?
    {
        b.context(c);
    }
    #[derive(serde::Deserialize)]
    struct Reasons {
        code: String,
        n: u64,
    }
    for d in ch
        .records::<Reasons>(
            "SELECT splitByChar(':', reason)[1] AS code, count() AS n \
             FROM dead_letters FINAL GROUP BY code",
        )
        .await?
    {
        b.dead_letters(&d.code, d.n);
    }
    let policy = crate::policy::load(&version).ok();
    Ok(b.finish(
        format!("ClickHouse database `{}`", ch.database()),
        version,
        policy.as_ref(),
    ))
}
