//! Gathering facts through the ports until the planner can decide.

use tracing::Instrument as _;

use crate::config::Config;
use crate::error::{BackendError, BackendErrorKind};
use crate::facts::{Fact, Facts, Need};
use crate::plan::Plan;
use crate::planner::{Decide, PlanError, Planner, Planning, Policy, Request};
use crate::ports::{Driver, ImageService, VolumeDb};

/// The three ports, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct Backends<'a> {
    /// The storage driver.
    pub driver: &'a dyn Driver,
    /// Glance.
    pub images: &'a dyn ImageService,
    /// Cinder's database.
    pub db: &'a dyn VolumeDb,
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatherError {
    /// The planner refused (invalid configuration, contradictory facts).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A port failed while fetching a fact the planner needed.
    #[error("could not fetch {need}")]
    Backend {
        /// What was being fetched.
        need: Need,
        /// The port's error.
        #[source]
        source: Box<BackendError>,
    },
    /// The planner kept asking without progress (a bug in a port that
    /// answers a different question than asked, or in the planner).
    #[error("no progress after {rounds} rounds; still needs {}", words(needs))]
    NoProgress {
        /// Rounds made.
        rounds: usize,
        /// The last needs.
        needs: Vec<Need>,
    },
}

/// Upper bound on planning rounds. Every round adds at least one fact and
/// a decision needs a few dozen at most.
const MAX_ROUNDS: usize = 10_000;

/// Plans `request`: drives a [`Planner`] through the ports until it
/// decides. Returns the plan and the facts it was made from (serialisable,
/// so the decision can be replayed).
pub async fn plan(
    backends: Backends<'_>,
    request: &Request,
    config: &Config,
    policy: &Policy,
) -> Result<(Plan, Facts), GatherError> {
    plan_from(backends, request, config, policy, Facts::new()).await
}

/// [`plan`], starting from facts already known.
pub async fn plan_from(
    backends: Backends<'_>,
    request: &Request,
    config: &Config,
    policy: &Policy,
    facts: Facts,
) -> Result<(Plan, Facts), GatherError> {
    let (plan, facts) = drive(backends, Planner::borrowing(request, config, policy)?.with_facts(facts)).await?;
    log_plan(&plan);
    Ok((plan, facts))
}

/// The decision in the log: one line at INFO, the planning stages at DEBUG,
/// every decision of the trace at TRACE.
fn log_plan(plan: &Plan) {
    tracing::info!(
        operation = plan.operation.name(),
        volume_id = %plan.volume_id,
        path = plan.path.map(|p| p.name()),
        outcome = %plan.outcome.error().map_or("success", |e| e.name()),
        steps = plan.steps.len(),
        "planned"
    );
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    // Stages in the order first reached, with how many decisions each made.
    let mut stages: Vec<(crate::explain::Stage, usize)> = Vec::new();
    for d in &plan.trace {
        match stages.iter_mut().find(|(s, _)| *s == d.stage) {
            Some((_, n)) => *n += 1,
            None => stages.push((d.stage, 1)),
        }
    }
    for (stage, decisions) in stages {
        tracing::debug!(stage = %stage, decisions, "planning stage");
    }
    for d in plan.explained() {
        tracing::trace!(stage = %d.decision().stage, "{d}");
    }
}

/// The one drive loop: asks the planner, fetches what it needs through the
/// ports ([`fetch`]), hands the answers over and asks again, until it
/// decides. Every planner of the crate speaks this protocol ([`Decide`]).
/// Returns the decision and the facts it was made from.
///
/// A planner that asks the same thing twice in a row is not making
/// progress (a port answering another question than asked):
/// [`GatherError::NoProgress`].
pub async fn drive<D: Decide>(backends: Backends<'_>, planner: D) -> Result<(D::Decision, Facts), GatherError> {
    let span = tracing::debug_span!("gather", decision = std::any::type_name::<D::Decision>());
    drive_rounds(backends, planner).instrument(span).await
}

async fn drive_rounds<D: Decide>(backends: Backends<'_>, mut planner: D) -> Result<(D::Decision, Facts), GatherError> {
    let mut last: Vec<Need> = Vec::new();
    for round in 0..MAX_ROUNDS {
        match planner.decide()? {
            Planning::Done(decision) => {
                tracing::debug!(rounds = round, "decided");
                return Ok((*decision, planner.into_facts()));
            }
            Planning::NeedFacts(needs) => {
                if needs == last {
                    tracing::warn!(round, needs = %words(&needs), "the planner asked the same again: no progress");
                    return Err(GatherError::NoProgress { rounds: round, needs });
                }
                tracing::debug!(round, needs = needs.len(), first = %needs[0], "gather round");
                for need in &needs {
                    tracing::trace!(need = %need, "fetch");
                    let facts = fetch(backends, need, planner.facts()).await.inspect_err(|e| {
                        tracing::warn!(need = %need, error = %e, "a port failed while gathering");
                    })?;
                    planner.learn_all(facts);
                }
                last = needs;
            }
        }
    }
    Err(GatherError::NoProgress { rounds: MAX_ROUNDS, needs: last })
}

