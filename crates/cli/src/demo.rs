//! `natsbridge demo`: the seeds' walkthroughs, end to end, on the local
//! default (its own nats-server and file server).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use std::sync::Arc;

use anyhow::{Context, bail, ensure};
use natsbridge::table::arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
use natsbridge::table::{self, RecordBatch};
use natsbridge::{Bridge, Envelope, Payload, PayloadType, PayloadValue, SendOptions, sha256_hex};
use serde_json::json;

use crate::local::{LocalFiles, NatsProcess};

/// Bytes that look like data rather than zeros.
fn sample(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32).map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8).collect()
}

struct Row {
    dataname: String,
    payload_type: String,
    transport: String,
    size: u64,
}

/// One message of a walkthrough, as it arrived.
struct Message {
    label: &'static str,
    subject: String,
    payloads: Vec<Row>,
}

struct Walkthrough {
    name: &'static str,
    elapsed: Duration,
    messages: Vec<Message>,
}

pub(crate) async fn run(as_json: bool) -> anyhow::Result<ExitCode> {
    if !as_json {
        println!("natsbridge demo: starting a local nats-server and file server...");
    }
    let nats = NatsProcess::start()?;
    let files = LocalFiles::start().await?;
    if !as_json {
        println!("  nats-server  {}", nats.url);
        println!("  file server  {} (Plik API)", files.url());
    }
    let result = walkthroughs(&nats.url, files.url()).await;
    let (nats_url, files_url) = (nats.url.clone(), files.url().to_owned());
    files.stop().await;
    drop(nats);
    let walkthroughs = result?;
    if as_json {
        let report = json!({
            "nats_url": nats_url,
            "fileserver_url": files_url,
            "walkthroughs": walkthroughs.iter().map(|w| json!({
                "name": w.name,
                "elapsed_ms": w.elapsed.as_secs_f64() * 1e3,
                "messages": w.messages.iter().map(|m| json!({
                    "label": m.label,
                    "subject": m.subject,
                    "payloads": m.payloads.iter().map(|r| json!({
                        "dataname": r.dataname,
                        "payload_type": r.payload_type,
                        "transport": r.transport,
                        "size": r.size,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "verified": true,
        });
        crate::print_json(report.to_string().as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    println!();
    println!(
        "{:<26} {:<16} {:<11} {:<9} {:>10}",
        "walkthrough", "payload", "type", "transport", "bytes"
    );
    for m in walkthroughs.iter().flat_map(|w| &w.messages) {
        for r in &m.payloads {
            println!(
                "{:<26} {:<16} {:<11} {:<9} {:>10}",
                m.label, r.dataname, r.payload_type, r.transport, r.size
            );
        }
    }
    println!();
    for w in &walkthroughs {
        println!(
            "{:<26} {:>8.1} ms (send, deliver, decode, verify)",
            w.name,
            w.elapsed.as_secs_f64() * 1e3
        );
    }
    println!("\nEvery payload arrived with the bytes and value it was sent with.");
    Ok(ExitCode::SUCCESS)
}

async fn walkthroughs(nats_url: &str, files_url: &str) -> anyhow::Result<Vec<Walkthrough>> {
    // The command line's own connection: link uploads and downloads show
    // progress bars on a terminal.
    let receiving = crate::connect::Receiving::defaults();
    let connect = || {
        crate::connect::connect(crate::connect::Target::url(nats_url), Some(files_url), &receiving)
    };
    let alice = connect().await.context("connecting the sender")?;
    let bob = connect().await.context("connecting the receiver")?;
    let mut done = Vec::new();

    // 1. Chat with mixed content: text, an image, and a large file by link.
    let avatar = sample(15_433, 1);
    let document = sample(2_000_000, 2);
    let chat = vec![
        Payload::text("message_text", "Hello!"),
        Payload::image("user_avatar", avatar),
        Payload::binary("large_document", document),
    ];
    let subject = "demo.chat.room1";
    let (received, elapsed) = exchange(&alice, &bob, subject, chat.clone()).await?;
    verify(&chat, &received)?;
    let name = "1. chat, mixed content";
    done.push(Walkthrough { name, elapsed, messages: vec![message(name, subject, &received)] });

    // 2. Dictionary exchange.
    let config =
        json!({"wifi_ssid": "MyNetwork", "wifi_password": "password123", "update_interval": 60});
    let dict = vec![Payload::dictionary("config", &config)?];
    let subject = "demo.device.config";
    let (received, elapsed) = exchange(&alice, &bob, subject, dict.clone()).await?;
    verify(&dict, &received)?;
    ensure!(received.payloads[0].value()? == PayloadValue::Json(config), "dictionary changed");
    let name = "2. dictionary exchange";
    done.push(Walkthrough { name, elapsed, messages: vec![message(name, subject, &received)] });

    // 3. Table exchange: an Arrow table as `arrowtable` (Arrow IPC, what
    // the Julia and Python peers send a DataFrame as), and the same rows as
    // `jsontable` (what every peer, the browser included, reads).
    let students = RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
        ("name", Arc::new(StringArray::from(vec!["Alice", "Bob", "Charlie"])) as ArrayRef),
        ("score", Arc::new(Float64Array::from(vec![95.0, 88.5, 92.0])) as ArrayRef),
    ])?;
    let rows = json!([
        {"id": 1, "name": "Alice", "score": 95.0},
        {"id": 2, "name": "Bob", "score": 88.5},
        {"id": 3, "name": "Charlie", "score": 92.0}
    ]);
    let tables = vec![
        table::arrow_payload("students", std::slice::from_ref(&students))?,
        Payload::new("students_rows", PayloadType::JsonTable, rows.to_string()),
    ];
    let subject = "demo.data.analysis";
    let (received, elapsed) = exchange(&alice, &bob, subject, tables.clone()).await?;
    verify(&tables, &received)?;
    let arrived = &received.payloads[0];
    let bytes = arrived.bytes().context("students was not fetched")?.clone();
    let table =
        table::table_from_payload(&Payload::new("students", arrived.payload_type.clone(), bytes))?;
    ensure!(table.batches == vec![students], "the Arrow table changed on the way");
    ensure!(received.payloads[1].value()? == PayloadValue::Json(rows), "jsontable changed");
    let name = "3. table exchange";
    done.push(Walkthrough { name, elapsed, messages: vec![message(name, subject, &received)] });

    // 4. Request-response: bob answers alice's command on reply_to.
    let started = Instant::now();
    let mut commands = bob.subscribe("demo.device.command").await?;
    let mut responses = alice.subscribe("demo.device.response").await?;
    barrier(&bob).await?;
    barrier(&alice).await?;
    let command = vec![Payload::dictionary("command", &json!({"action": "read_sensor"}))?];
    let options = SendOptions::new().with_reply_to("demo.device.response");
    let (request, _) =
        alice.smartsend("demo.device.command", command, options).await?.into_parts()?;
    let incoming = next(&mut commands).await?;
    let reading = json!({"sensor_id": "sensor-001", "value": 42.5});
    bob.reply(&incoming, vec![Payload::dictionary("data", &reading)?], SendOptions::default())
        .await?
        .context("the request asked for no reply")?;
    let response = next(&mut responses).await?.to_envelope()?;
    ensure!(response.reply_to_msg_id == request.msg_id, "the reply does not name the request");
    ensure!(response.correlation_id == request.correlation_id, "correlation id changed");
    ensure!(response.payloads[0].value()? == PayloadValue::Json(reading), "reading changed");
    done.push(Walkthrough {
        name: "4. request-response",
        elapsed: started.elapsed(),
        messages: vec![
            message("4. request (command)", "demo.device.command", &incoming.to_envelope()?),
            message("4. response (reading)", "demo.device.response", &response),
        ],
    });
    Ok(done)
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
    Ok((received.to_envelope()?, started.elapsed()))
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

fn message(label: &'static str, subject: &str, envelope: &Envelope) -> Message {
    let payloads = envelope
        .payloads
        .iter()
        .map(|r| Row {
            dataname: r.dataname.clone(),
            payload_type: r.payload_type.to_string(),
            transport: r.transport().to_string(),
            size: r.size().unwrap_or(0),
        })
        .collect();
    Message { label, subject: subject.to_owned(), payloads }
}
