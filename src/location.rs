//! Glance image-location URLs, parsed exactly as Cinder 29.0.0 parses them.
//!
//! Two upstream functions decide what Cinder can do with an image location:
//!
//! * `RBDDriver._parse_location` (`cinder/volume/drivers/rbd.py`) accepts
//!   `rbd://<fsid>/<pool>/<image>/<snapshot>` with every component
//!   percent-decoded by `urllib.parse.unquote`; see [`RbdLocation::parse`].
//! * `CreateVolumeFromSpecTask._extract_cinder_ids`
//!   (`cinder/volume/flows/manager/create_volume.py`) takes the last path
//!   segment (or the netloc) of a `cinder://` URL split by
//!   `oslo_utils.netutils.urlsplit` and keeps it when
//!   `oslo_utils.uuidutils.is_uuid_like` accepts it; see
//!   [`CinderLocation::parse`] and [`extract_cinder_ids`].
//!
//! Both are reproduced for every input string, including the corners of
//! Python 3.11's `urllib.parse.urlsplit` (leading C0/space stripping, removal
//! of tab/CR/LF anywhere, scheme validation and lower-casing, the
//! `ValueError`s for bad bracketed hosts and for netlocs that change under
//! NFKC normalisation) and of `unquote` (invalid UTF-8 becomes U+FFFD,
//! malformed escapes stay as written). `tests/location_python_diff.rs` checks
//! the answers against a table recorded from the real Python code by
//! `tools/location_oracle.py`.
//!
//! Where Python *raises* (rather than ignoring a location), the Rust returns
//! [`CinderLocationError::InvalidUrl`] carrying Python's message: upstream
//! lets that exception escape the whole create flow.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::VolumeId;
use crate::pyvalue::is_uuid_like;
use crate::pyvalue::{scheme_of, with_split, RawSplit};

// ---------------------------------------------------------------------------
// RBD

/// An RBD snapshot location, `rbd://<fsid>/<pool>/<image>/<snapshot>`, with
/// each component percent-decoded.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RbdLocation {
    /// The Ceph cluster fsid.
    pub fsid: String,
    /// The RADOS pool holding the image.
    pub pool: String,
    /// The RBD image name.
    pub image: String,
    /// The snapshot of the image.
    pub snapshot: String,
}

/// Why [`RbdLocation::parse`] rejected a URL; the `Display` text is
/// upstream's `ImageUnacceptable` reason.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum RbdLocationError {
    /// The URL does not start with exactly `rbd://` (case-sensitive, no
    /// leading whitespace allowed).
    #[error("Not stored in RBD")]
    NotRbd,
    /// A `/`-separated component is empty. Checked before the count, so
    /// `rbd://image/` is blank, not "not a snapshot".
    #[error("Blank components")]
    BlankComponent,
    /// The URL has no blank components but not exactly four of them.
    #[error("Not an RBD snapshot")]
    NotASnapshot {
        /// How many `/`-separated components the URL has.
        parts: usize,
    },
}

impl RbdLocation {
    /// Parses a Glance RBD location like Cinder's
    /// `RBDDriver._parse_location`.
    ///
    /// The text after the exact prefix `rbd://` is split on every `/` and
    /// each piece is decoded like `urllib.parse.unquote` (so `%2F` yields a
    /// `/` inside a component). Any empty piece is
    /// [`RbdLocationError::BlankComponent`]; otherwise anything but four
    /// pieces is [`RbdLocationError::NotASnapshot`].
    pub fn parse(url: &str) -> Result<RbdLocation, RbdLocationError> {
        let rest = url.strip_prefix("rbd://").ok_or(RbdLocationError::NotRbd)?;
        let mut pieces = [""; 4];
        let mut count = 0usize;
        let mut blank = false;
        for piece in rest.split('/') {
            blank |= piece.is_empty();
            if let Some(slot) = pieces.get_mut(count) {
                *slot = piece;
            }
            count += 1;
        }
        if blank {
            return Err(RbdLocationError::BlankComponent);
        }
        if count != 4 {
            return Err(RbdLocationError::NotASnapshot { parts: count });
        }
        let [fsid, pool, image, snapshot] = pieces;
        Ok(RbdLocation {
            fsid: unquote(fsid).into_owned(),
            pool: unquote(pool).into_owned(),
            image: unquote(image).into_owned(),
            snapshot: unquote(snapshot).into_owned(),
        })
    }
}

/// The fsid of an `rbd://` location, with exactly the checks of
/// [`RbdLocation::parse`] (prefix, blank components, four parts) but
/// decoding only the fsid: what `_is_cloneable` needs to reject a location
/// of another cluster without copying the rest.
///
/// ```
/// use cinder_flow::location::{rbd_fsid, RbdLocationError};
/// assert_eq!(rbd_fsid("rbd://f%2Dx/pool/img/snap").unwrap(), "f-x");
/// assert_eq!(rbd_fsid("rbd://f/pool/img"), Err(RbdLocationError::NotASnapshot { parts: 3 }));
/// ```
pub fn rbd_fsid(url: &str) -> Result<Cow<'_, str>, RbdLocationError> {
    let rest = rbd_checked(url)?;
    let end = rest.find('/').unwrap_or(rest.len());
    Ok(unquote(rest.get(..end).unwrap_or_default()))
}

/// Whether the `rbd://` location `url` is in the cluster `fsid`: the
/// checks of [`rbd_fsid`] (same errors), then its answer compared with
/// `fsid`, without copying anything in the usual case (no `%` in the URL).
///
/// ```
/// use cinder_flow::location::{rbd_fsid_is, RbdLocationError};
/// assert_eq!(rbd_fsid_is("rbd://f%2Dx/pool/img/snap", "f-x"), Ok(true));
/// assert_eq!(rbd_fsid_is("rbd://f-x/pool/img/snap", "f-y"), Ok(false));
/// assert_eq!(rbd_fsid_is("rbd://f/pool/img", "f"), Err(RbdLocationError::NotASnapshot { parts: 3 }));
/// ```
pub fn rbd_fsid_is(url: &str, fsid: &str) -> Result<bool, RbdLocationError> {
    RbdFsid::new(fsid).matches(url)
}

