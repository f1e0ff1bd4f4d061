//! Claim-check through a JetStream object store (`nats-os://` links) on a
//! real nats-server: round trips of every size, 300 MB streamed from a
//! file, one-shot deletion, missing and tampered objects, and receivers
//! that have no object store.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use natsbridge::claimcheck::{
    DownloadHandlerExt, DownloadRequest, ErrorKind as ClaimCheckKind, UploadHandler,
    UploadHandlerExt, UploadSource,
};
use natsbridge::transport::ErrorKind as NatsKind;
use natsbridge::{
    Bridge, ErrorKind, ObjectStoreHandler, ObjectStoreOptions, Payload, SHA256_KEY, SendOptions,
    Transport, sha256_hex, smartunpack,
};
use natsbridge_test_support::NatsServer;
use sha2::{Digest, Sha256};

use crate::util::{Store, bytes, chain};

const BUCKET: &str = "claims";

async fn handler(server: &NatsServer) -> ObjectStoreHandler {
    let conn = natsbridge::transport::connect(&server.url()).await.unwrap();
    let options = ObjectStoreOptions::new().with_bucket(BUCKET);
    ObjectStoreHandler::open(&conn.jetstream(), &options).await.unwrap()
}

async fn os_bridge(server: &NatsServer) -> Bridge {
    Bridge::builder(&server.url()).object_store(BUCKET).connect().await.unwrap()
}

/// Waits until the server has registered `bridge`'s subscriptions.
async fn barrier(bridge: &Bridge) {
    let err = bridge.connection().request("barrier.none", "".into(), Duration::from_secs(5)).await;
    assert_eq!(err.unwrap_err().kind(), &NatsKind::NoResponders);
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A core NATS message carrying `json`, as a subscription hands it over.
fn message(json: String) -> natsbridge::transport::Message {
    natsbridge::transport::Message {
        subject: "os.test".into(),
        reply: None,
        payload: json.into(),
        headers: None,
        status: None,
        description: None,
        length: 0,
    }
}

/// An envelope with one link record, as a peer would send it.
fn link_envelope(url: &str, size: u64, sha256: Option<&str>) -> String {
    let sha = sha256.map(|s| format!(r#","sha256":"{s}""#)).unwrap_or_default();
    format!(
        r#"{{"msg_id":"m","payloads":[{{"id":"p","dataname":"d","payload_type":"binary","transport":"link","encoding":"none","size":{size},"data":"{url}"{sha}}}]}}"#
    )
}

#[tokio::test]
async fn objectstore_round_trips_every_size_through_smartsend_and_subscribe() {
    let server = NatsServer::builder().jetstream().start();
    let receiver = os_bridge(&server).await;
    let mut sub = receiver.subscribe("os.sizes").await.unwrap();
    barrier(&receiver).await;
    let sender = os_bridge(&server).await;
    let sizes = [0, 1, 499_999, 500_000, 5_000_000];
    let originals: Vec<Vec<u8>> = sizes.iter().map(|&n| bytes(n, n as u32)).collect();
    let payloads =
        || originals.iter().zip(sizes).map(|(b, n)| Payload::binary(format!("p{n}"), b.clone()));

    // The default threshold: only what reaches 500,000 bytes goes by link.
    let (sent, json) = sender
        .smartsend("os.sizes", payloads().collect::<Vec<_>>(), SendOptions::default())
        .await
        .unwrap()
        .into_parts()
        .unwrap();
    let transports: Vec<_> = sent.payloads.iter().map(|p| p.transport()).collect();
    use Transport::{Direct, Link};
    assert_eq!(transports, [Direct, Direct, Direct, Link, Link]);
    for record in &sent.payloads[3..] {
        let url = record.url().unwrap();
        assert!(url.starts_with("nats-os://claims/"), "{url}");
        assert!(record.extra.contains_key(SHA256_KEY));
    }
    assert!(json.len() < 700_000, "the large payloads did not travel inside");
    let got = sub.next().await.unwrap().unwrap();
    for (record, original) in got.to_envelope().unwrap().payloads.iter().zip(&originals) {
        assert!(record.bytes().unwrap().as_ref() == original.as_slice(), "{}", record.dataname);
    }

    // Threshold 0: every payload, the empty one included, goes by link.
    let options = SendOptions::new().with_size_threshold(0);
    let (sent, _) = sender
        .smartsend("os.sizes", payloads().collect::<Vec<_>>(), options)
        .await
        .unwrap()
        .into_parts()
        .unwrap();
    assert!(sent.payloads.iter().all(|p| p.transport() == Link));
    let got = sub.next().await.unwrap().unwrap();
    for (record, original) in got.to_envelope().unwrap().payloads.iter().zip(&originals) {
        assert_eq!(record.transport(), Link);
        assert!(record.bytes().unwrap().as_ref() == original.as_slice(), "{}", record.dataname);
    }
}

#[tokio::test]
async fn objectstore_streams_300_mb_from_a_file_to_a_file() {
    const SIZE: u64 = 300 * 1024 * 1024;
    let server = NatsServer::builder().jetstream().start();
    let store = handler(&server).await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("big.bin");
    let mut sha = Sha256::new();
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&src).unwrap());
        let block = bytes(1 << 20, 7);
        for i in 0..(SIZE >> 20) {
            let mut piece = block.clone();
            piece[..8].copy_from_slice(&i.to_le_bytes());
            sha.update(&piece);
            file.write_all(&piece).unwrap();
        }
        file.flush().unwrap();
    }
    let want = hex(&sha.finalize());

    let (link, got_sha) =
        store.upload_with_sha256("big.bin", UploadSource::File(src.clone())).await.unwrap();
    assert_eq!(got_sha, want);
    let name = link.strip_prefix("nats-os://claims/").unwrap();
    assert_eq!(store.store().info(name).await.unwrap().size, SIZE);

    let dest = work.path().join("copy.bin");
    let request = DownloadRequest::new(&link, SIZE).with_sha256(&want);
    assert_eq!(store.download_to_file(&request, &dest).await.unwrap(), dest);
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), SIZE);
    let mut check = Sha256::new();
    let mut file = std::fs::File::open(&dest).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        check.update(&buf[..n]);
    }
    assert_eq!(hex(&check.finalize()), want);
    let mut left: Vec<_> =
        std::fs::read_dir(work.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    left.sort();
    assert_eq!(left, ["big.bin", "copy.bin"], "no temporary file is left behind");
}

