//! Driving the lattice along the estimator: opening its windows where the estimator opens
//! them, half cycles (Urms(½) and the events), and the spectrum of each completed window.

use super::lattice::{self, Accumulator, HalfSum, Source, Stop};
use super::record::VoltageEvent;
use super::sinks::{FlickerSink, PqSink};
use super::spectrum::Channel;
use super::tables::{self, M};
use super::{Pq, PqSample, events};
#[allow(unused_imports)] // inherent float methods shadow it with `std`
use num_traits::Float;

/// One Urms(½) value waiting for the nominal values (see [`Pq::half_cycle`]), 16 bytes: start in
/// frames after [`Early::base`], length in frames, volts per phase in [`EARLY_UNITS_PER_V`].
#[derive(Debug, Clone, Copy)]
pub(super) struct EarlyHalf {
    start: f32,
    frames: f32,
    urms: [u16; 3],
}

/// Urms(½) values kept while the nominal values are detected: 1.25 s at 60 Hz (the detection takes
/// 1.0–1.2 s of windows after the settling ones).
pub(super) const EARLY_HALVES: usize = 150;

/// Units per volt of a kept Urms(½) value: 1/32 V (0.014 % of 230 V; the detector's thresholds are
/// percent of Udin and its residual is reported to 0.2 %), up to 2048 V.
const EARLY_UNITS_PER_V: f32 = 32.0;

/// The kept values and the frame their starts count from.
#[derive(Debug, Clone, Default)]
pub(super) struct Early {
    base: f64,
    halves: heapless::Deque<EarlyHalf, EARLY_HALVES>,
}

impl Early {
    fn push(&mut self, start: f64, frames: f64, urms: &[f32; 3]) {
        if self.halves.is_empty() {
            self.base = start;
        }
        if self.halves.is_full() {
            self.halves.pop_front();
        }
        let _ = self.halves.push_back(EarlyHalf {
            start: (start - self.base) as f32,
            frames: frames as f32,
            // `as` saturates (and makes NaN 0): three soft-float operations on an FPU-less core
            urms: urms.map(|u| (u * EARLY_UNITS_PER_V + 0.5) as u16),
        });
    }

    /// The oldest kept value: start and length in frames, volts.
    fn pop(&mut self) -> Option<(f64, f64, [f32; 3])> {
        let h = self.halves.pop_front()?;
        Some((
            self.base + f64::from(h.start),
            f64::from(h.frames),
            h.urms.map(|u| f32::from(u) * (1.0 / EARLY_UNITS_PER_V)),
        ))
    }

    /// Forgets every kept value (a second without voltage: the detection starts again, and nothing
    /// of that second is reported).
    pub(super) fn clear(&mut self) {
        self.halves.clear();
    }
}

/// A lattice window's spectrum waiting for its estimator window.
#[derive(Debug, Clone)]
pub(super) struct Spectrum {
    pub(super) start: f64,
    pub(super) tolerance: f64,
    pub(super) flagged: bool,
    pub(super) v: [Channel; 3],
    pub(super) i: [Channel; 3],
    pub(super) cycles: u32,
}

