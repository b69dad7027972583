//! `cinder.conf`'s `[database] connection` URL, read the way SQLAlchemy and
//! oslo.db read it, and translated to sqlx's connection options.
//!
//! Accepted forms (the dialect's `+driver` part names a Python DB-API
//! module and is ignored, whichever it is):
//!
//! * `mysql+pymysql://user:password@host:port/database?charset=utf8`,
//!   also `mysql://`, `mariadb+pymysql://`, an IPv6 host in brackets, and
//!   `?unix_socket=/path` instead of a host. User and password are
//!   percent-decoded, as SQLAlchemy's `make_url` does.
//! * `sqlite:///relative/path` (relative to the working directory),
//!   `sqlite:////absolute/path`, and `sqlite://` (an in-memory database).
//!
//! Query options: `charset` (MySQL); `plugin` (oslo.db's connection
//! plugins such as devstack's `dbcounter`, which only count queries) and
//! `binary_prefix` (a PyMySQL encoding switch that does not apply here) are
//! accepted and ignored; any other option, TLS (`ssl_*`) ones included, is
//! refused with [`SqlError::UnsupportedOption`] rather than silently
//! dropped (this build of the crate speaks no TLS).
//!
//! The password never appears in `Debug` or `Display` output: both print
//! the URL with `***` in its place.
//!
//! ```
//! use cinder_flow::sql::DatabaseUrl;
//!
//! let url = DatabaseUrl::parse("mysql+pymysql://cinder:s3cret@127.0.0.1:3306/cinder?charset=utf8").unwrap();
//! assert_eq!(url.to_string(), "mysql+pymysql://cinder:***@127.0.0.1:3306/cinder?charset=utf8");
//! assert!(!format!("{url:?}").contains("s3cret"));
//!
//! let url = DatabaseUrl::parse("sqlite:////var/lib/cinder/cinder.sqlite").unwrap();
//! assert_eq!(url.to_string(), "sqlite:////var/lib/cinder/cinder.sqlite");
//! ```

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::config::CinderConf;

use super::SqlError;

/// A parsed `[database] connection` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    /// The text as written, with the password masked (kept for messages).
    redacted: String,
    target: Target,
}

/// Where a [`DatabaseUrl`] points (`Debug` masks the password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    MySql(MySqlTarget),
    Sqlite(SqliteTarget),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MySqlTarget {
    pub(crate) user: String,
    pub(crate) password: Option<Secret>,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) socket: Option<PathBuf>,
    pub(crate) database: Option<String>,
    pub(crate) charset: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SqliteTarget {
    File(PathBuf),
    Memory,
}

/// A password: kept out of every `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// MySQL's default port, as PyMySQL uses it when the URL names none.
const MYSQL_PORT: u16 = 3306;

/// oslo.config's default for `state_path` in Cinder (`cinder/common/config.py`).
const DEFAULT_STATE_PATH: &str = "/var/lib/cinder";

