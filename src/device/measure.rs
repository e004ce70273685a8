//! The DSP pipeline as the engine runs it: every sample block goes through the cycle-synchronous
//! [`Estimator`] (calibration applied inside), windows feed the integer [`EnergyMeter`], and the last
//! complete window (at most 250 ms old) answers get*/MQTT. Sampling sessions get their values here:
//! waveforms calibrated and resampled with the anti-aliased [`Resampler`], derived sets (`p,q`,
//! `v,i_RMS`) from a one-cycle estimator, held at the requested rate (≤ 50 Hz).

use alloc::vec::Vec;
use core::time::Duration;
use serde::{Deserialize, Serialize};

use super::sampling::{Measures, Sampling};
use super::{CodeBlock, Instant, SampleBlock};
use crate::calibration::{Calibration, FrontEnd};
use crate::dsp::estimator::Sample;
use crate::dsp::{
    EnergyMeter, EnergySnapshot, Estimator, EstimatorConfig, HalfCycleRms, Resampler, Window,
};
use crate::wire::mqtt::Quantity;

/// Oldest window get*/MQTT report (PROTOCOL.md §2).
pub const MAX_AGE: Duration = Duration::from_millis(250);
/// Nominal line frequency the estimators are tuned to.
const NOMINAL_HZ: u32 = 50;

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

/// Per-session conversion state (resampler or one-cycle estimator, pacing).
#[derive(Debug, Clone)]
struct SessionDsp {
    resampler: Option<Resampler>,
    fast: Option<Estimator>,
    held: [f32; 6],
    /// Outputs produced by the resampler since it started.
    produced: u64,
    /// Session start (wall µs) and resampler start (wall µs), to skip the filter's start-up.
    started_us: u64,
    resampler_start_us: Option<u64>,
}

/// Margin added to a resampler warm-up for the granularity of source blocks (µs): blocks of up to
/// this much plus one group delay (≥ 20 ms) still start clean.
const WARMUP_MARGIN_US: u64 = 20_000;

/// Windows skipped after the estimator starts before readings are published (see [`Meter`]).
const WARMUP_WINDOWS: u8 = 2;

/// The measuring estimator: on volts and amps, or on ADC codes (the integer path) with the front end
/// that scales them.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // both variants are ≈2.2 KiB; one lives in place, no boxing
enum Est {
    Float(Estimator<f32>),
    Codes(Estimator<i32>, FrontEnd),
}

impl Est {
    fn set_calibration(&mut self, cal: Calibration) {
        match self {
            Est::Float(e) => e.set_calibration(cal),
            Est::Codes(e, fe) => e.set_calibration(cal.with_front_end(*fe).unwrap_or(cal)),
        }
    }

    /// The half-cycle RMS record, whose min/max start over.
    fn half_cycle_extremes(&mut self) -> HalfCycleRms {
        fn take<S: Sample>(e: &mut Estimator<S>) -> HalfCycleRms {
            let hc = *e.half_cycle_rms();
            e.reset_half_cycle_extremes();
            hc
        }
        match self {
            Est::Float(e) => take(e),
            Est::Codes(e, _) => take(e),
        }
    }

    fn frequency_10s_hz(&self) -> Option<f32> {
        match self {
            Est::Float(e) => e.frequency_10s_hz(),
            Est::Codes(e, _) => e.frequency_10s_hz(),
        }
    }
}

/// Pipeline state: estimator, energy registers, session conversion.
#[derive(Debug, Clone)]
pub(crate) struct Meter {
    cal: Calibration,
    est: Option<Est>,
    est_rate: u32,
    /// Windows still to be skipped before measurements are published: the estimator's first window
    /// after start is short and unsynchronised, the next one still settling (its THD/Q₁ filters).
    warmup: u8,
    last: Option<Measurements>,
    energy: EnergyMeter,
    energy_start: Instant,
    session: Option<SessionDsp>,
    scratch: Vec<f32>,
}

fn calibration(f: &[f32; 6]) -> Calibration {
    Calibration::from_factors(*f).unwrap_or_default()
}

/// Where an estimator's windows go: energy counts every window (no gap in the registers); readings
/// wait for a settled one.
struct WindowSink<'a> {
    energy: &'a mut EnergyMeter,
    last: &'a mut Option<Measurements>,
    warmup: &'a mut u8,
    now: Instant,
}

