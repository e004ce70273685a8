//! Per-connection state: line assembly with the 600-byte limit, a bounded output queue, the
//! connection's own log level and its authentication state.
//!
//! ```
//! use smartmeter::device::session::{LineBuffer, Line};
//! let mut lb = LineBuffer::new();
//! let mut lines = Vec::new();
//! lb.push(b"{\"cmd\":\"info\"}\r\n!\n", |l| lines.push(match l {
//!     Line::Complete(b) => String::from_utf8_lossy(b).into_owned(),
//!     Line::TooLong => "too long".into(),
//! }));
//! assert_eq!(lines, ["{\"cmd\":\"info\"}", "!"]);
//! ```

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::{ConnId, ConnKind};
use crate::device::LogLevel;

/// Longest accepted command line in bytes (without the line ending).
pub const MAX_LINE: usize = 600;

/// What [`LineBuffer::push`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A whole line, `\n` and a trailing `\r` removed.
    Complete(&'a [u8]),
    /// The line exceeded [`MAX_LINE`]; the rest of it up to the next `\n` is discarded.
    TooLong,
}

/// Assembles lines from arbitrary byte splits with bounded memory.
#[derive(Debug, Clone, Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
    discarding: bool,
}

impl LineBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; calls `f` for every finished line (and once per over-long line).
    pub fn push(&mut self, bytes: &[u8], mut f: impl FnMut(Line<'_>)) {
        for &b in bytes {
            if b == b'\n' {
                if self.discarding {
                    self.discarding = false;
                } else {
                    let line = match self.buf.split_last() {
                        Some((b'\r', rest)) => rest,
                        _ => &self.buf[..],
                    };
                    f(Line::Complete(line));
                }
                self.buf.clear();
                continue;
            }
            if self.discarding {
                continue;
            }
            let allow_cr = self.buf.len() == MAX_LINE && b == b'\r';
            if self.buf.len() >= MAX_LINE && !allow_cr {
                self.buf.clear();
                self.buf.shrink_to(MAX_LINE + 1);
                self.discarding = true;
                f(Line::TooLong);
                continue;
            }
            self.buf.push(b);
        }
    }

    /// Bytes of an unfinished line held.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// A bounded byte queue of text lines and data frames towards one connection.
///
/// Frames are all-or-nothing: [`OutQueue::push_frame`] refuses a frame that does not fit, so a slow
/// reader loses whole frames (which the sampler counts), never parts of one. Text lines (replies, log
/// lines) may use an extra `text_slack` bytes above the frame bound so a reader busy with data still
/// gets its replies; beyond that they are dropped and counted too.
#[derive(Debug, Clone)]
pub struct OutQueue {
    q: VecDeque<u8>,
    cap: usize,
    text_slack: usize,
    /// Text lines dropped because even the slack was full.
    pub dropped_text: u32,
    /// High-water mark of queued bytes.
    pub peak: usize,
    /// Bytes of an oversized reqSamples frame still queued (text may queue behind it).
    big: usize,
}

impl OutQueue {
    /// A queue holding at most `cap` bytes of frames plus `text_slack` bytes for text.
    pub fn new(cap: usize, text_slack: usize) -> Self {
        OutQueue {
            q: VecDeque::new(),
            cap,
            text_slack,
            dropped_text: 0,
            peak: 0,
            big: 0,
        }
    }

    /// Queues a text line; returns false (and counts it) if it does not fit.
    pub fn push_text(&mut self, bytes: &[u8]) -> bool {
        if self.q.len() + bytes.len() > self.cap + self.text_slack + self.big {
            self.dropped_text = self.dropped_text.saturating_add(1);
            return false;
        }
        self.q.extend(bytes);
        self.peak = self.peak.max(self.q.len());
        true
    }

    /// Whether a frame of `len` bytes fits now.
    pub fn fits_frame(&self, len: usize) -> bool {
        self.q.len() + len <= self.cap
    }

    /// Queues a whole frame, or nothing (returns false) if it does not fit.
    pub fn push_frame(&mut self, bytes: &[u8]) -> bool {
        if !self.fits_frame(bytes.len()) {
            return false;
        }
        self.q.extend(bytes);
        self.peak = self.peak.max(self.q.len());
        true
    }

    /// Queues a frame that may exceed the frame bound (a reqSamples answer of up to 48,000 bytes, of
    /// which at most one is outstanding per connection); refused only beyond that.
    pub fn push_big_frame(&mut self, bytes: &[u8]) -> bool {
        if self.q.len() + bytes.len()
            > self.cap.max(crate::wire::frame::MAX_FRAME_LEN) + self.text_slack
        {
            return false;
        }
        self.q.extend(bytes);
        self.big = self.big.saturating_add(bytes.len());
        self.peak = self.peak.max(self.q.len());
        true
    }

    /// Moves queued bytes into `buf`; returns how many.
    pub fn pop_into(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.q.len());
        for (dst, src) in buf.iter_mut().zip(self.q.drain(..n)) {
            *dst = src;
        }
        self.big = self.big.min(self.q.len());
        if self.q.is_empty() && self.q.capacity() > self.cap + self.text_slack {
            self.q.shrink_to(self.cap + self.text_slack);
        }
        n
    }

    /// Queued bytes.
    pub fn len(&self) -> usize {
        self.q.len()
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Heap bytes currently reserved.
    pub fn heap_bytes(&self) -> usize {
        self.q.capacity()
    }
}

/// What a connection waits for before its next line is processed (the ordering promise of §1:
/// replies leave in the order the lines arrived, so lines behind a pending answer are held).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A `reqSamples` frame.
    ReqSamples,
    /// An `ntp` result.
    Ntp,
    /// NTP confidence before a sampling session starts (`ntpConf`).
    SampleNtp,
}

