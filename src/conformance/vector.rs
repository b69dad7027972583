//! Decoding test vectors (docs/FORMAT.md §1-10).
//!
//! A vector is refused, with what is wrong, when it has a field the format
//! does not define (a misspelt `snapshots` or `rbd_pool` would otherwise
//! be silently ignored and the vector test something else), when two rows
//! share an id, when a row names a row that is not there, when its name
//! is not a plain file name (the runner reads `NAME.expected.json` beside
//! the vector), or when it holds an integer beyond 64 bits.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// A vector that cannot be read or used, with what is wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VectorError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON or not a vector.
    #[error("{path}: {message}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// What serde said, with line and column.
        message: String,
    },
    /// The vector is well-formed JSON but not a valid situation.
    #[error("vector {name:?}: {message}")]
    Invalid {
        /// The vector.
        name: String,
        /// What is wrong.
        message: String,
    },
}

fn d_true() -> bool {
    true
}
fn d_one() -> u64 {
    1
}
fn d_gib() -> u64 {
    1 << 30
}
fn d_stripe() -> u64 {
    4 << 20
}
fn d_project() -> String {
    "project-1".into()
}
fn d_user() -> String {
    "user-1".into()
}
fn d_type() -> String {
    "__DEFAULT__".into()
}
fn d_az() -> String {
    "nova".into()
}
fn d_active() -> String {
    "active".into()
}
fn d_available() -> String {
    "available".into()
}
fn d_private() -> String {
    "private".into()
}
fn d_bare() -> Option<String> {
    Some("bare".into())
}
fn d_raw() -> Option<String> {
    Some("raw".into())
}
fn d_size_bytes() -> Option<u64> {
    Some(1 << 30)
}
fn d_ts() -> String {
    "2024-01-01T00:00:00Z".into()
}
fn d_fsid() -> String {
    "00000000-0000-0000-0000-00000000f51d".into()
}
fn d_backend_name() -> String {
    "ceph".into()
}
fn d_backend_host() -> String {
    "hostA@ceph".into()
}
fn d_binary() -> String {
    "cinder-volume".into()
}
fn d_free() -> u64 {
    1 << 60
}
fn d_locations() -> Option<Vec<LocationSpec>> {
    Some(Vec::new())
}
fn d_luks() -> String {
    "luks".into()
}
fn d_cipher() -> Option<String> {
    Some("aes-xts-plain64".into())
}
fn d_keysize() -> Option<u32> {
    Some(256)
}
fn d_front() -> String {
    "front-end".into()
}
fn d_new() -> String {
    "new".into()
}

/// One vector (§1).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vector {
    /// Unique id.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The operation (§2).
    pub operation: String,
    /// Cinder options (§3).
    #[serde(default)]
    pub config: BTreeMap<String, Value>,
    /// The cinder-volume service (§4).
    #[serde(default)]
    pub backend: BackendSpec,
    /// The volume created or deleted (§5).
    pub volume: Option<VolumeSpec>,
    /// Operation inputs (§6).
    #[serde(default)]
    pub request: Value,
    /// The Glance image of the request (§7).
    pub image: Option<ImageSpec>,
    /// Further images.
    #[serde(default)]
    pub images: Vec<ImageSpec>,
    /// Glance behaviour (§7.2).
    #[serde(default)]
    pub glance: GlanceSpec,
    /// Database rows (§8).
    #[serde(default)]
    pub db: DbSpec,
    /// The Ceph cluster (§9).
    #[serde(default)]
    pub cluster: ClusterSpec,
    /// Host facts (§10).
    #[serde(default)]
    pub env: EnvSpec,
    /// Inline expected result.
    pub expected: Option<Value>,
    /// The vector as read (to tell the ids it holds from generated ones).
    #[serde(skip)]
    pub raw: Value,
}

