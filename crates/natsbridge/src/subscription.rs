//! Receiving: core NATS subscriptions and JetStream durable consumers,
//! both as [`Stream`]s of decoded envelopes.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::{Stream, StreamExt};

use crate::claimcheck::{BoxFuture, DownloadHandler, RetryConfig};
use crate::envelope::bytes::Bytes;
use crate::envelope::{Body, Envelope, EnvelopeBuf, EnvelopeView};
use crate::limits::ReceiveLimits;
use crate::pack::fetch_links;
use crate::transport::{Consumer, Message, Messages, StreamMessage, Subject, Subscriber};
use crate::{Bridge, Error, Result};

/// An envelope received on a subscription or from a JetStream consumer,
/// with its links fetched.
///
/// It keeps the message as it arrived and reads the envelope in place
/// ([`EnvelopeBuf`]: one validating parse, no field copied, a direct
/// payload decoded only when asked), so receiving through
/// [`Bridge::subscribe`] builds no owned strings (see `docs/BENCHMARKS.md`
/// for its instruction count beside [`Bridge::subscribe_lazy`]'s).
/// [`Received::view`] reads it; [`Received::to_envelope`] gives the owned
/// [`Envelope`] where one is wanted.
#[derive(Clone, Debug)]
pub struct Received {
    envelope: EnvelopeBuf,
    subject: Subject,
    reply: Option<Subject>,
}

impl Received {
    /// The envelope read in place: header strings borrowed from the
    /// message, payloads decoded when asked ([`PayloadView::bytes`],
    /// [`PayloadView::decode_into`], [`PayloadView::value`]; a fetched
    /// link's bytes come the same way).
    ///
    /// [`PayloadView::bytes`]: crate::PayloadView::bytes
    /// [`PayloadView::decode_into`]: crate::PayloadView::decode_into
    /// [`PayloadView::value`]: crate::PayloadView::value
    pub fn view(&self) -> &EnvelopeView<'_> {
        self.envelope.view()
    }

    /// The subject it arrived on.
    pub fn subject(&self) -> &str {
        self.subject.as_str()
    }

    /// NATS's reply inbox, when it came as a NATS request (always `None`
    /// from a JetStream consumer).
    pub fn reply(&self) -> Option<&str> {
        self.reply.as_ref().map(|r| r.as_str())
    }

    /// The envelope with its message bytes, link payloads fetched into it.
    pub fn envelope(&self) -> &EnvelopeBuf {
        &self.envelope
    }

    /// The envelope, taken out of the message.
    pub fn into_envelope(self) -> EnvelopeBuf {
        self.envelope
    }

    /// The owned envelope: every field a `String`, direct payloads
    /// decoded, fetched links' bytes kept.
    pub fn to_envelope(&self) -> Result<Envelope> {
        Ok(self.envelope.to_envelope()?)
    }

    /// The message body exactly as it arrived.
    pub fn message(&self) -> &Bytes {
        self.envelope.message()
    }
}

/// Reads a message into an [`EnvelopeBuf`], downloading its links (checked
/// against size and `sha256`) into it.
pub(crate) async fn read_message(
    message: Bytes,
    downloader: &dyn DownloadHandler,
    limits: &ReceiveLimits,
) -> Result<EnvelopeBuf> {
    let mut envelope = EnvelopeBuf::parse(message)?;
    if envelope.has_unfetched_links() {
        fetch_into(&mut envelope, downloader, limits).await?;
    }
    Ok(envelope)
}

/// Downloads the links of `envelope` into it. The downloads go through the
/// owned envelope's one path (`fetch_links`), which the link case can
/// afford: a download costs far more than the parse.
async fn fetch_into(
    envelope: &mut EnvelopeBuf,
    downloader: &dyn DownloadHandler,
    limits: &ReceiveLimits,
) -> Result<()> {
    let owned = fetch_links(envelope.to_envelope()?, downloader, limits).await?;
    for (index, record) in owned.payloads.into_iter().enumerate() {
        if let Body::Fetched { bytes, .. } = record.body {
            envelope.set_fetched(index, bytes);
        }
    }
    Ok(())
}

