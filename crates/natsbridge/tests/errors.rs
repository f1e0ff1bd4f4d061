//! The bad-input catalogue of `docs/errors.md`, as a receiver sees it: one
//! test per row, named after the row, each asserting the error kind and the
//! message (its stable prefix), then the whole-message policy (one bad
//! payload fails the message; the raw bytes are never lost).
//!
//! Servers are real: the crate's Plik-compatible `FileServer`, nats-server,
//! and, for what no well-behaved server does (answer 500 forever, trickle a
//! body, cut it short), a few lines of HTTP on a loopback TCP socket.

use std::sync::Arc;
use std::time::Duration;

use natsbridge::claimcheck::{
    DownloadHandlerExt, DownloadRequest, ErrorKind as ClaimCheckKind, RetryConfig,
    UploadHandlerExt, http::HttpDownloader,
};
use natsbridge::envelope::{DEFAULT_MAX_PAYLOAD, ErrorKind as EnvelopeKind};
use natsbridge::{
    Bridge, ErrorKind, Payload, ReceiveLimits, SendOptions, pack, smartunpack, smartunpack_with,
};
use natsbridge_test_support::NatsServer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::util::{Store, bytes, chain};

/// A valid envelope with one direct text payload ("hello"), to break.
fn base() -> Value {
    json!({
        "correlation_id": "c", "msg_id": "m", "timestamp": "2024-01-15T10:30:00Z",
        "send_to": "s", "msg_purpose": "chat", "sender_name": "n", "sender_id": "i",
        "metadata": {},
        "payloads": [{"id": "p", "dataname": "greeting", "payload_type": "text",
                      "transport": "direct", "encoding": "base64", "size": 5, "data": "aGVsbG8="}]
    })
}

fn link_record(dataname: &str, url: &str, size: u64) -> Value {
    json!({"id": "l", "dataname": dataname, "payload_type": "binary", "transport": "link",
           "encoding": "none", "size": size, "data": url})
}

/// The base envelope with its payloads replaced.
fn envelope_with(payloads: Vec<Value>) -> Vec<u8> {
    let mut v = base();
    v["payloads"] = Value::Array(payloads);
    v.to_string().into_bytes()
}

/// A downloader with tiny delays and timeouts, so failing rows fail fast:
/// two retries (three tries), 300 ms timeouts, at least 1,000 bytes/s.
fn quick_downloader(allow: Option<&str>) -> HttpDownloader {
    let mut builder = HttpDownloader::builder()
        .retry(
            RetryConfig::new()
                .with_max_retries(2)
                .with_base_delay(Duration::from_millis(1))
                .with_max_delay(Duration::from_millis(5))
                .with_jitter(false),
        )
        .timeout(Duration::from_millis(300))
        .read_timeout(Duration::from_millis(300))
        .min_rate(1000);
    if let Some(origin) = allow {
        builder = builder.allow_origin(origin);
    }
    builder.build().unwrap()
}

async fn unpack_err(message: &[u8], downloader: &HttpDownloader) -> natsbridge::Error {
    match smartunpack(message, downloader).await {
        Ok(envelope) => panic!("accepted: {envelope:?}"),
        Err(e) => e,
    }
}

/// How the misbehaving server answers every request.
#[derive(Clone)]
enum Misbehave {
    /// A complete response, then close.
    Answer(Vec<u8>),
    /// The head, then the body one byte every 20 ms.
    Trickle(Vec<u8>, Vec<u8>),
}

/// An HTTP server on 127.0.0.1 that misbehaves on purpose; it counts the
/// requests it reads. Stopped when dropped.
struct BadServer {
    url: String,
    hits: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl BadServer {
    async fn start(how: Misbehave) -> BadServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let how = how.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    // A GET has no body: the request ends at the blank line.
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    match how {
                        Misbehave::Answer(bytes) => {
                            let _ = stream.write_all(&bytes).await;
                        }
                        Misbehave::Trickle(head, body) => {
                            if stream.write_all(&head).await.is_err() {
                                return;
                            }
                            for byte in body {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                if stream.write_all(&[byte]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    let _ = stream.shutdown().await;
                });
            }
        });
        BadServer { url, hits, task }
    }

    fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for BadServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// --- The catalogue, row by row (docs/errors.md) ---

