//! The streaming, cycle-synchronous estimator.
//!
//! # How it works
//! * Frames (`v_l1,i_l1,v_l2,i_l2,v_l3,i_l3`) are processed in blocks of `d` frames, `d = rate/4000`
//!   (1 at ≤ 7999 Hz, 8 at 32 kHz). Per frame the only work is adding `x`, `x²`, `v·i` and the
//!   neighbour products (`v1·v2`, … for the line voltages) into six-lane accumulators — a loop the
//!   compiler vectorises, in `f32`, folded into `f64` at every half cycle. (Integer codes take a
//!   path of their own that stays in integers per frame and per block, see
//!   [`fixed`](super::fixed).)
//! * Per block, the block sum of L1 voltage (a boxcar decimation to ≈4 kHz) feeds two cascaded
//!   band-pass biquads at the nominal frequency (Q = 1): DC, harmonics and noise are attenuated before
//!   the positive- and negative-going crossings are searched, with hysteresis (the filtered signal
//!   must first swing past ±max(¼ of the last cycle's peak, ½·√2·`min_voltage_v`)). A crossing is
//!   located between two decimated points by linear interpolation; the filter's delay is the same for
//!   every cycle, so N crossing intervals are exactly N line cycles.
//! * The block in which a window or half-cycle edge falls is re-processed sample by sample in `f64`,
//!   splitting the sample that straddles the edge by the fraction on each side.
//! * The fundamental phasors of all six channels (for Q₁, φ, THD) are a single-bin DFT at the
//!   measured line frequency, evaluated on the block sums (corrected for the boxcar's gain) and
//!   sample by sample in the edge blocks. The reference phasor is rotated per block and the
//!   frequency re-estimated every cycle.
//! * With no crossings (no voltage on L1) windows close at the nominal length (`cycles_per_window /
//!   nominal_hz`), and their frequency is `None`.
//!
//! State is a few hundred bytes per phase (see [`Estimator::state_size_bytes`]); nothing is
//! allocated.

use crate::calibration::Calibration;
use core::f64::consts::{PI, SQRT_2};
use num_traits::AsPrimitive;
#[allow(unused_imports)] // inherent f64 methods shadow it with `std`
use num_traits::Float;

/// Largest block (decimation) length.
pub const MAX_DECIMATION: usize = 8;
/// Frames are folded from the per-sample accumulators into `f64` at least every this many blocks.
const FOLD_BLOCKS: u32 = 64;

mod int;

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
    const DFT_UNIT: f64 = int::DFT_UNIT;
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

/// Three-phase (six channels) or single-phase (two channels, `v, i`) input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum PhaseMode {
    /// `v_l1,i_l1,v_l2,i_l2,v_l3,i_l3`.
    #[default]
    Three,
    /// `v,i`; results in phase 0, the others stay zero.
    Single,
}

/// Receives what the estimator finds while it is fed ([`Estimator::feed_observed`]).
///
/// Every closure `FnMut(&Window)` is an observer that only looks at windows. The other hooks run
/// inside the per-block event handling, so they must be cheap; they never see samples.
pub trait Observer {
    /// A window completed (the same windows, in the same order, as [`Estimator::feed`] reports).
    fn window(&mut self, window: &Window);
    /// A positive-going L1 crossing of the fundamental at `frame` (frames since the start, between
    /// samples); `consecutive` is false for the crossing that (re)acquires synchronisation, so the
    /// interval to the previous crossing is one line cycle exactly when it is true.
    fn rising_crossing(&mut self, _frame: f64, _consecutive: bool) {}
    /// A window opened at `start_frame`; the line period is about `period_frames`. `Some(k)` ends it
    /// after `k` cycles (clamped to `1..=cycles_per_window`) instead of the configured count; it is
    /// asked once per window, also for windows that open unsynchronised (where it applies only if
    /// synchronisation is acquired at a later window).
    fn next_window_cycles(&mut self, _start_frame: f64, _period_frames: f64) -> Option<u32> {
        None
    }
}

impl<F: FnMut(&Window)> Observer for F {
    fn window(&mut self, window: &Window) {
        self(window)
    }
}

/// Estimator settings; check them with [`EstimatorConfig::validate`] (done by [`Estimator::new`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EstimatorConfig {
    /// Sample rate of the input, Hz, `1000..=32000`.
    pub rate_hz: u32,
    /// Nominal line frequency, 50 or 60 Hz.
    pub nominal_hz: u32,
    /// Line cycles per window, `1..=120` (IEC 61000-4-30: 10 at 50 Hz, 12 at 60 Hz).
    pub cycles_per_window: u32,
    /// Input layout.
    pub phases: PhaseMode,
    /// Below this L1 RMS voltage no crossings are detected, volts (`> 0`).
    pub min_voltage_v: f32,
    /// Below this fundamental current, phase angle and THD of I are `None`, amps (`> 0`).
    pub min_current_a: f32,
}

