//! The streaming demultiplexer of the device-to-host byte stream (`Info:` lines and `Data:` frames).

use alloc::boxed::Box;
use alloc::vec;

use nom::IResult;
use nom::Parser;

use super::{HEADER_LEN, Header, MAGIC, MAX_FRAME_LEN, Samples, parse_header_streaming};

/// The prefix of every device-to-host text line.
pub const INFO: &[u8; 5] = b"Info:";

/// Default bound of one text line, `Info:` and `\r\n` included (64 KiB).
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// Bytes kept while hunting for a marker: a marker split across two pieces is still found.
const MARKER_TAIL: usize = INFO.len() - 1;

/// A problem in the byte stream. The demultiplexer reports it once, then resynchronises on the next
/// `Info:` or `Data:`; it never stops working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DemuxError {
    /// An `Info:` line grew past the line bound without a `\n`; the rest of it is skipped.
    #[error("text line: longer than {max} bytes without a line end")]
    LineTooLong {
        /// The bound in force (64 KiB by default).
        max: usize,
    },
    /// A `Data:` header announced a payload length that is not a multiple of 4 or exceeds 48,000.
    #[error("frame payload length {0}: must be a multiple of 4 and at most 48000")]
    BadFrameLength(u16),
    /// Bytes that were neither a line, a frame, nor CR/LF between them were skipped up to the next
    /// `Info:`/`Data:`.
    #[error("stream: skipped {skipped} bytes that were not an `Info:` line or a `Data:` frame")]
    Garbage {
        /// How many bytes were skipped.
        skipped: usize,
    },
}

/// One data frame as it came out of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataFrame<'a> {
    /// The frame's packet number.
    pub packet: u32,
    /// Packets missing right before this one (0 when contiguous, and for the first frame after
    /// construction or [`Demux::reset_packet_numbering`]).
    pub gap: u32,
    /// The payload: f32 LE values interleaved per sample.
    pub payload: &'a [u8],
}

impl<'a> DataFrame<'a> {
    /// The payload's f32 values in wire order.
    pub fn samples(&self) -> Samples<'a> {
        Samples::new(self.payload)
    }
}

