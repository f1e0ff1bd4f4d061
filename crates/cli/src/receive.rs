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
    DownloadHandler, DownloadSink, Downloaded, Error as LinkError, ErrorKind as LinkErrorKind,
};
use natsbridge::{Envelope, PayloadType, ReceiveLimits, fetch_links_to};

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
    let sink = |index: usize, record: &natsbridge::PayloadRecord| {
        if shown_whole(&record.payload_type) {
            DownloadSink::Memory
        } else {
            dir.as_deref().map_or(DownloadSink::Digest, |d| {
                DownloadSink::File(d.join(report::file_name(index, record)))
            })
        }
    };
    let outcomes = fetch_links_to(&mut envelope, downloader, limits, sink).await?;
    let mut streamed = Vec::with_capacity(outcomes.len());
    for (index, outcome) in outcomes.into_iter().enumerate() {
        streamed.push(match outcome {
            Some(Downloaded::Digest { size, sha256 }) => {
                Some(Streamed { size, sha256: hex(&sha256), path: None })
            }
            Some(Downloaded::File(saved)) => {
                let (size, sha256) = hash_file(&saved).await.map_err(|e| {
                    natsbridge::Error::from(e).context(format!("hashing payloads[{index}]"))
                })?;
                Some(Streamed { size, sha256, path: Some(saved) })
            }
            _ => None,
        });
    }
    Ok(Shown { envelope, streamed, dir })
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
