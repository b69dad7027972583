//! Properties operators rely on, over generated situations:
//!
//! * plans are deterministic, and do not depend on the order in which a
//!   backend returns rows upstream does not order;
//! * no plan clones an image volume the requester may not use (the owner
//!   check of `_clone_image_volume`);
//! * with the faithful policy no image volume from another host/pool is used;
//! * `rbd_max_clone_depth <= 0` never yields a copy-on-write clone, and after
//!   a plan runs a clone chain is never deeper than the limit (for
//!   quota-counted volumes);
//! * host matching follows SQL `LIKE` (checked against a naive reference).

mod common;

use common::{cases, depth_of};

use std::collections::BTreeMap;

use proptest::prelude::*;

use cinder_flow::config::Config;
use cinder_flow::memory::{MemoryCluster, MemoryImageService, MemoryVolumeDb};
use cinder_flow::model::{Bytes, GiB, HostFilter, Image, LocationEntry, Timestamp, Volume, VolumeStatus, GIB};
use cinder_flow::plan::{CreatePath, Operation, Outcome, Plan, Source};
use cinder_flow::planner::{Policy, Request};
use cinder_flow::rbd::{Cluster, ImageSpec, RbdImage, RbdOp, RbdSnapshot, SnapSpec};
use cinder_flow::shell::{self, Backends, ExecOptions};

const FSID: &str = "7d5ab9c0-5e1b-4a2b-9c3d-0000000000f5";
const IMAGE: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const TARGET: &str = "11111111-1111-4111-8111-111111111111";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime")
}

fn vol_id(n: usize) -> String {
    format!("22222222-2222-4222-8222-{n:012}")
}

/// One image volume candidate.
#[derive(Clone, Debug)]
struct Candidate {
    host: &'static str,
    project: &'static str,
    tag: Option<&'static str>,
    created: i64,
    in_cluster: bool,
}

fn candidate() -> impl Strategy<Value = Candidate> {
    (
        prop::sample::select(vec!["hostA@ceph#ceph", "hostA@ceph#other", "hostB@ceph#ceph", "hostA@ceph"]),
        prop::sample::select(vec!["project-1", "project-2", "internal"]),
        prop::option::of(prop::sample::select(vec!["project-1", "project-2", "someone"])),
        0i64..4,
        prop::bool::weighted(0.9),
    )
        .prop_map(|(host, project, tag, created, in_cluster)| Candidate {
            host,
            project,
            tag,
            created,
            in_cluster,
        })
}

#[derive(Clone, Debug)]
struct Situation {
    candidates: Vec<Candidate>,
    image_owner: Option<&'static str>,
    requester: &'static str,
    target_host: &'static str,
    size: u64,
    reverse_rows: bool,
}

fn situation() -> impl Strategy<Value = Situation> {
    (
        prop::collection::vec(candidate(), 0..6),
        prop::option::of(prop::sample::select(vec!["project-1", "project-2"])),
        prop::sample::select(vec!["project-1", "project-2"]),
        prop::sample::select(vec!["hostA@ceph#ceph", "hostA@ceph"]),
        1u64..4,
        any::<bool>(),
    )
        .prop_map(|(candidates, image_owner, requester, target_host, size, reverse_rows)| Situation {
            candidates,
            image_owner,
            requester,
            target_host,
            size,
            reverse_rows,
        })
}

struct World {
    cluster: MemoryCluster,
    images: MemoryImageService,
    db: MemoryVolumeDb,
    config: Config,
    request: Request,
}

