//! [`RbdDriver`]: the [`Driver`] port on a real Ceph cluster through
//! librados and librbd (safe code only: every FFI call is in
//! [`super::ffi`]).

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use async_trait::async_trait;

use crate::error::{BackendError, BackendErrorKind};
use crate::facts::{Capabilities, ClusterInfo, HostInfo};
use crate::model::Bytes;
use crate::ports::{BackendResult, DownloadedImage, Driver};
use crate::rbd::{ImageInfo, ImageSpec, Name, RbdImage, RbdOp, RbdSnapshot, Semantics, SnapSpec, FEATURE_LAYERING};

use super::blocking::blocking;
use super::ffi::{free_bytes, IoCtx, LinkedImage, ParentInfo, Rados, RbdError, SnapNamespace};

/// How [`RbdDriver`] reaches its cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RbdConfig {
    /// `ceph.conf`; `None`: librados' search (`$CEPH_CONF`,
    /// `/etc/ceph/ceph.conf`, `~/.ceph/config`, `./ceph.conf`).
    pub conf: Option<PathBuf>,
    /// The cephx user without `client.` (`None`: `admin`), Cinder's
    /// `rbd_user`.
    pub client_id: Option<String>,
    /// Client configuration set on the connection after reading `conf`
    /// (e.g. `rbd_default_clone_format`, `rbd_default_features`,
    /// `client_mount_timeout`), as a `[client]` section would.
    pub overrides: Vec<(String, String)>,
    /// An RBD namespace inside every pool: images are looked up and created
    /// there (`None`: the pool's default namespace, as Cinder uses).
    pub namespace: Option<String>,
    /// Cinder's `image_conversion_dir`: where downloads land, whose free
    /// space [`Driver::host_info`] reports.
    pub conversion_dir: PathBuf,
    /// What [`Driver::capabilities`] reports.
    pub capabilities: Capabilities,
}

impl Default for RbdConfig {
    fn default() -> Self {
        Self {
            conf: None,
            client_id: None,
            overrides: Vec::new(),
            namespace: None,
            conversion_dir: std::env::temp_dir(),
            capabilities: Capabilities::default(),
        }
    }
}

impl RbdConfig {
    /// The configuration file at `path`, everything else default.
    pub fn with_conf(path: impl Into<PathBuf>) -> Self {
        Self { conf: Some(path.into()), ..Self::default() }
    }

    /// Sets a client configuration value on the connection.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.overrides.push((key.into(), value.into()));
        self
    }

    /// Connects as this cephx user (without `client.`), Cinder's `rbd_user`.
    pub fn with_client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// Uses an RBD namespace inside every pool.
    pub fn in_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets the conversion directory.
    pub fn with_conversion_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.conversion_dir = dir.into();
        self
    }

    /// Sets the reported capabilities.
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }
}

#[derive(Debug)]
struct Inner {
    config: RbdConfig,
    conn: Mutex<Option<Arc<Rados>>>,
}

/// A [`Driver`] on a real Ceph cluster (librbd through generated bindings).
///
/// The connection is made on first use and kept (drivers with the same
/// configuration file, user and overrides share one, for the life of the
/// process); a failed connection is `Unavailable` and retried by the next
/// call. librbd calls block, so each
/// runs on a thread of its own while the caller's task waits; any async
/// runtime works.
///
/// Names: an [`ImageSpec`]'s pool is a RADOS pool and its name an image in
/// the configured RBD namespace. A parent or child in another namespace is
/// reported with pool `pool/namespace`.
///
/// ```no_run
/// use cinder_flow::librbd::{RbdConfig, RbdDriver};
/// use cinder_flow::ports::Driver;
/// use cinder_flow::rbd::{ImageSpec, RbdOp};
/// use cinder_flow::model::Bytes;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let driver = RbdDriver::new(RbdConfig::with_conf("/etc/ceph/ceph.conf"));
/// println!("{:?}", driver.cluster_info().await.unwrap());
/// let op = RbdOp::Create { image: ImageSpec::new("volumes", "v1"), size: Bytes(1 << 30), order: 22, features: 1 };
/// driver.apply(&op, None).await.unwrap();
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RbdDriver {
    inner: Arc<Inner>,
}

