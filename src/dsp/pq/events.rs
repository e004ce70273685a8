//! Voltage events from the Urms(½) values (IEC 61000-4-30 Ed.3 §5.4, 5.5, 5.11 with the thresholds
//! of docs/protocol.md §11): dips, swells, interruptions and rapid voltage changes, polyphase.
//!
//! Times are in frames (the lattice's clock); the pipeline turns them into wall-clock seconds.
//! * Dip: starts when any phase's Urms(½) < 90 % of Udin, ends when all are ≥ 92 %. Swell: > 110 %,
//!   ends when all ≤ 108 %. Interruption: all < 5 %, ends when any ≥ 7 %.
//! * A dip during which an interruption occurred is reported once, as an interruption spanning the
//!   whole dip (start of the dip to its end), extreme = the lowest Urms(½).
//! * Start = when the one-cycle RMS crossed the threshold: interpolated on the squares between the
//!   last value before and the first value across (a one-cycle RMS² changes linearly across a
//!   step), and referred to the centre of its cycle; end likewise (the last phase to recover);
//!   `phases` = the phases that crossed the threshold during the event; `extreme` = lowest (dip,
//!   interruption) or highest (swell) Urms(½) over those phases.
//! * RVC: after a steady state (all of the last 100/120 Urms(½) values of every phase within ±5 %
//!   of Udin of their mean), a value that departs from that mean by more than 5 % starts an RVC; it
//!   ends when every phase is steady again with the hysteresis (within ±2.5 %), at the first of
//!   those 100/120 values. `deltaMax` = largest |Urms(½) − mean before|, `deltaSteady` = largest
//!   |mean after − mean before|. An RVC during which a dip or swell threshold was crossed is
//!   dropped.

/// What kind of voltage event (the measurement; the protocol's `type` key, which carries the RVC
/// deltas, is [`wire::pq::EventKind`](crate::wire::pq::EventKind)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum VoltageEventKind {
    /// Voltage dip (sag).
    Dip,
    /// Voltage swell.
    Swell,
    /// Voltage interruption (possibly preceded and followed by a dip: one event).
    Interruption,
    /// Rapid voltage change.
    Rvc,
}

/// An event in frame time (the pipeline converts it to [`VoltageEvent`](super::VoltageEvent)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RawEvent {
    pub kind: VoltageEventKind,
    /// Bit `p` set: phase `p` (0-based) took part.
    pub phases: u8,
    pub start_frame: f64,
    pub end_frame: f64,
    pub extreme_v: f32,
    pub delta_max_v: Option<f32>,
    pub delta_steady_v: Option<f32>,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    start: f64,
    /// The start waits for the next value to be placed on its ramp.
    start_ramp: Option<Ramp>,
    phases: u8,
    extreme: f32,
    interruption: bool,
}

/// A threshold crossing between the values `a` (cycle centred at `t1`) and `b` (at `t2`) of
/// `phase`. An abrupt step moves a one-cycle RMS² along a straight ramp one cycle long, sampled
/// every half cycle; with the next value `c` the ramp's slope is known (the steeper of `a→b` and
/// `b→c`) and the crossing is placed on it.
#[derive(Debug, Clone, Copy)]
struct Ramp {
    t1: f64,
    a: f32,
    t2: f64,
    b: f32,
    th: f32,
    phase: usize,
}

impl Ramp {
    fn refine(&self, c: f32) -> f64 {
        let sq = |x: f32| f64::from(x) * f64::from(x);
        let (a, b, c, th) = (sq(self.a), sq(self.b), sq(c), sq(self.th));
        let (slope, rest) = if a > b {
            ((a - b).max(b - c), th - b)
        } else {
            ((b - a).max(c - b), b - th)
        };
        if slope.is_nan() || slope <= 0.0 {
            return self.t2;
        }
        let k = (rest / slope).clamp(0.0, 1.0);
        self.t2 - k * (self.t2 - self.t1)
    }
}

/// Capacity of the RVC history (120 half cycles = 1 s at 60 Hz).
const RVC_MAX: usize = 120;

