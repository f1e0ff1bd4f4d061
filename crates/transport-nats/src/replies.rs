//! Answers to requests whose reply subject the caller knows before sending.
//!
//! A requester that must name its reply subject inside the message (the
//! seeds' responders read only the envelope's `reply_to`) cannot use NATS's
//! own request call, which picks the subject while sending. [`Replies`] is
//! the subscription such a request is answered on: either a subject on the
//! connection's shared wildcard inbox subscription, multiplexed by its last
//! token as async-nats does for its own requests (so a request costs no
//! SUB/UNSUB of its own), or a subject of the caller's, subscribed alone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{Message, StatusCode};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::{Connection, Error, ErrorKind, Result, Subscriber};

type Waiting = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Message>>>>;

/// The connection's shared reply subscription, made on first use.
#[derive(Debug, Default)]
pub(crate) struct ReplyMux {
    shared: tokio::sync::OnceCell<Shared>,
    next_token: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    /// `_INBOX.<unique>`; a request's subject is `<prefix>.<token>`.
    prefix: String,
    waiting: Waiting,
}

impl ReplyMux {
    /// A fresh subject on the shared subscription, registered for answers.
    pub(crate) async fn register(&self, conn: &Connection) -> Result<Replies> {
        let shared = self.shared.get_or_try_init(|| Shared::start(conn)).await?;
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        shared.waiting.lock().unwrap_or_else(|p| p.into_inner()).insert(token, tx);
        Ok(Replies::new(
            format!("{}.{token}", shared.prefix),
            Source::Shared { rx, token, waiting: shared.waiting.clone() },
        ))
    }
}

impl Shared {
    async fn start(conn: &Connection) -> Result<Shared> {
        let prefix = conn.new_inbox();
        // A subscription of the connection's, so it moves with the others
        // when a server goes into lame duck mode.
        let mut subscriber = conn.subscribe(&format!("{prefix}.*")).await?;
        let waiting = Waiting::default();
        let routes = waiting.clone();
        // Ends with the connection (the subscription stream ends); every
        // waiting request then sees its channel close.
        tokio::spawn(async move {
            while let Some(message) = subscriber.next().await {
                let token = message.subject.rsplit('.').next().and_then(|t| t.parse::<u64>().ok());
                let routes = routes.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(tx) = token.and_then(|t| routes.get(&t)) {
                    let _ = tx.send(message);
                }
            }
            routes.lock().unwrap_or_else(|p| p.into_inner()).clear();
        });
        Ok(Shared { prefix, waiting })
    }
}

/// The answers to one request: see [`crate::Connection::replies`].
#[derive(Debug)]
pub struct Replies {
    subject: String,
    source: Source,
    deadline: Option<tokio::time::Instant>,
    what: String,
}

#[derive(Debug)]
enum Source {
    Own(Subscriber),
    Shared { rx: mpsc::UnboundedReceiver<Message>, token: u64, waiting: Waiting },
}

impl Replies {
    fn new(subject: String, source: Source) -> Replies {
        Replies { subject, source, deadline: None, what: String::new() }
    }

    pub(crate) fn own(subject: &str, subscriber: Subscriber) -> Replies {
        Replies::new(subject.to_string(), Source::Own(subscriber))
    }

    /// Starts the timeout of the request sent to `subject`.
    pub(crate) fn start(&mut self, subject: &str, timeout: Duration) {
        self.deadline = Some(tokio::time::Instant::now() + timeout);
        self.what = format!("request on {subject} (timeout {timeout:?})");
    }

    /// The subject answers come to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The next answer. [`ErrorKind::TimedOut`] once the request's timeout
    /// has passed (none before a request was sent with
    /// [`crate::Connection::send_request`]); [`ErrorKind::NoResponders`]
    /// when the server says nobody subscribes to the request's subject
    /// (its 503 status on the reply subject); [`ErrorKind::Closed`] when
    /// the connection ended.
    ///
    /// Cancel safe: an answer is taken only when it is returned.
    pub async fn next(&mut self) -> Result<Message> {
        let next = async {
            match &mut self.source {
                Source::Own(subscriber) => subscriber.next().await,
                Source::Shared { rx, .. } => rx.recv().await,
            }
        };
        let message = match self.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, next).await,
            None => Ok(next.await),
        };
        match message {
            Err(_) => Err(Error::new(ErrorKind::TimedOut, self.what.clone())),
            Ok(None) => Err(Error::new(ErrorKind::Closed, self.what.clone())),
            Ok(Some(m)) if m.status == Some(StatusCode::NO_RESPONDERS) => {
                Err(Error::new(ErrorKind::NoResponders, self.what.clone()))
            }
            Ok(Some(m)) => Ok(m),
        }
    }
}

impl Drop for Replies {
    fn drop(&mut self) {
        if let Source::Shared { token, waiting, .. } = &self.source {
            waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(token);
        }
    }
}
