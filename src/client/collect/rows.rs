//! The row model: what one MQTT message becomes in the three tables, independent of where the rows
//! are stored (Parquet, PostgreSQL, the disk spool).
//!
//! | table | one row per | time column |
//! |---|---|---|
//! | `readings` | meter, phase and `state/status` message | `time` = the status `ts` |
//! | `pq_intervals` | meter, phase and `state/pq` aggregate | `time` = `start`, plus `end_time` |
//! | `pq_events` | `state/event` event | `time` = `start` |
//!
//! Per-phase arrays become one row per phase (column `phase`, 1..=3), like `readings`, so the same
//! `GROUP BY meter, phase` works on every table; the harmonic spectra stay a list per row
//! (`harmonics_v[h]` is Hh in DuckDB and PostgreSQL, whose lists are 1-based). An event's phases
//! are a list column (`phases`), since its `extreme` is over all of them. Times are UTC
//! microseconds.

use std::string::String;
use std::sync::Arc;
use std::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::wire::mqtt::Status;
use crate::wire::pq::{EventKind, HARMONICS, PqAggregate, PqEvent};

/// A meter's name, shared by every row of that meter (named for what it is: the `<name>` of its
/// MQTT topics).
pub type MeterName = Arc<str>;

/// One row of `readings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// UTC, µs since the epoch.
    pub time_us: i64,
    /// The meter (topic segment).
    pub meter: MeterName,
    /// 1..=3.
    pub phase: i16,
    /// V.
    pub voltage: Option<f32>,
    /// A.
    pub current: Option<f32>,
    /// W.
    pub active_power: Option<f32>,
    /// var.
    pub reactive_power: Option<f32>,
    /// VA.
    pub apparent_power: Option<f32>,
    /// Power factor.
    pub power_factor: Option<f32>,
    /// Hz (the meter's single value, repeated per phase).
    pub frequency: Option<f32>,
    /// kWh.
    pub energy_import: Option<f64>,
    /// kWh.
    pub energy_export: Option<f64>,
}

/// One row of `pq_intervals`: one phase of one aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PqIntervalRow {
    /// `start`, UTC µs.
    pub time_us: i64,
    /// `end`, UTC µs.
    pub end_time_us: i64,
    /// The meter.
    pub meter: MeterName,
    /// `200ms`, `3s`, `10min` or `2h`.
    pub interval: String,
    /// 1..=3.
    pub phase: i16,
    /// A dip/swell/interruption was in progress.
    pub flagged: bool,
    /// Udin, V.
    pub nominal_voltage: f32,
    /// Nominal frequency, Hz.
    pub nominal_frequency: f32,
    /// RMS voltage, V.
    pub voltage: Option<f32>,
    /// Lowest basic RMS voltage, V.
    pub voltage_min: Option<f32>,
    /// Highest basic RMS voltage, V.
    pub voltage_max: Option<f32>,
    /// 10-s frequency, Hz (per meter, repeated per phase).
    pub frequency: Option<f32>,
    /// Zero-sequence unbalance, % (per meter).
    pub u0: Option<f32>,
    /// Negative-sequence unbalance, % (per meter).
    pub u2: Option<f32>,
    /// Voltage THD, %.
    pub thd_v: Option<f32>,
    /// Current THD, %.
    pub thd_i: Option<f32>,
    /// H1..H50 voltage subgroups, V (always 50 items).
    pub harmonics_v: Vec<Option<f32>>,
    /// H1..H50 current subgroups, A (always 50 items).
    pub harmonics_i: Vec<Option<f32>>,
    /// Short-term flicker (10-min aggregates).
    pub pst: Option<f32>,
    /// Long-term flicker (2-h aggregates).
    pub plt: Option<f32>,
}

/// One row of `pq_events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PqEventRow {
    /// `start`, UTC µs.
    pub time_us: i64,
    /// The meter.
    pub meter: MeterName,
    /// The meter's event id.
    pub id: i64,
    /// `dip`, `swell`, `interruption`, `rvc`.
    pub kind: String,
    /// The phases involved, ascending.
    pub phases: Vec<i16>,
    /// s.
    pub duration: f64,
    /// V.
    pub extreme: f32,
    /// Udin, V.
    pub reference: f32,
    /// RVC only, V.
    pub delta_max: Option<f32>,
    /// RVC only, V.
    pub delta_steady: Option<f32>,
}

