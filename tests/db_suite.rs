//! The `VolumeDb` conformance suite (`cinder_flow::testing::db_suite`) on
//! the in-memory database, the reference every other backend is held to;
//! and on broken variants of it, which the suite must catch.
#![cfg(feature = "testing")]

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cinder_flow::error::{BackendError, BackendErrorKind};
use cinder_flow::facts::{CacheLocation, ProjectUsage};
use cinder_flow::memory::MemoryVolumeDb;
use cinder_flow::model::{CacheEntry, ImageId, ProjectId, Service, Snapshot, SnapshotId, Volume, VolumeId, VolumeType};
use cinder_flow::plan::DbWrite;
use cinder_flow::ports::{BackendResult, VolumeDb};
use cinder_flow::testing::db_suite::{self, DbFixture};

#[tokio::test]
async fn the_memory_database_passes_the_db_suite() {
    let db = MemoryVolumeDb::new();
    let failures = db_suite::run_all(&db, &db, "mem").await;
    assert!(failures.is_empty(), "{failures:#?}");
    // Twice on the same database: the checks make rows of their own.
    let failures = db_suite::run_all(&db, &db, "mem").await;
    assert!(failures.is_empty(), "second run: {failures:#?}");
}

/// One way a database backend can get Cinder wrong.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Bug {
    /// Soft-deleted rows are visible (no `deleted = 0`).
    ShowsDeleted,
    /// Writes to missing rows succeed silently.
    IgnoresMissingRows,
    /// Cache rows match a host by prefix (a `LIKE 'host%'`).
    CacheByHostPrefix,
    /// Temporary volumes (`use_quota = false`) count against quota.
    QuotaCountsEverything,
    /// Types are only found by name.
    TypesByNameOnly,
    /// A volume's snapshots include every snapshot (a missing `volume_id`
    /// condition), so no cached volume could ever be deleted.
    SnapshotsOfEveryVolume,
}

#[derive(Debug)]
struct Broken {
    db: MemoryVolumeDb,
    bug: Bug,
}

#[async_trait]
impl VolumeDb for Broken {
    async fn volume(&self, id: &VolumeId) -> BackendResult<Option<Arc<Volume>>> {
        if self.bug == Bug::ShowsDeleted {
            return Ok(self.db.contents().volumes.get(id).cloned().map(Arc::new));
        }
        self.db.volume(id).await
    }

    async fn volumes(&self, ids: &[VolumeId]) -> BackendResult<Vec<Arc<Volume>>> {
        self.db.volumes(ids).await
    }

    async fn snapshot(&self, id: &SnapshotId) -> BackendResult<Option<Snapshot>> {
        self.db.snapshot(id).await
    }

    async fn snapshots_of_volume(&self, volume_id: &VolumeId) -> BackendResult<Vec<Snapshot>> {
        if self.bug == Bug::SnapshotsOfEveryVolume {
            return Ok(self.db.contents().snapshots.into_values().collect());
        }
        self.db.snapshots_of_volume(volume_id).await
    }

    async fn volume_type(&self, name_or_id: &str) -> BackendResult<Option<VolumeType>> {
        if self.bug == Bug::TypesByNameOnly {
            return Ok(self.db.contents().types.into_iter().find(|t| t.name == name_or_id));
        }
        self.db.volume_type(name_or_id).await
    }

    async fn services(&self) -> BackendResult<Vec<Service>> {
        self.db.services().await
    }

    async fn project_default_volume_type(&self, project_id: &ProjectId) -> BackendResult<Option<String>> {
        self.db.project_default_volume_type(project_id).await
    }

    async fn project_usage(&self, project_id: &ProjectId) -> BackendResult<ProjectUsage> {
        let mut usage = self.db.project_usage(project_id).await?;
        if self.bug == Bug::QuotaCountsEverything {
            let c = self.db.contents();
            for v in c.volumes.values() {
                if &v.project_id == project_id && !v.use_quota && !c.deleted.contains(&v.id) {
                    usage.volumes += 1;
                    usage.volume_gigabytes += v.size.0;
                }
            }
        }
        Ok(usage)
    }

    async fn cache_entries_of_image(&self, image_id: &ImageId) -> BackendResult<Vec<CacheEntry>> {
        self.db.cache_entries_of_image(image_id).await
    }

    async fn cache_entries_at(&self, location: &CacheLocation) -> BackendResult<Vec<CacheEntry>> {
        if self.bug == Bug::CacheByHostPrefix {
            if let Some(host) = &location.host {
                let all = self.db.cache_entries();
                return Ok(all
                    .into_iter()
                    .filter(|e| e.host.as_ref().is_some_and(|h| h.as_str().starts_with(host.as_str())))
                    .collect());
            }
        }
        self.db.cache_entries_at(location).await
    }

    async fn new_volume_id(&self) -> BackendResult<VolumeId> {
        self.db.new_volume_id().await
    }

    async fn write(&self, write: &DbWrite) -> BackendResult<()> {
        match self.db.write(write).await {
            Err(BackendError { kind: BackendErrorKind::NotFound, .. }) if self.bug == Bug::IgnoresMissingRows => Ok(()),
            other => other,
        }
    }
}

#[async_trait]
impl DbFixture for Broken {
    async fn add_volume_type(&self, t: &VolumeType) -> Result<(), String> {
        DbFixture::add_volume_type(&self.db, t).await
    }

    async fn add_service(&self, s: &Service) -> Result<(), String> {
        DbFixture::add_service(&self.db, s).await
    }

    async fn add_snapshot(&self, s: &Snapshot) -> Result<(), String> {
        DbFixture::add_snapshot(&self.db, s).await
    }

    async fn add_deleted_volume(&self, v: &Volume) -> Result<(), String> {
        DbFixture::add_deleted_volume(&self.db, v).await
    }

    async fn set_project_default_volume_type(&self, project: &ProjectId, type_id: &str) -> Result<(), String> {
        DbFixture::set_project_default_volume_type(&self.db, project, type_id).await
    }

    async fn glance_metadata(&self, volume: &VolumeId) -> Result<BTreeMap<String, String>, String> {
        DbFixture::glance_metadata(&self.db, volume).await
    }
}

#[tokio::test]
async fn the_db_suite_catches_broken_backends() {
    for (bug, check) in [
        (Bug::ShowsDeleted, "volumes_among_ids"),
        (Bug::IgnoresMissingRows, "update_volume"),
        (Bug::CacheByHostPrefix, "cache_entries"),
        (Bug::QuotaCountsEverything, "project_usage"),
        (Bug::TypesByNameOnly, "volume_types"),
        (Bug::SnapshotsOfEveryVolume, "snapshots"),
    ] {
        let broken = Broken { db: MemoryVolumeDb::new(), bug };
        let failures = db_suite::run_all(&broken, &broken, "broken").await;
        assert!(failures.iter().any(|f| f.check == check), "{bug:?} not caught by {check}: {failures:#?}");
    }
}