/// One item of the stream, borrowing the demultiplexer's buffer until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A JSON reply: the bytes after `Info:`, without the line end (first non-blank byte is `{`).
    Reply(&'a [u8]),
    /// A log line: the bytes after `Info:` (`[L]MM/DD HH:MM:SS: text`), without the line end; feed it to
    /// [`crate::wire::log`].
    Log(&'a [u8]),
    /// Any other text line (`Setup done`, …): the bytes after `Info:`, without the line end.
    Text(&'a [u8]),
    /// A `Data:` frame.
    Frame(DataFrame<'a>),
}

/// Counters kept by a [`Demux`] since construction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DemuxStats {
    /// Bytes accepted by [`Demux::feed`].
    pub bytes: u64,
    /// Data frames yielded.
    pub frames: u64,
    /// Payload bytes in those frames.
    pub payload_bytes: u64,
    /// Text lines yielded (replies, logs, other text).
    pub lines: u64,
    /// Frames that arrived after a gap.
    pub gaps: u64,
    /// Packets missing in total (sum of the gaps).
    pub missing_packets: u64,
    /// Frames whose packet number went backwards (a new session without
    /// [`Demux::reset_packet_numbering`], or a duplicate); reported with gap 0.
    pub backwards: u64,
    /// Error events yielded.
    pub errors: u64,
    /// Bytes dropped while resynchronising.
    pub skipped_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// At an item boundary (or inside an unfinished item).
    Sync {
        /// For an unfinished `Info:` line: bytes after the start already searched for `\n`.
        scanned: usize,
    },
    /// Hunting for the next `Info:`/`Data:`; `report` says whether to yield `Garbage` when found.
    Hunt { skipped: usize, report: bool },
}

/// Streaming demultiplexer of the device-to-host stream (httparse / postcard-accumulator style).
///
/// Feed it pieces of the stream as they arrive, split anywhere, with [`Demux::push`] (events go to a
/// callback), or with [`Demux::feed`] + [`Demux::poll`]. It yields exactly the same events whatever the
/// split points.
///
/// Guarantees: one buffer, allocated in [`Demux::new`]; no allocation afterwards; no panic on any
/// input; a text line longer than the bound or a frame with an impossible length yields one
/// [`DemuxError`] and the demultiplexer resynchronises on the next `Info:`/`Data:`. CR and LF
/// between items (the serial `\r\n` after frames, stray line ends) are skipped silently.
///
/// [`Demux::push`] decodes complete items straight from the caller's bytes and copies only an
/// unfinished item into its buffer; [`Demux::feed`] always copies.
///
/// Packet numbers: each frame reports the packets missing before it (`gap`); the numbering restarts at
/// 0 with every sampling session, so call [`Demux::reset_packet_numbering`] when starting one.
pub struct Demux {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The last `poll` answered `None` and no byte came since: the next one would too.
    stalled: bool,
    core: Core,
}

/// Everything but the buffer, so the state machine can run over the buffer or over caller bytes.
#[derive(Debug, Clone, Copy)]
struct Core {
    max_line: usize,
    mode: Mode,
    next_packet: Option<u32>,
    /// Total length of the unfinished frame at the front, once its header is known (else 0).
    pending_frame: usize,
    stats: DemuxStats,
}

impl core::fmt::Debug for Demux {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Demux")
            .field("capacity", &self.buf.len())
            .field("buffered", &self.buffered())
            .field("core", &self.core)
            .finish()
    }
}

impl Default for Demux {
    fn default() -> Self {
        Demux::new()
    }
}

impl Demux {
    /// A demultiplexer with the default line bound (64 KiB); allocates its buffer
    /// (64 KiB) once.
    pub fn new() -> Demux {
        Demux::with_max_line_len(MAX_LINE_LEN)
    }

    /// A demultiplexer whose text lines may be at most `max_line_len` bytes (`Info:` through `\n`).
    /// The buffer holds `max(max_line_len, the largest frame)` bytes, allocated once.
    pub fn with_max_line_len(max_line_len: usize) -> Demux {
        let max_line = max_line_len.max(INFO.len() + 2);
        let capacity = max_line.max(MAX_FRAME_LEN);
        Demux {
            buf: vec![0u8; capacity].into_boxed_slice(),
            start: 0,
            end: 0,
            stalled: false,
            core: Core {
                max_line,
                mode: Mode::Sync { scanned: 0 },
                next_packet: None,
                pending_frame: 0,
                stats: DemuxStats::default(),
            },
        }
    }

    /// Size of the internal buffer in bytes (fixed at construction).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Bytes buffered and not yet yielded as events.
    pub fn buffered(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// The counters.
    pub fn stats(&self) -> DemuxStats {
        self.core.stats
    }

    /// Forget the last packet number: the next frame is the first of a new sampling session (gap 0).
    pub fn reset_packet_numbering(&mut self) {
        self.core.next_packet = None;
    }

    /// Drop everything buffered and the packet numbering (e.g. after a reconnect); keeps the counters.
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
        self.stalled = false;
        self.core.mode = Mode::Sync { scanned: 0 };
        self.core.next_packet = None;
        self.core.pending_frame = 0;
    }

    /// Copy as much of `bytes` as fits into the buffer; answers how many bytes were taken.
    ///
    /// Call [`Demux::poll`] until it answers `None` before feeding again: after that, at least one byte
    /// is always accepted, so a loop of `feed` + `poll` always makes progress.
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        if self.start > 0 && self.buf.len() - self.end < bytes.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let room = self.buf.get_mut(self.end..).unwrap_or_default();
        let n = room.len().min(bytes.len());
        if let (Some(dst), Some(src)) = (room.get_mut(..n), bytes.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.end += n;
        self.core.stats.bytes += n as u64;
        if n > 0 {
            self.stalled = false;
        }
        n
    }

    /// Feed all of `bytes`, calling `on_event` for every event, in order.
    ///
    /// Complete items are decoded in place from `bytes`; only the bytes that finish an item begun in an
    /// earlier piece, and the unfinished tail, are copied.
    pub fn push<F>(&mut self, mut bytes: &[u8], mut on_event: F)
    where
        F: FnMut(Result<Event<'_>, DemuxError>),
    {
        loop {
            while let Some(event) = self.poll() {
                on_event(event);
            }
            if bytes.is_empty() {
                return;
            }
            if self.buffered() == 0 {
                // Zero-copy: run the state machine over the caller's bytes.
                self.start = 0;
                self.end = 0;
                let len = bytes.len();
                loop {
                    // Whole frames and lines at the front decode straight from `bytes`.
                    if let Some((n, event)) = self.core.fast_item(bytes) {
                        let (item, rest) = bytes.split_at_checked(n).unwrap_or((bytes, &[]));
                        bytes = rest;
                        on_event(Ok(event.resolve(item)));
                        continue;
                    }
                    let (n, step) = self.core.step(bytes);
                    let consumed = bytes.get(..n).unwrap_or_default();
                    bytes = bytes.get(n..).unwrap_or_default();
                    match step {
                        Some(step) => on_event(step.event(consumed)),
                        None => break,
                    }
                }
                self.core.stats.bytes += (len - bytes.len()) as u64;
                // The unfinished tail (an item shorter than the buffer, or a marker tail) is copied
                // whole; `feed` takes what fits and the loop goes on with anything left.
                let n = self.feed(bytes);
                bytes = bytes.get(n..).unwrap_or_default();
                // The buffer now holds exactly what stalled the state machine: polling it again
                // would answer `None`.
                self.stalled = bytes.is_empty();
                continue;
            }
            let want = self.wanted(bytes);
            let n = self.feed(bytes.get(..want).unwrap_or(bytes));
            bytes = bytes.get(n..).unwrap_or_default();
        }
    }

    /// How many of `next` to copy so that the buffered, unfinished item can complete (and the buffer
    /// empties, letting [`Demux::push`] go back to decoding in place).
    fn wanted(&self, next: &[u8]) -> usize {
        let avail = self.buf.get(self.start..self.end).unwrap_or_default();
        let want = match self.core.mode {
            Mode::Hunt { .. } => next.len(),
            Mode::Sync { .. } if self.core.pending_frame > 0 => {
                self.core.pending_frame.saturating_sub(avail.len()).max(1)
            }
            Mode::Sync { .. } if avail.starts_with(INFO) => next
                .iter()
                .position(|&b| b == b'\n')
                .map_or(next.len(), |at| at + 1),
            Mode::Sync { .. } => match parse_header_streaming(avail) {
                Ok((_, header)) => (HEADER_LEN + usize::from(header.payload_len))
                    .saturating_sub(avail.len())
                    .max(1),
                Err(_) => HEADER_LEN.saturating_sub(avail.len()).max(1),
            },
        };
        want.min(next.len())
    }

    /// The next complete event, an error event, or `None` when more bytes are needed.
    pub fn poll(&mut self) -> Option<Result<Event<'_>, DemuxError>> {
        // An empty buffer never yields (the state machine answers `None` without changing state),
        // and a stalled one neither: skip the state machine.
        if self.stalled || self.start >= self.end {
            return None;
        }
        let avail = self.buf.get(self.start..self.end).unwrap_or_default();
        if let Some((n, event)) = self.core.fast_item(avail) {
            let item = self.buf.get(self.start..self.start + n).unwrap_or_default();
            self.start += n;
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            }
            return Some(Ok(event.resolve(item)));
        }
        let (n, step) = self.core.step(avail);
        let consumed = self.buf.get(self.start..self.start + n).unwrap_or_default();
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        self.stalled = step.is_none();
        step.map(|step| step.event(consumed))
    }
}

