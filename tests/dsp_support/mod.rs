//! Shared helpers of the DSP tests: run a synthetic grid through the estimator and compare.
#![allow(dead_code)]

pub mod peer;

use smartmeter::dsp::synth::{Expected, Grid, GridConfig, Harmonic, PhaseSignal};
use smartmeter::dsp::{Estimator, EstimatorConfig, Window};

/// Limits of issue 3 (relative to the reading for RMS, to S for P and Q).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub rms_rel: f64,
    pub p_rel_s: f64,
    pub q_rel_s: f64,
    pub phase_deg: f64,
    pub pf_abs: f64,
    pub freq_hz: f64,
}

pub const ISSUE: Limits = Limits {
    rms_rel: 1e-4,
    p_rel_s: 2e-4,
    q_rel_s: 2e-4,
    phase_deg: 0.01,
    pf_abs: 5e-4,
    freq_hz: 1e-3,
};

/// Worst errors seen over the checked windows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Worst {
    pub v_rel: f64,
    pub i_rel: f64,
    pub p_rel_s: f64,
    pub q_rel_s: f64,
    pub phase_deg: f64,
    pub pf_abs: f64,
    pub freq_hz: f64,
    pub windows: usize,
}

pub fn grid(rate_hz: u32, frequency_hz: f64, v: f64, i: f64, angle_deg: f64) -> GridConfig {
    GridConfig {
        rate_hz,
        frequency_hz,
        phases: [PhaseSignal {
            voltage_rms_v: v,
            current_rms_a: i,
            angle_deg,
        }; 3],
        ..GridConfig::default()
    }
}

pub fn harmonics(list: &[(u32, f64, f64)]) -> heapless::Vec<Harmonic, 8> {
    list.iter()
        .map(|&(order, relative, phase_deg)| Harmonic {
            order,
            relative,
            phase_deg,
        })
        .collect()
}

/// Runs `seconds` of the grid through an estimator; returns all windows.
pub fn run(cfg: &GridConfig, nominal_hz: u32, seconds: f64) -> Vec<Window> {
    let mut est = Estimator::<f32>::new(EstimatorConfig::new(cfg.rate_hz, nominal_hz)).unwrap();
    let mut g = Grid::new(cfg.clone());
    let ch = g.channels();
    let frames = (seconds * f64::from(cfg.rate_hz)) as usize;
    let mut buf = vec![0.0f32; ch * 4093];
    let mut out = Vec::new();
    let mut done = 0;
    while done < frames {
        let n = (frames - done).min(4093);
        g.fill(&mut buf[..n * ch]);
        est.feed(&buf[..n * ch], |w| out.push(*w));
        done += n;
    }
    out
}

/// Compares synchronised windows after the first `skip` against the expected values.
pub fn compare(windows: &[Window], expected: &[Expected; 3], f_hz: f64, skip: usize) -> Worst {
    let mut w = Worst::default();
    for win in windows.iter().filter(|w| w.synchronised).skip(skip) {
        w.windows += 1;
        let f = f64::from(
            win.frequency_hz
                .expect("synchronised window has a frequency"),
        );
        w.freq_hz = w.freq_hz.max((f - f_hz).abs());
        for (m, e) in win.phases.iter().zip(expected) {
            let s = e.apparent_power_va;
            w.v_rel = w.v_rel.max((f64::from(m.vrms_v) / e.vrms_v - 1.0).abs());
            if e.irms_a > 0.0 {
                w.i_rel = w.i_rel.max((f64::from(m.irms_a) / e.irms_a - 1.0).abs());
                w.p_rel_s = w
                    .p_rel_s
                    .max((f64::from(m.active_power_w) - e.active_power_w).abs() / s);
                w.q_rel_s = w
                    .q_rel_s
                    .max((f64::from(m.reactive_power_var) - e.reactive_power_var).abs() / s);
                let ph = f64::from(m.phase_deg.expect("phase defined"));
                let mut d = (ph - e.phase_deg).abs();
                if d > 180.0 {
                    d = 360.0 - d;
                }
                w.phase_deg = w.phase_deg.max(d);
                let pf = f64::from(m.power_factor.expect("pf defined"));
                w.pf_abs = w.pf_abs.max((pf - e.active_power_w / s).abs());
            }
        }
    }
    w
}

pub fn expected3(cfg: &GridConfig) -> [Expected; 3] {
    let g = Grid::new(cfg.clone());
    [g.expected(0), g.expected(1), g.expected(2)]
}

/// Runs and asserts the issue's limits; returns the worst errors.
pub fn check(cfg: &GridConfig, nominal_hz: u32, seconds: f64, limits: Limits) -> Worst {
    let windows = run(cfg, nominal_hz, seconds);
    let w = compare(&windows, &expected3(cfg), cfg.frequency_hz, 2);
    eprintln!(
        "WORST rate={} f={} V={:.2e} I={:.2e} P/S={:.2e} Q/S={:.2e} phase={:.2e}° PF={:.2e} f={:.2e} Hz",
        cfg.rate_hz,
        cfg.frequency_hz,
        w.v_rel,
        w.i_rel,
        w.p_rel_s,
        w.q_rel_s,
        w.phase_deg,
        w.pf_abs,
        w.freq_hz
    );
    assert!(w.windows >= 2, "too few windows: {w:?}");
    assert!(w.v_rel <= limits.rms_rel, "Vrms {w:?}");
    assert!(w.i_rel <= limits.rms_rel, "Irms {w:?}");
    assert!(w.p_rel_s <= limits.p_rel_s, "P {w:?}");
    assert!(w.q_rel_s <= limits.q_rel_s, "Q1 {w:?}");
    assert!(w.phase_deg <= limits.phase_deg, "phase {w:?}");
    assert!(w.pf_abs <= limits.pf_abs, "PF {w:?}");
    assert!(w.freq_hz <= limits.freq_hz, "frequency {w:?}");
    w
}
