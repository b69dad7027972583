//! The librbd driver against a real Ceph cluster (feature `rbd`, cluster
//! named by `CEPH_CONF`; `bash .ci/ceph.sh start` starts a throwaway one).
//! Without `CEPH_CONF` every test here says it skips and passes.
//!
//! * Every create and delete conformance vector whose cluster can be built
//!   on a real cluster runs the same plan + execute path on real Ceph
//!   (through `RbdDriver`, in an RBD namespace of its own) and on the
//!   in-memory cluster: the rbd calls, their results and the final cluster
//!   state must be the same. The cluster is built as client.admin; the plan
//!   runs as a cephx user without caps for the pools whose images the
//!   vector makes unreadable (`readable: false`), so opening them fails
//!   with a permission error on real Ceph too.
//! * librbd's error kinds for the error cases the planner relies on match
//!   the simulation's.
//! * A plan whose step fails leaves the real cluster as it was.
//! * Sixteen concurrent clones from one image volume all succeed.
#![cfg(feature = "rbd")]

#[path = "rbd_real/harness.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use cinder_flow::conformance::{build_world, read_file, vector_files, Vector, NOW};
use cinder_flow::error::BackendErrorKind;
use cinder_flow::librbd::{RbdConfig, RbdDriver};
use cinder_flow::memory::JournalEntry;
use cinder_flow::model::{Bytes, Timestamp};
use cinder_flow::plan::{Operation, Plan};
use cinder_flow::planner::{Policy, Request};
use cinder_flow::ports::Driver;
use cinder_flow::rbd::{Cluster, ImageSpec, RbdImage, RbdOp, Semantics};
use cinder_flow::shell::{self, Backends, ExecOptions};

use harness::{
    ceph_conf, fresh_namespace, materialise, memory_state, observe_readability, planning_config, real_state,
    unmaterialisable, Call, Mapped, State,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().expect("runtime")
}

fn request_of(v: &Vector) -> Option<Request> {
    match cinder_flow::conformance::request_of(v) {
        Ok(cinder_flow::conformance::VectorRequest::Manager(request)) => Some(request),
        _ => None,
    }
}

/// What one run produced, for comparison.
#[derive(Debug, PartialEq)]
struct Run {
    plan: Plan,
    calls: Vec<Call>,
    /// `Ok(outcome)` or the divergence, as text.
    exec: Result<String, String>,
    /// The target volume's status afterwards.
    status: Option<String>,
}

/// The vector on the in-memory cluster, with librbd's error rules
/// ([`Semantics::Librbd`], what `RbdDriver` reports), so that both sides
/// plan and answer alike.
async fn run_memory(v: &Vector) -> (Run, State) {
    let world = build_world(v).expect("world");
    world.cluster.update(|c| c.semantics = Semantics::Librbd);
    let request = request_of(v).expect("request");
    let backends = world.backends();
    let (plan, _) = shell::plan(backends, &request, &world.config, &Policy::faithful()).await.expect("plan");
    let exec = shell::execute(&plan, backends, &ExecOptions::default()).await;
    let calls = world
        .journal
        .entries()
        .into_iter()
        .filter_map(|e| match e {
            JournalEntry::Rbd { op, result } => Some((op, result)),
            _ => None,
        })
        .collect();
    let status = world.db.get_volume(&request.volume_id).map(|v| v.status.as_str().to_owned());
    let exec = exec.map(|r| format!("{:?}", r.outcome)).map_err(|d| d.to_string());
    (Run { plan, calls, exec, status }, memory_state(&world.cluster.snapshot()))
}

