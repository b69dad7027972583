//! A pure model of the librbd calls Cinder's RBD driver makes.
//!
//! [`Cluster`] holds pools, images, snapshots, clone links and the trash, and
//! [`Cluster::apply`] performs one cluster-changing [`RbdOp`] with the error
//! semantics of docs/FORMAT.md §9.1 (which follow librbd:
//! cloning needs a protected snapshot on clone-v1 clusters, removing needs no
//! snapshots and no watchers, unprotecting needs no children, ...).
//!
//! The same model serves two purposes:
//!
//! * the in-memory backend ([`crate::memory::MemoryCluster`]) is a complete
//!   `Cluster` behind a lock;
//! * the planner predicts what each call of a plan will do by applying it to a
//!   *partial* `Cluster` built from the facts it gathered. A partial cluster
//!   knows only some pools and images; touching anything else yields
//!   [`ApplyError::Unknown`], which the planner turns into a request for that
//!   fact. So librbd's semantics are written once, and a plan's expectations
//!   are exactly what the in-memory backend will do.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::BackendErrorKind;
use crate::model::Bytes;
pub use crate::model::Name;

/// An image: pool and name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ImageSpec {
    /// RADOS pool.
    pub pool: Name,
    /// Image name.
    pub name: Name,
}

impl ImageSpec {
    /// `pool/name`.
    pub fn new(pool: impl Into<Name>, name: impl Into<Name>) -> Self {
        Self { pool: pool.into(), name: name.into() }
    }

    /// The snapshot `snap` of this image.
    pub fn snap(&self, snap: impl Into<Name>) -> SnapSpec {
        SnapSpec { pool: self.pool.clone(), image: self.name.clone(), snap: snap.into() }
    }
}

impl fmt::Display for ImageSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let f = &mut crate::escape::Escaper::new(f);
        write!(f, "{}/{}", self.pool, self.name)
    }
}

impl fmt::Debug for ImageSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageSpec({self})")
    }
}

/// A snapshot: pool, image and snapshot name (a clone's parent).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SnapSpec {
    /// RADOS pool.
    pub pool: Name,
    /// Image name.
    pub image: Name,
    /// Snapshot name.
    pub snap: Name,
}

impl SnapSpec {
    /// The image this snapshot belongs to.
    pub fn image_spec(&self) -> ImageSpec {
        ImageSpec { pool: self.pool.clone(), name: self.image.clone() }
    }
}

impl fmt::Display for SnapSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let f = &mut crate::escape::Escaper::new(f);
        write!(f, "{}/{}@{}", self.pool, self.image, self.snap)
    }
}

impl fmt::Debug for SnapSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SnapSpec({self})")
    }
}

/// librbd's layering feature bit: the only feature Cinder asks for when the
/// cluster sets no `rbd_default_features`.
pub const FEATURE_LAYERING: u64 = 1;

/// librbd's striping v2 feature bit: set on images whose stripe unit is not
/// their object size.
pub const FEATURE_STRIPINGV2: u64 = 2;

/// A snapshot of an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RbdSnapshot {
    /// Snapshot name.
    pub name: Name,
    /// Size of the image when the snapshot was taken.
    pub size: Bytes,
    /// Protected snapshots cannot be removed; clone v1 clones need one.
    pub protected: bool,
    /// The parent the image had when the snapshot was taken.
    pub parent: Option<SnapSpec>,
    /// Clone v2 only: removed while it still had children, so hidden from
    /// listings but still referenced by them.
    #[serde(default)]
    pub hidden: bool,
}

/// An RBD image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RbdImage {
    /// Size in bytes.
    pub size: Bytes,
    /// Feature bits.
    pub features: u64,
    /// Stripe unit in bytes (a clone needs one at least as large).
    pub stripe_unit: Bytes,
    /// Clients that have the image open; removal needs none.
    pub watchers: u32,
    /// `false`: opening it fails with a permission error (e.g. a glance pool
    /// Cinder's user cannot read).
    pub readable: bool,
    /// The snapshot this image is a copy-on-write clone of.
    pub parent: Option<SnapSpec>,
    /// Snapshots, in creation order.
    pub snaps: Vec<RbdSnapshot>,
}

impl RbdImage {
    /// A plain image of `size` bytes with layering and a 4 MiB stripe unit.
    pub fn new(size: Bytes) -> Self {
        Self {
            size,
            features: FEATURE_LAYERING,
            stripe_unit: Bytes(4 << 20),
            watchers: 0,
            readable: true,
            parent: None,
            snaps: Vec::new(),
        }
    }

    /// A visible snapshot by name.
    pub fn snap(&self, name: &str) -> Option<&RbdSnapshot> {
        self.snaps.iter().find(|s| s.name == name && !s.hidden)
    }

    fn snap_mut(&mut self, name: &str) -> Option<&mut RbdSnapshot> {
        self.snaps.iter_mut().find(|s| s.name == name && !s.hidden)
    }

    /// Visible snapshots, in creation order (`list_snaps`).
    pub fn visible_snaps(&self) -> impl Iterator<Item = &RbdSnapshot> {
        self.snaps.iter().filter(|s| !s.hidden)
    }
}

/// What a driver reports about one image: the image and, for each visible
/// snapshot, its children (which librbd derives from the whole cluster).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// The image.
    pub image: RbdImage,
    /// Children of each snapshot, by snapshot name, sorted by (pool, image).
    pub children: BTreeMap<Name, Vec<ImageSpec>>,
    /// Whether the image sits in the trash rather than the pool's namespace.
    #[serde(default)]
    pub in_trash: bool,
}

