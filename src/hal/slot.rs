//! Where a [`Store`](super::Store) keeps things: two slots per kind of record.

/// What a record holds. Each kind is written on its own schedule, so frequent energy writes never
/// rewrite the settings and a log flood never adds writes beyond one per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordKind {
    /// The device settings: written on every change.
    Settings,
    /// Energy accumulators: every persist interval (default 10 s) and on shutdown.
    Energy,
    /// The warning/error logbook: at most once per 60 s.
    Logbook,
    /// The last 64 power-quality events (docs/protocol.md §11): at most once per 60 s, like the
    /// logbook.
    Events,
}

impl RecordKind {
    /// Every kind, in load order.
    pub const ALL: [RecordKind; 4] = [
        RecordKind::Settings,
        RecordKind::Energy,
        RecordKind::Logbook,
        RecordKind::Events,
    ];

    /// A dense index 0..4 (load order).
    pub const fn index(self) -> usize {
        match self {
            RecordKind::Settings => 0,
            RecordKind::Energy => 1,
            RecordKind::Logbook => 2,
            RecordKind::Events => 3,
        }
    }
}

/// One of the store's slots: a record kind and which of its two copies (0 or 1).
///
/// The engine alternates between the two copies of a kind, so a write interrupted at any byte only
/// damages the copy being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotId {
    /// The kind stored here.
    pub kind: RecordKind,
    /// 0 or 1.
    pub copy: u8,
}

impl SlotId {
    /// All eight slots.
    pub const ALL: [SlotId; 8] = [
        SlotId::new(RecordKind::Settings, 0),
        SlotId::new(RecordKind::Settings, 1),
        SlotId::new(RecordKind::Energy, 0),
        SlotId::new(RecordKind::Energy, 1),
        SlotId::new(RecordKind::Logbook, 0),
        SlotId::new(RecordKind::Logbook, 1),
        SlotId::new(RecordKind::Events, 0),
        SlotId::new(RecordKind::Events, 1),
    ];

    /// Copy `copy` (0 or 1; only its lowest bit counts) of `kind`.
    pub const fn new(kind: RecordKind, copy: u8) -> SlotId {
        SlotId {
            kind,
            copy: copy & 1,
        }
    }

    /// A dense index 0..8, handy for arrays and flash keys.
    pub const fn index(self) -> usize {
        self.kind.index() * 2 + (self.copy & 1) as usize
    }

    /// A stable file-name-friendly label, e.g. `settings-0`.
    pub const fn name(self) -> &'static str {
        match self.index() {
            0 => "settings-0",
            1 => "settings-1",
            2 => "energy-0",
            3 => "energy-1",
            4 => "logbook-0",
            5 => "logbook-1",
            6 => "events-0",
            _ => "events-1",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_dense_and_named() {
        for (k, s) in SlotId::ALL.into_iter().enumerate() {
            assert_eq!(s.index(), k);
        }
        assert_eq!(SlotId::new(RecordKind::Energy, 1).name(), "energy-1");
    }
}
