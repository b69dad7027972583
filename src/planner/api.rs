//! The API side of a create: `volume/api.py` `API.create` and the API flow's
//! `ExtractVolumeRequestTask`, `QuotaReserveTask` and `EntryCreateTask`
//! (`volume/flows/api/create_volume.py`), rules API-1 to API-29 of
//! `cinder-rules.md` §2.
//!
//! [`plan_api`] is pure like [`super::plan`]: it reads an [`ApiRequest`], the
//! [`Facts`] gathered so far and the [`Config`], and either asks for more
//! facts ([`ApiPlanning::NeedFacts`]) or decides ([`ApiPlanning::Done`]) what
//! upstream does with the request: which size, volume type, availability
//! zones, encryption and multiattach it extracts, the volume row it creates,
//! or the exception it raises, with its class name and message.
//!
//! Upstream is followed check by check, quirks included: Python's `int()`,
//! `float()` and truthiness decide what a size is ([`RequestedSize`],
//! [`PyInt`]); a group without a zone replaces the requested zone by none;
//! the fallback zone is not validated again; `replication_status` is
//! `disabled` unless the type has QoS specs; a key is made for an encrypted
//! type before multiattach rejects it.
//!
//! Every availability-zone decision comes with a [`ZoneExplanation`]: the
//! zones Cinder knows, the type's restriction, where the candidate zone came
//! from, whether it fell back, and why a zone was rejected, in types and in
//! words (seed 003: a Nova zone that Cinder does not know).
//!
//! [`ApiKind::Create`] is `API.create` as the REST controller calls it
//! once it has resolved the request's references (API-2), but without the
//! controller's own size default (API-5), as the conformance format runs it:
//! a null size with a source fails `int(None)` in API-10.
//!
//! Not modelled: policy checks (API-7, API-16, the multiattach policy of
//! API-24: the default policy lets a project member create), the legacy
//! `source_replica` and `multiattach` parameters (API-6, API-8), the image
//! name lookup and Nova-snapshot images (API-3, API-4: the request names an
//! image id), consistency groups and group snapshots, the scheduler cast
//! (API-29, which decides nothing the result reports), per-project quota
//! overrides and quota classes (Cinder's default quotas apply: 10 volumes,
//! 1000 GiB, no per-volume limit), and Unicode digits in size strings (only
//! ASCII digits are read as digits).
//!
//! ```
//! use cinder_flow::config::Config;
//! use cinder_flow::facts::{Fact, Facts, Need};
//! use cinder_flow::model::{Service, VolumeType};
//! use cinder_flow::planner::{plan_api, ApiKind, ApiPlanning, ApiRequest, RequestedSize};
//!
//! // Seed 003: a Nova zone Cinder does not know.
//! let mut request = ApiRequest::new("project-1", "user-1");
//! request.size = RequestedSize::from(1);
//! request.availability_zone = Some("ag1".into());
//! let config = Config::default();
//! let mut facts = Facts::new();
//! let result = loop {
//!     match plan_api(&request, ApiKind::Create, &facts, &config).unwrap() {
//!         ApiPlanning::Done(result) => break result,
//!         // Answer what the planner asks for (the shell does this through
//!         // the ports: `shell::api_request`).
//!         ApiPlanning::NeedFacts(needs) => {
//!             for need in needs {
//!                 facts.learn(match need {
//!                     Need::Services => Fact::Services {
//!                         services: vec![Service {
//!                             host: "controller1@ceph".into(),
//!                             binary: "cinder-volume".into(),
//!                             topic: "cinder-volume".into(),
//!                             availability_zone: "nova".into(),
//!                             disabled: false,
//!                         }],
//!                     },
//!                     Need::VolumeType { name } => Fact::VolumeType {
//!                         volume_type: (name == "__DEFAULT__").then(|| VolumeType::plain("type-default", "__DEFAULT__")),
//!                         name,
//!                     },
//!                     Need::ProjectDefaultVolumeType { project_id } => {
//!                         Fact::ProjectDefaultVolumeType { project_id, volume_type_id: None }
//!                     }
//!                     other => unreachable!("{other:?}"),
//!                 });
//!             }
//!         }
//!     }
//! };
//! // ag1 is not a zone Cinder knows, and fallback is off.
//! assert_eq!(result.error().map(|e| e.name()), Some("InvalidAvailabilityZone"));
//! assert_eq!(result.known_availability_zones, Some(vec!["nova".to_owned()]));
//! let words = result.zone.as_ref().unwrap().to_string();
//! assert!(words.contains("\"ag1\" is not one Cinder knows"));
//! ```

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::PlanError;
use crate::config::Config;
use crate::error::BackendErrorKind;
use crate::facts::{Facts, Need, ProjectUsage};
use crate::model::{
    Encryption, Image, ImageId, ProjectId, Service, Snapshot, SnapshotId, UserId, Volume, VolumeId, VolumeStatus,
    VolumeType, GIB,
};
use crate::plan::ErrorClass;

// ---------------------------------------------------------------------------
// Python value semantics
// ---------------------------------------------------------------------------

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

    fn from_digits(negative: bool, digits: &str) -> Self {
        let trimmed = digits.trim_start_matches('0');
        if trimmed.is_empty() {
            Self::zero()
        } else {
            Self { negative, digits: trimmed.to_owned() }
        }
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

    /// Python `int(s)` in base 10 (whitespace, a sign and `_` between digits
    /// allowed).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_py_int(s).ok_or_else(|| PyError::ValueError(format!("invalid literal for int() with base 10: {s:?}")))
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
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// Removes PEP 515 underscores, which may only stand between two digits.
fn without_underscores(s: &str) -> Option<String> {
    let chars: Vec<char> = s.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c == '_' {
            let before = i.checked_sub(1).and_then(|j| chars.get(j)).is_some_and(char::is_ascii_digit);
            let after = chars.get(i + 1).is_some_and(char::is_ascii_digit);
            if !before || !after {
                return None;
            }
        }
    }
    Some(chars.into_iter().filter(|c| *c != '_').collect())
}

/// Python `int(s)` for a string, base 10; `None` where Python raises
/// `ValueError`.
pub fn parse_py_int(s: &str) -> Option<PyInt> {
    let t = py_strip(s);
    let (negative, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if body.is_empty() || !body.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return None;
    }
    let digits = without_underscores(body)?;
    Some(PyInt::from_digits(negative, &digits))
}

/// Python `float(s)` for a string; `None` where Python raises `ValueError`.
pub fn parse_py_float(s: &str) -> Option<f64> {
    let t = without_underscores(py_strip(s))?;
    if !t.is_ascii() {
        return None;
    }
    t.parse::<f64>().ok()
}

/// oslo.utils `uuidutils.is_uuid_like`, the same check the `cinder://`
/// parser uses (one implementation, differentially tested against Python).
pub use crate::location::is_uuid_like;

/// oslo.utils `strutils.bool_from_string(s)` (not strict).
fn bool_from_string(s: &str) -> bool {
    matches!(py_strip(s).to_lowercase().as_str(), "1" | "t" | "true" | "on" | "y" | "yes")
}

/// `volume_utils.is_boolean_str`: two whitespace-separated words, `<is>`
/// and a true string.
fn is_boolean_str(s: Option<&str>) -> bool {
    let words: Vec<&str> = s.unwrap_or("").split(py_isspace).filter(|w| !w.is_empty()).collect();
    words.len() == 2 && words[0] == "<is>" && bool_from_string(words[1])
}

/// The `size` of a create request, as the API receives it from JSON: the
/// Python type matters (API-9, API-10, API-18).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum RequestedSize {
    /// `null` or omitted.
    #[default]
    Null,
    /// `true` / `false` (a Python `bool` is an `int`).
    Bool(bool),
    /// An integer.
    Int(PyInt),
    /// A float (JSON `2.5`, or NaN/infinity from a Rust caller).
    Float(f64),
    /// A string, e.g. cinderclient's `"10"`.
    Str(String),
}

/// What `utils.as_int` returns (API-18).
#[derive(Clone, Debug, PartialEq)]
pub enum AsInt {
    /// It converted.
    Int(PyInt),
    /// Neither `int()` nor `int(float())` worked: the value is returned
    /// unchanged (and then fails the size check).
    Unchanged(RequestedSize),
}

impl From<i64> for RequestedSize {
    fn from(v: i64) -> Self {
        Self::Int(PyInt::from(v))
    }
}

impl From<i32> for RequestedSize {
    fn from(v: i32) -> Self {
        Self::Int(PyInt::from(v))
    }
}

impl From<&str> for RequestedSize {
    fn from(v: &str) -> Self {
        Self::Str(v.to_owned())
    }
}

impl RequestedSize {
    /// From a JSON value: `None` for arrays and objects, which a size never
    /// is.
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(match v {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => Self::Int(PyInt::from(i)),
                (None, Some(u), _) => Self::Int(PyInt::from(u)),
                (None, None, Some(f)) => Self::Float(f),
                _ => return None,
            },
            Value::String(s) => Self::Str(s.clone()),
            Value::Array(_) | Value::Object(_) => return None,
        })
    }

    /// As JSON (NaN and infinities, which JSON lacks, become `null`).
    pub fn to_json(&self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::Int(i) => serde_json::to_value(i).unwrap_or(Value::Null),
            Self::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null),
            Self::Str(s) => Value::String(s.clone()),
        }
    }

    /// Python truthiness (`if size:`).
    pub fn is_truthy(&self) -> bool {
        match self {
            Self::Null => false,
            Self::Bool(b) => *b,
            Self::Int(i) => i.digits != "0",
            Self::Float(f) => *f != 0.0,
            Self::Str(s) => !s.is_empty(),
        }
    }

    /// Python `str(size)`, for messages.
    pub fn py_str(&self) -> String {
        match self {
            Self::Null => "None".into(),
            Self::Bool(true) => "True".into(),
            Self::Bool(false) => "False".into(),
            Self::Int(i) => i.to_string(),
            Self::Float(f) if f.is_nan() => "nan".into(),
            Self::Float(f) if f.is_infinite() => if *f > 0.0 { "inf" } else { "-inf" }.into(),
            Self::Float(f) if f.fract() == 0.0 && f.abs() < 1e16 => format!("{f:.1}"),
            Self::Float(f) => format!("{f:?}"),
            Self::Str(s) => s.clone(),
        }
    }

    /// Python `int(size)`.
    pub fn py_int(&self) -> Result<PyInt, PyError> {
        match self {
            Self::Null => Err(PyError::TypeError(
                "int() argument must be a string, a bytes-like object or a real number, not 'NoneType'".into(),
            )),
            Self::Bool(b) => Ok(PyInt::from(i64::from(*b))),
            Self::Int(i) => Ok(i.clone()),
            Self::Float(f) => PyInt::from_f64(*f),
            Self::Str(s) => s.parse(),
        }
    }

    /// oslo.utils `strutils.is_int_like`: `str(int(x)) == str(x)`, `False`
    /// where `int()` raises `TypeError` or `ValueError`. An `OverflowError`
    /// (`int(inf)`) is not caught.
    pub fn is_int_like(&self) -> Result<bool, PyError> {
        match self.py_int() {
            Ok(i) => Ok(i.to_string() == self.py_str()),
            Err(e @ PyError::OverflowError(_)) => Err(e),
            Err(_) => Ok(false),
        }
    }

    /// `cinder.utils.as_int(size)` (quiet): `int(x)`, else
    /// `int(float(x))`, else `x` unchanged. `OverflowError` escapes.
    pub fn as_int(&self) -> Result<AsInt, PyError> {
        match self {
            Self::Null => Ok(AsInt::Unchanged(Self::Null)),
            Self::Bool(_) | Self::Int(_) => self.py_int().map(AsInt::Int),
            Self::Float(f) => match PyInt::from_f64(*f) {
                Ok(i) => Ok(AsInt::Int(i)),
                Err(e @ PyError::OverflowError(_)) => Err(e),
                Err(_) => Ok(AsInt::Unchanged(self.clone())),
            },
            Self::Str(s) => {
                if let Some(i) = parse_py_int(s) {
                    return Ok(AsInt::Int(i));
                }
                match parse_py_float(s).map(PyInt::from_f64) {
                    Some(Ok(i)) => Ok(AsInt::Int(i)),
                    Some(Err(e @ PyError::OverflowError(_))) => Err(e),
                    _ => Ok(AsInt::Unchanged(self.clone())),
                }
            }
        }
    }
}

impl Serialize for RequestedSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for RequestedSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Self::from_json(&v).ok_or_else(|| serde::de::Error::custom(format!("{v} is not a size")))
    }
}

// ---------------------------------------------------------------------------
// The request
// ---------------------------------------------------------------------------

/// A group the volume is created in (`request.group`; API-11, API-19,
/// API-22.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiGroup {
    /// The group's id.
    pub id: String,
    /// Its status (`available` and `creating` are accepted).
    pub status: String,
    /// Its zone; `None` is a zone too: it replaces the requested one.
    pub availability_zone: Option<String>,
    /// Ids of the volume types the group supports; `None`: every type (as
    /// the conformance vectors' groups do).
    #[serde(default)]
    pub volume_type_ids: Option<Vec<String>>,
}

/// A backup the volume is restored from (`request.backup`; API-17,
/// API-18).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiBackup {
    /// The backup's id.
    pub id: String,
    /// Its status (only `available` is accepted).
    pub status: String,
    /// Its size in GiB.
    pub size: u64,
}

/// A volume-create request as `API.create` receives it after the REST
/// controller (FORMAT.md §6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiRequest {
    /// `size`, with its Python type.
    pub size: RequestedSize,
    /// `availability_zone` (`None` and `""` differ: API-22.5, API-22.8).
    pub availability_zone: Option<String>,
    /// `volume_type`: a type name or id; `None` or empty: none requested.
    pub volume_type: Option<String>,
    /// `snapshot_id` (empty: none).
    pub snapshot_id: Option<SnapshotId>,
    /// `source_volid` (empty: none).
    pub source_volid: Option<VolumeId>,
    /// `image_id` (API-1; an empty id still counts as given, API-15).
    pub image_id: Option<ImageId>,
    /// The group.
    pub group: Option<ApiGroup>,
    /// The backup.
    pub backup: Option<ApiBackup>,
    /// The requesting project.
    pub project_id: ProjectId,
    /// The requesting user.
    pub user_id: UserId,
    /// Volume metadata, in request order (API-14 reports the first bad key).
    pub metadata: Option<Vec<(String, String)>>,
    /// Display name.
    pub name: Option<String>,
    /// Display description.
    pub description: Option<String>,
}

impl ApiRequest {
    /// A request of `project`/`user` with everything else unset (`size`
    /// null, name `vol`).
    pub fn new(project_id: impl Into<ProjectId>, user_id: impl Into<UserId>) -> Self {
        Self {
            size: RequestedSize::Null,
            availability_zone: None,
            volume_type: None,
            snapshot_id: None,
            source_volid: None,
            image_id: None,
            group: None,
            backup: None,
            project_id: project_id.into(),
            user_id: user_id.into(),
            metadata: None,
            name: Some("vol".into()),
            description: None,
        }
    }