/// A cluster fsid to test many `rbd://` locations against (see
/// [`rbd_fsid_is`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RbdFsid<'a> {
    fsid: &'a str,
    has_slash: bool,
}

impl<'a> RbdFsid<'a> {
    pub(crate) fn new(fsid: &'a str) -> Self {
        Self { fsid, has_slash: has_byte(fsid.as_bytes(), b'/') }
    }

    /// [`rbd_fsid_is`] for this fsid.
    pub(crate) fn matches(&self, url: &str) -> Result<bool, RbdLocationError> {
        rbd_fsid_matches(url, self.fsid, self.has_slash)
    }
}

/// What one pass over a location URL tells the two classifications the
/// planner makes of every location ([`rbd_fsid_is`] for the driver clone,
/// [`may_be_cinder`] for the image-volume clone), so that a URL is read
/// once for both.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UrlScan {
    /// A C0 control, non-ASCII byte, `[` or `]` somewhere.
    special: bool,
    /// A `%` somewhere.
    percent: bool,
    /// Two `/` next to each other somewhere but at bytes 4 and 5 (the
    /// `//` of `rbd://`).
    touching: bool,
    /// How many `/`.
    slashes: u32,
}

impl UrlScan {
    /// Inlined into its caller's loop, so that the scan stays in
    /// registers (returned through memory, it would be written in pieces
    /// and read back whole, which stalls).
    #[inline(always)]
    pub(crate) fn new(url: &str) -> Self {
        let b = url.as_bytes();
        let (percent, special, slashes, touching) = bytes::scan(b);
        UrlScan { special, percent, touching, slashes }
    }

    /// [`may_be_cinder`] of the scanned `url`.
    #[inline(always)]
    pub(crate) fn may_be_cinder(&self, url: &str) -> bool {
        let b = url.as_bytes();
        if self.special || b.first().is_none_or(|&c| c <= b' ') {
            return !matches!(CinderLocation::parse(url), Err(CinderLocationError::NotCinder { .. }));
        }
        b.len() > 6 && b[6] == b':' && b[..6].eq_ignore_ascii_case(b"cinder")
    }

    /// [`rbd_fsid_is`] of the scanned `url`.
    #[inline(always)]
    pub(crate) fn rbd_fsid_is(&self, url: &str, fsid: &RbdFsid<'_>) -> Result<bool, RbdLocationError> {
        let b = url.as_bytes();
        if !b.starts_with(b"rbd://") {
            return Err(RbdLocationError::NotRbd);
        }
        // The usual location: `rbd://` and three more slashes, none
        // touching another (so none right after the prefix), none last,
        // and no `%`. Its fsid is the text up to the first of the three.
        let usual = self.slashes == 5 && !self.touching && b.last() != Some(&b'/');
        if !usual || self.percent || fsid.has_slash {
            return fsid.matches(url);
        }
        let rest = &b[6..];
        let n = fsid.fsid.len();
        Ok(rest.get(n) == Some(&b'/') && rest.get(..n).is_some_and(|f| same_bytes(f, fsid.fsid.as_bytes())))
    }
}

fn rbd_fsid_matches(url: &str, fsid: &str, fsid_has_slash: bool) -> Result<bool, RbdLocationError> {
    let rest = rbd_checked(url)?;
    let b = rest.as_bytes();
    // Without `%` in the URL the fsid is the text before the first `/`: it
    // equals a `fsid` without `/` exactly when the URL continues with `/`.
    if !fsid_has_slash && !has_byte(b, b'%') {
        return Ok(b.get(fsid.len()) == Some(&b'/') && b.starts_with(fsid.as_bytes()));
    }
    let end = rest.find('/').unwrap_or(rest.len());
    Ok(unquote(rest.get(..end).unwrap_or_default()) == fsid)
}

/// The text after `rbd://` of a URL with four non-blank `/`-separated
/// pieces, or why [`RbdLocation::parse`] rejects it (blank pieces are
/// checked before the count).
fn rbd_checked(url: &str) -> Result<&str, RbdLocationError> {
    let rest = url.strip_prefix("rbd://").ok_or(RbdLocationError::NotRbd)?;
    let b = rest.as_bytes();
    // The usual case: exactly three slashes, none first or last, no two
    // touching. Anything else is sorted out by the plain split below.
    let mut at = [0usize; 3];
    let mut slashes = 0usize;
    for_each_block(b, |offset, block, valid| {
        let mut m = bytes::eq(block, b'/') & valid;
        while m != 0 {
            if let Some(slot) = at.get_mut(slashes) {
                *slot = offset + m.trailing_zeros() as usize;
            }
            slashes += 1;
            m &= m - 1;
        }
        slashes <= 3
    });
    if slashes == 3 && at[0] > 0 && at[1] > at[0] + 1 && at[2] > at[1] + 1 && at[2] + 1 < b.len() {
        return Ok(rest);
    }
    let mut count = 0usize;
    let mut blank = false;
    for piece in rest.split('/') {
        blank |= piece.is_empty();
        count += 1;
    }
    if blank {
        return Err(RbdLocationError::BlankComponent);
    }
    if count != 4 {
        return Err(RbdLocationError::NotASnapshot { parts: count });
    }
    Ok(rest)
}

/// `a == b`, inlined: 16 bytes at a time (the last block overlapping),
/// where a library `memcmp` call would cost more than comparing an fsid.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() < 16 {
        return a == b;
    }
    let mut i = 0;
    while let (Some(x), Some(y)) =
        (a.get(i..).and_then(<[u8]>::first_chunk::<16>), b.get(i..).and_then(<[u8]>::first_chunk::<16>))
    {
        if x != y {
            return false;
        }
        i += 16;
    }
    a.last_chunk::<16>() == b.last_chunk::<16>()
}

/// Whether any byte of `b` is `byte` (`memchr`: as fast as the block test
/// it replaced, measured in docs/PERFORMANCE.md).
fn has_byte(b: &[u8], byte: u8) -> bool {
    memchr::memchr(byte, b).is_some()
}

