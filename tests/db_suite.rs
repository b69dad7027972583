//! The `VolumeDb` conformance suite (`cinder_flow::testing::db_suite`) on
//! the in-memory database: the reference every other backend is held to.
#![cfg(feature = "testing")]

use cinder_flow::memory::MemoryVolumeDb;
use cinder_flow::testing::db_suite;

#[tokio::test]
async fn the_memory_database_passes_the_db_suite() {
    let db = MemoryVolumeDb::new();
    let failures = db_suite::run_all(&db, &db, "mem").await;
    assert!(failures.is_empty(), "{failures:#?}");
    // Twice on the same database: the checks make rows of their own.
    let failures = db_suite::run_all(&db, &db, "mem").await;
    assert!(failures.is_empty(), "second run: {failures:#?}");
}
