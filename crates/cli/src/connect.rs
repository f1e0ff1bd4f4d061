//! The one connection setup every subcommand that talks to NATS shares:
//! natscli's flags, variables and contexts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use natsbridge::claimcheck::{
    UploadHandler,
    http::{HttpDownloader, HttpDownloaderBuilder, HttpPutUploader, PlikUploader, S3Uploader},
};
use natsbridge::transport::{ConnectOptions, NatsContext};
use natsbridge::{Bridge, ErrorKind, ReceiveLimits};

use crate::exit::BadInput;
use crate::progress::Progress;
use crate::redact_url;

/// How long `request` waits, and how long connecting may take, when
/// neither `--timeout` nor `NATS_TIMEOUT` says (natscli's default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The connection options, named as natscli names them, on the commands
/// that connect (and before the subcommand: [`NatsArgs::with_leading`]).
/// Every variable's value is hidden in `--help`, as some hold secrets.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Connection (natscli's flags and variables)")]
pub(crate) struct NatsArgs {
    /// NATS server URL, or several separated by commas. Default: the
    /// context's, else nats://localhost:4222.
    #[arg(short = 's', long, env = "NATS_URL", value_name = "URL", hide_env_values = true)]
    server: Option<String>,
    /// User name; alone (without --password) it is a token, as in natscli.
    #[arg(long, env = "NATS_USER", value_name = "USER", hide_env_values = true)]
    user: Option<String>,
    /// Password.
    #[arg(long, env = "NATS_PASSWORD", value_name = "PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// User credentials file (JWT and nkey seed), as `nsc` writes it.
    #[arg(long, env = "NATS_CREDS", value_name = "FILE", hide_env_values = true)]
    creds: Option<PathBuf>,
    /// File holding a user nkey seed (`SU...`).
    #[arg(long, env = "NATS_NKEY", value_name = "FILE", hide_env_values = true)]
    nkey: Option<PathBuf>,
    /// TLS client certificate (PEM), with --tlskey.
    #[arg(long, env = "NATS_CERT", value_name = "FILE", hide_env_values = true)]
    tlscert: Option<PathBuf>,
    /// TLS client certificate's private key (PEM).
    #[arg(long, env = "NATS_KEY", value_name = "FILE", hide_env_values = true)]
    tlskey: Option<PathBuf>,
    /// CA certificates to trust for the server's TLS (PEM).
    #[arg(long, env = "NATS_CA", value_name = "FILE", hide_env_values = true)]
    tlsca: Option<PathBuf>,
    /// Start TLS before the server's INFO (servers with handshake_first).
    #[arg(long)]
    tlsfirst: bool,
    /// natscli context to read (its JSON file under
    /// $XDG_CONFIG_HOME/nats/context/, else ~/.config/nats/context/).
    /// Default: the context `nats context select` chose, if any. Flags and
    /// variables win over the context's fields.
    #[arg(long, env = "NATS_CONTEXT", value_name = "NAME", hide_env_values = true)]
    context: Option<String>,
    /// Read no natscli context, not even the selected one (wins over
    /// --context and NATS_CONTEXT).
    #[arg(long)]
    no_context: bool,
    /// Prefix of this client's inboxes instead of _INBOX (request answers,
    /// the readiness round trip), for accounts whose users may subscribe
    /// only below their own prefix. Default: the context's, else _INBOX.
    #[arg(long, value_name = "PREFIX")]
    inbox_prefix: Option<String>,
    /// The connection's name in the server's monitoring (connz)
    /// [default: natsbridge].
    #[arg(long, value_name = "NAME")]
    connection_name: Option<String>,
    /// How long to wait to connect and for a request's answer ($NATS_TIMEOUT;
    /// default 5s): 5s, 500ms, 1m or seconds (2.5). For `listen`, the flag
    /// also ends listening with the timeout exit code.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    timeout: Option<Duration>,
}

/// The ids of [`NatsArgs`]' arguments (their field names).
pub(crate) const NATS_ARG_IDS: [&str; 14] = [
    "server",
    "user",
    "password",
    "creds",
    "nkey",
    "tlscert",
    "tlskey",
    "tlsca",
    "tlsfirst",
    "context",
    "no_context",
    "inbox_prefix",
    "connection_name",
    "timeout",
];

