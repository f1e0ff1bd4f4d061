//! Subscriptions that move to another server before theirs goes away.
//!
//! When a server announces lame duck mode (a rolling restart), it goes on
//! serving its clients for its grace period, then evicts them. async-nats
//! only reports the notice; reconnecting at once (`force_reconnect`) would
//! still drop what the old socket held and leave every subscription
//! unsubscribed until the new connection's SUBs are processed, so a single
//! responder misses requests. The [`Mover`] does make-before-break
//! instead:
//!
//! 1. a new client connects to another server of the cluster;
//! 2. every live subscription is made again on it, and a round trip shows
//!    the server has them; from then on each [`Subscriber`] reads both, for
//!    a short settle that lets the new interest reach the cluster's other
//!    nodes;
//! 3. each old subscription is drained (unsubscribed; what the server sent
//!    before is still delivered) and read to its end;
//! 4. the publishing client (which carries no subscription of the caller's
//!    any more) reconnects away; its own internal subscriptions (async-nats's
//!    request inbox, JetStream acks) are made again by async-nats.
//!
//! A plain (non-queue) subscription is on both servers for a moment and may
//! see a message published then twice; a queue subscription sees each once
//! (the server gives a message to one member of the group).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_nats::Message;
use futures_util::{Stream, StreamExt};
use tokio::sync::{broadcast, mpsc};

use crate::ConnectOptions;
use crate::connection::{Event, PUBLISHER};
use crate::{Error, ErrorKind, Result};

/// How long the interest of the new subscriptions is given to reach the
/// cluster's other nodes before the old ones are drained. A server's lame
/// duck grace period is seconds (10 s by default).
const SETTLE: Duration = Duration::from_millis(100);

/// How often a draining subscription with nothing left to read looks
/// whether its client has lost its server (see [`Subscriber::drain`]).
const DRAIN_CHECK: Duration = Duration::from_millis(200);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A subscription: a [`Stream`] of the messages on its subject, which
/// stays in place when its connection moves away from a server in lame
/// duck mode (see [`crate::ConnectOptions::lame_duck_reconnect`]).
pub struct Subscriber {
    shared: Arc<Shared>,
}

struct Shared {
    subject: String,
    queue: Option<String>,
    inner: Mutex<Inner>,
}

struct Inner {
    /// The subscription messages come from; `None` while an unsubscribe
    /// or a drain of the caller's is under way.
    current: Option<async_nats::Subscriber>,
    /// Subscriptions of earlier clients, read before `current`: while a
    /// move settles they still receive (a queue group may give a message to
    /// either), then they are drained and read to their end. The flag says
    /// whether the drain was sent.
    older: Vec<(async_nats::Subscriber, bool)>,
    /// The task waiting on this stream, woken when a move swaps `current`.
    waker: Option<Waker>,
    /// Unsubscribed or drained by the caller: not moved again.
    closed: bool,
    /// The client `current` was made on.
    client: async_nats::Client,
    /// A drain of the caller's: wakes the reader now and then to look
    /// whether `client` is still connected.
    drain_check: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The stream has ended (a drain cut short by a lost server).
    ended: bool,
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("subject", &self.shared.subject)
            .field("queue", &self.shared.queue)
            .finish_non_exhaustive()
    }
}

impl Subscriber {
    fn new(
        subject: &str,
        queue: Option<&str>,
        client: async_nats::Client,
        subscriber: async_nats::Subscriber,
    ) -> Subscriber {
        let inner = Inner {
            current: Some(subscriber),
            older: Vec::new(),
            waker: None,
            closed: false,
            client,
            drain_check: None,
            ended: false,
        };
        Subscriber {
            shared: Arc::new(Shared {
                subject: subject.to_owned(),
                queue: queue.map(str::to_owned),
                inner: Mutex::new(inner),
            }),
        }
    }

    /// Unsubscribes at once: messages not yet read are dropped.
    pub async fn unsubscribe(&mut self) -> Result<()> {
        self.with_current(|mut s| async move {
            let result = s.unsubscribe().await;
            (s, result)
        })
        .await
    }

    /// Unsubscribes, but delivers what the server sent before: the stream
    /// ends after the last of it.
    ///
    /// A drain needs the server: async-nats sends the unsubscribe, and ends
    /// the stream, only once connected. When the client has no server (it
    /// is reconnecting) when the drain is asked for, or loses it before
    /// the drain completes, the stream ends instead once the messages
    /// already received have been read: a stopping service is not held
    /// until a server comes back. What the server had not delivered then
    /// stays with it (a queue group's other members, or nobody).
    pub async fn drain(&mut self) -> Result<()> {
        let connected = {
            let mut inner = lock(&self.shared.inner);
            inner.drain_check = Some(Box::pin(tokio::time::sleep(DRAIN_CHECK)));
            is_connected(&inner.client)
        };
        if !connected {
            // The command would wait in async-nats's queue until a
            // reconnect; the stream ends on what has arrived instead.
            let mut inner = lock(&self.shared.inner);
            inner.closed = true;
            if let Some(waker) = inner.waker.take() {
                waker.wake();
            }
            return Ok(());
        }
        self.with_current(|mut s| async move {
            let result = s.drain().await;
            (s, result)
        })
        .await
    }

