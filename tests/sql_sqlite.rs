//! The SQL `VolumeDb` on SQLite, with no server: Cinder 29's schema is made
//! by Cinder's own migrations (`cinder-manage db sync` from the venv that
//! `.ci/mariadb.sh install` creates, or `$CINDER_VENV`) on a scratch file.
//! Without the venv every test here says it skips and passes.
//!
//! * the `VolumeDb` port suite;
//! * every create, delete and API conformance vector gives the same plan,
//!   results and final rows as on the in-memory database, also with each
//!   cluster or Glance call failing in turn (the executor's undo writes);
//! * `volumes_filtered` matches hosts as upstream's `_filter_host` does on
//!   SQLite (`LIKE` without case for ASCII letters);
//! * typed errors for a missing file, an empty database and a database at
//!   another alembic revision.
#![cfg(all(feature = "sql", feature = "testing"))]

#[path = "sql_support/mod.rs"]
mod support;

use cinder_flow::model::VolumeType;
use cinder_flow::model::{GiB, HostFilter, Volume};
use cinder_flow::plan::DbWrite;
use cinder_flow::ports::VolumeDb;
use cinder_flow::sql::{DatabaseUrl, SqlError, SqlVolumeDb, VolumeFilter, CINDER_29_HEAD};
use cinder_flow::testing::db_suite::{self, DbFixture};

use support::{fresh_sqlite_file, skip, NO_VENV};

async fn fresh(test: &str) -> Option<SqlVolumeDb> {
    let Some((_, url)) = fresh_sqlite_file(test) else {
        skip(test, NO_VENV);
        return None;
    };
    Some(
        SqlVolumeDb::connect_with(&url, &support::scratch_options())
            .await
            .unwrap_or_else(|e| panic!("connecting to {url}: {e}")),
    )
}

