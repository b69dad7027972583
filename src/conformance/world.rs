//! Building the situation a vector describes on the in-memory backends.

use serde_json::Value;

use crate::config::{Config, OptionValue};
use crate::facts::Capabilities;
use crate::memory::{Journal, MemoryCluster, MemoryImageService, MemoryVolumeDb};
use crate::model::{
    Bytes, CacheEntry, Encryption, GiB, Host, Image, LocationApi, LocationEntry, Service, Snapshot, Timestamp, Volume,
    VolumeType,
};
use crate::rbd::{Cluster, RbdImage, RbdSnapshot, SnapSpec};
use crate::shell::Backends;

use super::vector::{ImageSpec, ParentSpec, Vector, VectorError, VolumeSpec};

/// The in-memory world of one vector.
#[derive(Debug)]
pub struct World {
    /// The cluster.
    pub cluster: MemoryCluster,
    /// Glance.
    pub images: MemoryImageService,
    /// The database.
    pub db: MemoryVolumeDb,
    /// Calls recorded by the cluster and Glance.
    pub journal: Journal,
    /// Cinder options.
    pub config: Config,
}

impl World {
    /// The ports of this world.
    pub fn backends(&self) -> Backends<'_> {
        Backends { driver: &self.cluster, images: &self.images, db: &self.db }
    }
}

const BASE_TIME: &str = "2024-01-01T00:00:00Z";

fn base_time() -> Timestamp {
    BASE_TIME.parse().expect("constant")
}

