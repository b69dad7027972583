//! A conformance suite for [`VolumeDb`] implementations: the semantics of
//! Cinder's database the shell relies on, as
//! [`MemoryVolumeDb`] has them.
//!
//! The port can write volume rows, cache rows and glance metadata, but not
//! the rows a deployment sets up (volume types, services, snapshots,
//! project defaults): a [`DbFixture`] adds those. Every check makes rows
//! of its own (random ids, names tagged with the caller's `tag`) and leaves
//! them behind, so the suite can run on a database that holds other rows;
//! [`run_all`] runs every check and reports each failure. The in-memory
//! backend passes them all, and so must any backend whose plans should
//! behave like upstream's (`tests/sql_sqlite.rs` and
//! `tests/real_cloud/sql.rs` run it on the SQL backend).
//!
//! ```
//! use cinder_flow::memory::MemoryVolumeDb;
//! use cinder_flow::testing::db_suite;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let db = MemoryVolumeDb::new();
//! let failures = db_suite::run_all(&db, &db, "doc").await;
//! assert!(failures.is_empty(), "{failures:#?}");
//! # }
//! ```
//!
//! [`load`] and [`compare_contents`] help compare a backend with the
//! in-memory one on whole situations (the conformance vectors).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use async_trait::async_trait;

use crate::error::{BackendError, BackendErrorKind};
use crate::facts::{CacheLocation, ProjectUsage};
use crate::memory::{DbContents, MemoryVolumeDb};
use crate::model::{
    CacheEntry, Encryption, GiB, Host, ImageId, ProjectId, Service, Snapshot, SnapshotId, Timestamp, Volume, VolumeId,
    VolumeStatus, VolumeType,
};
use crate::plan::{DbWrite, VolumeUpdate};
use crate::ports::VolumeDb;

/// A check that failed: which, and what happened instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteFailure {
    /// The check.
    pub check: &'static str,
    /// What went wrong.
    pub detail: String,
}

impl fmt::Display for SuiteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.check, self.detail)
    }
}

/// Rows a deployment makes that the [`VolumeDb`] port cannot write, and
/// the one thing it cannot read back (glance metadata): what a test
/// fixture needs from a backend.
#[async_trait]
pub trait DbFixture: Send + Sync {
    /// Adds a visible volume type (replacing a visible one of the same
    /// name), with its extra specs, encryption and QoS specs.
    async fn add_volume_type(&self, t: &VolumeType) -> Result<(), String>;
    /// Adds a service row.
    async fn add_service(&self, s: &Service) -> Result<(), String>;
    /// Adds a snapshot row of an existing volume.
    async fn add_snapshot(&self, s: &Snapshot) -> Result<(), String>;
    /// Adds a soft-deleted volume row.
    async fn add_deleted_volume(&self, v: &Volume) -> Result<(), String>;
    /// Sets a project's default volume type (by type id).
    async fn set_project_default_volume_type(&self, project: &ProjectId, type_id: &str) -> Result<(), String>;
    /// The visible glance metadata of a volume (empty when none).
    async fn glance_metadata(&self, volume: &VolumeId) -> Result<BTreeMap<String, String>, String>;
}

#[async_trait]
impl DbFixture for MemoryVolumeDb {
    async fn add_volume_type(&self, t: &VolumeType) -> Result<(), String> {
        MemoryVolumeDb::add_volume_type(self, t.clone());
        Ok(())
    }

    async fn add_service(&self, s: &Service) -> Result<(), String> {
        MemoryVolumeDb::add_service(self, s.clone());
        Ok(())
    }

    async fn add_snapshot(&self, s: &Snapshot) -> Result<(), String> {
        MemoryVolumeDb::add_snapshot(self, s.clone());
        Ok(())
    }

    async fn add_deleted_volume(&self, v: &Volume) -> Result<(), String> {
        MemoryVolumeDb::add_deleted_volume(self, v.clone());
        Ok(())
    }

