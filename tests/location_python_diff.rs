//! Differential test of `cinder_flow::location` against upstream Python.
//!
//! `tests/data/location_cases.json` was recorded by `tools/location_oracle.py`
//! from the real Cinder 29.0.0 / oslo.utils / CPython 3.11.7 code; this test
//! needs no Python. Regenerate with:
//!
//! ```text
//! python tools/location_oracle.py --gen-inputs | python tools/location_oracle.py \
//!     > tests/data/location_cases.json
//! ```

mod common;

use common::cases;

use cinder_flow::internals::{is_uuid_like, urlsplit};
use cinder_flow::location::{
    extract_cinder_ids, CinderLocation, CinderLocationError, ImageLocation, RbdLocation, RbdLocationError,
};
use cinder_flow::model::VolumeId;
use cinder_flow::planner::PyError;
use proptest::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    url: String,
    rbd: RbdAnswer,
    cinder: CinderAnswer,
    split: SplitAnswer,
    uuid_like: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RbdAnswer {
    Pieces { pieces: [String; 4] },
    Reason { reason: String },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CinderAnswer {
    Id {
        id: String,
    },
    Ignored {
        #[allow(dead_code)]
        ignored: bool,
    },
    Raise {
        raise: String,
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SplitAnswer {
    Parts([String; 5]),
    Raise { raise: String, message: String },
}

fn load() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/location_cases.json");
    read_cases(path)
}

fn read_cases(path: &str) -> Vec<Case> {
    let text = std::fs::read_to_string(path).expect("read location_cases.json");
    serde_json::from_str(&text).expect("parse location_cases.json")
}

/// Every disagreement with Python for one case.
fn check(case: &Case) -> Vec<String> {
    let url = case.url.as_str();
    let mut bad = Vec::new();

    // RBDDriver._parse_location
    let got = RbdLocation::parse(url);
    match (&case.rbd, &got) {
        (RbdAnswer::Pieces { pieces }, Ok(loc)) => {
            let have = [&loc.fsid, &loc.pool, &loc.image, &loc.snapshot];
            if have.iter().zip(pieces).any(|(a, b)| *a != b) {
                bad.push(format!("rbd: python {pieces:?}, rust {have:?}"));
            }
        }
        (RbdAnswer::Reason { reason }, Err(e)) if e.to_string() == *reason => {}
        (want, got) => bad.push(format!(
            "rbd: python {}, rust {got:?}",
            match want {
                RbdAnswer::Pieces { pieces } => format!("{pieces:?}"),
                RbdAnswer::Reason { reason } => reason.clone(),
            }
        )),
    }

    // netutils.urlsplit
    let split = urlsplit(url);
    match (&case.split, &split) {
        (SplitAnswer::Parts(p), Ok(s)) => {
            let have = [&s.scheme, &s.netloc, &s.path, &s.query, &s.fragment];
            if have.iter().zip(p).any(|(a, b)| *a != b) {
                bad.push(format!("split: python {p:?}, rust {have:?}"));
            }
        }
        (SplitAnswer::Raise { raise, message }, Err(PyError::ValueError(m)))
            if raise == "ValueError" && m == message => {}
        (SplitAnswer::Parts(p), got) => bad.push(format!("split: python {p:?}, rust {got:?}")),
        (SplitAnswer::Raise { raise, message }, got) => {
            bad.push(format!("split: python {raise}({message:?}), rust {got:?}"))
        }
    }

    // _extract_cinder_ids([url])
    let got = CinderLocation::parse(url);
    match (&case.cinder, &got) {
        (CinderAnswer::Id { id }, Ok(loc)) if loc.volume_id.as_str() == id => {}
        (CinderAnswer::Ignored { .. }, Err(CinderLocationError::NotCinder { scheme })) => {
            let want = match &case.split {
                SplitAnswer::Parts(p) => p[0].as_str(),
                SplitAnswer::Raise { .. } => "<raise>",
            };
            if scheme != want || scheme == "cinder" {
                bad.push(format!("cinder: NotCinder({scheme:?}) but python scheme {want:?}"));
            }
        }
        (CinderAnswer::Ignored { .. }, Err(CinderLocationError::MalformedId { id })) => {
            let want = match &case.split {
                SplitAnswer::Parts(p) if p[2].is_empty() => Some(p[1].as_str()),
                SplitAnswer::Parts(p) => p[2].rsplit('/').next(),
                SplitAnswer::Raise { .. } => None,
            };
            if want != Some(id.as_str()) {
                bad.push(format!("cinder: MalformedId({id:?}) but python candidate {want:?}"));
            }
        }
        (CinderAnswer::Raise { raise, message }, Err(CinderLocationError::InvalidUrl { message: m }))
            if raise == "ValueError" && m == message => {}
        (want, got) => bad.push(format!(
            "cinder: python {}, rust {got:?}",
            match want {
                CinderAnswer::Id { id } => format!("id {id:?}"),
                CinderAnswer::Ignored { .. } => "ignored".to_owned(),
                CinderAnswer::Raise { raise, message } => format!("{raise}({message:?})"),
            }
        )),
    }

    // the list form agrees with the single form
    let list = extract_cinder_ids([url]);
    let list_ok = match (&case.cinder, &list) {
        (CinderAnswer::Id { id }, Ok(ids)) => ids == &[VolumeId::from(id.as_str())],
        (CinderAnswer::Ignored { .. }, Ok(ids)) => ids.is_empty(),
        (CinderAnswer::Raise { message, .. }, Err(CinderLocationError::InvalidUrl { message: m })) => m == message,
        _ => false,
    };
    if !list_ok {
        bad.push(format!("extract_cinder_ids: rust {list:?}"));
    }

    // classification is consistent with the parsers
    let class = ImageLocation::classify(url);
    let class_ok = match (&class, &case.rbd, &case.cinder) {
        (ImageLocation::Rbd(_), RbdAnswer::Pieces { .. }, _) => true,
        (ImageLocation::Cinder(c), RbdAnswer::Reason { .. }, CinderAnswer::Id { id }) => c.volume_id.as_str() == id,
        (ImageLocation::Other { scheme }, RbdAnswer::Reason { .. }, CinderAnswer::Ignored { .. }) => {
            matches!(&case.split, SplitAnswer::Parts(p) if p[0] == *scheme)
        }
        (ImageLocation::Other { .. }, RbdAnswer::Reason { .. }, CinderAnswer::Raise { .. }) => true,
        _ => false,
    };
    if !class_ok {
        bad.push(format!("classify: rust {class:?}"));
    }

    // oslo_utils.uuidutils.is_uuid_like on the whole input
    if is_uuid_like(url) != case.uuid_like {
        bad.push(format!("is_uuid_like: python {}", case.uuid_like));
    }
    bad
}

#[test]
fn rust_matches_recorded_python_answers() {
    let cases = load();
    assert!(cases.len() >= 2000, "only {} cases", cases.len());
    assert_no_disagreements(&cases);
}

/// `LOCATION_CASES=<file>` checks an extra answer file produced by
/// `tools/location_oracle.py --gen-inputs --seed N --scale K | ...`.
#[test]
fn rust_matches_extra_python_answers_if_given() {
    if let Ok(path) = std::env::var("LOCATION_CASES") {
        let cases = read_cases(&path);
        eprintln!("checking {} extra cases from {path}", cases.len());
        assert_no_disagreements(&cases);
    }
}

fn assert_no_disagreements(cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        for problem in check(case) {
            failures.push(format!("{:?}: {problem}", case.url));
        }
    }
    if !failures.is_empty() {
        let shown: Vec<&String> = failures.iter().take(40).collect();
        panic!("{} disagreements with Python, first ones:\n{:#?}", failures.len(), shown);
    }
}

#[test]
fn fast_paths_agree_on_recorded_cases() {
    for case in load() {
        let u = &case.url;
        let full = CinderLocation::parse(u);
        assert_eq!(
            cinder_flow::location::may_be_cinder(u),
            !matches!(full, Err(CinderLocationError::NotCinder { .. })),
            "{u:?}"
        );
        assert_eq!(
            cinder_flow::location::rbd_fsid(u).map(|f| f.into_owned()),
            RbdLocation::parse(u).map(|l| l.fsid),
            "{u:?}"
        );
    }
}

#[test]
fn recorded_table_covers_every_outcome() {
    let cases = load();
    let count = |f: &dyn Fn(&Case) -> bool| cases.iter().filter(|c| f(c)).count();
    assert!(count(&|c| matches!(c.rbd, RbdAnswer::Pieces { .. })) > 100);
    for reason in ["Not stored in RBD", "Blank components", "Not an RBD snapshot"] {
        assert!(count(&|c| matches!(&c.rbd, RbdAnswer::Reason { reason: r } if r == reason)) > 50);
    }
    assert!(count(&|c| matches!(c.cinder, CinderAnswer::Id { .. })) > 100);
    assert!(count(&|c| matches!(c.cinder, CinderAnswer::Ignored { .. })) > 100);
    for needle in [
        "Invalid IPv6 URL",
        "IPvFuture address is invalid",
        "An IPv4 address cannot be in brackets",
        "does not appear to be an IPv4 or IPv6 address",
        "contains invalid characters under NFKC normalization",
    ] {
        assert!(
            count(&|c| matches!(&c.cinder, CinderAnswer::Raise { message, .. } if message.contains(needle))) > 0,
            "{needle}"
        );
    }
    assert!(count(&|c| c.uuid_like) > 20);
}

fn exercise(s: &str) {
    let _ = RbdLocation::parse(s).map(|l| l.to_string());
    let _ = CinderLocation::parse(s).map(|l| l.to_string());
    let _ = urlsplit(s);
    let _ = ImageLocation::classify(s);
    let _ = extract_cinder_ids([s, s]);
    let _ = is_uuid_like(s);
}

/// Strings built from the characters that matter to the parsers.
fn urlish() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "rbd://",
        "cinder://",
        "CINDER:",
        "//",
        "/",
        "%",
        "%2F",
        "%ff",
        "%C3",
        "%A9",
        "[",
        "]",
        "?",
        "#",
        "@",
        ":",
        "::",
        "{",
        "}",
        "-",
        "urn:",
        "uuid:",
        "\t",
        "\r",
        "\n",
        "\0",
        " ",
        "\u{7f}",
        "é",
        "\u{2100}",
        "\u{ff20}",
        "\u{1f600}",
        "v1.",
        "1.2.3.4",
        "fe80::1",
        "%eth0",
        "a",
        "0",
        "43a09914-e495-475f-b862-0bda3c8918e4",
        "'",
        "\"",
        "\\",
    ]);
    prop::collection::vec(prop_oneof![atoms.prop_map(str::to_owned), any::<char>().prop_map(String::from)], 0..16)
        .prop_map(|v| v.concat())
}

