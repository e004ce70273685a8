//! The power-quality pipeline on integer codes: accuracy checks, the cost per (v,i) sample pair at
//! 32 kHz (the estimator's share measured alone on the same chunks), and a digest of its results
//! that the host test `tests/pq_determinism.rs` reproduces bit for bit.

use alloc::vec;

use smartmeter::calibration::{Calibration, FrontEnd};
use smartmeter::dsp::fixed::{FixedEstimator, to_codes};
use smartmeter::dsp::pq::{Interval, Pq, PqConfig};
use smartmeter::dsp::{EstimatorConfig, Grid, GridConfig, Harmonic, PhaseSignal};

use crate::{Platform, Runner};

const RATE_HZ: u32 = 32_000;
const CHUNK_FRAMES: usize = 1_600;
const FULL_SCALE_CODE: f64 = 8_388_607.0;

/// The digest scenario, shared with the host test: 230 V / 50.2 Hz, 5 % H5 on the voltages, 20 %
/// H3 on the currents, unbalanced, 32 kHz, 2 s in 50 ms chunks.
pub fn scenario() -> (GridConfig, FrontEnd) {
    let mut config = GridConfig {
        rate_hz: RATE_HZ,
        frequency_hz: 50.2,
        ..GridConfig::default()
    };
    config.phases = [
        PhaseSignal {
            voltage_rms_v: 230.0,
            current_rms_a: 5.0,
            angle_deg: 30.0,
        },
        PhaseSignal {
            voltage_rms_v: 226.0,
            current_rms_a: 2.0,
            angle_deg: -20.0,
        },
        PhaseSignal {
            voltage_rms_v: 233.0,
            current_rms_a: 0.5,
            angle_deg: 0.0,
        },
    ];
    let _ = config.voltage_harmonics.push(Harmonic {
        order: 5,
        relative: 0.05,
        phase_deg: 0.0,
    });
    let _ = config.current_harmonics.push(Harmonic {
        order: 3,
        relative: 0.2,
        phase_deg: 0.0,
    });
    let fe = FrontEnd {
        volts_per_code: config.voltage_full_scale_v / FULL_SCALE_CODE,
        amps_per_code: config.current_full_scale_a / FULL_SCALE_CODE,
    };
    (config, fe)
}

