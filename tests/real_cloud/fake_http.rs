//! A tiny scripted HTTP/1.1 server on 127.0.0.1 for the cases a real Glance
//! cannot be made to show on demand (503 then success, 501, a server that
//! never answers) and for Keystone, which CI does not run. It answers each
//! request with the next scripted response (the last one repeats) and
//! records what it was sent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send no `Content-Length` (the body ends with the connection).
    pub no_length: bool,
    /// Never answer (keep the connection open).
    pub hang: bool,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self { status, headers: Vec::new(), body: body.into(), no_length: false, hang: false }
    }

    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self::new(status, body.to_string()).header("Content-Type", "application/json")
    }

    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }

    pub fn hang() -> Self {
        Self { hang: true, ..Self::new(200, "") }
    }
}

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A running fake; it stops with the runtime.
pub struct Fake {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}", self.addr)).expect("url")
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// Starts a fake that answers by route: the first `(path prefix, replies)`
/// whose prefix the request path starts with gives the reply (its next one,
/// the last repeating).
pub async fn start(routes: Vec<(&'static str, Vec<Reply>)>) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let routes = Arc::new(Mutex::new(routes.into_iter().map(|(p, r)| (p, r, 0usize)).collect::<Vec<_>>()));
    let recorded = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let (routes, recorded) = (Arc::clone(&routes), Arc::clone(&recorded));
            tokio::spawn(async move {
                let Some(request) = read_request(&mut socket).await else { return };
                let reply = {
                    let mut routes = routes.lock().unwrap_or_else(PoisonError::into_inner);
                    let route = routes.iter_mut().find(|(p, _, _)| request.path.starts_with(p));
                    match route {
                        Some((_, replies, next)) => {
                            let r = replies[(*next).min(replies.len() - 1)].clone();
                            *next += 1;
                            r
                        }
                        None => Reply::new(404, "no route"),
                    }
                };
                recorded.lock().unwrap_or_else(PoisonError::into_inner).push(request);
                if reply.hang {
                    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                    return;
                }
                let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
                for (k, v) in &reply.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                if !reply.no_length {
                    head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
                }
                head.push_str("\r\n");
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&reply.body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Fake { addr, seen }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))).collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Seen { method, path, headers, body: String::from_utf8_lossy(&body).into_owned() })
}
