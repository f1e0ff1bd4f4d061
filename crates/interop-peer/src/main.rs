//! The Rust peer in the interop matrix: `tests/interop/README.md`'s driver
//! contract (`send`, `listen`, `reply`, `request`) on the natsbridge facade.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use natsbridge::envelope::DEFAULT_SIZE_THRESHOLD;
use natsbridge::{Bridge, Envelope, Payload, PayloadType, SendOptions, sha256_hex};
use serde_json::{Map, Value, json};

mod canonical;
mod tables;

#[derive(Debug, Parser)]
#[command(name = "natsbridge-interop-peer", about = "The Rust peer's interop driver")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Send(SendArgs),
    Listen(ListenArgs),
    Reply(ReplyArgs),
    Request(RequestArgs),
}

#[derive(Debug, Args)]
struct Common {
    #[arg(long)]
    server: String,
    #[arg(long)]
    fileserver: Option<String>,
}

#[derive(Debug, Args)]
struct SendArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long = "subject", required = true)]
    subjects: Vec<String>,
    #[arg(long)]
    spec: PathBuf,
    #[arg(long)]
    reply_to: Option<String>,
    #[arg(long)]
    correlation_id: Option<String>,
    #[arg(long)]
    msg_purpose: Option<String>,
    #[arg(long)]
    sender_name: Option<String>,
    #[arg(long)]
    receiver_name: Option<String>,
    #[arg(long)]
    size_threshold: Option<usize>,
}

#[derive(Debug, Args)]
struct ListenArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    subject: String,
    #[arg(long)]
    count: usize,
    #[arg(long)]
    timeout: f64,
}

#[derive(Debug, Args)]
struct ReplyArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    subject: String,
    #[arg(long)]
    count: usize,
    #[arg(long)]
    timeout: f64,
    #[arg(long)]
    echo: bool,
}

#[derive(Debug, Args)]
struct RequestArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    subject: String,
    #[arg(long)]
    spec: PathBuf,
    #[arg(long)]
    timeout: f64,
    #[arg(long, default_value = "inbox")]
    mode: String,
    #[arg(long)]
    reply_to: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("natsbridge-interop-peer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Send(a) => send(a).await,
        Command::Listen(a) => listen(a).await,
        Command::Reply(a) => reply(a).await,
        Command::Request(a) => request(a).await,
    }
}

async fn connect(common: &Common) -> anyhow::Result<Bridge> {
    let mut builder = Bridge::builder(&common.server);
    if let Some(url) = &common.fileserver {
        builder = builder.fileserver(url);
    }
    Ok(builder.connect().await?)
}

fn println_flush(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The contract's xorshift32 byte generator.
fn generated(n: usize, seed: u64) -> Vec<u8> {
    let mut x = (seed % (1 << 32)) as u32;
    if x == 0 {
        x = 0x9E37_79B9;
    }
    let mut out = Vec::with_capacity(n + 4);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Reads a spec file (`tests/interop/README.md`, "Spec files") into payloads.
fn load_spec(path: &Path) -> anyhow::Result<Vec<Payload>> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let items: Vec<Value> = serde_json::from_slice(&text)?;
    let ordered: Vec<tables::Ordered> = serde_json::from_slice(&text)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let dataname = item["dataname"].as_str().context("dataname")?;
            let type_name = item["type"].as_str().context("type")?;
            let payload_type = PayloadType::known(type_name)
                .with_context(|| format!("unknown type {type_name}"))?;
            let bytes: Vec<u8> = if let Some(value) = item.get("value") {
                match payload_type {
                    PayloadType::ArrowTable | PayloadType::Table => {
                        let rows = value.as_array().context("table value: a list of rows")?;
                        let columns =
                            tables::Ordered::first_row_keys(&ordered, index).unwrap_or_default();
                        tables::rows_to_ipc(&columns, rows)?.to_vec()
                    }
                    PayloadType::Text => value.as_str().context("text value")?.as_bytes().to_vec(),
                    PayloadType::Dictionary | PayloadType::JsonTable => serde_json::to_vec(value)?,
                    _ => natsbridge::envelope::Envelope::from_json(
                        json!({"payloads": [{"dataname": "v", "payload_type": "binary",
                            "transport": "direct", "data": value}]})
                        .to_string()
                        .as_bytes(),
                    )?
                    .payloads[0]
                        .bytes()
                        .context("base64 value")?
                        .to_vec(),
                }
            } else if let Some(file) = item.get("value_file").and_then(Value::as_str) {
                std::fs::read(dir.join(file)).with_context(|| format!("reading {file}"))?
            } else if let Some(g) = item.get("generated") {
                let n = g["n"].as_u64().context("generated.n")? as usize;
                generated(n, g["seed"].as_u64().context("generated.seed")?)
            } else {
                bail!("payload {dataname} has no value");
            };
            Ok(Payload::new(dataname, payload_type, bytes))
        })
        .collect()
}

