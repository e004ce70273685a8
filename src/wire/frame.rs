//! `Data:` frames (docs/protocol.md §3): a zero-copy view, an encoder, the chunk-size rule, and a streaming
//! demultiplexer for the mixed `Info:` / `Data:` byte stream.
//!
//! Wire shape of one frame (everything little-endian):
//!
//! ```text
//! "Data:" | payload length: u16 LE | packet number: u32 LE | payload: f32 LE values, interleaved per sample
//!  5 B    |        2 B              |         4 B            |  payload length bytes (multiple of 4, ≤ 48,000)
//! ```
//!
//! Without prefix (`"prefix":false`, `FFMPEG`, port 54322) only the payload is sent; over serial each frame
//! is followed by `\r\n`. [`Framing`] names these variants.
//!
//! - [`Frame`] is a checked view over a buffer that starts with a frame ([`Frame::new_checked`] validates the
//!   header once; afterwards no accessor can panic).
//! - [`encode_frame`] / [`encode_frame_bytes`] write a frame into a caller's buffer; nothing allocates.
//! - [`chunk_size`] is the payload size rule the device uses to cut its sample stream into frames.
//! - [`Demux`] splits an arbitrarily fragmented TCP/serial byte stream into [`Event`]s: replies, log lines,
//!   other text lines and frames (with packet-number gap detection), with a bounded buffer.
//!
//! ```
//! use smartmeter::wire::frame::{encode_frame, Demux, Event, Frame, Framing};
//!
//! let mut buf = [0u8; 64];
//! let n = encode_frame(&mut buf, 7, &[230.0, 512.5], Framing::PREFIXED).unwrap();
//! let frame = Frame::new_checked(&buf[..n]).unwrap();
//! assert_eq!(frame.packet_number(), 7);
//! assert_eq!(frame.samples().collect::<Vec<f32>>(), [230.0, 512.5]);
//!
//! // The same bytes, split anywhere, after an `Info:` reply line:
//! let mut stream = b"Info:{\"error\":false,\"cmd\":\"stop\"}\r\n".to_vec();
//! stream.extend_from_slice(&buf[..n]);
//! let mut demux = Demux::new();
//! let mut seen = Vec::new();
//! for piece in stream.chunks(3) {
//!     demux.push(piece, |event| match event {
//!         Ok(Event::Reply(json)) => seen.push(format!("reply {}", String::from_utf8_lossy(json))),
//!         Ok(Event::Frame(f)) => seen.push(format!("frame {} {:?}", f.packet, f.samples().collect::<Vec<_>>())),
//!         other => seen.push(format!("{other:?}")),
//!     });
//! }
//! assert_eq!(seen, [r#"reply {"error":false,"cmd":"stop"}"#, "frame 7 [230.0, 512.5]"]);
//! ```

mod demux;

pub use demux::{DataFrame, Demux, DemuxError, DemuxStats, Event};

use core::iter::FusedIterator;
use core::slice::ChunksExact;

use nom::IResult;
use nom::Parser;

/// The 5 ASCII bytes every prefixed frame starts with.
pub const MAGIC: &[u8; 5] = b"Data:";
/// Header length: magic (5) + payload length (2) + packet number (4).
pub const HEADER_LEN: usize = 11;
/// The largest payload a frame may carry: 2000 six-channel samples of f32 (the largest reqSamples frame).
pub const MAX_PAYLOAD_LEN: usize = 48_000;
/// Bytes per value on the wire (f32 LE).
pub const VALUE_LEN: usize = 4;
/// The most values one frame can carry (`MAX_PAYLOAD_LEN / 4`).
pub const MAX_VALUES: usize = MAX_PAYLOAD_LEN / VALUE_LEN;
/// What follows each frame on a serial link.
pub const SERIAL_TRAILER: &[u8; 2] = b"\r\n";
/// The largest complete frame on the wire: header + maximum payload + serial trailer.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + MAX_PAYLOAD_LEN + SERIAL_TRAILER.len();

