//! Facts: everything the planner reads, and the protocol by which it asks
//! for more.
//!
//! The planner never performs I/O. It reads a [`Facts`] value; when a fact it
//! needs is missing it stops and returns [`Need`]s. The shell
//! ([`crate::shell::plan`]) fetches them through the ports, adds them with
//! [`Facts::learn`], and plans again. Planning is a pure function of the
//! facts, so the same facts always give the same plan, and facts can be
//! captured (they are serialisable) and replayed offline.
//!
//! The needs follow upstream's own reads, in upstream's order, so that the
//! shell performs no more I/O than Cinder would: e.g. image locations are
//! probed one by one until the first one that opens
//! ([`Need::ProbeSnapshots`]), as `RBDDriver.clone_image` stops at the first
//! cloneable location.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::BackendErrorKind;
use crate::model::{
    CacheEntry, Host, Image, ImageId, LocationEntry, ProjectId, Service, Snapshot, SnapshotId, Volume, VolumeId,
    VolumeType,
};
use crate::rbd::{Cluster, ClusterFact, ImageInfo, ImageSpec, Name, Semantics, SnapSpec};

/// Cluster-wide facts a driver reports (`rados.get_fsid()`, librados
/// configuration).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// The cluster fsid.
    pub fsid: String,
    /// Whether clones use clone v2 (no protected snapshot needed).
    pub clone_v2: bool,
    /// `rbd_default_features`, if set.
    pub default_features: Option<u64>,
    /// Whose librbd error rules the cluster follows (a real cluster:
    /// [`Semantics::Librbd`]).
    #[serde(default)]
    pub semantics: Semantics,
}

/// What the volume host reports about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Free bytes in `image_conversion_dir` (as `check_available_space`
    /// measures them).
    pub conversion_free_bytes: u64,
    /// The volume service's own host, `host@backend` (`VolumeManager.host`),
    /// which a clustered volume is moved to (`_set_resource_host`). `None`:
    /// not known; volumes keep the host they have.
    #[serde(default)]
    pub service_host: Option<Host>,
}

/// Capabilities the driver reports to the scheduler that the flow reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// `clone_across_pools`: image volumes and cache entries of any host may
    /// be cloned (the RBD driver does not report it).
    #[serde(default)]
    pub clone_across_pools: bool,
}

/// The exact location key of image-cache entries (`host` or `cluster_name`
/// equality, as `ImageVolumeCache._get_query_filters` builds it).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CacheLocation {
    /// `host` to equal, when not clustered.
    pub host: Option<String>,
    /// `cluster_name` to equal, when clustered.
    pub cluster_name: Option<String>,
}

impl CacheLocation {
    /// Whether an entry is at this location: exact `host` / `cluster_name`
    /// equality (`filter_by(**filters)` after dropping `None` values).
    pub fn matches(&self, e: &CacheEntry) -> bool {
        let host_ok = match &self.host {
            Some(h) => e.host.as_ref().map(|x| x.as_str()) == Some(h.as_str()),
            None => true,
        };
        let cluster_ok = match &self.cluster_name {
            Some(c) => e.cluster_name.as_deref() == Some(c.as_str()),
            None => true,
        };
        host_ok && cluster_ok
    }
}

/// What a project uses of its quota, as Cinder's quota sync functions
/// count it (`db/api.py` `_sync_volumes`, `_sync_gigabytes`): visible rows
/// of the project that count against quota (`use_quota`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectUsage {
    /// Number of volumes.
    pub volumes: u64,
    /// Sum of their sizes (GiB).
    pub volume_gigabytes: u64,
    /// Number of snapshots.
    pub snapshots: u64,
    /// Sum of the snapshots' `volume_size` (GiB).
    pub snapshot_gigabytes: u64,
}

