//! What a window reports: per-phase [`Measurement`]s, the [`Window`], the half-cycle RMS, and how
//! they are computed from the window's `f64` sums (IEEE 1459 quantities, the fundamental phasor
//! with its image term removed).

use super::config::PhaseMode;
use super::sums::Sums;
use super::{Estimator, Sample};
use core::f64::consts::{PI, SQRT_2};
#[allow(unused_imports)] // inherent f64 methods shadow it with `std`
use num_traits::Float;

/// Results of one phase over one window (calibration applied).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Measurement {
    /// True RMS voltage (DC removed), volts.
    pub vrms_v: f32,
    /// True RMS current (DC removed), amps.
    pub irms_a: f32,
    /// Active power `mean(v·i)`, watts (DC removed).
    pub active_power_w: f32,
    /// Apparent power `Vrms·Irms`, VA.
    pub apparent_power_va: f32,
    /// Fundamental reactive power Q₁ (IEEE 1459), var; positive when the current lags.
    pub reactive_power_var: f32,
    /// Nonactive power `√(S² − P²)` (IEEE 1459 N), VA.
    pub nonactive_power_va: f32,
    /// `P/S`, signed like P; `None` when S is below the voltage × current thresholds.
    pub power_factor: Option<f32>,
    /// `atan2(Q₁, P₁)` in degrees, (-180, 180]; `None` without voltage or current fundamental.
    pub phase_deg: Option<f32>,
    /// Voltage total distortion `√(V² − V₁²)/V₁`, percent (harmonics, interharmonics and noise);
    /// `None` without a voltage fundamental.
    pub thd_v_pct: Option<f32>,
    /// Current total distortion, percent; `None` without a current fundamental.
    pub thd_i_pct: Option<f32>,
    /// RMS of the voltage fundamental, volts.
    pub fundamental_vrms_v: f32,
    /// RMS of the current fundamental, amps.
    pub fundamental_irms_a: f32,
    /// Fundamental active power P₁, watts.
    pub fundamental_active_power_w: f32,
}

impl Measurement {
    /// Non-finite results (only possible from NaN/∞ samples) become 0 or `None`.
    pub(super) fn sanitise(&mut self) {
        for x in [
            &mut self.vrms_v,
            &mut self.irms_a,
            &mut self.active_power_w,
            &mut self.apparent_power_va,
            &mut self.reactive_power_var,
            &mut self.nonactive_power_va,
            &mut self.fundamental_vrms_v,
            &mut self.fundamental_irms_a,
            &mut self.fundamental_active_power_w,
        ] {
            if !x.is_finite() {
                *x = 0.0;
            }
        }
        for x in [
            &mut self.power_factor,
            &mut self.phase_deg,
            &mut self.thd_v_pct,
            &mut self.thd_i_pct,
        ] {
            *x = x.filter(|v| v.is_finite());
        }
    }
}

/// One completed window.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Window {
    /// Per phase results `[L1, L2, L3]` (single-phase mode: only `[0]`).
    pub phases: [Measurement; 3],
    /// Line frequency over the window, Hz; `None` when the window is not cycle-synchronous
    /// (no voltage, synchronisation lost or just acquired).
    pub frequency_hz: Option<f32>,
    /// True RMS line-to-line voltages `[L1-L2, L2-L3, L3-L1]`, volts; `None` in single-phase mode.
    pub line_voltage_v: [Option<f32>; 3],
    /// Window length, seconds (`(end_sample − start_sample) / rate`).
    pub duration_s: f64,
    /// Start, in frames since the estimator started (frame `n` is sampled at time `n`; the samples
    /// are integrated with the trapezoid rule, edges cutting the linear interpolant).
    pub start_sample: f64,
    /// End, same scale; the next window starts here.
    pub end_sample: f64,
    /// Frames in the window, rounded.
    pub samples: u32,
    /// Whole line cycles in the window (0 when not synchronous).
    pub cycles: u32,
    /// Bounded by L1 zero crossings.
    pub synchronised: bool,
    /// Counter of emitted windows, from 0.
    pub sequence: u64,
}

/// The IEC 61000-4-30 one-cycle RMS refreshed every half cycle, per phase.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct HalfCycleRms {
    /// The latest value, volts.
    pub last_v: [Option<f32>; 3],
    /// Minimum since the last reset, volts.
    pub min_v: [Option<f32>; 3],
    /// Maximum since the last reset, volts.
    pub max_v: [Option<f32>; 3],
}

