//! A 3-node cluster: the client keeps publishing when its node dies.

use std::time::Duration;

use futures_util::StreamExt;
use natsbridge_test_support::NatsCluster;
use natsbridge_transport_nats::{ConnectOptions, ReconnectPolicy, connect};

#[tokio::test]
async fn publishing_goes_on_when_the_connected_node_is_killed() {
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    // The subscriber sits on node 2; the publisher starts on node 0 and
    // knows every node.
    let subscriber = connect(urls[2].clone()).await.unwrap();
    let mut sub = subscriber.subscribe("cluster.events").await.unwrap();
    subscriber.sync().await.unwrap();
    let policy = ReconnectPolicy { base_delay: Duration::from_millis(20), ..Default::default() };
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
