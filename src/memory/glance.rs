//! A Glance stand-in behind the [`ImageService`] port.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use crate::error::{BackendError, BackendErrorKind};
use crate::model::{Bytes, Image, ImageId, LocationApi, LocationEntry};
use crate::ports::{BackendResult, DownloadedImage, ImageService};

use super::{Fault, FaultInjector, FaultMode, Journal, JournalEntry};

/// Images in memory, answering like Glance v2.
///
/// With [`LocationApi::New`] the location API returns the image's
/// `locations`; with [`LocationApi::Legacy`] it answers "not implemented"
/// (HTTP 501) and only the GET is available; adding a location through the
/// new API is then `NotSupported` too. Locations are added and removed with
/// Glance's rules (see [`ImageService::add_location`]), without checking
/// that a URL points at anything. A download "produces" a raw
/// file of the image's virtual size (or its size when Glance does not know
/// the virtual size), in the image's disk format.
#[derive(Debug)]
///
/// Records are kept shared: [`ImageService::show`] and
/// [`ImageService::locations`] hand out the stored `Arc`s without copying.
pub struct MemoryImageService {
    images: Mutex<BTreeMap<ImageId, Stored>>,
    location_api: LocationApi,
    journal: Journal,
    faults: FaultInjector,
}

/// An image and its location list, shared.
#[derive(Debug)]
struct Stored {
    image: Arc<Image>,
    locations: Arc<[LocationEntry]>,
}

impl MemoryImageService {
    /// An empty service with the new location API.
    pub fn new() -> Self {
        Self {
            images: Mutex::new(BTreeMap::new()),
            location_api: LocationApi::New,
            journal: Journal::new(),
            faults: FaultInjector::new(),
        }
    }

    /// Uses this location API.
    pub fn with_location_api(mut self, api: LocationApi) -> Self {
        self.location_api = api;
        self
    }

    /// Records downloads in `journal`.
    pub fn with_journal(mut self, journal: Journal) -> Self {
        self.journal = journal;
        self
    }

    /// Injects download faults from `faults`.
    pub fn with_faults(mut self, faults: FaultInjector) -> Self {
        self.faults = faults;
        self
    }

    /// Adds or replaces an image.
    pub fn insert(&self, image: impl Into<Arc<Image>>) {
        let image: Arc<Image> = image.into();
        // The same list for both APIs, shared.
        let locations: Arc<[LocationEntry]> = image.locations.clone().unwrap_or_else(|| Arc::from([]));
        self.images
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(image.id.clone(), Stored { image, locations });
    }

    /// Changes an image's location list under the lock: `change` gets the
    /// image and its current list and returns the new list and status, or
    /// the error; the image keeps its other fields.
    fn edit_locations(
        &self,
        id: &ImageId,
        operation: impl Fn() -> String,
        change: impl FnOnce(&Image, &[LocationEntry]) -> Result<(Vec<LocationEntry>, String), BackendError>,
    ) -> BackendResult<()> {
        let fault = self.faults.tick();
        if let Some(Fault { kind, mode: FaultMode::Fail }) = fault {
            return Err(BackendError::new(kind, operation()));
        }
        let lost = fault.map(|f| BackendError::new(f.kind, operation()));
        let mut images = self.images.lock().unwrap_or_else(PoisonError::into_inner);
        let edited = match images.get_mut(id) {
            None => Err(BackendError::new(BackendErrorKind::NotFound, operation())),
            Some(stored) => change(&stored.image, &stored.locations).map(|edit| (stored, edit)),
        };
        // A lost reply reports the injected error whatever Glance did.
        let (stored, (list, status)) = match edited {
            Ok(done) => done,
            Err(refused) => return Err(lost.unwrap_or(refused)),
        };
        let locations: Arc<[LocationEntry]> = list.into();
        let mut image = (*stored.image).clone();
        image.status = status;
        // The legacy GET shows the same list (when it shows one).
        if image.locations.is_some() {
            image.locations = Some(locations.clone());
        }
        *stored = Stored { image: Arc::new(image), locations };
        lost.map_or(Ok(()), Err)
    }

