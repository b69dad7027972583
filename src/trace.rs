//! The decision trace: every alternative the planner considered, what it
//! decided about it and why, in types a program can match on and words an
//! operator can read.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{BackendErrorKind, ErrorClass};
use crate::model::{Bytes, GiB, ImageId, Name, ProjectId, SnapshotId, VolumeId};

/// Which part of the flow a decision belongs to (upstream function names in
/// the docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Stage {
    /// Up-front checks (`_create_from_image` virtual size, volume lookups).
    Checks,
    /// `RBDDriver.clone_image`: copy-on-write clone of an `rbd://` location.
    DriverClone,
    /// `_clone_image_volume`: clone of a `cinder://` image volume.
    ImageVolumeClone,
    /// The image-volume cache (`_prepare_image_cache_entry`,
    /// `_create_from_image_cache`, `_create_image_cache_volume_entry`).
    ImageCache,
    /// `_create_from_image_download` and the driver's `copy_image_to_volume`.
    Download,
    /// `RBDDriver.create_cloned_volume`: clone depth, flatten, full copy.
    CloneVolume,
    /// `RBDDriver.create_volume_from_snapshot`.
    FromSnapshot,
    /// `RBDDriver.create_volume`.
    CreateVolume,
    /// `RBDDriver.delete_volume`.
    Delete,
    /// `VolumeManager.create_snapshot` / `RBDDriver.create_snapshot`.
    Snapshot,
    /// The end of the flow (status, errors).
    Finish,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Checks => "checks",
            Self::DriverClone => "driver clone",
            Self::ImageVolumeClone => "image-volume clone",
            Self::ImageCache => "image cache",
            Self::Download => "download",
            Self::CloneVolume => "volume clone",
            Self::FromSnapshot => "from snapshot",
            Self::CreateVolume => "create",
            Self::Delete => "delete",
            Self::Snapshot => "snapshot",
            Self::Finish => "finish",
        })
    }
}

/// What a decision is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "subject", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Subject {
    /// An image location, by its position in the list Cinder iterates.
    /// The URL is the plan's ([`Plan::location_url`](crate::plan::Plan::location_url)):
    /// an image can list thousands of locations, and an entry that shared
    /// or copied its URL would cost every decision a reference count or an
    /// allocation per location.
    Location {
        /// Position in [`Plan::locations`](crate::plan::Plan::locations) (0-based).
        index: usize,
    },
    /// A run of consecutive locations (`first` to `last`, both included,
    /// 0-based, at least two) that each got this same decision. The
    /// planner writes one entry for such a run instead of one per
    /// location: an image listing thousands of locations of other
    /// clusters is then one line of the trace, and planning it does not
    /// write (and later free) an entry per location. Every location still
    /// has its decision: see [`Subject::location_range`].
    Locations {
        /// The first location of the run.
        first: usize,
        /// The last location of the run.
        last: usize,
    },
    /// The image's `direct_url` (legacy Glance API).
    DirectUrl {
        /// The URL.
        url: Arc<str>,
    },
    /// A volume (image volume, source volume, cached volume, the new one).
    Volume {
        /// The volume.
        volume_id: VolumeId,
    },
    /// An image.
    Image {
        /// The image.
        image_id: ImageId,
    },
    /// A snapshot.
    Snapshot {
        /// The snapshot.
        snapshot_id: SnapshotId,
    },
    /// A whole stage of the flow.
    Path,
}

