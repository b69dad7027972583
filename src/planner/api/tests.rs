use std::collections::BTreeMap;

use super::*;
use crate::facts::Fact;
use crate::facts::ProjectUsage;
use crate::model::{Bytes, GiB};

/// A small database and Glance answering the planner's needs.
#[derive(Default)]
struct World {
    services: Vec<Service>,
    volumes: Vec<Volume>,
    snapshots: Vec<Snapshot>,
    types: Vec<VolumeType>,
    images: Vec<Image>,
    project_default: Option<String>,
    usage: ProjectUsage,
    config: Config,
}

fn service(host: &str, zone: &str) -> Service {
    Service {
        host: host.into(),
        binary: VOLUME_TOPIC.into(),
        topic: VOLUME_TOPIC.into(),
        availability_zone: zone.into(),
        disabled: false,
    }
}

fn volume(id: &str, size: u64, zone: &str) -> Volume {
    let mut v = Volume::new(id, "project-1", GiB(size));
    v.availability_zone = zone.into();
    v
}

fn snapshot(id: &str, volume_id: &str, size: u64) -> Snapshot {
    Snapshot {
        id: id.into(),
        volume_id: volume_id.into(),
        volume_size: GiB(size),
        status: "available".into(),
        project_id: "project-1".into(),
        encryption_key_id: None,
    }
}

fn vtype(name: &str) -> VolumeType {
    VolumeType::plain(format!("type-{name}"), name)
}

fn luks() -> Encryption {
    Encryption {
        provider: "luks".into(),
        cipher: Some("aes-xts-plain64".into()),
        key_size: Some(256),
        control_location: "front-end".into(),
    }
}

fn image(id: &str, size: u64) -> Image {
    Image::raw(id, "project-1", Bytes(size))
}

impl World {
    /// Two services (nova, az1) and the default type.
    fn new() -> Self {
        Self {
            services: vec![service("hostA@ceph", "nova"), service("hostB@ceph", "az1")],
            types: vec![VolumeType::plain("type-default", crate::model::DEFAULT_VOLUME_TYPE)],
            ..Self::default()
        }
    }

    fn answer(&self, need: &Need) -> Fact {
        match need {
            Need::Services => Fact::Services { services: self.services.clone() },
            Need::Volume { volume_id } => Fact::Volume {
                volume_id: volume_id.clone(),
                volume: self.volumes.iter().find(|v| &v.id == volume_id).cloned().map(std::sync::Arc::new),
            },
            Need::Snapshot { snapshot_id } => Fact::Snapshot {
                snapshot_id: snapshot_id.clone(),
                snapshot: self.snapshots.iter().find(|s| &s.id == snapshot_id).cloned(),
            },
            // As the in-memory database: by name, then by id.
            Need::VolumeType { name } => Fact::VolumeType {
                name: name.clone(),
                volume_type: self
                    .types
                    .iter()
                    .find(|t| &t.name == name)
                    .or_else(|| self.types.iter().find(|t| &t.id == name))
                    .cloned(),
            },
            Need::Image { image_id } => Fact::Image {
                image_id: image_id.clone(),
                image: self
                    .images
                    .iter()
                    .find(|i| &i.id == image_id)
                    .cloned()
                    .map(std::sync::Arc::new)
                    .ok_or(BackendErrorKind::NotFound),
            },
            Need::ProjectDefaultVolumeType { project_id } => Fact::ProjectDefaultVolumeType {
                project_id: project_id.clone(),
                volume_type_id: self.project_default.clone(),
            },
            Need::ProjectUsage { project_id } => {
                Fact::ProjectUsage { project_id: project_id.clone(), usage: self.usage }
            }
            other => panic!("unexpected need {other:?}"),
        }
    }

    fn run(&self, req: &ApiRequest, kind: ApiKind) -> ApiResult {
        let mut facts = Facts::new();
        for _ in 0..20 {
            match plan_api(req, kind, &facts, &self.config).expect("plans") {
                Planning::Done(r) => return *r,
                Planning::NeedFacts(needs) => {
                    assert!(!needs.is_empty());
                    for n in &needs {
                        facts.learn(self.answer(n));
                    }
                }
            }
        }
        panic!("no decision after 20 rounds")
    }

    fn create(&self, req: &ApiRequest) -> ApiResult {
        self.run(req, ApiKind::Create)
    }

    fn extract(&self, req: &ApiRequest) -> ApiResult {
        self.run(req, ApiKind::ExtractOnly)
    }
}

fn req(size: impl Into<RequestedSize>) -> ApiRequest {
    let mut r = ApiRequest::new("project-1", "user-1");
    r.size = size.into();
    r
}

fn err(r: &ApiResult) -> Option<&'static str> {
    r.error().map(ErrorClass::name)
}

fn failure(r: &ApiResult) -> &ApiFailure {
    match &r.outcome {
        ApiOutcome::Failed { failure, .. } => failure,
        ApiOutcome::Accepted { .. } => panic!("accepted: {r:?}"),
    }
}

fn ok(r: &ApiResult) -> &ExtractedRequest {
    match &r.outcome {
        ApiOutcome::Accepted { request, .. } => request,
        ApiOutcome::Failed { failure, .. } => panic!("failed: {failure}"),
    }
}

// -- Python semantics ---------------------------------------------------

