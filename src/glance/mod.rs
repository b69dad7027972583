//! Glance's v2 HTTP API behind the [`ImageService`] port (cargo feature
//! `glance`): what Cinder 29's `cinder/image/glance.py` asks Glance for,
//! over reqwest with rustls.
//!
//! * [`ImageService::show`]: `GET /v2/images/{id}`, read as Cinder's
//!   `_translate_from_glance` reads it (schema attributes as fields, every
//!   other key a custom property).
//! * [`ImageService::locations`]: the service-only `GET
//!   /v2/images/{id}/locations`; `NotSupported` when Glance lacks API
//!   version 2.17 (glanceclient checks `/versions` first and raises
//!   `HTTPNotImplemented`) or answers 501. With `show` this gives the
//!   planner both halves of `GlanceImageService.get_location`
//!   (docs/FORMAT.md §7.1).
//! * [`ImageService::download`]: `GET /v2/images/{id}/file` streamed into
//!   the conversion directory, with a size limit and a progress callback,
//!   then `qemu-img info` and, for a non-raw image, `qemu-img convert -O
//!   raw` (Cinder's `fetch_to_raw`). Without `qemu-img` configured, a raw
//!   image is kept and any other is refused with a typed error.
//! * [`ImageService::add_location`] / [`ImageService::remove_location`]:
//!   the new `POST /v2/images/{id}/locations` and the legacy JSON-patch
//!   `add`/`remove` on `/locations`.
//!
//! Every call is tried `1 + glance_num_retries` times, one second apart,
//! when it gets no answer (connection refused, timeout) or HTTP 503, the
//! errors `GlanceClientWrapper.call` retries; `glance_request_timeout`
//! bounds connecting and each read (600 s when unset, glanceclient's
//! default). HTTP errors map onto the port's kinds as
//! [`GlanceError::kind`] says. Authentication: a token, a Keystone v3
//! password login, or, for a Glance without Keystone, trusted identity
//! headers ([`Auth`]). Tokens and passwords never appear in errors, logs or
//! `Debug` output.
//!
//! ```no_run
//! use cinder_flow::glance::{Auth, GlanceImageService, GlanceOptions, Secret};
//! use cinder_flow::model::ImageId;
//! use cinder_flow::ports::ImageService;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let endpoint = "http://127.0.0.1:9292".parse()?;
//! let options = GlanceOptions::new(endpoint, Auth::Token(Secret::new("gAAAA...")))
//!     .with_conversion_dir("/var/lib/cinder/conversion")
//!     .with_max_download_bytes(Some(50 << 30));
//! let glance = GlanceImageService::new(options)?;
//! let image = glance.show(&ImageId::new("9d2ea1a9-0b71-4d58-9c55-4d0b8e1e1b70")).await?;
//! println!("{} is {}", image.id, image.status);
//! # Ok(())
//! # }
//! ```

mod auth;
mod download;
mod error;
mod record;

pub use auth::{Auth, KeystonePassword, Secret, TrustedIdentity};
pub use download::{DownloadProgress, ProgressFn};
pub use error::GlanceError;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use url::Url;

use crate::config::Config;
use crate::error::{BackendError, BackendErrorKind};
use crate::model::{Bytes, Image, ImageId, LocationApi, LocationEntry};
use crate::ports::{BackendResult, DownloadedImage, ImageService};

use auth::IssuedToken;
use error::error_text;

