//! The executor's account of what a plan changed: the state of every object
//! its actions write, before the plan and now, kept while undoing after a
//! divergence.
//!
//! Each action writes a few *keys* (an image's place, a snapshot's state, a
//! volume column, a cache row, ...) to values the action alone determines.
//! The account starts from the completed steps, learns the diverging call's
//! effect by reading it back through the ports, and follows every undo
//! action: applied when it succeeds, read back when it fails (its reply may
//! have been lost). An undo action is skipped only when every key it writes
//! already has the value it would write, or when the object it changes in
//! place is known to be gone, so a step that was itself undone never
//! excuses another. What remains different at the end, key by key, is the
//! list of [`Leftover`]s.
//!
//! The value of a key before the plan comes from the first step that writes
//! it: what the call needs to succeed (`create` needs the image absent), else
//! what the step's undo puts back, else, for a step the planner marks
//! undoable without an undo, its own value (the step changes nothing that
//! needs putting back: it acts on what the plan created).

use std::collections::BTreeMap;

use crate::error::BackendErrorKind;
use crate::model::{Bytes, CacheEntry, GiB, Host, ImageId, SnapshotId, Timestamp, VolumeId, VolumeStatus};
use crate::plan::{Action, DbWrite, Expect, Step, VolumeUpdate};
use crate::rbd::{ImageSpec, RbdOp, SnapSpec};

use super::leftover::{ImageState, Leftover, RowState, SnapshotState};
use super::Backends;

/// A column of a volume row the flow writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Column {
    Status,
    Size,
    Bootable,
    Host,
}

/// One piece of state an action writes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    /// Where an image is.
    Image(ImageSpec),
    /// A visible snapshot and its protection.
    Snap(SnapSpec),
    /// An image's size.
    Size(ImageSpec),
    /// One feature bit of an image.
    Feature(ImageSpec, u64),
    /// Whether an image is linked to a parent snapshot.
    Parent(ImageSpec),
    /// A volume row's existence.
    Row(VolumeId),
    /// A column of a volume row.
    Column(VolumeId, Column),
    /// A snapshot row's status.
    SnapshotStatus(SnapshotId),
    /// An image-cache row, `last_used` aside.
    Cache(VolumeId),
    /// An image-cache row's `last_used`.
    LastUsed(VolumeId),
    /// A volume's glance metadata.
    Glance(VolumeId),
    /// Whether the deletion of a cached volume was asked for.
    Evicted(VolumeId),
}

impl Key {
    /// The image a per-image key belongs to.
    fn image(&self) -> Option<ImageSpec> {
        match self {
            Self::Snap(s) => Some(s.image_spec()),
            Self::Size(i) | Self::Feature(i, _) | Self::Parent(i) => Some(i.clone()),
            _ => None,
        }
    }

    /// The same key for the image renamed to `to`.
    fn renamed(&self, to: &ImageSpec) -> Self {
        match self {
            Self::Snap(s) => Self::Snap(to.snap(s.snap.clone())),
            Self::Size(_) => Self::Size(to.clone()),
            Self::Feature(_, bit) => Self::Feature(to.clone(), *bit),
            Self::Parent(_) => Self::Parent(to.clone()),
            other => other.clone(),
        }
    }
}

/// A key's value. `Unknown`: it could not be read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Val {
    Image(ImageState),
    Snap(SnapshotState),
    Bytes(Bytes),
    Flag(bool),
    Row(RowState),
    Status(VolumeStatus),
    Gib(GiB),
    /// A volume's `host` column (`None`: NULL).
    Host(Option<Host>),
    Text(String),
    /// A cache row with `last_used` set to the epoch (kept in
    /// [`Key::LastUsed`]).
    Cache(Option<CacheEntry>),
    Time(Timestamp),
    Meta(Option<BTreeMap<String, String>>),
    Unknown,
}

/// What reading back a failed call showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Observed {
    /// Its effect is in place.
    Applied,
    /// Nothing changed.
    Nothing,
    /// Something else, or it could not be read.
    Unknown,
}