#[test]
fn py_int_parses_like_python_int() {
    let p = |s: &str| parse_py_int(s).map(|i| i.to_string());
    assert_eq!(p(" 3 "), Some("3".into()));
    assert_eq!(p("+3"), Some("3".into()));
    assert_eq!(p("-0"), Some("0".into()));
    assert_eq!(p("007"), Some("7".into()));
    assert_eq!(p("1_000"), Some("1000".into()));
    assert_eq!(p("1__0"), None);
    assert_eq!(p("_1"), None);
    assert_eq!(p("1_"), None);
    assert_eq!(p("2.5"), None);
    assert_eq!(p(""), None);
    assert_eq!(p("+-1"), None);
    // `int` strips ASCII and Unicode white space, but not U+001C..U+001F.
    assert_eq!(p("\u{1f}4\u{1c}"), None);
    assert_eq!(p("\u{2003}\u{0664}\u{a0}"), Some("4".into()));
    assert_eq!(
        p("123456789012345678901234567890123456789012"),
        Some("123456789012345678901234567890123456789012".into())
    );
}

#[test]
fn py_int_orders_any_size() {
    let big = parse_py_int("1".repeat(60).as_str()).unwrap();
    let neg_big = parse_py_int(&format!("-{}", "9".repeat(60))).unwrap();
    assert!(big > PyInt::from(i128::MAX));
    assert!(neg_big < PyInt::from(i128::MIN));
    assert!(PyInt::from(-3) < PyInt::from(-2));
    assert!(PyInt::from(10) > PyInt::from(9));
    assert_eq!(PyInt::from_f64(1e300).unwrap().to_string().len(), 301);
    assert_eq!(PyInt::from_f64(-2.9).unwrap(), PyInt::from(-2));
    assert!(matches!(PyInt::from_f64(f64::NAN), Err(PyError::ValueError(_))));
    assert!(matches!(PyInt::from_f64(f64::INFINITY), Err(PyError::OverflowError(_))));
}

#[test]
fn is_int_like_is_strutils() {
    assert_eq!(RequestedSize::from("3").is_int_like(), Ok(true));
    assert_eq!(RequestedSize::from("-3").is_int_like(), Ok(true));
    for s in [" 3 ", "+3", "03", "3.0", "1e3", "abc", "-0"] {
        assert_eq!(RequestedSize::from(s).is_int_like(), Ok(false), "{s:?}");
    }
    assert_eq!(RequestedSize::Bool(true).is_int_like(), Ok(false));
    assert_eq!(RequestedSize::Float(2.0).is_int_like(), Ok(false));
    assert_eq!(RequestedSize::Float(f64::NAN).is_int_like(), Ok(false));
    assert!(matches!(RequestedSize::Float(f64::INFINITY).is_int_like(), Err(PyError::OverflowError(_))));
    assert_eq!(RequestedSize::from(5).is_int_like(), Ok(true));
}

#[test]
fn as_int_is_cinder_utils_as_int() {
    let a = |s: RequestedSize| s.as_int();
    assert_eq!(a("2.5".into()), Ok(AsInt::Int(PyInt::from(2))));
    assert_eq!(a("1e3".into()), Ok(AsInt::Int(PyInt::from(1000))));
    assert_eq!(a(" 3 ".into()), Ok(AsInt::Int(PyInt::from(3))));
    assert_eq!(a(RequestedSize::Bool(true)), Ok(AsInt::Int(PyInt::from(1))));
    assert_eq!(a("nan".into()), Ok(AsInt::Unchanged("nan".into())));
    assert_eq!(a("abc".into()), Ok(AsInt::Unchanged("abc".into())));
    assert_eq!(a(RequestedSize::Null), Ok(AsInt::Unchanged(RequestedSize::Null)));
    assert!(matches!(a("inf".into()), Err(PyError::OverflowError(_))));
    assert!(matches!(a("1e400".into()), Err(PyError::OverflowError(_))));
    assert_eq!(a(RequestedSize::Float(-1.5)), Ok(AsInt::Int(PyInt::from(-1))));
}

#[test]
fn uuid_like_follows_oslo() {
    assert!(is_uuid_like("bbbbbbbb-0000-4000-8000-000000000001"));
    assert!(is_uuid_like("{BBBBBBBB00004000800000000000000F}"));
    assert!(is_uuid_like("urn:uuid:bbbbbbbb-0000-4000-8000-000000000001"));
    assert!(!is_uuid_like("gold"));
    assert!(!is_uuid_like("bbbbbbbb-0000-4000-8000-00000000000g"));
}

#[test]
fn boolean_str_needs_is_and_a_true_word() {
    assert!(is_boolean_str(Some("<is> True")));
    assert!(is_boolean_str(Some("  <is>   yes ")));
    assert!(!is_boolean_str(Some("True")));
    assert!(!is_boolean_str(Some("<is> False")));
    assert!(!is_boolean_str(None));
}

// -- API-2 ----------------------------------------------------------------

#[test]
fn api2_references_must_exist_in_the_project() {
    let mut w = World::new();
    let mut other = volume("33333333-3333-4333-8333-333333333333", 2, "az1");
    other.project_id = "project-2".into();
    w.volumes.push(other);
    let mut r = req(2);
    r.source_volid = Some("33333333-3333-4333-8333-333333333333".into());
    let res = w.create(&r);
    assert_eq!(err(&res), Some("VolumeNotFound"));
    assert_eq!(failure(&res).stage, ApiStage::References);
    assert_eq!(res.known_availability_zones, None);

    let mut r = req(2);
    r.snapshot_id = Some("55555555-5555-4555-8555-555555555555".into());
    assert_eq!(err(&w.create(&r)), Some("SnapshotNotFound"));
    // The extraction alone has its zones before the lookups.
    assert_eq!(w.extract(&r).known_availability_zones, Some(vec!["az1".into(), "nova".into()]));
}

