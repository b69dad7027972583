//! What a failed and undone plan left different from before it ran.

use std::collections::BTreeMap;
use std::fmt;

use crate::model::{Bytes, CacheEntry, SnapshotId, Timestamp, VolumeId};
use crate::plan::{Action, VolumeUpdate};
use crate::rbd::{ImageSpec, SnapSpec};

/// Where an RBD image is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ImageState {
    /// Neither in its pool nor in the trash.
    Absent,
    /// In its pool.
    InPool,
    /// In its pool's trash (`trash_move`).
    InTrash,
}

impl fmt::Display for ImageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Absent => "absent",
            Self::InPool => "in its pool",
            Self::InTrash => "in the trash",
        })
    }
}

/// A visible RBD snapshot and its protection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SnapshotState {
    /// No such visible snapshot (a clone-v2 snapshot removed while it had
    /// children is hidden: absent here, gone with its last child).
    Absent,
    /// There, unprotected.
    Unprotected,
    /// There, protected (`protect_snap`): it must be unprotected before it
    /// can be removed, and its clones removed or flattened before that.
    Protected,
}

impl fmt::Display for SnapshotState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Absent => "absent",
            Self::Unprotected => "unprotected",
            Self::Protected => "protected",
        })
    }
}

/// A volume row's existence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RowState {
    /// No row with this id.
    Absent,
    /// A visible row (`deleted = 0`).
    Visible,
    /// A soft-deleted row (`deleted = 1`): invisible to every query.
    SoftDeleted,
}

impl fmt::Display for RowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Absent => "absent",
            Self::Visible => "visible",
            Self::SoftDeleted => "soft-deleted",
        })
    }
}

/// One thing a failed plan left different from before it ran, after its
/// undo: what an operator has to look at (see
/// [`Diverged::leftovers`](super::Diverged::leftovers)).
///
/// Each names the object and its state before the plan and now. Two
/// differences are not leftovers, as upstream makes them itself on failure:
/// a volume row the plan inserted that is now soft-deleted (Cinder's way of
/// removing a row), and the `error` status of the volume or snapshot being
/// created when [`ExecOptions::mark_error_on_failure`](super::ExecOptions)
/// is set. The state of an image's snapshots, size, features and parent is
/// only listed for an image that is in its pool both before and now (an
/// image created or removed is listed as such, with whatever it holds).
///
/// ```
/// use cinder_flow::rbd::ImageSpec;
/// use cinder_flow::shell::{ImageState, Leftover};
///
/// let left = Leftover::Image {
///     image: ImageSpec::new("volumes", "volume-1"),
///     before: ImageState::Absent,
///     now: ImageState::InPool,
/// };
/// assert_eq!(left.to_string(), "RBD image volumes/volume-1: absent before, now in its pool");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Leftover {
    /// An RBD image is elsewhere than before: created and still there,
    /// removed, renamed away or moved to the trash.
    Image {
        /// The image.
        image: ImageSpec,
        /// Before the plan.
        before: ImageState,
        /// Now.
        now: ImageState,
    },
    /// A snapshot of an image that is in its pool before and now was
    /// created, removed, protected or unprotected.
    Snapshot {
        /// The snapshot.
        snap: SnapSpec,
        /// Before the plan.
        before: SnapshotState,
        /// Now.
        now: SnapshotState,
    },
    /// An image's size changed.
    ImageSize {
        /// The image.
        image: ImageSpec,
        /// Before the plan (`None`: not known, e.g. after a shrink the plan
        /// could not undo).
        before: Option<Bytes>,
        /// Now.
        now: Bytes,
    },
    /// Feature bits of an image changed.
    ImageFeatures {
        /// The image.
        image: ImageSpec,
        /// Bits enabled now that were disabled before.
        enabled: u64,
        /// Bits disabled now that were enabled before.
        disabled: u64,
    },
    /// A clone was flattened: it no longer depends on its parent snapshot
    /// (cannot be undone).
    Flattened {
        /// The image.
        image: ImageSpec,
    },
    /// A volume row was inserted and is still visible, or a visible row was
    /// soft-deleted.
    VolumeRow {
        /// The volume.
        volume_id: VolumeId,
        /// Before the plan.
        before: RowState,
        /// Now.
        now: RowState,
    },
    /// Columns of a volume row that is visible before and now differ (only
    /// the differing columns are set).
    VolumeColumns {
        /// The volume.
        volume_id: VolumeId,
        /// Their values before the plan.
        before: VolumeUpdate,
        /// Their values now.
        now: VolumeUpdate,
    },
    /// A snapshot row's status differs.
    SnapshotStatus {
        /// The snapshot.
        snapshot_id: SnapshotId,
        /// Before the plan.
        before: String,
        /// Now.
        now: String,
    },
    /// An image-cache row was added, removed or replaced.
    CacheEntry {
        /// The cached volume (the row's key).
        volume_id: VolumeId,
        /// The row before the plan.
        before: Option<CacheEntry>,
        /// The row now.
        now: Option<CacheEntry>,
    },
    /// An image-cache row that is there before and now has another
    /// `last_used`.
    CacheEntryUsed {
        /// The cached volume.
        volume_id: VolumeId,
        /// Before the plan.
        before: Timestamp,
        /// Now.
        now: Timestamp,
    },
    /// A volume's glance metadata differs.
    GlanceMetadata {
        /// The volume.
        volume_id: VolumeId,
        /// Before the plan (`None`: none).
        before: Option<BTreeMap<String, String>>,
        /// Now.
        now: Option<BTreeMap<String, String>>,
    },
    /// The deletion of a cached volume was asked for when its cache entry
    /// was evicted (cannot be undone; the volume API deletes it
    /// asynchronously).
    EvictionRequested {
        /// The volume.
        volume_id: VolumeId,
    },
    /// A call failed and what it changed could not be read back through
    /// the ports (a lost reply is possible): the objects it writes may
    /// differ from before.
    Unknown {
        /// The call.
        action: Action,
    },
}