impl EstimatorConfig {
    /// Defaults for `rate_hz` and `nominal_hz`: 10 cycles at 50 Hz, 12 at 60 Hz, three-phase,
    /// 5 V and 1 mA thresholds.
    pub fn new(rate_hz: u32, nominal_hz: u32) -> Self {
        Self {
            rate_hz,
            nominal_hz,
            cycles_per_window: if nominal_hz == 60 { 12 } else { 10 },
            phases: PhaseMode::Three,
            min_voltage_v: 5.0,
            min_current_a: 1e-3,
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1000..=32000).contains(&self.rate_hz) {
            return Err(ConfigError::RateHz(self.rate_hz));
        }
        if !matches!(self.nominal_hz, 50 | 60) {
            return Err(ConfigError::NominalHz(self.nominal_hz));
        }
        if !(1..=120).contains(&self.cycles_per_window) {
            return Err(ConfigError::CyclesPerWindow(self.cycles_per_window));
        }
        if !(self.min_voltage_v.is_finite() && self.min_voltage_v > 0.0) {
            return Err(ConfigError::MinVoltage(self.min_voltage_v));
        }
        if !(self.min_current_a.is_finite() && self.min_current_a > 0.0) {
            return Err(ConfigError::MinCurrent(self.min_current_a));
        }
        Ok(())
    }
}

/// An invalid [`EstimatorConfig`] field.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `rate_hz` outside `1000..=32000`.
    #[error("Invalid rate_hz: {0} (expected 1000..=32000)")]
    RateHz(u32),
    /// `nominal_hz` not 50 or 60.
    #[error("Invalid nominal_hz: {0} (expected 50 or 60)")]
    NominalHz(u32),
    /// `cycles_per_window` outside `1..=120`.
    #[error("Invalid cycles_per_window: {0} (expected 1..=120)")]
    CyclesPerWindow(u32),
    /// `min_voltage_v` not finite and positive.
    #[error("Invalid min_voltage_v: {0} (expected > 0)")]
    MinVoltage(f32),
    /// `min_current_a` not finite and positive.
    #[error("Invalid min_current_a: {0} (expected > 0)")]
    MinCurrent(f32),
}

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
    fn sanitise(&mut self) {
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

#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    w: f64,
    s1: [f64; 6],
    s2: [f64; 6],
    sp: [f64; 6],
    sl: [f64; 6],
    re: [f64; 6],
    im: [f64; 6],
    zre: f64,
    zim: f64,
    /// Σ w·z²: the image (negative-frequency) term of the single-bin DFT.
    kre: f64,
    kim: f64,
}

impl Sums {
    #[inline]
    fn add_sample(&mut self, x: &[f64; 6], w: f64, zr: f64, zi: f64) {
        let sw = swap_pairs(x);
        let r2 = rot2(x);
        self.w += w;
        let wx: [f64; 6] = x.map(|v| w * v);
        for k in 0..6 {
            // constant trip count over fixed-size arrays: always in bounds
            #[allow(clippy::indexing_slicing)]
            {
                self.s1[k] += wx[k];
                self.s2[k] += wx[k] * x[k];
                self.sp[k] += wx[k] * sw[k];
                self.sl[k] += wx[k] * r2[k];
                self.re[k] += wx[k] * zr;
                self.im[k] += wx[k] * zi;
            }
        }
        self.zre += w * zr;
        self.zim += w * zi;
        self.kre += w * (zr * zr - zi * zi);
        self.kim += w * 2.0 * zr * zi;
    }

    fn merge(&mut self, o: &Sums) {
        self.w += o.w;
        add6(&mut self.s1, &o.s1);
        add6(&mut self.s2, &o.s2);
        add6(&mut self.sp, &o.sp);
        add6(&mut self.sl, &o.sl);
        add6(&mut self.re, &o.re);
        add6(&mut self.im, &o.im);
        self.zre += o.zre;
        self.zim += o.zim;
        self.kre += o.kre;
        self.kim += o.kim;
    }
}

