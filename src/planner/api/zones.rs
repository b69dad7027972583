//! Availability zones (API-13, API-22): the zones Cinder knows, a type's
//! restriction, the candidate zone and its source, the fallback, and the
//! decision explained in types and in words (field note 003: a Nova zone
//! Cinder does not know).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::ErrorClass;
use crate::escape::Escaped;
use crate::model::Service;
use crate::pyvalue::py_strip;

/// The extra spec that restricts a type to zones (API-22.1).
pub(crate) const TYPE_ZONES_KEY: &str = "RESKEY:availability_zones";

/// The topic of the services whose zones count (`constants.VOLUME_TOPIC`).
pub(crate) const VOLUME_TOPIC: &str = "cinder-volume";

/// The zones Cinder knows (API-13, `API.list_availability_zones` plus
/// `storage_availability_zone`): the zone of every `cinder-volume` service
/// (by topic; enabled or not, up or down) and `storage_availability_zone`
/// when it is not empty. Zone names are case-sensitive.
pub fn known_availability_zones<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    storage_availability_zone: &str,
) -> BTreeSet<String> {
    let mut zones: BTreeSet<String> =
        services.into_iter().filter(|s| s.topic == VOLUME_TOPIC).map(|s| s.availability_zone.clone()).collect();
    if !storage_availability_zone.is_empty() {
        zones.insert(storage_availability_zone.to_owned());
    }
    zones
}

/// `volume_utils.extract_availability_zones_from_volume_type` once the key
/// is present (API-22.1): split on `,`, drop the items that are empty
/// *before* stripping, strip the rest. So `"nova3,,,"` gives `[nova3]`,
/// `",,"` and `""` give `[]`, `" "` gives `[""]`, `"a, ,b"` gives
/// `[a, "", b]`.
pub fn parse_type_availability_zones(spec: &str) -> Vec<String> {
    spec.split(',').filter(|item| !item.is_empty()).map(|item| py_strip(item).to_owned()).collect()
}

/// The group's zone, which replaces the requested one (API-22.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupZone {
    /// The group.
    pub group_id: String,
    /// Its zone (`None` replaces the request by none).
    pub zone: Option<String>,
}

/// A source's zone (API-22.4, API-22.7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceZone {
    /// The snapshot or source volume.
    pub id: String,
    /// The zone of the volume (for a snapshot, of its volume).
    pub zone: String,
}

/// Everything `_extract_availability_zones` reads (API-22).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneRequest {
    /// The zones Cinder knows (API-13).
    pub known: BTreeSet<String>,
    /// The volume type's name (for the explanation).
    pub volume_type: String,
    /// The type's `RESKEY:availability_zones`, if it has the key.
    pub type_zones: Option<String>,
    /// The requested zone.
    pub requested: Option<String>,
    /// The group, if any.
    pub group: Option<GroupZone>,
    /// The snapshot, if any, with its volume's zone.
    pub snapshot: Option<SourceZone>,
    /// The source volume, if any, with its zone.
    pub source_volume: Option<SourceZone>,
    /// `default_availability_zone`.
    pub default_availability_zone: Option<String>,
    /// `storage_availability_zone`.
    pub storage_availability_zone: String,
    /// `allow_availability_zone_fallback`.
    pub allow_availability_zone_fallback: bool,
    /// `cloned_volume_same_az`.
    pub cloned_volume_same_az: bool,
}

impl ZoneRequest {
    /// A request for `requested` among `known`, with the zone options of
    /// `config` and no type restriction, group or source.
    pub fn new(known: BTreeSet<String>, requested: Option<String>, config: &Config) -> Self {
        Self {
            known,
            volume_type: crate::model::DEFAULT_VOLUME_TYPE.to_owned(),
            type_zones: None,
            requested,
            group: None,
            snapshot: None,
            source_volume: None,
            default_availability_zone: config.default_availability_zone.clone(),
            storage_availability_zone: config.storage_availability_zone.clone(),
            allow_availability_zone_fallback: config.allow_availability_zone_fallback,
            cloned_volume_same_az: config.cloned_volume_same_az,
        }
    }
}

/// The type's zone restriction (API-22.1, API-22.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeZones {
    /// The type.
    pub volume_type: String,
    /// `RESKEY:availability_zones` as set.
    pub spec: String,
    /// The zones it lists (API-22.1).
    pub listed: Vec<String>,
    /// Those Cinder knows (`safe_azs`), sorted.
    pub usable: Vec<String>,
}