/// Rows of every table, in arrival order per table: the unit the ingest hands to the sinks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// `readings` rows.
    pub readings: Vec<Reading>,
    /// `pq_intervals` rows.
    pub intervals: Vec<PqIntervalRow>,
    /// `pq_events` rows.
    pub events: Vec<PqEventRow>,
}

impl Batch {
    /// Rows of all tables.
    pub fn rows(&self) -> usize {
        self.readings.len() + self.intervals.len() + self.events.len()
    }

    /// No rows at all.
    pub fn is_empty(&self) -> bool {
        self.rows() == 0
    }

    /// Moves every row of `other` to the end of `self`.
    pub fn append(&mut self, other: &mut Batch) {
        self.readings.append(&mut other.readings);
        self.intervals.append(&mut other.intervals);
        self.events.append(&mut other.events);
    }

    /// The three rows (L1..L3) of a status; `time_us` replaces an undefined `ts`.
    pub fn push_status(&mut self, meter: &MeterName, s: &Status, fallback_time_us: i64) {
        let time_us = s.ts_s.and_then(seconds_to_us).unwrap_or(fallback_time_us);
        for (k, phase) in (1..=3i16).enumerate() {
            let at = |p: &[Option<f32>; 3]| p.get(k).copied().flatten();
            let at64 = |p: &[Option<f64>; 3]| p.get(k).copied().flatten();
            self.readings.push(Reading {
                time_us,
                meter: meter.clone(),
                phase,
                voltage: at(&s.voltage_v),
                current: at(&s.current_a),
                active_power: at(&s.active_power_w),
                reactive_power: at(&s.reactive_power_var),
                apparent_power: at(&s.apparent_power_va),
                power_factor: at(&s.power_factor),
                frequency: s.frequency_hz,
                energy_import: at64(&s.energy_import_kwh),
                energy_export: at64(&s.energy_export_kwh),
            });
        }
    }

    /// The three rows of an aggregate; `None` when its `start`/`end` are not representable times.
    pub fn push_aggregate(&mut self, meter: &MeterName, a: &PqAggregate) -> Option<()> {
        let time_us = seconds_to_us(a.start_s)?;
        let end_time_us = seconds_to_us(a.end_s)?;
        for (k, phase) in (1..=3i16).enumerate() {
            let at = |p: &[Option<f32>; 3]| p.get(k).copied().flatten();
            let spectrum = |h: &crate::wire::pq::Harmonics| {
                h.get(k)
                    .map_or_else(|| std::vec![None; HARMONICS], |p| p.to_vec())
            };
            self.intervals.push(PqIntervalRow {
                time_us,
                end_time_us,
                meter: meter.clone(),
                interval: a.interval.as_str().into(),
                phase,
                flagged: a.flagged,
                nominal_voltage: a.nominal.voltage_v,
                nominal_frequency: a.nominal.frequency_hz,
                voltage: at(&a.voltage_v),
                voltage_min: at(&a.voltage_min_v),
                voltage_max: at(&a.voltage_max_v),
                frequency: a.frequency_hz,
                u0: a.u0_pct,
                u2: a.u2_pct,
                thd_v: at(&a.thd_v_pct),
                thd_i: at(&a.thd_i_pct),
                harmonics_v: spectrum(&a.harmonics_v),
                harmonics_i: spectrum(&a.harmonics_i),
                pst: a.pst.as_ref().and_then(at),
                plt: a.plt.as_ref().and_then(at),
            });
        }
        Some(())
    }

