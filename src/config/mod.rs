//! Cinder configuration: every option that changes the create and delete
//! flows, with Cinder 29.0.0's defaults.
//!
//! Options are addressed by their upstream names (`rbd_max_clone_depth`,
//! `allowed_direct_url_schemes`, ...) through [`Config::set`] and
//! [`Config::set_from_str`], so vectors and `cinder.conf` files map onto the
//! same table, and are also plain public fields for Rust callers. Each option
//! knows its group: backend options (`rbd_*`, `image_volume_cache_*`, ...)
//! live in a backend section of `cinder.conf`, the rest in `[DEFAULT]`.
//!
//! ```
//! use cinder_flow::config::{Config, OptionValue};
//!
//! let mut cfg = Config::default();
//! assert_eq!(cfg.backend.rbd_max_clone_depth, 5);
//! cfg.set("rbd_max_clone_depth", OptionValue::Int(2)).unwrap();
//! cfg.set_from_str("allowed_direct_url_schemes", "cinder, file").unwrap();
//! assert_eq!(cfg.allowed_direct_url_schemes, ["cinder", "file"]);
//! assert!(cfg.set("no_such_option", OptionValue::Bool(true)).is_err());
//! ```

mod file;
mod upstream_options;

pub use file::{CinderConf, ConfigFileError, Ignored, Loaded, UnknownOption};

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an option lives in `cinder.conf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionGroup {
    /// `[DEFAULT]`
    Default,
    /// The backend's own section (`[<backend name>]`).
    Backend,
}

/// The type of an option, as oslo.config declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionKind {
    /// `BoolOpt`
    Bool,
    /// `IntOpt`
    Int,
    /// `StrOpt` with a default
    Str,
    /// `StrOpt` without a default (may be unset)
    OptStr,
    /// `ListOpt`
    List,
    /// `IntOpt` without a default (may be unset)
    OptInt,
}

/// A value given for an option.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OptionValue {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// A list of strings.
    List(Vec<String>),
    /// No value (unset).
    Null,
}

impl fmt::Display for OptionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Str(s) => write!(f, "{s:?}"),
            Self::List(l) => write!(f, "{l:?}"),
            Self::Null => f.write_str("null"),
        }
    }
}

/// A configuration error: which option, what was wrong, what was given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No such option among those the crate models.
    #[error("unknown option {name:?}")]
    UnknownOption {
        /// The name given.
        name: String,
    },
    /// The value has the wrong type for the option.
    #[error("option {name}: expected {expected:?}, got {value}")]
    WrongType {
        /// The option.
        name: String,
        /// Its type.
        expected: OptionKind,
        /// The value given.
        value: String,
    },
    /// The value is outside the option's allowed range or choices.
    #[error("option {name}: invalid value {value}: {reason}")]
    InvalidValue {
        /// The option.
        name: String,
        /// The value given.
        value: String,
        /// Why it is not allowed.
        reason: String,
    },
}

/// Static description of one option.
#[derive(Clone, Copy, Debug)]
pub struct OptionInfo {
    /// Upstream name.
    pub name: &'static str,
    /// Section.
    pub group: OptionGroup,
    /// Type.
    pub kind: OptionKind,
    /// Where upstream declares it and what it changes.
    pub upstream: &'static str,
}

macro_rules! options {
    (
        default { $( $dname:ident : $dkind:ident = $ddef:expr, $dup:literal; )* }
        backend { $( $bname:ident : $bkind:ident = $bdef:expr, $bup:literal; )* }
    ) => {
        /// Cinder options of `[DEFAULT]` plus one backend section.
        ///
        /// `Default` gives Cinder 29.0.0's defaults.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Config {
            $(
                #[doc = $dup]
                pub $dname: options!(@ty $dkind),
            )*
            /// The backend section the volume service runs.
            pub backend: BackendConfig,
        }

        /// Options of one backend section (driver options).
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct BackendConfig {
            $(
                #[doc = $bup]
                pub $bname: options!(@ty $bkind),
            )*
        }

        impl Default for Config {
            fn default() -> Self {
                Self {
                    $( $dname: options!(@conv $dkind, $ddef), )*
                    backend: BackendConfig::default(),
                }
            }
        }

        impl Default for BackendConfig {
            fn default() -> Self {
                Self { $( $bname: options!(@conv $bkind, $bdef), )* }
            }
        }

        /// Every option the crate models, in declaration order.
        pub const OPTIONS: &[OptionInfo] = &[
            $( OptionInfo { name: stringify!($dname), group: OptionGroup::Default, kind: OptionKind::$dkind, upstream: $dup }, )*
            $( OptionInfo { name: stringify!($bname), group: OptionGroup::Backend, kind: OptionKind::$bkind, upstream: $bup }, )*
        ];

        impl Config {
            fn assign(&mut self, name: &str, value: OptionValue) -> Result<(), ConfigError> {
                match name {
                    $( stringify!($dname) => { self.$dname = options!(@take $dkind, name, value)?; } )*
                    $( stringify!($bname) => { self.backend.$bname = options!(@take $bkind, name, value)?; } )*
                    _ => return Err(ConfigError::UnknownOption { name: name.to_owned() }),
                }
                Ok(())
            }

            /// The current value of an option.
            pub fn get(&self, name: &str) -> Result<OptionValue, ConfigError> {
                Ok(match name {
                    $( stringify!($dname) => options!(@give $dkind, self.$dname), )*
                    $( stringify!($bname) => options!(@give $bkind, self.backend.$bname), )*
                    _ => return Err(ConfigError::UnknownOption { name: name.to_owned() }),
                })
            }
        }
    };

    (@ty Bool) => { bool };
    (@ty Int) => { i64 };
    (@ty Str) => { String };
    (@ty OptStr) => { Option<String> };
    (@ty List) => { Vec<String> };
    (@ty OptInt) => { Option<i64> };

    (@conv Bool, $e:expr) => { $e };
    (@conv Int, $e:expr) => { $e };
    (@conv Str, $e:expr) => { String::from($e) };
    (@conv OptStr, $e:expr) => { $e.map(String::from) };
    (@conv List, $e:expr) => { $e.iter().map(|s: &&str| s.to_string()).collect() };
    (@conv OptInt, $e:expr) => { $e };

    (@take Bool, $n:expr, $v:expr) => { match $v { OptionValue::Bool(b) => Ok(b), other => Err(wrong($n, OptionKind::Bool, &other)) } };
    (@take Int, $n:expr, $v:expr) => { match $v { OptionValue::Int(i) => Ok(i), other => Err(wrong($n, OptionKind::Int, &other)) } };
    (@take Str, $n:expr, $v:expr) => { match $v { OptionValue::Str(s) => Ok(s), other => Err(wrong($n, OptionKind::Str, &other)) } };
    (@take OptStr, $n:expr, $v:expr) => { match $v { OptionValue::Str(s) => Ok(Some(s)), OptionValue::Null => Ok(None), other => Err(wrong($n, OptionKind::OptStr, &other)) } };
    (@take List, $n:expr, $v:expr) => { match $v { OptionValue::List(l) => Ok(l), OptionValue::Str(s) => Ok(split_list(&s)), other => Err(wrong($n, OptionKind::List, &other)) } };
    (@take OptInt, $n:expr, $v:expr) => { match $v { OptionValue::Int(i) => Ok(Some(i)), OptionValue::Null => Ok(None), other => Err(wrong($n, OptionKind::OptInt, &other)) } };

    (@give Bool, $e:expr) => { OptionValue::Bool($e) };
    (@give Int, $e:expr) => { OptionValue::Int($e) };
    (@give Str, $e:expr) => { OptionValue::Str($e.clone()) };
    (@give OptStr, $e:expr) => { $e.clone().map(OptionValue::Str).unwrap_or(OptionValue::Null) };
    (@give List, $e:expr) => { OptionValue::List($e.clone()) };
    (@give OptInt, $e:expr) => { $e.map(OptionValue::Int).unwrap_or(OptionValue::Null) };
}

const NO_STRS: [&str; 0] = [];

options! {
    default {
        storage_availability_zone: Str = "nova", "common/config.py:84 — the zone of this node; always a valid zone and the last-resort default";
        default_availability_zone: OptStr = None::<&str>, "common/config.py:89 — default zone for new volumes and the fallback target";
        allow_availability_zone_fallback: Bool = false, "common/config.py:93 — replace an unknown requested zone instead of failing";
        default_volume_type: Str = "__DEFAULT__", "common/config.py:99 — type used when none is requested or inherited";
        cloned_volume_same_az: Bool = true, "volume/api.py:82 — clones and volumes from snapshots must stay in the source zone";
        snapshot_same_host: Bool = true, "volume/api.py:78 — schedule volumes from snapshots to the snapshot's backend";
        az_cache_duration: Int = 3600, "volume/api.py:86 — seconds the zone list is cached";
        scheduler_max_attempts: Int = 3, "scheduler/driver.py:35 — rescheduling is possible only when > 1";
        allowed_direct_url_schemes: List = NO_STRS, "image/glance.py:48 — `cinder` enables the image-volume clone, `file` local copies";
        verify_glance_signatures: Str = "enabled", "image/glance.py:53 — `enabled` or `disabled`";
        image_conversion_dir: Str = "$state_path/conversion", "image/image_utils.py:63 — where images are downloaded and converted";
        image_conversion_disable: Bool = false, "image/image_utils.py:95 — refuse format conversion of downloaded images";
        image_introspection_cpu_limit: Int = 60, "image/image_utils.py:72 — qemu-img info CPU limit (s)";
        image_introspection_address_space_limit: Int = 1, "image/image_utils.py:83 — qemu-img info memory limit (GiB)";
        vmdk_allowed_types: List = ["streamOptimized", "monolithicSparse"], "image/image_utils.py:102 — accepted VMDK create types";
        allow_compression_on_image_upload: Bool = false, "common/config.py:206 — also gates downloading `compressed` images";
        cinder_internal_tenant_project_id: OptStr = None::<&str>, "context.py:37 — internal tenant project (image cache)";
        cinder_internal_tenant_user_id: OptStr = None::<&str>, "context.py:40 — internal tenant user (image cache)";
        state_path: Str = "/var/lib/cinder", "common/config.py:40 — base of the conversion directory";
        enabled_backends: List = NO_STRS, "common/config.py — backend sections the volume service runs";
        default_volume_backend_name: OptStr = None::<&str>, "cinder.conf — not used by the flows; accepted for completeness";
        glance_api_servers: List = NO_STRS, "common/config.py:165 — Glance endpoints (`[http[s]://]host:port`); empty: from the service catalog";
        glance_num_retries: Int = 3, "common/config.py:170 — retries of a Glance call after a connection error, a timeout or HTTP 503 (min 0)";
        glance_request_timeout: OptInt = None::<i64>, "common/config.py:195 — seconds per Glance HTTP request; unset: glanceclient's default (600 s)";
    }
    backend {
        volume_backend_name: OptStr = None::<&str>, "volume/driver.py — name reported to the scheduler";
        volume_driver: OptStr = None::<&str>, "volume/manager.py — driver class path";
        backend_availability_zone: OptStr = None::<&str>, "volume/driver.py — zone of this backend's service (defaults to storage_availability_zone)";
        image_volume_cache_enabled: Bool = false, "volume/driver.py:365 — enables the image-volume cache";
        image_volume_cache_max_size_gb: Int = 0, "volume/driver.py:368 — cache size limit per host (0 = unlimited)";
        image_volume_cache_max_count: Int = 0, "volume/driver.py:372 — cache entry limit per host (0 = unlimited)";
        image_upload_use_cinder_backend: Bool = false, "volume/driver.py:352 — upload-to-image keeps an image volume";
        image_upload_use_internal_tenant: Bool = false, "volume/driver.py:359 — keep that image volume in the internal tenant";
        volume_dd_blocksize: Str = "1M", "volume/driver.py — copy block size";
        num_shell_tries: Int = 3, "volume/driver.py — attempts of retried CLI calls (`rbd import`)";
        rbd_cluster_name: Str = "ceph", "volume/drivers/rbd.py — Ceph cluster name";
        rbd_pool: Str = "rbd", "volume/drivers/rbd.py — pool of volumes, clones and copies";
        rbd_user: OptStr = None::<&str>, "volume/drivers/rbd.py — RADOS user";
        rbd_ceph_conf: Str = "", "volume/drivers/rbd.py — ceph.conf path (empty: librados default)";
        rbd_secret_uuid: OptStr = None::<&str>, "volume/drivers/rbd.py — libvirt secret";
        rbd_keyring_conf: OptStr = None::<&str>, "volume/drivers/rbd.py — keyring path";
        rbd_max_clone_depth: Int = 5, "volume/drivers/rbd.py — flatten clones at this depth; <= 0 means full copies";
        rbd_flatten_volume_from_snapshot: Bool = false, "volume/drivers/rbd.py — flatten volumes created from snapshots";
        rbd_store_chunk_size: Int = 4, "volume/drivers/rbd.py — object size in MiB (order = log2)";
        rados_connect_timeout: Int = -1, "volume/drivers/rbd.py — connect timeout (s)";
        rados_connection_retries: Int = 3, "volume/drivers/rbd.py — attempts of retried calls";
        rados_connection_interval: Int = 5, "volume/drivers/rbd.py — seconds between retries";
        enable_deferred_deletion: Bool = false, "volume/drivers/rbd.py — trash with a delay instead of immediate purge";
        deferred_deletion_delay: Int = 0, "volume/drivers/rbd.py — trash delay (s)";
        deferred_deletion_purge_interval: Int = 60, "volume/drivers/rbd.py — trash purge period (s)";
        rbd_concurrent_flatten_operations: Int = 3, "volume/drivers/rbd.py — flatten concurrency (0 = unlimited)";
        rbd_exclusive_cinder_pool: Bool = true, "volume/drivers/rbd.py — pool used by Cinder only";
        report_dynamic_total_capacity: Bool = true, "volume/drivers/rbd.py — capacity reporting";
    }
}

