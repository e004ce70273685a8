//! A grid that misbehaves, for power-quality testing: voltage harmonics, dips, swells, interruptions
//! and rectangular flicker on top of the clean synthetic grid.
//!
//! Every change of amplitude is rectangular and switches at a sample instant (the first sample at or
//! after the scheduled time), as the IEC 61000-4-11/-4-15 test signals are defined. The schedule is
//! relative to an *anchor*, the moment the simulator prints its `listening on` line
//! ([`Disturbances::arm`]); before the anchor is known, only the static options (per-phase
//! magnitudes, voltage harmonics) apply. Everything is a function of the sample index and the anchor,
//! so the same options and anchor give bit-identical samples.
//!
//! Overlapping events on one phase: the one that starts later applies; at equal starts an
//! interruption wins over a swell, a swell over a dip. Flicker modulates whatever level is in force.
//! Currents are never changed.

#[allow(unused_imports)]
use std::prelude::rust_2024::*;

use core::f64::consts::{PI, SQRT_2};
use std::time::Duration;

/// Highest voltage harmonic order `--vharmonic` accepts (IEC 61000-4-7 goes to H50).
pub const MAX_VOLTAGE_HARMONIC_ORDER: u32 = 50;
/// Level of every phase during `--interrupt`, relative to the set voltage (1 %).
pub const INTERRUPTION_LEVEL: f64 = 0.01;
/// Longest `AT` or `DURATION` accepted, seconds (about 11.6 days).
pub const MAX_SCHEDULE_S: f64 = 1e6;
/// Fastest `--flicker` modulation, changes per minute (a 50 Hz square wave; IEC 61000-4-15's tables
/// end at 4800).
pub const MAX_FLICKER_CPM: f64 = 6000.0;
/// Deepest `--flicker` modulation, ΔV/V in percent.
pub const MAX_FLICKER_DVV_PCT: f64 = 50.0;

/// Why a disturbance option was refused (clap turns it into a usage error, exit status 2).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DisturbanceError {
    /// The option's value does not have the documented shape.
    #[error("invalid {option}: expected {shape}, got `{value}`")]
    Shape {
        /// The option name.
        option: &'static str,
        /// The accepted shape, with an example.
        shape: &'static str,
        /// What was given.
        value: String,
    },
    /// One field of the value is outside its range.
    #[error("invalid {field}: expected {expected}, got `{value}`")]
    Range {
        /// The option and field.
        field: &'static str,
        /// The accepted range, in words.
        expected: &'static str,
        /// The field as given.
        value: String,
    },
}

/// The phases a simulated disturbance acts on (`1,3` = L1 and L3); the protocol's phase set of a
/// reported event is [`wire::pq::PhaseSet`](crate::wire::pq::PhaseSet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisturbedPhases(u8);

impl DisturbedPhases {
    /// L1, L2 and L3.
    pub const ALL: DisturbedPhases = DisturbedPhases(0b111);

    /// Whether phase `k` (0 = L1) is in the set.
    pub fn contains(self, k: usize) -> bool {
        k < 3 && self.0 & (1 << k) != 0
    }
}

/// What a simulated disturbance does to the voltage (what the meter *reports* is
/// [`wire::pq::EventKind`](crate::wire::pq::EventKind)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DisturbanceKind {
    /// A dip (sag) to a residual voltage.
    Dip,
    /// A swell to a level above the set voltage.
    Swell,
    /// An interruption: all phases to [`INTERRUPTION_LEVEL`].
    Interruption,
}

/// A rectangular voltage disturbance the simulator injects, scheduled relative to the `listening on`
/// line (what the meter then measures is a [`dsp::pq::VoltageEvent`](crate::dsp::pq::VoltageEvent)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VoltageDisturbance {
    /// Dip, swell or interruption.
    pub kind: DisturbanceKind,
    /// Start, after the anchor.
    pub at: Duration,
    /// Length.
    pub duration: Duration,
    /// Voltage during the event relative to the set voltage (residual, swell level, or 1 %).
    pub level: f64,
    /// The phases it acts on.
    pub phases: DisturbedPhases,
}

/// One voltage harmonic (`--vharmonic K:REL`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VoltageHarmonic {
    /// Order, 2..=50.
    pub order: u32,
    /// Amplitude relative to the fundamental voltage, 0-1.
    pub rel: f64,
}

/// Rectangular amplitude modulation (`--flicker CPM:DVV`), IEC 61000-4-15's test signal:
/// `v(t) = v₀(t)·(1 + ΔV/V/2 · sign(sin(2π·CPM/120·t)))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flicker {
    /// Changes per minute (two per modulation period).
    pub cpm: f64,
    /// ΔV/V, percent: the step between the two levels relative to the set voltage.
    pub dvv_pct: f64,
}

