//! What the API planner decides: the extraction, the new volume row, or
//! the exception upstream raises, with a typed trace of every decision.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::zones::ZoneExplanation;
use crate::error::ErrorClass;
use crate::model::{ImageId, SnapshotId, VolumeId, VolumeStatus};
use crate::pyvalue::PyInt;

/// An `API-n` rule (docs/RULES.md).
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
        let f = &mut crate::escape::Escaper::new(f);
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
    /// Accepted: what was extracted and, for [`super::ApiKind::Create`], the row
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

/// Where the size of the new volume came from (API-18).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SizeSource {
    /// The request gave it.
    Requested,
    /// The request's size was falsy: the source volume's.
    SourceVolume,
    /// The request's size was falsy: the snapshot's `volume_size`.
    Snapshot,
    /// The request's size was falsy: the backup's.
    Backup,
}

impl fmt::Display for SizeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Requested => "as requested",
            Self::SourceVolume => "the source volume's size",
            Self::Snapshot => "the snapshot's size",
            Self::Backup => "the backup's size",
        })
    }
}

/// Where the volume type came from (API-21, `_get_volume_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TypeSource {
    /// The request named it.
    Requested,
    /// The source volume's type.
    SourceVolume,
    /// The type of the snapshot's volume.
    Snapshot,
    /// The image's `cinder_img_volume_type` property.
    ImageProperty,
    /// The project's default type (`default-type-set`).
    ProjectDefault,
    /// `default_volume_type` of cinder.conf.
    ConfiguredDefault,
}

impl fmt::Display for TypeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Requested => "requested",
            Self::SourceVolume => "the source volume's type",
            Self::Snapshot => "the type of the snapshot's volume",
            Self::ImageProperty => "the image's cinder_img_volume_type",
            Self::ProjectDefault => "the project's default type",
            Self::ConfiguredDefault => "default_volume_type",
        })
    }
}

/// What an API decision found or decided (see [`ApiDecision`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ApiVerdict {
    /// The snapshot the request names exists and is the project's (API-2).
    SnapshotFound {
        /// The snapshot.
        snapshot_id: SnapshotId,
    },
    /// The source volume the request names exists and is the project's
    /// (API-2).
    SourceVolumeFound {
        /// The volume.
        volume_id: VolumeId,
    },
    /// The image passed `check_image_metadata` (API-20).
    ImageAccepted {
        /// The image.
        image_id: ImageId,
    },
    /// The size the volume gets (API-18).
    Size {
        /// GiB.
        size: PyInt,
        /// Where it came from.
        from: SizeSource,
    },
    /// The volume type (API-21).
    VolumeType {
        /// The type.
        volume_type: TypeRef,
        /// Where it came from.
        from: TypeSource,
    },
    /// The zones the volume may go to (API-22); the whole decision is
    /// [`ApiResult::zone`].
    Zones {
        /// The zones, sorted.
        zones: Vec<String>,
        /// Whether `allow_availability_zone_fallback` replaced the zone.
        fell_back: bool,
    },
    /// The type is encrypted: where the key comes from (API-23).
    Encrypted {
        /// The key.
        key: KeySource,
    },
    /// The type asks for multiattach (API-24).
    Multiattach,
    /// The project's quota holds the volume (API-27).
    QuotaFits {
        /// Volumes the project has.
        volumes_in_use: u64,
        /// GiB of volumes and snapshots the project has.
        gigabytes_in_use: u64,
    },
    /// The volume row is inserted (API-28).
    RowCreated {
        /// Its zone (`None`: the scheduler chooses).
        availability_zone: Option<String>,
    },
    /// Upstream raises.
    Refused {
        /// The exception.
        error: ErrorClass,
        /// Its message.
        message: String,
    },
}

/// One entry of an API decision's trace: where in the API, by which rule,
/// what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiDecision {
    /// Where.
    pub stage: ApiStage,
    /// The rule.
    pub rule: ApiRule,
    /// What.
    pub verdict: ApiVerdict,
}

impl fmt::Display for ApiVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let f = &mut crate::escape::Escaper::new(f);
        match self {
            Self::SnapshotFound { snapshot_id } => write!(f, "snapshot {snapshot_id} found"),
            Self::SourceVolumeFound { volume_id } => write!(f, "source volume {volume_id} found"),
            Self::ImageAccepted { image_id } => write!(f, "image {image_id} is active and fits"),
            Self::Size { size, from } => write!(f, "size {size} GiB ({from})"),
            Self::VolumeType { volume_type, from } => {
                write!(f, "volume type {} ({}) from {from}", volume_type.name, volume_type.id)
            }
            Self::Zones { zones, fell_back } => {
                write!(f, "zones {zones:?}")?;
                if *fell_back {
                    f.write_str(" (after falling back)")?;
                }
                Ok(())
            }
            Self::Encrypted { key } => match key {
                KeySource::Snapshot { key_id } => write!(f, "encrypted: the snapshot's key {key_id} is cloned"),
                KeySource::SourceVolume { key_id } => {
                    write!(f, "encrypted: the source volume's key {key_id} is cloned")
                }
                KeySource::Image { key_id } => write!(f, "encrypted: the image's key {key_id} is cloned"),
                KeySource::New { algorithm, length } => match length {
                    Some(bits) => write!(f, "encrypted: a new {algorithm} key of {bits} bits"),
                    None => write!(f, "encrypted: a new {algorithm} key"),
                },
            },
            Self::Multiattach => f.write_str("multiattach"),
            Self::QuotaFits { volumes_in_use, gigabytes_in_use } => {
                write!(f, "within quota ({volumes_in_use} volumes and {gigabytes_in_use} GiB in use before it)")
            }
            Self::RowCreated { availability_zone } => write!(
                f,
                "volume row created: status creating, zone {}",
                availability_zone.as_deref().unwrap_or("(none: the scheduler chooses)")
            ),
            Self::Refused { error, message } => write!(f, "{error}: {message}"),
        }
    }
}

impl fmt::Display for ApiDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let f = &mut crate::escape::Escaper::new(f);
        write!(f, "[{} {}] {}", self.stage, self.rule, self.verdict)
    }
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
    /// Every decision, in the order made (the last is the exception, when
    /// the request is refused).
    #[serde(default)]
    pub trace: Vec<ApiDecision>,
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

    /// The new volume row ([`super::ApiKind::Create`], accepted).
    pub fn volume(&self) -> Option<&NewVolume> {
        match &self.outcome {
            ApiOutcome::Accepted { volume, .. } => volume.as_ref(),
            ApiOutcome::Failed { .. } => None,
        }
    }
}

/// The decision in words: the zone decision, then every trace entry, one
/// per line.
impl fmt::Display for ApiResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(z) = &self.zone {
            writeln!(f, "{z}")?;
        }
        for d in &self.trace {
            writeln!(f, "{d}")?;
        }
        match &self.outcome {
            ApiOutcome::Accepted { .. } => f.write_str("accepted"),
            ApiOutcome::Failed { failure, .. } => write!(f, "rejected by {failure}"),
        }
    }
}
