//! Work the planner would otherwise repeat on every round of fact
//! gathering: parsing an image's location URLs. The memo is a cache of a
//! pure function of the facts, so it cannot change a decision.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use crate::location::{CinderLocation, CinderLocationError, RbdLocation, RbdLocationError};
use crate::model::{ImageId, LocationEntry};

/// One URL of the driver-clone candidate list, parsed as `rbd://`.
#[derive(Clone, Debug)]
pub(crate) struct DriverCandidate {
    pub(crate) url: Option<Arc<str>>,
    pub(crate) parsed: Option<Result<RbdLocation, RbdLocationError>>,
}

/// One URL of the image-volume candidate set that upstream does not simply
/// skip (a `cinder` scheme, or a URL whose split raises).
#[derive(Clone, Debug)]
pub(crate) struct CinderCandidate {
    /// Position in the locations list; `None` for the direct URL.
    pub(crate) index: Option<usize>,
    pub(crate) url: Arc<str>,
    pub(crate) parsed: Result<CinderLocation, CinderLocationError>,
}

#[derive(Debug, Default)]
pub(crate) struct ImageMemo {
    driver: Option<Arc<Vec<DriverCandidate>>>,
    cinder: Option<Arc<Vec<CinderCandidate>>>,
}

/// Per-image parse results, valid for one set of image facts.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    images: Mutex<BTreeMap<ImageId, ImageMemo>>,
}

impl Memo {
    /// Forgets what was derived from an image's facts.
    pub(crate) fn forget(&self, image_id: &ImageId) {
        self.images.lock().unwrap_or_else(PoisonError::into_inner).remove(image_id);
    }

    /// `RBDDriver.clone_image`'s URL list: the locations' URLs when the list
    /// is non-empty, else the direct URL (RBD-10).
    pub(crate) fn driver_candidates(
        &self,
        image_id: &ImageId,
        direct_url: Option<&str>,
        locations: &[LocationEntry],
    ) -> Arc<Vec<DriverCandidate>> {
        if let Some(d) =
            self.images.lock().unwrap_or_else(PoisonError::into_inner).get(image_id).and_then(|m| m.driver.clone())
        {
            return d;
        }
        let urls: Vec<Option<&str>> =
            if locations.is_empty() { vec![direct_url] } else { locations.iter().map(|l| l.url.as_deref()).collect() };
        let list: Vec<DriverCandidate> = urls
            .into_iter()
            .map(|u| match u.filter(|u| !u.is_empty()) {
                Some(u) => DriverCandidate { url: Some(Arc::from(u)), parsed: Some(RbdLocation::parse(u)) },
                None => DriverCandidate { url: u.map(Arc::from), parsed: None },
            })
            .collect();
        let rc = Arc::new(list);
        self.images.lock().unwrap_or_else(PoisonError::into_inner).entry(image_id.clone()).or_default().driver =
            Some(rc.clone());
        rc
    }

    /// `_clone_image_volume`'s URL set (`{direct_url} ∪ {loc.url}`, CIV-3)
    /// with each URL parsed as `_extract_cinder_ids` does (CIV-4), first
    /// occurrences only, URLs of other schemes left out.
    pub(crate) fn cinder_candidates(
        &self,
        image_id: &ImageId,
        direct_url: Option<&str>,
        locations: &[LocationEntry],
    ) -> Arc<Vec<CinderCandidate>> {
        if let Some(c) =
            self.images.lock().unwrap_or_else(PoisonError::into_inner).get(image_id).and_then(|m| m.cinder.clone())
        {
            return c;
        }
        let mut seen: HashSet<&str> = HashSet::new();
        let all = std::iter::once((None, direct_url))
            .chain(locations.iter().enumerate().map(|(i, l)| (Some(i), l.url.as_deref())));
        let mut list = Vec::new();
        for (index, url) in all {
            let Some(url) = url.filter(|u| !u.is_empty()) else { continue };
            if !seen.insert(url) {
                continue;
            }
            match CinderLocation::parse(url) {
                Err(CinderLocationError::NotCinder { .. }) => {}
                parsed => list.push(CinderCandidate { index, url: Arc::from(url), parsed }),
            }
        }
        let rc = Arc::new(list);
        self.images.lock().unwrap_or_else(PoisonError::into_inner).entry(image_id.clone()).or_default().cinder =
            Some(rc.clone());
        rc
    }
}
