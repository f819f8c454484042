//! `mfa-audit report`: one self-contained HTML page for people without Grafana, built from
//! the rows the pipeline wrote (a file-mode output folder, or ClickHouse).
//!
//! The rows are read back as they were written ([`load`]), reduced to a [`Report`] (one
//! readiness line per tenant, the daily MFA shares of all tenants, findings per rule,
//! agents per tenant, dead letters per reason) and rendered by [`html`]. The MFA shares
//! come from `rollout_surfaces`, one per surface the policy declares, whatever its name:
//! a policy's own surfaces show with no code.

mod charts;
pub mod html;
pub mod load;
mod style;

use crate::event::time::Day;
use crate::policy::Policy;
use crate::sink::rows::{day_text, flag};
use crate::sink::DayStats;
use crate::state::ShareCount;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

pub use load::{from_clickhouse, from_folder, ReportError};

/// Everything the page shows.
#[derive(Debug, Clone)]
pub struct Report {
    /// Where the rows came from (a folder, or ClickHouse's address and database).
    pub source: String,
    /// The policy version the rows were evaluated under.
    pub policy_version: String,
    /// Enforcement start per surface (empty when the version is not a shipped one).
    pub enforcement: Vec<(String, Day)>,
    /// The surfaces with `rollout_surfaces` rows: in the policy's order, then any it does
    /// not declare, by name. Every `shares` below is indexed like this.
    pub surfaces: Vec<String>,
    /// One line per tenant, blocked first.
    pub tenants: Vec<TenantLine>,
    /// Every day with rows, and every tenant's counts per surface that day.
    pub daily: Vec<(Day, Vec<ShareCount>)>,
    /// Findings per rule, most first.
    pub rules: Vec<RuleCount>,
    /// Partner-role users per tenant by registration.
    pub agents: Vec<AgentCount>,
    /// Dead letters per reason code, most first.
    pub dead_letters: Vec<(String, u64)>,
    /// The latest findings that carry a `context` (rules with `context = [...]`), newest
    /// first, at most [`MAX_CONTEXT_ROWS`].
    pub contexts: Vec<ContextRow>,
}

/// How many findings with context the report lists.
pub const MAX_CONTEXT_ROWS: usize = 50;

/// A finding with its context, as the report lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub struct ContextRow {
    /// The event's time as written (`YYYY-MM-DD hh:mm:ss`).
    pub event_time: String,
    /// Rule id.
    pub rule_id: String,
    /// The user's UPN, else object id.
    pub user: String,
    /// The context as JSON text.
    pub context: String,
}

/// A tenant's readiness on its newest day.
#[derive(Debug, Clone)]
pub struct TenantLine {
    /// Partner tenant.
    pub tenant_id: String,
    /// The newest day with rows.
    pub day: Day,
    /// Readiness that day (as the pipeline wrote it).
    pub status: String,
    /// Readiness over the 7 days ending that day.
    pub status_7d: String,
    /// The 7 days' counters added.
    pub window: DayStats,
    /// The 7 days' counts per surface (as [`Report::surfaces`]).
    pub shares: Vec<ShareCount>,
    /// The next surface enforced after that day, and in how many days.
    pub next_enforcement: Option<(String, i64)>,
}

/// Findings of one rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleCount {
    /// Rule id.
    pub rule_id: String,
    /// Severity.
    pub severity: String,
    /// Enforced when found, not covered by an exception.
    pub enforced: u64,
    /// Found before the surface's enforcement date (readiness only).
    pub readiness: u64,
    /// Covered by a technical exception.
    pub excepted: u64,
}

impl RuleCount {
    /// All findings of the rule.
    pub fn total(&self) -> u64 {
        self.enforced + self.readiness + self.excepted
    }
}

/// A tenant's partner-role users by MFA registration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentCount {
    /// Partner tenant.
    pub tenant_id: String,
    /// Registered for MFA.
    pub registered: u64,
    /// Known not to be registered.
    pub unregistered: u64,
    /// Registration not reported.
    pub unknown: u64,
}

/// A `rollout_daily` row as written.
#[derive(Debug, Clone, Deserialize)]
pub struct RolloutRecord {
    /// Partner tenant.
    pub tenant_id: String,
    /// UTC day (`YYYY-MM-DD`).
    #[serde(deserialize_with = "day_text")]
    pub day: Day,
    /// Policy version.
    pub policy_version: String,
    /// The counters.
    #[serde(flatten)]
    pub stats: DayStats,
    /// Readiness that day.
    pub status: String,
    /// Readiness over 7 days.
    pub status_7d: String,
    /// Row version (the higher replaces the lower).
    pub version: u64,
}

/// A `rollout_surfaces` row as written (read back with the row type the pipeline writes).
pub type SurfaceRecord = crate::sink::SurfaceRow;

