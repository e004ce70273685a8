//! Power quality (IEC 61000-4-30 Ed.3 methods, Class A as the goal): the pipeline of PROTOCOL.md §11.
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
//!   interruptions, RVC; see [`EventKind`]);
//! * the **IEC 10-s frequency** (whole L1 cycles in each 10-s clock interval ÷ their duration);
//! * **aggregation**: 150/180 cycles, 10 min aligned to the UTC clock, 2 h (see [`Interval`]);
//! * **nominal values**: fixed, or detected from the first second with a voltage;
//! * the **flicker hook**: the voltages, decimated with integer block sums, go to a
//!   [`FlickerSink`] (see its docs for the rate), which returns Pst at each 10-min tick; the
//!   IEC 61000-4-15 flickermeter itself is [`flicker`].
//!
//! # How the spectrum is made cheap enough for an FPU-less core
//! Each channel is resampled onto a lattice of 128 points per line cycle that is phase-locked to the
//! estimator's crossings ([`lattice`]); a window of `C` cycles then has `C·128` points and its
//! DFT bins `C·h` and `C·h ± 1` follow from two 128-point FFTs of sums folded over the cycles
//! ([`spectrum`]). Per input sample there is no work but copying it; per lattice point (6,400/s
//! at 50 Hz) one 6-tap interpolation, one add and two `mulh` per channel; per window nine
//! fixed-point 128-point FFTs. Urms(½) is the RMS of the last 128 lattice points of a voltage, so
//! it spans exactly one (predicted) period even while the crossing detector settles after a step.
//!
//! # Units and time
//! Samples are `f32` volts/amps or `i32` ADC codes scaled by the calibration's
//! [`FrontEnd`](crate::calibration::FrontEnd) (like the estimator). Wall-clock times are
//! microseconds since the Unix epoch, given with each block for its first sample; durations come
//! from the sample count and the rate (the ADC clock is the time base), timestamps from the last
//! block's wall clock. Outputs carry Unix seconds (`f64`), volts, amps, hertz and percent.
//!
//! # Determinism and memory
//! All per-sample and per-point work is integer; per-window work is `f32`/`f64` with IEEE
//! operations only (no platform `sin`; tables are built at compile time), so the same samples give
//! the same results on a host and on the device. Nothing is allocated after [`Pq::new`]; the state
//! size is [`Pq::state_size_bytes`] plus [`Pq::heap_bytes`].

mod aggregate;
pub mod events;
pub mod flicker;
mod lattice;
mod spectrum;
pub(crate) mod tables;

pub use events::EventKind;
pub use spectrum::HARMONICS;

use crate::calibration::Calibration;
use crate::dsp::estimator::{
    ConfigError, Estimator, EstimatorConfig, Observer, PhaseMode, Sample, Window,
};
use aggregate::Acc;
use alloc::vec::Vec;
use lattice::{Frames, Kernel, Lattice, Source, Stop};
#[allow(unused_imports)] // inherent float methods shadow it with `std`
use num_traits::Float;
use spectrum::{C32, Channel};
use tables::M;

/// Below this fundamental, a voltage THD is undefined, volts.
pub(crate) const MIN_FUNDAMENTAL_V: f32 = 1.0;
/// Below this fundamental, a current THD is undefined, amps.
pub(crate) const MIN_FUNDAMENTAL_A: f32 = 1e-3;
/// Crossings after (re)synchronisation that the 10-s frequency ignores (detector settling).
const F10_SETTLE: u32 = 5;
/// Synchronised windows after (re)synchronisation before basic intervals are reported.
const WARMUP_WINDOWS: u32 = 2;
/// Declared voltages auto-detection chooses from (PROTOCOL.md §11), volts.
pub const DECLARED_VOLTAGES_V: [f32; 11] = [
    100.0, 110.0, 115.0, 120.0, 127.0, 200.0, 208.0, 220.0, 230.0, 240.0, 277.0,
];
/// Units per volt and per amp of `f32` input on the integer lattice (±2048 V, ±512 A in 24 bits).
const F32_UNITS_PER_V: f32 = 4096.0;
const F32_UNITS_PER_A: f32 = 16384.0;
const UNIT_LIMIT: i32 = 8_388_607;

/// Channel layout of the interleaved input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Layout {
    /// `v_l1,i_l1,v_l2,i_l2,v_l3,i_l3` (the device, the 6-channel recordings).
    #[default]
    ThreePhase,
    /// `v_l1,v_l2,v_l3` (voltage-only recordings): no current harmonics.
    ThreePhaseVoltage,
    /// `v,i` of one phase: results in phase 0, no unbalance.
    SinglePhase,
}

impl Layout {
    /// Samples per frame.
    pub const fn channels(self) -> usize {
        match self {
            Self::ThreePhase => 6,
            Self::ThreePhaseVoltage => 3,
            Self::SinglePhase => 2,
        }
    }
    const fn phases(self) -> usize {
        match self {
            Self::SinglePhase => 1,
            _ => 3,
        }
    }
    const fn currents(self) -> bool {
        !matches!(self, Self::ThreePhaseVoltage)
    }
}

/// Pipeline settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PqConfig {
    /// Sample rate, Hz, `1000..=32000`.
    pub rate_hz: u32,
    /// Input layout.
    pub layout: Layout,
    /// Declared supply voltage Udin, volts (`50..=1000`); `None` = detected from the first second.
    pub nominal_voltage_v: Option<f32>,
    /// Nominal frequency, 50 or 60 Hz; `None` = detected from the first second.
    pub nominal_frequency_hz: Option<u32>,
}

impl PqConfig {
    /// Auto nominal values, three-phase V+I.
    pub fn new(rate_hz: u32) -> Self {
        Self {
            rate_hz,
            layout: Layout::ThreePhase,
            nominal_voltage_v: None,
            nominal_frequency_hz: None,
        }
    }
}

