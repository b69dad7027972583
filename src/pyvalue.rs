//! Python's value rules, as Cinder's code meets them: `int()` and `float()`
//! of a string, `str.strip()`, truthiness strings, `repr()` of a `str`,
//! `urllib.parse.urlsplit` and oslo.utils' `is_uuid_like`.
//!
//! One place for all of them, shared by the image-location parser
//! ([`crate::location`]) and the API planner: each is differentially tested
//! against CPython 3.11 (tests/location_python_diff.rs,
//! tests/api_properties.rs and tests/python_values_diff.rs). Crate-private;
//! the differential tests and fuzz targets reach them through the hidden
//! [`crate::internals`].
//!
//! `int()` and `float()` of a string read any Unicode decimal digit and
//! Unicode white space, strip only ASCII white space afterwards, and
//! refuse more than 4300 digits, as CPython 3.11 does.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::ErrorClass;

/// A Python `int`: an integer of any size, as Cinder's sizes are once
/// `int()` or `utils.as_int` has read them (`"1e300"` becomes a 301-digit
/// number, which upstream accepts as a size when no quota applies).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PyInt {
    negative: bool,
    /// Decimal digits without leading zeros (`"0"` for zero).
    digits: String,
}

impl PyInt {
    /// Zero.
    pub fn zero() -> Self {
        Self { negative: false, digits: "0".into() }
    }

    pub(crate) fn from_digits(negative: bool, digits: &str) -> Self {
        let trimmed = digits.trim_start_matches('0');
        if trimmed.is_empty() {
            Self::zero()
        } else {
            Self { negative, digits: trimmed.to_owned() }
        }
    }

    /// Whether it is zero (Python's falsy `0`).
    pub fn is_zero(&self) -> bool {
        self.digits == "0"
    }

    /// The value, when it fits an `i128`.
    pub fn to_i128(&self) -> Option<i128> {
        let s = if self.negative { format!("-{}", self.digits) } else { self.digits.clone() };
        s.parse().ok()
    }

    /// The value, when it fits an `i64`.
    pub fn to_i64(&self) -> Option<i64> {
        self.to_i128().and_then(|v| i64::try_from(v).ok())
    }

    /// The value, when it fits a `u64`.
    pub fn to_u64(&self) -> Option<u64> {
        self.to_i128().and_then(|v| u64::try_from(v).ok())
    }

    /// `self > 0`.
    pub fn is_positive(&self) -> bool {
        !self.negative && self.digits != "0"
    }

    /// Python `int(f)` of a float: truncation towards zero; `ValueError`
    /// for NaN, `OverflowError` for infinities.
    pub fn from_f64(f: f64) -> Result<Self, PyError> {
        if f.is_nan() {
            return Err(PyError::ValueError("cannot convert float NaN to integer".into()));
        }
        if f.is_infinite() {
            return Err(PyError::OverflowError("cannot convert float infinity to integer".into()));
        }
        let t = f.trunc();
        // `{:.0}` prints the exact decimal value of an integral float.
        let text = format!("{:.0}", t.abs());
        Ok(Self::from_digits(t < 0.0, &text))
    }

    fn cmp_magnitude(a: &str, b: &str) -> Ordering {
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    }
}

impl Ord for PyInt {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => Self::cmp_magnitude(&self.digits, &other.digits),
            (true, true) => Self::cmp_magnitude(&other.digits, &self.digits),
        }
    }
}

impl PartialOrd for PyInt {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl From<i128> for PyInt {
    fn from(v: i128) -> Self {
        let negative = v < 0;
        Self::from_digits(negative, &v.unsigned_abs().to_string())
    }
}

impl From<i64> for PyInt {
    fn from(v: i64) -> Self {
        Self::from(i128::from(v))
    }
}

impl From<u64> for PyInt {
    fn from(v: u64) -> Self {
        Self::from(i128::from(v))
    }
}

impl From<i32> for PyInt {
    fn from(v: i32) -> Self {
        Self::from(i128::from(v))
    }
}

impl fmt::Display for PyInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negative {
            f.write_str("-")?;
        }
        f.write_str(&self.digits)
    }
}

impl fmt::Debug for PyInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for PyInt {
    type Err = PyError;

    /// Python `int(s)` in base 10 (white space, a sign and `_` between
    /// digits allowed; any Unicode decimal digit is a digit), with its
    /// `ValueError` messages.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match int_digits(s) {
            Ok((negative, digits)) => Ok(PyInt::from_digits(negative, &digits)),
            Err(IntTextError::TooManyDigits(n)) => Err(PyError::ValueError(format!(
                "Exceeds the limit ({INT_MAX_STR_DIGITS} digits) for integer string conversion: value has {n} \
                 digits; use sys.set_int_max_str_digits() to increase the limit"
            ))),
            // `%.200R`: the repr, cut after 200 characters.
            Err(IntTextError::Invalid) => Err(PyError::ValueError(format!(
                "invalid literal for int() with base 10: {}",
                py_repr(s).chars().take(200).collect::<String>()
            ))),
        }
    }
}

impl Serialize for PyInt {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.to_i64(), self.to_u64()) {
            (Some(v), _) => s.serialize_i64(v),
            (None, Some(v)) => s.serialize_u64(v),
            _ => s.serialize_str(&self.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for PyInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(v), _) => Ok(Self::from(v)),
                (None, Some(v)) => Ok(Self::from(v)),
                _ => Err(serde::de::Error::custom(format!("{n} is not an integer"))),
            },
            Value::String(s) => s.parse().map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!("{other} is not an integer"))),
        }
    }
}

/// A Python exception raised by a built-in on a bad value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PyError {
    /// `TypeError` (e.g. `int(None)`).
    #[error("TypeError: {0}")]
    TypeError(String),
    /// `ValueError` (e.g. `int("")`).
    #[error("ValueError: {0}")]
    ValueError(String),
    /// `OverflowError` (e.g. `int(float("inf"))`).
    #[error("OverflowError: {0}")]
    OverflowError(String),
}

impl PyError {
    /// The exception class.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::TypeError(_) => ErrorClass::TypeError,
            Self::ValueError(_) => ErrorClass::ValueError,
            Self::OverflowError(_) => ErrorClass::OverflowError,
        }
    }

    /// The exception's message.
    pub fn message(&self) -> &str {
        match self {
            Self::TypeError(m) | Self::ValueError(m) | Self::OverflowError(m) => m,
        }
    }
}

/// Python's `str.isspace` (Rust's whitespace plus the separators
/// U+001C..U+001F).
pub(crate) fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// The first code point of each run of ten Unicode decimal digits (general
/// category Nd, what `unicodedata.decimal` reads) in Unicode 14.0.0, the
/// version of CPython 3.11's `unicodedata`. Each run holds the digits 0 to
/// 9 in order.
const DECIMAL_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6, 0xE50, 0xED0,
    0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620,
    0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0,
    0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60,
    0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// `sys.get_int_max_str_digits()` by default (CPython 3.11.0 and the
/// 3.10.7 / 3.9.14 / 3.8.14 / 3.7.14 security releases): `int()` of a
/// string with more digits raises `ValueError`.
pub(crate) const INT_MAX_STR_DIGITS: usize = 4300;

