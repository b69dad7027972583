//! The API side of a create: `volume/api.py` `API.create` and the API flow's
//! `ExtractVolumeRequestTask`, `QuotaReserveTask` and `EntryCreateTask`
//! (`volume/flows/api/create_volume.py`), rules API-1 to API-29 of
//! docs/RULES.md.
//!
//! [`plan_api`] is pure like [`super::plan`]: it reads an [`ApiRequest`], the
//! [`Facts`] gathered so far and the [`Config`], and either asks for more
//! facts ([`Planning::NeedFacts`]) or decides ([`Planning::Done`]) what
//! upstream does with the request: which size, volume type, availability
//! zones, encryption and multiattach it extracts, the volume row it creates,
//! or the exception it raises, with its class name and message.
//!
//! Upstream is followed check by check, quirks included: Python's `int()`,
//! `float()` and truthiness decide what a size is ([`RequestedSize`],
//! [`PyInt`]); a group without a zone replaces the requested zone by none;
//! the fallback zone is not validated again; `replication_status` is
//! `disabled` unless the type has QoS specs; a key is made for an encrypted
//! type before multiattach rejects it.
//!
//! Every availability-zone decision comes with a [`ZoneExplanation`]: the
//! zones Cinder knows, the type's restriction, where the candidate zone came
//! from, whether it fell back, and why a zone was rejected, in types and in
//! words (seed 003: a Nova zone that Cinder does not know).
//!
//! [`ApiKind::Create`] is `API.create` as the REST controller calls it
//! once it has resolved the request's references (API-2), but without the
//! controller's own size default (API-5), as the conformance format runs it:
//! a null size with a source fails `int(None)` in API-10.
//!
//! Not modelled: policy checks (API-7, API-16, the multiattach policy of
//! API-24: the default policy lets a project member create), the legacy
//! `source_replica` and `multiattach` parameters (API-6, API-8), the image
//! name lookup and Nova-snapshot images (API-3, API-4: the request names an
//! image id), consistency groups and group snapshots, the scheduler cast
//! (API-29, which decides nothing the result reports), per-project quota
//! overrides and quota classes (Cinder's default quotas apply: 10 volumes,
//! 1000 GiB, no per-volume limit). Size strings are read as CPython 3.11
//! reads them, Unicode digits (`"٣"`, `"３"`) and spaces included, and with
//! its 4300-digit limit on integer conversion.
//!
//! ```
//! use cinder_flow::config::Config;
//! use cinder_flow::facts::{Fact, Facts, Need};
//! use cinder_flow::model::{Service, VolumeType};
//! use cinder_flow::planner::{plan_api, ApiKind, ApiRequest, Planning, RequestedSize};
//!
//! // Seed 003: a Nova zone Cinder does not know.
//! let mut request = ApiRequest::new("project-1", "user-1");
//! request.size = RequestedSize::from(1);
//! request.availability_zone = Some("ag1".into());
//! let config = Config::default();
//! let mut facts = Facts::new();
//! let result = loop {
//!     match plan_api(&request, ApiKind::Create, &facts, &config).unwrap() {
//!         Planning::Done(result) => break result,
//!         // Answer what the planner asks for (the shell does this through
//!         // the ports: `shell::api_request`).
//!         Planning::NeedFacts(needs) => {
//!             for need in needs {
//!                 facts.learn(match need {
//!                     Need::Services => Fact::Services {
//!                         services: vec![Service {
//!                             host: "controller1@ceph".into(),
//!                             binary: "cinder-volume".into(),
//!                             topic: "cinder-volume".into(),
//!                             availability_zone: "nova".into(),
//!                             disabled: false,
//!                         }],
//!                     },
//!                     Need::VolumeType { name } => Fact::VolumeType {
//!                         volume_type: (name == "__DEFAULT__").then(|| VolumeType::plain("type-default", "__DEFAULT__")),
//!                         name,
//!                     },
//!                     Need::ProjectDefaultVolumeType { project_id } => {
//!                         Fact::ProjectDefaultVolumeType { project_id, volume_type_id: None }
//!                     }
//!                     other => unreachable!("{other:?}"),
//!                 });
//!             }
//!         }
//!     }
//! };
//! // ag1 is not a zone Cinder knows, and fallback is off.
//! assert_eq!(result.error().map(|e| e.name()), Some("InvalidAvailabilityZone"));
//! assert_eq!(result.known_availability_zones, Some(vec!["nova".to_owned()]));
//! let words = result.zone.as_ref().unwrap().to_string();
//! assert!(words.contains("\"ag1\" is not one Cinder knows"));
//! ```

mod quota;
mod request;
mod result;
#[cfg(test)]
mod tests;
mod zones;

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use super::protocol::{Decide, PlanError, Planning, Stop, Wants};
use crate::config::Config;
use crate::error::{BackendErrorKind, ErrorClass};
use crate::facts::{Fact, Facts, Need};
use crate::model::{
    Encryption, Image, ImageId, Service, Snapshot, SnapshotId, Volume, VolumeId, VolumeStatus, VolumeType, GIB,
};
use crate::pyvalue::{is_boolean_str, is_uuid_like, parse_py_int, PyError, PyInt};

