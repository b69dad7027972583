//! The volume manager's create flow (`volume/manager.py: create_volume` and
//! `volume/flows/manager/create_volume.py`), MGR-1..12.

use std::sync::Arc;

use crate::model::{Host, Volume, VolumeStatus};
use crate::plan::{ErrorClass, Operation, Source, VolumeUpdate};
use crate::trace::{Reason, Stage, Subject};

use super::ctx::{current, raise, set_volume, Ctx, Flow};
use super::Stop;

/// `VolumeManager.create_volume(..., allow_reschedule=False)` for the
/// request's volume: extract the volume and its spec, create from the
/// spec, then mark it `available`; on failure mark it `error` (the
/// `OnFailureRescheduleTask` revert without rescheduling) and end with the
/// exception.
pub(crate) fn create_volume(ctx: &mut Ctx<'_>) -> Flow<()> {
    let id = ctx.req.volume_id.clone();
    // ExtractVolumeRefTask
    let volume = match ctx.db.volume(&id)?.cloned() {
        Some(v) => v,
        None => return raise(ErrorClass::VolumeNotFound, format!("Volume {id} could not be found.")),
    };
    // `_update_allocated_capacity` reads the pool of the volume's host
    // before the flow runs: no host is InvalidVolume, status untouched.
    if volume.host.is_none() {
        ctx.rejected(
            Stage::Checks,
            Subject::Volume { volume_id: id },
            Reason::Note { text: "the volume has no host (it was never scheduled)".into() },
        );
        return raise(ErrorClass::InvalidVolume, "Invalid volume: volume is not assigned to a host");
    }
    let volume = set_resource_host(ctx, volume)?;
    let operation = ctx.req.operation.clone();
    match create_from_spec(ctx, &volume, &operation) {
        Ok(()) => {
            // CreateVolumeOnFinishTask
            let current = current(ctx, &volume)?;
            set_volume(ctx, &current, VolumeUpdate { status: Some(VolumeStatus::Available), ..Default::default() })
        }
        Err(Stop::Raise(r)) => {
            ctx.rejected(
                Stage::Finish,
                Subject::Volume { volume_id: id },
                Reason::Raised { error: r.class, message: r.message.clone() },
            );
            let current = current(ctx, &volume)?;
            set_volume(ctx, &current, VolumeUpdate { status: Some(VolumeStatus::Error), ..Default::default() })?;
            // `create_volume` answers a `VolumeNotFound` from the flow by
            // cleaning the locks of the request spec's source volume
            // (`utils.clean_volume_file_locks(source_volid, ...)`); without
            // one the lock name is `None + '-delete_volume'`: a TypeError
            // replaces the exception.
            if r.class == ErrorClass::VolumeNotFound && !matches!(operation, Operation::CreateClonedVolume { .. }) {
                return raise(ErrorClass::TypeError, "unsupported operand type(s) for +: 'NoneType' and 'str'");
            }
            Err(Stop::Raise(r))
        }
        Err(other) => Err(other),
    }
}

/// `VolumeManager._set_resource_host`: a clustered volume whose host is on
/// another backend than this service's (`hosts_are_equivalent` compares
/// the `host@backend` parts) takes this service's host, keeping its own
/// pool (`append_host(self.host, pool)`), before anything else reads it.
/// Without a known service host the volume keeps its host. A volume without
/// a host fails before (the caller's check: upstream's `extract_host(None)`
/// raises the same `InvalidVolume` here).
fn set_resource_host(ctx: &mut Ctx<'_>, volume: Arc<Volume>) -> Flow<Arc<Volume>> {
    if !volume.is_clustered() {
        return Ok(volume);
    }
    let Some(service) = ctx.host_info()?.service_host.clone() else { return Ok(volume) };
    let Some(host) = &volume.host else { return Ok(volume) };
    if !host.as_str().is_empty() && host.backend() == service.backend() {
        return Ok(volume);
    }
    let moved = match host.pool().filter(|p| !p.is_empty()) {
        Some(pool) => Host::new(format!("{}#{pool}", service.as_str())),
        None => service,
    };
    ctx.noted(
        Stage::Checks,
        Subject::Volume { volume_id: volume.id.clone() },
        Reason::Note { text: format!("clustered volume moved from host {host} to this service's host {moved}") },
    );
    set_volume(ctx, &volume, VolumeUpdate { host: Some(moved), ..Default::default() })?;
    current(ctx, &volume)
}

/// The spec type `ExtractVolumeSpecTask` derives, from the volume row first
/// (`snapshot_id`, then `source_volid`), then the request spec (`image_id`).
enum Spec<'a> {
    Raw,
    Snap(crate::model::SnapshotId),
    SourceVol(Arc<Volume>),
    Image(super::image::ImageLocation<'a>, &'a crate::model::Image, crate::model::ImageId),
}