/// A message that could not be turned into an envelope. Its bytes are kept
/// so nothing is lost.
#[derive(Debug)]
#[non_exhaustive]
pub struct Rejected {
    /// Why.
    pub error: Error,
    /// The subject it arrived on (empty for an error of a JetStream
    /// consumer's pull itself, which concerns no one message).
    pub subject: String,
    /// The message body exactly as it arrived (empty for an error of a
    /// JetStream consumer's pull itself).
    pub payload: Bytes,
}

// What was rejected at this level; why is the error, returned by `source()`
// and not repeated here.
impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subject.is_empty() {
            f.write_str("the JetStream consumer's pull failed")
        } else {
            write!(f, "message of {} bytes on {} rejected", self.payload.len(), self.subject)
        }
    }
}

impl std::error::Error for Rejected {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The rejection's error, for `?` in a function returning
/// [`crate::Result`]: the message's bytes are dropped (keep the
/// [`Rejected`] where they matter).
impl From<Rejected> for Error {
    fn from(rejected: Rejected) -> Self {
        rejected.error
    }
}

/// A boxed future kept in a struct across polls. It sits in a `Mutex`
/// only so that the struct stays `Sync` (the futures of download handlers
/// are `Send` but not `Sync`): it is only reached through `&mut`, with
/// `get_mut`, which takes no lock.
struct Slot<T>(Mutex<T>);

impl<T> Slot<T> {
    fn new(value: T) -> Self {
        Slot(Mutex::new(value))
    }