pub use request::{ApiBackup, ApiGroup, ApiKind, ApiRequest, AsInt, RequestedSize};
pub use result::{
    ApiDecision, ApiFailure, ApiOutcome, ApiResult, ApiRule, ApiStage, ApiVerdict, ExtractedRequest, KeySource,
    NewVolume, ReplicationStatus, SizeSource, TypeRef, TypeSource,
};
pub use zones::{
    decide_zone, known_availability_zones, parse_type_availability_zones, FallbackSource, GroupZone, SourceZone,
    TypeZones, UnpinnedReason, ZoneCandidate, ZoneDecision, ZoneExplanation, ZoneFallback, ZoneRejection, ZoneRequest,
    ZoneSource,
};
use zones::{TYPE_ZONES_KEY, VOLUME_TOPIC};

/// `provisioning:min_vol_size` (API-10).
const MIN_SIZE_KEY: &str = "provisioning:min_vol_size";
/// `provisioning:max_vol_size` (API-10).
const MAX_SIZE_KEY: &str = "provisioning:max_vol_size";

/// Decides what upstream's API does with `request`, or says which facts it
/// needs first (fetch them, [`Facts::learn`], call again). Pure and
/// deterministic: the same request, facts and configuration always give the
/// same answer. [`ApiPlanner`] does the same across rounds (the shell's
/// [`crate::shell::api_request`] drives one).
///
/// [`ApiKind::Create`] runs the REST controller's lookups (API-2),
/// `API.create`'s checks (API-9 to API-14), the extraction (API-15 to
/// API-26), the quota reservation (API-27) and the volume row (API-28);
/// [`ApiKind::ExtractOnly`] runs the lookups and the extraction.
pub fn plan_api(
    request: &ApiRequest,
    kind: ApiKind,
    facts: &Facts,
    config: &Config,
) -> Result<Planning<ApiResult>, PlanError> {
    config.validate()?;
    decide(request, kind, facts, config)
}

/// [`plan_api`] once the configuration is known to be valid.
fn decide(
    request: &ApiRequest,
    kind: ApiKind,
    facts: &Facts,
    config: &Config,
) -> Result<Planning<ApiResult>, PlanError> {
    let needs = prelude(request, facts, config);
    if !needs.is_empty() {
        return Ok(Planning::NeedFacts(needs));
    }
    let mut run =
        Run { req: request, kind, facts, config, known: None, zone: None, extracted: None, trace: Vec::new() };
    let outcome = match run.run() {
        Ok(outcome) => outcome,
        Err(Stop::Need(needs)) => return Ok(Planning::NeedFacts(needs)),
        Err(Stop::Inconsistent(why)) => return Err(PlanError::InconsistentFacts(why)),
        Err(Stop::Raise(failure)) => {
            run.trace.push(ApiDecision {
                stage: failure.stage,
                rule: failure.rule,
                verdict: ApiVerdict::Refused { error: failure.error, message: failure.message.clone() },
            });
            ApiOutcome::Failed { failure, extracted: run.extracted.take() }
        }
    };
    Ok(Planning::Done(Box::new(ApiResult {
        known_availability_zones: run.known.map(|k| k.into_iter().collect()),
        outcome,
        zone: run.zone,
        trace: run.trace,
    })))
}

/// The API planner across rounds of fact gathering: the request, its kind
/// and the configuration (checked once), and the facts so far. See
/// [`Decide`] for the protocol.
///
/// ```
/// use cinder_flow::config::Config;
/// use cinder_flow::planner::{ApiKind, ApiPlanner, ApiRequest, Decide, Planning};
///
/// let request = ApiRequest::new("project-1", "user-1");
/// let planner = ApiPlanner::new(request, ApiKind::Create, Config::default()).unwrap();
/// // Every request reads the services and a volume type first.
/// let Planning::NeedFacts(needs) = planner.decide().unwrap() else { panic!("nothing known yet") };
/// assert_eq!(needs[0].to_string(), "the service rows");
/// ```
#[derive(Debug)]
pub struct ApiPlanner<'c> {
    request: Cow<'c, ApiRequest>,
    kind: ApiKind,
    config: Cow<'c, Config>,
    facts: Facts,
}

impl ApiPlanner<'static> {
    /// A planner for `request`; checks the configuration once.
    pub fn new(request: ApiRequest, kind: ApiKind, config: Config) -> Result<Self, PlanError> {
        ApiPlanner::with(Cow::Owned(request), kind, Cow::Owned(config))
    }
}

impl<'c> ApiPlanner<'c> {
    /// A planner that borrows the request and configuration.
    pub fn borrowing(request: &'c ApiRequest, kind: ApiKind, config: &'c Config) -> Result<Self, PlanError> {
        ApiPlanner::with(Cow::Borrowed(request), kind, Cow::Borrowed(config))
    }

    fn with(request: Cow<'c, ApiRequest>, kind: ApiKind, config: Cow<'c, Config>) -> Result<Self, PlanError> {
        config.validate()?;
        Ok(Self { request, kind, config, facts: Facts::new() })
    }

    /// Starts from facts already known.
    pub fn with_facts(mut self, facts: Facts) -> Self {
        self.facts = facts;
        self
    }
}

impl Decide for ApiPlanner<'_> {
    type Decision = ApiResult;

    fn decide(&self) -> Result<Planning<ApiResult>, PlanError> {
        decide(&self.request, self.kind, &self.facts, &self.config)
    }

    fn learn_all(&mut self, facts: Vec<Fact>) {
        self.facts.learn_all(facts);
    }

    fn facts(&self) -> &Facts {
        &self.facts
    }

    fn into_facts(self) -> Facts {
        self.facts
    }
}

