//! The planning context: the simulated world the transliterated upstream
//! code runs against, and the recorder of steps and decisions.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::config::Config;
use crate::error::BackendErrorKind;
use crate::facts::{Capabilities, ClusterInfo, Facts, HostInfo, Need};
use crate::model::{Image, ImageId, LocationEntry, Volume, VolumeId, VolumeType};
use crate::plan::{Action, CreatePath, DbWrite, ErrorClass, Expect, Outcome, Plan, Source, Step, VolumeUpdate};
use crate::rbd::{ApplyError, Cluster, ClusterFact, ImageSpec, Name, RbdImage, RbdOp, SnapSpec};
use crate::tables::{TableError, Tables};
use crate::trace::{Decision, Reason, Stage, Subject, Verdict};

use super::memo::Memo;
use super::{Policy, Request, Stop};

/// An exception upstream raises: its class and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Raised {
    pub(crate) class: ErrorClass,
    pub(crate) message: String,
}

impl Raised {
    pub(crate) fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self { class, message: message.into() }
    }
}

/// Why planning code stops early (an upstream exception is
/// [`Stop::Raise`]).
pub(crate) type Exc = Stop<Raised>;

/// A step of transliterated upstream code.
pub(crate) type Flow<T> = Result<T, Exc>;

/// Raise an upstream exception.
pub(crate) fn raise<T>(class: ErrorClass, message: impl Into<String>) -> Flow<T> {
    Err(Stop::Raise(Raised::new(class, message)))
}

impl From<TableError> for Exc {
    fn from(e: TableError) -> Self {
        match e {
            TableError::Unknown(need) => Stop::Need(vec![need]),
            other => Stop::Inconsistent(other.to_string()),
        }
    }
}

/// A saved state of the context, to explore a branch and come back.
pub(crate) struct Checkpoint<'a> {
    cluster: Option<Cluster>,
    db: Tables<'a>,
    steps: usize,
    trace: usize,
    /// The subject of the last trace entry when it is a location or a run
    /// of them: later decisions may extend it (see [`Ctx::decide`]).
    trace_last: Option<Subject>,
    path: Option<CreatePath>,
    source: Option<Source>,
    cache_deletions: usize,
    fresh_used: usize,
    created_images: BTreeSet<ImageSpec>,
    created_snaps: BTreeSet<SnapSpec>,
}

