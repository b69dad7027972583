//! A conformance suite for [`Driver`] implementations: the librbd semantics
//! the planner relies on (docs/FORMAT.md §9.1).
//!
//! Every check takes a driver and a pool that exists and may hold other
//! images; it creates its own images under a unique prefix and leaves them
//! behind (use a throwaway pool). [`run_all`] runs every check and reports
//! each failure; the in-memory cluster passes them all, and so must any
//! driver whose plans should behave like upstream's.
//!
//! Run it against librbd with `rbd_default_clone_format = 1`: librbd 16
//! lets a snapshot whose children are all v2 clones be unprotected (v2
//! clones need no protection), which the checks that expect `Busy` catch.
//! `tests/rbd_real.rs` runs the suite on `cinder_flow::librbd::RbdDriver`
//! that way.
//!
//! ```
//! use cinder_flow::memory::MemoryCluster;
//! use cinder_flow::rbd::Cluster;
//! use cinder_flow::testing::driver_suite;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut cluster = Cluster::new("fsid");
//! cluster.add_pool("suite");
//! let driver = MemoryCluster::new(cluster);
//! let failures = driver_suite::run_all(&driver, "suite", "t1").await;
//! assert!(failures.is_empty(), "{failures:#?}");
//! # }
//! ```

use std::fmt;

use crate::error::{BackendError, BackendErrorKind};
use crate::model::Bytes;
use crate::ports::Driver;
use crate::rbd::{ImageSpec, RbdOp, SnapSpec, FEATURE_LAYERING};

/// A check that failed: which, and what happened instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteFailure {
    /// The check.
    pub check: &'static str,
    /// What went wrong.
    pub detail: String,
}

impl fmt::Display for SuiteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.check, self.detail)
    }
}

type Check = Result<(), String>;

const MIB: u64 = 1 << 20;

fn img(pool: &str, prefix: &str, name: &str) -> ImageSpec {
    ImageSpec::new(pool, format!("{prefix}-{name}"))
}

fn create(image: &ImageSpec) -> RbdOp {
    RbdOp::Create { image: image.clone(), size: Bytes(8 * MIB), order: 22, features: FEATURE_LAYERING }
}

async fn ok(d: &dyn Driver, op: RbdOp) -> Check {
    d.apply(&op, None).await.map_err(|e| format!("{op} failed: {e}"))
}

async fn fails(d: &dyn Driver, op: RbdOp, kind: BackendErrorKind) -> Check {
    match d.apply(&op, None).await {
        Ok(()) => Err(format!("{op} succeeded; expected {kind}")),
        Err(BackendError { kind: k, .. }) if k == kind => Ok(()),
        Err(e) => Err(format!("{op} failed with {}; expected {kind}", e.kind)),
    }
}

async fn children(d: &dyn Driver, snap: &SnapSpec) -> Result<Vec<ImageSpec>, String> {
    let info = d.image_info(&snap.image_spec()).await.map_err(|e| format!("image_info {}: {e}", snap.image))?;
    let info = info.ok_or_else(|| format!("{} does not exist", snap.image))?;
    Ok(info.children.get(&snap.snap).cloned().unwrap_or_default())
}

/// `create` makes an image of the size asked; a second `create` of the same
/// name is `AlreadyExists`; `image_info` of a missing image is `None`.
pub async fn create_and_exists(d: &dyn Driver, pool: &str, prefix: &str) -> Check {
    let a = img(pool, prefix, "create");
    if d.image_info(&a).await.map_err(|e| e.to_string())?.is_some() {
        return Err(format!("{a} exists before it is created"));
    }
    ok(d, create(&a)).await?;
    let info = d.image_info(&a).await.map_err(|e| e.to_string())?.ok_or("created image not found")?;
    if info.image.size != Bytes(8 * MIB) {
        return Err(format!("size {} after creating 8 MiB", info.image.size));
    }
    if info.image.parent.is_some() || !info.image.snaps.is_empty() {
        return Err("a new image has a parent or snapshots".into());
    }
    fails(d, create(&a), BackendErrorKind::AlreadyExists).await
}

