//! Explain a decision: take a scenario (a vector in the shared format, see
//! `../shared/conformance/FORMAT.md`), optionally a real `cinder.conf`, and
//! print the full decision: the path chosen, every rejected alternative with
//! its reason, the availability-zone decision for API requests, and the
//! steps — as text, or as JSON with `--json`.
//!
//! ```text
//! cargo run --release --example explain -- SCENARIO.json [--conf cinder.conf [--backend NAME]]
//!                                          [--policy same_backend|skip_doomed|liberty_delete]... [--json]
//! ```
//!
//! With `--conf`, the file's `[DEFAULT]` and backend sections are the base
//! configuration and the scenario's `config` is applied on top. The
//! scenario's world (database, Glance, Ceph) is built on the in-memory
//! backends and nothing is executed.

use std::path::PathBuf;
use std::process::ExitCode;

use cinder_flow::config::{CinderConf, OptionValue};
use cinder_flow::conformance::{api_request_of, build_world, read_file, Vector};
use cinder_flow::explain::render_plan;
use cinder_flow::model::Timestamp;
use cinder_flow::plan::Operation;
use cinder_flow::planner::{ApiKind, CandidateScope, DeleteRules, Policy, Request};
use cinder_flow::shell;

struct Args {
    scenario: PathBuf,
    conf: Option<PathBuf>,
    backend: Option<String>,
    json: bool,
    policy: Policy,
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("{msg}");
    eprintln!(
        "usage: explain SCENARIO.json [--conf cinder.conf [--backend NAME]] [--policy same_backend|skip_doomed|liberty_delete]... [--json]"
    );
    ExitCode::from(2)
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut scenario, mut conf, mut backend, mut json) = (None, None, None, false);
    let mut policy = Policy::faithful();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = true,
            "--conf" => conf = Some(PathBuf::from(it.next().ok_or("--conf needs a file")?)),
            "--backend" => backend = Some(it.next().ok_or("--backend needs a name")?),
            "--policy" => match it.next().as_deref() {
                Some("same_backend") => policy.candidate_scope = CandidateScope::SameBackend,
                Some("skip_doomed") => policy.skip_doomed_candidates = true,
                Some("liberty_delete") => policy.delete_rules = DeleteRules::Liberty,
                other => return Err(format!("unknown policy {other:?}")),
            },
            "-h" | "--help" => return Err(String::new()),
            _ if scenario.is_none() => scenario = Some(PathBuf::from(a)),
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    Ok(Args { scenario: scenario.ok_or("a scenario file is required")?, conf, backend, json, policy })
}

fn operation_of(v: &Vector) -> Result<Operation, String> {
    let req = |k: &str| {
        v.request.get(k).and_then(|x| x.as_str()).map(str::to_owned).ok_or(format!("request.{k} is required"))
    };
    Ok(match v.operation.as_str() {
        "create_volume" => Operation::CreateVolume,
        "create_from_snapshot" => Operation::CreateFromSnapshot { snapshot_id: req("snapshot_id")?.into() },
        "create_cloned_volume" => Operation::CreateClonedVolume { source_volid: req("source_volid")?.into() },
        "create_from_image" => Operation::CreateFromImage {
            image_id: v.image.as_ref().ok_or("the scenario has no image")?.id.clone().into(),
        },
        "delete_volume" => Operation::DeleteVolume,
        other => return Err(format!("operation {other:?} is not a volume-manager operation")),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => return usage(&e),
    };
    let vectors = match read_file(&args.scenario) {
        Ok(v) => v,
        Err(e) => return usage(&e.to_string()),
    };
    for vector in vectors {
        if let Err(e) = explain(&vector, &args).await {
            eprintln!("{}: {e}", vector.name);
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

async fn explain(vector: &Vector, args: &Args) -> Result<(), String> {
    let mut world = build_world(vector).map_err(|e| e.to_string())?;
    if let Some(path) = &args.conf {
        // The file is the base; the scenario's options go on top.
        let conf = CinderConf::read(path).map_err(|e| e.to_string())?;
        let loaded = conf.load(args.backend.as_deref()).map_err(|e| e.to_string())?;
        let mut config = loaded.config;
        for (key, value) in &vector.config {
            let value: OptionValue = serde_json::from_value(value.clone()).map_err(|e| format!("config {key}: {e}"))?;
            config.set(key, value).map_err(|e| e.to_string())?;
        }
        if !args.json && !loaded.ignored.is_empty() {
            let keys: Vec<String> = loaded.ignored.iter().map(|i| format!("[{}] {}", i.section, i.key)).collect();
            println!("(options not modelled, left to Cinder: {})", keys.join(", "));
        }
        world.config = config;
    }
    let backends = world.backends();

    if let Some(kind) = match vector.operation.as_str() {
        "api_create" => Some(ApiKind::Create),
        "api_extract" => Some(ApiKind::ExtractOnly),
        _ => None,
    } {
        let request = api_request_of(vector).map_err(|e| e.to_string())?;
        let (result, _facts) =
            shell::api_request(backends, &request, kind, &world.config).await.map_err(|e| e.to_string())?;
        if args.json {
            let out = serde_json::json!({"scenario": vector.name, "operation": vector.operation, "api": result});
            println!("{}", serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?);
        } else {
            println!("=== {} ({})", vector.name, vector.operation);
            if !vector.description.is_empty() {
                println!("{}", vector.description);
            }
            for line in result.to_string().lines() {
                println!("  {line}");
            }
            println!();
        }
        return Ok(());
    }

    let request = Request {
        operation: operation_of(vector)?,
        volume_id: vector.volume.as_ref().ok_or("the scenario has no volume")?.id.clone().into(),
        now: "2025-01-01T00:00:00Z".parse::<Timestamp>().map_err(|e| e.to_string())?,
    };
    let (plan, _facts) =
        shell::plan(backends, &request, &world.config, &args.policy).await.map_err(|e| e.to_string())?;
    if args.json {
        let out = serde_json::json!({"scenario": vector.name, "operation": vector.operation, "plan": plan});
        println!("{}", serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?);
    } else {
        println!("=== {} ({})", vector.name, vector.operation);
        if !vector.description.is_empty() {
            println!("{}", vector.description);
        }
        print!("{}", render_plan(&plan));
        println!();
    }
    Ok(())
}
