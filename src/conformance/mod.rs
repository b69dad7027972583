//! The conformance runner: builds the situation a test vector describes on
//! the in-memory backends, plans and executes its operation, and renders the
//! result in the format of docs/FORMAT.md (§11), so
//! it can be compared with what upstream Cinder did (§12).
//!
//! `cargo run --release --example conformance -- --check tests/vectors`
//! drives this module from the command line.

mod api;
mod result;
pub mod vector;
mod world;

pub use api::{api_request_of, render_api};
pub use result::{compare, render_rbd_op, replace_new_ids, Mismatch, COMPARED_FIELDS};
pub use vector::{expected_for, parse_vectors, read_file, vector_files, Vector, VectorError};
pub use world::{build_world, World};

use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::memory::JournalEntry;
use crate::model::Timestamp;
use crate::plan::{Operation, Outcome, Plan, Source};
use crate::planner::{ApiKind, ApiRequest, Policy, Request};
use crate::rbd::RbdOp;
use crate::shell::{self, ExecOptions};

/// The fixed "now" of conformance runs (cache bookkeeping only; upstream's
/// clock values are never compared).
pub const NOW: &str = "2025-01-01T00:00:00Z";

/// What running one vector produced.
#[derive(Debug)]
pub struct RunOutput {
    /// The §11 result object.
    pub result: Value,
    /// The plan, for manager and driver operations.
    pub plan: Option<Plan>,
    /// Median time of the decision (gather + plan) in microseconds, when
    /// timing was asked for.
    pub median_us: Option<f64>,
}

/// What a vector asks for.
#[derive(Clone, Debug)]
pub enum VectorRequest {
    /// A volume-manager operation (create, delete, snapshot).
    Manager(Request),
    /// An API request.
    Api(Box<ApiRequest>, ApiKind),
}

/// The request a vector makes (its `operation`, `request`, `image` and
/// `volume` fields).
pub fn request_of(vector: &Vector) -> Result<VectorRequest, VectorError> {
    let invalid = |message: String| VectorError::Invalid { name: vector.name.clone(), message };
    let operation = match vector.operation.as_str() {
        "create_volume" => Operation::CreateVolume,
        "create_from_snapshot" => Operation::CreateFromSnapshot {
            snapshot_id: request_str(vector, "snapshot_id")
                .ok_or_else(|| invalid("request.snapshot_id is required".into()))?
                .into(),
        },
        "create_cloned_volume" => Operation::CreateClonedVolume {
            source_volid: request_str(vector, "source_volid")
                .ok_or_else(|| invalid("request.source_volid is required".into()))?
                .into(),
        },
        "create_from_image" => Operation::CreateFromImage {
            image_id: vector.image.as_ref().ok_or_else(|| invalid("image is required".into()))?.id.clone().into(),
        },
        "delete_volume" => Operation::DeleteVolume,
        "api_create" => return Ok(VectorRequest::Api(Box::new(api_request_of(vector)?), ApiKind::Create)),
        "api_extract" => return Ok(VectorRequest::Api(Box::new(api_request_of(vector)?), ApiKind::ExtractOnly)),
        other => return Err(invalid(format!("unknown operation {other:?}"))),
    };
    let target = vector.volume.as_ref().ok_or_else(|| invalid("volume is required".into()))?;
    Ok(VectorRequest::Manager(Request {
        operation,
        volume_id: target.id.clone().into(),
        now: NOW.parse::<Timestamp>().expect("constant"),
    }))
}

/// Runs a vector with the faithful policy.
pub async fn run(vector: &Vector) -> Result<RunOutput, VectorError> {
    run_with(vector, &Policy::faithful(), 0).await
}

