//! Power quality (IEC 61000-4-30 Ed.3 methods, Class A as the goal): the pipeline of docs/protocol.md §11.
//!
//! [`Pq`] owns an [`Estimator`] (whose windows are the classic readings and the basic intervals)
//! and adds, from the same samples:
//! * **basic intervals**: gapless 10-cycle (50 Hz) / 12-cycle (60 Hz) windows between L1 crossings,
//!   re-synchronised on every 10-min clock tick (the window in progress ends at the first L1
//!   rising crossing after the tick, so windows never overlap and the next one starts there);
//! * **harmonic subgroups** H1..H50 of the three voltages and currents (IEC 61000-4-7: DFT of the
//!   basic window, 5 Hz bins, subgroup = RSS of the bin at h·f₁ and its two neighbours), THD over the
//!   subgroups, and **unbalance** u0/u2 from the fundamental phasors of the same DFT;
//! * **Urms(½)** per phase (one-cycle RMS refreshed every half cycle) and the **events** (dips, swells,
//!   interruptions, RVC; see [`VoltageEventKind`]);
//! * the **IEC 10-s frequency** (whole L1 cycles in each 10-s clock interval ÷ their duration);
//! * **aggregation**: 150/180 cycles, 10 min aligned to the UTC clock, 2 h (see [`Interval`]);
//! * **nominal values**: fixed, or detected from the first second with a voltage;
//! * the **flicker hook**: the voltages, decimated with integer block sums, go to a
//!   [`FlickerSink`] (see its docs for the rate), which returns Pst at each 10-min tick; the
//!   IEC 61000-4-15 flickermeter itself is [`flicker`].
//!
//! # How the spectrum is made cheap enough for an FPU-less core
//! Each channel is resampled onto a lattice of 128 points per line cycle that is phase-locked to the
//! estimator's crossings (module `lattice`); a window of `C` cycles then has `C·128` points and its
//! DFT bins `C·h` and `C·h ± 1` follow from two 128-point FFTs of sums folded over the cycles
//! (module `spectrum`). Per input sample there is no work but copying it (and, for the
//! flickermeter, three adds); per lattice point (6,400/s at 50 Hz) one 6-tap interpolation
//! (integer `mulh` for codes, `f32` for `f32` input), one add and two multiplications per
//! channel; per window nine fixed-point 128-point FFTs for codes, two lane-parallel `f32` FFTs of
//! all channels for `f32` input (module `spectrum_float`). Urms(½) is the RMS of the last 128
//! lattice points of a voltage, so it spans exactly one (predicted) period even while the
//! crossing detector settles after a step.
//!
//! # Units and time
//! Samples are `f32` volts/amps or `i32` ADC codes scaled by the calibration's
//! [`FrontEnd`](crate::calibration::FrontEnd) (like the estimator). Wall-clock times are
//! microseconds since the Unix epoch, given with each block for its first sample; durations come
//! from the sample count and the rate (the ADC clock is the time base), timestamps from the last
//! block's wall clock. Outputs carry Unix seconds (`f64`), volts, amps, hertz and percent.
//!
//! # Determinism and memory
//! For codes, all per-sample and per-point work is integer and per-window work is `f32`/`f64` with
//! IEEE operations only (no platform `sin`; tables are built at compile time), so the same codes
//! give the same results on a host and on the device. `f32` input (hosts only) is accumulated in
//! `f32` lanes, in an order the code fixes (the same on every host), and never quantised.
//! Nothing is allocated after [`Pq::new`]; the state size is [`Pq::state_size_bytes`] plus
//! [`Pq::heap_bytes`].

mod aggregate;
mod config;
pub mod events;
pub mod flicker;
mod hooks;
mod intervals;
mod lattice;
mod nominal;
mod record;
mod sample;
mod sinks;
mod spectrum;
mod spectrum_float;
mod sync;
pub(crate) mod tables;

pub use config::{Layout, PqConfig, PqConfigError};
pub use events::VoltageEventKind;
pub use record::{Interval, NominalValues, PqRecord, VoltageEvent};
pub(crate) use record::{MIN_FUNDAMENTAL_A, MIN_FUNDAMENTAL_V, thd_pct};
pub use sample::PqSample;
pub use sinks::{FlickerSink, NoFlicker, PqFlicker, PqSink};
pub use spectrum::HARMONICS;

