//! Cinder's database as a pure table model: the rows the flow reads and
//! writes, the rules of every [`DbWrite`], and the undo each write returns.
//!
//! This is to Cinder's database what [`crate::rbd::Cluster`] is to librbd,
//! and it is used the same two ways:
//!
//! * **complete** ([`Tables::new`]): every row is here; a row that is not
//!   here does not exist. [`MemoryVolumeDb`](crate::memory::MemoryVolumeDb)
//!   keeps its rows in one.
//! * **partial** ([`Tables::over`]): a view over the [`Facts`] the planner
//!   was given, with the plan's own writes on top. A row the facts do not
//!   mention is unknown, and asking for it answers which [`Need`] would
//!   tell ([`TableError::Unknown`]). The facts are read in place, never
//!   copied (a decision may read thousands of rows).
//!
//! Either way a write follows the same rules, so what the planner predicts
//! a write does is what the in-memory backend does.
//!
//! ```
//! use cinder_flow::model::{GiB, Volume, VolumeStatus};
//! use cinder_flow::plan::{DbWrite, VolumeUpdate};
//! use cinder_flow::tables::Tables;
//!
//! let mut db = Tables::new();
//! let mut row = Volume::new("v1", "project-1", GiB(1));
//! row.status = VolumeStatus::Creating;
//! db.insert_volume(row);
//! let set = VolumeUpdate { status: Some(VolumeStatus::Available), ..Default::default() };
//! let write = DbWrite::UpdateVolume { volume_id: "v1".into(), set, previous: VolumeUpdate::default() };
//! let applied = db.apply(&write).unwrap();
//! // The undo puts back the status the row had.
//! for undo in &applied.undo {
//!     let _ = db.apply(undo).unwrap();
//! }
//! assert_eq!(db.volume(&"v1".into()).unwrap().unwrap().status, VolumeStatus::Creating);
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::facts::{CacheLocation, Facts, Need};
use crate::model::{CacheEntry, ImageId, Snapshot, SnapshotId, Volume, VolumeId};
use crate::plan::{DbWrite, VolumeUpdate};

/// Why a query or a write could not be answered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// A partial view does not know the row; this fact would tell.
    #[error("not known yet: {0}")]
    Unknown(Need),
    /// The row the write changes does not exist (or is soft-deleted).
    #[error("{table} row {id} does not exist")]
    NotFound {
        /// The table (`volumes`, `snapshots`).
        table: &'static str,
        /// The row's id.
        id: String,
    },
    /// The row the write inserts exists already (soft-deleted rows
    /// included: the id is the primary key).
    #[error("{table} row {id} exists already")]
    AlreadyExists {
        /// The table.
        table: &'static str,
        /// The row's id.
        id: String,
    },
}

/// What a write did: the writes that undo it, in order, and whether it can
/// be undone at all.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct Applied {
    /// Writes that put back what the write changed (empty when it changed
    /// nothing, or when it cannot be undone).
    pub undo: Vec<DbWrite>,
    /// `false` when what the write changed cannot be put back (a row
    /// soft-deleted, a cache entry evicted: its volume's deletion was asked
    /// for).
    pub undoable: bool,
}

impl Applied {
    fn undo(undo: DbWrite) -> Self {
        Self { undo: vec![undo], undoable: true }
    }

    fn nothing() -> Self {
        Self { undo: Vec::new(), undoable: true }
    }

    fn lost() -> Self {
        Self { undo: Vec::new(), undoable: false }
    }
}

/// A volume row and whether it is soft-deleted (`deleted = 1`: invisible to
/// every query, but its id stays taken).
#[derive(Clone, Debug, PartialEq, Eq)]
struct VolumeRow {
    volume: Arc<Volume>,
    deleted: bool,
}

