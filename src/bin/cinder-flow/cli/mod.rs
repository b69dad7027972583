//! The `cinder-flow` command, apart from the process: arguments in, text
//! out through the writers given, an exit code back (`tests/explain_cli.rs`
//! includes this module and runs it on in-memory writers).

mod live;
mod offline;

use std::io::{self, Write};
use std::path::PathBuf;

use cinder_flow::explain::Escaped;
use cinder_flow::model::Timestamp;
use cinder_flow::planner::{CandidateScope, DeleteRules, Policy};
use clap::{Args, Parser, Subcommand, ValueEnum};

use live::{GlanceAuth, LiveArgs};
use offline::Stop;

/// Exit status: everything was explained.
pub const EXIT_OK: u8 = 0;
/// Exit status: a scenario, the configuration or the cloud could not be
/// used (the reason is on standard error).
pub const EXIT_UNUSABLE: u8 = 1;
/// Exit status: the command line is wrong.
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "cinder-flow",
    version,
    about = "Explains the decisions OpenStack Cinder 29 makes when it creates a volume",
    after_help = "Exit status: 0 when everything was explained, 1 when a scenario, the configuration or the \
                  cloud cannot be used, 2 for a wrong command line."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Explain how Cinder would build a volume, and why every other way was rejected.
    ///
    /// Two modes. Offline: SCENARIO files (docs/FORMAT.md) are decided on
    /// in-memory backends. Live: --image/--size/--host/--project with
    /// --conf read the facts from the cloud that cinder.conf describes
    /// (Cinder's database, Glance, the backend's Ceph cluster). Either way
    /// nothing is executed, and live mode never writes to the database,
    /// Glance or Ceph.
    #[command(
        after_help = "Examples:\n  cinder-flow explain examples/scenarios/seed003-nova-zone.json\n  cinder-flow \
                      explain --conf /etc/cinder/cinder.conf --backend ceph --image IMAGE_ID --size 40 \\\n      \
                      --host node1@ceph#volumes --project PROJECT_ID --os-token \"$OS_AUTH_TOKEN\"\n\nExit status: 0 \
                      when everything was explained, 1 when a scenario, the configuration or the cloud cannot be \
                      used, 2 for a wrong command line."
    )]
    Explain(ExplainArgs),
}

#[derive(Debug, Args)]
struct ExplainArgs {
    /// Scenario files (one scenario or an array of them), decided offline.
    #[arg(value_name = "SCENARIO", required_unless_present = "image", conflicts_with = "image")]
    scenarios: Vec<PathBuf>,

    /// A real cinder.conf: the base configuration of scenarios, and in live
    /// mode also where the database, Glance and Ceph are.
    #[arg(long, value_name = "FILE")]
    conf: Option<PathBuf>,

    /// The backend section, when enabled_backends names several.
    #[arg(long, value_name = "NAME")]
    backend: Option<String>,

    /// An opt-in improvement over upstream (repeatable).
    #[arg(long = "policy", value_enum, value_name = "POLICY")]
    policies: Vec<PolicyArg>,

    /// The clock of the decision (ISO 8601; it dates image-cache use).
    /// Default: now.
    #[arg(long, value_name = "TIMESTAMP", value_parser = parse_now)]
    now: Option<Timestamp>,

    /// One compact JSON document per decision (JSON Lines); notes go to
    /// standard error.
    #[arg(long)]
    json: bool,

    /// Live: the Glance image the volume is created from.
    #[arg(long, value_name = "IMAGE_ID", requires_all = ["size", "host", "project", "conf"], help_heading = "Live mode")]
    image: Option<String>,

    /// Live: the volume's size in GiB.
    #[arg(long, value_name = "GIB", requires = "image", help_heading = "Live mode")]
    size: Option<u64>,

    /// Live: where the scheduler placed it, host@backend#pool.
    #[arg(long, value_name = "HOST", requires = "image", help_heading = "Live mode")]
    host: Option<String>,

    /// Live: the project that asks.
    #[arg(long, value_name = "PROJECT_ID", requires = "image", help_heading = "Live mode")]
    project: Option<String>,

    /// Live: the user that asks.
    #[arg(long, value_name = "USER_ID", default_value = "cinder-flow-explain", help_heading = "Live mode")]
    user: String,

    /// Live: the volume type (name or id). Default: default_volume_type.
    #[arg(long, value_name = "TYPE", requires = "image", help_heading = "Live mode")]
    volume_type: Option<String>,

    /// Live: the volume's availability zone. Default: nova.
    #[arg(long, value_name = "ZONE", requires = "image", help_heading = "Live mode")]
    availability_zone: Option<String>,

