//! Cinder host strings (`host@backend#pool`) and the database's host matching.
//!
//! Two different things live here, as upstream has them:
//!
//! * [`Host`]: the *parsed* view used to name things (`extract_host` in
//!   `cinder/volume/volume_utils.py`): the host, backend and pool parts.
//! * [`HostFilter`]: how Cinder's SQL layer matches a stored `host` or
//!   `cluster_name` column against a value (`_filter_host` in
//!   `cinder/db/api.py`). This is string matching with SQL `LIKE`, not parsing,
//!   and it keeps upstream's quirks: the match level is chosen from the value
//!   (`#` → exact, `@` → `value` or `value#%`, otherwise also `value@%`), the
//!   comparison is case-sensitive (MySQL's `= BINARY` and `LIKE BINARY`), and
//!   `%` / `_` inside the value are not escaped, so they act as wildcards.
//!   This is upstream on MySQL. On SQLite upstream uses plain `LIKE`, which
//!   ignores ASCII case (oslo.db sets no `case_sensitive_like`), and on MySQL
//!   a `\` in the value escapes the next character; neither is modelled here
//!   (`tests/sql_sqlite.rs` and `tests/real_cloud/sql.rs` check both
//!   databases against this model).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Name;

/// A Cinder host string such as `hostA@ceph#rbd-pool`.
///
/// Any string is accepted, as Cinder's database accepts any string; the part
/// accessors follow `volume_utils.extract_host` exactly, including its
/// behaviour on unusual strings (a second `#` means "no pool").
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Host(Name);

impl Host {
    /// Wraps a host string.
    pub fn new(s: impl AsRef<str>) -> Self {
        Self(Name::from(s.as_ref()))
    }

    /// The whole string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The whole string, shared.
    pub fn name(&self) -> &Name {
        &self.0
    }

    /// `extract_host(host, 'host')`: the part before any `@` or `#`.
    pub fn host(&self) -> &str {
        let backend = self.backend();
        backend.split('@').next().unwrap_or(backend)
    }

    /// `extract_host(host, 'backend')`: `host@backend`, the part before `#`.
    pub fn backend(&self) -> &str {
        self.0.split('#').next().unwrap_or(&self.0)
    }

    /// The backend name alone (`ceph` in `hostA@ceph#pool`), if there is one.
    pub fn backend_name(&self) -> Option<&str> {
        self.backend().split_once('@').map(|(_, b)| b)
    }

    /// `extract_host(host, 'pool')`: the pool, only when the string has
    /// exactly one `#`.
    pub fn pool(&self) -> Option<&str> {
        let mut parts = self.0.split('#');
        let _ = parts.next();
        match (parts.next(), parts.next()) {
            (Some(pool), None) => Some(pool),
            _ => None,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Host({:?})", self.0.as_str())
    }
}

impl From<&str> for Host {
    fn from(s: &str) -> Self {
        Self(Name::from(s))
    }
}

impl From<String> for Host {
    fn from(s: String) -> Self {
        Self(Name::from(s))
    }
}

/// The level at which [`HostFilter`] matches, chosen from the value as
/// `_filter_host` does when no level is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchLevel {
    /// The value contains `#`: only an exact match.
    Pool,
    /// The value contains `@` but no `#`: exact, or `value#%`.
    Backend,
    /// Neither: exact, `value#%` or `value@%`.
    Host,
}

/// A `host` / `cluster_name` filter as Cinder's SQL layer applies it.
///
/// ```
/// use cinder_flow::model::HostFilter;
///
/// let pool = HostFilter::new("hostA@ceph#fast");
/// assert!(pool.matches(Some("hostA@ceph#fast")));
/// assert!(!pool.matches(Some("hostA@ceph#slow")));
///
/// let backend = HostFilter::new("hostA@ceph");
/// assert!(backend.matches(Some("hostA@ceph#slow")));
/// assert!(!backend.matches(Some("hostA@ceph2#slow")));
///
/// // Upstream does not escape LIKE wildcards:
/// assert!(HostFilter::new("host_@ceph").matches(Some("hostA@ceph#x")));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFilter {
    value: String,
    level: MatchLevel,
}

