//! [`VolumeDb`] over Cinder's own database (cargo
//! feature `sql`): the tables `cinder-manage db sync` creates for Cinder
//! 29.0.0, on MySQL/MariaDB or SQLite, through [sqlx](https://docs.rs/sqlx)
//! on the tokio runtime.
//!
//! Connect with the `[database] connection` URL of `cinder.conf` (see
//! [`DatabaseUrl`]); connecting checks that the schema is Cinder 29's
//! ([`CINDER_29_HEAD`]) and fails with a typed [`SqlError`] otherwise:
//!
//! ```no_run
//! use cinder_flow::config::CinderConf;
//! use cinder_flow::ports::VolumeDb;
//! use cinder_flow::sql::{DatabaseUrl, SqlVolumeDb};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let conf = CinderConf::read("/etc/cinder/cinder.conf")?;
//! let db = SqlVolumeDb::connect(&DatabaseUrl::from_cinder_conf(&conf)?).await?;
//! let services = db.services().await?;
//! println!("{} services in {db:?}", services.len());
//! # Ok(()) }
//! ```
//!
//! ## Reads
//!
//! Each read is the query upstream makes (`cinder/db/sqlalchemy/api.py`
//! of Cinder 29, cited on each function): rows are visible when
//! `deleted = 0` (`model_query(read_deleted="no")`), joined rows
//! (metadata, extra specs) likewise. One difference is deliberate: on MySQL
//! Cinder's tables use the case-insensitive `utf8mb3_general_ci` collation,
//! so upstream's `id = 'ABC'` also finds a row `abc` (and ignores trailing
//! spaces); rows whose key differs from the one asked for in that way are
//! dropped here, so every answer is the one the in-memory backend (and
//! the planner's model) gives.
//!
//! `volume_get_all`'s host and cluster filter, which the planner applies
//! to rows it read by id, is [`SqlVolumeDb::volumes_filtered`] here, with
//! upstream's SQL `LIKE` matching (see [`HostFilter`](crate::model::HostFilter)).
//!
//! ## Writes
//!
//! Each [`DbWrite`] runs in a transaction of its own,
//! with the in-memory backend's semantics (see
//! [`MemoryVolumeDb`](crate::memory::MemoryVolumeDb)) where Cinder's schema
//! allows them; the differences are listed on [`SqlVolumeDb`].
//!
//! Eviction of an image-cache entry deletes its row and, as upstream's
//! `ImageVolumeCache.evict` does, asks for the deletion of its volume.
//! That deletion goes through Cinder's volume API (an RPC to
//! cinder-volume), which this crate does not speak: the requests are kept
//! for the embedding service ([`SqlVolumeDb::take_evictions`]).

mod error;
mod read;
mod rows;
mod schema;
#[cfg(feature = "testing")]
mod seed;
mod url;
mod write;

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions, MySqlSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteSynchronous};

pub use error::SqlError;
pub use read::VolumeFilter;
pub use schema::CINDER_29_HEAD;
pub use url::DatabaseUrl;

use crate::config::CinderConf;
use crate::facts::{CacheLocation, ProjectUsage};
use crate::model::{CacheEntry, ImageId, ProjectId, Service, Snapshot, SnapshotId, Volume, VolumeId, VolumeType};
use crate::plan::DbWrite;
use crate::ports::{BackendResult, VolumeDb};

use self::url::{SqliteTarget, Target};

/// The two SQL dialects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    MySql,
    Sqlite,
}

#[derive(Clone)]
pub(crate) enum Pool {
    MySql(sqlx::MySqlPool),
    Sqlite(sqlx::SqlitePool),
}

/// Runs `$body` with `$p` bound to the concrete pool and `$d` to its
/// [`Dialect`]: one text, type-checked once per driver, so queries are
/// written once without sqlx's `Any` driver (which cannot decode MySQL's
/// `TINYINT` and `DATETIME` columns).
macro_rules! on_pool {
    ($pool:expr, $p:ident, $d:ident => $body:expr) => {
        match $pool {
            $crate::sql::Pool::MySql($p) => {
                #[allow(unused_variables)]
                let $d = $crate::sql::Dialect::MySql;
                $body
            }
            $crate::sql::Pool::Sqlite($p) => {
                #[allow(unused_variables)]
                let $d = $crate::sql::Dialect::Sqlite;
                $body
            }
        }
    };
}
pub(crate) use on_pool;

