//! The sample types the estimator accepts, each with its own per-block path.

use super::{Estimator, Observer};
use num_traits::AsPrimitive;

/// Keeps [`Sample`] closed: the estimator has one hand-written per-block path per sample type.
mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for i32 {}
}

/// A sample type the estimator accepts: `f32` (volts and amps) or `i32` (signed ADC codes of up to
/// 24 bits, scaled by the calibration's [`FrontEnd`](crate::calibration::FrontEnd)).
///
/// Each type has its own per-block path: `f32` accumulates in `f32` lanes the compiler vectorises
/// and runs the detector in `f64`; `i32` stays in integers (exact `i64` sums, a Q28 detector and a
/// Q30 reference phasor) until the sums are folded into `f64` at window and half-cycle edges, so
/// that a core without an FPU spends no soft-float work per sample. The trait is sealed.
pub trait Sample: sealed::Sealed + Copy + Default + core::fmt::Debug + 'static {
    /// The per-sample accumulator.
    type Acc: Copy
        + Default
        + core::ops::AddAssign
        + core::ops::SubAssign
        + AsPrimitive<f64>
        + core::fmt::Debug;
    /// Accumulator of the fundamental DFT between folds.
    type Dft: Copy + Default + AsPrimitive<f64> + core::fmt::Debug;
    /// Value of one unit of [`Sample::Dft`] (the phasor's fixed-point scale).
    #[doc(hidden)]
    const DFT_UNIT: f64;
    /// `self` as `f64` (before front-end scaling).
    fn to_f64(self) -> f64;
    /// Runs whole blocks of frames through this type's per-block path.
    #[doc(hidden)]
    fn process_blocks<F: Observer>(est: &mut Estimator<Self>, frames: &[[Self; 6]], cb: &mut F);
    /// Called before the front-end scaling changes, and after it changed.
    #[doc(hidden)]
    fn rescale(_est: &mut Estimator<Self>, _before: bool) {}
}

impl Sample for f32 {
    type Acc = f32;
    type Dft = f32;
    const DFT_UNIT: f64 = 1.0;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn process_blocks<F: Observer>(est: &mut Estimator<f32>, frames: &[[f32; 6]], cb: &mut F) {
        est.process_blocks_float(frames, cb);
    }
}

impl Sample for i32 {
    type Acc = i64;
    type Dft = i64;
    // the integer path's reference phasor is Q30
    const DFT_UNIT: f64 = 1.0 / (1u64 << 30) as f64;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn process_blocks<F: Observer>(est: &mut Estimator<i32>, frames: &[[i32; 6]], cb: &mut F) {
        est.process_blocks_int(frames, cb);
    }
    fn rescale(est: &mut Estimator<i32>, before: bool) {
        est.rescale_int(before);
    }
}