fn wrong(name: &str, expected: OptionKind, value: &OptionValue) -> ConfigError {
    ConfigError::WrongType { name: name.to_owned(), expected, value: value.to_string() }
}

/// oslo.config `ListOpt` parsing: split on commas, strip items, drop empty
/// ones.
fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect()
}

impl Config {
    /// Looks an option up by name.
    pub fn info(name: &str) -> Option<&'static OptionInfo> {
        OPTIONS.iter().find(|o| o.name == name)
    }

    /// Sets an option from a typed value, checking its type and constraints.
    pub fn set(&mut self, name: &str, value: OptionValue) -> Result<(), ConfigError> {
        let info = Self::info(name).ok_or_else(|| ConfigError::UnknownOption { name: name.to_owned() })?;
        let value = match (info.kind, value) {
            // A JSON string where a list is expected is accepted as oslo
            // accepts a comma-separated line.
            (OptionKind::List, OptionValue::Str(s)) => OptionValue::List(split_list(&s)),
            (_, v) => v,
        };
        let shown = value.to_string();
        let mut next = self.clone();
        next.assign(name, value)?;
        next.check_option(name).map_err(|reason| ConfigError::InvalidValue {
            name: name.to_owned(),
            value: shown,
            reason,
        })?;
        *self = next;
        Ok(())
    }

    /// Sets an option from its `cinder.conf` text, parsed as oslo.config
    /// parses the option's type.
    pub fn set_from_str(&mut self, name: &str, text: &str) -> Result<(), ConfigError> {
        let info = Self::info(name).ok_or_else(|| ConfigError::UnknownOption { name: name.to_owned() })?;
        let trimmed = text.trim();
        let bad = || ConfigError::WrongType { name: name.to_owned(), expected: info.kind, value: text.to_owned() };
        let value = match info.kind {
            OptionKind::Bool => OptionValue::Bool(parse_oslo_bool(trimmed).ok_or_else(bad)?),
            OptionKind::Int => OptionValue::Int(trimmed.parse().map_err(|_| bad())?),
            OptionKind::Str | OptionKind::OptStr => OptionValue::Str(text.to_owned()),
            OptionKind::List => OptionValue::List(split_list(text)),
            OptionKind::OptInt => OptionValue::Int(trimmed.parse().map_err(|_| bad())?),
        };
        self.set(name, value)
    }

    /// Checks every constraint; what [`Config::set`] enforces one option at
    /// a time, for configurations built field by field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for info in OPTIONS {
            self.check_option(info.name).map_err(|reason| ConfigError::InvalidValue {
                name: info.name.to_owned(),
                value: self.get(info.name).map(|v| v.to_string()).unwrap_or_default(),
                reason,
            })?;
        }
        Ok(())
    }

    fn check_option(&self, name: &str) -> Result<(), String> {
        let b = &self.backend;
        match name {
            "verify_glance_signatures" if !matches!(self.verify_glance_signatures.as_str(), "enabled" | "disabled") => {
                Err("must be one of enabled, disabled".into())
            }
            "rbd_concurrent_flatten_operations" if b.rbd_concurrent_flatten_operations < 0 => {
                Err("must be >= 0".into())
            }
            "glance_num_retries" if self.glance_num_retries < 0 => Err("must be >= 0".into()),
            // oslo.config has no bound; a request cannot take no time.
            "glance_request_timeout" if self.glance_request_timeout.is_some_and(|t| t <= 0) => {
                Err("must be a positive number of seconds".into())
            }
            // Not limited upstream, but log2 of a non-positive chunk size
            // raises in the driver; refuse it up front.
            "rbd_store_chunk_size" if b.rbd_store_chunk_size <= 0 || b.rbd_store_chunk_size > (1 << 20) => {
                Err("must be a positive number of MiB".into())
            }
            _ => Ok(()),
        }
    }

    /// The internal tenant (`context.get_internal_tenant_context`): present
    /// only when both ids are set.
    pub fn internal_tenant(&self) -> Option<(&str, &str)> {
        match (&self.cinder_internal_tenant_project_id, &self.cinder_internal_tenant_user_id) {
            (Some(p), Some(u)) => Some((p.as_str(), u.as_str())),
            _ => None,
        }
    }

    /// Whether a URL scheme is in `allowed_direct_url_schemes`.
    pub fn direct_url_scheme_allowed(&self, scheme: &str) -> bool {
        self.allowed_direct_url_schemes.iter().any(|s| s == scheme)
    }
}

