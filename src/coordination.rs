//! Locks across concurrent operations, named as Cinder names them.
//!
//! Cinder serialises some operations through its coordinator
//! (`cinder/coordination.py`): a tooz coordinator whose lock names are the
//! operation's name prefixed with `cinder-` (`COORDINATOR =
//! Coordinator(prefix='cinder-')`, `coordination.py:127`; `get_lock` adds
//! the prefix, `:101`). The backend is chosen by `[coordination]
//! backend_url`: file locks by default (one host), or a distributed store
//! (etcd, ...) for active-active services on several hosts. The locks a
//! volume operation takes are:
//!
//! | operation | lock | upstream |
//! | --- | --- | --- |
//! | create from an image, image-volume cache enabled | `cinder-{image_id}` around `_prepare_image_cache_entry` | `volume/flows/manager/create_volume.py:874` |
//! | create from a snapshot | `cinder-{snapshot_id}-delete_snapshot` around the whole flow | `volume/manager.py:797`, `:820` |
//! | create from a source volume | `cinder-{source_volid}-delete_volume` around the whole flow | `volume/manager.py:800`, `:820` |
//! | delete a volume | `cinder-{volume.id}-delete_volume` | `volume/manager.py:927` |
//! | delete a snapshot | `cinder-{snapshot.id}-delete_snapshot` | `volume/manager.py:1313` |
//!
//! Raw creates and snapshot creates take none. So a clone of a volume
//! waits for a delete of that volume and the other way round, and two
//! creates of one image through the cache take turns: the second finds the
//! entry the first made instead of making its own (issue 13: without the
//! lock, 32 concurrent creates with a cache limit of 2 made 32 entries).
//!
//! [`required_locks`] gives the locks of a [`Request`], the
//! [`Coordinator`] port takes them, [`LocalLocks`] is the in-process
//! implementation (the default of [`crate::shell::run`]), and
//! `cinder_flow::etcd` (feature `etcd`) holds them on etcd, where a
//! crashed holder's lock expires with its lease.
//!
//! A held lock can be **lost** (its lease expired, or the store cannot be
//! reached to keep it): the [`LockStatus`] of a [`HeldLock`] says so, and
//! the shell stops a plan before its next change when that happens.
//!
//! ```
//! use cinder_flow::coordination::{Coordinator, LocalLocks, LockName};
//! use cinder_flow::model::ImageId;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let locks = LocalLocks::new();
//! let name = LockName::image(&ImageId::from("aaaaaaaa-0000-4000-8000-000000000001")).unwrap();
//! assert_eq!(name.as_str(), "cinder-aaaaaaaa-0000-4000-8000-000000000001");
//! let held = locks.acquire(&name).await.unwrap();
//! assert!(held.status().check().is_ok());
//! held.release().await.unwrap();
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use async_lock::MutexGuardArc;
use async_trait::async_trait;
use event_listener::Event;

use crate::config::Config;
use crate::model::{ImageId, SnapshotId, VolumeId};
use crate::plan::{CreatePath, Operation, Plan};
use crate::planner::Request;

/// The prefix of every lock name (`COORDINATOR = Coordinator(prefix='cinder-')`,
/// `cinder/coordination.py:127`).
pub const PREFIX: &str = "cinder-";

/// A lock's name as Cinder's coordinator sees it: [`PREFIX`] and the name
/// the decorator formats. Built only by the functions below, one per name
/// upstream uses.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LockName(Arc<str>);

impl LockName {
    /// `cinder-{image_id}`: `@coordination.synchronized('{image_id}')` on
    /// `CreateVolumeFromSpecTask._prepare_image_cache_entry`
    /// (`volume/flows/manager/create_volume.py:874`).
    pub fn image(image_id: &ImageId) -> Result<Self, CoordinationError> {
        Self::new(image_id.as_str(), "")
    }

