//! Downloads with backoff, size and checksum checks, and URL safety.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use natsbridge_claimcheck::{
    BoxFuture, DownloadHandler, DownloadRequest, DownloadSink, Downloaded, RetryConfig,
    VerifiedSink,
};

use crate::client::build_client;
use crate::error::{Error, ErrorKind, from_reqwest, redact_url};
use crate::plik::failure;

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
/// - **Safety**: only `http` and `https`; an optional allowlist of origins
///   (with [`deny_unlisted`](HttpDownloaderBuilder::deny_unlisted), an
///   empty allowlist refuses every link); credentials of the receiver's own
///   for an allowed origin (its user info, sent as basic auth), never taken
///   from the link;
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
    allowed_origins: Vec<AllowedOrigin>,
    deny_unlisted: bool,
    progress: Option<Progress>,
}

/// A user name and password, sent as basic auth.
type Credentials = (String, Option<String>);

/// An origin links may be fetched from, with the receiver's own credentials
/// for it, if any.
#[derive(Clone)]
struct AllowedOrigin {
    /// `scheme://host[:port]`, as `Url::origin` serializes it.
    origin: String,
    /// User name and password, from the user info of the URL it was given as.
    credentials: Option<Credentials>,
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
    deny_unlisted: bool,
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
            deny_unlisted: false,
            client: None,
            progress: None,
        }
    }

    /// Refuses what must not be fetched, before any request; returns the
    /// URL with the credentials to send, the receiver's own for an allowed
    /// origin (never those the link itself may carry).
    fn check(
        &self,
        request: &DownloadRequest,
    ) -> Result<(reqwest::Url, Option<&Credentials>), Error> {
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
        let origin = url.origin().ascii_serialization();
        let allowed = self.allowed_origins.iter().find(|o| o.origin == origin);
        if allowed.is_none() && (self.deny_unlisted || !self.allowed_origins.is_empty()) {
            let why = if self.allowed_origins.is_empty() {
                "no file server origin is configured to fetch links from"
            } else {
                "it is not an allowed file server origin"
            };
            return Err(Error::new(
                ErrorKind::UrlRefused,
                format!("link to {origin} refused: {why}"),
            ));
        }
        let mut url = url;
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Ok((url, allowed.and_then(|o| o.credentials.as_ref())))
    }

    async fn download_inner(
        &self,
        request: &DownloadRequest,
        sink: DownloadSink,
    ) -> Result<Downloaded, Error> {
        let (url, credentials) = self.check(request)?;
        let mut target = VerifiedSink::new(request, sink, self.max_download_size)?;
        let mut retry = 0;
        loop {
            let result = match target.start().await {
                Ok(()) => self.try_once(request, &url, credentials, &mut target).await,
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

    async fn try_once(
        &self,
        request: &DownloadRequest,
        url: &reqwest::Url,
        credentials: Option<&Credentials>,
        target: &mut VerifiedSink,
    ) -> Result<(), Error> {
        let size =
            target.declared().map_or_else(|| "an undeclared number of".into(), |n| n.to_string());
        let mut get = self.client.get(url.clone());
        if let Some((user, password)) = credentials {
            get = get.basic_auth(user, password.as_ref());
        }
        let send = get.send();
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
            Ok(Err(e)) => return Err(from_reqwest(e, url.as_str())),
            Ok(Ok(r)) => r,
        };
        if !response.status().is_success() {
            return Err(failure(response, url.as_str()).await);
        }
        if let Some(announced) = response.content_length() {
            target.check_announced(announced)?;
        }
        let body_started = tokio::time::Instant::now();
        loop {
            let received = target.received();
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
                    return Err(from_reqwest(e, url.as_str())
                        .context(format!("body cut after {received} of {size} bytes")));
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => chunk,
            };
            let received = received + chunk.len() as u64;
            let elapsed = body_started.elapsed();
            if received < target.limit()
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
            target.write(chunk).await?;
            if let Some(progress) = &self.progress {
                progress(request, received);
            }
        }
        // Checked per try, so a try whose bytes fail is retried like any
        // other failure that is (none of these kinds are).
        target.verify()
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
                &self.allowed_origins.iter().map(|o| o.origin.as_str()).collect::<Vec<_>>(),
            )
            .field("deny_unlisted", &self.deny_unlisted)
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
    /// [`ErrorKind::UrlRefused`] before any request. Default: any origin
    /// (unless [`deny_unlisted`](Self::deny_unlisted)).
    ///
    /// User info in the URL (`http://user:pw@files.internal`) is this
    /// receiver's credentials for the origin: sent as basic auth with every
    /// download from it, and only from it. Links never carry credentials
    /// (the uploaders leave them out); any a peer's link does carry are
    /// dropped, never sent.
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.allowed_origins.push(origin.into());
        self
    }

    /// With `true`, an empty allowlist refuses every link
    /// ([`ErrorKind::UrlRefused`], before any request) instead of allowing
    /// every origin: for a receiver that sends what it fetched on to others
    /// (an echoing responder), where a link to an internal service would
    /// otherwise read that service for the peer. Default `false` (the seeds'
    /// receivers fetch any `http`/`https` link).
    pub fn deny_unlisted(mut self, deny: bool) -> Self {
        self.deny_unlisted = deny;
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
            let credentials = (!url.username().is_empty()).then(|| {
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
                };
                (decode(url.username()), url.password().map(decode))
            });
            allowed_origins
                .push(AllowedOrigin { origin: url.origin().ascii_serialization(), credentials });
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
            deny_unlisted: self.deny_unlisted,
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
