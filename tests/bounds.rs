//! Bounded work on any input (issue 13.3): each bound with the largest input
//! it allows, and what happens just past it. Results are asserted here; how
//! long the largest inputs take is measured in `benches/bounds.rs`, never
//! timed in a test.

use cinder_flow::config::Config;
use cinder_flow::memory::{MemoryCluster, MemoryImageService, MemoryVolumeDb};
use cinder_flow::model::{Bytes, GiB, Timestamp, Volume, VolumeStatus, GIB};
use cinder_flow::plan::{ErrorClass, Expect, Operation, Outcome, Plan};
use cinder_flow::planner::{Policy, Request};
use cinder_flow::rbd::{Cluster, ImageSpec, RbdImage, RbdOp};
use cinder_flow::shell::{self, Backends};

const ID: &str = "11111111-1111-4111-8111-111111111111";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime")
}

struct World {
    driver: MemoryCluster,
    images: MemoryImageService,
    db: MemoryVolumeDb,
    config: Config,
}

fn world(cluster: Cluster, target: Volume) -> World {
    let db = MemoryVolumeDb::new();
    db.add_volume(target);
    let mut config = Config::default();
    config.backend.rbd_pool = "volumes".into();
    World { driver: MemoryCluster::new(cluster), images: MemoryImageService::new(), db, config }
}

fn base() -> Cluster {
    let mut c = Cluster::new("fsid");
    c.add_pool("volumes");
    c
}

fn plan(w: &World, operation: Operation) -> Plan {
    let backends = Backends { driver: &w.driver, images: &w.images, db: &w.db };
    let request = Request { operation, volume_id: ID.into(), now: Timestamp::EPOCH };
    let (plan, _) = rt().block_on(shell::plan(backends, &request, &w.config, &Policy::faithful())).expect("plan");
    plan
}

fn creating(size: GiB) -> Volume {
    let mut v = Volume::new(ID, "project-1", size).on_host("hostA@ceph#ceph");
    v.status = VolumeStatus::Creating;
    v
}

// ---------------------------------------------------------------- sizes