    /// The row of an event; `None` when its `start` is not a representable time.
    pub fn push_event(&mut self, meter: &MeterName, e: &PqEvent) -> Option<()> {
        let (delta_max, delta_steady) = match e.kind {
            EventKind::Rvc {
                delta_max_v,
                delta_steady_v,
            } => (Some(delta_max_v), Some(delta_steady_v)),
            _ => (None, None),
        };
        self.events.push(PqEventRow {
            time_us: seconds_to_us(e.start_s)?,
            meter: meter.clone(),
            id: i64::from(e.id),
            kind: e.kind.as_str().into(),
            phases: e.phases.iter().map(i16::from).collect(),
            duration: e.duration_s,
            extreme: e.extreme_v,
            reference: e.reference_v,
            delta_max,
            delta_steady,
        });
        Some(())
    }
}

/// Unix seconds → µs, rounded; `None` outside ±292,000 years (where µs overflow i64) or NaN.
pub fn seconds_to_us(s: f64) -> Option<i64> {
    let us = (s * 1e6).round();
    // i64::MAX as f64 rounds up to 2^63, which is out of range itself: compare strictly.
    (us.is_finite() && us > -9.223_372_036_854_776e18 && us < 9.223_372_036_854_776e18)
        .then_some(us as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::pq::{Nominal, PhaseSet, PqInterval};

    #[test]
    fn status_makes_three_rows() {
        let m: MeterName = Arc::from("m1");
        let s = Status {
            ts_s: Some(1_700_000_000.5),
            voltage_v: [Some(230.0), None, Some(231.0)],
            frequency_hz: Some(50.0),
            energy_export_kwh: [None, Some(2.5), None],
            ..Status::default()
        };
        let mut b = Batch::default();
        b.push_status(&m, &s, 7);
        assert_eq!(b.readings.len(), 3);
        assert_eq!(b.readings[0].time_us, 1_700_000_000_500_000);
        assert_eq!(
            b.readings.iter().map(|r| r.phase).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(b.readings[1].voltage, None);
        assert_eq!(b.readings[2].voltage, Some(231.0));
        assert_eq!(b.readings[1].energy_export, Some(2.5));
        assert!(b.readings.iter().all(|r| r.frequency == Some(50.0)));
        // An undefined ts: the arrival time.
        let mut b = Batch::default();
        b.push_status(&m, &Status::default(), 7);
        assert_eq!(b.readings[0].time_us, 7);
    }

    #[test]
    fn aggregate_and_event_rows() {
        let m: MeterName = Arc::from("m1");
        let mut a = PqAggregate::undefined(
            PqInterval::TenMinutes,
            600.0,
            1200.0,
            Nominal {
                voltage_v: 230.0,
                frequency_hz: 50.0,
            },
        );
        a.harmonics_v[1][2] = Some(3.5);
        a.pst = Some([Some(0.5), None, Some(0.25)]);
        let mut b = Batch::default();
        b.push_aggregate(&m, &a).unwrap();
        assert_eq!(b.intervals.len(), 3);
        assert_eq!(b.intervals[1].harmonics_v.len(), 50);
        assert_eq!(b.intervals[1].harmonics_v[2], Some(3.5));
        assert_eq!(b.intervals[2].pst, Some(0.25));
        assert_eq!(b.intervals[0].end_time_us, 1_200_000_000);
        assert_eq!(b.intervals[0].interval, "10min");
        let e = PqEvent {
            id: 3,
            kind: EventKind::Rvc {
                delta_max_v: 12.0,
                delta_steady_v: 4.0,
            },
            phases: PhaseSet::from_phases(&[3, 2]).unwrap(),
            start_s: 1.0,
            duration_s: 0.5,
            extreme_v: 240.0,
            reference_v: 230.0,
        };
        b.push_event(&m, &e).unwrap();
        assert_eq!(b.events[0].phases, [2, 3]);
        assert_eq!(b.events[0].delta_max, Some(12.0));
        assert_eq!(b.rows(), 4);
        a.start_s = 1e300;
        assert_eq!(b.push_aggregate(&m, &a), None);
    }

    #[test]
    fn seconds_to_us_bounds() {
        assert_eq!(seconds_to_us(1.000_000_4), Some(1_000_000));
        assert_eq!(seconds_to_us(-1.5), Some(-1_500_000));
        assert_eq!(seconds_to_us(f64::NAN), None);
        assert_eq!(seconds_to_us(1e300), None);
    }
}
