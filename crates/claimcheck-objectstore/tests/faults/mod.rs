//! Real faults between the object store handler and nats-server: a TCP
//! proxy on loopback that reads the client's NATS protocol and cuts the
//! connection at the message that starts or carries a try, and a bucket
//! removed through a connection of its own.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use natsbridge_claimcheck::BoxFuture;
use natsbridge_claimcheck::conformance::{Fault, FaultInjector, Transfer};
use natsbridge_claimcheck_objectstore::{ObjectStoreHandler, ObjectStoreOptions};
use natsbridge_transport_nats::Connection;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Default)]
struct Armed {
    transfer: Option<Transfer>,
    fault: Option<Fault>,
    remaining: usize,
    /// Chunks seen per object put (its chunk subject names the try).
    chunks: HashMap<String, usize>,
}

#[derive(Debug)]
struct State {
    bucket: String,
    armed: Mutex<Armed>,
    injected: AtomicUsize,
}

enum Verdict {
    Forward,
    Cut,
}

impl State {
    /// What to do with a message the client publishes on `subject`.
    ///
    /// A put is one try of an upload: its chunks go to
    /// `$O.<bucket>.C.<nuid>`, a fresh nuid per put. A get is one try of a
    /// download: it starts with a direct get of the object's metadata.
    fn verdict(&self, subject: &str) -> Verdict {
        let mut armed = self.armed.lock().unwrap();
        let (Some(transfer), Some(fault)) = (armed.transfer, armed.fault) else {
            return Verdict::Forward;
        };
        if armed.remaining == 0 {
            return Verdict::Forward;
        }
        let chunk_prefix = format!("$O.{}.C.", self.bucket);
        let get_prefix = format!("$JS.API.DIRECT.GET.OBJ_{}.$O.{}.M.", self.bucket, self.bucket);
        let try_starts = match transfer {
            Transfer::Upload => match subject.strip_prefix(&chunk_prefix) {
                Some(nuid) => {
                    let seen = armed.chunks.entry(nuid.to_owned()).or_default();
                    *seen += 1;
                    match fault {
                        // Cut in the middle of the object: its first chunk
                        // is stored and acknowledged, the second is lost.
                        Fault::Reset => *seen == 2,
                        _ => *seen == 1,
                    }
                }
                None => false,
            },
            Transfer::Download => subject.starts_with(&get_prefix),
        };
        if !try_starts {
            return Verdict::Forward;
        }
        self.injected.fetch_add(1, Ordering::SeqCst);
        if armed.remaining != usize::MAX {
            armed.remaining -= 1;
        }
        match fault {
            Fault::Reset => Verdict::Cut,
            // The bucket is gone: the try meets it on the server.
            _ => Verdict::Forward,
        }
    }
}

/// A [`FaultInjector`] for an object store bucket: transient faults are
/// connection cuts mid-transfer (the client reconnects; the handler retries),
/// the permanent fault is the bucket removed.
pub(crate) struct NatsFaults {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
    /// A connection straight to the server, to remove and restore the bucket.
    admin: Connection,
    options: ObjectStoreOptions,
    removed: tokio::sync::Mutex<bool>,
}

impl NatsFaults {
    /// A proxy to the server at `upstream` (`admin` connected to it
    /// directly), for the bucket of `options`.
    pub(crate) async fn start(
        upstream: SocketAddr,
        admin: Connection,
        options: ObjectStoreOptions,
    ) -> NatsFaults {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the NATS proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let state = Arc::new(State {
            bucket: options.bucket.clone(),
            armed: Mutex::default(),
            injected: AtomicUsize::new(0),
        });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, upstream, shared.clone()));
            }
        });
        NatsFaults { addr, state, task, admin, options, removed: tokio::sync::Mutex::new(false) }
    }

    /// `nats://<addr>`, for the store's connection.
    pub(crate) fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    async fn set(&self, transfer: Option<Transfer>, fault: Option<Fault>, n: usize) {
        let mut removed = self.removed.lock().await;
        let remove = fault == Some(Fault::Removed);
        if remove && !*removed {
            let subject = format!("$JS.API.STREAM.DELETE.OBJ_{}", self.options.bucket);
            let reply = self
                .admin
                .request(&subject, Bytes::new(), Duration::from_secs(10))
                .await
                .expect("removing the bucket");
            let text = String::from_utf8_lossy(&reply.payload);
            assert!(text.contains("\"success\":true"), "removing the bucket: {text}");
            *removed = true;
        } else if !remove && *removed {
            ObjectStoreHandler::open(&self.admin.jetstream(), &self.options)
                .await
                .expect("restoring the bucket");
            *removed = false;
        }
        let mut armed = self.state.armed.lock().unwrap();
        *armed = Armed { transfer, fault, remaining: n, chunks: HashMap::new() };
        self.state.injected.store(0, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for NatsFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsFaults").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl FaultInjector for NatsFaults {
    fn transient_faults(&self) -> Vec<Fault> {
        vec![Fault::Reset]
    }

    fn permanent_fault(&self, _transfer: Transfer) -> Fault {
        Fault::Removed
    }

    fn arm(&self, transfer: Transfer, fault: Fault, n: usize) -> BoxFuture<'_, ()> {
        Box::pin(self.set(Some(transfer), Some(fault), n))
    }

    fn disarm(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.set(None, None, 0))
    }

    fn injected(&self) -> usize {
        self.state.injected.load(Ordering::SeqCst)
    }
}

impl Drop for NatsFaults {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Forwards one client connection, reading the client's side message by
/// message; a cut closes both sides at once.
async fn serve(client: TcpStream, upstream: SocketAddr, state: Arc<State>) {
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let (client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let to_client = tokio::io::copy(&mut server_read, &mut client_write);
    let to_server = async {
        let mut reader = BufReader::with_capacity(256 * 1024, client_read);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let head = String::from_utf8_lossy(&line).into_owned();
            let words: Vec<&str> = head.split_ascii_whitespace().collect();
            let op = words.first().map(|w| w.to_ascii_uppercase()).unwrap_or_default();
            let mut message = std::mem::take(&mut line);
            if op == "PUB" || op == "HPUB" {
                // The last word is the size of what follows (headers and
                // payload), then CRLF.
                let Some(size) = words.last().and_then(|w| w.parse::<usize>().ok()) else {
                    return;
                };
                let start = message.len();
                message.resize(start + size + 2, 0);
                if reader.read_exact(&mut message[start..]).await.is_err() {
                    return;
                }
                if let Verdict::Cut = state.verdict(words[1]) {
                    return;
                }
            }
            if server_write.write_all(&message).await.is_err() {
                return;
            }
            line = message;
        }
    };
    // Whichever side ends first ends both: a cut drops the two sockets.
    tokio::select! {
        _ = to_client => {}
        _ = to_server => {}
    }
}
