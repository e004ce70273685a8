//! `Data:` frames and the `Info:`/`Data:` stream demultiplexer (docs/protocol.md §1, §3, §4), tested against
//! golden bytes and with property tests over arbitrary split points and arbitrary input.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;
use smartmeter::wire::frame::{Demux, DemuxStats};
use smartmeter::wire::frame::{
    DemuxError, Event, Frame, FrameError, Framing, HEADER_LEN, MAX_PAYLOAD_LEN, Samples, Transport,
    chunk_size, encode_frame, encode_frame_bytes,
};

// ---------------------------------------------------------------------------------------------------
// An allocator that counts allocations of the current thread, to assert "no allocation per byte".

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a const-initialised
// thread-local `Cell` that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// ---------------------------------------------------------------------------------------------------
// Owned events, so runs can be compared.

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Reply(Vec<u8>),
    Log(Vec<u8>),
    Text(Vec<u8>),
    Frame {
        packet: u32,
        gap: u32,
        payload: Vec<u8>,
    },
    Err(DemuxError),
}

fn own(event: Result<Event<'_>, DemuxError>) -> Ev {
    match event {
        Ok(Event::Reply(b)) => Ev::Reply(b.to_vec()),
        Ok(Event::Log(b)) => Ev::Log(b.to_vec()),
        Ok(Event::Text(b)) => Ev::Text(b.to_vec()),
        Ok(Event::Frame(f)) => Ev::Frame {
            packet: f.packet,
            gap: f.gap,
            payload: f.payload.to_vec(),
        },
        Err(e) => Ev::Err(e),
    }
}

/// Feed `stream` cut at `cuts` (offsets, any order, may repeat or exceed the length).
fn decode_split(demux: &mut Demux, stream: &[u8], cuts: &[usize]) -> Vec<Ev> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(stream.len())).collect();
    cuts.push(0);
    cuts.push(stream.len());
    cuts.sort_unstable();
    let mut out = Vec::new();
    for w in cuts.windows(2) {
        demux.push(&stream[w[0]..w[1]], |e| out.push(own(e)));
    }
    out
}

/// The same through the copying API: `feed` + `poll` in pieces of `piece` bytes.
fn decode_feed_poll(demux: &mut Demux, stream: &[u8], piece: usize) -> Vec<Ev> {
    let mut out = Vec::new();
    for mut chunk in stream.chunks(piece.max(1)) {
        while !chunk.is_empty() {
            let n = demux.feed(chunk);
            chunk = &chunk[n..];
            while let Some(e) = demux.poll() {
                out.push(own(e));
            }
        }
    }
    out
}

fn decode_whole(stream: &[u8]) -> (Vec<Ev>, DemuxStats) {
    let mut demux = Demux::new();
    let mut out = Vec::new();
    demux.push(stream, |e| out.push(own(e)));
    (out, demux.stats())
}

fn frame(packet: u32, values: &[f32], framing: Framing) -> Vec<u8> {
    let mut buf = vec![0u8; framing.encoded_len(values.len())];
    let n = encode_frame(&mut buf, packet, values, framing).unwrap();
    assert_eq!(n, buf.len());
    buf
}

