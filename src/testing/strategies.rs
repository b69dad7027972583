//! proptest strategies for the crate's types and for whole situations.
//!
//! [`situation`] generates a create-from-image situation — image locations
//! (RBD of this and other clusters, malformed, `cinder://` in several
//! forms), image volumes on several hosts with owners and tags, clone
//! chains, cache entries (fresh and stale), and the options that steer the
//! flow — and [`Situation::build`] turns it into in-memory backends and a
//! request, ready for [`crate::shell::plan`].
//!
//! ```
//! use cinder_flow::testing::strategies::situation;
//! use proptest::strategy::{Strategy, ValueTree};
//! use proptest::test_runner::TestRunner;
//!
//! let mut runner = TestRunner::deterministic();
//! let s = situation().new_tree(&mut runner).unwrap().current();
//! let world = s.build();
//! assert_eq!(world.request.volume_id.as_str(), cinder_flow::testing::strategies::TARGET);
//! ```

use proptest::prelude::*;

use crate::config::Config;
use crate::facts::Capabilities;
use crate::memory::{Journal, MemoryCluster, MemoryImageService, MemoryVolumeDb};
use crate::model::{Bytes, CacheEntry, GiB, Host, Image, LocationEntry, Timestamp, Volume, VolumeStatus, GIB};
use crate::plan::Operation;
use crate::planner::Request;
use crate::rbd::{Cluster, ImageSpec, RbdImage, RbdSnapshot, SnapSpec};
use crate::shell::Backends;

/// The fsid of generated clusters.
pub const FSID: &str = "7d5ab9c0-5e1b-4a2b-9c3d-0000000000f5";
/// The image of generated situations.
pub const IMAGE: &str = "aaaaaaaa-0000-4000-8000-000000000001";
/// The volume generated situations create.
pub const TARGET: &str = "11111111-1111-4111-8111-111111111111";
/// The project of the internal tenant.
pub const INTERNAL: &str = "internal-project";

/// Host strings, `host@backend#pool` and its partial and odd forms.
pub fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["hostA@ceph#ceph", "hostA@ceph#poolB", "hostB@ceph#ceph", "hostA@lvm#lvm"]).prop_map(str::to_owned),
        2 => prop::sample::select(vec!["hostA@ceph", "hostA", "hosta@ceph#ceph", "host_@ceph#ceph", "hostA@ceph#%"]).prop_map(str::to_owned),
        1 => "[a-zA-Z0-9_%@#.-]{0,20}",
    ]
}

/// A volume id for position `n`.
pub fn volume_id(n: usize) -> String {
    format!("22222222-2222-4222-8222-{n:012}")
}

/// A `cinder://` URL naming `id`, in one of the forms upstream accepts or
/// rejects.
pub fn cinder_url(id: String) -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just(format!("cinder://{id}")),
        2 => Just(format!("cinder://store1/{id}")),
        1 => Just(format!("CINDER://{}", id.to_uppercase())),
        1 => Just(format!("cinder://{id}/")),
        1 => Just(format!("cinder://store/{id}-x")),
        1 => Just(format!("cinder:{id}")),
    ]
}

/// An `rbd://` URL: of this cluster (pool `images`, the image, `snap`),
/// another cluster's, or malformed.
pub fn rbd_url() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(format!("rbd://{FSID}/images/{IMAGE}/snap")),
        1 => Just(format!("rbd://{FSID}/images2/{IMAGE}/snap")),
        1 => Just(format!("rbd://{FSID}/images/{IMAGE}/nosnap")),
        2 => Just(format!("rbd://00000000-0000-0000-0000-0000000000aa/images/{IMAGE}/snap")),
        1 => Just(format!("rbd://{FSID}/images/{IMAGE}")),
        1 => Just(format!("rbd://{FSID}//{IMAGE}/snap")),
        1 => Just(format!("http://glance.example/{IMAGE}")),
    ]
}

/// An image volume candidate (a `cinder://` location's volume).
#[derive(Clone, Debug)]
pub struct ImageVolume {
    /// Its host.
    pub host: String,
    /// Its project.
    pub project: String,
    /// Its `image_owner` metadata.
    pub tag: Option<String>,
    /// Seconds after the epoch it was created.
    pub created: i64,
    /// Whether its RBD image exists.
    pub in_cluster: bool,
    /// Length of its clone chain (0: not a clone).
    pub depth: usize,
    /// How its location is written.
    pub url: String,
}

