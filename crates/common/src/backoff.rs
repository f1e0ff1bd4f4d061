//! The one backoff formula, for reconnects and transfers alike.

use core::time::Duration;

/// Capped exponential backoff with jitter: how long to wait before a retry.
///
/// Before retry `n` (counted from 0) the wait is
/// `min(base_delay * 2^n, max_delay)`; with `jitter` it is a uniformly
/// random time between half of that and all of it, so that peers that
/// failed together do not come back together. The doubling is the
/// cross-language peers' formula (SPEC.md), so it is not a setting.
///
/// Plain data; tune the fields. The defaults are the claim-check transfers'
/// (100 ms, 5,000 ms, jitter on); the NATS reconnect policy uses 50 ms and
/// 4 s.
///
/// ```
/// use std::time::Duration;
/// use natsbridge_common::Backoff;
///
/// let fixed = Backoff { jitter: false, ..Backoff::default() };
/// assert_eq!(fixed.delay(0, 0), Duration::from_millis(100));
/// assert_eq!(fixed.delay(3, 0), Duration::from_millis(800));
/// assert_eq!(fixed.delay(9, 0), Duration::from_millis(5000));
///
/// // With jitter, the random number picks the point in [delay / 2, delay].
/// let jittered = Backoff::default();
/// assert_eq!(jittered.delay(3, 0), Duration::from_millis(400));
/// assert!(jittered.delay(3, u64::MAX) <= Duration::from_millis(800));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backoff {
    /// Delay before the first retry. Default 100 ms.
    pub base_delay: Duration,
    /// Upper bound of any delay. Default 5,000 ms.
    pub max_delay: Duration,
    /// Spread each delay uniformly over `[delay / 2, delay]`. Default `true`.
    pub jitter: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(5000),
            jitter: true,
        }
    }
}

impl Backoff {
    /// The wait before retry `n` (counted from 0), with `random` choosing
    /// the point within the jitter range: `random % (span + 1)` nanoseconds
    /// above half the delay. Without jitter `random` is ignored.
    ///
    /// A pure function, for callers with a random source of their own and
    /// for tests; [`Backoff::delay_jittered`] draws the number itself.
    pub fn delay(&self, n: u32, random: u64) -> Duration {
        // Doubling saturates instead of overflowing: past 2^31 the factor
        // stays at u32::MAX, far beyond any sensible max_delay.
        let factor = 1u32.checked_shl(n).unwrap_or(u32::MAX);
        let full = self.base_delay.saturating_mul(factor).min(self.max_delay);
        if !self.jitter || full.is_zero() {
            return full;
        }
        let half = full / 2;
        let span = u64::try_from((full - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(random % span.saturating_add(1))
    }

    /// The wait before retry `n` (counted from 0), with a fresh random
    /// number for the jitter: what reconnects and transfers sleep.
    ///
    /// The number comes from std's randomly keyed hasher (a new key per
    /// call), which is plenty for jitter and spares a dependency on a random
    /// number crate.
    #[cfg(feature = "std")]
    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    pub fn delay_jittered(&self, n: u32) -> Duration {
        if !self.jitter {
            return self.delay(n, 0);
        }
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(n);
        self.delay(n, hasher.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_cap() {
        let c = Backoff { jitter: false, ..Backoff::default() };
        let ms: alloc::vec::Vec<u128> = (0..8).map(|n| c.delay(n, 7).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(c.delay(31, 0), Duration::from_millis(5000));
        assert_eq!(c.delay(40, 0), Duration::from_millis(5000));
        assert_eq!(c.delay(u32::MAX, 0), Duration::from_millis(5000));
    }

    #[test]
    fn doubling_saturates_without_a_cap() {
        let c = Backoff {
            base_delay: Duration::from_nanos(1),
            max_delay: Duration::MAX,
            jitter: false,
        };
        assert_eq!(c.delay(20, 0), Duration::from_nanos(1 << 20));
        assert_eq!(c.delay(31, 0), Duration::from_nanos(1 << 31));
        assert_eq!(c.delay(32, 0), Duration::from_nanos(u64::from(u32::MAX)));
        let huge = Backoff { base_delay: Duration::MAX, ..c };
        assert_eq!(huge.delay(5, 0), Duration::MAX);
        // Jitter over the largest span does not overflow.
        assert!(Backoff { jitter: true, ..huge }.delay(5, u64::MAX) >= Duration::MAX / 2);
    }

    #[test]
    fn jitter_spans_half_to_full() {
        let c = Backoff::default();
        let full = Duration::from_millis(800);
        assert_eq!(c.delay(3, 0), full / 2);
        assert_eq!(c.delay(3, 400_000_000), full);
        assert_eq!(c.delay(3, 400_000_001), full / 2);
        assert_eq!(c.delay(3, 1), full / 2 + Duration::from_nanos(1));
        let zero = Backoff { base_delay: Duration::ZERO, ..c };
        assert_eq!(zero.delay(3, 12345), Duration::ZERO);
    }

    #[cfg(feature = "std")]
    #[test]
    fn jittered_delays_stay_within_half_and_full_and_vary() {
        let c = Backoff::default();
        for n in 0..10 {
            let full = Backoff { jitter: false, ..c }.delay(n, 0);
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..50 {
                let d = c.delay_jittered(n);
                assert!(d >= full / 2 && d <= full, "{d:?} vs {full:?}");
                seen.insert(d);
            }
            assert!(seen.len() > 1, "retry {n}: always {seen:?}");
        }
        let fixed = Backoff { jitter: false, ..c };
        assert_eq!(fixed.delay_jittered(2), Duration::from_millis(400));
    }
}