#[tokio::test]
async fn not_json() {
    let err = unpack_err(b"hello", &quick_downloader(None)).await;
    assert_eq!(err.kind(), &ErrorKind::Envelope(EnvelopeKind::NotJson { offset: 0 }));
    assert!(chain(&err).starts_with("envelope is not a JSON object (at byte 0): "), "{err}");
}

#[tokio::test]
async fn wrong_types() {
    let mut v = base();
    v["msg_id"] = json!(5);
    let err = unpack_err(v.to_string().as_bytes(), &quick_downloader(None)).await;
    assert_eq!(
        err.kind(),
        &ErrorKind::Envelope(EnvelopeKind::Malformed { field: "msg_id".into() })
    );
    assert!(chain(&err).starts_with("malformed envelope: field `msg_id`: "), "{err}");
}

#[tokio::test]
async fn missing_fields() {
    let mut v = base();
    v.as_object_mut().unwrap().remove("payloads");
    let err = unpack_err(v.to_string().as_bytes(), &quick_downloader(None)).await;
    assert_eq!(chain(&err), "malformed envelope: field `payloads`: missing (a required field)");

    let mut v = base();
    v["payloads"][0].as_object_mut().unwrap().remove("dataname");
    let err = unpack_err(v.to_string().as_bytes(), &quick_downloader(None)).await;
    assert_eq!(
        err.kind(),
        &ErrorKind::Envelope(EnvelopeKind::Malformed { field: "payloads[0].dataname".into() })
    );
    assert!(chain(&err).starts_with("malformed envelope: field `payloads[0].dataname`: "));
}

#[tokio::test]
async fn an_unknown_payload_type_is_kept_not_an_error() {
    let mut v = base();
    v["payloads"][0]["payload_type"] = json!("hologram");
    let env = smartunpack(v.to_string().as_bytes(), &quick_downloader(None)).await.unwrap();
    assert_eq!(env.payloads[0].payload_type, natsbridge::PayloadType::Other("hologram".into()));
}

#[tokio::test]
async fn bad_base64() {
    let mut v = base();
    v["payloads"][0]["data"] = json!("aGVs*G8=");
    let err = unpack_err(v.to_string().as_bytes(), &quick_downloader(None)).await;
    assert_eq!(
        err.kind(),
        &ErrorKind::Envelope(EnvelopeKind::Base64 { field: "payloads[0].data".into() })
    );
    assert_eq!(
        chain(&err),
        "invalid base64 in `payloads[0].data`: byte 4 ('*') is not in the base64 alphabet"
    );
}

#[tokio::test]
async fn size_mismatch() {
    let mut v = base();
    v["payloads"][0]["size"] = json!(6);
    let err = unpack_err(v.to_string().as_bytes(), &quick_downloader(None)).await;
    assert_eq!(
        err.kind(),
        &ErrorKind::Envelope(EnvelopeKind::SizeMismatch {
            field: "payloads[0].size".into(),
            declared: 6,
            actual: 5
        })
    );
    assert_eq!(
        chain(&err),
        "size mismatch in `payloads[0].size`: declared 6 bytes, carried 5 bytes"
    );
}

