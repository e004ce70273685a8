//! Calendar formats of the engine (to be replaced by `wire::log`).

use core::fmt;

use crate::hal::Instant;

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
        assert_eq!(ShortTime(t, 60).to_string(), "03/02 11:39:35");
        assert_eq!(
            LongTime(Instant::EPOCH, 0).to_string(),
            "01/01/1970 00:00:00.000"
        );
    }
}
