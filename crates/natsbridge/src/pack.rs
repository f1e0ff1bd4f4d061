//! Packing and unpacking without NATS: envelope plus claim-check.

use std::path::PathBuf;

use crate::claimcheck::{
    DownloadHandler, DownloadRequest, DownloadSink, Downloaded, UploadHandler, UploadHandlerExt,
    UploadSource,
};
use crate::envelope::bytes::Bytes;
use crate::envelope::{
    Body, Envelope, ErrorKind as EnvelopeErrorKind, Payload, PayloadRecord, PayloadType,
    PlanLimits, SendOptions, Transport, plan_transports,
};
use crate::limits::ReceiveLimits;
use crate::system::{SystemClock, SystemIds};
use crate::{Error, Result};

/// The payload-record key this peer adds to link payloads: the hex SHA-256
/// of the serialized bytes (older peers ignore it; receivers that know it
/// verify the download).
pub const SHA256_KEY: &str = "sha256";

/// The file name a payload is uploaded under: its `dataname` reduced to
/// characters every file server keeps, with an extension for its type.
pub fn upload_file_name(dataname: &str, payload_type: &PayloadType) -> String {
    let mut name = crate::claimcheck::safe_file_name(dataname);
    if !name.contains('.') {
        name.push_str(match payload_type {
            PayloadType::Text => ".txt",
            PayloadType::Dictionary | PayloadType::JsonTable => ".json",
            PayloadType::ArrowTable | PayloadType::Table => ".arrow",
            _ => ".bin",
        });
    }
    name
}

/// Builds the envelope for `payloads`, uploads what must go by link, and
/// serializes it, **publishing nothing**: the seeds' `smartpack` with
/// `is_publish = false`, for a caller without a NATS connection (to write
/// the envelope to a file, or send it some other way).
///
/// It is not named `smartpack`: in the seeds that name publishes by
/// default, through the connection it is given, and so does
/// [`Bridge::smartpack`](crate::Bridge::smartpack). This function has no
/// connection, so it ignores `options.is_publish`.
///
/// Payloads of `options.size_threshold` bytes or more, and the largest ones
/// while the envelope would exceed `max_payload`, are uploaded with
/// `uploader` (their record gets the URL and a `sha256` key). Without an
/// uploader, an envelope that cannot fit fails with
/// `Envelope(PayloadTooLarge)` before anything is uploaded. The finished
/// envelope is checked against `max_payload` once the real URLs are in.
pub async fn pack(
    subject: &str,
    payloads: Vec<Payload>,
    options: SendOptions,
    uploader: Option<&dyn UploadHandler>,
    max_payload: usize,
) -> Result<(Envelope, Bytes)> {
    let threshold = options.size_threshold;
    match try_pack_direct(subject, payloads, options, uploader.is_some(), max_payload)? {
        Ok(packed) => Ok(packed),
        Err(envelope) => finish_links(envelope, threshold, uploader, max_payload).await,
    }
}

/// A payload whose bytes are in a file, read only as they are uploaded
/// when the payload goes by link: a file of any size is sent without being
/// held in memory. One that goes direct (under the size threshold, or with
/// no upload handler) is read whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePayload {
    /// The payload's name.
    pub dataname: String,
    /// What the bytes mean.
    pub payload_type: PayloadType,
    /// Where the bytes are.
    pub path: PathBuf,
}

impl FilePayload {
    /// The file at `path`, sent as payload `dataname` of `payload_type`.
    pub fn new(
        dataname: impl Into<String>,
        payload_type: PayloadType,
        path: impl Into<PathBuf>,
    ) -> FilePayload {
        FilePayload { dataname: dataname.into(), payload_type, path: path.into() }
    }
}

/// One payload to send: bytes in memory or a file.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Outgoing {
    /// Bytes in memory.
    Bytes(Payload),
    /// A file, streamed when it goes by link.
    File(FilePayload),
}

impl From<Payload> for Outgoing {
    fn from(payload: Payload) -> Outgoing {
        Outgoing::Bytes(payload)
    }
}

impl From<FilePayload> for Outgoing {
    fn from(file: FilePayload) -> Outgoing {
        Outgoing::File(file)
    }
}

