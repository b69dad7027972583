//! What the real-Ceph tests share: the cluster to use, a recording and
//! name-mapping wrapper around `RbdDriver`, materialising a vector's
//! `cluster` on the real cluster, the cephx users that cannot read a
//! vector's unreadable pools, and reading a final state back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use async_trait::async_trait;
use cinder_flow::conformance::vector::{ClusterSpec, RbdImageSpec};
use cinder_flow::conformance::Vector;
use cinder_flow::error::{BackendError, BackendErrorKind};
use cinder_flow::facts::{Capabilities, ClusterInfo, HostInfo};
use cinder_flow::librbd::ffi::{Rados, RbdError};
use cinder_flow::librbd::{RbdConfig, RbdDriver, Watch};
use cinder_flow::model::Bytes;
use cinder_flow::ports::{BackendResult, DownloadedImage, Driver};
use cinder_flow::rbd::{Cluster, ImageInfo, ImageSpec, RbdImage, RbdOp, SnapSpec};

/// The pools `.ci/ceph.sh` creates.
pub const POOLS: [&str; 6] = ["volumes", "images", "images2", "other", "secret", "bench"];

/// `CEPH_CONF`, or `None` with a message saying the tests skip.
pub fn ceph_conf(test: &str) -> Option<PathBuf> {
    match std::env::var_os("CEPH_CONF") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            eprintln!(
                "{test}: skipped: CEPH_CONF is unset (start a throwaway cluster with `bash .ci/ceph.sh start` \
                 and set CEPH_CONF=target/ceph/ceph.conf)"
            );
            None
        }
    }
}

/// A fresh RBD namespace name, unique across runs against one cluster.
pub fn fresh_namespace(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    format!("cf-{tag}-{}-{t}-{n}", std::process::id())
}

/// One recorded call.
pub type Call = (RbdOp, Result<(), BackendErrorKind>);

/// A [`Driver`] over a real `RbdDriver` that shows the world of one vector:
/// its fsid, its pools (others do not exist), its capabilities and free
/// conversion space; records every `apply` in order; and can fail the n-th
/// `apply` without calling the cluster.
#[derive(Debug)]
pub struct Mapped {
    pub real: RbdDriver,
    pub fsid: Option<String>,
    pub pools: BTreeSet<String>,
    pub capabilities: Capabilities,
    pub conversion_free_bytes: u64,
    pub default_features_unset: bool,
    journal: Mutex<Vec<Call>>,
    calls: AtomicUsize,
    fail_at: Mutex<Option<(usize, BackendErrorKind)>>,
}

impl Mapped {
    pub fn new(real: RbdDriver, pools: impl IntoIterator<Item = String>) -> Self {
        Self {
            real,
            fsid: None,
            pools: pools.into_iter().collect(),
            capabilities: Capabilities::default(),
            conversion_free_bytes: 1 << 60,
            default_features_unset: false,
            journal: Mutex::new(Vec::new()),
            calls: AtomicUsize::new(0),
            fail_at: Mutex::new(None),
        }
    }

    /// The calls made so far.
    pub fn journal(&self) -> Vec<Call> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Fails the `n`-th `apply` from now (0-based) with `kind`.
    pub fn fail_call(&self, n: usize, kind: BackendErrorKind) {
        *self.fail_at.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((self.calls.load(Ordering::SeqCst) + n, kind));
    }

    /// A pool of the vector's world as the real cluster's pool: a pool the
    /// world lacks maps to one that does not exist.
    fn pool(&self, pool: &str) -> String {
        if self.pools.contains(pool) {
            pool.to_owned()
        } else {
            format!("cf-absent-{pool}")
        }
    }

    fn image(&self, i: &ImageSpec) -> ImageSpec {
        ImageSpec::new(self.pool(&i.pool), i.name.clone())
    }

    fn snap(&self, s: &SnapSpec) -> SnapSpec {
        SnapSpec { pool: self.pool(&s.pool).into(), image: s.image.clone(), snap: s.snap.clone() }
    }

