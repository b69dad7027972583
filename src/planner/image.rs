//! Volumes from images: `_create_from_image` and everything it calls
//! (IMG-1..8, CIV-1..7, CACHE-1..8, DL-1..8 of docs/RULES.md).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::BackendErrorKind;
use crate::facts::CacheLocation;
use crate::facts::Need;
use crate::location::{CinderLocationError, RbdLocationError};
use crate::model::{
    Bytes, CacheEntry, GiB, HostFilter, Image, ImageId, LocationEntry, Name, Volume, VolumeStatus, GIB,
};
use crate::plan::{Action, CreatePath, DbWrite, DownloadExpectation, ErrorClass, Source, VolumeUpdate};
use crate::rbd::ImageSpec;
use crate::trace::{Formats, HostMismatch, OwnerMismatch, Reason, Stage, StaleEntry, Subject, Verdict};

use super::ctx::{current, raise, set_volume, Ctx, Flow, Raised};
use super::memo::{CinderCandidates, DriverCandidates, DriverVerdict};
use super::CandidateScope;
use super::Stop;

/// What `GlanceImageService.get_location` returns: `(direct_url,
/// locations)`.
pub(crate) struct ImageLocation<'a> {
    pub(crate) direct_url: Option<&'a str>,
    pub(crate) locations: &'a [LocationEntry],
}

/// `ceil(float(bytes) / units.Gi)` as `image_utils.check_virtual_size`
/// computes it (through a float, as upstream does).
pub(crate) fn gib_ceil_float(bytes: Bytes) -> u64 {
    ((bytes.0 as f64) / (GIB as f64)).ceil() as u64
}

/// `image_utils.check_virtual_size`: the virtual size in GiB, or
/// `ImageUnacceptable` when it exceeds the volume.
fn check_virtual_size(virtual_size: Bytes, volume_size: GiB, image_id: &ImageId) -> Flow<u64> {
    let gib = gib_ceil_float(virtual_size);
    if gib > volume_size.0 {
        return raise(
            ErrorClass::ImageUnacceptable,
            format!(
                "Image {image_id} is unacceptable: Image virtual size is {gib}GB and doesn't fit in a volume of size {}GB.",
                volume_size.0
            ),
        );
    }
    Ok(gib)
}

/// `GlanceImageService.get_location` (MGR-5).
fn get_location<'a>(ctx: &mut Ctx<'a>, image_id: &ImageId) -> Flow<ImageLocation<'a>> {
    match ctx.image_locations(image_id)? {
        Ok(list) if !list.is_empty() => {
            ctx.locations = Some(Arc::clone(list));
            return Ok(ImageLocation { direct_url: None, locations: list });
        }
        Ok(_) => {}
        Err(BackendErrorKind::NotSupported | BackendErrorKind::PermissionDenied) => {}
        Err(BackendErrorKind::NotFound) => {
            return raise(ErrorClass::ImageNotFound, format!("Image {image_id} could not be found."))
        }
        Err(k) => return raise(ErrorClass::ImageNotFound, format!("Glance location API failed for {image_id}: {k}")),
    }
    // Legacy GET.
    let image = match ctx.image(image_id)? {
        Ok(i) => i,
        Err(BackendErrorKind::NotFound) => {
            return raise(ErrorClass::ImageNotFound, format!("Image {image_id} could not be found."))
        }
        Err(k) => return raise(ErrorClass::ImageNotFound, format!("Glance failed for {image_id}: {k}")),
    };
    match image.direct_url.as_deref() {
        Some(d) if !d.is_empty() => {
            if let Some(list) = &image.locations {
                ctx.locations = Some(Arc::clone(list));
            }
            Ok(ImageLocation { direct_url: Some(d), locations: image.locations.as_deref().unwrap_or(&[]) })
        }
        _ => Ok(ImageLocation { direct_url: None, locations: &[] }),
    }
}

/// `ExtractVolumeSpecTask` for an image: `get_location`, then `show`.
pub(crate) fn extract_image_spec<'a>(ctx: &mut Ctx<'a>, image_id: &ImageId) -> Flow<(ImageLocation<'a>, &'a Image)> {
    let location = get_location(ctx, image_id)?;
    let image = match ctx.image(image_id)? {
        Ok(i) => i,
        Err(BackendErrorKind::NotFound) => {
            return raise(ErrorClass::ImageNotFound, format!("Image {image_id} could not be found."))
        }
        Err(k) => return raise(ErrorClass::ImageNotFound, format!("Glance failed for {image_id}: {k}")),
    };
    Ok((location, image))
}

