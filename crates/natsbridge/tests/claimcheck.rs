//! pack / smartunpack with a real file server: what goes by link, what
//! comes back, and what is refused.

use natsbridge::claimcheck::{ErrorKind as ClaimCheckKind, UploadHandler, UploadHandlerExt};
use natsbridge::envelope::{DEFAULT_MAX_PAYLOAD, ErrorKind as EnvelopeKind};
use natsbridge::{
    Body, ErrorKind, FilePayload, Payload, PayloadType, PayloadValue, SHA256_KEY, SendOptions,
    Transport, pack, pack_files, sha256_hex, smartunpack,
};

use crate::util::{Store, bytes};

#[tokio::test]
async fn the_seeds_mixed_chat_message_round_trips() {
    let store = Store::start().await;
    let avatar = bytes(15_433, 1);
    let document = bytes(2_000_000, 2);
    let payloads = vec![
        Payload::text("message_text", "Hello!"),
        Payload::image("user_avatar", avatar.clone()),
        Payload::binary("large_document", document.clone()),
    ];
    let uploader = store.uploader();
    let (sent, json) = pack(
        "/chat/room1",
        payloads,
        SendOptions::default(),
        Some(&uploader as &dyn UploadHandler),
        DEFAULT_MAX_PAYLOAD,
    )
    .await
    .unwrap();
    let transports: Vec<_> = sent.payloads.iter().map(|p| p.transport()).collect();
    assert_eq!(transports, [Transport::Direct, Transport::Direct, Transport::Link]);
    let link = &sent.payloads[2];
    assert!(link.url().unwrap().starts_with(store.server.url()), "{:?}", link.url());
    assert_eq!(link.extra[SHA256_KEY], sha256_hex(&document));
    assert!(json.len() < 30_000, "the document did not travel inside: {}", json.len());

    let received = smartunpack(&json, &store.downloader()).await.unwrap();
    assert_eq!(received.payloads[0].value().unwrap(), PayloadValue::Text("Hello!".into()));
    assert_eq!(received.payloads[1].bytes().unwrap().as_ref(), avatar.as_slice());
    assert!(matches!(received.payloads[2].body, Body::Fetched { .. }));
    assert_eq!(received.payloads[2].bytes().unwrap().as_ref(), document.as_slice());
    assert_eq!(received.payloads[2].transport(), Transport::Link);
}

#[tokio::test]
async fn payloads_under_the_threshold_that_overflow_max_payload_move_to_link() {
    let store = Store::start().await;
    let uploader = store.uploader();
    let (a, b) = (bytes(450_000, 3), bytes(400_000, 4));
    let (sent, json) = pack(
        "t",
        vec![Payload::binary("a", a.clone()), Payload::binary("b", b.clone())],
        SendOptions::default(),
        Some(&uploader as &dyn UploadHandler),
        DEFAULT_MAX_PAYLOAD,
    )
    .await
    .unwrap();
    assert!(json.len() <= DEFAULT_MAX_PAYLOAD);
    assert_eq!(sent.payloads[0].transport(), Transport::Link, "the largest moved");
    assert_eq!(sent.payloads[1].transport(), Transport::Direct);
    let received = smartunpack(&json, &store.downloader()).await.unwrap();
    assert_eq!(received.payloads[0].bytes().unwrap().as_ref(), a.as_slice());
    assert_eq!(received.payloads[1].bytes().unwrap().as_ref(), b.as_slice());
}

#[tokio::test]
async fn without_a_file_server_an_oversize_envelope_fails_before_publishing() {
    let err = pack(
        "t",
        vec![Payload::binary("huge", bytes(900_000, 5))],
        SendOptions::default(),
        None,
        DEFAULT_MAX_PAYLOAD,
    )
    .await
    .unwrap_err();
    match err.kind() {
        ErrorKind::Envelope(EnvelopeKind::PayloadTooLarge { dataname, limit, .. }) => {
            assert_eq!(dataname, "huge");
            assert_eq!(*limit, DEFAULT_MAX_PAYLOAD);
        }
        other => panic!("wrong kind {other:?}: {err}"),
    }
    assert!(err.to_string().contains("huge"), "{err}");
}

