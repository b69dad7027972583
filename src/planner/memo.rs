//! Work the planner would otherwise repeat on every round of fact
//! gathering: classifying an image's location URLs and looking up the
//! image volumes they name. The memo is a cache of a pure function of the
//! facts (each entry records the facts it was computed from), so it cannot
//! change a decision.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::location::{
    may_be_cinder, CinderLocation, CinderLocationError, RbdFsid, RbdLocation, RbdLocationError, UrlScan,
};
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
    /// Same cluster: the rest of the checks need facts. The location is
    /// `same_cluster[n].1`.
    SameCluster(usize),
}

/// `RBDDriver.clone_image`'s URL list classified against one fsid.
#[derive(Debug)]
pub(crate) struct DriverCandidates {
    /// The cluster fsid the list was classified against.
    pub(crate) fsid: String,
    /// The URL of the list when it is the direct URL alone (the locations
    /// list is empty); otherwise the URLs are the locations' own.
    direct: Option<Arc<str>>,
    /// A verdict per URL, in the order upstream tries them.
    pub(crate) verdicts: Vec<DriverVerdict>,
    /// The same-cluster ones, in order: index in the list and location.
    pub(crate) same_cluster: Vec<(usize, RbdLocation)>,
}

impl DriverCandidates {
    fn new(
        fsid: &str,
        direct_url: Option<&str>,
        locations: &[LocationEntry],
        verdicts: Vec<DriverVerdict>,
        same_cluster: Vec<(usize, RbdLocation)>,
    ) -> Self {
        let direct = if locations.is_empty() { direct_url.map(Arc::from) } else { None };
        Self { fsid: fsid.to_owned(), direct, verdicts, same_cluster }
    }

    /// Whether the list is the direct URL alone.
    pub(crate) fn has_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// The direct URL, when the list is the direct URL alone.
    pub(crate) fn url_of_direct(&self) -> Option<Arc<str>> {
        self.direct.clone()
    }