/// The contract's summary line of a received envelope.
fn summary(envelope: &Envelope, subject: &str) -> anyhow::Result<Map<String, Value>> {
    let mut payloads = Vec::new();
    for r in &envelope.payloads {
        payloads.push(json!({
            "dataname": r.dataname,
            "payload_type": r.payload_type.as_str(),
            "transport": r.transport().as_str(),
            "size": r.size(),
            "sha256": r.bytes().map(|b| sha256_hex(b)),
            "value_digest": canonical::value_digest(r)?,
        }));
    }
    let mut line = Map::new();
    for (k, v) in [
        ("msg_id", &envelope.msg_id),
        ("correlation_id", &envelope.correlation_id),
        ("reply_to_msg_id", &envelope.reply_to_msg_id),
        ("reply_to", &envelope.reply_to),
        ("send_to", &envelope.send_to),
        ("msg_purpose", &envelope.msg_purpose),
        ("sender_name", &envelope.sender_name),
        ("timestamp", &envelope.timestamp),
    ] {
        line.insert(k.into(), v.as_str().into());
    }
    line.insert("subject".into(), subject.into());
    line.insert("payloads".into(), Value::Array(payloads));
    Ok(line)
}

async fn send(a: SendArgs) -> anyhow::Result<ExitCode> {
    let payloads = load_spec(&a.spec)?;
    let bridge = connect(&a.common).await?;
    for subject in &a.subjects {
        let defaults = SendOptions::default();
        let mut options = SendOptions::new()
            .with_reply_to(a.reply_to.clone().unwrap_or_default())
            .with_msg_purpose(a.msg_purpose.clone().unwrap_or(defaults.msg_purpose))
            .with_sender_name(a.sender_name.clone().unwrap_or(defaults.sender_name))
            .with_receiver_name(a.receiver_name.clone().unwrap_or_default())
            .with_size_threshold(a.size_threshold.unwrap_or(DEFAULT_SIZE_THRESHOLD));
        options.correlation_id = a.correlation_id.clone();
        let (_, json) = bridge.smartsend(subject, payloads.clone(), options).await?.into_parts()?;
        println_flush(std::str::from_utf8(&json)?);
    }
    bridge.connection().flush().await?;
    Ok(ExitCode::SUCCESS)
}

fn deadline(secs: f64) -> anyhow::Result<tokio::time::Instant> {
    Ok(tokio::time::Instant::now() + Duration::try_from_secs_f64(secs)?)
}

/// Connects, subscribes, waits until the server has the subscription and
/// says `READY` on stderr, as the contract asks of `listen` and `reply`.
async fn ready_subscription(
    common: &Common,
    subject: &str,
) -> anyhow::Result<(Bridge, natsbridge::Subscription)> {
    let bridge = connect(common).await?;
    let sub = bridge.subscribe(subject).await?;
    bridge.connection().sync().await?;
    eprintln!("READY");
    Ok((bridge, sub))
}

/// The contract's line for a message that did not decode.
fn rejected_line(rejected: natsbridge::Rejected) -> Value {
    json!({
        "subject": rejected.subject.as_str(),
        "error": format!("{:#}", anyhow::Error::new(rejected.error)),
    })
}

async fn listen(a: ListenArgs) -> anyhow::Result<ExitCode> {
    let (_bridge, mut sub) = ready_subscription(&a.common, &a.subject).await?;
    let until = deadline(a.timeout)?;
    for _ in 0..a.count {
        let Ok(next) = tokio::time::timeout_at(until, sub.next()).await else {
            return Ok(ExitCode::from(2));
        };
        let Some(item) = next else { break };
        let line = match item {
            Ok(received) => Value::Object(summary(&received.to_envelope()?, received.subject())?),
            Err(rejected) => rejected_line(rejected),
        };
        println_flush(&line.to_string());
    }
    Ok(ExitCode::SUCCESS)
}