/// `_create_from_image` (IMG-1..8).
pub(crate) fn create_from_image(
    ctx: &mut Ctx<'_>,
    volume: &Volume,
    image_id: &ImageId,
    location: ImageLocation<'_>,
    image: &Image,
) -> Flow<()> {
    let vsubject = Subject::Volume { volume_id: volume.id.clone() };

    // IMG-2: up-front virtual size check.
    if let Some(vs) = image.virtual_size.filter(|v| v.0 != 0) {
        if let Err(e) = check_virtual_size(vs, volume.size, image_id) {
            ctx.rejected(
                Stage::Checks,
                Subject::Image { image_id: image_id.clone() },
                Reason::ImageTooLarge { virtual_size: vs, volume_size: volume.size },
            );
            return Err(e);
        }
    }
    let encrypted = volume.is_encrypted();
    let mut cloned = false;

    // IMG-4: the driver's clone_image (not for encrypted volumes).
    if encrypted {
        ctx.skipped(Stage::DriverClone, Reason::Encrypted);
    } else {
        cloned = driver_clone_image(ctx, volume, &location, image)?;
    }

    // IMG-5: the glance-cinder image-volume clone.
    if !cloned {
        if ctx.cfg.direct_url_scheme_allowed("cinder") {
            cloned = clone_image_volume(ctx, volume, &location, image)?;
        } else {
            ctx.skipped(Stage::ImageVolumeClone, Reason::SchemeNotAllowed);
        }
    }

    // IMG-6: prepare a cache entry (creates the volume on a miss).
    let cache_enabled = ctx.cfg.backend.image_volume_cache_enabled;
    if !cloned {
        if !cache_enabled {
            ctx.skipped(Stage::ImageCache, Reason::CacheDisabled);
        } else if encrypted {
            ctx.skipped(Stage::ImageCache, Reason::Encrypted);
        } else {
            cloned = prepare_image_cache_entry(ctx, volume, image)?;
        }
    }

    // IMG-7: cache or download.
    if !cloned {
        create_from_image_cache_or_download(ctx, volume, image, false)?;
    }

    // IMG-8: bootable + glance metadata.
    let cur = current(ctx, volume)?;
    set_volume(ctx, &cur, VolumeUpdate { bootable: Some(true), ..Default::default() })?;
    ctx.db_write(DbWrite::SetGlanceMetadata { volume_id: volume.id.clone(), metadata: glance_metadata(image) })?;
    ctx.noted(Stage::Finish, vsubject, Reason::Note { text: "marked bootable; image metadata stored".into() });
    Ok(())
}

/// `volume_utils.get_volume_image_metadata`: what `_capture_volume_image_metadata` stores.
fn glance_metadata(image: &Image) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("image_id".to_owned(), image.id.to_string());
    if let Some(f) = &image.container_format {
        m.insert("container_format".into(), f.clone());
    }
    if let Some(f) = &image.disk_format {
        m.insert("disk_format".into(), f.clone());
    }
    m.insert("min_disk".into(), image.min_disk.0.to_string());
    m.insert("min_ram".into(), image.min_ram.to_string());
    if let Some(s) = image.size {
        m.insert("size".into(), s.0.to_string());
    }
    for (k, v) in &image.properties {
        match v {
            serde_json::Value::Null => {}
            serde_json::Value::String(s) => {
                m.insert(k.clone(), s.clone());
            }
            other => {
                m.insert(k.clone(), other.to_string());
            }
        }
    }
    m
}

// ------------------------------------------------------------------ driver clone

