//! `cinder-flow explain SCENARIO.json...`: scenarios (docs/FORMAT.md) on
//! the in-memory backends, optionally on top of a real `cinder.conf`.

use std::io::{self, Write};
use std::path::PathBuf;

use cinder_flow::config::{CinderConf, Config, Loaded, OptionValue};
use cinder_flow::conformance::{api_request_of, build_world, read_file, Vector};
use cinder_flow::explain::{render_plan, Escaped};
use cinder_flow::model::Timestamp;
use cinder_flow::plan::Operation;
use cinder_flow::planner::{ApiKind, Policy, Request};
use cinder_flow::shell;

/// What the command line asks for in offline mode.
#[derive(Debug)]
pub struct Args {
    pub scenarios: Vec<PathBuf>,
    pub conf: Option<PathBuf>,
    pub backend: Option<String>,
    pub json: bool,
    pub policy: Policy,
    pub now: Timestamp,
}

/// Why the run stops early.
pub enum Stop {
    /// The reader went away (`| head`): stop quietly.
    Closed,
    /// Writing failed otherwise.
    Io(io::Error),
    /// A scenario or the configuration cannot be used (already reported).
    Failed,
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Stop::Closed
        } else {
            Stop::Io(e)
        }
    }
}

pub async fn explain_all(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Stop> {
    let conf = match &args.conf {
        None => None,
        Some(path) => {
            let loaded = CinderConf::read(path).and_then(|c| c.load(args.backend.as_deref()));
            match loaded {
                Ok(l) => Some(l),
                Err(e) => {
                    writeln!(err, "explain: {}", Escaped(e))?;
                    return Err(Stop::Failed);
                }
            }
        }
    };
    if let (Some(l), Some(path)) = (&conf, &args.conf) {
        report_conf(l, &path.display().to_string(), if args.json { err } else { out })?;
    }
    let mut failed = false;
    for path in &args.scenarios {
        let vectors = match read_file(path) {
            Ok(v) => v,
            Err(e) => {
                writeln!(err, "explain: {}", Escaped(e))?;
                failed = true;
                continue;
            }
        };
        for vector in &vectors {
            if let Err(message) = explain(vector, args, conf.as_ref(), out).await? {
                writeln!(err, "explain: {}: {}", Escaped(&vector.name), Escaped(message))?;
                failed = true;
            }
        }
    }
    if failed {
        Err(Stop::Failed)
    } else {
        Ok(())
    }
}

/// What the configuration file set that the decision does not use.
pub fn report_conf(l: &Loaded, file: &str, to: &mut dyn Write) -> io::Result<()> {
    for u in &l.unknown {
        let hint = u.suggestion.map(|s| format!("; did you mean {s}?")).unwrap_or_default();
        writeln!(
            to,
            "({}:{}: [{}] {} is not a Cinder option, and Cinder ignores it{hint})",
            Escaped(file),
            u.line,
            Escaped(&u.section),
            Escaped(&u.key)
        )?;
    }
    if !l.ignored.is_empty() {
        let keys: Vec<String> = l.ignored.iter().map(|i| format!("[{}] {}", i.section, i.key)).collect();
        writeln!(to, "(options not modelled, left to Cinder: {})", Escaped(keys.join(", ")))?;
    }
    Ok(())
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

/// The configuration of a scenario: the file's (if any) with the
/// scenario's options on top.
fn config_of(vector: &Vector, base: Option<&Loaded>, world_config: &Config) -> Result<Config, String> {
    let Some(loaded) = base else { return Ok(world_config.clone()) };
    let mut config = loaded.config.clone();
    for (key, value) in &vector.config {
        let value: OptionValue = serde_json::from_value(value.clone()).map_err(|e| format!("config {key}: {e}"))?;
        config.set(key, value).map_err(|e| e.to_string())?;
    }
    Ok(config)
}

/// Explains one scenario; the inner error is the scenario's, the outer
/// one the output's.
async fn explain(
    vector: &Vector,
    args: &Args,
    conf: Option<&Loaded>,
    out: &mut dyn Write,
) -> Result<Result<(), String>, Stop> {
    let mut world = match build_world(vector) {
        Ok(w) => w,
        Err(e) => return Ok(Err(e.to_string())),
    };
    world.config = match config_of(vector, conf, &world.config) {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    let backends = world.backends();
    let header = |out: &mut dyn Write| -> io::Result<()> {
        writeln!(out, "=== {} ({})", Escaped(&vector.name), Escaped(&vector.operation))?;
        if !vector.description.is_empty() {
            writeln!(out, "{}", Escaped(&vector.description))?;
        }
        Ok(())
    };

    if let Some(kind) = match vector.operation.as_str() {
        "api_create" => Some(ApiKind::Create),
        "api_extract" => Some(ApiKind::ExtractOnly),
        _ => None,
    } {
        let request = match api_request_of(vector) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let result = match shell::api_request(backends, &request, kind, &world.config).await {
            Ok((result, _facts)) => result,
            Err(e) => return Ok(Err(e.to_string())),
        };
        if args.json {
            let doc = serde_json::json!({"scenario": vector.name, "operation": vector.operation, "api": result});
            writeln!(out, "{doc}")?;
        } else {
            header(out)?;
            for line in result.to_string().lines() {
                writeln!(out, "  {line}")?;
            }
            writeln!(out)?;
        }
        return Ok(Ok(()));
    }

    let operation = match operation_of(vector) {
        Ok(o) => o,
        Err(e) => return Ok(Err(e)),
    };
    let Some(volume) = vector.volume.as_ref() else { return Ok(Err("the scenario has no volume".into())) };
    let request = Request { operation, volume_id: volume.id.clone().into(), now: args.now };
    let plan = match shell::plan(backends, &request, &world.config, &args.policy).await {
        Ok((plan, _facts)) => plan,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if args.json {
        let doc = serde_json::json!({"scenario": vector.name, "operation": vector.operation, "plan": plan});
        writeln!(out, "{doc}")?;
    } else {
        header(out)?;
        write!(out, "{}", render_plan(&plan))?;
        writeln!(out)?;
    }
    Ok(Ok(()))
}
