//! # cinder-flow
//!
//! OpenStack Cinder's volume-creation decision flow as a pure, explainable
//! planner, with an async shell that gathers facts and executes plans.
//!
//! Cinder decides how to build a volume through a long chain of checks: an
//! image's `rbd://` locations are tried for a copy-on-write clone in the same
//! Ceph cluster, then `cinder://` image volumes on the same host that the
//! tenant may use, then the image-volume cache, then a download. RBD clone
//! chains are flattened at `rbd_max_clone_depth`. Deletes have their own
//! rules. This crate reproduces those decisions exactly as Cinder 29.0.0
//! makes them (the [`planner`] follows upstream's functions call for call),
//! returns them as a [`plan::Plan`], and explains every alternative it
//! rejected ([`explain`]).
//!
//! ## Facts → plan → execute
//!
//! ```
//! use cinder_flow::config::Config;
//! use cinder_flow::explain::render_plan;
//! use cinder_flow::memory::{MemoryCluster, MemoryImageService, MemoryVolumeDb};
//! use cinder_flow::model::{GiB, Timestamp, Volume, VolumeStatus};
//! use cinder_flow::plan::Operation;
//! use cinder_flow::planner::{Planning, Policy, Request};
//! use cinder_flow::rbd::Cluster;
//! use cinder_flow::shell::{self, Backends, ExecOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Backends: your own Driver / ImageService / VolumeDb, or the in-memory ones.
//! let mut cluster = Cluster::new("fsid-1");
//! cluster.add_pool("rbd");
//! let driver = MemoryCluster::new(cluster);
//! let images = MemoryImageService::new();
//! let db = MemoryVolumeDb::new();
//! let mut vol = Volume::new("11111111-1111-4111-8111-111111111111", "project-1", GiB(10)).on_host("hostA@ceph#ceph");
//! vol.status = VolumeStatus::Creating;
//! db.add_volume(vol.clone());
//! let backends = Backends { driver: &driver, images: &images, db: &db };
//!
//! // Decide: gather facts through the ports and plan (pure, deterministic).
//! let request = Request { operation: Operation::CreateVolume, volume_id: vol.id.clone(), now: Timestamp::EPOCH };
//! let (plan, facts) = shell::plan(backends, &request, &Config::default(), &Policy::faithful()).await.unwrap();
//! println!("{}", render_plan(&plan));
//!
//! // The facts are serialisable: the same facts always give the same plan.
//! let again = cinder_flow::planner::plan(&request, &facts, &Config::default(), &Policy::faithful()).unwrap();
//! assert!(matches!(again, Planning::Done(p) if *p == plan));
//!
//! // Execute it; a step that does not do what the plan expects is undone.
//! shell::execute(&plan, backends, &ExecOptions::default()).await.unwrap();
//! assert_eq!(db.get_volume(&vol.id).unwrap().status, VolumeStatus::Available);
//! # }
//! ```
//!
//! ## Implementing a port
//!
//! A service plugs its own backends in behind [`Driver`], [`ImageService`]
//! and [`VolumeDb`] (the [`prelude`] has what an implementation needs).
//! Here, a Glance stand-in that serves images from a catalogue of its own:
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//!
//! use cinder_flow::prelude::*;
//!
//! /// Images from a fixed catalogue; downloads are not offered.
//! #[derive(Debug, Default)]
//! struct Catalogue(BTreeMap<ImageId, Arc<Image>>);
//!
//! #[async_trait]
//! impl ImageService for Catalogue {
//!     async fn show(&self, image_id: &ImageId) -> BackendResult<Arc<Image>> {
//!         self.0.get(image_id).cloned().ok_or_else(|| {
//!             BackendError::new(BackendErrorKind::NotFound, format!("show image {image_id}"))
//!         })
//!     }
//!
//!     async fn locations(&self, image_id: &ImageId) -> BackendResult<Arc<[LocationEntry]>> {
//!         // As a Glance without the service-only location API answers.
//!         Err(BackendError::new(BackendErrorKind::NotSupported, format!("locations of {image_id}")))
//!     }
//!
//!     async fn download(&self, image_id: &ImageId) -> BackendResult<DownloadedImage> {
//!         Err(BackendError::new(BackendErrorKind::NotSupported, format!("download {image_id}")))
//!     }
//!
//!     async fn add_location(&self, image_id: &ImageId, _: &LocationEntry, _: LocationApi) -> BackendResult<()> {
//!         Err(BackendError::new(BackendErrorKind::NotSupported, format!("add a location to {image_id}")))
//!     }
//!
//!     async fn remove_location(&self, image_id: &ImageId, _: &str) -> BackendResult<()> {
//!         Err(BackendError::new(BackendErrorKind::NotSupported, format!("remove a location of {image_id}")))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let catalogue = Catalogue::default();
//! let err = catalogue.show(&ImageId::from("nope")).await.unwrap_err();
//! assert_eq!(err.kind, BackendErrorKind::NotFound);
//! # }
//! ```
//!
//! The testing kit (feature `testing`) checks that a [`Driver`] behaves as
//! the plans expect of librbd (`testing::driver_suite`).
//!
//! ## Cargo features
//!
//! | feature | what it adds |
//! |---|---|
//! | `testing` | the testing kit: proptest strategies for whole situations, the port conformance suites |
//! | `rbd` | `librbd::RbdDriver`, the [`Driver`] on a real Ceph cluster (needs the librbd-dev, librados-dev and libclang-dev packages at build time) |
//! | `glance` | `glance::GlanceImageService`, the [`ImageService`] on Glance's v2 HTTP API (reqwest with rustls, tokio) |
//! | `sql` | `sql::SqlVolumeDb`, the [`VolumeDb`] on Cinder's own MySQL/MariaDB or SQLite database (sqlx, tokio) |
//! | `etcd` | `etcd::EtcdCoordinator`: the locks Cinder takes, held on etcd across processes and hosts (etcd-client; needs protoc) |
//! | `cli` | the `cinder-flow` binary: `cinder-flow explain`, offline on scenarios or live and read-only against a cloud (clap; takes `rbd`, `sql`, `glance`) |
//!
//! ## Layers
//!
//! * [`model`], [`config`]: plain data and Cinder's options.
//! * [`location`]: image-location parsing, exactly as upstream.
//! * [`rbd`], [`tables`]: pure models of librbd and of Cinder's database,
//!   used to predict and to simulate.
//! * [`planner`], [`plan`], [`explain`], [`facts`]: the pure core; every
//!   planner speaks one protocol ([`Decide`]).
//! * [`ports`], [`shell`]: the async traits and the gather/execute shell.
//! * [`memory`]: in-memory backends. [`glance_store`]: Glance's RBD store.
//! * `sql` (cargo feature `sql`): the [`VolumeDb`] over Cinder's own database.
//!
//! docs/ARCHITECTURE.md in the package explains the design.
#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_code)]