impl fmt::Display for Leftover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Image { image, before, now } => write!(f, "RBD image {image}: {before} before, now {now}"),
            Self::Snapshot { snap, before, now } => write!(f, "RBD snapshot {snap}: {before} before, now {now}"),
            Self::ImageSize { image, before: Some(before), now } => {
                write!(f, "RBD image {image}: {before} before, now {now}")
            }
            Self::ImageSize { image, before: None, now } => {
                write!(f, "RBD image {image}: resized to {now} (its size before is not known)")
            }
            Self::ImageFeatures { image, enabled, disabled } => {
                write!(f, "RBD image {image}: features")?;
                if *enabled != 0 {
                    write!(f, " {enabled:#x} enabled")?;
                }
                if *enabled != 0 && *disabled != 0 {
                    f.write_str(" and")?;
                }
                if *disabled != 0 {
                    write!(f, " {disabled:#x} disabled")?;
                }
                f.write_str(" since before")
            }
            Self::Flattened { image } => write!(f, "RBD image {image}: flattened (no longer a clone of its parent)"),
            Self::VolumeRow { volume_id, before, now } => {
                write!(f, "volume row {volume_id}: {before} before, now {now}")
            }
            Self::VolumeColumns { volume_id, before, now } => {
                write!(f, "volume row {volume_id}:")?;
                if let (Some(b), Some(n)) = (&before.status, &now.status) {
                    write!(f, " status {b} before, now {n};")?;
                }
                if let (Some(b), Some(n)) = (before.size, now.size) {
                    write!(f, " size {b} before, now {n};")?;
                }
                if let (Some(b), Some(n)) = (before.bootable, now.bootable) {
                    write!(f, " bootable {b} before, now {n};")?;
                }
                if before.host.is_some() || now.host.is_some() {
                    let shown =
                        |h: &Option<crate::model::Host>| h.as_ref().map_or("none".to_owned(), ToString::to_string);
                    write!(f, " host {} before, now {};", shown(&before.host), shown(&now.host))?;
                }
                Ok(())
            }
            Self::SnapshotStatus { snapshot_id, before, now } => {
                write!(f, "snapshot row {snapshot_id}: status {before} before, now {now}")
            }
            Self::CacheEntry { volume_id, before, now } => {
                let shown = |e: &Option<CacheEntry>| match e {
                    None => "none".to_owned(),
                    Some(e) => format!("image {} last used {}", e.image_id, e.last_used),
                };
                write!(f, "image-cache row of volume {volume_id}: {} before, now {}", shown(before), shown(now))
            }
            Self::CacheEntryUsed { volume_id, before, now } => {
                write!(f, "image-cache row of volume {volume_id}: last used {before} before, now {now}")
            }
            Self::GlanceMetadata { volume_id, before, now } => {
                let keys = |m: &Option<BTreeMap<String, String>>| m.as_ref().map_or(0, BTreeMap::len);
                write!(
                    f,
                    "glance metadata of volume {volume_id}: {} keys before, now {} (different values)",
                    keys(before),
                    keys(now)
                )
            }
            Self::EvictionRequested { volume_id } => {
                write!(f, "volume {volume_id}: its deletion was asked for when its image-cache entry was evicted")
            }
            Self::Unknown { action } => {
                write!(f, "unknown whether \"{action}\" took effect: it failed and cannot be read back")
            }
        }
    }
}
