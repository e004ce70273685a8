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
use core::f64::consts::SQRT_2;

mod config;
mod detector;
mod edges;
mod float;
mod int;
mod readings;
mod sample;
mod sums;

pub use config::{ConfigError, EstimatorConfig, PhaseMode};
pub use readings::{HalfCycleRms, Measurement, Window};
pub use sample::Sample;

use detector::Biquad;
use sums::{Run, Sums};

/// Largest block (decimation) length.
pub const MAX_DECIMATION: usize = 8;

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

/// Every observer as one type inside the estimator: the block loops (several KB of code per sample
/// type and decimation) are compiled once, not once per observer, and the observer's hooks (a few
/// per line cycle) cost an indirect call.
struct DynObserver<'a>(&'a mut dyn Observer);

impl Observer for DynObserver<'_> {
    #[inline]
    fn window(&mut self, window: &Window) {
        self.0.window(window)
    }
    #[inline]
    fn rising_crossing(&mut self, frame: f64, consecutive: bool) {
        self.0.rising_crossing(frame, consecutive)
    }
    #[inline]
    fn next_window_cycles(&mut self, start_frame: f64, period_frames: f64) -> Option<u32> {
        self.0.next_window_cycles(start_frame, period_frames)
    }
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
        self.feed_dyn(samples, &mut DynObserver(on_window))
    }

    fn feed_dyn(&mut self, samples: &[S], on_window: &mut DynObserver<'_>) -> usize {
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
}
