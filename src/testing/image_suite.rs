//! A conformance suite for [`ImageService`] implementations: the Glance
//! behaviour the planner and the executor rely on (image records, both
//! location APIs and their rules, downloads).
//!
//! The suite needs a way to put images into the service under test, which
//! the port does not have: an [`ImageFixture`]. [`MemoryImageFixture`] is
//! the one for [`MemoryImageService`]; the tests against a real Glance
//! (`tests/real_cloud/glance.rs`) bring one that creates images through
//! Glance's API. Every check makes its own images with ids that start with
//! a fresh UUID, so a service may hold other images.
//!
//! ```
//! use cinder_flow::memory::MemoryImageService;
//! use cinder_flow::testing::image_suite::{self, MemoryImageFixture};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let glance = MemoryImageService::new();
//! let failures = image_suite::run_all(&glance, &MemoryImageFixture(&glance)).await;
//! assert!(failures.is_empty(), "{failures:#?}");
//! # }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::BackendErrorKind;
use crate::memory::MemoryImageService;
use crate::model::{Bytes, GiB, Image, ImageId, LocationApi, LocationEntry, Timestamp};
use crate::ports::{BackendResult, ImageService};

pub use super::driver_suite::SuiteFailure;

/// Data for an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SuiteData {
    /// These bytes, disk format `raw`.
    Raw(Vec<u8>),
    /// An empty qcow2 image of this virtual size (bytes), disk format
    /// `qcow2`.
    Qcow2 {
        /// Virtual size in bytes.
        virtual_size: u64,
    },
}

/// Puts images into the service under test.
#[async_trait]
pub trait ImageFixture: Send + Sync {
    /// Adds `image` as a `queued` image without data or locations. Only the
    /// attributes a Glance client may set count: id, owner, visibility,
    /// container and disk format, `min_disk`, `min_ram`, custom properties.
    async fn create(&self, image: &Image) -> Result<(), String>;

    /// Adds `image` with `data` uploaded: the service makes it `active` and
    /// knows its size and virtual size.
    async fn create_with_data(&self, image: &Image, data: &SuiteData) -> Result<(), String>;

    /// The `n`-th of distinct location URLs the service accepts for
    /// [`ImageService::add_location`] (a real Glance checks that they exist).
    async fn location(&self, n: usize) -> Result<String, String>;
}

/// The fixture for [`MemoryImageService`].
#[derive(Debug)]
pub struct MemoryImageFixture<'a>(pub &'a MemoryImageService);

#[async_trait]
impl ImageFixture for MemoryImageFixture<'_> {
    async fn create(&self, image: &Image) -> Result<(), String> {
        let mut image = image.clone();
        image.status = "queued".into();
        image.size = None;
        image.virtual_size = None;
        image.direct_url = None;
        image.locations = Some(Arc::from([]));
        self.0.insert(image);
        Ok(())
    }

    async fn create_with_data(&self, image: &Image, data: &SuiteData) -> Result<(), String> {
        let mut image = image.clone();
        image.status = "active".into();
        image.direct_url = None;
        image.locations = Some(Arc::from([]));
        let (size, virtual_size, format) = match data {
            SuiteData::Raw(bytes) => (bytes.len() as u64, bytes.len() as u64, "raw"),
            // The stored size of a qcow2 file is not modelled: any small one.
            SuiteData::Qcow2 { virtual_size } => (196_616, *virtual_size, "qcow2"),
        };
        image.size = Some(Bytes(size));
        image.virtual_size = Some(Bytes(virtual_size));
        image.disk_format = Some(format.into());
        self.0.insert(image);
        Ok(())
    }

    async fn location(&self, n: usize) -> Result<String, String> {
        Ok(format!("cinder://00000000-0000-4000-8000-{n:012x}"))
    }
}

type Check = Result<(), String>;