/// `ExtractVolumeSpecTask.execute` + `CreateVolumeFromSpecTask.execute`.
fn create_from_spec(ctx: &mut Ctx<'_>, volume: &Volume, operation: &Operation) -> Flow<()> {
    // The request's source is recorded on the row by the API; a row
    // without it takes the request's (as the conformance harness does).
    let snapshot_id = volume.snapshot_id.clone().or_else(|| match operation {
        Operation::CreateFromSnapshot { snapshot_id } => Some(snapshot_id.clone()),
        _ => None,
    });
    let source_volid = volume.source_volid.clone().or_else(|| match operation {
        Operation::CreateClonedVolume { source_volid } => Some(source_volid.clone()),
        _ => None,
    });
    let spec = if let Some(sid) = snapshot_id {
        Spec::Snap(sid)
    } else if let Some(src_id) = source_volid {
        match ctx.db.volume(&src_id)?.cloned() {
            Some(v) => Spec::SourceVol(v),
            None => return raise(ErrorClass::VolumeNotFound, format!("Volume {src_id} could not be found.")),
        }
    } else if let Operation::CreateFromImage { image_id } = operation {
        let (location, image) = super::image::extract_image_spec(ctx, image_id)?;
        Spec::Image(location, image, image_id.clone())
    } else {
        Spec::Raw
    };

    // MGR-6: nothing can be done without an initialised driver.
    driver_initialized(ctx)?;

    match spec {
        Spec::Raw => {
            // MGR-7
            ctx.chosen(Stage::CreateVolume, Subject::Volume { volume_id: volume.id.clone() });
            ctx.rbd_create_volume(volume)
        }
        Spec::Snap(snapshot_id) => {
            // MGR-8
            let snapshot = match ctx.db.snapshot(&snapshot_id)?.cloned() {
                Some(s) => s,
                None => {
                    return raise(ErrorClass::SnapshotNotFound, format!("Snapshot {snapshot_id} could not be found."))
                }
            };
            // Snapshot.volume_name needs the snapshot's volume.
            let snap_volume = match ctx.db.volume(&snapshot.volume_id)?.cloned() {
                Some(v) => v,
                None => {
                    return raise(
                        ErrorClass::VolumeNotFound,
                        format!("Volume {} could not be found.", snapshot.volume_id),
                    )
                }
            };
            ctx.source = Some(Source::Snapshot { snapshot_id: snapshot_id.clone() });
            ctx.chosen(Stage::FromSnapshot, Subject::Snapshot { snapshot_id: snapshot_id.clone() });
            ctx.rbd_create_volume_from_snapshot(volume, &snapshot, &snap_volume)?;
            if snap_volume.bootable {
                let cur = current(ctx, volume)?;
                set_volume(ctx, &cur, VolumeUpdate { bootable: Some(true), ..Default::default() })?;
            }
            Ok(())
        }
        Spec::SourceVol(src) => {
            // MGR-9: _create_from_source_volume reloads the source.
            let src = match ctx.db.volume(&src.id)?.cloned() {
                Some(v) => v,
                None => return raise(ErrorClass::VolumeNotFound, format!("Volume {} could not be found.", src.id)),
            };
            ctx.source = Some(Source::Volume { volume_id: src.id.clone() });
            ctx.chosen(Stage::CloneVolume, Subject::Volume { volume_id: src.id.clone() });
            ctx.rbd_create_cloned_volume(volume, &src)?;
            if src.bootable {
                let cur = current(ctx, volume)?;
                set_volume(ctx, &cur, VolumeUpdate { bootable: Some(true), ..Default::default() })?;
            }
            Ok(())
        }
        Spec::Image(location, image, image_id) => {
            super::image::create_from_image(ctx, volume, &image_id, location, image)
        }
    }
}

/// Whether `do_setup` and `check_for_setup_error` succeeded, i.e. the
/// driver could connect and open `rbd_pool` (`VolumeManager.init_host`
/// leaves the driver uninitialised otherwise).
pub(crate) fn driver_initialized(ctx: &mut Ctx<'_>) -> Flow<()> {
    let pool = ctx.rbd_pool();
    let ok = !pool.is_empty()
        && !ctx.cfg.backend.rbd_cluster_name.is_empty()
        && match ctx.rados(&pool) {
            Ok(()) => true,
            Err(Stop::Raise(_)) => false,
            Err(e) => return Err(e),
        };
    if ok {
        return Ok(());
    }
    ctx.rejected(
        Stage::Checks,
        Subject::Path,
        Reason::Note {
            text: format!("the RBD driver is not initialised: it cannot connect to the cluster or open pool {pool:?}"),
        },
    );
    raise(ErrorClass::DriverNotInitialized, "Volume driver not ready.")
}
