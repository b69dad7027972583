//! Cinder's locks on etcd (feature `etcd`): a [`Coordinator`] for services
//! that run on several hosts, as cinder-volume does active-active with
//! `[coordination] backend_url = etcd3+http://...`.
//!
//! The protocol is tooz's etcd driver's (`tooz/drivers/etcd3gw.py`,
//! `Etcd3Lock`), so a service using this crate and a cinder-volume sharing
//! one etcd exclude each other:
//!
//! * the key is `/tooz/locks` followed directly by the lock's name
//!   (`LOCK_PREFIX + name`: `/tooz/lockscinder-<image id>`);
//! * taking the lock is one transaction: if the key has never been created
//!   (`create_revision == 0`), put it with a random 16-byte token, attached
//!   to a lease of the holder's own (`lock_timeout`, 30 s by default);
//!   otherwise the lock is held by someone else;
//! * the holder keeps the lease alive while it holds the lock; when the
//!   holder dies, the lease expires and etcd deletes the key.
//!
//! Where this departs from tooz it does so to lose nothing: a waiter
//! watches the key for its deletion instead of retrying on a timer
//! (tooz polls); the lease is granted once per acquisition and kept alive
//! while waiting too; releasing revokes the lease, which deletes the key
//! only if it is still this holder's (tooz deletes by comparing the token).
//!
//! Loss. The lease is renewed every third of its TTL. The lock counts as
//! lost ([`LockStatus`]) as soon as a renewal fails, etcd answers that the
//! lease is gone, the keep-alive stream breaks (etcd restarted, the
//! connection dropped), or the TTL since the last acknowledged renewal has
//! run out (less a margin) without an answer: a holder that cannot reach
//! etcd must assume its lease expired. The shell refuses the plan's next
//! change and undoes ([`crate::shell::run_with`]). etcd keeps leases across
//! its own restart (and extends them), so after a restart the lost lock's
//! key stays until the release revokes the lease or the TTL ends; the
//! holder declares the loss anyway, since it cannot tell a restart from a
//! partition.
//!
//! ```no_run
//! use cinder_flow::etcd::{EtcdCoordinator, EtcdOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let etcd = EtcdCoordinator::connect(&["http://127.0.0.1:2379"], EtcdOptions::default()).await?;
//! // shell::run_with(&etcd, backends, &request, &config, &policy, &options).await
//! # let _ = etcd;
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use etcd_client::{Client, Compare, CompareOp, ConnectOptions, EventType, PutOptions, Txn, TxnOp, WatchOptions};
use tokio::task::JoinHandle;

use crate::coordination::{CoordinationError, Coordinator, HeldLock, LockName, LockStatus};

/// tooz's key prefix for locks (`Etcd3Lock.LOCK_PREFIX`).
pub const TOOZ_LOCK_PREFIX: &str = "/tooz/locks";

/// How locks are held on etcd.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EtcdOptions {
    /// The lease's time to live: how long a crashed holder's lock outlives
    /// it (tooz's `lock_timeout`, 30 s by default). Whole seconds, at least
    /// 2 (etcd's granularity; it raises smaller TTLs to its minimum).
    pub lease_ttl: Duration,
    /// Prepended to lock names to make keys ([`TOOZ_LOCK_PREFIX`], so that
    /// cinder-volume's locks and these are the same keys).
    pub key_prefix: String,
    /// How long one request to etcd may take before it counts as failed.
    pub request_timeout: Duration,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(30),
            key_prefix: TOOZ_LOCK_PREFIX.into(),
            request_timeout: Duration::from_secs(5),
        }
    }
}

impl EtcdOptions {
    /// With this lease TTL (rounded up to whole seconds, at least 2).
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// With this key prefix.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// With this per-request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    fn ttl_secs(&self) -> i64 {
        let s = self.lease_ttl.as_secs() + u64::from(self.lease_ttl.subsec_nanos() > 0);
        i64::try_from(s.max(2)).unwrap_or(i64::MAX)
    }
}

/// Locks on an etcd cluster (see the module documentation). Cheap to
/// clone: clones share one connection.
#[derive(Clone)]
pub struct EtcdCoordinator {
    client: Client,
    options: Arc<EtcdOptions>,
    endpoints: Arc<str>,
}

impl std::fmt::Debug for EtcdCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdCoordinator").field("endpoints", &self.endpoints).field("options", &self.options).finish()
    }
}