    fn get<T>(&self, id: &ImageId, f: impl FnOnce(&Stored) -> T) -> BackendResult<T> {
        self.images
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .map(f)
            .ok_or_else(|| BackendError::new(BackendErrorKind::NotFound, format!("image {id}")))
    }
}

impl Default for MemoryImageService {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl ImageService for MemoryImageService {
    async fn show(&self, image_id: &ImageId) -> BackendResult<Arc<Image>> {
        self.get(image_id, |s| s.image.clone())
    }

    async fn locations(&self, image_id: &ImageId) -> BackendResult<Arc<[LocationEntry]>> {
        match self.location_api {
            LocationApi::Legacy => {
                Err(BackendError::new(BackendErrorKind::NotSupported, format!("locations of image {image_id}")))
            }
            LocationApi::New => self.get(image_id, |s| s.locations.clone()),
        }
    }

    async fn download(&self, image_id: &ImageId) -> BackendResult<DownloadedImage> {
        // A lost reply of a download leaves at most a local file, which
        // this backend does not keep: both modes look the same.
        if let Some(Fault { kind, .. }) = self.faults.tick() {
            self.journal.push(JournalEntry::Download { image_id: image_id.clone(), result: Err(kind) });
            return Err(BackendError::new(kind, format!("download image {image_id}")));
        }
        let result = self.get(image_id, |s| s.image.clone());
        self.journal.push(JournalEntry::Download {
            image_id: image_id.clone(),
            result: result.as_ref().map(|_| ()).map_err(|e| e.kind),
        });
        let image = result?;
        Ok(DownloadedImage {
            image_id: image_id.clone(),
            path: None,
            size: image.virtual_size.or(image.size).unwrap_or(Bytes(0)),
            detected_format: image.disk_format().to_owned(),
        })
    }

    async fn add_location(&self, image_id: &ImageId, location: &LocationEntry, api: LocationApi) -> BackendResult<()> {
        let shown = location.url.as_deref().unwrap_or("<no URL>");
        let operation = || format!("add location {shown} to image {image_id}");
        // Refused up front, as Glance's request validation does.
        let Some(url) = location.url.as_deref() else {
            return Err(BackendError::new(BackendErrorKind::Rejected, operation()).with_detail("no URL"));
        };
        if api == LocationApi::New && !location.metadata.is_empty() {
            return Err(BackendError::new(BackendErrorKind::Rejected, operation())
                .with_detail("the new location API takes no metadata"));
        }
        if api == LocationApi::New && self.location_api == LocationApi::Legacy {
            return Err(BackendError::new(BackendErrorKind::NotSupported, operation()));
        }
        self.edit_locations(image_id, operation, |image, current| {
            let allowed = match api {
                LocationApi::New => image.status == "queued",
                LocationApi::Legacy => matches!(image.status.as_str(), "queued" | "active"),
            };
            if !allowed {
                return Err(BackendError::new(BackendErrorKind::Busy, operation())
                    .with_detail(format!("image is {}", image.status)));
            }
            if current.iter().any(|l| l.url.as_deref() == Some(url)) {
                return Err(
                    BackendError::new(BackendErrorKind::Rejected, operation()).with_detail("duplicate location")
                );
            }
            let mut list = current.to_vec();
            list.push(location.clone());
            Ok((list, "active".to_owned()))
        })
    }

    async fn remove_location(&self, image_id: &ImageId, url: &str) -> BackendResult<()> {
        let operation = || format!("remove location {url} from image {image_id}");
        self.edit_locations(image_id, operation, |image, current| {
            let at = current
                .iter()
                .position(|l| l.url.as_deref() == Some(url))
                .ok_or_else(|| BackendError::new(BackendErrorKind::NotFound, operation()))?;
            if image.status != "active" {
                return Err(BackendError::new(BackendErrorKind::Busy, operation())
                    .with_detail(format!("image is {}", image.status)));
            }
            if current.len() == 1 {
                return Err(BackendError::new(BackendErrorKind::PermissionDenied, operation())
                    .with_detail("cannot remove the last location"));
            }
            let mut list = current.to_vec();
            list.remove(at);
            Ok((list, image.status.clone()))
        })
    }
}
