//! Publish, subscribe, queue groups, request-reply and max_payload.

use std::time::Duration;

use futures_util::StreamExt;
use natsbridge_test_support::NatsServer;
use natsbridge_transport_nats::{ConnectOptions, ErrorKind, connect};

/// Makes sure the server has registered `conn`'s subscriptions before
/// another connection publishes: a request to a subject nobody serves is
/// answered by the server only after everything sent before it.
async fn barrier(conn: &natsbridge_transport_nats::Connection) {
    let err = conn.request("barrier.none", "".into(), Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NoResponders);
}

#[tokio::test]
async fn publish_and_subscribe_round_trip() {
    let server = NatsServer::start();
    let sub_conn = connect(server.url()).await.unwrap();
    let mut sub = sub_conn.subscribe("greet.>").await.unwrap();
    barrier(&sub_conn).await;
    let pub_conn = connect(server.url()).await.unwrap();
    pub_conn.publish("greet.world", "hello".into()).await.unwrap();
    let msg = sub.next().await.unwrap();
    assert_eq!(msg.subject.as_str(), "greet.world");
    assert_eq!(msg.payload.as_ref(), b"hello");
}

#[tokio::test]
async fn queue_group_delivers_each_message_once() {
    let server = NatsServer::start();
    let conn = connect(server.url()).await.unwrap();
    let mut a = conn.queue_subscribe("work", "workers").await.unwrap();
    let mut b = conn.queue_subscribe("work", "workers").await.unwrap();
    barrier(&conn).await;
    let publisher = connect(server.url()).await.unwrap();
    for i in 0..100u32 {
        publisher.publish("work", i.to_string().into()).await.unwrap();
    }
    publisher.flush().await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 100 {
        tokio::select! {
            Some(m) = a.next() => seen.push(String::from_utf8(m.payload.to_vec()).unwrap()),
            Some(m) = b.next() => seen.push(String::from_utf8(m.payload.to_vec()).unwrap()),
        }
    }
    seen.sort_by_key(|s| s.parse::<u32>().unwrap());
    let expected: Vec<String> = (0..100).map(|i: u32| i.to_string()).collect();
    assert_eq!(seen, expected, "each message exactly once");
}

#[tokio::test]
async fn request_reply_no_responders_and_timeout_are_distinct() {
    let server = NatsServer::start();
    let conn = connect(server.url()).await.unwrap();
    let mut service = conn.subscribe("echo").await.unwrap();
    let responder = conn.clone();
    tokio::spawn(async move {
        while let Some(msg) = service.next().await {
            if let Some(reply) = msg.reply {
                responder.publish(reply.as_str(), msg.payload).await.unwrap();
            }
        }
    });
    let _silent = conn.subscribe("silent").await.unwrap();
    barrier(&conn).await;
    let answer = conn.request("echo", "ping".into(), Duration::from_secs(5)).await.unwrap();
    assert_eq!(answer.payload.as_ref(), b"ping");
    let err = conn.request("nobody", "x".into(), Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NoResponders);
    let err = conn.request("silent", "x".into(), Duration::from_millis(200)).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::TimedOut);
}

#[tokio::test]
async fn oversize_publish_fails_before_sending_and_the_connection_survives() {
    let server = NatsServer::builder().max_payload(4096).start();
    let conn = connect(server.url()).await.unwrap();
    assert_eq!(conn.max_payload(), 4096);
    let mut sub = conn.subscribe("big").await.unwrap();
    barrier(&conn).await;
    let err = conn.publish("big", vec![0u8; 4097].into()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::PayloadTooLarge { size: 4097, limit: 4096 });
    assert!(err.to_string().contains("by 1 bytes"), "{err}");
    conn.publish("big", vec![1u8; 4096].into()).await.unwrap();
    assert_eq!(sub.next().await.unwrap().payload.len(), 4096);
}