async fn run_real(conf: &Path, v: &Vector) -> Result<(Run, Option<State>), String> {
    let ns = fresh_namespace("v");
    let driver = RbdDriver::new(harness::vector_config(conf, v, &ns));
    let holder = RbdDriver::new(RbdConfig::with_conf(conf).in_namespace(ns.clone()));
    let watches = if v.cluster.reachable {
        materialise(&driver, &holder, v).await.map_err(|e| format!("materialising: {e}"))?
    } else {
        Vec::new()
    };
    let world = build_world(v).map_err(|e| e.to_string())?;
    let planner = RbdDriver::new(planning_config(conf, v, &ns).map_err(|e| format!("planning client: {e}"))?);
    let mut mapped = Mapped::new(planner.clone(), v.cluster.pools.keys().cloned());
    mapped.fsid = Some(v.cluster.fsid.clone());
    mapped.capabilities = world.cluster.capabilities().await.expect("memory");
    mapped.conversion_free_bytes = v.env.image_conversion_free_bytes;
    mapped.default_features_unset = v.cluster.rbd_default_features.is_none();
    let backends = Backends { driver: &mapped, images: &world.images, db: &world.db };
    let request = request_of(v).expect("request");
    let (plan, _) = shell::plan(backends, &request, &world.config, &Policy::faithful())
        .await
        .map_err(|e| format!("planning on real Ceph: {e}"))?;
    let exec = shell::execute(&plan, backends, &ExecOptions::default()).await;
    let status = world.db.get_volume(&request.volume_id).map(|v| v.status.as_str().to_owned());
    let exec = exec.map(|r| format!("{:?}", r.outcome)).map_err(|d| d.to_string());
    let state = if v.cluster.reachable {
        let mut state =
            real_state(&driver, &v.cluster.pools.keys().cloned().collect()).await.map_err(|e| e.to_string())?;
        observe_readability(&mut state, &planner).await.map_err(|e| e.to_string())?;
        Some(state)
    } else {
        None
    };
    drop(watches);
    Ok((Run { plan, calls: mapped.journal(), exec, status }, state))
}

fn conformance_vectors() -> Vec<Vector> {
    let mut out = Vec::new();
    for dir in ["tests/vectors", "tests/vectors/oracle"] {
        for file in vector_files(Path::new(dir)).expect("vector directory") {
            for v in read_file(&file).expect("vector file") {
                if request_of(&v).is_some() {
                    out.push(v);
                }
            }
        }
    }
    out
}

fn diff_states(memory: &State, real: &State) -> Vec<String> {
    let mut out = Vec::new();
    let keys: BTreeSet<_> = memory.keys().chain(real.keys()).collect();
    for k in keys {
        let what = format!("{}{}/{}", if k.1 { "trash:" } else { "" }, k.0, k.2);
        match (memory.get(k), real.get(k)) {
            (Some(m), Some(r)) if m != r => out.push(format!("{what}: memory {m:?}\n      real   {r:?}")),
            (Some(_), None) => out.push(format!("{what}: only in memory")),
            (None, Some(_)) => out.push(format!("{what}: only on real Ceph")),
            _ => {}
        }
    }
    out
}

fn summary_of(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .map(|(op, r)| match r {
            Ok(()) => op.to_string(),
            Err(k) => format!("{op} -> {k}"),
        })
        .collect()
}