impl<'a> WindowSink<'a> {
    fn new(
        energy: &'a mut EnergyMeter,
        last: &'a mut Option<Measurements>,
        warmup: &'a mut u8,
        now: Instant,
    ) -> Self {
        Self {
            energy,
            last,
            warmup,
            now,
        }
    }

    fn take(&mut self, w: &Window) {
        self.energy.accumulate(w);
        if *self.warmup > 0 {
            *self.warmup -= 1;
        } else {
            *self.last = Some(Measurements::from_window(w, self.now));
        }
    }
}

impl Meter {
    pub(crate) fn new(cal: &[f32; 6], now: Instant) -> Self {
        Meter {
            cal: calibration(cal),
            est: None,
            est_rate: 0,
            warmup: WARMUP_WINDOWS,
            last: None,
            energy: EnergyMeter::new(),
            energy_start: now,
            session: None,
            scratch: Vec::new(),
        }
    }

    pub(crate) fn set_calibration(&mut self, cal: &[f32; 6]) {
        self.cal = calibration(cal);
        if let Some(e) = self.est.as_mut() {
            e.set_calibration(self.cal);
        }
        if let Some(e) = self.session.as_mut().and_then(|s| s.fast.as_mut()) {
            e.set_calibration(self.cal);
        }
    }

