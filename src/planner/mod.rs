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
//! [`Step`] of the plan with the result the view predicts, and upstream's
//! handling of that result (fall back, clean up, raise) is followed as
//! upstream has it. Python exceptions are modelled as an `Err` that each
//! `except` clause matches by class.
//!
//! The result is a plan whose steps are exactly the calls upstream would
//! make, with the expected outcome of each, plus a typed trace of why.

mod ctx;
mod db;
mod delete;
mod flow;
mod image;
mod rbd_driver;

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::facts::{Facts, Need};
use crate::model::{Timestamp, VolumeId};
use crate::plan::{Operation, Plan};

pub(crate) use ctx::{Ctx, Exc};
pub use db::location_matches as cache_location_matches;

/// What to plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The operation.
    pub operation: Operation,
    /// The volume to create (its row exists with status `creating`) or to
    /// delete.
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

/// The planner's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[must_use]
pub enum Planning {
    /// Decided.
    Done(Box<Plan>),
    /// These facts are needed first (fetch them, [`Facts::learn`], call
    /// [`plan`] again).
    NeedFacts(Vec<Need>),
}

/// Why no plan can be made at all (as opposed to a plan that fails, which
/// is a [`Plan`] with a failure outcome).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The facts contradict each other.
    #[error("inconsistent facts: {0}")]
    InconsistentFacts(String),
}

/// Decides how to carry out `request`. See the [module docs](self).
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
/// // With no facts, the planner first asks for the volume row.
/// let first = plan(&request, &Facts::new(), &Config::default(), &Policy::faithful()).unwrap();
/// assert!(matches!(first, Planning::NeedFacts(needs) if matches!(needs[0], Need::Volume { .. })));
/// ```
pub fn plan(request: &Request, facts: &Facts, config: &Config, policy: &Policy) -> Result<Planning, PlanError> {
    config.validate()?;
    let mut ctx = Ctx::new(request, facts, config, policy);
    let result = match &request.operation {
        Operation::DeleteVolume => delete::delete_volume(&mut ctx),
        _ => flow::create_volume(&mut ctx),
    };
    match result {
        Ok(()) => Ok(Planning::Done(Box::new(ctx.finish(None)))),
        Err(Exc::Need(needs)) => Ok(Planning::NeedFacts(needs)),
        Err(Exc::Raise(raised)) => Ok(Planning::Done(Box::new(ctx.finish(Some(raised))))),
        Err(Exc::Inconsistent(why)) => Err(PlanError::InconsistentFacts(why)),
    }
}
