//! Home Assistant's side of docs/protocol.md §12, for the tests: the rules its MQTT sensor platform
//! applies to a discovery config (device class, unit, state class), and a small evaluator of the
//! Jinja subset the configs' `value_template`s use, to render them against a real `state/status`
//! payload. Shared by tests/wire_discovery.rs (the configs as data), tests/device_homeassistant.rs
//! (the engine) and tests/sim_e2e/homeassistant.rs (a simulator through a real mosquitto).
#![allow(dead_code)]

use serde_json::Value;

/// Home Assistant's sensor rules (developers.home-assistant.io, "Sensor entity": device classes
/// and their units; "Long-term statistics": state classes): the units each class accepts and the
/// state classes that make sense for it (the Energy dashboard needs `energy` with
/// `total`/`total_increasing` in Wh/kWh/MWh; `power_factor` is unit-less or `%`).
pub fn ha_valid(class: &str, unit: Option<&str>, state_class: &str) -> bool {
    let units: &[Option<&str>] = match class {
        "voltage" => &[Some("V"), Some("mV")],
        "current" => &[Some("A"), Some("mA")],
        "power" => &[Some("W"), Some("kW")],
        "reactive_power" => &[Some("var")],
        "apparent_power" => &[Some("VA")],
        "power_factor" => &[None, Some("%")],
        "frequency" => &[Some("Hz"), Some("kHz")],
        "energy" => &[Some("Wh"), Some("kWh"), Some("MWh")],
        _ => return false,
    };
    let states: &[&str] = match class {
        "energy" => &["total", "total_increasing"],
        _ => &["measurement"],
    };
    units.contains(&unit) && states.contains(&state_class)
}

/// What a config names, once it passed [`check_config`].
#[derive(Debug, Clone)]
pub struct Config {
    pub json: Value,
    pub unique_id: String,
    pub state_topic: String,
    pub value_template: String,
    pub availability_topic: String,
    pub device_class: String,
}

/// Checks one retained config message as Home Assistant's MQTT sensor would take it: the topic
/// `<prefix>/sensor/<node>/<object>/config`, a JSON object with every key §12 lists, a
/// class/unit/state-class triple [`ha_valid`] accepts, a `device` block with the five keys, and
/// no unit key on the power factor. `Err` names what is wrong.
pub fn check_config(prefix: &str, topic: &str, payload: &[u8]) -> Result<Config, String> {
    let levels: Vec<&str> = topic
        .strip_prefix(prefix)
        .and_then(|t| t.strip_prefix('/'))
        .ok_or_else(|| format!("{topic}: not under {prefix}/"))?
        .split('/')
        .collect();
    if levels.len() != 4 || levels[0] != "sensor" || levels[3] != "config" {
        return Err(format!(
            "{topic}: not <prefix>/sensor/<node>/<object>/config"
        ));
    }
    let json: Value =
        serde_json::from_slice(payload).map_err(|e| format!("{topic}: not JSON: {e}"))?;
    let text = |k: &str| -> Result<String, String> {
        json.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .ok_or_else(|| format!("{topic}: no string `{k}` in {json}"))
    };
    for k in ["name", "state_class"] {
        text(k)?;
    }
    let class = text("device_class")?;
    let unit = match json.get("unit_of_measurement") {
        None => None,
        Some(Value::String(u)) => Some(u.as_str()),
        Some(other) => return Err(format!("{topic}: unit {other}")),
    };
    let state_class = text("state_class")?;
    if !ha_valid(&class, unit, &state_class) {
        return Err(format!(
            "{topic}: Home Assistant refuses {class} in {unit:?} as {state_class}"
        ));
    }
    let device = json
        .get("device")
        .and_then(Value::as_object)
        .ok_or_else(|| format!("{topic}: no device block"))?;
    for k in ["identifiers", "name", "manufacturer", "model", "sw_version"] {
        if !device.contains_key(k) {
            return Err(format!("{topic}: device block lacks {k}"));
        }
    }
    let ids = device["identifiers"]
        .as_array()
        .filter(|a| !a.is_empty() && a.iter().all(Value::is_string))
        .ok_or_else(|| format!("{topic}: identifiers not a list of strings"))?;
    let unique_id = text("unique_id")?;
    // The node id of the topic is the device's identifier; the object id ends the unique_id.
    if ids[0] != levels[1] || unique_id != format!("{}_{}", levels[1], levels[2]) {
        return Err(format!(
            "{topic}: unique_id {unique_id} / identifiers {ids:?} do not follow the topic"
        ));
    }
    Ok(Config {
        unique_id,
        state_topic: text("state_topic")?,
        value_template: text("value_template")?,
        availability_topic: text("availability_topic")?,
        device_class: class,
        json,
    })
}

