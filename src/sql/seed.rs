//! Test support (features `sql` and `testing`): the rows a deployment sets
//! up, the whole contents as a comparable value, and emptying a test
//! database.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;

use crate::memory::DbContents;
use crate::model::{ProjectId, Service, Snapshot, Volume, VolumeId, VolumeType};
use crate::plan::DbWrite;
use crate::ports::VolumeDb;
use crate::testing::db_suite::DbFixture;

use super::rows::{now_param, Cols};
use super::{lock, on_pool, read, SqlError, SqlVolumeDb};

/// The tables [`SqlVolumeDb::delete_all_rows`] empties: every table this
/// backend reads or writes.
const DATA_TABLES: &[&str] = &[
    "volume_glance_metadata",
    "volume_metadata",
    "volume_admin_metadata",
    "volume_attachment",
    "transfers",
    "snapshots",
    "image_volume_cache_entries",
    "default_volume_types",
    "volumes",
    "volume_type_extra_specs",
    "encryption",
    "volume_types",
    "quality_of_service_specs",
    "services",
];

fn text(e: SqlError) -> String {
    e.to_string()
}

fn q(op: &str) -> impl Fn(sqlx::Error) -> String + '_ {
    move |e| format!("{op}: {e}")
}

impl SqlVolumeDb {
    /// Deletes every row of the tables this backend uses (Cinder's seeded
    /// `__DEFAULT__` type included), forgets recorded evictions and queued
    /// fresh ids: a clean
    /// database for the next test. Destroys data: for test databases only.
    pub async fn delete_all_rows(&self) -> Result<(), SqlError> {
        on_pool!(&self.pool, p, d => {
            let mut tx = p.begin().await.map_err(|e| SqlError::query("empty the tables", e))?;
            // Children before parents, and no foreign key checks on MySQL
            // for the self-referencing QoS rows.
            if d == super::Dialect::MySql {
                sqlx::query("SET FOREIGN_KEY_CHECKS = 0")
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| SqlError::query("empty the tables", e))?;
            }
            for table in DATA_TABLES {
                sqlx::query(&format!("DELETE FROM {table}"))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| SqlError::query(format!("empty {table}"), e))?;
            }
            if d == super::Dialect::MySql {
                sqlx::query("SET FOREIGN_KEY_CHECKS = 1")
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| SqlError::query("empty the tables", e))?;
            }
            tx.commit().await.map_err(|e| SqlError::query("empty the tables", e))?;
        });
        lock(&self.evictions).clear();
        lock(&self.fresh).clear();
        Ok(())
    }

    /// Everything the port can observe, as the in-memory backend's
    /// [`DbContents`] (compare them with
    /// [`compare_contents`](crate::testing::db_suite::compare_contents)):
    /// volumes with soft-deleted ones, visible snapshots, types, services,
    /// cache rows, evictions not yet taken, visible glance metadata,
    /// project defaults.
    pub async fn contents(&self) -> Result<DbContents, SqlError> {
        let all = read::all_volumes(&self.pool).await?;
        let evictions = lock(&self.evictions).clone();
        let deleted: BTreeSet<VolumeId> = all.iter().filter(|(_, d)| *d).map(|(v, _)| v.id.clone()).collect();
        Ok(DbContents {
            volumes: all.into_iter().map(|(v, _)| (v.id.clone(), v)).collect(),
            deleted,
            snapshots: read::all_snapshots(&self.pool).await?.into_iter().map(|s| (s.id.clone(), s)).collect(),
            types: read::all_volume_types(&self.pool).await?,
            services: read::services(&self.pool).await?,
            cache: read::all_cache_entries(&self.pool).await?.into_iter().map(|e| (e.volume_id.clone(), e)).collect(),
            evictions,
            glance_metadata: read::all_glance_metadata(&self.pool).await?,
            project_default_types: read::all_project_defaults(&self.pool).await?,
        })
    }
}

