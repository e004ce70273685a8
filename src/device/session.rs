//! Per-connection state: line assembly with the 600-byte limit, a bounded output queue, the
//! connection's own log level and its authentication state.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::{ConnId, ConnKind, Instant};
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
///
/// [`LineBuffer::feed`] stops after each line, so its caller decides whether it can take that line
/// now; if not, [`LineBuffer::hold`] keeps it (in the buffer it was assembled in) and the next
/// `feed` returns it again before taking any byte (back-pressure: the rest of the bytes stay with
/// the caller). [`LineBuffer::push`] takes everything.
#[derive(Debug, Clone, Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
    discarding: bool,
    /// What the last `feed` returned: `Some(true)` a complete line (in `buf`), `Some(false)` an
    /// over-long one; cleared by the next call unless held.
    last: Option<bool>,
    /// The caller could not take the last line: return it again.
    held: bool,
}

impl LineBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes bytes up to and including the end of the first line that finishes in them (or all of
    /// them if none does). Returns how many bytes it took and the line, if one finished (an
    /// over-long line is reported once, when it passes [`MAX_LINE`]; the rest of it up to its `\n`
    /// is discarded by later calls).
    pub fn feed(&mut self, bytes: &[u8]) -> (usize, Option<Line<'_>>) {
        if core::mem::take(&mut self.held) {
            match self.last {
                Some(true) => return (0, Some(Line::Complete(self.line()))),
                Some(false) => return (0, Some(Line::TooLong)),
                None => {}
            }
        }
        if self.last.take() == Some(true) {
            self.buf.clear();
        }
        let mut taken = 0;
        for &b in bytes {
            taken += 1;
            if b == b'\n' {
                if self.discarding {
                    self.discarding = false;
                    self.buf.clear();
                    continue;
                }
                self.last = Some(true);
                return (taken, Some(Line::Complete(self.line())));
            }
            if self.discarding {
                continue;
            }
            let allow_cr = self.buf.len() == MAX_LINE && b == b'\r';
            if self.buf.len() >= MAX_LINE && !allow_cr {
                self.buf.clear();
                self.buf.shrink_to(MAX_LINE + 1);
                self.discarding = true;
                self.last = Some(false);
                return (taken, Some(Line::TooLong));
            }
            self.buf.push(b);
        }
        (taken, None)
    }

    /// The line in `buf` without its `\r`.
    fn line(&self) -> &[u8] {
        match self.buf.split_last() {
            Some((b'\r', rest)) => rest,
            _ => &self.buf[..],
        }
    }

    /// Keeps the line the last [`feed`](Self::feed) returned: the next `feed` returns it again
    /// (taking no bytes).
    pub fn hold(&mut self) {
        self.held = self.last.is_some();
    }

    /// Whether a held line waits.
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// Feeds all bytes; calls `f` for every finished line (and once per over-long line).
    #[cfg(test)]
    pub fn push(&mut self, mut bytes: &[u8], mut f: impl FnMut(Line<'_>)) {
        while !bytes.is_empty() {
            let (n, line) = self.feed(bytes);
            if let Some(line) = line {
                f(line);
            }
            bytes = bytes.get(n..).unwrap_or_default();
        }
    }

    /// Bytes of an unfinished line held.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        match self.last {
            Some(true) if !self.held => 0,
            _ => self.buf.len(),
        }
    }

    /// Heap bytes reserved.
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }
}

/// A bounded byte queue of text lines and data frames towards one connection.
///
/// Frames are all-or-nothing: [`OutQueue::push_frame`] refuses a frame that does not fit, so a slow
/// reader loses whole frames (which the sampler counts), never parts of one. Log lines may use an
/// extra `text_slack` bytes above the frame bound; beyond that they are dropped and counted. Replies
/// are never dropped ([`OutQueue::push_reply`]): the connection stops taking lines instead.
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

    /// Queues a line the protocol owes this connection (a reply, the greeting, `Line too long`,
    /// the last line before an eviction) whether or not it fits: §1 promises one reply per line,
    /// so a reply is never dropped. The queue stays bounded because a connection whose queue is
    /// [`OutQueue::backlogged`] takes no further line until its reader catches up: beyond the
    /// bound only the replies of the lines already taken (one, or the few held behind a pending
    /// answer) can be added.
    pub fn push_reply(&mut self, bytes: &[u8]) {
        self.q.extend(bytes);
        self.peak = self.peak.max(self.q.len());
    }

    /// More is queued than frames may fill: the reader is behind, so the connection's next command
    /// line waits (its bytes stay with the binding) until the queue drains below the bound.
    pub fn backlogged(&self) -> bool {
        self.q.len() > self.cap + self.big
    }

    /// Queued bytes.
    #[cfg(test)]
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
    /// The device-wide `auth` throttle (docs/protocol.md §10): the `auth` is answered when it is due.
    Auth,
}