#[tokio::test]
async fn max_payload_is_reread_after_a_reconnect() {
    let mut server = NatsServer::builder().max_payload(8192).start();
    let conn = ConnectOptions::new(server.url()).connect().await.unwrap();
    assert_eq!(conn.max_payload(), 8192);
    let mut events = conn.events();
    server.restart_with_max_payload(2048);
    // Wait for the client to come back (the event), then for a round trip.
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), events.recv()).await.unwrap();
        if event.unwrap() == natsbridge_transport_nats::Event::Connected {
            break;
        }
    }
    conn.flush().await.unwrap();
    assert_eq!(conn.max_payload(), 2048);
    let err = conn.publish("x", vec![0u8; 4000].into()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::PayloadTooLarge { size: 4000, limit: 2048 });
}

#[tokio::test]
async fn websocket_round_trip() {
    let server = NatsServer::builder().websocket().start();
    let ws = connect(server.ws_url()).await.unwrap();
    let mut sub = ws.subscribe("over.ws").await.unwrap();
    barrier(&ws).await;
    let tcp = connect(server.url()).await.unwrap();
    tcp.publish("over.ws", "via tcp".into()).await.unwrap();
    assert_eq!(sub.next().await.unwrap().payload.as_ref(), b"via tcp");
}

#[tokio::test]
async fn unreachable_server_is_a_connect_error() {
    let port = natsbridge_test_support::free_port();
    let err = ConnectOptions::new(format!("nats://127.0.0.1:{port}"))
        .connection_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Connect, "{err}");
}

#[tokio::test]
async fn a_slow_consumer_is_bounded_and_reported_and_the_connection_goes_on() {
    let server = NatsServer::start();
    let slow = ConnectOptions::new(server.url()).subscription_capacity(8).connect().await.unwrap();
    let mut events = slow.events();
    let mut sub = slow.subscribe("slow.lane").await.unwrap();
    barrier(&slow).await;

    // Nobody reads `sub` while 500 messages arrive: the client keeps at
    // most its capacity and drops the rest, saying so.
    let publisher = connect(server.url()).await.unwrap();
    for i in 0..500u32 {
        publisher.publish("slow.lane", i.to_string().into()).await.unwrap();
    }
    publisher.flush().await.unwrap();
    let reported = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            use tokio::sync::broadcast::error::RecvError;
            match events.recv().await {
                Ok(natsbridge_transport_nats::Event::SlowConsumer(_)) => break,
                // Hundreds of drops overflow the event channel: the newest
                // events are still there to read.
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => panic!("event channel closed"),
            }
        }
    })
    .await;
    assert!(reported.is_ok(), "no slow-consumer event within 10 s");

    let mut received = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        received += 1;
    }
    // The subscription's channel holds 8; async-nats keeps up to as many
    // again in flight to it, so the bound is about twice the capacity.
    assert!((1..=32).contains(&received), "kept {received} of 500 with a capacity of 8");

    // The connection itself is unharmed.
    let mut fresh = slow.subscribe("slow.after").await.unwrap();
    barrier(&slow).await;
    publisher.publish("slow.after", "still here".into()).await.unwrap();
    publisher.flush().await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(5), fresh.next()).await.unwrap().unwrap();
    assert_eq!(msg.payload, "still here");
}

