//! The bridge: a NATS connection with the claim-check handlers, speaking
//! envelopes.

use std::borrow::Borrow;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "http")]
use crate::claimcheck::http::{HttpDownloader, PlikUploader};
#[cfg(feature = "objectstore")]
use crate::claimcheck::objectstore::{ObjectStoreHandler, ObjectStoreOptions};
use crate::claimcheck::{DownloadHandler, LinkRouter, UploadHandler, download_fn};
use crate::envelope::{Envelope, IdSource, Payload, PayloadRecord, SendOptions};
use crate::limits::ReceiveLimits;
use crate::pack::Outgoing;
use crate::pack::{fetch_links, has_links};
use crate::sent::Sent;
use crate::subscription::{EnvelopeConsumer, Received, Subscription};
use crate::system::{SystemClock, SystemIds};
use crate::transport::{Ack, ConnectOptions, Connection, HeaderMap, Message};
use crate::{Error, Result};

/// How many times [`Bridge::request`] sends a request again after "no
/// responders", and the first wait (doubling): 10 + 20 + 40 + 80 ms, so a
/// subject nobody serves is reported 150 ms after the first answer.
const NO_RESPONDERS_RESENDS: u32 = 4;
const NO_RESPONDERS_DELAY: Duration = Duration::from_millis(10);

#[cfg(feature = "objectstore")]
use crate::claimcheck::objectstore::OBJECT_STORE_SCHEME;
/// The scheme of JetStream object store links (`natsbridge-claimcheck-objectstore`'s),
/// routed apart from the others without the `objectstore` feature too, so
/// that such a link is refused with a reason rather than by the HTTP downloader.
#[cfg(not(feature = "objectstore"))]
const OBJECT_STORE_SCHEME: &str = "nats-os";

/// A download handler that refuses every link with `reason`
/// (`ClaimCheck(UrlRefused)`), before any request is made.
fn refuse_links(reason: &'static str) -> Arc<dyn DownloadHandler> {
    Arc::new(download_fn(move |_, _| async move {
        Err(crate::claimcheck::Error::new(crate::claimcheck::ErrorKind::UrlRefused, reason))
    }))
}

/// Connects to `url` with default options: no file server (every payload
/// must fit direct), downloads allowed from any `http`/`https` origin (the
/// seeds' receivers; see [`BridgeBuilder::fileserver`] and
/// `docs/security.md` for when to restrict them), the default
/// [`ReceiveLimits`].
pub async fn connect(url: &str) -> Result<Bridge> {
    Bridge::builder(url).connect().await
}

/// How to build a [`Bridge`]. A builder by value.
#[must_use]
pub struct BridgeBuilder {
    url: String,
    connect: ConnectOptions,
    #[cfg(feature = "http")]
    fileserver: Option<String>,
    uploader: Option<Arc<dyn UploadHandler>>,
    downloader: Option<Arc<dyn DownloadHandler>>,
    #[cfg(feature = "objectstore")]
    object_store: Option<ObjectStoreOptions>,
    limits: ReceiveLimits,
}

impl std::fmt::Debug for BridgeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut f = f.debug_struct("BridgeBuilder");
        f.field("url", &self.url).field("connect", &self.connect);
        #[cfg(feature = "http")]
        f.field("fileserver", &self.fileserver);
        f.field("uploader", &self.uploader.is_some())
            .field("downloader", &self.downloader.is_some());
        #[cfg(feature = "objectstore")]
        f.field("object_store", &self.object_store);
        f.field("limits", &self.limits).finish()
    }
}

impl BridgeBuilder {
    /// Replaces the NATS connection options (servers, auth, TLS,
    /// reconnect); the URL given to [`Bridge::builder`] is still written as
    /// `broker_url` in envelopes.
    pub fn connect_options(mut self, options: ConnectOptions) -> Self {
        self.connect = options;
        self
    }

