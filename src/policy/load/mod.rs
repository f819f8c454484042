//! Loading a policy file (TOML, or JSON with the same structure): the whole file is
//! checked and every problem is reported at once, each with its place in the file.
//!
//! Here: finding the file and the problem list ([`Cx`]); `extend.rs` lays an extending
//! file over its base; `sections.rs` builds the policy and its surfaces and counters,
//! `settings.rs` `[readiness]`, the `[mfa]` codes and `[exceptions]`; `rules.rs` the
//! pages and rules.

mod directory;
mod extend;
mod rules;
mod sections;
mod settings;
#[cfg(test)]
mod tests;

pub(crate) use rules::parse_span;
pub use sections::{ROLLOUT_COUNTER_COLUMNS, ROLLOUT_SHARE_COLUMNS};

use extend::extend;
use sections::build;

use super::model::Policy;
use crate::event::{Role, RoleSet};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use thiserror::Error;
use toml::{Table, Value};

/// The policy versions that ship with the tool (the files in `policies/`): the Partner
/// Center versions oldest first, then Azure's mandatory MFA, then the sign-in detection
/// pack (detections, not compliance: its surface counts toward no readiness).
pub const SHIPPED: [(&str, &str); 5] = [
    (
        "partner-mfa-2019-09",
        include_str!("../../../policies/partner-mfa-2019-09.toml"),
    ),
    (
        "partner-mfa-2020-05",
        include_str!("../../../policies/partner-mfa-2020-05.toml"),
    ),
    (
        "partner-mfa-2026",
        include_str!("../../../policies/partner-mfa-2026.toml"),
    ),
    (
        "azure-mandatory-mfa",
        include_str!("../../../policies/azure-mandatory-mfa.toml"),
    ),
    (
        "entra-signin-detections",
        include_str!("../../../policies/entra-signin-detections.toml"),
    ),
];

/// The default policy: what partners live under today (the API enforced from 2026-04-01,
/// every Partner Center page, GDAP, the directory rules). The seed texts stay by name:
/// `partner-mfa-2020-05` (reproduced row for row) and `partner-mfa-2019-09`.
pub const DEFAULT_POLICY: &str = "partner-mfa-2026";

/// Why a policy could not be loaded.
#[derive(Debug, Error)]
pub enum PolicyError {
    /// Neither a shipped name nor a readable file.
    #[error("no policy `{name}`: not a shipped policy ({shipped}) nor a readable file ({cause})")]
    NotFound {
        /// What was asked for.
        name: String,
        /// The shipped names.
        shipped: String,
        /// Why the file could not be read.
        cause: String,
    },
    /// The file has problems; all of them are listed.
    #[error("policy `{source_name}` has {} problem(s){note}:\n  - {}", problems.len(), problems.join("\n  - "))]
    Invalid {
        /// The file or shipped name.
        source_name: String,
        /// Said after the count (how places are counted in an extending policy).
        note: String,
        /// Every problem found.
        problems: Vec<String>,
    },
}

/// Loads a shipped policy by name, or a policy file by path.
pub fn load(name_or_path: &str) -> Result<Policy, PolicyError> {
    if let Some((name, text)) = SHIPPED.iter().find(|(n, _)| *n == name_or_path) {
        return parse(text, name, Format::Toml);
    }
    let path = PathBuf::from(name_or_path);
    let text = read_policy_file(&path).map_err(|cause| PolicyError::NotFound {
        name: name_or_path.to_owned(),
        shipped: SHIPPED.map(|(n, _)| n).join(", "),
        cause,
    })?;
    parse(&text, name_or_path, Format::from_path(&path))
}