    async fn with_current<F, Fut>(&mut self, op: F) -> Result<()>
    where
        F: FnOnce(async_nats::Subscriber) -> Fut,
        Fut: std::future::Future<
                Output = (
                    async_nats::Subscriber,
                    std::result::Result<(), async_nats::UnsubscribeError>,
                ),
            >,
    {
        let taken = {
            let mut inner = lock(&self.shared.inner);
            inner.closed = true;
            inner.current.take()
        };
        let Some(subscriber) = taken else { return Ok(()) };
        let (subscriber, result) = op(subscriber).await;
        let mut inner = lock(&self.shared.inner);
        inner.current = Some(subscriber);
        if let Some(waker) = inner.waker.take() {
            waker.wake();
        }
        result.map_err(|e| {
            Error::with_source(
                ErrorKind::Closed,
                format!("unsubscribing from {}", self.shared.subject),
                e,
            )
        })
    }
}

impl Stream for Subscriber {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        let mut inner = lock(&self.shared.inner);
        let inner = &mut *inner;
        if inner.ended {
            return Poll::Ready(None);
        }
        // What an earlier client's subscription has comes first; one that
        // ended (drained) is dropped.
        let mut i = 0;
        while i < inner.older.len() {
            match inner.older[i].0.poll_next_unpin(cx) {
                Poll::Ready(Some(message)) => return Poll::Ready(Some(message)),
                Poll::Ready(None) => {
                    inner.older.remove(i);
                }
                Poll::Pending => i += 1,
            }
        }
        let polled = match inner.current.as_mut() {
            Some(current) => current.poll_next_unpin(cx),
            // An unsubscribe of the caller's is under way.
            None => Poll::Pending,
        };
        match polled {
            Poll::Ready(None) if !inner.older.is_empty() => {}
            Poll::Ready(item) => return Poll::Ready(item),
            Poll::Pending => {}
        }
        // Draining with nothing left to read: without a server the drain
        // cannot complete, so the stream ends here; with one, look again
        // in a while.
        if inner.older.is_empty()
            && inner.current.is_some()
            && let Some(check) = inner.drain_check.as_mut()
        {
            if !is_connected(&inner.client) {
                tracing::warn!(
                    subject = %self.shared.subject,
                    "draining without a NATS server: the subscription ends on the messages already received"
                );
                inner.ended = true;
                inner.drain_check = None;
                return Poll::Ready(None);
            }
            while check.as_mut().poll(cx).is_ready() {
                check.as_mut().reset(tokio::time::Instant::now() + DRAIN_CHECK);
            }
        }
        if !inner.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            inner.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// The client a connection subscribes on, and every subscription it made.
pub(crate) struct Subscriptions {
    client: RwLock<(u64, async_nats::Client)>,
    live: Mutex<Vec<Weak<Shared>>>,
}

impl fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriptions").finish_non_exhaustive()
    }
}

impl Subscriptions {
    pub(crate) fn new(id: u64, client: async_nats::Client) -> Subscriptions {
        Subscriptions { client: RwLock::new((id, client)), live: Mutex::new(Vec::new()) }
    }

    /// The client new subscriptions go to.
    pub(crate) fn client(&self) -> async_nats::Client {
        self.client.read().unwrap_or_else(|p| p.into_inner()).1.clone()
    }

    fn id(&self) -> u64 {
        self.client.read().unwrap_or_else(|p| p.into_inner()).0
    }

    /// Subscribes to `subject` (in `queue`, if given) on the current client.
    pub(crate) async fn subscribe(
        &self,
        subject: &str,
        queue: Option<&str>,
    ) -> std::result::Result<Subscriber, async_nats::client::SubscribeError> {
        let client = self.client();
        let subscriber = match queue {
            Some(group) => client.queue_subscribe(subject.to_owned(), group.to_owned()).await?,
            None => client.subscribe(subject.to_owned()).await?,
        };
        let subscriber = Subscriber::new(subject, queue, client, subscriber);
        let mut live = lock(&self.live);
        live.retain(|s| s.strong_count() > 0);
        live.push(Arc::downgrade(&subscriber.shared));
        Ok(subscriber)
    }
}