/// Snapshot protection: `create_snap` twice is `AlreadyExists`; protect
/// twice is `Busy`; unprotect of an unprotected snapshot is
/// `InvalidArgument`; removing a protected snapshot is `Busy`; removing a
/// missing one is `NotFound`.
pub async fn snapshot_protection(d: &dyn Driver, pool: &str, prefix: &str) -> Check {
    let a = img(pool, prefix, "snaps");
    let s = a.snap("s1");
    ok(d, create(&a)).await?;
    ok(d, RbdOp::CreateSnap { snap: s.clone() }).await?;
    fails(d, RbdOp::CreateSnap { snap: s.clone() }, BackendErrorKind::AlreadyExists).await?;
    fails(d, RbdOp::UnprotectSnap { snap: s.clone() }, BackendErrorKind::InvalidArgument).await?;
    ok(d, RbdOp::ProtectSnap { snap: s.clone() }).await?;
    fails(d, RbdOp::ProtectSnap { snap: s.clone() }, BackendErrorKind::Busy).await?;
    fails(d, RbdOp::RemoveSnap { snap: s.clone() }, BackendErrorKind::Busy).await?;
    let info = d.image_info(&a).await.map_err(|e| e.to_string())?.ok_or("image vanished")?;
    if !info.image.snap("s1").is_some_and(|x| x.protected) {
        return Err("image_info does not show the snapshot as protected".into());
    }
    ok(d, RbdOp::UnprotectSnap { snap: s.clone() }).await?;
    ok(d, RbdOp::RemoveSnap { snap: s.clone() }).await?;
    fails(d, RbdOp::RemoveSnap { snap: s }, BackendErrorKind::NotFound).await
}

/// Cloning: from a missing snapshot is `NotFound`; on a clone-v1 cluster
/// from an unprotected snapshot is `InvalidArgument`; the clone has the
/// snapshot as parent and is listed as its child; a clone over an existing
/// image is `AlreadyExists`.
pub async fn clone_rules(d: &dyn Driver, pool: &str, prefix: &str) -> Check {
    let clone_v2 = d.cluster_info().await.map_err(|e| e.to_string())?.clone_v2;
    let p = img(pool, prefix, "parent");
    let s = p.snap("snap");
    let c = img(pool, prefix, "child");
    ok(d, create(&p)).await?;
    let clone =
        |parent: SnapSpec, child: ImageSpec| RbdOp::Clone { parent, child, order: 22, features: FEATURE_LAYERING };
    fails(d, clone(p.snap("missing"), c.clone()), BackendErrorKind::NotFound).await?;
    ok(d, RbdOp::CreateSnap { snap: s.clone() }).await?;
    if !clone_v2 {
        fails(d, clone(s.clone(), c.clone()), BackendErrorKind::InvalidArgument).await?;
    }
    ok(d, RbdOp::ProtectSnap { snap: s.clone() }).await?;
    ok(d, clone(s.clone(), c.clone())).await?;
    let info = d.image_info(&c).await.map_err(|e| e.to_string())?.ok_or("clone not found")?;
    if info.image.parent.as_ref() != Some(&s) {
        return Err(format!("clone's parent is {:?}, expected {s}", info.image.parent));
    }
    if children(d, &s).await? != vec![c.clone()] {
        return Err(format!("{s} does not list {c} as its child"));
    }
    fails(d, clone(s.clone(), c), BackendErrorKind::AlreadyExists).await
}

/// A snapshot with children cannot be unprotected (`Busy`); an image with
/// snapshots cannot be removed (`HasSnapshots`); flattening the child frees
/// the snapshot; flattening an image without parent is `InvalidArgument`.
pub async fn children_hold_parents(d: &dyn Driver, pool: &str, prefix: &str) -> Check {
    let p = img(pool, prefix, "holder");
    let s = p.snap("snap");
    let c = img(pool, prefix, "held");
    ok(d, create(&p)).await?;
    ok(d, RbdOp::CreateSnap { snap: s.clone() }).await?;
    ok(d, RbdOp::ProtectSnap { snap: s.clone() }).await?;
    ok(d, RbdOp::Clone { parent: s.clone(), child: c.clone(), order: 22, features: FEATURE_LAYERING }).await?;
    fails(d, RbdOp::UnprotectSnap { snap: s.clone() }, BackendErrorKind::Busy).await?;
    fails(d, RbdOp::Remove { image: p.clone() }, BackendErrorKind::HasSnapshots).await?;
    ok(d, RbdOp::Flatten { image: c.clone() }).await?;
    fails(d, RbdOp::Flatten { image: c.clone() }, BackendErrorKind::InvalidArgument).await?;
    if !children(d, &s).await?.is_empty() {
        return Err(format!("{s} still lists children after the flatten"));
    }
    ok(d, RbdOp::UnprotectSnap { snap: s.clone() }).await?;
    ok(d, RbdOp::RemoveSnap { snap: s }).await?;
    ok(d, RbdOp::Remove { image: p.clone() }).await?;
    fails(d, RbdOp::Remove { image: p }, BackendErrorKind::NotFound).await
}

