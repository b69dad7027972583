//! Shared by the SQL backend's tests (`tests/sql_sqlite.rs`,
//! `tests/real_cloud/sql.rs`): Cinder's schema on SQLite from the venv's
//! `cinder-manage db sync`, and the comparison of whole conformance
//! vectors between the in-memory database and a SQL one.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cinder_flow::conformance::{api_request_of, build_world, read_file, vector_files, Vector, World};
use cinder_flow::memory::DbContents;
use cinder_flow::model::Timestamp;
use cinder_flow::plan::Plan;
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

/// A scratch directory of this test process under target/ (those of
/// test processes that have ended are removed on first use).
pub fn scratch_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::current_dir().expect("cwd").join("target/sql-tests");
        for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.parse::<u32>().is_ok() && !Path::new("/proc").join(&name).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = base.join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
    .clone()
}

/// Whether a process with this id is running (test databases and files
/// are named after the process that made them).
pub fn process_alive(pid: &str) -> bool {
    Path::new("/proc").join(pid).exists()
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
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
            tail(&String::from_utf8_lossy(&out.stderr), 20)
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
    match cinder_flow::conformance::request_of(v) {
        Ok(cinder_flow::conformance::VectorRequest::Manager(request)) => Some(request),
        _ => None,
    }
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
    run_vector_failing(v, sql, None).await.map(|(run, _)| run)
}

/// [`run_vector`], with the `fail`-th cluster or Glance call (0-based)
/// failing (`Unavailable`) when given, so that the executor undoes the
/// database writes made before it. Also answers how many cluster and
/// Glance calls the run made.
pub async fn run_vector_failing(
    v: &Vector,
    sql: Option<&SqlVolumeDb>,
    fail: Option<usize>,
) -> Result<(Run, usize), String> {
    let world = build_world(v).map_err(|e| e.to_string())?;
    let faults = cinder_flow::memory::FaultInjector::new();
    let World { cluster, images, db: memory_db, journal, config } = world;
    let cluster = cluster.with_faults(faults.clone());
    let images = images.with_faults(faults.clone());
    let db: &dyn VolumeDb = match sql {
        Some(s) => {
            s.delete_all_rows().await.map_err(|e| format!("emptying: {e}"))?;
            db_suite::load(s, s, &memory_db.contents()).await.map_err(|e| format!("loading: {e}"))?;
            s.queue_fresh_ids(fresh_ids());
            s
        }
        None => &memory_db,
    };
    let backends = Backends { driver: &cluster, images: &images, db };
    let (plan, result) = if let Some(kind) = api_kind(v) {
        let request = api_request_of(v).map_err(|e| e.to_string())?;
        let result = match shell::api_request(backends, &request, kind, &config).await {
            Ok((r, _facts)) => format!("{r:?}"),
            Err(e) => format!("gathering failed: {e}"),
        };
        (None, result)
    } else {
        let request = request_of(v).ok_or("neither a manager nor an API vector")?;
        match shell::plan(backends, &request, &config, &Policy::faithful()).await {
            Ok((plan, _facts)) => {
                if let Some(n) = fail {
                    faults.fail_call(n, cinder_flow::error::BackendErrorKind::Unavailable);
                }
                let exec = match shell::execute(&plan, backends, &ExecOptions::default()).await {
                    Ok(report) => format!("{report:?}"),
                    Err(d) => format!("diverged: {d}; undone: {:?}", d.undone),
                };
                (Some(plan), exec)
            }
            Err(e) => (None, format!("planning failed: {e}")),
        }
    };
    let rows = match sql {
        Some(s) => s.contents().await.map_err(|e| format!("reading back: {e}"))?,
        None => memory_db.contents(),
    };
    let journal = journal.entries().iter().map(|e| format!("{e:?}")).collect();
    Ok((Run { plan, result, journal, rows }, faults.calls()))
}

/// The differences between the vector's run in memory and on `sql`.
pub async fn compare_vector(v: &Vector, sql: &SqlVolumeDb) -> Result<Vec<String>, String> {
    let memory = run_vector(v, None).await?;
    let other = run_vector(v, Some(sql)).await?;
    Ok(differences(memory, &other, sql))
}

fn differences(mut memory: Run, other: &Run, sql: &SqlVolumeDb) -> Vec<String> {
    if sql.url().dialect() == "mysql" {
        // Cinder's DATETIME columns hold whole seconds on MySQL (MariaDB
        // truncates): so does every timestamp the SQL side can give back.
        to_whole_seconds(&mut memory.rows);
    }
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
    diffs
}

