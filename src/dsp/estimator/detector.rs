//! Crossing detection: the band-pass filters on the L1 block sums, the hysteresis and the
//! interpolated crossing position, the window timeout and loss of synchronisation, and the
//! per-period constants (reference rotation, boxcar gain) that follow the measured frequency.

use super::{Estimator, Sample};
use core::f64::consts::PI;
#[allow(unused_imports)] // inherent f64 methods shadow it with `std`
use num_traits::Float;

/// Biquad, transposed direct form II, `f64`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Biquad {
    pub(super) b0: f64,
    pub(super) b2: f64,
    pub(super) a1: f64,
    pub(super) a2: f64,
    pub(super) z1: f64,
    pub(super) z2: f64,
}

impl Biquad {
    /// RBJ band-pass, 0 dB peak gain.
    pub(super) fn bandpass(f0_hz: f64, fs_hz: f64, q: f64) -> Self {
        let w0 = 2.0 * PI * f0_hz / fs_hz;
        let alpha = w0.sin() / (2.0 * q);
        let a0 = 1.0 + alpha;
        Self {
            b0: alpha / a0,
            b2: -alpha / a0,
            a1: -2.0 * w0.cos() / a0,
            a2: (1.0 - alpha) / a0,
            z1: 0.0,
            z2: 0.0,
        }
    }
    pub(super) fn cleared(self) -> Self {
        Self {
            z1: 0.0,
            z2: 0.0,
            ..self
        }
    }
    #[inline(always)]
    pub(super) fn step(&mut self, x: f64) -> f64 {
        let y = self.b0 * x + self.z1;
        self.z1 = -self.a1 * y + self.z2;
        self.z2 = self.b2 * x - self.a2 * y;
        y
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum EdgeEvent {
    Rising,
    Falling,
    Timeout,
    LostSync,
}

impl<S: Sample> Estimator<S> {
    /// Where between two decimated points (`y0 < 0 <= y1`) a sinusoid at the estimated frequency
    /// through both crosses zero, as a fraction of the decimated step. Exact for a pure tone (linear
    /// interpolation is off by up to ~(ωT)²/40 of a step); falls back to linear if degenerate.
    #[inline]
    pub(super) fn crossing_fraction(&self, y0: f64, y1: f64) -> f64 {
        let big = self.omega * self.d as f64;
        // `set_period` stores e^{-jωd}: the same sin/cos of the same product
        let (sn, cs) = (-self.rot_s, self.rot_c);
        let den = y1 - y0 * cs;
        let tau = if den > 0.0 && big > 0.0 {
            -(y0 * sn / den).atan() / big
        } else {
            y0 / (y0 - y1)
        };
        if tau.is_finite() {
            tau.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// The crossing detector's step, shared by both paths (`Y` is `f64` volts or integer detector
    /// units): a crossing between the previous block's output and this one's, armed by the previous
    /// swing past the hysteresis band `lo..hi`, becomes an event at its position in the block.
    #[inline(always)]
    pub(super) fn crossing<Y: Copy + Default + PartialOrd + Into<f64>>(
        &mut self,
        y_prev: Y,
        y: Y,
        lo: Y,
        hi: Y,
        df: f64,
    ) -> Option<(EdgeEvent, f64)> {
        let zero = Y::default();
        let mut event = None;
        if self.armed_rise && y_prev < zero && y >= zero {
            let tau = self.crossing_fraction(y_prev.into(), y.into());
            event = Some((EdgeEvent::Rising, tau * df));
            self.armed_rise = false;
        } else if self.armed_fall && y_prev > zero && y <= zero {
            let tau = self.crossing_fraction(-y_prev.into(), -y.into());
            self.armed_fall = false;
            if self.synced {
                event = Some((EdgeEvent::Falling, tau * df));
            }
        }
        if y < lo {
            self.armed_rise = true;
        }
        if y > hi {
            self.armed_fall = true;
        }
        event
    }

    /// The window timeout (unsynchronised) or the loss of synchronisation, for the block starting at
    /// frame `s` of `df` frames.
    #[inline]
    pub(super) fn deadline(&self, s: f64, df: f64) -> Option<(EdgeEvent, f64)> {
        if !self.synced {
            let u = self.win_timeout - (s - 1.0);
            (u < df).then(|| (EdgeEvent::Timeout, u.max(0.0)))
        } else {
            (s + df - 1.0 - self.last_rise > self.lost_limit).then_some((EdgeEvent::LostSync, df))
        }
    }

    pub(super) fn set_period(&mut self, period: f64) {
        self.period_est = period;
        let omega = 2.0 * PI / period;
        self.omega = omega;
        let df = self.d as f64;
        let (s, c) = (omega * df).sin_cos();
        self.rot_c = c;
        self.rot_s = -s;
        let g = (omega * df * 0.5).sin() / (df * (omega * 0.5).sin());
        self.inv_g = if g > 0.0 { 1.0 / g } else { 1.0 };
    }
}
