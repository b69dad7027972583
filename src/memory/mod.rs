//! In-memory backends: a simulated Ceph cluster, Glance and Cinder's
//! database, with upstream's semantics, for tests, examples and the
//! conformance runner.
//!
//! * [`MemoryCluster`] is a [`Driver`](crate::ports::Driver) over [`crate::rbd::Cluster`], the same
//!   librbd model the planner predicts with.
//! * [`MemoryImageService`] answers like Glance, with the new location API
//!   or only the legacy GET.
//! * [`MemoryVolumeDb`] keeps rows with Cinder's visibility rules.
//!
//! All three can share a [`Journal`] that records every call that changes
//! something (and the ones that failed), in call order, so a test can see
//! exactly what a plan did. Faults can be injected into all three
//! ([`FaultInjector`]); one injector shared by the three makes "the n-th
//! backend call" fail whichever backend it goes to, either refused or
//! after taking effect (a lost reply).

mod cluster;
mod db;
mod glance;

pub use cluster::MemoryCluster;
pub use db::{DbContents, MemoryVolumeDb};
pub use glance::MemoryImageService;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::BackendErrorKind;
use crate::model::ImageId;
use crate::rbd::RbdOp;

/// One recorded call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalEntry {
    /// A librbd call and how it ended.
    Rbd {
        /// The call.
        op: RbdOp,
        /// `Err` if it reported a failure: it changed nothing, unless the
        /// failure was an injected lost reply ([`FaultMode::LoseReply`]).
        result: Result<(), BackendErrorKind>,
    },
    /// An image download and how it ended.
    Download {
        /// The image.
        image_id: ImageId,
        /// `Err` if it failed.
        result: Result<(), BackendErrorKind>,
    },
}

/// A shared, append-only record of calls.
#[derive(Clone, Debug, Default)]
pub struct Journal(Arc<Mutex<Vec<JournalEntry>>>);

impl Journal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn push(&self, e: JournalEntry) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(e);
    }

    /// Everything recorded so far.
    pub fn entries(&self) -> Vec<JournalEntry> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Forgets everything recorded.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

/// How an injected fault shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultMode {
    /// The call is refused: it changes nothing and reports the error.
    Fail,
    /// The reply is lost: the call takes effect, then reports the error,
    /// as a call whose answer times out after the backend performed it.
    LoseReply,
}

/// One injected fault: the error a call reports and whether it took
/// effect first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fault {
    /// The error the call reports.
    pub kind: BackendErrorKind,
    /// Whether the call changes nothing or takes effect first.
    pub mode: FaultMode,
}

/// Which calls to fail, for fault-injection tests: the `n`-th (0-based)
/// cluster-changing call, download, Glance location change or database
/// write from now on (counted across every backend the injector is given
/// to) fails with the given kind, either without changing anything
/// ([`FaultInjector::fail_call`]) or after taking effect
/// ([`FaultInjector::lose_reply`]). Several faults may be pending at once
/// (e.g. one during a plan and one during its undo).
///
/// ```
/// use cinder_flow::error::BackendErrorKind;
/// use cinder_flow::memory::{FaultInjector, MemoryVolumeDb};
/// use cinder_flow::model::{GiB, Volume, VolumeStatus};
/// use cinder_flow::plan::{DbWrite, VolumeUpdate};
/// use cinder_flow::ports::VolumeDb;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let faults = FaultInjector::new();
/// let db = MemoryVolumeDb::new().with_faults(faults.clone());
/// db.add_volume(Volume::new("v1", "p1", GiB(1)));
/// let set = VolumeUpdate { status: Some(VolumeStatus::Error), ..Default::default() };
/// let write = DbWrite::UpdateVolume { volume_id: "v1".into(), set, previous: VolumeUpdate::default() };
/// // The next write times out after the database performed it.
/// faults.lose_reply(0, BackendErrorKind::Unavailable);
/// assert!(db.write(&write).await.is_err());
/// assert_eq!(db.get_volume(&"v1".into()).unwrap().status, VolumeStatus::Error);
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct FaultInjector(Arc<Mutex<FaultState>>);

#[derive(Debug, Default)]
struct FaultState {
    calls: usize,
    /// Pending faults by absolute call number.
    pending: BTreeMap<usize, Fault>,
}

impl FaultInjector {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the `n`-th call from now fail with `kind` without changing
    /// anything (replacing a fault already planned for that call).
    pub fn fail_call(&self, n: usize, kind: BackendErrorKind) {
        self.inject(n, Fault { kind, mode: FaultMode::Fail });
    }

    /// Makes the `n`-th call from now take effect and then report `kind`
    /// (a lost reply; replacing a fault already planned for that call).
    pub fn lose_reply(&self, n: usize, kind: BackendErrorKind) {
        self.inject(n, Fault { kind, mode: FaultMode::LoseReply });
    }

    /// Plans `fault` for the `n`-th call from now.
    pub fn inject(&self, n: usize, fault: Fault) {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let at = s.calls.saturating_add(n);
        s.pending.insert(at, fault);
    }

    /// Stops injecting: forgets every pending fault.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).pending.clear();
    }

    /// How many calls were counted.
    pub fn calls(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).calls
    }

    /// Counts a call; the fault it must show, if any.
    pub(crate) fn tick(&self) -> Option<Fault> {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = s.calls;
        s.calls += 1;
        s.pending.remove(&n)
    }
}
