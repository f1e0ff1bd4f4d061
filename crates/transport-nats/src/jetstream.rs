//! JetStream: streams, publish with ack, durable pull consumers, and
//! object stores.

use std::future::IntoFuture;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind, stream};
use bytes::Bytes;

use futures_util::StreamExt;

use crate::jserror;
use crate::objectstore::{ObjectStore, ObjectStoreConfig};
use crate::{Error, ErrorKind, Result};

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

/// How a JetStream publish that carries a msg id is retried
/// ([`JetStream::publish_async`]). Plain data; tune the fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishRetry {
    /// Tries in all, the first included. Default 10.
    pub max_attempts: u32,
    /// No new try starts this long after the first. Default 30 s (a
    /// stream's leader election after a node died takes a few seconds).
    pub retry_for: Duration,
    /// Delay before the first retry, doubling after. Default 100 ms.
    pub base_delay: Duration,
    /// Upper bound of the delay. Default 2 s.
    pub max_delay: Duration,
    /// How long each try waits for its ack, counted from when it was sent
    /// (not from when its [`PendingAck`] is first awaited). Default 5 s.
    pub ack_timeout: Duration,
}

impl Default for PublishRetry {
    fn default() -> Self {
        PublishRetry {
            ack_timeout: Duration::from_secs(5),
            max_attempts: 10,
            retry_for: Duration::from_secs(30),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl PublishRetry {
    fn backoff(&self) -> natsbridge_common::Backoff {
        natsbridge_common::Backoff {
            base_delay: self.base_delay,
            max_delay: self.max_delay,
            jitter: true,
        }
    }
}

/// Whether a publish that failed this way may succeed if sent again: its
/// ack timed out, its connection dropped, or nobody answered although a
/// stream captures the subject (the stream is electing a leader). No
/// stream for the subject at all is final.
async fn retriable(
    context: &jetstream::Context,
    subject: &str,
    kind: jetstream::context::PublishErrorKind,
) -> bool {
    use jetstream::context::{GetStreamByNameErrorKind, PublishErrorKind};
    match kind {
        PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => true,
        PublishErrorKind::StreamNotFound => match context.stream_by_subject(subject).await {
            Ok(_) => true,
            Err(e) => e.kind() != GetStreamByNameErrorKind::NotFound,
        },
        _ => false,
    }
}

/// The stream's acknowledgement of a publish still on its way (see
/// [`JetStream::publish_async`]): a future of the [`Ack`]. Dropping it
/// does not cancel the publish, only the wait (and any retry).
#[must_use = "the publish is not known to be stored until its ack resolves"]
pub struct PendingAck {
    future: std::pin::Pin<Box<dyn std::future::Future<Output = Result<Ack>> + Send>>,
}

impl std::fmt::Debug for PendingAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAck").finish_non_exhaustive()
    }
}

impl std::future::Future for PendingAck {
    type Output = Result<Ack>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Ack>> {
        self.future.as_mut().poll(cx)
    }
}

/// A JetStream context on a [`crate::Connection`].
#[derive(Clone, Debug)]
pub struct JetStream {
    context: std::sync::Arc<jetstream::Context>,
    retry: PublishRetry,
}

impl JetStream {
    pub(crate) fn new(context: std::sync::Arc<jetstream::Context>) -> Self {
        JetStream { context, retry: PublishRetry::default() }
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
        self.context.get_or_create_stream(config).await.map(|_| ()).map_err(|e| {
            jserror::error(jserror::create_stream(&e.kind()), format!("creating stream {name}"), e)
        })
    }

    /// Publishes and waits for the stream's acknowledgement: the same as
    /// [`publish_async`](Self::publish_async) followed by awaiting its
    /// [`PendingAck`]. With `msg_id` (sent as `Nats-Msg-Id`) the server
    /// drops a repeat of the same id, so a publish retried after a lost ack
    /// is stored once, and it is retried (see [`PublishRetry`]).
    pub async fn publish(
        &self,
        subject: &str,
        payload: Bytes,
        msg_id: Option<&str>,
    ) -> Result<Ack> {
        self.publish_async(subject, payload, msg_id).await?.await
    }