/// An invalid [`PqConfig`].
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PqError {
    /// The estimator rejected the rate (or the nominal frequency).
    #[error(transparent)]
    Estimator(#[from] ConfigError),
    /// `nominal_voltage_v` outside `50..=1000`.
    #[error("Invalid nominal_voltage_v: {0} (expected 50..=1000 or auto)")]
    NominalVoltage(f32),
}

/// Aggregation interval of a [`PqRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Interval {
    /// One basic interval, 10/12 cycles (`"200ms"`).
    Basic,
    /// 150/180 cycles (`"3s"`), re-synchronised on every 10-min tick.
    ThreeSecond,
    /// 10 min aligned to the clock (`"10min"`).
    TenMinute,
    /// 2 h = 12 × 10 min, aligned to even hours of the clock (`"2h"`).
    TwoHour,
}

impl Interval {
    /// The protocol's name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Basic => "200ms",
            Self::ThreeSecond => "3s",
            Self::TenMinute => "10min",
            Self::TwoHour => "2h",
        }
    }
    const fn index(self) -> usize {
        match self {
            Self::Basic => 0,
            Self::ThreeSecond => 1,
            Self::TenMinute => 2,
            Self::TwoHour => 3,
        }
    }
}

/// The nominal values in force.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Nominal {
    /// Declared voltage Udin, volts.
    pub voltage_v: f32,
    /// Nominal frequency, Hz.
    pub frequency_hz: u32,
    /// Udin was detected, not configured.
    pub voltage_auto: bool,
    /// The frequency was detected, not configured.
    pub frequency_auto: bool,
}

/// One completed interval: a basic interval or an aggregate (PROTOCOL.md §11 `getPQ`; the JSON
/// shape lives in the wire layer).
#[derive(Debug, Clone, PartialEq)]
pub struct PqRecord {
    /// Which interval.
    pub interval: Interval,
    /// Start of the first basic interval, Unix seconds.
    pub start_unix_s: f64,
    /// End of the last basic interval, Unix seconds.
    pub end_unix_s: f64,
    /// A dip, swell or interruption was in progress during the interval.
    pub flagged: bool,
    /// Every basic interval was bounded by L1 crossings (false while there is no voltage).
    pub synchronised: bool,
    /// Basic intervals aggregated (1 for a basic interval).
    pub windows: u32,
    /// Nominal values in force.
    pub nominal: Nominal,
    /// RMS voltage per phase (RMS of the basic values), volts.
    pub voltage_v: [f32; 3],
    /// Smallest basic value per phase, volts.
    pub voltage_min_v: [f32; 3],
    /// Largest basic value per phase, volts.
    pub voltage_max_v: [f32; 3],
    /// The last IEC 10-s frequency, Hz; `None` before the first.
    pub frequency_hz: Option<f32>,
    /// Zero-sequence unbalance `|U₀|/|U₁|`, percent; `None` without three voltages.
    pub u0_pct: Option<f32>,
    /// Negative-sequence unbalance `|U₂|/|U₁|`, percent.
    pub u2_pct: Option<f32>,
    /// THD of the voltages over subgroups 2..=50, percent; `None` without a fundamental.
    pub thd_v_pct: [Option<f32>; 3],
    /// THD of the currents, percent.
    pub thd_i_pct: [Option<f32>; 3],
    /// Harmonic subgroups H1..H50 of the voltages (index 0 = H1), volts RMS.
    pub harmonics_v: [[f32; HARMONICS]; 3],
    /// Harmonic subgroups of the currents, amps RMS.
    pub harmonics_i_a: [[f32; HARMONICS]; 3],
    /// Short-term flicker severity (10-min records, when a [`FlickerSink`] provides it).
    pub pst: [Option<f32>; 3],
    /// Long-term flicker severity (2-h records, from twelve Pst).
    pub plt: [Option<f32>; 3],
    /// Counter of records of this interval, from 0.
    pub sequence: u64,
}

impl PqRecord {
    fn empty(nominal: Nominal) -> Self {
        Self {
            interval: Interval::Basic,
            start_unix_s: 0.0,
            end_unix_s: 0.0,
            flagged: false,
            synchronised: false,
            windows: 1,
            nominal,
            voltage_v: [0.0; 3],
            voltage_min_v: [0.0; 3],
            voltage_max_v: [0.0; 3],
            frequency_hz: None,
            u0_pct: None,
            u2_pct: None,
            thd_v_pct: [None; 3],
            thd_i_pct: [None; 3],
            harmonics_v: [[0.0; HARMONICS]; 3],
            harmonics_i_a: [[0.0; HARMONICS]; 3],
            pst: [None; 3],
            plt: [None; 3],
            sequence: 0,
        }
    }
}

/// THD over subgroups 2..=50 in percent of H1, per phase; `None` when H1 < `min`.
pub(crate) fn thd_pct(h: &[[f32; HARMONICS]; 3], min: f32) -> [Option<f32>; 3] {
    (*h).map(|row| {
        let h1 = row.first().copied().unwrap_or(0.0);
        let rest: f32 = row.iter().skip(1).map(|x| x * x).sum();
        (h1 >= min).then(|| 100.0 * rest.sqrt() / h1)
    })
}

/// An ended voltage event (PROTOCOL.md §11 `getEvents`; the device numbers them).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PqEvent {
    /// Dip, swell, interruption or RVC.
    pub kind: EventKind,
    /// Phases involved (`[true, false, true]` = L1 and L3).
    pub phases: [bool; 3],
    /// Start, Unix seconds.
    pub start_unix_s: f64,
    /// Duration, seconds.
    pub duration_s: f64,
    /// Lowest (dip, interruption) or highest (swell) Urms(½); for an RVC the Urms(½) of the
    /// largest deviation, volts.
    pub extreme_v: f32,
    /// Udin at the time, volts.
    pub reference_v: f32,
    /// RVC only: largest |Urms(½) − mean before|, volts.
    pub delta_max_v: Option<f32>,
    /// RVC only: |mean after − mean before|, volts.
    pub delta_steady_v: Option<f32>,
}

/// Receives the pipeline's outputs as they complete (all methods optional).
pub trait PqSink {
    /// A classic estimator window (energy, getPower…), in order.
    fn window(&mut self, _window: &Window) {}
    /// A completed basic interval.
    fn basic(&mut self, _record: &PqRecord) {}
    /// A completed 3-s, 10-min or 2-h aggregate.
    fn aggregate(&mut self, _record: &PqRecord) {}
    /// An ended event.
    fn event(&mut self, _event: &PqEvent) {}
}