/// An image held open read-write, as a client using it would: it counts
/// one watcher until dropped.
#[derive(Debug)]
pub struct Watch {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn err(e: RbdError, operation: &str) -> BackendError {
    BackendError::new(e.kind(), operation).with_source(e)
}

/// Parses `rbd_default_features` (a number or feature names).
fn parse_features(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Some(n);
    }
    let mut bits = 0;
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        bits |= match name {
            "layering" => 1,
            "striping" => 2,
            "exclusive-lock" => 4,
            "object-map" => 8,
            "fast-diff" => 16,
            "deep-flatten" => 32,
            "journaling" => 64,
            "data-pool" => 128,
            _ => return None,
        };
    }
    Some(bits)
}

/// librbd's internal "operations" feature bit (op features are in use).
const RBD_FEATURE_OPERATIONS: u64 = 1 << 8;

/// Releases before mimic: their clients cannot open clone-v2 images, so
/// librbd's `auto` clone format stays v1.
const PRE_MIMIC: [&str; 12] = [
    "argonaut",
    "bobtail",
    "cuttlefish",
    "dumpling",
    "emperor",
    "firefly",
    "giant",
    "hammer",
    "infernalis",
    "jewel",
    "kraken",
    "luminous",
];

/// Connections by (conf, user, overrides), shared by every driver of the
/// process and never shut down: librbd finishes some work asynchronously
/// on the connection's threads, and shutting a connection down under it
/// crashes librbd 16.
type ConnKey = (Option<PathBuf>, Option<String>, Vec<(String, String)>);

fn connections() -> &'static Mutex<BTreeMap<ConnKey, Arc<Rados>>> {
    static CONNECTIONS: OnceLock<Mutex<BTreeMap<ConnKey, Arc<Rados>>>> = OnceLock::new();
    CONNECTIONS.get_or_init(|| Mutex::new(BTreeMap::new()))
}

