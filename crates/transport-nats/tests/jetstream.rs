//! JetStream: publish with ack, durable pull consumers, and a server
//! restart in the middle of a stream.

use std::collections::BTreeSet;
use std::time::Duration;

use natsbridge_test_support::NatsServer;
use natsbridge_transport_nats::{ConnectOptions, Event, ReconnectPolicy, connect};

#[tokio::test]
async fn publish_ack_and_nak_redelivers() {
    let server = NatsServer::builder().jetstream().start();
    let conn = connect(server.url()).await.unwrap();
    let js = conn.jetstream();
    js.ensure_stream("ORDERS", &["orders.>"]).await.unwrap();
    let ack = js.publish("orders.new", "first".into(), Some("id-1")).await.unwrap();
    assert_eq!((ack.stream.as_str(), ack.sequence, ack.duplicate), ("ORDERS", 1, false));
    let again = js.publish("orders.new", "first".into(), Some("id-1")).await.unwrap();
    assert!(again.duplicate, "same msg id is stored once");

    let consumer = js.pull_consumer("ORDERS", "worker").await.unwrap();
    let batch = consumer.fetch(10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].payload().as_ref(), b"first");
    assert_eq!(batch[0].delivered(), 1);
    batch[0].nak(Duration::from_millis(10)).await.unwrap();
    let redelivered = consumer.fetch(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(redelivered.len(), 1);
    assert_eq!(redelivered[0].delivered(), 2);
    redelivered[0].ack().await.unwrap();
    conn.flush().await.unwrap();
    let none = consumer.fetch(10, Duration::from_millis(300)).await.unwrap();
    assert!(none.is_empty(), "acked messages are not redelivered");
}

#[tokio::test]
async fn a_server_restart_mid_stream_loses_and_duplicates_nothing() {
    const N: usize = 10_000;
    let mut server = NatsServer::builder().jetstream().start();
    let policy = ReconnectPolicy::new().with_base_delay(Duration::from_millis(20));
    let conn = ConnectOptions::new(server.url()).reconnect(policy).connect().await.unwrap();
    let js = conn.jetstream();
    js.ensure_stream("EVENTS", &["events"]).await.unwrap();
    let mut events = conn.events();
    let mut retries = 0usize;
    for i in 0..N {
        if i == N / 2 {
            server.restart();
        }
        let id = format!("msg-{i}");
        // The publish retries itself with the same msg id (PublishRetry);
        // a caller's own retry after its error is stored once as well.
        loop {
            match js.publish("events", id.clone().into(), Some(&id)).await {
                Ok(_) => break,
                Err(_) => {
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
    let noticed = std::iter::from_fn(|| events.try_recv().ok()).any(|e| e == Event::Disconnected);
    assert!(noticed, "the restart was not noticed (caller retries: {retries})");
    let consumer = js.pull_consumer("EVENTS", "audit").await.unwrap();
    let mut seen = BTreeSet::new();
    let mut total = 0;
    loop {
        let batch = consumer.fetch(1000, Duration::from_millis(500)).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for m in batch {
            total += 1;
            seen.insert(String::from_utf8(m.payload().to_vec()).unwrap());
            m.ack().await.unwrap();
        }
    }
    assert_eq!(seen.len(), N, "none lost");
    assert_eq!(total, N, "none duplicated");
}

#[tokio::test]
async fn messages_streams_as_they_arrive_and_acked_ones_stay_acked() {
    use futures_util::StreamExt;

    let server = NatsServer::builder().jetstream().start();
    let conn = connect(server.url()).await.unwrap();
    let js = conn.jetstream();
    js.ensure_stream("TASKS", &["tasks.>"]).await.unwrap();
    js.publish("tasks.a", "before".into(), None).await.unwrap();
    let consumer = js.pull_consumer("TASKS", "runner").await.unwrap();
    let mut messages = consumer.messages(2).await.unwrap();
    let first = messages.next().await.unwrap().unwrap();
    assert_eq!((first.subject(), first.payload().as_ref()), ("tasks.a", &b"before"[..]));
    first.ack().await.unwrap();
    // Published after the stream started: it arrives without another call.
    for i in 0..5 {
        js.publish("tasks.b", format!("after-{i}").into(), None).await.unwrap();
    }
    for i in 0..5 {
        let m = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(m.payload().as_ref(), format!("after-{i}").as_bytes());
        m.ack().await.unwrap();
    }
    drop(messages);
    conn.flush().await.unwrap();
    let none = consumer.fetch(10, Duration::from_millis(300)).await.unwrap();
    assert!(none.is_empty(), "acked messages are not redelivered");
}

/// async-nats's typed kinds come through as ours (never read from a
/// message's text): no stream for the subject, an ack that never comes,
/// a missing stream or consumer, a bad stream name.
#[tokio::test]
async fn jetstream_failures_have_typed_kinds() {
    use natsbridge_transport_nats::{ErrorKind, PublishRetry};
    let server = NatsServer::builder().jetstream().start();
    let conn = connect(server.url()).await.unwrap();
    let retry = PublishRetry { ack_timeout: Duration::from_millis(300), ..Default::default() };
    let js = conn.jetstream().with_publish_retry(retry);

    // Nobody at all on the subject: the server says no stream captures it.
    let err = js.publish("nowhere.x", "m".into(), None).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound, "{err}");
    assert!(!err.is_retryable());

    // A plain subscriber and no stream: the publish is delivered, no ack
    // ever comes.
    let _silent = conn.subscribe("silent.x").await.unwrap();
    conn.flush().await.unwrap();
    let err = js.publish("silent.x", "m".into(), None).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::TimedOut, "{err}");
    assert!(err.is_retryable());

    let err = js.pull_consumer("NO_SUCH_STREAM", "worker").await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound, "{err}");

    let err = js.ensure_stream("bad.name", &["bad.>"]).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidConfig, "{err}");
}
