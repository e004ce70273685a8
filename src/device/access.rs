//! Access control state (docs/protocol.md §10): the device-wide throttle of token checks.
//!
//! Every token check (an `auth` on a connection, a protected command carrying `"token"` over MQTT)
//! goes through one [`Throttle`]. After `n` consecutive wrong tokens the next check waits
//! `min(100 ms · 2^(n-1), 10 s)` after the last failure; a right token resets the delay. Checks that
//! arrive while the delay runs are held in arrival order (FIFO across connections) and answered one
//! by one when they are due, so guessing runs at ≤ 10 tries/s across all connections and reconnects,
//! while everything that is not a token check carries on.

use alloc::collections::VecDeque;
use alloc::string::String;
use core::time::Duration;

use super::{ConnId, Instant};
use crate::wire::command::Command;

/// Delay after the first wrong token.
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
/// Longest delay between two token checks.
pub const MAX_DELAY: Duration = Duration::from_secs(10);
/// Most MQTT commands held for their token check (an MQTT publisher cannot be slowed down the way
/// a socket is; beyond this they are refused without a check).
pub const MAX_HELD_MQTT: usize = 8;

/// A token check waiting for its turn.
#[derive(Debug, Clone, PartialEq)]
pub enum HeldCheck {
    /// An `auth` line of a connection (which waits with [`Wait::Auth`](super::session::Wait::Auth)).
    Auth {
        /// The connection.
        conn: ConnId,
        /// The token it sent.
        token: String,
    },
    /// A protected command that came over MQTT with its token.
    Mqtt {
        /// The command.
        command: Command,
        /// The token it carried.
        token: String,
    },
}

/// The device-wide token-check throttle and the checks it holds.
#[derive(Debug, Clone, Default)]
pub struct Throttle {
    failures: u32,
    next: Option<Instant>,
    held: VecDeque<HeldCheck>,
}

impl Throttle {
    /// Whether a check may run at `now` (no delay pending, or it has passed).
    pub fn ready(&self, now: Instant) -> bool {
        self.next.is_none_or(|t| now >= t)
    }

    /// When the next check may run (`now` or earlier when none is pending).
    pub fn due(&self) -> Instant {
        self.next.unwrap_or(Instant::EPOCH)
    }

    /// Consecutive wrong tokens so far.
    #[cfg(test)]
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A wrong token at `now`: the next check waits the doubled delay.
    pub fn failed(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        let shift = self.failures.saturating_sub(1).min(16);
        let delay = FIRST_DELAY
            .checked_mul(1 << shift)
            .unwrap_or(MAX_DELAY)
            .min(MAX_DELAY);
        self.next = Some(now + delay);
    }

    /// A right token: no delay any more.
    pub fn succeeded(&mut self, _now: Instant) {
        self.failures = 0;
        self.next = None;
    }

    /// Whether checks are held (a new one must queue behind them, first come first served).
    pub fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Holds a check until it is due. MQTT checks beyond [`MAX_HELD_MQTT`] are handed back.
    pub fn hold(&mut self, check: HeldCheck) -> Result<(), HeldCheck> {
        if matches!(check, HeldCheck::Mqtt { .. })
            && self
                .held
                .iter()
                .filter(|c| matches!(c, HeldCheck::Mqtt { .. }))
                .count()
                >= MAX_HELD_MQTT
        {
            return Err(check);
        }
        self.held.push_back(check);
        Ok(())
    }

    /// The oldest held check, if one may run at `now`.
    pub fn next_due(&mut self, now: Instant) -> Option<HeldCheck> {
        if self.ready(now) {
            self.held.pop_front()
        } else {
            None
        }
    }

    /// The deadline `poll_timeout` must report (only while checks are held).
    pub fn deadline(&self) -> Option<Instant> {
        (!self.held.is_empty()).then(|| self.due())
    }

    /// Forgets the held `auth` of a closed connection.
    pub fn forget(&mut self, conn: ConnId) {
        self.held
            .retain(|c| !matches!(c, HeldCheck::Auth { conn: x, .. } if *x == conn));
    }

    /// Heap bytes held (approximate).
    pub fn heap_bytes(&self) -> usize {
        self.held.capacity() * core::mem::size_of::<HeldCheck>()
    }
}

/// Constant-time comparison of tokens (no early exit on the first differing byte).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_per_failure_and_a_right_token_resets_it() {
        let t0 = Instant::from_secs(1_614_681_575);
        let mut t = Throttle::default();
        assert!(t.ready(t0));
        t.failed(t0);
        assert!(!t.ready(t0 + Duration::from_millis(99)));
        assert!(t.ready(t0 + Duration::from_millis(100)));
        t.failed(t0);
        assert_eq!(t.failures(), 2);
        assert_eq!(t.due(), t0 + Duration::from_millis(200));
        t.succeeded(t0);
        assert_eq!(t.failures(), 0);
        assert!(t.ready(t0));
    }
}