async fn reply(a: ReplyArgs) -> anyhow::Result<ExitCode> {
    let (bridge, mut sub) = ready_subscription(&a.common, &a.subject).await?;
    let until = deadline(a.timeout)?;
    for _ in 0..a.count {
        let Ok(next) = tokio::time::timeout_at(until, sub.next()).await else {
            return Ok(ExitCode::from(2));
        };
        let Some(item) = next else { break };
        let request = match item {
            Ok(r) => r,
            Err(rejected) => {
                println_flush(&rejected_line(rejected).to_string());
                continue;
            }
        };
        let payloads = if a.echo {
            request
                .to_envelope()?
                .payloads
                .iter()
                .filter_map(|r| {
                    r.bytes().map(|b| {
                        Payload::new(r.dataname.clone(), r.payload_type.clone(), b.clone())
                    })
                })
                .collect()
        } else {
            vec![Payload::text("ack", "ok")]
        };
        let answered_to = request
            .reply()
            .map(str::to_string)
            .unwrap_or(request.to_envelope().unwrap().reply_to.clone());
        let answer = bridge.reply(&request, payloads, SendOptions::default()).await?;
        let mut line = summary(&request.to_envelope().unwrap(), request.subject())?;
        line.insert("answered_to".into(), answered_to.into());
        let answer_msg_id = match &answer {
            Some(sent) => sent.view()?.msg_id().to_string(),
            None => String::new(),
        };
        line.insert("answer_msg_id".into(), answer_msg_id.into());
        println_flush(&Value::Object(line).to_string());
    }
    bridge.connection().flush().await?;
    Ok(ExitCode::SUCCESS)
}

async fn request(a: RequestArgs) -> anyhow::Result<ExitCode> {
    let payloads = load_spec(&a.spec)?;
    let bridge = connect(&a.common).await?;
    let timeout = Duration::try_from_secs_f64(a.timeout)?;
    let (request_msg_id, request_correlation_id, answer) = match a.mode.as_str() {
        "inbox" => {
            let options =
                SendOptions::new().with_msg_id(uuid_like()).with_correlation_id(uuid_like());
            let (msg_id, corr) =
                (options.msg_id.clone().unwrap(), options.correlation_id.clone().unwrap());
            match bridge.request(&a.subject, payloads, options, timeout).await {
                Ok(answer) => (msg_id, corr, (answer, a.subject.clone())),
                Err(e)
                    if matches!(
                        e.kind(),
                        natsbridge::ErrorKind::Nats(natsbridge::transport::ErrorKind::TimedOut)
                    ) =>
                {
                    return Ok(ExitCode::from(2));
                }
                Err(e) => return Err(e.into()),
            }
        }
        "reply-to" => {
            let reply_subject =
                a.reply_to.clone().unwrap_or_else(|| bridge.connection().new_inbox());
            let mut sub = bridge.subscribe(&reply_subject).await?;
            bridge.connection().sync().await?;
            let options = SendOptions::new().with_reply_to(reply_subject.clone());
            let (sent, _) = bridge.smartsend(&a.subject, payloads, options).await?.into_parts()?;
            let Ok(next) = tokio::time::timeout(timeout, sub.next()).await else {
                return Ok(ExitCode::from(2));
            };
            let received = next.context("subscription ended")?.map_err(|r| r.error)?;
            (
                sent.msg_id,
                sent.correlation_id,
                (received.to_envelope()?, received.subject().to_string()),
            )
        }
        other => bail!("unknown --mode {other}"),
    };
    let (envelope, subject) = answer;
    // What a requester can check when the responder may be seed-written
    // (those copy nothing): the answer does not name another request. The
    // runner checks the reply fields per responder.
    let matched = envelope.reply_to_msg_id.is_empty() || envelope.reply_to_msg_id == request_msg_id;
    let mut line = summary(&envelope, &subject)?;
    line.insert("request_msg_id".into(), request_msg_id.into());
    line.insert("request_correlation_id".into(), request_correlation_id.into());
    line.insert("matched".into(), matched.into());
    println_flush(&Value::Object(line).to_string());
    Ok(if matched { ExitCode::SUCCESS } else { ExitCode::from(3) })
}

/// A fresh id for a request, taken from the facade's id source.
fn uuid_like() -> String {
    use natsbridge::envelope::IdSource;
    natsbridge::SystemIds.next_id()
}
