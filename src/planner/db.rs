//! The planner's view of Cinder's database: rows from the facts, with the
//! plan's own writes applied, answering the queries upstream makes with
//! upstream's semantics (visibility, ordering, host matching).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::facts::{CacheLocation, Facts, Need};
use crate::model::{CacheEntry, HostFilter, ImageId, Snapshot, SnapshotId, Volume, VolumeId};
use crate::plan::DbWrite;

use super::ctx::{Exc, Flow};

#[derive(Clone)]
pub(crate) struct DbView<'a> {
    facts: &'a Facts,
    /// Volume rows written by the plan (`None`: deleted by the plan).
    volumes: BTreeMap<VolumeId, Option<Arc<Volume>>>,
    /// Cache rows known from any answer, keyed by volume id.
    cache: BTreeMap<VolumeId, CacheEntry>,
    /// Volumes whose glance metadata the plan stored.
    glance_meta: BTreeSet<VolumeId>,
    /// Snapshot rows written by the plan.
    snapshots: BTreeMap<SnapshotId, Snapshot>,
}

impl<'a> DbView<'a> {
    pub(crate) fn new(facts: &'a Facts) -> Self {
        let mut cache = BTreeMap::new();
        for e in facts.cache_by_image.values().chain(facts.cache_by_location.values()).flatten() {
            cache.insert(e.volume_id.clone(), e.clone());
        }
        Self { facts, volumes: BTreeMap::new(), cache, glance_meta: BTreeSet::new(), snapshots: BTreeMap::new() }
    }

    /// Whether the plan has written no volume row yet (derived data computed
    /// now depends on the facts alone).
    pub(crate) fn volumes_untouched(&self) -> bool {
        self.volumes.is_empty()
    }

    /// `objects.Volume.get_by_id`: the row, `None` if it does not exist.
    pub(crate) fn volume(&self, id: &VolumeId) -> Flow<Option<Arc<Volume>>> {
        if let Some(v) = self.volumes.get(id) {
            return Ok(v.clone());
        }
        match self.facts.volumes.get(id) {
            Some(v) => Ok(v.clone()),
            None => Err(Exc::Need(vec![Need::Volume { volume_id: id.clone() }])),
        }
    }

    /// `db.volume_get_all(filters={'id': ids, ...})` without the location
    /// filter: the visible rows among `ids`, ordered as upstream's default
    /// sort (`created_at` desc, then `id` desc).
    pub(crate) fn volumes_by_ids(&self, ids: &[&VolumeId]) -> Flow<Vec<Arc<Volume>>> {
        let mut missing: Vec<VolumeId> = Vec::new();
        let mut rows = Vec::new();
        self.each_row(ids, |id, row| match row {
            Some(v) => rows.extend(v.cloned()),
            None => missing.push(id.clone()),
        });
        if !missing.is_empty() {
            missing.sort();
            return Err(Exc::Need(vec![Need::Volumes { volume_ids: missing }]));
        }
        rows.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
        Ok(rows)
    }