#[test]
fn api2_type_lookup_by_name_or_uuid() {
    let mut w = World::new();
    w.types.push(VolumeType::plain("bbbbbbbb-0000-4000-8000-000000000001", "byid"));
    w.types.push(vtype("gold"));
    let mut r = req(1);
    r.volume_type = Some("nosuch".into());
    assert_eq!(err(&w.create(&r)), Some("VolumeTypeNotFoundByName"));
    r.volume_type = Some("bbbbbbbb-0000-4000-8000-00000000000f".into());
    assert_eq!(err(&w.create(&r)), Some("VolumeTypeNotFound"));
    r.volume_type = Some("bbbbbbbb-0000-4000-8000-000000000001".into());
    assert_eq!(ok(&w.create(&r)).volume_type.name, "byid");
    // A non-UUID id is not looked up by id.
    r.volume_type = Some("type-gold".into());
    assert_eq!(err(&w.create(&r)), Some("VolumeTypeNotFoundByName"));
    // An empty type is no type.
    r.volume_type = Some(String::new());
    assert_eq!(ok(&w.create(&r)).volume_type.name, "__DEFAULT__");
}

// -- API-9 / API-10 -----------------------------------------------------

#[test]
fn api9_size_must_be_int_like_and_positive_before_the_flow() {
    let w = World::new();
    for size in [
        RequestedSize::from("1.5"),
        RequestedSize::from(" 3 "),
        RequestedSize::from("+3"),
        RequestedSize::from("0"),
        RequestedSize::from(-1),
        RequestedSize::Bool(true),
        RequestedSize::Float(2.0),
    ] {
        let res = w.create(&req(size.clone()));
        assert_eq!(err(&res), Some("InvalidInput"), "{size:?}");
        assert_eq!(failure(&res).rule, ApiRule(9), "{size:?}");
        assert_eq!(res.known_availability_zones, None);
    }
    let res = w.create(&req(RequestedSize::Float(f64::INFINITY)));
    assert_eq!(err(&res), Some("OverflowError"));
    assert_eq!(ok(&w.create(&req("2"))).size, PyInt::from(2));
}

#[test]
fn api10_int_of_a_falsy_size_raises_before_the_flow() {
    let w = World::new();
    assert_eq!(err(&w.create(&req(RequestedSize::Null))), Some("TypeError"));
    assert_eq!(err(&w.create(&req(""))), Some("ValueError"));
    // int(False) == 0 passes here and fails the extraction instead.
    let res = w.create(&req(RequestedSize::Bool(false)));
    assert_eq!(failure(&res).rule, ApiRule(18));
    assert_eq!(res.known_availability_zones, Some(vec!["az1".into(), "nova".into()]));
}

#[test]
fn api10_provisioning_limits() {
    let mut w = World::new();
    let mut prov = vtype("prov");
    prov.extra_specs.insert(MIN_SIZE_KEY.into(), "2".into());
    prov.extra_specs.insert(MAX_SIZE_KEY.into(), " 5 ".into());
    w.types.push(prov);
    let with = |size: i64| {
        let mut r = req(size);
        r.volume_type = Some("prov".into());
        r
    };
    assert_eq!(err(&w.create(&with(1))), Some("InvalidInput"));
    assert!(w.create(&with(2)).error().is_none());
    assert!(w.create(&with(5)).error().is_none());
    assert_eq!(err(&w.create(&with(6))), Some("InvalidInput"));
    // The extraction alone does not filter.
    assert!(w.extract(&with(6)).error().is_none());
    // The default type's limits apply when none is requested.
    let mut w = World::new();
    w.types[0].extra_specs.insert(MAX_SIZE_KEY.into(), "3".into());
    assert_eq!(err(&w.create(&req(4))), Some("InvalidInput"));
    w.types[0].extra_specs.insert(MAX_SIZE_KEY.into(), "three".into());
    assert_eq!(err(&w.create(&req(4))), Some("ValueError"));
}

#[test]
fn api10_misconfigured_default_type() {
    let mut w = World::new();
    w.config.default_volume_type = "nosuch".into();
    let res = w.create(&req(1));
    assert_eq!(err(&res), Some("VolumeTypeDefaultMisconfiguredError"));
    assert_eq!(res.known_availability_zones, None);
    // Looked up by name only.
    w.config.default_volume_type = "type-default".into();
    assert_eq!(err(&w.create(&req(1))), Some("VolumeTypeDefaultMisconfiguredError"));
}

// -- API-11 / API-12 ----------------------------------------------------

fn group(status: &str, zone: Option<&str>) -> ApiGroup {
    ApiGroup {
        id: "99999999-9999-4999-8999-999999999999".into(),
        status: status.into(),
        availability_zone: zone.map(Into::into),
        volume_type_ids: None,
    }
}

#[test]
fn api11_group_needs_a_supported_type() {
    let mut w = World::new();
    w.types.push(vtype("gold"));
    let mut r = req(1);
    r.group = Some(group("available", Some("az1")));
    assert_eq!(err(&w.create(&r)), Some("InvalidInput"));
    r.volume_type = Some("gold".into());
    assert!(w.create(&r).error().is_none());
    r.group.as_mut().unwrap().volume_type_ids = Some(vec!["type-silver".into()]);
    assert_eq!(failure(&w.create(&r)).rule, ApiRule(11));
}

