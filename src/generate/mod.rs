//! `mfa-audit generate`: a realistic, deterministic mixed stream for demos, tests and
//! benchmarks. Sign-ins are full Azure Monitor records (the shape Event Hubs delivers,
//! with conditional-access and authentication details), API requests carry real
//! JWT-shaped bearer tokens (one per user and hour, as in life), and the directory facts
//! come first. Microsoft's own directory records (`directory_share` of the documents:
//! Entra audit records of every tenant; the first tenant's Graph registration and GDAP
//! exports when its id is named) are drawn from a random stream of their own, so with a
//! share of 0 the stream is that of a generator without them. The same options give the
//! same bytes.

// The sample generator indexes its own constant tables (apps, names, user agents) with
// indices drawn below their lengths; it never reads input.
#![allow(
    clippy::indexing_slicing,
    reason = "constant tables indexed below their length; no input is read"
)]

mod detections;
mod directory;
mod shapes;

use crate::event::time::{EventTime, MICROS_PER_DAY};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::{self, Write};

pub use shapes::DEMO_SECRET;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Partner tenants.
    pub tenants: u32,
    /// Events in all.
    pub events: u64,
    /// Seed.
    pub seed: u64,
    /// Share of events that break a rule.
    pub violations: f64,
    /// First instant.
    pub start: EventTime,
    /// Days covered.
    pub days: u32,
    /// Share of the documents after the first facts that are Entra audit records (Azure
    /// Monitor `AuditLogs`), in [0, 1]: 0 writes no directory record at all.
    pub directory_share: f64,
    /// The first tenant's id. When named (and `directory_share` is above 0), the stream
    /// also holds that tenant's own Graph exports, which carry no tenant id:
    /// `userRegistrationDetails` (standing for its registration facts),
    /// `delegatedAdminRelationships` and their `accessAssignments`. A run names the same
    /// id with `--tenant`.
    pub tenant: Option<String>,
    /// The seed of the world (tenants, users, roles) when it differs from `seed`: streams
    /// with other seeds and one world seed are the same tenants with other events (a
    /// long stream in chunks, as `scripts/soak` makes it). `None`: the world comes from
    /// `seed`, as it always did.
    pub world_seed: Option<u64>,
    /// Share of the draws after the first facts that start a detection scenario (what
    /// the `entra-signin-detections` pack looks for: a high-risk or foreign sign-in, a
    /// device-code sign-in, an MFA fatigue burst, a password spray, an attack tool's user
    /// agent), in [0, 1]; a scenario writes 1 to 10 documents. 0 writes none.
    pub detection_share: f64,
}

impl Options {
    /// Checked options: at least one tenant and one day, a violation share in [0, 1], and
    /// a start date (`YYYY-MM-DD` or an RFC 3339 time). The message names the flag.
    pub fn checked(
        tenants: u32,
        events: u64,
        seed: u64,
        violations: f64,
        start: &str,
        days: u32,
    ) -> Result<Self, String> {
        if tenants == 0 {
            return Err("`--tenants` must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&violations) {
            return Err(format!(
                "`--violations` must be between 0 and 1, not {violations}"
            ));
        }
        if days == 0 {
            return Err("`--days` must be at least 1".into());
        }
        let start = EventTime::parse(start)
            .ok_or_else(|| format!("`--start` `{start}` is not a date (YYYY-MM-DD)"))?;
        Ok(Self {
            tenants,
            events,
            seed,
            violations,
            start,
            days,
            directory_share: 0.0,
            tenant: None,
            world_seed: None,
            detection_share: 0.0,
        })
    }

    /// With Microsoft's directory records: `share` of the documents are audit records, and
    /// `tenant` names the first tenant (whose Graph exports are then written). The message
    /// names the flag.
    pub fn with_directory(mut self, share: f64, tenant: Option<&str>) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&share) {
            return Err(format!(
                "`--directory-share` must be between 0 and 1, not {share}"
            ));
        }
        if let Some(t) = tenant {
            if t.trim().is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "`--tenant` `{}` is not a tenant id",
                    t.escape_debug()
                ));
            }
        }
        self.directory_share = share;
        self.tenant = tenant.map(str::to_owned);
        Ok(self)
    }

    /// With detection scenarios: `share` of the draws start one (see
    /// [`Options::detection_share`]). The message names the flag.
    pub fn with_detections(mut self, share: f64) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&share) {
            return Err(format!(
                "`--detection-share` must be between 0 and 1, not {share}"
            ));
        }
        self.detection_share = share;
        Ok(self)
    }

    /// Whether the stream holds the first tenant's Graph exports.
    pub fn graph_exports(&self) -> bool {
        self.directory_share > 0.0 && self.tenant.is_some()
    }

    /// The same options with the world drawn from `seed` (see [`Options::world_seed`]).
    pub fn with_world_seed(mut self, seed: Option<u64>) -> Self {
        self.world_seed = seed;
        self
    }

    /// Defaults for tests and benches: without directory records (the command's default
    /// writes some: [`Options::with_directory`]).
    pub fn new(tenants: u32, events: u64, seed: u64) -> Self {
        Self {
            tenants,
            events,
            seed,
            violations: 0.1,
            // INVARIANT: a constant, valid date.
            start: EventTime::parse("2020-04-27").unwrap_or_default(),
            days: 10,
            directory_share: 0.0,
            tenant: None,
            world_seed: None,
            detection_share: 0.0,
        }
    }
}