/// Connection settings beyond the URL: oslo.db's `[database]` options
/// that apply here.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SqlOptions {
    /// Most connections the pool opens (`max_pool_size`, default 5; an
    /// in-memory SQLite database always has 1, as each connection would be
    /// another database).
    pub max_connections: u32,
    /// How long to wait for a connection, the first one included
    /// (`pool_timeout`; default 10 s).
    pub connect_timeout: Duration,
    /// `sqlite_synchronous` (default true): false sets SQLite's `PRAGMA
    /// synchronous = OFF`, as oslo.db does (no fsync per commit; for
    /// scratch databases).
    pub sqlite_synchronous: bool,
}

impl Default for SqlOptions {
    fn default() -> Self {
        Self { max_connections: 5, connect_timeout: Duration::from_secs(10), sqlite_synchronous: true }
    }
}

impl SqlOptions {
    /// The options of `cinder.conf`'s `[database]` section that apply
    /// (`max_pool_size`, `pool_timeout`, `sqlite_synchronous`), defaults
    /// for the rest.
    ///
    /// ```
    /// use cinder_flow::config::CinderConf;
    /// use cinder_flow::sql::SqlOptions;
    ///
    /// let conf = CinderConf::parse("[database]\nmax_pool_size = 2\nsqlite_synchronous = false\n").unwrap();
    /// let o = SqlOptions::from_cinder_conf(&conf).unwrap();
    /// assert_eq!((o.max_connections, o.sqlite_synchronous), (2, false));
    /// ```
    pub fn from_cinder_conf(conf: &CinderConf) -> Result<Self, SqlError> {
        let mut o = Self::default();
        let bad = |key: &str, value: &str| SqlError::InvalidOption { option: key.to_owned(), value: value.to_owned() };
        if let Some(v) = conf.value("database", "max_pool_size") {
            o.max_connections = v.trim().parse().map_err(|_| bad("max_pool_size", &v))?;
        }
        if let Some(v) = conf.value("database", "pool_timeout") {
            o.connect_timeout = Duration::from_secs(v.trim().parse().map_err(|_| bad("pool_timeout", &v))?);
        }
        if let Some(v) = conf.value("database", "sqlite_synchronous") {
            // oslo.config's boolean spellings.
            o.sqlite_synchronous = match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "on" | "yes" => true,
                "false" | "0" | "off" | "no" => false,
                _ => return Err(bad("sqlite_synchronous", &v)),
            };
        }
        Ok(o)
    }
}

/// Cinder's database over SQL, behind the [`VolumeDb`] port.
///
/// Differences from [`MemoryVolumeDb`](crate::memory::MemoryVolumeDb) that
/// Cinder's schema imposes (the shared port suite,
/// `cinder_flow::testing::db_suite`, checks everything else):
///
/// * `volumes.volume_type_id` is `NOT NULL`: a volume row is stored with
///   the id of the visible type its `volume_type` names (by name, else by
///   id) and [`DbWrite::CreateVolume`] of a volume whose type does not
///   exist fails with `NotFound`. Reading gives the type's name back, or
///   the stored id when that type is gone (soft-deleted or missing), so a
///   lookup of it then finds no type, as upstream's fails.
/// * `image_volume_cache_entries.host` is `NOT NULL`: a cache entry
///   without a host is refused with `InvalidArgument`.
/// * Deleting a volume row ([`DbWrite::DeleteVolumeRow`]) is upstream's
///   `volume_destroy`: status `deleted`, `deleted = 1`, and its metadata,
///   admin metadata, snapshots, transfers, glance metadata and attachments
///   soft-deleted with it.
/// * Glance metadata ([`DbWrite::SetGlanceMetadata`],
///   [`DbWrite::RestoreGlanceMetadata`] with keys) needs a visible volume
///   (upstream's `@require_volume_exists`): `NotFound` otherwise. A key
///   that exists with another value is updated, as in memory (upstream's
///   `volume_glance_metadata_bulk_create` would refuse it).
/// * A project's usage counts only snapshots with `use_quota` (the quota
///   sync functions' `skip_internal`); the model's snapshots have no such
///   column and all count in memory. Snapshots written here count.
/// * Timestamps are stored to the second on MySQL (`DATETIME` columns
///   without fractions); SQLite keeps microseconds, as SQLAlchemy writes
///   them.
pub struct SqlVolumeDb {
    pool: Pool,
    url: DatabaseUrl,
    evictions: Mutex<Vec<VolumeId>>,
    fresh: Mutex<Vec<VolumeId>>,
}