/// Renders a `value_template` of the subset the configs use against `value_json` (the parsed
/// status payload), as Home Assistant's Jinja would: `{{ value_json.key }}`,
/// `{{ value_json.key[i] }}` and the filters `reject('none')`, `sum`, `float`, `round(n)`.
/// `Ok(None)`: the value is `null` (Home Assistant shows the sensor as unknown). Anything outside
/// the subset is an `Err`, so a new template form fails the tests instead of passing unread.
pub fn render(template: &str, value_json: &Value) -> Result<Option<f64>, String> {
    let body = template
        .trim()
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .ok_or_else(|| format!("not one {{{{ expression }}}}: {template}"))?;
    let mut parts = body.split('|').map(str::trim);
    let expr = parts.next().unwrap_or_default();
    let mut path = expr
        .strip_prefix("value_json")
        .ok_or_else(|| format!("expression does not read value_json: {expr}"))?;
    let mut v = value_json.clone();
    while !path.is_empty() {
        if let Some(rest) = path.strip_prefix('.') {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let key = &rest[..end];
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("bad attribute in {expr}"));
            }
            v = v.get(key).cloned().unwrap_or(Value::Null);
            path = &rest[end..];
        } else if let Some(rest) = path.strip_prefix('[') {
            let (index, rest) = rest
                .split_once(']')
                .ok_or_else(|| format!("unclosed [ in {expr}"))?;
            let i: usize = index
                .trim()
                .parse()
                .map_err(|_| format!("bad index in {expr}"))?;
            v = v.get(i).cloned().unwrap_or(Value::Null);
            path = rest;
        } else {
            return Err(format!("cannot read {path:?} in {expr}"));
        }
    }
    for filter in parts {
        v = match filter {
            "reject('none')" | "reject(\"none\")" => Value::Array(
                v.as_array()
                    .ok_or_else(|| format!("reject on a non-list in {template}"))?
                    .iter()
                    .filter(|x| !x.is_null())
                    .cloned()
                    .collect(),
            ),
            "sum" => {
                let list = v
                    .as_array()
                    .ok_or_else(|| format!("sum of a non-list in {template}"))?;
                let mut total = 0.0;
                for x in list {
                    total += x
                        .as_f64()
                        .ok_or_else(|| format!("sum over {x} in {template}"))?;
                }
                Value::from(total)
            }
            "float" => Value::from(v.as_f64().unwrap_or(0.0)),
            f if f.starts_with("round(") && f.ends_with(')') => {
                let n: i32 = f[6..f.len() - 1]
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad {f}"))?;
                let x = v.as_f64().ok_or_else(|| format!("round of {v}"))?;
                let k = 10f64.powi(n);
                Value::from((x * k).round() / k)
            }
            other => return Err(format!("filter {other:?} is outside the subset")),
        };
    }
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        other => Err(format!("{template} renders {other}, not a number")),
    }
}

/// The status value an entity of `object` id (`voltage_l2`, `frequency`, `active_power_total`)
/// shows, read straight from the payload (the oracle [`render`] is compared with).
pub fn expected(object: &str, status: &Value) -> Option<f64> {
    let key = |stem: &str| match stem {
        "voltage" => "voltage",
        "current" => "current",
        "active_power" => "activePower",
        "reactive_power" => "reactivePower",
        "apparent_power" => "apparentPower",
        "power_factor" => "powerFactor",
        "energy_import" => "energyImport",
        "energy_export" => "energyExport",
        other => panic!("unknown object stem {other}"),
    };
    match object {
        "frequency" => status["frequency"].as_f64(),
        "active_power_total" => Some(
            status["activePower"]
                .as_array()?
                .iter()
                .filter_map(Value::as_f64)
                .sum(),
        ),
        _ => {
            let (stem, phase) = object.rsplit_once("_l").expect("<stem>_l<phase>");
            let p: usize = phase.parse().expect("phase");
            status[key(stem)][p - 1].as_f64()
        }
    }
}
