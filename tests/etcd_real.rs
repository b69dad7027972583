//! Issue 13.4 against a real etcd (feature `etcd`): Cinder's image lock
//! held on etcd by two executors in separate processes.
//!
//! Needs `CINDER_FLOW_ETCD_ENDPOINTS` (`eval "$(bash .ci/etcd.sh env)"`) and,
//! for the shared database, the venv with Cinder's migrations
//! (`CINDER_VENV`, or target/cinder-venv from `bash .ci/mariadb.sh install`).
//! Without either, each test says it skips and passes.
//!
//! What the two processes share, and why it is real enough:
//!
//! * the database: one SQLite file with Cinder 29's schema made by
//!   `cinder-manage db sync`, through the crate's `SqlVolumeDb` (feature
//!   `sql`); SQLite serialises writers across processes with its file locks,
//!   as a database server serialises transactions;
//! * the cluster: the crate's librbd model (`rbd::Cluster`, what the planner
//!   predicts with) kept in a JSON file; every cluster call reads it, applies
//!   the call and writes it back under an exclusive `flock`, so each call is
//!   atomic as a RADOS operation is, and nothing more: a create's several
//!   calls interleave freely with the other process's, as on Ceph;
//! * Glance: each process has the same in-memory image (Glance is only read
//!   in this flow: show, locations, download).
//!
//! The child processes are this test binary run again with
//! `CINDER_FLOW_LOCK_CHILD` set (the `child_executor` entry point, which
//! does nothing in a normal run).

#![cfg(all(feature = "etcd", feature = "sql", feature = "testing"))]

#[path = "sql_support/mod.rs"]
mod sql_support;
#[path = "lock_support/mod.rs"]
mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use cinder_flow::coordination::{Coordinator, LockName};
use cinder_flow::etcd::{EtcdCoordinator, EtcdOptions};
use cinder_flow::facts::{Capabilities, ClusterInfo, HostInfo};
use cinder_flow::memory::MemoryCluster;
use cinder_flow::model::ImageId;
use cinder_flow::planner::Policy;
use cinder_flow::ports::{BackendResult, DownloadedImage, Driver};
use cinder_flow::rbd::{Cluster, ImageInfo, ImageSpec, RbdOp};
use cinder_flow::shell::{self, Backends, ExecOptions, RunError};
use cinder_flow::sql::{DatabaseUrl, SqlVolumeDb};
use cinder_flow::testing::db_suite;

use support::{Limit, CREATES, IMAGE};

const ENDPOINTS: &str = "CINDER_FLOW_ETCD_ENDPOINTS";
const NO_ETCD: &str =
    "CINDER_FLOW_ETCD_ENDPOINTS is not set (bash .ci/etcd.sh start; eval \"$(bash .ci/etcd.sh env)\")";
const CHILD: &str = "CINDER_FLOW_LOCK_CHILD";

fn endpoints(test: &str) -> Option<Vec<String>> {
    match std::env::var(ENDPOINTS) {
        Ok(e) if !e.is_empty() => Some(e.split(',').map(str::to_owned).collect()),
        _ => {
            sql_support::skip(test, NO_ETCD);
            None
        }
    }
}

/// Keys of this run only (a prefix of its own), with short leases so that
/// a loss shows quickly.
fn options(run: &str) -> EtcdOptions {
    EtcdOptions::default()
        .with_key_prefix(format!("/cinder-flow-tests/{run}/tooz/locks"))
        .with_lease_ttl(Duration::from_secs(3))
}

/// The cluster in a file shared by processes (see the module documentation).
#[derive(Debug)]
struct FileCluster {
    state: PathBuf,
    lock: PathBuf,
    applied: PathBuf,
    capabilities: Capabilities,
    host: HostInfo,
}

impl FileCluster {
    fn create(dir: &Path, cluster: &Cluster, capabilities: Capabilities, host: HostInfo) -> Self {
        let this = Self::open(dir, capabilities, host);
        std::fs::write(&this.state, serde_json::to_vec(cluster).expect("cluster to JSON")).expect("cluster file");
        std::fs::write(&this.lock, b"").expect("lock file");
        std::fs::write(&this.applied, b"").expect("log file");
        this
    }

