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
//! Every section input and output is clamped to `±SIGNAL_LIMIT` (±32.0 = 2²⁹ in Q24) and the
//! coefficients of a section sum to less than 4 in magnitude (`Σ|cᵢ| < 2³²` in Q30; the designs
//! here stay below 3.1, and [`Biquad::new`] scales a section down should one ever exceed 3.99).
//! So `|Σ cᵢ·xᵢ| < 2⁶¹` and the output before clamping, `Σ cᵢ·xᵢ >> 30`, fits an `i32`.

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

/// Largest `Σ|cᵢ|` of a section (see the module docs).
const MAX_COEFF_SUM: f64 = 3.99;

/// Quantises a section's coefficients to Q30, scaled down if their magnitudes sum to more than
/// [`MAX_COEFF_SUM`] (never for the designs of this module; it makes the bound unconditional).
fn quantise<const N: usize>(c: [f64; N]) -> [i32; N] {
    let sum: f64 = c.iter().map(|x| x.abs()).sum();
    let k = if sum > MAX_COEFF_SUM {
        MAX_COEFF_SUM / sum
    } else {
        1.0
    };
    c.map(|x| q30(x * k))
}

/// Quantises a coefficient to Q30 (`as` saturates and maps NaN to 0).
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

/// The section output from its accumulator: `acc >> 30` fits an `i32` (module docs), then clamps.
#[inline(always)]
fn output(acc: i64) -> i32 {
    let y = acc >> COEFF_FRAC_BITS;
    debug_assert!(i32::try_from(y).is_ok(), "{y}");
    (y as i32).clamp(-SIGNAL_LIMIT, SIGNAL_LIMIT)
}

/// `ROUND + Σ cᵢ·xᵢ` on `i64`, for `Σ|cᵢ| < 2³²` and `|xᵢ| ≤ SIGNAL_LIMIT`, so that every partial
/// sum is below 2⁶¹ (see the module docs). The operations are the wrapping
/// ones because the bound makes them exact (debug builds check against `i128`): on RV32 they
/// compile to bare `mul`/`mulh`/`add` without overflow branches.
#[inline(always)]
fn dot<const N: usize>(c: [i32; N], x: [i32; N]) -> i64 {
    let mut acc = ROUND;
    for (&c, &x) in c.iter().zip(x.iter()) {
        acc = acc.wrapping_add(i64::from(c).wrapping_mul(i64::from(x)));
    }
    debug_assert_eq!(
        i128::from(acc),
        c.iter()
            .zip(x.iter())
            .map(|(&c, &x)| i128::from(c) * i128::from(x))
            .sum::<i128>()
            + i128::from(ROUND)
    );
    acc
}

/// Direct-form-I second-order section (DF1 keeps the states at signal level, so the Q24 grid
/// bounds them; a single rounding per output).
#[derive(Debug, Clone, PartialEq)]
pub struct Biquad {
    /// `b0, b1, b2, −a1, −a2` in Q30.
    c: [i32; 5],
    /// `x[n−1], x[n−2], y[n−1], y[n−2]`.
    s: [i32; 4],
}

impl Biquad {
    /// A section with zero state.
    pub fn new(d: &Digital2) -> Self {
        Self {
            c: quantise([d.b[0], d.b[1], d.b[2], -d.a[0], -d.a[1]]),
            s: [0; 4],
        }
    }

    /// One sample in, one out (Q24; the input must be within `±SIGNAL_LIMIT`).
    #[inline(always)]
    pub fn run(&mut self, x: i32) -> i32 {
        let [x1, x2, y1, y2] = self.s;
        let [c0, c1, c2, c3, c4] = self.c;
        // the terms of the past first, the new input last: the section then adds only one
        // multiply and one add to the latency of the chain (integer sums: the same bits)
        let past = dot([c1, c2, c3, c4], [x1, x2, y1, y2]);
        let y = output(past.wrapping_add(i64::from(c0).wrapping_mul(i64::from(x))));
        self.s = [x, x1, y, y1];
        y
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        self.s = [0; 4];
    }
}

