//! `RBDDriver.delete_volume` (RBD-32..42), call for call.

use crate::error::BackendErrorKind;
use crate::model::Volume;
use crate::plan::ErrorClass;
use crate::rbd::{ImageSpec, Name, RbdOp};
use crate::trace::{Reason, Stage, Subject};

use super::ctx::{raise, Ctx, Exc, Flow};
use super::rbd_driver::backup_snapshot_match;
use super::DeleteRules;
use super::Stop;

/// Entry point of the `delete_volume` operation: the driver call alone (no
/// quota, database or cache handling, as the conformance format defines it).
pub(crate) fn delete_volume(ctx: &mut Ctx<'_>) -> Flow<()> {
    let id = ctx.req.volume_id.clone();
    let volume = match ctx.db.volume(&id)?.cloned() {
        Some(v) => v,
        None => return raise(ErrorClass::VolumeNotFound, format!("Volume {id} could not be found.")),
    };
    match ctx.policy.delete_rules {
        DeleteRules::Upstream => ctx.rbd_delete_volume(&volume),
        DeleteRules::Liberty => ctx.liberty_delete_volume(&volume),
    }
}

impl Ctx<'_> {
    /// `RBDDriver.delete_volume` → `_delete_volume`.
    pub(crate) fn rbd_delete_volume(&mut self, volume: &Volume) -> Flow<()> {
        let pool = self.rbd_pool();
        let spec = self.volume_spec(volume);
        let subject = Subject::Volume { volume_id: volume.id.clone() };
        self.rados(&pool)?;

        // try: open, remove backup snapshots, find a clone snapshot, read the
        // parent; except ImageNotFound: done.
        let image = match self.open(&spec, None)? {
            Ok(i) => i,
            Err(BackendErrorKind::NotFound) => {
                self.noted(
                    Stage::Delete,
                    subject,
                    Reason::Note { text: format!("{spec} no longer exists in the backend") },
                );
                return Ok(());
            }
            Err(k) => return raise(ErrorClass::Rbd(k), format!("open {spec}: {k}")),
        };
        for snap in image.visible_snaps() {
            if let Some(name) = backup_snapshot_match(&snap.name) {
                match self.rbd(RbdOp::RemoveSnap { snap: spec.snap(name) })? {
                    Ok(()) => {}
                    Err(BackendErrorKind::NotFound) => return Ok(()),
                    Err(k) => return raise(ErrorClass::Rbd(k), format!("remove backup snapshot {name}: {k}")),
                }
            }
        }
        let image = match self.open(&spec, None)? {
            Ok(i) => i,
            Err(k) => return raise(ErrorClass::Rbd(k), format!("open {spec}: {k}")),
        };
        let clone_snap = image.visible_snaps().find(|s| s.name.ends_with(".clone_snap")).map(|s| s.name.clone());
        let parent = self.clone_info(&spec, clone_snap.as_deref())?;

        if let Some(cs) = clone_snap {
            // RBD-35: it has copy-on-write children; keep it as a silent
            // `.deleted` volume.
            self.noted(
                Stage::Delete,
                subject,
                Reason::Note {
                    text: format!("it has a clone snapshot ({cs}), so it is renamed to {}.deleted and kept", spec.name),
                },
            );
            return self.rbd_or_raise(RbdOp::Rename {
                image: spec.clone(),
                new_name: Name::concat(&[&spec.name, ".deleted"]),
            });
        }

        // RBD-36: fast path.
        match self.rbd(RbdOp::Remove { image: spec.clone() })? {
            Ok(()) => return Ok(()),
            Err(BackendErrorKind::NotFound) => return Ok(()),
            Err(BackendErrorKind::HasSnapshots | BackendErrorKind::Busy) => self.flatten_children(&spec, None)?,
            Err(k) => return raise(ErrorClass::Rbd(k), format!("remove {spec}: {k}")),
        }

        // RBD-37: retried removal.
        let attempts = self.retry_attempts()?;
        let mut last = None;
        for _ in 0..attempts {
            match self.rbd(RbdOp::Remove { image: spec.clone() })? {
                Ok(()) => return Ok(()),
                Err(k @ (BackendErrorKind::HasSnapshots | BackendErrorKind::Busy)) => last = Some(k),
                Err(k) => return raise(ErrorClass::Rbd(k), format!("remove {spec}: {k}")),
            }
        }
        if last == Some(BackendErrorKind::Busy) {
            return raise(ErrorClass::VolumeIsBusy, "ImageBusy error raised while deleting RBD volume");
        }

        // RBD-38: trash.
        let delay = if self.cfg.backend.enable_deferred_deletion {
            self.cfg.backend.deferred_deletion_delay.max(0) as u64
        } else {
            0
        };
        match self.rbd(RbdOp::TrashMove { image: spec.clone(), delay })? {
            Ok(()) => {}
            Err(BackendErrorKind::Busy) => {
                return raise(ErrorClass::VolumeIsBusy, "ImageBusy error raised while trashing RBD volume.")
            }
            Err(k) => return raise(ErrorClass::Rbd(k), format!("trash_move {spec}: {k}")),
        }

        // RBD-39: parent references, only after the trash.
        if let Some((_pool, parent, parent_snap)) = parent {
            self.delete_clone_parent_refs(&parent, &parent_snap, true)?;
        }
        Ok(())
    }

    /// Attempts of `utils.retry(..., retries=rados_connection_retries)`;
    /// upstream raises `ValueError` for fewer than one.
    pub(crate) fn retry_attempts(&self) -> Flow<i64> {
        let r = self.cfg.backend.rados_connection_retries;
        if r < 1 {
            return raise(
                ErrorClass::ValueError,
                format!("Retries must be greater than or equal to 1 (received: {r}). "),
            );
        }
        Ok(r)
    }

    /// `RBDDriver._flatten_children`: flatten every child of the image's
    /// snapshots (or of `snap`).
    pub(crate) fn flatten_children(&mut self, spec: &ImageSpec, snap: Option<&str>) -> Flow<()> {
        if let Err(k) = self.open(spec, snap)? {
            return raise(ErrorClass::Rbd(k), format!("open {spec}: {k}"));
        }
        let children = match self.list_children(spec, snap)? {
            Ok(c) => c,
            Err(k) => return raise(ErrorClass::Rbd(k), format!("list_children {spec}: {k}")),
        };
        for child in children {
            // _flatten → _do_flatten on a fresh connection to the child's
            // pool; ImageNotFound is ignored.
            self.rados(&child.pool)?;
            match self.open(&child, None)? {
                Ok(_) => {}
                Err(BackendErrorKind::NotFound) => continue,
                Err(k) => return raise(ErrorClass::Rbd(k), format!("open {child}: {k}")),
            }
            self.noted(
                Stage::Delete,
                Subject::Path,
                Reason::Note { text: format!("{child} depends on {spec}: flatten it") },
            );
            match self.rbd(RbdOp::Flatten { image: child.clone() })? {
                Ok(()) | Err(BackendErrorKind::NotFound) => {}
                Err(k) => return raise(ErrorClass::Rbd(k), format!("flatten {child}: {k}")),
            }
        }
        Ok(())
    }

    /// `RBDDriver._delete_clone_parent_refs` (RBD-41, RBD-42).
    /// With `trash_option` (Cinder 29) `enable_deferred_deletion` moves
    /// removed parents to the trash; Liberty always removes them.
    fn delete_clone_parent_refs(&mut self, parent_name: &str, parent_snap: &str, trash_option: bool) -> Flow<()> {
        let mut parent_name = Name::from(parent_name);
        let mut parent_snap = Name::from(parent_snap);
        let pool = self.rbd_pool();
        loop {
            let spec = ImageSpec::new(pool.clone(), parent_name.clone());
            if let Err(k) = self.open(&spec, None)? {
                return raise(ErrorClass::Rbd(k), format!("open {spec}: {k}"));
            }
            let grandparent = self.clone_info(&spec, Some(&parent_snap))?;
            self.rbd_or_raise(RbdOp::UnprotectSnap { snap: spec.snap(parent_snap.clone()) })?;
            self.rbd_or_raise(RbdOp::RemoveSnap { snap: spec.snap(parent_snap.clone()) })?;
            let has_snaps = match self.open(&spec, None)? {
                Ok(i) => i.visible_snaps().next().is_some(),
                Err(k) => return raise(ErrorClass::Rbd(k), format!("open {spec}: {k}")),
            };
            if has_snaps || !parent_name.ends_with(".deleted") {
                return Ok(());
            }
            if trash_option && self.cfg.backend.enable_deferred_deletion {
                let delay = self.cfg.backend.deferred_deletion_delay.max(0) as u64;
                self.rbd_or_raise(RbdOp::TrashMove { image: spec, delay })?;
            } else {
                self.rbd_or_raise(RbdOp::Remove { image: spec })?;
            }
            match grandparent {
                Some((_p, g, gs)) => {
                    parent_name = g;
                    parent_snap = gs;
                }
                None => return Ok(()),
            }
        }
    }

    /// The Liberty-era (Cinder 7.0.0) `RBDDriver.delete_volume`, for
    /// deployments that still run it (seed 002): backup snapshots removed;
    /// then the *first* remaining snapshot decides: a `.clone_snap` means
    /// rename to `.deleted` and stop, anything else fails the delete with
    /// `VolumeIsBusy` at once; `remove` is tried 3 times on `ImageBusy`
    /// (watchers), then `VolumeIsBusy`; after a removal the parent chain is
    /// always cleaned (removing `.deleted` parents, never trashing them).
    pub(crate) fn liberty_delete_volume(&mut self, volume: &Volume) -> Flow<()> {
        let pool = self.rbd_pool();
        let spec = self.volume_spec(volume);
        let subject = Subject::Volume { volume_id: volume.id.clone() };
        self.rados(&pool)?;
        let image = match self.open(&spec, None)? {
            Ok(i) => i,
            Err(BackendErrorKind::NotFound) => {
                self.noted(
                    Stage::Delete,
                    subject,
                    Reason::Note { text: format!("{spec} no longer exists in the backend") },
                );
                return Ok(());
            }
            Err(k) => return raise(ErrorClass::Rbd(k), format!("open {spec}: {k}")),
        };
        for snap in image.visible_snaps() {
            if let Some(name) = backup_snapshot_match(&snap.name) {
                self.rbd_or_raise(RbdOp::RemoveSnap { snap: spec.snap(name) })?;
            }
        }
        let image = match self.open(&spec, None)? {
            Ok(i) => i,
            Err(k) => return raise(ErrorClass::Rbd(k), format!("open {spec}: {k}")),
        };
        let clone_snap = match image.visible_snaps().next() {
            None => None,
            Some(s) if s.name.ends_with(".clone_snap") => Some(s.name.clone()),
            Some(s) => {
                self.rejected(
                    Stage::Delete,
                    subject,
                    Reason::Note {
                        text: format!("snapshot {} exists: Liberty refuses to delete a volume with snapshots", s.name),
                    },
                );
                return raise(ErrorClass::VolumeIsBusy, format!("deleting volume {} that has snapshot", spec.name));
            }
        };
        let parent = self.clone_info(&spec, clone_snap.as_deref())?;
        if clone_snap.is_some() {
            return self.rbd_or_raise(RbdOp::Rename {
                image: spec.clone(),
                new_name: Name::concat(&[&spec.name, ".deleted"]),
            });
        }
        // @utils.retry(rbd.ImageBusy, retries=3)
        for attempt in 1..=3 {
            match self.rbd(RbdOp::Remove { image: spec.clone() })? {
                Ok(()) => break,
                Err(BackendErrorKind::Busy) if attempt < 3 => {}
                Err(BackendErrorKind::Busy) => {
                    return raise(
                        ErrorClass::VolumeIsBusy,
                        "ImageBusy error raised while deleting rbd volume. This may have been caused by a connection from a client that has crashed and, if so, may be resolved by retrying the delete after 30 seconds has elapsed.",
                    )
                }
                Err(BackendErrorKind::NotFound) => return Ok(()),
                Err(k) => return raise(ErrorClass::Rbd(k), format!("remove {spec}: {k}")),
            }
        }
        if let Some((_p, parent, parent_snap)) = parent {
            self.delete_clone_parent_refs(&parent, &parent_snap, false)?;
        }
        Ok(())
    }
}

impl From<crate::rbd::ApplyError> for Exc {
    fn from(e: crate::rbd::ApplyError) -> Self {
        match e {
            crate::rbd::ApplyError::Unknown(f) => Stop::Need(vec![f.into()]),
            crate::rbd::ApplyError::Failed(k) => {
                Stop::Raise(super::ctx::Raised::new(ErrorClass::Rbd(k), k.to_string()))
            }
        }
    }
}
