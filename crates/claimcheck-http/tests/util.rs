//! Helpers shared by the integration tests: payloads, a file server in a
//! temporary directory, and a raw-TCP HTTP server for fault injection.
//! Payloads, `files_under` and `eventually` come from
//! natsbridge-test-support; [`Served`] is also in the file server's tests
//! (test-support cannot depend on the file server: a dev-dependency cycle
//! with the file server's own tests).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use natsbridge_claimcheck_http::{HttpDownloader, RetryConfig};
use natsbridge_fileserver::{FileServer, FileServerBuilder};
pub(crate) use natsbridge_test_support::{eventually, files_under, payload};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Backoff with tiny delays: tests count attempts, never time.
pub(crate) fn fast_retry(max_retries: u32) -> RetryConfig {
    RetryConfig::new()
        .with_max_retries(max_retries)
        .with_base_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(4))
        .with_jitter(true)
}

pub(crate) fn downloader(max_retries: u32) -> HttpDownloader {
    HttpDownloader::builder().retry(fast_retry(max_retries)).build().unwrap()
}

/// A [`FileServer`] storing into a temporary directory removed on drop.
pub(crate) struct Served {
    pub(crate) server: FileServer,
    pub(crate) dir: tempfile::TempDir,
}

impl Served {
    pub(crate) fn url(&self) -> &str {
        self.server.url()
    }
}

pub(crate) async fn file_server() -> Served {
    file_server_with(|b| b).await
}

pub(crate) async fn file_server_with(
    configure: impl FnOnce(FileServerBuilder) -> FileServerBuilder,
) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let builder = configure(FileServer::builder().dir(dir.path()));
    let server = builder.bind("127.0.0.1:0").await.unwrap();
    Served { server, dir }
}

/// A request as the fault server saw it.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Seen {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What the fault server does with a request.
pub(crate) enum Reply {
    /// Writes these bytes (a whole HTTP response, possibly a lying one) and
    /// closes the connection.
    Raw(Vec<u8>),
    /// Writes these bytes and then keeps the connection open, silent.
    RawThenHang(Vec<u8>),
    /// Never answers.
    Hang,
    /// Writes `head` (the status line and headers), then the body one byte
    /// every `every`: a slow-loris.
    Trickle { head: Vec<u8>, body: Vec<u8>, every: Duration },
}

/// A well-formed response with a `Content-Length`.
pub(crate) fn respond(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut head =
        format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    Reply::Raw(bytes)
}

/// A response announcing `announced` bytes but carrying `body`.
pub(crate) fn respond_lying(announced: usize, body: &[u8]) -> Reply {
    let mut bytes =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n")
            .into_bytes();
    bytes.extend_from_slice(body);
    Reply::Raw(bytes)
}

/// A chunked response (no `Content-Length`), properly terminated.
pub(crate) fn respond_chunked(body: &[u8]) -> Reply {
    let mut bytes =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for piece in body.chunks(64 * 1024) {
        bytes.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        bytes.extend_from_slice(piece);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    Reply::Raw(bytes)
}

type Handler = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

/// An HTTP/1.1 server on 127.0.0.1 written on raw TCP, so that it can lie
/// about lengths, cut bodies and hang. It counts the requests it sees.
pub(crate) struct FaultServer {
    pub(crate) url: String,
    hits: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultServer {
    /// `handler` gets each request and its number (from 0).
    pub(crate) async fn start(
        handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let task = tokio::spawn({
            let hits = hits.clone();
            let seen = seen.clone();
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else { return };
                    let (hits, seen, handler) = (hits.clone(), seen.clone(), handler.clone());
                    tokio::spawn(async move {
                        let _ = serve_one(stream, &hits, &seen, &*handler).await;
                    });
                }
            }
        });
        FaultServer { url, hits, seen, task }
    }

    /// Requests received so far.
    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_one(
    mut stream: TcpStream,
    hits: &AtomicUsize,
    seen: &Mutex<Vec<Seen>>,
    handler: &Handler,
) -> std::io::Result<()> {
    let request = read_request(&mut stream).await?;
    let n = hits.fetch_add(1, Ordering::SeqCst);
    seen.lock().unwrap().push(request.clone());
    match handler(&request, n) {
        Reply::Raw(bytes) => {
            stream.write_all(&bytes).await?;
            stream.shutdown().await?;
        }
        Reply::RawThenHang(bytes) => {
            stream.write_all(&bytes).await?;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Reply::Hang => tokio::time::sleep(Duration::from_secs(30)).await,
        Reply::Trickle { head, body, every } => {
            stream.write_all(&head).await?;
            for byte in body {
                tokio::time::sleep(every).await;
                stream.write_all(&[byte]).await?;
            }
            stream.shutdown().await?;
        }
    }
    Ok(())
}

/// Reads one request: head, then a body of `Content-Length` bytes.
pub(crate) async fn read_request(stream: &mut TcpStream) -> std::io::Result<Seen> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 64 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut tmp).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_owned();
    let path = first.next().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Ok(Seen { method, path, headers, body })
}

/// A moto S3 server on a free loopback port, with one bucket, killed on drop.
#[cfg(feature = "s3")]
pub(crate) struct Moto {
    child: std::process::Child,
    pub(crate) url: String,
}

#[cfg(feature = "s3")]
pub(crate) const BUCKET: &str = "natsbridge-test";

#[cfg(feature = "s3")]
impl Moto {
    pub(crate) async fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the S3 tests need moto_server on the PATH: pip install 'moto[server]'");
        let moto = Moto { child, url: format!("http://127.0.0.1:{port}") };
        let client = natsbridge_claimcheck_http::client_builder().unwrap().build().unwrap();
        for _ in 0..600 {
            if client.get(&moto.url).send().await.is_ok() {
                let created = client.put(format!("{}/{BUCKET}", moto.url)).send().await.unwrap();
                assert!(created.status().is_success(), "{}", created.status());
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("moto_server did not start");
    }

    pub(crate) fn uploader(&self) -> natsbridge_claimcheck_http::S3Uploader {
        natsbridge_claimcheck_http::S3Uploader::builder(BUCKET)
            .endpoint(&self.url)
            .region("us-east-1")
            .credentials("testing", "testing")
            .build()
            .unwrap()
    }
}

#[cfg(feature = "s3")]
impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `unwrap_err` that does not print the success value (a payload of
/// megabytes) when there is one.
pub(crate) trait Failure<E> {
    fn failure(self) -> E;
}

impl<T, E> Failure<E> for Result<T, E> {
    #[track_caller]
    fn failure(self) -> E {
        match self {
            Ok(_) => panic!("expected an error, got a success"),
            Err(e) => e,
        }
    }
}

#[cfg(feature = "s3")]
/// `moto_server` from the workspace's `.venv` (what `cargo xtask setup`
/// installs), else from the PATH.
fn moto_server() -> std::path::PathBuf {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
    if venv.is_file() { venv } else { "moto_server".into() }
}
