//! `cinder/volume/drivers/rbd.py` (`RBDDriver`), call for call, against the
//! planning context. Each function names the upstream method it follows;
//! `RBD-n` is a rule id (docs/RULES.md).

use crate::error::BackendErrorKind;
use crate::location::RbdLocation;
use crate::model::{Bytes, GiB, Image, Snapshot, Volume, VolumeType, GIB, MIB};
use crate::plan::ErrorClass;
use crate::rbd::{ImageSpec, Name, RbdOp};
use crate::trace::{Reason, Stage, Subject};

use super::ctx::{raise, Ctx, Exc, Flow, Raised};
use super::Stop;

/// `RBD_FEATURE_EXCLUSIVE_LOCK`
const FEATURE_EXCLUSIVE_LOCK: u64 = 4;
/// `RBD_FEATURE_OBJECT_MAP`
const FEATURE_OBJECT_MAP: u64 = 8;
/// `RBD_FEATURE_FAST_DIFF`
const FEATURE_FAST_DIFF: u64 = 16;
/// `RBD_FEATURE_JOURNALING`
const FEATURE_JOURNALING: u64 = 64;
/// `RBDDriver.MULTIATTACH_EXCLUSIONS`
const MULTIATTACH_EXCLUSIONS: u64 =
    FEATURE_EXCLUSIVE_LOCK | FEATURE_OBJECT_MAP | FEATURE_FAST_DIFF | FEATURE_JOURNALING;

/// `int(math.log(bytes, 2))` for a positive size.
pub(crate) fn order_of(bytes: u128) -> u8 {
    (127 - bytes.max(1).leading_zeros()) as u8
}

