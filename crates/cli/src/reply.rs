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

use crate::arrival::Arrival;
use crate::connect::{LinkArgs, NatsArgs, Unlisted, connect, parse_timeout};
use crate::receive::Shown;
use crate::{StopSignals, exit, parse_payloads, payload_arg, redact_url, report, show};

/// The queue group replicas join unless `--queue` or `--no-queue` says.
const DEFAULT_QUEUE: &str = "natsbridge";

/// The Service API error code of a failed `--command`.
const COMMAND_FAILED: u16 = 500;

/// The `msg_purpose` of an answer that reports a failure (a `--command`
/// that failed): the seeds' negative acknowledgement, so every peer reads
/// it as an ordinary envelope and `request` can tell it from an answer.
pub(crate) const FAILED_PURPOSE: &str = "NACK";

/// How much of the end of a failed command's stderr its answer carries.
const STDERR_TAIL_BYTES: usize = 2000;

#[derive(Debug, Args)]
#[command(group(
    // One of them is required (checked after parsing, so that clap's usage
    // line keeps SUBJECT first).
    ArgGroup::new("answer").args(["payloads", "echo", "command"])
))]
pub(crate) struct ReplyArgs {
    /// Subject to answer requests on.
    subject: String,
    #[command(flatten)]
    pub(crate) nats: NatsArgs,
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
    /// `output`, or the payloads of a JSON object {"payloads": [...]}, each
    /// {"dataname", "type", "value"} or, as the input gives them,
    /// {"dataname", "payload_type", "path"} (so `--command cat` echoes). A
    /// failure or timeout answers msg_purpose NACK with a text payload
    /// `error` holding the reason and the end of the command's stderr.
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
    /// Exit after answering this many requests (default, or 0: until
    /// stopped).
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
    /// Print one JSON line per answered request (the answer's line as
    /// `listen --json` prints it, the request's under "request") instead of
    /// each request shown as `listen` shows it.
    #[arg(long)]
    pub(crate) json: bool,
}

impl ReplyArgs {
    /// Whether the answer is given: payloads, `--echo` or `--command`.
    pub(crate) fn has_answer(&self) -> bool {
        !self.payloads.is_empty() || self.echo || self.command.is_some()
    }
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
    crate::subject::check_subscribe(&args.subject)?;
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
    say!(
        "natsbridge: answering on {} ({group}service {} id {})",
        args.subject,
        service.config().name,
        service.id()
    );
    let server =
        Server { bridge: &bridge, answer: &answer, broker_url: &broker_url, json: args.json };
    server.serve(&mut endpoint, crate::repeat::limit(args.count), &mut signals).await
}

