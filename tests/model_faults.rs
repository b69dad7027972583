//! Model-based tests with fault injection (issue 5, item 2).
//!
//! A generated world (user volumes, Glance images with `rbd://`,
//! `cinder://` and no locations, image volumes on several hosts with
//! several owners, options that steer the flows) runs a generated sequence
//! of 1..=8 operations: volume from an image, clone of a volume, snapshot
//! of a volume, volume from a snapshot, delete of a volume. Operations name
//! existing objects by index (modulo how many exist when the operation
//! runs), so a shrunk sequence stays meaningful. The test plays the API's
//! part: new rows `creating`, sources and snapshots must be `available`,
//! the row of a deleted volume is soft-deleted afterwards. A delete may pick
//! a volume that has snapshots (the API would want `cascade`): the planner's
//! delete is the driver call alone, and this reaches its trash path. Each
//! operation is planned with `shell::plan` and executed with
//! `shell::execute`, optionally with the k-th backend call of the execution
//! (cluster change, download or database write, one shared
//! `FaultInjector`) made to fail.
//!
//! Oracle, per operation:
//! * without a fault the execution must do what the plan said;
//! * with one, every undo action succeeds;
//! * when the execution diverged and reports everything undone, the
//!   cluster and the database are exactly as before the operation, except
//!   that rows the operation inserted are there soft-deleted, and the one
//!   column upstream itself writes on failure, the status of the volume (or
//!   snapshot) being created, may be `error` (see [`same_but_error_status`]);
//! * when it ran as planned, the invariants hold (see [`check_invariants`]).
//!
//! Case count: `CINDER_FLOW_CASES` (at least 256).
#![cfg(feature = "testing")]

mod common;

use common::{cases, depth_of, protected_snaps};

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestError, TestRng, TestRunner};

use cinder_flow::config::Config;
use cinder_flow::error::BackendErrorKind;
use cinder_flow::facts::Capabilities;
use cinder_flow::memory::{DbContents, FaultInjector, MemoryCluster, MemoryImageService, MemoryVolumeDb};
use cinder_flow::model::{
    Bytes, GiB, HostFilter, Image, LocationEntry, Snapshot, SnapshotId, Timestamp, Volume, VolumeId, VolumeStatus, GIB,
};
use cinder_flow::plan::{CreatePath, Expect, Operation, Plan, Source};
use cinder_flow::planner::{Policy, Request};
use cinder_flow::ports::{BackendResult, DownloadedImage, Driver};
use cinder_flow::rbd::{Cluster, ImageInfo, ImageSpec, Name, RbdImage, RbdOp, RbdSnapshot};
use cinder_flow::shell::{self, Backends, ExecOptions};

const FSID: &str = "7d5ab9c0-5e1b-4a2b-9c3d-0000000000f5";
const HOST: &str = "hostA@ceph#ceph";
const PROJECT: &str = "project-1";
const INTERNAL: &str = "internal-project";
/// Raw image with an `rbd://` location of this cluster (driver clone).
const IMG_RBD: &str = "aaaaaaaa-0000-4000-8000-000000000001";
/// qcow2 image without locations (download, image cache).
const IMG_QCOW: &str = "aaaaaaaa-0000-4000-8000-000000000002";
/// Raw image whose locations are `cinder://` image volumes.
const IMG_CINDER: &str = "aaaaaaaa-0000-4000-8000-000000000003";
const IMAGES: [&str; 3] = [IMG_RBD, IMG_QCOW, IMG_CINDER];

// ------------------------------------------------------------------ model

/// An image volume: a `cinder://` location of `IMG_CINDER`.
#[derive(Clone, Debug)]
struct ImageVolume {
    host: &'static str,
    project: &'static str,
    /// `image_owner` metadata.
    tag: Option<&'static str>,
}

