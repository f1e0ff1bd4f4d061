//! The bridge over a real nats-server: the seeds' walkthroughs, max_payload
//! awareness, request-reply both ways, and undecodable messages.

use std::time::Duration;

use natsbridge::envelope::ErrorKind as EnvelopeKind;
use natsbridge::transport::ErrorKind as NatsKind;
use natsbridge::{Bridge, ErrorKind, Payload, PayloadValue, SendOptions, Transport};
use natsbridge_test_support::NatsServer;
use serde_json::json;

use crate::util::{Store, bytes};

async fn bridge(server: &NatsServer, store: Option<&Store>) -> Bridge {
    let mut builder = Bridge::builder(&server.url());
    if let Some(store) = store {
        builder = builder
            .fileserver(store.server.url())
            .download_handler(std::sync::Arc::new(store.downloader()));
    }
    builder.connect().await.unwrap()
}

/// Waits until the server has registered `bridge`'s subscriptions.
async fn barrier(bridge: &Bridge) {
    let err = bridge.connection().request("barrier.none", "".into(), Duration::from_secs(5)).await;
    assert_eq!(err.unwrap_err().kind(), &NatsKind::NoResponders);
}

#[tokio::test]
async fn mixed_chat_message_crosses_nats_with_a_link() {
    let server = NatsServer::start();
    let store = Store::start().await;
    let receiver = bridge(&server, Some(&store)).await;
    let mut sub = receiver.subscribe("chat.room1").await.unwrap();
    barrier(&receiver).await;
    let sender = bridge(&server, Some(&store)).await;
    let document = bytes(3_000_000, 9);
    let (sent, _) = sender
        .smartsend(
            "chat.room1",
            vec![
                Payload::text("message_text", "Hello!"),
                Payload::image("user_avatar", bytes(15_433, 8)),
                Payload::binary("large_document", document.clone()),
            ],
            SendOptions::default(),
        )
        .await
        .unwrap()
        .into_parts()
        .unwrap();
    assert_eq!(sent.broker_url, server.url(), "broker_url is the server used");
    let got = sub.next().await.unwrap().unwrap();
    assert_eq!(got.subject(), "chat.room1");
    assert_eq!(got.to_envelope().unwrap().msg_id, sent.msg_id);
    assert_eq!(got.to_envelope().unwrap().payloads[2].transport(), Transport::Link);
    assert_eq!(
        got.to_envelope().unwrap().payloads[2].bytes().unwrap().as_ref(),
        document.as_slice()
    );
    assert_eq!(
        got.to_envelope().unwrap().payloads[0].value().unwrap(),
        PayloadValue::Text("Hello!".into())
    );
}

#[tokio::test]
async fn credentials_in_the_server_url_never_reach_the_envelope() {
    let server = NatsServer::builder().user_password("alice", "pa55-in-url").start();
    let url = format!("nats://alice:pa55-in-url@127.0.0.1:{}", server.port());
    let bridge = Bridge::builder(&url).connect().await.unwrap();
    let (sent, json) = bridge
        .smartsend("t", vec![Payload::text("m", "hi")], SendOptions::default())
        .await
        .unwrap()
        .into_parts()
        .unwrap();
    assert_eq!(sent.broker_url, format!("nats://127.0.0.1:{}", server.port()));
    let text = String::from_utf8_lossy(&json);
    assert!(!text.contains("pa55-in-url") && !text.contains("alice"), "{text}");
}

#[tokio::test]
async fn a_small_max_payload_moves_payloads_to_link_or_fails_before_publishing() {
    let server = NatsServer::builder().max_payload(16 * 1024).start();
    let store = Store::start().await;
    let with_store = bridge(&server, Some(&store)).await;
    assert_eq!(with_store.connection().max_payload(), 16 * 1024);
    let payload = bytes(14_000, 1); // under the threshold, but 18.7 KB as base64
    let (sent, json) = with_store
        .smartsend("t", vec![Payload::binary("p", payload.clone())], SendOptions::default())
        .await
        .unwrap()
        .into_parts()
        .unwrap();
    assert_eq!(sent.payloads[0].transport(), Transport::Link);
    assert!(json.len() <= 16 * 1024);

    let without = bridge(&server, None).await;
    let err = without
        .smartsend("t", vec![Payload::binary("p", payload)], SendOptions::default())
        .await
        .unwrap_err();
    match err.kind() {
        ErrorKind::Envelope(EnvelopeKind::PayloadTooLarge { dataname, limit, envelope_size }) => {
            assert_eq!((dataname.as_str(), *limit), ("p", 16 * 1024));
            assert!(*envelope_size > 16 * 1024);
        }
        other => panic!("wrong kind {other:?}: {err}"),
    }
}