/// Work held behind a pending answer, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deferred {
    /// A complete command line (without its line end).
    Line(Vec<u8>),
    /// A line that exceeded [`MAX_LINE`]: answered with `Line too long` in its turn.
    TooLong,
}

impl Deferred {
    /// Bytes it holds.
    pub fn len(&self) -> usize {
        match self {
            Deferred::Line(l) => l.len(),
            Deferred::TooLong => 0,
        }
    }
}

/// Most command lines held back while an earlier answer of the same connection is pending (to keep
/// the one-reply-per-line ordering promise). A line beyond it stays in the connection's
/// [`LineBuffer`] ([`LineBuffer::hold`]) and the engine takes no more input from that connection
/// until there is room (back-pressure, see
/// [`Device::handle_input`](crate::device::Device::handle_input)): no line is ever dropped.
pub const MAX_DEFERRED: usize = 8;
/// Most bytes of command lines held back per connection (see [`MAX_DEFERRED`]).
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
    /// Close at this time even if the output has not drained (an evicted idle client that does not
    /// read).
    pub close_by: Option<Instant>,
    /// Work waiting behind a pending answer.
    pub deferred: VecDeque<Deferred>,
    /// What the connection waits for, if anything.
    pub waiting: Option<Wait>,
    /// The engine asked the binding to close it ([`Action::Close`](crate::device::Action::Close) sent).
    pub closing: bool,
    /// When its last complete line arrived (its connect time before the first): the idle clock of
    /// §1's eviction rule. Bytes that do not complete a line do not count.
    pub last_line_at: Instant,
}

impl Session {
    /// A fresh session, connected at `now`.
    pub fn new(
        id: ConnId,
        kind: ConnKind,
        out_cap: usize,
        text_slack: usize,
        now: Instant,
    ) -> Self {
        Session {
            id,
            kind,
            level: LogLevel::Info,
            lines: LineBuffer::new(),
            out: OutQueue::new(out_cap, text_slack),
            authenticated: false,
            auth_failures: 0,
            close_after_drain: false,
            close_by: None,
            deferred: VecDeque::new(),
            waiting: None,
            closing: false,
            last_line_at: now,
        }
    }

    /// Whether this connection takes commands (everything but the raw 54322 reader).
    pub fn takes_commands(&self) -> bool {
        !matches!(self.kind, ConnKind::RawStream { .. }) && !self.closing && !self.close_after_drain
    }

    /// Bytes of deferred lines held.
    pub fn deferred_bytes(&self) -> usize {
        self.deferred.iter().map(Deferred::len).sum()
    }

    /// Whether a line of `len` bytes can be taken now: processed at once (nothing pending) or held
    /// behind the pending answer within [`MAX_DEFERRED`] / [`MAX_DEFERRED_BYTES`].
    pub fn can_take(&self, len: usize) -> bool {
        self.waiting.is_none()
            || (self.deferred.len() < MAX_DEFERRED
                && self.deferred_bytes() + len <= MAX_DEFERRED_BYTES)
    }

    /// Queues deferred work (the caller checked [`Session::can_take`]).
    pub fn defer(&mut self, work: Deferred) {
        self.deferred.push_back(work);
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
    fn lines_end_at_lf_with_an_optional_cr() {
        let mut lb = LineBuffer::new();
        assert_eq!(
            collect(&mut lb, b"{\"cmd\":\"info\"}\r\n!\n"),
            ["{\"cmd\":\"info\"}", "!"]
        );
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
    fn feed_stops_after_each_line() {
        let mut lb = LineBuffer::new();
        let input = b"ab\r\ncd\nef";
        let (n, line) = lb.feed(input);
        assert_eq!((n, line), (4, Some(Line::Complete(&b"ab"[..]))));
        let (n2, line) = lb.feed(&input[4..]);
        assert_eq!((n2, line), (3, Some(Line::Complete(&b"cd"[..]))));
        assert_eq!(lb.feed(&input[7..]), (2, None));
        assert_eq!(lb.pending(), 2);
        let long = alloc::vec![b'x'; 700];
        let (n, line) = lb.feed(&long);
        assert_eq!((n, line), (599, Some(Line::TooLong)));
        assert_eq!(lb.feed(&long[599..]), (101, None));
        assert_eq!(lb.feed(b"z\nok\n"), (5, Some(Line::Complete(&b"ok"[..]))));
        assert_eq!(lb.pending(), 0);
        // a held line comes back first, taking no bytes
        lb.hold();
        assert_eq!(lb.pending(), 2);
        assert_eq!(lb.feed(b"next\n"), (0, Some(Line::Complete(&b"ok"[..]))));
        assert_eq!(lb.feed(b"next\n"), (5, Some(Line::Complete(&b"next"[..]))));
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
