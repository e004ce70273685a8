//! What happens at a crossing, a timeout or a loss of synchronisation: windows close, half
//! cycles end (one-cycle RMS), the period estimate and the 10-s frequency are updated.

use super::detector::EdgeEvent;
use super::sums::Sums;
use super::{Estimator, Observer, PhaseMode, Sample};
#[allow(unused_imports)] // inherent float methods shadow it with `std`
use num_traits::Float;

impl<S: Sample> Estimator<S> {
    pub(super) fn handle_event<F: Observer>(&mut self, ev: EdgeEvent, t: f64, cb: &mut F) {
        let rate = f64::from(self.cfg.rate_hz);
        match ev {
            EdgeEvent::Rising if !self.synced => {
                cb.rising_crossing(t, false);
                self.close_window(t, None, 0, false, cb);
                self.synced = true;
                self.cycles = 0;
                self.last_rise = t;
                self.half_prev = None;
                self.amp = self.peak;
                self.peak = 0.0;
                self.f10_start = Some(t);
                self.f10_cycles = 0;
            }
            EdgeEvent::Rising => {
                cb.rising_crossing(t, true);
                let period = t - self.last_rise;
                let nominal = rate / f64::from(self.cfg.nominal_hz);
                if period > 0.5 * nominal && period < 2.0 * nominal {
                    let p = if self.cycles == 0 && self.windows_synced_in_row() == 0 {
                        period
                    } else {
                        self.period_est + 0.5 * (period - self.period_est)
                    };
                    self.set_period(p);
                }
                self.half_event();
                self.cycles += 1;
                self.last_rise = t;
                self.amp = self.peak;
                self.peak = 0.0;
                if let Some(start) = self.f10_start {
                    self.f10_cycles += 1;
                    if t - start >= 10.0 * rate {
                        self.f10 = Some((f64::from(self.f10_cycles) * rate / (t - start)) as f32);
                        self.f10_start = Some(t);
                        self.f10_cycles = 0;
                    }
                }
                if self.cycles >= self.win_cycles {
                    let len = t - self.win_start;
                    let freq = (len > 0.0).then(|| (f64::from(self.cycles) * rate / len) as f32);
                    let cycles = self.cycles;
                    if len > 0.5 * nominal * f64::from(cycles)
                        && len < 2.0 * nominal * f64::from(cycles)
                    {
                        self.set_period(len / f64::from(cycles));
                    }
                    self.close_window(t, freq, cycles, true, cb);
                    self.cycles = 0;
                }
            }
            EdgeEvent::Falling => self.half_event(),
            EdgeEvent::Timeout => {
                self.close_window(t, None, 0, false, cb);
                self.win_timeout = t + self.nominal_len;
            }
            EdgeEvent::LostSync => {
                self.close_window(t, None, 0, false, cb);
                self.synced = false;
                self.win_timeout = t + self.nominal_len;
                self.amp = 0.0;
                self.peak = 0.0;
                self.armed_rise = false;
                self.armed_fall = false;
                self.half_prev = None;
                self.f10_start = None;
                self.f10 = None;
                self.set_period(rate / f64::from(self.cfg.nominal_hz));
            }
        }
    }

    pub(super) fn windows_synced_in_row(&self) -> u64 {
        u64::from(self.last.is_some_and(|w| w.synchronised))
    }

    /// Ends a half cycle: updates the one-cycle RMS, moves the half sums into the window.
    pub(super) fn half_event(&mut self) {
        let cur: [[f64; 3]; 3] = core::array::from_fn(|p| {
            let k = 2 * p;
            [
                self.half.s1.get(k).copied().unwrap_or(0.0),
                self.half.s2.get(k).copied().unwrap_or(0.0),
                self.half.w,
            ]
        });
        if let Some(prev) = self.half_prev {
            let nph = if self.cfg.phases == PhaseMode::Single {
                1
            } else {
                3
            };
            for (p, ((a, b), ph)) in prev
                .iter()
                .zip(&cur)
                .zip(self.cal.phases())
                .enumerate()
                .take(nph)
            {
                let s1 = a[0] + b[0];
                let s2 = a[1] + b[1];
                let w = a[2] + b[2];
                if w <= 0.0 {
                    continue;
                }
                let o = f64::from(ph.voltage_offset_v);
                let ms = (s2 - 2.0 * o * s1 + o * o * w) / w;
                let v = (f64::from(ph.voltage_gain) * ms.max(0.0).sqrt()) as f32;
                if let Some(x) = self.hc.last_v.get_mut(p) {
                    *x = Some(v);
                }
                if let Some(x) = self.hc.min_v.get_mut(p) {
                    *x = Some(x.map_or(v, |m| m.min(v)));
                }
                if let Some(x) = self.hc.max_v.get_mut(p) {
                    *x = Some(x.map_or(v, |m| m.max(v)));
                }
            }
        }
        self.half_prev = Some(cur);
        let h = self.half;
        self.win.merge(&h);
        self.half = Sums::default();
    }

    pub(super) fn close_window<F: Observer>(
        &mut self,
        t_end: f64,
        frequency_hz: Option<f32>,
        cycles: u32,
        synchronised: bool,
        cb: &mut F,
    ) {
        let h = self.half;
        self.win.merge(&h);
        self.half = Sums::default();
        let start = self.win_start;
        self.win_start = t_end;
        let sums = self.win;
        self.win = Sums::default();
        let full = self.cfg.cycles_per_window;
        self.win_cycles = cb
            .next_window_cycles(t_end, self.period_est)
            .map_or(full, |k| k.clamp(1, full));
        if sums.w <= 0.0 || t_end <= start {
            return;
        }
        let rate = f64::from(self.cfg.rate_hz);
        let f_hz = frequency_hz.map_or(f64::from(self.cfg.nominal_hz), f64::from);
        let mut w = self.measure(&sums, f_hz);
        for m in &mut w.phases {
            m.sanitise();
        }
        for lv in &mut w.line_voltage_v {
            *lv = lv.filter(|x| x.is_finite());
        }
        w.frequency_hz = frequency_hz;
        w.duration_s = (t_end - start) / rate;
        w.start_sample = start;
        w.end_sample = t_end;
        w.samples = (t_end - start).round() as u32;
        w.cycles = cycles;
        w.synchronised = synchronised;
        w.sequence = self.windows;
        self.windows += 1;
        self.last = Some(w);
        cb.window(&w);
    }
}
