//! Golden digests: the rows a release writes must not change unless a commit says why.
//!
//! The digests below were taken with the release before the rules moved into the policy
//! files (commit c7f3820, `when = "<rust condition>"`), so a change that must not change
//! behaviour (rules as data, a faster decoder, a refactor) proves it here: the four files
//! of every conformance case and of a large generated run, under both shipped versions,
//! byte for byte. A change that is meant to change rows updates the digest in the same
//! commit and says in its message which rows changed and why.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

mod common;

use sha2::{Digest, Sha256};
use std::path::Path;

const FILES: [&str; 4] = [
    "findings.ndjson",
    "rollout_daily.ndjson",
    "agents.ndjson",
    "dead_letters.ndjson",
];
const POLICIES: [&str; 2] = ["partner-mfa-2019-09", "partner-mfa-2020-05"];

/// The binary under test; `MFA_TEST_GOLDEN_BIN` names another build (to take the
/// digests of a release: `MFA_TEST_GOLDEN_BIN=/path/to/old/mfa-audit cargo test --test
/// golden`, then copy the digests the failures print).
fn bin() -> std::process::Command {
    match std::env::var_os("MFA_TEST_GOLDEN_BIN") {
        Some(p) => std::process::Command::new(p),
        None => common::bin(),
    }
}

/// Runs `mfa-audit run` on `input` (a path relative to `dir`) and feeds the four files
/// into `h`, each behind its name and length.
fn digest_run(dir: &Path, input: &str, policy: &str, h: &mut Sha256) {
    digest_run_with(dir, input, policy, &[], h);
}

/// [`digest_run`] with more arguments to `run`.
fn digest_run_with(dir: &Path, input: &str, policy: &str, more: &[&str], h: &mut Sha256) {
    let out = dir.join(format!("out-{policy}"));
    let o = bin()
        .current_dir(dir)
        .args(["run", "-q", "--input", input, "--policy", policy])
        .args(more)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    common::ok(o, &format!("run {input} under {policy}"));
    for f in FILES {
        let bytes = std::fs::read(out.join(f)).unwrap();
        h.update(format!("{policy}/{f} {}\n", bytes.len()));
        h.update(&bytes);
    }
}

fn hex(h: Sha256) -> String {
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Digest of every original conformance case's rows under both versions. Cases added
/// after the digest was taken (named in `NEW_CASES`) are left out: their rows are checked
/// by the conformance runner.
fn conformance_digest() -> String {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = Sha256::new();
    for path in common::conformance_cases() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !ORIGINAL_CASES.contains(&name.as_str()) {
            continue;
        }
        let case = common::case(&path);
        let docs: Vec<String> = case["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(common::document)
            .collect();
        std::fs::write(tmp.path().join("case.ndjson"), docs.join("\n") + "\n").unwrap();
        h.update(format!("case {name}\n"));
        for p in POLICIES {
            digest_run(tmp.path(), "case.ndjson", p, &mut h);
        }
    }
    hex(h)
}

/// The conformance cases the digest was taken over.
const ORIGINAL_CASES: [&str; 9] = [
    "api_app_user_mfa.json",
    "bad_input.json",
    "dashboard_mfa.json",
    "dashboard_role_matrix.json",
    "delegated_admin.json",
    "registration.json",
    "seed_examples.json",
    "sign_in_rules.json",
    "technical_exceptions.json",
];

/// The digest of a generated stream's rows under both seed versions. The stream has no
/// directory record and no detection scenario (`--directory-share 0 --detection-share
/// 0`): these digests were taken before the generator wrote any, and a share of 0 leaves
/// every document as it was. The stream is generated
/// by the binary under test (a release before `--directory-share` has no such flag), the
/// rows by `bin()`.
fn generated_digest(tenants: u32, events: u32, seed: u64) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let o = common::bin()
        .current_dir(tmp.path())
        .args([
            "generate",
            "--directory-share",
            "0",
            "--detection-share",
            "0",
            "--tenants",
            &tenants.to_string(),
            "--events",
            &events.to_string(),
            "--seed",
            &seed.to_string(),
            "--out",
            "gen.ndjson",
        ])
        .output()
        .unwrap();
    common::ok(o, "generate");
    let mut h = Sha256::new();
    for p in POLICIES {
        digest_run(tmp.path(), "gen.ndjson", p, &mut h);
    }
    hex(h)
}

// Changed (issue 21): a wrong-type dead letter's reason no longer quotes the value, which
// may be a credential ("a string that is not an integer"); bad_input.json's line 56.
const CONFORMANCE: &str = "56073422a769c21e04f5a4f5b89f761d6dac34299da4306234fb2591d702b1ab";

#[test]
fn conformance_rows_are_byte_identical_to_the_release() {
    assert_eq!(
        conformance_digest(),
        CONFORMANCE,
        "the conformance folder's rows changed"
    );
}

const GENERATED_50_200K_SEED_7: &str =
    "dd0d87ad7a842ccb537468f76b1c2c1fc17218a05fa48c6ea3431740c5799b0f";

#[test]
fn a_large_generated_run_is_byte_identical_to_the_release() {
    assert_eq!(
        generated_digest(50, 200_000, 7),
        GENERATED_50_200K_SEED_7,
        "the rows of `generate --tenants 50 --events 200000 --seed 7` changed"
    );
}

