//! What a send returns: the envelope's JSON exactly as it went out, read
//! only when asked.

use crate::Result;
use crate::envelope::bytes::Bytes;
use crate::envelope::{Envelope, EnvelopeView};

/// An envelope that was sent (or, with `is_publish = false`, built): its
/// JSON, byte for byte what was published, and the envelope read back from
/// it on demand.
///
/// The seeds' `smartsend` returns the envelope and its JSON string. A send
/// here writes the ids, the timestamp and the payloads straight into the
/// JSON and keeps nothing else, so a sender that only publishes pays for
/// no owned header strings; a caller that wants the envelope asks for it
/// ([`Sent::view`] borrows it from the JSON, [`Sent::envelope`] builds the
/// owned [`Envelope`], [`Sent::into_parts`] gives the seeds' pair).
///
/// ```no_run
/// # async fn run(bridge: natsbridge::Bridge) -> natsbridge::Result<()> {
/// use natsbridge::{Payload, SendOptions};
///
/// let sent = bridge.smartsend("chat.room1", vec![Payload::text("m", "hi")], SendOptions::default()).await?;
/// println!("sent {} ({} bytes)", sent.view()?.msg_id(), sent.json().len());
/// let (envelope, json) = sent.into_parts()?; // the seeds' (env, env_json_str)
/// # let _ = (envelope, json);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    json: Bytes,
}

impl Sent {
    pub(crate) fn new(json: Bytes) -> Sent {
        Sent { json }
    }

    /// The envelope's JSON, as published.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The envelope's JSON, as published.
    pub fn into_json(self) -> Bytes {
        self.json
    }

    /// The envelope read in place from its JSON: header fields borrowed,
    /// payloads left encoded until asked for. It cannot fail on JSON this
    /// crate wrote; the error is there for a bug, never a panic.
    pub fn view(&self) -> Result<EnvelopeView<'_>> {
        Ok(EnvelopeView::parse(&self.json)?)
    }

    /// The envelope as an owned [`Envelope`], parsed from the JSON (equal
    /// to what the receiver's `smartreceive` builds before any download).
    pub fn envelope(&self) -> Result<Envelope> {
        Ok(Envelope::from_json(&self.json)?)
    }

    /// The envelope and its JSON: the seeds' `(env, env_json_str)`.
    pub fn into_parts(self) -> Result<(Envelope, Bytes)> {
        let envelope = self.envelope()?;
        Ok((envelope, self.json))
    }
}

impl AsRef<[u8]> for Sent {
    fn as_ref(&self) -> &[u8] {
        &self.json
    }
}

impl From<Sent> for Bytes {
    fn from(sent: Sent) -> Bytes {
        sent.json
    }
}