    async fn set_project_default_volume_type(&self, project: &ProjectId, type_id: &str) -> Result<(), String> {
        MemoryVolumeDb::set_project_default_volume_type(self, project.clone(), Some(type_id.to_owned()));
        Ok(())
    }

    async fn glance_metadata(&self, volume: &VolumeId) -> Result<BTreeMap<String, String>, String> {
        Ok(MemoryVolumeDb::glance_metadata(self, volume).unwrap_or_default())
    }
}

type Check = Result<(), String>;

/// Names unique to one check of one run.
struct Names {
    tag: String,
    run: String,
}

impl Names {
    fn new(tag: &str) -> Self {
        Self { tag: tag.to_owned(), run: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned() }
    }

    fn project(&self, n: u32) -> ProjectId {
        format!("{}-{}-p{n}", self.tag, self.run).into()
    }

    fn name(&self, what: &str) -> String {
        format!("{}-{}-{what}", self.tag, self.run)
    }

    fn uuid() -> String {
        uuid::Uuid::new_v4().to_string()
    }

    fn volume_type(&self, what: &str) -> VolumeType {
        VolumeType::plain(Self::uuid(), self.name(what))
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().expect("constant timestamp")
}

fn err(e: BackendError) -> String {
    e.to_string()
}

async fn write(db: &dyn VolumeDb, w: DbWrite) -> Check {
    db.write(&w).await.map_err(|e| format!("{w:?} failed: {e}"))
}

async fn write_fails(db: &dyn VolumeDb, w: DbWrite, kind: BackendErrorKind) -> Check {
    match db.write(&w).await {
        Ok(()) => Err(format!("{w:?} succeeded; expected {kind}")),
        Err(e) if e.kind == kind => Ok(()),
        Err(e) => Err(format!("{w:?} failed with {}; expected {kind}: {e}", e.kind)),
    }
}

fn same<T: PartialEq + fmt::Debug>(what: &str, got: T, want: T) -> Check {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, expected {want:?}"))
    }
}

async fn create(db: &dyn VolumeDb, v: &Volume) -> Check {
    write(db, DbWrite::CreateVolume { volume: Box::new(v.clone()) }).await
}

fn volume(n: &Names, project: u32, size: u64, t: &VolumeType) -> Volume {
    let mut v = Volume::new(Names::uuid(), n.project(project), GiB(size));
    v.volume_type = t.name.clone();
    v
}

async fn visible(db: &dyn VolumeDb, id: &VolumeId) -> Result<bool, String> {
    Ok(db.volume(id).await.map_err(err)?.is_some())
}

/// A volume row written with every column the model has reads back
/// exactly, by `volume` and by `volumes`; a second create of the same id
/// is `AlreadyExists` and changes nothing.
pub async fn volume_round_trip(db: &dyn VolumeDb, fx: &dyn DbFixture, tag: &str) -> Check {
    let n = Names::new(tag);
    let t = n.volume_type("rt");
    fx.add_volume_type(&t).await?;
    let mut v = volume(&n, 1, 7, &t).on_host(format!("{}@ceph#fast", n.name("h")));
    v.cluster_name = Some(format!("{}@ceph#fast", n.name("c")));
    v.user_id = n.name("u").into();
    v.status = VolumeStatus::Creating;
    v.encryption_key_id = Some(Names::uuid());
    v.availability_zone = n.name("az");
    v.bootable = true;
    v.use_quota = false;
    v.metadata = BTreeMap::from([("image_owner".to_owned(), n.name("o")), ("k2".to_owned(), "v2".to_owned())]);
    v.admin_metadata = BTreeMap::from([("readonly".to_owned(), "True".to_owned())]);
    v.created_at = ts("2024-03-04T05:06:07Z");
    v.name_id = Some(Names::uuid().into());
    v.snapshot_id = Some(Names::uuid().into());
    v.source_volid = Some(Names::uuid().into());
    create(db, &v).await?;
    let read = db.volume(&v.id).await.map_err(err)?.ok_or("the created volume is not found")?;
    same("volume()", &*read, &v)?;
    let many = db.volumes(std::slice::from_ref(&v.id)).await.map_err(err)?;
    same("volumes()", many.iter().map(|r| (**r).clone()).collect::<Vec<_>>(), vec![v.clone()])?;
    let mut other = v.clone();
    other.size = GiB(9);
    write_fails(db, DbWrite::CreateVolume { volume: Box::new(other) }, BackendErrorKind::AlreadyExists).await?;
    let read = db.volume(&v.id).await.map_err(err)?.ok_or("the volume vanished")?;
    same("volume after a refused create", &*read, &v)?;
    // A row without host, cluster or optional ids.
    let plain = volume(&n, 1, 1, &t);
    create(db, &plain).await?;
    let read = db.volume(&plain.id).await.map_err(err)?.ok_or("the plain volume is not found")?;
    same("plain volume()", &*read, &plain)
}

