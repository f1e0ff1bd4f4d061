//! Payload types, typed payload values and their serialized bytes.

use crate::prelude::*;
use crate::{Error, ErrorKind, Result};

/// The `payload_type` of a payload record: what its bytes mean.
///
/// | variant | wire name | serialized bytes |
/// |---|---|---|
/// | `Text` | `text` | UTF-8 of the string |
/// | `Dictionary` | `dictionary` | UTF-8 JSON of an object (or array) |
/// | `ArrowTable` | `arrowtable` | Arrow IPC stream (file format accepted on receive) |
/// | `Table` | `table` | the older name of `arrowtable`, kept so a reply to an older peer uses its word |
/// | `JsonTable` | `jsontable` | UTF-8 JSON array of row objects |
/// | `Image`, `Audio`, `Video`, `Binary` | `image` ... | the raw bytes |
/// | `Other(name)` | any other name | bytes this peer does not interpret |
///
/// `Other` keeps envelopes from newer peers readable: a payload type this
/// peer does not know is carried with its name and bytes (direct or by
/// link), never a reason to reject the envelope or its other payloads, and
/// is written back out under the same name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PayloadType {
    /// `text`: a UTF-8 string.
    Text,
    /// `dictionary`: a JSON object or array.
    Dictionary,
    /// `arrowtable`: an Arrow IPC table.
    ArrowTable,
    /// `table`: the older (NATSBridge) name of `arrowtable`.
    Table,
    /// `jsontable`: a JSON array of row objects.
    JsonTable,
    /// `image`: raw bytes (PNG, JPEG, ...).
    Image,
    /// `audio`: raw bytes (WAV, MP3, ...).
    Audio,
    /// `video`: raw bytes (MP4, ...).
    Video,
    /// `binary`: raw bytes.
    Binary,
    /// A type this peer does not know, by its wire name (never one of the
    /// names above, never empty). Its bytes are carried untouched.
    Other(String),
}

impl PayloadType {
    /// Every payload type this peer knows, in wire-name order of the spec.
    pub const ALL: [PayloadType; 9] = [
        PayloadType::Text,
        PayloadType::Dictionary,
        PayloadType::ArrowTable,
        PayloadType::Table,
        PayloadType::JsonTable,
        PayloadType::Image,
        PayloadType::Audio,
        PayloadType::Video,
        PayloadType::Binary,
    ];

    /// The wire name (`"text"`, `"arrowtable"`, ..., or an `Other`'s name).
    pub fn as_str(&self) -> &str {
        match self {
            PayloadType::Other(name) => name,
            known => known.known_name(),
        }
    }

    const fn known_name(&self) -> &'static str {
        match self {
            PayloadType::Text => "text",
            PayloadType::Dictionary => "dictionary",
            PayloadType::ArrowTable => "arrowtable",
            PayloadType::Table => "table",
            PayloadType::JsonTable => "jsontable",
            PayloadType::Image => "image",
            PayloadType::Audio => "audio",
            PayloadType::Video => "video",
            PayloadType::Binary => "binary",
            PayloadType::Other(_) => "",
        }
    }

    /// The known type with this wire name, if it is one. Names are
    /// case-sensitive, as every peer writes them in lower case.
    pub fn known(name: &str) -> Option<PayloadType> {
        PayloadType::ALL.into_iter().find(|t| t.known_name() == name)
    }

    /// The type a received `payload_type` names: a known one, else
    /// [`PayloadType::Other`] with the name.
    pub fn from_wire(name: &str) -> PayloadType {
        PayloadType::known(name).unwrap_or_else(|| PayloadType::Other(name.into()))
    }

    /// Whether this peer knows the type (it is not [`PayloadType::Other`]).
    pub const fn is_known(&self) -> bool {
        !matches!(self, PayloadType::Other(_))
    }

    /// Whether the bytes are an Arrow IPC table (`arrowtable` or `table`).
    pub const fn is_arrow(&self) -> bool {
        matches!(self, PayloadType::ArrowTable | PayloadType::Table)
    }

    /// Whether the bytes are UTF-8 JSON (`dictionary` or `jsontable`).
    pub const fn is_json(&self) -> bool {
        matches!(self, PayloadType::Dictionary | PayloadType::JsonTable)
    }

    /// Whether the bytes are media or binary carried untouched (`image`,
    /// `audio`, `video`, `binary`). An [`PayloadType::Other`] payload's
    /// bytes are also untouched, but it is not one of these.
    pub const fn is_raw(&self) -> bool {
        matches!(
            self,
            PayloadType::Image | PayloadType::Audio | PayloadType::Video | PayloadType::Binary
        )
    }
}

