//! Shared by the SQL backend's tests (`tests/sql_sqlite.rs`,
//! `tests/real_cloud/sql.rs`): Cinder's schema on SQLite from the venv's
//! `cinder-manage db sync`, and the comparison of whole conformance
//! vectors between the in-memory database and a SQL one.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cinder_flow::conformance::{api_request_of, build_world, read_file, vector_files, Vector, NOW};
use cinder_flow::memory::DbContents;
use cinder_flow::model::Timestamp;
use cinder_flow::plan::{Operation, Plan};
use cinder_flow::planner::{ApiKind, Policy, Request};
use cinder_flow::ports::VolumeDb;
use cinder_flow::shell::{self, Backends, ExecOptions};
use cinder_flow::sql::{DatabaseUrl, SqlOptions, SqlVolumeDb};
use cinder_flow::testing::db_suite;
use serde_json::Value;

/// The venv's `cinder-manage`: `$CINDER_VENV/bin/cinder-manage`, else
/// `target/cinder-venv/bin/cinder-manage` (what `.ci/mariadb.sh install`
/// creates).
pub fn cinder_manage() -> Option<PathBuf> {
    let venv =
        std::env::var_os("CINDER_VENV").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("target/cinder-venv"));
    let exe = venv.join("bin/cinder-manage");
    exe.is_file().then_some(exe)
}

/// A scratch directory of this test process under target/.
pub fn scratch_dir() -> PathBuf {
    let dir = std::env::current_dir().expect("cwd").join("target/sql-tests").join(std::process::id().to_string());
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Runs `cinder-manage db sync` on a fresh SQLite file.
pub fn db_sync_sqlite(manage: &Path, file: &Path) -> Result<(), String> {
    let dir = file.parent().expect("a file in a directory");
    let conf = file.with_extension("conf");
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\nstate_path = {dir}\nlock_path = {dir}\n[database]\nconnection = sqlite:///{file}\n",
            dir = dir.display(),
            file = file.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let out = Command::new(manage)
        .arg("--config-file")
        .arg(&conf)
        .args(["db", "sync"])
        .output()
        .map_err(|e| format!("running {}: {e}", manage.display()))?;
    if !out.status.success() {
        return Err(format!(
            "cinder-manage db sync failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).lines().rev().take(20).collect::<Vec<_>>().join("\n")
        ));
    }
    Ok(())
}

/// A SQLite file with Cinder 29's schema made once per test process (the
/// migrations take seconds); `None` without the venv.
pub fn sqlite_template() -> Option<PathBuf> {
    static TEMPLATE: OnceLock<Option<PathBuf>> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let manage = cinder_manage()?;
            let file = scratch_dir().join("template.sqlite");
            let _ = std::fs::remove_file(&file);
            let t = std::time::Instant::now();
            db_sync_sqlite(&manage, &file).unwrap_or_else(|e| panic!("{e}"));
            eprintln!("cinder-manage db sync on SQLite took {:.1} s", t.elapsed().as_secs_f64());
            Some(file)
        })
        .clone()
}

/// A copy of the template at a new path, and its URL.
pub fn fresh_sqlite_file(name: &str) -> Option<(PathBuf, DatabaseUrl)> {
    let template = sqlite_template()?;
    let file = scratch_dir().join(format!("{name}.sqlite"));
    std::fs::copy(&template, &file).expect("copy the template");
    let url = DatabaseUrl::parse(&format!("sqlite:///{}", file.display())).expect("url");
    Some((file, url))
}

/// Options for scratch databases: oslo.db's `sqlite_synchronous = False`
/// (no fsync per commit; the vector comparison commits thousands of times).
pub fn scratch_options() -> SqlOptions {
    let conf = cinder_flow::config::CinderConf::parse("[database]\nsqlite_synchronous = false\n").expect("conf");
    SqlOptions::from_cinder_conf(&conf).expect("options")
}

/// Prints why a test skips.
pub fn skip(test: &str, why: &str) {
    eprintln!("{test}: SKIPPED: {why}");
}

/// The venv is missing: the message for skipping.
pub const NO_VENV: &str = "no venv with cinder-manage (set CINDER_VENV, or run `bash .ci/mariadb.sh install`, \
                           which creates target/cinder-venv); the schema must come from Cinder's own migrations";