/// Why a frame could not be viewed or encoded. Each variant names the offending field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The buffer does not start with `Data:`.
    #[error("frame magic: expected `Data:`")]
    BadMagic,
    /// The buffer is shorter than the 11-byte header.
    #[error("frame header: need {HEADER_LEN} bytes, got {got}")]
    TruncatedHeader {
        /// Bytes available.
        got: usize,
    },
    /// The payload length field is not a multiple of 4 or exceeds 48,000.
    #[error("frame payload length {len}: must be a multiple of 4 and at most 48000")]
    BadLength {
        /// The length field as read (or as requested when encoding).
        len: usize,
    },
    /// The buffer ends before the payload announced by the header.
    #[error("frame payload: header announces {needed} bytes in total, buffer holds {got}")]
    TruncatedPayload {
        /// Header + payload length.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// The output buffer is too small for the encoded frame.
    #[error("output buffer: frame needs {needed} bytes, buffer has {got}")]
    BufferTooSmall {
        /// Encoded length.
        needed: usize,
        /// Buffer length.
        got: usize,
    },
}

/// The decoded header of a prefixed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Payload bytes after the header (a multiple of 4, at most [`MAX_PAYLOAD_LEN`]).
    pub payload_len: u16,
    /// Running packet number of the sampling session (starts at 0).
    pub packet_number: u32,
}

impl Header {
    /// Whether the payload length is one a receiver accepts (multiple of 4, at most 48,000).
    pub const fn is_valid_len(len: usize) -> bool {
        len.is_multiple_of(VALUE_LEN) && len <= MAX_PAYLOAD_LEN
    }

    /// Write the 11 header bytes.
    pub fn emit(&self, out: &mut [u8; HEADER_LEN]) {
        let [m0, m1, m2, m3, m4] = *MAGIC;
        let [l0, l1] = self.payload_len.to_le_bytes();
        let [p0, p1, p2, p3] = self.packet_number.to_le_bytes();
        *out = [m0, m1, m2, m3, m4, l0, l1, p0, p1, p2, p3];
    }

    /// Parse and validate a header at the start of `buf` (complete input: a short buffer is an error).
    pub fn parse(buf: &[u8]) -> Result<Header, FrameError> {
        match parse_header_streaming(buf) {
            Ok((_, header)) => {
                if Header::is_valid_len(usize::from(header.payload_len)) {
                    Ok(header)
                } else {
                    Err(FrameError::BadLength {
                        len: usize::from(header.payload_len),
                    })
                }
            }
            Err(nom::Err::Incomplete(_)) => {
                if MAGIC.starts_with(buf.get(..MAGIC.len()).unwrap_or(buf)) {
                    Err(FrameError::TruncatedHeader { got: buf.len() })
                } else {
                    Err(FrameError::BadMagic)
                }
            }
            Err(_) => Err(FrameError::BadMagic),
        }
    }
}

/// Streaming nom parser of the 11-byte header (does not validate the length).
///
/// Answers `Incomplete` while fewer than 11 bytes are present and the ones present agree with `Data:`.
pub(crate) fn parse_header_streaming(input: &[u8]) -> IResult<&[u8], Header> {
    use nom::bytes::streaming::tag;
    // Hot path of the demultiplexer (once per frame and piece): a whole header decodes with two
    // fixed-size loads; nom handles everything else (short input: `Needed`; wrong magic: error).
    if let Some((&[m0, m1, m2, m3, m4, l0, l1, p0, p1, p2, p3], rest)) =
        input.split_first_chunk::<HEADER_LEN>()
        && [m0, m1, m2, m3, m4] == *MAGIC
    {
        let header = Header {
            payload_len: u16::from_le_bytes([l0, l1]),
            packet_number: u32::from_le_bytes([p0, p1, p2, p3]),
        };
        return Ok((rest, header));
    }
    use nom::number::streaming::{le_u16, le_u32};
    (tag(&MAGIC[..]), le_u16, le_u32)
        .map(|(_, payload_len, packet_number)| Header {
            payload_len,
            packet_number,
        })
        .parse(input)
}

