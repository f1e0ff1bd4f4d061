//! `natsbridge demo`: the seeds' walkthroughs, end to end, on the local
//! default (its own nats-server and file server).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use natsbridge::{Bridge, Envelope, Payload, PayloadValue, SendOptions, sha256_hex};
use serde_json::json;

use crate::local::{LocalFiles, NatsProcess};

/// Bytes that look like data rather than zeros.
fn sample(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32).map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8).collect()
}

struct Row {
    walkthrough: &'static str,
    dataname: String,
    payload_type: String,
    transport: String,
    size: u64,
}

pub(crate) async fn run() -> anyhow::Result<ExitCode> {
    println!("natsbridge demo: starting a local nats-server and file server...");
    let nats = NatsProcess::start()?;
    let files = LocalFiles::start().await?;
    println!("  nats-server  {}", nats.url);
    println!("  file server  {} (Plik API)", files.url());
    let result = walkthroughs(&nats.url, files.url()).await;
    files.stop().await;
    drop(nats);
    let (rows, timings) = result?;
    println!();
    println!(
        "{:<26} {:<16} {:<11} {:<9} {:>10}",
        "walkthrough", "payload", "type", "transport", "bytes"
    );
    for r in &rows {
        println!(
            "{:<26} {:<16} {:<11} {:<9} {:>10}",
            r.walkthrough, r.dataname, r.payload_type, r.transport, r.size
        );
    }
    println!();
    for (name, elapsed) in timings {
        println!(
            "{name:<26} {:>8.1} ms (send, deliver, decode, verify)",
            elapsed.as_secs_f64() * 1e3
        );
    }
    println!("\nEvery payload arrived with the bytes and value it was sent with.");
    Ok(ExitCode::SUCCESS)
}

type Report = (Vec<Row>, Vec<(&'static str, Duration)>);

async fn walkthroughs(nats_url: &str, files_url: &str) -> anyhow::Result<Report> {
    let connect = || Bridge::builder(nats_url).fileserver(files_url).connect();
    let alice = connect().await.context("connecting the sender")?;
    let bob = connect().await.context("connecting the receiver")?;
    let mut rows = Vec::new();
    let mut timings = Vec::new();

    // 1. Chat with mixed content: text, an image, and a large file by link.
    let avatar = sample(15_433, 1);
    let document = sample(2_000_000, 2);
    let chat = vec![
        Payload::text("message_text", "Hello!"),
        Payload::image("user_avatar", avatar),
        Payload::binary("large_document", document),
    ];
    let (received, elapsed) = exchange(&alice, &bob, "demo.chat.room1", chat.clone()).await?;
    verify(&chat, &received)?;
    record(&mut rows, "1. chat, mixed content", &received);
    timings.push(("1. chat, mixed content", elapsed));

    // 2. Dictionary exchange.
    let config =
        json!({"wifi_ssid": "MyNetwork", "wifi_password": "password123", "update_interval": 60});
    let dict = vec![Payload::dictionary("config", &config)?];
    let (received, elapsed) = exchange(&alice, &bob, "demo.device.config", dict.clone()).await?;
    verify(&dict, &received)?;
    ensure!(received.payloads[0].value()? == PayloadValue::Json(config), "dictionary changed");
    record(&mut rows, "2. dictionary exchange", &received);
    timings.push(("2. dictionary exchange", elapsed));

    // 3. Table exchange (jsontable: what every peer, the browser included, reads).
    let students = json!([
        {"id": 1, "name": "Alice", "score": 95},
        {"id": 2, "name": "Bob", "score": 88},
        {"id": 3, "name": "Charlie", "score": 92}
    ]);
    let table =
        vec![Payload::new("students", natsbridge::PayloadType::JsonTable, students.to_string())];
    let (received, elapsed) = exchange(&alice, &bob, "demo.data.analysis", table.clone()).await?;
    verify(&table, &received)?;
    record(&mut rows, "3. table exchange", &received);
    timings.push(("3. table exchange", elapsed));

    // 4. Request-response: bob answers alice's command on reply_to.
    let started = Instant::now();
    let mut commands = bob.subscribe("demo.device.command").await?;
    let mut responses = alice.subscribe("demo.device.response").await?;
    barrier(&bob).await?;
    barrier(&alice).await?;
    let command = vec![Payload::dictionary("command", &json!({"action": "read_sensor"}))?];
    let options = SendOptions { reply_to: "demo.device.response".into(), ..SendOptions::default() };
    let (request, _) = alice.smartsend("demo.device.command", command, options).await?;
    let incoming = next(&mut commands).await?;
    let reading = json!({"sensor_id": "sensor-001", "value": 42.5});
    bob.reply(&incoming, vec![Payload::dictionary("data", &reading)?], SendOptions::default())
        .await?
        .context("the request asked for no reply")?;
    let response = next(&mut responses).await?.envelope;
    ensure!(response.reply_to_msg_id == request.msg_id, "the reply does not name the request");
    ensure!(response.correlation_id == request.correlation_id, "correlation id changed");
    ensure!(response.payloads[0].value()? == PayloadValue::Json(reading), "reading changed");
    record(&mut rows, "4. request (command)", &incoming.envelope);
    record(&mut rows, "4. response (reading)", &response);
    timings.push(("4. request-response", started.elapsed()));
    Ok((rows, timings))
}

/// Waits until the server has registered `bridge`'s subscriptions.
async fn barrier(bridge: &Bridge) -> anyhow::Result<()> {
    Ok(bridge.connection().sync().await?)
}

async fn next(sub: &mut natsbridge::Subscription) -> anyhow::Result<natsbridge::Received> {
    match tokio::time::timeout(Duration::from_secs(30), sub.next()).await {
        Ok(Some(Ok(received))) => Ok(received),
        Ok(Some(Err(rejected))) => Err(rejected.error.into()),
        Ok(None) => bail!("subscription ended"),
        Err(_) => bail!("no message within 30 s"),
    }
}

async fn exchange(
    from: &Bridge,
    to: &Bridge,
    subject: &str,
    payloads: Vec<Payload>,
) -> anyhow::Result<(Envelope, Duration)> {
    let mut sub = to.subscribe(subject).await?;
    barrier(to).await?;
    let started = Instant::now();
    from.smartsend(subject, payloads, SendOptions::default()).await?;
    let received = next(&mut sub).await?;
    Ok((received.envelope, started.elapsed()))
}

fn verify(sent: &[Payload], received: &Envelope) -> anyhow::Result<()> {
    ensure!(sent.len() == received.payloads.len(), "payload count changed");
    for (p, r) in sent.iter().zip(&received.payloads) {
        let bytes = r.bytes().with_context(|| format!("{} was not fetched", r.dataname))?;
        ensure!(
            sha256_hex(bytes) == sha256_hex(&p.bytes),
            "payload {} arrived different from what was sent",
            p.dataname
        );
    }
    Ok(())
}

fn record(rows: &mut Vec<Row>, walkthrough: &'static str, envelope: &Envelope) {
    for r in &envelope.payloads {
        rows.push(Row {
            walkthrough,
            dataname: r.dataname.clone(),
            payload_type: r.payload_type.to_string(),
            transport: r.transport().to_string(),
            size: r.size().unwrap_or(0),
        });
    }
}
