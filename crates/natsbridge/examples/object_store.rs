//! Object-store links: large payloads through a JetStream object store
//! instead of a file server, between Rust peers.
//!
//! The sender is built with `BridgeBuilder::object_store`: its link
//! payloads are stored in the bucket `example-payloads` and travel as
//! `nats-os://example-payloads/<object>` links, so nothing but NATS is
//! needed. Only natsbridge Rust peers read such links: the other peers
//! cannot. The receiver reads both kinds of link: it uploads to the file
//! server like every peer (when `NATSBRIDGE_FILESERVER` is set) and opens
//! the same bucket read-only (`ObjectStoreOptions::new().with_send(false)`) for
//! the `nats-os://` links Rust peers send. A third peer, on the file
//! server, shows the two side by side.
//!
//! From the environment: `NATS_URL` (default `nats://127.0.0.1:4222`; the
//! server needs JetStream, `nats-server -js`) and, optionally,
//! `NATSBRIDGE_FILESERVER`.
//!
//! ```sh
//! cargo run -p natsbridge --example object_store
//! ```

use std::error::Error;
use std::time::Duration;

use natsbridge::{Bridge, ObjectStoreOptions, Payload, SendOptions, sha256_hex};

const BUCKET: &str = "example-payloads";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tokio::time::timeout(Duration::from_secs(30), run()).await?
}

async fn run() -> Result<(), Box<dyn Error>> {
    let nats = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let files = std::env::var("NATSBRIDGE_FILESERVER").ok().filter(|f| !f.is_empty());

    // Reads nats-os:// links from the bucket, sends through the file server.
    let read_only = ObjectStoreOptions::new().with_bucket(BUCKET).with_send(false);
    let mut builder = Bridge::builder(&nats).object_store_options(read_only);
    if let Some(files) = &files {
        builder = builder.fileserver(files);
    }
    let receiver = builder.connect().await?;
    let mut inbox = receiver.subscribe("reports.daily").await?;
    receiver.connection().sync().await?;

    // Sends its link payloads through the object store.
    let rust_peer = Bridge::builder(&nats).object_store(BUCKET).connect().await?;
    let report: Vec<u8> =
        (0..5_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8).collect();
    let payloads =
        vec![Payload::text("title", "daily report"), Payload::binary("report", report.clone())];
    let sent = rust_peer.smartsend("reports.daily", payloads, SendOptions::default()).await?;
    let sent = sent.envelope()?;
    println!(
        "sent {} with the report as {}",
        sent.msg_id,
        sent.payloads[1].url().unwrap_or("(direct?)")
    );

    let mut expected = vec![("object store", sent.msg_id.clone())];
    if let Some(files) = &files {
        let http_peer = Bridge::builder(&nats).fileserver(files).connect().await?;
        let payloads = vec![
            Payload::text("title", "weekly report"),
            Payload::binary("report", report.clone()),
        ];
        let sent = http_peer
            .smartsend("reports.daily", payloads, SendOptions::default())
            .await?
            .envelope()?;
        // Written to the server before `http_peer` (its connection) is
        // dropped at the end of this block: a publish only queues it.
        http_peer.flush().await?;
        println!(
            "sent {} with the report as {}",
            sent.msg_id,
            sent.payloads[1].url().unwrap_or("(direct?)")
        );
        expected.push(("file server", sent.msg_id));
    }

    // Two connections: their messages may arrive in either order.
    for _ in 0..expected.len() {
        let received = inbox.next().await.ok_or("subscription ended")?.map_err(|r| r.error)?;
        let envelope = received.to_envelope()?;
        let Some(at) = expected.iter().position(|(_, id)| *id == envelope.msg_id) else {
            return Err(format!("unexpected message {}", envelope.msg_id).into());
        };
        let (store, _) = expected.swap_remove(at);
        let record = &envelope.payloads[1];
        let url = record.url().ok_or("the report should go by link")?;
        let bytes = record.bytes().ok_or("the report was not fetched")?;
        println!("received {} from the {store}: {} bytes from {url}", envelope.msg_id, bytes.len());
        let scheme_ok = url.starts_with("nats-os://") == (store == "object store");
        if !scheme_ok || sha256_hex(bytes) != sha256_hex(&report) {
            return Err(format!("the report from the {store} is not what was sent").into());
        }
    }
    println!("both reports arrived intact");
    Ok(())
}