/// Parses a human duration: `4s`, `100ms`, `1.5s`, `2m`, `1h`, a bare number is seconds. Decimal
/// digits are read exactly (no binary rounding), to the nanosecond.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at_checked(split)?;
    let unit_ns: u128 = match unit.trim() {
        "" | "s" => 1_000_000_000,
        "ms" => 1_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || frac.contains('.') || int.len() > 12 {
        return None;
    }
    let int_v: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut ns = int_v.checked_mul(unit_ns)?;
    let mut scale = unit_ns;
    for d in frac.bytes() {
        let digit = u128::from(d.checked_sub(b'0').filter(|d| *d <= 9)?);
        scale /= 10;
        ns = ns.checked_add(digit * scale)?;
    }
    let ns = u64::try_from(ns).ok()?;
    let d = Duration::from_nanos(ns);
    (d.as_secs_f64() <= MAX_SCHEDULE_S).then_some(d)
}

const DURATION_WORDS: &str = "a duration 0-1e6 s such as 4s, 100ms, 1.5s or 2m";

fn field_f64(
    field: &'static str,
    expected: &'static str,
    ok: impl Fn(f64) -> bool,
    s: &str,
) -> Result<f64, DisturbanceError> {
    let err = || DisturbanceError::Range {
        field,
        expected,
        value: s.to_string(),
    };
    let v: f64 = s.trim().parse().map_err(|_| err())?;
    if v.is_finite() && ok(v) {
        Ok(v)
    } else {
        Err(err())
    }
}

fn field_duration(
    field: &'static str,
    expected: &'static str,
    positive: bool,
    s: &str,
) -> Result<Duration, DisturbanceError> {
    parse_duration(s)
        .filter(|d| !positive || !d.is_zero())
        .ok_or_else(|| DisturbanceError::Range {
            field,
            expected,
            value: s.to_string(),
        })
}

fn field_phases(field: &'static str, s: &str) -> Result<DisturbedPhases, DisturbanceError> {
    let err = || DisturbanceError::Range {
        field,
        expected: "a comma-separated list of phases 1, 2 and 3 (e.g. 1 or 1,3)",
        value: s.to_string(),
    };
    let mut mask = 0u8;
    for p in s.split(',') {
        let k: u8 = p.trim().parse().map_err(|_| err())?;
        if !(1..=3).contains(&k) {
            return Err(err());
        }
        mask |= 1 << (k - 1);
    }
    Ok(DisturbedPhases(mask))
}

/// The fields of `AT:DURATION:LEVEL[:PHASES]` after the shape check.
fn parse_event<'a>(
    s: &'a str,
    option: &'static str,
    shape: &'static str,
    fields: [&'static str; 4],
) -> Result<(Duration, Duration, &'a str, DisturbedPhases), DisturbanceError> {
    let shape_err = || DisturbanceError::Shape {
        option,
        shape,
        value: s.to_string(),
    };
    let parts: Vec<&str> = s.splitn(5, ':').collect();
    let (at, dur, level, phases) = match parts.as_slice() {
        [at, dur, level] => (*at, *dur, *level, None),
        [at, dur, level, phases] => (*at, *dur, *level, Some(*phases)),
        _ => return Err(shape_err()),
    };
    let [at_f, dur_f, _, phases_f] = fields;
    let at = field_duration(at_f, DURATION_WORDS, false, at)?;
    let duration = field_duration(
        dur_f,
        "a duration > 0 and at most 1e6 s such as 100ms, 1.5s or 2m",
        true,
        dur,
    )?;
    let phases = match phases {
        Some(p) => field_phases(phases_f, p)?,
        None => DisturbedPhases::ALL,
    };
    Ok((at, duration, level, phases))
}

/// Parses `--dip AT:DURATION:RESIDUAL[:PHASES]` (residual 0-1 of the set voltage; phases default
/// all).
pub fn parse_dip(s: &str) -> Result<VoltageDisturbance, DisturbanceError> {
    let (at, duration, level, phases) = parse_event(
        s,
        "dip",
        "AT:DURATION:RESIDUAL[:PHASES] (e.g. 4s:100ms:0.6 or 4s:100ms:0.6:1,2)",
        ["dip start", "dip duration", "dip residual", "dip phases"],
    )?;
    let level = field_f64(
        "dip residual",
        "0-1 (relative to --voltage; 0.6 = 60 %)",
        |v| (0.0..=1.0).contains(&v),
        level,
    )?;
    Ok(VoltageDisturbance {
        kind: DisturbanceKind::Dip,
        at,
        duration,
        level,
        phases,
    })
}

