//! Measurements (docs/protocol.md §2, §8, §11): every block goes through the power-quality pipeline
//! [`Pq`] (calibration applied inside), which owns the cycle-synchronous estimator. Its classic
//! windows feed the integer [`EnergyMeter`] and the last settled window (at most 250 ms old) answers
//! get*/MQTT; beside them it computes the §11 basic intervals, aggregates, events and flicker, all
//! the time (also while a sampling session runs).
//!
//! Windows reach the registers through [`WindowSink`] ([`PqSink::window`]). The classic windows are
//! the pipeline's basic intervals: 10 cycles at 50 Hz, 12 at 60 Hz (the nominal frequency configured
//! with `setNominal`, or detected from the first second with a voltage), and once per 10-min clock
//! tick one window is shorter (the basic intervals re-synchronise to the clock, §11.2).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::time::Duration;
#[allow(unused_imports)] // inherent f64 methods shadow it with `std`
use num_traits::Float;
use serde::{Deserialize, Serialize};

use super::{CodeBlock, Instant, PhysicalBlock};
use crate::calibration::{Calibration, FrontEnd};
use crate::dsp::pq::{
    Interval, NominalValues, Pq, PqConfig, PqFlicker, PqRecord, PqSample, PqSink, VoltageEvent,
};
use crate::dsp::{EnergyMeter, EnergySnapshot, Estimator, EstimatorConfig, HalfCycleRms, Window};
use crate::wire::mqtt::Quantity;

/// Oldest window get*/MQTT report (docs/protocol.md §2).
pub const MAX_AGE: Duration = Duration::from_millis(250);

/// One complete measurement window, calibrated. Undefined values are NaN here and `null` on the
/// wire (never NaN in JSON).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Measurements {
    /// RMS voltage per phase, V.
    pub voltage_v: [f32; 3],
    /// RMS current per phase, A.
    pub current_a: [f32; 3],
    /// Active power, W.
    pub active_w: [f32; 3],
    /// Fundamental reactive power Q₁ (IEEE 1459), var.
    pub reactive_var: [f32; 3],
    /// Apparent power S = Vrms·Irms, VA.
    pub apparent_va: [f32; 3],
    /// Nonactive power N, VA.
    pub nonactive_va: [f32; 3],
    /// Power factor P/S.
    pub power_factor: [f32; 3],
    /// Phase angle atan2(Q₁, P₁), degrees.
    pub phase_deg: [f32; 3],
    /// Line frequency per phase, Hz (one value for the window, L1-synchronous).
    pub frequency_hz: [f32; 3],
    /// Voltage THD, %.
    pub thd_v_pct: [f32; 3],
    /// Current THD, %.
    pub thd_i_pct: [f32; 3],
    /// Line-to-line voltages L1-L2, L2-L3, L3-L1, V.
    pub line_voltage_v: [f32; 3],
    /// Length of the window in line cycles: 10 at 50 Hz, 12 at 60 Hz (fewer once per 10-min tick).
    pub cycles: u32,
    /// When the window completed (binding clock).
    pub at: Instant,
}

impl Measurements {
    fn from_window(w: &Window, at: Instant) -> Self {
        let f = |g: &dyn Fn(&crate::dsp::Measurement) -> f32| -> [f32; 3] {
            [g(&w.phases[0]), g(&w.phases[1]), g(&w.phases[2])]
        };
        let opt = |x: Option<f32>| x.unwrap_or(f32::NAN);
        let hz = opt(w.frequency_hz);
        Measurements {
            voltage_v: f(&|m| m.vrms_v),
            current_a: f(&|m| m.irms_a),
            active_w: f(&|m| m.active_power_w),
            reactive_var: f(&|m| m.reactive_power_var),
            apparent_va: f(&|m| m.apparent_power_va),
            nonactive_va: f(&|m| m.nonactive_power_va),
            power_factor: f(&|m| opt(m.power_factor)),
            phase_deg: f(&|m| opt(m.phase_deg)),
            frequency_hz: [hz; 3],
            thd_v_pct: f(&|m| opt(m.thd_v_pct)),
            thd_i_pct: f(&|m| opt(m.thd_i_pct)),
            line_voltage_v: w.line_voltage_v.map(opt),
            cycles: w.cycles,
            at,
        }
    }

