//! Glance's RBD store (`glance_store/_drivers/rbd.py`, GS-1..3): planning
//! an image upload and an image delete, so the crate can explain where an
//! `rbd://` location comes from and why an image cannot be deleted.
//!
//! Like the Cinder planner, each function follows upstream's calls in order
//! against a [`Cluster`] (complete, or partial and then asking for facts),
//! recording each librbd call with its expected result.
//!
//! Like every planner of the crate it speaks [`Decide`]: a
//! [`StorePlanner`] asks for the cluster facts it needs (the fsid, the
//! store's pool, the image and its snapshots' children) and decides; the
//! shell's [`drive`](crate::shell::drive) answers through a
//! [`Driver`](crate::ports::Driver).
//!
//! ```
//! use cinder_flow::glance_store::{StoreConfig, StoreOutcome, StorePlanner, StoreRequest, Upload};
//! use cinder_flow::memory::{MemoryCluster, MemoryImageService, MemoryVolumeDb};
//! use cinder_flow::rbd::Cluster;
//! use cinder_flow::shell::{drive, Backends};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut cluster = Cluster::new("7d5ab9c0-5e1b-4a2b-9c3d-0000000000f5");
//! cluster.add_pool("images");
//! let driver = MemoryCluster::new(cluster);
//! let (images, db) = (MemoryImageService::new(), MemoryVolumeDb::new());
//! let backends = Backends { driver: &driver, images: &images, db: &db };
//!
//! let upload = StoreRequest::Upload(Upload::sized("aaaa", 1 << 30));
//! let (plan, _facts) = drive(backends, StorePlanner::new(upload, StoreConfig::default())).await.unwrap();
//! assert_eq!(plan.outcome, StoreOutcome::Stored);
//! assert_eq!(plan.location.as_deref(), Some("rbd://7d5ab9c0-5e1b-4a2b-9c3d-0000000000f5/images/aaaa/snap"));
//! # }
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::BackendErrorKind;
use crate::facts::{Fact, Facts, Need};
use crate::model::{Bytes, MIB};
use crate::planner::{Decide, PlanError, Planning};
use crate::rbd::{ApplyError, Cluster, ClusterFact, ImageSpec, RbdOp};

/// The snapshot name glance_store gives every image (`DEFAULT_SNAPNAME`).
pub const SNAPSHOT_NAME: &str = "snap";

/// glance_store's RBD options.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreConfig {
    /// `rbd_store_pool` (default `images`).
    pub pool: String,
    /// `rbd_store_chunk_size` in MiB (default 8, at least 1).
    pub chunk_size_mib: u64,
    /// `rbd_thin_provisioning`: all-zero chunks are not written.
    pub thin_provisioning: bool,
    /// The multistore backend name, reported as location metadata `store`.
    pub backend_group: Option<String>,
    /// Whether the connection reports the cluster fsid; without it the
    /// location is the 1-part `rbd://<image>`, which Cinder cannot clone.
    pub fsid_known: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            pool: "images".into(),
            chunk_size_mib: 8,
            thin_provisioning: false,
            backend_group: None,
            fsid_known: true,
        }
    }
}

/// An upload: the image and the data that will arrive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// The image id (the RBD image name).
    pub image_id: String,
    /// The size the client declared; 0 when unknown (resize on write).
    pub declared_size: u64,
    /// The bytes that will actually arrive.
    pub data_size: u64,
    /// Indices of all-zero chunks (skipped with thin provisioning).
    pub zero_chunks: Vec<u64>,
}

impl Upload {
    /// An upload whose declared size is right.
    pub fn sized(image_id: impl Into<String>, size: u64) -> Self {
        Self { image_id: image_id.into(), declared_size: size, data_size: size, zero_chunks: Vec::new() }
    }
}

/// One step of a store plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum StoreStep {
    /// A librbd call and its expected result.
    Rbd {
        /// The call.
        op: RbdOp,
        /// `None`: succeeds; `Some(kind)`: fails that way.
        fails: Option<BackendErrorKind>,
    },
    /// Data written: `chunks` chunks from `offset`, `bytes` in all
    /// (`skipped` all-zero chunks not written).
    Write {
        /// First byte.
        offset: u64,
        /// Bytes covered.
        bytes: u64,
        /// Chunks written.
        chunks: u64,
        /// Zero chunks skipped (thin provisioning).
        skipped: u64,
    },
}

