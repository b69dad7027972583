//! The invariants operators rely on, checked over generated create-from-image
//! situations (the `testing` kit's strategies), and the driver conformance
//! suite run against the in-memory cluster.
//!
//! Case counts: `CINDER_FLOW_CASES` (default 256; CI runs 10,000 in the
//! release profile).
#![cfg(feature = "testing")]

mod common;

use common::{cases, depth_of, protected_snaps};

use proptest::prelude::*;

use cinder_flow::memory::MemoryCluster;
use cinder_flow::model::HostFilter;
use cinder_flow::plan::{CreatePath, Expect, Plan, Source};
use cinder_flow::planner::Policy;
use cinder_flow::rbd::{Cluster, ImageSpec, RbdOp};
use cinder_flow::shell::{self, ExecOptions};
use cinder_flow::testing::driver_suite;
use cinder_flow::testing::strategies::{situation, Situation, SituationWorld, TARGET};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime")
}

fn plan(w: &SituationWorld) -> Plan {
    rt().block_on(shell::plan(w.backends(), &w.request, &w.config, &Policy::faithful())).expect("plan").0
}

/// The image volume a plan cloned, if it cloned one.
fn cloned_image_volume<'a>(s: &'a Situation, p: &Plan) -> Option<&'a cinder_flow::testing::strategies::ImageVolume> {
    match (&p.path, &p.source) {
        (Some(CreatePath::ImageVolumeClone), Some(Source::Volume { volume_id })) => {
            let i: usize = volume_id.as_str().rsplit('-').next()?.parse().ok()?;
            s.image_volumes.get(i)
        }
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    /// No plan clones an image volume whose owner check fails (CIV-6), and
    /// with the faithful policy none from another host or pool (CIV-5) nor
    /// a cache entry of another host (CACHE-2).
    #[test]
    fn no_clone_across_tenants_or_hosts(s in situation()) {
        let w = s.build();
        let p = plan(&w);
        if let Some(iv) = cloned_image_volume(&s, &p) {
            let owner = s.image_owner.as_deref();
            prop_assert!(owner == Some(s.project.as_str()) || owner == iv.tag.as_deref(),
                "cloned {:?} for {} (image owner {:?})", iv, s.project, owner);
            if !s.clone_across_pools {
                prop_assert!(HostFilter::new(s.target_host.as_str()).matches(Some(&iv.host)), "{:?} onto {}", iv, s.target_host);
            }
        }
        if let (Some(CreatePath::CacheHit), Some(Source::Cache { volume_id }), false) = (&p.path, &p.source, s.clone_across_pools) {
            let i: usize = volume_id.as_str().rsplit('-').next().unwrap().parse().unwrap();
            prop_assert_eq!(&s.cache[i].host, &s.target_host, "cache entry of another host");
        }
    }

    /// Same facts, same plan; and the order in which rows come back from the
    /// database and the cluster does not matter.
    #[test]
    fn plans_are_deterministic_and_order_independent(s in situation()) {
        let a = plan(&s.build());
        let b = plan(&s.build());
        prop_assert_eq!(&a, &b);
        let c = plan(&s.build_ordered(true));
        prop_assert_eq!(a, c);
    }

    /// `rbd_max_clone_depth <= 0` never yields a copy-on-write clone of a
    /// Cinder volume; after the plan runs, the new volume's clone chain is
    /// within the limit; and every protected snapshot the plan left behind
    /// has a child.
    #[test]
    fn clone_depth_and_snapshot_hygiene(s in situation()) {
        let w = s.build();
        let before = w.cluster.snapshot();
        let p = plan(&w);
        if s.max_clone_depth <= 0 {
            for (op, expect) in p.rbd_ops() {
                if let (RbdOp::Clone { parent, .. }, Expect::Ok) = (op, expect) {
                    prop_assert!(parent.pool != "volumes", "copy-on-write clone of {} with max depth {}", parent, s.max_clone_depth);
                }
            }
        }
        let run = rt().block_on(shell::execute(&p, w.backends(), &ExecOptions::default()));
        prop_assert!(run.is_ok(), "the in-memory cluster diverged from the plan: {:?}", run.err());
        let after = w.cluster.snapshot();
        if s.max_clone_depth > 0 && p.outcome.is_success() {
            let d = depth_of(&after, &format!("volume-{TARGET}"));
            prop_assert!(d as i64 <= s.max_clone_depth, "clone depth {} > {}", d, s.max_clone_depth);
        }
        let new_protected: Vec<_> = protected_snaps(&after).difference(&protected_snaps(&before)).cloned().collect();
        for (pool, image, snap) in new_protected {
            let children = after.list_children(&ImageSpec::new(pool.as_str(), image.as_str()), Some(&snap)).unwrap_or_default();
            prop_assert!(!children.is_empty(), "{}/{}@{} protected by the plan without a child", pool, image, snap);
        }
    }
}

#[tokio::test]
async fn the_in_memory_cluster_passes_the_driver_suite() {
    for clone_v2 in [false, true] {
        let mut c = Cluster::new("fsid");
        c.clone_v2 = clone_v2;
        c.add_pool("suite");
        let d = MemoryCluster::new(c);
        let failures = driver_suite::run_all(&d, "suite", "mem").await;
        assert!(failures.is_empty(), "clone_v2={clone_v2}: {failures:#?}");
    }
}