/// FNV-1a over the bits of every basic record's values.
pub fn digest(h: &mut u64, r: &smartmeter::dsp::pq::PqRecord) {
    let mut eat = |x: u32| {
        for b in x.to_le_bytes() {
            *h ^= u64::from(b);
            *h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for p in 0..3 {
        eat(r.voltage_v[p].to_bits());
        for k in 0..50 {
            eat(r.harmonics_v[p][k].to_bits());
            eat(r.harmonics_i_a[p][k].to_bits());
        }
    }
    eat(r.u2_pct.unwrap_or(-1.0).to_bits());
    eat(r.u0_pct.unwrap_or(-1.0).to_bits());
    eat((r.end_unix_s - r.start_unix_s).to_bits() as u32);
}

struct Digest(u64, u32);

impl smartmeter::dsp::pq::PqSink for Digest {
    fn basic(&mut self, r: &smartmeter::dsp::pq::PqRecord) {
        digest(&mut self.0, r);
        self.1 += 1;
    }
}

pub fn run<P: Platform>(r: &mut Runner<'_, P>) {
    r.group("dsp::pq");
    let (config, fe) = scenario();
    let Ok(cal) = Calibration::default().with_front_end(fe) else {
        r.check("front_end", false, format_args!("rejected"));
        return;
    };
    let pq_cfg = PqConfig {
        nominal_voltage_v: Some(230.0),
        nominal_frequency_hz: Some(50),
        ..PqConfig::new(RATE_HZ)
    };
    let (Ok(mut pq), Ok(mut est)) = (
        Pq::<i32>::new(pq_cfg),
        FixedEstimator::new(EstimatorConfig::new(RATE_HZ, 50)),
    ) else {
        r.check("new", false, format_args!("config rejected"));
        return;
    };
    pq.set_calibration(cal);
    est.set_calibration(cal);
    let mut grid = Grid::new(config);
    let mut samples = vec![0.0f32; 6 * CHUNK_FRAMES];
    let mut codes = vec![0i32; samples.len()];
    let mut sink = Digest(0xcbf2_9ce4_8422_2325, 0);
    let (mut cost_pq, mut cost_est, mut frames) = (0u64, 0u64, 0usize);
    let t0_us = 1_700_000_000_000_000i64;
    for chunk in 0..40 {
        grid.fill(&mut samples);
        to_codes(&samples, fe.volts_per_code, fe.amps_per_code, &mut codes);
        let t = t0_us + chunk * 50_000;
        let a = r.instret();
        pq.feed(&codes, t, &mut sink);
        let b = r.instret();
        est.feed(&codes, |_| {});
        let c = r.instret();
        // steady state: after 1 s (nominal values fixed, detector settled)
        if chunk >= 20 {
            if let (Some(a), Some(b), Some(c)) = (a, b, c) {
                cost_pq += b - a;
                cost_est += c - b;
            }
            frames += CHUNK_FRAMES;
        }
    }
    let last = pq.last(Interval::Basic).cloned();
    r.check(
        "basic_intervals",
        sink.1 >= 6,
        format_args!("{} basic intervals", sink.1),
    );
    if let Some(b) = &last {
        let v = b.voltage_v[0];
        r.check(
            "voltage_within_0.05pct",
            (f64::from(v) - 230.287_429).abs() < 0.115,
            format_args!("{v}"),
        );
        let h5 = f64::from(b.harmonics_v[1][4]) / (226.0 * 0.05);
        r.check(
            "h5_within_1pct",
            (h5 - 1.0).abs() < 0.01,
            format_args!("{h5}"),
        );
        let h3 = f64::from(b.harmonics_i_a[0][2]) / (5.0 * 0.2);
        r.check(
            "i_h3_within_1pct",
            (h3 - 1.0).abs() < 0.01,
            format_args!("{h3}"),
        );
        r.check(
            "u2_defined",
            b.u2_pct.is_some_and(|u| u > 0.5 && u < 3.0),
            format_args!("{:?}", b.u2_pct),
        );
    }
    r.check("no_events", pq.poll_event().is_none(), format_args!("event"));
    r.line(format_args!("pq digest {:#018x} over {} basic intervals", sink.0, sink.1));
    if cost_pq > 0 {
        let pairs = (3 * frames) as u64;
        let total = cost_pq / pairs;
        let est_only = cost_est / pairs;
        r.line(format_args!(
            "instructions per (v,i) sample pair at 32000 Hz (1 s steady state, 50 ms chunks): PQ pipeline {total} (estimator alone {est_only}, PQ part {}; budget 250 in all, ~100 for PQ incl. ~25 for flicker)",
            total.saturating_sub(est_only)
        ));
        r.line(format_args!(
            "PQ state: {} bytes (estimator included) + {} bytes allocated at construction",
            Pq::<i32>::state_size_bytes(),
            pq.heap_bytes()
        ));
        // where the PQ part goes (profiling aid): the same chunks with parts switched off
        for (mask, what) in [
            (1u8, "without the per-window spectrum"),
            (3, "without spectrum and half-cycle events"),
            (4, "without the lattice (ingestion only)"),
        ] {
            let (config, _) = scenario();
            let Ok(mut p2) = Pq::<i32>::new(pq_cfg) else {
                break;
            };
            p2.set_calibration(cal);
            p2.set_profile_mask(mask);
            let mut g2 = Grid::new(config);
            let mut cost = 0u64;
            for chunk in 0..30 {
                g2.fill(&mut samples);
                to_codes(&samples, fe.volts_per_code, fe.amps_per_code, &mut codes);
                let a = r.instret();
                p2.feed(&codes, t0_us + chunk * 50_000, &mut ());
                let b = r.instret();
                if chunk >= 20 {
                    if let (Some(a), Some(b)) = (a, b) {
                        cost += b - a;
                    }
                }
            }
            let pairs = (3 * 10 * CHUNK_FRAMES) as u64;
            r.line(format_args!("  {what}: {} per pair", cost / pairs));
        }
        r.check(
            "pq_within_250_per_pair",
            total <= 250,
            format_args!("{total}"),
        );
    }
}