/// One cluster-changing librbd call (read-only calls are not ops).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RbdOp {
    /// `RBD.create(ioctx, name, size, order, old_format=False, features)`.
    Create {
        /// The new image.
        image: ImageSpec,
        /// Size in bytes.
        size: Bytes,
        /// Object order (`log2` of the object size).
        order: u8,
        /// Feature bits.
        features: u64,
    },
    /// `RBD.clone(p_ioctx, p_name, p_snap, c_ioctx, c_name, features, order)`.
    Clone {
        /// The parent snapshot.
        parent: SnapSpec,
        /// The new clone.
        child: ImageSpec,
        /// Object order of the clone.
        order: u8,
        /// Feature bits of the clone.
        features: u64,
    },
    /// `Image.copy(dest_ioctx, dest_name)`: a full, independent copy.
    Copy {
        /// Source image (head).
        src: ImageSpec,
        /// New image.
        dst: ImageSpec,
    },
    /// `Image.create_snap(name)`.
    CreateSnap {
        /// The snapshot to create.
        snap: SnapSpec,
    },
    /// `Image.protect_snap(name)`.
    ProtectSnap {
        /// The snapshot.
        snap: SnapSpec,
    },
    /// `Image.unprotect_snap(name)`.
    UnprotectSnap {
        /// The snapshot.
        snap: SnapSpec,
    },
    /// `Image.remove_snap(name)`.
    RemoveSnap {
        /// The snapshot.
        snap: SnapSpec,
    },
    /// `Image.flatten()`: copy the parent's data in and drop the link.
    Flatten {
        /// The clone.
        image: ImageSpec,
    },
    /// `Image.resize(size)`.
    Resize {
        /// The image.
        image: ImageSpec,
        /// New size in bytes.
        size: Bytes,
    },
    /// `RBD.remove(ioctx, name)`.
    Remove {
        /// The image.
        image: ImageSpec,
    },
    /// `RBD.rename(ioctx, src, dst)`.
    Rename {
        /// The image.
        image: ImageSpec,
        /// Its new name in the same pool.
        new_name: Name,
    },
    /// `RBD.trash_move(ioctx, name, delay)`.
    TrashMove {
        /// The image.
        image: ImageSpec,
        /// Seconds before the trash may purge it.
        delay: u64,
    },
    /// `RBD.trash_remove(ioctx, id)` of a trashed image, by its name.
    TrashRemove {
        /// The trashed image.
        image: ImageSpec,
    },
    /// `Image.update_features(features, enabled)`.
    UpdateFeatures {
        /// The image.
        image: ImageSpec,
        /// Feature bits to change.
        features: u64,
        /// Enable or disable them.
        enabled: bool,
    },
    /// `rbd import --new-format --order N FILE NAME` of a downloaded image:
    /// creates the image from a local file of `size` bytes.
    Import {
        /// The new image.
        image: ImageSpec,
        /// Size of the local file.
        size: Bytes,
        /// Object order.
        order: u8,
    },
}

impl RbdOp {
    /// The short name of the call (`create`, `clone`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Create { .. } => "create",
            Self::Clone { .. } => "clone",
            Self::Copy { .. } => "copy",
            Self::CreateSnap { .. } => "create_snap",
            Self::ProtectSnap { .. } => "protect_snap",
            Self::UnprotectSnap { .. } => "unprotect_snap",
            Self::RemoveSnap { .. } => "remove_snap",
            Self::Flatten { .. } => "flatten",
            Self::Resize { .. } => "resize",
            Self::Remove { .. } => "remove",
            Self::Rename { .. } => "rename",
            Self::TrashMove { .. } => "trash_move",
            Self::TrashRemove { .. } => "trash_remove",
            Self::UpdateFeatures { .. } => "update_features",
            Self::Import { .. } => "import",
        }
    }
}

impl fmt::Display for RbdOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let f = &mut crate::escape::Escaper::new(f);
        match self {
            Self::Create { image, size, .. } => write!(f, "create {image} ({size})"),
            Self::Clone { parent, child, .. } => write!(f, "clone {parent} -> {child}"),
            Self::Copy { src, dst } => write!(f, "copy {src} -> {dst}"),
            Self::CreateSnap { snap } => write!(f, "create snapshot {snap}"),
            Self::ProtectSnap { snap } => write!(f, "protect snapshot {snap}"),
            Self::UnprotectSnap { snap } => write!(f, "unprotect snapshot {snap}"),
            Self::RemoveSnap { snap } => write!(f, "remove snapshot {snap}"),
            Self::Flatten { image } => write!(f, "flatten {image}"),
            Self::Resize { image, size } => write!(f, "resize {image} to {size}"),
            Self::Remove { image } => write!(f, "remove {image}"),
            Self::Rename { image, new_name } => write!(f, "rename {image} to {new_name}"),
            Self::TrashMove { image, delay } => write!(f, "move {image} to the trash (delay {delay} s)"),
            Self::TrashRemove { image } => write!(f, "purge {image} from the trash"),
            Self::UpdateFeatures { image, features, enabled } => {
                write!(f, "{} features {features:#x} on {image}", if *enabled { "enable" } else { "disable" })
            }
            Self::Import { image, size, .. } => write!(f, "import {size} into {image}"),
        }
    }
}

/// A fact a partial cluster lacks.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum ClusterFact {
    /// Whether a pool exists.
    Pool {
        /// The pool.
        pool: Name,
    },
    /// An image (and its snapshots' children), or that it does not exist.
    Image {
        /// The image.
        image: ImageSpec,
    },
}

/// Why [`Cluster::apply`] or a read did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyError {
    /// librbd would fail with this kind (nothing changed).
    Failed(BackendErrorKind),
    /// A partial cluster does not know enough to tell.
    Unknown(ClusterFact),
}

impl From<BackendErrorKind> for ApplyError {
    fn from(k: BackendErrorKind) -> Self {
        Self::Failed(k)
    }
}

type Res<T> = Result<T, ApplyError>;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Pool {
    images: BTreeMap<Name, RbdImage>,
    trash: BTreeMap<Name, RbdImage>,
}