impl DatabaseUrl {
    /// Parses a SQLAlchemy URL as `cinder.conf` holds it.
    pub fn parse(text: &str) -> Result<Self, SqlError> {
        let text = text.trim();
        let redacted = redact(text);
        let bad = |reason: &str| SqlError::InvalidUrl { url: redacted.clone(), reason: reason.to_owned() };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("no `://` after the dialect"))?;
        let dialect = scheme.split_once('+').map_or(scheme, |(d, _)| d);
        let target = match dialect {
            "mysql" | "mariadb" => Target::MySql(parse_mysql(rest, &bad)?),
            "sqlite" => Target::Sqlite(parse_sqlite(rest, &bad)?),
            _ => return Err(SqlError::UnsupportedDialect { dialect: scheme.to_owned() }),
        };
        Ok(Self { redacted, target })
    }

    /// The `[database] connection` option of a `cinder.conf`, with oslo.config's
    /// `$option` / `${option}` substitution from `[database]` and `[DEFAULT]`
    /// (`$state_path` defaults to Cinder's `/var/lib/cinder`; `$$` is a `$`).
    ///
    /// ```
    /// use cinder_flow::config::CinderConf;
    /// use cinder_flow::sql::DatabaseUrl;
    ///
    /// let conf = CinderConf::parse("[DEFAULT]\nstate_path = /srv/cinder\n[database]\nconnection = sqlite:///$state_path/cinder.sqlite\n").unwrap();
    /// let url = DatabaseUrl::from_cinder_conf(&conf).unwrap();
    /// assert_eq!(url.to_string(), "sqlite:////srv/cinder/cinder.sqlite");
    /// ```
    pub fn from_cinder_conf(conf: &CinderConf) -> Result<Self, SqlError> {
        let raw = conf.value("database", "connection").ok_or(SqlError::NoConnection)?;
        let lookup = |name: &str| {
            conf.value("database", name)
                .or_else(|| conf.value("DEFAULT", name))
                .or_else(|| (name == "state_path").then(|| DEFAULT_STATE_PATH.to_owned()))
        };
        let text = substitute(&raw, &lookup).map_err(|name| SqlError::InvalidUrl {
            url: redact(&raw),
            reason: format!("${name} names no option in [database] or [DEFAULT]"),
        })?;
        Self::parse(&text)
    }

    /// `mysql` or `sqlite`.
    pub fn dialect(&self) -> &'static str {
        match self.target {
            Target::MySql(_) => "mysql",
            Target::Sqlite(_) => "sqlite",
        }
    }

    /// Where it points, for messages: `host:port/database`, the socket, or
    /// the SQLite file (never the user or password).
    pub fn location(&self) -> String {
        match &self.target {
            Target::MySql(m) => {
                let db = m.database.as_deref().unwrap_or("");
                match &m.socket {
                    Some(s) => format!("{}/{db}", s.display()),
                    None if m.host.contains(':') => format!("[{}]:{}/{db}", m.host, m.port),
                    None => format!("{}:{}/{db}", m.host, m.port),
                }
            }
            Target::Sqlite(SqliteTarget::File(p)) => p.display().to_string(),
            Target::Sqlite(SqliteTarget::Memory) => ":memory:".to_owned(),
        }
    }

    /// The user name of a MySQL URL.
    pub fn user(&self) -> Option<&str> {
        match &self.target {
            Target::MySql(m) => Some(&m.user),
            Target::Sqlite(_) => None,
        }
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }
}

impl FromStr for DatabaseUrl {
    type Err = SqlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted)
    }
}

/// The URL with its password replaced by `***`. Works on malformed text
/// too, so errors about a bad URL can show it.
pub(crate) fn redact(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        // No scheme: whatever precedes an `@` may be a secret.
        return match text.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => text.to_owned(),
        };
    };
    match split_userinfo(rest) {
        // Masked up to the last `@` of the text, not the first: an
        // unencoded `@` in a password must not leave its tail in view.
        (Some(user), Some(_), _) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://{user}:***@{host}"),
            None => format!("{scheme}://{user}:***"),
        },
        _ => text.to_owned(),
    }
}

/// SQLAlchemy's URL pattern for the part after `://`:
/// `(?:(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@)?` then the host.
/// Returns the user, the password and the rest. A password may hold `/`
/// (but not `@`); a user may hold `@` when a later `@` ends it.
fn split_userinfo(rest: &str) -> (Option<&str>, Option<&str>, &str) {
    let user_end = rest.find([':', '/']).unwrap_or(rest.len());
    if rest[user_end..].starts_with(':') {
        if let Some(at) = rest[user_end + 1..].find('@') {
            let pw_end = user_end + 1 + at;
            return (Some(&rest[..user_end]), Some(&rest[user_end + 1..pw_end]), &rest[pw_end + 1..]);
        }
    }
    match rest[..user_end].rfind('@') {
        Some(at) => (Some(&rest[..at]), None, &rest[at + 1..]),
        None => (None, None, rest),
    }
}

fn parse_mysql(rest: &str, bad: &dyn Fn(&str) -> SqlError) -> Result<MySqlTarget, SqlError> {
    let (user, password, rest) = split_userinfo(rest);
    let user = match user {
        Some(u) => decode(u, "user", bad)?,
        // PyMySQL's default user is the empty string (the server then
        // refuses or maps it to an anonymous account).
        None => String::new(),
    };
    let password = match password {
        Some(p) => Some(Secret(decode(p, "password", bad)?)),
        None => None,
    };
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (hostport, rest) = rest.split_at(host_end);
    if hostport.contains('@') {
        // SQLAlchemy would take the text after the first `@` as the host
        // and fail to resolve it; say what is wrong instead.
        return Err(bad("`@` in the host: percent-encode an `@` in the user or password as %40"));
    }
    let (path, query) = match rest.strip_prefix('/') {
        Some(r) => r.split_once('?').unwrap_or((r, "")),
        None => ("", rest.strip_prefix('?').unwrap_or("")),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed `[` in the host"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after the IPv6 host"))?),
        };
        (h.to_owned(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| bad("the port is not a number from 0 to 65535"))?,
        None => MYSQL_PORT,
    };
    let database = match path {
        "" => None,
        p => Some(decode(p, "database", bad)?),
    };
    let mut target = MySqlTarget {
        user,
        password,
        // PyMySQL connects to localhost when the URL names no host.
        host: if host.is_empty() { "localhost".to_owned() } else { host },
        port,
        socket: None,
        database,
        charset: None,
    };
    for (key, value) in query_pairs(query, bad)? {
        match key.as_str() {
            "charset" => target.charset = Some(value),
            "unix_socket" => target.socket = Some(PathBuf::from(value)),
            "plugin" | "binary_prefix" => {}
            _ => return Err(SqlError::UnsupportedOption { option: key }),
        }
    }
    Ok(target)
}

