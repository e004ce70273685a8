//! Sizes of the engine's internal buffers, for footprint checks and tests outside the crate (the
//! modules that own them are private). The values follow the engine; they are not a stable API.

use super::{logbook, pq_events, session};

/// Longest command line, in bytes, without its line end (PROTOCOL §1.3); a longer line is answered
/// with an error and discarded.
pub const MAX_LINE: usize = session::MAX_LINE;

/// Most lines held behind a pending answer per connection (§1.6).
pub const MAX_DEFERRED: usize = session::MAX_DEFERRED;

/// Most bytes held behind a pending answer per connection (§1.6).
pub const MAX_DEFERRED_BYTES: usize = session::MAX_DEFERRED_BYTES;

/// Bytes of one connection's state inside the engine, without its heap buffers.
pub const SESSION_BYTES: usize = core::mem::size_of::<session::Session>();

/// Longest text kept per logbook row, in bytes.
pub const LOGBOOK_MAX_TEXT: usize = logbook::MAX_TEXT;

/// Bytes of the power-quality event store when full (the last 64 events, §11), allocated at start.
pub const PQ_EVENT_STORE_BYTES: usize =
    pq_events::CAPACITY * core::mem::size_of::<crate::wire::pq::PqEvent>();
