//! The scenario of the lock tests (issue 13.4): 32 creates of one image
//! through the image-volume cache, limited to 2 entries (by count or by
//! size), on one host; and the checks that the limits held, that no
//! snapshot name was used twice and that no row or RBD image went missing.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;

use cinder_flow::conformance::{build_world, parse_vectors, World};
use cinder_flow::facts::{CacheLocation, Capabilities, ClusterInfo, HostInfo, ProjectUsage};
use cinder_flow::memory::DbContents;
use cinder_flow::model::{
    CacheEntry, Image, ImageId, LocationApi, LocationEntry, ProjectId, Service, Snapshot, SnapshotId, Volume, VolumeId,
    VolumeType,
};
use cinder_flow::plan::{DbWrite, Operation};
use cinder_flow::planner::Request;
use cinder_flow::ports::{BackendResult, DownloadedImage, Driver, ImageService, VolumeDb};
use cinder_flow::rbd::{Cluster, ImageInfo, ImageSpec, RbdOp};
use cinder_flow::shell::Backends;

/// The image every create starts from.
pub const IMAGE: &str = "aaaaaaaa-0000-4000-8000-0000000000aa";
/// How many creates.
pub const CREATES: usize = 32;
/// The cache's limit (entries, or GiB with 1 GiB volumes).
pub const LIMIT: u64 = 2;

/// Which of the cache's limits is set to [`LIMIT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// `image_volume_cache_max_count`.
    Count,
    /// `image_volume_cache_max_size_gb` (the volumes are 1 GiB).
    Size,
}

/// The id of the `n`-th create's volume (its row is `creating`, as the API
/// leaves it).
pub fn volume_id(n: usize) -> VolumeId {
    VolumeId::from(format!("22222222-2222-4222-8222-{n:012}"))
}

/// The scenario as a vector: a qcow2 image (so no driver clone: a cache
/// miss downloads), an empty cache, 1 GiB volumes on `hostA@ceph#ceph`.
pub fn vector_json(limit: Limit) -> String {
    let (option, name) = match limit {
        Limit::Count => ("image_volume_cache_max_count", "count"),
        Limit::Size => ("image_volume_cache_max_size_gb", "size"),
    };
    serde_json::json!({
        "name": format!("lock-32-creates-cache-{name}-{LIMIT}"),
        "description": "32 concurrent creates of one image through the image-volume cache (issue 13.4)",
        "operation": "create_from_image",
        "config": {
            "cinder_internal_tenant_project_id": "internal-project",
            "cinder_internal_tenant_user_id": "internal-user",
            "image_volume_cache_enabled": true,
            option: LIMIT,
            "rbd_pool": "volumes",
        },
        "cluster": { "fsid": "7d5ab9c0-5e1b-4a2b-9c3d-0000000000aa", "pools": { "volumes": {} } },
        "image": {
            "id": IMAGE, "container_format": "bare", "disk_format": "qcow2", "locations": [],
            "min_disk": 0, "owner": "project-1", "size": 1 << 30, "status": "active", "virtual_size": 1 << 30,
        },
        "volume": { "id": volume_id(0).as_str(), "host": "hostA@ceph#ceph", "project_id": "project-1", "size": 1 },
    })
    .to_string()
}

/// The in-memory world of the scenario, with the 31 further `creating`
/// rows, and the 32 requests.
pub fn world(limit: Limit) -> (World, Vec<Request>) {
    let vector = parse_vectors(&vector_json(limit)).expect("the scenario is a valid vector").remove(0);
    let world = build_world(&vector).expect("world");
    let first = world.db.get_volume(&volume_id(0)).expect("the vector's volume row");
    let mut requests = Vec::new();
    for n in 0..CREATES {
        if n > 0 {
            let mut row = first.clone();
            row.id = volume_id(n);
            world.db.add_volume(row);
        }
        requests.push(Request {
            operation: Operation::CreateFromImage { image_id: ImageId::from(IMAGE) },
            volume_id: volume_id(n),
            now: cinder_flow::model::Timestamp::EPOCH.plus_seconds(86_400 + n as i64),
        });
    }
    (world, requests)
}

/// What went wrong in a run of the scenario (empty: nothing).
///
/// * the cache of [`IMAGE`] holds at most [`LIMIT`] entries and
///   [`LIMIT`] GiB;
/// * no snapshot name was created twice (`applied`: the cluster calls that
///   took effect, in order, from every executor);
/// * every create's row is `available` with its RBD image, every cache
///   entry's volume row exists with its RBD image, and every RBD image in
///   the pool belongs to a volume row (nothing made and forgotten).
pub fn problems(cluster: &Cluster, rows: &DbContents, applied: &[RbdOp]) -> Vec<String> {
    let mut out = Vec::new();
    let entries: Vec<&CacheEntry> = rows.cache.values().filter(|e| e.image_id.as_str() == IMAGE).collect();
    let gib: u64 = entries.iter().map(|e| e.size.0).sum();
    if entries.len() as u64 > LIMIT || gib > LIMIT {
        out.push(format!("the cache holds {} entries, {gib} GiB (limit {LIMIT})", entries.len()));
    }
    let mut snaps = BTreeMap::<String, usize>::new();
    for op in applied {
        if let RbdOp::CreateSnap { snap } = op {
            *snaps.entry(format!("{}/{}@{}", snap.pool, snap.image, snap.snap)).or_default() += 1;
        }
    }
    for (name, n) in snaps.iter().filter(|(_, n)| **n > 1) {
        out.push(format!("snapshot {name} was created {n} times"));
    }
    let images: BTreeSet<&str> = cluster.images("volumes").map(|(name, _)| name).collect();
    let live: BTreeMap<&VolumeId, &Volume> =
        rows.volumes.iter().filter(|(id, _)| !rows.deleted.contains(*id)).collect();
    for n in 0..CREATES {
        let id = volume_id(n);
        match live.get(&id) {
            None => out.push(format!("the row of volume {id} is gone")),
            Some(v) if v.status.as_str() != "available" => {
                out.push(format!("volume {id} is {:?}, not available", v.status.as_str()))
            }
            Some(_) => {}
        }
    }
    for e in rows.cache.values() {
        if !live.contains_key(&e.volume_id) {
            out.push(format!("cache entry of volume {} has no volume row", e.volume_id));
        }
    }
    for id in live.keys() {
        if !images.contains(format!("volume-{id}").as_str()) {
            out.push(format!("volume {id} has no RBD image"));
        }
    }
    for name in &images {
        let id = name.strip_prefix("volume-").unwrap_or(name);
        if !live.keys().any(|k| k.as_str() == id) {
            out.push(format!("RBD image {name} belongs to no volume row"));
        }
    }
    out
}