impl fmt::Display for PayloadType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a payload travels: inside the envelope, or as a claim-check URL.
///
/// Non-exhaustive: a later version of the wire contract may add a way to
/// travel, so a `match` outside this crate needs a wildcard arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// `direct`: base64 inside the envelope (`encoding` `base64`).
    Direct,
    /// `link`: uploaded to a file server; `data` is the URL (`encoding` `none`).
    Link,
}

impl Transport {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Transport::Direct => "direct",
            Transport::Link => "link",
        }
    }

    /// The `encoding` that goes with this transport.
    pub const fn encoding(self) -> &'static str {
        match self {
            Transport::Direct => "base64",
            Transport::Link => "none",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A payload as a typed value: what application code hands in and gets out.
///
/// [`PayloadValue::to_bytes`] gives the serialized bytes the wire carries,
/// [`PayloadValue::from_bytes`] reads them back according to a
/// [`PayloadType`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PayloadValue {
    /// A string (`text`).
    Text(String),
    /// A JSON value (`dictionary`, `jsontable`).
    Json(serde_json::Value),
    /// Arrow IPC bytes (`arrowtable`, `table`); `natsbridge-table-arrow`
    /// turns them into record batches.
    Table(Bytes),
    /// Raw bytes (`image`, `audio`, `video`, `binary`, and the bytes of a
    /// type this peer does not know).
    Bytes(Bytes),
}

impl PayloadValue {
    /// The serialized bytes of this value.
    pub fn to_bytes(&self) -> Result<Bytes> {
        Ok(match self {
            PayloadValue::Text(s) => Bytes::copy_from_slice(s.as_bytes()),
            PayloadValue::Json(v) => Bytes::from(
                serde_json::to_vec(v).map_err(|e| Error::new(ErrorKind::Encode, e.to_string()))?,
            ),
            PayloadValue::Table(b) | PayloadValue::Bytes(b) => b.clone(),
        })
    }

    /// Reads serialized bytes as `payload_type` says. `dataname` only names
    /// the payload in an error.
    pub fn from_bytes(payload_type: &PayloadType, bytes: Bytes, dataname: &str) -> Result<Self> {
        let decode_err =
            |detail: String| Error::new(ErrorKind::Decode { dataname: dataname.into() }, detail);
        match payload_type {
            PayloadType::Text => match String::from_utf8(bytes.into()) {
                Ok(s) => Ok(PayloadValue::Text(s)),
                Err(e) => Err(decode_err(format!("text is not UTF-8: {}", e.utf8_error()))),
            },
            PayloadType::Dictionary | PayloadType::JsonTable => {
                let value: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|e| decode_err(format!("{payload_type} is not JSON: {e}")))?;
                if *payload_type == PayloadType::JsonTable && !value.is_array() {
                    return Err(decode_err("jsontable is not a JSON array of rows".into()));
                }
                Ok(PayloadValue::Json(value))
            }
            PayloadType::ArrowTable | PayloadType::Table => Ok(PayloadValue::Table(bytes)),
            PayloadType::Image
            | PayloadType::Audio
            | PayloadType::Video
            | PayloadType::Binary
            | PayloadType::Other(_) => Ok(PayloadValue::Bytes(bytes)),
        }
    }
}