pub(crate) struct Ctx<'a> {
    /// A dry run decides but records no steps or trace (rounds whose facts
    /// may still be incomplete).
    dry: bool,
    pub(crate) memo: &'a Memo,
    pub(crate) req: &'a Request,
    pub(crate) facts: &'a Facts,
    pub(crate) cfg: &'a Config,
    pub(crate) policy: &'a Policy,
    cluster: Option<Cluster>,
    pub(crate) db: Tables<'a>,
    steps: Vec<Step>,
    trace: Vec<Decision>,
    /// The location list the trace's `Subject::Location`s index.
    pub(crate) locations: Option<Arc<[LocationEntry]>>,
    pub(crate) path: Option<CreatePath>,
    pub(crate) source: Option<Source>,
    /// Cache volumes whose deletion was asked for ([`Plan::cache_deletions`]).
    pub(crate) cache_deletions: Vec<VolumeId>,
    fresh_used: usize,
    created_images: BTreeSet<ImageSpec>,
    created_snaps: BTreeSet<SnapSpec>,
    /// `rbd_pool`, shared into every spec the run builds.
    pub(super) rbd_pool: Name,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        req: &'a Request,
        facts: &'a Facts,
        cfg: &'a Config,
        policy: &'a Policy,
        memo: &'a Memo,
        dry: bool,
    ) -> Self {
        Self {
            dry,
            memo,
            req,
            facts,
            cfg,
            policy,
            cluster: None,
            rbd_pool: Name::from(cfg.backend.rbd_pool.as_str()),
            db: Tables::over(facts),
            steps: Vec::new(),
            trace: Vec::new(),
            locations: None,
            path: None,
            source: None,
            cache_deletions: Vec::new(),
            fresh_used: 0,
            created_images: BTreeSet::new(),
            created_snaps: BTreeSet::new(),
        }
    }

    /// Saves the state (see [`Ctx::rollback`]).
    pub(crate) fn checkpoint(&self) -> Checkpoint<'a> {
        Checkpoint {
            cluster: self.cluster.clone(),
            db: self.db.clone(),
            steps: self.steps.len(),
            trace: self.trace.len(),
            trace_last: self.trace.last().filter(|d| d.subject.location_range().is_some()).map(|d| d.subject.clone()),
            path: self.path,
            source: self.source.clone(),
            cache_deletions: self.cache_deletions.len(),
            fresh_used: self.fresh_used,
            created_images: self.created_images.clone(),
            created_snaps: self.created_snaps.clone(),
        }
    }

    /// Forgets everything done since the checkpoint, keeping facts learnt.
    pub(crate) fn rollback(&mut self, cp: Checkpoint<'a>) {
        self.cluster = cp.cluster;
        self.db = cp.db;
        self.steps.truncate(cp.steps);
        self.trace.truncate(cp.trace);
        if let (Some(subject), Some(last)) = (cp.trace_last, self.trace.last_mut()) {
            last.subject = subject;
        }
        self.path = cp.path;
        self.source = cp.source;
        self.cache_deletions.truncate(cp.cache_deletions);
        self.fresh_used = cp.fresh_used;
        self.created_images = cp.created_images;
        self.created_snaps = cp.created_snaps;
    }

    pub(crate) fn finish(self, raised: Option<Raised>) -> Plan {
        let outcome = match raised {
            None => Outcome::Success,
            Some(r) => Outcome::Failure { error: r.class, message: r.message },
        };
        Plan {
            operation: self.req.operation.clone(),
            volume_id: self.req.volume_id.clone(),
            path: self.path,
            source: self.source,
            cache_deletions: self.cache_deletions,
            steps: self.steps,
            outcome,
            trace: self.trace,
            locations: self.locations.unwrap_or_else(|| Arc::from([])),
        }
    }

    // ---------------------------------------------------------------- trace

    /// Records a decision. A location's decision that repeats the one
    /// just recorded for the location before it (same stage, same
    /// verdict) extends that entry into a [`Subject::Locations`] run.
    #[inline]
    pub(crate) fn decide(&mut self, stage: Stage, subject: Subject, verdict: Verdict) {
        if self.dry {
            return;
        }
        if let (Subject::Location { index }, Some(last)) = (&subject, self.trace.last_mut()) {
            if last.stage == stage && last.verdict == verdict && grow_run(&mut last.subject, *index) {
                return;
            }
        }
        self.trace.push(Decision { stage, subject, verdict });
    }

    /// Whether trace entries are being kept (callers can skip building
    /// expensive subjects and reasons when not).
    pub(crate) fn tracing(&self) -> bool {
        !self.dry
    }

    /// Extends the last trace entry, when it is a driver-clone style
    /// rejection of stage `stage` ending at location `index - 1`, to cover
    /// location `index` too; whether it did. The caller knows the two
    /// locations were rejected for the same reason: this saves building,
    /// comparing and dropping a decision per location of a long run.
    #[inline]
    pub(crate) fn extend_location_run(&mut self, stage: Stage, index: usize) -> bool {
        if self.dry {
            return true;
        }
        let Some(last) = self.trace.last_mut() else { return false };
        last.stage == stage && matches!(last.verdict, Verdict::Rejected { .. }) && grow_run(&mut last.subject, index)
    }

    #[inline]
    pub(crate) fn chosen(&mut self, stage: Stage, subject: Subject) {
        self.decide(stage, subject, Verdict::Chosen);
    }

    #[inline]
    pub(crate) fn rejected(&mut self, stage: Stage, subject: Subject, because: Reason) {
        self.decide(stage, subject, Verdict::Rejected { because });
    }

    #[inline]
    pub(crate) fn skipped(&mut self, stage: Stage, because: Reason) {
        self.decide(stage, Subject::Path, Verdict::Skipped { because });
    }

    #[inline]
    pub(crate) fn noted(&mut self, stage: Stage, subject: Subject, what: Reason) {
        self.decide(stage, subject, Verdict::Noted { what });
    }

    // ---------------------------------------------------------------- facts

    pub(crate) fn cluster_info(&self) -> Flow<Result<&'a ClusterInfo, BackendErrorKind>> {
        match &self.facts.cluster {
            None => Err(Stop::Need(vec![Need::Cluster])),
            Some(Ok(c)) => Ok(Ok(c)),
            Some(Err(k)) => Ok(Err(*k)),
        }
    }

    fn cluster(&mut self) -> Flow<&mut Cluster> {
        if self.cluster.is_none() {
            self.cluster = Some(self.facts.cluster_view().ok_or_else(|| Stop::Need(vec![Need::Cluster]))?);
        }
        Ok(self.cluster.as_mut().expect("just built"))
    }

    pub(crate) fn host_info(&self) -> Flow<&'a HostInfo> {
        self.facts.host.as_ref().ok_or_else(|| Stop::Need(vec![Need::Host]))
    }

    pub(crate) fn capabilities(&self) -> Flow<&'a Capabilities> {
        self.facts.capabilities.as_ref().ok_or_else(|| Stop::Need(vec![Need::Capabilities]))
    }

    pub(crate) fn volume_type(&self, name: &str) -> Flow<Option<&'a VolumeType>> {
        match self.facts.volume_types.get(name) {
            Some(t) => Ok(t.as_ref()),
            None => Err(Stop::Need(vec![Need::VolumeType { name: name.to_owned() }])),
        }
    }

    pub(crate) fn image(&self, id: &ImageId) -> Flow<Result<&'a Image, BackendErrorKind>> {
        match self.facts.images.get(id) {
            Some(Ok(i)) => Ok(Ok(i)),
            Some(Err(k)) => Ok(Err(*k)),
            None => Err(Stop::Need(vec![Need::Image { image_id: id.clone() }])),
        }
    }

    pub(crate) fn image_locations(&self, id: &ImageId) -> Flow<Result<&'a Arc<[LocationEntry]>, BackendErrorKind>> {
        match self.facts.image_locations.get(id) {
            Some(Ok(l)) => Ok(Ok(l)),
            Some(Err(k)) => Ok(Err(*k)),
            None => Err(Stop::Need(vec![Need::ImageLocations { image_id: id.clone() }])),
        }
    }

    pub(crate) fn fresh_volume_id(&mut self) -> Flow<VolumeId> {
        match self.facts.fresh_volume_ids.get(self.fresh_used) {
            Some(id) => {
                self.fresh_used += 1;
                Ok(id.clone())
            }
            None => Err(Stop::Need(vec![Need::FreshVolumeIds { count: self.fresh_used + 1 }])),
        }
    }

    // ---------------------------------------------------------------- librbd

    fn unknown(f: ClusterFact) -> Exc {
        Stop::Need(vec![f.into()])
    }

    /// `RADOSClient(self, pool)` / `_connect_to_rados`: connect and open the
    /// pool's ioctx. librados errors become `VolumeBackendAPIException`
    /// after `rados_connection_retries` attempts (no calls are recorded).
    pub(crate) fn rados(&mut self, pool: &str) -> Flow<()> {
        // utils.retry refuses fewer than one attempt when it decorates.
        let retries = self.cfg.backend.rados_connection_retries;
        if retries < 1 {
            return raise(
                ErrorClass::ValueError,
                format!("Retries must be greater than or equal to 1 (received: {retries}). "),
            );
        }
        let cluster = self.cluster()?;
        match cluster.check_pool(pool) {
            Ok(()) => Ok(()),
            Err(ApplyError::Unknown(f)) => Err(Self::unknown(f)),
            Err(ApplyError::Failed(k)) => raise(
                ErrorClass::VolumeBackendApiException,
                format!("Error connecting to ceph cluster ({} pool {pool:?})", k),
            ),
        }
    }

    /// `rbd.Image(ioctx, name, snapshot, read_only=True)` after the ioctx is
    /// open: the image or the rbd error it raises. A read: not a step.
    pub(crate) fn open(&mut self, spec: &ImageSpec, snap: Option<&str>) -> Flow<Result<RbdImage, BackendErrorKind>> {
        let cluster = self.cluster()?;
        match cluster.open(spec, snap) {
            Ok(i) => Ok(Ok(i.clone())),
            Err(ApplyError::Unknown(f)) => Err(Self::unknown(f)),
            Err(ApplyError::Failed(k)) => Ok(Err(k)),
        }
    }

    /// `Image.parent_info()` (with `snap` set when given).
    pub(crate) fn parent_info(
        &mut self,
        spec: &ImageSpec,
        snap: Option<&str>,
    ) -> Flow<Result<SnapSpec, BackendErrorKind>> {
        let cluster = self.cluster()?;
        match cluster.parent_info(spec, snap) {
            Ok(p) => Ok(Ok(p)),
            Err(ApplyError::Unknown(f)) => Err(Self::unknown(f)),
            Err(ApplyError::Failed(k)) => Ok(Err(k)),
        }
    }

    /// `Image.list_children()` (with `snap` set when given).
    pub(crate) fn list_children(
        &mut self,
        spec: &ImageSpec,
        snap: Option<&str>,
    ) -> Flow<Result<Vec<ImageSpec>, BackendErrorKind>> {
        let cluster = self.cluster()?;
        match cluster.list_children(spec, snap) {
            Ok(c) => Ok(Ok(c)),
            Err(ApplyError::Unknown(f)) => Err(Self::unknown(f)),
            Err(ApplyError::Failed(k)) => Ok(Err(k)),
        }
    }

    /// The features new images get.
    pub(crate) fn cinder_features(&mut self) -> Flow<u64> {
        Ok(self.cluster()?.cinder_features())
    }

    /// Makes a librbd call: records it as a step with the outcome the view
    /// predicts and applies it to the view.
    pub(crate) fn rbd(&mut self, op: RbdOp) -> Flow<Result<(), BackendErrorKind>> {
        if self.dry {
            let cluster = self.cluster()?;
            return match cluster.apply(&op) {
                Ok(()) => Ok(Ok(())),
                Err(ApplyError::Failed(k)) => Ok(Err(k)),
                Err(ApplyError::Unknown(f)) => Err(Self::unknown(f)),
            };
        }
        let existed_before = self.pre_state(&op)?;
        let cluster = self.cluster()?;
        match cluster.apply(&op) {
            Ok(()) => {
                let (undo, undoable) = self.undo_for(&op, existed_before);
                self.steps.push(Step { action: Action::Rbd { op }, expect: Expect::Ok, undo, undoable });
                Ok(Ok(()))
            }
            Err(ApplyError::Failed(k)) => {
                self.steps.push(Step {
                    action: Action::Rbd { op },
                    expect: Expect::Fail(k),
                    undo: Vec::new(),
                    undoable: true,
                });
                Ok(Err(k))
            }
            Err(ApplyError::Unknown(f)) => Err(Self::unknown(f)),
        }
    }

    /// A librbd call whose failure propagates as the rbd exception.
    pub(crate) fn rbd_or_raise(&mut self, op: RbdOp) -> Flow<()> {
        let what = op.name();
        match self.rbd(op)? {
            Ok(()) => Ok(()),
            Err(k) => raise(ErrorClass::Rbd(k), format!("{what} failed: {k}")),
        }
    }

    /// What the undo of an op needs to know about the state before it.
    fn pre_state(&mut self, op: &RbdOp) -> Flow<Option<RbdImage>> {
        let target = match op {
            RbdOp::Resize { image, .. } | RbdOp::UpdateFeatures { image, .. } => image.clone(),
            _ => return Ok(None),
        };
        let cluster = self.cluster()?;
        match cluster.open(&target, None) {
            Ok(i) => Ok(Some(i.clone())),
            Err(ApplyError::Unknown(f)) => Err(Self::unknown(f)),
            Err(ApplyError::Failed(_)) => Ok(None),
        }
    }

    /// Compensating actions for a successful call (see [`Step::undo`]).
    fn undo_for(&mut self, op: &RbdOp, before: Option<RbdImage>) -> (Vec<Action>, bool) {
        let rbd = |op: RbdOp| Action::Rbd { op };
        match op {
            RbdOp::Create { image, .. } | RbdOp::Import { image, .. } => {
                self.created_images.insert(image.clone());
                (vec![rbd(RbdOp::Remove { image: image.clone() })], true)
            }
            RbdOp::Clone { child, .. } => {
                self.created_images.insert(child.clone());
                (vec![rbd(RbdOp::Remove { image: child.clone() })], true)
            }
            RbdOp::Copy { dst, .. } => {
                self.created_images.insert(dst.clone());
                (vec![rbd(RbdOp::Remove { image: dst.clone() })], true)
            }
            RbdOp::CreateSnap { snap } => {
                self.created_snaps.insert(snap.clone());
                (vec![rbd(RbdOp::RemoveSnap { snap: snap.clone() })], true)
            }
            RbdOp::ProtectSnap { snap } => (vec![rbd(RbdOp::UnprotectSnap { snap: snap.clone() })], true),
            RbdOp::UnprotectSnap { snap } if self.created_snaps.contains(snap) => (Vec::new(), true),
            RbdOp::UnprotectSnap { snap } => (vec![rbd(RbdOp::ProtectSnap { snap: snap.clone() })], true),
            RbdOp::RemoveSnap { snap } => (Vec::new(), self.created_snaps.contains(snap)),
            RbdOp::Remove { image } => (Vec::new(), self.created_images.contains(image)),
            RbdOp::Flatten { image } => (Vec::new(), self.created_images.contains(image)),
            RbdOp::Resize { image, size } => {
                if self.created_images.contains(image) {
                    (Vec::new(), true)
                } else {
                    match before {
                        Some(b) if b.size <= *size => {
                            (vec![rbd(RbdOp::Resize { image: image.clone(), size: b.size })], true)
                        }
                        _ => (Vec::new(), false),
                    }
                }
            }
            RbdOp::Rename { image, new_name } => {
                let renamed = ImageSpec::new(image.pool.clone(), new_name.clone());
                if self.created_images.remove(image) {
                    self.created_images.insert(renamed.clone());
                }
                (vec![rbd(RbdOp::Rename { image: renamed, new_name: image.name.clone() })], true)
            }
            RbdOp::UpdateFeatures { image, features, enabled } => {
                let changed = match &before {
                    Some(b) if *enabled => features & !b.features,
                    Some(b) => features & b.features,
                    None => *features,
                };
                if changed == 0 {
                    (Vec::new(), true)
                } else {
                    (
                        vec![rbd(RbdOp::UpdateFeatures { image: image.clone(), features: changed, enabled: !enabled })],
                        true,
                    )
                }
            }
            RbdOp::TrashMove { .. } | RbdOp::TrashRemove { .. } => (Vec::new(), false),
        }
    }

    // ---------------------------------------------------------------- other steps

    pub(crate) fn push_step(&mut self, action: Action, undo: Vec<Action>, undoable: bool) {
        if !self.dry {
            self.steps.push(Step { action, expect: Expect::Ok, undo, undoable });
        }
    }

    /// Records a database write and applies it to the view.
    pub(crate) fn db_write(&mut self, write: DbWrite) -> Flow<()> {
        let applied = self.db.apply(&write)?;
        let undo = applied.undo.into_iter().map(|w| Action::Db { write: w }).collect();
        self.push_step(Action::Db { write }, undo, applied.undoable);
        Ok(())
    }
}

