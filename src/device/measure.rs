//! The DSP pipeline as the engine runs it: every sample block goes through the cycle-synchronous
//! [`Estimator`] (calibration applied inside), windows feed the integer [`EnergyMeter`], and the last
//! complete window (at most 250 ms old) answers get*/MQTT. Sampling sessions get their values here:
//! waveforms calibrated and resampled with the anti-aliased [`Resampler`], derived sets (`p,q`,
//! `v,i_RMS`) from a one-cycle estimator, held at the requested rate (≤ 50 Hz).
//!
//! Every session sample has an instant — the time its value describes — and the session's first
//! sample is the first whose instant is at or after the session's start:
//! * a resampled sample's instant is the centre of its linear-phase filter. The filters only get
//!   input from the request on, so an immediate start lies one group delay ahead (≤ ½ output period +
//!   ¼ s) and the resampler is aligned to put an output exactly there;
//! * a waveform at the source rate is the input sample itself;
//! * a derived sample is taken at an input sample and carries the last one-cycle window completed by
//!   then. The one-cycle estimator is forked from the running, settled measuring estimator, so its
//!   windows are settled from the first (a cold one needs ≈ 4 cycles; right after boot the session
//!   waits for that).

use alloc::vec::Vec;
use core::time::Duration;
#[allow(unused_imports)] // inherent f64 methods shadow it with `std`
use num_traits::Float;
use serde::{Deserialize, Serialize};

use super::sampling::{Sampling, source_channels};
use super::{CodeBlock, Instant, PhysicalBlock};
use crate::calibration::{Calibration, FrontEnd};
use crate::dsp::estimator::Sample;
use crate::dsp::{
    EnergyMeter, EnergySnapshot, Estimator, EstimatorConfig, HalfCycleRms, Resampler, Window,
};
use crate::wire::command::Measures;
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

/// Per-session conversion state (resampler or one-cycle estimator, pacing, time origin).
#[derive(Debug, Clone)]
struct SessionDsp {
    /// Source rate the converters were built for.
    source_rate_hz: u32,
    resampler: Option<Resampler>,
    /// The one-cycle estimator of a derived session.
    fast: Option<Est>,
    /// Windows of `fast` still to be ignored (0 when it was forked from the settled measuring
    /// estimator; a fresh one needs [`FRESH_FAST_WINDOWS`]).
    fast_skip: u8,
    /// The derived values carried until the next settled one-cycle window.
    held: [f32; 6],
    /// The session's clock: the first source frame fed (µs after the session's creation); frame `n`
    /// after it is at `origin + n/source rate`, whatever the binding's (µs-truncated) block stamps say.
    origin_us: Option<f64>,
    /// Source frames fed since the origin.
    frames_in: u64,
    /// Outputs the resampler delivered since the origin.
    produced: u64,
}