/// A read-only view over a buffer that starts with one prefixed `Data:` frame (smoltcp style).
///
/// [`Frame::new_checked`] validates the header and the buffer length once; afterwards every accessor is
/// total: none can panic, whatever the buffer holds. Bytes after the frame are ignored (see
/// [`Frame::total_len`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wrap a buffer without any check. Accessors still do not panic on a bad buffer; they answer 0 or
    /// an empty payload instead. Prefer [`Frame::new_checked`].
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wrap a buffer after checking magic, payload length (multiple of 4, ≤ 48,000) and that the buffer
    /// holds the whole payload.
    pub fn new_checked(buffer: T) -> Result<Frame<T>, FrameError> {
        let frame = Frame { buffer };
        frame.check_len()?;
        Ok(frame)
    }

    /// The check [`Frame::new_checked`] performs.
    pub fn check_len(&self) -> Result<(), FrameError> {
        let buf = self.buffer.as_ref();
        let header = Header::parse(buf)?;
        let needed = HEADER_LEN + usize::from(header.payload_len);
        if buf.len() < needed {
            return Err(FrameError::TruncatedPayload {
                needed,
                got: buf.len(),
            });
        }
        Ok(())
    }

    /// Give the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn header_bytes(&self) -> [u8; 6] {
        match self.buffer.as_ref().get(MAGIC.len()..HEADER_LEN) {
            Some(&[a, b, c, d, e, f]) => [a, b, c, d, e, f],
            _ => [0; 6],
        }
    }

    /// Payload length in bytes, as announced by the header.
    pub fn payload_len(&self) -> usize {
        let [a, b, ..] = self.header_bytes();
        usize::from(u16::from_le_bytes([a, b]))
    }

    /// The running packet number.
    pub fn packet_number(&self) -> u32 {
        let [_, _, a, b, c, d] = self.header_bytes();
        u32::from_le_bytes([a, b, c, d])
    }

    /// Header + payload length: where the next item of the stream starts (a serial link adds `\r\n`).
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    /// The payload bytes (f32 LE values).
    pub fn payload(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(HEADER_LEN..self.total_len())
            .unwrap_or(&[])
    }

    /// The payload as f32 values, in wire order (interleaved per sample in the order of the channels).
    pub fn samples(&self) -> Samples<'_> {
        Samples::new(self.payload())
    }

    /// The header fields.
    pub fn header(&self) -> Header {
        Header {
            payload_len: u16::try_from(self.payload_len()).unwrap_or(0),
            packet_number: self.packet_number(),
        }
    }
}

/// Iterator over the f32 LE values of a payload. A trailing partial value (impossible in a checked
/// frame) is ignored.
#[derive(Debug, Clone)]
pub struct Samples<'a> {
    chunks: ChunksExact<'a, u8>,
}

impl<'a> Samples<'a> {
    /// Iterate the f32 LE values of `payload`.
    pub fn new(payload: &'a [u8]) -> Samples<'a> {
        Samples {
            chunks: payload.chunks_exact(VALUE_LEN),
        }
    }
}

#[inline]
fn f32_le(chunk: &[u8]) -> f32 {
    match *chunk {
        [a, b, c, d] => f32::from_le_bytes([a, b, c, d]),
        _ => 0.0,
    }
}

impl Iterator for Samples<'_> {
    type Item = f32;

    #[inline]
    fn next(&mut self) -> Option<f32> {
        self.chunks.next().map(f32_le)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }

    fn nth(&mut self, n: usize) -> Option<f32> {
        self.chunks.nth(n).map(f32_le)
    }
}

impl DoubleEndedIterator for Samples<'_> {
    fn next_back(&mut self) -> Option<f32> {
        self.chunks.next_back().map(f32_le)
    }
}

impl ExactSizeIterator for Samples<'_> {}
impl FusedIterator for Samples<'_> {}

/// How frames are put on a link: with or without the `Data:` header, with or without `\r\n` after each.
///
/// | link | framing |
/// |---|---|
/// | TCP command connection, UDP, MQTT-less streams with `"prefix":true` | [`Framing::PREFIXED`] |
/// | `"prefix":false`, `FFMPEG`, port 54322 | [`Framing::RAW`] |
/// | serial port | [`Framing::SERIAL`] (or [`Framing::SERIAL_RAW`] with `"prefix":false`) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Framing {
    /// Write the 11-byte `Data:` header before the payload.
    pub prefix: bool,
    /// Write `\r\n` after the payload (serial links).
    pub line_end: bool,
}

impl Framing {
    /// `Data:` header + payload (TCP, UDP).
    pub const PREFIXED: Framing = Framing {
        prefix: true,
        line_end: false,
    };
    /// Payload only (`"prefix":false`, FFMPEG, port 54322).
    pub const RAW: Framing = Framing {
        prefix: false,
        line_end: false,
    };
    /// `Data:` header + payload + `\r\n` (serial).
    pub const SERIAL: Framing = Framing {
        prefix: true,
        line_end: true,
    };
    /// Payload + `\r\n` (serial with `"prefix":false`).
    pub const SERIAL_RAW: Framing = Framing {
        prefix: false,
        line_end: true,
    };