/// The starting world.
#[derive(Clone, Debug)]
struct WorldSpec {
    /// Sizes (GiB) of the user volumes that exist at the start.
    volumes: Vec<u64>,
    image_volumes: Vec<ImageVolume>,
    /// Glance `owner` of `IMG_CINDER`.
    cinder_image_owner: Option<&'static str>,
    max_clone_depth: i64,
    flatten_from_snapshot: bool,
    cache_enabled: bool,
    cinder_scheme: bool,
    deferred_deletion: bool,
    clone_v2: bool,
    clone_across_pools: bool,
}

/// One operation; indices are taken modulo the objects that exist.
#[derive(Clone, Debug, PartialEq)]
enum Op {
    FromImage { image: usize, size: u64 },
    Clone { volume: usize, extra: u64 },
    Snapshot { volume: usize },
    FromSnapshot { snapshot: usize, extra: u64 },
    Delete { volume: usize },
}

/// The k-th backend call of the execution fails with `kind`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Fault {
    call: usize,
    kind: BackendErrorKind,
}

#[derive(Clone, Debug)]
struct Step {
    op: Op,
    fault: Option<Fault>,
    /// `ExecOptions::mark_error_on_failure`.
    mark_error: bool,
}

#[derive(Clone, Debug)]
struct Case {
    world: WorldSpec,
    steps: Vec<Step>,
}

fn world_spec() -> impl Strategy<Value = WorldSpec> {
    let image_volume = (
        prop::sample::select(vec![HOST, "hostB@ceph#ceph", "hostA@ceph#other"]),
        prop::sample::select(vec![PROJECT, "project-2", INTERNAL]),
        prop::option::of(prop::sample::select(vec![PROJECT, "project-2"])),
    )
        .prop_map(|(host, project, tag)| ImageVolume { host, project, tag });
    (
        prop::collection::vec(1u64..3, 1..3),
        prop::collection::vec(image_volume, 0..3),
        prop::option::of(prop::sample::select(vec![PROJECT, "project-2"])),
        prop::sample::select(vec![5i64, 1, 2, 0, -1]),
        (any::<bool>(), any::<bool>(), prop::bool::weighted(0.8), any::<bool>()),
        (any::<bool>(), prop::bool::weighted(0.2)),
    )
        .prop_map(
            |(
                volumes,
                image_volumes,
                cinder_image_owner,
                max_clone_depth,
                (flatten_from_snapshot, cache_enabled, cinder_scheme, deferred_deletion),
                (clone_v2, clone_across_pools),
            )| WorldSpec {
                volumes,
                image_volumes,
                cinder_image_owner,
                max_clone_depth,
                flatten_from_snapshot,
                cache_enabled,
                cinder_scheme,
                deferred_deletion,
                clone_v2,
                clone_across_pools,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..3, 1u64..3).prop_map(|(image, size)| Op::FromImage { image, size }),
        (0usize..8, 0u64..2).prop_map(|(volume, extra)| Op::Clone { volume, extra }),
        (0usize..8).prop_map(|volume| Op::Snapshot { volume }),
        (0usize..8, 0u64..2).prop_map(|(snapshot, extra)| Op::FromSnapshot { snapshot, extra }),
        (0usize..8).prop_map(|volume| Op::Delete { volume }),
    ]
}

fn fault() -> impl Strategy<Value = Fault> {
    (
        0usize..10,
        prop::sample::select(vec![
            BackendErrorKind::Unavailable,
            BackendErrorKind::Busy,
            BackendErrorKind::NotFound,
            BackendErrorKind::Other,
        ]),
    )
        .prop_map(|(call, kind)| Fault { call, kind })
}

fn step() -> impl Strategy<Value = Step> {
    (op(), prop::option::weighted(0.6, fault()), prop::bool::weighted(0.7)).prop_map(|(op, fault, mark_error)| Step {
        op,
        fault,
        mark_error,
    })
}

fn case() -> impl Strategy<Value = Case> {
    (world_spec(), prop::collection::vec(step(), 1..=8)).prop_map(|(world, steps)| Case { world, steps })
}

