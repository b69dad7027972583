//! Database rows: volumes, snapshots, volume types, services, cache entries.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{GiB, Host, ImageId, Name, ProjectId, SnapshotId, Timestamp, UserId, VolumeId};

/// A volume's `status` column. Cinder has many statuses; the ones the create
/// and delete flows set or check are named, anything else is kept verbatim.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum VolumeStatus {
    /// `creating`
    Creating,
    /// `available`
    Available,
    /// `in-use`
    InUse,
    /// `downloading` (set while image data is copied in)
    Downloading,
    /// `error`
    Error,
    /// `deleting`
    Deleting,
    /// `error_deleting`
    ErrorDeleting,
    /// Any other status string.
    Other(String),
}

impl VolumeStatus {
    /// The status string Cinder stores.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Creating => "creating",
            Self::Available => "available",
            Self::InUse => "in-use",
            Self::Downloading => "downloading",
            Self::Error => "error",
            Self::Deleting => "deleting",
            Self::ErrorDeleting => "error_deleting",
            Self::Other(s) => s,
        }
    }
}

impl From<String> for VolumeStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "creating" => Self::Creating,
            "available" => Self::Available,
            "in-use" => Self::InUse,
            "downloading" => Self::Downloading,
            "error" => Self::Error,
            "deleting" => Self::Deleting,
            "error_deleting" => Self::ErrorDeleting,
            _ => Self::Other(s),
        }
    }
}

impl From<&str> for VolumeStatus {
    fn from(s: &str) -> Self {
        Self::from(s.to_owned())
    }
}

impl From<VolumeStatus> for String {
    fn from(s: VolumeStatus) -> Self {
        match s {
            VolumeStatus::Other(s) => s,
            other => other.as_str().to_owned(),
        }
    }
}

impl fmt::Display for VolumeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for VolumeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// A row of Cinder's `volumes` table, with the columns the flows read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// `id`
    pub id: VolumeId,
    /// `host`: `host@backend#pool` once scheduled (legacy rows may lack the
    /// pool), `None` before scheduling.
    pub host: Option<Host>,
    /// `cluster_name` for Active-Active backends (`cluster@backend#pool`).
    pub cluster_name: Option<String>,
    /// Owning project.
    pub project_id: ProjectId,
    /// Creating user.
    pub user_id: UserId,
    /// Size in GiB.
    pub size: GiB,
    /// `status`
    pub status: VolumeStatus,
    /// Volume type name (the vectors and the API address types by name).
    pub volume_type: String,
    /// Non-`None` means the volume is encrypted.
    pub encryption_key_id: Option<String>,
    /// `availability_zone`
    pub availability_zone: String,
    /// `bootable`
    pub bootable: bool,
    /// `use_quota`: `false` marks a temporary volume (never flattened).
    pub use_quota: bool,
    /// User metadata (`volume_metadata`), e.g. `image_owner`.
    pub metadata: BTreeMap<String, String>,
    /// Admin metadata (`volume_admin_metadata`), e.g. `readonly`.
    pub admin_metadata: BTreeMap<String, String>,
    /// `created_at`: image-volume candidates are ordered by it.
    pub created_at: Timestamp,
    /// `_name_id`: when set, the backend object is named after it.
    pub name_id: Option<VolumeId>,
    /// `snapshot_id` the volume was created from.
    pub snapshot_id: Option<SnapshotId>,
    /// `source_volid` the volume was cloned from.
    pub source_volid: Option<VolumeId>,
}

impl Volume {
    /// A fresh row with Cinder's column defaults, for tests and examples.
    pub fn new(id: impl Into<VolumeId>, project_id: impl Into<ProjectId>, size: GiB) -> Self {
        Self {
            id: id.into(),
            host: None,
            cluster_name: None,
            project_id: project_id.into(),
            user_id: UserId::from("user-1"),
            size,
            status: VolumeStatus::Available,
            volume_type: DEFAULT_VOLUME_TYPE.to_owned(),
            encryption_key_id: None,
            availability_zone: "nova".to_owned(),
            bootable: false,
            use_quota: true,
            metadata: BTreeMap::new(),
            admin_metadata: BTreeMap::new(),
            created_at: Timestamp::EPOCH,
            name_id: None,
            snapshot_id: None,
            source_volid: None,
        }
    }