impl Subject {
    /// The locations this decision is about, as 0-based indices into
    /// [`Plan::locations`](crate::plan::Plan::locations): one for
    /// [`Subject::Location`], the run for [`Subject::Locations`], `None`
    /// for any other subject.
    ///
    /// ```
    /// use cinder_flow::explain::Subject;
    /// assert_eq!(Subject::Location { index: 4 }.location_range(), Some(4..=4));
    /// assert_eq!(Subject::Locations { first: 0, last: 9 }.location_range(), Some(0..=9));
    /// assert_eq!(Subject::Path.location_range(), None);
    /// ```
    pub fn location_range(&self) -> Option<std::ops::RangeInclusive<usize>> {
        match *self {
            Self::Location { index } => Some(index..=index),
            Self::Locations { first, last } => Some(first..=last),
            _ => None,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let f = &mut crate::escape::Escaper::new(f);
        match self {
            Self::Location { index } => write!(f, "location #{}", index + 1),
            Self::Locations { first, last } => write!(f, "locations #{} to #{}", first + 1, last + 1),
            Self::DirectUrl { url } => write!(f, "direct_url ({url})"),
            Self::Volume { volume_id } => write!(f, "volume {volume_id}"),
            Self::Image { image_id } => write!(f, "image {image_id}"),
            Self::Snapshot { snapshot_id } => write!(f, "snapshot {snapshot_id}"),
            Self::Path => f.write_str("this path"),
        }
    }
}

/// Why something was rejected or skipped, or a fact worth stating.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    // ---- locations (RBD-1..8, CIV-4)
    /// Not an `rbd://` URL (RBD-1).
    NotRbd,
    /// An `rbd://` URL with an empty component (RBD-3).
    BlankComponent,
    /// An `rbd://` URL without exactly four parts (RBD-4).
    NotRbdSnapshot {
        /// How many parts it has.
        parts: usize,
    },
    /// In another Ceph cluster (RBD-6): the location's fsid (in its URL)
    /// is not this backend's (which the trace states once, in a note of
    /// the driver-clone stage).
    OtherCluster,
    /// The image is not `raw` (RBD-7, CIV-2).
    NotRaw {
        /// Its disk format.
        disk_format: String,
    },
    /// Not `bare` + `raw` (CIV-2).
    NotBareRaw(Box<Formats>),
    /// Opening `pool/image@snap` read-only failed (RBD-8).
    CannotOpen {
        /// How it failed.
        error: BackendErrorKind,
    },
    /// The location's pool does not exist: upstream does not treat this as
    /// "not cloneable" but fails the whole create.
    PoolMissing {
        /// The pool.
        pool: String,
    },
    /// Not a `cinder://` URL (CIV-4).
    NotCinder,
    /// A `cinder://` URL whose id is not UUID-like (CIV-4).
    MalformedVolumeId {
        /// The id part.
        id: String,
    },
    /// Upstream's URL parser raises on it and the exception ends the flow.
    UnparseableUrl {
        /// Python's message.
        message: String,
    },
    /// An earlier location was already chosen.
    EarlierChosen,
    // ---- image volumes (CIV-5, CIV-6, DB-3)
    /// No volume with that id (or it is deleted).
    NotInDatabase,
    /// Its host does not match the new volume's (pool-level exact match
    /// unless the new volume has no pool).
    OtherHost(Box<HostMismatch>),
    /// The requester may not use it: the image owner is neither the
    /// requesting project nor the image volume's `image_owner` tag.
    OwnerMismatch(Box<OwnerMismatch>),
    /// A newer accessible image volume was chosen first.
    NewerChosen,
    /// `allowed_direct_url_schemes` lacks `cinder`.
    SchemeNotAllowed,
    /// The new volume is encrypted.
    Encrypted,
    /// No image location at all.
    NoLocation,
    /// No URL in the list is usable.
    NothingUsable,
    // ---- cache (CACHE-1..8)
    /// The backend's image cache is off.
    CacheDisabled,
    /// No internal tenant is configured.
    NoInternalTenant,
    /// No entry for this image on this host.
    CacheMiss,
    /// The entry was made for an older version of the image.
    CacheStale(Box<StaleEntry>),
    /// Evicted to make room.
    EvictedForRoom,
    /// The new entry would exceed the cache size limit on its own.
    CacheTooSmall {
        /// Its size.
        size: GiB,
        /// The limit.
        limit_gb: i64,
    },
    /// The cache still would exceed its size limit after evicting.
    CacheFull,
    /// An entry for the image already exists.
    CacheEntryExists,
    // ---- sizes and checks
    /// The image's virtual size does not fit the volume.
    ImageTooLarge {
        /// Virtual size of the image.
        virtual_size: Bytes,
        /// The volume size.
        volume_size: GiB,
    },
    /// Not enough free space to download.
    NoConversionSpace {
        /// Free bytes in the conversion directory.
        free: Bytes,
        /// Bytes needed (the image size).
        needed: Bytes,
    },
    // ---- clones
    /// Depth of the source's clone chain.
    CloneDepth {
        /// The depth.
        depth: u32,
        /// `rbd_max_clone_depth`.
        max: i64,
    },
    /// `rbd_max_clone_depth <= 0`: full copies only.
    FullCopyConfigured {
        /// `rbd_max_clone_depth`.
        max: i64,
    },
    /// Temporary volumes (`use_quota = False`) are never flattened.
    TemporaryVolume,
    /// `rbd_flatten_volume_from_snapshot` is set.
    FlattenConfigured,
    // ---- generic
    /// A backend call is predicted to fail this way.
    CallFails {
        /// The call.
        call: String,
        /// How.
        error: BackendErrorKind,
    },
    /// The flow ends with an upstream exception.
    Raised {
        /// The class.
        error: ErrorClass,
        /// The message.
        message: String,
    },
    /// Free text for facts that fit nothing above.
    Note {
        /// The words.
        text: String,
    },
}