impl<S: Sample> Estimator<S> {
    /// The calibrated readings of the window whose sums are `s`, at line frequency `f_hz` (for
    /// the current sensors' delay compensation).
    pub(super) fn measure(&self, s: &Sums, f_hz: f64) -> Window {
        let w = s.w;
        let mean: [f64; 6] = core::array::from_fn(|k| s.s1.get(k).copied().unwrap_or(0.0) / w);
        let var: [f64; 6] = core::array::from_fn(|k| {
            let m = mean.get(k).copied().unwrap_or(0.0);
            (s.s2.get(k).copied().unwrap_or(0.0) / w - m * m).max(0.0)
        });
        let gains = self.cal.factors().map(f64::from);
        let min_v = f64::from(self.cfg.min_voltage_v);
        let min_i = f64::from(self.cfg.min_current_a);
        let mut out = Window::default();
        let nph = if self.cfg.phases == PhaseMode::Single {
            1
        } else {
            3
        };
        for (p, (m, ph)) in out
            .phases
            .iter_mut()
            .zip(self.cal.phases())
            .enumerate()
            .take(nph)
        {
            let (kv, ki) = (2 * p, 2 * p + 1);
            let g = |k: usize| gains.get(k).copied().unwrap_or(1.0);
            let at = |a: &[f64; 6], k: usize| a.get(k).copied().unwrap_or(0.0);
            let (gv, gi) = (g(kv), g(ki));
            let (mv, mi) = (at(&mean, kv), at(&mean, ki));
            let vrms = gv * at(&var, kv).sqrt();
            let irms = gi * at(&var, ki).sqrt();
            let p_w = gv * gi * (at(&s.sp, kv) / w - mv * mi);
            let xv = phasor(
                s,
                at(&s.re, kv) - mv * s.zre,
                at(&s.im, kv) - mv * s.zim,
                gv,
            );
            let xi0 = phasor(
                s,
                at(&s.re, ki) - mi * s.zre,
                at(&s.im, ki) - mi * s.zim,
                gi,
            );
            let p1_raw = xv.0 * xi0.0 + xv.1 * xi0.1;
            let delay = f64::from(ph.current_delay_us) * 1e-6;
            let (sn, cs) = (2.0 * PI * f_hz * delay).sin_cos();
            let xi = (xi0.0 * cs - xi0.1 * sn, xi0.0 * sn + xi0.1 * cs);
            let p1 = xv.0 * xi.0 + xv.1 * xi.1;
            let q1 = xv.1 * xi.0 - xv.0 * xi.1;
            let p_w = p_w + (p1 - p1_raw);
            let v1 = (xv.0 * xv.0 + xv.1 * xv.1).sqrt();
            let i1 = (xi.0 * xi.0 + xi.1 * xi.1).sqrt();
            let sva = vrms * irms;
            m.vrms_v = vrms as f32;
            m.irms_a = irms as f32;
            m.active_power_w = p_w as f32;
            m.apparent_power_va = sva as f32;
            m.reactive_power_var = q1 as f32;
            m.nonactive_power_va = (sva * sva - p_w * p_w).max(0.0).sqrt() as f32;
            m.power_factor = (sva > min_v * min_i).then(|| (p_w / sva).clamp(-1.0, 1.0) as f32);
            m.phase_deg = (v1 >= min_v && i1 >= min_i).then(|| {
                let d = q1.atan2(p1).to_degrees();
                (if d <= -180.0 { d + 360.0 } else { d }) as f32
            });
            m.thd_v_pct = (v1 >= min_v)
                .then(|| (100.0 * (vrms * vrms - v1 * v1).max(0.0).sqrt() / v1) as f32);
            m.thd_i_pct = (i1 >= min_i)
                .then(|| (100.0 * (irms * irms - i1 * i1).max(0.0).sqrt() / i1) as f32);
            m.fundamental_vrms_v = v1 as f32;
            m.fundamental_irms_a = i1 as f32;
            m.fundamental_active_power_w = p1 as f32;
        }
        if nph == 3 {
            for (p, lv) in out.line_voltage_v.iter_mut().enumerate() {
                let a = 2 * p;
                let b = (2 * p + 2) % 6;
                let at = |x: &[f64; 6], k: usize| x.get(k).copied().unwrap_or(0.0);
                let (ga, gb) = (
                    gains.get(a).copied().unwrap_or(1.0),
                    gains.get(b).copied().unwrap_or(1.0),
                );
                let cov = at(&s.sl, a) / w - at(&mean, a) * at(&mean, b);
                let v2 = ga * ga * at(&var, a) + gb * gb * at(&var, b) - 2.0 * ga * gb * cov;
                *lv = Some(v2.max(0.0).sqrt() as f32);
            }
        }
        out
    }
}

/// RMS phasor of the fundamental from the DFT sum `X = re + j·im` (DC removed): solves
/// `X = a·W + conj(a)·K` for `a` so that the image term of a window that is not an exact number of
/// reference periods does not leak into the result; returns `√2·g·a`.
fn phasor(s: &Sums, re: f64, im: f64, gain: f64) -> (f64, f64) {
    let w = s.w;
    let (kr, ki) = (s.kre, s.kim);
    let den = w * w - (kr * kr + ki * ki);
    if den <= 0.0 {
        return (0.0, 0.0);
    }
    // X·W − conj(X)·K
    let nr = re * w - (re * kr + im * ki);
    let ni = im * w - (re * ki - im * kr);
    let k = SQRT_2 * gain / den;
    (nr * k, ni * k)
}