/// Calls `f` with the offset of each 16-byte block of `b`, the block and
/// the mask of the bytes it has not been given yet (bit `i` for byte
/// `offset + i`), while `f` says to go on. The last block overlaps the one
/// before, or is padded when `b` is shorter than 16 bytes.
#[inline(always)]
fn for_each_block(b: &[u8], mut f: impl FnMut(usize, &[u8; 16], u32) -> bool) {
    let mut offset = 0;
    while let Some(block) = b.get(offset..).and_then(<[u8]>::first_chunk::<16>) {
        if !f(offset, block, 0xFFFF) {
            return;
        }
        offset += 16;
    }
    let tail = b.len() - offset;
    if tail == 0 {
        return;
    }
    if let Some(block) = b.last_chunk::<16>() {
        f(b.len() - 16, block, (0xFFFF << (16 - tail)) & 0xFFFF);
    } else {
        let mut block = [b'a'; 16];
        block[..tail].copy_from_slice(b);
        f(0, &block, (1 << tail) - 1);
    }
}

/// Tests on 16 bytes at once, each giving a mask with bit `i` set when
/// byte `i` matches: SSE2 (always present on x86-64), or a plain loop.
#[allow(unsafe_code)]
mod bytes {
    /// Bytes equal to `byte`.
    #[inline(always)]
    pub(super) fn eq(block: &[u8; 16], byte: u8) -> u32 {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
            // SAFETY: SSE2 is part of the x86-64 baseline, and the unaligned
            // load reads exactly the 16 bytes of `block`.
            unsafe {
                let v = _mm_loadu_si128(block.as_ptr().cast());
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(byte as i8))) as u32 & 0xFFFF
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            portable::eq(block, byte)
        }
    }

    /// One pass over `b`: whether any byte is `%`, whether any is a
    /// [`control_high_or_bracket`] byte, how many are `/`, and whether two
    /// `/` touch anywhere but at bytes 4 and 5. The two flags are gathered
    /// in vector registers over the whole URL (a byte seen twice in the
    /// overlapping last block changes nothing); the slashes are counted
    /// and paired on each block's mask, with no per-slash work.
    #[inline(always)]
    pub(super) fn scan(b: &[u8]) -> (bool, bool, u32, bool) {
        // Bit `i` of a block's pair mask: bytes `i - 1` and `i` are both
        // `/` (bit 0 pairs with the last byte of the block before).
        // Byte 5 pairs with byte 4 in every `rbd://`: not a touch.
        const PREFIX_PAIR: u32 = 1 << 5;
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{
                __m128i, _mm_adds_epu8, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_cvtsi128_si32,
                _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_sad_epu8, _mm_set1_epi8, _mm_setzero_si128,
                _mm_srli_si128,
            };
            /// Lanes `tail..` of a load at `tail` are set: the bytes of the
            /// last block not given before.
            static NEW_LANES: [u8; 32] =
                [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1];
            // SAFETY: SSE2 is part of the x86-64 baseline; every load reads
            // exactly the 16 bytes of a `[u8; 16]` or of `NEW_LANES`.
            unsafe {
                let (slash, pct, low, open, close) = (
                    _mm_set1_epi8(b'/' as i8),
                    _mm_set1_epi8(b'%' as i8),
                    _mm_set1_epi8(0x20),
                    _mm_set1_epi8(b'[' as i8),
                    _mm_set1_epi8(b']' as i8),
                );
                let mut percent = _mm_setzero_si128();
                let mut special = _mm_setzero_si128();
                // Slashes are counted per lane (saturating: a count that
                // reaches 255 in a lane is far above what matters).
                let mut counts = _mm_setzero_si128();
                let (mut pairs, mut carry) = (0u32, 0u32);
                // `ones`: 1 in the lanes of bytes not given before;
                // `paired`: the pair bits that count.
                let mut step = |block: &[u8; 16], ones: __m128i, paired: u32| {
                    let v: __m128i = _mm_loadu_si128(block.as_ptr().cast());
                    percent = _mm_or_si128(percent, _mm_cmpeq_epi8(v, pct));
                    special = _mm_or_si128(
                        special,
                        _mm_or_si128(
                            _mm_cmplt_epi8(v, low),
                            _mm_or_si128(_mm_cmpeq_epi8(v, open), _mm_cmpeq_epi8(v, close)),
                        ),
                    );
                    let is_slash = _mm_cmpeq_epi8(v, slash);
                    counts = _mm_adds_epu8(counts, _mm_and_si128(is_slash, ones));
                    let m = _mm_movemask_epi8(is_slash) as u32;
                    pairs |= m & ((m << 1) | carry) & paired;
                    carry = m >> 15;
                };
                let all = _mm_set1_epi8(1);
                let mut offset = 0;
                while let Some(block) = b.get(offset..).and_then(<[u8]>::first_chunk::<16>) {
                    step(block, all, if offset == 0 { 0xFFFF & !PREFIX_PAIR } else { 0xFFFF });
                    offset += 16;
                }
                let tail = b.len() - offset;
                if tail > 0 {
                    // The last block overlaps the one before: the pairs
                    // that count are inside it (its first byte was given
                    // before, so bit 0, where the carry goes, never counts).
                    if let Some(block) = b.last_chunk::<16>() {
                        // `tail < 16`: the loop above leaves fewer than 16.
                        let new = _mm_loadu_si128(NEW_LANES[tail..tail + 16].as_ptr().cast());
                        step(block, new, (0xFFFF << (16 - tail)) & 0xFFFF);
                    } else {
                        // Padding with `a`, which no test matches.
                        let mut block = [b'a'; 16];
                        block[..tail].copy_from_slice(b);
                        step(&block, all, ((1 << tail) - 1) & !PREFIX_PAIR);
                    }
                }
                // Two sums of eight lanes each, at most 8 * 255.
                let sums = _mm_sad_epu8(counts, _mm_setzero_si128());
                let count = (_mm_cvtsi128_si32(sums) + _mm_cvtsi128_si32(_mm_srli_si128::<8>(sums))) as u32;
                (_mm_movemask_epi8(percent) != 0, _mm_movemask_epi8(special) != 0, count, pairs != 0)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            portable::scan(b)
        }
    }

    /// Bytes that are C0 controls (below 0x20), non-ASCII (from 0x80 up),
    /// `[` or `]`.
    #[inline(always)]
    pub(super) fn control_high_or_bracket(block: &[u8; 16]) -> u32 {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{
                _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
            };
            // SAFETY: as in `eq`. As signed bytes, the controls and the
            // non-ASCII bytes are exactly those below 0x20.
            unsafe {
                let v = _mm_loadu_si128(block.as_ptr().cast());
                let low = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
                let open = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'[' as i8));
                let close = _mm_cmpeq_epi8(v, _mm_set1_epi8(b']' as i8));
                _mm_movemask_epi8(_mm_or_si128(low, _mm_or_si128(open, close))) as u32 & 0xFFFF
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            portable::control_high_or_bracket(block)
        }
    }

    /// The same tests a byte at a time: what other targets run, and the
    /// reference the SIMD versions are tested against on x86-64 (so this
    /// code is compiled and tested on every target).
    #[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
    pub(super) mod portable {
        /// See [`super::eq`].
        pub(in super::super) fn eq(block: &[u8; 16], byte: u8) -> u32 {
            mask(block, |c| c == byte)
        }

        /// See [`super::scan`].
        pub(in super::super) fn scan(b: &[u8]) -> (bool, bool, u32, bool) {
            let (mut percent, mut special) = (false, false);
            let (mut count, mut touching, mut prev) = (0u32, false, None);
            for (i, &c) in b.iter().enumerate() {
                percent |= c == b'%';
                special |= !(0x20..0x80).contains(&c) || c == b'[' || c == b']';
                if c == b'/' {
                    count += 1;
                    touching |= i != 5 && prev.is_some_and(|p: usize| p + 1 == i);
                    prev = Some(i);
                }
            }
            (percent, special, count, touching)
        }

        /// See [`super::control_high_or_bracket`].
        pub(in super::super) fn control_high_or_bracket(block: &[u8; 16]) -> u32 {
            mask(block, |c| !(0x20..0x80).contains(&c) || c == b'[' || c == b']')
        }

        fn mask(block: &[u8; 16], f: impl Fn(u8) -> bool) -> u32 {
            block.iter().enumerate().fold(0, |m, (i, &c)| m | (u32::from(f(c)) << i))
        }
    }
}

