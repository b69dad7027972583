//! The pure, synchronous planner.
//!
//! [`plan`] reads a [`Request`], the [`Facts`] gathered so far, the
//! [`Config`] and a [`Policy`], and either decides ([`Planning::Done`]) or
//! says which facts it still needs ([`Planning::NeedFacts`]). It performs no
//! I/O, reads no clock and makes no ids: time and fresh ids are inputs.
//!
//! # How it decides
//!
//! Each upstream function the flow runs (`_create_from_image`,
//! `RBDDriver.clone_image`, `_clone_image_volume`, the image cache, the
//! download path, `create_cloned_volume`, `delete_volume`, ...) has a
//! counterpart here that follows the same order of checks and calls. Instead
//! of calling librbd, Glance and the database, the counterparts apply each
//! call to a simulated view of the world built from the facts (a partial
//! [`crate::rbd::Cluster`] and a partial database). Each call becomes a
//! [`Step`](crate::plan::Step) of the plan with the result the view predicts, and upstream's
//! handling of that result (fall back, clean up, raise) is followed as
//! upstream has it. Python exceptions are modelled as an `Err` that each
//! `except` clause matches by class.
//!
//! The result is a plan whose steps are exactly the calls upstream would
//! make, with the expected outcome of each, plus a typed trace of why.

mod api;
mod ctx;
mod delete;
mod flow;
mod image;
mod memo;
mod protocol;
mod rbd_driver;
mod snapshot;

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::facts::{Fact, Facts, Need};
use crate::model::{Timestamp, VolumeId};
use crate::plan::{Operation, Plan};
use memo::Memo;

pub use crate::pyvalue::{PyError, PyInt};
pub use api::{
    decide_zone, known_availability_zones, parse_type_availability_zones, plan_api, ApiBackup, ApiDecision, ApiFailure,
    ApiGroup, ApiKind, ApiOutcome, ApiPlanner, ApiRequest, ApiResult, ApiRule, ApiStage, ApiVerdict, AsInt,
    ExtractedRequest, FallbackSource, GroupZone, KeySource, NewVolume, ReplicationStatus, RequestedSize, SizeSource,
    SourceZone, TypeRef, TypeSource, TypeZones, UnpinnedReason, ZoneCandidate, ZoneDecision, ZoneExplanation,
    ZoneFallback, ZoneRejection, ZoneRequest, ZoneSource,
};
pub(crate) use ctx::Ctx;
pub use protocol::{Decide, PlanError, Planning};

/// The longest chain of Cinder clones (`_get_clone_depth`) the planner
/// follows; a longer one is taken for a cycle in the facts and refused as
/// inconsistent. Walking a chain costs time linear in its length (the
/// gathering fetches a chain's parents in one round).
pub const MAX_CLONE_CHAIN: usize = 10_000;
pub(crate) use protocol::{Stop, Wants};

/// What to plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The operation.
    pub operation: Operation,
    /// The volume to create (its row exists with status `creating`), to
    /// delete, or to snapshot ([`Operation::CreateSnapshot`]).
    pub volume_id: VolumeId,
    /// The current time (cache bookkeeping, new rows' `created_at`).
    pub now: Timestamp,
}

/// Where the planner may depart from upstream Cinder 29. The default is
/// faithful: every field reproduces upstream's behaviour, quirks included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Policy {
    /// Which image volumes (`cinder://` locations) and cache entries count
    /// as "on this host".
    pub candidate_scope: CandidateScope,
    /// Skip an image-volume candidate whose clone is predicted to fail in a
    /// way that would end the whole create (e.g. its RBD image is missing),
    /// and go on to the next path, instead of failing as upstream does.
    pub skip_doomed_candidates: bool,
    /// The delete rules to follow.
    pub delete_rules: DeleteRules,
}

impl Default for Policy {
    fn default() -> Self {
        Self::faithful()
    }
}

impl Policy {
    /// Upstream Cinder 29's behaviour.
    pub fn faithful() -> Self {
        Self {
            candidate_scope: CandidateScope::Upstream,
            skip_doomed_candidates: false,
            delete_rules: DeleteRules::Upstream,
        }
    }
}

