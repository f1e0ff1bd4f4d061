//! The transfer retries of SPEC.md, on the one backoff formula.

use std::time::Duration;

use natsbridge_common::Backoff;

use crate::error::Error;
use crate::handler::UploadSource;

/// How a transfer (a download, or an upload whose source can be sent again)
/// is retried. The defaults are the seeds': 5 retries, 100 ms
/// base delay, 5,000 ms maximum delay, with jitter.
///
/// The first try is made at once. Before retry `n` (`n` counted from 0, so
/// there are at most `max_retries + 1` tries) the downloader waits
/// `min(base_delay * 2^n, max_delay)`; with `jitter` it waits a uniformly
/// random time between half of that and all of it, so peers that failed
/// together do not come back together. That is the formula of
/// [`Backoff`], shared with the NATS reconnects ([`RetryConfig::backoff`]).
/// What is retried is listed on [`ErrorKind`](crate::ErrorKind).
///
/// MicroPython peers use `max_retries: 3`, `max_delay: 1000 ms`.
///
/// ```
/// use std::time::Duration;
/// use natsbridge_claimcheck::RetryConfig;
///
/// let patient = RetryConfig::new().with_max_retries(10);
/// assert!(patient.delay(0) <= Duration::from_millis(100));
/// let fixed = RetryConfig::new().with_jitter(false);
/// assert_eq!(fixed.delay(0), Duration::from_millis(100));
/// assert_eq!(fixed.delay(3), Duration::from_millis(800));
/// assert_eq!(fixed.delay(9), Duration::from_millis(5000));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Tries after the first one. Default 5.
    pub max_retries: u32,
    /// Delay before the first retry. Default 100 ms.
    pub base_delay: Duration,
    /// Upper bound of any delay. Default 5,000 ms.
    pub max_delay: Duration,
    /// Randomize each delay within `[delay / 2, delay]`. Default `true`.
    pub jitter: bool,
}

impl Default for RetryConfig {
    fn default() -> Self {
        // The transfers' delays are the common backoff's defaults.
        let Backoff { base_delay, max_delay, jitter } = Backoff::default();
        RetryConfig { max_retries: 5, base_delay, max_delay, jitter }
    }
}

impl RetryConfig {
    /// The defaults (the same as [`Default`]); change them with the
    /// `with_*` setters below or by assigning the public fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`max_retries`](Self::max_retries).
    #[must_use]
    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Sets [`base_delay`](Self::base_delay).
    #[must_use]
    pub fn with_base_delay(mut self, base_delay: Duration) -> Self {
        self.base_delay = base_delay;
        self
    }

    /// Sets [`max_delay`](Self::max_delay).
    #[must_use]
    pub fn with_max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// Sets [`jitter`](Self::jitter).
    #[must_use]
    pub fn with_jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }
}

impl RetryConfig {
    /// No retries at all: one try, and its error is final.
    pub fn none() -> Self {
        RetryConfig { max_retries: 0, ..RetryConfig::default() }
    }

    /// The backoff these settings describe.
    pub fn backoff(&self) -> Backoff {
        Backoff { base_delay: self.base_delay, max_delay: self.max_delay, jitter: self.jitter }
    }

    /// The wait before retry `n` (counted from 0), with a fresh random
    /// jitter: [`Backoff::delay_jittered`].
    pub fn delay(&self, n: u32) -> Duration {
        self.backoff().delay_jittered(n)
    }
}

/// Runs `attempt` on `source`, and again with the backoff of `retry` after
/// an error a retry can fix ([`ErrorKind::is_retryable`](crate::ErrorKind::is_retryable)):
/// how every store retries uploads.
///
/// Only a source that can be sent again is retried: bytes (shared, not
/// copied) and a file (read again from the start). A reader is consumed by
/// its first try, so its error is final.
pub async fn retry_upload<F, Fut>(
    retry: &RetryConfig,
    source: UploadSource,
    mut attempt: F,
) -> Result<String, Error>
where
    F: FnMut(UploadSource) -> Fut,
    Fut: std::future::Future<Output = Result<String, Error>>,
{
    let replay = |s: &UploadSource| match s {
        UploadSource::Bytes(b) => Some(UploadSource::Bytes(b.clone())),
        UploadSource::File(p) => Some(UploadSource::File(p.clone())),
        UploadSource::Reader { .. } => None,
    };
    let mut source = source;
    let mut tries = 0u32;
    loop {
        let again = replay(&source);
        let error = match attempt(source).await {
            Ok(link) => return Ok(link),
            Err(e) => e,
        };
        match again {
            Some(next) if error.is_retryable() && tries < retry.max_retries => {
                tokio::time::sleep(retry.delay(tries)).await;
                tries += 1;
                source = next;
            }
            _ if tries > 0 => return Err(error.context(format!("after {} tries", tries + 1))),
            _ => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_the_common_backoffs() {
        let c = RetryConfig { jitter: false, ..RetryConfig::default() };
        let b = c.backoff();
        assert_eq!(
            b,
            Backoff {
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_millis(5000),
                jitter: false,
            }
        );
        for n in (0..40).chain([u32::MAX]) {
            assert_eq!(c.delay(n), b.delay(n, 0));
        }
        let ms: Vec<u128> = (0..8).map(|n| c.delay(n).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    #[test]
    fn jitter_stays_within_the_common_range() {
        let c = RetryConfig::default();
        assert!(c.backoff().jitter);
        for n in 0..10 {
            let low = c.backoff().delay(n, 0);
            let full = RetryConfig { jitter: false, ..c }.delay(n);
            assert_eq!(low, full / 2);
            for _ in 0..20 {
                let d = c.delay(n);
                assert!(d >= low && d <= full, "{d:?} vs {full:?}");
            }
        }
    }
}
