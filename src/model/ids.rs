//! Identifier newtypes.
//!
//! Cinder stores ids as strings: volume and snapshot ids are UUIDs in
//! practice, project and user ids are whatever Keystone hands out, and image
//! ids come from Glance. The crate keeps them as validated-nowhere strings so
//! that any row a real database holds can be represented, and never generates
//! one in the planner (fresh ids come in through [`crate::facts::Facts`]).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Name;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// The string is shared (`Arc<str>`): ids are copied into facts,
        /// steps and trace entries on every plan, and a copy is a reference
        /// count, not an allocation.
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps a string as this id.
            pub fn new(id: impl AsRef<str>) -> Self {
                // One allocation, the shared string (no `String` first).
                Self(Arc::from(id.as_ref()))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(Arc::from(s))
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(Arc::from(s))
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A Cinder volume id (`volumes.id`).
    VolumeId
);
string_id!(
    /// A Cinder snapshot id (`snapshots.id`).
    SnapshotId
);
string_id!(
    /// A Glance image id.
    ImageId
);
string_id!(
    /// A Keystone project (tenant) id.
    ProjectId
);
string_id!(
    /// A Keystone user id.
    UserId
);

impl VolumeId {
    /// The RBD image name of a volume with this id: `volume-<id>`.
    ///
    /// Upstream: `Volume.name` is `volume_name_template % name_id`, with the
    /// default template `volume-%s` (`cinder/objects/volume.py`).
    pub fn rbd_name(&self) -> Name {
        Name::concat(&["volume-", &self.0])
    }

    /// The name of the snapshot that a clone of this volume's image is
    /// made from: `volume-<id>.clone_snap` (`RBDDriver.create_cloned_volume`
    /// names it after the new volume).
    pub fn clone_snap_name(&self) -> Name {
        Name::concat(&["volume-", &self.0, ".clone_snap"])
    }
}

impl SnapshotId {
    /// The RBD snapshot name of a Cinder snapshot: `snapshot-<id>`.
    pub fn rbd_name(&self) -> Name {
        Name::concat(&["snapshot-", &self.0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rbd_names_follow_cinder_templates() {
        assert_eq!(VolumeId::from("abc").rbd_name(), "volume-abc");
        assert_eq!(SnapshotId::from("s1").rbd_name(), "snapshot-s1");
        assert_eq!(VolumeId::from("abc").clone_snap_name(), "volume-abc.clone_snap");
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let id = VolumeId::from("11111111-1111-4111-8111-111111111111");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"11111111-1111-4111-8111-111111111111\"");
        let back: VolumeId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
    }
}