/// Random generated streams (seeds, tenant and event counts drawn once at random): the
/// rows are those the release wrote for each.
const SEEDS: [(u32, u32, u64, &str); 16] = [
    (
        22,
        1508,
        1096085541227,
        "4d11caf6d014ce0ba1e54047cde643a5a4bc648247c971a00748280f8b1bfc6e",
    ),
    (
        12,
        4119,
        39418466837,
        "5929b400358c8ca859a4f2868433e8068d66d1b179259665e8ce4a34de23244b",
    ),
    (
        2,
        3141,
        588186807562,
        "91a42527d9a5c11e3a624dc5d286924c0e652eb3435f6b95c8869402272f680f",
    ),
    (
        3,
        3378,
        366041507986,
        "347dd4314c46c1cfa3d13968624e845d4a42e5b146a9417875f1eaf2226aa971",
    ),
    (
        2,
        2881,
        778043346884,
        "911f49469392035e6d68e02f1ff1628589661df5d712918a11e8932a1b3b937e",
    ),
    (
        9,
        2591,
        829596905311,
        "e083c09fb7665f11a722b8d0710f9a5bc1641acbd3fd4812d11910f63ffeaf1c",
    ),
    (
        13,
        5956,
        71115699182,
        "d1768279d6c04ebc1aa4d9e4884b233d1971b4c00546a1937b8e083decddb7de",
    ),
    (
        22,
        4275,
        819921962446,
        "ff36c5041a00ff3a828f66d48e4b40673fdb739eceed3960055ed440dc4957e6",
    ),
    (
        26,
        516,
        789922989493,
        "fdd1412e9a97cec3c33f2d8088048a3992d558322555e64577ee7585aef2ebe3",
    ),
    (
        6,
        3694,
        1077707504760,
        "46d176dbf509cc1bd040cec074dac48f8976f88de6b52a4f9f799bff07c8c40f",
    ),
    (
        10,
        5796,
        392687678542,
        "655f1178b592391f629cb8d798d5e868f9cd29f92e3f788e42b7304bd5cb098d",
    ),
    (
        11,
        5769,
        923121532907,
        "c473ade096832b4106af835c9f700bc6b05999ef412c76973f7f521cda6efe74",
    ),
    (
        19,
        4013,
        380876180818,
        "e9e8cb48b4e4407bc2d6b4f6fa0bf540e82c3a6ba90f8be0d02973580f0dc3e1",
    ),
    (
        18,
        1413,
        483174907405,
        "641a3937c8f14e8f03e923521ee5d8b0e8ccc98652554f12dfd11d6f5c3d26ff",
    ),
    (
        14,
        4642,
        384318187097,
        "a15698bd07a419c4908922f2bc4b03015c7abdd9df7fb81b6cd85ac21ecc150c",
    ),
    (
        13,
        2105,
        818297217538,
        "148b8c9616de1896b3ea40e903c4e39098c78ad45bfbcff447be13766a515d24",
    ),
];

#[test]
fn random_generated_streams_give_the_release_rows() {
    let mut wrong = Vec::new();
    for (tenants, events, seed, want) in SEEDS {
        let got = generated_digest(tenants, events, seed);
        if got != want {
            wrong.push(format!("({tenants}, {events}, {seed}, \"{got}\"),"));
        }
    }
    assert!(wrong.is_empty(), "rows changed for:\n{}", wrong.join("\n"));
}

/// The default stream (directory records included: `--directory-share` 0.05) with the
/// first tenant's Graph exports (`--tenant`), under partner-mfa-2026 with the same
/// `--tenant`: every kind and every directory rule. Without detection scenarios
/// (`--detection-share 0`), which came after this digest: a share of 0 writes none.
fn generated_directory_digest() -> String {
    const TENANT: &str = "3f1c2a7e-5b8d-4e6f-9a10-2c4d6e8f0a1b";
    let tmp = tempfile::tempdir().unwrap();
    let o = common::bin()
        .current_dir(tmp.path())
        .args([
            "generate",
            "--tenants",
            "20",
            "--events",
            "30000",
            "--seed",
            "1",
            "--detection-share",
            "0",
        ])
        .args([
            "--start",
            "2026-03-27",
            "--tenant",
            TENANT,
            "--out",
            "gen.ndjson",
        ])
        .output()
        .unwrap();
    common::ok(o, "generate");
    let mut h = Sha256::new();
    digest_run_with(
        tmp.path(),
        "gen.ndjson",
        "partner-mfa-2026",
        &["--tenant", TENANT],
        &mut h,
    );
    hex(h)
}

// Changed when merged beside the privileged directory roles (issue 17): the same 6,137
// findings, with two kinds of detail changed: MFA_REQUIREMENT_REMOVED and
// SECURITY_INFO_DELETED name the user's directory roles too ("partner roles ..., directory
// roles ..., eligible ..."), and DELEGATED_ADMIN_NO_MFA's "MFA required by:" now gives its
// fallback text for an empty provider list (a template's `{attr|text}` stands for an empty
// list too) where it gave nothing.
const GENERATED_DIRECTORY_2026: &str =
    "9c6f56a3122faf4eebdeb598ebcab576debc3a41c02021fcecff835dc9916cfd";

#[test]
fn the_default_generated_run_with_directory_records_keeps_its_rows() {
    assert_eq!(
        generated_directory_digest(),
        GENERATED_DIRECTORY_2026,
        "the rows of the default `generate --tenant` stream under partner-mfa-2026 changed"
    );
}