    /// Publishes without waiting for the stream's acknowledgement: the
    /// returned [`PendingAck`] resolves to it. Keep many in flight to
    /// publish at the server's pace rather than one round trip per message
    /// (the connection holds at most a few thousand unanswered publishes
    /// and waits here for room beyond that).
    ///
    /// With `msg_id`, a publish whose ack does not come in time, whose
    /// connection drops, or that gets no answer while its stream elects a
    /// leader (a node of a cluster died) is sent again, same id, with
    /// backoff, per this context's [`PublishRetry`]: the stream keeps it
    /// once, and the [`Ack`] is the stream's own (`duplicate` is `true`
    /// when an earlier try had in fact been stored). Without `msg_id`
    /// nothing is retried, as a repeat would be stored twice. No stream on
    /// the subject at all is an error at once.
    pub async fn publish_async(
        &self,
        subject: &str,
        payload: Bytes,
        msg_id: Option<&str>,
    ) -> Result<PendingAck> {
        let headers = |id: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(id) = id {
                headers.insert("Nats-Msg-Id", id);
            }
            headers
        };
        let started = tokio::time::Instant::now();
        // Reference-counted, cloned for nothing if a retry needs it.
        let subject = async_nats::Subject::from(subject);
        let first = self
            .context
            .publish_with_headers(subject.clone(), headers(msg_id), payload.clone())
            .await;
        let (context, retry) = (self.context.clone(), self.retry);
        // Kept for a retry only (without an id nothing is retried).
        let msg_id = msg_id.map(str::to_owned);
        // A publish that could not even be queued is tried again inside the
        // pending ack, like one whose ack went missing.
        let first = match first {
            Ok(ack) => Some(ack),
            Err(e) if msg_id.is_some() && retriable(&context, &subject, e.kind()).await => None,
            Err(e) => {
                return Err(jserror::error(
                    jserror::publish(e.kind()),
                    format!("publishing to {subject}"),
                    e,
                ));
            }
        };
        Ok(PendingAck {
            future: Box::pin(async move {
                let mut attempt = 0u32;
                let mut pending = first;
                // Each try's ack is waited for from the moment it was sent,
                // not from the first poll: acks awaited one after another
                // (a window of them) that a leader change lost then time
                // out together, not one after the other.
                let mut deadline = started + retry.ack_timeout;
                loop {
                    let ack = match pending.take() {
                        Some(ack) => Ok(ack),
                        None => {
                            deadline = tokio::time::Instant::now() + retry.ack_timeout;
                            context
                                .publish_with_headers(
                                    subject.clone(),
                                    headers(msg_id.as_deref()),
                                    payload.clone(),
                                )
                                .await
                        }
                    };
                    let outcome = match ack {
                        Ok(ack) => tokio::time::timeout_at(deadline, ack.into_future())
                            .await
                            .unwrap_or_else(|_| {
                                Err(jetstream::context::PublishError::new(
                                    jetstream::context::PublishErrorKind::TimedOut,
                                ))
                            }),
                        Err(e) => Err(e),
                    };
                    let e = match outcome {
                        Ok(ack) => {
                            return Ok(Ack {
                                stream: ack.stream,
                                sequence: ack.sequence,
                                duplicate: ack.duplicate,
                            });
                        }
                        Err(e) => e,
                    };
                    attempt += 1;
                    let again = msg_id.is_some()
                        && attempt < retry.max_attempts
                        && started.elapsed() < retry.retry_for
                        && retriable(&context, &subject, e.kind()).await;
                    if !again {
                        return Err(jserror::error(
                            jserror::publish(e.kind()),
                            format!("waiting for the ack of {subject}"),
                            e,
                        ));
                    }
                    let delay = retry.backoff().delay_jittered(attempt - 1);
                    tracing::warn!(subject = %subject, attempt, error = %e, ?delay,
                        "JetStream publish not acknowledged; sending it again with the same msg id");
                    tokio::time::sleep(delay).await;
                }
            }),
        })
    }