fn kind_or_fail<T>(
    r: Result<T, BackendError>,
    need: &Need,
    accept: &[BackendErrorKind],
) -> Result<Result<T, BackendErrorKind>, GatherError> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e) if accept.contains(&e.kind) => Ok(Err(e.kind)),
        Err(source) => Err(GatherError::Backend { need: need.clone(), source: Box::new(source) }),
    }
}

/// Fetches one need through the ports: the facts that answer it. `known`
/// lets a batch need skip what is already known.
pub async fn fetch(b: Backends<'_>, need: &Need, known: &Facts) -> Result<Vec<Fact>, GatherError> {
    let fail = |source: BackendError| GatherError::Backend { need: need.clone(), source: Box::new(source) };
    let mut out = Vec::new();
    match need {
        Need::Volume { volume_id } => {
            let v = b.db.volume(volume_id).await.map_err(fail)?;
            out.push(Fact::Volume { volume_id: volume_id.clone(), volume: v });
        }
        Need::Volumes { volume_ids } => {
            let mut rows = b.db.volumes(volume_ids).await.map_err(fail)?;
            out.reserve(volume_ids.len());
            if volume_ids.windows(2).all(|w| w[0] < w[1]) {
                // The usual case (`Need::Volumes` ids are sorted and
                // unique): one merge walk over the rows sorted by id.
                rows.sort_unstable_by(|a, b| a.id.cmp(&b.id));
                let mut rows = rows.into_iter().peekable();
                for id in volume_ids {
                    while rows.next_if(|r| r.id < *id).is_some() {}
                    let volume = rows.next_if(|r| r.id == *id);
                    out.push(Fact::Volume { volume_id: id.clone(), volume });
                }
            } else {
                let mut by_id: std::collections::BTreeMap<_, _> = rows.into_iter().map(|r| (r.id.clone(), r)).collect();
                for id in volume_ids {
                    out.push(Fact::Volume { volume_id: id.clone(), volume: by_id.remove(id) });
                }
            }
        }
        Need::Snapshot { snapshot_id } => {
            let s = b.db.snapshot(snapshot_id).await.map_err(fail)?;
            out.push(Fact::Snapshot { snapshot_id: snapshot_id.clone(), snapshot: s });
        }
        Need::SnapshotsOfVolume { volume_id } => {
            let snapshots = b.db.snapshots_of_volume(volume_id).await.map_err(fail)?;
            out.push(Fact::SnapshotsOfVolume { volume_id: volume_id.clone(), snapshots });
        }
        Need::VolumeType { name } => {
            let t = b.db.volume_type(name).await.map_err(fail)?;
            out.push(Fact::VolumeType { name: name.clone(), volume_type: t });
        }
        Need::Services => {
            let services = b.db.services().await.map_err(fail)?;
            out.push(Fact::Services { services });
        }
        Need::CacheEntriesOfImage { image_id } => {
            let entries = b.db.cache_entries_of_image(image_id).await.map_err(fail)?;
            out.push(Fact::CacheEntriesOfImage { image_id: image_id.clone(), entries });
        }
        Need::CacheEntriesAt { location } => {
            let entries = b.db.cache_entries_at(location).await.map_err(fail)?;
            out.push(Fact::CacheEntriesAt { location: location.clone(), entries });
        }
        Need::Image { image_id } => {
            use BackendErrorKind::*;
            let r = kind_or_fail(b.images.show(image_id).await, need, &[NotFound, PermissionDenied, Rejected])?;
            out.push(Fact::Image { image_id: image_id.clone(), image: r });
        }
        Need::ImageLocations { image_id } => {
            use BackendErrorKind::*;
            let r = kind_or_fail(
                b.images.locations(image_id).await,
                need,
                &[NotFound, NotSupported, PermissionDenied, Rejected],
            )?;
            out.push(Fact::ImageLocations { image_id: image_id.clone(), locations: r });
        }
        Need::Cluster => {
            let r = kind_or_fail(b.driver.cluster_info().await, need, &[BackendErrorKind::Unavailable])?;
            out.push(Fact::Cluster { cluster: r });
        }
        Need::Pool { pool } => {
            let exists = b.driver.pool_exists(pool).await.map_err(fail)?;
            out.push(Fact::Pool { pool: pool.clone(), exists });
        }
        Need::RbdImage { image } => {
            let first = fetch_image(b, need, image).await?;
            prefetch_parents(b, need, image, first, known, &mut out).await;
        }
        Need::ProbeSnapshots { snaps } => {
            let mut missing_pools = std::collections::BTreeSet::new();
            for snap in snaps {
                let spec = snap.image_spec();
                if known.pools.get(&spec.pool) == Some(&false) || missing_pools.contains(&spec.pool) {
                    break;
                }
                let info = match known.rbd_images.get(&spec) {
                    Some(i) => i.clone(),
                    None => match fetch_image(b, need, &spec).await? {
                        Fact::RbdImage { info, .. } => {
                            let i = info.as_deref().cloned();
                            out.push(Fact::RbdImage { image: spec.clone(), info });
                            i
                        }
                        other => {
                            missing_pools.insert(spec.pool.clone());
                            out.push(other);
                            break;
                        }
                    },
                };
                if info.is_some_and(|i| i.image.readable && i.image.snap(&snap.snap).is_some()) {
                    break;
                }
            }
        }
        Need::Host => {
            let host = b.driver.host_info().await.map_err(fail)?;
            out.push(Fact::Host { host });
        }
        Need::Capabilities => {
            let capabilities = b.driver.capabilities().await.map_err(fail)?;
            out.push(Fact::Capabilities { capabilities });
        }
        Need::ProjectDefaultVolumeType { project_id } => {
            let volume_type_id = b.db.project_default_volume_type(project_id).await.map_err(fail)?;
            out.push(Fact::ProjectDefaultVolumeType { project_id: project_id.clone(), volume_type_id });
        }
        Need::ProjectUsage { project_id } => {
            let usage = b.db.project_usage(project_id).await.map_err(fail)?;
            out.push(Fact::ProjectUsage { project_id: project_id.clone(), usage });
        }
        Need::FreshVolumeIds { count } => {
            let mut ids = Vec::new();
            while known.fresh_volume_ids.len() + ids.len() < *count {
                ids.push(b.db.new_volume_id().await.map_err(fail)?);
            }
            out.push(Fact::FreshVolumeIds { ids });
        }
    }
    Ok(out)
}

