//! A Plik-compatible file server for natsbridge: the subset of Plik's API
//! the wire contract uses, plus a plain PUT/GET area, for tests, local
//! setups and `natsbridge fileserver`.
//!
//! [`FileServer`] is its one type. It is a crate of its own so that a
//! library user who never runs a file server does not compile one (the
//! `natsbridge` facade does not depend on it). It is an axum router with
//! tower-http layers (CORS, tracing, panics answered `500`, `nosniff` on
//! every answer), served by [`serve`]: axum's graceful shutdown plus the
//! header read timeout and connection cap `axum::serve` lacks.
//! Of natsbridge it uses only the claim-check role's file I/O
//! (`natsbridge_claimcheck::fileio`); its tests drive it with a plain HTTP
//! client.
//!
//! # Limits
//!
//! `POST /upload` and `POST /file` are open to anyone who can reach the
//! server (an upload token is handed to whoever asks), so everything the
//! server reads from a request is bounded, and a request over a bound is
//! answered and its connection closed without reading the rest:
//!
//! | what | limit | answer |
//! |---|---|---|
//! | request line and headers | 417,792 bytes (hyper's read buffer), 100 headers | `431 Request Header Fields Too Large`, closed |
//! | time to send the request line and headers | 30 s | connection closed, no answer |
//! | `POST /upload` JSON body | 1 MiB (1,048,576 bytes) | `413` `request body too large (limit is 1048576 bytes)`, closed |
//! | multipart preamble and one part's boundary line and headers | 64 KiB (65,536 bytes) | `400` `invalid multipart form : part headers are larger than 65536 bytes`, closed |
//! | file name | 1,024 bytes | `400` `file name is too long, maximum length is 1024 characters` |
//! | file (`POST /file`, `PUT /put`) | [`FileServerBuilder::max_file_size`], default 10 GiB | `400` (Plik) or `413` (PUT) `file too big (limit is set to ...)`; up to 64 MiB more is read and dropped so the client sees the answer |
//! | PUT key | 1,024 bytes, 16 segments of at most 255 | `400` `invalid key` |
//!
//! A part's data is streamed to disk, never held in memory.
//!
//! # Storage directory
//!
//! Nothing below the storage directory is reached through a symbolic link
//! (the directory itself may be one; it is resolved at start): every path
//! component below it is checked before use, files are opened with
//! `O_NOFOLLOW`, a link found where an upload directory should be is
//! removed itself at start (never what it points to), a stored file that is
//! a link is not served (`500` for Plik, `404` for PUT), and a PUT whose key
//! goes through a linked directory (or names a link) is refused with `403`
//! `key goes through a symbolic link`. A `plik` or `put` area that is a link stops the
//! server from starting. Directories the server creates are `0o700`, files
//! (stored files, and upload records, which hold upload tokens) `0o600`,
//! whatever the umask. Every answer carries `X-Content-Type-Options:
//! nosniff`, so a browser never runs a stored file as a page of the
//! server's origin.
#![deny(missing_docs)]

mod clock;
mod cors;
mod disk;
mod error;
mod record;
mod routes;
mod serve;
mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, ErrorKind};
pub use serve::{ServeLimits, serve};

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use store::{Config, State};