/// What answering a request needs.
struct Server<'a> {
    bridge: &'a Bridge,
    answer: &'a Answer,
    broker_url: &'a str,
    /// `--json`.
    json: bool,
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
        let mut taken = 0usize;
        let mut draining = false;
        let mut current: Option<Answering<'_>> = None;
        loop {
            if current.is_none() && count.is_some_and(|n| answered >= n) {
                break;
            }
            tokio::select! {
                code = signals.next() => {
                    if draining {
                        say!("natsbridge: stopped before answering every request taken");
                        return Ok(ExitCode::from(code));
                    }
                    draining = true;
                    say!(
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
                    Some(Ok(request)) => {
                        taken += 1;
                        let arrival = Arrival::now(taken, request.received.reply().map(str::to_string));
                        current = Some(Box::pin(self.answer(request, arrival)));
                    }
                    Some(Err(rejected)) => {
                        taken += 1;
                        if self.json {
                            crate::print_line(report::error_line(&rejected.error))?;
                        } else {
                            crate::print_line(Arrival::now(taken, None).line(&rejected.subject))?;
                            crate::print_line(show::rejected(&rejected.subject, &rejected.error))?;
                        }
                    }
                },
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Answers one request; true if an answer was sent (a request with
    /// neither a NATS reply subject nor `reply_to` is not answered).
    async fn answer(&self, request: ServiceRequest, arrival: Arrival) -> anyhow::Result<bool> {
        let asked = request.received.to_envelope()?;
        let subject = request.received.subject().to_string();
        let envelope = &asked;
        tracing::info!(msg_id = %envelope.msg_id, "answering");
        let (payloads, failure) = match self.answer {
            Answer::Fixed(payloads) => (payloads.clone(), None),
            Answer::Echo => (own_payloads(envelope), None),
            Answer::Command { command, timeout } => {
                match try_command(command, *timeout, envelope).await {
                    Ok(payloads) => (payloads, None),
                    Err(failed) => {
                        let message = format!("{:#}", failed.reason);
                        say!("natsbridge: request {}: {message}", envelope.msg_id);
                        let mut text = message.clone();
                        if !failed.stderr_tail.is_empty() {
                            text.push_str("\nthe end of its stderr:\n");
                            text.push_str(&failed.stderr_tail);
                        }
                        let error = Payload::new("error", PayloadType::Text, text);
                        (vec![error], Some(message))
                    }
                }
            }
        };
        let msg_id = envelope.msg_id.clone();
        // broker_url is set here so that the server URL's credentials, if
        // any, are not sent on.
        let mut options = SendOptions::new().with_broker_url(self.broker_url.to_owned());
        if failure.is_some() {
            options.msg_purpose = FAILED_PURPOSE.into();
        }
        let sent = match failure {
            None => request.respond(payloads, options).await?,
            Some(message) => {
                request.respond_error(COMMAND_FAILED, &message, payloads, options).await?
            }
        };
        // The answer must leave before `--count` or a stop ends the process.
        self.bridge.connection().flush().await?;
        let answer = sent.map(|sent| sent.envelope()).transpose()?;
        self.print(&arrival, &subject, &asked, answer.as_ref())?;
        match answer {
            Some(_) => Ok(true),
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

impl Server<'_> {
    /// Shows a request taken and the answer sent to it (`None`: not
    /// answered): as `listen` shows a message, then a line naming the
    /// answer; with `--json` one line, the answer's with the request's
    /// under `request` (nothing for a request not answered).
    fn print(
        &self,
        arrival: &Arrival,
        subject: &str,
        asked: &Envelope,
        answer: Option<&Envelope>,
    ) -> anyhow::Result<()> {
        if self.json {
            if let Some(answer) = answer {
                let mut line: Value = serde_json::from_str(&report::line(answer, None)?)?;
                line["request"] = serde_json::from_str(&report::line(asked, None)?)?;
                crate::print_line(line)?;
            }
            return Ok(());
        }
        crate::print_line(arrival.line(subject))?;
        let shown = Shown { envelope: asked.clone(), streamed: Vec::new(), dir: None };
        show::print(&shown, subject, false)?;
        match answer {
            Some(answer) => crate::print_line(format_args!(
                "Answered with msg_id {} ({} payload{})",
                show::clean(&answer.msg_id),
                answer.payloads.len(),
                if answer.payloads.len() == 1 { "" } else { "s" }
            )),
            None => crate::print_line(
                "Not answered: the request has neither a NATS reply subject nor reply_to",
            ),
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

/// Why a `--command` gave no answer, and the end of what it wrote on
/// stderr.
struct CommandFailed {
    reason: anyhow::Error,
    stderr_tail: String,
}

async fn try_command(
    command: &str,
    timeout: Duration,
    envelope: &Envelope,
) -> Result<Vec<Payload>, CommandFailed> {
    let tail = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let result = run_command(command, timeout, envelope, &tail).await;
    result.map_err(|reason| {
        let tail = tail.lock().map(|t| t.clone()).unwrap_or_default();
        CommandFailed { reason, stderr_tail: String::from_utf8_lossy(&tail).trim_end().to_owned() }
    })
}

/// The last bytes a command wrote on its stderr, at most
/// [`STDERR_TAIL_BYTES`].
type StderrTail = std::sync::Arc<std::sync::Mutex<Vec<u8>>>;

/// Copies a command's stderr to ours as it comes, keeping its end in
/// `tail`.
async fn copy_stderr(mut from: tokio::process::ChildStderr, tail: StderrTail) {
    let mut buffer = [0u8; 4096];
    let mut stderr = tokio::io::stderr();
    while let Ok(n @ 1..) = from.read(&mut buffer).await {
        let _ = stderr.write_all(&buffer[..n]).await;
        if let Ok(mut tail) = tail.lock() {
            tail.extend_from_slice(&buffer[..n]);
            let excess = tail.len().saturating_sub(STDERR_TAIL_BYTES);
            tail.drain(..excess);
        }
    }
}

async fn run_command(
    command: &str,
    timeout: Duration,
    envelope: &Envelope,
    tail: &StderrTail,
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
        .stderr(Stdio::piped())
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
    let stderr = child.stderr.take().context("the command's stderr")?;
    let copying = tokio::spawn(copy_stderr(stderr, tail.clone()));
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
    // Its stderr ends with it (unless something it started keeps it open:
    // then the end so far).
    let _ = tokio::time::timeout(Duration::from_millis(500), copying).await;
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
/// a `dictionary` or `jsontable` value may be JSON itself; or, in the form
/// of the command's input, `{"dataname", "payload_type", "path"}`, the
/// bytes read from `path`); else one payload `output` holding stdout as
/// it is: text, or binary if it is not UTF-8.
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
    // One of two names for a field: the output's own, or the input's.
    let either = |names: [&'static str; 2]| {
        names
            .into_iter()
            .find_map(|name| item.get(name).filter(|v| !v.is_null()).map(|v| (name, v)))
    };
    let dataname = item.get("dataname").context("has no \"dataname\"")?;
    let dataname = dataname.as_str().context("\"dataname\" is not a string")?;
    let (name, type_name) =
        either(["type", "payload_type"]).context("has no \"type\" (or \"payload_type\")")?;
    let type_name = type_name.as_str().with_context(|| format!("{name:?} is not a string"))?;
    let value = match either(["value", "path"]) {
        Some(("value", Value::String(value))) => value.clone(),
        Some(("value", json)) => json.to_string(),
        Some((_, Value::String(path))) => format!("@{path}"),
        Some(_) => anyhow::bail!("\"path\" is not a string"),
        None => anyhow::bail!("has no \"value\" (or \"path\")"),
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
        // The input's form: `payload_type` and `path` (a link not fetched
        // has a null path: refused, naming the field).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0-t.txt");
        std::fs::write(&path, "from a file").unwrap();
        let line = serde_json::json!({"payloads": [
            {"dataname": "t", "payload_type": "text", "transport": "direct", "path": path}
        ]});
        let answer = answer_from_output(line.to_string().into_bytes()).unwrap();
        assert_eq!(answer[0].bytes.as_ref(), b"from a file");
        let line = br#"{"payloads": [{"dataname": "t", "payload_type": "text", "path": null}]}"#;
        let err = answer_from_output(line.to_vec()).unwrap_err();
        assert!(format!("{err:#}").contains("\"path\""), "{err:#}");
    }
}