impl EtcdCoordinator {
    /// Connects to etcd (`http://host:port` endpoints).
    pub async fn connect<E: AsRef<str>>(endpoints: &[E], options: EtcdOptions) -> Result<Self, CoordinationError> {
        let joined: Arc<str> = endpoints.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(",").into();
        let connect = ConnectOptions::new()
            .with_connect_timeout(options.request_timeout)
            .with_timeout(options.request_timeout)
            // HTTP/2 pings notice a dead connection even when no call is
            // under way.
            .with_keep_alive(Duration::from_secs(1), options.request_timeout)
            .with_keep_alive_while_idle(true);
        let client = Client::connect(endpoints, Some(connect))
            .await
            .map_err(|e| CoordinationError::Unreachable { endpoints: joined.to_string(), message: e.to_string() })?;
        Ok(Self { client, options: Arc::new(options), endpoints: joined })
    }

    /// The key of a lock.
    pub fn key(&self, name: &LockName) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.options.key_prefix.len() + name.as_str().len());
        key.extend_from_slice(self.options.key_prefix.as_bytes());
        key.extend_from_slice(name.as_str().as_bytes());
        key
    }

    /// One request, bounded by the request timeout.
    async fn call<T>(
        &self,
        name: &LockName,
        operation: &'static str,
        f: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, CoordinationError> {
        let backend = |message: String| CoordinationError::Backend { name: name.clone(), operation, message };
        match tokio::time::timeout(self.options.request_timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(backend(e.to_string())),
            Err(_) => Err(backend(format!("no answer within {:?}", self.options.request_timeout))),
        }
    }

    /// Takes the lock under `lease`, waiting for the holder to let go.
    async fn take(&self, name: &LockName, lease: &Lease) -> Result<(), CoordinationError> {
        let key = self.key(name);
        let token = uuid::Uuid::new_v4().into_bytes().to_vec();
        loop {
            lease.status.check()?;
            let txn = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key.clone(), token.clone(), Some(PutOptions::new().with_lease(lease.id)))])
                .or_else([TxnOp::get(key.clone(), None)]);
            let mut client = self.client.clone();
            let resp = self.call(name, "acquire", client.txn(txn)).await?;
            if resp.succeeded() {
                return Ok(());
            }
            let revision = resp.header().map_or(0, |h| h.revision());
            tracing::debug!(lock = %name, revision, "lock held elsewhere; waiting for its release");
            tokio::select! {
                r = self.released(name, &key, revision + 1) => r?,
                lost = lease.status.lost() => return Err(lost.into()),
            }
        }
    }

    /// Waits until the key is deleted at or after `from` (or the watch
    /// ends: compaction, cancellation; then the caller tries again).
    async fn released(&self, name: &LockName, key: &[u8], from: i64) -> Result<(), CoordinationError> {
        let mut client = self.client.clone();
        let opts = WatchOptions::new().with_start_revision(from);
        let mut stream = self.call(name, "watch", client.watch(key.to_vec(), Some(opts))).await?;
        loop {
            let message = stream.message().await.map_err(|e| CoordinationError::Backend {
                name: name.clone(),
                operation: "watch",
                message: e.to_string(),
            })?;
            let Some(resp) = message else { return Ok(()) };
            if resp.canceled() || resp.events().iter().any(|e| e.event_type() == EventType::Delete) {
                return Ok(());
            }
        }
    }
}

#[async_trait]
impl Coordinator for EtcdCoordinator {
    async fn acquire(&self, name: &LockName) -> Result<Box<dyn HeldLock>, CoordinationError> {
        let ttl = self.options.ttl_secs();
        let mut client = self.client.clone();
        let sent = Instant::now();
        let grant = self.call(name, "lease grant", client.lease_grant(ttl, None)).await?;
        let status = LockStatus::new(name.clone());
        let granted = Duration::from_secs(grant.ttl().max(0) as u64);
        let deadline = sent + granted.saturating_sub(margin(granted));
        status.valid_until(deadline);
        let (keeper, stream) = match self.call(name, "lease keep-alive", client.lease_keep_alive(grant.id())).await {
            Ok(ks) => ks,
            Err(e) => {
                revoke_in_background(&self.client, grant.id(), self.options.request_timeout);
                return Err(e);
            }
        };
        let task = tokio::spawn(keep_alive(keeper, stream, status.clone(), granted, deadline));
        let lease = Lease {
            id: grant.id(),
            status,
            task: Some(task),
            client: self.client.clone(),
            timeout: self.options.request_timeout,
        };
        // On an error, dropping `lease` stops the keep-alive and revokes it.
        self.take(name, &lease).await?;
        tracing::debug!(lock = %name, lease = lease.id, "etcd lock taken");
        Ok(Box::new(EtcdLock { name: name.clone(), lease }))
    }
}