use crate::calibration::Calibration;
use crate::dsp::estimator::{Estimator, EstimatorConfig, PhaseMode};
use aggregate::Acc;
use alloc::vec::Vec;
use hooks::{FrameClock, Freq10, Hooks, Opened};
use lattice::{Frames, Kernel, Lattice};
use nominal::NominalState;
#[allow(unused_imports)] // inherent float methods shadow it with `std`
use num_traits::Float;
use sinks::flicker_decimation;
use sync::Spectrum;

/// Synchronised windows after (re)synchronisation before basic intervals are reported.
const WARMUP_WINDOWS: u32 = 2;
/// Declared voltages auto-detection chooses from (docs/protocol.md §11), volts.
pub const DECLARED_VOLTAGES_V: [f32; 11] = [
    100.0, 110.0, 115.0, 120.0, 127.0, 200.0, 208.0, 220.0, 230.0, 240.0, 277.0,
];

/// Block-sum decimator of the voltages for the flickermeter.
#[derive(Debug, Clone, Copy)]
struct FlickerDecimator<T> {
    factor: u32,
    count: u32,
    sums: [T; 3],
    /// Volts per unit of a block sum, per phase (calibration gain and the block length
    /// included; computed when the calibration is set, not per sample: on an FPU-less core each
    /// is a chain of soft-float calls).
    scale: [f32; 3],
}

/// The power-quality pipeline; `S` is the sample type, `F` the flickermeter.
///
/// ```
/// use smartmeter::dsp::pq::{Interval, Pq, PqConfig};
/// use smartmeter::dsp::{Grid, GridConfig};
/// let mut pq = Pq::<f32>::new(PqConfig::new(8000))?;
/// let mut grid = Grid::new(GridConfig::default()); // 230 V, 50 Hz, 8 kHz
/// let mut buf = vec![0.0f32; 6 * 8000];
/// for s in 0..6 {
///     grid.fill(&mut buf);
///     pq.feed(&buf, 1_700_000_000_000_000 + s * 1_000_000, &mut ());
/// }
/// let r = pq.last(Interval::ThreeSecond).unwrap();
/// assert_eq!(r.nominal.voltage_v, 230.0);
/// assert!((r.voltage_v[0] - 230.0).abs() < 0.05);
/// # Ok::<(), smartmeter::dsp::pq::PqConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Pq<S: PqSample = f32, F: FlickerSink = NoFlicker> {
    cfg: PqConfig,
    est: Estimator<S>,
    hooks: Hooks,
    kernel: Kernel<S::W>,
    frames: Frames<S>,
    lat: Lattice<S>,
    spectrum: Option<Spectrum>,
    nominal: NominalState,
    detector: Option<events::Detector>,
    acc3s: Acc,
    acc10: Acc,
    acc10_aligned: bool,
    acc2h: Acc,
    acc2h_slot: Option<i64>,
    tick10_us: Option<i64>,
    /// The last record of each interval (5.6 KB, on the heap: see [`Lattice::folds`]).
    last: alloc::boxed::Box<[Option<PqRecord>]>,
    sequence: [u64; 4],
    events: heapless::Deque<VoltageEvent, 16>,
    events_dropped: u32,
    /// Urms(½) values while the nominal values are detected (2.4 KB, on the heap like the last
    /// records).
    early: alloc::boxed::Box<sync::Early>,
    /// The nominal frequency was decided other than the start's: the estimator settles again, and
    /// Urms(½) values keep waiting until the detector is built.
    retuning: bool,
    flicker: F,
    fdec: FlickerDecimator<S::FlickerSum>,
    partial: [S; 6],
    partial_len: usize,
    frames_in: u64,
    warmup: u32,
    /// Frames per processing piece (50 ms).
    piece: usize,
    /// Six-channel expansion of the other layouts for the lattice (allocated at construction,
    /// empty for the device's layout).
    conv: Vec<[S; 6]>,
    /// Six-channel expansion of voltage-only input for the estimator.
    expand: Vec<[S; 6]>,
    profile_mask: u8,
}

impl<S: PqSample> Pq<S, NoFlicker> {
    /// A pipeline without a flickermeter.
    pub fn new(config: PqConfig) -> Result<Self, PqConfigError> {
        Self::with_flicker(config, NoFlicker)
    }
}

