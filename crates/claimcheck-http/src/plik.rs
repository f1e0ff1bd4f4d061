//! The Plik one-shot upload handler, the seeds' default.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;

use crate::body::{SourceBody, take_failure};
use crate::client::{build_client, error_text};
use crate::error::{Error, ErrorKind, from_reqwest, redact_url};
use natsbridge_claimcheck::{BoxFuture, UploadHandler, UploadSource};
use natsbridge_claimcheck::{RetryConfig, retry_upload};

/// How long the calls that carry no payload (creating the upload) may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);
/// Plik's replies are small JSON objects; anything bigger is not Plik.
const REPLY_LIMIT: usize = 64 * 1024;

/// Uploads to a [Plik](https://github.com/root-gg/plik) server (or the
/// `natsbridge-fileserver`), exactly as SPEC.md says:
///
/// 1. `POST {fileserver}/upload` with `{"oneShot": true, "ttl": ...}` gives an
///    upload `id` and an `uploadToken`;
/// 2. `POST {fileserver}/file/{id}` with the header `X-UploadToken` and a
///    `multipart/form-data` body whose part `file` carries the file name and
///    the bytes, streamed with a known `Content-Length`;
/// 3. the link is `{fileserver}/file/{id}/{fileId}/{fileName}`, without the
///    user info the file server URL may carry (`http://user:pw@host`: sent as
///    basic auth on the uploads, never published in a link).
///
/// One-shot is on by default: the first download consumes the file. Plik's
/// plain-text error bodies end up in the [`Error`]; the upload token never
/// does, nor in `Debug`.
///
/// ```no_run
/// use natsbridge_claimcheck_http::{PlikUploader, UploadHandlerExt};
///
/// # async fn run() -> Result<(), natsbridge_claimcheck_http::Error> {
/// let plik = PlikUploader::builder("http://localhost:8080")
///     .ttl(std::time::Duration::from_secs(3600))
///     .build()?;
/// let link = plik.upload_bytes("table.arrow", vec![0u8; 600_000]).await?;
/// println!("{link}");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PlikUploader {
    retry: RetryConfig,
    client: reqwest::Client,
    base: reqwest::Url,
    one_shot: bool,
    ttl: Option<Duration>,
    plik_token: Option<String>,
}

/// Builds a [`PlikUploader`]; see [`PlikUploader::builder`].
#[must_use]
pub struct PlikUploaderBuilder {
    retry: RetryConfig,
    fileserver: String,
    one_shot: bool,
    ttl: Option<Duration>,
    plik_token: Option<String>,
    client: Option<reqwest::Client>,
}

impl PlikUploader {
    /// An uploader for the Plik server at `fileserver` (for example
    /// `http://localhost:8080`), with the defaults: one-shot, the server's
    /// default TTL.
    pub fn new(fileserver: impl Into<String>) -> Result<PlikUploader, Error> {
        PlikUploader::builder(fileserver).build()
    }

    /// A builder for an uploader to the Plik server at `fileserver`.
    pub fn builder(fileserver: impl Into<String>) -> PlikUploaderBuilder {
        PlikUploaderBuilder {
            retry: RetryConfig::default(),
            fileserver: fileserver.into(),
            one_shot: true,
            ttl: None,
            plik_token: None,
            client: None,
        }
    }

    fn endpoint(&self, segments: &[&str]) -> reqwest::Url {
        endpoint(&self.base, segments)
    }

    async fn create_upload(&self) -> Result<PlikUpload, Error> {
        let url = self.endpoint(&["upload"]);
        let mut body = serde_json::Map::new();
        body.insert("oneShot".into(), self.one_shot.into());
        if let Some(ttl) = self.ttl {
            // Plik counts in whole seconds; round up so a short TTL is not 0
            // (which Plik reads as "the server's default").
            let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
            body.insert("ttl".into(), secs.into());
        }
        let mut request = self
            .client
            .post(url.clone())
            .timeout(CONTROL_TIMEOUT)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(serde_json::Value::Object(body).to_string());
        if let Some(token) = &self.plik_token {
            request = request.header("X-PlikToken", sensitive(token)?);
        }
        let response = request.send().await.map_err(|e| from_reqwest(e, url.as_str()))?;
        let reply = read_reply(response, url.as_str(), "creating the upload").await?;
        parse_upload(&reply).map_err(|why| {
            Error::new(
                ErrorKind::InvalidResponse,
                format!("POST {}: {why}", redact_url(url.as_str())),
            )
        })
    }

