//! One engine connection over an `embedded_io_async` byte stream.
//!
//! A [`Link`] owns a reader, a writer and two buffers. [`Link::serve`] reports the connection to the
//! engine, then runs two loops side by side until one of them ends the connection:
//!
//! - input: read → [`Pending`] → offer to [`Device::handle_input`]; bytes the engine does not take stay
//!   pending and are offered again after [`Host::idle`]; while the buffer is full nothing is read.
//! - output: [`Device::poll_output`] → `write_all`; when the engine has nothing to send the loop
//!   checks whether the engine closed the connection ([`Host::take_close`]), optionally flushes the
//!   writer (the USB-Serial-JTAG port needs it: a transfer of a multiple of 64 bytes only reaches the
//!   host after a flush), and waits [`Host::idle`].
//!
//! Nothing here looks inside a command or a frame: framing (`Info:` lines, `Data:` frames and the
//! `\r\n` after each frame on serial) is the engine's.
//!
//! The TCP sockets and the USB serial port of the ESP32-C3 firmware use the same code; the serial port
//! is served with [`Link::serve_forever`], which reopens the engine connection whenever it ends (the
//! port itself never goes away).

use core::convert::Infallible;
use core::future::Future;

use embassy_futures::select::{Either, select};
use embedded_io_async::{Read, Write};
use smartmeter::device::{ConnId, ConnKind, Device, Instant};

use crate::pending::Pending;

/// What a connection needs from the binding around the engine.
pub trait Host {
    /// Runs `f` on the engine with the binding's current time. Never held across an `.await`.
    fn with_device<R>(&self, f: impl FnOnce(&mut Device, Instant) -> R) -> R;
    /// True (once) if the engine asked to close `conn` ([`Action::Close`](smartmeter::device::Action)),
    /// which the binding's event dispatcher recorded.
    fn take_close(&self, conn: ConnId) -> bool;
    /// Waits a little before output is looked for, or held-back input is offered, again.
    fn idle(&self) -> impl Future<Output = ()>;
}

/// Why [`Link::serve`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The reader reported end of stream (the peer closed).
    PeerClosed,
    /// Reading failed.
    ReadFailed,
    /// Writing or flushing failed.
    WriteFailed,
    /// The engine closed the connection (its output was drained and written first).
    ClosedByEngine,
}

/// Hands `bytes` to the engine and returns how many it took; the rest stays pending.
///
/// The engine takes what fits its queue for this connection and says how much (back-pressure); the
/// rest stays pending.
fn offer(device: &mut Device, conn: ConnId, now: Instant, bytes: &[u8]) -> usize {
    device.handle_input(conn, now, bytes)
}

/// A byte stream served as one engine connection at a time.
pub struct Link<'a, R, W> {
    rx: R,
    tx: W,
    input: Pending<'a>,
    output: &'a mut [u8],
    flush_when_idle: bool,
}

impl<'a, R: Read, W: Write> Link<'a, R, W> {
    /// A link reading into `input` (which also holds input the engine has not taken yet) and moving
    /// output through `output` (one `poll_output` at a time).
    pub fn new(rx: R, tx: W, input: &'a mut [u8], output: &'a mut [u8]) -> Self {
        Self {
            rx,
            tx,
            input: Pending::new(input),
            output,
            flush_when_idle: false,
        }
    }

    /// Flushes the writer whenever the engine has nothing more to send (USB serial: pushes out a
    /// final full-size packet; not wanted on TCP, where a flush waits for the peer's ACK).
    pub fn flush_when_idle(mut self) -> Self {
        self.flush_when_idle = true;
        self
    }

    /// Reports a connection of `kind` to the engine and serves it until the peer or the engine ends
    /// it; the engine is told it closed either way. Input still pending at the end is dropped.
    pub async fn serve<H: Host>(&mut self, host: &H, kind: ConnKind) -> Ended {
        let conn = host.with_device(|d, now| d.handle_connected(now, kind));
        let Link {
            rx,
            tx,
            input,
            output,
            flush_when_idle,
        } = self;
        let ended = match select(
            pump_input(
                rx,
                input,
                || host.idle(),
                |bytes| host.with_device(|d, now| offer(d, conn, now, bytes)),
            ),
            pump_output(
                tx,
                output,
                *flush_when_idle,
                || host.idle(),
                |buf| host.with_device(|d, _| d.poll_output(conn, buf)),
                || host.take_close(conn),
            ),
        )
        .await
        {
            Either::First(e) | Either::Second(e) => e,
        };
        host.with_device(|d, now| d.handle_closed(conn, now));
        // A close the engine asked for after the peer went away must not linger.
        let _ = host.take_close(conn);
        input.clear();
        ended
    }

