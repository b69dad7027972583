//! The `explain` command, apart from the process: arguments in, text out
//! through the writers given, an exit code back. `tests/explain_cli.rs`
//! includes this file and runs it on in-memory writers.

use std::io::{self, Write};
use std::path::PathBuf;

use cinder_flow::config::{CinderConf, Config, Loaded, OptionValue};
use cinder_flow::conformance::{api_request_of, build_world, read_file, Vector};
use cinder_flow::explain::{render_plan, Escaped};
use cinder_flow::model::Timestamp;
use cinder_flow::plan::Operation;
use cinder_flow::planner::{ApiKind, CandidateScope, DeleteRules, Policy, Request};
use cinder_flow::shell;

pub const USAGE: &str = "\
usage: explain SCENARIO.json... [--conf cinder.conf [--backend NAME]]
               [--policy same_backend|skip_doomed|liberty_delete]... [--now TIMESTAMP] [--json]

Explains the decision Cinder 29.0.0 makes for each scenario (a file with
one scenario or an array of them; docs/FORMAT.md), on in-memory backends:
nothing is executed.

  --conf FILE       a real cinder.conf as the base configuration (the
                    scenario's `config` goes on top); options it sets that
                    the crate does not model, and names that are no Cinder
                    option (with the nearest one), are reported
  --backend NAME    the backend section, when enabled_backends has several
  --policy P        an opt-in improvement: same_backend, skip_doomed,
                    liberty_delete (repeatable)
  --now TIMESTAMP   the clock of the decision (ISO 8601; it dates image-cache
                    use); default: the current time
  --json            one compact JSON document per scenario (JSON Lines)
  -h, --help        this text

Exit status: 0 when every scenario was explained, 1 when a scenario or the
configuration cannot be used, 2 for bad arguments.";

/// What the command line asks for.
#[derive(Debug)]
pub struct Args {
    pub scenarios: Vec<PathBuf>,
    pub conf: Option<PathBuf>,
    pub backend: Option<String>,
    pub json: bool,
    pub policy: Policy,
    pub now: Timestamp,
}

/// Why the arguments are not usable, or that help was asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum ArgsError {
    Help,
    Bad(String),
}

pub fn parse_args(args: &[String], now: Timestamp) -> Result<Args, ArgsError> {
    let mut it = args.iter();
    let mut a = Args { scenarios: Vec::new(), conf: None, backend: None, json: false, policy: Policy::faithful(), now };
    let value = |it: &mut std::slice::Iter<'_, String>, flag: &str| {
        it.next().cloned().ok_or_else(|| ArgsError::Bad(format!("{flag} needs a value")))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Err(ArgsError::Help),
            "--json" => a.json = true,
            "--conf" => a.conf = Some(PathBuf::from(value(&mut it, "--conf")?)),
            "--backend" => a.backend = Some(value(&mut it, "--backend")?),
            "--now" => {
                let text = value(&mut it, "--now")?;
                a.now = text.parse().map_err(|e| ArgsError::Bad(format!("--now: {e}")))?;
            }
            "--policy" => match value(&mut it, "--policy")?.as_str() {
                "same_backend" => a.policy.candidate_scope = CandidateScope::SameBackend,
                "skip_doomed" => a.policy.skip_doomed_candidates = true,
                "liberty_delete" => a.policy.delete_rules = DeleteRules::Liberty,
                other => return Err(ArgsError::Bad(format!("unknown policy {other:?}"))),
            },
            other if other.starts_with('-') && other.len() > 1 => {
                return Err(ArgsError::Bad(format!("unknown option {other:?}")))
            }
            _ => a.scenarios.push(PathBuf::from(arg)),
        }
    }
    if a.scenarios.is_empty() {
        return Err(ArgsError::Bad("a scenario file is required".into()));
    }
    Ok(a)
}

/// The current time, to the second.
pub fn system_now() -> Timestamp {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    Timestamp::from_unix(secs).unwrap_or(Timestamp::EPOCH)
}

/// Why the run stops early.
enum Stop {
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

/// Runs the command: 0 done, 1 a scenario or the configuration is not
/// usable, 2 bad arguments. Writing into a closed pipe ends the run
/// quietly (status 0), as `cmd | head` expects.
pub async fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let args = match parse_args(args, system_now()) {
        Ok(a) => a,
        Err(ArgsError::Help) => {
            return match writeln!(out, "{USAGE}").and_then(|()| out.flush()) {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => 1,
                _ => 0,
            };
        }
        Err(ArgsError::Bad(message)) => {
            let _ = writeln!(err, "explain: {}\n{USAGE}", Escaped(message));
            return 2;
        }
    };
    let result = explain_all(&args, out, err).await.and_then(|()| out.flush().map_err(Stop::from));
    match result {
        Ok(()) | Err(Stop::Closed) => 0,
        Err(Stop::Failed) => 1,
        Err(Stop::Io(e)) => {
            let _ = writeln!(err, "explain: cannot write the output: {e}");
            1
        }
    }
}

async fn explain_all(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Stop> {
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
fn report_conf(l: &Loaded, file: &str, to: &mut dyn Write) -> io::Result<()> {
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
