//! How `listen` and `unpack` fetch an envelope's links for showing.
//!
//! A payload shown by its content (text, `dictionary`, `jsontable`, Arrow
//! tables) is fetched into memory, all of one message's together within
//! `--max-message-bytes`. Any other (binary, image, audio, video, types this
//! peer does not know) is shown only by name, size and SHA-256, so its link
//! is streamed past a hash (or into its file under `--out`) and never held:
//! a peer's envelope of many large links costs memory for one piece of a
//! body at a time. Every link ends by `--link-deadline`, all of a message's
//! by `--message-deadline`.

use std::path::{Path, PathBuf};

use natsbridge::claimcheck::{
    DownloadHandler, DownloadRequest, DownloadSink, Downloaded, Error as LinkError,
    ErrorKind as LinkErrorKind,
};
use natsbridge::{Body, Envelope, PayloadType, ReceiveLimits, link_request};

use crate::report;

/// A link payload fetched without being held: its size and SHA-256 as they
/// arrived, and the file it went to under `--out`, if any.
#[derive(Clone, Debug)]
pub(crate) struct Streamed {
    /// Bytes received.
    pub(crate) size: u64,
    /// Their SHA-256, lowercase hex.
    pub(crate) sha256: String,
    /// Where they were saved.
    pub(crate) path: Option<PathBuf>,
}

/// An envelope with its links fetched for showing.
#[derive(Debug)]
pub(crate) struct Shown {
    /// The envelope: content links fetched, streamed ones still links.
    pub(crate) envelope: Envelope,
    /// Per payload, what a streamed link brought.
    pub(crate) streamed: Vec<Option<Streamed>>,
    /// The message's own fresh directory under `--out`, if saving.
    pub(crate) dir: Option<PathBuf>,
}

/// Whether a payload of this type is shown by its content (so fetched into
/// memory) rather than by its digest.
fn shown_whole(payload_type: &PayloadType) -> bool {
    matches!(
        payload_type,
        PayloadType::Text
            | PayloadType::Dictionary
            | PayloadType::JsonTable
            | PayloadType::ArrowTable
            | PayloadType::Table
    )
}

/// Fetches `envelope`'s links as the module says, saving under a fresh
/// directory of `out` (if given). Fails with the first link that fails,
/// naming it, as the library's receive does.
pub(crate) async fn fetch_for_show(
    mut envelope: Envelope,
    downloader: &dyn DownloadHandler,
    limits: &ReceiveLimits,
    out: Option<&Path>,
) -> natsbridge::Result<Shown> {
    let dir = match out {
        Some(out) => Some(report::message_dir(out, &envelope.msg_id).map_err(|e| {
            natsbridge::Error::from(LinkError::io(
                format!("creating a directory in {}", out.display()),
                e,
            ))
        })?),
        None => None,
    };
    let declared: u64 = envelope
        .payloads
        .iter()
        .filter(|r| shown_whole(&r.payload_type))
        .filter_map(|r| match r.body {
            Body::Link { size, .. } => Some(size.unwrap_or(0)),
            _ => None,
        })
        .fold(0, u64::saturating_add);
    if declared > limits.max_envelope_bytes {
        return Err(LinkError::new(
            LinkErrorKind::TooLarge { limit: limits.max_envelope_bytes },
            format!(
                "the message's text, JSON and table links declare {declared} bytes in all, over \
                 --max-message-bytes {}; nothing was fetched",
                limits.max_envelope_bytes
            ),
        )
        .into());
    }
    let mut streamed = vec![None; envelope.payloads.len()];
    let fetch_all = async {
        let mut used = 0u64;
        for (index, record) in envelope.payloads.iter_mut().enumerate() {
            let Some(request) = link_request(record) else { continue };
            let named = |e: LinkError| {
                natsbridge::Error::from(e).context(format!(
                    "downloading payload {:?} (payloads[{index}])",
                    record.dataname
                ))
            };
            if shown_whole(&record.payload_type) {
                let request = request.max_size(limits.max_envelope_bytes.saturating_sub(used));
                let fetched = download(downloader, &request, DownloadSink::Memory, limits).await;
                let Some(bytes) = fetched.map_err(named)?.into_bytes() else {
                    return Err(named(unexpected()));
                };
                used += bytes.len() as u64;
                record.body = Body::Fetched { url: request.url, bytes };
            } else {
                let path = dir.as_deref().map(|d| d.join(report::file_name(index, record)));
                let sink = path.clone().map_or(DownloadSink::Digest, DownloadSink::File);
                let fetched = download(downloader, &request, sink, limits).await.map_err(named)?;
                streamed[index] = Some(match (fetched, path) {
                    (Downloaded::Digest { size, sha256 }, _) => {
                        Streamed { size, sha256: hex(&sha256), path: None }
                    }
                    (Downloaded::File(saved), _) => {
                        let (size, sha256) = hash_file(&saved).await.map_err(named)?;
                        Streamed { size, sha256, path: Some(saved) }
                    }
                    _ => return Err(named(unexpected())),
                });
            }
        }
        Ok(())
    };
    match tokio::time::timeout(limits.message_deadline, fetch_all).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(LinkError::new(
                LinkErrorKind::TimedOut,
                format!(
                    "the message's links were not all fetched within --message-deadline {:?}",
                    limits.message_deadline
                ),
            )
            .into());
        }
    }
    Ok(Shown { envelope, streamed, dir })
}

/// One download, by the link deadline.
async fn download(
    downloader: &dyn DownloadHandler,
    request: &DownloadRequest,
    sink: DownloadSink,
    limits: &ReceiveLimits,
) -> Result<Downloaded, LinkError> {
    match tokio::time::timeout(limits.link_deadline, downloader.download(request, sink)).await {
        Ok(result) => result,
        Err(_) => Err(LinkError::new(
            LinkErrorKind::TimedOut,
            format!("the link was not complete within --link-deadline {:?}", limits.link_deadline),
        )),
    }
}

fn unexpected() -> LinkError {
    LinkError::new(LinkErrorKind::InvalidResponse, "the download handler returned another sink")
}

/// The size and SHA-256 of a saved file, read in pieces.
async fn hash_file(path: &Path) -> Result<(u64, String), LinkError> {
    use sha2::{Digest, Sha256};
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        let size = std::io::copy(&mut file, &mut hasher)?;
        Ok::<_, std::io::Error>((size, hex(&hasher.finalize())))
    })
    .await
    .map_err(|e| LinkError::new(LinkErrorKind::Io, format!("hashing a saved payload: {e}")))?
    .map_err(|e| LinkError::io("hashing a saved payload", e))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