/// An image-cache entry of the image.
#[derive(Clone, Debug)]
pub struct CachedVolume {
    /// Host of the entry.
    pub host: String,
    /// Whether it predates the image's last update.
    pub stale: bool,
    /// Its size in GiB.
    pub size: u64,
    /// Seconds after the epoch it was last used.
    pub last_used: i64,
}

/// A whole create-from-image situation.
#[derive(Clone, Debug)]
pub struct Situation {
    /// Glance `owner` of the image.
    pub image_owner: Option<String>,
    /// `disk_format`.
    pub disk_format: String,
    /// `container_format`.
    pub container_format: String,
    /// Virtual size in GiB (None: unknown).
    pub virtual_gib: Option<u64>,
    /// The image's `rbd://` locations.
    pub rbd_urls: Vec<String>,
    /// Whether Glance's RBD snapshot is protected.
    pub glance_snap_protected: bool,
    /// The image volumes (each also a location).
    pub image_volumes: Vec<ImageVolume>,
    /// Cache entries of the image.
    pub cache: Vec<CachedVolume>,
    /// The requesting project.
    pub project: String,
    /// The new volume's host.
    pub target_host: String,
    /// The new volume's size in GiB.
    pub size: u64,
    /// Whether the new volume is encrypted.
    pub encrypted: bool,
    /// `allowed_direct_url_schemes` has `cinder`.
    pub cinder_scheme: bool,
    /// `image_volume_cache_enabled`.
    pub cache_enabled: bool,
    /// Both internal tenant ids set.
    pub internal_tenant: bool,
    /// `image_volume_cache_max_size_gb`, `image_volume_cache_max_count`.
    pub cache_limits: (i64, i64),
    /// `rbd_max_clone_depth`.
    pub max_clone_depth: i64,
    /// Driver capability `clone_across_pools`.
    pub clone_across_pools: bool,
    /// Clone v2 cluster.
    pub clone_v2: bool,
    /// Free bytes in the conversion directory.
    pub free_bytes: u64,
}

fn image_volume() -> impl Strategy<Value = ImageVolume> {
    (
        host(),
        prop::sample::select(vec!["project-1", "project-2", INTERNAL]),
        prop::option::of(prop::sample::select(vec!["project-1", "project-2", "someone"])),
        0i64..4,
        prop::bool::weighted(0.9),
        0usize..4,
    )
        .prop_map(|(host, project, tag, created, in_cluster, depth)| ImageVolume {
            host,
            project: project.to_owned(),
            tag: tag.map(str::to_owned),
            created,
            in_cluster,
            depth,
            url: String::new(),
        })
}

fn cached() -> impl Strategy<Value = CachedVolume> {
    (host(), prop::bool::weighted(0.3), 1u64..4, 0i64..10).prop_map(|(host, stale, size, last_used)| CachedVolume {
        host,
        stale,
        size,
        last_used,
    })
}

/// A create-from-image situation.
pub fn situation() -> impl Strategy<Value = Situation> {
    let image = (
        prop::option::of(prop::sample::select(vec!["project-1", "project-2"])),
        prop::sample::select(vec!["raw", "raw", "qcow2"]),
        prop::sample::select(vec!["bare", "bare", "ovf"]),
        prop::option::of(1u64..6),
        prop::collection::vec(rbd_url(), 0..3),
        prop::bool::weighted(0.85),
    );
    let world = (
        prop::collection::vec(image_volume(), 0..4).prop_flat_map(|vols| {
            let urls: Vec<_> = (0..vols.len()).map(|i| cinder_url(volume_id(i))).collect();
            (Just(vols), urls)
        }),
        prop::collection::vec(cached(), 0..3),
        prop::sample::select(vec!["project-1", "project-2"]),
        prop::sample::select(vec!["hostA@ceph#ceph", "hostA@ceph"]),
        1u64..8,
        prop::bool::weighted(0.1),
    );
    let options = (
        prop::bool::weighted(0.8),
        any::<bool>(),
        prop::bool::weighted(0.8),
        (prop::sample::select(vec![0i64, 0, 3, 5]), prop::sample::select(vec![0i64, 0, 1, 2])),
        -1i64..4,
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.2),
        prop::sample::select(vec![1u64 << 60, 1u64 << 60, GIB]),
    );
    (image, world, options).prop_map(
        |(
            (image_owner, disk_format, container_format, virtual_gib, rbd_urls, glance_snap_protected),
            ((mut image_volumes, urls), cache, project, target_host, size, encrypted),
            (
                cinder_scheme,
                cache_enabled,
                internal_tenant,
                cache_limits,
                max_clone_depth,
                clone_across_pools,
                clone_v2,
                free_bytes,
            ),
        )| {
            for (v, u) in image_volumes.iter_mut().zip(urls) {
                v.url = u;
            }
            Situation {
                image_owner: image_owner.map(str::to_owned),
                disk_format: disk_format.to_owned(),
                container_format: container_format.to_owned(),
                virtual_gib,
                rbd_urls,
                glance_snap_protected,
                image_volumes,
                cache,
                project: project.to_owned(),
                target_host: target_host.to_owned(),
                size,
                encrypted,
                cinder_scheme,
                cache_enabled,
                internal_tenant,
                cache_limits,
                max_clone_depth,
                clone_across_pools,
                clone_v2,
                free_bytes,
            }
        },
    )
}

