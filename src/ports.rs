//! The ports: what the shell needs from a storage backend, Glance and
//! Cinder's database. Each is an object-safe `async` trait (`Send + Sync`),
//! so services can hold them as `Arc<dyn Driver>` and test suites can swap
//! in the in-memory backends of [`crate::memory`].
//!
//! Every method reports failures as a [`BackendError`] with a semantic
//! [`BackendErrorKind`](crate::error::BackendErrorKind); the planner's rules decide what a kind means
//! (e.g. "not found" on opening a location means "not cloneable").

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::BackendError;
use crate::facts::{CacheLocation, Capabilities, ClusterInfo, HostInfo, ProjectUsage};
use crate::model::{
    Bytes, CacheEntry, Image, ImageId, LocationApi, LocationEntry, ProjectId, Service, Snapshot, SnapshotId, Volume,
    VolumeId, VolumeType,
};
use crate::plan::DbWrite;
use crate::rbd::{ImageInfo, ImageSpec, RbdOp};

/// Result of a port call.
pub type BackendResult<T> = Result<T, BackendError>;

/// A volume backend at librbd's level of detail: the reads the planner
/// needs and the cluster-changing calls plans are made of.
///
/// Failure contract: a missing image, snapshot or pool is
/// `NotFound`/`PoolNotFound`, never a panic or an empty success; a call
/// that fails changes nothing.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Driver: Send + Sync + std::fmt::Debug {
    /// Cluster facts. `Unavailable` when the cluster cannot be reached.
    async fn cluster_info(&self) -> BackendResult<ClusterInfo>;

    /// Whether a pool exists.
    async fn pool_exists(&self, pool: &str) -> BackendResult<bool>;

    /// An image with its snapshots and each snapshot's children; `None` when
    /// the image does not exist (also not in the trash). `PoolNotFound` when
    /// the pool does not exist.
    async fn image_info(&self, image: &ImageSpec) -> BackendResult<Option<ImageInfo>>;

    /// Performs one cluster-changing call. For [`RbdOp::Import`] the data is
    /// read from `source` (the file a download produced).
    async fn apply(&self, op: &RbdOp, source: Option<DownloadedImage>) -> BackendResult<()>;

    /// Capabilities the driver reports to the scheduler.
    async fn capabilities(&self) -> BackendResult<Capabilities>;

    /// Facts about the volume host (free conversion space).
    async fn host_info(&self) -> BackendResult<HostInfo>;
}

/// A downloaded image in the conversion directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadedImage {
    /// The image.
    pub image_id: ImageId,
    /// The local file, raw after conversion (`None` for backends that keep
    /// no file, like the in-memory one).
    pub path: Option<PathBuf>,
    /// Its size in bytes.
    pub size: Bytes,
    /// The format qemu-img detected before conversion.
    pub detected_format: String,
}

