//! The bounded inputs of issue 13.3 at their bounds (results are asserted
//! in `tests/bounds.rs` and `tests/vector_memory.rs`; time is measured
//! here only):
//!
//! * `host_like/255`: `HostFilter::matches` with a value and a field of
//!   `HOST_MAX_CHARS` characters made to make backtracking matchers retry.
//! * `clone_chain/<links>`: gathering and planning create_cloned_volume of
//!   a source at the end of a chain of clones, up to `MAX_CLONE_CHAIN`.
//! * `vector_decode/4194304`: `parse_vectors` on a vector of
//!   `MAX_VECTOR_BYTES`.
//!
//! `cargo bench --bench bounds` (figures in docs/PERFORMANCE.md).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use cinder_flow::config::Config;
use cinder_flow::conformance::{parse_vectors, vector::MAX_VECTOR_BYTES};
use cinder_flow::memory::{MemoryCluster, MemoryImageService, MemoryVolumeDb};
use cinder_flow::model::{Bytes, GiB, HostFilter, Timestamp, Volume, VolumeStatus, GIB, HOST_MAX_CHARS};
use cinder_flow::plan::{Operation, Outcome};
use cinder_flow::planner::{Policy, Request, MAX_CLONE_CHAIN};
use cinder_flow::rbd::{Cluster, ImageSpec, RbdImage, RbdSnapshot, SnapSpec};
use cinder_flow::shell::{self, Backends};

const ID: &str = "11111111-1111-4111-8111-111111111111";
const SRC: &str = "22222222-2222-4222-8222-222222222222";

fn host_like(c: &mut Criterion) {
    let mut value = String::from("%");
    while value.chars().count() < HOST_MAX_CHARS - 2 {
        value.push_str("a_%");
    }
    value.truncate(HOST_MAX_CHARS - 2);
    value.push_str("zz");
    let filter = HostFilter::new(value.as_str());
    let miss = "a".repeat(HOST_MAX_CHARS);
    let mut hit = "a".repeat(HOST_MAX_CHARS - 4);
    hit.push_str("zz@b");
    assert!(!filter.matches(Some(&miss)) && filter.matches(Some(&hit)));
    let mut g = c.benchmark_group("host_like");
    g.bench_function(BenchmarkId::new("miss", HOST_MAX_CHARS), |b| b.iter(|| filter.matches(Some(&miss))));
    g.bench_function(BenchmarkId::new("hit", HOST_MAX_CHARS), |b| b.iter(|| filter.matches(Some(&hit))));
    g.finish();
}

struct World {
    driver: MemoryCluster,
    images: MemoryImageService,
    db: MemoryVolumeDb,
    config: Config,
}

fn chain_world(links: usize) -> World {
    let mut c = Cluster::new("fsid");
    c.add_pool("volumes");
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
    let db = MemoryVolumeDb::new();
    let mut target = Volume::new(ID, "project-1", GiB(1)).on_host("hostA@ceph#ceph");
    target.status = VolumeStatus::Creating;
    db.add_volume(target);
    db.add_volume(Volume::new(SRC, "project-1", GiB(1)).on_host("hostA@ceph#ceph"));
    let mut config = Config::default();
    config.backend.rbd_pool = "volumes".into();
    config.backend.rbd_max_clone_depth = i64::MAX;
    World { driver: MemoryCluster::new(c), images: MemoryImageService::new(), db, config }
}

fn clone_chain(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let mut g = c.benchmark_group("clone_chain");
    g.sample_size(10);
    for links in [100, 1_000, MAX_CLONE_CHAIN] {
        let w = chain_world(links);
        let backends = Backends { driver: &w.driver, images: &w.images, db: &w.db };
        let request = Request {
            operation: Operation::CreateClonedVolume { source_volid: SRC.into() },
            volume_id: ID.into(),
            now: Timestamp::EPOCH,
        };
        let policy = Policy::faithful();
        let (plan, _) = rt.block_on(shell::plan(backends, &request, &w.config, &policy)).expect("plan");
        assert_eq!(plan.outcome, Outcome::Success);
        g.throughput(Throughput::Elements(links as u64));
        g.bench_with_input(BenchmarkId::from_parameter(links), &links, |b, _| {
            b.iter(|| rt.block_on(shell::plan(backends, &request, &w.config, &policy)).expect("plan"))
        });
    }
    g.finish();
}

fn vector_decode(c: &mut Criterion) {
    let head = r#"{"name":"big","operation":"create_volume","volume":{"id":"11111111-1111-4111-8111-111111111111"},"backend":{"capabilities":{"bulk":[1"#;
    let tail = "]}}}";
    let mut text = String::from(head);
    while text.len() + 2 + tail.len() <= MAX_VECTOR_BYTES {
        text.push_str(",1");
    }
    while text.len() + tail.len() < MAX_VECTOR_BYTES {
        text.push(' ');
    }
    text.push_str(tail);
    assert_eq!(parse_vectors(&text).expect("decodes").len(), 1);
    let mut g = c.benchmark_group("vector_decode");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function(BenchmarkId::from_parameter(MAX_VECTOR_BYTES), |b| b.iter(|| parse_vectors(&text)));
    g.finish();
}

criterion_group!(benches, host_like, clone_chain, vector_decode);
criterion_main!(benches);
