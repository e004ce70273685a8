//! Pipeline settings: the input layout, the rate and the nominal values.

use crate::dsp::estimator::ConfigError;

/// Channel layout of the interleaved input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Layout {
    /// `v_l1,i_l1,v_l2,i_l2,v_l3,i_l3` (the device, the 6-channel recordings).
    #[default]
    ThreePhase,
    /// `v_l1,v_l2,v_l3` (voltage-only recordings): no current harmonics.
    ThreePhaseVoltage,
    /// `v,i` of one phase: results in phase 0, no unbalance.
    SinglePhase,
}

impl Layout {
    /// Samples per frame.
    pub const fn channels(self) -> usize {
        match self {
            Self::ThreePhase => 6,
            Self::ThreePhaseVoltage => 3,
            Self::SinglePhase => 2,
        }
    }
    pub(super) const fn phases(self) -> usize {
        match self {
            Self::SinglePhase => 1,
            _ => 3,
        }
    }
    pub(super) const fn currents(self) -> bool {
        !matches!(self, Self::ThreePhaseVoltage)
    }
}

/// Pipeline settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PqConfig {
    /// Sample rate, Hz, `1000..=32000`.
    pub rate_hz: u32,
    /// Input layout.
    pub layout: Layout,
    /// Declared supply voltage Udin, volts (`50..=1000`); `None` = detected from the first second.
    pub nominal_voltage_v: Option<f32>,
    /// Nominal frequency, 50 or 60 Hz; `None` = detected from the first second.
    pub nominal_frequency_hz: Option<u32>,
}

impl PqConfig {
    /// Auto nominal values, three-phase V+I.
    pub fn new(rate_hz: u32) -> Self {
        Self {
            rate_hz,
            layout: Layout::ThreePhase,
            nominal_voltage_v: None,
            nominal_frequency_hz: None,
        }
    }
}

/// An invalid [`PqConfig`] (a rejected PQ *object* on the wire is
/// [`wire::pq::PqError`](crate::wire::pq::PqError)).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PqConfigError {
    /// The estimator rejected the rate (or the nominal frequency).
    #[error(transparent)]
    Estimator(#[from] ConfigError),
    /// `nominal_voltage_v` outside `50..=1000`.
    #[error("Invalid nominal_voltage_v: {0} (expected 50..=1000 or auto)")]
    NominalVoltage(f32),
}