#[tokio::test]
async fn objectstore_one_shot_deletes_after_a_verified_download() {
    let server = NatsServer::builder().jetstream().start();
    let store = handler(&server).await.one_shot(true);
    let data = bytes(300_000, 3);
    let link = store.upload_bytes("once.bin", data.clone()).await.unwrap();
    let request = DownloadRequest::new(&link, data.len() as u64).with_sha256(sha256_hex(&data));
    assert!(store.download_bytes(&request).await.unwrap() == data);
    let err = store.download_bytes(&request).await.unwrap_err();
    assert_eq!(err.kind(), &ClaimCheckKind::NotFound, "{err}");
    let text = chain(&err);
    assert!(text.contains("deleted") || text.contains("no object"), "{text}");

    // A failed check does not consume the object.
    let link = store.upload_bytes("kept.bin", data.clone()).await.unwrap();
    let wrong = DownloadRequest::new(&link, data.len() as u64).with_sha256(sha256_hex(b"other"));
    assert_eq!(store.download_bytes(&wrong).await.unwrap_err().kind(), &ClaimCheckKind::Integrity);
    let right = DownloadRequest::new(&link, data.len() as u64);
    assert!(store.download_bytes(&right).await.unwrap() == data);
}

#[tokio::test]
async fn objectstore_missing_object_and_foreign_bucket_are_clear_errors() {
    let server = NatsServer::builder().jetstream().start();
    let store = handler(&server).await;
    let json = link_envelope("nats-os://claims/no-such-object.bin", 10, None);
    let err = smartunpack(json.as_bytes(), &store).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::NotFound), "{err}");
    let text = chain(&err);
    assert!(text.contains("payloads[0]") && text.contains("no-such-object.bin"), "{text}");

    let json = link_envelope("nats-os://elsewhere/x.bin", 10, None);
    let err = smartunpack(json.as_bytes(), &store).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::UrlRefused), "{err}");
    assert!(chain(&err).contains("elsewhere"), "{}", chain(&err));

    let json = link_envelope("nats-os://claims/../x", 10, None);
    let err = smartunpack(json.as_bytes(), &store).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::UrlRefused), "{err}");
}

