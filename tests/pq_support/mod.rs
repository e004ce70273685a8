//! Signal generator of the power-quality tests: three phases with fundamental, harmonics and
//! interharmonics (any real order), per-phase voltage steps (dips, swells, interruptions, RVC),
//! and a fixed start on the wall clock.
#![allow(dead_code)]

use smartmeter::dsp::pq::{Interval, Pq, PqConfig, PqRecord, PqSink, VoltageEvent};
use std::f64::consts::PI;

/// One spectral component relative to the fundamental: order (any real number), amplitude
/// relative to the fundamental, phase in degrees.
#[derive(Debug, Clone, Copy)]
pub struct Comp {
    pub order: f64,
    pub rel: f64,
    pub phase_deg: f64,
}

/// A voltage step on some phases: from `at_s` on, the fundamental and its harmonics are scaled by
/// `factor` (relative to the configured amplitude).
#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub at_s: f64,
    pub phases: [bool; 3],
    pub factor: f64,
}

#[derive(Debug, Clone)]
pub struct Signal {
    pub rate_hz: u32,
    pub f_hz: f64,
    pub v_rms: [f64; 3],
    /// Voltage phase angles, degrees (balanced: 0, −120, 120).
    pub v_angle_deg: [f64; 3],
    pub i_rms: [f64; 3],
    pub i_lag_deg: f64,
    pub v_comps: Vec<Comp>,
    pub i_comps: Vec<Comp>,
    pub steps: Vec<Step>,
}

impl Signal {
    pub fn new(rate_hz: u32, f_hz: f64, v: f64) -> Self {
        Self {
            rate_hz,
            f_hz,
            v_rms: [v; 3],
            v_angle_deg: [0.0, -120.0, 120.0],
            i_rms: [5.0; 3],
            i_lag_deg: 30.0,
            v_comps: Vec::new(),
            i_comps: Vec::new(),
            steps: Vec::new(),
        }
    }

    fn scale(&self, p: usize, t: f64) -> f64 {
        let mut k = 1.0;
        for s in &self.steps {
            if t >= s.at_s && s.phases[p] {
                k = s.factor;
            }
        }
        k
    }

    /// Frame `n` (v1,i1,v2,i2,v3,i3).
    pub fn frame(&self, n: u64) -> [f64; 6] {
        let t = n as f64 / f64::from(self.rate_hz);
        // the unwrapped phase: interharmonics (non-integer orders) must not jump at each cycle
        let base = 2.0 * PI * self.f_hz * t;
        let mut out = [0.0; 6];
        for p in 0..3 {
            let th = base + self.v_angle_deg[p].to_radians();
            let a = self.v_rms[p] * 2f64.sqrt() * self.scale(p, t);
            let mut v = a * th.cos();
            for c in &self.v_comps {
                v += a * c.rel * (c.order * th + c.phase_deg.to_radians()).cos();
            }
            let ai = self.i_rms[p] * 2f64.sqrt();
            let ti = th - self.i_lag_deg.to_radians();
            let mut i = ai * ti.cos();
            for c in &self.i_comps {
                i += ai * c.rel * (c.order * ti + c.phase_deg.to_radians()).cos();
            }
            out[2 * p] = v;
            out[2 * p + 1] = i;
        }
        out
    }

    pub fn samples(&self, from: u64, frames: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(6 * frames);
        for n in 0..frames as u64 {
            out.extend(self.frame(from + n).iter().map(|&x| x as f32));
        }
        out
    }
}

/// Wall clock of frame 0: a 2-hour boundary (2023-11-14 22:00:00 UTC is 1_700_000_000 − 800 s…).
pub const T0_US: i64 = 1_699_999_200_000_000;

/// Everything a pipeline emitted.
#[derive(Default)]
pub struct Collect {
    pub basic: Vec<PqRecord>,
    pub aggregates: Vec<PqRecord>,
    pub events: Vec<VoltageEvent>,
    pub windows: usize,
}