impl fmt::Display for RbdLocation {
    /// `rbd://` and the four components quoted like glance_store's
    /// `StoreLocation.get_uri` (`urllib.parse.quote(part, '')`: everything
    /// but ASCII letters, digits and `_.-~` is percent-encoded, `/`
    /// included), so parsing the result gives back the same location.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rbd://")?;
        write_quoted(f, &self.fsid)?;
        f.write_str("/")?;
        write_quoted(f, &self.pool)?;
        f.write_str("/")?;
        write_quoted(f, &self.image)?;
        f.write_str("/")?;
        write_quoted(f, &self.snapshot)
    }
}

/// `urllib.parse.quote(s, safe='')`.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
            continue;
        }
        // `start..i` is ASCII, so the slice boundaries are char boundaries.
        f.write_str(s.get(start..i).unwrap_or_default())?;
        let esc = [b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xF)]];
        f.write_str(std::str::from_utf8(&esc).unwrap_or_default())?;
        start = i + 1;
    }
    f.write_str(s.get(start..).unwrap_or_default())
}

/// `urllib.parse.unquote(s)` (UTF-8, `errors='replace'`).
///
/// Python decodes each maximal run of ASCII characters on its own (escapes
/// never combine with literal non-ASCII characters), replaces `%XX` (two hex
/// digits, either case) by the byte, leaves any other `%` as written and
/// decodes the bytes as UTF-8 with U+FFFD for each maximal invalid subpart,
/// which is also what [`String::from_utf8_lossy`] does.
fn unquote(s: &str) -> Cow<'_, str> {
    if !has_byte(s.as_bytes(), b'%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut buf: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        // A non-ASCII run is copied as is.
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii() {
            i += 1;
        }
        out.push_str(s.get(start..i).unwrap_or_default());
        // An ASCII run is percent-decoded and then UTF-8 decoded on its own.
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii() {
            i += 1;
        }
        let run = &bytes[start..i];
        if !run.contains(&b'%') {
            out.push_str(s.get(start..i).unwrap_or_default());
            continue;
        }
        buf.clear();
        let mut j = 0;
        while j < run.len() {
            let b = run[j];
            if b == b'%' && j + 2 < run.len() {
                if let (Some(hi), Some(lo)) = (hex_val(run[j + 1]), hex_val(run[j + 2])) {
                    buf.push(hi << 4 | lo);
                    j += 3;
                    continue;
                }
            }
            buf.push(b);
            j += 1;
        }
        out.push_str(&String::from_utf8_lossy(&buf));
    }
    Cow::Owned(out)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// cinder://

/// A `cinder://` image location whose id passed upstream's UUID check.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CinderLocation {
    /// The volume id exactly as written in the URL (after Python's removal
    /// of tab/CR/LF): upstream uses it verbatim in a database `IN` filter, so
    /// it is *not* normalised (braces, `urn:uuid:`, upper case and odd dash
    /// placement all survive).
    pub volume_id: VolumeId,
    /// The Glance store of the multistore form `cinder://<store>/<id>`: the
    /// URL's netloc when the id came from the path and the netloc is not
    /// empty, else `None` (legacy `cinder://<id>`, `cinder:///<id>`,
    /// `cinder:<id>`). For `cinder://a/b/<id>` it is `a`.
    pub store: Option<String>,
}

