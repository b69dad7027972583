//! Tests against the real servers `.ci/run` starts (`.ci/mariadb.sh`,
//! `.ci/ceph.sh`, `.ci/glance.sh`), one module per backend, each behind its
//! cargo feature. Every test reads its servers from environment variables
//! (`bash .ci/glance.sh env` prints Glance's, `bash .ci/mariadb.sh env`
//! MariaDB's) and says it skips, and passes, when they are unset.

#[cfg(feature = "glance")]
#[path = "real_cloud/glance.rs"]
mod glance;

#[cfg(feature = "sql")]
#[path = "real_cloud/sql.rs"]
mod sql;