/// A fact the planner needs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "need", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Need {
    /// A volume row by id (`objects.Volume.get_by_id`).
    Volume {
        /// The id.
        volume_id: VolumeId,
    },
    /// Volume rows by ids (one query; `volume_get_all(filters={'id': ids})`).
    Volumes {
        /// The ids, sorted and unique.
        volume_ids: Vec<VolumeId>,
    },
    /// A snapshot row.
    Snapshot {
        /// The id.
        snapshot_id: SnapshotId,
    },
    /// The snapshot rows of a volume.
    SnapshotsOfVolume {
        /// The volume.
        volume_id: VolumeId,
    },
    /// A volume type by name or id.
    VolumeType {
        /// Name or id.
        name: String,
    },
    /// All service rows.
    Services,
    /// All image-cache entries of an image (any host).
    CacheEntriesOfImage {
        /// The image.
        image_id: ImageId,
    },
    /// All image-cache entries at a location (any image).
    CacheEntriesAt {
        /// The location.
        location: CacheLocation,
    },
    /// The Glance image record.
    Image {
        /// The image.
        image_id: ImageId,
    },
    /// The image's locations from Glance's location API.
    ImageLocations {
        /// The image.
        image_id: ImageId,
    },
    /// Cluster facts (fsid, clone format, default features).
    Cluster,
    /// Whether a pool exists.
    Pool {
        /// The pool.
        pool: Name,
    },
    /// An RBD image (with its snapshots' children), or its absence.
    RbdImage {
        /// The image.
        image: ImageSpec,
    },
    /// RBD images behind snapshots, fetched in order and stopping after the
    /// first snapshot that can be opened read-only (the images of the rest
    /// are not needed).
    ProbeSnapshots {
        /// The snapshots, in the order upstream tries them.
        snaps: Vec<SnapSpec>,
    },
    /// Host facts (free conversion space).
    Host,
    /// Driver capabilities.
    Capabilities,
    /// Fresh volume ids (the planner never makes ids).
    FreshVolumeIds {
        /// How many in all.
        count: usize,
    },
    /// The project's default volume type, if one is set
    /// (`db.project_default_volume_type_get`; API-21.5).
    ProjectDefaultVolumeType {
        /// The project.
        project_id: ProjectId,
    },
    /// The project's quota usage (`QuotaReserveTask`; API-27).
    ProjectUsage {
        /// The project.
        project_id: ProjectId,
    },
}

impl fmt::Display for Need {
    /// The fact in words, as an operator reads it in an error or a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Volume { volume_id } => write!(f, "volume row {volume_id}"),
            Self::Volumes { volume_ids } => match volume_ids.as_slice() {
                [one] => write!(f, "volume row {one}"),
                [first, .., last] => write!(f, "{} volume rows ({first} to {last})", volume_ids.len()),
                [] => f.write_str("no volume rows"),
            },
            Self::Snapshot { snapshot_id } => write!(f, "snapshot row {snapshot_id}"),
            Self::SnapshotsOfVolume { volume_id } => write!(f, "snapshot rows of volume {volume_id}"),
            Self::VolumeType { name } => write!(f, "volume type {name:?}"),
            Self::Services => f.write_str("the service rows"),
            Self::CacheEntriesOfImage { image_id } => write!(f, "the image-cache entries of image {image_id}"),
            Self::CacheEntriesAt { location } => match (&location.host, &location.cluster_name) {
                (_, Some(cluster)) => write!(f, "the image-cache entries of cluster {cluster}"),
                (Some(host), None) => write!(f, "the image-cache entries on {host}"),
                (None, None) => f.write_str("every image-cache entry"),
            },
            Self::Image { image_id } => write!(f, "Glance image {image_id}"),
            Self::ImageLocations { image_id } => write!(f, "the locations of Glance image {image_id}"),
            Self::Cluster => f.write_str("the Ceph cluster's identity"),
            Self::Pool { pool } => write!(f, "whether pool {pool} exists"),
            Self::RbdImage { image } => write!(f, "RBD image {image}"),
            Self::ProbeSnapshots { snaps } => match snaps.as_slice() {
                [one] => write!(f, "RBD snapshot {one}"),
                _ => write!(f, "the first readable of {} RBD snapshots", snaps.len()),
            },
            Self::Host => f.write_str("the volume host's free conversion space"),
            Self::Capabilities => f.write_str("the driver's capabilities"),
            Self::FreshVolumeIds { count } => write!(f, "{count} fresh volume ids"),
            Self::ProjectDefaultVolumeType { project_id } => {
                write!(f, "the default volume type of project {project_id}")
            }
            Self::ProjectUsage { project_id } => write!(f, "the quota usage of project {project_id}"),
        }
    }
}

/// What a partial [`Cluster`] lacks, as the fact that supplies it.
impl From<ClusterFact> for Need {
    fn from(f: ClusterFact) -> Self {
        match f {
            ClusterFact::Pool { pool } => Need::Pool { pool },
            ClusterFact::Image { image } => Need::RbdImage { image },
        }
    }
}

