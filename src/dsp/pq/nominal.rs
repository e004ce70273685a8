//! Nominal values: fixed, or detected from the first second with a voltage.

use super::hooks::EstWin;
use super::record::NominalValues;
use super::sinks::FlickerSink;
use super::{DECLARED_VOLTAGES_V, Pq, PqSample, WARMUP_WINDOWS, events};

/// Nominal values: decided, or being measured over the first second.
#[derive(Debug, Clone, Copy)]
pub(super) struct NominalState {
    pub(super) decided: Option<NominalValues>,
    pub(super) auto_v: bool,
    pub(super) auto_f: bool,
    pub(super) fixed_v: f32,
    pub(super) fixed_f: u32,
    // first-second measurement
    pub(super) seconds: f64,
    pub(super) cycles: f64,
    pub(super) sync_seconds: f64,
    /// L1 voltages of the synchronised windows so far (the first [`FIRST_WINDOWS`]).
    pub(super) v: [f32; FIRST_WINDOWS],
    pub(super) v_n: u32,
}

/// Windows of the first second kept for the declared voltage: 5 at 50 and 60 Hz (10 and 12 cycles),
/// more only when a 10-min tick shortens one.
pub(super) const FIRST_WINDOWS: usize = 8;

/// The median of the (at most [`FIRST_WINDOWS`]) values, the mean of the middle two for an even
/// count; 0 for none. An insertion sort into a copy: for eight values the generic slice sort would
/// add 3.3 KB to the firmware image (CI: 1,039,732 against 1,036,408 B).
fn median(values: &[f32]) -> f64 {
    let mut sorted = [0.0f32; FIRST_WINDOWS];
    let mut n = 0usize;
    for &v in values.iter().take(FIRST_WINDOWS) {
        let pos = sorted
            .get(..n)
            .and_then(|s| s.iter().position(|x| x.total_cmp(&v).is_gt()))
            .unwrap_or(n);
        if let Some(tail) = sorted.get_mut(pos..=n) {
            tail.rotate_right(1);
        }
        if let Some(x) = sorted.get_mut(pos) {
            *x = v;
        }
        n += 1;
    }
    match (sorted.get(n.saturating_sub(1) / 2), sorted.get(n / 2)) {
        (Some(a), Some(b)) => (f64::from(*a) + f64::from(*b)) / 2.0,
        _ => 0.0,
    }
}

impl<S: PqSample, F: FlickerSink> Pq<S, F> {
    /// Measures the first second for auto nominal values.
    pub(super) fn measure_nominal(&mut self, w: &EstWin, duration_s: f64) {
        let n = &mut self.nominal;
        n.seconds += duration_s;
        if w.synchronised {
            n.cycles += f64::from(w.cycles);
            n.sync_seconds += duration_s;
            if let Some(slot) = n.v.get_mut(n.v_n as usize) {
                *slot = w.vrms_v.first().copied().unwrap_or(0.0);
                n.v_n += 1;
            }
        }
        if n.seconds < 1.0 {
            return;
        }
        // the median, not the mean: a dip or swell in this second must not move Udin to the next
        // declared value (a 150 ms dip to 50 % made 230 V read 220 V)
        let v = median(n.v.get(..n.v_n as usize).unwrap_or_default());
        if n.sync_seconds >= 0.5 && v >= 40.0 {
            let f = n.cycles / n.sync_seconds;
            let freq = if n.auto_f {
                if f >= 55.0 { 60 } else { 50 }
            } else {
                n.fixed_f
            };
            let volts = if n.auto_v {
                DECLARED_VOLTAGES_V.iter().copied().fold(0.0f32, |best, c| {
                    if (f64::from(c) - v).abs() < (f64::from(best) - v).abs() {
                        c
                    } else {
                        best
                    }
                })
            } else {
                n.fixed_v
            };
            self.decide(volts, freq);
        } else {
            // no voltage this second: try the next one (and report nothing of this one)
            self.early.clear();
            let n = &mut self.nominal;
            *n = NominalState {
                seconds: 0.0,
                cycles: 0.0,
                sync_seconds: 0.0,
                v: [0.0; FIRST_WINDOWS],
                v_n: 0,
                ..*n
            };
        }
    }

    pub(super) fn decide(&mut self, volts: f32, freq: u32) {
        let nominal = NominalValues {
            voltage_v: volts,
            frequency_hz: freq,
            voltage_auto: self.nominal.auto_v,
            frequency_auto: self.nominal.auto_f,
        };
        self.nominal.decided = Some(nominal);
        self.nominal.fixed_f = freq;
        if self.est.config().nominal_hz != freq {
            let _ = self.est.set_nominal_hz(freq);
            // the crossing detector re-tunes and every window opened so far has the old cycle
            // count (10 on a 60 Hz grid, with no spectrum): settle again as after the start
            self.warmup = 0;
            self.detector = None;
            // Urms(½) values keep waiting for the detector built after the settling windows (a
            // gap there would cut an event in two; while the estimator settles its values are
            // within 0.3 % of Udin instead of 0.02 %)
            self.retuning = true;
            // the 10-s frequency restarts too: crossings found by the detector tuned to the other
            // frequency, and those while its filters settle again, biased the first value by
            // 11-22 mHz on a 60 Hz grid (Class A allows 10)
            let f10 = &mut self.hooks.f10;
            (f10.cycles, f10.span, f10.run) = (0, 0.0, 0);
        }
        self.hooks.cycles_per_window = self.est.config().cycles_per_window;
        // events are detected once the crossing detector has settled
        if self.warmup >= WARMUP_WINDOWS {
            self.detector = Some(events::Detector::new(self.cfg.layout.phases(), volts, freq));
        }
        self.flicker.set_nominal(&nominal);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_of_odd_even_and_no_values() {
        assert_eq!(super::median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(&[230.0, 120.0, 231.0, 229.0]), 229.5);
        assert_eq!(
            super::median(&[5.0, 4.0, 3.0, 2.0, 1.0, 9.0, 8.0, 7.0]),
            4.5
        );
        assert_eq!(super::median(&[]), 0.0);
    }
}
