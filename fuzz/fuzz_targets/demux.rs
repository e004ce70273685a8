//! The `Info:`/`Data:` demultiplexer and the frame view on arbitrary bytes, fed in fragments chosen by
//! the first bytes of the input.
//!
//! Invariants: no panic; the buffer stays within its capacity; every byte is accepted; the events do
//! not depend on the split points nor on the API (`push` or `feed` + `poll`); every frame payload is a legal length; no text event holds a `\n`.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use smartmeter::wire::frame::{Demux, DemuxError, Event, Frame, MAX_PAYLOAD_LEN};

#[derive(Debug, PartialEq)]
enum Ev {
    Line(u8, Vec<u8>),
    Frame(u32, u32, Vec<u8>),
    Err(DemuxError),
}

fn own(event: Result<Event<'_>, DemuxError>) -> Ev {
    match event {
        Ok(Event::Reply(b)) => Ev::Line(b'R', b.to_vec()),
        Ok(Event::Log(b)) => Ev::Line(b'L', b.to_vec()),
        Ok(Event::Text(b)) => Ev::Line(b'T', b.to_vec()),
        Ok(Event::Frame(f)) => Ev::Frame(f.packet, f.gap, f.payload.to_vec()),
        Err(e) => Ev::Err(e),
    }
}

thread_local! {
    /// Demultiplexers reused across runs (their 64 KiB buffers are costly to allocate under ASan):
    /// per line bound, [whole, fragmented, copying]. Their counters add up over runs but stay equal.
    static POOL: RefCell<Vec<(usize, [Demux; 3])>> = const { RefCell::new(Vec::new()) };
}

fn with_demuxes(max_line: usize, f: impl FnOnce(&mut [Demux; 3])) {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let at = match pool.iter().position(|(m, _)| *m == max_line) {
            Some(at) => at,
            None => {
                let make = || Demux::with_max_line_len(max_line);
                pool.push((max_line, [make(), make(), make()]));
                pool.len() - 1
            }
        };
        let demuxes = &mut pool[at].1;
        for d in demuxes.iter_mut() {
            d.clear();
        }
        f(demuxes)
    })
}

fuzz_target!(|data: &[u8]| {
    // Byte 0: line bound selector; byte 1: how many piece sizes follow; then the piece sizes.
    let Some((&bound, rest)) = data.split_first() else {
        return;
    };
    let Some((&n_sizes, rest)) = rest.split_first() else {
        return;
    };
    let n_sizes = usize::from(n_sizes % 8) + 1;
    let (sizes, stream) = rest.split_at(n_sizes.min(rest.len()));
    let max_line = match bound % 4 {
        0 => 64 * 1024,
        1 => 8,
        2 => 64,
        _ => usize::from(bound),
    };

    with_demuxes(max_line, |[whole, demux, copying]| {
        let before = demux.stats().bytes;
        // Reference: everything at once.
        let mut expected = Vec::new();
        whole.push(stream, |e| expected.push(own(e)));

        // Fragmented: piece sizes cycle through `sizes` (0 means one byte).
        let capacity = demux.capacity();
        let mut got = Vec::new();
        let mut at = 0;
        let mut i = 0;
        while at < stream.len() {
            let size = sizes
                .get(i % sizes.len().max(1))
                .map_or(1, |&s| usize::from(s).max(1));
            let end = (at + size).min(stream.len());
            demux.push(&stream[at..end], |e| got.push(own(e)));
            assert!(demux.buffered() <= capacity);
            at = end;
            i += 1;
        }
        assert_eq!(got, expected);
        assert_eq!(demux.stats(), whole.stats());

        // The copying API (`feed` + `poll`) in pieces of the first size.
        let piece = sizes.first().map_or(1, |&s| usize::from(s).max(1));
        let mut copied = Vec::new();
        for mut chunk in stream.chunks(piece) {
            while !chunk.is_empty() {
                let n = copying.feed(chunk);
                chunk = &chunk[n..];
                while let Some(e) = copying.poll() {
                    copied.push(own(e));
                }
            }
        }
        assert_eq!(copied, expected);
        assert_eq!(copying.stats(), whole.stats());
        assert_eq!(demux.stats().bytes - before, stream.len() as u64);
        assert_eq!(demux.capacity(), capacity);
        for ev in &got {
            match ev {
                Ev::Line(_, b) => assert!(!b.contains(&b'\n') && b.len() <= max_line.max(7)),
                Ev::Frame(_, _, p) => assert!(p.len() % 4 == 0 && p.len() <= MAX_PAYLOAD_LEN),
                Ev::Err(_) => {}
            }
        }
    });

    // The frame view is total on the same bytes.
    if let Ok(frame) = Frame::new_checked(stream) {
        assert!(frame.total_len() <= stream.len());
        assert_eq!(frame.samples().count() * 4, frame.payload_len());
    }
});
