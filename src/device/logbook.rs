//! The persistent warning/error logbook (getLog / clearLog): a bounded ring with flood collapsing and
//! rate-limited persistence, so junk input can neither grow memory nor wear out flash.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::time::Duration;
use serde::{Deserialize, Serialize};

use super::Instant;
use super::LogLevel;
use super::ntp::calendar;
use crate::wire::log::write_log_payload;

/// Longest text kept per entry, in bytes (longer texts are cut at a char boundary).
pub const MAX_TEXT: usize = 120;
/// Minimum time between two logbook writes to the store.
pub const WRITE_INTERVAL: Duration = Duration::from_secs(60);

/// One logbook row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `W` or `E`.
    pub level: char,
    /// Wall time of the first occurrence, µs since the epoch.
    pub at_us: u64,
    /// The text (newlines already replaced by `//n`).
    pub text: String,
    /// How many identical consecutive lines this row stands for (≥ 1).
    pub count: u32,
    /// Zone offset (minutes) in effect when logged, for display.
    #[serde(default)]
    pub zone_min: i16,
}

/// Bounded ring of warning and error lines.
#[derive(Debug, Clone)]
pub struct Logbook {
    entries: VecDeque<Entry>,
    capacity: usize,
    dirty: bool,
    last_write: Option<Instant>,
    /// Entries dropped because the ring was full (oldest first).
    pub evicted: u32,
}

impl Logbook {
    /// An empty logbook holding at most `capacity` rows (at least 1).
    pub fn new(capacity: usize) -> Self {
        Logbook {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            dirty: false,
            last_write: None,
            evicted: 0,
        }
    }

    /// Records a line. A line equal (level and text) to the newest row only bumps its count.
    pub fn push(&mut self, level: char, at: Instant, text: &str, zone_min: i16) {
        let mut cut = text.len().min(MAX_TEXT);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let text = text.get(..cut).unwrap_or("");
        self.dirty = true;
        if let Some(last) = self.entries.back_mut()
            && last.level == level
            && last.text == text
        {
            last.count = last.count.saturating_add(1);
            return;
        }
        if self.entries.len() >= self.capacity {
            self.entries.pop_front();
            self.evicted = self.evicted.saturating_add(1);
        }
        self.entries.push_back(Entry {
            level,
            at_us: at.as_micros(),
            text: text.into(),
            count: 1,
            zone_min,
        });
    }

    /// Number of rows.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Removes every row (clearLog).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.dirty = true;
    }

    /// The rows as `[L]MM/DD HH:MM:SS: text`, with ` (xN)` for collapsed floods (the getLog dump,
    /// [`Reply::GetLogDump`](crate::wire::reply::Reply::GetLogDump)).
    pub fn rows(&self) -> impl Iterator<Item = String> + '_ {
        self.entries.iter().map(|e| {
            // Only `W` and `E` are ever pushed; a foreign letter from a damaged store shows as `E`.
            let level = u8::try_from(e.level)
                .ok()
                .and_then(LogLevel::from_letter)
                .unwrap_or(LogLevel::Error);
            let at = calendar(Instant::from_micros(e.at_us), i32::from(e.zone_min));
            let mut s = String::with_capacity(e.text.len() + 32);
            // Writing into a String cannot fail.
            let _ = write_log_payload(&mut s, level, &at, &e.text);
            if e.count > 1 {
                let _ = write!(s, " (x{})", e.count);
            }
            s
        })
    }

    /// Whether a write is due now: there are unsaved changes and the last write is ≥ 60 s ago.
    pub fn write_due(&self, now: Instant) -> Option<Instant> {
        if !self.dirty {
            return None;
        }
        Some(match self.last_write {
            None => now,
            Some(t) => t + WRITE_INTERVAL,
        })
    }

    /// Marks the logbook as written at `now` and returns its persistent form.
    pub fn take_snapshot(&mut self, now: Instant) -> Vec<Entry> {
        self.dirty = false;
        self.last_write = Some(now);
        self.entries.iter().cloned().collect()
    }

    /// Rebuilds from a stored snapshot (keeps the newest `capacity` rows).
    pub fn restore(&mut self, rows: Vec<Entry>) {
        self.entries = rows.into_iter().collect();
        while self.entries.len() > self.capacity {
            self.entries.pop_front();
        }
        self.dirty = false;
    }

    /// Bytes held on the heap (approximate: entries plus their text).
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * core::mem::size_of::<Entry>()
            + self
                .entries
                .iter()
                .map(|e| e.text.capacity())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floods_collapse_into_one_row() {
        let mut log = Logbook::new(4);
        let t = Instant::from_secs(1_614_681_575);
        log.push('W', t, "Received unknown command", 0);
        log.push('W', t, "Received unknown command", 0);
        assert_eq!(log.len(), 1);
        assert_eq!(
            log.rows().next().as_deref(),
            Some("[W]03/02 10:39:35: Received unknown command (x2)")
        );
    }
}