/// An event found by [`Core::fast_item`], as ranges into the item's bytes.
#[derive(Debug, Clone, Copy)]
enum FastEvent {
    Frame { packet: u32, gap: u32, to: usize },
    Line { to: usize },
}

impl FastEvent {
    fn resolve(self, item: &[u8]) -> Event<'_> {
        match self {
            FastEvent::Frame { packet, gap, to } => Event::Frame(DataFrame {
                packet,
                gap,
                payload: item.get(HEADER_LEN..to).unwrap_or_default(),
            }),
            FastEvent::Line { to } => classify_line(item.get(INFO.len()..to).unwrap_or_default()),
        }
    }
}

impl Core {
    /// The common case in one pass: in sync, `all` starts with a whole, valid `Data:` frame or a
    /// whole `Info:` line within the bound. Answers its length and event, with the same state and
    /// counter updates as [`Core::step`]; `None` leaves everything to `step` (partial items, CR/LF,
    /// errors, garbage).
    #[inline]
    fn fast_item(&mut self, all: &[u8]) -> Option<(usize, FastEvent)> {
        if self.mode != (Mode::Sync { scanned: 0 }) {
            return None;
        }
        let (head, rest) = all.split_first_chunk::<HEADER_LEN>()?;
        let [m0, m1, m2, m3, m4, l0, l1, p0, p1, p2, p3] = *head;
        let marker = [m0, m1, m2, m3, m4];
        if marker == *MAGIC {
            let len = usize::from(u16::from_le_bytes([l0, l1]));
            if !Header::is_valid_len(len) || rest.len() < len {
                return None;
            }
            let packet = u32::from_le_bytes([p0, p1, p2, p3]);
            self.pending_frame = 0;
            let gap = self.frame_done(packet, len);
            let to = HEADER_LEN + len;
            return Some((to, FastEvent::Frame { packet, gap, to }));
        }
        if marker == *INFO {
            let body = all.get(INFO.len()..)?;
            let at = body.iter().position(|&b| b == b'\n')?;
            let nl = INFO.len() + at;
            if nl >= self.max_line {
                return None;
            }
            let mut to = nl;
            if nl > INFO.len() && all.get(nl - 1) == Some(&b'\r') {
                to -= 1;
            }
            self.stats.lines += 1;
            return Some((nl + 1, FastEvent::Line { to }));
        }
        None
    }