/// How a store operation ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StoreOutcome {
    /// Stored; the location is in [`StorePlan::location`].
    Stored,
    /// Deleted (removed, or moved to the trash when snapshots remain).
    Deleted,
    /// `Duplicate`: an image of that name exists.
    Duplicate,
    /// `Invalid`: more or fewer bytes than declared.
    Invalid {
        /// Declared size.
        expected: u64,
        /// Bytes received.
        actual: u64,
    },
    /// `InUseByStore`: a snapshot is in use (clones read from it) or the
    /// image has watchers.
    InUse {
        /// Why, in words.
        why: String,
    },
    /// `NotFound`: no such image.
    NotFound,
    /// A librbd error glance_store lets through.
    Failed {
        /// The error.
        error: BackendErrorKind,
    },
}

/// A planned store operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorePlan {
    /// The calls, in order.
    pub steps: Vec<StoreStep>,
    /// How it ends.
    pub outcome: StoreOutcome,
    /// For uploads: the location URI Glance records.
    pub location: Option<String>,
    /// Explanations for a reader.
    pub notes: Vec<String>,
    /// The cluster as the plan leaves it.
    pub cluster_after: Cluster,
}

/// What to plan: an upload or a delete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "store", rename_all = "snake_case")]
pub enum StoreRequest {
    /// `RBDStore.add`.
    Upload(Upload),
    /// `RBDStore.delete` of a location.
    Delete {
        /// The location (`rbd://fsid/pool/image/snap` or `rbd://image`).
        location: String,
    },
}

/// Glance's RBD store as a planner across rounds of fact gathering (see
/// [`Decide`]).
#[derive(Clone, Debug)]
pub struct StorePlanner {
    request: StoreRequest,
    config: StoreConfig,
    facts: Facts,
}

impl StorePlanner {
    /// A planner for `request` with the store's configuration.
    pub fn new(request: StoreRequest, config: StoreConfig) -> Self {
        Self { request, config, facts: Facts::new() }
    }

    /// Starts from facts already known.
    pub fn with_facts(mut self, facts: Facts) -> Self {
        self.facts = facts;
        self
    }
}

impl Decide for StorePlanner {
    type Decision = StorePlan;

    fn decide(&self) -> Result<Planning<StorePlan>, PlanError> {
        plan_store(&self.request, &self.config, &self.facts)
    }

    fn learn_all(&mut self, facts: Vec<Fact>) {
        self.facts.learn_all(facts);
    }

    fn facts(&self) -> &Facts {
        &self.facts
    }

    fn into_facts(self) -> Facts {
        self.facts
    }
}

/// Decides a store request from `facts`, or names the facts it needs.
/// Pure: the same facts give the same plan.
pub fn plan_store(
    request: &StoreRequest,
    config: &StoreConfig,
    facts: &Facts,
) -> Result<Planning<StorePlan>, PlanError> {
    let Some(cluster) = facts.cluster_view() else { return Ok(Planning::NeedFacts(vec![Need::Cluster])) };
    if !cluster.reachable {
        // glance_store's connection raises before any call.
        let sim = Sim { cluster, steps: Vec::new(), notes: vec!["the cluster cannot be reached".into()] };
        return Ok(Planning::Done(Box::new(
            sim.finish(StoreOutcome::Failed { error: BackendErrorKind::Unavailable }, None),
        )));
    }
    let planned = match request {
        StoreRequest::Upload(up) => plan_upload(cluster, config, up),
        StoreRequest::Delete { location } => plan_delete(cluster, config, location),
    };
    Ok(match planned {
        Ok(plan) => Planning::Done(Box::new(plan)),
        Err(NeedFact(fact)) => Planning::NeedFacts(vec![fact.into()]),
    })
}

/// A fact the cluster view lacks.
#[derive(Debug)]
struct NeedFact(ClusterFact);

struct Sim {
    cluster: Cluster,
    steps: Vec<StoreStep>,
    notes: Vec<String>,
}