impl<S: PqSample, F: FlickerSink> Pq<S, F> {
    /// Advances the lattice as far as the input allows.
    pub(super) fn run_lattice(&mut self, cur: &[[S; 6]], sink: &mut impl PqSink) {
        if self.profile_mask & 4 != 0 {
            return;
        }
        let nv = self.cfg.layout.phases();
        loop {
            let data_end = self.frames.origin + (self.frames.data.len() + cur.len()) as u64;
            if !self.lat.active && !self.start_window(data_end) {
                break;
            }
            // a window the estimator opens ahead ends the lattice's window there (unless only a
            // point or two are missing: it then completes just past the edge)
            let limit = match self.hooks.opened.front() {
                Some(o) if self.lat.total - self.lat.n > 2 => {
                    let f = o.start.max(0.0);
                    let i = f.floor();
                    (i as u64, ((f - i) * 4_294_967_296.0) as u32)
                }
                _ => (u64::MAX, 0),
            };
            let stop = {
                let src = Source {
                    hist: &self.frames.data,
                    hist_origin: self.frames.origin,
                    cur,
                };
                lattice::advance(&mut self.lat, &src, &self.kernel, nv, limit)
            };
            match stop {
                Stop::Input => break,
                Stop::Limit => {
                    // abandon the window (its spectrum would mix two estimator windows); the half
                    // cycle in progress is dropped: a cycle cut short by the re-sync would measure
                    // a fraction of a distorted wave (with 4 % H5 and 2 % H3 a 10 % "swell" came out
                    // of a steady 120 V grid when auto-detection re-tuned 50 → 60 Hz). The next
                    // value comes from the next window's first whole half cycle alone (an empty
                    // `prev_half`: exact for half-wave-symmetric waves), so that an event that ends
                    // across the re-sync is not held a cycle longer.
                    self.lat.active = false;
                    self.lat.half = lattice::HalfSums::default();
                    self.lat.half_points = 0;
                    self.lat.prev_half = Some(lattice::HalfSums::default());
                }
                Stop::Half => {
                    if self.profile_mask & 2 == 0 {
                        self.half_cycle(sink);
                    }
                    if self.lat.n >= self.lat.total {
                        self.window_done();
                        self.lat.active = false;
                    }
                }
            }
            self.pair(sink);
        }
        self.pair(sink);
    }

    /// Opens the next lattice window; false to wait for the estimator.
    pub(super) fn start_window(&mut self, data_end: u64) -> bool {
        let taps = self.kernel.taps() as f64;
        if self.lat.step == 0 {
            // very first window: at the first frame the taps can reach
            self.lat.seek(taps);
        }
        let pos = self.lat.position();
        let horizon = self.est.frames_processed() as f64;
        let tol = 0.1
            * if self.lat.period > 0.0 {
                self.lat.period
            } else {
                f64::from(self.cfg.rate_hz) / 50.0
            };
        // drop reports of windows the lattice has passed
        while let Some(o) = self.hooks.opened.front() {
            if o.start < pos - tol {
                self.hooks.opened.pop_front();
            } else {
                break;
            }
        }
        let period = if self.lat.period > 0.0 {
            self.lat.period
        } else {
            f64::from(self.cfg.rate_hz) / f64::from(self.nominal.fixed_f)
        };
        match self.hooks.opened.front().copied() {
            Some(o) if o.start <= pos + tol => {
                // the estimator opened a window here: adopt it
                self.adopt_opened(o);
                true
            }
            Some(o) => {
                // the next window opens later: fill the gap with whole cycles aimed at it (or
                // jump when it is less than half a cycle away)
                let k = ((o.start - pos) / period).round();
                if k < 1.0 {
                    self.adopt_opened(o);
                } else {
                    let k = k.min(tables::MAX_CYCLES as f64);
                    let end = o.start.min(pos + k * period);
                    self.lat.open(pos, k as u32, period, end);
                }
                true
            }
            None if horizon > pos + tol + self.est.decimation() as f64
                || data_end as f64 > pos + 0.5 * self.frames.capacity() as f64 =>
            {
                // nothing reported near here: the estimator's window is longer than predicted
                // (or it lost synchronisation); go on one cycle at a time
                self.lat.open(pos, 1, period, pos + period);
                true
            }
            None => false,
        }
    }

    /// Adopts the window the estimator opened at `o` (the front of the queue): the lattice seeks
    /// there and spans its cycles.
    fn adopt_opened(&mut self, o: super::hooks::Opened) {
        self.hooks.opened.pop_front();
        self.lat.seek(o.start);
        self.lat.open(
            o.start,
            o.cycles,
            o.period,
            o.start + f64::from(o.cycles) * o.period,
        );
    }

