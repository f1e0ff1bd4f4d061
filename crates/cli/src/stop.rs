//! Stopping a long-running command the way a deploy does: the first
//! SIGTERM or SIGINT asks it to drain (take nothing new, finish what it
//! has, exit 0); a second one stops the process at once.

use anyhow::Context;
use tokio::sync::watch;

/// Exit code after a second SIGINT (128 + 2, as a shell reports it).
pub(crate) const SECOND_SIGINT: i32 = 130;
/// Exit code after a second SIGTERM (128 + 15).
pub(crate) const SECOND_SIGTERM: i32 = 143;

/// The first stop signal, once it has come.
#[derive(Clone, Debug)]
pub(crate) struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Returns once the first SIGTERM or SIGINT has arrived (at once if it
    /// has). Cancel safe.
    pub(crate) async fn requested(&mut self) {
        // An error means the watching task ended: no signal will come.
        if self.0.wait_for(|stopped| *stopped).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Starts watching for SIGTERM and SIGINT: the first sets [`Stop`] and
/// says on stderr that `what` is draining; the second exits the process at
/// once with 143 (SIGTERM) or 130 (SIGINT).
pub(crate) fn signals(what: &'static str) -> anyhow::Result<Stop> {
    let (tx, rx) = watch::channel(false);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
        let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => tracing::info!("interrupted (SIGINT): draining"),
                _ = terminate.recv() => tracing::info!("terminated (SIGTERM): draining"),
            }
            eprintln!("natsbridge: stopping: {what} (a second signal stops at once)");
            let _ = tx.send(true);
            let code = tokio::select! {
                _ = interrupt.recv() => SECOND_SIGINT,
                _ = terminate.recv() => SECOND_SIGTERM,
            };
            eprintln!("natsbridge: stopped at once");
            std::process::exit(code);
        });
    }
    #[cfg(not(unix))]
    {
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("natsbridge: stopping: {what} (a second Ctrl-C stops at once)");
            let _ = tx.send(true);
            let _ = tokio::signal::ctrl_c().await;
            std::process::exit(SECOND_SIGINT);
        });
    }
    Ok(Stop(rx))
}