/// Which image volumes count as local (see [`Policy::candidate_scope`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CandidateScope {
    /// Upstream: `host` (or `cluster_name`) matched by `_filter_host`, i.e.
    /// the exact `host@backend#pool` for scheduled volumes; any host when the
    /// driver reports `clone_across_pools`.
    Upstream,
    /// Any pool of the same `host@backend`: RBD clones work across pools of
    /// one Ceph cluster, so a copy in a sibling pool is as good (the
    /// situation of seed 000).
    SameBackend,
}

/// Which delete rules to follow (see [`Policy::delete_rules`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeleteRules {
    /// Cinder 29: remove, flatten children, retry, trash, parent cleanup
    /// after the trash only.
    Upstream,
    /// Liberty (Cinder 7): any non-clone snapshot makes the delete fail with
    /// `VolumeIsBusy`; parent references are cleaned after every removal.
    Liberty,
}

/// Decides how to carry out `request` from `facts`, in one call. See the
/// [module docs](self); [`Planner`] does the same across rounds of fact
/// gathering without repeating work.
///
/// ```
/// use cinder_flow::config::Config;
/// use cinder_flow::facts::{Facts, Need};
/// use cinder_flow::model::{Timestamp, VolumeId};
/// use cinder_flow::plan::Operation;
/// use cinder_flow::planner::{plan, Planning, Policy, Request};
///
/// let request = Request {
///     operation: Operation::CreateVolume,
///     volume_id: VolumeId::from("11111111-1111-4111-8111-111111111111"),
///     now: Timestamp::EPOCH,
/// };
/// // With no facts, the planner first asks for the volume row (and other
/// // facts every create needs).
/// let first = plan(&request, &Facts::new(), &Config::default(), &Policy::faithful()).unwrap();
/// assert!(matches!(first, Planning::NeedFacts(needs) if matches!(needs[0], Need::Volume { .. })));
/// ```
pub fn plan(request: &Request, facts: &Facts, config: &Config, policy: &Policy) -> Result<Planning<Plan>, PlanError> {
    config.validate()?;
    let memo = Memo::default();
    let needs = prelude(request, facts, config, &memo);
    if !needs.is_empty() {
        return Ok(Planning::NeedFacts(needs));
    }
    run(request, facts, config, policy, &memo, false)
}

fn run(
    request: &Request,
    facts: &Facts,
    config: &Config,
    policy: &Policy,
    memo: &Memo,
    dry: bool,
) -> Result<Planning<Plan>, PlanError> {
    let mut ctx = Ctx::new(request, facts, config, policy, memo, dry);
    let result = match &request.operation {
        Operation::DeleteVolume => delete::delete_volume(&mut ctx),
        Operation::CreateSnapshot { snapshot_id } => snapshot::create_snapshot(&mut ctx, snapshot_id),
        _ => flow::create_volume(&mut ctx),
    };
    match result {
        Ok(()) => Ok(Planning::Done(Box::new(ctx.finish(None)))),
        Err(Stop::Need(needs)) => Ok(Planning::NeedFacts(needs)),
        Err(Stop::Raise(raised)) => Ok(Planning::Done(Box::new(ctx.finish(Some(raised))))),
        Err(Stop::Inconsistent(why)) => Err(PlanError::InconsistentFacts(why)),
    }
}