/// A partner tenant of the generated world.
pub(crate) struct Tenant {
    pub id: String,
    pub domain: String,
    pub users: Vec<User>,
    pub customers: Vec<String>,
    /// Uses federation with a third-party IdP.
    pub federated: bool,
    /// How far this tenant is from ready: its share of violations is `violations * risk`.
    pub risk: f64,
}

/// An agent.
pub(crate) struct User {
    pub id: String,
    pub upn: String,
    pub name: String,
    pub roles: Vec<&'static str>,
    pub guest: bool,
    pub registered: bool,
    pub session: String,
}

fn guid(rng: &mut ChaCha8Rng) -> String {
    let a: u128 = rng.random();
    let h = format!("{a:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

const ROLES: [&str; 5] = [
    "AdminAgent",
    "SalesAgent",
    "HelpdeskAgent",
    "GlobalAdmin",
    "BillingAdmin",
];
const FIRST: [&str; 12] = [
    "Jane", "Trent", "John", "Aiko", "Mateo", "Priya", "Lars", "Amara", "Chen", "Sofia", "Omar",
    "Eva",
];
const LAST: [&str; 8] = [
    "Smith", "Garcia", "Tanaka", "Okafor", "Novak", "Silva", "Kim", "Berg",
];

fn world(o: &Options, rng: &mut ChaCha8Rng) -> Vec<Tenant> {
    (0..o.tenants)
        .map(|n| {
            // Partners differ: about 30 % clean, 30 % nearly there, the rest behind; the
            // mean stays at `violations`.
            let risk = match rng.random_range(0..100) {
                0..30 => 0.0,
                30..60 => 0.5,
                60..85 => 1.5,
                _ => 3.0,
            };
            let bad_share = (o.violations * risk).min(1.0);
            let id = guid(rng);
            let domain = format!("partner{n:04}.onmicrosoft.com");
            let users = (0..rng.random_range(4..24))
                .map(|k| {
                    let first = FIRST[rng.random_range(0..FIRST.len())];
                    let last = LAST[rng.random_range(0..LAST.len())];
                    let nroles = if rng.random_bool(0.2) { 2 } else { 1 };
                    let mut roles: Vec<&'static str> = (0..nroles)
                        .map(|_| ROLES[rng.random_range(0..ROLES.len())])
                        .collect();
                    roles.dedup();
                    User {
                        id: guid(rng),
                        upn: format!(
                            "{}.{}{k}@{domain}",
                            first.to_lowercase(),
                            last.to_lowercase()
                        ),
                        name: format!("{first} {last}"),
                        roles,
                        guest: rng.random_bool(0.08),
                        registered: !rng.random_bool(bad_share),
                        session: guid(rng),
                    }
                })
                .collect();
            let customers = (0..rng.random_range(2..12)).map(|_| guid(rng)).collect();
            Tenant {
                id,
                domain,
                users,
                customers,
                federated: rng.random_bool(0.15),
                risk,
            }
        })
        .collect()
}

/// Writes the stream: directory facts first, then events in time order.
pub fn write(o: &Options, out: &mut dyn Write) -> io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    let mut tenants = match o.world_seed {
        Some(seed) => world(o, &mut ChaCha8Rng::seed_from_u64(seed)),
        None => world(o, &mut rng),
    };
    if let (Some(id), Some(first)) = (&o.tenant, tenants.first_mut()) {
        first.id.clone_from(id);
    }
    let mut dir = (o.directory_share > 0.0)
        .then(|| directory::Directory::new(o.seed, o.directory_share, o.violations, &tenants));
    let mut scenarios =
        (o.detection_share > 0.0).then(|| detections::Detections::new(o.seed, o.detection_share));
    let mut tokens = shapes::TokenMint::new();
    let mut written = 0u64;
    let mut line = Vec::with_capacity(8192);
    let emit = |line: &mut Vec<u8>, out: &mut dyn Write, written: &mut u64| -> io::Result<bool> {
        if *written >= o.events {
            return Ok(false);
        }
        line.push(b'\n');
        out.write_all(line)?;
        line.clear();
        *written += 1;
        Ok(true)
    };

    // Directory facts at the start: roles, registration, some exceptions.
    // The first tenant's Graph exports stand for its registration facts.
    let t0 = o.start;
    for (n, t) in tenants.iter().enumerate() {
        let exports = dir.as_mut().filter(|_| n == 0 && o.graph_exports());
        for u in &t.users {
            for role in &u.roles {
                shapes::role_assignment(&mut line, t, u, role, t0);
                if !emit(&mut line, out, &mut written)? {
                    return Ok(());
                }
            }
            if exports.is_none() {
                shapes::registration(&mut line, t, u, t0.plus_seconds(60));
                if !emit(&mut line, out, &mut written)? {
                    return Ok(());
                }
            }
        }
        if let Some(d) = exports {
            for page in d.exports(t, t0.plus_seconds(60)) {
                shapes::write(&mut line, &page);
                if !emit(&mut line, out, &mut written)? {
                    return Ok(());
                }
            }
        }
        if t.federated && rng.random_bool(0.5) {
            shapes::exception(
                &mut line,
                t,
                "third_party_mfa_not_recognised",
                "requested",
                t0,
                None,
            );
            emit(&mut line, out, &mut written)?;
            shapes::exception(
                &mut line,
                t,
                "third_party_mfa_not_recognised",
                "approved",
                t0.plus_seconds(2 * 86_400),
                Some(t0.plus_seconds(90 * 86_400)),
            );
            emit(&mut line, out, &mut written)?;
        } else if rng.random_bool(0.1) {
            shapes::exception(&mut line, t, "needs_more_time", "requested", t0, None);
            emit(&mut line, out, &mut written)?;
        }
    }

    // Events in time order, spread over the days by the share of the stream written.
    let first = written;
    let total = o.events.saturating_sub(first).max(1) as i128;
    let span = i128::from(o.days) * i128::from(MICROS_PER_DAY - 3_600_000_000);
    let mut now = t0.plus_seconds(3600);
    while written < o.events {
        let due = t0.0 + 3_600_000_000 + (span * i128::from(written - first) / total) as i64;
        let scenario = scenarios
            .as_mut()
            .is_some_and(detections::Detections::next_is_scenario);
        if let Some(d) = scenarios.as_mut().filter(|_| scenario) {
            now = EventTime(now.0.max(due) + d.jitter());
            for (at, doc) in d.scenario(&tenants, now) {
                now = at;
                shapes::write(&mut line, &doc);
                if !emit(&mut line, out, &mut written)? {
                    return Ok(());
                }
            }
            continue;
        }
        let audit = dir
            .as_mut()
            .is_some_and(directory::Directory::next_is_audit);
        if let Some(d) = dir.as_mut().filter(|_| audit) {
            now = EventTime(now.0.max(due) + d.jitter());
            d.audit(&mut line, &tenants, now);
            if !emit(&mut line, out, &mut written)? {
                break;
            }
            continue;
        }
        now = EventTime(now.0.max(due) + rng.random_range(0..1_000_000));
        let t = &tenants[rng.random_range(0..tenants.len())];
        let u = &t.users[rng.random_range(0..t.users.len())];
        let bad = rng.random_bool((o.violations * t.risk).min(1.0));
        let roll: f64 = rng.random();
        // Document shares: ~45 % sign-ins, ~5 % batches, ~32 % API calls (bursts of 4.5
        // on average), ~18 % dashboard requests.
        if roll < 0.067 {
            shapes::sign_in_batch(
                &mut line,
                &mut rng,
                t,
                u,
                now,
                bad,
                (o.violations * t.risk).min(1.0),
            );
        } else if roll < 0.666 {
            shapes::sign_in(&mut line, &mut rng, t, u, now, bad);
        } else if roll < 0.761 {
            // Integrations call in bursts (paging, one call per customer), one token each.
            let burst = rng.random_range(1..=8);
            for i in 0..burst {
                shapes::api_request(
                    &mut line,
                    &mut rng,
                    &mut tokens,
                    t,
                    u,
                    now.plus_seconds(i),
                    bad,
                );
                if i + 1 < burst && !emit(&mut line, out, &mut written)? {
                    return Ok(());
                }
            }
        } else {
            shapes::dashboard_request(&mut line, &mut rng, t, u, now, bad);
        }
        if !emit(&mut line, out, &mut written)? {
            break;
        }
    }
    Ok(())
}

/// The generated stream in memory (tests and benches).
pub fn to_vec(o: &Options) -> Vec<u8> {
    let mut v = Vec::new();
    // INVARIANT: writing to a Vec cannot fail.
    let _ = write(o, &mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        let a = to_vec(&Options::new(3, 500, 7));
        let b = to_vec(&Options::new(3, 500, 7));
        let c = to_vec(&Options::new(3, 500, 8));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.iter().filter(|b| **b == b'\n').count(), 500);
    }

    #[test]
    fn directory_records_are_deterministic_and_a_share_of_0_writes_none() {
        let plain = to_vec(&Options::new(3, 2000, 7));
        let with = |share: f64, tenant: Option<&str>| {
            to_vec(
                &Options::new(3, 2000, 7)
                    .with_directory(share, tenant)
                    .unwrap(),
            )
        };
        assert_eq!(with(0.0, None), plain);
        let a = with(0.3, Some("first-tenant"));
        assert_eq!(a, with(0.3, Some("first-tenant")));
        assert_ne!(a, plain);
        let text = String::from_utf8_lossy(&a);
        assert!(text.contains(r#""category":"AuditLogs""#));
        assert!(text.contains("delegatedAdminRelationships"));
        assert!(!String::from_utf8_lossy(&with(0.3, None)).contains("@odata.context"));
    }

    #[test]
    fn detection_scenarios_are_deterministic_and_a_share_of_0_writes_none() {
        let plain = to_vec(&Options::new(3, 3000, 7));
        let with = |share: f64| to_vec(&Options::new(3, 3000, 7).with_detections(share).unwrap());
        assert_eq!(with(0.0), plain);
        let a = with(0.05);
        assert_eq!(a, with(0.05));
        let text = String::from_utf8_lossy(&a);
        for marker in [
            r#""errorCode":500121"#,
            r#""originalTransferMethod":"deviceCodeFlow""#,
            r#""riskLevelAggregated":"high""#,
            r#""errorCode":50126"#,
        ] {
            assert!(text.contains(marker), "no {marker} in the scenarios");
        }
        assert!(Options::new(3, 10, 7).with_detections(1.5).is_err());
        // Every line is one JSON document, in time order of its first record.
        assert_eq!(text.lines().count(), 3000);
    }

    /// The values of `key` ("tenantId", "id") in a generated stream.
    fn values(stream: &[u8], key: &str) -> std::collections::BTreeSet<String> {
        std::str::from_utf8(stream)
            .unwrap()
            .lines()
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                let mut found = None;
                find(&v, key, &mut found);
                found
            })
            .collect()
    }

    fn find(v: &serde_json::Value, key: &str, out: &mut Option<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    match x.as_str() {
                        Some(s) if k == key && out.is_none() => *out = Some(s.to_owned()),
                        _ => find(x, key, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| find(x, key, out)),
            _ => {}
        }
    }

    #[test]
    fn one_world_seed_gives_the_same_tenants_with_other_events() {
        let a = to_vec(&Options::new(3, 2000, 7).with_world_seed(Some(1)));
        let b = to_vec(&Options::new(3, 2000, 8).with_world_seed(Some(1)));
        assert_eq!(values(&a, "tenantId"), values(&b, "tenantId"));
        assert!(!values(&a, "tenantId").is_empty());
        let (ids_a, ids_b) = (values(&a, "id"), values(&b, "id"));
        assert!(!ids_a.is_empty());
        assert!(ids_a.is_disjoint(&ids_b), "event ids repeat across seeds");
        // Without a world seed the stream is the one it always was.
        assert_eq!(
            to_vec(&Options::new(3, 500, 7).with_world_seed(None)),
            to_vec(&Options::new(3, 500, 7))
        );
    }
}