#[test]
fn vectors_do_the_same_on_real_ceph_as_in_memory() {
    let Some(conf) = ceph_conf("vectors_do_the_same_on_real_ceph_as_in_memory") else { return };
    let vectors = conformance_vectors();
    let mut skipped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut todo = Vec::new();
    for v in vectors {
        match unmaterialisable(&v) {
            Some((reason, detail)) => skipped.entry(reason).or_default().push(format!("{} ({detail})", v.name)),
            None => todo.push(v),
        }
    }
    let only = std::env::var("RBD_VECTORS").ok();
    if let Some(only) = &only {
        todo.retain(|v| only.split(',').any(|o| v.name.contains(o.trim())));
    }
    let rt = runtime();
    let conf = Arc::new(conf);
    let mut failures = rt.block_on(async {
        let parallel = std::env::var("RBD_PARALLEL").ok().and_then(|p| p.parse().ok()).unwrap_or(6);
        let limit = Arc::new(tokio::sync::Semaphore::new(parallel));
        let mut tasks = tokio::task::JoinSet::new();
        for v in todo.iter().cloned() {
            let (conf, limit) = (Arc::clone(&conf), Arc::clone(&limit));
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await.expect("semaphore");
                let (mem, mem_state) = run_memory(&v).await;
                let real = run_real(&conf, &v).await;
                (v.name.clone(), mem, mem_state, real)
            });
        }
        let mut failures = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (name, mem, mem_state, real) = joined.expect("task");
            let mut diffs = Vec::new();
            match real {
                Err(e) => diffs.push(e),
                Ok((real, real_state)) => {
                    if real.plan.steps != mem.plan.steps || real.plan.outcome != mem.plan.outcome {
                        diffs.push(format!(
                            "plans differ (facts differ):\n   memory steps {:?}\n   real   steps {:?}",
                            mem.plan.steps.iter().map(|s| s.action.to_string()).collect::<Vec<_>>(),
                            real.plan.steps.iter().map(|s| s.action.to_string()).collect::<Vec<_>>()
                        ));
                    }
                    if real.calls != mem.calls {
                        diffs.push(format!(
                            "rbd calls differ:\n   memory {:?}\n   real   {:?}",
                            summary_of(&mem.calls),
                            summary_of(&real.calls)
                        ));
                    }
                    if real.exec != mem.exec {
                        diffs.push(format!("execution differs:\n   memory {:?}\n   real   {:?}", mem.exec, real.exec));
                    }
                    if real.status != mem.status {
                        diffs.push(format!("volume status: memory {:?}, real {:?}", mem.status, real.status));
                    }
                    if let Some(real_state) = real_state {
                        for d in diff_states(&mem_state, &real_state) {
                            diffs.push(format!("state {d}"));
                        }
                    }
                }
            }
            let known = KNOWN_DIVERGENT.iter().find(|(n, _)| *n == name);
            match (known, diffs.is_empty()) {
                (None, false) => failures.push(format!("{name}:\n  {}", diffs.join("\n  "))),
                (Some((_, why)), true) => failures.push(format!(
                    "{name}: listed in KNOWN_DIVERGENT ({why}) but real Ceph and the simulation agree now: \
                     remove it from the list"
                )),
                _ => {}
            }
        }
        failures
    });
    let skipped_n: usize = skipped.values().map(Vec::len).sum();
    eprintln!(
        "real Ceph vs in-memory: {} vectors compared ({} known divergences from librbd), \
         {skipped_n} skipped:",
        todo.len(),
        KNOWN_DIVERGENT.len()
    );
    for (reason, names) in &skipped {
        eprintln!("  {} skipped: {reason} (e.g. {})", names.len(), names[0]);
    }
    failures.sort();
    assert!(failures.is_empty(), "{} of {} vectors differ:\n{}", failures.len(), todo.len(), failures.join("\n"));
    if only.is_none() {
        assert!(todo.len() > 500, "too few vectors compared: {}", todo.len());
        // Every create and delete vector is built on the real cluster; a new
        // one that cannot be says why here.
        assert!(skipped.is_empty(), "vectors skipped: {skipped:#?}");
    }
}

/// Vectors where real librbd 16.2 and the simulation with
/// [`Semantics::Librbd`] still differ (none now: the rules where
/// docs/FORMAT.md §9.1 and librbd disagree are modelled by
/// `Semantics::Librbd`). An entry must still differ, or the test fails.
const KNOWN_DIVERGENT: [(&str, &str); 0] = [];

/// One librbd call on both backends.
async fn both(
    real: &RbdDriver,
    memory: &cinder_flow::memory::MemoryCluster,
    op: RbdOp,
) -> (Result<(), BackendErrorKind>, Result<(), BackendErrorKind>) {
    let r = real.apply(&op, None).await.map_err(|e| e.kind);
    let m = memory.apply(&op, None).await.map_err(|e| e.kind);
    (r, m)
}

