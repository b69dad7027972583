//! The conformance runner (a fixed interface, see README.md):
//!
//! ```text
//! cargo run --release --example conformance -- [--check] [--repeat K] PATH...
//! ```
//!
//! PATH is a vector file or a directory of vectors in the shared format.
//! Without `--check` it prints one result object per vector (JSON Lines).
//! With `--check` it compares each result with `NAME.expected.json`, prints
//! each mismatch as a diff, ends with `N passed, N failed` and exits non-zero
//! if any failed. `--repeat K` also times the decision K times per vector and
//! adds `median_us` to each result.

use std::path::PathBuf;
use std::process::ExitCode;

use cinder_flow::conformance::{self, compare, expected_for, read_file, vector_files};
use cinder_flow::planner::Policy;

fn usage() -> ExitCode {
    eprintln!("usage: conformance [--check] [--repeat K] PATH...");
    ExitCode::from(2)
}

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
                None => return usage(),
            },
            "-h" | "--help" => return usage(),
            _ => paths.push(PathBuf::from(a)),
        }
    }
    if paths.is_empty() {
        return usage();
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    for path in paths {
        let files = match vector_files(&path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        };
        for file in files {
            let vectors = match read_file(&file) {
                Ok(v) => v,
                Err(e) => {
                    println!("FAIL {}: {e}", file.display());
                    failed += 1;
                    continue;
                }
            };
            for vector in vectors {
                let out = conformance::run_with(&vector, &Policy::faithful(), repeat).await;
                let result = match out {
                    Ok(o) => o.result,
                    Err(e) => {
                        if check {
                            println!("FAIL {}: {e}", vector.name);
                        } else {
                            println!(
                                "{}",
                                serde_json::json!({"name": vector.name, "operation": vector.operation, "outcome": "error", "error": e.to_string()})
                            );
                        }
                        failed += 1;
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
                            println!("FAIL {}", vector.name);
                            for d in diffs {
                                println!("{d}");
                            }
                        }
                    }
                    Ok(None) => {
                        println!("FAIL {}: no expected result", vector.name);
                        failed += 1;
                    }
                    Err(e) => {
                        println!("FAIL {}: {e}", vector.name);
                        failed += 1;
                    }
                }
            }
        }
    }
    if check {
        println!("{passed} passed, {failed} failed");
        if failed > 0 {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