    fn open(dir: &Path, capabilities: Capabilities, host: HostInfo) -> Self {
        Self {
            state: dir.join("cluster.json"),
            lock: dir.join("cluster.lock"),
            applied: dir.join("applied.jsonl"),
            capabilities,
            host,
        }
    }

    /// Runs `f` on the cluster under the file lock; writes the cluster
    /// back (and logs `op`) when `f` succeeded and changed it.
    fn with<R>(&self, op: Option<&RbdOp>, f: impl FnOnce(&MemoryCluster) -> BackendResult<R>) -> BackendResult<R> {
        let lock = std::fs::File::open(&self.lock).expect("lock file");
        lock.lock().expect("flock");
        let cluster: Cluster = serde_json::from_slice(&std::fs::read(&self.state).expect("read")).expect("decode");
        let memory = MemoryCluster::new(cluster)
            .with_capabilities(self.capabilities.clone())
            .with_conversion_free_bytes(self.host.conversion_free_bytes);
        let result = f(&memory);
        if let (Ok(_), Some(op)) = (&result, op) {
            let tmp = self.state.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec(&memory.snapshot()).expect("encode")).expect("write");
            std::fs::rename(&tmp, &self.state).expect("rename");
            let mut log = std::fs::OpenOptions::new().append(true).open(&self.applied).expect("log");
            writeln!(log, "{}", serde_json::to_string(op).expect("op")).expect("log line");
        }
        result
    }

    fn cluster(&self) -> Cluster {
        self.with(None, |m| Ok(m.snapshot())).expect("read")
    }

    fn applied(&self) -> Vec<RbdOp> {
        let text = std::fs::read_to_string(&self.applied).expect("log");
        text.lines().map(|l| serde_json::from_str(l).expect("op")).collect()
    }
}

/// The in-memory cluster answers without waiting: its future is ready at
/// the first poll.
fn now<T>(f: impl std::future::Future<Output = T>) -> T {
    let mut f = std::pin::pin!(f);
    let waker = std::task::Waker::noop();
    match f.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the in-memory cluster waited"),
    }
}

#[async_trait]
impl Driver for FileCluster {
    async fn cluster_info(&self) -> BackendResult<ClusterInfo> {
        self.with(None, |m| now(m.cluster_info()))
    }
    async fn pool_exists(&self, pool: &str) -> BackendResult<bool> {
        self.with(None, |m| now(m.pool_exists(pool)))
    }
    async fn image_info(&self, image: &ImageSpec) -> BackendResult<Option<ImageInfo>> {
        self.with(None, |m| now(m.image_info(image)))
    }
    async fn apply(&self, op: &RbdOp, source: Option<DownloadedImage>) -> BackendResult<()> {
        self.with(Some(op), |m| now(m.apply(op, source)))
    }
    async fn capabilities(&self) -> BackendResult<Capabilities> {
        Ok(self.capabilities.clone())
    }
    async fn host_info(&self) -> BackendResult<HostInfo> {
        Ok(self.host.clone())
    }
}

fn child_env() -> Option<(PathBuf, usize, usize, String)> {
    let v = std::env::var(CHILD).ok()?;
    let mut parts = v.splitn(4, ',');
    let dir = PathBuf::from(parts.next()?);
    let index = parts.next()?.parse().ok()?;
    let of = parts.next()?.parse().ok()?;
    let run = parts.next()?.to_owned();
    Some((dir, index, of, run))
}