/// Parses `--swell AT:DURATION:LEVEL[:PHASES]` (level 1-2 of the set voltage; phases default all).
pub fn parse_swell(s: &str) -> Result<VoltageDisturbance, DisturbanceError> {
    let (at, duration, level, phases) = parse_event(
        s,
        "swell",
        "AT:DURATION:LEVEL[:PHASES] (e.g. 4s:100ms:1.2 or 4s:100ms:1.2:3)",
        [
            "swell start",
            "swell duration",
            "swell level",
            "swell phases",
        ],
    )?;
    let level = field_f64(
        "swell level",
        "1-2 (relative to --voltage; 1.2 = 120 %)",
        |v| (1.0..=2.0).contains(&v),
        level,
    )?;
    Ok(VoltageDisturbance {
        kind: DisturbanceKind::Swell,
        at,
        duration,
        level,
        phases,
    })
}

/// Parses `--interrupt AT:DURATION` (all phases to 1 %).
pub fn parse_interrupt(s: &str) -> Result<VoltageDisturbance, DisturbanceError> {
    let shape_err = || DisturbanceError::Shape {
        option: "interrupt",
        shape: "AT:DURATION (e.g. 4s:2s)",
        value: s.to_string(),
    };
    let (at, dur) = s.split_once(':').ok_or_else(shape_err)?;
    if dur.contains(':') {
        return Err(shape_err());
    }
    Ok(VoltageDisturbance {
        kind: DisturbanceKind::Interruption,
        at: field_duration("interrupt start", DURATION_WORDS, false, at)?,
        duration: field_duration(
            "interrupt duration",
            "a duration > 0 and at most 1e6 s such as 100ms, 1.5s or 2m",
            true,
            dur,
        )?,
        level: INTERRUPTION_LEVEL,
        phases: DisturbedPhases::ALL,
    })
}

/// Parses `--vharmonic K:REL` (K 2..=50, REL 0-1 of the fundamental voltage).
pub fn parse_vharmonic(s: &str) -> Result<VoltageHarmonic, DisturbanceError> {
    let (k, rel) = s.split_once(':').ok_or_else(|| DisturbanceError::Shape {
        option: "vharmonic",
        shape: "K:REL (e.g. 5:0.06)",
        value: s.to_string(),
    })?;
    let order = field_f64(
        "vharmonic order",
        "an integer 2-50",
        |v| v.fract() == 0.0 && (2.0..=50.0).contains(&v),
        k,
    )?;
    let rel = field_f64(
        "vharmonic amplitude",
        "0-1 (relative to the fundamental voltage)",
        |v| (0.0..=1.0).contains(&v),
        rel,
    )?;
    Ok(VoltageHarmonic {
        // In 2..=50 and integral: exact.
        order: order as u32,
        rel,
    })
}

/// Parses `--flicker CPM:DVV` (CPM 0-6000 changes per minute, > 0; ΔV/V 0-50 %).
pub fn parse_flicker(s: &str) -> Result<Flicker, DisturbanceError> {
    let (cpm, dvv) = s.split_once(':').ok_or_else(|| DisturbanceError::Shape {
        option: "flicker",
        shape: "CPM:DVV (e.g. 1620:0.407 = 1620 changes per minute, ΔV/V 0.407 %)",
        value: s.to_string(),
    })?;
    Ok(Flicker {
        cpm: field_f64(
            "flicker rate",
            "changes per minute > 0 and at most 6000",
            |v| v > 0.0 && v <= MAX_FLICKER_CPM,
            cpm,
        )?,
        dvv_pct: field_f64(
            "flicker depth",
            "ΔV/V 0-50 (%)",
            |v| (0.0..=MAX_FLICKER_DVV_PCT).contains(&v),
            dvv,
        )?,
    })
}

/// An event with its sample range, once the anchor is known.
#[derive(Debug, Clone, Copy)]
struct Scheduled {
    /// First sample at the event's level.
    start: u64,
    /// First sample after it.
    end: u64,
    level: f64,
    phases: DisturbedPhases,
}

/// The time-dependent part of the misbehaving grid, applied to the clean grid's frames.
#[derive(Debug, Clone)]
pub struct Disturbances {
    rate_hz: u32,
    frequency_hz: f64,
    /// Peak fundamental voltage per phase, V.
    peak_v: [f64; 3],
    /// `(order, relative amplitude)`, one entry per order (repeats summed), ascending.
    harmonics: Vec<(u32, f64)>,
    events: Vec<VoltageDisturbance>,
    flicker: Option<Flicker>,
    /// Sorted by start (ties: dip, swell, interruption): the later entry wins an overlap.
    scheduled: Vec<Scheduled>,
    /// The anchor, nanoseconds after sample 0; `None` until armed.
    anchor_ns: Option<u128>,
}

