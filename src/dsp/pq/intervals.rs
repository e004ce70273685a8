//! Basic intervals (an estimator window paired with its lattice spectrum) and their aggregation
//! into 3-s, 10-min and 2-h records.

use super::aggregate::Acc;
use super::hooks::EstWin;
use super::record::{Interval, MIN_FUNDAMENTAL_A, MIN_FUNDAMENTAL_V, PqRecord, thd_pct};
use super::sinks::{FlickerSink, PqSink};
use super::sync::Spectrum;
use super::{Pq, PqSample, WARMUP_WINDOWS, events};
#[allow(unused_imports)] // inherent float methods shadow it with `std`
use num_traits::Float;

impl<S: PqSample, F: FlickerSink> Pq<S, F> {
    /// Pairs estimator windows with lattice spectra into basic intervals.
    pub(super) fn pair(&mut self, sink: &mut impl PqSink) {
        loop {
            let Some(w) = self.hooks.windows.front().copied() else {
                return;
            };
            let spec = match &self.spectrum {
                Some(s) if (s.start - w.start).abs() <= s.tolerance.max(1.0) => {
                    self.spectrum.take()
                }
                Some(s) if s.start > w.start => None,
                Some(_) => {
                    // a spectrum of a window the estimator never closed
                    self.spectrum = None;
                    continue;
                }
                None => {
                    // the lattice has not finished this window yet (or skipped it)
                    let pos = self.lat.position();
                    if pos < w.end + 0.2 * (w.end - w.start) {
                        return;
                    }
                    None
                }
            };
            self.hooks.windows.pop_front();
            self.basic(&w, spec.as_ref(), sink);
        }
    }

    /// One basic interval.
    pub(super) fn basic(&mut self, w: &EstWin, spec: Option<&Spectrum>, sink: &mut impl PqSink) {
        let duration_s = (w.end - w.start) / f64::from(self.cfg.rate_hz);
        if self.warmup < WARMUP_WINDOWS {
            // nothing is reported before the detector has settled on the first crossings
            if w.synchronised {
                self.warmup += 1;
            }
            if self.warmup >= WARMUP_WINDOWS
                && let Some(n) = self.nominal.decided
            {
                {
                    self.detector = Some(events::Detector::new(
                        self.cfg.layout.phases(),
                        n.voltage_v,
                        n.frequency_hz,
                    ));
                    self.retuning = false;
                }
            }
            return;
        }
        let Some(nominal) = self.nominal.decided else {
            self.measure_nominal(w, duration_s);
            return;
        };
        let nph = self.cfg.layout.phases();
        let mut r = PqRecord::empty(nominal);
        r.start_unix_s = self.hooks.clock.us_at(w.start) * 1e-6;
        r.end_unix_s = self.hooks.clock.us_at(w.end) * 1e-6;
        r.synchronised = w.synchronised;
        r.frequency_hz = self.hooks.f10.value;
        for p in 0..nph {
            if let (Some(a), Some(b), Some(c), Some(v)) = (
                r.voltage_v.get_mut(p),
                r.voltage_min_v.get_mut(p),
                r.voltage_max_v.get_mut(p),
                w.vrms_v.get(p),
            ) {
                (*a, *b, *c) = (*v, *v, *v);
            }
        }
        if let Some(s) = spec {
            r.flagged = s.flagged;
            let c = s.cycles.max(1) as f32;
            let mut phasors = [(0.0f32, 0.0f32); 3];
            for p in 0..nph {
                let kv = 2.0 * self.volts_per_unit(p) as f32;
                let ki = 2.0 * self.amps_per_unit(p) as f32;
                // H_rms = √(2G)·(2k)/C for G in (DFT/M)² units of half-units
                let (Some(cv), Some(ci), Some(hv), Some(hi)) = (
                    s.v.get(p),
                    s.i.get(p),
                    r.harmonics_v.get_mut(p),
                    r.harmonics_i_a.get_mut(p),
                ) else {
                    continue;
                };
                let kv2 = 2.0 * (kv / c) * (kv / c);
                let ki2 = 2.0 * (ki / c) * (ki / c);
                for (h, g) in hv.iter_mut().zip(&cv.power) {
                    *h = (g * kv2).sqrt();
                }
                if self.cfg.layout.currents() {
                    for (h, g) in hi.iter_mut().zip(&ci.power) {
                        *h = (g * ki2).sqrt();
                    }
                }
                if let Some(ph) = phasors.get_mut(p) {
                    *ph = (cv.phasor.0 * kv, cv.phasor.1 * kv);
                }
            }
            r.thd_v_pct = thd_pct(&r.harmonics_v, MIN_FUNDAMENTAL_V);
            if self.cfg.layout.currents() {
                r.thd_i_pct = thd_pct(&r.harmonics_i_a, MIN_FUNDAMENTAL_A);
            }
            if nph == 3 {
                (r.u0_pct, r.u2_pct) = unbalance(&phasors);
            }
        } else {
            r.flagged = self
                .detector
                .as_ref()
                .is_some_and(events::Detector::in_progress);
        }
        self.emit(Interval::Basic, r.clone(), sink);
        self.aggregate(r, w, sink);
    }

