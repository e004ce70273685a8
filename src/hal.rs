//! Hardware abstraction: the few traits a binding implements so the [`device`](crate::device) engine
//! can be served on any target.
//!
//! Modelled on embedded-hal 1.0: every trait has an associated `Error` type that maps to a small,
//! `#[non_exhaustive]` [`ErrorKind`] (so generic code can react to *what* went wrong without knowing the
//! concrete driver), every trait has a blanket implementation for `&mut T`, and the traits are tiny.
//!
//! | trait | what the engine needs from the platform |
//! |---|---|
//! | [`SampleSource`] | blocks of interleaved 3-phase samples (`i32` ADC codes for the integer measurement path, or `f32` codes or volts/amps) with rate and start time |
//! | [`Clock`] | the wall clock, in microseconds since the Unix epoch |
//! | [`Store`] | load / save of one record slot (the engine writes versioned, checksummed records into two slots per kind) |
//! | [`System`] | restart the device |
//!
//! The engine itself never calls these traits: it is sans-IO. [`Driver`] is the one place in the core
//! that wires engine [`Event`](crate::device::Event)s to HAL implementations, so a binding only supplies its
//! traits and its sockets.
//!
//! ```
//! use smartmeter::hal::{Clock, ErrorKind, ErrorType};
//! use smartmeter::device::Instant;
//!
//! struct Fixed(u64);
//! impl ErrorType for Fixed { type Error = ErrorKind; }
//! impl Clock for Fixed {
//!     fn now(&mut self) -> Result<Instant, ErrorKind> { Ok(Instant::from_micros(self.0)) }
//! }
//! let mut c = Fixed(1_700_000_000_000_000);
//! assert_eq!(c.now().unwrap().as_secs(), 1_700_000_000);
//! ```
//!
//! A source of 24-bit ADC codes (what a board without an FPU should hand out):
//!
//! ```
//! use smartmeter::device::Instant;
//! use smartmeter::hal::{ErrorKind, ErrorType, RawBlock, SampleScale, SampleSource};
//!
//! struct Adc { next: i32 }
//! impl ErrorType for Adc { type Error = ErrorKind; }
//! impl SampleSource for Adc {
//!     type Sample = i32;
//!     fn read(&mut self, buf: &mut [i32]) -> Result<Option<RawBlock>, ErrorKind> {
//!         let n = buf.len().min(60) / 6 * 6; // ten frames
//!         for x in &mut buf[..n] {
//!             *x = self.next;
//!             self.next = self.next.wrapping_add(1) % 1000;
//!         }
//!         Ok(Some(RawBlock {
//!             rate_hz: 8000,
//!             start: Instant::EPOCH,
//!             len: n,
//!             scale: SampleScale::Codes { volts_per_code: 0.05, amps_per_code: 0.001 },
//!         }))
//!     }
//! }
//! let mut adc = Adc { next: 0 };
//! let mut buf = [0i32; 60];
//! assert_eq!(adc.read(&mut buf).unwrap().map(|b| b.len), Some(60));
//! ```

use alloc::vec::Vec;

use crate::calibration::FrontEnd;
pub use crate::device::Instant;
use crate::device::{CodeBlock, Device, Event, Record, SampleBlock, SlotId};

/// What kind of failure a HAL error is, independent of the driver (embedded-hal's `ErrorKind` idea).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The peripheral or medium is not present or not configured.
    #[error("not available")]
    Unavailable,
    /// Data arrived too late and was lost (e.g. the ADC FIFO overflowed).
    #[error("overrun: data lost")]
    Overrun,
    /// The persistent medium failed to read or write.
    #[error("storage failure")]
    Storage,
    /// A buffer supplied by the caller is too small for the data.
    #[error("buffer too small")]
    BufferTooSmall,
    /// Anything else.
    #[error("other HAL error")]
    Other,
}

