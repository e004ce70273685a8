//! Blocks 1 and 2: the squaring demodulator with a decimating mean, and the input voltage adaptor
//! (normalisation to the 1-min mean square).
//!
//! # Squaring on the integer unit
//! Every input sample is squared and summed over a block of `D` samples (the decimation to the
//! internal rate). On a soft-float core `acc += v * v` costs ≈ 117 instructions; here the square
//! is formed from the `f32` bit pattern instead: the 24-bit mantissa, shifted by the exponent's
//! distance from a reference exponent chosen at start-up from the signal's own peak, squared in
//! a `u64` (≈ 30 instructions with the sum). Squares near the reference peak keep 46 bits;
//! samples 32× above it saturate, samples 2²⁴× below it count as zero.
//! Non-finite samples repeat the previous square (a NaN neither stalls the meter nor reads as an
//! interruption); zero and subnormal samples square to zero.
//!
//! # Normalisation (block 1)
//! Ed.2 scales the input to the 1-min mean of its RMS (a first-order low-pass with τ = 27.3 s,
//! whose 10–90 % step response is one minute). Squaring first and dividing the block means of
//! `v²` by the low-passed mean square `g` is the same operation (`(v/√g)² = v²/g`). `g` is
//! primed with the plain mean over the first second (50 or 60 whole cycles at nominal
//! frequency, so the 2f ripple averages out) and then tracked from the output of the 35/42 Hz
//! low-pass, which carries `v²/g − 1` without the 2f ripple: the 27.3 s filter therefore sees
//! the mean square, not the ripple, and a steady signal leaves `g` exactly still.
//!
//! The division is a `u32 × u32` multiply: `u = ((sum >> shift) · mult) >> 32` in Q24, with
//! `shift` and `mult = 2⁵⁶⁺ˢʰⁱᶠᵗ / g` recomputed whenever `g` moves (every 64 internal samples).
//!
//! # Start and restart
//! 1. *Peak* (0.1 s of input): the largest exponent seen fixes the squaring reference. All-zero
//!    or all-non-finite input keeps the meter here.
//! 2. *Level* (1 s of blocks): `g` = the mean block sum.
//! 3. *Run*: blocks come out normalised. If `g` later leaves `[g₀·2⁻¹⁶, g₀·2⁶]` (the RMS fell
//!    by 48 dB or rose 8×, e.g. the meter started on a dead line), the demodulator starts again
//!    at 1 and the flickermeter restarts its filters and its settling time.

#[allow(unused_imports)] // inherent f64 methods shadow it with `std`
use num_traits::Float;

use super::design::ADAPTOR_TIME_CONSTANT_S;
use super::filters::SIGNAL_FRAC_BITS;

/// Length of the peak search, seconds.
pub const PEAK_WINDOW_S: f32 = 0.1;
/// Length of the level priming, seconds.
pub const LEVEL_WINDOW_S: f32 = 1.0;
/// Time the normalised level may stay at its ceiling (≥ 16× the mean square, i.e. the RMS ≥ 4×
/// the 1-min mean) before the demodulator restarts, seconds.
pub const OVERLOAD_S: f32 = 0.5;
/// Internal samples per update of the 27.3 s adaptor filter.
const TRACK_BLOCKS: u32 = 64;
/// Largest scaled mantissa: 24 bits shifted left by at most 4 (its square is below 2⁵⁶).
const MAX_MANTISSA: u32 = (1 << 28) - 1;
/// Headroom of `u = sum / g` before saturation is ≥ 16 (Q24 ⇒ ≤ 2²⁹ after the multiply).
const GS_BITS: i32 = 27;
/// Restart bounds relative to the primed level.
const LOW_LIMIT: f32 = 1.0 / 65_536.0;
const HIGH_LIMIT: f32 = 64.0;
/// `g` below this cannot be normalised with a 32-bit multiplier.
const G_FLOOR: f32 = (1u64 << GS_BITS) as f32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Peak,
    Level,
    Run,
}

/// What a closed block gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalised {
    /// Still priming: nothing for the filters yet.
    Priming,
    /// `v²/g − 1` in Q24, within `[−1, 31]`.
    Sample(i32),
    /// The level stayed above the normalisable range for [`OVERLOAD_S`]: the demodulator
    /// restarted (the caller must restart its filters).
    Restarted,
}

