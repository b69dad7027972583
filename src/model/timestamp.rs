//! UTC timestamps as Cinder and Glance exchange them (ISO 8601 strings).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// A point in time, normalised to UTC, to the microsecond.
///
/// Text is read as Cinder reads Glance's `created_at` / `updated_at`:
/// `oslo_utils.timeutils.parse_isotime`, that is the `iso8601` library's
/// `parse_date` building a Python `datetime`. So `2024-01-01T00:00:00Z`,
/// `2024-01-01T02:00:00+02:00`, `2024-01-01 00:00:00`, `20240101T000000`
/// and `2024-01-01` are accepted (without an offset the time is UTC, the
/// way Cinder stores naive UTC datetimes), and what Python refuses is
/// refused with Python's reason: an offset of a day or more (`+24:00`), a
/// leap second (`23:59:60`: "second must be in 0..59"), hour 24, day 30 of
/// February, year 0 or a five-digit year. Fractions of a second are cut to
/// microseconds as `datetime` keeps them. An instant whose UTC date falls
/// outside years 1 to 9999 (`9999-12-31T23:59:59-01:00`) is refused too:
/// Cinder converts these timestamps to UTC, and Python's `datetime`
/// cannot hold it there.
///
/// Comparison and equality are on the instant, so `+02:00` and `Z`
/// spellings of the same moment are equal, as `image/cache.py:
/// _should_update_entry` compares them after converting to UTC.
///
/// ```
/// use cinder_flow::model::Timestamp;
///
/// let a: Timestamp = "2024-01-01T02:00:00+02:00".parse().unwrap();
/// assert_eq!(a.to_string(), "2024-01-01T00:00:00Z");
/// let e = "2016-12-31T23:59:60Z".parse::<Timestamp>().unwrap_err();
/// assert_eq!(e.reason, "second must be in 0..59");
/// assert!("2024-01-01T00:00:00+24:00".parse::<Timestamp>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

/// A timestamp string that Cinder would not read, and why (Python's
/// message, where Python raises).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an ISO 8601 timestamp Cinder reads: {value:?} ({reason})")]
pub struct TimestampError {
    /// The rejected text.
    pub value: String,
    /// Why: the message of the `ParseError` that `iso8601.parse_date`
    /// raises for it, or the UTC range.
    pub reason: String,
}

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(OffsetDateTime::UNIX_EPOCH);

    /// From seconds since the Unix epoch.
    pub fn from_unix(secs: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp(secs).ok().map(Self)
    }

    /// Seconds since the Unix epoch.
    pub fn unix(self) -> i64 {
        self.0.unix_timestamp()
    }

    /// This timestamp plus `secs` seconds (saturating at the representable
    /// range).
    pub fn plus_seconds(self, secs: i64) -> Self {
        self.0.checked_add(time::Duration::seconds(secs)).map(Self).unwrap_or(self)
    }
}

/// The parts `iso8601`'s regular expression captured, as byte ranges of
/// the input (`None`: the group did not take part in the match).
#[derive(Clone, Copy, Default)]
struct Caps {
    month: Option<(usize, usize)>,
    day: Option<(usize, usize)>,
    hour: Option<(usize, usize)>,
    minute: Option<(usize, usize)>,
    second: Option<(usize, usize)>,
    fraction: Option<(usize, usize)>,
    /// `Z`, or the sign, the hours and the optional minutes.
    zone: Option<Zone>,
}

#[derive(Clone, Copy)]
enum Zone {
    Utc,
    Offset { negative: bool, hours: (usize, usize), minutes: Option<(usize, usize)> },
}

/// What to try after an element matched: the rest of the pattern.
type Rest<'a> = &'a mut dyn FnMut(usize, Caps) -> Option<Caps>;

/// A backtracking matcher for the `iso8601` library's `ISO8601_REGEX`
/// (version 2): each element tries its alternatives in the order Python's
/// `re` does (greedy quantifiers longest first, `{0,1}` present first) and
/// hands the rest of the input to the next, so the groups captured are
/// the ones Python's first match has.
struct Matcher<'s> {
    b: &'s [u8],
}

