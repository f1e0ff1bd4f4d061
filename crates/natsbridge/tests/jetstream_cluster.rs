//! JetStream on a 3-node cluster (R3 streams): consumers and senders that
//! outlive the node they are connected to, and a stream whose leader moves.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use natsbridge::transport::{ConnectOptions, ReconnectPolicy, StreamConfig};
use natsbridge::{Bridge, Payload, SendOptions};
use natsbridge_test_support::NatsCluster;

const STREAM: &str = "ORDERS";

/// A bridge knowing `urls` (the first is written as `broker_url`), with
/// fast reconnects.
async fn bridge(urls: &[String]) -> Bridge {
    let policy = ReconnectPolicy::new().with_base_delay(Duration::from_millis(20));
    let mut options = ConnectOptions::new(urls[0].clone()).reconnect(policy);
    for url in &urls[1..] {
        options = options.server(url.clone());
    }
    Bridge::builder(&urls[0]).connect_options(options).connect().await.unwrap()
}

/// A 3-node JetStream cluster with the R3 stream `ORDERS` on `orders.>`.
async fn cluster_with_stream() -> (NatsCluster, Bridge) {
    let cluster = tokio::task::block_in_place(|| NatsCluster::start_jetstream(3));
    let admin = bridge(&cluster.urls()).await;
    let config = StreamConfig { replicas: 3, ..StreamConfig::new(STREAM, &["orders.>"]) };
    admin.connection().jetstream().ensure_stream_with(config).await.unwrap();
    tokio::task::block_in_place(|| cluster.wait_stream_ready(STREAM));
    (cluster, admin)
}

async fn send(bridge: &Bridge, n: usize) -> (String, natsbridge::transport::Ack) {
    let options = SendOptions::new().with_msg_id(format!("order-{n}"));
    let payloads = vec![Payload::text("n", n.to_string())];
    let (sent, ack) = bridge.jetstream_send("orders.new", payloads, options).await.unwrap();
    (sent.view().unwrap().msg_id().to_string(), ack)
}