#[tokio::test]
async fn request_reply_over_the_nats_inbox_and_the_seeds_reply_to() {
    let server = NatsServer::start();
    let service = bridge(&server, None).await;
    let mut requests = service.subscribe("device.command").await.unwrap();
    let responder = service.clone();
    tokio::spawn(async move {
        while let Some(Ok(request)) = requests.next().await {
            let answer =
                Payload::dictionary("data", &json!({"sensor_id": "sensor-001", "value": 42.5}));
            responder.reply(&request, vec![answer.unwrap()], SendOptions::default()).await.unwrap();
        }
    });
    barrier(&service).await;
    let client = bridge(&server, None).await;
    let command =
        || vec![Payload::dictionary("command", &json!({"action": "read_sensor"})).unwrap()];

    // NATS's own request inbox.
    let options = SendOptions::new().with_correlation_id("corr-1");
    let answer =
        client.request("device.command", command(), options, Duration::from_secs(5)).await.unwrap();
    assert_eq!(answer.correlation_id, "corr-1");
    assert!(!answer.reply_to_msg_id.is_empty());
    assert_eq!(
        answer.payloads[0].value().unwrap(),
        PayloadValue::Json(json!({"sensor_id": "sensor-001", "value": 42.5}))
    );

    // The seeds' convention: reply_to subject, answer matched by reply_to_msg_id.
    let mut responses = client.subscribe("device.response").await.unwrap();
    barrier(&client).await;
    let options = SendOptions::new().with_reply_to("device.response");
    let (request, _) =
        client.smartsend("device.command", command(), options).await.unwrap().into_parts().unwrap();
    let response = responses.next().await.unwrap().unwrap().to_envelope().unwrap();
    assert_eq!(response.reply_to_msg_id, request.msg_id);
    assert_eq!(response.correlation_id, request.correlation_id);
    // The answer is addressed to the requester.
    assert_eq!(response.receiver_name, request.sender_name);
    assert_eq!(response.receiver_id, request.sender_id);
    assert_ne!(response.msg_id, request.msg_id);
}

/// A responder as the seeds write one: it reads only the envelope's
/// `reply_to`, never NATS's reply subject, and answers there with a fresh
/// envelope that copies neither `correlation_id` nor `msg_id`. It runs on
/// raw async-nats with serde_json, so nothing of the bridge helps it.
async fn seed_style_responder(server: &NatsServer, subject: &str) {
    use futures_util::StreamExt;
    let client = async_nats::connect(server.url()).await.unwrap();
    let mut requests = client.subscribe(subject.to_string()).await.unwrap();
    client.flush().await.unwrap();
    tokio::spawn(async move {
        while let Some(message) = requests.next().await {
            let request: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
            let reply_to = request["reply_to"].as_str().unwrap_or_default().to_string();
            if reply_to.is_empty() {
                continue;
            }
            let data = serde_json::to_vec(&json!({"sensor_id": "sensor-001", "value": 42.5}));
            let answer = json!({
                "correlation_id": "fresh-correlation", "msg_id": "fresh-msg",
                "timestamp": "2024-01-15T10:30:00.37", "send_to": reply_to,
                "msg_purpose": "chat", "sender_name": "msghandler", "sender_id": "s",
                "receiver_name": "", "receiver_id": "", "reply_to": "", "reply_to_msg_id": "",
                "broker_url": "nats://localhost:4222", "metadata": {},
                "payloads": [{"id": "p", "dataname": "data", "payload_type": "dictionary",
                    "transport": "direct", "encoding": "base64",
                    "data": base64_of(&data.unwrap())}],
            });
            client.publish(reply_to, answer.to_string().into()).await.unwrap();
            client.flush().await.unwrap();
        }
    });
}