fn parse_sqlite(rest: &str, bad: &dyn Fn(&str) -> SqlError) -> Result<SqliteTarget, SqlError> {
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if let Some((key, _)) = query_pairs(query, bad)?.into_iter().next() {
        return Err(SqlError::UnsupportedOption { option: key });
    }
    if path.is_empty() {
        return Ok(SqliteTarget::Memory);
    }
    // SQLAlchemy: `sqlite://<nothing>/<path>`; the path after the third
    // slash is relative unless it starts with another slash.
    let path = path.strip_prefix('/').ok_or_else(|| bad("a SQLite URL has no host: write sqlite:///path"))?;
    if path.is_empty() || path == ":memory:" {
        return Ok(SqliteTarget::Memory);
    }
    Ok(SqliteTarget::File(PathBuf::from(path)))
}

fn query_pairs(query: &str, bad: &dyn Fn(&str) -> SqlError) -> Result<Vec<(String, String)>, SqlError> {
    let mut out = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((decode(k, "option name", bad)?, decode(v, "option value", bad)?));
    }
    Ok(out)
}

fn decode(s: &str, what: &str, bad: &dyn Fn(&str) -> SqlError) -> Result<String, SqlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(byte.ok_or_else(|| bad(&format!("bad percent-escape in the {what}")))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad(&format!("the {what} is not UTF-8 once decoded")))
}

