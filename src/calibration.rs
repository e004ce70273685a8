//! Calibration model: front-end scaling (ADC codes → volts/amps) and per-phase corrections.
//!
//! The protocol's six factors `[vL1, iL1, vL2, iL2, vL3, iL3]` are the voltage and current gains
//! ([`Calibration::factors`]); each must lie in `0.5..=2.0`. They are applied inside the
//! [`Estimator`](crate::dsp::Estimator): a reading of V becomes `V·gV`, of I `I·gI`, and P, Q, S and
//! therefore energy scale by `gV·gI` (the original firmware stored the factors but never applied them).
//!
//! Beyond the protocol, each phase also carries an offset (subtracted before the gain) and a
//! current-channel delay (CT / anti-alias filter phase error) that is compensated on the
//! fundamental phasors. Because every window removes its own mean, offsets only affect the
//! half-cycle RMS (which, as in IEC 61000-4-30, keeps DC); they matter for a caller that reads
//! raw samples.
//!
//! ```
//! use smartmeter::calibration::{Calibration, CalibrationError};
//! let cal = Calibration::from_factors([1.0, 1.02, 0.99, 1.0, 1.0, 1.0])?;
//! assert_eq!(cal.factors()[1], 1.02);
//! let err = Calibration::from_factors([1.0, 2.5, 1.0, 1.0, 1.0, 1.0]).unwrap_err();
//! assert_eq!(err.to_string(), "Calibration parameter cal[1]: 2.5 not allowed [0.5-2.0]");
//! # Ok::<(), CalibrationError>(())
//! ```

use crate::text::Shortest;
use serde::{Deserialize, Serialize};

/// Smallest allowed gain factor.
pub const GAIN_MIN: f32 = 0.5;
/// Largest allowed gain factor.
pub const GAIN_MAX: f32 = 2.0;

/// Why a calibration was rejected. The messages are the protocol's reply texts where one exists.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CalibrationError {
    /// A gain factor outside `0.5..=2.0` (or not finite); `index` is the position in the six-factor array.
    #[error("Calibration parameter cal[{index}]: {} not allowed [0.5-2.0]", Shortest(*.value))]
    Factor {
        /// Position in `[vL1, iL1, vL2, iL2, vL3, iL3]`.
        index: usize,
        /// The rejected value.
        value: f32,
    },
    /// An offset that is not finite.
    #[error("Invalid offset: phase {phase} is not finite")]
    Offset {
        /// Phase index 0..3.
        phase: usize,
    },
    /// A phase delay outside ±10 ms or not finite.
    #[error("Invalid current_delay_us: phase {phase}: {} (expected -10000..=10000)", Shortest(*.value))]
    Delay {
        /// Phase index 0..3.
        phase: usize,
        /// The rejected value.
        value: f32,
    },
    /// A front-end parameter that is not finite and positive.
    #[error("Invalid {field}: {} (expected a finite value > 0)", Shortest(*.value))]
    FrontEnd {
        /// Name of the parameter.
        field: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// A reference or measured value that cannot produce a gain (zero, negative, not finite).
    #[error("Invalid {field}: {} (expected a finite value > 0)", Shortest(*.value))]
    Reference {
        /// Name of the value.
        field: &'static str,
        /// The rejected value.
        value: f32,
    },
}

/// Conversion from ADC codes to physical units, for sources that deliver integers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FrontEnd {
    /// Volts at the line per ADC code.
    pub volts_per_code: f64,
    /// Amps in the conductor per ADC code.
    pub amps_per_code: f64,
}

impl Default for FrontEnd {
    /// 1 V and 1 A per code (samples already in physical units).
    fn default() -> Self {
        Self {
            volts_per_code: 1.0,
            amps_per_code: 1.0,
        }
    }
}

