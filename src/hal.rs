//! HAL traits (being written).