    /// All values undefined (no signal).
    pub fn undefined() -> Self {
        let n = [f32::NAN; 3];
        Measurements {
            voltage_v: n,
            current_a: n,
            active_w: n,
            reactive_var: n,
            apparent_va: n,
            nonactive_va: n,
            power_factor: n,
            phase_deg: n,
            frequency_hz: n,
            thd_v_pct: n,
            thd_i_pct: n,
            line_voltage_v: n,
            cycles: 0,
            at: Instant::EPOCH,
        }
    }
}

/// The persistent energy state (record kind `Energy`): integer registers and the start time.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct EnergyState {
    registers: EnergySnapshot,
    start_ms: u64,
}

/// Windows skipped after the estimator starts before readings are published (see [`Meter`]).
const WARMUP_WINDOWS: u8 = 2;

/// A one-cycle estimator for the derived sampling sets (forked from the measuring one, or started
/// cold) on the input kind the binding delivers: volts and amps (`Estimator<f32>`) or ADC codes
/// (`Estimator<i32>` with the front end that scales them). Behind a vtable built only where a block
/// of that kind arrives ([`Meter::feed`], [`Meter::feed_codes`]): a binding that only delivers codes
/// (the ESP32-C3 firmware) links nothing of the `f32` estimator.
pub(crate) type Est = Box<dyn OneCycle>;

/// What the sampling conversion does with its one-cycle estimator ([`Est`]).
pub(crate) trait OneCycle {
    /// Feeds frames `range` of `block` (`codes`: the same frames as codes, when the binding
    /// delivered codes), calling `take` with every completed window. `false` (nothing fed): the
    /// input is not of this estimator's kind (the binding switched), so the caller starts over.
    fn feed(
        &mut self,
        block: &PhysicalBlock<'_>,
        codes: Option<&[i32]>,
        range: core::ops::Range<usize>,
        take: &mut dyn FnMut(&Window),
    ) -> bool;
    /// A new calibration (before the front end).
    fn set_calibration(&mut self, cal: Calibration);
    /// The last completed window.
    fn last_window(&self) -> Option<&Window>;
}

impl OneCycle for Estimator<f32> {
    fn feed(
        &mut self,
        block: &PhysicalBlock<'_>,
        codes: Option<&[i32]>,
        range: core::ops::Range<usize>,
        take: &mut dyn FnMut(&Window),
    ) -> bool {
        // the meter's f32 pipeline runs on volts: so does this one, whatever else came along
        let _ = codes;
        let (a, b) = (range.start * 6, range.end * 6);
        Estimator::feed(self, block.samples.get(a..b).unwrap_or(&[]), take);
        true
    }
    fn set_calibration(&mut self, cal: Calibration) {
        Estimator::set_calibration(self, cal);
    }
    fn last_window(&self) -> Option<&Window> {
        Estimator::last_window(self)
    }
}

/// The one-cycle estimator on codes, with the front end that scales them.
struct CodesOneCycle(Estimator<i32>, FrontEnd);

impl OneCycle for CodesOneCycle {
    fn feed(
        &mut self,
        _block: &PhysicalBlock<'_>,
        codes: Option<&[i32]>,
        range: core::ops::Range<usize>,
        take: &mut dyn FnMut(&Window),
    ) -> bool {
        let Some(c) = codes else {
            return false;
        };
        let (a, b) = (range.start * 6, range.end * 6);
        self.0.feed(c.get(a..b).unwrap_or(&[]), take);
        true
    }
    fn set_calibration(&mut self, cal: Calibration) {
        self.0
            .set_calibration(cal.with_front_end(self.1).unwrap_or(cal));
    }
    fn last_window(&self) -> Option<&Window> {
        self.0.last_window()
    }
}

