//! Core NATS and request-reply on a 3-node cluster: what survives the loss
//! of a node, and a server's lame duck mode (a rolling restart).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use natsbridge::transport::{ConnectOptions, ErrorKind as NatsKind};
use natsbridge::{Bridge, ErrorKind, Payload, PayloadValue, SendOptions};
use natsbridge_test_support::NatsCluster;

/// A bridge given only `url`: the other nodes it learns from the cluster.
async fn bridge_on(url: &str, lame_duck_reconnect: bool) -> Bridge {
    let options = ConnectOptions::new(url).lame_duck_reconnect(lame_duck_reconnect).reconnect(
        natsbridge::transport::ReconnectPolicy::new()
            .with_base_delay(Duration::from_millis(20))
            .with_max_delay(Duration::from_millis(200)),
    );
    Bridge::builder(url).connect_options(options).connect().await.unwrap()
}

/// Answers every request on `subject` with a text payload naming `who`;
/// counts the answers.
async fn responder(bridge: &Bridge, subject: &str, who: &'static str) -> Arc<AtomicUsize> {
    let answered = Arc::new(AtomicUsize::new(0));
    let mut requests = bridge.subscribe(subject).await.unwrap();
    bridge.connection().sync().await.unwrap();
    let (b, n) = (bridge.clone(), answered.clone());
    tokio::spawn(async move {
        while let Some(item) = requests.next().await {
            let Ok(request) = item else { continue };
            let answer = vec![Payload::text("who", who)];
            if b.reply(&request, answer, SendOptions::default()).await.is_ok() {
                n.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    answered
}

async fn ask(bridge: &Bridge, subject: &str) -> natsbridge::Result<String> {
    let answer = bridge
        .request(
            subject,
            vec![Payload::text("q", "?")],
            SendOptions::default(),
            Duration::from_secs(5),
        )
        .await?;
    match answer.payloads[0].value().unwrap() {
        PayloadValue::Text(text) => Ok(text),
        other => panic!("not text: {other:?}"),
    }
}

/// Waits (polling, up to 20 s) until `bridge` is connected to a node other
/// than the one on `port`.
async fn wait_moved_off(bridge: &Bridge, port: u16) {
    for _ in 0..1000 {
        if bridge.connection().server_port() != port && bridge.connection().sync().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the connection never left the node on port {port}");
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_and_the_reply_inbox_survive_the_loss_of_their_node() {
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    // Given node 0 alone: nodes 1 and 2 are known only from the cluster's
    // INFO (connect_urls).
    let watcher = bridge_on(&urls[0], true).await;
    let mut events = watcher.subscribe("cluster.events").await.unwrap();
    watcher.connection().sync().await.unwrap();
    let service = bridge_on(&urls[2], true).await;
    responder(&service, "cluster.svc", "service").await;
    assert_eq!(ask(&watcher, "cluster.svc").await.unwrap(), "service");

    // A request in flight when its node dies ends by its deadline: it is
    // answered (the request or the answer got through) or times out.
    let silent = bridge_on(&urls[2], true).await;
    let mut swallowed = silent.subscribe("cluster.silent").await.unwrap();
    silent.connection().sync().await.unwrap();
    let pending = {
        let watcher = watcher.clone();
        tokio::spawn(async move {
            watcher
                .request(
                    "cluster.silent",
                    vec![Payload::text("q", "?")],
                    SendOptions::default(),
                    Duration::from_secs(2),
                )
                .await
        })
    };
    swallowed.next().await.unwrap().unwrap();

    let port0 = cluster.nodes[0].port();
    cluster.nodes[0].kill();
    let ended = tokio::time::timeout(Duration::from_secs(10), pending).await;
    let err = ended.expect("the request outlived its deadline").unwrap().unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Nats(NatsKind::TimedOut), "{err}");

    wait_moved_off(&watcher, port0).await;
    // Its subscription was made again on the new node...
    let publisher = bridge_on(&urls[1], true).await;
    publisher
        .smartsend("cluster.events", vec![Payload::text("t", "after")], SendOptions::default())
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("the subscription did not survive its node")
        .unwrap()
        .unwrap();
    assert_eq!(
        got.to_envelope().unwrap().payloads[0].value().unwrap(),
        PayloadValue::Text("after".into())
    );
    // ...and so was the shared reply inbox.
    assert_eq!(ask(&watcher, "cluster.svc").await.unwrap(), "service");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lame_duck_server_is_left_before_it_evicts() {
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    let port0 = cluster.nodes[0].port();
    // The responder on node 0, the requester on node 1.
    let service = bridge_on(&urls[0], true).await;
    let answered = responder(&service, "ldm.svc", "service").await;
    let requester = bridge_on(&urls[1], true).await;
    assert_eq!(ask(&requester, "ldm.svc").await.unwrap(), "service");

    // Requests keep coming while node 0 goes into lame duck mode.
    let failures = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (requester, failures, sent, stop) =
            (requester.clone(), failures.clone(), sent.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                sent.fetch_add(1, Ordering::SeqCst);
                if let Err(e) = ask(&requester, "ldm.svc").await {
                    eprintln!("request failed: {e}");
                    failures.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    while sent.load(Ordering::SeqCst) < 20 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.nodes[0].lame_duck();
    wait_moved_off(&service, port0).await;
    // Moved at the notice, not at the eviction: node 0 has not begun to
    // close its clients (it does after its grace period, and logs it).
    let log = cluster.nodes[0].log();
    assert!(log.contains("Entering lame duck mode"), "{log}");
    assert!(!log.contains("Closing existing clients"), "moved only when evicted:\n{log}");
    // Requests go on being answered by the moved responder.
    let before = answered.load(Ordering::SeqCst);
    while answered.load(Ordering::SeqCst) < before + 50 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
    // Subscribed on another node before the old subscription was drained:
    // not one request lost or answered "no responders".
    assert_eq!(failures.load(Ordering::SeqCst), 0, "of {} requests", sent.load(Ordering::SeqCst));
}