    /// Uses a Plik-compatible file server for link payloads (the seeds'
    /// `fileserver_url` with `plik_oneshot_upload`). When no download
    /// handler is set, links are then downloaded **only from this file
    /// server's origin** (any other is refused with
    /// `ClaimCheck(UrlRefused)` before a request is made), with the user
    /// info of `url`, if any, as this receiver's credentials for it. The
    /// user info is never written into a link.
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn fileserver(mut self, url: impl Into<String>) -> Self {
        self.fileserver = Some(url.into());
        self
    }

    /// Uses this upload handler for link payloads (S3, HTTP PUT, your own).
    pub fn upload_handler(mut self, handler: Arc<dyn UploadHandler>) -> Self {
        self.uploader = Some(handler);
        self
    }

    /// Uses this download handler for received link payloads (retry
    /// policy, origin allowlist, size cap). It replaces the default one
    /// (any origin, or only the [`fileserver`](Self::fileserver)'s).
    pub fn download_handler(mut self, handler: Arc<dyn DownloadHandler>) -> Self {
        self.downloader = Some(handler);
        self
    }

    /// Sends link payloads through the JetStream object store `bucket`
    /// (created if missing) instead of a file server, as
    /// `nats-os://<bucket>/<object-name>` links, and reads such links from
    /// it. **Rust peers only**: the other peers cannot read these links, so
    /// use it only where every receiver is a natsbridge Rust peer with the
    /// same bucket configured. The defaults of [`ObjectStoreOptions`] apply;
    /// see [`BridgeBuilder::object_store_options`].
    ///
    /// ```no_run
    /// # async fn run() -> natsbridge::Result<()> {
    /// let bridge = natsbridge::Bridge::builder("nats://127.0.0.1:4222")
    ///     .object_store("payloads")
    ///     .connect()
    ///     .await?;
    /// # let _ = bridge; Ok(()) }
    /// ```
    #[cfg(feature = "objectstore")]
    #[cfg_attr(docsrs, doc(cfg(feature = "objectstore")))]
    pub fn object_store(self, bucket: impl Into<String>) -> Self {
        self.object_store_options(ObjectStoreOptions::new().with_bucket(bucket))
    }

    /// Uses a JetStream object store as [`ObjectStoreOptions`] says: for
    /// sending and receiving, or (`send: false`) only to read the
    /// `nats-os://` links Rust peers send while this bridge uploads to its
    /// file server. Sending through it cannot be combined with
    /// [`fileserver`](Self::fileserver) or
    /// [`upload_handler`](Self::upload_handler): [`connect`](Self::connect)
    /// refuses that.
    #[cfg(feature = "objectstore")]
    #[cfg_attr(docsrs, doc(cfg(feature = "objectstore")))]
    pub fn object_store_options(mut self, options: ObjectStoreOptions) -> Self {
        self.object_store = Some(options);
        self
    }