/// Runs a vector under `policy`; with `repeat > 0` also times the decision
/// that many times.
pub async fn run_with(vector: &Vector, policy: &Policy, repeat: usize) -> Result<RunOutput, VectorError> {
    let invalid = |message: String| VectorError::Invalid { name: vector.name.clone(), message };
    let request = match request_of(vector)? {
        VectorRequest::Manager(request) => request,
        VectorRequest::Api(_, kind) => return api::run_api(vector, kind, repeat).await,
    };
    let operation = request.operation.clone();
    let world = build_world(vector)?;
    let backends = world.backends();
    let mut times = Vec::new();
    for _ in 0..repeat {
        let t = Instant::now();
        let r = shell::plan(backends, &request, &world.config, policy).await;
        times.push(t.elapsed().as_secs_f64() * 1e6);
        let _ = r.map_err(|e| invalid(format!("planning failed: {e}")))?;
    }
    let (plan, _facts) = shell::plan(backends, &request, &world.config, policy)
        .await
        .map_err(|e| invalid(format!("planning failed: {e}")))?;
    let exec = shell::execute(&plan, backends, &ExecOptions::default()).await;
    let (outcome, error) = match &exec {
        Ok(report) => match &report.outcome {
            Outcome::Success => ("ok", Value::Null),
            Outcome::Failure { error, .. } => ("error", Value::String(error.name().to_owned())),
        },
        Err(d) => ("error", Value::String(format!("ExecutorDiverged: {d}"))),
    };

    let mut r = Map::new();
    r.insert("name".into(), json!(vector.name));
    r.insert("operation".into(), json!(vector.operation));
    r.insert("outcome".into(), json!(outcome));
    r.insert("error".into(), error);
    r.insert("rbd_ops".into(), Value::Array(world.journal.entries().iter().map(journal_json).collect()));
    r.insert("trace".into(), Value::Array(plan.explained().map(|d| Value::String(d.to_string())).collect()));
    let is_create = !matches!(operation, Operation::DeleteVolume);
    if matches!(operation, Operation::CreateFromImage { .. }) {
        r.insert("path".into(), plan.path.map(|p| json!(p.name())).unwrap_or(Value::Null));
    }
    // The source of clones and snapshot volumes is the request's, whatever
    // happened; for images it follows the path taken.
    let source = match &operation {
        Operation::CreateClonedVolume { source_volid } => json!({"kind": "volume", "volume_id": source_volid.as_str()}),
        Operation::CreateFromSnapshot { snapshot_id } => {
            json!({"kind": "snapshot", "snapshot_id": snapshot_id.as_str()})
        }
        Operation::CreateFromImage { .. } => plan.source.as_ref().map(source_json).unwrap_or(Value::Null),
        // Raw creates have no source; the field is absent.
        _ => Value::Null,
    };
    if is_create && !matches!(operation, Operation::CreateVolume) {
        r.insert("source".into(), source);
    }
    let row = world.db.get_volume(&request.volume_id);
    r.insert(
        "volume".into(),
        row.map(|v| json!({"status": v.status.as_str(), "size": v.size.0, "bootable": v.bootable}))
            .unwrap_or(Value::Null),
    );
    if matches!(operation, Operation::CreateFromImage { .. }) {
        let entries: Vec<Value> = world
            .db
            .cache_entries()
            .into_iter()
            .map(|e| {
                json!({"image_id": e.image_id.as_str(), "host": e.host.as_ref().map(|h| h.as_str()), "volume_id": e.volume_id.as_str(), "size": e.size.0})
            })
            .collect();
        r.insert("cache_entries".into(), Value::Array(entries));
        // The cache volumes the flow asked the volume API to delete, also
        // those whose deletion the API refused (nothing written for them).
        r.insert(
            "cache_evictions".into(),
            Value::Array(plan.cache_deletions.iter().map(|v| json!(v.as_str())).collect()),
        );
    }
    let vector_text = serde_json::to_string(&vector.raw).unwrap_or_default();
    let mut result = replace_new_ids(Value::Object(r), &vector_text);
    // Generated ids are random upstream; sort entries after naming them
    // NEW-n so the order does not depend on the draw.
    if let Some(Value::Array(entries)) = result.get_mut("cache_entries") {
        let key = |e: &Value| {
            let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            (s("image_id"), s("host"), s("volume_id"))
        };
        entries.sort_by_key(key);
    }
    let median_us = median(&mut times);
    if let (Some(m), Value::Object(o)) = (median_us, &mut result) {
        o.insert("median_us".into(), json!(m));
    }
    Ok(RunOutput { result, plan: Some(plan), median_us })
}

fn median(times: &mut [f64]) -> Option<f64> {
    if times.is_empty() {
        return None;
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Some(times[times.len() / 2])
}

fn request_str(v: &Vector, key: &str) -> Option<String> {
    v.request.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn journal_json(e: &JournalEntry) -> Value {
    match e {
        JournalEntry::Rbd { op, result } => {
            let arr = render_rbd_op(op);
            match result {
                Ok(()) => arr,
                Err(k) => {
                    // `rbd import` is a CLI call: it fails as a process.
                    let class =
                        if matches!(op, RbdOp::Import { .. }) { "ProcessExecutionError" } else { k.upstream_class() };
                    let mut v = vec![json!("failed"), json!(class)];
                    if let Value::Array(items) = arr {
                        v.extend(items);
                    }
                    Value::Array(v)
                }
            }
        }
        JournalEntry::Download { image_id, result } => match result {
            Ok(()) => json!(["download_image", image_id.as_str()]),
            Err(k) => json!(["failed", k.upstream_class(), "download_image", image_id.as_str()]),
        },
    }
}

fn source_json(s: &Source) -> Value {
    match s {
        Source::RbdLocation { url, pool, image, snap } => {
            json!({"kind": "rbd_location", "url": url, "pool": pool, "image": image, "snap": snap})
        }
        Source::Volume { volume_id } => json!({"kind": "volume", "volume_id": volume_id.as_str()}),
        Source::Cache { volume_id } => json!({"kind": "cache", "volume_id": volume_id.as_str()}),
        Source::Glance { image_id } => json!({"kind": "glance", "image_id": image_id.as_str()}),
        Source::Snapshot { snapshot_id } => json!({"kind": "snapshot", "snapshot_id": snapshot_id.as_str()}),
    }
}
