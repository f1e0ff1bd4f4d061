//! Downloads with backoff, size and checksum checks, and URL safety.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};

use crate::client::build_client;
use crate::error::{Error, ErrorKind, redact_url};
use crate::fileio::FileWriter;
use crate::handler::{BoxFuture, DownloadHandler, DownloadRequest, DownloadSink, Downloaded};
use crate::plik::failure;
use crate::retry::RetryConfig;

/// Memory reserved up front for a download to memory, at most: the declared
/// size is the sender's word, and a lie must not cost a large allocation
/// before a single byte has arrived.
const PREALLOCATE_LIMIT: u64 = 64 * 1024 * 1024;

/// Downloads links over HTTP(S) with backoff, exactly as SPEC.md says, and
/// checks what arrives.
///
/// - **Backoff**: [`RetryConfig`] (5 retries, 100 ms doubling to at most
///   5,000 ms, with jitter). Connection errors, timeouts, 5xx, 429, 408 and
///   Plik's "not there yet" 404s are retried; everything else fails at once
///   (see [`ErrorKind`]). Each try downloads the whole file again (Plik has no
///   ranges).
/// - **Timeouts per try**: `timeout` until the response headers arrive,
///   `read_timeout` between two pieces of the body, so a large file is never
///   cut off for being large, only for stalling; and, once a body has been
///   arriving for longer than `read_timeout`, an average of at least
///   `min_rate` bytes per second, so a server trickling a byte now and then
///   (a slow-loris) cannot hold a receiver forever.
/// - **Size**: exactly [`DownloadRequest::size`] bytes must arrive. A
///   `Content-Length` that disagrees fails before the body is read; a body
///   that runs long fails as soon as it passes the size.
/// - **Integrity**: [`DownloadRequest::sha256`] is verified when given.
/// - **Safety**: only `http` and `https`; an optional allowlist of origins;
///   a maximum download size (default 1 GiB) checked against the declared size
///   before any request and against the bytes as they arrive; redirects are
///   never followed (a Plik error redirect is reported as the error it
///   carries).
/// - **Streaming**: to memory (reserving the declared size, up to 64 MiB) or
///   to a file (a temporary file beside the target, renamed into place only
///   when complete and verified, removed otherwise).
///
/// ```no_run
/// use natsbridge_claimcheck_http::{DownloadHandlerExt, DownloadRequest, HttpDownloader};
///
/// # async fn run() -> Result<(), natsbridge_claimcheck_http::Error> {
/// let downloader = HttpDownloader::builder()
///     .allow_origin("http://localhost:8080")
///     .max_download_size(512 * 1024 * 1024)
///     .build()?;
/// let request = DownloadRequest::new("http://localhost:8080/file/u/f/table.arrow", 600_000);
/// let bytes = downloader.download_bytes(&request).await?;
/// assert_eq!(bytes.len(), 600_000);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpDownloader {
    client: reqwest::Client,
    retry: RetryConfig,
    timeout: Duration,
    read_timeout: Duration,
    min_rate: u64,
    max_download_size: u64,
    allowed_origins: Vec<reqwest::Url>,
    progress: Option<Progress>,
}

/// The callback of [`HttpDownloaderBuilder::progress`].
type Progress = Arc<dyn Fn(&DownloadRequest, u64) + Send + Sync>;

/// Builds an [`HttpDownloader`]; see [`HttpDownloader::builder`].
#[must_use]
pub struct HttpDownloaderBuilder {
    retry: RetryConfig,
    timeout: Duration,
    read_timeout: Duration,
    min_rate: u64,
    max_download_size: u64,
    allowed_origins: Vec<String>,
    client: Option<reqwest::Client>,
    progress: Option<Progress>,
}

impl HttpDownloader {
    /// A downloader with the defaults: [`RetryConfig::default`], 30 s
    /// timeouts, at least 1 KiB/s, 1 GiB maximum, any `http`/`https` origin.
    pub fn new() -> Result<HttpDownloader, Error> {
        HttpDownloader::builder().build()
    }

    /// A builder starting from the defaults.
    pub fn builder() -> HttpDownloaderBuilder {
        HttpDownloaderBuilder {
            retry: RetryConfig::default(),
            timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(30),
            min_rate: 1024,
            max_download_size: 1 << 30,
            allowed_origins: Vec::new(),
            client: None,
            progress: None,
        }
    }