/// The executor of one child process: the creates `n` with
/// `n % of == index`, all at once, under etcd locks. Does nothing unless
/// `CINDER_FLOW_LOCK_CHILD` is set (by `two_processes_...` below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_executor() {
    let Some((dir, index, of, run)) = child_env() else { return };
    let endpoints: Vec<String> = std::env::var(ENDPOINTS).expect("endpoints").split(',').map(str::to_owned).collect();
    let (world, requests) = support::world(Limit::Count);
    let url = DatabaseUrl::parse(&format!("sqlite:///{}", dir.join("cinder.sqlite").display())).expect("url");
    let db = Arc::new(SqlVolumeDb::connect_with(&url, &sql_support::scratch_options()).await.expect("database"));
    let cluster = Arc::new(FileCluster::open(
        &dir,
        world.cluster.capabilities().await.expect("capabilities"),
        world.cluster.host_info().await.expect("host"),
    ));
    let etcd = EtcdCoordinator::connect(&endpoints, options(&run)).await.expect("etcd");
    let world = Arc::new(world);
    let mut tasks = tokio::task::JoinSet::new();
    for request in requests.into_iter().enumerate().filter(|(n, _)| n % of == index).map(|(_, r)| r) {
        let (world, db, cluster, etcd) = (Arc::clone(&world), Arc::clone(&db), Arc::clone(&cluster), etcd.clone());
        tasks.spawn(async move {
            let backends = Backends { driver: &*cluster, images: &world.images, db: &*db };
            shell::run_with(&etcd, backends, &request, &world.config, &Policy::faithful(), &ExecOptions::default())
                .await
                .map(|ran| ran.plan.path)
                .map_err(|e| match &e {
                    RunError::Diverged(d) => format!("{}: {e}: {d}: {:?}", request.volume_id, d.actual),
                    _ => format!("{}: {e}", request.volume_id),
                })
        });
    }
    let mut failed = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done.expect("no panic") {
            Ok(path) => eprintln!("child {index}: created ({path:?})"),
            Err(e) => failed.push(e),
        }
    }
    db.close().await;
    assert!(failed.is_empty(), "child {index}: {failed:#?}");
}

/// Two processes, 16 creates each, one image, the cache limited to two
/// entries: the etcd lock serialises them across processes. They share
/// Cinder's schema in one SQLite file (writes take SQLite's write lock at
/// once, `BEGIN IMMEDIATE`, so a second writer waits for its busy timeout)
/// and the cluster model in a file (see `lock_support`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_32_creates_keep_the_cache_limit() {
    let test = "two_processes_32_creates_keep_the_cache_limit";
    if child_env().is_some() {
        return;
    }
    let Some(_) = endpoints(test) else { return };
    // The shared directory: the database (a copy of the migrated template)
    // and the cluster file.
    let Some((file, _)) = sql_support::fresh_sqlite_file("locks-shared") else {
        return sql_support::skip(test, sql_support::NO_VENV);
    };
    let dir = file.parent().expect("dir").join("locks-shared");
    std::fs::create_dir_all(&dir).expect("dir");
    let db_file = dir.join("cinder.sqlite");
    std::fs::rename(&file, &db_file).expect("move the database");
    let url = DatabaseUrl::parse(&format!("sqlite:///{}", db_file.display())).expect("url");

    // The world: its rows into the shared database, its cluster into the file.
    let (world, _) = support::world(Limit::Count);
    let db = SqlVolumeDb::connect_with(&url, &sql_support::scratch_options()).await.expect("database");
    db.delete_all_rows().await.expect("empty");
    db_suite::load(&db, &db, &world.db.contents()).await.expect("load the rows");
    let cluster = FileCluster::create(
        &dir,
        &world.cluster.snapshot(),
        world.cluster.capabilities().await.expect("capabilities"),
        world.cluster.host_info().await.expect("host"),
    );

    // Two executors, each a process of its own, at once.
    let run = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4());
    let exe = std::env::current_exe().expect("test binary");
    let t = std::time::Instant::now();
    let children: Vec<_> = (0..2)
        .map(|index| {
            std::process::Command::new(&exe)
                .args(["--exact", "child_executor", "--nocapture", "--test-threads=1"])
                .env(CHILD, format!("{},{index},2,{run}", dir.display()))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn a child")
        })
        .collect();
    let mut outputs = Vec::new();
    for child in children {
        let out = child.wait_with_output().expect("child");
        outputs.push(out);
    }
    eprintln!("{CREATES} creates in two processes took {:.2} s", t.elapsed().as_secs_f64());
    for (i, out) in outputs.iter().enumerate() {
        assert!(
            out.status.success(),
            "child {i} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(log.matches("created (").count(), CREATES / 2, "child {i} ran its share:\n{log}");
    }

    let rows = db.contents().await.expect("rows");
    let problems = support::problems(&cluster.cluster(), &rows, &cluster.applied());
    assert!(problems.is_empty(), "{problems:#?}");
    let entries = rows.cache.values().filter(|e| e.image_id.as_str() == IMAGE).count();
    assert_eq!(entries, 1, "one create filled the cache, the others cloned its entry");
    db.close().await;
}

/// A driver that, after its first change, revokes the lease of `name` on
/// etcd (as etcd does when a lease expires) and waits until the holder has
/// had time to notice.
struct RevokeAfterFirstChange<'a> {
    inner: &'a MemoryCluster,
    etcd: etcd_client::Client,
    key: Vec<u8>,
    wait: Duration,
    done: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for RevokeAfterFirstChange<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokeAfterFirstChange").field("inner", &self.inner).finish_non_exhaustive()
    }
}

