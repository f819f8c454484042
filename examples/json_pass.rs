//! The reference passes of the performance section (`scripts/perf`): serde_json over every
//! line of a file, with nothing of ours in the way.
//!   json_pass ignored FILE    validate each line (`serde::de::IgnoredAny`)
//!   json_pass value FILE      parse each line into a `serde_json::Value`
//! Prints one line: pass, lines, bad lines, bytes. Time it from outside (CPU seconds).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a measuring tool run by hand: it stops with the reason when a step fails"
)]

use serde::de::IgnoredAny;
use std::io::{BufRead, BufReader};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (pass, path) = match (args.get(1).map(String::as_str), args.get(2)) {
        (Some(p @ ("ignored" | "value")), Some(path)) => (p.to_owned(), path.clone()),
        _ => {
            eprintln!("usage: json_pass ignored|value FILE");
            std::process::exit(2);
        }
    };
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
    // The same read size as the file mode's, so both passes read alike.
    let mut reader = BufReader::with_capacity(mfa_audit::source::file::CHUNK_BYTES, file);
    let mut line = Vec::new();
    let (mut lines, mut bad, mut bytes) = (0u64, 0u64, 0u64);
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).expect("read");
        if n == 0 {
            break;
        }
        bytes += n as u64;
        lines += 1;
        let ok = match pass.as_str() {
            "ignored" => serde_json::from_slice::<IgnoredAny>(&line).is_ok(),
            _ => serde_json::from_slice::<serde_json::Value>(&line).is_ok(),
        };
        bad += u64::from(!ok);
    }
    println!("{pass} lines={lines} bad={bad} bytes={bytes}");
}