#[tokio::test]
async fn objectstore_receiver_without_object_store_rejects_naming_the_scheme() {
    let server = NatsServer::builder().jetstream().start();
    let receiver = natsbridge::connect(&server.url()).await.unwrap();
    let mut sub = receiver.subscribe("os.plain").await.unwrap();
    barrier(&receiver).await;
    let sender = os_bridge(&server).await;
    sender
        .smartsend(
            "os.plain",
            vec![Payload::binary("doc", bytes(600_000, 1))],
            SendOptions::default(),
        )
        .await
        .unwrap();
    let rejected = sub.next().await.unwrap().unwrap_err();
    assert_eq!(rejected.error.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::UrlRefused));
    let text = chain(&rejected.error);
    assert!(text.contains("nats-os://") && text.contains("no object store"), "{text}");

    // The HTTP downloader's own rules are untouched: it still refuses
    // anything but http/https.
    let json = link_envelope("file:///etc/passwd", 10, None);
    let err = receiver.smartreceive(&message(json)).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::UrlRefused), "{err}");
}

#[tokio::test]
async fn objectstore_links_are_sent_only_when_the_sender_opts_in() {
    let server = NatsServer::builder().jetstream().start();
    let files = Store::start().await;
    let doc = bytes(600_000, 2);
    let send = |bridge: Bridge| {
        let doc = doc.clone();
        async move {
            let (_, json) = bridge
                .smartsend(
                    "os.peers",
                    vec![Payload::binary("doc", doc)],
                    SendOptions::new().with_is_publish(false),
                )
                .await
                .unwrap()
                .into_parts()
                .unwrap();
            String::from_utf8(json.to_vec()).unwrap()
        }
    };

    // A file server only: http links.
    let plain = Bridge::builder(&server.url()).fileserver(files.server.url()).connect().await;
    let json = send(plain.unwrap()).await;
    assert!(json.contains(files.server.url()) && !json.contains("nats-os"), "{json}");

    // Reading the object store while sending to the file server: still
    // http links for the other peers, and nats-os links from Rust peers
    // are read.
    let reader = Bridge::builder(&server.url())
        .fileserver(files.server.url())
        .download_handler(Arc::new(files.downloader()))
        .object_store_options(ObjectStoreOptions::new().with_bucket(BUCKET).with_send(false))
        .connect()
        .await
        .unwrap();
    let json = send(reader.clone()).await;
    assert!(json.contains(files.server.url()) && !json.contains("nats-os"), "{json}");
    let from_rust_peer = send(os_bridge(&server).await).await;
    assert!(from_rust_peer.contains("\"nats-os://claims/"), "{from_rust_peer}");
    let got = reader.smartreceive(&message(from_rust_peer)).await.unwrap();
    assert!(got.payloads[0].bytes().unwrap().as_ref() == doc.as_slice());

    // Sending to both is ambiguous, and refused before connecting.
    let err = Bridge::builder(&server.url())
        .fileserver(files.server.url())
        .object_store(BUCKET)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Config, "{err}");
    assert!(chain(&err).contains("not both"), "{}", chain(&err));
}