impl Matcher<'_> {
    fn digits(&self, at: usize, n: usize) -> bool {
        self.b.get(at..at + n).is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.b.get(at).copied()
    }

    /// Python's `$` without MULTILINE: the end, or a final `\n`.
    fn at_end(&self, at: usize) -> bool {
        at == self.b.len() || (at + 1 == self.b.len() && self.b[at] == b'\n')
    }

    fn matches(&self) -> Option<Caps> {
        if !self.digits(0, 4) {
            return None;
        }
        let caps = Caps::default();
        // `(month (day (time)?)?)?$`
        self.month(4, caps, &mut |i, c| self.at_end(i).then_some(c)).or_else(|| self.at_end(4).then_some(caps))
    }

    /// `(-(?P<monthdash>[0-9]{1,2}) | (?P<month>[0-9]{2})(?!$)) (day...)?`
    fn month(&self, at: usize, caps: Caps, rest: Rest<'_>) -> Option<Caps> {
        if self.byte(at) == Some(b'-') {
            for n in [2, 1] {
                if self.digits(at + 1, n) {
                    let c = Caps { month: Some((at + 1, n)), ..caps };
                    if let Some(m) = self.day(at + 1 + n, c, rest).or_else(|| rest(at + 1 + n, c)) {
                        return Some(m);
                    }
                }
            }
        }
        if self.digits(at, 2) && !self.at_end(at + 2) {
            let c = Caps { month: Some((at, 2)), ..caps };
            return self.day(at + 2, c, rest).or_else(|| rest(at + 2, c));
        }
        None
    }

    /// `(-(?P<daydash>[0-9]{1,2}) | (?P<day>[0-9]{2})) (time)?`
    fn day(&self, at: usize, caps: Caps, rest: Rest<'_>) -> Option<Caps> {
        if self.byte(at) == Some(b'-') {
            for n in [2, 1] {
                if self.digits(at + 1, n) {
                    let c = Caps { day: Some((at + 1, n)), ..caps };
                    if let Some(m) = self.time(at + 1 + n, c, rest).or_else(|| rest(at + 1 + n, c)) {
                        return Some(m);
                    }
                }
            }
        }
        if self.digits(at, 2) {
            let c = Caps { day: Some((at, 2)), ..caps };
            return self.time(at + 2, c, rest).or_else(|| rest(at + 2, c));
        }
        None
    }

    /// `[ T] hour (:?minute)? (:?second([.,]fraction)?)? (zone)?`
    fn time(&self, at: usize, caps: Caps, rest: Rest<'_>) -> Option<Caps> {
        if !matches!(self.byte(at), Some(b' ' | b'T')) || !self.digits(at + 1, 2) {
            return None;
        }
        let caps = Caps { hour: Some((at + 1, 2)), ..caps };
        let at = at + 3;
        // `(:{0,1}(?P<minute>[0-9]{2})){0,1}`
        for colon in [true, false] {
            let i = if colon && self.byte(at) == Some(b':') {
                at + 1
            } else if colon {
                continue;
            } else {
                at
            };
            if self.digits(i, 2) {
                let c = Caps { minute: Some((i, 2)), ..caps };
                if let Some(m) = self.second(i + 2, c, rest) {
                    return Some(m);
                }
            }
        }
        self.second(at, caps, rest)
    }

    /// `(:{0,1}(?P<second>[0-9]{1,2})([.,](?P<second_fraction>[0-9]+)){0,1}){0,1}` then the zone.
    fn second(&self, at: usize, caps: Caps, rest: Rest<'_>) -> Option<Caps> {
        for colon in [true, false] {
            let i = if colon && self.byte(at) == Some(b':') {
                at + 1
            } else if colon {
                continue;
            } else {
                at
            };
            for n in [2, 1] {
                if !self.digits(i, n) {
                    continue;
                }
                let c = Caps { second: Some((i, n)), ..caps };
                let j = i + n;
                if matches!(self.byte(j), Some(b'.' | b',')) {
                    let run = self.b[j + 1..].iter().take_while(|d| d.is_ascii_digit()).count();
                    for len in (1..=run).rev() {
                        let c = Caps { fraction: Some((j + 1, len)), ..c };
                        if let Some(m) = self.zone(j + 1 + len, c, rest) {
                            return Some(m);
                        }
                    }
                }
                if let Some(m) = self.zone(j, c, rest) {
                    return Some(m);
                }
            }
        }
        self.zone(at, caps, rest)
    }

    /// `(Z | [-+][0-9]{2}:{0,1}([0-9]{2}){0,1}){0,1}` then the rest.
    fn zone(&self, at: usize, caps: Caps, rest: Rest<'_>) -> Option<Caps> {
        if self.byte(at) == Some(b'Z') {
            if let Some(m) = rest(at + 1, Caps { zone: Some(Zone::Utc), ..caps }) {
                return Some(m);
            }
        }
        if let Some(sign @ (b'-' | b'+')) = self.byte(at) {
            if self.digits(at + 1, 2) {
                let hours = (at + 1, 2);
                let negative = sign == b'-';
                let after = at + 3;
                for colon in [true, false] {
                    let i = if colon && self.byte(after) == Some(b':') {
                        after + 1
                    } else if colon {
                        continue;
                    } else {
                        after
                    };
                    if self.digits(i, 2) {
                        let zone = Zone::Offset { negative, hours, minutes: Some((i, 2)) };
                        if let Some(m) = rest(i + 2, Caps { zone: Some(zone), ..caps }) {
                            return Some(m);
                        }
                    }
                    let zone = Zone::Offset { negative, hours, minutes: None };
                    if let Some(m) = rest(i, Caps { zone: Some(zone), ..caps }) {
                        return Some(m);
                    }
                }
            }
        }
        rest(at, caps)
    }
}

