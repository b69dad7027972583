//! The backend error shared by every port (`Driver`, `ImageService`,
//! `VolumeDb`): semantic kinds, so the engine can tell "fall back" from
//! "fail" without knowing which backend answered.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What went wrong in a backend call, in librbd's vocabulary where it has
/// one (the kinds of docs/FORMAT.md §9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// The object does not exist (`ENOENT`, `rbd.ImageNotFound`).
    NotFound,
    /// The object already exists (`EEXIST`, `rbd.ImageExists`).
    AlreadyExists,
    /// In use: watchers, protected snapshot, children (`EBUSY`, `rbd.ImageBusy`).
    Busy,
    /// The image still has snapshots (`ENOTEMPTY`, `rbd.ImageHasSnapshots`).
    HasSnapshots,
    /// Invalid argument (`EINVAL`, `rbd.InvalidArgument`): e.g. cloning an
    /// unprotected snapshot on a clone-v1 cluster, flattening a non-clone.
    InvalidArgument,
    /// Not allowed (`EPERM`/`EACCES`, `rbd.PermissionError`).
    PermissionDenied,
    /// The RADOS pool does not exist (`rados.ObjectNotFound` on
    /// `open_ioctx`).
    PoolNotFound,
    /// The cluster or service cannot be reached (`rados.TimedOut`, HTTP 5xx).
    Unavailable,
    /// The backend does not implement the call (HTTP 501, `NotImplementedError`).
    NotSupported,
    /// The call was refused because its input is unacceptable to the service
    /// (HTTP 4xx other than 404/409).
    Rejected,
    /// Anything else.
    Other,
}

impl BackendErrorKind {
    /// The class name upstream raises for this kind from librbd/librados,
    /// as the conformance format records it.
    pub fn upstream_class(self) -> &'static str {
        match self {
            Self::NotFound => "ImageNotFound",
            Self::AlreadyExists => "ImageExists",
            Self::Busy => "ImageBusy",
            Self::HasSnapshots => "ImageHasSnapshots",
            Self::InvalidArgument => "InvalidArgument",
            Self::PermissionDenied => "PermissionError",
            Self::PoolNotFound => "ObjectNotFound",
            Self::Unavailable => "TimedOut",
            Self::NotSupported => "NotImplementedError",
            Self::Rejected => "Invalid",
            Self::Other => "Error",
        }
    }

    /// Parses [`BackendErrorKind::upstream_class`] back.
    pub fn from_upstream_class(name: &str) -> Option<Self> {
        Some(match name {
            "ImageNotFound" => Self::NotFound,
            "ImageExists" => Self::AlreadyExists,
            "ImageBusy" => Self::Busy,
            "ImageHasSnapshots" => Self::HasSnapshots,
            "InvalidArgument" => Self::InvalidArgument,
            "PermissionError" => Self::PermissionDenied,
            "ObjectNotFound" => Self::PoolNotFound,
            "TimedOut" => Self::Unavailable,
            "NotImplementedError" => Self::NotSupported,
            "Invalid" => Self::Rejected,
            "Error" => Self::Other,
            _ => return None,
        })
    }
}

impl fmt::Display for BackendErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotFound => "not found",
            Self::AlreadyExists => "already exists",
            Self::Busy => "busy",
            Self::HasSnapshots => "has snapshots",
            Self::InvalidArgument => "invalid argument",
            Self::PermissionDenied => "permission denied",
            Self::PoolNotFound => "pool not found",
            Self::Unavailable => "unavailable",
            Self::NotSupported => "not supported",
            Self::Rejected => "rejected",
            Self::Other => "error",
        })
    }
}

/// An error from a backend call: its kind, the call, and the backend's own
/// error when there is one.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {kind}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct BackendError {
    /// What went wrong.
    pub kind: BackendErrorKind,
    /// The call that failed, e.g. `clone images/abc@snap -> volumes/volume-1`.
    pub operation: String,
    /// Extra words from the backend.
    pub detail: Option<String>,
    /// The backend's own error.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl BackendError {
    /// An error of `kind` for `operation`.
    pub fn new(kind: BackendErrorKind, operation: impl Into<String>) -> Self {
        Self { kind, operation: operation.into(), detail: None, source: None }
    }

    /// Adds backend words.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds the backend's own error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}

impl Clone for BackendError {
    /// Clones kind, operation and detail; the source is kept as its text.
    fn clone(&self) -> Self {
        Self {
            kind: self.kind,
            operation: self.operation.clone(),
            detail: match (&self.detail, &self.source) {
                (Some(d), _) => Some(d.clone()),
                (None, Some(s)) => Some(s.to_string()),
                (None, None) => None,
            },
            source: None,
        }
    }
}

