//! Host client library (being written).