/// Maps a driver-specific error onto an [`ErrorKind`].
pub trait Error: core::fmt::Debug {
    /// The generic kind of this error.
    fn kind(&self) -> ErrorKind;
}

impl Error for ErrorKind {
    fn kind(&self) -> ErrorKind {
        *self
    }
}

impl Error for core::convert::Infallible {
    fn kind(&self) -> ErrorKind {
        match *self {}
    }
}

/// Declares the error type of a HAL implementation (embedded-hal's `ErrorType`).
pub trait ErrorType {
    /// The driver's error type.
    type Error: Error;
}

impl<T: ErrorType + ?Sized> ErrorType for &mut T {
    type Error = T::Error;
}

/// How the samples of a [`RawBlock`] are encoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SampleScale {
    /// Already volts and amps.
    Physical,
    /// Raw ADC codes: volts = code × `volts_per_code`, amps = code × `amps_per_code`
    /// (voltage channels are the even indices 0, 2, 4; current channels the odd ones).
    Codes {
        /// Volts per ADC code.
        volts_per_code: f32,
        /// Amps per ADC code.
        amps_per_code: f32,
    },
}

/// A block read from a [`SampleSource`]: interleaved `v_l1,i_l1,v_l2,i_l2,v_l3,i_l3` samples.
#[derive(Debug, Clone, Copy)]
pub struct RawBlock {
    /// Samples per second per channel.
    pub rate_hz: u32,
    /// When the first sample of the block was taken (the source's clock).
    pub start: Instant,
    /// Number of values written into the caller's buffer (a multiple of 6).
    pub len: usize,
    /// How the values are scaled.
    pub scale: SampleScale,
}

impl RawBlock {
    /// Converts codes to volts/amps in place (no-op for [`SampleScale::Physical`]), so the block can be
    /// handed to [`Device::handle_samples`].
    pub fn to_physical(&mut self, values: &mut [f32]) {
        if let SampleScale::Codes {
            volts_per_code,
            amps_per_code,
        } = self.scale
        {
            for (k, x) in values.iter_mut().take(self.len).enumerate() {
                *x *= if k.is_multiple_of(2) {
                    volts_per_code
                } else {
                    amps_per_code
                };
            }
        }
        self.scale = SampleScale::Physical;
    }
}

/// A source of 3-phase voltage and current samples (the metering front end).
pub trait SampleSource: ErrorType {
    /// What the source writes: `f32` (volts and amps, or codes with [`SampleScale::Codes`]) or `i32`
    /// ADC codes (with [`SampleScale::Codes`]), which the engine measures on the estimator's integer
    /// path — the choice for a core without an FPU.
    type Sample: SourceSample;
    /// Reads whatever samples are ready into `buf` (interleaved six channels) without blocking.
    /// Returns `Ok(None)` when nothing is ready. Implementations write whole samples only.
    fn read(&mut self, buf: &mut [Self::Sample]) -> Result<Option<RawBlock>, Self::Error>;
}

impl<T: SampleSource + ?Sized> SampleSource for &mut T {
    type Sample = T::Sample;
    fn read(&mut self, buf: &mut [Self::Sample]) -> Result<Option<RawBlock>, Self::Error> {
        T::read(self, buf)
    }
}

/// The sample types a [`SampleSource`] can write (`f32`, `i32`; sealed through
/// [`dsp::estimator::Sample`](crate::dsp::estimator::Sample)), and how a block of them reaches the
/// engine: `f32` through [`Device::handle_samples`] (codes scaled first), `i32` through
/// [`Device::handle_codes`].
pub trait SourceSample: crate::dsp::estimator::Sample {
    /// Hands `buf[..raw.len]` to the engine.
    #[doc(hidden)]
    fn deliver(device: &mut Device, now: Instant, raw: RawBlock, buf: &mut [Self]);
}

