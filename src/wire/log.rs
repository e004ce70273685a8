//! Log lines (`Info:[I]MM/DD HH:MM:SS: text`), log levels and the small calendar the protocol's time
//! formats need (docs/protocol.md §4).
//!
//! Everything here is stateless: the caller passes the wall-clock time (Unix milliseconds, already
//! shifted by any configured zone offset) and gets text back, or passes text and gets typed values.
//!
//! ```
//! use smartmeter::wire::log::{DateTime, LogLevel, LogLine};
//!
//! let at = DateTime::from_unix_millis(1_614_681_744_182);
//! assert_eq!(at.to_long_string(), "03/02/2021 10:42:24.182");
//! let line = LogLine::new(LogLevel::Info, &at, "MDNS Name: smartmeterX");
//! assert_eq!(line.to_line(), "Info:[I]03/02 10:42:24: MDNS Name: smartmeterX\r\n");
//! assert_eq!(LogLine::parse(b"[I]03/02 10:42:24: MDNS Name: smartmeterX\r\n"), Ok(line));
//! ```

use alloc::string::String;
use core::fmt;

/// Severity of a log line. Ordered: `All < Debug < Info < Warning < Error`; a connection whose level is
/// `L` receives the lines whose level is `>= L` (new connections start at [`LogLevel::Info`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum LogLevel {
    /// Everything (`"all"`, letter `A`).
    All,
    /// Debugging detail (`"debug"`, `D`).
    Debug,
    /// Normal operation (`"info"`, `I`); the default of a new connection.
    #[default]
    Info,
    /// Something went wrong but the device carries on (`"warning"`, `W`); kept in the persistent log.
    Warning,
    /// An operation failed (`"error"`, `E`); kept in the persistent log.
    Error,
}

impl LogLevel {
    /// Every level, lowest first.
    pub const ALL: [LogLevel; 5] = [
        LogLevel::All,
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warning,
        LogLevel::Error,
    ];

    /// The name used by the `log` command and its reply: `all`, `debug`, `info`, `warning`, `error`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogLevel::All => "all",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
        }
    }

    /// The letter inside the brackets of a log line: `A D I W E`.
    pub const fn letter(self) -> char {
        match self {
            LogLevel::All => 'A',
            LogLevel::Debug => 'D',
            LogLevel::Info => 'I',
            LogLevel::Warning => 'W',
            LogLevel::Error => 'E',
        }
    }

    /// The level for a bracket letter (`b'I'` → `Info`); `None` for anything else.
    pub const fn from_letter(letter: u8) -> Option<LogLevel> {
        match letter {
            b'A' => Some(LogLevel::All),
            b'D' => Some(LogLevel::Debug),
            b'I' => Some(LogLevel::Info),
            b'W' => Some(LogLevel::Warning),
            b'E' => Some(LogLevel::Error),
            _ => None,
        }
    }

    /// The level for its name, ASCII case-insensitive (`"Warning"` is accepted); `None` otherwise.
    pub fn from_name(name: &str) -> Option<LogLevel> {
        LogLevel::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a log line could not be parsed. The variant names the part that was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// The line does not start with `[L]` where L is one of `A D I W E`.
    #[error("Invalid level: expected [A], [D], [I], [W] or [E]")]
    Level,
    /// The timestamp is not `MM/DD HH:MM:SS` followed by `:`; `field` names the bad part.
    #[error("Invalid {field}: expected MM/DD HH:MM:SS")]
    Timestamp {
        /// `month`, `day`, `hour`, `minute`, `second` or `separator`.
        field: &'static str,
    },
    /// The text is not UTF-8.
    #[error("Invalid text: not UTF-8")]
    Utf8,
}

/// One log line: level, the device's wall-clock time (month to second, no year) and the text.
///
/// On the wire: `Info:[L]MM/DD HH:MM:SS: text\r\n`. Newlines inside `text` are written as `//n` (and a
/// `\r` is dropped) so a log line is always one line; [`LogLine::parse`] turns `//n` back into `\n`.
/// Consequently a text that itself contains the three characters `//n` reads back with a newline.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogLine {
    /// Severity.
    pub level: LogLevel,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of the month, 1..=31.
    pub day: u8,
    /// Hour, 0..=23.
    pub hour: u8,
    /// Minute, 0..=59.
    pub minute: u8,
    /// Second, 0..=60 (60 only for a leap second).
    pub second: u8,
    /// The message, may be empty (the idle liveness line).
    pub text: String,
}

