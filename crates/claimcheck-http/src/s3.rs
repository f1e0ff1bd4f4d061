//! S3-compatible storage with presigned GET links.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::{ClientOptions, HttpClient, HttpConnector};
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};

use crate::body::{SourceBody, take_failure};
use crate::client::build_client;
use crate::error::{Error, ErrorKind, redact_url};
use natsbridge_claimcheck::{BoxFuture, UploadHandler, UploadSource};
use natsbridge_claimcheck::{RetryConfig, retry_upload};

/// Payloads up to this size go up in one PUT; larger ones as a multipart
/// upload of parts this size.
const PART: usize = 8 * 1024 * 1024;
/// Parts in flight at once: memory stays under `PART * (PARALLEL + 1)`.
const PARALLEL: usize = 2;

/// Uploads to S3-compatible storage (AWS S3, MinIO, Ceph, moto, ...) and
/// returns a presigned GET URL, which any peer can download with a plain GET:
/// no credentials travel in the envelope, and the link dies after
/// `link_ttl`.
///
/// Objects go to `{prefix}{uuid}/{name}`. Payloads larger than 8 MiB are sent
/// as a multipart upload, streamed (at most about 24 MiB in memory). The
/// presigned URL carries its signature in the query string, which this
/// crate's errors and `Debug` never show.
///
/// Requires the `s3` feature.
///
/// ```no_run
/// use std::time::Duration;
/// use natsbridge_claimcheck_http::{S3Uploader, UploadHandlerExt};
///
/// # async fn run() -> Result<(), natsbridge_claimcheck_http::Error> {
/// let s3 = S3Uploader::builder("payloads")
///     .endpoint("http://127.0.0.1:5000")
///     .region("us-east-1")
///     .credentials("AKIA...", "secret")
///     .link_ttl(Duration::from_secs(600))
///     .build()?;
/// let link = s3.upload_file("video.mp4", "/data/video.mp4").await?;
/// # Ok(()) }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "s3")))]
#[derive(Clone)]
pub struct S3Uploader {
    retry: RetryConfig,
    store: Arc<AmazonS3>,
    bucket: String,
    prefix: String,
    link_ttl: Duration,
}

/// Builds an [`S3Uploader`]; see [`S3Uploader::builder`].
#[cfg_attr(docsrs, doc(cfg(feature = "s3")))]
#[must_use]
pub struct S3UploaderBuilder {
    retry: RetryConfig,
    inner: AmazonS3Builder,
    bucket: String,
    prefix: String,
    link_ttl: Duration,
    client: Option<reqwest::Client>,
}

impl S3Uploader {
    /// A builder for uploads to `bucket`, starting from the standard AWS
    /// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_REGION`,
    /// `AWS_ENDPOINT`, ...), which the builder's methods override.
    pub fn builder(bucket: impl Into<String>) -> S3UploaderBuilder {
        let bucket = bucket.into();
        S3UploaderBuilder {
            retry: RetryConfig::default(),
            inner: AmazonS3Builder::from_env().with_bucket_name(&bucket),
            bucket,
            prefix: "natsbridge/".into(),
            link_ttl: Duration::from_secs(3600),
            client: None,
        }
    }

    async fn upload_inner(&self, name: &str, source: UploadSource) -> Result<String, Error> {
        let key = format!("{}{}/{}", self.prefix, uuid::Uuid::new_v4(), object_name(name));
        let path = ObjectPath::parse(&key).map_err(|e| {
            Error::new(ErrorKind::InvalidInput, format!("unusable object key {key:?}")).caused_by(e)
        })?;
        match source {
            UploadSource::Bytes(bytes) if bytes.len() <= PART => {
                self.store
                    .put(&path, PutPayload::from(bytes))
                    .await
                    .map_err(|e| store_error(e, "PUT", &self.bucket, &key))?;
            }
            source => self.upload_multipart(&path, &key, source).await?,
        }
        let url = self
            .store
            .signed_url(http::Method::GET, &path, self.link_ttl)
            .await
            .map_err(|e| store_error(e, "signing", &self.bucket, &key))?;
        Ok(url.into())
    }