/// Direct-form-I first-order section.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstOrder {
    /// `b0, b1, −a1` in Q30.
    c: [i32; 3],
    /// `x[n−1], y[n−1]`.
    s: [i32; 2],
}

impl FirstOrder {
    /// A section with zero state.
    pub fn new(d: &Digital1) -> Self {
        Self {
            c: quantise([d.b[0], d.b[1], -d.a1]),
            s: [0; 2],
        }
    }

    /// One sample in, one out (Q24; the input must be within `±SIGNAL_LIMIT`).
    #[inline(always)]
    pub fn run(&mut self, x: i32) -> i32 {
        let [x1, y1] = self.s;
        let [c0, c1, c2] = self.c;
        let past = dot([c1, c2], [x1, y1]);
        let y = output(past.wrapping_add(i64::from(c0).wrapping_mul(i64::from(x))));
        self.s = [x, y];
        y
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        self.s = [0; 2];
    }
}

/// Block 4: squaring and the first-order sliding-mean low-pass (τ = 300 ms), with the Pinst
/// scale folded into the squarer's input so that the state is Pinst itself on a 2⁻²⁴ grid.
///
/// The weighted signal `w` (Q24) is first multiplied by `√S · 2⁻¹²` (S = [`super::design::pinst_scale`])
/// into `w'` (an integer), so that `w'² · 2⁻²⁴ = S·w²` = Pinst. `|w'|` saturates at 2²³ (Pinst 4·10⁶, far above
/// the classifier's top class), so `w'² < 2⁴⁶` and `(w'² − y)·α < 2⁵⁹`. The smallest step the
/// state can make is about 240 grid units (1.4·10⁻⁵ Pinst) at the internal rates used, well below
/// the classifier's lowest class (6·10⁻⁵).
#[derive(Debug, Clone, PartialEq)]
pub struct Smoother {
    gain_q30: i32,
    alpha_q20: i32,
    y: i64,
}

/// Fractional bits of the Pinst state.
pub const PINST_FRAC_BITS: u32 = 24;
const W_LIMIT: i64 = 1 << 23;

impl Smoother {
    /// `scale` = S of [`super::design::pinst_scale`]; `alpha` = the smoothing coefficient at the
    /// internal rate (≈ 0.004 at 800 Hz; clamped to `0..=1/64`, which keeps `(w'² − y)·α` below
    /// 2⁶⁰). The gain `√S·2⁻¹²` is held in Q30 below 2 (S up to 6.7·10⁷; ours is 3.1·10⁵).
    pub fn new(scale: f64, alpha: f64) -> Self {
        let gain = scale.max(0.0).sqrt() / f64::from(1u32 << 12);
        let gain_q30 = (gain * f64::from(1u32 << 30) + 0.5) as i64;
        let alpha_q20 = (alpha * f64::from(1u32 << 20) + 0.5) as i64;
        Self {
            gain_q30: gain_q30.clamp(0, i64::from(i32::MAX)) as i32,
            alpha_q20: alpha_q20.clamp(0, 1 << 14) as i32,
            y: 0,
        }
    }

    /// One weighted sample (Q24) in. Wrapping ops for the same reason as the sections: the
    /// bounds in the type docs make them exact.
    #[inline(always)]
    pub fn run(&mut self, w: i32) {
        let ws =
            (i64::from(w).wrapping_mul(i64::from(self.gain_q30)) >> 30).clamp(-W_LIMIT, W_LIMIT);
        let d = ws.wrapping_mul(ws).wrapping_sub(self.y);
        let step = d
            .wrapping_mul(i64::from(self.alpha_q20))
            .wrapping_add(1 << 19)
            >> 20;
        debug_assert_eq!(
            i128::from(step),
            (i128::from(d) * i128::from(self.alpha_q20) + (1 << 19)) >> 20
        );
        self.y = self.y.wrapping_add(step);
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
