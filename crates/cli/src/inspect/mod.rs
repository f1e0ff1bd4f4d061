//! `natsbridge inspect`: a web page on loopback that shows the envelopes
//! arriving on the watched subjects as they come, newest first, each
//! decoded for a person, conversations paired, failures listed, and that
//! sends messages too. `natsbridge dev` serves the same page.
//!
//! Links are never fetched on arrival: a one-shot link read by the
//! inspector would be gone for the service it was meant for. The page
//! fetches one (through the download path `listen` uses: origin allowlist,
//! size cap, size and SHA-256 checked) only when a person asks.

mod history;
mod outgoing;
mod preview;
mod server;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::Args;
use futures_util::StreamExt;
use natsbridge::Bridge;
use natsbridge::claimcheck::{DownloadHandler, http::HttpDownloader};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::connect::{
    LinkArgs, NatsArgs, Receiving, Store, Unlisted, connect_to_store, link_policy,
};
use crate::exit::BadInput;
use crate::{print_json, redact_url};
use natsbridge_fileserver::{ServeLimits, serve};

/// Where and how the page is served, and how much it keeps (`inspect`
/// and `dev`).
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Inspector page")]
pub(crate) struct PageArgs {
    /// Address to serve the inspector page on (port 0: a free one). Only a
    /// loopback address unless --allow-remote.
    #[arg(long = "listen", value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub(crate) listen: String,
    /// Serve the page beyond this machine (anyone who reaches it can read
    /// the traffic, fetch links and send messages).
    #[arg(long)]
    pub(crate) allow_remote: bool,
    /// Keep at most this many messages (the oldest go first).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub(crate) history: usize,
    /// Keep at most this many bytes of messages (bodies, decoded payloads
    /// and fetched links together; the oldest go first).
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20)]
    pub(crate) history_bytes: usize,
    /// The largest link payload the page may fetch.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub(crate) max_link_size: u64,
    /// The largest file the page may send.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30)]
    pub(crate) max_upload: u64,
    /// How long a connection may take to send a request's headers before
    /// it is closed (hidden: tests shorten it).
    #[arg(long, value_name = "SECONDS", default_value_t = HEADER_READ_TIMEOUT_SECS, hide = true)]
    pub(crate) header_read_timeout: u64,
}

/// How long a connection to the page may take to send a request's headers
/// (as the file server): a client that opens connections and trickles
/// bytes cannot hold them open longer.
const HEADER_READ_TIMEOUT_SECS: u64 = 30;

/// The most connections the page serves at once; more wait to be accepted.
/// A page holds one for its event stream and a few for requests.
const MAX_CONNECTIONS: usize = 256;

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// Subjects to watch (wildcards allowed). Default `>`: every subject
    /// except the server's own (`$JS.API...`, `$SYS...`).
    #[arg(value_name = "SUBJECT")]
    subjects: Vec<String>,
    #[command(flatten)]
    page: PageArgs,
    #[command(flatten)]
    links: LinkArgs,
    #[command(flatten)]
    pub(crate) nats: NatsArgs,
    /// Payloads sent from the page of this many bytes or more go by link
    /// (to --fileserver).
    #[arg(long, value_name = "BYTES", default_value_t = natsbridge::envelope::DEFAULT_SIZE_THRESHOLD)]
    threshold: usize,
    /// Print the page's address as one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

/// A running inspector: its page and its subscriptions, stopped when
/// dropped.
#[derive(Debug)]
pub(crate) struct Inspector {
    /// `http://127.0.0.1:PORT/`.
    pub(crate) url: String,
    /// The tasks that record what arrives, one a subject.
    watchers: Vec<JoinHandle<()>>,
    /// Set to ask the watchers to drain their subscriptions.
    draining: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Inspector {
    /// Stops taking messages (each subscription drained: the server sends
    /// nothing more, what it sent is recorded), and returns once every
    /// message delivered to the process is in the history. The page is
    /// served until the inspector is dropped.
    pub(crate) async fn drain(&mut self) {
        let _ = self.draining.send(true);
        for watcher in self.watchers.drain(..) {
            let _ = watcher.await;
        }
    }
}

impl Drop for Inspector {
    fn drop(&mut self) {
        for task in self.tasks.iter().chain(&self.watchers) {
            task.abort();
        }
    }
}

/// What the inspector needs besides its page settings.
#[derive(Debug)]
pub(crate) struct Watch<'a> {
    pub(crate) bridge: Bridge,
    pub(crate) subjects: Vec<String>,
    /// Shown on the page (credentials removed).
    pub(crate) nats_url: &'a str,
    pub(crate) fileserver: Option<&'a str>,
    pub(crate) allow_origin: &'a [String],
    pub(crate) threshold: usize,
}

pub(crate) async fn run(args: InspectArgs, nats: &NatsArgs) -> anyhow::Result<ExitCode> {
    args.page.check()?;
    let mut stop = crate::stop::signals("recording the messages already received")?;
    let target = nats.target()?;
    let nats_url = target.url.clone();
    let store = Store::plik(args.links.fileserver.as_deref());
    let bridge = connect_to_store(target, &store, &args.links.receiving(Unlisted::Fetch)).await?;
    let subjects = if args.subjects.is_empty() { vec![">".to_string()] } else { args.subjects };
    let inspector = start(
        Watch {
            bridge,
            subjects: subjects.clone(),
            nats_url: &nats_url,
            fileserver: args.links.fileserver.as_deref(),
            allow_origin: &args.links.allow_origin,
            threshold: args.threshold,
        },
        &args.page,
    )
    .await?;
    say!("natsbridge: listening on {}", subjects.join(" "));
    if args.json {
        let line = json!({"url": inspector.url, "subjects": subjects});
        print_json(line.to_string().as_bytes())?;
    } else {
        crate::print_line(format_args!("inspector at {}", inspector.url))?;
    }
    stop.requested().await;
    let mut inspector = inspector;
    inspector.drain().await;
    drop(inspector);
    Ok(ExitCode::SUCCESS)
}