    /// Bounds what each received envelope may cost (memory for its links,
    /// deadlines). Default [`ReceiveLimits::default`].
    pub fn receive_limits(mut self, limits: ReceiveLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether a file server is set (never, without the `http` feature).
    #[cfg(feature = "objectstore")]
    fn has_fileserver(&self) -> bool {
        #[cfg(feature = "http")]
        return self.fileserver.is_some();
        #[cfg(not(feature = "http"))]
        false
    }

    /// Connects.
    pub async fn connect(self) -> Result<Bridge> {
        #[cfg(feature = "objectstore")]
        if let Some(options) = self.object_store.as_ref().filter(|o| o.send)
            && (self.uploader.is_some() || self.has_fileserver())
        {
            return Err(Error::new(
                crate::ErrorKind::Config,
                format!(
                    "link payloads can go to the object store bucket {} or to a file server, \
                     not both (use ObjectStoreOptions::with_send(false) to only read \
                     nats-os links)",
                    options.bucket
                ),
                None,
            ));
        }
        #[cfg(feature = "http")]
        let (uploader, downloader) = {
            let uploader = match (self.uploader, &self.fileserver) {
                (Some(u), _) => Some(u),
                (None, Some(url)) => {
                    Some(Arc::new(PlikUploader::new(url.as_str())?) as Arc<dyn UploadHandler>)
                }
                (None, None) => None,
            };
            let downloader = match (self.downloader, &self.fileserver) {
                (Some(d), _) => d,
                (None, Some(url)) => Arc::new(
                    HttpDownloader::builder()
                        .allow_origin(url.as_str())
                        .deny_unlisted(true)
                        .build()?,
                ) as Arc<dyn DownloadHandler>,
                (None, None) => Arc::new(HttpDownloader::new()?) as Arc<dyn DownloadHandler>,
            };
            (uploader, downloader)
        };
        // Without the HTTP stores, links go only where the handlers set
        // here take them; any other link is refused, saying why.
        #[cfg(not(feature = "http"))]
        let (uploader, downloader) = (
            self.uploader,
            self.downloader.unwrap_or_else(|| {
                refuse_links(
                    "an http(s) link arrived, but natsbridge was built without its `http` \
                     feature and no download handler is set (BridgeBuilder::download_handler)",
                )
            }),
        );
        let conn = self.connect.connect().await?;
        #[cfg(feature = "objectstore")]
        let (uploader, object_links) = {
            let mut uploader = uploader;
            let mut object_store = None;
            if let Some(options) = &self.object_store {
                let handler = Arc::new(ObjectStoreHandler::open(&conn.jetstream(), options).await?);
                if options.send {
                    uploader = Some(handler.clone() as Arc<dyn UploadHandler>);
                }
                object_store = Some(handler);
            }
            // `nats-os://` links to the object store; without one, a clear
            // refusal rather than the HTTP downloader's "not http(s)".
            let object_links: Arc<dyn DownloadHandler> = match object_store {
                Some(store) => store,
                None => refuse_links(
                    "a nats-os:// link (JetStream object store, Rust peers only) arrived, but \
                     this bridge has no object store configured (BridgeBuilder::object_store)",
                ),
            };
            (uploader, object_links)
        };
        #[cfg(not(feature = "objectstore"))]
        let object_links = refuse_links(
            "a nats-os:// link (JetStream object store, Rust peers only) arrived, but \
             natsbridge was built without its `objectstore` feature",
        );
        let downloader =
            Arc::new(LinkRouter::new(downloader).route(OBJECT_STORE_SCHEME, object_links));
        // The URL goes into every envelope's `broker_url`: never with the
        // credentials it may carry.
        let broker_url = crate::transport::redact_url(&self.url);
        Ok(Bridge { conn, uploader, downloader, broker_url, limits: self.limits })
    }
}

/// A NATS connection speaking natsbridge envelopes. Cheap to clone.
#[derive(Clone)]
pub struct Bridge {
    pub(crate) conn: Connection,
    pub(crate) uploader: Option<Arc<dyn UploadHandler>>,
    pub(crate) downloader: Arc<dyn DownloadHandler>,
    broker_url: String,
    pub(crate) limits: ReceiveLimits,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("broker_url", &self.broker_url)
            .field("uploader", &self.uploader.is_some())
            .finish()
    }
}

impl Bridge {
    /// A builder for a bridge to `url`.
    pub fn builder(url: &str) -> BridgeBuilder {
        BridgeBuilder {
            url: url.into(),
            connect: ConnectOptions::new(url),
            #[cfg(feature = "http")]
            fileserver: None,
            uploader: None,
            downloader: None,
            #[cfg(feature = "objectstore")]
            object_store: None,
            limits: ReceiveLimits::default(),
        }
    }

    /// The download handlers links are fetched with (by scheme: the HTTP
    /// downloader, the object store): for a receiver that downloads a link
    /// to a file or to its digest ([`link_request`](crate::link_request)).
    pub fn downloader(&self) -> &Arc<dyn DownloadHandler> {
        &self.downloader
    }

