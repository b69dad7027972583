//! Executing a plan through the ports, and undoing it when the world does
//! not behave as the plan expected.

use std::time::Instant;

use tracing::Instrument as _;

use crate::error::{BackendError, BackendErrorKind};
use crate::model::VolumeStatus;
use crate::plan::{Action, DbWrite, ErrorClass, Expect, Operation, Outcome, Plan, VolumeUpdate};
use crate::ports::DownloadedImage;

use super::leftover::Leftover;
use super::undo::{observe, read, status_key, Key, Observed, Skip, Tracker, Val};
use super::Backends;

/// How the executor behaves when a step does not do what the plan expects.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecOptions {
    /// After undoing, mark the volume (or snapshot) being created `error`,
    /// as upstream's revert does. With `false` the database is left as
    /// before the plan ran (rows the plan inserted are soft-deleted, Cinder's
    /// way of removing a row).
    pub mark_error_on_failure: bool,
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self { mark_error_on_failure: true }
    }
}

/// What happened to one undo action.
#[derive(Debug)]
pub struct Undone {
    /// The step it undoes.
    pub step: usize,
    /// The action.
    pub action: Action,
    /// How it went.
    pub result: Result<(), BackendError>,
}

/// A successful run: every step did what the plan said.
#[derive(Debug)]
#[non_exhaustive]
pub struct Report {
    /// Steps run, in order (all of them).
    pub steps_run: usize,
    /// The plan's outcome (a faithful plan may end with upstream's error;
    /// then the steps ran exactly as upstream's would, and nothing is undone).
    pub outcome: Outcome,
}

/// What the call of the diverging step did, as far as the executor could
/// tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepEffect {
    /// It succeeded where the plan expected a failure: its effect is in
    /// place (the planner gave such a step no undo; see
    /// [`Diverged::leftovers`]).
    Succeeded,
    /// It failed, and reading back through the ports showed that it changed
    /// nothing (or it changes nothing that lasts, like a download).
    Nothing,
    /// It failed, but reading back showed its effect in place: the reply
    /// was lost after the backend performed it. It is undone like a
    /// completed step.
    Applied,
    /// It failed, and what it changed could not be read back entirely (a
    /// read failed, the object changed otherwise, or the port has no read
    /// for it, like glance metadata): its undo is run all the same, and
    /// what stays unknown is a [`Leftover::Unknown`].
    Unknown,
}

/// Whether the volume (or snapshot) being created was marked `error`
/// after the undo.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorMark {
    /// Not asked for: [`ExecOptions::mark_error_on_failure`] is off, or the
    /// operation is a delete (upstream leaves the row alone).
    NotAsked,
    /// Marked `error` (also when the write reported a failure but reading
    /// the row back showed the status written).
    Marked,
    /// The write failed: the status is what the undo left (a difference
    /// from before is in [`Diverged::leftovers`]).
    Failed(BackendError),
}

/// A run that stopped because a step did not do what the plan expected.
///
/// Its [`source`](std::error::Error::source) is the backend's error when
/// the step failed unexpectedly (none when it succeeded where the plan
/// expected a failure).
#[derive(Debug)]
#[non_exhaustive]
pub struct Diverged {
    /// Index of the step.
    pub step: usize,
    /// Its action.
    pub action: Action,
    /// What the plan expected.
    pub expected: Expect,
    /// What happened.
    pub actual: Result<(), BackendError>,
    /// What the call did, read back through the ports when it failed.
    pub effect: StepEffect,
    /// The undo actions run, newest step first. A failed one was read back:
    /// whether its effect is in place anyway shows in
    /// [`Diverged::leftovers`].
    pub undone: Vec<Undone>,
    /// Steps whose effect is in place but that have no undo (removing or
    /// flattening an image that existed before, a trash move, an eviction,
    /// a step expected to fail that succeeded).
    pub not_undoable: Vec<usize>,
    /// Whether what was being created was marked `error`.
    pub error_mark: ErrorMark,
    /// What is different from before the plan ran, after the undo: the
    /// effects of steps that cannot be undone, of undo actions that failed,
    /// and whatever could not be read back. Empty exactly when the plan
    /// left everything as it found it (up to the allowances described at
    /// [`Leftover`]).
    pub leftovers: Vec<Leftover>,
}

impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let got = if self.actual.is_ok() { "it succeeded" } else { "it failed" };
        write!(f, "step {} ({}) was expected to {}, but {got}", self.step + 1, self.action, self.expected)
    }
}

impl std::error::Error for Diverged {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.actual {
            Ok(()) => None,
            Err(e) => Some(e),
        }
    }
}

impl Diverged {
    /// Whether the plan left everything as it found it: no
    /// [`leftovers`](Diverged::leftovers). An undo action that reported a
    /// failure but took effect (its reply was lost) leaves nothing over; a
    /// failed `error` mark leaves the status as it was before, which is not
    /// a leftover either (see [`Diverged::error_mark`]).
    pub fn fully_undone(&self) -> bool {
        self.leftovers.is_empty()
    }
}

/// Runs a plan's steps in order through the ports.
///
/// Each step's result is compared with its [`Expect`]ation. When all match,
/// the plan's [`Outcome`] is reported. When one does not (the world changed
/// since the facts were gathered, or a backend failed):
///
/// 1. a failed call is read back through the ports (the image with its
///    snapshots and protection through [`Driver::image_info`], the volume
///    and snapshot rows, the image-cache rows), since it may have taken
///    effect and lost its reply;
/// 2. the steps whose effect is in place are undone newest first with their
///    [`Step::undo`](crate::plan::Step::undo) actions. An undo action is
///    skipped only when what it would write is already so given what is in
///    place now (a snapshot the plan created and later removed needs no
///    removal; a step that was itself undone excuses nothing), or when the
///    image or row it changes is gone. A failed undo action is read back
///    too;
/// 3. the volume (or snapshot) being created is marked `error`, as
///    upstream's revert does ([`ExecOptions::mark_error_on_failure`]);
/// 4. what is still different from before is listed in
///    [`Diverged::leftovers`].
///
/// [`Driver::image_info`]: crate::ports::Driver::image_info
pub async fn execute(plan: &Plan, backends: Backends<'_>, options: &ExecOptions) -> Result<Report, Box<Diverged>> {
    let span = tracing::info_span!(
        "execute",
        operation = plan.operation.name(),
        volume_id = %plan.volume_id,
        steps = plan.steps.len()
    );
    execute_steps(plan, backends, options).instrument(span).await
}

async fn execute_steps(plan: &Plan, backends: Backends<'_>, options: &ExecOptions) -> Result<Report, Box<Diverged>> {
    let mut download: Option<DownloadedImage> = None;
    for (i, step) in plan.steps.iter().enumerate() {
        let started = Instant::now();
        let actual = run(&step.action, backends, &mut download).await;
        let elapsed_us = started.elapsed().as_micros() as u64;
        let matches = match (&actual, step.expect) {
            (Ok(()), Expect::Ok) => true,
            (Err(e), Expect::Fail(k)) => e.kind == k,
            _ => false,
        };
        if matches {
            tracing::debug!(step = i + 1, action = %step.action, expected = %step.expect, elapsed_us, "step");
        } else {
            tracing::warn!(
                step = i + 1,
                action = %step.action,
                expected = %step.expect,
                error = actual.as_ref().err().map(tracing::field::display),
                elapsed_us,
                "step diverged from the plan; undoing"
            );
            let diverged = recover(plan, i, actual, backends, &mut download, options).await;
            return Err(Box::new(diverged));
        }
    }
    tracing::info!(outcome = %plan.outcome.error().map_or("success", |e| e.name()), "plan executed");
    Ok(Report { steps_run: plan.steps.len(), outcome: plan.outcome.clone() })
}