/// How much earlier than the lease's end the holder stops trusting it: a
/// tenth of the TTL, at least 250 ms (the server counts the TTL from a
/// later moment than the client, so the client errs early).
fn margin(ttl: Duration) -> Duration {
    (ttl / 10).max(Duration::from_millis(250))
}

/// A lease kept alive by a task until dropped (then revoked).
struct Lease {
    id: i64,
    status: LockStatus,
    task: Option<JoinHandle<()>>,
    client: Client,
    timeout: Duration,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("id", &self.id).field("status", &self.status).finish_non_exhaustive()
    }
}

impl Lease {
    /// Stops renewing and revokes the lease (deleting the key if it is
    /// still ours).
    async fn revoke(mut self, name: &LockName) -> Result<(), CoordinationError> {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        let mut client = self.client.clone();
        let id = self.id;
        let result = tokio::time::timeout(self.timeout, client.lease_revoke(id)).await;
        self.id = 0; // revoked (or tried): nothing for Drop to do
        match result {
            Ok(Ok(_)) => Ok(()),
            // Already expired: the key went with it.
            Ok(Err(etcd_client::Error::GRpcStatus(s))) if s.message().contains("lease not found") => Ok(()),
            Ok(Err(e)) => {
                Err(CoordinationError::Backend { name: name.clone(), operation: "release", message: e.to_string() })
            }
            Err(_) => Err(CoordinationError::Backend {
                name: name.clone(),
                operation: "release",
                message: format!("no answer within {:?}", self.timeout),
            }),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if self.id != 0 {
            revoke_in_background(&self.client, self.id, self.timeout);
        }
    }
}

/// Revokes a lease without waiting, when a runtime is at hand (otherwise
/// the lease expires by itself).
fn revoke_in_background(client: &Client, id: i64, timeout: Duration) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        let mut client = client.clone();
        handle.spawn(async move {
            let _ = tokio::time::timeout(timeout, client.lease_revoke(id)).await;
        });
    }
}

/// Renews the lease every third of its TTL and reports a loss to `status`
/// (see the module documentation).
async fn keep_alive(
    mut keeper: etcd_client::LeaseKeeper,
    mut stream: etcd_client::LeaseKeepAliveStream,
    status: LockStatus,
    ttl: Duration,
    mut deadline: Instant,
) {
    let interval = ttl / 3;
    loop {
        // Between renewals, a message on the stream can only be its end
        // or an error: etcd went away.
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            m = stream.message() => {
                match m {
                    Ok(Some(_)) => continue,
                    Ok(None) => return status.lose("the keep-alive stream was closed by etcd"),
                    Err(e) => return status.lose(format!("the keep-alive stream broke: {e}")),
                }
            }
        }
        let sent = Instant::now();
        let budget = deadline.saturating_duration_since(sent);
        let renewal = tokio::time::timeout(budget, async {
            keeper.keep_alive().await?;
            stream.message().await
        })
        .await;
        match renewal {
            Ok(Ok(Some(r))) if r.ttl() > 0 => {
                let granted = Duration::from_secs(r.ttl() as u64);
                deadline = sent + granted.saturating_sub(margin(granted));
                status.valid_until(deadline);
            }
            Ok(Ok(Some(_))) => return status.lose("etcd reports the lease expired"),
            Ok(Ok(None)) => return status.lose("the keep-alive stream was closed by etcd"),
            Ok(Err(e)) => return status.lose(format!("renewing the lease failed: {e}")),
            Err(_) => return status.lose("no renewal of the lease was acknowledged before it would expire"),
        }
    }
}

/// A lock held on etcd.
#[derive(Debug)]
struct EtcdLock {
    name: LockName,
    lease: Lease,
}

#[async_trait]
impl HeldLock for EtcdLock {
    fn name(&self) -> &LockName {
        &self.name
    }

    fn status(&self) -> &LockStatus {
        &self.lease.status
    }

    async fn release(self: Box<Self>) -> Result<(), CoordinationError> {
        let EtcdLock { name, lease } = *self;
        lease.revoke(&name).await
    }
}
