//! The plan: what the planner decided, as a plain value.
//!
//! A [`Plan`] lists the [`Step`]s to run in order, each with what it is
//! expected to do (upstream sometimes makes a call it knows may fail, e.g. the
//! first `remove` of a delete; the plan says so), the path and source chosen,
//! the [`Outcome`] upstream would reach, and a decision [`trace`](Plan::trace)
//! that explains every alternative considered and why it was rejected.
//!
//! Plans are deterministic (same facts, same plan), serialisable and
//! diffable. They carry no handles or closures, so they can be logged,
//! stored and replayed.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::BackendErrorKind;
pub use crate::error::ErrorClass;
use crate::model::{
    Bytes, CacheEntry, GiB, Host, ImageId, LocationEntry, SnapshotId, Timestamp, Volume, VolumeId, VolumeStatus,
};
use crate::rbd::RbdOp;
use crate::trace::{Decision, Subject};

/// The operation a plan is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Operation {
    /// An empty volume (`create_volume`, spec type `raw`).
    CreateVolume,
    /// A volume from a Cinder snapshot (spec type `snap`).
    CreateFromSnapshot {
        /// The snapshot.
        snapshot_id: SnapshotId,
    },
    /// A clone of another volume (spec type `source_vol`).
    CreateClonedVolume {
        /// The source volume.
        source_volid: VolumeId,
    },
    /// A volume from a Glance image (spec type `image`).
    CreateFromImage {
        /// The image.
        image_id: ImageId,
    },
    /// Deleting a volume at the driver (`RBDDriver.delete_volume`).
    DeleteVolume,
    /// A Cinder snapshot of the request's volume (`VolumeManager.create_snapshot`
    /// → `RBDDriver.create_snapshot`): the snapshot row exists with status
    /// `creating`, as the API leaves it, and the request's `volume_id` is the
    /// snapshot's volume.
    CreateSnapshot {
        /// The snapshot.
        snapshot_id: SnapshotId,
    },
}

impl Operation {
    /// The conformance-format name (`create_from_image`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::CreateVolume => "create_volume",
            Self::CreateFromSnapshot { .. } => "create_from_snapshot",
            Self::CreateClonedVolume { .. } => "create_cloned_volume",
            Self::CreateFromImage { .. } => "create_from_image",
            Self::DeleteVolume => "delete_volume",
            Self::CreateSnapshot { .. } => "create_snapshot",
        }
    }
}

/// How a volume from an image was (or will be) built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreatePath {
    /// The driver cloned an image location (`RBDDriver.clone_image`).
    DriverClone,
    /// A `cinder://` image volume was cloned (`_clone_image_volume`).
    ImageVolumeClone,
    /// A cached image volume was cloned (image-volume cache hit).
    CacheHit,
    /// Downloaded, and a new cache entry is made from the result.
    CacheMissDownload,
    /// Downloaded from Glance.
    Download,
}

impl CreatePath {
    /// The conformance-format name.
    pub fn name(self) -> &'static str {
        match self {
            Self::DriverClone => "driver_clone",
            Self::ImageVolumeClone => "image_volume_clone",
            Self::CacheHit => "cache_hit",
            Self::CacheMissDownload => "cache_miss_download",
            Self::Download => "download",
        }
    }
}

impl fmt::Display for CreatePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DriverClone => "copy-on-write clone of the image's RBD snapshot",
            Self::ImageVolumeClone => "clone of a Cinder image volume",
            Self::CacheHit => "clone of the cached image volume",
            Self::CacheMissDownload => "download, then a new image-cache entry",
            Self::Download => "download from Glance",
        })
    }
}

