//! Soak: mixed envelopes at a high rate for a fixed time through a real
//! nats-server and the local file server, receiver in the same process.
//!
//! `cargo xtask soak [--seconds N]` runs `cargo bench -p natsbridge --bench
//! soak -- --bench --seconds N` and writes `docs/soak.md`. Without `--bench`
//! (as `cargo test --all-targets` runs it) it soaks for two seconds and
//! still checks that nothing was lost.
//!
//! Every message is checked on arrival (sequence number, payload sizes and
//! the first bytes of each payload); the report gives throughput, latency
//! percentiles (publish to decoded, links downloaded), the process's RSS
//! sampled every second, and `lost`, which must be 0: the run fails
//! otherwise.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use natsbridge::{Bridge, Payload, SendOptions};
use natsbridge_fileserver::FileServer;
use natsbridge_test_support::NatsServer;

/// The payloads of message `seq`: always a 128 B text; every 2nd a
/// dictionary, every 4th a 50 kB binary, every 64th a 700 kB binary that
/// goes by link.
fn payloads(seq: u64) -> Vec<Payload> {
    let fill = |n: usize| -> Vec<u8> { (0..n).map(|i| (seq as usize + i) as u8).collect() };
    let mut out = vec![Payload::text("text", format!("{seq:0>128}"))];
    if seq.is_multiple_of(2) {
        out.push(
            Payload::dictionary("dict", &serde_json::json!({"seq": seq, "tags": ["a", "b"]}))
                .expect("a dictionary"),
        );
    }
    if seq.is_multiple_of(4) {
        out.push(Payload::binary("blob", fill(50_000)));
    }
    if seq.is_multiple_of(64) {
        out.push(Payload::binary("large", fill(700_000)));
    }
    out
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Latencies in buckets 2% wide (1 µs to over an hour), so the harness's
/// own memory stays constant and the RSS samples show the bridge's.
struct Histogram {
    counts: Vec<u64>,
}

impl Histogram {
    const GROWTH: f64 = 1.02;

    fn new() -> Histogram {
        Histogram { counts: vec![0; 1200] }
    }

    fn record(&mut self, us: f64) {
        let bucket = (us.max(1.0).ln() / Self::GROWTH.ln()) as usize;
        let last = self.counts.len() - 1;
        self.counts[bucket.min(last)] += 1;
    }

    /// The upper edge of the bucket holding quantile `q`, in µs.
    fn quantile(&self, q: f64) -> f64 {
        let total: u64 = self.counts.iter().sum();
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::GROWTH.powi(i as i32 + 1);
            }
        }
        f64::NAN
    }
}

/// What the receiver has seen so far: one bit per sequence number (to catch
/// duplicates and count losses) and a latency histogram, both bounded.
struct Seen {
    latencies: Histogram,
    seqs: Vec<u64>,
    delivered: u64,
    bytes: u64,
    errors: u64,
}