/// In-memory backends and the request of a situation.
#[derive(Debug)]
pub struct SituationWorld {
    /// The cluster.
    pub cluster: MemoryCluster,
    /// Glance.
    pub images: MemoryImageService,
    /// The database.
    pub db: MemoryVolumeDb,
    /// Calls made on the cluster and Glance.
    pub journal: Journal,
    /// The options.
    pub config: Config,
    /// The create-from-image request.
    pub request: Request,
}

impl SituationWorld {
    /// The ports.
    pub fn backends(&self) -> Backends<'_> {
        Backends { driver: &self.cluster, images: &self.images, db: &self.db }
    }
}

const UPDATED: i64 = 1_700_000_000;

impl Situation {
    /// The image volume a `cinder://` location at position `i` names.
    pub fn image_volume_id(i: usize) -> String {
        volume_id(i)
    }

    /// Builds the backends. Row order in the database is the generated
    /// order; `reverse` inserts rows in the opposite order (upstream orders
    /// query results itself, so plans must not change).
    pub fn build_ordered(&self, reverse: bool) -> SituationWorld {
        let mut cluster = Cluster::new(FSID);
        cluster.clone_v2 = self.clone_v2;
        cluster.add_pool("volumes");
        // Glance's RBD image with its snapshot, in pool `images`.
        let mut glance = RbdImage::new(Bytes(GIB));
        glance.snaps.push(RbdSnapshot {
            name: "snap".into(),
            size: Bytes(GIB),
            protected: self.glance_snap_protected,
            parent: None,
            hidden: false,
        });
        cluster.put_image(&ImageSpec::new("images", IMAGE), glance);
        let db = MemoryVolumeDb::new();
        // Fresh ids are inputs: the same situation gets the same ones.
        db.queue_fresh_ids((1..=8).map(|n| format!("ffffffff-ffff-4fff-bfff-{n:012x}").into()));
        let mut rows: Vec<Volume> = Vec::new();
        let mut rbd: Vec<(ImageSpec, RbdImage)> = Vec::new();
        for (i, iv) in self.image_volumes.iter().enumerate() {
            let id = volume_id(i);
            let mut v = Volume::new(id.as_str(), iv.project.as_str(), GiB(1)).on_host(iv.host.as_str());
            v.created_at = Timestamp::EPOCH.plus_seconds(iv.created);
            if let Some(t) = &iv.tag {
                v.metadata.insert("image_owner".into(), t.clone());
            }
            rows.push(v);
            if iv.in_cluster {
                // A chain of `depth` Cinder clones ending at the image volume.
                let names: Vec<String> = (0..=iv.depth).map(|d| format!("volume-{id}-a{d}")).collect();
                let mut prev: Option<String> = None;
                for (d, n) in names.iter().enumerate() {
                    let name = if d == iv.depth { format!("volume-{id}") } else { n.clone() };
                    let mut img = RbdImage::new(Bytes(GIB));
                    if let Some(p) = &prev {
                        let snap = format!("{name}.clone_snap");
                        img.parent = Some(SnapSpec {
                            pool: "volumes".into(),
                            image: p.as_str().into(),
                            snap: snap.as_str().into(),
                        });
                        if let Some((_, parent)) = rbd.iter_mut().find(|(s, _)| &s.name == p) {
                            parent.snaps.push(RbdSnapshot {
                                name: snap.into(),
                                size: Bytes(GIB),
                                protected: true,
                                parent: None,
                                hidden: false,
                            });
                        }
                    }
                    rbd.push((ImageSpec::new("volumes", name.clone()), img));
                    prev = Some(name);
                }
            }
        }
        for (i, c) in self.cache.iter().enumerate() {
            let id = format!("66666666-6666-4666-8666-{i:012}");
            let mut v = Volume::new(id.as_str(), INTERNAL, GiB(c.size)).on_host(c.host.as_str());
            v.created_at = Timestamp::EPOCH.plus_seconds(100 + i as i64);
            rows.push(v);
            rbd.push((ImageSpec::new("volumes", format!("volume-{id}")), RbdImage::new(Bytes(c.size * GIB))));
            db.add_cache_entry(CacheEntry {
                image_id: IMAGE.into(),
                host: Some(Host::from(c.host.as_str())),
                cluster_name: None,
                volume_id: id.as_str().into(),
                size: GiB(c.size),
                image_updated_at: Timestamp::from_unix(if c.stale { UPDATED - 10 } else { UPDATED })
                    .unwrap_or(Timestamp::EPOCH),
                last_used: Timestamp::EPOCH.plus_seconds(c.last_used),
            });
        }
        if reverse {
            rows.reverse();
            rbd.reverse();
        }
        for r in rows {
            db.add_volume(r);
        }
        for (spec, img) in rbd {
            cluster.put_image(&spec, img);
        }
        let mut target = Volume::new(TARGET, self.project.as_str(), GiB(self.size)).on_host(self.target_host.as_str());
        target.status = VolumeStatus::Creating;
        if self.encrypted {
            target.encryption_key_id = Some("99999999-9999-4999-8999-999999999999".into());
        }
        db.add_volume(target);

        let mut image = Image::raw(IMAGE, "nobody", Bytes(GIB));
        image.owner = self.image_owner.clone().map(Into::into);
        image.disk_format = Some(self.disk_format.clone());
        image.container_format = Some(self.container_format.clone());
        image.virtual_size = self.virtual_gib.map(|g| Bytes(g * GIB));
        image.updated_at = Timestamp::from_unix(UPDATED).unwrap_or(Timestamp::EPOCH);
        let mut locations: Vec<LocationEntry> = self.rbd_urls.iter().map(|u| LocationEntry::url(u.as_str())).collect();
        locations.extend(self.image_volumes.iter().map(|v| LocationEntry::url(v.url.as_str())));
        image.locations = Some(locations.into());

        let journal = Journal::new();
        let images = MemoryImageService::new().with_journal(journal.clone());
        images.insert(image);
        let cluster = MemoryCluster::new(cluster)
            .with_journal(journal.clone())
            .with_capabilities(Capabilities { clone_across_pools: self.clone_across_pools })
            .with_conversion_free_bytes(self.free_bytes);

        let mut config = Config::default();
        config.backend.rbd_pool = "volumes".into();
        config.backend.rbd_max_clone_depth = self.max_clone_depth;
        config.backend.image_volume_cache_enabled = self.cache_enabled;
        config.backend.image_volume_cache_max_size_gb = self.cache_limits.0;
        config.backend.image_volume_cache_max_count = self.cache_limits.1;
        if self.cinder_scheme {
            config.allowed_direct_url_schemes = vec!["cinder".into()];
        }
        if self.internal_tenant {
            config.cinder_internal_tenant_project_id = Some(INTERNAL.into());
            config.cinder_internal_tenant_user_id = Some("internal-user".into());
        }
        let request = Request {
            operation: Operation::CreateFromImage { image_id: IMAGE.into() },
            volume_id: TARGET.into(),
            now: Timestamp::from_unix(UPDATED + 1000).unwrap_or(Timestamp::EPOCH),
        };
        SituationWorld { cluster, images, db, journal, config, request }
    }

    /// [`Situation::build_ordered`] in the generated order.
    pub fn build(&self) -> SituationWorld {
        self.build_ordered(false)
    }
}

/// A configuration with the options that steer the flow varied.
pub fn config() -> impl Strategy<Value = Config> {
    (-2i64..7, any::<bool>(), prop::sample::select(vec![1i64, 4, 8, 32]), any::<bool>(), 1i64..5, any::<bool>())
        .prop_map(|(depth, flatten, chunk, cache, retries, deferred)| {
            let mut c = Config::default();
            c.backend.rbd_max_clone_depth = depth;
            c.backend.rbd_flatten_volume_from_snapshot = flatten;
            c.backend.rbd_store_chunk_size = chunk;
            c.backend.image_volume_cache_enabled = cache;
            c.backend.rados_connection_retries = retries;
            c.backend.enable_deferred_deletion = deferred;
            c
        })
}
