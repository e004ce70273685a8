//! Measurements from the DSP pipeline: the last complete window, energy, and the values sampling
//! sessions stream. (Interim implementation until `dsp::Estimator` lands.)

use alloc::vec::Vec;
use core::time::Duration;
use num_traits::Float;
use serde::{Deserialize, Serialize};

use super::sampling::{Measures, Sampling};
use super::{Instant, SampleBlock};
use crate::wire::mqtt::Quantity;

/// Oldest window get*/MQTT report (PROTOCOL.md §2).
pub const MAX_AGE: Duration = Duration::from_millis(250);

/// One complete measurement window, calibrated. Undefined values are NaN internally and `null` on
/// the wire.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Measurements {
    /// RMS voltage per phase, V.
    pub voltage_v: [f32; 3],
    /// RMS current per phase, A.
    pub current_a: [f32; 3],
    /// Active power, W.
    pub active_w: [f32; 3],
    /// Fundamental reactive power Q₁, var.
    pub reactive_var: [f32; 3],
    /// Apparent power S = Vrms·Irms, VA.
    pub apparent_va: [f32; 3],
    /// Nonactive power N, VA.
    pub nonactive_va: [f32; 3],
    /// Power factor P/S.
    pub power_factor: [f32; 3],
    /// Phase angle atan2(Q₁, P₁), degrees.
    pub phase_deg: [f32; 3],
    /// Line frequency per phase, Hz.
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

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct EnergyState {
    import_wh: [f64; 3],
    export_wh: [f64; 3],
    start_ms: u64,
}

/// Pipeline state: estimator, energy registers, resampler position.
#[derive(Debug, Clone)]
pub(crate) struct Meter {
    cal: [f32; 6],
    last: Option<Measurements>,
    energy: EnergyState,
    pos: f64,
    half_min: [f32; 3],
    half_max: [f32; 3],
}

fn nan3() -> [f32; 3] {
    [f32::NAN; 3]
}

impl Meter {
    pub(crate) fn new(cal: &[f32; 6], now: Instant) -> Self {
        Meter {
            cal: *cal,
            last: None,
            energy: EnergyState {
                start_ms: now.as_millis(),
                ..Default::default()
            },
            pos: 0.0,
            half_min: nan3(),
            half_max: nan3(),
        }
    }

    pub(crate) fn set_calibration(&mut self, cal: &[f32; 6]) {
        self.cal = *cal;
    }