#[derive(Debug, Clone, Copy)]
enum RvcState {
    /// Waiting for a steady state (after start-up, a dropped RVC or a dip/swell).
    Settling,
    Steady,
    Event {
        start: f64,
        mean_before: [f32; 3],
        delta_max: f32,
        extreme: f32,
        phases: u8,
        dropped: bool,
    },
}

/// The detector for up to three phases.
#[derive(Debug, Clone)]
pub(super) struct Detector {
    phases: usize,
    udin_v: f32,
    dip: Option<Open>,
    swell: Option<Open>,
    interruption: bool,
    // RVC: per phase ring of Urms(½) in millivolts
    ring: [[u32; RVC_MAX]; 3],
    sum_mv: [u64; 3],
    len: usize,
    pos: usize,
    window: usize,
    rvc: RvcState,
    /// The previous Urms(½) values and the centre of their cycle.
    prev: Option<([f32; 3], f64)>,
    /// Ended dips and swells waiting for the next value to place their end.
    ending: heapless::Vec<(RawEvent, Ramp), 2>,
}

/// When a one-cycle RMS going from `v1` (at `t1`) to `v2` (at `t2`) crossed `th`, interpolated on
/// the squares.
fn crossing(t1: f64, v1: f32, t2: f64, v2: f32, th: f32) -> f64 {
    let (a, b, c) = (
        f64::from(v1) * f64::from(v1),
        f64::from(v2) * f64::from(v2),
        f64::from(th) * f64::from(th),
    );
    if (b - a).abs() < 1e-12 {
        return t2;
    }
    let k = ((c - a) / (b - a)).clamp(0.0, 1.0);
    t1 + k * (t2 - t1)
}

impl Detector {
    pub(super) fn new(phases: usize, udin_v: f32, nominal_hz: u32) -> Self {
        Self {
            phases: phases.clamp(1, 3),
            udin_v,
            dip: None,
            swell: None,
            interruption: false,
            ring: [[0; RVC_MAX]; 3],
            sum_mv: [0; 3],
            len: 0,
            pos: 0,
            window: if nominal_hz == 60 { 120 } else { 100 },
            rvc: RvcState::Settling,
            prev: None,
            ending: heapless::Vec::new(),
        }
    }

    /// A dip, swell or interruption is in progress (the aggregation `flagged` condition).
    pub(super) fn in_progress(&self) -> bool {
        self.dip.is_some() || self.swell.is_some() || self.interruption || !self.ending.is_empty()
    }