/// Ports that give way to other tasks before every call, as ports doing
/// real I/O do. The in-memory backends answer at once, so without this
/// one create would run from its first read to its last write in one
/// poll, and concurrent creates could never interleave.
#[derive(Debug)]
pub struct Yielding<'a>(pub Backends<'a>);

impl Yielding<'_> {
    /// The ports.
    pub fn backends(&self) -> Backends<'_> {
        Backends { driver: self, images: self, db: self }
    }
}

async fn give_way() {
    tokio::task::yield_now().await;
}

#[async_trait]
impl Driver for Yielding<'_> {
    async fn cluster_info(&self) -> BackendResult<ClusterInfo> {
        give_way().await;
        self.0.driver.cluster_info().await
    }
    async fn pool_exists(&self, pool: &str) -> BackendResult<bool> {
        give_way().await;
        self.0.driver.pool_exists(pool).await
    }
    async fn image_info(&self, image: &ImageSpec) -> BackendResult<Option<ImageInfo>> {
        give_way().await;
        self.0.driver.image_info(image).await
    }
    async fn apply(&self, op: &RbdOp, source: Option<DownloadedImage>) -> BackendResult<()> {
        give_way().await;
        self.0.driver.apply(op, source).await
    }
    async fn capabilities(&self) -> BackendResult<Capabilities> {
        give_way().await;
        self.0.driver.capabilities().await
    }
    async fn host_info(&self) -> BackendResult<HostInfo> {
        give_way().await;
        self.0.driver.host_info().await
    }
}

#[async_trait]
impl ImageService for Yielding<'_> {
    async fn show(&self, image_id: &ImageId) -> BackendResult<std::sync::Arc<Image>> {
        give_way().await;
        self.0.images.show(image_id).await
    }
    async fn locations(&self, image_id: &ImageId) -> BackendResult<std::sync::Arc<[LocationEntry]>> {
        give_way().await;
        self.0.images.locations(image_id).await
    }
    async fn download(&self, image_id: &ImageId) -> BackendResult<DownloadedImage> {
        give_way().await;
        self.0.images.download(image_id).await
    }
    async fn add_location(&self, image_id: &ImageId, location: &LocationEntry, api: LocationApi) -> BackendResult<()> {
        give_way().await;
        self.0.images.add_location(image_id, location, api).await
    }
    async fn remove_location(&self, image_id: &ImageId, url: &str) -> BackendResult<()> {
        give_way().await;
        self.0.images.remove_location(image_id, url).await
    }
}

#[async_trait]
impl VolumeDb for Yielding<'_> {
    async fn volume(&self, id: &VolumeId) -> BackendResult<Option<std::sync::Arc<Volume>>> {
        give_way().await;
        self.0.db.volume(id).await
    }
    async fn volumes(&self, ids: &[VolumeId]) -> BackendResult<Vec<std::sync::Arc<Volume>>> {
        give_way().await;
        self.0.db.volumes(ids).await
    }
    async fn snapshot(&self, id: &SnapshotId) -> BackendResult<Option<Snapshot>> {
        give_way().await;
        self.0.db.snapshot(id).await
    }
    async fn snapshots_of_volume(&self, volume_id: &VolumeId) -> BackendResult<Vec<Snapshot>> {
        give_way().await;
        self.0.db.snapshots_of_volume(volume_id).await
    }
    async fn volume_type(&self, name_or_id: &str) -> BackendResult<Option<VolumeType>> {
        give_way().await;
        self.0.db.volume_type(name_or_id).await
    }
    async fn services(&self) -> BackendResult<Vec<Service>> {
        give_way().await;
        self.0.db.services().await
    }
    async fn project_default_volume_type(&self, project_id: &ProjectId) -> BackendResult<Option<String>> {
        give_way().await;
        self.0.db.project_default_volume_type(project_id).await
    }
    async fn project_usage(&self, project_id: &ProjectId) -> BackendResult<ProjectUsage> {
        give_way().await;
        self.0.db.project_usage(project_id).await
    }
    async fn cache_entries_of_image(&self, image_id: &ImageId) -> BackendResult<Vec<CacheEntry>> {
        give_way().await;
        self.0.db.cache_entries_of_image(image_id).await
    }
    async fn cache_entries_at(&self, location: &CacheLocation) -> BackendResult<Vec<CacheEntry>> {
        give_way().await;
        self.0.db.cache_entries_at(location).await
    }
    async fn new_volume_id(&self) -> BackendResult<VolumeId> {
        give_way().await;
        self.0.db.new_volume_id().await
    }
    async fn write(&self, write: &DbWrite) -> BackendResult<()> {
        give_way().await;
        self.0.db.write(write).await
    }
}