#[test]
fn the_largest_size_librbd_takes_is_created_exactly() {
    let max = GiB::MAX_BYTES_REPRESENTABLE;
    let w = world(base(), creating(max));
    let p = plan(&w, Operation::CreateVolume);
    assert_eq!(p.outcome, Outcome::Success);
    let sizes: Vec<Bytes> = p
        .rbd_ops()
        .filter_map(|(op, _)| match op {
            RbdOp::Create { size, .. } => Some(*size),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, [Bytes(max.0 * GIB)]);
}

#[test]
fn a_size_past_64_bits_of_bytes_is_an_overflow_error_and_no_call() {
    for gib in [GiB::MAX_BYTES_REPRESENTABLE.0 + 1, u64::MAX] {
        let w = world(base(), creating(GiB(gib)));
        let p = plan(&w, Operation::CreateVolume);
        match &p.outcome {
            Outcome::Failure { error: ErrorClass::OverflowError, message } => {
                assert!(message.contains(&(u128::from(gib) * u128::from(GIB)).to_string()), "{message}");
            }
            other => panic!("{gib} GiB: {other:?}"),
        }
        assert!(
            p.rbd_ops().all(|(op, _)| !matches!(op, RbdOp::Create { .. })),
            "no saturated size reaches the driver: {:?}",
            p.rbd_ops().collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_clone_grown_past_64_bits_fails_at_the_resize_with_overflow_error() {
    // create_cloned_volume of a 1 GiB source into a volume too large for
    // librbd: the clone is made, the resize raises OverflowError (upstream's
    // binding refuses the Python int), and nothing is resized to a
    // saturated size.
    const SRC: &str = "22222222-2222-4222-8222-222222222222";
    let mut c = base();
    c.put_image(&ImageSpec::new("volumes", format!("volume-{SRC}")), RbdImage::new(Bytes(GIB)));
    let w = world(c, creating(GiB(u64::MAX)));
    w.db.add_volume(Volume::new(SRC, "project-1", GiB(1)).on_host("hostA@ceph#ceph"));
    let p = plan(&w, Operation::CreateClonedVolume { source_volid: SRC.into() });
    assert!(matches!(p.outcome, Outcome::Failure { error: ErrorClass::OverflowError, .. }), "{:?}", p.outcome);
    assert!(p.rbd_ops().any(|(op, e)| matches!(op, RbdOp::Clone { .. }) && e == Expect::Ok));
    assert!(p.rbd_ops().all(|(op, _)| !matches!(op, RbdOp::Resize { .. })));
}

// ---------------------------------------------------------------- hosts

use cinder_flow::conformance::parse_vectors;
use cinder_flow::model::{check_host_len, Host, HostFilter, HOST_MAX_CHARS};

/// A value of `HOST_MAX_CHARS` characters that makes backtracking `LIKE`
/// matchers retry at every position: wildcards, then a tail that only
/// fits at the very end.
fn adversarial_value() -> String {
    let mut v = String::from("%");
    while v.chars().count() < HOST_MAX_CHARS - 2 {
        v.push_str("a_%");
    }
    v.truncate(HOST_MAX_CHARS - 2);
    v.push_str("zz");
    assert_eq!(v.chars().count(), HOST_MAX_CHARS);
    v
}

#[test]
fn host_matching_at_the_column_bound() {
    let value = adversarial_value();
    let filter = HostFilter::new(value.as_str());
    let field_no = "a".repeat(HOST_MAX_CHARS);
    assert!(!filter.matches(Some(&field_no)));
    // `value@%` at host level: the same run of `a`s, then `zz@...`.
    let mut field_yes = "a".repeat(HOST_MAX_CHARS - 4);
    field_yes.push_str("zz@b");
    assert!(filter.matches(Some(&field_yes)));
    let mut field_pool = "a".repeat(HOST_MAX_CHARS - 4);
    field_pool.push_str("zz#p");
    assert!(filter.matches(Some(&field_pool)));
    // Multi-byte characters count as one, as in MySQL's VARCHAR(255).
    let wide = "é".repeat(HOST_MAX_CHARS);
    assert!(check_host_len("host", &wide).is_ok());
    let mut wide_pool = "é".repeat(HOST_MAX_CHARS - 2);
    wide_pool.push_str("#p");
    assert!(HostFilter::new("é_é%").matches(Some(&wide_pool)), "`_` is one character, not one byte");
    assert!(Host::try_new(&wide).is_ok());
}

fn vector_with_host(host: &str) -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/cache-hit.json")).unwrap();
    let json = serde_json::to_string(host).unwrap();
    text.replace("\"hostA@ceph#ceph\"", &json)
}

#[test]
fn vectors_hold_hosts_up_to_the_column_bound() {
    let host = format!("{}#p", "h".repeat(HOST_MAX_CHARS - 2));
    let vectors = parse_vectors(&vector_with_host(&host)).expect("a 255-character host is a valid row");
    assert_eq!(vectors[0].volume.as_ref().unwrap().host.as_deref(), Some(host.as_str()));

    let long = format!("{}#p", "h".repeat(HOST_MAX_CHARS - 1));
    let e = parse_vectors(&vector_with_host(&long)).unwrap_err();
    assert!(e.contains("256 characters long") && e.contains("at most 255"), "{e}");
}

// ---------------------------------------------------------------- clone chains

use cinder_flow::rbd::{RbdSnapshot, SnapSpec};

const SRC: &str = "22222222-2222-4222-8222-222222222222";

/// A chain of `links` Cinder clones ending in the source volume of
/// create_cloned_volume: `volume-<SRC>` is a clone of `chain-1`, a clone of
/// `chain-2`, … `chain-<links>`, which has no parent (each parent holds the
/// `<child>.clone_snap` snapshot its child was cloned from).
fn chain_world(links: usize) -> World {
    let mut c = base();
    let name = |i: usize| if i == 0 { format!("volume-{SRC}") } else { format!("chain-{i}") };
    for i in 0..=links {
        let mut img = RbdImage::new(Bytes(GIB));
        if i < links {
            img.parent = Some(SnapSpec {
                pool: "volumes".into(),
                image: name(i + 1).into(),
                snap: format!("{}.clone_snap", name(i)).into(),
            });
        }
        if i > 0 {
            img.snaps = vec![RbdSnapshot {
                name: format!("{}.clone_snap", name(i - 1)).into(),
                size: Bytes(GIB),
                protected: true,
                parent: None,
                hidden: false,
            }];
        }
        c.put_image(&ImageSpec::new("volumes", name(i)), img);
    }
    let mut w = world(c, creating(GiB(1)));
    w.db.add_volume(Volume::new(SRC, "project-1", GiB(1)).on_host("hostA@ceph#ceph"));
    w.config.backend.rbd_max_clone_depth = i64::MAX;
    w
}

#[test]
fn clone_depth_of_the_longest_chain_allowed() {
    let links = cinder_flow::planner::MAX_CLONE_CHAIN;
    let w = chain_world(links);
    let p = plan(&w, Operation::CreateClonedVolume { source_volid: SRC.into() });
    assert_eq!(p.outcome, Outcome::Success, "{:?}", p.outcome);
    let said = format!("clone depth {links} ");
    assert!(p.explained().any(|d| d.to_string().contains(&said)), "the depth is counted to the end of the chain");
    assert!(p.rbd_ops().any(|(op, _)| matches!(op, RbdOp::Clone { .. })), "cloned, not copied");
}

#[test]
fn a_chain_past_the_bound_is_refused_as_inconsistent_facts() {
    let w = chain_world(cinder_flow::planner::MAX_CLONE_CHAIN + 1);
    let backends = Backends { driver: &w.driver, images: &w.images, db: &w.db };
    let request = Request {
        operation: Operation::CreateClonedVolume { source_volid: SRC.into() },
        volume_id: ID.into(),
        now: Timestamp::EPOCH,
    };
    let e = rt().block_on(shell::plan(backends, &request, &w.config, &Policy::faithful())).unwrap_err();
    assert!(e.to_string().contains("does not end"), "{e}");
}
