//! The bridge against raw async-nats over a real nats-server, in one run.
//!
//! `cargo bench -p natsbridge --bench nats [-- --quick]`. Each comparison is
//! a ratio against its baseline measured in the same run (the machine is
//! shared and noisy): several rounds, median and min-max. Prints a markdown
//! section, also written to `$NATSBRIDGE_BENCH_OUT` when set (as `cargo
//! xtask bench` does).

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use natsbridge::envelope::{Envelope, EnvelopeView};
use natsbridge::transport::ConnectOptions;
use natsbridge::{Bridge, Payload, SendOptions};
use natsbridge_test_support::NatsServer;
use natsbridge_test_support::stats::median;

mod report;
mod rounds;

use crate::rounds::{Samples, Settings, Workload};

/// Who sends in a throughput run.
#[derive(Clone, Copy, PartialEq)]
enum Sender {
    /// Raw async-nats publishing the same pre-built envelope bytes each time.
    Raw,
    /// Raw async-nats publishing a fresh copy of those bytes each time: one
    /// allocation and copy per message, the least any sender of a fresh
    /// envelope pays.
    RawFresh,
    /// `Bridge::smartsend`: a fresh envelope per message, from payloads and
    /// options lent (kept by the sender, as a stream of messages does).
    Bridge,
    /// `PreparedSender::send` (`Bridge::prepare`): the same bytes, written
    /// straight from a template.
    Prepared,
    /// Raw async-nats publishing an envelope built per message with
    /// envelope-core alone (`Envelope::write_packed` from the same lent
    /// payloads and options, no bridge): the codec work any sender of a
    /// fresh envelope does, at its cheapest.
    CodecOnly,
}

/// Who receives in a throughput run.
#[derive(Clone, Copy, PartialEq)]
enum Receiver {
    /// A raw async-nats subscriber counting messages.
    Count,
    /// The bridge's lazy subscription (`Bridge::subscribe_lazy`), reading
    /// each envelope in place and decoding its payload into a buffer.
    Bridge,
    /// A raw async-nats subscriber doing the same codec work on each
    /// message with envelope-core alone (`EnvelopeView::parse`, the
    /// payload decoded into a buffer; no bridge): the codec work any
    /// decoding receiver does.
    CodecOnly,
}