    fn map_op(&self, op: &RbdOp) -> RbdOp {
        let mut op = op.clone();
        match &mut op {
            RbdOp::Create { image, .. }
            | RbdOp::Import { image, .. }
            | RbdOp::Flatten { image }
            | RbdOp::Resize { image, .. }
            | RbdOp::Remove { image }
            | RbdOp::Rename { image, .. }
            | RbdOp::TrashMove { image, .. }
            | RbdOp::TrashRemove { image }
            | RbdOp::UpdateFeatures { image, .. } => *image = self.image(image),
            RbdOp::Clone { parent, child, .. } => {
                *parent = self.snap(parent);
                *child = self.image(child);
            }
            RbdOp::Copy { src, dst } => {
                *src = self.image(src);
                *dst = self.image(dst);
            }
            RbdOp::CreateSnap { snap }
            | RbdOp::ProtectSnap { snap }
            | RbdOp::UnprotectSnap { snap }
            | RbdOp::RemoveSnap { snap } => *snap = self.snap(snap),
            _ => {}
        }
        op
    }
}

#[async_trait]
impl Driver for Mapped {
    async fn cluster_info(&self) -> BackendResult<ClusterInfo> {
        let mut info = self.real.cluster_info().await?;
        if let Some(f) = &self.fsid {
            info.fsid = f.clone();
        }
        if self.default_features_unset && info.default_features == Some(0) {
            info.default_features = None;
        }
        Ok(info)
    }

    async fn pool_exists(&self, pool: &str) -> BackendResult<bool> {
        self.real.pool_exists(&self.pool(pool)).await
    }

    async fn image_info(&self, image: &ImageSpec) -> BackendResult<Option<ImageInfo>> {
        self.real.image_info(&self.image(image)).await
    }

    async fn apply(&self, op: &RbdOp, source: Option<DownloadedImage>) -> BackendResult<()> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let fail = match *self.fail_at.lock().unwrap_or_else(PoisonError::into_inner) {
            Some((at, kind)) if at == n => Some(kind),
            _ => None,
        };
        let result = match fail {
            Some(kind) => Err(BackendError::new(kind, op.to_string()).with_detail("injected")),
            None => self.real.apply(&self.map_op(op), source).await,
        };
        let kind = result.as_ref().map(|_| ()).map_err(|e| e.kind);
        self.journal.lock().unwrap_or_else(PoisonError::into_inner).push((op.clone(), kind));
        result
    }

    async fn capabilities(&self) -> BackendResult<Capabilities> {
        Ok(self.capabilities.clone())
    }

    async fn host_info(&self) -> BackendResult<HostInfo> {
        Ok(HostInfo { conversion_free_bytes: self.conversion_free_bytes, service_host: None })
    }
}

/// A cluster state as compared: per pool, live images and trashed images.
pub type State = BTreeMap<(String, bool, String), RbdImage>;

/// The state of an in-memory cluster.
pub fn memory_state(c: &Cluster) -> State {
    let mut out = State::new();
    for pool in c.pool_names() {
        for (name, image) in c.images(pool) {
            out.insert((pool.to_owned(), false, name.to_owned()), image.clone());
        }
        for (name, image) in c.trash(pool) {
            out.insert((pool.to_owned(), true, name.to_owned()), image.clone());
        }
    }
    out
}

