//! Cinder's database in memory, behind the [`VolumeDb`] port.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use rustc_hash::FxHashMap;

use crate::error::{BackendError, BackendErrorKind};
use crate::facts::{CacheLocation, ProjectUsage};
use crate::model::{
    CacheEntry, ImageId, ProjectId, Service, Snapshot, SnapshotId, Volume, VolumeId, VolumeType, DEFAULT_VOLUME_TYPE,
};
use crate::plan::DbWrite;
use crate::ports::{BackendResult, VolumeDb};

use super::FaultInjector;

/// Rows in memory. Deleted volumes are invisible, as Cinder's queries
/// filter `deleted = False`. Evictions requested through the volume API are
/// recorded (see [`MemoryVolumeDb::evictions`]); the deletion they ask for
/// is asynchronous upstream and is not performed here.
///
/// Volume rows are kept shared: [`VolumeDb::volume`] and
/// [`VolumeDb::volumes`] hand out the stored `Arc`s without copying.
///
/// Faults: with [`MemoryVolumeDb::with_faults`], every [`VolumeDb::write`]
/// counts as a call of the shared [`FaultInjector`] (reads and
/// [`VolumeDb::new_volume_id`] do not: they change nothing a plan could
/// have to undo), and the chosen one fails without changing anything.
#[derive(Debug, Default)]
pub struct MemoryVolumeDb {
    state: Mutex<State>,
    faults: FaultInjector,
}

/// Everything a [`MemoryVolumeDb`] stores, as a comparable value (see
/// [`MemoryVolumeDb::contents`]): lets a test check that a failed and
/// undone operation left the database exactly as it found it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DbContents {
    /// Volume rows by id, soft-deleted ones included.
    pub volumes: BTreeMap<VolumeId, Volume>,
    /// Ids of the soft-deleted rows.
    pub deleted: BTreeSet<VolumeId>,
    /// Snapshot rows.
    pub snapshots: BTreeMap<SnapshotId, Snapshot>,
    /// Volume types, in insertion order.
    pub types: Vec<VolumeType>,
    /// Service rows.
    pub services: Vec<Service>,
    /// Image-cache rows by volume id.
    pub cache: BTreeMap<VolumeId, CacheEntry>,
    /// Volumes whose deletion the cache asked for, in order.
    pub evictions: Vec<VolumeId>,
    /// Glance metadata by volume.
    pub glance_metadata: BTreeMap<VolumeId, BTreeMap<String, String>>,
    /// Projects' default volume types.
    pub project_default_types: BTreeMap<ProjectId, String>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct State {
    /// Hashed: a lookup costs the same whatever the size of the table (only
    /// sums iterate over it). Fx rather than SipHash: the keys are the
    /// caller's own ids, there is no adversary to resist, and a planning
    /// round can look up thousands of them.
    volumes: FxHashMap<VolumeId, Arc<Volume>>,
    deleted: BTreeSet<VolumeId>,
    snapshots: BTreeMap<SnapshotId, Snapshot>,
    types: Vec<VolumeType>,
    services: Vec<Service>,
    cache: BTreeMap<VolumeId, CacheEntry>,
    evictions: Vec<VolumeId>,
    glance_metadata: BTreeMap<VolumeId, BTreeMap<String, String>>,
    fresh: Vec<VolumeId>,
    project_default_types: BTreeMap<ProjectId, String>,
}

impl MemoryVolumeDb {
    /// An empty database with the `__DEFAULT__` volume type.
    pub fn new() -> Self {
        let db = Self::default();
        db.add_volume_type(VolumeType::plain("00000000-0000-0000-0000-0000000000de", DEFAULT_VOLUME_TYPE));
        db
    }

    /// Fails writes as `faults` says (share one injector with
    /// [`MemoryCluster`](super::MemoryCluster) and
    /// [`MemoryImageService`](super::MemoryImageService) to make "the n-th
    /// backend call" fail, whichever backend it goes to).
    pub fn with_faults(mut self, faults: FaultInjector) -> Self {
        self.faults = faults;
        self
    }