/// The decimal value of a Unicode digit (`unicodedata.decimal(c)`).
fn decimal(c: char) -> Option<u8> {
    let cp = u32::from(c);
    let i = DECIMAL_ZEROS.partition_point(|&zero| zero <= cp).checked_sub(1)?;
    let offset = cp - DECIMAL_ZEROS[i];
    (offset < 10).then_some(offset as u8)
}

/// CPython's `_PyUnicode_TransformDecimalAndSpaceToASCII`, the first step
/// of `int(str)` and `float(str)`: ASCII is kept, other white space
/// becomes a space, other decimal digits their ASCII digit, and the first
/// other character becomes `?` and ends the text.
fn to_ascii_digits_and_spaces(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() && c != '\x7f' {
            out.push(c);
        } else if c.is_whitespace() {
            // For non-ASCII characters Rust's White_Space and Python's
            // `str.isspace` list the same code points.
            out.push(' ');
        } else if let Some(d) = decimal(c) {
            out.push(char::from(b'0' + d));
        } else {
            out.push('?');
            break;
        }
    }
    Cow::Owned(out)
}

/// `Py_ISSPACE`: the ASCII white space `int` and `float` strip once the
/// text is ASCII (not U+001C..U+001F, which `str.strip` would remove).
fn is_ascii_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

fn trim_ascii_space(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii() && is_ascii_space(c as u8))
}

/// Why `int(s)` raises `ValueError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IntTextError {
    /// "invalid literal for int() with base 10: ..."
    Invalid,
    /// More than [`INT_MAX_STR_DIGITS`] digits (leading zeros included).
    TooManyDigits(usize),
}

/// `int(s)` for a `str`, base 10: the sign and the ASCII digits (leading
/// zeros kept), in CPython's order of checks (`PyLong_FromString`):
/// white space, a sign, no leading underscore, digits with single
/// underscores between them, the digit limit, then only white space.
pub(crate) fn int_digits(s: &str) -> Result<(bool, String), IntTextError> {
    let ascii = to_ascii_digits_and_spaces(s);
    let b = ascii.as_bytes();
    let mut i = b.iter().take_while(|c| is_ascii_space(**c)).count();
    let negative = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    if b.get(i) == Some(&b'_') {
        return Err(IntTextError::Invalid);
    }
    let mut digits = String::new();
    let mut prev = 0u8;
    while let Some(&c) = b.get(i) {
        if c == b'_' {
            if prev == b'_' {
                return Err(IntTextError::Invalid);
            }
        } else if c.is_ascii_digit() {
            digits.push(char::from(c));
        } else {
            break;
        }
        prev = c;
        i += 1;
    }
    if prev == b'_' || digits.is_empty() {
        return Err(IntTextError::Invalid);
    }
    if digits.len() > INT_MAX_STR_DIGITS {
        return Err(IntTextError::TooManyDigits(digits.len()));
    }
    if !b[i..].iter().all(|c| is_ascii_space(*c)) {
        return Err(IntTextError::Invalid);
    }
    Ok((negative, digits))
}

/// `float(s)` for a `str`; `None` where CPython raises `ValueError`.
/// Underscores may only stand between two digits
/// (`_Py_string_to_number_with_underscores`); the rest is C's `strtod`
/// grammar with `inf`, `infinity` and `nan` in any case, which Rust's
/// `f64` parser reads the same way.
pub(crate) fn float_value(s: &str) -> Option<f64> {
    let ascii = to_ascii_digits_and_spaces(s);
    let text: Cow<'_, str> = if ascii.contains('_') {
        let b = ascii.as_bytes();
        let mut out = String::with_capacity(b.len());
        let mut prev = 0u8;
        for &c in b {
            if c == b'_' {
                if !prev.is_ascii_digit() {
                    return None;
                }
            } else {
                if prev == b'_' && !c.is_ascii_digit() {
                    return None;
                }
                out.push(char::from(c));
            }
            prev = c;
        }
        if prev == b'_' {
            return None;
        }
        Cow::Owned(out)
    } else {
        ascii
    };
    let t = trim_ascii_space(&text);
    // Rust's parser takes a few spellings C's does not: none of them has
    // anything but a sign, digits, `.`, `e`/`E` or the words.
    if t.is_empty() || t.contains('\0') {
        return None;
    }
    t.parse::<f64>().ok()
}

/// Python `int(s)` for a string, base 10; `None` where Python raises
/// `ValueError` (see [`PyInt`]'s `FromStr` for the message): Unicode
/// decimal digits count as digits, Unicode white space around the number
/// is ignored (not U+001C..U+001F, which `int` keeps), and more than 4300
/// digits are refused.
///
/// ```
/// use cinder_flow::internals::parse_py_int;
/// assert_eq!(parse_py_int(" \u{0663}\u{FF13} ").map(|i| i.to_string()), Some("33".into()));
/// assert!(parse_py_int(&"9".repeat(4301)).is_none());
/// ```
pub fn parse_py_int(s: &str) -> Option<PyInt> {
    s.parse().ok()
}

/// Python `float(s)` for a string; `None` where Python raises `ValueError`.
/// Unicode digits and spaces are read as `int` reads them.
pub fn parse_py_float(s: &str) -> Option<f64> {
    float_value(s)
}

/// oslo.utils `strutils.bool_from_string(s)` (not strict).
pub(crate) fn bool_from_string(s: &str) -> bool {
    matches!(py_strip(s).to_lowercase().as_str(), "1" | "t" | "true" | "on" | "y" | "yes")
}

/// `volume_utils.is_boolean_str`: two whitespace-separated words, `<is>`
/// and a true string.
pub(crate) fn is_boolean_str(s: Option<&str>) -> bool {
    let words: Vec<&str> = s.unwrap_or("").split(py_isspace).filter(|w| !w.is_empty()).collect();
    words.len() == 2 && words[0] == "<is>" && bool_from_string(words[1])
}

// ---------------------------------------------------------------------------
// urlsplit

/// The five parts of `oslo_utils.netutils.urlsplit(url)` (Python 3.11's
/// `urllib.parse.urlsplit`, default arguments).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SplitUrl {
    /// Lower-cased scheme, empty when there is none.
    pub scheme: String,
    /// The authority after `//`, up to the first `/`, `?` or `#`.
    pub netloc: String,
    /// The path.
    pub path: String,
    /// After the first `?` (not inside the fragment).
    pub query: String,
    /// After the first `#`.
    pub fragment: String,
}

/// `oslo_utils.netutils.urlsplit(url)`, as Python 3.11.7 computes it.
///
/// The only error is the `ValueError` Python raises, with its message.
pub fn urlsplit(url: &str) -> Result<SplitUrl, PyError> {
    with_split(url, |split| {
        let s = split.map_err(PyError::ValueError)?;
        Ok(SplitUrl {
            scheme: s.scheme.to_ascii_lowercase(),
            netloc: s.netloc.to_owned(),
            path: s.path.to_owned(),
            query: s.query.to_owned(),
            fragment: s.fragment.to_owned(),
        })
    })
}

/// The parts of a cleaned URL, borrowed; `scheme` is not yet lower-cased.
pub(crate) struct RawSplit<'a> {
    pub(crate) scheme: &'a str,
    pub(crate) netloc: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: &'a str,
    pub(crate) fragment: &'a str,
}

/// Why [`split_raw`] stopped.
enum SplitFail {
    /// The URL contains a tab, CR or LF: Python removes them first.
    Dirty,
    /// Python's `ValueError` message.
    Value(String),
}