async fn fetch_image(b: Backends<'_>, need: &Need, image: &crate::rbd::ImageSpec) -> Result<Fact, GatherError> {
    match b.driver.image_info(image).await {
        Ok(info) => Ok(Fact::RbdImage { image: image.clone(), info: info.map(Box::new) }),
        Err(e) if e.kind == BackendErrorKind::PoolNotFound => {
            Ok(Fact::Pool { pool: image.pool.clone(), exists: false })
        }
        Err(source) => Err(GatherError::Backend { need: need.clone(), source: Box::new(source) }),
    }
}

/// Pushes `first` and the images it is a clone of, transitively.
///
/// `_get_clone_depth` and `_delete_clone_parent_refs` open a chain's images
/// one after the other, and each answer names the next; fetched one per
/// round, a chain of n links took n rounds, each re-planning from the start
/// (n² work). Reading the parents with the image keeps it at one round. At
/// most [`MAX_CLONE_CHAIN`](crate::planner::MAX_CLONE_CHAIN) + 1 images are
/// read (the planner refuses a longer chain), images already known or read
/// are not read again (a cycle in the links ends), and a parent that cannot
/// be read ends the prefetch without failing the round: the planner asks
/// for it if it needs it.
async fn prefetch_parents(
    b: Backends<'_>,
    need: &Need,
    image: &crate::rbd::ImageSpec,
    first: Fact,
    known: &Facts,
    out: &mut Vec<Fact>,
) {
    fn parents(fact: &Fact, next: &mut Vec<crate::rbd::ImageSpec>) {
        if let Fact::RbdImage { info: Some(info), .. } = fact {
            let i = &info.image;
            next.extend(
                i.parent.iter().chain(i.snaps.iter().filter_map(|s| s.parent.as_ref())).map(|p| p.image_spec()),
            );
        }
    }
    let mut next = Vec::new();
    parents(&first, &mut next);
    out.push(first);
    let mut read = std::collections::BTreeSet::from([image.clone()]);
    while let Some(parent) = next.pop() {
        if read.len() > crate::planner::MAX_CLONE_CHAIN + 1 {
            break;
        }
        if known.rbd_images.contains_key(&parent) || known.pools.get(&parent.pool) == Some(&false) {
            continue;
        }
        if !read.insert(parent.clone()) {
            continue;
        }
        match fetch_image(b, need, &parent).await {
            Ok(fact) => {
                parents(&fact, &mut next);
                out.push(fact);
            }
            Err(_) => break,
        }
    }
}

/// Needs in words, separated by `; `.
fn words(needs: &[Need]) -> String {
    needs.iter().map(Need::to_string).collect::<Vec<_>>().join("; ")
}
