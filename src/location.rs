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
        if self.special || !b.first().is_some_and(|&c| c > b' ') {
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

/// Whether any byte of `b` is `byte`.
fn has_byte(b: &[u8], byte: u8) -> bool {
    let mut found = false;
    for_each_block(b, |_, block, valid| {
        found = bytes::eq(block, byte) & valid != 0;
        !found
    });
    found
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

// ---------------------------------------------------------------------------
// urlsplit

/// The five parts of `oslo_utils.netutils.urlsplit(url)` (Python 3.11's
/// `urllib.parse.urlsplit`, default arguments).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SplitUrl {
    /// Lower-cased scheme, empty when there is none.
    pub scheme: String,
    /// The authority after `//`, up to the first `/`, `?` or `#`.
    pub netloc: String,
    /// The path.
    pub path: String,
    /// After the first `?` (not inside the fragment).
    pub query: String,
    /// After the first `#`.
    pub fragment: String,
}

/// `oslo_utils.netutils.urlsplit(url)`, as Python 3.11.7 computes it.
///
/// The only error is [`CinderLocationError::InvalidUrl`] with the message of
/// the `ValueError` Python raises.
pub fn urlsplit(url: &str) -> Result<SplitUrl, CinderLocationError> {
    with_split(url, |split| {
        let s = split.map_err(|message| CinderLocationError::InvalidUrl { message })?;
        Ok(SplitUrl {
            scheme: s.scheme.to_ascii_lowercase(),
            netloc: s.netloc.to_owned(),
            path: s.path.to_owned(),
            query: s.query.to_owned(),
            fragment: s.fragment.to_owned(),
        })
    })
}

/// The parts of a cleaned URL, borrowed; `scheme` is not yet lower-cased.
struct RawSplit<'a> {
    scheme: &'a str,
    netloc: &'a str,
    path: &'a str,
    query: &'a str,
    fragment: &'a str,
}

/// Why [`split_raw`] stopped.
enum SplitFail {
    /// The URL contains a tab, CR or LF: Python removes them first.
    Dirty,
    /// Python's `ValueError` message.
    Value(String),
}

/// A 256-entry membership table: `bytes`, plus every byte >= 0x80 if
/// `high`.
const fn byte_table(bytes: &[u8], high: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    if high {
        let mut b = 0x80;
        while b < 256 {
            table[b] = true;
            b += 1;
        }
    }
    table
}

/// Bytes that end or complicate a netloc scan.
static NETLOC_STOP: [bool; 256] = byte_table(b"/?#[]\t\n\r", true);
/// Bytes that matter after the netloc.
static REST_STOP: [bool; 256] = byte_table(b"?#\t\n\r", false);

/// `url.lstrip(<C0 controls and space>)`, as urlsplit starts.
fn trim_leading(url: &str) -> &str {
    let n = url.bytes().take_while(|&b| b <= b' ').count();
    url.get(n..).unwrap_or_default()
}

fn is_tab_cr_lf(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\r')
}

/// Splits `url` like Python's `urlsplit` and hands the result to `f`.
///
/// The common case (no tab, CR or LF) is one pass over the borrowed URL;
/// otherwise those characters are removed into a temporary string first.
fn with_split<R>(url: &str, f: impl FnOnce(Result<RawSplit<'_>, String>) -> R) -> R {
    let url = trim_leading(url);
    match split_raw(url) {
        Ok(split) => f(Ok(split)),
        Err(SplitFail::Value(message)) => f(Err(message)),
        Err(SplitFail::Dirty) => {
            let cleaned: String = url.chars().filter(|&c| !matches!(c, '\t' | '\n' | '\r')).collect();
            match split_raw(&cleaned) {
                Ok(split) => f(Ok(split)),
                Err(SplitFail::Value(message)) => f(Err(message)),
                // Cannot happen: `cleaned` has no tab, CR or LF left.
                Err(SplitFail::Dirty) => f(Err("Invalid URL".to_owned())),
            }
        }
    }
}

/// The lower-cased scheme Python's `urlsplit` reports for `url` (computed
/// before, and regardless of, its `ValueError` checks).
fn scheme_of(url: &str) -> String {
    let url = trim_leading(url);
    if url.bytes().any(is_tab_cr_lf) {
        let cleaned: String = url.chars().filter(|&c| !matches!(c, '\t' | '\n' | '\r')).collect();
        split_scheme(&cleaned).map_or_else(String::new, |(s, _)| s.to_ascii_lowercase())
    } else {
        split_scheme(url).map_or_else(String::new, |(s, _)| s.to_ascii_lowercase())
    }
}

/// The scheme (not lower-cased) and the rest, if `url` has a scheme:
/// Python takes `url[:i]` for the first `:` at `i > 0` when it starts with an
/// ASCII letter and consists of letters, digits and `+-.`. Scanning while
/// the bytes are scheme characters finds the same `:` (any other byte before
/// the first `:` disqualifies the scheme).
fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let bytes = url.as_bytes();
    if !bytes.first().is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    let n = bytes.iter().take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')).count();
    if bytes.get(n) == Some(&b':') {
        Some((url.get(..n)?, url.get(n + 1..)?))
    } else {
        None
    }
}