/// oslo.config's `$name` / `${name}` substitution; `Err(name)` for an
/// unknown name.
fn substitute(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let (name, after) = if let Some(r) = rest.strip_prefix('{') {
            match r.split_once('}') {
                Some((n, a)) => (n, a),
                None => return Err(r.to_owned()),
            }
        } else {
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        out.push_str(&lookup(name).ok_or_else(|| name.to_owned())?);
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mysql(url: &str) -> MySqlTarget {
        match DatabaseUrl::parse(url).unwrap().target {
            Target::MySql(m) => m,
            Target::Sqlite(_) => panic!("not mysql"),
        }
    }

    #[test]
    fn pymysql_urls() {
        let m = mysql("mysql+pymysql://cinder:pw@10.0.0.5:3307/cinder?charset=utf8&plugin=dbcounter");
        assert_eq!((m.user.as_str(), m.password.as_ref().map(Secret::expose)), ("cinder", Some("pw")));
        assert_eq!((m.host.as_str(), m.port), ("10.0.0.5", 3307));
        assert_eq!(m.database.as_deref(), Some("cinder"));
        assert_eq!(m.charset.as_deref(), Some("utf8"));
        let m = mysql("mysql://root@db/cinder");
        assert_eq!((m.host.as_str(), m.port, m.password.is_none()), ("db", 3306, true));
        let m = mysql("mariadb+pymysql://u:p@[::1]:3308/c");
        assert_eq!((m.host.as_str(), m.port), ("::1", 3308));
        let m = mysql("mysql+pymysql://u:p@/cinder?unix_socket=/run/mysqld/mysqld.sock");
        assert_eq!(m.socket, Some(PathBuf::from("/run/mysqld/mysqld.sock")));
        assert_eq!(m.host, "localhost");
    }

    #[test]
    fn percent_escapes_are_decoded() {
        let m = mysql("mysql+pymysql://us%40er:p%2Fw%3A%40x@h/db%2D1");
        assert_eq!(m.user, "us@er");
        assert_eq!(m.password.unwrap().expose(), "p/w:@x");
        assert_eq!(m.database.as_deref(), Some("db-1"));
        // SQLAlchemy's pattern: a password may hold `/` (up to the `@`).
        let m = mysql("mysql+pymysql://u:pa/ss@h:3306/db");
        assert_eq!((m.password.unwrap().expose(), m.host.as_str(), m.database.as_deref()), ("pa/ss", "h", Some("db")));
        assert_eq!(redact("mysql+pymysql://u:pa/ss@h:3306/db"), "mysql+pymysql://u:***@h:3306/db");
    }

    #[test]
    fn sqlite_paths_follow_sqlalchemy() {
        let p = |u: &str| match DatabaseUrl::parse(u).unwrap().target {
            Target::Sqlite(SqliteTarget::File(p)) => Some(p),
            Target::Sqlite(SqliteTarget::Memory) => None,
            Target::MySql(_) => panic!("not sqlite"),
        };
        assert_eq!(p("sqlite:///cinder.sqlite"), Some(PathBuf::from("cinder.sqlite")));
        assert_eq!(p("sqlite:////var/lib/cinder/cinder.sqlite"), Some(PathBuf::from("/var/lib/cinder/cinder.sqlite")));
        assert_eq!(p("sqlite://"), None);
        assert_eq!(p("sqlite:///:memory:"), None);
    }

    #[test]
    fn bad_urls_are_typed_errors() {
        assert!(matches!(DatabaseUrl::parse("cinder"), Err(SqlError::InvalidUrl { .. })));
        assert!(matches!(
            DatabaseUrl::parse("postgresql://u:p@h/db"),
            Err(SqlError::UnsupportedDialect { dialect }) if dialect == "postgresql"
        ));
        assert!(matches!(DatabaseUrl::parse("mysql://u:p@h:99999/db"), Err(SqlError::InvalidUrl { .. })));
        assert!(matches!(DatabaseUrl::parse("mysql://u:p%zz@h/db"), Err(SqlError::InvalidUrl { .. })));
        assert!(matches!(
            DatabaseUrl::parse("mysql://u:p@h/db?ssl_ca=/etc/ca.pem"),
            Err(SqlError::UnsupportedOption { option }) if option == "ssl_ca"
        ));
        assert!(matches!(DatabaseUrl::parse("sqlite://host/x"), Err(SqlError::InvalidUrl { .. })));
        // An unencoded `@` in a password.
        assert!(matches!(DatabaseUrl::parse("mysql://u:p@ss@h/db"), Err(SqlError::InvalidUrl { .. })));
    }

    #[test]
    fn the_password_never_shows() {
        let secret = "Hunter2-very-secret";
        for text in [
            format!("mysql+pymysql://cinder:{secret}@127.0.0.1/cinder"),
            format!("mysql+pymysql://cinder:{secret}@127.0.0.1:99999/cinder"),
            format!("mysql+pymysql://cinder:{secret}@127.0.0.1/cinder?ssl_key=x"),
            format!("mysql+pymysql://cinder:{secret}%zz@127.0.0.1/cinder"),
            format!("postgresql://cinder:{secret}@127.0.0.1/cinder"),
            format!("mysql+pymysql://cinder:{secret}@[::1/cinder"),
            format!("cinder:{secret}@127.0.0.1"),
            format!("mysql://cinder:{secret}/x@127.0.0.1/cinder"),
            format!("mysql://cinder:p@{secret}@127.0.0.1/cinder"),
        ] {
            let shown = match DatabaseUrl::parse(&text) {
                Ok(u) => format!("{u} {u:?} {:?}", u.target),
                Err(e) => format!("{e} {e:?}"),
            };
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn oslo_substitution() {
        let conf = CinderConf::parse(
            "[DEFAULT]\nstate_path = /srv\n[database]\ndb = c1\nconnection = mysql://u:p@h/${db}?charset=utf8\n",
        )
        .unwrap();
        assert_eq!(DatabaseUrl::from_cinder_conf(&conf).unwrap().to_string(), "mysql://u:***@h/c1?charset=utf8");
        let conf = CinderConf::parse("[database]\nconnection = sqlite:///$state_path/c.db\n").unwrap();
        assert_eq!(DatabaseUrl::from_cinder_conf(&conf).unwrap().location(), "/var/lib/cinder/c.db");
        let conf = CinderConf::parse("[database]\nconnection = sqlite:///$nope/c.db\n").unwrap();
        assert!(matches!(DatabaseUrl::from_cinder_conf(&conf), Err(SqlError::InvalidUrl { .. })));
        let conf = CinderConf::parse("[DEFAULT]\ndebug = true\n").unwrap();
        assert!(matches!(DatabaseUrl::from_cinder_conf(&conf), Err(SqlError::NoConnection)));
    }
}