#[test]
fn error_kinds_match_the_simulation() {
    let Some(conf) = ceph_conf("error_kinds_match_the_simulation") else { return };
    runtime().block_on(async {
        use BackendErrorKind::*;
        let ns = fresh_namespace("errors");
        let real =
            RbdDriver::new(RbdConfig::with_conf(&conf).in_namespace(ns.clone()).set("rbd_default_clone_format", "1"));
        let holder = RbdDriver::new(RbdConfig::with_conf(&conf).in_namespace(ns));
        for pool in ["volumes", "images"] {
            real.create_namespace(pool).await.expect("namespace");
        }
        // An image another client holds open (one watcher).
        let busy = ImageSpec::new("volumes", "busy");
        let mut c = Cluster::new("fsid");
        c.semantics = Semantics::Librbd;
        c.add_pool("volumes");
        c.add_pool("images");
        c.put_image(&busy, RbdImage { watchers: 1, ..RbdImage::new(Bytes(1 << 30)) });
        let memory = cinder_flow::memory::MemoryCluster::new(c);
        real.apply(&RbdOp::Create { image: busy.clone(), size: Bytes(1 << 30), order: 22, features: 1 }, None)
            .await
            .expect("create");
        let watch = holder.watch(&busy).expect("watch");
        let img = ImageSpec::new("images", "img");
        let vol = |n: &str| ImageSpec::new("volumes", n);
        let snap = img.snap("snap");
        let create = |image: ImageSpec| RbdOp::Create { image, size: Bytes(1 << 30), order: 22, features: 1 };
        let clone = |child: &str| RbdOp::Clone { parent: snap.clone(), child: vol(child), order: 22, features: 1 };
        let steps: Vec<(&str, RbdOp, Result<(), BackendErrorKind>)> = vec![
            ("create", create(img.clone()), Ok(())),
            ("create existing", create(img.clone()), Err(AlreadyExists)),
            ("create in a missing pool", create(ImageSpec::new("cf-absent", "x")), Err(PoolNotFound)),
            ("snapshot", RbdOp::CreateSnap { snap: snap.clone() }, Ok(())),
            ("snapshot again", RbdOp::CreateSnap { snap: snap.clone() }, Err(AlreadyExists)),
            ("clone from an unprotected snapshot (clone v1)", clone("c1"), Err(InvalidArgument)),
            ("unprotect an unprotected snapshot", RbdOp::UnprotectSnap { snap: snap.clone() }, Err(InvalidArgument)),
            ("protect", RbdOp::ProtectSnap { snap: snap.clone() }, Ok(())),
            ("protect twice", RbdOp::ProtectSnap { snap: snap.clone() }, Err(Busy)),
            ("clone", clone("c1"), Ok(())),
            ("clone onto an existing image", clone("c1"), Err(AlreadyExists)),
            (
                "clone from a missing snapshot",
                RbdOp::Clone { parent: img.snap("nope"), child: vol("c2"), order: 22, features: 1 },
                Err(NotFound),
            ),
            ("unprotect with children", RbdOp::UnprotectSnap { snap: snap.clone() }, Err(Busy)),
            ("remove a protected snapshot", RbdOp::RemoveSnap { snap: snap.clone() }, Err(Busy)),
            ("remove with snapshots", RbdOp::Remove { image: img.clone() }, Err(HasSnapshots)),
            ("flatten a non-clone", RbdOp::Flatten { image: img.clone() }, Err(InvalidArgument)),
            ("copy onto an existing image", RbdOp::Copy { src: img.clone(), dst: vol("c1") }, Err(AlreadyExists)),
            ("copy", RbdOp::Copy { src: vol("c1"), dst: vol("copy") }, Ok(())),
            (
                "rename onto an existing image",
                RbdOp::Rename { image: vol("copy"), new_name: "c1".into() },
                Err(AlreadyExists),
            ),
            ("rename a missing image", RbdOp::Rename { image: vol("nope"), new_name: "x".into() }, Err(NotFound)),
            ("remove a missing image", RbdOp::Remove { image: vol("nope") }, Err(NotFound)),
            ("resize", RbdOp::Resize { image: vol("c1"), size: Bytes(2 << 30) }, Ok(())),
            ("flatten", RbdOp::Flatten { image: vol("c1") }, Ok(())),
            ("unprotect", RbdOp::UnprotectSnap { snap: snap.clone() }, Ok(())),
            ("remove the snapshot", RbdOp::RemoveSnap { snap: snap.clone() }, Ok(())),
            ("remove a missing snapshot", RbdOp::RemoveSnap { snap: snap.clone() }, Err(NotFound)),
            ("trash", RbdOp::TrashMove { image: vol("copy"), delay: 0 }, Ok(())),
            ("purge from the trash", RbdOp::TrashRemove { image: vol("copy") }, Ok(())),
            ("remove", RbdOp::Remove { image: img.clone() }, Ok(())),
        ];
        let mut wrong = Vec::new();
        for (what, op, want) in steps {
            let (r, m) = both(&real, &memory, op).await;
            if r != want || m != want {
                wrong.push(format!("{what}: real {r:?}, memory {m:?}, expected {want:?}"));
            }
        }
        let (r, m) = both(&real, &memory, RbdOp::Remove { image: busy.clone() }).await;
        if r != Err(Busy) || m != Err(Busy) {
            wrong.push(format!("remove with watchers: real {r:?}, memory {m:?}"));
        }
        let info = real.image_info(&busy).await.expect("stat").expect("exists");
        assert_eq!(info.image.watchers, 1, "one watcher");
        // Where docs/FORMAT.md §9.1 and librbd 16.2 differ, `Semantics::Librbd`
        // answers like librbd: with a watcher and a snapshot, remove fails
        // for the snapshot; moving a watched image to the trash succeeds.
        let (r, m) = both(&real, &memory, RbdOp::CreateSnap { snap: busy.snap("s") }).await;
        assert_eq!((r, m), (Ok(()), Ok(())));
        let (r, m) = both(&real, &memory, RbdOp::Remove { image: busy.clone() }).await;
        assert_eq!((r, m), (Err(HasSnapshots), Err(HasSnapshots)), "remove with a watcher and a snapshot");
        let (r, m) = both(&real, &memory, RbdOp::RemoveSnap { snap: busy.snap("s") }).await;
        assert_eq!((r, m), (Ok(()), Ok(())));
        let (r, m) = both(&real, &memory, RbdOp::TrashMove { image: busy.clone(), delay: 0 }).await;
        assert_eq!((r, m), (Ok(()), Ok(())), "trash_move with a watcher");
        drop(watch);
        assert!(wrong.is_empty(), "error kinds differ:\n{}", wrong.join("\n"));
        // The final states agree too.
        let pools: BTreeSet<String> = ["volumes", "images"].into_iter().map(str::to_owned).collect();
        let mut real_now = real_state(&real, &pools).await.expect("state");
        let mut mem_now = memory_state(&memory.snapshot());
        for s in [&mut real_now, &mut mem_now] {
            for i in s.values_mut() {
                i.watchers = 0;
            }
        }
        assert_eq!(diff_states(&mem_now, &real_now), Vec::<String>::new());
    });
}

