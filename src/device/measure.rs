//! Measurements (docs/protocol.md §2, §8): every block goes through the cycle-synchronous [`Estimator`]
//! (calibration applied inside), every window feeds the integer [`EnergyMeter`], and the last settled
//! window (at most 250 ms old) answers get*/MQTT.
//!
//! Windows reach the registers through [`WindowSink`], shaped like `dsp::pq::PqSink::window`: the
//! power-quality pipeline can take the estimator's place and hand its classic windows to the same
//! sink.

use alloc::vec::Vec;
use core::time::Duration;
#[allow(unused_imports)] // inherent f64 methods shadow it with `std`
use num_traits::Float;
use serde::{Deserialize, Serialize};

use super::{CodeBlock, Instant, PhysicalBlock};
use crate::calibration::{Calibration, FrontEnd};
use crate::dsp::estimator::Sample;
use crate::dsp::pq::PqSink;
use crate::dsp::{EnergyMeter, EnergySnapshot, Estimator, EstimatorConfig, HalfCycleRms, Window};
use crate::wire::mqtt::Quantity;

/// Oldest window get*/MQTT report (docs/protocol.md §2).
pub const MAX_AGE: Duration = Duration::from_millis(250);
/// Nominal line frequency the estimators are tuned to.
pub(crate) const NOMINAL_HZ: u32 = 50;

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

/// Windows skipped after the estimator starts before readings are published (see [`Meter`]).
const WARMUP_WINDOWS: u8 = 2;

/// The measuring estimator: on volts and amps, or on ADC codes (the integer path) with the front end
/// that scales them.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // both variants are ≈2.2 KiB; one lives in place, no boxing
pub(crate) enum Est {
    Float(Estimator<f32>),
    Codes(Estimator<i32>, FrontEnd),
}

impl Est {
    pub(crate) fn set_calibration(&mut self, cal: Calibration) {
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

    pub(crate) fn last_window(&self) -> Option<&Window> {
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

/// The measuring estimator, the energy registers and the last reading.
#[derive(Debug, Clone)]
pub(crate) struct Meter {
    cal: Calibration,
    /// The measuring estimator (built for the first block, rebuilt when the rate or the input kind
    /// changes).
    est: Option<Est>,
    est_rate: u32,
    /// What the estimator's windows update.
    registers: Registers,
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

/// The registers as a sink of classic windows stamped `now`: the shape of [`PqSink::window`], so
/// the power-quality pipeline can feed them in the estimator's place.
struct WindowSink<'a> {
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
            est: None,
            est_rate: 0,
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
        if let Some(e) = self.est.as_mut() {
            e.set_calibration(self.cal);
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
        let mut sink = WindowSink {
            registers: &mut self.registers,
            now,
        };
        est.feed(samples, |w| sink.window(w));
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
        let mut sink = WindowSink {
            registers: &mut self.registers,
            now,
        };
        est.feed(codes, |w| sink.window(w));
    }

    /// A new estimator (rate or input kind changed): readings wait for it to settle.
    fn start(&mut self, rate_hz: u32, est: Option<Est>) {
        self.est_rate = rate_hz;
        self.est = est;
        if let Some(e) = self.est.as_mut() {
            e.set_calibration(self.cal);
        }
        self.registers.last = None;
        self.registers.warmup = WARMUP_WINDOWS;
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
        match self.est.as_ref()? {
            Est::Float(e) => e.fork_with_cycles_per_window(1).ok().map(Est::Float),
            Est::Codes(e, fe) => e
                .fork_with_cycles_per_window(1)
                .ok()
                .map(|e| Est::Codes(e, *fe)),
        }
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
                m.feed(*t, &b);
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
