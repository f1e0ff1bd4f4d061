//! JetStream: streams, publish with ack, durable pull consumers, and
//! object stores.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind, stream};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::objectstore::{ObjectStore, ObjectStoreConfig};
use crate::{Error, ErrorKind, Result};

fn js_error(what: impl Into<String>, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::with_source(ErrorKind::JetStream, what, e)
}

/// What the server acknowledged for a published message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ack {
    /// The stream that stored it.
    pub stream: String,
    /// Its sequence number in the stream.
    pub sequence: u64,
    /// `true` when the server had already stored a message with the same
    /// msg id (within the stream's duplicate window) and dropped this one.
    pub duplicate: bool,
}

/// How to create a stream ([`JetStream::ensure_stream_with`]). Plain data;
/// tune the fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    /// The stream's name.
    pub name: String,
    /// The subjects it captures.
    pub subjects: Vec<String>,
    /// How many servers of a cluster keep a copy (1 to 5). Default 1; 3
    /// survives the loss of any one node of a 3-node cluster.
    pub replicas: usize,
    /// How long the server remembers a `Nats-Msg-Id` to drop a repeat of
    /// it. Default 2 minutes (the server's default).
    pub duplicate_window: Duration,
}

impl StreamConfig {
    /// A stream `name` over `subjects`, with the defaults above.
    pub fn new(name: impl Into<String>, subjects: &[&str]) -> Self {
        StreamConfig {
            name: name.into(),
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
        }
    }
}

/// A JetStream context on a [`crate::Connection`].
#[derive(Clone, Debug)]
pub struct JetStream {
    context: jetstream::Context,
}

impl JetStream {
    pub(crate) fn new(context: jetstream::Context) -> Self {
        JetStream { context }
    }

    /// Creates the stream `name` over `subjects`, or gets it if it exists.
    pub async fn ensure_stream(&self, name: &str, subjects: &[&str]) -> Result<()> {
        self.ensure_stream_with(StreamConfig::new(name, subjects)).await
    }

    /// Creates the stream `config.name` with `config` (replicas, duplicate
    /// window), or gets it if it exists (an existing stream keeps its own
    /// configuration).
    pub async fn ensure_stream_with(&self, config: StreamConfig) -> Result<()> {
        let name = config.name.clone();
        let config = stream::Config {
            name: config.name,
            subjects: config.subjects,
            num_replicas: config.replicas,
            duplicate_window: config.duplicate_window,
            ..Default::default()
        };
        self.context
            .get_or_create_stream(config)
            .await
            .map(|_| ())
            .map_err(|e| js_error(format!("creating stream {name}"), e))
    }

    /// Publishes and waits for the stream's acknowledgement. With `msg_id`
    /// (sent as `Nats-Msg-Id`) the server drops a repeat of the same id, so
    /// a publish retried after a lost ack is stored once.
    pub async fn publish(
        &self,
        subject: &str,
        payload: Bytes,
        msg_id: Option<&str>,
    ) -> Result<Ack> {
        let mut headers = HeaderMap::new();
        if let Some(id) = msg_id {
            headers.insert("Nats-Msg-Id", id);
        }
        let ack = self
            .context
            .publish_with_headers(subject.to_string(), headers, payload)
            .await
            .map_err(|e| js_error(format!("publishing to {subject}"), e))?
            .await
            .map_err(|e| js_error(format!("waiting for the ack of {subject}"), e))?;
        Ok(Ack { stream: ack.stream, sequence: ack.sequence, duplicate: ack.duplicate })
    }

    /// Opens the object store `bucket`, creating it with the defaults of
    /// [`ObjectStoreConfig::new`] if it does not exist.
    pub async fn object_store(&self, bucket: &str) -> Result<ObjectStore> {
        ObjectStore::open(&self.context, ObjectStoreConfig::new(bucket)).await
    }

    /// Opens the object store `config.bucket`, creating it with `config`
    /// if it does not exist.
    pub async fn object_store_with(&self, config: ObjectStoreConfig) -> Result<ObjectStore> {
        ObjectStore::open(&self.context, config).await
    }