/// Every msg_id the stream holds, with how many times.
async fn stored(bridge: &Bridge) -> BTreeMap<String, usize> {
    let js = bridge.connection().jetstream();
    let consumer = js.pull_consumer(STREAM, "audit").await.unwrap();
    let mut seen = BTreeMap::new();
    loop {
        let batch = consumer.fetch(100, Duration::from_secs(1)).await.unwrap();
        if batch.is_empty() {
            return seen;
        }
        for m in batch {
            let envelope = natsbridge::Envelope::from_json(m.payload()).unwrap();
            *seen.entry(envelope.msg_id).or_insert(0) += 1;
            m.ack().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_consumer_keeps_every_message_when_its_node_is_killed() {
    const N: usize = 60;
    let (mut cluster, admin) = cluster_with_stream().await;
    let consumer = admin.jetstream_consumer(STREAM, "worker").await.unwrap();
    drop(consumer);
    // The listener sits on the node that leads its consumer (the hard
    // case: the pull requests held there die with it). It is given that
    // node's URL only and learns the others from the server.
    let on = loop {
        if let Some(leader) = cluster.consumer_leader(STREAM, "worker") {
            break leader;
        }
        tokio::task::yield_now().await;
    };
    // A long request timeout, as the command line's `--timeout` sets it:
    // async-nats's own recovery of the pull, a consumer info request, then
    // waits that long on a consumer that has no leader yet.
    let policy = ReconnectPolicy::new().with_base_delay(Duration::from_millis(20));
    let options = ConnectOptions::new(cluster.nodes[on].url())
        .reconnect(policy)
        .request_timeout(Duration::from_secs(60));
    let listener =
        Bridge::builder(&cluster.nodes[on].url()).connect_options(options).connect().await.unwrap();
    let others: Vec<String> = (0..3).filter(|&i| i != on).map(|i| cluster.nodes[i].url()).collect();
    let publisher = bridge(&others).await;
    let mut consumer = listener.jetstream_consumer(STREAM, "worker").await.unwrap();

    let mut acked = BTreeSet::new();
    for n in 0..20 {
        send(&publisher, n).await;
    }
    for _ in 0..20 {
        take(&mut acked, consumer.next().await.unwrap());
    }
    assert_eq!(cluster.node_on_port(listener.connection().server_port()), Some(on));
    tokio::task::block_in_place(|| cluster.nodes[on].kill());
    for n in 20..N {
        let (_, ack) = send(&publisher, n).await;
        assert_eq!(ack.stream, STREAM);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acked.len() < N {
        let item = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("consumer stalled after {} of {N}", acked.len()))
            .expect("the consumer's stream ended");
        take(&mut acked, item);
    }
    let expected: BTreeSet<String> = (0..N).map(|n| format!("order-{n}")).collect();
    assert_eq!(acked, expected);
    assert_ne!(cluster.node_on_port(listener.connection().server_port()), Some(on));
    // Nothing more comes: every message was acked once.
    let more = tokio::time::timeout(Duration::from_millis(500), consumer.next()).await;
    assert!(more.is_err(), "unexpected delivery after all {N} were acked: {more:?}");
}

/// Records a consumer's item: an acked envelope must not have been seen
/// before.
fn take(acked: &mut BTreeSet<String>, item: Result<natsbridge::Received, natsbridge::Rejected>) {
    match item {
        Ok(received) => {
            let id = received.to_envelope().unwrap().msg_id;
            assert!(acked.insert(id.clone()), "{id} delivered again after its ack");
        }
        // A message whose ack could not be confirmed (the node died under
        // it) comes again: allowed, it was never acked.
        Err(rejected) if !rejected.subject.is_empty() => {}
        Err(rejected) => panic!("the consumer's pull failed for good: {}", rejected.error),
    }
}

/// Waits (without blocking the runtime) until `f` gives a value.
async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = tokio::task::block_in_place(&mut f) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: not in 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_send_through_a_killed_node_stores_each_message_once() {
    const N: usize = 60;
    let (mut cluster, admin) = cluster_with_stream().await;
    // The sender sits on the stream's leader: killing it loses the
    // connection and the stream's leader at once.
    let on = wait_for("stream leader", || cluster.stream_leader(STREAM)).await;
    let sender = bridge(&[cluster.nodes[on].url()]).await;
    let (progress, mut sent) = tokio::sync::watch::channel(0usize);
    let task = tokio::spawn(async move {
        let mut acks = Vec::new();
        for n in 0..N {
            acks.push(send(&sender, n).await);
            progress.send_replace(n + 1);
        }
        (acks, sender)
    });
    sent.wait_for(|&n| n >= 20).await.unwrap();
    tokio::task::block_in_place(|| cluster.nodes[on].kill());
    let (acks, sender) = task.await.unwrap();
    assert_eq!(acks.len(), N, "every send returned an ack");
    for (msg_id, ack) in &acks {
        assert_eq!(ack.stream, STREAM, "{msg_id}");
        assert!(ack.sequence >= 1);
    }
    assert_ne!(cluster.node_on_port(sender.connection().server_port()), Some(on));
    let held = stored(&admin).await;
    let expected: BTreeMap<String, usize> = (0..N).map(|n| (format!("order-{n}"), 1)).collect();
    assert_eq!(held, expected, "each msg_id stored exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_keeps_accepting_sends_when_its_leader_moves() {
    const N: usize = 400;
    const WINDOW: usize = 64;
    let (cluster, admin) = cluster_with_stream().await;
    let first = wait_for("stream leader", || cluster.stream_leader(STREAM)).await;
    let mut window = std::collections::VecDeque::new();
    let mut acks = Vec::new();
    for n in 0..N {
        if n == N / 4 {
            // The leader steps down while acks are in flight.
            let subject = format!("$JS.API.STREAM.LEADER.STEPDOWN.{STREAM}");
            let answer = admin
                .connection()
                .request(&subject, bytes::Bytes::new(), Duration::from_secs(5))
                .await
                .unwrap();
            let answer: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
            assert_eq!(answer["success"], true, "{answer}");
        }
        let options = SendOptions::new().with_msg_id(format!("order-{n}"));
        let payloads = vec![Payload::binary("b", vec![7u8; 128])];
        let (_, ack) = admin.jetstream_send_async("orders.new", payloads, options).await.unwrap();
        window.push_back(ack);
        if window.len() == WINDOW {
            acks.push(window.pop_front().unwrap().await.unwrap());
        }
    }
    for ack in window {
        acks.push(ack.await.unwrap());
    }
    assert_eq!(acks.len(), N);
    let moved = wait_for("a new stream leader", || cluster.stream_leader(STREAM)).await;
    assert_ne!(moved, first, "the leader moved");
    let held = stored(&admin).await;
    assert_eq!(held.len(), N);
    assert!(held.values().all(|&c| c == 1), "each msg_id stored once");
}