/// Fresh ids as `conformance::build_world` queues them for the in-memory
/// database (they sort after the vectors' ids).
pub fn fresh_ids() -> impl Iterator<Item = cinder_flow::model::VolumeId> {
    (1..=16).map(|n| format!("ffffffff-ffff-4fff-bfff-{n:012x}").into())
}

/// The manager request of a create or delete vector.
pub fn request_of(v: &Vector) -> Option<Request> {
    let s = |k: &str| v.request.get(k).and_then(Value::as_str).map(str::to_owned);
    let operation = match v.operation.as_str() {
        "create_volume" => Operation::CreateVolume,
        "create_from_snapshot" => Operation::CreateFromSnapshot { snapshot_id: s("snapshot_id")?.into() },
        "create_cloned_volume" => Operation::CreateClonedVolume { source_volid: s("source_volid")?.into() },
        "create_from_image" => Operation::CreateFromImage { image_id: v.image.as_ref()?.id.clone().into() },
        "delete_volume" => Operation::DeleteVolume,
        _ => return None,
    };
    Some(Request {
        operation,
        volume_id: v.volume.as_ref()?.id.clone().into(),
        now: NOW.parse::<Timestamp>().expect("constant"),
    })
}

fn api_kind(v: &Vector) -> Option<ApiKind> {
    match v.operation.as_str() {
        "api_create" => Some(ApiKind::Create),
        "api_extract" => Some(ApiKind::ExtractOnly),
        _ => None,
    }
}

/// Every conformance vector the comparison runs: the manager's creates
/// and deletes, and the API's (which only read the database).
pub fn comparable_vectors() -> Vec<Vector> {
    let mut out = Vec::new();
    for dir in ["tests/vectors", "tests/vectors/oracle"] {
        if !Path::new(dir).is_dir() {
            continue;
        }
        for file in vector_files(Path::new(dir)).expect("vector directory") {
            for v in read_file(&file).expect("vector file") {
                if request_of(&v).is_some() || api_kind(&v).is_some() {
                    out.push(v);
                }
            }
        }
    }
    out
}

/// What one run produced.
#[derive(Debug)]
pub struct Run {
    pub plan: Option<Plan>,
    /// The execution's report or divergence, or the API's result, as text.
    pub result: String,
    /// The cluster's and Glance's journal, as text.
    pub journal: Vec<String>,
    pub rows: DbContents,
}

/// Runs the vector on its in-memory world, with `sql` (emptied and loaded
/// with the world's rows) in place of the in-memory database when given.
pub async fn run_vector(v: &Vector, sql: Option<&SqlVolumeDb>) -> Result<Run, String> {
    let world = build_world(v).map_err(|e| e.to_string())?;
    let db: &dyn VolumeDb = match sql {
        Some(s) => {
            s.delete_all_rows().await.map_err(|e| format!("emptying: {e}"))?;
            db_suite::load(s, s, &world.db.contents()).await.map_err(|e| format!("loading: {e}"))?;
            s.queue_fresh_ids(fresh_ids());
            s
        }
        None => &world.db,
    };
    let backends = Backends { driver: &world.cluster, images: &world.images, db };
    let (plan, result) = if let Some(kind) = api_kind(v) {
        let request = api_request_of(v).map_err(|e| e.to_string())?;
        let result = match shell::api_request(backends, &request, kind, &world.config).await {
            Ok((r, _facts)) => format!("{r:?}"),
            Err(e) => format!("gathering failed: {e}"),
        };
        (None, result)
    } else {
        let request = request_of(v).ok_or("neither a manager nor an API vector")?;
        match shell::plan(backends, &request, &world.config, &Policy::faithful()).await {
            Ok((plan, _facts)) => {
                let exec = match shell::execute(&plan, backends, &ExecOptions::default()).await {
                    Ok(report) => format!("{report:?}"),
                    Err(d) => format!("diverged: {d}"),
                };
                (Some(plan), exec)
            }
            Err(e) => (None, format!("planning failed: {e}")),
        }
    };
    let rows = match sql {
        Some(s) => s.contents().await.map_err(|e| format!("reading back: {e}"))?,
        None => world.db.contents(),
    };
    let journal = world.journal.entries().iter().map(|e| format!("{e:?}")).collect();
    Ok(Run { plan, result, journal, rows })
}