/// The facts every request of this shape reads, asked for together so that
/// gathering takes few rounds; only missing ones are listed.
fn prelude(req: &ApiRequest, facts: &Facts, config: &Config) -> Vec<Need> {
    let mut want = Wants::default();
    want.want(facts.services.is_some(), || Need::Services);
    let want_type = |want: &mut Wants, name: &str| {
        want.want(facts.volume_types.contains_key(name), || Need::VolumeType { name: name.to_owned() })
    };
    want_type(&mut want, req.requested_type().unwrap_or(&config.default_volume_type));
    if let Some(id) = req.snapshot_ref() {
        want.want(facts.snapshots.contains_key(id), || Need::Snapshot { snapshot_id: id.clone() });
        if let Some(Some(snap)) = facts.snapshots.get(id) {
            want.want(facts.volumes.contains_key(&snap.volume_id), || Need::Volume {
                volume_id: snap.volume_id.clone(),
            });
            if let Some(Some(v)) = facts.volumes.get(&snap.volume_id) {
                want_type(&mut want, &v.volume_type);
            }
        }
    }
    if let Some(id) = req.source_ref() {
        want.want(facts.volumes.contains_key(id), || Need::Volume { volume_id: id.clone() });
        if let Some(Some(v)) = facts.volumes.get(id) {
            want_type(&mut want, &v.volume_type);
        }
    }
    if let Some(id) = &req.image_id {
        want.want(facts.images.contains_key(id), || Need::Image { image_id: id.clone() });
    }
    want.needs
}

/// A step of the API flow: a value, or why it stopped (upstream's
/// exception is [`Stop::Raise`] with the [`ApiFailure`]).
type R<T> = Result<T, Stop<ApiFailure>>;

fn fail<T>(stage: ApiStage, rule: u8, error: ErrorClass, message: impl Into<String>) -> R<T> {
    Err(Stop::Raise(ApiFailure { stage, rule: ApiRule(rule), error, message: message.into() }))
}

fn py_fail<T>(stage: ApiStage, rule: u8, e: PyError) -> R<T> {
    fail(stage, rule, e.class(), e.message())
}

fn invalid_input<T>(stage: ApiStage, rule: u8, reason: impl fmt::Display) -> R<T> {
    fail(stage, rule, ErrorClass::InvalidInput, format!("Invalid input received: {reason}"))
}

/// How a volume type is looked up.
#[derive(Clone, Copy)]
enum TypeKey {
    /// `get_by_name_or_id`: by id if UUID-like, else by name.
    NameOrId,
    /// `get_volume_type_by_name`.
    Name,
    /// `get_volume_type` (by id).
    Id,
    /// The type a row names (rows hold a type name in this crate's model,
    /// an id upstream).
    Row,
}

/// The request's references, resolved (API-2).
struct Refs<'a> {
    snapshot: Option<&'a Snapshot>,
    source: Option<&'a Volume>,
    volume_type: Option<&'a VolumeType>,
    group: Option<&'a ApiGroup>,
    backup: Option<&'a ApiBackup>,
}

/// The image property naming a type (API-21.4).
enum ImageType {
    Name(String),
    /// A truthy non-string value: no type has it as its name.
    Other(String),
}

struct Run<'a> {
    req: &'a ApiRequest,
    kind: ApiKind,
    facts: &'a Facts,
    config: &'a Config,
    known: Option<BTreeSet<String>>,
    zone: Option<ZoneExplanation>,
    extracted: Option<ExtractedRequest>,
    trace: Vec<ApiDecision>,
}

impl<'a> Run<'a> {
    fn run(&mut self) -> R<ApiOutcome> {
        if self.kind == ApiKind::ExtractOnly {
            // The zones are computed before the task runs.
            self.known = Some(self.known_zones()?);
        }
        let refs = self.references()?;
        if self.kind == ApiKind::Create {
            self.pre_flow(&refs)?;
        }
        let extracted = self.extract(&refs)?;
        self.extracted = Some(extracted.clone());
        let volume = match self.kind {
            ApiKind::Create => {
                self.reserve_quota(&extracted)?;
                let row = self.entry(&refs, &extracted)?;
                self.note(
                    ApiStage::EntryCreate,
                    28,
                    ApiVerdict::RowCreated { availability_zone: row.availability_zone.clone() },
                );
                Some(row)
            }
            ApiKind::ExtractOnly => None,
        };
        Ok(ApiOutcome::Accepted { request: extracted, volume })
    }

    /// Records a decision.
    fn note(&mut self, stage: ApiStage, rule: u8, verdict: ApiVerdict) {
        self.trace.push(ApiDecision { stage, rule: ApiRule(rule), verdict });
    }

    // -- facts ------------------------------------------------------------