#[async_trait]
impl Driver for RevokeAfterFirstChange<'_> {
    async fn cluster_info(&self) -> BackendResult<ClusterInfo> {
        self.inner.cluster_info().await
    }
    async fn pool_exists(&self, pool: &str) -> BackendResult<bool> {
        self.inner.pool_exists(pool).await
    }
    async fn image_info(&self, image: &ImageSpec) -> BackendResult<Option<ImageInfo>> {
        self.inner.image_info(image).await
    }
    async fn apply(&self, op: &RbdOp, source: Option<DownloadedImage>) -> BackendResult<()> {
        let result = self.inner.apply(op, source).await;
        if !self.done.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let mut etcd = self.etcd.clone();
            let got = etcd.get(self.key.clone(), None).await.expect("get the lock's key");
            let lease = got.kvs().first().expect("the lock's key exists while held").lease();
            etcd.lease_revoke(lease).await.expect("revoke");
            tokio::time::sleep(self.wait).await;
        }
        result
    }
    async fn capabilities(&self) -> BackendResult<Capabilities> {
        self.inner.capabilities().await
    }
    async fn host_info(&self) -> BackendResult<HostInfo> {
        self.inner.host_info().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_stops_and_undoes_the_create() {
    let test = "a_lost_lease_stops_and_undoes_the_create";
    if child_env().is_some() {
        return;
    }
    let Some(endpoints) = endpoints(test) else { return };
    let run = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4());
    let options = options(&run);
    let etcd = EtcdCoordinator::connect(&endpoints, options.clone()).await.expect("etcd");
    let (world, mut requests) = support::world(Limit::Count);
    let request = requests.remove(0);
    let name = LockName::image(&ImageId::from(IMAGE)).unwrap();
    let driver = RevokeAfterFirstChange {
        inner: &world.cluster,
        etcd: etcd_client::Client::connect(&endpoints, None).await.expect("a second client"),
        key: etcd.key(&name),
        // The holder renews every third of the TTL: by then it has heard.
        wait: options.lease_ttl,
        done: false.into(),
    };
    let cluster_before = world.cluster.snapshot();
    let rows_before = world.db.contents();
    let backends = Backends { driver: &driver, images: &world.images, db: &world.db };
    let result =
        shell::run_with(&etcd, backends, &request, &world.config, &Policy::faithful(), &ExecOptions::default()).await;
    match result {
        Err(RunError::LockLost { lost, diverged: Some(diverged) }) => {
            assert_eq!(lost.name, name);
            assert!(!diverged.undone.is_empty(), "what the plan did was undone: {diverged:?}");
        }
        other => panic!("expected the lock loss to stop the create, got {other:?}"),
    }
    assert_eq!(world.cluster.snapshot(), cluster_before, "the cluster is as before");
    let mut rows = world.db.contents();
    // The row ends in `error`, as upstream marks a failed create; nothing else changed.
    let row = rows.volumes.get_mut(&request.volume_id).expect("row");
    assert_eq!(row.status.as_str(), "error");
    row.status = rows_before.volumes[&request.volume_id].status.clone();
    assert_eq!(rows, rows_before, "the database is as before, but for the status");
    // The key went with the lease: the lock is free for the next holder.
    let again = tokio::time::timeout(Duration::from_secs(5), etcd.acquire(&name)).await;
    again.expect("free at once").expect("taken").release().await.expect("released");
}