impl LogLine {
    /// A line at `at` (month..second are taken from it).
    pub fn new(level: LogLevel, at: &DateTime, text: impl Into<String>) -> LogLine {
        LogLine {
            level,
            month: at.month,
            day: at.day,
            hour: at.hour,
            minute: at.minute,
            second: at.second,
            text: text.into(),
        }
    }

    /// Parses the payload after `Info:` (`[I]03/02 10:42:24: text`), with or without the trailing
    /// `\r\n`. The space after the final `:` is optional (an empty liveness line may lose it).
    ///
    /// Never panics; allocates at most `payload.len()` bytes for the text.
    pub fn parse(payload: &[u8]) -> Result<LogLine, LogError> {
        let payload = payload.strip_suffix(b"\n").unwrap_or(payload);
        let payload = payload.strip_suffix(b"\r").unwrap_or(payload);
        let (head, rest) = payload.split_at_checked(3).ok_or(LogError::Level)?;
        let level = match head {
            [b'[', l, b']'] => LogLevel::from_letter(*l).ok_or(LogError::Level)?,
            _ => return Err(LogError::Level),
        };
        // "MM/DD HH:MM:SS:" is 15 bytes.
        let (stamp, text) = rest
            .split_at_checked(15)
            .ok_or(LogError::Timestamp { field: "separator" })?;
        let [m1, m2, s1, d1, d2, s2, h1, h2, s3, n1, n2, s4, c1, c2, s5] = *stamp else {
            return Err(LogError::Timestamp { field: "separator" });
        };
        if (s1, s2, s3, s4, s5) != (b'/', b' ', b':', b':', b':') {
            return Err(LogError::Timestamp { field: "separator" });
        }
        let month = two_digits(m1, m2, 1, 12).ok_or(LogError::Timestamp { field: "month" })?;
        let day = two_digits(d1, d2, 1, 31).ok_or(LogError::Timestamp { field: "day" })?;
        let hour = two_digits(h1, h2, 0, 23).ok_or(LogError::Timestamp { field: "hour" })?;
        let minute = two_digits(n1, n2, 0, 59).ok_or(LogError::Timestamp { field: "minute" })?;
        let second = two_digits(c1, c2, 0, 60).ok_or(LogError::Timestamp { field: "second" })?;
        let text = text.strip_prefix(b" ").unwrap_or(text);
        let text = core::str::from_utf8(text).map_err(|_| LogError::Utf8)?;
        Ok(LogLine {
            level,
            month,
            day,
            hour,
            minute,
            second,
            text: text.replace("//n", "\n"),
        })
    }

    /// Writes the payload (`[I]MM/DD HH:MM:SS: text`, no `Info:`, no line end) to `out`.
    pub fn write(&self, out: &mut impl fmt::Write) -> fmt::Result {
        write_head(
            out,
            self.level,
            [self.month, self.day, self.hour, self.minute, self.second],
        )?;
        write_escaped_text(out, &self.text)
    }

    /// The full wire line: `Info:[I]MM/DD HH:MM:SS: text\r\n`.
    pub fn to_line(&self) -> String {
        let mut s = String::with_capacity(self.text.len() + 30);
        s.push_str("Info:");
        // Writing into a String cannot fail.
        let _ = self.write(&mut s);
        s.push_str("\r\n");
        s
    }
}

impl fmt::Display for LogLine {
    /// The payload without `Info:` and line end (same as [`LogLine::write`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f)
    }
}

/// Writes a log payload, `[L]MM/DD HH:MM:SS: text` with `text` escaped as [`write_escaped_text`]
/// does (no `Info:`, no line end): the one writer of the format, behind [`LogLine::write`], the
/// device's broadcast lines ([`write_log_line`]) and its getLog rows.
pub fn write_log_payload(
    out: &mut impl fmt::Write,
    level: LogLevel,
    at: &DateTime,
    text: &str,
) -> fmt::Result {
    write_head(
        out,
        level,
        [at.month, at.day, at.hour, at.minute, at.second],
    )?;
    write_escaped_text(out, text)
}

