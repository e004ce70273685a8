//! Stateless wire formats of the SmartMeter protocol: no state, no time, no I/O.
//!
//! Every parser here takes untrusted bytes and answers with a typed value or a typed error; none of
//! them panics or allocates without bound.

pub mod command;
pub mod discovery;
pub mod frame;
pub mod log;
pub mod mqtt;
pub mod pq;
pub mod reply;
