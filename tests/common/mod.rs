//! Helpers shared by the integration tests (each test crate uses a part).
#![allow(dead_code)]

use std::collections::BTreeSet;

use cinder_flow::rbd::{Cluster, ImageSpec};

/// At least `floor` proptest cases, or `CINDER_FLOW_CASES` when larger
/// (CI: 10,000).
pub fn cases(floor: u32) -> u32 {
    std::env::var("CINDER_FLOW_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(0).max(floor)
}

/// Depth of a volume image's Cinder clone chain in pool `volumes`, as
/// `_get_clone_depth` counts it (parents reached through `<name>.clone_snap`;
/// stops after 64 links so that a cycle cannot hang a test).
pub fn depth_of(c: &Cluster, name: &str) -> usize {
    let mut depth = 0;
    let mut current = name.to_owned();
    while let Ok(p) = c.parent_info(&ImageSpec::new("volumes", current.clone()), None) {
        if p.snap != format!("{}.clone_snap", current.trim_end_matches(".deleted")) || depth > 64 {
            break;
        }
        depth += 1;
        current = p.image.to_string();
    }
    depth
}

/// Every protected, visible snapshot in the cluster (images and trash), as
/// `(pool, image, snapshot)`.
pub fn protected_snaps(c: &Cluster) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for pool in c.pool_names() {
        for (name, img) in c.images(pool).chain(c.trash(pool)) {
            for s in img.visible_snaps().filter(|s| s.protected) {
                out.insert((pool.to_owned(), name.to_owned(), s.name.to_string()));
            }
        }
    }
    out
}
