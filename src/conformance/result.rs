//! Result rendering (§11) and matching (§12).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{json, Value};

use crate::rbd::RbdOp;

/// The fields §12 compares, in §11 order.
pub const COMPARED_FIELDS: [&str; 11] = [
    "name",
    "operation",
    "outcome",
    "error",
    "rbd_ops",
    "path",
    "source",
    "volume",
    "cache_entries",
    "cache_evictions",
    "api",
];

/// An op as its §11.1 array.
pub fn render_rbd_op(op: &RbdOp) -> Value {
    match op {
        RbdOp::Create { image, size, .. } => json!(["create", image.pool, image.name, size.0]),
        RbdOp::Clone { parent, child, .. } => {
            json!(["clone", parent.pool, parent.image, parent.snap, child.pool, child.name])
        }
        RbdOp::Copy { src, dst } => json!(["copy", src.pool, src.name, dst.pool, dst.name]),
        RbdOp::CreateSnap { snap } => json!(["create_snap", snap.pool, snap.image, snap.snap]),
        RbdOp::ProtectSnap { snap } => json!(["protect_snap", snap.pool, snap.image, snap.snap]),
        RbdOp::UnprotectSnap { snap } => json!(["unprotect_snap", snap.pool, snap.image, snap.snap]),
        RbdOp::RemoveSnap { snap } => json!(["remove_snap", snap.pool, snap.image, snap.snap]),
        RbdOp::Flatten { image } => json!(["flatten", image.pool, image.name]),
        RbdOp::Resize { image, size } => json!(["resize", image.pool, image.name, size.0]),
        RbdOp::Remove { image } => json!(["remove", image.pool, image.name]),
        RbdOp::Rename { image, new_name } => json!(["rename", image.pool, image.name, new_name]),
        RbdOp::TrashMove { image, delay } => json!(["trash_move", image.pool, image.name, delay]),
        RbdOp::TrashRemove { image } => json!(["trash_remove", image.pool, image.name]),
        RbdOp::UpdateFeatures { image, features, enabled } => {
            json!(["update_features", image.pool, image.name, features, enabled])
        }
        RbdOp::Import { image, size, .. } => json!(["import", image.pool, image.name, size.0]),
    }
}

/// Whether `s[i..]` starts with a UUID (8-4-4-4-12 hex digits).
fn uuid_at(s: &[u8], i: usize) -> bool {
    const GROUPS: [usize; 5] = [8, 4, 4, 4, 12];
    let mut p = i;
    for (g, len) in GROUPS.iter().enumerate() {
        if g > 0 {
            if s.get(p) != Some(&b'-') {
                return false;
            }
            p += 1;
        }
        for _ in 0..*len {
            match s.get(p) {
                Some(c) if c.is_ascii_hexdigit() => p += 1,
                _ => return false,
            }
        }
    }
    true
}

fn uuids(s: &str) -> Vec<(usize, &str)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 36 <= b.len() {
        if uuid_at(b, i) {
            out.push((i, &s[i..i + 36]));
            i += 36;
        } else {
            i += 1;
        }
    }
    out
}

/// Replaces UUIDs that do not occur in `vector_text` by `NEW-1`, `NEW-2`,
/// … in order of first appearance, walking the compared fields in §11
/// order and then the rest.
pub fn replace_new_ids(result: Value, vector_text: &str) -> Value {
    let known: std::collections::BTreeSet<String> =
        uuids(vector_text).into_iter().map(|(_, u)| u.to_ascii_lowercase()).collect();
    let mut mapping: BTreeMap<String, String> = BTreeMap::new();
    let mut sub = |s: &str| -> String {
        let mut out = String::with_capacity(s.len());
        let mut last = 0;
        for (i, u) in uuids(s) {
            out.push_str(&s[last..i]);
            if known.contains(&u.to_ascii_lowercase()) {
                out.push_str(u);
            } else {
                let n = mapping.len() + 1;
                out.push_str(mapping.entry(u.to_owned()).or_insert_with(|| format!("NEW-{n}")));
            }
            last = i + 36;
        }
        out.push_str(&s[last..]);
        out
    };
    fn walk(v: Value, sub: &mut dyn FnMut(&str) -> String) -> Value {
        match v {
            Value::String(s) => Value::String(sub(&s)),
            Value::Array(a) => Value::Array(a.into_iter().map(|x| walk(x, sub)).collect()),
            Value::Object(o) => Value::Object(o.into_iter().map(|(k, x)| (k, walk(x, sub))).collect()),
            other => other,
        }
    }
    let Value::Object(mut obj) = result else { return result };
    let mut out = serde_json::Map::new();
    let order = COMPARED_FIELDS.iter().copied().chain(["trace"]);
    for key in order {
        if let Some(v) = obj.remove(key) {
            out.insert(key.to_owned(), walk(v, &mut sub));
        }
    }
    for (k, v) in obj {
        let v = walk(v, &mut sub);
        out.insert(k, v);
    }
    Value::Object(out)
}

/// A compared field that differs.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// The field.
    pub field: &'static str,
    /// Ours (`None`: absent).
    pub actual: Option<Value>,
    /// Upstream's (`None`: absent).
    pub expected: Option<Value>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<Value>| match v {
            None => "(absent)".to_owned(),
            Some(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
        };
        if let (Some(Value::Array(a)), Some(Value::Array(e))) = (&self.actual, &self.expected) {
            writeln!(f, "  {}:", self.field)?;
            let n = a.len().max(e.len());
            for i in 0..n {
                match (a.get(i), e.get(i)) {
                    (Some(x), Some(y)) if x == y => writeln!(f, "      {x}")?,
                    (Some(x), Some(y)) => {
                        writeln!(f, "    - {y}")?;
                        writeln!(f, "    + {x}")?;
                    }
                    (Some(x), None) => writeln!(f, "    + {x}")?,
                    (None, Some(y)) => writeln!(f, "    - {y}")?,
                    (None, None) => {}
                }
            }
            return Ok(());
        }
        write!(f, "  {}:\n    expected {}\n    got      {}", self.field, show(&self.expected), show(&self.actual))
    }
}

/// §12: the compared fields that differ.
pub fn compare(actual: &Value, expected: &Value) -> Vec<Mismatch> {
    COMPARED_FIELDS
        .iter()
        .filter_map(|&field| {
            let a = actual.get(field);
            let e = expected.get(field);
            (a != e).then(|| Mismatch { field, actual: a.cloned(), expected: e.cloned() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_numbered_in_order_of_appearance() {
        let known = "11111111-1111-4111-8111-111111111111";
        let a = "aaaaaaaa-0000-4000-8000-00000000000a";
        let b = "bbbbbbbb-0000-4000-8000-00000000000b";
        let r = json!({"name": "x", "rbd_ops": [["clone", "p", format!("volume-{known}"), format!("volume-{b}.clone_snap"), "p", format!("volume-{a}")]], "cache_entries": [{"volume_id": a}]});
        let out = replace_new_ids(r, &format!("{{\"id\": \"{known}\"}}"));
        assert_eq!(
            out["rbd_ops"][0],
            json!(["clone", "p", format!("volume-{known}"), "volume-NEW-1.clone_snap", "p", "volume-NEW-2"])
        );
        assert_eq!(out["cache_entries"][0]["volume_id"], json!("NEW-2"));
    }

    #[test]
    fn compare_treats_absent_and_null_differently() {
        let a = json!({"name": "x", "path": null});
        let e = json!({"name": "x"});
        let m = compare(&a, &e);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].field, "path");
        assert!(compare(&e, &e).is_empty());
    }
}