/// Why an undo action is not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Skip {
    /// Every key it writes already has its value.
    InEffect,
    /// What it changes in place is gone.
    Moot,
}

fn without_last_used(e: &CacheEntry) -> CacheEntry {
    CacheEntry { last_used: Timestamp::EPOCH, ..e.clone() }
}

fn bits(features: u64) -> impl Iterator<Item = u64> {
    (0..64).map(|i| 1u64 << i).filter(move |b| features & b != 0)
}

/// The state before the plan and now of every key the plan's actions and
/// their undo wrote (see the [module docs](self)).
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    pre: BTreeMap<Key, Val>,
    now: BTreeMap<Key, Val>,
    /// The call that left a key's value before or now unknown.
    blame: BTreeMap<Key, Action>,
}

impl Tracker {
    /// The tracked keys of an image (its snapshots, size, features, parent).
    fn image_keys(&self, image: &ImageSpec) -> Vec<Key> {
        self.now.keys().filter(|k| k.image().as_ref() == Some(image)).cloned().collect()
    }

    /// A new image's per-image keys, as far as they are tracked: no
    /// snapshots, and what the creating call says of the rest.
    fn fresh_image(
        &self,
        image: &ImageSpec,
        size: Option<Bytes>,
        features: Option<u64>,
        parent: bool,
    ) -> Vec<(Key, Val)> {
        self.image_keys(image)
            .into_iter()
            .map(|k| {
                let v = match &k {
                    Key::Snap(_) => Val::Snap(SnapshotState::Absent),
                    Key::Size(_) => size.map_or(Val::Unknown, Val::Bytes),
                    Key::Feature(_, bit) => features.map_or(Val::Unknown, |f| Val::Flag(f & bit != 0)),
                    _ => Val::Flag(parent),
                };
                (k, v)
            })
            .collect()
    }

    /// The values `action` leaves, given what is known now.
    pub(crate) fn post(&self, action: &Action) -> Vec<(Key, Val)> {
        match action {
            Action::Rbd { op } => self.post_rbd(op),
            Action::DownloadImage { .. } => Vec::new(),
            Action::Db { write } => self.post_db(write),
        }
    }

    fn post_rbd(&self, op: &RbdOp) -> Vec<(Key, Val)> {
        let place = |i: &ImageSpec, s| (Key::Image(i.clone()), Val::Image(s));
        let snap = |s: &SnapSpec, v| vec![(Key::Snap(s.clone()), Val::Snap(v))];
        let created = |image: &ImageSpec, rest: Vec<(Key, Val)>| {
            let mut out = vec![place(image, ImageState::InPool)];
            out.extend(rest);
            out
        };
        match op {
            RbdOp::Create { image, size, features, .. } => {
                created(image, self.fresh_image(image, Some(*size), Some(*features), false))
            }
            RbdOp::Import { image, size, .. } => created(image, self.fresh_image(image, Some(*size), None, false)),
            RbdOp::Clone { child, .. } => created(child, self.fresh_image(child, None, None, true)),
            RbdOp::Copy { dst, .. } => created(dst, self.fresh_image(dst, None, None, false)),
            RbdOp::CreateSnap { snap: s } => snap(s, SnapshotState::Unprotected),
            RbdOp::ProtectSnap { snap: s } => snap(s, SnapshotState::Protected),
            RbdOp::UnprotectSnap { snap: s } => snap(s, SnapshotState::Unprotected),
            RbdOp::RemoveSnap { snap: s } => snap(s, SnapshotState::Absent),
            RbdOp::Flatten { image } => vec![(Key::Parent(image.clone()), Val::Flag(false))],
            RbdOp::Resize { image, size } => vec![(Key::Size(image.clone()), Val::Bytes(*size))],
            RbdOp::Remove { image } | RbdOp::TrashRemove { image } => vec![place(image, ImageState::Absent)],
            RbdOp::TrashMove { image, .. } => vec![place(image, ImageState::InTrash)],
            RbdOp::Rename { image, new_name } => {
                let to = ImageSpec::new(image.pool.clone(), new_name.clone());
                let mut out = vec![place(image, ImageState::Absent), place(&to, ImageState::InPool)];
                // The image keeps its snapshots and the rest under its new
                // name; what was tracked under the new name before is not
                // known any more.
                let moved: Vec<(Key, Val)> =
                    self.image_keys(image).into_iter().map(|k| (k.renamed(&to), self.now[&k].clone())).collect();
                for k in self.image_keys(&to) {
                    if !moved.iter().any(|(m, _)| *m == k) {
                        out.push((k, Val::Unknown));
                    }
                }
                out.extend(moved);
                out
            }
            RbdOp::UpdateFeatures { image, features, enabled } => {
                bits(*features).map(|b| (Key::Feature(image.clone(), b), Val::Flag(*enabled))).collect()
            }
        }
    }