    async fn upload_inner(&self, name: &str, source: UploadSource) -> Result<String, Error> {
        let body = SourceBody::open(source).await?;
        let upload = self.create_upload().await?;
        let file_name = multipart_file_name(name);

        let boundary = format!("natsbridge-{}", uuid::Uuid::new_v4().simple());
        let prefix = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        );
        let suffix = format!("\r\n--{boundary}--\r\n");
        let (body, len, failure) =
            body.wrap(Bytes::from(prefix), Bytes::from(suffix)).into_reqwest();

        let url = self.endpoint(&["file", &upload.id]);
        let mut request = self
            .client
            .post(url.clone())
            .header(http::header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
            .header(http::header::CONTENT_LENGTH, len)
            .header("X-UploadToken", sensitive(&upload.upload_token)?)
            .body(body);
        if let Some(token) = &self.plik_token {
            request = request.header("X-PlikToken", sensitive(token)?);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Err(take_failure(&failure).unwrap_or_else(|| from_reqwest(e, url.as_str())));
            }
        };
        let reply = read_reply(response, url.as_str(), "uploading the file").await?;
        let file = parse_file(&reply).map_err(|why| {
            Error::new(
                ErrorKind::InvalidResponse,
                format!("POST {}: {why}", redact_url(url.as_str())),
            )
        })?;
        Ok(crate::client::published_link(self.endpoint(&[
            "file",
            &upload.id,
            &file.id,
            stored_name(&file, &file_name),
        ])))
    }
}

impl UploadHandler for PlikUploader {
    fn upload<'a>(
        &'a self,
        name: &'a str,
        source: UploadSource,
    ) -> BoxFuture<'a, Result<String, Error>> {
        Box::pin(retry_upload(&self.retry, source, move |source| self.upload_inner(name, source)))
    }
}

impl fmt::Debug for PlikUploader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlikUploader")
            .field("fileserver", &redact_url(self.base.as_str()))
            .field("one_shot", &self.one_shot)
            .field("ttl", &self.ttl)
            .field("plik_token", &self.plik_token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl PlikUploaderBuilder {
    /// Whether the first download consumes the file (Plik's `oneShot`).
    /// Default `true`.
    pub fn one_shot(mut self, one_shot: bool) -> Self {
        self.one_shot = one_shot;
        self
    }

    /// How long the server keeps the file (Plik's `ttl`, in whole seconds,
    /// rounded up). Default: the server's own default.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// A Plik user token (`X-PlikToken`), for servers that refuse anonymous
    /// uploads. Never shown by `Debug` or in errors.
    pub fn plik_token(mut self, token: impl Into<String>) -> Self {
        self.plik_token = Some(token.into());
        self
    }

    /// The HTTP client to use instead of the crate's own (see
    /// [`USER_AGENT`](crate::USER_AGENT) for why its User-Agent matters).
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
    pub fn build(self) -> Result<PlikUploader, Error> {
        let base = reqwest::Url::parse(&self.fileserver).map_err(|e| {
            Error::new(ErrorKind::InvalidInput, "the Plik server URL does not parse").caused_by(e)
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("the Plik server URL must be http or https: {}", redact_url(base.as_str())),
            ));
        }
        if let Some(token) = &self.plik_token {
            sensitive(token)?;
        }
        let client = match self.client {
            Some(c) => c,
            None => build_client()?,
        };
        Ok(PlikUploader {
            retry: self.retry,
            client,
            base,
            one_shot: self.one_shot,
            ttl: self.ttl,
            plik_token: self.plik_token,
        })
    }
}

impl fmt::Debug for PlikUploaderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlikUploaderBuilder")
            .field("fileserver", &redact_url(&self.fileserver))
            .field("one_shot", &self.one_shot)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct PlikUpload {
    id: String,
    #[serde(rename = "uploadToken", default)]
    upload_token: String,
}

#[derive(Deserialize)]
struct PlikFile {
    id: String,
    #[serde(rename = "fileName")]
    file_name: Option<String>,
}

/// `base` with `segments` appended, each percent-encoded as one segment (a
/// `/` or `..` from the server cannot change the path's shape).
fn endpoint(base: &reqwest::Url, segments: &[&str]) -> reqwest::Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// Reads Plik's reply to `POST /upload`; the error says why it is unusable.
fn parse_upload(reply: &[u8]) -> Result<PlikUpload, &'static str> {
    let upload: PlikUpload = serde_json::from_slice(reply)
        .map_err(|_| "the reply is not a Plik upload object (is this a Plik server?)")?;
    if !usable_id(&upload.id) {
        return Err("unusable upload id");
    }
    Ok(upload)
}