// ------------------------------------------------------------------ world

/// A driver that forgets `remove_snap` (answers success, changes nothing):
/// the deliberate bug the shrinking test finds.
#[derive(Debug)]
struct ForgetfulDriver<'a>(&'a MemoryCluster);

#[async_trait::async_trait]
impl Driver for ForgetfulDriver<'_> {
    async fn cluster_info(&self) -> BackendResult<cinder_flow::facts::ClusterInfo> {
        self.0.cluster_info().await
    }
    async fn pool_exists(&self, pool: &str) -> BackendResult<bool> {
        self.0.pool_exists(pool).await
    }
    async fn image_info(&self, image: &ImageSpec) -> BackendResult<Option<ImageInfo>> {
        self.0.image_info(image).await
    }
    async fn apply(&self, op: &RbdOp, source: Option<DownloadedImage>) -> BackendResult<()> {
        match op {
            RbdOp::RemoveSnap { .. } => Ok(()),
            _ => self.0.apply(op, source).await,
        }
    }
    async fn capabilities(&self) -> BackendResult<Capabilities> {
        self.0.capabilities().await
    }
    async fn host_info(&self) -> BackendResult<cinder_flow::facts::HostInfo> {
        self.0.host_info().await
    }
}

struct World {
    cluster: MemoryCluster,
    images: MemoryImageService,
    db: MemoryVolumeDb,
    faults: FaultInjector,
    config: Config,
    clone_across_pools: bool,
    /// User volumes, in creation order (deleted ones are skipped by index).
    volumes: Vec<VolumeId>,
    /// Snapshots, in creation order.
    snapshots: Vec<SnapshotId>,
    /// Image volumes by id, for the owner and host checks.
    image_volumes: BTreeMap<VolumeId, ImageVolume>,
    cinder_image_owner: Option<&'static str>,
    next: usize,
    forgetful: bool,
}

fn user_volume_id(n: usize) -> VolumeId {
    format!("22222222-2222-4222-8222-{n:012}").into()
}

fn image_volume_id(n: usize) -> VolumeId {
    format!("44444444-4444-4444-8444-{n:012}").into()
}

fn snapshot_id(n: usize) -> SnapshotId {
    format!("33333333-3333-4333-8333-{n:012}").into()
}

