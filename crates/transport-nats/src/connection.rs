//! A connection: publishing, subscribing and requesting, its events, and
//! the task that moves subscriptions off a server in lame duck mode.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{HeaderMap, Message, PublishErrorKind, RequestErrorKind};
use bytes::Bytes;
use tokio::sync::broadcast;

use crate::ConnectOptions;
use crate::moving::Subscriber;
use crate::replies::{Replies, ReplyMux};
use crate::{Error, ErrorKind, Result};

/// Something that happened to the connection, as seen by the client.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// (Re)connected to a server.
    Connected,
    /// Lost the connection; async-nats reconnects per the policy.
    Disconnected,
    /// The server is shutting down (lame duck mode).
    LameDuckMode,
    /// The connection is closed for good.
    Closed,
    /// A subscription fell behind and the client dropped messages for it
    /// (the subscription's id is given). Messages were lost.
    SlowConsumer(u64),
    /// The server reported an error (for example a permissions violation).
    ServerError(String),
    /// The client hit an error of its own.
    ClientError(String),
}

impl From<async_nats::Event> for Event {
    fn from(e: async_nats::Event) -> Self {
        match e {
            async_nats::Event::Connected => Event::Connected,
            async_nats::Event::Disconnected => Event::Disconnected,
            async_nats::Event::LameDuckMode => Event::LameDuckMode,
            async_nats::Event::Draining | async_nats::Event::Closed => Event::Closed,
            async_nats::Event::SlowConsumer(sid) => Event::SlowConsumer(sid),
            async_nats::Event::ServerError(e) => Event::ServerError(e.to_string()),
            async_nats::Event::ClientError(e) => Event::ClientError(e.to_string()),
        }
    }
}

/// The id of a connection's first client, which publishes for good (later
/// ones, made when a server goes into lame duck mode, only carry
/// subscriptions).
pub(crate) const PUBLISHER: u64 = 0;

/// A task aborted when this is dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Connects to one server with default options.
pub async fn connect(url: impl Into<String>) -> Result<Connection> {
    ConnectOptions::new(url).connect().await
}

/// A connection to NATS. Cheap to clone; clones share the connection.
#[derive(Clone, Debug)]
pub struct Connection {
    client: async_nats::Client,
    events: broadcast::Sender<Event>,
    mux: Arc<ReplyMux>,
    /// The subject of the latest publish, as async-nats takes it (see
    /// [`Connection::subject`]).
    last_subject: Arc<Mutex<Option<async_nats::Subject>>>,
    /// The client subscriptions are made on, and every subscription, to
    /// move them when that client's server goes into lame duck mode.
    subscriptions: Arc<crate::moving::Subscriptions>,
    /// The task that leaves a server in lame duck mode, while any clone
    /// lives (none with `lame_duck_reconnect(false)`).
    _lame_duck: Option<Arc<AbortOnDrop>>,
    /// The one JetStream context, made at the first use: async-nats starts
    /// a task and allocates an ack channel for every context it creates,
    /// which one per publish made a windowed JetStream sender 0.6x of raw.
    jetstream: Arc<std::sync::OnceLock<Arc<async_nats::jetstream::Context>>>,
}

fn publish_error(e: async_nats::PublishError, size: usize, limit: usize) -> Error {
    match e.kind() {
        PublishErrorKind::MaxPayloadExceeded => {
            Error::new(ErrorKind::PayloadTooLarge { size, limit }, "")
        }
        PublishErrorKind::InvalidSubject => Error::with_source(ErrorKind::InvalidSubject, "", e),
        _ => Error::with_source(ErrorKind::Closed, "publishing", e),
    }
}

