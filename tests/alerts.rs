//! The alert rules: Prometheus' own tools accept them and their unit tests pass, every
//! alert carries severity, summary and a runbook link to a section that exists, every alert
//! is tested firing and staying quiet, and the example Alertmanager routing is valid.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

mod common;

use std::process::Command;

fn tool(name: &str, args: &[&str]) -> String {
    let out = Command::new(name)
        .args(args)
        .current_dir(common::root())
        .output()
        .unwrap_or_else(|e| {
            panic!("`{name}` cannot run ({e}): install it with `scripts/services start prometheus alertmanager` (scripts/test does)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{name} {}:\n{text}", args.join(" "));
    text
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    let check = tool(
        "promtool",
        &["check", "rules", "dashboards/alerts/mfa-audit.yml"],
    );
    assert!(check.contains("SUCCESS: 9 rules found"), "{check}");
    let test = tool(
        "promtool",
        &[
            "test",
            "rules",
            "dashboards/alerts/tests/mfa-audit.test.yml",
        ],
    );
    assert!(test.contains("SUCCESS"), "{test}");
}

#[test]
fn amtool_accepts_the_example_routing() {
    let out = tool(
        "amtool",
        &["check-config", "dashboards/alertmanager.example.yml"],
    );
    assert!(out.contains("3 receivers"), "{out}");
}

#[test]
fn every_alert_has_a_runbook_section_and_is_tested_both_ways() {
    let rules =
        std::fs::read_to_string(common::root().join("dashboards/alerts/mfa-audit.yml")).unwrap();
    let runbook = std::fs::read_to_string(common::root().join("dashboards/RUNBOOK.md")).unwrap();
    let tests =
        std::fs::read_to_string(common::root().join("dashboards/alerts/tests/mfa-audit.test.yml"))
            .unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 9);
    assert_eq!(
        rules.matches("severity: ").count(),
        alerts.len(),
        "each alert has a severity"
    );
    assert_eq!(
        rules.matches("summary: ").count(),
        alerts.len(),
        "each alert has a summary"
    );
    let anchors: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("runbook: \"dashboards/RUNBOOK.md#"))
        .map(|a| a.trim_end_matches('"'))
        .collect();
    assert_eq!(anchors.len(), alerts.len(), "each alert links the runbook");
    for a in anchors {
        assert!(
            runbook.contains(&format!("\n## {a}\n")),
            "RUNBOOK.md has no section `## {a}`"
        );
    }
    for alert in alerts {
        let cases: Vec<&str> = tests
            .split("alertname: ")
            .skip(1)
            .filter(|c| c.starts_with(alert))
            .collect();
        assert!(
            cases.iter().any(|c| c.contains("exp_alerts: []")),
            "{alert} is never tested staying quiet"
        );
        assert!(
            cases.iter().any(|c| c.contains("exp_labels")),
            "{alert} is never tested firing"
        );
    }
}
