//! `cinder-flow explain --image I --size S --host H --project P --conf F`:
//! what Cinder 29 would do for "a volume of S GiB from image I, scheduled
//! to H, for project P", with the facts read from the live cloud the
//! `cinder.conf` describes: Cinder's database (`[database] connection`),
//! Glance (`glance_api_servers`) and the backend's Ceph cluster
//! (`rbd_ceph_conf`, `rbd_user`).
//!
//! Strictly read-only. The ports are wrapped so that every call that would
//! change something (a database write, a Glance location change, an RBD
//! operation, an image download) is refused before it reaches the server,
//! and only planning runs: nothing is executed. The volume being asked
//! about does not exist in the database; it is an overlay row the wrapped
//! database answers for that id only (Cinder's API would have created it
//! in `creating` before the volume manager decides).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use cinder_flow::config::{CinderConf, Loaded};
use cinder_flow::error::{BackendError, BackendErrorKind};
use cinder_flow::explain::{render_plan, Escaped};
use cinder_flow::facts::{CacheLocation, Capabilities, ClusterInfo, HostInfo, ProjectUsage};
use cinder_flow::glance::{Auth, GlanceImageService, GlanceOptions, KeystonePassword, Secret, TrustedIdentity};
use cinder_flow::librbd::{RbdConfig, RbdDriver};
use cinder_flow::model::{
    CacheEntry, GiB, Host, Image, ImageId, LocationApi, LocationEntry, ProjectId, Service, Snapshot, SnapshotId,
    Timestamp, UserId, Volume, VolumeId, VolumeStatus, VolumeType,
};
use cinder_flow::plan::{DbWrite, Operation};
use cinder_flow::planner::{Policy, Request};
use cinder_flow::ports::{BackendResult, DownloadedImage, Driver, ImageService, VolumeDb};
use cinder_flow::rbd::{ImageInfo, ImageSpec, RbdOp};
use cinder_flow::shell::{self, Backends};
use cinder_flow::sql::{DatabaseUrl, SqlOptions, SqlVolumeDb};

use super::offline::{report_conf, Stop};

/// The volume asked about, and how to reach the cloud.
#[derive(Debug)]
pub struct LiveArgs {
    pub conf: PathBuf,
    pub backend: Option<String>,
    pub image: String,
    pub size: u64,
    pub host: String,
    pub project: String,
    pub user: String,
    pub volume_type: Option<String>,
    pub availability_zone: Option<String>,
    pub glance_auth: GlanceAuth,
    pub policy: Policy,
    pub now: Timestamp,
    pub json: bool,
}

/// How to authenticate to Glance.
#[derive(Debug)]
pub enum GlanceAuth {
    /// A token (`--os-token` / `OS_AUTH_TOKEN`).
    Token(String),
    /// Keystone v3 password login (`--os-auth-url` and friends).
    Keystone { auth_url: String, username: String, password: String, project_name: String, domain: String },
    /// A Glance without Keystone that trusts identity headers (test clouds).
    TrustedHeaders,
}

/// The id the overlay row answers for: no real volume has it (the nil
/// UUID is never generated), so the overlay cannot shadow one.
const ASKED_ID: &str = "00000000-0000-0000-0000-000000000000";

/// Why a live explanation could not be made (the message is shown as is).
fn fail(err: &mut dyn Write, what: impl std::fmt::Display) -> Stop {
    match writeln!(err, "explain: {}", Escaped(what)) {
        Ok(()) => Stop::Failed,
        Err(e) => Stop::from(e),
    }
}