    fn post_db(&self, write: &DbWrite) -> Vec<(Key, Val)> {
        let columns = |id: &VolumeId, set: &VolumeUpdate| {
            let mut out = Vec::new();
            if let Some(s) = &set.status {
                out.push((Key::Column(id.clone(), Column::Status), Val::Status(s.clone())));
            }
            if let Some(s) = set.size {
                out.push((Key::Column(id.clone(), Column::Size), Val::Gib(s)));
            }
            if let Some(b) = set.bootable {
                out.push((Key::Column(id.clone(), Column::Bootable), Val::Flag(b)));
            }
            if let Some(h) = &set.host {
                out.push((Key::Column(id.clone(), Column::Host), Val::Host(Some(h.clone()))));
            }
            out
        };
        match write {
            DbWrite::UpdateVolume { volume_id, set, .. } => columns(volume_id, set),
            DbWrite::CreateVolume { volume } => {
                let mut out = vec![(Key::Row(volume.id.clone()), Val::Row(RowState::Visible))];
                let set = VolumeUpdate {
                    status: Some(volume.status.clone()),
                    size: Some(volume.size),
                    bootable: Some(volume.bootable),
                    host: volume.host.clone(),
                };
                out.extend(columns(&volume.id, &set));
                out
            }
            DbWrite::DeleteVolumeRow { volume_id } => {
                vec![(Key::Row(volume_id.clone()), Val::Row(RowState::SoftDeleted))]
            }
            DbWrite::CreateCacheEntry { entry } => vec![
                (Key::Cache(entry.volume_id.clone()), Val::Cache(Some(without_last_used(entry)))),
                (Key::LastUsed(entry.volume_id.clone()), Val::Time(entry.last_used)),
            ],
            DbWrite::DeleteCacheEntry { volume_id } => vec![(Key::Cache(volume_id.clone()), Val::Cache(None))],
            DbWrite::TouchCacheEntry { volume_id, last_used, .. } => {
                // Touching a row that is not there changes nothing.
                if self.now.get(&Key::Cache(volume_id.clone())) == Some(&Val::Cache(None)) {
                    Vec::new()
                } else {
                    vec![(Key::LastUsed(volume_id.clone()), Val::Time(*last_used))]
                }
            }
            DbWrite::EvictCacheEntry { entry } => vec![
                (Key::Cache(entry.volume_id.clone()), Val::Cache(None)),
                (Key::Evicted(entry.volume_id.clone()), Val::Flag(true)),
            ],
            DbWrite::SetGlanceMetadata { volume_id, metadata } => {
                let key = Key::Glance(volume_id.clone());
                let merged = match self.now.get(&key) {
                    Some(Val::Meta(current)) => {
                        let mut m = current.clone().unwrap_or_default();
                        m.extend(metadata.clone());
                        Val::Meta(Some(m))
                    }
                    _ => Val::Unknown,
                };
                vec![(key, merged)]
            }
            DbWrite::DeleteGlanceMetadata { volume_id } => vec![(Key::Glance(volume_id.clone()), Val::Meta(None))],
            DbWrite::RestoreGlanceMetadata { volume_id, metadata } => {
                vec![(Key::Glance(volume_id.clone()), Val::Meta((!metadata.is_empty()).then(|| metadata.clone())))]
            }
            DbWrite::UpdateSnapshot { snapshot_id, status, .. } => {
                vec![(Key::SnapshotStatus(snapshot_id.clone()), Val::Text(status.clone()))]
            }
        }
    }