/// Which rule produced the zone candidate (API-22.3 to API-22.5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ZoneSource {
    /// The request named it.
    Requested,
    /// The group's zone (API-22.3).
    Group {
        /// The group.
        group_id: String,
    },
    /// The snapshot's volume's zone (API-22.4).
    Snapshot {
        /// The snapshot.
        snapshot_id: String,
    },
    /// The source volume's zone (API-22.4).
    SourceVolume {
        /// The source volume.
        volume_id: String,
    },
    /// `default_availability_zone` (API-22.5).
    DefaultAvailabilityZone,
    /// `storage_availability_zone` (API-22.5).
    StorageAvailabilityZone,
}

impl fmt::Display for ZoneSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let f = &mut crate::escape::Escaper::new(f);
        match self {
            Self::Requested => f.write_str("requested"),
            Self::Group { group_id } => write!(f, "the zone of group {group_id}"),
            Self::Snapshot { snapshot_id } => write!(f, "the zone of the volume of snapshot {snapshot_id}"),
            Self::SourceVolume { volume_id } => write!(f, "the zone of source volume {volume_id}"),
            Self::DefaultAvailabilityZone => f.write_str("default_availability_zone"),
            Self::StorageAvailabilityZone => f.write_str("storage_availability_zone"),
        }
    }
}

/// The zone under consideration and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneCandidate {
    /// The zone (possibly empty).
    pub zone: String,
    /// Which rule gave it.
    pub source: ZoneSource,
}

/// Why a zone was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ZoneRejection {
    /// No `cinder-volume` service is in it and it is not
    /// `storage_availability_zone` (API-22.6). A Nova zone is not a Cinder
    /// zone unless a volume service runs in it.
    Unknown,
    /// Cinder knows it, but the volume type lists other zones (API-22.6).
    NotAllowedByType {
        /// The type's usable zones.
        allowed: Vec<String>,
    },
    /// `cloned_volume_same_az`: the snapshot's volume is elsewhere
    /// (API-22.7).
    DiffersFromSnapshot {
        /// The zone of the snapshot's volume.
        snapshot_zone: String,
    },
    /// `cloned_volume_same_az`: the source volume is elsewhere (API-22.7).
    DiffersFromSourceVolume {
        /// The source volume's zone.
        source_zone: String,
    },
}

/// Which option the fallback zone came from (API-22.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackSource {
    /// `default_availability_zone`.
    DefaultAvailabilityZone,
    /// `storage_availability_zone` (no default set).
    StorageAvailabilityZone,
}

/// `allow_availability_zone_fallback` replaced an invalid zone (API-22.6).
/// Upstream does not check the replacement: it may be a zone Cinder does not
/// know, or one the type does not allow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneFallback {
    /// The zone replaced.
    pub rejected: String,
    /// Why.
    pub because: ZoneRejection,
    /// The replacement.
    pub zone: String,
    /// Where it came from.
    pub from: FallbackSource,
    /// Whether the replacement is one Cinder knows and the type allows
    /// (informative: upstream does not check).
    pub replacement_valid: bool,
}

/// Why no single zone was chosen (API-22.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnpinnedReason {
    /// No zone was requested or inherited and the type restricts zones, so
    /// no default was applied (API-22.5).
    TypeRestricted,
    /// The zone was the empty string (requested, inherited, or an empty
    /// `storage_availability_zone`), which counts as no zone.
    EmptyZone,
}

/// The outcome of the zone extraction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum ZoneDecision {
    /// The volume goes to this zone.
    Pinned {
        /// The zone.
        zone: String,
    },
    /// The scheduler chooses among these (the type's usable zones, or every
    /// known zone); the volume row gets a zone only if there is one.
    Unpinned {
        /// The zones, sorted.
        zones: Vec<String>,
        /// Why.
        reason: UnpinnedReason,
    },
    /// The zone is refused (`InvalidAvailabilityZone`, or `InvalidInput` for
    /// the same-zone rule).
    Rejected {
        /// The zone.
        zone: String,
        /// Why.
        because: ZoneRejection,
    },
    /// None of the type's zones is known (`InvalidTypeAvailabilityZones`).
    TypeZonesUnusable,
}

