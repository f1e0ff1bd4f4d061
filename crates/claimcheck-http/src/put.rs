//! The plain HTTP PUT upload handler.

use std::fmt;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::body::{SourceBody, take_failure};
use crate::client::build_client;
use crate::error::{Error, ErrorKind, from_reqwest, redact_url};
use crate::plik::failure;
use natsbridge_claimcheck::{BoxFuture, UploadHandler, UploadSource};
use natsbridge_claimcheck::{RetryConfig, retry_upload};

/// Characters escaped when a file name becomes one URL path segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Uploads with one `PUT` to a URL made from a template; the same URL is the
/// link peers `GET`.
///
/// The template may hold `{uuid}` (a fresh UUID v4 per upload, so two
/// payloads with the same name do not overwrite each other) and `{name}` (the
/// file name, percent-encoded as one path segment). Any server that stores a
/// PUT body and serves it back works: nginx with WebDAV, a bucket with public
/// read, `natsbridge-fileserver` under `/put/`.
///
/// The template's query string, if any, is sent with the PUT but kept out of
/// errors and `Debug`. User info in the template (`http://user:pw@host/...`)
/// authenticates the PUT (basic auth) and is left out of the link. Extra headers (an `Authorization`, say) are marked
/// sensitive and never shown.
///
/// ```no_run
/// use natsbridge_claimcheck_http::{HttpPutUploader, UploadHandlerExt};
///
/// # async fn run() -> Result<(), natsbridge_claimcheck_http::Error> {
/// let put = HttpPutUploader::builder("http://localhost:8080/put/{uuid}/{name}").build()?;
/// let link = put.upload_file("video.mp4", "/data/video.mp4").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpPutUploader {
    retry: RetryConfig,
    client: reqwest::Client,
    template: String,
    headers: http::HeaderMap,
}

/// Builds an [`HttpPutUploader`]; see [`HttpPutUploader::builder`].
#[must_use]
pub struct HttpPutUploaderBuilder {
    retry: RetryConfig,
    template: String,
    headers: Vec<(String, String)>,
    client: Option<reqwest::Client>,
}

impl HttpPutUploader {
    /// An uploader for the URL template `template`, for example
    /// `https://files.example/incoming/{uuid}/{name}`.
    pub fn builder(template: impl Into<String>) -> HttpPutUploaderBuilder {
        HttpPutUploaderBuilder {
            template: template.into(),
            headers: Vec::new(),
            client: None,
            retry: RetryConfig::default(),
        }
    }

    fn url_for(&self, name: &str) -> Result<reqwest::Url, Error> {
        expand(&self.template, name, &uuid::Uuid::new_v4().to_string())
    }

    async fn upload_inner(&self, name: &str, source: UploadSource) -> Result<String, Error> {
        let url = self.url_for(name)?;
        let (body, len, fail) = SourceBody::open(source).await?.into_reqwest();
        let response = self
            .client
            .put(url.clone())
            .headers(self.headers.clone())
            .header(http::header::CONTENT_TYPE, "application/octet-stream")
            .header(http::header::CONTENT_LENGTH, len)
            .body(body)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                return Err(take_failure(&fail).unwrap_or_else(|| from_reqwest(e, url.as_str())));
            }
        };
        if !response.status().is_success() {
            return Err(failure(response, url.as_str()).await.context("PUT"));
        }
        Ok(crate::client::published_link(url))
    }
}

/// Fills a template. Braces other than the two placeholders are left alone.
fn expand(template: &str, name: &str, uuid: &str) -> Result<reqwest::Url, Error> {
    let name = if name.is_empty() { "payload" } else { name };
    let name = match name {
        "." | ".." => "payload".to_owned(),
        n => utf8_percent_encode(n, SEGMENT).to_string(),
    };
    let filled = template.replace("{uuid}", uuid).replace("{name}", &name);
    let url = reqwest::Url::parse(&filled).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("the PUT URL template does not give a URL: {}", redact_url(&filled)),
        )
        .caused_by(e)
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the PUT URL must be http or https: {}", redact_url(&filled)),
        ));
    }
    Ok(url)
}

impl UploadHandler for HttpPutUploader {
    fn upload<'a>(
        &'a self,
        name: &'a str,
        source: UploadSource,
    ) -> BoxFuture<'a, Result<String, Error>> {
        Box::pin(retry_upload(&self.retry, source, move |source| self.upload_inner(name, source)))
    }
}

impl fmt::Debug for HttpPutUploader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpPutUploader")
            .field("template", &redact_url(&self.template))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl HttpPutUploaderBuilder {
    /// Adds a header sent with every PUT (for example `Authorization`).
    /// Its value is never shown.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The HTTP client to use instead of the crate's own.
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// How an upload that failed in a way a retry can fix (a lost
    /// connection, a timeout, 5xx, 429) is retried: the whole PUT again, for
    /// bytes and files (a reader is sent once). Default
    /// [`RetryConfig::default`] (5 retries, 100 ms doubling to 5 s, jitter).
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Checks the template and headers and builds the uploader.
    pub fn build(self) -> Result<HttpPutUploader, Error> {
        expand(&self.template, "check", "00000000-0000-4000-8000-000000000000")?;
        let mut headers = http::HeaderMap::new();
        for (name, value) in self.headers {
            let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Error::new(ErrorKind::InvalidInput, format!("invalid header name {name:?}"))
            })?;
            let mut value = http::HeaderValue::from_str(&value).map_err(|_| {
                Error::new(ErrorKind::InvalidInput, format!("invalid value for header {name}"))
            })?;
            value.set_sensitive(true);
            headers.append(name, value);
        }
        let client = match self.client {
            Some(c) => c,
            None => build_client()?,
        };
        Ok(HttpPutUploader { client, template: self.template, headers, retry: self.retry })
    }
}

impl fmt::Debug for HttpPutUploaderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpPutUploaderBuilder")
            .field("template", &redact_url(&self.template))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_filled_and_name_escaped() {
        let u = expand("http://h:1/put/{uuid}/{name}", "a b/c?.bin", "U").unwrap();
        assert_eq!(u.as_str(), "http://h:1/put/U/a%20b%2Fc%3F.bin");
        let u = expand("http://h/{name}", "..", "U").unwrap();
        assert_eq!(u.as_str(), "http://h/payload");
        assert_eq!(
            expand("file:///tmp/{name}", "x", "U").unwrap_err().kind(),
            &ErrorKind::InvalidInput
        );
    }
}
