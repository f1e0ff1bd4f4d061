//! `natsbridge inspect` (and the page `dev` serves), over HTTP, against a
//! real nats-server and file server: what the history keeps, the event
//! stream, failures listed, links fetched only when asked, sending, and
//! the refusals that keep other sites and hosts out. The page itself runs
//! in Chromium in `tests/inspector/browser.mjs` (`cargo xtask inspector`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::{Duration, Instant};

use natsbridge::envelope::bytes::Bytes;
use natsbridge::{Payload, SendOptions};
use natsbridge_fileserver::FileServer;
use natsbridge_test_support::NatsServer;
use serde_json::{Value, json};

use crate::util::{interrupt, run, start_json, start_ready};

/// A running `natsbridge inspect --json ...` and its page's address.
struct Inspect {
    child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
}

impl Inspect {
    fn start(args: &[&str]) -> Inspect {
        let (child, started) =
            start_json(["inspect", "--json", "--listen", "127.0.0.1:0"].iter().chain(args));
        let url = started["url"].as_str().unwrap();
        let addr = url.trim_start_matches("http://").trim_end_matches('/').to_string();
        Inspect { child, addr }
    }

    fn get(&self, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
        http(&self.addr, "GET", path, &[], b"")
    }

    fn json(&self, path: &str) -> Value {
        let (status, _, body) = self.get(path);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    fn post(&self, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
        let (status, _, body) =
            http(&self.addr, "POST", path, &[("Content-Type", content_type)], body);
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// The kept messages, waiting until there are at least `n`.
    fn messages(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let messages = self.json("/api/messages")["messages"].as_array().unwrap().clone();
            if messages.len() >= n || Instant::now() > deadline {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Inspect {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request (the connection closed after it): the status, the
/// headers and the body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    let mut body = Vec::new();
    reader.read_to_end(&mut body).unwrap();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    (status, headers, if chunked { unchunk(&body) } else { body })
}

fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    (status, headers)
}

fn unchunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&body[..end]).unwrap(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 4 + size..];
    }
}

/// The server-sent events of `/api/events`, read as they come.
struct Events {
    reader: BufReader<TcpStream>,
}

impl Events {
    fn open(addr: &str) -> Events {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(stream, "GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader);
        assert_eq!(status, 200);
        assert!(headers.iter().any(|(k, v)| k == "content-type" && v == "text/event-stream"));
        Events { reader }
    }

    /// The next event's name and data (chunk sizes and comments skipped).
    fn next(&mut self) -> (String, Value) {
        let (mut event, mut data) = (String::new(), None);
        loop {
            let mut line = String::new();
            assert!(self.reader.read_line(&mut line).unwrap() > 0, "the stream ended");
            let line = line.trim_end();
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_string();
            } else if let Some(json) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str(json).unwrap());
            } else if line.is_empty()
                && let Some(data) = data.take()
            {
                return (event, data);
            }
        }
    }
}

async fn bridge(server: &NatsServer) -> natsbridge::Bridge {
    natsbridge::connect(&server.url()).await.unwrap()
}

async fn send_text(bridge: &natsbridge::Bridge, subject: &str, text: &str) -> natsbridge::Envelope {
    let payloads = vec![Payload::text("t", text)];
    let (envelope, _) = bridge
        .smartsend(subject, payloads, SendOptions::default())
        .await
        .unwrap()
        .into_parts()
        .unwrap();
    bridge.flush().await.unwrap();
    envelope
}