/// glanceclient's HTTP timeout when `glance_request_timeout` is unset.
pub const GLANCECLIENT_DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// How to reach Glance and what to do with downloads.
#[derive(Clone)]
pub struct GlanceOptions {
    /// Glance's endpoint, e.g. `http://glance:9292` (a path prefix is
    /// kept). `None`: the public `image` endpoint of the Keystone catalog
    /// (only with [`Auth::Keystone`]).
    pub endpoint: Option<Url>,
    /// Authentication.
    pub auth: Auth,
    /// `glance_num_retries`: further attempts after a call gets no answer or
    /// HTTP 503.
    pub num_retries: u32,
    /// `glance_request_timeout`; `None` is glanceclient's 600 s.
    pub request_timeout: Option<Duration>,
    /// Pause between attempts (Cinder sleeps one second).
    pub retry_interval: Duration,
    /// Where downloads go (`image_conversion_dir`).
    pub conversion_dir: PathBuf,
    /// Refuse downloads larger than this many bytes (announced or
    /// received), and images whose raw (converted) size is larger.
    pub max_download_bytes: Option<u64>,
    /// `qemu-img` for format detection and conversion; `None`: raw images
    /// only.
    pub qemu_img: Option<PathBuf>,
    /// Called after each chunk of a download.
    pub progress: Option<ProgressFn>,
    /// How long to wait for Glance to finish adding a location through the
    /// new (asynchronous) API.
    pub location_task_timeout: Duration,
}

impl fmt::Debug for GlanceOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlanceOptions")
            .field("endpoint", &self.endpoint.as_ref().map(Url::as_str))
            .field("auth", &self.auth)
            .field("num_retries", &self.num_retries)
            .field("request_timeout", &self.request_timeout)
            .field("retry_interval", &self.retry_interval)
            .field("conversion_dir", &self.conversion_dir)
            .field("max_download_bytes", &self.max_download_bytes)
            .field("qemu_img", &self.qemu_img)
            .field("progress", &self.progress.as_ref().map(|_| "Fn"))
            .field("location_task_timeout", &self.location_task_timeout)
            .finish()
    }
}

impl GlanceOptions {
    /// Cinder 29's defaults (3 retries, glanceclient's timeout), downloads
    /// to the system's temporary directory, `qemu-img` from `PATH`, no size
    /// limit.
    pub fn new(endpoint: Url, auth: Auth) -> Self {
        Self {
            endpoint: Some(endpoint),
            auth,
            num_retries: 3,
            request_timeout: None,
            retry_interval: Duration::from_secs(1),
            conversion_dir: std::env::temp_dir(),
            max_download_bytes: None,
            qemu_img: Some(PathBuf::from("qemu-img")),
            progress: None,
            location_task_timeout: Duration::from_secs(60),
        }
    }

    /// The options `cinder.conf` gives: the first of `glance_api_servers`
    /// (`http://` added when no scheme is given, as Cinder does; none: the
    /// catalog), `glance_num_retries`, `glance_request_timeout` and
    /// `image_conversion_dir` (with `$state_path` expanded).
    pub fn from_config(config: &Config, auth: Auth) -> Result<Self, GlanceError> {
        let endpoint = match config.glance_api_servers.first() {
            None => None,
            Some(s) => {
                let with_scheme = if s.contains("//") { s.clone() } else { format!("http://{s}") };
                Some(
                    Url::parse(&with_scheme)
                        .map_err(|e| GlanceError::Config(format!("glance_api_servers {s:?}: {e}")))?,
                )
            }
        };
        let mut options = Self::new(Url::parse("http://unused.invalid").expect("constant"), auth);
        options.endpoint = endpoint;
        options.num_retries = u32::try_from(config.glance_num_retries)
            .map_err(|_| GlanceError::Config("glance_num_retries must be >= 0".into()))?;
        options.request_timeout = match config.glance_request_timeout {
            None => None,
            Some(t) if t > 0 => Some(Duration::from_secs(t as u64)),
            Some(t) => return Err(GlanceError::Config(format!("glance_request_timeout {t} must be positive"))),
        };
        options.conversion_dir = PathBuf::from(config.image_conversion_dir.replace("$state_path", &config.state_path));
        Ok(options)
    }