/// [`pack`] for payloads some of which are files; like it, it publishes
/// nothing ([`Bridge::smartsend_files`](crate::Bridge::smartsend_files)
/// publishes). A file of
/// `options.size_threshold` bytes or more is uploaded as it is read from
/// disk, its SHA-256 computed on the way (when an upload handler is
/// given); any other file is read into memory and treated as [`pack`]
/// treats bytes. The envelope lists the payloads in the order given.
///
/// A file that changes while it is sent fails the receiver's size and
/// SHA-256 checks; it is never delivered short.
pub async fn pack_files(
    subject: &str,
    items: Vec<Outgoing>,
    options: SendOptions,
    uploader: Option<&dyn UploadHandler>,
    max_payload: usize,
) -> Result<(Envelope, Bytes)> {
    let threshold = options.size_threshold;
    let mut payloads = Vec::with_capacity(items.len());
    // (record index, path, length) of the files that stream.
    let mut streamed = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let file = match item {
            Outgoing::Bytes(payload) => {
                payloads.push(payload);
                continue;
            }
            Outgoing::File(file) => file,
        };
        let reading =
            || format!("reading payload {:?} from {}", file.dataname, file.path.display());
        let io = |e: std::io::Error| Error::new(crate::ErrorKind::Io, reading(), Some(Box::new(e)));
        let len = tokio::fs::metadata(&file.path).await.map_err(io)?.len();
        let bytes = if uploader.is_some() && len >= threshold as u64 {
            streamed.push((index, file.path, len));
            Bytes::new()
        } else {
            Bytes::from(tokio::fs::read(&file.path).await.map_err(io)?)
        };
        payloads.push(Payload::new(file.dataname, file.payload_type, bytes));
    }
    let mut envelope = Envelope::pack(subject, payloads, options, &mut SystemIds, &SystemClock);
    if let Some(uploader) = uploader {
        for (index, path, len) in streamed {
            let record = &mut envelope.payloads[index];
            let name = upload_file_name(&record.dataname, &record.payload_type);
            let (url, hash) =
                uploader.upload_with_sha256(&name, UploadSource::File(path)).await.map_err(
                    |e| Error::from(e).context(format!("uploading payload {:?}", record.dataname)),
                )?;
            record.body = Body::Link { url, size: Some(len) };
            record.extra.insert(SHA256_KEY.into(), hash.into());
        }
    }
    finish(envelope, threshold, uploader, max_payload).await
}

/// Uploads what must go by link so the envelope fits, serializes it and
/// checks it against `max_payload` once the real URLs are in.
async fn finish(
    envelope: Envelope,
    size_threshold: usize,
    uploader: Option<&dyn UploadHandler>,
    max_payload: usize,
) -> Result<(Envelope, Bytes)> {
    match try_direct(envelope, size_threshold, uploader.is_some(), max_payload)? {
        Ok(packed) => Ok(packed),
        Err(envelope) => finish_links(envelope, size_threshold, uploader, max_payload).await,
    }
}

/// The common case, with no I/O: nothing can go by link (no payload at or
/// over the threshold, or no upload handler) and the envelope fits, which
/// one serialization shows. Otherwise the envelope comes back for
/// [`finish_links`] (the plan would serialize it a second time just to
/// count its length, so it runs only then).
pub(crate) fn try_direct(
    envelope: Envelope,
    size_threshold: usize,
    link_available: bool,
    max_payload: usize,
) -> Result<std::result::Result<(Envelope, Bytes), Envelope>> {
    let may_link = |r: &crate::envelope::PayloadRecord| {
        link_available && r.bytes().is_some_and(|b| b.len() >= size_threshold)
    };
    if !envelope.payloads.iter().any(may_link) {
        let json = envelope.to_json()?;
        if json.len() <= max_payload {
            return Ok(Ok((envelope, Bytes::from(json))));
        }
    }
    Ok(Err(envelope))
}

