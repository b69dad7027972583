//! Loading a real `cinder.conf` (oslo.config INI): `[DEFAULT]`,
//! `enabled_backends`, one section per backend, and `[backend_defaults]`.
//!
//! ```
//! use cinder_flow::config::CinderConf;
//!
//! let conf = CinderConf::parse(r#"
//! [DEFAULT]
//! enabled_backends = ceph
//! allowed_direct_url_schemes = cinder
//! transport_url = rabbit://guest@localhost//
//!
//! [backend_defaults]
//! rados_connection_retries = 5
//!
//! [ceph]
//! volume_driver = cinder.volume.drivers.rbd.RBDDriver
//! rbd_pool = volumes
//! rbd_max_clone_depth = 3
//! "#).unwrap();
//! let loaded = conf.load(None).unwrap();
//! assert_eq!(loaded.backend_name, "ceph");
//! assert_eq!(loaded.config.backend.rbd_pool, "volumes");
//! assert_eq!(loaded.config.backend.rados_connection_retries, 5);
//! assert_eq!(loaded.config.allowed_direct_url_schemes, ["cinder"]);
//! // Options the crate does not model are reported, not fatal.
//! assert!(loaded.ignored.iter().any(|i| i.key == "transport_url"));
//! ```

use std::path::Path;

use ini::{Ini, ParseOption};

use super::{Config, ConfigError, OptionGroup};

/// A `cinder.conf` that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not valid INI.
    #[error("not a valid INI file: {message}")]
    Syntax {
        /// The parser's message (with line and column).
        message: String,
    },
    /// An option has a value the option does not accept.
    #[error("[{section}] {key} = {value:?}: {error}")]
    Value {
        /// Section.
        section: String,
        /// Option.
        key: String,
        /// The text in the file.
        value: String,
        /// What is wrong with it.
        #[source]
        error: Box<ConfigError>,
    },
    /// No backend chosen and `enabled_backends` does not name exactly one.
    #[error("choose a backend: enabled_backends is {enabled:?}")]
    AmbiguousBackend {
        /// The enabled backends.
        enabled: Vec<String>,
    },
    /// The backend is not in `enabled_backends`.
    #[error("backend {backend:?} is not in enabled_backends {enabled:?}")]
    BackendNotEnabled {
        /// The backend asked for.
        backend: String,
        /// The enabled backends.
        enabled: Vec<String>,
    },
    /// The backend has no section.
    #[error("backend {backend:?} has no [{backend}] section")]
    MissingSection {
        /// The backend.
        backend: String,
    },
}

/// A key the crate does not model (left for the rest of Cinder).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    /// Section.
    pub section: String,
    /// Option.
    pub key: String,
}

/// The configuration of one backend, read from a `cinder.conf`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Loaded {
    /// The backend section used.
    pub backend_name: String,
    /// `[DEFAULT]` and the backend's options.
    pub config: Config,
    /// Keys of the used sections that the crate does not model.
    pub ignored: Vec<Ignored>,
}

/// A parsed `cinder.conf`.
#[derive(Debug)]
pub struct CinderConf {
    ini: Ini,
}

/// oslo.config `iniparser`: no inline comments, continuation lines,
/// surrounding quotes stripped.
fn parse_options() -> ParseOption {
    ParseOption {
        enabled_quote: true,
        enabled_escape: false,
        enabled_indented_mutiline_value: true,
        ..ParseOption::default()
    }
}

impl CinderConf {
    /// Parses INI text.
    pub fn parse(text: &str) -> Result<Self, ConfigFileError> {
        let ini = Ini::load_from_str_opt(text, parse_options())
            .map_err(|e| ConfigFileError::Syntax { message: e.to_string() })?;
        Ok(Self { ini })
    }