    /// Sets the conversion directory.
    pub fn with_conversion_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.conversion_dir = dir.into();
        self
    }

    /// Sets the download size limit.
    pub fn with_max_download_bytes(mut self, limit: Option<u64>) -> Self {
        self.max_download_bytes = limit;
        self
    }

    /// Sets `glance_num_retries` and the pause between attempts.
    pub fn with_retries(mut self, num_retries: u32, interval: Duration) -> Self {
        self.num_retries = num_retries;
        self.retry_interval = interval;
        self
    }

    /// Sets `glance_request_timeout`.
    pub fn with_request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the progress callback.
    pub fn with_progress(mut self, progress: impl Fn(&str, DownloadProgress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(progress));
        self
    }

    /// Sets (or, with `None`, disables) `qemu-img`.
    pub fn with_qemu_img(mut self, qemu_img: Option<PathBuf>) -> Self {
        self.qemu_img = qemu_img;
        self
    }

    fn timeout(&self) -> Duration {
        self.request_timeout.unwrap_or(GLANCECLIENT_DEFAULT_TIMEOUT)
    }
}

/// Glance's v2 API as an [`ImageService`]; see the [module docs](self).
pub struct GlanceImageService {
    http: reqwest::Client,
    options: GlanceOptions,
    token: tokio::sync::Mutex<Option<IssuedToken>>,
    location_api: tokio::sync::OnceCell<bool>,
}

impl fmt::Debug for GlanceImageService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlanceImageService").field("options", &self.options).finish_non_exhaustive()
    }
}