/// The differences between the vector's run in memory and on `sql`.
pub async fn compare_vector(v: &Vector, sql: &SqlVolumeDb) -> Result<Vec<String>, String> {
    let memory = run_vector(v, None).await?;
    let other = run_vector(v, Some(sql)).await?;
    let mut diffs = Vec::new();
    if memory.plan != other.plan {
        diffs.push(format!("plan:\n  memory {:?}\n  sql    {:?}", memory.plan, other.plan));
    }
    if memory.result != other.result {
        diffs.push(format!("result:\n  memory {}\n  sql    {}", memory.result, other.result));
    }
    if memory.journal != other.journal {
        diffs.push(format!("calls:\n  memory {:?}\n  sql    {:?}", memory.journal, other.journal));
    }
    diffs.extend(db_suite::compare_contents(&memory.rows, &other.rows).into_iter().map(|d| format!("rows: {d}")));
    Ok(diffs)
}

/// Runs [`compare_vector`] on every comparable vector; panics with every
/// difference. Returns how many vectors ran.
pub async fn compare_all_vectors(sql: &SqlVolumeDb) -> usize {
    let vectors = comparable_vectors();
    assert!(!vectors.is_empty(), "no vectors found");
    let mut failures = Vec::new();
    for v in &vectors {
        match compare_vector(v, sql).await {
            Ok(d) if d.is_empty() => {}
            Ok(d) => failures.push(format!("{}:\n{}", v.name, d.join("\n"))),
            Err(e) => failures.push(format!("{}: {e}", v.name)),
        }
    }
    assert!(failures.is_empty(), "{} of {} vectors differ:\n{}", failures.len(), vectors.len(), failures.join("\n\n"));
    vectors.len()
}

/// Property: `volumes_filtered` with a host (or cluster) value answers the
/// rows `HostFilter` (the crate's model of `_filter_host`) matches, in
/// upstream's order (`created_at`, then `id`, descending). Host strings and
/// values are drawn from `alphabet` (a proptest regex).
pub fn host_filter_property(rt: &tokio::runtime::Runtime, db: &SqlVolumeDb, alphabet: &str, cases: u32) {
    use cinder_flow::model::{GiB, HostFilter, Volume, VolumeType};
    use cinder_flow::plan::DbWrite;
    use cinder_flow::sql::VolumeFilter;
    use cinder_flow::testing::db_suite::DbFixture;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let field = proptest::string::string_regex(alphabet).expect("regex");
    let value = proptest::string::string_regex(alphabet).expect("regex").prop_filter("non-empty", |v| !v.is_empty());
    let strategy = (proptest::collection::vec(proptest::option::of(field), 1..8), value, any::<bool>());
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let result = runner.run(&strategy, |(fields, value, cluster)| {
        let (got, want) = rt.block_on(async {
            db.delete_all_rows().await.expect("empty");
            db.add_volume_type(&VolumeType::plain("t", "t")).await.expect("type");
            let base: Timestamp = "2024-01-01T00:00:00Z".parse().expect("constant");
            let mut rows = Vec::new();
            for (i, f) in fields.iter().enumerate() {
                let mut v = Volume::new(format!("v{i}"), "p", GiB(1));
                v.volume_type = "t".into();
                // Two rows per second: the order falls back to the id.
                v.created_at = base.plus_seconds(i as i64 / 2);
                if cluster {
                    v.cluster_name = f.clone();
                } else {
                    v.host = f.as_deref().map(Into::into);
                }
                db.write(&DbWrite::CreateVolume { volume: Box::new(v.clone()) }).await.expect("create");
                rows.push(v);
            }
            let filter = if cluster {
                VolumeFilter::all().in_cluster(value.clone())
            } else {
                VolumeFilter::all().on_host(value.clone())
            };
            let got: Vec<String> =
                db.volumes_filtered(&filter).await.expect("query").iter().map(|v| v.id.to_string()).collect();
            let model = HostFilter::new(value.clone());
            let mut want: Vec<&Volume> = rows
                .iter()
                .filter(|v| {
                    model.matches(if cluster { v.cluster_name.as_deref() } else { v.host.as_ref().map(|h| h.as_str()) })
                })
                .collect();
            want.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
            (got, want.iter().map(|v| v.id.to_string()).collect::<Vec<_>>())
        });
        prop_assert_eq!(got, want, "value {:?} over {:?} (cluster: {})", value, fields, cluster);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
