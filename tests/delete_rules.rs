//! Delete planning: the Cinder 29 rules (the conformance vectors cover them
//! call by call; here the invariants) and the Liberty rules of seed 002.

mod common;

use common::cases;

use proptest::prelude::*;

use cinder_flow::config::Config;
use cinder_flow::memory::{MemoryCluster, MemoryImageService, MemoryVolumeDb};
use cinder_flow::model::{Bytes, GiB, Timestamp, Volume, VolumeStatus, GIB};
use cinder_flow::plan::{ErrorClass, Expect, Operation, Outcome, Plan};
use cinder_flow::planner::{DeleteRules, Policy, Request};
use cinder_flow::rbd::{Cluster, ImageSpec, RbdImage, RbdOp, RbdSnapshot, SnapSpec};
use cinder_flow::shell::{self, Backends, ExecOptions};

const ID: &str = "11111111-1111-4111-8111-111111111111";
const NAME: &str = "volume-11111111-1111-4111-8111-111111111111";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime")
}

fn snap(name: &str, protected: bool) -> RbdSnapshot {
    RbdSnapshot { name: name.into(), size: Bytes(GIB), protected, parent: None, hidden: false }
}

struct World {
    driver: MemoryCluster,
    images: MemoryImageService,
    db: MemoryVolumeDb,
    config: Config,
}

fn world(cluster: Cluster) -> World {
    let db = MemoryVolumeDb::new();
    let mut v = Volume::new(ID, "project-1", GiB(1)).on_host("hostA@ceph#ceph");
    v.status = VolumeStatus::Deleting;
    db.add_volume(v);
    let mut config = Config::default();
    config.backend.rbd_pool = "volumes".into();
    World { driver: MemoryCluster::new(cluster), images: MemoryImageService::new(), db, config }
}

fn run(w: &World, rules: DeleteRules) -> (Plan, Result<(), String>) {
    let mut policy = Policy::faithful();
    policy.delete_rules = rules;
    let backends = Backends { driver: &w.driver, images: &w.images, db: &w.db };
    let request = Request { operation: Operation::DeleteVolume, volume_id: ID.into(), now: Timestamp::EPOCH };
    let (plan, _) = rt().block_on(shell::plan(backends, &request, &w.config, &policy)).expect("plan");
    let exec =
        rt().block_on(shell::execute(&plan, backends, &ExecOptions::default())).map(|_| ()).map_err(|d| d.to_string());
    (plan, exec)
}

fn ops(p: &Plan) -> Vec<String> {
    p.rbd_ops()
        .map(|(op, e)| match e {
            Expect::Ok => op.name().to_owned(),
            Expect::Fail(k) => format!("{}!{}", op.name(), k.upstream_class()),
        })
        .collect()
}

fn base() -> Cluster {
    let mut c = Cluster::new("fsid");
    c.add_pool("volumes");
    c
}

fn with_volume(mut c: Cluster, img: RbdImage) -> Cluster {
    c.put_image(&ImageSpec::new("volumes", NAME), img);
    c
}

#[test]
fn liberty_refuses_when_the_first_snapshot_is_not_a_clone_snapshot() {
    let mut img = RbdImage::new(Bytes(GIB));
    img.snaps = vec![snap("snapshot-1", true), snap("volume-x.clone_snap", true)];
    let w = world(with_volume(base(), img));
    let (plan, exec) = run(&w, DeleteRules::Liberty);
    assert!(matches!(plan.outcome, Outcome::Failure { error: ErrorClass::VolumeIsBusy, .. }));
    assert!(ops(&plan).is_empty(), "no call before refusing");
    assert!(exec.is_ok());
    // Cinder 29 trashes the same volume instead.
    let w = world(with_volume(base(), {
        let mut img = RbdImage::new(Bytes(GIB));
        img.snaps = vec![snap("snapshot-1", true), snap("volume-x.clone_snap", true)];
        img
    }));
    let (plan, _) = run(&w, DeleteRules::Upstream);
    assert_eq!(ops(&plan), ["rename"], "a clone snapshot anywhere means rename upstream");
}

#[test]
fn liberty_renames_when_the_first_snapshot_is_a_clone_snapshot() {
    let mut img = RbdImage::new(Bytes(GIB));
    img.snaps = vec![snap("volume-x.clone_snap", true), snap("snapshot-1", true)];
    let w = world(with_volume(base(), img));
    let (plan, _) = run(&w, DeleteRules::Liberty);
    assert_eq!(plan.outcome, Outcome::Success);
    assert_eq!(ops(&plan), ["rename"]);
}

#[test]
fn liberty_retries_busy_three_times() {
    let w = world(with_volume(base(), RbdImage { watchers: 1, ..RbdImage::new(Bytes(GIB)) }));
    let (plan, _) = run(&w, DeleteRules::Liberty);
    assert_eq!(ops(&plan), ["remove!ImageBusy", "remove!ImageBusy", "remove!ImageBusy"]);
    assert!(matches!(plan.outcome, Outcome::Failure { error: ErrorClass::VolumeIsBusy, .. }));
}

