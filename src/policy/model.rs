//! A policy version, compiled from its file: what the evaluator reads.

use super::attr::Attr;
use super::cond::Cond;
use super::cond::KindMask;
use super::template::Template;
use crate::event::time::EventTime;
use crate::event::{Role, RoleSet};
use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A finding's severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The name in files and rows.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|x| x.name() == s)
    }

    /// Its position in [`Severity::ALL`] (the index of the day's uncovered counters).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One declared surface: a name, an enforcement date (or none: readiness only) and,
/// optionally, the MFA share that counts toward readiness.
#[derive(Debug, Clone)]
pub struct SurfaceDef {
    /// Its name (`api`); rules, rows and metric labels use it.
    pub name: Arc<str>,
    /// Enforcement start (`None`: never enforced).
    pub enforced_from: Option<EventTime>,
    /// The MFA share of this surface, when it has one.
    pub share: Option<ShareDef>,
    /// The `rollout_daily` columns its share fills (`api_app_user_calls` fills that
    /// column and its `_mfa`, `_excepted`, `_mfa_unknown` companions).
    pub rollout_columns: Option<String>,
    /// The latest enforcement date a tenant may move it to (`policy_override`); `None`:
    /// it cannot be moved.
    pub postpone_until: Option<EventTime>,
    /// Whether its findings count toward readiness (the day's findings and uncovered
    /// counts `[readiness]` reads); `readiness = false`: a surface of detections.
    pub readiness: bool,
}

/// Which events count toward a surface's MFA share, and how.
#[derive(Debug, Clone)]
pub struct ShareDef {
    /// The events counted.
    pub counts: Cond,
    /// The event kinds `counts` can hold on.
    pub kinds: KindMask,
    /// The condition as written.
    pub counts_source: String,
    /// The boolean attribute that says MFA (absent: MFA unknown, left out of the share).
    pub mfa: Attr,
    /// Rule ids: an event without MFA whose finding of one of these is covered by an
    /// exception counts as excepted.
    pub excepted_by: Vec<Arc<str>>,
    /// Events counted apart as "MFA demanded" (enforcement seen working), with the event
    /// kinds it can hold on.
    pub demanded: Option<(Cond, KindMask)>,
}

/// A named counter of `rollout_daily`: events for which its condition holds.
#[derive(Debug, Clone)]
pub struct CounterDef {
    /// The column.
    pub name: String,
    /// The events counted.
    pub when: Cond,
    /// The condition as written.
    pub when_source: String,
    /// The event kinds `when` can hold on.
    pub kinds: KindMask,
}

/// The readiness status rule: `blocked` when its condition holds, else `ready` when
/// that one holds, else `at_risk`.
#[derive(Debug, Clone)]
pub struct ReadinessDef {
    /// When a day (or window) is blocked.
    pub blocked: Cond,
    /// When it is ready.
    pub ready: Cond,
    /// The two as written.
    pub sources: [String; 2],
}

/// One rule of the catalogue.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The stable rule id (`API_APP_USER_NO_MFA`).
    pub id: Arc<str>,
    /// Its surface, an index into [`Policy::surfaces`] (decides the enforcement date).
    pub surface: usize,
    /// The surface's name.
    pub surface_name: Arc<str>,
    /// Its severity.
    pub severity: Severity,
    /// One line for people.
    pub summary: String,
    /// When it fires.
    pub when: Cond,
    /// The condition as written in the file (for `explain`).
    pub when_source: String,
    /// The finding's `detail`.
    pub detail: Template,
    /// The event kinds on which `when` can hold ([`Cond::kinds`]).
    pub kinds: KindMask,
    /// After a finding, the same rule and key stay quiet for a while (`suppress`).
    pub suppress: Option<Suppress>,
    /// The attributes a finding carries in its `context` (`context = [...]`), in order.
    pub context: Vec<super::attr::Attr>,
}

/// A rule's `suppress`: after a finding, further findings of the rule with the same key
/// (the values of `by`, in the same tenant) within `micros` of event time are suppressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppress {
    /// How long, in microseconds of event time.
    pub micros: i64,
    /// The attributes whose values make the key (none: the whole tenant).
    pub by: Vec<super::attr::Attr>,
    /// As written (`10m`).
    pub source: String,
}

