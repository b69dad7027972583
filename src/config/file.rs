//! Loading a real `cinder.conf` as oslo.config reads it: `[DEFAULT]`,
//! `enabled_backends`, one section per backend, and `[backend_defaults]`.
//!
//! The text is read line by line as oslo.config's `iniparser` reads it
//! (oslo.config 10): a key line is `key = value` or `key: value` (the
//! first `=` or `:` splits), surrounding quotes are dropped, lines that
//! start with a space or a tab continue the value before them (joined with
//! a newline), a blank or comment line (`#` or `;` in the first column)
//! ends it, and there are no inline comments. A section may appear more
//! than once: its keys are merged, and for a key given twice the later
//! value wins. Section names other than `DEFAULT` match whatever their
//! case (`[Ceph]` is the `ceph` backend's), as oslo.config normalises
//! them. A syntax error names the file, the line and oslo's reason.
//!
//! Values of the options the crate applies are substituted as oslo.config
//! does when it reads them: `$option` and `${option}` (an option of the
//! same section, else of `[DEFAULT]`; `$group.option` for another backend
//! section) become that option's value as Python prints it, `$$` and
//! `\$` are a dollar sign, and a `$` before anything else stays as it is.
//! A reference oslo.config would fail on (no such option, a loop) fails
//! the load, and so does one to an option this crate does not model,
//! whose value it cannot know.
//!
//! Keys the crate does not model are reported, never fatal: those Cinder
//! reads are in [`Loaded::ignored`] (left to Cinder), and names Cinder
//! does not have at all (typos, which Cinder ignores silently) are in
//! [`Loaded::unknown`] with the nearest option name as a suggestion.
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
//! rbd_max_clone_dept = 3
//! rbd_user = $rbd_pool-user
//! "#).unwrap();
//! let loaded = conf.load(None).unwrap();
//! assert_eq!(loaded.backend_name, "ceph");
//! assert_eq!(loaded.config.backend.rbd_pool, "volumes");
//! assert_eq!(loaded.config.backend.rbd_user.as_deref(), Some("volumes-user"));
//! assert_eq!(loaded.config.backend.rados_connection_retries, 5);
//! assert_eq!(loaded.config.allowed_direct_url_schemes, ["cinder"]);
//! // Options the crate does not model are reported, not fatal.
//! assert!(loaded.ignored.iter().any(|i| i.key == "transport_url"));
//! // A typo Cinder would ignore silently comes with a suggestion.
//! assert_eq!(loaded.unknown[0].key, "rbd_max_clone_dept");
//! assert_eq!(loaded.unknown[0].suggestion, Some("rbd_max_clone_depth"));
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::upstream_options::{BACKEND_OPTIONS, DEFAULT_OPTIONS};
use super::{Config, ConfigError, OptionGroup, OptionKind, OptionValue, OPTIONS};

/// Where in the file: `cinder.conf:12`, or `line 12` for text parsed
/// without a file name; the file alone when the line is not known (0).
fn at(file: &Option<Arc<Path>>, line: usize) -> String {
    match (file, line) {
        (Some(f), 0) => f.display().to_string(),
        (Some(f), l) => format!("{}:{l}", f.display()),
        (None, 0) => "the configuration".to_owned(),
        (None, l) => format!("line {l}"),
    }
}

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
    /// Not valid oslo.config INI (oslo raises `ConfigFileParseError`).
    #[error("{}: {message}: {text:?}", at(.file, *.line))]
    Syntax {
        /// The file, when the text came from one.
        file: Option<Arc<Path>>,
        /// The line (1-based).
        line: usize,
        /// oslo's reason (`Unexpected continuation line`, ...).
        message: String,
        /// The line's text.
        text: String,
    },
    /// An option has a value the option does not accept.
    #[error("{}: [{section}] {key} = {value:?}: {error}", at(.file, *.line))]
    Value {
        /// The file, when the text came from one.
        file: Option<Arc<Path>>,
        /// The line of the value (0: the configuration as a whole).
        line: usize,
        /// Section.
        section: String,
        /// Option.
        key: String,
        /// The text in the file (after substitution).
        value: String,
        /// What is wrong with it.
        #[source]
        error: Box<ConfigError>,
    },
    /// A `$option` in a value that oslo.config would fail on, or whose
    /// value the crate cannot know.
    #[error("{}: [{section}] {key} = {value:?}: {message}", at(.file, *.line))]
    Substitution {
        /// The file, when the text came from one.
        file: Option<Arc<Path>>,
        /// The line of the value.
        line: usize,
        /// Section.
        section: String,
        /// Option.
        key: String,
        /// The text in the file.
        value: String,
        /// What cannot be substituted, and why.
        message: String,
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

/// A key that is no option Cinder 29.0.0 reads in its section: a typo,
/// most likely, which Cinder ignores without a word.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnknownOption {
    /// Section.
    pub section: String,
    /// The key as written.
    pub key: String,
    /// Its line.
    pub line: usize,
    /// The nearest option name of that section (edit distance), when one
    /// is close enough to be meant.
    pub suggestion: Option<&'static str>,
}