    /// The requested type, if one is (the controller ignores an empty one).
    fn requested_type(&self) -> Option<&str> {
        self.volume_type.as_deref().filter(|t| !t.is_empty())
    }

    fn snapshot_ref(&self) -> Option<&SnapshotId> {
        self.snapshot_id.as_ref().filter(|s| !s.as_str().is_empty())
    }

    fn source_ref(&self) -> Option<&VolumeId> {
        self.source_volid.as_ref().filter(|s| !s.as_str().is_empty())
    }
}

/// How much of the API runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKind {
    /// `API.create`: pre-flow checks, extraction, quota, the volume row.
    Create,
    /// `ExtractVolumeRequestTask.execute` alone (zones computed as
    /// `API.create` would). It accepts an omitted size.
    ExtractOnly,
}

// ---------------------------------------------------------------------------
// The result
// ---------------------------------------------------------------------------

/// The planner's answer.
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub enum ApiPlanning {
    /// Decided.
    Done(Box<ApiResult>),
    /// These facts are needed first.
    NeedFacts(Vec<Need>),
}

/// A rule of `cinder-rules.md` §2, `API-n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ApiRule(pub u8);

impl fmt::Display for ApiRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "API-{}", self.0)
    }
}

/// Which part of the API a failure comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ApiStage {
    /// The REST controller resolving the request's references (API-2).
    References,
    /// `API.create` before the flow (API-7 to API-14).
    PreFlow,
    /// `ExtractVolumeRequestTask` (API-15 to API-26).
    Extract,
    /// `QuotaReserveTask` (API-27).
    Quota,
    /// `EntryCreateTask` (API-28).
    EntryCreate,
}

impl fmt::Display for ApiStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::References => "REST controller",
            Self::PreFlow => "API.create",
            Self::Extract => "ExtractVolumeRequestTask",
            Self::Quota => "QuotaReserveTask",
            Self::EntryCreate => "EntryCreateTask",
        })
    }
}

/// The exception upstream raises, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiFailure {
    /// Where.
    pub stage: ApiStage,
    /// The rule.
    pub rule: ApiRule,
    /// The exception class.
    pub error: ErrorClass,
    /// Its message, as upstream words it.
    pub message: String,
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}: {}", self.stage, self.rule, self.error, self.message)
    }
}

/// Where an encryption key comes from (API-23).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeySource {
    /// The snapshot's key, cloned.
    Snapshot {
        /// The key cloned.
        key_id: String,
    },
    /// The source volume's key, cloned.
    SourceVolume {
        /// The key cloned.
        key_id: String,
    },
    /// The image's `cinder_encryption_key_id`, cloned.
    Image {
        /// The key cloned.
        key_id: String,
    },
    /// A new key for the type's cipher.
    New {
        /// The algorithm (the cipher up to its first `-`).
        algorithm: String,
        /// The key size, if the type sets one.
        length: Option<u32>,
    },
}

/// `replication_status` as the extraction computes it (API-25).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicationStatus {
    /// `enabled`
    Enabled,
    /// `disabled`
    Disabled,
}

impl ReplicationStatus {
    /// Upstream's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
        }
    }
}

/// A type by id and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeRef {
    /// `id`
    pub id: String,
    /// `name`
    pub name: String,
}

/// What `ExtractVolumeRequestTask` returns (API-26).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractedRequest {
    /// The size (API-18).
    pub size: PyInt,
    /// The snapshot, if any.
    pub snapshot_id: Option<SnapshotId>,
    /// The source volume, if any.
    pub source_volid: Option<VolumeId>,
    /// The backup, if any.
    pub backup_id: Option<String>,
    /// The group, if any.
    pub group_id: Option<String>,
    /// The volume type (API-21, re-read by id in API-24).
    pub volume_type: TypeRef,
    /// The zones the volume may go to, sorted: one zone, or several for the
    /// scheduler to choose from (API-22.8).
    pub availability_zones: Vec<String>,
    /// Whether the zone was not a valid one (API-22.6).
    pub refresh_az: bool,
    /// The encryption key, for an encrypted type (API-23).
    pub encryption_key: Option<KeySource>,
    /// Multiattach (API-24).
    pub multiattach: bool,
    /// QoS specs of the type, if any (API-25).
    pub qos_specs: Option<Vec<(String, String)>>,
    /// `replication_status` (API-25; dead output upstream).
    pub replication_status: ReplicationStatus,
}

impl ExtractedRequest {
    /// Whether the volume gets an encryption key.
    pub fn encrypted(&self) -> bool {
        self.encryption_key.is_some()
    }
}

/// The volume row `EntryCreateTask` inserts (API-28).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewVolume {
    /// The zone, set only when exactly one resulted.
    pub availability_zone: Option<String>,
    /// Size in GiB.
    pub size: PyInt,
    /// `creating`.
    pub status: VolumeStatus,
    /// The type's name.
    pub volume_type: String,
    /// Copied from the source volume or the snapshot's volume.
    pub bootable: bool,
    /// Multiattach.
    pub multiattach: bool,
    /// Whether it has an encryption key.
    pub encrypted: bool,
}

/// How the request ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum ApiOutcome {
    /// Accepted: what was extracted and, for [`ApiKind::Create`], the row
    /// created (the scheduler is cast to next).
    Accepted {
        /// The extraction.
        request: ExtractedRequest,
        /// The new row.
        volume: Option<NewVolume>,
    },
    /// Refused with an exception.
    Failed {
        /// The exception.
        failure: ApiFailure,
        /// The extraction, when the failure came after it (quota).
        extracted: Option<ExtractedRequest>,
    },
}

/// The decision on an API request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiResult {
    /// The zones `API.create` hands to the flow (API-13), sorted; `None`
    /// when it fails before computing them.
    pub known_availability_zones: Option<Vec<String>>,
    /// How it ends.
    pub outcome: ApiOutcome,
    /// The availability-zone decision, when the extraction got that far.
    pub zone: Option<ZoneExplanation>,
}

impl ApiResult {
    /// The exception, if the request fails.
    pub fn error(&self) -> Option<ErrorClass> {
        match &self.outcome {
            ApiOutcome::Failed { failure, .. } => Some(failure.error),
            ApiOutcome::Accepted { .. } => None,
        }
    }

    /// The extraction, if it succeeded.
    pub fn extracted(&self) -> Option<&ExtractedRequest> {
        match &self.outcome {
            ApiOutcome::Accepted { request, .. } => Some(request),
            ApiOutcome::Failed { extracted, .. } => extracted.as_ref(),
        }
    }

    /// The new volume row ([`ApiKind::Create`], accepted).
    pub fn volume(&self) -> Option<&NewVolume> {
        match &self.outcome {
            ApiOutcome::Accepted { volume, .. } => volume.as_ref(),
            ApiOutcome::Failed { .. } => None,
        }
    }

    /// The decision in words, one line per point.
    pub fn explain(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(z) = &self.zone {
            lines.extend(z.to_string().lines().map(str::to_owned));
        }
        match &self.outcome {
            ApiOutcome::Accepted { request, volume } => {
                lines.push(format!(
                    "accepted: size {} GiB, type {}, zones {:?}{}{}",
                    request.size,
                    request.volume_type.name,
                    request.availability_zones,
                    if request.encrypted() { ", encrypted" } else { "" },
                    if request.multiattach { ", multiattach" } else { "" },
                ));
                if let Some(v) = volume {
                    lines.push(format!(
                        "volume row created: status {}, zone {}",
                        v.status,
                        v.availability_zone.as_deref().unwrap_or("(none: the scheduler chooses)")
                    ));
                }
            }
            ApiOutcome::Failed { failure, .. } => lines.push(format!("rejected by {failure}")),
        }
        lines
    }
}

// ---------------------------------------------------------------------------
// Availability zones (API-13, API-22)
// ---------------------------------------------------------------------------

/// The extra spec that restricts a type to zones (API-22.1).
pub const TYPE_ZONES_KEY: &str = "RESKEY:availability_zones";

/// The topic of the services whose zones count (`constants.VOLUME_TOPIC`).
pub const VOLUME_TOPIC: &str = "cinder-volume";

/// The zones Cinder knows (API-13, `API.list_availability_zones` plus
/// `storage_availability_zone`): the zone of every `cinder-volume` service
/// (by topic; enabled or not, up or down) and `storage_availability_zone`
/// when it is not empty. Zone names are case-sensitive.
pub fn known_availability_zones<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    storage_availability_zone: &str,
) -> BTreeSet<String> {
    let mut zones: BTreeSet<String> =
        services.into_iter().filter(|s| s.topic == VOLUME_TOPIC).map(|s| s.availability_zone.clone()).collect();
    if !storage_availability_zone.is_empty() {
        zones.insert(storage_availability_zone.to_owned());
    }
    zones
}

/// `volume_utils.extract_availability_zones_from_volume_type` once the key
/// is present (API-22.1): split on `,`, drop the items that are empty
/// *before* stripping, strip the rest. So `"nova3,,,"` gives `[nova3]`,
/// `",,"` and `""` give `[]`, `" "` gives `[""]`, `"a, ,b"` gives
/// `[a, "", b]`.
pub fn parse_type_availability_zones(spec: &str) -> Vec<String> {
    spec.split(',').filter(|item| !item.is_empty()).map(|item| py_strip(item).to_owned()).collect()
}

/// The group's zone, which replaces the requested one (API-22.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupZone {
    /// The group.
    pub group_id: String,
    /// Its zone (`None` replaces the request by none).
    pub zone: Option<String>,
}

/// A source's zone (API-22.4, API-22.7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceZone {
    /// The snapshot or source volume.
    pub id: String,
    /// The zone of the volume (for a snapshot, of its volume).
    pub zone: String,
}

/// Everything `_extract_availability_zones` reads (API-22).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneRequest {
    /// The zones Cinder knows (API-13).
    pub known: BTreeSet<String>,
    /// The volume type's name (for the explanation).
    pub volume_type: String,
    /// The type's `RESKEY:availability_zones`, if it has the key.
    pub type_zones: Option<String>,
    /// The requested zone.
    pub requested: Option<String>,
    /// The group, if any.
    pub group: Option<GroupZone>,
    /// The snapshot, if any, with its volume's zone.
    pub snapshot: Option<SourceZone>,
    /// The source volume, if any, with its zone.
    pub source_volume: Option<SourceZone>,
    /// `default_availability_zone`.
    pub default_availability_zone: Option<String>,
    /// `storage_availability_zone`.
    pub storage_availability_zone: String,
    /// `allow_availability_zone_fallback`.
    pub allow_availability_zone_fallback: bool,
    /// `cloned_volume_same_az`.
    pub cloned_volume_same_az: bool,
}

impl ZoneRequest {
    /// A request for `requested` among `known`, with the zone options of
    /// `config` and no type restriction, group or source.
    pub fn new(known: BTreeSet<String>, requested: Option<String>, config: &Config) -> Self {
        Self {
            known,
            volume_type: crate::model::DEFAULT_VOLUME_TYPE.to_owned(),
            type_zones: None,
            requested,
            group: None,
            snapshot: None,
            source_volume: None,
            default_availability_zone: config.default_availability_zone.clone(),
            storage_availability_zone: config.storage_availability_zone.clone(),
            allow_availability_zone_fallback: config.allow_availability_zone_fallback,
            cloned_volume_same_az: config.cloned_volume_same_az,
        }
    }
}

/// The type's zone restriction (API-22.1, API-22.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeZones {
    /// The type.
    pub volume_type: String,
    /// `RESKEY:availability_zones` as set.
    pub spec: String,
    /// The zones it lists (API-22.1).
    pub listed: Vec<String>,
    /// Those Cinder knows (`safe_azs`), sorted.
    pub usable: Vec<String>,
}

/// Which rule produced the zone candidate (API-22.3 to API-22.5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ZoneSource {
    /// The request named it.
    Requested,
    /// The group's zone (API-22.3).
    Group {
        /// The group.
        group_id: String,
    },
    /// The snapshot's volume's zone (API-22.4).
    Snapshot {
        /// The snapshot.
        snapshot_id: String,
    },
    /// The source volume's zone (API-22.4).
    SourceVolume {
        /// The source volume.
        volume_id: String,
    },
    /// `default_availability_zone` (API-22.5).
    DefaultAvailabilityZone,
    /// `storage_availability_zone` (API-22.5).
    StorageAvailabilityZone,
}

impl fmt::Display for ZoneSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Requested => f.write_str("requested"),
            Self::Group { group_id } => write!(f, "the zone of group {group_id}"),
            Self::Snapshot { snapshot_id } => write!(f, "the zone of the volume of snapshot {snapshot_id}"),
            Self::SourceVolume { volume_id } => write!(f, "the zone of source volume {volume_id}"),
            Self::DefaultAvailabilityZone => f.write_str("default_availability_zone"),
            Self::StorageAvailabilityZone => f.write_str("storage_availability_zone"),
        }
    }
}

/// The zone under consideration and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneCandidate {
    /// The zone (possibly empty).
    pub zone: String,
    /// Which rule gave it.
    pub source: ZoneSource,
}

/// Why a zone was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ZoneRejection {
    /// No `cinder-volume` service is in it and it is not
    /// `storage_availability_zone` (API-22.6). A Nova zone is not a Cinder
    /// zone unless a volume service runs in it.
    Unknown,
    /// Cinder knows it, but the volume type lists other zones (API-22.6).
    NotAllowedByType {
        /// The type's usable zones.
        allowed: Vec<String>,
    },
    /// `cloned_volume_same_az`: the snapshot's volume is elsewhere
    /// (API-22.7).
    DiffersFromSnapshot {
        /// The zone of the snapshot's volume.
        snapshot_zone: String,
    },
    /// `cloned_volume_same_az`: the source volume is elsewhere (API-22.7).
    DiffersFromSourceVolume {
        /// The source volume's zone.
        source_zone: String,
    },
}

/// Which option the fallback zone came from (API-22.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackSource {
    /// `default_availability_zone`.
    DefaultAvailabilityZone,
    /// `storage_availability_zone` (no default set).
    StorageAvailabilityZone,
}

/// `allow_availability_zone_fallback` replaced an invalid zone (API-22.6).
/// Upstream does not check the replacement: it may be a zone Cinder does not
/// know, or one the type does not allow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneFallback {
    /// The zone replaced.
    pub rejected: String,
    /// Why.
    pub because: ZoneRejection,
    /// The replacement.
    pub zone: String,
    /// Where it came from.
    pub from: FallbackSource,
    /// Whether the replacement is one Cinder knows and the type allows
    /// (informative: upstream does not check).
    pub replacement_valid: bool,
}

/// Why no single zone was chosen (API-22.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnpinnedReason {
    /// No zone was requested or inherited and the type restricts zones, so
    /// no default was applied (API-22.5).
    TypeRestricted,
    /// The zone was the empty string (requested, inherited, or an empty
    /// `storage_availability_zone`), which counts as no zone.
    EmptyZone,
}

