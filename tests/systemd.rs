//! `examples/mfa-audit.service`: systemd reads it without a complaint (`systemd-analyze
//! verify`, with ExecStart pointing at the binary built here, in both its forms: as written,
//! and with the commented Kafka-secret wrapper in its place), and its exposure stays low
//! (`systemd-analyze security --offline`). Needs systemd-analyze (Debian: the `systemd`
//! package); without it the test says so and passes, unless run with
//! `--features integration`, where it fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

mod common;

use std::path::Path;
use std::process::Command;

/// The highest overall exposure accepted, in tenths (systemd's scale: 0 safe, 100 exposed;
/// the unit measures 1.1 with systemd 252).
const MAX_EXPOSURE: &str = "15";

fn have_systemd_analyze() -> bool {
    let found = Command::new("sh")
        .args(["-c", "command -v systemd-analyze"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let how = "systemd-analyze is not installed: `apt-get install systemd` (Debian, Ubuntu) \
                   or your distribution's systemd package";
        if cfg!(feature = "integration") {
            panic!("{how}");
        }
        eprintln!("SKIPPED: {how}");
    }
    found
}

/// The unit as written, with ExecStart's program replaced by the binary built here (verify
/// checks that it exists), in a fresh folder under its own name.
fn unit(dir: &Path, text: &str) -> std::path::PathBuf {
    let bin = env!("CARGO_BIN_EXE_mfa-audit");
    let path = dir.join("mfa-audit.service");
    std::fs::write(&path, text.replace("/usr/local/bin/mfa-audit", bin)).unwrap();
    path
}

fn verify(path: &Path) {
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(path)
        .output()
        .unwrap();
    // verify exits 0 on an unknown key or a bad value, and only says so: both must be silent.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success() && said.trim().is_empty(), "{said}");
}

#[test]
fn the_service_unit_verifies_and_is_hardened() {
    if !have_systemd_analyze() {
        return;
    }
    let text = std::fs::read_to_string(common::root().join("examples/mfa-audit.service")).unwrap();
    for key in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "RestrictAddressFamilies=",
        "LoadCredential=clickhouse-password:",
        "Environment=MFA_AUDIT_CLICKHOUSE_PASSWORD_FILE=%d/clickhouse-password",
        "ExecStart=/usr/local/bin/mfa-audit run --config /etc/mfa-audit/stream.toml\n",
    ] {
        assert!(text.contains(key), "the unit lacks {key:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    verify(&unit(dir.path(), &text));

    // The Kafka-secret form: the commented wrapper replaces ExecStart.
    let wrapped: String = text
        .lines()
        .filter(|l| !l.starts_with("ExecStart="))
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.starts_with("ExecStart=") || rest.starts_with("LoadCredential=") => {
                format!("{rest}\n")
            }
            _ => format!("{l}\n"),
        })
        .collect();
    assert!(wrapped.contains("ExecStart=/bin/sh -c") && wrapped.contains("$CREDENTIALS_DIRECTORY"));
    let dir2 = tempfile::tempdir().unwrap();
    verify(&unit(dir2.path(), &wrapped));

    let o = Command::new("systemd-analyze")
        .args([
            "security",
            "--offline=yes",
            &format!("--threshold={MAX_EXPOSURE}"),
        ])
        .arg(unit(dir.path(), &text))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "exposure above {MAX_EXPOSURE} tenths:\n{report}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(report.contains("Overall exposure level"), "{report}");
}

/// The variable the unit sets is one the configuration reads: a password file named by it
/// reaches the ClickHouse settings, so the credential is the password.
#[test]
fn the_units_password_variable_is_a_configuration_key() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("clickhouse-password");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let env = [(
        "MFA_AUDIT_CLICKHOUSE_PASSWORD_FILE".to_owned(),
        secret.display().to_string(),
    )];
    let config = mfa_audit::config::Config::from_env(&env).unwrap();
    assert_eq!(
        config.clickhouse.password_file.as_deref(),
        Some(secret.as_path())
    );
    assert_eq!(config.clickhouse_password("(no file)").unwrap(), "s3cret");
}