/// `volumes` answers the visible rows among the ids, in any order, once
/// each: unknown ids, duplicates and deleted rows (deleted by the port or
/// added deleted) give nothing.
pub async fn volumes_among_ids(db: &dyn VolumeDb, fx: &dyn DbFixture, tag: &str) -> Check {
    let n = Names::new(tag);
    let t = n.volume_type("ids");
    fx.add_volume_type(&t).await?;
    let a = volume(&n, 1, 1, &t);
    let b = volume(&n, 1, 2, &t);
    let gone = volume(&n, 1, 3, &t);
    let added_deleted = volume(&n, 1, 4, &t);
    for v in [&a, &b, &gone] {
        create(db, v).await?;
    }
    write(db, DbWrite::DeleteVolumeRow { volume_id: gone.id.clone() }).await?;
    fx.add_deleted_volume(&added_deleted).await?;
    let unknown = VolumeId::from(Names::uuid());
    let ask = [b.id.clone(), unknown.clone(), gone.id.clone(), a.id.clone(), added_deleted.id.clone(), b.id.clone()];
    let got = db.volumes(&ask).await.map_err(err)?;
    let mut ids: Vec<VolumeId> = got.iter().map(|v| v.id.clone()).collect();
    ids.sort();
    let mut want = vec![a.id.clone(), b.id.clone()];
    want.sort();
    same("ids answered", ids, want)?;
    for id in [&gone.id, &added_deleted.id, &unknown] {
        if visible(db, id).await? {
            return Err(format!("volume({id}) answers a deleted or unknown row"));
        }
    }
    same("volumes(&[])", db.volumes(&[]).await.map_err(err)?.len(), 0)
}

/// `UpdateVolume` sets the columns given and leaves the others; a missing
/// or deleted volume is `NotFound`.
pub async fn update_volume(db: &dyn VolumeDb, fx: &dyn DbFixture, tag: &str) -> Check {
    let n = Names::new(tag);
    let t = n.volume_type("upd");
    fx.add_volume_type(&t).await?;
    let mut v = volume(&n, 1, 2, &t);
    v.status = VolumeStatus::Creating;
    create(db, &v).await?;
    let update = |set: VolumeUpdate, id: &VolumeId| DbWrite::UpdateVolume {
        volume_id: id.clone(),
        set,
        previous: VolumeUpdate::default(),
    };
    write(db, update(VolumeUpdate { status: Some(VolumeStatus::Downloading), ..Default::default() }, &v.id)).await?;
    v.status = VolumeStatus::Downloading;
    same("after a status update", &*db.volume(&v.id).await.map_err(err)?.ok_or("vanished")?, &v)?;
    let set =
        VolumeUpdate { status: Some(VolumeStatus::Available), size: Some(GiB(5)), bootable: Some(true), host: None };
    write(db, update(set, &v.id)).await?;
    v.status = VolumeStatus::Available;
    v.size = GiB(5);
    v.bootable = true;
    same("after a full update", &*db.volume(&v.id).await.map_err(err)?.ok_or("vanished")?, &v)?;
    write(db, update(VolumeUpdate { bootable: Some(false), ..Default::default() }, &v.id)).await?;
    v.bootable = false;
    same("after a bootable update", &*db.volume(&v.id).await.map_err(err)?.ok_or("vanished")?, &v)?;
    write(db, update(VolumeUpdate::default(), &v.id)).await?;
    let status = VolumeUpdate { status: Some(VolumeStatus::Error), ..Default::default() };
    let unknown = VolumeId::from(Names::uuid());
    write_fails(db, update(status.clone(), &unknown), BackendErrorKind::NotFound).await?;
    write(db, DbWrite::DeleteVolumeRow { volume_id: v.id.clone() }).await?;
    write_fails(db, update(status, &v.id), BackendErrorKind::NotFound).await
}

