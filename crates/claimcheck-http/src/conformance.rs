//! The HTTP stores' side of the claim-check conformance suite (crate
//! feature `conformance`): [`FaultProxy`], a TCP proxy that puts real HTTP
//! failures between a store's client and its server, for
//! [`transient_faults`](natsbridge_claimcheck::conformance::transient_faults)
//! and [`permanent_faults`](natsbridge_claimcheck::conformance::permanent_faults).
//! The suite itself, and the [`Fault`]s it arms, are the role's
//! (`natsbridge_claimcheck::conformance`, re-exported here), since a store
//! speaking another protocol brings its own [`FaultInjector`].
//!
//! ```no_run
//! # async fn run(store: natsbridge_claimcheck_http::conformance::Store, upstream: std::net::SocketAddr) {
//! use natsbridge_claimcheck_http::conformance::{self, FaultProxy};
//! let proxy = FaultProxy::start(upstream).await; // build `store`'s URLs on proxy.url()
//! conformance::transient_faults(&store, &proxy).await;
//! conformance::permanent_faults(&store, &proxy).await;
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use natsbridge_claimcheck::BoxFuture;
#[doc(no_inline)]
pub use natsbridge_claimcheck::conformance::*;

#[derive(Debug, Default)]
struct ProxyState {
    fault: std::sync::Mutex<Option<Fault>>,
    remaining: AtomicUsize,
    injected: AtomicUsize,
}

/// A TCP proxy on a free loopback port in front of a store's HTTP server:
/// forwards every connection unchanged, except that the next `n`
/// connections after [`FaultProxy::arm`] get the armed [`Fault`] instead.
/// Stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy to `upstream`, injecting nothing until armed.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the fault proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let state = Arc::new(ProxyState::default());
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let fault = match shared.remaining.load(Ordering::SeqCst) {
                    0 => None,
                    _ => {
                        shared.remaining.fetch_sub(1, Ordering::SeqCst);
                        shared.injected.fetch_add(1, Ordering::SeqCst);
                        *shared.fault.lock().unwrap_or_else(|p| p.into_inner())
                    }
                };
                tokio::spawn(serve(client, upstream, fault));
            }
        });
        FaultProxy { addr, state, task }
    }

    /// The proxy's address, to build the store's URLs on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next `n` connections get `fault`; resets the count of injected
    /// faults.
    pub fn arm(&self, fault: Fault, n: usize) {
        *self.state.fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(fault);
        self.state.injected.store(0, Ordering::SeqCst);
        self.state.remaining.store(n, Ordering::SeqCst);
    }

    /// Faults injected since the last [`FaultProxy::arm`].
    pub fn injected(&self) -> usize {
        self.state.injected.load(Ordering::SeqCst)
    }
}

impl FaultInjector for FaultProxy {
    fn transient_faults(&self) -> Vec<Fault> {
        vec![Fault::Status(503), Fault::Reset]
    }

    fn permanent_fault(&self, transfer: Transfer) -> Fault {
        match transfer {
            Transfer::Upload => Fault::Status(403),
            Transfer::Download => Fault::Status(404),
        }
    }

    /// Every connection is one try, whichever the transfer.
    fn arm(&self, _transfer: Transfer, fault: Fault, n: usize) -> BoxFuture<'_, ()> {
        FaultProxy::arm(self, fault, n);
        Box::pin(std::future::ready(()))
    }

    fn disarm(&self) -> BoxFuture<'_, ()> {
        FaultProxy::arm(self, Fault::Reset, 0);
        Box::pin(std::future::ready(()))
    }

    fn injected(&self) -> usize {
        FaultProxy::injected(self)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut client: TcpStream, upstream: SocketAddr, fault: Option<Fault>) {
    let Some(fault) = fault else {
        if let Ok(mut server) = TcpStream::connect(upstream).await {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        }
        return;
    };
    // Read the request head, so the client has sent before it fails.
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 1 << 20 {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let status = match fault {
        Fault::Status(status) => Some(status),
        Fault::Removed => Some(404),
        // Reset, and any fault added to the role's list that has no HTTP
        // answer: the connection is cut without one.
        _ => None,
    };
    if let Some(status) = status {
        let body = format!("injected {status}\n");
        let reply = format!(
            "HTTP/1.1 {status} Injected\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = client.write_all(reply.as_bytes()).await;
        let _ = client.flush().await;
    }
    // Reset: dropped without an answer.
}
