//! The engine's deadlines in one table (quinn-proto's `TimerTable`): every timer is a variant of
//! [`Timer`], armed or stopped by the part of the engine that owns what it times, and
//! [`Device::poll_timeout`](super::Device::poll_timeout) is the earliest armed one.
//!
//! A timer that fires is stopped or re-armed in the future by `handle_timeout`, so a binding that
//! calls `handle_timeout` whenever `poll_timeout` has passed never spins.

use super::Instant;

/// Everything the engine waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Once a second: the liveness or rate line, loss reports, the daily-restart check.
    Tick,
    /// The energy registers are persisted every `persist_interval`.
    PersistEnergy,
    /// The MQTT status is published every `status_interval` (silently skipped while no broker is
    /// connected, see [`Timer::reported`]).
    Status,
    /// The stream server is asked for again every `reconnect_interval` until it connects.
    Reconnect,
    /// The background NTP sync (hourly).
    NtpSync,
    /// An NTP request the binding never answers counts as failed.
    NtpTimeout,
    /// A pending restart goes ahead even if output has not drained.
    RestartDrain,
    /// The logbook may be written (at most once a minute).
    LogbookWrite,
    /// The power-quality event store may be written (at most once a minute).
    EventsWrite,
    /// The oldest held token check may run (the device-wide `auth` throttle).
    AuthThrottle,
    /// An evicted idle client is closed even if it never reads its last line.
    ForcedClose,
    /// The next Home Assistant discovery message (config or removal) goes out: they are paced, one
    /// per `mqtt::DISCOVERY_PACE`, so a binding's bounded publish queue never overflows (§12).
    Discovery,
}

impl Timer {
    /// Every timer, in the order `handle_timeout` serves them.
    pub(crate) const ALL: [Timer; 12] = [
        Timer::AuthThrottle,
        Timer::Tick,
        Timer::PersistEnergy,
        Timer::Status,
        Timer::LogbookWrite,
        Timer::EventsWrite,
        Timer::Reconnect,
        Timer::RestartDrain,
        Timer::NtpTimeout,
        Timer::NtpSync,
        Timer::ForcedClose,
        Timer::Discovery,
    ];

    const fn index(self) -> usize {
        match self {
            Timer::AuthThrottle => 0,
            Timer::Tick => 1,
            Timer::PersistEnergy => 2,
            Timer::Status => 3,
            Timer::LogbookWrite => 4,
            Timer::Reconnect => 5,
            Timer::RestartDrain => 6,
            Timer::NtpTimeout => 7,
            Timer::NtpSync => 8,
            Timer::ForcedClose => 9,
            Timer::EventsWrite => 10,
            Timer::Discovery => 11,
        }
    }

    /// Whether the deadline is reported to the binding: the status period runs on while no broker
    /// is connected, but is no reason to wake the engine.
    pub(crate) fn reported(self, mqtt_connected: bool) -> bool {
        self != Timer::Status || mqtt_connected
    }
}

/// One deadline per [`Timer`].
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    at: [Option<Instant>; Timer::ALL.len()],
}

impl TimerTable {
    /// Arms `timer` for `at` (replacing any earlier deadline).
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.set_opt(timer, Some(at));
    }

    /// Arms `timer` for `at`, or stops it for `None`.
    pub(crate) fn set_opt(&mut self, timer: Timer, at: Option<Instant>) {
        if let Some(slot) = self.at.get_mut(timer.index()) {
            *slot = at;
        }
    }

    /// Stops `timer`.
    pub(crate) fn stop(&mut self, timer: Timer) {
        self.set_opt(timer, None);
    }

    /// The deadline of `timer`, if armed.
    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.at.get(timer.index()).copied().flatten()
    }

    /// Whether `timer` is armed and its deadline has come.
    pub(crate) fn expired(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|t| t <= now)
    }

    /// Whether `timer` has expired at `now`; if so it is stopped (the caller re-arms it).
    pub(crate) fn take_expired(&mut self, timer: Timer, now: Instant) -> bool {
        let due = self.expired(timer, now);
        if due {
            self.stop(timer);
        }
        due
    }

    /// The earliest deadline among the timers `report` admits.
    pub(crate) fn next_timeout(&self, report: impl Fn(Timer) -> bool) -> Option<Instant> {
        Timer::ALL
            .into_iter()
            .filter(|t| report(*t))
            .filter_map(|t| self.get(t))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    #[test]
    fn the_earliest_reported_deadline_wins_and_expired_timers_are_taken_once() {
        let t0 = Instant::from_secs(100);
        let mut t = TimerTable::default();
        assert_eq!(t.next_timeout(|_| true), None);
        t.set(Timer::Tick, t0 + Duration::from_secs(1));
        t.set(Timer::Status, t0 + Duration::from_millis(500));
        t.set(Timer::NtpSync, t0 + Duration::from_secs(3600));
        assert_eq!(
            t.next_timeout(|x| x.reported(true)),
            Some(t0 + Duration::from_millis(500))
        );
        // without a broker the status deadline wakes nobody
        assert_eq!(
            t.next_timeout(|x| x.reported(false)),
            Some(t0 + Duration::from_secs(1))
        );
        assert!(!t.expired(Timer::Tick, t0));
        assert!(t.take_expired(Timer::Status, t0 + Duration::from_secs(1)));
        assert!(!t.take_expired(Timer::Status, t0 + Duration::from_secs(1)));
        assert_eq!(t.get(Timer::Status), None);
        t.set_opt(Timer::Tick, None);
        assert_eq!(
            t.next_timeout(|_| true),
            Some(t0 + Duration::from_secs(3600))
        );
    }

    #[test]
    fn indices_are_distinct() {
        let mut seen = [false; Timer::ALL.len()];
        for t in Timer::ALL {
            assert!(!seen[t.index()], "{t:?}");
            seen[t.index()] = true;
        }
    }
}