    /// `cinder-{volume_id}-delete_volume`: `VolumeManager.delete_volume`
    /// (`@coordination.synchronized('{volume.id}-delete_volume')`,
    /// `volume/manager.py:927`), also held by a create cloning this volume
    /// (`locked_action = "%s-%s" % (source_volid, 'delete_volume')`,
    /// `volume/manager.py:800`).
    pub fn delete_volume(volume_id: &VolumeId) -> Result<Self, CoordinationError> {
        Self::new(volume_id.as_str(), "-delete_volume")
    }

    /// `cinder-{snapshot_id}-delete_snapshot`: `VolumeManager.delete_snapshot`
    /// (`volume/manager.py:1313`), also held by a create from this snapshot
    /// (`volume/manager.py:797`).
    pub fn delete_snapshot(snapshot_id: &SnapshotId) -> Result<Self, CoordinationError> {
        Self::new(snapshot_id.as_str(), "-delete_snapshot")
    }

    /// tooz takes names as ASCII bytes (`(self.prefix + name).encode('ascii')`,
    /// `coordination.py:101`): any other id makes upstream raise
    /// `UnicodeEncodeError` before locking, and is refused here.
    fn new(id: &str, suffix: &str) -> Result<Self, CoordinationError> {
        if !id.is_ascii() {
            return Err(CoordinationError::InvalidName { id: id.to_owned() });
        }
        let mut s = String::with_capacity(PREFIX.len() + id.len() + suffix.len());
        s.push_str(PREFIX);
        s.push_str(id);
        s.push_str(suffix);
        Ok(Self(s.into()))
    }

    /// The name, prefix included.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LockName({:?})", &*self.0)
    }
}

/// How long upstream holds a lock, compared with the shell's gather, plan
/// and execute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockScope {
    /// The whole operation: upstream holds it around the flow (the
    /// `locked_action` of `VolumeManager.create_volume`, the
    /// `delete_volume` / `delete_snapshot` decorators).
    Operation,
    /// `_prepare_image_cache_entry`: the cache lookup and, on a miss, the
    /// whole create that fills the cache. A create that clones the image
    /// (driver clone, image-volume clone) never gets there, and a cache hit
    /// leaves it before cloning the entry's volume, so for those plans the
    /// lock covers only the gathering and planning (see
    /// [`RequiredLock::held_while_executing`]).
    ImageCache,
}

/// A lock an operation needs, and for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequiredLock {
    /// Its name.
    pub name: LockName,
    /// How long upstream holds it.
    pub scope: LockScope,
}

impl RequiredLock {
    /// Whether upstream would still hold this lock while `plan`'s steps run.
    ///
    /// [`LockScope::ImageCache`]: not for a driver clone or image-volume
    /// clone (upstream clones before `_prepare_image_cache_entry`,
    /// `create_volume.py:1111-1130`) nor for a cache hit (the lookup
    /// returns `(None, False)` and the clone from the entry runs after the
    /// lock is released, `:895-900`, `:1145-1153`); yes for everything
    /// else (a miss downloads and fills the cache under the lock, and a
    /// failed plan is kept under it to be safe).
    pub fn held_while_executing(&self, plan: &Plan) -> bool {
        match self.scope {
            LockScope::Operation => true,
            LockScope::ImageCache => !matches!(
                plan.path,
                Some(CreatePath::DriverClone | CreatePath::ImageVolumeClone | CreatePath::CacheHit)
            ),
        }
    }
}

/// The locks upstream takes for `request`, sorted by name without
/// duplicates, the order to take them in (`synchronized` sorts the
/// rendered names "to prevent potential deadlocks", `coordination.py:215-217`;
/// taking them in one global order means two operations can never each
/// hold a lock the other waits for).
///
/// The image lock is needed only when the backend's image-volume cache is
/// enabled (`image_volume_cache_enabled`): without a cache upstream never
/// calls `_prepare_image_cache_entry` (`create_volume.py:1134`).
pub fn required_locks(request: &Request, config: &Config) -> Result<Vec<RequiredLock>, CoordinationError> {
    let op = |name| RequiredLock { name, scope: LockScope::Operation };
    let mut locks = match &request.operation {
        Operation::CreateFromImage { image_id } if config.backend.image_volume_cache_enabled => {
            vec![RequiredLock { name: LockName::image(image_id)?, scope: LockScope::ImageCache }]
        }
        Operation::CreateFromSnapshot { snapshot_id } => vec![op(LockName::delete_snapshot(snapshot_id)?)],
        Operation::CreateClonedVolume { source_volid } => vec![op(LockName::delete_volume(source_volid)?)],
        Operation::DeleteVolume => vec![op(LockName::delete_volume(&request.volume_id)?)],
        _ => Vec::new(),
    };
    locks.sort_by(|a, b| a.name.cmp(&b.name));
    locks.dedup_by(|a, b| a.name == b.name);
    Ok(locks)
}

