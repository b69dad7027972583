//! The thin async shell: gather facts through the ports, plan, execute.
//!
//! ```
//! use cinder_flow::config::Config;
//! use cinder_flow::memory::{MemoryCluster, MemoryImageService, MemoryVolumeDb};
//! use cinder_flow::model::{GiB, Timestamp, Volume, VolumeStatus};
//! use cinder_flow::plan::{Operation, Outcome};
//! use cinder_flow::planner::{Policy, Request};
//! use cinder_flow::rbd::Cluster;
//! use cinder_flow::shell::{self, Backends, ExecOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut cluster = Cluster::new("fsid-1");
//! cluster.add_pool("rbd");
//! let driver = MemoryCluster::new(cluster);
//! let images = MemoryImageService::new();
//! let db = MemoryVolumeDb::new();
//! let mut vol = Volume::new("11111111-1111-4111-8111-111111111111", "project-1", GiB(10)).on_host("hostA@ceph#ceph");
//! vol.status = VolumeStatus::Creating;
//! db.add_volume(vol.clone());
//!
//! let backends = Backends { driver: &driver, images: &images, db: &db };
//! let request = Request { operation: Operation::CreateVolume, volume_id: vol.id.clone(), now: Timestamp::EPOCH };
//! let (plan, _facts) = shell::plan(backends, &request, &Config::default(), &Policy::faithful()).await.unwrap();
//! assert_eq!(plan.outcome, Outcome::Success);
//! shell::execute(&plan, backends, &ExecOptions::default()).await.unwrap();
//! assert_eq!(db.get_volume(&vol.id).unwrap().status, VolumeStatus::Available);
//! # }
//! ```

mod api;
mod exec;
mod gather;
mod leftover;
mod locked;
mod undo;

pub use api::{api_request, api_request_from};
pub use exec::{execute, outcome_error, Diverged, ErrorMark, ExecOptions, Report, StepEffect, Undone};
pub use gather::{drive, fetch, plan, plan_from, Backends, GatherError};
pub use leftover::{ImageState, Leftover, RowState, SnapshotState};
pub use locked::{acquire, run, run_with, Fenced, Held, Ran, RunError};
