//! Running `api_create` / `api_extract` vectors (docs/FORMAT.md §2, §6, §11 `api`).

use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::planner::{ApiBackup, ApiGroup, ApiKind, ApiRequest, ApiResult, PyInt, RequestedSize};
use crate::shell;

use super::vector::{Vector, VectorError};
use super::{median, replace_new_ids, world::build_world, RunOutput};

/// Reads `vector.request` as an [`ApiRequest`] with docs/FORMAT.md §6's
/// defaults.
pub fn api_request_of(vector: &Vector) -> Result<ApiRequest, VectorError> {
    let invalid = |message: String| VectorError::Invalid { name: vector.name.clone(), message };
    let empty = Map::new();
    let req = match &vector.request {
        Value::Object(o) => o,
        Value::Null => &empty,
        other => return Err(invalid(format!("request must be an object, not {other}"))),
    };
    let opt_str = |key: &str| -> Result<Option<String>, VectorError> {
        match req.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(invalid(format!("request.{key} must be a string or null, not {other}"))),
        }
    };
    let size = match req.get("size") {
        None => RequestedSize::Null,
        Some(v) => RequestedSize::from_json(v).ok_or_else(|| invalid(format!("request.size {v} is not a size")))?,
    };
    let mut r = ApiRequest::new(
        opt_str("project_id")?.unwrap_or_else(|| "project-1".into()),
        opt_str("user_id")?.unwrap_or_else(|| "user-1".into()),
    );
    r.size = size;
    r.availability_zone = opt_str("availability_zone")?;
    r.volume_type = opt_str("volume_type")?;
    r.snapshot_id = opt_str("snapshot_id")?.map(Into::into);
    r.source_volid = opt_str("source_volid")?.map(Into::into);
    r.image_id = opt_str("image_id")?.map(Into::into);
    r.name = match req.get("name") {
        None => Some("vol".into()),
        Some(_) => opt_str("name")?,
    };
    r.description = opt_str("description")?;
    r.group = match req.get("group") {
        None | Some(Value::Null) => None,
        Some(Value::Object(g)) if g.is_empty() => None,
        Some(Value::Object(g)) => {
            let field = |k: &str| g.get(k).and_then(Value::as_str).map(str::to_owned);
            Some(ApiGroup {
                id: field("id").ok_or_else(|| invalid("request.group.id is required".into()))?,
                status: field("status").unwrap_or_else(|| "available".into()),
                availability_zone: field("availability_zone"),
                volume_type_ids: None,
            })
        }
        Some(other) => return Err(invalid(format!("request.group must be an object, not {other}"))),
    };
    r.backup = match req.get("backup") {
        None | Some(Value::Null) => None,
        Some(Value::Object(b)) if b.is_empty() => None,
        Some(Value::Object(b)) => {
            let field = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_owned);
            let size = match b.get("size") {
                None => 1,
                Some(v) => v.as_u64().ok_or_else(|| invalid(format!("request.backup.size {v} is not a size")))?,
            };
            Some(ApiBackup {
                id: field("id").ok_or_else(|| invalid("request.backup.id is required".into()))?,
                status: field("status").unwrap_or_else(|| "available".into()),
                size,
            })
        }
        Some(other) => return Err(invalid(format!("request.backup must be an object, not {other}"))),
    };
    r.metadata = match req.get("metadata") {
        None | Some(Value::Null) => None,
        // JSON objects reach us sorted by key (serde_json without
        // `preserve_order`), so the request order is that order.
        Some(Value::Object(m)) => Some(
            m.iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    other => Err(invalid(format!("request.metadata.{k} must be a string, not {other}"))),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(other) => return Err(invalid(format!("request.metadata must be an object, not {other}"))),
    };
    Ok(r)
}

/// An integer as JSON. Beyond 64 bits it is written as the nearest float:
/// that is how the expected files read back (serde_json without
/// `arbitrary_precision` parses such literals as floats).
fn py_int_json(i: &PyInt) -> Value {
    if let Some(v) = i.to_i64() {
        return json!(v);
    }
    if let Some(v) = i.to_u64() {
        return json!(v);
    }
    i.to_string().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number).unwrap_or(Value::Null)
}

/// The §11 `api` field.
pub fn render_api(result: &ApiResult, kind: ApiKind) -> Value {
    let mut api = Map::new();
    api.insert("known_availability_zones".into(), json!(result.known_availability_zones));
    if let Some(x) = result.extracted() {
        let mut zones = x.availability_zones.clone();
        zones.sort();
        api.insert("size".into(), py_int_json(&x.size));
        api.insert("availability_zones".into(), json!(zones));
        api.insert("refresh_az".into(), json!(x.refresh_az));
        api.insert("volume_type".into(), json!(x.volume_type.name));
        api.insert("encrypted".into(), json!(x.encrypted()));
        api.insert("multiattach".into(), json!(x.multiattach));
        api.insert("replication_status".into(), json!(x.replication_status.as_str()));
    }
    if kind == ApiKind::Create {
        if let Some(v) = result.volume() {
            api.insert(
                "volume".into(),
                json!({"availability_zone": v.availability_zone, "size": py_int_json(&v.size), "status": v.status.as_str()}),
            );
        }
    }
    Value::Object(api)
}

/// Runs an `api_*` vector; with `repeat > 0` also times the decision.
pub(super) async fn run_api(vector: &Vector, kind: ApiKind, repeat: usize) -> Result<RunOutput, VectorError> {
    let invalid = |message: String| VectorError::Invalid { name: vector.name.clone(), message };
    let request = api_request_of(vector)?;
    let world = build_world(vector)?;
    let backends = world.backends();
    let mut times = Vec::new();
    for _ in 0..repeat {
        let t = Instant::now();
        let r = shell::api_request(backends, &request, kind, &world.config).await;
        times.push(t.elapsed().as_secs_f64() * 1e6);
        r.map_err(|e| invalid(format!("planning failed: {e}")))?;
    }
    let (result, _facts) = shell::api_request(backends, &request, kind, &world.config)
        .await
        .map_err(|e| invalid(format!("planning failed: {e}")))?;
    let mut r = Map::new();
    r.insert("name".into(), json!(vector.name));
    r.insert("operation".into(), json!(vector.operation));
    match result.error() {
        None => {
            r.insert("outcome".into(), json!("ok"));
            r.insert("error".into(), Value::Null);
        }
        Some(e) => {
            r.insert("outcome".into(), json!("error"));
            r.insert("error".into(), json!(e.name()));
        }
    }
    // The API changes nothing in the cluster.
    r.insert("rbd_ops".into(), json!([]));
    r.insert("api".into(), render_api(&result, kind));
    r.insert("trace".into(), json!(result.to_string().lines().collect::<Vec<_>>()));
    let vector_text = serde_json::to_string(&vector.raw).unwrap_or_default();
    let mut result_json = replace_new_ids(Value::Object(r), &vector_text);
    let median_us = median(&mut times);
    if let (Some(m), Value::Object(o)) = (median_us, &mut result_json) {
        o.insert("median_us".into(), json!(m));
    }
    Ok(RunOutput { result: result_json, plan: None, median_us })
}