/// `RBDDriver.clone_image` (RBD-9..11): the first cloneable location is
/// cloned and resized.
fn driver_clone_image(ctx: &mut Ctx<'_>, volume: &Volume, location: &ImageLocation<'_>, image: &Image) -> Flow<bool> {
    // The driver is initialised (checked before), so `_get_fsid` connects.
    let fsid = match ctx.cluster_info()? {
        Ok(c) => c.fsid.as_str(),
        Err(k) => {
            return raise(ErrorClass::VolumeBackendApiException, format!("Error connecting to ceph cluster ({k})"))
        }
    };
    let candidates = ctx.memo.driver_candidates(&image.id, location.direct_url, location.locations, fsid);
    let raw = image.disk_format.as_deref() == Some("raw");
    if raw {
        probe_same_cluster(ctx, &candidates)?;
    }
    if ctx.tracing() && !candidates.verdicts.is_empty() {
        ctx.noted(
            Stage::DriverClone,
            Subject::Path,
            Reason::Note { text: format!("this backend's Ceph cluster is {fsid}") },
        );
    }
    // Dry rounds only need the same-cluster locations; the others are
    // rejections for the trace.
    let order: Box<dyn Iterator<Item = usize>> = if ctx.tracing() {
        Box::new(0..candidates.verdicts.len())
    } else {
        Box::new(candidates.same_cluster.iter().map(|(i, _)| *i))
    };
    let direct = candidates.has_direct();
    for index in order {
        let verdict = &candidates.verdicts[index];
        // A location rejected for the reason its predecessor was joins the
        // predecessor's trace entry (a run): images can list thousands of
        // locations of other clusters.
        if !direct
            && index > 0
            && same_rejection(&candidates.verdicts[index - 1], verdict)
            && ctx.extend_location_run(Stage::DriverClone, index)
        {
            continue;
        }
        let subject = || match candidates.url_of_direct() {
            Some(url) => Subject::DirectUrl { url },
            None => Subject::Location { index },
        };
        let loc = match verdict {
            DriverVerdict::NoUrl => {
                ctx.rejected(Stage::DriverClone, subject(), Reason::NoLocation);
                continue;
            }
            DriverVerdict::Unparseable(e) => {
                let because = match e {
                    RbdLocationError::NotRbd => Reason::NotRbd,
                    RbdLocationError::BlankComponent => Reason::BlankComponent,
                    RbdLocationError::NotASnapshot { parts } => Reason::NotRbdSnapshot { parts: *parts },
                };
                ctx.rejected(Stage::DriverClone, subject(), because);
                continue;
            }
            DriverVerdict::OtherCluster => {
                ctx.rejected(Stage::DriverClone, subject(), Reason::OtherCluster);
                continue;
            }
            DriverVerdict::SameCluster(n) => &candidates.same_cluster[*n].1,
        };
        if let Some(loc) = ctx.is_cloneable(loc, image, &subject)? {
            ctx.chosen(Stage::DriverClone, subject());
            ctx.rbd_clone(volume, &loc.pool, &loc.image, &loc.snapshot)?;
            ctx.rbd_resize(volume, None)?;
            ctx.path = Some(CreatePath::DriverClone);
            ctx.source = Some(Source::RbdLocation {
                url: candidates.url(index, location.locations).as_deref().unwrap_or_default().to_owned(),
                pool: loc.pool.clone(),
                image: loc.image.clone(),
                snap: loc.snapshot.clone(),
            });
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether two driver verdicts are rejections made before any I/O for the
/// same reason (same-cluster locations are decided on facts, never equal).
fn same_rejection(a: &DriverVerdict, b: &DriverVerdict) -> bool {
    match (a, b) {
        (DriverVerdict::NoUrl, DriverVerdict::NoUrl) | (DriverVerdict::OtherCluster, DriverVerdict::OtherCluster) => {
            true
        }
        (DriverVerdict::Unparseable(x), DriverVerdict::Unparseable(y)) => x == y,
        _ => false,
    }
}

/// Asks, in one batch, for the images behind same-cluster locations whose
/// openability is unknown, from the first unknown one on: the shell reads
/// them in order and stops at the first that opens, as `clone_image` would.
fn probe_same_cluster(ctx: &mut Ctx<'_>, candidates: &DriverCandidates) -> Flow<()> {
    let facts = ctx.facts;
    let mut pending = Vec::new();
    for (_, loc) in &candidates.same_cluster {
        if pending.is_empty() {
            if facts.pools.get(loc.pool.as_str()) == Some(&false) {
                return Ok(()); // the flow raises there
            }
            let spec = ImageSpec::new(loc.pool.clone(), loc.image.clone());
            match facts.rbd_images.get(&spec) {
                Some(Some(info)) if info.image.readable && info.image.snap(&loc.snapshot).is_some() => return Ok(()),
                Some(_) => continue,
                None => {}
            }
        }
        pending.push(ImageSpec::new(loc.pool.clone(), loc.image.clone()).snap(loc.snapshot.clone()));
    }
    if pending.is_empty() {
        Ok(())
    } else {
        Err(Stop::Need(vec![Need::ProbeSnapshots { snaps: pending }]))
    }
}

// ------------------------------------------------------------------ image-volume clone

/// `_extract_cinder_ids` over the candidate URL set (CIV-3, CIV-4): the
/// candidates, with the rejected URLs recorded in the trace. A URL whose
/// split raises ends the flow with `ValueError`.
fn extract_cinder_ids(ctx: &mut Ctx<'_>, image: &Image, location: &ImageLocation<'_>) -> Flow<Arc<CinderCandidates>> {
    let candidates = ctx.memo.cinder_candidates(&image.id, location.direct_url, location.locations, None);
    for cand in candidates.urls.iter() {
        let subject = || match cand.index {
            Some(index) => Subject::Location { index },
            None => Subject::DirectUrl { url: cand.url.clone() },
        };
        match &cand.parsed {
            Ok(_) | Err(CinderLocationError::NotCinder { .. }) => {}
            Err(CinderLocationError::MalformedId { id }) => {
                if ctx.tracing() {
                    ctx.rejected(Stage::ImageVolumeClone, subject(), Reason::MalformedVolumeId { id: id.clone() });
                }
            }
            Err(CinderLocationError::InvalidUrl { message }) => {
                ctx.rejected(Stage::ImageVolumeClone, subject(), Reason::UnparseableUrl { message: message.clone() });
                return raise(ErrorClass::ValueError, message.clone());
            }
        }
    }
    Ok(candidates)
}

/// `_clone_image_volume` (CIV-1..7).
fn clone_image_volume(ctx: &mut Ctx<'_>, volume: &Volume, location: &ImageLocation<'_>, image: &Image) -> Flow<bool> {
    if volume.is_encrypted() {
        ctx.skipped(Stage::ImageVolumeClone, Reason::Encrypted);
        return Ok(false);
    }
    if image.container_format.as_deref() != Some("bare") || image.disk_format.as_deref() != Some("raw") {
        ctx.skipped(
            Stage::ImageVolumeClone,
            Reason::NotBareRaw(Box::new(Formats {
                container_format: image.container_format().to_owned(),
                disk_format: image.disk_format().to_owned(),
            })),
        );
        return Ok(false);
    }
    let candidates = extract_cinder_ids(ctx, image, location)?;
    let ids: Vec<&crate::model::VolumeId> = candidates.ids.iter().collect();
    if ids.is_empty() {
        ctx.skipped(Stage::ImageVolumeClone, Reason::NothingUsable);
        return Ok(false);
    }
    let db = &ctx.db;
    let rows = if db.volumes_untouched() {
        ctx.memo.candidate_rows(&image.id, || db.volumes_by_ids(&ids))?
    } else {
        Arc::new(db.volumes_by_ids(&ids)?)
    };
    if ctx.tracing() {
        for id in ctx.db.absent_ids(&ids) {
            ctx.rejected(Stage::ImageVolumeClone, Subject::Volume { volume_id: id.clone() }, Reason::NotInDatabase);
        }
    }
    // CIV-5: the location filter.
    let across = ctx.capabilities()?.clone_across_pools;
    let filter = if across {
        None
    } else if volume.is_clustered() {
        host_condition(volume.cluster_name.as_deref()).map(|f| (true, f))
    } else {
        let host = volume.host.as_ref().map(|h| h.as_str());
        let value = match (ctx.policy.candidate_scope, volume.host.as_ref()) {
            (CandidateScope::SameBackend, Some(h)) => Some(h.backend()),
            _ => host,
        };
        host_condition(value).map(|f| (false, f))
    };
    let mut candidates = Vec::new();
    // Made once, when first traced: every rejected row's entry shares it.
    let mut wanted: Option<Name> = None;
    for row in rows.iter() {
        if let Some((clustered, f)) = &filter {
            let field = if *clustered { row.cluster_name.as_deref() } else { row.host.as_ref().map(|h| h.as_str()) };
            if !f.matches(field) {
                if !ctx.tracing() {
                    continue;
                }
                let candidate = match (*clustered, &row.host) {
                    (false, Some(h)) => Some(h.name().clone()),
                    _ => field.map(Name::from),
                };
                let wanted = wanted.get_or_insert_with(|| Name::from(f.value())).clone();
                ctx.rejected(
                    Stage::ImageVolumeClone,
                    Subject::Volume { volume_id: row.id.clone() },
                    Reason::OtherHost(Box::new(HostMismatch { candidate, wanted })),
                );
                continue;
            }
        }
        candidates.push(row.clone());
    }
    // CIV-6: owner filter, first accessible wins.
    let owner = image.owner.clone();
    let mut chosen = None;
    for row in &candidates {
        if chosen.is_some() {
            if ctx.tracing() {
                ctx.rejected(
                    Stage::ImageVolumeClone,
                    Subject::Volume { volume_id: row.id.clone() },
                    Reason::NewerChosen,
                );
            } else {
                break;
            }
            continue;
        }
        let subject = Subject::Volume { volume_id: row.id.clone() };
        let tagged = row.metadata.get("image_owner").cloned();
        let owner_str = owner.as_ref().map(|o| o.as_str());
        if owner_str != Some(volume.project_id.as_str()) && owner_str != tagged.as_deref() {
            ctx.rejected(
                Stage::ImageVolumeClone,
                subject,
                Reason::OwnerMismatch(Box::new(OwnerMismatch {
                    image_owner: owner.clone(),
                    project: volume.project_id.clone(),
                    tagged_owner: tagged,
                })),
            );
            continue;
        }
        if ctx.policy.skip_doomed_candidates {
            let cp = ctx.checkpoint();
            match ctx.rbd_create_cloned_volume(volume, row) {
                Ok(()) => {
                    ctx.rollback(cp);
                }
                Err(Stop::Raise(r)) => {
                    ctx.rollback(cp);
                    ctx.rejected(
                        Stage::ImageVolumeClone,
                        subject,
                        Reason::Raised { error: r.class, message: format!("predicted: {}", r.message) },
                    );
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        chosen = Some(row.clone());
    }
    let Some(image_volume) = chosen else {
        return Ok(false);
    };
    ctx.chosen(Stage::ImageVolumeClone, Subject::Volume { volume_id: image_volume.id.clone() });
    // CIV-7: clone; Cinder exceptions fall back, others propagate.
    match ctx.rbd_create_cloned_volume(volume, &image_volume) {
        Ok(()) => {
            ctx.path = Some(CreatePath::ImageVolumeClone);
            ctx.source = Some(Source::Volume { volume_id: image_volume.id.clone() });
            Ok(true)
        }
        Err(Stop::Raise(r)) if r.class.is_cinder_exception() => {
            ctx.rejected(
                Stage::ImageVolumeClone,
                Subject::Volume { volume_id: image_volume.id.clone() },
                Reason::Raised { error: r.class, message: format!("{} (upstream falls back)", r.message) },
            );
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

// ------------------------------------------------------------------ image cache

/// `ImageVolumeCache._get_query_filters` as an exact location.
fn cache_filters(volume: &Volume, clone_across_pools: bool) -> CacheLocation {
    if volume.is_clustered() {
        CacheLocation { host: None, cluster_name: volume.cluster_name.clone() }
    } else if !clone_across_pools {
        CacheLocation { host: volume.host.as_ref().map(|h| h.as_str().to_owned()), cluster_name: None }
    } else {
        CacheLocation { host: None, cluster_name: None }
    }
}

/// `ImageVolumeCache.get_entry` (CACHE-2, CACHE-3): the most recently used
/// matching entry (touched), after evicting it if stale.
fn cache_get_entry(
    ctx: &mut Ctx<'_>,
    volume: &Volume,
    image: &Image,
    clone_across_pools: bool,
) -> Flow<Option<CacheEntry>> {
    let loc = cache_filters(volume, clone_across_pools);
    let rows = ctx.db.cache_entries_of_image(&image.id)?;
    let entry = rows.into_iter().find(|e| loc.matches(e));
    let Some(entry) = entry else {
        ctx.noted(Stage::ImageCache, Subject::Image { image_id: image.id.clone() }, Reason::CacheMiss);
        return Ok(None);
    };
    ctx.db_write(DbWrite::TouchCacheEntry {
        volume_id: entry.volume_id.clone(),
        last_used: ctx.req.now,
        previous: entry.last_used,
    })?;
    if entry.image_updated_at != image.updated_at {
        ctx.rejected(
            Stage::ImageCache,
            Subject::Volume { volume_id: entry.volume_id.clone() },
            Reason::CacheStale(Box::new(StaleEntry {
                entry: entry.image_updated_at.to_string(),
                image: image.updated_at.to_string(),
            })),
        );
        delete_cached_volume(ctx, &entry)?;
        ctx.noted(Stage::ImageCache, Subject::Image { image_id: image.id.clone() }, Reason::CacheMiss);
        return Ok(None);
    }
    Ok(Some(entry))
}

/// `ImageVolumeCache.delete_cached_volume` (`image/cache.py`): load the
/// cached volume (`objects.Volume.get_by_id`, `VolumeNotFound` for a
/// missing or deleted row) and delete it through the volume API
/// ([`volume_api_delete`]), which can refuse. Every call counts as asked
/// ([`Plan::cache_deletions`](crate::plan::Plan::cache_deletions)), also a
/// failing one; the caller decides what the failure does (CACHE-3, CACHE-8).
///
/// Upstream loads the row with the caller's context: the internal tenant's
/// admin context, except after `SnapshotLimitReached` (the user's, which
/// the RBD driver never raises).
fn delete_cached_volume(ctx: &mut Ctx<'_>, entry: &CacheEntry) -> Flow<()> {
    ctx.cache_deletions.push(entry.volume_id.clone());
    let Some(volume) = ctx.db.volume(&entry.volume_id)?.cloned() else {
        return raise(ErrorClass::VolumeNotFound, format!("Volume {} could not be found.", entry.volume_id));
    };
    volume_api_delete(ctx, &volume)
}

/// Volume statuses `volume.api.API.delete` accepts without `force`.
const DELETABLE_STATUSES: [&str; 5] = ["available", "error", "error_restoring", "error_extending", "error_managing"];

/// `volume.api.API.delete(context, volume)` (no `force`, `cascade` or
/// `unmanage_only`) as the image cache calls it, in upstream's order:
/// * a volume without a host (never scheduled) has its row destroyed at
///   once; no cache row is evicted, so the entry stays, pointing at a
///   deleted volume;
/// * the conditional update to `deleting` requires a deletable status
///   ([`DELETABLE_STATUSES`]) and no snapshot rows, else `InvalidVolume`
///   (the attachment, migration and group conditions hold for every row
///   the facts describe);
/// * the cache row(s) of the volume are evicted (`cache.evict`) and the
///   deletion is cast to the volume service (nobody here waits for it).
///
/// The policy check passes for the internal tenant's admin context and the
/// frozen-backend check for every backend the facts describe.
fn volume_api_delete(ctx: &mut Ctx<'_>, volume: &Volume) -> Flow<()> {
    if volume.host.is_none() {
        ctx.noted(
            Stage::ImageCache,
            Subject::Volume { volume_id: volume.id.clone() },
            Reason::Note { text: "the cached volume has no host: its row is destroyed, its cache row stays".into() },
        );
        return ctx.db_write(DbWrite::DeleteVolumeRow { volume_id: volume.id.clone() });
    }
    if !DELETABLE_STATUSES.contains(&volume.status.as_str()) || !ctx.db.snapshots_of_volume(&volume.id)?.is_empty() {
        return raise(
            ErrorClass::InvalidVolume,
            format!(
                "Invalid volume: Volume status must be {} and must not be migrating, attached, belong to a group, \
                 have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.",
                DELETABLE_STATUSES.join(" or ")
            ),
        );
    }
    let deleting = if volume.status.as_str() == "error_managing" {
        VolumeStatus::from("error_managing_deleting")
    } else {
        VolumeStatus::Deleting
    };
    set_volume(ctx, volume, VolumeUpdate { status: Some(deleting), ..Default::default() })?;
    if let Some(entry) = ctx.db.cache_entry_of_volume(&volume.id).cloned() {
        ctx.db_write(DbWrite::EvictCacheEntry { entry })?;
    }
    Ok(())
}

/// `_prepare_image_cache_entry` (CACHE-4).
fn prepare_image_cache_entry(ctx: &mut Ctx<'_>, volume: &Volume, image: &Image) -> Flow<bool> {
    if ctx.cfg.internal_tenant().is_none() {
        ctx.skipped(Stage::ImageCache, Reason::NoInternalTenant);
        return Ok(false);
    }
    let across = ctx.capabilities()?.clone_across_pools;
    if cache_get_entry(ctx, volume, image, across)?.is_some() {
        return Ok(false);
    }
    create_from_image_cache_or_download(ctx, volume, image, true)?;
    Ok(true)
}

/// `_create_from_image_cache` (CACHE-6): clone the entry's volume.
fn create_from_image_cache(ctx: &mut Ctx<'_>, volume: &Volume, image: &Image) -> Flow<bool> {
    if volume.is_encrypted() {
        return Ok(false);
    }
    let across = ctx.capabilities()?.clone_across_pools;
    let Some(entry) = cache_get_entry(ctx, volume, image, across)? else {
        return Ok(false);
    };
    ctx.chosen(Stage::ImageCache, Subject::Volume { volume_id: entry.volume_id.clone() });
    // _create_from_source_volume: the row must exist.
    let src = match ctx.db.volume(&entry.volume_id)?.cloned() {
        Some(v) => v,
        None => return raise(ErrorClass::VolumeNotFound, format!("Volume {} could not be found.", entry.volume_id)),
    };
    match ctx.rbd_create_cloned_volume(volume, &src) {
        Ok(()) => {}
        Err(Stop::Raise(r)) if r.class == ErrorClass::SnapshotLimitReached => {
            delete_cached_volume(ctx, &entry)?;
            return Err(Stop::Raise(r));
        }
        Err(e) => return Err(e),
    }
    if src.bootable {
        let cur = current(ctx, volume)?;
        set_volume(ctx, &cur, VolumeUpdate { bootable: Some(true), ..Default::default() })?;
    }
    ctx.path = Some(CreatePath::CacheHit);
    ctx.source = Some(Source::Cache { volume_id: entry.volume_id.clone() });
    Ok(true)
}

/// `_create_from_image_cache_or_download` (CACHE-5).
fn create_from_image_cache_or_download(
    ctx: &mut Ctx<'_>,
    volume: &Volume,
    image: &Image,
    update_cache: bool,
) -> Flow<()> {
    // 1. Free space in the conversion directory (also before cache hits).
    ctx.path = Some(if update_cache { CreatePath::CacheMissDownload } else { CreatePath::Download });
    ctx.source = Some(Source::Glance { image_id: image.id.clone() });
    let free = ctx.host_info()?.conversion_free_bytes;
    let Some(size) = image.size else {
        return raise(ErrorClass::TypeError, "'<=' not supported between instances of 'int' and 'NoneType'");
    };
    if free <= size.0 {
        ctx.rejected(
            Stage::Download,
            Subject::Image { image_id: image.id.clone() },
            Reason::NoConversionSpace { free: Bytes(free), needed: size },
        );
        return raise(
            ErrorClass::ImageTooBig,
            format!(
                "Image {} size exceeded available disk space: There is no space on {free} to convert image.",
                image.id
            ),
        );
    }

    // 2. The cache.
    let mut should_create_cache_entry = false;
    let mut cloned = false;
    if ctx.cfg.backend.image_volume_cache_enabled {
        if ctx.cfg.internal_tenant().is_none() {
            ctx.skipped(Stage::ImageCache, Reason::NoInternalTenant);
        } else {
            match create_from_image_cache(ctx, volume, image) {
                Ok(c) => cloned = c,
                Err(Stop::Raise(r)) if r.class == ErrorClass::SnapshotLimitReached => return Err(Stop::Raise(r)),
                Err(Stop::Raise(r)) if r.class.is_cinder_exception() => {
                    ctx.rejected(
                        Stage::ImageCache,
                        Subject::Path,
                        Reason::Raised {
                            error: r.class,
                            message: format!("{} (upstream downloads instead)", r.message),
                        },
                    );
                }
                Err(e) => return Err(e),
            }
            if !cloned && update_cache {
                should_create_cache_entry = true;
            }
        }
    }

    // 3. Download.
    let original_size = current(ctx, volume)?.size;
    if volume.service_topic_queue().is_none() {
        // volume_utils.extract_host(None)
        return raise(ErrorClass::InvalidVolume, "Invalid volume: volume is not assigned to a host");
    }
    let body = |ctx: &mut Ctx<'_>| -> Flow<()> {
        if !cloned {
            ctx.chosen(Stage::Download, Subject::Image { image_id: image.id.clone() });
            if ctx.cfg.verify_glance_signatures != "disabled" {
                verify_signature(ctx, volume, image)?;
            }
            // qemu-img info of the downloaded file.
            let file_size = image.virtual_size.or(image.size).unwrap_or(Bytes(0));
            let virtual_gib = check_virtual_size(file_size, current(ctx, volume)?.size, &image.id)?;
            if should_create_cache_entry && virtual_gib != 0 && virtual_gib != original_size.0 {
                // DL-5: create at the image's size, extend afterwards.
                let cur = current(ctx, volume)?;
                set_volume(ctx, &cur, VolumeUpdate { size: Some(GiB(virtual_gib)), ..Default::default() })?;
            }
            create_from_image_download(ctx, volume, image, file_size)?;
        }
        if should_create_cache_entry {
            create_image_cache_volume_entry(ctx, volume, image)?;
        }
        Ok(())
    };
    let mut result = body(ctx);
    if let Err(Stop::Raise(r)) = &result {
        // except Exception: volume_glance_metadata_get raises
        // GlanceMetadataNotFound when the volume has none, which replaces the
        // exception in flight.
        if ctx.db.has_glance_metadata(&volume.id) {
            ctx.db_write(DbWrite::DeleteGlanceMetadata { volume_id: volume.id.clone() })?;
        } else {
            ctx.rejected(
                Stage::Download,
                Subject::Path,
                Reason::Raised {
                    error: r.class,
                    message: format!("{} (masked: the volume has no glance metadata to clean up)", r.message),
                },
            );
            result = raise(
                ErrorClass::GlanceMetadataNotFound,
                format!("Glance metadata for volume {} cannot be found.", volume.id),
            );
        }
    }
    if let Err(Stop::Need(_) | Stop::Inconsistent(_)) = &result {
        return result;
    }
    // finally: extend back to the requested size.
    let cur = current(ctx, volume)?;
    if cur.size != original_size {
        let extended = ctx.rbd_extend_volume(&cur, original_size);
        let cur = current(ctx, volume)?;
        set_volume(ctx, &cur, VolumeUpdate { size: Some(original_size), ..Default::default() })?;
        if let Err(e) = extended {
            if let Stop::Raise(_) = &e {
                // An exception from the finally block replaces the one in
                // flight.
                return Err(e);
            }
            return Err(e);
        }
    }
    result
}

/// `image_utils.verify_glance_image_signature` for an image: without any
/// signature property the result is "not verified" (stored as glance
/// metadata); partial properties are `InvalidSignatureImage`.
fn verify_signature(ctx: &mut Ctx<'_>, volume: &Volume, image: &Image) -> Flow<()> {
    const KEYS: [&str; 4] =
        ["img_signature", "img_signature_hash_method", "img_signature_certificate_uuid", "img_signature_key_type"];
    let present = KEYS.iter().filter(|k| image.properties.contains_key(**k)).count();
    if present != 0 && present != KEYS.len() {
        return raise(
            ErrorClass::InvalidSignatureImage,
            format!("Signature metadata is incomplete for image {}", image.id),
        );
    }
    if present == KEYS.len() {
        // Real verification needs the key manager and the image data; the
        // executor's image service reports a verification failure.
        ctx.noted(
            Stage::Download,
            Subject::Image { image_id: image.id.clone() },
            Reason::Note { text: "image signature will be verified".into() },
        );
    }
    let mut m = BTreeMap::new();
    m.insert("signature_verified".to_owned(), if present == KEYS.len() { "True" } else { "False" }.to_owned());
    ctx.db_write(DbWrite::SetGlanceMetadata { volume_id: volume.id.clone(), metadata: m })
}

/// `_create_from_image_download` + `volume_utils.copy_image_to_volume` +
/// the RBD driver's `_copy_image_to_volume` (DL-6, DL-7, RBD-28..30).
fn create_from_image_download(ctx: &mut Ctx<'_>, volume: &Volume, image: &Image, file_size: Bytes) -> Flow<()> {
    let vol = current(ctx, volume)?;
    ctx.rbd_create_volume(&vol)?;
    set_volume(ctx, &vol, VolumeUpdate { status: Some(VolumeStatus::Downloading), ..Default::default() })?;
    let copy = |ctx: &mut Ctx<'_>| -> Flow<()> {
        let vol = current(ctx, volume)?;
        let disk_format = image.disk_format().to_owned();
        // The image data is fetched as the driver's copy starts.
        ctx.push_step(
            Action::DownloadImage {
                image_id: image.id.clone(),
                expect: DownloadExpectation { size: file_size, disk_format: disk_format.clone() },
            },
            Vec::new(),
            true,
        );
        // fetch_to_volume_format
        if ctx.cfg.image_conversion_disable && disk_format != "raw" {
            return raise(
                ErrorClass::ImageConversionNotAllowed,
                format!("Image conversion disabled: image {} is {disk_format}, not raw", image.id),
            );
        }
        if image.container_format.as_deref() == Some("compressed") && !ctx.cfg.allow_compression_on_image_upload {
            return raise(
                ErrorClass::ImageUnacceptable,
                format!(
                    "Image {} is unacceptable: Image compression disallowed, but container_format is compressed.",
                    image.id
                ),
            );
        }
        if image.container_format.as_deref() == Some("compressed") {
            return raise(
                ErrorClass::ImageUnacceptable,
                format!("Image {} is unacceptable: Unsupported compressed image format found. Only gzip is supported currently", image.id),
            );
        }
        check_virtual_size(file_size, vol.size, &image.id)?;
        ctx.rbd_import_downloaded(&vol, file_size)
    };
    match copy(ctx) {
        Ok(()) => Ok(()),
        Err(Stop::Raise(r))
            if matches!(
                r.class,
                ErrorClass::ImageUnacceptable
                    | ErrorClass::ImageTooBig
                    | ErrorClass::ImageConversionNotAllowed
                    | ErrorClass::ImageCopyFailure
            ) =>
        {
            Err(Stop::Raise(r))
        }
        Err(Stop::Raise(r)) => Err(Stop::Raise(Raised::new(
            ErrorClass::ImageCopyFailure,
            format!("Failed to copy image to volume: {}", r.message),
        ))),
        Err(e) => Err(e),
    }
}

/// `VolumeManager._create_image_cache_volume_entry` (CACHE-7, CACHE-8).
fn create_image_cache_volume_entry(ctx: &mut Ctx<'_>, volume: &Volume, image: &Image) -> Flow<()> {
    // get_entry without clone_across_pools.
    if cache_get_entry(ctx, volume, image, false)?.is_some() {
        ctx.noted(Stage::ImageCache, Subject::Image { image_id: image.id.clone() }, Reason::CacheEntryExists);
        return Ok(());
    }
    let vol = current(ctx, volume)?;
    let mut image_volume: Option<Volume> = None;
    let result = (|| -> Flow<()> {
        if !ensure_space(ctx, &vol)? {
            return Ok(());
        }
        image_volume = clone_image_volume_for_cache(ctx, &vol, image)?;
        let Some(iv) = &image_volume else { return Ok(()) };
        let entry = CacheEntry {
            image_id: image.id.clone(),
            host: iv.host.clone(),
            cluster_name: iv.cluster_name.clone(),
            volume_id: iv.id.clone(),
            size: iv.size,
            image_updated_at: image.updated_at,
            last_used: ctx.req.now,
        };
        ctx.db_write(DbWrite::CreateCacheEntry { entry })?;
        ctx.chosen(Stage::ImageCache, Subject::Volume { volume_id: iv.id.clone() });
        Ok(())
    })();
    match result {
        Err(Stop::Raise(r)) if r.class.is_cinder_exception() => {
            ctx.rejected(
                Stage::ImageCache,
                Subject::Path,
                Reason::Raised {
                    error: r.class,
                    message: format!("{} (no cache entry; the create goes on)", r.message),
                },
            );
            if let Some(iv) = image_volume {
                manager_delete_volume(ctx, &iv)?;
            }
            Ok(())
        }
        other => other,
    }
}

/// `ImageVolumeCache.ensure_space` (CACHE-8).
fn ensure_space(ctx: &mut Ctx<'_>, volume: &Volume) -> Flow<bool> {
    let max_gb = ctx.cfg.backend.image_volume_cache_max_size_gb;
    let max_count = ctx.cfg.backend.image_volume_cache_max_count;
    if max_gb == 0 && max_count == 0 {
        return Ok(true);
    }
    if max_gb != 0 && (volume.size.0 as i128) > i128::from(max_gb) {
        ctx.rejected(Stage::ImageCache, Subject::Path, Reason::CacheTooSmall { size: volume.size, limit_gb: max_gb });
        return Ok(false);
    }
    let loc = cache_filters(volume, false);
    let mut entries = ctx.db.cache_entries_at(&loc)?;
    let mut count = entries.len() as i128 + 1;
    let mut size: i128 = entries.iter().map(|e| e.size.0 as i128).sum::<i128>() + volume.size.0 as i128;
    let over = |size: i128, count: i128| {
        (max_gb > 0 && size > i128::from(max_gb)) || (max_count > 0 && count > i128::from(max_count))
    };
    while over(size, count) {
        let Some(entry) = entries.pop() else { break };
        ctx.rejected(Stage::ImageCache, Subject::Volume { volume_id: entry.volume_id.clone() }, Reason::EvictedForRoom);
        delete_cached_volume(ctx, &entry)?;
        size -= entry.size.0 as i128;
        count -= 1;
    }
    if max_gb > 0 && size > i128::from(max_gb) {
        ctx.rejected(Stage::ImageCache, Subject::Path, Reason::CacheFull);
        return Ok(false);
    }
    Ok(true)
}

/// `VolumeManager._clone_image_volume`: a new volume row in the internal
/// tenant, created through the manager as a clone of `volume`.
fn clone_image_volume_for_cache(ctx: &mut Ctx<'_>, volume: &Volume, image: &Image) -> Flow<Option<Volume>> {
    let (project, user) =
        ctx.cfg.internal_tenant().map(|(p, u)| (p.to_owned(), u.to_owned())).expect("checked by the caller");
    let id = ctx.fresh_volume_id()?;
    let mut iv = volume.clone();
    iv.id = id.clone();
    iv.name_id = None;
    iv.status = VolumeStatus::Creating;
    iv.project_id = project.into();
    iv.user_id = user.into();
    iv.source_volid = Some(volume.id.clone());
    iv.snapshot_id = None;
    iv.use_quota = true;
    iv.bootable = volume.bootable;
    iv.created_at = ctx.req.now;
    iv.metadata = volume.metadata.clone();
    iv.admin_metadata = BTreeMap::new();
    ctx.db_write(DbWrite::CreateVolume { volume: Box::new(iv.clone()) })?;
    ctx.noted(
        Stage::ImageCache,
        Subject::Volume { volume_id: id.clone() },
        Reason::Note {
            text: format!("new image volume image-{} in the internal tenant, cloned from the new volume", image.id),
        },
    );
    // manager.create_volume(ctx, image_volume, allow_reschedule=False): a
    // source_vol create.
    let created = match ctx.rbd_create_cloned_volume(&iv, volume) {
        Ok(()) => {
            if volume.bootable {
                let cur = current(ctx, &iv)?;
                set_volume(ctx, &cur, VolumeUpdate { bootable: Some(true), ..Default::default() })?;
            }
            let cur = current(ctx, &iv)?;
            set_volume(ctx, &cur, VolumeUpdate { status: Some(VolumeStatus::Available), ..Default::default() })?;
            Ok(())
        }
        Err(Stop::Raise(r)) => {
            let cur = current(ctx, &iv)?;
            set_volume(ctx, &cur, VolumeUpdate { status: Some(VolumeStatus::Error), ..Default::default() })?;
            Err(Stop::Raise(r))
        }
        Err(e) => Err(e),
    };
    match created {
        Ok(()) => Ok(Some((*current(ctx, &iv)?).clone())),
        Err(Stop::Raise(r)) if r.class.is_cinder_exception() => {
            ctx.rejected(
                Stage::ImageCache,
                Subject::Volume { volume_id: id },
                Reason::Raised { error: r.class, message: format!("{} (the image volume is deleted)", r.message) },
            );
            manager_delete_volume(ctx, &iv)?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `VolumeManager.delete_volume` for a volume the flow created: the
/// driver delete, then the row.
fn manager_delete_volume(ctx: &mut Ctx<'_>, volume: &Volume) -> Flow<()> {
    match ctx.rbd_delete_volume(volume) {
        Ok(()) => ctx.db_write(DbWrite::DeleteVolumeRow { volume_id: volume.id.clone() }),
        Err(Stop::Raise(r)) if r.class.is_cinder_exception() => {
            ctx.decide(
                Stage::ImageCache,
                Subject::Volume { volume_id: volume.id.clone() },
                Verdict::Noted {
                    what: Reason::Raised { error: r.class, message: format!("{} (left in error_deleting)", r.message) },
                },
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// `_process_volume_filters` for `host` / `cluster_name`: a falsy value adds
/// no condition; otherwise `_filter_host`.
fn host_condition(value: Option<&str>) -> Option<HostFilter> {
    match value {
        Some(v) if !v.is_empty() => Some(HostFilter::new(v)),
        _ => None,
    }
}
