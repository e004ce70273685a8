//! MQTT topics and payloads of docs/protocol.md §8, as data: `(topic, payload)` in, `(topic, payload)` out.
//! No client, no state: the binding moves messages, the engine decides what they mean.
//!
//! ```
//! use smartmeter::wire::mqtt::{self, Inbound, Quantity};
//! assert_eq!(mqtt::subscriptions("m1"), ["powermeter/+".to_string(), "powermeter/m1/+".to_string()]);
//! assert_eq!(mqtt::parse_topic("powermeter/m1/cmd", "m1"), Some(Inbound::Cmd));
//! assert_eq!(mqtt::parse_topic("powermeter/sample", "m1"), Some(Inbound::Sample));
//! assert_eq!(mqtt::parse_topic("powermeter/other/cmd", "m1"), None);
//! assert_eq!(Quantity::parse(b"v"), Quantity::Voltage);
//! assert_eq!(Quantity::parse(b"junk"), Quantity::ActivePower);
//! let body = mqtt::sample_reply(&[230.5, 231.0, 229.75], Quantity::Voltage, "03/08/2021 11:42:34.848");
//! assert_eq!(body, br#"{"value":"230.5,231.0,229.75","unit":"V","ts":"03/08/2021 11:42:34.848"}"#);
//! ```

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::wire::command::json::{Obj, push_f64};
use crate::wire::command::raw::Loose;
use crate::wire::pq::read;
use crate::wire::reply::Phases;

/// Topic base of every meter (also the 3-phase one).
pub const BASE: &str = "powermeter";

/// The filter matching every topic a meter publishes on (`powermeter/+/state/#`).
pub const STATE_FILTER: &str = "powermeter/+/state/#";

object_error! {
    /// Why a payload, topic or filter of this module was rejected.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum MqttError {
        /// A shared-subscription group name that MQTT does not allow.
        #[error("Invalid group `{0}`: expected a non-empty name without `/`, `+` or `#`")]
        Group(String),
    }
}
object_error!(@from_pq MqttError);

/// `$share/<group>/powermeter/+/state/#`: the MQTT 5 / mosquitto 2 shared subscription, so that the
/// broker hands each message to one subscriber of the group only.
///
/// ```
/// use smartmeter::wire::mqtt;
/// assert_eq!(mqtt::shared_state_filter("archive").unwrap(), "$share/archive/powermeter/+/state/#");
/// assert!(mqtt::shared_state_filter("a/b").is_err());
/// ```
pub fn shared_state_filter(group: &str) -> Result<String, MqttError> {
    if group.is_empty() || group.contains(['/', '+', '#']) || group.contains(char::is_control) {
        return Err(MqttError::Group(String::from(group)));
    }
    Ok(format!("$share/{group}/{STATE_FILTER}"))
}

/// What a meter publishes on: the last segment of `powermeter/<name>/state/<leaf>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateLeaf<'a> {
    /// `info`: command replies, one-shot readings, MQTT sampling.
    Info,
    /// `sample`: the classic 5-s status, `on`/`off`.
    Sample,
    /// `online`: `online` / `offline` (last will).
    Online,
    /// `status`: the per-phase status of §12 ([`Status`]).
    Status,
    /// `pq`: a completed 10-min aggregate ([`crate::wire::pq::PqAggregate`]).
    Pq,
    /// `event`: an ended power-quality event ([`crate::wire::pq::PqEvent`]).
    Event,
    /// Any other leaf (a newer firmware's).
    Other(&'a str),
}

impl<'a> StateLeaf<'a> {
    /// The topic segment.
    pub fn as_str(&self) -> &'a str {
        match self {
            StateLeaf::Info => "info",
            StateLeaf::Sample => "sample",
            StateLeaf::Online => "online",
            StateLeaf::Status => "status",
            StateLeaf::Pq => "pq",
            StateLeaf::Event => "event",
            StateLeaf::Other(s) => s,
        }
    }
}

/// A parsed `powermeter/<name>/state/<leaf>` topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateTopic<'a> {
    /// The meter's name (the second segment).
    pub meter: &'a str,
    /// The last segment.
    pub leaf: StateLeaf<'a>,
}