impl PartialEq for BackendError {
    /// Equal when kind and operation are; words and sources are ignored so
    /// tests can compare errors from different backends.
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.operation == other.operation
    }
}

impl Eq for BackendError {}

/// The upstream exception class a flow ends with.
///
/// Names are the class names upstream raises, as the conformance format
/// records them: Cinder's own (`cinder.exception.*`), librbd's and librados's,
/// and a few Python built-ins that upstream lets escape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorClass {
    /// A librbd / librados error that escaped (`rbd.ImageNotFound`, ...).
    Rbd(BackendErrorKind),
    /// `cinder.exception.VolumeBackendAPIException`
    VolumeBackendApiException,
    /// `cinder.exception.ImageUnacceptable`
    ImageUnacceptable,
    /// `cinder.exception.ImageTooBig`
    ImageTooBig,
    /// `cinder.exception.ImageNotFound` (Glance image)
    ImageNotFound,
    /// `cinder.exception.ImageCopyFailure`
    ImageCopyFailure,
    /// `cinder.exception.ImageConversionNotAllowed`
    ImageConversionNotAllowed,
    /// `cinder.exception.InvalidInput`
    InvalidInput,
    /// `cinder.exception.InvalidVolume`
    InvalidVolume,
    /// `cinder.exception.VolumeNotFound`
    VolumeNotFound,
    /// `cinder.exception.SnapshotNotFound`
    SnapshotNotFound,
    /// `cinder.exception.VolumeIsBusy`
    VolumeIsBusy,
    /// `cinder.exception.SnapshotIsBusy`
    SnapshotIsBusy,
    /// `cinder.exception.ReplicationError`
    ReplicationError,
    /// `cinder.exception.RBDDriverException`
    RbdDriverException,
    /// `cinder.exception.InvalidSignatureImage`
    InvalidSignatureImage,
    /// `cinder.exception.ImageSignatureVerificationException`
    ImageSignatureVerificationException,
    /// `cinder.exception.SnapshotLimitReached`
    SnapshotLimitReached,
    /// `cinder.exception.MetadataCopyFailure`
    MetadataCopyFailure,
    /// `cinder.exception.InvalidAvailabilityZone`
    InvalidAvailabilityZone,
    /// `cinder.exception.InvalidTypeAvailabilityZones`
    InvalidTypeAvailabilityZones,
    /// `cinder.exception.InvalidSnapshot`
    InvalidSnapshot,
    /// `cinder.exception.InvalidBackup`
    InvalidBackup,
    /// `cinder.exception.InvalidGroup`
    InvalidGroup,
    /// `cinder.exception.VolumeTypeNotFound`
    VolumeTypeNotFound,
    /// `cinder.exception.VolumeTypeNotFoundByName`
    VolumeTypeNotFoundByName,
    /// `cinder.exception.VolumeSizeExceedsLimit`
    VolumeSizeExceedsLimit,
    /// `cinder.exception.VolumeSizeExceedsAvailableQuota`
    VolumeSizeExceedsAvailableQuota,
    /// `cinder.exception.BackupNotFound`
    BackupNotFound,
    /// `cinder.exception.GroupNotFound`
    GroupNotFound,
    /// `cinder.exception.DriverNotInitialized`
    DriverNotInitialized,
    /// `cinder.exception.GlanceMetadataNotFound`
    GlanceMetadataNotFound,
    /// `oslo_concurrency.processutils.ProcessExecutionError` (a CLI call such
    /// as `rbd import` failed).
    ProcessExecutionError,
    /// Python `ValueError` (e.g. from `urlsplit` on a bad IPv6 netloc).
    ValueError,
    /// Python `TypeError`.
    TypeError,
    /// Python `KeyError`.
    KeyError,
    /// `cinder.exception.VolumeTypeDefaultMisconfiguredError` (the
    /// configured `default_volume_type` does not exist).
    VolumeTypeDefaultMisconfiguredError,
    /// `cinder.exception.InvalidVolumeType`
    InvalidVolumeType,
    /// `cinder.exception.InvalidVolumeMetadata`
    InvalidVolumeMetadata,
    /// `cinder.exception.InvalidVolumeMetadataSize`
    InvalidVolumeMetadataSize,
    /// `cinder.exception.VolumeLimitExceeded` (the `volumes` quota).
    VolumeLimitExceeded,
    /// `cinder.exception.QuotaUsageOverflow` (quota usage would exceed the
    /// 32-bit columns of `quota_usages`).
    QuotaUsageOverflow,
    /// `cinder.exception.ImageNotAuthorized` (Glance answered 401/403).
    ImageNotAuthorized,
    /// `cinder.exception.Invalid` (e.g. Glance answered 400).
    Invalid,
    /// Python `OverflowError` (e.g. `int(float('inf'))`).
    OverflowError,
}

