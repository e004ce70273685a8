//! The power-quality pipeline on integer codes: accuracy checks, the cost per (v,i) sample pair at
//! 32 kHz (the estimator's share measured alone on the same chunks), and a digest of its results
//! that the host test `tests/pq_determinism.rs` reproduces bit for bit.

use alloc::vec;

use smartmeter::calibration::{Calibration, FrontEnd};
use smartmeter::dsp::EstimatorConfig;
use smartmeter::dsp::fixed::FixedEstimator;
use smartmeter::dsp::pq::{Interval, Pq, PqFlicker, PqRecord, PqSink};

use crate::pq_scenario::{
    AMPS_PER_CODE, CHUNK_FRAMES, CHUNKS, DIGEST_SEED, Generator, RATE_HZ, T0_US, VOLTS_PER_CODE,
    config, digest,
};
use crate::{Platform, Runner};

struct Digest(u64, u32);

impl PqSink for Digest {
    fn basic(&mut self, r: &PqRecord) {
        digest(&mut self.0, r);
        self.1 += 1;
    }
}

pub fn run<P: Platform>(r: &mut Runner<'_, P>) {
    r.group("dsp::pq");
    let fe = FrontEnd {
        volts_per_code: VOLTS_PER_CODE,
        amps_per_code: AMPS_PER_CODE,
    };
    let Ok(cal) = Calibration::default().with_front_end(fe) else {
        r.check("front_end", false, format_args!("rejected"));
        return;
    };
    let pq_cfg = config();
    let (Ok(mut pq), Ok(mut est)) = (
        Pq::<i32>::new(pq_cfg),
        FixedEstimator::new(EstimatorConfig::new(RATE_HZ, 50)),
    ) else {
        r.check("new", false, format_args!("config rejected"));
        return;
    };
    pq.set_calibration(cal);
    est.set_calibration(cal);
    let mut signal = Generator::new();
    let mut codes = vec![0i32; 6 * CHUNK_FRAMES];
    let mut sink = Digest(DIGEST_SEED, 0);
    let (mut cost_pq, mut cost_est, mut frames) = (0u64, 0u64, 0usize);
    let t0_us = T0_US;
    for chunk in 0..CHUNKS as i64 {
        signal.fill(&mut codes);
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
            let Ok(mut p2) = Pq::<i32>::new(pq_cfg) else {
                break;
            };
            p2.set_calibration(cal);
            p2.set_profile_mask(mask);
            let mut g2 = Generator::new();
            let mut cost = 0u64;
            for chunk in 0..30 {
                g2.fill(&mut codes);
                let a = r.instret();
                p2.feed(&codes, t0_us + chunk * 50_000, &mut ());
                let b = r.instret();
                if chunk >= 20
                    && let (Some(a), Some(b)) = (a, b)
                {
                    cost += b - a;
                }
            }
            let pairs = (3 * 10 * CHUNK_FRAMES) as u64;
            r.line(format_args!("  {what}: {} per pair", cost / pairs));
        }
        // with the flickermeter on the hook (the device's whole PQ)
        if let Some(Ok(mut pf)) =
            PqFlicker::new(RATE_HZ).map(|h| Pq::<i32, PqFlicker>::with_flicker(pq_cfg, h))
        {
            pf.set_calibration(cal);
            let mut g3 = Generator::new();
            let mut cost = 0u64;
            for chunk in 0..30 {
                g3.fill(&mut codes);
                let a = r.instret();
                pf.feed(&codes, t0_us + chunk * 50_000, &mut ());
                let b = r.instret();
                if chunk >= 20
                    && let (Some(a), Some(b)) = (a, b)
                {
                    cost += b - a;
                }
            }
            let pairs = (3 * 10 * CHUNK_FRAMES) as u64;
            let with = cost / pairs;
            r.line(format_args!(
                "with the flickermeter (PqFlicker, {} Hz): {with} per pair (estimator included; goal <= 250); state {} bytes + {} bytes allocated at construction",
                pf.flicker_rate_hz(),
                Pq::<i32, PqFlicker>::state_size_bytes(),
                pf.heap_bytes() + 3 * 2048
            ));
            r.check(
                "pq_with_flicker_within_250_per_pair",
                with <= 250,
                format_args!("{with}"),
            );
        }
        r.check(
            "pq_within_250_per_pair",
            total <= 250,
            format_args!("{total}"),
        );
    }
}
