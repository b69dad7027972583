//! Sizes, with GiB (Cinder volume sizes) and bytes (Glance and RBD sizes) as
//! distinct types so that one is never passed where the other is meant.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Bytes in one GiB (`oslo_utils.units.Gi`).
pub const GIB: u64 = 1 << 30;
/// Bytes in one MiB (`oslo_utils.units.Mi`).
pub const MIB: u64 = 1 << 20;

/// A size in whole GiB, as Cinder stores volume sizes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GiB(pub u64);

/// A size in bytes, as Glance and librbd report them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Bytes(pub u64);

impl GiB {
    /// The size in bytes. Saturates instead of overflowing on absurd values
    /// (a volume of more than 16 EiB cannot exist; the planner rejects such
    /// requests before they reach a driver).
    pub fn to_bytes(self) -> Bytes {
        Bytes(self.0.saturating_mul(GIB))
    }
}

impl Bytes {
    /// `ceil(bytes / 2^30)`: how Cinder turns an image size into GiB
    /// (`image_utils.check_virtual_size`, `volume_utils.check_image_metadata`).
    pub fn ceil_gib(self) -> GiB {
        GiB(self.0.div_ceil(GIB))
    }
}

impl fmt::Display for GiB {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} GiB", self.0)
    }
}

impl fmt::Debug for GiB {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GiB({})", self.0)
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_gib_rounds_up_partial_gib() {
        assert_eq!(Bytes(0).ceil_gib(), GiB(0));
        assert_eq!(Bytes(1).ceil_gib(), GiB(1));
        assert_eq!(Bytes(GIB).ceil_gib(), GiB(1));
        assert_eq!(Bytes(GIB + 1).ceil_gib(), GiB(2));
        assert_eq!(Bytes(u64::MAX).ceil_gib(), GiB(u64::MAX / GIB + 1));
    }

    #[test]
    fn to_bytes_saturates() {
        assert_eq!(GiB(2).to_bytes(), Bytes(2 * GIB));
        assert_eq!(GiB(u64::MAX).to_bytes(), Bytes(u64::MAX));
    }
}
