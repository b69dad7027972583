//! Differential test of the Python value rules against CPython 3.11 and
//! oslo.utils: `int(s)` and `float(s)` of size strings (Unicode digits and
//! spaces, PEP 515 underscores, the 4300-digit limit) and
//! `timeutils.parse_isotime` of timestamps (impossible offsets, leap
//! seconds, out-of-range dates).
//!
//! `tests/data/python_values_cases.json` was recorded by
//! `tools/python_values_oracle.py` with the Cinder 29.0.0 venv's CPython
//! 3.11.7; this test needs no Python. Regenerate with:
//!
//! ```text
//! python tools/python_values_oracle.py > tests/data/python_values_cases.json
//! ```

use cinder_flow::internals::parse_py_float;
use cinder_flow::model::Timestamp;
use cinder_flow::planner::PyInt;
use serde::Deserialize;

#[derive(Deserialize)]
struct Cases {
    python: String,
    int_max_str_digits: usize,
    int: Vec<Answer>,
    float: Vec<Answer>,
    timestamp: Vec<TimestampAnswer>,
}

#[derive(Deserialize)]
struct Answer {
    s: String,
    value: Option<String>,
    raise: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct TimestampAnswer {
    s: String,
    utc: Option<String>,
    raise: Option<String>,
    message: Option<String>,
}

fn cases() -> Cases {
    let text = std::fs::read_to_string("tests/data/python_values_cases.json").expect("recorded cases");
    serde_json::from_str(&text).expect("cases decode")
}

#[test]
fn recorded_with_the_python_cinder_runs() {
    let c = cases();
    assert!(c.python.starts_with("3.11"), "{}", c.python);
    assert_eq!(c.int_max_str_digits, 4300);
    assert!(c.int.len() > 1000 && c.float.len() > 1000 && c.timestamp.len() > 2000);
}

#[test]
fn int_of_a_string_is_pythons() {
    let mut checked = 0;
    for case in cases().int {
        let ours = case.s.parse::<PyInt>();
        match (&case.value, &ours) {
            (Some(v), Ok(i)) => assert_eq!(&i.to_string(), v, "int({:?})", case.s),
            (None, Err(e)) => {
                assert_eq!(case.raise.as_deref(), Some("ValueError"), "int({:?})", case.s);
                assert_eq!(Some(e.message()), case.message.as_deref(), "int({:?})", case.s);
            }
            _ => panic!("int({:?}): Python {:?} {:?}, here {:?}", case.s, case.value, case.message, ours),
        }
        checked += 1;
    }
    assert!(checked > 1000);
}

#[test]
fn float_of_a_string_is_pythons() {
    for case in cases().float {
        let ours = parse_py_float(&case.s);
        match (&case.value, ours) {
            (Some(v), Some(f)) => {
                let expected: f64 = match v.as_str() {
                    "nan" => f64::NAN,
                    "inf" => f64::INFINITY,
                    "-inf" => f64::NEG_INFINITY,
                    v => v.parse().expect("Python's repr of a float"),
                };
                assert!(
                    expected.to_bits() == f.to_bits() || (expected.is_nan() && f.is_nan()),
                    "float({:?}): Python {v}, here {f}",
                    case.s
                );
            }
            (None, None) => assert_eq!(case.raise.as_deref(), Some("ValueError"), "float({:?})", case.s),
            (expected, ours) => panic!("float({:?}): Python {expected:?} {:?}, here {ours:?}", case.s, case.message),
        }
    }
}

#[test]
fn timestamps_are_read_as_oslo_reads_them() {
    let (mut accepted, mut refused) = (0, 0);
    for case in cases().timestamp {
        let ours = case.s.parse::<Timestamp>();
        match (&case.utc, &ours) {
            (Some(utc), Ok(t)) => {
                assert_eq!(&t.to_string(), utc, "{:?}", case.s);
                accepted += 1;
            }
            (None, Err(e)) => {
                // `parse_isotime` re-raises iso8601's ParseError as
                // ValueError with its message; converting a date beyond
                // Python's range to UTC raises OverflowError.
                match case.raise.as_deref() {
                    Some("ValueError") => assert_eq!(Some(e.reason.as_str()), case.message.as_deref(), "{:?}", case.s),
                    Some("OverflowError") => assert!(e.reason.contains("outside years 1 to 9999"), "{:?}", case.s),
                    other => panic!("{:?}: Python raised {other:?}", case.s),
                }
                refused += 1;
            }
            _ => panic!("{:?}: Python {:?} {:?}, here {:?}", case.s, case.utc, case.message, ours),
        }
    }
    assert!(accepted > 200 && refused > 1000, "{accepted} accepted, {refused} refused");
}