/// The measuring pipeline of one input kind, behind a vtable built only where a block of that
/// kind arrives (see [`Est`]). Boxed: the pipeline state (≈ 40 KB with the flickermeter) lives on
/// the heap, allocated once when the pipeline is (re)built.
pub(crate) trait MeasuringPipe {
    /// Feeds the whole frames of `input` (first frame at `wall_us`); `false` (nothing fed): the input
    /// is not of this pipeline's kind (rebuild).
    fn feed(&mut self, input: Input<'_>, wall_us: i64, sink: &mut WindowSink<'_>) -> bool;
    /// The pipeline itself, for what does not depend on the sample type.
    fn view(&self) -> PipeView<'_>;
    fn poll_event(&mut self) -> Option<VoltageEvent>;
    fn reset_half_cycle_extremes(&mut self);
    /// A new calibration (before the front end).
    fn set_calibration(&mut self, cal: Calibration);
    /// Bytes of its state (boxed) and of what it allocated at construction.
    fn bytes(&self) -> usize;
    /// A one-cycle estimator forked from the measuring one.
    fn fork_one_cycle(&self) -> Option<Est>;
    /// A one-cycle estimator of the same kind started cold with `cal` (before the front end).
    fn fresh_one_cycle(&self, cal: Calibration) -> Option<Est>;
}

// No `Debug` in the vtables: it would link the pipeline's derived `Debug` (and core's float
// formatting) into every binding.
impl core::fmt::Debug for dyn OneCycle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OneCycle").finish_non_exhaustive()
    }
}

impl core::fmt::Debug for dyn MeasuringPipe {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MeasuringPipe").finish_non_exhaustive()
    }
}

/// A block for [`MeasuringPipe::feed`].
#[derive(Clone, Copy)]
pub(crate) enum Input<'a> {
    Volts(&'a [f32]),
    Codes(&'a [i32], FrontEnd),
}

/// The sample-type-independent parts of a pipeline.
pub(crate) struct PipeView<'a> {
    nominal: Option<NominalValues>,
    records: [Option<&'a PqRecord>; 4],
    half_cycle: HalfCycleRms,
    frequency_10s_hz: Option<f32>,
}

fn view_of<S: PqSample>(p: &Pq<S, PqFlicker>) -> PipeView<'_> {
    let e = p.estimator();
    PipeView {
        nominal: p.nominal(),
        records: INTERVALS.map(|i| p.last(i)),
        half_cycle: *e.half_cycle_rms(),
        frequency_10s_hz: e.frequency_10s_hz(),
    }
}

/// The intervals of [`PipeView::records`], in order.
const INTERVALS: [Interval; 4] = [
    Interval::Basic,
    Interval::ThreeSecond,
    Interval::TenMinute,
    Interval::TwoHour,
];

/// A one-cycle estimator started cold from the configuration of `e` (the measuring estimator).
fn cold_one_cycle<S: PqSample>(e: &Estimator<S>, cal: Calibration) -> Option<Estimator<S>> {
    let mut cfg = EstimatorConfig::new(e.config().rate_hz, e.config().nominal_hz);
    cfg.cycles_per_window = 1;
    let mut one = Estimator::new(cfg).ok()?;
    one.set_calibration(cal);
    Some(one)
}

impl MeasuringPipe for Pq<f32, PqFlicker> {
    fn feed(&mut self, input: Input<'_>, wall_us: i64, sink: &mut WindowSink<'_>) -> bool {
        let Input::Volts(samples) = input else {
            return false;
        };
        Pq::feed(self, samples, wall_us, sink);
        true
    }
    fn view(&self) -> PipeView<'_> {
        view_of(self)
    }
    fn poll_event(&mut self) -> Option<VoltageEvent> {
        Pq::poll_event(self)
    }
    fn reset_half_cycle_extremes(&mut self) {
        Pq::reset_half_cycle_extremes(self);
    }
    fn set_calibration(&mut self, cal: Calibration) {
        Pq::set_calibration(self, cal);
    }
    fn bytes(&self) -> usize {
        Self::state_size_bytes() + self.heap_bytes()
    }
    fn fork_one_cycle(&self) -> Option<Est> {
        let e = self.estimator().fork_with_cycles_per_window(1).ok()?;
        Some(Box::new(e))
    }
    fn fresh_one_cycle(&self, cal: Calibration) -> Option<Est> {
        Some(Box::new(cold_one_cycle(self.estimator(), cal)?))
    }
}

/// The pipeline on codes, with the front end that scales them and the calibration before it.
struct CodesPipe(Pq<i32, PqFlicker>, FrontEnd, Calibration);