/// Glance.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait ImageService: Send + Sync + std::fmt::Debug {
    /// `GET /v2/images/{id}`: `NotFound` when absent or not visible.
    ///
    /// Shared (`Arc`): the record goes into the [`Facts`](crate::facts::Facts)
    /// as it is, so a service that caches images hands out the same record
    /// without copying it (an image may have thousands of locations).
    async fn show(&self, image_id: &ImageId) -> BackendResult<Arc<Image>>;

    /// The service-only location API (`get_image_locations`):
    /// `NotSupported` when Glance answers 501, `PermissionDenied` for 403.
    /// Shared, like [`ImageService::show`].
    async fn locations(&self, image_id: &ImageId) -> BackendResult<Arc<[LocationEntry]>>;

    /// Downloads the image and converts it to raw in the conversion
    /// directory.
    async fn download(&self, image_id: &ImageId) -> BackendResult<DownloadedImage>;

    /// Adds a location to an image (what `GlanceImageService.add_location`
    /// asks Glance for), through one of Glance's two location APIs:
    ///
    /// * [`LocationApi::New`]: `POST /v2/images/{id}/locations` (Glance ≥
    ///   2024.2, API 2.17). Glance takes it only while the image is `queued`
    ///   (`Busy` after, HTTP 409), needs the `service` role for non-http
    ///   URLs, and takes no location metadata (`Rejected` when some is
    ///   given). The image becomes `active`. Glance adds the location
    ///   asynchronously; this returns once it is visible. `NotSupported`
    ///   when Glance lacks the API.
    /// * [`LocationApi::Legacy`]: the JSON-patch `add` at the end of
    ///   `/locations` (needs `show_multiple_locations`); the image must be
    ///   `active` or `queued` (`Busy` otherwise); a queued image becomes
    ///   `active`.
    ///
    /// Either way a URL the image already has is `Rejected`, and so is one
    /// that no store Glance has enabled accepts (Glance checks that the
    /// location exists: a `cinder://` volume through Cinder's API, an
    /// `rbd://` snapshot on its cluster). Cinder tries the new API and falls
    /// back to the legacy one only on `NotSupported`; callers choose.
    async fn add_location(&self, image_id: &ImageId, location: &LocationEntry, api: LocationApi) -> BackendResult<()>;

    /// Removes the location with this URL (the legacy JSON-patch `remove`,
    /// as glanceclient's `delete_locations` does it): `NotFound` when the
    /// image has no such location; `PermissionDenied` for the image's last
    /// location (Glance refuses to remove it) and for callers without the
    /// admin role; `Busy` unless the image is `active`.
    async fn remove_location(&self, image_id: &ImageId, url: &str) -> BackendResult<()>;
}

/// Cinder's database.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait VolumeDb: Send + Sync + std::fmt::Debug {
    /// A visible (not deleted) volume row. Shared (`Arc`): rows go into the
    /// [`Facts`](crate::facts::Facts) as they are.
    async fn volume(&self, id: &VolumeId) -> BackendResult<Option<Arc<Volume>>>;

    /// Visible rows among `ids`, any order (shared, like
    /// [`VolumeDb::volume`]).
    async fn volumes(&self, ids: &[VolumeId]) -> BackendResult<Vec<Arc<Volume>>>;

    /// A snapshot row.
    async fn snapshot(&self, id: &SnapshotId) -> BackendResult<Option<Snapshot>>;

    /// The snapshot rows (not deleted) of a volume, any order: what
    /// `volume.api.API.delete` checks (`volume_has_snapshots_filter`) before
    /// it deletes a volume, e.g. an image-cache volume.
    async fn snapshots_of_volume(&self, volume_id: &VolumeId) -> BackendResult<Vec<Snapshot>>;

    /// A volume type by name or id.
    async fn volume_type(&self, name_or_id: &str) -> BackendResult<Option<VolumeType>>;

    /// All service rows.
    async fn services(&self) -> BackendResult<Vec<Service>>;

    /// The id of the project's default volume type (the `default_volume_types`
    /// row), `None` when the project has none.
    async fn project_default_volume_type(&self, project_id: &ProjectId) -> BackendResult<Option<String>>;

    /// The project's quota usage: its visible volumes and snapshots that
    /// count against quota (`use_quota`), as Cinder's quota sync counts them.
    async fn project_usage(&self, project_id: &ProjectId) -> BackendResult<ProjectUsage>;

    /// Image-cache rows of an image, any host, any order.
    async fn cache_entries_of_image(&self, image_id: &ImageId) -> BackendResult<Vec<CacheEntry>>;

    /// Image-cache rows at an exact location, any order.
    async fn cache_entries_at(&self, location: &CacheLocation) -> BackendResult<Vec<CacheEntry>>;

    /// A fresh, unused volume id.
    async fn new_volume_id(&self) -> BackendResult<VolumeId>;

    /// Performs one write (the `previous` values some writes carry are for
    /// undo and are not checked).
    async fn write(&self, write: &DbWrite) -> BackendResult<()>;
}