    pub(crate) fn restore(&mut self, payload: &[u8]) -> bool {
        match serde_json::from_slice::<EnergyState>(payload) {
            Ok(e) => {
                self.energy.restore(&e.registers);
                self.energy_start = Instant::from_millis(e.start_ms);
                true
            }
            Err(_) => false,
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<u8> {
        let s = EnergyState {
            registers: self.energy.snapshot(),
            start_ms: self.energy_start.as_millis(),
        };
        serde_json::to_vec(&s).unwrap_or_default()
    }

    pub(crate) fn energy_wh(&self) -> [f64; 3] {
        self.energy.net_wh()
    }

    pub(crate) fn energy_import_wh(&self) -> [f64; 3] {
        self.energy.import_wh()
    }

    pub(crate) fn energy_export_wh(&self) -> [f64; 3] {
        self.energy.export_wh()
    }

    pub(crate) fn energy_start(&self) -> Instant {
        self.energy_start
    }

    /// `resetEnergy`: refused (nothing changes) when the registers cannot hold a value.
    pub(crate) fn reset_energy(
        &mut self,
        net_wh: [f64; 3],
        start: Instant,
    ) -> Result<(), crate::dsp::energy::EnergyError> {
        let mut energy = EnergyMeter::new();
        energy.reset_to(net_wh)?;
        self.energy = energy;
        self.energy_start = start;
        Ok(())
    }

    /// Every energy register zero, counting from `start` (factory / basic reset).
    pub(crate) fn clear_energy(&mut self, start: Instant) {
        self.energy = EnergyMeter::new();
        self.energy_start = start;
    }

    /// Half-cycle RMS minimum and maximum since the last call (getQuality), then reset.
    pub(crate) fn half_cycle_extremes(&mut self) -> ([f32; 3], [f32; 3]) {
        let Some(e) = self.est.as_mut() else {
            return ([f32::NAN; 3], [f32::NAN; 3]);
        };
        let hc = e.half_cycle_extremes();
        let o = |a: [Option<f32>; 3]| a.map(|x| x.unwrap_or(f32::NAN));
        (o(hc.min_v), o(hc.max_v))
    }

    pub(crate) fn frequency_10s(&self) -> f32 {
        self.est
            .as_ref()
            .and_then(Est::frequency_10s_hz)
            .unwrap_or(f32::NAN)
    }

    /// Feeds a block: windows update the measurements and the energy registers.
    pub(crate) fn feed(&mut self, now: Instant, block: &SampleBlock<'_>) {
        if self.est_rate != block.rate_hz || !matches!(self.est, Some(Est::Float(_))) {
            let est = Estimator::new(EstimatorConfig::new(block.rate_hz, NOMINAL_HZ)).ok();
            self.start(block.rate_hz, est.map(Est::Float));
        }
        let Some(Est::Float(est)) = self.est.as_mut() else {
            return;
        };
        let whole = block.samples.len() / 6 * 6;
        let samples = block.samples.get(..whole).unwrap_or(&[]);
        let mut sink = WindowSink::new(&mut self.energy, &mut self.last, &mut self.warmup, now);
        est.feed(samples, |w| sink.take(w));
    }

    /// Feeds a block of codes through the integer path of the estimator.
    pub(crate) fn feed_codes(&mut self, now: Instant, block: &CodeBlock<'_>) {
        let fe = block.front_end;
        match self.est.as_mut() {
            Some(Est::Codes(e, current)) if self.est_rate == block.rate_hz => {
                if *current != fe {
                    *current = fe;
                    e.set_calibration(self.cal.with_front_end(fe).unwrap_or(self.cal));
                }
            }
            _ => {
                let est = Estimator::<i32>::new(EstimatorConfig::new(block.rate_hz, NOMINAL_HZ))
                    .ok()
                    .map(|e| Est::Codes(e, fe));
                self.start(block.rate_hz, est);
            }
        }
        let Some(Est::Codes(est, _)) = self.est.as_mut() else {
            return;
        };
        let whole = block.codes.len() / 6 * 6;
        let codes = block.codes.get(..whole).unwrap_or(&[]);
        let mut sink = WindowSink::new(&mut self.energy, &mut self.last, &mut self.warmup, now);
        est.feed(codes, |w| sink.take(w));
    }

    /// A new estimator (rate or input kind changed): readings wait for it to settle.
    fn start(&mut self, rate_hz: u32, est: Option<Est>) {
        self.est_rate = rate_hz;
        self.est = est;
        if let Some(e) = self.est.as_mut() {
            e.set_calibration(self.cal);
        }
        self.last = None;
        self.warmup = WARMUP_WINDOWS;
    }

    pub(crate) fn latest(&self, now: Instant) -> Option<&Measurements> {
        self.last
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

    /// How long a session at `rate_hz` must warm its resampler before its first clean output (twice
    /// the filter's group delay, plus one source block of margin), or `None` when it needs no
    /// resampling. An immediate start is deferred by this much so the stream never carries the filter's
    /// start-up transient (zeros and ringing), and its `startTs` is the time of its first sample.
    pub(crate) fn warmup(&self, measures: Measures, rate_hz: u32) -> Option<core::time::Duration> {
        let source = self.est_rate;
        if measures.is_derived() || source == 0 || rate_hz == source {
            return None;
        }
        let delay_s = Resampler::new(measures.channels(), source, rate_hz)
            .ok()?
            .group_delay_s();
        Some(core::time::Duration::from_micros(
            (2.0 * delay_s * 1e6) as u64 + WARMUP_MARGIN_US,
        ))
    }

    /// Prepares conversion for a new session (drops any previous one).
    pub(crate) fn begin_session(&mut self, s: &Sampling, source_rate_hz: u32) {
        let m = s.params.measures;
        let mut dsp = SessionDsp {
            resampler: None,
            fast: None,
            held: [f32::NAN; 6],
            produced: 0,
            started_us: 0,
            resampler_start_us: None,
        };
        if m.is_derived() {
            let mut cfg = EstimatorConfig::new(source_rate_hz, NOMINAL_HZ);
            cfg.cycles_per_window = 1;
            dsp.fast = Estimator::new(cfg).ok();
            if let Some(e) = dsp.fast.as_mut() {
                e.set_calibration(self.cal);
            }
        } else if s.params.rate_hz != source_rate_hz {
            dsp.resampler = Resampler::new(m.channels(), source_rate_hz, s.params.rate_hz).ok();
        }
        self.session = Some(dsp);
    }

    pub(crate) fn end_session(&mut self) {
        self.session = None;
    }

    /// Values at the session's rate for source samples `range` of `block` (wall time of sample 0:
    /// `wall_start`), appended to `out`; returns the number of samples produced. With `emit` false
    /// the samples only warm up the filters (pre-roll while a scheduled start waits).
    pub(crate) fn derive_for(
        &mut self,
        s: &mut Sampling,
        block: &SampleBlock<'_>,
        range: core::ops::Range<usize>,
        wall_start: Instant,
        out: &mut Vec<f32>,
        emit: bool,
    ) -> usize {
        let first = range.start;
        if self.session.is_none() {
            self.begin_session(s, block.rate_hz);
        }
        let gains = self.cal.factors();
        let g = |k: usize| gains.get(k).copied().unwrap_or(1.0);
        let measures = s.params.measures;
        let src = u64::from(block.rate_hz.max(1));
        let rate = u64::from(s.params.rate_hz.max(1));
        // Only a scheduled start aligns the resampled stream to its start instant (the filters were
        // warmed up while waiting); an immediate start streams from the first output on.
        let start_us = match (s.params.start_at, s.started) {
            (Some(_), Some(t)) => t.as_micros(),
            _ => 0,
        };
        let last_held = self.last.as_ref().map(|m| match measures {
            Measures::Power => [
                m.active_w[0],
                m.active_w[1],
                m.active_w[2],
                m.reactive_var[0],
                m.reactive_var[1],
                m.reactive_var[2],
            ],
            _ => [
                m.voltage_v[0],
                m.voltage_v[1],
                m.voltage_v[2],
                m.current_a[0] * 1000.0,
                m.current_a[1] * 1000.0,
                m.current_a[2] * 1000.0,
            ],
        });
        let Some(dsp) = self.session.as_mut() else {
            return 0;
        };
        if dsp.held[0].is_nan()
            && let Some(h) = last_held
        {
            dsp.held = h;
        }
        dsp.started_us = start_us;
        let rows = block.samples.chunks_exact(6).take(range.end).skip(first);
        let before = out.len();
        match measures {
            Measures::Power | Measures::Rms => {
                let mut rows_buf = [0f32; 6];
                for row in rows {
                    if let Some(fast) = dsp.fast.as_mut() {
                        rows_buf.copy_from_slice(row);
                        let held = &mut dsp.held;
                        fast.feed(&rows_buf, |w| {
                            let p = &w.phases;
                            *held = match measures {
                                Measures::Power => [
                                    p[0].active_power_w,
                                    p[1].active_power_w,
                                    p[2].active_power_w,
                                    p[0].reactive_power_var,
                                    p[1].reactive_power_var,
                                    p[2].reactive_power_var,
                                ],
                                _ => [
                                    p[0].vrms_v,
                                    p[1].vrms_v,
                                    p[2].vrms_v,
                                    p[0].irms_a * 1000.0,
                                    p[1].irms_a * 1000.0,
                                    p[2].irms_a * 1000.0,
                                ],
                            };
                        });
                    }
                    if emit {
                        s.pace += rate;
                        if s.pace >= src {
                            s.pace -= src;
                            out.extend_from_slice(&dsp.held);
                        }
                    }
                }
            }
            Measures::AllWaveforms | Measures::PhaseWaveform(_) => {
                let sel: &[usize] = match measures {
                    Measures::PhaseWaveform(0) => &[0, 1],
                    Measures::PhaseWaveform(1) => &[2, 3],
                    Measures::PhaseWaveform(_) => &[4, 5],
                    _ => &[0, 1, 2, 3, 4, 5],
                };
                let scale = |k: usize, x: f32| {
                    if k.is_multiple_of(2) {
                        x * g(k)
                    } else {
                        x * g(k) * 1000.0
                    }
                };
                match dsp.resampler.as_mut() {
                    None => {
                        for row in rows {
                            if !emit {
                                break;
                            }
                            s.pace += rate;
                            if s.pace >= src {
                                s.pace -= src;
                                for &k in sel {
                                    out.push(scale(k, row.get(k).copied().unwrap_or(0.0)));
                                }
                            }
                        }
                    }
                    Some(rs) => {
                        let input = &mut self.scratch;
                        input.clear();
                        for row in rows {
                            for &k in sel {
                                input.push(scale(k, row.get(k).copied().unwrap_or(0.0)));
                            }
                        }
                        let first_us = wall_start.as_micros()
                            + (first as u64).saturating_mul(1_000_000) / src.max(1);
                        let rs_start = *dsp.resampler_start_us.get_or_insert(first_us);
                        let delay_us = (rs.group_delay_s() * 1e6) as i128;
                        let produced = &mut dsp.produced;
                        rs.process(input, |frame| {
                            // Skip the filter's start-up: emit the outputs that represent input at
                            // or after the session start (the zero crossing of a scheduled start).
                            let represents = i128::from(rs_start)
                                + i128::from(*produced) * 1_000_000 / i128::from(rate)
                                - delay_us;
                            *produced += 1;
                            if emit && represents >= i128::from(start_us) {
                                out.extend_from_slice(frame);
                            }
                        });
                    }
                }
            }
        }
        (out.len() - before) / measures.channels()
    }

    /// Heap held by the pipeline (resampler tables and delay lines, scratch).
    pub(crate) fn heap_bytes(&self) -> usize {
        let rs = self
            .session
            .as_ref()
            .and_then(|s| s.resampler.as_ref())
            .map_or(0, |_| 18 * 1024);
        rs + self.scratch.capacity() * 4
    }
}
