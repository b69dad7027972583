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
//! ## Layers
//!
//! * [`model`], [`config`]: plain data and Cinder's options.
//! * [`location`]: image-location parsing, exactly as upstream.
//! * [`rbd`]: a pure model of librbd, used to predict and to simulate.
//! * [`planner`], [`plan`], [`explain`], [`facts`]: the pure core.
//! * [`ports`], [`shell`]: the async traits and the gather/execute shell.
//! * [`memory`]: in-memory backends; [`conformance`]: the vector runner.
#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub mod conformance;
pub mod error;
pub mod explain;
pub mod facts;
pub mod glance_store;
#[cfg(feature = "rbd")]
pub mod librbd;
pub mod location;
pub mod memory;
pub mod model;
pub mod plan;
pub mod planner;
pub mod ports;
pub mod rbd;
pub mod shell;
pub mod tables;
#[cfg(feature = "testing")]
pub mod testing;
mod trace;