/// Why a lock could not be taken or kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoordinationError {
    /// An id that cannot name a lock (upstream raises `UnicodeEncodeError`).
    #[error("cannot name a lock after {id:?}: Cinder's lock names are ASCII")]
    InvalidName {
        /// The id.
        id: String,
    },
    /// The coordination backend could not be reached at all.
    #[error("cannot reach the lock service at {endpoints}: {message}")]
    Unreachable {
        /// Where it was looked for.
        endpoints: String,
        /// Why.
        message: String,
    },
    /// The coordination backend failed (unreachable, timed out, refused).
    #[error("lock {name}: {operation} failed: {message}")]
    Backend {
        /// The lock.
        name: LockName,
        /// What was being done (`acquire`, `keep-alive`, `release`, ...).
        operation: &'static str,
        /// The backend's words.
        message: String,
    },
    /// The lock was lost while held.
    #[error(transparent)]
    Lost(#[from] LockLost),
}

/// A held lock that is no longer held: its lease expired or could not be
/// kept alive, so another holder may have it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("lock {name} was lost: {reason}")]
pub struct LockLost {
    /// The lock.
    pub name: LockName,
    /// Why the holder considers it lost.
    pub reason: String,
}

/// Whether a held lock is still held, shared between the lock's
/// implementation (which reports loss and renewals) and whoever relies on
/// it (the shell checks it before every change it makes).
///
/// A lock is lost once [`LockStatus::lose`] was called, or once the
/// deadline given to [`LockStatus::valid_until`] has passed without a
/// renewal: a holder that cannot reach its store must assume its lease ran
/// out, even before it hears so.
#[derive(Clone, Debug)]
pub struct LockStatus {
    name: LockName,
    inner: Arc<StatusInner>,
}

#[derive(Debug, Default)]
struct StatusInner {
    lost: Mutex<Option<String>>,
    valid_until: Mutex<Option<Instant>>,
    on_loss: Event,
}

impl LockStatus {
    /// A held lock's status: held, with no deadline.
    pub fn new(name: LockName) -> Self {
        Self { name, inner: Arc::default() }
    }

    /// The lock.
    pub fn name(&self) -> &LockName {
        &self.name
    }

    /// Records the loss (the first reason is kept).
    pub fn lose(&self, reason: impl Into<String>) {
        let mut lost = self.inner.lost.lock().unwrap_or_else(PoisonError::into_inner);
        if lost.is_none() {
            *lost = Some(reason.into());
            self.inner.on_loss.notify(usize::MAX);
        }
    }

    fn reported(&self) -> Option<LockLost> {
        let lost = self.inner.lost.lock().unwrap_or_else(PoisonError::into_inner);
        lost.as_ref().map(|reason| LockLost { name: self.name.clone(), reason: reason.clone() })
    }

    /// Records that the lock is held at least until `deadline` (a lease
    /// renewal); past it, the lock counts as lost.
    pub fn valid_until(&self, deadline: Instant) {
        *self.inner.valid_until.lock().unwrap_or_else(PoisonError::into_inner) = Some(deadline);
    }

    /// `Ok` while held; the loss otherwise.
    pub fn check(&self) -> Result<(), LockLost> {
        if let Some(lost) = self.reported() {
            return Err(lost);
        }
        let deadline = *self.inner.valid_until.lock().unwrap_or_else(PoisonError::into_inner);
        match deadline {
            Some(d) if Instant::now() >= d => Err(LockLost {
                name: self.name.clone(),
                reason: "its lease was not renewed in time and may have expired".into(),
            }),
            _ => Ok(()),
        }
    }