pub mod config;
#[doc(hidden)]
pub mod conformance;
pub mod coordination;
pub mod error;
mod escape;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod explain;
pub mod facts;
#[cfg(feature = "glance")]
pub mod glance;
pub mod glance_store;
#[cfg(feature = "rbd")]
pub mod librbd;
pub mod location;
pub mod memory;
pub mod model;
pub mod plan;
pub mod planner;
pub mod ports;
mod pyvalue;
pub mod rbd;
mod serde_map;
pub mod shell;
#[cfg(feature = "sql")]
pub mod sql;
pub mod tables;
#[cfg(feature = "testing")]
pub mod testing;
mod trace;

pub use config::Config;
pub use error::{BackendError, BackendErrorKind, ErrorClass};
pub use facts::{Fact, Facts, Need};
pub use plan::{Operation, Outcome, Plan};
pub use planner::{Decide, PlanError, Planner, Planning, Policy, Request};
pub use ports::{Driver, ImageService, VolumeDb};
pub use shell::{Backends, ExecOptions, GatherError};

/// What an implementation of the ports needs: the traits, the types their
/// methods take and return, and `async_trait`.
pub mod prelude {
    pub use async_trait::async_trait;

    pub use crate::error::{BackendError, BackendErrorKind};
    pub use crate::facts::{CacheLocation, Capabilities, ClusterInfo, HostInfo, ProjectUsage};
    pub use crate::model::{
        Bytes, CacheEntry, Image, ImageId, LocationApi, LocationEntry, ProjectId, Service, Snapshot, SnapshotId,
        Volume, VolumeId, VolumeType,
    };
    pub use crate::plan::DbWrite;
    pub use crate::ports::{BackendResult, DownloadedImage, Driver, ImageService, VolumeDb};
    pub use crate::rbd::{ImageInfo, ImageSpec, RbdOp};
}

/// Not part of the API: Python's value rules as the crate models them,
/// reachable only for the crate's own differential tests and fuzz targets.
/// Anything here may change in any release.
#[doc(hidden)]
pub mod internals {
    pub use crate::pyvalue::{is_uuid_like, parse_py_float, parse_py_int, py_strip, urlsplit, SplitUrl};
}