    /// What `key` must be for `action` to succeed, when the call says.
    fn needed(action: &Action, key: &Key) -> Option<Val> {
        let image = |state| Some(Val::Image(state));
        match (action, key) {
            (Action::Rbd { op }, Key::Image(i)) => match op {
                RbdOp::Create { image: c, .. } | RbdOp::Import { image: c, .. } if c == i => image(ImageState::Absent),
                RbdOp::Clone { child: c, .. } | RbdOp::Copy { dst: c, .. } if c == i => image(ImageState::Absent),
                RbdOp::Remove { image: r } | RbdOp::TrashMove { image: r, .. } if r == i => image(ImageState::InPool),
                RbdOp::TrashRemove { image: r } if r == i => image(ImageState::InTrash),
                RbdOp::Rename { image: from, .. } if from == i => image(ImageState::InPool),
                RbdOp::Rename { .. } => image(ImageState::Absent),
                _ => None,
            },
            (Action::Rbd { op }, Key::Snap(_)) => Some(Val::Snap(match op {
                RbdOp::CreateSnap { .. } => SnapshotState::Absent,
                RbdOp::ProtectSnap { .. } | RbdOp::RemoveSnap { .. } => SnapshotState::Unprotected,
                RbdOp::UnprotectSnap { .. } => SnapshotState::Protected,
                _ => return None,
            })),
            (Action::Rbd { op: RbdOp::Flatten { .. } }, Key::Parent(_)) => Some(Val::Flag(true)),
            (Action::Db { write: DbWrite::CreateVolume { .. } }, Key::Row(_)) => Some(Val::Row(RowState::Absent)),
            (Action::Db { write: DbWrite::DeleteVolumeRow { .. } }, Key::Row(_)) => Some(Val::Row(RowState::Visible)),
            (Action::Db { write: DbWrite::EvictCacheEntry { entry } }, key) => match key {
                Key::Cache(_) => Some(Val::Cache(Some(without_last_used(entry)))),
                Key::LastUsed(_) => Some(Val::Time(entry.last_used)),
                Key::Evicted(_) => Some(Val::Flag(false)),
                _ => None,
            },
            _ => None,
        }
    }

    /// Registers the keys `action` writes that nothing wrote before, with
    /// their value before it (see the [module docs](self)); `step` is the
    /// plan's step when `action` is one.
    pub(crate) fn touch(&mut self, action: &Action, step: Option<&Step>) {
        let mut keys = self.post(action);
        // An eviction names the whole row it removes: its `last_used` is
        // known too, although the eviction does not write it.
        if let Action::Db { write: DbWrite::EvictCacheEntry { entry } } = action {
            keys.push((Key::LastUsed(entry.volume_id.clone()), Val::Time(entry.last_used)));
        }
        for (key, after) in keys {
            if self.now.contains_key(&key) {
                continue;
            }
            let from_undo = || {
                let undo = step.map_or(&[][..], |s| &s.undo[..]);
                undo.iter().flat_map(|u| self.post(u)).filter(|(k, _)| *k == key).map(|(_, v)| v).last()
            };
            let unchanged = step.is_some_and(|s| s.undoable && s.expect == Expect::Ok);
            let before =
                Self::needed(action, &key).or_else(from_undo).unwrap_or(if unchanged { after } else { Val::Unknown });
            if before == Val::Unknown {
                self.blame.insert(key.clone(), action.clone());
            }
            self.pre.insert(key.clone(), before.clone());
            self.now.insert(key, before);
        }
    }