impl NatsArgs {
    /// These options (the subcommand's, parsed into `own`), with those
    /// given on the command line before the subcommand (`leading`, parsed
    /// into `top`) where the subcommand's own command line did not give
    /// them: `natsbridge -s URL send ...` is `natsbridge send ... -s URL`.
    pub(crate) fn with_leading(
        mut self,
        leading: NatsArgs,
        top: &clap::ArgMatches,
        own: &clap::ArgMatches,
    ) -> NatsArgs {
        let given = |matches: &clap::ArgMatches, id: &str| {
            matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
        };
        macro_rules! take {
            ($($field:ident),*) => {$(
                if given(top, stringify!($field)) && !given(own, stringify!($field)) {
                    self.$field = leading.$field;
                }
            )*};
        }
        take!(
            server,
            user,
            password,
            creds,
            nkey,
            tlscert,
            tlskey,
            tlsca,
            tlsfirst,
            context,
            no_context,
            inbox_prefix,
            connection_name,
            timeout
        );
        self
    }

    /// The inbox prefix in use besides `_INBOX`: `--inbox-prefix`, else
    /// the context's (for telling inbox round trips from messages).
    pub(crate) fn inbox_prefix(&self) -> Option<String> {
        self.inbox_prefix.clone().or_else(|| self.context().ok()?.inbox_prefix)
    }

    /// `--timeout` as given on the command line (not `NATS_TIMEOUT`):
    /// `listen`'s deadline.
    pub(crate) fn timeout_flag(&self) -> Option<Duration> {
        self.timeout
    }

    /// `--timeout`, else `NATS_TIMEOUT`, else 5 seconds.
    pub(crate) fn timeout(&self) -> anyhow::Result<Duration> {
        if let Some(timeout) = self.timeout {
            return Ok(timeout);
        }
        match std::env::var("NATS_TIMEOUT") {
            Ok(text) if !text.trim().is_empty() => parse_timeout(&text)
                .map_err(|e| anyhow::anyhow!("NATS_TIMEOUT: {e}").context(BadInput)),
            _ => Ok(DEFAULT_TIMEOUT),
        }
    }

    /// The context, if any, with the flags and variables laid over it
    /// field by field.
    fn context(&self) -> anyhow::Result<NatsContext> {
        let mut context = if self.no_context {
            NatsContext::default()
        } else {
            NatsContext::load(self.context.as_deref())
                .map_err(|e| anyhow::Error::new(e).context(BadInput))?
                .unwrap_or_default()
        };
        if context.name.is_some() {
            tracing::info!(context = context.name.as_deref(), "using the natscli context");
        }
        let overlay = |field: &mut Option<String>, flag: &Option<String>| {
            if let Some(value) = flag {
                *field = Some(value.clone());
            }
        };
        overlay(&mut context.url, &self.server);
        overlay(&mut context.user, &self.user);
        overlay(&mut context.password, &self.password);
        overlay(&mut context.inbox_prefix, &self.inbox_prefix);
        let overlay = |field: &mut Option<PathBuf>, flag: &Option<PathBuf>| {
            if let Some(value) = flag {
                *field = Some(value.clone());
            }
        };
        overlay(&mut context.creds, &self.creds);
        overlay(&mut context.nkey, &self.nkey);
        overlay(&mut context.cert, &self.tlscert);
        overlay(&mut context.key, &self.tlskey);
        overlay(&mut context.ca, &self.tlsca);
        context.tls_first |= self.tlsfirst;
        Ok(context)
    }

    /// The servers, comma-separated, without connecting or checking the
    /// other options (for `send --no-publish`'s `broker_url`).
    pub(crate) fn url(&self) -> anyhow::Result<String> {
        Ok(self.context()?.servers().join(","))
    }

    /// Where and how to connect.
    pub(crate) fn target(&self) -> anyhow::Result<Target> {
        let context = self.context()?;
        let timeout = self.timeout()?;
        let options = context
            .connect_options()
            .map_err(|e| anyhow::Error::new(e).context(BadInput))?
            .connection_timeout(timeout)
            .request_timeout(timeout)
            .name(self.connection_name.as_deref().unwrap_or("natsbridge"));
        Ok(Target { url: context.servers().join(","), options })
    }
}

/// A server (or several, comma-separated) and the options to connect with.
pub(crate) struct Target {
    /// The servers as given; shown and sent on only through [`redact_url`].
    pub(crate) url: String,
    options: ConnectOptions,
}

impl Target {
    /// `url` with default options (for the servers `demo` starts).
    pub(crate) fn url(url: &str) -> Target {
        Target { url: url.to_owned(), options: ConnectOptions::new(url) }
    }
}

pub(crate) fn parse_timeout(text: &str) -> Result<Duration, String> {
    parse_duration(text).ok_or_else(|| {
        format!("{text:?} is not a duration (5s, 500ms, 1m30s, or a number of seconds)")
    })
}