fn le(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

// ---------------------------------------------------------------------------------------------------
// Golden bytes.

#[test]
fn golden_six_channel_frame() {
    // One sample of `v,i,v,i,v,i` (docs/protocol.md §5): 24 payload bytes, packet 0.
    let values = [230.0f32, 1000.0, 231.5, -250.0, 0.0, 1.0];
    let bytes = frame(0, &values, Framing::PREFIXED);
    #[rustfmt::skip]
    let golden: &[u8] = &[
        b'D', b'a', b't', b'a', b':',
        0x18, 0x00,                         // payload length 24, LE
        0x00, 0x00, 0x00, 0x00,             // packet number 0, LE
        0x00, 0x00, 0x66, 0x43,             // 230.0
        0x00, 0x00, 0x7a, 0x44,             // 1000.0
        0x00, 0x80, 0x67, 0x43,             // 231.5
        0x00, 0x00, 0x7a, 0xc3,             // -250.0
        0x00, 0x00, 0x00, 0x00,             // 0.0
        0x00, 0x00, 0x80, 0x3f,             // 1.0
    ];
    assert_eq!(bytes, golden);
    let view = Frame::new_checked(&bytes[..]).unwrap();
    assert_eq!(view.payload_len(), 24);
    assert_eq!(view.packet_number(), 0);
    assert_eq!(view.total_len(), 35);
    assert_eq!(view.payload(), &golden[HEADER_LEN..]);
    assert_eq!(view.samples().collect::<Vec<_>>(), values);
}

#[test]
fn golden_packet_number_is_little_endian() {
    let bytes = frame(0x0102_0304, &[], Framing::PREFIXED);
    assert_eq!(bytes, b"Data:\x00\x00\x04\x03\x02\x01");
    let view = Frame::new_checked(&bytes[..]).unwrap();
    assert_eq!(view.packet_number(), 0x0102_0304);
    assert_eq!(view.samples().count(), 0);
}

#[test]
fn raw_and_serial_framings() {
    let values = [1.0f32, -2.0];
    // prefix off (FFMPEG, port 54322, "prefix":false): only f32le.
    assert_eq!(frame(9, &values, Framing::RAW), le(&values));
    // serial: the prefixed frame followed by CR LF.
    let mut serial = frame(9, &values, Framing::PREFIXED);
    serial.extend_from_slice(b"\r\n");
    assert_eq!(frame(9, &values, Framing::SERIAL), serial);
    let mut serial_raw = le(&values);
    serial_raw.extend_from_slice(b"\r\n");
    assert_eq!(frame(9, &values, Framing::SERIAL_RAW), serial_raw);
    assert_eq!(
        Framing::for_transport(Transport::Serial, true),
        Framing::SERIAL
    );
    assert_eq!(Framing::for_transport(Transport::Tcp, false), Framing::RAW);
    assert_eq!(
        Framing::for_transport(Transport::Udp, true),
        Framing::PREFIXED
    );
    assert_eq!(Framing::PREFIXED.encoded_len(252), 1019);
    assert_eq!(Framing::SERIAL.encoded_len(30), 133);
}

#[test]
fn byte_payload_encoder_matches_value_encoder() {
    let values = [0.5f32, 7.25, -0.0, f32::MAX];
    let mut a = [0u8; 64];
    let mut b = [0u8; 64];
    let na = encode_frame(&mut a, 3, &values, Framing::SERIAL).unwrap();
    let nb = encode_frame_bytes(&mut b, 3, &le(&values), Framing::SERIAL).unwrap();
    assert_eq!(a[..na], b[..nb]);
}

#[test]
fn view_rejects_bad_headers() {
    assert_eq!(
        Frame::new_checked(&b"Data:\x02\x00\0\0\0\0xx"[..]).unwrap_err(),
        FrameError::BadLength { len: 2 }
    );
    // 48,004 = 0xBB84: a multiple of 4 but over the limit.
    assert_eq!(
        Frame::new_checked(&b"Data:\x84\xbb\0\0\0\0"[..]).unwrap_err(),
        FrameError::BadLength { len: 48_004 }
    );
    assert_eq!(
        Frame::new_checked(&b"data:\0\0\0\0\0\0"[..]).unwrap_err(),
        FrameError::BadMagic
    );
    assert_eq!(
        Frame::new_checked(&b"Data:\0\0\0"[..]).unwrap_err(),
        FrameError::TruncatedHeader { got: 8 }
    );
    // The largest legal payload is accepted.
    let big = vec![0.25f32; MAX_PAYLOAD_LEN / 4];
    let bytes = frame(1, &big, Framing::PREFIXED);
    assert_eq!(
        Frame::new_checked(&bytes[..]).unwrap().payload_len(),
        48_000
    );
}

#[test]
fn chunk_size_seed_example_and_protocol() {
    // The seed's sample reply (rate 1, TCP) says `"chunksize":8` with `"measurements":2`: that device
    // sent 2 channels (8 B/sample), and the rule gives 8.
    assert_eq!(chunk_size(1, 8, Transport::Tcp), 8);
    // Under docs/protocol.md `v,i` means 6 channels (24 B/sample): the same request answers 24.
    assert_eq!(chunk_size(1, 24, Transport::Tcp), 24);
    // Defaults (6 channels, 8000 Hz) on each transport: whole samples under the cap.
    assert_eq!(chunk_size(8000, 24, Transport::Tcp), 1008);
    assert_eq!(chunk_size(8000, 24, Transport::Udp), 504);
    assert_eq!(chunk_size(8000, 24, Transport::Serial), 120);
}

// ---------------------------------------------------------------------------------------------------
// Demultiplexer: transcripts.

/// A realistic session: the unprompted info reply, a liveness log, `Setup done`, the sample reply
/// of the seed, frames, a sampling log line, the stop reply.
fn transcript(framing: Framing) -> (Vec<u8>, Vec<Ev>) {
    let mut s = Vec::new();
    let mut ev = Vec::new();
    let line = |s: &mut Vec<u8>, ev: &mut Vec<Ev>, text: &str, e: fn(Vec<u8>) -> Ev| {
        s.extend_from_slice(b"Info:");
        s.extend_from_slice(text.as_bytes());
        s.extend_from_slice(b"\r\n");
        ev.push(e(text.as_bytes().to_vec()));
    };
    line(
        &mut s,
        &mut ev,
        r#"{"cmd":"info","type":"smartmeter","version":"2.2","name":"smartmeterX","state":"idle"}"#,
        Ev::Reply,
    );
    line(&mut s, &mut ev, "[I]03/02 15:04:01: ", Ev::Log);
    line(&mut s, &mut ev, "Setup done", Ev::Text);
    line(
        &mut s,
        &mut ev,
        r#"{"error":false,"measures":"v,i","chunksize":8,"samplingrate":1,"conn_type":"TCP","measurements":2,"prefix":true,"flowCtr":false,"cmd":"sample","unit":"V,mA","startTs":"1614697441.119"}"#,
        Ev::Reply,
    );
    for packet in 0..3u32 {
        let values = [packet as f32, 1.5, -3.0, 4.0, 5.0, 6.0];
        s.extend_from_slice(&frame(packet, &values, framing));
        ev.push(Ev::Frame {
            packet,
            gap: 0,
            payload: le(&values),
        });
        if packet == 1 {
            line(&mut s, &mut ev, "[I]03/02 15:04:02: 1.00Hz, 2s", Ev::Log);
        }
    }
    line(
        &mut s,
        &mut ev,
        r#"{"error":false,"cmd":"stop","msg":"Received stop command","samples":3}"#,
        Ev::Reply,
    );
    (s, ev)
}

#[test]
fn demux_transcript_tcp() {
    let (stream, expected) = transcript(Framing::PREFIXED);
    let (events, stats) = decode_whole(&stream);
    assert_eq!(events, expected);
    assert_eq!(stats.frames, 3);
    assert_eq!(stats.lines, 6);
    assert_eq!(stats.errors, 0);
    assert_eq!(stats.bytes, stream.len() as u64);
    // One byte at a time.
    let mut demux = Demux::new();
    let cuts: Vec<usize> = (0..stream.len()).collect();
    assert_eq!(decode_split(&mut demux, &stream, &cuts), expected);
}

#[test]
fn demux_transcript_serial() {
    // Serial frames carry `\r\n` after each frame; the events are the same.
    let (stream, expected) = transcript(Framing::SERIAL);
    assert_eq!(decode_whole(&stream).0, expected);
    let (tcp, _) = transcript(Framing::PREFIXED);
    assert_eq!(stream.len(), tcp.len() + 3 * 2);
}

#[test]
fn demux_log_line_payload_is_for_the_log_parser() {
    let (events, _) = decode_whole(b"Info:[W]11/27 07:40:00: Received unknown command\r\n");
    assert_eq!(
        events,
        [Ev::Log(
            b"[W]11/27 07:40:00: Received unknown command".to_vec()
        )]
    );
    // `[X]` with an unknown level is plain text, `{` after blanks is a reply.
    let (events, _) = decode_whole(b"Info:[X]hm\r\nInfo: {\"a\":1}\n");
    assert_eq!(
        events,
        [
            Ev::Text(b"[X]hm".to_vec()),
            Ev::Reply(b" {\"a\":1}".to_vec())
        ]
    );
}

#[test]
fn demux_payload_that_looks_like_text_is_not_split() {
    // A payload containing `Info:` and CR LF bytes is still one frame.
    let payload = b"Info:x\r\nData:\r\n\0";
    assert_eq!(payload.len() % 4, 0);
    let mut buf = [0u8; 64];
    let n = encode_frame_bytes(&mut buf, 5, payload, Framing::PREFIXED).unwrap();
    let mut stream = buf[..n].to_vec();
    stream.extend_from_slice(b"Info:ok\r\n");
    let (events, _) = decode_whole(&stream);
    assert_eq!(
        events,
        [
            Ev::Frame {
                packet: 5,
                gap: 0,
                payload: payload.to_vec()
            },
            Ev::Text(b"ok".to_vec())
        ]
    );
}

#[test]
fn demux_detects_gaps_and_resets() {
    let mut stream = Vec::new();
    for packet in [0u32, 1, 3, 7, 8] {
        stream.extend_from_slice(&frame(packet, &[0.0], Framing::PREFIXED));
    }
    let mut demux = Demux::new();
    let gaps: Vec<(u32, u32)> = decode_split(&mut demux, &stream, &[17, 18, 40])
        .into_iter()
        .map(|e| match e {
            Ev::Frame { packet, gap, .. } => (packet, gap),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(gaps, [(0, 0), (1, 0), (3, 1), (7, 3), (8, 0)]);
    let stats = demux.stats();
    assert_eq!(
        (stats.gaps, stats.missing_packets, stats.backwards),
        (2, 4, 0)
    );

    // A new session numbers from 0 again: after a reset, no gap and nothing "backwards".
    demux.reset_packet_numbering();
    let again = decode_split(&mut demux, &frame(0, &[0.0], Framing::PREFIXED), &[]);
    assert!(matches!(
        again[..],
        [Ev::Frame {
            packet: 0,
            gap: 0,
            ..
        }]
    ));
    // Without a reset, going backwards is counted and reported with gap 0.
    let back = decode_split(&mut demux, &frame(0, &[0.0], Framing::PREFIXED), &[]);
    assert!(matches!(
        back[..],
        [Ev::Frame {
            packet: 0,
            gap: 0,
            ..
        }]
    ));
    assert_eq!(demux.stats().backwards, 1);
}

#[test]
fn demux_gap_across_u32_wrap() {
    let mut stream = frame(u32::MAX - 1, &[], Framing::PREFIXED);
    stream.extend_from_slice(&frame(1, &[], Framing::PREFIXED));
    let (events, stats) = decode_whole(&stream);
    assert!(matches!(
        events[1],
        Ev::Frame {
            packet: 1,
            gap: 2,
            ..
        }
    ));
    assert_eq!(stats.missing_packets, 2);
}

#[test]
fn demux_resyncs_after_bad_length() {
    let mut stream = b"Data:\x03\x00\x00\x00\x00\x00abc".to_vec(); // length 3
    stream.extend_from_slice(b"Info:{\"cmd\":\"info\"}\r\n");
    stream.extend_from_slice(b"Data:\x84\xbb\x01\x00\x00\x00"); // length 48,004
    stream.extend_from_slice(&frame(4, &[2.0], Framing::PREFIXED));
    let (events, stats) = decode_whole(&stream);
    assert_eq!(
        events,
        [
            Ev::Err(DemuxError::BadFrameLength(3)),
            Ev::Reply(b"{\"cmd\":\"info\"}".to_vec()),
            Ev::Err(DemuxError::BadFrameLength(48_004)),
            Ev::Frame {
                packet: 4,
                gap: 0,
                payload: le(&[2.0])
            },
        ]
    );
    assert_eq!(stats.errors, 2);
    assert_eq!(stats.frames, 1);
}

#[test]
fn demux_resyncs_after_overlong_line() {
    let mut stream = b"Info:".to_vec();
    stream.extend(std::iter::repeat_n(b'x', 70_000));
    stream.extend_from_slice(b"\r\nInfo:Setup done\r\n");
    stream.extend_from_slice(&frame(0, &[1.0], Framing::PREFIXED));
    let expected = vec![
        Ev::Err(DemuxError::LineTooLong { max: 65_536 }),
        Ev::Text(b"Setup done".to_vec()),
        Ev::Frame {
            packet: 0,
            gap: 0,
            payload: le(&[1.0]),
        },
    ];
    assert_eq!(decode_whole(&stream).0, expected);
    let mut demux = Demux::new();
    let cuts: Vec<usize> = (0..stream.len()).step_by(1460).collect();
    assert_eq!(decode_split(&mut demux, &stream, &cuts), expected);
    assert!(demux.buffered() <= demux.capacity());
    // A line of exactly the bound is fine, one byte more is not.
    for (len, ok) in [(65_536usize, true), (65_537, false)] {
        let mut line = b"Info:".to_vec();
        line.extend(std::iter::repeat_n(b'y', len - 7));
        line.extend_from_slice(b"\r\n");
        assert_eq!(line.len(), len);
        let (events, _) = decode_whole(&line);
        assert_eq!(matches!(events[..], [Ev::Text(_)]), ok, "len {len}");
    }
}

#[test]
fn demux_reports_garbage_once_and_skips_stray_line_ends() {
    let (events, stats) = decode_whole(b"\r\n\r\nhello Info:a\r\n\nxDatInfo:b\r\n");
    assert_eq!(
        events,
        [
            Ev::Err(DemuxError::Garbage { skipped: 6 }),
            Ev::Text(b"a".to_vec()),
            Ev::Err(DemuxError::Garbage { skipped: 4 }),
            Ev::Text(b"b".to_vec()),
        ]
    );
    assert_eq!(stats.skipped_bytes, 10);
}

#[test]
fn demux_never_allocates_after_construction() {
    let mut stream = Vec::new();
    let values: Vec<f32> = (0..252).map(|i| i as f32).collect();
    for packet in 0..1000u32 {
        stream.extend_from_slice(&frame(packet, &values, Framing::PREFIXED));
        if packet % 50 == 0 {
            stream.extend_from_slice(b"Info:[I]11/27 07:40:00: 8000.00Hz, 16000s\r\n");
        }
    }
    stream.extend_from_slice(b"garbage");
    stream.extend_from_slice(b"Info:");
    stream.extend(std::iter::repeat_n(b'z', 100_000));
    let mut demux = Demux::new();
    let mut count = 0u64;
    let before = allocations();
    for piece in stream.chunks(1460) {
        demux.push(piece, |_| count += 1);
    }
    assert_eq!(allocations(), before, "the demux allocated while decoding");
    // 1000 frames, 20 log lines, the garbage, the over-long line.
    assert_eq!(count, 1000 + 20 + 1 + 1);
    assert_eq!(demux.stats().frames, 1000);
}

#[test]
fn samples_iterator_is_exact() {
    let bytes = le(&[1.0, 2.0, 3.0]);
    let mut it = Samples::new(&bytes);
    assert_eq!(it.len(), 3);
    assert_eq!(it.next_back(), Some(3.0));
    assert_eq!(it.next(), Some(1.0));
    assert_eq!(it.len(), 1);
    // A trailing partial value (never in a checked frame) is ignored.
    assert_eq!(Samples::new(&bytes[..11]).count(), 2);
}

// ---------------------------------------------------------------------------------------------------
// Property tests.

#[derive(Debug, Clone)]
enum Item {
    Reply(String),
    Log(char, String),
    Text(String),
    Frame(u32, Vec<f32>),
    LineEnds(usize),
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        "[a-z0-9:,\" ]{0,40}".prop_map(|s| Item::Reply(format!("{{\"error\":false,{s}}}"))),
        (
            prop::sample::select(vec!['A', 'D', 'I', 'W', 'E']),
            "[ -~]{0,60}"
        )
            .prop_map(|(l, s)| Item::Log(l, s)),
        "[A-Za-z][ -~]{0,30}".prop_map(Item::Text),
        (0u32..40, prop::collection::vec(any::<f32>(), 0..60)).prop_map(|(p, v)| Item::Frame(p, v)),
        (1usize..4).prop_map(Item::LineEnds),
    ]
}

/// Serialise items; answers the stream and the events a correct demultiplexer yields.
fn render(items: &[Item], framing: Framing) -> (Vec<u8>, Vec<Ev>) {
    let mut s = Vec::new();
    let mut ev = Vec::new();
    let mut next: Option<u32> = None;
    for it in items {
        match it {
            Item::Reply(t) => {
                s.extend_from_slice(format!("Info:{t}\r\n").as_bytes());
                ev.push(Ev::Reply(t.as_bytes().to_vec()));
            }
            Item::Log(l, t) => {
                let payload = format!("[{l}]11/27 07:40:00: {t}");
                s.extend_from_slice(format!("Info:{payload}\r\n").as_bytes());
                ev.push(Ev::Log(payload.into_bytes()));
            }
            Item::Text(t) => {
                let t = t.trim_end_matches('\r');
                s.extend_from_slice(format!("Info:{t}\n").as_bytes());
                ev.push(Ev::Text(t.as_bytes().to_vec()));
            }
            Item::Frame(step, values) => {
                // Packet numbers increase by `step` - 1 missing packets (mostly 1: contiguous).
                let step = if *step < 30 { 1 } else { step - 28 };
                let packet = next.map_or(0, |n| n + step - 1);
                let gap = next.map_or(0, |n| packet - n);
                next = Some(packet + 1);
                s.extend_from_slice(&frame(packet, values, framing));
                ev.push(Ev::Frame {
                    packet,
                    gap,
                    payload: le(values),
                });
            }
            Item::LineEnds(n) => {
                for i in 0..*n {
                    s.push(if i % 2 == 0 { b'\r' } else { b'\n' });
                }
            }
        }
    }
    (s, ev)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any split of a valid stream yields exactly the events of the whole stream, and those are the
    /// items that were written.
    #[test]
    fn any_split_decodes_the_same(
        items in prop::collection::vec(item(), 0..30),
        serial in any::<bool>(),
        cuts in prop::collection::vec(0usize..4000, 0..40),
        piece in 1usize..300,
    ) {
        let framing = if serial { Framing::SERIAL } else { Framing::PREFIXED };
        let (stream, expected) = render(&items, framing);
        let (whole, stats) = decode_whole(&stream);
        prop_assert_eq!(&whole, &expected);
        prop_assert_eq!(stats.errors, 0);
        let mut demux = Demux::new();
        prop_assert_eq!(decode_split(&mut demux, &stream, &cuts), expected.clone());
        prop_assert_eq!(demux.stats(), stats);
        let mut copying = Demux::new();
        prop_assert_eq!(decode_feed_poll(&mut copying, &stream, piece), expected);
        prop_assert_eq!(copying.stats(), stats);
    }

    /// Arbitrary bytes never panic, the buffer stays within its capacity, and the events do not depend
    /// on the split points either.
    #[test]
    fn arbitrary_bytes_are_safe_and_split_invariant(
        bytes in prop::collection::vec(
            prop_oneof![
                4 => any::<u8>(),
                1 => prop::sample::select(b"Data:Info:\r\n[I]{".to_vec()),
            ],
            0..2000,
        ),
        cuts in prop::collection::vec(0usize..2000, 0..30),
        max_line in 0usize..200,
        piece in 1usize..100,
    ) {
        let mut whole = Demux::with_max_line_len(max_line);
        let mut a = Vec::new();
        whole.push(&bytes, |e| a.push(own(e)));
        let mut split = Demux::with_max_line_len(max_line);
        let capacity = split.capacity();
        let b = decode_split(&mut split, &bytes, &cuts);
        prop_assert_eq!(&a, &b);
        let mut copying = Demux::with_max_line_len(max_line);
        prop_assert_eq!(decode_feed_poll(&mut copying, &bytes, piece), a);
        prop_assert_eq!(copying.stats(), split.stats());
        prop_assert_eq!(split.capacity(), capacity);
        prop_assert!(split.buffered() <= capacity);
        prop_assert_eq!(split.stats().bytes, bytes.len() as u64);
    }

    /// Encoding then viewing is the identity for every legal payload and every packet number.
    #[test]
    fn encode_view_round_trip(
        packet in any::<u32>(),
        values in prop::collection::vec(any::<f32>(), 0..300),
    ) {
        let bytes = frame(packet, &values, Framing::PREFIXED);
        let view = Frame::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(view.packet_number(), packet);
        prop_assert_eq!(view.total_len(), bytes.len());
        let back: Vec<u32> = view.samples().map(f32::to_bits).collect();
        let sent: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
        prop_assert_eq!(back, sent);
    }

    /// The view never panics on arbitrary bytes, and accepts exactly the well-formed frames.
    #[test]
    fn view_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64), magic in any::<bool>()) {
        let mut bytes = bytes;
        if magic && bytes.len() >= 5 {
            bytes[..5].copy_from_slice(b"Data:");
        }
        let unchecked = Frame::new_unchecked(&bytes[..]);
        let _ = (unchecked.payload_len(), unchecked.packet_number(), unchecked.payload().len());
        if let Ok(view) = Frame::new_checked(&bytes[..]) {
            prop_assert!(view.payload_len() % 4 == 0);
            prop_assert!(view.total_len() <= bytes.len());
            prop_assert_eq!(view.samples().count() * 4, view.payload_len());
        }
    }

    /// chunk_size: whole samples, at least one, within the transport's cap.
    #[test]
    fn chunk_size_rule(rate in 1u32..=32_000, channels in 1usize..=6, t in 0u8..3) {
        let transport = [Transport::Tcp, Transport::Udp, Transport::Serial][usize::from(t)];
        let b = channels * 4;
        let cs = chunk_size(rate, b, transport);
        prop_assert_eq!(cs % b, 0);
        prop_assert!(cs >= b && cs <= transport.max_chunk_bytes());
        // About ten frames per second: within one sample of floor(0.1·r·b) (or of the cap), and below
        // twice it (power-of-two rounding).
        let tenth = (u64::from(rate) * b as u64 / 10) as usize;
        prop_assert!(cs + b > tenth.max(b).min(transport.max_chunk_bytes()));
        prop_assert!(cs < 2 * tenth.max(b));
    }
}