impl Sim {
    fn call(&mut self, op: RbdOp) -> Result<Result<(), BackendErrorKind>, NeedFact> {
        match self.cluster.apply(&op) {
            Ok(()) => {
                self.steps.push(StoreStep::Rbd { op, fails: None });
                Ok(Ok(()))
            }
            Err(ApplyError::Failed(k)) => {
                self.steps.push(StoreStep::Rbd { op, fails: Some(k) });
                Ok(Err(k))
            }
            Err(ApplyError::Unknown(f)) => Err(NeedFact(f)),
        }
    }

    fn open(&self, spec: &ImageSpec) -> Result<Result<(), BackendErrorKind>, NeedFact> {
        match self.cluster.open(spec, None) {
            Ok(_) => Ok(Ok(())),
            Err(ApplyError::Failed(k)) => Ok(Err(k)),
            Err(ApplyError::Unknown(f)) => Err(NeedFact(f)),
        }
    }

    fn finish(self, outcome: StoreOutcome, location: Option<String>) -> StorePlan {
        StorePlan { steps: self.steps, outcome, location, notes: self.notes, cluster_after: self.cluster }
    }
}

/// `urllib.parse.quote(s, '')`: everything but unreserved characters
/// percent-encoded as UTF-8.
fn quote_all(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `StoreLocation.get_uri`.
fn location_uri(fsid: Option<&str>, pool: &str, image: &str) -> String {
    match fsid {
        Some(f) if !f.is_empty() && !pool.is_empty() => {
            format!("rbd://{}/{}/{}/{}", quote_all(f), quote_all(pool), quote_all(image), quote_all(SNAPSHOT_NAME))
        }
        _ => format!("rbd://{image}"),
    }
}

/// `RBDStore.add` (GS-1, GS-2), against a cluster view.
fn plan_upload(cluster: Cluster, cfg: &StoreConfig, up: &Upload) -> Result<StorePlan, NeedFact> {
    let fsid = cfg.fsid_known.then(|| cluster.fsid.clone());
    let features = cluster.cinder_features();
    let mut sim = Sim { cluster, steps: Vec::new(), notes: Vec::new() };
    let chunk = cfg.chunk_size_mib.max(1).saturating_mul(MIB);
    let order = (63 - chunk.leading_zeros()) as u8;
    let spec = ImageSpec::new(cfg.pool.clone(), up.image_id.clone());
    match sim.call(RbdOp::Create { image: spec.clone(), size: Bytes(up.declared_size), order, features })? {
        Ok(()) => {}
        Err(BackendErrorKind::AlreadyExists) => {
            sim.notes.push(format!("RBD image {spec} already exists"));
            return Ok(sim.finish(StoreOutcome::Duplicate, None));
        }
        Err(k) => return Ok(sim.finish(StoreOutcome::Failed { error: k }, None)),
    }
    let uri = location_uri(fsid.as_deref(), &cfg.pool, &up.image_id);
    if fsid.is_none() {
        sim.notes.push("the cluster fsid is unknown: the location is rbd://<image>, which Cinder cannot clone".into());
    }

    // Chunks, resizing on write when the size is unknown (doubling up to
    // 8 GiB), checking overruns.
    let zero: std::collections::BTreeSet<u64> = up.zero_chunks.iter().copied().collect();
    let (mut size, mut resize_amount) = (0u64, chunk);
    let (mut written, mut offset, mut idx) = (0u64, 0u64, 0u64);
    let mut run = (0u64, 0u64, 0u64, 0u64); // offset, bytes, chunks, skipped
    let flush = |sim: &mut Sim, run: &mut (u64, u64, u64, u64)| {
        if run.1 > 0 {
            sim.steps.push(StoreStep::Write { offset: run.0, bytes: run.1, chunks: run.2, skipped: run.3 });
        }
        *run = (0, 0, 0, 0);
    };
    let mut failure = None;
    while written < up.data_size {
        let len = chunk.min(up.data_size - written);
        if up.declared_size == 0 && size < written + len {
            resize_amount = (resize_amount * 2).min(8 << 30);
            size += resize_amount;
            flush(&mut sim, &mut run);
            if let Err(k) = sim.call(RbdOp::Resize { image: spec.clone(), size: Bytes(size) })? {
                failure = Some(StoreOutcome::Failed { error: k });
                break;
            }
        }
        written += len;
        if up.declared_size != 0 && written > up.declared_size {
            failure = Some(StoreOutcome::Invalid { expected: up.declared_size, actual: written });
            break;
        }
        if run.1 == 0 {
            run.0 = offset;
        }
        run.1 += len;
        if cfg.thin_provisioning && zero.contains(&idx) {
            run.3 += 1;
        } else {
            run.2 += 1;
        }
        offset += len;
        idx += 1;
    }
    flush(&mut sim, &mut run);
    if failure.is_none() && up.declared_size == 0 {
        // Trim what resize-on-write overshot.
        if let Err(k) = sim.call(RbdOp::Resize { image: spec.clone(), size: Bytes(written) })? {
            failure = Some(StoreOutcome::Failed { error: k });
        }
    }
    if failure.is_none() {
        for op in [
            RbdOp::CreateSnap { snap: spec.snap(SNAPSHOT_NAME) },
            RbdOp::ProtectSnap { snap: spec.snap(SNAPSHOT_NAME) },
        ] {
            if let Err(k) = sim.call(op)? {
                failure = Some(StoreOutcome::Failed { error: k });
                break;
            }
        }
    }
    if let Some(outcome) = failure {
        sim.notes.push("the upload failed: glance_store deletes what it created".into());
        delete_image(&mut sim, &spec)?;
        return Ok(sim.finish(outcome, None));
    }
    if up.declared_size != 0 && written != up.declared_size {
        sim.notes.push("fewer bytes than declared: the image is deleted".into());
        delete_image(&mut sim, &spec)?;
        return Ok(sim.finish(StoreOutcome::Invalid { expected: up.declared_size, actual: written }, None));
    }
    if let Some(store) = &cfg.backend_group {
        sim.notes.push(format!("location metadata: store={store}"));
    }
    sim.notes.push(format!("snapshot {SNAPSHOT_NAME} is protected, so Cinder can clone it copy-on-write"));
    Ok(sim.finish(StoreOutcome::Stored, Some(uri)))
}

/// `RBDStore._delete_image` with the store's snapshot (GS-3).
fn delete_image(sim: &mut Sim, spec: &ImageSpec) -> Result<StoreOutcome, NeedFact> {
    match sim.open(spec)? {
        Ok(()) => {}
        Err(BackendErrorKind::NotFound) => return Ok(StoreOutcome::NotFound),
        Err(k) => return Ok(StoreOutcome::Failed { error: k }),
    }
    let snap = spec.snap(SNAPSHOT_NAME);
    // _unprotect_snapshot: InvalidArgument (already unprotected) is fine.
    let unprotect = match sim.call(RbdOp::UnprotectSnap { snap: snap.clone() })? {
        Ok(()) | Err(BackendErrorKind::InvalidArgument) => Ok(()),
        Err(k) => Err(k),
    };
    let snap_result = match unprotect {
        Ok(()) => sim.call(RbdOp::RemoveSnap { snap: snap.clone() })?,
        Err(k) => Err(k),
    };
    match snap_result {
        Ok(()) | Err(BackendErrorKind::NotFound) => {}
        Err(BackendErrorKind::Busy) => {
            let children = sim.cluster.list_children(spec, Some(SNAPSHOT_NAME)).unwrap_or_default();
            let why = if children.is_empty() {
                format!("snapshot {SNAPSHOT_NAME} of {spec} is in use")
            } else {
                let names: Vec<String> = children.iter().map(ToString::to_string).collect();
                format!(
                    "snapshot {SNAPSHOT_NAME} of {spec} has {} copy-on-write clone(s): {}; they must be flattened or deleted first",
                    children.len(),
                    names.join(", ")
                )
            };
            sim.notes.push(why.clone());
            return Ok(StoreOutcome::InUse { why });
        }
        Err(k) => return Ok(StoreOutcome::Failed { error: k }),
    }
    match sim.call(RbdOp::Remove { image: spec.clone() })? {
        Ok(()) => Ok(StoreOutcome::Deleted),
        Err(BackendErrorKind::HasSnapshots) => {
            sim.notes.push(format!("{spec} still has snapshots: moved to the trash instead"));
            match sim.call(RbdOp::TrashMove { image: spec.clone(), delay: 0 })? {
                Ok(()) => Ok(StoreOutcome::Deleted),
                Err(BackendErrorKind::Busy) => {
                    let why = format!("{spec} is in use (watchers); it cannot be moved to the trash");
                    sim.notes.push(why.clone());
                    Ok(StoreOutcome::InUse { why })
                }
                Err(k) => Ok(StoreOutcome::Failed { error: k }),
            }
        }
        Err(BackendErrorKind::Busy) => {
            let why = format!("{spec} is in use (watchers)");
            sim.notes.push(why.clone());
            Ok(StoreOutcome::InUse { why })
        }
        Err(BackendErrorKind::NotFound) => Ok(StoreOutcome::NotFound),
        Err(k) => Ok(StoreOutcome::Failed { error: k }),
    }
}

/// `RBDStore.delete` of a location (`rbd://fsid/pool/image/snap` or the
/// 1-part `rbd://image`, in the store's pool), against a cluster view.
fn plan_delete(cluster: Cluster, cfg: &StoreConfig, location: &str) -> Result<StorePlan, NeedFact> {
    let mut sim = Sim { cluster, steps: Vec::new(), notes: Vec::new() };
    let Some(rest) = location.strip_prefix("rbd://") else {
        sim.notes.push(format!("{location:?} is not an rbd:// location"));
        return Ok(sim.finish(StoreOutcome::NotFound, None));
    };
    let pieces: Vec<&str> = rest.split('/').collect();
    let (pool, image) = match pieces.as_slice() {
        [image] if !image.is_empty() => (cfg.pool.clone(), (*image).to_owned()),
        [_, pool, image, _] if pieces.iter().all(|p| !p.is_empty()) => (unquote(pool), unquote(image)),
        _ => {
            sim.notes.push("BadStoreUri: the URI must have exactly 1 or 4 non-empty components".into());
            return Ok(sim.finish(StoreOutcome::NotFound, None));
        }
    };
    let spec = ImageSpec::new(pool, image);
    let outcome = delete_image(&mut sim, &spec)?;
    Ok(sim.finish(outcome, None))
}

fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Display for StorePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "outcome: {:?}", self.outcome)?;
        if let Some(l) = &self.location {
            writeln!(f, "location: {}", crate::escape::Escaped(l))?;
        }
        for (i, s) in self.steps.iter().enumerate() {
            match s {
                StoreStep::Rbd { op, fails: None } => writeln!(f, "  {:>2}. {op}", i + 1)?,
                StoreStep::Rbd { op, fails: Some(k) } => writeln!(f, "  {:>2}. {op}  -- fails ({k})", i + 1)?,
                StoreStep::Write { offset, bytes, chunks, skipped } => writeln!(
                    f,
                    "  {:>2}. write {bytes} bytes at {offset} ({chunks} chunks, {skipped} zero chunks skipped)",
                    i + 1
                )?,
            }
        }
        for n in &self.notes {
            writeln!(f, "  - {}", crate::escape::Escaped(n))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbd::RbdImage;

    const FSID: &str = "7d5ab9c0-5e1b-4a2b-9c3d-0000000000f5";

    fn cluster() -> Cluster {
        let mut c = Cluster::new(FSID);
        c.add_pool("images");
        c.add_pool("volumes");
        c
    }

    fn ops(p: &StorePlan) -> Vec<&'static str> {
        p.steps
            .iter()
            .map(|s| match s {
                StoreStep::Rbd { op, .. } => op.name(),
                StoreStep::Write { .. } => "write",
            })
            .collect()
    }

    #[test]
    fn upload_creates_writes_snapshots_and_protects() {
        let p = plan_upload(cluster(), &StoreConfig::default(), &Upload::sized("img", 20 << 20)).unwrap();
        assert_eq!(ops(&p), ["create", "write", "create_snap", "protect_snap"]);
        assert_eq!(p.steps[1], StoreStep::Write { offset: 0, bytes: 20 << 20, chunks: 3, skipped: 0 });
        match &p.steps[0] {
            StoreStep::Rbd { op: RbdOp::Create { order, .. }, .. } => assert_eq!(*order, 23, "8 MiB chunks"),
            other => panic!("{other:?}"),
        }
        assert_eq!(p.location.as_deref(), Some(format!("rbd://{FSID}/images/img/snap").as_str()));
    }

    #[test]
    fn upload_of_unknown_size_resizes_on_write_and_trims() {
        let up = Upload { image_id: "img".into(), declared_size: 0, data_size: 40 << 20, zero_chunks: vec![] };
        let p = plan_upload(cluster(), &StoreConfig::default(), &up).unwrap();
        let resizes: Vec<u64> = p
            .steps
            .iter()
            .filter_map(|s| match s {
                StoreStep::Rbd { op: RbdOp::Resize { size, .. }, .. } => Some(size.0),
                _ => None,
            })
            .collect();
        assert_eq!(resizes, [16 << 20, 48 << 20, 40 << 20], "doubling steps, then the trim");
        assert_eq!(p.outcome, StoreOutcome::Stored);
    }

    #[test]
    fn size_mismatch_deletes_what_was_created() {
        let mut up = Upload::sized("img", 10 << 20);
        up.data_size = 20 << 20;
        let p = plan_upload(cluster(), &StoreConfig::default(), &up).unwrap();
        assert_eq!(p.outcome, StoreOutcome::Invalid { expected: 10 << 20, actual: 16 << 20 });
        assert!(!p.cluster_after.exists(&ImageSpec::new("images", "img")).unwrap());
        up.data_size = 5 << 20;
        let p = plan_upload(cluster(), &StoreConfig::default(), &up).unwrap();
        assert_eq!(p.outcome, StoreOutcome::Invalid { expected: 10 << 20, actual: 5 << 20 });
        assert!(!p.cluster_after.exists(&ImageSpec::new("images", "img")).unwrap());
    }

    #[test]
    fn duplicate_and_thin_provisioning() {
        let mut c = cluster();
        c.put_image(&ImageSpec::new("images", "img"), RbdImage::new(Bytes(1)));
        assert_eq!(
            plan_upload(c.clone(), &StoreConfig::default(), &Upload::sized("img", 1)).unwrap().outcome,
            StoreOutcome::Duplicate
        );
        let cfg = StoreConfig { thin_provisioning: true, ..StoreConfig::default() };
        let up = Upload { image_id: "t".into(), declared_size: 24 << 20, data_size: 24 << 20, zero_chunks: vec![1] };
        let p = plan_upload(cluster(), &cfg, &up).unwrap();
        assert_eq!(p.steps[1], StoreStep::Write { offset: 0, bytes: 24 << 20, chunks: 2, skipped: 1 });
    }

    #[test]
    fn fsid_unknown_gives_the_one_part_location() {
        let cfg = StoreConfig { fsid_known: false, ..StoreConfig::default() };
        let p = plan_upload(cluster(), &cfg, &Upload::sized("img", 1)).unwrap();
        assert_eq!(p.location.as_deref(), Some("rbd://img"));
        assert!(crate::location::RbdLocation::parse("rbd://img").is_err(), "Cinder cannot clone it");
    }

    #[test]
    fn delete_refuses_while_cinder_clones_read_the_snapshot() {
        let up = plan_upload(cluster(), &StoreConfig::default(), &Upload::sized("img", 1 << 20)).unwrap();
        let mut c = up.cluster_after.clone();
        c.apply(&RbdOp::Clone {
            parent: ImageSpec::new("images", "img").snap(SNAPSHOT_NAME),
            child: ImageSpec::new("volumes", "volume-1"),
            // Cinder's `_clone` order: at least the image's 8 MiB stripe unit
            // (librbd refuses a smaller object size).
            order: 23,
            features: 1,
        })
        .unwrap();
        let d = plan_delete(c.clone(), &StoreConfig::default(), up.location.as_deref().unwrap()).unwrap();
        assert!(matches!(d.outcome, StoreOutcome::InUse { ref why } if why.contains("volumes/volume-1")), "{d}");
        assert_eq!(ops(&d), ["unprotect_snap"]);
        // Flatten the clone and the delete goes through.
        c.apply(&RbdOp::Flatten { image: ImageSpec::new("volumes", "volume-1") }).unwrap();
        let d = plan_delete(c.clone(), &StoreConfig::default(), up.location.as_deref().unwrap()).unwrap();
        assert_eq!(d.outcome, StoreOutcome::Deleted);
        assert_eq!(ops(&d), ["unprotect_snap", "remove_snap", "remove"]);
    }

    #[test]
    fn delete_of_missing_or_watched_images() {
        let d = plan_delete(cluster(), &StoreConfig::default(), &format!("rbd://{FSID}/images/nope/snap")).unwrap();
        assert_eq!(d.outcome, StoreOutcome::NotFound);
        let mut c = cluster();
        c.put_image(&ImageSpec::new("images", "w"), RbdImage { watchers: 1, ..RbdImage::new(Bytes(1)) });
        let d = plan_delete(c.clone(), &StoreConfig::default(), "rbd://w").unwrap();
        assert!(matches!(d.outcome, StoreOutcome::InUse { .. }));
        assert_eq!(ops(&d), ["unprotect_snap", "remove"], "missing snapshot tolerated, remove busy");
    }

    #[test]
    fn delete_with_other_snapshots_goes_to_the_trash() {
        let mut c = cluster();
        let mut img = RbdImage::new(Bytes(1));
        img.snaps.push(crate::rbd::RbdSnapshot {
            name: "other".into(),
            size: Bytes(1),
            protected: false,
            parent: None,
            hidden: false,
        });
        c.put_image(&ImageSpec::new("images", "x"), img);
        let d = plan_delete(c.clone(), &StoreConfig::default(), "rbd://x").unwrap();
        assert_eq!(d.outcome, StoreOutcome::Deleted);
        assert_eq!(ops(&d), ["unprotect_snap", "remove", "trash_move"]);
    }

    #[test]
    fn quoting_matches_python() {
        assert_eq!(quote_all("a/b c"), "a%2Fb%20c");
        assert_eq!(quote_all("é"), "%C3%A9");
        assert_eq!(unquote("a%2Fb"), "a/b");
    }

    /// Answers the planner's needs from a complete cluster, as a driver
    /// would, until it decides.
    fn gathered(request: StoreRequest, cluster: &Cluster) -> (StorePlan, usize) {
        let mut planner = StorePlanner::new(request, StoreConfig::default());
        for round in 0..20 {
            match planner.decide().expect("plans") {
                Planning::Done(plan) => return (*plan, round),
                Planning::NeedFacts(needs) => {
                    let answers = needs
                        .into_iter()
                        .map(|need| match need {
                            Need::Cluster => Fact::Cluster {
                                cluster: Ok(crate::facts::ClusterInfo {
                                    fsid: cluster.fsid.clone(),
                                    clone_v2: cluster.clone_v2,
                                    default_features: cluster.default_features,
                                    semantics: cluster.semantics,
                                }),
                            },
                            Need::Pool { pool } => {
                                let exists = cluster.check_pool(&pool).is_ok();
                                Fact::Pool { pool, exists }
                            }
                            Need::RbdImage { image } => {
                                let info = cluster.image_info(&image).expect("pool exists").map(Box::new);
                                Fact::RbdImage { image, info }
                            }
                            other => panic!("the store does not read {other}"),
                        })
                        .collect();
                    planner.learn_all(answers);
                }
            }
        }
        panic!("no decision after 20 rounds")
    }

    #[test]
    fn the_planner_asks_for_what_it_reads_and_decides_as_on_the_whole_cluster() {
        let mut c = cluster();
        let up = plan_upload(c.clone(), &StoreConfig::default(), &Upload::sized("img", 1 << 20)).unwrap();
        c = up.cluster_after.clone();
        let (gathered_up, rounds) = gathered(StoreRequest::Upload(Upload::sized("img2", 1 << 20)), &c);
        assert_eq!(gathered_up.outcome, StoreOutcome::Stored);
        assert!(rounds >= 2, "the cluster, then the pool and image");
        let location = up.location.clone().expect("stored");
        let (gathered_del, _) = gathered(StoreRequest::Delete { location: location.clone() }, &c);
        let whole = plan_delete(c.clone(), &StoreConfig::default(), &location).unwrap();
        assert_eq!(gathered_del.steps, whole.steps);
        assert_eq!(gathered_del.outcome, whole.outcome);
        // Nothing known: the cluster first.
        let first = plan_store(&StoreRequest::Delete { location }, &StoreConfig::default(), &Facts::new()).unwrap();
        assert_eq!(first.needs(), [Need::Cluster]);
    }
}
