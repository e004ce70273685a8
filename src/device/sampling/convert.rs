//! Conversion of source frames into a session's samples: resampling (any rate 1..=32000, linear
//! phase, bounded delay), derived sets (`p,q`, `v,i_RMS`) from a one-cycle estimator, the pacing
//! of output samples, the session's own clock, and the start instant (immediate, or the first
//! positive-going L1 zero crossing at or after a scheduled `time`).
//!
//! Every session sample has an instant — the time its value describes — and the session's first
//! sample is the first whose instant is at or after the session's start:
//! * a resampled sample's instant is the centre of its linear-phase filter. The filters only get
//!   input from the request on, so an immediate start lies one group delay ahead (≤ ½ output period +
//!   ¼ s) and the resampler is aligned to put an output exactly there;
//! * a waveform at the source rate is the input sample itself;
//! * a derived sample is taken at an input sample and carries the last one-cycle window completed by
//!   then. The one-cycle estimator is forked from the running, settled measuring estimator, so its
//!   windows are settled from the first (a cold one needs ≈ 4 cycles; right after boot the session
//!   waits for that).

use alloc::vec::Vec;
use core::time::Duration;
#[allow(unused_imports)] // inherent f64 methods shadow it with `std`
use num_traits::Float;

use super::session::{Sampling, source_channels};
use crate::calibration::Calibration;
use crate::device::measure::{Est, Measurements, Meter};
use crate::dsp::{Resampler, Window};
use crate::hal::{Instant, PhysicalBlock};
use crate::wire::command::Measures;

/// Windows a one-cycle estimator started cold needs before its values are settled to ≈ 0.1 %
/// (its crossing detector's band-pass filters and frequency tracking settle over ≈ 4 cycles).
const FRESH_FAST_WINDOWS: u8 = 4;
/// How far ahead an immediate derived session starts when no settled measuring estimator exists to
/// fork (the device has measured for less than ≈ 0.4 s): the settling time of
/// [`FRESH_FAST_WINDOWS`] cycles from a cold start (≤ 85 ms at 45–60 Hz), so even then the first
/// sample is settled.
const FRESH_FAST_LEAD: Duration = Duration::from_millis(90);

/// Per-session conversion state (resampler or one-cycle estimator, pacing, time origin).
#[derive(Debug)]
pub(crate) struct Converter {
    /// Source rate the converters were built for.
    source_rate_hz: u32,
    resampler: Option<Resampler>,
    /// The one-cycle estimator of a derived session.
    fast: Option<Est>,
    /// Windows of `fast` still to be ignored (0 when it was forked from the settled measuring
    /// estimator; a fresh one needs [`FRESH_FAST_WINDOWS`]).
    fast_skip: u8,
    /// The derived values carried until the next settled one-cycle window (`None`: nothing settled
    /// yet).
    held: Option<[f32; 6]>,
    /// The session's clock: the first source frame fed (µs after the session's creation); frame `n`
    /// after it is at `origin + n/source rate`, whatever the binding's (µs-truncated) block stamps say.
    origin_us: Option<f64>,
    /// Source frames fed since the origin.
    frames_in: u64,
    /// Outputs the resampler delivered since the origin.
    produced: u64,
    /// The resampler's input of one block (calibrated, selected channels).
    input: Vec<f32>,
}

impl Converter {
    /// Conversion for session `s` on a source at `source_rate_hz`, and how far after its request an
    /// immediate session's first sample can be:
    ///
    /// * a resampled waveform needs input from one group delay before its first output's instant,
    ///   and it gets input only from now on, so it starts one group delay ahead (≤ ½ output period
    ///   + ¼ s, see [`Resampler`]);
    /// * a derived set forks its one-cycle estimator from the running, settled measuring estimator
    ///   (settled at once: no lead), or — right after boot — starts one cold and waits for it to settle;
    /// * a waveform at the source rate starts now.
    pub(crate) fn new(s: &Sampling, source_rate_hz: u32, meter: &Meter) -> (Converter, Duration) {
        let m = s.params.measures;
        let mut conv = Converter {
            source_rate_hz,
            resampler: None,
            fast: None,
            fast_skip: 0,
            held: None,
            origin_us: None,
            frames_in: 0,
            produced: 0,
            input: Vec::new(),
        };
        let mut lead = Duration::ZERO;
        if m.is_derived() {
            if let Some(f) = meter.fork_one_cycle(source_rate_hz) {
                conv.fast = Some(f);
                conv.held = meter.reading().map(|last| held_of(m, last));
            } else {
                // before the first block there is none yet: the first block starts it
                conv.fast = meter.fresh_one_cycle();
                conv.fast_skip = FRESH_FAST_WINDOWS;
                lead = FRESH_FAST_LEAD;
            }
        } else if s.params.rate_hz != source_rate_hz {
            conv.resampler = Resampler::new(m.count(), source_rate_hz, s.params.rate_hz).ok();
            if let Some(rs) = conv.resampler.as_ref() {
                lead = Duration::from_micros((rs.group_delay_s() * 1e6).ceil() as u64);
            }
        }
        (conv, lead)
    }

