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

/// Bytes in one KiB.
const KIB: u64 = 1 << 10;

/// As operators read sizes: in the largest binary unit (GiB, MiB, KiB)
/// the size reaches, with up to two decimals when they say it exactly,
/// and otherwise rounded down to two decimals with the exact count after
/// it, since Cinder's checks compare bytes.
///
/// ```
/// use cinder_flow::model::Bytes;
/// assert_eq!(Bytes(40802189312).to_string(), "38 GiB");
/// assert_eq!(Bytes(1536 << 20).to_string(), "1.5 GiB");
/// assert_eq!(Bytes(4 << 20).to_string(), "4 MiB");
/// assert_eq!(Bytes((1 << 30) + 1).to_string(), "1.00 GiB (1073741825 bytes)");
/// assert_eq!(Bytes(512).to_string(), "512 bytes");
/// ```
impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        let (unit, name) = match n {
            _ if n >= GIB => (GIB, "GiB"),
            _ if n >= MIB => (MIB, "MiB"),
            _ if n >= KIB => (KIB, "KiB"),
            _ => return write!(f, "{n} bytes"),
        };
        let hundredths = u128::from(n) * 100 / u128::from(unit);
        let (whole, frac) = (hundredths / 100, hundredths % 100);
        if n.is_multiple_of(unit) {
            write!(f, "{whole} {name}")
        } else if (u128::from(n) * 100).is_multiple_of(u128::from(unit)) {
            let frac = format!("{frac:02}");
            write!(f, "{whole}.{} {name}", frac.trim_end_matches('0'))
        } else {
            write!(f, "{whole}.{frac:02} {name} ({n} bytes)")
        }
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
    fn bytes_read_as_operators_read_them() {
        assert_eq!(Bytes(0).to_string(), "0 bytes");
        assert_eq!(Bytes(1023).to_string(), "1023 bytes");
        assert_eq!(Bytes(1024).to_string(), "1 KiB");
        assert_eq!(Bytes(GIB).to_string(), "1 GiB");
        assert_eq!(Bytes(GIB / 4 * 5).to_string(), "1.25 GiB");
        assert_eq!(Bytes(GIB + MIB).to_string(), "1.00 GiB (1074790400 bytes)");
        assert_eq!(Bytes(MIB + 1).to_string(), "1.00 MiB (1048577 bytes)");
        assert_eq!(Bytes(u64::MAX).to_string(), "17179869183.99 GiB (18446744073709551615 bytes)");
    }

    #[test]
    fn to_bytes_saturates() {
        assert_eq!(GiB(2).to_bytes(), Bytes(2 * GIB));
        assert_eq!(GiB(u64::MAX).to_bytes(), Bytes(u64::MAX));
    }
}