/// The formats of an image that is not `bare` + `raw`
/// ([`Reason::NotBareRaw`]). Boxed: rare, and two strings would double
/// the size of every trace entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Formats {
    /// Its container format.
    pub container_format: String,
    /// Its disk format.
    pub disk_format: String,
}

/// An image volume on another host ([`Reason::OtherHost`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostMismatch {
    /// The candidate's host (or cluster).
    pub candidate: Option<Name>,
    /// The filter value (the new volume's host or cluster).
    pub wanted: Name,
}

/// Who owns what when an image volume may not be used
/// ([`Reason::OwnerMismatch`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerMismatch {
    /// Glance's `owner` of the image.
    pub image_owner: Option<ProjectId>,
    /// The requesting project.
    pub project: ProjectId,
    /// The image volume's `image_owner` metadata.
    pub tagged_owner: Option<String>,
}

/// A stale image-cache entry ([`Reason::CacheStale`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleEntry {
    /// The entry's image timestamp.
    pub entry: String,
    /// The image's `updated_at`.
    pub image: String,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let f = &mut crate::escape::Escaper::new(f);
        match self {
            Self::NotRbd => f.write_str("not an rbd:// URL"),
            Self::BlankComponent => f.write_str("rbd:// URL with an empty component"),
            Self::NotRbdSnapshot { parts } => {
                write!(f, "rbd:// URL with {parts} parts; a clonable one is rbd://fsid/pool/image/snapshot")
            }
            Self::OtherCluster => f.write_str("in another Ceph cluster (the fsid in its URL is not this backend's)"),
            Self::NotRaw { disk_format } => {
                write!(f, "the image is {disk_format:?}, and only raw images can be cloned")
            }
            Self::NotBareRaw(b) => write!(
                f,
                "the image is {:?}/{:?}; image volumes are cloned only for bare/raw images",
                b.container_format, b.disk_format
            ),
            Self::CannotOpen { error } => write!(f, "Cinder cannot open the image snapshot read-only ({error})"),
            Self::PoolMissing { pool } => write!(
                f,
                "pool {pool:?} does not exist in this cluster; upstream fails the whole create instead of trying the next path"
            ),
            Self::NotCinder => f.write_str("not a cinder:// URL"),
            Self::MalformedVolumeId { id } => write!(f, "{id:?} is not a volume id (UUID)"),
            Self::UnparseableUrl { message } => write!(f, "upstream's URL parser raises ValueError ({message})"),
            Self::EarlierChosen => f.write_str("an earlier location was chosen"),
            Self::NotInDatabase => f.write_str("no such volume in Cinder's database"),
            Self::OtherHost(m) => match (&m.candidate, &m.wanted) {
                (Some(c), wanted) => write!(
                    f,
                    "it lives on {c}, not on {wanted}; upstream only clones image volumes from the new volume's own host@backend#pool"
                ),
                (None, wanted) => write!(f, "it has no host, and the new volume is on {wanted}"),
            },
            Self::OwnerMismatch(m) => write!(
                f,
                "the image owner ({}) is neither the requesting project ({}) nor the image volume's image_owner tag ({})",
                m.image_owner.as_ref().map(|p| p.as_str()).unwrap_or("none"),
                m.project,
                m.tagged_owner.as_deref().unwrap_or("none")
            ),
            Self::NewerChosen => f.write_str("a newer accessible image volume was chosen"),
            Self::SchemeNotAllowed => {
                f.write_str("allowed_direct_url_schemes does not include \"cinder\", so image volumes are not cloned")
            }
            Self::Encrypted => f.write_str("the new volume is encrypted; clones of unencrypted sources are not used"),
            Self::NoLocation => f.write_str("the image has no location"),
            Self::NothingUsable => f.write_str("no location was usable"),
            Self::CacheDisabled => f.write_str("image_volume_cache_enabled is off for this backend"),
            Self::NoInternalTenant => f.write_str(
                "cinder_internal_tenant_project_id / _user_id are not both set, so the image cache cannot be used",
            ),
            Self::CacheMiss => f.write_str("no cache entry for this image on this host"),
            Self::CacheStale(s) => write!(
                f,
                "the entry was made for the image as of {}, but the image was updated at {}",
                s.entry, s.image
            ),
            Self::EvictedForRoom => f.write_str("least recently used entry evicted to make room"),
            Self::CacheTooSmall { size, limit_gb } => {
                write!(f, "the entry ({size}) exceeds image_volume_cache_max_size_gb ({limit_gb}) on its own")
            }
            Self::CacheFull => f.write_str("the cache cannot be brought under its size limit"),
            Self::CacheEntryExists => f.write_str("an entry for this image already exists"),
            Self::ImageTooLarge { virtual_size, volume_size } => write!(
                f,
                "the image's virtual size ({virtual_size}, {} rounded up) is larger than the volume ({volume_size})",
                virtual_size.ceil_gib()
            ),
            Self::NoConversionSpace { free, needed } => write!(
                f,
                "image_conversion_dir has {free} free, not more than the image's {needed}"
            ),
            Self::CloneDepth { depth, max } => write!(f, "the source is at clone depth {depth} (rbd_max_clone_depth {max})"),
            Self::FullCopyConfigured { max } => {
                write!(f, "rbd_max_clone_depth is {max} (<= 0): volumes are copied in full, never cloned")
            }
            Self::TemporaryVolume => f.write_str("temporary volumes (use_quota = False) are never flattened"),
            Self::FlattenConfigured => f.write_str("rbd_flatten_volume_from_snapshot is set"),
            Self::CallFails { call, error } => write!(f, "{call} will fail ({error})"),
            Self::Raised { error, message } => write!(f, "{error}: {message}"),
            Self::Note { text } => f.write_str(text),
        }
    }
}

/// What was decided about a subject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// Chosen.
    Chosen,
    /// Considered and rejected.
    Rejected {
        /// Why.
        because: Reason,
    },
    /// Not considered at all.
    Skipped {
        /// Why.
        because: Reason,
    },
    /// A fact stated for the reader.
    Noted {
        /// What.
        what: Reason,
    },
}

/// One entry of a plan's trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Where in the flow.
    pub stage: Stage,
    /// About what.
    pub subject: Subject,
    /// What was decided.
    pub verdict: Verdict,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let f = &mut crate::escape::Escaper::new(f);
        match self {
            Self::Chosen => f.write_str("chosen"),
            Self::Rejected { because } => write!(f, "rejected: {because}"),
            Self::Skipped { because } => write!(f, "skipped: {because}"),
            Self::Noted { what } => write!(f, "{what}"),
        }
    }
}

/// Without its plan, a location is shown by its position only; see
/// [`Plan::explained`](crate::plan::Plan::explained) for the URL.
impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let f = &mut crate::escape::Escaper::new(f);
        write!(f, "[{}] {}: {}", self.stage, self.subject, self.verdict)
    }
}