/// Reads a topic a meter publishes on: exactly `powermeter/<name>/state/<leaf>` with a non-empty
/// name and leaf; anything else (commands, broadcasts, deeper topics) is `None`.
///
/// ```
/// use smartmeter::wire::mqtt::{self, StateLeaf, StateTopic};
/// assert_eq!(
///     mqtt::parse_state_topic("powermeter/m1/state/status"),
///     Some(StateTopic { meter: "m1", leaf: StateLeaf::Status })
/// );
/// assert_eq!(mqtt::parse_state_topic("powermeter/m1/cmd"), None);
/// ```
pub fn parse_state_topic(topic: &str) -> Option<StateTopic<'_>> {
    let rest = topic.strip_prefix(BASE)?.strip_prefix('/')?;
    let (meter, rest) = rest.split_once('/')?;
    let leaf = rest.strip_prefix("state/")?;
    if meter.is_empty() || leaf.is_empty() || leaf.contains('/') {
        return None;
    }
    let leaf = match leaf {
        "info" => StateLeaf::Info,
        "sample" => StateLeaf::Sample,
        "online" => StateLeaf::Online,
        "status" => StateLeaf::Status,
        "pq" => StateLeaf::Pq,
        "event" => StateLeaf::Event,
        other => StateLeaf::Other(other),
    };
    Some(StateTopic { meter, leaf })
}

/// `powermeter/<name>/state/<leaf>`: the builder [`parse_state_topic`] inverts.
pub fn state_topic(name: &str, leaf: StateLeaf<'_>) -> String {
    format!("{BASE}/{name}/state/{}", leaf.as_str())
}

/// What an inbound message asks for (the last topic segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// `cmd`: the payload is a command JSON; the reply goes to `state/info`.
    Cmd,
    /// `sample`: a one-shot reading of the quantity in the payload.
    Sample,
    /// `state`: the sampling state.
    State,
}

/// The two topic filters a meter subscribes to: broadcast and its own.
pub fn subscriptions(name: &str) -> [String; 2] {
    [format!("{BASE}/+"), format!("{BASE}/{name}/+")]
}

/// `powermeter/<name>/state/info`: replies, one-shot readings, MQTT sampling.
pub fn info_topic(name: &str) -> String {
    format!("{BASE}/{name}/state/info")
}

/// `powermeter/<name>/state/sample`: 5-s status and `on`/`off`.
pub fn sample_topic(name: &str) -> String {
    format!("{BASE}/{name}/state/sample")
}

/// `powermeter/<name>/state/online`: last will `offline` (retained), `online` on connect.
pub fn online_topic(name: &str) -> String {
    format!("{BASE}/{name}/state/online")
}

/// `powermeter/<name>/state/status`: the per-phase status of §12.
pub fn status_topic(name: &str) -> String {
    format!("{BASE}/{name}/state/status")
}

/// `powermeter/<name>/state/pq`: each completed 10-min power-quality aggregate.
pub fn pq_topic(name: &str) -> String {
    format!("{BASE}/{name}/state/pq")
}

/// `powermeter/<name>/state/event`: each ended power-quality event (QoS 1, not retained).
pub fn event_topic(name: &str) -> String {
    format!("{BASE}/{name}/state/event")
}

/// MQTT delivery guarantee of a publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qos {
    /// QoS 0: fire and forget (readings that the next one replaces).
    AtMostOnce,
    /// QoS 1: delivered at least once.
    AtLeastOnce,
}

/// The QoS a meter publishes with (docs/protocol.md §8, §11): retained messages (`online` /
/// `offline`, clearing an old name, like the last will) and power-quality events
/// (`powermeter/<name>/state/event`) at least once, everything else at most once. A function of the
/// topic and the retain flag, so every binding publishes each engine publication the same way.
///
/// ```
/// use smartmeter::wire::mqtt::{self, Qos};
/// assert_eq!(mqtt::publish_qos(&mqtt::event_topic("m1"), false), Qos::AtLeastOnce);
/// assert_eq!(mqtt::publish_qos(&mqtt::pq_topic("m1"), false), Qos::AtMostOnce);
/// assert_eq!(mqtt::publish_qos(&mqtt::online_topic("m1"), true), Qos::AtLeastOnce);
/// ```
pub fn publish_qos(topic: &str, retain: bool) -> Qos {
    let event = parse_state_topic(topic).is_some_and(|t| t.leaf == StateLeaf::Event);
    if retain || event {
        Qos::AtLeastOnce
    } else {
        Qos::AtMostOnce
    }
}

/// Classifies an inbound topic for the meter called `name`: `powermeter/<x>` (broadcast) or
/// `powermeter/<name>/<x>`; anything else (other meters, our own `state/...`) is `None`.
pub fn parse_topic(topic: &str, name: &str) -> Option<Inbound> {
    let rest = topic.strip_prefix(BASE)?.strip_prefix('/')?;
    let last = match rest.split_once('/') {
        None => rest,
        Some((n, last)) if n == name && !last.contains('/') => last,
        Some(_) => return None,
    };
    match last {
        "cmd" => Some(Inbound::Cmd),
        "sample" => Some(Inbound::Sample),
        "state" => Some(Inbound::State),
        _ => None,
    }
}