/// What the shell learnt, one answer to one [`Need`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Fact {
    /// A volume row, or `None` when it does not exist (or is deleted).
    Volume {
        /// The id asked for.
        volume_id: VolumeId,
        /// The row (shared: see [`VolumeDb::volume`](crate::ports::VolumeDb::volume)).
        volume: Option<Arc<Volume>>,
    },
    /// A snapshot row, or `None`.
    Snapshot {
        /// The id asked for.
        snapshot_id: SnapshotId,
        /// The row.
        snapshot: Option<Snapshot>,
    },
    /// The snapshot rows of a volume.
    SnapshotsOfVolume {
        /// The volume.
        volume_id: VolumeId,
        /// The rows, any order.
        snapshots: Vec<Snapshot>,
    },
    /// A volume type, or `None`.
    VolumeType {
        /// The name or id asked for.
        name: String,
        /// The type.
        volume_type: Option<VolumeType>,
    },
    /// All service rows.
    Services {
        /// The rows.
        services: Vec<Service>,
    },
    /// Cache entries of an image.
    CacheEntriesOfImage {
        /// The image.
        image_id: ImageId,
        /// The rows, any order.
        entries: Vec<CacheEntry>,
    },
    /// Cache entries at a location.
    CacheEntriesAt {
        /// The location.
        location: CacheLocation,
        /// The rows, any order.
        entries: Vec<CacheEntry>,
    },
    /// The image record or why it could not be had.
    Image {
        /// The image.
        image_id: ImageId,
        /// The record (shared: see [`ImageService::show`](crate::ports::ImageService::show)).
        image: Result<Arc<Image>, BackendErrorKind>,
    },
    /// The location API's answer (`NotSupported` for HTTP 501, ...).
    ImageLocations {
        /// The image.
        image_id: ImageId,
        /// The entries (shared).
        locations: Result<Arc<[LocationEntry]>, BackendErrorKind>,
    },
    /// Cluster facts, or `Unavailable` when the cluster cannot be reached.
    Cluster {
        /// The facts.
        cluster: Result<ClusterInfo, BackendErrorKind>,
    },
    /// Pool existence.
    Pool {
        /// The pool.
        pool: Name,
        /// Whether it exists.
        exists: bool,
    },
    /// An RBD image, or `None` when absent.
    RbdImage {
        /// The image.
        image: ImageSpec,
        /// What the driver reports.
        info: Option<Box<ImageInfo>>,
    },
    /// Host facts.
    Host {
        /// The facts.
        host: HostInfo,
    },
    /// Driver capabilities.
    Capabilities {
        /// The capabilities.
        capabilities: Capabilities,
    },
    /// Fresh ids.
    FreshVolumeIds {
        /// The ids.
        ids: Vec<VolumeId>,
    },
    /// The project's default volume type id, or `None` when it has none.
    ProjectDefaultVolumeType {
        /// The project.
        project_id: ProjectId,
        /// The type's id.
        volume_type_id: Option<String>,
    },
    /// The project's quota usage.
    ProjectUsage {
        /// The project.
        project_id: ProjectId,
        /// The usage.
        usage: ProjectUsage,
    },
}

/// Everything known, keyed by what was asked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Facts {
    /// Volume rows by id (`None`: does not exist).
    pub volumes: BTreeMap<VolumeId, Option<Arc<Volume>>>,
    /// Snapshot rows by id.
    pub snapshots: BTreeMap<SnapshotId, Option<Snapshot>>,
    /// Snapshot rows by volume.
    #[serde(default)]
    pub volume_snapshots: BTreeMap<VolumeId, Vec<Snapshot>>,
    /// Volume types by the name or id asked for.
    pub volume_types: BTreeMap<String, Option<VolumeType>>,
    /// Service rows.
    pub services: Option<Vec<Service>>,
    /// Cache entries by image.
    pub cache_by_image: BTreeMap<ImageId, Vec<CacheEntry>>,
    /// Cache entries by location.
    #[serde(with = "crate::serde_map")]
    pub cache_by_location: BTreeMap<CacheLocation, Vec<CacheEntry>>,
    /// Image records.
    pub images: BTreeMap<ImageId, Result<Arc<Image>, BackendErrorKind>>,
    /// Location API answers.
    pub image_locations: BTreeMap<ImageId, Result<Arc<[LocationEntry]>, BackendErrorKind>>,
    /// Cluster facts.
    pub cluster: Option<Result<ClusterInfo, BackendErrorKind>>,
    /// Pool existence.
    pub pools: BTreeMap<Name, bool>,
    /// RBD images (`None`: absent).
    #[serde(with = "crate::serde_map")]
    pub rbd_images: BTreeMap<ImageSpec, Option<ImageInfo>>,
    /// Host facts.
    pub host: Option<HostInfo>,
    /// Driver capabilities.
    pub capabilities: Option<Capabilities>,
    /// Fresh volume ids, used in order.
    pub fresh_volume_ids: Vec<VolumeId>,
    /// Project default volume type ids by project (`None`: no default set).
    pub project_default_types: BTreeMap<ProjectId, Option<String>>,
    /// Quota usage by project.
    pub project_usage: BTreeMap<ProjectId, ProjectUsage>,
}