fn uuid_like_id() -> impl Strategy<Value = String> {
    (any::<u128>(), 0..6usize).prop_map(|(n, form)| {
        let plain = uuid::Uuid::from_u128(n).to_string();
        match form {
            0 => plain,
            1 => plain.to_uppercase(),
            2 => plain.replace('-', ""),
            3 => format!("{{{plain}}}"),
            4 => format!("urn:uuid:{plain}"),
            _ => format!("-{}-", plain.replace('-', "")),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2000), ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_strings(s in any::<String>()) {
        exercise(&s);
    }

    #[test]
    fn never_panics_on_url_like_strings(s in urlish()) {
        exercise(&s);
        // and the prefixed forms reach the deeper code
        exercise(&format!("rbd://{s}"));
        exercise(&format!("cinder://{s}"));
        exercise(&format!("x://[{s}]"));
    }

    #[test]
    fn rbd_display_parse_round_trip(
        fsid in any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
        pool in "\\PC{1,12}",
        image in any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
        snapshot in "[/%a-z0-9é ]{1,12}",
    ) {
        let loc = RbdLocation { fsid, pool, image, snapshot };
        prop_assert_eq!(RbdLocation::parse(&loc.to_string()), Ok(loc));
    }

    #[test]
    fn cinder_display_parse_round_trip(
        id in uuid_like_id(),
        store in prop::option::of("[a-zA-Z0-9._~:@,+!$&'()*;=-]{1,20}"),
    ) {
        let loc = CinderLocation { volume_id: VolumeId::new(id), store };
        prop_assert_eq!(CinderLocation::parse(&loc.to_string()), Ok(loc));
    }

    /// The fast paths agree with the full parsers on every input.
    #[test]
    fn fast_paths_agree_with_full_parsers(s in urlish(), t in any::<String>()) {
        for u in [s.clone(), t, format!("rbd://{s}"), format!("cinder://{s}"), format!("CINDER:{s}")] {
            let full = CinderLocation::parse(&u);
            prop_assert_eq!(
                cinder_flow::location::may_be_cinder(&u),
                !matches!(full, Err(CinderLocationError::NotCinder { .. })),
                "{:?}", u
            );
            let fsid = cinder_flow::location::rbd_fsid(&u).map(|f| f.into_owned());
            prop_assert_eq!(fsid, RbdLocation::parse(&u).map(|l| l.fsid), "{:?}", u);
        }
    }

    #[test]
    fn rbd_errors_are_ordered_like_upstream(s in urlish()) {
        if let Err(e) = RbdLocation::parse(&s) {
            match e {
                RbdLocationError::NotRbd => prop_assert!(!s.starts_with("rbd://")),
                RbdLocationError::BlankComponent => {
                    prop_assert!(s["rbd://".len()..].split('/').any(str::is_empty))
                }
                RbdLocationError::NotASnapshot { parts } => {
                    prop_assert_eq!(s["rbd://".len()..].split('/').count(), parts);
                    prop_assert_ne!(parts, 4);
                }
            }
        }
    }
}