impl<S: PqSample, F: FlickerSink> Pq<S, F> {
    /// A pipeline that feeds `flicker` (see [`FlickerSink`]).
    pub fn with_flicker(config: PqConfig, flicker: F) -> Result<Self, PqConfigError> {
        if let Some(v) = config.nominal_voltage_v
            && !(v.is_finite() && (50.0..=1000.0).contains(&v))
        {
            return Err(PqConfigError::NominalVoltage(v));
        }
        let f0 = config.nominal_frequency_hz.unwrap_or(50);
        let mut ec = EstimatorConfig::new(config.rate_hz, f0);
        if config.layout == Layout::SinglePhase {
            ec.phases = PhaseMode::Single;
        }
        let est = Estimator::<S>::new(ec)?;
        let rate = f64::from(config.rate_hz);
        let kernel = Kernel::for_rate::<S>(config.rate_hz);
        let k = kernel.taps();
        // input slice + taps + what the lattice may wait for at a window start (0.1 cycle at
        // 42.5 Hz) + two estimator blocks
        let piece = (config.rate_hz as usize / 20).max(1);
        let cap = k + (0.1 * rate / 42.5).ceil() as usize + 2 * est.decimation() + 16;
        let conv = if config.layout == Layout::ThreePhase {
            Vec::new()
        } else {
            Vec::with_capacity(piece)
        };
        let expand = if config.layout == Layout::ThreePhaseVoltage {
            Vec::with_capacity(piece)
        } else {
            Vec::new()
        };
        let mut hooks = Hooks {
            clock: FrameClock {
                frame: 0,
                us: 0,
                rate,
            },
            windows: heapless::Deque::new(),
            opened: heapless::Deque::new(),
            f10: Freq10::default(),
            cycles_per_window: ec.cycles_per_window,
            sink_windows: heapless::Deque::new(),
            pass_windows: false,
        };
        let period = rate / f64::from(f0);
        // the estimator's first window opens at frame 0 without asking
        let _ = hooks.opened.push_back(Opened {
            start: 0.0,
            cycles: ec.cycles_per_window,
            period,
        });
        let nominal = NominalState {
            decided: None,
            auto_v: config.nominal_voltage_v.is_none(),
            auto_f: config.nominal_frequency_hz.is_none(),
            fixed_v: config.nominal_voltage_v.unwrap_or(230.0),
            fixed_f: f0,
            seconds: 0.0,
            cycles: 0.0,
            sync_seconds: 0.0,
            v: [0.0; nominal::FIRST_WINDOWS],
            v_n: 0,
        };
        let factor = flicker_decimation(config.rate_hz);
        let mut pq = Self {
            cfg: config,
            est,
            hooks,
            kernel,
            frames: Frames::new(cap),
            lat: Lattice::new(),
            spectrum: None,
            nominal,
            detector: None,
            acc3s: Acc::default(),
            acc10: Acc::default(),
            acc10_aligned: false,
            acc2h: Acc::default(),
            acc2h_slot: None,
            tick10_us: None,
            last: alloc::vec![None; 4].into_boxed_slice(),
            sequence: [0; 4],
            events: heapless::Deque::new(),
            events_dropped: 0,
            early: alloc::boxed::Box::default(),
            retuning: false,
            flicker,
            fdec: FlickerDecimator {
                factor,
                count: 0,
                sums: Default::default(),
                scale: [0.0; 3],
            },
            partial: [S::default(); 6],
            partial_len: 0,
            frames_in: 0,
            warmup: 0,
            piece,
            conv,
            expand,
            profile_mask: 0,
        };
        pq.set_flicker_scale();
        if !pq.nominal.auto_v && !pq.nominal.auto_f {
            pq.decide(pq.nominal.fixed_v, f0);
        }
        Ok(pq)
    }

    /// The configuration.
    pub fn config(&self) -> &PqConfig {
        &self.cfg
    }

    /// The estimator (classic readings, half-cycle extremes, calibration).
    pub fn estimator(&self) -> &Estimator<S> {
        &self.est
    }

    /// Starts the estimator's half-cycle RMS minimum and maximum over (`getQuality`); nothing else
    /// of the pipeline uses them.
    pub fn reset_half_cycle_extremes(&mut self) {
        self.est.reset_half_cycle_extremes();
    }

    /// Sets the calibration of the estimator and of the PQ values (gains, front end, offsets).
    pub fn set_calibration(&mut self, calibration: Calibration) {
        self.est.set_calibration(calibration);
        self.set_flicker_scale();
    }

