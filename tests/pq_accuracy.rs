//! Power-quality accuracy (IEC 61000-4-30 Class A limits, tighter goals of the issue) on synthetic
//! signals made here. Run with `--nocapture` for the measured errors.
mod pq_common;

use pq_common::*;
use smartmeter::dsp::pq::{Interval, PqConfig};

fn cfg(rate: u32) -> PqConfig {
    PqConfig::new(rate)
}

#[test]
fn smoke_230v_50hz() {
    let mut s = Signal::new(32000, 50.0, 230.0);
    s.v_comps.push(Comp {
        order: 5.0,
        rel: 0.05,
        phase_deg: 30.0,
    });
    let (pq, out) = run_f32(&s, cfg(32000), 4.0, T0_US);
    eprintln!(
        "{} basic, {} agg, nominal {:?}",
        out.basic.len(),
        out.aggregates.len(),
        pq.nominal()
    );
    let b = out.basic.last().unwrap();
    eprintln!(
        "{:?} {:?} {:?} {:?}",
        b.voltage_v, b.thd_v_pct, b.u2_pct, b.frequency_hz
    );
    eprintln!("{:?}", &b.harmonics_v[0][..8]);
    eprintln!("{:?}", &b.harmonics_i_a[0][..8]);
}

#[test]
fn debug_lattice() {
    let s = Signal::new(32000, 50.0, 230.0);
    let mut pq = smartmeter::dsp::pq::Pq::<f32>::new(cfg(32000)).unwrap();
    let mut out = Collect::default();
    for k in 0..40u64 {
        let x = s.samples(k * 1600, 1600);
        pq.feed(&x, T0_US + k as i64 * 50_000, &mut out);
        eprintln!(
            "{k} {:?} basic {} {:?}",
            pq.debug_state(),
            out.basic.len(),
            out.basic
                .last()
                .map(|b| (b.harmonics_v[0][0], b.thd_v_pct[0]))
        );
    }
}
