//! The SQL `VolumeDb` against a real MariaDB holding Cinder 29's schema
//! (made by Cinder's migrations): `bash .ci/mariadb.sh start`, then
//! `eval "$(bash .ci/mariadb.sh env)"` sets `CINDER_DATABASE_URL` (and
//! `CINDER_VENV`, `CINDER_CONF`). Without `CINDER_DATABASE_URL` every test
//! here says it skips and passes.
//!
//! Each test works in a database of its own (`cinder_<test>_<pid>`),
//! created on the server with the tables of the URL's database copied by
//! `SHOW CREATE TABLE` (the migrations' schema, foreign keys included) and
//! its seed rows; the URL's user needs the privileges `.ci/mariadb.sh`
//! grants (all on `cinder_%`).
//!
//! * the `VolumeDb` port suite;
//! * every create, delete and API conformance vector: the same plan,
//!   results, calls and final rows as on the in-memory database (a clean
//!   database per vector);
//! * the same with each cluster or Glance call failing in turn (the
//!   executor's undo writes);
//! * `volumes_filtered` matches hosts exactly as `HostFilter` models
//!   upstream's MySQL query (`LIKE BINARY`, unescaped wildcards, case);
//! * rows written by Cinder's own DB API read as the model says, and rows
//!   written here read in Cinder as Cinder's own;
//! * a write that fails halfway commits nothing;
//! * typed errors: bad URL, unreachable server, wrong password, unknown
//!   database, a schema of another Cinder release, a missing table; no
//!   password in any of their texts.
#![cfg(feature = "testing")]

#[path = "../sql_support/mod.rs"]
mod support;

use std::str::FromStr;

use cinder_flow::config::CinderConf;
use cinder_flow::error::{BackendError, BackendErrorKind};
use cinder_flow::model::{GiB, Volume, VolumeType};
use cinder_flow::plan::DbWrite;
use cinder_flow::ports::VolumeDb;
use cinder_flow::sql::{DatabaseUrl, SqlError, SqlOptions, SqlVolumeDb, CINDER_29_HEAD};
use cinder_flow::testing::db_suite::{self, DbFixture};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{Connection, Row};

/// `CINDER_DATABASE_URL`, or `None` after saying the test skips.
fn server_url(test: &str) -> Option<String> {
    match std::env::var("CINDER_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            support::skip(
                test,
                "CINDER_DATABASE_URL is unset (start a throwaway MariaDB with `bash .ci/mariadb.sh start` \
                 and `eval \"$(bash .ci/mariadb.sh env)\"`)",
            );
            None
        }
    }
}

/// The URL's parts: (before the database name, database, query).
fn split(url: &str) -> (String, String, String) {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let (server, db) = base.rsplit_once('/').expect("a database in the URL");
    (server.to_owned(), db.to_owned(), query.to_owned())
}

/// The same server and user, another database.
fn with_database(url: &str, db: &str) -> String {
    let (server, _, query) = split(url);
    if query.is_empty() {
        format!("{server}/{db}")
    } else {
        format!("{server}/{db}?{query}")
    }
}

/// The same URL with another `host:port`.
fn with_host(url: &str, hostport: &str) -> String {
    let (server, db, query) = split(url);
    let userinfo_end = server.rfind('@').expect("userinfo") + 1;
    format!("{}{hostport}/{db}?{query}", &server[..userinfo_end])
}

/// A direct sqlx connection (the URL in sqlx's own form).
async fn raw(url: &str) -> MySqlConnection {
    let (server, db, _) = split(url);
    let server = server.split_once("://").map(|(_, rest)| format!("mysql://{rest}")).expect("scheme");
    let opts = MySqlConnectOptions::from_str(&format!("{server}/{db}")).expect("sqlx options");
    MySqlConnection::connect_with(&opts).await.expect("raw connection")
}

/// Tables with rows the migrations seed (the `__DEFAULT__` type, quota
/// classes, the default group type): copied into test databases.
const SEEDED: &[&str] =
    &["alembic_version", "quota_classes", "group_types", "group_type_specs", "volume_types", "volume_type_extra_specs"];