/// How often expired uploads are removed from disk.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// A small file server speaking the part of Plik's API the bridge uses, for
/// tests, for local setups and for the `natsbridge fileserver` command.
///
/// Served, on the address it is bound to:
///
/// - `POST /upload`: JSON body (`oneShot`, `ttl` seconds, optional `files`
///   to declare), answers the upload object with `id` and `uploadToken`.
/// - `POST /file/{uploadId}` (and `POST /file/{uploadId}/{fileId}/{fileName}`
///   for a declared file): `multipart/form-data` with the part `file`; the
///   `X-UploadToken` header must match. Answers the file object (`id`,
///   `fileName`, `fileSize`, `fileMd5`, `status`).
/// - `GET` and `HEAD /file/{uploadId}/{fileId}/{fileName}`: the bytes. A
///   one-shot file is deleted once a GET has sent all of it; HEAD does not
///   consume it. Before the upload completes the answer is Plik's 404
///   `file ... is not available : missing` (or `: uploading`).
/// - `PUT`, `GET` and `HEAD /put/{key...}`: a plain store for
///   `natsbridge_claimcheck_http::HttpPutUploader`; the PUT URL is the GET link.
///
/// Errors are Plik's: plain-text bodies, the same status codes and texts
/// (`file too big (limit is set to ...)` with 400 for an upload over the
/// maximum file size). Uploads and downloads are streamed between the socket
/// and the disk, so memory stays flat whatever the file size. Ids and keys
/// are checked before any path is built: nothing outside the storage
/// directory can be read or written.
///
/// Upload records are kept on disk beside their files
/// (`{dir}/plik/{uploadId}/upload.json`, written atomically), so a server
/// restarted on the same directory still serves, expires and
/// one-shot-deletes what the previous run stored; PUT files expire the
/// default TTL after they were written (their modification time). At start
/// an upload directory with a missing or unreadable record is logged and
/// removed. An upload that holds nothing yet (created, no file declared or
/// posted) or no longer (every file consumed) has no record: a restart
/// forgets it.
///
/// Lifecycle events are logged at info level through `tracing` (start,
/// upload created, file uploaded, downloaded, one-shot file consumed,
/// expired); request details at debug.
///
/// ```
/// use natsbridge_fileserver::FileServer;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let dir = std::env::temp_dir().join(format!("natsbridge-doc-{}", std::process::id()));
/// let server = FileServer::builder().dir(&dir).bind("127.0.0.1:0").await?;
///
/// // The PUT area: what is PUT at a URL is served at the same URL.
/// let link = format!("{}/put/doc/hello.txt", server.url());
/// # #[allow(deprecated)] // reqwest needs a rustls provider in a workspace build.
/// # let _ = rustls::crypto::ring::default_provider().install_default();
/// let http = reqwest::Client::new();
/// http.put(&link).body("hello").send().await?.error_for_status()?;
/// assert_eq!(http.get(&link).send().await?.text().await?, "hello");
///
/// server.shutdown().await;
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
pub struct FileServer {
    addr: SocketAddr,
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Configures a [`FileServer`]; see [`FileServer::builder`].
#[must_use]
#[derive(Clone, Debug)]
pub struct FileServerBuilder {
    dir: Option<PathBuf>,
    config: Config,
    cors: cors::Cors,
}

impl FileServer {
    /// A builder with the defaults: maximum file size 10 GiB, default TTL 24
    /// hours, no maximum TTL. The storage directory must be set.
    pub fn builder() -> FileServerBuilder {
        let config = Config {
            max_file_size: 10 << 30,
            default_ttl: Duration::from_secs(24 * 3600),
            max_ttl: None,
            md5: true,
            clock: Arc::new(SystemClock),
        };
        FileServerBuilder { dir: None, config, cors: cors::Cors::default() }
    }

    /// The base URL, `http://ip:port`, to give to
    /// `natsbridge_claimcheck_http::PlikUploader`. A server bound to an unspecified
    /// address (`0.0.0.0`) is named by the loopback address here.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL template for `natsbridge_claimcheck_http::HttpPutUploader`:
    /// `{url}/put/{uuid}/{name}`.
    pub fn put_template(&self) -> String {
        format!("{}/put/{{uuid}}/{{name}}", self.url)
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets requests in flight finish (for up
    /// to 5 seconds) and waits until the server has stopped.
    ///
    /// Dropping the handle stops the server too, without waiting.
    pub async fn shutdown(mut self) {
        let task = self.task.take();
        drop(self); // Sends the stop.
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl fmt::Debug for FileServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileServer").field("url", &self.url).finish_non_exhaustive()
    }
}

impl FileServerBuilder {
    /// Where the files are stored (created if missing). Required.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Lets web pages served from `origin` (`https://app.example`, scheme,
    /// host and port as the browser sends them) call the server: it
    /// answers CORS preflights and adds `Access-Control-Allow-Origin` to
    /// their responses. `*` allows every origin. Plik answers no CORS, so a
    /// browser peer needs a proxy in front of it; this server needs none.
    /// Default: no origin (same-origin pages and non-browser clients only).
    pub fn cors_origin(mut self, origin: impl Into<String>) -> Self {
        let origin = origin.into();
        if origin == "*" {
            self.cors.any = true;
        } else {
            self.cors.origins.push(origin.trim_end_matches('/').to_string());
        }
        self
    }

    /// Lets pages served from any loopback origin (`http://127.0.0.1:*`,
    /// `http://localhost:*`, `http://[::1]:*`, and `https`) call the server:
    /// what a local development setup needs.
    pub fn cors_loopback(mut self) -> Self {
        self.cors.loopback = true;
        self
    }

    /// The largest file accepted, in bytes. Default 10 GiB.
    pub fn max_file_size(mut self, bytes: u64) -> Self {
        self.config.max_file_size = bytes;
        self
    }

    /// How long files are kept when the upload asks for no TTL (or `ttl: 0`).
    /// Applies to PUT files as well. Default 24 hours.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.config.default_ttl = ttl;
        self
    }

    /// The longest TTL an upload may ask for; with a maximum, an infinite TTL
    /// (`ttl` < 0) is refused too. Default: no maximum.
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.config.max_ttl = Some(ttl);
        self
    }

