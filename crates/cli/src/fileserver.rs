//! `natsbridge fileserver`: serve the Plik-compatible file store.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::json;

use natsbridge_fileserver::FileServer;

use crate::{ctrl_c, print_json};

#[derive(Debug, Args)]
pub(crate) struct FileserverArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: String,
    /// Directory to store uploads in.
    #[arg(long, default_value = "natsbridge-files", value_name = "DIR")]
    dir: PathBuf,
    /// Print the startup line as one JSON object (`url`, `dir`).
    #[arg(long)]
    pub(crate) json: bool,
    /// Let web pages from this origin (`http://127.0.0.1:5173`) call the
    /// server from a browser (CORS); repeatable, `*` for any origin.
    /// Default: none, as Plik.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origins: Vec<String>,
    /// The largest file accepted, in bytes (larger uploads get Plik's 400
    /// `file too big`). Default 10 GiB.
    #[arg(long, value_name = "BYTES")]
    max_file_size: Option<u64>,
    /// How long an upload lives when it asks for no TTL (natscli-style
    /// duration: `24h`, `90m`, `30s`, or seconds). Default 24h.
    #[arg(long, value_name = "DURATION", value_parser = crate::connect::parse_timeout)]
    default_ttl: Option<std::time::Duration>,
    /// The longest TTL an upload may ask for (longer, or infinite, is
    /// refused as Plik does). Default: no limit.
    #[arg(long, value_name = "DURATION", value_parser = crate::connect::parse_timeout)]
    max_ttl: Option<std::time::Duration>,
}

pub(crate) async fn run(args: FileserverArgs) -> anyhow::Result<ExitCode> {
    let interrupted = ctrl_c()?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let mut builder = FileServer::builder().dir(&args.dir);
    for origin in &args.cors_origins {
        builder = builder.cors_origin(origin);
    }
    if let Some(bytes) = args.max_file_size {
        builder = builder.max_file_size(bytes);
    }
    if let Some(ttl) = args.default_ttl {
        builder = builder.default_ttl(ttl);
    }
    if let Some(ttl) = args.max_ttl {
        builder = builder.max_ttl(ttl);
    }
    let server = builder
        .bind(args.listen.as_str())
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    if args.json {
        let line = json!({"url": server.url(), "dir": args.dir.display().to_string()});
        print_json(line.to_string().as_bytes())?;
    } else {
        let (url, dir) = (server.url(), args.dir.display());
        crate::print_line(format_args!("file server (Plik API) at {url} storing in {dir}"))?;
    }
    interrupted.await;
    tracing::info!("stopping the file server");
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