/// Where the data of a new volume comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Source {
    /// An `rbd://` location of the image.
    RbdLocation {
        /// The URL as Glance gave it.
        url: String,
        /// Its pool.
        pool: String,
        /// Its image.
        image: String,
        /// Its snapshot.
        snap: String,
    },
    /// Another volume (a source volume or an image volume).
    Volume {
        /// The volume.
        volume_id: VolumeId,
    },
    /// An image-cache entry's volume.
    Cache {
        /// The cached volume.
        volume_id: VolumeId,
    },
    /// Glance (downloaded).
    Glance {
        /// The image.
        image_id: ImageId,
    },
    /// A Cinder snapshot.
    Snapshot {
        /// The snapshot.
        snapshot_id: SnapshotId,
    },
}

/// What a step is expected to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "expect", content = "kind", rename_all = "snake_case")]
pub enum Expect {
    /// Succeed.
    Ok,
    /// Fail with this kind and change nothing (upstream makes the call and
    /// handles the failure; the steps after it are that handling).
    Fail(BackendErrorKind),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok => f.write_str("succeed"),
            Self::Fail(kind) => write!(f, "fail ({kind})"),
        }
    }
}

/// What a downloaded image is expected to be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadExpectation {
    /// Size of the local file after conversion to raw.
    pub size: Bytes,
    /// Glance's `disk_format` (qemu-img must detect the same).
    pub disk_format: String,
}

/// A change the plan makes to Cinder's database.
///
/// Not `#[non_exhaustive]`: an implementation of
/// [`VolumeDb::write`](crate::ports::VolumeDb::write) must handle every
/// write, so a new write breaks its build rather than its production.
/// [`Tables::apply`](crate::tables::Tables::apply) holds the rules of each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "db", rename_all = "snake_case")]
pub enum DbWrite {
    /// Update columns of a volume row.
    UpdateVolume {
        /// The volume.
        volume_id: VolumeId,
        /// New values.
        set: VolumeUpdate,
        /// Values before (for undo).
        previous: VolumeUpdate,
    },
    /// Insert a volume row (an image volume for the cache).
    CreateVolume {
        /// The row.
        volume: Box<Volume>,
    },
    /// Soft-delete a volume row the plan created (undo of `CreateVolume`).
    DeleteVolumeRow {
        /// The volume.
        volume_id: VolumeId,
    },
    /// Delete an image-cache row (undo of `CreateCacheEntry`; the volume is
    /// left alone).
    DeleteCacheEntry {
        /// The cached volume.
        volume_id: VolumeId,
    },
    /// Insert an image-cache entry.
    CreateCacheEntry {
        /// The entry.
        entry: CacheEntry,
    },
    /// A cache hit bumps `last_used`.
    TouchCacheEntry {
        /// The cached volume.
        volume_id: VolumeId,
        /// New `last_used`.
        last_used: Timestamp,
        /// Old `last_used` (for undo).
        previous: Timestamp,
    },
    /// Evict a cache entry: delete its row and ask the volume API to delete
    /// its volume (asynchronously, as `ImageVolumeCache.delete_cached_volume`
    /// does).
    EvictCacheEntry {
        /// The entry.
        entry: CacheEntry,
    },
    /// Store volume glance metadata (`volume_glance_metadata`).
    SetGlanceMetadata {
        /// The volume.
        volume_id: VolumeId,
        /// Keys and values.
        metadata: BTreeMap<String, String>,
    },
    /// Delete all glance metadata of a volume.
    DeleteGlanceMetadata {
        /// The volume.
        volume_id: VolumeId,
    },
    /// Give a volume exactly this glance metadata (none when empty): the
    /// undo of a write that changed metadata the volume already had.
    RestoreGlanceMetadata {
        /// The volume.
        volume_id: VolumeId,
        /// Keys and values.
        metadata: BTreeMap<String, String>,
    },
    /// Set a snapshot row's `status` (`snapshot.status = ...;
    /// snapshot.save()`).
    UpdateSnapshot {
        /// The snapshot.
        snapshot_id: SnapshotId,
        /// New status.
        status: String,
        /// Status before (for undo).
        previous: String,
    },
}