/// Facts every plan of this kind reads, asked for together up front so that
/// gathering takes few rounds (the flow itself would ask for them one at a
/// time). Only missing facts are listed; reading them has no side effects.
fn prelude(request: &Request, facts: &Facts, config: &Config, memo: &Memo) -> Vec<Need> {
    let mut want = Wants::default();
    let pool = config.backend.rbd_pool.as_str();
    let is_create = !matches!(request.operation, Operation::DeleteVolume | Operation::CreateSnapshot { .. });
    want.want(facts.volumes.contains_key(&request.volume_id), || Need::Volume { volume_id: request.volume_id.clone() });
    want.want(facts.cluster.is_some(), || Need::Cluster);
    let cluster_up = matches!(facts.cluster, Some(Ok(_)));
    if cluster_up && !pool.is_empty() {
        want.want(facts.pools.contains_key(pool), || Need::Pool { pool: pool.into() });
    }
    if is_create {
        want.want(facts.capabilities.is_some(), || Need::Capabilities);
        want.want(facts.host.is_some(), || Need::Host);
    }
    match &request.operation {
        Operation::CreateFromImage { image_id } => {
            want.want(facts.image_locations.contains_key(image_id), || Need::ImageLocations {
                image_id: image_id.clone(),
            });
            want.want(facts.images.contains_key(image_id), || Need::Image { image_id: image_id.clone() });
        }
        Operation::CreateFromSnapshot { snapshot_id } | Operation::CreateSnapshot { snapshot_id } => {
            want.want(facts.snapshots.contains_key(snapshot_id), || Need::Snapshot {
                snapshot_id: snapshot_id.clone(),
            });
        }
        Operation::CreateClonedVolume { source_volid } => {
            want.want(facts.volumes.contains_key(source_volid), || Need::Volume { volume_id: source_volid.clone() });
        }
        _ => {}
    }
    // Second stage: what those rows point at.
    // The new volume's image is read by every plan that gets as far as the
    // pool; it is asked together with the pool (an image read in a missing
    // pool answers that the pool is missing).
    let pool_up = cluster_up && !pool.is_empty() && facts.pools.get(pool) != Some(&false);
    let image_of = |volume: &crate::model::Volume| crate::rbd::ImageSpec::new(pool, volume.rbd_name());
    if let Some(Some(target)) = facts.volumes.get(&request.volume_id) {
        if is_create {
            want.want(facts.volume_types.contains_key(&target.volume_type), || Need::VolumeType {
                name: target.volume_type.clone(),
            });
        }
        if pool_up {
            let spec = image_of(target);
            want.want(facts.rbd_images.contains_key(&spec), move || Need::RbdImage { image: spec });
        }
        if let Operation::CreateFromImage { image_id } = &request.operation {
            image_prelude(&mut want, image_id, target, facts, config, memo);
        }
    }
    match &request.operation {
        Operation::CreateFromSnapshot { snapshot_id } | Operation::CreateSnapshot { snapshot_id } => {
            if let Some(Some(snap)) = facts.snapshots.get(snapshot_id) {
                want.want(facts.volumes.contains_key(&snap.volume_id), || Need::Volume {
                    volume_id: snap.volume_id.clone(),
                });
                if let (true, Some(Some(v))) = (pool_up, facts.volumes.get(&snap.volume_id)) {
                    let spec = image_of(v);
                    want.want(facts.rbd_images.contains_key(&spec), move || Need::RbdImage { image: spec });
                }
            }
        }
        Operation::CreateClonedVolume { source_volid } => {
            if let (true, Some(Some(v))) = (pool_up, facts.volumes.get(source_volid)) {
                let spec = image_of(v);
                want.want(facts.rbd_images.contains_key(&spec), move || Need::RbdImage { image: spec });
            }
        }
        _ => {}
    }
    want.needs
}

/// Prelude of volumes from images: the image-volume rows of `cinder://`
/// locations and the image's cache entries, when those paths can run.
fn image_prelude(
    want: &mut Wants,
    image_id: &crate::model::ImageId,
    target: &crate::model::Volume,
    facts: &Facts,
    config: &Config,
    memo: &Memo,
) {
    let Some(Ok(image)) = facts.images.get(image_id) else { return };
    let Some(locations) = facts.image_locations.get(image_id) else { return };
    if target.is_encrypted() {
        return;
    }
    let bare_raw = image.container_format.as_deref() == Some("bare") && image.disk_format.as_deref() == Some("raw");
    if config.direct_url_scheme_allowed("cinder") && bare_raw {
        // Same (direct_url, locations) as get_location gives.
        let (direct, list): (Option<&str>, &[crate::model::LocationEntry]) = match locations {
            Ok(l) if !l.is_empty() => (None, l),
            _ => match image.direct_url.as_deref() {
                Some(d) if !d.is_empty() => (Some(d), image.locations.as_deref().unwrap_or(&[])),
                _ => (None, &[]),
            },
        };
        if !memo.cinder_ids_known(image_id) {
            // The cluster's fsid, when known, lets the same pass classify
            // the URLs for the driver clone too.
            let fsid = match &facts.cluster {
                Some(Ok(c)) => Some(c.fsid.as_str()),
                _ => None,
            };
            let candidates = memo.cinder_candidates(image_id, direct, list, fsid);
            let ids = unknown_volumes(&candidates.ids, facts);
            if ids.is_empty() {
                memo.set_cinder_ids_known(image_id);
            } else {
                want.want(false, || Need::Volumes { volume_ids: ids });
            }
        }
    }
    if config.backend.image_volume_cache_enabled && config.internal_tenant().is_some() {
        want.want(facts.cache_by_image.contains_key(image_id), || Need::CacheEntriesOfImage {
            image_id: image_id.clone(),
        });
    }
}