/// Messages per second from first publish to last message received, with
/// the subscriber either raw (counting) or the bridge's (decoding).
async fn throughput(
    server: &NatsServer,
    payloads: &[Payload],
    body: &Bytes,
    n: usize,
    sender: Sender,
    receiver: Receiver,
) -> f64 {
    // A publisher faster than a decoding subscriber fills the client's
    // per-subscription buffer (65,536 messages by default) and async-nats
    // drops the overflow: room for the whole run keeps every message.
    let options = ConnectOptions::new(server.url()).subscription_capacity(n.max(65_536));
    let rx = Bridge::builder(&server.url()).connect_options(options).connect().await.unwrap();
    let tx = Bridge::builder(&server.url()).connect().await.unwrap();
    let subject = "bench.throughput";
    let mut bridge_sub = None;
    let mut raw_sub = None;
    if receiver == Receiver::Bridge {
        bridge_sub = Some(rx.subscribe_lazy(subject).await.unwrap());
    } else {
        raw_sub = Some(rx.connection().client().subscribe(subject).await.unwrap());
    }
    let parse = receiver == Receiver::CodecOnly;
    rx.connection().sync().await.unwrap();
    let started = Instant::now();
    let receiver = tokio::spawn(async move {
        let mut got = 0;
        let wait = Duration::from_secs(10);
        let mut buf = Vec::new();
        // What a receiver of the benchmark's envelope reads: the header and
        // every payload's bytes.
        let mut read = |view: EnvelopeView<'_>| {
            for payload in view.payloads() {
                buf.clear();
                payload.decode_into(&mut buf).unwrap();
            }
            std::hint::black_box((view.msg_id().len(), buf.len()));
        };
        while got < n {
            let ok = if let Some(sub) = bridge_sub.as_mut() {
                match tokio::time::timeout(wait, sub.next()).await {
                    Ok(Some(incoming)) => {
                        read(incoming.view().unwrap());
                        true
                    }
                    _ => false,
                }
            } else {
                let sub = raw_sub.as_mut().unwrap();
                match tokio::time::timeout(wait, sub.next()).await {
                    Ok(Some(message)) if parse => {
                        read(EnvelopeView::parse(&message.payload).unwrap());
                        true
                    }
                    Ok(Some(_)) => true,
                    _ => false,
                }
            };
            if !ok {
                break;
            }
            got += 1;
        }
        got
    });
    let raw = tx.connection().client();
    let prepared = tx.prepare(subject, SendOptions::default()).unwrap();
    let options = SendOptions::default();
    for _ in 0..n {
        match sender {
            Sender::Raw => raw.publish(subject, body.clone()).await.unwrap(),
            Sender::RawFresh => raw.publish(subject, Bytes::from(body.to_vec())).await.unwrap(),
            Sender::Bridge => {
                tx.smartsend(subject, payloads, &options).await.unwrap();
            }
            Sender::Prepared => {
                prepared.send(payloads).await.unwrap();
            }
            Sender::CodecOnly => {
                let mut json = Vec::new();
                let (ids, clock) = (&mut natsbridge::SystemIds, &natsbridge::SystemClock);
                Envelope::write_packed(&mut json, subject, payloads, &options, ids, clock).unwrap();
                raw.publish(subject, json.into()).await.unwrap();
            }
        }
    }
    raw.flush().await.unwrap();
    let got = receiver.await.unwrap();
    assert_eq!(got, n, "the subscriber lost messages");
    n as f64 / started.elapsed().as_secs_f64()
}

async fn raw_throughput(server: &NatsServer, body: Bytes, n: usize) -> f64 {
    throughput(server, &[], &body, n, Sender::Raw, Receiver::Count).await
}

async fn bridge_throughput(server: &NatsServer, payloads: Vec<Payload>, n: usize) -> f64 {
    throughput(server, &payloads, &Bytes::new(), n, Sender::Bridge, Receiver::Bridge).await
}

async fn sync(client: &async_nats::Client) {
    let _ = client.request(client.new_inbox(), Bytes::new()).await;
}

/// One request-reply run: round trips in microseconds for each pairing,
/// measured request by request in rotation so that all see the same
/// machine, and the client-side codec time inside the round trips.
#[derive(Default)]
struct RttRun {
    /// Raw async-nats client, raw echo service (the baseline).
    raw: Vec<f64>,
    /// `Bridge::request` to a bridge service answering with `Bridge::reply`.
    bridge: Vec<f64>,
    /// The bridge's client path to the raw echo service: the client side's cost.
    client_side: Vec<f64>,
    /// The raw client (pre-built bytes) to the bridge service: the service side's cost.
    service_side: Vec<f64>,
    /// The raw client to a raw service that only does the codec work a
    /// bridge service must (parse the request, build and serialize the
    /// answer): the floor for any envelope-speaking service.
    codec_service: Vec<f64>,
    /// Building the request (smartpack) inside a round trip, µs.
    pack: Vec<f64>,
    /// Reading the answer (smartunpack) inside a round trip, µs.
    unpack: Vec<f64>,
}