/// A request body: content type and bytes (kept to be sent again on retry).
type Body = Option<(&'static str, Arc<[u8]>)>;

const JSON: &str = "application/json";
const JSON_PATCH: &str = "application/openstack-images-v2.1-json-patch";

impl GlanceImageService {
    /// A client; nothing is sent until the first call.
    pub fn new(options: GlanceOptions) -> Result<Self, GlanceError> {
        if let Some(e) = &options.endpoint {
            if !matches!(e.scheme(), "http" | "https") {
                return Err(GlanceError::Config(format!("endpoint {e} is not http(s)")));
            }
        } else if !matches!(options.auth, Auth::Keystone(_)) {
            return Err(GlanceError::Config("no endpoint, and no Keystone catalog to find one in".into()));
        }
        // Like requests' timeout: bounds connecting and each read, not the
        // whole (possibly long) download.
        let http = reqwest::Client::builder()
            .connect_timeout(options.timeout())
            .read_timeout(options.timeout())
            .user_agent(concat!("cinder-flow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GlanceError::Config(format!("building the HTTP client: {e}")))?;
        Ok(Self { http, options, token: tokio::sync::Mutex::new(None), location_api: tokio::sync::OnceCell::new() })
    }

    /// The options in use.
    pub fn options(&self) -> &GlanceOptions {
        &self.options
    }

    /// The endpoint and the identity headers, logging in to Keystone when
    /// needed (again when `renew`).
    async fn identity(&self, renew: bool) -> Result<(Url, HeaderMap), GlanceError> {
        let mut headers = HeaderMap::new();
        let secret = |s: &Secret| {
            let mut v = HeaderValue::from_str(s.expose())
                .map_err(|_| GlanceError::Config("the token is not a valid header value".into()))?;
            v.set_sensitive(true);
            Ok::<_, GlanceError>(v)
        };
        let plain = |s: &str| {
            HeaderValue::from_str(s).map_err(|_| GlanceError::Config(format!("{s:?} is not a valid header value")))
        };
        let endpoint = match &self.options.auth {
            Auth::Token(t) => {
                headers.insert("X-Auth-Token", secret(t)?);
                self.options.endpoint.clone()
            }
            Auth::TrustedHeaders(id) => {
                headers.insert("X-Identity-Status", HeaderValue::from_static("Confirmed"));
                headers.insert("X-Project-Id", plain(&id.project_id)?);
                headers.insert("X-Tenant-Id", plain(&id.project_id)?);
                headers.insert("X-User-Id", plain(&id.user_id)?);
                headers.insert("X-Roles", plain(&id.roles.join(","))?);
                if let Some(c) = &id.service_catalog {
                    headers.insert("X-Service-Catalog", plain(c)?);
                }
                if let Some(t) = &id.token {
                    headers.insert("X-Auth-Token", secret(t)?);
                }
                self.options.endpoint.clone()
            }
            Auth::Keystone(k) => {
                let mut cached = self.token.lock().await;
                let now = time::OffsetDateTime::now_utc();
                let usable = cached.as_ref().filter(|t| !renew && t.fresh(now)).cloned();
                let issued = match usable {
                    Some(t) => t,
                    None => {
                        let t = auth::request_token(&self.http, k, self.options.timeout()).await?;
                        *cached = Some(t.clone());
                        t
                    }
                };
                headers.insert("X-Auth-Token", secret(&issued.token)?);
                self.options.endpoint.clone().or(issued.image_endpoint)
            }
        };
        let endpoint =
            endpoint.ok_or_else(|| GlanceError::Config("the Keystone catalog has no image endpoint".into()))?;
        Ok((endpoint, headers))
    }

    /// Sends a request with Cinder's retries; a response with an error
    /// status becomes [`GlanceError::Status`], except those in `also_ok`.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Body,
        also_ok: &[u16],
    ) -> Result<reqwest::Response, GlanceError> {
        let attempts = 1 + self.options.num_retries;
        let mut renewed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (endpoint, headers) = self.identity(false).await?;
            let url = join(&endpoint, path);
            let mut request = self.http.request(method.clone(), url).headers(headers);
            if let Some((content_type, bytes)) = &body {
                request = request.header("Content-Type", *content_type).body(reqwest::Body::from(bytes.to_vec()));
            }
            tracing::debug!(method = %method, path, attempt, "glance request");
            let outcome = request.send().await;
            let retry = match &outcome {
                Err(e) => e.is_connect() || e.is_timeout() || e.is_request(),
                Ok(r) => r.status() == StatusCode::SERVICE_UNAVAILABLE,
            };
            if let Ok(r) = &outcome {
                // An expired or revoked Keystone token: log in again, once.
                if r.status() == StatusCode::UNAUTHORIZED && matches!(self.options.auth, Auth::Keystone(_)) && !renewed
                {
                    renewed = true;
                    self.identity(true).await?;
                    attempt -= 1;
                    continue;
                }
            }
            if retry && attempt < attempts {
                tracing::warn!(method = %method, path, attempt, attempts, "glance did not answer; retrying");
                tokio::time::sleep(self.options.retry_interval).await;
                continue;
            }
            return match outcome {
                Err(source) => Err(GlanceError::Transport {
                    method: method.to_string(),
                    path: path.to_owned(),
                    attempts: attempt,
                    source,
                }),
                Ok(r) if r.status().is_success() || also_ok.contains(&r.status().as_u16()) => Ok(r),
                Ok(r) => {
                    let status = r.status().as_u16();
                    let message = r.text().await.map(|t| error_text(&t)).unwrap_or_default();
                    Err(GlanceError::Status {
                        method: method.to_string(),
                        path: path.to_owned(),
                        status,
                        message,
                        attempts: attempt,
                    })
                }
            };
        }
    }

    async fn json(&self, method: Method, path: &str, body: Body) -> Result<Value, GlanceError> {
        let r = self.send(method, path, body, &[]).await?;
        let text =
            r.text().await.map_err(|e| GlanceError::BadResponse { path: path.to_owned(), reason: e.to_string() })?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .map_err(|e| GlanceError::BadResponse { path: path.to_owned(), reason: format!("not JSON: {e}") })
    }

    /// Whether Glance offers the location API (API version 2.17 listed as
    /// current, supported or experimental, glanceclient's `has_version`).
    /// Asked once.
    pub async fn supports_location_api(&self) -> Result<bool, GlanceError> {
        self.location_api
            .get_or_try_init(|| async {
                let r = self.send(Method::GET, "/versions", None, &[300]).await?;
                let bad = |reason: String| GlanceError::BadResponse { path: "/versions".into(), reason };
                let text = r.text().await.map_err(|e| bad(e.to_string()))?;
                let doc: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
                let versions = doc.get("versions").and_then(Value::as_array).ok_or_else(|| {
                    GlanceError::BadResponse { path: "/versions".into(), reason: "no versions list".into() }
                })?;
                Ok(versions.iter().any(|v| {
                    v.get("id").and_then(Value::as_str) == Some("v2.17")
                        && matches!(
                            v.get("status").and_then(Value::as_str),
                            Some("SUPPORTED" | "CURRENT" | "EXPERIMENTAL")
                        )
                }))
            })
            .await
            .copied()
    }

    /// Creates an image record (`POST /v2/images`) with the attributes a
    /// client may set: id, owner, visibility, formats, `min_disk`,
    /// `min_ram` and the custom properties. Not part of the port: for
    /// tools and tests. Glance computes the rest (status `queued`, sizes,
    /// timestamps).
    pub async fn create_image(&self, image: &Image) -> Result<Image, GlanceError> {
        let body = record::create_body(image).to_string();
        let doc = self.json(Method::POST, "/v2/images", Some((JSON, Arc::from(body.into_bytes())))).await?;
        record::parse_image(&doc).map_err(|reason| GlanceError::BadResponse { path: "/v2/images".into(), reason })
    }

    /// Uploads an image's data (`PUT /v2/images/{id}/file`): Glance stores
    /// it in its default store and computes size, virtual size and
    /// checksums. Not part of the port.
    pub async fn upload(&self, image_id: &ImageId, data: Vec<u8>) -> Result<(), GlanceError> {
        let path = format!("/v2/images/{}/file", seg(image_id.as_str()));
        self.send(Method::PUT, &path, Some(("application/octet-stream", Arc::from(data))), &[]).await.map(drop)
    }

    /// Deletes an image (`DELETE /v2/images/{id}`). Not part of the port.
    pub async fn delete_image(&self, image_id: &ImageId) -> Result<(), GlanceError> {
        let path = format!("/v2/images/{}", seg(image_id.as_str()));
        self.send(Method::DELETE, &path, None, &[]).await.map(drop)
    }

    async fn show_image(&self, image_id: &ImageId) -> Result<Image, GlanceError> {
        let path = format!("/v2/images/{}", seg(image_id.as_str()));
        let doc = self.json(Method::GET, &path, None).await?;
        record::parse_image(&doc).map_err(|reason| GlanceError::BadResponse { path, reason })
    }

    async fn location_list(&self, image_id: &ImageId) -> Result<Option<Arc<[LocationEntry]>>, GlanceError> {
        if !self.supports_location_api().await? {
            return Ok(None);
        }
        let path = format!("/v2/images/{}/locations", seg(image_id.as_str()));
        let doc = self.json(Method::GET, &path, None).await?;
        record::parse_locations(&doc).map(Some).map_err(|reason| GlanceError::BadResponse { path, reason })
    }

    async fn fetch(&self, image_id: &ImageId) -> Result<DownloadedImage, GlanceError> {
        let path = format!("/v2/images/{}/file", seg(image_id.as_str()));
        let mut response = self.send(Method::GET, &path, None, &[]).await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Err(GlanceError::NoData { image_id: image_id.to_string() });
        }
        let announced = response.content_length();
        let limit = self.options.max_download_bytes;
        if let (Some(total), Some(limit)) = (announced, limit) {
            if total > limit {
                return Err(GlanceError::TooLarge { image_id: image_id.to_string(), size: total, limit });
            }
        }
        let dir = &self.options.conversion_dir;
        tokio::fs::create_dir_all(dir).await.map_err(|source| GlanceError::Io { path: dir.clone(), source })?;
        let stem = format!("{}-{}", sanitize(image_id.as_str()), uuid::Uuid::new_v4());
        let part = dir.join(format!(".{stem}.part"));
        let mut sink = download::Sink::create(part.clone()).await?;
        let streamed: Result<(), GlanceError> = async {
            loop {
                let chunk = response.chunk().await.map_err(|source| GlanceError::Transport {
                    method: "GET".into(),
                    path: path.clone(),
                    attempts: 1,
                    source,
                })?;
                let Some(chunk) = chunk else { break };
                if let Some(limit) = limit {
                    if sink.received + chunk.len() as u64 > limit {
                        let size = sink.received + chunk.len() as u64;
                        return Err(GlanceError::TooLarge { image_id: image_id.to_string(), size, limit });
                    }
                }
                sink.write(&chunk).await?;
                if let Some(progress) = &self.options.progress {
                    progress(image_id.as_str(), DownloadProgress { received: sink.received, total: announced });
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = streamed {
            discard(&part).await;
            return Err(e);
        }
        let (part, received, head) = match sink.finish().await {
            Ok(done) => done,
            Err(e) => {
                discard(&part).await;
                return Err(e);
            }
        };
        if let Some(announced) = announced.filter(|&a| a != received) {
            discard(&part).await;
            return Err(GlanceError::Truncated { image_id: image_id.to_string(), received, announced });
        }
        let result = self.convert(image_id, &part, &dir.join(&stem), received, &head).await;
        if result.is_err() {
            discard(&part).await;
        }
        let (path, size, detected_format) = result?;
        Ok(DownloadedImage { image_id: image_id.clone(), path: Some(path), size: Bytes(size), detected_format })
    }

    /// Detects the format and leaves a raw file at `dest`: the path, its
    /// size and the detected format.
    async fn convert(
        &self,
        image_id: &ImageId,
        part: &std::path::Path,
        dest: &std::path::Path,
        received: u64,
        head: &[u8],
    ) -> Result<(PathBuf, u64, String), GlanceError> {
        let io = |path: &std::path::Path| {
            let path = path.to_owned();
            move |source| GlanceError::Io { path, source }
        };
        let Some(qemu_img) = &self.options.qemu_img else {
            if let Some(format) = download::sniff_format(head) {
                return Err(GlanceError::Conversion(format!(
                    "the image is {format}, and converting it needs qemu-img, which is not configured"
                )));
            }
            tokio::fs::rename(part, dest).await.map_err(io(dest))?;
            return Ok((dest.to_owned(), received, "raw".into()));
        };
        let (format, virtual_size) = download::qemu_img_info(qemu_img, part).await?;
        if format == "raw" {
            tokio::fs::rename(part, dest).await.map_err(io(dest))?;
            return Ok((dest.to_owned(), received, format));
        }
        if let Some(limit) = self.options.max_download_bytes.filter(|&l| virtual_size > l) {
            return Err(GlanceError::TooLarge { image_id: image_id.to_string(), size: virtual_size, limit });
        }
        let converted = download::qemu_img_convert(qemu_img, &format, part, dest).await;
        discard(part).await;
        if let Err(e) = converted {
            discard(dest).await;
            return Err(e);
        }
        let size = tokio::fs::metadata(dest).await.map_err(io(dest))?.len();
        Ok((dest.to_owned(), size, format))
    }

    /// `POST /v2/images/{id}/locations`, then waits until Glance's
    /// `location_import` task has added it (or failed).
    async fn add_location_new(&self, image_id: &ImageId, url: &str) -> Result<(), GlanceError> {
        let id = seg(image_id.as_str());
        let tasks_path = format!("/v2/images/{id}/tasks");
        let known = self.task_ids(&tasks_path).await;
        let body = json!({"url": url, "validation_data": {}}).to_string();
        self.send(Method::POST, &format!("/v2/images/{id}/locations"), Some((JSON, Arc::from(body.into_bytes()))), &[])
            .await?;
        let deadline = tokio::time::Instant::now() + self.options.location_task_timeout;
        loop {
            // Done when Glance's task has finished (it adds the location,
            // activates the image, then may hash the data); when the tasks
            // are not shown to this caller, when the location is listed and
            // the image active.
            let task = match self.tasks(&tasks_path).await {
                Ok(Some(tasks)) => tasks.into_iter().find(|t| {
                    t.get("type").and_then(Value::as_str) == Some("location_import")
                        && t.get("id").and_then(Value::as_str).is_some_and(|i| !known.iter().any(|k| k == i))
                }),
                _ => None,
            };
            let status = task.as_ref().and_then(|t| t.get("status")).and_then(Value::as_str);
            if status == Some("failure") {
                let reason = task
                    .as_ref()
                    .and_then(|t| t.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("the task failed")
                    .to_owned();
                return Err(GlanceError::LocationTask {
                    image_id: image_id.to_string(),
                    url: url.to_owned(),
                    reason,
                    timed_out: false,
                });
            }
            if task.is_none() || status == Some("success") {
                let image = self.show_image(image_id).await?;
                let listed =
                    image.locations.as_deref().unwrap_or_default().iter().any(|l| l.url.as_deref() == Some(url));
                if listed && image.status == "active" {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(GlanceError::LocationTask {
                    image_id: image_id.to_string(),
                    url: url.to_owned(),
                    reason: format!("not done after {:?}", self.options.location_task_timeout),
                    timed_out: true,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The image's tasks (`GET /v2/images/{id}/tasks`, admin); `None` when
    /// Glance does not show them to this caller.
    async fn tasks(&self, path: &str) -> Result<Option<Vec<Value>>, GlanceError> {
        match self.json(Method::GET, path, None).await {
            Ok(doc) => Ok(doc.get("tasks").and_then(Value::as_array).cloned()),
            Err(GlanceError::Status { status: 403 | 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn task_ids(&self, path: &str) -> Vec<String> {
        let tasks = self.tasks(path).await.ok().flatten().unwrap_or_default();
        tasks.iter().filter_map(|t| t.get("id").and_then(Value::as_str).map(str::to_owned)).collect()
    }

    async fn patch(&self, image_id: &ImageId, ops: Value) -> Result<(), GlanceError> {
        let path = format!("/v2/images/{}", seg(image_id.as_str()));
        let body = ops.to_string();
        self.send(Method::PATCH, &path, Some((JSON_PATCH, Arc::from(body.into_bytes()))), &[]).await.map(drop)
    }
}

async fn discard(path: &std::path::Path) {
    download::discard(path).await;
}

/// `endpoint` + `path`, keeping a path prefix the endpoint has.
fn join(endpoint: &Url, path: &str) -> Url {
    let mut url = endpoint.clone();
    let base = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{base}{path}"));
    url
}

/// A path segment: ids are UUIDs in practice, but nothing else may break
/// out of the segment.
fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// A file name from an id.
fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

#[async_trait]
impl ImageService for GlanceImageService {
    async fn show(&self, image_id: &ImageId) -> BackendResult<Arc<Image>> {
        self.show_image(image_id).await.map(Arc::new).map_err(|e| e.into_backend(format!("show image {image_id}")))
    }

    async fn locations(&self, image_id: &ImageId) -> BackendResult<Arc<[LocationEntry]>> {
        let operation = || format!("locations of image {image_id}");
        match self.location_list(image_id).await {
            Ok(Some(list)) => Ok(list),
            Ok(None) => Err(BackendError::new(BackendErrorKind::NotSupported, operation())
                .with_detail("Glance does not offer API version 2.17")),
            Err(e) => Err(e.into_backend(operation())),
        }
    }

    async fn download(&self, image_id: &ImageId) -> BackendResult<DownloadedImage> {
        self.fetch(image_id).await.map_err(|e| e.into_backend(format!("download image {image_id}")))
    }

    async fn add_location(&self, image_id: &ImageId, location: &LocationEntry, api: LocationApi) -> BackendResult<()> {
        let shown = location.url.as_deref().unwrap_or("<no URL>");
        let operation = || format!("add location {shown} to image {image_id}");
        let Some(url) = location.url.as_deref() else {
            return Err(BackendError::new(BackendErrorKind::Rejected, operation()).with_detail("no URL"));
        };
        match api {
            LocationApi::New => {
                if !location.metadata.is_empty() {
                    return Err(BackendError::new(BackendErrorKind::Rejected, operation())
                        .with_detail("the new location API takes no metadata"));
                }
                match self.supports_location_api().await {
                    Ok(true) => {}
                    Ok(false) => {
                        return Err(BackendError::new(BackendErrorKind::NotSupported, operation())
                            .with_detail("Glance does not offer API version 2.17"))
                    }
                    Err(e) => return Err(e.into_backend(operation())),
                }
                self.add_location_new(image_id, url).await.map_err(|e| e.into_backend(operation()))
            }
            LocationApi::Legacy => {
                let value = json!({"url": url, "metadata": location.metadata});
                let ops = json!([{"op": "add", "path": "/locations/-", "value": value}]);
                self.patch(image_id, ops).await.map_err(|e| e.into_backend(operation()))
            }
        }
    }

    async fn remove_location(&self, image_id: &ImageId, url: &str) -> BackendResult<()> {
        let operation = || format!("remove location {url} from image {image_id}");
        let image = self.show_image(image_id).await.map_err(|e| e.into_backend(operation()))?;
        let Some(list) = image.locations.as_deref() else {
            return Err(BackendError::new(BackendErrorKind::NotSupported, operation())
                .with_detail("Glance does not show locations (show_multiple_locations is off)"));
        };
        let Some(at) = list.iter().position(|l| l.url.as_deref() == Some(url)) else {
            return Err(BackendError::new(BackendErrorKind::NotFound, operation()).with_detail("no such location"));
        };
        self.patch(image_id, json!([{"op": "remove", "path": format!("/locations/{at}")}]))
            .await
            .map_err(|e| e.into_backend(operation()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_under_the_endpoint() {
        let e = Url::parse("http://g:9292").unwrap();
        assert_eq!(join(&e, "/v2/images/x").as_str(), "http://g:9292/v2/images/x");
        let e = Url::parse("https://cloud/image/").unwrap();
        assert_eq!(join(&e, "/v2/images/x").as_str(), "https://cloud/image/v2/images/x");
        assert_eq!(seg("a/b c"), "a%2Fb%20c");
        assert_eq!(sanitize("../x"), "___x");
    }

    #[test]
    fn options_come_from_cinder_conf() {
        let mut c = Config::default();
        let auth = Auth::Token(Secret::new("t"));
        let o = GlanceOptions::from_config(&c, auth.clone()).unwrap();
        assert_eq!(o.endpoint, None);
        assert_eq!(o.num_retries, 3);
        assert_eq!(o.timeout(), GLANCECLIENT_DEFAULT_TIMEOUT);
        assert_eq!(o.conversion_dir, PathBuf::from("/var/lib/cinder/conversion"));
        c.set_from_str("glance_api_servers", "glance.example:9292, https://g2").unwrap();
        c.set_from_str("glance_num_retries", "0").unwrap();
        c.set_from_str("glance_request_timeout", "7").unwrap();
        let o = GlanceOptions::from_config(&c, auth.clone()).unwrap();
        assert_eq!(o.endpoint.as_ref().unwrap().as_str(), "http://glance.example:9292/");
        assert_eq!((o.num_retries, o.timeout()), (0, Duration::from_secs(7)));
        // Without an endpoint only Keystone's catalog can give one.
        assert!(matches!(GlanceImageService::new(GlanceOptions { endpoint: None, ..o }), Err(GlanceError::Config(_))));
    }

    #[test]
    fn debug_hides_credentials() {
        let id = TrustedIdentity {
            project_id: "p".into(),
            user_id: "u".into(),
            roles: vec!["admin".into()],
            service_catalog: None,
            token: Some(Secret::new("tok-secret")),
        };
        let g = GlanceImageService::new(GlanceOptions::new(Url::parse("http://g").unwrap(), Auth::TrustedHeaders(id)))
            .unwrap();
        assert!(!format!("{g:?}").contains("tok-secret"));
    }
}