    /// The URL at `index` of the list, shared; `locations` is the list the
    /// candidates were classified from.
    pub(crate) fn url(&self, index: usize, locations: &[LocationEntry]) -> Option<Arc<str>> {
        if locations.is_empty() {
            self.direct.clone()
        } else {
            locations.get(index).and_then(|l| l.url.clone())
        }
    }
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
    /// Every id of `cinder` is known to the facts (volume facts are only
    /// ever added, so this stays true until the image facts change).
    cinder_ids_known: bool,
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
        let (verdicts, same_cluster, _) = classify(direct_url, locations, Some(fsid), false);
        let d = Arc::new(DriverCandidates::new(fsid, direct_url, locations, verdicts, same_cluster));
        self.with(image_id, |m| m.driver = Some(d.clone()));
        d
    }

    /// `_clone_image_volume`'s URL set (`{direct_url} ∪ {loc.url}`, CIV-3)
    /// with each URL parsed as `_extract_cinder_ids` does (CIV-4), URLs of
    /// other schemes left out. A URL listed twice is kept twice: the set
    /// upstream builds only changes how often a rejection is logged, and the
    /// ids are made unique.
    ///
    /// With the cluster's `fsid` known, the same pass over the URLs also
    /// classifies them for the driver clone ([`Memo::driver_candidates`]),
    /// so that each URL is read once per decision.
    pub(crate) fn cinder_candidates(
        &self,
        image_id: &ImageId,
        direct_url: Option<&str>,
        locations: &[LocationEntry],
        fsid: Option<&str>,
    ) -> Arc<CinderCandidates> {
        if let Some(c) = self.with(image_id, |m| m.cinder.clone()) {
            return c;
        }
        let have_driver = match fsid {
            Some(f) => self.with(image_id, |m| m.driver.as_ref().is_some_and(|d| d.fsid == f)),
            None => true,
        };
        let fsid = fsid.filter(|_| !have_driver);
        let (verdicts, same_cluster, cinder) = classify(direct_url, locations, fsid, true);
        let c = Arc::new(cinder);
        self.with(image_id, |m| {
            m.cinder = Some(c.clone());
            if let Some(fsid) = fsid {
                m.driver = Some(Arc::new(DriverCandidates::new(fsid, direct_url, locations, verdicts, same_cluster)));
            }
        });
        c
    }

    /// Whether every id of the image's cinder candidates is known to be in
    /// the facts (see [`Memo::set_cinder_ids_known`]).
    pub(crate) fn cinder_ids_known(&self, image_id: &ImageId) -> bool {
        self.with(image_id, |m| m.cinder_ids_known && m.cinder.is_some())
    }

    /// Records that every id of the image's cinder candidates is in the
    /// facts.
    pub(crate) fn set_cinder_ids_known(&self, image_id: &ImageId) {
        self.with(image_id, |m| m.cinder_ids_known = m.cinder.is_some());
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

/// What [`classify`] finds: the driver's verdicts and same-cluster
/// locations, and the image-volume candidates.
type Classified = (Vec<DriverVerdict>, Vec<(usize, RbdLocation)>, CinderCandidates);

/// One pass over an image's URLs: the driver-clone classification against
/// `fsid` (when given; empty otherwise) and the image-volume candidates
/// (when `cinder`; empty otherwise). Each URL is scanned once
/// ([`UrlScan`]) for both.
fn classify(direct_url: Option<&str>, locations: &[LocationEntry], fsid: Option<&str>, cinder: bool) -> Classified {
    let ours = fsid.map(RbdFsid::new);
    let mut verdicts = Vec::with_capacity(if ours.is_some() { locations.len().max(1) } else { 0 });
    let mut same_cluster = Vec::new();
    let mut urls = Vec::new();
    // The driver's list is the direct URL alone when there are no
    // locations; the image-volume set puts the direct URL first.
    if let (Some(ours), true) = (&ours, locations.is_empty()) {
        verdicts.push(driver_verdict(0, direct_url, None, ours, &mut same_cluster));
    }
    if cinder {
        if let Some(d) = direct_url.filter(|d| may_be_cinder(d)) {
            cinder_candidate(None, d, None, &mut urls);
        }
    }
    for (i, l) in locations.iter().enumerate() {
        let url = l.url.as_deref();
        let scan = url.map(UrlScan::new);
        if let Some(ours) = &ours {
            verdicts.push(driver_verdict(i, url, scan.as_ref(), ours, &mut same_cluster));
        }
        if let (true, Some(u), Some(scan)) = (cinder, url, &scan) {
            if scan.may_be_cinder(u) {
                cinder_candidate(Some(i), u, l.url.as_ref(), &mut urls);
            }
        }
    }
    let mut ids: Vec<VolumeId> =
        urls.iter().filter_map(|c| c.parsed.as_ref().ok()).map(|l| l.volume_id.clone()).collect();
    // Stable sort: it merges runs already in order in linear time and is
    // no slower on ids in no order.
    ids.sort();
    ids.dedup();
    (verdicts, same_cluster, CinderCandidates { urls, ids })
}

/// `_is_cloneable`'s verdict on one URL before any I/O (`scan` is the
/// URL's, when made); a same-cluster location is parsed whole and kept.
#[inline(always)]
fn driver_verdict(
    i: usize,
    url: Option<&str>,
    scan: Option<&UrlScan>,
    ours: &RbdFsid<'_>,
    same_cluster: &mut Vec<(usize, RbdLocation)>,
) -> DriverVerdict {
    let Some(u) = url.filter(|u| !u.is_empty()) else { return DriverVerdict::NoUrl };
    let matches = match scan {
        Some(scan) => scan.rbd_fsid_is(u, ours),
        None => ours.matches(u),
    };
    match matches {
        Ok(false) => DriverVerdict::OtherCluster,
        Err(e) => DriverVerdict::Unparseable(e),
        Ok(true) => same_cluster_verdict(i, u, same_cluster),
    }
}

/// A location of this cluster: parsed whole for the checks that need facts.
#[cold]
fn same_cluster_verdict(i: usize, url: &str, same_cluster: &mut Vec<(usize, RbdLocation)>) -> DriverVerdict {
    match RbdLocation::parse(url) {
        Ok(loc) => {
            same_cluster.push((i, loc));
            DriverVerdict::SameCluster(same_cluster.len() - 1)
        }
        Err(e) => DriverVerdict::Unparseable(e),
    }
}

/// A URL that [`may_be_cinder`]: parsed as `_extract_cinder_ids` does and
/// kept unless its scheme turns out not to be `cinder` (`shared` is the
/// location's own copy of `url`, when it has one).
#[cold]
fn cinder_candidate(index: Option<usize>, url: &str, shared: Option<&Arc<str>>, urls: &mut Vec<CinderCandidate>) {
    match CinderLocation::parse(url) {
        Err(CinderLocationError::NotCinder { .. }) => {}
        parsed => {
            let url = shared.cloned().unwrap_or_else(|| Arc::from(url));
            urls.push(CinderCandidate { index, url, parsed });
        }
    }
}