/// `DeleteVolumeRow` hides the row; deleting it again, or a row that never
/// existed, is `NotFound`; the id stays taken.
pub async fn delete_volume_row(db: &dyn VolumeDb, fx: &dyn DbFixture, tag: &str) -> Check {
    let n = Names::new(tag);
    let t = n.volume_type("del");
    fx.add_volume_type(&t).await?;
    let v = volume(&n, 1, 1, &t);
    create(db, &v).await?;
    write(db, DbWrite::DeleteVolumeRow { volume_id: v.id.clone() }).await?;
    if visible(db, &v.id).await? {
        return Err("a deleted volume is still visible".into());
    }
    write_fails(db, DbWrite::DeleteVolumeRow { volume_id: v.id.clone() }, BackendErrorKind::NotFound).await?;
    write_fails(db, DbWrite::DeleteVolumeRow { volume_id: Names::uuid().into() }, BackendErrorKind::NotFound).await?;
    write_fails(db, DbWrite::CreateVolume { volume: Box::new(v) }, BackendErrorKind::AlreadyExists).await
}

/// `new_volume_id` answers distinct ids no row has.
pub async fn fresh_ids(db: &dyn VolumeDb, fx: &dyn DbFixture, tag: &str) -> Check {
    let n = Names::new(tag);
    let t = n.volume_type("ids");
    fx.add_volume_type(&t).await?;
    let a = db.new_volume_id().await.map_err(err)?;
    let mut v = volume(&n, 1, 1, &t);
    v.id = a.clone();
    create(db, &v).await?;
    let b = db.new_volume_id().await.map_err(err)?;
    if a == b {
        return Err(format!("new_volume_id answered {a} twice"));
    }
    if visible(db, &b).await? {
        return Err(format!("new_volume_id answered {b}, which a volume has"));
    }
    Ok(())
}

/// A snapshot row reads back, alone and among its volume's
/// (`snapshots_of_volume`); a missing one is `None`; `UpdateSnapshot`
/// sets its status, and is `NotFound` for a missing snapshot.
pub async fn snapshots(db: &dyn VolumeDb, fx: &dyn DbFixture, tag: &str) -> Check {
    let n = Names::new(tag);
    let t = n.volume_type("snap");
    fx.add_volume_type(&t).await?;
    let v = volume(&n, 1, 3, &t);
    create(db, &v).await?;
    let snap = Snapshot {
        id: SnapshotId::from(Names::uuid()),
        volume_id: v.id.clone(),
        volume_size: GiB(3),
        status: "available".into(),
        project_id: n.project(1),
        encryption_key_id: Some(Names::uuid()),
    };
    fx.add_snapshot(&snap).await?;
    same("snapshot()", db.snapshot(&snap.id).await.map_err(err)?, Some(snap.clone()))?;
    same("missing snapshot()", db.snapshot(&Names::uuid().into()).await.map_err(err)?, None)?;
    same("snapshots_of_volume()", db.snapshots_of_volume(&v.id).await.map_err(err)?, vec![snap.clone()])?;
    same(
        "snapshots_of_volume() of a volume without any",
        db.snapshots_of_volume(&Names::uuid().into()).await.map_err(err)?,
        vec![],
    )?;
    let update = |id: &SnapshotId, status: &str| DbWrite::UpdateSnapshot {
        snapshot_id: id.clone(),
        status: status.into(),
        previous: "available".into(),
    };
    write(db, update(&snap.id, "backing-up")).await?;
    let read = db.snapshot(&snap.id).await.map_err(err)?.ok_or("snapshot vanished")?;
    same("status after UpdateSnapshot", read.status.as_str(), "backing-up")?;
    write_fails(db, update(&Names::uuid().into(), "error"), BackendErrorKind::NotFound).await
}

