//! Work the planner would otherwise repeat on every round of fact
//! gathering: classifying an image's location URLs and looking up the
//! image volumes they name. The memo is a cache of a pure function of the
//! facts (each entry records the facts it was computed from), so it cannot
//! change a decision.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::location::{may_be_cinder, rbd_fsid, CinderLocation, CinderLocationError, RbdLocation, RbdLocationError};
use crate::model::{ImageId, LocationEntry, Volume, VolumeId};

/// What `_is_cloneable` can tell about a location before any I/O.
#[derive(Clone, Debug)]
pub(crate) enum DriverVerdict {
    /// The entry has no URL.
    NoUrl,
    /// `_parse_location` rejects it.
    Unparseable(RbdLocationError),
    /// Another cluster's fsid.
    OtherCluster,
    /// Same cluster: the rest of the checks need facts.
    SameCluster(RbdLocation),
}

/// One URL of the driver-clone candidate list.
#[derive(Clone, Debug)]
pub(crate) struct DriverCandidate {
    pub(crate) url: Option<Arc<str>>,
    pub(crate) verdict: DriverVerdict,
}

/// `RBDDriver.clone_image`'s URL list classified against one fsid.
#[derive(Debug)]
pub(crate) struct DriverCandidates {
    /// The cluster fsid the list was classified against.
    pub(crate) fsid: String,
    /// Every URL, in the order upstream tries them.
    pub(crate) all: Vec<DriverCandidate>,
    /// Indices of the same-cluster ones, in order.
    pub(crate) same_cluster: Vec<usize>,
}

/// `_clone_image_volume`'s candidate URLs and the ids they name.
#[derive(Debug)]
pub(crate) struct CinderCandidates {
    /// The URLs upstream does not skip, in list order (direct URL first).
    pub(crate) urls: Vec<CinderCandidate>,
    /// The ids, sorted and unique (the `IN` filter).
    pub(crate) ids: Vec<VolumeId>,
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
struct ImageMemo {
    driver: Option<Arc<DriverCandidates>>,
    cinder: Option<Arc<CinderCandidates>>,
    /// The visible rows of the cinder ids, ordered as the database returns
    /// them (`created_at` desc, `id` desc).
    rows: Option<Arc<Vec<Arc<Volume>>>>,
}

/// Per-image derived data, valid for one set of image facts.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    images: Mutex<BTreeMap<ImageId, ImageMemo>>,
}

impl Memo {
    fn with<R>(&self, image_id: &ImageId, f: impl FnOnce(&mut ImageMemo) -> R) -> R {
        let mut images = self.images.lock().unwrap_or_else(PoisonError::into_inner);
        f(images.entry(image_id.clone()).or_default())
    }

    /// Forgets what was derived from an image's facts.
    pub(crate) fn forget_image(&self, image_id: &ImageId) {
        self.images.lock().unwrap_or_else(PoisonError::into_inner).remove(image_id);
    }

    /// Forgets what was derived from volume rows.
    pub(crate) fn forget_rows(&self) {
        for m in self.images.lock().unwrap_or_else(PoisonError::into_inner).values_mut() {
            m.rows = None;
        }
    }

    /// `RBDDriver.clone_image`'s URL list (the locations' URLs when the list
    /// is non-empty, else the direct URL, RBD-10), each classified by
    /// `_parse_location` and the fsid check (RBD-5, RBD-6).
    pub(crate) fn driver_candidates(
        &self,
        image_id: &ImageId,
        direct_url: Option<&str>,
        locations: &[LocationEntry],
        fsid: &str,
    ) -> Arc<DriverCandidates> {
        if let Some(d) = self.with(image_id, |m| m.driver.clone()).filter(|d| d.fsid == fsid) {
            return d;
        }
        let urls: Vec<Option<&str>> =
            if locations.is_empty() { vec![direct_url] } else { locations.iter().map(|l| l.url.as_deref()).collect() };
        let mut all = Vec::with_capacity(urls.len());
        let mut same_cluster = Vec::new();
        for (i, u) in urls.into_iter().enumerate() {
            let verdict = match u.filter(|u| !u.is_empty()) {
                None => DriverVerdict::NoUrl,
                Some(u) => match rbd_fsid(u) {
                    Err(e) => DriverVerdict::Unparseable(e),
                    Ok(f) if f != fsid => DriverVerdict::OtherCluster,
                    Ok(_) => match RbdLocation::parse(u) {
                        Ok(loc) => {
                            same_cluster.push(i);
                            DriverVerdict::SameCluster(loc)
                        }
                        Err(e) => DriverVerdict::Unparseable(e),
                    },
                },
            };
            all.push(DriverCandidate { url: u.map(Arc::from), verdict });
        }
        let d = Arc::new(DriverCandidates { fsid: fsid.to_owned(), all, same_cluster });
        self.with(image_id, |m| m.driver = Some(d.clone()));
        d
    }

    /// `_clone_image_volume`'s URL set (`{direct_url} ∪ {loc.url}`, CIV-3)
    /// with each URL parsed as `_extract_cinder_ids` does (CIV-4), URLs of
    /// other schemes left out. A URL listed twice is kept twice: the set
    /// upstream builds only changes how often a rejection is logged, and the
    /// ids are made unique.
    pub(crate) fn cinder_candidates(
        &self,
        image_id: &ImageId,
        direct_url: Option<&str>,
        locations: &[LocationEntry],
    ) -> Arc<CinderCandidates> {
        if let Some(c) = self.with(image_id, |m| m.cinder.clone()) {
            return c;
        }
        let all = std::iter::once((None, direct_url))
            .chain(locations.iter().enumerate().map(|(i, l)| (Some(i), l.url.as_deref())));
        let mut urls = Vec::new();
        for (index, url) in all {
            let Some(url) = url.filter(|u| !u.is_empty() && may_be_cinder(u)) else { continue };
            match CinderLocation::parse(url) {
                Err(CinderLocationError::NotCinder { .. }) => {}
                parsed => urls.push(CinderCandidate { index, url: Arc::from(url), parsed }),
            }
        }
        let mut ids: Vec<VolumeId> =
            urls.iter().filter_map(|c| c.parsed.as_ref().ok()).map(|l| l.volume_id.clone()).collect();
        ids.sort_unstable();
        ids.dedup();
        let c = Arc::new(CinderCandidates { urls, ids });
        self.with(image_id, |m| m.cinder = Some(c.clone()));
        c
    }

    /// The rows of `ids`, computed once by `compute`.
    pub(crate) fn candidate_rows<E>(
        &self,
        image_id: &ImageId,
        compute: impl FnOnce() -> Result<Vec<Arc<Volume>>, E>,
    ) -> Result<Arc<Vec<Arc<Volume>>>, E> {
        if let Some(r) = self.with(image_id, |m| m.rows.clone()) {
            return Ok(r);
        }
        let rows = Arc::new(compute()?);
        self.with(image_id, |m| m.rows = Some(rows.clone()));
        Ok(rows)
    }
}