    /// A half cycle of the lattice ended: Urms(½), events, flags.
    ///
    /// Before the nominal values are decided (auto-detection, the first second after the settling
    /// windows) the values wait in [`Pq::early`]; the detector built at the decision takes them
    /// first, so an event in that second is reported with its own start and duration.
    pub(super) fn half_cycle(&mut self, sink: &mut impl PqSink) {
        let nv = self.cfg.layout.phases();
        let mut cur = self.lat.half;
        cur.n = if self.lat.half_points > 0 {
            self.lat.half_points
        } else {
            (M / 2) as u32
        };
        self.lat.half = lattice::HalfSums::default();
        let start = self.lat.half_start;
        let now = self.lat.position();
        self.lat.half_start = now;
        let prev = self.lat.prev_half.replace(cur);
        let early = self.detector.is_none()
            && (self.retuning
                || self.nominal.decided.is_none() && self.warmup >= super::WARMUP_WINDOWS);
        let Some(prev) = prev else {
            return;
        };
        if self.detector.is_none() && !early {
            return;
        }
        let mut urms = [0.0f32; 3];
        let cal = *self.est.calibration();
        for (p, u) in urms.iter_mut().enumerate().take(nv) {
            let s1 = prev.s1.phase_f32(&cur.s1, p);
            let s2 = prev.s2.phase_f32(&cur.s2, p);
            let base = S::UNIT.map_or(cal.front_end().volts_per_code, |u| u.0) as f32;
            // lattice values are half units
            let k = 2.0 * base;
            let ph = cal.phases().get(p).copied().unwrap_or_default();
            let o = ph.voltage_offset_v;
            let n = (prev.n + cur.n).max(1) as f32;
            let ms = (k * k * s2 - 2.0 * o * k * s1) / n + o * o;
            *u = ph.voltage_gain * ms.max(0.0).sqrt();
        }
        if early {
            self.early.push(start, now - start, &urms);
            return;
        }
        while let Some((s0, n0, u0)) = self.early.pop() {
            self.detect(s0, n0, &u0, sink);
        }
        self.detect(start, now - start, &urms, sink);
    }

    /// One Urms(½) value through the detector; ended events to `sink` and the queue.
    fn detect(&mut self, start: f64, frames: f64, urms: &[f32; 3], sink: &mut impl PqSink) {
        let Some(det) = self.detector.as_mut() else {
            return;
        };
        let mut out = heapless::Vec::<events::RawEvent, 4>::new();
        det.push(start, frames, urms, &mut |e| {
            let _ = out.push(e);
        });
        self.lat.flagged |= det.in_progress();
        let nominal_v = self.nominal.decided.map_or(0.0, |n| n.voltage_v);
        for e in out {
            let ev = VoltageEvent {
                kind: e.kind,
                phases: [0, 1, 2].map(|p| e.phases & (1 << p) != 0),
                start_unix_s: self.hooks.clock.us_at(e.start_frame) * 1e-6,
                duration_s: (e.end_frame - e.start_frame) / f64::from(self.cfg.rate_hz),
                extreme_v: e.extreme_v,
                reference_v: nominal_v,
                delta_max_v: e.delta_max_v,
                delta_steady_v: e.delta_steady_v,
            };
            sink.event(&ev);
            if self.events.is_full() {
                self.events.pop_front();
                self.events_dropped += 1;
            }
            let _ = self.events.push_back(ev);
        }
    }

    /// The lattice completed a window: its spectrum, waiting for the estimator's window.
    pub(super) fn window_done(&mut self) {
        if self.profile_mask & 1 != 0 {
            self.spectrum = None;
            return;
        }
        let nph = self.cfg.layout.phases();
        let currents = self.cfg.layout.currents();
        let c = self.lat.cycles as usize;
        let both = self.lat.folds.spectra(nph, currents, c);
        let v = both.map(|(v, _)| v);
        let i = both.map(|(_, i)| i);
        self.spectrum = Some(Spectrum {
            start: self.lat.start,
            tolerance: 0.1 * self.lat.period,
            flagged: self.lat.flagged,
            v,
            i,
            cycles: self.lat.cycles,
        });
    }
}