impl PqSink for () {}

/// Where the flickermeter plugs in: the pipeline pushes each phase's voltage decimated to
/// [`Pq::flicker_rate_hz`] (block means of whole input frames: integer sums, one `f32` per output
/// sample) and asks for Pst at every 10-min clock tick. IEC 61000-4-15 needs nothing above
/// ~100 Hz of the input beyond the carrier, so the rate is chosen in 800..=1600 Hz where the input
/// rate allows.
pub trait FlickerSink {
    /// One voltage sample of `phase` (0..3), volts, at [`Pq::flicker_rate_hz`].
    fn push(&mut self, phase: usize, voltage_v: f32);
    /// The Pst of the 10-min interval that just ended for `phase`, and start the next one.
    fn take_pst(&mut self, _phase: usize) -> Option<f32> {
        None
    }
    /// The nominal values were decided (or changed): the lamp model follows Udin (230 V model for
    /// Udin ≥ 200 V, 120 V model below), the filters the frequency.
    fn set_nominal(&mut self, _nominal: &Nominal) {}
}

/// No flickermeter: Pst/Plt stay `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFlicker;

impl FlickerSink for NoFlicker {
    fn push(&mut self, _phase: usize, _voltage_v: f32) {}
}

/// The IEC 61000-4-15 flickermeter ([`flicker`]) behind the [`FlickerSink`] hook: one
/// [`Flickermeter`](flicker::Flickermeter) and one [`PstClassifier`](flicker::PstClassifier) per
/// phase, (re)built with the lamp model and filters of the nominal values when they are decided.
/// Use it as `Pq::with_flicker(config, PqFlicker::new(config.rate_hz))`.
#[derive(Debug, Clone)]
pub struct PqFlicker {
    config: flicker::FlickerConfig,
    /// Built at construction (the classifiers' counts are allocated once, here); the meters are
    /// replaced when the nominal values are decided, which allocates nothing.
    phases: [(flicker::Flickermeter, flicker::PstClassifier); 3],
    /// The nominal values are known: before that nothing is pushed.
    ready: bool,
}

impl PqFlicker {
    /// A hook for a pipeline at `rate_hz` (it is fed at [`Pq::flicker_rate_hz`] of that rate).
    /// `None` when the flickermeter rejects that rate.
    pub fn new(rate_hz: u32) -> Option<Self> {
        let config = flicker::FlickerConfig {
            input_rate_hz: rate_hz / flicker_decimation(rate_hz),
            nominal_hz: 50,
            lamp: flicker::Lamp::V230,
        };
        let meter = flicker::Flickermeter::new(config).ok()?;
        Some(Self {
            config,
            phases: core::array::from_fn(|_| (meter.clone(), flicker::PstClassifier::new())),
            ready: false,
        })
    }

    /// The meter of `phase` (0..3).
    pub fn meter(&self, phase: usize) -> Option<&flicker::Flickermeter> {
        self.phases.get(phase).map(|(m, _)| m)
    }
}

impl FlickerSink for PqFlicker {
    #[inline]
    fn push(&mut self, phase: usize, voltage_v: f32) {
        if !self.ready {
            return;
        }
        if let Some((m, c)) = self.phases.get_mut(phase) {
            m.push(voltage_v);
            if let Some(p) = m.take_classifier_sample() {
                c.add(p);
            }
        }
    }

    fn take_pst(&mut self, phase: usize) -> Option<f32> {
        let (_, c) = self.phases.get_mut(phase)?;
        let pst = c.pst();
        c.reset();
        pst
    }

    fn set_nominal(&mut self, nominal: &Nominal) {
        let cfg = flicker::FlickerConfig {
            nominal_hz: nominal.frequency_hz,
            lamp: flicker::Lamp::for_nominal_voltage(nominal.voltage_v),
            ..self.config
        };
        if let Ok(meter) = flicker::Flickermeter::new(cfg) {
            for (m, c) in &mut self.phases {
                *m = meter.clone();
                c.reset();
            }
            self.config = cfg;
            self.ready = true;
        }
    }
}

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

/// Wall clock of the frames: the last block's timestamp, extrapolated with the sample rate.
#[derive(Debug, Clone, Copy)]
struct Clock {
    frame: u64,
    us: i64,
    rate: f64,
}

impl Clock {
    fn us_at(&self, frame: f64) -> f64 {
        self.us as f64 + (frame - self.frame as f64) * 1e6 / self.rate
    }
    fn frame_at(&self, us: f64) -> f64 {
        self.frame as f64 + (us - self.us as f64) * self.rate / 1e6
    }
    /// The first multiple of `period_us` strictly after the time of `frame`, as a frame.
    fn next_tick(&self, frame: f64, period_us: i64) -> f64 {
        let t = self.us_at(frame) as i64;
        let k = t.div_euclid(period_us) + 1;
        self.frame_at((k * period_us) as f64)
    }
}

/// An estimator window as the pairing needs it.
#[derive(Debug, Clone, Copy)]
struct EstWin {
    start: f64,
    end: f64,
    synchronised: bool,
    cycles: u32,
    vrms_v: [f32; 3],
}

/// A window opened by the estimator: where, how many cycles, the period then.
#[derive(Debug, Clone, Copy)]
struct Opened {
    start: f64,
    cycles: u32,
    period: f64,
}

/// The IEC 10-s frequency over clock intervals.
#[derive(Debug, Clone, Copy, Default)]
struct Freq10 {
    start: f64,
    end: Option<f64>,
    cycles: u32,
    span: f64,
    last: Option<f64>,
    value: Option<f32>,
    /// Consecutive crossings since synchronisation was (re)acquired.
    run: u32,
}

/// The part of the pipeline the estimator calls into.
#[derive(Debug, Clone)]
struct Hooks {
    clock: Clock,
    windows: heapless::Deque<EstWin, 8>,
    opened: heapless::Deque<Opened, 8>,
    f10: Freq10,
    cycles_per_window: u32,
    sink_windows: heapless::Deque<Window, 8>,
    pass_windows: bool,
}