/// Runs `v` on real Ceph with the `fail`-th rbd call failing: the plan
/// must stop, undo what it did, and leave the cluster as materialised.
async fn injected_failure_leaves_no_trace(conf: &Path, v: &Vector, fail: usize) -> Result<(), String> {
    let ns = fresh_namespace("undo");
    let driver = RbdDriver::new(harness::vector_config(conf, v, &ns));
    let holder = RbdDriver::new(RbdConfig::with_conf(conf).in_namespace(ns.clone()));
    let watches = materialise(&driver, &holder, v).await.map_err(|e| format!("materialising: {e}"))?;
    let pools: BTreeSet<String> = v.cluster.pools.keys().cloned().collect();
    let before = real_state(&driver, &pools).await.map_err(|e| e.to_string())?;
    let world = build_world(v).map_err(|e| e.to_string())?;
    let planner = RbdDriver::new(planning_config(conf, v, &ns).map_err(|e| format!("planning client: {e}"))?);
    let mut mapped = Mapped::new(planner, pools.iter().cloned());
    mapped.fsid = Some(v.cluster.fsid.clone());
    mapped.capabilities = world.cluster.capabilities().await.expect("memory");
    mapped.default_features_unset = v.cluster.rbd_default_features.is_none();
    let backends = Backends { driver: &mapped, images: &world.images, db: &world.db };
    let request = request_of(v).expect("request");
    let (plan, _) =
        shell::plan(backends, &request, &world.config, &Policy::faithful()).await.map_err(|e| e.to_string())?;
    mapped.fail_call(fail, BackendErrorKind::Unavailable);
    let diverged = match shell::execute(&plan, backends, &ExecOptions::default()).await {
        Ok(_) => return Err(format!("call {fail} was injected to fail but the plan succeeded")),
        Err(d) => d,
    };
    if !diverged.fully_undone() {
        return Err(format!("not fully undone: {diverged}: {:?}", diverged.undone));
    }
    let after = real_state(&driver, &pools).await.map_err(|e| e.to_string())?;
    drop(watches);
    let d = diff_states(&before, &after);
    if d.is_empty() {
        Ok(())
    } else {
        Err(format!("failing call {fail} left traces:\n  {}", d.join("\n  ")))
    }
}

