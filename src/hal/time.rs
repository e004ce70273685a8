//! [`Instant`]: the binding's clock in microseconds since the Unix epoch, as every HAL trait and the
//! engine pass it around. Calendar formats live in [`wire::log`](crate::wire::log).

use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time: microseconds since the Unix epoch on the binding's clock (host: `SystemTime`;
/// firmware: RTC/SNTP). The engine never reads a clock; every `handle_*` receives `now`.
///
/// ```
/// use smartmeter::hal::Instant;
/// use core::time::Duration;
/// let t = Instant::from_secs(10) + Duration::from_millis(1500);
/// assert_eq!(t.as_millis(), 11_500);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// 1970-01-01T00:00:00Z.
    pub const EPOCH: Instant = Instant(0);

    /// From microseconds since the epoch.
    pub const fn from_micros(us: u64) -> Self {
        Instant(us)
    }
    /// From milliseconds since the epoch (saturating).
    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms.saturating_mul(1000))
    }
    /// From whole seconds since the epoch (saturating).
    pub const fn from_secs(s: u64) -> Self {
        Instant(s.saturating_mul(1_000_000))
    }
    /// From (possibly fractional) seconds; negative or NaN gives the epoch.
    pub fn from_secs_f64(s: f64) -> Self {
        if s.is_finite() && s > 0.0 {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Instant((s * 1e6) as u64)
        } else {
            Instant(0)
        }
    }
    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }
    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0 / 1000
    }
    /// Whole seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1_000_000
    }
    /// Seconds since the epoch as `f64`.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    /// `self - earlier`, zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
    /// Shifts by a signed number of microseconds (saturating at both ends).
    pub fn offset_by(self, us: i64) -> Instant {
        Instant(self.0.saturating_add_signed(us))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(us))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_sub(us))
    }
}
