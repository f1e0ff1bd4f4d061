//! Every store and JetStream from the command line: link payloads by HTTP
//! PUT (the file server's PUT area), to S3 (moto), to the JetStream object
//! store, and `send --jetstream` acknowledged by a stream.

use std::time::Duration;

use natsbridge::claimcheck::{DownloadHandlerExt, DownloadRequest, http::HttpDownloader};
use natsbridge::{Bridge, ObjectStoreOptions};
use natsbridge_fileserver::FileServer;
use natsbridge_test_support::NatsServer;
use serde_json::Value;

use crate::util::{json_lines, natsbridge};

/// A file of `n` bytes that do not compress to nothing.
fn big_file(dir: &std::path::Path, n: usize) -> (std::path::PathBuf, Vec<u8>) {
    let bytes: Vec<u8> =
        (0..n as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let path = dir.join("big.bin");
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

fn send(args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut cmd = natsbridge();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let first = out.stdout.split(|b| *b == b'\n').next().unwrap();
    serde_json::from_slice(first).unwrap()
}

async fn fetch(link: &str, size: usize) -> Vec<u8> {
    let down = HttpDownloader::new().unwrap();
    down.download_bytes(&DownloadRequest::new(link, size as u64)).await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_upload_a_retry_can_fix_is_retried() {
    use natsbridge_claimcheck_http::conformance::{Fault, FaultProxy};
    let dir = tempfile::tempdir().unwrap();
    let files = FileServer::builder().dir(dir.path().join("s")).bind("127.0.0.1:0").await.unwrap();
    let proxy = FaultProxy::start(files.local_addr()).await;
    // The first `POST /upload` is answered 503, as a busy Plik does.
    proxy.arm(Fault::Status(503), 1);
    let (path, bytes) = big_file(dir.path(), 1_500_000);
    let (source, proxy_url) = (format!("binary:doc=@{}", path.display()), proxy.url());
    let nats = NatsServer::start();
    let envelope =
        send(&["send", "t", &source, "--fileserver", &proxy_url], &[("NATS_URL", &nats.url())]);
    assert_eq!(proxy.injected(), 1, "the fault was met");
    let record = &envelope["payloads"][0];
    assert_eq!(record["transport"], "link");
    let link = record["data"].as_str().unwrap();
    assert_eq!(record["sha256"], natsbridge::sha256_hex(&bytes).as_str());
    assert!(fetch(link, bytes.len()).await == bytes);
}

#[tokio::test(flavor = "multi_thread")]
async fn link_payloads_by_http_put() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileServer::builder().dir(dir.path().join("s")).bind("127.0.0.1:0").await.unwrap();
    let (path, bytes) = big_file(dir.path(), 600_000);
    let template = files.put_template();
    let nats = NatsServer::start();
    let envelope = send(
        &["send", "t", &format!("binary:doc=@{}", path.display()), "--put-url", &template],
        &[("NATSBRIDGE_FILESERVER", "http://127.0.0.1:9"), ("NATS_URL", &nats.url())],
    );
    let record = &envelope["payloads"][0];
    assert_eq!(record["transport"], "link");
    let link = record["data"].as_str().unwrap();
    assert!(link.starts_with(&format!("{}/put/", files.url())), "{link}");
    assert!(fetch(link, bytes.len()).await == bytes);
}

#[tokio::test(flavor = "multi_thread")]
async fn link_payloads_to_s3_from_the_aws_variables() {
    let moto = natsbridge_test_support::Moto::start("natsbridge-cli");
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = big_file(dir.path(), 700_000);
    let nats = NatsServer::start();
    let envelope = send(
        &["send", "t", &format!("binary:doc=@{}", path.display())],
        &[
            ("NATS_URL", &nats.url()),
            ("NATSBRIDGE_S3_BUCKET", "natsbridge-cli"),
            ("AWS_ENDPOINT_URL", &moto.url()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    );
    let link = envelope["payloads"][0]["data"].as_str().unwrap();
    assert!(link.starts_with(&format!("{}/natsbridge-cli/", moto.url())), "{link}");
    assert!(link.contains("X-Amz-Signature="), "a presigned link: {link}");
    assert!(fetch(link, bytes.len()).await == bytes);
}

#[tokio::test(flavor = "multi_thread")]
async fn link_payloads_to_the_jetstream_object_store() {
    let server = NatsServer::builder().jetstream().start();
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = big_file(dir.path(), 800_000);
    // A reader that knows the bucket subscribes first.
    let options = ObjectStoreOptions::new().with_bucket("cli").with_send(false);
    let reader =
        Bridge::builder(&server.url()).object_store_options(options).connect().await.unwrap();
    let mut sub = reader.subscribe("os.t").await.unwrap();
    reader.connection().sync().await.unwrap();
    let envelope = send(
        &["send", "os.t", &format!("binary:doc=@{}", path.display()), "--object-store", "cli"],
        &[("NATS_URL", &server.url())],
    );
    let link = envelope["payloads"][0]["data"].as_str().unwrap();
    assert!(link.starts_with("nats-os://cli/"), "{link}");
    let got = tokio::time::timeout(Duration::from_secs(20), sub.next()).await.unwrap();
    let got = got.unwrap().unwrap();
    assert!(got.view().payloads()[0].bytes().unwrap().as_ref() == bytes.as_slice());
}

#[tokio::test(flavor = "multi_thread")]
async fn send_jetstream_is_acknowledged_by_the_stream() {
    let server = NatsServer::builder().jetstream().start();
    let conn = natsbridge::transport::connect(server.url()).await.unwrap();
    conn.jetstream().ensure_stream("ORDERS", &["orders.>"]).await.unwrap();
    let out = natsbridge()
        .args(["send", "orders.new", "text:item=book", "--jetstream"])
        .env("NATS_URL", server.url())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&out.stdout);
    assert_eq!(lines[0]["send_to"], "orders.new");
    assert_eq!(lines[1]["stream"], "ORDERS");
    assert_eq!(lines[1]["sequence"], 1);
    assert_eq!(lines[1]["duplicate"], false);
    // No stream covers the subject: an error, not a silent publish.
    let out = natsbridge()
        .args(["send", "nowhere.new", "text:item=book", "--jetstream", "--timeout", "3s"])
        .env("NATS_URL", server.url())
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_consumes_a_durable_and_acks_what_decoded() {
    let server = NatsServer::builder().jetstream().start();
    let conn = natsbridge::transport::connect(server.url()).await.unwrap();
    conn.jetstream().ensure_stream("JOBS", &["jobs.>"]).await.unwrap();
    for n in ["one", "two"] {
        send(
            &["send", "jobs.new", &format!("text:job={n}"), "--jetstream"],
            &[("NATS_URL", &server.url())],
        );
    }
    let listen = |count: &str| {
        natsbridge()
            .args(["listen", "jobs.>", "--stream", "JOBS", "--durable", "worker", "--json"])
            .args(["--count", count, "--timeout", "5s"])
            .env("NATS_URL", server.url())
            .output()
            .unwrap()
    };
    let out = listen("2");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 2);
    // Both were acked: the durable consumer has nothing left for a restart.
    let again = listen("1");
    assert_eq!(again.status.code(), Some(3), "{}", String::from_utf8_lossy(&again.stderr));
}