/// §4.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSpec {
    /// Backend name.
    #[serde(default = "d_backend_name")]
    pub name: String,
    /// Manager host.
    #[serde(default = "d_backend_host")]
    pub host: String,
    /// Manager cluster.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Capabilities merged over the driver's.
    #[serde(default)]
    pub capabilities: BTreeMap<String, Value>,
}

impl Default for BackendSpec {
    fn default() -> Self {
        Self { name: d_backend_name(), host: d_backend_host(), cluster: None, capabilities: BTreeMap::new() }
    }
}

/// §5: the target volume and DB volume rows.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSpec {
    /// Id.
    pub id: String,
    /// Host.
    #[serde(default)]
    pub host: Option<String>,
    /// Cluster.
    #[serde(default)]
    pub cluster_name: Option<String>,
    /// Project.
    #[serde(default = "d_project")]
    pub project_id: String,
    /// User.
    #[serde(default = "d_user")]
    pub user_id: String,
    /// Size in GiB.
    #[serde(default = "d_one")]
    pub size: u64,
    /// Status (default depends on the row's role).
    #[serde(default)]
    pub status: Option<String>,
    /// Volume type name.
    #[serde(default = "d_type")]
    pub volume_type: String,
    /// Encryption key.
    #[serde(default)]
    pub encryption_key_id: Option<String>,
    /// Zone.
    #[serde(default = "d_az")]
    pub availability_zone: String,
    /// Bootable.
    #[serde(default)]
    pub bootable: bool,
    /// `false` = temporary volume.
    #[serde(default = "d_true")]
    pub use_quota: bool,
    /// Metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Admin metadata.
    #[serde(default)]
    pub admin_metadata: BTreeMap<String, String>,
    /// Creation time (default depends on the row's index).
    #[serde(default)]
    pub created_at: Option<String>,
    /// Soft-deleted.
    #[serde(default)]
    pub deleted: bool,
    /// `_name_id`.
    #[serde(default)]
    pub name_id: Option<String>,
    /// Snapshot it came from.
    #[serde(default)]
    pub snapshot_id: Option<String>,
    /// Volume it was cloned from.
    #[serde(default)]
    pub source_volid: Option<String>,
}

/// §7.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// Id.
    pub id: String,
    /// Owner.
    #[serde(default)]
    pub owner: Option<String>,
    /// Status.
    #[serde(default = "d_active")]
    pub status: String,
    /// Visibility.
    #[serde(default = "d_private")]
    pub visibility: String,
    /// Container format.
    #[serde(default = "d_bare")]
    pub container_format: Option<String>,
    /// Disk format.
    #[serde(default = "d_raw")]
    pub disk_format: Option<String>,
    /// Size in bytes.
    #[serde(default = "d_size_bytes")]
    pub size: Option<u64>,
    /// Virtual size in bytes.
    #[serde(default)]
    pub virtual_size: Option<u64>,
    /// Minimum disk (GiB).
    #[serde(default)]
    pub min_disk: u64,
    /// Minimum RAM.
    #[serde(default)]
    pub min_ram: u64,
    /// Creation time.
    #[serde(default = "d_ts")]
    pub created_at: String,
    /// Update time.
    #[serde(default = "d_ts")]
    pub updated_at: String,
    /// `direct_url`.
    #[serde(default)]
    pub direct_url: Option<String>,
    /// Locations.
    #[serde(default = "d_locations")]
    pub locations: Option<Vec<LocationSpec>>,
    /// Custom properties.
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
}

/// A location entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationSpec {
    /// URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, Value>,
}

/// §7.2.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlanceSpec {
    /// `new` or `legacy`.
    #[serde(default = "d_new")]
    pub location_api: String,
}

impl Default for GlanceSpec {
    fn default() -> Self {
        Self { location_api: d_new() }
    }
}