/// A record with every settable attribute set, under a fresh id.
pub fn sample_image(tag: &str) -> Image {
    let id = uuid::Uuid::new_v4().to_string();
    let mut image = Image::raw(id, "suite-project", Bytes(0));
    image.container_format = Some("bare".into());
    image.disk_format = Some("raw".into());
    image.min_disk = GiB(3);
    image.min_ram = 512;
    image.visibility = "private".into();
    image.created_at = Timestamp::EPOCH;
    image.updated_at = Timestamp::EPOCH;
    image.properties = BTreeMap::from([
        ("cinder_img_volume_type".to_owned(), serde_json::Value::String("suite-type".into())),
        ("suite_check".to_owned(), serde_json::Value::String(tag.into())),
    ]);
    image
}

fn expect_kind<T: std::fmt::Debug>(what: &str, r: BackendResult<T>, kinds: &[BackendErrorKind]) -> Check {
    match r {
        Err(e) if kinds.contains(&e.kind) => Ok(()),
        Err(e) => Err(format!("{what}: failed with {}, expected {kinds:?} ({e})", e.kind)),
        Ok(v) => Err(format!("{what}: succeeded with {v:?}, expected {kinds:?}")),
    }
}

fn urls(list: &[LocationEntry]) -> Vec<&str> {
    list.iter().map(|l| l.url.as_deref().unwrap_or("<none>")).collect()
}

async fn shown_locations(s: &dyn ImageService, id: &ImageId) -> Result<Vec<String>, String> {
    let image = s.show(id).await.map_err(|e| format!("show {id}: {e}"))?;
    let list = image.locations.as_deref().ok_or_else(|| format!("show {id} hides the locations"))?;
    Ok(urls(list).into_iter().map(str::to_owned).collect())
}

/// An image nobody created: `show`, `locations`, `download`, and both
/// location writes are `NotFound` (`locations` may instead be
/// `NotSupported`).
pub async fn missing_image_is_not_found(s: &dyn ImageService, fx: &dyn ImageFixture) -> Check {
    use BackendErrorKind::*;
    let id = ImageId::new(uuid::Uuid::new_v4().to_string());
    expect_kind("show", s.show(&id).await, &[NotFound])?;
    expect_kind("locations", s.locations(&id).await, &[NotFound, NotSupported])?;
    expect_kind("download", s.download(&id).await, &[NotFound])?;
    let url = fx.location(90).await?;
    expect_kind(
        "add_location",
        s.add_location(&id, &LocationEntry::url(url.as_str()), LocationApi::Legacy).await,
        &[NotFound],
    )?;
    expect_kind("remove_location", s.remove_location(&id, &url).await, &[NotFound])
}

/// `show` gives back what was set: owner, visibility, formats, `min_disk`,
/// `min_ram` and custom properties, status `queued`, no size, no locations.
pub async fn record_round_trips(s: &dyn ImageService, fx: &dyn ImageFixture) -> Check {
    let want = sample_image("record");
    fx.create(&want).await?;
    let got = s.show(&want.id).await.map_err(|e| format!("show: {e}"))?;
    let pairs = [
        ("id", format!("{}", want.id), format!("{}", got.id)),
        ("owner", format!("{:?}", want.owner), format!("{:?}", got.owner)),
        ("visibility", want.visibility.clone(), got.visibility.clone()),
        ("container_format", format!("{:?}", want.container_format), format!("{:?}", got.container_format)),
        ("disk_format", format!("{:?}", want.disk_format), format!("{:?}", got.disk_format)),
        ("min_disk", format!("{:?}", want.min_disk), format!("{:?}", got.min_disk)),
        ("min_ram", format!("{}", want.min_ram), format!("{}", got.min_ram)),
        ("properties", format!("{:?}", want.properties), format!("{:?}", got.properties)),
        ("status", "queued".into(), got.status.clone()),
        ("size", "None".into(), format!("{:?}", got.size)),
        ("direct_url", "None".into(), format!("{:?}", got.direct_url)),
        ("locations", "[]".into(), format!("{:?}", got.locations.as_deref().map(urls).unwrap_or_default())),
    ];
    let diffs: Vec<String> =
        pairs.iter().filter(|(_, w, g)| w != g).map(|(k, w, g)| format!("{k}: set {w}, shown {g}")).collect();
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("; "))
    }
}