#[tokio::test]
async fn a_tampered_link_payload_is_an_integrity_error() {
    let store = Store::start().await;
    let uploader = store.uploader();
    let (mut sent, _) = pack(
        "t",
        vec![Payload::binary("doc", bytes(600_000, 6))],
        SendOptions::default(),
        Some(&uploader as &dyn UploadHandler),
        DEFAULT_MAX_PAYLOAD,
    )
    .await
    .unwrap();
    // A checksum that does not match what the server holds.
    sent.payloads[0].extra.insert(SHA256_KEY.into(), sha256_hex(b"something else").into());
    let err = smartunpack(&sent.to_json().unwrap(), &store.downloader()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::Integrity), "{err}");
    assert!(err.to_string().contains("payloads[0]"), "{err}");
}

#[tokio::test]
async fn a_link_to_a_host_outside_the_allowlist_is_refused() {
    let store = Store::start().await;
    let json = serde_json_envelope("http://127.0.0.2:1/file/a/b/c", 10);
    let err = smartunpack(json.as_bytes(), &store.downloader()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::UrlRefused), "{err}");
    let json = serde_json_envelope("file:///etc/passwd", 10);
    let err = smartunpack(json.as_bytes(), &store.downloader()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ClaimCheck(ClaimCheckKind::UrlRefused), "{err}");
}

#[tokio::test]
async fn a_link_without_size_takes_the_downloaded_length_up_to_the_cap() {
    // The seeds never define `size`: a seed-written peer may leave it out.
    let store = Store::start().await;
    let data = bytes(700_000, 9);
    let uploader = store.uploader();
    let (_, json) = pack(
        "t",
        vec![Payload::binary("doc", data.clone())],
        SendOptions::default(),
        Some(&uploader as &dyn UploadHandler),
        DEFAULT_MAX_PAYLOAD,
    )
    .await
    .unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let record = v["payloads"][0].as_object_mut().unwrap();
    assert_eq!(record["transport"], "link");
    record.remove("size");
    let url = record["data"].as_str().unwrap().to_string();
    let received = smartunpack(v.to_string().as_bytes(), &store.downloader()).await.unwrap();
    assert_eq!(received.payloads[0].bytes().unwrap().as_ref(), data.as_slice());
    assert_eq!(received.payloads[0].size(), Some(data.len() as u64));
    // Written back out, the record now carries the length it was checked at.
    let again: serde_json::Value = serde_json::from_slice(&received.to_json().unwrap()).unwrap();
    assert_eq!(again["payloads"][0]["size"], data.len());

    // Still bounded: a downloader that takes at most 100 kB refuses it
    // (the one-shot link was consumed above: upload it again).
    let link = uploader.upload_bytes("doc.bin", data.clone()).await.unwrap();
    let capped = natsbridge::claimcheck::http::HttpDownloader::builder()
        .allow_origin(store.server.url())
        .max_download_size(100_000)
        .build()
        .unwrap();
    let json = serde_json_envelope(&link, 0).replace(",\"size\":0", "");
    let err = smartunpack(json.as_bytes(), &capped).await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::ClaimCheck(ClaimCheckKind::TooLarge { limit: 100_000 }),
        "{err}"
    );
    assert!(url.starts_with(store.server.url()));
}

#[tokio::test]
async fn a_direct_record_with_a_wrong_size_is_still_refused() {
    // "aGVsbG8=" is `hello`, five bytes.
    let json = r#"{"payloads":[{"dataname":"d","payload_type":"binary","transport":"direct","size":4,"data":"aGVsbG8="}]}"#;
    let store = Store::start().await;
    let err = smartunpack(json.as_bytes(), &store.downloader()).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::Envelope(EnvelopeKind::SizeMismatch { declared: 4, actual: 5, .. })
        ),
        "{err}"
    );
}

