//! The conformance runner apart from the process: arguments in, results
//! out through the writers given, an exit code back. `tests/runner_cli.rs`
//! includes this file and runs it on in-memory writers.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use cinder_flow::conformance::{self, compare, expected_for, read_file, vector_files};
use cinder_flow::explain::Escaped;
use cinder_flow::planner::Policy;

pub const USAGE: &str = "usage: conformance [--check] [--repeat K] PATH...";

/// Runs the runner: 0 all good, 1 a vector failed (with `--check`) or
/// could not be used, 2 bad arguments or an unreadable directory.
pub async fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let mut check = false;
    let mut repeat = 0usize;
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut args = args.iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--check" => check = true,
            "--repeat" => match args.next().and_then(|k| k.parse().ok()) {
                Some(k) => repeat = k,
                None => {
                    let _ = writeln!(err, "--repeat needs a number\n{USAGE}");
                    return 2;
                }
            },
            "-h" | "--help" => {
                let _ = writeln!(out, "{USAGE}");
                return 0;
            }
            _ => paths.push(PathBuf::from(a)),
        }
    }
    if paths.is_empty() {
        let _ = writeln!(err, "{USAGE}");
        return 2;
    }
    let (mut passed, mut failed, mut unusable) = (0usize, 0usize, 0usize);
    // Expected results are found by name: two vectors of one name would
    // share one.
    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    // A reader that went away (`| head`) ends the run quietly.
    macro_rules! say {
        ($w:expr, $($t:tt)*) => {
            if writeln!($w, $($t)*).is_err() {
                return if unusable > 0 || (check && failed > 0) { 1 } else { 0 };
            }
        };
    }
    for path in paths {
        let files = match vector_files(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = writeln!(err, "{}", Escaped(e));
                return 2;
            }
        };
        for file in files {
            let vectors = match read_file(&file) {
                Ok(v) => v,
                Err(e) => {
                    unusable += 1;
                    if check {
                        say!(out, "FAIL {}", Escaped(&e));
                    } else {
                        say!(err, "cannot use {}", Escaped(&e));
                    }
                    continue;
                }
            };
            for vector in vectors {
                if let Some(other) = names.insert(vector.name.clone(), file.clone()) {
                    unusable += 1;
                    let message = format!("{}: also named in {}", vector.name, other.display());
                    if check {
                        say!(out, "FAIL {}", Escaped(message));
                    } else {
                        say!(err, "cannot use {}", Escaped(message));
                    }
                    continue;
                }
                let result = match conformance::run_with(&vector, &Policy::faithful(), repeat).await {
                    Ok(o) => o.result,
                    Err(e) => {
                        unusable += 1;
                        if check {
                            say!(out, "FAIL {}: {}", Escaped(&vector.name), Escaped(&e));
                        } else {
                            let doc = serde_json::json!({"name": vector.name, "operation": vector.operation, "outcome": "error", "error": e.to_string()});
                            say!(out, "{doc}");
                        }
                        continue;
                    }
                };
                if !check {
                    say!(out, "{result}");
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
                            say!(out, "FAIL {}", Escaped(&vector.name));
                            for d in diffs {
                                say!(out, "{}", Escaped(d));
                            }
                        }
                    }
                    Ok(None) => {
                        failed += 1;
                        say!(out, "FAIL {}: no expected result", Escaped(&vector.name));
                    }
                    Err(e) => {
                        failed += 1;
                        say!(out, "FAIL {}: {}", Escaped(&vector.name), Escaped(&e));
                    }
                }
            }
        }
    }
    if check {
        say!(out, "{passed} passed, {} failed", failed + unusable);
    }
    if unusable > 0 || (check && failed > 0) {
        1
    } else {
        0
    }
}