async fn run(action: &Action, b: Backends<'_>, download: &mut Option<DownloadedImage>) -> Result<(), BackendError> {
    match action {
        Action::Rbd { op } => b.driver.apply(op, download.clone()).await,
        Action::DownloadImage { image_id, expect } => {
            let d = b.images.download(image_id).await?;
            if d.size != expect.size || d.detected_format != expect.disk_format {
                return Err(BackendError::new(BackendErrorKind::Rejected, format!("download image {image_id}"))
                    .with_detail(format!(
                        "got {} {}, planned {} {}",
                        d.detected_format, d.size, expect.disk_format, expect.size
                    )));
            }
            *download = Some(d);
            Ok(())
        }
        Action::Db { write } => b.db.write(write).await,
    }
}

/// After step `failed` diverged: reads back what it did, undoes what is in
/// place newest first, marks the failure, and lists what is left over.
async fn recover(
    plan: &Plan,
    failed: usize,
    actual: Result<(), BackendError>,
    b: Backends<'_>,
    download: &mut Option<DownloadedImage>,
    options: &ExecOptions,
) -> Diverged {
    // Cache rows are read by image; a create from an image touches that
    // image's rows.
    let hint = match &plan.operation {
        Operation::CreateFromImage { image_id } => Some(image_id),
        _ => None,
    };
    let mut tracker = Tracker::default();
    for step in plan.steps[..failed].iter().filter(|s| s.expect == Expect::Ok) {
        tracker.touch(&step.action, Some(step));
        tracker.apply(&step.action);
    }
    let step = &plan.steps[failed];
    if step.expect == Expect::Ok || actual.is_ok() {
        tracker.touch(&step.action, Some(step));
    } else {
        // The plan expected this call to fail, so it says nothing about
        // the state before it: take what is there now (a call expected to
        // fail that took effect and lost its reply is indistinguishable).
        tracker.learn(&step.action, b, hint).await;
    }
    let effect = match &actual {
        Ok(()) => {
            tracker.apply(&step.action);
            StepEffect::Succeeded
        }
        Err(_) => match observe(&step.action, b, &mut tracker, hint).await {
            Observed::Applied => StepEffect::Applied,
            Observed::Nothing => StepEffect::Nothing,
            Observed::Unknown => StepEffect::Unknown,
        },
    };
    if effect != StepEffect::Nothing && actual.is_err() {
        tracing::warn!(step = failed + 1, action = %step.action, effect = ?effect, "the failed call was read back");
    }

    let mut undone = Vec::new();
    let mut not_undoable = Vec::new();
    for j in (0..=failed).rev() {
        let step = &plan.steps[j];
        let in_place = if j < failed { step.expect == Expect::Ok } else { effect != StepEffect::Nothing };
        if !in_place {
            continue;
        }
        if !step.undoable || step.expect != Expect::Ok {
            tracing::error!(step = j + 1, action = %step.action, "cannot be undone: its effect remains");
            not_undoable.push(j);
            continue;
        }
        for action in &step.undo {
            if let Some(why) = tracker.skip(action) {
                let why = match why {
                    Skip::InEffect => "already in effect",
                    Skip::Moot => "what it changes is gone",
                };
                tracing::debug!(step = j + 1, undo = %action, why, "undo not needed");
                continue;
            }
            tracker.touch(action, None);
            let result = run(action, b, download).await;
            match &result {
                Ok(()) => {
                    tracker.apply(action);
                    tracing::info!(step = j + 1, undo = %action, "undo");
                }
                Err(e) => {
                    let seen = observe(action, b, &mut tracker, hint).await;
                    tracing::error!(
                        step = j + 1,
                        undo = %action,
                        error = %e,
                        read_back = ?seen,
                        "undo failed: its step's effect remains"
                    );
                }
            }
            undone.push(Undone { step: j, action: action.clone(), result });
        }
    }
    let (error_mark, allowed) = if options.mark_error_on_failure {
        mark_error(plan, b, &mut tracker).await
    } else {
        (ErrorMark::NotAsked, None)
    };
    let leftovers = tracker.leftovers(allowed.as_ref());
    for left in &leftovers {
        tracing::error!(left = %left, "left over after undo");
    }
    Diverged {
        step: failed,
        action: step.action.clone(),
        expected: step.expect,
        actual,
        effect,
        undone,
        not_undoable,
        error_mark,
        leftovers,
    }
}

