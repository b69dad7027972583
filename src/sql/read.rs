//! Reads, each following the query upstream makes for it (Cinder 29.0.0,
//! `cinder/db/sqlalchemy/api.py`, cited as `api.py: function`).

use std::collections::BTreeMap;

use crate::facts::{CacheLocation, ProjectUsage};
use crate::model::{
    CacheEntry, Encryption, GiB, Host, ImageId, ProjectId, Service, Snapshot, SnapshotId, Timestamp, Volume, VolumeId,
    VolumeType,
};

use super::rows::{decode, placeholders, required_u64, Cols};
use super::{on_pool, Dialect, Pool, SqlError};

/// Ids per `IN (...)` list: far below MySQL's 65,535 and SQLite's 32,766
/// parameters per statement.
const CHUNK: usize = 500;

/// The filters of [`SqlVolumeDb::volumes_filtered`](super::SqlVolumeDb::volumes_filtered),
/// as upstream's `volume_get_all(filters=...)` takes them.
///
/// ```
/// use cinder_flow::sql::VolumeFilter;
///
/// let f = VolumeFilter::ids(["a", "b"]).on_host("hostA@ceph");
/// assert_eq!(f.host.as_deref(), Some("hostA@ceph"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VolumeFilter {
    /// `id IN (...)`; `None` for any id.
    pub ids: Option<Vec<VolumeId>>,
    /// `_filter_host(volumes.host, value)`; `None` or empty: no condition
    /// (upstream drops falsy values).
    pub host: Option<String>,
    /// `_filter_host(volumes.cluster_name, value)`, likewise.
    pub cluster_name: Option<String>,
}

impl VolumeFilter {
    /// Rows among `ids`.
    pub fn ids<I: Into<VolumeId>>(ids: impl IntoIterator<Item = I>) -> Self {
        Self { ids: Some(ids.into_iter().map(Into::into).collect()), ..Self::default() }
    }

    /// Any visible row.
    pub fn all() -> Self {
        Self::default()
    }

    /// Adds the host condition.
    pub fn on_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Adds the cluster condition.
    pub fn in_cluster(mut self, cluster_name: impl Into<String>) -> Self {
        self.cluster_name = Some(cluster_name.into());
        self
    }
}

/// The volume columns the model has, the type's name joined as
/// `Volume.volume_type` is (`models.py`: the relationship's join requires
/// `VolumeType.deleted == False`); without a visible type, its stored id.
const VOLUME_SELECT: &str = "SELECT v.id, v.host, v.cluster_name, v.project_id, v.user_id, v.size, v.status, \
     CASE WHEN vt.deleted = 0 THEN vt.name ELSE v.volume_type_id END AS volume_type, \
     v.encryption_key_id, v.availability_zone, v.bootable, v.use_quota, v.created_at, \
     v._name_id AS name_id, v.snapshot_id, v.source_volid, v.deleted \
     FROM volumes v LEFT JOIN volume_types vt ON vt.id = v.volume_type_id";

/// A row of [`VOLUME_SELECT`] and whether it is soft-deleted. Metadata is
/// filled in afterwards.
fn volume_of(r: &impl Cols) -> Result<(Volume, bool), SqlError> {
    let op = "decode a volumes row";
    let id = r.text("id").map_err(decode(op))?.unwrap_or_default();
    let bad = |reason: String| SqlError::InvalidRow { table: "volumes", id: id.clone(), reason };
    let text = |c: &str| r.text(c).map_err(decode(op));
    let v = Volume {
        id: VolumeId::from(id.as_str()),
        host: text("host")?.map(Host::from),
        cluster_name: text("cluster_name")?,
        // Columns Cinder always sets but declares nullable: NULL reads as
        // the empty string.
        project_id: text("project_id")?.unwrap_or_default().into(),
        user_id: text("user_id")?.unwrap_or_default().into(),
        size: GiB(required_u64("volumes", &id, "size", r.int("size").map_err(decode(op))?)?),
        status: text("status")?.unwrap_or_default().into(),
        volume_type: text("volume_type")?.ok_or_else(|| bad("volume_type_id is NULL".into()))?,
        encryption_key_id: text("encryption_key_id")?,
        availability_zone: text("availability_zone")?.unwrap_or_default(),
        // `bootable` defaults to False in the model; NULL reads so.
        bootable: r.int("bootable").map_err(decode(op))?.unwrap_or(0) != 0,
        use_quota: r.int("use_quota").map_err(decode(op))?.unwrap_or(1) != 0,
        metadata: BTreeMap::new(),
        admin_metadata: BTreeMap::new(),
        created_at: r.time("created_at").map_err(decode(op))?.unwrap_or(Timestamp::EPOCH),
        name_id: text("name_id")?.map(VolumeId::from),
        snapshot_id: text("snapshot_id")?.map(SnapshotId::from),
        source_volid: text("source_volid")?.map(VolumeId::from),
    };
    let deleted = r.int("deleted").map_err(decode(op))?.unwrap_or(0) != 0;
    Ok((v, deleted))
}