/// `rename` to an existing name is `AlreadyExists`, of a missing image
/// `NotFound`; a renamed parent keeps its clones (their parent names the new
/// name).
pub async fn rename_keeps_clones(d: &dyn Driver, pool: &str, prefix: &str) -> Check {
    let p = img(pool, prefix, "ren");
    let s = p.snap("snap");
    let c = img(pool, prefix, "ren-child");
    let other = img(pool, prefix, "ren-other");
    ok(d, create(&p)).await?;
    ok(d, create(&other)).await?;
    ok(d, RbdOp::CreateSnap { snap: s.clone() }).await?;
    ok(d, RbdOp::ProtectSnap { snap: s.clone() }).await?;
    ok(d, RbdOp::Clone { parent: s, child: c.clone(), order: 22, features: FEATURE_LAYERING }).await?;
    fails(d, RbdOp::Rename { image: p.clone(), new_name: other.name.clone() }, BackendErrorKind::AlreadyExists).await?;
    let new_name = format!("{}.deleted", p.name);
    ok(d, RbdOp::Rename { image: p.clone(), new_name: new_name.clone().into() }).await?;
    fails(d, RbdOp::Rename { image: p, new_name: "x".into() }, BackendErrorKind::NotFound).await?;
    let info = d.image_info(&c).await.map_err(|e| e.to_string())?.ok_or("clone not found")?;
    match info.image.parent {
        Some(parent) if parent.image == new_name => Ok(()),
        other => Err(format!("after the rename the clone's parent is {other:?}")),
    }
}

/// A trashed clone still counts as a child of its parent's snapshot (so
/// the snapshot cannot be unprotected); `trash_remove` purges it.
pub async fn trash_keeps_children(d: &dyn Driver, pool: &str, prefix: &str) -> Check {
    let p = img(pool, prefix, "tparent");
    let s = p.snap("snap");
    let c = img(pool, prefix, "tchild");
    ok(d, create(&p)).await?;
    ok(d, RbdOp::CreateSnap { snap: s.clone() }).await?;
    ok(d, RbdOp::ProtectSnap { snap: s.clone() }).await?;
    ok(d, RbdOp::Clone { parent: s.clone(), child: c.clone(), order: 22, features: FEATURE_LAYERING }).await?;
    ok(d, RbdOp::TrashMove { image: c.clone(), delay: 0 }).await?;
    fails(d, RbdOp::Remove { image: c.clone() }, BackendErrorKind::NotFound).await?;
    fails(d, RbdOp::UnprotectSnap { snap: s.clone() }, BackendErrorKind::Busy).await?;
    ok(d, RbdOp::TrashRemove { image: c }).await?;
    ok(d, RbdOp::UnprotectSnap { snap: s }).await
}

/// `resize` changes the size; `copy` makes an independent image of the
/// same size; `import` creates an image of the file's size.
pub async fn resize_copy_import(d: &dyn Driver, pool: &str, prefix: &str) -> Check {
    let a = img(pool, prefix, "sized");
    let b = img(pool, prefix, "copied");
    let i = img(pool, prefix, "imported");
    ok(d, create(&a)).await?;
    ok(d, RbdOp::Resize { image: a.clone(), size: Bytes(16 * MIB) }).await?;
    ok(d, RbdOp::Copy { src: a.clone(), dst: b.clone() }).await?;
    fails(d, RbdOp::Copy { src: a.clone(), dst: b.clone() }, BackendErrorKind::AlreadyExists).await?;
    let info = d.image_info(&b).await.map_err(|e| e.to_string())?.ok_or("copy not found")?;
    if info.image.size != Bytes(16 * MIB) || info.image.parent.is_some() {
        return Err(format!("copy has size {} and parent {:?}", info.image.size, info.image.parent));
    }
    ok(d, RbdOp::Import { image: i.clone(), size: Bytes(4 * MIB), order: 22 }).await?;
    let info = d.image_info(&i).await.map_err(|e| e.to_string())?.ok_or("import not found")?;
    if info.image.size != Bytes(4 * MIB) {
        return Err(format!("imported image has size {}", info.image.size));
    }
    Ok(())
}

/// A missing pool: `pool_exists` is false and reading an image in it is
/// `PoolNotFound`.
pub async fn missing_pool(d: &dyn Driver, _pool: &str, prefix: &str) -> Check {
    let pool = format!("{prefix}-no-such-pool");
    if d.pool_exists(&pool).await.map_err(|e| e.to_string())? {
        return Err(format!("pool {pool} exists"));
    }
    match d.image_info(&ImageSpec::new(pool, "x")).await {
        Err(e) if e.kind == BackendErrorKind::PoolNotFound => Ok(()),
        other => Err(format!("image_info in a missing pool gave {other:?}")),
    }
}

/// Every check, in order: the failures (empty when the driver conforms).
pub async fn run_all(d: &dyn Driver, pool: &str, prefix: &str) -> Vec<SuiteFailure> {
    let mut failures = Vec::new();
    macro_rules! run {
        ($($name:ident),*) => {
            $(
                if let Err(detail) = $name(d, pool, prefix).await {
                    failures.push(SuiteFailure { check: stringify!($name), detail });
                }
            )*
        };
    }
    run!(
        create_and_exists,
        snapshot_protection,
        clone_rules,
        children_hold_parents,
        rename_keeps_clones,
        trash_keeps_children,
        resize_copy_import,
        missing_pool
    );
    failures
}