/// Blocks 1 and 2 of one phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Demodulator {
    decimation: u32,
    in_block: u32,
    sum: u64,
    last_mantissa: u32,
    e_ref: i32,
    phase: Phase,
    left: u32,
    e_max: i32,
    peak_samples: u32,
    level_blocks: u32,
    level_acc: u64,
    g: f32,
    g_low: f32,
    g_high: f32,
    shift: u32,
    mult: u32,
    track_acc: i64,
    track_n: u32,
    track_alpha: f32,
    overload: u32,
    overload_limit: u32,
}

impl Demodulator {
    /// `input_rate_hz` samples per second summed in blocks of `decimation`.
    pub fn new(input_rate_hz: u32, decimation: u32) -> Self {
        let rate = input_rate_hz as f32;
        let decimation = decimation.max(1);
        let internal_rate = rate / decimation as f32;
        let peak_samples = ((rate * PEAK_WINDOW_S) as u32).max(1);
        let level_blocks = ((internal_rate * LEVEL_WINDOW_S) as u32).max(1);
        let track_s = TRACK_BLOCKS as f32 / internal_rate;
        let track_alpha = 1.0 - (-f64::from(track_s) / ADAPTOR_TIME_CONSTANT_S).exp() as f32;
        Self {
            decimation,
            in_block: 0,
            sum: 0,
            last_mantissa: 0,
            e_ref: 0,
            phase: Phase::Peak,
            left: peak_samples,
            e_max: 0,
            peak_samples,
            level_blocks,
            level_acc: 0,
            g: 0.0,
            g_low: 0.0,
            g_high: 0.0,
            shift: 0,
            mult: 0,
            track_acc: 0,
            track_n: 0,
            track_alpha,
            overload: 0,
            overload_limit: ((internal_rate * OVERLOAD_S) as u32).max(1),
        }
    }

    /// Back to the peak search (the caller restarts its filters).
    pub fn restart(&mut self) {
        self.phase = Phase::Peak;
        self.left = self.peak_samples;
        self.e_max = 0;
        self.in_block = 0;
        self.sum = 0;
        self.last_mantissa = 0;
        self.level_acc = 0;
        self.track_acc = 0;
        self.track_n = 0;
        self.overload = 0;
    }

    /// True once blocks come out normalised.
    pub fn running(&self) -> bool {
        self.phase == Phase::Run
    }

    /// Adds one input sample; returns the block's sum of squares when it closes a block.
    ///
    /// The sum cannot overflow (at most 40 terms below 2⁵⁶ each), nor can the counter: the
    /// wrapping operations only spare the overflow branches of builds that check.
    #[inline(always)]
    pub fn accumulate(&mut self, v: f32) -> Option<u64> {
        if self.phase == Phase::Peak {
            self.peak(v);
            return None;
        }
        self.sum = self.sum.wrapping_add(self.square(v));
        self.in_block = self.in_block.wrapping_add(1);
        if self.in_block < self.decimation {
            return None;
        }
        self.in_block = 0;
        Some(core::mem::take(&mut self.sum))
    }

    /// `v²` on the reference grid (see the module docs): the mantissa is first scaled by
    /// `2^(e − e_ref)` with a 32-bit shift (at most 4 left, so it stays below 2²⁸), then squared
    /// into a `u64` (below 2⁵⁶). A sample 2⁵× above the reference saturates; the bits shifted out
    /// on the right are below 2⁻²³ of the reference peak.
    #[inline(always)]
    fn square(&mut self, v: f32) -> u64 {
        let bits = v.to_bits();
        let e = ((bits >> 23) & 0xFF) as i32;
        let ms = if e == 0xFF {
            self.last_mantissa
        } else if e == 0 {
            0
        } else {
            let m = (bits & 0x7F_FFFF) | 0x80_0000;
            // Both exponents are within 1..=255.
            let d = self.e_ref.wrapping_sub(e);
            if d >= 0 {
                m >> d.min(31)
            } else if d >= -4 {
                m << d.unsigned_abs()
            } else {
                MAX_MANTISSA
            }
        };
        self.last_mantissa = ms;
        u64::from(ms).wrapping_mul(u64::from(ms))
    }

