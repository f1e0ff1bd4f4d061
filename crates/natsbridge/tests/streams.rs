//! Subscriptions and JetStream consumers as `Stream`s, their cancel
//! safety (a `next()` dropped mid-download loses nothing and does not
//! restart the download), and `Bridge::flush`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use natsbridge::claimcheck::{
    DownloadRequest, DownloadSink, Downloaded, Error as ClaimCheckError, RetryConfig, download_fn,
};
use natsbridge::envelope::bytes::Bytes;
use natsbridge::transport::ErrorKind as NatsKind;
use natsbridge::{
    Bridge, EnvelopeConsumer, Payload, PayloadValue, Received, Rejected, SendOptions, Subscription,
};
use natsbridge_test_support::NatsServer;
use serde_json::json;

/// Waits until the server has registered `bridge`'s subscriptions.
async fn barrier(bridge: &Bridge) {
    let err = bridge.connection().request("barrier.none", "".into(), Duration::from_secs(5)).await;
    assert_eq!(err.unwrap_err().kind(), &NatsKind::NoResponders);
}

/// An envelope with one link payload of `size` bytes at a URL nobody
/// serves (the receivers below download through a stand-in handler).
fn link_envelope(size: u64) -> Bytes {
    json!({
        "correlation_id": "c", "msg_id": "m-link", "timestamp": "2024-01-15T10:30:00Z",
        "send_to": "s", "msg_purpose": "chat", "sender_name": "n", "sender_id": "i",
        "metadata": {},
        "payloads": [{"id": "l", "dataname": "document", "payload_type": "binary",
                      "transport": "link", "encoding": "none", "size": size,
                      "data": "http://127.0.0.1:9/document.bin"}]
    })
    .to_string()
    .into()
}

/// A bridge whose downloads return `size` bytes of 7 once the gate is open
/// (`gate.send(true)`), and not before; the counter counts the downloads
/// started. The tests wait on these states, never on a download's length.
async fn gated_bridge(
    server: &NatsServer,
    open: bool,
) -> (Bridge, Arc<AtomicUsize>, tokio::sync::watch::Sender<bool>) {
    let started = Arc::new(AtomicUsize::new(0));
    let counter = started.clone();
    let (gate, opened) = tokio::sync::watch::channel(open);
    let handler = download_fn(move |request: DownloadRequest, _sink: DownloadSink| {
        counter.fetch_add(1, Ordering::SeqCst);
        let mut opened = opened.clone();
        async move {
            opened.wait_for(|open| *open).await.expect("the gate outlives the test");
            let bytes = vec![7u8; request.size.unwrap_or(0) as usize];
            Ok::<_, ClaimCheckError>(Downloaded::Bytes(bytes.into()))
        }
    });
    let bridge =
        Bridge::builder(&server.url()).download_handler(Arc::new(handler)).connect().await.unwrap();
    (bridge, started, gate)
}

/// Calls `next()` and drops it unfinished, again and again, until a
/// download has started (at most 10 s); then once more. Each call must still
/// be pending when dropped: the download waits on a closed gate.
async fn cancel_until_started<S>(stream: &mut S, started: &AtomicUsize)
where
    S: futures_util::Stream + Unpin,
    S::Item: std::fmt::Debug,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let was_started = started.load(Ordering::SeqCst) > 0;
        let cancelled = tokio::time::timeout(Duration::from_millis(50), stream.next()).await;
        assert!(cancelled.is_err(), "next() finished with the gate closed: {cancelled:?}");
        if was_started {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no download started within 10 s");
    }
}

fn text(received: &Received) -> String {
    match received.to_envelope().unwrap().payloads[0].value().unwrap() {
        PayloadValue::Text(t) => t,
        other => panic!("not text: {other:?}"),
    }
}

#[test]
fn receivers_are_send_and_sync() {
    fn send_sync<T: Send + Sync + Unpin>() {}
    send_sync::<Subscription>();
    send_sync::<natsbridge::LazySubscription>();
    send_sync::<natsbridge::Incoming>();
    send_sync::<EnvelopeConsumer>();
    send_sync::<Rejected>();
}

