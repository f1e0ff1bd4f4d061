//! Helpers shared by the file server's tests: payloads, a file server in a
//! temporary directory, a small Plik and PUT client on reqwest (the
//! claim-check clients are not used here: natsbridge-claimcheck-http's own
//! tests run against this server, and a dev-dependency each way would be a
//! cycle), and raw requests a client never sends. Payloads, `files_under`
//! and `eventually` come from natsbridge-test-support; [`Served`] is written
//! here and in claimcheck-http's tests, because test-support depending on
//! this crate would be a dev-dependency cycle with these tests.

use std::time::Duration;

use natsbridge_fileserver::{FileServer, FileServerBuilder};
pub(crate) use natsbridge_test_support::{eventually, eventually_with, files_under, payload};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn client() -> reqwest::Client {
    install_tls_provider();
    reqwest::Client::builder().build().unwrap()
}

/// In a workspace build reqwest has claimcheck-http's `rustls-no-provider`
/// feature, and a client then needs a process-wide rustls provider even
/// for plain http (building one without panics): *ring*'s, as
/// claimcheck-http uses.
#[allow(deprecated)] // rustls 0.23.48 deprecates it, with no other way to *ring*.
pub(crate) fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A request the server refused: its status and its text.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) status: u16,
    pub(crate) text: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP status {}: {}", self.status, self.text.trim_end())
    }
}

/// The answer's body, or the refusal.
async fn answer(response: reqwest::Response) -> Result<bytes::Bytes, Refused> {
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap();
    if status >= 300 {
        return Err(Refused { status, text: String::from_utf8_lossy(&body).into_owned() });
    }
    Ok(body)
}

/// An upload through the Plik API as a Plik client makes it: `POST
/// /upload`, then the file as the multipart part `file`.
#[derive(Clone, Debug)]
pub(crate) struct Plik {
    base: String,
    one_shot: bool,
    ttl: Option<Duration>,
}

impl Plik {
    pub(crate) fn new(base: &str) -> Plik {
        Plik { base: base.to_owned(), one_shot: true, ttl: None }
    }

    pub(crate) fn one_shot(mut self, one_shot: bool) -> Plik {
        self.one_shot = one_shot;
        self
    }

    pub(crate) fn ttl(mut self, ttl: Duration) -> Plik {
        self.ttl = Some(ttl);
        self
    }

    /// The file's link.
    pub(crate) async fn upload(
        &self,
        name: &str,
        bytes: impl Into<Vec<u8>>,
    ) -> Result<String, Refused> {
        let mut params = serde_json::json!({"oneShot": self.one_shot});
        if let Some(ttl) = self.ttl {
            params["ttl"] = ttl.as_secs().into();
        }
        let reply = client()
            .post(format!("{}/upload", self.base))
            .header("Content-Type", "application/json")
            .body(params.to_string())
            .send()
            .await
            .unwrap();
        let upload: Value = serde_json::from_slice(&answer(reply).await?).unwrap();
        let id = upload["id"].as_str().unwrap();
        let mut body = format!(
            "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&bytes.into());
        body.extend_from_slice(b"\r\n--b0undary--\r\n");
        let reply = client()
            .post(format!("{}/file/{id}", self.base))
            .header("X-UploadToken", upload["uploadToken"].as_str().unwrap())
            .header("Content-Type", "multipart/form-data; boundary=b0undary")
            .body(body)
            .send()
            .await
            .unwrap();
        let file: Value = serde_json::from_slice(&answer(reply).await?).unwrap();
        Ok(format!("{}/file/{id}/{}/{name}", self.base, file["id"].as_str().unwrap()))
    }
}

/// An upload to the PUT area: the link is the URL it was PUT to.
#[derive(Clone, Debug)]
pub(crate) struct Put {
    template: String,
}

impl Put {
    /// `template` as `FileServer::put_template` gives it.
    pub(crate) fn new(template: String) -> Put {
        Put { template }
    }

    pub(crate) async fn upload(
        &self,
        name: &str,
        bytes: impl Into<Vec<u8>>,
    ) -> Result<String, Refused> {
        let uuid = format!("{:032x}", rand_u128());
        let url = self.template.replace("{uuid}", &uuid).replace("{name}", name);
        let reply = client().put(&url).body(bytes.into()).send().await.unwrap();
        answer(reply).await?;
        Ok(url)
    }
}

/// A fresh number for PUT keys (distinct per call within a test run).
fn rand_u128() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    (nanos.as_nanos() << 16) ^ u128::from(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A link's bytes.
pub(crate) async fn download(link: &str) -> Result<Vec<u8>, Refused> {
    let reply = client().get(link).send().await.unwrap();
    answer(reply).await.map(|b| b.to_vec())
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
