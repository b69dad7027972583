//! Gather, plan and execute under the locks upstream takes
//! ([`crate::coordination`]), and stop a plan whose lock was lost.
//!
//! [`run`] is the whole operation: it takes the request's locks in name
//! order, plans, releases the locks upstream would not hold while the steps
//! run (a cache hit's clone, a driver clone), executes through [`Fenced`]
//! backends, and releases the rest. Callers that lock by themselves keep
//! using [`plan`](super::plan) and [`execute`](super::execute); the parts of
//! `run` are public for callers in between ([`acquire`], [`Held`],
//! [`Fenced`]).
//!
//! Lock loss. Before each change a plan makes (a cluster call, a download,
//! a database write), [`Fenced`] checks every lock still held. Once one is
//! lost it refuses that call without making it, with an error of a kind the
//! plan expects of no step ([`BackendErrorKind::Other`]: the models behind
//! the planner never produce it), so the executor sees a divergence and
//! undoes the completed steps newest first, as for any failure. The
//! undo calls, and only they follow in the executor, go through: putting
//! back what this operation made does not need the lock, and must not wait
//! for it. [`run`] then reports [`RunError::LockLost`] with the executor's
//! account. What a lease-based lock cannot do is fence a call already under
//! way: if the lease runs out while a step is in progress, the step
//! finishes, and another holder may plan meanwhile from a world with this
//! step half done; the shell notices before the next step. Neither librbd
//! nor Cinder's database takes a fencing token, so this window is
//! upstream's too (tooz's locks are leases as well).

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use crate::config::Config;
use crate::coordination::{CoordinationError, Coordinator, HeldLock, LockLost, LockStatus, RequiredLock};
use crate::error::{BackendError, BackendErrorKind};
use crate::facts::Facts;
use crate::facts::{CacheLocation, Capabilities, ClusterInfo, HostInfo, ProjectUsage};
use crate::model::{
    CacheEntry, Image, ImageId, LocationApi, LocationEntry, ProjectId, Service, Snapshot, SnapshotId, Volume, VolumeId,
    VolumeType,
};
use crate::plan::{DbWrite, Expect, Plan};
use crate::planner::{Policy, Request};
use crate::ports::{BackendResult, DownloadedImage, Driver, ImageService, VolumeDb};
use crate::rbd::{ImageInfo, ImageSpec, RbdOp};

use super::{execute, plan, Backends, Diverged, ExecOptions, GatherError, Report};

/// Locks taken for one operation, in the order they were taken.
#[derive(Debug, Default)]
pub struct Held {
    locks: Vec<(RequiredLock, Box<dyn HeldLock>)>,
}

/// Takes `required` in name order (sorted and deduplicated first, as
/// `coordination.synchronized` does, `cinder/coordination.py:215-217`), so
/// that two operations needing two locks cannot each hold one the other
/// waits for. When one cannot be taken, those already taken are released.
pub async fn acquire(
    coordinator: &dyn Coordinator,
    mut required: Vec<RequiredLock>,
) -> Result<Held, CoordinationError> {
    required.sort_by(|a, b| a.name.cmp(&b.name));
    required.dedup_by(|a, b| a.name == b.name);
    let mut held = Held::default();
    for lock in required {
        tracing::debug!(lock = %lock.name, "acquiring lock");
        match coordinator.acquire(&lock.name).await {
            Ok(h) => {
                tracing::debug!(lock = %lock.name, "lock acquired");
                held.locks.push((lock, h));
            }
            Err(e) => {
                tracing::warn!(lock = %lock.name, error = %e, "could not take the lock");
                held.release().await;
                return Err(e);
            }
        }
    }
    Ok(held)
}

impl Held {
    /// The locks held, in the order taken.
    pub fn locks(&self) -> impl Iterator<Item = &RequiredLock> {
        self.locks.iter().map(|(r, _)| r)
    }

    /// `Ok` while every lock is held; the first loss otherwise.
    pub fn check(&self) -> Result<(), LockLost> {
        self.locks.iter().try_for_each(|(_, h)| h.status().check())
    }

    /// Releases the locks `plan` does not need while its steps run
    /// ([`RequiredLock::held_while_executing`]).
    pub async fn release_unneeded_for(&mut self, plan: &Plan) {
        let (keep, go): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.locks).into_iter().partition(|(r, _)| r.held_while_executing(plan));
        self.locks = keep;
        release_all(go).await;
    }

    /// Releases every lock, newest first. A lock the store could not be
    /// told about is logged (it ends when its lease does).
    pub async fn release(&mut self) {
        release_all(std::mem::take(&mut self.locks)).await;
    }

    /// The backends for executing `plan`, checking these locks before
    /// every change (see the module documentation).
    pub fn fence<'a>(&'a self, backends: Backends<'a>, plan: &Plan) -> Fenced<'a> {
        use BackendErrorKind::*;
        let expected: Vec<BackendErrorKind> = plan
            .steps
            .iter()
            .filter_map(|s| match s.expect {
                Expect::Fail(k) => Some(k),
                Expect::Ok => None,
            })
            .collect();
        let refusal = [Other, Rejected, NotSupported, PermissionDenied, Unavailable]
            .into_iter()
            .find(|k| !expected.contains(k))
            .unwrap_or(Other);
        Fenced {
            inner: backends,
            statuses: self.locks.iter().map(|(_, h)| h.status()).collect(),
            refusal,
            tripped: Mutex::new(None),
        }
    }
}