    #[cold]
    fn peak(&mut self, v: f32) {
        let e = ((v.to_bits() >> 23) & 0xFF) as i32;
        if e != 0xFF && e > self.e_max {
            self.e_max = e;
        }
        self.left = self.left.saturating_sub(1);
        if self.left > 0 {
            return;
        }
        if self.e_max == 0 {
            // Nothing but zeros (or non-finite values): keep looking.
            self.left = self.peak_samples;
            return;
        }
        self.e_ref = self.e_max + 1;
        self.phase = Phase::Level;
        self.left = self.level_blocks;
        self.level_acc = 0;
        self.in_block = 0;
        self.sum = 0;
    }

    /// Normalises a closed block (see [`Normalised`]).
    #[inline(always)]
    pub fn normalise(&mut self, sum: u64) -> Normalised {
        if self.phase != Phase::Run {
            self.level(sum);
            return Normalised::Priming;
        }
        let s = sum >> self.shift;
        if s > u64::from(u32::MAX) {
            return self.overloaded();
        }
        self.overload = 0;
        let u = (s * u64::from(self.mult)) >> 32;
        // u ≤ 2³²·2²⁹/2³² = 2²⁹ (G_FLOOR keeps `mult` ≤ 2²⁹).
        let u = u.min(1 << 29) as i32;
        Normalised::Sample(u - (1 << SIGNAL_FRAC_BITS))
    }

    /// A block above the normalisable range: saturate, and restart if it lasts.
    #[cold]
    fn overloaded(&mut self) -> Normalised {
        self.overload += 1;
        if self.overload > self.overload_limit {
            self.restart();
            return Normalised::Restarted;
        }
        let u = (u64::from(u32::MAX) * u64::from(self.mult)) >> 32;
        Normalised::Sample(u.min(1 << 29) as i32 - (1 << SIGNAL_FRAC_BITS))
    }

    #[cold]
    fn level(&mut self, sum: u64) {
        // A block sum is below 2⁶²: 2¹¹ of them fit after the shift (level_blocks ≤ 1600).
        self.level_acc += sum >> 11;
        self.left = self.left.saturating_sub(1);
        if self.left > 0 {
            return;
        }
        let g = self.level_acc as f32 * 2048.0 / self.level_blocks as f32;
        // A level that cannot be normalised (a spike in the peak window, then silence): start over.
        if g.is_nan() || g < G_FLOOR * 8.0 {
            self.restart();
            return;
        }
        self.g = g;
        self.g_low = (g * LOW_LIMIT).max(G_FLOOR);
        self.g_high = g * HIGH_LIMIT;
        self.set_scale();
        self.track_acc = 0;
        self.track_n = 0;
        self.phase = Phase::Run;
    }

    fn set_scale(&mut self) {
        let e = ((self.g.to_bits() >> 23) & 0xFF) as i32 - 127;
        let shift = (e - GS_BITS).max(0);
        // 2^-shift exactly (shift ≤ 64 - 27).
        let down = f32::from_bits(((127 - shift) as u32) << 23);
        let gs = self.g * down;
        let mult = (1u64 << 56) as f32 / gs;
        self.shift = shift as u32;
        self.mult = mult as u32;
    }

    /// Feeds the low-passed normalised signal (`v²/g − 1` without the 2f ripple, Q24) to the
    /// 27.3 s adaptor filter. Returns true when the level left the normalisable range and the
    /// demodulator restarted (the caller must restart its filters).
    #[inline(always)]
    pub fn track(&mut self, y: i32) -> bool {
        self.track_acc += i64::from(y);
        self.track_n += 1;
        if self.track_n < TRACK_BLOCKS {
            return false;
        }
        self.update_level()
    }

    #[cold]
    fn update_level(&mut self) -> bool {
        let mean =
            self.track_acc as f32 * (1.0 / ((TRACK_BLOCKS as u64) << SIGNAL_FRAC_BITS) as f32);
        self.track_acc = 0;
        self.track_n = 0;
        let g = self.g * (1.0 + self.track_alpha * mean);
        if !(self.g_low..=self.g_high).contains(&g) {
            self.restart();
            return true;
        }
        self.g = g;
        self.set_scale();
        false
    }
}