/// A protected dashboard page and the roles the matrix lets in.
#[derive(Debug, Clone)]
pub struct Page {
    /// Short id (`customers`).
    pub id: String,
    /// Name for people.
    pub name: String,
    /// URL patterns as written (lower-cased); compiled in the policy's page index.
    pub urls: Vec<String>,
    /// Roles allowed.
    pub roles: RoleSet,
}

/// A technical-exception reason.
#[derive(Debug, Clone)]
pub struct ExceptionReason {
    /// Valid for this version: only a valid reason may cover findings.
    pub valid: bool,
    /// The rule ids it covers.
    pub covers: Vec<Arc<str>>,
    /// Name for people.
    pub name: String,
}

/// A compiled, validated policy version.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The version id (`partner-mfa-2020-05`).
    pub version: String,
    /// Title for people.
    pub title: String,
    /// The declared surfaces, in file order.
    pub surfaces: Vec<SurfaceDef>,
    /// Which roles are partner roles in this version.
    pub partner_roles: RoleSet,
    /// Protected dashboard pages.
    pub pages: Vec<Page>,
    /// Every rule, in file order (the order findings of one event are written in).
    pub rules: Vec<Rule>,
    /// The named conditions as written (`[conditions]`), for `explain`.
    pub conditions: BTreeMap<String, String>,
    /// The `rollout_daily` counters.
    pub counters: Vec<CounterDef>,
    /// Counts over a window (`[windows.NAME]`), in name order.
    pub windows: Vec<super::windows::WindowDef>,
    /// First-seen histories (`[histories.NAME]`), in name order.
    pub histories: Vec<super::windows::HistoryDef>,
    /// The readiness status rule; `None` for a policy of detections (every surface has
    /// `readiness = false`), which writes no rollout rows and has no readiness line.
    pub readiness: Option<ReadinessDef>,
    /// How long an interactive Partner Center sign-in stands for a dashboard session.
    pub session_max_age_secs: i64,
    /// App ids / display names of Partner Center sign-ins, lower-cased.
    pub partner_center_apps: Vec<String>,
    /// `status.additionalDetails` / step result texts that mean MFA was satisfied.
    pub mfa_satisfied_details: Vec<String>,
    /// `status.additionalDetails` / step result texts that mean the MFA requirement was
    /// skipped (no MFA performed), lower-cased.
    pub mfa_skipped_details: Vec<String>,
    /// `authenticationMethod` values that are a second factor, lower-cased.
    pub second_factor_methods: Vec<String>,
    /// Error codes meaning MFA (or its registration) was demanded, not satisfied.
    pub mfa_demanded_error_codes: Vec<i64>,
    /// Business days Microsoft takes to answer an exception request.
    pub exception_response_business_days: i64,
    /// Exception reasons by id.
    pub exception_reasons: BTreeMap<String, ExceptionReason>,
    /// `[directory] groups`: a group's display name (compared without case) and the
    /// partner role its members hold (Partner Center's AdminAgents group, ...).
    pub directory_groups: Vec<(String, Role)>,
    /// `[directory] roles`: a directory role's template id (lower case) and the partner
    /// role its members hold (Billing Administrator, ...).
    pub directory_roles: Vec<(String, Role)>,
    /// Every page's URL patterns, compiled into one set.
    pub(crate) page_index: PageIndex,
}

/// A page's URL pattern compiled: `*` crosses `/` (a pattern names a page and every path
/// under it).
pub(crate) fn page_glob(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(false).build()
}

/// Every protected page's URL patterns compiled into one set, so a URL is matched once
/// rather than once per page; each pattern knows its page.
#[derive(Debug, Clone, Default)]
pub(crate) struct PageIndex {
    set: GlobSet,
    /// The page (index into `pages`) of each pattern of `set`.
    page_of: Vec<usize>,
}

impl PageIndex {
    /// One set of `patterns`, each with the index of its page.
    pub(crate) fn build(patterns: Vec<(Glob, usize)>) -> Result<Self, globset::Error> {
        let mut builder = GlobSetBuilder::new();
        let mut page_of = Vec::with_capacity(patterns.len());
        for (glob, page) in patterns {
            builder.add(glob);
            page_of.push(page);
        }
        Ok(Self {
            set: builder.build()?,
            page_of,
        })
    }
}