impl fmt::Display for DbWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let f = &mut crate::escape::Escaper::new(f);
        match self {
            Self::UpdateVolume { volume_id, set, .. } => {
                write!(f, "set volume {volume_id}")?;
                if let Some(s) = &set.status {
                    write!(f, " status={s}")?;
                }
                if let Some(s) = set.size {
                    write!(f, " size={}", s.0)?;
                }
                if let Some(b) = set.bootable {
                    write!(f, " bootable={b}")?;
                }
                if let Some(h) = &set.host {
                    write!(f, " host={h}")?;
                }
                Ok(())
            }
            Self::CreateVolume { volume } => {
                write!(f, "create volume row {} ({}, project {})", volume.id, volume.size, volume.project_id)
            }
            Self::DeleteVolumeRow { volume_id } => write!(f, "delete volume row {volume_id}"),
            Self::CreateCacheEntry { entry } => {
                write!(f, "add image-cache entry: image {} -> volume {}", entry.image_id, entry.volume_id)
            }
            Self::TouchCacheEntry { volume_id, .. } => write!(f, "mark cache entry {volume_id} as used"),
            Self::DeleteCacheEntry { volume_id } => write!(f, "delete image-cache row of volume {volume_id}"),
            Self::EvictCacheEntry { entry } => {
                write!(f, "evict image-cache entry {} (delete volume {})", entry.image_id, entry.volume_id)
            }
            Self::SetGlanceMetadata { volume_id, metadata } => {
                write!(f, "store {} glance metadata keys on volume {volume_id}", metadata.len())
            }
            Self::DeleteGlanceMetadata { volume_id } => {
                write!(f, "delete glance metadata of volume {volume_id}")
            }
            Self::RestoreGlanceMetadata { volume_id, metadata } => {
                write!(f, "restore {} glance metadata keys on volume {volume_id}", metadata.len())
            }
            Self::UpdateSnapshot { snapshot_id, status, .. } => {
                write!(f, "set snapshot {snapshot_id} status={status}")
            }
        }
    }
}

/// Volume columns a plan changes; `None` leaves a column as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeUpdate {
    /// `status`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<VolumeStatus>,
    /// `size`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<GiB>,
    /// `bootable`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootable: Option<bool>,
    /// `host`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Host>,
}

/// One action of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// A librbd call through [`crate::ports::Driver`].
    Rbd {
        /// The call.
        op: RbdOp,
    },
    /// Download an image from Glance into the conversion directory.
    DownloadImage {
        /// The image.
        image_id: ImageId,
        /// What the local file should turn out to be.
        expect: DownloadExpectation,
    },
    /// A database change through [`crate::ports::VolumeDb`].
    Db {
        /// The change.
        write: DbWrite,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let f = &mut crate::escape::Escaper::new(f);
        match self {
            Self::Rbd { op } => write!(f, "{op}"),
            Self::DownloadImage { image_id, expect } => {
                write!(f, "download image {image_id} ({}, {} once raw)", expect.disk_format, expect.size)
            }
            Self::Db { write } => write!(f, "{write}"),
        }
    }
}

/// A step: an action, what it should do, and how to undo it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// What to do.
    pub action: Action,
    /// What it should do.
    pub expect: Expect,
    /// How to undo it if a later step fails unexpectedly: the actions, in
    /// order. Empty when there is nothing to undo (a failing call, a read)
    /// or when it cannot be undone (see [`Step::undoable`]).
    pub undo: Vec<Action>,
    /// `false` when the step changes something that cannot be put back
    /// (removing or flattening an image that existed before the plan).
    pub undoable: bool,
}

/// How the operation ends once the steps have run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The volume is created (or deleted) as asked.
    Success,
    /// Upstream ends the operation with this exception.
    Failure {
        /// The exception class.
        error: ErrorClass,
        /// What happened, in words.
        message: String,
    },
}