    /// Refuses what must not be fetched, before any request.
    fn check(&self, request: &DownloadRequest) -> Result<(reqwest::Url, Option<[u8; 32]>), Error> {
        let url = reqwest::Url::parse(&request.url).map_err(|_| {
            Error::new(
                ErrorKind::UrlRefused,
                format!("not an absolute URL: {}", redact_url(&request.url)),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::new(
                ErrorKind::UrlRefused,
                format!("only http and https links are fetched: {}", redact_url(url.as_str())),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::new(
                ErrorKind::UrlRefused,
                format!("no host in {}", redact_url(url.as_str())),
            ));
        }
        if !self.allowed_origins.is_empty()
            && !self.allowed_origins.iter().any(|o| o.origin() == url.origin())
        {
            return Err(Error::new(
                ErrorKind::UrlRefused,
                format!(
                    "{} is not an allowed file server origin",
                    url.origin().ascii_serialization()
                ),
            ));
        }
        if let Some(size) = request.size
            && size > self.max_download_size
        {
            return Err(Error::new(
                ErrorKind::TooLarge { limit: self.max_download_size },
                format!("{} declares {size} bytes", redact_url(url.as_str())),
            ));
        }
        let sha = request.sha256.as_deref().map(parse_sha256).transpose()?;
        Ok((url, sha))
    }

    async fn download_inner(
        &self,
        request: &DownloadRequest,
        sink: DownloadSink,
    ) -> Result<Downloaded, Error> {
        let (url, sha) = self.check(request)?;
        let mut target = Target::new(sink, request.size.unwrap_or(0));
        let mut retry = 0;
        loop {
            let result = match target.start().await {
                Ok(()) => self.try_once(request, &url, sha.as_ref(), &mut target).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => return target.finish().await,
                Err(e) if e.is_retryable() && retry < self.retry.max_retries => {
                    tracing::debug!(
                        url = %redact_url(url.as_str()),
                        retry,
                        error = %e,
                        "download failed, retrying"
                    );
                    tokio::time::sleep(self.retry.delay(retry)).await;
                    retry += 1;
                }
                Err(e) if retry > 0 => return Err(e.context(format!("after {} tries", retry + 1))),
                Err(e) => return Err(e),
            }
        }
    }

    /// A link with no declared size that sends more than this downloader
    /// takes.
    fn too_large(&self, url: &reqwest::Url, at_least: u64) -> Error {
        Error::new(
            ErrorKind::TooLarge { limit: self.max_download_size },
            format!(
                "{} sends {at_least} bytes or more and declared no size",
                redact_url(url.as_str())
            ),
        )
    }

    async fn try_once(
        &self,
        request: &DownloadRequest,
        url: &reqwest::Url,
        sha: Option<&[u8; 32]>,
        target: &mut Target,
    ) -> Result<(), Error> {
        // With no declared size, the cap is the most this downloader takes.
        let (declared, limit) = (request.size, request.size.unwrap_or(self.max_download_size));
        let size = request.size_text();
        let send = self.client.get(url.clone()).send();
        let mut response = match tokio::time::timeout(self.timeout, send).await {
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::TimedOut,
                    format!(
                        "no response from {} within {:?}",
                        redact_url(url.as_str()),
                        self.timeout
                    ),
                ));
            }
            Ok(Err(e)) => return Err(Error::from_reqwest(e, url.as_str())),
            Ok(Ok(r)) => r,
        };
        if !response.status().is_success() {
            return Err(failure(response, url.as_str()).await);
        }
        match (response.content_length(), declared) {
            (Some(announced), Some(expected)) if announced != expected => {
                return Err(Error::new(
                    ErrorKind::SizeMismatch { expected, actual: announced },
                    format!("{} announces a different length", redact_url(url.as_str())),
                ));
            }
            (Some(announced), None) if announced > limit => {
                return Err(self.too_large(url, announced));
            }
            _ => {}
        }
        let mut hasher = sha.map(|_| Sha256::new());
        let mut received = 0u64;
        let body_started = tokio::time::Instant::now();
        loop {
            let chunk = match tokio::time::timeout(self.read_timeout, response.chunk()).await {
                Err(_) => {
                    return Err(Error::new(
                        ErrorKind::TimedOut,
                        format!(
                            "{} stalled after {received} of {size} bytes",
                            redact_url(url.as_str())
                        ),
                    ));
                }
                Ok(Err(e)) => {
                    return Err(Error::from_reqwest(e, url.as_str())
                        .context(format!("body cut after {received} of {size} bytes")));
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => chunk,
            };
            received += chunk.len() as u64;
            let elapsed = body_started.elapsed();
            if received < limit
                && elapsed > self.read_timeout
                && u128::from(received) * 1000 < u128::from(self.min_rate) * elapsed.as_millis()
            {
                return Err(Error::new(
                    ErrorKind::TimedOut,
                    format!(
                        "{} trickled {received} of {size} bytes in {elapsed:?}, under {} bytes/s",
                        redact_url(url.as_str()),
                        self.min_rate
                    ),
                ));
            }
            if received > limit {
                return Err(match declared {
                    Some(expected) => Error::new(
                        ErrorKind::SizeMismatch { expected, actual: received },
                        format!("{} sent more than declared", redact_url(url.as_str())),
                    ),
                    None => self.too_large(url, received),
                });
            }
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            target.write(chunk).await?;
            if let Some(progress) = &self.progress {
                progress(request, received);
            }
        }
        if let Some(expected) = declared
            && received != expected
        {
            return Err(Error::new(
                ErrorKind::SizeMismatch { expected, actual: received },
                format!("{} sent less than declared", redact_url(url.as_str())),
            ));
        }
        if let (Some(h), Some(want)) = (hasher, sha) {
            let got: [u8; 32] = h.finalize().into();
            if &got != want {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "{}: expected SHA-256 {}, got {}",
                        redact_url(url.as_str()),
                        hex(want),
                        hex(&got)
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl DownloadHandler for HttpDownloader {
    fn download<'a>(
        &'a self,
        request: &'a DownloadRequest,
        sink: DownloadSink,
    ) -> BoxFuture<'a, Result<Downloaded, Error>> {
        Box::pin(self.download_inner(request, sink))
    }
}

impl fmt::Debug for HttpDownloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpDownloader")
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .field("read_timeout", &self.read_timeout)
            .field("min_rate", &self.min_rate)
            .field("max_download_size", &self.max_download_size)
            .field(
                "allowed_origins",
                &self
                    .allowed_origins
                    .iter()
                    .map(|o| o.origin().ascii_serialization())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl HttpDownloaderBuilder {
    /// The backoff. Default [`RetryConfig::default`].
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// How long one try may wait for the response headers (connecting
    /// included). Default 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long the body may stall between two pieces. Default 30 s.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The slowest average a body may arrive at, in bytes per second, once
    /// it has been arriving for longer than the read timeout; slower is
    /// [`ErrorKind::TimedOut`] (retried). Default 1,024 (1 KiB/s); 0 turns
    /// the check off.
    pub fn min_rate(mut self, bytes_per_second: u64) -> Self {
        self.min_rate = bytes_per_second;
        self
    }

    /// The largest payload accepted, in bytes. Default 1 GiB.
    pub fn max_download_size(mut self, bytes: u64) -> Self {
        self.max_download_size = bytes;
        self
    }

    /// Accepts links on this origin (`scheme://host[:port]`; a path is
    /// ignored). Once any origin is given, links elsewhere are refused with
    /// [`ErrorKind::UrlRefused`] before any request. Default: any origin.
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.allowed_origins.push(origin.into());
        self
    }

    /// Calls `progress` with the request and the number of bytes received
    /// so far each time a piece of the body arrives (from zero again when a
    /// try is retried): the hook for a progress bar. It runs on every piece,
    /// so it should be cheap. Default: none.
    pub fn progress(
        mut self,
        progress: impl Fn(&DownloadRequest, u64) + Send + Sync + 'static,
    ) -> Self {
        self.progress = Some(Arc::new(progress));
        self
    }

    /// The HTTP client to use instead of the crate's own. It should not
    /// follow redirects (`reqwest::redirect::Policy::none()`), or the
    /// origin allowlist can be walked around.
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Checks the settings and builds the downloader.
    pub fn build(self) -> Result<HttpDownloader, Error> {
        let mut allowed_origins = Vec::with_capacity(self.allowed_origins.len());
        for origin in &self.allowed_origins {
            let url = reqwest::Url::parse(origin)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!("not an http(s) origin: {}", redact_url(origin)),
                    )
                })?;
            allowed_origins.push(url);
        }
        let client = match self.client {
            Some(c) => c,
            None => build_client()?,
        };
        Ok(HttpDownloader {
            client,
            retry: self.retry,
            timeout: self.timeout,
            read_timeout: self.read_timeout,
            min_rate: self.min_rate,
            max_download_size: self.max_download_size,
            allowed_origins,
            progress: self.progress,
        })
    }
}