#[test]
fn api12_retype_from_source_or_snapshot() {
    let mut w = World::new();
    w.types.extend([vtype("gold"), vtype("silver")]);
    let mut src = volume("33333333-3333-4333-8333-333333333333", 2, "az1");
    src.volume_type = "gold".into();
    w.volumes.push(src);
    w.snapshots.push(snapshot("55555555-5555-4555-8555-555555555555", "33333333-3333-4333-8333-333333333333", 2));
    let mut r = req(2);
    r.source_volid = Some("33333333-3333-4333-8333-333333333333".into());
    r.volume_type = Some("silver".into());
    // Two enabled services, no backend name: not possible.
    assert_eq!(failure(&w.create(&r)).rule, ApiRule(12));
    // Exactly one *disabled* service: possible.
    w.services[0].disabled = true;
    assert_eq!(ok(&w.create(&r)).volume_type.name, "silver");
    w.services[0].disabled = false;
    // Same volume_backend_name: possible.
    for t in &mut w.types {
        t.extra_specs.insert("volume_backend_name".into(), "ceph".into());
    }
    assert!(w.create(&r).error().is_none());
    // Never across encryptions.
    w.types.iter_mut().find(|t| t.name == "silver").unwrap().encryption = Some(luks());
    w.services = vec![Service { disabled: true, ..service("hostA@ceph", "az1") }];
    assert_eq!(failure(&w.create(&r)).rule, ApiRule(12));
    // From the snapshot too.
    let mut r = req(2);
    r.snapshot_id = Some("55555555-5555-4555-8555-555555555555".into());
    r.volume_type = Some("silver".into());
    assert_eq!(failure(&w.create(&r)).rule, ApiRule(12));
    // The extraction alone does not check.
    assert!(w.extract(&r).error().is_none());
}

// -- API-13 / API-14 ----------------------------------------------------

#[test]
fn api13_known_zones_are_volume_services_and_the_storage_zone() {
    let mut sched = service("sched", "azs");
    sched.topic = "cinder-scheduler".into();
    let disabled = Service { disabled: true, ..service("hostD@ceph", "azd") };
    let services = [service("hostA@ceph", "az1"), sched, disabled];
    let known = known_availability_zones(&services, "nova");
    assert_eq!(known.into_iter().collect::<Vec<_>>(), ["az1", "azd", "nova"]);
    assert_eq!(known_availability_zones(&services, "").len(), 2);
}

#[test]
fn api14_metadata_checked_in_request_order() {
    let w = World::new();
    let mut r = req(1);
    r.metadata = Some(vec![("k".repeat(256), "v".into()), (String::new(), "v".into())]);
    let res = w.create(&r);
    assert_eq!(err(&res), Some("InvalidVolumeMetadataSize"));
    assert_eq!(res.known_availability_zones, None);
    r.metadata = Some(vec![(String::new(), "v".into()), ("k".repeat(256), "v".into())]);
    assert_eq!(err(&w.create(&r)), Some("InvalidVolumeMetadata"));
    r.metadata = Some(vec![("k".into(), "v".repeat(256))]);
    assert_eq!(err(&w.create(&r)), Some("InvalidVolumeMetadataSize"));
    // Not checked by the extraction.
    assert!(w.extract(&r).error().is_none());
}

// -- API-15 to API-19 ---------------------------------------------------

#[test]
fn api15_one_source_at_most_and_an_empty_image_id_counts() {
    let mut w = World::new();
    w.volumes.push(volume("33333333-3333-4333-8333-333333333333", 2, "az1"));
    let mut r = req(2);
    r.source_volid = Some("33333333-3333-4333-8333-333333333333".into());
    r.image_id = Some("".into());
    let res = w.create(&r);
    assert_eq!(failure(&res).rule, ApiRule(15));
    assert!(failure(&res).message.contains("May specify only one of backup, imageRef, snapshot, source volume"));
    // Alone, the empty image id is looked up, and not found.
    let mut r = req(2);
    r.image_id = Some("".into());
    assert_eq!(err(&w.create(&r)), Some("ImageNotFound"));
}

#[test]
fn api17_source_statuses() {
    let mut w = World::new();
    let mut v = volume("33333333-3333-4333-8333-333333333333", 2, "az1");
    v.status = "in-use".into();
    w.volumes.push(v);
    let mut r = req(2);
    r.source_volid = Some("33333333-3333-4333-8333-333333333333".into());
    assert!(w.create(&r).error().is_none());
    w.volumes[0].status = "error".into();
    assert_eq!(err(&w.create(&r)), Some("InvalidVolume"));
    w.volumes[0].status = "available".into();
    w.snapshots.push(snapshot("55555555-5555-4555-8555-555555555555", "33333333-3333-4333-8333-333333333333", 2));
    w.snapshots[0].status = "creating".into();
    let mut r = req(2);
    r.snapshot_id = Some("55555555-5555-4555-8555-555555555555".into());
    assert_eq!(err(&w.create(&r)), Some("InvalidSnapshot"));
    let mut r = req(2);
    r.backup = Some(ApiBackup { id: "b".into(), status: "error".into(), size: 2 });
    assert_eq!(err(&w.create(&r)), Some("InvalidBackup"));
}

