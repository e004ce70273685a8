//! The core's HAL traits on the ESP32-C3: sample source, clock, store, system.

use smartmeter::hal::{
    Clock, Error, ErrorKind, ErrorType, RawBlock, SampleScale, SampleSource, Store, System,
};
use smartmeter::hal::{Instant, SlotId};

use crate::sampler::SourceError;
use crate::store::{FlashStore, StoreError};

impl Error for SourceError {
    fn kind(&self) -> ErrorKind {
        match self {
            SourceError::Bus => ErrorKind::Unavailable,
            SourceError::Overrun => ErrorKind::Overrun,
            SourceError::BufferTooSmall => ErrorKind::BufferTooSmall,
        }
    }
}

impl Error for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::BufferTooSmall => ErrorKind::BufferTooSmall,
            StoreError::Flash | StoreError::Corrupt => ErrorKind::Storage,
        }
    }
}

/// The metering front end selected by the cargo feature, as the core's [`SampleSource`].
pub struct Meter(pub crate::sampler::Source);

impl ErrorType for Meter {
    type Error = SourceError;
}

impl SampleSource for Meter {
    /// ADC codes: the engine measures them on the estimator's integer path.
    type Sample = i32;
    fn read(&mut self, buf: &mut [i32]) -> Result<Option<RawBlock>, SourceError> {
        Ok(self.0.read(buf)?.map(|codes| RawBlock {
            rate_hz: codes.rate_hz,
            start: Instant::from_micros(codes.start_us),
            len: codes.len,
            scale: SampleScale::Codes {
                volts_per_code: codes.front_end.volts_per_code as f32,
                amps_per_code: codes.front_end.amps_per_code as f32,
            },
        }))
    }
}

/// The RTC as the core's [`Clock`].
pub struct RtcClock;

impl ErrorType for RtcClock {
    type Error = core::convert::Infallible;
}

impl Clock for RtcClock {
    fn now(&mut self) -> Result<Instant, Self::Error> {
        Ok(Instant::from_micros(crate::clock::now_us()))
    }
}

impl ErrorType for FlashStore {
    type Error = StoreError;
}

impl Store for FlashStore {
    fn load(&mut self, slot: SlotId, buf: &mut [u8]) -> Result<usize, StoreError> {
        FlashStore::load(self, slot_key(slot), buf)
    }
    fn save(&mut self, slot: SlotId, bytes: &[u8]) -> Result<(), StoreError> {
        FlashStore::save(self, slot_key(slot), bytes)
    }
}

fn slot_key(slot: SlotId) -> u8 {
    // Six slots; the index is dense and small by construction.
    slot.index() as u8
}

/// Software reset as the core's [`System`].
///
/// The engine asks for a restart once its output has been handed to the sockets; the bytes may still
/// sit in a socket's transmit buffer. `restart` therefore records the request and returns; the pump task
/// gives TCP [`RESTART_GRACE`] to deliver the last reply (`"Restarting"`) and then resets the chip.
pub struct Esp {
    requested: bool,
}

/// How long the last replies get to leave before the reset.
pub const RESTART_GRACE: embassy_time::Duration = embassy_time::Duration::from_millis(500);

impl Esp {
    /// No restart requested yet.
    pub const fn new() -> Self {
        Self { requested: false }
    }

    /// True once the engine asked for a restart.
    pub fn requested(&self) -> bool {
        self.requested
    }

    /// Resets the chip now (a software reset keeps the RTC running, so the clock survives).
    pub fn reset_now() -> ! {
        log::info!("restarting");
        esp_hal::system::software_reset()
    }
}

impl ErrorType for Esp {
    type Error = core::convert::Infallible;
}

impl System for Esp {
    fn restart(&mut self) -> Result<(), Self::Error> {
        self.requested = true;
        Ok(())
    }
}