    /// Registers the keys `action` writes that nothing wrote before, with
    /// the values read back now as their values before the plan: for a
    /// call the plan expected to fail, which therefore says nothing about
    /// the state before it (see [`observe`]).
    pub(crate) async fn learn(&mut self, action: &Action, b: Backends<'_>, image_hint: Option<&ImageId>) {
        for (key, _) in primary(action, self.post(action)) {
            if self.now.contains_key(&key) {
                continue;
            }
            let value = read(&key, b, self, image_hint).await;
            if value == Val::Unknown {
                self.blame.insert(key.clone(), action.clone());
            }
            self.pre.insert(key.clone(), value.clone());
            self.now.insert(key, value);
        }
    }

    /// Records that `action` took effect.
    pub(crate) fn apply(&mut self, action: &Action) {
        for (key, value) in self.post(action) {
            self.set(key, value, action);
        }
    }

    /// Records a value read back (or made unknown) by `action`.
    pub(crate) fn set(&mut self, key: Key, value: Val, action: &Action) {
        if value == Val::Unknown || !self.pre.contains_key(&key) {
            self.blame.insert(key.clone(), action.clone());
        }
        self.pre.entry(key.clone()).or_insert(Val::Unknown);
        self.now.insert(key, value);
    }

    /// The current value of a key, when tracked.
    pub(crate) fn now(&self, key: &Key) -> Option<&Val> {
        self.now.get(key)
    }

    /// Whether an undo action need not run, and why.
    pub(crate) fn skip(&self, action: &Action) -> Option<Skip> {
        let post = self.post(action);
        if post.iter().all(|(k, v)| *v != Val::Unknown && self.now.get(k) == Some(v)) {
            return Some(Skip::InEffect);
        }
        let gone = |image: &ImageSpec| {
            matches!(
                self.now.get(&Key::Image(image.clone())),
                Some(Val::Image(ImageState::Absent | ImageState::InTrash))
            )
        };
        let snap_gone = |s: &SnapSpec| {
            gone(&s.image_spec()) || self.now.get(&Key::Snap(s.clone())) == Some(&Val::Snap(SnapshotState::Absent))
        };
        let row_gone = |id: &VolumeId| {
            matches!(self.now.get(&Key::Row(id.clone())), Some(Val::Row(RowState::Absent | RowState::SoftDeleted)))
        };
        let moot = match action {
            Action::Rbd { op } => match op {
                RbdOp::ProtectSnap { snap } | RbdOp::UnprotectSnap { snap } => snap_gone(snap),
                RbdOp::CreateSnap { snap } | RbdOp::RemoveSnap { snap } => gone(&snap.image_spec()),
                RbdOp::Flatten { image }
                | RbdOp::Resize { image, .. }
                | RbdOp::UpdateFeatures { image, .. }
                | RbdOp::Remove { image }
                | RbdOp::Rename { image, .. } => gone(image),
                _ => false,
            },
            Action::Db { write: DbWrite::UpdateVolume { volume_id, .. } } => row_gone(volume_id),
            Action::Db { write: DbWrite::DeleteVolumeRow { volume_id } } => {
                self.now.get(&Key::Row(volume_id.clone())) == Some(&Val::Row(RowState::Absent))
            }
            _ => false,
        };
        moot.then_some(Skip::Moot)
    }

    /// The image id whose cache rows hold `volume_id`'s row, as far as the
    /// tracked rows tell.
    fn cached_image(&self, volume_id: &VolumeId) -> Option<ImageId> {
        let key = Key::Cache(volume_id.clone());
        [self.now.get(&key), self.pre.get(&key)].into_iter().flatten().find_map(|v| match v {
            Val::Cache(Some(e)) => Some(e.image_id.clone()),
            _ => None,
        })
    }