    /// Live: a Keystone token for Glance.
    #[arg(
        long,
        env = "OS_AUTH_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = "Glance credentials"
    )]
    os_token: Option<String>,

    /// Live: Keystone v3 for a password login to Glance's catalog.
    #[arg(long, env = "OS_AUTH_URL", value_name = "URL", help_heading = "Glance credentials")]
    os_auth_url: Option<String>,

    /// Live: Keystone user name.
    #[arg(long, env = "OS_USERNAME", value_name = "NAME", help_heading = "Glance credentials")]
    os_username: Option<String>,

    /// Live: Keystone password.
    #[arg(
        long,
        env = "OS_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD",
        help_heading = "Glance credentials"
    )]
    os_password: Option<String>,

    /// Live: Keystone project name.
    #[arg(long, env = "OS_PROJECT_NAME", value_name = "NAME", help_heading = "Glance credentials")]
    os_project_name: Option<String>,

    /// Live: Keystone user and project domain.
    #[arg(
        long,
        env = "OS_USER_DOMAIN_NAME",
        default_value = "Default",
        value_name = "NAME",
        help_heading = "Glance credentials"
    )]
    os_domain_name: String,

    /// Live: a Glance without Keystone that trusts identity headers
    /// (X-Project-Id, X-User-Id, X-Roles): sends --project and --user.
    #[arg(long, help_heading = "Glance credentials")]
    glance_trusted_headers: bool,
}

/// The opt-in policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PolicyArg {
    /// Accept image volumes and cache entries from any pool of the same backend.
    #[value(name = "same_backend")]
    SameBackend,
    /// Skip candidates that are known to fail.
    #[value(name = "skip_doomed")]
    SkipDoomed,
    /// Liberty's delete rules (flatten the source instead of the clone).
    #[value(name = "liberty_delete")]
    LibertyDelete,
}

fn parse_now(text: &str) -> Result<Timestamp, String> {
    text.parse::<Timestamp>().map_err(|e| e.to_string())
}

/// The current time, to the second.
pub fn system_now() -> Timestamp {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    Timestamp::from_unix(secs).unwrap_or(Timestamp::EPOCH)
}

fn policy_of(args: &[PolicyArg]) -> Policy {
    let mut policy = Policy::faithful();
    for p in args {
        match p {
            PolicyArg::SameBackend => policy.candidate_scope = CandidateScope::SameBackend,
            PolicyArg::SkipDoomed => policy.skip_doomed_candidates = true,
            PolicyArg::LibertyDelete => policy.delete_rules = DeleteRules::Liberty,
        }
    }
    policy
}

fn glance_auth_of(a: &ExplainArgs) -> Result<GlanceAuth, String> {
    if a.glance_trusted_headers {
        return Ok(GlanceAuth::TrustedHeaders);
    }
    if let Some(t) = &a.os_token {
        return Ok(GlanceAuth::Token(t.clone()));
    }
    match (&a.os_auth_url, &a.os_username, &a.os_password, &a.os_project_name) {
        (Some(url), Some(user), Some(password), Some(project)) => Ok(GlanceAuth::Keystone {
            auth_url: url.clone(),
            username: user.clone(),
            password: password.clone(),
            project_name: project.clone(),
            domain: a.os_domain_name.clone(),
        }),
        _ => Err("live mode needs Glance credentials: --os-token (OS_AUTH_TOKEN), or --os-auth-url, --os-username, \
                  --os-password and --os-project-name (OS_AUTH_URL, ...), or --glance-trusted-headers"
            .into()),
    }
}

/// Runs the command line `args` (without the program name).
pub async fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let argv = std::iter::once("cinder-flow".to_owned()).chain(args.iter().cloned());
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let text = e.render().to_string();
            let (written, code) = if e.use_stderr() {
                (write!(err, "{text}").and_then(|()| err.flush()), EXIT_USAGE)
            } else {
                (write!(out, "{text}").and_then(|()| out.flush()), EXIT_OK)
            };
            return match written {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => EXIT_UNUSABLE,
                _ => code,
            };
        }
    };
    let Command::Explain(a) = cli.command;
    let now = a.now.unwrap_or_else(system_now);
    let policy = policy_of(&a.policies);
    let result = match &a.image {
        None => {
            let args = offline::Args {
                scenarios: a.scenarios.clone(),
                conf: a.conf.clone(),
                backend: a.backend.clone(),
                json: a.json,
                policy,
                now,
            };
            offline::explain_all(&args, out, err).await
        }
        Some(image) => match glance_auth_of(&a) {
            Err(message) => {
                let _ = writeln!(err, "explain: {message}");
                return EXIT_USAGE;
            }
            Ok(glance_auth) => {
                let (Some(conf), Some(size), Some(host), Some(project)) = (&a.conf, a.size, &a.host, &a.project) else {
                    // clap's `requires_all` makes these present.
                    let _ = writeln!(err, "explain: --image needs --conf, --size, --host and --project");
                    return EXIT_USAGE;
                };
                let args = LiveArgs {
                    conf: conf.clone(),
                    backend: a.backend.clone(),
                    image: image.clone(),
                    size,
                    host: host.clone(),
                    project: project.clone(),
                    user: a.user.clone(),
                    volume_type: a.volume_type.clone(),
                    availability_zone: a.availability_zone.clone(),
                    glance_auth,
                    policy,
                    now,
                    json: a.json,
                };
                live::explain_live(&args, out, err).await
            }
        },
    };
    match result.and_then(|()| out.flush().map_err(Stop::from)) {
        Ok(()) | Err(Stop::Closed) => EXIT_OK,
        Err(Stop::Failed) => EXIT_UNUSABLE,
        Err(Stop::Io(e)) => {
            let _ = writeln!(err, "explain: cannot write the output: {}", Escaped(e));
            EXIT_UNUSABLE
        }
    }
}