pub async fn explain_live(args: &LiveArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Stop> {
    let conf = CinderConf::read(&args.conf).map_err(|e| fail(err, e))?;
    let loaded: Loaded = conf.load(args.backend.as_deref()).map_err(|e| fail(err, e))?;
    report_conf(&loaded, &args.conf.display().to_string(), if args.json { &mut *err } else { &mut *out })?;
    let config = &loaded.config;

    // The three real backends, each from cinder.conf.
    let url = DatabaseUrl::from_cinder_conf(&conf).map_err(|e| fail(err, format!("database: {e}")))?;
    let options = SqlOptions::from_cinder_conf(&conf).map_err(|e| fail(err, format!("database: {e}")))?;
    let db = SqlVolumeDb::connect_with(&url, &options).await.map_err(|e| fail(err, format!("database: {e}")))?;
    let auth = glance_auth(&args.glance_auth, &args.project, &args.user).map_err(|e| fail(err, e))?;
    let glance_options = GlanceOptions::from_config(config, auth).map_err(|e| fail(err, format!("glance: {e}")))?;
    let glance = GlanceImageService::new(glance_options).map_err(|e| fail(err, format!("glance: {e}")))?;
    let mut rbd = RbdConfig::default();
    if !config.backend.rbd_ceph_conf.is_empty() {
        rbd = RbdConfig::with_conf(&config.backend.rbd_ceph_conf);
    }
    if let Some(user) = &config.backend.rbd_user {
        rbd = rbd.with_client_id(user.clone());
    }
    let driver = RbdDriver::new(rbd);

    // The row Cinder's API would have created.
    let host: Host = args.host.as_str().into();
    let mut asked = Volume::new(ASKED_ID, args.project.as_str(), GiB(args.size)).on_host(host);
    asked.user_id = UserId::from(args.user.as_str());
    asked.status = VolumeStatus::Creating;
    asked.volume_type = args.volume_type.clone().unwrap_or_else(|| config.default_volume_type.clone());
    if let Some(az) = &args.availability_zone {
        asked.availability_zone = az.clone();
    }
    asked.created_at = args.now;

    let db = ReadOnlyDb { db: &db, asked: Arc::new(asked) };
    let images = ReadOnlyImages { images: &glance };
    let driver = ReadOnlyDriver { driver: &driver };
    let backends = Backends { driver: &driver, images: &images, db: &db };
    let request = Request {
        operation: Operation::CreateFromImage { image_id: args.image.as_str().into() },
        volume_id: ASKED_ID.into(),
        now: args.now,
    };
    let plan = match shell::plan(backends, &request, config, &args.policy).await {
        Ok((plan, _facts)) => plan,
        Err(e) => return Err(fail(err, e)),
    };
    if args.json {
        let doc = serde_json::json!({
            "conf": args.conf.display().to_string(),
            "backend": loaded.backend_name,
            "image": args.image,
            "size_gib": args.size,
            "host": args.host,
            "project": args.project,
            "plan": plan,
        });
        writeln!(out, "{doc}")?;
    } else {
        writeln!(
            out,
            "=== a {} GiB volume from image {} on {} for project {} (backend [{}] of {})",
            args.size,
            Escaped(&args.image),
            Escaped(&args.host),
            Escaped(&args.project),
            Escaped(&loaded.backend_name),
            Escaped(args.conf.display())
        )?;
        write!(out, "{}", render_plan(&plan))?;
        writeln!(out)?;
    }
    Ok(())
}

fn glance_auth(how: &GlanceAuth, project: &str, user: &str) -> Result<Auth, String> {
    Ok(match how {
        GlanceAuth::Token(t) => Auth::Token(Secret::new(t.clone())),
        GlanceAuth::Keystone { auth_url, username, password, project_name, domain } => {
            Auth::Keystone(KeystonePassword {
                auth_url: auth_url.parse().map_err(|e| format!("--os-auth-url {auth_url:?}: {e}"))?,
                username: username.clone(),
                password: Secret::new(password.clone()),
                user_domain_name: domain.clone(),
                project_name: project_name.clone(),
                project_domain_name: domain.clone(),
            })
        }
        // Reading locations is a service call (Glance's policy): the
        // identity carries the service role as cinder-volume's would.
        GlanceAuth::TrustedHeaders => Auth::TrustedHeaders(TrustedIdentity {
            project_id: project.to_owned(),
            user_id: user.to_owned(),
            roles: ["admin", "member", "reader", "service"].iter().map(|r| r.to_string()).collect(),
            service_catalog: None,
            token: None,
        }),
    })
}

/// The refusal of a call that would change the cloud.
fn refused(call: &str) -> BackendError {
    BackendError::new(BackendErrorKind::PermissionDenied, format!("cinder-flow explain is read-only: {call} refused"))
}

/// Cinder's database, read-only, plus the row being asked about.
#[derive(Debug)]
struct ReadOnlyDb<'a> {
    db: &'a SqlVolumeDb,
    asked: Arc<Volume>,
}