impl World {
    fn build(spec: &WorldSpec) -> Self {
        let mut c = Cluster::new(FSID);
        c.clone_v2 = spec.clone_v2;
        c.add_pool("volumes");
        let mut glance = RbdImage::new(Bytes(GIB));
        glance.snaps.push(RbdSnapshot {
            name: "snap".into(),
            size: Bytes(GIB),
            protected: true,
            parent: None,
            hidden: false,
        });
        c.put_image(&ImageSpec::new("images", IMG_RBD), glance);
        let faults = FaultInjector::new();
        let db = MemoryVolumeDb::new().with_faults(faults.clone());
        db.queue_fresh_ids((1..=64).map(|n| format!("ffffffff-ffff-4fff-bfff-{n:012x}").into()));
        let mut volumes = Vec::new();
        for (i, size) in spec.volumes.iter().enumerate() {
            let id = user_volume_id(i);
            let mut v = Volume::new(id.clone(), PROJECT, GiB(*size)).on_host(HOST);
            v.created_at = Timestamp::EPOCH.plus_seconds(i as i64);
            c.put_image(&ImageSpec::new("volumes", v.rbd_name()), RbdImage::new(Bytes(size * GIB)));
            db.add_volume(v);
            volumes.push(id);
        }
        let mut image_volumes = BTreeMap::new();
        let mut locations = Vec::new();
        for (i, iv) in spec.image_volumes.iter().enumerate() {
            let id = image_volume_id(i);
            let mut v = Volume::new(id.clone(), iv.project, GiB(1)).on_host(iv.host);
            v.created_at = Timestamp::EPOCH.plus_seconds(10 + i as i64);
            if let Some(t) = iv.tag {
                v.metadata.insert("image_owner".into(), t.into());
            }
            c.put_image(&ImageSpec::new("volumes", v.rbd_name()), RbdImage::new(Bytes(GIB)));
            db.add_volume(v);
            locations.push(LocationEntry::url(format!("cinder://{id}")));
            image_volumes.insert(id, iv.clone());
        }

        let images = MemoryImageService::new().with_faults(faults.clone());
        let mut rbd = Image::raw(IMG_RBD, PROJECT, Bytes(GIB));
        rbd.locations = Some(vec![LocationEntry::url(format!("rbd://{FSID}/images/{IMG_RBD}/snap"))].into());
        images.insert(rbd);
        let mut qcow = Image::raw(IMG_QCOW, PROJECT, Bytes(GIB));
        qcow.disk_format = Some("qcow2".into());
        images.insert(qcow);
        let mut cinder = Image::raw(IMG_CINDER, PROJECT, Bytes(GIB));
        cinder.owner = spec.cinder_image_owner.map(Into::into);
        cinder.locations = Some(locations.into());
        images.insert(cinder);

        let cluster = MemoryCluster::new(c)
            .with_faults(faults.clone())
            .with_capabilities(Capabilities { clone_across_pools: spec.clone_across_pools });

        let mut config = Config::default();
        config.backend.rbd_pool = "volumes".into();
        config.backend.rbd_max_clone_depth = spec.max_clone_depth;
        config.backend.rbd_flatten_volume_from_snapshot = spec.flatten_from_snapshot;
        config.backend.image_volume_cache_enabled = spec.cache_enabled;
        config.backend.enable_deferred_deletion = spec.deferred_deletion;
        if spec.cinder_scheme {
            config.allowed_direct_url_schemes = vec!["cinder".into()];
        }
        config.cinder_internal_tenant_project_id = Some(INTERNAL.into());
        config.cinder_internal_tenant_user_id = Some("internal-user".into());
        Self {
            cluster,
            images,
            db,
            faults,
            config,
            clone_across_pools: spec.clone_across_pools,
            volumes,
            snapshots: Vec::new(),
            image_volumes,
            cinder_image_owner: spec.cinder_image_owner,
            next: spec.volumes.len(),
            forgetful: false,
        }
    }

    fn state(&self) -> (Cluster, DbContents) {
        (self.cluster.snapshot(), self.db.contents())
    }

    /// Visible user volumes in `available` status (what the API lets one
    /// clone or snapshot).
    fn available_volumes(&self) -> Vec<Volume> {
        self.volumes
            .iter()
            .filter_map(|id| self.db.get_volume(id))
            .filter(|v| v.status == VolumeStatus::Available)
            .collect()
    }
}