    /// A durable pull consumer `durable` on `stream` (created if missing),
    /// with explicit acks.
    pub async fn pull_consumer(&self, stream: &str, durable: &str) -> Result<Consumer> {
        let stream = self
            .context
            .get_stream(stream)
            .await
            .map_err(|e| js_error(format!("getting stream {stream}"), e))?;
        let config = pull::Config {
            durable_name: Some(durable.into()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        };
        let consumer = stream
            .get_or_create_consumer(durable, config)
            .await
            .map_err(|e| js_error(format!("creating consumer {durable}"), e))?;
        Ok(Consumer { consumer })
    }
}

/// A durable pull consumer. Cheap to clone; clones pull from the same
/// consumer on the server.
#[derive(Clone, Debug)]
pub struct Consumer {
    consumer: PullConsumer,
}

impl Consumer {
    /// Fetches up to `max` messages, waiting at most `expires` for them.
    pub async fn fetch(&self, max: usize, expires: Duration) -> Result<Vec<StreamMessage>> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(max)
            .expires(expires)
            .messages()
            .await
            .map_err(|e| js_error("fetching", e))?;
        let mut out = Vec::new();
        while let Some(message) = batch.next().await {
            let message =
                message.map_err(|e| Error::new(ErrorKind::JetStream, format!("fetching: {e}")))?;
            out.push(StreamMessage { message });
        }
        Ok(out)
    }

    /// Messages as they arrive, for as long as the returned stream is
    /// polled: pull requests for up to `batch` messages each are kept open
    /// (the next one is sent when half of the last is used), with idle
    /// heartbeats, so at most about `batch` messages are delivered to this
    /// client ahead of the caller. A message delivered but not yet acked
    /// when the stream is dropped is redelivered once the consumer's ack
    /// wait (30 s by default) passes.
    ///
    /// Errors of the pull itself (a missed heartbeat, the consumer deleted)
    /// come as items of kind [`ErrorKind::JetStream`]; the stream ends after
    /// one it cannot recover from.
    pub async fn messages(&self, batch: usize) -> Result<Messages> {
        let stream = self
            .consumer
            .stream()
            .max_messages_per_batch(batch.max(1))
            .heartbeat(Duration::from_secs(15))
            .messages()
            .await
            .map_err(|e| js_error("starting to pull messages", e))?;
        Ok(Messages { stream })
    }
}

/// Messages from a pull consumer as they arrive: a
/// [`Stream`](futures_util::Stream) of [`StreamMessage`]s; see
/// [`Consumer::messages`]. Cancel safe: a `next()` dropped before it
/// completes loses no message.
pub struct Messages {
    stream: pull::Stream,
}

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages").finish_non_exhaustive()
    }
}

impl futures_util::Stream for Messages {
    type Item = Result<StreamMessage>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.stream.poll_next_unpin(cx).map(|item| {
            item.map(|message| {
                message
                    .map(|message| StreamMessage { message })
                    .map_err(|e| js_error("pulling messages", e))
            })
        })
    }
}

/// A message from a stream, to be acked once processed or naked to be
/// redelivered.
#[derive(Debug)]
pub struct StreamMessage {
    message: jetstream::Message,
}

impl StreamMessage {
    /// The message body.
    pub fn payload(&self) -> &Bytes {
        &self.message.payload
    }

    /// The subject it was published to.
    pub fn subject(&self) -> &str {
        self.message.subject.as_str()
    }

    /// How many times it has been delivered (1 the first time).
    pub fn delivered(&self) -> i64 {
        self.message.info().map_or(1, |i| i.delivered)
    }

    /// Acknowledges it: processed, do not redeliver.
    pub async fn ack(&self) -> Result<()> {
        self.message.ack().await.map_err(|e| Error::new(ErrorKind::JetStream, format!("ack: {e}")))
    }

    /// Negative acknowledgement: redeliver after `delay`.
    pub async fn nak(&self, delay: Duration) -> Result<()> {
        self.message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(|e| Error::new(ErrorKind::JetStream, format!("nak: {e}")))
    }
}