/// `volume_get` / `volume_get_all(filters={'id': ids})` (`api.py:
/// _volume_get`, `_process_volume_filters`) with `joinedload` of
/// `volume_metadata` and `volume_admin_metadata`: the rows among `ids`,
/// visible ones only unless `include_deleted`. Keys are matched exactly
/// (see the module documentation on collations); duplicates in `ids` give
/// one row.
pub(crate) async fn volumes_by_ids(
    pool: &Pool,
    ids: &[VolumeId],
    include_deleted: bool,
) -> Result<Vec<(Volume, bool)>, SqlError> {
    let mut out = Vec::new();
    let mut unique: Vec<&VolumeId> = ids.iter().collect();
    unique.sort();
    unique.dedup();
    for chunk in unique.chunks(CHUNK) {
        let visible = if include_deleted { "" } else { "v.deleted = 0 AND " };
        let sql = format!("{VOLUME_SELECT} WHERE {visible}v.id IN ({})", placeholders(chunk.len()));
        let rows = on_pool!(pool, p, _d => {
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id.as_str());
            }
            let rows = q.fetch_all(p).await.map_err(|e| SqlError::query("read volumes by id", e))?;
            rows.iter().map(volume_of).collect::<Result<Vec<_>, _>>()?
        });
        out.extend(rows.into_iter().filter(|(v, _)| chunk.binary_search(&&v.id).is_ok()));
    }
    add_metadata(pool, &mut out).await?;
    Ok(out)
}

/// Every volume row, soft-deleted ones included (for
/// [`contents`](super::SqlVolumeDb::contents)).
#[cfg(feature = "testing")]
pub(crate) async fn all_volumes(pool: &Pool) -> Result<Vec<(Volume, bool)>, SqlError> {
    let mut out = on_pool!(pool, p, _d => {
        let rows = sqlx::query(VOLUME_SELECT).fetch_all(p).await.map_err(|e| SqlError::query("read all volumes", e))?;
        rows.iter().map(volume_of).collect::<Result<Vec<_>, _>>()?
    });
    add_metadata(pool, &mut out).await?;
    Ok(out)
}