fn build(s: &Situation) -> World {
    let mut cluster = Cluster::new(FSID);
    cluster.add_pool("volumes");
    let db = MemoryVolumeDb::new();
    let mut urls = Vec::new();
    let order: Vec<usize> =
        if s.reverse_rows { (0..s.candidates.len()).rev().collect() } else { (0..s.candidates.len()).collect() };
    for i in order {
        let c = &s.candidates[i];
        let id = vol_id(i);
        let mut v = Volume::new(id.as_str(), c.project, GiB(1)).on_host(c.host);
        v.created_at = Timestamp::EPOCH.plus_seconds(c.created);
        if let Some(t) = c.tag {
            v.metadata.insert("image_owner".into(), t.into());
        }
        db.add_volume(v);
        if c.in_cluster {
            cluster.put_image(&ImageSpec::new("volumes", format!("volume-{id}")), RbdImage::new(Bytes(GIB)));
        }
        urls.push(LocationEntry::url(format!("cinder://{id}")));
    }
    // Glance's list order is the generated order whatever the row order.
    urls.sort_by(|a, b| a.url.cmp(&b.url));
    let mut image = Image::raw(IMAGE, "nobody", Bytes(GIB));
    image.owner = s.image_owner.map(Into::into);
    image.locations = Some(urls.into());
    let images = MemoryImageService::new();
    images.insert(image);
    let mut target = Volume::new(TARGET, s.requester, GiB(s.size)).on_host(s.target_host);
    target.status = VolumeStatus::Creating;
    db.add_volume(target);
    let mut config = Config::default();
    config.backend.rbd_pool = "volumes".into();
    config.allowed_direct_url_schemes = vec!["cinder".into()];
    let request = Request {
        operation: Operation::CreateFromImage { image_id: IMAGE.into() },
        volume_id: TARGET.into(),
        now: Timestamp::EPOCH,
    };
    World { cluster: MemoryCluster::new(cluster), images, db, config, request }
}

fn plan_of(w: &World, policy: &Policy) -> Plan {
    let backends = Backends { driver: &w.cluster, images: &w.images, db: &w.db };
    rt().block_on(shell::plan(backends, &w.request, &w.config, policy)).expect("plan").0
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    /// Same facts, same plan; and the order in which the database returns
    /// rows (upstream orders them itself) does not matter.
    #[test]
    fn plans_are_deterministic(s in situation()) {
        let a = plan_of(&build(&s), &Policy::faithful());
        let b = plan_of(&build(&s), &Policy::faithful());
        prop_assert_eq!(&a, &b);
        let mut flipped = s.clone();
        flipped.reverse_rows = !s.reverse_rows;
        let c = plan_of(&build(&flipped), &Policy::faithful());
        prop_assert_eq!(a, c);
    }

    /// No plan clones an image volume whose owner check fails, and with the
    /// faithful policy none from another host or pool.
    #[test]
    fn image_volume_clones_respect_owner_and_host(s in situation()) {
        let plan = plan_of(&build(&s), &Policy::faithful());
        if plan.path == Some(CreatePath::ImageVolumeClone) {
            let Some(Source::Volume { volume_id }) = &plan.source else { panic!("clone without a volume source") };
            let i: usize = volume_id.as_str().rsplit('-').next().unwrap().parse().unwrap();
            let c = &s.candidates[i];
            let owner_ok = s.image_owner == Some(s.requester) || s.image_owner == c.tag;
            prop_assert!(owner_ok, "cloned {:?} for {} (image owner {:?})", c, s.requester, s.image_owner);
            prop_assert!(HostFilter::new(s.target_host).matches(Some(c.host)), "cloned {:?} onto {}", c, s.target_host);
        }
    }
}

// ------------------------------------------------------------------ clone depth