/// Writes the whole wire line `Info:[L]MM/DD HH:MM:SS: text\r\n` ([`write_log_payload`] framed), the
/// form a device sends to its command connections. Same bytes as [`LogLine::to_line`] without
/// building a [`LogLine`].
pub fn write_log_line(
    out: &mut impl fmt::Write,
    level: LogLevel,
    at: &DateTime,
    text: &str,
) -> fmt::Result {
    out.write_str("Info:")?;
    write_log_payload(out, level, at, text)?;
    out.write_str("\r\n")
}

/// `[L]MM/DD HH:MM:SS: ` from `[month, day, hour, minute, second]`.
fn write_head(out: &mut impl fmt::Write, level: LogLevel, mdhms: [u8; 5]) -> fmt::Result {
    out.write_char('[')?;
    out.write_char(level.letter())?;
    out.write_char(']')?;
    write_short(out, mdhms)?;
    out.write_str(": ")
}

/// `MM/DD HH:MM:SS` from `[month, day, hour, minute, second]`: the short time of log lines.
fn write_short(out: &mut impl fmt::Write, [mo, d, h, mi, s]: [u8; 5]) -> fmt::Result {
    write!(out, "{mo:02}/{d:02} {h:02}:{mi:02}:{s:02}")
}

/// Writes `text` with every `\n` as `//n` and every `\r` dropped: the one-line form of log texts and
/// getLog rows.
pub fn write_escaped_text(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    for (i, part) in text.split('\n').enumerate() {
        if i > 0 {
            out.write_str("//n")?;
        }
        for piece in part.split('\r') {
            out.write_str(piece)?;
        }
    }
    Ok(())
}

fn two_digits(a: u8, b: u8, min: u8, max: u8) -> Option<u8> {
    if !a.is_ascii_digit() || !b.is_ascii_digit() {
        return None;
    }
    let v = (a - b'0') * 10 + (b - b'0');
    (min..=max).contains(&v).then_some(v)
}

const MS_PER_DAY: i64 = 86_400_000;

/// A proleptic-Gregorian calendar time with millisecond resolution, as the protocol prints it.
///
/// No time zones: the caller shifts the Unix time by the configured offset first. Works for every
/// `i64` millisecond value (years far outside 0..=9999 print with more or fewer digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    /// Year, e.g. 2021.
    pub year: i32,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of month, 1..=31.
    pub day: u8,
    /// Hour, 0..=23.
    pub hour: u8,
    /// Minute, 0..=59.
    pub minute: u8,
    /// Second, 0..=59.
    pub second: u8,
    /// Millisecond, 0..=999.
    pub millis: u16,
}

impl DateTime {
    /// The calendar time of `unix_ms` milliseconds since 1970-01-01T00:00:00 (negative: before).
    pub fn from_unix_millis(unix_ms: i64) -> DateTime {
        let days = unix_ms.div_euclid(MS_PER_DAY);
        let ms_of_day = unix_ms.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let secs = ms_of_day / 1000;
        DateTime {
            year,
            month,
            day,
            hour: (secs / 3600) as u8,
            minute: (secs / 60 % 60) as u8,
            second: (secs % 60) as u8,
            millis: (ms_of_day % 1000) as u16,
        }
    }

    /// The calendar time of `unix_s` whole seconds since the epoch.
    pub fn from_unix_seconds(unix_s: i64) -> DateTime {
        DateTime::from_unix_millis(unix_s.saturating_mul(1000))
    }