/// `urllib.parse.urlsplit` (plus oslo's no-op re-split of `#`/`?` in the
/// path) on a URL whose leading C0/space is stripped, in one pass. Stops
/// with [`SplitFail::Dirty`] on a tab, CR or LF, unless the `ValueError`
/// Python raises is already certain from the text before it.
fn split_raw(url: &str) -> Result<RawSplit<'_>, SplitFail> {
    let bytes = url.as_bytes();
    // Nothing before `pos` is a tab, CR or LF (they are not scheme
    // characters); every byte from `pos` on is looked at below, in order.
    let (scheme, mut pos) = match split_scheme(url) {
        Some((scheme, _)) => (scheme, scheme.len() + 1),
        None => ("", 0),
    };
    let mut netloc = "";
    let mut netloc_ascii = true;
    if bytes.get(pos..).is_some_and(|rest| rest.starts_with(b"//")) {
        let start = pos + 2;
        let (mut open, mut close) = (None, false);
        let mut i = start;
        let end = loop {
            i += bytes
                .get(i..)
                .and_then(|rest| rest.iter().position(|&b| NETLOC_STOP[usize::from(b)]))
                .unwrap_or(bytes.len().saturating_sub(i));
            match bytes.get(i) {
                None | Some(b'/' | b'?' | b'#') => break i.min(bytes.len()),
                Some(b'\t' | b'\n' | b'\r') => return Err(SplitFail::Dirty),
                Some(b'[') => {
                    open.get_or_insert(i);
                }
                Some(b']') => close = true,
                Some(_) => netloc_ascii = false,
            }
            i += 1;
        };
        netloc = url.get(start..end).unwrap_or_default();
        pos = end;
        match (open, close) {
            (Some(_), false) | (None, true) => {
                return Err(SplitFail::Value("Invalid IPv6 URL".to_owned()));
            }
            (Some(i), true) => {
                let inner = url.get(i + 1..end).unwrap_or_default();
                let host = inner.split(']').next().unwrap_or_default();
                check_bracketed_host(host).map_err(SplitFail::Value)?;
            }
            (None, false) => {}
        }
    }
    let (mut query_at, mut fragment_at) = (None, None);
    let mut i = pos;
    while let Some(off) = bytes.get(i..).and_then(|rest| rest.iter().position(|&b| REST_STOP[usize::from(b)])) {
        i += off;
        match bytes.get(i) {
            Some(b'#') => {
                fragment_at = Some(i);
                // Only tab/CR/LF matter in the fragment.
                if bytes.get(i..).is_some_and(|rest| rest.iter().any(|&b| is_tab_cr_lf(b))) {
                    return Err(SplitFail::Dirty);
                }
                break;
            }
            Some(b'?') => {
                query_at.get_or_insert(i);
            }
            _ => return Err(SplitFail::Dirty),
        }
        i += 1;
    }
    let before_fragment = fragment_at.unwrap_or(bytes.len());
    let fragment = fragment_at.and_then(|i| url.get(i + 1..)).unwrap_or_default();
    let (path, query) = match query_at {
        Some(i) => (url.get(pos..i).unwrap_or_default(), url.get(i + 1..before_fragment).unwrap_or_default()),
        None => (url.get(pos..before_fragment).unwrap_or_default(), ""),
    };
    if !netloc_ascii {
        check_netloc(netloc).map_err(SplitFail::Value)?;
    }
    Ok(RawSplit { scheme, netloc, path, query, fragment })
}

/// `urllib.parse._check_bracketed_host`.
fn check_bracketed_host(host: &str) -> Result<(), String> {
    if let Some(rest) = host.strip_prefix('v') {
        // re.match(r"\Av[a-fA-F0-9]+\..+\Z", hostname); `.` would not match
        // '\n', but urlsplit has removed every '\n' already.
        let hex_len = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
        let ok = hex_len > 0 && rest[hex_len..].strip_prefix('.').is_some_and(|t| !t.is_empty());
        if ok {
            Ok(())
        } else {
            Err("IPvFuture address is invalid".to_owned())
        }
    } else if is_ipv4(host) {
        Err("An IPv4 address cannot be in brackets".to_owned())
    } else if is_ipv6(host) {
        Ok(())
    } else {
        Err(format!("{} does not appear to be an IPv4 or IPv6 address", py_repr(host)))
    }
}

/// `ipaddress.IPv4Address(s)` succeeds (Python 3.11: exactly four decimal
/// octets of at most three ASCII digits, no leading zeros, each <= 255).
fn is_ipv4(s: &str) -> bool {
    let mut n = 0;
    for octet in s.split('.') {
        n += 1;
        if n > 4 || !is_ipv4_octet(octet) {
            return false;
        }
    }
    n == 4
}

fn is_ipv4_octet(o: &str) -> bool {
    let b = o.as_bytes();
    if b.is_empty() || b.len() > 3 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    if b.len() > 1 && b[0] == b'0' {
        return false;
    }
    b.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')) <= 255
}

/// `ipaddress.IPv6Address(s)` succeeds (Python 3.11, scope ids allowed).
fn is_ipv6(s: &str) -> bool {
    // _split_scope_id
    let addr = match s.split_once('%') {
        Some((addr, scope)) => {
            if scope.is_empty() || scope.contains('%') {
                return false;
            }
            addr
        }
        None => s,
    };
    if addr.is_empty() {
        return false;
    }
    let mut parts: Vec<&str> = addr.split(':').collect();
    if parts.len() < 3 {
        return false;
    }
    if parts.last().is_some_and(|p| p.contains('.')) {
        if !parts.pop().is_some_and(is_ipv4) {
            return false;
        }
        // Two valid hextets replace the IPv4 suffix.
        parts.push("0");
        parts.push("0");
    }
    let len = parts.len();
    if len > 9 {
        return false;
    }
    let mut skip_index = None;
    for (i, p) in parts.iter().enumerate().take(len - 1).skip(1) {
        if p.is_empty() {
            if skip_index.is_some() {
                return false;
            }
            skip_index = Some(i);
        }
    }
    let (hi, lo) = match skip_index {
        Some(skip) => {
            let mut hi = skip;
            let mut lo = len - skip - 1;
            if parts[0].is_empty() {
                hi -= 1;
                if hi != 0 {
                    return false;
                }
            }
            if parts[len - 1].is_empty() {
                lo -= 1;
                if lo != 0 {
                    return false;
                }
            }
            if hi + lo > 7 {
                return false;
            }
            (hi, lo)
        }
        None => {
            if len != 8 || parts[0].is_empty() || parts[len - 1].is_empty() {
                return false;
            }
            (len, 0)
        }
    };
    parts[..hi].iter().chain(parts[len - lo..].iter()).all(|h| is_hextet(h))
}