#[tokio::test]
async fn huge_declared_size() {
    // Direct: a mismatch with what the base64 carries, never an allocation.
    let mut v = base();
    v["payloads"][0]["size"] = json!(u64::MAX);
    let err = unpack_err(v.to_string().as_bytes(), &quick_downloader(None)).await;
    assert!(matches!(
        err.kind(),
        ErrorKind::Envelope(EnvelopeKind::SizeMismatch { declared: u64::MAX, actual: 5, .. })
    ));

    // Link: over the download cap, refused before any request.
    let server = BadServer::start(Misbehave::Answer(b"HTTP/1.1 200 OK\r\n\r\n".to_vec())).await;
    let downloader = HttpDownloader::builder().max_download_size(1 << 20).build().unwrap();
    let message = envelope_with(vec![link_record("big", &format!("{}/f", server.url), 1 << 21)]);
    let err = unpack_err(&message, &downloader).await;
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::TooLarge { limit: 1 << 20 }));
    assert!(
        chain(&err).starts_with(
            "downloading payload \"big\" (payloads[0]): larger than the limit of 1048576 bytes: "
        ),
        "{}",
        chain(&err)
    );
    assert_eq!(server.hits(), 0);

    // Over the receiver's budget for one envelope (1 GiB by default):
    // refused before any request too, by that limit.
    let message = envelope_with(vec![link_record("big", &format!("{}/f", server.url), 1 << 40)]);
    let err = unpack_err(&message, &downloader).await;
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::TooLarge { limit: 1 << 30 }));
    assert!(chain(&err).contains("budget of 1073741824 bytes"), "{}", chain(&err));
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn many_links_share_one_budget_per_envelope() {
    let body = vec![b'z'; 4_000];
    let mut answer =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    answer.extend_from_slice(&body);
    let server = BadServer::start(Misbehave::Answer(answer)).await;
    let limits = ReceiveLimits::default().max_envelope_bytes(10_000);
    let link = |i: usize, size: Option<u64>| {
        let mut r = link_record(&format!("l{i}"), &format!("{}/f{i}", server.url), 0);
        match size {
            Some(size) => r["size"] = json!(size),
            None => drop(r.as_object_mut().unwrap().remove("size")),
        }
        r
    };
    let downloader = quick_downloader(None);
    // Six links declaring 4,000 bytes each: refused before any request,
    // whatever one link's cap would allow.
    let message = envelope_with((0..6).map(|i| link(i, Some(4_000))).collect());
    let err = smartunpack_with(&message, &downloader, &limits).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::TooLarge { limit: 10_000 }));
    assert_eq!(server.hits(), 0);
    // Undeclared sizes: each link takes only what the others left; the
    // third passes the budget and fails, named.
    let message = envelope_with((0..3).map(|i| link(i, None)).collect());
    let err = smartunpack_with(&message, &downloader, &limits).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::TooLarge { limit: 2_000 }));
    assert!(chain(&err).contains("payloads[2]"), "{}", chain(&err));
    // Within the budget, all of it.
    let message = envelope_with((0..2).map(|i| link(i, None)).collect());
    let envelope = smartunpack_with(&message, &downloader, &limits).await.unwrap();
    assert_eq!(envelope.payloads[1].bytes().unwrap().len(), 4_000);
}

#[tokio::test]
async fn a_link_slower_than_its_deadline_ends() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".to_vec();
    let server = BadServer::start(Misbehave::Trickle(head, vec![b'x'; 100_000])).await;
    let message = envelope_with(vec![link_record("slow", &format!("{}/f", server.url), 100_000)]);
    // The downloader's own minimum rate is off: only the deadline ends it.
    let downloader = HttpDownloader::builder().min_rate(0).build().unwrap();
    let limits = ReceiveLimits::default().link_deadline(Duration::from_millis(500));
    let err = smartunpack_with(&message, &downloader, &limits).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::TimedOut));
    assert!(
        chain(&err).contains("the link was not complete within its deadline"),
        "{}",
        chain(&err)
    );
    let limits = ReceiveLimits::default().message_deadline(Duration::from_millis(500));
    let err = smartunpack_with(&message, &downloader, &limits).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::TimedOut));
    assert!(chain(&err).contains("not all fetched within its deadline"), "{}", chain(&err));
}

#[tokio::test]
async fn a_bridge_with_a_file_server_fetches_links_only_from_it() {
    let internal = BadServer::start(Misbehave::Answer(
        b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret".to_vec(),
    ))
    .await;
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let files = natsbridge_fileserver::FileServer::builder()
        .dir(dir.path())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let bridge = Bridge::builder(&server.url()).fileserver(files.url()).connect().await.unwrap();
    let mut sub = bridge.subscribe("sec.lib").await.unwrap();
    bridge.connection().sync().await.unwrap();
    let hostile = envelope_with(vec![link_record("s", &format!("{}/admin", internal.url), 6)]);
    bridge.connection().publish("sec.lib", hostile.into()).await.unwrap();
    let rejected = sub.next().await.unwrap().unwrap_err();
    assert_eq!(rejected.error.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::UrlRefused));
    assert_eq!(internal.hits(), 0);
    // Its own links still arrive.
    let big = Payload::binary("b", vec![1u8; 2_000]);
    let options = SendOptions::new().with_size_threshold(1_000);
    bridge.smartsend("sec.lib", vec![big], options).await.unwrap();
    let received = sub.next().await.unwrap().unwrap();
    assert_eq!(received.to_envelope().unwrap().payloads[0].bytes().unwrap().len(), 2_000);
}

