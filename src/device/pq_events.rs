//! The power-quality event store (docs/protocol.md §11 `getEvents` / `clearEvents`): the last
//! [`CAPACITY`] ended events with their ids, kept across restarts.
//!
//! Ids start at 1 and only grow: the next id is stored with the events and survives a restart and a
//! `clearEvents`, so a client that pages with `since` never sees an id twice (the one exception is a
//! power loss between an event and the store's next write, which loses that event and its id). Like
//! the logbook, the store is written at most once per [`WRITE_INTERVAL`] (batched), and on a clean
//! shutdown or restart, so a flood of events cannot wear out flash.
//!
//! The record payload is compact binary (64 events fit one 4 KiB record; JSON would not):
//! `version:u8, next_id:u32, count:u8`, then per event `id:u32, kind:u8, phases:u8, start:f64,
//! duration:f64, extreme:f32, reference:f32, delta_max:f32, delta_steady:f32` (little-endian; the
//! deltas are NaN unless the event is an RVC).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::Instant;
use super::logbook::WRITE_INTERVAL;
use crate::dsp::pq::{VoltageEvent as DspEvent, VoltageEventKind as DspKind};
use crate::wire::pq::{EventKind, PhaseSet, PqEvent};

/// Events kept (docs/protocol.md §11: the last 64 survive a restart).
pub(crate) const CAPACITY: usize = 64;
/// Most events in one `getEvents` reply.
pub(crate) const PAGE: usize = 16;

const VERSION: u8 = 1;
const HEAD: usize = 6;
const ITEM: usize = 38;

/// The last [`CAPACITY`] events, the next id, and the write pacing.
#[derive(Debug, Clone)]
pub(crate) struct EventStore {
    events: VecDeque<PqEvent>,
    next_id: u32,
    dirty: bool,
    last_write: Option<Instant>,
}

impl Default for EventStore {
    fn default() -> Self {
        EventStore {
            events: VecDeque::with_capacity(CAPACITY),
            next_id: 1,
            dirty: false,
            last_write: None,
        }
    }
}

/// The wire form of an ended event of the pipeline, numbered `id`.
pub(crate) fn to_wire(id: u32, e: &DspEvent) -> PqEvent {
    let kind = match e.kind {
        DspKind::Dip => EventKind::Dip,
        DspKind::Swell => EventKind::Swell,
        DspKind::Interruption => EventKind::Interruption,
        DspKind::Rvc => EventKind::Rvc {
            delta_max_v: e.delta_max_v.unwrap_or(0.0),
            delta_steady_v: e.delta_steady_v.unwrap_or(0.0),
        },
    };
    let bits = e
        .phases
        .iter()
        .enumerate()
        .fold(0u8, |b, (p, on)| if *on { b | 1 << p } else { b });
    PqEvent {
        id,
        kind,
        phases: PhaseSet::from_bits(bits).unwrap_or(PhaseSet::ALL),
        start_s: e.start_unix_s,
        duration_s: e.duration_s,
        extreme_v: e.extreme_v,
        reference_v: e.reference_v,
    }
}

impl EventStore {
    /// Numbers an ended event, keeps it (dropping the oldest beyond [`CAPACITY`]) and returns it.
    pub(crate) fn push(&mut self, e: &DspEvent) -> PqEvent {
        let ev = to_wire(self.next_id, e);
        self.next_id = self.next_id.saturating_add(1);
        if self.events.len() >= CAPACITY {
            self.events.pop_front();
        }
        self.events.push_back(ev.clone());
        self.dirty = true;
        ev
    }

    /// `getEvents`: at most [`PAGE`] events with an id above `since`, oldest first, and the `since`
    /// to ask with next (the last id listed; with none listed, `since`, but never beyond the last id
    /// handed out, so a client ahead of the meter catches up).
    pub(crate) fn page(&self, since: u32) -> (Vec<PqEvent>, u32) {
        let events: Vec<PqEvent> = self
            .events
            .iter()
            .filter(|e| e.id > since)
            .take(PAGE)
            .cloned()
            .collect();
        let next = events
            .last()
            .map_or(since.min(self.next_id.saturating_sub(1)), |e| e.id);
        (events, next)
    }

    /// `clearEvents`: every event goes; ids go on growing.
    pub(crate) fn clear(&mut self) {
        self.events.clear();
        self.dirty = true;
    }

    /// When the store may be written: `None` while nothing changed, else at once or
    /// [`WRITE_INTERVAL`] after the last write.
    pub(crate) fn write_due(&self, now: Instant) -> Option<Instant> {
        if !self.dirty {
            return None;
        }
        Some(self.last_write.map_or(now, |t| t + WRITE_INTERVAL))
    }