#[async_trait]
impl DbFixture for SqlVolumeDb {
    /// `volume_type_create`: the type row (public), its extra specs, its
    /// encryption row, and for QoS specs a `quality_of_service_specs` root
    /// row (`QoS_Specs_Name`) with a `consumer` child and one child per
    /// spec. A visible type of the same name is soft-deleted first.
    async fn add_volume_type(&self, t: &VolumeType) -> Result<(), String> {
        let op = format!("add volume type {}", t.name);
        let now = on_pool!(&self.pool, _p, d => now_param(d).map_err(text)?);
        on_pool!(&self.pool, p, _d => {
            let mut tx = p.begin().await.map_err(q(&op))?;
            sqlx::query("UPDATE volume_types SET deleted = 1, deleted_at = ? WHERE name = ? AND deleted = 0")
                .bind(now.as_str())
                .bind(t.name.as_str())
                .execute(&mut *tx)
                .await
                .map_err(q(&op))?;
            let qos_id = if t.qos_specs.is_empty() { None } else { Some(uuid::Uuid::new_v4().to_string()) };
            if let Some(root) = &qos_id {
                let insert = "INSERT INTO quality_of_service_specs (created_at, deleted, id, specs_id, `key`, value) \
                              VALUES (?, 0, ?, ?, ?, ?)";
                sqlx::query(insert)
                    .bind(now.as_str())
                    .bind(root.as_str())
                    .bind(None::<String>)
                    .bind("QoS_Specs_Name")
                    .bind(format!("qos-{}", t.id))
                    .execute(&mut *tx)
                    .await
                    .map_err(q(&op))?;
                let children = std::iter::once(("consumer", "back-end"))
                    .chain(t.qos_specs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                for (k, v) in children {
                    sqlx::query(insert)
                        .bind(now.as_str())
                        .bind(uuid::Uuid::new_v4().to_string())
                        .bind(root.as_str())
                        .bind(k)
                        .bind(v)
                        .execute(&mut *tx)
                        .await
                        .map_err(q(&op))?;
                }
            }
            sqlx::query(
                "INSERT INTO volume_types (created_at, deleted, id, name, qos_specs_id, is_public) VALUES (?, 0, ?, ?, ?, 1)",
            )
            .bind(now.as_str())
            .bind(t.id.as_str())
            .bind(t.name.as_str())
            .bind(qos_id)
            .execute(&mut *tx)
            .await
            .map_err(q(&op))?;
            for (k, v) in &t.extra_specs {
                sqlx::query(
                    "INSERT INTO volume_type_extra_specs (created_at, deleted, volume_type_id, `key`, value) \
                     VALUES (?, 0, ?, ?, ?)",
                )
                .bind(now.as_str())
                .bind(t.id.as_str())
                .bind(k.as_str())
                .bind(v.as_str())
                .execute(&mut *tx)
                .await
                .map_err(q(&op))?;
            }
            if let Some(e) = &t.encryption {
                sqlx::query(
                    "INSERT INTO encryption (created_at, deleted, cipher, control_location, key_size, provider, \
                     volume_type_id, encryption_id) VALUES (?, 0, ?, ?, ?, ?, ?, ?)",
                )
                .bind(now.as_str())
                .bind(e.cipher.as_deref())
                .bind(e.control_location.as_str())
                .bind(e.key_size.map(i64::from))
                .bind(e.provider.as_str())
                .bind(t.id.as_str())
                .bind(uuid::Uuid::new_v4().to_string())
                .execute(&mut *tx)
                .await
                .map_err(q(&op))?;
            }
            tx.commit().await.map_err(q(&op))?;
        });
        Ok(())
    }

    async fn add_service(&self, s: &Service) -> Result<(), String> {
        let op = format!("add service {}", s.host);
        let now = on_pool!(&self.pool, _p, d => now_param(d).map_err(text)?);
        on_pool!(&self.pool, p, _d => {
            sqlx::query(
                "INSERT INTO services (created_at, deleted, host, `binary`, topic, report_count, disabled, \
                 availability_zone) VALUES (?, 0, ?, ?, ?, 0, ?, ?)",
            )
            .bind(now.as_str())
            .bind(s.host.as_str())
            .bind(s.binary.as_str())
            .bind(s.topic.as_str())
            .bind(i64::from(s.disabled))
            .bind(s.availability_zone.as_str())
            .execute(p)
            .await
            .map_err(q(&op))?;
        });
        Ok(())
    }

    /// The snapshot row takes its volume's type (`volume_type_id` is
    /// `NOT NULL`).
    async fn add_snapshot(&self, s: &Snapshot) -> Result<(), String> {
        let op = format!("add snapshot {}", s.id);
        let now = on_pool!(&self.pool, _p, d => now_param(d).map_err(text)?);
        let size = i64::try_from(s.volume_size.0).map_err(|_| format!("{op}: size out of range"))?;
        on_pool!(&self.pool, p, _d => {
            let mut tx = p.begin().await.map_err(q(&op))?;
            let rows = sqlx::query("SELECT id, volume_type_id FROM volumes WHERE id = ?")
                .bind(s.volume_id.as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(q(&op))?;
            let mut type_id = None;
            for r in &rows {
                if r.text("id").map_err(q(&op))?.as_deref() == Some(s.volume_id.as_str()) {
                    type_id = r.text("volume_type_id").map_err(q(&op))?;
                }
            }
            let type_id = type_id.ok_or_else(|| format!("{op}: volume {} does not exist", s.volume_id))?;
            sqlx::query(
                "INSERT INTO snapshots (created_at, deleted, id, volume_id, project_id, status, volume_size, \
                 encryption_key_id, volume_type_id, use_quota) VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?, 1)",
            )
            .bind(now.as_str())
            .bind(s.id.as_str())
            .bind(s.volume_id.as_str())
            .bind(s.project_id.as_str())
            .bind(s.status.as_str())
            .bind(size)
            .bind(s.encryption_key_id.as_deref())
            .bind(type_id)
            .execute(&mut *tx)
            .await
            .map_err(q(&op))?;
            tx.commit().await.map_err(q(&op))?;
        });
        Ok(())
    }

    /// Created through the port, then marked deleted with its status kept.
    async fn add_deleted_volume(&self, v: &Volume) -> Result<(), String> {
        let op = format!("add deleted volume {}", v.id);
        self.write(&DbWrite::CreateVolume { volume: Box::new(v.clone()) }).await.map_err(|e| format!("{op}: {e}"))?;
        let now = on_pool!(&self.pool, _p, d => now_param(d).map_err(text)?);
        on_pool!(&self.pool, p, _d => {
            sqlx::query("UPDATE volumes SET deleted = 1, deleted_at = ? WHERE id = ?")
                .bind(now.as_str())
                .bind(v.id.as_str())
                .execute(p)
                .await
                .map_err(q(&op))?;
        });
        Ok(())
    }

    /// `project_default_volume_type_set`: one row per project.
    async fn set_project_default_volume_type(&self, project: &ProjectId, type_id: &str) -> Result<(), String> {
        let op = format!("set the default type of {project}");
        let now = on_pool!(&self.pool, _p, d => now_param(d).map_err(text)?);
        on_pool!(&self.pool, p, _d => {
            let mut tx = p.begin().await.map_err(q(&op))?;
            sqlx::query("DELETE FROM default_volume_types WHERE project_id = ?")
                .bind(project.as_str())
                .execute(&mut *tx)
                .await
                .map_err(q(&op))?;
            sqlx::query(
                "INSERT INTO default_volume_types (created_at, deleted, project_id, volume_type_id) VALUES (?, 0, ?, ?)",
            )
            .bind(now.as_str())
            .bind(project.as_str())
            .bind(type_id)
            .execute(&mut *tx)
            .await
            .map_err(q(&op))?;
            tx.commit().await.map_err(q(&op))?;
        });
        Ok(())
    }

    async fn glance_metadata(&self, volume: &VolumeId) -> Result<BTreeMap<String, String>, String> {
        let op = format!("read the glance metadata of {volume}");
        let rows: Vec<(Option<String>, Option<String>, Option<String>)> = on_pool!(&self.pool, p, _d => {
            let rows = sqlx::query(
                "SELECT volume_id, `key`, value FROM volume_glance_metadata WHERE deleted = 0 AND volume_id = ? ORDER BY id",
            )
            .bind(volume.as_str())
            .fetch_all(p)
            .await
            .map_err(q(&op))?;
            rows.iter()
                .map(|r| Ok((r.text("volume_id")?, r.text("key")?, r.text("value")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(q(&op))?
        });
        Ok(rows
            .into_iter()
            .filter(|(v, _, _)| v.as_deref() == Some(volume.as_str()))
            .filter_map(|(_, k, v)| Some((k?, v.unwrap_or_default())))
            .collect())
    }
}