impl Observer for Hooks {
    fn window(&mut self, w: &Window) {
        let e = EstWin {
            start: w.start_sample,
            end: w.end_sample,
            synchronised: w.synchronised,
            cycles: w.cycles,
            vrms_v: w.phases.map(|m| m.vrms_v),
        };
        if self.windows.is_full() {
            self.windows.pop_front();
        }
        let _ = self.windows.push_back(e);
        if self.pass_windows {
            if self.sink_windows.is_full() {
                self.sink_windows.pop_front();
            }
            let _ = self.sink_windows.push_back(*w);
        }
    }

    fn rising_crossing(&mut self, frame: f64, consecutive: bool) {
        let rate = self.clock.rate;
        let f = &mut self.f10;
        let end = *f
            .end
            .get_or_insert_with(|| self.clock.next_tick(frame, 10_000_000));
        if frame >= end {
            f.value = (f.cycles > 0 && f.span > 0.0)
                .then(|| (f64::from(f.cycles) * rate / f.span) as f32);
            f.start = end;
            f.end = Some(self.clock.next_tick(frame, 10_000_000));
            f.cycles = 0;
            f.span = 0.0;
        }
        f.run = if consecutive {
            f.run.saturating_add(1)
        } else {
            0
        };
        // the detector's filters settle over the first cycles after (re)synchronisation
        if let Some(last) = f.last
            && f.run > F10_SETTLE
            && last >= f.start
        {
            f.cycles += 1;
            f.span += frame - last;
        }
        f.last = Some(frame);
    }

    fn next_window_cycles(&mut self, start: f64, period: f64) -> Option<u32> {
        let c = self.cycles_per_window;
        let tick = self.clock.next_tick(start, 600_000_000);
        let ahead = tick - start;
        let k = if period > 0.0 && ahead < f64::from(c) * period {
            ((ahead / period).ceil() as u32).clamp(1, c)
        } else {
            c
        };
        if self.opened.is_full() {
            self.opened.pop_front();
        }
        let _ = self.opened.push_back(Opened {
            start,
            cycles: k,
            period,
        });
        Some(k)
    }
}

/// Nominal values: decided, or being measured over the first second.
#[derive(Debug, Clone, Copy)]
struct NominalState {
    decided: Option<Nominal>,
    auto_v: bool,
    auto_f: bool,
    fixed_v: f32,
    fixed_f: u32,
    // first-second measurement
    seconds: f64,
    cycles: f64,
    sync_seconds: f64,
    v_sum: f64,
    v_n: u32,
}

/// A lattice window's spectrum waiting for its estimator window.
#[derive(Debug, Clone)]
struct Spectrum {
    start: f64,
    tolerance: f64,
    flagged: bool,
    v: [Channel; 3],
    i: [Channel; 3],
    cycles: u32,
}

/// Block-sum decimator of the voltages for the flickermeter.
#[derive(Debug, Clone, Copy)]
struct FlickerDecimator {
    factor: u32,
    count: u32,
    sums: [i32; 3],
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
/// # Ok::<(), smartmeter::dsp::pq::PqError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Pq<S: PqSample = f32, F: FlickerSink = NoFlicker> {
    cfg: PqConfig,
    est: Estimator<S>,
    hooks: Hooks,
    kernel: Kernel,
    frames: Frames,
    lat: Lattice,
    scratch: [C32; M],
    spectrum: Option<Spectrum>,
    nominal: NominalState,
    detector: Option<events::Detector>,
    acc3s: Acc,
    acc10: Acc,
    acc10_aligned: bool,
    acc2h: Acc,
    acc2h_slot: Option<i64>,
    tick10_us: Option<i64>,
    last: [Option<PqRecord>; 4],
    sequence: [u64; 4],
    events: heapless::Deque<PqEvent, 16>,
    events_dropped: u32,
    flicker: F,
    fdec: FlickerDecimator,
    partial: [S; 6],
    partial_len: usize,
    frames_in: u64,
    warmup: u32,
    /// Frames per processing piece (50 ms).
    piece: usize,
    /// Conversion buffer for inputs that are not six-channel codes (allocated at construction,
    /// empty for the device's layout).
    conv: Vec<[i32; 6]>,
    /// Six-channel expansion of voltage-only input for the estimator.
    expand: Vec<[S; 6]>,
    profile_mask: u8,
}

impl<S: PqSample> Pq<S, NoFlicker> {
    /// A pipeline without a flickermeter.
    pub fn new(config: PqConfig) -> Result<Self, PqError> {
        Self::with_flicker(config, NoFlicker)
    }
}