#[tokio::test]
async fn replies_known_before_sending_route_each_answer_to_its_request() {
    let server = NatsServer::start();
    let service = connect(server.url()).await.unwrap();
    let mut requests = service.subscribe("echo").await.unwrap();
    barrier(&service).await;
    // Answers on the reply subject *named in the body* (as a seed-style
    // responder does), twice: the first a stray, the second the echo.
    let responder = service.clone();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            let to = String::from_utf8(request.payload.to_vec()).unwrap();
            responder.publish(&to, "stray".into()).await.unwrap();
            responder.publish(&to, to.clone().into()).await.unwrap();
        }
    });
    let client = connect(server.url()).await.unwrap();
    let mut pending = Vec::new();
    for _ in 0..20 {
        let mut replies = client.replies(None).await.unwrap();
        let body = replies.subject().to_string();
        client
            .send_request(&mut replies, "echo", body.into(), Duration::from_secs(5))
            .await
            .unwrap();
        pending.push(replies);
    }
    let subjects: std::collections::HashSet<String> =
        pending.iter().map(|r| r.subject().to_string()).collect();
    assert_eq!(subjects.len(), 20, "every request has its own subject");
    for mut replies in pending {
        assert_eq!(replies.next().await.unwrap().payload.as_ref(), b"stray");
        let answer = replies.next().await.unwrap();
        assert_eq!(answer.payload.as_ref(), replies.subject().as_bytes());
        assert_eq!(answer.subject.as_str(), replies.subject());
    }

    // A subject of the caller's own.
    let mut replies = client.replies(Some("my.answers")).await.unwrap();
    client
        .send_request(&mut replies, "echo", "my.answers".into(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(replies.next().await.unwrap().payload.as_ref(), b"stray");

    // Nobody listening, and nobody answering.
    let mut replies = client.replies(None).await.unwrap();
    client.send_request(&mut replies, "nobody", "x".into(), Duration::from_secs(5)).await.unwrap();
    assert_eq!(replies.next().await.unwrap_err().kind(), &ErrorKind::NoResponders);
    let _silent = service.subscribe("silent").await.unwrap();
    barrier(&service).await;
    let mut replies = client.replies(None).await.unwrap();
    client
        .send_request(&mut replies, "silent", "x".into(), Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(replies.next().await.unwrap_err().kind(), &ErrorKind::TimedOut);
}

#[tokio::test]
async fn sync_completes_while_another_client_watches_everything() {
    // A client subscribed to `>` answers nothing but counts as a listener
    // on every inbox: a sync that waited for "no responders" never ended.
    let server = NatsServer::start();
    let watcher = connect(server.url()).await.unwrap();
    let _everything = watcher.subscribe(">").await.unwrap();
    watcher.flush().await.unwrap();
    let conn = connect(server.url()).await.unwrap();
    let mut sub = conn.subscribe("after.sync").await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), conn.sync()).await.expect("sync ended").unwrap();
    // And it did its job: the subscription is registered.
    let publisher = connect(server.url()).await.unwrap();
    publisher.publish("after.sync", "x".into()).await.unwrap();
    publisher.flush().await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(5), sub.next()).await.unwrap().unwrap();
    assert_eq!(msg.payload.as_ref(), b"x");
}

#[tokio::test]
async fn a_subject_nats_refuses_is_an_invalid_subject_error() {
    let server = NatsServer::start();
    let conn = connect(server.url()).await.unwrap();
    for subject in ["a b", "a..b", ""] {
        let err = conn.subscribe(subject).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidSubject, "{subject:?}: {err}");
        assert!(err.to_string().contains(&format!("{subject:?}")), "{err}");
    }
    let err = conn.queue_subscribe("ok", "bad group").await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidSubject, "{err}");
    // The connection is still usable.
    conn.subscribe("fine").await.unwrap();
}

/// The connection keeps the latest publish's subject for the next one:
/// runs of one subject, alternations and a subject that extends the kept
/// one each reach their own subject, in order.
#[tokio::test]
async fn publishes_to_changing_subjects_each_reach_their_subject() {
    let server = NatsServer::start();
    let conn = connect(server.url()).await.unwrap();
    let mut sub = conn.subscribe("kept.>").await.unwrap();
    barrier(&conn).await;
    let subjects = ["kept.a", "kept.a", "kept.b", "kept.a", "kept.ab", "kept.b", "kept.b"];
    for (i, subject) in subjects.iter().enumerate() {
        conn.publish(subject, i.to_string().into()).await.unwrap();
    }
    for (i, subject) in subjects.iter().enumerate() {
        let msg = sub.next().await.unwrap();
        assert_eq!(
            (msg.subject.as_str(), msg.payload.as_ref()),
            (*subject, i.to_string().as_bytes())
        );
    }
}