    /// Builder-style setter for `host`.
    pub fn on_host(mut self, host: impl Into<Host>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// The id the backend object is named after (`name_id` or `id`).
    pub fn name_id(&self) -> &VolumeId {
        self.name_id.as_ref().unwrap_or(&self.id)
    }

    /// The RBD image name: `volume-<name_id or id>`.
    pub fn rbd_name(&self) -> Name {
        self.name_id().rbd_name()
    }

    /// `<rbd_name>.clone_snap`: the snapshot a clone of another volume into
    /// this one is made from (see [`VolumeId::clone_snap_name`]).
    pub fn clone_snap_name(&self) -> Name {
        self.name_id().clone_snap_name()
    }

    /// Whether the volume is encrypted (`encryption_key_id is not None`).
    pub fn is_encrypted(&self) -> bool {
        self.encryption_key_id.is_some()
    }

    /// `Volume.is_clustered`: a truthy `cluster_name`.
    pub fn is_clustered(&self) -> bool {
        self.cluster_name.as_deref().is_some_and(|c| !c.is_empty())
    }

    /// `Volume.service_topic_queue`: `cluster_name or host`.
    pub fn service_topic_queue(&self) -> Option<&str> {
        if self.is_clustered() {
            self.cluster_name.as_deref()
        } else {
            self.host.as_ref().map(Host::as_str)
        }
    }
}

/// The name of the volume type that always exists.
pub const DEFAULT_VOLUME_TYPE: &str = "__DEFAULT__";

/// A row of the `snapshots` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `id`
    pub id: SnapshotId,
    /// The volume the snapshot was taken of.
    pub volume_id: VolumeId,
    /// `volume_size`: the size of that volume when the snapshot was taken.
    pub volume_size: GiB,
    /// `status`
    pub status: String,
    /// Owning project.
    pub project_id: ProjectId,
    /// Encryption key of the snapshot, if the volume was encrypted.
    pub encryption_key_id: Option<String>,
}

impl Snapshot {
    /// The RBD snapshot name: `snapshot-<id>`.
    pub fn rbd_name(&self) -> Name {
        self.id.rbd_name()
    }
}

/// An encryption record of a volume type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// `provider`, e.g. `luks`.
    pub provider: String,
    /// `cipher`, e.g. `aes-xts-plain64`.
    pub cipher: Option<String>,
    /// `key_size` in bits.
    pub key_size: Option<u32>,
    /// `control_location`, e.g. `front-end`.
    pub control_location: String,
}

/// A volume type with its extra specs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeType {
    /// `id`
    pub id: String,
    /// `name`
    pub name: String,
    /// Extra specs, e.g. `RESKEY:availability_zones`, `multiattach`.
    pub extra_specs: BTreeMap<String, String>,
    /// The encryption record; `Some` makes the type encrypted.
    pub encryption: Option<Encryption>,
    /// QoS specs attached to the type (`qos_specs.specs`), if any.
    pub qos_specs: BTreeMap<String, String>,
}

impl VolumeType {
    /// A type without extra specs or encryption.
    pub fn plain(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            extra_specs: BTreeMap::new(),
            encryption: None,
            qos_specs: BTreeMap::new(),
        }
    }

    /// `volume_types.is_encrypted`.
    pub fn is_encrypted(&self) -> bool {
        self.encryption.is_some()
    }

    /// Whether an extra spec is exactly `<is> True` (how upstream reads
    /// `multiattach` and `replication_enabled`).
    pub fn spec_is_true(&self, key: &str) -> bool {
        self.extra_specs.get(key).map(String::as_str) == Some("<is> True")
    }
}

/// A row of the `services` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// `host`, e.g. `hostA@ceph`.
    pub host: String,
    /// `binary`, e.g. `cinder-volume`.
    pub binary: String,
    /// `topic`, e.g. `cinder-volume`.
    pub topic: String,
    /// `availability_zone`
    pub availability_zone: String,
    /// `disabled`
    pub disabled: bool,
}

/// A row of `image_volume_cache_entries`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The cached image.
    pub image_id: ImageId,
    /// Host of the cached volume (exact-matched on lookup).
    pub host: Option<Host>,
    /// Cluster of the cached volume (exact-matched for clustered volumes).
    pub cluster_name: Option<String>,
    /// The image volume holding the data (in the internal tenant).
    pub volume_id: VolumeId,
    /// Size of that image volume.
    pub size: GiB,
    /// The image's `updated_at` when the entry was made (staleness check).
    pub image_updated_at: Timestamp,
    /// Last use; lookups take the most recently used, eviction the least.
    pub last_used: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_known_and_unknown() {
        for s in ["creating", "available", "in-use", "error", "maintenance"] {
            let st = VolumeStatus::from(s);
            assert_eq!(st.as_str(), s);
            assert_eq!(String::from(st), s);
        }
        assert_eq!(VolumeStatus::from("in-use"), VolumeStatus::InUse);
    }

    #[test]
    fn name_id_wins_for_backend_name() {
        let mut v = Volume::new("a", "p", GiB(1));
        assert_eq!(v.rbd_name(), "volume-a");
        v.name_id = Some(VolumeId::from("b"));
        assert_eq!(v.rbd_name(), "volume-b");
    }

    #[test]
    fn service_topic_queue_prefers_cluster() {
        let mut v = Volume::new("a", "p", GiB(1)).on_host("h@b#p");
        assert_eq!(v.service_topic_queue(), Some("h@b#p"));
        v.cluster_name = Some(String::new());
        assert_eq!(v.service_topic_queue(), Some("h@b#p"), "empty cluster is not clustered");
        v.cluster_name = Some("c@b#p".into());
        assert_eq!(v.service_topic_queue(), Some("c@b#p"));
    }
}