impl Inner {
    fn rados(&self) -> BackendResult<Arc<Rados>> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(r) = conn.as_ref() {
            return Ok(Arc::clone(r));
        }
        let c = &self.config;
        let key = (c.conf.clone(), c.client_id.clone(), c.overrides.clone());
        let mut shared = connections().lock().unwrap_or_else(PoisonError::into_inner);
        let rados = match shared.get(&key) {
            Some(r) => Arc::clone(r),
            None => {
                let rados = Rados::connect(c.client_id.as_deref(), c.conf.as_deref(), &c.overrides).map_err(|e| {
                    BackendError::new(BackendErrorKind::Unavailable, "connect to the cluster").with_source(e)
                })?;
                let rados = Arc::new(rados);
                shared.insert(key, Arc::clone(&rados));
                rados
            }
        };
        *conn = Some(Arc::clone(&rados));
        Ok(rados)
    }

    fn ns(&self) -> Option<&str> {
        self.config.namespace.as_deref()
    }

    fn io<'r>(&self, rados: &'r Rados, pool: &str, operation: &str) -> BackendResult<IoCtx<'r>> {
        rados.ioctx(pool, self.ns()).map_err(|e| err(e, operation))
    }

    /// The features Cinder gives new images: `rbd_default_features`, or
    /// layering when 0 (`RBDDriver.__init__`).
    fn cinder_features(&self, rados: &Rados) -> u64 {
        match rados.conf_get("rbd_default_features").ok().as_deref().and_then(parse_features) {
            Some(f) if f != 0 => f,
            _ => FEATURE_LAYERING,
        }
    }

    fn cluster_info(&self) -> BackendResult<ClusterInfo> {
        let rados = self.rados()?;
        let fsid = rados.fsid().map_err(|e| err(e, "get the cluster fsid"))?;
        let format = rados.conf_get("rbd_default_clone_format").unwrap_or_else(|_| "auto".into());
        let clone_v2 = match format.trim() {
            "1" => false,
            "2" => true,
            _ => {
                let (out, _) = rados
                    .mon_command(r#"{"prefix": "osd dump", "format": "json"}"#)
                    .map_err(|e| err(e, "read the OSD map"))?;
                let dump: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
                let min = dump.get("require_min_compat_client").and_then(|v| v.as_str()).unwrap_or("luminous");
                !PRE_MIMIC.contains(&min)
            }
        };
        let default_features = rados.conf_get("rbd_default_features").ok().as_deref().and_then(parse_features);
        Ok(ClusterInfo { fsid, clone_v2, default_features, semantics: Semantics::Librbd })
    }

    fn spec_of(&self, l: &LinkedImage) -> ImageSpec {
        if l.namespace == self.ns().unwrap_or("") {
            ImageSpec::new(l.pool.clone(), l.name.clone())
        } else {
            ImageSpec::new(format!("{}/{}", l.pool, l.namespace), l.name.clone())
        }
    }

    /// A parent as a [`SnapSpec`]; a snapshot in the trash namespace (clone
    /// v2, removed while it had children) is named by the name it had.
    fn parent_spec(&self, rados: &Rados, p: &ParentInfo) -> BackendResult<SnapSpec> {
        let image = self.spec_of(&p.image);
        let mut snap = p.snap_name.clone();
        if p.snap_in_trash {
            let what = format!("read the trashed snapshot of {image}");
            let io = rados.ioctx(&p.image.pool, Some(&p.image.namespace)).map_err(|e| err(e, &what))?;
            let img = io.open_by_id_read_only(&p.image.id).map_err(|e| err(e, &what))?;
            snap = img.trash_snap_name(p.snap_id).map_err(|e| err(e, &what))?;
        }
        Ok(image.snap(snap))
    }

    fn image_info(&self, spec: &ImageSpec) -> BackendResult<Option<ImageInfo>> {
        let what = format!("stat {spec}");
        let rados = self.rados()?;
        let io = self.io(&rados, &spec.pool, &what)?;
        let (img, in_trash) = match io.open_read_only(&spec.name) {
            Ok(i) => (i, false),
            Err(e) if e.is_permission() => {
                let image = RbdImage {
                    size: Bytes(0),
                    features: 0,
                    stripe_unit: Bytes(0),
                    watchers: 0,
                    readable: false,
                    parent: None,
                    snaps: Vec::new(),
                };
                return Ok(Some(ImageInfo { image, children: BTreeMap::new(), in_trash: false }));
            }
            Err(e) if e.is_not_found() => {
                let trash = io.trash_list().map_err(|e| err(e, &what))?;
                match trash.iter().find(|t| t.name == spec.name) {
                    None => return Ok(None),
                    Some(t) => (io.open_by_id_read_only(&t.id).map_err(|e| err(e, &what))?, true),
                }
            }
            Err(e) => return Err(err(e, &what)),
        };
        let e = |e: RbdError| err(e, &what);
        let size = img.size().map_err(e)?;
        // The `operations` bit is librbd-internal (clone v2 sets it on
        // parents and children); it is no feature a client asks for.
        let features = img.features().map_err(e)? & !RBD_FEATURE_OPERATIONS;
        let stripe_unit = img.stripe_unit().map_err(e)?;
        let watchers = u32::try_from(img.watchers().map_err(e)?).unwrap_or(u32::MAX);
        let parent = match img.parent().map_err(e)? {
            Some(p) => Some(self.parent_spec(&rados, &p)?),
            None => None,
        };
        let mut snaps = Vec::new();
        let mut children = BTreeMap::new();
        for s in img.snaps().map_err(e)? {
            let (name, hidden, protected) = match &s.namespace {
                SnapNamespace::User => (Name::from(s.name.as_str()), false, img.snap_is_protected(&s.name).map_err(e)?),
                SnapNamespace::Trash { original_name } => (Name::from(original_name.as_str()), true, false),
                SnapNamespace::Other => continue,
            };
            img.set_snap_id(s.id).map_err(e)?;
            let snap_parent = match img.parent().map_err(e)? {
                Some(p) => Some(self.parent_spec(&rados, &p)?),
                None => None,
            };
            let kids: BTreeSet<ImageSpec> = img.children().map_err(e)?.iter().map(|l| self.spec_of(l)).collect();
            if !kids.is_empty() {
                children.insert(name.clone(), kids.into_iter().collect());
            }
            snaps.push(RbdSnapshot { name, size: Bytes(s.size), protected, parent: snap_parent, hidden });
        }
        img.set_head().map_err(e)?;
        let image = RbdImage {
            size: Bytes(size),
            features,
            stripe_unit: Bytes(stripe_unit),
            watchers,
            readable: true,
            parent,
            snaps,
        };
        Ok(Some(ImageInfo { image, children, in_trash }))
    }

    fn apply(&self, op: &RbdOp, source: Option<&Path>) -> BackendResult<()> {
        let what = op.to_string();
        let e = |x: RbdError| err(x, &what);
        let rados = self.rados()?;
        let r = &*rados;
        match op {
            RbdOp::Create { image, size, order, features } => {
                self.io(r, &image.pool, &what)?.create(&image.name, size.0, *order, *features).map_err(e)
            }
            RbdOp::Import { image, size, order } => {
                let io = self.io(r, &image.pool, &what)?;
                io.create(&image.name, size.0, *order, self.cinder_features(r)).map_err(e)?;
                match source {
                    None => Ok(()),
                    Some(path) => {
                        let img = io.open(&image.name).map_err(e)?;
                        import_sparse(&img, path, size.0, 1u64 << order.min(&30), &what)
                    }
                }
            }
            RbdOp::Clone { parent, child, order, features } => {
                let pio = self.io(r, &parent.pool, &what)?;
                let cio = match self.io(r, &child.pool, &what) {
                    Ok(io) => io,
                    Err(pool_error) => {
                        // librbd opens the parent first: its errors come first.
                        let img = pio.open_read_only(&parent.image).map_err(e)?;
                        img.snaps()
                            .map_err(e)?
                            .iter()
                            .find(|s| s.name == parent.snap && s.namespace == SnapNamespace::User)
                            .ok_or_else(|| BackendError::new(BackendErrorKind::NotFound, what.clone()))?;
                        return Err(pool_error);
                    }
                };
                pio.clone_to(&parent.image, &parent.snap, &cio, &child.name, *order, *features).map_err(e)
            }
            RbdOp::Copy { src, dst } => {
                let sio = self.io(r, &src.pool, &what)?;
                let img = sio.open_read_only(&src.name).map_err(e)?;
                let dio = self.io(r, &dst.pool, &what)?;
                img.copy_to(&dio, &dst.name).map_err(e)
            }
            RbdOp::CreateSnap { snap } => self.with_image(r, &snap.image_spec(), &what, |i| i.snap_create(&snap.snap)),
            RbdOp::ProtectSnap { snap } => {
                self.with_image(r, &snap.image_spec(), &what, |i| i.snap_protect(&snap.snap))
            }
            RbdOp::UnprotectSnap { snap } => {
                self.with_image(r, &snap.image_spec(), &what, |i| i.snap_unprotect(&snap.snap))
            }
            RbdOp::RemoveSnap { snap } => self.with_image(r, &snap.image_spec(), &what, |i| i.snap_remove(&snap.snap)),
            RbdOp::Flatten { image } => self.with_image(r, image, &what, |i| i.flatten()),
            RbdOp::Resize { image, size } => self.with_image(r, image, &what, |i| i.resize(size.0)),
            RbdOp::UpdateFeatures { image, features, enabled } => {
                self.with_image(r, image, &what, |i| i.update_features(*features, *enabled))
            }
            RbdOp::Remove { image } => self.io(r, &image.pool, &what)?.remove(&image.name).map_err(e),
            RbdOp::Rename { image, new_name } => {
                self.io(r, &image.pool, &what)?.rename(&image.name, new_name).map_err(e)
            }
            RbdOp::TrashMove { image, delay } => {
                self.io(r, &image.pool, &what)?.trash_move(&image.name, *delay).map_err(e)
            }
            RbdOp::TrashRemove { image } => {
                let io = self.io(r, &image.pool, &what)?;
                let trash = io.trash_list().map_err(e)?;
                let entry = trash
                    .iter()
                    .find(|t| t.name == image.name)
                    .ok_or_else(|| BackendError::new(BackendErrorKind::NotFound, what.clone()))?;
                io.trash_remove(&entry.id, false).map_err(e)
            }
        }
    }

    fn with_image(
        &self,
        rados: &Rados,
        image: &ImageSpec,
        what: &str,
        f: impl FnOnce(&super::ffi::Image<'_>) -> Result<(), RbdError>,
    ) -> BackendResult<()> {
        let io = self.io(rados, &image.pool, what)?;
        let img = io.open(&image.name).map_err(|x| err(x, what))?;
        f(&img).map_err(|x| err(x, what))
    }
}

/// Writes the file at `path` into `img` (`size` bytes at most), skipping
/// runs of zeros so the image stays sparse, `chunk` bytes at a time.
fn import_sparse(img: &super::ffi::Image<'_>, path: &Path, size: u64, chunk: u64, what: &str) -> BackendResult<()> {
    const BLOCK: usize = 4096;
    let io_err = |e: std::io::Error| {
        BackendError::new(BackendErrorKind::Other, what).with_detail(format!("{}: {e}", path.display()))
    };
    let mut file = File::open(path).map_err(io_err)?;
    let chunk = usize::try_from(chunk).unwrap_or(4 << 20).max(BLOCK);
    let mut buf = vec![0u8; chunk];
    let mut offset = 0u64;
    while offset < size {
        let want = usize::try_from((size - offset).min(chunk as u64)).unwrap_or(chunk);
        let mut got = 0;
        while got < want {
            match file.read(&mut buf[got..want]).map_err(io_err)? {
                0 => break,
                n => got += n,
            }
        }
        if got == 0 {
            break;
        }
        // Non-zero runs of whole blocks.
        let mut i = 0;
        while i < got {
            let end = (i + BLOCK).min(got);
            if buf[i..end].iter().all(|&b| b == 0) {
                i = end;
                continue;
            }
            let start = i;
            while i < got {
                let end = (i + BLOCK).min(got);
                if buf[i..end].iter().all(|&b| b == 0) {
                    break;
                }
                i = end;
            }
            img.write_at(offset + start as u64, &buf[start..i]).map_err(|e| err(e, what))?;
        }
        offset += got as u64;
    }
    img.flush().map_err(|e| err(e, what))
}

impl RbdDriver {
    /// A driver for the cluster `config` names (connects on first use).
    pub fn new(config: RbdConfig) -> Self {
        Self { inner: Arc::new(Inner { config, conn: Mutex::new(None) }) }
    }

    /// Its configuration.
    pub fn config(&self) -> &RbdConfig {
        &self.inner.config
    }

    /// Connects now (blocking); `Unavailable` when the cluster cannot be
    /// reached.
    pub fn connect(&self) -> BackendResult<()> {
        self.inner.rados().map(drop)
    }

    /// Images of a pool (not the trash), sorted by name.
    pub async fn list_images(&self, pool: &str) -> BackendResult<Vec<String>> {
        let (inner, pool) = (Arc::clone(&self.inner), pool.to_owned());
        blocking("list images", move || {
            let what = format!("list images of {pool}");
            let rados = inner.rados()?;
            let mut names = inner.io(&rados, &pool, &what)?.list().map_err(|e| err(e, &what))?;
            names.sort();
            Ok(names)
        })
        .await
    }

    /// Names of the images in a pool's trash, sorted.
    pub async fn list_trash(&self, pool: &str) -> BackendResult<Vec<String>> {
        let (inner, pool) = (Arc::clone(&self.inner), pool.to_owned());
        blocking("list the trash", move || {
            let what = format!("list the trash of {pool}");
            let rados = inner.rados()?;
            let trash = inner.io(&rados, &pool, &what)?.trash_list().map_err(|e| err(e, &what))?;
            let mut names: Vec<String> = trash.into_iter().map(|t| t.name).collect();
            names.sort();
            Ok(names)
        })
        .await
    }

    /// Creates the configured RBD namespace in `pool` (nothing without
    /// one; an existing namespace is fine).
    pub async fn create_namespace(&self, pool: &str) -> BackendResult<()> {
        let (inner, pool) = (Arc::clone(&self.inner), pool.to_owned());
        blocking("create a namespace", move || {
            let Some(ns) = inner.ns() else { return Ok(()) };
            let what = format!("create namespace {pool}/{ns}");
            let rados = inner.rados()?;
            let io = rados.ioctx(&pool, None).map_err(|e| err(e, &what))?;
            match io.namespace_create(ns) {
                Err(e) if e.kind() != BackendErrorKind::AlreadyExists => Err(err(e, &what)),
                _ => Ok(()),
            }
        })
        .await
    }

    /// Holds `image` open read-write on a thread of its own (one more
    /// watcher) until the returned [`Watch`] is dropped. Blocks until the
    /// image is open.
    pub fn watch(&self, image: &ImageSpec) -> BackendResult<Watch> {
        let (inner, image) = (Arc::clone(&self.inner), image.clone());
        let (opened_tx, opened_rx) = mpsc::channel::<BackendResult<()>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("librbd-watch".into())
            .spawn(move || {
                let what = format!("open {image}");
                let run = || -> BackendResult<()> {
                    let rados = inner.rados()?;
                    let io = inner.io(&rados, &image.pool, &what)?;
                    let img = io.open(&image.name).map_err(|e| err(e, &what))?;
                    let _ = opened_tx.send(Ok(()));
                    // Until the Watch is dropped (the sender goes away).
                    let _ = stop_rx.recv();
                    drop(img);
                    Ok(())
                };
                if let Err(e) = run() {
                    let _ = opened_tx.send(Err(e));
                }
            })
            .map_err(|e| BackendError::new(BackendErrorKind::Other, "watch").with_detail(e.to_string()))?;
        let mut watch = Watch { stop: Some(stop_tx), thread: Some(thread) };
        match opened_rx.recv() {
            Ok(Ok(())) => Ok(watch),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                watch.stop = None;
                Err(BackendError::new(BackendErrorKind::Other, "watch").with_detail("the watch thread ended"))
            }
        }
    }
}