#[test]
fn api18_size_from_sources_and_checks() {
    let mut w = World::new();
    w.volumes.push(volume("33333333-3333-4333-8333-333333333333", 3, "az1"));
    w.snapshots.push(snapshot("55555555-5555-4555-8555-555555555555", "33333333-3333-4333-8333-333333333333", 3));
    let from_source = |size: RequestedSize| {
        let mut r = req(size);
        r.source_volid = Some("33333333-3333-4333-8333-333333333333".into());
        r
    };
    assert_eq!(ok(&w.extract(&from_source(RequestedSize::Null))).size, PyInt::from(3));
    assert_eq!(ok(&w.extract(&from_source(RequestedSize::from(0)))).size, PyInt::from(3));
    assert_eq!(ok(&w.extract(&from_source("3.5".into()))).size, PyInt::from(3));
    assert_eq!(err(&w.extract(&from_source(RequestedSize::from(2)))), Some("InvalidInput"));
    let mut r = req(RequestedSize::Null);
    r.snapshot_id = Some("55555555-5555-4555-8555-555555555555".into());
    assert_eq!(ok(&w.extract(&r)).size, PyInt::from(3));
    let mut r = req(RequestedSize::Null);
    r.backup = Some(ApiBackup { id: "b".into(), status: "available".into(), size: 4 });
    assert_eq!(ok(&w.extract(&r)).size, PyInt::from(4));
    r.size = RequestedSize::from(1);
    assert_eq!(err(&w.extract(&r)), Some("InvalidInput"));
    // Without a source: as_int's conversions.
    assert_eq!(ok(&w.extract(&req("1e3"))).size, PyInt::from(1000));
    assert_eq!(ok(&w.extract(&req(RequestedSize::Bool(true)))).size, PyInt::from(1));
    assert_eq!(err(&w.extract(&req("nan"))), Some("InvalidInput"));
    assert_eq!(err(&w.extract(&req("inf"))), Some("OverflowError"));
    assert_eq!(err(&w.extract(&req(RequestedSize::Null))), Some("InvalidInput"));
    // A size no i128 holds is still a size.
    let huge = "9".repeat(50);
    assert_eq!(ok(&w.extract(&req(huge.as_str()))).size.to_string(), huge);
}

#[test]
fn api19_group_status() {
    let mut w = World::new();
    w.types.push(vtype("gold"));
    let mut r = req(1);
    r.volume_type = Some("gold".into());
    r.group = Some(group("creating", Some("az1")));
    assert!(w.create(&r).error().is_none());
    r.group = Some(group("error", Some("az1")));
    assert_eq!(err(&w.create(&r)), Some("InvalidGroup"));
}

// -- API-20 / API-21 ----------------------------------------------------

#[test]
fn api20_image_checks() {
    let mut w = World::new();
    let id = "aaaaaaaa-0000-4000-8000-000000000001";
    let with_image = |w: &mut World, image: Image, size: i64| {
        w.images = vec![image];
        let mut r = req(size);
        r.image_id = Some(id.into());
        w.create(&r)
    };
    let gib = GIB;
    assert!(with_image(&mut w, image(id, 2 * gib), 2).error().is_none());
    assert_eq!(err(&with_image(&mut w, image(id, 2 * gib + 1), 2)), Some("InvalidInput"));
    let mut i = image(id, gib);
    i.status = "queued".into();
    assert_eq!(err(&with_image(&mut w, i, 2)), Some("InvalidInput"));
    let mut i = image(id, gib);
    i.size = None;
    i.virtual_size = None;
    assert_eq!(err(&with_image(&mut w, i, 2)), Some("TypeError"));
    let mut i = image(id, gib);
    i.min_disk = GiB(3);
    assert_eq!(err(&with_image(&mut w, i, 2)), Some("InvalidInput"));
    let mut i = image(id, gib);
    i.virtual_size = Some(Bytes(2 * gib + 1));
    assert_eq!(err(&with_image(&mut w, i, 2)), Some("ImageUnacceptable"));
    let mut i = image(id, gib);
    i.virtual_size = Some(Bytes(0));
    assert!(with_image(&mut w, i, 1).error().is_none());
    // Glance's refusals.
    let mut facts = Facts::new();
    let mut r = req(1);
    r.image_id = Some(id.into());
    for n in [Need::Services, Need::VolumeType { name: "__DEFAULT__".into() }] {
        facts.learn(w.answer(&n));
    }
    facts.learn(Fact::Image { image_id: id.into(), image: Err(BackendErrorKind::PermissionDenied) });
    let done = |facts: &Facts| match plan_api(&r, ApiKind::ExtractOnly, facts, &w.config).unwrap() {
        Planning::Done(res) => res,
        Planning::NeedFacts(n) => panic!("{n:?}"),
    };
    assert_eq!(err(&done(&facts)), Some("ImageNotAuthorized"));
    facts.learn(Fact::Image { image_id: id.into(), image: Err(BackendErrorKind::Unavailable) });
    assert!(matches!(plan_api(&r, ApiKind::ExtractOnly, &facts, &w.config), Err(PlanError::InconsistentFacts(_))));
}

#[test]
fn api21_type_precedence() {
    let mut w = World::new();
    w.types.extend([vtype("gold"), vtype("silver"), VolumeType::plain("bbbbbbbb-0000-4000-8000-000000000001", "byid")]);
    let id = "aaaaaaaa-0000-4000-8000-000000000001";
    let mut img = image(id, GIB);
    img.properties.insert("cinder_img_volume_type".into(), Value::String("gold".into()));
    w.images.push(img);
    let mut r = req(1);
    r.image_id = Some(id.into());
    assert_eq!(ok(&w.create(&r)).volume_type.name, "gold");
    r.volume_type = Some("silver".into());
    assert_eq!(ok(&w.create(&r)).volume_type.name, "silver");
    r.volume_type = None;
    for (value, expect) in [
        (Value::String("".into()), Some("__DEFAULT__")),
        (Value::Null, Some("__DEFAULT__")),
        (Value::String("bbbbbbbb-0000-4000-8000-000000000001".into()), Some("byid")),
        (Value::String("nosuch".into()), None),
        (serde_json::json!(5), None),
        (serde_json::json!([1]), None),
    ] {
        w.images[0].properties.insert("cinder_img_volume_type".into(), value.clone());
        let res = w.create(&r);
        match expect {
            Some(name) => assert_eq!(ok(&res).volume_type.name, name, "{value}"),
            None => assert_eq!(err(&res), Some("VolumeTypeNotFoundByName"), "{value}"),
        }
    }
    // The source volume's type beats the default; the project's default
    // beats default_volume_type.
    let mut w = World::new();
    w.types.extend([vtype("gold"), vtype("silver")]);
    w.project_default = Some("type-silver".into());
    assert_eq!(ok(&w.create(&req(1))).volume_type.name, "silver");
    let mut src = volume("33333333-3333-4333-8333-333333333333", 1, "az1");
    src.volume_type = "gold".into();
    w.volumes.push(src);
    let mut r = req(1);
    r.source_volid = Some("33333333-3333-4333-8333-333333333333".into());
    assert_eq!(ok(&w.create(&r)).volume_type.name, "gold");
    w.project_default = Some("type-missing".into());
    assert_eq!(err(&w.create(&req(1))), Some("VolumeTypeNotFound"));
}

