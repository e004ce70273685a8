//! Time as the engine sees it: the caller's clock in microseconds since the Unix epoch.

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time: microseconds since the Unix epoch on the binding's clock (host: `SystemTime`;
/// firmware: RTC/SNTP). The engine never reads a clock; every `handle_*` receives `now`.
///
/// ```
/// use smartmeter::device::Instant;
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

/// A broken-down UTC (or zone-shifted) calendar time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year.
    pub year: i64,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=59.
    pub second: u32,
    /// 0..=999.
    pub millis: u32,
}

impl Civil {
    /// Breaks down `t` shifted by `zone_min` minutes (east of UTC).
    pub fn from_instant(t: Instant, zone_min: i32) -> Civil {
        let ms = i128::from(t.as_millis()) + i128::from(zone_min) * 60_000;
        let ms = i64::try_from(ms).unwrap_or(0);
        let days = ms.div_euclid(86_400_000);
        let rem = ms.rem_euclid(86_400_000);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        let r = u32::try_from(rem).unwrap_or(0);
        Civil {
            year: y,
            month: u32::try_from(m).unwrap_or(1),
            day: u32::try_from(d).unwrap_or(1),
            hour: r / 3_600_000,
            minute: r / 60_000 % 60,
            second: r / 1000 % 60,
            millis: r % 1000,
        }
    }
}

/// `MM/DD/YYYY HH:MM:SS.mmm` (the long form of PROTOCOL.md §4).
pub struct LongTime(pub Instant, pub i32);
impl fmt::Display for LongTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = Civil::from_instant(self.0, self.1);
        write!(
            f,
            "{:02}/{:02}/{:04} {:02}:{:02}:{:02}.{:03}",
            c.month, c.day, c.year, c.hour, c.minute, c.second, c.millis
        )
    }
}

/// `MM/DD HH:MM:SS` (the log-line form of PROTOCOL.md §4).
pub struct ShortTime(pub Instant, pub i32);
impl fmt::Display for ShortTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = Civil::from_instant(self.0, self.1);
        write!(
            f,
            "{:02}/{:02} {:02}:{:02}:{:02}",
            c.month, c.day, c.hour, c.minute, c.second
        )
    }
}

/// `<unix>.<mmm>` (timestamps of PROTOCOL.md §4, always UTC).
pub struct UnixMillis(pub Instant);
impl fmt::Display for UnixMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        write!(f, "{}.{:03}", ms / 1000, ms % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn formats_match_the_seed() {
        // 1614681575 = 03/02/2021 10:39:35 UTC
        let t = Instant::from_millis(1_614_681_575_123);
        assert_eq!(LongTime(t, 0).to_string(), "03/02/2021 10:39:35.123");
        assert_eq!(ShortTime(t, 0).to_string(), "03/02 10:39:35");
        assert_eq!(UnixMillis(t).to_string(), "1614681575.123");
        assert_eq!(ShortTime(t, 60).to_string(), "03/02 11:39:35");
        assert_eq!(
            LongTime(Instant::EPOCH, 0).to_string(),
            "01/01/1970 00:00:00.000"
        );
    }
}