    /// The source rate it was built for.
    pub(crate) fn source_rate_hz(&self) -> u32 {
        self.source_rate_hz
    }

    /// The session clock's time of the first frame of the next block (µs after the session's
    /// creation; a block at `wall_start` of `rate_hz`), starting the clock with the first block.
    pub(crate) fn clock(&mut self, s: &Sampling, rate_hz: u32, wall_start: Instant) -> f64 {
        let origin = *self
            .origin_us
            .get_or_insert_with(|| s.micros_since_created(wall_start));
        origin + self.frames_in as f64 * 1e6 / f64::from(rate_hz.max(1))
    }

    /// A new calibration for the one-cycle estimator.
    pub(crate) fn set_calibration(&mut self, cal: Calibration) {
        if let Some(e) = self.fast.as_mut() {
            e.set_calibration(cal);
        }
    }

    /// Values at the session's rate for source frames `range` of `block` (wall time of frame 0:
    /// `block_t0` on the session clock, [`Converter::clock`]; `codes`: the same frames as ADC codes, when the binding delivered codes),
    /// appended to `out`. Only samples whose instant is at or after `emit_from` are emitted (`None`:
    /// none — the input only warms the filters, as while a scheduled start waits). Instants are µs
    /// of wall time after the session's creation ([`Sampling::micros_since_created`]: sub-µs
    /// resolution, unlike µs since the epoch in an `f64`) on the session clock
    /// ([`Converter::clock`]). Returns the number of samples emitted and the instant
    /// of the first one.
    ///
    /// The instant of a sample is the time its value describes: a resampled sample's is the centre of
    /// its (linear-phase) filter; a waveform at the source rate is the input sample itself; a derived
    /// sample is taken at an input sample and carries the last one-cycle window completed by then.
    /// An immediate session's resampler is aligned so that its first output lies exactly at the
    /// session's start instant (rounded up to the next input sample when it has no fractional stage).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn derive(
        &mut self,
        s: &mut Sampling,
        block: &PhysicalBlock<'_>,
        codes: Option<&[i32]>,
        range: core::ops::Range<usize>,
        block_t0: f64,
        out: &mut Vec<f32>,
        emit_from: Option<f64>,
        meter: &Meter,
    ) -> (usize, Option<f64>) {
        let first = range.start;
        let gains = meter.calibration().factors();
        let g = |k: usize| gains.get(k).copied().unwrap_or(1.0);
        let measures = s.params.measures;
        let src = u64::from(block.rate_hz.max(1));
        let rate = u64::from(s.params.rate_hz.max(1));
        let us_per_in = 1e6 / src as f64;
        let t_of = |k: usize| block_t0 + k as f64 * us_per_in;
        let due = |t: f64| emit_from.is_some_and(|from| t >= from);
        // an immediate start: the resampler's first output lies exactly at the start instant
        let align_to = (s.waiting() && !s.align_start)
            .then_some(s.params.start_at)
            .flatten()
            .map(|t| s.micros_since_created(t));
        let main_held = meter.reading().map(|m| held_of(measures, m));
        let dsp = self;
        let before = out.len();
        let mut first_instant = None;
        let end = range.end.min(block.samples.len() / 6);
        let fresh = dsp.frames_in == 0;
        dsp.frames_in += end.saturating_sub(first) as u64;
        // every output is due once the session runs (no instants to compute per sample)
        let all_due = emit_from == Some(f64::NEG_INFINITY);
        // the first input sample at or after the start; a waiting session's first sample is there
        let k0 = match emit_from {
            None => end,
            Some(_) if all_due => first,
            Some(_) => (first..end).find(|&k| due(t_of(k))).unwrap_or(end),
        };
        if s.waiting() && k0 < end {
            s.pace = src - rate.min(src); // the next step fires
        }
        match measures {
            Measures::PowerPQ | Measures::Rms => {
                // feed the one-cycle estimator up to each sample instant, then hold its last window
                let mut fed = first;
                for k in k0..end {
                    s.pace += rate;
                    if s.pace < src {
                        continue;
                    }
                    s.pace -= src;
                    dsp.feed_fast(measures, block, codes, fed..k + 1, meter);
                    fed = k + 1;
                    if dsp.held.is_none() {
                        // nothing settled yet (a cold start that got no input for long): the
                        // measuring estimator's reading, or else the latest one-cycle window
                        let latest = dsp
                            .fast
                            .as_ref()
                            .and_then(|e| e.last_window())
                            .map(|w| held_of_window(measures, w));
                        dsp.held = main_held.or(latest);
                    }
                    out.extend_from_slice(&dsp.held.unwrap_or([f32::NAN; 6]));
                    first_instant.get_or_insert_with(|| t_of(k));
                }
                dsp.feed_fast(measures, block, codes, fed..end, meter);
            }
            Measures::VoltCurrent3
            | Measures::VoltCurrentL1
            | Measures::VoltCurrentL2
            | Measures::VoltCurrentL3 => {
                let sel = source_channels(measures);
                let scale = |k: usize, x: f32| {
                    if k.is_multiple_of(2) {
                        x * g(k)
                    } else {
                        x * g(k) * 1000.0
                    }
                };
                let rows = block.samples.chunks_exact(6).take(end);
                match dsp.resampler.as_mut() {
                    None => {
                        // at the source rate (or, should no resampler exist, decimated by pacing)
                        for row in rows.skip(k0) {
                            s.pace += rate;
                            if s.pace < src {
                                continue;
                            }
                            s.pace -= src;
                            for &c in sel {
                                out.push(scale(c, row.get(c).copied().unwrap_or(0.0)));
                            }
                        }
                        // a waiting session's first sample is k0 (its pace fires there)
                        if out.len() > before {
                            first_instant = Some(t_of(k0));
                        }
                    }
                    Some(rs) => {
                        let rows = rows.skip(first);
                        let input = &mut dsp.input;
                        input.clear();
                        for row in rows {
                            for &c in sel {
                                input.push(scale(c, row.get(c).copied().unwrap_or(0.0)));
                            }
                        }
                        let origin = dsp.origin_us.unwrap_or(block_t0);
                        if fresh {
                            dsp.produced = 0;
                            if let Some(at) = align_to {
                                let mut off = (at - origin) / us_per_in;
                                if off < 0.0 {
                                    // the start lies before the first input (no samples came
                                    // for a while): the first output is the last point of the
                                    // session's grid before the input, not every point since
                                    // the start (a 10 s gap made 480,000 outputs at once)
                                    let step = src as f64 / rate as f64;
                                    off += (-off / step).floor() * step;
                                }
                                rs.align(off);
                            } else {
                                rs.reset();
                            }
                        }
                        let first_at = rs.first_output_at();
                        let step = src as f64 / rate as f64;
                        let produced = &mut dsp.produced;
                        rs.process(input, |frame| {
                            let k = *produced;
                            *produced += 1;
                            let t = || origin + (first_at + k as f64 * step) * us_per_in;
                            // aligned: every output is at or after the start (no rounding test);
                            // else an output whose computed instant is within 1 ns of the start is
                            // the one at the start (rounding of the crossing's interpolation)
                            if all_due || (fresh && align_to.is_some()) || due(t() + 1e-3) {
                                out.extend_from_slice(frame);
                                if first_instant.is_none() {
                                    first_instant = Some(t());
                                }
                            }
                        });
                    }
                }
            }
        }
        ((out.len() - before) / measures.count(), first_instant)
    }

    /// Feeds source frames `range` to the one-cycle estimator; settled windows replace `held`. A
    /// cold one starts on the measuring pipeline's input kind when there is none yet (a session
    /// that began before the first block) or the binding switched between codes and volts.
    fn feed_fast(
        &mut self,
        measures: Measures,
        block: &PhysicalBlock<'_>,
        codes: Option<&[i32]>,
        range: core::ops::Range<usize>,
        meter: &Meter,
    ) {
        if range.is_empty() {
            return;
        }
        if self.fast.is_none() {
            self.fast = meter.fresh_one_cycle();
            self.fast_skip = FRESH_FAST_WINDOWS;
        }
        if !self.feed_fast_once(measures, block, codes, range.clone()) {
            // the binding switched between codes and volts: start over on the new kind
            self.fast = meter.fresh_one_cycle();
            self.fast_skip = FRESH_FAST_WINDOWS;
            self.feed_fast_once(measures, block, codes, range);
        }
    }

    /// Feeds the one-cycle estimator; `false` when it has none or it cannot take this input.
    fn feed_fast_once(
        &mut self,
        measures: Measures,
        block: &PhysicalBlock<'_>,
        codes: Option<&[i32]>,
        range: core::ops::Range<usize>,
    ) -> bool {
        let held = &mut self.held;
        let skip = &mut self.fast_skip;
        let mut take = |w: &Window| {
            if *skip > 0 {
                *skip -= 1;
            } else {
                *held = Some(held_of_window(measures, w));
            }
        };
        self.fast
            .as_mut()
            .is_some_and(|e| e.feed(block, codes, range, &mut take))
    }

    /// Heap held by the resampler and the input buffer.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.resampler.as_ref().map_or(0, Resampler::heap_bytes) + self.input.capacity() * 4
    }
}

