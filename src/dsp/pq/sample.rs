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