/// A natscli duration: `5s`, `500ms`, `1m30s`, `2h`, or a bare number of
/// seconds (`2.5`).
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    if text.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += Duration::try_from_secs_f64(number * scale).ok()?;
        rest = &rest[unit_end..];
    }
    Some(total)
}

/// Where link payloads go and may come from.
#[derive(Debug, Args)]
pub(crate) struct LinkArgs {
    /// File server for link payloads: uploads go there, and links are then
    /// downloaded only from it and the --allow-origin origins. User info in
    /// the URL (http://user:pw@host) is this client's credentials for it,
    /// never written into a link.
    #[arg(long, env = "NATSBRIDGE_FILESERVER", hide_env_values = true, value_name = "URL")]
    pub(crate) fileserver: Option<String>,
    /// Also download link payloads from this origin (repeatable). With
    /// neither this nor a file server, links are downloaded from any
    /// http/https origin, except by commands that send what they fetch on
    /// (reply), which then fetch none.
    #[arg(long, value_name = "URL")]
    pub(crate) allow_origin: Vec<String>,
    /// The most bytes one message's links may bring in together (links
    /// declaring more are refused before any is fetched).
    #[arg(long, value_name = "BYTES", default_value_t = ReceiveLimits::default().max_envelope_bytes)]
    pub(crate) max_message_bytes: u64,
    /// How long one link's download may take in all, retries included.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_timeout)]
    pub(crate) link_deadline: Duration,
    /// How long fetching all of one message's links may take.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_timeout)]
    pub(crate) message_deadline: Duration,
}

impl LinkArgs {
    /// How links are received, for a command of this kind.
    pub(crate) fn receiving(&self, unlisted: Unlisted) -> Receiving<'_> {
        Receiving {
            allow_origin: &self.allow_origin,
            unlisted,
            limits: ReceiveLimits::default()
                .max_envelope_bytes(self.max_message_bytes)
                .link_deadline(self.link_deadline)
                .message_deadline(self.message_deadline),
        }
    }
}

/// How a command receives links: from where ([`link_policy`]) and within
/// which limits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Receiving<'a> {
    /// Origins allowed besides the store's.
    pub(crate) allow_origin: &'a [String],
    /// Whether any origin is fetched from when none is configured.
    pub(crate) unlisted: Unlisted,
    /// What one message may cost.
    pub(crate) limits: ReceiveLimits,
}

impl Receiving<'static> {
    /// The defaults: no origin added, any fetched when none is configured.
    pub(crate) fn defaults() -> Self {
        Receiving { allow_origin: &[], unlisted: Unlisted::Fetch, limits: ReceiveLimits::default() }
    }
}

/// Where link payloads are uploaded: at most one store is used, the first
/// set of the JetStream object store, S3, an HTTP PUT template and a Plik
/// file server (so an exported `NATSBRIDGE_FILESERVER` does not stand in
/// the way of `--s3-bucket`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Store {
    /// Plik (`--fileserver`, `NATSBRIDGE_FILESERVER`).
    pub(crate) fileserver: Option<String>,
    /// HTTP PUT to a URL template with `{uuid}` and `{name}`.
    pub(crate) put_url: Option<String>,
    /// S3: the bucket; endpoint, region and credentials from the standard
    /// AWS variables.
    pub(crate) s3_bucket: Option<String>,
    /// The JetStream object store bucket on the NATS server.
    pub(crate) object_store: Option<String>,
    /// Plik only: keep uploads this long, for every receiver, instead of
    /// one-shot (`send --ttl`).
    pub(crate) ttl: Option<Duration>,
}

impl Store {
    /// A Plik file server, or none.
    pub(crate) fn plik(fileserver: Option<&str>) -> Store {
        Store { fileserver: fileserver.map(String::from), ..Store::default() }
    }

    /// Whether any store is set.
    pub(crate) fn is_set(&self) -> bool {
        self.fileserver.is_some() || self.is_set_besides_plik()
    }

    /// Whether a store that wins over Plik is set.
    fn is_set_besides_plik(&self) -> bool {
        self.put_url.is_some() || self.s3_bucket.is_some() || self.object_store.is_some()
    }

