//! `natsbridge request`: send a request envelope and show the answer.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use crate::connect::{NatsArgs, Receiving, connect_to_store};
use crate::send::EnvelopeArgs;
use crate::{exit, parse_payloads, show};

#[derive(Debug, Args)]
pub(crate) struct RequestArgs {
    /// Subject to send the request to.
    subject: String,
    #[command(flatten)]
    pub(crate) nats: NatsArgs,
    #[command(flatten)]
    envelope: EnvelopeArgs,
    /// Save the answer's payloads under DIR/<msg_id>/.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the answer as one JSON line (a summary of each payload)
    /// instead of its payloads decoded for a person.
    #[arg(long)]
    pub(crate) json: bool,
}

impl RequestArgs {
    /// Whether a store for link payloads is set (for the error's hint).
    pub(crate) fn link_store(&self) -> bool {
        self.envelope.store().is_set()
    }
}

pub(crate) async fn run(args: RequestArgs, nats: &NatsArgs) -> anyhow::Result<ExitCode> {
    args.envelope.check_subjects(&args.subject)?;
    let payloads = parse_payloads(&args.envelope.payloads)?;
    let timeout = nats.timeout()?;
    let target = nats.target()?;
    let options = args.envelope.options(&target.url);
    let bridge = connect_to_store(target, &args.envelope.store(), &Receiving::defaults()).await?;
    tracing::info!(subject = %args.subject, "sending the request");
    let started = Instant::now();
    let answer = bridge.request(&args.subject, payloads, options, timeout).await?;
    // Whole microseconds: `1.523ms`, not `1.523456789ms`.
    let rtt = Duration::from_micros(started.elapsed().as_micros().try_into().unwrap_or(u64::MAX));
    tracing::info!(msg_id = %answer.msg_id, ?rtt, "reply received");
    if !args.json {
        // The service's subject, not the inbox the answer came on.
        crate::print_line(format_args!("Answer to {:?} in {rtt:?}", show::clean(&args.subject)))?;
    }
    let decoded = show::print_received(&answer, &args.subject, args.out.as_deref(), args.json)?;
    if answer.msg_purpose == crate::reply::FAILED_PURPOSE {
        report_failure(&args.subject, &answer);
        return Ok(ExitCode::from(exit::ANSWERED_ERROR));
    }
    if decoded { Ok(ExitCode::SUCCESS) } else { Ok(ExitCode::from(exit::BAD_INPUT)) }
}

/// Says on stderr that the responder answered with a failure, with the
/// text of its `error` payload (a failed `reply --command`: the reason and
/// the end of the command's stderr).
fn report_failure(subject: &str, answer: &natsbridge::Envelope) {
    say!(
        "natsbridge: {subject} answered with an error (msg_purpose {})",
        crate::reply::FAILED_PURPOSE
    );
    let error = answer.payloads.iter().find(|p| p.dataname == "error");
    if let Some(Ok(natsbridge::PayloadValue::Text(text))) = error.map(|p| p.value()) {
        for line in text.lines() {
            say!("    {}", show::clean(line));
        }
    }
}
