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

/// The longest `host` / `cluster_name` Cinder's database holds: the columns
/// are `String(255)` (`volumes.host`, `volumes.cluster_name`,
/// `image_volume_cache_entries.host`, `services.host` in
/// `cinder/db/models.py`), 255 characters on MySQL, which refuses longer
/// values in the strict mode oslo.db sets.
pub const HOST_MAX_CHARS: usize = 255;

/// A host or cluster string longer than its database column
/// ([`HOST_MAX_CHARS`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} is {chars} characters long; Cinder's database column holds at most {max}", max = HOST_MAX_CHARS)]
pub struct HostTooLong {
    /// The field (`host`, `cluster_name`, ...).
    pub field: &'static str,
    /// Its length in characters.
    pub chars: usize,
}

/// Checks a host or cluster value against its column's bound.
///
/// ```
/// use cinder_flow::model::{check_host_len, HOST_MAX_CHARS};
/// assert!(check_host_len("host", &"h".repeat(HOST_MAX_CHARS)).is_ok());
/// let e = check_host_len("host", &"h".repeat(HOST_MAX_CHARS + 1)).unwrap_err();
/// assert_eq!(e.chars, 256);
/// ```
pub fn check_host_len(field: &'static str, value: &str) -> Result<(), HostTooLong> {
    // Counting stops one past the bound: a huge value costs no more.
    let chars = value.chars().take(HOST_MAX_CHARS + 1).count();
    if chars > HOST_MAX_CHARS {
        return Err(HostTooLong { field, chars: value.chars().count() });
    }
    Ok(())
}

/// A Cinder host string such as `hostA@ceph#rbd-pool`.
///
/// Any string is accepted, as Cinder's database accepts any string; the part
/// accessors follow `volume_utils.extract_host` exactly, including its
/// behaviour on unusual strings (a second `#` means "no pool").
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Host(Name);

impl Host {
    /// Wraps a host string that fits Cinder's `host` column
    /// ([`HOST_MAX_CHARS`]).
    ///
    /// ```
    /// use cinder_flow::model::Host;
    /// assert!(Host::try_new("hostA@ceph#rbd").is_ok());
    /// assert!(Host::try_new("h".repeat(256)).is_err());
    /// ```
    pub fn try_new(s: impl AsRef<str>) -> Result<Self, HostTooLong> {
        check_host_len("host", s.as_ref())?;
        Ok(Self::new(s))
    }

    /// Wraps a host string (any length; see [`Host::try_new`]).
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
/// The pattern is cut at its `%`s into fixed-length segments. The first
/// must match at the start of the text and the last at its end; the others
/// are placed greedily, each at its leftmost match after the previous one
/// (placing a fixed-length segment earlier never leaves less room for the
/// rest, so greedy placement finds a match whenever one exists). Each
/// segment is searched with the bit-parallel Shift-And automaton, which
/// handles `_` as a character class and never backtracks, and the searches
/// cover disjoint stretches of the text: O(n · ⌈m / 64⌉ + m) time for a text
/// of n and a pattern of m characters, linear for patterns up to 64
/// characters between `%`s (the backtracking matcher this replaces was
/// O(n · m)).
pub(crate) fn sql_like(text: &[char], pattern: &[char]) -> bool {
    let segments: Vec<&[char]> = pattern.split(|&c| c == '%').collect();
    let (first, rest) = match segments.split_first() {
        Some(split) => split,
        None => return text.is_empty(),
    };
    let Some((last, middle)) = rest.split_last() else {
        // No `%`: the whole text, character for character.
        return text.len() == first.len() && segment_at(text, 0, first);
    };
    if text.len() < first.len() + last.len() {
        return false;
    }
    let end = text.len() - last.len();
    if !segment_at(text, 0, first) || !segment_at(text, end, last) {
        return false;
    }
    let mut from = first.len();
    for seg in middle {
        match find_segment(&text[..end], from, seg) {
            Some(at) => from = at + seg.len(),
            None => return false,
        }
    }
    true
}

/// Whether `seg` (literal characters and `_`) matches `text` at `at`.
fn segment_at(text: &[char], at: usize, seg: &[char]) -> bool {
    text.get(at..at + seg.len()).is_some_and(|t| t.iter().zip(seg).all(|(&t, &p)| p == '_' || p == t))
}

/// The leftmost position at or after `from` where `seg` matches in `text`
/// (Shift-And over ⌈len / 64⌉ words: bit i of the state is set when the
/// first i + 1 characters of `seg` end at the current text position).
fn find_segment(text: &[char], from: usize, seg: &[char]) -> Option<usize> {
    if seg.is_empty() {
        return (from <= text.len()).then_some(from);
    }
    let words = seg.len().div_ceil(64);
    let mut any = vec![0u64; words];
    let mut masks: rustc_hash::FxHashMap<char, Vec<u64>> = rustc_hash::FxHashMap::default();
    for (i, &c) in seg.iter().enumerate() {
        if c == '_' {
            any[i / 64] |= 1 << (i % 64);
        }
    }
    for (i, &c) in seg.iter().enumerate() {
        if c != '_' {
            masks.entry(c).or_insert_with(|| any.clone())[i / 64] |= 1 << (i % 64);
        }
    }
    let (hit_word, hit_bit) = ((seg.len() - 1) / 64, 1u64 << ((seg.len() - 1) % 64));
    let mut state = vec![0u64; words];
    for (pos, c) in text.iter().enumerate().skip(from) {
        let mask = masks.get(c).unwrap_or(&any);
        let mut carry = 1u64; // a match may start at every position
        for (w, m) in state.iter_mut().zip(mask) {
            let next_carry = *w >> 63;
            *w = ((*w << 1) | carry) & m;
            carry = next_carry;
        }
        if state[hit_word] & hit_bit != 0 {
            return Some(pos + 1 - seg.len());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The backtracking matcher `sql_like` replaced: O(n · m), simple, the
    /// reference the linear one is checked against.
    fn like_backtracking(text: &[char], pattern: &[char]) -> bool {
        let (mut t, mut p) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            if p < pattern.len() && (pattern[p] == '_' || (pattern[p] != '%' && pattern[p] == text[t])) {
                t += 1;
                p += 1;
            } else if p < pattern.len() && pattern[p] == '%' {
                star = Some((p, t));
                p += 1;
            } else if let Some((sp, st)) = star {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        pattern[p..].iter().all(|&c| c == '%')
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn linear_like_agrees_with_backtracking(text in "[ab]{0,160}", pattern in "[ab_%]{0,150}") {
            let t: Vec<char> = text.chars().collect();
            let p: Vec<char> = pattern.chars().collect();
            prop_assert_eq!(sql_like(&t, &p), like_backtracking(&t, &p));
        }

        #[test]
        fn linear_like_agrees_on_long_segments(reps in 1usize..4, seg in "[ab_]{60,140}", text in "[ab]{0,40}") {
            // Segments past one 64-bit word, planted in the text so that
            // matches happen.
            let planted: String = seg.chars().map(|c| if c == '_' { 'b' } else { c }).collect();
            let text = format!("{text}{}{text}", planted.repeat(reps));
            let pattern = format!("%{seg}%{}", &seg[..seg.len() / 2]);
            let t: Vec<char> = text.chars().collect();
            let p: Vec<char> = pattern.chars().collect();
            prop_assert_eq!(sql_like(&t, &p), like_backtracking(&t, &p));
        }
    }

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