impl<S: PqSample, F: FlickerSink> Pq<S, F> {
    /// A pipeline that feeds `flicker` (see [`FlickerSink`]).
    pub fn with_flicker(config: PqConfig, flicker: F) -> Result<Self, PqError> {
        if let Some(v) = config.nominal_voltage_v
            && !(v.is_finite() && (50.0..=1000.0).contains(&v))
        {
            return Err(PqError::NominalVoltage(v));
        }
        let f0 = config.nominal_frequency_hz.unwrap_or(50);
        let mut ec = EstimatorConfig::new(config.rate_hz, f0);
        if config.layout == Layout::SinglePhase {
            ec.phases = PhaseMode::Single;
        }
        let est = Estimator::<S>::new(ec)?;
        let rate = f64::from(config.rate_hz);
        let kernel = Kernel::for_rate(config.rate_hz);
        let k = kernel.taps();
        // input slice + taps + what the lattice may wait for at a window start (0.1 cycle at
        // 42.5 Hz) + two estimator blocks
        let piece = (config.rate_hz as usize / 20).max(1);
        let cap = k + (0.1 * rate / 42.5).ceil() as usize + 2 * est.decimation() + 16;
        let direct =
            S::as_units(&[S::default(); 6]).is_some() && config.layout == Layout::ThreePhase;
        let conv = if direct {
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
            clock: Clock {
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
            v_sum: 0.0,
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
            scratch: [(0, 0); M],
            spectrum: None,
            nominal,
            detector: None,
            acc3s: Acc::default(),
            acc10: Acc::default(),
            acc10_aligned: false,
            acc2h: Acc::default(),
            acc2h_slot: None,
            tick10_us: None,
            last: [None, None, None, None],
            sequence: [0; 4],
            events: heapless::Deque::new(),
            events_dropped: 0,
            flicker,
            fdec: FlickerDecimator {
                factor,
                count: 0,
                sums: [0; 3],
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

    /// Sets the calibration of the estimator and of the PQ values (gains, front end, offsets).
    pub fn set_calibration(&mut self, calibration: Calibration) {
        self.est.set_calibration(calibration);
    }

    /// The nominal values in force; `None` while they are being detected.
    pub fn nominal(&self) -> Option<Nominal> {
        self.nominal.decided
    }

    /// The last completed record of `interval`.
    pub fn last(&self, interval: Interval) -> Option<&PqRecord> {
        self.last.get(interval.index()).and_then(Option::as_ref)
    }

    /// The oldest ended event not yet polled (16 are kept; older ones are counted in
    /// [`events_dropped`](Self::events_dropped)).
    pub fn poll_event(&mut self) -> Option<PqEvent> {
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

    /// Bytes allocated at construction (frame history, and the interpolation table below 24 kHz).
    pub fn heap_bytes(&self) -> usize {
        self.frames.data.capacity() * core::mem::size_of::<[i32; 6]>()
            + self.kernel.heap_bytes()
            + self.conv.capacity() * core::mem::size_of::<[i32; 6]>()
            + self.expand.capacity() * core::mem::size_of::<[S; 6]>()
    }

    /// Feeds interleaved samples in the configured layout (a block may end inside a frame);
    /// `t_first_us` is the wall-clock time of the block's first sample, µs since the Unix epoch.
    /// Completed outputs go to `sink` and are kept for [`last`](Self::last) /
    /// [`poll_event`](Self::poll_event).
    pub fn feed(&mut self, samples: &[S], t_first_us: i64, sink: &mut impl PqSink) {
        self.hooks.clock = Clock {
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
        // 2. the piece in lattice units: in place for six-channel codes, else converted
        let direct = if self.cfg.layout == Layout::ThreePhase {
            S::as_units(samples)
        } else {
            None
        };
        let mut conv = core::mem::take(&mut self.conv);
        let cur: &[[i32; 6]] = match direct {
            Some(c) => c,
            None => {
                conv.clear();
                for s in samples.chunks_exact(ch).take(conv.capacity()) {
                    conv.push(match (self.cfg.layout, s) {
                        (Layout::ThreePhase, [a, b, c, e, g, h]) => [
                            a.units(false),
                            b.units(true),
                            c.units(false),
                            e.units(true),
                            g.units(false),
                            h.units(true),
                        ],
                        (Layout::ThreePhaseVoltage, [a, c, e]) => {
                            [a.units(false), 0, c.units(false), 0, e.units(false), 0]
                        }
                        (Layout::SinglePhase, [a, b]) => {
                            [a.units(false), b.units(true), 0, 0, 0, 0]
                        }
                        _ => [0; 6],
                    });
                }
                &conv
            }
        };
        // 3. the flicker decimation (integer block sums of the voltages)
        let mut fsum = self.fdec.sums;
        let mut fcount = self.fdec.count;
        let fk = self.fdec.factor;
        for f in cur {
            fsum[0] = fsum[0].wrapping_add(f[0]);
            fsum[1] = fsum[1].wrapping_add(f[2]);
            fsum[2] = fsum[2].wrapping_add(f[4]);
            fcount += 1;
            if fcount == fk {
                fcount = 0;
                self.flicker_out(&fsum);
                fsum = [0; 3];
            }
        }
        self.fdec.sums = fsum;
        self.fdec.count = fcount;
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

    fn flicker_out(&mut self, sums: &[i32; 3]) {
        let nph = self.cfg.layout.phases();
        let k = self.fdec.factor as f32;
        for (p, s) in sums.iter().enumerate().take(nph) {
            let scale = self.volts_per_unit(p) as f32;
            self.flicker.push(p, *s as f32 * (scale / k));
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

    /// Advances the lattice as far as the input allows.
    fn run_lattice(&mut self, cur: &[[i32; 6]], sink: &mut impl PqSink) {
        if self.profile_mask & 4 != 0 {
            return;
        }
        let nv = self.cfg.layout.phases();
        loop {
            let data_end = self.frames.origin + (self.frames.data.len() + cur.len()) as u64;
            if !self.lat.active && !self.start_window(data_end) {
                break;
            }
            // a window the estimator opens ahead ends the lattice's window there (unless only a
            // point or two are missing: it then completes just past the edge)
            let limit = match self.hooks.opened.front() {
                Some(o) if self.lat.total - self.lat.n > 2 => {
                    let f = o.start.max(0.0);
                    let i = f.floor();
                    (i as u64, ((f - i) * 4_294_967_296.0) as u32)
                }
                _ => (u64::MAX, 0),
            };
            let stop = {
                let src = Source {
                    hist: &self.frames.data,
                    hist_origin: self.frames.origin,
                    cur,
                };
                lattice::advance(&mut self.lat, &src, &self.kernel, nv, limit)
            };
            match stop {
                Stop::Input => break,
                Stop::Limit => {
                    // abandon the window (its spectrum would mix two estimator windows); the half
                    // cycle in progress ends here, shorter, so that Urms(½) keeps its cadence
                    self.lat.active = false;
                    if self.lat.half_points > 0 {
                        self.half_cycle(sink);
                        self.lat.half_points = 0;
                    }
                }
                Stop::Half => {
                    if self.profile_mask & 2 == 0 {
                        self.half_cycle(sink);
                    }
                    if self.lat.n >= self.lat.total {
                        self.window_done();
                        self.lat.active = false;
                    }
                }
            }
            self.pair(sink);
        }
        self.pair(sink);
    }

    /// Opens the next lattice window; false to wait for the estimator.
    fn start_window(&mut self, data_end: u64) -> bool {
        let taps = self.kernel.taps() as f64;
        if self.lat.step == 0 {
            // very first window: at the first frame the taps can reach
            self.lat.seek(taps);
        }
        let pos = self.lat.position();
        let horizon = self.est.frames_processed() as f64;
        let tol = 0.1
            * if self.lat.period > 0.0 {
                self.lat.period
            } else {
                f64::from(self.cfg.rate_hz) / 50.0
            };
        // drop reports of windows the lattice has passed
        while let Some(o) = self.hooks.opened.front() {
            if o.start < pos - tol {
                self.hooks.opened.pop_front();
            } else {
                break;
            }
        }
        let period = if self.lat.period > 0.0 {
            self.lat.period
        } else {
            f64::from(self.cfg.rate_hz) / f64::from(self.nominal.fixed_f)
        };
        match self.hooks.opened.front().copied() {
            Some(o) if o.start <= pos + tol => {
                // the estimator opened a window here: adopt it
                self.hooks.opened.pop_front();
                self.lat.seek(o.start);
                self.lat.open(
                    o.start,
                    o.cycles,
                    o.period,
                    o.start + f64::from(o.cycles) * o.period,
                );
                true
            }
            Some(o) => {
                // the next window opens later: fill the gap with whole cycles aimed at it (or
                // jump when it is less than half a cycle away)
                let k = ((o.start - pos) / period).round();
                if k < 1.0 {
                    self.hooks.opened.pop_front();
                    self.lat.seek(o.start);
                    self.lat.open(
                        o.start,
                        o.cycles,
                        o.period,
                        o.start + f64::from(o.cycles) * o.period,
                    );
                } else {
                    let k = k.min(tables::MAX_CYCLES as f64);
                    let end = o.start.min(pos + k * period);
                    self.lat.open(pos, k as u32, period, end);
                }
                true
            }
            None if horizon > pos + tol + self.est.decimation() as f64
                || data_end as f64 > pos + 0.5 * self.frames.capacity() as f64 =>
            {
                // nothing reported near here: the estimator's window is longer than predicted
                // (or it lost synchronisation); go on one cycle at a time
                self.lat.open(pos, 1, period, pos + period);
                true
            }
            None => false,
        }
    }

    /// A half cycle of the lattice ended: Urms(½), events, flags.
    fn half_cycle(&mut self, _sink: &mut impl PqSink) {
        let nv = self.cfg.layout.phases();
        let mut cur = self.lat.half;
        cur.n = if self.lat.half_points > 0 {
            self.lat.half_points
        } else {
            (M / 2) as u32
        };
        self.lat.half = lattice::HalfSums::default();
        let start = self.lat.half_start;
        let now = self.lat.position();
        self.lat.half_start = now;
        let prev = self.lat.prev_half.replace(cur);
        let (Some(prev), Some(det)) = (prev, self.detector.as_mut()) else {
            return;
        };
        let mut urms = [0.0f32; 3];
        let cal = *self.est.calibration();
        for (p, u) in urms.iter_mut().enumerate().take(nv) {
            let s1 =
                (prev.s1.get(p).copied().unwrap_or(0) + cur.s1.get(p).copied().unwrap_or(0)) as f32;
            let s2 =
                (prev.s2.get(p).copied().unwrap_or(0) + cur.s2.get(p).copied().unwrap_or(0)) as f32;
            let base = S::UNIT.map_or(cal.front_end().volts_per_code, |u| u.0) as f32;
            // lattice values are half units
            let k = 2.0 * base;
            let ph = cal.phases().get(p).copied().unwrap_or_default();
            let o = ph.voltage_offset_v;
            let n = (prev.n + cur.n).max(1) as f32;
            let ms = (k * k * s2 - 2.0 * o * k * s1) / n + o * o;
            *u = ph.voltage_gain * ms.max(0.0).sqrt();
        }
        let half_frames = now - start;
        let mut out = heapless::Vec::<events::RawEvent, 4>::new();
        det.push(start, half_frames, &urms, &mut |e| {
            let _ = out.push(e);
        });
        self.lat.flagged |= det.in_progress();
        let nominal_v = self.nominal.decided.map_or(0.0, |n| n.voltage_v);
        for e in out {
            let ev = PqEvent {
                kind: e.kind,
                phases: [0, 1, 2].map(|p| e.phases & (1 << p) != 0),
                start_unix_s: self.hooks.clock.us_at(e.start_frame) * 1e-6,
                duration_s: (e.end_frame - e.start_frame) / f64::from(self.cfg.rate_hz),
                extreme_v: e.extreme_v,
                reference_v: nominal_v,
                delta_max_v: e.delta_max_v,
                delta_steady_v: e.delta_steady_v,
            };
            _sink.event(&ev);
            if self.events.is_full() {
                self.events.pop_front();
                self.events_dropped += 1;
            }
            let _ = self.events.push_back(ev);
        }
    }

    /// The lattice completed a window: its spectrum, waiting for the estimator's window.
    fn window_done(&mut self) {
        if self.profile_mask & 1 != 0 {
            self.spectrum = None;
            return;
        }
        let nph = self.cfg.layout.phases();
        let currents = self.cfg.layout.currents();
        let c = self.lat.cycles as usize;
        let mut v = [Channel::default(); 3];
        let mut i = [Channel::default(); 3];
        for p in 0..nph {
            let (Some(fv), Some(fi)) = (self.lat.folds.get(2 * p), self.lat.folds.get(2 * p + 1))
            else {
                continue;
            };
            let (a, b) = spectrum::phase(fv, currents.then_some(fi), c, &mut self.scratch);
            if let (Some(x), Some(y)) = (v.get_mut(p), i.get_mut(p)) {
                *x = a;
                *y = b;
            }
        }
        self.spectrum = Some(Spectrum {
            start: self.lat.start,
            tolerance: 0.1 * self.lat.period,
            flagged: self.lat.flagged,
            v,
            i,
            cycles: self.lat.cycles,
        });
    }

    /// Pairs estimator windows with lattice spectra into basic intervals.
    fn pair(&mut self, sink: &mut impl PqSink) {
        loop {
            let Some(w) = self.hooks.windows.front().copied() else {
                return;
            };
            let spec = match &self.spectrum {
                Some(s) if (s.start - w.start).abs() <= s.tolerance.max(1.0) => {
                    self.spectrum.take()
                }
                Some(s) if s.start > w.start => None,
                Some(_) => {
                    // a spectrum of a window the estimator never closed
                    self.spectrum = None;
                    continue;
                }
                None => {
                    // the lattice has not finished this window yet (or skipped it)
                    let pos = self.lat.position();
                    if pos < w.end + 0.2 * (w.end - w.start) {
                        return;
                    }
                    None
                }
            };
            self.hooks.windows.pop_front();
            self.basic(&w, spec.as_ref(), sink);
        }
    }

    /// One basic interval.
    fn basic(&mut self, w: &EstWin, spec: Option<&Spectrum>, sink: &mut impl PqSink) {
        let duration_s = (w.end - w.start) / f64::from(self.cfg.rate_hz);
        if self.warmup < WARMUP_WINDOWS {
            // nothing is reported before the detector has settled on the first crossings
            if w.synchronised {
                self.warmup += 1;
            }
            if self.warmup >= WARMUP_WINDOWS
                && let Some(n) = self.nominal.decided
            {
                {
                    self.detector = Some(events::Detector::new(
                        self.cfg.layout.phases(),
                        n.voltage_v,
                        n.frequency_hz,
                    ));
                }
            }
            return;
        }
        let Some(nominal) = self.nominal.decided else {
            self.measure_nominal(w, duration_s);
            return;
        };
        let nph = self.cfg.layout.phases();
        let mut r = PqRecord::empty(nominal);
        r.start_unix_s = self.hooks.clock.us_at(w.start) * 1e-6;
        r.end_unix_s = self.hooks.clock.us_at(w.end) * 1e-6;
        r.synchronised = w.synchronised;
        r.frequency_hz = self.hooks.f10.value;
        for p in 0..nph {
            if let (Some(a), Some(b), Some(c), Some(v)) = (
                r.voltage_v.get_mut(p),
                r.voltage_min_v.get_mut(p),
                r.voltage_max_v.get_mut(p),
                w.vrms_v.get(p),
            ) {
                (*a, *b, *c) = (*v, *v, *v);
            }
        }
        if let Some(s) = spec {
            r.flagged = s.flagged;
            let c = s.cycles.max(1) as f32;
            let mut phasors = [(0.0f32, 0.0f32); 3];
            for p in 0..nph {
                let kv = 2.0 * self.volts_per_unit(p) as f32;
                let ki = 2.0 * self.amps_per_unit(p) as f32;
                // H_rms = √(2G)·(2k)/C for G in (DFT/M)² units of half-units
                let (Some(cv), Some(ci), Some(hv), Some(hi)) = (
                    s.v.get(p),
                    s.i.get(p),
                    r.harmonics_v.get_mut(p),
                    r.harmonics_i_a.get_mut(p),
                ) else {
                    continue;
                };
                let kv2 = 2.0 * (kv / c) * (kv / c);
                let ki2 = 2.0 * (ki / c) * (ki / c);
                for (h, g) in hv.iter_mut().zip(&cv.power) {
                    *h = (g * kv2).sqrt();
                }
                if self.cfg.layout.currents() {
                    for (h, g) in hi.iter_mut().zip(&ci.power) {
                        *h = (g * ki2).sqrt();
                    }
                }
                if let Some(ph) = phasors.get_mut(p) {
                    *ph = (cv.phasor.0 * kv, cv.phasor.1 * kv);
                }
            }
            r.thd_v_pct = thd_pct(&r.harmonics_v, MIN_FUNDAMENTAL_V);
            if self.cfg.layout.currents() {
                r.thd_i_pct = thd_pct(&r.harmonics_i_a, MIN_FUNDAMENTAL_A);
            }
            if nph == 3 {
                (r.u0_pct, r.u2_pct) = unbalance(&phasors);
            }
        } else {
            r.flagged = self
                .detector
                .as_ref()
                .is_some_and(events::Detector::in_progress);
        }
        self.emit(Interval::Basic, r.clone(), sink);
        self.aggregate(r, w, sink);
    }

    fn emit(&mut self, interval: Interval, mut r: PqRecord, sink: &mut impl PqSink) {
        let k = interval.index();
        if let Some(s) = self.sequence.get_mut(k) {
            r.sequence = *s;
            *s += 1;
        }
        r.interval = interval;
        if interval == Interval::Basic {
            sink.basic(&r);
        } else {
            sink.aggregate(&r);
        }
        if let Some(slot) = self.last.get_mut(k) {
            *slot = Some(r);
        }
    }

    /// Adds a basic interval to the 3-s, 10-min (and, at its end, 2-h) aggregations.
    fn aggregate(&mut self, r: PqRecord, w: &EstWin, sink: &mut impl PqSink) {
        let start_us = self.hooks.clock.us_at(w.start);
        let period_us = if w.cycles > 0 {
            (w.end - w.start) / f64::from(w.cycles) * 1e6 / f64::from(self.cfg.rate_hz)
        } else {
            20_000.0
        };
        // the 10-min tick: the window starting at (or within half a cycle before) it opens the
        // next interval
        let tick = *self
            .tick10_us
            .get_or_insert_with(|| ((start_us as i64).div_euclid(600_000_000) + 1) * 600_000_000);
        if start_us >= tick as f64 - 0.5 * period_us {
            if let Some(a) = self.acc3s.take(Interval::ThreeSecond, false) {
                self.emit(Interval::ThreeSecond, a, sink);
            }
            self.close_ten_minutes(tick, sink);
            let next = ((start_us + 0.5 * period_us) as i64).div_euclid(600_000_000) + 1;
            self.tick10_us = Some(next * 600_000_000);
            self.acc10_aligned = (start_us - tick as f64).abs() < 1e6;
        }
        self.acc3s.add(&r);
        self.acc10.add(&r);
        if self.acc3s.count >= 15
            && let Some(a) = self.acc3s.take(Interval::ThreeSecond, false)
        {
            self.emit(Interval::ThreeSecond, a, sink);
        }
    }

    fn close_ten_minutes(&mut self, tick_us: i64, sink: &mut impl PqSink) {
        let nph = self.cfg.layout.phases();
        let mut pst = [None; 3];
        for (p, x) in pst.iter_mut().enumerate().take(nph) {
            *x = self.flicker.take_pst(p);
        }
        self.acc10.set_pst(pst);
        let aligned = self.acc10_aligned;
        let Some(rec) = self.acc10.take(Interval::TenMinute, false) else {
            return;
        };
        // a 10-min interval is complete when it began on a tick and covers (nearly) 600 s
        if !(aligned && rec.end_unix_s - rec.start_unix_s >= 599.0) {
            self.acc2h = Acc::default();
            self.acc2h_slot = None;
            return;
        }
        let slot = (tick_us - 1).div_euclid(7_200_000_000);
        if self.acc2h_slot != Some(slot) {
            self.acc2h = Acc::default();
            self.acc2h_slot = Some(slot);
        }
        self.acc2h.add(&rec);
        self.emit(Interval::TenMinute, rec, sink);
        if tick_us.rem_euclid(7_200_000_000) == 0 {
            let complete = self.acc2h.count == 12;
            if let Some(r) = self.acc2h.take(Interval::TwoHour, true)
                && complete
            {
                self.emit(Interval::TwoHour, r, sink);
            }
            self.acc2h_slot = None;
        }
    }

    /// Measures the first second for auto nominal values.
    fn measure_nominal(&mut self, w: &EstWin, duration_s: f64) {
        let n = &mut self.nominal;
        n.seconds += duration_s;
        if w.synchronised {
            n.cycles += f64::from(w.cycles);
            n.sync_seconds += duration_s;
            n.v_sum += f64::from(w.vrms_v.first().copied().unwrap_or(0.0));
            n.v_n += 1;
        }
        if n.seconds < 1.0 {
            return;
        }
        let v = if n.v_n > 0 {
            n.v_sum / f64::from(n.v_n)
        } else {
            0.0
        };
        if n.sync_seconds >= 0.5 && v >= 40.0 {
            let f = n.cycles / n.sync_seconds;
            let freq = if n.auto_f {
                if f >= 55.0 { 60 } else { 50 }
            } else {
                n.fixed_f
            };
            let volts = if n.auto_v {
                DECLARED_VOLTAGES_V.iter().copied().fold(0.0f32, |best, c| {
                    if (f64::from(c) - v).abs() < (f64::from(best) - v).abs() {
                        c
                    } else {
                        best
                    }
                })
            } else {
                n.fixed_v
            };
            self.decide(volts, freq);
        } else {
            // no voltage this second: try the next one
            *n = NominalState {
                seconds: 0.0,
                cycles: 0.0,
                sync_seconds: 0.0,
                v_sum: 0.0,
                v_n: 0,
                ..*n
            };
        }
    }

    fn decide(&mut self, volts: f32, freq: u32) {
        let nominal = Nominal {
            voltage_v: volts,
            frequency_hz: freq,
            voltage_auto: self.nominal.auto_v,
            frequency_auto: self.nominal.auto_f,
        };
        self.nominal.decided = Some(nominal);
        self.nominal.fixed_f = freq;
        if self.est.config().nominal_hz != freq {
            let _ = self.est.set_nominal_hz(freq);
            // the crossing detector re-tunes and every window opened so far has the old cycle
            // count (10 on a 60 Hz grid, with no spectrum): settle again as after the start
            self.warmup = 0;
            self.detector = None;
        }
        self.hooks.cycles_per_window = self.est.config().cycles_per_window;
        // events are detected once the crossing detector has settled
        if self.warmup >= WARMUP_WINDOWS {
            self.detector = Some(events::Detector::new(self.cfg.layout.phases(), volts, freq));
        }
        self.flicker.set_nominal(&nominal);
    }
}

/// `(u0, u2)` in percent from the three fundamental phasors.
fn unbalance(v: &[(f32, f32); 3]) -> (Option<f32>, Option<f32>) {
    // a = e^{j120°}
    let (c, s) = (-0.5f32, 0.866_025_4f32);
    let rot = |z: (f32, f32), k: u32| -> (f32, f32) {
        let mut z = z;
        for _ in 0..k {
            z = (z.0 * c - z.1 * s, z.0 * s + z.1 * c);
        }
        z
    };
    let [v1, v2, v3] = *v;
    let add3 = |a: (f32, f32), b: (f32, f32), d: (f32, f32)| (a.0 + b.0 + d.0, a.1 + b.1 + d.1);
    let u0 = add3(v1, v2, v3);
    let u1 = add3(v1, rot(v2, 1), rot(v3, 2));
    let u2 = add3(v1, rot(v2, 2), rot(v3, 1));
    let m = |z: (f32, f32)| (z.0 * z.0 + z.1 * z.1).sqrt();
    let m1 = m(u1);
    if m1 <= 0.0 || !m1.is_finite() {
        return (None, None);
    }
    (Some(100.0 * m(u0) / m1), Some(100.0 * m(u2) / m1))
}

/// Input frames per flicker sample: the largest divisor of the rate that leaves ≥ 800 Hz (and the
/// first that reaches ≤ 1600 Hz).
fn flicker_decimation(rate_hz: u32) -> u32 {
    let mut best = 1;
    for d in 1..=rate_hz / 800 {
        if rate_hz.is_multiple_of(d) {
            best = d;
            if rate_hz / d <= 1600 {
                break;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flicker_rates() {
        for (rate, d) in [
            (32000, 20),
            (16000, 10),
            (8000, 5),
            (7000, 5),
            (4000, 4),
            (1000, 1),
        ] {
            assert_eq!(flicker_decimation(rate), d, "{rate}");
            assert!((800..=1600).contains(&(rate / d)));
        }
        // a prime rate keeps every sample (still within the flickermeter's 800..=32000 Hz)
        assert_eq!(flicker_decimation(12007), 1);
    }

    #[test]
    fn unbalance_of_balanced_and_single_phase_loss() {
        let a = |deg: f32| {
            let r = deg.to_radians();
            (230.0 * r.cos(), 230.0 * r.sin())
        };
        let (u0, u2) = unbalance(&[a(0.0), a(-120.0), a(120.0)]);
        assert!(u0.unwrap() < 1e-4 && u2.unwrap() < 1e-4);
        let (u0, u2) = unbalance(&[a(0.0), a(-120.0), (0.0, 0.0)]);
        assert!((u0.unwrap() - 50.0).abs() < 1e-3 && (u2.unwrap() - 50.0).abs() < 1e-3);
        assert_eq!(unbalance(&[(0.0, 0.0); 3]), (None, None));
    }
}