impl ErrorClass {
    /// The class name as upstream spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rbd(k) => k.upstream_class(),
            Self::VolumeBackendApiException => "VolumeBackendAPIException",
            Self::ImageUnacceptable => "ImageUnacceptable",
            Self::ImageTooBig => "ImageTooBig",
            Self::ImageNotFound => "ImageNotFound",
            Self::ImageCopyFailure => "ImageCopyFailure",
            Self::ImageConversionNotAllowed => "ImageConversionNotAllowed",
            Self::InvalidInput => "InvalidInput",
            Self::InvalidVolume => "InvalidVolume",
            Self::VolumeNotFound => "VolumeNotFound",
            Self::SnapshotNotFound => "SnapshotNotFound",
            Self::VolumeIsBusy => "VolumeIsBusy",
            Self::SnapshotIsBusy => "SnapshotIsBusy",
            Self::ReplicationError => "ReplicationError",
            Self::RbdDriverException => "RBDDriverException",
            Self::InvalidSignatureImage => "InvalidSignatureImage",
            Self::ImageSignatureVerificationException => "ImageSignatureVerificationException",
            Self::SnapshotLimitReached => "SnapshotLimitReached",
            Self::MetadataCopyFailure => "MetadataCopyFailure",
            Self::InvalidAvailabilityZone => "InvalidAvailabilityZone",
            Self::InvalidTypeAvailabilityZones => "InvalidTypeAvailabilityZones",
            Self::InvalidSnapshot => "InvalidSnapshot",
            Self::InvalidBackup => "InvalidBackup",
            Self::InvalidGroup => "InvalidGroup",
            Self::VolumeTypeNotFound => "VolumeTypeNotFound",
            Self::VolumeTypeNotFoundByName => "VolumeTypeNotFoundByName",
            Self::VolumeSizeExceedsLimit => "VolumeSizeExceedsLimit",
            Self::VolumeSizeExceedsAvailableQuota => "VolumeSizeExceedsAvailableQuota",
            Self::BackupNotFound => "BackupNotFound",
            Self::GroupNotFound => "GroupNotFound",
            Self::DriverNotInitialized => "DriverNotInitialized",
            Self::GlanceMetadataNotFound => "GlanceMetadataNotFound",
            Self::ProcessExecutionError => "ProcessExecutionError",
            Self::ValueError => "ValueError",
            Self::TypeError => "TypeError",
            Self::KeyError => "KeyError",
            Self::VolumeTypeDefaultMisconfiguredError => "VolumeTypeDefaultMisconfiguredError",
            Self::InvalidVolumeType => "InvalidVolumeType",
            Self::InvalidVolumeMetadata => "InvalidVolumeMetadata",
            Self::InvalidVolumeMetadataSize => "InvalidVolumeMetadataSize",
            Self::VolumeLimitExceeded => "VolumeLimitExceeded",
            Self::QuotaUsageOverflow => "QuotaUsageOverflow",
            Self::ImageNotAuthorized => "ImageNotAuthorized",
            Self::Invalid => "Invalid",
            Self::OverflowError => "OverflowError",
        }
    }

    /// Whether upstream's `except exception.CinderException` catches it.
    pub fn is_cinder_exception(self) -> bool {
        !matches!(
            self,
            Self::Rbd(_)
                | Self::ProcessExecutionError
                | Self::ValueError
                | Self::TypeError
                | Self::KeyError
                | Self::OverflowError
        )
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_names_round_trip() {
        use BackendErrorKind::*;
        for k in [
            NotFound,
            AlreadyExists,
            Busy,
            HasSnapshots,
            InvalidArgument,
            PermissionDenied,
            PoolNotFound,
            Unavailable,
            NotSupported,
            Rejected,
            Other,
        ] {
            assert_eq!(BackendErrorKind::from_upstream_class(k.upstream_class()), Some(k));
        }
        assert_eq!(BackendErrorKind::from_upstream_class("Nope"), None);
    }

    #[test]
    fn display_names_call_and_kind() {
        let e = BackendError::new(BackendErrorKind::Busy, "remove volumes/volume-1").with_detail("1 watcher");
        assert_eq!(e.to_string(), "remove volumes/volume-1: busy: 1 watcher");
    }
}