/// oslo.config's boolean spellings.
fn parse_oslo_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "on" | "yes" => Some(true),
        "false" | "0" | "off" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_cinder_29s() {
        let c = Config::default();
        assert_eq!(c.backend.rbd_pool, "rbd");
        assert_eq!(c.backend.rbd_max_clone_depth, 5);
        assert!(!c.backend.rbd_flatten_volume_from_snapshot);
        assert_eq!(c.backend.rbd_store_chunk_size, 4);
        assert_eq!(c.backend.rados_connection_retries, 3);
        assert!(!c.backend.image_volume_cache_enabled);
        assert!(c.allowed_direct_url_schemes.is_empty());
        assert_eq!(c.storage_availability_zone, "nova");
        assert!(c.cloned_volume_same_az);
        assert_eq!(c.verify_glance_signatures, "enabled");
        assert!(c.internal_tenant().is_none());
        assert_eq!(c.glance_num_retries, 3);
        assert_eq!(c.glance_request_timeout, None);
        assert!(c.glance_api_servers.is_empty());
        c.validate().unwrap();
    }

    #[test]
    fn set_checks_type_and_constraints() {
        let mut c = Config::default();
        assert!(matches!(
            c.set("rbd_pool", OptionValue::Int(1)),
            Err(ConfigError::WrongType { expected: OptionKind::Str, .. })
        ));
        let e = c.set("verify_glance_signatures", OptionValue::Str("maybe".into())).unwrap_err();
        assert!(matches!(e, ConfigError::InvalidValue { .. }), "{e}");
        assert_eq!(c.verify_glance_signatures, "enabled", "a refused value leaves the config unchanged");
        c.set("default_availability_zone", OptionValue::Null).unwrap();
        c.set("default_availability_zone", OptionValue::Str("az1".into())).unwrap();
        assert_eq!(c.default_availability_zone.as_deref(), Some("az1"));
        assert!(c.set("rbd_max_clone_depth", OptionValue::Int(-1)).is_ok());
    }

    #[test]
    fn set_from_str_parses_like_oslo() {
        let mut c = Config::default();
        c.set_from_str("image_volume_cache_enabled", "True").unwrap();
        assert!(c.backend.image_volume_cache_enabled);
        c.set_from_str("rbd_max_clone_depth", " 0 ").unwrap();
        assert_eq!(c.backend.rbd_max_clone_depth, 0);
        c.set_from_str("allowed_direct_url_schemes", "cinder,,file ").unwrap();
        assert_eq!(c.allowed_direct_url_schemes, ["cinder", "file"]);
        assert!(c.set_from_str("rbd_max_clone_depth", "five").is_err());
        assert!(c.set_from_str("image_volume_cache_enabled", "perhaps").is_err());
        c.set_from_str("glance_request_timeout", "30").unwrap();
        assert_eq!(c.glance_request_timeout, Some(30));
        assert!(c.set_from_str("glance_request_timeout", "0").is_err());
        assert!(c.set_from_str("glance_num_retries", "-1").is_err());
        c.set("glance_request_timeout", OptionValue::Null).unwrap();
        assert_eq!(c.glance_request_timeout, None);
    }

    #[test]
    fn every_option_round_trips_through_get_and_set() {
        let c = Config::default();
        for info in OPTIONS {
            let v = c.get(info.name).unwrap();
            let mut d = Config::default();
            d.set(info.name, v).unwrap();
            assert_eq!(c, d, "{}", info.name);
        }
    }
}