/// Marks what the operation was making `error`, as upstream does when it
/// fails: the volume for creates (`OnFailureRescheduleTask.revert`), the
/// snapshot for snapshots (`VolumeManager.create_snapshot`'s
/// `save_and_reraise_exception`). Deletes leave the row alone. Returns the
/// status key it may leave `error` (not a leftover).
async fn mark_error(plan: &Plan, b: Backends<'_>, tracker: &mut Tracker) -> (ErrorMark, Option<Key>) {
    let write = match &plan.operation {
        Operation::DeleteVolume => return (ErrorMark::NotAsked, None),
        Operation::CreateSnapshot { snapshot_id } => DbWrite::UpdateSnapshot {
            snapshot_id: snapshot_id.clone(),
            status: "error".into(),
            previous: String::new(),
        },
        _ => DbWrite::UpdateVolume {
            volume_id: plan.volume_id.clone(),
            set: VolumeUpdate { status: Some(VolumeStatus::Error), ..Default::default() },
            previous: VolumeUpdate::default(),
        },
    };
    let key = status_key(&write);
    let tracked = key.as_ref().is_some_and(|k| tracker.now(k).is_some());
    let action = Action::Db { write: write.clone() };
    // Best effort, as upstream's revert: the row may be gone.
    match b.db.write(&write).await {
        Ok(()) => {
            if tracked {
                tracker.apply(&action);
            }
            tracing::info!(write = %write, "marked error");
            (ErrorMark::Marked, key)
        }
        Err(e) => {
            // The reply may be lost: the status tells.
            let seen = match &key {
                Some(k) => read(k, b, tracker, None).await,
                None => Val::Unknown,
            };
            let marked = matches!(&seen, Val::Status(s) if *s == VolumeStatus::Error)
                || matches!(&seen, Val::Text(s) if s == "error");
            if let (true, Some(k)) = (tracked, &key) {
                tracker.set(k.clone(), seen, &action);
            }
            if marked {
                tracing::info!(write = %write, error = %e, "marked error (the reply was lost)");
                (ErrorMark::Marked, key)
            } else {
                tracing::warn!(write = %write, error = %e, "could not mark the failure");
                (ErrorMark::Failed(e), None)
            }
        }
    }
}