impl Seen {
    /// Marks `seq` as delivered; false if it already was.
    fn insert(&mut self, seq: u64) -> bool {
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        if self.seqs.len() <= word {
            self.seqs.resize(word + 1, 0);
        }
        let fresh = self.seqs[word] & bit == 0;
        self.seqs[word] |= bit;
        self.delivered += u64::from(fresh);
        fresh
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let seconds: u64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(if full { 60 } else { 2 });

    let server = NatsServer::start();
    let store_dir = tempfile::tempdir().expect("a temporary directory");
    let store = FileServer::builder().dir(store_dir.path()).bind("127.0.0.1:0").await.unwrap();
    let sender = Bridge::builder(&server.url()).fileserver(store.url()).connect().await.unwrap();
    let receiver = Bridge::builder(&server.url()).fileserver(store.url()).connect().await.unwrap();
    let mut sub = receiver.subscribe("soak.mixed").await.unwrap();
    receiver.connection().sync().await.unwrap();

    let start = Instant::now();
    // A bit per message for a few million messages, reserved up front.
    let seen = Arc::new(Mutex::new(Seen {
        latencies: Histogram::new(),
        seqs: Vec::with_capacity(1 << 16),
        delivered: 0,
        bytes: 0,
        errors: 0,
    }));
    let delivered = Arc::new(AtomicU64::new(0));
    let receive = {
        let (seen, delivered) = (seen.clone(), delivered.clone());
        tokio::spawn(async move {
            while let Some(item) = sub.next().await {
                let got = match item {
                    Ok(got) => got,
                    Err(rejected) => {
                        eprintln!("soak: rejected: {}", rejected.error);
                        seen.lock().unwrap().errors += 1;
                        continue;
                    }
                };
                let env = got.to_envelope().unwrap();
                let (seq, sent_ns) = env.correlation_id.split_once(':').expect("seq:ns");
                let (seq, sent_ns): (u64, u64) = (seq.parse().unwrap(), sent_ns.parse().unwrap());
                let latency_us = (start.elapsed().as_nanos() as u64 - sent_ns) as f64 / 1e3;
                let expected = payloads(seq);
                let intact = env.payloads.len() == expected.len()
                    && env.payloads.iter().zip(&expected).all(|(r, p)| {
                        let (got, want) = (r.bytes().unwrap(), &p.bytes);
                        got.len() == want.len()
                            && got[..got.len().min(64)] == want[..want.len().min(64)]
                    });
                let bytes: u64 =
                    env.payloads.iter().map(|r| r.bytes().map_or(0, |b| b.len() as u64)).sum();
                let mut s = seen.lock().unwrap();
                if !intact || !s.insert(seq) {
                    eprintln!("soak: message {seq} damaged or duplicated");
                    s.errors += 1;
                }
                s.latencies.record(latency_us);
                s.bytes += bytes;
                drop(s);
                delivered.fetch_add(1, Ordering::Release);
            }
        })
    };

    // Send as fast as the receiver keeps up, at most 2,000 in flight (a
    // producer far ahead of its consumer only measures the slow-consumer
    // path, which has its own test).
    let mut rss = vec![(0u64, rss_kib())];
    let mut next_sample = Duration::from_secs(1);
    let mut sent = 0u64;
    let until = Duration::from_secs(seconds);
    while start.elapsed() < until {
        if sent - delivered.load(Ordering::Acquire) >= 2_000 {
            tokio::time::sleep(Duration::from_micros(200)).await;
            continue;
        }
        let options = SendOptions::new()
            .with_correlation_id(format!("{sent}:{}", start.elapsed().as_nanos()));
        sender.smartsend("soak.mixed", payloads(sent), options).await.unwrap();
        sent += 1;
        if start.elapsed() >= next_sample {
            rss.push((next_sample.as_secs(), rss_kib()));
            next_sample += Duration::from_secs(1);
        }
    }
    sender.connection().flush().await.unwrap();
    let drain_until = Instant::now() + Duration::from_secs(30);
    while delivered.load(Ordering::Acquire) < sent && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    rss.push((elapsed.ceil() as u64, rss_kib()));
    receive.abort();
    let (lost, errors, report) = {
        let seen = seen.lock().unwrap();
        let lost = sent.saturating_sub(seen.delivered);
        (lost, seen.errors, report(seconds, sent, lost, elapsed, &seen, &rss))
    };
    println!("{report}");
    if let Some(path) = std::env::var_os("NATSBRIDGE_SOAK_OUT") {
        std::fs::write(path, report).unwrap();
    }
    store.shutdown().await;
    assert_eq!(lost, 0, "soak lost {lost} of {sent} messages");
    assert_eq!(errors, 0, "soak saw damaged, duplicated or rejected messages");
}

/// The markdown report of a run.
fn report(
    seconds: u64,
    sent: u64,
    lost: u64,
    elapsed: f64,
    seen: &Seen,
    rss: &[(u64, u64)],
) -> String {
    let delivered = seen.delivered as f64;
    let (p50, p99, max) =
        (seen.latencies.quantile(0.5), seen.latencies.quantile(0.99), seen.latencies.quantile(1.0));
    let mib = |kib: u64| kib as f64 / 1024.0;
    let settled: Vec<u64> = rss.iter().skip(rss.len() / 4).map(|r| r.1).collect();
    let (low, high) =
        (settled.iter().copied().min().unwrap_or(0), settled.iter().copied().max().unwrap_or(0));
    let mut md = format!(
        "# Soak\n\n\
         Written by `cargo xtask soak` (`cargo bench -p natsbridge --bench soak -- --bench\n\
         --seconds {seconds}`); do not edit by hand. One process sends mixed envelopes as fast as\n\
         its receiver keeps up (at most 2,000 in flight) through a real nats-server and the\n\
         local file server on loopback: every message a 128 B text, every 2nd a dictionary,\n\
         every 4th a 50 kB binary, every 64th a 700 kB binary that goes by link (uploaded,\n\
         downloaded, SHA-256 checked). Each message is checked on arrival (sequence, sizes,\n\
         first bytes); latency is from `smartsend` to decoded (links downloaded). Sender and\n\
         receiver share the process, so the RSS is both.\n\n\
         | measure | value |\n|---|---|\n\
         | duration | {elapsed:.1} s |\n\
         | messages sent / delivered / lost | {sent} / {delivered} / **{lost}** |\n\
         | damaged, duplicated or rejected | {} |\n\
         | throughput | {:.0} msgs/s, {:.1} MB/s of payload |\n\
         | latency p50 / p99 / max (2% buckets) | {:.0} µs / {:.0} µs / {:.1} ms |\n\
         | RSS after warm-up, min / max | {:.1} MiB / {:.1} MiB |\n\n\
         RSS over time (MiB):",
        seen.errors,
        delivered / elapsed,
        seen.bytes as f64 / elapsed / 1e6,
        p50,
        p99,
        max / 1e3,
        mib(low),
        mib(high),
    );
    for (t, kib) in rss {
        md += &format!(" {t} s {:.1};", mib(*kib));
    }
    md.pop();
    md += ".\n";
    md
}