/// What a partial cluster knows beyond its images.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Knowledge {
    /// Pools known to exist or known to be absent.
    pools: BTreeMap<Name, bool>,
    /// Images known not to exist.
    absent: BTreeSet<ImageSpec>,
    /// Children of snapshots that are not themselves in the view.
    #[serde(with = "crate::serde_map")]
    external_children: BTreeMap<SnapSpec, BTreeSet<ImageSpec>>,
}

/// Whose librbd error rules a [`Cluster`] follows where they differ.
///
/// The conformance format (docs/FORMAT.md §9.1, and the oracle that produced the
/// vectors) and a real librbd 16 (Pacific, measured by `tests/rbd_real.rs`)
/// disagree in three places; everything else is the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Semantics {
    /// docs/FORMAT.md §9.1: `remove` of an image with watchers *and* snapshots
    /// is `Busy`; `trash_move` of a watched image is `Busy`;
    /// `unprotect_snap` of a snapshot with children is `Busy`.
    /// The default, so that plans match the conformance vectors.
    #[default]
    Conformance,
    /// librbd 16: `remove` checks snapshots first (`HasSnapshots`, errno
    /// ENOTEMPTY) and watchers after; `trash_move` does not refuse a
    /// watched image; with clone v2, `unprotect_snap` ignores the
    /// snapshot's children (v2 clones need no protection, and librbd only
    /// looks for v1 children). What `librbd::RbdDriver`
    /// reports, so plans made against real Ceph predict its answers.
    Librbd,
}

/// A Ceph cluster as librbd shows it to Cinder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    /// `rados.get_fsid()`.
    pub fsid: String,
    /// `false`: every connection fails (`rados.TimedOut`).
    pub reachable: bool,
    /// Clone v2 (`rbd_default_clone_format = 2`): clones need no protected
    /// snapshot, and removing a snapshot with children hides it.
    pub clone_v2: bool,
    /// The librados `rbd_default_features` value, if set.
    pub default_features: Option<u64>,
    /// Whose error rules apply where docs/FORMAT.md §9.1 and librbd differ.
    #[serde(default)]
    pub semantics: Semantics,
    pools: BTreeMap<Name, Pool>,
    /// `None` for a complete cluster.
    partial: Option<Knowledge>,
}

impl Cluster {
    /// An empty, complete, reachable clone-v1 cluster.
    pub fn new(fsid: impl Into<String>) -> Self {
        Self {
            fsid: fsid.into(),
            reachable: true,
            clone_v2: false,
            default_features: None,
            semantics: Semantics::Conformance,
            pools: BTreeMap::new(),
            partial: None,
        }
    }

    /// An empty *partial* cluster: it knows nothing until told with
    /// [`Cluster::learn_pool`] and [`Cluster::learn_image`].
    pub fn partial(fsid: impl Into<String>) -> Self {
        Self { partial: Some(Knowledge::default()), ..Self::new(fsid) }
    }

    /// Whether this is a partial view.
    pub fn is_partial(&self) -> bool {
        self.partial.is_some()
    }

    /// The features Cinder gives new images: the cluster default, or
    /// layering when unset or 0 (`RBDDriver.__init__`, `rbd.py:276-281`).
    pub fn cinder_features(&self) -> u64 {
        match self.default_features {
            Some(f) if f != 0 => f,
            _ => FEATURE_LAYERING,
        }
    }

    /// Adds an empty pool (complete clusters).
    pub fn add_pool(&mut self, pool: impl Into<Name>) {
        let pool = pool.into();
        if let Some(k) = &mut self.partial {
            k.pools.insert(pool.clone(), true);
        }
        self.pools.entry(pool).or_default();
    }

    /// Puts an image in place as-is (setting up a situation, not a librbd
    /// call: no checks, the pool is created if needed).
    pub fn put_image(&mut self, spec: &ImageSpec, image: RbdImage) {
        self.add_pool(spec.pool.clone());
        if let Some(k) = &mut self.partial {
            k.absent.remove(spec);
        }
        self.pools.get_mut(&spec.pool).expect("pool just added").images.insert(spec.name.clone(), image);
    }

    /// Puts an image in the trash as-is.
    pub fn put_trashed_image(&mut self, spec: &ImageSpec, image: RbdImage) {
        self.add_pool(spec.pool.clone());
        self.pools.get_mut(&spec.pool).expect("pool just added").trash.insert(spec.name.clone(), image);
    }

    /// Partial view: record whether a pool exists.
    pub fn learn_pool(&mut self, pool: &str, exists: bool) {
        if exists {
            self.add_pool(pool);
        } else if let Some(k) = &mut self.partial {
            k.pools.insert(pool.into(), false);
            self.pools.remove(pool);
        }
    }

    /// Partial view: record an image (with its snapshots' children), or
    /// that it does not exist (`None`).
    pub fn learn_image(&mut self, spec: &ImageSpec, info: Option<ImageInfo>) {
        match info {
            None => {
                if let Some(k) = &mut self.partial {
                    k.pools.entry(spec.pool.clone()).or_insert(true);
                    k.absent.insert(spec.clone());
                }
                self.pools.entry(spec.pool.clone()).or_default();
            }
            Some(info) => {
                for (snap, children) in info.children {
                    let key = spec.snap(snap);
                    if let Some(k) = &mut self.partial {
                        k.external_children.entry(key).or_default().extend(children);
                    }
                }
                if info.in_trash {
                    // Trashed means gone from the pool's namespace: opening
                    // it by name raises ImageNotFound (without this a view
                    // would keep asking for the image).
                    if let Some(k) = &mut self.partial {
                        k.absent.insert(spec.clone());
                    }
                    self.put_trashed_image(spec, info.image);
                } else {
                    self.put_image(spec, info.image);
                }
            }
        }
    }