/// [`Envelope::pack`] then [`try_direct`], for payloads in memory: the
/// common case (nothing can go by link, the envelope fits) is built and
/// serialized in one pass ([`Envelope::pack_json`]: ids and timestamp
/// written straight into the output, no second walk over the envelope).
/// Otherwise the envelope comes back, exactly as `pack` builds it, for
/// [`finish_links`].
pub(crate) fn try_pack_direct(
    subject: &str,
    payloads: Vec<Payload>,
    options: SendOptions,
    link_available: bool,
    max_payload: usize,
) -> Result<std::result::Result<(Envelope, Bytes), Envelope>> {
    let threshold = options.size_threshold;
    if link_available && payloads.iter().any(|p| p.bytes.len() >= threshold) {
        return Ok(Err(Envelope::pack(subject, payloads, options, &mut SystemIds, &SystemClock)));
    }
    let (envelope, json) =
        Envelope::pack_json(subject, payloads, options, &mut SystemIds, &SystemClock)?;
    if json.len() <= max_payload {
        return Ok(Ok((envelope, Bytes::from(json))));
    }
    Ok(Err(envelope))
}

/// The plan and the uploads, for an envelope [`try_direct`] handed back.
pub(crate) async fn finish_links(
    mut envelope: Envelope,
    size_threshold: usize,
    uploader: Option<&dyn UploadHandler>,
    max_payload: usize,
) -> Result<(Envelope, Bytes)> {
    let limits = PlanLimits {
        size_threshold,
        max_payload,
        link_available: uploader.is_some(),
        ..PlanLimits::default()
    };
    let plan = plan_transports(&envelope, &limits)?;
    for (record, transport) in envelope.payloads.iter_mut().zip(plan) {
        if transport != Transport::Link {
            continue;
        }
        let (Some(uploader), Body::Direct(bytes)) = (uploader, &record.body) else { continue };
        let name = upload_file_name(&record.dataname, &record.payload_type);
        // The hash is computed as the bytes stream to the server.
        let (url, hash) =
            uploader.upload_with_sha256(&name, UploadSource::Bytes(bytes.clone())).await.map_err(
                |e| Error::from(e).context(format!("uploading payload {:?}", record.dataname)),
            )?;
        record.set_link(url);
        record.extra.insert(SHA256_KEY.into(), hash.into());
    }
    let json = envelope.to_json()?;
    if json.len() > max_payload {
        let largest = envelope
            .payloads
            .iter()
            .filter(|p| p.transport() == Transport::Direct)
            .max_by_key(|p| p.size())
            .map(|p| p.dataname.clone())
            .unwrap_or_default();
        return Err(Error::from(crate::envelope::Error::from_kind(
            EnvelopeErrorKind::PayloadTooLarge {
                dataname: largest,
                envelope_size: json.len(),
                limit: max_payload,
            },
            "the link URLs made the finished envelope too large",
        )));
    }
    Ok((envelope, Bytes::from(json)))
}

/// Parses an envelope and fetches its link payloads: the seeds'
/// `smartunpack` / `smartreceive` on a message body, with the default
/// [`ReceiveLimits`] (see [`unpack_with`]).
///
/// Each link record is downloaded with `downloader` (which applies its
/// retry, size and origin policy), checked against the record's `size` and,
/// when present, its `sha256`, and becomes [`Body::Fetched`]. A link record
/// without a `size` (the seeds never define it) takes the downloaded length
/// as its size, up to the downloader's maximum download size and what is
/// left of the envelope's budget.
pub async fn unpack(message: &[u8], downloader: &dyn DownloadHandler) -> Result<Envelope> {
    unpack_with(message, downloader, &ReceiveLimits::default()).await
}

/// [`unpack`] within `limits`: the links of one envelope bring at most
/// `limits.max_envelope_bytes` into memory together (links declaring more
/// are refused before any is fetched), each link's download ends by
/// `limits.link_deadline` and all of them by `limits.message_deadline`.
pub async fn unpack_with(
    message: &[u8],
    downloader: &dyn DownloadHandler,
    limits: &ReceiveLimits,
) -> Result<Envelope> {
    fetch_links(Envelope::from_json(message)?, downloader, limits).await
}

/// Whether `envelope` has link records still to download.
pub(crate) fn has_links(envelope: &Envelope) -> bool {
    envelope.payloads.iter().any(|r| matches!(r.body, Body::Link { .. }))
}