/// Every manager vector again with each of its cluster and Glance calls
/// failing in turn: the executor undoes what was done before the failure,
/// through the SQL database's writes, and the outcome, the calls and the
/// final rows must be those of the in-memory run with the same failure.
/// Returns how many failing runs were compared.
pub async fn compare_all_vectors_with_failures(sql: &SqlVolumeDb) -> usize {
    let mut failures = Vec::new();
    let mut runs = 0;
    for v in comparable_vectors().iter().filter(|v| request_of(v).is_some()) {
        let calls = match run_vector_failing(v, None, None).await {
            Ok((_, calls)) => calls,
            Err(e) => {
                failures.push(format!("{}: {e}", v.name));
                continue;
            }
        };
        for n in 0..calls {
            runs += 1;
            let pair = async {
                let (memory, _) = run_vector_failing(v, None, Some(n)).await?;
                let (other, _) = run_vector_failing(v, Some(sql), Some(n)).await?;
                Ok::<_, String>(differences(memory, &other, sql))
            };
            match pair.await {
                Ok(d) if d.is_empty() => {}
                Ok(d) => failures.push(format!("{} failing call {n}:\n{}", v.name, d.join("\n"))),
                Err(e) => failures.push(format!("{} failing call {n}: {e}", v.name)),
            }
        }
    }
    assert!(failures.is_empty(), "{} failing runs differ:\n{}", failures.len(), failures.join("\n\n"));
    runs
}

