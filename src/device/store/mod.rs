//! Persistence: crash-safe records in alternating slots (see [`record`]).

pub mod record;

pub use record::{Record, RecordError, RecordKind, Restored, SlotId};