    /// The framing a session uses on `transport` with the request's `prefix` flag.
    pub const fn for_transport(transport: Transport, prefix: bool) -> Framing {
        Framing {
            prefix,
            line_end: matches!(transport, Transport::Serial),
        }
    }

    /// Bytes added around the payload (0, 2, 11 or 13).
    pub const fn overhead(self) -> usize {
        (if self.prefix { HEADER_LEN } else { 0 })
            + (if self.line_end {
                SERIAL_TRAILER.len()
            } else {
                0
            })
    }

    /// Encoded length of a frame carrying `n_values` f32 values.
    pub const fn encoded_len(self, n_values: usize) -> usize {
        self.overhead() + n_values.saturating_mul(VALUE_LEN)
    }
}

/// Write one frame carrying `samples` (f32, written LE) into `buf`; answers the number of bytes written.
///
/// Errors: more than [`MAX_VALUES`] values ([`FrameError::BadLength`]) or `buf` shorter than
/// [`Framing::encoded_len`] ([`FrameError::BufferTooSmall`]). On error `buf` is left untouched.
pub fn encode_frame(
    buf: &mut [u8],
    packet: u32,
    samples: &[f32],
    framing: Framing,
) -> Result<usize, FrameError> {
    let payload_len = samples.len().saturating_mul(VALUE_LEN);
    let (payload, _) = reserve(buf, packet, payload_len, framing)?;
    for (out, value) in payload.chunks_exact_mut(VALUE_LEN).zip(samples) {
        out.copy_from_slice(&value.to_le_bytes());
    }
    Ok(framing.overhead() + payload_len)
}

/// Write one frame whose payload is already f32 LE bytes (the device keeps its chunk buffer as bytes).
///
/// Errors: a payload length that is not a multiple of 4 or exceeds 48,000 ([`FrameError::BadLength`]),
/// or `buf` too small ([`FrameError::BufferTooSmall`]). On error `buf` is left untouched.
pub fn encode_frame_bytes(
    buf: &mut [u8],
    packet: u32,
    payload: &[u8],
    framing: Framing,
) -> Result<usize, FrameError> {
    let (out, _) = reserve(buf, packet, payload.len(), framing)?;
    out.copy_from_slice(payload);
    Ok(framing.overhead() + payload.len())
}

/// Validate, write header and trailer, and hand back the payload window of `buf`.
fn reserve(
    buf: &mut [u8],
    packet: u32,
    payload_len: usize,
    framing: Framing,
) -> Result<(&mut [u8], usize), FrameError> {
    if !Header::is_valid_len(payload_len) {
        return Err(FrameError::BadLength { len: payload_len });
    }
    let needed = framing.overhead() + payload_len;
    let got = buf.len();
    let frame = buf
        .get_mut(..needed)
        .ok_or(FrameError::BufferTooSmall { needed, got })?;
    let (head, rest) = if framing.prefix {
        let (head, rest) = frame
            .split_first_chunk_mut::<HEADER_LEN>()
            .ok_or(FrameError::BufferTooSmall { needed, got })?;
        Header {
            payload_len: u16::try_from(payload_len)
                .map_err(|_| FrameError::BadLength { len: payload_len })?,
            packet_number: packet,
        }
        .emit(head);
        (HEADER_LEN, rest)
    } else {
        (0, frame)
    };
    let (payload, trailer) = rest
        .split_at_mut_checked(payload_len)
        .ok_or(FrameError::BufferTooSmall { needed, got })?;
    if framing.line_end {
        trailer.copy_from_slice(SERIAL_TRAILER);
    }
    Ok((payload, head))
}

/// The link a sampling session streams over; it caps the chunk size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A TCP connection (command connection, port 54322, stream server): cap 1024 bytes.
    Tcp,
    /// UDP datagrams, one frame per datagram: cap 512 bytes.
    Udp,
    /// The serial port: cap 128 bytes.
    Serial,
}

impl Transport {
    /// The largest chunk (payload bytes per frame) on this link.
    pub const fn max_chunk_bytes(self) -> usize {
        match self {
            Transport::Tcp => 1024,
            Transport::Udp => 512,
            Transport::Serial => 128,
        }
    }
}

