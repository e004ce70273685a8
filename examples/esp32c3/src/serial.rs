//! The serial variant of the protocol on the ESP32-C3's built-in USB-Serial-JTAG port (the original
//! device's command channel: every command over USB serial, `"type":"Serial"` sampling with `\r\n`
//! after each frame in 128-byte chunks, docs/protocol.md §1, §3, §5).
//!
//! The port is one engine connection of kind [`ConnKind::Serial`], served by the same
//! `smartmeter_glue::Link` as the TCP sockets: bytes in → `handle_input` (what the engine does not take
//! is held and offered again), `poll_output` → bytes out. The engine decides framing; this task only
//! moves bytes. Nothing else writes to the port: the firmware's `log` records travel through the
//! engine as `Info:[L]` lines (see `engine::LOGGER`), and only a panic's backtrace goes to the ROM
//! console.
//!
//! The port never goes away, so when the engine closes its connection (three failed `auth`s) a new
//! one is reported at once and greets the host with `info`, as if the host had reopened the port.
//! While no host reads the port the writer waits (the USB FIFO does not drain) and the engine's bounded
//! output queue drops frames (counted by packet-number gaps); commands are still read and executed.

use esp_hal::Async;
use esp_hal::usb::usb_serial_jtag::UsbSerialJtag;
use smartmeter::device::ConnKind;
use smartmeter_glue::{Ended, Link};

use crate::engine::{Board, Shared};

/// Input held for the engine (the USB FIFO delivers at most 64 bytes per packet).
const INPUT_BYTES: usize = 256;
/// Output moved per `poll_output` (written to the FIFO in 64-byte packets).
const OUTPUT_BYTES: usize = 512;

/// Serves the protocol on the USB-Serial-JTAG port forever.
#[embassy_executor::task]
pub async fn task(engine: &'static Shared, usb: UsbSerialJtag<'static, Async>) {
    let (rx, tx) = usb.split();
    let mut input = [0u8; INPUT_BYTES];
    let mut output = [0u8; OUTPUT_BYTES];
    // USB bulk transfers of a multiple of 64 bytes reach the host only after a flush (a short or
    // zero-length packet), so the link flushes whenever the engine's output runs dry.
    let mut link = Link::new(rx, tx, &mut input, &mut output).flush_when_idle();
    let never = link
        .serve_forever(&Board(engine), ConnKind::Serial, |why: Ended| {
            log::info!("serial: connection ended ({why:?}), reopened");
        })
        .await;
    match never {}
}
