//! Every open connection (docs/protocol.md §1): slots and admission, idle eviction, line assembly with
//! back-pressure, the answers a connection waits for and the lines held behind them, its output
//! queue, log level and authentication, the device-wide token-check throttle, and closing.
//!
//! Per-connection state is a [`Session`]; this module owns them all and the rules that span them.

use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use super::access::Throttle;
use super::session::{Deferred, Line, Session, Wait};
use super::timers::{Timer, TimerTable};
use super::{ConnId, ConnKind, DeviceOptions, Instant, LogLevel};

/// An evicted idle client is closed after this even if it never reads its last line.
pub(crate) const EVICT_GRACE: Duration = Duration::from_secs(2);

/// Where a reply goes: a connection (as an `Info:` line) or the MQTT bridge (published on
/// `powermeter/<name>/state/info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sink {
    Conn(ConnId),
    Mqtt,
}

/// The connections and the limits they share.
#[derive(Debug, Clone)]
pub(crate) struct Connections {
    sessions: Vec<Session>,
    next_id: u32,
    max_clients: usize,
    idle_timeout: Duration,
    out_queue_bytes: usize,
    text_slack_bytes: usize,
    /// The device-wide token-check throttle (docs/protocol.md §10) and the checks it holds.
    pub(crate) throttle: Throttle,
}

impl Connections {
    /// No connections yet; limits and queue sizes from `opts`.
    pub(crate) fn new(opts: &DeviceOptions) -> Self {
        Connections {
            sessions: Vec::new(),
            next_id: 0,
            max_clients: opts.max_clients,
            idle_timeout: opts.idle_timeout,
            out_queue_bytes: opts.out_queue_bytes,
            text_slack_bytes: opts.text_slack_bytes,
            throttle: Throttle::default(),
        }
    }

    /// Adds a connection (never refused here: see [`Connections::is_full`]); `authenticated` when no
    /// token is configured.
    pub(crate) fn open(&mut self, kind: ConnKind, now: Instant, authenticated: bool) -> ConnId {
        let id = ConnId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        let mut s = Session::new(id, kind, self.out_queue_bytes, self.text_slack_bytes, now);
        s.authenticated = authenticated;
        self.sessions.push(s);
        id
    }

    /// Removes a connection the binding reported closed; false if it was unknown.
    pub(crate) fn remove(&mut self, conn: ConnId, timers: &mut TimerTable) -> bool {
        let Some(pos) = self.sessions.iter().position(|s| s.id == conn) else {
            return false;
        };
        self.sessions.remove(pos);
        self.throttle.forget(conn);
        self.arm_throttle(timers);
        true
    }

    pub(crate) fn get(&self, conn: ConnId) -> Option<&Session> {
        self.sessions.iter().find(|s| s.id == conn)
    }

    pub(crate) fn get_mut(&mut self, conn: ConnId) -> Option<&mut Session> {
        self.sessions.iter_mut().find(|s| s.id == conn)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Session> + '_ {
        self.sessions.iter()
    }

    /// What kind of connection `conn` is.
    pub(crate) fn kind(&self, conn: ConnId) -> Option<ConnKind> {
        self.get(conn).map(|s| s.kind)
    }

    /// The serial console, if one is open and takes commands.
    pub(crate) fn serial(&self) -> Option<ConnId> {
        self.sessions
            .iter()
            .find(|s| s.kind == ConnKind::Serial && s.takes_commands())
            .map(|s| s.id)
    }

    /// The UDP peer of a requester (a command or stream-server connection).
    pub(crate) fn peer_of(&self, sink: Sink) -> Option<SocketAddr> {
        match sink {
            Sink::Conn(c) => self.get(c).and_then(|s| match s.kind {
                ConnKind::Command { peer } | ConnKind::StreamServer { peer } => Some(peer),
                _ => None,
            }),
            Sink::Mqtt => None,
        }
    }

    // ----- admission ------------------------------------------------------------------------------