/// A 256-entry membership table: `bytes`, plus every byte >= 0x80 if
/// `high`.
const fn byte_table(bytes: &[u8], high: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    if high {
        let mut b = 0x80;
        while b < 256 {
            table[b] = true;
            b += 1;
        }
    }
    table
}

/// Bytes that end or complicate a netloc scan.
static NETLOC_STOP: [bool; 256] = byte_table(b"/?#[]\t\n\r", true);
/// Bytes that matter after the netloc.
static REST_STOP: [bool; 256] = byte_table(b"?#\t\n\r", false);

/// `url.lstrip(<C0 controls and space>)`, as urlsplit starts.
pub(crate) fn trim_leading(url: &str) -> &str {
    let n = url.bytes().take_while(|&b| b <= b' ').count();
    url.get(n..).unwrap_or_default()
}

fn is_tab_cr_lf(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\r')
}

/// Splits `url` like Python's `urlsplit` and hands the result to `f`.
///
/// The common case (no tab, CR or LF) is one pass over the borrowed URL;
/// otherwise those characters are removed into a temporary string first.
pub(crate) fn with_split<R>(url: &str, f: impl FnOnce(Result<RawSplit<'_>, String>) -> R) -> R {
    let url = trim_leading(url);
    match split_raw(url) {
        Ok(split) => f(Ok(split)),
        Err(SplitFail::Value(message)) => f(Err(message)),
        Err(SplitFail::Dirty) => {
            let cleaned: String = url.chars().filter(|&c| !matches!(c, '\t' | '\n' | '\r')).collect();
            match split_raw(&cleaned) {
                Ok(split) => f(Ok(split)),
                Err(SplitFail::Value(message)) => f(Err(message)),
                // Cannot happen: `cleaned` has no tab, CR or LF left.
                Err(SplitFail::Dirty) => f(Err("Invalid URL".to_owned())),
            }
        }
    }
}

/// The lower-cased scheme Python's `urlsplit` reports for `url` (computed
/// before, and regardless of, its `ValueError` checks).
pub(crate) fn scheme_of(url: &str) -> String {
    let url = trim_leading(url);
    if url.bytes().any(is_tab_cr_lf) {
        let cleaned: String = url.chars().filter(|&c| !matches!(c, '\t' | '\n' | '\r')).collect();
        split_scheme(&cleaned).map_or_else(String::new, |(s, _)| s.to_ascii_lowercase())
    } else {
        split_scheme(url).map_or_else(String::new, |(s, _)| s.to_ascii_lowercase())
    }
}

/// The scheme (not lower-cased) and the rest, if `url` has a scheme:
/// Python takes `url[:i]` for the first `:` at `i > 0` when it starts with an
/// ASCII letter and consists of letters, digits and `+-.`. Scanning while
/// the bytes are scheme characters finds the same `:` (any other byte before
/// the first `:` disqualifies the scheme).
pub(crate) fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let bytes = url.as_bytes();
    if !bytes.first().is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    let n = bytes.iter().take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')).count();
    if bytes.get(n) == Some(&b':') {
        Some((url.get(..n)?, url.get(n + 1..)?))
    } else {
        None
    }
}

/// `urllib.parse.urlsplit` (plus oslo's no-op re-split of `#`/`?` in the
/// path) on a URL whose leading C0/space is stripped, in one pass. Stops
/// with [`SplitFail::Dirty`] on a tab, CR or LF, unless the `ValueError`
/// Python raises is already certain from the text before it.
fn split_raw(url: &str) -> Result<RawSplit<'_>, SplitFail> {
    let bytes = url.as_bytes();
    // Nothing before `pos` is a tab, CR or LF (they are not scheme
    // characters); every byte from `pos` on is looked at below, in order.
    let (scheme, mut pos) = match split_scheme(url) {
        Some((scheme, _)) => (scheme, scheme.len() + 1),
        None => ("", 0),
    };
    let mut netloc = "";
    let mut netloc_ascii = true;
    if bytes.get(pos..).is_some_and(|rest| rest.starts_with(b"//")) {
        let start = pos + 2;
        let (mut open, mut close) = (None, false);
        let mut i = start;
        let end = loop {
            i += bytes
                .get(i..)
                .and_then(|rest| rest.iter().position(|&b| NETLOC_STOP[usize::from(b)]))
                .unwrap_or(bytes.len().saturating_sub(i));
            match bytes.get(i) {
                None | Some(b'/' | b'?' | b'#') => break i.min(bytes.len()),
                Some(b'\t' | b'\n' | b'\r') => return Err(SplitFail::Dirty),
                Some(b'[') => {
                    open.get_or_insert(i);
                }
                Some(b']') => close = true,
                Some(_) => netloc_ascii = false,
            }
            i += 1;
        };
        netloc = url.get(start..end).unwrap_or_default();
        pos = end;
        match (open, close) {
            (Some(_), false) | (None, true) => {
                return Err(SplitFail::Value("Invalid IPv6 URL".to_owned()));
            }
            (Some(i), true) => {
                let inner = url.get(i + 1..end).unwrap_or_default();
                let host = inner.split(']').next().unwrap_or_default();
                check_bracketed_host(host).map_err(SplitFail::Value)?;
            }
            (None, false) => {}
        }
    }
    let (mut query_at, mut fragment_at) = (None, None);
    let mut i = pos;
    while let Some(off) = bytes.get(i..).and_then(|rest| rest.iter().position(|&b| REST_STOP[usize::from(b)])) {
        i += off;
        match bytes.get(i) {
            Some(b'#') => {
                fragment_at = Some(i);
                // Only tab/CR/LF matter in the fragment.
                if bytes.get(i..).is_some_and(|rest| rest.iter().any(|&b| is_tab_cr_lf(b))) {
                    return Err(SplitFail::Dirty);
                }
                break;
            }
            Some(b'?') => {
                query_at.get_or_insert(i);
            }
            _ => return Err(SplitFail::Dirty),
        }
        i += 1;
    }
    let before_fragment = fragment_at.unwrap_or(bytes.len());
    let fragment = fragment_at.and_then(|i| url.get(i + 1..)).unwrap_or_default();
    let (path, query) = match query_at {
        Some(i) => (url.get(pos..i).unwrap_or_default(), url.get(i + 1..before_fragment).unwrap_or_default()),
        None => (url.get(pos..before_fragment).unwrap_or_default(), ""),
    };
    if !netloc_ascii {
        check_netloc(netloc).map_err(SplitFail::Value)?;
    }
    Ok(RawSplit { scheme, netloc, path, query, fragment })
}

/// `urllib.parse._check_bracketed_host`.
fn check_bracketed_host(host: &str) -> Result<(), String> {
    if let Some(rest) = host.strip_prefix('v') {
        // re.match(r"\Av[a-fA-F0-9]+\..+\Z", hostname); `.` would not match
        // '\n', but urlsplit has removed every '\n' already.
        let hex_len = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
        let ok = hex_len > 0 && rest[hex_len..].strip_prefix('.').is_some_and(|t| !t.is_empty());
        if ok {
            Ok(())
        } else {
            Err("IPvFuture address is invalid".to_owned())
        }
    } else if is_ipv4(host) {
        Err("An IPv4 address cannot be in brackets".to_owned())
    } else if is_ipv6(host) {
        Ok(())
    } else {
        Err(format!("{} does not appear to be an IPv4 or IPv6 address", py_repr(host)))
    }
}