fn to_whole_seconds(rows: &mut DbContents) {
    let whole = |t: &mut Timestamp| *t = Timestamp::from_unix(t.unix()).expect("in range");
    for v in rows.volumes.values_mut() {
        whole(&mut v.created_at);
    }
    for e in rows.cache.values_mut() {
        whole(&mut e.image_updated_at);
        whole(&mut e.last_used);
    }
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

// ---- Interop with Cinder's own DB API -------------------------------------

/// A `cinder.conf` for `url` next to the scratch files (0600: a MySQL URL
/// holds the password).
pub fn cinder_conf_for(name: &str, url: &str) -> PathBuf {
    let dir = scratch_dir();
    let conf = dir.join(format!("{name}.conf"));
    std::fs::write(
        &conf,
        format!("[DEFAULT]\nstate_path = {d}\nlock_path = {d}\n[database]\nconnection = {url}\n", d = dir.display()),
    )
    .expect("write conf");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    conf
}

/// Runs tests/sql_support/cinder_rows.py in the venv.
fn cinder_rows(mode: &str, conf: &Path, spec: &Value) -> Result<Value, String> {
    let manage = cinder_manage().ok_or(NO_VENV)?;
    let python = manage.with_file_name("python");
    let spec_file = conf.with_extension("spec.json");
    std::fs::write(&spec_file, serde_json::to_vec(spec).expect("json")).map_err(|e| e.to_string())?;
    let out = Command::new(python)
        .arg("tests/sql_support/cinder_rows.py")
        .arg(mode)
        .arg(conf)
        .arg(&spec_file)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "cinder_rows.py {mode} failed: {}\n{}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 12)
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("");
    serde_json::from_str(last).map_err(|e| format!("cinder_rows.py {mode} printed {last:?}: {e}"))
}

/// One situation, written by one side and read by the other.
pub struct Interop {
    pub spec: Value,
    r: String,
}

impl Interop {
    pub fn new() -> Self {
        let r = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let id = |n: u32| format!("{r}-{n:04x}-4000-8000-000000000000");
        let project = format!("project-{r}");
        let other = format!("other-{r}");
        let volume = |n: u32, size: u64, host: &str, project: &str, deleted: bool| {
            serde_json::json!({
                "id": id(n), "size": size, "host": host, "cluster_name": null, "project_id": project,
                "user_id": format!("user-{r}"), "status": "available", "availability_zone": "nova",
                "bootable": false, "use_quota": true, "encryption_key_id": null,
                "created_at": format!("2024-03-04T05:06:{n:02}Z"), "metadata": {}, "admin_metadata": {},
                "deleted": deleted,
            })
        };
        let mut v1 = volume(1, 3, "hostA@ceph#fast", &project, false);
        v1["bootable"] = true.into();
        v1["encryption_key_id"] = id(100).into();
        v1["metadata"] = serde_json::json!({"image_owner": format!("owner-{r}"), "k": "v"});
        v1["admin_metadata"] = serde_json::json!({"readonly": "True"});
        let mut v2 = volume(2, 5, "hostA@ceph2#fast", &project, false);
        v2["use_quota"] = false.into();
        let v3 = volume(3, 7, "hostA@ceph#slow", &project, true);
        let v4 = volume(4, 1, "hostA@ceph", &other, false);
        let spec = serde_json::json!({
            "project_id": project,
            "backend": "hostA@ceph",
            "type": {
                "id": id(10), "name": format!("gold-{r}"),
                "extra_specs": {"multiattach": "<is> True", "RESKEY:availability_zones": "nova"},
                "encryption": {"provider": "luks", "cipher": "aes-xts-plain64", "key_size": 256,
                               "control_location": "front-end"},
                "qos_name": format!("qos-{r}"), "qos_specs": {"read_iops_sec": "100"},
            },
            "volumes": [v1, v2, v3, v4],
            "snapshots": [
                {"id": id(20), "volume_id": id(1), "volume_size": 3, "status": "available", "project_id": project},
                {"id": id(21), "volume_id": id(4), "volume_size": 2, "status": "available", "project_id": other},
            ],
            "services": [
                {"host": "hostA@ceph", "binary": "cinder-volume", "topic": "cinder-volume",
                 "availability_zone": "nova", "disabled": false},
                {"host": "hostB@ceph", "binary": "cinder-volume", "topic": "cinder-volume",
                 "availability_zone": "az2", "disabled": true},
            ],
            "cache": {"image_id": id(30), "host": "hostA@ceph#fast", "cluster_name": null, "volume_id": id(1),
                      "size": 3, "image_updated_at": "2024-01-02T03:04:05Z"},
            "glance": {"volume_id": id(1), "metadata": {"image_id": id(30), "disk_format": "raw"}},
        });
        Self { spec, r }
    }

    fn s(&self, path: &[&str]) -> String {
        let mut v = &self.spec;
        for p in path {
            v = match p.parse::<usize>() {
                Ok(i) => &v[i],
                Err(_) => &v[*p],
            };
        }
        v.as_str().unwrap_or_else(|| panic!("{path:?} is not a string")).to_owned()
    }

    /// The spec's volumes as the model has them.
    pub fn volumes(&self) -> Vec<(cinder_flow::model::Volume, bool)> {
        use cinder_flow::model::{GiB, Volume};
        let type_name = self.s(&["type", "name"]);
        self.spec["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .map(|v| {
                let text = |k: &str| v[k].as_str().map(str::to_owned);
                let map = |k: &str| -> std::collections::BTreeMap<String, String> {
                    serde_json::from_value(v[k].clone()).expect("map")
                };
                let mut vol =
                    Volume::new(text("id").unwrap(), text("project_id").unwrap(), GiB(v["size"].as_u64().unwrap()));
                vol.host = text("host").map(Into::into);
                vol.user_id = text("user_id").unwrap().into();
                vol.status = text("status").unwrap().into();
                vol.volume_type = type_name.clone();
                vol.encryption_key_id = text("encryption_key_id");
                vol.availability_zone = text("availability_zone").unwrap();
                vol.bootable = v["bootable"].as_bool().unwrap();
                vol.use_quota = v["use_quota"].as_bool().unwrap();
                vol.metadata = map("metadata");
                vol.admin_metadata = map("admin_metadata");
                vol.created_at = text("created_at").unwrap().parse().unwrap();
                (vol, v["deleted"].as_bool().unwrap())
            })
            .collect()
    }

    pub fn volume_type(&self) -> cinder_flow::model::VolumeType {
        use cinder_flow::model::{Encryption, VolumeType};
        let t = &self.spec["type"];
        let mut vt = VolumeType::plain(self.s(&["type", "id"]), self.s(&["type", "name"]));
        vt.extra_specs = serde_json::from_value(t["extra_specs"].clone()).expect("specs");
        vt.qos_specs = serde_json::from_value(t["qos_specs"].clone()).expect("qos");
        vt.encryption = Some(Encryption {
            provider: "luks".into(),
            cipher: Some("aes-xts-plain64".into()),
            key_size: Some(256),
            control_location: "front-end".into(),
        });
        vt
    }

    pub fn snapshots(&self) -> Vec<cinder_flow::model::Snapshot> {
        use cinder_flow::model::{GiB, Snapshot};
        self.spec["snapshots"]
            .as_array()
            .expect("snapshots")
            .iter()
            .map(|s| Snapshot {
                id: s["id"].as_str().unwrap().into(),
                volume_id: s["volume_id"].as_str().unwrap().into(),
                volume_size: GiB(s["volume_size"].as_u64().unwrap()),
                status: s["status"].as_str().unwrap().into(),
                project_id: s["project_id"].as_str().unwrap().into(),
                encryption_key_id: None,
            })
            .collect()
    }

    pub fn services(&self) -> Vec<cinder_flow::model::Service> {
        serde_json::from_value(self.spec["services"].clone()).expect("services")
    }

    fn cache_entry(&self, last_used: Timestamp) -> cinder_flow::model::CacheEntry {
        let c = &self.spec["cache"];
        cinder_flow::model::CacheEntry {
            image_id: c["image_id"].as_str().unwrap().into(),
            host: c["host"].as_str().map(Into::into),
            cluster_name: None,
            volume_id: c["volume_id"].as_str().unwrap().into(),
            size: cinder_flow::model::GiB(c["size"].as_u64().unwrap()),
            image_updated_at: c["image_updated_at"].as_str().unwrap().parse().unwrap(),
            last_used,
        }
    }

    fn glance(&self) -> std::collections::BTreeMap<String, String> {
        serde_json::from_value(self.spec["glance"]["metadata"].clone()).expect("glance")
    }

    /// Cinder's DB API writes the rows; the SQL backend must read them as
    /// the model says.
    pub async fn cinder_writes_we_read(&self, db: &SqlVolumeDb, conf: &Path) -> Result<(), String> {
        use cinder_flow::facts::{CacheLocation, ProjectUsage};
        use cinder_flow::sql::VolumeFilter;
        use cinder_flow::testing::db_suite::DbFixture;
        cinder_rows("write", conf, &self.spec)?;
        let e = |e: cinder_flow::error::BackendError| e.to_string();
        let mut problems = Vec::new();
        let mut check = |what: &str, ok: bool, detail: String| {
            if !ok {
                problems.push(format!("{what}: {detail}"));
            }
        };
        let volumes = self.volumes();
        for (v, deleted) in &volumes {
            let got = db.volume(&v.id).await.map_err(e)?;
            let want = (!deleted).then(|| v.clone());
            check(&format!("volume {}", v.id), got.as_deref() == want.as_ref(), format!("{got:?} != {want:?}"));
        }
        let ids: Vec<_> = volumes.iter().map(|(v, _)| v.id.clone()).collect();
        let mut got: Vec<String> = db.volumes(&ids).await.map_err(e)?.iter().map(|v| v.id.to_string()).collect();
        got.sort();
        let want: Vec<String> = volumes.iter().filter(|(_, d)| !d).map(|(v, _)| v.id.to_string()).collect();
        check("volumes()", got == want, format!("{got:?} != {want:?}"));
        let t = self.volume_type();
        for key in [&t.name, &t.id] {
            let got = db.volume_type(key).await.map_err(e)?;
            check(&format!("volume_type({key})"), got.as_ref() == Some(&t), format!("{got:?} != {t:?}"));
        }
        for s in self.snapshots() {
            let got = db.snapshot(&s.id).await.map_err(e)?;
            check(&format!("snapshot {}", s.id), got.as_ref() == Some(&s), format!("{got:?} != {s:?}"));
        }
        let mut services = db.services().await.map_err(e)?;
        services.sort_by(|a, b| a.host.cmp(&b.host));
        check("services", services == self.services(), format!("{services:?}"));
        let project: cinder_flow::model::ProjectId = self.s(&["project_id"]).into();
        let default = db.project_default_volume_type(&project).await.map_err(e)?;
        check("default type", default.as_deref() == Some(t.id.as_str()), format!("{default:?}"));
        let usage = db.project_usage(&project).await.map_err(e)?;
        let want = ProjectUsage { volumes: 1, volume_gigabytes: 3, snapshots: 1, snapshot_gigabytes: 3 };
        check("usage", usage == want, format!("{usage:?} != {want:?}"));
        // last_used is Cinder's utcnow at the write: compare the rest.
        let entries = db.cache_entries_of_image(&self.s(&["cache", "image_id"]).into()).await.map_err(e)?;
        let stamped: Vec<_> = entries.iter().map(|x| self.cache_entry(x.last_used)).collect();
        check("cache of image", entries.len() == 1 && entries == stamped, format!("{entries:?}"));
        let at = CacheLocation { host: Some(self.s(&["cache", "host"])), cluster_name: None };
        let entries_at = db.cache_entries_at(&at).await.map_err(e)?;
        check("cache at host", entries_at == entries, format!("{entries_at:?}"));
        let glance = db.glance_metadata(&self.s(&["glance", "volume_id"]).into()).await?;
        check("glance metadata", glance == self.glance(), format!("{glance:?}"));
        let on_backend = db.volumes_filtered(&VolumeFilter::all().on_host(self.s(&["backend"]))).await.map_err(e)?;
        let got: Vec<String> = on_backend.iter().map(|v| v.id.to_string()).collect();
        // created_at descending: volume 4 was created after volume 1.
        let want = vec![self.s(&["volumes", "3", "id"]), self.s(&["volumes", "0", "id"])];
        check("volumes on the backend", got == want, format!("{got:?} != {want:?}"));
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// The SQL backend writes the rows (through the port and the
    /// fixture); Cinder's objects and DB API must read them as Cinder
    /// would have written them.
    pub async fn we_write_cinder_reads(&self, db: &SqlVolumeDb, conf: &Path) -> Result<(), String> {
        use cinder_flow::plan::DbWrite;
        use cinder_flow::testing::db_suite::DbFixture;
        let e = |e: cinder_flow::error::BackendError| e.to_string();
        db.add_volume_type(&self.volume_type()).await?;
        for (v, deleted) in self.volumes() {
            db.write(&DbWrite::CreateVolume { volume: Box::new(v.clone()) }).await.map_err(e)?;
            if deleted {
                db.write(&DbWrite::DeleteVolumeRow { volume_id: v.id.clone() }).await.map_err(e)?;
            }
        }
        for s in self.snapshots() {
            db.add_snapshot(&s).await?;
        }
        for s in self.services() {
            db.add_service(&s).await?;
        }
        let t = self.volume_type();
        db.set_project_default_volume_type(&self.s(&["project_id"]).into(), &t.id).await?;
        let entry = self.cache_entry("2024-05-06T07:08:09Z".parse().expect("constant"));
        db.write(&DbWrite::CreateCacheEntry { entry }).await.map_err(e)?;
        db.write(&DbWrite::SetGlanceMetadata {
            volume_id: self.s(&["glance", "volume_id"]).into(),
            metadata: self.glance(),
        })
        .await
        .map_err(e)?;
        let seen = cinder_rows("read", conf, &self.spec)?;
        let mut want = serde_json::json!({"volumes": {}, "glance": {}});
        for (v, deleted) in self.volumes() {
            let id = v.id.to_string();
            if deleted {
                want["volumes"][&id] = "VolumeNotFound".into();
                continue;
            }
            want["volumes"][&id] = serde_json::json!({
                "size": v.size.0, "host": v.host.as_ref().map(|h| h.to_string()), "cluster_name": null,
                "project_id": v.project_id.as_str(), "user_id": v.user_id.as_str(), "status": v.status.as_str(),
                "attach_status": "detached", "availability_zone": v.availability_zone, "bootable": v.bootable,
                "use_quota": v.use_quota, "volume_type": t.name, "encryption_key_id": v.encryption_key_id,
                "created_at": v.created_at.to_string(), "metadata": v.metadata, "admin_metadata": v.admin_metadata,
            });
            want["glance"][&id] = if id == self.s(&["glance", "volume_id"]) {
                serde_json::to_value(self.glance()).unwrap()
            } else {
                serde_json::json!({})
            };
        }
        want["type"] = serde_json::json!({
            "id": t.id, "name": t.name, "extra_specs": t.extra_specs,
            "encryption": {"provider": "luks", "cipher": "aes-xts-plain64", "key_size": 256, "control_location": "front-end"},
            "qos_specs": t.qos_specs,
        });
        want["snapshots"] = self
            .snapshots()
            .iter()
            .map(|s| {
                (
                    s.id.to_string(),
                    serde_json::json!({"volume_id": s.volume_id.as_str(), "volume_size": s.volume_size.0,
                                       "status": s.status, "project_id": s.project_id.as_str()}),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into();
        want["services"] = self.spec["services"].clone();
        want["default_type"] = t.id.clone().into();
        want["usage"] = serde_json::json!({"volumes": 1, "snapshots": 1, "gigabytes": 6});
        let c = &self.spec["cache"];
        want["cache"] = serde_json::json!([{
            "image_id": c["image_id"], "host": c["host"], "cluster_name": null, "volume_id": c["volume_id"],
            "size": c["size"], "image_updated_at": c["image_updated_at"],
        }]);
        let mut on_backend = vec![self.s(&["volumes", "0", "id"]), self.s(&["volumes", "3", "id"])];
        on_backend.sort();
        want["on_backend"] = on_backend.into();
        if seen == want {
            Ok(())
        } else {
            Err(format!("Cinder read\n  {seen}\nexpected\n  {want}\n(run {})", self.r))
        }
    }
}