impl fmt::Debug for HttpDownloaderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpDownloaderBuilder")
            .field("retry", &self.retry)
            .field("max_download_size", &self.max_download_size)
            .finish_non_exhaustive()
    }
}

/// Where the bytes of the current try go.
enum Target {
    Memory(BytesMut),
    File { dest: PathBuf, temp: PartFile, writer: Option<FileWriter> },
}

impl Target {
    fn new(sink: DownloadSink, size: u64) -> Target {
        match sink {
            DownloadSink::Memory => {
                Target::Memory(BytesMut::with_capacity(size.min(PREALLOCATE_LIMIT) as usize))
            }
            DownloadSink::File(dest) => {
                let temp = PartFile::beside(&dest);
                Target::File { dest, temp, writer: None }
            }
        }
    }

    /// Starts a try from zero.
    async fn start(&mut self) -> Result<(), Error> {
        match self {
            Target::Memory(buf) => buf.clear(),
            Target::File { temp, writer, .. } => {
                // The previous try's writer must let go of the file before
                // it is truncated for this one.
                if let Some(previous) = writer.take() {
                    previous.abandon().await;
                }
                let file = FileWriter::create(temp.path())
                    .await
                    .map_err(|e| Error::io(format!("creating {}", temp.path().display()), e))?;
                *writer = Some(file);
            }
        }
        Ok(())
    }