/// The quantity of a one-shot `sample` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// `v`: RMS voltage, V.
    Voltage,
    /// `i`: RMS current, mA.
    Current,
    /// `p` (and anything unknown): active power, W.
    ActivePower,
    /// `q`: reactive power, var.
    ReactivePower,
    /// `s`: apparent power, VA.
    ApparentPower,
    /// `e`: energy, kWh.
    Energy,
}

impl Quantity {
    /// Reads the payload (`v`, `i`, `p`, `q`, `s`, `e`, surrounding whitespace ignored); anything
    /// else is active power.
    pub fn parse(payload: &[u8]) -> Quantity {
        match payload.trim_ascii() {
            b"v" => Quantity::Voltage,
            b"i" => Quantity::Current,
            b"q" => Quantity::ReactivePower,
            b"s" => Quantity::ApparentPower,
            b"e" => Quantity::Energy,
            _ => Quantity::ActivePower,
        }
    }

    /// The unit string of the reply.
    pub fn unit(self) -> &'static str {
        match self {
            Quantity::Voltage => "V",
            Quantity::Current => "mA",
            Quantity::ActivePower => "W",
            Quantity::ReactivePower => "var",
            Quantity::ApparentPower => "VA",
            Quantity::Energy => "kWh",
        }
    }
}

fn num(v: f64) -> String {
    if v.is_finite() {
        serde_json::to_string(&v).unwrap_or_else(|_| String::from("null"))
    } else {
        String::from("null")
    }
}

