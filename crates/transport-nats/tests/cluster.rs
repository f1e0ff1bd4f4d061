//! A 3-node cluster: the client keeps publishing when its node dies.

use std::time::Duration;

use futures_util::StreamExt;
use natsbridge_test_support::NatsCluster;
use natsbridge_transport_nats::{ConnectOptions, Event, ReconnectPolicy, StreamConfig, connect};

#[tokio::test]
async fn publishing_goes_on_when_the_connected_node_is_killed() {
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    // The subscriber sits on node 2; the publisher starts on node 0 and
    // knows every node.
    let subscriber = connect(urls[2].clone()).await.unwrap();
    let mut sub = subscriber.subscribe("cluster.events").await.unwrap();
    subscriber.sync().await.unwrap();
    let policy = ReconnectPolicy::new().with_base_delay(Duration::from_millis(20));
    let publisher = ConnectOptions::new(urls[0].clone())
        .server(urls[1].clone())
        .server(urls[2].clone())
        .reconnect(policy)
        .connect()
        .await
        .unwrap();
    // Wait until the route carries messages from node 0 to node 2.
    let mut before = 0;
    loop {
        publisher.publish("cluster.events", "before".into()).await.unwrap();
        publisher.flush().await.unwrap();
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            before += 1;
            break;
        }
    }
    assert_eq!(before, 1);
    cluster.nodes[0].stop();
    // Publishing again succeeds once the client has failed over; every
    // message published after that reaches the subscriber on node 2.
    let mut delivered = 0;
    for _ in 0..200 {
        if publisher.publish("cluster.events", "after".into()).await.is_ok()
            && publisher.flush().await.is_ok()
        {
            let next = tokio::time::timeout(Duration::from_millis(500), sub.next()).await;
            if matches!(&next, Ok(Some(m)) if m.payload.as_ref() == b"after") {
                delivered += 1;
                if delivered == 10 {
                    break;
                }
            }
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(delivered, 10, "publishing did not go on through another node");
    assert_ne!(
        publisher.server_address(),
        "127.0.0.1:".to_string() + &cluster.nodes[0].port().to_string()
    );
}

/// Waits (up to `within`) for an event matching `want` on `events`.
async fn wait_event(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    within: Duration,
    want: impl Fn(&Event) -> bool,
) -> Event {
    tokio::time::timeout(within, async {
        loop {
            match events.recv().await {
                Ok(e) if want(&e) => return e,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no matching connection event in {within:?}"))
}

/// The harness itself: a JetStream cluster whose nodes a client can be
/// found on, lame-ducked (the client is told, moved, and the node exits),
/// killed and restarted on the same ports and store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_nodes_lame_duck_kill_and_restart() {
    let mut cluster = NatsCluster::start_jetstream(3);
    assert!(cluster.meta_leader().is_some());
    let policy = ReconnectPolicy::new().with_base_delay(Duration::from_millis(20));
    let urls = cluster.urls();
    let conn = ConnectOptions::new(urls[0].clone())
        .server(urls[1].clone())
        .server(urls[2].clone())
        .reconnect(policy)
        .connect()
        .await
        .unwrap();
    let on = cluster.node_on_port(conn.server_port()).expect("connected to a node");
    assert_eq!(cluster.node_named(&conn.server_name()), Some(on));
    let js = conn.jetstream();
    js.ensure_stream_with(StreamConfig { replicas: 3, ..StreamConfig::new("HARNESS", &["h.>"]) })
        .await
        .unwrap();
    tokio::task::block_in_place(|| cluster.wait_stream_ready("HARNESS"));

    // Lame duck: the client hears it, moves to another node, the node exits.
    let mut events = conn.events();
    cluster.nodes[on].lame_duck();
    wait_event(&mut events, Duration::from_secs(10), |e| *e == Event::LameDuckMode).await;
    wait_event(&mut events, Duration::from_secs(20), |e| *e == Event::Connected).await;
    assert_ne!(cluster.node_on_port(conn.server_port()), Some(on));
    let status =
        tokio::task::block_in_place(|| cluster.nodes[on].wait_exit(Duration::from_secs(20)));
    assert!(status.success(), "lame duck mode ends in a clean exit: {status}");
    tokio::task::block_in_place(|| cluster.wait_stream_ready("HARNESS"));
    let ack = js.publish("h.1", "after lame duck".into(), Some("h-1")).await.unwrap();
    assert_eq!(ack.sequence, 1);

    // Back on the same ports and store; then kill the node the client is on.
    tokio::task::block_in_place(|| {
        cluster.nodes[on].restart();
        cluster.wait_ready();
    });
    let now_on = cluster.node_on_port(conn.server_port()).unwrap();
    cluster.nodes[now_on].kill();
    assert!(!cluster.nodes[now_on].is_running());
    wait_event(&mut events, Duration::from_secs(20), |e| *e == Event::Connected).await;
    // A publish while the stream elects a new leader gets no answer at
    // all; once it has one, it is stored.
    tokio::task::block_in_place(|| cluster.wait_stream_ready("HARNESS"));
    let ack = js.publish("h.2", "after kill".into(), Some("h-2")).await.unwrap();
    assert_eq!(ack.sequence, 2);
    tokio::task::block_in_place(|| {
        cluster.nodes[now_on].restart();
        cluster.wait_ready();
    });
}