/// The API's part of an operation (the rows it writes before the volume
/// manager runs) and the request; `None` when the API would refuse or the
/// indices name nothing.
fn prepare(w: &mut World, op: &Op, i: usize) -> Option<Request> {
    let now = Timestamp::EPOCH.plus_seconds(1000 + 100 * i as i64);
    let new_volume = |w: &mut World, size: u64| {
        let id = user_volume_id(w.next);
        w.next += 1;
        let mut v = Volume::new(id.clone(), PROJECT, GiB(size)).on_host(HOST);
        v.status = VolumeStatus::Creating;
        v.created_at = now;
        v
    };
    match op {
        Op::FromImage { image, size } => {
            let v = new_volume(w, *size);
            let id = v.id.clone();
            w.db.add_volume(v);
            w.volumes.push(id.clone());
            let operation = Operation::CreateFromImage { image_id: IMAGES[image % IMAGES.len()].into() };
            Some(Request { operation, volume_id: id, now })
        }
        Op::Clone { volume, extra } => {
            let vols = w.available_volumes();
            let src = vols.get(volume % vols.len().max(1))?.clone();
            let mut v = new_volume(w, src.size.0 + extra);
            v.source_volid = Some(src.id.clone());
            let id = v.id.clone();
            w.db.add_volume(v);
            w.volumes.push(id.clone());
            let operation = Operation::CreateClonedVolume { source_volid: src.id.clone() };
            Some(Request { operation, volume_id: id, now })
        }
        Op::Snapshot { volume } => {
            let vols = w.available_volumes();
            let src = vols.get(volume % vols.len().max(1))?.clone();
            let id = snapshot_id(w.snapshots.len());
            w.db.add_snapshot(Snapshot {
                id: id.clone(),
                volume_id: src.id.clone(),
                volume_size: src.size,
                status: "creating".into(),
                project_id: src.project_id.clone(),
                encryption_key_id: None,
            });
            w.snapshots.push(id.clone());
            let operation = Operation::CreateSnapshot { snapshot_id: id };
            Some(Request { operation, volume_id: src.id.clone(), now })
        }
        Op::FromSnapshot { snapshot, extra } => {
            let snaps: Vec<Snapshot> =
                w.snapshots.iter().filter_map(|s| w.db.get_snapshot(s)).filter(|s| s.status == "available").collect();
            let snap = snaps.get(snapshot % snaps.len().max(1))?.clone();
            let mut v = new_volume(w, snap.volume_size.0 + extra);
            v.snapshot_id = Some(snap.id.clone());
            let id = v.id.clone();
            w.db.add_volume(v);
            w.volumes.push(id.clone());
            let operation = Operation::CreateFromSnapshot { snapshot_id: snap.id.clone() };
            Some(Request { operation, volume_id: id, now })
        }
        Op::Delete { volume } => {
            let vols: Vec<Volume> = w.volumes.iter().filter_map(|id| w.db.get_volume(id)).collect();
            let mut v = vols.get(volume % vols.len().max(1))?.clone();
            // The API marks the row `deleting` before casting to the manager.
            v.status = VolumeStatus::Deleting;
            let id = v.id.clone();
            w.db.add_volume(v);
            Some(Request { operation: Operation::DeleteVolume, volume_id: id, now })
        }
    }
}

// ------------------------------------------------------------------ oracle

/// The database after a failed, fully undone operation, compared with the
/// one before: equal, except that rows the operation inserted are there
/// soft-deleted (Cinder's only way of removing a row), and the status of
/// the volume or snapshot the operation was creating may be `error`. Upstream writes that status
/// itself when a create fails (`OnFailureRescheduleTask.revert` for
/// volumes, `save_and_reraise_exception` in `VolumeManager.create_snapshot`
/// for snapshots) and the executor does the same with
/// `mark_error_on_failure`; the write may also be the call that failed, so
/// the status is either unchanged or `error`. Nothing else is normalised.
fn same_but_error_status(before: &DbContents, after: &DbContents, plan: &Plan, mark_error: bool) -> Result<(), String> {
    let mut normalised = after.clone();
    // Cinder never removes a row: `volume_destroy` soft-deletes it
    // (`deleted = True`), and so does the undo of a row the plan inserted
    // (`DbWrite::DeleteVolumeRow`). A row that did not exist before and is
    // soft-deleted now is invisible to every query: that is "as before".
    let born_dead: Vec<VolumeId> =
        normalised.deleted.iter().filter(|id| !before.volumes.contains_key(*id)).cloned().collect();
    for id in born_dead {
        normalised.deleted.remove(&id);
        normalised.volumes.remove(&id);
    }
    if mark_error {
        match &plan.operation {
            Operation::DeleteVolume => {}
            Operation::CreateSnapshot { snapshot_id } => {
                if let (Some(a), Some(b)) =
                    (normalised.snapshots.get_mut(snapshot_id), before.snapshots.get(snapshot_id))
                {
                    if a.status == "error" {
                        a.status = b.status.clone();
                    }
                }
            }
            _ => {
                if let (Some(a), Some(b)) =
                    (normalised.volumes.get_mut(&plan.volume_id), before.volumes.get(&plan.volume_id))
                {
                    if a.status == VolumeStatus::Error {
                        a.status = b.status.clone();
                    }
                }
            }
        }
    }
    if &normalised == before {
        Ok(())
    } else {
        Err(format!("database changed: {}", db_diff(before, &normalised)))
    }
}