#[inline(always)]
fn add6(a: &mut [f64; 6], b: &[f64; 6]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

#[inline(always)]
fn swap_pairs<T: Copy>(x: &[T; 6]) -> [T; 6] {
    [x[1], x[0], x[3], x[2], x[5], x[4]]
}

#[inline(always)]
fn rot2<T: Copy>(x: &[T; 6]) -> [T; 6] {
    [x[2], x[3], x[4], x[5], x[0], x[1]]
}

/// Per-sample accumulators between folds.
#[derive(Debug, Clone, Copy, Default)]
struct Run<A, D> {
    s1: [A; LANES],
    s2: [A; LANES],
    sp: [A; LANES],
    sl: [A; LANES],
    /// Σ over blocks of block sum · Re/Im(z) (before the boxcar-gain correction).
    re: [D; LANES],
    im: [D; LANES],
    /// Σ over blocks of z and z².
    zr: D,
    zi: D,
    kr: D,
    ki: D,
    frames: u32,
    blocks: u32,
}

/// Six channels padded to eight lanes (two 4-wide or one 8-wide vector).
const LANES: usize = 8;

/// Biquad, transposed direct form II, `f64`.
#[derive(Debug, Clone, Copy, Default)]
struct Biquad {
    b0: f64,
    b2: f64,
    a1: f64,
    a2: f64,
    z1: f64,
    z2: f64,
}

impl Biquad {
    /// RBJ band-pass, 0 dB peak gain.
    fn bandpass(f0_hz: f64, fs_hz: f64, q: f64) -> Self {
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
    fn cleared(self) -> Self {
        Self {
            z1: 0.0,
            z2: 0.0,
            ..self
        }
    }
    #[inline(always)]
    fn step(&mut self, x: f64) -> f64 {
        let y = self.b0 * x + self.z1;
        self.z1 = -self.a1 * y + self.z2;
        self.z2 = self.b2 * x - self.a2 * y;
        y
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Event {
    Rising,
    Falling,
    Timeout,
    LostSync,
}

/// The streaming estimator; `S` is the sample type (`f32` volts/amps, or `i32` codes scaled by the
/// calibration's [`FrontEnd`](crate::calibration::FrontEnd)).
///
/// ```
/// use smartmeter::dsp::{Estimator, EstimatorConfig, Grid, GridConfig};
/// let mut grid = Grid::new(GridConfig { rate_hz: 8000, ..GridConfig::default() });
/// let mut est = Estimator::<f32>::new(EstimatorConfig::new(8000, 50))?;
/// let mut buf = vec![0.0f32; 6 * 8000];
/// grid.fill(&mut buf);
/// let mut last = None;
/// est.feed(&buf, |w| last = Some(*w));
/// let w = last.unwrap();
/// assert!((w.phases[0].vrms_v - 230.0).abs() < 0.01);
/// assert!((w.frequency_hz.unwrap() - 50.0).abs() < 0.001);
/// # Ok::<(), smartmeter::dsp::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Estimator<S: Sample = f32> {
    cfg: EstimatorConfig,
    cal: Calibration,
    d: usize,
    scale: [f64; 6],
    partial: [S; 6],
    partial_len: usize,
    pending: [[S; 6]; MAX_DECIMATION],
    pending_len: usize,
    /// Last frame of the previous block (shared with the next window at an edge).
    prev_frame: [S; 6],
    /// Index of the first frame of the next block.
    next_frame: u64,
    run: Run<S::Acc, S::Dft>,
    half: Sums,
    win: Sums,
    // reference phasor at the current block's centre, e^{-jθ}
    zc: f64,
    zs: f64,
    rot_c: f64,
    rot_s: f64,
    omega: f64,
    inv_g: f64,
    period_est: f64,
    // crossing detector
    filt: [Biquad; 2],
    y_prev: f64,
    armed_rise: bool,
    armed_fall: bool,
    peak: f64,
    amp: f64,
    h_min: f64,
    // synchronisation
    synced: bool,
    cycles: u32,
    /// Cycles that close the window in progress (the configured count unless an observer asked
    /// for fewer).
    win_cycles: u32,
    win_start: f64,
    win_timeout: f64,
    last_rise: f64,
    nominal_len: f64,
    lost_limit: f64,
    // half-cycle RMS: previous half's (Σv, Σv², w) per phase
    half_prev: Option<[[f64; 3]; 3]>,
    hc: HalfCycleRms,
    // 10-s frequency
    f10_start: Option<f64>,
    f10_cycles: u32,
    f10: Option<f32>,
    last: Option<Window>,
    windows: u64,
    /// State of the integer per-block path (`i32` samples only; idle for `f32`).
    int: int::IntPath,
}

impl<S: Sample> Estimator<S> {
    /// A validated estimator with unit calibration.
    pub fn new(config: EstimatorConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let rate = f64::from(config.rate_hz);
        let d = ((config.rate_hz / 4000) as usize).clamp(1, MAX_DECIMATION);
        let fs_d = rate / d as f64;
        let f0 = f64::from(config.nominal_hz);
        let nominal_len = f64::from(config.cycles_per_window) * rate / f0;
        let filt = [
            Biquad::bandpass(f0, fs_d, 1.0),
            Biquad::bandpass(f0, fs_d, 1.0),
        ];
        let mut est = Self {
            cfg: config,
            cal: Calibration::default(),
            d,
            scale: [1.0; 6],
            partial: [S::default(); 6],
            partial_len: 0,
            pending: [[S::default(); 6]; MAX_DECIMATION],
            pending_len: 0,
            prev_frame: [S::default(); 6],
            next_frame: 0,
            run: Run::default(),
            half: Sums::default(),
            win: Sums::default(),
            zc: 1.0,
            zs: 0.0,
            rot_c: 1.0,
            rot_s: 0.0,
            omega: 0.0,
            inv_g: 1.0,
            period_est: rate / f0,
            filt,
            y_prev: 0.0,
            armed_rise: false,
            armed_fall: false,
            peak: 0.0,
            amp: 0.0,
            h_min: 0.5 * SQRT_2 * f64::from(config.min_voltage_v),
            synced: false,
            cycles: 0,
            win_cycles: config.cycles_per_window,
            win_start: 0.0,
            win_timeout: nominal_len,
            last_rise: 0.0,
            nominal_len,
            lost_limit: 2.0 * rate / (0.7 * f0),
            half_prev: None,
            hc: HalfCycleRms::default(),
            f10_start: None,
            f10_cycles: 0,
            f10: None,
            last: None,
            windows: 0,
            int: int::IntPath::new(&filt),
        };
        est.set_period(rate / f0);
        Ok(est)
    }

    /// The configuration.
    pub fn config(&self) -> &EstimatorConfig {
        &self.cfg
    }

    /// The calibration in use.
    pub fn calibration(&self) -> &Calibration {
        &self.cal
    }

    /// Replaces the calibration; it applies to the window in progress (gains act on the window
    /// sums) and, for integer samples, sets the front-end scaling.
    pub fn set_calibration(&mut self, calibration: Calibration) {
        self.cal = calibration;
        S::rescale(self, true);
        if core::any::TypeId::of::<S>() != core::any::TypeId::of::<f32>() {
            let fe = calibration.front_end();
            self.scale = [
                fe.volts_per_code,
                fe.amps_per_code,
                fe.volts_per_code,
                fe.amps_per_code,
                fe.volts_per_code,
                fe.amps_per_code,
            ];
        }
        S::rescale(self, false);
    }

    /// A copy that continues from this estimator's state with `cycles_per_window` line cycles per
    /// window (e.g. a one-cycle view of a running 10-cycle estimator, for the derived `sample`
    /// streams). Its crossing detector, frequency tracking and reference phasor are those of the
    /// running estimator, so — if that one is settled — the copy's windows are settled from the first
    /// on; the first one closes at the next window edge and spans the window in progress.
    pub fn fork_with_cycles_per_window(&self, cycles_per_window: u32) -> Result<Self, ConfigError> {
        let mut cfg = self.cfg;
        cfg.cycles_per_window = cycles_per_window;
        cfg.validate()?;
        let mut est = self.clone();
        est.cfg = cfg;
        est.nominal_len =
            f64::from(cycles_per_window) * f64::from(cfg.rate_hz) / f64::from(cfg.nominal_hz);
        est.win_timeout = est.win_timeout.min(est.win_start + est.nominal_len);
        // the window in progress closes at the next edge that completes the new count
        est.win_cycles = est.win_cycles.min(cycles_per_window);
        Ok(est)
    }

    /// Changes the nominal frequency (50 or 60 Hz) without a gap in the windows: the detector's
    /// filters are re-tuned (their state is kept), the nominal window length and the loss-of-sync
    /// limit follow, and when `cycles_per_window` is the default of the old nominal (10 at 50 Hz,
    /// 12 at 60 Hz) it becomes the default of the new one. The window in progress keeps its cycle
    /// count; the change shapes the windows after it. Used when the nominal frequency is detected
    /// from the signal (IEC 61000-4-30 auto mode). On error nothing changes.
    pub fn set_nominal_hz(&mut self, nominal_hz: u32) -> Result<(), ConfigError> {
        let old = self.cfg;
        let mut cfg = old;
        cfg.nominal_hz = nominal_hz;
        if old.cycles_per_window
            == EstimatorConfig::new(old.rate_hz, old.nominal_hz).cycles_per_window
        {
            cfg.cycles_per_window = EstimatorConfig::new(old.rate_hz, nominal_hz).cycles_per_window;
        }
        cfg.validate()?;
        if cfg == old {
            return Ok(());
        }
        S::rescale(self, true);
        self.cfg = cfg;
        let rate = f64::from(cfg.rate_hz);
        let f0 = f64::from(nominal_hz);
        let fs_d = rate / self.d as f64;
        for f in &mut self.filt {
            let state = (f.z1, f.z2);
            *f = Biquad::bandpass(f0, fs_d, 1.0);
            (f.z1, f.z2) = state;
        }
        self.int.retune(&self.filt);
        self.nominal_len = f64::from(cfg.cycles_per_window) * rate / f0;
        self.lost_limit = 2.0 * rate / (0.7 * f0);
        if !self.synced {
            self.win_timeout = self.win_start + self.nominal_len;
            self.set_period(rate / f0);
        }
        S::rescale(self, false);
        Ok(())
    }

    /// Frames the detector has processed: every window edge before this frame has been reported
    /// (frames of an unfinished block wait in the estimator; see [`frames_consumed`](Self::frames_consumed)).
    pub fn frames_processed(&self) -> u64 {
        self.next_frame
    }

    /// Block (decimation) length in frames.
    pub fn decimation(&self) -> usize {
        self.d
    }

    /// The last completed window.
    pub fn last_window(&self) -> Option<&Window> {
        self.last.as_ref()
    }

    /// The IEC 61000-4-30 10-s frequency (whole cycles in the last completed ≥10 s interval divided by
    /// their duration), Hz; `None` before the first interval or after synchronisation was lost.
    pub fn frequency_10s_hz(&self) -> Option<f32> {
        self.f10
    }

    /// Half-cycle-refreshed one-cycle RMS voltages with min/max since the last reset.
    pub fn half_cycle_rms(&self) -> &HalfCycleRms {
        &self.hc
    }

    /// Clears the min/max of [`half_cycle_rms`](Self::half_cycle_rms) (e.g. on `getQuality`).
    pub fn reset_half_cycle_extremes(&mut self) {
        self.hc.min_v = [None; 3];
        self.hc.max_v = [None; 3];
    }

    /// Frames consumed so far (complete frames, including those waiting in a partial block).
    pub fn frames_consumed(&self) -> u64 {
        self.next_frame + self.pending_len as u64
    }

    /// Bytes of state of the whole estimator (three phases); no heap is used.
    pub const fn state_size_bytes() -> usize {
        core::mem::size_of::<Self>()
    }

    /// Feeds interleaved samples (six channels, or two in single-phase mode); a block may end anywhere,
    /// even inside a frame. `on_window` is called for every window completed by this block, in order.
    /// Returns the number of windows completed.
    pub fn feed<F: FnMut(&Window)>(&mut self, samples: &[S], mut on_window: F) -> usize {
        self.feed_observed(samples, &mut on_window)
    }

    /// [`feed`](Self::feed) with an [`Observer`] that also sees every rising L1 crossing and may
    /// shorten the next window (the power-quality pipeline re-synchronises its basic intervals on
    /// the 10-min clock tick this way).
    pub fn feed_observed<O: Observer>(&mut self, samples: &[S], on_window: &mut O) -> usize {
        let before = self.windows;
        let ch = match self.cfg.phases {
            PhaseMode::Three => 6,
            PhaseMode::Single => 2,
        };
        let mut rest = samples;
        while self.partial_len > 0 {
            let Some((first, tail)) = rest.split_first() else {
                break;
            };
            if let Some(slot) = self.partial.get_mut(self.partial_len) {
                *slot = *first;
            }
            self.partial_len += 1;
            rest = tail;
            if self.partial_len == ch {
                self.partial_len = 0;
                let f = self.frame_from(&self.partial);
                self.push_frames(&[f], on_window);
            }
        }
        let tail = if ch == 6 {
            let (frames, tail) = rest.as_chunks::<6>();
            self.push_frames(frames, on_window);
            tail
        } else {
            let (pairs, tail) = rest.as_chunks::<2>();
            let mut buf = [[S::default(); 6]; 32];
            for chunk in pairs.chunks(32) {
                for (dst, [v, i]) in buf.iter_mut().zip(chunk) {
                    *dst = [
                        *v,
                        *i,
                        S::default(),
                        S::default(),
                        S::default(),
                        S::default(),
                    ];
                }
                if let Some(frames) = buf.get(..chunk.len()) {
                    self.push_frames(frames, on_window);
                }
            }
            tail
        };
        for v in tail {
            if let Some(slot) = self.partial.get_mut(self.partial_len) {
                *slot = *v;
                self.partial_len += 1;
            }
        }
        (self.windows - before) as usize
    }

    fn frame_from(&self, p: &[S; 6]) -> [S; 6] {
        match self.cfg.phases {
            PhaseMode::Three => *p,
            PhaseMode::Single => [
                p[0],
                p[1],
                S::default(),
                S::default(),
                S::default(),
                S::default(),
            ],
        }
    }

    fn push_frames<F: Observer>(&mut self, mut frames: &[[S; 6]], cb: &mut F) {
        let d = self.d;
        if self.pending_len > 0 {
            while self.pending_len < d {
                let Some((f, rest)) = frames.split_first() else {
                    return;
                };
                if let Some(slot) = self.pending.get_mut(self.pending_len) {
                    *slot = *f;
                }
                self.pending_len += 1;
                frames = rest;
            }
            let blk = self.pending;
            self.pending_len = 0;
            if let Some(b) = blk.get(..d) {
                self.process_blocks(b, cb);
            }
        }
        let whole = frames.len() / d * d;
        let Some((direct, rest)) = frames.split_at_checked(whole) else {
            return;
        };
        self.process_blocks(direct, cb);
        for f in rest {
            if let Some(slot) = self.pending.get_mut(self.pending_len) {
                *slot = *f;
                self.pending_len += 1;
            }
        }
    }

    /// `frames.len()` is a multiple of `d`.
    #[inline]
    fn process_blocks<F: Observer>(&mut self, frames: &[[S; 6]], cb: &mut F) {
        S::process_blocks(self, frames, cb);
    }

    /// Where between two decimated points (`y0 < 0 <= y1`) a sinusoid at the estimated frequency
    /// through both crosses zero, as a fraction of the decimated step. Exact for a pure tone (linear
    /// interpolation is off by up to ~(ωT)²/40 of a step); falls back to linear if degenerate.
    #[inline]
    fn crossing_fraction(&self, y0: f64, y1: f64) -> f64 {
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
    fn crossing<Y: Copy + Default + PartialOrd + Into<f64>>(
        &mut self,
        y_prev: Y,
        y: Y,
        lo: Y,
        hi: Y,
        df: f64,
    ) -> Option<(Event, f64)> {
        let zero = Y::default();
        let mut event = None;
        if self.armed_rise && y_prev < zero && y >= zero {
            let tau = self.crossing_fraction(y_prev.into(), y.into());
            event = Some((Event::Rising, tau * df));
            self.armed_rise = false;
        } else if self.armed_fall && y_prev > zero && y <= zero {
            let tau = self.crossing_fraction(-y_prev.into(), -y.into());
            self.armed_fall = false;
            if self.synced {
                event = Some((Event::Falling, tau * df));
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
    fn deadline(&self, s: f64, df: f64) -> Option<(Event, f64)> {
        if !self.synced {
            let u = self.win_timeout - (s - 1.0);
            (u < df).then(|| (Event::Timeout, u.max(0.0)))
        } else {
            (s + df - 1.0 - self.last_rise > self.lost_limit).then_some((Event::LostSync, df))
        }
    }

    /// Moves the per-sample accumulators into the `f64` half-cycle sums.
    ///
    /// `df` and `gd` convert the phasor sums of block-rate accumulation (the `f32` path: block sums
    /// times the block-centre phasor) to per-sample terms; the integer path accumulates per-sample
    /// terms already and passes 1.
    fn fold(&mut self, run: &mut Run<S::Acc, S::Dft>, df: f64, gd: f64) {
        let sc = self.scale;
        let sw = swap_pairs(&sc);
        let r2 = rot2(&sc);
        let h = &mut self.half;
        let unit = S::DFT_UNIT;
        for (((re, im), (rr, ri)), c) in
            h.re.iter_mut()
                .zip(&mut h.im)
                .zip(run.re.iter().zip(&run.im))
                .zip(&sc)
        {
            // (for `f32`, `unit` is 1 and the products are exactly the block path's)
            *re += rr.as_() * c * gd * unit;
            *im += ri.as_() * c * gd * unit;
        }
        h.zre += run.zr.as_() * df * gd * unit;
        h.zim += run.zi.as_() * df * gd * unit;
        h.kre += run.kr.as_() * df * unit;
        h.kim += run.ki.as_() * df * unit;
        h.w += f64::from(run.frames);
        for k in 0..6 {
            let (Some(a1), Some(a2), Some(ap), Some(al)) =
                (run.s1.get(k), run.s2.get(k), run.sp.get(k), run.sl.get(k))
            else {
                continue;
            };
            let (Some(c), Some(cw), Some(cr)) = (sc.get(k), sw.get(k), r2.get(k)) else {
                continue;
            };
            if let Some(x) = h.s1.get_mut(k) {
                *x += a1.as_() * c;
            }
            if let Some(x) = h.s2.get_mut(k) {
                *x += a2.as_() * c * c;
            }
            if let Some(x) = h.sp.get_mut(k) {
                *x += ap.as_() * c * cw;
            }
            if let Some(x) = h.sl.get_mut(k) {
                *x += al.as_() * c * cr;
            }
        }
        *run = Run::default();
    }

    fn set_period(&mut self, period: f64) {
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

    fn handle_event<F: Observer>(&mut self, ev: Event, t: f64, cb: &mut F) {
        let rate = f64::from(self.cfg.rate_hz);
        match ev {
            Event::Rising if !self.synced => {
                cb.rising_crossing(t, false);
                self.close_window(t, None, 0, false, cb);
                self.synced = true;
                self.cycles = 0;
                self.last_rise = t;
                self.half_prev = None;
                self.amp = self.peak;
                self.peak = 0.0;
                self.f10_start = Some(t);
                self.f10_cycles = 0;
            }
            Event::Rising => {
                cb.rising_crossing(t, true);
                let period = t - self.last_rise;
                let nominal = rate / f64::from(self.cfg.nominal_hz);
                if period > 0.5 * nominal && period < 2.0 * nominal {
                    let p = if self.cycles == 0 && self.windows_synced_in_row() == 0 {
                        period
                    } else {
                        self.period_est + 0.5 * (period - self.period_est)
                    };
                    self.set_period(p);
                }
                self.half_event();
                self.cycles += 1;
                self.last_rise = t;
                self.amp = self.peak;
                self.peak = 0.0;
                if let Some(start) = self.f10_start {
                    self.f10_cycles += 1;
                    if t - start >= 10.0 * rate {
                        self.f10 = Some((f64::from(self.f10_cycles) * rate / (t - start)) as f32);
                        self.f10_start = Some(t);
                        self.f10_cycles = 0;
                    }
                }
                if self.cycles >= self.win_cycles {
                    let len = t - self.win_start;
                    let freq = (len > 0.0).then(|| (f64::from(self.cycles) * rate / len) as f32);
                    let cycles = self.cycles;
                    if len > 0.5 * nominal * f64::from(cycles)
                        && len < 2.0 * nominal * f64::from(cycles)
                    {
                        self.set_period(len / f64::from(cycles));
                    }
                    self.close_window(t, freq, cycles, true, cb);
                    self.cycles = 0;
                }
            }
            Event::Falling => self.half_event(),
            Event::Timeout => {
                self.close_window(t, None, 0, false, cb);
                self.win_timeout = t + self.nominal_len;
            }
            Event::LostSync => {
                self.close_window(t, None, 0, false, cb);
                self.synced = false;
                self.win_timeout = t + self.nominal_len;
                self.amp = 0.0;
                self.peak = 0.0;
                self.armed_rise = false;
                self.armed_fall = false;
                self.half_prev = None;
                self.f10_start = None;
                self.f10 = None;
                self.set_period(rate / f64::from(self.cfg.nominal_hz));
            }
        }
    }

    fn windows_synced_in_row(&self) -> u64 {
        u64::from(self.last.is_some_and(|w| w.synchronised))
    }

    /// Ends a half cycle: updates the one-cycle RMS, moves the half sums into the window.
    fn half_event(&mut self) {
        let cur: [[f64; 3]; 3] = core::array::from_fn(|p| {
            let k = 2 * p;
            [
                self.half.s1.get(k).copied().unwrap_or(0.0),
                self.half.s2.get(k).copied().unwrap_or(0.0),
                self.half.w,
            ]
        });
        if let Some(prev) = self.half_prev {
            let nph = if self.cfg.phases == PhaseMode::Single {
                1
            } else {
                3
            };
            for (p, ((a, b), ph)) in prev
                .iter()
                .zip(&cur)
                .zip(self.cal.phases())
                .enumerate()
                .take(nph)
            {
                let s1 = a[0] + b[0];
                let s2 = a[1] + b[1];
                let w = a[2] + b[2];
                if w <= 0.0 {
                    continue;
                }
                let o = f64::from(ph.voltage_offset_v);
                let ms = (s2 - 2.0 * o * s1 + o * o * w) / w;
                let v = (f64::from(ph.voltage_gain) * ms.max(0.0).sqrt()) as f32;
                if let Some(x) = self.hc.last_v.get_mut(p) {
                    *x = Some(v);
                }
                if let Some(x) = self.hc.min_v.get_mut(p) {
                    *x = Some(x.map_or(v, |m| m.min(v)));
                }
                if let Some(x) = self.hc.max_v.get_mut(p) {
                    *x = Some(x.map_or(v, |m| m.max(v)));
                }
            }
        }
        self.half_prev = Some(cur);
        let h = self.half;
        self.win.merge(&h);
        self.half = Sums::default();
    }

    fn close_window<F: Observer>(
        &mut self,
        t_end: f64,
        frequency_hz: Option<f32>,
        cycles: u32,
        synchronised: bool,
        cb: &mut F,
    ) {
        let h = self.half;
        self.win.merge(&h);
        self.half = Sums::default();
        let start = self.win_start;
        self.win_start = t_end;
        let sums = self.win;
        self.win = Sums::default();
        let full = self.cfg.cycles_per_window;
        self.win_cycles = cb
            .next_window_cycles(t_end, self.period_est)
            .map_or(full, |k| k.clamp(1, full));
        if sums.w <= 0.0 || t_end <= start {
            return;
        }
        let rate = f64::from(self.cfg.rate_hz);
        let f_hz = frequency_hz.map_or(f64::from(self.cfg.nominal_hz), f64::from);
        let mut w = self.measure(&sums, f_hz);
        for m in &mut w.phases {
            m.sanitise();
        }
        for lv in &mut w.line_voltage_v {
            *lv = lv.filter(|x| x.is_finite());
        }
        w.frequency_hz = frequency_hz;
        w.duration_s = (t_end - start) / rate;
        w.start_sample = start;
        w.end_sample = t_end;
        w.samples = (t_end - start).round() as u32;
        w.cycles = cycles;
        w.synchronised = synchronised;
        w.sequence = self.windows;
        self.windows += 1;
        self.last = Some(w);
        cb.window(&w);
    }

    fn measure(&self, s: &Sums, f_hz: f64) -> Window {
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

/// The `f32` per-block path: vectorised `f32` lanes, detector and phasor in `f64`.
impl Estimator<f32> {
    /// `frames.len()` is a multiple of `d`.
    fn process_blocks_float<F: Observer>(&mut self, frames: &[[f32; 6]], cb: &mut F) {
        match self.d {
            8 => self.process_blocks_d::<8, F>(frames, cb),
            4 => self.process_blocks_d::<4, F>(frames, cb),
            2 => self.process_blocks_d::<2, F>(frames, cb),
            1 => self.process_blocks_d::<1, F>(frames, cb),
            _ => self.process_blocks_any(frames, cb),
        }
    }

    fn process_blocks_d<const D: usize, F: Observer>(&mut self, frames: &[[f32; 6]], cb: &mut F) {
        let (blocks, _) = frames.as_chunks::<D>();
        let mut run = self.run;
        // the detector's filter state lives in registers across blocks
        let mut filt = self.filt;
        for blk in blocks {
            let b1 = kernel(blk, &mut run.s2, &mut run.sp, &mut run.sl);
            self.after_kernel(blk, &b1, &mut run, &mut filt, cb);
        }
        self.filt = filt;
        self.run = run;
    }

    fn process_blocks_any<F: Observer>(&mut self, frames: &[[f32; 6]], cb: &mut F) {
        let mut run = self.run;
        let mut filt = self.filt;
        for blk in frames.chunks_exact(self.d) {
            let b1 = kernel(blk, &mut run.s2, &mut run.sp, &mut run.sl);
            self.after_kernel(blk, &b1, &mut run, &mut filt, cb);
        }
        self.filt = filt;
        self.run = run;
    }

    /// Per-block work after the per-frame sums: crossing detection, phasor, events.
    #[inline(always)]
    fn after_kernel<F: Observer>(
        &mut self,
        blk: &[[f32; 6]],
        b1: &[f32; LANES],
        run: &mut Run<f32, f32>,
        filt: &mut [Biquad; 2],
        cb: &mut F,
    ) {
        let d = blk.len();
        let df = d as f64;
        let s = self.next_frame as f64;
        let [f0, f1] = filt;
        let mut y = f1.step(f0.step(f64::from(b1[0]) * self.scale[0] / df));
        if !y.is_finite() {
            // NaN/∞ in the input must not poison the detector forever
            *f0 = f0.cleared();
            *f1 = f1.cleared();
            y = 0.0;
        }
        let ay = y.abs();
        if ay > self.peak {
            self.peak = ay;
        }
        let h = self.h_min.max(0.25 * self.amp);
        let mut event = self.crossing(self.y_prev, y, -h, h, df);
        self.y_prev = y;
        if event.is_none() {
            event = self.deadline(s, df);
        }
        match event {
            None => {
                add_lanes(&mut run.s1, b1);
                run.frames += d as u32;
                run.blocks += 1;
                let zc = self.zc as f32;
                let zs = self.zs as f32;
                for ((re, im), x) in run.re.iter_mut().zip(&mut run.im).zip(*b1) {
                    *re += x * zc;
                    *im += x * zs;
                }
                run.zr += zc;
                run.zi += zs;
                run.kr += zc * zc - zs * zs;
                let zz = zs * zc;
                run.ki += zz;
                run.ki += zz;
                if run.blocks >= FOLD_BLOCKS {
                    self.fold(run, self.d as f64, self.inv_g);
                }
            }
            Some((ev, u)) => self.split_block(blk, ev, u, run, cb),
        }
        if let Some(last) = blk.last() {
            self.prev_frame = *last;
        }
        // advance the reference phasor to the next block's centre
        let zc = self.zc * self.rot_c - self.zs * self.rot_s;
        let zs = self.zc * self.rot_s + self.zs * self.rot_c;
        self.zc = zc;
        self.zs = zs;
        self.next_frame += d as u64;
    }

    /// Handles a block containing an event at time `t = s − 1 + u` (`s` = the block's first frame,
    /// `0 ≤ u ≤ d`). The window edge cuts the piecewise-linear interpolant of the samples (the
    /// trapezoid rule with interpolated end points), so a sample next to the edge is shared between
    /// both sides with weights `1 − (1−β)²/2` and `β²/2`, β the edge's fraction past the sample.
    fn split_block<F: Observer>(
        &mut self,
        blk: &[[f32; 6]],
        ev: Event,
        u: f64,
        run: &mut Run<f32, f32>,
        cb: &mut F,
    ) {
        // the kernel already added this block's products to `run`: take them out again (exact for
        // integers; one extra rounding of a partial sum for f32), the block is re-done per sample
        let mut s2 = [f32::default(); LANES];
        let mut sp = [f32::default(); LANES];
        let mut sl = [f32::default(); LANES];
        let _ = kernel(blk, &mut s2, &mut sp, &mut sl);
        for (a, b) in run.s2.iter_mut().zip(s2) {
            *a -= b;
        }
        for (a, b) in run.sp.iter_mut().zip(sp) {
            *a -= b;
        }
        for (a, b) in run.sl.iter_mut().zip(sl) {
            *a -= b;
        }
        self.fold(run, self.d as f64, self.inv_g);
        let mut xs = [[0.0f64; 6]; MAX_DECIMATION + 1];
        let mut zk = [(0.0f64, 0.0f64); MAX_DECIMATION + 1];
        let mut pre = [0.0f64; MAX_DECIMATION + 1];
        let centre = (blk.len() as f64 - 1.0) * 0.5;
        // u − 1 is the edge relative to the block's first frame; slot 0 is the previous frame
        let rel = u - 1.0;
        let n0 = rel.floor();
        let beta = rel - n0;
        let frames = core::iter::once(&self.prev_frame).chain(blk.iter());
        // phasor of the previous frame (k = -1), then rotated by e^{-jω} per frame
        let (sn0, cs0) = (self.omega * (-1.0 - centre)).sin_cos();
        let mut zcur = (self.zc * cs0 + self.zs * sn0, self.zs * cs0 - self.zc * sn0);
        let (s1, c1) = self.omega.sin_cos();
        for (j, (((f, x), z), wp)) in frames.zip(&mut xs).zip(&mut zk).zip(&mut pre).enumerate() {
            let k = j as f64 - 1.0;
            for ((xo, v), c) in x.iter_mut().zip(f).zip(&self.scale) {
                *xo = v.to_f64() * c;
            }
            *z = zcur;
            zcur = (zcur.0 * c1 + zcur.1 * s1, zcur.1 * c1 - zcur.0 * s1);
            *wp = pre_weight(k, n0, beta);
            // the previous frame was already counted with weight 1
            let add = if j == 0 { *wp - 1.0 } else { *wp };
            if add != 0.0 {
                self.half.add_sample(x, add, z.0, z.1);
            }
        }
        let t = self.next_frame as f64 - 1.0 + u;
        self.handle_event(ev, t, cb);
        for (x, (z, wp)) in xs.iter().zip(zk.iter().zip(&pre)).take(blk.len() + 1) {
            let wpost = 1.0 - wp;
            if wpost != 0.0 {
                self.half.add_sample(x, wpost, z.0, z.1);
            }
        }
        // keep the phasor unit length
        let m = (self.zc * self.zc + self.zs * self.zs).sqrt();
        if m > 0.0 {
            self.zc /= m;
            self.zs /= m;
        }
    }
}

/// Weight of frame `k` (relative to the block's first frame) on the early side of a window edge at
/// `n0 + β` frames: the trapezoid rule with interpolated end points (see `split_block`).
#[inline]
fn pre_weight(k: f64, n0: f64, beta: f64) -> f64 {
    if k < n0 {
        1.0
    } else if k == n0 {
        1.0 - 0.5 * (1.0 - beta) * (1.0 - beta)
    } else if k == n0 + 1.0 {
        0.5 * beta * beta
    } else {
        0.0
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

#[inline(always)]
fn add_lanes<A: Copy + core::ops::AddAssign>(a: &mut [A; LANES], b: &[A; LANES]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += *y;
    }
}

/// The per-frame kernel: squares and products of one block accumulated into `run`, the block sum of
/// every channel returned. Eight lanes `[v1,i1,v2,i2,v3,i3,0,0]` so that the compiler maps it onto
/// SIMD registers; `sp` holds `v·i` in the even lanes, `sl` the neighbour products `v1·v2, v2·v3,
/// v3·v1` in lanes 0, 2, 4.
#[inline(always)]
fn kernel(
    blk: &[[f32; 6]],
    s2: &mut [f32; LANES],
    sp: &mut [f32; LANES],
    sl: &mut [f32; LANES],
) -> [f32; LANES] {
    let mut s1 = [f32::default(); LANES];
    for f in blk {
        let z = 0.0f32;
        let [x0, x1, x2, x3, x4, x5] = *f;
        let x = [x0, x1, x2, x3, x4, x5, z, z];
        let sw = [x1, x0, x3, x2, x5, x4, z, z];
        let r2 = [x2, x3, x4, x5, x0, x1, z, z];
        for k in 0..LANES {
            // constant trip count: indices are in bounds and the loop is unrolled
            #[allow(clippy::indexing_slicing)]
            {
                s1[k] += x[k];
                s2[k] += x[k] * x[k];
                sp[k] += x[k] * sw[k];
                sl[k] += x[k] * r2[k];
            }
        }
    }
    s1
}