#[tokio::test]
async fn link_to_file_url() {
    let message = envelope_with(vec![link_record("secret", "file:///etc/passwd", 10)]);
    let err = unpack_err(&message, &quick_downloader(None)).await;
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::UrlRefused));
    assert_eq!(
        chain(&err),
        "downloading payload \"secret\" (payloads[0]): URL refused: \
         only http and https links are fetched: file:///etc/passwd"
    );
}

#[tokio::test]
async fn link_to_a_disallowed_host() {
    let server = BadServer::start(Misbehave::Answer(b"HTTP/1.1 200 OK\r\n\r\n".to_vec())).await;
    let message = envelope_with(vec![link_record("d", &format!("{}/f", server.url), 10)]);
    let err = unpack_err(&message, &quick_downloader(Some("http://files.example"))).await;
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::UrlRefused));
    assert_eq!(
        chain(&err),
        format!(
            "downloading payload \"d\" (payloads[0]): URL refused: \
             link to {} refused: it is not an allowed file server origin",
            server.url
        )
    );
    assert_eq!(server.hits(), 0, "no request to a host outside the allowlist");
}

#[tokio::test]
async fn link_to_a_404() {
    let store = Store::start().await;
    let url = format!("{}/file/aaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbb/x.bin", store.server.url());
    let message = envelope_with(vec![link_record("d", &url, 10)]);
    let err = unpack_err(&message, &store.downloader()).await;
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::NotFound));
    assert!(
        chain(&err).starts_with(&format!(
            "downloading payload \"d\" (payloads[0]): not found: {url}: HTTP 404: "
        )),
        "{}",
        chain(&err)
    );
}

#[tokio::test]
async fn a_500_forever() {
    let server = BadServer::start(Misbehave::Answer(
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nboom".to_vec(),
    ))
    .await;
    let message = envelope_with(vec![link_record("d", &format!("{}/f", server.url), 10)]);
    let err = unpack_err(&message, &quick_downloader(None)).await;
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::Http { status: 500 }));
    assert_eq!(
        chain(&err),
        format!(
            "downloading payload \"d\" (payloads[0]): HTTP status 500: after 3 tries: \
             {}/f: HTTP 500: boom",
            server.url
        )
    );
    assert_eq!(server.hits(), 3, "retried, then given up");
}

#[tokio::test]
async fn a_slow_loris_server() {
    let server = BadServer::start(Misbehave::Trickle(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec(),
        vec![7; 1000],
    ))
    .await;
    let message = envelope_with(vec![link_record("d", &format!("{}/f", server.url), 1000)]);
    let err = unpack_err(&message, &quick_downloader(None)).await;
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::TimedOut));
    assert!(
        chain(&err).starts_with(&format!(
            "downloading payload \"d\" (payloads[0]): timed out: after 3 tries: {}/f trickled ",
            server.url
        )),
        "{}",
        chain(&err)
    );
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn a_truncated_body() {
    // The right Content-Length, then the connection closes early.
    let mut answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec();
    answer.extend_from_slice(&[7; 300]);
    let server = BadServer::start(Misbehave::Answer(answer)).await;
    let message = envelope_with(vec![link_record("d", &format!("{}/f", server.url), 1000)]);
    let err = unpack_err(&message, &quick_downloader(None)).await;
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::Connection));
    assert!(
        chain(&err).starts_with(
            "downloading payload \"d\" (payloads[0]): connection failed: after 3 tries: \
             body cut after "
        ),
        "{}",
        chain(&err)
    );

    // No Content-Length, cleanly ended, but short of the declared size.
    let mut answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
    answer.extend_from_slice(&[7; 300]);
    let server = BadServer::start(Misbehave::Answer(answer)).await;
    let message = envelope_with(vec![link_record("d", &format!("{}/f", server.url), 1000)]);
    let err = unpack_err(&message, &quick_downloader(None)).await;
    assert_eq!(
        err.kind(),
        &ErrorKind::ClaimCheck(ClaimCheckKind::SizeMismatch { expected: 1000, actual: 300 })
    );
    assert_eq!(
        chain(&err),
        format!(
            "downloading payload \"d\" (payloads[0]): size mismatch: expected 1000 bytes, \
             got 300: {}/f sent less than declared",
            server.url
        )
    );
}