/// A new database `cinder_<name>_<pid>` with the tables of the URL's
/// database and its seed rows; its URL.
async fn clone_database(url: &str, name: &str) -> String {
    let (_, source, _) = split(url);
    let target = format!("cinder_{name}_{}", std::process::id());
    let mut conn = raw(url).await;
    // Databases left by test processes that ended without cleaning up.
    let stale: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(schema_name AS CHAR) FROM information_schema.schemata WHERE schema_name LIKE 'cinder\\_%'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("list databases");
    for db in stale {
        if let Some(pid) = db.rsplit('_').next().filter(|p| p.parse::<u32>().is_ok()) {
            if !support::process_alive(pid) {
                let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS `{db}`")).execute(&mut conn).await;
            }
        }
    }
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
         WHERE table_schema = ? AND table_type = 'BASE TABLE'",
    )
    .bind(&source)
    .fetch_all(&mut conn)
    .await
    .expect("list tables");
    assert!(tables.len() > 30, "{source} does not look like Cinder's database: {tables:?}");
    let mut script = format!(
        "DROP DATABASE IF EXISTS `{target}`; CREATE DATABASE `{target}` CHARACTER SET utf8mb4; USE `{target}`; \
         SET FOREIGN_KEY_CHECKS = 0;"
    );
    for t in &tables {
        let row = sqlx::query(&format!("SHOW CREATE TABLE `{source}`.`{t}`")).fetch_one(&mut conn).await.expect("ddl");
        let ddl: String = row.try_get(1).expect("ddl text");
        script.push_str(&ddl);
        script.push(';');
    }
    for t in SEEDED {
        script.push_str(&format!("INSERT INTO `{target}`.`{t}` SELECT * FROM `{source}`.`{t}`;"));
    }
    script.push_str("SET FOREIGN_KEY_CHECKS = 1;");
    sqlx::raw_sql(&script).execute(&mut conn).await.unwrap_or_else(|e| panic!("creating {target}: {e}"));
    with_database(url, &target)
}

async fn drop_database(url: &str) {
    let (_, db, _) = split(url);
    let mut conn = raw(url).await;
    let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS `{db}`")).execute(&mut conn).await;
}

