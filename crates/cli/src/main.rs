//! `natsbridge`: the command line of the Rust natsbridge peer.
//!
//! Built on the `natsbridge` facade only. See `docs/cli.md` for the contract.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use natsbridge::claimcheck::{FileServer, HttpDownloader, PlikUploader, UploadHandler};
use natsbridge::envelope::DEFAULT_MAX_PAYLOAD;
use natsbridge::{SendOptions, smartpack, smartunpack};

mod local;
mod payload_arg;
mod report;

/// The Rust peer of the natsbridge / msghandler message bridge over NATS.
#[derive(Debug, Parser)]
#[command(name = "natsbridge", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build an envelope from payloads and publish it (or only print it).
    Send(Box<SendArgs>),
    /// Read an envelope from a file (or `-` for stdin), fetch its link
    /// payloads, and print its one-line report.
    Unpack(UnpackArgs),
    /// Serve the Plik-compatible file store (the local claim-check default).
    Fileserver(FileserverArgs),
    /// Start a nats-server (JetStream and WebSocket on) and the file server
    /// on free loopback ports, print their URLs, stop both on Ctrl-C.
    Dev,
}

#[derive(Debug, Args)]
struct EnvelopeArgs {
    /// Payloads as TYPE:NAME=VALUE; TYPE is one of text, dictionary,
    /// arrowtable, jsontable, image, audio, video, binary. VALUE is the
    /// literal (JSON for dictionary and jsontable) or @PATH to read a file.
    #[arg(required = true, value_name = "PAYLOAD")]
    payloads: Vec<String>,
    /// Claim-check file server (Plik API) for payloads that go by link.
    #[arg(long, env = "NATSBRIDGE_FILESERVER", value_name = "URL")]
    fileserver: Option<String>,
    /// Payloads of this many bytes or more go by link.
    #[arg(long, value_name = "BYTES", default_value_t = natsbridge::envelope::DEFAULT_SIZE_THRESHOLD)]
    threshold: usize,
    /// Subject replies should be published to.
    #[arg(long, value_name = "SUBJECT")]
    reply_to: Option<String>,
    /// For a reply: the msg_id of the request it answers.
    #[arg(long, value_name = "ID")]
    reply_to_msg_id: Option<String>,
    /// Correlation id (default: a fresh UUID v4).
    #[arg(long, value_name = "ID")]
    correlation_id: Option<String>,
    /// msg_purpose (chat, ACK, NACK, updateStatus, shutdown, ...).
    #[arg(long, default_value = natsbridge::envelope::DEFAULT_MSG_PURPOSE)]
    msg_purpose: String,
    /// sender_name.
    #[arg(long, default_value = natsbridge::envelope::DEFAULT_SENDER_NAME)]
    sender_name: String,
    /// receiver_name.
    #[arg(long, default_value = "")]
    receiver_name: String,
    /// receiver_id.
    #[arg(long, default_value = "")]
    receiver_id: String,
}

impl EnvelopeArgs {
    fn options(&self, broker_url: &str) -> SendOptions {
        SendOptions {
            correlation_id: self.correlation_id.clone(),
            msg_purpose: self.msg_purpose.clone(),
            sender_name: self.sender_name.clone(),
            receiver_name: self.receiver_name.clone(),
            receiver_id: self.receiver_id.clone(),
            reply_to: self.reply_to.clone().unwrap_or_default(),
            reply_to_msg_id: self.reply_to_msg_id.clone().unwrap_or_default(),
            broker_url: broker_url.into(),
            size_threshold: self.threshold,
            ..SendOptions::default()
        }
    }

    fn uploader(&self) -> anyhow::Result<Option<PlikUploader>> {
        self.fileserver
            .as_deref()
            .map(|url| PlikUploader::new(url).with_context(|| format!("file server {url}")))
            .transpose()
    }
}

#[derive(Debug, Args)]
struct SendArgs {
    /// Subject to publish to.
    subject: String,
    #[command(flatten)]
    envelope: EnvelopeArgs,
    /// NATS server URL.
    #[arg(long, env = "NATS_URL", default_value = "nats://localhost:4222")]
    server: String,
    /// Build and print the envelope without publishing it.
    #[arg(long)]
    no_publish: bool,
}

#[derive(Debug, Args)]
struct UnpackArgs {
    /// The envelope file, or `-` for standard input.
    file: String,
    /// Save each payload's bytes under this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct FileserverArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: String,
    /// Directory to store uploads in.
    #[arg(long, default_value = "natsbridge-files", value_name = "DIR")]
    dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("natsbridge: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("natsbridge: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ").replace('\n', " ")
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Send(args) => send(*args).await,
        Command::Unpack(args) => unpack(args).await,
        Command::Fileserver(args) => fileserver(args).await,
        Command::Dev => dev().await,
    }
}

async fn dev() -> anyhow::Result<ExitCode> {
    let nats = local::NatsProcess::start()?;
    let files = local::LocalFiles::start().await?;
    println!("nats-server (JetStream, WebSocket) at {} and {}", nats.url, nats.ws_url);
    println!("file server (Plik API) at {}", files.url());
    println!();
    println!("export NATS_URL={}", nats.url);
    println!("export NATS_WS_URL={}", nats.ws_url);
    println!("export NATSBRIDGE_FILESERVER={}", files.url());
    println!();
    println!("Ctrl-C stops both.");
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    files.stop().await;
    drop(nats);
    Ok(ExitCode::SUCCESS)
}

async fn send(args: SendArgs) -> anyhow::Result<ExitCode> {
    let payloads = args
        .envelope
        .payloads
        .iter()
        .map(|p| payload_arg::parse(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let uploader = args.envelope.uploader()?;
    let options = args.envelope.options(&args.server);
    if !args.no_publish {
        bail!(
            "publishing needs the NATS layer, which this build does not have yet; use --no-publish"
        );
    }
    let (_, json) = smartpack(
        &args.subject,
        payloads,
        options,
        uploader.as_ref().map(|u| u as &dyn UploadHandler),
        DEFAULT_MAX_PAYLOAD,
    )
    .await?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&json)?;
    stdout.write_all(b"\n")?;
    Ok(ExitCode::SUCCESS)
}

async fn unpack(args: UnpackArgs) -> anyhow::Result<ExitCode> {
    let mut message = Vec::new();
    if args.file == "-" {
        std::io::stdin().read_to_end(&mut message).context("reading standard input")?;
    } else {
        message = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file))?;
    }
    let downloader = HttpDownloader::new()?;
    let envelope = smartunpack(&message, &downloader).await?;
    println!("{}", report::line(&envelope, args.out.as_deref())?);
    Ok(ExitCode::SUCCESS)
}

async fn fileserver(args: FileserverArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let server = FileServer::builder()
        .dir(&args.dir)
        .bind(args.listen.as_str())
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    println!("file server (Plik API) at {} storing in {}", server.url(), args.dir.display());
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