    /// Resolves when the lock is reported lost through
    /// [`LockStatus::lose`] (a deadline passing without a report is seen by
    /// [`LockStatus::check`] only: this type keeps no timer).
    pub async fn lost(&self) -> LockLost {
        loop {
            if let Some(lost) = self.reported() {
                return lost;
            }
            // Listen, then look again: a loss between the two is not missed.
            let listener = self.inner.on_loss.listen();
            if let Some(lost) = self.reported() {
                return lost;
            }
            listener.await;
        }
    }
}

/// A lock service: takes named, exclusive locks (tooz's coordinator as
/// Cinder uses it). Object-safe, `Send + Sync`.
#[async_trait]
pub trait Coordinator: Send + Sync + fmt::Debug {
    /// Waits until the lock is held (upstream's `blocking=True`). Errors
    /// when the backend fails; a caller that wants a bound wraps the call in
    /// a timeout.
    async fn acquire(&self, name: &LockName) -> Result<Box<dyn HeldLock>, CoordinationError>;
}

/// A held lock. Dropping it releases it as well as the implementation can
/// without waiting (the in-process lock at once; a lease-based lock
/// revokes its lease in the background, or lets it expire).
#[async_trait]
pub trait HeldLock: Send + Sync + fmt::Debug {
    /// The lock.
    fn name(&self) -> &LockName;

    /// Whether it is still held.
    fn status(&self) -> &LockStatus;

    /// Releases it. An error means the store could not be told; the lock
    /// then ends when its lease does.
    async fn release(self: Box<Self>) -> Result<(), CoordinationError>;
}

/// Locks within one process: what Cinder's default file-lock coordinator
/// gives one host, for services that run one instance. Waiters are served
/// about in order (`async_lock`'s mutex is fair under contention), and a
/// lock is never lost.
///
/// [`LocalLocks::global`] is the table [`crate::shell::run`] uses, shared
/// by everything in the process.
#[derive(Clone, Debug, Default)]
pub struct LocalLocks {
    slots: Arc<Mutex<HashMap<LockName, Arc<async_lock::Mutex<()>>>>>,
}