// -- API-22 -------------------------------------------------------------

fn zones(known: &[&str]) -> BTreeSet<String> {
    known.iter().map(|s| s.to_string()).collect()
}

fn zreq(known: &[&str], requested: Option<&str>) -> ZoneRequest {
    ZoneRequest::new(zones(known), requested.map(Into::into), &Config::default())
}

#[test]
fn api22_type_spec_parsing() {
    let p = parse_type_availability_zones;
    assert_eq!(p("nova3,,,"), ["nova3"]);
    assert!(p(",,").is_empty());
    assert!(p("").is_empty());
    assert_eq!(p(" "), [""]);
    assert_eq!(p("a, ,b"), ["a", "", "b"]);
    assert_eq!(p("az1 , nova"), ["az1", "nova"]);
}

#[test]
fn api22_requested_default_storage() {
    let e = decide_zone(&zreq(&["az1", "nova"], Some("az1")));
    assert_eq!(e.decision, ZoneDecision::Pinned { zone: "az1".into() });
    let e = decide_zone(&zreq(&["az1", "nova"], None));
    assert_eq!(e.candidate.unwrap().source, ZoneSource::StorageAvailabilityZone);
    let mut r = zreq(&["az1", "nova"], None);
    r.default_availability_zone = Some("az1".into());
    let e = decide_zone(&r);
    assert_eq!(e.candidate.unwrap().source, ZoneSource::DefaultAvailabilityZone);
    // An unknown default is rejected like a requested zone.
    r.default_availability_zone = Some("az9".into());
    assert_eq!(decide_zone(&r).error(), Some(ErrorClass::InvalidAvailabilityZone));
    // Case matters.
    assert_eq!(decide_zone(&zreq(&["nova"], Some("NOVA"))).error(), Some(ErrorClass::InvalidAvailabilityZone));
    // An empty zone is no zone: every known zone, no refresh.
    let e = decide_zone(&zreq(&["az1", "nova"], Some("")));
    assert_eq!(e.zones(), Some(vec!["az1".into(), "nova".into()]));
    assert!(!e.refresh_az());
    let mut r = zreq(&["az1", "nova"], None);
    r.storage_availability_zone = String::new();
    r.known = zones(&["az1", "nova"]);
    assert!(matches!(decide_zone(&r).decision, ZoneDecision::Unpinned { reason: UnpinnedReason::EmptyZone, .. }));
}

#[test]
fn api22_fallback_is_not_validated_again() {
    let mut r = zreq(&["az1", "nova"], Some("az-x"));
    r.allow_availability_zone_fallback = true;
    let e = decide_zone(&r);
    assert_eq!(e.decision, ZoneDecision::Pinned { zone: "nova".into() });
    assert!(e.refresh_az());
    assert_eq!(e.fallback.as_ref().unwrap().from, FallbackSource::StorageAvailabilityZone);
    r.default_availability_zone = Some("az9".into());
    let e = decide_zone(&r);
    assert_eq!(e.decision, ZoneDecision::Pinned { zone: "az9".into() });
    assert!(!e.fallback.as_ref().unwrap().replacement_valid);
    assert!(e.to_string().contains("NOT a valid zone"));
    // Nor against the type's zones.
    let mut r = zreq(&["az1", "nova"], Some("az9"));
    r.allow_availability_zone_fallback = true;
    r.type_zones = Some("az1".into());
    assert_eq!(decide_zone(&r).decision, ZoneDecision::Pinned { zone: "nova".into() });
}

#[test]
fn api22_type_restriction() {
    let mut r = zreq(&["az1", "nova", "nova3"], None);
    r.type_zones = Some("az1,nova".into());
    r.default_availability_zone = Some("nova".into());
    let e = decide_zone(&r);
    assert_eq!(
        e.decision,
        ZoneDecision::Unpinned { zones: vec!["az1".into(), "nova".into()], reason: UnpinnedReason::TypeRestricted }
    );
    r.requested = Some("nova3".into());
    let e = decide_zone(&r);
    assert!(matches!(e.decision, ZoneDecision::Rejected { because: ZoneRejection::NotAllowedByType { .. }, .. }));
    assert!(e.refresh_az());
    r.type_zones = Some(" ".into());
    assert_eq!(decide_zone(&r).error(), Some(ErrorClass::InvalidTypeAvailabilityZones));
    // Checked before the fallback.
    r.allow_availability_zone_fallback = true;
    assert_eq!(decide_zone(&r).error(), Some(ErrorClass::InvalidTypeAvailabilityZones));
}

