//! JetStream object stores: put, streamed get, info, delete, and the
//! errors a caller acts on.

use natsbridge_test_support::NatsServer;
use natsbridge_transport_nats::{ErrorKind, ObjectStoreConfig, connect};
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn objects_round_trip_and_deleted_ones_are_not_found() {
    let server = NatsServer::builder().jetstream().start();
    let conn = connect(server.url()).await.unwrap();
    let js = conn.jetstream();
    let store = js.object_store("blobs").await.unwrap();
    assert_eq!(store.bucket(), "blobs");
    // Opening an existing bucket with other settings opens it as it is.
    let config = ObjectStoreConfig { max_bytes: Some(1 << 20), ..ObjectStoreConfig::new("blobs") };
    js.object_store_with(config).await.unwrap();

    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    let info = store.put("a/b c.bin", &mut data.as_slice()).await.unwrap();
    assert_eq!((info.size, info.chunks), (1_000_000, 8));
    let digest: [u8; 32] = info.sha256.expect("the store records a SHA-256");
    assert_eq!(store.info("a/b c.bin").await.unwrap(), info);

    let mut reader = store.get("a/b c.bin").await.unwrap();
    assert_eq!(reader.info().sha256, Some(digest));
    let mut back = Vec::new();
    reader.read_to_end(&mut back).await.unwrap();
    assert!(back == data);

    let empty = store.put_bytes("empty", bytes::Bytes::new()).await.unwrap();
    assert_eq!((empty.size, empty.chunks), (0, 0));
    let mut back = Vec::new();
    store.get("empty").await.unwrap().read_to_end(&mut back).await.unwrap();
    assert!(back.is_empty());

    store.delete("a/b c.bin").await.unwrap();
    assert_eq!(store.get("a/b c.bin").await.unwrap_err().kind(), &ErrorKind::NotFound);
    let err = store.info("a/b c.bin").await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    assert!(err.to_string().contains("deleted"), "{err}");
    let err = store.get("never-was").await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    assert!(err.to_string().contains("never-was") && err.to_string().contains("blobs"), "{err}");
}

#[tokio::test]
async fn a_bad_bucket_name_is_invalid_config() {
    let server = NatsServer::builder().jetstream().start();
    let conn = connect(server.url()).await.unwrap();
    for bad in ["", "a.b", "a b", "a*"] {
        let err = conn.jetstream().object_store(bad).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidConfig, "{bad:?}: {err}");
    }
}

/// A bucket removed behind the store's back: async-nats folds a failed
/// chunk publish into text and a get on a missing stream into "other", so
/// the store asks the server, typed, and both are `NotFound`.
#[tokio::test]
async fn a_removed_bucket_is_not_found() {
    let server = NatsServer::builder().jetstream().start();
    let conn = connect(server.url()).await.unwrap();
    let store = conn.jetstream().object_store("gone").await.unwrap();
    store.put_bytes("x", bytes::Bytes::from_static(b"hello")).await.unwrap();
    assert!(store.bucket_exists().await.unwrap());

    let raw = async_nats::connect(server.url()).await.unwrap();
    async_nats::jetstream::new(raw).delete_object_store("gone").await.unwrap();

    assert!(!store.bucket_exists().await.unwrap());
    let err = store.get("x").await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound, "{err}");
    let err = store.put_bytes("y", bytes::Bytes::from_static(b"again")).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound, "{err}");
    assert!(!err.is_retryable());
}