/// Reads Plik's reply to `POST /file/{id}`; the error says why it is unusable.
fn parse_file(reply: &[u8]) -> Result<PlikFile, &'static str> {
    let file: PlikFile =
        serde_json::from_slice(reply).map_err(|_| "the reply is not a Plik file object")?;
    if !usable_id(&file.id) {
        return Err("unusable file id");
    }
    Ok(file)
}

/// The name Plik stored (it may have cut a path off), not ours; ours when
/// the reply's would not stay one path segment (`.` and `..` are resolved
/// away by URL parsing, which would make the link point elsewhere).
fn stored_name<'a>(file: &'a PlikFile, ours: &'a str) -> &'a str {
    file.file_name.as_deref().filter(|n| usable_id(n)).unwrap_or(ours)
}

/// An id that can stand as one path segment of the link.
fn usable_id(id: &str) -> bool {
    !id.is_empty() && !id.contains(['/', '?', '#']) && id != "." && id != ".."
}

/// Runs every parser of a Plik server's answers on `bytes`: the
/// create-upload reply, the file reply (and the link built from it), the
/// error-redirect `Location` and the 404 text. For the fuzz target in
/// `fuzz/`; not part of the API. Panics only if a parser breaks its promise
/// (a link that is not the file server's).
#[doc(hidden)]
pub fn fuzz_plik_replies(bytes: &[u8]) {
    let base = reqwest::Url::parse("http://plik.invalid:8080/").expect("a valid base");
    let upload_id = parse_upload(bytes).map(|u| u.id).unwrap_or_else(|_| "u".into());
    if let Ok(file) = parse_file(bytes) {
        let link = endpoint(&base, &["file", &upload_id, &file.id, stored_name(&file, "payload")]);
        let reparsed = reqwest::Url::parse(link.as_str()).expect("the link parses");
        assert_eq!(reparsed.origin(), base.origin(), "the link left the file server");
        assert_eq!(reparsed.path_segments().map(Iterator::count), Some(4), "{link}");
    }
    let text = String::from_utf8_lossy(bytes);
    if let Some((code, message)) = plik_error_redirect(&text) {
        assert!((100..600).contains(&code));
        let _ = classify(code, &message);
    }
    let _ = classify(404, &text);
}

/// A header value marked sensitive (hyper and reqwest then keep it out of
/// their `Debug` output).
fn sensitive(value: &str) -> Result<http::HeaderValue, Error> {
    let mut v = http::HeaderValue::from_str(value).map_err(|_| {
        Error::new(ErrorKind::InvalidInput, "a token holds characters a header cannot carry")
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// A file name that survives a `Content-Disposition` parameter and every
/// multipart parser: no quotes, backslashes, slashes (Go's parser keeps only
/// the last path element) or control characters; at most 1,024 bytes, Plik's
/// limit.
pub(crate) fn multipart_file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = if c == '"' || c == '\\' || c == '/' || c.is_control() { '_' } else { c };
        if out.len() + c.len_utf8() > 1024 {
            break;
        }
        out.push(c);
    }
    if out.trim().is_empty() || out == "." || out == ".." {
        out = "payload".into();
    }
    out
}

/// Reads a successful reply (bounded), or turns a failed one into an error
/// carrying Plik's text.
async fn read_reply(
    mut response: reqwest::Response,
    url: &str,
    what: &str,
) -> Result<Vec<u8>, Error> {
    let status = response.status();
    if !status.is_success() {
        return Err(failure(response, url).await.context(what));
    }
    let mut reply = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| from_reqwest(e, url).context(what))?
    {
        reply.extend_from_slice(&chunk);
        if reply.len() > REPLY_LIMIT {
            return Err(Error::new(
                ErrorKind::InvalidResponse,
                format!("{what}: the reply from {} is too long for Plik", redact_url(url)),
            ));
        }
    }
    Ok(reply)
}

