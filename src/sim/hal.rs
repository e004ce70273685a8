//! The host side of the HAL traits the simulator's [`Driver`](crate::device::driver::Driver) runs on:
//! the host clock, and a restart that rebuilds the engine in place. The synthetic grid is the
//! sample source ([`grid::GridSource`](super::grid::GridSource)), the state directory the store
//! ([`store::FileStore`](super::store::FileStore)).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::hal::{Clock, ErrorType, Instant, System};

/// The host clock (`SystemTime`) as the engine's [`Instant`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HostClock;

impl HostClock {
    /// The current host time (the epoch if the host clock is before it).
    pub(crate) fn now() -> Instant {
        let us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Instant::from_micros(us)
    }
}

impl ErrorType for HostClock {
    type Error = core::convert::Infallible;
}

impl Clock for HostClock {
    fn now(&mut self) -> Result<Instant, Self::Error> {
        Ok(HostClock::now())
    }
}

/// A restart request: the runtime rebuilds the engine from the store once the driver reports it
/// (listeners, the pty and the MQTT bridge stay).
#[derive(Debug, Default)]
pub(crate) struct InPlaceRestart;

impl ErrorType for InPlaceRestart {
    type Error = core::convert::Infallible;
}

impl System for InPlaceRestart {
    fn restart(&mut self) -> Result<(), Self::Error> {
        // `Pumped::restarted` tells the runtime; there is nothing to reset here.
        Ok(())
    }
}