    /// Packet numbering and counters for a frame with `packet` and `len` payload bytes; its gap.
    #[inline]
    fn frame_done(&mut self, packet: u32, len: usize) -> u32 {
        let gap = match self.next_packet {
            None => 0,
            Some(expected) => {
                let ahead = packet.wrapping_sub(expected);
                if ahead > u32::MAX / 2 {
                    self.stats.backwards += 1;
                    0
                } else {
                    ahead
                }
            }
        };
        if gap > 0 {
            self.stats.gaps += 1;
            self.stats.missing_packets += u64::from(gap);
        }
        self.next_packet = Some(packet.wrapping_add(1));
        self.stats.frames += 1;
        self.stats.payload_bytes += len as u64;
        gap
    }

    /// Advance the state machine over `all`: answers how many bytes were consumed and the event found,
    /// as ranges into the consumed bytes (so the caller takes the borrow).
    fn step(&mut self, all: &[u8]) -> (usize, Option<Step>) {
        let mut pos = 0;
        loop {
            let avail = all.get(pos..).unwrap_or_default();
            match self.mode {
                Mode::Hunt { skipped, report } => match find_marker(avail) {
                    Some(at) => {
                        pos += at;
                        self.stats.skipped_bytes += at as u64;
                        self.mode = Mode::Sync { scanned: 0 };
                        let skipped = skipped.saturating_add(at);
                        if report && skipped > 0 {
                            return (pos, Some(self.error(DemuxError::Garbage { skipped })));
                        }
                    }
                    None => {
                        let drop = avail.len().saturating_sub(MARKER_TAIL);
                        self.stats.skipped_bytes += drop as u64;
                        self.mode = Mode::Hunt {
                            skipped: skipped.saturating_add(drop),
                            report,
                        };
                        return (pos + drop, None);
                    }
                },
                Mode::Sync { scanned } => {
                    let Some(&first) = avail.first() else {
                        return (pos, None);
                    };
                    if first == b'\r' || first == b'\n' {
                        pos += 1;
                        continue;
                    }
                    let (n, step) = if starts_with_or_prefix(avail, MAGIC) {
                        self.step_frame(avail)
                    } else if starts_with_or_prefix(avail, INFO) {
                        self.step_line(avail, scanned)
                    } else {
                        // Not CR/LF, not a (partial) marker: hunt from the next byte.
                        pos += 1;
                        self.stats.skipped_bytes += 1;
                        self.mode = Mode::Hunt {
                            skipped: 1,
                            report: true,
                        };
                        continue;
                    };
                    return (pos + n, step.map(|s| s.offset(pos)));
                }
            }
        }
    }