/// The configuration of one backend, read from a `cinder.conf`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Loaded {
    /// The backend section used.
    pub backend_name: String,
    /// `[DEFAULT]` and the backend's options.
    pub config: Config,
    /// Keys of the used sections that Cinder reads but the crate does not
    /// model.
    pub ignored: Vec<Ignored>,
    /// Keys of the used sections that are no Cinder option there.
    pub unknown: Vec<UnknownOption>,
}

/// One assignment, in file order.
#[derive(Clone, Debug)]
struct Entry {
    section: String,
    key: String,
    value: String,
    line: usize,
}

/// A parsed `cinder.conf`.
#[derive(Debug)]
pub struct CinderConf {
    file: Option<Arc<Path>>,
    entries: Vec<Entry>,
    /// Section names as written, in order of first appearance.
    sections: Vec<String>,
}

/// oslo.config's group names: `DEFAULT` as it is, any other lowercased.
fn normalise(section: &str) -> String {
    if section == "DEFAULT" {
        section.to_owned()
    } else {
        section.to_lowercase()
    }
}

/// Python's `str.isspace`.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's text-mode lines: `\n`, `\r\n` and a lone `\r` end a line.
fn py_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        let line = &rest[..end];
        let skip = if rest[end..].starts_with("\r\n") { 2 } else { usize::from(end < rest.len()) };
        rest = &rest[end + skip..];
        Some(line)
    })
}

impl CinderConf {
    /// Parses INI text.
    pub fn parse(text: &str) -> Result<Self, ConfigFileError> {
        Self::parse_from(text, None)
    }