    /// Command connections that count against `max_clients`.
    fn command_clients(&self) -> usize {
        self.sessions
            .iter()
            .filter(|s| matches!(s.kind, ConnKind::Command { .. }) && !s.close_after_drain)
            .count()
    }

    /// Every command slot is taken.
    pub(crate) fn is_full(&self) -> bool {
        self.command_clients() >= self.max_clients
    }

    /// The command connection whose last complete line (or connect) is the oldest, if that is at
    /// least `idle_timeout` ago and it does not `own` a sampling session.
    pub(crate) fn idle_victim(
        &self,
        now: Instant,
        owns: impl Fn(ConnId) -> bool,
    ) -> Option<ConnId> {
        self.sessions
            .iter()
            .filter(|s| matches!(s.kind, ConnKind::Command { .. }) && s.takes_commands())
            .filter(|s| now.saturating_since(s.last_line_at) >= self.idle_timeout)
            .filter(|s| !owns(s.id))
            .min_by_key(|s| (s.last_line_at, s.id))
            .map(|s| s.id)
    }

    /// Closes an idle client to make room: `line` (`Idle connection closed`) goes out whether or
    /// not it fits, then the connection is closed once that line has left, or after
    /// [`EVICT_GRACE`] if it never reads.
    pub(crate) fn evict(
        &mut self,
        conn: ConnId,
        line: &[u8],
        now: Instant,
        timers: &mut TimerTable,
    ) {
        if let Some(s) = self.get_mut(conn) {
            s.out.push_reply(line);
            s.close_after_drain = true;
            s.close_by = Some(now + EVICT_GRACE);
        }
        self.throttle.forget(conn);
        self.arm_throttle(timers);
        self.arm_forced_close(now, timers);
    }

    // ----- input ----------------------------------------------------------------------------------

    /// Reads the next line of `conn`: a held one first, then from `bytes`. Returns the bytes taken
    /// and the line; `None` when no line can be taken now — the bytes ran out, or there is no room
    /// behind a pending answer (the line is held where it is: back-pressure). A connection that
    /// takes no commands (a raw reader, one being closed, an unknown id) takes every byte.
    pub(crate) fn next_line(
        &mut self,
        conn: ConnId,
        now: Instant,
        bytes: &[u8],
    ) -> (usize, Option<Deferred>) {
        let Some(s) = self.get_mut(conn).filter(|s| s.takes_commands()) else {
            return (bytes.len(), None);
        };
        if (bytes.is_empty() && !s.lines.is_held()) || s.out.backlogged() {
            // nothing to read, or a reader behind on its output: no new line until it catches
            // up, so its replies are never dropped (the bytes stay with the binding)
            return (0, None);
        }
        let (n, line) = s.lines.feed(bytes);
        let work = match line {
            None => return (n, None),
            Some(Line::Complete(l)) => Deferred::Line(l.to_vec()),
            Some(Line::TooLong) => Deferred::TooLong,
        };
        if n > 0 {
            // a line completed now (a held one completed earlier): the idle clock restarts
            s.last_line_at = now;
        }
        if !s.can_take(work.len()) {
            s.lines.hold();
            return (n, None);
        }
        (n, Some(work))
    }

    /// What `conn` waits for, if anything.
    pub(crate) fn waiting(&self, conn: ConnId) -> Option<Wait> {
        self.get(conn).and_then(|s| s.waiting)
    }

    /// `conn` waits for `wait`: its later lines are held.
    pub(crate) fn set_wait(&mut self, conn: ConnId, wait: Wait) {
        if let Some(s) = self.get_mut(conn) {
            s.waiting = Some(wait);
        }
    }

    /// Ends a wait of `conn` for `wait`; false if it was not waiting for that.
    pub(crate) fn end_wait(&mut self, conn: ConnId, wait: Wait) -> bool {
        match self.get_mut(conn) {
            Some(s) if s.waiting == Some(wait) => {
                s.waiting = None;
                true
            }
            _ => false,
        }
    }

