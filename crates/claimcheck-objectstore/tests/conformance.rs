//! The claim-check role's exported conformance suite against the JetStream
//! object store, on a real nats-server with JetStream: kept objects, and
//! one-shot objects deleted once downloaded.
//!
//! The fault cases run through [`faults::NatsFaults`], a NATS-aware proxy
//! in front of the server: the transient fault cuts the client's
//! connection in the middle of a put (the chunk in flight and its ack are
//! lost) or as a get starts (its request goes unanswered), the client
//! reconnects and the handler's retry succeeds; the permanent fault removes
//! the bucket, which must fail at once as not found.

mod cluster;
mod faults;

use std::sync::Arc;
use std::time::Duration;

use natsbridge_claimcheck::RetryConfig;
use natsbridge_claimcheck::conformance::{self, Store};
use natsbridge_claimcheck_objectstore::{ObjectStoreHandler, ObjectStoreOptions};
use natsbridge_test_support::NatsServer;

use crate::faults::NatsFaults;

fn options(bucket: &str, one_shot: bool, max_download_size: u64) -> ObjectStoreOptions {
    ObjectStoreOptions::new()
        .with_bucket(bucket)
        .with_one_shot(one_shot)
        .with_max_download_size(max_download_size)
        .with_retry(RetryConfig::new().with_base_delay(Duration::from_millis(1)))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_retried_or_refused() {
    let server = NatsServer::builder().jetstream().start();
    let options = options("faults", false, 1 << 30);
    let admin = natsbridge_transport_nats::connect(server.url()).await.unwrap();
    // Created on the direct connection, so that the proxied one only looks
    // it up within its short request timeout.
    ObjectStoreHandler::open(&admin.jetstream(), &options).await.unwrap();
    let upstream = ([127, 0, 0, 1], server.port()).into();
    let faults = NatsFaults::start(upstream, admin.clone(), options.clone()).await;
    // A lost get request is seen once this timeout passes (a lost put
    // chunk once its ack's 5 s do); short, with room for a loaded machine.
    let conn = natsbridge_transport_nats::ConnectOptions::new(faults.url())
        .request_timeout(Duration::from_secs(3))
        .connect()
        .await
        .unwrap();
    let handler = Arc::new(ObjectStoreHandler::open(&conn.jetstream(), &options).await.unwrap());
    let store = Store {
        uploader: handler.clone(),
        downloader: handler,
        one_shot: false,
        missing_link: "nats-os://faults/00000000000000000000000000000000-missing.bin".into(),
    };
    conformance::transient_faults(&store, &faults).await;
    conformance::permanent_faults(&store, &faults).await;
}