    /// Pools, sorted.
    pub fn pool_names(&self) -> impl Iterator<Item = &str> {
        self.pools.keys().map(Name::as_str)
    }

    /// Images of a pool (not the trash), sorted by name.
    pub fn images(&self, pool: &str) -> impl Iterator<Item = (&str, &RbdImage)> {
        self.pools.get(pool).into_iter().flat_map(|p| p.images.iter().map(|(n, i)| (n.as_str(), i)))
    }

    /// Trashed images of a pool, sorted by name.
    pub fn trash(&self, pool: &str) -> impl Iterator<Item = (&str, &RbdImage)> {
        self.pools.get(pool).into_iter().flat_map(|p| p.trash.iter().map(|(n, i)| (n.as_str(), i)))
    }

    fn connect(&self) -> Res<()> {
        if self.reachable {
            Ok(())
        } else {
            Err(ApplyError::Failed(BackendErrorKind::Unavailable))
        }
    }

    /// `Rados.open_ioctx(pool)`.
    pub fn check_pool(&self, pool: &str) -> Res<()> {
        self.connect()?;
        if let Some(k) = &self.partial {
            return match k.pools.get(pool) {
                Some(true) => Ok(()),
                Some(false) => Err(BackendErrorKind::PoolNotFound.into()),
                None => Err(ApplyError::Unknown(ClusterFact::Pool { pool: pool.into() })),
            };
        }
        if self.pools.contains_key(pool) {
            Ok(())
        } else {
            Err(BackendErrorKind::PoolNotFound.into())
        }
    }

    /// The image, `None` if it does not exist (pool checked first).
    fn lookup(&self, spec: &ImageSpec) -> Res<Option<&RbdImage>> {
        self.check_pool(&spec.pool)?;
        let found = self.pools.get(&spec.pool).and_then(|p| p.images.get(&spec.name));
        match (found, &self.partial) {
            (Some(i), _) => Ok(Some(i)),
            (None, None) => Ok(None),
            (None, Some(k)) if k.absent.contains(spec) => Ok(None),
            (None, Some(_)) => Err(ApplyError::Unknown(ClusterFact::Image { image: spec.clone() })),
        }
    }

    fn lookup_trash(&self, spec: &ImageSpec) -> Res<Option<&RbdImage>> {
        self.check_pool(&spec.pool)?;
        let found = self.pools.get(&spec.pool).and_then(|p| p.trash.get(&spec.name));
        match (found, &self.partial) {
            (Some(i), _) => Ok(Some(i)),
            (None, None) => Ok(None),
            // Partial views learn trashed images with their image facts.
            (None, Some(_)) => Ok(None),
        }
    }

    /// Whether the image exists (not counting the trash).
    pub fn exists(&self, spec: &ImageSpec) -> Res<bool> {
        Ok(self.lookup(spec)?.is_some())
    }

    /// `rbd.Image(ioctx, name, snapshot, read_only=True)`: the image, or the
    /// error opening it raises.
    pub fn open(&self, spec: &ImageSpec, snap: Option<&str>) -> Res<&RbdImage> {
        let image = self.lookup(spec)?.ok_or(ApplyError::Failed(BackendErrorKind::NotFound))?;
        if let Some(s) = snap {
            if image.snap(s).is_none() {
                return Err(BackendErrorKind::NotFound.into());
            }
        }
        if !image.readable {
            return Err(BackendErrorKind::PermissionDenied.into());
        }
        Ok(image)
    }

    /// `Image.parent_info()` of the head (`snap = None`) or a snapshot:
    /// `ImageNotFound` when there is no parent.
    pub fn parent_info(&self, spec: &ImageSpec, snap: Option<&str>) -> Res<SnapSpec> {
        let image = self.open(spec, snap)?;
        let parent = match snap {
            None => image.parent.as_ref(),
            Some(s) => image.snap(s).and_then(|s| s.parent.as_ref()),
        };
        parent.cloned().ok_or(ApplyError::Failed(BackendErrorKind::NotFound))
    }

    fn children_of(&self, parent: &SnapSpec) -> Res<BTreeSet<ImageSpec>> {
        let mut out = BTreeSet::new();
        for (pool_name, pool) in &self.pools {
            for (name, image) in pool.images.iter().chain(pool.trash.iter()) {
                let refers = image.parent.as_ref() == Some(parent)
                    || image.snaps.iter().any(|s| s.parent.as_ref() == Some(parent));
                if refers {
                    out.insert(ImageSpec::new(pool_name.clone(), name.clone()));
                }
            }
        }
        if let Some(k) = &self.partial {
            if let Some(ext) = k.external_children.get(parent) {
                for c in ext {
                    // An external child learnt later counts by its own links.
                    let known = self
                        .pools
                        .get(&c.pool)
                        .is_some_and(|p| p.images.contains_key(&c.name) || p.trash.contains_key(&c.name))
                        || k.absent.contains(c);
                    if !known {
                        out.insert(c.clone());
                    }
                }
            }
        }
        Ok(out)
    }

    /// `Image.list_children()` with `snap` set, or of every snapshot when
    /// `None`; sorted by (pool, image).
    pub fn list_children(&self, spec: &ImageSpec, snap: Option<&str>) -> Res<Vec<ImageSpec>> {
        let image = self.open(spec, snap)?;
        let snaps: Vec<Name> = match snap {
            Some(s) => vec![s.into()],
            None => image.snaps.iter().map(|s| s.name.clone()).collect(),
        };
        let mut out = BTreeSet::new();
        for s in snaps {
            out.extend(self.children_of(&spec.snap(s))?);
        }
        Ok(out.into_iter().collect())
    }