    /// What differs from before the plan, key by key. `allowed` is the
    /// status key of what was being created when it was marked `error`
    /// (upstream's own write on failure, not a leftover).
    pub(crate) fn leftovers(&self, allowed: Option<&Key>) -> Vec<Leftover> {
        let both = |key: Key, want: Val| match (self.pre.get(&key), self.now.get(&key)) {
            (None, None) => true,
            (Some(a), Some(b)) => *a == want && *b == want,
            _ => false,
        };
        let in_pool = |i: &ImageSpec| both(Key::Image(i.clone()), Val::Image(ImageState::InPool));
        let visible = |id: &VolumeId| both(Key::Row(id.clone()), Val::Row(RowState::Visible));
        let mut out = Vec::new();
        let mut unknown: Vec<Action> = Vec::new();
        let mut columns: BTreeMap<VolumeId, (VolumeUpdate, VolumeUpdate)> = BTreeMap::new();
        let mut features: BTreeMap<ImageSpec, (u64, u64)> = BTreeMap::new();
        for (key, before) in &self.pre {
            let now = &self.now[key];
            if before == now {
                continue;
            }
            // Per-image keys only for an image in its pool before and now
            // (an image created or removed is one leftover).
            if let Some(image) = key.image() {
                if !in_pool(&image) {
                    continue;
                }
            }
            let error = match now {
                Val::Status(s) => *s == VolumeStatus::Error,
                Val::Text(s) => s == "error",
                _ => false,
            };
            if error && Some(key) == allowed {
                continue;
            }
            if *before == Val::Unknown || *now == Val::Unknown {
                // A shrink that could not be undone has a known effect.
                if let (Key::Size(image), Val::Unknown, Val::Bytes(now)) = (key, before, now) {
                    out.push(Leftover::ImageSize { image: image.clone(), before: None, now: *now });
                } else if let Some(action) = self.blame.get(key) {
                    if !unknown.contains(action) {
                        unknown.push(action.clone());
                    }
                }
                continue;
            }
            match (key, before, now) {
                (Key::Image(image), Val::Image(b), Val::Image(n)) => {
                    out.push(Leftover::Image { image: image.clone(), before: *b, now: *n });
                }
                (Key::Snap(snap), Val::Snap(b), Val::Snap(n)) => {
                    out.push(Leftover::Snapshot { snap: snap.clone(), before: *b, now: *n });
                }
                (Key::Size(image), Val::Bytes(b), Val::Bytes(n)) => {
                    out.push(Leftover::ImageSize { image: image.clone(), before: Some(*b), now: *n });
                }
                (Key::Feature(image, bit), _, Val::Flag(on)) => {
                    let e = features.entry(image.clone()).or_default();
                    if *on {
                        e.0 |= bit;
                    } else {
                        e.1 |= bit;
                    }
                }
                (Key::Parent(image), Val::Flag(true), Val::Flag(false)) => {
                    out.push(Leftover::Flattened { image: image.clone() });
                }
                // Soft-deleting a row the plan inserted is Cinder's removal.
                (Key::Row(_), Val::Row(RowState::Absent), Val::Row(RowState::SoftDeleted)) => {}
                (Key::Row(id), Val::Row(b), Val::Row(n)) => {
                    out.push(Leftover::VolumeRow { volume_id: id.clone(), before: *b, now: *n });
                }
                (Key::Column(id, column), b, n) => {
                    if !visible(id) {
                        continue;
                    }
                    let (cb, cn) = columns.entry(id.clone()).or_default();
                    for (set, v) in [(cb, b), (cn, n)] {
                        match (column, v) {
                            (Column::Status, Val::Status(s)) => set.status = Some(s.clone()),
                            (Column::Size, Val::Gib(s)) => set.size = Some(*s),
                            (Column::Bootable, Val::Flag(f)) => set.bootable = Some(*f),
                            (Column::Host, Val::Host(h)) => set.host.clone_from(h),
                            _ => {}
                        }
                    }
                }
                (Key::SnapshotStatus(id), Val::Text(b), Val::Text(n)) => {
                    out.push(Leftover::SnapshotStatus { snapshot_id: id.clone(), before: b.clone(), now: n.clone() });
                }
                (Key::Cache(id), Val::Cache(b), Val::Cache(n)) => {
                    let used = |when: &BTreeMap<Key, Val>, e: &Option<CacheEntry>| {
                        e.clone().map(|mut e| {
                            if let Some(Val::Time(t)) = when.get(&Key::LastUsed(id.clone())) {
                                e.last_used = *t;
                            }
                            e
                        })
                    };
                    out.push(Leftover::CacheEntry {
                        volume_id: id.clone(),
                        before: used(&self.pre, b),
                        now: used(&self.now, n),
                    });
                }
                (Key::LastUsed(id), Val::Time(b), Val::Time(n)) => {
                    let present = |v: Option<&Val>| v.is_none_or(|v| matches!(v, Val::Cache(Some(_))));
                    let cache = Key::Cache(id.clone());
                    let same_row = self.pre.get(&cache) == self.now.get(&cache);
                    if same_row && present(self.pre.get(&cache)) && present(self.now.get(&cache)) {
                        out.push(Leftover::CacheEntryUsed { volume_id: id.clone(), before: *b, now: *n });
                    }
                }
                (Key::Glance(id), Val::Meta(b), Val::Meta(n)) => {
                    out.push(Leftover::GlanceMetadata { volume_id: id.clone(), before: b.clone(), now: n.clone() });
                }
                (Key::Evicted(id), Val::Flag(false), Val::Flag(true)) => {
                    out.push(Leftover::EvictionRequested { volume_id: id.clone() });
                }
                // Values that no action writes in this combination.
                _ => {
                    if let Some(action) = self.blame.get(key) {
                        unknown.push(action.clone());
                    }
                }
            }
        }
        for (image, (enabled, disabled)) in features {
            out.push(Leftover::ImageFeatures { image, enabled, disabled });
        }
        for (volume_id, (before, now)) in columns {
            if before != now {
                out.push(Leftover::VolumeColumns { volume_id, before, now });
            }
        }
        out.extend(unknown.into_iter().map(|action| Leftover::Unknown { action }));
        out
    }
}

