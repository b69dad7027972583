//! Properties of the API-side availability-zone algorithm (API-13, API-22)
//! and of the request extraction (`cinder_flow::planner::plan_api`).

mod common;

use common::cases;

use std::collections::BTreeSet;

use proptest::prelude::*;

use cinder_flow::config::Config;
use cinder_flow::facts::{Fact, Facts, Need, ProjectUsage};
use cinder_flow::internals::{parse_py_int, py_strip};
use cinder_flow::model::{Service, VolumeType, DEFAULT_VOLUME_TYPE};
use cinder_flow::plan::ErrorClass;
use cinder_flow::planner::{
    decide_zone, known_availability_zones, parse_type_availability_zones, plan_api, ApiKind, ApiRequest, ApiResult,
    FallbackSource, GroupZone, Planning, PyInt, RequestedSize, SourceZone, UnpinnedReason, ZoneDecision, ZoneRejection,
    ZoneRequest, ZoneSource,
};

/// `z`, made unknown (zones are generated without `-`): built rather than
/// filtered, so that 10,000 cases never run out of accepted inputs.
fn unknown(z: String, known: &BTreeSet<String>) -> String {
    let mut z = z;
    while known.contains(&z) {
        z.push('-');
    }
    z
}

fn zone() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["nova", "az1", "az2", "AZ1", "nova3", "ag1"]).prop_map(str::to_owned),
        "[a-z0-9]{1,4}",
    ]
}

fn service() -> impl Strategy<Value = Service> {
    (zone(), prop::sample::select(vec!["cinder-volume", "cinder-volume", "cinder-scheduler"]), any::<bool>(), 0u8..4)
        .prop_map(|(zone, topic, disabled, host)| Service {
            host: format!("host{host}@ceph"),
            binary: topic.to_owned(),
            topic: topic.to_owned(),
            availability_zone: zone,
            disabled,
        })
}

fn services() -> impl Strategy<Value = Vec<Service>> {
    prop::collection::vec(service(), 0..6)
}

/// A type spec made of zones, spaces and commas.
fn type_spec() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![zone(), Just(String::new()), Just(" ".to_owned()), zone().prop_map(|z| format!(" {z} "))],
        0..4,
    )
    .prop_map(|items| items.join(","))
}

fn config(default_az: Option<String>, storage: String, fallback: bool, same_az: bool) -> Config {
    Config {
        default_availability_zone: default_az,
        storage_availability_zone: storage,
        allow_availability_zone_fallback: fallback,
        cloned_volume_same_az: same_az,
        ..Config::default()
    }
}

#[derive(Debug, Clone)]
struct Situation {
    services: Vec<Service>,
    storage: String,
    default_az: Option<String>,
    fallback: bool,
    same_az: bool,
    type_zones: Option<String>,
    requested: Option<String>,
    group: Option<Option<String>>,
    snapshot_zone: Option<String>,
    source_zone: Option<String>,
}

fn situation() -> impl Strategy<Value = Situation> {
    (
        services(),
        prop_oneof![4 => zone(), 1 => Just(String::new())],
        prop::option::of(prop_oneof![zone(), Just(String::new())]),
        any::<(bool, bool)>(),
        prop::option::of(type_spec()),
        prop::option::of(prop_oneof![zone(), Just(String::new())]),
        prop::option::of(prop::option::of(zone())),
        prop::option::of(zone()),
        prop::option::of(zone()),
    )
        .prop_map(
            |(services, storage, default_az, (fallback, same_az), type_zones, requested, group, snap, src)| Situation {
                services,
                storage,
                default_az,
                fallback,
                same_az,
                type_zones,
                requested,
                group,
                snapshot_zone: snap,
                source_zone: src,
            },
        )
}

