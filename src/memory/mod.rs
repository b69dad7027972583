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
//! backend call" fail whichever backend it goes to.

mod cluster;
mod db;
mod glance;

pub use cluster::MemoryCluster;
pub use db::{DbContents, MemoryVolumeDb};
pub use glance::MemoryImageService;

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
        /// `Err` if it failed (and changed nothing).
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

/// Which calls to fail, for fault-injection tests: the `n`-th
/// (0-based) cluster-changing call, download or database write from now on
/// (counted across every backend the injector is given to) fails with the
/// given kind, without changing anything.
#[derive(Clone, Debug, Default)]
pub struct FaultInjector(Arc<Mutex<FaultState>>);

#[derive(Debug, Default)]
struct FaultState {
    calls: usize,
    fail_at: Option<(usize, BackendErrorKind)>,
}

impl FaultInjector {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the `n`-th call from now fail with `kind`.
    pub fn fail_call(&self, n: usize, kind: BackendErrorKind) {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        s.fail_at = Some((s.calls + n, kind));
    }

    /// Stops injecting.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).fail_at = None;
    }

    /// How many calls were counted.
    pub fn calls(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).calls
    }

    /// Counts a call; `Some(kind)` if it must fail.
    pub(crate) fn tick(&self) -> Option<BackendErrorKind> {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = s.calls;
        s.calls += 1;
        match s.fail_at {
            Some((at, kind)) if at == n => Some(kind),
            _ => None,
        }
    }
}