    /// One Urms(½) value per phase, for the half cycle that starts at `start` (frames);
    /// `half_frames` is the half-cycle length. Ended events go to `out`.
    pub(super) fn push(
        &mut self,
        start: f64,
        half_frames: f64,
        urms_v: &[f32; 3],
        out: &mut impl FnMut(RawEvent),
    ) {
        let u = self.udin_v;
        let n = self.phases;
        let v = |p: usize| urms_v.get(p).copied().unwrap_or(0.0);
        let mask_where = |f: &dyn Fn(f32) -> bool| -> u8 {
            (0..n).filter(|&p| f(v(p))).fold(0u8, |m, p| m | (1 << p))
        };
        let all = (1u8 << n) - 1;
        let prev = self.prev.replace((*urms_v, start));
        // events that ended at the previous value: place the end on its ramp
        for (mut e, ramp) in core::mem::take(&mut self.ending) {
            e.end_frame = ramp.refine(v(ramp.phase)).max(e.start_frame);
            out(e);
        }
        // the crossing of `th` between the previous value and this one: of the phases in
        // `mask`, the earliest (starts) or the latest (ends), as a ramp to refine
        let ramp = |mask: u8, th: f32, latest: bool| -> Option<Ramp> {
            let (pv, pt) = prev?;
            let mut best: Option<(f64, Ramp)> = None;
            for p in 0..n {
                if mask & (1 << p) != 0 {
                    let a = pv.get(p).copied().unwrap_or(0.0);
                    let t = crossing(pt, a, start, v(p), th);
                    let r = Ramp {
                        t1: pt,
                        a,
                        t2: start,
                        b: v(p),
                        th,
                        phase: p,
                    };
                    best = match best {
                        Some((bt, _)) if (latest && bt >= t) || (!latest && bt <= t) => best,
                        _ => Some((t, r)),
                    };
                }
            }
            best.map(|(_, r)| r)
        };
        let was = |p: usize, f: &dyn Fn(f32) -> bool| -> bool {
            prev.is_some_and(|(pv, _)| f(pv.get(p).copied().unwrap_or(0.0)))
        };
        // refine starts from the previous value
        for o in [&mut self.dip, &mut self.swell].into_iter().flatten() {
            if let Some(r) = o.start_ramp.take() {
                o.start = r.refine(v(r.phase));
            }
        }
        // dips (and interruptions inside them)
        let below = mask_where(&|x| x < 0.90 * u);
        if self.dip.is_none() && below != 0 {
            let r = ramp(below, 0.90 * u, false);
            self.dip = Some(Open {
                start: r.map_or(start, |r| crossing(r.t1, r.a, r.t2, r.b, r.th)),
                start_ramp: r,
                phases: below,
                extreme: f32::INFINITY,
                interruption: false,
            });
        }
        let int_now = mask_where(&|x| x < 0.05 * u) == all;
        if !self.interruption && int_now {
            self.interruption = true;
        } else if self.interruption && mask_where(&|x| x >= 0.07 * u) != 0 {
            self.interruption = false;
        }
        if let Some(d) = &mut self.dip {
            d.phases |= below;
            d.interruption |= self.interruption;
            for p in 0..n {
                if d.phases & (1 << p) != 0 {
                    d.extreme = d.extreme.min(v(p));
                }
            }
            if !self.interruption && mask_where(&|x| x >= 0.92 * u) == all {
                let d = *d;
                self.dip = None;
                let late = (0..n)
                    .filter(|&p| was(p, &|x| x < 0.92 * u))
                    .fold(0u8, |m, p| m | (1 << p));
                let e = RawEvent {
                    kind: if d.interruption {
                        VoltageEventKind::Interruption
                    } else {
                        VoltageEventKind::Dip
                    },
                    phases: if d.interruption { all } else { d.phases },
                    start_frame: d.start,
                    end_frame: start.max(d.start),
                    extreme_v: d.extreme,
                    delta_max_v: None,
                    delta_steady_v: None,
                };
                match ramp(late, 0.92 * u, true) {
                    Some(r) => {
                        let _ = self.ending.push((e, r));
                    }
                    None => out(e),
                }
            }
        }
        // swells
        let above = mask_where(&|x| x > 1.10 * u);
        if self.swell.is_none() && above != 0 {
            let r = ramp(above, 1.10 * u, false);
            self.swell = Some(Open {
                start: r.map_or(start, |r| crossing(r.t1, r.a, r.t2, r.b, r.th)),
                start_ramp: r,
                phases: above,
                extreme: f32::NEG_INFINITY,
                interruption: false,
            });
        }
        if let Some(sw) = &mut self.swell {
            sw.phases |= above;
            for p in 0..n {
                if sw.phases & (1 << p) != 0 {
                    sw.extreme = sw.extreme.max(v(p));
                }
            }
            if mask_where(&|x| x <= 1.08 * u) == all {
                let sw = *sw;
                self.swell = None;
                let late = (0..n)
                    .filter(|&p| was(p, &|x| x > 1.08 * u))
                    .fold(0u8, |m, p| m | (1 << p));
                let e = RawEvent {
                    kind: VoltageEventKind::Swell,
                    phases: sw.phases,
                    start_frame: sw.start,
                    end_frame: start.max(sw.start),
                    extreme_v: sw.extreme,
                    delta_max_v: None,
                    delta_steady_v: None,
                };
                match ramp(late, 1.08 * u, true) {
                    Some(r) => {
                        let _ = self.ending.push((e, r));
                    }
                    None => out(e),
                }
            }
        }
        self.rvc_push(start, half_frames, urms_v, below | above != 0, out);
    }