    async fn upload_multipart(
        &self,
        path: &ObjectPath,
        key: &str,
        source: UploadSource,
    ) -> Result<(), Error> {
        let body = SourceBody::open(source).await?;
        let failure = body.failure.clone();
        let mut stream = body.stream;
        let upload = self
            .store
            .put_multipart(path)
            .await
            .map_err(|e| store_error(e, "starting a multipart upload", &self.bucket, key))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        while let Some(piece) = stream.next().await {
            let piece = match piece {
                Ok(p) => p,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(take_failure(&failure)
                        .unwrap_or_else(|| Error::io("reading the upload source", e)));
                }
            };
            if let Err(e) = writer.wait_for_capacity(PARALLEL).await {
                return Err(store_error(e, "uploading a part", &self.bucket, key));
            }
            writer.put(piece);
        }
        writer
            .finish()
            .await
            .map_err(|e| store_error(e, "completing a multipart upload", &self.bucket, key))?;
        Ok(())
    }
}

impl UploadHandler for S3Uploader {
    fn upload<'a>(
        &'a self,
        name: &'a str,
        source: UploadSource,
    ) -> BoxFuture<'a, Result<String, Error>> {
        Box::pin(retry_upload(&self.retry, source, move |source| self.upload_inner(name, source)))
    }
}

impl fmt::Debug for S3Uploader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Uploader")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("link_ttl", &self.link_ttl)
            .finish_non_exhaustive()
    }
}

impl S3UploaderBuilder {
    /// The S3 endpoint, for storage other than AWS (`http://127.0.0.1:9000`).
    /// Plain `http` is allowed here: the choice is the operator's.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.inner = self.inner.with_endpoint(url).with_allow_http(true);
        self
    }

    /// The region. Default from the environment, else `us-east-1`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.inner = self.inner.with_region(region);
        self
    }

    /// Static credentials. Never shown by `Debug` or in errors.
    pub fn credentials(mut self, access_key_id: &str, secret_access_key: &str) -> Self {
        self.inner =
            self.inner.with_access_key_id(access_key_id).with_secret_access_key(secret_access_key);
        self
    }

    /// The key prefix. Default `natsbridge/`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long presigned links stay valid. Default one hour.
    pub fn link_ttl(mut self, ttl: Duration) -> Self {
        self.link_ttl = ttl;
        self
    }

    /// The HTTP client for the S3 API, instead of the crate's own.
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// How an upload that failed in a way a retry can fix (a lost
    /// connection, a timeout, 5xx, 429) is retried: the whole upload again,
    /// for bytes and files (a reader is sent once). Default
    /// [`RetryConfig::default`] (5 retries, 100 ms doubling to 5 s, jitter).
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Checks the settings and builds the uploader.
    pub fn build(self) -> Result<S3Uploader, Error> {
        let client = match self.client {
            Some(c) => c,
            None => build_client()?,
        };
        let store = self
            .inner
            .with_http_connector(Connector(client))
            .build()
            .map_err(|e| Error::new(ErrorKind::InvalidInput, "S3 settings").caused_by(e))?;
        let mut prefix = self.prefix;
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(S3Uploader {
            retry: self.retry,
            store: Arc::new(store),
            bucket: self.bucket,
            prefix,
            link_ttl: self.link_ttl,
        })
    }
}

impl fmt::Debug for S3UploaderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3UploaderBuilder")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Hands object_store the crate's reqwest client (rustls on ring), so that
/// no TLS provider has to be installed process-wide.
#[derive(Debug)]
struct Connector(reqwest::Client);

impl HttpConnector for Connector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(self.0.clone()))
    }
}

/// An object key segment: no slashes, nothing object_store's path parser
/// rejects ([`safe_file_name`](natsbridge_claimcheck::safe_file_name)).
fn object_name(name: &str) -> String {
    natsbridge_claimcheck::safe_file_name(name)
}

fn store_error(err: object_store::Error, what: &str, bucket: &str, key: &str) -> Error {
    let kind = match &err {
        object_store::Error::NotFound { .. } => ErrorKind::NotFound,
        object_store::Error::PermissionDenied { .. } => ErrorKind::Http { status: 403 },
        object_store::Error::Unauthenticated { .. } => ErrorKind::Http { status: 401 },
        object_store::Error::InvalidPath { .. } => ErrorKind::InvalidInput,
        _ => ErrorKind::Other,
    };
    // object_store's messages may hold request URLs; strip their queries.
    let text = err.to_string();
    let text: String = text
        .split_whitespace()
        .map(|w| if w.contains("://") { redact_url(w) } else { w.to_owned() })
        .collect::<Vec<_>>()
        .join(" ");
    Error::new(kind, format!("S3 {what} s3://{bucket}/{key}: {text}"))
}

#[cfg(test)]
mod tests {
    use super::object_name;

    #[test]
    fn object_names_are_plain() {
        assert_eq!(object_name("a/b\\c?.bin"), "a_b_c_.bin");
        assert_eq!(object_name("..hidden"), "hidden");
        assert_eq!(object_name(""), "payload");
    }
}