/// `ipaddress.IPv4Address(s)` succeeds (Python 3.11: exactly four decimal
/// octets of at most three ASCII digits, no leading zeros, each <= 255).
fn is_ipv4(s: &str) -> bool {
    let mut n = 0;
    for octet in s.split('.') {
        n += 1;
        if n > 4 || !is_ipv4_octet(octet) {
            return false;
        }
    }
    n == 4
}

fn is_ipv4_octet(o: &str) -> bool {
    let b = o.as_bytes();
    if b.is_empty() || b.len() > 3 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    if b.len() > 1 && b[0] == b'0' {
        return false;
    }
    b.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')) <= 255
}

/// `ipaddress.IPv6Address(s)` succeeds (Python 3.11, scope ids allowed).
fn is_ipv6(s: &str) -> bool {
    // _split_scope_id
    let addr = match s.split_once('%') {
        Some((addr, scope)) => {
            if scope.is_empty() || scope.contains('%') {
                return false;
            }
            addr
        }
        None => s,
    };
    if addr.is_empty() {
        return false;
    }
    let mut parts: Vec<&str> = addr.split(':').collect();
    if parts.len() < 3 {
        return false;
    }
    if parts.last().is_some_and(|p| p.contains('.')) {
        if !parts.pop().is_some_and(is_ipv4) {
            return false;
        }
        // Two valid hextets replace the IPv4 suffix.
        parts.push("0");
        parts.push("0");
    }
    let len = parts.len();
    if len > 9 {
        return false;
    }
    let mut skip_index = None;
    for (i, p) in parts.iter().enumerate().take(len - 1).skip(1) {
        if p.is_empty() {
            if skip_index.is_some() {
                return false;
            }
            skip_index = Some(i);
        }
    }
    let (hi, lo) = match skip_index {
        Some(skip) => {
            let mut hi = skip;
            let mut lo = len - skip - 1;
            if parts[0].is_empty() {
                hi -= 1;
                if hi != 0 {
                    return false;
                }
            }
            if parts[len - 1].is_empty() {
                lo -= 1;
                if lo != 0 {
                    return false;
                }
            }
            if hi + lo > 7 {
                return false;
            }
            (hi, lo)
        }
        None => {
            if len != 8 || parts[0].is_empty() || parts[len - 1].is_empty() {
                return false;
            }
            (len, 0)
        }
    };
    parts[..hi].iter().chain(parts[len - lo..].iter()).all(|h| is_hextet(h))
}