    /// [`FlickerDecimator::scale`] from the calibration.
    fn set_flicker_scale(&mut self) {
        let k = self.fdec.factor as f32;
        let cal = self.est.calibration();
        // codes: the front end's volts per code; f32 input: the sums are volts
        let base = if S::UNIT.is_some() {
            1.0
        } else {
            cal.front_end().volts_per_code
        };
        for (p, s) in self.fdec.scale.iter_mut().enumerate() {
            let g = cal.phases().get(p).map_or(1.0, |c| c.voltage_gain);
            *s = (base * f64::from(g)) as f32 / k;
        }
    }

    /// The nominal values in force; `None` while they are being detected.
    pub fn nominal(&self) -> Option<NominalValues> {
        self.nominal.decided
    }

    /// The last completed record of `interval`.
    pub fn last(&self, interval: Interval) -> Option<&PqRecord> {
        self.last.get(interval.index()).and_then(Option::as_ref)
    }

    /// The oldest ended event not yet polled (16 are kept; older ones are counted in
    /// [`events_dropped`](Self::events_dropped)).
    pub fn poll_event(&mut self) -> Option<VoltageEvent> {
        self.events.pop_front()
    }

    /// Events lost because nobody polled them.
    pub fn events_dropped(&self) -> u32 {
        self.events_dropped
    }

    /// The last IEC 10-s frequency, Hz.
    pub fn frequency_10s_hz(&self) -> Option<f32> {
        self.hooks.f10.value
    }

    /// The flickermeter.
    pub fn flicker(&self) -> &F {
        &self.flicker
    }

    /// The flickermeter, mutable.
    pub fn flicker_mut(&mut self) -> &mut F {
        &mut self.flicker
    }

    /// Rate of the voltage samples pushed to the [`FlickerSink`], Hz (the input rate divided by
    /// [`flicker_decimation`](Self::flicker_decimation)).
    pub fn flicker_rate_hz(&self) -> u32 {
        self.cfg.rate_hz / self.fdec.factor
    }

    /// Input frames per flicker sample.
    pub fn flicker_decimation(&self) -> u32 {
        self.fdec.factor
    }

    /// Profiling aid of the QEMU cost vectors: bit 0 skips the per-window spectrum, bit 1 the
    /// half-cycle events, bit 2 the whole lattice. Results are wrong while set.
    #[doc(hidden)]
    pub fn set_profile_mask(&mut self, m: u8) {
        self.profile_mask = m;
    }

    /// Bytes of the pipeline's own state (estimator included, heap tables excluded).
    pub const fn state_size_bytes() -> usize {
        core::mem::size_of::<Self>()
    }

    /// Bytes allocated at construction (frame history, the lattice's folds, the last records, and
    /// the interpolation table below 24 kHz).
    pub fn heap_bytes(&self) -> usize {
        self.frames.data.capacity() * core::mem::size_of::<[S; 6]>()
            + lattice::Accumulator::heap_bytes(&*self.lat.folds)
            + core::mem::size_of_val::<[Option<PqRecord>]>(&self.last)
            + core::mem::size_of::<sync::Early>()
            + self.kernel.heap_bytes()
            + self.conv.capacity() * core::mem::size_of::<[S; 6]>()
            + self.expand.capacity() * core::mem::size_of::<[S; 6]>()
    }

    /// Feeds interleaved samples in the configured layout (a block may end inside a frame);
    /// `t_first_us` is the wall-clock time of the block's first sample, µs since the Unix epoch.
    /// Completed outputs go to `sink` and are kept for [`last`](Self::last) /
    /// [`poll_event`](Self::poll_event).
    pub fn feed(&mut self, samples: &[S], t_first_us: i64, sink: &mut impl PqSink) {
        self.hooks.clock = FrameClock {
            frame: self.frames_in,
            us: t_first_us,
            rate: f64::from(self.cfg.rate_hz),
        };
        let ch = self.cfg.layout.channels();
        let mut rest = samples;
        // complete a frame split by the previous block
        while self.partial_len > 0 {
            let Some((x, tail)) = rest.split_first() else {
                return;
            };
            if let Some(slot) = self.partial.get_mut(self.partial_len) {
                *slot = *x;
            }
            self.partial_len += 1;
            rest = tail;
            if self.partial_len == ch {
                self.partial_len = 0;
                let p = self.partial;
                if let Some(f) = p.get(..ch) {
                    self.process(f, sink);
                }
            }
        }
        let whole = rest.len() / ch * ch;
        let (frames, tail) = rest.split_at(whole);
        for piece in frames.chunks(self.piece * ch) {
            self.process(piece, sink);
        }
        for x in tail {
            if let Some(slot) = self.partial.get_mut(self.partial_len) {
                *slot = *x;
                self.partial_len += 1;
            }
        }
    }