impl FrontEnd {
    /// Derives the scaling of a voltage divider and a current sensor feeding a bipolar ADC.
    ///
    /// * `divider_ratio`: line volts per volt at the ADC pin (e.g. 1000 for 1 MΩ : 1 kΩ),
    /// * `current_ratio_a_per_v`: line amps per volt at the ADC pin (CT ratio / burden, or 1/shunt Ω),
    /// * `adc_full_scale_v`: the ADC's positive full-scale input in volts,
    /// * `adc_bits`: resolution including the sign bit (e.g. 24 for the ADE9000).
    pub fn from_hardware(
        divider_ratio: f64,
        current_ratio_a_per_v: f64,
        adc_full_scale_v: f64,
        adc_bits: u8,
    ) -> Result<Self, CalibrationError> {
        for (field, value) in [
            ("divider_ratio", divider_ratio),
            ("current_ratio_a_per_v", current_ratio_a_per_v),
            ("adc_full_scale_v", adc_full_scale_v),
            ("adc_bits", f64::from(adc_bits)),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(CalibrationError::FrontEnd { field, value });
            }
        }
        if !(2..=32).contains(&adc_bits) {
            return Err(CalibrationError::FrontEnd {
                field: "adc_bits",
                value: f64::from(adc_bits),
            });
        }
        let volts_per_lsb = adc_full_scale_v / f64::from(1u32 << (adc_bits.min(32) - 1).min(31));
        Ok(Self {
            volts_per_code: volts_per_lsb * divider_ratio,
            amps_per_code: volts_per_lsb * current_ratio_a_per_v,
        })
    }

    /// Volts for a voltage-channel code.
    pub fn volts(&self, code: i32) -> f64 {
        f64::from(code) * self.volts_per_code
    }

    /// Amps for a current-channel code.
    pub fn amps(&self, code: i32) -> f64 {
        f64::from(code) * self.amps_per_code
    }
}

/// Corrections for one phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PhaseCalibration {
    /// Voltage gain, `0.5..=2.0` (protocol factor `cal[2p]`).
    pub voltage_gain: f32,
    /// Current gain, `0.5..=2.0` (protocol factor `cal[2p+1]`).
    pub current_gain: f32,
    /// Subtracted from the voltage channel before the gain, volts.
    pub voltage_offset_v: f32,
    /// Subtracted from the current channel before the gain, amps.
    pub current_offset_a: f32,
    /// Delay of the current channel relative to the voltage channel, microseconds (positive: the
    /// current path lags, e.g. a CT phase error). Compensated on the fundamental (Q₁, P₁, φ; P is
    /// corrected by the change of P₁); harmonics are not corrected.
    pub current_delay_us: f32,
}

impl Default for PhaseCalibration {
    fn default() -> Self {
        Self {
            voltage_gain: 1.0,
            current_gain: 1.0,
            voltage_offset_v: 0.0,
            current_offset_a: 0.0,
            current_delay_us: 0.0,
        }
    }
}

/// The complete, validated calibration. Deserialisation validates too.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "RawCalibration")]
pub struct Calibration {
    phases: [PhaseCalibration; 3],
    front_end: FrontEnd,
}

/// Unvalidated form used by serde.
#[derive(Deserialize)]
struct RawCalibration {
    phases: [PhaseCalibration; 3],
    front_end: FrontEnd,
}

impl TryFrom<RawCalibration> for Calibration {
    type Error = CalibrationError;
    fn try_from(raw: RawCalibration) -> Result<Self, Self::Error> {
        Self::new(raw.phases, raw.front_end)
    }
}

fn check_gain(index: usize, value: f32) -> Result<(), CalibrationError> {
    if value.is_finite() && (GAIN_MIN..=GAIN_MAX).contains(&value) {
        Ok(())
    } else {
        Err(CalibrationError::Factor { index, value })
    }
}

