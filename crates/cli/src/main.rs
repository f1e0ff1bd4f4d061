//! `natsbridge`: the command line of the Rust natsbridge peer.
//!
//! Built on the `natsbridge` facade only. See `docs/cli.md` for the contract.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use natsbridge::claimcheck::{HttpDownloader, PlikUploader};
use natsbridge::envelope::DEFAULT_MAX_PAYLOAD;
use natsbridge::{Bridge, Payload, SendOptions, pack_files, smartunpack};
use natsbridge_fileserver::FileServer;

use crate::progress::Progress;

mod demo;
mod local;
mod payload_arg;
mod progress;
mod report;

/// The Rust peer of the natsbridge / msghandler message bridge over NATS.
#[derive(Debug, Parser)]
#[command(name = "natsbridge", version, about, long_about = None)]
struct Cli {
    /// Log what happens on stderr: -v natsbridge's steps, -vv more detail
    /// (debug), -vvv everything (trace). Off by default. RUST_LOG, if set,
    /// replaces the filter.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build an envelope from payloads and publish it (or only print it).
    Send(Box<SendArgs>),
    /// Subscribe and print one JSON line per envelope received.
    Listen(ListenArgs),
    /// Send a request envelope (NATS request inbox) and print the reply's line.
    Request(Box<RequestArgs>),
    /// Answer requests on a subject.
    Reply(ReplyArgs),
    /// Run the seeds' walkthroughs end to end on a local nats-server and
    /// file server, and report what went which way.
    Demo(JsonArg),
    /// Read an envelope from a file (or `-` for stdin), fetch its link
    /// payloads, and print its one-line report.
    Unpack(UnpackArgs),
    /// Serve the Plik-compatible file store (the local claim-check default).
    Fileserver(FileserverArgs),
    /// Start a nats-server (JetStream and WebSocket on) and the file server
    /// on free loopback ports, print their URLs, stop both on Ctrl-C.
    Dev(JsonArg),
}

