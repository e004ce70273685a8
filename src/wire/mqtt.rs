//! MQTT topics and payloads of PROTOCOL.md §8, as data: `(topic, payload)` in, `(topic, payload)` out.
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

/// Topic base of every meter (also the 3-phase one).
pub const BASE: &str = "powermeter";

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
pub fn sample_reply(values: &[f64; 3], q: Quantity, ts_long: &str) -> Vec<u8> {
    let v: Vec<String> = values.iter().map(|x| num(*x)).collect();
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
    fn state_and_null() {
        assert_eq!(
            state_reply(true, "x"),
            br#"{"sampleState":"sampling","ts":"x"}"#
        );
        let b = sample_reply(&[f64::NAN, 1.0, 2.5], Quantity::Energy, "t");
        assert_eq!(b, br#"{"value":"null,1.0,2.5","unit":"kWh","ts":"t"}"#);
    }
}
