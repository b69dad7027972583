//! `VolumeManager.create_snapshot` (`volume/manager.py`) with
//! `RBDDriver.create_snapshot` (`volume/drivers/rbd.py`), call for call.

use crate::model::{Snapshot, SnapshotId};
use crate::plan::{DbWrite, ErrorClass};
use crate::rbd::RbdOp;
use crate::trace::{Reason, Stage, Subject};

use super::ctx::{raise, Ctx, Flow};
use super::Stop;

/// `snapshot.status` after a successful create (`SnapshotStatus.AVAILABLE`).
const AVAILABLE: &str = "available";
/// `snapshot.status` after a failed one (`SnapshotStatus.ERROR`).
const ERROR: &str = "error";

/// `VolumeManager.create_snapshot` for the request's snapshot: inside the
/// `try`, `require_driver_initialized` and the driver call; on any
/// exception `snapshot.status = ERROR; snapshot.save()` and re-raise
/// (`save_and_reraise_exception`); then `snapshot.status = AVAILABLE`.
///
/// Not modelled: `volume_glance_metadata_copy_to_snapshot` for bootable
/// volumes (this crate keeps no snapshot glance metadata; it changes nothing
/// in the cluster), notifications and user messages.
pub(crate) fn create_snapshot(ctx: &mut Ctx<'_>, snapshot_id: &SnapshotId) -> Flow<()> {
    // The manager receives the snapshot object over RPC; a row that is gone
    // is the model's way of saying there is nothing to act on.
    let snapshot = match ctx.db.snapshot(snapshot_id)?.cloned() {
        Some(s) => s,
        None => return raise(ErrorClass::SnapshotNotFound, format!("Snapshot {snapshot_id} could not be found.")),
    };
    match driver_create_snapshot(ctx, &snapshot) {
        Ok(()) => set_status(ctx, &snapshot, AVAILABLE),
        Err(Stop::Raise(r)) => {
            ctx.rejected(
                Stage::Snapshot,
                Subject::Snapshot { snapshot_id: snapshot_id.clone() },
                Reason::Raised { error: r.class, message: r.message.clone() },
            );
            set_status(ctx, &snapshot, ERROR)?;
            Err(Stop::Raise(r))
        }
        Err(other) => Err(other),
    }
}

/// `require_driver_initialized`, then `RBDDriver.create_snapshot`:
/// `RBDVolumeProxy(self, snapshot.volume_name)` (connect, open the volume's
/// image: `rbd.ImageNotFound` escapes), `create_snap(snapshot.name)`,
/// `protect_snap(snapshot.name)`. Nothing is cleaned up when
/// `protect_snap` fails: upstream leaves the unprotected snapshot behind.
fn driver_create_snapshot(ctx: &mut Ctx<'_>, snapshot: &Snapshot) -> Flow<()> {
    super::flow::driver_initialized(ctx)?;
    // `snapshot.volume_name` lazy-loads the volume row.
    let volume = match ctx.db.volume(&snapshot.volume_id)?.cloned() {
        Some(v) => v,
        None => return raise(ErrorClass::VolumeNotFound, format!("Volume {} could not be found.", snapshot.volume_id)),
    };
    let spec = ctx.volume_spec(&volume);
    ctx.rados(&spec.pool)?;
    if let Err(k) = ctx.open(&spec, None)? {
        return raise(ErrorClass::Rbd(k), format!("open {spec}: {k}"));
    }
    ctx.chosen(Stage::Snapshot, Subject::Snapshot { snapshot_id: snapshot.id.clone() });
    let snap = spec.snap(snapshot.rbd_name());
    ctx.rbd_or_raise(RbdOp::CreateSnap { snap: snap.clone() })?;
    ctx.rbd_or_raise(RbdOp::ProtectSnap { snap })
}