impl MeasuringPipe for CodesPipe {
    fn feed(&mut self, input: Input<'_>, wall_us: i64, sink: &mut WindowSink<'_>) -> bool {
        let Input::Codes(codes, fe) = input else {
            return false;
        };
        if fe != self.1 {
            // a new front end rescales the codes; the pipeline runs on
            self.1 = fe;
            self.set_calibration(self.2);
        }
        self.0.feed(codes, wall_us, sink);
        true
    }
    fn view(&self) -> PipeView<'_> {
        view_of(&self.0)
    }
    fn poll_event(&mut self) -> Option<VoltageEvent> {
        self.0.poll_event()
    }
    fn reset_half_cycle_extremes(&mut self) {
        self.0.reset_half_cycle_extremes();
    }
    fn set_calibration(&mut self, cal: Calibration) {
        self.2 = cal;
        self.0
            .set_calibration(cal.with_front_end(self.1).unwrap_or(cal));
    }
    fn bytes(&self) -> usize {
        Pq::<i32, PqFlicker>::state_size_bytes() + self.0.heap_bytes()
    }
    fn fork_one_cycle(&self) -> Option<Est> {
        let e = self.0.estimator().fork_with_cycles_per_window(1).ok()?;
        Some(Box::new(CodesOneCycle(e, self.1)))
    }
    fn fresh_one_cycle(&self, cal: Calibration) -> Option<Est> {
        let mut e = cold_one_cycle(self.0.estimator(), cal)?;
        e.set_calibration(cal.with_front_end(self.1).unwrap_or(cal));
        Some(Box::new(CodesOneCycle(e, self.1)))
    }
}

/// A pipeline at `rate_hz` with the configured nominal values; `None` for a rate it rejects.
fn build<S: PqSample>(rate_hz: u32, nominal: NominalConfig) -> Option<Pq<S, PqFlicker>> {
    let cfg = PqConfig {
        nominal_voltage_v: nominal.voltage_v,
        nominal_frequency_hz: nominal.frequency_hz,
        ..PqConfig::new(rate_hz)
    };
    let flicker = PqFlicker::new(rate_hz)?;
    Pq::with_flicker(cfg, flicker).ok()
}

/// The configured nominal values (`setNominal`, §11); `None` = detected after each start.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct NominalConfig {
    /// Declared voltage Udin, V.
    pub(crate) voltage_v: Option<f32>,
    /// Nominal frequency, 50 or 60 Hz.
    pub(crate) frequency_hz: Option<u32>,
}

/// The measuring estimator, the energy registers and the last reading.
#[derive(Debug)]
pub(crate) struct Meter {
    cal: Calibration,
    /// The measuring pipeline (built for the first block, rebuilt when the rate, the input kind, the
    /// front end or the nominal values change).
    pipe: Option<Box<dyn MeasuringPipe>>,
    est_rate: u32,
    nominal: NominalConfig,
    /// Sequence of the last 10-min aggregate handed out by [`Meter::new_ten_minute`].
    ten_minute_seen: Option<u64>,
    /// What the estimator's windows update.
    registers: Registers,
}

/// µs since the Unix epoch, as the pipeline takes wall-clock times.
fn wall_us(t: Instant) -> i64 {
    i64::try_from(t.as_micros()).unwrap_or(i64::MAX)
}

fn calibration(f: &[f32; 6]) -> Calibration {
    Calibration::from_factors(*f).unwrap_or_default()
}

/// What the windows of the measuring estimator update: energy counts every window (no gap in the
/// registers); readings wait for a settled one.
#[derive(Debug, Clone)]
struct Registers {
    energy: EnergyMeter,
    energy_start: Instant,
    /// Windows still to be skipped before measurements are published: the estimator's first window
    /// after start is short and unsynchronised, the next one still settling (its THD/Q₁ filters).
    warmup: u8,
    last: Option<Measurements>,
}

impl Registers {
    /// One classic window, completed at `now`.
    fn window(&mut self, w: &Window, now: Instant) {
        self.energy.accumulate(w);
        if self.warmup > 0 {
            self.warmup -= 1;
        } else {
            self.last = Some(Measurements::from_window(w, now));
        }
    }
}

/// The registers as the sink of the pipeline's classic windows, stamped `now`.
pub(crate) struct WindowSink<'a> {
    registers: &'a mut Registers,
    now: Instant,
}

impl PqSink for WindowSink<'_> {
    fn window(&mut self, w: &Window) {
        self.registers.window(w, self.now);
    }
}

