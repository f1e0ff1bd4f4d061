//! `natsbridge send`: build an envelope and publish it (or only print it).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use natsbridge::claimcheck::PlikUploader;
use natsbridge::envelope::DEFAULT_MAX_PAYLOAD;
use natsbridge::{SendOptions, pack_files};

use crate::connect::{NatsArgs, connect};
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
    #[arg(long, env = "NATSBRIDGE_FILESERVER", value_name = "URL")]
    pub(crate) fileserver: Option<String>,
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
pub(crate) struct SendArgs {
    /// Subject to publish to.
    subject: String,
    #[command(flatten)]
    envelope: EnvelopeArgs,
    /// Build and print the envelope without publishing it.
    #[arg(long)]
    no_publish: bool,
}

pub(crate) async fn run(args: SendArgs, nats: &NatsArgs) -> anyhow::Result<ExitCode> {
    let payloads = args
        .envelope
        .payloads
        .iter()
        .map(|p| payload_arg::parse_outgoing(p).context(BadInput))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (envelope, json) = if args.no_publish {
        let options = args.envelope.options(&nats.url()?);
        // Nothing is published, so there is no server to ask for its
        // max_payload: NATS's default applies.
        let uploader = args.envelope.uploader(&Progress::stderr())?;
        pack_files(&args.subject, payloads, options, uploader.as_deref(), DEFAULT_MAX_PAYLOAD)
            .await?
    } else {
        let target = nats.target()?;
        let options = args.envelope.options(&target.url);
        let bridge = connect(target, args.envelope.fileserver.as_deref(), &[]).await?;
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