/// The outcome of the zone extraction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum ZoneDecision {
    /// The volume goes to this zone.
    Pinned {
        /// The zone.
        zone: String,
    },
    /// The scheduler chooses among these (the type's usable zones, or every
    /// known zone); the volume row gets a zone only if there is one.
    Unpinned {
        /// The zones, sorted.
        zones: Vec<String>,
        /// Why.
        reason: UnpinnedReason,
    },
    /// The zone is refused (`InvalidAvailabilityZone`, or `InvalidInput` for
    /// the same-zone rule).
    Rejected {
        /// The zone.
        zone: String,
        /// Why.
        because: ZoneRejection,
    },
    /// None of the type's zones is known (`InvalidTypeAvailabilityZones`).
    TypeZonesUnusable,
}

/// The availability-zone decision, explained (API-22).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneExplanation {
    /// The zones Cinder knows, sorted (API-13).
    pub known: Vec<String>,
    /// `storage_availability_zone`.
    pub storage_availability_zone: String,
    /// The type's restriction, if it sets one.
    pub type_zones: Option<TypeZones>,
    /// The zone the request named.
    pub requested: Option<String>,
    /// The group, whose zone (even none) replaces the requested one.
    pub group: Option<GroupZone>,
    /// The zone considered after API-22.3 to API-22.5 (`None`: none).
    pub candidate: Option<ZoneCandidate>,
    /// The fallback, if one happened.
    pub fallback: Option<ZoneFallback>,
    /// The outcome.
    pub decision: ZoneDecision,
}

impl ZoneExplanation {
    /// The `availability_zones` output, sorted; `None` when rejected.
    pub fn zones(&self) -> Option<Vec<String>> {
        match &self.decision {
            ZoneDecision::Pinned { zone } => Some(vec![zone.clone()]),
            ZoneDecision::Unpinned { zones, .. } => Some(zones.clone()),
            _ => None,
        }
    }

    /// `refresh_az`: the zone was not among the valid ones (API-22.6).
    pub fn refresh_az(&self) -> bool {
        self.fallback.is_some()
            || matches!(
                &self.decision,
                ZoneDecision::Rejected { because: ZoneRejection::Unknown | ZoneRejection::NotAllowedByType { .. }, .. }
            )
    }

    /// The exception raised, if any.
    pub fn error(&self) -> Option<ErrorClass> {
        match &self.decision {
            ZoneDecision::Rejected {
                because: ZoneRejection::Unknown | ZoneRejection::NotAllowedByType { .. }, ..
            } => Some(ErrorClass::InvalidAvailabilityZone),
            ZoneDecision::Rejected { .. } => Some(ErrorClass::InvalidInput),
            ZoneDecision::TypeZonesUnusable => Some(ErrorClass::InvalidTypeAvailabilityZones),
            _ => None,
        }
    }

    /// Upstream's exception message, if any.
    pub fn message(&self) -> Option<String> {
        Some(match &self.decision {
            ZoneDecision::Rejected {
                zone,
                because: ZoneRejection::Unknown | ZoneRejection::NotAllowedByType { .. },
            } => {
                format!("Availability zone '{zone}' is invalid.")
            }
            ZoneDecision::Rejected { because: ZoneRejection::DiffersFromSnapshot { .. }, .. } => {
                "Invalid input received: Volume must be in the same availability zone as the snapshot".into()
            }
            ZoneDecision::Rejected { because: ZoneRejection::DiffersFromSourceVolume { .. }, .. } => {
                "Invalid input received: Volume must be in the same availability zone as the source volume".into()
            }
            ZoneDecision::TypeZonesUnusable => {
                let listed = self.type_zones.as_ref().map(|t| t.listed.clone()).unwrap_or_default();
                format!("Volume type is only supported in these availability zones: {listed:?}")
            }
            _ => return None,
        })
    }

    fn known_words(&self) -> String {
        let storage = if self.storage_availability_zone.is_empty() {
            "storage_availability_zone is empty".to_owned()
        } else {
            format!("storage_availability_zone is {:?}", self.storage_availability_zone)
        };
        format!("{:?} (the zones of the cinder-volume services; {storage})", self.known)
    }
}

fn rejection_words(zone: &str, because: &ZoneRejection, e: &ZoneExplanation) -> String {
    match because {
        ZoneRejection::Unknown => format!(
            "zone {zone:?} is not one Cinder knows; known zones are {}. A zone of another service (such as a Nova \
             availability zone) is not a Cinder zone unless a cinder-volume service runs in it",
            e.known_words()
        ),
        ZoneRejection::NotAllowedByType { allowed } => {
            let t = e.type_zones.as_ref().map(|t| t.volume_type.as_str()).unwrap_or("?");
            format!("zone {zone:?} is not allowed by volume type {t}, which is usable only in {allowed:?}")
        }
        ZoneRejection::DiffersFromSnapshot { snapshot_zone } => format!(
            "zone {zone:?} differs from the zone {snapshot_zone:?} of the snapshot's volume, and \
             cloned_volume_same_az is true"
        ),
        ZoneRejection::DiffersFromSourceVolume { source_zone } => format!(
            "zone {zone:?} differs from the zone {source_zone:?} of the source volume, and cloned_volume_same_az \
             is true"
        ),
    }
}

impl fmt::Display for ZoneExplanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "known availability zones: {} (API-13)", self.known_words())?;
        if let Some(t) = &self.type_zones {
            writeln!(
                f,
                "volume type {} restricts zones: {} = {:?} lists {:?}, of which Cinder knows {:?} (API-22.1/2)",
                t.volume_type, TYPE_ZONES_KEY, t.spec, t.listed, t.usable
            )?;
        }
        if let Some(g) = &self.group {
            match (&g.zone, &self.requested) {
                (Some(z), Some(r)) => {
                    writeln!(f, "group {} is in zone {z:?}, which replaces the requested {r:?} (API-22.3)", g.group_id)?
                }
                (None, Some(r)) => writeln!(
                    f,
                    "group {} has no zone, which replaces the requested {r:?} by none (API-22.3)",
                    g.group_id
                )?,
                _ => {}
            }
        }
        match &self.candidate {
            Some(c) if c.source == ZoneSource::Requested => writeln!(f, "zone {:?} was requested", c.zone)?,
            Some(c) => writeln!(f, "zone {:?} comes from {} (API-22.3/4/5)", c.zone, c.source)?,
            None if self.type_zones.is_some() => writeln!(
                f,
                "no zone was requested or inherited; the type restricts zones, so no default zone applies (API-22.5)"
            )?,
            None => writeln!(f, "no zone was requested or inherited")?,
        }
        if let Some(fb) = &self.fallback {
            let option = match fb.from {
                FallbackSource::DefaultAvailabilityZone => "default_availability_zone",
                FallbackSource::StorageAvailabilityZone => {
                    "storage_availability_zone (default_availability_zone is unset)"
                }
            };
            writeln!(
                f,
                "{}; allow_availability_zone_fallback is true, so {option} {:?} is used instead and refresh_az is set \
                 (API-22.6). Upstream does not validate the fallback zone again{}",
                rejection_words(&fb.rejected, &fb.because, self),
                fb.zone,
                if fb.replacement_valid { "; here it is a valid zone" } else { ": here it is NOT a valid zone" }
            )?;
        }
        match &self.decision {
            ZoneDecision::Pinned { zone } => write!(f, "decision: the volume goes to zone {zone:?} (API-22.8)"),
            ZoneDecision::Unpinned { zones, .. } if zones.len() == 1 => write!(
                f,
                "decision: zone {:?}, the only usable one, is left to the scheduler and set on the row (API-22.8, \
                 API-28)",
                zones[0]
            ),
            ZoneDecision::Unpinned { zones, reason } => {
                let why = match reason {
                    UnpinnedReason::TypeRestricted => "the type's usable zones",
                    UnpinnedReason::EmptyZone => "the zone is empty, which counts as none: every usable zone",
                };
                write!(f, "decision: no single zone; the scheduler chooses among {zones:?} ({why}; API-22.8)")
            }
            ZoneDecision::Rejected { zone, because } => {
                let rule = match because {
                    ZoneRejection::Unknown | ZoneRejection::NotAllowedByType { .. } => {
                        "; allow_availability_zone_fallback is false, so the request fails (API-22.6)"
                    }
                    _ => " (API-22.7)",
                };
                write!(
                    f,
                    "decision: rejected: {}{rule} -> {}",
                    rejection_words(zone, because, self),
                    self.error().map(ErrorClass::name).unwrap_or("?")
                )
            }
            ZoneDecision::TypeZonesUnusable => write!(
                f,
                "decision: rejected: none of the zones the type lists is known (API-22.2) -> InvalidTypeAvailabilityZones"
            ),
        }
    }
}

/// `ExtractVolumeRequestTask._extract_availability_zones` (API-22), step
/// by step.
pub fn decide_zone(r: &ZoneRequest) -> ZoneExplanation {
    let known: Vec<String> = r.known.iter().cloned().collect();
    let mut e = ZoneExplanation {
        known: known.clone(),
        storage_availability_zone: r.storage_availability_zone.clone(),
        type_zones: None,
        requested: r.requested.clone(),
        group: r.group.clone(),
        candidate: None,
        fallback: None,
        decision: ZoneDecision::TypeZonesUnusable,
    };
    // 1-2: the type's zones, intersected with the known ones.
    let safe: Vec<String> = match &r.type_zones {
        Some(spec) => {
            let listed = parse_type_availability_zones(spec);
            let usable: BTreeSet<String> = listed.iter().filter(|z| r.known.contains(*z)).cloned().collect();
            let usable: Vec<String> = usable.into_iter().collect();
            e.type_zones = Some(TypeZones {
                volume_type: r.volume_type.clone(),
                spec: spec.clone(),
                listed,
                usable: usable.clone(),
            });
            if usable.is_empty() {
                return e;
            }
            usable
        }
        None => known,
    };
    // 3: a group's zone replaces the request, even when it has none.
    let mut candidate: Option<ZoneCandidate> =
        r.requested.clone().map(|zone| ZoneCandidate { zone, source: ZoneSource::Requested });
    if let Some(g) = &r.group {
        candidate = g
            .zone
            .clone()
            .map(|zone| ZoneCandidate { zone, source: ZoneSource::Group { group_id: g.group_id.clone() } });
    }
    // 4: inherit from the snapshot's volume, then the source volume.
    if candidate.is_none() {
        if let Some(s) = &r.snapshot {
            candidate = Some(ZoneCandidate {
                zone: s.zone.clone(),
                source: ZoneSource::Snapshot { snapshot_id: s.id.clone() },
            });
        }
        if let Some(s) = &r.source_volume {
            candidate = Some(ZoneCandidate {
                zone: s.zone.clone(),
                source: ZoneSource::SourceVolume { volume_id: s.id.clone() },
            });
        }
    }
    // 5: the default, only without a type restriction.
    let default_az = r.default_availability_zone.clone().filter(|z| !z.is_empty());
    if candidate.is_none() && r.type_zones.is_none() {
        candidate = Some(match &default_az {
            Some(z) => ZoneCandidate { zone: z.clone(), source: ZoneSource::DefaultAvailabilityZone },
            None => {
                ZoneCandidate { zone: r.storage_availability_zone.clone(), source: ZoneSource::StorageAvailabilityZone }
            }
        });
    }
    e.candidate = candidate.clone();
    let mut zone: Option<String> = candidate.map(|c| c.zone);
    // 6: validity, and the fallback, which is not validated again.
    if let Some(z) = zone.clone().filter(|z| !z.is_empty()) {
        if !safe.contains(&z) {
            let because = if r.type_zones.is_some() && r.known.contains(&z) {
                ZoneRejection::NotAllowedByType { allowed: safe.clone() }
            } else {
                ZoneRejection::Unknown
            };
            if !r.allow_availability_zone_fallback {
                e.decision = ZoneDecision::Rejected { zone: z, because };
                return e;
            }
            let (fallback, from) = match &default_az {
                Some(d) => (d.clone(), FallbackSource::DefaultAvailabilityZone),
                None => (r.storage_availability_zone.clone(), FallbackSource::StorageAvailabilityZone),
            };
            e.fallback = Some(ZoneFallback {
                rejected: z,
                because,
                replacement_valid: safe.contains(&fallback),
                zone: fallback.clone(),
                from,
            });
            zone = Some(fallback);
        }
    }
    // 7: clones and volumes from snapshots stay in their source's zone.
    if let Some(z) = zone.clone().filter(|z| !z.is_empty()) {
        if r.cloned_volume_same_az {
            if let Some(s) = r.snapshot.as_ref().filter(|s| !s.zone.is_empty() && s.zone != z) {
                e.decision = ZoneDecision::Rejected {
                    zone: z,
                    because: ZoneRejection::DiffersFromSnapshot { snapshot_zone: s.zone.clone() },
                };
                return e;
            }
            if let Some(s) = r.source_volume.as_ref().filter(|s| !s.zone.is_empty() && s.zone != z) {
                e.decision = ZoneDecision::Rejected {
                    zone: z,
                    because: ZoneRejection::DiffersFromSourceVolume { source_zone: s.zone.clone() },
                };
                return e;
            }
        }
    }
    // 8: one zone, or the usable ones.
    e.decision = match zone {
        Some(z) if !z.is_empty() => ZoneDecision::Pinned { zone: z },
        Some(_) => ZoneDecision::Unpinned { zones: safe, reason: UnpinnedReason::EmptyZone },
        None => ZoneDecision::Unpinned { zones: safe, reason: UnpinnedReason::TypeRestricted },
    };
    e
}

// ---------------------------------------------------------------------------
// Quotas (API-27)
// ---------------------------------------------------------------------------

/// `quota_volumes`: volumes per project (Cinder's default quota class).
pub const QUOTA_VOLUMES: i64 = 10;
/// `quota_gigabytes`: GiB of volumes and snapshots per project.
pub const QUOTA_GIGABYTES: i64 = 1000;
/// `per_volume_size_limit` (`-1`: none).
pub const PER_VOLUME_SIZE_LIMIT: i64 = -1;
/// The largest usage `quota_usages` can hold (32-bit columns); more is a
/// `QuotaUsageOverflow`.
pub const QUOTA_USAGE_MAX: i64 = 2_147_483_647;

/// `provisioning:min_vol_size` (API-10).
const MIN_SIZE_KEY: &str = "provisioning:min_vol_size";
/// `provisioning:max_vol_size` (API-10).
const MAX_SIZE_KEY: &str = "provisioning:max_vol_size";

// ---------------------------------------------------------------------------
// The planner
// ---------------------------------------------------------------------------