/// §8.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbSpec {
    /// Volume types.
    #[serde(default)]
    pub volume_types: Vec<VolumeTypeSpec>,
    /// Volumes.
    #[serde(default)]
    pub volumes: Vec<VolumeSpec>,
    /// Snapshots.
    #[serde(default)]
    pub snapshots: Vec<SnapshotSpec>,
    /// Services.
    #[serde(default)]
    pub services: Vec<ServiceSpec>,
    /// Image-cache rows.
    #[serde(default)]
    pub image_cache: Vec<CacheSpec>,
}

/// A volume type row.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeTypeSpec {
    /// Name.
    pub name: String,
    /// Id (generated when absent).
    #[serde(default)]
    pub id: Option<String>,
    /// Extra specs.
    #[serde(default)]
    pub extra_specs: BTreeMap<String, String>,
    /// Encryption.
    #[serde(default)]
    pub encryption: Option<EncryptionSpec>,
}

/// An encryption record.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionSpec {
    /// Provider.
    #[serde(default = "d_luks")]
    pub provider: String,
    /// Cipher.
    #[serde(default = "d_cipher")]
    pub cipher: Option<String>,
    /// Key size.
    #[serde(default = "d_keysize")]
    pub key_size: Option<u32>,
    /// Control location.
    #[serde(default = "d_front")]
    pub control_location: String,
}

/// A snapshot row.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSpec {
    /// Id.
    pub id: String,
    /// Volume.
    pub volume_id: String,
    /// Size of the volume (default: the volume's).
    #[serde(default)]
    pub volume_size: Option<u64>,
    /// Status.
    #[serde(default = "d_available")]
    pub status: String,
    /// Project (default: the volume's).
    #[serde(default)]
    pub project_id: Option<String>,
    /// Key.
    #[serde(default)]
    pub encryption_key_id: Option<String>,
}

/// A service row.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Host.
    pub host: String,
    /// Binary.
    #[serde(default = "d_binary")]
    pub binary: String,
    /// Topic.
    #[serde(default = "d_binary")]
    pub topic: String,
    /// Zone.
    #[serde(default = "d_az")]
    pub availability_zone: String,
    /// Disabled.
    #[serde(default)]
    pub disabled: bool,
}

/// An image-cache row.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSpec {
    /// Image.
    pub image_id: String,
    /// Host.
    pub host: Option<String>,
    /// Cached volume.
    pub volume_id: String,
    /// Cluster.
    #[serde(default)]
    pub cluster_name: Option<String>,
    /// Size (GiB).
    #[serde(default = "d_one")]
    pub size: u64,
    /// Image timestamp.
    #[serde(default = "d_ts")]
    pub image_updated_at: String,
    /// Last use (default depends on the index).
    #[serde(default)]
    pub last_used: Option<String>,
}

/// §9.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// fsid.
    #[serde(default = "d_fsid")]
    pub fsid: String,
    /// Reachable.
    #[serde(default = "d_true")]
    pub reachable: bool,
    /// Clone v2.
    #[serde(default)]
    pub clone_v2: bool,
    /// `rbd_default_features`.
    #[serde(default)]
    pub rbd_default_features: Option<u64>,
    /// Pools → images.
    #[serde(default)]
    pub pools: BTreeMap<String, BTreeMap<String, RbdImageSpec>>,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        Self { fsid: d_fsid(), reachable: true, clone_v2: false, rbd_default_features: None, pools: BTreeMap::new() }
    }
}

/// An RBD image.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RbdImageSpec {
    /// Size.
    #[serde(default = "d_gib")]
    pub size: u64,
    /// Features.
    #[serde(default = "d_one")]
    pub features: u64,
    /// Stripe unit.
    #[serde(default = "d_stripe")]
    pub stripe_unit: u64,
    /// Watchers.
    #[serde(default)]
    pub watchers: u32,
    /// Readable.
    #[serde(default = "d_true")]
    pub readable: bool,
    /// Parent.
    #[serde(default)]
    pub parent: Option<ParentSpec>,
    /// Snapshots.
    #[serde(default)]
    pub snaps: Vec<RbdSnapSpec>,
}