fn is_hextet(h: &str) -> bool {
    (1..=4).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `urllib.parse._checknetloc`: a non-ASCII netloc whose NFKC form (after
/// dropping `@`, `:`, `#`, `?`) contains one of `/?#@:` is rejected. Such
/// characters cannot appear in a netloc as themselves and NFKC never creates
/// them by composition, so this holds exactly when the netloc contains a
/// character whose compatibility decomposition contains one of them.
fn check_netloc(netloc: &str) -> Result<(), String> {
    if !netloc.chars().any(|c| NFKC_TO_DELIMITER.contains(&c)) {
        return Ok(());
    }
    Err(format!("netloc '{netloc}' contains invalid characters under NFKC normalization"))
}

/// The non-ASCII characters whose NFKC form contains `/`, `?`, `#`, `@` or
/// `:` (Unicode 14.0, Python 3.11's `unicodedata`).
const NFKC_TO_DELIMITER: [char; 19] = [
    '\u{2047}', '\u{2048}', '\u{2049}', '\u{2100}', '\u{2101}', '\u{2105}', '\u{2106}', '\u{2A74}', '\u{FE13}',
    '\u{FE16}', '\u{FE55}', '\u{FE56}', '\u{FE5F}', '\u{FE6B}', '\u{FF03}', '\u{FF0F}', '\u{FF1A}', '\u{FF1F}',
    '\u{FF20}',
];

/// Python's `repr()` of a `str`.
pub(crate) fn py_repr(s: &str) -> String {
    use std::fmt::Write as _;
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        let cp = u32::from(c);
        if c == quote || c == '\\' {
            out.push('\\');
            out.push(c);
        } else if c == '\t' {
            out.push_str("\\t");
        } else if c == '\n' {
            out.push_str("\\n");
        } else if c == '\r' {
            out.push_str("\\r");
        } else if cp < 0x20 || cp == 0x7F {
            let _ = write!(out, "\\x{cp:02x}");
        } else if cp < 0x80 || is_printable(cp) {
            out.push(c);
        } else if cp < 0x100 {
            let _ = write!(out, "\\x{cp:02x}");
        } else if cp < 0x10000 {
            let _ = write!(out, "\\u{cp:04x}");
        } else {
            let _ = write!(out, "\\U{cp:08x}");
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isprintable()` for one non-ASCII code point.
fn is_printable(cp: u32) -> bool {
    NON_PRINTABLE
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_err()
}

// ---------------------------------------------------------------------------
// is_uuid_like

/// `oslo_utils.uuidutils.is_uuid_like(s)`.
///
/// Upstream compares `str(uuid.UUID(s)).replace('-', '')` with
/// `s.replace('urn:', '').replace('uuid:', '').strip('{}').replace('-',
/// '').lower()`; that holds exactly when the latter (before lower-casing) is
/// 32 ASCII hex digits. So upper case, surrounding braces, `urn:`/`uuid:`
/// anywhere and dashes anywhere (after the braces are stripped) are
/// accepted.
pub fn is_uuid_like(s: &str) -> bool {
    match hex32_after_braces(s) {
        Some(answer) => answer,
        None => {
            let s = s.replace("urn:", "").replace("uuid:", "");
            hex32_after_braces(&s) == Some(true)
        }
    }
}

/// Whether `s.strip('{}').replace('-', '')` is 32 ASCII hex digits, or
/// `None` when `s` holds a `:` (so `urn:`/`uuid:` removal may matter).
fn hex32_after_braces(s: &str) -> Option<bool> {
    let t = s.trim_matches(|c| c == '{' || c == '}');
    // Branch-free so that it vectorises: is every byte a hex digit or a
    // dash, and how many dashes are there.
    let bytes = t.as_bytes();
    let bad = bytes.iter().fold(false, |bad, &b| {
        let lower = b | 0x20;
        let is_hex = (b.wrapping_sub(b'0') < 10) | (lower.wrapping_sub(b'a') < 6);
        bad | !(is_hex | (b == b'-'))
    });
    let hex = bytes.len() - bytes.iter().filter(|&&b| b == b'-').count();
    if !bad {
        Some(hex == 32)
    } else if s.contains(':') {
        None
    } else {
        Some(false)
    }
}

/// Code points from U+0080 up that Python 3.11 (Unicode 14.0) considers not
/// printable (categories Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs): `repr()`
/// escapes them. Sorted, inclusive ranges.
#[rustfmt::skip]
const NON_PRINTABLE: &[(u32, u32)] = &[
    (0x0080, 0x00A0), (0x00AD, 0x00AD), (0x0378, 0x0379), (0x0380, 0x0383), (0x038B, 0x038B),
    (0x038D, 0x038D), (0x03A2, 0x03A2), (0x0530, 0x0530), (0x0557, 0x0558), (0x058B, 0x058C),
    (0x0590, 0x0590), (0x05C8, 0x05CF), (0x05EB, 0x05EE), (0x05F5, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070E, 0x070F), (0x074B, 0x074C), (0x07B2, 0x07BF), (0x07FB, 0x07FC),
    (0x082E, 0x082F), (0x083F, 0x083F), (0x085C, 0x085D), (0x085F, 0x085F), (0x086B, 0x086F),
    (0x088F, 0x0897), (0x08E2, 0x08E2), (0x0984, 0x0984), (0x098D, 0x098E), (0x0991, 0x0992),
    (0x09A9, 0x09A9), (0x09B1, 0x09B1), (0x09B3, 0x09B5), (0x09BA, 0x09BB), (0x09C5, 0x09C6),
    (0x09C9, 0x09CA), (0x09CF, 0x09D6), (0x09D8, 0x09DB), (0x09DE, 0x09DE), (0x09E4, 0x09E5),
    (0x09FF, 0x0A00), (0x0A04, 0x0A04), (0x0A0B, 0x0A0E), (0x0A11, 0x0A12), (0x0A29, 0x0A29),
    (0x0A31, 0x0A31), (0x0A34, 0x0A34), (0x0A37, 0x0A37), (0x0A3A, 0x0A3B), (0x0A3D, 0x0A3D),
    (0x0A43, 0x0A46), (0x0A49, 0x0A4A), (0x0A4E, 0x0A50), (0x0A52, 0x0A58), (0x0A5D, 0x0A5D),
    (0x0A5F, 0x0A65), (0x0A77, 0x0A80), (0x0A84, 0x0A84), (0x0A8E, 0x0A8E), (0x0A92, 0x0A92),
    (0x0AA9, 0x0AA9), (0x0AB1, 0x0AB1), (0x0AB4, 0x0AB4), (0x0ABA, 0x0ABB), (0x0AC6, 0x0AC6),
    (0x0ACA, 0x0ACA), (0x0ACE, 0x0ACF), (0x0AD1, 0x0ADF), (0x0AE4, 0x0AE5), (0x0AF2, 0x0AF8),
    (0x0B00, 0x0B00), (0x0B04, 0x0B04), (0x0B0D, 0x0B0E), (0x0B11, 0x0B12), (0x0B29, 0x0B29),
    (0x0B31, 0x0B31), (0x0B34, 0x0B34), (0x0B3A, 0x0B3B), (0x0B45, 0x0B46), (0x0B49, 0x0B4A),
    (0x0B4E, 0x0B54), (0x0B58, 0x0B5B), (0x0B5E, 0x0B5E), (0x0B64, 0x0B65), (0x0B78, 0x0B81),
    (0x0B84, 0x0B84), (0x0B8B, 0x0B8D), (0x0B91, 0x0B91), (0x0B96, 0x0B98), (0x0B9B, 0x0B9B),
    (0x0B9D, 0x0B9D), (0x0BA0, 0x0BA2), (0x0BA5, 0x0BA7), (0x0BAB, 0x0BAD), (0x0BBA, 0x0BBD),
    (0x0BC3, 0x0BC5), (0x0BC9, 0x0BC9), (0x0BCE, 0x0BCF), (0x0BD1, 0x0BD6), (0x0BD8, 0x0BE5),
    (0x0BFB, 0x0BFF), (0x0C0D, 0x0C0D), (0x0C11, 0x0C11), (0x0C29, 0x0C29), (0x0C3A, 0x0C3B),
    (0x0C45, 0x0C45), (0x0C49, 0x0C49), (0x0C4E, 0x0C54), (0x0C57, 0x0C57), (0x0C5B, 0x0C5C),
    (0x0C5E, 0x0C5F), (0x0C64, 0x0C65), (0x0C70, 0x0C76), (0x0C8D, 0x0C8D), (0x0C91, 0x0C91),
    (0x0CA9, 0x0CA9), (0x0CB4, 0x0CB4), (0x0CBA, 0x0CBB), (0x0CC5, 0x0CC5), (0x0CC9, 0x0CC9),
    (0x0CCE, 0x0CD4), (0x0CD7, 0x0CDC), (0x0CDF, 0x0CDF), (0x0CE4, 0x0CE5), (0x0CF0, 0x0CF0),
    (0x0CF3, 0x0CFF), (0x0D0D, 0x0D0D), (0x0D11, 0x0D11), (0x0D45, 0x0D45), (0x0D49, 0x0D49),
    (0x0D50, 0x0D53), (0x0D64, 0x0D65), (0x0D80, 0x0D80), (0x0D84, 0x0D84), (0x0D97, 0x0D99),
    (0x0DB2, 0x0DB2), (0x0DBC, 0x0DBC), (0x0DBE, 0x0DBF), (0x0DC7, 0x0DC9), (0x0DCB, 0x0DCE),
    (0x0DD5, 0x0DD5), (0x0DD7, 0x0DD7), (0x0DE0, 0x0DE5), (0x0DF0, 0x0DF1), (0x0DF5, 0x0E00),
    (0x0E3B, 0x0E3E), (0x0E5C, 0x0E80), (0x0E83, 0x0E83), (0x0E85, 0x0E85), (0x0E8B, 0x0E8B),
    (0x0EA4, 0x0EA4), (0x0EA6, 0x0EA6), (0x0EBE, 0x0EBF), (0x0EC5, 0x0EC5), (0x0EC7, 0x0EC7),
    (0x0ECE, 0x0ECF), (0x0EDA, 0x0EDB), (0x0EE0, 0x0EFF), (0x0F48, 0x0F48), (0x0F6D, 0x0F70),
    (0x0F98, 0x0F98), (0x0FBD, 0x0FBD), (0x0FCD, 0x0FCD), (0x0FDB, 0x0FFF), (0x10C6, 0x10C6),
    (0x10C8, 0x10CC), (0x10CE, 0x10CF), (0x1249, 0x1249), (0x124E, 0x124F), (0x1257, 0x1257),
    (0x1259, 0x1259), (0x125E, 0x125F), (0x1289, 0x1289), (0x128E, 0x128F), (0x12B1, 0x12B1),
    (0x12B6, 0x12B7), (0x12BF, 0x12BF), (0x12C1, 0x12C1), (0x12C6, 0x12C7), (0x12D7, 0x12D7),
    (0x1311, 0x1311), (0x1316, 0x1317), (0x135B, 0x135C), (0x137D, 0x137F), (0x139A, 0x139F),
    (0x13F6, 0x13F7), (0x13FE, 0x13FF), (0x1680, 0x1680), (0x169D, 0x169F), (0x16F9, 0x16FF),
    (0x1716, 0x171E), (0x1737, 0x173F), (0x1754, 0x175F), (0x176D, 0x176D), (0x1771, 0x1771),
    (0x1774, 0x177F), (0x17DE, 0x17DF), (0x17EA, 0x17EF), (0x17FA, 0x17FF), (0x180E, 0x180E),
    (0x181A, 0x181F), (0x1879, 0x187F), (0x18AB, 0x18AF), (0x18F6, 0x18FF), (0x191F, 0x191F),
    (0x192C, 0x192F), (0x193C, 0x193F), (0x1941, 0x1943), (0x196E, 0x196F), (0x1975, 0x197F),
    (0x19AC, 0x19AF), (0x19CA, 0x19CF), (0x19DB, 0x19DD), (0x1A1C, 0x1A1D), (0x1A5F, 0x1A5F),
    (0x1A7D, 0x1A7E), (0x1A8A, 0x1A8F), (0x1A9A, 0x1A9F), (0x1AAE, 0x1AAF), (0x1ACF, 0x1AFF),
    (0x1B4D, 0x1B4F), (0x1B7F, 0x1B7F), (0x1BF4, 0x1BFB), (0x1C38, 0x1C3A), (0x1C4A, 0x1C4C),
    (0x1C89, 0x1C8F), (0x1CBB, 0x1CBC), (0x1CC8, 0x1CCF), (0x1CFB, 0x1CFF), (0x1F16, 0x1F17),
    (0x1F1E, 0x1F1F), (0x1F46, 0x1F47), (0x1F4E, 0x1F4F), (0x1F58, 0x1F58), (0x1F5A, 0x1F5A),
    (0x1F5C, 0x1F5C), (0x1F5E, 0x1F5E), (0x1F7E, 0x1F7F), (0x1FB5, 0x1FB5), (0x1FC5, 0x1FC5),
    (0x1FD4, 0x1FD5), (0x1FDC, 0x1FDC), (0x1FF0, 0x1FF1), (0x1FF5, 0x1FF5), (0x1FFF, 0x200F),
    (0x2028, 0x202F), (0x205F, 0x206F), (0x2072, 0x2073), (0x208F, 0x208F), (0x209D, 0x209F),
    (0x20C1, 0x20CF), (0x20F1, 0x20FF), (0x218C, 0x218F), (0x2427, 0x243F), (0x244B, 0x245F),
    (0x2B74, 0x2B75), (0x2B96, 0x2B96), (0x2CF4, 0x2CF8), (0x2D26, 0x2D26), (0x2D28, 0x2D2C),
    (0x2D2E, 0x2D2F), (0x2D68, 0x2D6E), (0x2D71, 0x2D7E), (0x2D97, 0x2D9F), (0x2DA7, 0x2DA7),
    (0x2DAF, 0x2DAF), (0x2DB7, 0x2DB7), (0x2DBF, 0x2DBF), (0x2DC7, 0x2DC7), (0x2DCF, 0x2DCF),
    (0x2DD7, 0x2DD7), (0x2DDF, 0x2DDF), (0x2E5E, 0x2E7F), (0x2E9A, 0x2E9A), (0x2EF4, 0x2EFF),
    (0x2FD6, 0x2FEF), (0x2FFC, 0x3000), (0x3040, 0x3040), (0x3097, 0x3098), (0x3100, 0x3104),
    (0x3130, 0x3130), (0x318F, 0x318F), (0x31E4, 0x31EF), (0x321F, 0x321F), (0xA48D, 0xA48F),
    (0xA4C7, 0xA4CF), (0xA62C, 0xA63F), (0xA6F8, 0xA6FF), (0xA7CB, 0xA7CF), (0xA7D2, 0xA7D2),
    (0xA7D4, 0xA7D4), (0xA7DA, 0xA7F1), (0xA82D, 0xA82F), (0xA83A, 0xA83F), (0xA878, 0xA87F),
    (0xA8C6, 0xA8CD), (0xA8DA, 0xA8DF), (0xA954, 0xA95E), (0xA97D, 0xA97F), (0xA9CE, 0xA9CE),
    (0xA9DA, 0xA9DD), (0xA9FF, 0xA9FF), (0xAA37, 0xAA3F), (0xAA4E, 0xAA4F), (0xAA5A, 0xAA5B),
    (0xAAC3, 0xAADA), (0xAAF7, 0xAB00), (0xAB07, 0xAB08), (0xAB0F, 0xAB10), (0xAB17, 0xAB1F),
    (0xAB27, 0xAB27), (0xAB2F, 0xAB2F), (0xAB6C, 0xAB6F), (0xABEE, 0xABEF), (0xABFA, 0xABFF),
    (0xD7A4, 0xD7AF), (0xD7C7, 0xD7CA), (0xD7FC, 0xF8FF), (0xFA6E, 0xFA6F), (0xFADA, 0xFAFF),
    (0xFB07, 0xFB12), (0xFB18, 0xFB1C), (0xFB37, 0xFB37), (0xFB3D, 0xFB3D), (0xFB3F, 0xFB3F),
    (0xFB42, 0xFB42), (0xFB45, 0xFB45), (0xFBC3, 0xFBD2), (0xFD90, 0xFD91), (0xFDC8, 0xFDCE),
    (0xFDD0, 0xFDEF), (0xFE1A, 0xFE1F), (0xFE53, 0xFE53), (0xFE67, 0xFE67), (0xFE6C, 0xFE6F),
    (0xFE75, 0xFE75), (0xFEFD, 0xFF00), (0xFFBF, 0xFFC1), (0xFFC8, 0xFFC9), (0xFFD0, 0xFFD1),
    (0xFFD8, 0xFFD9), (0xFFDD, 0xFFDF), (0xFFE7, 0xFFE7), (0xFFEF, 0xFFFB), (0xFFFE, 0xFFFF),
    (0x1000C, 0x1000C), (0x10027, 0x10027), (0x1003B, 0x1003B), (0x1003E, 0x1003E), (0x1004E, 0x1004F),
    (0x1005E, 0x1007F), (0x100FB, 0x100FF), (0x10103, 0x10106), (0x10134, 0x10136), (0x1018F, 0x1018F),
    (0x1019D, 0x1019F), (0x101A1, 0x101CF), (0x101FE, 0x1027F), (0x1029D, 0x1029F), (0x102D1, 0x102DF),
    (0x102FC, 0x102FF), (0x10324, 0x1032C), (0x1034B, 0x1034F), (0x1037B, 0x1037F), (0x1039E, 0x1039E),
    (0x103C4, 0x103C7), (0x103D6, 0x103FF), (0x1049E, 0x1049F), (0x104AA, 0x104AF), (0x104D4, 0x104D7),
    (0x104FC, 0x104FF), (0x10528, 0x1052F), (0x10564, 0x1056E), (0x1057B, 0x1057B), (0x1058B, 0x1058B),
    (0x10593, 0x10593), (0x10596, 0x10596), (0x105A2, 0x105A2), (0x105B2, 0x105B2), (0x105BA, 0x105BA),
    (0x105BD, 0x105FF), (0x10737, 0x1073F), (0x10756, 0x1075F), (0x10768, 0x1077F), (0x10786, 0x10786),
    (0x107B1, 0x107B1), (0x107BB, 0x107FF), (0x10806, 0x10807), (0x10809, 0x10809), (0x10836, 0x10836),
    (0x10839, 0x1083B), (0x1083D, 0x1083E), (0x10856, 0x10856), (0x1089F, 0x108A6), (0x108B0, 0x108DF),
    (0x108F3, 0x108F3), (0x108F6, 0x108FA), (0x1091C, 0x1091E), (0x1093A, 0x1093E), (0x10940, 0x1097F),
    (0x109B8, 0x109BB), (0x109D0, 0x109D1), (0x10A04, 0x10A04), (0x10A07, 0x10A0B), (0x10A14, 0x10A14),
    (0x10A18, 0x10A18), (0x10A36, 0x10A37), (0x10A3B, 0x10A3E), (0x10A49, 0x10A4F), (0x10A59, 0x10A5F),
    (0x10AA0, 0x10ABF), (0x10AE7, 0x10AEA), (0x10AF7, 0x10AFF), (0x10B36, 0x10B38), (0x10B56, 0x10B57),
    (0x10B73, 0x10B77), (0x10B92, 0x10B98), (0x10B9D, 0x10BA8), (0x10BB0, 0x10BFF), (0x10C49, 0x10C7F),
    (0x10CB3, 0x10CBF), (0x10CF3, 0x10CF9), (0x10D28, 0x10D2F), (0x10D3A, 0x10E5F), (0x10E7F, 0x10E7F),
    (0x10EAA, 0x10EAA), (0x10EAE, 0x10EAF), (0x10EB2, 0x10EFF), (0x10F28, 0x10F2F), (0x10F5A, 0x10F6F),
    (0x10F8A, 0x10FAF), (0x10FCC, 0x10FDF), (0x10FF7, 0x10FFF), (0x1104E, 0x11051), (0x11076, 0x1107E),
    (0x110BD, 0x110BD), (0x110C3, 0x110CF), (0x110E9, 0x110EF), (0x110FA, 0x110FF), (0x11135, 0x11135),
    (0x11148, 0x1114F), (0x11177, 0x1117F), (0x111E0, 0x111E0), (0x111F5, 0x111FF), (0x11212, 0x11212),
    (0x1123F, 0x1127F), (0x11287, 0x11287), (0x11289, 0x11289), (0x1128E, 0x1128E), (0x1129E, 0x1129E),
    (0x112AA, 0x112AF), (0x112EB, 0x112EF), (0x112FA, 0x112FF), (0x11304, 0x11304), (0x1130D, 0x1130E),
    (0x11311, 0x11312), (0x11329, 0x11329), (0x11331, 0x11331), (0x11334, 0x11334), (0x1133A, 0x1133A),
    (0x11345, 0x11346), (0x11349, 0x1134A), (0x1134E, 0x1134F), (0x11351, 0x11356), (0x11358, 0x1135C),
    (0x11364, 0x11365), (0x1136D, 0x1136F), (0x11375, 0x113FF), (0x1145C, 0x1145C), (0x11462, 0x1147F),
    (0x114C8, 0x114CF), (0x114DA, 0x1157F), (0x115B6, 0x115B7), (0x115DE, 0x115FF), (0x11645, 0x1164F),
    (0x1165A, 0x1165F), (0x1166D, 0x1167F), (0x116BA, 0x116BF), (0x116CA, 0x116FF), (0x1171B, 0x1171C),
    (0x1172C, 0x1172F), (0x11747, 0x117FF), (0x1183C, 0x1189F), (0x118F3, 0x118FE), (0x11907, 0x11908),
    (0x1190A, 0x1190B), (0x11914, 0x11914), (0x11917, 0x11917), (0x11936, 0x11936), (0x11939, 0x1193A),
    (0x11947, 0x1194F), (0x1195A, 0x1199F), (0x119A8, 0x119A9), (0x119D8, 0x119D9), (0x119E5, 0x119FF),
    (0x11A48, 0x11A4F), (0x11AA3, 0x11AAF), (0x11AF9, 0x11BFF), (0x11C09, 0x11C09), (0x11C37, 0x11C37),
    (0x11C46, 0x11C4F), (0x11C6D, 0x11C6F), (0x11C90, 0x11C91), (0x11CA8, 0x11CA8), (0x11CB7, 0x11CFF),
    (0x11D07, 0x11D07), (0x11D0A, 0x11D0A), (0x11D37, 0x11D39), (0x11D3B, 0x11D3B), (0x11D3E, 0x11D3E),
    (0x11D48, 0x11D4F), (0x11D5A, 0x11D5F), (0x11D66, 0x11D66), (0x11D69, 0x11D69), (0x11D8F, 0x11D8F),
    (0x11D92, 0x11D92), (0x11D99, 0x11D9F), (0x11DAA, 0x11EDF), (0x11EF9, 0x11FAF), (0x11FB1, 0x11FBF),
    (0x11FF2, 0x11FFE), (0x1239A, 0x123FF), (0x1246F, 0x1246F), (0x12475, 0x1247F), (0x12544, 0x12F8F),
    (0x12FF3, 0x12FFF), (0x1342F, 0x143FF), (0x14647, 0x167FF), (0x16A39, 0x16A3F), (0x16A5F, 0x16A5F),
    (0x16A6A, 0x16A6D), (0x16ABF, 0x16ABF), (0x16ACA, 0x16ACF), (0x16AEE, 0x16AEF), (0x16AF6, 0x16AFF),
    (0x16B46, 0x16B4F), (0x16B5A, 0x16B5A), (0x16B62, 0x16B62), (0x16B78, 0x16B7C), (0x16B90, 0x16E3F),
    (0x16E9B, 0x16EFF), (0x16F4B, 0x16F4E), (0x16F88, 0x16F8E), (0x16FA0, 0x16FDF), (0x16FE5, 0x16FEF),
    (0x16FF2, 0x16FFF), (0x187F8, 0x187FF), (0x18CD6, 0x18CFF), (0x18D09, 0x1AFEF), (0x1AFF4, 0x1AFF4),
    (0x1AFFC, 0x1AFFC), (0x1AFFF, 0x1AFFF), (0x1B123, 0x1B14F), (0x1B153, 0x1B163), (0x1B168, 0x1B16F),
    (0x1B2FC, 0x1BBFF), (0x1BC6B, 0x1BC6F), (0x1BC7D, 0x1BC7F), (0x1BC89, 0x1BC8F), (0x1BC9A, 0x1BC9B),
    (0x1BCA0, 0x1CEFF), (0x1CF2E, 0x1CF2F), (0x1CF47, 0x1CF4F), (0x1CFC4, 0x1CFFF), (0x1D0F6, 0x1D0FF),
    (0x1D127, 0x1D128), (0x1D173, 0x1D17A), (0x1D1EB, 0x1D1FF), (0x1D246, 0x1D2DF), (0x1D2F4, 0x1D2FF),
    (0x1D357, 0x1D35F), (0x1D379, 0x1D3FF), (0x1D455, 0x1D455), (0x1D49D, 0x1D49D), (0x1D4A0, 0x1D4A1),
    (0x1D4A3, 0x1D4A4), (0x1D4A7, 0x1D4A8), (0x1D4AD, 0x1D4AD), (0x1D4BA, 0x1D4BA), (0x1D4BC, 0x1D4BC),
    (0x1D4C4, 0x1D4C4), (0x1D506, 0x1D506), (0x1D50B, 0x1D50C), (0x1D515, 0x1D515), (0x1D51D, 0x1D51D),
    (0x1D53A, 0x1D53A), (0x1D53F, 0x1D53F), (0x1D545, 0x1D545), (0x1D547, 0x1D549), (0x1D551, 0x1D551),
    (0x1D6A6, 0x1D6A7), (0x1D7CC, 0x1D7CD), (0x1DA8C, 0x1DA9A), (0x1DAA0, 0x1DAA0), (0x1DAB0, 0x1DEFF),
    (0x1DF1F, 0x1DFFF), (0x1E007, 0x1E007), (0x1E019, 0x1E01A), (0x1E022, 0x1E022), (0x1E025, 0x1E025),
    (0x1E02B, 0x1E0FF), (0x1E12D, 0x1E12F), (0x1E13E, 0x1E13F), (0x1E14A, 0x1E14D), (0x1E150, 0x1E28F),
    (0x1E2AF, 0x1E2BF), (0x1E2FA, 0x1E2FE), (0x1E300, 0x1E7DF), (0x1E7E7, 0x1E7E7), (0x1E7EC, 0x1E7EC),
    (0x1E7EF, 0x1E7EF), (0x1E7FF, 0x1E7FF), (0x1E8C5, 0x1E8C6), (0x1E8D7, 0x1E8FF), (0x1E94C, 0x1E94F),
    (0x1E95A, 0x1E95D), (0x1E960, 0x1EC70), (0x1ECB5, 0x1ED00), (0x1ED3E, 0x1EDFF), (0x1EE04, 0x1EE04),
    (0x1EE20, 0x1EE20), (0x1EE23, 0x1EE23), (0x1EE25, 0x1EE26), (0x1EE28, 0x1EE28), (0x1EE33, 0x1EE33),
    (0x1EE38, 0x1EE38), (0x1EE3A, 0x1EE3A), (0x1EE3C, 0x1EE41), (0x1EE43, 0x1EE46), (0x1EE48, 0x1EE48),
    (0x1EE4A, 0x1EE4A), (0x1EE4C, 0x1EE4C), (0x1EE50, 0x1EE50), (0x1EE53, 0x1EE53), (0x1EE55, 0x1EE56),
    (0x1EE58, 0x1EE58), (0x1EE5A, 0x1EE5A), (0x1EE5C, 0x1EE5C), (0x1EE5E, 0x1EE5E), (0x1EE60, 0x1EE60),
    (0x1EE63, 0x1EE63), (0x1EE65, 0x1EE66), (0x1EE6B, 0x1EE6B), (0x1EE73, 0x1EE73), (0x1EE78, 0x1EE78),
    (0x1EE7D, 0x1EE7D), (0x1EE7F, 0x1EE7F), (0x1EE8A, 0x1EE8A), (0x1EE9C, 0x1EEA0), (0x1EEA4, 0x1EEA4),
    (0x1EEAA, 0x1EEAA), (0x1EEBC, 0x1EEEF), (0x1EEF2, 0x1EFFF), (0x1F02C, 0x1F02F), (0x1F094, 0x1F09F),
    (0x1F0AF, 0x1F0B0), (0x1F0C0, 0x1F0C0), (0x1F0D0, 0x1F0D0), (0x1F0F6, 0x1F0FF), (0x1F1AE, 0x1F1E5),
    (0x1F203, 0x1F20F), (0x1F23C, 0x1F23F), (0x1F249, 0x1F24F), (0x1F252, 0x1F25F), (0x1F266, 0x1F2FF),
    (0x1F6D8, 0x1F6DC), (0x1F6ED, 0x1F6EF), (0x1F6FD, 0x1F6FF), (0x1F774, 0x1F77F), (0x1F7D9, 0x1F7DF),
    (0x1F7EC, 0x1F7EF), (0x1F7F1, 0x1F7FF), (0x1F80C, 0x1F80F), (0x1F848, 0x1F84F), (0x1F85A, 0x1F85F),
    (0x1F888, 0x1F88F), (0x1F8AE, 0x1F8AF), (0x1F8B2, 0x1F8FF), (0x1FA54, 0x1FA5F), (0x1FA6E, 0x1FA6F),
    (0x1FA75, 0x1FA77), (0x1FA7D, 0x1FA7F), (0x1FA87, 0x1FA8F), (0x1FAAD, 0x1FAAF), (0x1FABB, 0x1FABF),
    (0x1FAC6, 0x1FACF), (0x1FADA, 0x1FADF), (0x1FAE8, 0x1FAEF), (0x1FAF7, 0x1FAFF), (0x1FB93, 0x1FB93),
    (0x1FBCB, 0x1FBEF), (0x1FBFA, 0x1FFFF), (0x2A6E0, 0x2A6FF), (0x2B739, 0x2B73F), (0x2B81E, 0x2B81F),
    (0x2CEA2, 0x2CEAF), (0x2EBE1, 0x2F7FF), (0x2FA1E, 0x2FFFF), (0x3134B, 0xE00FF), (0xE01F0, 0x10FFFF),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracketed_hosts() {
        let msg = |u: &str| match urlsplit(u) {
            Err(PyError::ValueError(message)) => Some(message),
            _ => None,
        };
        assert_eq!(msg("x://[::1]:80/p"), None);
        assert_eq!(msg("x://[fe80::1%eth0]"), None);
        assert_eq!(msg("x://[::ffff:1.2.3.4]"), None);
        assert_eq!(msg("x://[v1f.anything]"), None);
        assert_eq!(msg("x://[1.2.3.4]").as_deref(), Some("An IPv4 address cannot be in brackets"));
        assert_eq!(msg("x://[v1.]").as_deref(), Some("IPvFuture address is invalid"));
        assert_eq!(msg("x://[fe80::1%]").as_deref(), Some("'fe80::1%' does not appear to be an IPv4 or IPv6 address"));
        assert_eq!(
            msg("x://[::ffff:01.2.3.4]").as_deref(),
            Some("'::ffff:01.2.3.4' does not appear to be an IPv4 or IPv6 address")
        );
        assert_eq!(
            msg("x://[\u{85}\u{e000}\u{10ffff}é]").as_deref(),
            Some("'\\x85\\ue000\\U0010ffffé' does not appear to be an IPv4 or IPv6 address")
        );
    }

    #[test]
    fn the_digit_table_has_runs_of_ten_in_order() {
        assert!(DECIMAL_ZEROS.windows(2).all(|w| w[1] >= w[0] + 10));
        assert_eq!(decimal('7'), Some(7));
        assert_eq!(decimal('\u{0663}'), Some(3)); // ARABIC-INDIC DIGIT THREE
        assert_eq!(decimal('\u{FF13}'), Some(3)); // FULLWIDTH DIGIT THREE
        assert_eq!(decimal('\u{1D7D9}'), Some(1)); // MATHEMATICAL DOUBLE-STRUCK DIGIT ONE
        assert_eq!(decimal('\u{00B2}'), None); // SUPERSCRIPT TWO is not a decimal
        assert_eq!(decimal('a'), None);
    }

    #[test]
    fn int_reads_unicode_digits_and_spaces() {
        assert_eq!(int_digits("\u{0661}\u{0662}"), Ok((false, "12".into())));
        assert_eq!(int_digits(" \u{2003}-\u{FF13}\u{3000}"), Ok((true, "3".into())));
        assert_eq!(int_digits("\u{1c}5"), Err(IntTextError::Invalid));
        assert_eq!(int_digits(&"1".repeat(4301)), Err(IntTextError::TooManyDigits(4301)));
        assert_eq!(int_digits(&format!("{}_", "1".repeat(4301))), Err(IntTextError::Invalid));
        assert_eq!(int_digits(&format!("{}x", "1".repeat(4301))), Err(IntTextError::TooManyDigits(4301)));
        assert!(int_digits(&"1".repeat(4300)).is_ok());
    }

    #[test]
    fn float_reads_unicode_digits() {
        assert_eq!(float_value("\u{0661}.\u{0665}"), Some(1.5));
        assert_eq!(float_value("1_0.5"), Some(10.5));
        assert_eq!(float_value("1._5"), None);
        assert_eq!(float_value("\u{1c}1.0"), None);
    }
}