/// Moves a connection's clients away from servers in lame duck mode (see
/// the module's documentation). Runs until the connection is dropped.
pub(crate) struct Mover {
    pub(crate) options: Arc<ConnectOptions>,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) notices: mpsc::UnboundedSender<u64>,
    pub(crate) publisher: async_nats::Client,
    pub(crate) subscriptions: Arc<Subscriptions>,
}

static NEXT_CLIENT: AtomicU64 = AtomicU64::new(PUBLISHER + 1);

impl Mover {
    pub(crate) async fn run(self, mut notices: mpsc::UnboundedReceiver<u64>) {
        while let Some(id) = notices.recv().await {
            let subscribing = self.subscriptions.id();
            if id == subscribing {
                tracing::info!(
                    "server in lame duck mode: moving the subscriptions to another server"
                );
                if let Err(e) = self.move_subscriptions().await {
                    tracing::warn!(error = %e, "moving subscriptions away from a lame duck server");
                }
            }
            if id == PUBLISHER {
                tracing::info!("server in lame duck mode: reconnecting to another server");
                if let Err(e) = self.publisher.force_reconnect().await {
                    tracing::warn!(error = %e, "reconnecting away from a lame duck server");
                }
            }
        }
    }

    async fn move_subscriptions(&self) -> Result<()> {
        let (old_id, old) =
            self.subscriptions.client.read().unwrap_or_else(|p| p.into_inner()).clone();
        let id = NEXT_CLIENT.fetch_add(1, Ordering::Relaxed);
        let cluster = old.server_info().connect_urls;
        let client = self.options.client(id, &self.events, &self.notices, &cluster).await?;
        // 1-2: every live subscription again, on the new client.
        let live: Vec<Arc<Shared>> =
            lock(&self.subscriptions.live).iter().filter_map(Weak::upgrade).collect();
        let mut moved = Vec::with_capacity(live.len());
        let mut settled = Vec::with_capacity(live.len());
        for shared in live {
            if lock(&shared.inner).closed {
                continue;
            }
            let subject = shared.subject.clone();
            let subscribed = match &shared.queue {
                Some(group) => client.queue_subscribe(subject.clone(), group.clone()).await,
                None => client.subscribe(subject.clone()).await,
            };
            match subscribed {
                Ok(new) => moved.push((shared, new)),
                Err(e) => tracing::warn!(%subject, error = %e, "subscribing on the new server"),
            }
        }
        round_trip(&client).await?;
        // New subscriptions go to the new client from now on.
        let carrier = client.clone();
        *self.subscriptions.client.write().unwrap_or_else(|p| p.into_inner()) = (id, client);
        // Both read from now: a queue group may give a message to either.
        for (shared, new) in moved {
            let mut inner = lock(&shared.inner);
            if inner.closed {
                continue;
            }
            if let Some(old) = inner.current.replace(new) {
                inner.older.push((old, false));
            }
            inner.client = carrier.clone();
            if let Some(waker) = inner.waker.take() {
                waker.wake();
            }
            drop(inner);
            settled.push(shared);
        }
        tokio::time::sleep(SETTLE).await;
        // 3: the old ones drained (taken out for the drain's send, put
        // back to be read to their end).
        for shared in settled {
            loop {
                let old = {
                    let mut inner = lock(&shared.inner);
                    let pending = inner.older.iter().position(|(_, drained)| !drained);
                    pending.map(|i| inner.older.remove(i).0)
                };
                let Some(mut old) = old else { break };
                if let Err(e) = old.drain().await {
                    tracing::warn!(subject = %shared.subject, error = %e, "draining the old subscription");
                }
                let mut inner = lock(&shared.inner);
                inner.older.push((old, true));
                if let Some(waker) = inner.waker.take() {
                    waker.wake();
                }
            }
        }
        // 4: the old client's drains complete on the server's answer to the
        // PING each sends, which comes before this round trip's echo: the
        // publisher, reconnected next, must not take them along (async-nats
        // subscribes again whatever it still has on a reconnect). A client
        // of the mover's own, which carried only subscriptions, is closed.
        if old_id == PUBLISHER {
            round_trip(&old).await?;
        } else {
            tokio::spawn(async move {
                let _ = old.drain().await;
            });
        }
        Ok(())
    }
}

fn is_connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}

/// Returns once the server has processed everything `client` sent before.
async fn round_trip(client: &async_nats::Client) -> Result<()> {
    let inbox = client.new_inbox();
    let mut echo = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| Error::with_source(ErrorKind::Closed, "subscribing on the new server", e))?;
    client
        .publish(inbox, bytes::Bytes::new())
        .await
        .map_err(|e| Error::with_source(ErrorKind::Closed, "publishing on the new server", e))?;
    match tokio::time::timeout(Duration::from_secs(10), echo.next()).await {
        Ok(Some(_)) => Ok(()),
        _ => Err(Error::new(ErrorKind::TimedOut, "no round trip with the new server")),
    }
}