/// Most command lines held back while an earlier `reqSamples` of the same connection waits for its
/// samples (to keep the one-reply-per-line ordering promise).
pub const MAX_DEFERRED: usize = 8;
/// Most bytes of command lines held back per connection.
pub const MAX_DEFERRED_BYTES: usize = 600;

/// One connection as the engine sees it.
#[derive(Debug, Clone)]
pub struct Session {
    /// Its id.
    pub id: ConnId,
    /// What it is.
    pub kind: ConnKind,
    /// Log lines at or above this level are sent to it.
    pub level: LogLevel,
    /// Line assembly.
    pub lines: LineBuffer,
    /// Bytes towards it.
    pub out: OutQueue,
    /// Passed `auth` (or no token configured).
    pub authenticated: bool,
    /// Wrong tokens so far.
    pub auth_failures: u8,
    /// Close once the output drained (restart replies, 3 auth failures, too many clients).
    pub close_after_drain: bool,
    /// Lines waiting behind a pending answer.
    pub deferred: VecDeque<Vec<u8>>,
    /// What the connection waits for, if anything.
    pub waiting: Option<Wait>,
    /// The engine asked the binding to close it ([`Event::Close`](crate::device::Event::Close) sent).
    pub closing: bool,
}

impl Session {
    /// A fresh session.
    pub fn new(id: ConnId, kind: ConnKind, out_cap: usize, text_slack: usize) -> Self {
        Session {
            id,
            kind,
            level: LogLevel::Info,
            lines: LineBuffer::new(),
            out: OutQueue::new(out_cap, text_slack),
            authenticated: false,
            auth_failures: 0,
            close_after_drain: false,
            deferred: VecDeque::new(),
            waiting: None,
            closing: false,
        }
    }

    /// Whether this connection takes commands (everything but the raw 54322 reader).
    pub fn takes_commands(&self) -> bool {
        !matches!(self.kind, ConnKind::RawStream { .. }) && !self.closing && !self.close_after_drain
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn collect(lb: &mut LineBuffer, bytes: &[u8]) -> Vec<String> {
        let mut v = Vec::new();
        lb.push(bytes, |l| {
            v.push(match l {
                Line::Complete(b) => String::from_utf8_lossy(b).into_owned(),
                Line::TooLong => "<long>".into(),
            })
        });
        v
    }

    #[test]
    fn limit_is_600_bytes_and_rest_is_discarded() {
        let mut lb = LineBuffer::new();
        let ok = alloc::vec![b'a'; 600];
        let mut input = ok.clone();
        input.extend_from_slice(b"\r\n");
        assert_eq!(collect(&mut lb, &input), [String::from_utf8(ok).unwrap()]);
        let mut long = alloc::vec![b'b'; 601];
        long.extend_from_slice(b"xyz\nnext\n");
        assert_eq!(collect(&mut lb, &long), ["<long>", "next"]);
        assert!(lb.buf.capacity() <= MAX_LINE + 1);
    }

    #[test]
    fn frames_are_all_or_nothing() {
        let mut q = OutQueue::new(10, 5);
        assert!(q.push_frame(&[0; 8]));
        assert!(!q.push_frame(&[0; 3]));
        assert!(q.push_text(&[1; 7]));
        assert!(!q.push_text(&[1; 1]));
        let mut buf = [0; 4];
        assert_eq!(q.pop_into(&mut buf), 4);
        assert_eq!(q.len(), 11);
    }
}