/// The `agents` columns the report reads.
#[derive(Debug, Clone, Deserialize)]
pub struct AgentRecord {
    /// Partner tenant.
    pub tenant_id: String,
    /// User object id.
    pub user_id: String,
    /// Partner roles held now.
    pub roles: Vec<String>,
    /// `registered`, `unregistered` or `unknown`.
    pub mfa_registration: String,
    /// Policy version.
    pub policy_version: String,
    /// Row version.
    pub version: u64,
}

/// Findings of one (rule, severity, enforced, excepted), as counted by a query or a scan.
#[derive(Debug, Clone, Deserialize)]
pub struct FindingCount {
    /// Rule id.
    pub rule_id: String,
    /// Severity.
    pub severity: String,
    /// Enforced (`true`/`false` in files, 1/0 in ClickHouse).
    #[serde(deserialize_with = "flag")]
    pub enforced: bool,
    /// Covered by an exception.
    #[serde(deserialize_with = "flag")]
    pub excepted: bool,
    /// Policy version (files; a ClickHouse query filters on it instead).
    #[serde(default)]
    pub policy_version: String,
    /// The finding's context (files; a ClickHouse query reads it apart).
    #[serde(default)]
    pub context: Option<serde_json::Value>,
    /// The event's time (files).
    #[serde(default)]
    pub event_time: String,
    /// The user's UPN (files).
    #[serde(default)]
    pub upn: String,
    /// The user's object id (files).
    #[serde(default)]
    pub user_id: String,
    /// How many (1 for one `findings.ndjson` line).
    #[serde(default = "one")]
    pub n: u64,
}

fn one() -> u64 {
    1
}

/// Gathers rows of one policy version and reduces them to a [`Report`].
#[derive(Debug, Default)]
pub struct Builder {
    rollout: HashMap<(String, Day), RolloutRecord>,
    surfaces: HashMap<(String, Day, String), SurfaceRecord>,
    agents: HashMap<(String, String), AgentRecord>,
    rules: BTreeMap<(String, String), RuleCount>,
    dead_letters: BTreeMap<String, u64>,
    contexts: Vec<ContextRow>,
}

impl Builder {
    /// Keeps the highest version of each (tenant, day).
    pub fn rollout(&mut self, r: RolloutRecord) {
        let key = (r.tenant_id.clone(), r.day);
        keep_newest(&mut self.rollout, key, r.version, r, |old| old.version);
    }

    /// Keeps the highest version of each (tenant, day, surface).
    pub fn surface(&mut self, r: SurfaceRecord) {
        let key = (r.tenant_id.clone(), r.day, r.surface.clone());
        keep_newest(&mut self.surfaces, key, r.version, r, |old| old.version);
    }

    /// Keeps the highest version of each (tenant, user).
    pub fn agent(&mut self, a: AgentRecord) {
        let key = (a.tenant_id.clone(), a.user_id.clone());
        keep_newest(&mut self.agents, key, a.version, a, |old| old.version);
    }

    /// Keeps a finding with context among the newest [`MAX_CONTEXT_ROWS`].
    pub fn context(&mut self, row: ContextRow) {
        self.contexts.push(row);
        if self.contexts.len() >= 4 * MAX_CONTEXT_ROWS {
            self.trim_contexts();
        }
    }

    fn trim_contexts(&mut self) {
        self.contexts.sort_by(|a, b| b.cmp(a));
        self.contexts.dedup();
        self.contexts.truncate(MAX_CONTEXT_ROWS);
    }