/// A chain `volume-c0 <- volume-c1 <- ... <- volume-c{depth}` of Cinder clones
/// (each a child of its parent's `<child>.clone_snap`), the source being the
/// last one.
fn chain_world(depth: usize, max_depth: i64, use_quota: bool, clone_v2: bool) -> (World, String) {
    let mut cluster = Cluster::new(FSID);
    cluster.clone_v2 = clone_v2;
    cluster.add_pool("volumes");
    let db = MemoryVolumeDb::new();
    let names: Vec<String> = (0..=depth).map(|i| format!("33333333-3333-4333-8333-{i:012}")).collect();
    let mut images: BTreeMap<String, RbdImage> = BTreeMap::new();
    for (i, id) in names.iter().enumerate() {
        let mut img = RbdImage::new(Bytes(GIB));
        if i > 0 {
            let parent = format!("volume-{}", names[i - 1]);
            let snap = format!("volume-{id}.clone_snap");
            img.parent =
                Some(SnapSpec { pool: "volumes".into(), image: parent.as_str().into(), snap: snap.as_str().into() });
            images.get_mut(&parent).unwrap().snaps.push(RbdSnapshot {
                name: snap.into(),
                size: Bytes(GIB),
                protected: true,
                parent: None,
                hidden: false,
            });
        }
        images.insert(format!("volume-{id}"), img);
        db.add_volume(Volume::new(id.as_str(), "project-1", GiB(1)).on_host("hostA@ceph#ceph"));
    }
    for (name, img) in images {
        cluster.put_image(&ImageSpec::new("volumes", name), img);
    }
    let source = names[depth].clone();
    let mut target = Volume::new(TARGET, "project-1", GiB(1)).on_host("hostA@ceph#ceph");
    target.status = VolumeStatus::Creating;
    target.use_quota = use_quota;
    db.add_volume(target);
    let mut config = Config::default();
    config.backend.rbd_pool = "volumes".into();
    config.backend.rbd_max_clone_depth = max_depth;
    let request = Request {
        operation: Operation::CreateClonedVolume { source_volid: source.as_str().into() },
        volume_id: TARGET.into(),
        now: Timestamp::EPOCH,
    };
    (World { cluster: MemoryCluster::new(cluster), images: MemoryImageService::new(), db, config, request }, source)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn clone_depth_rules(depth in 0usize..7, max_depth in -2i64..6, use_quota in any::<bool>(), clone_v2 in any::<bool>()) {
        let (w, _source) = chain_world(depth, max_depth, use_quota, clone_v2);
        let plan = plan_of(&w, &Policy::faithful());
        prop_assert_eq!(&plan.outcome, &Outcome::Success);
        let clones = plan.rbd_ops().filter(|(op, _)| matches!(op, RbdOp::Clone { .. })).count();
        let copies = plan.rbd_ops().filter(|(op, _)| matches!(op, RbdOp::Copy { .. })).count();
        let flattens = plan.rbd_ops().filter(|(op, _)| matches!(op, RbdOp::Flatten { .. })).count();
        if max_depth <= 0 {
            prop_assert_eq!(clones, 0, "no copy-on-write clone when rbd_max_clone_depth <= 0");
            prop_assert_eq!(copies, 1);
        } else {
            prop_assert_eq!(clones, 1);
            let must_flatten = use_quota && depth as i64 >= max_depth;
            prop_assert_eq!(flattens, usize::from(must_flatten));
        }
        // Run it and measure the chain.
        let backends = Backends { driver: &w.cluster, images: &w.images, db: &w.db };
        rt().block_on(shell::execute(&plan, backends, &ExecOptions::default())).expect("executes as planned");
        let after = w.cluster.snapshot();
        let new_depth = depth_of(&after, &format!("volume-{TARGET}"));
        if use_quota && max_depth > 0 {
            prop_assert!(new_depth as i64 <= max_depth, "depth {new_depth} > {max_depth}");
        }
        // Every protected snapshot left behind still has a child.
        for pool in after.pool_names() {
            for (name, img) in after.images(pool) {
                for s in img.visible_snaps().filter(|s| s.protected) {
                    let children = after.list_children(&ImageSpec::new(pool, name), Some(&s.name)).unwrap();
                    prop_assert!(!children.is_empty(), "{pool}/{name}@{} protected without children", s.name);
                }
            }
        }
    }
}

// ------------------------------------------------------------------ host matching

/// A naive, exponential reference for SQL LIKE (`%`, `_`, case-sensitive).
fn like_ref(t: &[char], p: &[char]) -> bool {
    match p.split_first() {
        None => t.is_empty(),
        Some(('%', rest)) => (0..=t.len()).any(|i| like_ref(&t[i..], rest)),
        Some(('_', rest)) => !t.is_empty() && like_ref(&t[1..], rest),
        Some((c, rest)) => t.first() == Some(c) && like_ref(&t[1..], rest),
    }
}

fn filter_ref(value: &str, field: &str) -> bool {
    if field == value {
        return true;
    }
    let f: Vec<char> = field.chars().collect();
    let with = |sep: char| -> bool {
        let p: Vec<char> = value.chars().chain([sep, '%']).collect();
        like_ref(&f, &p)
    };
    if value.contains('#') {
        false
    } else if value.contains('@') {
        with('#')
    } else {
        with('#') || with('@')
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2000), ..ProptestConfig::default() })]

    #[test]
    fn host_filter_is_sql_like(value in "[ab_%@#]{0,6}", field in "[abAB_%@#]{0,8}") {
        prop_assert_eq!(HostFilter::new(value.as_str()).matches(Some(&field)), filter_ref(&value, &field));
    }

    #[test]
    fn host_filter_exact_always_matches(value in ".{0,20}") {
        prop_assert!(HostFilter::new(value.as_str()).matches(Some(&value)));
        prop_assert!(!HostFilter::new(value.as_str()).matches(None));
    }
}