async fn rtt_run(server: &NatsServer, body: Bytes, payload: Payload, n: usize) -> RttRun {
    let raw_service = async_nats::connect(server.url()).await.unwrap();
    let mut raw_sub = raw_service.subscribe("bench.rr.raw").await.unwrap();
    let s2 = raw_service.clone();
    tokio::spawn(async move {
        while let Some(m) = raw_sub.next().await {
            if let Some(reply) = m.reply {
                s2.publish(reply, m.payload).await.unwrap();
            }
        }
    });
    let mut codec_sub = raw_service.subscribe("bench.rr.codec").await.unwrap();
    let s2 = raw_service.clone();
    tokio::spawn(async move {
        while let Some(m) = codec_sub.next().await {
            let Some(reply) = m.reply else { continue };
            let request = Envelope::from_json(&m.payload).unwrap();
            let options = request.reply_options().with_is_publish(false);
            let payloads = vec![Payload::text("answer", "ok")];
            let answer = Envelope::pack(
                &reply,
                payloads,
                options,
                &mut natsbridge::SystemIds,
                &natsbridge::SystemClock,
            );
            s2.publish(reply, answer.to_json().unwrap().into()).await.unwrap();
        }
    });
    sync(&raw_service).await;
    let service = Bridge::builder(&server.url()).connect().await.unwrap();
    let mut sub = service.subscribe("bench.rr.bridge").await.unwrap();
    let s2 = service.clone();
    tokio::spawn(async move {
        while let Some(Ok(request)) = sub.next().await {
            let payloads = vec![Payload::text("answer", "ok")];
            s2.reply(&request, payloads, SendOptions::default()).await.unwrap();
        }
    });
    service.connection().sync().await.unwrap();
    let raw_client = async_nats::connect(server.url()).await.unwrap();
    let client = Bridge::builder(&server.url()).connect().await.unwrap();
    let downloader = natsbridge::claimcheck::http::HttpDownloader::new().unwrap();
    let timeout = Duration::from_secs(5);
    let mut run = RttRun::default();
    for i in 0..n {
        for k in 0..5 {
            let t = Instant::now();
            match (i + k) % 5 {
                0 => {
                    raw_client.request("bench.rr.raw", body.clone()).await.unwrap();
                    run.raw.push(t.elapsed().as_secs_f64() * 1e6);
                }
                1 => {
                    let answer = client
                        .request(
                            "bench.rr.bridge",
                            vec![payload.clone()],
                            SendOptions::default(),
                            timeout,
                        )
                        .await
                        .unwrap();
                    std::hint::black_box(answer);
                    run.bridge.push(t.elapsed().as_secs_f64() * 1e6);
                }
                2 => {
                    // Bridge::request's steps, timed one by one.
                    let options = SendOptions::new().with_is_publish(false);
                    let max = client.connection().max_payload();
                    let (_, json) =
                        natsbridge::pack("bench.rr.raw", vec![payload.clone()], options, None, max)
                            .await
                            .unwrap();
                    let packed = t.elapsed();
                    let answer =
                        client.connection().request("bench.rr.raw", json, timeout).await.unwrap();
                    let t2 = Instant::now();
                    let envelope =
                        natsbridge::smartunpack(&answer.payload, &downloader).await.unwrap();
                    std::hint::black_box(envelope);
                    run.unpack.push(t2.elapsed().as_secs_f64() * 1e6);
                    run.pack.push(packed.as_secs_f64() * 1e6);
                    run.client_side.push(t.elapsed().as_secs_f64() * 1e6);
                }
                3 => {
                    raw_client.request("bench.rr.bridge", body.clone()).await.unwrap();
                    run.service_side.push(t.elapsed().as_secs_f64() * 1e6);
                }
                _ => {
                    raw_client.request("bench.rr.codec", body.clone()).await.unwrap();
                    run.codec_service.push(t.elapsed().as_secs_f64() * 1e6);
                }
            }
        }
    }
    run
}

fn envelope_bytes(payloads: &[Payload]) -> Bytes {
    let mut n = 0u64;
    let mut ids = || {
        n += 1;
        format!("00000000-0000-4000-8000-{n:012}")
    };
    let env = Envelope::pack(
        "bench",
        payloads.to_vec(),
        SendOptions::default(),
        &mut ids,
        &time::OffsetDateTime::now_utc,
    );
    env.to_json().unwrap().into()
}