/// The availability-zone decision, explained (API-22).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneExplanation {
    /// The zones Cinder knows, sorted (API-13).
    pub known: Vec<String>,
    /// `storage_availability_zone`.
    pub storage_availability_zone: String,
    /// The type's restriction, if it sets one.
    pub type_zones: Option<TypeZones>,
    /// The zone the request named.
    pub requested: Option<String>,
    /// The group, whose zone (even none) replaces the requested one.
    pub group: Option<GroupZone>,
    /// The zone considered after API-22.3 to API-22.5 (`None`: none).
    pub candidate: Option<ZoneCandidate>,
    /// The fallback, if one happened.
    pub fallback: Option<ZoneFallback>,
    /// The outcome.
    pub decision: ZoneDecision,
}

impl ZoneExplanation {
    /// The `availability_zones` output, sorted; `None` when rejected.
    pub fn zones(&self) -> Option<Vec<String>> {
        match &self.decision {
            ZoneDecision::Pinned { zone } => Some(vec![zone.clone()]),
            ZoneDecision::Unpinned { zones, .. } => Some(zones.clone()),
            _ => None,
        }
    }

    /// `refresh_az`: the zone was not among the valid ones (API-22.6).
    pub fn refresh_az(&self) -> bool {
        self.fallback.is_some()
            || matches!(
                &self.decision,
                ZoneDecision::Rejected { because: ZoneRejection::Unknown | ZoneRejection::NotAllowedByType { .. }, .. }
            )
    }

    /// The exception raised, if any.
    pub fn error(&self) -> Option<ErrorClass> {
        match &self.decision {
            ZoneDecision::Rejected {
                because: ZoneRejection::Unknown | ZoneRejection::NotAllowedByType { .. }, ..
            } => Some(ErrorClass::InvalidAvailabilityZone),
            ZoneDecision::Rejected { .. } => Some(ErrorClass::InvalidInput),
            ZoneDecision::TypeZonesUnusable => Some(ErrorClass::InvalidTypeAvailabilityZones),
            _ => None,
        }
    }

    /// Upstream's exception message, if any.
    pub fn message(&self) -> Option<String> {
        Some(match &self.decision {
            ZoneDecision::Rejected {
                zone,
                because: ZoneRejection::Unknown | ZoneRejection::NotAllowedByType { .. },
            } => {
                format!("Availability zone '{zone}' is invalid.")
            }
            ZoneDecision::Rejected { because: ZoneRejection::DiffersFromSnapshot { .. }, .. } => {
                "Invalid input received: Volume must be in the same availability zone as the snapshot".into()
            }
            ZoneDecision::Rejected { because: ZoneRejection::DiffersFromSourceVolume { .. }, .. } => {
                "Invalid input received: Volume must be in the same availability zone as the source volume".into()
            }
            ZoneDecision::TypeZonesUnusable => {
                let listed = self.type_zones.as_ref().map(|t| t.listed.clone()).unwrap_or_default();
                format!("Volume type is only supported in these availability zones: {listed:?}")
            }
            _ => return None,
        })
    }

    fn known_words(&self) -> String {
        let storage = if self.storage_availability_zone.is_empty() {
            "storage_availability_zone is empty".to_owned()
        } else {
            format!("storage_availability_zone is {:?}", self.storage_availability_zone)
        };
        format!("{:?} (the zones of the cinder-volume services; {storage})", self.known)
    }
}

fn rejection_words(zone: &str, because: &ZoneRejection, e: &ZoneExplanation) -> String {
    match because {
        ZoneRejection::Unknown => format!(
            "zone {zone:?} is not one Cinder knows; known zones are {}. A zone of another service (such as a Nova \
             availability zone) is not a Cinder zone unless a cinder-volume service runs in it",
            e.known_words()
        ),
        ZoneRejection::NotAllowedByType { allowed } => {
            let t = Escaped(e.type_zones.as_ref().map(|t| t.volume_type.as_str()).unwrap_or("?"));
            format!("zone {zone:?} is not allowed by volume type {t}, which is usable only in {allowed:?}")
        }
        ZoneRejection::DiffersFromSnapshot { snapshot_zone } => format!(
            "zone {zone:?} differs from the zone {snapshot_zone:?} of the snapshot's volume, and \
             cloned_volume_same_az is true"
        ),
        ZoneRejection::DiffersFromSourceVolume { source_zone } => format!(
            "zone {zone:?} differs from the zone {source_zone:?} of the source volume, and cloned_volume_same_az \
             is true"
        ),
    }
}