    /// Serves a port that never goes away (the USB serial console) as `kind` forever: when the engine
    /// closes the connection (failed `auth`, …) a new one is reported at once (with its unprompted
    /// `info`), as if the port had been reopened; after a read or write failure it waits
    /// [`Host::idle`] first. `ended` is told why each connection ended (for the binding's log).
    pub async fn serve_forever<H: Host>(
        &mut self,
        host: &H,
        kind: ConnKind,
        mut ended: impl FnMut(Ended),
    ) -> Infallible {
        loop {
            let why = self.serve(host, kind).await;
            ended(why);
            if why != Ended::ClosedByEngine {
                host.idle().await;
            }
        }
    }
}

/// Reads into `pending` and offers it until the reader ends.
async fn pump_input<R: Read, I: Future<Output = ()>>(
    rx: &mut R,
    pending: &mut Pending<'_>,
    mut idle: impl FnMut() -> I,
    mut offer: impl FnMut(&[u8]) -> usize,
) -> Ended {
    loop {
        let read = if pending.is_empty() {
            Some(rx.read(pending.spare()).await)
        } else if pending.is_full() {
            // Back-pressure: read nothing until the engine takes some of what is held.
            idle().await;
            None
        } else {
            // Held bytes are offered again after a while even if the peer sends nothing more.
            match select(rx.read(pending.spare()), idle()).await {
                Either::First(r) => Some(r),
                Either::Second(()) => None,
            }
        };
        match read {
            Some(Ok(0)) => return Ended::PeerClosed,
            Some(Err(_)) => return Ended::ReadFailed,
            Some(Ok(n)) => pending.commit(n),
            None => {}
        }
        let taken = offer(pending.bytes());
        pending.consume(taken);
    }
}