impl Ctx<'_> {
    /// `rbd_pool`
    pub(crate) fn rbd_pool(&self) -> Name {
        self.rbd_pool.clone()
    }

    /// `rbd_store_chunk_size * units.Mi`, exact as Python computes it (an
    /// `i64` option times 2^20 fits 128 bits; no saturated order).
    fn chunk_bytes(&self) -> u128 {
        (self.cfg.backend.rbd_store_chunk_size.max(1) as u128) * u128::from(MIB)
    }

    /// `size * units.Gi` as it reaches librbd: the Cython binding takes a
    /// `uint64_t` and raises `OverflowError` for a larger Python int, before
    /// the call is made (so no step is recorded).
    fn gib_to_bytes(&self, size: GiB) -> Flow<Bytes> {
        to_librbd_size(gib_in_bytes(size))
    }

    /// The object order Cinder uses for new images.
    pub(crate) fn chunk_order(&self) -> u8 {
        order_of(self.chunk_bytes())
    }

    pub(crate) fn volume_spec(&self, volume: &Volume) -> ImageSpec {
        ImageSpec::new(self.rbd_pool(), volume.rbd_name())
    }

    /// The volume's type (`volume.volume_type`); a missing type row reads as
    /// a type without extra specs.
    fn type_of(&self, volume: &Volume) -> Flow<Option<&VolumeType>> {
        self.volume_type(&volume.volume_type)
    }

    // ------------------------------------------------------------ create_volume (RBD-31)

    /// `RBDDriver.create_volume`.
    pub(crate) fn rbd_create_volume(&mut self, volume: &Volume) -> Flow<()> {
        let spec = self.volume_spec(volume);
        let order = self.chunk_order();
        if volume.is_encrypted() {
            // `_create_encrypted_volume`: a LUKS file of the volume size is
            // built locally and `rbd import`ed (a CLI failure surfaces as
            // ProcessExecutionError).
            // `self._execute` (one attempt): the CLI error propagates as is.
            let size = self.gib_to_bytes(volume.size)?;
            return match self.rbd(RbdOp::Import { image: spec, size, order })? {
                Ok(()) => Ok(()),
                Err(k) => raise(ErrorClass::ProcessExecutionError, format!("rbd import failed: {k}")),
            };
        }
        self.rados(&spec.pool)?;
        let features = self.cinder_features()?;
        let size = self.gib_to_bytes(volume.size)?;
        self.rbd_or_raise(RbdOp::Create { image: spec.clone(), size, order, features })?;
        if let Err(e) = self.setup_volume(volume) {
            if let Stop::Raise(_) = &e {
                // save_and_reraise_exception: remove the image, re-raise.
                let _ = self.rbd(RbdOp::Remove { image: spec })?;
            }
            return Err(e);
        }
        Ok(())
    }

    /// `RBDDriver._setup_volume` for a new image: multiattach and
    /// replication features (QoS changes image metadata only).
    pub(crate) fn setup_volume(&mut self, volume: &Volume) -> Flow<()> {
        let vtype = self.type_of(volume)?.cloned();
        let (want_replication, want_multiattach) = match &vtype {
            Some(t) => (t.spec_is_true("replication_enabled"), t.spec_is_true("multiattach")),
            None => (false, false),
        };
        if want_replication && want_multiattach {
            return raise(ErrorClass::RbdDriverException, "Replication and Multiattach are mutually exclusive.");
        }
        let spec = self.volume_spec(volume);
        if want_replication {
            // `_enable_replication`: exclusive-lock and journaling on, then
            // mirroring (not a recorded call). Errors → ReplicationError.
            let r = self.enable_features(&spec, &[FEATURE_EXCLUSIVE_LOCK, FEATURE_JOURNALING]);
            match r {
                Err(Stop::Raise(_)) => {
                    return raise(ErrorClass::ReplicationError, "Failed to enable image replication")
                }
                other => other?,
            }
        }
        if want_multiattach {
            // `_enable_multiattach`
            self.rados(&spec.pool)?;
            let image = match self.open(&spec, None)? {
                Ok(i) => i,
                Err(k) => return raise(ErrorClass::Rbd(k), format!("open {spec}: {k}")),
            };
            let change = MULTIATTACH_EXCLUSIONS & image.features;
            if change != 0 {
                self.rbd_or_raise(RbdOp::UpdateFeatures { image: spec, features: change, enabled: false })?;
            }
        }
        Ok(())
    }

    fn enable_features(&mut self, spec: &ImageSpec, bits: &[u64]) -> Flow<()> {
        self.rados(&spec.pool)?;
        let image = match self.open(spec, None)? {
            Ok(i) => i,
            Err(k) => return raise(ErrorClass::Rbd(k), format!("open {spec}: {k}")),
        };
        for &bit in bits {
            if image.features & bit == 0 {
                self.rbd_or_raise(RbdOp::UpdateFeatures { image: spec.clone(), features: bit, enabled: true })?;
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------ clone_image (RBD-5..13)

    /// The rest of `RBDDriver._is_cloneable` for a location of this
    /// cluster (parsing and the fsid were checked from the memo):
    /// `Ok(Some(location))` when cloneable, `Ok(None)` with the reason in
    /// the trace otherwise. Errors that are not `rbd.Error` (a missing pool)
    /// propagate.
    pub(crate) fn is_cloneable(
        &mut self,
        loc: &RbdLocation,
        image: &Image,
        subject: &dyn Fn() -> Subject,
    ) -> Flow<Option<RbdLocation>> {
        if image.disk_format.as_deref() != Some("raw") {
            self.rejected(
                Stage::DriverClone,
                subject(),
                Reason::NotRaw { disk_format: image.disk_format().to_owned() },
            );
            return Ok(None);
        }
        // RBDVolumeProxy(self, image, pool=pool, snapshot=snap, read_only=True)
        if let Err(Stop::Raise(r)) = self.rados(&loc.pool) {
            self.rejected(Stage::DriverClone, subject(), Reason::PoolMissing { pool: loc.pool.clone() });
            return Err(Stop::Raise(r));
        }
        let spec = ImageSpec::new(loc.pool.clone(), loc.image.clone());
        match self.open(&spec, Some(&loc.snapshot))? {
            Ok(_) => Ok(Some(loc.clone())),
            Err(k) => {
                self.rejected(Stage::DriverClone, subject(), Reason::CannotOpen { error: k });
                Ok(None)
            }
        }
    }

    /// `RBDDriver._clone` (RBD-13): clone `src_pool/src_image@src_snap` to
    /// the volume, with the stripe-unit-derived order, then set it up.
    pub(crate) fn rbd_clone(&mut self, volume: &Volume, src_pool: &str, src_image: &str, src_snap: &str) -> Flow<()> {
        self.rados(src_pool)?;
        // _get_stripe_unit opens the source head read-only.
        let src = ImageSpec::new(src_pool, src_image);
        let stripe = match self.open(&src, None)? {
            Ok(i) => i.stripe_unit.0,
            Err(k) => return raise(ErrorClass::Rbd(k), format!("open {src}: {k}")),
        };
        let order = order_of(u128::from(stripe).max(self.chunk_bytes()));
        let features = self.cinder_features()?;
        let pool = self.rbd_pool();
        self.rados(&pool)?;
        let dest = self.volume_spec(volume);
        self.rbd_or_raise(RbdOp::Clone { parent: src.snap(src_snap), child: dest.clone(), order, features })?;
        if let Err(e) = self.setup_volume(volume) {
            if let Stop::Raise(_) = e {
                let _ = self.rbd(RbdOp::Remove { image: dest })?;
                return raise(ErrorClass::ReplicationError, "Failed to enable image replication");
            }
            return Err(e);
        }
        Ok(())
    }

    /// `RBDDriver._resize` (RBD-27): to `size` bytes, or the volume size.
    ///
    /// The size is a Python int (exact, up to 2^128 here): one that does not
    /// fit librbd's `uint64_t` raises `OverflowError` at `image.resize`,
    /// after the connection and the open, as upstream's binding does.
    pub(crate) fn rbd_resize(&mut self, volume: &Volume, size: Option<u128>) -> Flow<()> {
        let size = size.unwrap_or_else(|| gib_in_bytes(volume.size));
        let spec = self.volume_spec(volume);
        self.rados(&spec.pool)?;
        if let Err(k) = self.open(&spec, None)? {
            return raise(ErrorClass::Rbd(k), format!("open {spec}: {k}"));
        }
        let size = to_librbd_size(size)?;
        self.rbd_or_raise(RbdOp::Resize { image: spec, size })
    }

    /// `RBDDriver.extend_volume`: any error becomes
    /// `VolumeBackendAPIException`.
    pub(crate) fn rbd_extend_volume(&mut self, volume: &Volume, new_size: GiB) -> Flow<()> {
        match self.rbd_resize(volume, Some(gib_in_bytes(new_size))) {
            Err(Stop::Raise(r)) => raise(
                ErrorClass::VolumeBackendApiException,
                format!("Failed to Extend Volume {}: {}", volume.rbd_name(), r.message),
            ),
            other => other,
        }
    }

    // ------------------------------------------------------------ create_cloned_volume (RBD-17..22)

    /// `RBDDriver._get_clone_depth` (RBD-16): ancestors reachable through
    /// Cinder clone links, each opened by name in the volume pool.
    pub(crate) fn clone_depth(&mut self, name: &str) -> Flow<u32> {
        let pool = self.rbd_pool();
        let mut depth = 0u32;
        let mut current = Name::from(name);
        loop {
            let spec = ImageSpec::new(pool.clone(), current.clone());
            if let Err(k) = self.open(&spec, None)? {
                return raise(ErrorClass::Rbd(k), format!("open {spec}: {k}"));
            }
            match self.clone_info(&spec, None)? {
                Some((_pool, parent, _snap)) => {
                    depth += 1;
                    current = parent;
                    // A chain longer than any real one means a cycle in the
                    // facts; upstream would recurse until Python's limit.
                    if depth as usize > super::MAX_CLONE_CHAIN {
                        return Err(Stop::Inconsistent(format!("clone chain of {name} does not end")));
                    }
                }
                None => return Ok(depth),
            }
        }
    }

    /// `RBDDriver._get_clone_info` (RBD-15): the parent, if the image is a
    /// Cinder clone (its parent snapshot is `<name>.clone_snap`).
    pub(crate) fn clone_info(&mut self, spec: &ImageSpec, snap: Option<&str>) -> Flow<Option<(Name, Name, Name)>> {
        let parent = match self.parent_info(spec, snap)? {
            Ok(p) => p,
            Err(BackendErrorKind::NotFound) => return Ok(None),
            Err(k) => return raise(ErrorClass::Rbd(k), format!("parent_info {spec}: {k}")),
        };
        let name = spec.name.strip_suffix(".deleted").unwrap_or(&spec.name);
        if parent.snap.strip_suffix(".clone_snap") == Some(name) {
            Ok(Some((parent.pool, parent.image, parent.snap)))
        } else {
            Ok(None)
        }
    }

    /// `RBDDriver.create_cloned_volume`.
    pub(crate) fn rbd_create_cloned_volume(&mut self, volume: &Volume, src: &Volume) -> Flow<()> {
        let pool = self.rbd_pool();
        let src_spec = ImageSpec::new(pool.clone(), src.rbd_name());
        let dest = self.volume_spec(volume);
        let clone_snap = src_spec.snap(volume.clone_snap_name());
        let max_depth = self.cfg.backend.rbd_max_clone_depth;
        let vsubject = Subject::Volume { volume_id: volume.id.clone() };

        if max_depth <= 0 {
            // RBD-18: full copy, no _setup_volume.
            self.noted(Stage::CloneVolume, vsubject, Reason::FullCopyConfigured { max: max_depth });
            self.rados(&pool)?;
            if let Err(k) = self.open(&src_spec, None)? {
                return raise(ErrorClass::Rbd(k), format!("open {src_spec}: {k}"));
            }
            self.rbd_or_raise(RbdOp::Copy { src: src_spec, dst: dest })?;
            if volume.size != src.size {
                self.rbd_resize(volume, None)?;
            }
            return Ok(());
        }

        self.rados(&pool)?;
        let src_image = match self.open(&src_spec, None)? {
            Ok(i) => i,
            Err(k) => return raise(ErrorClass::Rbd(k), format!("open {src_spec}: {k}")),
        };
        let features = self.cinder_features()?;
        let order = order_of(u128::from(src_image.stripe_unit.0));
        // try: create_snap, protect_snap, clone; except: unprotect, remove_snap.
        let attempt = [
            RbdOp::CreateSnap { snap: clone_snap.clone() },
            RbdOp::ProtectSnap { snap: clone_snap.clone() },
            RbdOp::Clone { parent: clone_snap.clone(), child: dest.clone(), order, features },
        ];
        for op in attempt {
            let what = op.name();
            if let Err(k) = self.rbd(op)? {
                self.rejected(
                    Stage::CloneVolume,
                    Subject::Volume { volume_id: src.id.clone() },
                    Reason::CallFails { call: what.to_owned(), error: k },
                );
                // The cleanup calls are not guarded: their rbd errors escape.
                self.rbd_or_raise(RbdOp::UnprotectSnap { snap: clone_snap.clone() })?;
                self.rbd_or_raise(RbdOp::RemoveSnap { snap: clone_snap.clone() })?;
                return raise(
                    ErrorClass::VolumeBackendApiException,
                    format!("Failed to clone '{src_spec}@{}' to '{dest}', error: {what}: {k}", clone_snap.snap),
                );
            }
        }
        let depth = self.clone_depth(&src_spec.name)?;
        self.noted(
            Stage::CloneVolume,
            Subject::Volume { volume_id: src.id.clone() },
            Reason::CloneDepth { depth, max: max_depth },
        );
        if i64::from(depth) >= max_depth {
            if volume.use_quota {
                // Flatten the destination (RBD-20); errors become
                // VolumeBackendAPIException.
                if let Err(k) = self.open(&dest, None)? {
                    return raise(
                        ErrorClass::VolumeBackendApiException,
                        format!("Failed to flatten volume {dest}: {k}"),
                    );
                }
                if let Err(k) = self.rbd(RbdOp::Flatten { image: dest.clone() })? {
                    return raise(
                        ErrorClass::VolumeBackendApiException,
                        format!("Failed to flatten volume {dest}: {k}"),
                    );
                }
                for op in
                    [RbdOp::UnprotectSnap { snap: clone_snap.clone() }, RbdOp::RemoveSnap { snap: clone_snap.clone() }]
                {
                    if let Err(k) = self.rbd(op)? {
                        return raise(
                            ErrorClass::VolumeBackendApiException,
                            format!("Failed to remove temporary snap {}, error: {k}", clone_snap.snap),
                        );
                    }
                }
            } else {
                self.noted(Stage::CloneVolume, vsubject.clone(), Reason::TemporaryVolume);
            }
        }
        if let Err(e) = self.setup_volume(volume) {
            if let Stop::Raise(_) = e {
                self.rbd_or_raise(RbdOp::Remove { image: dest })?;
                self.rbd_or_raise(RbdOp::UnprotectSnap { snap: clone_snap.clone() })?;
                self.rbd_or_raise(RbdOp::RemoveSnap { snap: clone_snap })?;
                return raise(ErrorClass::ReplicationError, "Failed to enable image replication");
            }
            return Err(e);
        }
        if volume.size != src.size {
            self.rbd_resize(volume, None)?;
        }
        Ok(())
    }

    // ------------------------------------------------------------ create_volume_from_snapshot (RBD-23..26)

    /// `RBDDriver.create_volume_from_snapshot`.
    pub(crate) fn rbd_create_volume_from_snapshot(
        &mut self,
        volume: &Volume,
        snapshot: &Snapshot,
        snap_volume: &Volume,
    ) -> Flow<()> {
        let pool = self.rbd_pool();
        self.rbd_clone(volume, &pool, &snap_volume.rbd_name(), &snapshot.rbd_name())?;
        if volume.use_quota && self.cfg.backend.rbd_flatten_volume_from_snapshot {
            self.noted(
                Stage::FromSnapshot,
                Subject::Volume { volume_id: volume.id.clone() },
                Reason::FlattenConfigured,
            );
            // _flatten → _do_flatten: ImageNotFound is ignored.
            let spec = self.volume_spec(volume);
            self.rados(&pool)?;
            match self.open(&spec, None)? {
                Ok(_) => match self.rbd(RbdOp::Flatten { image: spec })? {
                    Ok(()) | Err(BackendErrorKind::NotFound) => {}
                    Err(k) => return raise(ErrorClass::Rbd(k), format!("flatten: {k}")),
                },
                Err(BackendErrorKind::NotFound) => {}
                Err(k) => return raise(ErrorClass::Rbd(k), format!("open: {k}")),
            }
        } else if !volume.use_quota && self.cfg.backend.rbd_flatten_volume_from_snapshot {
            self.noted(Stage::FromSnapshot, Subject::Volume { volume_id: volume.id.clone() }, Reason::TemporaryVolume);
        }
        if volume.size > snapshot.volume_size {
            let new_size = if volume.is_encrypted() {
                // Keep the LUKS header: current size + the difference.
                let spec = self.volume_spec(volume);
                let current = match self.open(&spec, None)? {
                    Ok(i) => i.size,
                    Err(k) => return raise(ErrorClass::Rbd(k), format!("open {spec}: {k}")),
                };
                Some(u128::from(current.0) + gib_in_bytes(GiB(volume.size.0 - snapshot.volume_size.0)))
            } else {
                None
            };
            self.rbd_resize(volume, new_size)?;
        }
        // _show_msg_check_clone_v2_api opens the snapshot's volume once.
        let spec = ImageSpec::new(pool, snap_volume.rbd_name());
        if let Err(k) = self.open(&spec, None)? {
            return raise(ErrorClass::Rbd(k), format!("open {spec}: {k}"));
        }
        Ok(())
    }

    // ------------------------------------------------------------ copy_image_to_volume (RBD-28..30)

    /// The part of `RBDDriver._copy_image_to_volume` after the download:
    /// delete the image `create_volume` made, `rbd import` the file, resize,
    /// set up. `file_size` is the size of the local raw file.
    pub(crate) fn rbd_import_downloaded(&mut self, volume: &Volume, file_size: Bytes) -> Flow<()> {
        // @retry(VolumeIsBusy) around delete_volume.
        let attempts = self.cfg.backend.rados_connection_retries.max(1);
        let mut tries = 0;
        loop {
            tries += 1;
            match self.rbd_delete_volume(volume) {
                Err(Stop::Raise(r)) if r.class == ErrorClass::VolumeIsBusy && tries < attempts => continue,
                other => {
                    other?;
                    break;
                }
            }
        }
        let spec = self.volume_spec(volume);
        let order = self.chunk_order();
        // `_try_execute`: `num_shell_tries` attempts of the CLI.
        let tries = self.cfg.backend.num_shell_tries.max(1);
        for attempt in 1..=tries {
            match self.rbd(RbdOp::Import { image: spec.clone(), size: file_size, order })? {
                Ok(()) => break,
                Err(k) if attempt == tries => {
                    return raise(ErrorClass::ProcessExecutionError, format!("rbd import failed: {k}"))
                }
                Err(_) => {}
            }
        }
        self.rbd_resize(volume, None)?;
        match self.setup_volume(volume) {
            Err(Stop::Raise(_)) => raise(ErrorClass::ReplicationError, "Failed to enable image replication"),
            other => other,
        }
    }
}

/// `size * units.Gi` with Python's exact integers.
fn gib_in_bytes(size: GiB) -> u128 {
    u128::from(size.0) * u128::from(GIB)
}

/// A Python int size handed to librbd's Cython binding (`uint64_t`): too
/// large raises `OverflowError`, never a saturated size.
fn to_librbd_size(bytes: u128) -> Flow<Bytes> {
    match u64::try_from(bytes) {
        Ok(b) => Ok(Bytes(b)),
        Err(_) => raise(
            ErrorClass::OverflowError,
            format!("a size of {bytes} bytes does not fit librbd's 64-bit size (at most {} bytes)", u64::MAX),
        ),
    }
}

/// `ceph.CephBackupDriver.backup_snapshot_name_pattern`:
/// `^backup\.([a-z0-9\-]+?)\.snap\.(.+)$` with Python `re.search`
/// semantics. Returns the matched text (`group(0)`).
pub(crate) fn backup_snapshot_match(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("backup.")?;
    let id_len = rest.bytes().take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-').count();
    if id_len == 0 {
        return None;
    }
    let tail = rest[id_len..].strip_prefix(".snap.")?;
    // `.+$`: one or more non-newline characters up to the end, or up to a
    // final newline (which `$` also matches before, and group(0) excludes).
    let body = tail.strip_suffix('\n').unwrap_or(tail);
    if body.is_empty() || body.contains('\n') {
        return None;
    }
    Some(&name[..name.len() - (tail.len() - body.len())])
}

impl From<Raised> for Exc {
    fn from(r: Raised) -> Self {
        Stop::Raise(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_matches_python_log2() {
        assert_eq!(order_of(4 * MIB as u128), 22);
        assert_eq!(order_of(8 * MIB as u128), 23);
        assert_eq!(order_of(3 * MIB as u128), 21);
        // The largest chunk size the option holds: exact, not saturated at
        // 2^64 (Python computes `int(math.log(2**63 * 2**20, 2))` = 82).
        assert_eq!(order_of((i64::MAX as u128) * u128::from(MIB)), 82);
        assert_eq!(order_of(1), 0);
    }

    #[test]
    fn backup_snapshot_names() {
        assert_eq!(backup_snapshot_match("backup.8888-ab.snap.1700000000.0"), Some("backup.8888-ab.snap.1700000000.0"));
        assert_eq!(backup_snapshot_match("backup.ABC.snap.1"), None, "upper case is not in the id class");
        assert_eq!(backup_snapshot_match("backup..snap.1"), None);
        assert_eq!(backup_snapshot_match("backup.a.snap."), None);
        assert_eq!(backup_snapshot_match("backup.a.snap.x\n"), Some("backup.a.snap.x"));
        assert_eq!(backup_snapshot_match("backup.a.snap.x\ny"), None);
        assert_eq!(backup_snapshot_match("snapshot-1"), None);
    }
}
