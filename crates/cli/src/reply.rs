//! `natsbridge reply`: answer requests on a subject.

use std::process::ExitCode;

use clap::Args;

use natsbridge::{Payload, SendOptions};

use crate::connect::{LinkArgs, NatsArgs, connect};
use crate::{redact_url, report};

#[derive(Debug, Args)]
pub(crate) struct ReplyArgs {
    /// Subject to answer requests on.
    subject: String,
    #[command(flatten)]
    links: LinkArgs,
    /// Answer every request with its own payloads.
    #[arg(long, required = true)]
    echo: bool,
    /// Exit after answering this many requests.
    #[arg(long, value_name = "N")]
    count: Option<usize>,
}

pub(crate) async fn run(args: ReplyArgs, nats: &NatsArgs) -> anyhow::Result<ExitCode> {
    let target = nats.target()?;
    let broker_url = redact_url(&target.url);
    let bridge =
        connect(target, args.links.fileserver.as_deref(), &args.links.allow_origin).await?;
    let mut sub = bridge.subscribe(&args.subject).await?;
    bridge.connection().sync().await?;
    eprintln!("natsbridge: answering on {}", args.subject);
    let mut answered = 0usize;
    while args.count.is_none_or(|n| answered < n) {
        let Some(item) = sub.next().await else { break };
        match item {
            Ok(request) => {
                let payloads = request
                    .envelope
                    .payloads
                    .iter()
                    .filter_map(|r| {
                        r.bytes().map(|b| {
                            Payload::new(r.dataname.clone(), r.payload_type.clone(), b.clone())
                        })
                    })
                    .collect();
                tracing::info!(msg_id = %request.envelope.msg_id, "answering");
                // broker_url is set here so that the server URL's
                // credentials, if any, are not sent on.
                let options =
                    SendOptions { broker_url: broker_url.clone(), ..SendOptions::default() };
                let answer = bridge.reply(&request, payloads, options).await?;
                // The answer must leave before `--count` ends the process.
                bridge.connection().flush().await?;
                if let Some(answer) = answer {
                    println!("{}", report::line(&answer, None)?);
                    answered += 1;
                }
            }
            Err(rejected) => println!("{}", report::error_line(&rejected.error)),
        }
    }
    Ok(ExitCode::SUCCESS)
}
