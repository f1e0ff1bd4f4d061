//! `natsbridge dev`: a local nats-server and file server until Ctrl-C.

use std::io::Write;
use std::process::ExitCode;

use serde_json::json;

use crate::{ctrl_c, local, print_json};

pub(crate) async fn run(as_json: bool) -> anyhow::Result<ExitCode> {
    let interrupted = ctrl_c()?;
    let nats = local::NatsProcess::start()?;
    let files = local::LocalFiles::start().await?;
    tracing::info!(nats = %nats.url, fileserver = %files.url(), "local servers started");
    if as_json {
        let line = json!({
            "nats_url": nats.url,
            "nats_ws_url": nats.ws_url,
            "fileserver_url": files.url(),
            "env": {
                "NATS_URL": nats.url,
                "NATS_WS_URL": nats.ws_url,
                "NATSBRIDGE_FILESERVER": files.url(),
            },
        });
        print_json(line.to_string().as_bytes())?;
    } else {
        println!("nats-server (JetStream, WebSocket) at {} and {}", nats.url, nats.ws_url);
        println!("file server (Plik API) at {}", files.url());
        println!();
        println!("export NATS_URL={}", nats.url);
        println!("export NATS_WS_URL={}", nats.ws_url);
        println!("export NATSBRIDGE_FILESERVER={}", files.url());
        println!();
        println!("Ctrl-C stops both.");
        std::io::stdout().flush()?;
    }
    interrupted.await;
    tracing::info!("stopping the local servers");
    files.stop().await;
    drop(nats);
    Ok(ExitCode::SUCCESS)
}