    /// Holds a line behind the pending answer (the caller got it from [`Connections::next_line`]).
    pub(crate) fn defer(&mut self, conn: ConnId, work: Deferred) {
        if let Some(s) = self.get_mut(conn) {
            s.defer(work);
        }
    }

    /// The oldest held line of `conn`, if it waits for nothing.
    pub(crate) fn next_deferred(&mut self, conn: ConnId) -> Option<Deferred> {
        self.get_mut(conn)
            .filter(|s| s.waiting.is_none())
            .and_then(|s| s.deferred.pop_front())
    }

    // ----- output ---------------------------------------------------------------------------------

    /// Queues a reply (or another line the protocol owes) for `conn`; never dropped, see
    /// [`OutQueue::push_reply`](super::session::OutQueue::push_reply).
    pub(crate) fn send_reply(&mut self, conn: ConnId, line: &[u8]) {
        if let Some(s) = self.get_mut(conn) {
            s.out.push_reply(line);
        }
    }

    /// Whether `conn` has more output queued than frames may fill (its reader is behind).
    pub(crate) fn backlogged(&self, conn: ConnId) -> bool {
        self.get(conn).is_some_and(|s| s.out.backlogged())
    }

    /// A log line to every command connection whose level admits it.
    pub(crate) fn broadcast_log(&mut self, level: LogLevel, line: &[u8]) {
        for s in &mut self.sessions {
            if s.takes_commands() && level >= s.level {
                s.out.push_text(line);
            }
        }
    }

    /// Moves up to `buf.len()` queued bytes of `conn` into `buf`.
    pub(crate) fn poll_output(&mut self, conn: ConnId, buf: &mut [u8]) -> usize {
        self.get_mut(conn).map_or(0, |s| s.out.pop_into(buf))
    }

    /// Every output queue is empty.
    pub(crate) fn drained(&self) -> bool {
        self.sessions.iter().all(|s| s.out.is_empty())
    }

    // ----- closing --------------------------------------------------------------------------------

    /// Closes `conn` once its output has drained.
    pub(crate) fn close(&mut self, conn: ConnId) {
        if let Some(s) = self.get_mut(conn) {
            s.close_after_drain = true;
        }
    }

    /// The connections to close now (drained, or past their forced close); each is reported once,
    /// and takes no more input.
    pub(crate) fn take_closes(&mut self, now: Instant, timers: &mut TimerTable) -> Vec<ConnId> {
        let mut closes = Vec::new();
        for s in &mut self.sessions {
            let overdue = s.close_by.is_some_and(|t| now >= t);
            if s.close_after_drain && !s.closing && (s.out.is_empty() || overdue) {
                s.closing = true;
                s.lines = Default::default();
                s.deferred.clear();
                closes.push(s.id);
            }
        }
        if !closes.is_empty() {
            self.arm_forced_close(now, timers);
        }
        closes
    }

    /// Arms [`Timer::ForcedClose`] for the earliest forced close still ahead (past it, the close is
    /// [`Connections::take_closes`]'s to report).
    pub(crate) fn arm_forced_close(&self, now: Instant, timers: &mut TimerTable) {
        let next = self
            .sessions
            .iter()
            .filter(|s| !s.closing)
            .filter_map(|s| s.close_by)
            .filter(|d| *d > now)
            .min();
        timers.set_opt(Timer::ForcedClose, next);
    }

    // ----- authentication ---------------------------------------------------------------------------

    /// Arms [`Timer::AuthThrottle`] for the oldest held token check (stopped while none is held).
    pub(crate) fn arm_throttle(&self, timers: &mut TimerTable) {
        timers.set_opt(Timer::AuthThrottle, self.throttle.deadline());
    }

    /// Whether `conn` passed `auth` (or no token is configured).
    pub(crate) fn is_authenticated(&self, conn: ConnId) -> bool {
        self.get(conn).is_some_and(|s| s.authenticated)
    }