/// A clone of a `.deleted` parent whose only snapshot is the clone's.
fn clone_of_deleted_parent() -> Cluster {
    let parent = "volume-44444444-4444-4444-8444-444444444444.deleted";
    let mut c = base();
    let mut p = RbdImage::new(Bytes(GIB));
    p.snaps = vec![snap(&format!("{NAME}.clone_snap"), true)];
    c.put_image(&ImageSpec::new("volumes", parent), p);
    let mut v = RbdImage::new(Bytes(GIB));
    v.parent =
        Some(SnapSpec { pool: "volumes".into(), image: parent.into(), snap: format!("{NAME}.clone_snap").into() });
    c.put_image(&ImageSpec::new("volumes", NAME), v);
    c
}

#[test]
fn liberty_cleans_parents_after_every_removal_but_upstream_does_not() {
    let w = world(clone_of_deleted_parent());
    let (plan, exec) = run(&w, DeleteRules::Liberty);
    assert_eq!(ops(&plan), ["remove", "unprotect_snap", "remove_snap", "remove"]);
    exec.unwrap();
    assert_eq!(w.driver.snapshot().images("volumes").count(), 0, "the .deleted parent is gone too");

    // Cinder 29: the fast path returns before any parent cleanup (Q11).
    let w = world(clone_of_deleted_parent());
    let (plan, _) = run(&w, DeleteRules::Upstream);
    assert_eq!(ops(&plan), ["remove"]);
    assert_eq!(w.driver.snapshot().images("volumes").count(), 1, "the .deleted parent stays");
}

#[test]
fn a_missing_image_is_deleted_already() {
    for rules in [DeleteRules::Upstream, DeleteRules::Liberty] {
        let w = world(base());
        let (plan, _) = run(&w, rules);
        assert_eq!(plan.outcome, Outcome::Success);
        assert!(ops(&plan).is_empty());
    }
}

// ------------------------------------------------------------------ invariants

#[derive(Clone, Debug)]
struct Shape {
    user_snaps: usize,
    backup_snaps: usize,
    clone_snap: bool,
    children: usize,
    watchers: u32,
    deleted_parent: bool,
    deferred: bool,
    retries: i64,
    liberty: bool,
}

fn shape() -> impl Strategy<Value = Shape> {
    (0usize..3, 0usize..2, any::<bool>(), 0usize..3, 0u32..2, any::<bool>(), any::<bool>(), 1i64..4, any::<bool>())
        .prop_map(
            |(user_snaps, backup_snaps, clone_snap, children, watchers, deleted_parent, deferred, retries, liberty)| {
                Shape {
                    user_snaps,
                    backup_snaps,
                    clone_snap,
                    children,
                    watchers,
                    deleted_parent,
                    deferred,
                    retries,
                    liberty,
                }
            },
        )
}

fn build(s: &Shape) -> World {
    let mut c =
        if s.deleted_parent { clone_of_deleted_parent() } else { with_volume(base(), RbdImage::new(Bytes(GIB))) };
    let vol = ImageSpec::new("volumes", NAME);
    let mut img = c.open(&vol, None).unwrap().clone();
    for i in 0..s.backup_snaps {
        img.snaps.push(snap(&format!("backup.8888-{i}.snap.1700000000.0"), false));
    }
    if s.clone_snap {
        img.snaps.push(snap("volume-77777777-7777-4777-8777-777777777777.clone_snap", true));
    }
    for i in 0..s.user_snaps {
        img.snaps.push(snap(&format!("snapshot-{i}"), true));
    }
    img.watchers = s.watchers;
    let snaps: Vec<String> = img.snaps.iter().filter(|x| x.protected).map(|x| x.name.to_string()).collect();
    c.put_image(&vol, img);
    // Children of the protected snapshots.
    for i in 0..s.children {
        if let Some(sn) = snaps.get(i % snaps.len().max(1)) {
            let mut child = RbdImage::new(Bytes(GIB));
            child.parent = Some(vol.snap(sn.clone()));
            c.put_image(&ImageSpec::new("volumes", format!("volume-child-{i}")), child);
        }
    }
    let mut w = world(c);
    w.config.backend.enable_deferred_deletion = s.deferred;
    w.config.backend.rados_connection_retries = s.retries;
    w
}

fn has_children(c: &Cluster, spec: &ImageSpec) -> bool {
    c.image_info(spec).ok().flatten().is_some_and(|i| !i.children.is_empty())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), ..ProptestConfig::default() })]

    /// A delete plan never removes an image that still has children, and
    /// executing it on the simulated cluster does exactly what it planned.
    #[test]
    fn deletes_never_remove_an_image_with_children(s in shape()) {
        let w = build(&s);
        let before = w.driver.snapshot();
        let rules = if s.liberty { DeleteRules::Liberty } else { DeleteRules::Upstream };
        let (plan, exec) = run(&w, rules);
        prop_assert!(exec.is_ok(), "{:?}", exec);
        // Replay the plan's calls on a copy and check each successful remove.
        let mut c = before;
        for (op, expect) in plan.rbd_ops() {
            if let (RbdOp::Remove { image }, Expect::Ok) = (op, expect) {
                prop_assert!(!has_children(&c, image), "removed {} with children", image);
            }
            let r = c.apply(op);
            prop_assert_eq!(r.is_ok(), expect == Expect::Ok, "{} expected {:?}", op, expect);
        }
        prop_assert_eq!(c, w.driver.snapshot());
    }
}