/// Decides what upstream's API does with `request`, or says which facts it
/// needs first (fetch them, [`Facts::learn`], call again). Pure and
/// deterministic: the same request, facts and configuration always give the
/// same answer.
///
/// [`ApiKind::Create`] runs the REST controller's lookups (API-2),
/// `API.create`'s checks (API-9 to API-14), the extraction (API-15 to
/// API-26), the quota reservation (API-27) and the volume row (API-28);
/// [`ApiKind::ExtractOnly`] runs the lookups and the extraction.
pub fn plan_api(request: &ApiRequest, kind: ApiKind, facts: &Facts, config: &Config) -> Result<ApiPlanning, PlanError> {
    config.validate()?;
    let needs = prelude(request, facts, config);
    if !needs.is_empty() {
        return Ok(ApiPlanning::NeedFacts(needs));
    }
    let mut run = Run { req: request, kind, facts, config, known: None, zone: None, extracted: None };
    let outcome = match run.run() {
        Ok(outcome) => outcome,
        Err(Stop::Need(needs)) => return Ok(ApiPlanning::NeedFacts(needs)),
        Err(Stop::Inconsistent(why)) => return Err(PlanError::InconsistentFacts(why)),
        Err(Stop::Fail(failure)) => ApiOutcome::Failed { failure, extracted: run.extracted.take() },
    };
    Ok(ApiPlanning::Done(Box::new(ApiResult {
        known_availability_zones: run.known.map(|k| k.into_iter().collect()),
        outcome,
        zone: run.zone,
    })))
}

/// The facts every request of this shape reads, asked for together so that
/// gathering takes few rounds; only missing ones are listed.
fn prelude(req: &ApiRequest, facts: &Facts, config: &Config) -> Vec<Need> {
    let mut needs = Vec::new();
    let mut want = |need: Need, known: bool| {
        if !known && !needs.contains(&need) {
            needs.push(need);
        }
    };
    want(Need::Services, facts.services.is_some());
    let type_need = |name: &str| (Need::VolumeType { name: name.to_owned() }, facts.volume_types.contains_key(name));
    match req.requested_type() {
        Some(t) => {
            let (n, k) = type_need(t);
            want(n, k);
        }
        None => {
            let (n, k) = type_need(&config.default_volume_type);
            want(n, k);
        }
    }
    if let Some(id) = req.snapshot_ref() {
        want(Need::Snapshot { snapshot_id: id.clone() }, facts.snapshots.contains_key(id));
        if let Some(Some(snap)) = facts.snapshots.get(id) {
            want(Need::Volume { volume_id: snap.volume_id.clone() }, facts.volumes.contains_key(&snap.volume_id));
            if let Some(Some(v)) = facts.volumes.get(&snap.volume_id) {
                let (n, k) = type_need(&v.volume_type);
                want(n, k);
            }
        }
    }
    if let Some(id) = req.source_ref() {
        want(Need::Volume { volume_id: id.clone() }, facts.volumes.contains_key(id));
        if let Some(Some(v)) = facts.volumes.get(id) {
            let (n, k) = type_need(&v.volume_type);
            want(n, k);
        }
    }
    if let Some(id) = &req.image_id {
        want(Need::Image { image_id: id.clone() }, facts.images.contains_key(id));
    }
    needs
}

/// Why a run stopped early.
enum Stop {
    Need(Vec<Need>),
    Fail(ApiFailure),
    Inconsistent(String),
}

type R<T> = Result<T, Stop>;

fn fail<T>(stage: ApiStage, rule: u8, error: ErrorClass, message: impl Into<String>) -> R<T> {
    Err(Stop::Fail(ApiFailure { stage, rule: ApiRule(rule), error, message: message.into() }))
}

fn py_fail<T>(stage: ApiStage, rule: u8, e: PyError) -> R<T> {
    fail(stage, rule, e.class(), e.message())
}

fn invalid_input<T>(stage: ApiStage, rule: u8, reason: impl fmt::Display) -> R<T> {
    fail(stage, rule, ErrorClass::InvalidInput, format!("Invalid input received: {reason}"))
}

/// How a volume type is looked up.
#[derive(Clone, Copy)]
enum TypeKey {
    /// `get_by_name_or_id`: by id if UUID-like, else by name.
    NameOrId,
    /// `get_volume_type_by_name`.
    Name,
    /// `get_volume_type` (by id).
    Id,
    /// The type a row names (rows hold a type name in this crate's model,
    /// an id upstream).
    Row,
}

/// The request's references, resolved (API-2).
struct Refs<'a> {
    snapshot: Option<&'a Snapshot>,
    source: Option<&'a Volume>,
    volume_type: Option<&'a VolumeType>,
    group: Option<&'a ApiGroup>,
    backup: Option<&'a ApiBackup>,
}

/// The image property naming a type (API-21.4).
enum ImageType {
    Name(String),
    /// A truthy non-string value: no type has it as its name.
    Other(String),
}

struct Run<'a> {
    req: &'a ApiRequest,
    kind: ApiKind,
    facts: &'a Facts,
    config: &'a Config,
    known: Option<BTreeSet<String>>,
    zone: Option<ZoneExplanation>,
    extracted: Option<ExtractedRequest>,
}

impl<'a> Run<'a> {
    fn run(&mut self) -> R<ApiOutcome> {
        if self.kind == ApiKind::ExtractOnly {
            // The zones are computed before the task runs.
            self.known = Some(self.known_zones()?);
        }
        let refs = self.references()?;
        if self.kind == ApiKind::Create {
            self.pre_flow(&refs)?;
        }
        let extracted = self.extract(&refs)?;
        self.extracted = Some(extracted.clone());
        let volume = match self.kind {
            ApiKind::Create => {
                self.reserve_quota(&extracted)?;
                Some(self.entry(&refs, &extracted)?)
            }
            ApiKind::ExtractOnly => None,
        };
        Ok(ApiOutcome::Accepted { request: extracted, volume })
    }

    // -- facts ------------------------------------------------------------

    fn services(&self) -> R<&'a [Service]> {
        self.facts.services.as_deref().ok_or_else(|| Stop::Need(vec![Need::Services]))
    }

    fn volume(&self, id: &VolumeId) -> R<Option<&'a Volume>> {
        match self.facts.volumes.get(id) {
            Some(v) => Ok(v.as_deref()),
            None => Err(Stop::Need(vec![Need::Volume { volume_id: id.clone() }])),
        }
    }

    fn snapshot(&self, id: &SnapshotId) -> R<Option<&'a Snapshot>> {
        match self.facts.snapshots.get(id) {
            Some(s) => Ok(s.as_ref()),
            None => Err(Stop::Need(vec![Need::Snapshot { snapshot_id: id.clone() }])),
        }
    }

    fn image(&self, id: &ImageId) -> R<Result<&'a Image, BackendErrorKind>> {
        match self.facts.images.get(id) {
            Some(r) => Ok(r.as_deref().map_err(|k| *k)),
            None => Err(Stop::Need(vec![Need::Image { image_id: id.clone() }])),
        }
    }

    fn lookup_type(&self, key: &str, how: TypeKey) -> R<Option<&'a VolumeType>> {
        let found = match self.facts.volume_types.get(key) {
            Some(t) => t.as_ref(),
            None => return Err(Stop::Need(vec![Need::VolumeType { name: key.to_owned() }])),
        };
        Ok(found.filter(|t| match how {
            TypeKey::NameOrId => t.name == key || (is_uuid_like(key) && t.id == key),
            TypeKey::Name => t.name == key,
            TypeKey::Id => t.id == key,
            TypeKey::Row => t.name == key || t.id == key,
        }))
    }

    /// `VolumeType.get_by_name_or_id` (API-2, API-21.4).
    fn type_by_name_or_id(&self, key: &str, stage: ApiStage, rule: u8) -> R<&'a VolumeType> {
        match self.lookup_type(key, TypeKey::NameOrId)? {
            Some(t) => Ok(t),
            None if is_uuid_like(key) => {
                fail(stage, rule, ErrorClass::VolumeTypeNotFound, format!("Volume type {key} could not be found."))
            }
            None => fail(
                stage,
                rule,
                ErrorClass::VolumeTypeNotFoundByName,
                format!("Volume type with name {key} could not be found."),
            ),
        }
    }

    /// The type of a volume row (API-12, API-21.2/3).
    fn type_of_volume(&self, v: &Volume, stage: ApiStage, rule: u8) -> R<&'a VolumeType> {
        match self.lookup_type(&v.volume_type, TypeKey::Row)? {
            Some(t) => Ok(t),
            None => fail(
                stage,
                rule,
                ErrorClass::VolumeTypeNotFound,
                format!("Volume type {} could not be found.", v.volume_type),
            ),
        }
    }

    /// `get_default_volume_type()` without a context: `default_volume_type`
    /// by name (API-10).
    fn configured_default_type(&self, stage: ApiStage, rule: u8) -> R<&'a VolumeType> {
        let name = &self.config.default_volume_type;
        match self.lookup_type(name, TypeKey::Name)? {
            Some(t) => Ok(t),
            None => fail(
                stage,
                rule,
                ErrorClass::VolumeTypeDefaultMisconfiguredError,
                format!("The request cannot be fulfilled as the default volume type {name} cannot be found."),
            ),
        }
    }

    /// `get_default_volume_type(context)`: the project's default type, else
    /// `default_volume_type` (API-21.5).
    fn default_type(&self, stage: ApiStage, rule: u8) -> R<&'a VolumeType> {
        let project = &self.req.project_id;
        let project_default = match self.facts.project_default_types.get(project) {
            Some(t) => t.as_deref(),
            None => {
                return Err(Stop::Need(vec![Need::ProjectDefaultVolumeType { project_id: project.clone() }]));
            }
        };
        match project_default {
            Some(id) => match self.lookup_type(id, TypeKey::Id)? {
                Some(t) => Ok(t),
                None => {
                    fail(stage, rule, ErrorClass::VolumeTypeNotFound, format!("Volume type {id} could not be found."))
                }
            },
            None => self.configured_default_type(stage, rule),
        }
    }

    /// The snapshot's volume, loaded with the user's context.
    fn snapshot_volume(&self, snap: &Snapshot, stage: ApiStage, rule: u8) -> R<&'a Volume> {
        match self.volume(&snap.volume_id)? {
            Some(v) if v.project_id == self.req.project_id => Ok(v),
            _ => {
                fail(stage, rule, ErrorClass::VolumeNotFound, format!("Volume {} could not be found.", snap.volume_id))
            }
        }
    }

    /// API-13.
    fn known_zones(&self) -> R<BTreeSet<String>> {
        Ok(known_availability_zones(self.services()?, &self.config.storage_availability_zone))
    }

    // -- API-2: the REST controller ---------------------------------------

    fn references(&self) -> R<Refs<'a>> {
        let stage = ApiStage::References;
        let req = self.req;
        let snapshot = match req.snapshot_ref() {
            Some(id) => match self.snapshot(id)? {
                // Non-admin lookups only see the project's rows.
                Some(s) if s.project_id == req.project_id => Some(s),
                _ => return fail(stage, 2, ErrorClass::SnapshotNotFound, format!("Snapshot {id} could not be found.")),
            },
            None => None,
        };
        let source = match req.source_ref() {
            Some(id) => match self.volume(id)? {
                Some(v) if v.project_id == req.project_id => Some(v),
                _ => return fail(stage, 2, ErrorClass::VolumeNotFound, format!("Volume {id} could not be found.")),
            },
            None => None,
        };
        let volume_type = match req.requested_type() {
            Some(t) => Some(self.type_by_name_or_id(t, stage, 2)?),
            None => None,
        };
        Ok(Refs { snapshot, source, volume_type, group: req.group.as_ref(), backup: req.backup.as_ref() })
    }

    // -- API-9 to API-14: API.create before the flow ----------------------

    fn pre_flow(&mut self, refs: &Refs<'a>) -> R<()> {
        let stage = ApiStage::PreFlow;
        let size = &self.req.size;
        // API-9: a truthy size must be int-like and positive.
        if size.is_truthy() {
            let valid = match size.is_int_like() {
                Ok(true) => size.py_int().map(|i| i.is_positive()),
                Ok(false) => Ok(false),
                Err(e) => Err(e),
            };
            match valid {
                Err(e) => return py_fail(stage, 9, e),
                Ok(false) => {
                    return invalid_input(
                        stage,
                        9,
                        format!(
                            "Invalid volume size provided for create request: {} (size argument must be an integer \
                             (or string representation of an integer) and greater than zero).",
                            size.py_str()
                        ),
                    )
                }
                Ok(true) => {}
            }
        }
        // API-10: provision_filter_on_size, with the configured default type
        // when none is requested, and int(size) unconditionally.
        let vtype = match refs.volume_type {
            Some(t) => t,
            None => self.configured_default_type(stage, 10)?,
        };
        let size_int = match size.py_int() {
            Ok(i) => i,
            Err(e) => return py_fail(stage, 10, e),
        };
        for (key, is_min) in [(MIN_SIZE_KEY, true), (MAX_SIZE_KEY, false)] {
            let Some(limit_text) = vtype.extra_specs.get(key).filter(|v| !v.is_empty()) else { continue };
            let Some(limit) = parse_py_int(limit_text) else {
                return py_fail(
                    stage,
                    10,
                    PyError::ValueError(format!("invalid literal for int() with base 10: {limit_text:?}")),
                );
            };
            if is_min && size_int < limit {
                return invalid_input(
                    stage,
                    10,
                    format!(
                        "Specified volume size of '{size_int}' is less than the minimum required size of \
                         '{limit_text}' for volume type '{}'.",
                        vtype.name
                    ),
                );
            }
            if !is_min && size_int > limit {
                return invalid_input(
                    stage,
                    10,
                    format!(
                        "Specified volume size of '{size_int}' is greater than the maximum allowable size of \
                         '{limit_text}' for volume type '{}'.",
                        vtype.name
                    ),
                );
            }
        }
        // API-11: a group needs a requested type it supports.
        if let Some(group) = refs.group {
            let Some(vt) = refs.volume_type else {
                return invalid_input(stage, 11, "volume_type must be provided when creating a volume in a group.");
            };
            if group.volume_type_ids.as_ref().is_some_and(|ids| !ids.contains(&vt.id)) {
                return invalid_input(
                    stage,
                    11,
                    format!(
                        "Invalid volume_type provided: {} (requested type must be supported by this group).",
                        vt.name
                    ),
                );
            }
        }
        // API-12: another type than the source's only if a retype could be.
        if let (Some(src), Some(vt)) = (refs.source, refs.volume_type) {
            let src_type = self.type_of_volume(src, stage, 12)?;
            if vt.id != src_type.id && !self.retype_possible(src_type, vt)? {
                return invalid_input(
                    stage,
                    12,
                    format!(
                        "Invalid volume_type provided: {} (requested type is not compatible; either match source \
                         volume, or omit type argument).",
                        vt.id
                    ),
                );
            }
        }
        if let (Some(snap), Some(vt)) = (refs.snapshot, refs.volume_type) {
            let snap_volume = self.snapshot_volume(snap, stage, 12)?;
            let snap_type = self.type_of_volume(snap_volume, stage, 12)?;
            if vt.id != snap_type.id && !self.retype_possible(snap_type, vt)? {
                return invalid_input(
                    stage,
                    12,
                    format!(
                        "Invalid volume_type provided: {} (requested type is not compatible; recommend omitting the \
                         type argument).",
                        vt.id
                    ),
                );
            }
        }
        // API-13, then API-14; the flow gets the zones only after both.
        let known = self.known_zones()?;
        self.check_metadata()?;
        self.known = Some(known);
        Ok(())
    }

    /// `API._retype_is_possible` (API-12): never across encryptions; yes if
    /// exactly one `cinder-volume` service is *disabled* (the query passes
    /// `disabled=True`); else only with the same `volume_backend_name`.
    fn retype_possible(&self, source: &VolumeType, target: &VolumeType) -> R<bool> {
        if source.encryption != target.encryption {
            return Ok(false);
        }
        let disabled = self.services()?.iter().filter(|s| s.topic == VOLUME_TOPIC && s.disabled).count();
        if disabled == 1 {
            return Ok(true);
        }
        // volume_utils.matching_backend_name
        Ok(matches!((backend_name(source), backend_name(target)), (Some(a), Some(b)) if a == b))
    }

    /// `utils.check_metadata_properties` (API-14), keys in request order.
    fn check_metadata(&self) -> R<()> {
        let stage = ApiStage::PreFlow;
        for (k, v) in self.req.metadata.iter().flatten() {
            if k.is_empty() {
                return fail(
                    stage,
                    14,
                    ErrorClass::InvalidVolumeMetadata,
                    format!(
                        "Invalid metadata: Invalid input received: Metadata key: {k} has 0 characters, less than 1."
                    ),
                );
            }
            if k.chars().count() > 255 {
                return fail(
                    stage,
                    14,
                    ErrorClass::InvalidVolumeMetadataSize,
                    format!("Invalid metadata size: Metadata property key {k} greater than 255 characters."),
                );
            }
            if v.chars().count() > 255 {
                return fail(
                    stage,
                    14,
                    ErrorClass::InvalidVolumeMetadataSize,
                    format!("Invalid metadata size: Metadata property key {k} value greater than 255 characters."),
                );
            }
        }
        Ok(())
    }
}

