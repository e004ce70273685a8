//! Persistence (docs/protocol.md §7, §4 `getLog`): what is stored, with which sequence number, and when
//! the logbook may be written.
//!
//! Each record kind has its own sequence; a write of a kind still waiting in the
//! [`Outbox`] is replaced by the newer payload (same sequence number, same slot), so a burst of
//! changes costs one flash write and the queue stays bounded however fast commands arrive. The
//! logbook is written at most once per [`WRITE_INTERVAL`](super::logbook::WRITE_INTERVAL)
//! ([`Timer::LogbookWrite`]).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::config::Config;
use super::logbook::{Entry, Logbook};
use super::outbox::Outbox;
use super::store::record::Pick;
use super::timers::{Timer, TimerTable};
use super::{Action, Instant, Record, RecordKind, Restored};

/// What the store held at boot, decoded.
#[derive(Debug, Default)]
pub(crate) struct Boot {
    /// The stored settings, if valid.
    pub(crate) config: Option<Config>,
    /// Kinds whose stored records were unusable, and why.
    pub(crate) corrupt: Vec<(RecordKind, String)>,
}

/// Sequence numbers and the logbook.
#[derive(Debug, Clone)]
pub(crate) struct Persistence {
    /// The next sequence number per [`RecordKind`] (by [`RecordKind::index`]).
    seq: [u32; RecordKind::ALL.len()],
    /// The warning/error logbook (getLog).
    pub(crate) logbook: Logbook,
}

impl Persistence {
    /// Picks the newest valid record of each kind from `restored`; sequences continue after them.
    /// The energy and events payloads go to `decode` (their owners' decoders: false = invalid).
    pub(crate) fn boot(
        restored: &Restored,
        logbook_rows: usize,
        mut decode: impl FnMut(RecordKind, &[u8]) -> bool,
    ) -> (Persistence, Boot) {
        let mut p = Persistence {
            seq: [0; RecordKind::ALL.len()],
            logbook: Logbook::new(logbook_rows),
        };
        let mut boot = Boot::default();
        for kind in RecordKind::ALL {
            match restored.pick(kind) {
                Pick::Empty => {}
                Pick::Corrupt(e) => boot.corrupt.push((kind, e.to_string())),
                Pick::Found(rec) => {
                    if let Some(s) = p.seq.get_mut(kind.index()) {
                        *s = rec.seq().wrapping_add(1);
                    }
                    let ok = match kind {
                        RecordKind::Settings => serde_json::from_slice::<Config>(rec.payload())
                            .map(|c| boot.config = Some(c))
                            .is_ok(),
                        RecordKind::Energy | RecordKind::Events => decode(kind, rec.payload()),
                        RecordKind::Logbook => serde_json::from_slice::<Vec<Entry>>(rec.payload())
                            .map(|rows| p.logbook.restore(rows))
                            .is_ok(),
                    };
                    if !ok {
                        boot.corrupt.push((kind, "record payload invalid".into()));
                    }
                }
            }
        }
        (p, boot)
    }

    fn next_seq(&mut self, kind: RecordKind) -> u32 {
        let slot = self.seq.get_mut(kind.index());
        let s = slot.as_deref().copied().unwrap_or(0);
        if let Some(x) = slot {
            *x = s.wrapping_add(1);
        }
        s
    }

    /// Queues a record write of `kind` (replacing one still queued).
    pub(crate) fn save(&mut self, kind: RecordKind, payload: Vec<u8>, outbox: &mut Outbox) {
        if let Some(r) = outbox.queued_record(kind) {
            if let Ok(rec) = Record::new(kind, r.seq(), payload) {
                *r = rec;
            }
            return;
        }
        let seq = self.next_seq(kind);
        if let Ok(rec) = Record::new(kind, seq, payload) {
            outbox.push(Action::Persist(rec));
        }
    }

    /// Queues the settings.
    pub(crate) fn save_settings(&mut self, config: &Config, outbox: &mut Outbox) {
        if let Ok(p) = serde_json::to_vec(config) {
            self.save(RecordKind::Settings, p, outbox);
        }
    }

