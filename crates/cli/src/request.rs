//! `natsbridge request`: send a request envelope and print the answer's line.

use std::process::ExitCode;

use clap::Args;

use crate::connect::{NatsArgs, connect};
use crate::send::EnvelopeArgs;
use crate::{parse_payloads, report};

#[derive(Debug, Args)]
pub(crate) struct RequestArgs {
    /// Subject to send the request to.
    subject: String,
    #[command(flatten)]
    envelope: EnvelopeArgs,
}

pub(crate) async fn run(args: RequestArgs, nats: &NatsArgs) -> anyhow::Result<ExitCode> {
    let payloads = parse_payloads(&args.envelope.payloads)?;
    let timeout = nats.timeout()?;
    let target = nats.target()?;
    let options = args.envelope.options(&target.url);
    let bridge = connect(target, args.envelope.fileserver.as_deref(), &[]).await?;
    tracing::info!(subject = %args.subject, "sending the request");
    let answer = bridge.request(&args.subject, payloads, options, timeout).await?;
    tracing::info!(msg_id = %answer.msg_id, "reply received");
    println!("{}", report::line(&answer, None)?);
    Ok(ExitCode::SUCCESS)
}