impl fmt::Debug for SqlVolumeDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL prints with its password masked; the pool's options
        // (which hold it) are not printed.
        f.debug_struct("SqlVolumeDb").field("url", &self.url).finish_non_exhaustive()
    }
}

impl SqlVolumeDb {
    /// Connects with default [`SqlOptions`] and checks the schema.
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, SqlError> {
        Self::connect_with(url, &SqlOptions::default()).await
    }

    /// Connects and checks that the schema is Cinder 29's: typed errors
    /// for an unreachable server ([`SqlError::Unreachable`]), a wrong user
    /// or password ([`SqlError::AccessDenied`]), a missing database
    /// ([`SqlError::UnknownDatabase`]), and a database that is not Cinder
    /// 29's ([`SqlError::MissingTables`], [`SqlError::SchemaVersion`]).
    pub async fn connect_with(url: &DatabaseUrl, options: &SqlOptions) -> Result<Self, SqlError> {
        let pool = match url.target() {
            Target::MySql(m) => {
                let mut o = MySqlConnectOptions::new()
                    .host(&m.host)
                    .port(m.port)
                    .username(&m.user)
                    // This build has no TLS: say so rather than let
                    // `Preferred` silently fall back.
                    .ssl_mode(MySqlSslMode::Disabled);
                if let Some(pw) = &m.password {
                    o = o.password(pw.expose());
                }
                if let Some(db) = &m.database {
                    o = o.database(db);
                }
                if let Some(s) = &m.socket {
                    o = o.socket(s);
                }
                if let Some(c) = &m.charset {
                    o = o.charset(c);
                }
                let pool = MySqlPoolOptions::new()
                    .max_connections(options.max_connections.max(1))
                    .acquire_timeout(options.connect_timeout)
                    .connect_with(o)
                    .await
                    .map_err(|e| connect_error(url, e))?;
                Pool::MySql(pool)
            }
            Target::Sqlite(t) => {
                let (o, max) = match t {
                    SqliteTarget::File(path) => (
                        SqliteConnectOptions::new().filename(path).create_if_missing(false),
                        options.max_connections.max(1),
                    ),
                    SqliteTarget::Memory => (SqliteConnectOptions::new().in_memory(true), 1),
                };
                // oslo.db leaves SQLite's foreign keys off (`sqlite_fk`
                // defaults to False); so do we, to behave as Cinder on the
                // same file.
                let mut o = o.foreign_keys(false).busy_timeout(options.connect_timeout);
                if !options.sqlite_synchronous {
                    o = o.synchronous(SqliteSynchronous::Off);
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(options.connect_timeout)
                    .connect_with(o)
                    .await
                    .map_err(|e| connect_error(url, e))?;
                Pool::Sqlite(pool)
            }
        };
        schema::check(&pool).await?;
        Ok(Self { pool, url: url.clone(), evictions: Mutex::default(), fresh: Mutex::default() })
    }

    /// The URL connected to (password masked when printed).
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Closes the pool's connections.
    pub async fn close(&self) {
        on_pool!(&self.pool, p, _d => p.close().await)
    }

    /// Volumes whose deletion a cache eviction asked for since the last
    /// call, in order, for the embedding service to hand to Cinder's
    /// volume API (`volume_api.delete`).
    pub fn take_evictions(&self) -> Vec<VolumeId> {
        std::mem::take(&mut *lock(&self.evictions))
    }

    /// Queues ids that [`VolumeDb::new_volume_id`] hands out before making
    /// random ones (for reproducible tests, as
    /// [`MemoryVolumeDb::queue_fresh_ids`](crate::memory::MemoryVolumeDb::queue_fresh_ids)).
    pub fn queue_fresh_ids(&self, ids: impl IntoIterator<Item = VolumeId>) {
        let mut ids: Vec<VolumeId> = ids.into_iter().collect();
        ids.reverse();
        lock(&self.fresh).extend(ids);
    }

    /// `volume_get_all(filters={'id': ids, 'host': ..., 'cluster_name': ...})`
    /// (`_process_volume_filters` with `_filter_host`): visible rows among
    /// the filter's ids that match its host and cluster conditions, in
    /// upstream's default order (`created_at` then `id`, both descending).
    pub async fn volumes_filtered(&self, filter: &VolumeFilter) -> BackendResult<Vec<Volume>> {
        Ok(read::volumes_filtered(&self.pool, filter).await?)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Classifies a failure to open the first connection.
fn connect_error(url: &DatabaseUrl, e: sqlx::Error) -> SqlError {
    let location = url.location();
    if let sqlx::Error::Database(db) = &e {
        match error::mysql_number(db.as_ref()) {
            // ER_ACCESS_DENIED_ERROR
            Some(1045) => {
                return SqlError::AccessDenied { user: url.user().unwrap_or("").to_owned(), location, source: e }
            }
            // ER_BAD_DB_ERROR, ER_DBACCESS_DENIED_ERROR
            Some(1049) | Some(1044) => {
                let database = match url.target() {
                    Target::MySql(m) => m.database.clone().unwrap_or_default(),
                    Target::Sqlite(_) => String::new(),
                };
                return SqlError::UnknownDatabase { database, location, source: e };
            }
            _ => {}
        }
        // SQLITE_CANTOPEN: no such file (or directory, or permission).
        if db.code().as_deref() == Some("14") {
            return SqlError::Unreachable { location, source: e };
        }
    }
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
            SqlError::Unreachable { location, source: e }
        }
        other => SqlError::query(format!("connect to {location}"), other),
    }
}

#[async_trait]
impl VolumeDb for SqlVolumeDb {
    async fn volume(&self, id: &VolumeId) -> BackendResult<Option<std::sync::Arc<Volume>>> {
        let mut rows = read::volumes_by_ids(&self.pool, std::slice::from_ref(id), false).await?;
        Ok(rows.pop().map(|(v, _)| std::sync::Arc::new(v)))
    }