impl SourceSample for f32 {
    fn deliver(device: &mut Device, now: Instant, mut raw: RawBlock, buf: &mut [f32]) {
        raw.to_physical(buf);
        if let Some(samples) = buf.get(..raw.len) {
            let block = SampleBlock {
                rate_hz: raw.rate_hz,
                samples,
                start: raw.start,
            };
            device.handle_samples(now, &block);
        }
    }
}

impl SourceSample for i32 {
    fn deliver(device: &mut Device, now: Instant, raw: RawBlock, buf: &mut [i32]) {
        let front_end = match raw.scale {
            SampleScale::Codes {
                volts_per_code,
                amps_per_code,
            } => FrontEnd {
                volts_per_code: f64::from(volts_per_code),
                amps_per_code: f64::from(amps_per_code),
            },
            SampleScale::Physical => FrontEnd {
                volts_per_code: 1.0,
                amps_per_code: 1.0,
            },
        };
        if let Some(codes) = buf.get(..raw.len) {
            let block = CodeBlock {
                rate_hz: raw.rate_hz,
                codes,
                front_end,
                start: raw.start,
            };
            device.handle_codes(now, &block);
        }
    }
}

/// The binding's clock: microseconds since the Unix epoch (not NTP-corrected; the engine applies the
/// offset it learns from [`Device::handle_ntp`]).
pub trait Clock: ErrorType {
    /// The current time.
    fn now(&mut self) -> Result<Instant, Self::Error>;
}

impl<T: Clock + ?Sized> Clock for &mut T {
    fn now(&mut self) -> Result<Instant, Self::Error> {
        T::now(self)
    }
}

/// A persistent store of record slots (flash pages, files, EEPROM).
///
/// The engine only asks to overwrite one slot at a time and alternates between the two slots of a
/// record kind, so an implementation needs no journaling of its own: a write interrupted at any byte
/// leaves the other slot intact, and [`Record`] checksums reveal the torn one.
pub trait Store: ErrorType {
    /// Reads the slot into `buf`; returns the number of bytes stored (0 = empty slot).
    fn load(&mut self, slot: SlotId, buf: &mut [u8]) -> Result<usize, Self::Error>;
    /// Replaces the slot's content by `bytes`.
    fn save(&mut self, slot: SlotId, bytes: &[u8]) -> Result<(), Self::Error>;
}

impl<T: Store + ?Sized> Store for &mut T {
    fn load(&mut self, slot: SlotId, buf: &mut [u8]) -> Result<usize, Self::Error> {
        T::load(self, slot, buf)
    }
    fn save(&mut self, slot: SlotId, bytes: &[u8]) -> Result<(), Self::Error> {
        T::save(self, slot, bytes)
    }
}

/// System control.
pub trait System: ErrorType {
    /// Restarts the device. A host simulator rebuilds its engine in place instead (and returns).
    fn restart(&mut self) -> Result<(), Self::Error>;
}

impl<T: System + ?Sized> System for &mut T {
    fn restart(&mut self) -> Result<(), Self::Error> {
        T::restart(self)
    }
}

/// Largest record a [`Store`] slot must hold, in bytes.
pub const MAX_RECORD_BYTES: usize = 4096;

/// Loads every record slot from a store into a [`Restored`](crate::device::Restored) for
/// [`Device::new`]. Slots that fail to read are treated as empty.
pub fn restore<S: Store>(store: &mut S) -> crate::device::Restored {
    let mut restored = crate::device::Restored::default();
    let mut buf = alloc::vec![0u8; MAX_RECORD_BYTES];
    for slot in SlotId::ALL {
        if let Ok(n) = store.load(slot, &mut buf)
            && let Some(bytes) = buf.get(..n)
            && !bytes.is_empty()
        {
            restored.insert(slot, bytes.to_vec());
        }
    }
    restored
}