/// The error class a report's outcome ends with, if any.
pub fn outcome_error(report: &Report) -> Option<ErrorClass> {
    match &report.outcome {
        Outcome::Success => None,
        Outcome::Failure { error, .. } => Some(*error),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::error::BackendErrorKind;
    use crate::model::{Bytes, VolumeId};
    use crate::plan::{Operation, Step};
    use crate::ports::{MockDriver, MockImageService, MockVolumeDb};
    use crate::rbd::{ImageSpec, RbdOp};
    use crate::trace::Decision;

    fn snap() -> crate::rbd::SnapSpec {
        ImageSpec::new("volumes", "volume-src").snap("volume-new.clone_snap")
    }

    fn step(op: RbdOp, expect: Expect, undo: Vec<RbdOp>) -> Step {
        Step {
            action: Action::Rbd { op },
            expect,
            undo: undo.into_iter().map(|op| Action::Rbd { op }).collect(),
            undoable: true,
        }
    }

    fn plan(steps: Vec<Step>, outcome: Outcome) -> Plan {
        Plan {
            operation: Operation::CreateClonedVolume { source_volid: VolumeId::from("src") },
            volume_id: VolumeId::from("new"),
            path: None,
            source: None,
            cache_deletions: Vec::new(),
            steps,
            outcome,
            trace: Vec::<Decision>::new(),
            locations: Arc::from([]),
        }
    }

    /// A driver over a model cluster holding `volumes/volume-src` and
    /// `volumes/volume-old`, that records calls and fails the ones `fail`
    /// says (without changing anything). Reads answer from the cluster, as
    /// the executor reads back after a failure.
    fn driver(
        calls: Arc<Mutex<Vec<RbdOp>>>,
        fail: impl Fn(&RbdOp) -> Option<BackendErrorKind> + Send + Sync + 'static,
    ) -> MockDriver {
        let mut cluster = crate::rbd::Cluster::new("fsid");
        for name in ["volume-src", "volume-old"] {
            cluster.put_image(&ImageSpec::new("volumes", name), crate::rbd::RbdImage::new(Bytes(1 << 30)));
        }
        let cluster = Arc::new(Mutex::new(cluster));
        let mut d = MockDriver::new();
        let c = cluster.clone();
        d.expect_image_info().returning(move |image| {
            c.lock().unwrap().image_info(image).map_err(|_| BackendError::new(BackendErrorKind::Other, "stat"))
        });
        d.expect_apply().returning(move |op, _| {
            calls.lock().unwrap().push(op.clone());
            match fail(op) {
                Some(k) => Err(BackendError::new(k, op.to_string())),
                None => {
                    cluster.lock().unwrap().apply(op).map_err(|_| BackendError::new(BackendErrorKind::Other, "apply"))
                }
            }
        });
        d
    }

    fn quiet_db() -> MockVolumeDb {
        let mut db = MockVolumeDb::new();
        db.expect_write().returning(|_| Ok(()));
        db
    }

    fn cow_steps() -> Vec<Step> {
        let s = snap();
        let child = ImageSpec::new("volumes", "volume-new");
        vec![
            step(RbdOp::CreateSnap { snap: s.clone() }, Expect::Ok, vec![RbdOp::RemoveSnap { snap: s.clone() }]),
            step(RbdOp::ProtectSnap { snap: s.clone() }, Expect::Ok, vec![RbdOp::UnprotectSnap { snap: s.clone() }]),
            step(
                RbdOp::Clone { parent: s.clone(), child: child.clone(), order: 22, features: 1 },
                Expect::Ok,
                vec![RbdOp::Remove { image: child.clone() }],
            ),
            step(RbdOp::Resize { image: child, size: Bytes(2 << 30) }, Expect::Ok, vec![]),
        ]
    }

    #[tokio::test]
    async fn runs_every_step_in_order() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let d = driver(calls.clone(), |_| None);
        let (images, db) = (MockImageService::new(), quiet_db());
        let b = Backends { driver: &d, images: &images, db: &db };
        let p = plan(cow_steps(), Outcome::Success);
        let report = execute(&p, b, &ExecOptions::default()).await.unwrap();
        assert_eq!(report.steps_run, 4);
        let names: Vec<&str> = calls.lock().unwrap().iter().map(RbdOp::name).collect();
        assert_eq!(names, ["create_snap", "protect_snap", "clone", "resize"]);
    }

    #[tokio::test]
    async fn planned_failures_are_not_undone() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let d =
            driver(calls.clone(), |op| matches!(op, RbdOp::Clone { .. }).then_some(BackendErrorKind::InvalidArgument));
        let (images, db) = (MockImageService::new(), quiet_db());
        let b = Backends { driver: &d, images: &images, db: &db };
        let s = snap();
        let steps = vec![step(
            RbdOp::Clone { parent: s, child: ImageSpec::new("volumes", "volume-new"), order: 22, features: 1 },
            Expect::Fail(BackendErrorKind::InvalidArgument),
            vec![],
        )];
        let p = plan(
            steps,
            Outcome::Failure {
                error: crate::plan::ErrorClass::Rbd(BackendErrorKind::InvalidArgument),
                message: String::new(),
            },
        );
        let report = execute(&p, b, &ExecOptions::default()).await.unwrap();
        assert!(matches!(report.outcome, Outcome::Failure { .. }));
        assert_eq!(calls.lock().unwrap().len(), 1, "nothing undone");
    }

    #[tokio::test]
    async fn an_unexpected_failure_undoes_completed_steps_newest_first() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let d = driver(calls.clone(), |op| matches!(op, RbdOp::Resize { .. }).then_some(BackendErrorKind::Unavailable));
        let images = MockImageService::new();
        let mut db = MockVolumeDb::new();
        // The volume is marked error afterwards, as upstream's revert does.
        db.expect_write()
            .withf(|w| matches!(w, DbWrite::UpdateVolume { set, .. } if set.status == Some(VolumeStatus::Error)))
            .times(1)
            .returning(|_| Ok(()));
        let b = Backends { driver: &d, images: &images, db: &db };
        let p = plan(cow_steps(), Outcome::Success);
        let err = execute(&p, b, &ExecOptions::default()).await.unwrap_err();
        assert_eq!(err.step, 3);
        assert!(err.fully_undone(), "{err:?}");
        let names: Vec<&str> = calls.lock().unwrap().iter().map(RbdOp::name).collect();
        assert_eq!(
            names,
            ["create_snap", "protect_snap", "clone", "resize", "remove", "unprotect_snap", "remove_snap"]
        );
    }

    #[tokio::test]
    async fn undo_skips_what_a_later_step_already_did() {
        // create_snap, protect, unprotect (the plan's own cleanup), then an
        // unexpected failure: only remove_snap is needed.
        let s = snap();
        let steps = vec![
            step(RbdOp::CreateSnap { snap: s.clone() }, Expect::Ok, vec![RbdOp::RemoveSnap { snap: s.clone() }]),
            step(RbdOp::ProtectSnap { snap: s.clone() }, Expect::Ok, vec![RbdOp::UnprotectSnap { snap: s.clone() }]),
            step(RbdOp::UnprotectSnap { snap: s.clone() }, Expect::Ok, vec![]),
            step(RbdOp::Flatten { image: ImageSpec::new("volumes", "volume-new") }, Expect::Ok, vec![]),
        ];
        let calls = Arc::new(Mutex::new(Vec::new()));
        let d = driver(calls.clone(), |op| matches!(op, RbdOp::Flatten { .. }).then_some(BackendErrorKind::Busy));
        let (images, db) = (MockImageService::new(), quiet_db());
        let b = Backends { driver: &d, images: &images, db: &db };
        let err = execute(&plan(steps, Outcome::Success), b, &ExecOptions::default()).await.unwrap_err();
        let undone: Vec<&str> = err
            .undone
            .iter()
            .map(|u| match &u.action {
                Action::Rbd { op } => op.name(),
                _ => "other",
            })
            .collect();
        assert_eq!(undone, ["remove_snap"]);
    }

    #[tokio::test]
    async fn undo_skips_changes_to_an_image_a_later_step_removed() {
        // The download path of a replicated type: create, enable features,
        // remove (copy_image_to_volume's delete_volume), import; the import
        // fails. The feature change's undo has no image left to act on.
        let v = ImageSpec::new("volumes", "volume-new");
        let steps = vec![
            step(
                RbdOp::Create { image: v.clone(), size: Bytes(1 << 30), order: 22, features: 1 },
                Expect::Ok,
                vec![RbdOp::Remove { image: v.clone() }],
            ),
            step(
                RbdOp::UpdateFeatures { image: v.clone(), features: 4, enabled: true },
                Expect::Ok,
                vec![RbdOp::UpdateFeatures { image: v.clone(), features: 4, enabled: false }],
            ),
            step(RbdOp::Remove { image: v.clone() }, Expect::Ok, vec![]),
            step(RbdOp::Import { image: v, size: Bytes(1 << 30), order: 22 }, Expect::Ok, vec![]),
        ];
        let calls = Arc::new(Mutex::new(Vec::new()));
        let d = driver(calls.clone(), |op| matches!(op, RbdOp::Import { .. }).then_some(BackendErrorKind::Unavailable));
        let (images, db) = (MockImageService::new(), quiet_db());
        let b = Backends { driver: &d, images: &images, db: &db };
        let err = execute(&plan(steps, Outcome::Success), b, &ExecOptions::default()).await.unwrap_err();
        assert!(err.fully_undone(), "{err:?}");
        assert!(err.undone.is_empty(), "nothing left to undo: {:?}", err.undone);
        let names: Vec<&str> = calls.lock().unwrap().iter().map(RbdOp::name).collect();
        assert_eq!(names, ["create", "update_features", "remove", "import"]);
    }

    #[tokio::test]
    async fn steps_that_cannot_be_undone_are_reported() {
        let img = ImageSpec::new("volumes", "volume-old");
        let steps = vec![
            Step {
                action: Action::Rbd { op: RbdOp::Remove { image: img.clone() } },
                expect: Expect::Ok,
                undo: vec![],
                undoable: false,
            },
            step(RbdOp::Flatten { image: img }, Expect::Ok, vec![]),
        ];
        let calls = Arc::new(Mutex::new(Vec::new()));
        let d = driver(calls, |op| matches!(op, RbdOp::Flatten { .. }).then_some(BackendErrorKind::NotFound));
        let (images, db) = (MockImageService::new(), quiet_db());
        let b = Backends { driver: &d, images: &images, db: &db };
        let err = execute(&plan(steps, Outcome::Success), b, &ExecOptions::default()).await.unwrap_err();
        assert_eq!(err.not_undoable, vec![0]);
        assert!(!err.fully_undone());
    }

    #[tokio::test]
    async fn what_cannot_be_read_back_is_never_called_undone() {
        // A status write fails, its undo fails too, and the database cannot
        // be read: whether either took effect is unknown, so the report
        // must not claim the row is as before.
        let id = VolumeId::from("v1");
        let set = |s: &str| VolumeUpdate { status: Some(VolumeStatus::from(s)), ..Default::default() };
        let write =
            |to: &str, from: &str| DbWrite::UpdateVolume { volume_id: id.clone(), set: set(to), previous: set(from) };
        let steps = vec![Step {
            action: Action::Db { write: write("downloading", "creating") },
            expect: Expect::Ok,
            undo: vec![Action::Db { write: write("creating", "downloading") }],
            undoable: true,
        }];
        let d = MockDriver::new();
        let images = MockImageService::new();
        let mut db = MockVolumeDb::new();
        db.expect_write().returning(|w| Err(BackendError::new(BackendErrorKind::Unavailable, w.to_string())));
        db.expect_volume().returning(|_| Err(BackendError::new(BackendErrorKind::Unavailable, "read")));
        let b = Backends { driver: &d, images: &images, db: &db };
        let options = ExecOptions { mark_error_on_failure: false };
        let err = execute(&plan(steps, Outcome::Success), b, &options).await.unwrap_err();
        assert_eq!(err.effect, StepEffect::Unknown);
        assert_eq!(err.undone.len(), 1, "the undo is tried all the same: {err:?}");
        assert!(!err.fully_undone());
        assert!(
            matches!(
                &err.leftovers[..],
                [Leftover::Unknown { action: Action::Db { write: DbWrite::UpdateVolume { .. } } }]
            ),
            "{:?}",
            err.leftovers
        );
    }

    #[tokio::test]
    async fn a_divergence_reads_for_people_and_exposes_its_cause_once() {
        use std::error::Error as _;
        let calls = Arc::new(Mutex::new(Vec::new()));
        let d = driver(calls, |op| matches!(op, RbdOp::Resize { .. }).then_some(BackendErrorKind::Unavailable));
        let (images, db) = (MockImageService::new(), quiet_db());
        let b = Backends { driver: &d, images: &images, db: &db };
        let err = execute(&plan(cow_steps(), Outcome::Success), b, &ExecOptions::default()).await.unwrap_err();
        let words = err.to_string();
        assert!(words.starts_with("step 4 (resize volumes/volume-new"), "{words}");
        assert!(words.ends_with("was expected to succeed, but it failed"), "{words}");
        let cause = err.source().expect("the backend error");
        assert!(cause.to_string().contains("unavailable"), "{cause}");
        assert!(!words.contains("unavailable"), "the cause is not repeated: {words}");
    }
}
