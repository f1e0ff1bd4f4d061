//! `natsbridge listen`: subscribe and show each envelope that arrives.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use futures_util::StreamExt;
use futures_util::future::Either;
use futures_util::stream::FuturesUnordered;

use crate::arrival::Arrival;
use crate::connect::{LinkArgs, NatsArgs, Unlisted, connect};
use crate::exit;
use crate::receive::{self, Shown};
use crate::{report, show, subject};

#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    /// Subject to subscribe to (wildcards allowed).
    subject: String,
    #[command(flatten)]
    pub(crate) nats: NatsArgs,
    #[command(flatten)]
    links: LinkArgs,
    /// Exit after this many messages (default, or 0: run until Ctrl-C).
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
    pub(crate) json: bool,
    /// Print each message's body exactly as received, nothing decoded or
    /// fetched, followed by a newline (`listen --raw | natsbridge unpack -`).
    #[arg(long, conflicts_with_all = ["json", "out", "stream"])]
    raw: bool,
}

/// How many messages may be fetching their links at once: one slow link
/// holds one of these, and the messages after it go on through the others.
const IN_FLIGHT: usize = 8;

/// What one message came to.
enum Outcome {
    /// Decoded, its links fetched for showing.
    Shown(Box<Shown>, String),
    /// Not decoded: the error, the subject, the message as it came.
    Rejected(natsbridge::Error, String, natsbridge::envelope::bytes::Bytes),
}

impl ListenArgs {
    /// Whether messages come from a JetStream stream (for the error's hint).
    pub(crate) fn uses_jetstream(&self) -> bool {
        self.stream.is_some()
    }
}

pub(crate) async fn run(args: ListenArgs, nats: &NatsArgs) -> anyhow::Result<ExitCode> {
    if args.stream.is_none() {
        subject::check_subscribe(&args.subject)?;
    }
    let receiving = args.links.receiving(Unlisted::Fetch);
    let bridge = connect(nats.target()?, args.links.fileserver.as_deref(), &receiving).await?;
    // A JetStream durable consumer (the library decodes and acks each
    // message in turn), or a core subscription whose messages are fetched
    // here, several at a time.
    let mut consumer = None;
    let mut core = None;
    match (&args.stream, &args.durable, &args.queue) {
        (Some(stream), Some(durable), _) => {
            consumer = Some(bridge.jetstream_consumer(stream, durable).await?)
        }
        (_, _, Some(group)) => {
            core = Some(bridge.connection().queue_subscribe(&args.subject, group).await?)
        }
        _ => core = Some(bridge.connection().subscribe(&args.subject).await?),
    }
    bridge.connection().sync().await?;
    // The first SIGTERM or SIGINT drains: nothing new is taken, what was
    // delivered is shown (a durable consumer's unacked messages are left
    // for redelivery), then exit as usual. Watched before the ready line:
    // a signal from then on drains.
    let mut stop = crate::stop::signals("showing the messages already received")?;
    match (&args.stream, &args.durable) {
        (Some(stream), Some(durable)) => {
            say!("natsbridge: listening on stream {stream} (durable {durable})")
        }
        _ => say!("natsbridge: listening on {}", args.subject),
    }
    let inbox_prefix = nats.inbox_prefix();
    let deadline = nats.timeout_flag().map(|d| tokio::time::Instant::now() + d);
    let out = args.out.as_deref();
    let mut taken = 0usize;
    let mut shown = 0usize;
    let mut ended = false;
    let mut draining = false;
    // The exit code the first message that failed calls for.
    let mut failed: Option<u8> = None;
    let mut in_flight = FuturesUnordered::new();
    loop {
        let may_take = !ended && crate::repeat::limit(args.count).is_none_or(|n| taken < n);
        if !may_take && in_flight.is_empty() {
            break;
        }
        let timed_out = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            next = async {
                match (&mut consumer, &mut core) {
                    (Some(consumer), _) => consumer.next().await.map(Either::Left),
                    (_, Some(core)) => core.next().await.map(Either::Right),
                    _ => None,
                }
            }, if may_take && in_flight.len() < IN_FLIGHT => {
                let Some(next) = next else {
                    ended = true;
                    continue;
                };
                // Another client's round trip seen through a wildcard
                // (`listen '>'`): not a message anyone sent.
                if let Either::Right(message) = &next
                    && subject::is_inbox_probe(
                        message.subject.as_str(),
                        &message.payload,
                        inbox_prefix.as_deref(),
                    )
                {
                    continue;
                }
                taken += 1;
                if args.raw
                    && let Either::Right(message) = &next
                {
                    print_raw(&message.payload)?;
                    continue;
                }
                let arrival = match &next {
                    Either::Right(message) => {
                        Arrival::now(taken, message.reply.as_ref().map(|r| r.to_string()))
                            .with_headers(message.headers.as_ref())
                    }
                    Either::Left(_) => Arrival::now(taken, None),
                };
                let bridge = bridge.clone();
                in_flight.push(async move {
                    let outcome = match next {
                        Either::Left(Ok(received)) => {
                            let envelope = match received.to_envelope() {
                                Ok(envelope) => envelope,
                                Err(e) => {
                                    let payload = received.message().clone();
                                    return (arrival, Outcome::Rejected(e, received.subject().to_string(), payload));
                                }
                            };
                            let dir = out
                                .map(|o| report::message_dir(o, &envelope.msg_id))
                                .transpose();
                            match dir {
                                Ok(dir) => Outcome::Shown(
                                    Box::new(Shown {
                                        envelope,
                                        streamed: Vec::new(),
                                        dir,
                                    }),
                                    received.subject().to_string(),
                                ),
                                Err(e) => Outcome::Rejected(
                                    natsbridge::claimcheck::Error::io(
                                        "creating the message's directory under --out",
                                        e,
                                    )
                                    .into(),
                                    received.subject().to_string(),
                                    Default::default(),
                                ),
                            }
                        }
                        Either::Left(Err(rejected)) => {
                            Outcome::Rejected(rejected.error, rejected.subject, rejected.payload)
                        }
                        Either::Right(message) => receive_core(&bridge, message, out).await,
                    };
                    (arrival, outcome)
                });
            }
            Some((arrival, outcome)) = in_flight.next() => {
                shown += 1;
                let code = print(outcome, &args, shown, &arrival)?;
                failed = failed.or(code);
            }
            () = stop.requested(), if !draining => {
                draining = true;
                match &mut core {
                    // The server stops sending; what it sent already still
                    // arrives, then the subscription ends.
                    Some(core) => {
                        if let Err(e) = core.drain().await {
                            tracing::warn!(error = %e, "draining the subscription");
                            ended = true;
                        }
                    }
                    None => ended = true,
                }
            }
            () = timed_out => {
                say!("natsbridge: timed out after {shown} message(s)");
                return Ok(ExitCode::from(exit::TIMEOUT));
            }
        }
    }
    // Every message was shown; some failed (each an error line) or had
    // payloads that were not what their type says (each named on stderr).
    Ok(failed.map_or(ExitCode::SUCCESS, ExitCode::from))
}