/// Cinder's tables, complete or as a partial view over facts (see the
/// [module docs](self)).
#[derive(Clone, Debug, Default)]
pub struct Tables<'f> {
    /// The facts a partial view reads rows from; `None` when complete.
    facts: Option<&'f Facts>,
    /// Rows held here: all of them when complete, the ones the plan wrote
    /// when partial. Hashed: a lookup costs the same whatever the size of
    /// the table (the keys are the caller's own ids, no adversary).
    volumes: FxHashMap<VolumeId, VolumeRow>,
    snapshots: BTreeMap<SnapshotId, Snapshot>,
    /// Image-cache rows by volume id (a partial view copies the facts'
    /// rows, which are few).
    cache: BTreeMap<VolumeId, CacheEntry>,
    /// `volume_glance_metadata` by volume. A partial view assumes a volume
    /// has none until the plan writes some (the flow writes metadata only
    /// on the volume it is creating).
    glance_metadata: BTreeMap<VolumeId, BTreeMap<String, String>>,
    /// Volumes whose deletion the image cache asked for, in order.
    evictions: Vec<VolumeId>,
}

impl Tables<'static> {
    /// Empty, complete tables.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<'f> Tables<'f> {
    /// A partial view over `facts`: rows come from the facts until a write
    /// changes them here.
    pub fn over(facts: &'f Facts) -> Self {
        let mut cache = BTreeMap::new();
        for e in facts.cache_by_image.values().chain(facts.cache_by_location.values()).flatten() {
            cache.insert(e.volume_id.clone(), e.clone());
        }
        Self { facts: Some(facts), cache, ..Self::default() }
    }

    /// Whether this is a partial view.
    pub fn is_partial(&self) -> bool {
        self.facts.is_some()
    }

    // ------------------------------------------------------------ loading

    /// Adds or replaces a volume row (visible).
    pub fn insert_volume(&mut self, volume: impl Into<Arc<Volume>>) {
        let volume = volume.into();
        self.volumes.insert(volume.id.clone(), VolumeRow { volume, deleted: false });
    }

    /// Adds or replaces a soft-deleted volume row.
    pub fn insert_deleted_volume(&mut self, volume: impl Into<Arc<Volume>>) {
        let volume = volume.into();
        self.volumes.insert(volume.id.clone(), VolumeRow { volume, deleted: true });
    }

    /// Adds or replaces a snapshot row.
    pub fn insert_snapshot(&mut self, snapshot: Snapshot) {
        self.snapshots.insert(snapshot.id.clone(), snapshot);
    }

    /// Adds or replaces an image-cache row.
    pub fn insert_cache_entry(&mut self, entry: CacheEntry) {
        self.cache.insert(entry.volume_id.clone(), entry);
    }

    // ------------------------------------------------------------ queries

    /// `objects.Volume.get_by_id`: the visible row, `None` when there is
    /// none.
    pub fn volume(&self, id: &VolumeId) -> Result<Option<&Arc<Volume>>, TableError> {
        if let Some(row) = self.volumes.get(id) {
            return Ok((!row.deleted).then_some(&row.volume));
        }
        match self.facts {
            None => Ok(None),
            Some(facts) => match facts.volumes.get(id) {
                Some(v) => Ok(v.as_ref()),
                None => Err(TableError::Unknown(Need::Volume { volume_id: id.clone() })),
            },
        }
    }

    /// Whether a row with this id exists, soft-deleted or not (`None`:
    /// a partial view cannot tell).
    fn volume_id_taken(&self, id: &VolumeId) -> Option<bool> {
        if self.volumes.contains_key(id) {
            return Some(true);
        }
        match self.facts {
            None => Some(false),
            // The facts hold visible rows only: a `None` row may still be a
            // soft-deleted one.
            Some(facts) => match facts.volumes.get(id) {
                Some(Some(_)) => Some(true),
                _ => None,
            },
        }
    }

    /// The visible volume rows, any order (complete tables; a partial view
    /// lists only the rows the plan wrote).
    pub fn visible_volumes(&self) -> impl Iterator<Item = &Arc<Volume>> {
        self.volumes.values().filter(|r| !r.deleted).map(|r| &r.volume)
    }

    /// Every volume row held here, with whether it is soft-deleted.
    pub fn all_volumes(&self) -> impl Iterator<Item = (&Arc<Volume>, bool)> {
        self.volumes.values().map(|r| (&r.volume, r.deleted))
    }

    /// `db.volume_get_all(filters={'id': ids, ...})` without the location
    /// filter: the visible rows among `ids`, in upstream's default order
    /// (`created_at` desc, then `id` desc).
    pub fn volumes_by_ids(&self, ids: &[&VolumeId]) -> Result<Vec<Arc<Volume>>, TableError> {
        let mut missing: Vec<VolumeId> = Vec::new();
        let mut rows = Vec::new();
        self.each_row(ids, |id, row| match row {
            Some(v) => rows.extend(v.cloned()),
            None => missing.push(id.clone()),
        });
        if !missing.is_empty() {
            missing.sort();
            return Err(TableError::Unknown(Need::Volumes { volume_ids: missing }));
        }
        rows.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
        Ok(rows)
    }

    /// The ids among `ids` known to have no visible row.
    pub fn absent_ids<'i>(&self, ids: &[&'i VolumeId]) -> Vec<&'i VolumeId> {
        let mut absent = Vec::new();
        self.each_row(ids, |id, row| {
            if let Some(None) = row {
                absent.push(id);
            }
        });
        absent
    }

    /// Calls `f` with each id and what is known of its visible row: `None`
    /// when a partial view does not know, `Some(None)` when there is none.
    fn each_row<'i>(&self, ids: &[&'i VolumeId], mut f: impl FnMut(&'i VolumeId, Option<Option<&Arc<Volume>>>)) {
        let held = |id: &VolumeId| self.volumes.get(id).map(|r| (!r.deleted).then_some(&r.volume));
        let Some(facts) = self.facts else {
            for &id in ids {
                f(id, Some(held(id).flatten()));
            }
            return;
        };
        let known = &facts.volumes;
        let sorted = ids.windows(2).all(|w| w[0] < w[1]);
        if !sorted || ids.len() < 16 || ids.len().saturating_mul(16) < known.len() {
            for &id in ids {
                f(id, held(id).or_else(|| known.get(id).map(Option::as_ref)));
            }
            return;
        }
        // Many sorted ids: one walk over the facts' rows instead of a
        // lookup per id.
        let mut walk = known.range::<VolumeId, _>(ids[0]..).peekable();
        for &id in ids {
            while walk.next_if(|(k, _)| *k < id).is_some() {}
            let fact = walk.next_if(|(k, _)| *k == id).map(|(_, v)| v.as_ref());
            f(id, if self.volumes.is_empty() { fact } else { held(id).or(fact) });
        }
    }

    /// Whether no volume row has been written (a partial view then answers
    /// exactly what its facts say).
    pub fn volumes_untouched(&self) -> bool {
        self.volumes.is_empty()
    }

    /// A snapshot row, `None` when there is none.
    pub fn snapshot(&self, id: &SnapshotId) -> Result<Option<&Snapshot>, TableError> {
        if let Some(s) = self.snapshots.get(id) {
            return Ok(Some(s));
        }
        match self.facts {
            None => Ok(None),
            Some(facts) => match facts.snapshots.get(id) {
                Some(s) => Ok(s.as_ref()),
                None => Err(TableError::Unknown(Need::Snapshot { snapshot_id: id.clone() })),
            },
        }
    }

    /// Every snapshot row held here.
    pub fn snapshots(&self) -> impl Iterator<Item = &Snapshot> {
        self.snapshots.values()
    }

    /// The snapshot rows of a volume, any order (what
    /// `volume_has_snapshots_filter` looks for when the volume API deletes a
    /// volume). The flows write no snapshot of another volume, so a partial
    /// view answers from its facts, with the plan's writes on top.
    pub fn snapshots_of_volume(&self, volume_id: &VolumeId) -> Result<Vec<Snapshot>, TableError> {
        let Some(facts) = self.facts else {
            return Ok(self.snapshots.values().filter(|s| &s.volume_id == volume_id).cloned().collect());
        };
        match facts.volume_snapshots.get(volume_id) {
            Some(rows) => Ok(rows.iter().map(|r| self.snapshots.get(&r.id).unwrap_or(r).clone()).collect()),
            None => Err(TableError::Unknown(Need::SnapshotsOfVolume { volume_id: volume_id.clone() })),
        }
    }

    /// Image-cache rows of an image (any host), most recently used first.
    pub fn cache_entries_of_image(&self, image_id: &ImageId) -> Result<Vec<CacheEntry>, TableError> {
        if let Some(facts) = self.facts {
            if !facts.cache_by_image.contains_key(image_id) {
                return Err(TableError::Unknown(Need::CacheEntriesOfImage { image_id: image_id.clone() }));
            }
        }
        let mut rows: Vec<CacheEntry> = self.cache.values().filter(|e| &e.image_id == image_id).cloned().collect();
        sort_mru(&mut rows);
        Ok(rows)
    }

    /// Image-cache rows at an exact location (any image), most recently
    /// used first (`image_volume_cache_get_all(host=...)`).
    pub fn cache_entries_at(&self, location: &CacheLocation) -> Result<Vec<CacheEntry>, TableError> {
        if let Some(facts) = self.facts {
            if !facts.cache_by_location.contains_key(location) {
                return Err(TableError::Unknown(Need::CacheEntriesAt { location: location.clone() }));
            }
        }
        let mut rows: Vec<CacheEntry> = self.cache.values().filter(|e| location.matches(e)).cloned().collect();
        sort_mru(&mut rows);
        Ok(rows)
    }

    /// `image_volume_cache_get_by_volume_id`: the image-cache row of a
    /// volume. A partial view holds every row of every cache answer in its
    /// facts, so the row of an entry the flow has read is known.
    pub fn cache_entry_of_volume(&self, volume_id: &VolumeId) -> Option<&CacheEntry> {
        self.cache.get(volume_id)
    }

    /// Every image-cache row held here, by volume id.
    pub fn cache_entries(&self) -> impl Iterator<Item = &CacheEntry> {
        self.cache.values()
    }

    /// The glance metadata of a volume (`None`: it has none).
    pub fn glance_metadata(&self, volume_id: &VolumeId) -> Option<&BTreeMap<String, String>> {
        self.glance_metadata.get(volume_id)
    }

    /// Whether the volume has glance metadata.
    pub fn has_glance_metadata(&self, volume_id: &VolumeId) -> bool {
        self.glance_metadata.contains_key(volume_id)
    }

    /// Every volume's glance metadata.
    pub fn all_glance_metadata(&self) -> &BTreeMap<VolumeId, BTreeMap<String, String>> {
        &self.glance_metadata
    }

    /// Volumes whose deletion the image cache asked for, in order.
    pub fn evictions(&self) -> &[VolumeId] {
        &self.evictions
    }

    // ------------------------------------------------------------- writes

    /// Performs a write and returns how to undo it. A write that fails
    /// changes nothing.
    ///
    /// The undo is computed from the rows as they were, not from the
    /// `previous` values a write carries (those are what the planner
    /// expected, and are not checked).
    pub fn apply(&mut self, write: &DbWrite) -> Result<Applied, TableError> {
        match write {
            DbWrite::UpdateVolume { volume_id, set, .. } => {
                let Some(current) = self.volume(volume_id)? else {
                    return Err(not_found("volumes", volume_id));
                };
                let mut row = Arc::clone(current);
                let before = columns(&row, set);
                let v = Arc::make_mut(&mut row);
                if let Some(s) = &set.status {
                    v.status = s.clone();
                }
                if let Some(s) = set.size {
                    v.size = s;
                }
                if let Some(b) = set.bootable {
                    v.bootable = b;
                }
                if let Some(h) = &set.host {
                    v.host = Some(h.clone());
                }
                self.insert_volume(row);
                Ok(Applied::undo(DbWrite::UpdateVolume {
                    volume_id: volume_id.clone(),
                    set: before,
                    previous: set.clone(),
                }))
            }
            DbWrite::CreateVolume { volume } => {
                // A partial view that cannot tell takes the id as free: new
                // rows get fresh ids (`Need::FreshVolumeIds`).
                if self.volume_id_taken(&volume.id) == Some(true) {
                    return Err(TableError::AlreadyExists { table: "volumes", id: volume.id.to_string() });
                }
                self.insert_volume(Arc::new((**volume).clone()));
                Ok(Applied::undo(DbWrite::DeleteVolumeRow { volume_id: volume.id.clone() }))
            }
            DbWrite::DeleteVolumeRow { volume_id } => {
                let Some(current) = self.volume(volume_id)? else {
                    return Err(not_found("volumes", volume_id));
                };
                let volume = Arc::clone(current);
                self.volumes.insert(volume_id.clone(), VolumeRow { volume, deleted: true });
                // Cinder has no undelete.
                Ok(Applied::lost())
            }
            DbWrite::CreateCacheEntry { entry } => {
                let old = self.cache.insert(entry.volume_id.clone(), entry.clone());
                Ok(match old {
                    None => Applied::undo(DbWrite::DeleteCacheEntry { volume_id: entry.volume_id.clone() }),
                    Some(old) => Applied::undo(DbWrite::CreateCacheEntry { entry: old }),
                })
            }
            DbWrite::DeleteCacheEntry { volume_id } => Ok(match self.cache.remove(volume_id) {
                Some(old) => Applied::undo(DbWrite::CreateCacheEntry { entry: old }),
                None => Applied::nothing(),
            }),
            DbWrite::TouchCacheEntry { volume_id, last_used, .. } => Ok(match self.cache.get_mut(volume_id) {
                Some(e) => {
                    let before = std::mem::replace(&mut e.last_used, *last_used);
                    Applied::undo(DbWrite::TouchCacheEntry {
                        volume_id: volume_id.clone(),
                        last_used: before,
                        previous: *last_used,
                    })
                }
                None => Applied::nothing(),
            }),
            DbWrite::EvictCacheEntry { entry } => {
                self.cache.remove(&entry.volume_id);
                self.evictions.push(entry.volume_id.clone());
                // The volume's deletion has been asked for.
                Ok(Applied::lost())
            }
            DbWrite::SetGlanceMetadata { volume_id, metadata } => {
                let before = self.glance_metadata.get(volume_id).cloned();
                self.glance_metadata.entry(volume_id.clone()).or_default().extend(metadata.clone());
                Ok(Applied::undo(restore_glance_metadata(volume_id, before)))
            }
            DbWrite::DeleteGlanceMetadata { volume_id } => Ok(match self.glance_metadata.remove(volume_id) {
                Some(before) => Applied::undo(restore_glance_metadata(volume_id, Some(before))),
                None => Applied::nothing(),
            }),
            DbWrite::RestoreGlanceMetadata { volume_id, metadata } => {
                let before = if metadata.is_empty() {
                    self.glance_metadata.remove(volume_id)
                } else {
                    self.glance_metadata.insert(volume_id.clone(), metadata.clone())
                };
                Ok(Applied::undo(restore_glance_metadata(volume_id, before)))
            }
            DbWrite::UpdateSnapshot { snapshot_id, status, .. } => {
                let Some(current) = self.snapshot(snapshot_id)? else {
                    return Err(TableError::NotFound { table: "snapshots", id: snapshot_id.to_string() });
                };
                let mut snap = current.clone();
                let before = std::mem::replace(&mut snap.status, status.clone());
                self.snapshots.insert(snapshot_id.clone(), snap);
                Ok(Applied::undo(DbWrite::UpdateSnapshot {
                    snapshot_id: snapshot_id.clone(),
                    status: before,
                    previous: status.clone(),
                }))
            }
        }
    }
}