    /// A copy of everything stored (not the queue of fresh ids, which is an
    /// id generator rather than a table).
    pub fn contents(&self) -> DbContents {
        let s = self.lock();
        DbContents {
            volumes: s.volumes.iter().map(|(k, v)| (k.clone(), (**v).clone())).collect(),
            deleted: s.deleted.clone(),
            snapshots: s.snapshots.clone(),
            types: s.types.clone(),
            services: s.services.clone(),
            cache: s.cache.clone(),
            evictions: s.evictions.clone(),
            glance_metadata: s.glance_metadata.clone(),
            project_default_types: s.project_default_types.clone(),
        }
    }

    /// A snapshot row.
    pub fn get_snapshot(&self, id: &SnapshotId) -> Option<Snapshot> {
        self.lock().snapshots.get(id).cloned()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds or replaces a volume row.
    pub fn add_volume(&self, v: impl Into<Arc<Volume>>) {
        let v: Arc<Volume> = v.into();
        let mut s = self.lock();
        s.deleted.remove(&v.id);
        s.volumes.insert(v.id.clone(), v);
    }

    /// Adds a soft-deleted volume row (invisible to queries).
    pub fn add_deleted_volume(&self, v: impl Into<Arc<Volume>>) {
        let v: Arc<Volume> = v.into();
        let mut s = self.lock();
        s.deleted.insert(v.id.clone());
        s.volumes.insert(v.id.clone(), v);
    }

    /// Adds a snapshot row.
    pub fn add_snapshot(&self, snap: Snapshot) {
        self.lock().snapshots.insert(snap.id.clone(), snap);
    }

    /// Adds or replaces a volume type (matched by name).
    pub fn add_volume_type(&self, t: VolumeType) {
        let mut s = self.lock();
        s.types.retain(|x| x.name != t.name);
        s.types.push(t);
    }

    /// Adds a service row.
    pub fn add_service(&self, svc: Service) {
        self.lock().services.push(svc);
    }

    /// Sets (or with `None` clears) a project's default volume type, by
    /// type id (`cinder default-type-set`).
    pub fn set_project_default_volume_type(&self, project_id: ProjectId, type_id: Option<String>) {
        let mut s = self.lock();
        match type_id {
            Some(id) => {
                s.project_default_types.insert(project_id, id);
            }
            None => {
                s.project_default_types.remove(&project_id);
            }
        }
    }

    /// Adds a cache row.
    pub fn add_cache_entry(&self, e: CacheEntry) {
        self.lock().cache.insert(e.volume_id.clone(), e);
    }

    /// Queues ids that [`VolumeDb::new_volume_id`] hands out before making
    /// random ones (for reproducible tests).
    pub fn queue_fresh_ids(&self, ids: impl IntoIterator<Item = VolumeId>) {
        let mut s = self.lock();
        let mut ids: Vec<VolumeId> = ids.into_iter().collect();
        ids.reverse();
        s.fresh.extend(ids);
    }

    /// A visible volume row.
    pub fn get_volume(&self, id: &VolumeId) -> Option<Volume> {
        let s = self.lock();
        if s.deleted.contains(id) {
            return None;
        }
        s.volumes.get(id).map(|v| (**v).clone())
    }

    /// All cache rows, sorted by (image, host, volume).
    pub fn cache_entries(&self) -> Vec<CacheEntry> {
        let mut v: Vec<CacheEntry> = self.lock().cache.values().cloned().collect();
        v.sort_by(|a, b| {
            (&a.image_id, a.host.as_ref().map(|h| h.as_str()), &a.volume_id).cmp(&(
                &b.image_id,
                b.host.as_ref().map(|h| h.as_str()),
                &b.volume_id,
            ))
        });
        v
    }

    /// Volumes whose deletion the cache asked for, in order.
    pub fn evictions(&self) -> Vec<VolumeId> {
        self.lock().evictions.clone()
    }

    /// Glance metadata stored on a volume.
    pub fn glance_metadata(&self, id: &VolumeId) -> Option<BTreeMap<String, String>> {
        self.lock().glance_metadata.get(id).cloned()
    }

    /// Number of visible volumes.
    pub fn volume_count(&self) -> usize {
        let s = self.lock();
        s.volumes.len() - s.deleted.len()
    }
}

fn missing(what: String) -> BackendError {
    BackendError::new(BackendErrorKind::NotFound, what)
}

#[async_trait]
impl VolumeDb for MemoryVolumeDb {
    async fn volume(&self, id: &VolumeId) -> BackendResult<Option<Arc<Volume>>> {
        let s = self.lock();
        if s.deleted.contains(id) {
            return Ok(None);
        }
        Ok(s.volumes.get(id).cloned())
    }

