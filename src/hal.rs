//! Hardware abstraction: the few traits a binding implements so the [`device`](crate::device) engine
//! can be served on any target, and the plain values they hand over.
//!
//! Modelled on embedded-hal 1.0: every trait has an associated `Error` type that maps to a small,
//! `#[non_exhaustive]` [`ErrorKind`] (so generic code can react to *what* went wrong without knowing the
//! concrete driver), every trait has a blanket implementation for `&mut T`, and the traits are tiny.
//!
//! | trait | what the engine needs from the platform | hands over |
//! |---|---|---|
//! | [`SampleSource`] | blocks of interleaved 3-phase samples (`i32` ADC codes for the integer measurement path, or `f32` codes or volts/amps) with rate and start time | [`RawBlock`] → [`Block`] ([`PhysicalBlock`] or [`CodeBlock`]) |
//! | [`Clock`] | the wall clock, in microseconds since the Unix epoch | [`Instant`] |
//! | [`Store`] | load / save of one record slot (the engine writes versioned, checksummed records into two slots per kind) | [`SlotId`], [`RecordKind`] |
//! | [`System`] | restart the device | — |
//!
//! This module sits below the engine: it names nothing of `device`, `dsp` or `calibration`. The loop
//! that wires these traits to the engine is [`device::driver::Driver`](crate::device::driver::Driver),
//! the one loop every binding goes through.
//!
//! ```
//! use smartmeter::hal::{Clock, ErrorKind, ErrorType, Instant};
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
//! use smartmeter::hal::{ErrorKind, ErrorType, Instant, RawBlock, SampleScale, SampleSource};
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

mod slot;
mod time;

pub use slot::{RecordKind, SlotId};
pub use time::Instant;

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

// ----- samples ------------------------------------------------------------------------------------

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

/// What a [`SampleSource`] wrote: interleaved `v_l1,i_l1,v_l2,i_l2,v_l3,i_l3` samples in the caller's
/// buffer.
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
    /// Converts codes to volts/amps in place (no-op for [`SampleScale::Physical`]), so the values can
    /// be handed over as a [`PhysicalBlock`].
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

/// A block of samples from the metering front end: interleaved `v_l1,i_l1,v_l2,i_l2,v_l3,i_l3` in volts
/// and amps (before calibration), taken at `rate_hz` starting at `start` (binding clock).
#[derive(Debug, Clone, Copy)]
pub struct PhysicalBlock<'a> {
    /// Samples per second per channel.
    pub rate_hz: u32,
    /// Interleaved values; a trailing partial sample is ignored.
    pub samples: &'a [f32],
    /// When the first sample was taken.
    pub start: Instant,
}

/// A block of raw ADC codes from the metering front end (`v_l1,i_l1,v_l2,i_l2,v_l3,i_l3`), with the
/// scale that turns them into volts and amps. The engine measures such blocks on the estimator's
/// integer path, which is what a core without an FPU wants: no per-sample float work unless a
/// sampling session needs the values in volts and amps.
#[derive(Debug, Clone, Copy)]
pub struct CodeBlock<'a> {
    /// Samples per second per channel.
    pub rate_hz: u32,
    /// Interleaved signed codes (up to 24 bits); a trailing partial sample is ignored.
    pub codes: &'a [i32],
    /// Volts at the line per code (before calibration).
    pub volts_per_code: f64,
    /// Amps in the conductor per code (before calibration).
    pub amps_per_code: f64,
    /// When the first sample was taken.
    pub start: Instant,
}