fn is_hextet(h: &str) -> bool {
    (1..=4).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `urllib.parse._checknetloc`: a non-ASCII netloc whose NFKC form (after
/// dropping `@`, `:`, `#`, `?`) contains one of `/?#@:` is rejected. Such
/// characters cannot appear in a netloc as themselves and NFKC never creates
/// them by composition, so this holds exactly when the netloc contains a
/// character whose compatibility decomposition contains one of them.
fn check_netloc(netloc: &str) -> Result<(), String> {
    if !netloc.chars().any(|c| NFKC_TO_DELIMITER.contains(&c)) {
        return Ok(());
    }
    Err(format!("netloc '{netloc}' contains invalid characters under NFKC normalization"))
}

/// The non-ASCII characters whose NFKC form contains `/`, `?`, `#`, `@` or
/// `:` (Unicode 14.0, Python 3.11's `unicodedata`).
const NFKC_TO_DELIMITER: [char; 19] = [
    '\u{2047}', '\u{2048}', '\u{2049}', '\u{2100}', '\u{2101}', '\u{2105}', '\u{2106}', '\u{2A74}', '\u{FE13}',
    '\u{FE16}', '\u{FE55}', '\u{FE56}', '\u{FE5F}', '\u{FE6B}', '\u{FF03}', '\u{FF0F}', '\u{FF1A}', '\u{FF1F}',
    '\u{FF20}',
];

/// Python's `repr()` of a `str`.
fn py_repr(s: &str) -> String {
    use std::fmt::Write as _;
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        let cp = u32::from(c);
        if c == quote || c == '\\' {
            out.push('\\');
            out.push(c);
        } else if c == '\t' {
            out.push_str("\\t");
        } else if c == '\n' {
            out.push_str("\\n");
        } else if c == '\r' {
            out.push_str("\\r");
        } else if cp < 0x20 || cp == 0x7F {
            let _ = write!(out, "\\x{cp:02x}");
        } else if cp < 0x80 || is_printable(cp) {
            out.push(c);
        } else if cp < 0x100 {
            let _ = write!(out, "\\x{cp:02x}");
        } else if cp < 0x10000 {
            let _ = write!(out, "\\u{cp:04x}");
        } else {
            let _ = write!(out, "\\U{cp:08x}");
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isprintable()` for one non-ASCII code point.
fn is_printable(cp: u32) -> bool {
    NON_PRINTABLE
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_err()
}

// ---------------------------------------------------------------------------
// is_uuid_like

/// `oslo_utils.uuidutils.is_uuid_like(s)`.
///
/// Upstream compares `str(uuid.UUID(s)).replace('-', '')` with
/// `s.replace('urn:', '').replace('uuid:', '').strip('{}').replace('-',
/// '').lower()`; that holds exactly when the latter (before lower-casing) is
/// 32 ASCII hex digits. So upper case, surrounding braces, `urn:`/`uuid:`
/// anywhere and dashes anywhere (after the braces are stripped) are
/// accepted.
pub fn is_uuid_like(s: &str) -> bool {
    match hex32_after_braces(s) {
        Some(answer) => answer,
        None => {
            let s = s.replace("urn:", "").replace("uuid:", "");
            hex32_after_braces(&s) == Some(true)
        }
    }
}

/// Whether `s.strip('{}').replace('-', '')` is 32 ASCII hex digits, or
/// `None` when `s` holds a `:` (so `urn:`/`uuid:` removal may matter).
fn hex32_after_braces(s: &str) -> Option<bool> {
    let t = s.trim_matches(|c| c == '{' || c == '}');
    // Branch-free so that it vectorises: is every byte a hex digit or a
    // dash, and how many dashes are there.
    let bytes = t.as_bytes();
    let bad = bytes.iter().fold(false, |bad, &b| {
        let lower = b | 0x20;
        let is_hex = (b.wrapping_sub(b'0') < 10) | (lower.wrapping_sub(b'a') < 6);
        bad | !(is_hex | (b == b'-'))
    });
    let hex = bytes.len() - bytes.iter().filter(|&&b| b == b'-').count();
    if !bad {
        Some(hex == 32)
    } else if s.contains(':') {
        None
    } else {
        Some(false)
    }
}

/// Code points from U+0080 up that Python 3.11 (Unicode 14.0) considers not
/// printable (categories Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs): `repr()`
/// escapes them. Sorted, inclusive ranges.
#[rustfmt::skip]
const NON_PRINTABLE: &[(u32, u32)] = &[
    (0x0080, 0x00A0), (0x00AD, 0x00AD), (0x0378, 0x0379), (0x0380, 0x0383), (0x038B, 0x038B),
    (0x038D, 0x038D), (0x03A2, 0x03A2), (0x0530, 0x0530), (0x0557, 0x0558), (0x058B, 0x058C),
    (0x0590, 0x0590), (0x05C8, 0x05CF), (0x05EB, 0x05EE), (0x05F5, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070E, 0x070F), (0x074B, 0x074C), (0x07B2, 0x07BF), (0x07FB, 0x07FC),
    (0x082E, 0x082F), (0x083F, 0x083F), (0x085C, 0x085D), (0x085F, 0x085F), (0x086B, 0x086F),
    (0x088F, 0x0897), (0x08E2, 0x08E2), (0x0984, 0x0984), (0x098D, 0x098E), (0x0991, 0x0992),
    (0x09A9, 0x09A9), (0x09B1, 0x09B1), (0x09B3, 0x09B5), (0x09BA, 0x09BB), (0x09C5, 0x09C6),
    (0x09C9, 0x09CA), (0x09CF, 0x09D6), (0x09D8, 0x09DB), (0x09DE, 0x09DE), (0x09E4, 0x09E5),
    (0x09FF, 0x0A00), (0x0A04, 0x0A04), (0x0A0B, 0x0A0E), (0x0A11, 0x0A12), (0x0A29, 0x0A29),
    (0x0A31, 0x0A31), (0x0A34, 0x0A34), (0x0A37, 0x0A37), (0x0A3A, 0x0A3B), (0x0A3D, 0x0A3D),
    (0x0A43, 0x0A46), (0x0A49, 0x0A4A), (0x0A4E, 0x0A50), (0x0A52, 0x0A58), (0x0A5D, 0x0A5D),
    (0x0A5F, 0x0A65), (0x0A77, 0x0A80), (0x0A84, 0x0A84), (0x0A8E, 0x0A8E), (0x0A92, 0x0A92),
    (0x0AA9, 0x0AA9), (0x0AB1, 0x0AB1), (0x0AB4, 0x0AB4), (0x0ABA, 0x0ABB), (0x0AC6, 0x0AC6),
    (0x0ACA, 0x0ACA), (0x0ACE, 0x0ACF), (0x0AD1, 0x0ADF), (0x0AE4, 0x0AE5), (0x0AF2, 0x0AF8),
    (0x0B00, 0x0B00), (0x0B04, 0x0B04), (0x0B0D, 0x0B0E), (0x0B11, 0x0B12), (0x0B29, 0x0B29),
    (0x0B31, 0x0B31), (0x0B34, 0x0B34), (0x0B3A, 0x0B3B), (0x0B45, 0x0B46), (0x0B49, 0x0B4A),
    (0x0B4E, 0x0B54), (0x0B58, 0x0B5B), (0x0B5E, 0x0B5E), (0x0B64, 0x0B65), (0x0B78, 0x0B81),
    (0x0B84, 0x0B84), (0x0B8B, 0x0B8D), (0x0B91, 0x0B91), (0x0B96, 0x0B98), (0x0B9B, 0x0B9B),
    (0x0B9D, 0x0B9D), (0x0BA0, 0x0BA2), (0x0BA5, 0x0BA7), (0x0BAB, 0x0BAD), (0x0BBA, 0x0BBD),
    (0x0BC3, 0x0BC5), (0x0BC9, 0x0BC9), (0x0BCE, 0x0BCF), (0x0BD1, 0x0BD6), (0x0BD8, 0x0BE5),
    (0x0BFB, 0x0BFF), (0x0C0D, 0x0C0D), (0x0C11, 0x0C11), (0x0C29, 0x0C29), (0x0C3A, 0x0C3B),
    (0x0C45, 0x0C45), (0x0C49, 0x0C49), (0x0C4E, 0x0C54), (0x0C57, 0x0C57), (0x0C5B, 0x0C5C),
    (0x0C5E, 0x0C5F), (0x0C64, 0x0C65), (0x0C70, 0x0C76), (0x0C8D, 0x0C8D), (0x0C91, 0x0C91),
    (0x0CA9, 0x0CA9), (0x0CB4, 0x0CB4), (0x0CBA, 0x0CBB), (0x0CC5, 0x0CC5), (0x0CC9, 0x0CC9),
    (0x0CCE, 0x0CD4), (0x0CD7, 0x0CDC), (0x0CDF, 0x0CDF), (0x0CE4, 0x0CE5), (0x0CF0, 0x0CF0),
    (0x0CF3, 0x0CFF), (0x0D0D, 0x0D0D), (0x0D11, 0x0D11), (0x0D45, 0x0D45), (0x0D49, 0x0D49),
    (0x0D50, 0x0D53), (0x0D64, 0x0D65), (0x0D80, 0x0D80), (0x0D84, 0x0D84), (0x0D97, 0x0D99),
    (0x0DB2, 0x0DB2), (0x0DBC, 0x0DBC), (0x0DBE, 0x0DBF), (0x0DC7, 0x0DC9), (0x0DCB, 0x0DCE),
    (0x0DD5, 0x0DD5), (0x0DD7, 0x0DD7), (0x0DE0, 0x0DE5), (0x0DF0, 0x0DF1), (0x0DF5, 0x0E00),
    (0x0E3B, 0x0E3E), (0x0E5C, 0x0E80), (0x0E83, 0x0E83), (0x0E85, 0x0E85), (0x0E8B, 0x0E8B),
    (0x0EA4, 0x0EA4), (0x0EA6, 0x0EA6), (0x0EBE, 0x0EBF), (0x0EC5, 0x0EC5), (0x0EC7, 0x0EC7),
    (0x0ECE, 0x0ECF), (0x0EDA, 0x0EDB), (0x0EE0, 0x0EFF), (0x0F48, 0x0F48), (0x0F6D, 0x0F70),
    (0x0F98, 0x0F98), (0x0FBD, 0x0FBD), (0x0FCD, 0x0FCD), (0x0FDB, 0x0FFF), (0x10C6, 0x10C6),
    (0x10C8, 0x10CC), (0x10CE, 0x10CF), (0x1249, 0x1249), (0x124E, 0x124F), (0x1257, 0x1257),
    (0x1259, 0x1259), (0x125E, 0x125F), (0x1289, 0x1289), (0x128E, 0x128F), (0x12B1, 0x12B1),
    (0x12B6, 0x12B7), (0x12BF, 0x12BF), (0x12C1, 0x12C1), (0x12C6, 0x12C7), (0x12D7, 0x12D7),
    (0x1311, 0x1311), (0x1316, 0x1317), (0x135B, 0x135C), (0x137D, 0x137F), (0x139A, 0x139F),
    (0x13F6, 0x13F7), (0x13FE, 0x13FF), (0x1680, 0x1680), (0x169D, 0x169F), (0x16F9, 0x16FF),
    (0x1716, 0x171E), (0x1737, 0x173F), (0x1754, 0x175F), (0x176D, 0x176D), (0x1771, 0x1771),
    (0x1774, 0x177F), (0x17DE, 0x17DF), (0x17EA, 0x17EF), (0x17FA, 0x17FF), (0x180E, 0x180E),
    (0x181A, 0x181F), (0x1879, 0x187F), (0x18AB, 0x18AF), (0x18F6, 0x18FF), (0x191F, 0x191F),
    (0x192C, 0x192F), (0x193C, 0x193F), (0x1941, 0x1943), (0x196E, 0x196F), (0x1975, 0x197F),
    (0x19AC, 0x19AF), (0x19CA, 0x19CF), (0x19DB, 0x19DD), (0x1A1C, 0x1A1D), (0x1A5F, 0x1A5F),
    (0x1A7D, 0x1A7E), (0x1A8A, 0x1A8F), (0x1A9A, 0x1A9F), (0x1AAE, 0x1AAF), (0x1ACF, 0x1AFF),
    (0x1B4D, 0x1B4F), (0x1B7F, 0x1B7F), (0x1BF4, 0x1BFB), (0x1C38, 0x1C3A), (0x1C4A, 0x1C4C),
    (0x1C89, 0x1C8F), (0x1CBB, 0x1CBC), (0x1CC8, 0x1CCF), (0x1CFB, 0x1CFF), (0x1F16, 0x1F17),
    (0x1F1E, 0x1F1F), (0x1F46, 0x1F47), (0x1F4E, 0x1F4F), (0x1F58, 0x1F58), (0x1F5A, 0x1F5A),
    (0x1F5C, 0x1F5C), (0x1F5E, 0x1F5E), (0x1F7E, 0x1F7F), (0x1FB5, 0x1FB5), (0x1FC5, 0x1FC5),
    (0x1FD4, 0x1FD5), (0x1FDC, 0x1FDC), (0x1FF0, 0x1FF1), (0x1FF5, 0x1FF5), (0x1FFF, 0x200F),
    (0x2028, 0x202F), (0x205F, 0x206F), (0x2072, 0x2073), (0x208F, 0x208F), (0x209D, 0x209F),
    (0x20C1, 0x20CF), (0x20F1, 0x20FF), (0x218C, 0x218F), (0x2427, 0x243F), (0x244B, 0x245F),
    (0x2B74, 0x2B75), (0x2B96, 0x2B96), (0x2CF4, 0x2CF8), (0x2D26, 0x2D26), (0x2D28, 0x2D2C),
    (0x2D2E, 0x2D2F), (0x2D68, 0x2D6E), (0x2D71, 0x2D7E), (0x2D97, 0x2D9F), (0x2DA7, 0x2DA7),
    (0x2DAF, 0x2DAF), (0x2DB7, 0x2DB7), (0x2DBF, 0x2DBF), (0x2DC7, 0x2DC7), (0x2DCF, 0x2DCF),
    (0x2DD7, 0x2DD7), (0x2DDF, 0x2DDF), (0x2E5E, 0x2E7F), (0x2E9A, 0x2E9A), (0x2EF4, 0x2EFF),
    (0x2FD6, 0x2FEF), (0x2FFC, 0x3000), (0x3040, 0x3040), (0x3097, 0x3098), (0x3100, 0x3104),
    (0x3130, 0x3130), (0x318F, 0x318F), (0x31E4, 0x31EF), (0x321F, 0x321F), (0xA48D, 0xA48F),
    (0xA4C7, 0xA4CF), (0xA62C, 0xA63F), (0xA6F8, 0xA6FF), (0xA7CB, 0xA7CF), (0xA7D2, 0xA7D2),
    (0xA7D4, 0xA7D4), (0xA7DA, 0xA7F1), (0xA82D, 0xA82F), (0xA83A, 0xA83F), (0xA878, 0xA87F),
    (0xA8C6, 0xA8CD), (0xA8DA, 0xA8DF), (0xA954, 0xA95E), (0xA97D, 0xA97F), (0xA9CE, 0xA9CE),
    (0xA9DA, 0xA9DD), (0xA9FF, 0xA9FF), (0xAA37, 0xAA3F), (0xAA4E, 0xAA4F), (0xAA5A, 0xAA5B),
    (0xAAC3, 0xAADA), (0xAAF7, 0xAB00), (0xAB07, 0xAB08), (0xAB0F, 0xAB10), (0xAB17, 0xAB1F),
    (0xAB27, 0xAB27), (0xAB2F, 0xAB2F), (0xAB6C, 0xAB6F), (0xABEE, 0xABEF), (0xABFA, 0xABFF),
    (0xD7A4, 0xD7AF), (0xD7C7, 0xD7CA), (0xD7FC, 0xF8FF), (0xFA6E, 0xFA6F), (0xFADA, 0xFAFF),
    (0xFB07, 0xFB12), (0xFB18, 0xFB1C), (0xFB37, 0xFB37), (0xFB3D, 0xFB3D), (0xFB3F, 0xFB3F),
    (0xFB42, 0xFB42), (0xFB45, 0xFB45), (0xFBC3, 0xFBD2), (0xFD90, 0xFD91), (0xFDC8, 0xFDCE),
    (0xFDD0, 0xFDEF), (0xFE1A, 0xFE1F), (0xFE53, 0xFE53), (0xFE67, 0xFE67), (0xFE6C, 0xFE6F),
    (0xFE75, 0xFE75), (0xFEFD, 0xFF00), (0xFFBF, 0xFFC1), (0xFFC8, 0xFFC9), (0xFFD0, 0xFFD1),
    (0xFFD8, 0xFFD9), (0xFFDD, 0xFFDF), (0xFFE7, 0xFFE7), (0xFFEF, 0xFFFB), (0xFFFE, 0xFFFF),
    (0x1000C, 0x1000C), (0x10027, 0x10027), (0x1003B, 0x1003B), (0x1003E, 0x1003E), (0x1004E, 0x1004F),
    (0x1005E, 0x1007F), (0x100FB, 0x100FF), (0x10103, 0x10106), (0x10134, 0x10136), (0x1018F, 0x1018F),
    (0x1019D, 0x1019F), (0x101A1, 0x101CF), (0x101FE, 0x1027F), (0x1029D, 0x1029F), (0x102D1, 0x102DF),
    (0x102FC, 0x102FF), (0x10324, 0x1032C), (0x1034B, 0x1034F), (0x1037B, 0x1037F), (0x1039E, 0x1039E),
    (0x103C4, 0x103C7), (0x103D6, 0x103FF), (0x1049E, 0x1049F), (0x104AA, 0x104AF), (0x104D4, 0x104D7),
    (0x104FC, 0x104FF), (0x10528, 0x1052F), (0x10564, 0x1056E), (0x1057B, 0x1057B), (0x1058B, 0x1058B),
    (0x10593, 0x10593), (0x10596, 0x10596), (0x105A2, 0x105A2), (0x105B2, 0x105B2), (0x105BA, 0x105BA),
    (0x105BD, 0x105FF), (0x10737, 0x1073F), (0x10756, 0x1075F), (0x10768, 0x1077F), (0x10786, 0x10786),
    (0x107B1, 0x107B1), (0x107BB, 0x107FF), (0x10806, 0x10807), (0x10809, 0x10809), (0x10836, 0x10836),
    (0x10839, 0x1083B), (0x1083D, 0x1083E), (0x10856, 0x10856), (0x1089F, 0x108A6), (0x108B0, 0x108DF),
    (0x108F3, 0x108F3), (0x108F6, 0x108FA), (0x1091C, 0x1091E), (0x1093A, 0x1093E), (0x10940, 0x1097F),
    (0x109B8, 0x109BB), (0x109D0, 0x109D1), (0x10A04, 0x10A04), (0x10A07, 0x10A0B), (0x10A14, 0x10A14),
    (0x10A18, 0x10A18), (0x10A36, 0x10A37), (0x10A3B, 0x10A3E), (0x10A49, 0x10A4F), (0x10A59, 0x10A5F),
    (0x10AA0, 0x10ABF), (0x10AE7, 0x10AEA), (0x10AF7, 0x10AFF), (0x10B36, 0x10B38), (0x10B56, 0x10B57),
    (0x10B73, 0x10B77), (0x10B92, 0x10B98), (0x10B9D, 0x10BA8), (0x10BB0, 0x10BFF), (0x10C49, 0x10C7F),
    (0x10CB3, 0x10CBF), (0x10CF3, 0x10CF9), (0x10D28, 0x10D2F), (0x10D3A, 0x10E5F), (0x10E7F, 0x10E7F),
    (0x10EAA, 0x10EAA), (0x10EAE, 0x10EAF), (0x10EB2, 0x10EFF), (0x10F28, 0x10F2F), (0x10F5A, 0x10F6F),
    (0x10F8A, 0x10FAF), (0x10FCC, 0x10FDF), (0x10FF7, 0x10FFF), (0x1104E, 0x11051), (0x11076, 0x1107E),
    (0x110BD, 0x110BD), (0x110C3, 0x110CF), (0x110E9, 0x110EF), (0x110FA, 0x110FF), (0x11135, 0x11135),
    (0x11148, 0x1114F), (0x11177, 0x1117F), (0x111E0, 0x111E0), (0x111F5, 0x111FF), (0x11212, 0x11212),
    (0x1123F, 0x1127F), (0x11287, 0x11287), (0x11289, 0x11289), (0x1128E, 0x1128E), (0x1129E, 0x1129E),
    (0x112AA, 0x112AF), (0x112EB, 0x112EF), (0x112FA, 0x112FF), (0x11304, 0x11304), (0x1130D, 0x1130E),
    (0x11311, 0x11312), (0x11329, 0x11329), (0x11331, 0x11331), (0x11334, 0x11334), (0x1133A, 0x1133A),
    (0x11345, 0x11346), (0x11349, 0x1134A), (0x1134E, 0x1134F), (0x11351, 0x11356), (0x11358, 0x1135C),
    (0x11364, 0x11365), (0x1136D, 0x1136F), (0x11375, 0x113FF), (0x1145C, 0x1145C), (0x11462, 0x1147F),
    (0x114C8, 0x114CF), (0x114DA, 0x1157F), (0x115B6, 0x115B7), (0x115DE, 0x115FF), (0x11645, 0x1164F),
    (0x1165A, 0x1165F), (0x1166D, 0x1167F), (0x116BA, 0x116BF), (0x116CA, 0x116FF), (0x1171B, 0x1171C),
    (0x1172C, 0x1172F), (0x11747, 0x117FF), (0x1183C, 0x1189F), (0x118F3, 0x118FE), (0x11907, 0x11908),
    (0x1190A, 0x1190B), (0x11914, 0x11914), (0x11917, 0x11917), (0x11936, 0x11936), (0x11939, 0x1193A),
    (0x11947, 0x1194F), (0x1195A, 0x1199F), (0x119A8, 0x119A9), (0x119D8, 0x119D9), (0x119E5, 0x119FF),
    (0x11A48, 0x11A4F), (0x11AA3, 0x11AAF), (0x11AF9, 0x11BFF), (0x11C09, 0x11C09), (0x11C37, 0x11C37),
    (0x11C46, 0x11C4F), (0x11C6D, 0x11C6F), (0x11C90, 0x11C91), (0x11CA8, 0x11CA8), (0x11CB7, 0x11CFF),
    (0x11D07, 0x11D07), (0x11D0A, 0x11D0A), (0x11D37, 0x11D39), (0x11D3B, 0x11D3B), (0x11D3E, 0x11D3E),
    (0x11D48, 0x11D4F), (0x11D5A, 0x11D5F), (0x11D66, 0x11D66), (0x11D69, 0x11D69), (0x11D8F, 0x11D8F),
    (0x11D92, 0x11D92), (0x11D99, 0x11D9F), (0x11DAA, 0x11EDF), (0x11EF9, 0x11FAF), (0x11FB1, 0x11FBF),
    (0x11FF2, 0x11FFE), (0x1239A, 0x123FF), (0x1246F, 0x1246F), (0x12475, 0x1247F), (0x12544, 0x12F8F),
    (0x12FF3, 0x12FFF), (0x1342F, 0x143FF), (0x14647, 0x167FF), (0x16A39, 0x16A3F), (0x16A5F, 0x16A5F),
    (0x16A6A, 0x16A6D), (0x16ABF, 0x16ABF), (0x16ACA, 0x16ACF), (0x16AEE, 0x16AEF), (0x16AF6, 0x16AFF),
    (0x16B46, 0x16B4F), (0x16B5A, 0x16B5A), (0x16B62, 0x16B62), (0x16B78, 0x16B7C), (0x16B90, 0x16E3F),
    (0x16E9B, 0x16EFF), (0x16F4B, 0x16F4E), (0x16F88, 0x16F8E), (0x16FA0, 0x16FDF), (0x16FE5, 0x16FEF),
    (0x16FF2, 0x16FFF), (0x187F8, 0x187FF), (0x18CD6, 0x18CFF), (0x18D09, 0x1AFEF), (0x1AFF4, 0x1AFF4),
    (0x1AFFC, 0x1AFFC), (0x1AFFF, 0x1AFFF), (0x1B123, 0x1B14F), (0x1B153, 0x1B163), (0x1B168, 0x1B16F),
    (0x1B2FC, 0x1BBFF), (0x1BC6B, 0x1BC6F), (0x1BC7D, 0x1BC7F), (0x1BC89, 0x1BC8F), (0x1BC9A, 0x1BC9B),
    (0x1BCA0, 0x1CEFF), (0x1CF2E, 0x1CF2F), (0x1CF47, 0x1CF4F), (0x1CFC4, 0x1CFFF), (0x1D0F6, 0x1D0FF),
    (0x1D127, 0x1D128), (0x1D173, 0x1D17A), (0x1D1EB, 0x1D1FF), (0x1D246, 0x1D2DF), (0x1D2F4, 0x1D2FF),
    (0x1D357, 0x1D35F), (0x1D379, 0x1D3FF), (0x1D455, 0x1D455), (0x1D49D, 0x1D49D), (0x1D4A0, 0x1D4A1),
    (0x1D4A3, 0x1D4A4), (0x1D4A7, 0x1D4A8), (0x1D4AD, 0x1D4AD), (0x1D4BA, 0x1D4BA), (0x1D4BC, 0x1D4BC),
    (0x1D4C4, 0x1D4C4), (0x1D506, 0x1D506), (0x1D50B, 0x1D50C), (0x1D515, 0x1D515), (0x1D51D, 0x1D51D),
    (0x1D53A, 0x1D53A), (0x1D53F, 0x1D53F), (0x1D545, 0x1D545), (0x1D547, 0x1D549), (0x1D551, 0x1D551),
    (0x1D6A6, 0x1D6A7), (0x1D7CC, 0x1D7CD), (0x1DA8C, 0x1DA9A), (0x1DAA0, 0x1DAA0), (0x1DAB0, 0x1DEFF),
    (0x1DF1F, 0x1DFFF), (0x1E007, 0x1E007), (0x1E019, 0x1E01A), (0x1E022, 0x1E022), (0x1E025, 0x1E025),
    (0x1E02B, 0x1E0FF), (0x1E12D, 0x1E12F), (0x1E13E, 0x1E13F), (0x1E14A, 0x1E14D), (0x1E150, 0x1E28F),
    (0x1E2AF, 0x1E2BF), (0x1E2FA, 0x1E2FE), (0x1E300, 0x1E7DF), (0x1E7E7, 0x1E7E7), (0x1E7EC, 0x1E7EC),
    (0x1E7EF, 0x1E7EF), (0x1E7FF, 0x1E7FF), (0x1E8C5, 0x1E8C6), (0x1E8D7, 0x1E8FF), (0x1E94C, 0x1E94F),
    (0x1E95A, 0x1E95D), (0x1E960, 0x1EC70), (0x1ECB5, 0x1ED00), (0x1ED3E, 0x1EDFF), (0x1EE04, 0x1EE04),
    (0x1EE20, 0x1EE20), (0x1EE23, 0x1EE23), (0x1EE25, 0x1EE26), (0x1EE28, 0x1EE28), (0x1EE33, 0x1EE33),
    (0x1EE38, 0x1EE38), (0x1EE3A, 0x1EE3A), (0x1EE3C, 0x1EE41), (0x1EE43, 0x1EE46), (0x1EE48, 0x1EE48),
    (0x1EE4A, 0x1EE4A), (0x1EE4C, 0x1EE4C), (0x1EE50, 0x1EE50), (0x1EE53, 0x1EE53), (0x1EE55, 0x1EE56),
    (0x1EE58, 0x1EE58), (0x1EE5A, 0x1EE5A), (0x1EE5C, 0x1EE5C), (0x1EE5E, 0x1EE5E), (0x1EE60, 0x1EE60),
    (0x1EE63, 0x1EE63), (0x1EE65, 0x1EE66), (0x1EE6B, 0x1EE6B), (0x1EE73, 0x1EE73), (0x1EE78, 0x1EE78),
    (0x1EE7D, 0x1EE7D), (0x1EE7F, 0x1EE7F), (0x1EE8A, 0x1EE8A), (0x1EE9C, 0x1EEA0), (0x1EEA4, 0x1EEA4),
    (0x1EEAA, 0x1EEAA), (0x1EEBC, 0x1EEEF), (0x1EEF2, 0x1EFFF), (0x1F02C, 0x1F02F), (0x1F094, 0x1F09F),
    (0x1F0AF, 0x1F0B0), (0x1F0C0, 0x1F0C0), (0x1F0D0, 0x1F0D0), (0x1F0F6, 0x1F0FF), (0x1F1AE, 0x1F1E5),
    (0x1F203, 0x1F20F), (0x1F23C, 0x1F23F), (0x1F249, 0x1F24F), (0x1F252, 0x1F25F), (0x1F266, 0x1F2FF),
    (0x1F6D8, 0x1F6DC), (0x1F6ED, 0x1F6EF), (0x1F6FD, 0x1F6FF), (0x1F774, 0x1F77F), (0x1F7D9, 0x1F7DF),
    (0x1F7EC, 0x1F7EF), (0x1F7F1, 0x1F7FF), (0x1F80C, 0x1F80F), (0x1F848, 0x1F84F), (0x1F85A, 0x1F85F),
    (0x1F888, 0x1F88F), (0x1F8AE, 0x1F8AF), (0x1F8B2, 0x1F8FF), (0x1FA54, 0x1FA5F), (0x1FA6E, 0x1FA6F),
    (0x1FA75, 0x1FA77), (0x1FA7D, 0x1FA7F), (0x1FA87, 0x1FA8F), (0x1FAAD, 0x1FAAF), (0x1FABB, 0x1FABF),
    (0x1FAC6, 0x1FACF), (0x1FADA, 0x1FADF), (0x1FAE8, 0x1FAEF), (0x1FAF7, 0x1FAFF), (0x1FB93, 0x1FB93),
    (0x1FBCB, 0x1FBEF), (0x1FBFA, 0x1FFFF), (0x2A6E0, 0x2A6FF), (0x2B739, 0x2B73F), (0x2B81E, 0x2B81F),
    (0x2CEA2, 0x2CEAF), (0x2EBE1, 0x2F7FF), (0x2FA1E, 0x2FFFF), (0x3134B, 0xE00FF), (0xE01F0, 0x10FFFF),
];

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

    #[test]
    fn bracketed_hosts() {
        let msg = |u: &str| match urlsplit(u) {
            Err(CinderLocationError::InvalidUrl { message }) => Some(message),
            _ => None,
        };
        assert_eq!(msg("x://[::1]:80/p"), None);
        assert_eq!(msg("x://[fe80::1%eth0]"), None);
        assert_eq!(msg("x://[::ffff:1.2.3.4]"), None);
        assert_eq!(msg("x://[v1f.anything]"), None);
        assert_eq!(msg("x://[1.2.3.4]").as_deref(), Some("An IPv4 address cannot be in brackets"));
        assert_eq!(msg("x://[v1.]").as_deref(), Some("IPvFuture address is invalid"));
        assert_eq!(msg("x://[fe80::1%]").as_deref(), Some("'fe80::1%' does not appear to be an IPv4 or IPv6 address"));
        assert_eq!(
            msg("x://[::ffff:01.2.3.4]").as_deref(),
            Some("'::ffff:01.2.3.4' does not appear to be an IPv4 or IPv6 address")
        );
        assert_eq!(
            msg("x://[\u{85}\u{e000}\u{10ffff}é]").as_deref(),
            Some("'\\x85\\ue000\\U0010ffffé' does not appear to be an IPv4 or IPv6 address")
        );
    }
}