async fn connect(url: &str) -> SqlVolumeDb {
    let url = DatabaseUrl::parse(url).expect("url");
    SqlVolumeDb::connect(&url).await.unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

#[tokio::test]
async fn mariadb_passes_the_db_suite() {
    let Some(url) = server_url("mariadb_passes_the_db_suite") else { return };
    let test_url = clone_database(&url, "suite").await;
    let db = connect(&test_url).await;
    let failures = db_suite::run_all(&db, &db, "maria").await;
    assert!(failures.is_empty(), "{failures:#?}");
    let failures = db_suite::run_all(&db, &db, "maria").await;
    assert!(failures.is_empty(), "second run on the same database: {failures:#?}");
    db.close().await;
    drop_database(&test_url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_do_the_same_on_mariadb_as_in_memory() {
    let Some(url) = server_url("vectors_do_the_same_on_mariadb_as_in_memory") else { return };
    let test_url = clone_database(&url, "vectors").await;
    let db = connect(&test_url).await;
    let t = std::time::Instant::now();
    let n = support::compare_all_vectors(&db).await;
    eprintln!("{n} vectors compared on MariaDB in {:.1} s", t.elapsed().as_secs_f64());
    db.close().await;
    drop_database(&test_url).await;
}

/// Each cluster or Glance call of each create and delete vector failing in
/// turn: the executor's undo writes leave the same rows as in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_after_a_failed_step_is_the_same_on_mariadb() {
    let Some(url) = server_url("undo_after_a_failed_step_is_the_same_on_mariadb") else { return };
    let test_url = clone_database(&url, "undo").await;
    let db = connect(&test_url).await;
    let t = std::time::Instant::now();
    let n = support::compare_all_vectors_with_failures(&db).await;
    eprintln!("{n} failing runs compared on MariaDB in {:.1} s", t.elapsed().as_secs_f64());
    db.close().await;
    drop_database(&test_url).await;
}

/// Mixed case too: on MySQL upstream compares with `= BINARY` and `LIKE
/// BINARY`, which is what `HostFilter` models.
#[test]
fn host_filter_matches_upstream_on_mariadb() {
    let Some(url) = server_url("host_filter_matches_upstream_on_mariadb") else { return };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let test_url = rt.block_on(clone_database(&url, "hosts"));
    let db = rt.block_on(connect(&test_url));
    support::host_filter_property(&rt, &db, "[aAbB@#%_]{0,6}", 96);
    rt.block_on(async {
        db.close().await;
        drop_database(&test_url).await;
    });
}

#[tokio::test]
async fn cinder_and_the_sql_backend_read_each_others_rows_on_mariadb() {
    let test = "cinder_and_the_sql_backend_read_each_others_rows_on_mariadb";
    let Some(url) = server_url(test) else { return };
    if support::cinder_manage().is_none() {
        return support::skip(test, support::NO_VENV);
    }
    for (name, cinder_writes) in [("interop_cinder", true), ("interop_ours", false)] {
        let test_url = clone_database(&url, name).await;
        let conf = support::cinder_conf_for(name, &test_url);
        let db = connect(&test_url).await;
        db.delete_all_rows().await.expect("empty");
        let interop = support::Interop::new();
        let result = if cinder_writes {
            interop.cinder_writes_we_read(&db, &conf).await
        } else {
            interop.we_write_cinder_reads(&db, &conf).await
        };
        db.close().await;
        drop_database(&test_url).await;
        if let Err(e) = result {
            panic!("{name}:\n{e}");
        }
    }
}

/// The volume row is inserted before its metadata; a metadata key longer
/// than the column (MariaDB's strict mode refuses it) fails the write,
/// and the transaction leaves no volume behind.
#[tokio::test]
async fn a_failed_write_commits_nothing_on_mariadb() {
    let Some(url) = server_url("a_failed_write_commits_nothing_on_mariadb") else { return };
    let test_url = clone_database(&url, "atomic").await;
    let db = connect(&test_url).await;
    db.add_volume_type(&VolumeType::plain("type-1", "t")).await.expect("type");
    let mut v = Volume::new("11111111-1111-4111-8111-111111111111", "p", GiB(1));
    v.volume_type = "t".into();
    v.metadata.insert("k".repeat(300), "v".into());
    let err = db.write(&DbWrite::CreateVolume { volume: Box::new(v.clone()) }).await.expect_err("too long a key");
    assert!(err.to_string().contains("volume_metadata"), "{err}");
    assert_eq!(db.volume(&v.id).await.expect("read"), None, "the volume row was committed");
    v.metadata.clear();
    db.write(&DbWrite::CreateVolume { volume: Box::new(v.clone()) }).await.expect("the same volume, fixed");
    assert_eq!(db.volume(&v.id).await.expect("read").as_deref(), Some(&v));
    db.close().await;
    drop_database(&test_url).await;
}

/// `CINDER_CONF` (written by `.ci/mariadb.sh start`): the URL and options
/// come from a real cinder.conf.
#[tokio::test]
async fn connects_from_cinder_conf() {
    let Some(_) = server_url("connects_from_cinder_conf") else { return };
    let Some(path) = std::env::var_os("CINDER_CONF") else {
        return support::skip("connects_from_cinder_conf", "CINDER_CONF is unset");
    };
    let conf = CinderConf::read(&path).expect("cinder.conf");
    let url = DatabaseUrl::from_cinder_conf(&conf).expect("[database] connection");
    let db =
        SqlVolumeDb::connect_with(&url, &SqlOptions::from_cinder_conf(&conf).expect("options")).await.expect("connect");
    let default = db.volume_type("__DEFAULT__").await.expect("read").expect("the migrations' default type");
    assert_eq!(default.name, "__DEFAULT__");
    db.close().await;
}

/// Everything a failed connection can say, none of it the password.
fn all_text(e: &SqlError) -> String {
    let mut text = format!("{e}\n{e:?}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!("\n{s}\n{s:?}"));
        source = s.source();
    }
    text
}

fn password_of(url: &str) -> String {
    let (server, _, _) = split(url);
    let userinfo = server.split_once("://").expect("scheme").1.rsplit_once('@').expect("userinfo").0;
    userinfo.split_once(':').expect("a password").1.to_owned()
}

#[tokio::test]
async fn connection_errors_are_typed_and_keep_the_password_out() {
    let Some(url) = server_url("connection_errors_are_typed_and_keep_the_password_out") else { return };
    let password = password_of(&url);
    assert!(password.len() >= 8, "the test needs a real password");
    let quick = SqlOptions::default();
    let attempt = |text: String| {
        let quick = quick.clone();
        async move {
            let url = DatabaseUrl::parse(&text)?;
            SqlVolumeDb::connect_with(&url, &quick).await
        }
    };
    let check = |e: &SqlError, secret: &str| {
        let text = all_text(e);
        assert!(!text.contains(secret), "the password shows in: {text}");
    };

    // A wrong password: access denied, the wrong password not shown either.
    let wrong = format!("{password}-wrong");
    let bad_pw = url.replacen(&format!(":{password}@"), &format!(":{wrong}@"), 1);
    match attempt(bad_pw).await {
        Err(e @ SqlError::AccessDenied { .. }) => {
            check(&e, &wrong);
            assert_eq!(e.kind(), BackendErrorKind::PermissionDenied);
            let as_port = BackendError::from(e);
            assert_eq!(as_port.kind, BackendErrorKind::PermissionDenied);
            assert!(std::error::Error::source(&as_port).is_some(), "the SQL error is the source");
            assert!(!format!("{as_port} {as_port:?}").contains(&wrong));
        }
        other => panic!("a wrong password gave {other:?}"),
    }

    // Nothing listens: a port just freed.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    match attempt(with_host(&url, &format!("127.0.0.1:{free}"))).await {
        Err(e @ SqlError::Unreachable { .. }) => {
            check(&e, &password);
            assert_eq!(e.kind(), BackendErrorKind::Unavailable);
        }
        other => panic!("an unreachable server gave {other:?}"),
    }

    // A database that does not exist.
    match attempt(with_database(&url, "cinder_no_such_database")).await {
        Err(e @ SqlError::UnknownDatabase { .. }) => check(&e, &password),
        other => panic!("an unknown database gave {other:?}"),
    }

    // Bad URLs.
    match attempt(url.replacen("mysql+pymysql://", "postgresql://", 1)).await {
        Err(e @ SqlError::UnsupportedDialect { .. }) => check(&e, &password),
        other => panic!("a postgresql URL gave {other:?}"),
    }
    match attempt(format!("{url}&ssl_ca=/etc/ssl/ca.pem")).await {
        Err(e @ SqlError::UnsupportedOption { .. }) => check(&e, &password),
        other => panic!("a TLS option gave {other:?}"),
    }
    match attempt(with_host(&url, "127.0.0.1:99999")).await {
        Err(e @ SqlError::InvalidUrl { .. }) => check(&e, &password),
        other => panic!("a bad port gave {other:?}"),
    }

    // The working URL: connected, and the password nowhere in its Debug.
    let db = attempt(url.clone()).await.expect("the right URL connects");
    assert!(!format!("{db:?}").contains(&password), "{db:?}");
    db.close().await;
}

#[tokio::test]
async fn a_schema_of_another_release_is_refused() {
    let Some(url) = server_url("a_schema_of_another_release_is_refused") else { return };
    let password = password_of(&url);
    let test_url = clone_database(&url, "release").await;
    let mut conn = raw(&test_url).await;
    // The revision before Cinder 29's head (a database not yet upgraded).
    sqlx::raw_sql("UPDATE alembic_version SET version_num = 'b7b88f50aab5'").execute(&mut conn).await.expect("u");
    let parsed = DatabaseUrl::parse(&test_url).expect("url");
    match SqlVolumeDb::connect(&parsed).await {
        Err(e @ SqlError::SchemaVersion { .. }) => {
            let text = all_text(&e);
            assert!(text.contains("b7b88f50aab5") && text.contains(CINDER_29_HEAD), "{text}");
            assert!(!text.contains(&password));
        }
        other => panic!("another release gave {other:?}"),
    }
    sqlx::raw_sql(&format!("UPDATE alembic_version SET version_num = '{CINDER_29_HEAD}'"))
        .execute(&mut conn)
        .await
        .expect("u");
    SqlVolumeDb::connect(&parsed).await.expect("back at the head").close().await;
    sqlx::raw_sql("SET FOREIGN_KEY_CHECKS = 0; DROP TABLE image_volume_cache_entries")
        .execute(&mut conn)
        .await
        .expect("drop");
    match SqlVolumeDb::connect(&parsed).await {
        Err(SqlError::MissingTables { tables }) => assert_eq!(tables, ["image_volume_cache_entries"]),
        other => panic!("a missing table gave {other:?}"),
    }
    drop(conn);
    drop_database(&test_url).await;
}
