//! Planning cost of create-from-image: gathering facts from the in-memory
//! backends and planning (not building the world, not executing), for
//! images with 1 to 10,000 locations and databases of 10 to 100,000
//! volumes.
//!
//! Scenario: the image's locations are, in order, `rbd://` URLs of another
//! Ceph cluster (half), `cinder://` ids with no volume row (a quarter) and
//! `cinder://` image volumes on another pool (a quarter, as far as the
//! database holds them), then one `cinder://` image volume on the new
//! volume's own pool, which is cloned. The rest of the database is filler
//! volumes on other hosts.
//!
//! `cargo bench --bench plan` (see docs/PERFORMANCE.md).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use cinder_flow::config::Config;
use cinder_flow::memory::{MemoryCluster, MemoryImageService, MemoryVolumeDb};
use cinder_flow::model::{Bytes, GiB, Image, LocationEntry, Timestamp, Volume, VolumeStatus, GIB};
use cinder_flow::plan::{CreatePath, Operation};
use cinder_flow::planner::{Policy, Request};
use cinder_flow::rbd::{Cluster, ImageSpec, RbdImage};
use cinder_flow::shell::{self, Backends};

struct World {
    cluster: MemoryCluster,
    images: MemoryImageService,
    db: MemoryVolumeDb,
    config: Config,
    request: Request,
}

fn uuid(kind: u32, n: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

fn world(locations: usize, volumes: usize) -> World {
    let fsid = "7d5ab9c0-5e1b-4a2b-9c3d-0000000000f5";
    let image_id = "aaaaaaaa-0000-4000-8000-000000000001";
    let mut cluster = Cluster::new(fsid);
    cluster.add_pool("volumes");
    let db = MemoryVolumeDb::new();
    let mut urls = Vec::with_capacity(locations);
    let others = locations.saturating_sub(1);
    let rbd = others / 2;
    let missing = others / 4;
    let elsewhere = (others - rbd - missing).min(volumes / 2);
    let missing = others - rbd - elsewhere;
    for i in 0..rbd {
        urls.push(format!("rbd://00000000-0000-0000-0000-0000000000aa/images/{image_id}-{i}/snap"));
    }
    for i in 0..missing {
        urls.push(format!("cinder://{}", uuid(0xdead, i)));
    }
    for i in 0..elsewhere {
        let id = uuid(0xe15e, i);
        let mut v = Volume::new(id.as_str(), "project-1", GiB(1)).on_host("hostA@ceph#other");
        v.created_at = Timestamp::EPOCH.plus_seconds(i as i64);
        db.add_volume(v);
        urls.push(format!("cinder://{id}"));
    }
    let chosen = uuid(0xc0de, 0);
    db.add_volume(Volume::new(chosen.as_str(), "project-1", GiB(1)).on_host("hostA@ceph#ceph"));
    cluster.put_image(&ImageSpec::new("volumes", format!("volume-{chosen}")), RbdImage::new(Bytes(GIB)));
    urls.push(format!("cinder://{chosen}"));
    for i in 0..volumes.saturating_sub(elsewhere + 1) {
        db.add_volume(
            Volume::new(uuid(0xf111, i).as_str(), "project-9", GiB(1)).on_host(format!("host{}@lvm#lvm", i % 7)),
        );
    }
    let mut target =
        Volume::new("11111111-1111-4111-8111-111111111111", "project-1", GiB(10)).on_host("hostA@ceph#ceph");
    target.status = VolumeStatus::Creating;
    db.add_volume(target);

    let mut image = Image::raw(image_id, "project-1", Bytes(GIB));
    image.locations = Some(urls.into_iter().map(LocationEntry::url).collect());
    let images = MemoryImageService::new();
    images.insert(image);

    let mut config = Config::default();
    config.backend.rbd_pool = "volumes".into();
    config.allowed_direct_url_schemes = vec!["cinder".into()];
    let request = Request {
        operation: Operation::CreateFromImage { image_id: image_id.into() },
        volume_id: "11111111-1111-4111-8111-111111111111".into(),
        now: Timestamp::EPOCH,
    };
    World { cluster: MemoryCluster::new(cluster), images, db, config, request }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let mut group = c.benchmark_group("plan_create_from_image");
    group.sample_size(30);
    for &volumes in &[10usize, 1_000, 100_000] {
        for &locations in &[1usize, 10, 100, 1_000, 10_000] {
            let w = world(locations, volumes);
            let backends = Backends { driver: &w.cluster, images: &w.images, db: &w.db };
            let policy = Policy::faithful();
            // The scenario must take the path it describes.
            let (plan, _) = rt.block_on(shell::plan(backends, &w.request, &w.config, &policy)).expect("plan");
            assert_eq!(plan.path, Some(CreatePath::ImageVolumeClone));
            group.throughput(Throughput::Elements(locations as u64));
            group.bench_with_input(BenchmarkId::new(format!("db_{volumes}"), locations), &locations, |b, _| {
                b.iter(|| rt.block_on(shell::plan(backends, &w.request, &w.config, &policy)).expect("plan"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
