//! No allocation per event on the sign-in path: a counting allocator (dhat's, in its
//! testing mode) counts every allocation while sign-in records are decoded, judged under
//! every shipped policy and applied to their tenant's state. After a warm-up (users known,
//! maps grown), 3000 new sign-ins (new ids, known users) may allocate only as the replay
//! sets grow (amortised), not once per event. One allocation per document remains, inside
//! serde_json: skipping a field that nests a container in a container (Microsoft's
//! `appliedConditionalAccessPolicies`) uses a stack it allocates per `Deserializer`; the
//! test counts it apart, on whole records, against records without such fields.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

mod common;

use mfa_audit::pipeline::{Origin, Processor};
use mfa_audit::policy::Finding;
use mfa_audit::sink::{DeadLetter, RowSink};

/// dhat allows one profiler at a time: the tests take turns.
static ONE_PROFILER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// dhat's heap profiler in its testing mode counts every allocation of the process.
#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// Blocks allocated so far.
fn allocations() -> u64 {
    dhat::HeapStats::get().total_blocks
}

/// A sink that keeps only counts (writing rows is the sink's business, not the path's).
#[derive(Default)]
struct Counts {
    findings: u64,
    dead_letters: u64,
}

impl RowSink for Counts {
    type Error = std::convert::Infallible;
    fn finding(&mut self, _: &Finding) -> Result<(), Self::Error> {
        self.findings += 1;
        Ok(())
    }
    fn dead_letter(&mut self, _: &DeadLetter) -> Result<(), Self::Error> {
        self.dead_letters += 1;
        Ok(())
    }
}

/// Clean sign-in records of the generated stream (Azure Monitor records, as exported),
/// each with a `"id":"` we can vary.
fn clean_sign_ins(p: &Processor) -> Vec<String> {
    let stream = String::from_utf8(mfa_audit::generate::to_vec(
        &mfa_audit::generate::Options::new(3, 4000, 5),
    ))
    .unwrap();
    let mut sink = Counts::default();
    let mut clean = Vec::new();
    for (i, line) in stream.lines().enumerate() {
        let pos = format!("line {i}");
        let origin = Origin {
            source: "warm-up",
            position: &pos,
        };
        let before = sink.findings;
        let Ok(out) = p.process(origin, line.as_bytes(), None, &mut sink);
        let sign_in = line.contains("\"properties\"") && !line.starts_with("{\"records\"");
        if sign_in && out.events == 1 && sink.findings == before && !line.contains("\\") {
            clean.push(line.to_owned());
        }
    }
    assert!(clean.len() > 200, "{} clean sign-ins", clean.len());
    clean
}

/// `line` with a new record id; `flat`: without the fields the rules do not read whose
/// value nests a container in a container (`appliedConditionalAccessPolicies`, ...).
fn with_new_id(line: &str, n: usize, flat: bool) -> String {
    let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["properties"]["id"] = format!("00000000-0000-4000-8000-{n:012}").into();
    if flat {
        let read = [
            "authenticationDetails",
            "authenticationRequirementPolicies",
            "status",
            "deviceDetail",
        ];
        let nests = |v: &serde_json::Value| match v {
            serde_json::Value::Array(a) => a.iter().any(|e| e.is_array() || e.is_object()),
            serde_json::Value::Object(o) => o.values().any(|e| e.is_array() || e.is_object()),
            _ => false,
        };
        let keep = |k: &String, val: &mut serde_json::Value| {
            k == "properties" || read.contains(&k.as_str()) || !nests(val)
        };
        v["properties"].as_object_mut().unwrap().retain(keep);
        v.as_object_mut().unwrap().retain(keep);
    }
    serde_json::to_string(&v).unwrap()
}