impl Meter {
    pub(crate) fn new(cal: &[f32; 6], now: Instant) -> Self {
        Meter {
            cal: calibration(cal),
            pipe: None,
            est_rate: 0,
            nominal: NominalConfig::default(),
            ten_minute_seen: None,
            registers: Registers {
                energy: EnergyMeter::new(),
                energy_start: now,
                warmup: WARMUP_WINDOWS,
                last: None,
            },
        }
    }

    pub(crate) fn set_calibration(&mut self, cal: &[f32; 6]) {
        self.cal = calibration(cal);
        self.set_calibration_of_pipe();
    }

    /// New nominal values (`setNominal`): the pipeline is rebuilt with them on the next block (the
    /// readings wait for its windows to settle, the PQ intervals and auto values start over).
    pub(crate) fn set_nominal(&mut self, nominal: NominalConfig) {
        if nominal != self.nominal {
            self.nominal = nominal;
            self.pipe = None;
            self.est_rate = 0;
            self.registers.last = None;
            self.registers.warmup = WARMUP_WINDOWS;
        }
    }

    /// The nominal values in force; `None` while they are being detected (or before any signal).
    pub(crate) fn nominal(&self) -> Option<NominalValues> {
        self.pipe.as_ref()?.view().nominal
    }

    /// The last completed PQ record of `interval`.
    pub(crate) fn pq_last(&self, interval: Interval) -> Option<&PqRecord> {
        let k = INTERVALS.iter().position(|i| *i == interval)?;
        self.pipe.as_ref()?.view().records.get(k).copied().flatten()
    }

    /// The oldest ended PQ event not yet taken.
    pub(crate) fn poll_pq_event(&mut self) -> Option<VoltageEvent> {
        self.pipe.as_mut()?.poll_event()
    }

    /// The 10-min aggregate completed since the last call, if any.
    pub(crate) fn new_ten_minute(&mut self) -> Option<&PqRecord> {
        let sequence = self.pq_last(Interval::TenMinute)?.sequence;
        if self.ten_minute_seen == Some(sequence) {
            return None;
        }
        self.ten_minute_seen = Some(sequence);
        self.pq_last(Interval::TenMinute)
    }

    /// Bytes of the pipeline: its state (boxed), what it allocated at construction, and the
    /// flickermeter's three Pst classifiers (allocated with it).
    pub(crate) fn pq_bytes(&self) -> usize {
        let classifiers = 3 * crate::dsp::pq::flicker::CLASSES * core::mem::size_of::<u16>();
        match self.pipe.as_ref() {
            Some(p) => classifiers + p.bytes(),
            None => 0,
        }
    }

