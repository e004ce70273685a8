//! Metering DSP (being written).