fn base64_of(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn a_request_is_answered_by_a_seed_style_responder() {
    let server = NatsServer::start();
    seed_style_responder(&server, "device.command").await;
    let client = bridge(&server, None).await;
    barrier(&client).await;
    let command = vec![Payload::dictionary("command", &json!({"action": "read_sensor"})).unwrap()];
    let answer = client
        .request("device.command", command.clone(), SendOptions::default(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(answer.correlation_id, "fresh-correlation", "no correlation check");
    assert_eq!(
        answer.payloads[0].value().unwrap(),
        PayloadValue::Json(json!({"sensor_id": "sensor-001", "value": 42.5}))
    );

    // A subject of the caller's choosing instead of an inbox.
    let options = SendOptions::new().with_reply_to("device.response.7");
    let answer =
        client.request("device.command", command, options, Duration::from_secs(5)).await.unwrap();
    assert_eq!(answer.send_to, "device.response.7");
}

#[tokio::test]
async fn an_answer_to_another_request_is_skipped() {
    let server = NatsServer::start();
    // A responder that first sends a stale answer (to some other request)
    // on the request's reply_to, then the real one.
    let service = bridge(&server, None).await;
    let mut requests = service.subscribe("svc").await.unwrap();
    let responder = service.clone();
    tokio::spawn(async move {
        while let Some(Ok(request)) = requests.next().await {
            let reply_to = request.to_envelope().unwrap().reply_to.clone();
            let stale = SendOptions::new().with_reply_to_msg_id("someone-else");
            responder.smartsend(&reply_to, vec![Payload::text("t", "stale")], stale).await.unwrap();
            responder
                .reply(&request, vec![Payload::text("t", "mine")], SendOptions::default())
                .await
                .unwrap();
        }
    });
    barrier(&service).await;
    let client = bridge(&server, None).await;
    let request = vec![Payload::text("q", "?")];
    let answer = client
        .request("svc", request, SendOptions::default(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(answer.payloads[0].value().unwrap(), PayloadValue::Text("mine".into()));
}

#[tokio::test]
async fn no_responders_and_timeouts_are_distinct_kinds() {
    let server = NatsServer::start();
    let client = bridge(&server, None).await;
    let err = client
        .request(
            "nobody.home",
            vec![Payload::text("t", "x")],
            SendOptions::default(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Nats(NatsKind::NoResponders));
    let _silent = client.subscribe("silent").await.unwrap();
    barrier(&client).await;
    let err = client
        .request(
            "silent",
            vec![Payload::text("t", "x")],
            SendOptions::default(),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Nats(NatsKind::TimedOut));
}

#[tokio::test]
async fn an_undecodable_message_is_rejected_with_its_bytes_and_the_stream_goes_on() {
    let server = NatsServer::start();
    let receiver = bridge(&server, None).await;
    let mut sub = receiver.subscribe("in").await.unwrap();
    barrier(&receiver).await;
    let raw = natsbridge::transport::connect(server.url()).await.unwrap();
    raw.publish("in", "{not an envelope".into()).await.unwrap();
    let sender = bridge(&server, None).await;
    sender
        .smartsend("in", vec![Payload::text("t", "after")], SendOptions::default())
        .await
        .unwrap();

    let rejected = sub.next().await.unwrap().unwrap_err();
    assert_eq!(rejected.payload.as_ref(), b"{not an envelope");
    assert_eq!(rejected.subject, "in");
    assert!(matches!(rejected.error.kind(), ErrorKind::Envelope(EnvelopeKind::NotJson { .. })));
    let next = sub.next().await.unwrap().unwrap();
    assert_eq!(
        next.to_envelope().unwrap().payloads[0].value().unwrap(),
        PayloadValue::Text("after".into())
    );
}

/// One set of payloads and options lent to many sends (as a stream of
/// messages keeps them): each message still gets fresh ids, the bridge's
/// URL as `broker_url` while the options leave the default, and the
/// options' own when they name one.
#[tokio::test]
async fn lent_payloads_and_options_give_each_message_fresh_ids() {
    let server = NatsServer::start();
    let b = bridge(&server, None).await;
    let mut sub = b.subscribe("lent").await.unwrap();
    barrier(&b).await;
    let payloads = [Payload::text("t", "same")];
    let options = SendOptions::default();
    let first = b.smartsend("lent", &payloads, &options).await.unwrap().envelope().unwrap();
    let second = b.smartsend("lent", &payloads[..], &options).await.unwrap().envelope().unwrap();
    let named = SendOptions::new().with_broker_url("nats://elsewhere:4222");
    let third = b.smartsend("lent", payloads.to_vec(), named).await.unwrap().envelope().unwrap();
    for sent in [&first, &second, &third] {
        let got = sub.next().await.unwrap().unwrap().to_envelope().unwrap();
        assert_eq!(&got, sent, "received as sent");
    }
    assert_ne!(first.msg_id, second.msg_id);
    assert_ne!(first.correlation_id, second.correlation_id);
    assert_ne!(first.payloads[0].id, second.payloads[0].id);
    assert_eq!(
        (first.broker_url.as_str(), second.broker_url.as_str()),
        (server.url().as_str(), server.url().as_str())
    );
    assert_eq!(third.broker_url, "nats://elsewhere:4222");
    assert_eq!(options, SendOptions::default(), "the lent options are not changed");
}

#[tokio::test]
async fn is_publish_false_builds_without_publishing() {
    let server = NatsServer::start();
    let b = bridge(&server, None).await;
    let mut sub = b.subscribe("quiet").await.unwrap();
    barrier(&b).await;
    let options = SendOptions::new().with_is_publish(false);
    let sent = b.smartpack("quiet", vec![Payload::text("t", "x")], options).await.unwrap();
    // Built all the same: the JSON that would have gone out.
    let env = sent.envelope().unwrap();
    assert_eq!(env.payloads[0].value().unwrap(), PayloadValue::Text("x".into()));
    b.smartsend("quiet", vec![Payload::text("t", "published")], SendOptions::default())
        .await
        .unwrap();
    let first = sub.next().await.unwrap().unwrap();
    assert_eq!(
        first.to_envelope().unwrap().payloads[0].value().unwrap(),
        PayloadValue::Text("published".into())
    );
}

#[tokio::test]
async fn jetstream_acks_decoded_envelopes_and_naks_the_rest_for_redelivery() {
    let server = NatsServer::builder().jetstream().start();
    let b = bridge(&server, None).await;
    b.connection().jetstream().ensure_stream("CHAT", &["chat.>"]).await.unwrap();
    for i in 0..3 {
        let (env, ack) = b
            .jetstream_send(
                "chat.room",
                vec![Payload::text("t", format!("m{i}"))],
                SendOptions::default(),
            )
            .await
            .unwrap();
        assert!(!ack.duplicate);
        assert!(!env.view().unwrap().msg_id().is_empty());
    }
    b.connection().jetstream().publish("chat.room", "{broken".into(), None).await.unwrap();

    let mut consumer = b.jetstream_consumer("CHAT", "reader").await.unwrap();
    consumer.nak_delay = natsbridge::claimcheck::RetryConfig::new()
        .with_base_delay(Duration::from_millis(10))
        .with_jitter(false);
    let first = consumer.fetch(10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(first.len(), 4);
    let texts: Vec<_> = first
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|r| r.to_envelope().unwrap().payloads[0].value().unwrap())
        .collect();
    assert_eq!(texts.len(), 3);
    let rejected = first.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!(rejected.payload.as_ref(), b"{broken", "the raw message is kept");

    // Only the naked message comes back.
    let again = consumer.fetch(10, Duration::from_secs(3)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].as_ref().unwrap_err().payload.as_ref(), b"{broken");
}

/// Publishes a marker envelope on `subject` from `sender` and asserts it
/// is the next message `sub` receives: nothing `sender` did before reached
/// the subject (one connection's messages arrive in order), with no wait
/// on a timeout.
async fn assert_next_is_marker(sender: &Bridge, sub: &mut natsbridge::Subscription, subject: &str) {
    let marker = vec![Payload::text("marker", "nothing before me")];
    sender.smartsend(subject, marker, SendOptions::default()).await.unwrap();
    let next = sub.next().await.unwrap().unwrap().to_envelope().unwrap();
    assert_eq!(next.payloads[0].dataname, "marker", "something was published before the marker");
}

/// Waits (polling, up to 10 s) until the JetStream stream `name` holds at
/// least `n` messages.
async fn wait_stored(bridge: &Bridge, name: &str, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let subject = format!("$JS.API.STREAM.INFO.{name}");
        let info =
            bridge.connection().request(&subject, "".into(), Duration::from_secs(5)).await.unwrap();
        let info: serde_json::Value = serde_json::from_slice(&info.payload).unwrap();
        if info["state"]["messages"].as_u64().is_some_and(|stored| stored >= n) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} did not store {n} messages: {info}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_streams_pub_ack_on_the_reply_subject_is_not_taken_for_the_answer() {
    let server = NatsServer::builder().jetstream().start();
    let service = bridge(&server, None).await;
    // A stream that also captures the request subject: it acks every
    // request on the request's reply subject, before the responder answers.
    service.connection().jetstream().ensure_stream("AUDIT", &["svc.>"]).await.unwrap();
    let mut requests = service.subscribe("svc.echo").await.unwrap();
    let responder = service.clone();
    tokio::spawn(async move {
        let mut stored = 0;
        while let Some(Ok(request)) = requests.next().await {
            // Answer once the stream has stored the request, and so has
            // sent its ack on the request's reply subject.
            stored += 1;
            wait_stored(&responder, "AUDIT", stored).await;
            let payloads = vec![Payload::text("answer", "from the responder")];
            responder.reply(&request, payloads, SendOptions::default()).await.unwrap();
        }
    });
    barrier(&service).await;
    let client = bridge(&server, None).await;
    let answer = client
        .request(
            "svc.echo",
            vec![Payload::text("q", "?")],
            SendOptions::default(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(
        answer.payloads[0].value().unwrap(),
        PayloadValue::Text("from the responder".into())
    );

    // With no responder, only the ack arrives: a timeout that names it.
    let err = client
        .request(
            "svc.nobody",
            vec![Payload::text("q", "?")],
            SendOptions::default(),
            Duration::from_millis(500),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Nats(NatsKind::TimedOut), "{err}");
    assert!(err.to_string().contains("were not envelopes and were skipped"), "{err}");
}

#[tokio::test]
async fn a_prepared_sender_sends_what_smartsend_sends() {
    let server = NatsServer::start();
    let receiver = bridge(&server, None).await;
    let mut sub = receiver.subscribe("sensors.t1").await.unwrap();
    let mut raw = receiver.connection().subscribe("sensors.t1").await.unwrap();
    barrier(&receiver).await;
    let sender = bridge(&server, None).await;
    let metadata = json!({"unit": "celsius", "site": "lab \"2\""});
    let options = SendOptions::new()
        .with_msg_purpose("updateStatus")
        .with_sender_name("thermo")
        .with_reply_to("sensors.ack")
        .with_metadata(metadata.as_object().unwrap().clone());
    let prepared = sender.prepare("sensors.t1", options).unwrap();
    assert_eq!(prepared.subject(), "sensors.t1");
    let mut sent = Vec::new();
    for i in 0..3 {
        let payloads = [
            Payload::text("reading", format!("21.{i}")),
            Payload::binary("raw", bytes(100 + i, i as u32)),
        ];
        sent.push(prepared.send(&payloads).await.unwrap());
    }
    let (mut msg_ids, mut correlation_ids) = (Vec::new(), Vec::new());
    for (i, json) in sent.iter().enumerate() {
        let published = futures_util::StreamExt::next(&mut raw).await.unwrap();
        assert_eq!(&published.payload, json, "published exactly as returned");
        let got = sub.next().await.unwrap().unwrap().to_envelope().unwrap();
        assert_eq!(got.send_to, "sensors.t1");
        assert_eq!(got.msg_purpose, "updateStatus");
        assert_eq!(got.sender_name, "thermo");
        assert_eq!(got.reply_to, "sensors.ack");
        assert_eq!(got.broker_url, server.url(), "the bridge's URL, as smartsend writes it");
        assert_eq!(serde_json::Value::Object(got.metadata.clone()), metadata);
        assert!(got.parsed_timestamp().is_ok());
        assert_eq!(got.payloads[0].value().unwrap(), PayloadValue::Text(format!("21.{i}")));
        assert_eq!(got.payloads[1].bytes().unwrap().as_ref(), bytes(100 + i, i as u32).as_slice());
        assert_ne!(got.payloads[0].id, got.payloads[1].id);
        msg_ids.push(got.msg_id);
        correlation_ids.push(got.correlation_id);
    }
    msg_ids.dedup();
    correlation_ids.dedup();
    assert_eq!((msg_ids.len(), correlation_ids.len()), (3, 3), "fresh ids per message");

    // A fixed correlation id holds for the whole stream.
    let options = SendOptions::new().with_correlation_id("conv-7");
    let prepared = sender.prepare("sensors.t1", options).unwrap();
    prepared.send(&[Payload::text("reading", "1")]).await.unwrap();
    prepared.send(&[Payload::text("reading", "2")]).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            sub.next().await.unwrap().unwrap().to_envelope().unwrap().correlation_id,
            "conv-7"
        );
    }

    // is_publish = false builds without publishing.
    let options = SendOptions::new().with_is_publish(false);
    let quiet = sender.prepare("sensors.t1", options).unwrap();
    let json = quiet.send(&[Payload::text("reading", "3")]).await.unwrap();
    assert_eq!(natsbridge::Envelope::from_json(&json).unwrap().send_to, "sensors.t1");
    assert_next_is_marker(&sender, &mut sub, "sensors.t1").await;
}

#[tokio::test]
async fn a_prepared_sender_takes_the_full_path_for_links_and_oversize() {
    let server = NatsServer::builder().max_payload(16 * 1024).start();
    let store = Store::start().await;
    let receiver = bridge(&server, Some(&store)).await;
    let mut sub = receiver.subscribe("t").await.unwrap();
    barrier(&receiver).await;
    let with_store = bridge(&server, Some(&store)).await;

    // Over the threshold: uploaded, the record carries the link.
    let options = SendOptions::new().with_size_threshold(1000);
    let prepared = with_store.prepare("t", options).unwrap();
    let big = bytes(5_000, 3);
    prepared.send(&[Payload::binary("big", big.clone())]).await.unwrap();
    let got = sub.next().await.unwrap().unwrap().to_envelope().unwrap();
    assert_eq!(got.payloads[0].transport(), Transport::Link);
    assert_eq!(got.payloads[0].bytes().unwrap().as_ref(), big.as_slice());

    // Under the threshold but over max_payload as base64: moved to a link.
    let prepared = with_store.prepare("t", SendOptions::default()).unwrap();
    let payload = bytes(14_000, 1);
    prepared.send(&[Payload::binary("p", payload.clone())]).await.unwrap();
    let got = sub.next().await.unwrap().unwrap().to_envelope().unwrap();
    assert_eq!(got.payloads[0].transport(), Transport::Link);
    assert_eq!(got.payloads[0].bytes().unwrap().as_ref(), payload.as_slice());

    // Without a file server: the same error as smartsend, nothing published.
    let without = bridge(&server, None).await;
    let prepared = without.prepare("t", SendOptions::default()).unwrap();
    let err = prepared.send(&[Payload::binary("p", payload.clone())]).await.unwrap_err();
    match err.kind() {
        ErrorKind::Envelope(EnvelopeKind::PayloadTooLarge { dataname, limit, .. }) => {
            assert_eq!((dataname.as_str(), *limit), ("p", 16 * 1024));
        }
        other => panic!("wrong kind {other:?}: {err}"),
    }
    // A request builds its envelope the same way: refused before sending.
    let payloads = vec![Payload::binary("p", payload)];
    let err = without.request("t", payloads, SendOptions::default(), Duration::from_secs(5)).await;
    match err.unwrap_err().kind() {
        ErrorKind::Envelope(EnvelopeKind::PayloadTooLarge { dataname, .. }) => {
            assert_eq!(dataname, "p");
        }
        other => panic!("wrong kind {other:?}"),
    }
    assert_next_is_marker(&without, &mut sub, "t").await;
}

/// A responder registered as a service: answers on the NATS inbox and on
/// `reply_to` are counted, an error answer is the envelope with the
/// Service API's headers, STATS and INFO say so, and a drained endpoint
/// still yields every request the server had sent it.
#[tokio::test]
async fn a_service_counts_both_conventions_marks_errors_and_drains() {
    use natsbridge::{EndpointConfig, ServiceConfig};

    let server = NatsServer::start();
    let responder = bridge(&server, None).await;
    let mut config = ServiceConfig::new("lib-svc", "1.0.0");
    config.metadata.insert("k".into(), "v".into());
    let service = responder.service(config).await.unwrap();
    let endpoint = EndpointConfig { queue_group: None, ..EndpointConfig::new("lib.svc") };
    let mut endpoint = service.endpoint_with(endpoint).await.unwrap();
    barrier(&responder).await;
    let requester = bridge(&server, None).await;
    let mut inbox = requester.subscribe("lib.inbox").await.unwrap();
    barrier(&requester).await;
    let unsent = SendOptions::new().with_is_publish(false);

    let requests = async {
        let answer = requester
            .request("lib.svc", vec![Payload::text("q", "1")], SendOptions::default(), SECS_10)
            .await
            .unwrap();
        assert_eq!(answer.payloads[0].dataname, "a");
        let seed = SendOptions::new().with_reply_to("lib.inbox");
        requester.smartsend("lib.svc", [Payload::text("q", "2")], seed).await.unwrap();
        let answer = inbox.next().await.unwrap().unwrap();
        assert_eq!(answer.to_envelope().unwrap().payloads[0].dataname, "a");
        let json = requester.smartsend("lib.svc", [Payload::text("q", "3")], &unsent).await;
        let client = requester.connection().client();
        let answer = client.request("lib.svc", json.unwrap().json().clone()).await.unwrap();
        let headers = answer.headers.expect("error headers");
        assert_eq!(headers.get("Nats-Service-Error").unwrap().as_str(), "busy now");
        assert_eq!(headers.get("Nats-Service-Error-Code").unwrap().as_str(), "503");
        let envelope = natsbridge::Envelope::from_json(&answer.payload).unwrap();
        assert_eq!(envelope.payloads[0].dataname, "why");
    };
    let answers = async {
        for i in 0..3 {
            let request = endpoint.next().await.unwrap().unwrap();
            let sent = if i < 2 {
                request.respond(vec![Payload::text("a", "ok")], SendOptions::default()).await
            } else {
                let why = vec![Payload::text("why", "busy")];
                request.respond_error(503, "busy\nnow", why, SendOptions::default()).await
            };
            assert!(sent.unwrap().is_some());
        }
    };
    tokio::join!(requests, answers);

    let stats: serde_json::Value = serde_json::from_str(&service.stats()).unwrap();
    assert_eq!(stats["type"], "io.nats.micro.v1.stats_response");
    assert_eq!(stats["metadata"], json!({"k": "v"}));
    let counts = &stats["endpoints"][0];
    assert_eq!(
        (counts["num_requests"].as_u64(), counts["num_errors"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(counts["last_error"], "503:busy\nnow");
    assert!(counts["processing_time"].as_u64().unwrap() > 0);
    let info: serde_json::Value = serde_json::from_str(&service.info()).unwrap();
    assert_eq!(info["endpoints"][0]["queue_group"], "", "no queue group");
    assert_eq!(info["endpoints"][0]["name"], "lib-svc");

    // Five requests the server has sent before the drain: all yielded.
    let seed = SendOptions::new().with_reply_to("lib.inbox");
    for i in 0..5 {
        requester.smartsend("lib.svc", [Payload::text("q", format!("{i}"))], &seed).await.unwrap();
    }
    requester.connection().sync().await.unwrap();
    endpoint.drain().await.unwrap();
    let mut drained = 0;
    while let Some(request) = endpoint.next().await {
        request
            .unwrap()
            .respond(vec![Payload::text("a", "ok")], SendOptions::default())
            .await
            .unwrap();
        drained += 1;
    }
    assert_eq!(drained, 5);
    for _ in 0..5 {
        inbox.next().await.unwrap().unwrap();
    }
}

const SECS_10: Duration = Duration::from_secs(10);
