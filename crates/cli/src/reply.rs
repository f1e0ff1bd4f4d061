//! `natsbridge reply`: answer requests on a subject, with fixed payloads,
//! the request's own (`--echo`) or a command's output (`--command`), in a
//! queue group so that replicas share the requests, registered as a NATS
//! service (`$SRV.PING`, `INFO`, `STATS`), draining on SIGTERM and SIGINT.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::Context;
use clap::{ArgGroup, Args};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use natsbridge::transport::service_name;
use natsbridge::{
    Bridge, EndpointConfig, Envelope, Payload, PayloadType, SendOptions, ServiceConfig,
    ServiceEndpoint, ServiceRequest,
};

use crate::connect::{LinkArgs, NatsArgs, Unlisted, connect, parse_timeout};
use crate::{StopSignals, exit, parse_payloads, payload_arg, redact_url, report};

/// The queue group replicas join unless `--queue` or `--no-queue` says.
const DEFAULT_QUEUE: &str = "natsbridge";

/// The Service API error code of a failed `--command`.
const COMMAND_FAILED: u16 = 500;

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("answer").required(true).args(["payloads", "echo", "command"])
))]
pub(crate) struct ReplyArgs {
    /// Subject to answer requests on.
    subject: String,
    /// Answer every request with these payloads, TYPE:NAME=VALUE as `send`
    /// takes them (read once, at start).
    #[arg(value_name = "PAYLOAD")]
    payloads: Vec<String>,
    #[command(flatten)]
    links: LinkArgs,
    /// Answer every request with its own payloads.
    #[arg(long)]
    echo: bool,
    /// Run CMD (with `sh -c`) for each request: the request's JSON line
    /// (as `listen --json --out DIR` prints it; each payload's `path` holds
    /// its bytes) on its stdin, its stdout the answer: a text payload
    /// `output`, or the payloads of a JSON object {"payloads": [{"dataname",
    /// "type", "value"}, ...]}. A failure or timeout answers a text payload
    /// `error`.
    #[arg(long, value_name = "CMD")]
    command: Option<String>,
    /// How long --command may run per request: 30s, 500ms, 1m or seconds.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    command_timeout: Duration,
    /// Queue group to join: each request goes to one member, so replicas
    /// share the requests.
    #[arg(long, value_name = "GROUP", default_value = DEFAULT_QUEUE)]
    queue: String,
    /// Join no queue group: every replica answers every request.
    #[arg(long, conflicts_with = "queue")]
    no_queue: bool,
    /// Exit after answering this many requests.
    #[arg(long, value_name = "N")]
    count: Option<usize>,
    /// The service's name in the NATS Service API ($SRV.PING/INFO/STATS):
    /// letters, digits, `-` and `_` [default: the subject, other characters
    /// as `-`: svc.hello gives svc-hello].
    #[arg(long, value_name = "NAME")]
    service_name: Option<String>,
    /// The service's version, SemVer.
    #[arg(long, value_name = "VERSION", default_value = env!("CARGO_PKG_VERSION"))]
    service_version: String,
    /// The service's description [default: "natsbridge reply on SUBJECT"].
    #[arg(long, value_name = "TEXT")]
    service_description: Option<String>,
    /// Service metadata, KEY=VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_metadata)]
    service_metadata: Vec<(String, String)>,
}

fn parse_metadata(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{arg:?} is not KEY=VALUE")),
    }
}

/// How each request is answered.
enum Answer {
    Fixed(Vec<Payload>),
    Echo,
    Command { command: String, timeout: Duration },
}

pub(crate) async fn run(args: ReplyArgs, nats: &NatsArgs) -> anyhow::Result<ExitCode> {
    let answer = match (&args.command, args.echo) {
        (Some(command), _) => {
            Answer::Command { command: command.clone(), timeout: args.command_timeout }
        }
        (None, true) => Answer::Echo,
        // Bad arguments fail here, before connecting (bad input).
        (None, false) => Answer::Fixed(parse_payloads(&args.payloads)?),
    };
    let service = ServiceConfig {
        name: args.service_name.clone().unwrap_or_else(|| service_name(&args.subject)),
        version: args.service_version.clone(),
        description: args
            .service_description
            .clone()
            .unwrap_or_else(|| format!("natsbridge reply on {}", args.subject)),
        metadata: args.service_metadata.iter().cloned().collect::<BTreeMap<_, _>>(),
    };
    service.validate().context(exit::BadInput)?;
    let endpoint = EndpointConfig {
        name: service.name.clone(),
        subject: args.subject.clone(),
        queue_group: (!args.no_queue).then(|| args.queue.clone()),
        metadata: BTreeMap::new(),
    };
    let target = nats.target()?;
    let broker_url = redact_url(&target.url);
    let bridge =
        connect(target, args.links.fileserver.as_deref(), &args.links.receiving(Unlisted::Refuse))
            .await?;
    let service = bridge.service(service).await?;
    let mut endpoint = service.endpoint_with(endpoint).await?;
    // Listening before the ready line: a signal from then on drains.
    let mut signals = StopSignals::new()?;
    bridge.connection().sync().await?;
    let group = if args.no_queue { String::new() } else { format!("queue group {}, ", args.queue) };
    eprintln!(
        "natsbridge: answering on {} ({group}service {} id {})",
        args.subject,
        service.config().name,
        service.id()
    );
    let server = Server { bridge: &bridge, answer: &answer, broker_url: &broker_url };
    server.serve(&mut endpoint, args.count, &mut signals).await
}

