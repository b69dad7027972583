//! The errors of the Glance client, and how they map onto the port's
//! [`BackendErrorKind`]s.

use std::path::PathBuf;

use crate::error::{BackendError, BackendErrorKind};

/// What went wrong talking to Glance (or Keystone), or handling a download.
///
/// No variant carries a token or a password: requests are described by
/// method and path, and response bodies are Glance's own error text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GlanceError {
    /// The configuration cannot work (no endpoint, an endpoint that is not
    /// an http(s) URL, a client that cannot be built).
    #[error("Glance client configuration: {0}")]
    Config(String),
    /// Glance (or Keystone) answered with an error status.
    #[error("{method} {path}: HTTP {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Status {
        /// Request method.
        method: String,
        /// Request path (no host, no query secrets: Glance's paths hold ids only).
        path: String,
        /// The HTTP status.
        status: u16,
        /// The service's error text, shortened.
        message: String,
        /// How many attempts were made (more than one when the status is one
        /// that is retried, 503).
        attempts: u32,
    },
    /// The request did not get an answer (connection refused or reset,
    /// name resolution, timeout), after every attempt.
    #[error("{method} {path}: no answer after {attempts} attempt(s): {source}")]
    Transport {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
        /// Attempts made (1 + `glance_num_retries`).
        attempts: u32,
        /// The last transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The response is not what Glance's API documents.
    #[error("{path}: unexpected response: {reason}")]
    BadResponse {
        /// Request path.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// Keystone refused the credentials or answered without a token.
    #[error("Keystone token request to {url}: {reason}")]
    Keystone {
        /// The token URL (no credentials in it).
        url: String,
        /// Why.
        reason: String,
        /// The HTTP status, when there was one.
        status: Option<u16>,
    },
    /// Glance has the image but no data for it (HTTP 204 on download).
    #[error("image {image_id} has no data")]
    NoData {
        /// The image.
        image_id: String,
    },
    /// The download is larger than the configured limit.
    #[error("image {image_id}: download of {size} bytes or more exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The image.
        image_id: String,
        /// Bytes announced or received when it was stopped.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The body ended before the length Glance announced.
    #[error("image {image_id}: received {received} bytes, Glance announced {announced}")]
    Truncated {
        /// The image.
        image_id: String,
        /// Bytes received.
        received: u64,
        /// `Content-Length`.
        announced: u64,
    },
    /// A file in the conversion directory could not be written or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// `qemu-img` failed, or is not configured and the image is not raw.
    #[error("{0}")]
    Conversion(String),
    /// The asynchronous location import that `POST .../locations` started
    /// failed, or did not finish in time.
    #[error("image {image_id}: adding location {url}: {reason}")]
    LocationTask {
        /// The image.
        image_id: String,
        /// The location.
        url: String,
        /// Glance's task message, or "timed out".
        reason: String,
        /// Whether it timed out rather than failed.
        timed_out: bool,
    },
}

impl GlanceError {
    /// The port's kind for this error: 404 `NotFound`, 401/403
    /// `PermissionDenied`, 409 `Busy` (the image's state forbids the call),
    /// 501 `NotSupported`, other 5xx and no answer `Unavailable` (after the
    /// retries), other 4xx `Rejected`.
    pub fn kind(&self) -> BackendErrorKind {
        match self {
            Self::Status { status, .. } => status_kind(*status),
            Self::Transport { .. } => BackendErrorKind::Unavailable,
            Self::Keystone { status: Some(401 | 403), .. } => BackendErrorKind::PermissionDenied,
            Self::Keystone { status: Some(s), .. } if *s >= 500 => BackendErrorKind::Unavailable,
            Self::Keystone { status: None, .. } => BackendErrorKind::Unavailable,
            Self::Keystone { .. } => BackendErrorKind::Rejected,
            Self::NoData { .. } | Self::TooLarge { .. } => BackendErrorKind::Rejected,
            Self::LocationTask { timed_out: true, .. } => BackendErrorKind::Unavailable,
            Self::LocationTask { .. } => BackendErrorKind::Rejected,
            Self::Truncated { .. } => BackendErrorKind::Unavailable,
            Self::Config(_) | Self::BadResponse { .. } | Self::Io { .. } | Self::Conversion(_) => {
                BackendErrorKind::Other
            }
        }
    }

    /// The port's error for `operation`, keeping this one as its source.
    pub fn into_backend(self, operation: impl Into<String>) -> BackendError {
        BackendError::new(self.kind(), operation).with_source(self)
    }
}

/// The kind of an HTTP error status.
pub(crate) fn status_kind(status: u16) -> BackendErrorKind {
    match status {
        404 => BackendErrorKind::NotFound,
        401 | 403 => BackendErrorKind::PermissionDenied,
        409 => BackendErrorKind::Busy,
        501 => BackendErrorKind::NotSupported,
        500..=599 => BackendErrorKind::Unavailable,
        _ => BackendErrorKind::Rejected,
    }
}

/// Glance's error bodies are small HTML pages; keep their words, shortened.
pub(crate) fn error_text(body: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    let words: Vec<&str> = out.split_whitespace().collect();
    let mut text = words.join(" ");
    if text.len() > 300 {
        let cut = (0..=300).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_port_kinds() {
        use BackendErrorKind::*;
        for (status, kind) in
            [(404, NotFound), (403, PermissionDenied), (401, PermissionDenied), (409, Busy), (501, NotSupported)]
        {
            assert_eq!(status_kind(status), kind, "{status}");
        }
        for s in [500, 502, 503, 504] {
            assert_eq!(status_kind(s), Unavailable, "{s}");
        }
        for s in [400, 405, 410, 413, 415, 422] {
            assert_eq!(status_kind(s), Rejected, "{s}");
        }
    }

    #[test]
    fn error_pages_become_their_words() {
        let page =
            "<html>\n <head>\n  <title>400 Bad Request</title>\n </head>\n <body>\n  <h1>400 Bad Request</h1>\n  \
                    Invalid location<br /><br />\n\n\n\n </body>\n</html>";
        assert_eq!(error_text(page), "400 Bad Request 400 Bad Request Invalid location");
        assert!(error_text(&"é".repeat(400)).ends_with('…'));
    }
}