    fn get(&mut self) -> &mut T {
        // Never locked, so never poisoned; `into_inner` only satisfies the
        // type.
        self.0.get_mut().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A subscription yielding envelopes: a [`Stream`] of
/// `Result<Received, Rejected>`, also readable with the inherent
/// [`Subscription::next`] (no trait import needed). A message that fails
/// to decode yields a [`Rejected`] and the subscription goes on; the
/// stream ends when the subscription does (unsubscribed, or the
/// connection closed for good).
///
/// Messages are decoded one at a time, in order. An envelope with only
/// direct payloads is decoded within the poll that takes it from the
/// subscription; one with links has its downloads (checked against size
/// and `sha256`) run as a future held in the subscription until they
/// finish.
///
/// # Cancel safety
///
/// [`Subscription::next`] (and `StreamExt::next`) are cancel safe: a
/// `next()` future dropped before it completes, in a `select!` or under a
/// timeout, loses no message. Messages not yet taken stay queued in the
/// subscription, and a message whose link downloads are in progress stays
/// in the subscription with its downloads: the next call continues them
/// where they were (they are not restarted) and yields that message first.
/// While nobody polls, nothing advances: a download left unpolled long
/// enough for the file server to drop the connection fails (and is
/// retried by the download handler as its retry settings allow).
///
/// Dropping the `Subscription` itself unsubscribes: what it held is lost,
/// the message being downloaded and those queued behind it, as with any
/// core NATS subscriber (at most once delivery; use
/// [`Bridge::jetstream_consumer`](crate::Bridge::jetstream_consumer) where
/// nothing may be lost).
///
/// ```no_run
/// # async fn run(bridge: natsbridge::Bridge) -> natsbridge::Result<()> {
/// use futures_util::StreamExt;
///
/// let subscription = bridge.subscribe("chat.>").await?;
/// // Any Stream adapter works; here, the first 10 messages that decode.
/// let decoded = subscription.filter_map(|item| async move { item.ok() }).take(10);
/// let mut decoded = std::pin::pin!(decoded);
/// while let Some(received) = decoded.next().await {
///     println!("{} on {}", received.view().msg_id(), received.subject());
/// }
/// # Ok(()) }
/// ```
pub struct Subscription {
    subscriber: Subscriber,
    /// The bridge subscribed on, kept alive with the subscription; its
    /// downloader fetches links.
    bridge: Bridge,
    /// The message whose links are being downloaded, if any.
    in_flight: Slot<Option<BoxFuture<'static, Result<Received, Rejected>>>>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("subscriber", &self.subscriber)
            .field("bridge", &self.bridge)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    pub(crate) fn new(subscriber: Subscriber, bridge: Bridge) -> Self {
        Subscription { subscriber, bridge, in_flight: Slot::new(None) }
    }

    /// The next message, or `None` when the subscription ends. Cancel
    /// safe (see [`Subscription`]).
    pub async fn next(&mut self) -> Option<Result<Received, Rejected>> {
        StreamExt::next(self).await
    }

    /// Drains: asks the server to send no more messages (in a queue group,
    /// the other members get them from now on). The messages the server
    /// sent before it processed that are still yielded, then the stream
    /// ends, so a caller that reads it to its end loses nothing.
    pub async fn drain(&mut self) -> Result<()> {
        self.subscriber.drain().await.map_err(|e| {
            let kind = crate::ErrorKind::Nats(crate::transport::ErrorKind::Closed);
            Error::new(kind, "draining a subscription", Some(Box::new(e)))
        })
    }
}

/// The decoded message, or, when it has links to download, the future
/// that downloads them.
#[inline(always)]
fn receive(
    (subject, reply, payload): (Subject, Option<Subject>, Bytes),
    downloader: &Arc<dyn DownloadHandler>,
    limits: ReceiveLimits,
) -> std::result::Result<Result<Received, Rejected>, BoxFuture<'static, Result<Received, Rejected>>>
{
    // `as_str().into()`: a `Subject`'s `to_string` goes through the
    // formatter, several times the cost of the copy.
    let reject = |error: Error, payload: Bytes, subject: &Subject| Rejected {
        error,
        subject: subject.as_str().into(),
        payload,
    };
    let mut envelope = match EnvelopeBuf::try_parse(payload) {
        Ok(envelope) => envelope,
        Err((payload, e)) => return Ok(Err(reject(Error::from(e), payload, &subject))),
    };
    if !envelope.has_unfetched_links() {
        return Ok(Ok(Received { envelope, subject, reply }));
    }
    let downloader = downloader.clone();
    Err(Box::pin(async move {
        match fetch_into(&mut envelope, downloader.as_ref(), &limits).await {
            Ok(()) => Ok(Received { envelope, subject, reply }),
            Err(error) => Err(reject(error, envelope.message().clone(), &subject)),
        }
    }))
}

impl Stream for Subscription {
    type Item = Result<Received, Rejected>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let in_flight = this.in_flight.get();
        if in_flight.is_none() {
            let Some(Message { subject, reply, payload, .. }) =
                ready!(this.subscriber.poll_next_unpin(cx))
            else {
                return Poll::Ready(None);
            };
            match receive((subject, reply, payload), &this.bridge.downloader, this.bridge.limits) {
                Ok(item) => return Poll::Ready(Some(item)),
                Err(downloading) => *in_flight = Some(downloading),
            }
        }
        let downloading = in_flight.as_mut().expect("set above");
        let item = ready!(downloading.as_mut().poll(cx));
        *in_flight = None;
        Poll::Ready(Some(item))
    }
}

/// A message as it arrived on a [`LazySubscription`], not yet decoded:
/// reading it costs only what the reader asks for.
///
/// [`Incoming::view`] reads the envelope in place ([`EnvelopeView`]:
/// header strings borrowed from the message, payloads left base64 until
/// one is decoded, links not fetched); [`Incoming::decode`] does what a
/// [`Subscription`] does (every payload decoded, links fetched).
///
/// ```no_run
/// # async fn run(bridge: natsbridge::Bridge) -> natsbridge::Result<()> {
/// let mut sub = bridge.subscribe_lazy("sensors.>").await?;
/// let mut text = Vec::new();
/// while let Some(incoming) = sub.next().await {
///     let view = incoming.view()?; // validated, nothing copied
///     if let Some(reading) = view.payload("reading") {
///         text.clear();
///         reading.decode_into(&mut text)?; // only this payload is decoded
///         println!("{} from {}", String::from_utf8_lossy(&text), view.sender_name());
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Incoming {
    message: Message,
}

impl Incoming {
    /// The subject it arrived on.
    pub fn subject(&self) -> &str {
        self.message.subject.as_str()
    }