/// Subscribes to the subjects, then serves the page; returns once both
/// are ready (the server has the subscriptions, the socket listens).
impl PageArgs {
    /// The address to serve on, if the settings can be used: a loopback
    /// address unless `--allow-remote`, limits of at least 1. Checked
    /// before connecting, so that bad input is said first.
    pub(crate) fn check(&self) -> anyhow::Result<SocketAddr> {
        let addr: SocketAddr = self
            .listen
            .parse()
            .with_context(|| format!("--listen {:?} is not an address (IP:PORT)", self.listen))
            .context(BadInput)?;
        if !addr.ip().is_loopback() && !self.allow_remote {
            return Err(anyhow::anyhow!(
                "--listen {addr} is not a loopback address: the page shows every message and \
                 can send and fetch links; add --allow-remote to serve it beyond this machine"
            )
            .context(BadInput));
        }
        if self.history == 0 || self.history_bytes == 0 {
            return Err(anyhow::anyhow!("--history and --history-bytes must be at least 1")
                .context(BadInput));
        }
        if self.header_read_timeout == 0 {
            return Err(anyhow::anyhow!("--header-read-timeout must be at least 1 second")
                .context(BadInput));
        }
        Ok(addr)
    }
}

pub(crate) async fn start(watch: Watch<'_>, page: &PageArgs) -> anyhow::Result<Inspector> {
    let addr = page.check()?;
    // listen's download path (its allowlist), capped for a page that
    // keeps what it fetches in memory.
    let downloader = HttpDownloader::builder()
        .max_download_size(page.max_link_size.min(page.history_bytes as u64));
    let store = Store::plik(watch.fileserver);
    let downloader = link_policy(
        downloader,
        &store,
        &Receiving { allow_origin: watch.allow_origin, ..Receiving::defaults() },
    );
    let downloader: Arc<dyn DownloadHandler> = Arc::new(downloader.build()?);

    for subject in &watch.subjects {
        crate::subject::check_subscribe(subject)?;
    }
    let mut subscribers = Vec::new();
    for subject in &watch.subjects {
        let subscriber = watch
            .bridge
            .connection()
            .subscribe(subject)
            .await
            .with_context(|| format!("subscribing to {subject:?}"))?;
        subscribers.push((subject.clone(), subscriber));
    }
    watch.bridge.connection().sync().await?;

    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("serving the inspector page on {addr}"))?;
    let local_addr = listener.local_addr()?;
    let url = format!("http://{local_addr}/");
    let limits = history::Limits { messages: page.history, bytes: page.history_bytes };
    let (events, _) = broadcast::channel(1024);
    let state = Arc::new(server::State {
        history: Mutex::new(history::History::new(limits)),
        events,
        bridge: watch.bridge.clone(),
        downloader,
        fetching: Mutex::new(HashSet::new()),
        info: json!({
            "subjects": watch.subjects,
            "nats": redact_url(watch.nats_url),
            "fileserver": watch.fileserver.map(redact_url),
            "allow_origin": watch.allow_origin,
            "threshold": watch.threshold,
            "limits": {"messages": limits.messages, "bytes": limits.bytes,
                       "max_link_size": page.max_link_size.min(page.history_bytes as u64)},
        }),
        send: outgoing::Settings {
            threshold: watch.threshold,
            broker_url: redact_url(watch.nats_url),
        },
        files: tempfile::Builder::new().prefix("natsbridge-inspect-").tempdir()?,
        next_file: AtomicU64::new(1),
        max_upload: page.max_upload,
        allow_remote: page.allow_remote,
        local_addr,
    });

    let mut tasks = Vec::new();
    let mut watchers = Vec::new();
    let (draining, drain) = tokio::sync::watch::channel(false);
    for (subject, mut subscriber) in subscribers {
        let state = state.clone();
        let mut drain = drain.clone();
        // The server's own traffic (JetStream's API, system events) is not
        // envelopes: watched only when asked for by name.
        let skip_system = subject == ">";
        watchers.push(tokio::spawn(async move {
            let mut drained = false;
            loop {
                let message = tokio::select! {
                    message = subscriber.next() => message,
                    Ok(()) = async { drain.wait_for(|d| *d).await.map(|_| ()) }, if !drained => {
                        drained = true;
                        if let Err(e) = subscriber.drain().await {
                            tracing::warn!(error = %e, "draining a subscription");
                            return;
                        }
                        continue;
                    }
                };
                let Some(message) = message else { return };
                let subject = message.subject.to_string();
                // An empty message on an inbox is a client's round trip to
                // the server (see `Connection::sync`), never an envelope.
                let probe = message.payload.is_empty() && subject.starts_with("_INBOX.");
                if probe || (skip_system && subject.starts_with('$')) {
                    continue;
                }
                state.arrived(subject, message.payload);
            }
        }));
    }
    // Served until the inspector is dropped (its tasks are aborted then).
    let limits = ServeLimits {
        header_read_timeout: std::time::Duration::from_secs(page.header_read_timeout),
        max_connections: MAX_CONNECTIONS,
        ..ServeLimits::default()
    };
    let router = server::router(state);
    tasks.push(tokio::spawn(serve(listener, router, limits, std::future::pending())));
    tracing::info!(url = %url, "inspector page served");
    Ok(Inspector { url, watchers, draining, tasks })
}