/// A type is found by name and by id, with its extra specs, encryption and
/// QoS specs; a name wins over another type's id; unknown keys give `None`.
pub async fn volume_types(db: &dyn VolumeDb, fx: &dyn DbFixture, tag: &str) -> Check {
    let n = Names::new(tag);
    let mut gold = n.volume_type("gold");
    gold.extra_specs = BTreeMap::from([
        ("RESKEY:availability_zones".to_owned(), "az1,az2".to_owned()),
        ("multiattach".to_owned(), "<is> True".to_owned()),
    ]);
    gold.encryption = Some(Encryption {
        provider: "luks".into(),
        cipher: Some("aes-xts-plain64".into()),
        key_size: Some(256),
        control_location: "front-end".into(),
    });
    gold.qos_specs = BTreeMap::from([("read_iops_sec".to_owned(), "1000".to_owned())]);
    fx.add_volume_type(&gold).await?;
    let plain = n.volume_type("plain");
    fx.add_volume_type(&plain).await?;
    same("by name", db.volume_type(&gold.name).await.map_err(err)?, Some(gold.clone()))?;
    same("by id", db.volume_type(&gold.id).await.map_err(err)?, Some(gold.clone()))?;
    same("plain by name", db.volume_type(&plain.name).await.map_err(err)?, Some(plain.clone()))?;
    same("unknown", db.volume_type(&n.name("nope")).await.map_err(err)?, None)?;
    // A type named after another type's id: the name wins.
    let shadow = VolumeType::plain(Names::uuid(), plain.id.clone());
    fx.add_volume_type(&shadow).await?;
    same("a name equal to another type's id", db.volume_type(&plain.id).await.map_err(err)?, Some(shadow))
}

/// `services` includes every service added, with its columns.
pub async fn services(db: &dyn VolumeDb, fx: &dyn DbFixture, tag: &str) -> Check {
    let n = Names::new(tag);
    let added = [
        Service {
            host: format!("{}@ceph", n.name("h")),
            binary: "cinder-volume".into(),
            topic: "cinder-volume".into(),
            availability_zone: n.name("az1"),
            disabled: false,
        },
        Service {
            host: n.name("api"),
            binary: "cinder-scheduler".into(),
            topic: "cinder-scheduler".into(),
            availability_zone: n.name("az2"),
            disabled: true,
        },
    ];
    for s in &added {
        fx.add_service(s).await?;
    }
    let all = db.services().await.map_err(err)?;
    for s in &added {
        if !all.contains(s) {
            return Err(format!("services() lacks {s:?}"));
        }
    }
    Ok(())
}

/// A project's default type is its id; another project has none.
pub async fn project_default_types(db: &dyn VolumeDb, fx: &dyn DbFixture, tag: &str) -> Check {
    let n = Names::new(tag);
    let t = n.volume_type("default");
    fx.add_volume_type(&t).await?;
    fx.set_project_default_volume_type(&n.project(1), &t.id).await?;
    same("default of p1", db.project_default_volume_type(&n.project(1)).await.map_err(err)?, Some(t.id.clone()))?;
    same("default of p2", db.project_default_volume_type(&n.project(2)).await.map_err(err)?, None)
}

