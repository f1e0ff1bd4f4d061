//! The claim-check role's exported conformance suite against the JetStream
//! object store, on a real nats-server with JetStream: kept objects, and
//! one-shot objects deleted once downloaded.
//!
//! The fault cases of the suite inject HTTP failures through a proxy; they
//! do not apply to the NATS protocol, so they are not run here.

use std::sync::Arc;
use std::time::Duration;

use natsbridge_claimcheck::RetryConfig;
use natsbridge_claimcheck::conformance::{self, Store};
use natsbridge_claimcheck_objectstore::{ObjectStoreHandler, ObjectStoreOptions};
use natsbridge_test_support::NatsServer;

fn options(bucket: &str, one_shot: bool, max_download_size: u64) -> ObjectStoreOptions {
    ObjectStoreOptions {
        bucket: bucket.into(),
        one_shot,
        max_download_size,
        retry: RetryConfig { base_delay: Duration::from_millis(1), ..RetryConfig::default() },
        ..ObjectStoreOptions::default()
    }
}

async fn store(server: &NatsServer, one_shot: bool) -> (Store, ObjectStoreHandler) {
    let conn = natsbridge_transport_nats::connect(server.url()).await.unwrap();
    let handler =
        ObjectStoreHandler::open(&conn.jetstream(), &options("payloads", one_shot, 1 << 30))
            .await
            .unwrap();
    let capped =
        ObjectStoreHandler::open(&conn.jetstream(), &options("payloads", one_shot, 100_000))
            .await
            .unwrap();
    let handler = Arc::new(handler);
    let store = Store {
        uploader: handler.clone(),
        downloader: handler,
        one_shot,
        missing_link: "nats-os://payloads/00000000000000000000000000000000-missing.bin".into(),
    };
    (store, capped)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_objects_pass_the_suite() {
    let server = NatsServer::builder().jetstream().start();
    let (store, capped) = store(&server, false).await;
    conformance::round_trips(&store).await;
    conformance::one_shot(&store).await;
    conformance::missing_object(&store).await;
    conformance::tampered(&store).await;
    conformance::oversize(&store, &capped, 100_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_objects_pass_the_suite() {
    let server = NatsServer::builder().jetstream().start();
    let (store, _) = store(&server, true).await;
    conformance::one_shot(&store).await;
    conformance::missing_object(&store).await;
}