fn not_found(table: &'static str, id: &VolumeId) -> TableError {
    TableError::NotFound { table, id: id.to_string() }
}

/// The columns `set` changes, as `row` has them.
fn columns(row: &Volume, set: &VolumeUpdate) -> VolumeUpdate {
    VolumeUpdate {
        status: set.status.as_ref().map(|_| row.status.clone()),
        size: set.size.map(|_| row.size),
        bootable: set.bootable.map(|_| row.bootable),
        // The plan moves only rows that have a host.
        host: set.host.as_ref().and(row.host.clone()),
    }
}

/// The write that gives a volume exactly the glance metadata it had.
fn restore_glance_metadata(volume_id: &VolumeId, before: Option<BTreeMap<String, String>>) -> DbWrite {
    match before {
        None => DbWrite::DeleteGlanceMetadata { volume_id: volume_id.clone() },
        Some(metadata) => DbWrite::RestoreGlanceMetadata { volume_id: volume_id.clone(), metadata },
    }
}

/// `ORDER BY last_used DESC`; ties by volume id for a stable order (SQL
/// leaves them unordered).
fn sort_mru(rows: &mut [CacheEntry]) {
    rows.sort_by(|a, b| b.last_used.cmp(&a.last_used).then_with(|| a.volume_id.cmp(&b.volume_id)));
}