#[test]
fn a_failed_step_leaves_the_real_cluster_as_it_was() {
    let Some(conf) = ceph_conf("a_failed_step_leaves_the_real_cluster_as_it_was") else { return };
    runtime().block_on(async {
        // Successful creates whose every step can be undone, one per way of
        // building a volume; each call of each fails in turn.
        let mut picked: BTreeMap<String, (Vector, usize)> = BTreeMap::new();
        for v in conformance_vectors() {
            if unmaterialisable(&v).is_some() || v.operation == "delete_volume" || !v.cluster.reachable {
                continue;
            }
            let (mem, _) = run_memory(&v).await;
            let rbd_steps =
                mem.plan.steps.iter().filter(|s| matches!(s.action, cinder_flow::plan::Action::Rbd { .. })).count();
            let undoable = mem.plan.steps.iter().all(|s| s.undoable && s.expect == cinder_flow::plan::Expect::Ok);
            let ok = mem.exec.as_ref().is_ok_and(|o| o == "Success");
            if !(ok && undoable && rbd_steps >= 2) {
                continue;
            }
            let key = format!("{} {:?}", v.operation, mem.plan.path);
            let better = picked.get(&key).is_none_or(|(_, n)| rbd_steps > *n);
            if better {
                picked.insert(key, (v, rbd_steps));
            }
        }
        assert!(picked.len() >= 3, "too few plans to break: {:?}", picked.keys());
        let mut failures = Vec::new();
        let mut runs = 0;
        for (key, (v, n)) in &picked {
            for fail in 0..*n {
                runs += 1;
                if let Err(e) = injected_failure_leaves_no_trace(&conf, v, fail).await {
                    failures.push(format!("{key} ({}): {e}", v.name));
                }
            }
        }
        eprintln!(
            "failure injection: {runs} runs over {} plans: {:?}",
            picked.len(),
            picked.values().map(|(v, _)| &v.name).collect::<Vec<_>>()
        );
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    });
}

