//! Column values in and out: the same accessors for MySQL and SQLite rows,
//! and timestamps in the form each dialect stores.

use sqlx::Row;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::model::Timestamp;

use super::{Dialect, SqlError};

/// Typed access to a row's columns by name, for both drivers.
pub(crate) trait Cols {
    /// A text column (`NULL` is `None`).
    fn text(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
    /// An integer or boolean column.
    fn int(&self, col: &str) -> Result<Option<i64>, sqlx::Error>;
    /// A `DATETIME` column, read as UTC (Cinder stores naive UTC).
    fn time(&self, col: &str) -> Result<Option<Timestamp>, sqlx::Error>;
}

impl Cols for sqlx::mysql::MySqlRow {
    fn text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(col)
    }

    fn int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(col)
    }

    fn time(&self, col: &str) -> Result<Option<Timestamp>, sqlx::Error> {
        let t: Option<PrimitiveDateTime> = self.try_get(col)?;
        Ok(t.and_then(|t| from_offset(t.assume_utc())))
    }
}

impl Cols for sqlx::sqlite::SqliteRow {
    fn text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(col)
    }

    fn int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(col)
    }

    fn time(&self, col: &str) -> Result<Option<Timestamp>, sqlx::Error> {
        let t: Option<String> = self.try_get(col)?;
        t.map(|s| parse_sqlite_time(&s).ok_or_else(|| sqlx::Error::Decode(format!("not a datetime: {s:?}").into())))
            .transpose()
    }
}

/// SQLAlchemy's SQLite `DATETIME` text: `2024-01-01 00:00:00.000000`
/// (the fraction optional).
const SQLITE_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]");
const SQLITE_TIME_OUT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]");
const MYSQL_TIME_OUT: &[FormatItem<'static>] = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

fn parse_sqlite_time(s: &str) -> Option<Timestamp> {
    let t = PrimitiveDateTime::parse(s.trim(), SQLITE_TIME).ok()?;
    from_offset(t.assume_utc())
}

/// [`Timestamp`] has no constructor from a `time` value with fractions;
/// its RFC 3339 text is the lossless bridge.
fn from_offset(t: OffsetDateTime) -> Option<Timestamp> {
    t.format(&time::format_description::well_known::Rfc3339).ok()?.parse().ok()
}

fn to_offset(t: Timestamp) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(&t.to_string(), &time::format_description::well_known::Rfc3339).ok()
}

/// A timestamp as the text to bind for a `DATETIME` column: MySQL's
/// `DATETIME` (no fraction in Cinder's schema; truncated here, rather than
/// left to the server, which rounds or truncates depending on its mode) or
/// SQLAlchemy's SQLite text with microseconds.
pub(crate) fn time_param(d: Dialect, t: Timestamp) -> Result<String, SqlError> {
    let bad = || SqlError::InvalidRow { table: "-", id: t.to_string(), reason: "timestamp out of range".into() };
    let t = to_offset(t).ok_or_else(bad)?;
    let format = match d {
        Dialect::MySql => MYSQL_TIME_OUT,
        Dialect::Sqlite => SQLITE_TIME_OUT,
    };
    t.format(format).map_err(|_| bad())
}

/// Now, in the form of [`time_param`] (`timeutils.utcnow()` upstream).
pub(crate) fn now_param(d: Dialect) -> Result<String, SqlError> {
    let now = from_offset(OffsetDateTime::now_utc()).ok_or_else(|| SqlError::InvalidRow {
        table: "-",
        id: "now".into(),
        reason: "clock out of range".into(),
    })?;
    time_param(d, now)
}

/// A non-negative integer column that must be set, e.g. a size.
pub(crate) fn required_u64(table: &'static str, id: &str, col: &str, v: Option<i64>) -> Result<u64, SqlError> {
    let v = v.ok_or_else(|| SqlError::InvalidRow { table, id: id.to_owned(), reason: format!("{col} is NULL") })?;
    u64::try_from(v).map_err(|_| SqlError::InvalidRow { table, id: id.to_owned(), reason: format!("{col} is {v}") })
}

/// A decode failure of a column, as a query error of `operation`.
pub(crate) fn decode(operation: &str) -> impl Fn(sqlx::Error) -> SqlError + '_ {
    move |e| SqlError::query(operation.to_owned(), e)
}

/// `?, ?, ?` for `n` parameters.
pub(crate) fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_text_round_trips_with_microseconds() {
        let t: Timestamp = "2024-05-06T07:08:09.123456Z".parse().unwrap();
        let s = time_param(Dialect::Sqlite, t).unwrap();
        assert_eq!(s, "2024-05-06 07:08:09.123456");
        assert_eq!(parse_sqlite_time(&s), Some(t));
        assert_eq!(parse_sqlite_time("2024-05-06 07:08:09"), Some("2024-05-06T07:08:09Z".parse().unwrap()));
        assert_eq!(parse_sqlite_time("yesterday"), None);
    }

    #[test]
    fn mysql_text_is_truncated_to_the_second() {
        let t: Timestamp = "2024-05-06T07:08:09.999Z".parse().unwrap();
        assert_eq!(time_param(Dialect::MySql, t).unwrap(), "2024-05-06 07:08:09");
    }

    #[test]
    fn placeholder_lists() {
        assert_eq!(placeholders(0), "");
        assert_eq!(placeholders(3), "?, ?, ?");
    }
}