    async fn volumes(&self, ids: &[VolumeId]) -> BackendResult<Vec<Arc<Volume>>> {
        let s = self.lock();
        let visible = |id: &VolumeId| if s.deleted.contains(id) { None } else { s.volumes.get(id).cloned() };
        if ids.windows(2).all(|w| w[0] < w[1]) {
            // Sorted and unique, as the planner asks: no duplicates to drop.
            return Ok(ids.iter().filter_map(visible).collect());
        }
        let mut seen = BTreeSet::new();
        Ok(ids.iter().filter(|id| seen.insert(*id)).filter_map(visible).collect())
    }

    async fn snapshot(&self, id: &SnapshotId) -> BackendResult<Option<Snapshot>> {
        Ok(self.lock().snapshots.get(id).cloned())
    }

    async fn volume_type(&self, name_or_id: &str) -> BackendResult<Option<VolumeType>> {
        let s = self.lock();
        Ok(s.types
            .iter()
            .find(|t| t.name == name_or_id)
            .or_else(|| s.types.iter().find(|t| t.id == name_or_id))
            .cloned())
    }

    async fn services(&self) -> BackendResult<Vec<Service>> {
        Ok(self.lock().services.clone())
    }

    async fn project_default_volume_type(&self, project_id: &ProjectId) -> BackendResult<Option<String>> {
        Ok(self.lock().project_default_types.get(project_id).cloned())
    }

    async fn project_usage(&self, project_id: &ProjectId) -> BackendResult<ProjectUsage> {
        let s = self.lock();
        let mut usage = ProjectUsage::default();
        for v in s.volumes.values() {
            if !s.deleted.contains(&v.id) && &v.project_id == project_id && v.use_quota {
                usage.volumes += 1;
                usage.volume_gigabytes = usage.volume_gigabytes.saturating_add(v.size.0);
            }
        }
        for snap in s.snapshots.values() {
            if &snap.project_id == project_id {
                usage.snapshots += 1;
                usage.snapshot_gigabytes = usage.snapshot_gigabytes.saturating_add(snap.volume_size.0);
            }
        }
        Ok(usage)
    }

    async fn cache_entries_of_image(&self, image_id: &ImageId) -> BackendResult<Vec<CacheEntry>> {
        Ok(self.lock().cache.values().filter(|e| &e.image_id == image_id).cloned().collect())
    }

    async fn cache_entries_at(&self, location: &CacheLocation) -> BackendResult<Vec<CacheEntry>> {
        Ok(self
            .lock()
            .cache
            .values()
            .filter(|e| crate::planner::cache_location_matches(location, e))
            .cloned()
            .collect())
    }

    async fn new_volume_id(&self) -> BackendResult<VolumeId> {
        let mut s = self.lock();
        loop {
            let id = s.fresh.pop().unwrap_or_else(|| VolumeId::from(uuid::Uuid::new_v4().to_string()));
            if !s.volumes.contains_key(&id) {
                return Ok(id);
            }
        }
    }

