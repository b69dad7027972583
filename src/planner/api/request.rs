//! What an API request is: the parameters `API.create` receives, as the
//! REST layer hands them over (sizes keep their JSON type: Python's `int()`
//! and truthiness decide what they mean).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::model::{ImageId, ProjectId, SnapshotId, UserId, VolumeId};
use crate::pyvalue::{parse_py_float, parse_py_int, PyError, PyInt};

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
/// controller (docs/FORMAT.md §6).
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
    pub(crate) fn requested_type(&self) -> Option<&str> {
        self.volume_type.as_deref().filter(|t| !t.is_empty())
    }

    pub(crate) fn snapshot_ref(&self) -> Option<&SnapshotId> {
        self.snapshot_id.as_ref().filter(|s| !s.as_str().is_empty())
    }

    pub(crate) fn source_ref(&self) -> Option<&VolumeId> {
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
            Self::Int(i) => !i.is_zero(),
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