    /// The uploader for an HTTP store (Plik, PUT, S3), if one is set and no
    /// object store is.
    pub(crate) fn uploader(&self) -> anyhow::Result<Option<Arc<dyn UploadHandler>>> {
        if self.ttl.is_some() && (self.fileserver.is_none() || self.is_set_besides_plik()) {
            anyhow::bail!(
                "--ttl applies to a Plik file server's uploads (--fileserver) only; the other \
                 stores' links are not one-shot"
            );
        }
        if self.object_store.is_some() {
            return Ok(None);
        }
        if let Some(bucket) = &self.s3_bucket {
            let mut builder = S3Uploader::builder(bucket);
            // object_store reads the AWS_* variables itself; an http://
            // endpoint (MinIO, moto) also needs plain HTTP allowed.
            if let Ok(endpoint) =
                std::env::var("AWS_ENDPOINT_URL").or_else(|_| std::env::var("AWS_ENDPOINT"))
            {
                builder = builder.endpoint(endpoint);
            }
            let s3 = builder.build().with_context(|| format!("S3 bucket {bucket}"))?;
            return Ok(Some(Arc::new(s3)));
        }
        if let Some(template) = &self.put_url {
            let put = HttpPutUploader::builder(template.as_str())
                .build()
                .with_context(|| format!("PUT URL {}", redact_url(template)))?;
            return Ok(Some(Arc::new(put)));
        }
        if let Some(url) = &self.fileserver {
            let mut plik = PlikUploader::builder(url.as_str());
            if let Some(ttl) = self.ttl {
                plik = plik.one_shot(false).ttl(ttl);
            }
            let plik = plik.build().with_context(|| format!("file server {}", redact_url(url)))?;
            return Ok(Some(Arc::new(plik)));
        }
        Ok(None)
    }
}

/// Whether a command may fetch links from any origin when none is
/// configured (see [`link_policy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unlisted {
    /// The seeds' receivers: show or store what arrived, from anywhere.
    Fetch,
    /// The command sends what it fetched on to a peer (`reply`): a link to
    /// an origin the user did not configure is refused, or any peer could
    /// read any HTTP service this host reaches.
    Refuse,
}

/// The one link policy every receiving command applies
/// (`docs/security.md`): with a store configured (`--fileserver`, the PUT
/// template, the S3 endpoint) links are downloaded only from its origin
/// and the `--allow-origin` ones; with neither, from any http/https
/// origin, or (`Unlisted::Refuse`) from none.
pub(crate) fn link_policy(
    mut downloader: HttpDownloaderBuilder,
    store: &Store,
    receiving: &Receiving<'_>,
) -> HttpDownloaderBuilder {
    let configured = [store.fileserver.as_deref(), store.put_url.as_deref()];
    let s3_endpoint = store.s3_bucket.as_ref().and_then(|_| {
        std::env::var("AWS_ENDPOINT_URL").or_else(|_| std::env::var("AWS_ENDPOINT")).ok()
    });
    for origin in configured.into_iter().flatten().chain(s3_endpoint.as_deref()) {
        downloader = downloader.allow_origin(origin);
    }
    for origin in receiving.allow_origin {
        downloader = downloader.allow_origin(origin);
    }
    downloader.deny_unlisted(receiving.unlisted == Unlisted::Refuse)
}

/// A bridge to `target`: link payloads are uploaded to `fileserver` if
/// given, and downloaded as [`link_policy`] says; both with progress bars
/// on a terminal.
pub(crate) async fn connect(
    target: Target,
    fileserver: Option<&str>,
    receiving: &Receiving<'_>,
) -> anyhow::Result<Bridge> {
    connect_to_store(target, &Store::plik(fileserver), receiving).await
}

/// [`connect`] with link payloads going to `store`; `nats-os://` links
/// from the store's object store bucket (when it is one) are read too.
pub(crate) async fn connect_to_store(
    target: Target,
    store: &Store,
    receiving: &Receiving<'_>,
) -> anyhow::Result<Bridge> {
    let progress = Progress::stderr();
    let downloader = link_policy(HttpDownloader::builder(), store, receiving);
    let shown = redact_url(&target.url);
    let mut builder = Bridge::builder(&target.url)
        .connect_options(target.options)
        .receive_limits(receiving.limits)
        .download_handler(progress.downloader(downloader)?);
    if let Some(uploader) = store.uploader().context(BadInput)? {
        builder = builder.upload_handler(progress.uploader(uploader));
    }
    if let Some(bucket) = &store.object_store {
        builder = builder.object_store(bucket);
    }
    tracing::info!(server = %shown, "connecting to NATS");
    let bridge = builder.connect().await.map_err(|e| {
        let context = match e.kind() {
            ErrorKind::Nats(natsbridge::transport::ErrorKind::Auth) => {
                format!("authorization refused connecting to {shown}")
            }
            _ => format!("connecting to {shown}"),
        };
        anyhow::Error::new(e).context(context)
    })?;
    tracing::debug!("connected");
    Ok(bridge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_natscli_writes_them() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2.5"), Some(Duration::from_millis(2500)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("-1"), None);
        assert_eq!(parse_duration("5x"), None);
    }
}