impl Disturbances {
    /// The disturbances of a grid at `rate_hz` and `frequency_hz` whose phases have the RMS
    /// voltages `voltage_rms_v` (L2, L3 lagging L1 by 120°, 240°, as `dsp::synth::Grid` makes them).
    pub fn new(
        rate_hz: u32,
        frequency_hz: f64,
        voltage_rms_v: [f64; 3],
        harmonics: &[VoltageHarmonic],
        events: &[VoltageDisturbance],
        flicker: Option<Flicker>,
    ) -> Self {
        let mut table = [0.0f64; MAX_VOLTAGE_HARMONIC_ORDER as usize + 1];
        for h in harmonics {
            if let Some(slot) = table.get_mut(h.order as usize) {
                *slot += h.rel;
            }
        }
        let harmonics = (2..=MAX_VOLTAGE_HARMONIC_ORDER)
            .filter_map(|k| {
                let rel = table.get(k as usize).copied().unwrap_or(0.0);
                (rel != 0.0).then_some((k, rel))
            })
            .collect();
        Disturbances {
            rate_hz: rate_hz.max(1),
            frequency_hz,
            peak_v: voltage_rms_v.map(|v| v * SQRT_2),
            harmonics,
            events: events.to_vec(),
            flicker,
            scheduled: Vec::new(),
            anchor_ns: None,
        }
    }

    /// Whether any sample can differ from the clean grid.
    pub fn is_active(&self) -> bool {
        !self.harmonics.is_empty() || !self.events.is_empty() || self.flicker.is_some()
    }

    /// Fixes the schedule's zero at `anchor_ns` nanoseconds after sample 0 (the `listening on` line).
    /// Arming again moves the schedule.
    pub fn arm(&mut self, anchor_ns: u128) {
        let rate = u128::from(self.rate_hz);
        // The first sample at or after `t`: ceil(t · rate / 1e9).
        let sample_at = |t_ns: u128| -> u64 {
            u64::try_from((t_ns * rate).div_ceil(1_000_000_000)).unwrap_or(u64::MAX)
        };
        let mut events = self.events.clone();
        events.sort_by(|a, b| a.at.cmp(&b.at).then(a.kind.cmp(&b.kind)));
        self.scheduled = events
            .iter()
            .map(|e| {
                let at = anchor_ns + e.at.as_nanos();
                Scheduled {
                    start: sample_at(at),
                    end: sample_at(at + e.duration.as_nanos()),
                    level: e.level,
                    phases: e.phases,
                }
            })
            .collect();
        self.anchor_ns = Some(anchor_ns);
    }

    /// The level of each phase's voltage at sample `index`, relative to the set voltage.
    pub fn gain(&self, index: u64) -> [f64; 3] {
        let mut gain = [1.0f64; 3];
        let Some(anchor_ns) = self.anchor_ns else {
            return gain;
        };
        for e in &self.scheduled {
            if (e.start..e.end).contains(&index) {
                for (k, g) in gain.iter_mut().enumerate() {
                    if e.phases.contains(k) {
                        *g = e.level;
                    }
                }
            }
        }
        if let Some(f) = self.flicker {
            // Changes elapsed since the anchor; even = upper level (sign(sin) > 0 right after 0).
            let t_s = index as f64 / f64::from(self.rate_hz) - anchor_ns as f64 * 1e-9;
            let changes = (t_s * f.cpm / 60.0).floor();
            let half = f.dvv_pct / 100.0 / 2.0;
            let m = if changes.rem_euclid(2.0) == 0.0 {
                1.0 + half
            } else {
                1.0 - half
            };
            for g in &mut gain {
                *g *= m;
            }
        }
        gain
    }

    /// Adds the voltage harmonics to, and applies the levels at sample `index` on, one frame
    /// `v_l1,i_l1,v_l2,i_l2,v_l3,i_l3` of the clean grid.
    pub fn apply(&self, index: u64, frame: &mut [f32]) {
        let mut theta1 = 0.0;
        if !self.harmonics.is_empty() {
            // The fundamental's phase exactly as `dsp::synth::Grid` computes it (constant frequency).
            let t = index as f64 / f64::from(self.rate_hz);
            let cycles = self.frequency_hz * t;
            theta1 = 2.0 * PI * (cycles - cycles.floor());
        }
        let gain = self.gain(index);
        for (p, v) in frame.iter_mut().step_by(2).take(3).enumerate() {
            let mut x = f64::from(*v);
            if !self.harmonics.is_empty() {
                let theta = theta1 - 2.0 * PI / 3.0 * p as f64;
                let peak = self.peak_v.get(p).copied().unwrap_or(0.0);
                for &(k, rel) in &self.harmonics {
                    x += peak * rel * (f64::from(k) * theta).cos();
                }
            }
            *v = (x * gain.get(p).copied().unwrap_or(1.0)) as f32;
        }
    }
}

#[cfg(test)]
mod tests;