impl PqSink for Collect {
    fn window(&mut self, _w: &smartmeter::dsp::Window) {
        self.windows += 1;
    }
    fn basic(&mut self, r: &PqRecord) {
        self.basic.push(r.clone());
    }
    fn aggregate(&mut self, r: &PqRecord) {
        self.aggregates.push(r.clone());
    }
    fn event(&mut self, e: &VoltageEvent) {
        self.events.push(*e);
    }
}

impl Collect {
    pub fn of(&self, i: Interval) -> Vec<&PqRecord> {
        self.aggregates.iter().filter(|r| r.interval == i).collect()
    }
}

/// Runs `seconds` of `sig` through an `f32` pipeline in 100 ms blocks starting at `t0_us`.
pub fn run_f32(sig: &Signal, cfg: PqConfig, seconds: f64, t0_us: i64) -> (Pq<f32>, Collect) {
    let mut pq = Pq::<f32>::new(cfg).unwrap();
    let mut out = Collect::default();
    let block = (sig.rate_hz / 10) as usize;
    let total = (seconds * f64::from(sig.rate_hz)) as u64;
    let mut n = 0u64;
    while n < total {
        let k = block.min((total - n) as usize);
        let s = sig.samples(n, k);
        let t = t0_us + (n as f64 * 1e6 / f64::from(sig.rate_hz)).round() as i64;
        pq.feed(&s, t, &mut out);
        n += k as u64;
    }
    (pq, out)
}

/// The same through the integer path with 24-bit codes over ±400 V / ±10 A.
pub const VPC: f64 = 400.0 / 8_388_608.0;
pub const APC: f64 = 10.0 / 8_388_608.0;

pub fn run_i32(sig: &Signal, cfg: PqConfig, seconds: f64, t0_us: i64) -> (Pq<i32>, Collect) {
    use smartmeter::calibration::{Calibration, FrontEnd};
    let mut pq = Pq::<i32>::new(cfg).unwrap();
    pq.set_calibration(
        Calibration::default()
            .with_front_end(FrontEnd {
                volts_per_code: VPC,
                amps_per_code: APC,
            })
            .unwrap(),
    );
    let mut out = Collect::default();
    let block = (sig.rate_hz / 20) as usize;
    let total = (seconds * f64::from(sig.rate_hz)) as u64;
    let mut n = 0u64;
    while n < total {
        let k = block.min((total - n) as usize);
        let s: Vec<i32> = sig
            .samples(n, k)
            .iter()
            .enumerate()
            .map(|(j, &x)| {
                let sc = if j % 2 == 0 { VPC } else { APC };
                (f64::from(x) / sc).round() as i32
            })
            .collect();
        let t = t0_us + (n as f64 * 1e6 / f64::from(sig.rate_hz)).round() as i64;
        pq.feed(&s, t, &mut out);
        n += k as u64;
    }
    (pq, out)
}

/// Expected subgroup RMS of harmonic `h` (1-based) of phase `p`'s voltage for the steady signal:
/// components whose order lies within ±1 bin (1/C of an order) of h are in the subgroup.
pub fn expected_subgroup_v(sig: &Signal, p: usize, h: usize, cycles: f64) -> f64 {
    let mut s2 = if h == 1 { 1.0 } else { 0.0 };
    for c in &sig.v_comps {
        if (c.order - h as f64).abs() <= 1.0 / cycles + 1e-9 {
            s2 += c.rel * c.rel;
        }
    }
    sig.v_rms[p] * s2.sqrt()
}

pub fn expected_subgroup_i(sig: &Signal, p: usize, h: usize, cycles: f64) -> f64 {
    let mut s2 = if h == 1 { 1.0 } else { 0.0 };
    for c in &sig.i_comps {
        if (c.order - h as f64).abs() <= 1.0 / cycles + 1e-9 {
            s2 += c.rel * c.rel;
        }
    }
    sig.i_rms[p] * s2.sqrt()
}