    /// Adds findings.
    pub fn findings(&mut self, f: &FindingCount) {
        if let Some(c) = f.context.as_ref().filter(|c| !c.is_null()) {
            self.context(ContextRow {
                event_time: f.event_time.clone(),
                rule_id: f.rule_id.clone(),
                user: if f.upn.is_empty() {
                    f.user_id.clone()
                } else {
                    f.upn.clone()
                },
                // A file row holds an object; a findings-topic line holds its text.
                context: match c {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            });
        }
        let c = self
            .rules
            .entry((f.rule_id.clone(), f.severity.clone()))
            .or_insert_with(|| RuleCount {
                rule_id: f.rule_id.clone(),
                severity: f.severity.clone(),
                ..RuleCount::default()
            });
        if f.excepted {
            c.excepted += f.n;
        } else if f.enforced {
            c.enforced += f.n;
        } else {
            c.readiness += f.n;
        }
    }

    /// Adds dead letters of a reason (its code: the text before the first `:`).
    pub fn dead_letters(&mut self, reason: &str, n: u64) {
        let code = reason.split(':').next().unwrap_or(reason).trim();
        *self.dead_letters.entry(code.to_owned()).or_default() += n;
    }

    /// The report. `policy` gives the enforcement dates (and days to the next one).
    pub fn finish(
        mut self,
        source: String,
        policy_version: String,
        policy: Option<&Policy>,
    ) -> Report {
        self.trim_contexts();
        let enforcement: Vec<(String, Day)> = policy
            .map(|p| {
                p.surfaces
                    .iter()
                    .filter_map(|s| s.enforced_from.map(|t| (s.name.to_string(), t.day())))
                    .collect()
            })
            .unwrap_or_default();

        // The surfaces present: the policy's order first, then the others by name.
        let mut surfaces: Vec<String> = policy
            .into_iter()
            .flat_map(|p| p.surfaces.iter().map(|s| s.name.to_string()))
            .filter(|name| self.surfaces.keys().any(|(_, _, s)| s == name))
            .collect();
        let others: std::collections::BTreeSet<&String> = self
            .surfaces
            .keys()
            .map(|(_, _, s)| s)
            .filter(|s| !surfaces.contains(s))
            .collect();
        surfaces.extend(others.into_iter().cloned());
        let index: HashMap<&str, usize> = surfaces
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect();

        let mut daily: BTreeMap<Day, Vec<ShareCount>> = BTreeMap::new();
        let mut tenant_shares: HashMap<String, BTreeMap<Day, Vec<ShareCount>>> = HashMap::new();
        for ((tenant, day, surface), r) in &self.surfaces {
            let Some(&i) = index.get(surface.as_str()) else {
                continue;
            };
            let counts = r.counts();
            let add = |per_day: &mut BTreeMap<Day, Vec<ShareCount>>| {
                let v = per_day
                    .entry(*day)
                    .or_insert_with(|| vec![ShareCount::default(); surfaces.len()]);
                if let Some(c) = v.get_mut(i) {
                    c.merge(&counts);
                }
            };
            add(&mut daily);
            add(tenant_shares.entry(tenant.clone()).or_default());
        }

        let mut per_tenant: BTreeMap<String, BTreeMap<Day, RolloutRecord>> = BTreeMap::new();
        for ((tenant, day), r) in self.rollout {
            daily
                .entry(day)
                .or_insert_with(|| vec![ShareCount::default(); surfaces.len()]);
            per_tenant.entry(tenant).or_default().insert(day, r);
        }
        let mut tenants: Vec<TenantLine> = per_tenant
            .into_iter()
            .filter_map(|(tenant_id, days)| {
                let (&day, newest) = days.iter().next_back()?;
                let mut window = DayStats::default();
                for (_, r) in days.range(day.plus(-6)..=day) {
                    window.merge(&r.stats);
                }
                let mut shares = vec![ShareCount::default(); surfaces.len()];
                if let Some(per_day) = tenant_shares.get(&tenant_id) {
                    for (_, counts) in per_day.range(day.plus(-6)..=day) {
                        for (s, c) in shares.iter_mut().zip(counts) {
                            s.merge(c);
                        }
                    }
                }
                let next_enforcement = enforcement
                    .iter()
                    .filter(|(_, d)| *d > day)
                    .min_by_key(|(_, d)| *d)
                    .map(|(s, d)| (s.clone(), d.0 - day.0));
                Some(TenantLine {
                    status: newest.status.clone(),
                    status_7d: newest.status_7d.clone(),
                    tenant_id,
                    day,
                    window,
                    shares,
                    next_enforcement,
                })
            })
            .collect();
        tenants.sort_by(|a, b| {
            status_rank(&b.status_7d)
                .cmp(&status_rank(&a.status_7d))
                .then_with(|| status_rank(&b.status).cmp(&status_rank(&a.status)))
                .then_with(|| a.tenant_id.cmp(&b.tenant_id))
        });

        let mut rules: Vec<RuleCount> = self.rules.into_values().collect();
        rules.sort_by(|a, b| {
            b.total()
                .cmp(&a.total())
                .then_with(|| a.rule_id.cmp(&b.rule_id))
        });

        let mut agents: BTreeMap<String, AgentCount> = BTreeMap::new();
        for a in self.agents.into_values().filter(|a| !a.roles.is_empty()) {
            let c = agents
                .entry(a.tenant_id.clone())
                .or_insert_with(|| AgentCount {
                    tenant_id: a.tenant_id.clone(),
                    ..AgentCount::default()
                });
            match a.mfa_registration.as_str() {
                "registered" => c.registered += 1,
                "unregistered" => c.unregistered += 1,
                _ => c.unknown += 1,
            }
        }

        let mut dead_letters: Vec<(String, u64)> = self.dead_letters.into_iter().collect();
        dead_letters.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

        Report {
            source,
            policy_version,
            enforcement,
            surfaces,
            tenants,
            daily: daily.into_iter().collect(),
            rules,
            agents: agents.into_values().collect(),
            dead_letters,
            contexts: self.contexts,
        }
    }
}

/// Stores `row` under `key` unless a row of a higher version is there (as
/// ReplacingMergeTree's `FINAL` keeps one row per key).
fn keep_newest<K: std::hash::Hash + Eq, R>(
    map: &mut HashMap<K, R>,
    key: K,
    version: u64,
    row: R,
    version_of: impl Fn(&R) -> u64,
) {
    if map.get(&key).is_none_or(|old| version_of(old) <= version) {
        map.insert(key, row);
    }
}

/// Orders statuses: blocked above at risk above ready (unknown names last).
fn status_rank(s: &str) -> u8 {
    match s {
        "blocked" => 3,
        "at_risk" => 2,
        "ready" => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