#[tokio::test]
async fn a_subscription_is_a_stream_of_envelopes_and_flush_sends() {
    let server = NatsServer::start();
    let bridge = natsbridge::connect(&server.url()).await.unwrap();
    let mut sub = bridge.subscribe("chat.stream").await.unwrap();
    barrier(&bridge).await;
    let sender = natsbridge::connect(&server.url()).await.unwrap();
    for i in 0..2 {
        let payloads = vec![Payload::text("t", format!("m{i}"))];
        sender.smartsend("chat.stream", payloads, SendOptions::default()).await.unwrap();
    }
    sender.connection().publish("chat.stream", "{broken".into()).await.unwrap();
    sender
        .smartsend("chat.stream", vec![Payload::text("t", "m2")], SendOptions::default())
        .await
        .unwrap();
    sender.flush().await.unwrap();

    // A Stream adapter over `&mut Subscription`; the subscription goes on
    // after it.
    let items: Vec<_> = (&mut sub).take(3).collect().await;
    assert_eq!(text(items[0].as_ref().unwrap()), "m0");
    assert_eq!(text(items[1].as_ref().unwrap()), "m1");
    let rejected = items[2].as_ref().unwrap_err();
    assert_eq!(
        (rejected.subject.as_str(), rejected.payload.as_ref()),
        ("chat.stream", &b"{broken"[..])
    );
    assert_eq!(text(&sub.next().await.unwrap().unwrap()), "m2");
}

#[tokio::test]
async fn a_dropped_next_keeps_the_message_and_its_download_goes_on() {
    let server = NatsServer::start();
    let (receiver, started, gate) = gated_bridge(&server, false).await;
    let mut sub = receiver.subscribe("docs").await.unwrap();
    barrier(&receiver).await;
    let sender = natsbridge::connect(&server.url()).await.unwrap();
    sender.connection().publish("docs", link_envelope(1000)).await.unwrap();
    sender
        .smartsend("docs", vec![Payload::text("t", "after")], SendOptions::default())
        .await
        .unwrap();
    sender.flush().await.unwrap();

    // Cancelled while the link is downloading, more than once.
    cancel_until_started(&mut sub, &started).await;
    assert_eq!(started.load(Ordering::SeqCst), 1);

    // The next call yields that message first, its download continued
    // rather than started again (a restart would count a second start).
    gate.send(true).unwrap();
    let first = sub.next().await.unwrap().unwrap();
    assert_eq!(first.to_envelope().unwrap().msg_id, "m-link");
    assert_eq!(
        first.to_envelope().unwrap().payloads[0].bytes().unwrap().as_ref(),
        &[7u8; 1000][..]
    );
    assert_eq!(started.load(Ordering::SeqCst), 1, "the download was not restarted");
    assert_eq!(text(&sub.next().await.unwrap().unwrap()), "after");
}

#[tokio::test]
async fn an_envelope_consumer_is_a_stream_that_acks_and_naks() {
    let server = NatsServer::builder().jetstream().start();
    let bridge = natsbridge::connect(&server.url()).await.unwrap();
    let js = bridge.connection().jetstream();
    js.ensure_stream("WORK", &["work.>"]).await.unwrap();
    for i in 0..3 {
        let payloads = vec![Payload::text("t", format!("job{i}"))];
        bridge.jetstream_send("work.in", payloads, SendOptions::default()).await.unwrap();
    }
    js.publish("work.in", "{broken".into(), None).await.unwrap();

    let mut consumer = bridge.jetstream_consumer("WORK", "worker").await.unwrap();
    consumer.nak_delay =
        RetryConfig::new().with_base_delay(Duration::from_millis(10)).with_jitter(false);
    consumer.pull_batch = 2;
    let mut texts = Vec::new();
    for _ in 0..3 {
        texts.push(text(&consumer.next().await.unwrap().unwrap()));
    }
    assert_eq!(texts, ["job0", "job1", "job2"]);
    let rejected = consumer.next().await.unwrap().unwrap_err();
    assert_eq!(
        (rejected.subject.as_str(), rejected.payload.as_ref()),
        ("work.in", &b"{broken"[..])
    );
    // Naked: it comes again (and again, naked each time), and nothing else
    // does: the others were acked.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(700);
    let mut redelivered = 0;
    while let Ok(item) = tokio::time::timeout_at(deadline, consumer.next()).await {
        assert_eq!(item.unwrap().unwrap_err().payload.as_ref(), b"{broken");
        redelivered += 1;
    }
    assert!(redelivered >= 1, "the naked message is redelivered");
}

