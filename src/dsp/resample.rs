//! Resampler placeholder (being written).
/// Error.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum ResamplerError {
    /// bad rate
    #[error("Invalid rate_hz: {0}")]
    Rate(u32),
}
/// Resampler.
#[derive(Debug)]
pub struct Resampler;
