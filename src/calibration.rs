//! Calibration model (being written).