    fn services(&self) -> R<&'a [Service]> {
        self.facts.services.as_deref().ok_or_else(|| Stop::Need(vec![Need::Services]))
    }

    fn volume(&self, id: &VolumeId) -> R<Option<&'a Volume>> {
        match self.facts.volumes.get(id) {
            Some(v) => Ok(v.as_deref()),
            None => Err(Stop::Need(vec![Need::Volume { volume_id: id.clone() }])),
        }
    }

    fn snapshot(&self, id: &SnapshotId) -> R<Option<&'a Snapshot>> {
        match self.facts.snapshots.get(id) {
            Some(s) => Ok(s.as_ref()),
            None => Err(Stop::Need(vec![Need::Snapshot { snapshot_id: id.clone() }])),
        }
    }

    fn image(&self, id: &ImageId) -> R<Result<&'a Image, BackendErrorKind>> {
        match self.facts.images.get(id) {
            Some(r) => Ok(r.as_deref().map_err(|k| *k)),
            None => Err(Stop::Need(vec![Need::Image { image_id: id.clone() }])),
        }
    }

    fn lookup_type(&self, key: &str, how: TypeKey) -> R<Option<&'a VolumeType>> {
        let found = match self.facts.volume_types.get(key) {
            Some(t) => t.as_ref(),
            None => return Err(Stop::Need(vec![Need::VolumeType { name: key.to_owned() }])),
        };
        Ok(found.filter(|t| match how {
            TypeKey::NameOrId => t.name == key || (is_uuid_like(key) && t.id == key),
            TypeKey::Name => t.name == key,
            TypeKey::Id => t.id == key,
            TypeKey::Row => t.name == key || t.id == key,
        }))
    }

    /// `VolumeType.get_by_name_or_id` (API-2, API-21.4).
    fn type_by_name_or_id(&self, key: &str, stage: ApiStage, rule: u8) -> R<&'a VolumeType> {
        match self.lookup_type(key, TypeKey::NameOrId)? {
            Some(t) => Ok(t),
            None if is_uuid_like(key) => {
                fail(stage, rule, ErrorClass::VolumeTypeNotFound, format!("Volume type {key} could not be found."))
            }
            None => fail(
                stage,
                rule,
                ErrorClass::VolumeTypeNotFoundByName,
                format!("Volume type with name {key} could not be found."),
            ),
        }
    }

    /// The type of a volume row (API-12, API-21.2/3).
    fn type_of_volume(&self, v: &Volume, stage: ApiStage, rule: u8) -> R<&'a VolumeType> {
        match self.lookup_type(&v.volume_type, TypeKey::Row)? {
            Some(t) => Ok(t),
            None => fail(
                stage,
                rule,
                ErrorClass::VolumeTypeNotFound,
                format!("Volume type {} could not be found.", v.volume_type),
            ),
        }
    }

    /// `get_default_volume_type()` without a context: `default_volume_type`
    /// by name (API-10).
    fn configured_default_type(&self, stage: ApiStage, rule: u8) -> R<&'a VolumeType> {
        let name = &self.config.default_volume_type;
        match self.lookup_type(name, TypeKey::Name)? {
            Some(t) => Ok(t),
            None => fail(
                stage,
                rule,
                ErrorClass::VolumeTypeDefaultMisconfiguredError,
                format!("The request cannot be fulfilled as the default volume type {name} cannot be found."),
            ),
        }
    }

    /// `get_default_volume_type(context)`: the project's default type, else
    /// `default_volume_type` (API-21.5).
    fn default_type(&self, stage: ApiStage, rule: u8) -> R<(&'a VolumeType, TypeSource)> {
        let project = &self.req.project_id;
        let project_default = match self.facts.project_default_types.get(project) {
            Some(t) => t.as_deref(),
            None => {
                return Err(Stop::Need(vec![Need::ProjectDefaultVolumeType { project_id: project.clone() }]));
            }
        };
        match project_default {
            Some(id) => match self.lookup_type(id, TypeKey::Id)? {
                Some(t) => Ok((t, TypeSource::ProjectDefault)),
                None => {
                    fail(stage, rule, ErrorClass::VolumeTypeNotFound, format!("Volume type {id} could not be found."))
                }
            },
            None => Ok((self.configured_default_type(stage, rule)?, TypeSource::ConfiguredDefault)),
        }
    }

    /// The snapshot's volume, loaded with the user's context.
    fn snapshot_volume(&self, snap: &Snapshot, stage: ApiStage, rule: u8) -> R<&'a Volume> {
        match self.volume(&snap.volume_id)? {
            Some(v) if v.project_id == self.req.project_id => Ok(v),
            _ => {
                fail(stage, rule, ErrorClass::VolumeNotFound, format!("Volume {} could not be found.", snap.volume_id))
            }
        }
    }

    /// API-13.
    fn known_zones(&self) -> R<BTreeSet<String>> {
        Ok(known_availability_zones(self.services()?, &self.config.storage_availability_zone))
    }

    // -- API-2: the REST controller ---------------------------------------

    fn references(&mut self) -> R<Refs<'a>> {
        let stage = ApiStage::References;
        let req = self.req;
        let snapshot = match req.snapshot_ref() {
            Some(id) => match self.snapshot(id)? {
                // Non-admin lookups only see the project's rows.
                Some(s) if s.project_id == req.project_id => Some(s),
                _ => return fail(stage, 2, ErrorClass::SnapshotNotFound, format!("Snapshot {id} could not be found.")),
            },
            None => None,
        };
        let source = match req.source_ref() {
            Some(id) => match self.volume(id)? {
                Some(v) if v.project_id == req.project_id => Some(v),
                _ => return fail(stage, 2, ErrorClass::VolumeNotFound, format!("Volume {id} could not be found.")),
            },
            None => None,
        };
        let volume_type = match req.requested_type() {
            Some(t) => Some(self.type_by_name_or_id(t, stage, 2)?),
            None => None,
        };
        if let Some(s) = snapshot {
            self.note(stage, 2, ApiVerdict::SnapshotFound { snapshot_id: s.id.clone() });
        }
        if let Some(v) = source {
            self.note(stage, 2, ApiVerdict::SourceVolumeFound { volume_id: v.id.clone() });
        }
        Ok(Refs { snapshot, source, volume_type, group: req.group.as_ref(), backup: req.backup.as_ref() })
    }

    // -- API-9 to API-14: API.create before the flow ----------------------

    fn pre_flow(&mut self, refs: &Refs<'a>) -> R<()> {
        let stage = ApiStage::PreFlow;
        let size = &self.req.size;
        // API-9: a truthy size must be int-like and positive.
        if size.is_truthy() {
            let valid = match size.is_int_like() {
                Ok(true) => size.py_int().map(|i| i.is_positive()),
                Ok(false) => Ok(false),
                Err(e) => Err(e),
            };
            match valid {
                Err(e) => return py_fail(stage, 9, e),
                Ok(false) => {
                    return invalid_input(
                        stage,
                        9,
                        format!(
                            "Invalid volume size provided for create request: {} (size argument must be an integer \
                             (or string representation of an integer) and greater than zero).",
                            size.py_str()
                        ),
                    )
                }
                Ok(true) => {}
            }
        }
        // API-10: provision_filter_on_size, with the configured default type
        // when none is requested, and int(size) unconditionally.
        let vtype = match refs.volume_type {
            Some(t) => t,
            None => self.configured_default_type(stage, 10)?,
        };
        let size_int = match size.py_int() {
            Ok(i) => i,
            Err(e) => return py_fail(stage, 10, e),
        };
        for (key, is_min) in [(MIN_SIZE_KEY, true), (MAX_SIZE_KEY, false)] {
            let Some(limit_text) = vtype.extra_specs.get(key).filter(|v| !v.is_empty()) else { continue };
            let Some(limit) = parse_py_int(limit_text) else {
                return py_fail(
                    stage,
                    10,
                    PyError::ValueError(format!("invalid literal for int() with base 10: {limit_text:?}")),
                );
            };
            if is_min && size_int < limit {
                return invalid_input(
                    stage,
                    10,
                    format!(
                        "Specified volume size of '{size_int}' is less than the minimum required size of \
                         '{limit_text}' for volume type '{}'.",
                        vtype.name
                    ),
                );
            }
            if !is_min && size_int > limit {
                return invalid_input(
                    stage,
                    10,
                    format!(
                        "Specified volume size of '{size_int}' is greater than the maximum allowable size of \
                         '{limit_text}' for volume type '{}'.",
                        vtype.name
                    ),
                );
            }
        }
        // API-11: a group needs a requested type it supports.
        if let Some(group) = refs.group {
            let Some(vt) = refs.volume_type else {
                return invalid_input(stage, 11, "volume_type must be provided when creating a volume in a group.");
            };
            if group.volume_type_ids.as_ref().is_some_and(|ids| !ids.contains(&vt.id)) {
                return invalid_input(
                    stage,
                    11,
                    format!(
                        "Invalid volume_type provided: {} (requested type must be supported by this group).",
                        vt.name
                    ),
                );
            }
        }
        // API-12: another type than the source's only if a retype could be.
        if let (Some(src), Some(vt)) = (refs.source, refs.volume_type) {
            let src_type = self.type_of_volume(src, stage, 12)?;
            if vt.id != src_type.id && !self.retype_possible(src_type, vt)? {
                return invalid_input(
                    stage,
                    12,
                    format!(
                        "Invalid volume_type provided: {} (requested type is not compatible; either match source \
                         volume, or omit type argument).",
                        vt.id
                    ),
                );
            }
        }
        if let (Some(snap), Some(vt)) = (refs.snapshot, refs.volume_type) {
            let snap_volume = self.snapshot_volume(snap, stage, 12)?;
            let snap_type = self.type_of_volume(snap_volume, stage, 12)?;
            if vt.id != snap_type.id && !self.retype_possible(snap_type, vt)? {
                return invalid_input(
                    stage,
                    12,
                    format!(
                        "Invalid volume_type provided: {} (requested type is not compatible; recommend omitting the \
                         type argument).",
                        vt.id
                    ),
                );
            }
        }
        // API-13, then API-14; the flow gets the zones only after both.
        let known = self.known_zones()?;
        self.check_metadata()?;
        self.known = Some(known);
        Ok(())
    }

    /// `API._retype_is_possible` (API-12): never across encryptions; yes if
    /// exactly one `cinder-volume` service is *disabled* (the query passes
    /// `disabled=True`); else only with the same `volume_backend_name`.
    fn retype_possible(&self, source: &VolumeType, target: &VolumeType) -> R<bool> {
        if source.encryption != target.encryption {
            return Ok(false);
        }
        let disabled = self.services()?.iter().filter(|s| s.topic == VOLUME_TOPIC && s.disabled).count();
        if disabled == 1 {
            return Ok(true);
        }
        // volume_utils.matching_backend_name
        Ok(matches!((backend_name(source), backend_name(target)), (Some(a), Some(b)) if a == b))
    }

    /// `utils.check_metadata_properties` (API-14), keys in request order.
    fn check_metadata(&self) -> R<()> {
        let stage = ApiStage::PreFlow;
        for (k, v) in self.req.metadata.iter().flatten() {
            if k.is_empty() {
                return fail(
                    stage,
                    14,
                    ErrorClass::InvalidVolumeMetadata,
                    format!(
                        "Invalid metadata: Invalid input received: Metadata key: {k} has 0 characters, less than 1."
                    ),
                );
            }
            if k.chars().count() > 255 {
                return fail(
                    stage,
                    14,
                    ErrorClass::InvalidVolumeMetadataSize,
                    format!("Invalid metadata size: Metadata property key {k} greater than 255 characters."),
                );
            }
            if v.chars().count() > 255 {
                return fail(
                    stage,
                    14,
                    ErrorClass::InvalidVolumeMetadataSize,
                    format!("Invalid metadata size: Metadata property key {k} value greater than 255 characters."),
                );
            }
        }
        Ok(())
    }
}

