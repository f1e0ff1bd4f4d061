//! `natsbridge send`: build an envelope and publish it (or only print it).

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use natsbridge::envelope::DEFAULT_MAX_PAYLOAD;
use natsbridge::envelope::bytes::Bytes;
use natsbridge::transport::{Ack, HeaderMap};
use natsbridge::{Bridge, Envelope, Outgoing, SendOptions, pack_files};

use crate::connect::{NatsArgs, Receiving, Store, connect_to_store};
use crate::exit::BadInput;
use crate::repeat::RepeatArgs;
use crate::summary::{self, OutputArgs};
use crate::{payload_arg, redact_url};

/// The payloads and envelope fields of an outgoing message (`send`,
/// `request`).
#[derive(Debug, Args)]
pub(crate) struct EnvelopeArgs {
    /// Payloads as TYPE:NAME=VALUE, or a bare VALUE: a text payload named
    /// `message` (`send chat.room1 hello`). TYPE is one of text,
    /// dictionary, arrowtable, table, jsontable, image, audio, video,
    /// binary. VALUE is the literal (JSON for dictionary and jsontable),
    /// @PATH to read a file, @- to read standard input, or @@... for a
    /// literal starting with @ (@@alice is @alice). Each NAME once.
    /// arrowtable takes @PATH of Arrow IPC (stream or file) or of a .csv,
    /// converted to an Arrow IPC stream; table is the same under the first
    /// seed's name, for peers that know only that one.
    #[arg(required = true, value_name = "PAYLOAD")]
    pub(crate) payloads: Vec<String>,
    /// Claim-check file server (Plik API) for payloads that go by link.
    #[arg(long, env = "NATSBRIDGE_FILESERVER", hide_env_values = true, value_name = "URL")]
    pub(crate) fileserver: Option<String>,
    /// Upload link payloads with one HTTP PUT each to this URL template
    /// (`{uuid}` and `{name}` are filled in); the URL is the link.
    #[arg(long, env = "NATSBRIDGE_PUT_URL", hide_env_values = true, value_name = "TEMPLATE")]
    pub(crate) put_url: Option<String>,
    /// Upload link payloads to this S3 bucket (presigned GET links); the
    /// endpoint, region and credentials come from the standard AWS
    /// variables (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, ...).
    #[arg(long, env = "NATSBRIDGE_S3_BUCKET", value_name = "BUCKET")]
    pub(crate) s3_bucket: Option<String>,
    /// Store link payloads in this JetStream object store bucket on the
    /// NATS server (`nats-os://` links: Rust peers only).
    #[arg(long, env = "NATSBRIDGE_OBJECT_STORE", value_name = "BUCKET")]
    pub(crate) object_store: Option<String>,
    /// Keep link payloads on the Plik file server (--fileserver) for
    /// DURATION, downloadable by every receiver until then, instead of
    /// one-shot (deleted by the first download, so a second listener on
    /// the subject gets `claimcheck.gone`): 10m, 24h, or seconds.
    #[arg(long, value_name = "DURATION", value_parser = crate::connect::parse_timeout)]
    pub(crate) ttl: Option<std::time::Duration>,
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
    /// The envelope's metadata: a JSON object (default {}).
    #[arg(long, value_name = "JSON", value_parser = parse_metadata)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `--metadata`: a JSON object, as the envelope's `metadata` must be.
fn parse_metadata(arg: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_str(arg) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err("the metadata must be a JSON object ({\"key\": ...})".to_owned()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

impl EnvelopeArgs {
    pub(crate) fn options(&self, broker_url: &str) -> SendOptions {
        let mut options = SendOptions::new()
            .with_msg_purpose(self.msg_purpose.clone())
            .with_sender_name(self.sender_name.clone())
            .with_receiver_name(self.receiver_name.clone())
            .with_receiver_id(self.receiver_id.clone())
            .with_reply_to(self.reply_to.clone().unwrap_or_default())
            .with_reply_to_msg_id(self.reply_to_msg_id.clone().unwrap_or_default())
            .with_broker_url(redact_url(broker_url))
            .with_size_threshold(self.threshold)
            .with_metadata(self.metadata.clone().unwrap_or_default());
        options.correlation_id = self.correlation_id.clone();
        options
    }

    /// Checks the subjects a message is published to: `subject` and
    /// `--reply-to` (bad input, before anything is read, sent or uploaded).
    pub(crate) fn check_subjects(&self, subject: &str) -> anyhow::Result<()> {
        crate::subject::check_publish(subject)?;
        match &self.reply_to {
            Some(reply_to) => crate::subject::check_publish(reply_to),
            None => Ok(()),
        }
    }

    /// Where link payloads go (see [`Store`] for which wins when several
    /// are set).
    pub(crate) fn store(&self) -> Store {
        Store {
            fileserver: self.fileserver.clone(),
            put_url: self.put_url.clone(),
            s3_bucket: self.s3_bucket.clone(),
            object_store: self.object_store.clone(),
            ttl: self.ttl,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// Subject to publish to.
    subject: String,
    #[command(flatten)]
    pub(crate) nats: NatsArgs,
    #[command(flatten)]
    envelope: EnvelopeArgs,
    /// Build and print the envelope without publishing it, and without
    /// uploading anything: a payload that would go by link gets the
    /// placeholder link http://no-publish.invalid/NAME (its size and
    /// sha256 are real). Needs no server.
    #[arg(long, conflicts_with = "jetstream")]
    no_publish: bool,
    /// Publish to JetStream and wait for the stream's ack (a stream must
    /// cover the subject); the envelope's msg_id is the Nats-Msg-Id, so a
    /// retried publish is stored once. Prints the envelope, then the ack.
    #[arg(long)]
    jetstream: bool,
    #[command(flatten)]
    repeat: RepeatArgs,
    /// A NATS header on the message, KEY:VALUE (repeatable; a key given
    /// twice has both values), as `nats pub -H` takes it.
    #[arg(
        short = 'H',
        long = "header",
        value_name = "KEY:VALUE",
        value_parser = parse_header,
        conflicts_with_all = ["jetstream", "no_publish"]
    )]
    headers: Vec<(String, String)>,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

impl SendArgs {
    /// Whether a store for link payloads is set (for the error's hint).
    pub(crate) fn link_store(&self) -> bool {
        self.envelope.store().is_set()
    }

    /// Whether the message goes to a JetStream stream (for the error's hint).
    pub(crate) fn uses_jetstream(&self) -> bool {
        self.jetstream
    }
}

pub(crate) async fn run(args: SendArgs, nats: &NatsArgs) -> anyhow::Result<ExitCode> {
    args.envelope.check_subjects(&args.subject)?;
    let payloads = payload_arg::parse_all_outgoing(&args.envelope.payloads).context(BadInput)?;
    let output = args.output.output();
    let store = args.envelope.store();
    let (sender, url) = if args.no_publish {
        let url = nats.url()?;
        if store.object_store.is_some() {
            anyhow::bail!("--no-publish cannot use the object store (it lives on the NATS server)");
        }
        // The store's settings are checked, but nothing is uploaded to it.
        store.uploader().context(BadInput)?;
        let placeholder = store.is_set().then(|| {
            std::sync::Arc::new(placeholder_uploader())
                as std::sync::Arc<dyn natsbridge::claimcheck::UploadHandler>
        });
        (Sender::NoPublish(placeholder), url)
    } else {
        let target = nats.target()?;
        let url = target.url.clone();
        let bridge = connect_to_store(target, &store, &Receiving::defaults()).await?;
        if args.jetstream {
            (Sender::JetStream(bridge), url)
        } else {
            (Sender::Core(bridge, headers(&args.headers)), url)
        }
    };
    let options = args.envelope.options(&url);
    let mut repeat = args.repeat.start();
    while let Some(number) = repeat.next().await {
        let (envelope, json, ack) =
            sender.send(&args.subject, payloads.clone(), options.clone()).await?;
        tracing::info!(
            subject = %args.subject,
            msg_id = %envelope.msg_id,
            bytes = json.len(),
            payloads = envelope.payloads.len(),
            links = envelope.payloads.iter().filter(|p| p.url().is_some()).count(),
            published = !args.no_publish,
            "envelope built"
        );
        output.print(&summary::Sent {
            subject: &args.subject,
            envelope: &envelope,
            json: &json,
            ack: ack.as_ref(),
            published: !args.no_publish,
            number,
        })?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The store `send --no-publish` uses: it reads what it is given (so the
/// record's size and SHA-256 are real) and uploads nothing; the link is
/// a placeholder under the reserved `.invalid` domain, which no name
/// server resolves.
fn placeholder_uploader() -> impl natsbridge::claimcheck::UploadHandler {
    use natsbridge::claimcheck::{Error, ErrorKind, UploadSource};
    natsbridge::claimcheck::upload_fn(|name: String, source: UploadSource| async move {
        let io = |e| Error::io("reading a payload for --no-publish", e);
        match source {
            UploadSource::Bytes(_) => {}
            UploadSource::File(path) => {
                let mut file = tokio::fs::File::open(path).await.map_err(io)?;
                tokio::io::copy(&mut file, &mut tokio::io::sink()).await.map_err(io)?;
            }
            UploadSource::Reader { mut reader, .. } => {
                tokio::io::copy(&mut reader, &mut tokio::io::sink()).await.map_err(io)?;
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "--no-publish cannot read this kind of upload source",
                ));
            }
        }
        let name = natsbridge::claimcheck::safe_file_name(&name);
        if name.is_empty() {
            return Err(Error::new(ErrorKind::InvalidInput, "an empty payload name"));
        }
        Ok(format!("http://no-publish.invalid/{name}"))
    })
}

/// Where `send` sends.
enum Sender {
    /// `--no-publish`: built only; links get placeholders from
    /// [`placeholder_uploader`] if a store is set, nothing is uploaded.
    NoPublish(Option<std::sync::Arc<dyn natsbridge::claimcheck::UploadHandler>>),
    /// Core NATS, with these headers if any.
    Core(Bridge, Option<HeaderMap>),
    /// JetStream, waiting for the stream's ack.
    JetStream(Bridge),
}

impl Sender {
    /// Builds one envelope from `payloads` and sends it; the envelope, its
    /// JSON as sent and the stream's ack (JetStream).
    async fn send(
        &self,
        subject: &str,
        payloads: Vec<Outgoing>,
        mut options: SendOptions,
    ) -> anyhow::Result<(Envelope, Bytes, Option<Ack>)> {
        match self {
            Sender::NoPublish(uploader) => {
                // Nothing is published, so there is no server to ask for
                // its max_payload: NATS's default applies.
                let (envelope, json) = pack_files(
                    subject,
                    payloads,
                    options,
                    uploader.as_deref(),
                    DEFAULT_MAX_PAYLOAD,
                )
                .await?;
                Ok((envelope, json, None))
            }
            Sender::JetStream(bridge) => {
                let payloads = payload_arg_files_to_payloads(payloads)?;
                let (sent, ack) = bridge.jetstream_send(subject, payloads, options).await?;
                let (envelope, json) = sent.into_parts()?;
                Ok((envelope, json, Some(ack)))
            }
            Sender::Core(bridge, headers) => {
                options.is_publish = headers.is_none();
                let sent = bridge.smartsend_files(subject, payloads, options).await?;
                let (envelope, json) = sent.into_parts()?;
                if let Some(headers) = headers {
                    bridge
                        .connection()
                        .publish_with_headers(subject, headers.clone(), json.clone())
                        .await?;
                }
                bridge.connection().flush().await?;
                Ok((envelope, json, None))
            }
        }
    }
}

/// `-H` headers as a header map, or none.
fn headers(pairs: &[(String, String)]) -> Option<HeaderMap> {
    if pairs.is_empty() {
        return None;
    }
    let mut map = HeaderMap::new();
    for (key, value) in pairs {
        // Checked by `parse_header`, so these do not panic.
        map.append(key.as_str(), value.as_str());
    }
    Some(map)
}

/// A `-H KEY:VALUE` header: KEY printable ASCII without `:` (what NATS
/// allows), VALUE on one line; spaces around either are trimmed, as
/// natscli does.
fn parse_header(arg: &str) -> Result<(String, String), String> {
    let Some((key, value)) = arg.split_once(':') else {
        return Err(format!("header {arg:?} is not KEY:VALUE"));
    };
    let (key, value) = (key.trim(), value.trim());
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(format!(
            "header {arg:?}: the key must be printable ASCII without spaces or `:`"
        ));
    }
    if value.contains(['\r', '\n']) {
        return Err(format!("header {arg:?}: the value must be on one line"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// The payloads of `send --jetstream`, read into memory (a JetStream message
/// is published whole; files at or over the threshold still go by link).
fn payload_arg_files_to_payloads(
    items: Vec<natsbridge::Outgoing>,
) -> anyhow::Result<Vec<natsbridge::Payload>> {
    items
        .into_iter()
        .map(|item| match item {
            natsbridge::Outgoing::Bytes(payload) => Ok(payload),
            natsbridge::Outgoing::File(file) => {
                let bytes = std::fs::read(&file.path)
                    .with_context(|| {
                        format!("reading payload {:?} from {}", file.dataname, file.path.display())
                    })
                    .context(BadInput)?;
                Ok(natsbridge::Payload::new(file.dataname, file.payload_type, bytes))
            }
            _ => anyhow::bail!("a payload kind this command does not know"),
        })
        .collect()
}