    pub(crate) fn restore(&mut self, payload: &[u8]) -> bool {
        match serde_json::from_slice::<EnergyState>(payload) {
            Ok(e) => {
                self.registers.energy.restore(&e.registers);
                self.registers.energy_start = Instant::from_millis(e.start_ms);
                true
            }
            Err(_) => false,
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<u8> {
        let s = EnergyState {
            registers: self.registers.energy.snapshot(),
            start_ms: self.registers.energy_start.as_millis(),
        };
        serde_json::to_vec(&s).unwrap_or_default()
    }

    pub(crate) fn energy_wh(&self) -> [f64; 3] {
        self.registers.energy.net_wh()
    }

    pub(crate) fn energy_import_wh(&self) -> [f64; 3] {
        self.registers.energy.import_wh()
    }

    pub(crate) fn energy_export_wh(&self) -> [f64; 3] {
        self.registers.energy.export_wh()
    }

    pub(crate) fn energy_start(&self) -> Instant {
        self.registers.energy_start
    }

    /// `resetEnergy`: refused (nothing changes) when the registers cannot hold a value.
    pub(crate) fn reset_energy(
        &mut self,
        net_wh: [f64; 3],
        start: Instant,
    ) -> Result<(), crate::dsp::energy::EnergyError> {
        let mut energy = EnergyMeter::new();
        energy.reset_to(net_wh)?;
        self.registers.energy = energy;
        self.registers.energy_start = start;
        Ok(())
    }

    /// Every energy register zero, counting from `start` (factory / basic reset).
    pub(crate) fn clear_energy(&mut self, start: Instant) {
        self.registers.energy = EnergyMeter::new();
        self.registers.energy_start = start;
    }

    /// Half-cycle RMS minimum and maximum since the last call (getQuality), then reset.
    pub(crate) fn half_cycle_extremes(&mut self) -> ([f32; 3], [f32; 3]) {
        let Some(pipe) = self.pipe.as_mut() else {
            return ([f32::NAN; 3], [f32::NAN; 3]);
        };
        let hc = pipe.view().half_cycle;
        pipe.reset_half_cycle_extremes();
        let o = |a: [Option<f32>; 3]| a.map(|x| x.unwrap_or(f32::NAN));
        (o(hc.min_v), o(hc.max_v))
    }

    pub(crate) fn frequency_10s(&self) -> f32 {
        self.pipe
            .as_ref()
            .and_then(|pipe| pipe.view().frequency_10s_hz)
            .unwrap_or(f32::NAN)
    }

    /// Feeds a block whose first sample was taken at wall-clock time `wall_start`: windows update
    /// the measurements and the energy registers, the PQ pipeline runs on.
    pub(crate) fn feed(&mut self, now: Instant, wall_start: Instant, block: &PhysicalBlock<'_>) {
        let whole = block.samples.len() / 6 * 6;
        let samples = block.samples.get(..whole).unwrap_or(&[]);
        self.feed_input(
            now,
            wall_start,
            block.rate_hz,
            Input::Volts(samples),
            |rate, nominal| {
                let pipe: Box<dyn MeasuringPipe> = Box::new(build::<f32>(rate, nominal)?);
                Some(pipe)
            },
        );
    }

    /// Feeds a block of codes through the integer path of the pipeline.
    pub(crate) fn feed_codes(&mut self, now: Instant, wall_start: Instant, block: &CodeBlock<'_>) {
        let fe = FrontEnd {
            volts_per_code: block.volts_per_code,
            amps_per_code: block.amps_per_code,
        };
        let whole = block.codes.len() / 6 * 6;
        let codes = block.codes.get(..whole).unwrap_or(&[]);
        let input = Input::Codes(codes, fe);
        self.feed_input(now, wall_start, block.rate_hz, input, |rate, nominal| {
            let pipe: Box<dyn MeasuringPipe> = Box::new(CodesPipe(
                build::<i32>(rate, nominal)?,
                fe,
                Calibration::default(),
            ));
            Some(pipe)
        });
    }

    /// Feeds `input` to the pipeline; builds one with `build` first when there is none at `rate_hz`
    /// or the one there takes another kind of input.
    fn feed_input(
        &mut self,
        now: Instant,
        wall_start: Instant,
        rate_hz: u32,
        input: Input<'_>,
        build: impl FnOnce(u32, NominalConfig) -> Option<Box<dyn MeasuringPipe>>,
    ) {
        let mut sink = WindowSink {
            registers: &mut self.registers,
            now,
        };
        let wall = wall_us(wall_start);
        if self.est_rate == rate_hz
            && let Some(p) = self.pipe.as_mut()
            && p.feed(input, wall, &mut sink)
        {
            return;
        }
        let pipe = build(rate_hz, self.nominal);
        self.start(rate_hz, pipe);
        if let Some(p) = self.pipe.as_mut() {
            let mut sink = WindowSink {
                registers: &mut self.registers,
                now,
            };
            p.feed(input, wall, &mut sink);
        }
    }

    /// A new pipeline (rate, input kind or nominal values changed): readings wait for it to settle.
    fn start(&mut self, rate_hz: u32, pipe: Option<Box<dyn MeasuringPipe>>) {
        self.est_rate = rate_hz;
        self.pipe = pipe;
        self.ten_minute_seen = None;
        self.set_calibration_of_pipe();
        self.registers.last = None;
        self.registers.warmup = WARMUP_WINDOWS;
    }

    fn set_calibration_of_pipe(&mut self) {
        let c = self.cal;
        if let Some(p) = self.pipe.as_mut() {
            p.set_calibration(c);
        }
    }

    pub(crate) fn latest(&self, now: Instant) -> Option<&Measurements> {
        self.registers
            .last
            .as_ref()
            .filter(|m| now.saturating_since(m.at) <= MAX_AGE && m.at <= now + MAX_AGE)
    }

    pub(crate) fn quantity(&self, now: Instant, q: Quantity) -> [f64; 3] {
        if q == Quantity::Energy {
            return self.energy_wh().map(|x| x / 1000.0);
        }
        let Some(m) = self.latest(now) else {
            return [f64::NAN; 3];
        };
        let a = match q {
            Quantity::Voltage => m.voltage_v,
            Quantity::Current => m.current_a.map(|x| x * 1000.0),
            Quantity::ActivePower => m.active_w,
            Quantity::ReactivePower => m.reactive_var,
            Quantity::ApparentPower => m.apparent_va,
            Quantity::Energy => [f32::NAN; 3],
        };
        a.map(f64::from)
    }

    /// The calibration in effect.
    pub(crate) fn calibration(&self) -> Calibration {
        self.cal
    }

    /// The last settled reading, however old.
    pub(crate) fn reading(&self) -> Option<&Measurements> {
        self.registers.last.as_ref()
    }

    /// A one-cycle estimator forked from the measuring one, if that is settled at `source_rate_hz`
    /// (its windows are then settled from the first).
    pub(crate) fn fork_one_cycle(&self, source_rate_hz: u32) -> Option<Est> {
        if self.registers.warmup != 0 || self.est_rate != source_rate_hz {
            return None;
        }
        self.pipe.as_ref()?.fork_one_cycle()
    }

    /// A one-cycle estimator started cold on the input kind of the measuring pipeline (`None`
    /// before the first block): its windows need a few cycles to settle.
    pub(crate) fn fresh_one_cycle(&self) -> Option<Est> {
        self.pipe.as_ref()?.fresh_one_cycle(self.cal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::synth::{Grid, GridConfig};
    use core::time::Duration;

    /// Feeds `ms` of the default 230 V grid at 8 kHz in 10 ms blocks, as volts or as codes.
    fn run(m: &mut Meter, grid: &mut Grid, t: &mut Instant, ms: u64, codes: bool) {
        let mut v = alloc::vec![0.0f32; 6 * 80];
        for _ in 0..ms / 10 {
            grid.fill(&mut v);
            *t = *t + Duration::from_millis(10);
            if codes {
                let c: Vec<i32> = v.iter().map(|x| (x * 100.0).round() as i32).collect();
                m.feed_codes(
                    *t,
                    *t,
                    &CodeBlock {
                        rate_hz: 8000,
                        codes: &c,
                        volts_per_code: 0.01,
                        amps_per_code: 0.01,
                        start: *t,
                    },
                );
            } else {
                let b = PhysicalBlock {
                    rate_hz: 8000,
                    samples: &v,
                    start: *t,
                };
                m.feed(*t, *t, &b);
            }
        }
    }

    #[test]
    fn readings_wait_for_a_settled_window_and_energy_counts_every_window() {
        for codes in [false, true] {
            let mut t = Instant::from_secs(1_000);
            let mut m = Meter::new(&[1.0; 6], t);
            let mut grid = Grid::new(GridConfig::default());
            assert!(m.latest(t).is_none());
            assert!(m.fork_one_cycle(8000).is_none(), "not settled yet");
            run(&mut m, &mut grid, &mut t, 1000, codes);
            let r = m.latest(t).expect("a settled reading");
            assert!((r.voltage_v[0] - 230.0).abs() < 0.5, "{r:?}");
            assert!(m.fork_one_cycle(8000).is_some());
            assert!(m.fork_one_cycle(4000).is_none(), "another rate");
            assert!(
                m.latest(t + Duration::from_millis(300)).is_none(),
                "too old"
            );
            assert!(m.energy_wh()[0] > 0.0);
        }
    }

    #[test]
    fn energy_survives_a_snapshot_and_a_reset_out_of_range_changes_nothing() {
        let mut t = Instant::from_secs(1_000);
        let mut m = Meter::new(&[1.0; 6], t);
        let mut grid = Grid::new(GridConfig::default());
        run(&mut m, &mut grid, &mut t, 2000, false);
        let saved = m.snapshot();
        let mut back = Meter::new(&[1.0; 6], t);
        assert!(back.restore(&saved));
        for (a, b) in back.energy_wh().iter().zip(m.energy_wh()) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}"); // the registers keep whole mJ
        }
        assert_eq!(back.energy_start(), Instant::from_secs(1_000));
        assert!(!back.restore(b"[]"));
        let before = m.energy_wh();
        assert!(m.reset_energy([f64::INFINITY, 0.0, 0.0], t).is_err());
        assert_eq!(m.energy_wh(), before);
        m.clear_energy(t);
        assert_eq!(m.energy_wh(), [0.0; 3]);
    }
}
