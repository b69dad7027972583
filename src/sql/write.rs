//! Writes: each [`DbWrite`] in a transaction of its own (nothing of a
//! failed write is committed), with the in-memory backend's semantics
//! where Cinder's schema allows (see [`SqlVolumeDb`](super::SqlVolumeDb)).

use crate::error::{BackendError, BackendErrorKind};
use crate::model::{CacheEntry, Volume, VolumeId};
use crate::plan::{DbWrite, VolumeUpdate};
use crate::ports::BackendResult;

use super::rows::{now_param, time_param, Cols};
use super::{on_pool, Dialect, Pool, SqlError};

/// A bound value.
#[derive(Clone, Debug)]
enum Param {
    Text(Option<String>),
    Int(Option<i64>),
}

fn text(s: impl Into<String>) -> Param {
    Param::Text(Some(s.into()))
}

fn opt_text(s: Option<&str>) -> Param {
    Param::Text(s.map(str::to_owned))
}

fn int(i: i64) -> Param {
    Param::Int(Some(i))
}

/// Binds `params` in order.
macro_rules! bind_all {
    ($q:expr, $params:expr) => {{
        let mut q = $q;
        for param in $params {
            q = match param {
                Param::Text(t) => q.bind(t.clone()),
                Param::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

/// `col` equal to a key, exactly: on MySQL the indexed (case-insensitive)
/// comparison narrows the rows and a binary one keeps exact matches.
fn exact(d: Dialect, col: &str, key: &str, params: &mut Vec<Param>) -> String {
    match d {
        Dialect::MySql => {
            params.push(text(key));
            params.push(text(key));
            format!("({col} = ? AND BINARY {col} = ?)")
        }
        Dialect::Sqlite => {
            params.push(text(key));
            format!("{col} = ?")
        }
    }
}

/// `NotFound` for `write`, worded as the in-memory backend words it (the
/// port's errors compare by kind and operation).
fn missing(write: &DbWrite) -> BackendError {
    BackendError::new(BackendErrorKind::NotFound, format!("database write: {write}"))
}

fn failed(operation: String) -> impl FnOnce(sqlx::Error) -> BackendError {
    move |e| BackendError::from(SqlError::query(operation, e))
}

fn sql_err(e: SqlError) -> BackendError {
    BackendError::from(e)
}

/// Size in GiB as Cinder's `INT` columns hold it.
fn gib(v: u64, what: &str) -> BackendResult<i64> {
    i64::try_from(v).map_err(|_| {
        BackendError::new(BackendErrorKind::InvalidArgument, format!("{what}: size {v} does not fit the column"))
    })
}

/// Performs one write in its own transaction.
pub(crate) async fn apply(pool: &Pool, write: &DbWrite) -> BackendResult<()> {
    match write {
        DbWrite::UpdateVolume { volume_id, set, .. } => update_volume(pool, write, volume_id, set).await,
        DbWrite::CreateVolume { volume } => create_volume(pool, write, volume).await,
        DbWrite::DeleteVolumeRow { volume_id } => destroy_volume(pool, write, volume_id).await,
        DbWrite::CreateCacheEntry { entry } => create_cache_entry(pool, entry).await,
        DbWrite::DeleteCacheEntry { volume_id } => delete_cache_entry(pool, volume_id).await,
        DbWrite::TouchCacheEntry { volume_id, last_used, .. } => {
            let d = dialect(pool);
            let mut params = vec![text(time_param(d, *last_used).map_err(sql_err)?)];
            let cond = exact(d, "volume_id", volume_id.as_str(), &mut params);
            let sql = format!("UPDATE image_volume_cache_entries SET last_used = ? WHERE {cond}");
            run_one(pool, &sql, &params, format!("touch the cache entry of volume {volume_id}")).await.map(|_| ())
        }
        DbWrite::EvictCacheEntry { entry } => delete_cache_entry(pool, &entry.volume_id).await,
        DbWrite::SetGlanceMetadata { volume_id, metadata } => {
            set_glance_metadata(pool, write, volume_id, metadata, false).await
        }
        DbWrite::RestoreGlanceMetadata { volume_id, metadata } => {
            set_glance_metadata(pool, write, volume_id, metadata, true).await
        }
        DbWrite::DeleteGlanceMetadata { volume_id } => {
            // `volume_glance_metadata_delete_by_volume`: soft-delete the
            // visible rows, `updated_at` unchanged.
            let d = dialect(pool);
            let mut params = vec![text(now_param(d).map_err(sql_err)?)];
            let cond = exact(d, "volume_id", volume_id.as_str(), &mut params);
            let sql =
                format!("UPDATE volume_glance_metadata SET deleted = 1, deleted_at = ? WHERE {cond} AND deleted = 0");
            run_one(pool, &sql, &params, format!("delete the glance metadata of volume {volume_id}")).await.map(|_| ())
        }
        DbWrite::UpdateSnapshot { snapshot_id, status, .. } => {
            // `snapshot_update`: the visible row, `SnapshotNotFound` when
            // none matched.
            let d = dialect(pool);
            let mut params = vec![text(status.as_str()), text(now_param(d).map_err(sql_err)?)];
            let cond = exact(d, "id", snapshot_id.as_str(), &mut params);
            let sql = format!("UPDATE snapshots SET status = ?, updated_at = ? WHERE {cond} AND deleted = 0");
            let n = run_one(pool, &sql, &params, format!("update snapshot {snapshot_id}")).await?;
            if n == 0 {
                return Err(missing(write));
            }
            Ok(())
        }
    }
}

fn dialect(pool: &Pool) -> Dialect {
    on_pool!(pool, _p, d => d)
}

/// One statement in its own transaction; the number of rows it matched
/// (sqlx asks MySQL for found rather than changed rows).
async fn run_one(pool: &Pool, sql: &str, params: &[Param], operation: String) -> BackendResult<u64> {
    on_pool!(pool, p, _d => {
        let mut tx = p.begin().await.map_err(failed(operation.clone()))?;
        let done = bind_all!(sqlx::query(sql), params).execute(&mut *tx).await.map_err(failed(operation.clone()))?;
        tx.commit().await.map_err(failed(operation))?;
        Ok(done.rows_affected())
    })
}

/// `volume_update` (`api.py`): the visible row's columns, `updated_at`
/// set to now (the model's `onupdate`); `VolumeNotFound` when no visible
/// row matched.
async fn update_volume(pool: &Pool, write: &DbWrite, id: &VolumeId, set: &VolumeUpdate) -> BackendResult<()> {
    let d = dialect(pool);
    let mut assignments = vec!["updated_at = ?"];
    let mut params = vec![text(now_param(d).map_err(sql_err)?)];
    if let Some(status) = &set.status {
        assignments.push("status = ?");
        params.push(text(status.as_str()));
    }
    if let Some(size) = set.size {
        assignments.push("size = ?");
        params.push(int(gib(size.0, &format!("volume {id}"))?));
    }
    if let Some(b) = set.bootable {
        assignments.push("bootable = ?");
        params.push(int(i64::from(b)));
    }
    if let Some(host) = &set.host {
        assignments.push("host = ?");
        params.push(text(host.as_str()));
    }
    let cond = exact(d, "id", id.as_str(), &mut params);
    let sql = format!("UPDATE volumes SET {} WHERE {cond} AND deleted = 0", assignments.join(", "));
    let n = run_one(pool, &sql, &params, format!("update volume {id}")).await?;
    if n == 0 {
        return Err(missing(write));
    }
    Ok(())
}

/// `volume_create` (`api.py`) with the row's metadata and admin metadata:
/// `AlreadyExists` when the id is taken (by any row, deleted ones
/// included: it is the primary key), `NotFound` when the type does not
/// exist. `attach_status` is `detached`, as for every new volume.
async fn create_volume(pool: &Pool, write: &DbWrite, v: &Volume) -> BackendResult<()> {
    let op = format!("create volume {}", v.id);
    let d = dialect(pool);
    let now = now_param(d).map_err(sql_err)?;
    let created = time_param(d, v.created_at).map_err(sql_err)?;
    let size = gib(v.size.0, &format!("volume {}", v.id))?;
    on_pool!(pool, p, _d => {
        let mut tx = p.begin().await.map_err(failed(op.clone()))?;
        let taken: Vec<String> = sqlx::query_scalar("SELECT id FROM volumes WHERE id = ?")
            .bind(v.id.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(failed(op.clone()))?;
        if !taken.is_empty() {
            return Err(BackendError::new(BackendErrorKind::AlreadyExists, format!("database write: {write}")));
        }
        let types = sqlx::query("SELECT id, name FROM volume_types WHERE deleted = 0 AND (name = ? OR id = ?) ORDER BY id")
            .bind(v.volume_type.as_str())
            .bind(v.volume_type.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(failed(op.clone()))?;
        let mut by_name = None;
        let mut by_id = None;
        for r in &types {
            let id = r.text("id").map_err(failed(op.clone()))?.unwrap_or_default();
            let name = r.text("name").map_err(failed(op.clone()))?;
            if by_name.is_none() && name.as_deref() == Some(v.volume_type.as_str()) {
                by_name = Some(id.clone());
            }
            if by_id.is_none() && id == v.volume_type {
                by_id = Some(id);
            }
        }
        let type_id = by_name.or(by_id).ok_or_else(|| {
            missing(write).with_detail(format!("no volume type {:?}: volume_type_id is NOT NULL", v.volume_type))
        })?;
        let params = [
            text(created.clone()),
            text(v.id.as_str()),
            text(v.user_id.as_str()),
            text(v.project_id.as_str()),
            opt_text(v.host.as_ref().map(|h| h.as_str())),
            int(size),
            text(v.availability_zone.as_str()),
            text(v.status.as_str()),
            opt_text(v.snapshot_id.as_ref().map(|s| s.as_str())),
            text(type_id),
            opt_text(v.source_volid.as_ref().map(|s| s.as_str())),
            int(i64::from(v.bootable)),
            opt_text(v.name_id.as_ref().map(|s| s.as_str())),
            opt_text(v.encryption_key_id.as_deref()),
            opt_text(v.cluster_name.as_deref()),
            int(i64::from(v.use_quota)),
        ];
        let sql = "INSERT INTO volumes (created_at, deleted, id, user_id, project_id, host, size, availability_zone, \
                   status, attach_status, snapshot_id, volume_type_id, source_volid, bootable, _name_id, \
                   encryption_key_id, cluster_name, use_quota, multiattach) \
                   VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?, 'detached', ?, ?, ?, ?, ?, ?, ?, ?, 0)";
        bind_all!(sqlx::query(sql), &params).execute(&mut *tx).await.map_err(failed(op.clone()))?;
        for (table, map) in [("volume_metadata", &v.metadata), ("volume_admin_metadata", &v.admin_metadata)] {
            let sql = format!("INSERT INTO {table} (created_at, deleted, volume_id, `key`, value) VALUES (?, 0, ?, ?, ?)");
            for (k, val) in map {
                sqlx::query(&sql)
                    .bind(now.as_str())
                    .bind(v.id.as_str())
                    .bind(k.as_str())
                    .bind(val.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(failed(format!("{op}: {table} {k:?}")))?;
            }
        }
        tx.commit().await.map_err(failed(op))?;
        Ok(())
    })
}

/// Tables whose rows `volume_destroy` soft-deletes with the volume
/// (`api.py: VOLUME_DEPENDENT_MODELS`).
const VOLUME_DEPENDENTS: &[&str] = &[
    "volume_metadata",
    "volume_admin_metadata",
    "snapshots",
    "transfers",
    "volume_glance_metadata",
    "volume_attachment",
];

/// `volume_destroy` (`api.py`): status `deleted`, `deleted = 1`,
/// `deleted_at` now, `migration_status` NULL, `updated_at` unchanged; the
/// dependent rows soft-deleted. `NotFound` when no visible row has the id.
async fn destroy_volume(pool: &Pool, write: &DbWrite, id: &VolumeId) -> BackendResult<()> {
    let op = format!("delete volume {id}");
    let d = dialect(pool);
    let now = now_param(d).map_err(sql_err)?;
    on_pool!(pool, p, d => {
        let mut tx = p.begin().await.map_err(failed(op.clone()))?;
        let mut params = Vec::new();
        let cond = exact(d, "id", id.as_str(), &mut params);
        let sql = format!("SELECT id FROM volumes WHERE {cond} AND deleted = 0");
        let found = bind_all!(sqlx::query(&sql), &params)
            .fetch_all(&mut *tx)
            .await
            .map_err(failed(op.clone()))?;
        if found.is_empty() {
            return Err(missing(write));
        }
        let mut params = vec![text(now.clone())];
        let cond = exact(d, "id", id.as_str(), &mut params);
        let sql = format!(
            "UPDATE volumes SET status = 'deleted', deleted = 1, deleted_at = ?, migration_status = NULL \
             WHERE {cond} AND deleted = 0"
        );
        bind_all!(sqlx::query(&sql), &params).execute(&mut *tx).await.map_err(failed(op.clone()))?;
        for table in VOLUME_DEPENDENTS {
            let mut params = vec![text(now.clone())];
            let cond = exact(d, "volume_id", id.as_str(), &mut params);
            let sql = format!("UPDATE {table} SET deleted = 1, deleted_at = ? WHERE {cond} AND deleted = 0");
            bind_all!(sqlx::query(&sql), &params)
                .execute(&mut *tx)
                .await
                .map_err(failed(format!("{op}: {table}")))?;
        }
        tx.commit().await.map_err(failed(op))?;
        Ok(())
    })
}

/// `image_volume_cache_create` (`api.py`), keeping one row per cached
/// volume as the in-memory backend does (a row for the same volume is
/// replaced; upstream never makes two). The host column is `NOT NULL`.
async fn create_cache_entry(pool: &Pool, e: &CacheEntry) -> BackendResult<()> {
    let op = format!("create the cache entry of volume {}", e.volume_id);
    let Some(host) = &e.host else {
        return Err(BackendError::new(BackendErrorKind::InvalidArgument, op)
            .with_detail("image_volume_cache_entries.host is NOT NULL: a cache entry needs a host"));
    };
    let d = dialect(pool);
    let size = gib(e.size.0, &op)?;
    let insert = [
        text(time_param(d, e.image_updated_at).map_err(sql_err)?),
        text(host.as_str()),
        text(e.image_id.as_str()),
        text(e.volume_id.as_str()),
        int(size),
        text(time_param(d, e.last_used).map_err(sql_err)?),
        opt_text(e.cluster_name.as_deref()),
    ];
    on_pool!(pool, p, d => {
        let mut tx = p.begin().await.map_err(failed(op.clone()))?;
        let mut params = Vec::new();
        let cond = exact(d, "volume_id", e.volume_id.as_str(), &mut params);
        let sql = format!("DELETE FROM image_volume_cache_entries WHERE {cond}");
        bind_all!(sqlx::query(&sql), &params)
            .execute(&mut *tx)
            .await
            .map_err(failed(op.clone()))?;
        let sql = "INSERT INTO image_volume_cache_entries \
                   (image_updated_at, host, image_id, volume_id, size, last_used, cluster_name) \
                   VALUES (?, ?, ?, ?, ?, ?, ?)";
        bind_all!(sqlx::query(sql), &insert).execute(&mut *tx).await.map_err(failed(op.clone()))?;
        tx.commit().await.map_err(failed(op))?;
        Ok(())
    })
}

/// `image_volume_cache_delete` (`api.py`): the rows of the volume, none
/// being no error.
async fn delete_cache_entry(pool: &Pool, volume_id: &VolumeId) -> BackendResult<()> {
    let mut params = Vec::new();
    let cond = exact(dialect(pool), "volume_id", volume_id.as_str(), &mut params);
    let sql = format!("DELETE FROM image_volume_cache_entries WHERE {cond}");
    run_one(pool, &sql, &params, format!("delete the cache entry of volume {volume_id}")).await.map(|_| ())
}

/// `volume_glance_metadata_bulk_create` (`api.py`): needs a visible volume
/// (`@require_volume_exists`); keys with the same value are left alone,
/// new keys inserted, and (as in memory, unlike upstream's
/// `GlanceMetadataExists`) keys with another value updated. With `replace`
/// ([`DbWrite::RestoreGlanceMetadata`]) the other visible keys are
/// soft-deleted too, as `volume_glance_metadata_delete_by_volume` does, so
/// the volume has exactly `metadata` (restoring none needs no volume).
async fn set_glance_metadata(
    pool: &Pool,
    write: &DbWrite,
    volume_id: &VolumeId,
    metadata: &std::collections::BTreeMap<String, String>,
    replace: bool,
) -> BackendResult<()> {
    let op = format!("store glance metadata on volume {volume_id}");
    let d = dialect(pool);
    let now = now_param(d).map_err(sql_err)?;
    on_pool!(pool, p, d => {
        let mut tx = p.begin().await.map_err(failed(op.clone()))?;
        let mut params = Vec::new();
        let cond = exact(d, "id", volume_id.as_str(), &mut params);
        let sql = format!("SELECT id FROM volumes WHERE {cond} AND deleted = 0");
        let found = bind_all!(sqlx::query(&sql), &params)
            .fetch_all(&mut *tx)
            .await
            .map_err(failed(op.clone()))?;
        if found.is_empty() && !(replace && metadata.is_empty()) {
            return Err(missing(write));
        }
        let mut params = Vec::new();
        let cond = exact(d, "volume_id", volume_id.as_str(), &mut params);
        let sql = format!("SELECT id, `key`, value FROM volume_glance_metadata WHERE {cond} AND deleted = 0 ORDER BY id");
        let rows = bind_all!(sqlx::query(&sql), &params).fetch_all(&mut *tx).await.map_err(failed(op.clone()))?;
        let mut existing: Vec<(i64, String, Option<String>)> = Vec::new();
        for r in &rows {
            let id = r.int("id").map_err(failed(op.clone()))?.unwrap_or(0);
            let Some(key) = r.text("key").map_err(failed(op.clone()))? else { continue };
            existing.push((id, key, r.text("value").map_err(failed(op.clone()))?));
        }
        if replace {
            for (row, key, _) in &existing {
                if metadata.contains_key(key) {
                    continue;
                }
                sqlx::query("UPDATE volume_glance_metadata SET deleted = 1, deleted_at = ? WHERE id = ?")
                    .bind(now.as_str())
                    .bind(*row)
                    .execute(&mut *tx)
                    .await
                    .map_err(failed(format!("{op}: {key:?}")))?;
            }
        }
        for (key, value) in metadata {
            match existing.iter().find(|(_, k, _)| k == key) {
                Some((_, _, Some(old))) if old == value => {}
                Some((row, _, _)) => {
                    sqlx::query("UPDATE volume_glance_metadata SET value = ?, updated_at = ? WHERE id = ?")
                        .bind(value.as_str())
                        .bind(now.as_str())
                        .bind(*row)
                        .execute(&mut *tx)
                        .await
                        .map_err(failed(format!("{op}: {key:?}")))?;
                }
                None => {
                    sqlx::query(
                        "INSERT INTO volume_glance_metadata (created_at, deleted, volume_id, `key`, value) \
                         VALUES (?, 0, ?, ?, ?)",
                    )
                    .bind(now.as_str())
                    .bind(volume_id.as_str())
                    .bind(key.as_str())
                    .bind(value.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(failed(format!("{op}: {key:?}")))?;
                }
            }
        }
        tx.commit().await.map_err(failed(op))?;
        Ok(())
    })
}