    async fn volumes(&self, ids: &[VolumeId]) -> BackendResult<Vec<std::sync::Arc<Volume>>> {
        let rows = read::volumes_by_ids(&self.pool, ids, false).await?;
        Ok(rows.into_iter().map(|(v, _)| std::sync::Arc::new(v)).collect())
    }

    async fn snapshot(&self, id: &SnapshotId) -> BackendResult<Option<Snapshot>> {
        Ok(read::snapshot(&self.pool, id).await?)
    }

    async fn snapshots_of_volume(&self, volume_id: &VolumeId) -> BackendResult<Vec<Snapshot>> {
        Ok(read::snapshots_of_volume(&self.pool, volume_id).await?)
    }

    async fn volume_type(&self, name_or_id: &str) -> BackendResult<Option<VolumeType>> {
        Ok(read::volume_type(&self.pool, name_or_id).await?)
    }

    async fn services(&self) -> BackendResult<Vec<Service>> {
        Ok(read::services(&self.pool).await?)
    }

    async fn project_default_volume_type(&self, project_id: &ProjectId) -> BackendResult<Option<String>> {
        Ok(read::project_default_volume_type(&self.pool, project_id).await?)
    }

    async fn project_usage(&self, project_id: &ProjectId) -> BackendResult<ProjectUsage> {
        Ok(read::project_usage(&self.pool, project_id).await?)
    }

    async fn cache_entries_of_image(&self, image_id: &ImageId) -> BackendResult<Vec<CacheEntry>> {
        Ok(read::cache_entries_of_image(&self.pool, image_id).await?)
    }

    async fn cache_entries_at(&self, location: &CacheLocation) -> BackendResult<Vec<CacheEntry>> {
        Ok(read::cache_entries_at(&self.pool, location).await?)
    }

    async fn new_volume_id(&self) -> BackendResult<VolumeId> {
        loop {
            let queued = lock(&self.fresh).pop();
            let id = queued.unwrap_or_else(|| VolumeId::from(uuid::Uuid::new_v4().to_string()));
            if !read::volume_id_taken(&self.pool, &id).await? {
                return Ok(id);
            }
        }
    }

    async fn write(&self, write: &DbWrite) -> BackendResult<()> {
        write::apply(&self.pool, write).await?;
        if let DbWrite::EvictCacheEntry { entry } = write {
            lock(&self.evictions).push(entry.volume_id.clone());
        }
        Ok(())
    }
}