#[tokio::test(flavor = "multi_thread")]
async fn keeps_the_last_n_newest_and_lists_what_does_not_decode() {
    let server = NatsServer::start();
    let url = server.url();
    let inspect = Inspect::start(&["--server", &url, "--history", "3", "inspect.>"]);
    let bridge = bridge(&server).await;
    for i in 0..4 {
        send_text(&bridge, &format!("inspect.n{i}"), &format!("message {i}")).await;
    }
    // Not an envelope: listed with its error, not hidden.
    bridge
        .connection()
        .publish("inspect.bad", Bytes::from_static(b"{\"msg_id\": 1"))
        .await
        .unwrap();
    // Not watched.
    send_text(&bridge, "elsewhere", "unseen").await;
    bridge.flush().await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let messages = loop {
        let messages = inspect.messages(3);
        if messages.last().is_some_and(|m| m["subject"] == "inspect.bad")
            || Instant::now() > deadline
        {
            break messages;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let subjects: Vec<&str> = messages.iter().map(|m| m["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, ["inspect.n2", "inspect.n3", "inspect.bad"]);
    let seqs: Vec<u64> = messages.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [3, 4, 5]);
    assert_eq!(messages[0]["payloads"][0]["preview"]["text"], "message 2");
    assert!(messages[2]["error"]["kind"].as_str().unwrap().starts_with("envelope."));
    assert!(!messages[2]["error"]["message"].as_str().unwrap().is_empty());
    // The raw body of each is one request away, exactly as it arrived.
    let (status, _, raw) = inspect.get("/api/messages/5/raw");
    assert_eq!((status, raw.as_slice()), (200, &b"{\"msg_id\": 1"[..]));
    let (status, _, _) = inspect.get("/api/messages/1/raw");
    assert_eq!(status, 404, "message 1 was evicted");
    let info = inspect.json("/api/info");
    assert_eq!(info["subjects"], json!(["inspect.>"]));
    assert_eq!(info["kept"]["messages"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_stays_within_the_byte_limit() {
    let server = NatsServer::start();
    let url = server.url();
    let limit = 200_000;
    let inspect =
        Inspect::start(&["--server", &url, "--history-bytes", &limit.to_string(), "bytes.>"]);
    let bridge = bridge(&server).await;
    for i in 0..30 {
        send_text(&bridge, &format!("bytes.{i}"), &"x".repeat(20_000)).await;
    }
    let messages = loop {
        let messages = inspect.json("/api/messages")["messages"].as_array().unwrap().clone();
        if messages.last().is_some_and(|m| m["subject"] == "bytes.29") {
            break messages;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let kept = inspect.json("/api/info")["kept"].clone();
    assert!(kept["bytes"].as_u64().unwrap() <= limit, "{kept}");
    assert!(messages.len() < 30 && messages.len() >= 2, "{}", messages.len());
    assert_eq!(messages.len() as u64, kept["messages"].as_u64().unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_event_stream_replays_the_history_then_goes_live() {
    let server = NatsServer::start();
    let url = server.url();
    let inspect = Inspect::start(&["--server", &url]);
    let bridge = bridge(&server).await;
    let first = send_text(&bridge, "live.one", "before the page").await;
    inspect.messages(1);

    let mut events = Events::open(&inspect.addr);
    assert_eq!(events.next().0, "reset");
    let (name, data) = events.next();
    assert_eq!((name.as_str(), &data["envelope"]["msg_id"]), ("added", &json!(first.msg_id)));

    let second = send_text(&bridge, "live.two", "while the page watches").await;
    let (name, data) = events.next();
    assert_eq!(name, "added");
    assert_eq!(data["subject"], "live.two");
    assert_eq!(data["envelope"]["msg_id"], second.msg_id);
    assert_eq!(data["payloads"][0]["preview"]["text"], "while the page watches");

    // A request and its answer: the request is updated with the round trip.
    let (request, _) = bridge
        .smartsend(
            "live.svc",
            vec![Payload::text("q", "?")],
            SendOptions::new().with_reply_to("live.replies"),
        )
        .await
        .unwrap()
        .into_parts()
        .unwrap();
    bridge.flush().await.unwrap();
    assert_eq!(events.next().1["envelope"]["msg_id"], request.msg_id);
    let answer = bridge
        .smartsend("live.replies", vec![Payload::text("a", "!")], request.reply_options())
        .await
        .unwrap()
        .envelope()
        .unwrap();
    bridge.flush().await.unwrap();
    let (name, updated) = events.next();
    assert_eq!(name, "updated");
    assert_eq!(updated["seq"], 3);
    assert_eq!(updated["answered_by"][0]["seq"], 4);
    let (name, added) = events.next();
    assert_eq!(name, "added");
    assert_eq!(added["envelope"]["msg_id"], answer.msg_id);
    assert_eq!(added["answers"]["seq"], 3);
    assert!(added["answers"]["rtt_ms"].is_u64());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_shot_link_is_fetched_only_when_asked() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let files = FileServer::builder().dir(dir.path()).bind("127.0.0.1:0").await.unwrap();
    let url = server.url();
    let inspect = Inspect::start(&["--server", &url]);
    let big = dir.path().join("big.bin");
    let bytes: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&big, &bytes).unwrap();
    let sent = run(&[
        "send",
        "links.big",
        &format!("binary:big=@{}", big.display()),
        "--server",
        &url,
        "--fileserver",
        files.url(),
    ]);
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let envelope: Value = serde_json::from_slice(&sent.stdout).unwrap();
    let link = envelope["payloads"][0]["data"].as_str().unwrap().to_string();

    // The page loads and shows the message: nothing is downloaded.
    let message = inspect.messages(1).remove(0);
    let (status, _, page) = inspect.get("/");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("natsbridge inspector"));
    let mut events = Events::open(&inspect.addr);
    events.next();
    events.next();
    let payload = &message["payloads"][0];
    assert_eq!(
        (payload["transport"].as_str(), payload["here"].as_bool()),
        (Some("link"), Some(false))
    );
    assert!(payload["preview"].is_null());
    let (status, _, body) = inspect.get("/api/messages/1/payloads/0");
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["kind"], "inspector.not_fetched");
    // Still on the file server (HEAD does not consume a one-shot file).
    let file_addr = files.url().trim_start_matches("http://").to_string();
    let path = link.strip_prefix(files.url()).unwrap();
    let (status, _, _) = http(&file_addr, "HEAD", path, &[("User-Agent", "curl/8")], b"");
    assert_eq!(status, 200, "the inspector consumed the one-shot link unasked");

    // Asked: fetched through the download path, checked, kept.
    let (status, fetched) =
        inspect.post("/api/messages/1/payloads/0/fetch", "application/json", b"{}");
    assert_eq!(status, 200, "{fetched}");
    let payload = &fetched["payloads"][0];
    assert_eq!(payload["here"], true);
    assert_eq!(payload["sha256"], natsbridge::sha256_hex(&bytes));
    assert_eq!(payload["preview"]["kind"], "bytes");
    let (name, updated) = events.next();
    assert_eq!((name.as_str(), &updated["payloads"][0]["here"]), ("updated", &json!(true)));
    let (status, headers, served) = inspect.get("/api/messages/1/payloads/0?download");
    assert_eq!(status, 200);
    assert_eq!(served, bytes);
    assert!(headers.iter().any(|(k, v)| k == "content-disposition" && v.contains("big.bin")));
    // The one-shot file is gone from the server; the inspector serves its
    // copy, and a second fetch does not download again.
    let (status, _, _) = http(&file_addr, "GET", path, &[("User-Agent", "curl/8")], b"");
    assert_eq!(status, 404);
    let (status, again) =
        inspect.post("/api/messages/1/payloads/0/fetch", "application/json", b"{}");
    assert_eq!((status, &again["payloads"][0]["sha256"]), (200, &payload["sha256"]));
    files.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_that_fails_its_checks_is_an_error_on_the_page() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let files = FileServer::builder().dir(dir.path()).bind("127.0.0.1:0").await.unwrap();
    let url = server.url();
    // Downloads only from an origin the link is not on: refused before any
    // request, as `listen --allow-origin` refuses it.
    let inspect = Inspect::start(&["--server", &url, "--allow-origin", "http://127.0.0.2:1"]);
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![3u8; 600_000]).unwrap();
    let sent = run(&[
        "send",
        "links.refused",
        &format!("binary:big=@{}", big.display()),
        "--server",
        &url,
        "--fileserver",
        files.url(),
    ]);
    assert!(sent.status.success());
    inspect.messages(1);
    let (status, body) =
        inspect.post("/api/messages/1/payloads/0/fetch", "application/json", b"{}");
    assert_eq!(status, 502, "{body}");
    let error = &body["payloads"][0]["fetch_error"];
    assert_eq!(error["kind"], "claimcheck.url_refused", "{body}");
    // Missing messages and payloads are typed errors, not panics.
    let (status, body) =
        inspect.post("/api/messages/99/payloads/0/fetch", "application/json", b"{}");
    assert_eq!((status, &body["error"]["kind"]), (404, &json!("inspector.gone")));
    let (status, body) =
        inspect.post("/api/messages/1/payloads/9/fetch", "application/json", b"{}");
    assert_eq!((status, &body["error"]["kind"]), (404, &json!("inspector.no_payload")));
    files.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sends_from_the_page_reach_a_listener() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let files = FileServer::builder().dir(dir.path()).bind("127.0.0.1:0").await.unwrap();
    let url = server.url();
    let inspect =
        Inspect::start(&["--server", &url, "--fileserver", files.url(), "--threshold", "1000"]);
    let mut listener =
        start_ready(&["listen", "--json", "page.out", "--server", &url, "--count", "1"]);
    // A file first (its bytes as the body), then the message naming it.
    let csv = b"id,name\n1,Alice\n2,Bob\n";
    let (status, stored) =
        inspect.post("/api/files?name=people.csv", "application/octet-stream", csv);
    assert_eq!(status, 200, "{stored}");
    let big = vec![9u8; 5_000];
    let (status, big_file) =
        inspect.post("/api/files?name=blob%20one.bin", "application/octet-stream", &big);
    assert_eq!(status, 200, "{big_file}");
    let request = json!({
        "subject": "page.out",
        "msg_purpose": "updateStatus",
        "sender_name": "tester",
        "payloads": [
            {"type": "text", "name": "note=1", "value": "@/etc/passwd"},
            {"type": "dictionary", "name": "cfg", "value": "{\"a\": [1, 2]}"},
            {"type": "arrowtable", "name": "people", "file": stored["file"]},
            {"type": "binary", "name": "blob", "file": big_file["file"]},
        ],
    });
    let (status, sent) =
        inspect.post("/api/send", "application/json", request.to_string().as_bytes());
    assert_eq!(status, 200, "{sent}");
    let transports: Vec<&str> = sent["payloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["transport"].as_str().unwrap())
        .collect();
    // --threshold 1000: the 5,000-byte file goes by link, as `send` would.
    assert_eq!(transports, ["direct", "direct", "direct", "link"]);

    let mut line = String::new();
    listener.stdout.read_line(&mut line).unwrap();
    assert!(listener.child.wait().unwrap().success());
    let heard: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(heard["msg_id"], sent["msg_id"]);
    assert_eq!(heard["msg_purpose"], "updateStatus");
    assert_eq!(heard["sender_name"], "tester");
    let payloads = heard["payloads"].as_array().unwrap();
    // A literal is a literal: never read as a path.
    assert_eq!(payloads[0]["dataname"], "note=1");
    assert_eq!(payloads[0]["sha256"], natsbridge::sha256_hex(b"@/etc/passwd"));
    assert_eq!(payloads[1]["sha256"], natsbridge::sha256_hex(b"{\"a\": [1, 2]}"));
    // The CSV was converted to an Arrow table, as `send arrowtable:people=@people.csv`.
    assert_eq!(payloads[2]["payload_type"], "arrowtable");
    assert_eq!(payloads[3]["sha256"], natsbridge::sha256_hex(&big));

    // Bad input is a typed refusal.
    for (request, kind) in [
        (json!({"subject": "page.out", "payloads": []}), "inspector.bad_request"),
        (json!({"payloads": [{"type": "text", "value": "x"}]}), "inspector.bad_request"),
        (
            json!({"subject": "page.out", "payloads": [{"type": "hologram", "value": "x"}]}),
            "inspector.bad_request",
        ),
        (
            json!({"subject": "page.out", "payloads": [{"type": "dictionary", "value": "{no"}]}),
            "inspector.bad_payload",
        ),
        (
            json!({"subject": "page.out", "payloads": [{"type": "binary", "file": "../../etc/passwd"}]}),
            "inspector.bad_request",
        ),
        (
            json!({"subject": "bad subject", "payloads": [{"type": "text", "value": "x"}]}),
            "inspector.send",
        ),
    ] {
        let (status, body) =
            inspect.post("/api/send", "application/json", request.to_string().as_bytes());
        assert_eq!((status, &body["error"]["kind"]), (400, &json!(kind)), "{request}: {body}");
    }
    let (status, body) = inspect.post("/api/send", "application/json", b"{not json");
    assert_eq!((status, &body["error"]["kind"]), (400, &json!("inspector.bad_request")));
    files.shutdown().await;
}

#[test]
fn other_sites_and_hosts_are_refused() {
    let server = NatsServer::start();
    let inspect = Inspect::start(&["--server", &server.url()]);
    // DNS rebinding: a page of another name that resolves here.
    let (status, _, _) =
        http(&inspect.addr, "GET", "/api/messages", &[("Host", "evil.example:80")], b"");
    assert_eq!(status, 403);
    // Another site's page posting (a form can send text/plain without asking).
    let body = br#"{"subject":"x","payloads":[{"type":"text","value":"x"}]}"#;
    let (status, _, _) =
        http(&inspect.addr, "POST", "/api/send", &[("Content-Type", "text/plain")], body);
    assert_eq!(status, 403);
    let (status, _, _) = http(
        &inspect.addr,
        "POST",
        "/api/send",
        &[("Content-Type", "application/json"), ("Origin", "http://evil.example")],
        body,
    );
    assert_eq!(status, 403);
    // Payload bytes are never run as this page.
    let (status, headers, _) = inspect.get("/");
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-security-policy" && v.contains("script-src 'self'"))
    );
}

/// What the page reads from a request is bounded: a file for a send by
/// `--max-upload` (413), and a send must be JSON (400).
#[test]
fn request_bodies_are_bounded() {
    let server = NatsServer::start();
    let inspect = Inspect::start(&["--server", &server.url(), "--max-upload", "4096"]);
    let binary = "application/octet-stream";
    let (status, body) = inspect.post("/api/files?name=big.bin", binary, &[7u8; 5000]);
    assert_eq!((status, &body["error"]["kind"]), (413, &json!("inspector.upload")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("--max-upload"), "{body}");
    let (status, body) = inspect.post("/api/files?name=fits.bin", binary, &[7u8; 4096]);
    assert_eq!((status, &body["size"]), (200, &json!(4096)), "{body}");
    let (status, body) = inspect.post("/api/send", "application/json", b"{not json");
    assert_eq!((status, &body["error"]["kind"]), (400, &json!("inspector.bad_request")));
}

/// A connection that sends part of a request's headers and then nothing is
/// closed by the page once the header read timeout has passed (shortened
/// to 1 second here; 30 by default), and the page still answers others.
#[test]
fn a_request_header_that_never_ends_is_cut_off() {
    let server = NatsServer::start();
    let inspect = Inspect::start(&["--server", &server.url(), "--header-read-timeout", "1"]);
    let mut slow = TcpStream::connect(&inspect.addr).unwrap();
    // A guard against a page that never closes it, well past the timeout.
    slow.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    slow.write_all(
        format!("GET /api/info HTTP/1.1\r\nHost: {}\r\nX-Slow: ", inspect.addr).as_bytes(),
    )
    .unwrap();
    let mut rest = Vec::new();
    match slow.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) => assert!(
            !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            "the page kept the connection open"
        ),
    }
    assert!(!String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 200"));
    assert_eq!(inspect.json("/api/info")["subjects"], json!([">"]));
}

#[test]
fn serving_beyond_loopback_needs_asking() {
    let out = run(&["inspect", "--listen", "0.0.0.0:0", "--server", "nats://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(6), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--allow-remote"), "{stderr}");
    let out = run(&["inspect", "--listen", "nowhere", "--server", "nats://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(6), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_subject_that_cannot_be_watched_is_bad_input() {
    let server = NatsServer::start();
    for subject in ["a b", "a..b", ">.x"] {
        let out = run(&["inspect", subject, "--server", &server.url()]);
        assert_eq!(out.status.code(), Some(6), "{}", String::from_utf8_lossy(&out.stderr));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("invalid subject {subject:?} to subscribe to")),
            "{stderr}"
        );
    }
}

#[test]
fn listeners_start_while_an_inspector_watches_every_subject() {
    let server = NatsServer::start();
    let url = server.url();
    let _inspect = Inspect::start(&["--server", &url]);
    // `>` is interest in every inbox: a readiness check waiting for "no
    // responders" would never see one. The listener says it listens only
    // once it is subscribed, so the message sent next must reach it.
    let mut listener = start_ready(&["listen", "watched.too", "--server", &url, "--count", "1"]);
    let sent = run(&["send", "watched.too", "text:t=hi", "--server", &url]);
    assert!(sent.status.success());
    assert!(listener.child.wait().unwrap().success());
}

#[test]
fn dev_serves_the_inspector_page() {
    let (mut child, started) = start_json(["dev", "--json"]);
    let page = started["inspector_url"].as_str().unwrap();
    let addr = page.trim_start_matches("http://").trim_end_matches('/');
    let nats_url = started["nats_url"].as_str().unwrap();
    let sent = run(&["send", "dev.seen", "text:t=hello", "--server", nats_url]);
    assert!(sent.status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let messages = loop {
        let (status, _, body) = http(addr, "GET", "/api/messages", &[], b"");
        assert_eq!(status, 200);
        let body: Value = serde_json::from_slice(&body).unwrap();
        let messages = body["messages"].as_array().unwrap().clone();
        if !messages.is_empty() || Instant::now() > deadline {
            break messages;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(messages[0]["subject"], "dev.seen");
    let (status, _, html) = http(addr, "GET", "/", &[], b"");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&html).contains("natsbridge inspector"));
    assert!(interrupt(&mut child));
}