    pub(crate) fn restore(&mut self, payload: &[u8]) -> bool {
        match serde_json::from_slice::<EnergyState>(payload) {
            Ok(e) => {
                self.energy = e;
                true
            }
            Err(_) => false,
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(&self.energy).unwrap_or_default()
    }

    pub(crate) fn energy_wh(&self) -> [f64; 3] {
        let e = &self.energy;
        [
            e.import_wh[0] - e.export_wh[0],
            e.import_wh[1] - e.export_wh[1],
            e.import_wh[2] - e.export_wh[2],
        ]
    }

    pub(crate) fn energy_import_wh(&self) -> [f64; 3] {
        self.energy.import_wh
    }

    pub(crate) fn energy_export_wh(&self) -> [f64; 3] {
        self.energy.export_wh
    }

    pub(crate) fn energy_start(&self) -> Instant {
        Instant::from_millis(self.energy.start_ms)
    }

    pub(crate) fn reset_energy(&mut self, net_wh: [f64; 3], start: Instant) {
        self.energy = EnergyState {
            import_wh: net_wh.map(|x| x.max(0.0)),
            export_wh: net_wh.map(|x| (-x).max(0.0)),
            start_ms: start.as_millis(),
        };
    }

    pub(crate) fn half_cycle_extremes(&mut self) -> ([f32; 3], [f32; 3]) {
        let r = (self.half_min, self.half_max);
        self.half_min = nan3();
        self.half_max = nan3();
        r
    }

    pub(crate) fn frequency_10s(&self) -> f32 {
        self.last.as_ref().map_or(f32::NAN, |m| m.frequency_hz[0])
    }

    /// Feeds a block (calibration applied inside).
    pub(crate) fn feed(&mut self, now: Instant, block: &SampleBlock<'_>) {
        let n = block.samples.len() / 6;
        if n == 0 {
            return;
        }
        let mut m = Measurements {
            at: now,
            ..Default::default()
        };
        for p in 0..3 {
            let gv = self.cal.get(2 * p).copied().unwrap_or(1.0);
            let gi = self.cal.get(2 * p + 1).copied().unwrap_or(1.0);
            let (mut sv, mut si, mut sp) = (0.0f64, 0.0f64, 0.0f64);
            for c in block.samples.chunks_exact(6) {
                let v = f64::from(c.get(2 * p).copied().unwrap_or(0.0) * gv);
                let i = f64::from(c.get(2 * p + 1).copied().unwrap_or(0.0) * gi);
                sv += v * v;
                si += i * i;
                sp += v * i;
            }
            let vr = Float::sqrt(sv / n as f64) as f32;
            let ir = Float::sqrt(si / n as f64) as f32;
            let pw = (sp / n as f64) as f32;
            let s = vr * ir;
            set(&mut m.voltage_v, p, vr);
            set(&mut m.current_a, p, ir);
            set(&mut m.active_w, p, pw);
            set(&mut m.apparent_va, p, s);
            let q = Float::sqrt((s * s - pw * pw).max(0.0));
            set(&mut m.reactive_var, p, q);
            set(&mut m.nonactive_va, p, q);
            set(
                &mut m.power_factor,
                p,
                if s > 0.0 { pw / s } else { f32::NAN },
            );
            set(&mut m.phase_deg, p, Float::to_degrees(Float::atan2(q, pw)));
            set(&mut m.frequency_hz, p, f32::NAN);
            set(&mut m.thd_v_pct, p, f32::NAN);
            set(&mut m.thd_i_pct, p, f32::NAN);
            set(&mut m.line_voltage_v, p, vr * Float::sqrt(3.0));
            let dt_h = n as f64 / f64::from(block.rate_hz) / 3600.0;
            let e = f64::from(pw) * dt_h;
            if let (Some(imp), Some(exp)) = (
                self.energy.import_wh.get_mut(p),
                self.energy.export_wh.get_mut(p),
            ) {
                if e >= 0.0 {
                    *imp += e;
                } else {
                    *exp -= e;
                }
            }
        }
        self.last = Some(m);
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
            Quantity::Energy => nan3(),
        };
        a.map(f64::from)
    }

    pub(crate) fn reset_sampling_state(&mut self) {
        self.pos = 0.0;
    }

    /// Values at the session's rate for the samples `first..` of `block`, appended to `out`;
    /// returns the number of samples produced.
    pub(crate) fn derive_for(
        &mut self,
        s: &mut Sampling,
        block: &SampleBlock<'_>,
        first: usize,
        out: &mut Vec<f32>,
    ) -> usize {
        let src = u64::from(block.rate_hz.max(1));
        let step = u64::from(s.params.rate_hz.max(1));
        let mut produced = 0;
        let m = self.last.clone().unwrap_or_default();
        for c in block.samples.chunks_exact(6).skip(first) {
            s.pace += step;
            if s.pace < src {
                continue;
            }
            s.pace -= src;
            produced += 1;
            let g = |k: usize| self.cal.get(k).copied().unwrap_or(1.0);
            let cv = |k: usize| c.get(k).copied().unwrap_or(0.0) * g(k);
            match s.params.measures {
                Measures::AllWaveforms => {
                    for p in 0..3 {
                        out.push(cv(2 * p));
                        out.push(cv(2 * p + 1) * 1000.0);
                    }
                }
                Measures::PhaseWaveform(p) => {
                    let p = usize::from(p.min(2));
                    out.push(cv(2 * p));
                    out.push(cv(2 * p + 1) * 1000.0);
                }
                Measures::Power => {
                    out.extend_from_slice(&m.active_w);
                    out.extend_from_slice(&m.reactive_var);
                }
                Measures::Rms => {
                    out.extend_from_slice(&m.voltage_v);
                    out.extend(m.current_a.iter().map(|x| x * 1000.0));
                }
            }
        }
        produced
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        0
    }
}

fn set(a: &mut [f32; 3], p: usize, v: f32) {
    if let Some(x) = a.get_mut(p) {
        *x = v;
    }
}