    /// What each received envelope may cost ([`BridgeBuilder::receive_limits`]).
    pub fn receive_limits(&self) -> &ReceiveLimits {
        &self.limits
    }

    /// The NATS connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Flushes the connection: returns once everything this bridge (and
    /// every clone of it) published before the call, envelopes and replies
    /// alike, has been written to the server's socket. Publishing only
    /// queues a message in the client's buffer: a program that exits, or
    /// drops the last clone of its bridge, right after publishing may lose
    /// what is still queued. Flush before that, and wherever "sent" must
    /// mean "handed to the server".
    ///
    /// It is no proof that the server has processed what was written, nor
    /// that any subscriber has it: NATS core sends no acknowledgement. In
    /// particular, a subscription just made on this connection may not yet
    /// be registered on the server when a message published next on another
    /// connection arrives, and a flush does not change that. For a real
    /// round trip, [`Connection::sync`] (on [`Bridge::connection`]) returns
    /// once the server has processed everything this connection sent
    /// before, subscriptions included; for delivery that is acknowledged,
    /// use JetStream ([`Bridge::jetstream_send`] waits for the stream's
    /// ack).
    ///
    /// ```no_run
    /// # async fn run(bridge: natsbridge::Bridge) -> natsbridge::Result<()> {
    /// use natsbridge::{Payload, SendOptions};
    ///
    /// let mut subscription = bridge.subscribe("chat.room1").await?;
    /// // The server has registered the subscription: other peers' next
    /// // messages reach it.
    /// bridge.connection().sync().await?;
    /// bridge.smartsend("chat.room1", vec![Payload::text("t", "bye")], SendOptions::default()).await?;
    /// // Written to the server before the program goes on (or exits).
    /// bridge.flush().await?;
    /// # let _ = subscription.next().await; Ok(()) }
    /// ```
    pub async fn flush(&self) -> Result<()> {
        Ok(self.conn.flush().await?)
    }

    pub(crate) fn options(&self, mut options: SendOptions) -> SendOptions {
        self.fill_broker_url(&mut options);
        options
    }

    /// Writes this bridge's URL as `broker_url` when the options left the
    /// default, in place (`SendOptions` is large: moving it in and out
    /// costs a send more than the check).
    pub(crate) fn fill_broker_url(&self, options: &mut SendOptions) {
        if leaves_broker_url(options) {
            // A fresh string, not `clone_from`: the default's buffer is
            // usually too short for the URL, and growing it costs more.
            options.broker_url = self.broker_url.clone();
        }
    }

    /// The `broker_url` an envelope sent with `options` names, as
    /// [`Bridge::fill_broker_url`] would set it, without copying this
    /// bridge's URL into them.
    fn broker_url<'a>(&'a self, options: &'a SendOptions) -> &'a str {
        if leaves_broker_url(options) { &self.broker_url } else { &options.broker_url }
    }

    /// Builds the envelope (uploading what must go by link, so it fits the
    /// server's current `max_payload`) and publishes it to `subject` unless
    /// `options.is_publish` is `false`. Returns what was sent: its JSON,
    /// exactly as published, with the envelope read back on demand (see
    /// [`Sent`]; [`Sent::into_parts`] is the seeds' `(env, env_json_str)`).
    /// [`Bridge::smartpack`] is the same call under the newer seed's name.
    ///
    /// The payloads and options can be handed in or lent (`Vec<Payload>`,
    /// `&[Payload]`, an array; `SendOptions` or `&SendOptions`): a sender of
    /// many messages with the same options lends them and pays nothing per
    /// message to build or drop them. The common case (nothing can go by
    /// link, the envelope fits) is written in one pass
    /// ([`Envelope::write_packed_as`]: ids, timestamp and payloads straight
    /// into the output buffer); no owned envelope is built unless a
    /// payload must be uploaded.
    ///
    /// Publishing queues the message in the client's buffer; see
    /// [`Bridge::flush`] for when it has been written to the server.
    pub async fn smartsend(
        &self,
        subject: &str,
        payloads: impl AsRef<[Payload]>,
        options: impl Borrow<SendOptions>,
    ) -> Result<Sent> {
        let (payloads, options) = (payloads.as_ref(), options.borrow());
        let broker_url = self.broker_url(options);
        let write = |out: &mut Vec<u8>| {
            let (ids, clock) = (&mut SystemIds, &SystemClock);
            Ok(Envelope::write_packed_as(out, subject, payloads, options, broker_url, ids, clock)?)
        };
        let json = crate::prepared::build(self, subject, options, payloads, write).await?;
        if options.is_publish {
            // A reference-counted clone: the JSON is not copied.
            self.conn.publish(subject, json.clone()).await?;
        }
        Ok(Sent::new(json))
    }