    /// Reads and parses a file; errors name it.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, ConfigFileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigFileError::Io { path: path.display().to_string(), source })?;
        Self::parse_from(&text, Some(Arc::from(path)))
    }

    /// oslo.config's `iniparser.BaseParser.parse` with `ConfigParser`'s
    /// callbacks.
    fn parse_from(text: &str, file: Option<Arc<Path>>) -> Result<Self, ConfigFileError> {
        let syntax = |line: usize, message: &str, text: &str| ConfigFileError::Syntax {
            file: file.clone(),
            line,
            message: message.to_owned(),
            text: text.to_owned(),
        };
        let mut entries = Vec::new();
        let mut sections: Vec<String> = Vec::new();
        let mut section: Option<String> = None;
        // The assignment being read: key, value lines, its line number.
        let mut pending: Option<(String, Vec<String>, usize)> = None;
        let mut flush = |pending: &mut Option<(String, Vec<String>, usize)>,
                         section: &Option<String>|
         -> Result<(), ConfigFileError> {
            if let Some((key, value, line)) = pending.take() {
                let Some(section) = section else {
                    return Err(syntax(line, "Section must be started before assignment", &key));
                };
                entries.push(Entry { section: section.clone(), key, value: value.join("\n"), line });
            }
            Ok(())
        };
        for (i, raw) in py_lines(text).enumerate() {
            let lineno = i + 1;
            let line = raw.trim_end_matches(py_space);
            if line.is_empty() {
                flush(&mut pending, &section)?;
                continue;
            }
            if line.starts_with([' ', '\t']) {
                match &mut pending {
                    Some((_, value, _)) => value.push(line.trim_start_matches(py_space).to_owned()),
                    None => return Err(syntax(lineno, "Unexpected continuation line", line)),
                }
                continue;
            }
            flush(&mut pending, &section)?;
            if line.starts_with('[') {
                if !line.ends_with(']') {
                    return Err(syntax(lineno, "Invalid section (must end with ])", line));
                }
                if line.len() <= 2 {
                    return Err(syntax(lineno, "Empty section name", line));
                }
                let name = line[1..line.len() - 1].to_owned();
                if !sections.contains(&name) {
                    sections.push(name.clone());
                }
                section = Some(name);
            } else if line.starts_with(['#', ';']) {
                // A comment.
            } else {
                let (key, value) = match (line.find('='), line.find(':')) {
                    (None, None) => return Err(syntax(lineno, "No ':' or '=' found in assignment", line)),
                    (Some(e), Some(c)) if c < e => (&line[..c], &line[c + 1..]),
                    (Some(e), _) => (&line[..e], &line[e + 1..]),
                    (None, Some(c)) => (&line[..c], &line[c + 1..]),
                };
                let mut value = value.trim_matches(py_space);
                if value.len() >= 2 && (value.starts_with('"') || value.starts_with('\'')) {
                    if value.ends_with(&value[..1]) {
                        value = &value[1..value.len() - 1];
                    }
                } else if value == "\"" || value == "'" {
                    value = "";
                }
                let key = key.trim_matches(py_space);
                if key.is_empty() {
                    return Err(syntax(lineno, "Key cannot be empty", line));
                }
                pending = Some((key.to_owned(), vec![value.to_owned()], lineno));
            }
        }
        flush(&mut pending, &section)?;
        Ok(Self { file, entries, sections })
    }

    /// The keys of a group (all sections whose normalised name is
    /// `group`), each with its last value and that value's line, in order
    /// of first appearance.
    fn group(&self, group: &str) -> Vec<(&str, &str, usize)> {
        let group = normalise(group);
        let mut order: Vec<&str> = Vec::new();
        let mut last: BTreeMap<&str, (&str, usize)> = BTreeMap::new();
        for e in self.entries.iter().filter(|e| normalise(&e.section) == group) {
            if last.insert(&e.key, (&e.value, e.line)).is_none() {
                order.push(&e.key);
            }
        }
        order.into_iter().map(|k| (k, last[k].0, last[k].1)).collect()
    }

    fn has_group(&self, group: &str) -> bool {
        let group = normalise(group);
        self.sections.iter().any(|s| normalise(s) == group)
    }

    /// The raw text of `key` in `section` (`DEFAULT` included), the last
    /// one when repeated, before oslo.config's `$option` substitution.
    pub fn value(&self, section: &str, key: &str) -> Option<String> {
        self.group(section).into_iter().find(|(k, _, _)| *k == key).map(|(_, v, _)| v.to_owned())
    }

    /// The configuration for `backend` (or the only enabled backend).
    pub fn load(&self, backend: Option<&str>) -> Result<Loaded, ConfigFileError> {
        let mut config = Config::default();
        let mut ignored = Vec::new();
        let mut unknown = Vec::new();
        let mut subst = Substitution { conf: self, backend: None, stack: Vec::new() };
        // [DEFAULT] first: enabled_backends chooses the backend section.
        for (key, raw, line) in self.group("DEFAULT") {
            match Config::info(key) {
                Some(info) if info.group == OptionGroup::Default => {
                    let value = subst.value("DEFAULT", key, raw, line)?;
                    self.set(&mut config, "DEFAULT", key, &value, line)?;
                }
                // Backend options in [DEFAULT] are ignored upstream once
                // enabled_backends is set: reported, not applied.
                Some(_) => ignored.push(Ignored { section: "DEFAULT".into(), key: key.to_owned() }),
                None => self.unmodelled("DEFAULT", key, line, &mut ignored, &mut unknown),
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
        if !self.has_group(&backend_name) {
            return Err(ConfigFileError::MissingSection { backend: backend_name });
        }
        subst.backend = Some(backend_name.clone());
        // [backend_defaults] first, then the backend's own section.
        for section in ["backend_defaults", backend_name.as_str()] {
            for (key, raw, line) in self.group(section) {
                match Config::info(key) {
                    Some(info) if info.group == OptionGroup::Backend => {
                        let value = subst.value(section, key, raw, line)?;
                        self.set(&mut config, section, key, &value, line)?;
                    }
                    Some(_) => ignored.push(Ignored { section: section.to_owned(), key: key.to_owned() }),
                    None => self.unmodelled(section, key, line, &mut ignored, &mut unknown),
                }
            }
        }
        config.validate().map_err(|error| ConfigFileError::Value {
            file: self.file.clone(),
            line: 0,
            section: backend_name.clone(),
            key: match &error {
                ConfigError::InvalidValue { name, .. } | ConfigError::WrongType { name, .. } => name.clone(),
                _ => String::new(),
            },
            value: String::new(),
            error: Box::new(error),
        })?;
        Ok(Loaded { backend_name, config, ignored, unknown })
    }

    fn set(
        &self,
        config: &mut Config,
        section: &str,
        key: &str,
        value: &str,
        line: usize,
    ) -> Result<(), ConfigFileError> {
        config.set_from_str(key, value).map_err(|error| ConfigFileError::Value {
            file: self.file.clone(),
            line,
            section: section.to_owned(),
            key: key.to_owned(),
            value: value.to_owned(),
            error: Box::new(error),
        })
    }

    /// A key the crate does not model: an option Cinder has (left to
    /// Cinder, even when it belongs to another section), or no option at
    /// all (unknown, with the nearest name of that section).
    fn unmodelled(
        &self,
        section: &str,
        key: &str,
        line: usize,
        ignored: &mut Vec<Ignored>,
        unknown: &mut Vec<UnknownOption>,
    ) {
        if DEFAULT_OPTIONS.binary_search(&key).is_ok() || BACKEND_OPTIONS.binary_search(&key).is_ok() {
            ignored.push(Ignored { section: section.to_owned(), key: key.to_owned() });
            return;
        }
        let (upstream, group) = if section == "DEFAULT" {
            (DEFAULT_OPTIONS, OptionGroup::Default)
        } else {
            (BACKEND_OPTIONS, OptionGroup::Backend)
        };
        let modelled = OPTIONS.iter().filter(|o| o.group == group).map(|o| o.name);
        let suggestion = suggest(key, upstream.iter().copied().chain(modelled));
        unknown.push(UnknownOption { section: section.to_owned(), key: key.to_owned(), line, suggestion });
    }
}

/// The candidate nearest to `key` by Damerau-Levenshtein distance, when
/// it is at most a quarter of the key's length (and at least 1, at most 3
/// edits): `rbd_max_clone_dept` suggests `rbd_max_clone_depth`, a name
/// far from every option suggests nothing.
fn suggest<'a>(key: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (key.chars().count() / 4).clamp(1, 3);
    candidates.map(|c| (strsim::damerau_levenshtein(key, c), c)).filter(|(d, _)| *d <= limit).min().map(|(_, c)| c)
}