    fn error(&mut self, e: DemuxError) -> Step {
        self.stats.errors += 1;
        Step::Error(e)
    }

    fn step_frame(&mut self, avail: &[u8]) -> (usize, Option<Step>) {
        let header = match parse_header_streaming(avail) {
            Ok((_, header)) => header,
            // Fewer than 11 bytes that agree with `Data:` so far.
            Err(_) => return (0, None),
        };
        let len = usize::from(header.payload_len);
        if !Header::is_valid_len(len) {
            // Skip the marker only: the next real item may start inside the bogus "header".
            self.stats.skipped_bytes += MAGIC.len() as u64;
            self.mode = Mode::Hunt {
                skipped: 0,
                report: false,
            };
            let e = self.error(DemuxError::BadFrameLength(header.payload_len));
            return (MAGIC.len(), Some(e));
        }
        let total = HEADER_LEN + len;
        if avail.len() < total {
            self.pending_frame = total;
            return (0, None);
        }
        self.pending_frame = 0;
        let packet = header.packet_number;
        let gap = self.frame_done(packet, len);
        let step = Step::Frame {
            packet,
            gap,
            from: HEADER_LEN,
            to: total,
        };
        (total, Some(step))
    }

    fn step_line(&mut self, avail: &[u8], scanned: usize) -> (usize, Option<Step>) {
        let body_from = INFO.len().max(scanned);
        match parse_line_end(avail.get(body_from..).unwrap_or_default()) {
            Ok((_, at)) => {
                // `at` is the offset of `\n` within the searched part.
                let nl = body_from + at;
                if nl >= self.max_line {
                    // Same verdict as for a line that arrives in pieces (see below).
                    return (INFO.len(), Some(self.line_too_long()));
                }
                let mut to = nl;
                if nl > INFO.len() && avail.get(nl - 1) == Some(&b'\r') {
                    to -= 1;
                }
                self.mode = Mode::Sync { scanned: 0 };
                self.stats.lines += 1;
                (
                    nl + 1,
                    Some(Step::Line {
                        from: INFO.len(),
                        to,
                    }),
                )
            }
            Err(_) => {
                // No `\n` in `avail`: the line is at least `avail.len() + 1` bytes long.
                if avail.len() >= self.max_line {
                    return (INFO.len(), Some(self.line_too_long()));
                }
                self.mode = Mode::Sync {
                    scanned: avail.len().max(INFO.len()),
                };
                (0, None)
            }
        }
    }

    /// Report an over-long line and hunt for the next marker after its `Info:`.
    fn line_too_long(&mut self) -> Step {
        self.stats.skipped_bytes += INFO.len() as u64;
        self.mode = Mode::Hunt {
            skipped: 0,
            report: false,
        };
        self.error(DemuxError::LineTooLong { max: self.max_line })
    }
}

/// An event as index ranges into the bytes a step consumed.
#[derive(Debug, Clone, Copy)]
enum Step {
    Line {
        from: usize,
        to: usize,
    },
    Frame {
        packet: u32,
        gap: u32,
        from: usize,
        to: usize,
    },
    Error(DemuxError),
}

impl Step {
    fn offset(self, by: usize) -> Step {
        match self {
            Step::Line { from, to } => Step::Line {
                from: from + by,
                to: to + by,
            },
            Step::Frame {
                packet,
                gap,
                from,
                to,
            } => Step::Frame {
                packet,
                gap,
                from: from + by,
                to: to + by,
            },
            Step::Error(e) => Step::Error(e),
        }
    }