impl Policy {
    /// The partner role a group's members hold (`[directory] groups`).
    pub fn group_role(&self, group: &str) -> Option<Role> {
        let g = group.trim();
        self.directory_groups
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(g))
            .map(|(_, r)| *r)
    }

    /// The partner role a directory role's members hold (`[directory] roles`).
    pub fn template_role(&self, template_id: &str) -> Option<Role> {
        let t = template_id.trim();
        self.directory_roles
            .iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(t))
            .map(|(_, r)| *r)
    }

    /// The named conditions `source` uses, directly or through others, in order of use.
    pub fn conditions_used(&self, source: &str) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = Vec::new();
        let mut todo = vec![source.to_owned()];
        while let Some(text) = todo.pop() {
            for (name, body) in &self.conditions {
                let used = text.contains(&format!("condition = \"{name}\""));
                if used && !out.iter().any(|(n, _)| n == name) {
                    out.push((name, body));
                    todo.push(body.clone());
                }
            }
        }
        out
    }

    /// A surface by name.
    pub fn surface(&self, name: &str) -> Option<usize> {
        self.surfaces.iter().position(|s| &*s.name == name)
    }

    /// The surface's enforcement start.
    pub fn enforced_from(&self, surface: usize) -> Option<EventTime> {
        self.surfaces.get(surface).and_then(|s| s.enforced_from)
    }

    /// Whether `t` falls at or after the surface's enforcement start.
    pub fn is_enforced(&self, surface: usize, t: EventTime) -> bool {
        self.enforced_from(surface).is_some_and(|from| t >= from)
    }

    /// The surface's enforcement start for one tenant at `t`: its own date when a
    /// `policy_override` moved it, else the policy's.
    pub fn enforced_from_for(
        &self,
        surface: usize,
        tenant: &crate::state::TenantState,
        t: EventTime,
    ) -> Option<EventTime> {
        let s = self.surfaces.get(surface)?;
        if tenant.overrides.is_empty() {
            return s.enforced_from;
        }
        tenant
            .enforced_from_override(&s.name, t)
            .or(s.enforced_from)
    }

    /// Whether the surface is enforced for one tenant at `t` ([`Policy::enforced_from_for`]).
    pub fn is_enforced_for(
        &self,
        surface: usize,
        tenant: &crate::state::TenantState,
        t: EventTime,
    ) -> bool {
        self.enforced_from_for(surface, tenant, t)
            .is_some_and(|from| t >= from)
    }

    /// The protected page a URL falls under (first match in file order).
    pub fn protected_page(&self, url: &str) -> Option<&Page> {
        let normal = normalise_url(url);
        let index = &self.page_index;
        index
            .set
            .matches(&*normal)
            .into_iter()
            .filter_map(|g| index.page_of.get(g).copied())
            .min()
            .and_then(|p| self.pages.get(p))
    }

    /// Whether an exception reason covers a rule id in this version.
    pub fn reason_covers(&self, reason: &str, rule_id: &str) -> bool {
        self.exception_reasons
            .get(&reason.trim().to_ascii_lowercase())
            .is_some_and(|r| r.valid && r.covers.iter().any(|c| &**c == rule_id))
    }

    /// What state needs to know of this version: its partner roles and how long
    /// exception requests may stay open.
    pub fn directory(&self) -> crate::state::Directory {
        crate::state::Directory {
            partner_roles: self.partner_roles,
            exception_response_business_days: self.exception_response_business_days,
        }
    }
}

/// Lower-cases a URL and makes a path-only one absolute on `partner.microsoft.com`
/// (without allocating when it already is both).
pub(crate) fn normalise_url(url: &str) -> std::borrow::Cow<'_, str> {
    let u = url.trim();
    let lower = !u.bytes().any(|b| b.is_ascii_uppercase());
    match (u.starts_with('/'), lower) {
        (false, true) => std::borrow::Cow::Borrowed(u),
        (false, false) => std::borrow::Cow::Owned(u.to_ascii_lowercase()),
        (true, _) => std::borrow::Cow::Owned(format!(
            "https://partner.microsoft.com{}",
            u.to_ascii_lowercase()
        )),
    }
}