fn zone_request(s: &Situation, services: &[Service]) -> ZoneRequest {
    let cfg = config(s.default_az.clone(), s.storage.clone(), s.fallback, s.same_az);
    let known = known_availability_zones(services, &cfg.storage_availability_zone);
    let mut r = ZoneRequest::new(known, s.requested.clone(), &cfg);
    r.type_zones = s.type_zones.clone();
    r.group = s.group.clone().map(|zone| GroupZone { group_id: "g".into(), zone });
    r.snapshot = s.snapshot_zone.clone().map(|zone| SourceZone { id: "s".into(), zone });
    r.source_volume = s.source_zone.clone().map(|zone| SourceZone { id: "v".into(), zone });
    r
}

/// An independent reading of `extract_availability_zones_from_volume_type`:
/// a character loop instead of split/filter/strip.
fn reference_parse(spec: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    for c in spec.chars().chain(std::iter::once(',')) {
        if c == ',' {
            if !current.is_empty() {
                let trimmed: String = {
                    let chars: Vec<char> = current.chars().collect();
                    let ws = |c: &char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(c);
                    let start = chars.iter().position(|c| !ws(c));
                    let end = chars.iter().rposition(|c| !ws(c));
                    match (start, end) {
                        (Some(a), Some(b)) => chars[a..=b].iter().collect(),
                        _ => String::new(),
                    }
                };
                items.push(trimmed);
            }
            current.clear();
        } else {
            current.push(c);
        }
    }
    items
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), ..ProptestConfig::default() })]

    /// API-13: the known zones do not depend on the order of the service
    /// rows, and always include a non-empty storage zone.
    #[test]
    fn known_zones_ignore_service_order(
        (services, shuffled) in services().prop_flat_map(|s| (Just(s.clone()), Just(s).prop_shuffle())),
        storage in zone(),
    ) {
        let a = known_availability_zones(&services, &storage);
        let b = known_availability_zones(&shuffled, &storage);
        prop_assert_eq!(&a, &b);
        prop_assert!(a.contains(&storage));
        for z in &a {
            prop_assert!(z == &storage || services.iter().any(|s| s.topic == "cinder-volume" && &s.availability_zone == z));
        }
    }

    /// API-22: the decision is a function of its inputs: the same inputs,
    /// with the services in any order, give the same explanation.
    #[test]
    fn zone_decision_is_deterministic_and_order_independent(
        (s, shuffled) in situation().prop_flat_map(|s| { let v = s.services.clone(); (Just(s), Just(v).prop_shuffle()) })
    ) {
        let a = decide_zone(&zone_request(&s, &s.services));
        let b = decide_zone(&zone_request(&s, &s.services));
        let c = decide_zone(&zone_request(&s, &shuffled));
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(&a, &c);
        // The outputs agree with each other.
        prop_assert_eq!(a.zones().is_none(), a.error().is_some());
        if let Some(zones) = a.zones() {
            let sorted: BTreeSet<&String> = zones.iter().collect();
            prop_assert_eq!(sorted.len(), zones.len());
        }
    }

    /// A requested zone that Cinder knows is kept (no type restriction, no
    /// group, no source in another zone).
    #[test]
    fn a_known_requested_zone_is_kept(s in situation(), pick in any::<prop::sample::Index>()) {
        let known: Vec<String> = known_availability_zones(&s.services, &s.storage).into_iter().filter(|z| !z.is_empty()).collect();
        prop_assume!(!known.is_empty());
        let z = known[pick.index(known.len())].clone();
        let s = Situation { type_zones: None, group: None, requested: Some(z.clone()), snapshot_zone: None, source_zone: None, ..s };
        let e = decide_zone(&zone_request(&s, &s.services));
        prop_assert!(!e.refresh_az());
        prop_assert_eq!(e.decision, ZoneDecision::Pinned { zone: z });
        prop_assert!(e.fallback.is_none());
    }

    /// Without fallback, a requested zone Cinder does not know is always
    /// rejected with InvalidAvailabilityZone (and refresh_az).
    #[test]
    fn an_unknown_zone_is_rejected_without_fallback(s in situation(), z in zone()) {
        let known = known_availability_zones(&s.services, &s.storage);
        let z = unknown(z, &known);
        let s = Situation { type_zones: None, group: None, requested: Some(z.clone()), fallback: false, ..s };
        let e = decide_zone(&zone_request(&s, &s.services));
        prop_assert_eq!(e.decision.clone(), ZoneDecision::Rejected { zone: z, because: ZoneRejection::Unknown });
        prop_assert_eq!(e.error(), Some(ErrorClass::InvalidAvailabilityZone));
        prop_assert!(e.refresh_az());
    }

    /// With fallback, an unknown zone is replaced by exactly
    /// default_availability_zone, or storage_availability_zone when no
    /// default is set, and the replacement is not validated again.
    #[test]
    fn the_fallback_is_exactly_the_default_or_the_storage_zone(s in situation(), z in zone()) {
        // A storage zone is always configured here (its default is "nova").
        let storage = if s.storage.is_empty() { "nova".to_owned() } else { s.storage.clone() };
        let known = known_availability_zones(&s.services, &storage);
        let z = unknown(z, &known);
        let s = Situation {
            storage,
            type_zones: None, group: None, requested: Some(z.clone()), fallback: true,
            snapshot_zone: None, source_zone: None, ..s
        };
        let e = decide_zone(&zone_request(&s, &s.services));
        let (expected, from) = match s.default_az.clone().filter(|d| !d.is_empty()) {
            Some(d) => (d, FallbackSource::DefaultAvailabilityZone),
            None => (s.storage.clone(), FallbackSource::StorageAvailabilityZone),
        };
        prop_assert_eq!(e.decision.clone(), ZoneDecision::Pinned { zone: expected.clone() });
        let fb = e.fallback.clone().expect("a fallback");
        prop_assert_eq!(fb.from, from);
        prop_assert_eq!(fb.rejected, z);
        prop_assert_eq!(fb.replacement_valid, known.contains(&expected));
        prop_assert!(e.refresh_az());
    }

    /// A type that restricts zones, with no zone requested or inherited,
    /// never gets a default zone: the result is the type's usable zones, or
    /// InvalidTypeAvailabilityZones when there are none.
    #[test]
    fn type_zones_without_a_request_never_apply_a_default(s in situation(), spec in type_spec()) {
        let s = Situation { type_zones: Some(spec.clone()), requested: None, group: None, snapshot_zone: None, source_zone: None, ..s };
        let e = decide_zone(&zone_request(&s, &s.services));
        prop_assert!(e.candidate.is_none());
        prop_assert!(e.fallback.is_none());
        let known = known_availability_zones(&s.services, &s.storage);
        let usable: BTreeSet<String> = parse_type_availability_zones(&spec).into_iter().filter(|z| known.contains(z)).collect();
        if usable.is_empty() {
            prop_assert_eq!(e.decision, ZoneDecision::TypeZonesUnusable);
        } else {
            prop_assert_eq!(e.decision, ZoneDecision::Unpinned {
                zones: usable.into_iter().collect(),
                reason: UnpinnedReason::TypeRestricted,
            });
        }
    }

    /// A group's zone, even none, replaces the requested one.
    #[test]
    fn a_group_zone_replaces_the_request(s in situation(), g in prop::option::of(zone())) {
        let s = Situation { group: Some(g.clone()), ..s };
        let e = decide_zone(&zone_request(&s, &s.services));
        if let (Some(z), Some(c)) = (&g, &e.candidate) {
            prop_assert_eq!(&c.zone, z);
            let from_group = matches!(c.source, ZoneSource::Group { .. });
            prop_assert!(from_group);
        }
        if let Some(c) = &e.candidate {
            prop_assert!(c.source != ZoneSource::Requested);
        }
    }

    /// `RESKEY:availability_zones` parsing: split on commas, drop the items
    /// that are empty before stripping, strip the others.
    #[test]
    fn type_spec_parsing_matches_the_split_strip_rules(spec in "[ ,a-z\t\u{1f}]{0,12}") {
        let parsed = parse_type_availability_zones(&spec);
        prop_assert_eq!(&parsed, &reference_parse(&spec));
        prop_assert_eq!(parsed.len(), spec.split(',').filter(|i| !i.is_empty()).count());
        for item in &parsed {
            prop_assert_eq!(py_strip(item), item.as_str());
            prop_assert!(!item.contains(','));
        }
    }

    /// Python `int()` of the decimal text of any integer, with underscores
    /// between digits and surrounding spaces, gives that integer back.
    #[test]
    fn py_int_reads_decimal_text(v in any::<i128>(), underscores in prop::collection::vec(any::<bool>(), 40)) {
        let text = v.to_string();
        let mut with = String::from("  ");
        let chars: Vec<char> = text.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            with.push(*c);
            let next_is_digit = chars.get(i + 1).is_some_and(char::is_ascii_digit);
            if c.is_ascii_digit() && next_is_digit && underscores[i % underscores.len()] {
                with.push('_');
            }
        }
        with.push('\t');
        prop_assert_eq!(parse_py_int(&with), Some(PyInt::from(v)));
        prop_assert_eq!(PyInt::from(v).to_i128(), Some(v));
    }
}