    /// NATS's reply inbox, when it came as a NATS request.
    pub fn reply(&self) -> Option<&str> {
        self.message.reply.as_ref().map(|r| r.as_str())
    }

    /// The message body exactly as it arrived.
    pub fn payload(&self) -> &Bytes {
        &self.message.payload
    }

    /// The envelope read in place, validated as [`Subscription`] validates
    /// it (the same errors), without copying anything.
    pub fn view(&self) -> Result<EnvelopeView<'_>> {
        Ok(EnvelopeView::parse(&self.message.payload)?)
    }

    /// Decodes the whole envelope as a [`Subscription`] would: every direct
    /// payload decoded, every link fetched through `bridge`'s download
    /// handler and checked.
    pub async fn decode(self, bridge: &Bridge) -> Result<Received, Rejected> {
        let Message { subject, reply, payload, .. } = self.message;
        match receive((subject, reply, payload), &bridge.downloader, bridge.limits) {
            Ok(item) => item,
            Err(downloading) => downloading.await,
        }
    }

    /// The NATS message itself.
    pub fn into_message(self) -> Message {
        self.message
    }
}

/// A subscription yielding messages undecoded, as [`Incoming`]: a
/// [`Stream`], also readable with the inherent [`LazySubscription::next`].
/// Nothing is parsed until [`Incoming::view`] or [`Incoming::decode`] is
/// called, so a receiver that reads one field or one small payload pays
/// for that (see `docs/BENCHMARKS.md`, instruction counts).
///
/// # Cancel safety
///
/// [`LazySubscription::next`] is cancel safe: a dropped `next()` loses no
/// message. Dropping the subscription unsubscribes (at most once delivery,
/// as with any core NATS subscriber).
#[derive(Debug)]
pub struct LazySubscription {
    subscriber: Subscriber,
}

impl LazySubscription {
    /// The next message, or `None` when the subscription ends.
    pub async fn next(&mut self) -> Option<Incoming> {
        StreamExt::next(self).await
    }
}

impl Stream for LazySubscription {
    type Item = Incoming;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Incoming>> {
        self.get_mut().subscriber.poll_next_unpin(cx).map(|m| m.map(|message| Incoming { message }))
    }
}

impl Bridge {
    /// Subscribes to `subject` (wildcards allowed) and yields each message
    /// undecoded ([`Incoming`]), for receivers that read part of each
    /// envelope; [`Bridge::subscribe`] decodes everything.
    pub async fn subscribe_lazy(&self, subject: &str) -> Result<LazySubscription> {
        Ok(LazySubscription { subscriber: self.conn.subscribe(subject).await? })
    }
}

/// Envelopes from a JetStream durable pull consumer: a message is acked
/// once its envelope decoded (links fetched and verified), and naked
/// otherwise, to be redelivered after a delay that grows with its delivery
/// count ([`nak_delay`](Self::nak_delay)), so a file server that is down
/// for a while does not lose the message.
///
/// Read it in batches with [`fetch`](Self::fetch), or as a [`Stream`] of
/// `Result<Received, Rejected>` (also through the inherent
/// [`next`](Self::next)), which keeps pull requests of up to
/// [`pull_batch`](Self::pull_batch) messages open from its first poll on.
/// Use one or the other on one `EnvelopeConsumer`: once it is polled as a
/// stream, a `fetch` competes with the open pull requests for the same
/// messages (neither loses any; each gets some).
///
/// As a stream, an item is yielded after its message was acked (`Ok`, the
/// ack confirmed by the server: it is not delivered again) or naked
/// (`Err`). The pull heals itself: missed heartbeats, a dropped
/// connection, or the consumer electing a new leader after a node of a
/// cluster died restart it with backoff (logged at `warn`), so the
/// consumer goes on from another node. A [`Rejected`] with an empty
/// subject and payload is an error of the pull that cannot pass (the
/// consumer deleted) or a failure to start pulling; the stream ends after
/// it. A message that decoded but whose ack could not be confirmed comes
/// as a `Rejected` with the ack's error: the server redelivers it once the
/// consumer's ack wait passes.
///
/// # Cancel safety
///
/// [`EnvelopeConsumer::next`] (and `StreamExt::next`) are cancel safe: a
/// `next()` future dropped before it completes loses nothing. A message
/// being decoded (its links downloading) or being acked stays in the
/// consumer, and the next call continues with it where it was.
///
/// Dropping the `EnvelopeConsumer` loses nothing either: the messages it
/// had pulled and not yet acked (the one in progress, and up to about
/// `pull_batch` delivered ahead) are redelivered by the server once the
/// consumer's ack wait (30 s by default) passes.
///
/// ```no_run
/// # async fn run(bridge: natsbridge::Bridge) -> natsbridge::Result<()> {
/// bridge.connection().jetstream().ensure_stream("JOBS", &["jobs.>"]).await?;
/// let mut worker = bridge.jetstream_consumer("JOBS", "worker").await?;
/// while let Some(item) = worker.next().await {
///     match item {
///         Ok(job) => println!("done: {}", job.view().msg_id()),
///         Err(rejected) => eprintln!("will come again: {}", rejected.error),
///     }
/// }
/// # Ok(()) }
/// ```
pub struct EnvelopeConsumer {
    consumer: Consumer,
    bridge: Bridge,
    /// The redelivery delays for naked messages: base 100 ms, doubling,
    /// capped at 5 s, with jitter (`max_retries` is not used: JetStream
    /// redelivers up to the consumer's own `max_deliver`).
    pub nak_delay: RetryConfig,
    /// As a stream, how many messages each pull request asks for: at most
    /// about this many are delivered to this client ahead of the one being
    /// decoded. Read at the first poll. Default 64.
    pub pull_batch: usize,
    state: Slot<Pulling>,
}

/// Where an [`EnvelopeConsumer`] read as a stream is.
#[derive(Default)]
struct Pulling {
    /// Starting the pull (`None` once started or when not yet polled).
    opening: Option<BoxFuture<'static, Result<Messages>>>,
    /// The pull, once started.
    messages: Option<Messages>,
    /// The message being decoded and acked (or naked).
    in_flight: Option<BoxFuture<'static, Result<Received, Rejected>>>,
    /// Ended: the pull failed to start or ended.
    done: bool,
}

impl fmt::Debug for EnvelopeConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvelopeConsumer")
            .field("consumer", &self.consumer)
            .field("nak_delay", &self.nak_delay)
            .field("pull_batch", &self.pull_batch)
            .finish_non_exhaustive()
    }
}

