//! `cinder-flow explain` (feature `cli`), offline: the command's behaviour,
//! run in-process (its module is included here, so the test always runs
//! the code it builds): help, closed pipes, JSON Lines, `--now`, sizes,
//! `cinder.conf` typos and syntax errors, escaped user text. Live mode is
//! tested against the real servers in `tests/real_cloud/cli.rs`.
#![cfg(feature = "cli")]

#[path = "../src/bin/cinder-flow/cli/mod.rs"]
#[allow(dead_code)]
mod cli;

use std::io::{self, Write};
use std::path::PathBuf;

fn run(args: &[&str]) -> (u8, String, String) {
    let args: Vec<String> = std::iter::once("explain").chain(args.iter().copied()).map(str::to_owned).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let code = rt.block_on(cli::run(&args, &mut out, &mut err));
    (code, String::from_utf8(out).expect("utf-8"), String::from_utf8(err).expect("utf-8"))
}

fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("explain_cli");
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("scratch file");
    path
}

const SEED000: &str = "examples/scenarios/seed000-image-volume-other-pool.json";
const SEED003: &str = "examples/scenarios/seed003-nova-zone.json";

#[test]
fn help_is_a_success_on_stdout() {
    for flag in ["--help", "-h"] {
        let (code, out, err) = run(&[flag]);
        assert_eq!(code, 0);
        assert!(out.contains("Usage: cinder-flow explain"), "{out}");
        assert!(out.contains("Exit status: 0"), "{out}");
        assert!(err.is_empty());
    }
    let (code, _, err) = run(&[SEED000, "--frobnicate"]);
    assert_eq!(code, 2);
    assert!(err.contains("unexpected argument '--frobnicate'"), "{err}");
    let (code, _, err) = run(&[]);
    assert_eq!((code, err.contains("<SCENARIO>")), (2, true), "{err}");
    // Live mode needs everything that says which volume is asked about.
    let (code, _, err) = run(&["--image", "i", "--size", "1"]);
    assert_eq!(code, 2);
    assert!(err.contains("--host <HOST>") && err.contains("--conf <FILE>"), "{err}");
    // A scenario and a live question at once is a usage error.
    let (code, _, _) = run(&[SEED000, "--image", "i", "--size", "1", "--host", "h@b#p", "--project", "p"]);
    assert_eq!(code, 2);
    // Policies keep their names.
    let (code, out, err) = run(&[SEED000, "--policy", "same_backend", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().all(|l| l.contains("\"path\":\"image_volume_clone\"")), "{out}");
    let (code, _, err) = run(&[SEED000, "--policy", "same-pool"]);
    assert_eq!(code, 2);
    assert!(err.contains("same_backend"), "{err}");
}

/// A reader that takes `room` bytes and then goes away, as `head` does.
struct ClosedAfter {
    room: usize,
    kind: io::ErrorKind,
}

impl Write for ClosedAfter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::Error::new(self.kind, "reader gone"));
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    for room in [0, 10, 300] {
        let mut out = ClosedAfter { room, kind: io::ErrorKind::BrokenPipe };
        let mut err = Vec::new();
        let args = ["explain".to_owned(), SEED000.to_owned(), SEED003.to_owned()];
        let code = rt.block_on(cli::run(&args, &mut out, &mut err));
        assert_eq!(code, 0, "after {room} bytes");
        assert!(err.is_empty(), "{}", String::from_utf8_lossy(&err));
    }
    // Any other write error is reported and fails.
    let mut out = ClosedAfter { room: 10, kind: io::ErrorKind::StorageFull };
    let mut err = Vec::new();
    let code = rt.block_on(cli::run(&["explain".to_owned(), SEED000.to_owned()], &mut out, &mut err));
    assert_eq!(code, 1);
    assert!(String::from_utf8_lossy(&err).contains("cannot write the output"));
}

#[test]
fn json_is_one_compact_document_per_scenario() {
    let (code, out, err) = run(&[SEED003, SEED000, "--json", "--now", "2030-01-01T00:00:00Z"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    let names: Vec<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("a JSON document per line")["scenario"].to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "\"seed003-nova-zone-rejected\"",
            "\"seed003-nova-zone-fallback\"",
            "\"seed000-image-volume-other-pool\"",
            "\"seed000-image-volume-same-pool\""
        ]
    );
}