#[async_trait]
impl Driver for RbdDriver {
    async fn cluster_info(&self) -> BackendResult<ClusterInfo> {
        let inner = Arc::clone(&self.inner);
        blocking("read cluster facts", move || inner.cluster_info()).await
    }

    async fn pool_exists(&self, pool: &str) -> BackendResult<bool> {
        let (inner, pool) = (Arc::clone(&self.inner), pool.to_owned());
        blocking("look up a pool", move || {
            let rados = inner.rados()?;
            rados.pool_exists(&pool).map_err(|e| err(e, &format!("look up pool {pool}")))
        })
        .await
    }

    async fn image_info(&self, image: &ImageSpec) -> BackendResult<Option<ImageInfo>> {
        let (inner, image) = (Arc::clone(&self.inner), image.clone());
        blocking("stat an image", move || inner.image_info(&image)).await
    }

    async fn apply(&self, op: &RbdOp, source: Option<DownloadedImage>) -> BackendResult<()> {
        let (inner, op) = (Arc::clone(&self.inner), op.clone());
        let path = source.and_then(|d| d.path);
        blocking("apply an rbd call", move || inner.apply(&op, path.as_deref())).await
    }

    async fn capabilities(&self) -> BackendResult<Capabilities> {
        Ok(self.inner.config.capabilities.clone())
    }

    async fn host_info(&self) -> BackendResult<HostInfo> {
        let dir = self.inner.config.conversion_dir.clone();
        blocking("stat the conversion directory", move || {
            let free = free_bytes(&dir).map_err(|e| {
                BackendError::new(BackendErrorKind::Other, format!("stat {}", dir.display())).with_source(e)
            })?;
            Ok(HostInfo { conversion_free_bytes: free, service_host: None })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_features_parse_as_numbers_or_names() {
        assert_eq!(parse_features("61"), Some(61));
        assert_eq!(parse_features("layering, exclusive-lock"), Some(5));
        assert_eq!(parse_features("layering,bogus"), None);
    }
}