// ---------------------------------------------------------------------------
// plan_api on arbitrary sizes
// ---------------------------------------------------------------------------

fn answer(need: &Need, services: &[Service]) -> Fact {
    match need {
        Need::Services => Fact::Services { services: services.to_vec() },
        Need::VolumeType { name } => Fact::VolumeType {
            name: name.clone(),
            volume_type: (name == DEFAULT_VOLUME_TYPE || name == "type-default")
                .then(|| VolumeType::plain("type-default", DEFAULT_VOLUME_TYPE)),
        },
        Need::ProjectDefaultVolumeType { project_id } => {
            Fact::ProjectDefaultVolumeType { project_id: project_id.clone(), volume_type_id: None }
        }
        Need::ProjectUsage { project_id } => {
            Fact::ProjectUsage { project_id: project_id.clone(), usage: ProjectUsage::default() }
        }
        other => panic!("unexpected need {other:?}"),
    }
}

fn decide(request: &ApiRequest, kind: ApiKind, services: &[Service]) -> (ApiResult, Facts) {
    let config = Config::default();
    let mut facts = Facts::new();
    for _ in 0..20 {
        match plan_api(request, kind, &facts, &config).expect("plans") {
            Planning::Done(r) => return (*r, facts),
            Planning::NeedFacts(needs) => {
                for n in &needs {
                    facts.learn(answer(n, services));
                }
            }
        }
    }
    panic!("no decision")
}