/// Quota usage counts the project's visible volumes that count against
/// quota, and its snapshots, with their sizes.
pub async fn project_usage(db: &dyn VolumeDb, fx: &dyn DbFixture, tag: &str) -> Check {
    let n = Names::new(tag);
    let t = n.volume_type("quota");
    fx.add_volume_type(&t).await?;
    let a = volume(&n, 1, 1, &t);
    let b = volume(&n, 1, 2, &t);
    let mut temporary = volume(&n, 1, 4, &t);
    temporary.use_quota = false;
    let deleted = volume(&n, 1, 8, &t);
    let other = volume(&n, 2, 16, &t);
    for v in [&a, &b, &temporary, &deleted, &other] {
        create(db, v).await?;
    }
    write(db, DbWrite::DeleteVolumeRow { volume_id: deleted.id.clone() }).await?;
    fx.add_deleted_volume(&volume(&n, 1, 32, &t)).await?;
    for (vol, size, project) in [(&a, 3, 1), (&b, 5, 1), (&other, 64, 2)] {
        let snap = Snapshot {
            id: SnapshotId::from(Names::uuid()),
            volume_id: vol.id.clone(),
            volume_size: GiB(size),
            status: "available".into(),
            project_id: n.project(project),
            encryption_key_id: None,
        };
        fx.add_snapshot(&snap).await?;
    }
    let want = ProjectUsage { volumes: 2, volume_gigabytes: 3, snapshots: 2, snapshot_gigabytes: 8 };
    same("usage of p1", db.project_usage(&n.project(1)).await.map_err(err)?, want)?;
    same("usage of p3", db.project_usage(&n.project(3)).await.map_err(err)?, ProjectUsage::default())
}

fn sorted(mut v: Vec<CacheEntry>) -> Vec<CacheEntry> {
    v.sort_by(|a, b| a.volume_id.cmp(&b.volume_id));
    v
}

/// Cache rows: found by image (any host) and by exact host or cluster
/// (never by prefix); touching sets `last_used`; deleting and evicting
/// remove the row (missing rows are no error); one row per volume.
pub async fn cache_entries(db: &dyn VolumeDb, _fx: &dyn DbFixture, tag: &str) -> Check {
    let n = Names::new(tag);
    let image = ImageId::from(Names::uuid());
    let other_image = ImageId::from(Names::uuid());
    let pool_a = format!("{}@ceph#a", n.name("h"));
    let entry = |image: &ImageId, host: &str, cluster: Option<String>, last_used: &str| CacheEntry {
        image_id: image.clone(),
        host: Some(Host::from(host)),
        cluster_name: cluster,
        volume_id: Names::uuid().into(),
        size: GiB(1),
        image_updated_at: ts("2024-01-01T00:00:00Z"),
        last_used: ts(last_used),
    };
    let e1 = entry(&image, &pool_a, None, "2024-02-01T00:00:00Z");
    let e2 = entry(&image, &format!("{}@ceph#b", n.name("h")), None, "2024-02-02T00:00:00Z");
    let cluster = format!("{}@ceph#a", n.name("cl"));
    let e3 = entry(&other_image, &pool_a, Some(cluster.clone()), "2024-02-03T00:00:00Z");
    for e in [&e1, &e2, &e3] {
        write(db, DbWrite::CreateCacheEntry { entry: e.clone() }).await?;
    }
    let of = |i: &ImageId| {
        let i = i.clone();
        async move { db.cache_entries_of_image(&i).await.map_err(err).map(sorted) }
    };
    let at = |host: Option<String>, cluster_name: Option<String>| async move {
        db.cache_entries_at(&CacheLocation { host, cluster_name }).await.map_err(err).map(sorted)
    };
    same("of image", of(&image).await?, sorted(vec![e1.clone(), e2.clone()]))?;
    same("at host", at(Some(pool_a.clone()), None).await?, sorted(vec![e1.clone(), e3.clone()]))?;
    same("at a host prefix", at(Some(format!("{}@ceph", n.name("h"))), None).await?, Vec::new())?;
    same("at cluster", at(None, Some(cluster.clone())).await?, vec![e3.clone()])?;
    same("at host and cluster", at(Some(pool_a.clone()), Some(cluster)).await?, vec![e3.clone()])?;
    let touched = ts("2024-03-01T12:00:00Z");
    write(db, DbWrite::TouchCacheEntry { volume_id: e1.volume_id.clone(), last_used: touched, previous: e1.last_used })
        .await?;
    let mut e1_touched = e1.clone();
    e1_touched.last_used = touched;
    same("after a touch", of(&image).await?, sorted(vec![e1_touched.clone(), e2.clone()]))?;
    let nobody = VolumeId::from(Names::uuid());
    write(db, DbWrite::TouchCacheEntry { volume_id: nobody.clone(), last_used: touched, previous: touched }).await?;
    write(db, DbWrite::DeleteCacheEntry { volume_id: e2.volume_id.clone() }).await?;
    write(db, DbWrite::DeleteCacheEntry { volume_id: nobody }).await?;
    same("after a delete", of(&image).await?, vec![e1_touched.clone()])?;
    write(db, DbWrite::EvictCacheEntry { entry: e3.clone() }).await?;
    same("after an eviction", of(&other_image).await?, Vec::new())?;
    let mut again = e1.clone();
    again.size = GiB(2);
    write(db, DbWrite::CreateCacheEntry { entry: again.clone() }).await?;
    same("one row per volume", of(&image).await?, vec![again])
}