/// The ids among `ids` (sorted, unique) that the facts know nothing about,
/// in order.
fn unknown_volumes(ids: &[crate::model::VolumeId], facts: &Facts) -> Vec<crate::model::VolumeId> {
    let known = &facts.volumes;
    let Some(first) = ids.first() else { return Vec::new() };
    if ids.len() < 16 || ids.len().saturating_mul(16) < known.len() {
        return ids.iter().filter(|id| !known.contains_key(*id)).cloned().collect();
    }
    // Many ids: one walk over the known rows instead of a lookup per id.
    let mut walk = known.range::<crate::model::VolumeId, _>(first..).map(|(k, _)| k).peekable();
    let mut unknown = Vec::new();
    for id in ids {
        while walk.next_if(|k| *k < id).is_some() {}
        if walk.next_if(|k| *k == id).is_none() {
            unknown.push(id.clone());
        }
    }
    unknown
}

/// A planner that keeps its facts, and what it derived from them, between
/// rounds of fact gathering.
///
/// Each [`Planner::plan`] first lists, in one batch, the facts every plan of
/// the request's kind reads; once those are known it decides. For an image
/// with many locations it decides in a *dry* run (recording nothing) and,
/// when the dry run needs nothing more, makes the plan, so that only the
/// last round builds the plan and its (large) trace; otherwise it makes the
/// plan directly, which the last round needs anyway.
///
/// A planner owns its request, configuration and policy ([`Planner::new`],
/// a `Planner<'static>`) or borrows them ([`Planner::borrowing`]: no copy
/// per decision, which is what [`crate::shell::plan`] uses).
#[derive(Debug)]
pub struct Planner<'c> {
    request: Cow<'c, Request>,
    config: Cow<'c, Config>,
    policy: Cow<'c, Policy>,
    facts: Facts,
    memo: Memo,
    /// The last round ran dry and asked for facts (see [`Planner::plan`]).
    /// Which run a round makes changes its cost, never its plan.
    full_next: AtomicBool,
}

impl Planner<'static> {
    /// A planner for `request`; checks the configuration once.
    pub fn new(request: Request, config: Config, policy: Policy) -> Result<Self, PlanError> {
        Planner::with(Cow::Owned(request), Cow::Owned(config), Cow::Owned(policy))
    }
}

impl<'c> Planner<'c> {
    /// A planner for `request` that borrows what it is given; checks the
    /// configuration once. It plans exactly as an owning one does.
    ///
    /// ```
    /// use cinder_flow::config::Config;
    /// use cinder_flow::model::{Timestamp, VolumeId};
    /// use cinder_flow::plan::Operation;
    /// use cinder_flow::planner::{PlanError, Planner, Policy, Request};
    ///
    /// let request = Request {
    ///     operation: Operation::CreateVolume,
    ///     volume_id: VolumeId::from("11111111-1111-4111-8111-111111111111"),
    ///     now: Timestamp::EPOCH,
    /// };
    /// let (mut config, policy) = (Config::default(), Policy::faithful());
    /// let borrowed = Planner::borrowing(&request, &config, &policy).unwrap();
    /// let owned = Planner::new(request.clone(), config.clone(), policy.clone()).unwrap();
    /// assert_eq!(borrowed.plan().unwrap(), owned.plan().unwrap());
    ///
    /// config.backend.rbd_store_chunk_size = 0; // set directly, unchecked
    /// let refused = Planner::borrowing(&request, &config, &policy).unwrap_err();
    /// assert!(matches!(refused, PlanError::Config(_)));
    /// ```
    pub fn borrowing(request: &'c Request, config: &'c Config, policy: &'c Policy) -> Result<Self, PlanError> {
        Planner::with(Cow::Borrowed(request), Cow::Borrowed(config), Cow::Borrowed(policy))
    }