    /// `conn` sent the right token.
    pub(crate) fn authenticated(&mut self, conn: ConnId) {
        if let Some(s) = self.get_mut(conn) {
            s.authenticated = true;
            s.auth_failures = 0;
        }
    }

    /// `conn` sent a wrong token: its failures so far.
    pub(crate) fn auth_failed(&mut self, conn: ConnId) -> u8 {
        self.get_mut(conn).map_or(0, |s| {
            s.auth_failures = s.auth_failures.saturating_add(1);
            s.auth_failures
        })
    }

    /// A new token: only `keep` (the connection that set it) stays authenticated.
    pub(crate) fn authenticate_only(&mut self, keep: Option<ConnId>) {
        for s in &mut self.sessions {
            s.authenticated = Some(s.id) == keep;
        }
    }

    /// Heap held by the connections (queues, line buffers, held lines, the throttle).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.sessions
            .iter()
            .map(|s| s.out.heap_bytes() + s.lines.heap_bytes() + s.deferred_bytes())
            .sum::<usize>()
            + self.sessions.capacity() * core::mem::size_of::<Session>()
            + self.throttle.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    fn conns(max_clients: usize) -> Connections {
        Connections::new(&DeviceOptions {
            max_clients,
            ..DeviceOptions::default()
        })
    }

    #[test]
    fn the_oldest_idle_client_that_owns_nothing_is_the_victim() {
        let t0 = Instant::from_secs(1_000);
        let mut c = conns(2);
        let a = c.open(ConnKind::Command { peer: peer(1) }, t0, true);
        let b = c.open(
            ConnKind::Command { peer: peer(2) },
            t0 + Duration::from_secs(1),
            true,
        );
        assert!(c.is_full());
        let late = t0 + Duration::from_secs(61);
        assert_eq!(c.idle_victim(late, |_| false), Some(a));
        assert_eq!(c.idle_victim(late, |x| x == a), Some(b));
        assert_eq!(c.idle_victim(t0 + Duration::from_secs(30), |_| false), None);
        let mut timers = TimerTable::default();
        c.evict(a, b"bye\r\n", late, &mut timers);
        assert!(!c.is_full());
        assert_eq!(timers.get(Timer::ForcedClose), Some(late + EVICT_GRACE));
        // the line is queued: the close waits for it, or for the grace period
        assert!(c.take_closes(late, &mut timers).is_empty());
        assert_eq!(c.take_closes(late + EVICT_GRACE, &mut timers), [a]);
        assert_eq!(timers.get(Timer::ForcedClose), None);
        assert!(
            c.take_closes(late + EVICT_GRACE, &mut timers).is_empty(),
            "once"
        );
    }

    #[test]
    fn a_line_behind_a_full_wait_is_held_and_comes_back_first() {
        let t0 = Instant::from_secs(1_000);
        let mut c = conns(2);
        let a = c.open(ConnKind::Serial, t0, true);
        let (n, w) = c.next_line(a, t0, b"one\ntwo\n");
        assert_eq!((n, w), (4, Some(Deferred::Line(b"one".to_vec()))));
        c.set_wait(a, Wait::Ntp);
        for _ in 0..super::super::session::MAX_DEFERRED {
            c.defer(a, Deferred::TooLong);
        }
        assert_eq!(c.next_line(a, t0, b"two\n"), (4, None), "held: no room");
        assert_eq!(c.next_deferred(a), None, "still waiting");
        assert!(c.end_wait(a, Wait::Ntp));
        assert_eq!(c.next_deferred(a), Some(Deferred::TooLong));
        while c.next_deferred(a).is_some() {}
        assert_eq!(
            c.next_line(a, t0, b"three\n"),
            (0, Some(Deferred::Line(b"two".to_vec())))
        );
        // a raw reader takes every byte and gives no line
        let r = c.open(ConnKind::RawStream { peer: peer(3) }, t0, true);
        assert_eq!(c.next_line(r, t0, b"x\n"), (2, None));
    }
}
