//! A clone of the project alone passes its tests: no file of the repository reads or cites
//! a path outside it (the team's working folders beside the checkout, or this machine's).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure is reported by panicking"
)]

mod common;

use std::path::{Path, PathBuf};

/// Folders and files a clone carries, read whole; build output, corpora and local service
/// data are not part of it.
const ROOTS: &[&str] = &[
    "src",
    "tests",
    "scripts",
    "fuzz",
    "benches",
    "policies",
    "examples",
    "schemas",
    "templates",
    "dashboards",
    "docs",
    ".ci",
    "README.md",
    "DEVELOPERS.md",
    "Cargo.toml",
];
const SKIP: &[&str] = &["target", "corpus", "artifacts", "coverage"];

fn walk(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        if path
            .file_name()
            .is_some_and(|n| SKIP.iter().any(|s| n == *s))
        {
            return;
        }
        for entry in std::fs::read_dir(path).unwrap() {
            walk(&entry.unwrap().path(), out);
        }
    } else if path.is_file() {
        out.push(path.to_path_buf());
    }
}

#[test]
fn no_file_names_a_path_outside_the_repository() {
    // Built from parts, so that this file does not name them itself.
    let needles = [
        ["..", "shared"].join("/"),
        ["", "work", ""].join("/"),
        ["", "tmp", "bash_jobs"].join("/"),
    ];
    let root = common::root();
    let mut files = Vec::new();
    for r in ROOTS {
        walk(&root.join(r), &mut files);
    }
    assert!(files.len() > 100, "read only {} files", files.len());
    let mut hits = Vec::new();
    for f in &files {
        let Ok(text) = std::fs::read(f) else { continue };
        let text = String::from_utf8_lossy(&text);
        for (n, line) in text.lines().enumerate() {
            if needles.iter().any(|needle| line.contains(needle.as_str())) {
                hits.push(format!(
                    "{}:{}: {}",
                    f.strip_prefix(&root).unwrap().display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "these lines name a path outside the repository, which a clone does not have; \
         copy what they need into the repository or cite its public address:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_public_records_carry_their_sources() {
    fn check(dir: &Path) {
        let readme = std::fs::read_to_string(dir.join("README.md"))
            .unwrap_or_else(|e| panic!("{}: no README.md ({e})", dir.display()));
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                check(&path);
                continue;
            }
            if name == "README.md" {
                continue;
            }
            assert!(
                readme.contains(&format!("| {name} |")),
                "{}/README.md gives no source and licence for `{name}`",
                dir.display()
            );
        }
    }
    check(&common::root().join("tests/realdata"));
}