fn serde_json_envelope(url: &str, size: u64) -> String {
    format!(
        r#"{{"msg_id":"m","payloads":[{{"id":"p","dataname":"d","payload_type":"binary","transport":"link","encoding":"none","size":{size},"data":"{url}"}}]}}"#
    )
}

#[tokio::test]
async fn file_payloads_stream_by_link_and_keep_their_order() {
    let store = Store::start().await;
    let dir = tempfile::tempdir().unwrap();
    let big = bytes(3_000_000, 5);
    let small = bytes(2_000, 6);
    std::fs::write(dir.path().join("big.bin"), &big).unwrap();
    std::fs::write(dir.path().join("small.bin"), &small).unwrap();
    let items = vec![
        FilePayload::new("big", PayloadType::Binary, dir.path().join("big.bin")).into(),
        Payload::text("note", "two files").into(),
        FilePayload::new("small", PayloadType::Image, dir.path().join("small.bin")).into(),
    ];
    let options = SendOptions::new().with_size_threshold(1_000_000);
    let uploader = store.uploader();
    let uploader = Some(&uploader as &dyn UploadHandler);
    let (sent, json) =
        pack_files("files", items, options, uploader, DEFAULT_MAX_PAYLOAD).await.unwrap();
    let transports: Vec<_> = sent.payloads.iter().map(|p| p.transport()).collect();
    assert_eq!(transports, [Transport::Link, Transport::Direct, Transport::Direct]);
    let names: Vec<_> = sent.payloads.iter().map(|p| p.dataname.as_str()).collect();
    assert_eq!(names, ["big", "note", "small"]);
    assert_eq!(sent.payloads[0].size(), Some(3_000_000));
    assert_eq!(sent.payloads[0].extra[SHA256_KEY], sha256_hex(&big));
    assert_eq!(sent.payloads[2].payload_type, PayloadType::Image);

    let received = smartunpack(&json, &store.downloader()).await.unwrap();
    assert_eq!(received.payloads[0].bytes().unwrap().as_ref(), big.as_slice());
    assert_eq!(received.payloads[1].value().unwrap(), PayloadValue::Text("two files".into()));
    assert_eq!(received.payloads[2].bytes().unwrap().as_ref(), small.as_slice());
}

#[tokio::test]
async fn file_payloads_without_a_file_server_go_direct_or_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let small = bytes(10_000, 7);
    std::fs::write(dir.path().join("small.bin"), &small).unwrap();
    let item =
        |name: &str| vec![FilePayload::new("f", PayloadType::Binary, dir.path().join(name)).into()];
    let (sent, json) =
        pack_files("files", item("small.bin"), SendOptions::default(), None, 1 << 20)
            .await
            .unwrap();
    assert_eq!(sent.payloads[0].transport(), Transport::Direct);
    let back = natsbridge::Envelope::from_json(&json).unwrap();
    assert_eq!(back.payloads[0].bytes().unwrap().as_ref(), small.as_slice());

    // Too large to go direct, and no file server: refused, naming it.
    let err = pack_files("files", item("small.bin"), SendOptions::default(), None, 4096)
        .await
        .unwrap_err();
    match err.kind() {
        ErrorKind::Envelope(EnvelopeKind::PayloadTooLarge { dataname, .. }) => {
            assert_eq!(dataname, "f");
        }
        other => panic!("wrong kind {other:?}: {err}"),
    }

    // A file that is not there: an I/O error naming the payload and path.
    let err = pack_files("files", item("missing.bin"), SendOptions::default(), None, 1 << 20)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Io, "{err}");
    let text = err.to_string();
    assert!(text.contains("\"f\"") && text.contains("missing.bin"), "{text}");
}