    /// The ids among `ids` known to have no visible row.
    pub(crate) fn absent_ids<'i>(&self, ids: &[&'i VolumeId]) -> Vec<&'i VolumeId> {
        let mut absent = Vec::new();
        self.each_row(ids, |id, row| {
            if let Some(None) = row {
                absent.push(id);
            }
        });
        absent
    }

    /// Calls `f` with each id and what the view knows of its row: `None`
    /// when the facts do not say, `Some(None)` when there is no row.
    fn each_row<'i>(&self, ids: &[&'i VolumeId], mut f: impl FnMut(&'i VolumeId, Option<Option<&Arc<Volume>>>)) {
        let written = |id: &VolumeId| self.volumes.get(id).map(Option::as_ref);
        let known = &self.facts.volumes;
        let sorted = ids.windows(2).all(|w| w[0] < w[1]);
        if !sorted || ids.len() < 16 || ids.len().saturating_mul(16) < known.len() {
            for &id in ids {
                f(id, written(id).or_else(|| known.get(id).map(Option::as_ref)));
            }
            return;
        }
        // Many sorted ids: one walk over the facts' rows instead of a
        // lookup per id.
        let mut walk = known.range::<VolumeId, _>(ids[0]..).peekable();
        for &id in ids {
            while walk.next_if(|(k, _)| *k < id).is_some() {}
            let fact = walk.next_if(|(k, _)| *k == id).map(|(_, v)| v.as_ref());
            f(id, if self.volumes.is_empty() { fact } else { written(id).or(fact) });
        }
    }

    /// A snapshot row, `None` if it does not exist.
    pub(crate) fn snapshot(&self, id: &SnapshotId) -> Flow<Option<Snapshot>> {
        if let Some(s) = self.snapshots.get(id) {
            return Ok(Some(s.clone()));
        }
        match self.facts.snapshots.get(id) {
            Some(s) => Ok(s.clone()),
            None => Err(Exc::Need(vec![Need::Snapshot { snapshot_id: id.clone() }])),
        }
    }

    /// Cache rows of an image (any host), most recently used first.
    pub(crate) fn cache_entries_of_image(&self, image_id: &ImageId) -> Flow<Vec<CacheEntry>> {
        if !self.facts.cache_by_image.contains_key(image_id) {
            return Err(Exc::Need(vec![Need::CacheEntriesOfImage { image_id: image_id.clone() }]));
        }
        let mut rows: Vec<CacheEntry> = self.cache.values().filter(|e| &e.image_id == image_id).cloned().collect();
        sort_mru(&mut rows);
        Ok(rows)
    }

    /// Cache rows at an exact location (any image), most recently used
    /// first (`image_volume_cache_get_all(host=...)`).
    pub(crate) fn cache_entries_at(&self, loc: &CacheLocation) -> Flow<Vec<CacheEntry>> {
        if !self.facts.cache_by_location.contains_key(loc) {
            return Err(Exc::Need(vec![Need::CacheEntriesAt { location: loc.clone() }]));
        }
        let mut rows: Vec<CacheEntry> = self.cache.values().filter(|e| location_matches(loc, e)).cloned().collect();
        sort_mru(&mut rows);
        Ok(rows)
    }

    /// Applies a write; returns its undo and whether it can be undone.
    pub(crate) fn apply(&mut self, write: &DbWrite) -> Flow<(Vec<DbWrite>, bool)> {
        Ok(match write {
            DbWrite::UpdateVolume { volume_id, set, previous } => {
                let mut arc = self
                    .volume(volume_id)?
                    .ok_or_else(|| Exc::Inconsistent(format!("update of missing volume {volume_id}")))?;
                let v = Arc::make_mut(&mut arc);
                if let Some(s) = &set.status {
                    v.status = s.clone();
                }
                if let Some(s) = set.size {
                    v.size = s;
                }
                if let Some(b) = set.bootable {
                    v.bootable = b;
                }
                self.volumes.insert(volume_id.clone(), Some(arc));
                let undo = DbWrite::UpdateVolume {
                    volume_id: volume_id.clone(),
                    set: previous.clone(),
                    previous: set.clone(),
                };
                (vec![undo], true)
            }
            DbWrite::CreateVolume { volume } => {
                self.volumes.insert(volume.id.clone(), Some(Arc::new((**volume).clone())));
                (vec![DbWrite::DeleteVolumeRow { volume_id: volume.id.clone() }], true)
            }
            DbWrite::DeleteVolumeRow { volume_id } => {
                self.volumes.insert(volume_id.clone(), None);
                (Vec::new(), false)
            }
            DbWrite::CreateCacheEntry { entry } => {
                self.cache.insert(entry.volume_id.clone(), entry.clone());
                (vec![DbWrite::DeleteCacheEntry { volume_id: entry.volume_id.clone() }], true)
            }
            DbWrite::DeleteCacheEntry { volume_id } => match self.cache.remove(volume_id) {
                Some(old) => (vec![DbWrite::CreateCacheEntry { entry: old }], true),
                None => (Vec::new(), true),
            },
            DbWrite::TouchCacheEntry { volume_id, last_used, previous } => {
                if let Some(e) = self.cache.get_mut(volume_id) {
                    e.last_used = *last_used;
                }
                let undo = DbWrite::TouchCacheEntry {
                    volume_id: volume_id.clone(),
                    last_used: *previous,
                    previous: *last_used,
                };
                (vec![undo], true)
            }
            DbWrite::EvictCacheEntry { entry } => {
                self.cache.remove(&entry.volume_id);
                (Vec::new(), false)
            }
            DbWrite::SetGlanceMetadata { volume_id, .. } => {
                let fresh = self.glance_meta.insert(volume_id.clone());
                if fresh {
                    (vec![DbWrite::DeleteGlanceMetadata { volume_id: volume_id.clone() }], true)
                } else {
                    // The plan stored metadata on this volume before: that
                    // earlier write's undo deletes all of it, these keys
                    // included.
                    (Vec::new(), true)
                }
            }
            DbWrite::DeleteGlanceMetadata { volume_id } => {
                // Deleting what the plan itself stored leaves the volume as
                // it was before the plan (the view assumes, as the undo of
                // the first store does, that it had none): nothing to undo.
                // Metadata the plan did not store cannot be put back.
                let stored_by_plan = self.glance_meta.remove(volume_id);
                (Vec::new(), stored_by_plan)
            }
            DbWrite::UpdateSnapshot { snapshot_id, status, previous } => {
                let mut snap = self
                    .snapshot(snapshot_id)?
                    .ok_or_else(|| Exc::Inconsistent(format!("update of missing snapshot {snapshot_id}")))?;
                snap.status = status.clone();
                self.snapshots.insert(snapshot_id.clone(), snap);
                let undo = DbWrite::UpdateSnapshot {
                    snapshot_id: snapshot_id.clone(),
                    status: previous.clone(),
                    previous: status.clone(),
                };
                (vec![undo], true)
            }
        })
    }

    /// Whether the plan stored glance metadata for the volume.
    pub(crate) fn has_glance_metadata(&self, volume_id: &VolumeId) -> bool {
        self.glance_meta.contains(volume_id)
    }
}

/// `ORDER BY last_used DESC`; ties by volume id for a stable order (SQL
/// leaves them unordered).
fn sort_mru(rows: &mut [CacheEntry]) {
    rows.sort_by(|a, b| b.last_used.cmp(&a.last_used).then_with(|| a.volume_id.cmp(&b.volume_id)));
}

/// Exact `host` / `cluster_name` equality of cache queries
/// (`filter_by(**filters)` after dropping `None` values).
pub fn location_matches(loc: &CacheLocation, e: &CacheEntry) -> bool {
    let host_ok = match &loc.host {
        Some(h) => e.host.as_ref().map(|x| x.as_str()) == Some(h.as_str()),
        None => true,
    };
    let cluster_ok = match &loc.cluster_name {
        Some(c) => e.cluster_name.as_deref() == Some(c.as_str()),
        None => true,
    };
    host_ok && cluster_ok
}

/// `_process_volume_filters` for `host` / `cluster_name`: a falsy value adds
/// no condition; otherwise `_filter_host`.
pub(crate) fn host_condition(value: Option<&str>) -> Option<HostFilter> {
    match value {
        Some(v) if !v.is_empty() => Some(HostFilter::new(v)),
        _ => None,
    }
}