    async fn write(&mut self, chunk: Bytes) -> Result<(), Error> {
        match self {
            Target::Memory(buf) => buf.extend_from_slice(&chunk),
            Target::File { temp, writer, .. } => {
                if let Some(w) = writer.as_mut() {
                    w.write_bytes(chunk)
                        .await
                        .map_err(|e| Error::io(format!("writing {}", temp.path().display()), e))?;
                }
            }
        }
        Ok(())
    }

    async fn finish(self) -> Result<Downloaded, Error> {
        match self {
            Target::Memory(buf) => Ok(Downloaded::Bytes(buf.freeze())),
            Target::File { dest, temp, writer } => {
                if let Some(w) = writer {
                    w.finish()
                        .await
                        .map_err(|e| Error::io(format!("writing {}", temp.path().display()), e))?;
                }
                tokio::fs::rename(temp.path(), &dest)
                    .await
                    .map_err(|e| Error::io(format!("renaming into {}", dest.display()), e))?;
                temp.keep();
                Ok(Downloaded::File(dest))
            }
        }
    }
}

/// A temporary file beside a download's destination, `dir/.name.<random>.part`
/// (one file system, so the final rename is atomic), removed when dropped
/// unless kept: a failed, cancelled or panicked download leaves nothing
/// behind. Download handlers of other stores use it too.
#[derive(Debug)]
pub struct PartFile(PathBuf);

impl PartFile {
    /// The part file for `dest` (not created yet).
    pub fn beside(dest: &Path) -> PartFile {
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        PartFile(dest.with_file_name(format!(".{name}.{}.part", uuid::Uuid::new_v4().simple())))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Keeps the file (call after renaming it into place).
    pub fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The 32 bytes of a SHA-256 written as 64 hex digits (the `sha256` key of a
/// payload record); anything else is an [`ErrorKind::InvalidInput`] error.
pub fn sha256_from_hex(hex_digest: &str) -> Result<[u8; 32], Error> {
    parse_sha256(hex_digest)
}

fn parse_sha256(hex_digest: &str) -> Result<[u8; 32], Error> {
    let s = hex_digest.trim().as_bytes();
    let bad = || {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "a SHA-256 is 64 hex digits, not {:?}",
                hex_digest.chars().take(80).collect::<String>()
            ),
        )
    };
    if s.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16).ok_or_else(bad)?;
        let lo = (pair[1] as char).to_digit(16).ok_or_else(bad)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Ok(out)
}

/// Lowercase hex, the form the sender puts in the payload record.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_round_trip() {
        let digest: [u8; 32] = Sha256::digest(b"abc").into();
        let h = hex(&digest);
        assert_eq!(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(parse_sha256(&h).unwrap(), digest);
        assert_eq!(parse_sha256(&h.to_uppercase()).unwrap(), digest);
        assert_eq!(parse_sha256("abc").unwrap_err().kind(), &ErrorKind::InvalidInput);
        assert_eq!(parse_sha256(&"g".repeat(64)).unwrap_err().kind(), &ErrorKind::InvalidInput);
    }

    #[test]
    fn temp_file_sits_beside_the_target() {
        let t = PartFile::beside(Path::new("/data/out/x.bin")).path().to_path_buf();
        assert_eq!(t.parent(), Some(Path::new("/data/out")));
        assert!(t.file_name().unwrap().to_str().unwrap().starts_with(".x.bin."));
        let t = PartFile::beside(Path::new("x.bin")).path().to_path_buf();
        assert_eq!(t.parent(), Some(Path::new("")));
    }
}
