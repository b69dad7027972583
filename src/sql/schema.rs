//! The schema check made on connecting: Cinder 29's tables are there and
//! `alembic_version` holds Cinder 29.0.0's head revision.

use super::{on_pool, Dialect, Pool, SqlError};

/// Cinder 29.0.0's alembic head (`cinder/db/migrations/versions/`), the
/// revision `cinder-manage db sync` leaves in `alembic_version`.
pub const CINDER_29_HEAD: &str = "9c74c1c6971f";

/// The tables this backend reads or writes (and `alembic_version`); each
/// must exist.
pub(crate) const TABLES: &[&str] = &[
    "alembic_version",
    "default_volume_types",
    "encryption",
    "image_volume_cache_entries",
    "quality_of_service_specs",
    "services",
    "snapshots",
    "transfers",
    "volume_admin_metadata",
    "volume_attachment",
    "volume_glance_metadata",
    "volume_metadata",
    "volume_type_extra_specs",
    "volume_types",
    "volumes",
];

/// Fails with [`SqlError::MissingTables`] or [`SqlError::SchemaVersion`]
/// unless the database is at Cinder 29's head.
pub(crate) async fn check(pool: &Pool) -> Result<(), SqlError> {
    let present: Vec<String> = on_pool!(pool, p, d => {
        let sql = match d {
            Dialect::MySql => "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE()",
            Dialect::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
        };
        sqlx::query_scalar::<_, String>(sql)
            .fetch_all(p)
            .await
            .map_err(|e| SqlError::query("list the tables", e))?
    });
    let mut missing: Vec<String> =
        TABLES.iter().filter(|t| !present.iter().any(|p| p == *t)).map(|t| (*t).to_owned()).collect();
    if !missing.is_empty() {
        missing.sort();
        return Err(SqlError::MissingTables { tables: missing });
    }
    let mut found: Vec<String> = on_pool!(pool, p, _d => {
        sqlx::query_scalar::<_, String>("SELECT version_num FROM alembic_version")
            .fetch_all(p)
            .await
            .map_err(|e| SqlError::query("read alembic_version", e))?
    });
    found.sort();
    if found != [CINDER_29_HEAD] {
        return Err(SqlError::SchemaVersion { found, expected: CINDER_29_HEAD });
    }
    Ok(())
}