    pub(super) fn emit(&mut self, interval: Interval, mut r: PqRecord, sink: &mut impl PqSink) {
        let k = interval.index();
        if let Some(s) = self.sequence.get_mut(k) {
            r.sequence = *s;
            *s += 1;
        }
        r.interval = interval;
        if interval == Interval::Basic {
            sink.basic(&r);
        } else {
            sink.aggregate(&r);
        }
        if let Some(slot) = self.last.get_mut(k) {
            *slot = Some(r);
        }
    }

    /// Adds a basic interval to the 3-s, 10-min (and, at its end, 2-h) aggregations.
    pub(super) fn aggregate(&mut self, r: PqRecord, w: &EstWin, sink: &mut impl PqSink) {
        let start_us = self.hooks.clock.us_at(w.start);
        let period_us = if w.cycles > 0 {
            (w.end - w.start) / f64::from(w.cycles) * 1e6 / f64::from(self.cfg.rate_hz)
        } else {
            20_000.0
        };
        // the 10-min tick: the window starting at (or within half a cycle before) it opens the
        // next interval
        let tick = *self
            .tick10_us
            .get_or_insert_with(|| ((start_us as i64).div_euclid(600_000_000) + 1) * 600_000_000);
        if start_us >= tick as f64 - 0.5 * period_us {
            if let Some(a) = self.acc3s.take(Interval::ThreeSecond, false) {
                self.emit(Interval::ThreeSecond, a, sink);
            }
            self.close_ten_minutes(tick, sink);
            let next = ((start_us + 0.5 * period_us) as i64).div_euclid(600_000_000) + 1;
            self.tick10_us = Some(next * 600_000_000);
            self.acc10_aligned = (start_us - tick as f64).abs() < 1e6;
        }
        self.acc3s.add(&r);
        self.acc10.add(&r);
        if self.acc3s.count >= 15
            && let Some(a) = self.acc3s.take(Interval::ThreeSecond, false)
        {
            self.emit(Interval::ThreeSecond, a, sink);
        }
    }

    pub(super) fn close_ten_minutes(&mut self, tick_us: i64, sink: &mut impl PqSink) {
        let nph = self.cfg.layout.phases();
        let mut pst = [None; 3];
        for (p, x) in pst.iter_mut().enumerate().take(nph) {
            *x = self.flicker.take_pst(p);
        }
        self.acc10.set_pst(pst);
        let aligned = self.acc10_aligned;
        let Some(rec) = self.acc10.take(Interval::TenMinute, false) else {
            return;
        };
        // a 10-min interval is complete when it began on a tick and covers (nearly) 600 s
        if !(aligned && rec.end_unix_s - rec.start_unix_s >= 599.0) {
            self.acc2h = Acc::default();
            self.acc2h_slot = None;
            return;
        }
        let slot = (tick_us - 1).div_euclid(7_200_000_000);
        if self.acc2h_slot != Some(slot) {
            self.acc2h = Acc::default();
            self.acc2h_slot = Some(slot);
        }
        self.acc2h.add(&rec);
        self.emit(Interval::TenMinute, rec, sink);
        if tick_us.rem_euclid(7_200_000_000) == 0 {
            let complete = self.acc2h.count == 12;
            if let Some(r) = self.acc2h.take(Interval::TwoHour, true)
                && complete
            {
                self.emit(Interval::TwoHour, r, sink);
            }
            self.acc2h_slot = None;
        }
    }
}

/// `(u0, u2)` in percent from the three fundamental phasors.
fn unbalance(v: &[(f32, f32); 3]) -> (Option<f32>, Option<f32>) {
    // a = e^{j120°}
    let (c, s) = (-0.5f32, 0.866_025_4f32);
    let rot = |z: (f32, f32), k: u32| -> (f32, f32) {
        let mut z = z;
        for _ in 0..k {
            z = (z.0 * c - z.1 * s, z.0 * s + z.1 * c);
        }
        z
    };
    let [v1, v2, v3] = *v;
    let add3 = |a: (f32, f32), b: (f32, f32), d: (f32, f32)| (a.0 + b.0 + d.0, a.1 + b.1 + d.1);
    let u0 = add3(v1, v2, v3);
    let u1 = add3(v1, rot(v2, 1), rot(v3, 2));
    let u2 = add3(v1, rot(v2, 2), rot(v3, 1));
    let m = |z: (f32, f32)| (z.0 * z.0 + z.1 * z.1).sqrt();
    let m1 = m(u1);
    if m1 <= 0.0 || !m1.is_finite() {
        return (None, None);
    }
    (Some(100.0 * m(u0) / m1), Some(100.0 * m(u2) / m1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbalance_of_balanced_and_single_phase_loss() {
        let a = |deg: f32| {
            let r = deg.to_radians();
            (230.0 * r.cos(), 230.0 * r.sin())
        };
        let (u0, u2) = unbalance(&[a(0.0), a(-120.0), a(120.0)]);
        assert!(u0.unwrap() < 1e-4 && u2.unwrap() < 1e-4);
        let (u0, u2) = unbalance(&[a(0.0), a(-120.0), (0.0, 0.0)]);
        assert!((u0.unwrap() - 50.0).abs() < 1e-3 && (u2.unwrap() - 50.0).abs() < 1e-3);
        assert_eq!(unbalance(&[(0.0, 0.0); 3]), (None, None));
    }
}
