//! Stopping a long-running command the way a deploy does: the first
//! SIGTERM or SIGINT asks it to drain (take nothing new, finish what it
//! has, exit 0); a second one stops the process at once.

use tokio::sync::watch;

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
/// once with 143 (SIGTERM) or 130 (SIGINT) ([`crate::StopSignals`]).
pub(crate) fn signals(what: &'static str) -> anyhow::Result<Stop> {
    let (tx, rx) = watch::channel(false);
    let mut signals = crate::StopSignals::new()?;
    tokio::spawn(async move {
        signals.next().await;
        say!("natsbridge: stopping: {what} (a second signal stops at once)");
        let _ = tx.send(true);
        let code = signals.next().await;
        say!("natsbridge: stopped at once");
        std::process::exit(i32::from(code));
    });
    Ok(Stop(rx))
}