fn size() -> impl Strategy<Value = RequestedSize> {
    prop_oneof![
        Just(RequestedSize::Null),
        any::<bool>().prop_map(RequestedSize::Bool),
        any::<i64>().prop_map(RequestedSize::from),
        any::<f64>().prop_map(RequestedSize::Float),
        "[ +\\-0-9._eEinfa]{0,8}".prop_map(RequestedSize::Str),
        any::<String>().prop_map(RequestedSize::Str),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), ..ProptestConfig::default() })]

    /// Any size decides without panicking, deterministically; an accepted
    /// size is a positive integer, and the only failures are the ones
    /// upstream raises for sizes.
    #[test]
    fn any_size_is_decided(size in size(), create in any::<bool>(), services in services()) {
        let mut request = ApiRequest::new("project-1", "user-1");
        request.size = size;
        let kind = if create { ApiKind::Create } else { ApiKind::ExtractOnly };
        let (result, facts) = decide(&request, kind, &services);
        let again = plan_api(&request, kind, &facts, &Config::default()).expect("plans");
        prop_assert_eq!(again, Planning::Done(Box::new(result.clone())));
        match result.error() {
            None => prop_assert!(result.extracted().expect("extracted").size.is_positive()),
            Some(e) => prop_assert!(
                matches!(
                    e,
                    ErrorClass::InvalidInput
                        | ErrorClass::TypeError
                        | ErrorClass::ValueError
                        | ErrorClass::OverflowError
                        | ErrorClass::VolumeSizeExceedsAvailableQuota
                        | ErrorClass::QuotaUsageOverflow
                ),
                "{:?}",
                e
            ),
        }
        if let Some(v) = result.volume() {
            prop_assert!(create);
            prop_assert!(v.size <= PyInt::from(1000));
        }
    }
}