/// Glance metadata: a second store adds keys and updates values; deleting
/// removes all of it; storing again after that starts afresh; restoring
/// gives exactly the metadata given (none when empty).
pub async fn glance_metadata(db: &dyn VolumeDb, fx: &dyn DbFixture, tag: &str) -> Check {
    let n = Names::new(tag);
    let t = n.volume_type("glance");
    fx.add_volume_type(&t).await?;
    let v = volume(&n, 1, 1, &t);
    create(db, &v).await?;
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    };
    let set = |m: BTreeMap<String, String>| DbWrite::SetGlanceMetadata { volume_id: v.id.clone(), metadata: m };
    write(db, set(map(&[("image_id", "i1"), ("disk_format", "raw")]))).await?;
    write(db, set(map(&[("disk_format", "qcow2"), ("min_ram", "0")]))).await?;
    same(
        "after two stores",
        fx.glance_metadata(&v.id).await?,
        map(&[("image_id", "i1"), ("disk_format", "qcow2"), ("min_ram", "0")]),
    )?;
    write(db, DbWrite::DeleteGlanceMetadata { volume_id: v.id.clone() }).await?;
    same("after a delete", fx.glance_metadata(&v.id).await?, BTreeMap::new())?;
    write(db, DbWrite::DeleteGlanceMetadata { volume_id: v.id.clone() }).await?;
    write(db, set(map(&[("size", "1")]))).await?;
    same("after a store that follows a delete", fx.glance_metadata(&v.id).await?, map(&[("size", "1")]))?;
    let restore = |m: BTreeMap<String, String>| DbWrite::RestoreGlanceMetadata { volume_id: v.id.clone(), metadata: m };
    write(db, restore(map(&[("image_id", "i0"), ("size", "2")]))).await?;
    same("after a restore", fx.glance_metadata(&v.id).await?, map(&[("image_id", "i0"), ("size", "2")]))?;
    write(db, restore(BTreeMap::new())).await?;
    same("after restoring none", fx.glance_metadata(&v.id).await?, BTreeMap::new())
}

/// Runs every check; the failures, empty when the backend conforms.
pub async fn run_all(db: &dyn VolumeDb, fixture: &dyn DbFixture, tag: &str) -> Vec<SuiteFailure> {
    let mut failures = Vec::new();
    macro_rules! run {
        ($($name:ident),*) => {
            $(
                if let Err(detail) = $name(db, fixture, tag).await {
                    failures.push(SuiteFailure { check: stringify!($name), detail });
                }
            )*
        };
    }
    run!(
        volume_round_trip,
        volumes_among_ids,
        update_volume,
        delete_volume_row,
        fresh_ids,
        snapshots,
        volume_types,
        services,
        project_default_types,
        project_usage,
        cache_entries,
        glance_metadata
    );
    failures
}