/// The legacy JSON-patch API: `add` appends and activates a queued image,
/// a duplicate URL is `Rejected`, `remove` takes the entry out, an absent
/// URL is `NotFound`, and the last location cannot be removed
/// (`PermissionDenied`). `show` and `locations` agree.
pub async fn legacy_location_rules(s: &dyn ImageService, fx: &dyn ImageFixture) -> Check {
    use BackendErrorKind::*;
    let image = sample_image("legacy");
    fx.create(&image).await?;
    let id = &image.id;
    let (a, b) = (fx.location(0).await?, fx.location(1).await?);
    let add = |url: &str| LocationEntry::url(url);
    s.add_location(id, &add(&a), LocationApi::Legacy).await.map_err(|e| format!("add {a}: {e}"))?;
    let shown = s.show(id).await.map_err(|e| e.to_string())?;
    if shown.status != "active" {
        return Err(format!("after the first location the image is {}, not active", shown.status));
    }
    expect_kind("adding a duplicate", s.add_location(id, &add(&a), LocationApi::Legacy).await, &[Rejected])?;
    s.add_location(id, &add(&b), LocationApi::Legacy).await.map_err(|e| format!("add {b}: {e}"))?;
    let listed = shown_locations(s, id).await?;
    if listed != [a.clone(), b.clone()] {
        return Err(format!("locations {listed:?} after adding {a} and {b}"));
    }
    match s.locations(id).await {
        Ok(list) if urls(&list) == [a.as_str(), b.as_str()] => {}
        Err(e) if e.kind == NotSupported => {}
        other => return Err(format!("the location API lists {other:?}, the image shows {listed:?}")),
    }
    s.remove_location(id, &a).await.map_err(|e| format!("remove {a}: {e}"))?;
    let listed = shown_locations(s, id).await?;
    if listed != [b.clone()] {
        return Err(format!("locations {listed:?} after removing {a}"));
    }
    expect_kind("removing an absent location", s.remove_location(id, &a).await, &[NotFound])?;
    expect_kind("removing the last location", s.remove_location(id, &b).await, &[PermissionDenied])
}

/// The new location API: the image becomes `active` with the location;
/// only while the image is `queued` (`Busy` after); no metadata
/// (`Rejected`). A service without the API answers `NotSupported`, which
/// passes.
pub async fn new_location_api_rules(s: &dyn ImageService, fx: &dyn ImageFixture) -> Check {
    use BackendErrorKind::*;
    let image = sample_image("new-api");
    fx.create(&image).await?;
    let id = &image.id;
    let (a, b) = (fx.location(2).await?, fx.location(3).await?);
    match s.add_location(id, &LocationEntry::url(a.as_str()), LocationApi::New).await {
        Err(e) if e.kind == NotSupported => return Ok(()),
        other => other.map_err(|e| format!("add {a}: {e}"))?,
    }
    let shown = s.show(id).await.map_err(|e| e.to_string())?;
    let listed = shown.locations.as_deref().map(urls).unwrap_or_default();
    if shown.status != "active" || listed != [a.as_str()] {
        return Err(format!("after the new API the image is {} with {listed:?}", shown.status));
    }
    let mut with_metadata = LocationEntry::url(b.as_str());
    with_metadata.metadata.insert("store".into(), serde_json::Value::String("x".into()));
    expect_kind("the new API with metadata", s.add_location(id, &with_metadata, LocationApi::New).await, &[Rejected])?;
    expect_kind(
        "the new API on an active image",
        s.add_location(id, &LocationEntry::url(b.as_str()), LocationApi::New).await,
        &[Busy],
    )
}

/// A raw download: its size is the data's and its format `raw`; a file,
/// when the service writes one, holds exactly the data.
pub async fn download_raw(s: &dyn ImageService, fx: &dyn ImageFixture) -> Check {
    let data: Vec<u8> = (0..(3 << 20) + 17).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let image = sample_image("raw");
    fx.create_with_data(&image, &SuiteData::Raw(data.clone())).await?;
    let shown = s.show(&image.id).await.map_err(|e| e.to_string())?;
    let n = Some(Bytes(data.len() as u64));
    if shown.status != "active" || shown.size != n || shown.virtual_size != n {
        return Err(format!("uploaded image is {} of size {:?}/{:?}", shown.status, shown.size, shown.virtual_size));
    }
    let got = s.download(&image.id).await.map_err(|e| format!("download: {e}"))?;
    if got.size != Bytes(data.len() as u64) || got.detected_format != "raw" {
        return Err(format!("downloaded {} {}, uploaded raw {}", got.detected_format, got.size, data.len()));
    }
    if let Some(path) = &got.path {
        let file = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let _ = std::fs::remove_file(path);
        if file != data {
            return Err(format!("{} does not hold the uploaded bytes", path.display()));
        }
    }
    Ok(())
}