fn num32(v: f32) -> String {
    if v.is_finite() {
        serde_json::to_string(&v).unwrap_or_else(|_| String::from("null"))
    } else {
        String::from("null")
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// `{"value":"v1,v2,v3","unit":…,"ts":"MM/DD/YYYY HH:MM:SS.mmm"}` (undefined values print `null`).
///
/// `v`, `i`, `p`, `q` and `s` are f32 measurements (the caller may pass them widened): they print
/// in the f32's shortest round-trip form (`228.43`, as every reply does, docs/protocol.md §2.2), never
/// as the widened f64 (`228.42999267578125`). Energy (`e`, kWh) is an f64 and prints as one.
pub fn sample_reply(values: &[f64; 3], q: Quantity, ts_long: &str) -> Vec<u8> {
    let v: Vec<String> = values
        .iter()
        .map(|x| match q {
            Quantity::Energy => num(*x),
            // Exact for a widened f32; a wider value is rounded to the f32 the reading is.
            _ => num32(*x as f32),
        })
        .collect();
    format!(
        "{{\"value\":{},\"unit\":{},\"ts\":{}}}",
        quoted(&v.join(",")),
        quoted(q.unit()),
        quoted(ts_long)
    )
    .into_bytes()
}

/// `{"sampleState":"idle"|"sampling","ts":…}`.
pub fn state_reply(sampling: bool, ts_long: &str) -> Vec<u8> {
    format!(
        "{{\"sampleState\":\"{}\",\"ts\":{}}}",
        if sampling { "sampling" } else { "idle" },
        quoted(ts_long)
    )
    .into_bytes()
}

/// The 5-s status: `{"power":ΣP W,"energy":ΣE kWh,"current":ΣI A,"volt":mean V,"ts":"<unix s>"}`.
///
/// ```
/// let b = smartmeter::wire::mqtt::status(1116.5, 2.25, 4.75, 236.5, 1614681575);
/// assert_eq!(b, br#"{"power":1116.5,"energy":2.25,"current":4.75,"volt":236.5,"ts":"1614681575"}"#);
/// ```
pub fn status(power_w: f64, energy_kwh: f64, current_a: f64, volt_v: f64, unix_s: u64) -> Vec<u8> {
    format!(
        "{{\"power\":{},\"energy\":{},\"current\":{},\"volt\":{},\"ts\":\"{unix_s}\"}}",
        num(power_w),
        num(energy_kwh),
        num(current_a),
        num(volt_v)
    )
    .into_bytes()
}

/// One MQTT sampling message: `{"unit":…,"ts":"<s.mmm>","values":[…]}`.
///
/// ```
/// let b = smartmeter::wire::mqtt::sample_values("V,mA", "1614697441.119", &[230.0, 512.5]);
/// assert_eq!(b, br#"{"unit":"V,mA","ts":"1614697441.119","values":[230.0,512.5]}"#);
/// ```
pub fn sample_values(unit: &str, ts_unix_ms: &str, values: &[f32]) -> Vec<u8> {
    let v: Vec<String> = values.iter().map(|x| num32(*x)).collect();
    format!(
        "{{\"unit\":{},\"ts\":{},\"values\":[{}]}}",
        quoted(unit),
        quoted(ts_unix_ms),
        v.join(",")
    )
    .into_bytes()
}

/// The per-phase status of docs/protocol.md §12, published every status interval on
/// `powermeter/<name>/state/status`. `None` is an undefined value (`null`).
///
/// ```
/// use smartmeter::wire::mqtt::Status;
/// let s = Status {
///     ts_s: Some(1_700_000_000.5),
///     voltage_v: [Some(230.5), Some(231.0), None],
///     frequency_hz: Some(50.0),
///     energy_import_kwh: [Some(1.25), Some(0.0), None],
///     ..Status::default()
/// };
/// let json = s.to_json();
/// assert_eq!(
///     json,
///     r#"{"ts":1700000000.5,"voltage":[230.5,231.0,null],"current":[null,null,null],"activePower":[null,null,null],"reactivePower":[null,null,null],"apparentPower":[null,null,null],"powerFactor":[null,null,null],"frequency":50.0,"energyImport":[1.25,0.0,null],"energyExport":[null,null,null]}"#
/// );
/// assert_eq!(Status::parse(json.as_bytes()), Ok(s));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Status {
    /// When the values were taken, Unix seconds (`None` while the meter has no time).
    pub ts_s: Option<f64>,
    /// RMS voltage per phase (L-N), V.
    pub voltage_v: Phases,
    /// RMS current per phase, A.
    pub current_a: Phases,
    /// Active power per phase, W.
    pub active_power_w: Phases,
    /// Reactive power per phase, var.
    pub reactive_power_var: Phases,
    /// Apparent power per phase, VA.
    pub apparent_power_va: Phases,
    /// Power factor per phase.
    pub power_factor: Phases,
    /// Line frequency, Hz.
    pub frequency_hz: Option<f32>,
    /// Imported energy per phase, kWh.
    pub energy_import_kwh: [Option<f64>; 3],
    /// Exported energy per phase, kWh.
    pub energy_export_kwh: [Option<f64>; 3],
}

impl Status {
    /// The canonical payload: keys `ts,voltage,current,activePower,reactivePower,apparentPower,
    /// powerFactor,frequency,energyImport,energyExport`, serde_json's shortest floats, `null` for
    /// undefined (and for a non-finite value).
    pub fn to_json(&self) -> String {
        let mut o = Obj::new();
        opt_f64(o.key("ts"), self.ts_s);
        o.opt_f32s("voltage", &self.voltage_v)
            .opt_f32s("current", &self.current_a)
            .opt_f32s("activePower", &self.active_power_w)
            .opt_f32s("reactivePower", &self.reactive_power_var)
            .opt_f32s("apparentPower", &self.apparent_power_va)
            .opt_f32s("powerFactor", &self.power_factor);
        match self.frequency_hz {
            Some(f) => o.f32("frequency", f),
            None => o.raw("frequency", "null"),
        };
        opt_f64s(o.key("energyImport"), &self.energy_import_kwh);
        opt_f64s(o.key("energyExport"), &self.energy_export_kwh);
        o.finish()
    }

    /// Reads a status payload tolerantly: keys in any order, numbers as strings, unknown keys
    /// ignored, a missing key undefined. Only a payload that is not a JSON object, or a key of the
    /// wrong shape (`voltage` not 3 numbers or nulls), is refused.
    pub fn parse(json: &[u8]) -> Result<Status, MqttError> {
        let raw: RawStatus<'_> =
            serde_json::from_slice(json.trim_ascii()).map_err(|_| MqttError::Json)?;
        Ok(Status {
            ts_s: read::f64_opt(&raw.ts, "ts")?,
            voltage_v: read::phases(&raw.voltage, "voltage")?,
            current_a: read::phases(&raw.current, "current")?,
            active_power_w: read::phases(&raw.active_power, "activePower")?,
            reactive_power_var: read::phases(&raw.reactive_power, "reactivePower")?,
            apparent_power_va: read::phases(&raw.apparent_power, "apparentPower")?,
            power_factor: read::phases(&raw.power_factor, "powerFactor")?,
            frequency_hz: read::f32_opt(&raw.frequency, "frequency")?,
            energy_import_kwh: read::phases_f64(&raw.energy_import, "energyImport")?,
            energy_export_kwh: read::phases_f64(&raw.energy_export, "energyExport")?,
        })
    }
}

fn opt_f64(out: &mut String, v: Option<f64>) {
    match v {
        Some(v) => push_f64(out, v),
        None => out.push_str("null"),
    }
}

fn opt_f64s(out: &mut String, vs: &[Option<f64>; 3]) {
    out.push('[');
    for (i, v) in vs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        opt_f64(out, *v);
    }
    out.push(']');
}

