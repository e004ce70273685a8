//! The part of the pipeline the estimator calls into while it is fed: the wall clock of the
//! frames, the windows it closes and opens, and the IEC 10-s frequency over its crossings.

use crate::dsp::estimator::{Observer, Window};
#[allow(unused_imports)] // inherent float methods shadow it with `std`
use num_traits::Float;

/// Crossings after (re)synchronisation that the 10-s frequency ignores (detector settling).
const F10_SETTLE: u32 = 5;

/// Wall clock of the frames: the last block's timestamp, extrapolated with the sample rate.
#[derive(Debug, Clone, Copy)]
pub(super) struct FrameClock {
    pub(super) frame: u64,
    pub(super) us: i64,
    pub(super) rate: f64,
}

impl FrameClock {
    pub(super) fn us_at(&self, frame: f64) -> f64 {
        self.us as f64 + (frame - self.frame as f64) * 1e6 / self.rate
    }
    pub(super) fn frame_at(&self, us: f64) -> f64 {
        self.frame as f64 + (us - self.us as f64) * self.rate / 1e6
    }
    /// The first multiple of `period_us` strictly after the time of `frame`, as a frame.
    pub(super) fn next_tick(&self, frame: f64, period_us: i64) -> f64 {
        let t = self.us_at(frame) as i64;
        let k = t.div_euclid(period_us) + 1;
        self.frame_at((k * period_us) as f64)
    }
}

/// An estimator window as the pairing needs it.
#[derive(Debug, Clone, Copy)]
pub(super) struct EstWin {
    pub(super) start: f64,
    pub(super) end: f64,
    pub(super) synchronised: bool,
    pub(super) cycles: u32,
    pub(super) vrms_v: [f32; 3],
}

/// A window opened by the estimator: where, how many cycles, the period then.
#[derive(Debug, Clone, Copy)]
pub(super) struct Opened {
    pub(super) start: f64,
    pub(super) cycles: u32,
    pub(super) period: f64,
}

/// The IEC 10-s frequency over clock intervals.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Freq10 {
    pub(super) start: f64,
    pub(super) end: Option<f64>,
    pub(super) cycles: u32,
    pub(super) span: f64,
    pub(super) last: Option<f64>,
    pub(super) value: Option<f32>,
    /// Consecutive crossings since synchronisation was (re)acquired.
    pub(super) run: u32,
}

/// The part of the pipeline the estimator calls into.
#[derive(Debug, Clone)]
pub(super) struct Hooks {
    pub(super) clock: FrameClock,
    pub(super) windows: heapless::Deque<EstWin, 8>,
    pub(super) opened: heapless::Deque<Opened, 8>,
    pub(super) f10: Freq10,
    pub(super) cycles_per_window: u32,
    pub(super) sink_windows: heapless::Deque<Window, 8>,
    pub(super) pass_windows: bool,
}

impl Observer for Hooks {
    fn window(&mut self, w: &Window) {
        let e = EstWin {
            start: w.start_sample,
            end: w.end_sample,
            synchronised: w.synchronised,
            cycles: w.cycles,
            vrms_v: w.phases.map(|m| m.vrms_v),
        };
        if self.windows.is_full() {
            self.windows.pop_front();
        }
        let _ = self.windows.push_back(e);
        if self.pass_windows {
            if self.sink_windows.is_full() {
                self.sink_windows.pop_front();
            }
            let _ = self.sink_windows.push_back(*w);
        }
    }

    fn rising_crossing(&mut self, frame: f64, consecutive: bool) {
        let rate = self.clock.rate;
        let f = &mut self.f10;
        let end = *f
            .end
            .get_or_insert_with(|| self.clock.next_tick(frame, 10_000_000));
        if frame >= end {
            f.value = (f.cycles > 0 && f.span > 0.0)
                .then(|| (f64::from(f.cycles) * rate / f.span) as f32);
            f.start = end;
            f.end = Some(self.clock.next_tick(frame, 10_000_000));
            f.cycles = 0;
            f.span = 0.0;
        }
        f.run = if consecutive {
            f.run.saturating_add(1)
        } else {
            0
        };
        // the detector's filters settle over the first cycles after (re)synchronisation
        if let Some(last) = f.last
            && f.run > F10_SETTLE
            && last >= f.start
        {
            f.cycles += 1;
            f.span += frame - last;
        }
        f.last = Some(frame);
    }

    fn next_window_cycles(&mut self, start: f64, period: f64) -> Option<u32> {
        let c = self.cycles_per_window;
        let tick = self.clock.next_tick(start, 600_000_000);
        let ahead = tick - start;
        let k = if period > 0.0 && ahead < f64::from(c) * period {
            ((ahead / period).ceil() as u32).clamp(1, c)
        } else {
            c
        };
        if self.opened.is_full() {
            self.opened.pop_front();
        }
        let _ = self.opened.push_back(Opened {
            start,
            cycles: k,
            period,
        });
        Some(k)
    }
}