/// Writes what the engine has for the connection until the engine closes it or writing fails.
async fn pump_output<W: Write, I: Future<Output = ()>>(
    tx: &mut W,
    buf: &mut [u8],
    flush_when_idle: bool,
    mut idle: impl FnMut() -> I,
    mut poll: impl FnMut(&mut [u8]) -> usize,
    mut closing: impl FnMut() -> bool,
) -> Ended {
    let mut unflushed = false;
    loop {
        let n = poll(buf);
        if let Some(bytes) = buf.get(..n).filter(|b| !b.is_empty()) {
            if tx.write_all(bytes).await.is_err() {
                return Ended::WriteFailed;
            }
            unflushed = true;
            continue;
        }
        if closing() {
            // The engine closes only once the connection's output is drained: push it out.
            let _ = tx.flush().await;
            return Ended::ClosedByEngine;
        }
        if unflushed && flush_when_idle {
            if tx.flush().await.is_err() {
                return Ended::WriteFailed;
            }
            unflushed = false;
        }
        idle().await;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use core::cell::{Cell, RefCell};
    use core::convert::Infallible;
    use std::vec::Vec;

    use embassy_futures::{block_on, yield_now};
    use embedded_io_async::{ErrorType, Read, Write};

    use super::*;

    /// Hands out `chunks` (split to the caller's buffer size), yielding once before every read so
    /// the loop's idle timer gets its turn; reports end of stream once `eof` is set.
    struct Script<'a> {
        chunks: &'a [&'a [u8]],
        at: usize,
        reads: &'a Cell<usize>,
        eof: &'a Cell<bool>,
    }

    impl ErrorType for Script<'_> {
        type Error = Infallible;
    }

    impl Read for Script<'_> {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
            yield_now().await;
            let Some((first, rest)) = self.chunks.split_first() else {
                while !self.eof.get() {
                    yield_now().await;
                }
                return Ok(0);
            };
            self.reads.set(self.reads.get() + 1);
            let part = &first[self.at..];
            let n = part.len().min(buf.len());
            buf[..n].copy_from_slice(&part[..n]);
            self.at += n;
            if self.at == first.len() {
                self.chunks = rest;
                self.at = 0;
            }
            Ok(n)
        }
    }

    const LINES: &[u8] = b"{\"cmd\":\"info\"}\n{\"cmd\":\"getPower\"}\n!\n";

    #[test]
    fn input_the_engine_does_not_take_is_offered_again_in_order() {
        let (reads, eof) = (Cell::new(0), Cell::new(false));
        let mut rx = Script {
            chunks: &[&LINES[..15], &LINES[15..]],
            at: 0,
            reads: &reads,
            eof: &eof,
        };
        let mut storage = [0u8; 16];
        let mut pending = Pending::new(&mut storage);
        let delivered = RefCell::new(Vec::new());
        let idles = Cell::new(0u32);
        let ended = block_on(pump_input(
            &mut rx,
            &mut pending,
            || {
                idles.set(idles.get() + 1);
                yield_now()
            },
            |bytes| {
                // A slow engine: at most 5 bytes per offer.
                let n = bytes.len().min(5);
                let mut d = delivered.borrow_mut();
                d.extend_from_slice(&bytes[..n]);
                eof.set(d.len() == LINES.len());
                n
            },
        ));
        assert_eq!(ended, Ended::PeerClosed);
        assert_eq!(delivered.borrow().as_slice(), LINES);
        assert!(
            idles.get() > 0,
            "held bytes were offered again after idling"
        );
        // 15 + 21 bytes through a 16-byte buffer: the second chunk took several reads.
        assert!(reads.get() > 2);
    }

    #[test]
    fn a_full_buffer_reads_nothing_until_the_engine_takes_bytes() {
        let (reads, eof) = (Cell::new(0), Cell::new(false));
        let mut rx = Script {
            chunks: &[b"0123456789abcdef", b"more"],
            at: 0,
            reads: &reads,
            eof: &eof,
        };
        let mut storage = [0u8; 16];
        let mut pending = Pending::new(&mut storage);
        let offers = Cell::new(0u32);
        let delivered = RefCell::new(Vec::new());
        block_on(pump_input(&mut rx, &mut pending, yield_now, |bytes| {
            offers.set(offers.get() + 1);
            // Refuses everything three times (the buffer is full), then takes it all.
            if offers.get() <= 3 {
                assert_eq!(reads.get(), 1, "no read while the buffer is full");
                return 0;
            }
            let mut d = delivered.borrow_mut();
            d.extend_from_slice(bytes);
            eof.set(d.len() == 20);
            bytes.len()
        }));
        assert_eq!(delivered.borrow().as_slice(), b"0123456789abcdefmore");
        assert_eq!(offers.get(), 5);
    }

    /// Collects what is written; counts flushes.
    #[derive(Default)]
    struct Sink {
        bytes: Vec<u8>,
        flushes: u32,
    }

    impl ErrorType for Sink {
        type Error = Infallible;
    }

    impl Write for Sink {
        async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }
        async fn flush(&mut self) -> Result<(), Infallible> {
            self.flushes += 1;
            Ok(())
        }
    }

    #[test]
    fn output_is_written_then_flushed_once_when_idle_and_the_close_ends_it() {
        let mut queue: Vec<&[u8]> = std::vec![b"Info:a\r\n", b"Data:xyz\r\n"];
        let polls_after_drain = Cell::new(0);
        let mut sink = Sink::default();
        let mut buf = [0u8; 64];
        let ended = block_on(pump_output(
            &mut sink,
            &mut buf,
            true,
            yield_now,
            |out| {
                if queue.is_empty() {
                    return 0;
                }
                let b = queue.remove(0);
                out[..b.len()].copy_from_slice(b);
                b.len()
            },
            || {
                polls_after_drain.set(polls_after_drain.get() + 1);
                polls_after_drain.get() > 3
            },
        ));
        assert_eq!(ended, Ended::ClosedByEngine);
        assert_eq!(sink.bytes, b"Info:a\r\nData:xyz\r\n");
        // One flush when the output ran dry, one on close; idle rounds without new bytes add none.
        assert_eq!(sink.flushes, 2);
    }
}