/// The state of `pools` on the real cluster, through `driver`.
pub async fn real_state(driver: &RbdDriver, pools: &BTreeSet<String>) -> BackendResult<State> {
    let mut out = State::new();
    for pool in pools {
        for (in_trash, names) in [(false, driver.list_images(pool).await?), (true, driver.list_trash(pool).await?)] {
            for name in names {
                let spec = ImageSpec::new(pool.clone(), name.clone());
                if let Some(info) = driver.image_info(&spec).await? {
                    if info.in_trash == in_trash {
                        out.insert((pool.clone(), in_trash, name), info.image);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Why a vector's cluster cannot be built on a real cluster, if it cannot:
/// a reason shared by similar vectors, and the details.
pub fn unmaterialisable(v: &Vector) -> Option<(String, String)> {
    let c = &v.cluster;
    for (pool, images) in &c.pools {
        if !POOLS.contains(&pool.as_str()) {
            return Some(("a pool .ci/ceph.sh does not create".into(), pool.clone()));
        }
        // Readability is made with cephx caps, which are per pool: a pool
        // can be all unreadable (see `unreadable_pools`), not in part.
        if images.values().any(|i| !i.readable) && images.values().any(|i| i.readable) {
            return Some(("a pool with both readable and unreadable images (caps are per pool)".into(), pool.clone()));
        }
        for (name, i) in images {
            if !i.stripe_unit.is_power_of_two() || !(4096..=(32 << 20)).contains(&i.stripe_unit) {
                return Some(("a stripe unit that is no object size".into(), format!("{pool}/{name}")));
            }
            if let Err(why) = lineage(c, pool, name, i) {
                return Some(("a clone history no real image can have".into(), why));
            }
        }
    }
    None
}

/// The parent an image had over its life, oldest first (snapshots, then
/// the head): real images have one parent, then none after a flatten.
fn lineage(c: &ClusterSpec, pool: &str, name: &str, i: &RbdImageSpec) -> Result<Option<SnapSpec>, String> {
    let to_spec = |p: &cinder_flow::conformance::vector::ParentSpec| SnapSpec {
        pool: p.pool.as_str().into(),
        image: p.image.as_str().into(),
        snap: p.snap.as_str().into(),
    };
    let head = i.parent.as_ref().map(to_spec);
    let mut seq: Vec<Option<SnapSpec>> = i
        .snaps
        .iter()
        .map(|s| match &s.parent {
            None => head.clone(),
            Some(p) => p.as_ref().map(to_spec),
        })
        .collect();
    seq.push(head);
    let first = seq[0].clone();
    let mut flattened = false;
    for p in &seq {
        match (p, flattened) {
            (None, _) => flattened = true,
            (Some(x), false) if Some(x) == first.as_ref() => {}
            _ => return Err(format!("{pool}/{name}: its snapshots' parents are no real image's history")),
        }
    }
    if let Some(p) = &first {
        let parent = c.pools.get(p.pool.as_str()).and_then(|imgs| imgs.get(p.image.as_str()));
        let Some(parent) = parent else {
            return Err(format!("{pool}/{name}: parent image {}/{} is absent", p.pool, p.image));
        };
        let Some(snap) = parent.snaps.iter().find(|s| s.name == p.snap) else {
            return Err(format!("{pool}/{name}: parent snapshot {p} is absent"));
        };
        if !snap.protected && !c.clone_v2 {
            return Err(format!(
                "{pool}/{name}: a clone of an unprotected snapshot cannot exist on a clone-v1 cluster"
            ));
        }
        if (p.pool.as_str(), p.image.as_str()) == (pool, name) {
            return Err(format!("{pool}/{name}: its own parent"));
        }
    }
    Ok(first)
}

/// The vector's pools whose images are all unreadable (`readable: false`):
/// the pools the planning client gets no caps for.
pub fn unreadable_pools(v: &Vector) -> BTreeSet<String> {
    v.cluster
        .pools
        .iter()
        .filter(|(_, images)| !images.is_empty() && images.values().all(|i| !i.readable))
        .map(|(pool, _)| pool.clone())
        .collect()
}

/// The cephx user that may use every pool of [`POOLS`] but `denied`, and
/// its key; created through client.admin (as `conf` names it) on first
/// use. The mon cap `profile rbd` lets it read the maps (pools, fsid).
fn deny_user(conf: &Path, denied: &BTreeSet<String>) -> BackendResult<(String, String)> {
    static ADMIN: OnceLock<Mutex<BTreeMap<PathBuf, Arc<Rados>>>> = OnceLock::new();
    static KEYS: OnceLock<Mutex<BTreeMap<(PathBuf, String), String>>> = OnceLock::new();
    let id = format!("cf-deny-{}", denied.iter().map(String::as_str).collect::<Vec<_>>().join("+"));
    let cache_key = (conf.to_owned(), id.clone());
    let mut keys = KEYS.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(k) = keys.get(&cache_key) {
        return Ok((id, k.clone()));
    }
    let what = format!("create cephx user client.{id}");
    let fail = |e: RbdError| BackendError::new(e.kind(), what.clone()).with_source(e);
    let admin = {
        let mut admins = ADMIN.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner);
        match admins.get(conf) {
            Some(a) => Arc::clone(a),
            None => {
                // Kept for the process, like the driver's connections.
                let a = Arc::new(Rados::connect(None, Some(conf), &[]).map_err(fail)?);
                admins.insert(conf.to_owned(), Arc::clone(&a));
                a
            }
        }
    };
    let osd_caps: Vec<String> =
        POOLS.iter().filter(|p| !denied.contains(**p)).map(|p| format!("profile rbd pool={p}")).collect();
    let cmd = serde_json::json!({
        "prefix": "auth get-or-create-key",
        "entity": format!("client.{id}"),
        "caps": ["mon", "profile rbd", "osd", osd_caps.join(", ")],
        "format": "json",
    });
    let (out, status) = admin.mon_command(&cmd.to_string()).map_err(fail)?;
    let key = serde_json::from_str::<serde_json::Value>(&out)
        .ok()
        .and_then(|v| v.get("key").and_then(|k| k.as_str()).map(str::to_owned))
        .ok_or_else(|| {
            BackendError::new(BackendErrorKind::Other, what.clone()).with_detail(format!("{status} {out}"))
        })?;
    keys.insert(cache_key, key.clone());
    Ok((id, key))
}

/// The client configuration a vector's plan runs with: the vector's
/// (`vector_config`), as a cephx user without caps for the vector's
/// unreadable pools when it has any, so that opening their images fails
/// with a permission error as `readable: false` says.
pub fn planning_config(conf: &Path, v: &Vector, namespace: &str) -> BackendResult<RbdConfig> {
    let cfg = vector_config(conf, v, namespace);
    let denied = unreadable_pools(v);
    if denied.is_empty() {
        return Ok(cfg);
    }
    let (id, key) = deny_user(conf, &denied)?;
    Ok(cfg.with_client_id(id).set("key", key))
}

/// Sets each image's `readable` in `state` to what `viewer` (the planning
/// client) finds: whether it can open the image. The state is read by an
/// admin client, which can open everything.
pub async fn observe_readability(state: &mut State, viewer: &RbdDriver) -> BackendResult<()> {
    for ((pool, _, name), image) in state.iter_mut() {
        let spec = ImageSpec::new(pool.clone(), name.clone());
        match viewer.image_info(&spec).await? {
            Some(info) => image.readable = info.image.readable,
            None => {
                return Err(BackendError::new(BackendErrorKind::NotFound, format!("stat {spec}"))
                    .with_detail("the admin client lists it, the planning client finds nothing"))
            }
        }
    }
    Ok(())
}

/// The client configuration a vector's cluster needs.
pub fn vector_config(conf: &Path, v: &Vector, namespace: &str) -> RbdConfig {
    let c = &v.cluster;
    let mut cfg = RbdConfig::with_conf(conf)
        .in_namespace(namespace)
        .set("rbd_default_clone_format", if c.clone_v2 { "2" } else { "1" })
        .set("rbd_default_features", c.rbd_default_features.unwrap_or(0).to_string());
    if !c.reachable {
        // A monitor address where nothing listens, on loopback.
        cfg = cfg.set("mon_host", "127.0.0.1:9").set("client_mount_timeout", "1").set("rados_mon_op_timeout", "1");
    }
    cfg
}

fn order_of(stripe_unit: u64) -> u8 {
    u8::try_from(stripe_unit.trailing_zeros()).unwrap_or(22)
}

/// Builds a vector's cluster in `driver`'s namespace (which it creates in
/// every pool of the vector): images as sparse real images of the vector's
/// sizes, snapshots with their sizes and protection, parents by
/// snapshot-protect-clone (flattened where the vector's history says so).
/// Returns the watches that stand for the images' watchers.
pub async fn materialise(driver: &RbdDriver, holder: &RbdDriver, v: &Vector) -> BackendResult<Vec<Watch>> {
    let c = &v.cluster;
    for pool in c.pools.keys() {
        driver.create_namespace(pool).await?;
    }
    let mut done: BTreeSet<(String, String)> = BTreeSet::new();
    let mut todo: Vec<(String, String)> =
        c.pools.iter().flat_map(|(p, imgs)| imgs.keys().map(move |n| (p.clone(), n.clone()))).collect();
    // Parents first.
    while !todo.is_empty() {
        let before = todo.len();
        let mut rest = Vec::new();
        for (pool, name) in todo {
            let i = &c.pools[&pool][&name];
            let parent = lineage(c, &pool, &name, i).map_err(|m| BackendError::new(BackendErrorKind::Other, m))?;
            if let Some(p) = &parent {
                if !done.contains(&(p.pool.to_string(), p.image.to_string())) {
                    rest.push((pool, name));
                    continue;
                }
            }
            build_image(driver, c, &pool, &name, i, parent).await?;
            done.insert((pool, name));
        }
        if rest.len() == before {
            return Err(BackendError::new(BackendErrorKind::Other, "materialise").with_detail("parent cycle"));
        }
        todo = rest;
    }
    let mut watches = Vec::new();
    for (pool, images) in &c.pools {
        for (name, i) in images {
            for _ in 0..i.watchers {
                watches.push(holder.watch(&ImageSpec::new(pool.clone(), name.clone()))?);
            }
        }
    }
    Ok(watches)
}

async fn build_image(
    driver: &RbdDriver,
    c: &ClusterSpec,
    pool: &str,
    name: &str,
    i: &RbdImageSpec,
    parent: Option<SnapSpec>,
) -> BackendResult<()> {
    let spec = ImageSpec::new(pool, name);
    let order = order_of(i.stripe_unit);
    let mut size = match &parent {
        Some(p) => {
            let pi = &c.pools[p.pool.as_str()][p.image.as_str()];
            let s = pi.snaps.iter().find(|s| s.name == p.snap).expect("checked");
            driver
                .apply(&RbdOp::Clone { parent: p.clone(), child: spec.clone(), order, features: i.features }, None)
                .await?;
            s.size.unwrap_or(pi.size)
        }
        None => {
            let first = i.snaps.first().map_or(i.size, |s| s.size.unwrap_or(i.size));
            driver
                .apply(&RbdOp::Create { image: spec.clone(), size: Bytes(first), order, features: i.features }, None)
                .await?;
            first
        }
    };
    let mut has_parent = parent.is_some();
    let head_parent = i.parent.is_some();
    for s in &i.snaps {
        let snap_has_parent = match &s.parent {
            None => head_parent,
            Some(p) => p.is_some(),
        };
        if has_parent && !snap_has_parent {
            driver.apply(&RbdOp::Flatten { image: spec.clone() }, None).await?;
            has_parent = false;
        }
        let want = s.size.unwrap_or(i.size);
        if want != size {
            driver.apply(&RbdOp::Resize { image: spec.clone(), size: Bytes(want) }, None).await?;
            size = want;
        }
        driver.apply(&RbdOp::CreateSnap { snap: spec.snap(s.name.clone()) }, None).await?;
        if s.protected {
            driver.apply(&RbdOp::ProtectSnap { snap: spec.snap(s.name.clone()) }, None).await?;
        }
    }
    if has_parent && !head_parent {
        driver.apply(&RbdOp::Flatten { image: spec.clone() }, None).await?;
    }
    if size != i.size {
        driver.apply(&RbdOp::Resize { image: spec.clone(), size: Bytes(i.size) }, None).await?;
    }
    Ok(())
}