    fn with(request: Cow<'c, Request>, config: Cow<'c, Config>, policy: Cow<'c, Policy>) -> Result<Self, PlanError> {
        config.validate()?;
        Ok(Self {
            request,
            config,
            policy,
            facts: Facts::new(),
            memo: Memo::default(),
            full_next: AtomicBool::new(false),
        })
    }

    /// Starts from facts already known.
    pub fn with_facts(mut self, facts: Facts) -> Self {
        self.facts = facts;
        self.memo = Memo::default();
        self.full_next = AtomicBool::new(false);
        self
    }

    /// Adds an answer.
    pub fn learn(&mut self, fact: Fact) {
        match &fact {
            Fact::Image { image_id, .. } | Fact::ImageLocations { image_id, .. } => self.memo.forget_image(image_id),
            Fact::Volume { .. } => self.memo.forget_rows(),
            _ => {}
        }
        self.facts.learn(fact);
    }

    /// Adds answers, in order (as [`Planner::learn`] on each; faster for
    /// many volume rows, see [`Facts::learn_all`]).
    pub fn learn_all(&mut self, facts: impl IntoIterator<Item = Fact>) {
        let facts: Vec<Fact> = facts.into_iter().collect();
        let mut rows = false;
        for fact in &facts {
            match fact {
                Fact::Image { image_id, .. } | Fact::ImageLocations { image_id, .. } => {
                    self.memo.forget_image(image_id)
                }
                Fact::Volume { .. } => rows = true,
                _ => {}
            }
        }
        if rows {
            self.memo.forget_rows();
        }
        self.facts.learn_all(facts);
    }

    /// The facts so far.
    pub fn facts(&self) -> &Facts {
        &self.facts
    }

    /// The facts, giving up the planner.
    pub fn into_facts(self) -> Facts {
        self.facts
    }

    /// The request.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Decides, or says what it needs.
    pub fn plan(&self) -> Result<Planning<Plan>, PlanError> {
        let needs = prelude(&self.request, &self.facts, &self.config, &self.memo);
        if !needs.is_empty() {
            return Ok(Planning::NeedFacts(needs));
        }
        // After a dry round that asked for facts, the next round (with
        // those facts) usually decides: it runs in full at once. If it asks
        // again, the round after that runs dry first.
        if !self.dry_first() || self.full_next.swap(false, Ordering::Relaxed) {
            return run(&self.request, &self.facts, &self.config, &self.policy, &self.memo, false);
        }
        match run(&self.request, &self.facts, &self.config, &self.policy, &self.memo, true)? {
            Planning::NeedFacts(n) => {
                self.full_next.store(true, Ordering::Relaxed);
                Ok(Planning::NeedFacts(n))
            }
            Planning::Done(_) => run(&self.request, &self.facts, &self.config, &self.policy, &self.memo, false),
        }
    }

    /// Whether to decide in a dry run before building the plan: worth it
    /// when a run that still needs facts would build a large trace for
    /// nothing (a trace entry per image location). Otherwise the full run
    /// goes first, and a round that needs nothing more takes one run
    /// instead of two. Dry and full runs make the same decisions.
    fn dry_first(&self) -> bool {
        const FEW_LOCATIONS: usize = 32;
        let Operation::CreateFromImage { image_id } = &self.request.operation else { return false };
        let listed = match self.facts.image_locations.get(image_id) {
            Some(Ok(l)) => l.len(),
            _ => 0,
        };
        let legacy = match self.facts.images.get(image_id) {
            Some(Ok(i)) => i.locations.as_ref().map_or(0, |l| l.len()),
            _ => 0,
        };
        listed.max(legacy) > FEW_LOCATIONS
    }
}

impl Decide for Planner<'_> {
    type Decision = Plan;

    fn decide(&self) -> Result<Planning<Plan>, PlanError> {
        self.plan()
    }

    fn learn_all(&mut self, facts: Vec<Fact>) {
        Planner::learn_all(self, facts);
    }

    fn facts(&self) -> &Facts {
        &self.facts
    }

    fn into_facts(self) -> Facts {
        self.facts
    }
}
