//! `natsbridge send`: build an envelope and publish it (or only print it).

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use natsbridge::envelope::DEFAULT_MAX_PAYLOAD;
use natsbridge::{SendOptions, pack_files};

use crate::connect::{NatsArgs, Receiving, Store, connect_to_store};
use crate::exit::BadInput;
use crate::{payload_arg, print_json, redact_url};

/// The payloads and envelope fields of an outgoing message (`send`,
/// `request`).
#[derive(Debug, Args)]
pub(crate) struct EnvelopeArgs {
    /// Payloads as TYPE:NAME=VALUE; TYPE is one of text, dictionary,
    /// arrowtable, table, jsontable, image, audio, video, binary. VALUE is
    /// the literal (JSON for dictionary and jsontable) or @PATH to read a
    /// file. arrowtable takes @PATH of Arrow IPC (stream or file) or of a
    /// .csv, converted to an Arrow IPC stream; table is the same under the
    /// first seed's name, for peers that know only that one.
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
}

impl EnvelopeArgs {
    pub(crate) fn options(&self, broker_url: &str) -> SendOptions {
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
}

impl SendArgs {
    /// Whether a store for link payloads is set (for the error's hint).
    pub(crate) fn link_store(&self) -> bool {
        self.envelope.store().is_set()
    }
}

pub(crate) async fn run(args: SendArgs, nats: &NatsArgs) -> anyhow::Result<ExitCode> {
    args.envelope.check_subjects(&args.subject)?;
    let payloads = args
        .envelope
        .payloads
        .iter()
        .map(|p| payload_arg::parse_outgoing(p).context(BadInput))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let store = args.envelope.store();
    let (envelope, json) = if args.no_publish {
        let options = args.envelope.options(&nats.url()?);
        if store.object_store.is_some() {
            anyhow::bail!("--no-publish cannot use the object store (it lives on the NATS server)");
        }
        // Nothing is published, so there is no server to ask for its
        // max_payload: NATS's default applies. The store's settings are
        // checked, but nothing is uploaded to it.
        store.uploader().context(BadInput)?;
        let placeholder = store.is_set().then(placeholder_uploader);
        let uploader =
            placeholder.as_ref().map(|u| u as &dyn natsbridge::claimcheck::UploadHandler);
        pack_files(&args.subject, payloads, options, uploader, DEFAULT_MAX_PAYLOAD).await?
    } else {
        let target = nats.target()?;
        let options = args.envelope.options(&target.url);
        let bridge = connect_to_store(target, &store, &Receiving::defaults()).await?;
        if args.jetstream {
            let payloads = payload_arg_files_to_payloads(payloads)?;
            let (sent, ack) = bridge.jetstream_send(&args.subject, payloads, options).await?;
            print_json(sent.json())?;
            let ack = serde_json::json!({"stream": ack.stream, "sequence": ack.sequence, "duplicate": ack.duplicate});
            print_json(ack.to_string().as_bytes())?;
            return Ok(ExitCode::SUCCESS);
        }
        let sent = bridge.smartsend_files(&args.subject, payloads, options).await?.into_parts()?;
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
        }
        let name = natsbridge::claimcheck::safe_file_name(&name);
        if name.is_empty() {
            return Err(Error::new(ErrorKind::InvalidInput, "an empty payload name"));
        }
        Ok(format!("http://no-publish.invalid/{name}"))
    })
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