    /// This context with `retry` for publishes that carry a msg id.
    #[must_use]
    pub fn with_publish_retry(mut self, retry: PublishRetry) -> Self {
        self.retry = retry;
        self
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
        let stream = self.context.get_stream(stream).await.map_err(|e| {
            jserror::error(jserror::get_stream(&e), format!("getting stream {stream}"), e)
        })?;
        let config = pull::Config {
            durable_name: Some(durable.into()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        };
        let consumer = stream.get_or_create_consumer(durable, config).await.map_err(|e| {
            jserror::error(jserror::consumer(&e.kind()), format!("creating consumer {durable}"), e)
        })?;
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
            .map_err(|e| jserror::error(jserror::batch(e.kind()), "fetching", e))?;
        let mut out = Vec::new();
        while let Some(message) = batch.next().await {
            let message =
                message.map_err(|e| jserror::error(ErrorKind::JetStream, "fetching", e))?;
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
    /// The pull heals itself: when it fails in a way that can pass (missed
    /// idle heartbeats, no responders while the consumer elects a leader
    /// on a cluster, a pull request that could not be sent while the client
    /// reconnects), it is logged at `warn` and started again with backoff
    /// (100 ms doubling to 2 s, jittered), so a consumer whose node died
    /// goes on from another one. Only errors the same pull cannot get past
    /// (the consumer deleted, push based, a request over its limits) come
    /// as items ([`ErrorKind::NotFound`] for a deleted consumer,
    /// [`ErrorKind::JetStream`] for the others), and the stream ends after
    /// one.
    pub async fn messages(&self, batch: usize) -> Result<Messages> {
        let stream = open_pull(self.consumer.clone(), batch)
            .await
            .map_err(|e| jserror::error(jserror::stream(&e), "starting to pull messages", e))?;
        Ok(Messages {
            consumer: self.consumer.clone(),
            batch,
            stream: Some(stream),
            reopening: None,
            retries: 0,
            ended: false,
        })
    }
}

/// Idle heartbeats of a pull: two missed (10 s without a word from the
/// consumer) restart the pull.
const PULL_HEARTBEAT: Duration = Duration::from_secs(5);

/// The delays between restarts of a failed pull.
const PULL_BACKOFF: natsbridge_common::Backoff = natsbridge_common::Backoff {
    base_delay: Duration::from_millis(100),
    max_delay: Duration::from_secs(2),
    jitter: true,
};

async fn open_pull(
    consumer: PullConsumer,
    batch: usize,
) -> std::result::Result<pull::Stream, async_nats::jetstream::consumer::StreamError> {
    consumer
        .stream()
        .max_messages_per_batch(batch.max(1))
        .heartbeat(PULL_HEARTBEAT)
        .messages()
        .await
}

type Reopening = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = std::result::Result<
                    pull::Stream,
                    async_nats::jetstream::consumer::StreamError,
                >,
            > + Send,
    >,
>;

/// Messages from a pull consumer as they arrive: a
/// [`Stream`](futures_util::Stream) of [`StreamMessage`]s; see
/// [`Consumer::messages`]. Cancel safe: a `next()` dropped before it
/// completes loses no message.
pub struct Messages {
    consumer: PullConsumer,
    batch: usize,
    /// The pull, while it runs.
    stream: Option<pull::Stream>,
    /// Starting it again after a failure (after a backoff delay).
    reopening: Option<Reopening>,
    /// Restarts since the last message, for the backoff.
    retries: u32,
    ended: bool,
}

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages").field("batch", &self.batch).finish_non_exhaustive()
    }
}

impl Messages {
    /// Drops the failed pull and starts a new one after the backoff delay.
    fn restart(&mut self) {
        self.stream = None;
        let delay = PULL_BACKOFF.delay_jittered(self.retries);
        self.retries = self.retries.saturating_add(1);
        let (consumer, batch) = (self.consumer.clone(), self.batch);
        self.reopening = Some(Box::pin(async move {
            tokio::time::sleep(delay).await;
            open_pull(consumer, batch).await
        }));
    }
}

impl futures_util::Stream for Messages {
    type Item = Result<StreamMessage>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use async_nats::jetstream::consumer::pull::MessagesErrorKind;
        use std::task::Poll;
        let this = &mut *self;
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            if let Some(reopening) = this.reopening.as_mut() {
                let opened = futures_util::ready!(reopening.as_mut().poll(cx));
                this.reopening = None;
                match opened {
                    Ok(stream) => this.stream = Some(stream),
                    Err(e) => {
                        tracing::warn!(error = %e, "restarting a JetStream pull failed; trying again");
                        this.restart();
                    }
                }
                continue;
            }
            let Some(stream) = this.stream.as_mut() else {
                this.restart();
                continue;
            };
            match futures_util::ready!(stream.poll_next_unpin(cx)) {
                Some(Ok(message)) => {
                    this.retries = 0;
                    return Poll::Ready(Some(Ok(StreamMessage { message })));
                }
                Some(Err(e)) => match e.kind() {
                    MessagesErrorKind::ConsumerDeleted
                    | MessagesErrorKind::PushBasedConsumer
                    | MessagesErrorKind::RequestLimitExceeded => {
                        this.ended = true;
                        let kind = jserror::messages(e.kind());
                        return Poll::Ready(Some(Err(jserror::error(kind, "pulling messages", e))));
                    }
                    _ => {
                        tracing::warn!(error = %e, "JetStream pull failed; restarting it");
                        this.restart();
                    }
                },
                // The subscription ended: the connection is closed for good.
                None => this.ended = true,
            }
        }
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

    /// Acknowledges it (processed, do not redeliver) and waits for the
    /// consumer to confirm, one round trip on the connection's shared reply
    /// subscription: a message whose ack returned `Ok` is not delivered
    /// again, even if the node the client is on dies right after. An error
    /// (the connection dropped, no answer within the request timeout) means
    /// the ack may not have been recorded and the message may come again.
    pub async fn ack(&self) -> Result<()> {
        let Some(reply) = self.message.reply.clone() else {
            return Err(Error::new(ErrorKind::JetStream, "ack: not a JetStream message"));
        };
        self.message
            .context
            .client()
            .request(reply, Bytes::from_static(b"+ACK"))
            .await
            .map(|_| ())
            .map_err(|e| {
                jserror::error(
                    jserror::core_request(e.kind()),
                    "waiting for the ack's confirmation",
                    e,
                )
            })
    }

    /// Negative acknowledgement: redeliver after `delay`.
    pub async fn nak(&self, delay: Duration) -> Result<()> {
        self.message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(|e| jserror::error(ErrorKind::Closed, "nak", e))
    }
}
