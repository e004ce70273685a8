//! The sample types of the pipeline and their lattice units.

use super::lattice::{F32_UNITS_PER_A, F32_UNITS_PER_V, Tap};
use crate::dsp::estimator::Sample;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for i32 {}
}

/// A sample type of the pipeline: the estimator's, which the lattice also interpolates directly
/// (`i32` codes in integers, `f32` volts/amps in `f32`); sealed.
pub trait PqSample: Sample + Tap + sealed::Sealed {
    /// Physical units per lattice unit before calibration gains, or `None` when the calibration's
    /// front end applies (integer codes).
    #[doc(hidden)]
    const UNIT: Option<(f64, f64)>;
    /// Sums of a block of input voltages on the way to the
    /// flickermeter (`i32` codes wrap, `f32` volts).
    #[doc(hidden)]
    type FlickerSum: Copy + Default + core::fmt::Debug + core::ops::AddAssign;
    /// The sample as a flicker sum term.
    #[doc(hidden)]
    fn flicker_term(self) -> Self::FlickerSum;
    /// A flicker sum as `f32` in its own unit (codes or volts).
    #[doc(hidden)]
    fn flicker_f32(sum: Self::FlickerSum) -> f32;
    /// Adds the voltages (channels 0, 2, 4) of `frames` to `sums`; `odd_first` says whether the
    /// first frame has an odd position in its decimation block (a type may keep the frames of
    /// odd positions in `sums[1]`; the block's sum is `sums[0] + sums[1]`).
    #[doc(hidden)]
    #[inline(always)]
    fn add_flicker_terms(
        frames: &[[Self; 6]],
        _odd_first: bool,
        sums: &mut [[Self::FlickerSum; 3]; 2],
    ) {
        let [s, _] = sums;
        for f in frames {
            s[0] += f[0].flicker_term();
            s[1] += f[2].flicker_term();
            s[2] += f[4].flicker_term();
        }
    }
}

impl PqSample for f32 {
    const UNIT: Option<(f64, f64)> =
        Some((1.0 / F32_UNITS_PER_V as f64, 1.0 / F32_UNITS_PER_A as f64));
    type FlickerSum = f32;
    #[inline(always)]
    fn flicker_term(self) -> f32 {
        self
    }
    fn flicker_f32(sum: f32) -> f32 {
        sum
    }
    /// Frames at even and odd positions of the block into separate sums: two independent chains
    /// of `f32` adds (the latency of one chain, not the adds, bounded the single loop), and the
    /// same sums however the input is split into calls. Integer codes keep the plain loop: their
    /// adds take one cycle, and on RV32 the second set of sums costs registers.
    #[inline(always)]
    fn add_flicker_terms(frames: &[[f32; 6]], odd_first: bool, sums: &mut [[f32; 3]; 2]) {
        let [even, odd] = sums;
        let mut rest = frames;
        if odd_first && let Some((f, r)) = rest.split_first() {
            odd[0] += f[0];
            odd[1] += f[2];
            odd[2] += f[4];
            rest = r;
        }
        let (pairs, last) = rest.as_chunks::<2>();
        for [a, b] in pairs {
            even[0] += a[0];
            even[1] += a[2];
            even[2] += a[4];
            odd[0] += b[0];
            odd[1] += b[2];
            odd[2] += b[4];
        }
        for f in last {
            even[0] += f[0];
            even[1] += f[2];
            even[2] += f[4];
        }
    }
}

impl PqSample for i32 {
    const UNIT: Option<(f64, f64)> = None;
    type FlickerSum = core::num::Wrapping<i32>;
    #[inline(always)]
    fn flicker_term(self) -> core::num::Wrapping<i32> {
        core::num::Wrapping(self)
    }
    fn flicker_f32(sum: core::num::Wrapping<i32>) -> f32 {
        sum.0 as f32
    }
}
