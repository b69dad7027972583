//! The conformance runner (a fixed interface, see README.md):
//!
//! ```text
//! cargo run --release --example conformance -- [--check] [--repeat K] PATH...
//! ```
//!
//! PATH is a vector file or a directory of vectors in the format of
//! docs/FORMAT.md. Without `--check` it prints one result object per vector
//! (JSON Lines). With `--check` it compares each result with
//! `NAME.expected.json` (read from the vector's own directory only), prints
//! each mismatch as a diff, ends with `N passed, N failed` and exits 1 if
//! any failed. `--repeat K` also times the decision K times per vector and
//! adds `median_us` to each result.
//!
//! A vector that cannot be used (not JSON, an unknown field, a duplicate
//! id or name, a row naming a missing row, an option Cinder does not
//! have, ...) makes the run exit 1 in both modes: without `--check` the
//! reason goes to standard error (or, for a vector that decoded, into its
//! result object as `"outcome": "error"`), so standard output stays JSON
//! Lines. Bad arguments exit 2. Everything printed from a vector is
//! escaped (no raw control characters).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use cinder_flow::conformance::{self, compare, expected_for, read_file, vector_files};
use cinder_flow::explain::Escaped;
use cinder_flow::planner::Policy;

const USAGE: &str = "usage: conformance [--check] [--repeat K] PATH...";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut check = false;
    let mut repeat = 0usize;
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--check" => check = true,
            "--repeat" => match args.next().and_then(|k| k.parse().ok()) {
                Some(k) => repeat = k,
                None => {
                    eprintln!("--repeat needs a number\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => paths.push(PathBuf::from(a)),
        }
    }
    if paths.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let (mut passed, mut failed, mut unusable) = (0usize, 0usize, 0usize);
    // Expected results are found by name: two vectors of one name would
    // share one.
    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in paths {
        let files = match vector_files(&path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{}", Escaped(e));
                return ExitCode::from(2);
            }
        };
        for file in files {
            let vectors = match read_file(&file) {
                Ok(v) => v,
                Err(e) => {
                    unusable += 1;
                    if check {
                        println!("FAIL {}", Escaped(&e));
                    } else {
                        eprintln!("cannot use {}", Escaped(&e));
                    }
                    continue;
                }
            };
            for vector in vectors {
                if let Some(other) = names.insert(vector.name.clone(), file.clone()) {
                    unusable += 1;
                    let message = format!("{}: also named in {}", vector.name, other.display());
                    if check {
                        println!("FAIL {}", Escaped(message));
                    } else {
                        eprintln!("cannot use {}", Escaped(message));
                    }
                    continue;
                }
                let out = conformance::run_with(&vector, &Policy::faithful(), repeat).await;
                let result = match out {
                    Ok(o) => o.result,
                    Err(e) => {
                        unusable += 1;
                        if check {
                            println!("FAIL {}: {}", Escaped(&vector.name), Escaped(&e));
                        } else {
                            println!(
                                "{}",
                                serde_json::json!({"name": vector.name, "operation": vector.operation, "outcome": "error", "error": e.to_string()})
                            );
                        }
                        continue;
                    }
                };
                if !check {
                    println!("{result}");
                    passed += 1;
                    continue;
                }
                match expected_for(&vector, &file) {
                    Ok(Some(expected)) => {
                        let diffs = compare(&result, &expected);
                        if diffs.is_empty() {
                            passed += 1;
                        } else {
                            failed += 1;
                            println!("FAIL {}", Escaped(&vector.name));
                            for d in diffs {
                                println!("{}", Escaped(d));
                            }
                        }
                    }
                    Ok(None) => {
                        println!("FAIL {}: no expected result", Escaped(&vector.name));
                        failed += 1;
                    }
                    Err(e) => {
                        println!("FAIL {}: {}", Escaped(&vector.name), Escaped(&e));
                        failed += 1;
                    }
                }
            }
        }
    }
    if check {
        println!("{passed} passed, {} failed", failed + unusable);
    }
    if unusable > 0 || (check && failed > 0) {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
