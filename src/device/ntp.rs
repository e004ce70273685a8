//! Time synchronisation (docs/protocol.md §5.7, §10 `ntp`): the offset from the binding's clock to the
//! server's, the one exchange in flight, and who waits for its outcome.
//!
//! The engine never talks to a server: it asks the binding for one exchange at a time
//! ([`Action::NtpRequest`](super::Action::NtpRequest)), counts a request the binding never answers as
//! failed after [`NTP_TIMEOUT`], and syncs again every [`NTP_PERIOD`].

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::conns::Sink;
use super::timers::{Timer, TimerTable};
use super::{ConnId, Instant, NtpResult};
use crate::wire::log::DateTime;

/// Period of the background sync.
pub(crate) const NTP_PERIOD: Duration = Duration::from_secs(3600);
/// An NTP request the binding never answers counts as failed after this.
pub(crate) const NTP_TIMEOUT: Duration = Duration::from_secs(5);

/// The calendar time of the wall-clock instant `wall` shifted by `zone_min` minutes east of UTC: the
/// one way the device turns its clock into the protocol's dates (which [`DateTime`] writes).
pub(crate) fn calendar(wall: Instant, zone_min: i32) -> DateTime {
    // `as_millis` is at most u64::MAX / 1000, below i64::MAX: the fallback never happens.
    let ms = i64::try_from(wall.as_millis()).unwrap_or(i64::MAX);
    DateTime::from_unix_millis(ms.saturating_add(i64::from(zone_min) * 60_000))
}

/// The NTP state machine.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ntp {
    /// Server time minus the binding's clock, µs (wall = now + offset).
    offset_us: i64,
    /// An exchange was asked for and is not answered yet (its timeout is [`Timer::NtpTimeout`]).
    inflight: bool,
    /// `ntp` commands waiting for the outcome, in arrival order.
    waiters: Vec<Sink>,
}

impl Ntp {
    /// `now` corrected by the last sync (the device's wall clock).
    pub(crate) fn wall_time(&self, now: Instant) -> Instant {
        now.offset_by(self.offset_us)
    }

    /// Asks for an exchange with `server` unless one is in flight or no server is configured
    /// (`-`); returns the server to send the request to. Arms [`Timer::NtpTimeout`].
    pub(crate) fn request(
        &mut self,
        server: &str,
        now: Instant,
        timers: &mut TimerTable,
    ) -> Option<String> {
        if server == "-" || server.is_empty() || self.inflight {
            return None;
        }
        self.inflight = true;
        timers.set(Timer::NtpTimeout, now + NTP_TIMEOUT);
        Some(server.into())
    }

    /// The background sync is due: re-arms [`Timer::NtpSync`].
    pub(crate) fn schedule_next(&mut self, now: Instant, timers: &mut TimerTable) {
        timers.set(Timer::NtpSync, now + NTP_PERIOD);
    }

    /// An `ntp` command waits for the outcome of the exchange.
    pub(crate) fn wait(&mut self, sink: Sink) {
        self.waiters.push(sink);
    }

    /// A connection went away: it waits for nothing any more.
    pub(crate) fn forget(&mut self, conn: ConnId) {
        self.waiters.retain(|w| *w != Sink::Conn(conn));
    }

    /// The outcome of the exchange (or its timeout): the offset is taken on success. Returns the
    /// confidence reached (half the round trip, ms) and the waiters to answer, in order.
    pub(crate) fn on_result(
        &mut self,
        result: NtpResult,
        timers: &mut TimerTable,
    ) -> (Option<u64>, Vec<Sink>) {
        self.inflight = false;
        timers.stop(Timer::NtpTimeout);
        let conf_ms = match result {
            NtpResult::Synced {
                offset_us,
                round_trip_us,
            } => {
                self.offset_us = offset_us;
                Some(round_trip_us / 2 / 1000)
            }
            NtpResult::Failed => None,
        };
        (conf_ms, core::mem::take(&mut self.waiters))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_exchange_at_a_time_and_the_offset_moves_the_wall_clock() {
        let t0 = Instant::from_secs(1_000);
        let mut timers = TimerTable::default();
        let mut ntp = Ntp::default();
        assert_eq!(ntp.request("-", t0, &mut timers), None);
        assert_eq!(
            ntp.request("pool.ntp.org", t0, &mut timers).as_deref(),
            Some("pool.ntp.org")
        );
        assert_eq!(timers.get(Timer::NtpTimeout), Some(t0 + NTP_TIMEOUT));
        assert_eq!(
            ntp.request("pool.ntp.org", t0, &mut timers),
            None,
            "in flight"
        );
        ntp.wait(Sink::Conn(ConnId(1)));
        ntp.wait(Sink::Mqtt);
        ntp.forget(ConnId(1));
        let (conf, waiters) = ntp.on_result(
            NtpResult::Synced {
                offset_us: -2_000_000,
                round_trip_us: 30_000,
            },
            &mut timers,
        );
        assert_eq!((conf, waiters), (Some(15), alloc::vec![Sink::Mqtt]));
        assert_eq!(timers.get(Timer::NtpTimeout), None);
        assert_eq!(ntp.wall_time(t0), Instant::from_secs(998));
        // a failure keeps the offset
        let (conf, _) = ntp.on_result(NtpResult::Failed, &mut timers);
        assert_eq!(conf, None);
        assert_eq!(ntp.wall_time(t0), Instant::from_secs(998));
        assert!(ntp.request("pool.ntp.org", t0, &mut timers).is_some());
    }

    #[test]
    fn calendar_shifts_by_the_zone_and_matches_the_seed() {
        // 1614681575 = 03/02/2021 10:39:35 UTC
        let t = Instant::from_millis(1_614_681_575_123);
        assert_eq!(calendar(t, 0).to_long_string(), "03/02/2021 10:39:35.123");
        assert_eq!(calendar(t, 0).to_short_string(), "03/02 10:39:35");
        assert_eq!(calendar(t, 60).to_short_string(), "03/02 11:39:35");
        assert_eq!(calendar(t, -660).to_short_string(), "03/01 23:39:35");
        assert_eq!(
            calendar(Instant::EPOCH, 0).to_long_string(),
            "01/01/1970 00:00:00.000"
        );
    }
}