#[tokio::test]
async fn sqlite_passes_the_db_suite() {
    let Some(db) = fresh("sqlite_passes_the_db_suite").await else { return };
    let failures = db_suite::run_all(&db, &db, "sqlite").await;
    assert!(failures.is_empty(), "{failures:#?}");
    let failures = db_suite::run_all(&db, &db, "sqlite").await;
    assert!(failures.is_empty(), "second run on the same database: {failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_do_the_same_on_sqlite_as_in_memory() {
    let Some(db) = fresh("vectors_do_the_same_on_sqlite_as_in_memory").await else { return };
    let t = std::time::Instant::now();
    let n = support::compare_all_vectors(&db).await;
    eprintln!("{n} vectors compared on SQLite in {:.1} s", t.elapsed().as_secs_f64());
}

/// Hosts made of lowercase letters and the characters `_filter_host`
/// treats specially: SQLite's `LIKE` ignores case, so with lowercase only
/// upstream's SQLite query and the crate's `HostFilter` must agree.
#[test]
fn host_filter_matches_upstream_on_sqlite() {
    let test = "host_filter_matches_upstream_on_sqlite";
    let Some((_, url)) = fresh_sqlite_file(test) else { return skip(test, NO_VENV) };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let db = rt.block_on(SqlVolumeDb::connect_with(&url, &support::scratch_options())).expect("connect");
    support::host_filter_property(&rt, &db, "[ab@#%_]{0,6}", 64);
    // And the case difference, which upstream has on SQLite (and not on
    // MySQL, where it compares with `LIKE BINARY`).
    rt.block_on(async {
        db.delete_all_rows().await.expect("empty");
        db.add_volume_type(&VolumeType::plain("t", "t")).await.expect("type");
        let mut v = Volume::new("v1", "p", GiB(1)).on_host("HostA@Ceph#Fast");
        v.volume_type = "t".into();
        db.write(&DbWrite::CreateVolume { volume: Box::new(v) }).await.expect("create");
        let found = db.volumes_filtered(&VolumeFilter::all().on_host("hosta@ceph")).await.expect("query");
        assert_eq!(found.len(), 1, "SQLite's LIKE ignores ASCII case");
        assert!(!HostFilter::new("hosta@ceph").matches(Some("HostA@Ceph#Fast")), "the model is MySQL's");
        let found = db.volumes_filtered(&VolumeFilter::all().on_host("hosta@ceph#fast")).await.expect("query");
        assert!(found.is_empty(), "the pool level compares with =, which is case-sensitive");
    });
}

#[tokio::test]
async fn sqlite_errors_are_typed() {
    let test = "sqlite_errors_are_typed";
    let missing = support::scratch_dir().join("no-such-dir/cinder.sqlite");
    let url = DatabaseUrl::parse(&format!("sqlite:///{}", missing.display())).expect("url");
    match SqlVolumeDb::connect(&url).await {
        Err(SqlError::Unreachable { location, .. }) => assert!(location.ends_with("no-such-dir/cinder.sqlite")),
        other => panic!("a missing file gave {other:?}"),
    }
    // An empty database (a file that is not Cinder's).
    let empty = support::scratch_dir().join("empty.sqlite");
    std::fs::write(&empty, b"").expect("empty file");
    let url = DatabaseUrl::parse(&format!("sqlite:///{}", empty.display())).expect("url");
    match SqlVolumeDb::connect(&url).await {
        Err(SqlError::MissingTables { tables }) => assert!(tables.contains(&"volumes".to_owned()), "{tables:?}"),
        other => panic!("an empty database gave {other:?}"),
    }
    let Some((file, url)) = fresh_sqlite_file("other-release") else { return skip(test, NO_VENV) };
    // A database of another release: the revision before Cinder 29's head.
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display())).await.expect("raw connection");
    sqlx::query("UPDATE alembic_version SET version_num = 'b7b88f50aab5'").execute(&raw).await.expect("update");
    match SqlVolumeDb::connect(&url).await {
        Err(e @ SqlError::SchemaVersion { .. }) => {
            let text = e.to_string();
            assert!(text.contains("b7b88f50aab5") && text.contains(CINDER_29_HEAD), "{text}");
        }
        other => panic!("another release gave {other:?}"),
    }
    sqlx::query("UPDATE alembic_version SET version_num = ?").bind(CINDER_29_HEAD).execute(&raw).await.expect("u");
    sqlx::query("DROP TABLE image_volume_cache_entries").execute(&raw).await.expect("drop");
    match SqlVolumeDb::connect(&url).await {
        Err(SqlError::MissingTables { tables }) => assert_eq!(tables, ["image_volume_cache_entries"]),
        other => panic!("a missing table gave {other:?}"),
    }
}

/// Rows Cinder's own DB API writes read as the model says; rows this
/// backend writes read in Cinder as Cinder would have written them.
#[tokio::test]
async fn cinder_and_the_sql_backend_read_each_others_rows_on_sqlite() {
    let test = "cinder_and_the_sql_backend_read_each_others_rows_on_sqlite";
    for (name, cinder_writes) in [("interop-cinder-writes", true), ("interop-we-write", false)] {
        let Some((file, url)) = fresh_sqlite_file(name) else { return skip(test, NO_VENV) };
        let conf = support::cinder_conf_for(name, &format!("sqlite:///{}", file.display()));
        let db = SqlVolumeDb::connect_with(&url, &support::scratch_options()).await.expect("connect");
        db.delete_all_rows().await.expect("empty");
        let interop = support::Interop::new();
        let result = if cinder_writes {
            interop.cinder_writes_we_read(&db, &conf).await
        } else {
            interop.we_write_cinder_reads(&db, &conf).await
        };
        if let Err(e) = result {
            panic!("{name}:\n{e}");
        }
    }
}

/// Each cluster or Glance call of each create and delete vector failing in
/// turn: the undo writes leave the same rows as in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_after_a_failed_step_is_the_same_on_sqlite() {
    let Some(db) = fresh("undo_after_a_failed_step_is_the_same_on_sqlite").await else { return };
    let t = std::time::Instant::now();
    let n = support::compare_all_vectors_with_failures(&db).await;
    eprintln!("{n} failing runs compared on SQLite in {:.1} s", t.elapsed().as_secs_f64());
}
