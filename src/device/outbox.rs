//! The queue of actions the binding takes with [`Device::poll_event`](super::Device::poll_event):
//! bounded for what can be lost (datagrams and publishes beyond [`DeviceOptions::max_events`]
//! (super::DeviceOptions::max_events) are dropped and counted), never for what must not (records,
//! closes, configuration).

use alloc::collections::VecDeque;

use super::{Action, Record, RecordKind};

/// Pending actions, oldest first.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    queue: VecDeque<Action>,
    max: usize,
    /// Datagrams and publishes dropped because the queue was full.
    dropped: u64,
}

impl Outbox {
    /// An empty outbox holding at most `max` datagrams and publishes.
    pub(crate) fn new(max: usize) -> Self {
        Outbox {
            queue: VecDeque::new(),
            max,
            dropped: 0,
        }
    }

    /// Whether a datagram or publish would be queued now.
    pub(crate) fn has_room(&self) -> bool {
        self.queue.len() < self.max
    }

    /// Queues an action; a datagram or publish that does not fit is dropped and counted.
    pub(crate) fn push(&mut self, ev: Action) {
        let droppable = matches!(ev, Action::Publish { .. } | Action::SendDatagram { .. });
        if droppable && !self.has_room() {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        self.queue.push_back(ev);
    }

    /// The write of a `kind` record still waiting in the queue, if any.
    pub(crate) fn queued_record(&mut self, kind: RecordKind) -> Option<&mut Record> {
        self.queue.iter_mut().find_map(|e| match e {
            Action::Persist(r) if r.kind() == kind => Some(r),
            _ => None,
        })
    }

    /// The oldest action.
    pub(crate) fn pop(&mut self) -> Option<Action> {
        self.queue.pop_front()
    }

    /// Datagrams and publishes dropped so far.
    #[cfg(test)]
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn publish() -> Action {
        Action::Publish {
            topic: "t".into(),
            payload: Vec::new(),
            retain: false,
        }
    }

    #[test]
    fn only_datagrams_and_publishes_are_dropped_when_full() {
        let mut o = Outbox::new(1);
        o.push(publish());
        o.push(publish());
        assert_eq!(o.dropped(), 1);
        o.push(Action::Announce { name: "x".into() });
        let rec = Record::new(RecordKind::Energy, 3, b"{}".to_vec()).unwrap();
        o.push(Action::Persist(rec.clone()));
        assert_eq!(o.queued_record(RecordKind::Energy), Some(&mut rec.clone()));
        assert!(o.queued_record(RecordKind::Settings).is_none());
        assert_eq!(o.pop(), Some(publish()));
        assert!(matches!(o.pop(), Some(Action::Announce { .. })));
        assert!(matches!(o.pop(), Some(Action::Persist(_))));
        assert_eq!(o.pop(), None);
    }
}