    /// Whole frames, at most one piece.
    fn process(&mut self, samples: &[S], sink: &mut impl PqSink) {
        let ch = self.cfg.layout.channels();
        let n = samples.len() / ch;
        self.hooks.pass_windows = true;
        // 1. the estimator: windows, crossings, window openings of the whole piece
        if self.cfg.layout == Layout::ThreePhaseVoltage {
            self.expand.clear();
            let z = S::default();
            for s in samples.chunks_exact(3).take(self.expand.capacity()) {
                if let [a, b, c] = *s {
                    self.expand.push([a, z, b, z, c, z]);
                }
            }
            self.est
                .feed_observed(self.expand.as_flattened(), &mut self.hooks);
        } else {
            self.est.feed_observed(samples, &mut self.hooks);
        }
        while let Some(w) = self.hooks.sink_windows.pop_front() {
            sink.window(&w);
        }
        // 2. the piece as six-channel frames: in place for the six-channel layout
        let mut conv = core::mem::take(&mut self.conv);
        let cur: &[[S; 6]] = if self.cfg.layout == Layout::ThreePhase {
            samples.as_chunks::<6>().0
        } else {
            conv.clear();
            let z = S::default();
            for s in samples.chunks_exact(ch).take(conv.capacity()) {
                conv.push(match *s {
                    [a, c, e] => [a, z, c, z, e, z],
                    [a, b] => [a, b, z, z, z, z],
                    _ => [z; 6],
                });
            }
            &conv
        };
        // 3. the flicker decimation (block sums of the voltages)
        self.flicker_decimate(cur);
        self.frames_in += n as u64;
        // 4. the lattice over history + piece, then keep what it still needs
        self.run_lattice(cur, sink);
        let keep = self
            .lat
            .frame
            .saturating_sub(self.kernel.taps() as u64 / 2 + 1);
        self.frames.retain(keep, cur);
        self.conv = conv;
    }

    /// Block sums of the voltages, one flicker sample per `fdec.factor` frames.
    fn flicker_decimate(&mut self, cur: &[[S; 6]]) {
        let fk = self.fdec.factor as usize;
        let mut rest = cur;
        let mut fsum = self.fdec.sums;
        while !rest.is_empty() {
            let take = (fk - self.fdec.count as usize).min(rest.len());
            let (now, later) = rest.split_at(take);
            for f in now {
                fsum[0] += f[0].flicker_term();
                fsum[1] += f[2].flicker_term();
                fsum[2] += f[4].flicker_term();
            }
            rest = later;
            self.fdec.count += take as u32;
            if self.fdec.count as usize == fk {
                self.fdec.count = 0;
                self.flicker_out(&fsum);
                fsum = Default::default();
            }
        }
        self.fdec.sums = fsum;
    }

    fn flicker_out(&mut self, sums: &[S::FlickerSum; 3]) {
        let nph = self.cfg.layout.phases();
        for (p, (s, k)) in sums.iter().zip(self.fdec.scale).enumerate().take(nph) {
            self.flicker.push(p, S::flicker_f32(*s) * k);
        }
    }

    /// Physical volts per lattice input unit of phase `p`'s voltage, calibration gain included.
    fn volts_per_unit(&self, p: usize) -> f64 {
        let cal = self.est.calibration();
        let base = S::UNIT.map_or(cal.front_end().volts_per_code, |u| u.0);
        let g = cal.phases().get(p).map_or(1.0, |c| c.voltage_gain);
        base * f64::from(g)
    }

    fn amps_per_unit(&self, p: usize) -> f64 {
        let cal = self.est.calibration();
        let base = S::UNIT.map_or(cal.front_end().amps_per_code, |u| u.1);
        let g = cal.phases().get(p).map_or(1.0, |c| c.current_gain);
        base * f64::from(g)
    }
}