/// `int(Decimal("0." + fraction) * Decimal("1000000.0"))` in Python's
/// default decimal context: the product is rounded (half to even) to 28
/// significant digits before `int` cuts it, so a fraction of more than 28
/// significant digits may round up into the microseconds (and to a whole
/// second, which `datetime` then refuses).
fn microseconds(fraction: &[u8]) -> u32 {
    let zeros = fraction.iter().take_while(|d| **d == b'0').count();
    let significant = &fraction[zeros..];
    // The product's coefficient is the significant digits followed by 7
    // zeros (`1000000.0` is 10000000 tenths): rounding it to 28 digits
    // drops those zeros first, so 28 significant digits of the fraction
    // are kept.
    const KEEP: usize = 28;
    let mut digits: Vec<u8> = fraction.to_vec();
    if significant.len() > KEEP {
        let cut = zeros + KEEP;
        let (first, after) = (fraction[cut], &fraction[cut + 1..]);
        let up = match first {
            b'6'..=b'9' => true,
            b'5' => after.iter().any(|d| *d != b'0') || (fraction[cut - 1] - b'0') % 2 == 1,
            _ => false,
        };
        digits.truncate(cut);
        if up {
            // Carry from the last kept digit leftwards.
            let mut i = cut;
            loop {
                if i == 0 {
                    // 0.999... rounded to 1.0: a whole second.
                    return 1_000_000;
                }
                i -= 1;
                if digits[i] == b'9' {
                    digits[i] = b'0';
                } else {
                    digits[i] += 1;
                    break;
                }
            }
        }
    }
    digits.resize(digits.len().max(6), b'0');
    digits[..6].iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
}

fn number(b: &[u8], (at, n): (usize, usize)) -> i64 {
    b[at..at + n].iter().fold(0, |acc, d| acc * 10 + i64::from(d - b'0'))
}