impl Facts {
    /// No facts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an answer. A later answer to the same question replaces the
    /// earlier one.
    pub fn learn(&mut self, fact: Fact) {
        match fact {
            Fact::Volume { volume_id, volume } => {
                self.volumes.insert(volume_id, volume);
            }
            Fact::Snapshot { snapshot_id, snapshot } => {
                self.snapshots.insert(snapshot_id, snapshot);
            }
            Fact::SnapshotsOfVolume { volume_id, snapshots } => {
                self.volume_snapshots.insert(volume_id, snapshots);
            }
            Fact::VolumeType { name, volume_type } => {
                self.volume_types.insert(name, volume_type);
            }
            Fact::Services { services } => self.services = Some(services),
            Fact::CacheEntriesOfImage { image_id, entries } => {
                self.cache_by_image.insert(image_id, entries);
            }
            Fact::CacheEntriesAt { location, entries } => {
                self.cache_by_location.insert(location, entries);
            }
            Fact::Image { image_id, image } => {
                self.images.insert(image_id, image);
            }
            Fact::ImageLocations { image_id, locations } => {
                self.image_locations.insert(image_id, locations);
            }
            Fact::Cluster { cluster } => self.cluster = Some(cluster),
            Fact::Pool { pool, exists } => {
                self.pools.insert(pool, exists);
            }
            Fact::RbdImage { image, info } => {
                // An image lookup that answered implies its pool exists.
                self.pools.entry(image.pool.clone()).or_insert(true);
                self.rbd_images.insert(image, info.map(|i| *i));
            }
            Fact::Host { host } => self.host = Some(host),
            Fact::Capabilities { capabilities } => self.capabilities = Some(capabilities),
            Fact::FreshVolumeIds { ids } => {
                for id in ids {
                    if !self.fresh_volume_ids.contains(&id) {
                        self.fresh_volume_ids.push(id);
                    }
                }
            }
            Fact::ProjectDefaultVolumeType { project_id, volume_type_id } => {
                self.project_default_types.insert(project_id, volume_type_id);
            }
            Fact::ProjectUsage { project_id, usage } => {
                self.project_usage.insert(project_id, usage);
            }
        }
    }

    /// Adds answers in order, as [`Facts::learn`] on each would, but many
    /// volume rows in ascending id order (what a [`Need::Volumes`] fetch
    /// gives) are merged into [`Facts::volumes`] at once instead of one
    /// lookup each.
    pub fn learn_all(&mut self, facts: impl IntoIterator<Item = Fact>) {
        let mut rows: Vec<(VolumeId, Option<Arc<Volume>>)> = Vec::new();
        for fact in facts {
            match fact {
                Fact::Volume { volume_id, volume } if rows.last().is_none_or(|(last, _)| *last < volume_id) => {
                    rows.push((volume_id, volume));
                }
                other => {
                    self.learn_rows(&mut rows);
                    self.learn(other);
                }
            }
        }
        self.learn_rows(&mut rows);
    }

    /// Learns rows with strictly ascending ids.
    fn learn_rows(&mut self, rows: &mut Vec<(VolumeId, Option<Arc<Volume>>)>) {
        if rows.len() < 64 {
            for (id, volume) in rows.drain(..) {
                self.volumes.insert(id, volume);
            }
            return;
        }
        // Sorted input: built in one pass, merged in one pass (later
        // answers replace earlier ones).
        let mut batch: BTreeMap<VolumeId, Option<Arc<Volume>>> = rows.drain(..).collect();
        self.volumes.append(&mut batch);
    }

    /// The cluster as the facts show it: a partial [`Cluster`] with the
    /// pools and images learnt so far (an unreachable cluster when the
    /// cluster facts say so); `None` before the cluster facts are known.
    pub fn cluster_view(&self) -> Option<Cluster> {
        let mut c = match self.cluster.as_ref()? {
            Ok(info) => {
                let mut c = Cluster::partial(info.fsid.clone());
                c.clone_v2 = info.clone_v2;
                c.default_features = info.default_features;
                c.semantics = info.semantics;
                c
            }
            Err(_) => {
                let mut c = Cluster::partial(String::new());
                c.reachable = false;
                c
            }
        };
        for (pool, exists) in &self.pools {
            c.learn_pool(pool, *exists);
        }
        for (spec, info) in &self.rbd_images {
            c.learn_image(spec, info.clone());
        }
        Some(c)
    }

    /// Adds a volume row.
    pub fn with_volume(mut self, volume: Volume) -> Self {
        self.volumes.insert(volume.id.clone(), Some(Arc::new(volume)));
        self
    }
}