/// The error for a non-2xx answer, with the server's text. Shared with the
/// downloader, which sees the same Plik quirks.
pub(crate) async fn failure(response: reqwest::Response, url: &str) -> Error {
    let status = response.status().as_u16();
    if (300..400).contains(&status) {
        let location = response
            .headers()
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if let Some((code, message)) = plik_error_redirect(&location) {
            return Error::new(
                classify(code, &message),
                format!("{} (Plik error page redirect, HTTP {code}): {message}", redact_url(url)),
            );
        }
        return Error::new(
            ErrorKind::Redirect { status },
            format!("{} -> {}", redact_url(url), redact_url(&location)),
        );
    }
    let text = error_text(response, 1024).await;
    let kind = classify(status, &text);
    // The status is named in the message: the kind alone (NotFound, Gone)
    // does not say what the server answered.
    if text.is_empty() {
        Error::new(kind, format!("{}: HTTP {status}", redact_url(url)))
    } else {
        Error::new(kind, format!("{}: HTTP {status}: {text}", redact_url(url)))
    }
}

/// The kind of a failed answer, from its status and Plik's text.
pub(crate) fn classify(status: u16, text: &str) -> ErrorKind {
    match status {
        404 => {
            let text = text.to_ascii_lowercase();
            if text.contains("is not available : missing")
                || text.contains("is not available : uploading")
            {
                ErrorKind::NotReady
            } else if text.contains("is not available : removed")
                || text.contains("is not available : deleted")
                || text.contains("has expired")
            {
                ErrorKind::Gone
            } else {
                ErrorKind::NotFound
            }
        }
        410 => ErrorKind::Gone,
        _ => ErrorKind::Http { status },
    }
}

/// Plik's error redirect: `Location: {webRoot}/#/?err={message}&errcode={status}&uri=...`.
/// Returns the status and message it carries.
pub(crate) fn plik_error_redirect(location: &str) -> Option<(u16, String)> {
    let at = location.find("errcode=")?;
    let digits: String =
        location[at + "errcode=".len()..].chars().take_while(char::is_ascii_digit).collect();
    let code = digits.parse::<u16>().ok().filter(|c| (100..600).contains(c))?;
    // Plik does not escape the message, so it runs up to "&errcode=".
    let message = location
        .find("err=")
        .filter(|&start| start + 4 <= at)
        .map(|start| location[start + 4..at].trim_end_matches('&'))
        .unwrap_or("");
    let message = percent_encoding::percent_decode_str(message).decode_utf8_lossy();
    let message: String = message.chars().filter(|c| !c.is_control()).take(300).collect();
    Some((code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_redirect_is_parsed() {
        let loc = "/#/?err=file%20abc%20(xyz)%20is%20not%20available%20:%20missing&errcode=404&uri=/file/a/b/c";
        let (code, msg) = plik_error_redirect(loc).unwrap();
        assert_eq!(code, 404);
        assert_eq!(msg, "file abc (xyz) is not available : missing");
        assert_eq!(classify(code, &msg), ErrorKind::NotReady);
        assert_eq!(plik_error_redirect("/#/?err=x&errcode=oops"), None);
        assert_eq!(plik_error_redirect("https://elsewhere/"), None);
    }

    #[test]
    fn plik_404_texts_are_classified() {
        let t = |s| classify(404, s);
        assert_eq!(t("file a (b) is not available : uploading"), ErrorKind::NotReady);
        assert_eq!(t("file a (b) is not available : removed"), ErrorKind::Gone);
        assert_eq!(t("file a (b) is not available : deleted"), ErrorKind::Gone);
        assert_eq!(t("upload abc has expired"), ErrorKind::Gone);
        assert_eq!(t("file b not found"), ErrorKind::NotFound);
        assert_eq!(classify(503, ""), ErrorKind::Http { status: 503 });
    }

    #[test]
    fn links_from_hostile_replies_stay_on_the_server() {
        for reply in [
            r#"{"id":"f","fileName":".."}"#,
            r#"{"id":"f","fileName":"."}"#,
            r#"{"id":"f","fileName":"../../x"}"#,
            r#"{"id":"f","fileName":"%2e%2e"}"#,
            r#"{"id":"f","fileName":"http://evil/x"}"#,
            r#"{"id":"..","uploadToken":"t","fileName":"x"}"#,
        ] {
            fuzz_plik_replies(reply.as_bytes());
        }
    }

    #[test]
    fn file_names_are_made_safe() {
        assert_eq!(multipart_file_name("a \"b\"\\c/d\r\n.bin"), "a _b__c_d__.bin");
        assert_eq!(multipart_file_name(""), "payload");
        assert_eq!(multipart_file_name(".."), "payload");
        assert_eq!(multipart_file_name(&"é".repeat(600)).len(), 1024);
    }
}