/// The ids of `ids` without repeats, in order (what `IN (...)` selects).
pub(crate) fn unique_ids(ids: &[VolumeId]) -> Vec<&VolumeId> {
    if ids.windows(2).all(|w| w[0] < w[1]) {
        return ids.iter().collect();
    }
    let mut seen = BTreeSet::new();
    ids.iter().filter(|id| seen.insert(*id)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GiB, Timestamp, VolumeStatus};

    fn entry(image: &str, volume: &str, last_used: i64) -> CacheEntry {
        CacheEntry {
            image_id: image.into(),
            host: Some("hostA@ceph#ceph".into()),
            cluster_name: None,
            volume_id: volume.into(),
            size: GiB(1),
            image_updated_at: Timestamp::EPOCH,
            last_used: Timestamp::EPOCH.plus_seconds(last_used),
        }
    }

    fn undo_all(db: &mut Tables<'_>, applied: Applied) {
        for w in &applied.undo {
            let _ = db.apply(w).expect("undo applies");
        }
    }

    #[test]
    fn every_undoable_write_is_undone_exactly() {
        let mut db = Tables::new();
        let mut v1 = Volume::new("v1", "p1", GiB(1));
        v1.host = Some("hostA@ceph#ceph".into());
        db.insert_volume(v1);
        db.insert_snapshot(Snapshot {
            id: "s1".into(),
            volume_id: "v1".into(),
            volume_size: GiB(1),
            status: "creating".into(),
            project_id: "p1".into(),
            encryption_key_id: None,
        });
        db.insert_cache_entry(entry("img", "c1", 5));
        let meta = |k: &str| BTreeMap::from([(k.to_owned(), "x".to_owned())]);
        let _ = db.apply(&DbWrite::SetGlanceMetadata { volume_id: "v1".into(), metadata: meta("a") }).unwrap();
        let writes = [
            DbWrite::UpdateVolume {
                volume_id: "v1".into(),
                set: VolumeUpdate {
                    status: Some(VolumeStatus::Error),
                    size: Some(GiB(4)),
                    bootable: Some(true),
                    host: Some("hostB@ceph#ceph".into()),
                },
                previous: VolumeUpdate::default(),
            },
            DbWrite::CreateVolume { volume: Box::new(Volume::new("v2", "p1", GiB(2))) },
            DbWrite::CreateCacheEntry { entry: entry("img", "c2", 1) },
            DbWrite::CreateCacheEntry { entry: entry("other", "c1", 9) },
            DbWrite::DeleteCacheEntry { volume_id: "c1".into() },
            DbWrite::DeleteCacheEntry { volume_id: "nothing".into() },
            DbWrite::TouchCacheEntry {
                volume_id: "c1".into(),
                last_used: Timestamp::EPOCH.plus_seconds(99),
                previous: Timestamp::EPOCH,
            },
            DbWrite::SetGlanceMetadata { volume_id: "v1".into(), metadata: meta("b") },
            DbWrite::DeleteGlanceMetadata { volume_id: "v1".into() },
            DbWrite::RestoreGlanceMetadata { volume_id: "v1".into(), metadata: meta("z") },
            DbWrite::RestoreGlanceMetadata { volume_id: "v1".into(), metadata: BTreeMap::new() },
            DbWrite::UpdateSnapshot { snapshot_id: "s1".into(), status: "error".into(), previous: String::new() },
        ];
        for write in writes {
            let before = db.clone();
            let applied = db.apply(&write).unwrap();
            assert!(applied.undoable, "{write:?}");
            undo_all(&mut db, applied);
            assert_eq!(snapshot_of(&db), snapshot_of(&before), "{write:?} was not undone exactly");
        }
    }

    /// The comparable contents (an `FxHashMap` compares fine, but soft
    /// deletion of a created row must count as "as before" only when the
    /// row did not exist: compare visible rows and every table).
    fn snapshot_of(db: &Tables<'_>) -> impl PartialEq + std::fmt::Debug {
        let mut volumes: Vec<(Volume, bool)> = db.all_volumes().map(|(v, d)| ((**v).clone(), d)).collect();
        volumes.retain(|(_, deleted)| !deleted);
        volumes.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        (volumes, db.snapshots.clone(), db.cache.clone(), db.glance_metadata.clone(), db.evictions.clone())
    }

    #[test]
    fn writes_that_cannot_be_undone_say_so() {
        let mut db = Tables::new();
        db.insert_volume(Volume::new("v1", "p1", GiB(1)));
        db.insert_cache_entry(entry("img", "c1", 5));
        let deleted = db.apply(&DbWrite::DeleteVolumeRow { volume_id: "v1".into() }).unwrap();
        assert!(!deleted.undoable);
        assert_eq!(db.volume(&"v1".into()), Ok(None));
        let evicted = db.apply(&DbWrite::EvictCacheEntry { entry: entry("img", "c1", 5) }).unwrap();
        assert!(!evicted.undoable);
        assert_eq!(db.evictions(), ["c1".into()]);
    }

    #[test]
    fn missing_and_duplicate_rows_are_errors_that_change_nothing() {
        let mut db = Tables::new();
        db.insert_deleted_volume(Volume::new("gone", "p1", GiB(1)));
        let update = DbWrite::UpdateVolume {
            volume_id: "gone".into(),
            set: VolumeUpdate { status: Some(VolumeStatus::Error), ..Default::default() },
            previous: VolumeUpdate::default(),
        };
        assert!(matches!(db.apply(&update), Err(TableError::NotFound { table: "volumes", .. })));
        let create = DbWrite::CreateVolume { volume: Box::new(Volume::new("gone", "p1", GiB(1))) };
        assert!(matches!(db.apply(&create), Err(TableError::AlreadyExists { .. })));
        let snap = DbWrite::UpdateSnapshot { snapshot_id: "s".into(), status: "error".into(), previous: String::new() };
        assert!(matches!(db.apply(&snap), Err(TableError::NotFound { table: "snapshots", .. })));
        assert_eq!(db.all_volumes().count(), 1);
    }

    #[test]
    fn a_partial_view_reads_the_facts_and_asks_for_what_they_lack() {
        let facts = Facts::new().with_volume(Volume::new("v1", "p1", GiB(1)));
        let mut view = Tables::over(&facts);
        assert!(view.volume(&"v1".into()).unwrap().is_some());
        assert_eq!(view.volume(&"v2".into()), Err(TableError::Unknown(Need::Volume { volume_id: "v2".into() })));
        assert!(matches!(view.cache_entries_of_image(&"img".into()), Err(TableError::Unknown(_))));
        let set = VolumeUpdate { size: Some(GiB(3)), ..Default::default() };
        let applied =
            view.apply(&DbWrite::UpdateVolume { volume_id: "v1".into(), set, previous: Default::default() }).unwrap();
        assert_eq!(view.volume(&"v1".into()).unwrap().unwrap().size, GiB(3));
        assert_eq!(facts.volumes[&VolumeId::from("v1")].as_ref().unwrap().size, GiB(1), "facts untouched");
        let DbWrite::UpdateVolume { set, .. } = &applied.undo[0] else { panic!("{applied:?}") };
        assert_eq!(set.size, Some(GiB(1)));
    }

    #[test]
    fn rows_by_ids_come_in_upstream_order() {
        let mut db = Tables::new();
        for (id, t) in [("a", 1), ("b", 3), ("c", 3)] {
            let mut v = Volume::new(id, "p1", GiB(1));
            v.created_at = Timestamp::EPOCH.plus_seconds(t);
            db.insert_volume(v);
        }
        let ids: Vec<VolumeId> = ["a", "b", "c", "zz"].map(VolumeId::from).to_vec();
        let refs: Vec<&VolumeId> = ids.iter().collect();
        let order: Vec<String> = db.volumes_by_ids(&refs).unwrap().iter().map(|v| v.id.to_string()).collect();
        assert_eq!(order, ["c", "b", "a"]);
        assert_eq!(db.absent_ids(&refs), [&ids[3]]);
    }
}