/// Converts a JSON option value from a vector.
fn option_value(v: &Value) -> Result<OptionValue, String> {
    Ok(match v {
        Value::Null => OptionValue::Null,
        Value::Bool(b) => OptionValue::Bool(*b),
        Value::Number(n) => OptionValue::Int(n.as_i64().ok_or_else(|| format!("{n} is not an integer"))?),
        Value::String(s) => OptionValue::Str(s.clone()),
        Value::Array(items) => OptionValue::List(
            items
                .iter()
                .map(|i| i.as_str().map(str::to_owned).ok_or_else(|| format!("{i} is not a string")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(_) => return Err("objects are not option values".into()),
    })
}

fn ts(name: &str, field: &str, s: &str) -> Result<Timestamp, VectorError> {
    s.parse().map_err(|e| VectorError::Invalid { name: name.to_owned(), message: format!("{field}: {e}") })
}

fn volume_row(
    name: &str,
    spec: &VolumeSpec,
    default_status: &str,
    default_created: Timestamp,
) -> Result<Volume, VectorError> {
    Ok(Volume {
        id: spec.id.clone().into(),
        host: spec.host.clone().map(Host::from),
        cluster_name: spec.cluster_name.clone(),
        project_id: spec.project_id.clone().into(),
        user_id: spec.user_id.clone().into(),
        size: GiB(spec.size),
        status: spec.status.clone().unwrap_or_else(|| default_status.to_owned()).into(),
        volume_type: spec.volume_type.clone(),
        encryption_key_id: spec.encryption_key_id.clone(),
        availability_zone: spec.availability_zone.clone(),
        bootable: spec.bootable,
        use_quota: spec.use_quota,
        metadata: spec.metadata.clone(),
        admin_metadata: spec.admin_metadata.clone(),
        created_at: match &spec.created_at {
            Some(s) => ts(name, "created_at", s)?,
            None => default_created,
        },
        name_id: spec.name_id.clone().map(Into::into),
        snapshot_id: spec.snapshot_id.clone().map(Into::into),
        source_volid: spec.source_volid.clone().map(Into::into),
    })
}

fn image(name: &str, spec: &ImageSpec) -> Result<Image, VectorError> {
    Ok(Image {
        id: spec.id.clone().into(),
        owner: spec.owner.clone().map(Into::into),
        status: spec.status.clone(),
        visibility: spec.visibility.clone(),
        container_format: spec.container_format.clone(),
        disk_format: spec.disk_format.clone(),
        size: spec.size.map(Bytes),
        virtual_size: spec.virtual_size.map(Bytes),
        min_disk: GiB(spec.min_disk),
        min_ram: spec.min_ram,
        created_at: ts(name, "image.created_at", &spec.created_at)?,
        updated_at: ts(name, "image.updated_at", &spec.updated_at)?,
        direct_url: spec.direct_url.clone(),
        locations: spec.locations.as_ref().map(|l| {
            l.iter()
                .map(|e| LocationEntry { url: e.url.as_deref().map(Into::into), metadata: e.metadata.clone() })
                .collect()
        }),
        properties: spec.properties.clone(),
    })
}

fn parent(p: &ParentSpec) -> SnapSpec {
    SnapSpec { pool: p.pool.as_str().into(), image: p.image.as_str().into(), snap: p.snap.as_str().into() }
}

/// Builds the world of a vector.
pub fn build_world(v: &Vector) -> Result<World, VectorError> {
    let invalid = |message: String| VectorError::Invalid { name: v.name.clone(), message };

    let mut config = Config::default();
    for (key, value) in &v.config {
        let value = option_value(value).map_err(|m| invalid(format!("config {key}: {m}")))?;
        config.set(key, value).map_err(|e| invalid(format!("config: {e}")))?;
    }

    // Cluster (§9).
    let mut cluster = Cluster::new(v.cluster.fsid.clone());
    cluster.reachable = v.cluster.reachable;
    cluster.clone_v2 = v.cluster.clone_v2;
    cluster.default_features = v.cluster.rbd_default_features;
    for (pool, images) in &v.cluster.pools {
        cluster.add_pool(pool.clone());
        for (name, spec) in images {
            let image_parent = spec.parent.as_ref().map(parent);
            let snaps = spec
                .snaps
                .iter()
                .map(|s| RbdSnapshot {
                    name: s.name.as_str().into(),
                    size: Bytes(s.size.unwrap_or(spec.size)),
                    protected: s.protected,
                    parent: match &s.parent {
                        None => image_parent.clone(),
                        Some(p) => p.as_ref().map(parent),
                    },
                    hidden: false,
                })
                .collect();
            let image = RbdImage {
                size: Bytes(spec.size),
                features: spec.features,
                stripe_unit: Bytes(spec.stripe_unit),
                watchers: spec.watchers,
                readable: spec.readable,
                parent: image_parent,
                snaps,
            };
            cluster.put_image(&crate::rbd::ImageSpec::new(pool.clone(), name.clone()), image);
        }
    }
    let journal = Journal::new();
    let across = v.backend.capabilities.get("clone_across_pools").is_some_and(truthy);
    let cluster = MemoryCluster::new(cluster)
        .with_journal(journal.clone())
        .with_capabilities(Capabilities { clone_across_pools: across })
        .with_conversion_free_bytes(v.env.image_conversion_free_bytes)
        .with_service_host(Host::from(v.backend.host.as_str()));

    // Glance (§7).
    let api = match v.glance.location_api.as_str() {
        "new" => LocationApi::New,
        "legacy" => LocationApi::Legacy,
        other => return Err(invalid(format!("glance.location_api {other:?} is neither new nor legacy"))),
    };
    let images = MemoryImageService::new().with_location_api(api).with_journal(journal.clone());
    for spec in v.image.iter().chain(v.images.iter()) {
        images.insert(image(&v.name, spec)?);
    }

    // Database (§8).
    let db = MemoryVolumeDb::new();
    // Fresh ids that sort after the ids vectors use: upstream's are random,
    // and results list cache entries sorted by volume id.
    db.queue_fresh_ids((1..=16).map(|n| format!("ffffffff-ffff-4fff-bfff-{n:012x}").into()));
    for t in &v.db.volume_types {
        let mut vt = VolumeType::plain(t.id.clone().unwrap_or_else(|| format!("type-{}", t.name)), t.name.clone());
        vt.extra_specs = t.extra_specs.clone();
        vt.encryption = t.encryption.as_ref().map(|e| Encryption {
            provider: e.provider.clone(),
            cipher: e.cipher.clone(),
            key_size: e.key_size,
            control_location: e.control_location.clone(),
        });
        db.add_volume_type(vt);
    }
    let base = base_time();
    let mut rows = Vec::new();
    for (i, spec) in v.db.volumes.iter().enumerate() {
        let row = volume_row(&v.name, spec, "available", base.plus_seconds(i as i64))?;
        if spec.deleted {
            db.add_deleted_volume(row.clone());
        } else {
            db.add_volume(row.clone());
        }
        rows.push(row);
    }
    for s in &v.db.snapshots {
        let vol = rows.iter().find(|r| r.id.as_str() == s.volume_id);
        let vol = vol.ok_or_else(|| {
            invalid(format!("snapshot {} names volume {} which is not in db.volumes", s.id, s.volume_id))
        })?;
        db.add_snapshot(Snapshot {
            id: s.id.clone().into(),
            volume_id: s.volume_id.clone().into(),
            volume_size: GiB(s.volume_size.unwrap_or(vol.size.0)),
            status: s.status.clone(),
            project_id: s.project_id.clone().map(Into::into).unwrap_or_else(|| vol.project_id.clone()),
            encryption_key_id: s.encryption_key_id.clone(),
        });
    }
    for s in &v.db.services {
        db.add_service(Service {
            host: s.host.clone(),
            binary: s.binary.clone(),
            topic: s.topic.clone(),
            availability_zone: s.availability_zone.clone(),
            disabled: s.disabled,
        });
    }
    for (i, c) in v.db.image_cache.iter().enumerate() {
        db.add_cache_entry(CacheEntry {
            image_id: c.image_id.clone().into(),
            host: c.host.clone().map(Host::from),
            cluster_name: c.cluster_name.clone(),
            volume_id: c.volume_id.clone().into(),
            size: GiB(c.size),
            image_updated_at: ts(&v.name, "image_updated_at", &c.image_updated_at)?,
            last_used: match &c.last_used {
                Some(s) => ts(&v.name, "last_used", s)?,
                None => base.plus_seconds(i as i64),
            },
        });
    }
    if let Some(target) = &v.volume {
        let status = if v.operation == "delete_volume" { "deleting" } else { "creating" };
        let mut row = volume_row(&v.name, target, status, base)?;
        // The API records the request's source on the row.
        if row.source_volid.is_none() && v.operation == "create_cloned_volume" {
            row.source_volid = v.request.get("source_volid").and_then(Value::as_str).map(Into::into);
        }
        if row.snapshot_id.is_none() && v.operation == "create_from_snapshot" {
            row.snapshot_id = v.request.get("snapshot_id").and_then(Value::as_str).map(Into::into);
        }
        db.add_volume(row);
    }
    Ok(World { cluster, images, db, journal, config })
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}
