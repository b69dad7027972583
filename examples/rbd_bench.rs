//! Benchmarks on a real Ceph cluster (feature `rbd`): creating a 1 GiB
//! volume from an image by the clone path and by the download path, and
//! the latency of each kind of plan step, through `RbdDriver`.
//!
//! ```sh
//! bash .ci/ceph.sh start
//! CEPH_CONF=target/ceph/ceph.conf cargo run --release --features rbd --example rbd_bench [-- ROUNDS]
//! ```
//!
//! The calls are the ones the plans make (see the conformance vectors'
//! `rbd_ops`): the clone path is `clone` + `resize` of the image's
//! protected snapshot; the download path is the download (a raw file
//! written to the conversion directory) + `import` (create, then librbd
//! writes of the file's non-zero runs). Everything runs in an RBD namespace
//! of pool `bench`, left behind for the throwaway cluster.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use cinder_flow::librbd::{RbdConfig, RbdDriver};
use cinder_flow::model::Bytes;
use cinder_flow::ports::{DownloadedImage, Driver};
use cinder_flow::rbd::{ImageSpec, RbdOp};

const GIB: u64 = 1 << 30;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A raw image file of `size` bytes, `fill` of its 4 MiB chunks holding
/// data (the rest sparse zeros), as a download leaves it.
fn write_image_file(path: &PathBuf, size: u64, fill: f64) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    let chunk = 4u64 << 20;
    let data: Vec<u8> = (0..chunk).map(|i| (i % 251) as u8 | 1).collect();
    let chunks = size / chunk;
    let every = (1.0 / fill).round().max(1.0) as u64;
    for c in 0..chunks {
        if c % every == 0 {
            std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(c * chunk))?;
            f.write_all(&data)?;
        }
    }
    f.set_len(size)?;
    f.sync_all()
}

async fn timed(
    driver: &RbdDriver,
    op: RbdOp,
    source: Option<DownloadedImage>,
    t: &mut BTreeMap<&'static str, Vec<f64>>,
) {
    let name = op.name();
    let start = Instant::now();
    driver.apply(&op, source).await.unwrap_or_else(|e| panic!("{op}: {e}"));
    t.entry(name).or_default().push(start.elapsed().as_secs_f64() * 1e3);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Some(conf) = std::env::var_os("CEPH_CONF") else {
        eprintln!(
            "CEPH_CONF is unset: start a cluster with `bash .ci/ceph.sh start` and set CEPH_CONF=target/ceph/ceph.conf"
        );
        std::process::exit(2);
    };
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let ns = format!("bench-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("cinder-flow-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("conversion dir");
    let driver = RbdDriver::new(
        RbdConfig::with_conf(PathBuf::from(conf))
            .in_namespace(ns)
            .set("rbd_default_clone_format", "1")
            .with_conversion_dir(&dir),
    );
    driver.create_namespace("bench").await.expect("namespace");
    let pool = |n: &str| ImageSpec::new("bench", n);

    // The Glance image in RBD: 1 GiB with data in a quarter of it, a
    // protected snapshot.
    let image = pool("glance-image");
    let file = dir.join("image.raw");
    write_image_file(&file, GIB, 0.25).expect("image file");
    let source = DownloadedImage {
        image_id: "bench".into(),
        path: Some(file.clone()),
        size: Bytes(GIB),
        detected_format: "raw".into(),
    };
    let mut steps: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    timed(
        &driver,
        RbdOp::Import { image: image.clone(), size: Bytes(GIB), order: 22 },
        Some(source.clone()),
        &mut steps,
    )
    .await;
    let snap = image.snap("snap");
    timed(&driver, RbdOp::CreateSnap { snap: snap.clone() }, None, &mut steps).await;
    timed(&driver, RbdOp::ProtectSnap { snap: snap.clone() }, None, &mut steps).await;

    let mut clone_path = Vec::new();
    let mut download_path = Vec::new();
    let mut download_only = Vec::new();
    for r in 0..rounds {
        // Clone path: clone the image's snapshot, grow to the volume size.
        let vol = pool(&format!("volume-clone-{r}"));
        let t = Instant::now();
        timed(
            &driver,
            RbdOp::Clone { parent: snap.clone(), child: vol.clone(), order: 22, features: 1 },
            None,
            &mut steps,
        )
        .await;
        timed(&driver, RbdOp::Resize { image: vol.clone(), size: Bytes(GIB) }, None, &mut steps).await;
        clone_path.push(t.elapsed().as_secs_f64() * 1e3);

        // Download path: the download lands in the conversion directory,
        // then `rbd import`.
        let t = Instant::now();
        let downloaded = dir.join(format!("download-{r}.raw"));
        write_image_file(&downloaded, GIB, 0.25).expect("download");
        download_only.push(t.elapsed().as_secs_f64() * 1e3);
        let d = DownloadedImage { path: Some(downloaded.clone()), ..source.clone() };
        let dl = pool(&format!("volume-download-{r}"));
        timed(&driver, RbdOp::Import { image: dl.clone(), size: Bytes(GIB), order: 22 }, Some(d), &mut steps).await;
        download_path.push(t.elapsed().as_secs_f64() * 1e3);
        let _ = std::fs::remove_file(&downloaded);

        // The other step kinds, on these volumes.
        let s = vol.snap("s");
        timed(
            &driver,
            RbdOp::Create { image: pool(&format!("plain-{r}")), size: Bytes(GIB), order: 22, features: 1 },
            None,
            &mut steps,
        )
        .await;
        timed(&driver, RbdOp::CreateSnap { snap: s.clone() }, None, &mut steps).await;
        timed(&driver, RbdOp::ProtectSnap { snap: s.clone() }, None, &mut steps).await;
        timed(&driver, RbdOp::UnprotectSnap { snap: s.clone() }, None, &mut steps).await;
        timed(&driver, RbdOp::RemoveSnap { snap: s }, None, &mut steps).await;
        timed(&driver, RbdOp::Copy { src: dl.clone(), dst: pool(&format!("copy-{r}")) }, None, &mut steps).await;
        timed(&driver, RbdOp::Flatten { image: vol.clone() }, None, &mut steps).await;
        timed(&driver, RbdOp::UpdateFeatures { image: vol.clone(), features: 4, enabled: true }, None, &mut steps)
            .await;
        timed(&driver, RbdOp::Rename { image: vol.clone(), new_name: format!("renamed-{r}").into() }, None, &mut steps)
            .await;
        timed(&driver, RbdOp::TrashMove { image: pool(&format!("renamed-{r}")), delay: 0 }, None, &mut steps).await;
        timed(&driver, RbdOp::TrashRemove { image: pool(&format!("renamed-{r}")) }, None, &mut steps).await;
        timed(&driver, RbdOp::Remove { image: dl }, None, &mut steps).await;
        timed(&driver, RbdOp::Remove { image: pool(&format!("copy-{r}")) }, None, &mut steps).await;
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!("1 GiB volume from a 1 GiB image (256 MiB of data), {rounds} rounds, median ms");
    println!("| path | total | of which download to the conversion dir |");
    println!("|---|---:|---:|");
    println!("| clone (clone + resize) | {:.1} | - |", median(&mut clone_path));
    println!(
        "| download (download + import) | {:.1} | {:.1} |",
        median(&mut download_path),
        median(&mut download_only)
    );
    println!();
    println!("plan step latency, median ms (n)");
    println!("| step | median | n |");
    println!("|---|---:|---:|");
    for (name, v) in &mut steps {
        let n = v.len();
        println!("| {name} | {:.1} | {n} |", median(v));
    }
}
