//! Glance images as Cinder sees them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Bytes, GiB, ImageId, ProjectId, Timestamp};

/// One entry of an image's `locations` list (`{url, metadata}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationEntry {
    /// The location URL; Glance can hand out entries without one. Shared
    /// (`Arc<str>`), so that copies of a location list do not copy the
    /// text.
    pub url: Option<Arc<str>>,
    /// Location metadata, e.g. `{"store": "ceph"}` with multistore.
    #[serde(default)]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

impl LocationEntry {
    /// An entry with a URL and no metadata.
    pub fn url(url: impl Into<Arc<str>>) -> Self {
        Self { url: Some(url.into()), metadata: BTreeMap::new() }
    }
}

/// A Glance v2 image record (`GET /v2/images/{id}`), with the attributes the
/// flows read. Custom properties sit in `properties` as Glance puts them at
/// the top level.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// `id`
    pub id: ImageId,
    /// Owning project; `None` when Glance reports none.
    pub owner: Option<ProjectId>,
    /// `status`, e.g. `active`.
    pub status: String,
    /// `visibility`
    pub visibility: String,
    /// `container_format`, e.g. `bare`.
    pub container_format: Option<String>,
    /// `disk_format`, e.g. `raw`, `qcow2`.
    pub disk_format: Option<String>,
    /// Stored size in bytes.
    pub size: Option<Bytes>,
    /// Virtual (disk) size in bytes, when Glance knows it.
    pub virtual_size: Option<Bytes>,
    /// `min_disk` in GiB.
    pub min_disk: GiB,
    /// `min_ram` in MiB.
    pub min_ram: u64,
    /// `created_at`
    pub created_at: Timestamp,
    /// `updated_at`: compared with image-cache entries.
    pub updated_at: Timestamp,
    /// `direct_url` (shown by the legacy API only with
    /// `show_image_direct_url`).
    pub direct_url: Option<String>,
    /// `locations` as the legacy GET shows them (`None` when hidden).
    pub locations: Option<Arc<[LocationEntry]>>,
    /// Custom properties, e.g. `cinder_img_volume_type`.
    pub properties: BTreeMap<String, serde_json::Value>,
}

impl Image {
    /// A minimal active raw/bare image, for tests and examples.
    pub fn raw(id: impl Into<ImageId>, owner: impl Into<ProjectId>, size: Bytes) -> Self {
        Self {
            id: id.into(),
            owner: Some(owner.into()),
            status: "active".into(),
            visibility: "private".into(),
            container_format: Some("bare".into()),
            disk_format: Some("raw".into()),
            size: Some(size),
            virtual_size: Some(size),
            min_disk: GiB(0),
            min_ram: 0,
            created_at: Timestamp::EPOCH,
            updated_at: Timestamp::EPOCH,
            direct_url: None,
            locations: Some(Arc::from([])),
            properties: BTreeMap::new(),
        }
    }

    /// The disk format, or `""` when absent (upstream compares with `==`).
    pub fn disk_format(&self) -> &str {
        self.disk_format.as_deref().unwrap_or("")
    }

    /// The container format, or `""` when absent.
    pub fn container_format(&self) -> &str {
        self.container_format.as_deref().unwrap_or("")
    }

    /// A custom property as a string, when it is one.
    pub fn property_str(&self, key: &str) -> Option<&str> {
        self.properties.get(key).and_then(serde_json::Value::as_str)
    }
}

/// Which Glance location API answered (`GlanceImageService.get_location`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocationApi {
    /// The service-only location API (`get_image_locations`) exists.
    New,
    /// It answers HTTP 501; only the legacy GET is available.
    Legacy,
}

/// What `GlanceImageService.get_location` hands the manager:
/// `(direct_url, locations)`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageLocation {
    /// The `direct_url` (only from the legacy GET, and only when truthy).
    pub direct_url: Option<String>,
    /// The location entries, in Glance's order.
    pub locations: Vec<LocationEntry>,
}