#[test]
fn sixteen_concurrent_clones_from_one_image_volume() {
    let Some(conf) = ceph_conf("sixteen_concurrent_clones_from_one_image_volume") else { return };
    runtime().block_on(async {
        // An image whose location is a Cinder image volume on the same
        // backend: each create clones it (create_snap, protect, clone,
        // resize), all at once.
        let file = Path::new("tests/vectors/cinder-same-host.json");
        let v = read_file(file).expect("vector").remove(0);
        let ns = fresh_namespace("c16");
        let driver = RbdDriver::new(harness::vector_config(&conf, &v, &ns));
        let holder = RbdDriver::new(RbdConfig::with_conf(conf).in_namespace(ns));
        let _watches = materialise(&driver, &holder, &v).await.expect("materialise");
        let world = Arc::new(build_world(&v).expect("world"));
        let target = world.db.get_volume(&v.volume.as_ref().expect("volume").id.clone().into()).expect("row");
        let ids: Vec<String> = (0..16).map(|n| format!("16161616-0000-4000-8000-{n:012x}")).collect();
        for id in &ids {
            let mut row = target.clone();
            row.id = id.clone().into();
            world.db.add_volume(row);
        }
        let mut mapped = Mapped::new(driver.clone(), v.cluster.pools.keys().cloned());
        mapped.fsid = Some(v.cluster.fsid.clone());
        mapped.default_features_unset = true;
        let mapped = Arc::new(mapped);
        let mut tasks = tokio::task::JoinSet::new();
        for id in ids.clone() {
            let (world, mapped) = (Arc::clone(&world), Arc::clone(&mapped));
            let image_id = v.image.as_ref().expect("image").id.clone();
            tasks.spawn(async move {
                let backends = Backends { driver: &*mapped, images: &world.images, db: &world.db };
                let request = Request {
                    operation: Operation::CreateFromImage { image_id: image_id.into() },
                    volume_id: id.clone().into(),
                    now: NOW.parse::<Timestamp>().expect("constant"),
                };
                let (plan, _) = shell::plan(backends, &request, &world.config, &Policy::faithful())
                    .await
                    .map_err(|e| e.to_string())?;
                let report =
                    shell::execute(&plan, backends, &ExecOptions::default()).await.map_err(|d| d.to_string())?;
                Ok::<_, String>((id, plan.path, format!("{:?}", report.outcome)))
            });
        }
        let mut done = Vec::new();
        while let Some(r) = tasks.join_next().await {
            let (id, path, outcome) = r.expect("task").expect("plan and execute");
            assert_eq!(outcome, "Success", "{id}");
            assert_eq!(path.map(|p| p.name()), Some("image_volume_clone"), "{id}");
            done.push(id);
        }
        assert_eq!(done.len(), 16);
        // Sixteen clones, each of its own snapshot of the image volume.
        let src = ImageSpec::new("volumes", "volume-22222222-2222-4222-8222-222222222221");
        let info = driver.image_info(&src).await.expect("stat").expect("source");
        let snaps: BTreeSet<&str> = info.image.snaps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(snaps.len(), 16, "distinct snapshots: {snaps:?}");
        for id in &ids {
            let snap = format!("volume-{id}.clone_snap");
            assert!(snaps.contains(snap.as_str()), "{snap}");
            let child = ImageSpec::new("volumes", format!("volume-{id}"));
            let c = driver.image_info(&child).await.expect("stat").expect("clone exists");
            assert_eq!(c.image.parent, Some(src.snap(snap.clone())));
            assert_eq!(info.children.get(snap.as_str()), Some(&vec![child]));
        }
        let calls = mapped.journal();
        assert!(calls.iter().all(|(_, r)| r.is_ok()), "every call succeeded: {calls:?}");
    });
}

/// The driver conformance suite of the testing kit, on real Ceph: what the
/// in-memory cluster passes (tests/invariants.rs), librbd must pass too.
/// With clone format 1: librbd 16 lets a snapshot with only v2 children be
/// unprotected (v2 clones do not need protection), which docs/FORMAT.md §9.1 and
/// the planner do not expect with the default [`Semantics::Conformance`].
#[cfg(feature = "testing")]
#[test]
fn the_librbd_driver_passes_the_driver_suite() {
    let Some(conf) = ceph_conf("the_librbd_driver_passes_the_driver_suite") else { return };
    runtime().block_on(async {
        let ns = fresh_namespace("suite");
        let driver = RbdDriver::new(RbdConfig::with_conf(conf).in_namespace(ns).set("rbd_default_clone_format", "1"));
        driver.create_namespace("volumes").await.expect("namespace");
        let failures = cinder_flow::testing::driver_suite::run_all(&driver, "volumes", "suite").await;
        assert!(failures.is_empty(), "{failures:#?}");
    });
}