#[tokio::test]
async fn a_checksum_mismatch() {
    let store = Store::start().await;
    let (url, _) =
        store.uploader().upload_with_sha256("x.bin", bytes(1000, 1).into()).await.unwrap();
    let mut record = link_record("d", &url, 1000);
    record["sha256"] = json!(natsbridge::sha256_hex(b"something else"));
    let err = unpack_err(&envelope_with(vec![record]), &store.downloader()).await;
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::Integrity));
    assert!(
        chain(&err).starts_with(&format!(
            "downloading payload \"d\" (payloads[0]): SHA-256 mismatch: {url}: expected SHA-256 "
        )),
        "{}",
        chain(&err)
    );
}

#[tokio::test]
async fn corrupt_arrow() {
    // envelope-core does not read Arrow: the message unpacks, and the table
    // conversion is where corrupt bytes are caught.
    let (_, json) = pack(
        "t",
        vec![Payload::arrow_table("table", b"ARROW1\0\0garbage".to_vec())],
        SendOptions::default(),
        None,
        DEFAULT_MAX_PAYLOAD,
    )
    .await
    .unwrap();
    let envelope = smartunpack(&json, &quick_downloader(None)).await.unwrap();
    let err = natsbridge::table::read_ipc(envelope.payloads[0].bytes().unwrap()).unwrap_err();
    assert_eq!(*err.kind(), natsbridge::table::ErrorKind::Malformed);
    assert!(err.to_string().starts_with("malformed Arrow IPC: "), "{err}");
}

#[tokio::test]
async fn oversize_envelope() {
    // Sending: without a file server, an envelope over max_payload fails
    // before anything is published, naming the largest payload.
    let err = pack(
        "t",
        vec![Payload::binary("huge", bytes(4000, 2))],
        SendOptions::default(),
        None,
        1024,
    )
    .await
    .unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::Envelope(EnvelopeKind::PayloadTooLarge { dataname, limit: 1024, .. })
            if dataname == "huge"
    ));
    assert!(chain(&err).starts_with("envelope of "), "{}", chain(&err));
    assert!(chain(&err).contains("exceeds max_payload 1024 by "), "{}", chain(&err));

    // Receiving: the server refuses a message over its max_payload before it
    // reaches any receiver; the publisher gets the error.
    let server = NatsServer::builder().max_payload(2048).start();
    let raw = natsbridge::transport::connect(server.url()).await.unwrap();
    let err = raw.publish("in", vec![b'x'; 4096].into()).await.unwrap_err();
    assert_eq!(
        err.kind(),
        &natsbridge::transport::ErrorKind::PayloadTooLarge { size: 4096, limit: 2048 }
    );
}

// --- Whole-message policy ---

#[tokio::test]
async fn a_bad_payload_among_good_ones_fails_the_whole_message() {
    let store = Store::start().await;
    let good_link =
        store.uploader().upload_with_sha256("x.bin", bytes(1000, 3).into()).await.unwrap().0;
    let good_direct = base()["payloads"][0].clone();

    // An error in the envelope itself (here bad base64 in the last record) is
    // found before any download: the one-shot link before it is untouched.
    let mut bad_direct = good_direct.clone();
    bad_direct["data"] = json!("not base64!");
    let message =
        envelope_with(vec![good_direct.clone(), link_record("d", &good_link, 1000), bad_direct]);
    let err = unpack_err(&message, &store.downloader()).await;
    assert_eq!(
        err.kind(),
        &ErrorKind::Envelope(EnvelopeKind::Base64 { field: "payloads[2].data".into() })
    );
    let downloader = store.downloader();
    let still_there = downloader.download_bytes(&DownloadRequest::new(&good_link, 1000)).await;
    assert_eq!(still_there.unwrap().len(), 1000);

    // A download that fails fails the whole message too, naming the record;
    // no envelope with a payload missing is ever returned.
    let missing = missing_link(&store);
    let message = envelope_with(vec![good_direct, link_record("gone", &missing, 10)]);
    let err = unpack_err(&message, &store.downloader()).await;
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::NotFound));
    assert!(chain(&err).starts_with("downloading payload \"gone\" (payloads[1]): "));
}

/// A bridge on `server` that downloads links from `store`.
async fn downloading_from(server: &NatsServer, store: &Store) -> Bridge {
    Bridge::builder(&server.url())
        .download_handler(Arc::new(store.downloader()))
        .connect()
        .await
        .unwrap()
}