/// The derived channels of `measures` from a window.
fn held_of_window(measures: Measures, w: &Window) -> [f32; 6] {
    let p = &w.phases;
    match measures {
        Measures::PowerPQ => [
            p[0].active_power_w,
            p[1].active_power_w,
            p[2].active_power_w,
            p[0].reactive_power_var,
            p[1].reactive_power_var,
            p[2].reactive_power_var,
        ],
        _ => [
            p[0].vrms_v,
            p[1].vrms_v,
            p[2].vrms_v,
            p[0].irms_a * 1000.0,
            p[1].irms_a * 1000.0,
            p[2].irms_a * 1000.0,
        ],
    }
}

/// The derived channels of `measures` from the measuring estimator's reading.
fn held_of(measures: Measures, m: &Measurements) -> [f32; 6] {
    match measures {
        Measures::PowerPQ => [
            m.active_w[0],
            m.active_w[1],
            m.active_w[2],
            m.reactive_var[0],
            m.reactive_var[1],
            m.reactive_var[2],
        ],
        _ => [
            m.voltage_v[0],
            m.voltage_v[1],
            m.voltage_v[2],
            m.current_a[0] * 1000.0,
            m.current_a[1] * 1000.0,
            m.current_a[2] * 1000.0,
        ],
    }
}