#[test]
fn api22_group_and_sources() {
    let mut r = zreq(&["az1", "nova"], Some("az1"));
    r.group = Some(GroupZone { group_id: "g".into(), zone: None });
    // The group's missing zone replaces the request: then the default.
    assert_eq!(decide_zone(&r).decision, ZoneDecision::Pinned { zone: "nova".into() });
    r.group = Some(GroupZone { group_id: "g".into(), zone: Some("az9".into()) });
    assert_eq!(decide_zone(&r).error(), Some(ErrorClass::InvalidAvailabilityZone));
    let mut r = zreq(&["az1", "nova"], None);
    r.source_volume = Some(SourceZone { id: "v".into(), zone: "az1".into() });
    assert_eq!(decide_zone(&r).decision, ZoneDecision::Pinned { zone: "az1".into() });
    r.requested = Some("nova".into());
    assert!(matches!(
        decide_zone(&r).decision,
        ZoneDecision::Rejected { because: ZoneRejection::DiffersFromSourceVolume { .. }, .. }
    ));
    assert_eq!(decide_zone(&r).error(), Some(ErrorClass::InvalidInput));
    r.cloned_volume_same_az = false;
    assert_eq!(decide_zone(&r).decision, ZoneDecision::Pinned { zone: "nova".into() });
    // A source in an unknown zone, with fallback: storage zone, then the
    // same-zone rule fails.
    let mut r = zreq(&["az1", "nova"], None);
    r.snapshot = Some(SourceZone { id: "s".into(), zone: "az9".into() });
    r.allow_availability_zone_fallback = true;
    let e = decide_zone(&r);
    assert!(e.fallback.is_some());
    assert!(matches!(e.decision, ZoneDecision::Rejected { because: ZoneRejection::DiffersFromSnapshot { .. }, .. }));
}

#[test]
fn api22_seed_003_a_nova_zone_cinder_does_not_know() {
    let mut w = World::new();
    w.services = vec![service("controller1@ceph", "nova")];
    let mut r = req(1);
    r.availability_zone = Some("ag1".into());
    let res = w.create(&r);
    assert_eq!(err(&res), Some("InvalidAvailabilityZone"));
    let words = res.zone.as_ref().unwrap().to_string();
    assert!(words.contains("\"ag1\" is not one Cinder knows"), "{words}");
    assert!(words.contains("Nova availability zone"), "{words}");
    assert!(words.contains("allow_availability_zone_fallback is false"), "{words}");
    w.config.allow_availability_zone_fallback = true;
    let res = w.create(&r);
    assert_eq!(res.volume().unwrap().availability_zone.as_deref(), Some("nova"));
    assert!(ok(&res).refresh_az);
    assert!(res.zone.as_ref().unwrap().to_string().contains("does not validate the fallback zone"));
}

// -- API-23 to API-25 ---------------------------------------------------

#[test]
fn api23_keys_cloned_or_made() {
    let mut w = World::new();
    let mut t = vtype("luks");
    t.encryption = Some(luks());
    w.types.push(t);
    let mut r = req(1);
    r.volume_type = Some("luks".into());
    assert_eq!(ok(&w.create(&r)).encryption_key, Some(KeySource::New { algorithm: "aes".into(), length: Some(256) }));
    let mut src = volume("33333333-3333-4333-8333-333333333333", 1, "nova");
    src.volume_type = "luks".into();
    src.encryption_key_id = Some("key-1".into());
    w.volumes.push(src);
    let mut r = req(1);
    r.source_volid = Some("33333333-3333-4333-8333-333333333333".into());
    assert_eq!(ok(&w.create(&r)).encryption_key, Some(KeySource::SourceVolume { key_id: "key-1".into() }));
    let id = "aaaaaaaa-0000-4000-8000-000000000001";
    let mut img = image(id, GIB);
    img.properties.insert("cinder_encryption_key_id".into(), Value::String("key-img".into()));
    w.images.push(img);
    let mut r = req(1);
    r.image_id = Some(id.into());
    // Unencrypted type: no key whatever the image says.
    assert_eq!(ok(&w.create(&r)).encryption_key, None);
    r.volume_type = Some("luks".into());
    assert_eq!(ok(&w.create(&r)).encryption_key, Some(KeySource::Image { key_id: "key-img".into() }));
    // No cipher and nothing to clone: InvalidVolumeType.
    w.types.iter_mut().find(|t| t.name == "luks").unwrap().encryption.as_mut().unwrap().cipher = None;
    let mut r = req(1);
    r.volume_type = Some("luks".into());
    assert_eq!(err(&w.create(&r)), Some("InvalidVolumeType"));
}

#[test]
fn api24_multiattach_exactly_is_true_and_not_encrypted() {
    let mut w = World::new();
    let mut r = req(1);
    r.volume_type = Some("m".into());
    for (spec, expect) in
        [("<is> True", true), ("<is>  True", false), ("<is> true", false), ("True", false), ("<is> True ", false)]
    {
        let mut t = vtype("m");
        t.extra_specs.insert("multiattach".into(), spec.into());
        w.types.retain(|t| t.name != "m");
        w.types.push(t);
        assert_eq!(ok(&w.create(&r)).multiattach, expect, "{spec:?}");
    }
    let m = w.types.iter_mut().find(|t| t.name == "m").unwrap();
    m.extra_specs.insert("multiattach".into(), "<is> True".into());
    m.encryption = Some(luks());
    let res = w.create(&r);
    assert_eq!(err(&res), Some("InvalidVolume"));
    assert_eq!(failure(&res).rule, ApiRule(24));
}

