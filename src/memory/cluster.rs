//! A simulated Ceph cluster behind the [`Driver`] port.

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use crate::error::{BackendError, BackendErrorKind};
use crate::facts::{Capabilities, ClusterInfo, HostInfo};
use crate::model::Host;
use crate::ports::{BackendResult, DownloadedImage, Driver};
use crate::rbd::{ApplyError, Cluster, ImageInfo, ImageSpec, RbdOp};

use super::{Fault, FaultInjector, FaultMode, Journal, JournalEntry};

/// A [`Cluster`] behind a lock, as a [`Driver`].
///
/// ```
/// use cinder_flow::memory::MemoryCluster;
/// use cinder_flow::model::Bytes;
/// use cinder_flow::ports::Driver;
/// use cinder_flow::rbd::{Cluster, ImageSpec, RbdOp};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut c = Cluster::new("fsid-1");
/// c.add_pool("volumes");
/// let driver = MemoryCluster::new(c);
/// let op = RbdOp::Create { image: ImageSpec::new("volumes", "v1"), size: Bytes(1 << 30), order: 22, features: 1 };
/// driver.apply(&op, None).await.unwrap();
/// assert!(driver.apply(&op, None).await.is_err(), "ImageExists the second time");
/// # }
/// ```
#[derive(Debug)]
pub struct MemoryCluster {
    state: Mutex<Cluster>,
    journal: Journal,
    faults: FaultInjector,
    capabilities: Capabilities,
    host: HostInfo,
}

impl MemoryCluster {
    /// A driver over `cluster` (complete, not partial), with a journal of
    /// its own, no faults, no capabilities and 2^60 bytes of free conversion
    /// space.
    pub fn new(cluster: Cluster) -> Self {
        Self {
            state: Mutex::new(cluster),
            journal: Journal::new(),
            faults: FaultInjector::new(),
            capabilities: Capabilities::default(),
            host: HostInfo { conversion_free_bytes: 1 << 60, service_host: None },
        }
    }

    /// Records calls in `journal` (shared with other backends).
    pub fn with_journal(mut self, journal: Journal) -> Self {
        self.journal = journal;
        self
    }

    /// Injects faults from `faults`.
    pub fn with_faults(mut self, faults: FaultInjector) -> Self {
        self.faults = faults;
        self
    }

    /// Reports these capabilities.
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Reports this much free conversion space.
    pub fn with_conversion_free_bytes(mut self, free: u64) -> Self {
        self.host.conversion_free_bytes = free;
        self
    }

    /// Reports this volume service host (`host@backend`).
    pub fn with_service_host(mut self, host: Host) -> Self {
        self.host.service_host = Some(host);
        self
    }

    /// A copy of the cluster as it is now.
    pub fn snapshot(&self) -> Cluster {
        self.lock().clone()
    }

    /// Changes the cluster in place (outside the journal and the faults),
    /// e.g. to switch its [`Semantics`](crate::rbd::Semantics).
    pub fn update<R>(&self, f: impl FnOnce(&mut Cluster) -> R) -> R {
        f(&mut self.lock())
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cluster> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn backend_error(e: ApplyError, what: String) -> BackendError {
    match e {
        ApplyError::Failed(k) => BackendError::new(k, what),
        // A complete cluster knows everything.
        ApplyError::Unknown(f) => {
            BackendError::new(BackendErrorKind::Other, what).with_detail(format!("unknown {f:?}"))
        }
    }
}

#[async_trait]
impl Driver for MemoryCluster {
    async fn cluster_info(&self) -> BackendResult<ClusterInfo> {
        let c = self.lock();
        if !c.reachable {
            return Err(BackendError::new(BackendErrorKind::Unavailable, "connect to the cluster"));
        }
        Ok(ClusterInfo {
            fsid: c.fsid.clone(),
            clone_v2: c.clone_v2,
            default_features: c.default_features,
            semantics: c.semantics,
        })
    }

    async fn pool_exists(&self, pool: &str) -> BackendResult<bool> {
        let c = self.lock();
        match c.check_pool(pool) {
            Ok(()) => Ok(true),
            Err(ApplyError::Failed(BackendErrorKind::PoolNotFound)) => Ok(false),
            Err(e) => Err(backend_error(e, format!("open pool {pool}"))),
        }
    }

    async fn image_info(&self, image: &ImageSpec) -> BackendResult<Option<ImageInfo>> {
        let c = self.lock();
        c.image_info(image).map_err(|e| backend_error(e, format!("stat {image}")))
    }

    async fn apply(&self, op: &RbdOp, _source: Option<DownloadedImage>) -> BackendResult<()> {
        let result = match self.faults.tick() {
            Some(Fault { kind, mode: FaultMode::Fail }) => Err(ApplyError::Failed(kind)),
            Some(Fault { kind, mode: FaultMode::LoseReply }) => {
                // Whether librbd refused it or not, the caller hears `kind`.
                let _ = self.lock().apply(op);
                Err(ApplyError::Failed(kind))
            }
            None => self.lock().apply(op),
        };
        let kind = match &result {
            Ok(()) => Ok(()),
            Err(ApplyError::Failed(k)) => Err(*k),
            Err(ApplyError::Unknown(_)) => Err(BackendErrorKind::Other),
        };
        self.journal.push(JournalEntry::Rbd { op: op.clone(), result: kind });
        result.map_err(|e| backend_error(e, op.to_string()))
    }

    async fn capabilities(&self) -> BackendResult<Capabilities> {
        Ok(self.capabilities.clone())
    }

    async fn host_info(&self) -> BackendResult<HostInfo> {
        Ok(self.host.clone())
    }
}
