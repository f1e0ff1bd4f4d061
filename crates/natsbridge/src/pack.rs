//! smartpack / smartunpack without NATS: envelope plus claim-check.

use crate::claimcheck::{
    DownloadHandler, DownloadHandlerExt, DownloadRequest, UploadHandler, UploadHandlerExt,
    UploadSource,
};
use crate::envelope::bytes::Bytes;
use crate::envelope::{
    Body, Envelope, ErrorKind as EnvelopeErrorKind, Payload, PayloadType, PlanLimits, SendOptions,
    Transport, plan_transports,
};
use crate::system::{SystemClock, SystemIds};
use crate::{Error, Result};

/// The payload-record key this peer adds to link payloads: the hex SHA-256
/// of the serialized bytes (older peers ignore it; receivers that know it
/// verify the download).
pub const SHA256_KEY: &str = "sha256";

/// The file name a payload is uploaded under: its `dataname` reduced to
/// characters every file server keeps, with an extension for its type.
pub fn upload_file_name(dataname: &str, payload_type: PayloadType) -> String {
    let mut name: String = dataname
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .collect();
    let name_trimmed = name.trim_matches('.');
    if name_trimmed.is_empty() {
        name = "payload".into();
    } else {
        name = name_trimmed.into();
    }
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
/// serializes it: the seeds' `smartpack` with `is_publish = false`.
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
    let limits = PlanLimits {
        size_threshold: options.size_threshold,
        max_payload,
        link_available: uploader.is_some(),
        ..PlanLimits::default()
    };
    let mut envelope = Envelope::pack(subject, payloads, options, &mut SystemIds, &SystemClock);
    let plan = plan_transports(&envelope, &limits)?;
    for (record, transport) in envelope.payloads.iter_mut().zip(plan) {
        if transport != Transport::Link {
            continue;
        }
        let (Some(uploader), Body::Direct(bytes)) = (uploader, &record.body) else { continue };
        let name = upload_file_name(&record.dataname, record.payload_type);
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
/// `smartunpack` / `smartreceive` on a message body.
///
/// Each link record is downloaded with `downloader` (which applies its
/// retry, size and origin policy), checked against the record's `size` and,
/// when present, its `sha256`, and becomes [`Body::Fetched`]. A link record
/// without a `size` is refused: its length could not be checked.
pub async fn unpack(message: &[u8], downloader: &dyn DownloadHandler) -> Result<Envelope> {
    let mut envelope = Envelope::from_json(message)?;
    for (index, record) in envelope.payloads.iter_mut().enumerate() {
        let Body::Link { url, size } = &record.body else { continue };
        let Some(size) = *size else {
            return Err(Error::from(crate::envelope::Error::from_kind(
                EnvelopeErrorKind::Malformed { field: format!("payloads[{index}].size") },
                "a link payload must declare its size so the download can be checked",
            )));
        };
        let mut request = DownloadRequest::new(url.clone(), size);
        if let Some(hash) = record.extra.get(SHA256_KEY).and_then(|v| v.as_str()) {
            request = request.sha256(hash);
        }
        let bytes = downloader.download_bytes(&request).await.map_err(|e| {
            Error::from(e)
                .context(format!("downloading payload {:?} (payloads[{index}])", record.dataname))
        })?;
        record.body = Body::Fetched { url: url.clone(), bytes };
    }
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_typed() {
        assert_eq!(upload_file_name("large_document", PayloadType::Binary), "large_document.bin");
        assert_eq!(upload_file_name("../../etc/passwd", PayloadType::Text), "_.._etc_passwd");
        assert_eq!(upload_file_name("", PayloadType::ArrowTable), "payload.arrow");
        assert_eq!(upload_file_name("data.arrow", PayloadType::Table), "data.arrow");
        assert_eq!(upload_file_name("résumé", PayloadType::JsonTable), "r_sum_.json");
    }
}
