//! `natsbridge reply`: answer requests on a subject, with fixed payloads,
//! the request's own (`--echo`) or a command's output (`--command`), in a
//! queue group so that replicas share the requests.

use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::Context;
use clap::{ArgGroup, Args};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use natsbridge::{Bridge, Envelope, Payload, PayloadType, SendOptions, Subscription};

use crate::connect::{LinkArgs, NatsArgs, Unlisted, connect, parse_timeout};
use crate::{ctrl_c, parse_payloads, payload_arg, redact_url, report};

/// The queue group replicas join unless `--queue` or `--no-queue` says.
const DEFAULT_QUEUE: &str = "natsbridge";

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
    let target = nats.target()?;
    let broker_url = redact_url(&target.url);
    let bridge =
        connect(target, args.links.fileserver.as_deref(), &args.links.receiving(Unlisted::Refuse))
            .await?;
    let mut sub = if args.no_queue {
        bridge.subscribe(&args.subject).await?
    } else {
        bridge.queue_subscribe(&args.subject, &args.queue).await?
    };
    bridge.connection().sync().await?;
    if args.no_queue {
        eprintln!("natsbridge: answering on {}", args.subject);
    } else {
        eprintln!("natsbridge: answering on {} (queue group {})", args.subject, args.queue);
    }
    // Ctrl-C or SIGTERM stops it cleanly (exit 0), a running command and
    // what it started included.
    let stopped = ctrl_c()?;
    tokio::select! {
        served = serve(&bridge, &mut sub, &answer, &broker_url, args.count) => served?,
        () = stopped => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Answers requests from `sub` until `count` are answered (or forever).
async fn serve(
    bridge: &Bridge,
    sub: &mut Subscription,
    answer: &Answer,
    broker_url: &str,
    count: Option<usize>,
) -> anyhow::Result<()> {
    let mut answered = 0usize;
    while count.is_none_or(|n| answered < n) {
        let Some(item) = sub.next().await else { break };
        match item {
            Ok(request) => {
                tracing::info!(msg_id = %request.envelope.msg_id, "answering");
                let payloads = match answer {
                    Answer::Fixed(payloads) => payloads.clone(),
                    Answer::Echo => own_payloads(&request.envelope),
                    Answer::Command { command, timeout } => {
                        run_command(command, *timeout, &request.envelope).await
                    }
                };
                // broker_url is set here so that the server URL's
                // credentials, if any, are not sent on.
                let options =
                    SendOptions { broker_url: broker_url.to_owned(), ..SendOptions::default() };
                let answer = bridge.reply(&request, payloads, options).await?;
                // The answer must leave before `--count` ends the process.
                bridge.connection().flush().await?;
                match answer {
                    Some(answer) => {
                        println!("{}", report::line(&answer.envelope()?, None)?);
                        answered += 1;
                    }
                    None => tracing::info!(
                        msg_id = %request.envelope.msg_id,
                        "not answered: neither a NATS reply subject nor reply_to"
                    ),
                }
            }
            Err(rejected) => println!("{}", report::error_line(&rejected.error)),
        }
    }
    Ok(())
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

/// Runs `command` for the request `envelope` and returns the answer: its
/// output's payloads, or one text payload `error` saying why there are
/// none (the reason is also logged on stderr).
async fn run_command(command: &str, timeout: Duration, envelope: &Envelope) -> Vec<Payload> {
    match try_command(command, timeout, envelope).await {
        Ok(payloads) => payloads,
        Err(e) => {
            let message = format!("{e:#}");
            eprintln!("natsbridge: request {}: {message}", envelope.msg_id);
            vec![Payload::new("error", PayloadType::Text, message.into_bytes())]
        }
    }
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
