//! `natsbridge unpack`: read an envelope from a file or stdin and show it.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use natsbridge::Envelope;
use natsbridge::claimcheck::http::HttpDownloader;

use crate::connect::{LinkArgs, Store, Unlisted, link_policy};
use crate::exit::{self, BadInput};
use crate::progress::Progress;
use crate::{receive, show};

#[derive(Debug, Args)]
pub(crate) struct UnpackArgs {
    /// The envelope file, or `-` for standard input.
    file: String,
    #[command(flatten)]
    links: LinkArgs,
    /// Save each payload's bytes under this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print one JSON line (a summary of each payload) instead of the
    /// payloads decoded for a person.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) async fn run(args: UnpackArgs) -> anyhow::Result<ExitCode> {
    let mut message = Vec::new();
    if args.file == "-" {
        std::io::stdin()
            .read_to_end(&mut message)
            .context("reading standard input")
            .context(BadInput)?;
    } else {
        message = std::fs::read(&args.file)
            .with_context(|| format!("reading {}", args.file))
            .context(BadInput)?;
    }
    let receiving = args.links.receiving(Unlisted::Fetch);
    let store = Store::plik(args.links.fileserver.as_deref());
    let downloader = link_policy(HttpDownloader::builder(), &store, &receiving);
    let downloader = Progress::stderr().downloader(downloader)?;
    let envelope = Envelope::from_json(&message).map_err(natsbridge::Error::from)?;
    let shown =
        receive::fetch_for_show(envelope, &downloader, &receiving.limits, args.out.as_deref())
            .await?;
    let envelope = &shown.envelope;
    tracing::info!(msg_id = %envelope.msg_id, payloads = envelope.payloads.len(), "unpacked");
    if show::print(&shown, &envelope.send_to, args.json)? {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(exit::BAD_INPUT))
    }
}
