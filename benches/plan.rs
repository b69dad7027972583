//! Planning cost of create-from-image: one decision is gathering facts from
//! the in-memory backends and planning (`shell::plan`), not building the
//! world and not executing. Images with 1 to 10,000 locations, databases of
//! 10 to 100,000 volumes. Two scenarios, both ending in the same decision
//! (clone of a `cinder://` image volume on the new volume's pool):
//!
//! * `create_from_image_stores` (location scaling): a multi-store Glance
//!   image. Every location but the last is `rbd://<fsid>/images/<image>/snap`
//!   of another Ceph cluster (a different fsid each), which the driver clone
//!   rejects after parsing; the last is the `cinder://` image volume, which
//!   is cloned. The rest of the database is filler volumes on other hosts.
//!   The per-location work is what every location costs upstream too:
//!   `_parse_location` and the fsid check for the driver clone,
//!   `_extract_cinder_ids`' split of every URL, one trace entry each.
//! * `create_from_image_mixed` (cinder-id heavy): the image's locations
//!   are, in order, `rbd://` URLs of another cluster (half), `cinder://` ids
//!   with no volume row (a quarter) and `cinder://` image volumes on another
//!   pool (a quarter, as far as the database holds them), then the
//!   cloneable image volume. Every `cinder://` id is a database row to
//!   fetch (or find missing), to filter by host and to explain, so this
//!   scenario also measures the volume rows' path through the ports, the
//!   facts and the database view.
//!
//! `cargo bench --bench plan` (see docs/PERFORMANCE.md for the figures).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use cinder_flow::config::Config;
use cinder_flow::memory::{MemoryCluster, MemoryImageService, MemoryVolumeDb};
use cinder_flow::model::{Bytes, GiB, Image, LocationEntry, Timestamp, Volume, VolumeStatus, GIB};
use cinder_flow::plan::{CreatePath, Operation};
use cinder_flow::planner::{Policy, Request};
use cinder_flow::rbd::{Cluster, ImageSpec, RbdImage};
use cinder_flow::shell::{self, Backends};

const FSID: &str = "7d5ab9c0-5e1b-4a2b-9c3d-0000000000f5";
const IMAGE_ID: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const TARGET_ID: &str = "11111111-1111-4111-8111-111111111111";

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

/// The world around an image with `urls` before the cloneable image
/// volume, and a database of `volumes` rows in all (`db` holds some).
fn finish_world(mut cluster: Cluster, db: MemoryVolumeDb, mut urls: Vec<String>, volumes: usize) -> World {
    let chosen = uuid(0xc0de, 0);
    db.add_volume(Volume::new(chosen.as_str(), "project-1", GiB(1)).on_host("hostA@ceph#ceph"));
    cluster.put_image(&ImageSpec::new("volumes", format!("volume-{chosen}")), RbdImage::new(Bytes(GIB)));
    urls.push(format!("cinder://{chosen}"));
    let mut target = Volume::new(TARGET_ID, "project-1", GiB(10)).on_host("hostA@ceph#ceph");
    target.status = VolumeStatus::Creating;
    db.add_volume(target);
    let mut filler = 0;
    while db.volume_count() < volumes {
        db.add_volume(
            Volume::new(uuid(0xf111, filler).as_str(), "project-9", GiB(1))
                .on_host(format!("host{}@lvm#lvm", filler % 7)),
        );
        filler += 1;
    }

    let mut image = Image::raw(IMAGE_ID, "project-1", Bytes(GIB));
    image.locations = Some(urls.into_iter().map(LocationEntry::url).collect());
    let images = MemoryImageService::new();
    images.insert(image);

    let mut config = Config::default();
    config.backend.rbd_pool = "volumes".into();
    config.allowed_direct_url_schemes = vec!["cinder".into()];
    let request = Request {
        operation: Operation::CreateFromImage { image_id: IMAGE_ID.into() },
        volume_id: TARGET_ID.into(),
        now: Timestamp::EPOCH,
    };
    World { cluster: MemoryCluster::new(cluster), images, db, config, request }
}

fn cluster() -> Cluster {
    let mut cluster = Cluster::new(FSID);
    cluster.add_pool("volumes");
    cluster
}

/// Multi-store Glance: `locations - 1` RBD stores of other clusters, then
/// the image volume.
fn stores_world(locations: usize, volumes: usize) -> World {
    let urls =
        (0..locations.saturating_sub(1)).map(|i| format!("rbd://{}/images/{IMAGE_ID}/snap", uuid(0xc1a5, i))).collect();
    finish_world(cluster(), MemoryVolumeDb::new(), urls, volumes)
}

/// Half other-cluster RBD, a quarter missing ids, a quarter image volumes
/// on another pool (as far as the database holds them), then the image
/// volume.
fn mixed_world(locations: usize, volumes: usize) -> World {
    let db = MemoryVolumeDb::new();
    let mut urls = Vec::with_capacity(locations);
    let others = locations.saturating_sub(1);
    let rbd = others / 2;
    let missing = others / 4;
    let elsewhere = (others - rbd - missing).min(volumes / 2);
    let missing = others - rbd - elsewhere;
    for i in 0..rbd {
        urls.push(format!("rbd://00000000-0000-0000-0000-0000000000aa/images/{IMAGE_ID}-{i}/snap"));
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
    finish_world(cluster(), db, urls, volumes)
}

fn group(c: &mut Criterion, name: &str, world: fn(usize, usize) -> World) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let mut group = c.benchmark_group(name);
    group.sample_size(30);
    for &volumes in &[10usize, 1_000, 100_000] {
        for &locations in &[1usize, 10, 100, 1_000, 10_000] {
            let w = world(locations, volumes);
            assert_eq!(w.db.volume_count(), volumes.max(2));
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

fn bench(c: &mut Criterion) {
    group(c, "create_from_image_stores", stores_world);
    group(c, "create_from_image_mixed", mixed_world);
}

criterion_group!(benches, bench);
criterion_main!(benches);