/// The first instant at or after `t` that an immediate session can start at so that its first
/// sample — which lands on the next input sample when there is no fractional resampling stage, up to
/// one source period later — still lies in the same millisecond as `t`: `startTs` (ms) then names it.
pub(crate) fn first_instant(t: Instant, source_rate_hz: u32) -> Instant {
    let period_us = 1_000_000u64.div_ceil(u64::from(source_rate_hz.max(1)));
    let us = t.as_micros();
    let into_ms = us % 1000;
    if period_us < 1000 && into_ms + period_us > 1000 {
        Instant::from_micros(us - into_ms + 1000)
    } else {
        t
    }
}

/// The first positive-going zero crossing of L1 at or after `at_us` in `block` (frame 0 at `t0_us`;
/// `prev`: the last L1 voltage of the block before), located between two samples by linear
/// interpolation; times in µs on any common origin.
pub(crate) fn rising_crossing(
    prev: f32,
    at_us: f64,
    t0_us: f64,
    block: &PhysicalBlock<'_>,
) -> Option<f64> {
    let dt_us = 1e6 / f64::from(block.rate_hz.max(1));
    let t0 = t0_us;
    let mut prev = prev;
    for (k, row) in block.samples.chunks_exact(6).enumerate() {
        let v = row.first().copied().unwrap_or(0.0);
        if prev < 0.0 && v >= 0.0 {
            let frac = f64::from(-prev) / f64::from(v - prev);
            // never after the sample that is ≥ 0 (rounding), so that sample is the first one at or
            // after the crossing
            let t = (t0 + (k as f64 - 1.0 + frac) * dt_us).min(t0 + k as f64 * dt_us);
            if t >= at_us {
                return Some(t);
            }
        }
        prev = v;
    }
    None
}