/// The effective policy of a shipped name or a file, as TOML that stands alone: its
/// `extends` chain resolved (the bases laid under it, as [`load`] does), checked first
/// (a policy with problems is refused with them). Comments are not kept.
pub fn effective(name_or_path: &str) -> Result<String, PolicyError> {
    let policy = load(name_or_path)?;
    let (text, format) = match SHIPPED.iter().find(|(n, _)| *n == name_or_path) {
        Some((_, text)) => ((*text).to_owned(), Format::Toml),
        None => {
            let path = PathBuf::from(name_or_path);
            let text = read_policy_file(&path).map_err(|cause| PolicyError::NotFound {
                name: name_or_path.to_owned(),
                shipped: SHIPPED.map(|(n, _)| n).join(", "),
                cause,
            })?;
            (text, Format::from_path(&path))
        }
    };
    let invalid = |problem: String| PolicyError::Invalid {
        source_name: name_or_path.to_owned(),
        note: String::new(),
        problems: vec![problem],
    };
    let table: Table = match format {
        Format::Toml => toml::from_str(&text).map_err(|e| invalid(e.message().to_owned()))?,
        Format::Json => serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?,
    };
    let base = table
        .get("extends")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let table = extend(table, name_or_path, 0).map_err(invalid)?;
    let body = toml::to_string_pretty(&table).map_err(|e| invalid(e.to_string()))?;
    Ok(format!(
        "# The effective policy `{}` of {name_or_path}{}: {} rules. Written by\n# `mfa-audit policy show`; it loads on its own, to the same rules.\n\n{body}",
        policy.version,
        base.map(|b| format!(" (`extends = \"{b}\"` resolved)")).unwrap_or_default(),
        policy.rules.len(),
    ))
}

/// The largest policy file read (the shipped ones are under 20 KiB).
pub const MAX_POLICY_BYTES: u64 = 1 << 20;

/// Reads a policy file: a regular file of at most [`MAX_POLICY_BYTES`] (a device such
/// as `/dev/zero` or a pipe would block or never end).
pub(super) fn read_policy_file(path: &Path) -> Result<String, String> {
    crate::bounded::read_to_string(path, MAX_POLICY_BYTES).map_err(|e| e.to_string())
}

/// The shipped policies, each parsed once per process (a processor checks a
/// `policy_override` of a version it was not given against these).
pub fn shipped() -> &'static [Policy] {
    static SHIPPED_POLICIES: std::sync::OnceLock<Vec<Policy>> = std::sync::OnceLock::new();
    SHIPPED_POLICIES.get_or_init(|| {
        SHIPPED
            .iter()
            .filter_map(|(name, text)| parse(text, name, Format::Toml).ok())
            .collect()
    })
}

/// A policy file's syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML.
    Toml,
    /// JSON.
    Json,
}

impl Format {
    /// By file extension (`.json` is JSON, anything else TOML).
    pub fn from_path(p: &Path) -> Format {
        match p.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Toml,
        }
    }
}

/// Parses and validates policy text.
pub fn parse(text: &str, source_name: &str, format: Format) -> Result<Policy, PolicyError> {
    let invalid = |problems| PolicyError::Invalid {
        source_name: source_name.to_owned(),
        note: String::new(),
        problems,
    };
    let table: Table = match format {
        Format::Toml => toml::from_str(text).map_err(|e| invalid(vec![e.message().to_owned()]))?,
        Format::Json => serde_json::from_str(text).map_err(|e| invalid(vec![e.to_string()]))?,
    };
    let base = table
        .get("extends")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let table = extend(table, source_name, 0).map_err(|p| invalid(vec![p]))?;
    let mut cx = Cx::default();
    let policy = build(&table, &mut cx);
    // A named condition used in several places reports its own problem once.
    let mut seen = BTreeSet::new();
    cx.problems.retain(|p| seen.insert(p.clone()));
    match policy {
        Some(p) if cx.problems.is_empty() => Ok(p),
        _ => Err(PolicyError::Invalid {
            source_name: source_name.to_owned(),
            note: base
                .map(|b| {
                    format!(" (it extends `{b}`: list positions count the entries of `{b}` first)")
                })
                .unwrap_or_default(),
            problems: cx.problems,
        }),
    }
}

#[derive(Default)]
struct Cx {
    problems: Vec<String>,
}

impl Cx {
    fn problem(&mut self, at: &str, what: impl std::fmt::Display) {
        self.problems.push(format!("`{at}`: {what}"));
    }

