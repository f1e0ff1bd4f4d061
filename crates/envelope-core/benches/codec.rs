//! The envelope codec against a plain copy of the same bytes, in one run.
//!
//! `cargo bench -p natsbridge-envelope-core --bench codec`; `cargo xtask
//! bench-codec` runs it and writes `docs/BENCHMARKS.md`. Throughput is in
//! envelope bytes, so build, parse and the copy compare directly.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use natsbridge_envelope_core::{Envelope, Payload, SendOptions};

/// UUID v4 strings from a xorshift generator: the formatting work of a
/// real id source without the operating system's randomness in the timing.
fn ids() -> impl FnMut() -> String {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    move || {
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (a, b) = (next(), next());
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&a.to_le_bytes());
        bytes[8..].copy_from_slice(&b.to_le_bytes());
        natsbridge_envelope_core::uuid_v4_from_random(bytes)
    }
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(1_763_807_400).unwrap()
}

fn envelope_with(payload: Payload) -> Envelope {
    let options = SendOptions::new().with_reply_to("bench.reply");
    Envelope::pack("bench.subject", vec![payload], options, &mut ids(), &now)
}

/// The envelope as a typical Rust peer would read it: `serde_json` into a
/// derived struct of `String`s, then the payload's base64 decoded (the
/// ordinary way, for comparison with `Envelope::from_json`).
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct PlainEnvelope {
    correlation_id: String,
    msg_id: String,
    timestamp: String,
    send_to: String,
    msg_purpose: String,
    sender_name: String,
    sender_id: String,
    receiver_name: String,
    receiver_id: String,
    reply_to: String,
    reply_to_msg_id: String,
    broker_url: String,
    metadata: serde_json::Map<String, serde_json::Value>,
    payloads: Vec<PlainRecord>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct PlainRecord {
    id: String,
    dataname: String,
    payload_type: String,
    transport: String,
    encoding: String,
    size: u64,
    data: String,
}

fn plain_parse(json: &[u8]) -> (PlainEnvelope, Vec<Vec<u8>>) {
    let env: PlainEnvelope = serde_json::from_slice(json).unwrap();
    let bytes = env
        .payloads
        .iter()
        .map(|p| base64_simd::STANDARD.decode_to_vec(p.data.as_bytes()).unwrap())
        .collect();
    (env, bytes)
}

fn large(c: &mut Criterion) {
    // 400 KB of incompressible-looking bytes (a real payload, not zeros).
    let bytes: Vec<u8> =
        (0..400_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let env = envelope_with(Payload::binary("blob", bytes));
    let json = env.to_json().unwrap();
    let mut group = c.benchmark_group("envelope_400KB");
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function("copy", |b| {
        // The baseline: allocate a buffer of the envelope's size and copy
        // the envelope into it, what any codec must do at least once.
        b.iter(|| black_box(black_box(&json[..]).to_vec()))
    });
    group.bench_function("build", |b| b.iter(|| black_box(black_box(&env).to_json().unwrap())));
    group.bench_function("parse_decode", |b| {
        b.iter(|| black_box(Envelope::from_json(black_box(&json)).unwrap()))
    });
    group.finish();
}

fn small(c: &mut Criterion) {
    let mut group = c.benchmark_group("envelope_128B");
    let text = "x".repeat(128);
    let options = SendOptions::new().with_reply_to("bench.reply");
    let mut id_source = ids();
    let sample = envelope_with(Payload::text("message", text.clone())).to_json().unwrap();
    group.throughput(Throughput::Bytes(sample.len() as u64));
    group.bench_function("copy", |b| b.iter(|| black_box(black_box(&sample[..]).to_vec())));
    let packed = envelope_with(Payload::text("message", text.clone()));
    group.bench_function("build_parse", |b| {
        b.iter(|| {
            let json = black_box(&packed).to_json().unwrap();
            black_box(Envelope::from_json(&json).unwrap())
        })
    });
    group.bench_function("pack_build_parse", |b| {
        b.iter(|| {
            let env = Envelope::pack(
                "bench.subject",
                vec![Payload::text("message", black_box(text.as_str()))],
                options.clone(),
                &mut id_source,
                &now,
            );
            let json = env.to_json().unwrap();
            black_box(Envelope::from_json(&json).unwrap())
        })
    });
    let env = Envelope::pack(
        "bench.subject",
        vec![Payload::text("message", text.as_str())],
        options.clone(),
        &mut id_source,
        &now,
    );
    group.bench_function("pack", |b| {
        b.iter(|| {
            black_box(Envelope::pack(
                "bench.subject",
                vec![Payload::text("message", black_box(text.as_str()))],
                options.clone(),
                &mut id_source,
                &now,
            ))
        })
    });
    group.bench_function("to_json", |b| b.iter(|| black_box(black_box(&env).to_json().unwrap())));
    let json = env.to_json().unwrap();
    group.bench_function("from_json", |b| {
        b.iter(|| black_box(Envelope::from_json(black_box(&json)).unwrap()))
    });
    group.bench_function("serde_derive_parse", |b| {
        b.iter(|| black_box(plain_parse(black_box(&json))))
    });
    group.finish();
}

criterion_group!(benches, large, small);
criterion_main!(benches);
