//! The object store on a 3-node JetStream cluster: an R3 bucket, and a
//! 64 MB object (not 256 MB, to keep CI time down) put and then read while
//! the node the client is on is killed. Each transfer completes (retried)
//! or fails with a retriable error; it never hangs.

use std::time::Duration;

use natsbridge_claimcheck::{
    DownloadHandlerExt, DownloadRequest, RetryConfig, UploadHandlerExt, sha256_hex,
};
use natsbridge_claimcheck_objectstore::{ObjectStoreHandler, ObjectStoreOptions};
use natsbridge_test_support::NatsCluster;
use natsbridge_transport_nats::{ConnectOptions, Connection, ReconnectPolicy};

const SIZE: usize = 64 << 20;
const STREAM: &str = "OBJ_big";

/// How long a transfer may take before the test calls it hung (a bound
/// against hanging, not a speed check).
const HUNG: Duration = Duration::from_secs(240);

async fn connect(cluster: &NatsCluster) -> Connection {
    let urls = cluster.urls();
    let policy = ReconnectPolicy::new().with_base_delay(Duration::from_millis(20));
    ConnectOptions::new(urls[0].clone())
        .server(urls[1].clone())
        .server(urls[2].clone())
        .reconnect(policy)
        .connect()
        .await
        .unwrap()
}

/// Waits until `f` holds for the object store's stream as some node
/// reports it (or the transfer ended first: then there is nothing to kill
/// in the middle of, which the caller checks).
async fn wait_stream(
    cluster: &NatsCluster,
    done: &tokio::task::JoinHandle<impl Sized>,
    f: impl Fn(&serde_json::Value) -> bool,
) {
    loop {
        let seen = tokio::task::block_in_place(|| {
            (0..cluster.nodes.len())
                .any(|i| cluster.stream_detail(i, STREAM).is_some_and(|d| f(&d)))
        });
        if seen || done.is_finished() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mb_object_put_and_read_while_a_node_is_killed() {
    let mut cluster = tokio::task::block_in_place(|| NatsCluster::start_jetstream(3));
    let conn = connect(&cluster).await;
    let options = ObjectStoreOptions::new()
        .with_bucket("big")
        .with_replicas(3)
        .with_retry(RetryConfig::new().with_base_delay(Duration::from_millis(50)))
        .with_read_idle_timeout(Duration::from_secs(10))
        .with_download_deadline(Duration::from_secs(180));
    let handler = ObjectStoreHandler::open(&conn.jetstream(), &options).await.unwrap();
    tokio::task::block_in_place(|| cluster.wait_stream_ready(STREAM));
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> =
        (0..SIZE as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let sha = sha256_hex(&bytes);
    let source = dir.path().join("big.bin");
    std::fs::write(&source, &bytes).unwrap();
    drop(bytes);

    // The put: kill the client's node once a quarter of it is stored.
    let on = cluster.node_on_port(conn.server_port()).unwrap();
    let put = tokio::spawn({
        let (handler, source) = (handler.clone(), source.clone());
        async move { tokio::time::timeout(HUNG, handler.upload_file("big.bin", source)).await }
    });
    wait_stream(&cluster, &put, |d| d["state"]["bytes"].as_u64() >= Some(SIZE as u64 / 4)).await;
    assert!(!put.is_finished(), "the put ended before the kill");
    tokio::task::block_in_place(|| cluster.nodes[on].kill());
    let link = match put.await.unwrap().expect("the put hung") {
        Ok(link) => {
            eprintln!("put: completed through the kill");
            link
        }
        Err(e) => {
            eprintln!("put: failed, retriable: {e}");
            assert!(e.is_retryable(), "a put cut by a node's death: {e}");
            // Retriable indeed: it goes through once the cluster is whole.
            tokio::task::block_in_place(|| {
                cluster.nodes[on].restart();
                cluster.wait_ready();
            });
            handler.upload_file("big.bin", &source).await.unwrap()
        }
    };
    if !cluster.nodes[on].is_running() {
        tokio::task::block_in_place(|| {
            cluster.nodes[on].restart();
            cluster.wait_ready();
            cluster.wait_stream_ready(STREAM);
        });
    }

    // The read: kill the client's node once a quarter of the chunks went
    // out to its reader (the ordered consumer the get runs on).
    let on = cluster.node_on_port(conn.server_port()).unwrap();
    let request = DownloadRequest::new(&link, SIZE as u64).with_sha256(&sha);
    let target = dir.path().join("copy.bin");
    let get = tokio::spawn({
        let (handler, request, target) = (handler.clone(), request.clone(), target.clone());
        async move { tokio::time::timeout(HUNG, handler.download_to_file(&request, target)).await }
    });
    let chunks = (SIZE / (128 << 10)) as u64;
    wait_stream(&cluster, &get, |d| {
        d["consumer_detail"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| c["delivered"]["consumer_seq"].as_u64() >= Some(chunks / 4))
        })
    })
    .await;
    assert!(!get.is_finished(), "the get ended before the kill");
    tokio::task::block_in_place(|| cluster.nodes[on].kill());
    match get.await.unwrap().expect("the get hung") {
        Ok(_) => {
            eprintln!("get: completed through the kill");
            // The sink checked size and SHA-256; the bytes are the file's.
            assert_eq!(sha256_hex(&std::fs::read(&target).unwrap()), sha);
        }
        Err(e) => {
            eprintln!("get: failed, retriable: {e}");
            assert!(e.is_retryable(), "a get cut by a node's death: {e}");
        }
    }
}