/// Why [`CinderLocation::parse`] did not yield a volume id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum CinderLocationError {
    /// The scheme (as Python's `urlsplit` lower-cases it) is not `cinder`;
    /// upstream ignores the location. The empty URL, which upstream skips
    /// before splitting, is reported with an empty scheme.
    #[error("not a cinder:// location (scheme '{scheme}')")]
    NotCinder {
        /// The scheme `urlsplit` found, lower-cased; empty when there is none.
        scheme: String,
    },
    /// A `cinder` URL whose id fails `is_uuid_like`; upstream logs "Ignoring
    /// malformed image location uri" and ignores it.
    #[error("malformed image location uri: '{id}' is not a UUID")]
    MalformedId {
        /// The candidate id (last path segment, or the netloc).
        id: String,
    },
    /// Python's `urlsplit` raises `ValueError` (any scheme): upstream does
    /// not catch it, so the whole create flow fails with this message.
    #[error("{message}")]
    InvalidUrl {
        /// `str()` of Python's `ValueError`.
        message: String,
    },
}

impl CinderLocation {
    /// Parses one Glance location like one iteration of Cinder's
    /// `CreateVolumeFromSpecTask._extract_cinder_ids`.
    ///
    /// The URL is split like `oslo_utils.netutils.urlsplit`; the scheme must
    /// be `cinder` (any case); the id is the last `/`-segment of the path
    /// when the path is not empty, else the netloc; it must satisfy
    /// [`is_uuid_like`]. A `ValueError` from the split is
    /// [`CinderLocationError::InvalidUrl`], whatever the scheme.
    pub fn parse(url: &str) -> Result<CinderLocation, CinderLocationError> {
        if url.is_empty() {
            // `if not url: continue`
            return Err(CinderLocationError::NotCinder { scheme: String::new() });
        }
        if let Some(id) = canonical_cinder_id(url) {
            return Ok(CinderLocation { volume_id: VolumeId::from(id), store: None });
        }
        with_split(url, |split| match cinder_parts(split) {
            Ok((id, store)) => Ok(CinderLocation { volume_id: VolumeId::from(id), store: store.map(str::to_owned) }),
            Err(CinderFail::NotCinder(scheme)) => {
                Err(CinderLocationError::NotCinder { scheme: scheme.to_ascii_lowercase() })
            }
            Err(CinderFail::MalformedId(id)) => Err(CinderLocationError::MalformedId { id: id.to_owned() }),
            Err(CinderFail::InvalidUrl(message)) => Err(CinderLocationError::InvalidUrl { message }),
        })
    }
}

/// The id of the usual `cinder://<uuid>` form, when `url` is exactly
/// `cinder://` (any case) followed by hex digits and dashes only, 32 of
/// them hex digits: the split of such a URL cannot raise, its netloc is the
/// whole rest (no `/?#[]`, tab, CR or LF), its path is empty, so the id is
/// the netloc, and `is_uuid_like` accepts it. Anything else takes the full
/// parse.
fn canonical_cinder_id(url: &str) -> Option<&str> {
    let b = url.as_bytes();
    if b.len() < 9 + 32 || !b[..9].eq_ignore_ascii_case(b"cinder://") {
        return None;
    }
    let rest = &b[9..];
    let mut hex = 0usize;
    for &c in rest {
        if c.is_ascii_hexdigit() {
            hex += 1;
        } else if c != b'-' {
            return None;
        }
    }
    (hex == 32).then(|| url.get(9..)).flatten()
}

/// [`CinderLocationError`] before anything is copied.
enum CinderFail<'a> {
    NotCinder(&'a str),
    MalformedId(&'a str),
    InvalidUrl(String),
}

/// The id and store of a split URL, as `_extract_cinder_ids` finds them.
fn cinder_parts(split: Result<RawSplit<'_>, String>) -> Result<(&str, Option<&str>), CinderFail<'_>> {
    let split = split.map_err(CinderFail::InvalidUrl)?;
    if !split.scheme.eq_ignore_ascii_case("cinder") {
        return Err(CinderFail::NotCinder(split.scheme));
    }
    let (id, store) = if split.path.is_empty() {
        (split.netloc, None)
    } else {
        let id = split.path.rsplit('/').next().unwrap_or_default();
        (id, Some(split.netloc).filter(|n| !n.is_empty()))
    };
    if is_uuid_like(id) {
        Ok((id, store))
    } else {
        Err(CinderFail::MalformedId(id))
    }
}

/// Whether [`CinderLocation::parse`] would do anything but return
/// [`CinderLocationError::NotCinder`] for `url`: true for `cinder:` URLs
/// (any case) and for URLs whose split raises. A few nanoseconds for the
/// usual ASCII URLs (no brackets, tabs or line breaks, no leading control
/// characters, where the split cannot raise and the scheme is the text
/// before the first `:`); other URLs are fully parsed.
pub fn may_be_cinder(url: &str) -> bool {
    let b = url.as_bytes();
    // Stricter than needed (any control character, non-ASCII byte or
    // bracket sends a URL to the full parse, not only tab/CR/LF anywhere and
    // brackets or non-ASCII in the netloc), which is always correct.
    let mut special = false;
    for_each_block(b, |_, block, valid| {
        special = bytes::control_high_or_bracket(block) & valid != 0;
        !special
    });
    let plain = !special && b.first().is_some_and(|&c| c > b' ');
    if !plain {
        return !matches!(CinderLocation::parse(url), Err(CinderLocationError::NotCinder { .. }));
    }
    // urlsplit takes `url[:i]` as the scheme only if it starts with a
    // letter and has only scheme characters; "cinder" qualifies.
    b.len() > 6 && b[6] == b':' && b[..6].eq_ignore_ascii_case(b"cinder")
}

impl fmt::Display for CinderLocation {
    /// `cinder://<store>/<id>` or, without a store, `cinder://<id>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.store {
            Some(store) => write!(f, "cinder://{}/{}", store, self.volume_id),
            None => write!(f, "cinder://{}", self.volume_id),
        }
    }
}

/// `CreateVolumeFromSpecTask._extract_cinder_ids(urls)`: the ids of the
/// `cinder://` locations with UUID-like ids, in order, ignoring everything
/// else (empty strings stand for upstream's `None`/`''`).
///
/// Fails with the first [`CinderLocationError::InvalidUrl`], as upstream
/// lets that `ValueError` escape.
pub fn extract_cinder_ids<I, S>(urls: I) -> Result<Vec<VolumeId>, CinderLocationError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut ids = Vec::new();
    for url in urls {
        match CinderLocation::parse(url.as_ref()) {
            Ok(loc) => ids.push(loc.volume_id),
            Err(e @ CinderLocationError::InvalidUrl { .. }) => return Err(e),
            Err(_) => {}
        }
    }
    Ok(ids)
}