    fn means_mv(&self) -> [f32; 3] {
        let len = self.len.max(1) as f32;
        [0, 1, 2].map(|p| self.sum_mv.get(p).copied().unwrap_or(0) as f32 / len)
    }

    /// All phases' last `window` values within `±tol_mv` of their mean.
    fn steady(&self, tol_mv: f32) -> bool {
        if self.len < self.window {
            return false;
        }
        let means = self.means_mv();
        self.ring.iter().zip(means).take(self.phases).all(|(r, m)| {
            let (lo, hi) = r
                .iter()
                .take(self.window)
                .fold((u32::MAX, 0u32), |(lo, hi), &x| (lo.min(x), hi.max(x)));
            (hi as f32 - m) <= tol_mv && (m - lo as f32) <= tol_mv
        })
    }

    fn rvc_push(
        &mut self,
        start: f64,
        half_frames: f64,
        urms_v: &[f32; 3],
        dip_or_swell: bool,
        out: &mut impl FnMut(RawEvent),
    ) {
        let thr_mv = 0.05 * self.udin_v * 1000.0;
        let mv = urms_v.map(|x| (x.max(0.0) * 1000.0).min(u32::MAX as f32) as u32);
        // the departure test is against the mean of the previous values
        if let RvcState::Steady = self.rvc {
            let means = self.means_mv();
            let mut dep = 0u8;
            let (mut dmax, mut ext) = (0.0f32, 0.0f32);
            for p in 0..self.phases {
                let x = mv.get(p).copied().unwrap_or(0) as f32;
                let d = (x - means.get(p).copied().unwrap_or(0.0)).abs();
                if d > thr_mv {
                    dep |= 1 << p;
                }
                if d > dmax {
                    dmax = d;
                    ext = x;
                }
            }
            if dep != 0 {
                self.rvc = RvcState::Event {
                    start,
                    mean_before: means,
                    delta_max: dmax,
                    extreme: ext,
                    phases: dep,
                    dropped: dip_or_swell,
                };
            }
        } else if let RvcState::Event {
            mean_before,
            delta_max,
            extreme,
            phases,
            dropped,
            ..
        } = &mut self.rvc
        {
            *dropped |= dip_or_swell;
            for p in 0..self.phases {
                let x = mv.get(p).copied().unwrap_or(0) as f32;
                let d = (x - mean_before.get(p).copied().unwrap_or(0.0)).abs();
                if d > thr_mv {
                    *phases |= 1 << p;
                }
                if d > *delta_max {
                    *delta_max = d;
                    *extreme = x;
                }
            }
        }
        // add the value to the history
        let w = self.window;
        for (p, r) in self.ring.iter_mut().enumerate().take(self.phases) {
            let x = mv.get(p).copied().unwrap_or(0);
            if let (Some(slot), Some(s)) = (r.get_mut(self.pos), self.sum_mv.get_mut(p)) {
                if self.len == w {
                    *s -= u64::from(*slot);
                }
                *slot = x;
                *s += u64::from(x);
            }
        }
        self.pos = (self.pos + 1) % w;
        self.len = (self.len + 1).min(w);
        match self.rvc {
            RvcState::Settling if self.steady(thr_mv) => self.rvc = RvcState::Steady,
            RvcState::Steady if dip_or_swell => self.rvc = RvcState::Settling,
            RvcState::Event {
                start: s,
                mean_before,
                delta_max,
                extreme,
                phases,
                dropped,
            } if self.steady(0.5 * thr_mv) => {
                let after = self.means_mv();
                let steady_mv = after
                    .iter()
                    .zip(&mean_before)
                    .take(self.phases)
                    .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
                // the event ends where the new steady window began
                let end = (start - (w as f64 - 1.0) * half_frames).max(s);
                self.rvc = RvcState::Steady;
                if !dropped {
                    out(RawEvent {
                        kind: VoltageEventKind::Rvc,
                        phases,
                        start_frame: s,
                        end_frame: end,
                        extreme_v: extreme / 1000.0,
                        delta_max_v: Some(delta_max / 1000.0),
                        delta_steady_v: Some(steady_mv / 1000.0),
                    });
                }
            }
            _ => {}
        }
    }
}
