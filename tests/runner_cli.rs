//! `examples/conformance`: the fixed runner interface on bad input, run
//! in-process (its module is included here): a vector that cannot be
//! decoded fails the run in both modes, names never reach outside the
//! vector's directory, output stays one line per entry.

#[path = "../examples/conformance/cli.rs"]
mod cli;

use std::path::PathBuf;

use cinder_flow::conformance::{expected_for, parse_vectors, VectorError};

fn run(args: &[&str]) -> (u8, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let code = rt.block_on(cli::run(&args, &mut out, &mut err));
    (code, String::from_utf8(out).expect("utf-8"), String::from_utf8(err).expect("utf-8"))
}

fn scratch_dir(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("runner_cli").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    for (file, text) in files {
        std::fs::write(dir.join(file), text).expect("scratch file");
    }
    dir
}

const GOOD: &str = r#"{"name": "good", "operation": "create_volume", "volume": {"id": "v1"}}"#;

#[test]
fn an_undecodable_vector_fails_the_run_in_both_modes() {
    let dir = scratch_dir("undecodable", &[("a.json", GOOD), ("b.json", "{ not json")]);
    let dir = dir.to_str().expect("utf-8 path");
    let (code, out, err) = run(&[dir]);
    assert_eq!(code, 1);
    // Standard output stays JSON Lines: the good vector's result only.
    assert_eq!(out.lines().count(), 1);
    assert!(serde_json::from_str::<serde_json::Value>(out.trim()).is_ok(), "{out}");
    assert!(err.contains("b.json") && err.contains("line 1"), "{err}");
    let (code, out, _) = run(&["--check", dir]);
    assert_eq!(code, 1);
    assert!(out.contains("FAIL") && out.contains("b.json"), "{out}");
    // A vector that decodes but is not a situation (unknown option) too.
    let dir = scratch_dir(
        "invalid",
        &[(
            "c.json",
            r#"{"name": "c", "operation": "create_volume", "config": {"rbd_pooll": "x"}, "volume": {"id": "v"}}"#,
        )],
    );
    let (code, out, _) = run(&[dir.to_str().expect("utf-8 path")]);
    assert_eq!(code, 1);
    assert!(out.contains("\"outcome\":\"error\"") && out.contains("rbd_pooll"), "{out}");
}

#[test]
fn the_usage_and_bad_arguments() {
    assert_eq!(run(&["--help"]).0, 0);
    assert_eq!(run(&[]).0, 2);
    assert_eq!(run(&["--repeat", "many", "x"]).0, 2);
}

#[test]
fn names_cannot_leave_the_vectors_directory() {
    // A secret next to the vectors' directory that a crafted name would
    // reach as `../secret.expected.json`.
    let root = scratch_dir("traversal", &[("secret.expected.json", r#"{"name": "x"}"#)]);
    let vectors = root.join("vectors");
    std::fs::create_dir_all(&vectors).expect("directory");
    for name in ["../secret", "..", "a/b", "/etc/passwd", "tab\there", ""] {
        let text = serde_json::json!({"name": name, "operation": "create_volume", "volume": {"id": "v"}}).to_string();
        let e = parse_vectors(&text).expect_err(name);
        assert!(e.contains("is not a plain file name"), "{name:?}: {e}");
        std::fs::write(vectors.join("v.json"), &text).expect("vector");
        let (code, out, _) = run(&["--check", vectors.to_str().expect("utf-8 path")]);
        assert_eq!(code, 1, "{name:?}");
        assert!(!out.contains("passed, 0 failed"), "{out}");
    }
    // A vector built by hand (not decoded) is refused by expected_for too.
    let mut v = parse_vectors(GOOD).expect("good vector").remove(0);
    v.name = "../secret".into();
    let vector_file = vectors.join("v.json");
    assert!(matches!(expected_for(&v, &vector_file), Err(VectorError::Invalid { .. })));
    v.name = "good".into();
    assert!(matches!(expected_for(&v, &vector_file), Ok(None)));
}

#[test]
fn duplicate_names_are_refused() {
    let dir = scratch_dir("duplicates", &[("a.json", GOOD), ("b.json", GOOD)]);
    let (code, _, err) = run(&[dir.to_str().expect("utf-8 path")]);
    assert_eq!(code, 1);
    assert!(err.contains("good: also named in"), "{err}");
    let two = format!("[{GOOD}, {GOOD}]");
    assert!(parse_vectors(&two).expect_err("two of one name").contains("two vectors are named \"good\""));
}