/// Makes `subject`, a location or a run of them ending right before
/// `index`, cover `index` too; whether it did. A run grows in place (no
/// subject built or dropped per location).
#[inline(always)]
fn grow_run(subject: &mut Subject, index: usize) -> bool {
    match subject {
        Subject::Locations { last, .. } if last.checked_add(1) == Some(index) => *last = index,
        Subject::Location { index: i } if i.checked_add(1) == Some(index) => {
            let first = *i;
            *subject = Subject::Locations { first, last: index };
        }
        _ => return false,
    }
    true
}

/// The row as the plan has left it so far.
pub(crate) fn current(ctx: &Ctx<'_>, volume: &Volume) -> Flow<Arc<Volume>> {
    Ok(ctx.db.volume(&volume.id)?.cloned().unwrap_or_else(|| Arc::new(volume.clone())))
}

/// Records an update of volume columns (only those that change).
pub(crate) fn set_volume(ctx: &mut Ctx<'_>, volume: &Volume, set: VolumeUpdate) -> Flow<()> {
    let mut change = VolumeUpdate::default();
    let mut previous = VolumeUpdate::default();
    if let Some(s) = set.status {
        if s != volume.status {
            previous.status = Some(volume.status.clone());
            change.status = Some(s);
        }
    }
    if let Some(s) = set.size {
        if s != volume.size {
            previous.size = Some(volume.size);
            change.size = Some(s);
        }
    }
    if let Some(b) = set.bootable {
        if b != volume.bootable {
            previous.bootable = Some(volume.bootable);
            change.bootable = Some(b);
        }
    }
    if let Some(h) = set.host {
        if volume.host.as_ref() != Some(&h) {
            // The plan moves only rows that have a host (the undo puts it
            // back).
            previous.host = volume.host.clone();
            change.host = Some(h);
        }
    }
    if change == VolumeUpdate::default() {
        return Ok(());
    }
    ctx.db_write(DbWrite::UpdateVolume { volume_id: volume.id.clone(), set: change, previous })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timestamp;
    use crate::plan::Operation;

    fn request() -> Request {
        Request {
            operation: Operation::CreateFromImage { image_id: "img".into() },
            volume_id: "vol".into(),
            now: Timestamp::EPOCH,
        }
    }

    fn other(ctx: &mut Ctx<'_>, index: usize) {
        ctx.rejected(Stage::DriverClone, Subject::Location { index }, Reason::OtherCluster);
    }

    fn subjects(ctx: &Ctx<'_>) -> Vec<Subject> {
        ctx.trace.iter().map(|d| d.subject.clone()).collect()
    }

    #[test]
    fn consecutive_locations_with_one_decision_share_an_entry() {
        let (req, facts, cfg, policy, memo) =
            (request(), Facts::new(), Config::default(), Policy::faithful(), Memo::default());
        let mut ctx = Ctx::new(&req, &facts, &cfg, &policy, &memo, false);
        for i in 0..3 {
            other(&mut ctx, i);
        }
        // Another reason, a gap, another stage: new entries.
        ctx.rejected(Stage::DriverClone, Subject::Location { index: 3 }, Reason::NotRbd);
        other(&mut ctx, 4);
        other(&mut ctx, 6);
        ctx.rejected(Stage::ImageVolumeClone, Subject::Location { index: 7 }, Reason::OtherCluster);
        other(&mut ctx, 8);
        other(&mut ctx, 9);
        assert_eq!(
            subjects(&ctx),
            vec![
                Subject::Locations { first: 0, last: 2 },
                Subject::Location { index: 3 },
                Subject::Location { index: 4 },
                Subject::Location { index: 6 },
                Subject::Location { index: 7 },
                Subject::Locations { first: 8, last: 9 },
            ]
        );
        // Each location is covered exactly once.
        let covered: Vec<usize> = ctx.trace.iter().flat_map(|d| d.subject.location_range().unwrap()).collect();
        assert_eq!(covered, vec![0, 1, 2, 3, 4, 6, 7, 8, 9]);
    }

    #[test]
    fn rollback_undoes_the_extension_of_a_run() {
        let (req, facts, cfg, policy, memo) =
            (request(), Facts::new(), Config::default(), Policy::faithful(), Memo::default());
        let mut ctx = Ctx::new(&req, &facts, &cfg, &policy, &memo, false);
        other(&mut ctx, 0);
        let cp = ctx.checkpoint();
        other(&mut ctx, 1);
        other(&mut ctx, 2);
        assert_eq!(subjects(&ctx), vec![Subject::Locations { first: 0, last: 2 }]);
        ctx.rollback(cp);
        assert_eq!(subjects(&ctx), vec![Subject::Location { index: 0 }]);

        other(&mut ctx, 1);
        let cp = ctx.checkpoint();
        other(&mut ctx, 2);
        ctx.rollback(cp);
        assert_eq!(subjects(&ctx), vec![Subject::Locations { first: 0, last: 1 }]);
    }

    #[test]
    fn a_dry_context_records_nothing() {
        let (req, facts, cfg, policy, memo) =
            (request(), Facts::new(), Config::default(), Policy::faithful(), Memo::default());
        let mut ctx = Ctx::new(&req, &facts, &cfg, &policy, &memo, true);
        other(&mut ctx, 0);
        other(&mut ctx, 1);
        assert!(ctx.trace.is_empty());
    }
}