    /// Whether uploads are hashed to fill Plik's `fileMd5`. Default `true`.
    /// MD5 is the largest CPU cost of an upload (about 600 MB/s on one
    /// core); without it `fileMd5` is empty, which no natsbridge peer reads.
    pub fn md5(mut self, md5: bool) -> Self {
        self.config.md5 = md5;
        self
    }

    /// Where the server reads the time, for expiry. Default: [`SystemClock`].
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.config.clock = Arc::new(clock);
        self
    }

    /// Binds to `addr` (for tests, `"127.0.0.1:0"`: a free port) and starts
    /// serving on the current tokio runtime.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> Result<FileServer, Error> {
        let listener =
            TcpListener::bind(addr).await.map_err(|e| Error::io("binding the file server", e))?;
        self.listen(listener).await
    }

    /// Starts serving on a listener already bound.
    pub async fn listen(self, listener: TcpListener) -> Result<FileServer, Error> {
        let dir = self
            .dir
            .ok_or_else(|| Error::invalid_input("the file server needs a storage directory"))?;
        let dir_shown = dir.display().to_string();
        let state = Arc::new(State::open(dir, self.config).await?);
        let addr = listener.local_addr().map_err(|e| Error::io("reading the bound address", e))?;
        let mut shown = addr;
        if shown.ip().is_unspecified() {
            shown.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        tracing::info!(
            address = %addr,
            dir = %dir_shown,
            uploads = state.uploads().len(),
            max_file_size = state.config.max_file_size,
            default_ttl_secs = state.config.default_ttl.as_secs(),
            "file server: started"
        );
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(listener, state, self.cors, stopped));
        Ok(FileServer { addr, url: format!("http://{shown}"), stop: Some(stop), task: Some(task) })
    }
}

async fn run(
    listener: TcpListener,
    state: Arc<State>,
    cors: cors::Cors,
    stopped: oneshot::Receiver<()>,
) {
    let (swept, mut tick) = (state.clone(), tokio::time::interval(SWEEP_EVERY));
    let sweeper = tokio::spawn(async move {
        loop {
            tick.tick().await;
            swept.sweep().await;
        }
    });
    let router = routes::router(state, cors);
    // A stop sent, or the handle dropped.
    serve(listener, router, ServeLimits::default(), async { stopped.await.unwrap_or(()) }).await;
    sweeper.abort();
    tracing::info!("file server: stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A handler that panics while holding the uploads lock (a route only
    /// unit tests have) gets a 500, and every request after it is served as
    /// before: the poisoned lock is recovered.
    #[tokio::test]
    async fn a_panicking_handler_does_not_break_later_requests() {
        let dir = tempfile::tempdir().unwrap();
        let server = FileServer::builder().dir(dir.path()).bind("127.0.0.1:0").await.unwrap();
        #[allow(deprecated)] // As tests/util.rs's install_tls_provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let create = || http.post(format!("{}/upload", server.url())).body("{}").send();
        assert_eq!(create().await.unwrap().status(), 200);

        for _ in 0..2 {
            let mut tcp = tokio::net::TcpStream::connect(server.local_addr()).await.unwrap();
            tcp.write_all(
                b"POST /test-panic HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
            let mut answer = String::new();
            tcp.read_to_string(&mut answer).await.unwrap();
            assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
        }

        // Both routes that take the uploads lock still answer.
        let created = create().await.unwrap();
        assert_eq!(created.status(), 200);
        let upload: serde_json::Value =
            serde_json::from_str(&created.text().await.unwrap()).unwrap();
        let id = upload["id"].as_str().unwrap();
        let missing = format!("{}/file/{id}/AAAAAAAAAAAAAAAA/x.bin", server.url());
        let reply = http.get(missing).send().await.unwrap();
        assert_eq!(reply.status(), 404);
        assert_eq!(reply.text().await.unwrap(), "file AAAAAAAAAAAAAAAA not found\n");
        server.shutdown().await;
    }
}