    /// What a driver reports for an image (`None` if it does not exist):
    /// the image and each snapshot's children.
    pub fn image_info(&self, spec: &ImageSpec) -> Res<Option<ImageInfo>> {
        let (image, in_trash) = match self.lookup(spec)? {
            Some(i) => (i, false),
            None => match self.lookup_trash(spec)? {
                Some(i) => (i, true),
                None => return Ok(None),
            },
        };
        let mut children = BTreeMap::new();
        for s in &image.snaps {
            let c = self.children_of(&spec.snap(s.name.clone()))?;
            if !c.is_empty() {
                children.insert(s.name.clone(), c.into_iter().collect());
            }
        }
        Ok(Some(ImageInfo { image: image.clone(), children, in_trash }))
    }

    fn image_mut(&mut self, spec: &ImageSpec) -> Res<&mut RbdImage> {
        self.lookup(spec)?.ok_or(ApplyError::Failed(BackendErrorKind::NotFound))?;
        Ok(self.pools.get_mut(&spec.pool).and_then(|p| p.images.get_mut(&spec.name)).expect("looked up"))
    }

    fn insert_new(&mut self, spec: &ImageSpec, image: RbdImage) {
        if let Some(k) = &mut self.partial {
            k.absent.remove(spec);
        }
        self.pools.entry(spec.pool.clone()).or_default().images.insert(spec.name.clone(), image);
    }

    fn take(&mut self, spec: &ImageSpec) -> RbdImage {
        let image = self.pools.get_mut(&spec.pool).and_then(|p| p.images.remove(&spec.name)).expect("looked up");
        if let Some(k) = &mut self.partial {
            k.absent.insert(spec.clone());
        }
        image
    }

    /// Performs one librbd call with librbd's checks. On error nothing
    /// changes.
    pub fn apply(&mut self, op: &RbdOp) -> Result<(), ApplyError> {
        use BackendErrorKind::*;
        self.connect()?;
        match op {
            RbdOp::Create { image, size, order, features } => {
                if self.exists(image)? {
                    return Err(AlreadyExists.into());
                }
                let mut new = RbdImage::new(*size);
                new.features = *features;
                new.stripe_unit = Bytes(1u64.checked_shl(u32::from(*order)).unwrap_or(0));
                self.insert_new(image, new);
            }
            RbdOp::Import { image, size, order } => {
                if self.exists(image)? {
                    return Err(AlreadyExists.into());
                }
                let mut new = RbdImage::new(*size);
                new.features = self.cinder_features();
                new.stripe_unit = Bytes(1u64.checked_shl(u32::from(*order)).unwrap_or(0));
                self.insert_new(image, new);
            }
            RbdOp::Clone { parent, child, order, features } => {
                let p = self.open(&parent.image_spec(), Some(&parent.snap)).map_err(|e| match e {
                    ApplyError::Failed(PermissionDenied) => ApplyError::Failed(PermissionDenied),
                    other => other,
                })?;
                let snap = p.snap(&parent.snap).expect("opened at snap");
                if !snap.protected && !self.clone_v2 {
                    return Err(InvalidArgument.into());
                }
                let size = snap.size;
                // librbd's clone inherits the parent's stripe unit (python's
                // `RBD.clone` passes only features and order): striping v2
                // when it is not the clone's object size, EINVAL when it does
                // not divide it (found against a real cluster,
                // tests/rbd_real.rs).
                let object_size = 1u64.checked_shl(u32::from(*order)).unwrap_or(0);
                let stripe_unit = if p.stripe_unit.0 == 0 { object_size } else { p.stripe_unit.0 };
                self.check_pool(&child.pool)?;
                if self.exists(child)? {
                    return Err(AlreadyExists.into());
                }
                if stripe_unit > object_size || object_size % stripe_unit != 0 {
                    return Err(InvalidArgument.into());
                }
                let mut new = RbdImage::new(size);
                new.features = if stripe_unit == object_size {
                    *features & !FEATURE_STRIPINGV2
                } else {
                    *features | FEATURE_STRIPINGV2
                };
                new.stripe_unit = Bytes(stripe_unit);
                new.parent = Some(parent.clone());
                self.insert_new(child, new);
            }
            RbdOp::Copy { src, dst } => {
                let s = self.open(src, None)?;
                let mut new = RbdImage::new(s.size);
                new.features = s.features;
                new.stripe_unit = s.stripe_unit;
                self.check_pool(&dst.pool)?;
                if self.exists(dst)? {
                    return Err(AlreadyExists.into());
                }
                self.insert_new(dst, new);
            }
            RbdOp::CreateSnap { snap } => {
                let img = self.image_mut(&snap.image_spec())?;
                if img.snap(&snap.snap).is_some() {
                    return Err(AlreadyExists.into());
                }
                let s = RbdSnapshot {
                    name: snap.snap.clone(),
                    size: img.size,
                    protected: false,
                    parent: img.parent.clone(),
                    hidden: false,
                };
                img.snaps.push(s);
            }
            RbdOp::ProtectSnap { snap } => {
                let img = self.image_mut(&snap.image_spec())?;
                let s = img.snap_mut(&snap.snap).ok_or(ApplyError::Failed(NotFound))?;
                if s.protected {
                    return Err(Busy.into());
                }
                s.protected = true;
            }
            RbdOp::UnprotectSnap { snap } => {
                let img = self.lookup(&snap.image_spec())?.ok_or(ApplyError::Failed(NotFound))?;
                let s = img.snap(&snap.snap).ok_or(ApplyError::Failed(NotFound))?;
                if !s.protected {
                    return Err(InvalidArgument.into());
                }
                // librbd looks for v1 children only (rbd_children); in a
                // clone-v2 cluster every clone here is v2.
                let v2_children_ignored = self.semantics == Semantics::Librbd && self.clone_v2;
                if !v2_children_ignored && !self.children_of(snap)?.is_empty() {
                    return Err(Busy.into());
                }
                self.image_mut(&snap.image_spec())?.snap_mut(&snap.snap).expect("checked").protected = false;
            }
            RbdOp::RemoveSnap { snap } => {
                let img = self.lookup(&snap.image_spec())?.ok_or(ApplyError::Failed(NotFound))?;
                let s = img.snap(&snap.snap).ok_or(ApplyError::Failed(NotFound))?;
                if s.protected {
                    return Err(Busy.into());
                }
                let has_children = !self.children_of(snap)?.is_empty();
                if has_children && !self.clone_v2 {
                    return Err(Busy.into());
                }
                let img = self.image_mut(&snap.image_spec())?;
                if has_children {
                    img.snap_mut(&snap.snap).expect("checked").hidden = true;
                } else {
                    img.snaps.retain(|s| s.hidden || s.name != snap.snap);
                }
            }
            RbdOp::Flatten { image } => {
                let img = self.image_mut(image)?;
                if img.parent.is_none() {
                    return Err(InvalidArgument.into());
                }
                img.parent = None;
                self.drop_hidden_unreferenced();
            }
            RbdOp::Resize { image, size } => {
                self.image_mut(image)?.size = *size;
            }
            RbdOp::Remove { image } => {
                let img = self.lookup(image)?.ok_or(ApplyError::Failed(NotFound))?;
                let (busy, has_snaps) = (img.watchers > 0, !img.snaps.is_empty());
                match self.semantics {
                    Semantics::Conformance if busy => return Err(Busy.into()),
                    Semantics::Conformance if has_snaps => return Err(HasSnapshots.into()),
                    Semantics::Librbd if has_snaps => return Err(HasSnapshots.into()),
                    Semantics::Librbd if busy => return Err(Busy.into()),
                    _ => {}
                }
                self.take(image);
                self.drop_hidden_unreferenced();
            }
            RbdOp::Rename { image, new_name } => {
                self.lookup(image)?.ok_or(ApplyError::Failed(NotFound))?;
                let dst = ImageSpec::new(image.pool.clone(), new_name.clone());
                if self.exists(&dst)? {
                    return Err(AlreadyExists.into());
                }
                let img = self.take(image);
                self.relink(image, &dst);
                self.insert_new(&dst, img);
            }
            RbdOp::TrashMove { image, .. } => {
                let img = self.lookup(image)?.ok_or(ApplyError::Failed(NotFound))?;
                if img.watchers > 0 && self.semantics == Semantics::Conformance {
                    return Err(Busy.into());
                }
                let img = self.take(image);
                self.pools.get_mut(&image.pool).expect("checked").trash.insert(image.name.clone(), img);
            }
            RbdOp::TrashRemove { image } => {
                let img = self.lookup_trash(image)?.ok_or(ApplyError::Failed(NotFound))?;
                if img.snaps.iter().any(|s| !s.hidden) {
                    return Err(HasSnapshots.into());
                }
                self.pools.get_mut(&image.pool).expect("checked").trash.remove(&image.name);
                self.drop_hidden_unreferenced();
            }
            RbdOp::UpdateFeatures { image, features, enabled } => {
                let img = self.image_mut(image)?;
                if *enabled {
                    img.features |= features;
                } else {
                    img.features &= !features;
                }
            }
        }
        Ok(())
    }