impl HostFilter {
    /// A filter for `value`, at the level `_filter_host` picks for it.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        let level = if value.contains('#') {
            MatchLevel::Pool
        } else if value.contains('@') {
            MatchLevel::Backend
        } else {
            MatchLevel::Host
        };
        Self { value, level }
    }

    /// The value matched against.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The level chosen for the value.
    pub fn level(&self) -> MatchLevel {
        self.level
    }

    /// Whether a row whose column holds `field` matches. A NULL column never
    /// matches, as in SQL.
    pub fn matches(&self, field: Option<&str>) -> bool {
        let Some(field) = field else { return false };
        if field == self.value {
            return true;
        }
        match self.level {
            MatchLevel::Pool => false,
            MatchLevel::Backend => like_with_suffix(field, &self.value, '#'),
            MatchLevel::Host => like_with_suffix(field, &self.value, '#') || like_with_suffix(field, &self.value, '@'),
        }
    }
}

/// `field LIKE value || sep || '%'`, without building the pattern string.
fn like_with_suffix(field: &str, value: &str, sep: char) -> bool {
    let pattern: Vec<char> = value.chars().chain([sep, '%']).collect();
    let text: Vec<char> = field.chars().collect();
    sql_like(&text, &pattern)
}

/// Case-sensitive SQL `LIKE` without an escape character: `%` matches any run
/// of characters (also empty), `_` exactly one character.
///
/// Linear-space, worst case O(len(text) × len(pattern)) time, no recursion.
pub(crate) fn sql_like(text: &[char], pattern: &[char]) -> bool {
    let (mut t, mut p) = (0usize, 0usize);
    // Position of the last `%` seen and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '_' || (pattern[p] != '%' && pattern[p] == text[t])) {
            t += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == '%' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            // Let the last `%` swallow one more character and retry.
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '%')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn like(text: &str, pattern: &str) -> bool {
        let t: Vec<char> = text.chars().collect();
        let p: Vec<char> = pattern.chars().collect();
        sql_like(&t, &p)
    }

    #[test]
    fn extract_host_levels() {
        let h = Host::from("HostA@BackendB#PoolC");
        assert_eq!(h.host(), "HostA");
        assert_eq!(h.backend(), "HostA@BackendB");
        assert_eq!(h.backend_name(), Some("BackendB"));
        assert_eq!(h.pool(), Some("PoolC"));
        let h = Host::from("HostX@BackendY");
        assert_eq!(h.pool(), None);
        assert_eq!(h.backend(), "HostX@BackendY");
        // Two '#': upstream's `len(lst) == 2` fails, so no pool.
        assert_eq!(Host::from("a@b#c#d").pool(), None);
        assert_eq!(Host::from("plain").host(), "plain");
        assert_eq!(Host::from("plain").backend_name(), None);
    }

    #[test]
    fn like_semantics() {
        assert!(like("abc", "abc"));
        assert!(like("abc", "a%"));
        assert!(like("abc", "%c"));
        assert!(like("abc", "a_c"));
        assert!(!like("abc", "a_"));
        assert!(like("", "%"));
        assert!(!like("", "_"));
        assert!(like("a%c", "a%c"));
        assert!(!like("ABC", "abc"), "case-sensitive like MySQL LIKE BINARY");
        assert!(like("aXbXc", "%b%c"));
        assert!(like("mississippi", "m%iss%pi"));
        assert!(!like("mississippi", "m%iss%pa"));
    }

    #[test]
    fn filter_levels_as_cinder_db_tests() {
        // cinder/tests/unit/test_db_api.py test_volume_get_all_filter_host_and_cluster
        let rows = ["host1@backend#pool", "host1@backend#pool2", "host1@backend2#pool"];
        let count = |v: &str| rows.iter().filter(|r| HostFilter::new(v).matches(Some(r))).count();
        assert_eq!(count("host1@backend#pool"), 1);
        assert_eq!(count("host1@backend"), 2);
        assert_eq!(count("host1"), 3);
        // test_volume_get_all_by_host_with_pools: foo matches foo and foo#pool0, not foobar.
        let f = HostFilter::new("foo");
        assert!(f.matches(Some("foo")));
        assert!(f.matches(Some("foo#pool0")));
        assert!(!f.matches(Some("foobar")));
        assert!(!f.matches(None));
    }

    #[test]
    fn wildcards_in_value_are_not_escaped() {
        assert!(HostFilter::new("h%").matches(Some("hostA@x#y")));
        assert!(!HostFilter::new("h%#p").matches(Some("hostA@x#p")), "pool level is exact only");
        assert!(HostFilter::new("hostA@ce_h").matches(Some("hostA@ceph#p")));
    }
}