// ---------------------------------------------------------------------------
// Classification

/// What kind of image location a URL is, for explanations. (Not to be
/// confused with [`crate::model::ImageLocation`], a Glance location entry.)
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ImageLocation {
    /// An `rbd://` snapshot location (whether the driver can clone it
    /// also depends on the fsid and the image's disk format).
    Rbd(RbdLocation),
    /// A `cinder://` location with a usable volume id.
    Cinder(CinderLocation),
    /// Anything else (including malformed `rbd://` and `cinder://` URLs).
    Other {
        /// The scheme Python's `urlsplit` would report (lower-cased, empty
        /// when there is none), computed even if the split would raise.
        scheme: String,
    },
}

impl ImageLocation {
    /// Classifies `url`: [`RbdLocation::parse`] first, then
    /// [`CinderLocation::parse`], else [`ImageLocation::Other`].
    pub fn classify(url: &str) -> ImageLocation {
        if let Ok(rbd) = RbdLocation::parse(url) {
            return ImageLocation::Rbd(rbd);
        }
        if url.is_empty() {
            return ImageLocation::Other { scheme: String::new() };
        }
        with_split(url, |split| match cinder_parts(split) {
            Ok((id, store)) => {
                ImageLocation::Cinder(CinderLocation { volume_id: VolumeId::from(id), store: store.map(str::to_owned) })
            }
            Err(CinderFail::NotCinder(scheme)) => ImageLocation::Other { scheme: scheme.to_ascii_lowercase() },
            Err(CinderFail::MalformedId(_)) => ImageLocation::Other { scheme: "cinder".to_owned() },
            Err(CinderFail::InvalidUrl(_)) => ImageLocation::Other { scheme: scheme_of(url) },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // cinder/tests/unit/fake_constants.py
    const VOLUME2_ID: &str = "43a09914-e495-475f-b862-0bda3c8918e4";
    const VOLUME3_ID: &str = "1b1cf149-219c-44ac-aee3-13121a7f86a7";
    const VOLUME4_ID: &str = "904d4602-4301-4e9b-8df1-8133b51904e6";
    const VOLUME5_ID: &str = "17b0e01d-3d2d-4c31-a1aa-c962420bc3dc";
    const VOLUME6_ID: &str = "84375761-46e0-4df2-a567-02f0113428d7";
    const UUID1: &str = "84d0c5f7-2349-401c-8672-f76214d13cab";
    const UUID2: &str = "25406d50-e645-4e62-a9ef-1f53f9cba13f";
    const UUID3: &str = "29c80662-3a9f-4844-a585-55cd3cd180b5";
    const UUID4: &str = "4cd72b2b-5a4f-4f24-93dc-7c0212002916";
    const UUID5: &str = "0a574d83-cacf-42b9-8f9f-8f4faa6d4746";

    /// The one-pass scan the planner uses answers exactly as the functions
    /// it stands for, on every recorded case and on shapes around the fast
    /// paths (block edges, slashes touching, `%`, controls).
    #[test]
    fn url_scan_agrees_with_the_exact_functions() {
        let cases: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("../tests/data/location_cases.json")).expect("cases");
        let mut urls: Vec<String> = cases.iter().filter_map(|c| c["url"].as_str().map(str::to_owned)).collect();
        let fsid = "7d5ab9c0-5e1b-4a2b-9c3d-0000000000f5";
        // Short tails cross the 16-byte block edges; long ones make URLs
        // of many blocks.
        let tails: Vec<String> = ["", "x", "xxxxxxx", "xxxxxxxxxxxxxxx", "xxxxxxxxxxxxxxxx"]
            .into_iter()
            .map(str::to_owned)
            .chain([63, 64, 100, 200].map(|n| "x".repeat(n)))
            .collect();
        for tail in &tails {
            let tail = tail.as_str();
            for shape in [
                format!("rbd://{fsid}/images/img{tail}/snap"),
                format!("rbd://{fsid}{tail}/images/img/snap"),
                format!("rbd://{fsid}/images//img{tail}"),
                format!("rbd://{fsid}/images/img{tail}/snap/"),
                format!("rbd:///{fsid}/images/img{tail}"),
                format!("rbd://{fsid}/im%61ges/img{tail}/snap"),
                format!("rbd://7d5ab9c0%2D5e1b/images/img{tail}/snap"),
                format!("rbd://{fsid}/images/img{tail}/s/n/a/p"),
                format!("rbd://{fsid}/i\tmages/img{tail}/snap"),
                format!("rbd://{fsid}/images/im]g{tail}/snap"),
                format!("cinder://{UUID1}{tail}"),
                format!("CINDER://[{tail}/{UUID1}"),
                format!(" cinder://{UUID1}{tail}"),
                format!("cin\nder://{UUID1}{tail}"),
                format!("http://{tail}é/x"),
                tail.to_owned(),
            ] {
                urls.push(shape);
            }
        }
        let fsids = [fsid, "fsid", "/", "7d5ab9c0-5e1b", "", "f/x"];
        for url in &urls {
            let scan = UrlScan::new(url);
            assert_eq!(scan.may_be_cinder(url), may_be_cinder(url), "{url:?}");
            for f in fsids {
                let exact = rbd_fsid(url).map(|got| got == f);
                assert_eq!(scan.rbd_fsid_is(url, &RbdFsid::new(f)), exact, "{url:?} {f:?}");
                assert_eq!(rbd_fsid_is(url, f), exact, "{url:?} {f:?}");
            }
            if let Ok(got) = rbd_fsid(url) {
                assert_eq!(scan.rbd_fsid_is(url, &RbdFsid::new(&got)), Ok(true), "{url:?}");
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: std::env::var("CINDER_FLOW_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(0).max(2000),
            ..Default::default()
        })]

        /// The one-pass scan gives the exact functions' answers on URLs
        /// made of the bytes it looks for, at every length and alignment
        /// (slashes touching across and inside 16-byte blocks, in the
        /// overlapping last block, right after `rbd://`).
        #[test]
        fn url_scan_agrees_with_the_exact_functions_everywhere(
            prefix in proptest::sample::select(vec!["rbd://", "rbd:/", "cinder://", "", " rbd://", "RBD://"]),
            pieces in proptest::collection::vec(
                proptest::sample::select(vec!["/", "//", "f", "fsid", "7d5ab9c0", "%2F", "%", "[", "]", "\t", "é", "abcdefghijklmnop", "x/y"]),
                0..24,
            ),
        ) {
            let url = format!("{prefix}{}", pieces.concat());
            let scan = UrlScan::new(&url);
            proptest::prop_assert_eq!(scan.may_be_cinder(&url), may_be_cinder(&url), "{:?}", url);
            for f in ["fsid", "f", "7d5ab9c0", "f/x", "abcdefghijklmnop"] {
                let exact = rbd_fsid(&url).map(|got| got == f);
                proptest::prop_assert_eq!(scan.rbd_fsid_is(&url, &RbdFsid::new(f)), exact, "{:?} {:?}", url, f);
            }
        }

        /// The byte tests this target runs (SIMD on x86-64) agree with the
        /// byte-at-a-time ones other targets run, on every length and
        /// alignment, for bytes chosen among those the tests look for.
        #[test]
        fn block_tests_agree_with_the_portable_ones(
            b in proptest::collection::vec(
                proptest::sample::select(vec![b'/', b'%', b'[', b']', b'a', b':', 0x00, 0x1F, 0x20, 0x7F, 0x80, 0xFF]),
                0..80,
            ),
            byte in proptest::sample::select(vec![b'/', b'%', b'a', 0x80]),
        ) {
            proptest::prop_assert_eq!(bytes::scan(&b), bytes::portable::scan(&b), "{:?}", b);
            for block in b.chunks_exact(16) {
                let block: &[u8; 16] = block.try_into().expect("16 bytes");
                proptest::prop_assert_eq!(bytes::eq(block, byte), bytes::portable::eq(block, byte));
                proptest::prop_assert_eq!(
                    bytes::control_high_or_bracket(block),
                    bytes::portable::control_high_or_bracket(block)
                );
            }
        }
    }

    fn rbd(fsid: &str, pool: &str, image: &str, snapshot: &str) -> RbdLocation {
        RbdLocation { fsid: fsid.into(), pool: pool.into(), image: image.into(), snapshot: snapshot.into() }
    }

    // test_rbd.py: test_good_locations
    #[test]
    fn rbd_good_locations() {
        assert_eq!(RbdLocation::parse("rbd://fsid/pool/image/snap"), Ok(rbd("fsid", "pool", "image", "snap")));
        assert_eq!(RbdLocation::parse("rbd://%2F/%2F/%2F/%2F"), Ok(rbd("/", "/", "/", "/")));
    }

    // test_rbd.py: test_bad_locations
    #[test]
    fn rbd_bad_locations() {
        use RbdLocationError::*;
        let cases = [
            ("rbd://image", NotASnapshot { parts: 1 }),
            ("http://path/to/somewhere/else", NotRbd),
            ("rbd://image/extra", NotASnapshot { parts: 2 }),
            ("rbd://image/", BlankComponent),
            ("rbd://fsid/pool/image/", BlankComponent),
            ("rbd://fsid/pool/image/snap/", BlankComponent),
            ("rbd://///", BlankComponent),
        ];
        for (url, want) in cases {
            assert_eq!(RbdLocation::parse(url), Err(want), "{url}");
        }
    }

    #[test]
    fn rbd_error_texts_are_upstream_reasons() {
        assert_eq!(RbdLocationError::NotRbd.to_string(), "Not stored in RBD");
        assert_eq!(RbdLocationError::BlankComponent.to_string(), "Blank components");
        assert_eq!(RbdLocationError::NotASnapshot { parts: 5 }.to_string(), "Not an RBD snapshot");
    }

    #[test]
    fn rbd_unquote_like_python() {
        let p = |u: &str| RbdLocation::parse(u).map(|l| [l.fsid, l.pool, l.image, l.snapshot]);
        assert_eq!(p("rbd://%ff/%C3/%C3%A9/%e2%82%ac").unwrap(), ["\u{FFFD}", "\u{FFFD}", "é", "€"].map(String::from));
        // escapes never combine across a literal non-ASCII character
        assert_eq!(p("rbd://%C3é/%/%4/%g0%41").unwrap(), ["\u{FFFD}é", "%", "%4", "%g0A"].map(String::from));
        assert_eq!(p("rbd://%ED%A0%80/a/b/c").unwrap()[0], "\u{FFFD}\u{FFFD}\u{FFFD}");
    }

    #[test]
    fn rbd_display_quotes_like_glance_store() {
        let loc = rbd("a/b", "p o", "é~_.-", "%");
        assert_eq!(loc.to_string(), "rbd://a%2Fb/p%20o/%C3%A9~_.-/%25");
        assert_eq!(RbdLocation::parse(&loc.to_string()), Ok(loc));
    }

    // test_create_volume_flow.py: test__extract_cinder_ids (the 19 ddt cases;
    // `None` is represented by the empty string, which upstream treats alike)
    #[test]
    fn extract_cinder_ids_upstream_table() {
        let legacy_vol2 = format!("cinder://{VOLUME2_ID}");
        let new_vol3 = format!("cinder://glance-store-name/{VOLUME3_ID}");
        let new_vol4 = format!("cinder://glance/store/name/{VOLUME4_ID}");
        let new_vol5 = format!("cinder://glance:store:name/{VOLUME5_ID}");
        let new_vol6 = format!("cinder://glance:store,name/{VOLUME6_ID}");
        let not_cinder1 = format!("rbd://{UUID1}");
        let not_cinder2 = format!("http://{UUID2}");
        let nogood3 = format!("cinder://glance:store,name/{UUID3}/garbage");
        let nogood4 = format!("cinder://glance:store,name/{UUID4}-garbage");
        let nogood5 = UUID5.to_owned();
        let nogood6 = "cinder://store-name/12345678".to_owned();
        let nogood7 = "cinder://".to_owned();
        let nogood8 = "some-random-crap".to_owned();
        let nogood9 = String::new();
        let table: Vec<(Vec<&String>, Vec<&str>)> = vec![
            (vec![&legacy_vol2], vec![VOLUME2_ID]),
            (vec![&new_vol3], vec![VOLUME3_ID]),
            (vec![&new_vol4], vec![VOLUME4_ID]),
            (vec![&new_vol5], vec![VOLUME5_ID]),
            (vec![&new_vol6], vec![VOLUME6_ID]),
            (vec![], vec![]),
            (vec![&nogood9], vec![]),
            (vec![&not_cinder1], vec![]),
            (vec![&not_cinder2], vec![]),
            (vec![&nogood3], vec![]),
            (vec![&nogood4], vec![]),
            (vec![&nogood5], vec![]),
            (vec![&nogood6], vec![]),
            (vec![&nogood7], vec![]),
            (vec![&nogood8], vec![]),
            (vec![&nogood9], vec![]),
            (vec![&not_cinder1, &nogood4], vec![]),
            (vec![&legacy_vol2, &not_cinder1, &new_vol3, &not_cinder2], vec![VOLUME2_ID, VOLUME3_ID]),
            (vec![&nogood6, &new_vol3, &nogood7, &legacy_vol2], vec![VOLUME3_ID, VOLUME2_ID]),
        ];
        assert_eq!(table.len(), 19);
        for (urls, want) in table {
            let got = extract_cinder_ids(&urls).unwrap();
            let want: Vec<VolumeId> = want.into_iter().map(VolumeId::from).collect();
            assert_eq!(got, want, "{urls:?}");
        }
    }

    #[test]
    fn cinder_store_and_errors() {
        let loc = CinderLocation::parse(&format!("cinder://glance-store-name/{VOLUME3_ID}")).unwrap();
        assert_eq!(loc.store.as_deref(), Some("glance-store-name"));
        assert_eq!(loc.to_string(), format!("cinder://glance-store-name/{VOLUME3_ID}"));
        let legacy = CinderLocation::parse(&format!("cinder://{VOLUME2_ID}")).unwrap();
        assert_eq!(legacy.store, None);
        assert_eq!(
            CinderLocation::parse("cinder://store-name/12345678"),
            Err(CinderLocationError::MalformedId { id: "12345678".into() })
        );
        assert_eq!(
            CinderLocation::parse(&format!("HTTP://{UUID2}")),
            Err(CinderLocationError::NotCinder { scheme: "http".into() })
        );
        assert_eq!(
            CinderLocation::parse("http://[::1"),
            Err(CinderLocationError::InvalidUrl { message: "Invalid IPv6 URL".into() })
        );
        assert_eq!(
            CinderLocation::parse("cinder://[x'y]/"),
            Err(CinderLocationError::InvalidUrl {
                message: "\"x'y\" does not appear to be an IPv4 or IPv6 address".into()
            })
        );
        assert_eq!(
            CinderLocation::parse("x://\u{2100}"),
            Err(CinderLocationError::InvalidUrl {
                message: "netloc '\u{2100}' contains invalid characters under NFKC normalization".into()
            })
        );
        // tab/CR/LF vanish anywhere, leading C0/space is stripped, scheme case folds
        let loc = CinderLocation::parse(&format!(" \x01CIN\tDER://st\nore/{VOLUME2_ID}")).unwrap();
        assert_eq!(loc.store.as_deref(), Some("store"));
        assert_eq!(loc.volume_id.as_str(), VOLUME2_ID);
        // the id is kept verbatim
        let loc = CinderLocation::parse(&format!("cinder://{{urn:uuid:{}}}", VOLUME2_ID.to_uppercase())).unwrap();
        assert_eq!(loc.volume_id.as_str(), format!("{{urn:uuid:{}}}", VOLUME2_ID.to_uppercase()));
    }

    #[test]
    fn uuid_like_follows_oslo() {
        let hex = VOLUME2_ID.replace('-', "");
        assert!(is_uuid_like(VOLUME2_ID));
        assert!(is_uuid_like(&VOLUME2_ID.to_uppercase()));
        assert!(is_uuid_like(&hex));
        assert!(is_uuid_like(&format!("{{{VOLUME2_ID}}}")));
        assert!(is_uuid_like(&format!("{{{{{VOLUME2_ID}}}")));
        assert!(is_uuid_like(&format!("urn:uuid:{VOLUME2_ID}")));
        assert!(is_uuid_like(&format!("uuid:{VOLUME2_ID}")));
        assert!(is_uuid_like(&format!("-{hex}-")));
        assert!(is_uuid_like(&format!("urn:uuid:{{{VOLUME2_ID}}}")));
        assert!(is_uuid_like(&format!("{{urn:uuid:{VOLUME2_ID}}}")));
        assert!(!is_uuid_like(&format!("-{{{hex}}}")));
        assert!(!is_uuid_like(&format!("uurn:rn:{hex}")));
        assert!(!is_uuid_like(&hex[1..]));
        assert!(!is_uuid_like(&format!("{hex}0")));
        assert!(!is_uuid_like(&format!("0x{}", &hex[2..])));
        assert!(!is_uuid_like(&format!(" {}", &hex[1..])));
        assert!(!is_uuid_like(""));
    }

    #[test]
    fn classify() {
        assert_eq!(ImageLocation::classify("rbd://a/b/c/d"), ImageLocation::Rbd(rbd("a", "b", "c", "d")));
        assert!(matches!(ImageLocation::classify(&format!("cinder://{VOLUME2_ID}")), ImageLocation::Cinder(_)));
        assert_eq!(ImageLocation::classify("rbd://a"), ImageLocation::Other { scheme: "rbd".into() });
        assert_eq!(ImageLocation::classify("HTTP://[x"), ImageLocation::Other { scheme: "http".into() });
        assert_eq!(ImageLocation::classify("/some/path"), ImageLocation::Other { scheme: String::new() });
    }
}
