//! The file mode on several threads writes exactly the rows of one thread: every file,
//! byte for byte, whatever the thread count and chunk size, over every conformance event,
//! the real records, bad documents, batches spanning tenants, several inputs, and every
//! shipped policy at once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

mod common;

use mfa_audit::pipeline::parallel::{self, Inputs};
use mfa_audit::pipeline::{Origin, Totals};
use mfa_audit::sink::file::FileSink;
use mfa_audit::source::{file as input, Framing, LinePosition};
use std::path::Path;

const FILES: [&str; 5] = [
    "findings.ndjson",
    "dead_letters.ndjson",
    "rollout_daily.ndjson",
    "rollout_surfaces.ndjson",
    "agents.ndjson",
];

/// Three inputs: the conformance events (each case's events in order, with a few bad
/// lines between), the real records, and a generated stream with a batch whose records
/// belong to two tenants.
fn write_inputs(dir: &Path) -> Vec<String> {
    let mut conformance = String::new();
    for (i, doc) in common::conformance_documents().iter().enumerate() {
        conformance.push_str(doc.trim_end());
        conformance.push('\n');
        if i % 97 == 0 {
            conformance.push_str("{\"not\": \"closed\"\n");
        }
    }
    std::fs::write(dir.join("a.ndjson"), conformance).unwrap();

    let mut real = String::new();
    for text in common::realdata_texts() {
        // One document per line: a pretty-printed file becomes one compact line.
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => real.push_str(&(serde_json::to_string(&v).unwrap() + "\n")),
            Err(_) => real.push_str(&text),
        }
        if !real.ends_with('\n') {
            real.push('\n');
        }
    }
    std::fs::write(dir.join("b.ndjson"), real).unwrap();

    let generated = String::from_utf8(mfa_audit::generate::to_vec(
        &mfa_audit::generate::Options::new(7, 3000, 11),
    ))
    .unwrap();
    let mut lines: Vec<String> = generated.lines().map(str::to_owned).collect();
    // A batch of two records of two tenants, taken from the stream itself.
    let sign_ins: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("\"properties\""))
        .take(40)
        .collect();
    let batch = format!("{{\"records\":[{},{}]}}", sign_ins[0], sign_ins[39]);
    lines.insert(1500, batch);
    lines.insert(10, "\u{feff}not json at all".to_owned());
    std::fs::write(dir.join("c.ndjson"), lines.join("\n") + "\n").unwrap();
    ["a.ndjson", "b.ndjson", "c.ndjson"]
        .iter()
        .map(|f| dir.join(f).display().to_string())
        .collect()
}

/// The one-thread loop, as `mfa-audit run --threads 1` runs it.
fn one_thread(paths: &[String], out: &Path) -> Totals {
    let p = common::processor_all_shipped();
    let mut sink = FileSink::create(out).unwrap();
    let mut t = Totals::default();
    for path in paths {
        let source = input::source_name(path);
        input::read(
            path,
            Framing::Auto,
            1 << 20,
            &mut |doc| {
                let pos = LinePosition(doc.line);
                let origin = Origin {
                    source,
                    position: &pos,
                };
                let o = p
                    .process(
                        origin,
                        doc.bytes,
                        doc.oversized.then_some(doc.len),
                        &mut sink,
                    )
                    .unwrap();
                t.documents += 1;
                t.add(o);
            },
            &mut |_| {},
        )
        .unwrap();
    }
    p.snapshot(&mut sink).unwrap();
    sink.flush().unwrap();
    t
}

fn threaded(paths: &[String], out: &Path, threads: usize, chunk_bytes: usize) -> Totals {
    let p = common::processor_all_shipped();
    let mut sink = FileSink::create(out).unwrap();
    let mut read = 0usize;
    let t = parallel::run(
        &p,
        &Inputs {
            paths,
            framing: Framing::Auto,
            max_document_bytes: 1 << 20,
            chunk_bytes,
        },
        threads,
        &mut sink,
        &mut |n| read += n,
    )
    .unwrap();
    let total: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(read as u64, total, "every byte read once");
    p.snapshot(&mut sink).unwrap();
    sink.flush().unwrap();
    t
}

#[test]
fn any_thread_count_and_chunk_size_writes_the_rows_of_one_thread() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_inputs(dir.path());
    let one = dir.path().join("one");
    let expected = one_thread(&paths, &one);
    assert!(expected.findings > 1000, "{expected:?}");
    assert!(expected.dead_letters > 10, "{expected:?}");
    assert!(expected.duplicates > 0, "{expected:?}");
    for (threads, chunk) in [(2, 0), (2, 1500), (3, 20_000), (4, 64 << 10), (1, 9000)] {
        let out = dir.path().join(format!("t{threads}-{chunk}"));
        let got = threaded(&paths, &out, threads, chunk);
        assert_eq!(
            got, expected,
            "{threads} threads, {chunk}-byte chunks: counts"
        );
        for f in FILES {
            let a = std::fs::read(one.join(f)).unwrap();
            let b = std::fs::read(out.join(f)).unwrap();
            assert!(
                a == b,
                "{threads} threads, {chunk}-byte chunks: {f} differs ({} vs {} bytes)",
                a.len(),
                b.len()
            );
        }
    }
}

#[test]
fn the_cli_threads_flag_and_variable_give_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let gen = dir.path().join("gen.ndjson");
    common::ok(
        common::bin()
            .args([
                "generate",
                "--tenants",
                "5",
                "--events",
                "2000",
                "--seed",
                "3",
                "--out",
            ])
            .arg(&gen)
            .output()
            .unwrap(),
        "generate",
    );
    let run = |name: &str, threads: Option<&str>, env: Option<&str>| {
        let out = dir.path().join(name);
        let mut cmd = common::bin();
        cmd.args(["run", "-q", "--input"])
            .arg(&gen)
            .arg("--out")
            .arg(&out);
        if let Some(t) = threads {
            cmd.args(["--threads", t]);
        }
        if let Some(v) = env {
            cmd.env("MFA_AUDIT_FILES_THREADS", v);
        }
        let text = common::ok(cmd.output().unwrap(), name);
        (out, text)
    };
    let (one, text) = run("one", Some("1"), None);
    assert!(text.contains("2000 documents"), "{text}");
    for (name, t, env) in [
        ("flag", Some("3"), None),
        ("env", None, Some("2")),
        ("default", None, None),
    ] {
        let (out, text) = run(name, t, env);
        assert!(text.contains("2000 documents"), "{name}: {text}");
        for f in FILES {
            assert_eq!(
                std::fs::read(one.join(f)).unwrap(),
                std::fs::read(out.join(f)).unwrap(),
                "{name}: {f}"
            );
        }
    }
}