    /// Milliseconds since the epoch (inverse of [`DateTime::from_unix_millis`] for valid fields;
    /// saturates at the `i64` range).
    pub fn to_unix_millis(&self) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        // Saturating: the fields are public, so any i32 year must not overflow.
        days.saturating_mul(MS_PER_DAY)
            .saturating_add(i64::from(self.hour) * 3_600_000)
            .saturating_add(i64::from(self.minute) * 60_000)
            .saturating_add(i64::from(self.second) * 1000)
            .saturating_add(i64::from(self.millis))
    }

    /// `MM/DD/YYYY HH:MM:SS.mmm` (info `sys_time`, getEnergy `start`, ntp `current_time`, MQTT `ts`).
    pub fn to_long_string(&self) -> String {
        alloc::format!("{self}")
    }

    /// `MM/DD HH:MM:SS` (log lines).
    pub fn to_short_string(&self) -> String {
        let mut s = String::with_capacity(14);
        // Writing into a String cannot fail.
        let _ = write_short(
            &mut s,
            [self.month, self.day, self.hour, self.minute, self.second],
        );
        s
    }

    /// Parses the long form `MM/DD/YYYY HH:MM:SS.mmm` (the `.mmm` part is optional); `None` if any
    /// field is missing or out of range.
    pub fn parse_long(text: &str) -> Option<DateTime> {
        let (date, time) = text.trim().split_once(' ')?;
        let mut d = date.split('/');
        let month: u8 = d.next()?.parse().ok()?;
        let day: u8 = d.next()?.parse().ok()?;
        let year: i32 = d.next()?.parse().ok()?;
        if d.next().is_some() {
            return None;
        }
        let (hms, millis) = match time.split_once('.') {
            Some((hms, ms)) if ms.len() == 3 => (hms, ms.parse().ok()?),
            Some(_) => return None,
            None => (time, 0),
        };
        let mut t = hms.split(':');
        let hour: u8 = t.next()?.parse().ok()?;
        let minute: u8 = t.next()?.parse().ok()?;
        let second: u8 = t.next()?.parse().ok()?;
        if t.next().is_some() {
            return None;
        }
        let ok = (1..=12).contains(&month)
            && (1..=31).contains(&day)
            && hour < 24
            && minute < 60
            && second < 60
            && millis < 1000;
        ok.then_some(DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            millis,
        })
    }
}

impl fmt::Display for DateTime {
    /// The long form, `MM/DD/YYYY HH:MM:SS.mmm`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}/{:02}/{:04} {:02}:{:02}:{:02}.{:03}",
            self.month, self.day, self.year, self.hour, self.minute, self.second, self.millis
        )
    }
}

