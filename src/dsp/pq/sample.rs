//! The sample types of the pipeline and their lattice units.

use crate::dsp::estimator::Sample;

/// Units per volt and per amp of `f32` input on the integer lattice (±2048 V, ±512 A in 24 bits).
const F32_UNITS_PER_V: f32 = 4096.0;
const F32_UNITS_PER_A: f32 = 16384.0;
const UNIT_LIMIT: i32 = 8_388_607;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for i32 {}
}

/// A sample type of the pipeline: the estimator's, plus its conversion to lattice units.
pub trait PqSample: Sample + sealed::Sealed {
    /// Lattice units of a voltage (`current = false`) or current sample.
    #[doc(hidden)]
    fn units(self, current: bool) -> i32;
    /// Physical units per lattice unit before calibration gains, or `None` when the calibration's
    /// front end applies (integer codes).
    #[doc(hidden)]
    const UNIT: Option<(f64, f64)>;
    /// Six-channel frames that already are lattice units (integer codes): read in place.
    #[doc(hidden)]
    fn as_units(_frames: &[Self]) -> Option<&[[i32; 6]]> {
        None
    }
}

impl PqSample for f32 {
    #[inline(always)]
    fn units(self, current: bool) -> i32 {
        let k = if current {
            F32_UNITS_PER_A
        } else {
            F32_UNITS_PER_V
        };
        let y = self * k;
        // round half away from zero; `as` saturates and maps NaN to 0
        let r = (y + if y < 0.0 { -0.5 } else { 0.5 }) as i32;
        r.clamp(-UNIT_LIMIT, UNIT_LIMIT)
    }
    const UNIT: Option<(f64, f64)> =
        Some((1.0 / F32_UNITS_PER_V as f64, 1.0 / F32_UNITS_PER_A as f64));
}

impl PqSample for i32 {
    #[inline(always)]
    fn units(self, _current: bool) -> i32 {
        self
    }
    const UNIT: Option<(f64, f64)> = None;
    fn as_units(frames: &[Self]) -> Option<&[[i32; 6]]> {
        Some(frames.as_chunks::<6>().0)
    }
}