/// A type's non-empty `volume_backend_name` extra spec.
fn backend_name(t: &VolumeType) -> Option<&String> {
    t.extra_specs.get("volume_backend_name").filter(|n| !n.is_empty())
}

impl<'a> Run<'a> {
    // -- API-15 to API-26: ExtractVolumeRequestTask -----------------------

    fn extract(&mut self, refs: &Refs<'a>) -> R<ExtractedRequest> {
        let stage = ApiStage::Extract;
        let req = self.req;
        // API-15: at most one source (an empty image id counts: not None).
        let given = [refs.snapshot.is_some(), req.image_id.is_some(), refs.source.is_some(), refs.backup.is_some()];
        if given.iter().filter(|g| **g).count() > 1 {
            return invalid_input(stage, 15, "May specify only one of backup, imageRef, snapshot, source volume");
        }
        // API-17: the sources' statuses.
        if let Some(s) = refs.snapshot {
            if s.status != "available" {
                return fail(
                    stage,
                    17,
                    ErrorClass::InvalidSnapshot,
                    "Invalid snapshot: Originating snapshot status must be one of 'available' values",
                );
            }
        }
        if let Some(v) = refs.source {
            if !matches!(v.status.as_str(), "available" | "in-use") {
                return fail(
                    stage,
                    17,
                    ErrorClass::InvalidVolume,
                    "Invalid volume: Originating source volume status must be one of 'available, in-use' values",
                );
            }
        }
        if let Some(b) = refs.backup {
            if b.status != "available" {
                return fail(
                    stage,
                    17,
                    ErrorClass::InvalidBackup,
                    "Invalid backup: Originating backup status must be one of 'available' values",
                );
            }
        }
        // API-18.
        let size = self.extract_size(refs)?;
        // API-19.
        if let Some(g) = refs.group {
            if !matches!(g.status.as_str(), "available" | "creating") {
                return fail(
                    stage,
                    19,
                    ErrorClass::InvalidGroup,
                    "Invalid group: Originating group status must be one of 'available, creating' values",
                );
            }
        }
        // API-20.
        let image = match &req.image_id {
            Some(id) => Some(self.image_meta(id, &size)?),
            None => None,
        };
        // API-21.
        let image_type = image.and_then(image_volume_type);
        let vtype = self.extraction_type(refs, image_type)?;
        // API-22.
        let snapshot_zone = match refs.snapshot {
            Some(s) => Some(SourceZone {
                id: s.id.as_str().to_owned(),
                zone: self.snapshot_volume(s, stage, 22)?.availability_zone.clone(),
            }),
            None => None,
        };
        let zone_request = ZoneRequest {
            known: self.known_zones()?,
            volume_type: vtype.name.clone(),
            type_zones: vtype.extra_specs.get(TYPE_ZONES_KEY).cloned(),
            requested: req.availability_zone.clone(),
            group: refs.group.map(|g| GroupZone { group_id: g.id.clone(), zone: g.availability_zone.clone() }),
            snapshot: snapshot_zone,
            source_volume: refs
                .source
                .map(|v| SourceZone { id: v.id.as_str().to_owned(), zone: v.availability_zone.clone() }),
            ..ZoneRequest::new(BTreeSet::new(), None, self.config)
        };
        let explanation = decide_zone(&zone_request);
        let zones = explanation.zones();
        let refresh_az = explanation.refresh_az();
        let error = explanation.error().zip(explanation.message());
        self.zone = Some(explanation);
        if let Some((error, message)) = error {
            return fail(stage, 22, error, message);
        }
        let availability_zones = zones.unwrap_or_default();
        // API-23: a key for an encrypted type, made before API-24 looks at
        // multiattach.
        let encryption_key = match &vtype.encryption {
            Some(enc) => Some(self.key_source(refs, image, enc)?),
            None => None,
        };
        // API-24: the type is read again by id; multiattach only for exactly
        // "<is> True".
        let vtype = self.lookup_type(&vtype.id, TypeKey::Row)?.unwrap_or(vtype);
        let multiattach = vtype.extra_specs.get("multiattach").map(String::as_str) == Some("<is> True");
        if multiattach && encryption_key.is_some() {
            return fail(
                stage,
                24,
                ErrorClass::InvalidVolume,
                "Invalid volume: Multiattach cannot be used with encrypted volumes.",
            );
        }
        // API-25: without QoS specs the extra specs are dropped, so the
        // replication status is "disabled".
        let qos_specs: Option<Vec<(String, String)>> = (!vtype.qos_specs.is_empty())
            .then(|| vtype.qos_specs.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        let replicated = qos_specs.is_some()
            && !vtype.extra_specs.is_empty()
            && is_boolean_str(vtype.extra_specs.get("replication_enabled").map(String::as_str));
        Ok(ExtractedRequest {
            size,
            snapshot_id: refs.snapshot.map(|s| s.id.clone()),
            source_volid: refs.source.map(|v| v.id.clone()),
            backup_id: refs.backup.map(|b| b.id.clone()),
            group_id: refs.group.map(|g| g.id.clone()),
            volume_type: TypeRef { id: vtype.id.clone(), name: vtype.name.clone() },
            availability_zones,
            refresh_az,
            encryption_key,
            multiattach,
            qos_specs,
            replication_status: if replicated { ReplicationStatus::Enabled } else { ReplicationStatus::Disabled },
        })
    }

    /// `_extract_size` (API-18): fill a falsy size from the source, then
    /// `utils.as_int`, then the checks.
    fn extract_size(&self, refs: &Refs<'a>) -> R<PyInt> {
        let stage = ApiStage::Extract;
        let raw = &self.req.size;
        let filled = if raw.is_truthy() {
            raw.clone()
        } else if let Some(v) = refs.source {
            RequestedSize::Int(PyInt::from(v.size.0))
        } else if let Some(s) = refs.snapshot {
            RequestedSize::Int(PyInt::from(s.volume_size.0))
        } else if let Some(b) = refs.backup {
            RequestedSize::Int(PyInt::from(b.size))
        } else {
            raw.clone()
        };
        let size = match filled.as_int() {
            Err(e) => return py_fail(stage, 18, e),
            Ok(AsInt::Int(i)) if i.is_positive() => i,
            Ok(other) => {
                let shown = match other {
                    AsInt::Int(i) => i.to_string(),
                    AsInt::Unchanged(v) => v.py_str(),
                };
                return invalid_input(
                    stage,
                    18,
                    format!("Volume size '{shown}' must be an integer and greater than 0"),
                );
            }
        };
        if let Some(v) = refs.source {
            if size < PyInt::from(v.size.0) {
                return invalid_input(
                    stage,
                    18,
                    format!(
                        "Volume size '{size}'GB cannot be smaller than original volume size  {}GB. They must be >= \
                         original volume size.",
                        v.size.0
                    ),
                );
            }
        } else if let Some(s) = refs.snapshot {
            if size < PyInt::from(s.volume_size.0) {
                return invalid_input(
                    stage,
                    18,
                    format!(
                        "Volume size '{size}'GB cannot be smaller than the snapshot size {}GB. They must be >= \
                         original snapshot size.",
                        s.volume_size.0
                    ),
                );
            }
        } else if let Some(b) = refs.backup {
            if size < PyInt::from(b.size) {
                return invalid_input(
                    stage,
                    18,
                    format!(
                        "Volume size {size}GB cannot be smaller than the backup size {}GB. It must be >= backup size.",
                        b.size
                    ),
                );
            }
        }
        Ok(size)
    }

    /// `_get_image_metadata` and `volume_utils.check_image_metadata`
    /// (API-20).
    fn image_meta(&self, id: &ImageId, size: &PyInt) -> R<&'a Image> {
        let stage = ApiStage::Extract;
        let image = match self.image(id)? {
            Ok(image) => image,
            Err(BackendErrorKind::NotFound) => {
                return fail(stage, 20, ErrorClass::ImageNotFound, format!("Image {id} could not be found."))
            }
            Err(BackendErrorKind::PermissionDenied) => {
                return fail(stage, 20, ErrorClass::ImageNotAuthorized, format!("Not authorized for image {id}."))
            }
            Err(BackendErrorKind::Rejected) => return fail(stage, 20, ErrorClass::Invalid, "Unacceptable parameters."),
            Err(other) => return Err(Stop::Inconsistent(format!("image {id}: Glance answered {other:?}"))),
        };
        if image.status != "active" {
            return invalid_input(stage, 20, format!("Image {id} is not active."));
        }
        let Some(bytes) = image.size else {
            return fail(stage, 20, ErrorClass::TypeError, "Can not translate None to integer.");
        };
        let gib = u128::from(GIB);
        let image_gb = u128::from(bytes.0).div_ceil(gib);
        if PyInt::from(image_gb as i128) > *size {
            return invalid_input(
                stage,
                20,
                format!("Size of specified image {image_gb}GB is larger than volume size {size}GB."),
            );
        }
        if *size < PyInt::from(image.min_disk.0) {
            return invalid_input(
                stage,
                20,
                format!("Volume size {size}GB cannot be smaller than the image minDisk size {}GB.", image.min_disk.0),
            );
        }
        if let Some(virtual_size) = image.virtual_size.filter(|v| v.0 != 0) {
            // image_utils.check_virtual_size divides as floats.
            let virtual_gb = (virtual_size.0 as f64 / GIB as f64).ceil();
            if PyInt::from(virtual_gb as i128) > *size {
                return fail(
                    stage,
                    20,
                    ErrorClass::ImageUnacceptable,
                    format!(
                        "Image {id} is unacceptable: Image virtual size is {virtual_gb}GB and doesn't fit in a volume \
                         of size {size}GB."
                    ),
                );
            }
        }
        Ok(image)
    }

