//! async-nats's typed JetStream error kinds, mapped to this crate's
//! [`ErrorKind`]. Each failure is classified by the kind async-nats gives it
//! (and, for a JetStream API error, by its numeric error code), never by the
//! text of a message.

use async_nats::jetstream::consumer::pull::{BatchErrorKind, MessagesErrorKind};
use async_nats::jetstream::consumer::{StreamError, StreamErrorKind};
use async_nats::jetstream::context::{
    CreateStreamErrorKind, GetStreamErrorKind, PublishErrorKind, RequestError, RequestErrorKind,
};
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::{self, ErrorCode};

use crate::{Error, ErrorKind};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A JetStream API error (the server's answer with an error code).
fn api(e: &jetstream::Error) -> ErrorKind {
    match e.error_code() {
        ErrorCode::STREAM_NOT_FOUND | ErrorCode::CONSUMER_NOT_FOUND => ErrorKind::NotFound,
        _ => ErrorKind::JetStream,
    }
}

/// A JetStream API request of the context.
pub(crate) fn request(kind: RequestErrorKind) -> ErrorKind {
    match kind {
        RequestErrorKind::TimedOut => ErrorKind::TimedOut,
        RequestErrorKind::NoResponders => ErrorKind::NoResponders,
        RequestErrorKind::InvalidSubject => ErrorKind::InvalidSubject,
        RequestErrorKind::Other => ErrorKind::Closed,
    }
}

/// A core NATS request (the ack of a stream message waits on one).
pub(crate) fn core_request(kind: async_nats::RequestErrorKind) -> ErrorKind {
    match kind {
        async_nats::RequestErrorKind::TimedOut => ErrorKind::TimedOut,
        async_nats::RequestErrorKind::NoResponders => ErrorKind::NoResponders,
        async_nats::RequestErrorKind::InvalidSubject => ErrorKind::InvalidSubject,
        // Sizes are checked before sending; an ack is a few bytes.
        async_nats::RequestErrorKind::MaxPayloadExceeded => ErrorKind::JetStream,
        async_nats::RequestErrorKind::Other => ErrorKind::Closed,
    }
}

/// A publish or its ack.
pub(crate) fn publish(kind: PublishErrorKind) -> ErrorKind {
    match kind {
        PublishErrorKind::StreamNotFound => ErrorKind::NotFound,
        PublishErrorKind::TimedOut => ErrorKind::TimedOut,
        PublishErrorKind::BrokenPipe => ErrorKind::Closed,
        _ => ErrorKind::JetStream,
    }
}

/// Creating (or getting) a stream.
pub(crate) fn create_stream(kind: &CreateStreamErrorKind) -> ErrorKind {
    match kind {
        CreateStreamErrorKind::TimedOut => ErrorKind::TimedOut,
        CreateStreamErrorKind::NotFound => ErrorKind::NotFound,
        CreateStreamErrorKind::JetStreamUnavailable => ErrorKind::NoResponders,
        CreateStreamErrorKind::EmptyStreamName
        | CreateStreamErrorKind::InvalidStreamName
        | CreateStreamErrorKind::DomainAndExternalSet => ErrorKind::InvalidConfig,
        CreateStreamErrorKind::JetStream(e) => api(e),
        _ => ErrorKind::JetStream,
    }
}

/// Getting a stream by name; a failed request is told by its own kind
/// (async-nats keeps it as the source).
pub(crate) fn get_stream(e: &jetstream::context::GetStreamError) -> ErrorKind {
    match e.kind() {
        GetStreamErrorKind::EmptyName | GetStreamErrorKind::InvalidStreamName => {
            ErrorKind::InvalidConfig
        }
        GetStreamErrorKind::JetStream(api_error) => api(&api_error),
        GetStreamErrorKind::Request => std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<RequestError>())
            .map_or(ErrorKind::JetStream, |r| request(r.kind())),
    }
}

/// Creating or getting a consumer.
pub(crate) fn consumer(kind: &ConsumerErrorKind) -> ErrorKind {
    match kind {
        ConsumerErrorKind::TimedOut => ErrorKind::TimedOut,
        ConsumerErrorKind::InvalidName | ConsumerErrorKind::InvalidConsumerType => {
            ErrorKind::InvalidConfig
        }
        ConsumerErrorKind::JetStream(e) => api(e),
        _ => ErrorKind::JetStream,
    }
}

/// Starting a pull.
pub(crate) fn stream(e: &StreamError) -> ErrorKind {
    match e.kind() {
        StreamErrorKind::TimedOut => ErrorKind::TimedOut,
        StreamErrorKind::Other => ErrorKind::JetStream,
    }
}

/// A pull that failed for good (the failures that pass restart it).
pub(crate) fn messages(kind: MessagesErrorKind) -> ErrorKind {
    match kind {
        MessagesErrorKind::ConsumerDeleted => ErrorKind::NotFound,
        MessagesErrorKind::NoResponders => ErrorKind::NoResponders,
        MessagesErrorKind::MissingHeartbeat => ErrorKind::TimedOut,
        _ => ErrorKind::JetStream,
    }
}

/// Sending a fetch's pull request.
pub(crate) fn batch(kind: BatchErrorKind) -> ErrorKind {
    match kind {
        BatchErrorKind::Subscribe | BatchErrorKind::Flush => ErrorKind::Closed,
        _ => ErrorKind::JetStream,
    }
}

/// The error: `what` was being done, `kind` from one of the functions
/// above, the async-nats error as the source.
pub(crate) fn error(kind: ErrorKind, what: impl Into<String>, e: impl Into<BoxError>) -> Error {
    Error::with_source(kind, what, e)
}