    /// [`Bridge::smartsend`] for payloads some of which are files (see
    /// [`crate::pack_files`]): a file at or over the size threshold is
    /// uploaded as it is read, so a file of any size is sent without being
    /// held in memory. The payloads are taken (a reader is read once); the
    /// options are lent or given, as to the other sends.
    pub async fn smartsend_files(
        &self,
        subject: &str,
        payloads: Vec<Outgoing>,
        options: impl Borrow<SendOptions>,
    ) -> Result<Sent> {
        let options = options.borrow().clone();
        let is_publish = options.is_publish;
        let (options, uploader) = (self.options(options), self.uploader.as_deref());
        let max_payload = self.conn.max_payload();
        let (_, json) =
            crate::pack::pack_files(subject, payloads, options, uploader, max_payload).await?;
        if is_publish {
            self.conn.publish(subject, json.clone()).await?;
        }
        Ok(Sent::new(json))
    }

    /// The newer seed's name for [`Bridge::smartsend`], meaning what it
    /// means there: builds the envelope (uploading what must go by link)
    /// and **publishes it** to `subject`, unless `options.is_publish` is
    /// `false` (the seed's `is_publish=true` default is
    /// [`SendOptions::default`]'s too). Returns what was sent ([`Sent`]:
    /// the JSON, and the envelope on demand).
    ///
    /// To build an envelope without a connection, use the free
    /// [`natsbridge::pack`](fn@crate::pack), which never publishes.
    pub async fn smartpack(
        &self,
        subject: &str,
        payloads: impl AsRef<[Payload]>,
        options: impl Borrow<SendOptions>,
    ) -> Result<Sent> {
        self.smartsend(subject, payloads, options).await
    }

    /// Reads a received message: parses the envelope, decodes direct
    /// payloads and downloads link payloads (checking size and `sha256`):
    /// `nats-os://` links from the configured object store (an error of
    /// kind `ClaimCheck(UrlRefused)` naming the scheme when there is none),
    /// any other link with the download handler.
    pub async fn smartreceive(&self, message: &Message) -> Result<Envelope> {
        let envelope = Envelope::from_json(&message.payload)?;
        if !has_links(&envelope) {
            return Ok(envelope);
        }
        // Boxed: the download path's state stays out of every receive's
        // future, which the common all-direct envelope never awaits.
        Box::pin(fetch_links(envelope, self.downloader.as_ref(), &self.limits)).await
    }

    /// One payload with its bytes here, downloading it through this
    /// bridge's download handlers if it is a link (see
    /// [`fetch_payload`](crate::fetch_payload)): for a receiver that reads
    /// envelopes lazily and needs one link of several.
    pub async fn fetch_payload(&self, record: &PayloadRecord) -> Result<PayloadRecord> {
        crate::pack::fetch_payload_with(record, self.downloader.as_ref(), &self.limits).await
    }

    /// The newer seed's name for [`Bridge::smartreceive`].
    pub async fn smartunpack(&self, message: &Message) -> Result<Envelope> {
        self.smartreceive(message).await
    }