/// A block as the engine takes it: volts and amps, or codes for the integer path.
#[derive(Debug, Clone, Copy)]
pub enum Block<'a> {
    /// Volts and amps ([`Device::handle_samples`](crate::device::Device::handle_samples)).
    Physical(PhysicalBlock<'a>),
    /// ADC codes ([`Device::handle_codes`](crate::device::Device::handle_codes)).
    Codes(CodeBlock<'a>),
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

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for i32 {}
}

/// The sample types a [`SampleSource`] can write (`f32`, `i32`; sealed), and the [`Block`] a buffer
/// of them becomes: `f32` a [`PhysicalBlock`] (codes scaled first), `i32` a [`CodeBlock`].
pub trait SourceSample: Copy + Default + sealed::Sealed {
    /// `buf[..raw.len]` as a block (`None` when `raw.len` exceeds the buffer).
    fn block(raw: RawBlock, buf: &mut [Self]) -> Option<Block<'_>>;
}

impl SourceSample for f32 {
    fn block(mut raw: RawBlock, buf: &mut [f32]) -> Option<Block<'_>> {
        raw.to_physical(buf);
        let samples = buf.get(..raw.len)?;
        Some(Block::Physical(PhysicalBlock {
            rate_hz: raw.rate_hz,
            samples,
            start: raw.start,
        }))
    }
}

impl SourceSample for i32 {
    fn block(raw: RawBlock, buf: &mut [i32]) -> Option<Block<'_>> {
        let (volts_per_code, amps_per_code) = match raw.scale {
            SampleScale::Codes {
                volts_per_code,
                amps_per_code,
            } => (f64::from(volts_per_code), f64::from(amps_per_code)),
            SampleScale::Physical => (1.0, 1.0),
        };
        let codes = buf.get(..raw.len)?;
        Some(Block::Codes(CodeBlock {
            rate_hz: raw.rate_hz,
            codes,
            volts_per_code,
            amps_per_code,
            start: raw.start,
        }))
    }
}

// ----- clock, store, system -----------------------------------------------------------------------

/// The binding's clock: microseconds since the Unix epoch (not NTP-corrected; the engine applies the
/// offset it learns from its NTP exchanges).
pub trait Clock: ErrorType {
    /// The current time.
    fn now(&mut self) -> Result<Instant, Self::Error>;
}

impl<T: Clock + ?Sized> Clock for &mut T {
    fn now(&mut self) -> Result<Instant, Self::Error> {
        T::now(self)
    }
}

/// Largest record a [`Store`] slot must hold, in bytes.
pub const MAX_RECORD_BYTES: usize = 4096;

/// A persistent store of record slots (flash pages, files, EEPROM).
///
/// The engine only asks to overwrite one slot at a time and alternates between the two slots of a
/// record kind, so an implementation needs no journaling of its own: a write interrupted at any byte
/// leaves the other slot intact, and the records' checksums reveal the torn one.
pub trait Store: ErrorType {
    /// Reads the slot into `buf` (at most [`MAX_RECORD_BYTES`]); returns the number of bytes stored
    /// (0 = empty slot).
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
    /// Restarts the device. A binding that cannot restart at once (the firmware lets its sockets
    /// drain first; the host simulator rebuilds its engine in place) records the request and returns.
    fn restart(&mut self) -> Result<(), Self::Error>;
}

impl<T: System + ?Sized> System for &mut T {
    fn restart(&mut self) -> Result<(), Self::Error> {
        T::restart(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_codes_become_volts_and_i32_codes_keep_their_scale() {
        let raw = RawBlock {
            rate_hz: 8000,
            start: Instant::from_secs(1),
            len: 6,
            scale: SampleScale::Codes {
                volts_per_code: 0.5,
                amps_per_code: 0.25,
            },
        };
        let mut f = [2.0f32; 7];
        match f32::block(raw, &mut f) {
            Some(Block::Physical(b)) => assert_eq!(b.samples, [1.0, 0.5, 1.0, 0.5, 1.0, 0.5]),
            other => panic!("{other:?}"),
        }
        let mut c = [4i32; 6];
        match i32::block(raw, &mut c) {
            Some(Block::Codes(b)) => {
                assert_eq!((b.volts_per_code, b.amps_per_code), (0.5, 0.25));
                assert_eq!(b.codes.len(), 6);
            }
            other => panic!("{other:?}"),
        }
        let too_long = RawBlock { len: 12, ..raw };
        assert!(i32::block(too_long, &mut c).is_none());
    }
}