#[tokio::test]
async fn an_envelope_consumer_next_is_cancel_safe() {
    let server = NatsServer::builder().jetstream().start();
    let (bridge, started, gate) = gated_bridge(&server, false).await;
    let js = bridge.connection().jetstream();
    js.ensure_stream("DOCS", &["docs.>"]).await.unwrap();
    js.publish("docs.in", link_envelope(10), None).await.unwrap();
    let payloads = vec![Payload::text("t", "after")];
    bridge.jetstream_send("docs.in", payloads, SendOptions::default()).await.unwrap();

    let mut consumer = bridge.jetstream_consumer("DOCS", "worker").await.unwrap();
    // Cancelled while pulling and while the download waits.
    cancel_until_started(&mut consumer, &started).await;
    assert_eq!(started.load(Ordering::SeqCst), 1);
    gate.send(true).unwrap();
    let first = consumer.next().await.unwrap().unwrap();
    assert_eq!(first.to_envelope().unwrap().msg_id, "m-link");
    assert_eq!(started.load(Ordering::SeqCst), 1, "the download was not restarted");
    assert_eq!(text(&consumer.next().await.unwrap().unwrap()), "after");
    drop(consumer);

    // Both were acked: a second consumer on the same durable finds nothing.
    let again = bridge.jetstream_consumer("DOCS", "worker").await.unwrap();
    assert!(again.fetch(10, Duration::from_millis(300)).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_lazy_subscription_hands_messages_undecoded_and_reads_only_what_is_asked() {
    let server = NatsServer::start();
    let (bridge, downloads, _gate) = gated_bridge(&server, true).await;
    let mut lazy = bridge.subscribe_lazy("lazy.>").await.unwrap();
    barrier(&bridge).await;

    let payloads =
        vec![Payload::text("reading", "21.5 C"), Payload::binary("blob", vec![9u8; 300])];
    bridge.smartsend("lazy.a", payloads, SendOptions::default()).await.unwrap();
    bridge
        .connection()
        .publish("lazy.bad", Bytes::from_static(b"{\"payloads\": 7}"))
        .await
        .unwrap();
    bridge.connection().publish("lazy.link", link_envelope(5)).await.unwrap();
    bridge.flush().await.unwrap();

    let first = lazy.next().await.unwrap();
    assert_eq!(first.subject(), "lazy.a");
    let view = first.view().unwrap();
    assert_eq!(view.send_to(), "lazy.a");
    let reading = view.payload("reading").unwrap();
    let mut buf = Vec::new();
    reading.decode_into(&mut buf).unwrap();
    assert_eq!(buf, b"21.5 C");
    // Header strings are borrowed from the message body.
    let body = first.payload().as_ptr_range();
    assert!(body.contains(&view.msg_id().as_ptr()));
    // The full decode reads what a Subscription reads.
    let msg_id = view.msg_id().to_string();
    let received = first.clone().decode(&bridge).await.unwrap();
    assert_eq!(received.to_envelope().unwrap().msg_id, msg_id);
    assert_eq!(
        received.to_envelope().unwrap().payloads[1].bytes().unwrap().as_ref(),
        &[9u8; 300][..]
    );

    // A bad message: the view names the error, as decode does; nothing is lost.
    let bad = lazy.next().await.unwrap();
    let err = bad.view().unwrap_err();
    assert!(err.to_string().contains("payloads"), "{err}");
    assert_eq!(bad.payload().as_ref(), b"{\"payloads\": 7}");
    let rejected = bad.decode(&bridge).await.unwrap_err();
    assert_eq!(rejected.error.to_string(), err.to_string());

    // A link is not fetched by the view; decode fetches it.
    let link = lazy.next().await.unwrap();
    let view = link.view().unwrap();
    assert_eq!(view.payloads()[0].url(), Some("http://127.0.0.1:9/document.bin"));
    assert_eq!(downloads.load(Ordering::SeqCst), 0, "viewing fetched nothing");
    let received = link.decode(&bridge).await.unwrap();
    assert_eq!(
        received.to_envelope().unwrap().payloads[0].bytes().unwrap().as_ref(),
        &[7u8; 5][..]
    );
    assert_eq!(downloads.load(Ordering::SeqCst), 1);
}