/// What answering a request needs.
struct Server<'a> {
    bridge: &'a Bridge,
    answer: &'a Answer,
    broker_url: &'a str,
}

/// A request being answered: true once an answer was sent.
type Answering<'a> = Pin<Box<dyn Future<Output = anyhow::Result<bool>> + 'a>>;

impl Server<'_> {
    /// Answers requests from `endpoint`, one at a time, until `count` are
    /// answered (or forever). The first stop signal drains: the server
    /// sends no more requests (the queue group's other members get them),
    /// and every request already sent here is answered before it returns
    /// exit 0. A second signal stops at once (a running command's process
    /// group killed) with 130 (SIGINT) or 143 (SIGTERM).
    async fn serve(
        &self,
        endpoint: &mut ServiceEndpoint,
        count: Option<usize>,
        signals: &mut StopSignals,
    ) -> anyhow::Result<ExitCode> {
        let mut answered = 0usize;
        let mut draining = false;
        let mut current: Option<Answering<'_>> = None;
        loop {
            if current.is_none() && count.is_some_and(|n| answered >= n) {
                break;
            }
            tokio::select! {
                code = signals.next() => {
                    if draining {
                        eprintln!("natsbridge: stopped before answering every request taken");
                        return Ok(ExitCode::from(code));
                    }
                    draining = true;
                    eprintln!(
                        "natsbridge: stopping: answering the requests already taken \
                         (a second signal stops at once)"
                    );
                    endpoint.drain().await?;
                }
                done = async { current.as_mut().expect("polled only when set").await },
                    if current.is_some() =>
                {
                    current = None;
                    if done? {
                        answered += 1;
                    }
                }
                item = endpoint.next(), if current.is_none() => match item {
                    None => break,
                    Some(Ok(request)) => current = Some(Box::pin(self.answer(request))),
                    Some(Err(rejected)) => println!("{}", report::error_line(&rejected.error)),
                },
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Answers one request; true if an answer was sent (a request with
    /// neither a NATS reply subject nor `reply_to` is not answered).
    async fn answer(&self, request: ServiceRequest) -> anyhow::Result<bool> {
        let envelope = &request.received.to_envelope()?;
        tracing::info!(msg_id = %envelope.msg_id, "answering");
        let (payloads, failure) = match self.answer {
            Answer::Fixed(payloads) => (payloads.clone(), None),
            Answer::Echo => (own_payloads(envelope), None),
            Answer::Command { command, timeout } => {
                match try_command(command, *timeout, envelope).await {
                    Ok(payloads) => (payloads, None),
                    Err(e) => {
                        let message = format!("{e:#}");
                        eprintln!("natsbridge: request {}: {message}", envelope.msg_id);
                        let error = Payload::new("error", PayloadType::Text, message.clone());
                        (vec![error], Some(message))
                    }
                }
            }
        };
        let msg_id = envelope.msg_id.clone();
        // broker_url is set here so that the server URL's credentials, if
        // any, are not sent on.
        let options = SendOptions::new().with_broker_url(self.broker_url.to_owned());
        let sent = match failure {
            None => request.respond(payloads, options).await?,
            Some(message) => {
                request.respond_error(COMMAND_FAILED, &message, payloads, options).await?
            }
        };
        // The answer must leave before `--count` or a stop ends the process.
        self.bridge.connection().flush().await?;
        match sent {
            Some(answer) => {
                println!("{}", report::line(&answer.envelope()?, None)?);
                Ok(true)
            }
            None => {
                tracing::info!(
                    %msg_id,
                    "not answered: neither a NATS reply subject nor reply_to"
                );
                Ok(false)
            }
        }
    }
}

/// The request's payloads whose bytes are here, as they came.
fn own_payloads(envelope: &Envelope) -> Vec<Payload> {
    envelope
        .payloads
        .iter()
        .filter_map(|r| {
            r.bytes().map(|b| Payload::new(r.dataname.clone(), r.payload_type.clone(), b.clone()))
        })
        .collect()
}

async fn try_command(
    command: &str,
    timeout: Duration,
    envelope: &Envelope,
) -> anyhow::Result<Vec<Payload>> {
    // The payloads' bytes, for the command to read by `path`; removed once
    // the answer is built.
    let dir = tempfile::tempdir().context("creating a directory for the request's payloads")?;
    let mut line = report::line(envelope, Some(dir.path()))?;
    line.push('\n');
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    // Its own process group, so that a timeout stops what it started too.
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = cmd.spawn().context("starting `sh -c` for --command")?;
    // Until it has exited, a timeout or `reply` being stopped kills the
    // group.
    let mut group = Group(child.id());
    let mut stdin = child.stdin.take().context("the command's stdin")?;
    let mut stdout = child.stdout.take().context("the command's stdout")?;
    let finished = async {
        // A command that does not read its stdin is not an error.
        let write = async {
            let _ = stdin.write_all(line.as_bytes()).await;
            drop(stdin);
        };
        let mut output = Vec::new();
        let read = stdout.read_to_end(&mut output);
        let ((), read) = tokio::join!(write, read);
        read.context("reading the command's output")?;
        let status = child.wait().await.context("waiting for the command")?;
        anyhow::Ok((status, output))
    };
    let (status, output) = match tokio::time::timeout(timeout, finished).await {
        Ok(finished) => finished?,
        Err(_) => anyhow::bail!("the command timed out after {timeout:?}"),
    };
    group.0 = None;
    if !status.success() {
        match status.code() {
            Some(code) => anyhow::bail!("the command exited with status {code}"),
            None => anyhow::bail!("the command was killed ({status})"),
        }
    }
    answer_from_output(output)
}

/// The command's process group (the shell and what it started), killed
/// when this is dropped while it holds the shell's id.
struct Group(Option<u32>);

impl Drop for Group {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The answer a command's stdout makes: if it is a JSON object with a
/// `payloads` array, those payloads (each `{"dataname", "type", "value"}`,
/// `value` read as a payload argument's VALUE, so `@PATH` reads a file;
/// a `dictionary` or `jsontable` value may be JSON itself); else one
/// payload `output` holding stdout as it is: text, or binary if it is
/// not UTF-8.
fn answer_from_output(output: Vec<u8>) -> anyhow::Result<Vec<Payload>> {
    if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(&output)
        && let Some(Value::Array(items)) = object.get("payloads")
    {
        return items
            .iter()
            .enumerate()
            .map(|(i, item)| output_payload(item).with_context(|| format!("output payload {i}")))
            .collect();
    }
    let payload_type =
        if std::str::from_utf8(&output).is_ok() { PayloadType::Text } else { PayloadType::Binary };
    Ok(vec![Payload::new("output", payload_type, output)])
}

fn output_payload(item: &Value) -> anyhow::Result<Payload> {
    let field = |name: &str| item.get(name).with_context(|| format!("has no {name:?}"));
    let dataname = field("dataname")?.as_str().context("\"dataname\" is not a string")?;
    let type_name = field("type")?.as_str().context("\"type\" is not a string")?;
    let value = match field("value")? {
        Value::String(value) => value.clone(),
        json => json.to_string(),
    };
    payload_arg::parse(&format!("{type_name}:{dataname}={value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_text_binary_or_payloads() {
        let answer = answer_from_output(b"HELLO\n".to_vec()).unwrap();
        assert_eq!(answer.len(), 1);
        assert_eq!(
            (answer[0].dataname.as_str(), answer[0].payload_type.clone()),
            ("output", PayloadType::Text)
        );
        assert_eq!(answer[0].bytes.as_ref(), b"HELLO\n");
        let answer = answer_from_output(vec![0xff, 0]).unwrap();
        assert_eq!(answer[0].payload_type, PayloadType::Binary);
        // A JSON object without `payloads` is text like any other output.
        let answer = answer_from_output(br#"{"a": 1}"#.to_vec()).unwrap();
        assert_eq!(answer[0].dataname, "output");
        let answer = answer_from_output(
            br#"{"payloads": [
                {"dataname": "t", "type": "text", "value": "x=y"},
                {"dataname": "d", "type": "dictionary", "value": {"k": [1, 2]}},
                {"dataname": "s", "type": "dictionary", "value": "{\"k\": 3}"}
            ]}"#
            .to_vec(),
        )
        .unwrap();
        let names: Vec<_> = answer.iter().map(|p| p.dataname.as_str()).collect();
        assert_eq!(names, ["t", "d", "s"]);
        assert_eq!(answer[0].bytes.as_ref(), b"x=y");
        assert_eq!(answer[1].payload_type, PayloadType::Dictionary);
        assert_eq!(answer[1].bytes.as_ref(), br#"{"k":[1,2]}"#);
        let err = answer_from_output(
            br#"{"payloads": [{"dataname": "d", "type": "dictionary", "value": "{nope"}]}"#
                .to_vec(),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("output payload 0"), "{err:#}");
        assert!(answer_from_output(br#"{"payloads": [{"type": "text"}]}"#.to_vec()).is_err());
    }
}
