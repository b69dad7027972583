//! [`Name`]: a shared, cheaply copied string.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A name the flow copies often: a RADOS pool, RBD image or snapshot name
/// (also [`crate::rbd::Name`]), and the string inside a [`super::Host`].
///
/// The string is shared (`Arc<str>`): names are copied into facts, steps,
/// undo actions and the planner's cluster view on every plan, and a copy is
/// a reference count, not an allocation. It reads as a `str` (`Deref`,
/// `Borrow<str>`, comparisons with `str` and `String`) and serialises as a
/// plain string.
///
/// ```
/// use cinder_flow::rbd::{ImageSpec, Name};
///
/// let spec = ImageSpec::new("volumes", Name::concat(&["volume-", "42"]));
/// assert_eq!(spec.name, "volume-42");
/// assert_eq!(spec.name.len(), 9);
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Name(Arc<str>);

impl Name {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The concatenation of `parts`, built with one allocation: names such
    /// as `volume-<id>.clone_snap` are made on every plan.
    pub fn concat(parts: &[&str]) -> Self {
        // Short names (all of Cinder's) are assembled on the stack and
        // copied once into the shared allocation.
        const STACK: usize = 128;
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > STACK {
            return Self(Arc::from(parts.concat()));
        }
        let mut buf = [0u8; STACK];
        let mut at = 0;
        for p in parts {
            buf[at..at + p.len()].copy_from_slice(p.as_bytes());
            at += p.len();
        }
        // Whole `str`s laid end to end are valid UTF-8.
        let joined = std::str::from_utf8(&buf[..at]).expect("concatenated str parts");
        Self(Arc::from(joined))
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Self {
        Self(Arc::from(s))
    }
}

impl From<&String> for Name {
    fn from(s: &String) -> Self {
        Self(Arc::from(s.as_str()))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Self {
        Self(Arc::from(s))
    }
}

impl From<&Name> for Name {
    fn from(s: &Name) -> Self {
        s.clone()
    }
}

impl From<Name> for String {
    fn from(n: Name) -> Self {
        n.0.as_ref().to_owned()
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<Name> for str {
    fn eq(&self, other: &Name) -> bool {
        self == &*other.0
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        *self == &*other.0
    }
}

impl PartialEq<Name> for String {
    fn eq(&self, other: &Name) -> bool {
        **self == *other.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_joins_short_and_long_parts() {
        assert_eq!(Name::concat(&[]), "");
        assert_eq!(Name::concat(&["volume-", "abc", ".clone_snap"]), "volume-abc.clone_snap");
        let long = "x".repeat(200);
        assert_eq!(Name::concat(&["a-", &long, "é"]).as_str(), format!("a-{long}é"));
        let exact = "y".repeat(128);
        assert_eq!(Name::concat(&[&exact]), exact);
    }

    #[test]
    fn compares_and_serialises_as_a_string() {
        let n = Name::from("pool");
        let owned = String::from("pool");
        assert_eq!(n, "pool");
        assert_eq!("pool", n);
        assert_eq!(n, owned);
        assert_eq!(owned, n);
        assert_ne!(n, "pools");
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"pool\"");
        let back: Name = serde_json::from_str("\"pool\"").unwrap();
        assert_eq!(back, n);
        assert_eq!(format!("{n} {n:?}"), "pool \"pool\"");
    }
}