/// `iso8601.parse_date(s)`: the instant, or the message of the
/// `ParseError` Python raises (the `datetime` constructor's, checked in
/// its order; the offset is built first, as an argument).
fn parse_iso8601(s: &str) -> Result<OffsetDateTime, String> {
    let b = s.as_bytes();
    let caps =
        Matcher { b }.matches().ok_or_else(|| format!("Unable to parse date string {}", crate::pyvalue::py_repr(s)))?;
    let get = |g: Option<(usize, usize)>, default: i64| g.map_or(default, |r| number(b, r));
    let offset = match caps.zone {
        None | Some(Zone::Utc) => 0,
        Some(Zone::Offset { negative, hours, minutes }) => {
            let total = get(Some(hours), 0) * 3600 + get(minutes, 0) * 60;
            if negative {
                -total
            } else {
                total
            }
        }
    };
    if offset.abs() >= 24 * 3600 {
        // `repr(timedelta)`: days (floor) and the seconds left, zeros
        // left out.
        let (days, seconds) = (offset.div_euclid(86_400), offset.rem_euclid(86_400));
        let parts: Vec<String> = [("days", days), ("seconds", seconds)]
            .iter()
            .filter(|(_, v)| *v != 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        return Err(format!(
            "offset must be a timedelta strictly between -timedelta(hours=24) and timedelta(hours=24), not \
             datetime.timedelta({}).",
            parts.join(", ")
        ));
    }
    let year = number(b, (0, 4));
    let (month, day) = (get(caps.month, 1), get(caps.day, 1));
    let (hour, minute, second) = (get(caps.hour, 0), get(caps.minute, 0), get(caps.second, 0));
    let micro = caps.fraction.map_or(0, |(at, n)| microseconds(&b[at..at + n]));
    if !(1..=9999).contains(&year) {
        return Err(format!("year {year} is out of range"));
    }
    let month = u8::try_from(month).ok().and_then(|m| Month::try_from(m).ok()).ok_or("month must be in 1..12")?;
    let date = u8::try_from(day)
        .ok()
        .and_then(|d| Date::from_calendar_date(year as i32, month, d).ok())
        .ok_or("day is out of range for month")?;
    if !(0..=23).contains(&hour) {
        return Err("hour must be in 0..23".into());
    }
    if !(0..=59).contains(&minute) {
        return Err("minute must be in 0..59".into());
    }
    if !(0..=59).contains(&second) {
        return Err("second must be in 0..59".into());
    }
    if micro > 999_999 {
        return Err("microsecond must be in 0..999999".into());
    }
    let time = Time::from_hms_micro(hour as u8, minute as u8, second as u8, micro)
        .map_err(|_| "time out of range".to_owned())?;
    let offset = UtcOffset::from_whole_seconds(offset as i32).map_err(|_| "offset out of range".to_owned())?;
    let local = PrimitiveDateTime::new(date, time).assume_offset(offset);
    // Cinder converts to UTC (`astimezone`, naive UTC in the database);
    // Python cannot hold a UTC date outside years 1..9999.
    local
        .checked_to_offset(UtcOffset::UTC)
        .filter(|utc| (1..=9999).contains(&utc.year()))
        .ok_or_else(|| "in UTC the date is outside years 1 to 9999, which Python's datetime cannot hold".to_owned())
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_iso8601(s).map(Self).map_err(|reason| TimestampError { value: s.to_owned(), reason })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.format(&Rfc3339) {
            Ok(s) => f.write_str(&s),
            Err(_) => write!(f, "@{}", self.0.unix_timestamp()),
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utc_and_offsets_to_the_same_instant() {
        let a: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let b: Timestamp = "2024-01-01T02:00:00+02:00".parse().unwrap();
        let c: Timestamp = "2024-01-01T00:00:00".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.to_string(), "2024-01-01T00:00:00Z");
        assert_eq!(a.plus_seconds(3).to_string(), "2024-01-01T00:00:03Z");
    }

    #[test]
    fn rejects_garbage_with_the_value() {
        let e = "yesterday".parse::<Timestamp>().unwrap_err();
        assert_eq!(e.value, "yesterday");
        assert_eq!(e.reason, "Unable to parse date string 'yesterday'");
    }

    #[test]
    fn python_refusals_are_refused_with_pythons_reason() {
        let reason = |s: &str| s.parse::<Timestamp>().unwrap_err().reason;
        assert!(reason("2024-01-01T00:00:00+24:00").starts_with("offset must be a timedelta strictly between"));
        assert!(reason("2024-01-01T00:00:00-23:60").starts_with("offset must be"));
        assert_eq!(reason("2016-12-31T23:59:60Z"), "second must be in 0..59");
        assert_eq!(reason("2024-01-01T24:00:00Z"), "hour must be in 0..23");
        assert_eq!(reason("2024-02-30T00:00:00Z"), "day is out of range for month");
        assert_eq!(reason("0000-01-01T00:00:00Z"), "year 0 is out of range");
        assert!(reason("9999-12-31T23:59:59-01:00").contains("outside years 1 to 9999"));
        assert!(reason("0001-01-01T00:00:00+01:00").contains("outside years 1 to 9999"));
        // Tolerated by Python, so here too.
        for ok in ["2024-01-01T00:00:00+23:59", "2024-01-01T00:00:00+05:60", "20240101T000000Z", "2024", "2024-1-5"] {
            ok.parse::<Timestamp>().unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!("2024-01-01T00:00:00+05:60".parse::<Timestamp>().unwrap().to_string(), "2023-12-31T18:00:00Z");
    }

    #[test]
    fn backtracks_as_pythons_re_does() {
        // `-12` then nothing fits `3`; Python backs off to month 1, day 23.
        assert_eq!("2024-123".parse::<Timestamp>().unwrap().to_string(), "2024-01-23T00:00:00Z");
        // A final newline is allowed by `$`.
        assert!("2024-01-01T00:00:00Z\n".parse::<Timestamp>().is_ok());
        assert!("2024-01-01T00:00:00Z\n\n".parse::<Timestamp>().is_err());
    }

    #[test]
    fn fractions_are_cut_to_microseconds_after_decimal_rounding() {
        assert_eq!(microseconds(b"5"), 500_000);
        assert_eq!(microseconds(b"1234567"), 123_456);
        assert_eq!(microseconds(&[b'9'; 28]), 999_999);
        assert_eq!(microseconds(&[b'9'; 29]), 1_000_000);
        let mut even = vec![b'9'; 27];
        even.extend(b"85"); // half, and 8 is even: down
        assert_eq!(microseconds(&even), 999_999);
        let mut f = vec![b'0'];
        f.extend([b'9'; 30]);
        assert_eq!(microseconds(&f), 100_000);
        assert_eq!(
            format!("2024-01-01T00:00:00.{}Z", "9".repeat(29)).parse::<Timestamp>().unwrap_err().reason,
            "microsecond must be in 0..999999"
        );
    }
}
