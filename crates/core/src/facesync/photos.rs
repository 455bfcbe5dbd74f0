//! The photo endpoint terminals download `picURI`s from: `GET /photo/{token}`, nothing else.
//!
//! A token is 128 random bits (the thread-local CSPRNG), minted per person per request, valid
//! until that request's deadline and revoked as soon as its Ack arrives, so only persons in a
//! pending job are reachable and only for as long as a terminal needs. tiny_http (already used
//! for the metrics endpoint) serves it on threads of its own, several of them (tiny_http's way
//! to serve requests at once), and each photo is written on a thread of its own: a download
//! never waits on the engine, and a terminal on a poor link that stalls mid-download holds one
//! writer, not every other terminal's downloads.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Downloads served at once.
const WORKERS: usize = 8;
/// Largest photo served: a bound on what is read from disk, above the terminals' limit that the
/// import checks ([`super::import::MAX_PHOTO_BYTES`]). Photos imported when that check allowed
/// 1 MiB are still served, and the terminal says whether it takes them (467 is reported).
const MAX_SERVED_BYTES: u64 = 1024 * 1024;

#[derive(Default)]
struct Grants {
    by_token: HashMap<String, (PathBuf, Instant)>,
}

/// The running endpoint; dropping it stops the server.
pub struct PhotoServer {
    grants: Arc<Mutex<Grants>>,
    server: Arc<tiny_http::Server>,
    workers: Vec<std::thread::JoinHandle<()>>,
    url_base: String,
    addr: SocketAddr,
}