impl EnvelopeConsumer {
    pub(crate) fn new(consumer: Consumer, bridge: Bridge) -> Self {
        EnvelopeConsumer {
            consumer,
            bridge,
            nak_delay: RetryConfig::default(),
            pull_batch: 64,
            state: Slot::new(Pulling::default()),
        }
    }

    /// Fetches up to `max` messages, waiting at most `expires`, decoding
    /// each and acking (or naking) it before returning. Fails on the first
    /// ack or nak that cannot be sent, the messages before it having been
    /// settled.
    pub async fn fetch(
        &self,
        max: usize,
        expires: Duration,
    ) -> Result<Vec<Result<Received, Rejected>>> {
        let mut out = Vec::new();
        for message in self.consumer.fetch(max, expires).await? {
            let (item, settled) = settle(&message, &self.bridge, self.nak_delay).await;
            settled?;
            out.push(item);
        }
        Ok(out)
    }

    /// The next message, acked or naked, or `None` when the stream ends.
    /// Cancel safe (see [`EnvelopeConsumer`]).
    pub async fn next(&mut self) -> Option<Result<Received, Rejected>> {
        StreamExt::next(self).await
    }
}

/// Decodes a stream message and acks it, or naks it for redelivery after
/// `nak_delay`'s delay for its delivery count. Returns the message's
/// outcome and whether the ack or nak was sent.
async fn settle(
    message: &StreamMessage,
    bridge: &Bridge,
    nak_delay: RetryConfig,
) -> (Result<Received, Rejected>, Result<()>) {
    let payload = message.payload().clone();
    match read_message(payload, bridge.downloader.as_ref(), &bridge.limits).await {
        Ok(envelope) => {
            let acked = message.ack().await.map_err(Error::from);
            let subject = Subject::from(message.subject());
            (Ok(Received { envelope, subject, reply: None }), acked)
        }
        Err(error) => {
            let attempt = u32::try_from(message.delivered().max(1) - 1).unwrap_or(u32::MAX);
            let naked = message.nak(nak_delay.delay(attempt)).await.map_err(Error::from);
            let subject = message.subject().into();
            (Err(Rejected { error, subject, payload: message.payload().clone() }), naked)
        }
    }
}

