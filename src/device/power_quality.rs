//! Power quality in the engine (docs/protocol.md §11): the `setNominal`, `getPQ`, `getEvents` and
//! `clearEvents` commands, and what the pipeline's outputs become after every block: each ended
//! event is numbered into the event store, written as a `[W]` log line and published on
//! `powermeter/<name>/state/event` (QoS 1, [`mqtt::publish_qos`]); each completed 10-min aggregate
//! is published on `powermeter/<name>/state/pq`.
//!
//! The pipeline itself lives in the measurements (`measure`), the store in `pq_events`.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;

use super::conns::Sink;
use super::engine::Device;
use super::measure::NominalConfig;
use super::timers::Timer;
use super::{Instant, LogLevel, RecordKind};
use crate::dsp::pq::{Interval, PqRecord};
use crate::text::Fixed;
use crate::wire::command::{NominalFrequency, NominalSettings, NominalValue, PqInterval};
use crate::wire::mqtt;
use crate::wire::pq::{EventKind, Nominal, PqAggregate, PqEvent};
use crate::wire::reply::{NominalInForce, NominalSet, Reply};

/// The pipeline's interval of a `getPQ` selector.
fn interval_of(i: PqInterval) -> Interval {
    match i {
        PqInterval::Basic => Interval::Basic,
        PqInterval::ThreeSeconds => Interval::ThreeSecond,
        PqInterval::TenMinutes => Interval::TenMinute,
        PqInterval::TwoHours => Interval::TwoHour,
    }
}

fn selector_of(i: Interval) -> PqInterval {
    match i {
        Interval::Basic => PqInterval::Basic,
        Interval::ThreeSecond => PqInterval::ThreeSeconds,
        Interval::TenMinute => PqInterval::TenMinutes,
        Interval::TwoHour => PqInterval::TwoHours,
    }
}

/// A value as the wire reports it: NaN / ∞ become `None` (`null`).
fn defined(x: f32) -> Option<f32> {
    x.is_finite().then_some(x)
}

/// The wire object of a pipeline record (the `getPQ` reply, the `state/pq` payload).
pub(crate) fn aggregate(r: &PqRecord) -> PqAggregate {
    let nominal = Nominal {
        voltage_v: r.nominal.voltage_v,
        frequency_hz: r.nominal.frequency_hz as f32,
    };
    let mut a = PqAggregate::undefined(
        selector_of(r.interval),
        r.start_unix_s,
        r.end_unix_s,
        nominal,
    );
    let d3 = |v: [f32; 3]| v.map(defined);
    let o3 = |v: [Option<f32>; 3]| v.map(|x| x.and_then(defined));
    a.flagged = r.flagged;
    a.voltage_v = d3(r.voltage_v);
    a.voltage_min_v = d3(r.voltage_min_v);
    a.voltage_max_v = d3(r.voltage_max_v);
    a.frequency_hz = r.frequency_hz.and_then(defined);
    a.u0_pct = r.u0_pct.and_then(defined);
    a.u2_pct = r.u2_pct.and_then(defined);
    a.thd_v_pct = o3(r.thd_v_pct);
    a.thd_i_pct = o3(r.thd_i_pct);
    for (out, h) in a.harmonics_v.iter_mut().zip(&r.harmonics_v) {
        for (o, x) in out.iter_mut().zip(h) {
            *o = defined(*x);
        }
    }
    for (out, h) in a.harmonics_i.iter_mut().zip(&r.harmonics_i_a) {
        for (o, x) in out.iter_mut().zip(h) {
            *o = defined(*x);
        }
    }
    a.pst = (r.interval == Interval::TenMinute).then(|| o3(r.pst));
    a.plt = (r.interval == Interval::TwoHour).then(|| o3(r.plt));
    a
}

/// The `[W]` log text of an ended event, e.g. `Dip L1,L2 to 138.2 V (60.1 %) for 100 ms`.
pub(crate) fn event_text(e: &PqEvent) -> String {
    let kind = match e.kind {
        EventKind::Dip => "Dip",
        EventKind::Swell => "Swell",
        EventKind::Interruption => "Interruption",
        EventKind::Rvc { .. } => "RVC",
    };
    let mut phases = String::new();
    for p in e.phases.iter() {
        if !phases.is_empty() {
            phases.push(',');
        }
        phases.push('L');
        phases.push(char::from(b'0' + p));
    }
    let pct = if e.reference_v > 0.0 {
        100.0 * e.extreme_v / e.reference_v
    } else {
        0.0
    };
    let ms = (e.duration_s * 1000.0).max(0.0);
    let (v, pct, ms) = (
        Fixed(e.extreme_v.into(), 1),
        Fixed(pct.into(), 1),
        Fixed(ms, 0),
    );
    format!("{kind} {phases} to {v} V ({pct} %) for {ms} ms")
}