#[test]
fn api25_replication_status_needs_qos_specs() {
    let mut w = World::new();
    let mut t = vtype("r");
    t.extra_specs.insert("replication_enabled".into(), "<is> True".into());
    w.types.push(t);
    let mut r = req(1);
    r.volume_type = Some("r".into());
    assert_eq!(ok(&w.create(&r)).replication_status, ReplicationStatus::Disabled);
    w.types.iter_mut().find(|t| t.name == "r").unwrap().qos_specs =
        BTreeMap::from([("total_iops_sec".to_owned(), "100".to_owned())]);
    let x = w.create(&r);
    assert_eq!(ok(&x).replication_status, ReplicationStatus::Enabled);
    assert!(ok(&x).qos_specs.is_some());
}

// -- API-27 / API-28 ----------------------------------------------------

#[test]
fn api27_quota() {
    let mut w = World::new();
    let res = w.create(&req(1_000_000));
    assert_eq!(err(&res), Some("VolumeSizeExceedsAvailableQuota"));
    // The extraction succeeded and is reported.
    assert_eq!(res.extracted().unwrap().size, PyInt::from(1_000_000));
    assert!(res.volume().is_none());
    // Snapshots count against the gigabytes.
    w.usage = ProjectUsage { volumes: 1, volume_gigabytes: 500, snapshots: 1, snapshot_gigabytes: 400 };
    assert!(w.create(&req(100)).error().is_none());
    assert_eq!(err(&w.create(&req(101))), Some("VolumeSizeExceedsAvailableQuota"));
    // The volume count is checked first.
    w.usage.volumes = 10;
    assert_eq!(err(&w.create(&req(101))), Some("VolumeLimitExceeded"));
    // Usage columns are 32-bit.
    w.usage = ProjectUsage::default();
    assert_eq!(err(&w.create(&req(2_147_483_648_i64))), Some("QuotaUsageOverflow"));
    // No quota for the extraction alone.
    assert!(w.extract(&req(1_000_000)).error().is_none());
}

#[test]
fn api28_row_zone_only_when_one() {
    let mut w = World::new();
    let mut t = vtype("azt");
    t.extra_specs.insert(TYPE_ZONES_KEY.into(), "az1,nova".into());
    w.types.push(t);
    let mut r = req(1);
    r.volume_type = Some("azt".into());
    let res = w.create(&r);
    let v = res.volume().unwrap();
    assert_eq!(v.availability_zone, None);
    assert_eq!(v.status, VolumeStatus::Creating);
    assert_eq!(ok(&res).availability_zones, ["az1", "nova"]);
    r.availability_zone = Some("az1".into());
    assert_eq!(w.create(&r).volume().unwrap().availability_zone.as_deref(), Some("az1"));
    // The extraction alone makes no row.
    assert!(w.extract(&r).volume().is_none());
}

#[test]
fn needs_are_asked_in_few_rounds_and_answers_are_deterministic() {
    let mut w = World::new();
    w.volumes.push(volume("33333333-3333-4333-8333-333333333333", 3, "az1"));
    w.snapshots.push(snapshot("55555555-5555-4555-8555-555555555555", "33333333-3333-4333-8333-333333333333", 3));
    let mut r = req(3);
    r.snapshot_id = Some("55555555-5555-4555-8555-555555555555".into());
    let mut facts = Facts::new();
    let mut rounds = 0;
    let result = loop {
        match plan_api(&r, ApiKind::Create, &facts, &w.config).unwrap() {
            Planning::Done(res) => break res,
            Planning::NeedFacts(needs) => {
                rounds += 1;
                for n in &needs {
                    facts.learn(w.answer(n));
                }
            }
        }
    };
    assert!(rounds <= 6, "{rounds} rounds");
    assert_eq!(result.volume().unwrap().availability_zone.as_deref(), Some("az1"));
    let again = plan_api(&r, ApiKind::Create, &facts, &w.config).unwrap();
    assert_eq!(again, Planning::Done(result));
}

#[test]
fn serde_round_trips() {
    let mut r = req("2.5");
    r.metadata = Some(vec![("k".into(), "v".into())]);
    let text = serde_json::to_string(&r).unwrap();
    let back: ApiRequest = serde_json::from_str(&text).unwrap();
    assert_eq!(back, r);
    let big = parse_py_int(&"9".repeat(40)).unwrap();
    let text = serde_json::to_string(&big).unwrap();
    assert_eq!(serde_json::from_str::<PyInt>(&text).unwrap(), big);
}

#[test]
fn the_trace_records_each_decision_in_order_and_ends_with_the_refusal() {
    let mut w = World::new();
    w.volumes.push(volume("src-1", 3, "az1"));
    let mut r = req(0);
    r.source_volid = Some("src-1".into());
    let result = w.create(&r);
    let rules: Vec<u8> = result.trace.iter().map(|d| d.rule.0).collect();
    assert_eq!(rules, [2, 18, 21, 22, 27, 28], "{result}");
    assert_eq!(
        result.trace[1].verdict,
        ApiVerdict::Size { size: PyInt::from(3), from: SizeSource::SourceVolume },
        "a falsy size is the source's"
    );
    assert!(matches!(&result.trace[2].verdict, ApiVerdict::VolumeType { from: TypeSource::SourceVolume, .. }));
    let words = result.to_string();
    assert!(words.contains("[ExtractVolumeRequestTask API-18] size 3 GiB (the source volume's size)"), "{words}");

    // A refusal is the last entry, with upstream's exception.
    r.availability_zone = Some("nowhere".into());
    let refused = w.create(&r);
    let last = refused.trace.last().expect("entries");
    assert_eq!(last.rule, ApiRule(22));
    assert!(matches!(&last.verdict, ApiVerdict::Refused { error: ErrorClass::InvalidAvailabilityZone, .. }));
    // Typed entries survive JSON.
    let json = serde_json::to_string(&refused).expect("serialise");
    assert_eq!(serde_json::from_str::<ApiResult>(&json).expect("deserialise"), refused);
}
