//! The README's main job: the situation of field note 000.
//!
//! A raw/bare image is registered in Glance with a `cinder://` location: its
//! data lives in a Cinder "image volume". Two backends share one Ceph
//! cluster. A user asks for a volume from the image:
//!
//! 1. the image volume sits on `hostA@ceph#poolB`, the new volume is
//!    scheduled to `hostA@ceph#poolA`: upstream's host filter is an exact
//!    pool match, so the copy is not found and the image is downloaded
//!    (the slow path that trips Nova's block-device timeout);
//! 2. the same image with a second image volume in the right pool: cloned;
//! 3. the first situation again under the opt-in policy that accepts image
//!    volumes from any pool of the same backend.
//!
//! Each plan is made on the in-memory backends and printed with its
//! decision trace.
//!
//! Run: `cargo run --release --example seed000` (add `--json` for the plans
//! as JSON).

use cinder_flow::config::Config;
use cinder_flow::explain::render_plan;
use cinder_flow::memory::{MemoryCluster, MemoryImageService, MemoryVolumeDb};
use cinder_flow::model::{Bytes, GiB, Image, LocationEntry, Timestamp, Volume, VolumeStatus, GIB};
use cinder_flow::plan::Operation;
use cinder_flow::planner::{CandidateScope, Policy, Request};
use cinder_flow::rbd::{Cluster, ImageSpec, RbdImage};
use cinder_flow::shell::{self, Backends, ExecOptions};

const FSID: &str = "7d5ab9c0-5e1b-4a2b-9c3d-0000000000f5";
const IMAGE: &str = "aeb33544-cdc8-42c8-9102-5023745e6a23";
const IMAGE_VOL_B: &str = "0df99357-9e1f-4462-bf30-aabfd3f01f40";
const IMAGE_VOL_A: &str = "5b0c7f52-1d3e-4e0a-9a61-0c2f1e7d4a11";
const NEW_VOL: &str = "24404271-dfe0-40d7-8154-f21efba4e733";

struct Scenario {
    title: &'static str,
    image_volumes: Vec<(&'static str, &'static str)>,
    policy: Policy,
}

async fn run(s: &Scenario, json: bool) {
    // Glance: a 35 GiB raw image whose locations are the image volumes.
    let mut image = Image::raw(IMAGE, "406cd353135e44f0ade98f53d92d5d8b", Bytes(35 * GIB));
    image.virtual_size = None;
    image.min_disk = GiB(35);
    image.visibility = "public".into();
    image.locations =
        Some(s.image_volumes.iter().map(|(id, _)| LocationEntry::url(format!("cinder://{id}"))).collect());
    let images = MemoryImageService::new();
    images.insert(image);

    // Ceph: one cluster, the volumes pool holds the image volumes.
    let mut cluster = Cluster::new(FSID);
    cluster.add_pool("volumes");
    for (id, _) in &s.image_volumes {
        let mut img = RbdImage::new(Bytes(35 * GIB));
        img.snaps.clear();
        cluster.put_image(&ImageSpec::new("volumes", format!("volume-{id}")), img);
    }
    let driver = MemoryCluster::new(cluster);

    // Cinder: image volumes in the service tenant, tagged with the image
    // owner; the new volume scheduled to poolA.
    let db = MemoryVolumeDb::new();
    for (i, (id, host)) in s.image_volumes.iter().enumerate() {
        let mut v = Volume::new(*id, "service-tenant", GiB(35)).on_host(*host);
        v.metadata.insert("image_owner".into(), "406cd353135e44f0ade98f53d92d5d8b".into());
        v.admin_metadata.insert("readonly".into(), "True".into());
        v.created_at = Timestamp::EPOCH.plus_seconds(i as i64);
        db.add_volume(v);
    }
    let mut target = Volume::new(NEW_VOL, "tenant-7", GiB(38)).on_host("hostA@ceph#poolA");
    target.status = VolumeStatus::Creating;
    db.add_volume(target);

    let mut config = Config::default();
    config.backend.rbd_pool = "volumes".into();
    config.allowed_direct_url_schemes = vec!["cinder".into()];

    let backends = Backends { driver: &driver, images: &images, db: &db };
    let request = Request {
        operation: Operation::CreateFromImage { image_id: IMAGE.into() },
        volume_id: NEW_VOL.into(),
        now: "2025-01-01T00:00:00Z".parse().expect("timestamp"),
    };
    let (plan, _facts) = shell::plan(backends, &request, &config, &s.policy).await.expect("plan");
    println!("=== {}", s.title);
    if json {
        println!("{}", serde_json::to_string_pretty(&plan).expect("serialisable"));
    } else {
        print!("{}", render_plan(&plan));
    }
    let report = shell::execute(&plan, backends, &ExecOptions::default()).await;
    match report {
        Ok(r) => println!("Executed on the in-memory cluster: {} steps, outcome {:?}\n", r.steps_run, r.outcome),
        Err(d) => println!("Execution diverged: {d}\n"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let mut better = Policy::faithful();
    better.candidate_scope = CandidateScope::SameBackend;
    let scenarios = [
        Scenario {
            title: "1. image volume only in poolB, new volume in poolA (upstream Cinder 29)",
            image_volumes: vec![(IMAGE_VOL_B, "hostA@ceph#poolB")],
            policy: Policy::faithful(),
        },
        Scenario {
            title: "2. a second image volume in poolA (the per-pool copy proposed in the note)",
            image_volumes: vec![(IMAGE_VOL_B, "hostA@ceph#poolB"), (IMAGE_VOL_A, "hostA@ceph#poolA")],
            policy: Policy::faithful(),
        },
        Scenario {
            title: "3. as 1, with the opt-in policy candidate_scope = same_backend",
            image_volumes: vec![(IMAGE_VOL_B, "hostA@ceph#poolB")],
            policy: better,
        },
    ];
    for s in &scenarios {
        run(s, json).await;
    }
}
