//! Cinder's database in memory, behind the [`VolumeDb`] port.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::error::{BackendError, BackendErrorKind};
use crate::facts::{CacheLocation, ProjectUsage};
use crate::model::{
    CacheEntry, ImageId, ProjectId, Service, Snapshot, SnapshotId, Volume, VolumeId, VolumeType, DEFAULT_VOLUME_TYPE,
};
use crate::plan::DbWrite;
use crate::ports::{BackendResult, VolumeDb};
use crate::tables::{unique_ids, TableError, Tables};

use super::{FaultInjector, FaultMode};

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
/// have to undo), and the chosen one fails without changing anything, or
/// after changing it for a lost reply.
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

/// The rows live in a complete [`Tables`], so every write follows the same
/// rules the planner predicts with; the rest is what only a database has
/// (types, services, project defaults, the id generator).
#[derive(Debug, Default, Clone)]
struct State {
    tables: Tables<'static>,
    types: Vec<VolumeType>,
    services: Vec<Service>,
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
        let t = &s.tables;
        DbContents {
            volumes: t.all_volumes().map(|(v, _)| (v.id.clone(), (**v).clone())).collect(),
            deleted: t.all_volumes().filter(|(_, deleted)| *deleted).map(|(v, _)| v.id.clone()).collect(),
            snapshots: t.snapshots().map(|x| (x.id.clone(), x.clone())).collect(),
            types: s.types.clone(),
            services: s.services.clone(),
            cache: t.cache_entries().map(|e| (e.volume_id.clone(), e.clone())).collect(),
            evictions: t.evictions().to_vec(),
            glance_metadata: t.all_glance_metadata().clone(),
            project_default_types: s.project_default_types.clone(),
        }
    }

    /// A snapshot row.
    pub fn get_snapshot(&self, id: &SnapshotId) -> Option<Snapshot> {
        self.lock().tables.snapshot(id).ok().flatten().cloned()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds or replaces a volume row.
    pub fn add_volume(&self, v: impl Into<Arc<Volume>>) {
        self.lock().tables.insert_volume(v);
    }

    /// Adds a soft-deleted volume row (invisible to queries).
    pub fn add_deleted_volume(&self, v: impl Into<Arc<Volume>>) {
        self.lock().tables.insert_deleted_volume(v);
    }

    /// Adds a snapshot row.
    pub fn add_snapshot(&self, snap: Snapshot) {
        self.lock().tables.insert_snapshot(snap);
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
        self.lock().tables.insert_cache_entry(e);
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
        self.lock().tables.volume(id).ok().flatten().map(|v| (**v).clone())
    }

    /// All cache rows, sorted by (image, host, volume).
    pub fn cache_entries(&self) -> Vec<CacheEntry> {
        let mut v: Vec<CacheEntry> = self.lock().tables.cache_entries().cloned().collect();
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
        self.lock().tables.evictions().to_vec()
    }

    /// Glance metadata stored on a volume.
    pub fn glance_metadata(&self, id: &VolumeId) -> Option<BTreeMap<String, String>> {
        self.lock().tables.glance_metadata(id).cloned()
    }

    /// Number of visible volumes.
    pub fn volume_count(&self) -> usize {
        self.lock().tables.visible_volumes().count()
    }
}

/// A table rule's refusal as the port reports it.
fn table_error(e: TableError, write: &DbWrite) -> BackendError {
    let kind = match &e {
        TableError::NotFound { .. } => BackendErrorKind::NotFound,
        TableError::AlreadyExists { .. } => BackendErrorKind::AlreadyExists,
        // Complete tables know every row.
        _ => BackendErrorKind::Other,
    };
    BackendError::new(kind, format!("database write: {write}")).with_source(e)
}

#[async_trait]
impl VolumeDb for MemoryVolumeDb {
    async fn volume(&self, id: &VolumeId) -> BackendResult<Option<Arc<Volume>>> {
        Ok(self.lock().tables.volume(id).ok().flatten().cloned())
    }

    async fn volumes(&self, ids: &[VolumeId]) -> BackendResult<Vec<Arc<Volume>>> {
        let s = self.lock();
        Ok(unique_ids(ids).into_iter().filter_map(|id| s.tables.volume(id).ok().flatten().cloned()).collect())
    }

    async fn snapshot(&self, id: &SnapshotId) -> BackendResult<Option<Snapshot>> {
        Ok(self.get_snapshot(id))
    }

    async fn snapshots_of_volume(&self, volume_id: &VolumeId) -> BackendResult<Vec<Snapshot>> {
        Ok(self.lock().tables.snapshots_of_volume(volume_id).unwrap_or_default())
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
        for v in s.tables.visible_volumes() {
            if &v.project_id == project_id && v.use_quota {
                usage.volumes += 1;
                usage.volume_gigabytes = usage.volume_gigabytes.saturating_add(v.size.0);
            }
        }
        for snap in s.tables.snapshots() {
            if &snap.project_id == project_id {
                usage.snapshots += 1;
                usage.snapshot_gigabytes = usage.snapshot_gigabytes.saturating_add(snap.volume_size.0);
            }
        }
        Ok(usage)
    }

    async fn cache_entries_of_image(&self, image_id: &ImageId) -> BackendResult<Vec<CacheEntry>> {
        Ok(self.lock().tables.cache_entries().filter(|e| &e.image_id == image_id).cloned().collect())
    }

    async fn cache_entries_at(&self, location: &CacheLocation) -> BackendResult<Vec<CacheEntry>> {
        Ok(self.lock().tables.cache_entries().filter(|e| location.matches(e)).cloned().collect())
    }

    async fn new_volume_id(&self) -> BackendResult<VolumeId> {
        let mut s = self.lock();
        loop {
            let id = s.fresh.pop().unwrap_or_else(|| VolumeId::from(uuid::Uuid::new_v4().to_string()));
            if s.tables.all_volumes().all(|(v, _)| v.id != id) {
                return Ok(id);
            }
        }
    }

    async fn write(&self, write: &DbWrite) -> BackendResult<()> {
        if let Some(fault) = self.faults.tick() {
            if fault.mode == FaultMode::LoseReply {
                // Performed (or refused by the table rules), then the reply
                // is lost.
                let _ = self.lock().tables.apply(write);
            }
            return Err(BackendError::new(fault.kind, "database write").with_detail(format!("{write:?}")));
        }
        // The undo is the plan's to carry; the backend only performs.
        self.lock().tables.apply(write).map(drop).map_err(|e| table_error(e, write))
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
            size: GiB(1).to_bytes().unwrap(),
            order: 22,
            features: 1,
        };
        cluster.apply(&op, None).await.unwrap();
        assert_eq!(db.write(&set_status("v1", "available")).await.unwrap_err().kind, BackendErrorKind::Busy);
        faults.clear();
        db.write(&set_status("v1", "available")).await.unwrap();
    }
}