    fn event(self, consumed: &[u8]) -> Result<Event<'_>, DemuxError> {
        match self {
            Step::Line { from, to } => {
                Ok(classify_line(consumed.get(from..to).unwrap_or_default()))
            }
            Step::Frame {
                packet,
                gap,
                from,
                to,
            } => Ok(Event::Frame(DataFrame {
                packet,
                gap,
                payload: consumed.get(from..to).unwrap_or_default(),
            })),
            Step::Error(e) => Err(e),
        }
    }
}

/// Streaming nom parser: the offset of the first `\n`, or `Incomplete`.
fn parse_line_end(input: &[u8]) -> IResult<&[u8], usize> {
    nom::bytes::streaming::take_until(&b"\n"[..])
        .map(<[u8]>::len)
        .parse(input)
}

/// Whether `avail` starts with `marker`, or is a proper prefix of it (more bytes may complete it).
fn starts_with_or_prefix(avail: &[u8], marker: &[u8; 5]) -> bool {
    if let Some(head) = avail.first_chunk::<5>() {
        return head == marker;
    }
    let n = avail.len().min(marker.len());
    avail.get(..n) == marker.get(..n)
}

/// The offset of the first `Info:` or `Data:` in `hay` (complete matches only).
fn find_marker(hay: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(rest) = hay.get(from..) {
        let at = rest.iter().position(|&b| b == b'I' || b == b'D')?;
        let cand = rest.get(at..).unwrap_or_default();
        if cand.starts_with(INFO) || cand.starts_with(MAGIC) {
            return Some(from + at);
        }
        from += at + 1;
    }
    None
}

/// Classify the bytes after `Info:` (line end removed) with complete nom parsers.
fn classify_line(line: &[u8]) -> Event<'_> {
    fn json(i: &[u8]) -> IResult<&[u8], ()> {
        use nom::bytes::complete::tag;
        use nom::character::complete::multispace0;
        (multispace0, tag(&b"{"[..])).map(|_| ()).parse(i)
    }
    fn log(i: &[u8]) -> IResult<&[u8], ()> {
        use nom::character::complete::{char, one_of};
        (char('['), one_of("ADIWE"), char(']')).map(|_| ()).parse(i)
    }
    if json(line).is_ok() {
        Event::Reply(line)
    } else if log(line).is_ok() {
        Event::Log(line)
    } else {
        Event::Text(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn events(demux: &mut Demux, bytes: &[u8]) -> Vec<alloc::string::String> {
        use alloc::format;
        let mut out = Vec::new();
        demux.push(bytes, |e| {
            out.push(match e {
                Ok(Event::Reply(b)) => format!("R {}", core::str::from_utf8(b).unwrap()),
                Ok(Event::Log(b)) => format!("L {}", core::str::from_utf8(b).unwrap()),
                Ok(Event::Text(b)) => format!("T {}", core::str::from_utf8(b).unwrap()),
                Ok(Event::Frame(f)) => format!("F {} {} {}", f.packet, f.gap, f.payload.len()),
                Err(e) => format!("E {e:?}"),
            })
        });
        out
    }

    #[test]
    fn marker_search() {
        assert_eq!(find_marker(b"xxDaInfo:"), Some(4));
        assert_eq!(find_marker(b"Data"), None);
        assert_eq!(find_marker(b"IIIData:"), Some(3));
    }

    #[test]
    fn small_line_bound() {
        let mut d = Demux::with_max_line_len(16);
        let ev = events(&mut d, b"Info:0123456789abcdef\r\nInfo:ok\r\n");
        assert_eq!(ev, ["E LineTooLong { max: 16 }", "T ok"]);
        assert_eq!(d.stats().errors, 1);
    }

    #[test]
    fn blank_line_and_bare_info() {
        let mut d = Demux::new();
        let ev = events(&mut d, b"Info:\r\nInfo:\n\r\n");
        assert_eq!(ev, ["T ", "T "]);
    }
}