/// The workspace root, where the peers and the venv live.
fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One run of a peer's bench script (tests/interop/python/bench.py,
/// tests/interop/node/bench.mjs): its own smartpack and smartunpack over the same
/// nats-server. Returns messages per second.
fn peer(lang: &str, server: &NatsServer, size: usize, n: usize) -> f64 {
    let root = workspace();
    let kind = if size <= 128 { "text" } else { "binary" };
    let mut cmd = match lang {
        "python" => {
            let mut c = Command::new(root.join(".venv/bin/python"));
            c.arg(root.join("tests/interop/python/bench.py"));
            c
        }
        _ => {
            let mut c = Command::new("node");
            c.arg("bench.mjs").current_dir(root.join("tests/interop/node"));
            c
        }
    };
    cmd.args(["--server", &server.url(), "--type", kind]).args([
        "--size",
        &size.to_string(),
        "--count",
        &n.to_string(),
    ]);
    let out = cmd.output().unwrap_or_else(|e| panic!("{lang} peer bench: {e} (cargo xtask setup)"));
    assert!(out.status.success(), "{lang} bench: {}", String::from_utf8_lossy(&out.stderr));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["received"].as_u64(), Some(n as u64), "{lang} subscriber lost messages");
    line["msgs_per_s"].as_f64().unwrap()
}

/// Nanoseconds per call of `f`: the median of three batches of at least
/// `budget` each.
fn time_ns(budget: Duration, mut f: impl FnMut()) -> f64 {
    let mut batches = Vec::new();
    for _ in 0..3 {
        let (started, mut calls) = (Instant::now(), 0u64);
        while started.elapsed() < budget {
            f();
            calls += 1;
        }
        batches.push(started.elapsed().as_nanos() as f64 / calls as f64);
    }
    median(&mut batches)
}

/// One point of a scaling curve: CPU time of each codec step and the
/// end-to-end rates over NATS.
struct Point {
    envelope: usize,
    pack: f64,
    to_json: f64,
    from_json: f64,
    raw: f64,
    bridge: f64,
}

impl Point {
    fn codec_us(&self) -> f64 {
        (self.pack + self.to_json + self.from_json) / 1e3
    }
}

async fn point(server: &NatsServer, payloads: Vec<Payload>, n: usize, budget: Duration) -> Point {
    let pack = || {
        Envelope::pack(
            "bench.bridge",
            payloads.clone(),
            SendOptions::default(),
            &mut natsbridge::SystemIds,
            &natsbridge::SystemClock,
        )
    };
    let env = pack();
    let json = env.to_json().unwrap();
    Point {
        envelope: json.len(),
        pack: time_ns(budget, || {
            std::hint::black_box(pack());
        }),
        to_json: time_ns(budget, || {
            std::hint::black_box(env.to_json().unwrap());
        }),
        from_json: time_ns(budget, || {
            std::hint::black_box(Envelope::from_json(&json).unwrap());
        }),
        raw: raw_throughput(server, json.clone().into(), n).await,
        bridge: bridge_throughput(server, payloads.clone(), n).await,
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

fn main() {
    let settings = Settings::from_args();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let server = NatsServer::start();
    let work = Workload::new(&server);
    let mut samples = Samples::default();
    runtime.block_on(samples.measure(&settings, &work));
    if settings.only.is_some() {
        return;
    }
    let (md, ratios) = report::report(&settings, &mut samples);
    println!("{md}");
    if let (Some(path), false) = (std::env::var_os("NATSBRIDGE_BENCH_OUT"), settings.smoke) {
        std::fs::write(path, md).unwrap();
    }
    if let (Some(path), false) = (std::env::var_os("NATSBRIDGE_BENCH_RATIOS"), settings.smoke) {
        std::fs::write(path, ratios).unwrap();
    }
}