    async fn write(&self, write: &DbWrite) -> BackendResult<()> {
        if let Some(kind) = self.faults.tick() {
            return Err(BackendError::new(kind, "database write").with_detail(format!("{write:?}")));
        }
        let mut s = self.lock();
        match write {
            DbWrite::UpdateVolume { volume_id, set, .. } => {
                if s.deleted.contains(volume_id) {
                    return Err(missing(format!("volume {volume_id}")));
                }
                let v = s.volumes.get_mut(volume_id).ok_or_else(|| missing(format!("volume {volume_id}")))?;
                let v = Arc::make_mut(v);
                if let Some(st) = &set.status {
                    v.status = st.clone();
                }
                if let Some(sz) = set.size {
                    v.size = sz;
                }
                if let Some(b) = set.bootable {
                    v.bootable = b;
                }
            }
            DbWrite::CreateVolume { volume } => {
                if s.volumes.contains_key(&volume.id) {
                    return Err(BackendError::new(BackendErrorKind::AlreadyExists, format!("volume {}", volume.id)));
                }
                s.volumes.insert(volume.id.clone(), Arc::new((**volume).clone()));
            }
            DbWrite::DeleteVolumeRow { volume_id } => {
                if !s.volumes.contains_key(volume_id) {
                    return Err(missing(format!("volume {volume_id}")));
                }
                s.deleted.insert(volume_id.clone());
            }
            DbWrite::CreateCacheEntry { entry } => {
                s.cache.insert(entry.volume_id.clone(), entry.clone());
            }
            DbWrite::DeleteCacheEntry { volume_id } => {
                s.cache.remove(volume_id);
            }
            DbWrite::TouchCacheEntry { volume_id, last_used, .. } => {
                if let Some(e) = s.cache.get_mut(volume_id) {
                    e.last_used = *last_used;
                }
            }
            DbWrite::EvictCacheEntry { entry } => {
                s.cache.remove(&entry.volume_id);
                s.evictions.push(entry.volume_id.clone());
            }
            DbWrite::SetGlanceMetadata { volume_id, metadata } => {
                s.glance_metadata.entry(volume_id.clone()).or_default().extend(metadata.clone());
            }
            DbWrite::DeleteGlanceMetadata { volume_id } => {
                s.glance_metadata.remove(volume_id);
            }
            DbWrite::UpdateSnapshot { snapshot_id, status, .. } => {
                let snap =
                    s.snapshots.get_mut(snapshot_id).ok_or_else(|| missing(format!("snapshot {snapshot_id}")))?;
                snap.status = status.clone();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryCluster;
    use crate::model::{GiB, Volume};
    use crate::plan::VolumeUpdate;
    use crate::ports::Driver;
    use crate::rbd::{Cluster, ImageSpec, RbdOp};

    fn set_status(id: &str, status: &str) -> DbWrite {
        DbWrite::UpdateVolume {
            volume_id: id.into(),
            set: VolumeUpdate { status: Some(status.into()), ..Default::default() },
            previous: VolumeUpdate::default(),
        }
    }

    #[tokio::test]
    async fn the_chosen_write_fails_and_changes_nothing() {
        let faults = FaultInjector::new();
        let db = MemoryVolumeDb::new().with_faults(faults.clone());
        db.add_volume(Volume::new("v1", "p1", GiB(1)));
        faults.fail_call(1, BackendErrorKind::Unavailable);
        db.write(&set_status("v1", "available")).await.unwrap();
        let before = db.contents();
        let err = db.write(&set_status("v1", "error")).await.unwrap_err();
        assert_eq!(err.kind, BackendErrorKind::Unavailable);
        assert_eq!(db.contents(), before, "a failed write changes nothing");
        db.write(&set_status("v1", "error")).await.unwrap();
        assert_eq!(db.get_volume(&"v1".into()).unwrap().status, "error".into());
        assert_eq!(faults.calls(), 3);
    }

    #[tokio::test]
    async fn reads_and_fresh_ids_are_not_counted() {
        let faults = FaultInjector::new();
        let db = MemoryVolumeDb::new().with_faults(faults.clone());
        db.add_volume(Volume::new("v1", "p1", GiB(1)));
        faults.fail_call(0, BackendErrorKind::Other);
        assert!(db.volume(&"v1".into()).await.unwrap().is_some());
        db.new_volume_id().await.unwrap();
        assert_eq!(faults.calls(), 0);
        assert!(db.write(&set_status("v1", "error")).await.is_err());
    }

    #[tokio::test]
    async fn one_injector_counts_calls_across_backends() {
        let faults = FaultInjector::new();
        let mut c = Cluster::new("fsid");
        c.add_pool("volumes");
        let cluster = MemoryCluster::new(c).with_faults(faults.clone());
        let db = MemoryVolumeDb::new().with_faults(faults.clone());
        db.add_volume(Volume::new("v1", "p1", GiB(1)));
        faults.fail_call(1, BackendErrorKind::Busy);
        let op = RbdOp::Create {
            image: ImageSpec::new("volumes", "volume-v1"),
            size: GiB(1).to_bytes(),
            order: 22,
            features: 1,
        };
        cluster.apply(&op, None).await.unwrap();
        assert_eq!(db.write(&set_status("v1", "available")).await.unwrap_err().kind, BackendErrorKind::Busy);
        faults.clear();
        db.write(&set_status("v1", "available")).await.unwrap();
    }
}