/// The status key of what a plan creates (see [`Tracker::leftovers`]).
pub(crate) fn status_key(write: &DbWrite) -> Option<Key> {
    match write {
        DbWrite::UpdateVolume { volume_id, .. } => Some(Key::Column(volume_id.clone(), Column::Status)),
        DbWrite::UpdateSnapshot { snapshot_id, .. } => Some(Key::SnapshotStatus(snapshot_id.clone())),
        _ => None,
    }
}

/// Reads a key back through the ports; `Unknown` when the ports cannot
/// tell (glance metadata and eviction requests have no read, a read failed).
pub(crate) async fn read(key: &Key, b: Backends<'_>, tracker: &Tracker, image_hint: Option<&ImageId>) -> Val {
    let image_info = |image: ImageSpec| async move {
        match b.driver.image_info(&image).await {
            Ok(info) => Some(info),
            // No pool, no image.
            Err(e) if e.kind == BackendErrorKind::PoolNotFound => Some(None),
            Err(_) => None,
        }
    };
    let cache_row = |id: VolumeId| async move {
        let image = tracker.cached_image(&id).or_else(|| image_hint.cloned())?;
        let rows = b.db.cache_entries_of_image(&image).await.ok()?;
        Some(rows.into_iter().find(|e| e.volume_id == id))
    };
    match key {
        Key::Image(image) => match image_info(image.clone()).await {
            Some(None) => Val::Image(ImageState::Absent),
            Some(Some(i)) if i.in_trash => Val::Image(ImageState::InTrash),
            Some(Some(_)) => Val::Image(ImageState::InPool),
            None => Val::Unknown,
        },
        Key::Snap(snap) => match image_info(snap.image_spec()).await {
            Some(Some(i)) if !i.in_trash => Val::Snap(match i.image.snap(&snap.snap) {
                None => SnapshotState::Absent,
                Some(s) if s.protected => SnapshotState::Protected,
                Some(_) => SnapshotState::Unprotected,
            }),
            Some(_) => Val::Snap(SnapshotState::Absent),
            None => Val::Unknown,
        },
        Key::Size(image) | Key::Feature(image, _) | Key::Parent(image) => match image_info(image.clone()).await {
            Some(Some(i)) if !i.in_trash => match key {
                Key::Size(_) => Val::Bytes(i.image.size),
                Key::Feature(_, bit) => Val::Flag(i.image.features & bit != 0),
                _ => Val::Flag(i.image.parent.is_some()),
            },
            _ => Val::Unknown,
        },
        Key::Row(id) => match b.db.volume(id).await {
            Ok(Some(_)) => Val::Row(RowState::Visible),
            // The port shows visible rows only: a row that was there is
            // soft-deleted now (Cinder never removes one).
            Ok(None) => match tracker.now(key) {
                Some(Val::Row(RowState::Visible | RowState::SoftDeleted)) => Val::Row(RowState::SoftDeleted),
                _ => Val::Row(RowState::Absent),
            },
            Err(_) => Val::Unknown,
        },
        Key::Column(id, column) => match b.db.volume(id).await {
            Ok(Some(v)) => match column {
                Column::Status => Val::Status(v.status.clone()),
                Column::Size => Val::Gib(v.size),
                Column::Bootable => Val::Flag(v.bootable),
                Column::Host => Val::Host(v.host.clone()),
            },
            _ => Val::Unknown,
        },
        Key::SnapshotStatus(id) => match b.db.snapshot(id).await {
            Ok(Some(s)) => Val::Text(s.status),
            _ => Val::Unknown,
        },
        Key::Cache(id) => match cache_row(id.clone()).await {
            Some(row) => Val::Cache(row.as_ref().map(without_last_used)),
            None => Val::Unknown,
        },
        Key::LastUsed(id) => match cache_row(id.clone()).await {
            Some(Some(row)) => Val::Time(row.last_used),
            _ => Val::Unknown,
        },
        // A cache row still there was not evicted; a row gone may or may
        // not have had its volume's deletion asked for.
        Key::Evicted(id) => match cache_row(id.clone()).await {
            Some(Some(_)) => Val::Flag(false),
            _ => Val::Unknown,
        },
        Key::Glance(_) => Val::Unknown,
    }
}