    fn string(&mut self, t: &Table, key: &str, at: &str) -> Option<String> {
        match t.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(Value::String(_)) => {
                self.problem(&join(at, key), "must not be empty");
                None
            }
            Some(other) => {
                self.problem(
                    &join(at, key),
                    format!("must be text, not {}", other.type_str()),
                );
                None
            }
            None => {
                self.problem(&join(at, key), "is missing");
                None
            }
        }
    }

    fn optional_string(&mut self, t: &Table, key: &str, at: &str) -> Option<String> {
        t.get(key)?;
        self.string(t, key, at)
    }

    fn strings(&mut self, t: &Table, key: &str, at: &str) -> Option<Vec<String>> {
        let place = join(at, key);
        match t.get(key) {
            Some(Value::Array(a)) => {
                let mut out = Vec::with_capacity(a.len());
                for (i, v) in a.iter().enumerate() {
                    match v {
                        Value::String(s) => out.push(s.clone()),
                        other => self.problem(
                            &format!("{place}[{i}]"),
                            format!("must be text, not {}", other.type_str()),
                        ),
                    }
                }
                Some(out)
            }
            Some(other) => {
                self.problem(&place, format!("must be a list, not {}", other.type_str()));
                None
            }
            None => {
                self.problem(&place, "is missing");
                None
            }
        }
    }

    fn integer(&mut self, t: &Table, key: &str, at: &str, min: i64) -> Option<i64> {
        let place = join(at, key);
        match t.get(key) {
            Some(Value::Integer(i)) if *i >= min => Some(*i),
            Some(Value::Integer(i)) => {
                self.problem(&place, format!("{i} is below the minimum {min}"));
                None
            }
            Some(other) => {
                self.problem(
                    &place,
                    format!("must be a whole number, not {}", other.type_str()),
                );
                None
            }
            None => {
                self.problem(&place, "is missing");
                None
            }
        }
    }

    fn table<'t>(&mut self, t: &'t Table, key: &str, at: &str) -> Option<&'t Table> {
        match t.get(key) {
            Some(Value::Table(x)) => Some(x),
            Some(other) => {
                self.problem(
                    &join(at, key),
                    format!("must be a table, not {}", other.type_str()),
                );
                None
            }
            None => {
                self.problem(&join(at, key), "is missing");
                None
            }
        }
    }

    fn tables<'t>(&mut self, t: &'t Table, key: &str, at: &str) -> Vec<(String, &'t Table)> {
        let place = join(at, key);
        match t.get(key) {
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::Table(x) => Some((format!("{place}[{i}]"), x)),
                    other => {
                        self.problem(
                            &format!("{place}[{i}]"),
                            format!("must be a table, not {}", other.type_str()),
                        );
                        None
                    }
                })
                .collect(),
            Some(other) => {
                self.problem(
                    &place,
                    format!("must be a list of tables, not {}", other.type_str()),
                );
                Vec::new()
            }
            None => {
                self.problem(&place, "is missing");
                Vec::new()
            }
        }
    }

    fn unknown_keys(&mut self, t: &Table, known: &[&str], at: &str) {
        for k in t.keys() {
            if !known.contains(&k.as_str()) {
                self.problem(
                    &join(at, k),
                    format!("unknown key (known here: {})", known.join(", ")),
                );
            }
        }
    }

    fn roles(&mut self, names: &[String], at: &str) -> RoleSet {
        let mut set = RoleSet::default();
        for (i, n) in names.iter().enumerate() {
            match Role::parse(n) {
                Some(r) => set.insert(r),
                None => self.problem(
                    &format!("{at}[{i}]"),
                    format!(
                        "`{n}` is not a role (roles: {})",
                        Role::ALL.map(Role::name).join(", ")
                    ),
                ),
            }
        }
        set
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

/// Texts of a list, trimmed and lower-cased.
fn lower(v: Option<Vec<String>>) -> Vec<String> {
    v.unwrap_or_default()
        .into_iter()
        .map(|s| s.trim().to_ascii_lowercase())
        .collect()
}