/// `snapshot.status = ...; snapshot.save()` (only when it changes).
fn set_status(ctx: &mut Ctx<'_>, snapshot: &Snapshot, status: &str) -> Flow<()> {
    let current = ctx.db.snapshot(&snapshot.id)?.cloned().unwrap_or_else(|| snapshot.clone());
    if current.status == status {
        return Ok(());
    }
    ctx.db_write(DbWrite::UpdateSnapshot {
        snapshot_id: snapshot.id.clone(),
        status: status.to_owned(),
        previous: current.status,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::error::BackendErrorKind;
    use crate::memory::{FaultInjector, MemoryCluster, MemoryImageService, MemoryVolumeDb};
    use crate::model::{Bytes, GiB, Snapshot, Timestamp, Volume, GIB};
    use crate::plan::{Action, DbWrite, ErrorClass, Operation, Outcome, Plan};
    use crate::planner::{Policy, Request};
    use crate::ports::Driver;
    use crate::rbd::{Cluster, ImageSpec, RbdImage, RbdOp};
    use crate::shell::{self, Backends, ExecOptions};

    const VOL: &str = "11111111-1111-4111-8111-111111111111";
    const SNAP: &str = "33333333-3333-4333-8333-333333333333";

    struct World {
        cluster: MemoryCluster,
        images: MemoryImageService,
        db: MemoryVolumeDb,
        faults: FaultInjector,
    }

    impl World {
        fn new(with_image: bool) -> Self {
            let mut c = Cluster::new("fsid");
            c.add_pool("rbd");
            if with_image {
                c.put_image(&ImageSpec::new("rbd", format!("volume-{VOL}")), RbdImage::new(Bytes(GIB)));
            }
            let faults = FaultInjector::new();
            let db = MemoryVolumeDb::new().with_faults(faults.clone());
            db.add_volume(Volume::new(VOL, "p1", GiB(1)).on_host("hostA@ceph#ceph"));
            db.add_snapshot(Snapshot {
                id: SNAP.into(),
                volume_id: VOL.into(),
                volume_size: GiB(1),
                status: "creating".into(),
                project_id: "p1".into(),
                encryption_key_id: None,
            });
            let cluster = MemoryCluster::new(c).with_faults(faults.clone());
            Self { cluster, images: MemoryImageService::new(), db, faults }
        }

        fn backends(&self) -> Backends<'_> {
            Backends { driver: &self.cluster, images: &self.images, db: &self.db }
        }

        async fn plan(&self) -> Plan {
            let request = Request {
                operation: Operation::CreateSnapshot { snapshot_id: SNAP.into() },
                volume_id: VOL.into(),
                now: Timestamp::EPOCH,
            };
            shell::plan(self.backends(), &request, &Config::default(), &Policy::faithful()).await.unwrap().0
        }

        fn status(&self) -> String {
            self.db.get_snapshot(&SNAP.into()).unwrap().status
        }
    }

    fn names(p: &Plan) -> Vec<String> {
        p.steps
            .iter()
            .map(|s| match &s.action {
                Action::Rbd { op } => op.name().to_owned(),
                Action::Db { write: DbWrite::UpdateSnapshot { status, .. } } => format!("snapshot {status}"),
                other => other.to_string(),
            })
            .collect()
    }

    #[tokio::test]
    async fn creates_and_protects_the_snapshot_then_marks_it_available() {
        let w = World::new(true);
        let p = w.plan().await;
        assert_eq!(p.outcome, Outcome::Success);
        assert_eq!(names(&p), ["create_snap", "protect_snap", "snapshot available"]);
        shell::execute(&p, w.backends(), &ExecOptions::default()).await.unwrap();
        let c = w.cluster.snapshot();
        let img = c.open(&ImageSpec::new("rbd", format!("volume-{VOL}")), None).unwrap();
        assert!(img.snap(&format!("snapshot-{SNAP}")).is_some_and(|s| s.protected));
        assert_eq!(w.status(), "available");
    }

    #[tokio::test]
    async fn a_missing_image_fails_the_snapshot_with_status_error() {
        let w = World::new(false);
        let p = w.plan().await;
        assert!(
            matches!(p.outcome, Outcome::Failure { error: ErrorClass::Rbd(BackendErrorKind::NotFound), .. }),
            "{:?}",
            p.outcome
        );
        assert_eq!(names(&p), ["snapshot error"]);
        shell::execute(&p, w.backends(), &ExecOptions::default()).await.unwrap();
        assert_eq!(w.status(), "error");
    }

    #[tokio::test]
    async fn an_existing_rbd_snapshot_is_a_planned_failure() {
        let w = World::new(true);
        let snap = ImageSpec::new("rbd", format!("volume-{VOL}")).snap(format!("snapshot-{SNAP}"));
        w.cluster.apply(&RbdOp::CreateSnap { snap }, None).await.unwrap();
        let p = w.plan().await;
        assert!(matches!(p.outcome, Outcome::Failure { error: ErrorClass::Rbd(BackendErrorKind::AlreadyExists), .. }));
        assert_eq!(names(&p), ["create_snap", "snapshot error"]);
    }

    #[tokio::test]
    async fn a_failed_protect_is_undone_and_the_snapshot_marked_error() {
        let w = World::new(true);
        let before = w.cluster.snapshot();
        let p = w.plan().await;
        w.faults.fail_call(1, BackendErrorKind::Unavailable);
        let err = shell::execute(&p, w.backends(), &ExecOptions::default()).await.unwrap_err();
        assert_eq!(err.step, 1);
        assert!(err.fully_undone(), "{err:?}");
        assert_eq!(w.cluster.snapshot(), before, "remove_snap undid create_snap");
        assert_eq!(w.status(), "error");
    }
}