/// A clone parent.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentSpec {
    /// Pool.
    pub pool: String,
    /// Image.
    pub image: String,
    /// Snapshot.
    pub snap: String,
}

/// A snapshot; `parent` absent means "the image's parent".
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RbdSnapSpec {
    /// Name.
    pub name: String,
    /// Size (default: the image's).
    #[serde(default)]
    pub size: Option<u64>,
    /// Protected.
    #[serde(default)]
    pub protected: bool,
    /// Parent (absent: the image's; null: none).
    #[serde(default, deserialize_with = "double_option")]
    pub parent: Option<Option<ParentSpec>>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<ParentSpec>>, D::Error> {
    Option::<ParentSpec>::deserialize(d).map(Some)
}

/// §10.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSpec {
    /// Free bytes in the conversion directory.
    #[serde(default = "d_free")]
    pub image_conversion_free_bytes: u64,
}

impl Default for EnvSpec {
    fn default() -> Self {
        Self { image_conversion_free_bytes: d_free() }
    }
}

/// The largest vector file (or text) read: 4 MiB, some 900 times the
/// largest vector of the suite. Decoding holds the text, its JSON tree and
/// the vectors at once, so the bound also bounds the memory a vector can
/// make the runner use (`tests/vector_memory.rs` measures the peak).
pub const MAX_VECTOR_BYTES: usize = 4 << 20;

/// Reads one vector file (an object or an array of them), refusing files
/// larger than [`MAX_VECTOR_BYTES`] before reading them.
pub fn read_file(path: &Path) -> Result<Vec<Vector>, VectorError> {
    use std::io::Read as _;
    let io = |source| VectorError::Io { path: path.to_owned(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    // `take` as well as the length: the file may grow while it is read.
    let mut bytes = Vec::new();
    file.take(MAX_VECTOR_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() > MAX_VECTOR_BYTES {
        return Err(VectorError::Decode { path: path.to_owned(), message: too_large() });
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| VectorError::Decode { path: path.to_owned(), message: format!("not UTF-8: {e}") })?;
    parse_vectors(&text).map_err(|message| VectorError::Decode { path: path.to_owned(), message })
}

fn too_large() -> String {
    format!("a vector file holds at most {MAX_VECTOR_BYTES} bytes")
}

/// Parses vector JSON text (an object or an array of them, at most
/// [`MAX_VECTOR_BYTES`]), and checks each vector (see the module
/// documentation).
pub fn parse_vectors(text: &str) -> Result<Vec<Vector>, String> {
    if text.len() > MAX_VECTOR_BYTES {
        return Err(too_large());
    }
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    check_integers(text)?;
    let one = |v: Value| -> Result<Vector, String> {
        let name = v.get("name").and_then(Value::as_str).unwrap_or("?").to_owned();
        // From the tree in place: no second copy of it.
        let mut vector = Vector::deserialize(&v).map_err(|e| format!("vector {name:?}: {e}"))?;
        vector.check().map_err(|e| format!("vector {name:?}: {e}"))?;
        vector.raw = v;
        Ok(vector)
    };
    let vectors = match value {
        Value::Array(items) => items.into_iter().map(one).collect::<Result<Vec<_>, _>>()?,
        v @ Value::Object(_) => vec![one(v)?],
        _ => return Err("a vector file holds an object or an array of objects".into()),
    };
    let mut names = BTreeSet::new();
    for v in &vectors {
        if !names.insert(v.name.as_str()) {
            return Err(format!("two vectors are named {:?}", v.name));
        }
    }
    Ok(vectors)
}

/// Refuses integers that do not fit 64 bits. serde_json would read one as
/// the nearest float (Python's `json` as an exact `int`), so `size:
/// 100000000000000000001` would be planned as another number than the one
/// written. The text is valid JSON here: strings are skipped, and a number
/// is a run of `-+.eE0-9`.
fn check_integers(text: &str) -> Result<(), String> {
    let b = text.as_bytes();
    let (mut i, mut in_string) = (0, false);
    while i < b.len() {
        let c = b[i];
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if c == b'-' || c.is_ascii_digit() {
            let start = i;
            while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                i += 1;
            }
            let literal = &text[start..i];
            let integer = !literal.contains(['.', 'e', 'E']);
            if integer && literal.parse::<i64>().is_err() && literal.parse::<u64>().is_err() {
                let line = text[..start].matches('\n').count() + 1;
                let column = start - text[..start].rfind('\n').map_or(0, |n| n + 1) + 1;
                return Err(format!(
                    "the integer {literal} at line {line} column {column} does not fit in 64 bits (vectors hold \
                     integers from -2^63 to 2^64-1)"
                ));
            }
            continue;
        }
        i += 1;
    }
    Ok(())
}

/// The `request` fields each operation reads (§6).
fn request_fields(operation: &str) -> &'static [&'static str] {
    match operation {
        "create_cloned_volume" => &["source_volid"],
        "create_from_snapshot" => &["snapshot_id"],
        "api_create" | "api_extract" => &[
            "size",
            "availability_zone",
            "volume_type",
            "snapshot_id",
            "source_volid",
            "image_id",
            "group",
            "backup",
            "project_id",
            "user_id",
            "metadata",
            "name",
            "description",
        ],
        _ => &[],
    }
}

fn unique<'a>(what: &str, ids: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(format!("two {what} have the id {id:?}"));
        }
    }
    Ok(())
}

