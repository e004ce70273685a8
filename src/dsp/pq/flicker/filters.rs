//! Fixed-point filters of blocks 3 and 4: Q24 signals in `i32`, Q30 coefficients, `i64`
//! accumulators.
//!
//! # Why integers
//! The ESP32-C3 has no FPU: a soft-float biquad costs ≈ 545 RV32IMC instructions, the same
//! biquad on `i32` with `i64` products ≈ 59. Block 3 is six sections per internal sample, so the
//! integer form is what makes a 3-phase flickermeter fit in ≈ 1 M instructions per second of
//! signal. The numbers are well inside the format: the demodulated signal is `ΔV/V`-sized
//! (10⁻⁵…10⁻¹) on a Q24 grid (resolution 6·10⁻⁸), far below the 2·10⁻⁶ where a Pinst of 10⁻⁴
//! starts.
//!
//! # Why nothing overflows
//! Every section input and output is clamped to `±SIGNAL_LIMIT` (±32.0 in Q24) and every
//! coefficient is below 2 in magnitude (`|c| < 2³¹` in Q30), so each of the five products is
//! below 2⁶⁰ and their sum below 2⁶³.

#[allow(unused_imports)] // inherent f64 methods shadow it with `std`
use num_traits::Float;

use super::design::{Digital1, Digital2};

/// Fractional bits of the signal (Q24: 1.0 = 2²⁴).
pub const SIGNAL_FRAC_BITS: u32 = 24;
/// Signals saturate at ±32.0 (Q24).
pub const SIGNAL_LIMIT: i32 = 1 << 29;
/// Fractional bits of the coefficients (Q30).
const COEFF_FRAC_BITS: u32 = 30;
const ROUND: i64 = 1 << (COEFF_FRAC_BITS - 1);

/// Quantises a coefficient to Q30, saturating at ±2 (no section here comes close).
fn q30(x: f64) -> i32 {
    let scaled = x * f64::from(1u32 << COEFF_FRAC_BITS);
    // `as` saturates and maps NaN to 0; rounding half away from zero.
    let rounded = if scaled >= 0.0 {
        scaled + 0.5
    } else {
        scaled - 0.5
    };
    rounded as i32
}

#[inline(always)]
fn clamp_signal(acc: i64) -> i32 {
    acc.clamp(-i64::from(SIGNAL_LIMIT), i64::from(SIGNAL_LIMIT)) as i32
}

/// Direct-form-I second-order section (DF1 keeps the states at signal level, so the Q24 grid
/// bounds them; a single rounding per output).
#[derive(Debug, Clone, PartialEq)]
pub struct Biquad {
    b: [i32; 3],
    a: [i32; 2],
    x: [i32; 2],
    y: [i32; 2],
}

impl Biquad {
    /// A section with zero state.
    pub fn new(d: &Digital2) -> Self {
        Self {
            b: d.b.map(q30),
            a: d.a.map(q30),
            x: [0; 2],
            y: [0; 2],
        }
    }

    /// One sample in, one out (Q24; the input must be within `±SIGNAL_LIMIT`).
    #[inline(always)]
    pub fn run(&mut self, x: i32) -> i32 {
        let [b0, b1, b2] = self.b.map(i64::from);
        let [a1, a2] = self.a.map(i64::from);
        let [x1, x2] = self.x.map(i64::from);
        let [y1, y2] = self.y.map(i64::from);
        let acc = b0 * i64::from(x) + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2 + ROUND;
        let y = clamp_signal(acc >> COEFF_FRAC_BITS);
        self.x = [x, self.x[0]];
        self.y = [y, self.y[0]];
        y
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        self.x = [0; 2];
        self.y = [0; 2];
    }
}

/// Direct-form-I first-order section.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstOrder {
    b: [i32; 2],
    a1: i32,
    x1: i32,
    y1: i32,
}

impl FirstOrder {
    /// A section with zero state.
    pub fn new(d: &Digital1) -> Self {
        Self {
            b: d.b.map(q30),
            a1: q30(d.a1),
            x1: 0,
            y1: 0,
        }
    }

    /// One sample in, one out (Q24; the input must be within `±SIGNAL_LIMIT`).
    #[inline(always)]
    pub fn run(&mut self, x: i32) -> i32 {
        let [b0, b1] = self.b.map(i64::from);
        let acc = b0 * i64::from(x) + b1 * i64::from(self.x1)
            - i64::from(self.a1) * i64::from(self.y1)
            + ROUND;
        let y = clamp_signal(acc >> COEFF_FRAC_BITS);
        self.x1 = x;
        self.y1 = y;
        y
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        self.x1 = 0;
        self.y1 = 0;
    }
}

