//! `natsbridge send`: build an envelope and publish it (or only print it).

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use natsbridge::envelope::DEFAULT_MAX_PAYLOAD;
use natsbridge::{SendOptions, pack_files};

use crate::connect::{NatsArgs, Receiving, Store, connect_to_store};
use crate::exit::BadInput;
use crate::progress::Progress;
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
        let mut options = SendOptions::new()
            .with_msg_purpose(self.msg_purpose.clone())
            .with_sender_name(self.sender_name.clone())
            .with_receiver_name(self.receiver_name.clone())
            .with_receiver_id(self.receiver_id.clone())
            .with_reply_to(self.reply_to.clone().unwrap_or_default())
            .with_reply_to_msg_id(self.reply_to_msg_id.clone().unwrap_or_default())
            .with_broker_url(redact_url(broker_url))
            .with_size_threshold(self.threshold);
        options.correlation_id = self.correlation_id.clone();
        options
    }

    /// Where link payloads go (see [`Store`] for which wins when several
    /// are set).
    pub(crate) fn store(&self) -> Store {
        Store {
            fileserver: self.fileserver.clone(),
            put_url: self.put_url.clone(),
            s3_bucket: self.s3_bucket.clone(),
            object_store: self.object_store.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// Subject to publish to.
    subject: String,
    #[command(flatten)]
    envelope: EnvelopeArgs,
    /// Build and print the envelope without publishing it.
    #[arg(long, conflicts_with = "jetstream")]
    no_publish: bool,
    /// Publish to JetStream and wait for the stream's ack (a stream must
    /// cover the subject); the envelope's msg_id is the Nats-Msg-Id, so a
    /// retried publish is stored once. Prints the envelope, then the ack.
    #[arg(long)]
    jetstream: bool,
}

pub(crate) async fn run(args: SendArgs, nats: &NatsArgs) -> anyhow::Result<ExitCode> {
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
        // max_payload: NATS's default applies.
        let uploader = store.uploader().context(BadInput)?;
        let uploader = uploader.map(|u| Progress::stderr().uploader(u));
        pack_files(&args.subject, payloads, options, uploader.as_deref(), DEFAULT_MAX_PAYLOAD)
            .await?
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