    /// Reads and parses a file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, ConfigFileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigFileError::Io { path: path.display().to_string(), source })?;
        Self::parse(&text)
    }

    fn section(&self, name: &str) -> Vec<(String, String)> {
        let section = if name == "DEFAULT" {
            // rust-ini keeps keys before any section header in the general
            // section; oslo reads `[DEFAULT]` too.
            self.ini
                .general_section()
                .iter()
                .chain(self.ini.section(Some("DEFAULT")).into_iter().flat_map(|s| s.iter()))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        } else {
            self.ini
                .section(Some(name))
                .map(|s| s.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
                .unwrap_or_default()
        };
        section
    }

    /// The raw text of `key` in `section` (`DEFAULT` included), the last
    /// one when repeated, before oslo.config's `$option` substitution.
    pub fn value(&self, section: &str, key: &str) -> Option<String> {
        self.section(section).into_iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The configuration for `backend` (or the only enabled backend).
    pub fn load(&self, backend: Option<&str>) -> Result<Loaded, ConfigFileError> {
        let mut config = Config::default();
        let mut ignored = Vec::new();
        let set = |config: &mut Config, section: &str, key: &str, value: &str| -> Result<(), ConfigFileError> {
            config.set_from_str(key, value).map_err(|error| ConfigFileError::Value {
                section: section.to_owned(),
                key: key.to_owned(),
                value: value.to_owned(),
                error: Box::new(error),
            })
        };
        for (key, value) in self.section("DEFAULT") {
            match Config::info(&key) {
                Some(info) if info.group == OptionGroup::Default => set(&mut config, "DEFAULT", &key, &value)?,
                // Backend options in [DEFAULT] are ignored upstream once
                // enabled_backends is set: reported, not applied.
                _ => ignored.push(Ignored { section: "DEFAULT".into(), key }),
            }
        }
        let enabled = config.enabled_backends.clone();
        let backend_name = match backend {
            Some(b) => {
                if !enabled.iter().any(|e| e == b) {
                    return Err(ConfigFileError::BackendNotEnabled { backend: b.to_owned(), enabled });
                }
                b.to_owned()
            }
            None => match enabled.as_slice() {
                [one] => one.clone(),
                _ => return Err(ConfigFileError::AmbiguousBackend { enabled }),
            },
        };
        if self.ini.section(Some(backend_name.as_str())).is_none() {
            return Err(ConfigFileError::MissingSection { backend: backend_name });
        }
        // [backend_defaults] first, then the backend's own section.
        for section in ["backend_defaults", backend_name.as_str()] {
            for (key, value) in self.section(section) {
                match Config::info(&key) {
                    Some(info) if info.group == OptionGroup::Backend => set(&mut config, section, &key, &value)?,
                    _ => ignored.push(Ignored { section: section.to_owned(), key }),
                }
            }
        }
        config.validate().map_err(|error| ConfigFileError::Value {
            section: backend_name.clone(),
            key: String::new(),
            value: String::new(),
            error: Box::new(error),
        })?;
        Ok(Loaded { backend_name, config, ignored })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_values_name_the_section_and_key() {
        let conf = CinderConf::parse("[DEFAULT]\nenabled_backends = a\n[a]\nrbd_max_clone_depth = five\n").unwrap();
        let e = conf.load(None).unwrap_err();
        assert!(
            matches!(&e, ConfigFileError::Value { section, key, .. } if section == "a" && key == "rbd_max_clone_depth"),
            "{e}"
        );
        assert!(e.to_string().contains("five"));
    }

    #[test]
    fn backend_choice_errors() {
        let conf = CinderConf::parse("[DEFAULT]\nenabled_backends = a, b\n[a]\n[b]\n").unwrap();
        assert!(matches!(conf.load(None), Err(ConfigFileError::AmbiguousBackend { .. })));
        assert!(matches!(conf.load(Some("c")), Err(ConfigFileError::BackendNotEnabled { .. })));
        assert_eq!(conf.load(Some("b")).unwrap().backend_name, "b");
        let conf = CinderConf::parse("[DEFAULT]\nenabled_backends = a\n").unwrap();
        assert!(matches!(conf.load(None), Err(ConfigFileError::MissingSection { .. })));
    }

    #[test]
    fn backend_options_in_default_are_reported_not_applied() {
        let conf = CinderConf::parse("[DEFAULT]\nrbd_pool = x\nenabled_backends = a\n[a]\n").unwrap();
        let l = conf.load(None).unwrap();
        assert_eq!(l.config.backend.rbd_pool, "rbd");
        assert!(l.ignored.contains(&Ignored { section: "DEFAULT".into(), key: "rbd_pool".into() }));
    }

    #[test]
    fn oslo_syntax_details() {
        let text = "[DEFAULT]\nenabled_backends = a\nstorage_availability_zone = \"az # not a comment\"\n# a comment\n[a]\nrbd_pool = vols\nimage_volume_cache_enabled = True\n";
        let l = CinderConf::parse(text).unwrap().load(None).unwrap();
        assert_eq!(l.config.storage_availability_zone, "az # not a comment");
        assert_eq!(l.config.backend.rbd_pool, "vols");
        assert!(l.config.backend.image_volume_cache_enabled);
        assert!(CinderConf::parse("[unterminated\n").is_err());
    }

    #[test]
    fn choices_are_checked() {
        let conf =
            CinderConf::parse("[DEFAULT]\nenabled_backends = a\nverify_glance_signatures = maybe\n[a]\n").unwrap();
        assert!(matches!(conf.load(None), Err(ConfigFileError::Value { .. })));
    }
}