/// Block 4: squaring and the first-order sliding-mean low-pass (τ = 300 ms), with the Pinst
/// scale folded into the squarer's input so that the state is Pinst itself on a 2⁻²⁴ grid.
///
/// The weighted signal `w` (Q24) is first multiplied by `√S · 2⁻¹²` (S = [`super::design::pinst_scale`])
/// into `w'`, so that `w'² · 2⁻²⁴ = S·w²` = Pinst. `|w'|` saturates at 2²³ (Pinst 4·10⁶, far above
/// the classifier's top class), so `w'² < 2⁴⁶` and `(w'² − y)·α < 2⁵⁹`. The smallest step the
/// state can make is about 240 grid units (1.4·10⁻⁵ Pinst) at the internal rates used, well below
/// the classifier's lowest class (6·10⁻⁵).
#[derive(Debug, Clone, PartialEq)]
pub struct Smoother {
    gain_q24: i64,
    alpha_q20: i64,
    y: i64,
}

/// Fractional bits of the Pinst state.
pub const PINST_FRAC_BITS: u32 = 24;
const W_LIMIT: i64 = 1 << 23;

impl Smoother {
    /// `scale` = S of [`super::design::pinst_scale`]; `alpha` = the smoothing coefficient at the
    /// internal rate (≈ 0.004 at 800 Hz; clamped to `0..=1/64`, which keeps `(w'² − y)·α` below
    /// 2⁶⁰). The gain is clamped to 2⁸ (S ≤ 10¹²), which keeps `w·gain` below 2⁶¹.
    pub fn new(scale: f64, alpha: f64) -> Self {
        let gain = scale.max(0.0).sqrt() / f64::from(1u32 << 12);
        let gain_q24 = (gain * f64::from(1u32 << 24) + 0.5) as i64;
        let alpha_q20 = (alpha * f64::from(1u32 << 20) + 0.5) as i64;
        Self {
            gain_q24: gain_q24.clamp(0, 1 << 32),
            alpha_q20: alpha_q20.clamp(0, 1 << 14),
            y: 0,
        }
    }

    /// One weighted sample (Q24) in.
    #[inline(always)]
    pub fn run(&mut self, w: i32) {
        let ws = ((i64::from(w) * self.gain_q24) >> 24).clamp(-W_LIMIT, W_LIMIT);
        let d = ws * ws - self.y;
        self.y += (d * self.alpha_q20 + (1 << 19)) >> 20;
    }

    /// The state: Pinst · 2²⁴ (never negative).
    pub fn state(&self) -> i64 {
        self.y.max(0)
    }

    /// Pinst as `f32`.
    pub fn pinst(&self) -> f32 {
        self.state() as f32 * (1.0 / (1u32 << PINST_FRAC_BITS) as f32)
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        self.y = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_inputs_saturate_without_overflow() {
        // Coefficients near the Q30 limit and inputs at the clamp: must not overflow (debug
        // builds check) and must stay clamped.
        let mut q = Biquad::new(&Digital2 {
            b: [1.99, -1.99, 1.99],
            a: [-1.99, 0.999],
        });
        for k in 0..10_000 {
            let x = if k % 2 == 0 {
                SIGNAL_LIMIT
            } else {
                -SIGNAL_LIMIT
            };
            let y = q.run(x);
            assert!(y.abs() <= SIGNAL_LIMIT);
        }
        let mut s = Smoother::new(1e12, 0.01);
        for _ in 0..1000 {
            s.run(SIGNAL_LIMIT);
            s.run(-SIGNAL_LIMIT);
        }
        assert!(s.pinst().is_finite() && s.pinst() > 0.0);
    }

    #[test]
    fn smoother_converges_to_scaled_mean_square() {
        // w = 0.01 constant, S = 309600: Pinst = S·w² = 30.96.
        let mut s = Smoother::new(309_600.0, 0.004);
        let w = (0.01 * f64::from(1u32 << 24)) as i32;
        for _ in 0..20_000 {
            s.run(w);
        }
        let p = s.pinst();
        assert!((p / 30.96 - 1.0).abs() < 1e-3, "{p}");
    }
}
