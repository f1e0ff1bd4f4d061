//! A rolling restart of a 3-node JetStream cluster under load, with and
//! without the lame duck handling (`ConnectOptions::lame_duck_reconnect`),
//! in the same run: `cargo xtask roll` (writes `docs/rolling.md`).
//!
//! Each round starts a fresh cluster with an R3 stream, one `reply`-style
//! responder (a single replica), a requester sending requests one after
//! the other, and a sender of JetStream envelopes (each `jetstream_send`
//! that fails is sent again with the same `msg_id`, as a caller would).
//! Then each node in turn is put in lame duck mode, left to exit, started
//! again, and waited for (routes, meta leader, the stream current). Counted:
//! failed requests (by kind), the longest request, JetStream envelopes acked
//! but missing from the stream, and any stored twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use natsbridge::transport::{ConnectOptions, ReconnectPolicy, StreamConfig};
use natsbridge::{Bridge, Payload, SendOptions};
use natsbridge_test_support::NatsCluster;

/// What the clients do about a rolling restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    /// The library's default: lame duck handling on, `request` sends again
    /// after "no responders".
    #[default]
    Handled,
    /// Lame duck handling off; `request` as above.
    Unhandled,
    /// Lame duck handling off, and each request a plain NATS request of the
    /// envelope (no second send): what the bridge did before.
    Before,
}

#[derive(Debug, Default)]
struct Round {
    mode: Mode,
    requests: usize,
    failed: HashMap<String, usize>,
    longest: Duration,
    p50: Duration,
    sends: usize,
    resent: usize,
    lost: usize,
    duplicated: usize,
    roll: Duration,
}

async fn bridge(urls: &[String], handled: bool) -> Bridge {
    let mut options = ConnectOptions::new(urls[0].clone()).lame_duck_reconnect(handled).reconnect(
        ReconnectPolicy::new()
            .with_base_delay(Duration::from_millis(20))
            .with_max_delay(Duration::from_millis(500)),
    );
    for url in &urls[1..] {
        options = options.server(url.clone());
    }
    Bridge::builder(&urls[0]).connect_options(options).connect().await.expect("connecting")
}