    /// A warning or error line (escaped text) for the logbook, at wall time `wall`; arms the
    /// logbook write.
    pub(crate) fn log(
        &mut self,
        letter: char,
        wall: Instant,
        text: &str,
        zone_min: i16,
        now: Instant,
        timers: &mut TimerTable,
    ) {
        self.logbook.push(letter, wall, text, zone_min);
        timers.set_opt(Timer::LogbookWrite, self.logbook.write_due(now));
    }

    /// `clearLog`: the logbook is emptied (and written when due).
    pub(crate) fn clear_log(&mut self, now: Instant, timers: &mut TimerTable) {
        self.logbook.clear();
        timers.set_opt(Timer::LogbookWrite, self.logbook.write_due(now));
    }

    /// Queues the logbook now.
    pub(crate) fn save_logbook(
        &mut self,
        now: Instant,
        outbox: &mut Outbox,
        timers: &mut TimerTable,
    ) {
        let rows = self.logbook.take_snapshot(now);
        timers.stop(Timer::LogbookWrite);
        if let Ok(p) = serde_json::to_vec(&rows) {
            self.save(RecordKind::Logbook, p, outbox);
        }
    }

    /// Queues the logbook if it has unsaved rows, whatever the pacing (shutdown, restart).
    pub(crate) fn save_logbook_if_changed(
        &mut self,
        now: Instant,
        outbox: &mut Outbox,
        timers: &mut TimerTable,
    ) {
        if self.logbook.write_due(now).is_some() {
            self.save_logbook(now, outbox, timers);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    #[test]
    fn a_queued_write_is_replaced_and_sequences_continue_after_the_stored_ones() {
        let stored = Record::new(RecordKind::Settings, 41, b"{}".to_vec()).unwrap();
        let restored = Restored::default().with(stored.slot(), stored.bytes().to_vec());
        let (mut p, boot) = Persistence::boot(&restored, 4, |_, _| true);
        assert_eq!(boot.config, Some(Config::default()));
        assert!(boot.corrupt.is_empty());
        let mut out = Outbox::new(8);
        p.save(RecordKind::Settings, b"{\"name\":\"a\"}".to_vec(), &mut out);
        p.save(RecordKind::Settings, b"{\"name\":\"b\"}".to_vec(), &mut out);
        let Some(Action::Persist(r)) = out.pop() else {
            panic!("a record")
        };
        assert_eq!((r.seq(), r.payload()), (42, &b"{\"name\":\"b\"}"[..]));
        assert_eq!(out.pop(), None);
        p.save(RecordKind::Settings, b"{}".to_vec(), &mut out);
        assert!(matches!(out.pop(), Some(Action::Persist(r)) if r.seq() == 43));
    }

    #[test]
    fn the_logbook_is_written_at_most_once_a_minute() {
        let t0 = Instant::from_secs(1_000);
        let (mut p, _) = Persistence::boot(&Restored::default(), 4, |_, _| true);
        let mut timers = TimerTable::default();
        let mut out = Outbox::new(8);
        p.log('W', t0, "a", 0, t0, &mut timers);
        assert_eq!(timers.get(Timer::LogbookWrite), Some(t0));
        p.save_logbook(t0, &mut out, &mut timers);
        assert_eq!(timers.get(Timer::LogbookWrite), None);
        p.log('E', t0, "b", 0, t0, &mut timers);
        assert_eq!(
            timers.get(Timer::LogbookWrite),
            Some(t0 + Duration::from_secs(60))
        );
    }

    #[test]
    fn an_undecodable_record_is_reported() {
        let bad = Record::new(RecordKind::Logbook, 0, b"[1]".to_vec()).unwrap();
        let restored = Restored::default().with(bad.slot(), bad.bytes().to_vec());
        let (_, boot) = Persistence::boot(&restored, 4, |_, _| true);
        assert_eq!(
            boot.corrupt,
            [(RecordKind::Logbook, String::from("record payload invalid"))]
        );
    }
}