impl Calibration {
    /// Validates and builds a calibration.
    pub fn new(
        phases: [PhaseCalibration; 3],
        front_end: FrontEnd,
    ) -> Result<Self, CalibrationError> {
        for (p, ph) in phases.iter().enumerate() {
            check_gain(2 * p, ph.voltage_gain)?;
            check_gain(2 * p + 1, ph.current_gain)?;
            if !(ph.voltage_offset_v.is_finite() && ph.current_offset_a.is_finite()) {
                return Err(CalibrationError::Offset { phase: p });
            }
            if !(ph.current_delay_us.is_finite() && ph.current_delay_us.abs() <= 10_000.0) {
                return Err(CalibrationError::Delay {
                    phase: p,
                    value: ph.current_delay_us,
                });
            }
        }
        for (field, value) in [
            ("volts_per_code", front_end.volts_per_code),
            ("amps_per_code", front_end.amps_per_code),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(CalibrationError::FrontEnd { field, value });
            }
        }
        Ok(Self { phases, front_end })
    }

    /// The protocol's six factors `[vL1, iL1, vL2, iL2, vL3, iL3]`, other settings default.
    /// The error names the first offending index, with the protocol's text.
    pub fn from_factors(factors: [f32; 6]) -> Result<Self, CalibrationError> {
        let mut cal = Self::default();
        cal.set_factors(factors)?;
        Ok(cal)
    }

    /// Replaces the six gain factors, keeping offsets, delays and front end. On error nothing changes.
    pub fn set_factors(&mut self, factors: [f32; 6]) -> Result<(), CalibrationError> {
        for (i, f) in factors.iter().enumerate() {
            check_gain(i, *f)?;
        }
        for (ph, pair) in self.phases.iter_mut().zip(factors.chunks_exact(2)) {
            if let [v, i] = pair {
                ph.voltage_gain = *v;
                ph.current_gain = *i;
            }
        }
        Ok(())
    }

    /// The six gain factors `[vL1, iL1, vL2, iL2, vL3, iL3]`.
    pub fn factors(&self) -> [f32; 6] {
        let p = &self.phases;
        [
            p[0].voltage_gain,
            p[0].current_gain,
            p[1].voltage_gain,
            p[1].current_gain,
            p[2].voltage_gain,
            p[2].current_gain,
        ]
    }

    /// Per phase settings `[L1, L2, L3]`.
    pub fn phases(&self) -> &[PhaseCalibration; 3] {
        &self.phases
    }

    /// Front-end scaling (used by integer sample sources).
    pub fn front_end(&self) -> &FrontEnd {
        &self.front_end
    }

    /// Replaces the front-end scaling.
    pub fn with_front_end(mut self, front_end: FrontEnd) -> Result<Self, CalibrationError> {
        self = Self::new(self.phases, front_end)?;
        Ok(self)
    }

    /// Derives new gain factors from a reference measurement: a known load with true voltage
    /// `reference_v` and current `reference_a` (per phase) was read by the meter, *with this
    /// calibration applied*, as `measured_v` / `measured_a`. Returns the calibration that would have
    /// read the reference exactly (`new = old · reference / measured`), validated (0.5..=2.0).
    pub fn derive_from_reference(
        &self,
        reference_v: [f32; 3],
        reference_a: [f32; 3],
        measured_v: [f32; 3],
        measured_a: [f32; 3],
    ) -> Result<Self, CalibrationError> {
        let mut factors = self.factors();
        for (p, pair) in factors.chunks_exact_mut(2).enumerate() {
            let (rv, ra, mv, ma) = match (
                reference_v.get(p),
                reference_a.get(p),
                measured_v.get(p),
                measured_a.get(p),
            ) {
                (Some(a), Some(b), Some(c), Some(d)) => (*a, *b, *c, *d),
                _ => continue,
            };
            for (field, value) in [
                ("reference_v", rv),
                ("reference_a", ra),
                ("measured_v", mv),
                ("measured_a", ma),
            ] {
                if !(value.is_finite() && value > 0.0) {
                    return Err(CalibrationError::Reference { field, value });
                }
            }
            if let [gv, gi] = pair {
                *gv *= rv / mv;
                *gi *= ra / ma;
            }
        }
        let mut out = *self;
        out.set_factors(factors)?;
        Ok(out)
    }

    /// Sets offsets and delay of one phase (0..3), validated.
    pub fn set_phase_corrections(
        &mut self,
        phase: usize,
        voltage_offset_v: f32,
        current_offset_a: f32,
        current_delay_us: f32,
    ) -> Result<(), CalibrationError> {
        let mut phases = self.phases;
        if let Some(ph) = phases.get_mut(phase) {
            ph.voltage_offset_v = voltage_offset_v;
            ph.current_offset_a = current_offset_a;
            ph.current_delay_us = current_delay_us;
        }
        *self = Self::new(phases, self.front_end)?;
        Ok(())
    }
}