/// `<unix>.<mmm>`: a Unix time in milliseconds as the protocol's `startTs`/`start_ts`/`stop_ts`
/// strings print it (`1614697441119` → `"1614697441.119"`).
pub fn format_unix_millis(unix_ms: i64) -> String {
    let sign = if unix_ms < 0 { "-" } else { "" };
    let abs = unix_ms.unsigned_abs();
    alloc::format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

/// Parses `<unix>[.<fraction>]` (the inverse of [`format_unix_millis`]); the fraction is read to the
/// millisecond (extra digits are truncated). `None` on anything else or on overflow.
pub fn parse_unix_millis(text: &str) -> Option<i64> {
    let text = text.trim();
    let (neg, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let mut ms: i64 = 0;
    let mut digits = frac.bytes();
    for _ in 0..3 {
        ms = ms * 10 + digits.next().map_or(0, |b| i64::from(b - b'0'));
    }
    let total = secs.checked_mul(1000)?.checked_add(ms)?;
    Some(if neg { -total } else { total })
}

/// Days since 1970-01-01 → (year, month, day). Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as i32, month, day)
}

/// (year, month, day) → days since 1970-01-01. Howard Hinnant's `days_from_civil`.
fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_known_points() {
        let t = DateTime::from_unix_millis(0);
        assert_eq!(t.to_long_string(), "01/01/1970 00:00:00.000");
        let t = DateTime::from_unix_millis(1_632_140_570_068);
        assert_eq!(t.to_long_string(), "09/20/2021 12:22:50.068");
        assert_eq!(t.to_short_string(), "09/20 12:22:50");
        let t = DateTime::from_unix_millis(951_782_400_000); // 2000-02-29
        assert_eq!(t.to_long_string(), "02/29/2000 00:00:00.000");
        let t = DateTime::from_unix_millis(-1);
        assert_eq!(t.to_long_string(), "12/31/1969 23:59:59.999");
    }

    #[test]
    fn calendar_round_trip() {
        for ms in [
            0i64,
            -1,
            1,
            86_399_999,
            951_782_400_000,
            1_614_697_441_119,
            4_102_444_800_000,
            -62_135_596_800_000,
        ] {
            let t = DateTime::from_unix_millis(ms);
            assert_eq!(t.to_unix_millis(), ms);
            assert_eq!(DateTime::parse_long(&t.to_long_string()), Some(t));
        }
    }

    #[test]
    fn unix_millis_text() {
        assert_eq!(format_unix_millis(1_614_697_441_119), "1614697441.119");
        assert_eq!(format_unix_millis(5), "0.005");
        assert_eq!(format_unix_millis(-1500), "-1.500");
        assert_eq!(parse_unix_millis("1614697441.119"), Some(1_614_697_441_119));
        assert_eq!(parse_unix_millis("1614697441"), Some(1_614_697_441_000));
        assert_eq!(parse_unix_millis("1.5"), Some(1500));
        assert_eq!(parse_unix_millis("-1.500"), Some(-1500));
        assert_eq!(parse_unix_millis("1.2345"), Some(1234));
        assert_eq!(parse_unix_millis("x"), None);
        assert_eq!(parse_unix_millis("1.x"), None);
        assert_eq!(parse_unix_millis(""), None);
    }

    #[test]
    fn levels() {
        assert!(LogLevel::All < LogLevel::Debug && LogLevel::Warning < LogLevel::Error);
        assert_eq!(LogLevel::from_name("Warning"), Some(LogLevel::Warning));
        assert_eq!(LogLevel::from_name("warn"), None);
        assert_eq!(LogLevel::from_letter(b'E'), Some(LogLevel::Error));
    }

    #[test]
    fn liveness_line() {
        let at = DateTime::from_unix_millis(1_614_681_744_000);
        let line = LogLine::new(LogLevel::Info, &at, "");
        assert_eq!(line.to_line(), "Info:[I]03/02 10:42:24: \r\n");
        assert_eq!(LogLine::parse(b"[I]03/02 10:42:24: \r\n"), Ok(line.clone()));
        assert_eq!(LogLine::parse(b"[I]03/02 10:42:24:"), Ok(line));
    }

    #[test]
    fn one_writer_for_lines_and_payloads() {
        let at = DateTime::from_unix_millis(1_614_681_575_123);
        let mut line = String::new();
        write_log_line(&mut line, LogLevel::Warning, &at, "a\nb").unwrap();
        assert_eq!(line, "Info:[W]03/02 10:39:35: a//nb\r\n");
        assert_eq!(line, LogLine::new(LogLevel::Warning, &at, "a\nb").to_line());
        let mut row = String::new();
        write_log_payload(&mut row, LogLevel::Error, &at, "x").unwrap();
        assert_eq!(row, "[E]03/02 10:39:35: x");
        assert_eq!(at.to_short_string(), "03/02 10:39:35");
    }

    #[test]
    fn newline_escape() {
        let at = DateTime::from_unix_millis(0);
        let line = LogLine::new(LogLevel::Error, &at, "a\nb\r\nc");
        assert_eq!(line.to_line(), "Info:[E]01/01 00:00:00: a//nb//nc\r\n");
        let back = LogLine::parse(b"[E]01/01 00:00:00: a//nb//nc").map(|l| l.text);
        assert_eq!(back.as_deref(), Ok("a\nb\nc"));
    }

    #[test]
    fn bad_lines() {
        assert_eq!(LogLine::parse(b""), Err(LogError::Level));
        assert_eq!(
            LogLine::parse(b"[X]03/02 10:42:24: a"),
            Err(LogError::Level)
        );
        assert_eq!(
            LogLine::parse(b"[I]13/02 10:42:24: a"),
            Err(LogError::Timestamp { field: "month" })
        );
        assert_eq!(
            LogLine::parse(b"[I]03/02 10-42:24: a"),
            Err(LogError::Timestamp { field: "separator" })
        );
        assert_eq!(
            LogLine::parse(b"[I]03/02 10:42:24: \xff"),
            Err(LogError::Utf8)
        );
    }
}