/// `$option` substitution (`ConfigOpts._substitute`, `string.Template`
/// with oslo's identifier pattern, `safe_substitute`).
struct Substitution<'a> {
    conf: &'a CinderConf,
    /// The backend section, once chosen: `$group.option` may name it.
    backend: Option<String>,
    /// The options being substituted, to refuse a loop.
    stack: Vec<(String, String)>,
}

/// `[_a-z][\._a-z0-9]*` under Python's `re.IGNORECASE`, which also folds
/// these four letters onto ASCII ones.
fn id_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic() || matches!(c, '\u{130}' | '\u{131}' | '\u{17f}' | '\u{212a}')
}

fn id_continue(c: char) -> bool {
    id_start(c) || c == '.' || c.is_ascii_digit()
}

/// Python's `str()` of an option's value.
fn py_str(value: &OptionValue) -> String {
    match value {
        OptionValue::Bool(true) => "True".into(),
        OptionValue::Bool(false) => "False".into(),
        OptionValue::Int(i) => i.to_string(),
        OptionValue::Str(s) => s.clone(),
        OptionValue::Null => String::new(),
        OptionValue::List(items) => {
            let items: Vec<String> = items.iter().map(|i| crate::pyvalue::py_repr(i)).collect();
            format!("[{}]", items.join(", "))
        }
    }
}