/// A type's non-empty `volume_backend_name` extra spec.
fn backend_name(t: &VolumeType) -> Option<&String> {
    t.extra_specs.get("volume_backend_name").filter(|n| !n.is_empty())
}

impl<'a> Run<'a> {
    // -- API-15 to API-26: ExtractVolumeRequestTask -----------------------

    fn extract(&mut self, refs: &Refs<'a>) -> R<ExtractedRequest> {
        let stage = ApiStage::Extract;
        let req = self.req;
        // API-15: at most one source (an empty image id counts: not None).
        let given = [refs.snapshot.is_some(), req.image_id.is_some(), refs.source.is_some(), refs.backup.is_some()];
        if given.iter().filter(|g| **g).count() > 1 {
            return invalid_input(stage, 15, "May specify only one of backup, imageRef, snapshot, source volume");
        }
        // API-17: the sources' statuses.
        if let Some(s) = refs.snapshot {
            if s.status != "available" {
                return fail(
                    stage,
                    17,
                    ErrorClass::InvalidSnapshot,
                    "Invalid snapshot: Originating snapshot status must be one of 'available' values",
                );
            }
        }
        if let Some(v) = refs.source {
            if !matches!(v.status.as_str(), "available" | "in-use") {
                return fail(
                    stage,
                    17,
                    ErrorClass::InvalidVolume,
                    "Invalid volume: Originating source volume status must be one of 'available, in-use' values",
                );
            }
        }
        if let Some(b) = refs.backup {
            if b.status != "available" {
                return fail(
                    stage,
                    17,
                    ErrorClass::InvalidBackup,
                    "Invalid backup: Originating backup status must be one of 'available' values",
                );
            }
        }
        // API-18.
        let (size, size_from) = self.extract_size(refs)?;
        self.note(stage, 18, ApiVerdict::Size { size: size.clone(), from: size_from });
        // API-19.
        if let Some(g) = refs.group {
            if !matches!(g.status.as_str(), "available" | "creating") {
                return fail(
                    stage,
                    19,
                    ErrorClass::InvalidGroup,
                    "Invalid group: Originating group status must be one of 'available, creating' values",
                );
            }
        }
        // API-20.
        let image = match &req.image_id {
            Some(id) => {
                let image = self.image_meta(id, &size)?;
                self.note(stage, 20, ApiVerdict::ImageAccepted { image_id: id.clone() });
                Some(image)
            }
            None => None,
        };
        // API-21.
        let image_type = image.and_then(image_volume_type);
        let (vtype, type_from) = self.extraction_type(refs, image_type)?;
        let type_ref = TypeRef { id: vtype.id.clone(), name: vtype.name.clone() };
        self.note(stage, 21, ApiVerdict::VolumeType { volume_type: type_ref, from: type_from });
        // API-22.
        let snapshot_zone = match refs.snapshot {
            Some(s) => Some(SourceZone {
                id: s.id.as_str().to_owned(),
                zone: self.snapshot_volume(s, stage, 22)?.availability_zone.clone(),
            }),
            None => None,
        };
        let zone_request = ZoneRequest {
            known: self.known_zones()?,
            volume_type: vtype.name.clone(),
            type_zones: vtype.extra_specs.get(TYPE_ZONES_KEY).cloned(),
            requested: req.availability_zone.clone(),
            group: refs.group.map(|g| GroupZone { group_id: g.id.clone(), zone: g.availability_zone.clone() }),
            snapshot: snapshot_zone,
            source_volume: refs
                .source
                .map(|v| SourceZone { id: v.id.as_str().to_owned(), zone: v.availability_zone.clone() }),
            ..ZoneRequest::new(BTreeSet::new(), None, self.config)
        };
        let explanation = decide_zone(&zone_request);
        let zones = explanation.zones();
        let refresh_az = explanation.refresh_az();
        let error = explanation.error().zip(explanation.message());
        self.zone = Some(explanation);
        if let Some((error, message)) = error {
            return fail(stage, 22, error, message);
        }
        let availability_zones = zones.unwrap_or_default();
        let fell_back = self.zone.as_ref().is_some_and(|z| z.fallback.is_some());
        self.note(stage, 22, ApiVerdict::Zones { zones: availability_zones.clone(), fell_back });
        // API-23: a key for an encrypted type, made before API-24 looks at
        // multiattach.
        let encryption_key = match &vtype.encryption {
            Some(enc) => {
                let key = self.key_source(refs, image, enc)?;
                self.note(stage, 23, ApiVerdict::Encrypted { key: key.clone() });
                Some(key)
            }
            None => None,
        };
        // API-24: the type is read again by id; multiattach only for exactly
        // "<is> True".
        let vtype = self.lookup_type(&vtype.id, TypeKey::Row)?.unwrap_or(vtype);
        let multiattach = vtype.extra_specs.get("multiattach").map(String::as_str) == Some("<is> True");
        if multiattach {
            self.note(stage, 24, ApiVerdict::Multiattach);
        }
        if multiattach && encryption_key.is_some() {
            return fail(
                stage,
                24,
                ErrorClass::InvalidVolume,
                "Invalid volume: Multiattach cannot be used with encrypted volumes.",
            );
        }
        // API-25: without QoS specs the extra specs are dropped, so the
        // replication status is "disabled".
        let qos_specs: Option<Vec<(String, String)>> = (!vtype.qos_specs.is_empty())
            .then(|| vtype.qos_specs.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        let replicated = qos_specs.is_some()
            && !vtype.extra_specs.is_empty()
            && is_boolean_str(vtype.extra_specs.get("replication_enabled").map(String::as_str));
        Ok(ExtractedRequest {
            size,
            snapshot_id: refs.snapshot.map(|s| s.id.clone()),
            source_volid: refs.source.map(|v| v.id.clone()),
            backup_id: refs.backup.map(|b| b.id.clone()),
            group_id: refs.group.map(|g| g.id.clone()),
            volume_type: TypeRef { id: vtype.id.clone(), name: vtype.name.clone() },
            availability_zones,
            refresh_az,
            encryption_key,
            multiattach,
            qos_specs,
            replication_status: if replicated { ReplicationStatus::Enabled } else { ReplicationStatus::Disabled },
        })
    }

    /// `_extract_size` (API-18): fill a falsy size from the source, then
    /// `utils.as_int`, then the checks.
    fn extract_size(&self, refs: &Refs<'a>) -> R<(PyInt, SizeSource)> {
        let stage = ApiStage::Extract;
        let raw = &self.req.size;
        let (filled, from) = if raw.is_truthy() {
            (raw.clone(), SizeSource::Requested)
        } else if let Some(v) = refs.source {
            (RequestedSize::Int(PyInt::from(v.size.0)), SizeSource::SourceVolume)
        } else if let Some(s) = refs.snapshot {
            (RequestedSize::Int(PyInt::from(s.volume_size.0)), SizeSource::Snapshot)
        } else if let Some(b) = refs.backup {
            (RequestedSize::Int(PyInt::from(b.size)), SizeSource::Backup)
        } else {
            (raw.clone(), SizeSource::Requested)
        };
        let size = match filled.as_int() {
            Err(e) => return py_fail(stage, 18, e),
            Ok(AsInt::Int(i)) if i.is_positive() => i,
            Ok(other) => {
                let shown = match other {
                    AsInt::Int(i) => i.to_string(),
                    AsInt::Unchanged(v) => v.py_str(),
                };
                return invalid_input(
                    stage,
                    18,
                    format!("Volume size '{shown}' must be an integer and greater than 0"),
                );
            }
        };
        if let Some(v) = refs.source {
            if size < PyInt::from(v.size.0) {
                return invalid_input(
                    stage,
                    18,
                    format!(
                        "Volume size '{size}'GB cannot be smaller than original volume size  {}GB. They must be >= \
                         original volume size.",
                        v.size.0
                    ),
                );
            }
        } else if let Some(s) = refs.snapshot {
            if size < PyInt::from(s.volume_size.0) {
                return invalid_input(
                    stage,
                    18,
                    format!(
                        "Volume size '{size}'GB cannot be smaller than the snapshot size {}GB. They must be >= \
                         original snapshot size.",
                        s.volume_size.0
                    ),
                );
            }
        } else if let Some(b) = refs.backup {
            if size < PyInt::from(b.size) {
                return invalid_input(
                    stage,
                    18,
                    format!(
                        "Volume size {size}GB cannot be smaller than the backup size {}GB. It must be >= backup size.",
                        b.size
                    ),
                );
            }
        }
        Ok((size, from))
    }

    /// `_get_image_metadata` and `volume_utils.check_image_metadata`
    /// (API-20).
    fn image_meta(&self, id: &ImageId, size: &PyInt) -> R<&'a Image> {
        let stage = ApiStage::Extract;
        let image = match self.image(id)? {
            Ok(image) => image,
            Err(BackendErrorKind::NotFound) => {
                return fail(stage, 20, ErrorClass::ImageNotFound, format!("Image {id} could not be found."))
            }
            Err(BackendErrorKind::PermissionDenied) => {
                return fail(stage, 20, ErrorClass::ImageNotAuthorized, format!("Not authorized for image {id}."))
            }
            Err(BackendErrorKind::Rejected) => return fail(stage, 20, ErrorClass::Invalid, "Unacceptable parameters."),
            Err(other) => return Err(Stop::Inconsistent(format!("image {id}: Glance answered {other:?}"))),
        };
        if image.status != "active" {
            return invalid_input(stage, 20, format!("Image {id} is not active."));
        }
        let Some(bytes) = image.size else {
            return fail(stage, 20, ErrorClass::TypeError, "Can not translate None to integer.");
        };
        let gib = u128::from(GIB);
        let image_gb = u128::from(bytes.0).div_ceil(gib);
        if PyInt::from(image_gb as i128) > *size {
            return invalid_input(
                stage,
                20,
                format!("Size of specified image {image_gb}GB is larger than volume size {size}GB."),
            );
        }
        if *size < PyInt::from(image.min_disk.0) {
            return invalid_input(
                stage,
                20,
                format!("Volume size {size}GB cannot be smaller than the image minDisk size {}GB.", image.min_disk.0),
            );
        }
        if let Some(virtual_size) = image.virtual_size.filter(|v| v.0 != 0) {
            // image_utils.check_virtual_size divides as floats.
            let virtual_gb = (virtual_size.0 as f64 / GIB as f64).ceil();
            if PyInt::from(virtual_gb as i128) > *size {
                return fail(
                    stage,
                    20,
                    ErrorClass::ImageUnacceptable,
                    format!(
                        "Image {id} is unacceptable: Image virtual size is {virtual_gb}GB and doesn't fit in a volume \
                         of size {size}GB."
                    ),
                );
            }
        }
        Ok(image)
    }

