//! `mfa-audit diff --policy A --policy B`: the same events under two policies, one pass.
//! Writes `DIR/diff.ndjson` (per tenant and rule: findings and enforced findings under
//! each; per tenant: the 7-day readiness under each) and prints the tenants whose
//! readiness changes.

use super::AppError;
use super::{each_document, processor};
use crate::cli::DiffArgs;
use mfa_audit::pipeline::Origin;
use mfa_audit::policy::Finding;
use mfa_audit::sink::{DeadLetter, RowSink};
use mfa_audit::source::LinePosition;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

/// Findings counted by (tenant, rule, policy version): (all, enforced).
#[derive(Default)]
struct Counts {
    by: BTreeMap<(String, String, String), (u64, u64)>,
    dead_letters: u64,
}

impl RowSink for Counts {
    type Error = std::convert::Infallible;
    fn finding(&mut self, f: &Finding) -> Result<(), Self::Error> {
        let c = self
            .by
            .entry((
                f.tenant_id.clone(),
                f.rule_id.to_string(),
                f.policy_version.to_string(),
            ))
            .or_default();
        c.0 += 1;
        c.1 += u64::from(f.enforced);
        Ok(())
    }
    fn dead_letter(&mut self, _: &DeadLetter) -> Result<(), Self::Error> {
        self.dead_letters += 1;
        Ok(())
    }
}

/// One row of `diff.ndjson`.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DiffRow {
    /// A rule's findings in a tenant under each policy.
    Rule {
        /// Partner tenant.
        tenant_id: String,
        /// Rule id.
        rule_id: String,
        /// Findings under A.
        findings_a: u64,
        /// Findings under B.
        findings_b: u64,
        /// Enforced findings under A.
        enforced_a: u64,
        /// Enforced findings under B.
        enforced_b: u64,
    },
    /// A tenant's 7-day readiness on its newest day under each policy.
    Tenant {
        /// Partner tenant.
        tenant_id: String,
        /// Under A (`none` when the tenant has no day under it).
        status_7d_a: String,
        /// Under B.
        status_7d_b: String,
    },
}

/// Runs the command.
pub fn run(args: &DiffArgs) -> Result<(), AppError> {
    if args.policies.len() != 2 {
        return Err(AppError::Usage(format!(
            "`diff` compares two policies: give `--policy A --policy B` ({} given)",
            args.policies.len()
        )));
    }
    let p = processor(&args.policies, &args.replay)?;
    let (a, b) = match p.engines() {
        [a, b] => (a.policy().version.clone(), b.policy().version.clone()),
        _ => return Err(AppError::Usage("two policies are needed".into())),
    };
    let mut counts = Counts::default();
    let mut docs = 0u64;
    each_document(&args.replay, &mut |source, doc| {
        docs += 1;
        let position = LinePosition(doc.line);
        let origin = Origin {
            source,
            position: &position,
        };
        let oversized = doc.oversized.then_some(doc.len);
        let Ok(_) = p.process(origin, doc.bytes, oversized, &mut counts);
    })?;
    let rows = rows(&p, &counts, &a);
    mfa_audit::sink::file::create_dir(&args.out)
        .map_err(|e| AppError::Io(format!("cannot create `{}`: {e}", args.out.display())))?;
    let path = args.out.join("diff.ndjson");
    let mut text = String::new();
    for r in &rows {
        let line = serde_json::to_string(r).map_err(|e| AppError::Io(e.to_string()))?;
        let _ = writeln!(text, "{line}");
    }
    mfa_audit::sink::file::write_new(&path, |w| w.write_all(text.as_bytes()))
        .map_err(|e| AppError::Io(format!("cannot write `{}`: {e}", path.display())))?;
    let mut out = std::io::stdout().lock();
    out.write_all(table(&rows, &a, &b).as_bytes())
        .map_err(|e| AppError::Io(format!("cannot write to stdout: {e}")))?;
    eprintln!(
        "mfa-audit: {docs} documents, {} dead letters; rows in `{}`",
        counts.dead_letters,
        path.display()
    );
    Ok(())
}

fn rows(p: &mfa_audit::pipeline::Processor, counts: &Counts, a: &str) -> Vec<DiffRow> {
    let mut per_rule: BTreeMap<(String, String), [u64; 4]> = BTreeMap::new();
    for ((tenant, rule, version), (n, enforced)) in &counts.by {
        let e = per_rule.entry((tenant.clone(), rule.clone())).or_default();
        if version == a {
            e[0] += n;
            e[2] += enforced;
        } else {
            e[1] += n;
            e[3] += enforced;
        }
    }
    let mut status: BTreeMap<String, [String; 2]> = BTreeMap::new();
    for r in p.readiness() {
        let slot = status
            .entry(r.tenant_id.clone())
            .or_insert_with(|| ["none".into(), "none".into()]);
        let i = usize::from(*r.policy_version != *a);
        if let Some(s) = slot.get_mut(i) {
            *s = r.status_7d.name().to_owned();
        }
    }
    let mut rows = Vec::new();
    for ((tenant_id, rule_id), [fa, fb, ea, eb]) in per_rule {
        rows.push(DiffRow::Rule {
            tenant_id,
            rule_id,
            findings_a: fa,
            findings_b: fb,
            enforced_a: ea,
            enforced_b: eb,
        });
    }
    for (tenant_id, [sa, sb]) in status {
        rows.push(DiffRow::Tenant {
            tenant_id,
            status_7d_a: sa,
            status_7d_b: sb,
        });
    }
    rows
}

/// The tenants whose readiness changes, and the rules whose findings change most.
pub fn table(rows: &[DiffRow], a: &str, b: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "A = {a}\nB = {b}");
    let changed: Vec<&DiffRow> = rows
        .iter()
        .filter(|r| matches!(r, DiffRow::Tenant { status_7d_a, status_7d_b, .. } if status_7d_a != status_7d_b))
        .collect();
    let tenants = rows
        .iter()
        .filter(|r| matches!(r, DiffRow::Tenant { .. }))
        .count();
    let _ = writeln!(
        s,
        "\nreadiness (7 days) changes for {} of {tenants} tenants:",
        changed.len()
    );
    if !changed.is_empty() {
        let _ = writeln!(s, "{:<38} {:<9} {:<9}", "tenant", "A", "B");
    }
    for r in changed {
        if let DiffRow::Tenant {
            tenant_id,
            status_7d_a,
            status_7d_b,
        } = r
        {
            let tenant_id = mfa_audit::event::scrub::terminal(tenant_id);
            let _ = writeln!(s, "{tenant_id:<38} {status_7d_a:<9} {status_7d_b:<9}");
        }
    }
    let mut by_rule: BTreeMap<&str, [u64; 4]> = BTreeMap::new();
    for r in rows {
        if let DiffRow::Rule {
            rule_id,
            findings_a,
            findings_b,
            enforced_a,
            enforced_b,
            ..
        } = r
        {
            let e = by_rule.entry(rule_id).or_default();
            e[0] += findings_a;
            e[1] += findings_b;
            e[2] += enforced_a;
            e[3] += enforced_b;
        }
    }
    let _ = writeln!(
        s,
        "\nfindings by rule, all tenants:\n{:<32} {:>9} {:>9} {:>11} {:>11}",
        "rule", "A", "B", "enforced A", "enforced B"
    );
    for (rule, [fa, fb, ea, eb]) in by_rule {
        let mark = if fa != fb || ea != eb { "  *" } else { "" };
        let _ = writeln!(s, "{rule:<32} {fa:>9} {fb:>9} {ea:>11} {eb:>11}{mark}");
    }
    s
}
