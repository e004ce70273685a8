//! Aggregation of basic intervals (IEC 61000-4-30 Ed.3 §4.5): 150/180 cycles, 10 min aligned to the
//! clock, 2 h = 12 × 10 min. RMS quantities (voltage, harmonic subgroups, unbalance) aggregate as the
//! root mean square of their basic values, min/max are those of the basic values, THD is taken from
//! the aggregated subgroups, and an interval is flagged when any of its basic intervals was.

use super::spectrum::HARMONICS;
use super::{Interval, MIN_FUNDAMENTAL_A, MIN_FUNDAMENTAL_V, NominalValues, PqRecord, thd_pct};
#[allow(unused_imports)] // inherent f32 methods shadow it with `std`
use num_traits::Float;

/// Sums of one aggregation interval in progress.
#[derive(Debug, Clone)]
pub(super) struct Acc {
    pub count: u32,
    /// Start, nominal values and frequency of the first record (the rest is aggregated).
    first: Option<(f64, NominalValues)>,
    /// The last 10-s frequency seen.
    frequency_hz: Option<f32>,
    end_unix_s: f64,
    flagged: bool,
    synchronised: bool,
    v2: [f32; 3],
    vmin: [f32; 3],
    vmax: [f32; 3],
    u0: (f32, u32),
    u2: (f32, u32),
    hv2: [[f32; HARMONICS]; 3],
    hi2: [[f32; HARMONICS]; 3],
    pst: [Option<f32>; 3],
    pst3: [(f32, u32); 3],
}

impl Default for Acc {
    fn default() -> Self {
        Self {
            count: 0,
            first: None,
            frequency_hz: None,
            end_unix_s: 0.0,
            flagged: false,
            synchronised: true,
            v2: [0.0; 3],
            vmin: [f32::INFINITY; 3],
            vmax: [f32::NEG_INFINITY; 3],
            u0: (0.0, 0),
            u2: (0.0, 0),
            hv2: [[0.0; HARMONICS]; 3],
            hi2: [[0.0; HARMONICS]; 3],
            pst: [None; 3],
            pst3: [(0.0, 0); 3],
        }
    }
}

fn add_sq(acc: &mut [[f32; HARMONICS]; 3], h: &[[f32; HARMONICS]; 3]) {
    for (a, x) in acc.iter_mut().zip(h) {
        for (s, v) in a.iter_mut().zip(x) {
            *s += v * v;
        }
    }
}

impl Acc {
    /// Adds one record (a basic interval, or a 10-min record for the 2-h interval).
    pub(super) fn add(&mut self, r: &PqRecord) {
        if self.first.is_none() {
            self.first = Some((r.start_unix_s, r.nominal));
        }
        self.frequency_hz = r.frequency_hz;
        self.count += 1;
        self.end_unix_s = r.end_unix_s;
        self.flagged |= r.flagged;
        self.synchronised &= r.synchronised;
        for p in 0..3 {
            if let (Some(s), Some(v)) = (self.v2.get_mut(p), r.voltage_v.get(p)) {
                *s += v * v;
            }
            if let (Some(m), Some(v)) = (self.vmin.get_mut(p), r.voltage_min_v.get(p)) {
                *m = m.min(*v);
            }
            if let (Some(m), Some(v)) = (self.vmax.get_mut(p), r.voltage_max_v.get(p)) {
                *m = m.max(*v);
            }
            if let (Some(a), Some(Some(x))) = (self.pst3.get_mut(p), r.pst.get(p)) {
                a.0 += x * x * x;
                a.1 += 1;
            }
        }
        if let Some(u) = r.u0_pct {
            self.u0.0 += u * u;
            self.u0.1 += 1;
        }
        if let Some(u) = r.u2_pct {
            self.u2.0 += u * u;
            self.u2.1 += 1;
        }
        add_sq(&mut self.hv2, &r.harmonics_v);
        add_sq(&mut self.hi2, &r.harmonics_i_a);
    }

    /// Sets the flicker severity of the interval (10-min records).
    pub(super) fn set_pst(&mut self, pst: [Option<f32>; 3]) {
        self.pst = pst;
    }

    /// The aggregate, if anything was added; resets the sums.
    pub(super) fn take(&mut self, interval: Interval, plt: bool) -> Option<PqRecord> {
        let acc = core::mem::take(self);
        let (start, nominal) = acc.first?;
        let mut r = PqRecord::empty(nominal);
        r.start_unix_s = start;
        r.frequency_hz = acc.frequency_hz;
        let n = acc.count.max(1) as f32;
        r.interval = interval;
        r.end_unix_s = acc.end_unix_s;
        r.flagged = acc.flagged;
        r.synchronised = acc.synchronised;
        r.windows = acc.count;
        r.voltage_v = acc.v2.map(|s| (s / n).sqrt());
        r.voltage_min_v = acc.vmin;
        r.voltage_max_v = acc.vmax;
        let rms = |(s, k): (f32, u32)| (k > 0).then(|| (s / k as f32).sqrt());
        r.u0_pct = rms(acc.u0);
        r.u2_pct = rms(acc.u2);
        for (dst, src) in r.harmonics_v.iter_mut().zip(&acc.hv2) {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = (s / n).sqrt();
            }
        }
        for (dst, src) in r.harmonics_i_a.iter_mut().zip(&acc.hi2) {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = (s / n).sqrt();
            }
        }
        r.thd_v_pct = thd_pct(&r.harmonics_v, MIN_FUNDAMENTAL_V);
        r.thd_i_pct = thd_pct(&r.harmonics_i_a, MIN_FUNDAMENTAL_A);
        r.pst = acc.pst;
        r.plt = if plt {
            acc.pst3.map(|(s, k)| (k == 12).then(|| (s / 12.0).cbrt()))
        } else {
            [None; 3]
        };
        Some(r)
    }
}