/// The keys that tell whether `action` took effect: for a call that
/// creates or renames an image, where the images are (the rest follows).
fn primary(action: &Action, mut post: Vec<(Key, Val)>) -> Vec<(Key, Val)> {
    if matches!(
        action,
        Action::Rbd {
            op: RbdOp::Create { .. }
                | RbdOp::Import { .. }
                | RbdOp::Clone { .. }
                | RbdOp::Copy { .. }
                | RbdOp::Rename { .. }
        }
    ) {
        post.retain(|(k, _)| matches!(k, Key::Image(_)));
    }
    post
}

/// Reads back what a failed `action` did and records it.
pub(crate) async fn observe(
    action: &Action,
    b: Backends<'_>,
    tracker: &mut Tracker,
    image_hint: Option<&ImageId>,
) -> Observed {
    let post = primary(action, tracker.post(action));
    if post.is_empty() {
        return Observed::Nothing;
    }
    // Cache rows are read by image: the row's own when the call names it.
    let own_image = match action {
        Action::Db { write: DbWrite::CreateCacheEntry { entry } | DbWrite::EvictCacheEntry { entry } } => {
            Some(&entry.image_id)
        }
        _ => None,
    };
    let image_hint = own_image.or(image_hint);
    let mut seen = Vec::with_capacity(post.len());
    for (key, _) in &post {
        seen.push(read(key, b, tracker, image_hint).await);
    }
    let known = |v: &Val| *v != Val::Unknown;
    // Nothing first: a call whose effect equals what was there changed
    // nothing either way.
    if post.iter().zip(&seen).all(|((k, _), v)| known(v) && tracker.now(k) == Some(v)) {
        return Observed::Nothing;
    }
    if post.iter().zip(&seen).all(|((_, after), v)| known(v) && v == after) {
        tracker.apply(action);
        return Observed::Applied;
    }
    for ((key, _), value) in post.into_iter().zip(seen) {
        tracker.set(key, value, action);
    }
    Observed::Unknown
}
