//! Estimator settings and their validation.

/// Three-phase (six channels) or single-phase (two channels, `v, i`) input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum PhaseMode {
    /// `v_l1,i_l1,v_l2,i_l2,v_l3,i_l3`.
    #[default]
    Three,
    /// `v,i`; results in phase 0, the others stay zero.
    Single,
}

/// Estimator settings; check them with [`EstimatorConfig::validate`] (done by [`Estimator::new`](super::Estimator::new)).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EstimatorConfig {
    /// Sample rate of the input, Hz, `1000..=32000`.
    pub rate_hz: u32,
    /// Nominal line frequency, 50 or 60 Hz.
    pub nominal_hz: u32,
    /// Line cycles per window, `1..=120` (IEC 61000-4-30: 10 at 50 Hz, 12 at 60 Hz).
    pub cycles_per_window: u32,
    /// Input layout.
    pub phases: PhaseMode,
    /// Below this L1 RMS voltage no crossings are detected, volts (`> 0`).
    pub min_voltage_v: f32,
    /// Below this fundamental current, phase angle and THD of I are `None`, amps (`> 0`).
    pub min_current_a: f32,
}

impl EstimatorConfig {
    /// Defaults for `rate_hz` and `nominal_hz`: 10 cycles at 50 Hz, 12 at 60 Hz, three-phase,
    /// 5 V and 1 mA thresholds.
    pub fn new(rate_hz: u32, nominal_hz: u32) -> Self {
        Self {
            rate_hz,
            nominal_hz,
            cycles_per_window: if nominal_hz == 60 { 12 } else { 10 },
            phases: PhaseMode::Three,
            min_voltage_v: 5.0,
            min_current_a: 1e-3,
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1000..=32000).contains(&self.rate_hz) {
            return Err(ConfigError::RateHz(self.rate_hz));
        }
        if !matches!(self.nominal_hz, 50 | 60) {
            return Err(ConfigError::NominalHz(self.nominal_hz));
        }
        if !(1..=120).contains(&self.cycles_per_window) {
            return Err(ConfigError::CyclesPerWindow(self.cycles_per_window));
        }
        if !(self.min_voltage_v.is_finite() && self.min_voltage_v > 0.0) {
            return Err(ConfigError::MinVoltage(self.min_voltage_v));
        }
        if !(self.min_current_a.is_finite() && self.min_current_a > 0.0) {
            return Err(ConfigError::MinCurrent(self.min_current_a));
        }
        Ok(())
    }
}

/// An invalid [`EstimatorConfig`] field.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `rate_hz` outside `1000..=32000`.
    #[error("Invalid rate_hz: {0} (expected 1000..=32000)")]
    RateHz(u32),
    /// `nominal_hz` not 50 or 60.
    #[error("Invalid nominal_hz: {0} (expected 50 or 60)")]
    NominalHz(u32),
    /// `cycles_per_window` outside `1..=120`.
    #[error("Invalid cycles_per_window: {0} (expected 1..=120)")]
    CyclesPerWindow(u32),
    /// `min_voltage_v` not finite and positive.
    #[error("Invalid min_voltage_v: {0} (expected > 0)")]
    MinVoltage(f32),
    /// `min_current_a` not finite and positive.
    #[error("Invalid min_current_a: {0} (expected > 0)")]
    MinCurrent(f32),
}