#[async_trait]
impl VolumeDb for ReadOnlyDb<'_> {
    async fn volume(&self, id: &VolumeId) -> BackendResult<Option<Arc<Volume>>> {
        if *id == self.asked.id {
            return Ok(Some(self.asked.clone()));
        }
        self.db.volume(id).await
    }

    async fn volumes(&self, ids: &[VolumeId]) -> BackendResult<Vec<Arc<Volume>>> {
        let mut rows = self.db.volumes(ids).await?;
        if ids.contains(&self.asked.id) {
            rows.push(self.asked.clone());
        }
        Ok(rows)
    }

    async fn snapshot(&self, id: &SnapshotId) -> BackendResult<Option<Snapshot>> {
        self.db.snapshot(id).await
    }

    async fn snapshots_of_volume(&self, volume_id: &VolumeId) -> BackendResult<Vec<Snapshot>> {
        self.db.snapshots_of_volume(volume_id).await
    }

    async fn volume_type(&self, name_or_id: &str) -> BackendResult<Option<VolumeType>> {
        self.db.volume_type(name_or_id).await
    }

    async fn services(&self) -> BackendResult<Vec<Service>> {
        self.db.services().await
    }

    async fn project_default_volume_type(&self, project_id: &ProjectId) -> BackendResult<Option<String>> {
        self.db.project_default_volume_type(project_id).await
    }

    async fn project_usage(&self, project_id: &ProjectId) -> BackendResult<ProjectUsage> {
        self.db.project_usage(project_id).await
    }

    async fn cache_entries_of_image(&self, image_id: &ImageId) -> BackendResult<Vec<CacheEntry>> {
        self.db.cache_entries_of_image(image_id).await
    }

    async fn cache_entries_at(&self, location: &CacheLocation) -> BackendResult<Vec<CacheEntry>> {
        self.db.cache_entries_at(location).await
    }

    async fn new_volume_id(&self) -> BackendResult<VolumeId> {
        self.db.new_volume_id().await
    }

    async fn write(&self, write: &DbWrite) -> BackendResult<()> {
        Err(refused(&format!("database write ({write})")))
    }
}

/// Glance, read-only.
#[derive(Debug)]
struct ReadOnlyImages<'a> {
    images: &'a GlanceImageService,
}

#[async_trait]
impl ImageService for ReadOnlyImages<'_> {
    async fn show(&self, image_id: &ImageId) -> BackendResult<Arc<Image>> {
        self.images.show(image_id).await
    }

    async fn locations(&self, image_id: &ImageId) -> BackendResult<Arc<[LocationEntry]>> {
        self.images.locations(image_id).await
    }

    async fn download(&self, image_id: &ImageId) -> BackendResult<DownloadedImage> {
        Err(refused(&format!("download of image {image_id}")))
    }

    async fn add_location(&self, image_id: &ImageId, _: &LocationEntry, _: LocationApi) -> BackendResult<()> {
        Err(refused(&format!("adding a location to image {image_id}")))
    }

    async fn remove_location(&self, image_id: &ImageId, _: &str) -> BackendResult<()> {
        Err(refused(&format!("removing a location of image {image_id}")))
    }
}

/// The Ceph cluster, read-only.
#[derive(Debug)]
struct ReadOnlyDriver<'a> {
    driver: &'a RbdDriver,
}

#[async_trait]
impl Driver for ReadOnlyDriver<'_> {
    async fn cluster_info(&self) -> BackendResult<ClusterInfo> {
        self.driver.cluster_info().await
    }

    async fn pool_exists(&self, pool: &str) -> BackendResult<bool> {
        self.driver.pool_exists(pool).await
    }

    async fn image_info(&self, image: &ImageSpec) -> BackendResult<Option<ImageInfo>> {
        self.driver.image_info(image).await
    }

    async fn apply(&self, op: &RbdOp, _: Option<DownloadedImage>) -> BackendResult<()> {
        Err(refused(&format!("RBD operation {op}")))
    }

    async fn capabilities(&self) -> BackendResult<Capabilities> {
        self.driver.capabilities().await
    }

    async fn host_info(&self) -> BackendResult<HostInfo> {
        self.driver.host_info().await
    }
}