/// Downloads the link records of a parsed envelope into memory (see
/// [`unpack_with`]).
pub(crate) async fn fetch_links(
    mut envelope: Envelope,
    downloader: &dyn DownloadHandler,
    limits: &ReceiveLimits,
) -> Result<Envelope> {
    fetch_links_to(&mut envelope, downloader, limits, |_, _| DownloadSink::Memory).await?;
    Ok(envelope)
}

/// [`unpack_with`]'s download step for a receiver that chooses where each
/// link goes: `sink` names it for each link record (by index), memory, a
/// file, or only its size and SHA-256 ([`DownloadSink::Digest`]: shown
/// without being held). A link into memory becomes [`Body::Fetched`] and
/// counts against `limits.max_envelope_bytes` (links into memory that
/// declare more in all are refused before any is fetched); any other stays
/// a link, and what its download gave is returned at its index. Every link
/// ends by `limits.link_deadline`, all of them by `limits.message_deadline`;
/// the first that fails fails the call, naming its payload.
pub async fn fetch_links_to(
    envelope: &mut Envelope,
    downloader: &dyn DownloadHandler,
    limits: &ReceiveLimits,
    sink: impl Fn(usize, &PayloadRecord) -> DownloadSink,
) -> Result<Vec<Option<Downloaded>>> {
    let sinks: Vec<Option<DownloadSink>> = envelope
        .payloads
        .iter()
        .enumerate()
        .map(|(i, r)| matches!(r.body, Body::Link { .. }).then(|| sink(i, r)))
        .collect();
    let declared = envelope
        .payloads
        .iter()
        .zip(&sinks)
        .filter(|(_, sink)| matches!(sink, Some(DownloadSink::Memory)))
        .map(|(r, _)| r.size().unwrap_or(0))
        .fold(0u64, u64::saturating_add);
    if declared > limits.max_envelope_bytes {
        return Err(Error::from(crate::claimcheck::Error::new(
            crate::claimcheck::ErrorKind::TooLarge { limit: limits.max_envelope_bytes },
            format!(
                "the envelope's links declare {declared} bytes in all, over this receiver's \
                 budget of {} bytes for one envelope; nothing was fetched",
                limits.max_envelope_bytes
            ),
        )));
    }
    let mut outcomes = vec![None; envelope.payloads.len()];
    let fetch_all = async {
        let mut used = 0u64;
        for (index, (record, sink)) in envelope.payloads.iter_mut().zip(sinks).enumerate() {
            let (Some(request), Some(sink)) = (link_request(record), sink) else { continue };
            let in_memory = matches!(sink, DownloadSink::Memory);
            let request = if in_memory {
                request.with_max_size(limits.max_envelope_bytes.saturating_sub(used))
            } else {
                request
            };
            let named = |e: crate::claimcheck::Error| {
                Error::from(e).context(format!(
                    "downloading payload {:?} (payloads[{index}])",
                    record.dataname
                ))
            };
            let downloaded =
                download_to(&request, sink, downloader, limits).await.map_err(named)?;
            match downloaded {
                Downloaded::Bytes(bytes) if in_memory => {
                    used += bytes.len() as u64;
                    record.body = Body::Fetched { url: request.url, bytes };
                }
                other => outcomes[index] = Some(other),
            }
        }
        Ok(())
    };
    match tokio::time::timeout(limits.message_deadline, fetch_all).await {
        Ok(result) => result.map(|()| outcomes),
        Err(_) => Err(Error::from(crate::claimcheck::Error::new(
            crate::claimcheck::ErrorKind::TimedOut,
            format!(
                "the envelope's links were not all fetched within its deadline of {:?}",
                limits.message_deadline
            ),
        ))),
    }
}