    /// After a rename, clone links name the image by its new name (librbd
    /// links by image id, which a rename keeps).
    fn relink(&mut self, from: &ImageSpec, to: &ImageSpec) {
        let fix = |p: &mut Option<SnapSpec>| {
            if let Some(s) = p {
                if s.pool == from.pool && s.image == from.name {
                    s.image = to.name.clone();
                }
            }
        };
        for pool in self.pools.values_mut() {
            for image in pool.images.values_mut().chain(pool.trash.values_mut()) {
                fix(&mut image.parent);
                for s in &mut image.snaps {
                    fix(&mut s.parent);
                }
            }
        }
        if let Some(k) = &mut self.partial {
            let moved: Vec<_> =
                k.external_children.keys().filter(|s| s.pool == from.pool && s.image == from.name).cloned().collect();
            for key in moved {
                let v = k.external_children.remove(&key).expect("listed");
                k.external_children.insert(to.snap(key.snap.clone()), v);
            }
        }
    }

    /// Clone v2: a hidden snapshot goes away with its last child.
    fn drop_hidden_unreferenced(&mut self) {
        if !self.clone_v2 {
            return;
        }
        let mut gone = Vec::new();
        for (pool_name, pool) in &self.pools {
            for (name, image) in pool.images.iter().chain(pool.trash.iter()) {
                for s in image.snaps.iter().filter(|s| s.hidden) {
                    let spec = ImageSpec::new(pool_name.clone(), name.clone()).snap(s.name.clone());
                    if self.children_of(&spec).map(|c| c.is_empty()).unwrap_or(false) {
                        gone.push(spec);
                    }
                }
            }
        }
        for spec in gone {
            if let Some(pool) = self.pools.get_mut(&spec.pool) {
                for image in pool.images.get_mut(&spec.image).into_iter().chain(pool.trash.get_mut(&spec.image)) {
                    image.snaps.retain(|s| !(s.hidden && s.name == spec.snap));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BackendErrorKind::*;

    const GIB: u64 = 1 << 30;

    fn spec(p: &str, n: &str) -> ImageSpec {
        ImageSpec::new(p, n)
    }

    fn cluster_with_parent(protected: bool) -> (Cluster, SnapSpec) {
        let mut c = Cluster::new("fsid");
        let mut img = RbdImage::new(Bytes(GIB));
        img.snaps.push(RbdSnapshot { name: "snap".into(), size: Bytes(GIB), protected, parent: None, hidden: false });
        c.put_image(&spec("images", "img"), img);
        c.add_pool("volumes");
        (c, spec("images", "img").snap("snap"))
    }

    fn clone_op(parent: &SnapSpec, child: &str) -> RbdOp {
        RbdOp::Clone { parent: parent.clone(), child: spec("volumes", child), order: 22, features: 1 }
    }

    #[test]
    fn a_partial_view_knows_a_trashed_image_is_not_in_the_pool() {
        let mut full = Cluster::new("fsid");
        full.put_image(&spec("volumes", "v"), RbdImage::new(Bytes(GIB)));
        full.apply(&RbdOp::TrashMove { image: spec("volumes", "v"), delay: 0 }).unwrap();
        let info = full.image_info(&spec("volumes", "v")).unwrap();
        assert!(info.as_ref().is_some_and(|i| i.in_trash));
        let mut view = Cluster::partial("fsid");
        view.learn_pool("volumes", true);
        view.learn_image(&spec("volumes", "v"), info);
        // Not "unknown" (which would make the planner ask again forever).
        assert_eq!(view.open(&spec("volumes", "v"), None).unwrap_err(), ApplyError::Failed(NotFound));
        assert_eq!(view.trash("volumes").count(), 1);
    }

    #[test]
    fn clone_needs_protection_on_v1_only() {
        let (mut c, snap) = cluster_with_parent(false);
        assert_eq!(c.apply(&clone_op(&snap, "v")), Err(ApplyError::Failed(InvalidArgument)));
        c.clone_v2 = true;
        c.apply(&clone_op(&snap, "v")).unwrap();
        assert_eq!(c.parent_info(&spec("volumes", "v"), None).unwrap(), snap);
    }

    #[test]
    fn clone_inherits_the_parent_stripe_unit() {
        let (mut c, snap) = cluster_with_parent(true);
        // A larger object size: the parent's 4 MiB stripe unit, striping v2.
        let op = RbdOp::Clone { parent: snap.clone(), child: spec("volumes", "big"), order: 25, features: 1 };
        c.apply(&op).unwrap();
        let big = c.open(&spec("volumes", "big"), None).unwrap();
        assert_eq!((big.stripe_unit, big.features), (Bytes(4 << 20), 1 | FEATURE_STRIPINGV2));
        // Same object size: no striping.
        c.apply(&clone_op(&snap, "same")).unwrap();
        let same = c.open(&spec("volumes", "same"), None).unwrap();
        assert_eq!((same.stripe_unit, same.features), (Bytes(4 << 20), 1));
        // A smaller object size than the stripe unit: EINVAL.
        let op = RbdOp::Clone { parent: snap, child: spec("volumes", "small"), order: 21, features: 1 };
        assert_eq!(c.apply(&op), Err(ApplyError::Failed(InvalidArgument)));
    }

    #[test]
    fn clone_errors() {
        let (mut c, snap) = cluster_with_parent(true);
        c.apply(&clone_op(&snap, "v")).unwrap();
        assert_eq!(c.apply(&clone_op(&snap, "v")), Err(ApplyError::Failed(AlreadyExists)));
        let missing = spec("images", "img").snap("nope");
        assert_eq!(c.apply(&clone_op(&missing, "w")), Err(ApplyError::Failed(NotFound)));
        let nopool = RbdOp::Clone { parent: snap, child: spec("nopool", "x"), order: 22, features: 1 };
        assert_eq!(c.apply(&nopool), Err(ApplyError::Failed(PoolNotFound)));
    }

    #[test]
    fn snapshot_protection_and_children() {
        let (mut c, snap) = cluster_with_parent(true);
        c.apply(&clone_op(&snap, "v")).unwrap();
        assert_eq!(c.apply(&RbdOp::ProtectSnap { snap: snap.clone() }), Err(ApplyError::Failed(Busy)));
        assert_eq!(c.apply(&RbdOp::UnprotectSnap { snap: snap.clone() }), Err(ApplyError::Failed(Busy)));
        assert_eq!(c.apply(&RbdOp::RemoveSnap { snap: snap.clone() }), Err(ApplyError::Failed(Busy)));
        assert_eq!(c.list_children(&snap.image_spec(), Some("snap")).unwrap(), vec![spec("volumes", "v")]);
        c.apply(&RbdOp::Flatten { image: spec("volumes", "v") }).unwrap();
        assert_eq!(c.apply(&RbdOp::Flatten { image: spec("volumes", "v") }), Err(ApplyError::Failed(InvalidArgument)));
        c.apply(&RbdOp::UnprotectSnap { snap: snap.clone() }).unwrap();
        assert_eq!(c.apply(&RbdOp::UnprotectSnap { snap: snap.clone() }), Err(ApplyError::Failed(InvalidArgument)));
        c.apply(&RbdOp::RemoveSnap { snap: snap.clone() }).unwrap();
        c.apply(&RbdOp::Remove { image: snap.image_spec() }).unwrap();
    }

    #[test]
    fn librbd_semantics_differ_from_the_format_in_three_rules() {
        for semantics in [Semantics::Conformance, Semantics::Librbd] {
            let librbd = semantics == Semantics::Librbd;
            let (mut c, snap) = cluster_with_parent(true);
            c.semantics = semantics;
            c.clone_v2 = true;
            c.apply(&clone_op(&snap, "v")).unwrap();
            // A snapshot whose only children are v2 clones.
            let unprotect = c.apply(&RbdOp::UnprotectSnap { snap: snap.clone() });
            assert_eq!(unprotect.is_ok(), librbd, "{semantics:?}: {unprotect:?}");
            // Watched and with a snapshot: which check comes first.
            let busy = spec("volumes", "busy");
            let mut img = RbdImage { watchers: 1, ..RbdImage::new(Bytes(1)) };
            img.snaps.push(RbdSnapshot {
                name: "s".into(),
                size: Bytes(1),
                protected: false,
                parent: None,
                hidden: false,
            });
            c.put_image(&busy, img);
            let want = if librbd { HasSnapshots } else { Busy };
            assert_eq!(c.apply(&RbdOp::Remove { image: busy.clone() }), Err(ApplyError::Failed(want)));
            // A watched image to the trash.
            let trash = c.apply(&RbdOp::TrashMove { image: busy, delay: 0 });
            assert_eq!(trash.is_ok(), librbd, "{semantics:?}: {trash:?}");
        }
    }

    #[test]
    fn remove_checks_watchers_and_snapshots() {
        let (mut c, snap) = cluster_with_parent(false);
        let img = snap.image_spec();
        assert_eq!(c.apply(&RbdOp::Remove { image: img.clone() }), Err(ApplyError::Failed(HasSnapshots)));
        c.put_image(&spec("volumes", "busy"), RbdImage { watchers: 1, ..RbdImage::new(Bytes(1)) });
        assert_eq!(c.apply(&RbdOp::Remove { image: spec("volumes", "busy") }), Err(ApplyError::Failed(Busy)));
        assert_eq!(
            c.apply(&RbdOp::TrashMove { image: spec("volumes", "busy"), delay: 0 }),
            Err(ApplyError::Failed(Busy))
        );
        c.apply(&RbdOp::TrashMove { image: img.clone(), delay: 0 }).unwrap();
        assert!(!c.exists(&img).unwrap());
        assert_eq!(c.trash("images").count(), 1);
        assert_eq!(c.apply(&RbdOp::Remove { image: img }), Err(ApplyError::Failed(NotFound)));
    }

    #[test]
    fn trashed_child_still_counts() {
        let (mut c, snap) = cluster_with_parent(true);
        c.apply(&clone_op(&snap, "v")).unwrap();
        c.apply(&RbdOp::TrashMove { image: spec("volumes", "v"), delay: 0 }).unwrap();
        assert_eq!(c.apply(&RbdOp::UnprotectSnap { snap }), Err(ApplyError::Failed(Busy)));
    }

    #[test]
    fn clone_v2_remove_snap_with_children_hides_it() {
        let (mut c, snap) = cluster_with_parent(false);
        c.clone_v2 = true;
        c.apply(&clone_op(&snap, "v")).unwrap();
        c.apply(&RbdOp::RemoveSnap { snap: snap.clone() }).unwrap();
        assert!(c.open(&snap.image_spec(), Some("snap")).is_err());
        assert_eq!(c.apply(&RbdOp::Remove { image: snap.image_spec() }), Err(ApplyError::Failed(HasSnapshots)));
        c.apply(&RbdOp::Remove { image: spec("volumes", "v") }).unwrap();
        c.apply(&RbdOp::Remove { image: snap.image_spec() }).unwrap();
    }

    #[test]
    fn rename_keeps_clone_links() {
        let (mut c, snap) = cluster_with_parent(true);
        c.apply(&clone_op(&snap, "v")).unwrap();
        c.apply(&RbdOp::Rename { image: snap.image_spec(), new_name: "img.deleted".into() }).unwrap();
        assert_eq!(c.parent_info(&spec("volumes", "v"), None).unwrap().image, "img.deleted");
        assert_eq!(
            c.apply(&RbdOp::Rename { image: spec("volumes", "v"), new_name: "v".into() }),
            Err(ApplyError::Failed(AlreadyExists))
        );
    }

    #[test]
    fn unreachable_cluster_fails_everything() {
        let (mut c, snap) = cluster_with_parent(true);
        c.reachable = false;
        assert_eq!(c.apply(&clone_op(&snap, "v")), Err(ApplyError::Failed(Unavailable)));
        assert_eq!(c.open(&snap.image_spec(), None).unwrap_err(), ApplyError::Failed(Unavailable));
    }

    #[test]
    fn partial_view_asks_for_what_it_lacks() {
        let mut p = Cluster::partial("fsid");
        let img = spec("volumes", "a");
        assert_eq!(c_unknown(p.exists(&img)), Some(ClusterFact::Pool { pool: "volumes".into() }));
        p.learn_pool("volumes", true);
        assert_eq!(c_unknown(p.exists(&img)), Some(ClusterFact::Image { image: img.clone() }));
        p.learn_image(&img, None);
        assert!(!p.exists(&img).unwrap());
        p.apply(&RbdOp::Create { image: img.clone(), size: Bytes(1), order: 22, features: 1 }).unwrap();
        assert!(p.exists(&img).unwrap());
        p.learn_pool("gone", false);
        assert_eq!(p.check_pool("gone"), Err(ApplyError::Failed(PoolNotFound)));
    }

    #[test]
    fn partial_view_counts_external_children() {
        let mut full = cluster_with_parent(true).0;
        let snap = spec("images", "img").snap("snap");
        full.apply(&clone_op(&snap, "v")).unwrap();
        let info = full.image_info(&snap.image_spec()).unwrap().unwrap();
        assert_eq!(info.children.get("snap").unwrap(), &vec![spec("volumes", "v")]);
        let mut p = Cluster::partial("fsid");
        p.learn_image(&snap.image_spec(), Some(info));
        assert_eq!(p.apply(&RbdOp::UnprotectSnap { snap: snap.clone() }), Err(ApplyError::Failed(Busy)));
        // Learning the child, then flattening it, frees the parent snapshot.
        let child = full.image_info(&spec("volumes", "v")).unwrap();
        p.learn_image(&spec("volumes", "v"), child);
        p.apply(&RbdOp::Flatten { image: spec("volumes", "v") }).unwrap();
        p.apply(&RbdOp::UnprotectSnap { snap }).unwrap();
    }

    fn c_unknown<T: std::fmt::Debug>(r: Res<T>) -> Option<ClusterFact> {
        match r {
            Err(ApplyError::Unknown(f)) => Some(f),
            other => panic!("expected unknown, got {other:?}"),
        }
    }
}