    /// Marks the store written at `now` and returns the record payload.
    pub(crate) fn take_snapshot(&mut self, now: Instant) -> Vec<u8> {
        self.dirty = false;
        self.last_write = Some(now);
        let mut out = Vec::with_capacity(HEAD + ITEM * self.events.len());
        out.push(VERSION);
        out.extend_from_slice(&self.next_id.to_le_bytes());
        out.push(u8::try_from(self.events.len()).unwrap_or(u8::MAX));
        for e in &self.events {
            let (kind, dmax, dsteady) = match e.kind {
                EventKind::Dip => (0u8, f32::NAN, f32::NAN),
                EventKind::Swell => (1, f32::NAN, f32::NAN),
                EventKind::Interruption => (2, f32::NAN, f32::NAN),
                EventKind::Rvc {
                    delta_max_v,
                    delta_steady_v,
                } => (3, delta_max_v, delta_steady_v),
            };
            out.extend_from_slice(&e.id.to_le_bytes());
            out.push(kind);
            out.push(e.phases.bits());
            out.extend_from_slice(&e.start_s.to_le_bytes());
            out.extend_from_slice(&e.duration_s.to_le_bytes());
            for x in [e.extreme_v, e.reference_v, dmax, dsteady] {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out
    }

    /// Rebuilds from a stored payload; `false` (and nothing changed) when it is not one.
    pub(crate) fn restore(&mut self, payload: &[u8]) -> bool {
        let Some((head, items)) = payload.split_at_checked(HEAD) else {
            return false;
        };
        let [VERSION, a, b, c, d, count] = *head else {
            return false;
        };
        let count = usize::from(count);
        if count > CAPACITY || items.len() != count * ITEM {
            return false;
        }
        let mut events = VecDeque::with_capacity(CAPACITY);
        for item in items.chunks_exact(ITEM) {
            let Some(e) = decode_item(item) else {
                return false;
            };
            events.push_back(e);
        }
        self.events = events;
        self.next_id = u32::from_le_bytes([a, b, c, d]).max(1);
        // ids stay monotonic even if the stored counter were behind the stored events
        if let Some(last) = self.events.back() {
            self.next_id = self.next_id.max(last.id.saturating_add(1));
        }
        self.dirty = false;
        true
    }

    /// Events held now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    /// Bytes held on the heap.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.events.capacity() * core::mem::size_of::<PqEvent>()
    }
}

fn decode_item(item: &[u8]) -> Option<PqEvent> {
    let u32_at = |k: usize| -> Option<[u8; 4]> { item.get(k..k + 4)?.try_into().ok() };
    let f64_at = |k: usize| -> Option<f64> {
        Some(f64::from_le_bytes(item.get(k..k + 8)?.try_into().ok()?))
    };
    let f32_at = |k: usize| -> Option<f32> { Some(f32::from_le_bytes(u32_at(k)?)) };
    let id = u32::from_le_bytes(u32_at(0)?);
    let kind = match *item.get(4)? {
        0 => EventKind::Dip,
        1 => EventKind::Swell,
        2 => EventKind::Interruption,
        3 => EventKind::Rvc {
            delta_max_v: f32_at(30)?,
            delta_steady_v: f32_at(34)?,
        },
        _ => return None,
    };
    Some(PqEvent {
        id,
        kind,
        phases: PhaseSet::from_bits(*item.get(5)?)?,
        start_s: f64_at(6)?,
        duration_s: f64_at(14)?,
        extreme_v: f32_at(22)?,
        reference_v: f32_at(26)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dip(start: f64) -> DspEvent {
        DspEvent {
            kind: DspKind::Dip,
            phases: [true, false, true],
            start_unix_s: start,
            duration_s: 0.1,
            extreme_v: 138.2,
            reference_v: 230.0,
            delta_max_v: None,
            delta_steady_v: None,
        }
    }

    #[test]
    fn ids_grow_the_oldest_go_and_a_snapshot_restores_everything() {
        let mut s = EventStore::default();
        for k in 0..70 {
            s.push(&dip(f64::from(k)));
        }
        let rvc = DspEvent {
            kind: DspKind::Rvc,
            delta_max_v: Some(15.5),
            delta_steady_v: Some(12.25),
            ..dip(100.0)
        };
        assert_eq!(s.push(&rvc).id, 71);
        assert_eq!(s.len(), CAPACITY);
        let (page, next) = s.page(0);
        assert_eq!((page.len(), page[0].id, next), (PAGE, 8, 23));
        let (page, next) = s.page(70);
        assert_eq!((page.len(), next), (1, 71));
        assert_eq!(s.page(500).1, 71, "a client ahead of the meter catches up");
        let t = Instant::from_secs(1_000);
        assert_eq!(s.write_due(t), Some(t));
        let bytes = s.take_snapshot(t);
        assert!(bytes.len() < 4000, "{}", bytes.len());
        assert_eq!(s.write_due(t), None);
        let mut back = EventStore::default();
        assert!(back.restore(&bytes));
        assert_eq!(back.page(0), s.page(0));
        assert_eq!(back.page(60), s.page(60));
        assert_eq!(back.push(&dip(200.0)).id, 72);
        back.clear();
        assert_eq!(back.page(0), (Vec::new(), 0));
        assert_eq!(back.page(80), (Vec::new(), 72));
        assert_eq!(back.push(&dip(300.0)).id, 73);
    }

    #[test]
    fn damaged_payloads_are_refused_whole() {
        let mut s = EventStore::default();
        s.push(&dip(1.0));
        let good = s.take_snapshot(Instant::from_secs(1));
        let mut back = EventStore::default();
        for bad in [
            &good[..good.len() - 1],
            &good[..3],
            &[2u8, 0, 0, 0, 0, 0][..],
            &[1u8, 1, 0, 0, 0, 65][..],
        ] {
            assert!(!back.restore(bad));
        }
        let mut kind = good.clone();
        kind[HEAD + 4] = 9;
        assert!(!back.restore(&kind));
        let mut phases = good;
        phases[HEAD + 5] = 0;
        assert!(!back.restore(&phases));
        assert_eq!(back.len(), 0);
    }
}