/// A qcow2 download: detected as `qcow2`, converted to raw of the virtual
/// size.
pub async fn download_qcow2(s: &dyn ImageService, fx: &dyn ImageFixture) -> Check {
    let virtual_size = 16 << 20;
    let mut image = sample_image("qcow2");
    image.disk_format = Some("qcow2".into());
    fx.create_with_data(&image, &SuiteData::Qcow2 { virtual_size }).await?;
    let shown = s.show(&image.id).await.map_err(|e| e.to_string())?;
    if shown.virtual_size != Some(Bytes(virtual_size)) {
        return Err(format!("uploaded qcow2 shows virtual size {:?}", shown.virtual_size));
    }
    let got = s.download(&image.id).await.map_err(|e| format!("download: {e}"))?;
    if got.size != Bytes(virtual_size) || got.detected_format != "qcow2" {
        return Err(format!("downloaded {} {}, uploaded qcow2 of {virtual_size}", got.detected_format, got.size));
    }
    if let Some(path) = &got.path {
        let len = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len();
        let _ = std::fs::remove_file(path);
        if len != virtual_size {
            return Err(format!("the converted file has {len} bytes, not {virtual_size}"));
        }
    }
    Ok(())
}

/// Every check, in order: the failures (empty when the service conforms).
pub async fn run_all(s: &dyn ImageService, fx: &dyn ImageFixture) -> Vec<SuiteFailure> {
    let mut failures = Vec::new();
    macro_rules! run {
        ($($name:ident),*) => {
            $(
                if let Err(detail) = $name(s, fx).await {
                    failures.push(SuiteFailure { check: stringify!($name), detail });
                }
            )*
        };
    }
    run!(
        missing_image_is_not_found,
        record_round_trips,
        legacy_location_rules,
        new_location_api_rules,
        download_raw,
        download_qcow2
    );
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_service_conforms() {
        let glance = MemoryImageService::new();
        let failures = run_all(&glance, &MemoryImageFixture(&glance)).await;
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[tokio::test]
    async fn the_memory_service_without_the_new_api_conforms() {
        let glance = MemoryImageService::new().with_location_api(LocationApi::Legacy);
        let failures = run_all(&glance, &MemoryImageFixture(&glance)).await;
        assert!(failures.is_empty(), "{failures:#?}");
    }

    /// The suite can fail: a service that forgets the last-location rule
    /// is caught.
    #[tokio::test]
    async fn a_broken_service_fails() {
        #[derive(Debug)]
        struct Lenient(MemoryImageService);
        #[async_trait]
        impl ImageService for Lenient {
            async fn show(&self, id: &ImageId) -> BackendResult<Arc<Image>> {
                self.0.show(id).await
            }
            async fn locations(&self, id: &ImageId) -> BackendResult<Arc<[LocationEntry]>> {
                self.0.locations(id).await
            }
            async fn download(&self, id: &ImageId) -> BackendResult<crate::ports::DownloadedImage> {
                self.0.download(id).await
            }
            async fn add_location(&self, id: &ImageId, l: &LocationEntry, api: LocationApi) -> BackendResult<()> {
                self.0.add_location(id, l, api).await
            }
            async fn remove_location(&self, _: &ImageId, _: &str) -> BackendResult<()> {
                Ok(())
            }
        }
        let glance = Lenient(MemoryImageService::new());
        let failures = run_all(&glance, &MemoryImageFixture(&glance.0)).await;
        let checks: Vec<_> = failures.iter().map(|f| f.check).collect();
        assert_eq!(checks, ["missing_image_is_not_found", "legacy_location_rules"], "{failures:#?}");
    }
}