/// What [`Driver::pump`] did with the engine's events that need the network: the binding moves them.
#[derive(Debug, Default)]
pub struct Pumped {
    /// Events the driver cannot serve with its HAL (publish, datagrams, connects, closes, NTP, …), in order.
    pub network: Vec<Event>,
    /// The engine asked for a restart and [`System::restart`] was called.
    pub restarted: bool,
}

/// Wires a [`Device`] to HAL implementations once, so bindings only supply traits and sockets.
///
/// `pump(now)` reads the sample source, feeds the engine, serves timeouts, writes `Persist` records to
/// the store, calls `System::restart` on `Restart`, and hands every network event back to the caller.
pub struct Driver<Src: SampleSource, Clk, St, Sys> {
    /// The engine.
    pub device: Device,
    /// Sample source.
    pub source: Src,
    /// Wall clock.
    pub clock: Clk,
    /// Persistent store.
    pub store: St,
    /// System handle.
    pub system: Sys,
    buf: Vec<Src::Sample>,
    /// Store or source errors seen so far (the driver never stops on them).
    pub hal_errors: u32,
}

impl<Src, Clk, St, Sys> Driver<Src, Clk, St, Sys>
where
    Src: SampleSource,
    Clk: Clock,
    St: Store,
    Sys: System,
{
    /// Builds the engine from what the store holds and wraps it with the HAL.
    pub fn new(
        options: crate::device::DeviceOptions,
        source: Src,
        mut clock: Clk,
        mut store: St,
        system: Sys,
    ) -> Self {
        let restored = restore(&mut store);
        let now = clock.now().unwrap_or(Instant::EPOCH);
        Self {
            device: Device::new(options, restored, now),
            source,
            clock,
            store,
            system,
            buf: alloc::vec![Src::Sample::default(); 6 * 512],
            hal_errors: 0,
        }
    }

    /// The current time of the clock (the epoch when the clock fails).
    pub fn now(&mut self) -> Instant {
        match self.clock.now() {
            Ok(t) => t,
            Err(_) => {
                self.hal_errors = self.hal_errors.saturating_add(1);
                Instant::EPOCH
            }
        }
    }

    /// Bytes read from a connection, stamped with the clock: [`Device::handle_input`] with its
    /// back-pressure contract. Returns how many bytes the engine took; the binding keeps the rest,
    /// does not read that socket meanwhile, and offers the rest again after its next
    /// [`Driver::pump`] (or any other engine call). No complete line is ever dropped.
    #[must_use = "bytes the engine did not take must be offered again (back-pressure)"]
    pub fn handle_input(&mut self, conn: crate::device::ConnId, bytes: &[u8]) -> usize {
        let now = self.now();
        self.device.handle_input(conn, now, bytes)
    }

    /// One round: samples in, due timeouts, events out. Returns the events the binding must move.
    pub fn pump(&mut self) -> Pumped {
        let now = self.now();
        loop {
            match self.source.read(&mut self.buf) {
                Ok(Some(raw)) => {
                    let raw = RawBlock {
                        len: raw.len.min(self.buf.len()),
                        ..raw
                    };
                    Src::Sample::deliver(&mut self.device, now, raw, &mut self.buf);
                }
                Ok(None) => break,
                Err(_) => {
                    self.hal_errors = self.hal_errors.saturating_add(1);
                    break;
                }
            }
        }
        if self.device.poll_timeout().is_some_and(|t| t <= now) {
            self.device.handle_timeout(now);
        }
        let mut out = Pumped::default();
        while let Some(ev) = self.device.poll_event() {
            match ev {
                Event::Persist(record) => self.persist(&record),
                Event::Restart(_) => {
                    if self.system.restart().is_err() {
                        self.hal_errors = self.hal_errors.saturating_add(1);
                    }
                    out.restarted = true;
                }
                other => out.network.push(other),
            }
        }
        out
    }

    fn persist(&mut self, record: &Record) {
        if self.store.save(record.slot(), record.bytes()).is_err() {
            self.hal_errors = self.hal_errors.saturating_add(1);
        }
    }
}