/// The chunk size rule of docs/protocol.md §3: payload bytes per frame for `rate_hz` samples per second of
/// `bytes_per_sample` bytes each on `transport`.
///
/// `cs = clamp(floor(0.1·r·b), b, 1024)`, rounded up to a power of two, capped at the transport's cap
/// (TCP 1024, UDP 512, serial 128), then cut down to a whole number of samples, at least one sample. It
/// aims at about ten frames per second, never more than one frame per sample. Integer arithmetic only.
///
/// A sample wider than the cap (impossible with the protocol's at most 6 channels = 24 bytes) gives one
/// sample per frame; `bytes_per_sample == 0` gives 0.
///
/// ```
/// use smartmeter::wire::frame::{chunk_size, Transport};
/// // 6 channels (24 B/sample) at 8000 Hz over TCP: 1024 cut down to 42 samples.
/// assert_eq!(chunk_size(8000, 24, Transport::Tcp), 1008);
/// // The seed's example (2 channels, 8 B/sample, 1 Hz): one sample per frame.
/// assert_eq!(chunk_size(1, 8, Transport::Tcp), 8);
/// ```
pub fn chunk_size(rate_hz: u32, bytes_per_sample: usize, transport: Transport) -> usize {
    let b = bytes_per_sample;
    if b == 0 {
        return 0;
    }
    const GLOBAL_CAP: usize = 1024;
    // floor(0.1·r·b) in integers: r ≤ u32::MAX and b ≤ usize::MAX fit u128.
    let tenth = (u128::from(rate_hz) * b as u128) / 10;
    let tenth = usize::try_from(tenth).unwrap_or(usize::MAX);
    let clamped = tenth.max(b).min(GLOBAL_CAP.max(b));
    let pow2 = clamped.checked_next_power_of_two().unwrap_or(usize::MAX);
    let capped = pow2.min(transport.max_chunk_bytes());
    let whole = capped - capped % b;
    whole.max(b)
}

