//! The one planning protocol every planner of the crate speaks.
//!
//! A planner is pure: it reads the [`Facts`] gathered so far and either
//! decides ([`Planning::Done`]) or names the facts it still needs
//! ([`Planning::NeedFacts`]). Whoever drives it (the async shell through
//! the ports, a test by hand, a replay from captured facts) fetches those
//! facts, hands them over with [`Decide::learn_all`] and asks again. It is
//! the same loop for the create/delete/snapshot planner ([`super::Planner`]),
//! the API planner ([`super::ApiPlanner`]) and Glance's RBD store
//! ([`crate::glance_store::StorePlanner`]), so the shell has one drive loop
//! ([`crate::shell::drive`]), as raft-rs has one `ready`/`advance` cycle for
//! every kind of progress.

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::facts::{Fact, Facts, Need};

/// A planner's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[must_use]
pub enum Planning<T> {
    /// Decided.
    Done(Box<T>),
    /// These facts are needed first: fetch them, [`Decide::learn_all`]
    /// (or [`Facts::learn`]) and ask again.
    NeedFacts(Vec<Need>),
}

impl<T> Planning<T> {
    /// The decision, if made.
    pub fn done(self) -> Option<T> {
        match self {
            Self::Done(d) => Some(*d),
            Self::NeedFacts(_) => None,
        }
    }

    /// The facts still needed (empty once decided).
    pub fn needs(&self) -> &[Need] {
        match self {
            Self::Done(_) => &[],
            Self::NeedFacts(n) => n,
        }
    }
}

/// Why no decision can be made at all (as opposed to a decision that
/// upstream's code fails, which is a decision with a failure outcome).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The configuration is invalid.
    #[error("invalid configuration")]
    Config(#[from] ConfigError),
    /// The facts contradict each other.
    #[error("inconsistent facts: {0}")]
    InconsistentFacts(String),
}

/// A planner that decides in rounds of fact gathering.
///
/// Implementations keep the facts (and anything derived from them) between
/// rounds; [`Decide::decide`] is a pure function of what they hold.
///
/// ```
/// use cinder_flow::config::Config;
/// use cinder_flow::facts::{Fact, Need};
/// use cinder_flow::model::{Timestamp, VolumeId};
/// use cinder_flow::plan::Operation;
/// use cinder_flow::planner::{Decide, Planner, Planning, Policy, Request};
///
/// let request = Request {
///     operation: Operation::DeleteVolume,
///     volume_id: VolumeId::from("11111111-1111-4111-8111-111111111111"),
///     now: Timestamp::EPOCH,
/// };
/// let mut planner = Planner::new(request, Config::default(), Policy::faithful()).unwrap();
/// // Drive it by hand: the volume row does not exist.
/// let plan = loop {
///     match planner.decide().unwrap() {
///         Planning::Done(plan) => break plan,
///         Planning::NeedFacts(needs) => {
///             let answers = needs.into_iter().map(|need| match need {
///                 Need::Volume { volume_id } => Fact::Volume { volume_id, volume: None },
///                 Need::Cluster => Fact::Cluster { cluster: Err(cinder_flow::BackendErrorKind::Unavailable) },
///                 other => panic!("not asked in this example: {other}"),
///             });
///             Decide::learn_all(&mut planner, answers.collect());
///         }
///     }
/// };
/// // Upstream's delete raises for a volume whose row is gone.
/// assert_eq!(plan.outcome.error().map(|e| e.name()), Some("VolumeNotFound"));
/// ```
pub trait Decide {
    /// What is decided.
    type Decision;

    /// Decides, or names the facts still needed.
    fn decide(&self) -> Result<Planning<Self::Decision>, PlanError>;

    /// Adds answers, in order (a later answer to the same question
    /// replaces an earlier one).
    fn learn_all(&mut self, facts: Vec<Fact>);

    /// The facts so far.
    fn facts(&self) -> &Facts;

    /// The facts, giving up the planner (serialisable: a decision can be
    /// replayed from them).
    fn into_facts(self) -> Facts
    where
        Self: Sized;
}

/// Why planning code stops before it decides: facts missing, facts that
/// contradict each other, or upstream raising `F` (an `except` may catch
/// it, or it ends the decision).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stop<F> {
    /// Facts are missing.
    Need(Vec<Need>),
    /// Upstream raises.
    Raise(F),
    /// The facts contradict themselves.
    Inconsistent(String),
}

impl<F> From<Need> for Stop<F> {
    fn from(need: Need) -> Self {
        Stop::Need(vec![need])
    }
}

/// The facts a prelude asks for up front: each once, built only when
/// missing. Batching reads without side effects changes no decision and
/// saves gathering rounds.
#[derive(Default)]
pub(crate) struct Wants {
    pub(crate) needs: Vec<Need>,
}

impl Wants {
    /// Asks for `need` unless it is `known`.
    pub(crate) fn want(&mut self, known: bool, need: impl FnOnce() -> Need) {
        if known {
            return;
        }
        let need = need();
        if !self.needs.contains(&need) {
            self.needs.push(need);
        }
    }
}