impl fmt::Display for ZoneExplanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "known availability zones: {} (API-13)", self.known_words())?;
        if let Some(t) = &self.type_zones {
            writeln!(
                f,
                "volume type {} restricts zones: {} = {:?} lists {:?}, of which Cinder knows {:?} (API-22.1/2)",
                Escaped(&t.volume_type),
                TYPE_ZONES_KEY,
                t.spec,
                t.listed,
                t.usable
            )?;
        }
        if let Some(g) = &self.group {
            match (&g.zone, &self.requested) {
                (Some(z), Some(r)) => {
                    let g = Escaped(&g.group_id);
                    writeln!(f, "group {g} is in zone {z:?}, which replaces the requested {r:?} (API-22.3)")?
                }
                (None, Some(r)) => writeln!(
                    f,
                    "group {} has no zone, which replaces the requested {r:?} by none (API-22.3)",
                    Escaped(&g.group_id)
                )?,
                _ => {}
            }
        }
        match &self.candidate {
            Some(c) if c.source == ZoneSource::Requested => writeln!(f, "zone {:?} was requested", c.zone)?,
            Some(c) => writeln!(f, "zone {:?} comes from {} (API-22.3/4/5)", c.zone, c.source)?,
            None if self.type_zones.is_some() => writeln!(
                f,
                "no zone was requested or inherited; the type restricts zones, so no default zone applies (API-22.5)"
            )?,
            None => writeln!(f, "no zone was requested or inherited")?,
        }
        if let Some(fb) = &self.fallback {
            let option = match fb.from {
                FallbackSource::DefaultAvailabilityZone => "default_availability_zone",
                FallbackSource::StorageAvailabilityZone => {
                    "storage_availability_zone (default_availability_zone is unset)"
                }
            };
            writeln!(
                f,
                "{}; allow_availability_zone_fallback is true, so {option} {:?} is used instead and refresh_az is set \
                 (API-22.6). Upstream does not validate the fallback zone again{}",
                rejection_words(&fb.rejected, &fb.because, self),
                fb.zone,
                if fb.replacement_valid { "; here it is a valid zone" } else { ": here it is NOT a valid zone" }
            )?;
        }
        match &self.decision {
            ZoneDecision::Pinned { zone } => write!(f, "decision: the volume goes to zone {zone:?} (API-22.8)"),
            ZoneDecision::Unpinned { zones, .. } if zones.len() == 1 => write!(
                f,
                "decision: zone {:?}, the only usable one, is left to the scheduler and set on the row (API-22.8, \
                 API-28)",
                zones[0]
            ),
            ZoneDecision::Unpinned { zones, reason } => {
                let why = match reason {
                    UnpinnedReason::TypeRestricted => "the type's usable zones",
                    UnpinnedReason::EmptyZone => "the zone is empty, which counts as none: every usable zone",
                };
                write!(f, "decision: no single zone; the scheduler chooses among {zones:?} ({why}; API-22.8)")
            }
            ZoneDecision::Rejected { zone, because } => {
                let rule = match because {
                    ZoneRejection::Unknown | ZoneRejection::NotAllowedByType { .. } => {
                        "; allow_availability_zone_fallback is false, so the request fails (API-22.6)"
                    }
                    _ => " (API-22.7)",
                };
                write!(
                    f,
                    "decision: rejected: {}{rule} -> {}",
                    rejection_words(zone, because, self),
                    self.error().map(ErrorClass::name).unwrap_or("?")
                )
            }
            ZoneDecision::TypeZonesUnusable => write!(
                f,
                "decision: rejected: none of the zones the type lists is known (API-22.2) -> InvalidTypeAvailabilityZones"
            ),
        }
    }
}