impl Device {
    /// After every block: events into the store, the log and MQTT; a completed 10-min aggregate to
    /// MQTT.
    pub(crate) fn power_quality(&mut self, now: Instant) {
        while let Some(e) = self.meter.poll_pq_event() {
            let ev = self.pq_events.push(&e);
            self.log(now, LogLevel::Warning, &event_text(&ev));
            let topic = mqtt::event_topic(&self.config.name);
            self.publish(topic, ev.to_json().into_bytes(), false);
            self.timers
                .set_opt(Timer::EventsWrite, self.pq_events.write_due(now));
        }
        if let Some(r) = self.meter.new_ten_minute() {
            let body = aggregate(r).to_json().into_bytes();
            let topic = mqtt::pq_topic(&self.config.name);
            self.publish(topic, body, false);
        }
    }

    /// Queues the event store now.
    pub(crate) fn persist_events(&mut self, now: Instant) {
        self.timers.stop(Timer::EventsWrite);
        let p = self.pq_events.take_snapshot(now);
        self.persist.save(RecordKind::Events, p, &mut self.outbox);
    }

    /// Queues the event store if it changed, whatever the pacing (shutdown, restart).
    pub(crate) fn persist_events_if_changed(&mut self, now: Instant) {
        if self.pq_events.write_due(now).is_some() {
            self.persist_events(now);
        }
    }

    /// `setNominal`: the settings change (persisted), the pipeline is rebuilt with them.
    pub(crate) fn set_nominal(&mut self, sink: Sink, n: NominalSettings) {
        match n.voltage_v {
            NominalValue::Keep => {}
            NominalValue::Auto => self.config.nominal_voltage_v = 0.0,
            NominalValue::Fixed(v) => self.config.nominal_voltage_v = v,
        }
        match n.frequency {
            NominalValue::Keep => {}
            NominalValue::Auto => self.config.nominal_frequency_hz = 0,
            NominalValue::Fixed(f) => self.config.nominal_frequency_hz = u32::from(f.hz()),
        }
        self.persist_settings();
        let cfg = self.config.nominal();
        self.meter.set_nominal(cfg);
        let r = Reply::Nominal(self.nominal_in_force(cfg));
        self.reply(sink, &r);
    }

    /// The nominal values as the `setNominal` reply states them.
    fn nominal_in_force(&self, cfg: NominalConfig) -> NominalSet {
        let decided = self.meter.nominal();
        let voltage_v = match cfg.voltage_v {
            Some(v) => NominalInForce::Fixed(v),
            None => NominalInForce::Auto(decided.map(|n| n.voltage_v)),
        };
        let hz = |f: u32| NominalFrequency::from_hz(i64::from(f));
        let frequency = match cfg.frequency_hz.and_then(hz) {
            Some(f) => NominalInForce::Fixed(f),
            None => NominalInForce::Auto(decided.and_then(|n| hz(n.frequency_hz))),
        };
        NominalSet {
            voltage_v,
            frequency,
        }
    }

    /// `getPQ`: the last complete interval of that length, or `No complete <interval> interval yet`.
    pub(crate) fn get_pq(&mut self, sink: Sink, interval: PqInterval) {
        let r = match self.meter.pq_last(interval_of(interval)) {
            Some(rec) => Reply::Pq(Box::new(aggregate(rec))),
            None => Reply::pq_not_ready(interval),
        };
        self.reply(sink, &r);
    }

    /// `getEvents`: a page of stored events after `since`.
    pub(crate) fn get_events(&mut self, sink: Sink, since: u32) {
        let (events, next) = self.pq_events.page(since);
        self.reply(sink, &Reply::Events { events, next });
    }

    /// `clearEvents`: the store empties (written when the pacing allows).
    pub(crate) fn clear_events(&mut self, sink: Sink, now: Instant) {
        self.pq_events.clear();
        self.timers
            .set_opt(Timer::EventsWrite, self.pq_events.write_due(now));
        self.reply(sink, &Reply::ClearEvents);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::pq::PhaseSet;

    #[test]
    fn the_log_text_names_kind_phases_extreme_and_duration() {
        let e = PqEvent {
            id: 1,
            kind: EventKind::Dip,
            phases: PhaseSet::from_phases(&[1, 2]).unwrap(),
            start_s: 0.0,
            duration_s: 0.1,
            extreme_v: 138.2,
            reference_v: 230.0,
        };
        assert_eq!(event_text(&e), "Dip L1,L2 to 138.2 V (60.1 %) for 100 ms");
    }
}