/// The loose form of a status payload. A key given twice is an error.
#[derive(Debug, Default, serde::Deserialize)]
struct RawStatus<'a> {
    #[serde(borrow)]
    ts: Option<Loose<'a>>,
    #[serde(borrow)]
    voltage: Option<Loose<'a>>,
    #[serde(borrow)]
    current: Option<Loose<'a>>,
    #[serde(borrow, rename = "activePower")]
    active_power: Option<Loose<'a>>,
    #[serde(borrow, rename = "reactivePower")]
    reactive_power: Option<Loose<'a>>,
    #[serde(borrow, rename = "apparentPower")]
    apparent_power: Option<Loose<'a>>,
    #[serde(borrow, rename = "powerFactor")]
    power_factor: Option<Loose<'a>>,
    #[serde(borrow)]
    frequency: Option<Loose<'a>>,
    #[serde(borrow, rename = "energyImport")]
    energy_import: Option<Loose<'a>>,
    #[serde(borrow, rename = "energyExport")]
    energy_export: Option<Loose<'a>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        assert_eq!(info_topic("a"), "powermeter/a/state/info");
        assert_eq!(sample_topic("a"), "powermeter/a/state/sample");
        assert_eq!(online_topic("a"), "powermeter/a/state/online");
        assert_eq!(parse_topic("powermeter/a/state/info", "a"), None);
        assert_eq!(parse_topic("powermeter/a/state", "a"), Some(Inbound::State));
        assert_eq!(parse_topic("powermeter/cmd", "a"), Some(Inbound::Cmd));
        assert_eq!(parse_topic("smartmeter/a/cmd", "a"), None);
        assert_eq!(parse_topic("powermeter", "a"), None);
    }

    #[test]
    fn state_topics_both_ways() {
        for leaf in [
            StateLeaf::Info,
            StateLeaf::Sample,
            StateLeaf::Online,
            StateLeaf::Status,
            StateLeaf::Pq,
            StateLeaf::Event,
            StateLeaf::Other("later"),
        ] {
            let t = state_topic("m-1", leaf);
            assert_eq!(
                parse_state_topic(&t),
                Some(StateTopic { meter: "m-1", leaf })
            );
        }
        assert_eq!(status_topic("a"), "powermeter/a/state/status");
        assert_eq!(pq_topic("a"), "powermeter/a/state/pq");
        assert_eq!(event_topic("a"), "powermeter/a/state/event");
        for bad in [
            "powermeter//state/status",
            "powermeter/a/state/",
            "powermeter/a/state",
            "powermeter/a/state/x/y",
            "powermeter/a/cmd",
            "powermeter/state",
            "powermeterx/a/state/status",
            "other/a/state/status",
            "",
        ] {
            assert_eq!(parse_state_topic(bad), None, "{bad}");
        }
    }

    #[test]
    fn state_and_null() {
        assert_eq!(
            state_reply(true, "x"),
            br#"{"sampleState":"sampling","ts":"x"}"#
        );
        let b = sample_reply(&[f64::NAN, 1.0, 2.5], Quantity::Energy, "t");
        assert_eq!(b, br#"{"value":"null,1.0,2.5","unit":"kWh","ts":"t"}"#);
    }

    /// One-shot readings are f32 measurements: they print as the f32's shortest round-trip text
    /// (`228.43`), not as the f64 they were widened to (`228.42999267578125`); energy is an f64.
    #[test]
    fn one_shot_readings_print_their_f32_text() {
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        let v = [228.43f32, 230.00003, 0.1].map(f64::from);
        assert_eq!(
            text(sample_reply(&v, Quantity::Voltage, "t")),
            r#"{"value":"228.43,230.00003,0.1","unit":"V","ts":"t"}"#
        );
        let p = [995.9293f32, -12.25, f32::NAN].map(f64::from);
        assert_eq!(
            text(sample_reply(&p, Quantity::ActivePower, "t")),
            r#"{"value":"995.9293,-12.25,null","unit":"W","ts":"t"}"#
        );
        assert_eq!(
            text(sample_reply(&[0.1, 1.0 / 3.0, 2.5], Quantity::Energy, "t")),
            r#"{"value":"0.1,0.3333333333333333,2.5","unit":"kWh","ts":"t"}"#
        );
    }
}