impl Outcome {
    /// Whether the operation succeeds.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Success)
    }

    /// The exception the operation ends with, if any.
    pub fn error(&self) -> Option<ErrorClass> {
        match self {
            Self::Success => None,
            Self::Failure { error, .. } => Some(*error),
        }
    }
}

/// A decided plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[must_use = "a plan does nothing until it is executed"]
#[non_exhaustive]
pub struct Plan {
    /// The operation.
    pub operation: Operation,
    /// The volume created or deleted (for a snapshot: the snapshot's
    /// volume).
    pub volume_id: VolumeId,
    /// For volumes from images: the path taken (see [`CreatePath`]).
    pub path: Option<CreatePath>,
    /// Where the data comes from.
    pub source: Option<Source>,
    /// For volumes from images: the image-cache volumes the flow asked the
    /// volume API to delete (`ImageVolumeCache.delete_cached_volume`: a
    /// stale entry, room for a new one), in order, including requests the
    /// API refused (a refused request writes nothing and fails the
    /// housekeeping step that made it).
    #[serde(default)]
    pub cache_deletions: Vec<VolumeId>,
    /// What to do, in order.
    pub steps: Vec<Step>,
    /// How it ends.
    pub outcome: Outcome,
    /// Every decision and rejected alternative, in the order made.
    pub trace: Vec<Decision>,
    /// The image's location list as `get_location` returned it, when the
    /// flow read one (empty otherwise): the list the trace's
    /// [`Subject::Location`] indices point into. Shared with the facts the
    /// plan was made from, never copied.
    #[serde(default = "no_locations")]
    pub locations: Arc<[LocationEntry]>,
}

fn no_locations() -> Arc<[LocationEntry]> {
    Arc::from([])
}

impl Plan {
    /// The URL of location `index` of [`Plan::locations`] (`None` for an
    /// index past the list or an entry without a URL).
    pub fn location_url(&self, index: usize) -> Option<&str> {
        self.locations.get(index).and_then(|l| l.url.as_deref())
    }

    /// The trace for reading: each decision with the URL of the location it
    /// is about.
    ///
    /// ```
    /// # use cinder_flow::plan::Plan;
    /// fn log(plan: &Plan) {
    ///     for line in plan.explained() {
    ///         println!("{line}");
    ///     }
    /// }
    /// ```
    pub fn explained(&self) -> impl Iterator<Item = Explained<'_>> + '_ {
        self.trace.iter().map(move |decision| Explained { plan: self, decision })
    }

    /// The librbd calls of the plan, in order.
    pub fn rbd_ops(&self) -> impl Iterator<Item = (&RbdOp, Expect)> {
        self.steps.iter().filter_map(|s| match &s.action {
            Action::Rbd { op } => Some((op, s.expect)),
            _ => None,
        })
    }
}

/// A [`Decision`] shown with what its plan knows about its subject (the
/// URL of a location); made by [`Plan::explained`].
#[derive(Clone, Copy, Debug)]
pub struct Explained<'a> {
    plan: &'a Plan,
    decision: &'a Decision,
}

impl Explained<'_> {
    /// The decision.
    pub fn decision(&self) -> &Decision {
        self.decision
    }
}