impl Connection {
    /// Connects with `options` (see [`ConnectOptions::connect`]).
    pub(crate) async fn open(options: ConnectOptions) -> Result<Connection> {
        let (events_tx, _) = broadcast::channel(256);
        // Lame duck notices (with the id of the client that got one) go to
        // the connection's mover task, started once connected; the event
        // callback runs on the client's own connection task and cannot
        // act on the client itself.
        let (notices_tx, notices_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let options = Arc::new(options);
        let client = options.client(PUBLISHER, &events_tx, &notices_tx, &[]).await?;
        let subscriptions = Arc::new(crate::moving::Subscriptions::new(PUBLISHER, client.clone()));
        let mover = (!options.stay_on_lame_duck).then(|| {
            let mover = crate::moving::Mover {
                options: options.clone(),
                events: events_tx.clone(),
                notices: notices_tx,
                publisher: client.clone(),
                subscriptions: subscriptions.clone(),
            };
            Arc::new(AbortOnDrop(tokio::spawn(mover.run(notices_rx))))
        });
        Ok(Connection {
            client,
            events: events_tx,
            mux: Arc::default(),
            last_subject: Arc::default(),
            jetstream: Arc::default(),
            subscriptions,
            _lame_duck: mover,
        })
    }

    /// The server's `max_payload` from its latest INFO (re-read after every
    /// reconnect, as the server sends INFO again). An atomic load: async-nats
    /// stores the figure on every connect, so the per-message size check
    /// costs no copy of the server's INFO.
    pub fn max_payload(&self) -> usize {
        self.client.max_payload()
    }

    /// Checks `size` bytes against `max_payload` before anything is sent.
    fn check_size(&self, size: usize) -> Result<()> {
        let limit = self.max_payload();
        if limit > 0 && size > limit {
            return Err(Error::new(ErrorKind::PayloadTooLarge { size, limit }, ""));
        }
        Ok(())
    }

    /// `subject` as async-nats takes it: a reference-counted copy of the
    /// previous publish's when it is the same subject, as it is for a
    /// stream of messages (or of requests to one service; reply subjects,
    /// fresh each time, are not kept). A fresh one costs two allocations and two copies
    /// (ours, then async-nats's own `to_subject` of a `String`); the kept
    /// one a compare and a reference count. Never waits: when another
    /// publish holds the cache, the subject is made fresh.
    fn subject(&self, subject: &str) -> async_nats::Subject {
        let Ok(mut last) = self.last_subject.try_lock() else {
            return async_nats::Subject::from(subject);
        };
        match &*last {
            Some(kept) if kept.as_str() == subject => kept.clone(),
            _ => last.insert(async_nats::Subject::from(subject)).clone(),
        }
    }

    /// Publishes `payload` to `subject`. A payload over `max_payload` is
    /// refused before sending ([`ErrorKind::PayloadTooLarge`]); the
    /// connection stays up.
    pub async fn publish(&self, subject: &str, payload: Bytes) -> Result<()> {
        let size = payload.len();
        self.check_size(size)?;
        self.client
            .publish(self.subject(subject), payload)
            .await
            .map_err(|e| publish_error(e, size, self.max_payload()))
    }

    /// Publishes with a reply subject (for a responder to answer on).
    pub async fn publish_with_reply(
        &self,
        subject: &str,
        reply: &str,
        payload: Bytes,
    ) -> Result<()> {
        let size = payload.len();
        self.check_size(size)?;
        self.client
            .publish_with_reply(self.subject(subject), reply.to_string(), payload)
            .await
            .map_err(|e| publish_error(e, size, self.max_payload()))
    }

    /// Publishes with headers. The size checked is the body's; the server
    /// counts headers too, and async-nats refuses the rest.
    pub async fn publish_with_headers(
        &self,
        subject: &str,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<()> {
        let size = payload.len();
        self.check_size(size)?;
        self.client
            .publish_with_headers(self.subject(subject), headers, payload)
            .await
            .map_err(|e| publish_error(e, size, self.max_payload()))
    }

    /// Waits until everything published so far is written to the server.
    pub async fn flush(&self) -> Result<()> {
        self.client.flush().await.map_err(|e| Error::with_source(ErrorKind::Closed, "flushing", e))
    }

    /// Returns once the server has processed everything this connection
    /// sent before, subscriptions included, so that a message another
    /// connection publishes next reaches them. (`flush` only empties the
    /// client's socket buffer.) A round trip: a message published to a
    /// fresh inbox this connection has just subscribed to comes back only
    /// after the server processed everything sent before it. (A request
    /// answered by "no responders" would do the same, but never completes
    /// while any client watches `>`: that client counts as a responder.)
    pub async fn sync(&self) -> Result<()> {
        let inbox = self.new_inbox();
        let mut echo = self.subscribe(&inbox).await?;
        // Sent on the client the subscriptions are on (the same as the
        // publishing one until a server's lame duck mode moved them).
        self.subscriptions
            .client()
            .publish(inbox.clone(), Bytes::new())
            .await
            .map_err(|e| Error::with_source(ErrorKind::Closed, "syncing with the server", e))?;
        self.flush().await?;
        let timeout = Duration::from_secs(10);
        match tokio::time::timeout(timeout, futures_util::StreamExt::next(&mut echo)).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(Error::new(ErrorKind::Closed, "the connection closed while syncing")),
            Err(_) => Err(Error::new(
                ErrorKind::TimedOut,
                format!("syncing with the server (no echo within {timeout:?})"),
            )),
        }
    }

    /// Subscribes to `subject` (wildcards allowed).
    /// [`ErrorKind::InvalidSubject`] when NATS would refuse the subject.
    pub async fn subscribe(&self, subject: &str) -> Result<Subscriber> {
        self.subscriptions.subscribe(subject, None).await.map_err(|e| subscribe_error(subject, e))
    }

    /// Subscribes as a member of queue group `group`: each message goes to
    /// one member.
    pub async fn queue_subscribe(&self, subject: &str, group: &str) -> Result<Subscriber> {
        self.subscriptions
            .subscribe(subject, Some(group))
            .await
            .map_err(|e| subscribe_error(subject, e))
    }

    /// Sends a request on NATS's own reply inbox and waits for one answer.
    ///
    /// [`ErrorKind::NoResponders`] when nobody listens on `subject`,
    /// [`ErrorKind::TimedOut`] when nobody answered within `timeout`.
    pub async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message> {
        let size = payload.len();
        self.check_size(size)?;
        let request = async_nats::Request::new().payload(payload).timeout(Some(timeout));
        self.client.send_request(subject.to_string(), request).await.map_err(|e| {
            let kind = match e.kind() {
                RequestErrorKind::TimedOut => ErrorKind::TimedOut,
                RequestErrorKind::NoResponders => ErrorKind::NoResponders,
                RequestErrorKind::InvalidSubject => ErrorKind::InvalidSubject,
                _ => ErrorKind::Closed,
            };
            Error::new(kind, format!("request on {subject} (timeout {timeout:?})"))
        })
    }

    /// Where the answers to a request will come: a subject on this
    /// connection's shared reply subscription (`reply` `None`; one
    /// wildcard subscription serves every request, as NATS's own request
    /// does), or `reply`, a subject of the caller's, subscribed on its own.
    /// Either way the subscription exists before this returns, so a request
    /// sent next with [`Connection::send_request`] cannot miss its answer.
    ///
    /// Unlike [`Connection::request`], the caller knows the reply subject
    /// before sending, so it can also name it inside the message for
    /// responders that do not read NATS's reply subject, and it can read
    /// several answers and skip those that are not its own.
    pub async fn replies(&self, reply: Option<&str>) -> Result<Replies> {
        match reply {
            Some(subject) => Ok(Replies::own(subject, self.subscribe(subject).await?)),
            None => self.mux.register(self).await,
        }
    }

    /// Publishes `payload` to `subject` with `replies`' subject as its NATS
    /// reply subject, and starts `replies`' `timeout`.
    pub async fn send_request(
        &self,
        replies: &mut Replies,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<()> {
        self.publish_with_reply(subject, replies.subject(), payload).await?;
        replies.start(subject, timeout);
        Ok(())
    }

    /// A fresh inbox subject for replies.
    pub fn new_inbox(&self) -> String {
        self.client.new_inbox()
    }

    /// Connection events from now on (connects, disconnects, slow
    /// consumers, server errors). Each call gets its own receiver.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The server URL or address of the current connection.
    pub fn server_address(&self) -> String {
        let info = self.client.server_info();
        format!("{}:{}", info.host, info.port)
    }

    /// The `server_name` of the server this connection is on, from its
    /// latest INFO (it changes when the client fails over to another node
    /// of a cluster).
    pub fn server_name(&self) -> String {
        self.client.server_info().server_name
    }

    /// The client port of the server this connection is on, from its
    /// latest INFO.
    pub fn server_port(&self) -> u16 {
        self.client.server_info().port
    }

    /// The underlying async-nats client, for what this crate does not wrap.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// A JetStream context on this connection (clones share one context:
    /// its limit of unacknowledged publishes is the connection's).
    ///
    /// Its API requests (stream and consumer info, creating streams and
    /// consumers) wait at most 10 s for an answer, whatever the
    /// connection's request timeout: a pull consumer's own recovery after a
    /// reconnect asks for its consumer's info, which a consumer electing a
    /// leader on a cluster does not answer, and a long request timeout
    /// (the command line's `--timeout`) kept it waiting that long.
    pub fn jetstream(&self) -> crate::JetStream {
        let context = self.jetstream.get_or_init(|| {
            Arc::new(
                async_nats::jetstream::ContextBuilder::new()
                    .timeout(Duration::from_secs(10))
                    .build(self.client.clone()),
            )
        });
        crate::JetStream::new(context.clone())
    }
}

/// A subscription's error by its cause: a subject (or queue group) NATS
/// refuses is the caller's to fix, anything else is the connection's.
fn subscribe_error(subject: &str, e: async_nats::client::SubscribeError) -> Error {
    use async_nats::client::SubscribeErrorKind;
    let (kind, detail) = match e.kind() {
        SubscribeErrorKind::InvalidSubject => {
            (ErrorKind::InvalidSubject, format!("cannot subscribe to {subject:?}"))
        }
        SubscribeErrorKind::InvalidQueueName => (
            ErrorKind::InvalidSubject,
            format!("cannot subscribe to {subject:?}: the queue group name is invalid"),
        ),
        _ => (ErrorKind::Closed, format!("subscribing to {subject}")),
    };
    Error::with_source(kind, detail, e)
}