/// Allocations while `p` processes `docs` (after a first pass over other documents of the
/// same users, so that only what grows per event could allocate), and the events.
fn count(p: &Processor, clean: &[String], flat: bool, first: usize) -> (u64, u32) {
    let docs: Vec<String> = (0..4000)
        .map(|i| with_new_id(&clean[i % clean.len()], first + i, flat))
        .collect();
    let mut sink = Counts::default();
    let origin = Origin {
        source: "alloc",
        position: &"line",
    };
    // A first pass of 1000 grows what grows once (the replay set of the day).
    for d in &docs[..1000] {
        let Ok(_) = p.process(origin, d.as_bytes(), None, &mut sink);
    }
    let before = allocations();
    let mut events = 0;
    for d in &docs[1000..] {
        let Ok(out) = p.process(origin, d.as_bytes(), None, &mut sink);
        events += out.events;
    }
    let n = allocations() - before;
    assert_eq!(sink.findings, 0, "clean sign-ins");
    assert_eq!(sink.dead_letters, 0);
    (n, events)
}

#[test]
fn clean_sign_ins_allocate_nothing_per_event() {
    let _one = ONE_PROFILER.lock().unwrap_or_else(|e| e.into_inner());
    let _profiler = dhat::Profiler::builder().testing().build();
    // The compliance versions: every shipped policy but the detection pack, whose windows
    // and histories record sign-ins (below).
    let p = common::processor_of(&COMPLIANCE);
    let clean = clean_sign_ins(&p);

    // Our path: decoding, judging under four policies, applying. Only the replay sets
    // grow (a set per tenant and day, doubling now and then, under each policy): about 25
    // allocations per policy in all, amortised, never once per event.
    let (ours, events) = count(&p, &clean, true, 10_000_000);
    assert_eq!(events, 3000, "every sign-in applied, none a replay");
    assert!(
        ours <= 150,
        "{ours} allocations for 3000 sign-ins ({:.2} per event)",
        ours as f64 / 3000.0
    );

    // Whole exported records: serde_json, skipping a field that nests containers
    // (`appliedConditionalAccessPolicies`), keeps its stack in a buffer it allocates once
    // per document (`Deserializer::ignore_value`); nothing else may.
    let (whole, events) = count(&p, &clean, false, 20_000_000);
    assert_eq!(events, 3000);
    assert!(
        whole <= 3000 + 150,
        "{whole} allocations for 3000 whole records ({:.2} per event)",
        whole as f64 / 3000.0
    );
}

/// The shipped compliance versions (every shipped policy but the detection pack).
const COMPLIANCE: [&str; 4] = [
    "partner-mfa-2019-09",
    "partner-mfa-2020-05",
    "partner-mfa-2026",
    "azure-mandatory-mfa",
];

/// With the detection pack beside the compliance versions, a clean sign-in allocates for
/// what the pack's windows and history read and record: the group keys and the tuple of
/// each (`sign_in.user_id`, `sign_in.ip`, the country), and the per-event lists of what
/// they read; a bounded handful per event, never growing with the stream.
#[test]
fn the_detection_pack_allocates_a_bounded_handful_per_sign_in() {
    let _one = ONE_PROFILER.lock().unwrap_or_else(|e| e.into_inner());
    let _profiler = dhat::Profiler::builder().testing().build();
    let mut names = COMPLIANCE.to_vec();
    names.push("entra-signin-detections");
    assert_eq!(
        names.len(),
        mfa_audit::policy::SHIPPED.len(),
        "a shipped policy unaccounted for"
    );
    let p = common::processor_of(&names);
    let clean = clean_sign_ins(&p);
    let (n, events) = count(&p, &clean, true, 30_000_000);
    assert_eq!(events, 3000);
    let per_event = n as f64 / 3000.0;
    eprintln!("with entra-signin-detections: {n} allocations for 3000 clean sign-ins ({per_event:.2} per event)");
    assert!(
        per_event <= 8.0,
        "{n} allocations for 3000 sign-ins ({per_event:.2} per event)"
    );
    assert!(
        per_event >= 1.0,
        "the pack's windows read nothing? {n} allocations"
    );
}