    /// Subscribes to `subject`, yielding decoded envelopes (see
    /// [`Subscription`], a [`Stream`](futures_util::Stream)).
    pub async fn subscribe(&self, subject: &str) -> Result<Subscription> {
        Ok(Subscription::new(self.conn.subscribe(subject).await?, self.clone()))
    }

    /// Subscribes as a member of queue group `group`.
    pub async fn queue_subscribe(&self, subject: &str, group: &str) -> Result<Subscription> {
        let subscriber = self.conn.queue_subscribe(subject, group).await?;
        Ok(Subscription::new(subscriber, self.clone()))
    }

    /// Sends an envelope as a request and waits for the answering envelope,
    /// in both conventions at once.
    ///
    /// The subject the answer is awaited on is named twice: as the NATS
    /// reply subject (for responders that answer NATS requests, like
    /// [`Bridge::reply`]) and as the envelope's `reply_to` (for responders
    /// written from the seeds, which read only `reply_to`). It is a fresh
    /// inbox, or `options.reply_to` when the caller set one; either way it
    /// is subscribed before the request is published.
    ///
    /// The first envelope arriving there is the answer, except one whose
    /// `reply_to_msg_id` is set and names another request, which is skipped
    /// (and logged). `correlation_id` is not checked: the seeds' responders
    /// send a fresh one. A message there that is not an envelope at all (a
    /// JetStream stream that also captures `subject` sends its `PubAck` to
    /// the reply subject) is skipped and logged, not taken for the answer.
    /// "No responders" is answered by the server when nobody subscribes to
    /// `subject`, which happens for a moment while a responder moves to
    /// another server (a rolling restart); nobody got the request, so it is
    /// sent again up to 4 times over 150 ms before that is the answer.
    /// Errors: `Nats(NoResponders)` when nobody listens on `subject`,
    /// `Nats(TimedOut)` when no answer came within `timeout` (naming the
    /// messages skipped, if any), and the answer's link download error if
    /// its links cannot be fetched.
    ///
    /// The payloads and options can be handed in or lent, as to
    /// [`Bridge::smartsend`].
    pub async fn request(
        &self,
        subject: &str,
        payloads: impl AsRef<[Payload]>,
        options: impl Borrow<SendOptions>,
        timeout: Duration,
    ) -> Result<Envelope> {
        let payloads = payloads.as_ref();
        // Its own copy: the reply subject and msg id are filled in.
        let mut options = self.options(options.borrow().clone());
        // Subscribed before anything is sent: the caller's subject on its
        // own, or a subject on the connection's shared reply subscription.
        let chosen = (!options.reply_to.is_empty()).then_some(options.reply_to.as_str());
        let mut replies = self.conn.replies(chosen).await?;
        options.reply_to = replies.subject().to_string();
        let msg_id = options.msg_id.get_or_insert_with(|| SystemIds.next_id()).clone();
        // Only the bytes of the request are needed: written straight from
        // the parts, with no `Envelope` built (links and oversize take
        // smartsend's path).
        let write = |out: &mut Vec<u8>| {
            let (ids, clock) = (&mut SystemIds, &SystemClock);
            Ok(Envelope::write_packed(out, subject, payloads, &options, ids, clock)?)
        };
        let json = crate::prepared::build(self, subject, &options, payloads, write).await?;
        let sent_at = tokio::time::Instant::now();
        self.conn.send_request(&mut replies, subject, json.clone(), timeout).await?;
        let mut resent = 0u32;
        // Messages on the reply subject that are not envelopes at all (a
        // JetStream stream that also captures `subject` acks the request
        // there first) are skipped; the last one's error is kept for a
        // timeout's message.
        let mut skipped: Option<(usize, crate::envelope::Error)> = None;
        loop {
            let message = match replies.next().await {
                Ok(message) => message,
                // A responder moving between servers (a rolling restart)
                // has no subscription for a moment, and a request then is
                // answered "no responders": nobody got it, so it is sent
                // again, briefly, before that is the answer.
                Err(e)
                    if e.kind() == &crate::transport::ErrorKind::NoResponders
                        && resent < NO_RESPONDERS_RESENDS
                        && sent_at.elapsed() < timeout =>
                {
                    tokio::time::sleep(NO_RESPONDERS_DELAY * 2u32.pow(resent)).await;
                    resent += 1;
                    let left = timeout.saturating_sub(sent_at.elapsed());
                    tracing::debug!(subject, resent, "no responders: sending the request again");
                    self.conn.send_request(&mut replies, subject, json.clone(), left).await?;
                    continue;
                }
                Err(e) => {
                    let error = Error::from(e);
                    return Err(match skipped {
                        Some((n, last)) => error.context(format!(
                            "no answer to the request on {subject}; {n} message(s) on its reply \
                             subject were not envelopes and were skipped (the last: {last})"
                        )),
                        None => error,
                    });
                }
            };
            let answer = match Envelope::from_json(&message.payload) {
                Ok(answer) => answer,
                Err(e) => {
                    tracing::warn!(
                        reply_subject = %options.reply_to,
                        request = %msg_id,
                        error = %e,
                        "skipping a message on the reply subject that is not an envelope"
                    );
                    let n = skipped.as_ref().map_or(0, |(n, _)| *n);
                    skipped = Some((n + 1, e));
                    continue;
                }
            };
            if !answer.reply_to_msg_id.is_empty() && answer.reply_to_msg_id != msg_id {
                tracing::warn!(
                    reply_subject = %options.reply_to,
                    answers = %answer.reply_to_msg_id,
                    request = %msg_id,
                    "skipping an answer to another request"
                );
                continue;
            }
            if !has_links(&answer) {
                return Ok(answer);
            }
            return Box::pin(fetch_links(answer, self.downloader.as_ref(), &self.limits)).await;
        }
    }