impl Vector {
    /// Host and cluster fields fit Cinder's `String(255)` columns, as a
    /// database row must (this also bounds the cost of host matching).
    fn check_hosts(&self) -> Result<(), String> {
        use crate::model::check_host_len;
        let b = &self.backend;
        let mut fields: Vec<(&'static str, &str)> = vec![("backend.host", &b.host)];
        fields.extend(b.cluster.as_deref().map(|c| ("backend.cluster", c)));
        for v in self.volume.iter().chain(&self.db.volumes) {
            fields.extend(v.host.as_deref().map(|h| ("volume host", h)));
            fields.extend(v.cluster_name.as_deref().map(|c| ("volume cluster_name", c)));
        }
        for c in &self.db.image_cache {
            fields.extend(c.host.as_deref().map(|h| ("image-cache host", h)));
            fields.extend(c.cluster_name.as_deref().map(|n| ("image-cache cluster_name", n)));
        }
        for s in &self.db.services {
            fields.push(("service host", &s.host));
        }
        for (field, value) in fields {
            check_host_len(field, value).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The checks serde cannot make: a usable name, known `request`
    /// fields, unique ids and rows that exist where rows name them.
    fn check(&self) -> Result<(), String> {
        // The runner reads NAME.expected.json beside the vector: the name
        // must stay in that directory and print as one line.
        let bad_name = self.name.is_empty()
            || self.name == "."
            || self.name == ".."
            || self.name.contains(['/', '\\'])
            || self.name.chars().any(crate::escape::needs_escape);
        if bad_name {
            return Err(format!(
                "the name {:?} is not a plain file name (no path separators, `.`, `..` or control characters)",
                self.name
            ));
        }
        match &self.request {
            Value::Null => {}
            Value::Object(fields) => {
                let known = request_fields(&self.operation);
                if let Some(k) = fields.keys().find(|k| !known.contains(&k.as_str())) {
                    return Err(format!(
                        "request.{k} is not a field of {} requests (fields: {})",
                        self.operation,
                        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                    ));
                }
                for (object, allowed) in
                    [("group", &["id", "status", "availability_zone"][..]), ("backup", &["id", "status", "size"][..])]
                {
                    if let Some(Value::Object(o)) = fields.get(object) {
                        if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
                            return Err(format!(
                                "request.{object}.{k} is not a field (fields: {})",
                                allowed.join(", ")
                            ));
                        }
                    }
                }
            }
            other => return Err(format!("request must be an object, not {other}")),
        }
        self.check_hosts()?;
        let db = &self.db;
        unique("volumes", db.volumes.iter().chain(&self.volume).map(|v| v.id.as_str()))?;
        unique("snapshots", db.snapshots.iter().map(|s| s.id.as_str()))?;
        unique("images", self.image.iter().chain(&self.images).map(|i| i.id.as_str()))?;
        unique("volume types", db.volume_types.iter().filter_map(|t| t.id.as_deref()))?;
        if let Some(name) = {
            let mut seen = BTreeSet::new();
            db.volume_types.iter().map(|t| t.name.as_str()).find(|n| !seen.insert(*n))
        } {
            return Err(format!("two volume types are named {name:?}"));
        }
        unique("image-cache entries (by volume)", db.image_cache.iter().map(|c| c.volume_id.as_str()))?;
        let volumes: BTreeSet<&str> = db.volumes.iter().map(|v| v.id.as_str()).collect();
        for s in &db.snapshots {
            if !volumes.contains(s.volume_id.as_str()) {
                return Err(format!("snapshot {} names volume {} which is not in db.volumes", s.id, s.volume_id));
            }
        }
        for c in &db.image_cache {
            if !volumes.contains(c.volume_id.as_str()) {
                return Err(format!(
                    "the image-cache entry of image {} names volume {} which is not in db.volumes",
                    c.image_id, c.volume_id
                ));
            }
        }
        let pools = &self.cluster.pools;
        for (pool, images) in pools {
            for (name, image) in images {
                let mut snaps = BTreeSet::new();
                if let Some(snap) = image.snaps.iter().map(|s| s.name.as_str()).find(|s| !snaps.insert(*s)) {
                    return Err(format!("image {pool}/{name} has two snapshots named {snap:?}"));
                }
                let parents = image
                    .parent
                    .iter()
                    .chain(image.snaps.iter().filter_map(|s| s.parent.as_ref().and_then(|p| p.as_ref())));
                for p in parents {
                    let found = pools
                        .get(&p.pool)
                        .and_then(|images| images.get(&p.image))
                        .is_some_and(|parent| parent.snaps.iter().any(|s| s.name == p.snap));
                    if !found {
                        return Err(format!(
                            "image {pool}/{name} is a clone of {}/{}@{}, which is not in cluster.pools",
                            p.pool, p.image, p.snap
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The vector files of a path: the file itself, or a directory's `*.json`
/// files except `*.expected.json`, sorted by name, not recursing.
pub fn vector_files(path: &Path) -> Result<Vec<PathBuf>, VectorError> {
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let rd = std::fs::read_dir(path).map_err(|source| VectorError::Io { path: path.to_owned(), source })?;
    let mut files = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|source| VectorError::Io { path: path.to_owned(), source })?;
        let p = entry.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_file() && name.ends_with(".json") && !name.ends_with(".expected.json") {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// The expected result of a vector read from `path`: inline, or
/// `NAME.expected.json` beside the file.
pub fn expected_for(vector: &Vector, path: &Path) -> Result<Option<Value>, VectorError> {
    if let Some(e) = &vector.expected {
        return Ok(Some(e.clone()));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = format!("{}.expected.json", vector.name);
    // Decoding refused names with separators; a vector built by hand is
    // checked again here, so the file is always in the vector's directory.
    let mut parts = Path::new(&file_name).components();
    let plain = matches!((parts.next(), parts.next()), (Some(std::path::Component::Normal(_)), None));
    if !plain || vector.name.contains(['/', '\\']) {
        return Err(VectorError::Invalid {
            name: vector.name.clone(),
            message: "the name is not a plain file name, so it has no expected file".into(),
        });
    }
    let file = dir.join(file_name);
    if !file.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&file).map_err(|source| VectorError::Io { path: file.clone(), source })?;
    serde_json::from_str(&text).map(Some).map_err(|e| VectorError::Decode { path: file, message: e.to_string() })
}
