//! The firmware's own log records as protocol log lines.
//!
//! The original device writes its log to the same streams as its replies: `Info:[L]MM/DD HH:MM:SS:
//! text\r\n` on the serial port and on every command connection (docs/protocol.md §4). The ESP32-C3 binding
//! does the same: [`Logger`] is the `log` crate's logger; it formats each record into a fixed-size line
//! and queues it (bounded, never allocating, callable from any task or interrupt, also while the engine
//! is borrowed), and the task that pumps the engine drains the queue into [`Device::log`], which stamps
//! the wall time, sends the line to every connection whose level admits it and keeps warnings and
//! errors in the persistent logbook. The USB serial port therefore carries nothing but the protocol.
//!
//! [`Device::log`]: smartmeter::device::Device::log

use core::cell::RefCell;
use core::fmt::{self, Write};

use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use heapless::{Deque, String};
use smartmeter::device::{Device, Instant, LogLevel};

/// Longest text of one queued line in bytes; longer records are cut at a character boundary and end
/// in [`CUT_MARK`].
pub const LINE_BYTES: usize = 120;
/// What a cut line ends with.
pub const CUT_MARK: &str = "…";

/// One formatted record's text.
pub type Line = String<LINE_BYTES>;

/// The protocol level of a `log` crate level (`trace` has no protocol letter of its own: `debug`).
pub fn level(level: log::Level) -> LogLevel {
    match level {
        log::Level::Error => LogLevel::Error,
        log::Level::Warn => LogLevel::Warning,
        log::Level::Info => LogLevel::Info,
        log::Level::Debug | log::Level::Trace => LogLevel::Debug,
    }
}

/// Formats `args` into a [`Line`], cutting what does not fit.
pub fn format_line(args: fmt::Arguments<'_>) -> Line {
    struct Cut {
        line: Line,
        cut: bool,
    }
    impl Write for Cut {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            if self.cut {
                return Ok(());
            }
            let room = LINE_BYTES - CUT_MARK.len() - self.line.len();
            if s.len() <= room {
                return self.line.push_str(s).map_err(|_| fmt::Error);
            }
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            let head = s.get(..end).unwrap_or("");
            self.cut = true;
            self.line
                .push_str(head)
                .and_then(|()| self.line.push_str(CUT_MARK))
                .map_err(|_| fmt::Error)
        }
    }
    let mut w = Cut {
        line: Line::new(),
        cut: false,
    };
    let _ = w.write_fmt(args);
    w.line
}

/// Up to `N` queued lines; lines that do not fit are counted, not queued.
#[derive(Debug, Default)]
pub struct LogQueue<const N: usize> {
    lines: Deque<(LogLevel, Line), N>,
    dropped: u32,
}

impl<const N: usize> LogQueue<N> {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            lines: Deque::new(),
            dropped: 0,
        }
    }

    /// Queues a line; a full queue keeps its older lines (they usually explain the newer ones) and
    /// counts this one as dropped.
    pub fn push(&mut self, level: LogLevel, line: Line) {
        if self.lines.push_back((level, line)).is_err() {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// The oldest line; once the queue is empty, a warning saying how many lines were dropped (if any).
    pub fn pop(&mut self) -> Option<(LogLevel, Line)> {
        if let Some(line) = self.lines.pop_front() {
            return Some(line);
        }
        let dropped = core::mem::take(&mut self.dropped);
        (dropped > 0).then(|| {
            (
                LogLevel::Warning,
                format_line(format_args!("log: {dropped} lines dropped (queue full)")),
            )
        })
    }
}

/// The `log` crate logger of a binding whose log lines go through the engine (see the module docs).
pub struct Logger<const N: usize> {
    queue: Mutex<CriticalSectionRawMutex, RefCell<LogQueue<N>>>,
}

impl<const N: usize> Default for Logger<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Logger<N> {
    /// A logger with an empty queue of `N` lines (usable in a `static`).
    pub const fn new() -> Self {
        Self {
            queue: Mutex::new(RefCell::new(LogQueue::new())),
        }
    }

    /// Takes the oldest queued line (see [`LogQueue::pop`]).
    pub fn pop(&self) -> Option<(LogLevel, Line)> {
        self.queue.lock(|q| q.borrow_mut().pop())
    }

    /// Moves every queued line into the engine's log at `now`; returns how many.
    pub fn drain_into(&self, device: &mut Device, now: Instant) -> usize {
        let mut n = 0;
        // One line per lock: the critical section never covers the engine's work.
        while let Some((level, line)) = self.pop() {
            device.log(now, level, &line);
            n += 1;
        }
        n
    }
}

impl<const N: usize> log::Log for Logger<N> {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Formatted outside the critical section; only the copy into the queue runs inside it.
        let line = format_line(*record.args());
        let level = level(record.level());
        self.queue.lock(|q| q.borrow_mut().push(level, line));
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_onto_protocol_letters() {
        assert_eq!(level(log::Level::Error).letter(), 'E');
        assert_eq!(level(log::Level::Warn).letter(), 'W');
        assert_eq!(level(log::Level::Info).letter(), 'I');
        assert_eq!(level(log::Level::Debug).letter(), 'D');
        assert_eq!(level(log::Level::Trace).letter(), 'D');
    }

    #[test]
    fn long_records_are_cut_at_a_char_boundary_with_a_mark() {
        let short = format_line(format_args!("store: nvs at {:#x}", 0x9000));
        assert_eq!(short.as_str(), "store: nvs at 0x9000");
        // 'é' is two bytes: a cut in its middle must move before it.
        let long = format_line(format_args!("{}", "é".repeat(100)));
        assert!(long.ends_with(CUT_MARK));
        assert!(long.len() <= LINE_BYTES);
        assert!(long.trim_end_matches(CUT_MARK).chars().all(|c| c == 'é'));
        // Several pieces: the cut happens once, later pieces are ignored.
        let pieces = format_line(format_args!(
            "{}{}{}",
            "a".repeat(100),
            "b".repeat(100),
            "c"
        ));
        assert_eq!(pieces.len(), LINE_BYTES);
        assert!(pieces.starts_with(&"a".repeat(100)) && pieces.ends_with(CUT_MARK));
        assert!(!pieces.contains('c'));
    }

    #[test]
    fn a_full_queue_keeps_the_oldest_lines_and_reports_the_dropped_count() {
        let mut q = LogQueue::<2>::new();
        for k in 0..5 {
            q.push(LogLevel::Info, format_line(format_args!("line {k}")));
        }
        assert_eq!(
            q.pop().map(|l| l.1),
            Some(Line::try_from("line 0").unwrap())
        );
        assert_eq!(
            q.pop().map(|l| l.1),
            Some(Line::try_from("line 1").unwrap())
        );
        let (lvl, text) = q.pop().unwrap();
        assert_eq!(lvl, LogLevel::Warning);
        assert_eq!(text.as_str(), "log: 3 lines dropped (queue full)");
        assert_eq!(q.pop(), None);
    }
}