/// A link to a file `store` never had.
fn missing_link(store: &Store) -> String {
    format!("{}/file/aaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbb/x.bin", store.server.url())
}

/// Read lazily, payload by payload, a failing link costs only itself: the
/// receiver fetches the link it wants (`Bridge::fetch_payload`, checked as
/// `smartunpack` checks links) and reads the direct one without any
/// download, while the message whole would fail on the missing link.
#[tokio::test]
async fn read_lazily_one_bad_link_costs_only_itself() {
    let server = NatsServer::start();
    let store = Store::start().await;
    let receiver = downloading_from(&server, &store).await;
    let mut sub = receiver.subscribe_lazy("lazy").await.unwrap();
    receiver.connection().sync().await.unwrap();

    let (good, hash) =
        store.uploader().upload_with_sha256("x.bin", bytes(1000, 3).into()).await.unwrap();
    let missing = missing_link(&store);
    let mut good_record = link_record("good", &good, 1000);
    good_record["sha256"] = json!(hash);
    // Its own upload: the store's links are one-shot.
    let other =
        store.uploader().upload_with_sha256("y.bin", bytes(1000, 4).into()).await.unwrap().0;
    let mut lying = link_record("lying", &other, 1000);
    lying["sha256"] = json!("0".repeat(64));
    let message = envelope_with(vec![
        base()["payloads"][0].clone(),
        link_record("gone", &missing, 10),
        good_record,
        lying,
    ]);
    assert_eq!(
        unpack_err(&message, &store.downloader()).await.kind(),
        &ErrorKind::ClaimCheck(ClaimCheckKind::NotFound),
        "whole, the message fails"
    );
    let raw = natsbridge::transport::connect(server.url()).await.unwrap();
    raw.publish("lazy", message.into()).await.unwrap();

    let incoming = sub.next().await.unwrap();
    let view = incoming.view().unwrap();
    let record = |name: &str| view.payload(name).unwrap().to_record().unwrap();
    let direct = receiver.fetch_payload(&record("greeting")).await.unwrap();
    assert_eq!(direct, record("greeting"), "a direct record comes back as it is");
    let fetched = receiver.fetch_payload(&record("good")).await.unwrap();
    assert_eq!(fetched.bytes().unwrap().as_ref(), bytes(1000, 3).as_slice());
    assert_eq!(fetched.url(), Some(good.as_str()));
    let err = receiver.fetch_payload(&record("gone")).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::NotFound));
    assert!(chain(&err).starts_with("downloading payload \"gone\": "), "{}", chain(&err));
    let err = receiver.fetch_payload(&record("lying")).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::Integrity));
}

#[tokio::test]
async fn rejected_carries_the_raw_message_of_a_failed_download() {
    let server = NatsServer::start();
    let store = Store::start().await;
    let receiver = downloading_from(&server, &store).await;
    let mut sub = receiver.subscribe("in").await.unwrap();
    receiver.connection().sync().await.unwrap();

    let missing = missing_link(&store);
    let message =
        envelope_with(vec![base()["payloads"][0].clone(), link_record("d", &missing, 10)]);
    let raw = natsbridge::transport::connect(server.url()).await.unwrap();
    raw.publish("in", message.clone().into()).await.unwrap();
    raw.publish("in", envelope_with(vec![base()["payloads"][0].clone()]).into()).await.unwrap();

    let rejected = sub.next().await.unwrap().unwrap_err();
    assert_eq!(rejected.payload.as_ref(), message.as_slice(), "the raw bytes, untouched");
    assert_eq!(rejected.subject, "in");
    assert_eq!(rejected.error.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::NotFound));
    let next = sub.next().await.unwrap().unwrap();
    assert_eq!(next.to_envelope().unwrap().payloads.len(), 1, "the subscription goes on");
}

