//! Who the client is to Glance: a token the caller holds, a Keystone v3
//! password login, or (no Keystone) identity headers for a Glance whose
//! paste pipeline trusts them.

use std::fmt;
use std::time::Duration;

use serde_json::{json, Value};
use time::OffsetDateTime;
use url::Url;

use super::error::{error_text, GlanceError};

/// A secret (token, password): never shown by `Debug`, has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the one place that sends it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Keystone v3 password authentication, scoped to a project (what
/// keystoneauth's `password` plugin sends).
#[derive(Clone, Debug)]
pub struct KeystonePassword {
    /// Keystone's URL, e.g. `http://keystone:5000/v3` (`/v3` is added when
    /// missing).
    pub auth_url: Url,
    /// User name.
    pub username: String,
    /// Password.
    pub password: Secret,
    /// The user's domain name (`Default` in most clouds).
    pub user_domain_name: String,
    /// The project to scope the token to.
    pub project_name: String,
    /// The project's domain name.
    pub project_domain_name: String,
}

/// The identity a Keystone-less Glance takes from request headers: the
/// headers keystonemiddleware would set after validating a token, for a
/// Glance whose paste pipeline has only the context middleware (the
/// "trusted" flavor `.ci/glance.sh` installs). Never use this against a
/// Glance that authenticates: it would ignore these headers or refuse them.
#[derive(Clone, Debug)]
pub struct TrustedIdentity {
    /// `X-Project-Id`
    pub project_id: String,
    /// `X-User-Id`
    pub user_id: String,
    /// `X-Roles`, e.g. `admin`, `member`, `reader`, and `service` for the
    /// service-only location API.
    pub roles: Vec<String>,
    /// `X-Service-Catalog` (a JSON list): Glance's cinder store needs one
    /// with a `volumev3` entry to check `cinder://` locations.
    pub service_catalog: Option<String>,
    /// `X-Auth-Token`, passed on by Glance to the services it calls (a
    /// noauth cinder-api reads `user:project` from it).
    pub token: Option<Secret>,
}

/// How the client authenticates.
#[derive(Clone, Debug)]
pub enum Auth {
    /// A token the caller obtained (sent as `X-Auth-Token`).
    Token(Secret),
    /// A Keystone v3 password login; the token is requested on first use and
    /// again when it expires or Glance answers 401.
    Keystone(KeystonePassword),
    /// No Keystone: identity headers (see [`TrustedIdentity`]).
    TrustedHeaders(TrustedIdentity),
}

/// A Keystone token and what came with it.
#[derive(Clone, Debug)]
pub(crate) struct IssuedToken {
    pub(crate) token: Secret,
    pub(crate) expires_at: Option<OffsetDateTime>,
    /// The public `image` endpoint from the token's catalog.
    pub(crate) image_endpoint: Option<Url>,
}

impl IssuedToken {
    /// Still usable for a while (a minute of margin, as keystoneauth keeps).
    pub(crate) fn fresh(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_none_or(|t| t - time::Duration::seconds(60) > now)
    }
}

/// `POST /v3/auth/tokens` with a password.
pub(crate) async fn request_token(
    client: &reqwest::Client,
    auth: &KeystonePassword,
    timeout: Duration,
) -> Result<IssuedToken, GlanceError> {
    let url = tokens_url(&auth.auth_url);
    let shown = url.to_string();
    let body = json!({
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {
                    "name": auth.username,
                    "domain": {"name": auth.user_domain_name},
                    "password": auth.password.expose(),
                }}
            },
            "scope": {"project": {"name": auth.project_name, "domain": {"name": auth.project_domain_name}}}
        }
    });
    let keystone = |reason: String, status: Option<u16>| GlanceError::Keystone { url: shown.clone(), reason, status };
    let response = client
        .post(url)
        .timeout(timeout)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| keystone(format!("no answer: {e}"), None))?;
    let status = response.status().as_u16();
    let token = response.headers().get("X-Subject-Token").and_then(|v| v.to_str().ok()).map(Secret::new);
    let text = response.text().await.map_err(|e| keystone(format!("reading the answer: {e}"), Some(status)))?;
    if !(200..300).contains(&status) {
        return Err(keystone(error_text(&text), Some(status)));
    }
    let token = token.ok_or_else(|| keystone("no X-Subject-Token header".into(), Some(status)))?;
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| keystone(format!("token body is not JSON: {e}"), Some(status)))?;
    let expires_at = doc
        .pointer("/token/expires_at")
        .and_then(Value::as_str)
        .and_then(|s| OffsetDateTime::parse(s, &time::format_description::well_known::Iso8601::DEFAULT).ok());
    Ok(IssuedToken { token, expires_at, image_endpoint: image_endpoint(&doc) })
}

/// `auth_url` + `/v3/auth/tokens`, not doubling a `/v3` the URL has.
fn tokens_url(auth_url: &Url) -> Url {
    let mut url = auth_url.clone();
    let path = url.path().trim_end_matches('/').to_owned();
    let path = if path.ends_with("/v3") { format!("{path}/auth/tokens") } else { format!("{path}/v3/auth/tokens") };
    url.set_path(&path);
    url
}

/// The public endpoint of the `image` service in a v3 token's catalog
/// (Cinder's `glance_catalog_info` default, `image:glance:publicURL`).
fn image_endpoint(doc: &Value) -> Option<Url> {
    let catalog = doc.pointer("/token/catalog")?.as_array()?;
    let service = catalog.iter().find(|s| s.get("type").and_then(Value::as_str) == Some("image"))?;
    let endpoints = service.get("endpoints")?.as_array()?;
    let public = endpoints.iter().find(|e| e.get("interface").and_then(Value::as_str) == Some("public"))?;
    public.get("url").and_then(Value::as_str).and_then(|u| Url::parse(u).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_show() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let auth = Auth::Keystone(KeystonePassword {
            auth_url: Url::parse("http://k:5000/v3").unwrap(),
            username: "cinder".into(),
            password: Secret::new("hunter2"),
            user_domain_name: "Default".into(),
            project_name: "service".into(),
            project_domain_name: "Default".into(),
        });
        assert!(!format!("{auth:?}").contains("hunter2"));
    }

    #[test]
    fn token_url_has_one_v3() {
        for (given, want) in [
            ("http://k:5000/v3", "http://k:5000/v3/auth/tokens"),
            ("http://k:5000/v3/", "http://k:5000/v3/auth/tokens"),
            ("http://k:5000", "http://k:5000/v3/auth/tokens"),
            ("http://k/identity", "http://k/identity/v3/auth/tokens"),
        ] {
            assert_eq!(tokens_url(&Url::parse(given).unwrap()).as_str(), want);
        }
    }

    #[test]
    fn catalog_gives_the_public_image_endpoint() {
        let doc = json!({"token": {"catalog": [
            {"type": "volumev3", "endpoints": [{"interface": "public", "url": "http://c:8776/v3"}]},
            {"type": "image", "endpoints": [
                {"interface": "internal", "url": "http://g-int:9292"},
                {"interface": "public", "url": "http://g:9292"}]}
        ]}});
        assert_eq!(image_endpoint(&doc).unwrap().as_str(), "http://g:9292/");
        assert!(image_endpoint(&json!({"token": {}})).is_none());
    }
}