/// Clones of one connection publishing to their own subjects at once, on
/// two threads: whether a publish finds the kept subject, replaces it or
/// finds it busy, every message arrives on the subject it was sent to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_to_different_subjects_never_mix_them_up() {
    let server = NatsServer::start();
    let conn = connect(server.url()).await.unwrap();
    let mut sub = conn.subscribe("mixed.>").await.unwrap();
    barrier(&conn).await;
    let (tasks, each) = (4, 200);
    let senders: Vec<_> = (0..tasks)
        .map(|t| {
            let conn = conn.clone();
            tokio::spawn(async move {
                for i in 0..each {
                    let subject = format!("mixed.t{t}");
                    conn.publish(&subject, format!("t{t}-{i}").into()).await.unwrap();
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    let mut per_task = vec![0; tasks];
    for _ in 0..tasks * each {
        let msg = tokio::time::timeout(Duration::from_secs(10), sub.next()).await.unwrap().unwrap();
        let payload = std::str::from_utf8(&msg.payload).unwrap();
        let task = msg.subject.as_str().strip_prefix("mixed.").unwrap();
        assert!(payload.starts_with(&format!("{task}-")), "{payload} arrived on {}", msg.subject);
        per_task[task[1..].parse::<usize>().unwrap()] += 1;
    }
    assert_eq!(per_task, vec![each; tasks]);
}

/// Reads `sub` to its end; `None` if it has not ended after 30 s (a
/// drain that waits for a server that is gone).
async fn read_to_end(sub: &mut natsbridge_transport_nats::Subscriber) -> Option<Vec<String>> {
    let read = async {
        let mut seen = Vec::new();
        while let Some(m) = sub.next().await {
            seen.push(String::from_utf8(m.payload.to_vec()).unwrap());
        }
        seen
    };
    tokio::time::timeout(Duration::from_secs(30), read).await.ok()
}

async fn disconnected(
    events: &mut tokio::sync::broadcast::Receiver<natsbridge_transport_nats::Event>,
) {
    loop {
        match events.recv().await {
            Ok(natsbridge_transport_nats::Event::Disconnected) => return,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => panic!("connection events ended: {e}"),
        }
    }
}

#[tokio::test]
async fn a_drain_without_a_server_ends_on_the_messages_already_received() {
    let mut server = NatsServer::start();
    let conn = connect(server.url()).await.unwrap();
    let mut sub = conn.subscribe("drain.gone").await.unwrap();
    barrier(&conn).await;
    for i in 0..3 {
        conn.publish("drain.gone", i.to_string().into()).await.unwrap();
    }
    // The server has delivered all three once the round trip is back.
    conn.sync().await.unwrap();
    let mut events = conn.events();
    server.kill();
    disconnected(&mut events).await;
    sub.drain().await.unwrap();
    let seen = read_to_end(&mut sub).await.expect("the stream did not end");
    assert_eq!(seen, ["0", "1", "2"]);
}

#[tokio::test]
async fn a_drain_whose_server_dies_before_answering_ends_the_stream() {
    let mut server = NatsServer::start();
    let conn = connect(server.url()).await.unwrap();
    let mut sub = conn.subscribe("drain.dies").await.unwrap();
    barrier(&conn).await;
    conn.publish("drain.dies", "kept".into()).await.unwrap();
    conn.sync().await.unwrap();
    // Frozen, the server never answers the drain's PING: the drain is
    // under way when the server dies.
    server.freeze();
    sub.drain().await.unwrap();
    assert_eq!(sub.next().await.unwrap().payload.as_ref(), b"kept");
    let mut events = conn.events();
    server.kill();
    disconnected(&mut events).await;
    let seen = read_to_end(&mut sub).await.expect("the stream did not end");
    assert!(seen.is_empty(), "{seen:?}");
}