#[tokio::test]
async fn jetstream_naks_a_message_whose_download_fails() {
    let server = NatsServer::builder().jetstream().start();
    let store = Store::start().await;
    let bridge = Bridge::builder(&server.url())
        .download_handler(Arc::new(store.downloader()))
        .connect()
        .await
        .unwrap();
    bridge.connection().jetstream().ensure_stream("IN", &["in.>"]).await.unwrap();
    let missing = missing_link(&store);
    let message = envelope_with(vec![link_record("d", &missing, 10)]);
    bridge.connection().jetstream().publish("in.x", message.clone().into(), None).await.unwrap();

    let mut consumer = bridge.jetstream_consumer("IN", "reader").await.unwrap();
    consumer.nak_delay =
        RetryConfig::new().with_base_delay(Duration::from_millis(10)).with_jitter(false);
    for delivery in 1..=2 {
        let got = consumer.fetch(10, Duration::from_secs(3)).await.unwrap();
        assert_eq!(got.len(), 1, "delivery {delivery}");
        let rejected = got[0].as_ref().unwrap_err();
        assert_eq!(rejected.payload.as_ref(), message.as_slice());
        assert_eq!(rejected.error.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::NotFound));
    }
}

// --- One error behaviour for every layer ---

/// Asserts that printing `err`'s chain shows each message once: no
/// error's `Display` repeats its cause (which `source()` returns).
fn assert_each_cause_once(layer: &str, err: &(dyn std::error::Error + 'static)) {
    let links = crate::util::chain_links(err);
    let text = links.join(": ");
    assert!(links.len() >= 2, "{layer}: a chain with a cause, got {text:?}");
    for link in &links {
        assert!(!link.is_empty(), "{layer}: an empty message in {text:?}");
        assert_eq!(text.matches(link.as_str()).count(), 1, "{layer}: {link:?} twice in {text:?}");
    }
}

#[tokio::test]
async fn every_layer_s_chain_shows_each_cause_once() {
    use natsbridge::claimcheck::objectstore::ObjectStoreOptions;

    // envelope-core, under the facade's context.
    let message = envelope_with(vec![link_record("d", "http://127.0.0.1:1/f", 10)]);
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let mut v: Value = serde_json::from_slice(&message).unwrap();
    v["payloads"][0]["size"] = json!("ten");
    let err = unpack_err(v.to_string().as_bytes(), &quick_downloader(None)).await;
    assert!(matches!(err.kind(), ErrorKind::Envelope(_)), "{err}");
    assert_eq!(chain(&err), err.to_string(), "an envelope error has no cause beneath it");

    // claimcheck-http: a refused connection (the claim-check error, reqwest's
    // beneath it, and hyper's and the OS's beneath that).
    let link = format!("http://{closed}/f");
    let message = envelope_with(vec![link_record("d", &link, 10)]);
    let err = unpack_err(&message, &quick_downloader(None)).await;
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::Connection), "{err}");
    assert!(err.is_retryable());
    assert_each_cause_once("claimcheck-http", &err);

    // transport-nats: nobody listening (async-nats's error beneath ours).
    let err = Bridge::builder(&format!("nats://{closed}")).connect().await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Nats(_)), "{err}");
    assert!(err.is_retryable(), "{err}");
    assert_each_cause_once("transport-nats", &err);

    // claimcheck-objectstore: a missing object (the role's error, the
    // transport's, async-nats's).
    let server = NatsServer::builder().jetstream().start();
    let conn = natsbridge::transport::connect(&server.url()).await.unwrap();
    let options = ObjectStoreOptions::new().with_bucket("chains");
    let store = natsbridge::ObjectStoreHandler::open(&conn.jetstream(), &options).await.unwrap();
    let message = envelope_with(vec![link_record("d", "nats-os://chains/none.bin", 10)]);
    let err = smartunpack(&message, &store).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::NotFound), "{err}");
    assert!(!err.is_retryable());
    assert_each_cause_once("claimcheck-objectstore", &err);

    // table-arrow: Arrow's error beneath ours.
    let err =
        natsbridge::table::read_ipc(&b"ARROW1\0\0garbage and more garbage"[..].into()).unwrap_err();
    assert_each_cause_once("table-arrow", &err);

    // A subscription's rejected message: an error itself, and `?` makes it
    // the facade's.
    let receiver = Bridge::builder(&server.url()).connect().await.unwrap();
    let mut subscription = receiver.subscribe("chains").await.unwrap();
    receiver.connection().sync().await.unwrap();
    conn.publish("chains", "not an envelope".into()).await.unwrap();
    let rejected = subscription.next().await.unwrap().unwrap_err();
    assert_each_cause_once("Rejected", &rejected);
    let kind = rejected.error.kind().clone();
    let as_facade = || -> natsbridge::Result<()> { Err(rejected)? };
    let err = as_facade().unwrap_err();
    assert_eq!(err.kind(), &kind);
    assert!(!err.is_retryable());
}
