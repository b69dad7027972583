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

/// A size that does not fit the 64-bit byte count librbd takes.
///
/// Upstream multiplies `volume.size * units.Gi` in Python, which never
/// overflows; the product then reaches librbd's Cython binding as a
/// `uint64_t`, and a product above 2^64 - 1 makes the binding raise
/// `OverflowError` before any call is made. This is that error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{gib} GiB is {bytes} bytes, more than the 18446744073709551615 bytes librbd accepts")]
pub struct SizeOverflow {
    /// The size asked for, in GiB.
    pub gib: u64,
    /// Its exact size in bytes.
    pub bytes: u128,
}

impl GiB {
    /// The largest size whose byte count fits librbd's `uint64_t`
    /// (16 EiB less 1 GiB).
    pub const MAX_BYTES_REPRESENTABLE: GiB = GiB(u64::MAX / GIB);

    /// The size in bytes, or [`SizeOverflow`] when it does not fit 64 bits
    /// (never a saturated value: a driver must not be asked for a size the
    /// user did not ask for).
    ///
    /// ```
    /// use cinder_flow::model::{Bytes, GiB, GIB};
    /// assert_eq!(GiB(2).to_bytes(), Ok(Bytes(2 * GIB)));
    /// assert!(GiB(u64::MAX / GIB + 1).to_bytes().is_err());
    /// ```
    pub fn to_bytes(self) -> Result<Bytes, SizeOverflow> {
        self.0
            .checked_mul(GIB)
            .map(Bytes)
            .ok_or(SizeOverflow { gib: self.0, bytes: u128::from(self.0) * u128::from(GIB) })
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
    fn to_bytes_is_exact_up_to_the_largest_representable_size_and_an_error_beyond() {
        assert_eq!(GiB(2).to_bytes(), Ok(Bytes(2 * GIB)));
        // The largest size it allows.
        let max = GiB::MAX_BYTES_REPRESENTABLE;
        assert_eq!(max.to_bytes(), Ok(Bytes(max.0 * GIB)));
        assert_eq!(max.to_bytes().unwrap().0, u64::MAX - (GIB - 1));
        // One more GiB is an error, never a saturated count.
        let e = GiB(max.0 + 1).to_bytes().unwrap_err();
        assert_eq!(e.bytes, 1u128 << 64);
        let e = GiB(u64::MAX).to_bytes().unwrap_err();
        assert_eq!(e, SizeOverflow { gib: u64::MAX, bytes: u128::from(u64::MAX) << 30 });
        assert!(e.to_string().starts_with("18446744073709551615 GiB is "));
    }
}