/// `ExtractVolumeRequestTask._extract_availability_zones` (API-22), step
/// by step.
pub fn decide_zone(r: &ZoneRequest) -> ZoneExplanation {
    let known: Vec<String> = r.known.iter().cloned().collect();
    let mut e = ZoneExplanation {
        known: known.clone(),
        storage_availability_zone: r.storage_availability_zone.clone(),
        type_zones: None,
        requested: r.requested.clone(),
        group: r.group.clone(),
        candidate: None,
        fallback: None,
        decision: ZoneDecision::TypeZonesUnusable,
    };
    // 1-2: the type's zones, intersected with the known ones.
    let safe: Vec<String> = match &r.type_zones {
        Some(spec) => {
            let listed = parse_type_availability_zones(spec);
            let usable: BTreeSet<String> = listed.iter().filter(|z| r.known.contains(*z)).cloned().collect();
            let usable: Vec<String> = usable.into_iter().collect();
            e.type_zones = Some(TypeZones {
                volume_type: r.volume_type.clone(),
                spec: spec.clone(),
                listed,
                usable: usable.clone(),
            });
            if usable.is_empty() {
                return e;
            }
            usable
        }
        None => known,
    };
    // 3: a group's zone replaces the request, even when it has none.
    let mut candidate: Option<ZoneCandidate> =
        r.requested.clone().map(|zone| ZoneCandidate { zone, source: ZoneSource::Requested });
    if let Some(g) = &r.group {
        candidate = g
            .zone
            .clone()
            .map(|zone| ZoneCandidate { zone, source: ZoneSource::Group { group_id: g.group_id.clone() } });
    }
    // 4: inherit from the snapshot's volume, then the source volume.
    if candidate.is_none() {
        if let Some(s) = &r.snapshot {
            candidate = Some(ZoneCandidate {
                zone: s.zone.clone(),
                source: ZoneSource::Snapshot { snapshot_id: s.id.clone() },
            });
        }
        if let Some(s) = &r.source_volume {
            candidate = Some(ZoneCandidate {
                zone: s.zone.clone(),
                source: ZoneSource::SourceVolume { volume_id: s.id.clone() },
            });
        }
    }
    // 5: the default, only without a type restriction.
    let default_az = r.default_availability_zone.clone().filter(|z| !z.is_empty());
    if candidate.is_none() && r.type_zones.is_none() {
        candidate = Some(match &default_az {
            Some(z) => ZoneCandidate { zone: z.clone(), source: ZoneSource::DefaultAvailabilityZone },
            None => {
                ZoneCandidate { zone: r.storage_availability_zone.clone(), source: ZoneSource::StorageAvailabilityZone }
            }
        });
    }
    e.candidate = candidate.clone();
    let mut zone: Option<String> = candidate.map(|c| c.zone);
    // 6: validity, and the fallback, which is not validated again.
    if let Some(z) = zone.clone().filter(|z| !z.is_empty()) {
        if !safe.contains(&z) {
            let because = if r.type_zones.is_some() && r.known.contains(&z) {
                ZoneRejection::NotAllowedByType { allowed: safe.clone() }
            } else {
                ZoneRejection::Unknown
            };
            if !r.allow_availability_zone_fallback {
                e.decision = ZoneDecision::Rejected { zone: z, because };
                return e;
            }
            let (fallback, from) = match &default_az {
                Some(d) => (d.clone(), FallbackSource::DefaultAvailabilityZone),
                None => (r.storage_availability_zone.clone(), FallbackSource::StorageAvailabilityZone),
            };
            e.fallback = Some(ZoneFallback {
                rejected: z,
                because,
                replacement_valid: safe.contains(&fallback),
                zone: fallback.clone(),
                from,
            });
            zone = Some(fallback);
        }
    }
    // 7: clones and volumes from snapshots stay in their source's zone.
    if let Some(z) = zone.clone().filter(|z| !z.is_empty()) {
        if r.cloned_volume_same_az {
            if let Some(s) = r.snapshot.as_ref().filter(|s| !s.zone.is_empty() && s.zone != z) {
                e.decision = ZoneDecision::Rejected {
                    zone: z,
                    because: ZoneRejection::DiffersFromSnapshot { snapshot_zone: s.zone.clone() },
                };
                return e;
            }
            if let Some(s) = r.source_volume.as_ref().filter(|s| !s.zone.is_empty() && s.zone != z) {
                e.decision = ZoneDecision::Rejected {
                    zone: z,
                    because: ZoneRejection::DiffersFromSourceVolume { source_zone: s.zone.clone() },
                };
                return e;
            }
        }
    }
    // 8: one zone, or the usable ones.
    e.decision = match zone {
        Some(z) if !z.is_empty() => ZoneDecision::Pinned { zone: z },
        Some(_) => ZoneDecision::Unpinned { zones: safe, reason: UnpinnedReason::EmptyZone },
        None => ZoneDecision::Unpinned { zones: safe, reason: UnpinnedReason::TypeRestricted },
    };
    e
}
