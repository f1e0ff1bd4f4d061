//! A prepared sender: a stream of envelopes to one subject with fixed
//! options, each written straight to its wire bytes.

use crate::envelope::bytes::Bytes;
use crate::envelope::{EnvelopeTemplate, Payload, SendOptions};
use crate::pack::pack;
use crate::system::{SystemClock, SystemIds};
use crate::{Bridge, Result};

/// Sends envelopes to one subject with the same options, for a service
/// that publishes many (readings, ticks, log lines). Made by
/// [`Bridge::prepare`].
///
/// The subject and options are rendered to JSON once; each
/// [`PreparedSender::send`] writes only the new ids, the timestamp and the
/// payload records into one buffer and publishes it. On the wire it is
/// exactly what [`Bridge::smartsend`] sends with the same subject and
/// options (fresh `msg_id`, `correlation_id` and `sender_id` per message
/// unless the options fix them). A message that needs the full path (a
/// payload at or over `size_threshold` with an upload handler configured,
/// or an envelope over the server's `max_payload`) goes through
/// `smartsend`, which uploads links or fails with the same errors.
///
/// ```no_run
/// # async fn run(bridge: natsbridge::Bridge) -> natsbridge::Result<()> {
/// use natsbridge::{Payload, SendOptions};
///
/// let sender = bridge.prepare("sensors.t1", SendOptions::default())?;
/// for reading in [21.5, 21.6, 21.4] {
///     sender.send(&[Payload::text("celsius", reading.to_string())]).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct PreparedSender {
    bridge: Bridge,
    subject: String,
    options: SendOptions,
    template: EnvelopeTemplate,
}

impl Bridge {
    /// A sender of envelopes to `subject` with `options` (see
    /// [`PreparedSender`]). Fails only if `options.metadata` cannot be
    /// serialized.
    pub fn prepare(&self, subject: &str, options: SendOptions) -> Result<PreparedSender> {
        let options = self.options(options);
        let template = EnvelopeTemplate::new(subject, &options)?;
        Ok(PreparedSender { bridge: self.clone(), subject: subject.into(), options, template })
    }
}

impl PreparedSender {
    /// The subject every envelope goes to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Builds one envelope carrying `payloads` and publishes it (unless the
    /// options say `is_publish = false`). Returns its JSON exactly as
    /// published.
    pub async fn send(&self, payloads: &[Payload]) -> Result<Bytes> {
        let write = |out: &mut Vec<u8>| {
            self.template.write(out, payloads, &mut SystemIds, &SystemClock);
            Ok(())
        };
        let json = build(&self.bridge, &self.subject, &self.options, payloads, write).await?;
        if self.options.is_publish {
            self.bridge.conn.publish(&self.subject, json.clone()).await?;
        }
        Ok(json)
    }
}

/// The JSON of one envelope as `write` writes it (from a template, or
/// [`Envelope::write_packed`](crate::Envelope::write_packed)), or from
/// `pack`'s full path when a payload must go by link or the envelope would
/// exceed the server's `max_payload` (which then uploads, or fails naming
/// the payload). Publishes nothing.
pub(crate) async fn build(
    bridge: &Bridge,
    subject: &str,
    options: &SendOptions,
    payloads: &[Payload],
    write: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<Bytes> {
    let max_payload = bridge.conn.max_payload();
    let may_link = bridge.uploader.is_some();
    if !(may_link && payloads.iter().any(|p| p.bytes.len() >= options.size_threshold)) {
        let mut json = Vec::new();
        write(&mut json)?;
        if json.len() <= max_payload {
            return Ok(Bytes::from(json));
        }
    }
    let mut options = options.clone().with_is_publish(false);
    // The bridge's URL, where the write above was handed it beside the
    // options (`smartsend`); a no-op for options that name one.
    bridge.fill_broker_url(&mut options);
    // Boxed: the upload path's large state stays out of every send's future.
    let uploader = bridge.uploader.as_deref();
    let (_, json) =
        Box::pin(pack(subject, payloads.to_vec(), options, uploader, max_payload)).await?;
    Ok(json)
}