async fn round(mode: Mode) -> Round {
    let handled = mode == Mode::Handled;
    let mut cluster = tokio::task::block_in_place(|| NatsCluster::start_jetstream(3));
    let urls = cluster.urls();
    let service = bridge(&urls, handled).await;
    let requester = bridge(&urls, handled).await;
    let sender = bridge(&urls, handled).await;
    let js = sender.connection().jetstream();
    js.ensure_stream_with(StreamConfig {
        replicas: 3,
        ..StreamConfig::new("ROLL", &["roll.js.>"])
    })
    .await
    .expect("the stream");
    tokio::task::block_in_place(|| cluster.wait_stream_ready("ROLL"));

    let mut requests = service.queue_subscribe("roll.svc", "natsbridge").await.unwrap();
    service.connection().sync().await.unwrap();
    let responder = service.clone();
    tokio::spawn(async move {
        while let Some(item) = requests.next().await {
            let Ok(request) = item else { continue };
            let _ = responder
                .reply(&request, vec![Payload::text("a", "ok")], SendOptions::default())
                .await;
        }
    });

    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (requester, stop) = (requester.clone(), stop.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failed: HashMap<String, usize> = HashMap::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let answer = requester
                    .request(
                        "roll.svc",
                        vec![Payload::text("q", "?")],
                        SendOptions::default(),
                        Duration::from_secs(5),
                    )
                    .await;
                latencies.push(started.elapsed());
                if let Err(e) = answer {
                    *failed.entry(format!("{:?}", e.kind())).or_default() += 1;
                }
            }
            (latencies, failed)
        })
    };
    let sends = {
        let (sender, stop) = (sender.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut acked, mut resent) = (Vec::new(), 0usize);
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let msg_id = format!("roll-{n}");
                loop {
                    let options = SendOptions::new().with_msg_id(msg_id.clone());
                    match sender
                        .jetstream_send(
                            "roll.js.x",
                            vec![Payload::text("n", n.to_string())],
                            options,
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(_) => {
                            resent += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
                acked.push(msg_id);
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (acked, resent)
        })
    };

    tokio::time::sleep(Duration::from_millis(500)).await;
    let rolled = Instant::now();
    for i in 0..3 {
        tokio::task::block_in_place(|| {
            cluster.nodes[i].lame_duck();
            cluster.nodes[i].wait_exit(Duration::from_secs(90));
            cluster.nodes[i].restart();
            cluster.wait_ready();
            cluster.wait_stream_ready("ROLL");
        });
    }
    let roll = rolled.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, failed) = load.await.unwrap();
    let (acked, resent) = sends.await.unwrap();

    // What the stream holds, by msg_id.
    let consumer = sender.jetstream_consumer("ROLL", "check").await.expect("a consumer");
    let mut stored: HashMap<String, usize> = HashMap::new();
    loop {
        let batch = consumer.fetch(500, Duration::from_secs(2)).await.expect("fetching");
        if batch.is_empty() {
            break;
        }
        for received in batch.into_iter().flatten() {
            *stored.entry(received.to_envelope().unwrap().msg_id).or_default() += 1;
        }
    }
    latencies.sort();
    Round {
        mode,
        requests: latencies.len(),
        failed,
        longest: latencies.last().copied().unwrap_or_default(),
        p50: latencies.get(latencies.len() / 2).copied().unwrap_or_default(),
        sends: acked.len(),
        resent,
        lost: acked.iter().filter(|id| !stored.contains_key(*id)).count(),
        duplicated: stored.values().filter(|n| **n > 1).count(),
        roll,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; only `cargo xtask roll` runs it.
    let Ok(out) = std::env::var("NATSBRIDGE_ROLL_OUT") else {
        eprintln!("rolling: set NATSBRIDGE_ROLL_OUT (cargo xtask roll) to run it");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let rounds: Vec<Round> = [Mode::Handled, Mode::Unhandled, Mode::Before]
        .into_iter()
        .map(|m| runtime.block_on(round(m)))
        .collect();
    let mut text = String::from(
        "# A rolling restart under load\n\n\
         Written by `cargo xtask roll` (`crates/natsbridge/benches/rolling.rs`): a 3-node \
         cluster on loopback with an R3 stream; each node in turn put in lame duck mode \
         (SIGUSR2), left to exit, started again and waited for, while one responder \
         (a single replica, in a queue group) answers a requester's requests sent one \
         after the other (5 s timeout) and a sender publishes envelopes to the stream \
         (`jetstream_send`, sent again with the same `msg_id` when it fails). All rounds in \
         the same run, each on a fresh cluster.\n\n\
         | lame duck handling | requests | failed | p50 | longest | JetStream sends | sent again | lost | duplicated | roll took |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in &rounds {
        let failed: usize = r.failed.values().sum();
        let kinds = if r.failed.is_empty() {
            String::new()
        } else {
            let mut k: Vec<String> = r.failed.iter().map(|(k, n)| format!("{n} {k}")).collect();
            k.sort();
            format!(" ({})", k.join(", "))
        };
        text += &format!(
            "| {} | {} | {}{} | {:.2} ms | {:.0} ms | {} | {} | {} | {} | {:.1} s |\n",
            match r.mode {
                Mode::Handled => "on (the default)",
                Mode::Unhandled => "off",
                Mode::Before =>
                    "off, and plain NATS requests (no second send after no responders: the bridge before)",
            },
            r.requests,
            failed,
            kinds,
            r.p50.as_secs_f64() * 1e3,
            r.longest.as_secs_f64() * 1e3,
            r.sends,
            r.resent,
            r.lost,
            r.duplicated,
            r.roll.as_secs_f64(),
        );
        eprintln!("{r:?}");
    }
    std::fs::write(&out, text).expect("writing the report");
    eprintln!("rolling: wrote {out}");
}