    /// Publishes the envelope to a JetStream stream and waits for the
    /// stream's ack. The envelope's `msg_id` is sent as `Nats-Msg-Id`: a
    /// publish whose ack timed out, whose connection dropped or that found
    /// its stream electing a leader is sent again with the same id, with
    /// backoff ([`PublishRetry`](crate::transport::PublishRetry)'s
    /// defaults), so the stream keeps it once; the [`Ack`] is the
    /// stream's own (`duplicate` when an earlier try had been stored).
    pub async fn jetstream_send(
        &self,
        subject: &str,
        payloads: impl AsRef<[Payload]>,
        options: impl Borrow<SendOptions>,
    ) -> Result<(Sent, Ack)> {
        let (sent, ack) = self.jetstream_send_async(subject, payloads, options).await?;
        Ok((sent, ack.await?))
    }

    /// Publishes the envelope to a JetStream stream and returns at once
    /// with the stream's ack still to come: a
    /// [`PendingAck`](crate::transport::PendingAck) to await (retried as in
    /// [`Bridge::jetstream_send`]). Keep a window of them in flight to
    /// send at the server's pace instead of one round trip per message.
    /// The payloads and options can be lent, as to [`Bridge::smartsend`]
    /// (`options.is_publish` is not read: this always publishes, to
    /// JetStream).
    ///
    /// ```no_run
    /// # async fn run(bridge: natsbridge::Bridge) -> natsbridge::Result<()> {
    /// use std::collections::VecDeque;
    /// use natsbridge::{Payload, SendOptions};
    ///
    /// let options = SendOptions::default();
    /// let mut window = VecDeque::new();
    /// for n in 0..10_000 {
    ///     let payloads = [Payload::text("n", n.to_string())];
    ///     let (_, ack) = bridge.jetstream_send_async("jobs.new", &payloads, &options).await?;
    ///     window.push_back(ack);
    ///     if window.len() == 256 {
    ///         window.pop_front().unwrap().await?;
    ///     }
    /// }
    /// for ack in window {
    ///     ack.await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn jetstream_send_async(
        &self,
        subject: &str,
        payloads: impl AsRef<[Payload]>,
        options: impl Borrow<SendOptions>,
    ) -> Result<(Sent, crate::transport::PendingAck)> {
        let (payloads, options) = (payloads.as_ref(), options.borrow());
        // smartsend's build, without its core publish.
        let broker_url = self.broker_url(options);
        let write = |out: &mut Vec<u8>| {
            let (ids, clock) = (&mut SystemIds, &SystemClock);
            Ok(Envelope::write_packed_as(out, subject, payloads, options, broker_url, ids, clock)?)
        };
        let json = crate::prepared::build(self, subject, options, payloads, write).await?;
        let sent = Sent::new(json);
        // The msg_id the envelope carries is its Nats-Msg-Id.
        let view;
        let msg_id = match &options.msg_id {
            Some(id) => id.as_str(),
            None => {
                view = sent.view()?;
                view.msg_id()
            }
        };
        let ack =
            self.conn.jetstream().publish_async(subject, sent.json().clone(), Some(msg_id)).await?;
        Ok((sent, ack))
    }

    /// A durable pull consumer `durable` on `stream` (created if missing,
    /// with explicit acks) that yields envelopes, in batches or as a
    /// [`Stream`](futures_util::Stream) (see [`EnvelopeConsumer`]).
    pub async fn jetstream_consumer(
        &self,
        stream: &str,
        durable: &str,
    ) -> Result<EnvelopeConsumer> {
        let consumer = self.conn.jetstream().pull_consumer(stream, durable).await?;
        Ok(EnvelopeConsumer::new(consumer, self.clone()))
    }

    /// Answers `request` with `payloads`: on NATS's reply inbox when it came
    /// as a NATS request, else on its `reply_to` subject (the seeds'
    /// convention). The answer carries the request's `correlation_id` and
    /// `reply_to_msg_id` = its `msg_id`. Returns what was sent, or `None`
    /// when the request asked for no reply. The payloads and options can be
    /// handed in or lent, as to [`Bridge::smartsend`].
    pub async fn reply(
        &self,
        request: &Received,
        payloads: impl AsRef<[Payload]>,
        options: impl Borrow<SendOptions>,
    ) -> Result<Option<Sent>> {
        self.reply_with_headers(request, payloads, options, None).await
    }

    /// [`Bridge::reply`], with NATS headers on the answer when `headers`
    /// are given (a service's error answer).
    pub(crate) async fn reply_with_headers(
        &self,
        request: &Received,
        payloads: impl AsRef<[Payload]>,
        options: impl Borrow<SendOptions>,
        headers: Option<HeaderMap>,
    ) -> Result<Option<Sent>> {
        let view = request.view();
        let subject = match (request.reply(), view.reply_to()) {
            (Some(inbox), _) => inbox.to_string(),
            (None, "") => return Ok(None),
            (None, reply_to) => reply_to.to_string(),
        };
        // The fields `Envelope::reply_options` sets, taken straight from the
        // request (that helper builds a whole default `SendOptions` first).
        let options = options
            .borrow()
            .clone()
            .with_correlation_id(view.correlation_id())
            .with_reply_to_msg_id(view.msg_id())
            .with_receiver_name(view.sender_name())
            .with_receiver_id(view.sender_id());
        let Some(headers) = headers else {
            return Ok(Some(self.smartsend(&subject, payloads, options).await?));
        };
        let options = options.with_is_publish(false);
        let sent = self.smartsend(&subject, payloads, options).await?;
        self.conn.publish_with_headers(&subject, headers, sent.json().clone()).await?;
        Ok(Some(sent))
    }
}

/// Whether `options` leave `broker_url` to the bridge (they hold the
/// default).
fn leaves_broker_url(options: &SendOptions) -> bool {
    options.broker_url == crate::envelope::DEFAULT_BROKER_URL
}
