//! `natsbridge dev`: a local nats-server and file server, and the
//! inspector page watching them, until Ctrl-C.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use crate::connect::{Receiving, Store, Target, connect_to_store};
use crate::{ctrl_c, inspect, local, print_json};

#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    /// Print one JSON object on stdout instead of the human-readable text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    page: inspect::PageArgs,
}

pub(crate) async fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    args.page.check()?;
    let interrupted = ctrl_c()?;
    let nats = local::NatsProcess::start()?;
    let files = local::LocalFiles::start().await?;
    tracing::info!(nats = %nats.url, fileserver = %files.url(), "local servers started");
    // The page watches every subject of the local server; what it sends
    // goes by link to the local file server by `send`'s rules.
    let bridge = connect_to_store(
        Target::url(&nats.url),
        &Store::plik(Some(files.url())),
        &Receiving::defaults(),
    )
    .await?;
    let inspector = inspect::start(
        inspect::Watch {
            bridge,
            subjects: vec![">".into()],
            nats_url: &nats.url,
            fileserver: Some(files.url()),
            allow_origin: &[],
            threshold: natsbridge::envelope::DEFAULT_SIZE_THRESHOLD,
        },
        &args.page,
    )
    .await?;
    if args.json {
        let line = json!({
            "nats_url": nats.url,
            "nats_ws_url": nats.ws_url,
            "fileserver_url": files.url(),
            "inspector_url": inspector.url,
            "env": {
                "NATS_URL": nats.url,
                "NATS_WS_URL": nats.ws_url,
                "NATSBRIDGE_FILESERVER": files.url(),
            },
        });
        print_json(line.to_string().as_bytes())?;
    } else {
        crate::to_stdout(|out| {
            writeln!(
                out,
                "nats-server (JetStream, WebSocket) at {} and {}",
                nats.url, nats.ws_url
            )?;
            writeln!(out, "file server (Plik API) at {}", files.url())?;
            writeln!(out, "inspector (every envelope, live) at {}", inspector.url)?;
            writeln!(out)?;
            writeln!(out, "export NATS_URL={}", nats.url)?;
            writeln!(out, "export NATS_WS_URL={}", nats.ws_url)?;
            writeln!(out, "export NATSBRIDGE_FILESERVER={}", files.url())?;
            writeln!(out)?;
            writeln!(out, "Ctrl-C stops them all.")
        })?;
    }
    interrupted.await;
    tracing::info!("stopping the local servers");
    drop(inspector);
    files.stop().await;
    drop(nats);
    Ok(ExitCode::SUCCESS)
}
