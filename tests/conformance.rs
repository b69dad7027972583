//! Runs every conformance vector under tests/vectors (the shared sample),
//! tests/vectors/oracle (generated with tools/oracle from real Cinder 29),
//! tests/vectors/python (Python value edge cases, results recorded with
//! tools/oracle) and tests/vectors/random (random situations from
//! tools/oracle/campaign.py, with real Cinder 29's results inline, plus the
//! minimal vectors the campaign's shrinking produced) through the in-memory
//! backends and compares with upstream's results (docs/FORMAT.md §12).
//!
//! tests/vectors/KNOWN_FAILING lists vectors that do not pass yet. The list
//! may only shrink: a listed vector that starts passing fails this test
//! until it is removed from the list.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cinder_flow::conformance::{compare, expected_for, read_file, run, vector_files};

fn known_failing() -> BTreeSet<String> {
    let text = std::fs::read_to_string("tests/vectors/KNOWN_FAILING").unwrap_or_default();
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn check_dir(dir: &Path) -> (Vec<String>, Vec<String>) {
    let mut passed = Vec::new();
    let mut failed = Vec::new();
    let files: Vec<PathBuf> = vector_files(dir).expect("vector directory");
    assert!(!files.is_empty(), "no vectors in {}", dir.display());
    for file in files {
        for vector in read_file(&file).unwrap_or_else(|e| panic!("{e}")) {
            let expected = expected_for(&vector, &file).unwrap_or_else(|e| panic!("{e}"));
            let Some(expected) = expected else {
                failed.push(format!("{}: no expected result", vector.name));
                continue;
            };
            match run(&vector).await {
                Ok(out) => {
                    let diffs = compare(&out.result, &expected);
                    if diffs.is_empty() {
                        passed.push(vector.name.clone());
                    } else {
                        let text: Vec<String> = diffs.iter().map(|d| d.to_string()).collect();
                        failed.push(format!("{}:\n{}", vector.name, text.join("\n")));
                    }
                }
                Err(e) => failed.push(format!("{}: {e}", vector.name)),
            }
        }
    }
    (passed, failed)
}

async fn check(dirs: &[&str]) {
    let known = known_failing();
    let mut unexpected = Vec::new();
    let mut now_passing = Vec::new();
    let mut total = 0;
    for dir in dirs {
        let (passed, failed) = check_dir(Path::new(dir)).await;
        total += passed.len() + failed.len();
        for f in failed {
            let name = f.split(':').next().unwrap_or("").to_owned();
            if !known.contains(&name) {
                unexpected.push(f);
            }
        }
        for p in passed {
            if known.contains(&p) {
                now_passing.push(p);
            }
        }
    }
    assert!(total > 0);
    assert!(unexpected.is_empty(), "{} vector(s) fail:\n{}", unexpected.len(), unexpected.join("\n"));
    assert!(
        now_passing.is_empty(),
        "listed in tests/vectors/KNOWN_FAILING but passing now (remove them from the list): {now_passing:?}"
    );
}

#[tokio::test]
async fn shared_sample_vectors() {
    check(&["tests/vectors"]).await;
}

#[tokio::test]
async fn oracle_generated_vectors() {
    if !Path::new("tests/vectors/oracle").is_dir() {
        return;
    }
    check(&["tests/vectors/oracle"]).await;
}

/// Sizes in Unicode digits, Unicode spaces and past the 4300-digit limit of
/// `int()`, with results recorded from real Cinder 29 by tools/oracle.
#[tokio::test]
async fn python_value_vectors() {
    check(&["tests/vectors/python"]).await;
}

/// 2,000 random situations of seed 29 and the campaign's minimal vectors,
/// with real Cinder 29's results inline (docs/CONFORMANCE.md).
#[tokio::test]
async fn random_campaign_vectors() {
    check(&["tests/vectors/random"]).await;
}
