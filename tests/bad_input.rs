//! Bad input at every entry point: a typed error that names the offending
//! value, or (for data upstream accepts) a plan — never a panic.

mod common;

use common::cases;

use proptest::prelude::*;

use cinder_flow::config::{CinderConf, Config, ConfigError, ConfigFileError, OptionValue};
use cinder_flow::conformance::{build_world, parse_vectors, run, VectorError};
use cinder_flow::location::{CinderLocation, CinderLocationError, RbdLocation, RbdLocationError};
use cinder_flow::model::{Host, HostFilter, Timestamp};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime")
}

// ------------------------------------------------------------------ vectors

fn vector_error(text: &str) -> String {
    match parse_vectors(text) {
        Err(message) => message,
        Ok(vs) => match build_world(&vs[0]) {
            Err(e) => e.to_string(),
            Ok(_) => match rt().block_on(run(&vs[0])) {
                Err(e) => e.to_string(),
                Ok(out) => panic!("accepted: {}", out.result),
            },
        },
    }
}

#[test]
fn vectors_report_what_is_wrong() {
    let e = vector_error("{ not json");
    assert!(e.contains("line 1"), "{e}");
    let e = vector_error(r#"{"name": "v", "operation": "create_volume", "volume": {"id": "x", "size": "big"}}"#);
    assert!(e.contains("v") && e.contains("size") || e.contains("invalid type"), "{e}");
    let e = vector_error(
        r#"{"name": "v", "operation": "create_volume", "config": {"rbd_poool": "x"}, "volume": {"id": "x"}}"#,
    );
    assert!(e.contains("rbd_poool"), "unknown option named: {e}");
    let e = vector_error(
        r#"{"name": "v", "operation": "create_volume", "config": {"rbd_max_clone_depth": "five"}, "volume": {"id": "x"}}"#,
    );
    assert!(e.contains("rbd_max_clone_depth") && e.contains("five"), "{e}");
    let e = vector_error(
        r#"{"name": "v", "operation": "create_volume", "volume": {"id": "x", "created_at": "yesterday"}}"#,
    );
    assert!(e.contains("yesterday"), "{e}");
    let e = vector_error(
        r#"{"name": "v", "operation": "create_volume", "db": {"snapshots": [{"id": "s", "volume_id": "nope"}]}, "volume": {"id": "x"}}"#,
    );
    assert!(e.contains("nope"), "{e}");
    let e = vector_error(r#"{"name": "v", "operation": "make_coffee", "volume": {"id": "x"}}"#);
    assert!(e.contains("make_coffee"), "{e}");
    let e = vector_error(r#"{"name": "v", "operation": "create_cloned_volume", "volume": {"id": "x"}}"#);
    assert!(e.contains("source_volid"), "{e}");
    let e = vector_error(
        r#"{"name": "v", "operation": "create_volume", "glance": {"location_api": "v3"}, "volume": {"id": "x"}}"#,
    );
    assert!(e.contains("v3"), "{e}");
    assert!(matches!(
        cinder_flow::conformance::read_file(std::path::Path::new("/nonexistent/vector.json")),
        Err(VectorError::Io { .. })
    ));
}

/// Vectors with misspelt fields, duplicate ids, rows naming missing rows
/// and integers beyond 64 bits are refused with what is wrong.
#[test]
fn vectors_are_checked_for_consistency() {
    let v = |extra: &str| format!(r#"{{"name": "v", "operation": "create_volume", "volume": {{"id": "x"}}{extra}}}"#);
    let cases = [
        (v(r#", "volumes": []"#), "unknown field `volumes`"),
        (v(r#", "db": {"snapshot": []}"#), "unknown field `snapshot`"),
        (
            v(r#", "cluster": {"pools": {"p": {"i": {"snaps": [{"name": "s", "protect": true}]}}}}"#),
            "unknown field `protect`",
        ),
        (v(r#", "request": {"snapshot_id": "s"}"#), "request.snapshot_id is not a field of create_volume requests"),
        (v(r#", "db": {"volumes": [{"id": "y"}, {"id": "y"}]}"#), "two volumes have the id \"y\""),
        (v(r#", "db": {"volumes": [{"id": "x"}]}"#), "two volumes have the id \"x\""),
        (v(r#", "images": [{"id": "i"}, {"id": "i"}]"#), "two images have the id \"i\""),
        (v(r#", "db": {"volume_types": [{"name": "t"}, {"name": "t"}]}"#), "two volume types are named \"t\""),
        (
            v(r#", "db": {"image_cache": [{"image_id": "i", "host": "h", "volume_id": "gone"}]}"#),
            "names volume gone which is not in db.volumes",
        ),
        (
            v(r#", "cluster": {"pools": {"p": {"c": {"parent": {"pool": "p", "image": "i", "snap": "s"}}}}}"#),
            "is a clone of p/i@s, which is not in cluster.pools",
        ),
        (
            v(r#", "cluster": {"pools": {"p": {"i": {"size": 100000000000000000000}}}}"#),
            "the integer 100000000000000000000 at line 1",
        ),
        (v(r#", "env": {"image_conversion_free_bytes": -9223372036854775809}"#), "does not fit in 64 bits"),
    ];
    for (text, wanted) in cases {
        let e = parse_vectors(&text).expect_err(&text);
        assert!(e.contains(wanted), "{text}: {e}");
    }
    // Integers inside strings are text, not numbers.
    assert!(parse_vectors(&v(r#", "description": "100000000000000000000 \" 1e999 \\""#)).is_ok());
}

/// Timestamps Python refuses are refused; the one that used to panic (a UTC
/// date past year 9999) is an error naming the field.
#[test]
fn vector_timestamps_as_python_reads_them() {
    for (ts, reason) in [
        ("9999-12-31T23:59:59-01:00", "outside years 1 to 9999"),
        ("2024-01-01T00:00:00+24:00", "offset must be a timedelta strictly between"),
        ("2016-12-31T23:59:60Z", "second must be in 0..59"),
    ] {
        let text = format!(
            r#"{{"name": "v", "operation": "create_from_image", "volume": {{"id": "x"}}, "image": {{"id": "i", "updated_at": "{ts}"}}}}"#
        );
        let e = vector_error(&text);
        assert!(e.contains("image.updated_at") && e.contains(reason), "{ts}: {e}");
    }
}

/// A size of 4300 digits is an integer to `int()` and fails the quota as
/// upstream does (`QuotaUsageOverflow`, recorded from Cinder 29); 4301
/// digits are refused by `int()` itself (tests/vectors/python).
#[test]
fn a_size_at_pythons_digit_limit() {
    let text = format!(
        r#"{{"name": "v", "operation": "api_create", "db": {{"services": [{{"host": "hostA@ceph"}}]}}, "request": {{"size": "{}"}}}}"#,
        "1".repeat(4300)
    );
    let out = rt().block_on(run(&parse_vectors(&text).unwrap()[0])).unwrap();
    assert_eq!(out.result["error"], "QuotaUsageOverflow", "{}", out.result);
    let size = "1".repeat(4301).parse::<cinder_flow::planner::PyInt>().unwrap_err();
    assert!(size
        .message()
        .starts_with("Exceeds the limit (4300 digits) for integer string conversion: value has 4301"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), ..ProptestConfig::default() })]

    /// Arbitrary JSON-ish text never panics the vector path.
    #[test]
    fn vector_decoding_never_panics(text in "\\PC{0,200}") {
        let _ = vector_error_safe(&text);
    }
}

fn vector_error_safe(text: &str) -> Option<String> {
    let vs = parse_vectors(text).ok()?;
    let v = vs.first()?;
    build_world(v).ok()?;
    rt().block_on(run(v)).err().map(|e| e.to_string())
}

// ------------------------------------------------------------------ configuration

#[test]
fn configuration_errors_name_option_and_value() {
    let mut c = Config::default();
    match c.set("rbd_max_clone_depth", OptionValue::Str("deep".into())) {
        Err(ConfigError::WrongType { name, value, .. }) => {
            assert_eq!(name, "rbd_max_clone_depth");
            assert!(value.contains("deep"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(c.set("nope", OptionValue::Null), Err(ConfigError::UnknownOption { name }) if name == "nope"));
    match c.set_from_str("rbd_store_chunk_size", "0") {
        Err(ConfigError::InvalidValue { name, value, .. }) => {
            assert_eq!(name, "rbd_store_chunk_size");
            assert_eq!(value, "0");
        }
        other => panic!("{other:?}"),
    }
    match CinderConf::parse("[DEFAULT]\nenabled_backends = b\n[b]\nimage_volume_cache_enabled = sometimes\n")
        .unwrap()
        .load(None)
    {
        Err(ConfigFileError::Value { section, key, value, .. }) => {
            assert_eq!(
                (section.as_str(), key.as_str(), value.as_str()),
                ("b", "image_volume_cache_enabled", "sometimes")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(CinderConf::parse("[broken"), Err(ConfigFileError::Syntax { line: 1, .. })));
}

/// cinder.conf as oslo.config reads it: what oslo refuses is refused with
/// the line; what oslo accepts and Cinder ignores is reported.
#[test]
fn cinder_conf_hostile_input() {
    // oslo refuses keys before any section; rust-ini used to read them as [DEFAULT].
    match CinderConf::parse("enabled_backends = a\n[a]\n") {
        Err(ConfigFileError::Syntax { line, message, .. }) => {
            assert_eq!((line, message.as_str()), (1, "Section must be started before assignment"))
        }
        other => panic!("{other:?}"),
    }
    // A substitution loop and an unknown reference fail the load, naming the key.
    for (text, key) in [
        (
            "[DEFAULT]\nenabled_backends = a\n[a]\nrbd_user = ${rbd_secret_uuid}\nrbd_secret_uuid = $rbd_user\n",
            "rbd_user",
        ),
        (
            "[DEFAULT]\nenabled_backends = a\nstorage_availability_zone = $no_such_option\n[a]\n",
            "storage_availability_zone",
        ),
    ] {
        match CinderConf::parse(text).unwrap().load(None) {
            Err(ConfigFileError::Substitution { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    // A control character in a key is reported, escaped when shown.
    let l =
        CinderConf::parse("[DEFAULT]\nenabled_backends = a\n[a]\nrbd_pool\u{1b}[2J = x\n").unwrap().load(None).unwrap();
    assert_eq!(l.unknown.len(), 1);
    assert_eq!(cinder_flow::explain::Escaped(&l.unknown[0].key).to_string(), "rbd_pool\\u{1b}[2J");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2000), ..ProptestConfig::default() })]

    /// Any text for any option: a value or a typed error, and a refused value
    /// leaves the configuration unchanged.
    #[test]
    fn options_never_panic(idx in 0usize..cinder_flow::config::OPTIONS.len(), text in "\\PC{0,40}") {
        let mut c = Config::default();
        let before = c.clone();
        let name = cinder_flow::config::OPTIONS[idx].name;
        match c.set_from_str(name, &text) {
            Ok(()) => prop_assert!(c.validate().is_ok()),
            Err(e) => {
                prop_assert_eq!(&c, &before);
                prop_assert!(e.to_string().contains(name));
            }
        }
    }

    #[test]
    fn cinder_conf_never_panics(text in "[\\[\\]a-z_=#:;$.{}\\\\ \t\r\"\n]{0,120}") {
        if let Ok(conf) = CinderConf::parse(&text) {
            let _ = conf.load(None);
        }
    }
}

// ------------------------------------------------------------------ locations and hosts

#[test]
fn location_errors_keep_the_offending_text() {
    assert_eq!(RbdLocation::parse("rbd://a/b/c"), Err(RbdLocationError::NotASnapshot { parts: 3 }));
    match CinderLocation::parse("cinder://store/not-a-uuid") {
        Err(CinderLocationError::MalformedId { id }) => assert_eq!(id, "not-a-uuid"),
        other => panic!("{other:?}"),
    }
    match CinderLocation::parse("cinder://[oops/11111111-1111-4111-8111-111111111111") {
        Err(CinderLocationError::InvalidUrl { message }) => assert!(message.contains("IPv6"), "{message}"),
        other => panic!("{other:?}"),
    }
    match CinderLocation::parse("s3://bucket/x") {
        Err(CinderLocationError::NotCinder { scheme }) => assert_eq!(scheme, "s3"),
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2000), ..ProptestConfig::default() })]

    #[test]
    fn hosts_never_panic(value in "\\PC{0,64}", field in "\\PC{0,64}") {
        let _ = HostFilter::new(value.as_str()).matches(Some(&field));
        let h = Host::new(field.as_str());
        let _ = (h.host(), h.backend(), h.pool(), h.backend_name());
    }

    #[test]
    fn timestamps_never_panic(text in "\\PC{0,40}") {
        match text.parse::<Timestamp>() {
            Ok(t) => { let _ = t.to_string(); }
            Err(e) => prop_assert_eq!(e.value, text),
        }
    }
}

// ------------------------------------------------------------------ image metadata

/// Odd image records are data upstream may receive: the planner decides
/// (possibly with upstream's exception), it does not panic.
#[test]
fn odd_image_metadata_is_planned_not_panicked() {
    let base = r#"{"name": "odd", "operation": "create_from_image", "config": {"rbd_pool": "volumes"},
      "volume": {"id": "11111111-1111-4111-8111-111111111111", "host": "h@b#p", "size": 1},
      "cluster": {"pools": {"volumes": {}}}, "image": IMAGE}"#;
    let images = [
        r#"{"id": "i", "size": null}"#,
        r#"{"id": "i", "size": 18446744073709551615, "virtual_size": 18446744073709551615}"#,
        r#"{"id": "i", "disk_format": null, "container_format": null}"#,
        r#"{"id": "i", "locations": [{"url": null}, {"url": ""}, {"url": "rbd:///"}, {"url": "cinder://"}]}"#,
        r#"{"id": "i", "locations": null, "direct_url": "rbd://x"}"#,
        r#"{"id": "i", "owner": null, "status": "killed", "min_disk": 9999}"#,
        r#"{"id": "i", "properties": {"img_signature": 1, "cinder_img_volume_type": null}}"#,
    ];
    for image in images {
        let text = base.replace("IMAGE", image);
        let vs = parse_vectors(&text).unwrap_or_else(|e| panic!("{image}: {e}"));
        let out = rt().block_on(run(&vs[0])).unwrap_or_else(|e| panic!("{image}: {e}"));
        assert!(out.result.get("outcome").is_some(), "{image}");
    }
}
