//! Serving an axum router over HTTP/1 with the connection limits a server
//! open to the network needs.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The connection limits of [`serve`]. `Default`: a 30-second header read
/// timeout, no connection cap, 5 seconds' grace at shutdown.
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    /// A connection whose request line and headers have not all arrived
    /// this long after it began waiting for them is closed.
    pub header_read_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// How long a shutdown waits for requests in flight before cutting them.
    pub grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_read_timeout: Duration::from_secs(30),
            max_connections: Semaphore::MAX_PERMITS,
            grace: Duration::from_secs(5),
        }
    }
}

/// Serves `router` on `listener` over HTTP/1 until `shutdown` completes,
/// then stops accepting, lets requests in flight finish (for up to
/// [`ServeLimits::grace`]) and returns.
///
/// This is `axum::serve(...).with_graceful_shutdown(...)` with the two
/// limits `axum::serve` does not expose: hyper's header read timeout (which
/// needs a timer `axum::serve` does not give it, so a client that never
/// finishes its headers would hold a connection for good) and a cap on
/// connections. The file server and the `natsbridge inspect` page use it.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "HTTP server: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "HTTP server: connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(limits.grace, graceful.shutdown()).await;
}
