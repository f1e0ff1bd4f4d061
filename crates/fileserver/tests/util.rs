//! Helpers shared by the file server's tests: payloads, a file server in a
//! temporary directory, a client for the requests a client library never
//! sends.

use std::path::Path;
use std::time::Duration;

use natsbridge_claimcheck_http::{HttpDownloader, RetryConfig};
use natsbridge_fileserver::{FileServer, FileServerBuilder};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Deterministic bytes that do not compress to nothing.
pub(crate) fn payload(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ len as u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Backoff with tiny delays: tests count attempts, never time.
pub(crate) fn fast_retry(max_retries: u32) -> RetryConfig {
    RetryConfig {
        max_retries,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
        jitter: true,
    }
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

/// Every file under `dir`, recursively.
pub(crate) fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Waits until `condition` holds, checking every 10 ms, for at most 30
/// seconds (a bound for a stuck server, not a measure of its speed).
pub(crate) async fn eventually(mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "condition never became true");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends raw request bytes and returns the status code and the body text
/// (for requests a well-behaved client would never send).
pub(crate) async fn raw_request(base_url: &str, request: &str) -> (u16, String) {
    let addr = base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
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