/// Bytes per sample for `channels` f32 channels.
pub const fn bytes_per_sample(channels: usize) -> usize {
    channels.saturating_mul(VALUE_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn chunk_size_table() {
        use Transport::*;
        // (rate, bytes/sample, transport, expected, why)
        let table: &[(u32, usize, Transport, usize)] = &[
            // seed example: 2 channels (8 B), 1 Hz: floor(0.8)=0 -> clamp 8 -> pow2 8 -> 8
            (1, 8, Tcp, 8),
            // docs/protocol.md `v,i` = 6 channels (24 B), 1 Hz: clamp 24 -> pow2 32 -> whole samples 24
            (1, 24, Tcp, 24),
            // 6 ch 8000 Hz: 19200 -> clamp 1024 -> 1024 -> 42 samples = 1008
            (8000, 24, Tcp, 1008),
            (8000, 24, Udp, 504),
            (8000, 24, Serial, 120),
            // 2 ch 8000 Hz: 6400 -> 1024 -> 128 samples
            (8000, 8, Tcp, 1024),
            (8000, 8, Udp, 512),
            (8000, 8, Serial, 128),
            // 6 ch 50 Hz (derived measures max): 120 -> pow2 128 -> 5 samples = 120
            (50, 24, Tcp, 120),
            // 6 ch 100 Hz: 240 -> 256 -> 10 samples = 240
            (100, 24, Tcp, 240),
            // 2 ch 100 Hz: 80 -> 128 -> 16 samples
            (100, 8, Tcp, 128),
            // 2 ch 1000 Hz: 800 -> 1024
            (1000, 8, Tcp, 1024),
            (1000, 8, Udp, 512),
            // 6 ch 32000 Hz: capped
            (32000, 24, Tcp, 1008),
            // 6 ch 10 Hz: 24 -> 32 -> 24
            (10, 24, Tcp, 24),
            // 6 ch 20 Hz: 48 -> 64 -> 48
            (20, 24, Tcp, 48),
            // degenerate widths
            (8000, 0, Tcp, 0),
            (8000, 200, Serial, 200),
            (u32::MAX, 24, Tcp, 1008),
        ];
        for &(rate, b, transport, expected) in table {
            assert_eq!(
                chunk_size(rate, b, transport),
                expected,
                "rate {rate}, b {b}, {transport:?}"
            );
        }
    }

    #[test]
    fn chunk_size_invariants() {
        for transport in [Transport::Tcp, Transport::Udp, Transport::Serial] {
            for channels in 1..=6usize {
                let b = bytes_per_sample(channels);
                for rate in (1..=32000u32).step_by(37) {
                    let cs = chunk_size(rate, b, transport);
                    assert_eq!(cs % b, 0);
                    assert!(cs >= b);
                    assert!(cs <= transport.max_chunk_bytes());
                    assert!(Header::is_valid_len(cs));
                }
            }
        }
    }

    #[test]
    fn golden_header_bytes() {
        let mut buf = [0u8; 32];
        let n = encode_frame(&mut buf, 0x0403_0201, &[1.0, -2.0], Framing::PREFIXED).unwrap();
        assert_eq!(
            &buf[..n],
            b"Data:\x08\x00\x01\x02\x03\x04\x00\x00\x80\x3f\x00\x00\x00\xc0"
        );
    }

    #[test]
    fn encode_variants() {
        let mut buf = [0u8; 32];
        let n = encode_frame(&mut buf, 1, &[1.0], Framing::RAW).unwrap();
        assert_eq!(&buf[..n], b"\x00\x00\x80\x3f");
        let n = encode_frame(&mut buf, 1, &[1.0], Framing::SERIAL).unwrap();
        assert_eq!(
            &buf[..n],
            b"Data:\x04\x00\x01\x00\x00\x00\x00\x00\x80\x3f\r\n"
        );
        let n = encode_frame(&mut buf, 1, &[1.0], Framing::SERIAL_RAW).unwrap();
        assert_eq!(&buf[..n], b"\x00\x00\x80\x3f\r\n");
        assert_eq!(Framing::SERIAL.encoded_len(1), n + HEADER_LEN);
    }

    #[test]
    fn encode_errors_leave_buffer() {
        let mut buf = [0xAAu8; 12];
        assert_eq!(
            encode_frame(&mut buf, 1, &[1.0], Framing::PREFIXED),
            Err(FrameError::BufferTooSmall {
                needed: 15,
                got: 12
            })
        );
        assert_eq!(buf, [0xAA; 12]);
        assert_eq!(
            encode_frame_bytes(&mut buf, 1, &[1, 2, 3], Framing::RAW),
            Err(FrameError::BadLength { len: 3 })
        );
        let big = vec![0f32; MAX_VALUES + 1];
        let mut out = vec![0u8; MAX_FRAME_LEN + 8];
        assert_eq!(
            encode_frame(&mut out, 1, &big, Framing::PREFIXED),
            Err(FrameError::BadLength {
                len: MAX_PAYLOAD_LEN + 4
            })
        );
        let n = encode_frame(&mut out, 1, &big[..MAX_VALUES], Framing::SERIAL).unwrap();
        assert_eq!(n, MAX_FRAME_LEN);
    }

    #[test]
    fn view_checks() {
        assert_eq!(
            Frame::new_checked(&b"Data:"[..]),
            Err(FrameError::TruncatedHeader { got: 5 })
        );
        assert_eq!(
            Frame::new_checked(&b"Dat"[..]),
            Err(FrameError::TruncatedHeader { got: 3 })
        );
        assert_eq!(
            Frame::new_checked(&b"Info:{}\r\n\0\0"[..]),
            Err(FrameError::BadMagic)
        );
        assert_eq!(
            Frame::new_checked(&b"Data:\x03\x00\0\0\0\0abc"[..]),
            Err(FrameError::BadLength { len: 3 })
        );
        assert_eq!(
            Frame::new_checked(&b"Data:\x04\x00\0\0\0\0abc"[..]),
            Err(FrameError::TruncatedPayload {
                needed: 15,
                got: 14
            })
        );
        let f = Frame::new_checked(&b"Data:\x04\x00\x05\0\0\0\0\0\x80\x3fXYZ"[..]).unwrap();
        assert_eq!(f.payload_len(), 4);
        assert_eq!(f.packet_number(), 5);
        assert_eq!(f.total_len(), 15);
        assert_eq!(f.samples().collect::<Vec<_>>(), [1.0]);
        // unchecked garbage never panics
        let g = Frame::new_unchecked(&b"Da"[..]);
        assert_eq!(
            (g.payload_len(), g.packet_number(), g.payload()),
            (0, 0, &[][..])
        );
    }
}