    /// `_get_volume_type` (API-21): requested, source volume's, snapshot's,
    /// the image's `cinder_img_volume_type`, the default.
    fn extraction_type(&self, refs: &Refs<'a>, image_type: Option<ImageType>) -> R<&'a VolumeType> {
        let stage = ApiStage::Extract;
        if let Some(t) = refs.volume_type {
            return Ok(t);
        }
        if let Some(v) = refs.source {
            return self.type_of_volume(v, stage, 21);
        }
        if let Some(s) = refs.snapshot {
            let v = self.snapshot_volume(s, stage, 21)?;
            return self.type_of_volume(v, stage, 21);
        }
        match image_type {
            Some(ImageType::Name(name)) => self.type_by_name_or_id(&name, stage, 21),
            Some(ImageType::Other(shown)) => fail(
                stage,
                21,
                ErrorClass::VolumeTypeNotFoundByName,
                format!("Volume type with name {shown} could not be found."),
            ),
            None => self.default_type(stage, 21),
        }
    }

    /// `_get_encryption_key_id` (API-23): clone the source's key, else make
    /// one for the type's cipher.
    fn key_source(&self, refs: &Refs<'a>, image: Option<&'a Image>, enc: &Encryption) -> R<KeySource> {
        let existing = if let Some(s) = refs.snapshot {
            s.encryption_key_id.clone().map(|key_id| KeySource::Snapshot { key_id })
        } else if let Some(v) = refs.source {
            v.encryption_key_id.clone().map(|key_id| KeySource::SourceVolume { key_id })
        } else if let Some(img) = image {
            match img.properties.get("cinder_encryption_key_id") {
                None | Some(Value::Null) => None,
                Some(Value::String(k)) => Some(KeySource::Image { key_id: k.clone() }),
                Some(other) => Some(KeySource::Image { key_id: other.to_string() }),
            }
        } else {
            None
        };
        if let Some(k) = existing {
            return Ok(k);
        }
        match enc.cipher.as_deref().filter(|c| !c.is_empty()) {
            Some(cipher) => Ok(KeySource::New {
                algorithm: cipher.split('-').next().unwrap_or_default().to_owned(),
                length: enc.key_size,
            }),
            None => fail(ApiStage::Extract, 23, ErrorClass::InvalidVolumeType, "Invalid encryption spec"),
        }
    }

    // -- API-27: QuotaReserveTask -----------------------------------------

    fn reserve_quota(&self, extracted: &ExtractedRequest) -> R<()> {
        let stage = ApiStage::Quota;
        let size = &extracted.size;
        if PER_VOLUME_SIZE_LIMIT >= 0 && *size > PyInt::from(PER_VOLUME_SIZE_LIMIT) {
            return fail(
                stage,
                27,
                ErrorClass::VolumeSizeExceedsLimit,
                format!("Requested volume size {size}G is larger than maximum allowed limit {PER_VOLUME_SIZE_LIMIT}G."),
            );
        }
        let project = &self.req.project_id;
        let usage: ProjectUsage = match self.facts.project_usage.get(project) {
            Some(u) => *u,
            None => return Err(Stop::Need(vec![Need::ProjectUsage { project_id: project.clone() }])),
        };
        let volumes_in_use = i128::from(usage.volumes);
        let gigabytes_in_use = i128::from(usage.volume_gigabytes) + i128::from(usage.snapshot_gigabytes);
        let with_request = |in_use: i128| match size.to_i128() {
            Some(s) => PyInt::from(in_use.saturating_add(s)),
            None => size.clone(),
        };
        // The usage columns are 32-bit: checked before the limits.
        let max = PyInt::from(QUOTA_USAGE_MAX);
        if PyInt::from(volumes_in_use + 1) > max || with_request(gigabytes_in_use) > max {
            return fail(
                stage,
                27,
                ErrorClass::QuotaUsageOverflow,
                format!(
                    "Quota usage would overflow for resources: ['gigabytes', 'gigabytes_{}']. The requested operation \
                     would exceed the maximum allowed value ({QUOTA_USAGE_MAX}) for quota tracking.",
                    extracted.volume_type.name
                ),
            );
        }
        if QUOTA_VOLUMES >= 0 && i128::from(QUOTA_VOLUMES) < volumes_in_use + 1 {
            return fail(
                stage,
                27,
                ErrorClass::VolumeLimitExceeded,
                format!("Maximum number of volumes allowed ({QUOTA_VOLUMES}) exceeded for quota 'volumes'."),
            );
        }
        if QUOTA_GIGABYTES >= 0 && with_request(gigabytes_in_use) > PyInt::from(QUOTA_GIGABYTES) {
            return fail(
                stage,
                27,
                ErrorClass::VolumeSizeExceedsAvailableQuota,
                format!(
                    "Requested volume or snapshot exceeds allowed gigabytes quota. Requested {size}G, quota is \
                     {QUOTA_GIGABYTES}G and {gigabytes_in_use}G has been consumed."
                ),
            );
        }
        Ok(())
    }

    // -- API-28: EntryCreateTask ------------------------------------------

    fn entry(&self, refs: &Refs<'a>, extracted: &ExtractedRequest) -> R<NewVolume> {
        let bootable = match (refs.source, refs.snapshot) {
            (Some(v), _) => v.bootable,
            (None, Some(s)) => self.snapshot_volume(s, ApiStage::EntryCreate, 28)?.bootable,
            (None, None) => false,
        };
        let zones = &extracted.availability_zones;
        Ok(NewVolume {
            availability_zone: if zones.len() == 1 { zones.first().cloned() } else { None },
            size: extracted.size.clone(),
            status: VolumeStatus::Creating,
            volume_type: extracted.volume_type.name.clone(),
            bootable,
            multiattach: extracted.multiattach,
            encrypted: extracted.encrypted(),
        })
    }
}

/// The image's `cinder_img_volume_type` when truthy (API-21.4). A number is
/// looked up by name as SQL compares it with the text column (`5` finds the
/// type named `"5"`, `true` the one named `"1"`).
fn image_volume_type(image: &Image) -> Option<ImageType> {
    match image.properties.get("cinder_img_volume_type")? {
        Value::Null | Value::Bool(false) => None,
        Value::Bool(true) => Some(ImageType::Name("1".into())),
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(ImageType::Name(s.clone())),
        Value::Number(n) if n.as_f64() == Some(0.0) => None,
        Value::Number(n) => Some(ImageType::Name(n.to_string())),
        Value::Array(a) if a.is_empty() => None,
        Value::Object(o) if o.is_empty() => None,
        other => Some(ImageType::Other(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::facts::Fact;
    use crate::model::{Bytes, GiB};

    /// A small database and Glance answering the planner's needs.
    #[derive(Default)]
    struct World {
        services: Vec<Service>,
        volumes: Vec<Volume>,
        snapshots: Vec<Snapshot>,
        types: Vec<VolumeType>,
        images: Vec<Image>,
        project_default: Option<String>,
        usage: ProjectUsage,
        config: Config,
    }

    fn service(host: &str, zone: &str) -> Service {
        Service {
            host: host.into(),
            binary: VOLUME_TOPIC.into(),
            topic: VOLUME_TOPIC.into(),
            availability_zone: zone.into(),
            disabled: false,
        }
    }

    fn volume(id: &str, size: u64, zone: &str) -> Volume {
        let mut v = Volume::new(id, "project-1", GiB(size));
        v.availability_zone = zone.into();
        v
    }

    fn snapshot(id: &str, volume_id: &str, size: u64) -> Snapshot {
        Snapshot {
            id: id.into(),
            volume_id: volume_id.into(),
            volume_size: GiB(size),
            status: "available".into(),
            project_id: "project-1".into(),
            encryption_key_id: None,
        }
    }

    fn vtype(name: &str) -> VolumeType {
        VolumeType::plain(format!("type-{name}"), name)
    }

    fn luks() -> Encryption {
        Encryption {
            provider: "luks".into(),
            cipher: Some("aes-xts-plain64".into()),
            key_size: Some(256),
            control_location: "front-end".into(),
        }
    }

    fn image(id: &str, size: u64) -> Image {
        Image::raw(id, "project-1", Bytes(size))
    }

    impl World {
        /// Two services (nova, az1) and the default type.
        fn new() -> Self {
            Self {
                services: vec![service("hostA@ceph", "nova"), service("hostB@ceph", "az1")],
                types: vec![VolumeType::plain("type-default", crate::model::DEFAULT_VOLUME_TYPE)],
                ..Self::default()
            }
        }

        fn answer(&self, need: &Need) -> Fact {
            match need {
                Need::Services => Fact::Services { services: self.services.clone() },
                Need::Volume { volume_id } => Fact::Volume {
                    volume_id: volume_id.clone(),
                    volume: self.volumes.iter().find(|v| &v.id == volume_id).cloned().map(std::sync::Arc::new),
                },
                Need::Snapshot { snapshot_id } => Fact::Snapshot {
                    snapshot_id: snapshot_id.clone(),
                    snapshot: self.snapshots.iter().find(|s| &s.id == snapshot_id).cloned(),
                },
                // As the in-memory database: by name, then by id.
                Need::VolumeType { name } => Fact::VolumeType {
                    name: name.clone(),
                    volume_type: self
                        .types
                        .iter()
                        .find(|t| &t.name == name)
                        .or_else(|| self.types.iter().find(|t| &t.id == name))
                        .cloned(),
                },
                Need::Image { image_id } => Fact::Image {
                    image_id: image_id.clone(),
                    image: self
                        .images
                        .iter()
                        .find(|i| &i.id == image_id)
                        .cloned()
                        .map(std::sync::Arc::new)
                        .ok_or(BackendErrorKind::NotFound),
                },
                Need::ProjectDefaultVolumeType { project_id } => Fact::ProjectDefaultVolumeType {
                    project_id: project_id.clone(),
                    volume_type_id: self.project_default.clone(),
                },
                Need::ProjectUsage { project_id } => {
                    Fact::ProjectUsage { project_id: project_id.clone(), usage: self.usage }
                }
                other => panic!("unexpected need {other:?}"),
            }
        }

        fn run(&self, req: &ApiRequest, kind: ApiKind) -> ApiResult {
            let mut facts = Facts::new();
            for _ in 0..20 {
                match plan_api(req, kind, &facts, &self.config).expect("plans") {
                    ApiPlanning::Done(r) => return *r,
                    ApiPlanning::NeedFacts(needs) => {
                        assert!(!needs.is_empty());
                        for n in &needs {
                            facts.learn(self.answer(n));
                        }
                    }
                }
            }
            panic!("no decision after 20 rounds")
        }

        fn create(&self, req: &ApiRequest) -> ApiResult {
            self.run(req, ApiKind::Create)
        }

        fn extract(&self, req: &ApiRequest) -> ApiResult {
            self.run(req, ApiKind::ExtractOnly)
        }
    }

    fn req(size: impl Into<RequestedSize>) -> ApiRequest {
        let mut r = ApiRequest::new("project-1", "user-1");
        r.size = size.into();
        r
    }

    fn err(r: &ApiResult) -> Option<&'static str> {
        r.error().map(ErrorClass::name)
    }

    fn failure(r: &ApiResult) -> &ApiFailure {
        match &r.outcome {
            ApiOutcome::Failed { failure, .. } => failure,
            ApiOutcome::Accepted { .. } => panic!("accepted: {r:?}"),
        }
    }

    fn ok(r: &ApiResult) -> &ExtractedRequest {
        match &r.outcome {
            ApiOutcome::Accepted { request, .. } => request,
            ApiOutcome::Failed { failure, .. } => panic!("failed: {failure}"),
        }
    }

    // -- Python semantics ---------------------------------------------------

    #[test]
    fn py_int_parses_like_python_int() {
        let p = |s: &str| parse_py_int(s).map(|i| i.to_string());
        assert_eq!(p(" 3 "), Some("3".into()));
        assert_eq!(p("+3"), Some("3".into()));
        assert_eq!(p("-0"), Some("0".into()));
        assert_eq!(p("007"), Some("7".into()));
        assert_eq!(p("1_000"), Some("1000".into()));
        assert_eq!(p("1__0"), None);
        assert_eq!(p("_1"), None);
        assert_eq!(p("1_"), None);
        assert_eq!(p("2.5"), None);
        assert_eq!(p(""), None);
        assert_eq!(p("+-1"), None);
        assert_eq!(p("\u{1f}4\u{1c}"), Some("4".into()));
        assert_eq!(
            p("123456789012345678901234567890123456789012"),
            Some("123456789012345678901234567890123456789012".into())
        );
    }

    #[test]
    fn py_int_orders_any_size() {
        let big = parse_py_int("1".repeat(60).as_str()).unwrap();
        let neg_big = parse_py_int(&format!("-{}", "9".repeat(60))).unwrap();
        assert!(big > PyInt::from(i128::MAX));
        assert!(neg_big < PyInt::from(i128::MIN));
        assert!(PyInt::from(-3) < PyInt::from(-2));
        assert!(PyInt::from(10) > PyInt::from(9));
        assert_eq!(PyInt::from_f64(1e300).unwrap().to_string().len(), 301);
        assert_eq!(PyInt::from_f64(-2.9).unwrap(), PyInt::from(-2));
        assert!(matches!(PyInt::from_f64(f64::NAN), Err(PyError::ValueError(_))));
        assert!(matches!(PyInt::from_f64(f64::INFINITY), Err(PyError::OverflowError(_))));
    }

    #[test]
    fn is_int_like_is_strutils() {
        assert_eq!(RequestedSize::from("3").is_int_like(), Ok(true));
        assert_eq!(RequestedSize::from("-3").is_int_like(), Ok(true));
        for s in [" 3 ", "+3", "03", "3.0", "1e3", "abc", "-0"] {
            assert_eq!(RequestedSize::from(s).is_int_like(), Ok(false), "{s:?}");
        }
        assert_eq!(RequestedSize::Bool(true).is_int_like(), Ok(false));
        assert_eq!(RequestedSize::Float(2.0).is_int_like(), Ok(false));
        assert_eq!(RequestedSize::Float(f64::NAN).is_int_like(), Ok(false));
        assert!(matches!(RequestedSize::Float(f64::INFINITY).is_int_like(), Err(PyError::OverflowError(_))));
        assert_eq!(RequestedSize::from(5).is_int_like(), Ok(true));
    }

    #[test]
    fn as_int_is_cinder_utils_as_int() {
        let a = |s: RequestedSize| s.as_int();
        assert_eq!(a("2.5".into()), Ok(AsInt::Int(PyInt::from(2))));
        assert_eq!(a("1e3".into()), Ok(AsInt::Int(PyInt::from(1000))));
        assert_eq!(a(" 3 ".into()), Ok(AsInt::Int(PyInt::from(3))));
        assert_eq!(a(RequestedSize::Bool(true)), Ok(AsInt::Int(PyInt::from(1))));
        assert_eq!(a("nan".into()), Ok(AsInt::Unchanged("nan".into())));
        assert_eq!(a("abc".into()), Ok(AsInt::Unchanged("abc".into())));
        assert_eq!(a(RequestedSize::Null), Ok(AsInt::Unchanged(RequestedSize::Null)));
        assert!(matches!(a("inf".into()), Err(PyError::OverflowError(_))));
        assert!(matches!(a("1e400".into()), Err(PyError::OverflowError(_))));
        assert_eq!(a(RequestedSize::Float(-1.5)), Ok(AsInt::Int(PyInt::from(-1))));
    }

    #[test]
    fn uuid_like_follows_oslo() {
        assert!(is_uuid_like("bbbbbbbb-0000-4000-8000-000000000001"));
        assert!(is_uuid_like("{BBBBBBBB00004000800000000000000F}"));
        assert!(is_uuid_like("urn:uuid:bbbbbbbb-0000-4000-8000-000000000001"));
        assert!(!is_uuid_like("gold"));
        assert!(!is_uuid_like("bbbbbbbb-0000-4000-8000-00000000000g"));
    }

    #[test]
    fn boolean_str_needs_is_and_a_true_word() {
        assert!(is_boolean_str(Some("<is> True")));
        assert!(is_boolean_str(Some("  <is>   yes ")));
        assert!(!is_boolean_str(Some("True")));
        assert!(!is_boolean_str(Some("<is> False")));
        assert!(!is_boolean_str(None));
    }

    // -- API-2 ----------------------------------------------------------------

    #[test]
    fn api2_references_must_exist_in_the_project() {
        let mut w = World::new();
        let mut other = volume("33333333-3333-4333-8333-333333333333", 2, "az1");
        other.project_id = "project-2".into();
        w.volumes.push(other);
        let mut r = req(2);
        r.source_volid = Some("33333333-3333-4333-8333-333333333333".into());
        let res = w.create(&r);
        assert_eq!(err(&res), Some("VolumeNotFound"));
        assert_eq!(failure(&res).stage, ApiStage::References);
        assert_eq!(res.known_availability_zones, None);

        let mut r = req(2);
        r.snapshot_id = Some("55555555-5555-4555-8555-555555555555".into());
        assert_eq!(err(&w.create(&r)), Some("SnapshotNotFound"));
        // The extraction alone has its zones before the lookups.
        assert_eq!(w.extract(&r).known_availability_zones, Some(vec!["az1".into(), "nova".into()]));
    }

    #[test]
    fn api2_type_lookup_by_name_or_uuid() {
        let mut w = World::new();
        w.types.push(VolumeType::plain("bbbbbbbb-0000-4000-8000-000000000001", "byid"));
        w.types.push(vtype("gold"));
        let mut r = req(1);
        r.volume_type = Some("nosuch".into());
        assert_eq!(err(&w.create(&r)), Some("VolumeTypeNotFoundByName"));
        r.volume_type = Some("bbbbbbbb-0000-4000-8000-00000000000f".into());
        assert_eq!(err(&w.create(&r)), Some("VolumeTypeNotFound"));
        r.volume_type = Some("bbbbbbbb-0000-4000-8000-000000000001".into());
        assert_eq!(ok(&w.create(&r)).volume_type.name, "byid");
        // A non-UUID id is not looked up by id.
        r.volume_type = Some("type-gold".into());
        assert_eq!(err(&w.create(&r)), Some("VolumeTypeNotFoundByName"));
        // An empty type is no type.
        r.volume_type = Some(String::new());
        assert_eq!(ok(&w.create(&r)).volume_type.name, "__DEFAULT__");
    }

    // -- API-9 / API-10 -----------------------------------------------------

    #[test]
    fn api9_size_must_be_int_like_and_positive_before_the_flow() {
        let w = World::new();
        for size in [
            RequestedSize::from("1.5"),
            RequestedSize::from(" 3 "),
            RequestedSize::from("+3"),
            RequestedSize::from("0"),
            RequestedSize::from(-1),
            RequestedSize::Bool(true),
            RequestedSize::Float(2.0),
        ] {
            let res = w.create(&req(size.clone()));
            assert_eq!(err(&res), Some("InvalidInput"), "{size:?}");
            assert_eq!(failure(&res).rule, ApiRule(9), "{size:?}");
            assert_eq!(res.known_availability_zones, None);
        }
        let res = w.create(&req(RequestedSize::Float(f64::INFINITY)));
        assert_eq!(err(&res), Some("OverflowError"));
        assert_eq!(ok(&w.create(&req("2"))).size, PyInt::from(2));
    }

    #[test]
    fn api10_int_of_a_falsy_size_raises_before_the_flow() {
        let w = World::new();
        assert_eq!(err(&w.create(&req(RequestedSize::Null))), Some("TypeError"));
        assert_eq!(err(&w.create(&req(""))), Some("ValueError"));
        // int(False) == 0 passes here and fails the extraction instead.
        let res = w.create(&req(RequestedSize::Bool(false)));
        assert_eq!(failure(&res).rule, ApiRule(18));
        assert_eq!(res.known_availability_zones, Some(vec!["az1".into(), "nova".into()]));
    }

    #[test]
    fn api10_provisioning_limits() {
        let mut w = World::new();
        let mut prov = vtype("prov");
        prov.extra_specs.insert(MIN_SIZE_KEY.into(), "2".into());
        prov.extra_specs.insert(MAX_SIZE_KEY.into(), " 5 ".into());
        w.types.push(prov);
        let with = |size: i64| {
            let mut r = req(size);
            r.volume_type = Some("prov".into());
            r
        };
        assert_eq!(err(&w.create(&with(1))), Some("InvalidInput"));
        assert!(w.create(&with(2)).error().is_none());
        assert!(w.create(&with(5)).error().is_none());
        assert_eq!(err(&w.create(&with(6))), Some("InvalidInput"));
        // The extraction alone does not filter.
        assert!(w.extract(&with(6)).error().is_none());
        // The default type's limits apply when none is requested.
        let mut w = World::new();
        w.types[0].extra_specs.insert(MAX_SIZE_KEY.into(), "3".into());
        assert_eq!(err(&w.create(&req(4))), Some("InvalidInput"));
        w.types[0].extra_specs.insert(MAX_SIZE_KEY.into(), "three".into());
        assert_eq!(err(&w.create(&req(4))), Some("ValueError"));
    }

    #[test]
    fn api10_misconfigured_default_type() {
        let mut w = World::new();
        w.config.default_volume_type = "nosuch".into();
        let res = w.create(&req(1));
        assert_eq!(err(&res), Some("VolumeTypeDefaultMisconfiguredError"));
        assert_eq!(res.known_availability_zones, None);
        // Looked up by name only.
        w.config.default_volume_type = "type-default".into();
        assert_eq!(err(&w.create(&req(1))), Some("VolumeTypeDefaultMisconfiguredError"));
    }

    // -- API-11 / API-12 ----------------------------------------------------

    fn group(status: &str, zone: Option<&str>) -> ApiGroup {
        ApiGroup {
            id: "99999999-9999-4999-8999-999999999999".into(),
            status: status.into(),
            availability_zone: zone.map(Into::into),
            volume_type_ids: None,
        }
    }

    #[test]
    fn api11_group_needs_a_supported_type() {
        let mut w = World::new();
        w.types.push(vtype("gold"));
        let mut r = req(1);
        r.group = Some(group("available", Some("az1")));
        assert_eq!(err(&w.create(&r)), Some("InvalidInput"));
        r.volume_type = Some("gold".into());
        assert!(w.create(&r).error().is_none());
        r.group.as_mut().unwrap().volume_type_ids = Some(vec!["type-silver".into()]);
        assert_eq!(failure(&w.create(&r)).rule, ApiRule(11));
    }

    #[test]
    fn api12_retype_from_source_or_snapshot() {
        let mut w = World::new();
        w.types.extend([vtype("gold"), vtype("silver")]);
        let mut src = volume("33333333-3333-4333-8333-333333333333", 2, "az1");
        src.volume_type = "gold".into();
        w.volumes.push(src);
        w.snapshots.push(snapshot("55555555-5555-4555-8555-555555555555", "33333333-3333-4333-8333-333333333333", 2));
        let mut r = req(2);
        r.source_volid = Some("33333333-3333-4333-8333-333333333333".into());
        r.volume_type = Some("silver".into());
        // Two enabled services, no backend name: not possible.
        assert_eq!(failure(&w.create(&r)).rule, ApiRule(12));
        // Exactly one *disabled* service: possible.
        w.services[0].disabled = true;
        assert_eq!(ok(&w.create(&r)).volume_type.name, "silver");
        w.services[0].disabled = false;
        // Same volume_backend_name: possible.
        for t in &mut w.types {
            t.extra_specs.insert("volume_backend_name".into(), "ceph".into());
        }
        assert!(w.create(&r).error().is_none());
        // Never across encryptions.
        w.types.iter_mut().find(|t| t.name == "silver").unwrap().encryption = Some(luks());
        w.services = vec![Service { disabled: true, ..service("hostA@ceph", "az1") }];
        assert_eq!(failure(&w.create(&r)).rule, ApiRule(12));
        // From the snapshot too.
        let mut r = req(2);
        r.snapshot_id = Some("55555555-5555-4555-8555-555555555555".into());
        r.volume_type = Some("silver".into());
        assert_eq!(failure(&w.create(&r)).rule, ApiRule(12));
        // The extraction alone does not check.
        assert!(w.extract(&r).error().is_none());
    }

    // -- API-13 / API-14 ----------------------------------------------------

    #[test]
    fn api13_known_zones_are_volume_services_and_the_storage_zone() {
        let mut sched = service("sched", "azs");
        sched.topic = "cinder-scheduler".into();
        let disabled = Service { disabled: true, ..service("hostD@ceph", "azd") };
        let services = [service("hostA@ceph", "az1"), sched, disabled];
        let known = known_availability_zones(&services, "nova");
        assert_eq!(known.into_iter().collect::<Vec<_>>(), ["az1", "azd", "nova"]);
        assert_eq!(known_availability_zones(&services, "").len(), 2);
    }

    #[test]
    fn api14_metadata_checked_in_request_order() {
        let w = World::new();
        let mut r = req(1);
        r.metadata = Some(vec![("k".repeat(256), "v".into()), (String::new(), "v".into())]);
        let res = w.create(&r);
        assert_eq!(err(&res), Some("InvalidVolumeMetadataSize"));
        assert_eq!(res.known_availability_zones, None);
        r.metadata = Some(vec![(String::new(), "v".into()), ("k".repeat(256), "v".into())]);
        assert_eq!(err(&w.create(&r)), Some("InvalidVolumeMetadata"));
        r.metadata = Some(vec![("k".into(), "v".repeat(256))]);
        assert_eq!(err(&w.create(&r)), Some("InvalidVolumeMetadataSize"));
        // Not checked by the extraction.
        assert!(w.extract(&r).error().is_none());
    }

    // -- API-15 to API-19 ---------------------------------------------------

    #[test]
    fn api15_one_source_at_most_and_an_empty_image_id_counts() {
        let mut w = World::new();
        w.volumes.push(volume("33333333-3333-4333-8333-333333333333", 2, "az1"));
        let mut r = req(2);
        r.source_volid = Some("33333333-3333-4333-8333-333333333333".into());
        r.image_id = Some("".into());
        let res = w.create(&r);
        assert_eq!(failure(&res).rule, ApiRule(15));
        assert!(failure(&res).message.contains("May specify only one of backup, imageRef, snapshot, source volume"));
        // Alone, the empty image id is looked up, and not found.
        let mut r = req(2);
        r.image_id = Some("".into());
        assert_eq!(err(&w.create(&r)), Some("ImageNotFound"));
    }

    #[test]
    fn api17_source_statuses() {
        let mut w = World::new();
        let mut v = volume("33333333-3333-4333-8333-333333333333", 2, "az1");
        v.status = "in-use".into();
        w.volumes.push(v);
        let mut r = req(2);
        r.source_volid = Some("33333333-3333-4333-8333-333333333333".into());
        assert!(w.create(&r).error().is_none());
        w.volumes[0].status = "error".into();
        assert_eq!(err(&w.create(&r)), Some("InvalidVolume"));
        w.volumes[0].status = "available".into();
        w.snapshots.push(snapshot("55555555-5555-4555-8555-555555555555", "33333333-3333-4333-8333-333333333333", 2));
        w.snapshots[0].status = "creating".into();
        let mut r = req(2);
        r.snapshot_id = Some("55555555-5555-4555-8555-555555555555".into());
        assert_eq!(err(&w.create(&r)), Some("InvalidSnapshot"));
        let mut r = req(2);
        r.backup = Some(ApiBackup { id: "b".into(), status: "error".into(), size: 2 });
        assert_eq!(err(&w.create(&r)), Some("InvalidBackup"));
    }

    #[test]
    fn api18_size_from_sources_and_checks() {
        let mut w = World::new();
        w.volumes.push(volume("33333333-3333-4333-8333-333333333333", 3, "az1"));
        w.snapshots.push(snapshot("55555555-5555-4555-8555-555555555555", "33333333-3333-4333-8333-333333333333", 3));
        let from_source = |size: RequestedSize| {
            let mut r = req(size);
            r.source_volid = Some("33333333-3333-4333-8333-333333333333".into());
            r
        };
        assert_eq!(ok(&w.extract(&from_source(RequestedSize::Null))).size, PyInt::from(3));
        assert_eq!(ok(&w.extract(&from_source(RequestedSize::from(0)))).size, PyInt::from(3));
        assert_eq!(ok(&w.extract(&from_source("3.5".into()))).size, PyInt::from(3));
        assert_eq!(err(&w.extract(&from_source(RequestedSize::from(2)))), Some("InvalidInput"));
        let mut r = req(RequestedSize::Null);
        r.snapshot_id = Some("55555555-5555-4555-8555-555555555555".into());
        assert_eq!(ok(&w.extract(&r)).size, PyInt::from(3));
        let mut r = req(RequestedSize::Null);
        r.backup = Some(ApiBackup { id: "b".into(), status: "available".into(), size: 4 });
        assert_eq!(ok(&w.extract(&r)).size, PyInt::from(4));
        r.size = RequestedSize::from(1);
        assert_eq!(err(&w.extract(&r)), Some("InvalidInput"));
        // Without a source: as_int's conversions.
        assert_eq!(ok(&w.extract(&req("1e3"))).size, PyInt::from(1000));
        assert_eq!(ok(&w.extract(&req(RequestedSize::Bool(true)))).size, PyInt::from(1));
        assert_eq!(err(&w.extract(&req("nan"))), Some("InvalidInput"));
        assert_eq!(err(&w.extract(&req("inf"))), Some("OverflowError"));
        assert_eq!(err(&w.extract(&req(RequestedSize::Null))), Some("InvalidInput"));
        // A size no i128 holds is still a size.
        let huge = "9".repeat(50);
        assert_eq!(ok(&w.extract(&req(huge.as_str()))).size.to_string(), huge);
    }

    #[test]
    fn api19_group_status() {
        let mut w = World::new();
        w.types.push(vtype("gold"));
        let mut r = req(1);
        r.volume_type = Some("gold".into());
        r.group = Some(group("creating", Some("az1")));
        assert!(w.create(&r).error().is_none());
        r.group = Some(group("error", Some("az1")));
        assert_eq!(err(&w.create(&r)), Some("InvalidGroup"));
    }

    // -- API-20 / API-21 ----------------------------------------------------

    #[test]
    fn api20_image_checks() {
        let mut w = World::new();
        let id = "aaaaaaaa-0000-4000-8000-000000000001";
        let with_image = |w: &mut World, image: Image, size: i64| {
            w.images = vec![image];
            let mut r = req(size);
            r.image_id = Some(id.into());
            w.create(&r)
        };
        let gib = GIB;
        assert!(with_image(&mut w, image(id, 2 * gib), 2).error().is_none());
        assert_eq!(err(&with_image(&mut w, image(id, 2 * gib + 1), 2)), Some("InvalidInput"));
        let mut i = image(id, gib);
        i.status = "queued".into();
        assert_eq!(err(&with_image(&mut w, i, 2)), Some("InvalidInput"));
        let mut i = image(id, gib);
        i.size = None;
        i.virtual_size = None;
        assert_eq!(err(&with_image(&mut w, i, 2)), Some("TypeError"));
        let mut i = image(id, gib);
        i.min_disk = GiB(3);
        assert_eq!(err(&with_image(&mut w, i, 2)), Some("InvalidInput"));
        let mut i = image(id, gib);
        i.virtual_size = Some(Bytes(2 * gib + 1));
        assert_eq!(err(&with_image(&mut w, i, 2)), Some("ImageUnacceptable"));
        let mut i = image(id, gib);
        i.virtual_size = Some(Bytes(0));
        assert!(with_image(&mut w, i, 1).error().is_none());
        // Glance's refusals.
        let mut facts = Facts::new();
        let mut r = req(1);
        r.image_id = Some(id.into());
        for n in [Need::Services, Need::VolumeType { name: "__DEFAULT__".into() }] {
            facts.learn(w.answer(&n));
        }
        facts.learn(Fact::Image { image_id: id.into(), image: Err(BackendErrorKind::PermissionDenied) });
        let done = |facts: &Facts| match plan_api(&r, ApiKind::ExtractOnly, facts, &w.config).unwrap() {
            ApiPlanning::Done(res) => res,
            ApiPlanning::NeedFacts(n) => panic!("{n:?}"),
        };
        assert_eq!(err(&done(&facts)), Some("ImageNotAuthorized"));
        facts.learn(Fact::Image { image_id: id.into(), image: Err(BackendErrorKind::Unavailable) });
        assert!(matches!(plan_api(&r, ApiKind::ExtractOnly, &facts, &w.config), Err(PlanError::InconsistentFacts(_))));
    }

    #[test]
    fn api21_type_precedence() {
        let mut w = World::new();
        w.types.extend([
            vtype("gold"),
            vtype("silver"),
            VolumeType::plain("bbbbbbbb-0000-4000-8000-000000000001", "byid"),
        ]);
        let id = "aaaaaaaa-0000-4000-8000-000000000001";
        let mut img = image(id, GIB);
        img.properties.insert("cinder_img_volume_type".into(), Value::String("gold".into()));
        w.images.push(img);
        let mut r = req(1);
        r.image_id = Some(id.into());
        assert_eq!(ok(&w.create(&r)).volume_type.name, "gold");
        r.volume_type = Some("silver".into());
        assert_eq!(ok(&w.create(&r)).volume_type.name, "silver");
        r.volume_type = None;
        for (value, expect) in [
            (Value::String("".into()), Some("__DEFAULT__")),
            (Value::Null, Some("__DEFAULT__")),
            (Value::String("bbbbbbbb-0000-4000-8000-000000000001".into()), Some("byid")),
            (Value::String("nosuch".into()), None),
            (serde_json::json!(5), None),
            (serde_json::json!([1]), None),
        ] {
            w.images[0].properties.insert("cinder_img_volume_type".into(), value.clone());
            let res = w.create(&r);
            match expect {
                Some(name) => assert_eq!(ok(&res).volume_type.name, name, "{value}"),
                None => assert_eq!(err(&res), Some("VolumeTypeNotFoundByName"), "{value}"),
            }
        }
        // The source volume's type beats the default; the project's default
        // beats default_volume_type.
        let mut w = World::new();
        w.types.extend([vtype("gold"), vtype("silver")]);
        w.project_default = Some("type-silver".into());
        assert_eq!(ok(&w.create(&req(1))).volume_type.name, "silver");
        let mut src = volume("33333333-3333-4333-8333-333333333333", 1, "az1");
        src.volume_type = "gold".into();
        w.volumes.push(src);
        let mut r = req(1);
        r.source_volid = Some("33333333-3333-4333-8333-333333333333".into());
        assert_eq!(ok(&w.create(&r)).volume_type.name, "gold");
        w.project_default = Some("type-missing".into());
        assert_eq!(err(&w.create(&req(1))), Some("VolumeTypeNotFound"));
    }

    // -- API-22 -------------------------------------------------------------

    fn zones(known: &[&str]) -> BTreeSet<String> {
        known.iter().map(|s| s.to_string()).collect()
    }

    fn zreq(known: &[&str], requested: Option<&str>) -> ZoneRequest {
        ZoneRequest::new(zones(known), requested.map(Into::into), &Config::default())
    }

    #[test]
    fn api22_type_spec_parsing() {
        let p = parse_type_availability_zones;
        assert_eq!(p("nova3,,,"), ["nova3"]);
        assert!(p(",,").is_empty());
        assert!(p("").is_empty());
        assert_eq!(p(" "), [""]);
        assert_eq!(p("a, ,b"), ["a", "", "b"]);
        assert_eq!(p("az1 , nova"), ["az1", "nova"]);
    }

    #[test]
    fn api22_requested_default_storage() {
        let e = decide_zone(&zreq(&["az1", "nova"], Some("az1")));
        assert_eq!(e.decision, ZoneDecision::Pinned { zone: "az1".into() });
        let e = decide_zone(&zreq(&["az1", "nova"], None));
        assert_eq!(e.candidate.unwrap().source, ZoneSource::StorageAvailabilityZone);
        let mut r = zreq(&["az1", "nova"], None);
        r.default_availability_zone = Some("az1".into());
        let e = decide_zone(&r);
        assert_eq!(e.candidate.unwrap().source, ZoneSource::DefaultAvailabilityZone);
        // An unknown default is rejected like a requested zone.
        r.default_availability_zone = Some("az9".into());
        assert_eq!(decide_zone(&r).error(), Some(ErrorClass::InvalidAvailabilityZone));
        // Case matters.
        assert_eq!(decide_zone(&zreq(&["nova"], Some("NOVA"))).error(), Some(ErrorClass::InvalidAvailabilityZone));
        // An empty zone is no zone: every known zone, no refresh.
        let e = decide_zone(&zreq(&["az1", "nova"], Some("")));
        assert_eq!(e.zones(), Some(vec!["az1".into(), "nova".into()]));
        assert!(!e.refresh_az());
        let mut r = zreq(&["az1", "nova"], None);
        r.storage_availability_zone = String::new();
        r.known = zones(&["az1", "nova"]);
        assert!(matches!(decide_zone(&r).decision, ZoneDecision::Unpinned { reason: UnpinnedReason::EmptyZone, .. }));
    }

    #[test]
    fn api22_fallback_is_not_validated_again() {
        let mut r = zreq(&["az1", "nova"], Some("az-x"));
        r.allow_availability_zone_fallback = true;
        let e = decide_zone(&r);
        assert_eq!(e.decision, ZoneDecision::Pinned { zone: "nova".into() });
        assert!(e.refresh_az());
        assert_eq!(e.fallback.as_ref().unwrap().from, FallbackSource::StorageAvailabilityZone);
        r.default_availability_zone = Some("az9".into());
        let e = decide_zone(&r);
        assert_eq!(e.decision, ZoneDecision::Pinned { zone: "az9".into() });
        assert!(!e.fallback.as_ref().unwrap().replacement_valid);
        assert!(e.to_string().contains("NOT a valid zone"));
        // Nor against the type's zones.
        let mut r = zreq(&["az1", "nova"], Some("az9"));
        r.allow_availability_zone_fallback = true;
        r.type_zones = Some("az1".into());
        assert_eq!(decide_zone(&r).decision, ZoneDecision::Pinned { zone: "nova".into() });
    }

    #[test]
    fn api22_type_restriction() {
        let mut r = zreq(&["az1", "nova", "nova3"], None);
        r.type_zones = Some("az1,nova".into());
        r.default_availability_zone = Some("nova".into());
        let e = decide_zone(&r);
        assert_eq!(
            e.decision,
            ZoneDecision::Unpinned { zones: vec!["az1".into(), "nova".into()], reason: UnpinnedReason::TypeRestricted }
        );
        r.requested = Some("nova3".into());
        let e = decide_zone(&r);
        assert!(matches!(e.decision, ZoneDecision::Rejected { because: ZoneRejection::NotAllowedByType { .. }, .. }));
        assert!(e.refresh_az());
        r.type_zones = Some(" ".into());
        assert_eq!(decide_zone(&r).error(), Some(ErrorClass::InvalidTypeAvailabilityZones));
        // Checked before the fallback.
        r.allow_availability_zone_fallback = true;
        assert_eq!(decide_zone(&r).error(), Some(ErrorClass::InvalidTypeAvailabilityZones));
    }

    #[test]
    fn api22_group_and_sources() {
        let mut r = zreq(&["az1", "nova"], Some("az1"));
        r.group = Some(GroupZone { group_id: "g".into(), zone: None });
        // The group's missing zone replaces the request: then the default.
        assert_eq!(decide_zone(&r).decision, ZoneDecision::Pinned { zone: "nova".into() });
        r.group = Some(GroupZone { group_id: "g".into(), zone: Some("az9".into()) });
        assert_eq!(decide_zone(&r).error(), Some(ErrorClass::InvalidAvailabilityZone));
        let mut r = zreq(&["az1", "nova"], None);
        r.source_volume = Some(SourceZone { id: "v".into(), zone: "az1".into() });
        assert_eq!(decide_zone(&r).decision, ZoneDecision::Pinned { zone: "az1".into() });
        r.requested = Some("nova".into());
        assert!(matches!(
            decide_zone(&r).decision,
            ZoneDecision::Rejected { because: ZoneRejection::DiffersFromSourceVolume { .. }, .. }
        ));
        assert_eq!(decide_zone(&r).error(), Some(ErrorClass::InvalidInput));
        r.cloned_volume_same_az = false;
        assert_eq!(decide_zone(&r).decision, ZoneDecision::Pinned { zone: "nova".into() });
        // A source in an unknown zone, with fallback: storage zone, then the
        // same-zone rule fails.
        let mut r = zreq(&["az1", "nova"], None);
        r.snapshot = Some(SourceZone { id: "s".into(), zone: "az9".into() });
        r.allow_availability_zone_fallback = true;
        let e = decide_zone(&r);
        assert!(e.fallback.is_some());
        assert!(matches!(
            e.decision,
            ZoneDecision::Rejected { because: ZoneRejection::DiffersFromSnapshot { .. }, .. }
        ));
    }

    #[test]
    fn api22_seed_003_a_nova_zone_cinder_does_not_know() {
        let mut w = World::new();
        w.services = vec![service("controller1@ceph", "nova")];
        let mut r = req(1);
        r.availability_zone = Some("ag1".into());
        let res = w.create(&r);
        assert_eq!(err(&res), Some("InvalidAvailabilityZone"));
        let words = res.zone.as_ref().unwrap().to_string();
        assert!(words.contains("\"ag1\" is not one Cinder knows"), "{words}");
        assert!(words.contains("Nova availability zone"), "{words}");
        assert!(words.contains("allow_availability_zone_fallback is false"), "{words}");
        w.config.allow_availability_zone_fallback = true;
        let res = w.create(&r);
        assert_eq!(res.volume().unwrap().availability_zone.as_deref(), Some("nova"));
        assert!(ok(&res).refresh_az);
        assert!(res.zone.as_ref().unwrap().to_string().contains("does not validate the fallback zone"));
    }

    // -- API-23 to API-25 ---------------------------------------------------

    #[test]
    fn api23_keys_cloned_or_made() {
        let mut w = World::new();
        let mut t = vtype("luks");
        t.encryption = Some(luks());
        w.types.push(t);
        let mut r = req(1);
        r.volume_type = Some("luks".into());
        assert_eq!(
            ok(&w.create(&r)).encryption_key,
            Some(KeySource::New { algorithm: "aes".into(), length: Some(256) })
        );
        let mut src = volume("33333333-3333-4333-8333-333333333333", 1, "nova");
        src.volume_type = "luks".into();
        src.encryption_key_id = Some("key-1".into());
        w.volumes.push(src);
        let mut r = req(1);
        r.source_volid = Some("33333333-3333-4333-8333-333333333333".into());
        assert_eq!(ok(&w.create(&r)).encryption_key, Some(KeySource::SourceVolume { key_id: "key-1".into() }));
        let id = "aaaaaaaa-0000-4000-8000-000000000001";
        let mut img = image(id, GIB);
        img.properties.insert("cinder_encryption_key_id".into(), Value::String("key-img".into()));
        w.images.push(img);
        let mut r = req(1);
        r.image_id = Some(id.into());
        // Unencrypted type: no key whatever the image says.
        assert_eq!(ok(&w.create(&r)).encryption_key, None);
        r.volume_type = Some("luks".into());
        assert_eq!(ok(&w.create(&r)).encryption_key, Some(KeySource::Image { key_id: "key-img".into() }));
        // No cipher and nothing to clone: InvalidVolumeType.
        w.types.iter_mut().find(|t| t.name == "luks").unwrap().encryption.as_mut().unwrap().cipher = None;
        let mut r = req(1);
        r.volume_type = Some("luks".into());
        assert_eq!(err(&w.create(&r)), Some("InvalidVolumeType"));
    }

    #[test]
    fn api24_multiattach_exactly_is_true_and_not_encrypted() {
        let mut w = World::new();
        let mut r = req(1);
        r.volume_type = Some("m".into());
        for (spec, expect) in
            [("<is> True", true), ("<is>  True", false), ("<is> true", false), ("True", false), ("<is> True ", false)]
        {
            let mut t = vtype("m");
            t.extra_specs.insert("multiattach".into(), spec.into());
            w.types.retain(|t| t.name != "m");
            w.types.push(t);
            assert_eq!(ok(&w.create(&r)).multiattach, expect, "{spec:?}");
        }
        let m = w.types.iter_mut().find(|t| t.name == "m").unwrap();
        m.extra_specs.insert("multiattach".into(), "<is> True".into());
        m.encryption = Some(luks());
        let res = w.create(&r);
        assert_eq!(err(&res), Some("InvalidVolume"));
        assert_eq!(failure(&res).rule, ApiRule(24));
    }

    #[test]
    fn api25_replication_status_needs_qos_specs() {
        let mut w = World::new();
        let mut t = vtype("r");
        t.extra_specs.insert("replication_enabled".into(), "<is> True".into());
        w.types.push(t);
        let mut r = req(1);
        r.volume_type = Some("r".into());
        assert_eq!(ok(&w.create(&r)).replication_status, ReplicationStatus::Disabled);
        w.types.iter_mut().find(|t| t.name == "r").unwrap().qos_specs =
            BTreeMap::from([("total_iops_sec".to_owned(), "100".to_owned())]);
        let x = w.create(&r);
        assert_eq!(ok(&x).replication_status, ReplicationStatus::Enabled);
        assert!(ok(&x).qos_specs.is_some());
    }

    // -- API-27 / API-28 ----------------------------------------------------

    #[test]
    fn api27_quota() {
        let mut w = World::new();
        let res = w.create(&req(1_000_000));
        assert_eq!(err(&res), Some("VolumeSizeExceedsAvailableQuota"));
        // The extraction succeeded and is reported.
        assert_eq!(res.extracted().unwrap().size, PyInt::from(1_000_000));
        assert!(res.volume().is_none());
        // Snapshots count against the gigabytes.
        w.usage = ProjectUsage { volumes: 1, volume_gigabytes: 500, snapshots: 1, snapshot_gigabytes: 400 };
        assert!(w.create(&req(100)).error().is_none());
        assert_eq!(err(&w.create(&req(101))), Some("VolumeSizeExceedsAvailableQuota"));
        // The volume count is checked first.
        w.usage.volumes = 10;
        assert_eq!(err(&w.create(&req(101))), Some("VolumeLimitExceeded"));
        // Usage columns are 32-bit.
        w.usage = ProjectUsage::default();
        assert_eq!(err(&w.create(&req(2_147_483_648_i64))), Some("QuotaUsageOverflow"));
        // No quota for the extraction alone.
        assert!(w.extract(&req(1_000_000)).error().is_none());
    }

    #[test]
    fn api28_row_zone_only_when_one() {
        let mut w = World::new();
        let mut t = vtype("azt");
        t.extra_specs.insert(TYPE_ZONES_KEY.into(), "az1,nova".into());
        w.types.push(t);
        let mut r = req(1);
        r.volume_type = Some("azt".into());
        let res = w.create(&r);
        let v = res.volume().unwrap();
        assert_eq!(v.availability_zone, None);
        assert_eq!(v.status, VolumeStatus::Creating);
        assert_eq!(ok(&res).availability_zones, ["az1", "nova"]);
        r.availability_zone = Some("az1".into());
        assert_eq!(w.create(&r).volume().unwrap().availability_zone.as_deref(), Some("az1"));
        // The extraction alone makes no row.
        assert!(w.extract(&r).volume().is_none());
    }

    #[test]
    fn needs_are_asked_in_few_rounds_and_answers_are_deterministic() {
        let mut w = World::new();
        w.volumes.push(volume("33333333-3333-4333-8333-333333333333", 3, "az1"));
        w.snapshots.push(snapshot("55555555-5555-4555-8555-555555555555", "33333333-3333-4333-8333-333333333333", 3));
        let mut r = req(3);
        r.snapshot_id = Some("55555555-5555-4555-8555-555555555555".into());
        let mut facts = Facts::new();
        let mut rounds = 0;
        let result = loop {
            match plan_api(&r, ApiKind::Create, &facts, &w.config).unwrap() {
                ApiPlanning::Done(res) => break res,
                ApiPlanning::NeedFacts(needs) => {
                    rounds += 1;
                    for n in &needs {
                        facts.learn(w.answer(n));
                    }
                }
            }
        };
        assert!(rounds <= 6, "{rounds} rounds");
        assert_eq!(result.volume().unwrap().availability_zone.as_deref(), Some("az1"));
        let again = plan_api(&r, ApiKind::Create, &facts, &w.config).unwrap();
        assert_eq!(again, ApiPlanning::Done(result));
    }

    #[test]
    fn serde_round_trips() {
        let mut r = req("2.5");
        r.metadata = Some(vec![("k".into(), "v".into())]);
        let text = serde_json::to_string(&r).unwrap();
        let back: ApiRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        let big = parse_py_int(&"9".repeat(40)).unwrap();
        let text = serde_json::to_string(&big).unwrap();
        assert_eq!(serde_json::from_str::<PyInt>(&text).unwrap(), big);
    }
}