/// `volume_get_all(filters={'id': ..., 'host': ..., 'cluster_name': ...})`
/// in upstream's default order (`sort_keys=['created_at', 'id']`, both
/// `desc`; `api.py: volume_get_all`, `_generate_paginate_query`).
///
/// The host conditions are `_filter_host`'s, as upstream builds them for
/// each dialect: on MySQL `field = BINARY value OR field LIKE BINARY
/// 'value#%' [OR field LIKE BINARY 'value@%']` (case-sensitive), on SQLite
/// the same with plain `=` and `LIKE`, which SQLite compares without case
/// for ASCII letters (oslo.db sets no `case_sensitive_like`). `%` and `_`
/// in the value are not escaped and act as wildcards, as upstream's do; on
/// MySQL a backslash in the value escapes the next character (MySQL's
/// default `LIKE` escape), on SQLite it is an ordinary character.
pub(crate) async fn volumes_filtered(pool: &Pool, filter: &VolumeFilter) -> Result<Vec<Volume>, SqlError> {
    let ids: Option<Vec<&VolumeId>> = filter.ids.as_ref().map(|ids| {
        let mut v: Vec<&VolumeId> = ids.iter().collect();
        v.sort();
        v.dedup();
        v
    });
    if ids.as_ref().is_some_and(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let host = filter.host.as_deref().filter(|h| !h.is_empty());
    let cluster = filter.cluster_name.as_deref().filter(|c| !c.is_empty());
    let chunks: Vec<Option<&[&VolumeId]>> = match &ids {
        Some(ids) => ids.chunks(CHUNK).map(Some).collect(),
        None => vec![None],
    };
    let mut rows: Vec<(Volume, bool)> = Vec::new();
    for chunk in chunks {
        let found = on_pool!(pool, p, d => {
            let mut sql = format!("{VOLUME_SELECT} WHERE v.deleted = 0");
            let mut params: Vec<String> = Vec::new();
            if let Some(chunk) = chunk {
                sql.push_str(&format!(" AND v.id IN ({})", placeholders(chunk.len())));
                params.extend(chunk.iter().map(|id| id.as_str().to_owned()));
            }
            if let Some(h) = host {
                sql.push_str(&format!(" AND {}", filter_host(d, "v.host", h, &mut params)));
            }
            if let Some(c) = cluster {
                sql.push_str(&format!(" AND {}", filter_host(d, "v.cluster_name", c, &mut params)));
            }
            let mut q = sqlx::query(&sql);
            for param in &params {
                q = q.bind(param.as_str());
            }
            let found = q.fetch_all(p).await.map_err(|e| SqlError::query("read volumes by host", e))?;
            found.iter().map(volume_of).collect::<Result<Vec<_>, _>>()?
        });
        rows.extend(found.into_iter().filter(|(v, _)| chunk.is_none_or(|c| c.binary_search(&&v.id).is_ok())));
    }
    add_metadata(pool, &mut rows).await?;
    let mut rows: Vec<Volume> = rows.into_iter().map(|(v, _)| v).collect();
    rows.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
    Ok(rows)
}

/// `_filter_host(field, value)` (`api.py`): the level from the value (`#`
/// → pool: exact only; `@` → backend: also `value#%`; else host: also
/// `value@%`), MySQL comparing in binary. Pushes the parameters.
fn filter_host(d: Dialect, field: &str, value: &str, params: &mut Vec<String>) -> String {
    let (eq, like) = match d {
        Dialect::MySql => ("= BINARY ?", "LIKE BINARY ?"),
        Dialect::Sqlite => ("= ?", "LIKE ?"),
    };
    let mut conditions = vec![format!("{field} {eq}")];
    params.push(value.to_owned());
    if !value.contains('#') {
        conditions.push(format!("{field} {like}"));
        params.push(format!("{value}#%"));
        if !value.contains('@') {
            conditions.push(format!("{field} {like}"));
            params.push(format!("{value}@%"));
        }
    }
    format!("({})", conditions.join(" OR "))
}

/// Fills `metadata` and `admin_metadata`: the `volume_metadata` /
/// `volume_admin_metadata` rows with `deleted = False` (the relationships'
/// join conditions in `models.py`). A NULL value reads as "".
async fn add_metadata(pool: &Pool, rows: &mut [(Volume, bool)]) -> Result<(), SqlError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut index: BTreeMap<VolumeId, usize> = BTreeMap::new();
    for (i, (v, _)) in rows.iter().enumerate() {
        index.insert(v.id.clone(), i);
    }
    let ids: Vec<&VolumeId> = index.keys().collect();
    for (table, admin) in [("volume_metadata", false), ("volume_admin_metadata", true)] {
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT volume_id, `key`, value FROM {table} WHERE deleted = 0 AND volume_id IN ({}) ORDER BY id",
                placeholders(chunk.len())
            );
            let found: Vec<(String, Option<String>, Option<String>)> = on_pool!(pool, p, _d => {
                let mut q = sqlx::query(&sql);
                for id in chunk {
                    q = q.bind(id.as_str());
                }
                let op = format!("read {table}");
                let found = q.fetch_all(p).await.map_err(|e| SqlError::query(op.clone(), e))?;
                found
                    .iter()
                    .map(|r| Ok((r.text("volume_id")?.unwrap_or_default(), r.text("key")?, r.text("value")?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err(|e| SqlError::query(op, e))?
            });
            for (volume_id, key, value) in found {
                let (Some(&i), Some(key)) = (index.get(volume_id.as_str()), key) else { continue };
                let v = &mut rows[i].0;
                let map = if admin { &mut v.admin_metadata } else { &mut v.metadata };
                map.insert(key, value.unwrap_or_default());
            }
        }
    }
    Ok(())
}

/// Whether any row, soft-deleted or not, has this id (ids are never
/// reused: `volumes.id` is the primary key).
pub(crate) async fn volume_id_taken(pool: &Pool, id: &VolumeId) -> Result<bool, SqlError> {
    let ids: Vec<String> = on_pool!(pool, p, _d => {
        sqlx::query_scalar::<_, String>("SELECT id FROM volumes WHERE id = ?")
            .bind(id.as_str())
            .fetch_all(p)
            .await
            .map_err(|e| SqlError::query(format!("look up volume id {id}"), e))?
    });
    // Case matters to neither backend's uniqueness: MySQL's primary key
    // would refuse `ABC` next to `abc`, so any match counts.
    Ok(!ids.is_empty())
}

fn snapshot_of(r: &impl Cols) -> Result<Snapshot, SqlError> {
    let op = "decode a snapshots row";
    let id = r.text("id").map_err(decode(op))?.unwrap_or_default();
    let text = |c: &str| r.text(c).map_err(decode(op));
    Ok(Snapshot {
        id: SnapshotId::from(id.as_str()),
        volume_id: text("volume_id")?.unwrap_or_default().into(),
        volume_size: GiB(required_u64("snapshots", &id, "volume_size", r.int("volume_size").map_err(decode(op))?)?),
        status: text("status")?.unwrap_or_default(),
        project_id: text("project_id")?.unwrap_or_default().into(),
        encryption_key_id: text("encryption_key_id")?,
    })
}

const SNAPSHOT_SELECT: &str =
    "SELECT id, volume_id, volume_size, status, project_id, encryption_key_id, deleted FROM snapshots";

/// `snapshot_get` (`api.py: _snapshot_get`): the visible row.
pub(crate) async fn snapshot(pool: &Pool, id: &SnapshotId) -> Result<Option<Snapshot>, SqlError> {
    let sql = format!("{SNAPSHOT_SELECT} WHERE deleted = 0 AND id = ?");
    let found = on_pool!(pool, p, _d => {
        let rows = sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_all(p)
            .await
            .map_err(|e| SqlError::query(format!("read snapshot {id}"), e))?;
        rows.iter().map(snapshot_of).collect::<Result<Vec<_>, _>>()?
    });
    Ok(found.into_iter().find(|s| &s.id == id))
}

/// The visible snapshot rows of a volume: what `volume.api.API.delete`'s
/// `volume_has_snapshots_filter` (`api.py`) tests for, `snapshots.volume_id
/// = volumes.id AND NOT snapshots.deleted`. The comparison is exact, as the
/// filter's column-to-column join is (MySQL's collation would otherwise
/// match a differently cased id given as text).
pub(crate) async fn snapshots_of_volume(pool: &Pool, volume: &VolumeId) -> Result<Vec<Snapshot>, SqlError> {
    let sql = format!("{SNAPSHOT_SELECT} WHERE deleted = 0 AND volume_id = ?");
    let found = on_pool!(pool, p, _d => {
        let rows = sqlx::query(&sql)
            .bind(volume.as_str())
            .fetch_all(p)
            .await
            .map_err(|e| SqlError::query(format!("read the snapshots of volume {volume}"), e))?;
        rows.iter().map(snapshot_of).collect::<Result<Vec<_>, _>>()?
    });
    Ok(found.into_iter().filter(|s| &s.volume_id == volume).collect())
}

/// Every visible snapshot row (for [`contents`](super::SqlVolumeDb::contents)).
#[cfg(feature = "testing")]
pub(crate) async fn all_snapshots(pool: &Pool) -> Result<Vec<Snapshot>, SqlError> {
    let sql = format!("{SNAPSHOT_SELECT} WHERE deleted = 0");
    Ok(on_pool!(pool, p, _d => {
        let rows = sqlx::query(&sql).fetch_all(p).await.map_err(|e| SqlError::query("read all snapshots", e))?;
        rows.iter().map(snapshot_of).collect::<Result<Vec<_>, _>>()?
    }))
}

/// `volume_types.get_by_name_or_id` as the in-memory backend answers it: a
/// visible type whose name is `name_or_id`, else one whose id is
/// (`api.py: _volume_type_get_by_name`, `_volume_type_get`; the planner
/// applies upstream's uuid-like rule to the answer). With its extra specs
/// (`joinedload(extra_specs)`, visible ones), its encryption
/// (`_volume_type_encryption_get`) and its QoS specs (`qos_specs_get`: the
/// visible child rows of a visible root, without `consumer`).
pub(crate) async fn volume_type(pool: &Pool, name_or_id: &str) -> Result<Option<VolumeType>, SqlError> {
    let found: Vec<(String, Option<String>, Option<String>)> = on_pool!(pool, p, _d => {
        let rows = sqlx::query(
            "SELECT id, name, qos_specs_id FROM volume_types WHERE deleted = 0 AND (name = ? OR id = ?) ORDER BY id",
        )
        .bind(name_or_id)
        .bind(name_or_id)
        .fetch_all(p)
        .await
        .map_err(|e| SqlError::query(format!("read volume type {name_or_id}"), e))?;
        rows.iter()
            .map(|r| Ok((r.text("id")?.unwrap_or_default(), r.text("name")?, r.text("qos_specs_id")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(|e| SqlError::query("decode a volume_types row", e))?
    });
    let chosen = found
        .iter()
        .find(|(_, name, _)| name.as_deref() == Some(name_or_id))
        .or_else(|| found.iter().find(|(id, _, _)| id == name_or_id));
    match chosen {
        Some((id, name, qos)) => Ok(Some(type_details(pool, id, name.clone().unwrap_or_default(), qos).await?)),
        None => Ok(None),
    }
}

/// Every visible type (for [`contents`](super::SqlVolumeDb::contents)).
#[cfg(feature = "testing")]
pub(crate) async fn all_volume_types(pool: &Pool) -> Result<Vec<VolumeType>, SqlError> {
    let found: Vec<(String, Option<String>, Option<String>)> = on_pool!(pool, p, _d => {
        let rows = sqlx::query("SELECT id, name, qos_specs_id FROM volume_types WHERE deleted = 0 ORDER BY id")
            .fetch_all(p)
            .await
            .map_err(|e| SqlError::query("read all volume types", e))?;
        rows.iter()
            .map(|r| Ok((r.text("id")?.unwrap_or_default(), r.text("name")?, r.text("qos_specs_id")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(|e| SqlError::query("decode a volume_types row", e))?
    });
    let mut out = Vec::new();
    for (id, name, qos) in &found {
        out.push(type_details(pool, id, name.clone().unwrap_or_default(), qos).await?);
    }
    Ok(out)
}

async fn type_details(pool: &Pool, id: &str, name: String, qos: &Option<String>) -> Result<VolumeType, SqlError> {
    let op = format!("read the details of volume type {id}");
    let pairs = |sql: &'static str, key: String| {
        let op = op.clone();
        async move {
            let rows: Vec<(String, Option<String>, Option<String>)> = on_pool!(pool, p, _d => {
                let rows = sqlx::query(sql).bind(&key).fetch_all(p).await.map_err(|e| SqlError::query(op.clone(), e))?;
                rows.iter()
                    .map(|r| Ok((r.text("owner")?.unwrap_or_default(), r.text("key")?, r.text("value")?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err(|e| SqlError::query(op, e))?
            });
            // Exact owner match (collations), NULL keys skipped.
            Ok::<BTreeMap<String, String>, SqlError>(
                rows.into_iter()
                    .filter(|(owner, _, _)| *owner == key)
                    .filter_map(|(_, k, v)| Some((k?, v.unwrap_or_default())))
                    .collect(),
            )
        }
    };
    let extra_specs = pairs(
        "SELECT volume_type_id AS owner, `key`, value FROM volume_type_extra_specs \
         WHERE deleted = 0 AND volume_type_id = ? ORDER BY id",
        id.to_owned(),
    )
    .await?;
    let qos_specs = match qos {
        Some(qos) => {
            let mut specs = pairs(
                "SELECT c.specs_id AS owner, c.`key`, c.value FROM quality_of_service_specs c \
                 JOIN quality_of_service_specs r ON r.id = c.specs_id \
                 WHERE c.deleted = 0 AND r.deleted = 0 AND c.specs_id = ? ORDER BY c.id",
                qos.clone(),
            )
            .await?;
            specs.remove("consumer");
            specs
        }
        None => BTreeMap::new(),
    };
    let encryption: Option<Encryption> = on_pool!(pool, p, _d => {
        let rows = sqlx::query(
            "SELECT volume_type_id, provider, cipher, key_size, control_location FROM encryption \
             WHERE deleted = 0 AND volume_type_id = ?",
        )
        .bind(id)
        .fetch_all(p)
        .await
        .map_err(|e| SqlError::query(op.clone(), e))?;
        let mut found = None;
        for r in &rows {
            let owner = r.text("volume_type_id").map_err(decode(&op))?;
            if owner.as_deref() != Some(id) {
                continue;
            }
            let key_size = r.int("key_size").map_err(decode(&op))?;
            found = Some(Encryption {
                provider: r.text("provider").map_err(decode(&op))?.unwrap_or_default(),
                cipher: r.text("cipher").map_err(decode(&op))?,
                key_size: key_size.map(|k| u32::try_from(k).map_err(|_| SqlError::InvalidRow {
                    table: "encryption",
                    id: id.to_owned(),
                    reason: format!("key_size is {k}"),
                })).transpose()?,
                control_location: r.text("control_location").map_err(decode(&op))?.unwrap_or_default(),
            });
            break;
        }
        found
    });
    Ok(VolumeType { id: id.to_owned(), name, extra_specs, encryption, qos_specs })
}

/// `service_get_all` without filters (`api.py: _service_query`): the
/// visible rows, in id order. NULL text columns read as "".
pub(crate) async fn services(pool: &Pool) -> Result<Vec<Service>, SqlError> {
    Ok(on_pool!(pool, p, _d => {
        let rows = sqlx::query(
            "SELECT host, `binary`, topic, availability_zone, disabled FROM services WHERE deleted = 0 ORDER BY id",
        )
        .fetch_all(p)
        .await
        .map_err(|e| SqlError::query("read services", e))?;
        rows.iter()
            .map(|r| {
                Ok(Service {
                    host: r.text("host")?.unwrap_or_default(),
                    binary: r.text("binary")?.unwrap_or_default(),
                    topic: r.text("topic")?.unwrap_or_default(),
                    availability_zone: r.text("availability_zone")?.unwrap_or_default(),
                    disabled: r.int("disabled")?.unwrap_or(0) != 0,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(|e| SqlError::query("decode a services row", e))?
    }))
}

/// `project_default_volume_type_get(project_id)` (`api.py:
/// _project_default_volume_type_get`): the visible row's `volume_type_id`.
pub(crate) async fn project_default_volume_type(pool: &Pool, project: &ProjectId) -> Result<Option<String>, SqlError> {
    let rows: Vec<(String, Option<String>)> = on_pool!(pool, p, _d => {
        let rows = sqlx::query(
            "SELECT project_id, volume_type_id FROM default_volume_types WHERE deleted = 0 AND project_id = ?",
        )
        .bind(project.as_str())
        .fetch_all(p)
        .await
        .map_err(|e| SqlError::query(format!("read the default volume type of {project}"), e))?;
        rows.iter()
            .map(|r| Ok((r.text("project_id")?.unwrap_or_default(), r.text("volume_type_id")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(|e| SqlError::query("decode a default_volume_types row", e))?
    });
    Ok(rows.into_iter().find(|(p, _)| p == project.as_str()).and_then(|(_, t)| t))
}

/// Every visible project default (for [`contents`](super::SqlVolumeDb::contents)).
#[cfg(feature = "testing")]
pub(crate) async fn all_project_defaults(pool: &Pool) -> Result<BTreeMap<ProjectId, String>, SqlError> {
    let rows: Vec<(String, Option<String>)> = on_pool!(pool, p, _d => {
        let rows = sqlx::query("SELECT project_id, volume_type_id FROM default_volume_types WHERE deleted = 0")
            .fetch_all(p)
            .await
            .map_err(|e| SqlError::query("read default volume types", e))?;
        rows.iter()
            .map(|r| Ok((r.text("project_id")?.unwrap_or_default(), r.text("volume_type_id")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(|e| SqlError::query("decode a default_volume_types row", e))?
    });
    Ok(rows.into_iter().filter_map(|(p, t)| Some((ProjectId::from(p), t?))).collect())
}

/// The quota sync functions' counts (`api.py: _sync_volumes`,
/// `_sync_snapshots`, `_sync_gigabytes` through
/// `_volume_data_get_for_project` and `_snapshot_data_get_for_project`,
/// both with `skip_internal=True`): visible volumes of the project with
/// `use_quota`, their sizes; visible snapshots with `use_quota`, their
/// `volume_size`s. The rows are summed here rather than by `SUM()`, so
/// that the project is matched exactly (see the module documentation).
pub(crate) async fn project_usage(pool: &Pool, project: &ProjectId) -> Result<ProjectUsage, SqlError> {
    let mut usage = ProjectUsage::default();
    for (table, col, snapshots) in [("volumes", "size", false), ("snapshots", "volume_size", true)] {
        let sql = format!(
            "SELECT project_id, {col} AS gigabytes FROM {table} WHERE deleted = 0 AND use_quota AND project_id = ?"
        );
        let rows: Vec<(String, Option<i64>)> = on_pool!(pool, p, _d => {
            let op = format!("count the {table} of {project}");
            let rows = sqlx::query(&sql).bind(project.as_str()).fetch_all(p).await.map_err(|e| SqlError::query(op.clone(), e))?;
            rows.iter()
                .map(|r| Ok((r.text("project_id")?.unwrap_or_default(), r.int("gigabytes")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| SqlError::query(op, e))?
        });
        for (_, gb) in rows.into_iter().filter(|(p, _)| p == project.as_str()) {
            // SUM() skips NULLs and negative sizes do not exist upstream;
            // count them as 0 rather than fail the whole sum.
            let gb = gb.and_then(|g| u64::try_from(g).ok()).unwrap_or(0);
            if snapshots {
                usage.snapshots += 1;
                usage.snapshot_gigabytes = usage.snapshot_gigabytes.saturating_add(gb);
            } else {
                usage.volumes += 1;
                usage.volume_gigabytes = usage.volume_gigabytes.saturating_add(gb);
            }
        }
    }
    Ok(usage)
}

const CACHE_SELECT: &str =
    "SELECT image_id, host, cluster_name, volume_id, size, image_updated_at, last_used FROM image_volume_cache_entries";

fn cache_entry_of(r: &impl Cols) -> Result<CacheEntry, SqlError> {
    let op = "decode an image_volume_cache_entries row";
    let volume_id = r.text("volume_id").map_err(decode(op))?.unwrap_or_default();
    Ok(CacheEntry {
        image_id: r.text("image_id").map_err(decode(op))?.unwrap_or_default().into(),
        host: r.text("host").map_err(decode(op))?.map(Host::from),
        cluster_name: r.text("cluster_name").map_err(decode(op))?,
        size: GiB(required_u64("image_volume_cache_entries", &volume_id, "size", r.int("size").map_err(decode(op))?)?),
        // Nullable upstream (a TODO in models.py): NULL reads as the
        // epoch, which makes the entry stale, never fresh.
        image_updated_at: r.time("image_updated_at").map_err(decode(op))?.unwrap_or(Timestamp::EPOCH),
        last_used: r.time("last_used").map_err(decode(op))?.unwrap_or(Timestamp::EPOCH),
        volume_id: volume_id.into(),
    })
}

async fn cache_query(pool: &Pool, sql: &str, params: &[&str], op: &str) -> Result<Vec<CacheEntry>, SqlError> {
    Ok(on_pool!(pool, p, _d => {
        let mut q = sqlx::query(sql);
        for param in params {
            q = q.bind(*param);
        }
        let rows = q.fetch_all(p).await.map_err(|e| SqlError::query(op.to_owned(), e))?;
        rows.iter().map(cache_entry_of).collect::<Result<Vec<_>, _>>()?
    }))
}

/// The rows of an image, most recently used first (`api.py:
/// image_volume_cache_get_and_update_last_used` without the update and
/// without a location: `filter_by(image_id=...)`, `order_by(desc(last_used))`).
pub(crate) async fn cache_entries_of_image(pool: &Pool, image: &ImageId) -> Result<Vec<CacheEntry>, SqlError> {
    let sql = format!("{CACHE_SELECT} WHERE image_id = ? ORDER BY last_used DESC");
    let rows = cache_query(pool, &sql, &[image.as_str()], &format!("read the cache entries of image {image}")).await?;
    Ok(rows.into_iter().filter(|e| &e.image_id == image).collect())
}

/// `image_volume_cache_get_all(host=..., cluster_name=...)` (`api.py`):
/// `filter_by` the location's values that are set (`_clean_filters`),
/// most recently used first.
pub(crate) async fn cache_entries_at(pool: &Pool, location: &CacheLocation) -> Result<Vec<CacheEntry>, SqlError> {
    let mut sql = format!("{CACHE_SELECT} WHERE 1 = 1");
    let mut params: Vec<&str> = Vec::new();
    if let Some(h) = &location.host {
        sql.push_str(" AND host = ?");
        params.push(h);
    }
    if let Some(c) = &location.cluster_name {
        sql.push_str(" AND cluster_name = ?");
        params.push(c);
    }
    sql.push_str(" ORDER BY last_used DESC");
    let rows = cache_query(pool, &sql, &params, "read the cache entries at a location").await?;
    Ok(rows.into_iter().filter(|e| location.matches(e)).collect())
}

/// Every cache row (for [`contents`](super::SqlVolumeDb::contents)).
#[cfg(feature = "testing")]
pub(crate) async fn all_cache_entries(pool: &Pool) -> Result<Vec<CacheEntry>, SqlError> {
    cache_query(pool, CACHE_SELECT, &[], "read all cache entries").await
}

/// The visible glance metadata of every volume (for
/// [`contents`](super::SqlVolumeDb::contents)).
#[cfg(feature = "testing")]
pub(crate) async fn all_glance_metadata(pool: &Pool) -> Result<BTreeMap<VolumeId, BTreeMap<String, String>>, SqlError> {
    let rows: Vec<(Option<String>, Option<String>, Option<String>)> = on_pool!(pool, p, _d => {
        let rows = sqlx::query(
            "SELECT volume_id, `key`, value FROM volume_glance_metadata WHERE deleted = 0 AND volume_id IS NOT NULL ORDER BY id",
        )
        .fetch_all(p)
        .await
        .map_err(|e| SqlError::query("read glance metadata", e))?;
        rows.iter()
            .map(|r| Ok((r.text("volume_id")?, r.text("key")?, r.text("value")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(|e| SqlError::query("decode a volume_glance_metadata row", e))?
    });
    let mut out: BTreeMap<VolumeId, BTreeMap<String, String>> = BTreeMap::new();
    for (v, k, val) in rows {
        if let (Some(v), Some(k)) = (v, k) {
            out.entry(v.into()).or_default().insert(k, val.unwrap_or_default());
        }
    }
    Ok(out)
}
