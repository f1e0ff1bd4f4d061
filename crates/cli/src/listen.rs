//! `natsbridge listen`: subscribe and show each envelope that arrives.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use futures_util::{Stream, StreamExt};
use natsbridge::{Received, Rejected};

use crate::connect::{LinkArgs, NatsArgs, connect};
use crate::exit;
use crate::{report, show};

#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    /// Subject to subscribe to (wildcards allowed).
    subject: String,
    #[command(flatten)]
    links: LinkArgs,
    /// Exit 0 after this many messages (default: run until Ctrl-C).
    #[arg(long, value_name = "N")]
    count: Option<usize>,
    /// Save payloads under DIR/<msg_id>/, and undecodable messages under DIR/failed/.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Join this queue group (each message goes to one member).
    #[arg(long, value_name = "GROUP", conflicts_with = "stream")]
    queue: Option<String>,
    /// Consume from this JetStream stream instead of subscribing (with
    /// --durable): each message is acked once it decoded (links fetched and
    /// verified) and nak'ed otherwise, to be redelivered with a growing
    /// delay. SUBJECT then filters nothing: the durable consumer's own
    /// filter applies.
    #[arg(long, value_name = "STREAM", requires = "durable")]
    stream: Option<String>,
    /// The durable pull consumer on --stream (created if missing, so a
    /// restarted listener goes on where it stopped).
    #[arg(long, value_name = "NAME", requires = "stream")]
    durable: Option<String>,
    /// Print one JSON line per message (a summary of each payload) instead
    /// of the payloads decoded for a person.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: ListenArgs, nats: &NatsArgs) -> anyhow::Result<ExitCode> {
    let bridge =
        connect(nats.target()?, args.links.fileserver.as_deref(), &args.links.allow_origin).await?;
    // A core subscription or a JetStream durable consumer: the same stream
    // of decoded envelopes (the consumer acks what decoded).
    let mut sub: std::pin::Pin<Box<dyn Stream<Item = Result<Received, Rejected>> + Send>> =
        match (&args.stream, &args.durable, &args.queue) {
            (Some(stream), Some(durable), _) => {
                Box::pin(bridge.jetstream_consumer(stream, durable).await?)
            }
            (_, _, Some(group)) => Box::pin(bridge.queue_subscribe(&args.subject, group).await?),
            _ => Box::pin(bridge.subscribe(&args.subject).await?),
        };
    bridge.connection().sync().await?;
    match (&args.stream, &args.durable) {
        (Some(stream), Some(durable)) => {
            eprintln!("natsbridge: listening on stream {stream} (durable {durable})")
        }
        _ => eprintln!("natsbridge: listening on {}", args.subject),
    }
    let deadline = nats.timeout_flag().map(|d| tokio::time::Instant::now() + d);
    let mut received = 0usize;
    let mut all_decoded = true;
    while args.count.is_none_or(|n| received < n) {
        let next = match deadline {
            Some(at) => match tokio::time::timeout_at(at, sub.next()).await {
                Ok(next) => next,
                Err(_) => {
                    eprintln!("natsbridge: timed out after {received} message(s)");
                    return Ok(ExitCode::from(exit::TIMEOUT));
                }
            },
            None => sub.next().await,
        };
        let Some(item) = next else { break };
        received += 1;
        match item {
            Ok(msg) => {
                tracing::info!(subject = %msg.subject, msg_id = %msg.envelope.msg_id, "received");
                all_decoded &=
                    show::print(&msg.envelope, &msg.subject, args.out.as_deref(), args.json)?;
            }
            Err(rejected) => {
                tracing::info!(subject = %rejected.subject, error = %rejected.error, "rejected");
                if let Some(dir) = &args.out {
                    let failed = dir.join("failed");
                    std::fs::create_dir_all(&failed)?;
                    std::fs::write(failed.join(format!("{received}.msg")), &rejected.payload)?;
                }
                let line = if args.json {
                    report::error_line(&rejected.error)
                } else {
                    show::rejected(&rejected.subject, &rejected.error)
                };
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "{line}")?;
                stdout.flush()?;
            }
        }
    }
    if !all_decoded {
        // Every message was shown; some payloads were not what their type
        // says (each named on stderr).
        return Ok(ExitCode::from(exit::BAD_INPUT));
    }
    Ok(ExitCode::SUCCESS)
}