/// The rows that differ, for failure messages.
fn db_diff(before: &DbContents, after: &DbContents) -> String {
    fn map<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
        out: &mut Vec<String>,
        what: &str,
        a: &BTreeMap<K, V>,
        b: &BTreeMap<K, V>,
    ) {
        for (k, v) in a {
            match b.get(k) {
                None => out.push(format!("{what} {k:?} removed (was {v:?})")),
                Some(w) if w != v => out.push(format!("{what} {k:?}: {v:?} -> {w:?}")),
                _ => {}
            }
        }
        for (k, w) in b {
            if !a.contains_key(k) {
                out.push(format!("{what} {k:?} added: {w:?}"));
            }
        }
    }
    let mut out = Vec::new();
    map(&mut out, "volume", &before.volumes, &after.volumes);
    map(&mut out, "snapshot", &before.snapshots, &after.snapshots);
    map(&mut out, "cache", &before.cache, &after.cache);
    map(&mut out, "glance metadata", &before.glance_metadata, &after.glance_metadata);
    if before.deleted != after.deleted {
        out.push(format!("deleted {:?} -> {:?}", before.deleted, after.deleted));
    }
    if before.evictions != after.evictions {
        out.push(format!("evictions {:?} -> {:?}", before.evictions, after.evictions));
    }
    if out.is_empty() {
        out.push("types, services or default types changed".into());
    }
    out.join("\n")
}

/// Every clone's parent snapshot still exists (a delete never removes an
/// image, or a snapshot, that still has children).
fn parents_exist(c: &Cluster) -> Result<(), String> {
    for pool in c.pool_names() {
        for (name, img) in c.images(pool).chain(c.trash(pool)) {
            let Some(p) = &img.parent else { continue };
            let parent = c
                .images(&p.pool)
                .chain(c.trash(&p.pool))
                .find(|(n, _)| *n == p.image)
                .map(|(_, i)| i)
                .ok_or_else(|| format!("{pool}/{name}: parent image {}/{} is gone", p.pool, p.image))?;
            if !parent.snaps.iter().any(|s| s.name == p.snap) {
                return Err(format!("{pool}/{name}: parent snapshot {p:?} is gone"));
            }
        }
    }
    Ok(())
}