#[derive(Debug, Args)]
struct JsonArg {
    /// Print one JSON object on stdout instead of the human-readable text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct EnvelopeArgs {
    /// Payloads as TYPE:NAME=VALUE; TYPE is one of text, dictionary,
    /// arrowtable, table, jsontable, image, audio, video, binary. VALUE is
    /// the literal (JSON for dictionary and jsontable) or @PATH to read a
    /// file. arrowtable takes @PATH of Arrow IPC (stream or file) or of a
    /// .csv, converted to an Arrow IPC stream; table is the same under the
    /// first seed's name, for peers that know only that one.
    #[arg(required = true, value_name = "PAYLOAD")]
    payloads: Vec<String>,
    /// Claim-check file server (Plik API) for payloads that go by link.
    #[arg(long, env = "NATSBRIDGE_FILESERVER", value_name = "URL")]
    fileserver: Option<String>,
    /// Payloads of this many bytes or more go by link.
    #[arg(long, value_name = "BYTES", default_value_t = natsbridge::envelope::DEFAULT_SIZE_THRESHOLD)]
    threshold: usize,
    /// Subject replies should be published to. For `request`: the subject
    /// it waits on (subscribed before the request is sent); default a
    /// fresh inbox, named in the envelope's reply_to either way.
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
            broker_url: redact_url(broker_url),
            size_threshold: self.threshold,
            ..SendOptions::default()
        }
    }

    fn uploader(
        &self,
        progress: &Progress,
    ) -> anyhow::Result<Option<Arc<dyn natsbridge::claimcheck::UploadHandler>>> {
        self.fileserver
            .as_deref()
            .map(|url| {
                let plik = PlikUploader::new(url)
                    .with_context(|| format!("file server {}", redact_url(url)))?;
                Ok(progress.uploader(Arc::new(plik)))
            })
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
struct ServerArgs {
    /// NATS server URL.
    #[arg(long, env = "NATS_URL", default_value = "nats://localhost:4222")]
    server: String,
    /// File server for link payloads (uploads; downloads are allowed from
    /// any http/https origin unless --allow-origin is given).
    #[arg(long, env = "NATSBRIDGE_FILESERVER", value_name = "URL")]
    fileserver: Option<String>,
    /// Only download link payloads from these origins (repeatable).
    #[arg(long, value_name = "URL")]
    allow_origin: Vec<String>,
}

impl ServerArgs {
    async fn connect(&self) -> anyhow::Result<Bridge> {
        connect(&self.server, self.fileserver.as_deref(), &self.allow_origin).await
    }
}

#[derive(Debug, Args)]
struct ListenArgs {
    /// Subject to subscribe to (wildcards allowed).
    subject: String,
    #[command(flatten)]
    server: ServerArgs,
    /// Exit 0 after this many messages (default: run until Ctrl-C).
    #[arg(long, value_name = "N")]
    count: Option<usize>,
    /// Exit non-zero if the messages have not all arrived after this many seconds.
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// Save payloads under DIR/<msg_id>/, and undecodable messages under DIR/failed/.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Join this queue group (each message goes to one member).
    #[arg(long, value_name = "GROUP")]
    queue: Option<String>,
}

#[derive(Debug, Args)]
struct RequestArgs {
    /// Subject to send the request to.
    subject: String,
    #[command(flatten)]
    envelope: EnvelopeArgs,
    /// NATS server URL.
    #[arg(long, env = "NATS_URL", default_value = "nats://localhost:4222")]
    server: String,
    /// Seconds to wait for the reply.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    timeout: f64,
}

#[derive(Debug, Args)]
struct ReplyArgs {
    /// Subject to answer requests on.
    subject: String,
    #[command(flatten)]
    server: ServerArgs,
    /// Answer every request with its own payloads.
    #[arg(long, required = true)]
    echo: bool,
    /// Exit after answering this many requests.
    #[arg(long, value_name = "N")]
    count: Option<usize>,
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
    /// Print the startup line as one JSON object (`url`, `dir`).
    #[arg(long)]
    json: bool,
    /// Let web pages from this origin (`http://127.0.0.1:5173`) call the
    /// server from a browser (CORS); repeatable, `*` for any origin.
    /// Default: none, as Plik.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origins: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
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

/// Sends `tracing` logs to stderr at the level `-v` asks for. Other crates
/// (the NATS client, hyper) stay at `warn`: their debug logs may show
/// server addresses with credentials.
fn init_logging(verbose: u8) {
    let filter = match verbose {
        0 => return,
        1 => "warn,natsbridge=info",
        2 => "warn,natsbridge=debug",
        _ => "warn,natsbridge=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// `url` without what must not be printed or sent on: user name and
/// password (or token) and the query (a presigned signature). Each of a
/// comma-separated list of servers is redacted.
pub(crate) fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|one| {
            let (one, query) = match one.find(['?', '#']) {
                Some(at) => (&one[..at], "?<redacted>"),
                None => (one, ""),
            };
            let (scheme, rest) = match one.find("://") {
                Some(at) => one.split_at(at + 3),
                None => ("", one),
            };
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let rest = match rest[..authority_end].rfind('@') {
                Some(at) => &rest[at + 1..],
                None => rest,
            };
            format!("{scheme}{rest}{query}")
        })
        .collect::<Vec<_>>()
        .join(",")
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
        Command::Dev(args) => dev(args.json).await,
        Command::Listen(args) => listen(args).await,
        Command::Request(args) => request(*args).await,
        Command::Reply(args) => reply(args).await,
        Command::Demo(args) => demo::run(args.json).await,
    }
}

async fn dev(as_json: bool) -> anyhow::Result<ExitCode> {
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

async fn send(args: SendArgs) -> anyhow::Result<ExitCode> {
    let payloads = args
        .envelope
        .payloads
        .iter()
        .map(|p| payload_arg::parse_outgoing(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let options = args.envelope.options(&args.server);
    let (envelope, json) = if args.no_publish {
        // Nothing is published, so there is no server to ask for its
        // max_payload: NATS's default applies.
        let uploader = args.envelope.uploader(&Progress::stderr())?;
        pack_files(&args.subject, payloads, options, uploader.as_deref(), DEFAULT_MAX_PAYLOAD)
            .await?
    } else {
        let bridge = connect(&args.server, args.envelope.fileserver.as_deref(), &[]).await?;
        let sent = bridge.smartsend_files(&args.subject, payloads, options).await?;
        bridge.connection().flush().await?;
        tracing::info!(subject = %args.subject, msg_id = %sent.0.msg_id, "published");
        sent
    };
    tracing::info!(
        msg_id = %envelope.msg_id,
        bytes = json.len(),
        payloads = envelope.payloads.len(),
        links = envelope.payloads.iter().filter(|p| p.transport().as_str() == "link").count(),
        "envelope built"
    );
    print_json(&json)?;
    Ok(ExitCode::SUCCESS)
}

/// Listens for Ctrl-C from now on and returns the wait for it. Listening
/// before the ready line is printed means a Ctrl-C sent right after it is
/// not missed (its default action would end the process without stopping
/// the servers it started).
fn ctrl_c() -> anyhow::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
        Ok(async move {
            interrupt.recv().await;
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// A bridge to `server`: link payloads are uploaded to `fileserver` if
/// given, and downloaded only from `allow_origin` if any; both with
/// progress bars on a terminal.
async fn connect(
    server: &str,
    fileserver: Option<&str>,
    allow_origin: &[String],
) -> anyhow::Result<Bridge> {
    let progress = Progress::stderr();
    let mut downloader = HttpDownloader::builder();
    for origin in allow_origin {
        downloader = downloader.allow_origin(origin);
    }
    let mut builder = Bridge::builder(server).download_handler(progress.downloader(downloader)?);
    if let Some(url) = fileserver {
        let plik =
            PlikUploader::new(url).with_context(|| format!("file server {}", redact_url(url)))?;
        builder = builder.upload_handler(progress.uploader(Arc::new(plik)));
    }
    tracing::info!(server = %redact_url(server), "connecting to NATS");
    let bridge =
        builder.connect().await.with_context(|| format!("connecting to {}", redact_url(server)))?;
    tracing::debug!("connected");
    Ok(bridge)
}

fn print_json(json: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(json)?;
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    Ok(())
}

fn parse_payloads(args: &[String]) -> anyhow::Result<Vec<Payload>> {
    args.iter().map(|p| payload_arg::parse(p)).collect()
}

fn seconds(secs: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .map_err(|e| anyhow::anyhow!("bad number of seconds {secs}: {e}"))
}

async fn listen(args: ListenArgs) -> anyhow::Result<ExitCode> {
    let bridge = args.server.connect().await?;
    let mut sub = match &args.queue {
        Some(group) => bridge.queue_subscribe(&args.subject, group).await?,
        None => bridge.subscribe(&args.subject).await?,
    };
    bridge.connection().sync().await?;
    eprintln!("natsbridge: listening on {}", args.subject);
    let deadline = args.timeout.map(seconds).transpose()?.map(|d| tokio::time::Instant::now() + d);
    let mut received = 0usize;
    while args.count.is_none_or(|n| received < n) {
        let next = match deadline {
            Some(at) => match tokio::time::timeout_at(at, sub.next()).await {
                Ok(next) => next,
                Err(_) => {
                    eprintln!("natsbridge: timed out after {received} message(s)");
                    return Ok(ExitCode::from(2));
                }
            },
            None => sub.next().await,
        };
        let Some(item) = next else { break };
        received += 1;
        let line = match item {
            Ok(msg) => {
                tracing::info!(subject = %msg.subject, msg_id = %msg.envelope.msg_id, "received");
                report::line(&msg.envelope, args.out.as_deref())?
            }
            Err(rejected) => {
                tracing::info!(subject = %rejected.subject, error = %rejected.error, "rejected");
                if let Some(dir) = &args.out {
                    let failed = dir.join("failed");
                    std::fs::create_dir_all(&failed)?;
                    std::fs::write(failed.join(format!("{received}.msg")), &rejected.payload)?;
                }
                report::error_line(&rejected.error)
            }
        };
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}")?;
        stdout.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn request(args: RequestArgs) -> anyhow::Result<ExitCode> {
    let payloads = parse_payloads(&args.envelope.payloads)?;
    let bridge = connect(&args.server, args.envelope.fileserver.as_deref(), &[]).await?;
    let options = args.envelope.options(&args.server);
    tracing::info!(subject = %args.subject, "sending the request");
    let answer = bridge.request(&args.subject, payloads, options, seconds(args.timeout)?).await?;
    tracing::info!(msg_id = %answer.msg_id, "reply received");
    println!("{}", report::line(&answer, None)?);
    Ok(ExitCode::SUCCESS)
}

async fn reply(args: ReplyArgs) -> anyhow::Result<ExitCode> {
    let bridge = args.server.connect().await?;
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
                let options = SendOptions {
                    broker_url: redact_url(&args.server.server),
                    ..SendOptions::default()
                };
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

async fn unpack(args: UnpackArgs) -> anyhow::Result<ExitCode> {
    let mut message = Vec::new();
    if args.file == "-" {
        std::io::stdin().read_to_end(&mut message).context("reading standard input")?;
    } else {
        message = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file))?;
    }
    let downloader = Progress::stderr().downloader(HttpDownloader::builder())?;
    let envelope = smartunpack(&message, &downloader).await?;
    tracing::info!(msg_id = %envelope.msg_id, payloads = envelope.payloads.len(), "unpacked");
    println!("{}", report::line(&envelope, args.out.as_deref())?);
    Ok(ExitCode::SUCCESS)
}

async fn fileserver(args: FileserverArgs) -> anyhow::Result<ExitCode> {
    let interrupted = ctrl_c()?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let server = args
        .cors_origins
        .iter()
        .fold(FileServer::builder().dir(&args.dir), |b, origin| b.cors_origin(origin))
        .bind(args.listen.as_str())
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    if args.json {
        let line = json!({"url": server.url(), "dir": args.dir.display().to_string()});
        print_json(line.to_string().as_bytes())?;
    } else {
        println!("file server (Plik API) at {} storing in {}", server.url(), args.dir.display());
        std::io::stdout().flush()?;
    }
    interrupted.await;
    tracing::info!("stopping the file server");
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redact_url_drops_credentials_and_queries() {
        for (url, expected) in [
            ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
            ("nats://alice:s3cret@127.0.0.1:4222", "nats://127.0.0.1:4222"),
            ("nats://t0ken@host:4222,nats://u:p@other:4222", "nats://host:4222,nats://other:4222"),
            ("https://files/x.bin?X-Amz-Signature=abc", "https://files/x.bin?<redacted>"),
            ("http://u:p@files:8080/file/a/b/c@d", "http://files:8080/file/a/b/c@d"),
            ("localhost:4222", "localhost:4222"),
        ] {
            assert_eq!(redact_url(url), expected);
        }
    }
}