/// A [`Rejected`] for an error of the consumer's pull, not of a message.
fn pull_error(error: Error) -> Rejected {
    Rejected { error, subject: String::new(), payload: Bytes::new() }
}

impl Stream for EnvelopeConsumer {
    type Item = Result<Received, Rejected>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let state = this.state.get();
        loop {
            if let Some(in_flight) = state.in_flight.as_mut() {
                let item = ready!(in_flight.as_mut().poll(cx));
                state.in_flight = None;
                return Poll::Ready(Some(item));
            }
            if state.done {
                return Poll::Ready(None);
            }
            if let Some(messages) = state.messages.as_mut() {
                let message = match ready!(messages.poll_next_unpin(cx)) {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => return Poll::Ready(Some(Err(pull_error(Error::from(e))))),
                    None => {
                        state.done = true;
                        return Poll::Ready(None);
                    }
                };
                let (bridge, nak_delay) = (this.bridge.clone(), this.nak_delay);
                state.in_flight = Some(Box::pin(async move {
                    let (item, settled) = settle(&message, &bridge, nak_delay).await;
                    match (item, settled) {
                        (item, Ok(())) => item,
                        (Ok(received), Err(error)) => Err(Rejected {
                            error: error.context(format!(
                                "acknowledging a message on {} (it will be redelivered)",
                                received.subject()
                            )),
                            subject: received.subject().into(),
                            payload: message.payload().clone(),
                        }),
                        (Err(rejected), Err(error)) => {
                            tracing::warn!(
                                subject = %rejected.subject,
                                error = %error,
                                "could not nak a message that failed to decode; \
                                 it is redelivered after the ack wait"
                            );
                            Err(rejected)
                        }
                    }
                }));
                continue;
            }
            let opening = state.opening.get_or_insert_with(|| {
                let (consumer, batch) = (this.consumer.clone(), this.pull_batch);
                Box::pin(async move { Ok(consumer.messages(batch).await?) })
            });
            let opened = ready!(opening.as_mut().poll(cx));
            state.opening = None;
            match opened {
                Ok(messages) => state.messages = Some(messages),
                Err(e) => {
                    state.done = true;
                    return Poll::Ready(Some(Err(pull_error(e))));
                }
            }
        }
    }
}