#[tokio::test]
async fn objectstore_wrong_checksum_size_and_tampered_chunks_are_detected() {
    let server = NatsServer::builder().jetstream().start();
    let store = handler(&server).await;
    let data = bytes(300_000, 4); // three 128 KiB chunks
    let sha = sha256_hex(&data);
    let size = data.len() as u64;

    // The record's checksum does not match what is stored.
    let link = store.upload_bytes("a.bin", data.clone()).await.unwrap();
    let json = link_envelope(&link, size, Some(&sha256_hex(b"something else")));
    let err = smartunpack(json.as_bytes(), &store).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::Integrity), "{err}");
    // The record's size does not match the object's.
    let json = link_envelope(&link, size - 1, Some(&sha));
    let err = smartunpack(json.as_bytes(), &store).await.unwrap_err();
    let want = ClaimCheckKind::SizeMismatch { expected: size - 1, actual: size };
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(want), "{err}");
    // And a file sink gets nothing on failure.
    let work = tempfile::tempdir().unwrap();
    let bad = DownloadRequest::new(&link, size).with_sha256(sha256_hex(b"x"));
    let err = store.download_to_file(&bad, work.path().join("a.bin")).await.unwrap_err();
    assert_eq!(err.kind(), &ClaimCheckKind::Integrity);
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0, "nothing left behind");

    // Tampering with the stored chunks, behind the store's back, with a
    // plain JetStream client.
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let raw = js.get_object_store(BUCKET).await.unwrap();
    let stream = js.get_stream(format!("OBJ_{BUCKET}")).await.unwrap();

    // A chunk appended: longer than recorded.
    let link = store.upload_bytes("longer.bin", data.clone()).await.unwrap();
    let name = link.rsplit('/').next().unwrap();
    let nuid = raw.info(name).await.unwrap().nuid;
    js.publish(format!("$O.{BUCKET}.C.{nuid}"), "extra".into()).await.unwrap().await.unwrap();
    // The record's checksum matches the recorded digest, so only reading
    // finds out: the store's own digest check on the last chunk.
    let request = DownloadRequest::new(&link, size).with_sha256(&sha);
    let err = store.download_bytes(&request).await.unwrap_err();
    assert_eq!(err.kind(), &ClaimCheckKind::Integrity, "{err}");
    // Without a record checksum it is caught all the same.
    let err = store.download_bytes(&DownloadRequest::new(&link, size)).await.unwrap_err();
    assert_eq!(err.kind(), &ClaimCheckKind::Integrity, "{err}");

    // The last chunk removed: truncated.
    let link = store.upload_bytes("shorter.bin", data.clone()).await.unwrap();
    let name = link.rsplit('/').next().unwrap();
    let nuid = raw.info(name).await.unwrap().nuid;
    let last = stream.get_last_raw_message_by_subject(&format!("$O.{BUCKET}.C.{nuid}")).await;
    assert!(stream.delete_message(last.unwrap().sequence).await.unwrap());
    let err = store.download_bytes(&DownloadRequest::new(&link, size)).await.unwrap_err();
    assert_eq!(err.kind(), &ClaimCheckKind::Integrity, "{err}");
}

#[tokio::test]
async fn objectstore_a_short_reader_fails_the_upload_and_leaves_no_object() {
    let server = NatsServer::builder().jetstream().start();
    let store = handler(&server).await;
    let short = std::io::Cursor::new(vec![1u8; 10]);
    let err = store.upload("short.bin", UploadSource::reader(short, 11)).await.unwrap_err();
    assert_eq!(err.kind(), &ClaimCheckKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("10 of its 11"), "{err}");
    let handler: Arc<dyn UploadHandler> = Arc::new(store.clone());
    let link = handler.upload_bytes("ok.bin", vec![1u8; 11]).await.unwrap();
    assert!(link.starts_with("nats-os://claims/") && link.ends_with("-ok.bin"), "{link}");
}

#[tokio::test]
async fn objectstore_links_through_a_jetstream_stream_reach_every_consumer() {
    let server = NatsServer::builder().jetstream().start();
    let bridge = os_bridge(&server).await;
    bridge.connection().jetstream().ensure_stream("DOCS", &["docs.>"]).await.unwrap();
    let doc = bytes(700_000, 5);
    let (sent, _) = bridge
        .jetstream_send(
            "docs.new",
            vec![Payload::binary("doc", doc.clone())],
            SendOptions::default(),
        )
        .await
        .unwrap();
    let sent = sent.envelope().unwrap();
    assert!(sent.payloads[0].url().unwrap().starts_with("nats-os://claims/"));
    // Objects are kept by default, so two durable consumers both read it.
    for durable in ["first", "second"] {
        let consumer = bridge.jetstream_consumer("DOCS", durable).await.unwrap();
        let batch = consumer.fetch(1, Duration::from_secs(5)).await.unwrap();
        let received = batch.into_iter().next().unwrap().unwrap();
        assert!(
            received.to_envelope().unwrap().payloads[0].bytes().unwrap().as_ref() == doc.as_slice()
        );
    }
}