/// Decodes a core NATS message and fetches its links for showing.
async fn receive_core(
    bridge: &natsbridge::Bridge,
    message: natsbridge::transport::Message,
    out: Option<&std::path::Path>,
) -> Outcome {
    let subject: String = message.subject.as_str().into();
    let envelope = match natsbridge::Envelope::from_json(&message.payload) {
        Ok(envelope) => envelope,
        Err(e) => return Outcome::Rejected(e.into(), subject, message.payload),
    };
    let limits = bridge.receive_limits();
    match receive::fetch_for_show(envelope, bridge.downloader(), limits, out).await {
        Ok(shown) => Outcome::Shown(Box::new(shown), subject),
        Err(error) => Outcome::Rejected(error, subject, message.payload),
    }
}

/// Writes a message's body as it came, and a newline (`--raw`).
fn print_raw(body: &[u8]) -> anyhow::Result<()> {
    crate::to_stdout(|out| {
        out.write_all(body)?;
        out.write_all(b"\n")
    })
}

/// Prints one message's outcome (the `number`th shown), in text under its
/// [`Arrival`] line; the exit code it calls for if it failed: its error
/// kind's if it was not decoded, [`exit::BAD_INPUT`] if a payload is not
/// what its type says.
fn print(
    outcome: Outcome,
    args: &ListenArgs,
    number: usize,
    arrival: &Arrival,
) -> anyhow::Result<Option<u8>> {
    let subject = match &outcome {
        Outcome::Shown(_, subject) | Outcome::Rejected(_, subject, _) => subject,
    };
    if !args.json {
        crate::print_line(arrival.line(subject))?;
    }
    match outcome {
        Outcome::Shown(shown, subject) => {
            tracing::info!(subject = %subject, msg_id = %shown.envelope.msg_id, "received");
            let decoded = show::print(&shown, &subject, args.json)?;
            Ok((!decoded).then_some(exit::BAD_INPUT))
        }
        Outcome::Rejected(error, subject, payload) => {
            tracing::info!(subject = %subject, error = %error, "rejected");
            if let Some(dir) = &args.out {
                save_failed(dir, number, &payload)?;
            }
            let line = if args.json {
                report::error_line(&error)
            } else {
                show::rejected(&subject, &error)
            };
            crate::print_line(line)?;
            Ok(Some(exit::for_kind(error.kind())))
        }
    }
}

/// Keeps a message that did not decode as `DIR/failed/N.msg`, under a
/// fresh name if that one is taken (never over a file, never through a
/// symlink).
fn save_failed(dir: &std::path::Path, number: usize, payload: &[u8]) -> anyhow::Result<()> {
    let failed = dir.join("failed");
    std::fs::create_dir_all(&failed)?;
    for n in 1u32.. {
        let name = if n == 1 { format!("{number}.msg") } else { format!("{number}-{n}.msg") };
        match report::write_new(&failed.join(name), payload) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