impl LocalLocks {
    /// An empty lock table of its own.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process's lock table.
    pub fn global() -> &'static LocalLocks {
        static GLOBAL: OnceLock<LocalLocks> = OnceLock::new();
        GLOBAL.get_or_init(LocalLocks::new)
    }

    /// How many names have a holder or a waiter (for tests: released
    /// names leave no entry behind).
    pub fn in_use(&self) -> usize {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[async_trait]
impl Coordinator for LocalLocks {
    async fn acquire(&self, name: &LockName) -> Result<Box<dyn HeldLock>, CoordinationError> {
        let slot =
            Arc::clone(self.slots.lock().unwrap_or_else(PoisonError::into_inner).entry(name.clone()).or_default());
        let guard = slot.lock_arc().await;
        Ok(Box::new(LocalLock {
            name: name.clone(),
            status: LockStatus::new(name.clone()),
            guard: Some(guard),
            slots: Arc::clone(&self.slots),
        }))
    }
}

/// A lock held in a [`LocalLocks`].
#[derive(Debug)]
struct LocalLock {
    name: LockName,
    status: LockStatus,
    guard: Option<MutexGuardArc<()>>,
    slots: Arc<Mutex<HashMap<LockName, Arc<async_lock::Mutex<()>>>>>,
}

impl Drop for LocalLock {
    fn drop(&mut self) {
        // Under the table's lock, so nobody can pick up the slot between
        // the release and the check: a slot that only the table refers to
        // has no holder and no waiter, and goes.
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        drop(self.guard.take());
        if slots.get(&self.name).is_some_and(|s| Arc::strong_count(s) == 1) {
            slots.remove(&self.name);
        }
    }
}

#[async_trait]
impl HeldLock for LocalLock {
    fn name(&self) -> &LockName {
        &self.name
    }

    fn status(&self) -> &LockStatus {
        &self.status
    }

    async fn release(self: Box<Self>) -> Result<(), CoordinationError> {
        drop(self);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::Timestamp;

    fn request(operation: Operation) -> Request {
        Request { operation, volume_id: VolumeId::from("11111111-1111-4111-8111-111111111111"), now: Timestamp::EPOCH }
    }

    fn names(locks: &[RequiredLock]) -> Vec<&str> {
        locks.iter().map(|l| l.name.as_str()).collect()
    }

    #[test]
    fn names_are_upstreams() {
        let image = Operation::CreateFromImage { image_id: ImageId::from("img-1") };
        let mut cache = Config::default();
        cache.backend.image_volume_cache_enabled = true;
        assert_eq!(names(&required_locks(&request(image.clone()), &cache).unwrap()), ["cinder-img-1"]);
        assert!(required_locks(&request(image), &Config::default()).unwrap().is_empty(), "no cache, no lock");
        let snap = Operation::CreateFromSnapshot { snapshot_id: SnapshotId::from("snap-1") };
        assert_eq!(names(&required_locks(&request(snap), &cache).unwrap()), ["cinder-snap-1-delete_snapshot"]);
        let clone = Operation::CreateClonedVolume { source_volid: VolumeId::from("vol-src") };
        assert_eq!(names(&required_locks(&request(clone), &cache).unwrap()), ["cinder-vol-src-delete_volume"]);
        assert_eq!(
            names(&required_locks(&request(Operation::DeleteVolume), &cache).unwrap()),
            ["cinder-11111111-1111-4111-8111-111111111111-delete_volume"]
        );
        assert!(required_locks(&request(Operation::CreateVolume), &cache).unwrap().is_empty());
        let create_snap = Operation::CreateSnapshot { snapshot_id: SnapshotId::from("s") };
        assert!(required_locks(&request(create_snap), &cache).unwrap().is_empty());
    }

    #[test]
    fn a_non_ascii_id_names_no_lock() {
        let err = LockName::image(&ImageId::from("imagé")).unwrap_err();
        assert!(matches!(err, CoordinationError::InvalidName { .. }), "{err}");
    }

    #[test]
    fn a_status_is_lost_when_told_or_past_its_deadline() {
        let name = LockName::image(&ImageId::from("i")).unwrap();
        let s = LockStatus::new(name.clone());
        assert!(s.check().is_ok());
        s.valid_until(Instant::now() + Duration::from_secs(3600));
        assert!(s.check().is_ok());
        s.valid_until(Instant::now());
        assert!(s.check().unwrap_err().reason.contains("not renewed"));
        let s = LockStatus::new(name);
        s.lose("first");
        s.lose("second");
        assert_eq!(s.check().unwrap_err().reason, "first");
    }

    #[tokio::test]
    async fn lost_resolves_on_loss() {
        let s = LockStatus::new(LockName::image(&ImageId::from("i")).unwrap());
        let waiter = {
            let s = s.clone();
            tokio::spawn(async move { s.lost().await })
        };
        tokio::task::yield_now().await;
        s.lose("lease expired");
        assert_eq!(waiter.await.unwrap().reason, "lease expired");
    }

    #[tokio::test]
    async fn local_locks_exclude_and_leave_nothing_behind() {
        let locks = LocalLocks::new();
        let a = LockName::image(&ImageId::from("a")).unwrap();
        let b = LockName::image(&ImageId::from("b")).unwrap();
        let held = locks.acquire(&a).await.unwrap();
        // Another name is free; the same one waits.
        locks.acquire(&b).await.unwrap().release().await.unwrap();
        let pending = {
            let locks = locks.clone();
            let a = a.clone();
            tokio::spawn(async move { locks.acquire(&a).await.map(|h| h.name().clone()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!pending.is_finished(), "the second holder waits");
        held.release().await.unwrap();
        assert_eq!(pending.await.unwrap().unwrap(), a);
        assert_eq!(locks.in_use(), 0);
    }
}
