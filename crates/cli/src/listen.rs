//! `natsbridge listen`: subscribe and show each envelope that arrives.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

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
    #[arg(long, value_name = "GROUP")]
    queue: Option<String>,
    /// Print one JSON line per message (a summary of each payload) instead
    /// of the payloads decoded for a person.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: ListenArgs, nats: &NatsArgs) -> anyhow::Result<ExitCode> {
    let bridge =
        connect(nats.target()?, args.links.fileserver.as_deref(), &args.links.allow_origin).await?;
    let mut sub = match &args.queue {
        Some(group) => bridge.queue_subscribe(&args.subject, group).await?,
        None => bridge.subscribe(&args.subject).await?,
    };
    bridge.connection().sync().await?;
    eprintln!("natsbridge: listening on {}", args.subject);
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