async fn release_all(locks: Vec<(RequiredLock, Box<dyn HeldLock>)>) {
    for (r, h) in locks.into_iter().rev() {
        match h.release().await {
            Ok(()) => tracing::debug!(lock = %r.name, "lock released"),
            Err(e) => tracing::warn!(lock = %r.name, error = %e, "could not release the lock; it ends with its lease"),
        }
    }
}

/// [`Backends`] that refuse a change once a lock is lost (see the module
/// documentation). Reads always go through.
#[derive(Debug)]
pub struct Fenced<'a> {
    inner: Backends<'a>,
    statuses: Vec<&'a LockStatus>,
    refusal: BackendErrorKind,
    tripped: Mutex<Option<LockLost>>,
}

impl Fenced<'_> {
    /// The fenced ports.
    pub fn backends(&self) -> Backends<'_> {
        Backends { driver: self, images: self, db: self }
    }

    /// The loss that made this refuse a call, if one did.
    pub fn tripped(&self) -> Option<LockLost> {
        self.tripped.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// `Ok` to make the change `what`; the refusal when a lock is lost. Only
    /// the first change after the loss is refused: the executor answers a
    /// failed step by undoing, and the undo goes through.
    fn admit(&self, what: impl FnOnce() -> String) -> BackendResult<()> {
        let mut tripped = self.tripped.lock().unwrap_or_else(PoisonError::into_inner);
        if tripped.is_some() {
            return Ok(());
        }
        for status in &self.statuses {
            if let Err(lost) = status.check() {
                let what = what();
                tracing::error!(lock = %lost.name, reason = %lost.reason, call = %what, "lock lost: the call is not made");
                let err = BackendError::new(self.refusal, what).with_detail(format!("not made: {lost}"));
                *tripped = Some(lost);
                return Err(err);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Driver for Fenced<'_> {
    async fn cluster_info(&self) -> BackendResult<ClusterInfo> {
        self.inner.driver.cluster_info().await
    }

    async fn pool_exists(&self, pool: &str) -> BackendResult<bool> {
        self.inner.driver.pool_exists(pool).await
    }

    async fn image_info(&self, image: &ImageSpec) -> BackendResult<Option<ImageInfo>> {
        self.inner.driver.image_info(image).await
    }

    async fn apply(&self, op: &RbdOp, source: Option<DownloadedImage>) -> BackendResult<()> {
        self.admit(|| op.to_string())?;
        self.inner.driver.apply(op, source).await
    }

    async fn capabilities(&self) -> BackendResult<Capabilities> {
        self.inner.driver.capabilities().await
    }

    async fn host_info(&self) -> BackendResult<HostInfo> {
        self.inner.driver.host_info().await
    }
}

#[async_trait]
impl ImageService for Fenced<'_> {
    async fn show(&self, image_id: &ImageId) -> BackendResult<std::sync::Arc<Image>> {
        self.inner.images.show(image_id).await
    }

    async fn locations(&self, image_id: &ImageId) -> BackendResult<std::sync::Arc<[LocationEntry]>> {
        self.inner.images.locations(image_id).await
    }

    async fn download(&self, image_id: &ImageId) -> BackendResult<DownloadedImage> {
        // Not a change, but a long call that leads to one: not started
        // without the lock.
        self.admit(|| format!("download image {image_id}"))?;
        self.inner.images.download(image_id).await
    }

    async fn add_location(&self, image_id: &ImageId, location: &LocationEntry, api: LocationApi) -> BackendResult<()> {
        self.admit(|| format!("add a location to image {image_id}"))?;
        self.inner.images.add_location(image_id, location, api).await
    }

    async fn remove_location(&self, image_id: &ImageId, url: &str) -> BackendResult<()> {
        self.admit(|| format!("remove a location of image {image_id}"))?;
        self.inner.images.remove_location(image_id, url).await
    }
}

#[async_trait]
impl VolumeDb for Fenced<'_> {
    async fn volume(&self, id: &VolumeId) -> BackendResult<Option<std::sync::Arc<Volume>>> {
        self.inner.db.volume(id).await
    }

    async fn volumes(&self, ids: &[VolumeId]) -> BackendResult<Vec<std::sync::Arc<Volume>>> {
        self.inner.db.volumes(ids).await
    }

    async fn snapshot(&self, id: &SnapshotId) -> BackendResult<Option<Snapshot>> {
        self.inner.db.snapshot(id).await
    }

    async fn snapshots_of_volume(&self, volume_id: &VolumeId) -> BackendResult<Vec<Snapshot>> {
        self.inner.db.snapshots_of_volume(volume_id).await
    }

    async fn volume_type(&self, name_or_id: &str) -> BackendResult<Option<VolumeType>> {
        self.inner.db.volume_type(name_or_id).await
    }

    async fn services(&self) -> BackendResult<Vec<Service>> {
        self.inner.db.services().await
    }

    async fn project_default_volume_type(&self, project_id: &ProjectId) -> BackendResult<Option<String>> {
        self.inner.db.project_default_volume_type(project_id).await
    }

    async fn project_usage(&self, project_id: &ProjectId) -> BackendResult<ProjectUsage> {
        self.inner.db.project_usage(project_id).await
    }

    async fn cache_entries_of_image(&self, image_id: &ImageId) -> BackendResult<Vec<CacheEntry>> {
        self.inner.db.cache_entries_of_image(image_id).await
    }

    async fn cache_entries_at(&self, location: &CacheLocation) -> BackendResult<Vec<CacheEntry>> {
        self.inner.db.cache_entries_at(location).await
    }

    async fn new_volume_id(&self) -> BackendResult<VolumeId> {
        self.inner.db.new_volume_id().await
    }

    async fn write(&self, write: &DbWrite) -> BackendResult<()> {
        self.admit(|| write.to_string())?;
        self.inner.db.write(write).await
    }
}

/// A completed operation.
#[derive(Debug)]
#[non_exhaustive]
pub struct Ran {
    /// The plan.
    pub plan: Plan,
    /// The facts it was made from.
    pub facts: Facts,
    /// How its execution went.
    pub report: Report,
}

/// Why [`run`] did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A lock could not be taken: nothing was read or changed.
    #[error("could not take the operation's locks")]
    Lock(#[source] CoordinationError),
    /// No plan could be made: nothing was changed.
    #[error("could not plan")]
    Gather(#[source] GatherError),
    /// A lock was lost. With `diverged: None` it was lost before any step
    /// ran and nothing was changed; otherwise a change was refused and the
    /// executor undid what the plan had done (its account says how well).
    #[error("{lost}; {}", if diverged.is_some() { "the plan was stopped and undone" } else { "nothing was changed" })]
    LockLost {
        /// The loss.
        lost: LockLost,
        /// The executor's account of the stopped plan.
        diverged: Option<Box<Diverged>>,
    },
    /// A step did not do what the plan expected (see
    /// [`execute`](super::execute)); the completed steps were undone.
    #[error("the plan diverged")]
    Diverged(#[source] Box<Diverged>),
}

/// Gathers, plans and executes `request` under the locks upstream takes
/// ([`crate::coordination::required_locks`]), with the process's
/// [`LocalLocks`](crate::coordination::LocalLocks).
pub async fn run(
    backends: Backends<'_>,
    request: &Request,
    config: &Config,
    policy: &Policy,
    options: &ExecOptions,
) -> Result<Ran, RunError> {
    run_with(crate::coordination::LocalLocks::global(), backends, request, config, policy, options).await
}

/// [`run`] with the given lock service (e.g. etcd for services on several
/// hosts).
pub async fn run_with(
    coordinator: &dyn Coordinator,
    backends: Backends<'_>,
    request: &Request,
    config: &Config,
    policy: &Policy,
    options: &ExecOptions,
) -> Result<Ran, RunError> {
    let required = crate::coordination::required_locks(request, config).map_err(RunError::Lock)?;
    let mut held = acquire(coordinator, required).await.map_err(RunError::Lock)?;
    let result = run_held(&mut held, backends, request, config, policy, options).await;
    held.release().await;
    result
}

async fn run_held(
    held: &mut Held,
    backends: Backends<'_>,
    request: &Request,
    config: &Config,
    policy: &Policy,
    options: &ExecOptions,
) -> Result<Ran, RunError> {
    let (plan, facts) = plan(backends, request, config, policy).await.map_err(RunError::Gather)?;
    // Facts gathered under a lock that is gone may be stale already.
    held.check().map_err(|lost| RunError::LockLost { lost, diverged: None })?;
    held.release_unneeded_for(&plan).await;
    let fenced = held.fence(backends, &plan);
    let result = execute(&plan, fenced.backends(), options).await;
    match (result, fenced.tripped()) {
        (Ok(report), tripped) => {
            // Every step matched the plan. A loss seen now came during the
            // last step at the earliest (or the plan expected every kind a
            // refusal could have, and a refused call, predicted to change
            // nothing, counted as its expected failure): the world is as
            // planned, but the end ran unlocked.
            if let Some(lost) = tripped.or_else(|| held.check().err()) {
                tracing::warn!(lock = %lost.name, reason = %lost.reason, "lock lost by the end of the plan");
            }
            Ok(Ran { plan, facts, report })
        }
        (Err(diverged), Some(lost)) => Err(RunError::LockLost { lost, diverged: Some(diverged) }),
        (Err(diverged), None) => Err(RunError::Diverged(diverged)),
    }
}
