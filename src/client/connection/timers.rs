//! The connection's deadlines, one table (quinn-proto's `TimerTable`): the caller asks for the
//! earliest ([`TimerTable::next`]) and reports when it passed.

use std::time::Instant;

/// Every deadline a [`Connection`](super::Connection) keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// The unprompted `info` of a TCP connection is late: ask for it.
    Greeting,
    /// The oldest request that still waits for its reply runs out of time.
    Reply,
    /// Nothing was written for the keepalive time: send `!`.
    Keepalive,
    /// Nothing was received for the liveness time (probe with `info`), or nothing came back after
    /// the probe (the connection is lost).
    Liveness,
}

impl Timer {
    const ALL: [Timer; 4] = [
        Timer::Greeting,
        Timer::Reply,
        Timer::Keepalive,
        Timer::Liveness,
    ];

    const fn index(self) -> usize {
        match self {
            Timer::Greeting => 0,
            Timer::Reply => 1,
            Timer::Keepalive => 2,
            Timer::Liveness => 3,
        }
    }
}

/// When each [`Timer`] fires, if it is armed.
#[derive(Debug, Clone, Default)]
pub(super) struct TimerTable {
    at: [Option<Instant>; 4],
}

impl TimerTable {
    pub(super) fn set(&mut self, timer: Timer, at: Instant) {
        if let Some(slot) = self.at.get_mut(timer.index()) {
            *slot = Some(at);
        }
    }

    pub(super) fn stop(&mut self, timer: Timer) {
        if let Some(slot) = self.at.get_mut(timer.index()) {
            *slot = None;
        }
    }

    pub(super) fn get(&self, timer: Timer) -> Option<Instant> {
        self.at.get(timer.index()).copied().flatten()
    }

    /// The earliest armed deadline.
    pub(super) fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }

    /// The armed timers whose deadline is at or before `now`, earliest first.
    pub(super) fn expired(&self, now: Instant) -> impl Iterator<Item = Timer> + '_ {
        let mut due: [Option<(Instant, Timer)>; 4] = [None; 4];
        for (slot, timer) in due.iter_mut().zip(Timer::ALL) {
            *slot = self
                .get(timer)
                .filter(|at| *at <= now)
                .map(|at| (at, timer));
        }
        due.sort_by_key(|d| d.map(|(at, _)| at));
        due.into_iter().flatten().map(|(_, t)| t)
    }

    pub(super) fn clear(&mut self) {
        self.at = [None; 4];
    }
}