/// A payload ready to send: its name, type and serialized bytes.
///
/// This is the Rust form of the seeds' `(dataname, data, type)` tuple.
/// Building one never copies raw bytes handed in as [`Bytes`] or `Vec<u8>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    /// The caller's name for the payload (not unique by force).
    pub dataname: String,
    /// What the bytes mean.
    pub payload_type: PayloadType,
    /// The serialized bytes.
    pub bytes: Bytes,
}

impl Payload {
    /// A payload of any type from its already serialized bytes.
    pub fn new(
        dataname: impl Into<String>,
        payload_type: PayloadType,
        bytes: impl Into<Bytes>,
    ) -> Payload {
        Payload { dataname: dataname.into(), payload_type, bytes: bytes.into() }
    }

    /// A `text` payload.
    pub fn text(dataname: impl Into<String>, text: impl Into<String>) -> Payload {
        Payload::new(dataname, PayloadType::Text, Bytes::from(text.into().into_bytes()))
    }

    /// A `dictionary` payload from anything serializable to JSON.
    pub fn dictionary<T: serde::Serialize + ?Sized>(
        dataname: impl Into<String>,
        value: &T,
    ) -> Result<Payload> {
        let bytes =
            serde_json::to_vec(value).map_err(|e| Error::new(ErrorKind::Encode, e.to_string()))?;
        Ok(Payload::new(dataname, PayloadType::Dictionary, bytes))
    }

    /// A `jsontable` payload from rows serializable to a JSON array.
    pub fn json_table<T: serde::Serialize>(
        dataname: impl Into<String>,
        rows: &[T],
    ) -> Result<Payload> {
        let bytes =
            serde_json::to_vec(rows).map_err(|e| Error::new(ErrorKind::Encode, e.to_string()))?;
        Ok(Payload::new(dataname, PayloadType::JsonTable, bytes))
    }

    /// An `arrowtable` payload from Arrow IPC stream bytes.
    pub fn arrow_table(dataname: impl Into<String>, ipc: impl Into<Bytes>) -> Payload {
        Payload::new(dataname, PayloadType::ArrowTable, ipc)
    }

    /// A `table` payload from Arrow IPC stream bytes: the first seed's
    /// (NATSBridge) name for `arrowtable`, for fleets whose peers know only
    /// that name. Newer peers read both alike.
    pub fn table(dataname: impl Into<String>, ipc: impl Into<Bytes>) -> Payload {
        Payload::new(dataname, PayloadType::Table, ipc)
    }

    /// A `binary` payload.
    pub fn binary(dataname: impl Into<String>, bytes: impl Into<Bytes>) -> Payload {
        Payload::new(dataname, PayloadType::Binary, bytes)
    }

    /// An `image` payload.
    pub fn image(dataname: impl Into<String>, bytes: impl Into<Bytes>) -> Payload {
        Payload::new(dataname, PayloadType::Image, bytes)
    }

    /// An `audio` payload.
    pub fn audio(dataname: impl Into<String>, bytes: impl Into<Bytes>) -> Payload {
        Payload::new(dataname, PayloadType::Audio, bytes)
    }

    /// A `video` payload.
    pub fn video(dataname: impl Into<String>, bytes: impl Into<Bytes>) -> Payload {
        Payload::new(dataname, PayloadType::Video, bytes)
    }

    /// A payload from a typed value.
    pub fn from_value(
        dataname: impl Into<String>,
        payload_type: PayloadType,
        value: &PayloadValue,
    ) -> Result<Payload> {
        Ok(Payload::new(dataname, payload_type, value.to_bytes()?))
    }

    /// The typed value of the bytes.
    pub fn value(&self) -> Result<PayloadValue> {
        PayloadValue::from_bytes(&self.payload_type, self.bytes.clone(), &self.dataname)
    }
}