    /// `_get_volume_type` (API-21): requested, source volume's, snapshot's,
    /// the image's `cinder_img_volume_type`, the default.
    fn extraction_type(&self, refs: &Refs<'a>, image_type: Option<ImageType>) -> R<(&'a VolumeType, TypeSource)> {
        let stage = ApiStage::Extract;
        if let Some(t) = refs.volume_type {
            return Ok((t, TypeSource::Requested));
        }
        if let Some(v) = refs.source {
            return Ok((self.type_of_volume(v, stage, 21)?, TypeSource::SourceVolume));
        }
        if let Some(s) = refs.snapshot {
            let v = self.snapshot_volume(s, stage, 21)?;
            return Ok((self.type_of_volume(v, stage, 21)?, TypeSource::Snapshot));
        }
        match image_type {
            Some(ImageType::Name(name)) => Ok((self.type_by_name_or_id(&name, stage, 21)?, TypeSource::ImageProperty)),
            Some(ImageType::Other(shown)) => fail(
                stage,
                21,
                ErrorClass::VolumeTypeNotFoundByName,
                format!("Volume type with name {shown} could not be found."),
            ),
            None => self.default_type(stage, 21),
        }
    }

    /// `_get_encryption_key_id` (API-23): clone the source's key, else make
    /// one for the type's cipher.
    fn key_source(&self, refs: &Refs<'a>, image: Option<&'a Image>, enc: &Encryption) -> R<KeySource> {
        let existing = if let Some(s) = refs.snapshot {
            s.encryption_key_id.clone().map(|key_id| KeySource::Snapshot { key_id })
        } else if let Some(v) = refs.source {
            v.encryption_key_id.clone().map(|key_id| KeySource::SourceVolume { key_id })
        } else if let Some(img) = image {
            match img.properties.get("cinder_encryption_key_id") {
                None | Some(Value::Null) => None,
                Some(Value::String(k)) => Some(KeySource::Image { key_id: k.clone() }),
                Some(other) => Some(KeySource::Image { key_id: other.to_string() }),
            }
        } else {
            None
        };
        if let Some(k) = existing {
            return Ok(k);
        }
        match enc.cipher.as_deref().filter(|c| !c.is_empty()) {
            Some(cipher) => Ok(KeySource::New {
                algorithm: cipher.split('-').next().unwrap_or_default().to_owned(),
                length: enc.key_size,
            }),
            None => fail(ApiStage::Extract, 23, ErrorClass::InvalidVolumeType, "Invalid encryption spec"),
        }
    }

