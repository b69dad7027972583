//! The SQL layer's errors, and how they map to the ports'
//! [`BackendError`](crate::error::BackendError).

use crate::error::{BackendError, BackendErrorKind};

/// Why the SQL `VolumeDb` could not connect, or a query failed.
///
/// No variant holds a password: URLs are kept with the password masked, and
/// sqlx is only ever given connection options, never the URL text, so its
/// errors cannot quote one either.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// The `connection` URL cannot be parsed.
    #[error("bad database URL {url}: {reason}")]
    InvalidUrl {
        /// The URL, password masked.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A dialect other than MySQL/MariaDB or SQLite.
    #[error("unsupported database dialect {dialect:?}: only mysql (mariadb) and sqlite are supported")]
    UnsupportedDialect {
        /// The URL's scheme, e.g. `postgresql+psycopg2`.
        dialect: String,
    },
    /// A URL query option this backend does not implement (TLS options
    /// included: refusing them is safer than connecting without TLS).
    #[error("unsupported database URL option {option:?}")]
    UnsupportedOption {
        /// The option's name.
        option: String,
    },
    /// A `[database]` option of `cinder.conf` has a value it does not take.
    #[error("[database] {option} = {value:?} is not a valid value")]
    InvalidOption {
        /// The option.
        option: String,
        /// Its text.
        value: String,
    },
    /// `cinder.conf` has no `[database] connection`.
    #[error("cinder.conf has no [database] connection option")]
    NoConnection,
    /// The server cannot be reached (refused, timed out, no such socket or
    /// SQLite file).
    #[error("cannot reach the database at {location}")]
    Unreachable {
        /// Host and port, socket, or file.
        location: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The server refused the user or password (MySQL error 1045).
    #[error("access denied for user {user:?} at {location} (wrong user or password)")]
    AccessDenied {
        /// The user.
        user: String,
        /// Host and port.
        location: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The database named in the URL does not exist (MySQL error 1049), or
    /// the user may not use it (1044).
    #[error("database {database:?} does not exist or may not be used by this user at {location}")]
    UnknownDatabase {
        /// The database name.
        database: String,
        /// Host and port.
        location: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Tables Cinder's schema has are missing: not a Cinder database, or
    /// one that was never migrated (`cinder-manage db sync`).
    #[error("not a Cinder database: missing table(s) {tables:?} (run `cinder-manage db sync`)")]
    MissingTables {
        /// The missing tables, sorted.
        tables: Vec<String>,
    },
    /// The schema is at another alembic revision than Cinder 29's head.
    #[error(
        "the schema is at alembic revision {found:?}, not Cinder 29's {expected:?} \
         (a database of another Cinder release, or a migration was not run)"
    )]
    SchemaVersion {
        /// The revision(s) found in `alembic_version` (empty: none).
        found: Vec<String>,
        /// Cinder 29.0.0's head revision.
        expected: &'static str,
    },
    /// A row whose values do not fit the model (e.g. a negative size).
    #[error("{table} row {id}: {reason}")]
    InvalidRow {
        /// The table.
        table: &'static str,
        /// The row's id.
        id: String,
        /// What does not fit.
        reason: String,
    },
    /// A query failed.
    #[error("{operation}")]
    Query {
        /// What was being done, e.g. `read volume 1234`.
        operation: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
}

impl SqlError {
    /// The port's error kind for this error.
    pub fn kind(&self) -> BackendErrorKind {
        match self {
            Self::Unreachable { .. } => BackendErrorKind::Unavailable,
            Self::AccessDenied { .. } | Self::UnknownDatabase { .. } => BackendErrorKind::PermissionDenied,
            Self::InvalidUrl { .. }
            | Self::UnsupportedDialect { .. }
            | Self::UnsupportedOption { .. }
            | Self::InvalidOption { .. }
            | Self::NoConnection => BackendErrorKind::InvalidArgument,
            Self::MissingTables { .. } | Self::SchemaVersion { .. } | Self::InvalidRow { .. } => {
                BackendErrorKind::Other
            }
            Self::Query { source, .. } => query_kind(source),
        }
    }

    /// Wraps a driver error of a query.
    pub(crate) fn query(operation: impl Into<String>, source: sqlx::Error) -> Self {
        Self::Query { operation: operation.into(), source }
    }
}

/// The port's kind for a failed query: lost connections are `Unavailable`,
/// lock waits and deadlocks `Busy`, duplicate keys `AlreadyExists`.
fn query_kind(e: &sqlx::Error) -> BackendErrorKind {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => BackendErrorKind::Unavailable,
        sqlx::Error::Database(db) => {
            if db.is_unique_violation() {
                return BackendErrorKind::AlreadyExists;
            }
            match db.code().as_deref() {
                // MySQL: ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK (SQLSTATE
                // 40001 / HY000 with these numbers); SQLite: BUSY, LOCKED.
                Some("40001") | Some("5") | Some("6") | Some("517") | Some("262") => BackendErrorKind::Busy,
                _ if mysql_number(db.as_ref()).is_some_and(|n| n == 1205 || n == 1213) => BackendErrorKind::Busy,
                _ => BackendErrorKind::Other,
            }
        }
        _ => BackendErrorKind::Other,
    }
}

/// MySQL's error number, when the error came from MySQL.
pub(crate) fn mysql_number(e: &dyn sqlx::error::DatabaseError) -> Option<u16> {
    e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().map(|m| m.number())
}

impl From<SqlError> for BackendError {
    /// The port's error: the kind from [`SqlError::kind`], the SQL error's
    /// text as the operation, and the SQL error as the source.
    fn from(e: SqlError) -> Self {
        let kind = e.kind();
        let operation = match &e {
            SqlError::Query { operation, .. } => operation.clone(),
            other => other.to_string(),
        };
        BackendError::new(kind, operation).with_source(e)
    }
}