/// One payload with its bytes here, downloading it if it is a link: for a
/// receiver that needs one payload of several (an envelope read lazily,
/// with [`EnvelopeView`](crate::EnvelopeView) or
/// [`Bridge::subscribe_lazy`](crate::Bridge::subscribe_lazy), turns the one
/// it wants into a record with [`PayloadView::to_record`](crate::envelope::PayloadView::to_record)).
///
/// A link record is downloaded with `downloader` and checked exactly as
/// [`smartunpack`](crate::smartunpack) checks every link (its `size`, or
/// without one the downloader's maximum; its `sha256` when present), within
/// the default [`ReceiveLimits`] (one link: the envelope budget and the
/// link deadline), and comes back as [`Body::Fetched`]; a record whose
/// bytes are here already (direct, or fetched) comes back as it is, with
/// nothing downloaded. [`Bridge::fetch_payload`](crate::Bridge::fetch_payload)
/// uses the bridge's download handlers and limits.
pub async fn fetch_payload(
    record: &PayloadRecord,
    downloader: &dyn DownloadHandler,
) -> Result<PayloadRecord> {
    fetch_payload_with(record, downloader, &ReceiveLimits::default()).await
}

/// [`fetch_payload`] within `limits`.
pub(crate) async fn fetch_payload_with(
    record: &PayloadRecord,
    downloader: &dyn DownloadHandler,
    limits: &ReceiveLimits,
) -> Result<PayloadRecord> {
    let Some(request) = link_request(record) else { return Ok(record.clone()) };
    let request = request.with_max_size(limits.max_envelope_bytes);
    let bytes = download(&request, downloader, limits).await.map_err(|e| {
        Error::from(e).context(format!("downloading payload {:?}", record.dataname))
    })?;
    let mut fetched = record.clone();
    fetched.body = Body::Fetched { url: request.url, bytes };
    Ok(fetched)
}

/// What to ask a [`DownloadHandler`] for a link record: its `url`, its
/// `size` (the seeds never define it: without one, the downloaded length is
/// the size, bounded by the downloader's maximum) and its `sha256`. `None`
/// for a record whose bytes are here. For a receiver that downloads a link
/// somewhere else than memory ([`DownloadSink::File`](crate::claimcheck::DownloadSink::File),
/// or [`DownloadSink::Digest`](crate::claimcheck::DownloadSink::Digest) to
/// show its size and SHA-256 without holding it).
pub fn link_request(record: &PayloadRecord) -> Option<DownloadRequest> {
    let Body::Link { url, size } = &record.body else { return None };
    let mut request = match size {
        Some(size) => DownloadRequest::new(url.as_str(), *size),
        None => DownloadRequest::with_unknown_size(url.as_str()),
    };
    if let Some(hash) = record.extra.get(SHA256_KEY).and_then(|v| v.as_str()) {
        request = request.with_sha256(hash);
    }
    Some(request)
}

/// The bytes of `request`, by `limits.link_deadline`.
async fn download(
    request: &DownloadRequest,
    downloader: &dyn DownloadHandler,
    limits: &ReceiveLimits,
) -> std::result::Result<Bytes, crate::claimcheck::Error> {
    match download_to(request, DownloadSink::Memory, downloader, limits).await? {
        Downloaded::Bytes(bytes) => Ok(bytes),
        _ => Err(crate::claimcheck::Error::new(
            crate::claimcheck::ErrorKind::InvalidResponse,
            "download handler returned no bytes when memory was asked for",
        )),
    }
}

/// `request` downloaded into `sink` by `limits.link_deadline`.
async fn download_to(
    request: &DownloadRequest,
    sink: DownloadSink,
    downloader: &dyn DownloadHandler,
    limits: &ReceiveLimits,
) -> std::result::Result<Downloaded, crate::claimcheck::Error> {
    match tokio::time::timeout(limits.link_deadline, downloader.download(request, sink)).await {
        Ok(result) => result,
        Err(_) => Err(crate::claimcheck::Error::new(
            crate::claimcheck::ErrorKind::TimedOut,
            format!("the link was not complete within its deadline of {:?}", limits.link_deadline),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_typed() {
        assert_eq!(upload_file_name("large_document", &PayloadType::Binary), "large_document.bin");
        assert_eq!(upload_file_name("../../etc/passwd", &PayloadType::Text), "_.._etc_passwd");
        assert_eq!(upload_file_name("", &PayloadType::ArrowTable), "payload.arrow");
        assert_eq!(upload_file_name("data.arrow", &PayloadType::Table), "data.arrow");
        assert_eq!(upload_file_name("résumé", &PayloadType::JsonTable), "r_sum_.json");
    }
}