impl Substitution<'_> {
    /// The value of `key` (text `raw` at `line` of `section`) with its
    /// references substituted.
    fn value(&mut self, section: &str, key: &str, raw: &str, line: usize) -> Result<String, ConfigFileError> {
        self.substitute(section, raw).map_err(|message| ConfigFileError::Substitution {
            file: self.conf.file.clone(),
            line,
            section: section.to_owned(),
            key: key.to_owned(),
            value: raw.to_owned(),
            message,
        })
    }

    fn substitute(&mut self, group: &str, raw: &str) -> Result<String, String> {
        if !raw.contains('$') {
            return Ok(raw.to_owned());
        }
        // oslo reads `\$` as the template's `$$`.
        let text = raw.replace("\\$", "$$");
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
                continue;
            }
            let (name, consumed) = if after.starts_with(id_start) {
                let len = after.find(|c: char| !id_continue(c)).unwrap_or(after.len());
                (Some(&after[..len]), len)
            } else if let Some(inner) = after.strip_prefix('{') {
                let len = inner.find(|c: char| !id_continue(c)).unwrap_or(inner.len());
                let braced = inner.starts_with(id_start) && inner[len..].starts_with('}');
                if braced {
                    (Some(&inner[..len]), len + 2)
                } else {
                    (None, 0)
                }
            } else {
                (None, 0)
            };
            match name {
                Some(name) => {
                    out.push_str(&self.lookup(group, name)?);
                    rest = &after[consumed..];
                }
                // Anything else after `$` is left as it is.
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// `StrSubWrapper.__getitem__`: `group.option`, else an option of the
    /// current group, else of `[DEFAULT]`.
    fn lookup(&mut self, group: &str, name: &str) -> Result<String, String> {
        let in_backend = |g: &str| {
            normalise(g) == "backend_defaults" || self.backend.as_deref().is_some_and(|b| normalise(b) == normalise(g))
        };
        let backend_option = |n: &str| Config::info(n).filter(|i| i.group == OptionGroup::Backend);
        let (target, option) = match name.split_once('.') {
            Some((g, o)) if in_backend(g) && backend_option(o).is_some() => (g.to_owned(), o),
            Some((g, _)) => {
                return Err(format!(
                    "${name}: {g:?} is not a backend section this file configures, or {name:?} no option of it \
                     this crate models (oslo.config raises NoSuchGroupError or NoSuchOptError)"
                ))
            }
            None if in_backend(group) && backend_option(name).is_some() => (group.to_owned(), name),
            None => match Config::info(name) {
                Some(i) if i.group == OptionGroup::Default => ("DEFAULT".to_owned(), name),
                _ => {
                    let known = DEFAULT_OPTIONS.binary_search(&name).is_ok()
                        || (in_backend(group) && BACKEND_OPTIONS.binary_search(&name).is_ok());
                    return Err(if known {
                        format!("${name} is a Cinder option this crate does not model, so its value is unknown here")
                    } else {
                        format!("${name} is no option of [{group}] or [DEFAULT] (oslo.config raises NoSuchOptError)")
                    });
                }
            },
        };
        let frame = (normalise(&target), option.to_owned());
        if self.stack.contains(&frame) || self.stack.len() >= 32 {
            return Err(format!("${name} refers back to itself"));
        }
        // The option's text in its group, or its default (oslo
        // substitutes defaults too: `$state_path/conversion`).
        let raw = self.conf.group(&target).into_iter().find(|(k, _, _)| *k == option).map(|(_, v, _)| v.to_owned());
        let info = Config::info(option).ok_or_else(|| format!("${name}: no such option"))?;
        self.stack.push(frame);
        let text = match raw {
            Some(raw) => self.substitute(&target, &raw),
            None => match Config::default().get(option) {
                Ok(OptionValue::Str(s)) => self.substitute(&target, &s),
                Ok(v) => Ok(py_str(&v)),
                Err(e) => Err(e.to_string()),
            },
        };
        self.stack.pop();
        let text = text?;
        // Python prints the value as its option's type converted it.
        let mut scratch = Config::default();
        scratch.set_from_str(option, &text).map_err(|e| format!("${name}: {e}"))?;
        let value = scratch.get(option).map_err(|e| e.to_string())?;
        Ok(match (info.kind, value) {
            (OptionKind::OptStr, OptionValue::Null) => String::new(),
            (_, v) => py_str(&v),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Loaded, ConfigFileError> {
        CinderConf::parse(text)?.load(None)
    }

    #[test]
    fn malformed_values_name_the_section_key_and_line() {
        let conf = CinderConf::parse("[DEFAULT]\nenabled_backends = a\n[a]\nrbd_max_clone_depth = five\n").unwrap();
        let e = conf.load(None).unwrap_err();
        assert!(
            matches!(&e, ConfigFileError::Value { section, key, line: 4, .. } if section == "a" && key == "rbd_max_clone_depth"),
            "{e}"
        );
        assert!(e.to_string().starts_with("line 4: [a] rbd_max_clone_depth = \"five\""), "{e}");
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
        let l = load("[DEFAULT]\nrbd_pool = x\nenabled_backends = a\n[a]\n").unwrap();
        assert_eq!(l.config.backend.rbd_pool, "rbd");
        assert!(l.ignored.contains(&Ignored { section: "DEFAULT".into(), key: "rbd_pool".into() }));
    }

    #[test]
    fn oslo_syntax_details() {
        let text = "[DEFAULT]\nenabled_backends = a\nstorage_availability_zone = \"az # not a comment\"\n# a comment\n[a]\nrbd_pool: vols\nimage_volume_cache_enabled = True\n";
        let l = load(text).unwrap();
        assert_eq!(l.config.storage_availability_zone, "az # not a comment");
        assert_eq!(l.config.backend.rbd_pool, "vols");
        assert!(l.config.backend.image_volume_cache_enabled);
        // `key: a = b`: the first separator splits.
        let l = load("[DEFAULT]\nenabled_backends = a\n[a]\nrbd_user: x = y\n").unwrap();
        assert_eq!(l.config.backend.rbd_user.as_deref(), Some("x = y"));
        // Quotes only when they match; a lone quote is an empty value.
        let l = load("[DEFAULT]\nenabled_backends = a\n[a]\nrbd_user = 'q\"\nrbd_secret_uuid = \"\n").unwrap();
        assert_eq!(l.config.backend.rbd_user.as_deref(), Some("'q\""));
        assert_eq!(l.config.backend.rbd_secret_uuid.as_deref(), Some(""));
    }

    #[test]
    fn syntax_errors_name_the_line_and_oslos_reason() {
        let cases = [
            ("[unterminated\n", 1, "Invalid section (must end with ])"),
            ("[]\n", 1, "Empty section name"),
            ("[DEFAULT]\nnovalue\n", 2, "No ':' or '=' found in assignment"),
            ("[DEFAULT]\n= v\n", 2, "Key cannot be empty"),
            ("[DEFAULT]\n  cont\n", 2, "Unexpected continuation line"),
            ("[DEFAULT]\na = x\n# c\n  cont\n", 4, "Unexpected continuation line"),
            ("\na = x\n", 2, "Section must be started before assignment"),
        ];
        for (text, line, message) in cases {
            match CinderConf::parse(text) {
                Err(ConfigFileError::Syntax { line: l, message: m, .. }) => {
                    assert_eq!((l, m.as_str()), (line, message), "{text:?}")
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let e = CinderConf::parse("[DEFAULT]\r\nx = 1\r[oops\n").unwrap_err();
        assert_eq!(e.to_string(), "line 3: Invalid section (must end with ]): \"[oops\"");
    }

    #[test]
    fn repeated_sections_merge_and_the_later_value_wins() {
        let text = "[DEFAULT]\nenabled_backends = ceph\n[ceph]\nrbd_pool = one\nrbd_user = u\n[DEFAULT]\nstorage_availability_zone = az2\n[CEPH]\nrbd_pool = two\n";
        let l = load(text).unwrap();
        assert_eq!(l.config.backend.rbd_pool, "two");
        assert_eq!(l.config.backend.rbd_user.as_deref(), Some("u"));
        assert_eq!(l.config.storage_availability_zone, "az2");
        // `[default]` is a group of its own, not `[DEFAULT]`.
        let l = load("[DEFAULT]\nenabled_backends = a\n[a]\n[default]\nstorage_availability_zone = x\n").unwrap();
        assert_eq!(l.config.storage_availability_zone, "nova");
    }

    #[test]
    fn continuation_lines_join_with_newlines() {
        // A list item may hold a newline; commas separate items.
        let l = load("[DEFAULT]\nenabled_backends = a,\n  b,\n\tc\n\nstorage_availability_zone = z\n[a]\n[b]\n[c]\n");
        let l = l.unwrap_err();
        assert!(matches!(l, ConfigFileError::AmbiguousBackend { ref enabled } if enabled == &["a", "b", "c"]), "{l}");
        let l = load("[DEFAULT]\nenabled_backends = a\n[a]\nrbd_user = x\n  y\n").unwrap();
        assert_eq!(l.config.backend.rbd_user.as_deref(), Some("x\ny"));
    }

    #[test]
    fn substitution_as_oslo_does_it() {
        let text = "[DEFAULT]\nenabled_backends = ceph\n[ceph]\nrbd_pool = vols\nrbd_max_clone_depth = 7\nrbd_user = ${rbd_pool}-$rbd_max_clone_depth-$rbd_flatten_volume_from_snapshot-$$-\\$x-$9-$-${a b}-$ceph.rbd_pool-$storage_availability_zone\nrbd_ceph_conf = $image_conversion_dir\n";
        let l = load(text).unwrap();
        assert_eq!(l.config.backend.rbd_user.as_deref(), Some("vols-7-False-$-$x-$9-$-${a b}-vols-nova"));
        assert_eq!(l.config.backend.rbd_ceph_conf, "/var/lib/cinder/conversion");
        let l = load("[DEFAULT]\nenabled_backends = ceph\nallowed_direct_url_schemes = cinder, file\n[ceph]\nrbd_user = $allowed_direct_url_schemes\n").unwrap();
        assert_eq!(l.config.backend.rbd_user.as_deref(), Some("['cinder', 'file']"));
        let fails = |text: &str| match load(text) {
            Err(ConfigFileError::Substitution { message, .. }) => message,
            other => panic!("{text:?}: {other:?}"),
        };
        assert!(fails("[DEFAULT]\nenabled_backends = a\n[a]\nrbd_user = $nosuch\n").contains("NoSuchOptError"));
        assert!(fails("[DEFAULT]\nenabled_backends = a\n[a]\nrbd_user = $my_ip\n").contains("does not model"));
        assert!(fails(
            "[DEFAULT]\nenabled_backends = a\n[a]\nrbd_user = $rbd_secret_uuid\nrbd_secret_uuid = $rbd_user\n"
        )
        .contains("refers back"));
        assert!(
            fails("[DEFAULT]\nenabled_backends = a\n[a]\nrbd_user = $other.rbd_pool\n").contains("NoSuchGroupError")
        );
    }

    #[test]
    fn typos_are_reported_with_a_suggestion_and_not_as_unmodelled() {
        let l = load("[DEFAULT]\nenabled_backends = a\ntransport_url = x\ndebugg = true\n[a]\nrbd_max_clone_dept = 3\nzzzzzz = 1\nbackup_driver = x\n").unwrap();
        let unknown: Vec<(&str, Option<&str>)> = l.unknown.iter().map(|u| (u.key.as_str(), u.suggestion)).collect();
        assert_eq!(
            unknown,
            [("debugg", Some("debug")), ("rbd_max_clone_dept", Some("rbd_max_clone_depth")), ("zzzzzz", None)]
        );
        assert_eq!(l.unknown[1].line, 6);
        let ignored: Vec<&str> = l.ignored.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(ignored, ["transport_url", "backup_driver"]);
        assert_eq!(l.config.backend.rbd_max_clone_depth, 5);
    }

    #[test]
    fn choices_are_checked() {
        let conf =
            CinderConf::parse("[DEFAULT]\nenabled_backends = a\nverify_glance_signatures = maybe\n[a]\n").unwrap();
        assert!(matches!(conf.load(None), Err(ConfigFileError::Value { .. })));
    }

    #[test]
    fn the_upstream_lists_are_sorted_and_hold_every_modelled_option() {
        assert!(DEFAULT_OPTIONS.windows(2).all(|w| w[0] < w[1]));
        assert!(BACKEND_OPTIONS.windows(2).all(|w| w[0] < w[1]));
        // Two modelled names Cinder 29.0.0 does not register: the RBD
        // driver reads `rbd_keyring_conf` with `safe_get` only, and
        // `default_volume_backend_name` is no Cinder option.
        let missing: Vec<&str> = OPTIONS
            .iter()
            .filter(|o| {
                let list = if o.group == OptionGroup::Default { DEFAULT_OPTIONS } else { BACKEND_OPTIONS };
                list.binary_search(&o.name).is_err()
            })
            .map(|o| o.name)
            .collect();
        assert_eq!(missing, ["default_volume_backend_name", "rbd_keyring_conf"]);
    }
}