/// The invariants after an operation that ran as planned.
fn check_invariants(w: &World, plan: &Plan, before: &Cluster, after: &Cluster) -> Result<(), String> {
    let max = w.config.backend.rbd_max_clone_depth;
    // rbd_max_clone_depth <= 0: no copy-on-write clone of a Cinder volume.
    if max <= 0 {
        for (op, expect) in plan.rbd_ops() {
            if let (RbdOp::Clone { parent, .. }, Expect::Ok) = (op, expect) {
                if parent.pool == "volumes" && parent.snap.ends_with(".clone_snap") {
                    return Err(format!("copy-on-write clone of {parent} with rbd_max_clone_depth {max}"));
                }
            }
        }
    }
    let creates = !matches!(plan.operation, Operation::DeleteVolume | Operation::CreateSnapshot { .. });
    // The new volume's clone chain is within the limit.
    if creates && max > 0 && plan.outcome.is_success() {
        let d = depth_of(after, &format!("volume-{}", plan.volume_id));
        if d as i64 > max {
            return Err(format!("clone depth {d} > {max}"));
        }
    }
    // Image volumes: owner check (CIV-6) and, with the faithful policy, the
    // host (CIV-5); cache hits of this host only (CACHE-2).
    if let (Some(CreatePath::ImageVolumeClone), Some(Source::Volume { volume_id })) = (&plan.path, &plan.source) {
        if let Some(iv) = w.image_volumes.get(volume_id) {
            let owner = w.cinder_image_owner;
            // `_clone_image_volume`: image_owner is the project or equals the
            // volume's `image_owner` tag (None == None passes, as upstream).
            if !(owner == Some(PROJECT) || owner == iv.tag) {
                return Err(format!("cloned image volume {iv:?} for {PROJECT} (image owner {owner:?})"));
            }
            if !w.clone_across_pools && !HostFilter::new(HOST).matches(Some(iv.host)) {
                return Err(format!("cloned image volume {iv:?} onto {HOST}"));
            }
        }
    }
    if let (Some(CreatePath::CacheHit), Some(Source::Cache { volume_id }), false) =
        (&plan.path, &plan.source, w.clone_across_pools)
    {
        let host = w.db.get_volume(volume_id).and_then(|v| v.host);
        if host.as_ref().map(|h| h.as_str()) != Some(HOST) {
            return Err(format!("cache entry {volume_id} of host {host:?} used on {HOST}"));
        }
    }
    // A delete never leaves a clone without its parent.
    parents_exist(after)?;
    // Every protected snapshot the plan left behind has a reason to exist:
    // a child, or the Cinder snapshot row it belongs to.
    // A rename (delete of a volume with clones) keeps its snapshots: follow
    // it back so that a snapshot protected before counts as such.
    let mut renames: Vec<(Name, Name, Name)> = Vec::new();
    for (op, expect) in plan.rbd_ops() {
        if let (RbdOp::Rename { image, new_name }, Expect::Ok) = (op, expect) {
            renames.push((image.pool.clone(), image.name.clone(), new_name.clone()));
        }
    }
    let original = |pool: &str, image: &str| {
        let mut name = image.to_owned();
        for (p, from, to) in renames.iter().rev() {
            if p == pool && *to == name {
                name = from.to_string();
            }
        }
        name
    };
    let protected_before = protected_snaps(before);
    let db = w.db.contents();
    for (pool, image, snap) in protected_snaps(after) {
        if protected_before.contains(&(pool.clone(), original(&pool, &image), snap.clone())) {
            continue;
        }
        let children =
            after.list_children(&ImageSpec::new(pool.as_str(), image.as_str()), Some(&snap)).unwrap_or_default();
        let cinder_snapshot = db.snapshots.keys().any(|id| id.rbd_name() == snap);
        if children.is_empty() && !cinder_snapshot {
            return Err(format!("{pool}/{image}@{snap} protected by the plan without a child"));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ runner

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime")
}

/// Runs a case; `Err` with a description on the first broken promise.
fn run_case(case: &Case, forgetful: bool) -> Result<(), TestCaseError> {
    let rt = rt();
    let mut w = World::build(&case.world);
    w.forgetful = forgetful;
    parents_exist(&w.cluster.snapshot()).map_err(|e| TestCaseError::fail(format!("bad world: {e}")))?;
    for (i, step) in case.steps.iter().enumerate() {
        rt.block_on(run_step(&mut w, step, i))?;
    }
    Ok(())
}

/// One operation: the API's part, plan, execute (with the step's fault),
/// and the oracle. A step whose indices name nothing is skipped.
async fn run_step(w: &mut World, step: &Step, i: usize) -> Result<(), TestCaseError> {
    let Some(request) = prepare(w, &step.op, i) else { return Ok(()) };
    let (cluster_before, db_before) = w.state();
    let forgetful = ForgetfulDriver(&w.cluster);
    let driver: &dyn Driver = if w.forgetful { &forgetful } else { &w.cluster };
    let backends = Backends { driver, images: &w.images, db: &w.db };
    let (plan, _) = shell::plan(backends, &request, &w.config, &Policy::faithful())
        .await
        .map_err(|e| TestCaseError::fail(format!("op {i} {:?}: no plan: {e}", step.op)))?;
    if let Some(f) = step.fault {
        w.faults.fail_call(f.call, f.kind);
    }
    let mut options = ExecOptions::default();
    options.mark_error_on_failure = step.mark_error;
    let run = shell::execute(&plan, backends, &options).await;
    w.faults.clear();
    let (cluster_after, db_after) = w.state();
    match run {
        Ok(report) => {
            check_invariants(w, &plan, &cluster_before, &cluster_after)
                .map_err(|e| TestCaseError::fail(format!("op {i} {:?} ({}): {e}", step.op, plan.operation.name())))?;
            if matches!(plan.operation, Operation::DeleteVolume) && report.outcome.is_success() {
                // The manager destroys the row once the driver is done.
                w.db.add_deleted_volume(
                    w.db.get_volume(&plan.volume_id).ok_or_else(|| TestCaseError::fail("deleted row vanished"))?,
                );
            }
        }
        Err(diverged) => {
            prop_assert!(step.fault.is_some(), "op {} {:?}: diverged without a fault: {}", i, step.op, diverged);
            // One fault per operation, and it was the diverging call: every
            // undo action must succeed (an undo that fails would otherwise
            // only show as "not fully undone" and skip the comparison).
            let failed_undo: Vec<String> =
                diverged.undone.iter().filter(|u| u.result.is_err()).map(|u| u.action.to_string()).collect();
            prop_assert!(failed_undo.is_empty(), "op {} {:?}: undo actions failed: {:?}", i, step.op, failed_undo);
            if diverged.fully_undone() {
                prop_assert!(
                    cluster_after == cluster_before,
                    "op {} {:?}: undone, but the cluster changed\nplan {:#?}\ndiverged {:#?}\nbefore {:#?}\nafter {:#?}",
                    i,
                    step.op,
                    plan.steps,
                    diverged,
                    cluster_before,
                    cluster_after
                );
                same_but_error_status(&db_before, &db_after, &plan, step.mark_error).map_err(|e| {
                    TestCaseError::fail(format!(
                        "op {i} {:?}: undone, but {e}\nplan {:#?}\ndiverged {diverged:#?}",
                        step.op, plan.steps
                    ))
                })?;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    /// Any single backend call of any operation of a random sequence may
    /// fail: a fully undone operation leaves cluster and database as they
    /// were; an operation that ran as planned keeps the invariants.
    #[test]
    fn undo_restores_and_invariants_hold(case in case()) {
        run_case(&case, false)?;
    }
}

/// Shrinking finds a minimal sequence: with a driver that forgets
/// `remove_snap` (so undoing a `create_snap` changes nothing), the property
/// fails, and proptest shrinks the failing case to a single operation that
/// creates an RBD snapshot (a clone or a snapshot) with the fault on the
/// call right after `create_snap`.
#[test]
fn shrinking_gives_a_minimal_failing_sequence() {
    let config = RunnerConfig { cases: 2048, failure_persistence: None, ..RunnerConfig::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]));
    let result = runner.run(&case(), |case| run_case(&case, true));
    let Err(TestError::Fail(why, minimal)) = result else {
        panic!("the forgetful driver went unnoticed: {result:?}");
    };
    eprintln!("minimal counterexample: {minimal:?}");
    assert_eq!(minimal.steps.len(), 1, "not minimal: {minimal:#?} ({why})");
    let step = &minimal.steps[0];
    assert!(matches!(step.op, Op::Snapshot { .. } | Op::Clone { .. }), "{minimal:#?}");
    // Call 0 is `create_snap` (nothing to undo yet); the first call whose
    // failure needs `remove_snap` is call 1.
    assert_eq!(step.fault.map(|f| f.call), Some(1), "{minimal:#?}");
    assert!(why.message().contains("undone, but the cluster changed"), "{why}");
}