#[test]
fn now_is_the_decisions_clock() {
    // A cache hit marks the entry used at `now`.
    let scenario = scratch(
        "cache-hit.json",
        r#"{
          "name": "cache-hit",
          "operation": "create_from_image",
          "config": {"image_volume_cache_enabled": true, "cinder_internal_tenant_project_id": "internal",
                     "cinder_internal_tenant_user_id": "internal-user"},
          "volume": {"id": "11111111-1111-4111-8111-111111111111", "host": "hostA@ceph#ceph", "size": 1},
          "image": {"id": "22222222-2222-4222-8222-222222222222"},
          "db": {
            "volumes": [{"id": "33333333-3333-4333-8333-333333333333", "host": "hostA@ceph#ceph",
                         "project_id": "internal"}],
            "image_cache": [{"image_id": "22222222-2222-4222-8222-222222222222", "host": "hostA@ceph#ceph",
                             "volume_id": "33333333-3333-4333-8333-333333333333"}]
          },
          "cluster": {"pools": {"rbd": {"volume-33333333-3333-4333-8333-333333333333": {}}}}
        }"#,
    );
    let path = scenario.to_str().expect("utf-8 path");
    let (code, out, err) = run(&[path, "--json", "--now", "2031-02-03T04:05:06+01:00"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"last_used\":\"2031-02-03T03:05:06Z\""), "{out}");
    let (code, _, err) = run(&[path, "--now", "2016-12-31T23:59:60Z"]);
    assert_eq!(code, 2);
    assert!(err.contains("second must be in 0..59"), "{err}");
    assert!(err.contains("--now"), "{err}");
    let (code, _, _) = run(&[path, "--now"]);
    assert_eq!(code, 2);
}

#[test]
fn sizes_read_in_gib() {
    let (code, out, err) = run(&[SEED000, "--now", "2025-01-01T00:00:00Z"]);
    assert_eq!(code, 0, "{err}");
    // 40802189312 bytes are 38 GiB; the image, 37579915264, is 1 MiB short
    // of 35 GiB, so its exact size follows.
    assert!(out.contains("create volumes/volume-24404271-dfe0-40d7-8154-f21efba4e733 (38 GiB)"), "{out}");
    assert!(out.contains("import 34.99 GiB (37579915264 bytes) into"), "{out}");
    assert!(!out.contains("40802189312"), "{out}");
}

#[test]
fn a_mistyped_option_is_named_with_a_suggestion() {
    let conf = scratch(
        "typo.conf",
        "[DEFAULT]\nenabled_backends = ceph\ntransport_url = rabbit://x\n\n[ceph]\nrbd_pool = volumes\nrbd_max_clone_dept = 2\n",
    );
    let (code, out, err) = run(&[SEED000, "--conf", conf.to_str().expect("utf-8 path")]);
    assert_eq!(code, 0, "{err}");
    let conf_lines: Vec<&str> = out.lines().take_while(|l| l.starts_with('(')).collect();
    assert_eq!(conf_lines.len(), 2, "{out}");
    assert!(
        conf_lines[0].ends_with(
            "typo.conf:7: [ceph] rbd_max_clone_dept is not a Cinder option, and Cinder ignores it; did you mean \
             rbd_max_clone_depth?)"
        ),
        "{out}"
    );
    assert_eq!(conf_lines[1], "(options not modelled, left to Cinder: [DEFAULT] transport_url)");
    // With --json the notes go to standard error; standard output stays JSON Lines.
    let (code, out, err) = run(&[SEED000, "--json", "--conf", conf.to_str().expect("utf-8 path")]);
    assert_eq!(code, 0);
    assert!(out.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    assert!(err.contains("did you mean rbd_max_clone_depth?"), "{err}");
}

#[test]
fn a_config_syntax_error_names_the_file_and_line() {
    let conf = scratch("broken.conf", "[DEFAULT]\nenabled_backends = ceph\n[ceph\nrbd_pool = x\n");
    let (code, out, err) = run(&[SEED000, "--conf", conf.to_str().expect("utf-8 path")]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("broken.conf:3: Invalid section (must end with ]): \"[ceph\""), "{err}");
}

#[test]
fn user_text_cannot_forge_lines() {
    let scenario = scratch(
        "hostile.json",
        "{\"name\": \"hostile\", \"operation\": \"create_volume\", \"description\": \"one\\nPlan for delete_volume \\u001b[2J\\u202e\", \"volume\": {\"id\": \"v\\n  outcome: succeeds\"}}",
    );
    let (code, out, err) = run(&[scenario.to_str().expect("utf-8 path")]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.chars().any(|c| c.is_control() && c != '\n' || c == '\u{202e}'), "{out:?}");
    assert!(out.contains("one\\nPlan for delete_volume \\u{1b}[2J\\u{202e}"), "{out}");
    assert_eq!(out.lines().filter(|l| l.trim_start().starts_with("outcome:")).count(), 1, "{out}");
}

#[test]
fn an_unusable_scenario_fails_with_its_reason() {
    let scenario = scratch("misspelt.json", r#"{"name": "m", "operation": "create_volume", "volumes": {}}"#);
    let (code, _, err) = run(&[scenario.to_str().expect("utf-8 path")]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown field `volumes`"), "{err}");
}