/// Windows a one-cycle estimator started cold needs before its values are settled to ≈ 0.1 %
/// (its crossing detector's band-pass filters and frequency tracking settle over ≈ 4 cycles).
const FRESH_FAST_WINDOWS: u8 = 4;
/// How far ahead an immediate derived session starts when no settled measuring estimator exists to
/// fork (the device has measured for less than ≈ 0.4 s): the settling time of
/// [`FRESH_FAST_WINDOWS`] cycles from a cold start (≤ 85 ms at 45–60 Hz), so even then the first
/// sample is settled.
const FRESH_FAST_LEAD: Duration = Duration::from_millis(90);

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

    fn last_window(&self) -> Option<&Window> {
        match self {
            Est::Float(e) => e.last_window(),
            Est::Codes(e, _) => e.last_window(),
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
    pub(crate) fn feed(&mut self, now: Instant, block: &PhysicalBlock<'_>) {
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
        let fe = FrontEnd {
            volts_per_code: block.volts_per_code,
            amps_per_code: block.amps_per_code,
        };
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

    /// Prepares conversion for session `s` on a source at `source_rate_hz` (drops any previous one)
    /// and returns how far after its request an immediate session's first sample can be:
    ///
    /// * a resampled waveform needs input from one group delay before its first output's instant,
    ///   and it gets input only from now on, so it starts one group delay ahead (≤ ½ output period
    ///   + ¼ s, see [`Resampler`]);
    /// * a derived set forks its one-cycle estimator from the running, settled measuring estimator
    ///   (settled at once: no lead), or — right after boot — starts one cold and waits for it to settle;
    /// * a waveform at the source rate starts now.
    pub(crate) fn begin_session(&mut self, s: &Sampling, source_rate_hz: u32) -> Duration {
        let m = s.params.measures;
        let mut dsp = SessionDsp {
            source_rate_hz,
            resampler: None,
            fast: None,
            fast_skip: 0,
            held: [f32::NAN; 6],
            origin_us: None,
            frames_in: 0,
            produced: 0,
        };
        let mut lead = Duration::ZERO;
        if m.is_derived() {
            let settled = self.warmup == 0 && self.est_rate == source_rate_hz;
            let forked = match self.est.as_ref().filter(|_| settled) {
                Some(Est::Float(e)) => e.fork_with_cycles_per_window(1).ok().map(Est::Float),
                Some(Est::Codes(e, fe)) => e
                    .fork_with_cycles_per_window(1)
                    .ok()
                    .map(|e| Est::Codes(e, *fe)),
                None => None,
            };
            if let Some(f) = forked {
                dsp.fast = Some(f);
                if let Some(h) = self.last.as_ref().map(|last| held_of(m, last)) {
                    dsp.held = h;
                }
            } else {
                dsp.fast = fresh_fast(source_rate_hz, self.cal);
                dsp.fast_skip = FRESH_FAST_WINDOWS;
                lead = FRESH_FAST_LEAD;
            }
        } else if s.params.rate_hz != source_rate_hz {
            dsp.resampler = Resampler::new(m.count(), source_rate_hz, s.params.rate_hz).ok();
            if let Some(rs) = dsp.resampler.as_ref() {
                lead = Duration::from_micros((rs.group_delay_s() * 1e6).ceil() as u64);
            }
        }
        self.session = Some(dsp);
        lead
    }

    pub(crate) fn end_session(&mut self) {
        self.session = None;
    }

    /// The session clock's time of the first frame of the next block (µs after the session's
    /// creation; a block at `wall_start` of `rate_hz`), starting the clock — and, should the rate
    /// have changed, the session's converters — with the first block.
    pub(crate) fn session_clock(&mut self, s: &Sampling, rate_hz: u32, wall_start: Instant) -> f64 {
        if self.session.as_ref().map(|d| d.source_rate_hz) != Some(rate_hz) {
            self.begin_session(s, rate_hz);
        }
        let Some(dsp) = self.session.as_mut() else {
            return s.micros_since_created(wall_start);
        };
        let origin = *dsp
            .origin_us
            .get_or_insert_with(|| s.micros_since_created(wall_start));
        origin + dsp.frames_in as f64 * 1e6 / f64::from(rate_hz.max(1))
    }

    /// Values at the session's rate for source frames `range` of `block` (wall time of frame 0:
    /// `wall_start`; `codes`: the same frames as ADC codes, when the binding delivered codes),
    /// appended to `out`. Only samples whose instant is at or after `emit_from` are emitted (`None`:
    /// none — the input only warms the filters, as while a scheduled start waits). Instants are µs
    /// of wall time after the session's creation ([`Sampling::micros_since_created`]: sub-µs
    /// resolution, unlike µs since the epoch in an `f64`) on the session clock
    /// ([`session_clock`](Self::session_clock)). Returns the number of samples emitted and the instant
    /// of the first one.
    ///
    /// The instant of a sample is the time its value describes: a resampled sample's is the centre of
    /// its (linear-phase) filter; a waveform at the source rate is the input sample itself; a derived
    /// sample is taken at an input sample and carries the last one-cycle window completed by then.
    /// An immediate session's resampler is aligned so that its first output lies exactly at the
    /// session's start instant (rounded up to the next input sample when it has no fractional stage).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn derive_for(
        &mut self,
        s: &mut Sampling,
        block: &PhysicalBlock<'_>,
        codes: Option<&[i32]>,
        range: core::ops::Range<usize>,
        wall_start: Instant,
        out: &mut Vec<f32>,
        emit_from: Option<f64>,
    ) -> (usize, Option<f64>) {
        let first = range.start;
        let block_t0 = self.session_clock(s, block.rate_hz, wall_start);
        let gains = self.cal.factors();
        let g = |k: usize| gains.get(k).copied().unwrap_or(1.0);
        let measures = s.params.measures;
        let src = u64::from(block.rate_hz.max(1));
        let rate = u64::from(s.params.rate_hz.max(1));
        let us_per_in = 1e6 / src as f64;
        let t_of = |k: usize| block_t0 + k as f64 * us_per_in;
        let due = |t: f64| emit_from.is_some_and(|from| t >= from);
        // an immediate start: the resampler's first output lies exactly at the start instant
        let align_to = (s.waiting() && !s.align_start)
            .then_some(s.params.start_at)
            .flatten()
            .map(|t| s.micros_since_created(t));
        let main_held = self.last.as_ref().map(|m| held_of(measures, m));
        let Some(dsp) = self.session.as_mut() else {
            return (0, None);
        };
        let before = out.len();
        let mut first_instant = None;
        let end = range.end.min(block.samples.len() / 6);
        let fresh = dsp.frames_in == 0;
        dsp.frames_in += end.saturating_sub(first) as u64;
        // every output is due once the session runs (no instants to compute per sample)
        let all_due = emit_from == Some(f64::NEG_INFINITY);
        // the first input sample at or after the start; a waiting session's first sample is there
        let k0 = match emit_from {
            None => end,
            Some(_) if all_due => first,
            Some(_) => (first..end).find(|&k| due(t_of(k))).unwrap_or(end),
        };
        if s.waiting() && k0 < end {
            s.pace = src - rate.min(src); // the next step fires
        }
        match measures {
            Measures::PowerPQ | Measures::Rms => {
                // feed the one-cycle estimator up to each sample instant, then hold its last window
                let mut fed = first;
                for k in k0..end {
                    s.pace += rate;
                    if s.pace < src {
                        continue;
                    }
                    s.pace -= src;
                    dsp.feed_fast(measures, block, codes, fed..k + 1);
                    fed = k + 1;
                    if dsp.held[0].is_nan() {
                        // nothing settled yet (a cold start that got no input for long): the
                        // measuring estimator's reading, or else the latest one-cycle window
                        let latest = dsp
                            .fast
                            .as_ref()
                            .and_then(Est::last_window)
                            .map(|w| held_of_window(measures, w));
                        if let Some(h) = main_held.or(latest) {
                            dsp.held = h;
                        }
                    }
                    out.extend_from_slice(&dsp.held);
                    first_instant.get_or_insert_with(|| t_of(k));
                }
                dsp.feed_fast(measures, block, codes, fed..end);
            }
            Measures::VoltCurrent3
            | Measures::VoltCurrentL1
            | Measures::VoltCurrentL2
            | Measures::VoltCurrentL3 => {
                let sel = source_channels(measures);
                let scale = |k: usize, x: f32| {
                    if k.is_multiple_of(2) {
                        x * g(k)
                    } else {
                        x * g(k) * 1000.0
                    }
                };
                let rows = block.samples.chunks_exact(6).take(end);
                match dsp.resampler.as_mut() {
                    None => {
                        // at the source rate (or, should no resampler exist, decimated by pacing)
                        for row in rows.skip(k0) {
                            s.pace += rate;
                            if s.pace < src {
                                continue;
                            }
                            s.pace -= src;
                            for &c in sel {
                                out.push(scale(c, row.get(c).copied().unwrap_or(0.0)));
                            }
                        }
                        // a waiting session's first sample is k0 (its pace fires there)
                        if out.len() > before {
                            first_instant = Some(t_of(k0));
                        }
                    }
                    Some(rs) => {
                        let rows = rows.skip(first);
                        let input = &mut self.scratch;
                        input.clear();
                        for row in rows {
                            for &c in sel {
                                input.push(scale(c, row.get(c).copied().unwrap_or(0.0)));
                            }
                        }
                        let origin = dsp.origin_us.unwrap_or(block_t0);
                        if fresh {
                            dsp.produced = 0;
                            if let Some(at) = align_to {
                                rs.align((at - origin) / us_per_in);
                            } else {
                                rs.reset();
                            }
                        }
                        let first_at = rs.first_output_at();
                        let step = src as f64 / rate as f64;
                        let produced = &mut dsp.produced;
                        rs.process(input, |frame| {
                            let k = *produced;
                            *produced += 1;
                            let t = || origin + (first_at + k as f64 * step) * us_per_in;
                            // aligned: every output is at or after the start (no rounding test);
                            // else an output whose computed instant is within 1 ns of the start is
                            // the one at the start (rounding of the crossing's interpolation)
                            if all_due || (fresh && align_to.is_some()) || due(t() + 1e-3) {
                                out.extend_from_slice(frame);
                                if first_instant.is_none() {
                                    first_instant = Some(t());
                                }
                            }
                        });
                    }
                }
            }
        }
        ((out.len() - before) / measures.count(), first_instant)
    }

    /// Heap held by the pipeline (resampler tables and delay lines, scratch).
    pub(crate) fn heap_bytes(&self) -> usize {
        let rs = self
            .session
            .as_ref()
            .and_then(|s| s.resampler.as_ref())
            .map_or(0, Resampler::heap_bytes);
        rs + self.scratch.capacity() * 4
    }
}

impl SessionDsp {
    /// Feeds source frames `range` to the one-cycle estimator; settled windows replace `held`.
    fn feed_fast(
        &mut self,
        measures: Measures,
        block: &PhysicalBlock<'_>,
        codes: Option<&[i32]>,
        range: core::ops::Range<usize>,
    ) {
        if range.is_empty() {
            return;
        }
        let (a, b) = (range.start * 6, range.end * 6);
        let held = &mut self.held;
        let skip = &mut self.fast_skip;
        let mut take = |w: &Window| {
            if *skip > 0 {
                *skip -= 1;
            } else {
                *held = held_of_window(measures, w);
            }
        };
        match self.fast.as_mut() {
            Some(Est::Float(e)) => {
                e.feed(block.samples.get(a..b).unwrap_or(&[]), &mut take);
            }
            Some(Est::Codes(e, _)) => match codes {
                Some(c) => {
                    e.feed(c.get(a..b).unwrap_or(&[]), &mut take);
                }
                None => {
                    // the binding switched from codes to volts: start over on volts
                    let cal = *e.calibration();
                    self.fast = fresh_fast(block.rate_hz, cal);
                    self.fast_skip = FRESH_FAST_WINDOWS;
                }
            },
            None => {}
        }
    }
}

/// A one-cycle estimator started cold (on volts and amps).
fn fresh_fast(rate_hz: u32, cal: Calibration) -> Option<Est> {
    let mut cfg = EstimatorConfig::new(rate_hz, NOMINAL_HZ);
    cfg.cycles_per_window = 1;
    let mut e = Estimator::new(cfg).ok()?;
    e.set_calibration(cal);
    Some(Est::Float(e))
}

/// The derived channels of `measures` from a window.
fn held_of_window(measures: Measures, w: &Window) -> [f32; 6] {
    let p = &w.phases;
    match measures {
        Measures::PowerPQ => [
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
    }
}

/// The derived channels of `measures` from the measuring estimator's reading.
fn held_of(measures: Measures, m: &Measurements) -> [f32; 6] {
    match measures {
        Measures::PowerPQ => [
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
    }
}
