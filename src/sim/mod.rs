//! Host simulator binding (being written).