    // -- API-28: EntryCreateTask ------------------------------------------

    fn entry(&self, refs: &Refs<'a>, extracted: &ExtractedRequest) -> R<NewVolume> {
        let bootable = match (refs.source, refs.snapshot) {
            (Some(v), _) => v.bootable,
            (None, Some(s)) => self.snapshot_volume(s, ApiStage::EntryCreate, 28)?.bootable,
            (None, None) => false,
        };
        let zones = &extracted.availability_zones;
        Ok(NewVolume {
            availability_zone: if zones.len() == 1 { zones.first().cloned() } else { None },
            size: extracted.size.clone(),
            status: VolumeStatus::Creating,
            volume_type: extracted.volume_type.name.clone(),
            bootable,
            multiattach: extracted.multiattach,
            encrypted: extracted.encrypted(),
        })
    }
}

/// The image's `cinder_img_volume_type` when truthy (API-21.4). A number is
/// looked up by name as SQL compares it with the text column (`5` finds the
/// type named `"5"`, `true` the one named `"1"`).
fn image_volume_type(image: &Image) -> Option<ImageType> {
    match image.properties.get("cinder_img_volume_type")? {
        Value::Null | Value::Bool(false) => None,
        Value::Bool(true) => Some(ImageType::Name("1".into())),
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(ImageType::Name(s.clone())),
        Value::Number(n) if n.as_f64() == Some(0.0) => None,
        Value::Number(n) => Some(ImageType::Name(n.to_string())),
        Value::Array(a) if a.is_empty() => None,
        Value::Object(o) if o.is_empty() => None,
        other => Some(ImageType::Other(other.to_string())),
    }
}
