//! Arbitrary bytes as policy text through `policy::load::parse`: TOML, or JSON when the
//! text opens with `{` (TOML cannot). `extends = "partner-mfa-2019-09"` or
//! `"partner-mfa-2020-05"` reaches the shipped policies and the overlay. A policy that
//! loads is then put to work: a `Processor` under it (and the shipped policies beside it) runs a fixed set of events of every
//! kind (`policy_loader_events.ndjson`, taken from tests/conformance) and writes its
//! rollout snapshot, so that whatever the loader accepts, evaluation can run.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_audit::event::token::TokenReader;
use mfa_audit::pipeline::{Origin, Processor};
use mfa_audit::policy::load::{parse, Format};
use mfa_audit::policy::{self, Policy, PolicyError, SHIPPED};
use mfa_audit::sink::MemorySink;
use mfa_audit::telemetry::Metrics;
use std::sync::{Arc, OnceLock};

const EVENTS: &str = include_str!("policy_loader_events.ndjson");

fn metrics() -> &'static Arc<Metrics> {
    static M: OnceLock<Arc<Metrics>> = OnceLock::new();
    M.get_or_init(|| Arc::new(Metrics::new()))
}

/// The shipped policies, parsed once.
fn shipped() -> &'static [Arc<Policy>] {
    static S: OnceLock<Vec<Arc<Policy>>> = OnceLock::new();
    S.get_or_init(|| {
        SHIPPED
            .iter()
            .map(|(n, _)| Arc::new(policy::load(n).expect("shipped policy loads")))
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `extends` may name a file: keep the fuzzer off device and system files, which
    // could block (`/dev/stdin`) or never end (`/dev/zero`); those are not inputs.
    if ["/dev", "/proc", "/sys", "\\"]
        .iter()
        .any(|p| text.contains(p))
    {
        return;
    }
    let format = if text.trim_start().starts_with('{') {
        Format::Json
    } else {
        Format::Toml
    };
    // A directory that does not exist: a relative `extends` file is never found.
    let policy = match parse(text, "/nonexistent-fuzz-dir/fuzz-policy.toml", format) {
        Ok(p) => p,
        Err(e) => {
            if let PolicyError::Invalid { problems, .. } = &e {
                assert!(!problems.is_empty(), "an invalid policy names a problem");
            }
            let _ = e.to_string();
            return;
        }
    };
    // The loaded policy first, the shipped ones beside it (as `--policy` twice): a
    // `Processor` parses every shipped policy it is not given, which would cost more than
    // the input; given them all, it parses none.
    let policy_version = policy.version.clone();
    let mut policies = vec![Arc::new(policy)];
    policies.extend(
        shipped()
            .iter()
            .filter(|s| s.version != policy_version)
            .cloned(),
    );
    let p = Processor::with_policies(policies, TokenReader::new(64), Arc::clone(metrics()));
    let mut sink = MemorySink::default();
    for (i, line) in EVENTS.lines().enumerate() {
        let pos = format!("line {}", i + 1);
        let origin = Origin {
            source: "fuzz",
            position: &pos,
        };
        let Ok(_) = p.process(origin, line.as_bytes(), None, &mut sink);
    }
    let Ok(()) = p.snapshot(&mut sink);
});