/// Puts `contents` (the rows of a [`MemoryVolumeDb`]) into another backend
/// through the port and `fixture`: types, volumes (deleted ones too),
/// snapshots, services, project defaults, cache rows, glance metadata.
/// The backend should hold no rows of its own that the comparison would
/// see (start from an empty database). Evictions are not rows and are not
/// loaded.
pub async fn load(db: &dyn VolumeDb, fixture: &dyn DbFixture, contents: &DbContents) -> Result<(), String> {
    for t in &contents.types {
        fixture.add_volume_type(t).await?;
    }
    for (id, v) in &contents.volumes {
        if contents.deleted.contains(id) {
            fixture.add_deleted_volume(v).await?;
        } else {
            db.write(&DbWrite::CreateVolume { volume: Box::new(v.clone()) })
                .await
                .map_err(|e| format!("loading volume {id}: {e}"))?;
        }
    }
    for s in contents.snapshots.values() {
        fixture.add_snapshot(s).await?;
    }
    for s in &contents.services {
        fixture.add_service(s).await?;
    }
    for (project, type_id) in &contents.project_default_types {
        fixture.set_project_default_volume_type(project, type_id).await?;
    }
    for e in contents.cache.values() {
        db.write(&DbWrite::CreateCacheEntry { entry: e.clone() })
            .await
            .map_err(|err| format!("loading the cache entry of {}: {err}", e.volume_id))?;
    }
    for (id, metadata) in &contents.glance_metadata {
        db.write(&DbWrite::SetGlanceMetadata { volume_id: id.clone(), metadata: metadata.clone() })
            .await
            .map_err(|e| format!("loading the glance metadata of {id}: {e}"))?;
    }
    Ok(())
}

/// The differences between two databases' contents that the port can
/// observe: visible volume rows, which ids are deleted, snapshots, types
/// (in any order), services, cache rows, evictions, project defaults, and
/// the glance metadata of visible volumes. Deleted rows are compared by id
/// only (what else a backend keeps of them, e.g. upstream's `deleted`
/// status, is invisible through the port).
pub fn compare_contents(expected: &DbContents, got: &DbContents) -> Vec<String> {
    let mut out = Vec::new();
    let visible = |c: &DbContents| -> BTreeMap<VolumeId, Volume> {
        c.volumes.iter().filter(|(id, _)| !c.deleted.contains(*id)).map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    let (ev, gv) = (visible(expected), visible(got));
    for id in ev.keys().chain(gv.keys()).collect::<BTreeSet<_>>() {
        match (ev.get(id), gv.get(id)) {
            (Some(a), Some(b)) if a != b => out.push(format!("volume {id}: expected {a:?}\n  got {b:?}")),
            (Some(_), None) => out.push(format!("volume {id}: missing")),
            (None, Some(b)) => out.push(format!("volume {id}: unexpected {b:?}")),
            _ => {}
        }
    }
    let diff = |out: &mut Vec<String>, what: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{what}: expected {a}\n  got {b}"));
        }
    };
    diff(&mut out, "deleted volumes", format!("{:?}", expected.deleted), format!("{:?}", got.deleted));
    diff(&mut out, "snapshots", format!("{:?}", expected.snapshots), format!("{:?}", got.snapshots));
    let types = |c: &DbContents| {
        let mut t = c.types.clone();
        t.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        format!("{t:?}")
    };
    diff(&mut out, "volume types", types(expected), types(got));
    diff(&mut out, "services", format!("{:?}", expected.services), format!("{:?}", got.services));
    diff(&mut out, "cache entries", format!("{:?}", expected.cache), format!("{:?}", got.cache));
    diff(&mut out, "evictions", format!("{:?}", expected.evictions), format!("{:?}", got.evictions));
    diff(
        &mut out,
        "project default types",
        format!("{:?}", expected.project_default_types),
        format!("{:?}", got.project_default_types),
    );
    let glance = |c: &DbContents, vis: &BTreeMap<VolumeId, Volume>| {
        let m: BTreeMap<&VolumeId, &BTreeMap<String, String>> =
            c.glance_metadata.iter().filter(|(id, m)| vis.contains_key(*id) && !m.is_empty()).collect();
        format!("{m:?}")
    };
    diff(&mut out, "glance metadata", glance(expected, &ev), glance(got, &gv));
    out
}