impl PhotoServer {
    /// Listens on `listen`; terminals reach it at `url_base` (for example `http://10.0.0.2:8095`),
    /// or at the bound address when `url_base` is `None`.
    pub fn start(listen: SocketAddr, url_base: Option<String>) -> anyhow::Result<Self> {
        let server = Arc::new(
            tiny_http::Server::http(listen)
                .map_err(|e| anyhow::anyhow!("photo endpoint cannot listen on {listen}: {e}"))?,
        );
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| anyhow::anyhow!("photo endpoint is not on an IP address"))?;
        let url_base = url_base
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{addr}"));
        let grants = Arc::new(Mutex::new(Grants::default()));
        let mut workers = Vec::with_capacity(WORKERS);
        for n in 0..WORKERS {
            let (shared, grants) = (Arc::clone(&server), Arc::clone(&grants));
            let worker = std::thread::Builder::new()
                .name(format!("photo-endpoint-{n}"))
                .spawn(move || serve(&shared, &grants));
            match worker {
                Ok(w) => workers.push(w),
                Err(e) => {
                    // Stop the ones started before saying why.
                    for _ in &workers {
                        server.unblock();
                    }
                    for w in workers {
                        let _ = w.join();
                    }
                    return Err(e.into());
                }
            }
        }
        tracing::info!(%addr, url = url_base, "photo endpoint for face terminals listening");
        Ok(Self {
            grants,
            server,
            workers,
            url_base,
            addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the photo URLs name this machine only (`127.0.0.1`, `::1`, `localhost`: the
    /// default `[face] photo_listen`), which a terminal elsewhere on the network cannot reach.
    pub fn urls_are_local_only(&self) -> bool {
        url_host_is_loopback(&self.url_base)
    }

    /// A URL for `photo` valid until `expires`.
    pub fn grant(&self, photo: PathBuf, expires: Instant) -> (String, String) {
        let token = format!("{:032x}", rand::random::<u128>());
        let mut g = self.grants.lock().expect("grant table lock");
        let now = Instant::now();
        g.by_token.retain(|_, (_, exp)| *exp > now);
        g.by_token.insert(token.clone(), (photo, expires));
        let url = format!("{}/photo/{token}", self.url_base);
        (token, url)
    }

    /// Revokes tokens whose request was answered.
    pub fn revoke(&self, tokens: &[String]) {
        let mut g = self.grants.lock().expect("grant table lock");
        for t in tokens {
            g.by_token.remove(t);
        }
    }

    /// How many URLs are valid now.
    pub fn live_grants(&self) -> usize {
        let now = Instant::now();
        let g = self.grants.lock().expect("grant table lock");
        g.by_token.values().filter(|(_, e)| *e > now).count()
    }
}

/// The host of an `http://host[:port]/...` URL is this machine only.
fn url_host_is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Drop for PhotoServer {
    fn drop(&mut self) {
        // One unblock per worker waiting in `incoming_requests`.
        for _ in &self.workers {
            self.server.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Photos being written to terminals at once, each on a thread of its own. tiny_http sets no
/// socket timeouts, so a terminal that stalls mid-download (a reboot, a poor link) holds its
/// writer until TCP gives up: written by the eight workers themselves, eight such terminals
/// stopped every download. Beyond this many, a request is answered 503 (the terminal reports
/// 465, tried again later).
const MAX_WRITERS: usize = 64;

static WRITERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Writes `response` on a thread of its own, or answers 503 when [`MAX_WRITERS`] are busy.
fn respond_apart<R: std::io::Read + Send + 'static>(
    request: tiny_http::Request,
    response: tiny_http::Response<R>,
) -> std::io::Result<()> {
    use std::sync::atomic::Ordering;
    if WRITERS.fetch_add(1, Ordering::SeqCst) >= MAX_WRITERS {
        WRITERS.fetch_sub(1, Ordering::SeqCst);
        tracing::warn!("{MAX_WRITERS} photo downloads under way: one answered 503");
        return request.respond(tiny_http::Response::empty(503));
    }
    let spawned = std::thread::Builder::new()
        .name("photo-writer".into())
        .spawn(move || {
            if let Err(e) = request.respond(response) {
                tracing::debug!(error = %e, "photo response not delivered");
            }
            WRITERS.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        WRITERS.fetch_sub(1, Ordering::SeqCst);
        return Err(e);
    }
    Ok(())
}

fn serve(server: &tiny_http::Server, grants: &Mutex<Grants>) {
    for request in server.incoming_requests() {
        let found = (*request.method() == tiny_http::Method::Get)
            .then(|| request.url().strip_prefix("/photo/"))
            .flatten()
            .and_then(|token| {
                let g = grants.lock().unwrap_or_else(|p| p.into_inner());
                g.by_token
                    .get(token)
                    .filter(|(_, exp)| *exp > Instant::now())
                    .map(|(p, _)| p.clone())
            });
        let response = match found.map(|p| std::fs::File::open(&p).map(|f| (p, f))) {
            Some(Ok((path, file))) => {
                let len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
                if len > MAX_SERVED_BYTES {
                    tracing::warn!(path = %path.display(), len, "photo grew over 1 MiB since import; not served");
                    request.respond(tiny_http::Response::empty(413))
                } else {
                    let header = tiny_http::Header::from_bytes("Content-Type", "image/jpeg")
                        .expect("a static header is valid");
                    respond_apart(
                        request,
                        tiny_http::Response::from_file(file).with_header(header),
                    )
                }
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "a granted photo could not be opened");
                request.respond(tiny_http::Response::empty(404))
            }
            None => request.respond(tiny_http::Response::empty(404)),
        };
        if let Err(e) = response {
            tracing::debug!(error = %e, "photo response not delivered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::Duration;

    fn get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
        request(addr, "GET", path)
    }

    fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, Vec<u8>) {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf);
        let status = text[9..12].parse().unwrap();
        let body = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| buf[i + 4..].to_vec())
            .unwrap_or_default();
        (status, body)
    }

    #[test]
    fn urls_on_this_machine_only_are_told_apart() {
        for local in [
            "http://127.0.0.1:8095",
            "http://localhost:8095/",
            "http://[::1]:8095",
            "http://127.1.2.3",
        ] {
            assert!(url_host_is_loopback(local), "{local}");
        }
        for reachable in [
            "http://10.0.0.2:8095",
            "https://photos.example.org/base",
            "http://[fd00::2]:80",
        ] {
            assert!(!url_host_is_loopback(reachable), "{reachable}");
        }
    }

    #[test]
    fn only_granted_unexpired_unrevoked_tokens_serve_their_photo() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("a.jpg");
        std::fs::write(&photo, b"\xFF\xD8\xFFjpeg").unwrap();
        let server = PhotoServer::start("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let addr = server.local_addr();
        let (token, url) = server.grant(photo.clone(), Instant::now() + Duration::from_secs(60));
        assert!(url.ends_with(&format!("/photo/{token}")));
        assert_eq!(token.len(), 32);
        assert_eq!(
            get(addr, &format!("/photo/{token}")),
            (200, b"\xFF\xD8\xFFjpeg".to_vec())
        );
        assert_eq!(get(addr, "/photo/0123").0, 404);
        assert_eq!(get(addr, &format!("/photo/{token}/../a.jpg")).0, 404);
        assert_eq!(get(addr, "/").0, 404);
        // Nothing but a plain GET of the exact token is served.
        for (method, path) in [
            ("POST", format!("/photo/{token}")),
            ("PUT", format!("/photo/{token}")),
            ("HEAD", format!("/photo/{token}")),
            ("GET", format!("/photo/{token}?download=1")),
            ("GET", format!("/photo/{}", token.to_uppercase())),
            ("GET", format!("//photo/{token}")),
            ("GET", format!("/photo/%2e%2e/{token}")),
            ("GET", photo.display().to_string()),
        ] {
            assert_eq!(request(addr, method, &path).0, 404, "{method} {path}");
        }
        assert_eq!(
            get(addr, &format!("/photo/{token}")).0,
            200,
            "the grant still stands"
        );
        server.revoke(std::slice::from_ref(&token));
        assert_eq!(get(addr, &format!("/photo/{token}")).0, 404);
        let (expired, _) = server.grant(photo, Instant::now() - Duration::from_secs(1));
        assert_eq!(get(addr, &format!("/photo/{expired}")).0, 404);
        assert_eq!(server.live_grants(), 0);
    }
}