impl fmt::Display for Explained<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let f = &mut crate::escape::Escaper::new(f);
        match self.decision.subject {
            Subject::Location { index } => {
                let url = self.plan.location_url(index).unwrap_or("no URL");
                write!(f, "[{}] location #{} ({url}): {}", self.decision.stage, index + 1, self.decision.verdict)
            }
            Subject::Locations { first, last } => {
                let url = |i| self.plan.location_url(i).unwrap_or("no URL");
                // Two are both shown; a longer run by its ends.
                let between = if last == first + 1 { ", " } else { " ... " };
                write!(
                    f,
                    "[{}] locations #{} to #{} ({}{between}{}): {}",
                    self.decision.stage,
                    first + 1,
                    last + 1,
                    url(first),
                    url(last),
                    self.decision.verdict
                )
            }
            _ => write!(f, "{}", self.decision),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Reason, Stage, Verdict};

    fn plan_with(locations: Vec<LocationEntry>, trace: Vec<Decision>) -> Plan {
        Plan {
            operation: Operation::CreateFromImage { image_id: ImageId::from("img") },
            volume_id: VolumeId::from("vol"),
            path: None,
            source: None,
            cache_deletions: Vec::new(),
            steps: Vec::new(),
            outcome: Outcome::Success,
            trace,
            locations: locations.into(),
        }
    }

    #[test]
    fn explained_decisions_name_the_url_of_their_location() {
        let rejected = |index| Decision {
            stage: Stage::DriverClone,
            subject: Subject::Location { index },
            verdict: Verdict::Rejected { because: Reason::OtherCluster },
        };
        let plan = plan_with(
            vec![
                LocationEntry::url("rbd://other/images/img/snap"),
                LocationEntry { url: None, metadata: BTreeMap::new() },
            ],
            vec![rejected(0), rejected(1), rejected(7)],
        );
        let lines: Vec<String> = plan.explained().map(|e| e.to_string()).collect();
        assert!(lines[0].starts_with("[driver clone] location #1 (rbd://other/images/img/snap): rejected: in another"));
        assert!(lines[1].starts_with("[driver clone] location #2 (no URL): rejected"));
        // An index past the list (a hand-made plan) is shown, not a panic.
        assert!(lines[2].starts_with("[driver clone] location #8 (no URL)"));
        assert_eq!(plan.location_url(0), Some("rbd://other/images/img/snap"));
        assert_eq!(plan.location_url(1), None);
        // Without the plan, the position alone.
        assert_eq!(
            plan.trace[0].to_string(),
            format!("[driver clone] location #1: rejected: {}", Reason::OtherCluster)
        );
    }

    #[test]
    fn a_run_of_locations_is_shown_with_its_first_and_last_url() {
        let plan = plan_with(
            vec![
                LocationEntry::url("rbd://a/p/i/s"),
                LocationEntry::url("rbd://b/p/i/s"),
                LocationEntry::url("rbd://c/p/i/s"),
            ],
            vec![Decision {
                stage: Stage::DriverClone,
                subject: Subject::Locations { first: 0, last: 2 },
                verdict: Verdict::Rejected { because: Reason::OtherCluster },
            }],
        );
        let line = plan.explained().next().expect("one line").to_string();
        assert!(
            line.starts_with(
                "[driver clone] locations #1 to #3 (rbd://a/p/i/s ... rbd://c/p/i/s): rejected: in another"
            ),
            "{line}"
        );
        assert_eq!(plan.trace[0].subject.location_range(), Some(0..=2));
        let json = serde_json::to_value(&plan.trace[0]).expect("serialise");
        assert_eq!(json["subject"]["subject"], "locations");
        assert_eq!(serde_json::from_value::<Decision>(json).expect("deserialise"), plan.trace[0]);
    }

    #[test]
    fn the_location_list_round_trips_and_defaults_to_empty() {
        let plan = plan_with(vec![LocationEntry::url("cinder://x")], Vec::new());
        let json = serde_json::to_value(&plan).expect("serialise");
        let back: Plan = serde_json::from_value(json.clone()).expect("deserialise");
        assert_eq!(back, plan);
        let mut old = json;
        old.as_object_mut().expect("object").remove("locations");
        let back: Plan = serde_json::from_value(old).expect("a plan serialised before the field existed");
        assert!(back.locations.is_empty());
    }

    /// Every location of an image gets a trace entry, so the entry's size
    /// is paid thousands of times per decision (docs/PERFORMANCE.md). A
    /// new `Reason` or `Subject` variant with a large payload belongs in
    /// a `Box`.
    #[test]
    fn a_trace_entry_stays_small() {
        assert!(std::mem::size_of::<Decision>() <= 80, "{}", std::mem::size_of::<Decision>());
    }
}
