//! What one received envelope may cost a receiver.

use std::time::Duration;

/// Bounds on what receiving one envelope may cost, whatever its sender
/// declares: every receive path of a [`Bridge`](crate::Bridge)
/// (subscriptions, the JetStream consumer, `smartreceive`, `request`'s
/// answer, `fetch_payload`) and [`smartunpack_with`](crate::smartunpack_with)
/// apply them. `docs/security.md` argues the defaults.
///
/// ```
/// use std::time::Duration;
/// use natsbridge::ReceiveLimits;
///
/// let limits = ReceiveLimits::default()
///     .max_envelope_bytes(64 << 20)
///     .link_deadline(Duration::from_secs(60));
/// assert_eq!(limits.max_envelope_bytes, 64 << 20);
/// assert_eq!(limits.message_deadline, ReceiveLimits::default().message_deadline);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceiveLimits {
    /// The most bytes all of one envelope's links may bring into memory
    /// together. Links whose declared sizes add up to more are refused
    /// before any is fetched; links without a declared size may take only
    /// what is left of it. Default 1 GiB (the HTTP downloader's cap for one
    /// link), so a peer's envelope of many large links costs no more than
    /// one. The error is `ClaimCheck(TooLarge)`, not retried.
    pub max_envelope_bytes: u64,
    /// How long one link's download may take in all, its retries included;
    /// past it the download stops with `ClaimCheck(TimedOut)`. This is on
    /// top of the downloader's own timeouts and minimum rate, which alone
    /// let a link trickling just above the rate hold a receiver for hours.
    /// Default 10 minutes (1 GiB at 1.8 MB/s).
    pub link_deadline: Duration,
    /// How long fetching all of one envelope's links may take. Default 15
    /// minutes. `ClaimCheck(TimedOut)` past it.
    pub message_deadline: Duration,
}

impl Default for ReceiveLimits {
    fn default() -> Self {
        ReceiveLimits {
            max_envelope_bytes: 1 << 30,
            link_deadline: Duration::from_secs(600),
            message_deadline: Duration::from_secs(900),
        }
    }
}

impl ReceiveLimits {
    /// Sets [`ReceiveLimits::max_envelope_bytes`].
    #[must_use]
    pub fn max_envelope_bytes(mut self, bytes: u64) -> Self {
        self.max_envelope_bytes = bytes;
        self
    }

    /// Sets [`ReceiveLimits::link_deadline`].
    #[must_use]
    pub fn link_deadline(mut self, deadline: Duration) -> Self {
        self.link_deadline = deadline;
        self
    }

    /// Sets [`ReceiveLimits::message_deadline`].
    #[must_use]
    pub fn message_deadline(mut self, deadline: Duration) -> Self {
        self.message_deadline = deadline;
        self
    }
}
