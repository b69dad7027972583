//! The shell's log: a service embedding the crate sees each decision, each
//! gathering round, each executed step with its duration, a divergence and
//! each undo, as `tracing` events at the levels a service keeps in
//! production (INFO and above for decisions, divergences and undos; DEBUG
//! for rounds and steps).

use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

use cinder_flow::memory::{FaultInjector, MemoryCluster, MemoryImageService, MemoryVolumeDb};
use cinder_flow::model::{GiB, Timestamp, Volume, VolumeStatus};
use cinder_flow::plan::Operation;
use cinder_flow::rbd::Cluster;
use cinder_flow::shell::{self, Backends};
use cinder_flow::{BackendErrorKind, Config, ExecOptions, Policy, Request};

/// One event: its level, message, fields and the spans it was in.
#[derive(Clone, Debug)]
struct Seen {
    level: Level,
    message: String,
    fields: Vec<(String, String)>,
    spans: Vec<String>,
}

#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Seen>>>);

struct Fields<'a>(&'a mut Seen);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let value = format!("{value:?}");
        if field.name() == "message" {
            self.0.message = value;
        } else {
            self.0.fields.push((field.name().to_owned(), value));
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Collect {
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut seen =
            Seen { level: *event.metadata().level(), message: String::new(), fields: Vec::new(), spans: Vec::new() };
        event.record(&mut Fields(&mut seen));
        if let Some(scope) = ctx.event_scope(event) {
            seen.spans = scope.from_root().map(|s| s.name().to_owned()).collect();
        }
        self.0.lock().expect("lock").push(seen);
    }
}

impl Collect {
    fn find(&self, message: &str) -> Vec<Seen> {
        self.0.lock().expect("lock").iter().filter(|s| s.message == message).cloned().collect()
    }
}

#[test]
fn decisions_rounds_steps_divergence_and_undo_are_logged() {
    let collect = Collect::default();
    let subscriber = tracing_subscriber::registry().with(collect.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut c = Cluster::new("fsid-1");
    c.add_pool("volumes");
    let faults = FaultInjector::new();
    let driver = MemoryCluster::new(c).with_faults(faults.clone());
    let images = MemoryImageService::new();
    let db = MemoryVolumeDb::new().with_faults(faults.clone());
    let mut vol = Volume::new("11111111-1111-4111-8111-111111111111", "project-1", GiB(10)).on_host("hostA@ceph#ceph");
    vol.status = VolumeStatus::Creating;
    db.add_volume(vol.clone());
    let backends = Backends { driver: &driver, images: &images, db: &db };
    let mut config = Config::default();
    config.backend.rbd_pool = "volumes".into();
    let request = Request { operation: Operation::CreateVolume, volume_id: vol.id.clone(), now: Timestamp::EPOCH };

    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let (plan, _) = rt.block_on(shell::plan(backends, &request, &config, &Policy::faithful())).expect("plan");
    assert!(plan.steps.len() >= 2, "a create and a status update: {plan:#?}");
    // The last step (the status update) fails: the create is undone.
    faults.fail_call(plan.steps.len() - 1, BackendErrorKind::Unavailable);
    let diverged = rt.block_on(shell::execute(&plan, backends, &ExecOptions::default())).expect_err("diverges");
    assert!(diverged.fully_undone(), "{diverged:?}");

    let planned = collect.find("planned");
    assert_eq!(planned.len(), 1);
    assert_eq!(planned[0].level, Level::INFO);
    assert!(planned[0].fields.iter().any(|(k, v)| k == "operation" && v == "\"create_volume\""), "{planned:?}");

    let rounds = collect.find("gather round");
    assert!(!rounds.is_empty() && rounds.iter().all(|r| r.level == Level::DEBUG && r.spans == ["gather"]));

    let steps = collect.find("step");
    assert_eq!(steps.len(), plan.steps.len() - 1, "every step that did as planned");
    assert!(steps.iter().all(|s| s.spans == ["execute"] && s.fields.iter().any(|(k, _)| k == "elapsed_us")));

    let diverged = collect.find("step diverged from the plan; undoing");
    assert_eq!(diverged.len(), 1);
    assert_eq!(diverged[0].level, Level::WARN);

    let undos = collect.find("undo");
    assert!(!undos.is_empty(), "the create is undone");
    assert!(undos.iter().all(|u| u.level == Level::INFO && u.spans == ["execute"]));
    assert_eq!(collect.find("marked error").len(), 1);
}
