//! Human and `--json` output.

use std::io::Write;
use std::string::{String, ToString};
use std::time::Duration;
use std::vec::Vec;
use std::{format, vec};

use super::signal::Signals;
use super::{CliError, Quantity};
use crate::client::{Client, ClientError, Discovered, MeterStatus, Response};

/// A value per phase, as the tables print them.
pub(crate) type Phases = [Option<f64>; 3];
use crate::wire::log::LogLine;

/// Where output goes and in which form.
pub(crate) struct Out {
    pub(crate) json: bool,
}

/// `1116.89`, `-` for undefined; a value that rounds to zero prints without a sign (`0.00`, not
/// `-0.00`).
pub(crate) fn num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => {
            let s = format!("{x:.decimals$}");
            match s.strip_prefix('-') {
                Some(rest) if rest.bytes().all(|b| b == b'0' || b == b'.') => rest.to_string(),
                _ => s,
            }
        }
        _ => "-".to_string(),
    }
}

/// A reply value for people: strings without quotes, arrays as `a, b, c`, and energies (f64
/// accumulators with 17 significant digits on the wire) to the milliwatt-hour.
fn value_text(key: &str, v: &serde_json::Value) -> String {
    use serde_json::Value;
    let scalar = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if key.starts_with("energy") => n
            .as_f64()
            .map_or_else(|| n.to_string(), |x| format!("{x:.3}")),
        other => other.to_string(),
    };
    let unit = if key.starts_with("energy") { " Wh" } else { "" };
    match v {
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(scalar).collect();
            format!("{}{unit}", items.join(", "))
        }
        Value::Number(_) => format!("{}{unit}", scalar(v)),
        other => scalar(other),
    }
}

/// A table: a header row and rows, columns right-aligned except the first.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut width = vec![0usize; cols];
    for (k, h) in header.iter().enumerate() {
        if let Some(w) = width.get_mut(k) {
            *w = h.chars().count();
        }
    }
    for r in rows {
        for (k, c) in r.iter().enumerate() {
            if let Some(w) = width.get_mut(k) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let mut s = String::new();
    let line = |s: &mut String, cells: &mut dyn Iterator<Item = String>| {
        let mut first = true;
        for (k, c) in cells.enumerate() {
            let w = width.get(k).copied().unwrap_or(0);
            if first {
                s.push_str(&format!("{c:<w$}"));
                first = false;
            } else {
                s.push_str(&format!("  {c:>w$}"));
            }
        }
        s.push('\n');
    };
    line(&mut s, &mut header.iter().map(|h| h.to_string()));
    for r in rows {
        line(&mut s, &mut r.iter().cloned());
    }
    s
}

const PHASES: [&str; 3] = ["L1", "L2", "L3"];

fn per_phase(columns: &[(&str, Phases, usize)]) -> String {
    let mut header = vec!["phase"];
    header.extend(columns.iter().map(|c| c.0));
    let rows: Vec<Vec<String>> = PHASES
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let mut row = vec![name.to_string()];
            row.extend(
                columns
                    .iter()
                    .map(|(_, v, d)| num(v.get(k).copied().flatten(), *d)),
            );
            row
        })
        .collect();
    table(&header, &rows)
}

impl Out {
    pub(crate) fn new(json: bool) -> Out {
        Out { json }
    }

    pub(crate) fn print(&self, text: &str) -> Result<(), CliError> {
        let mut o = std::io::stdout().lock();
        o.write_all(text.as_bytes())?;
        o.flush()?;
        Ok(())
    }

    /// Exactly the meter's object with `--json`; else `key: value` lines in the meter's order.
    pub(crate) fn response(&self, r: &Response) -> Result<(), CliError> {
        if self.json {
            return self.print(&format!("{}\n", r.json()));
        }
        let raw = Raw::of(r);
        let entries = raw.entries();
        // A reply that only confirms: print its message.
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        if let Some(msg) = raw.msg()
            && keys.iter().all(|k| matches!(*k, "error" | "cmd" | "msg"))
        {
            return self.print(&format!("{msg}\n"));
        }
        // `error` and `cmd` say nothing a person asked for (a refusal never gets here).
        let shown = |k: &str| !matches!(k, "error" | "cmd");
        let width = keys
            .iter()
            .filter(|k| shown(k))
            .map(|k| k.len())
            .max()
            .unwrap_or(0);
        let mut s = String::new();
        for (k, v) in entries.iter().filter(|(k, _)| shown(k)) {
            s.push_str(&format!("{k:<width$}  {}\n", value_text(k, v)));
        }
        self.print(&s)
    }

    /// The reply of `set`: the meter's `msg` (the whole object with `--json`).
    pub(crate) fn confirmation(&self, r: &Response) -> Result<(), CliError> {
        match Raw::of(r).msg() {
            Some(msg) if !self.json => self.print(&format!("{msg}\n")),
            _ => self.response(r),
        }
    }

    /// The raw reply of `cmd`: always the JSON object, one per line.
    pub(crate) fn raw(&self, r: &Response) -> Result<(), CliError> {
        self.print(&format!("{}\n", r.json()))
    }

    pub(crate) fn quantity(&self, what: Quantity, r: &Response) -> Result<(), CliError> {
        if self.json {
            return self.print(&format!("{}\n", r.json()));
        }
        let raw = Raw::of(r);
        let ph = |k: &str| raw.phases(k).unwrap_or([None; 3]);
        let text = match what {
            Quantity::Power => per_phase(&[
                ("P (W)", ph("activePower"), 2),
                ("Q (var)", ph("reactivePower"), 2),
                ("S (VA)", ph("apparentPower"), 2),
            ]),
            Quantity::Voltage => per_phase(&[("V (V)", ph("voltage"), 2)]),
            Quantity::Current => per_phase(&[("I (mA)", ph("current"), 1)]),
            Quantity::Frequency => per_phase(&[("f (Hz)", ph("period"), 3)]),
            Quantity::Phase => per_phase(&[("phi (deg)", ph("phase"), 2)]),
            Quantity::Quality => {
                let mut t = per_phase(&[
                    ("THD V (%)", ph("thd_v"), 2),
                    ("THD I (%)", ph("thd_i"), 2),
                    ("PF", ph("powerFactor"), 3),
                    ("Q1 (var)", ph("fundamentalReactivePower"), 2),
                    ("N (VA)", ph("nonactivePower"), 2),
                    ("V min (V)", ph("vrmsHalfCycleMin"), 2),
                    ("V max (V)", ph("vrmsHalfCycleMax"), 2),
                    ("E+ (Wh)", ph("energyImport"), 3),
                    ("E- (Wh)", ph("energyExport"), 3),
                ]);
                let ll = ph("lineVoltage");
                t.push_str(&format!(
                    "line voltage L1-L2 {} V, L2-L3 {} V, L3-L1 {} V\n",
                    num(ll[0], 2),
                    num(ll[1], 2),
                    num(ll[2], 2)
                ));
                t.push_str(&format!(
                    "frequency (10 s) {} Hz; V min/max: half-cycle RMS since the last getQuality\n",
                    num(raw.f64("frequency10s"), 3)
                ));
                t
            }
            Quantity::Energy => {
                let mut t = per_phase(&[("E (Wh)", ph("energy"), 3)]);
                if let Some(start) = raw.str("start") {
                    t.push_str(&format!("since {start}"));
                    if let Some(days) = raw.f64("days") {
                        t.push_str(&format!(" ({days} days)"));
                    }
                    t.push('\n');
                }
                t
            }
        };
        self.print(&text)
    }

    pub(crate) fn log_rows(&self, rows: &[String]) -> Result<(), CliError> {
        let mut s = String::new();
        for r in rows {
            if self.json {
                s.push_str(&serde_json::Value::String(r.clone()).to_string());
            } else {
                s.push_str(r);
            }
            s.push('\n');
        }
        self.print(&s)
    }

    pub(crate) fn log_line(&self, l: &LogLine) -> Result<(), CliError> {
        if self.json {
            return self.print(&format!("{}\n", serde_json::Value::String(l.to_string())));
        }
        self.print(&format!("{l}\n"))
    }

    pub(crate) fn discovered(&self, found: &[Discovered]) -> Result<(), CliError> {
        if self.json {
            let mut s = String::new();
            for d in found {
                let o = serde_json::json!({
                    "name": d.name,
                    "host": d.hostname,
                    "addresses": d.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                    "port": d.port,
                    "version": d.version,
                    "type": d.kind,
                });
                s.push_str(&format!("{o}\n"));
            }
            return self.print(&s);
        }
        if found.is_empty() {
            return self.print("no meters answered\n");
        }
        let rows: Vec<Vec<String>> = found
            .iter()
            .map(|d| {
                let addr = d
                    .addresses
                    .first()
                    .map_or("-".to_string(), |a| a.to_string());
                vec![
                    d.name.clone(),
                    addr,
                    d.port.to_string(),
                    d.version.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        self.print(&table(&["name", "address", "port", "version"], &rows))
    }

    pub(crate) fn fleet(&self, meters: &[MeterStatus]) -> Result<(), CliError> {
        let yes_no = |b: Option<bool>, y: &str, n: &str| match b {
            Some(true) => y.to_string(),
            Some(false) => n.to_string(),
            None => "?".to_string(),
        };
        if self.json {
            let mut s = String::new();
            for m in meters {
                let o = serde_json::json!({
                    "name": m.name, "online": m.online, "sampling": m.sampling, "power": m.power_w,
                    "energy": m.energy_kwh, "current": m.current_a, "volt": m.voltage_v, "ts": m.ts,
                });
                s.push_str(&format!("{o}\n"));
            }
            return self.print(&s);
        }
        if meters.is_empty() {
            return self.print("no meters on this broker\n");
        }
        let rows: Vec<Vec<String>> = meters
            .iter()
            .map(|m| {
                vec![
                    m.name.clone(),
                    yes_no(m.online, "online", "offline"),
                    yes_no(m.sampling, "sampling", "idle"),
                    num(m.power_w, 1),
                    num(m.energy_kwh, 3),
                    num(m.current_a, 2),
                    num(m.voltage_v, 1),
                ]
            })
            .collect();
        self.print(&table(
            &[
                "name", "state", "mode", "P (W)", "E (kWh)", "I (A)", "V (V)",
            ],
            &rows,
        ))
    }
}

/// The reply object as untyped JSON (what the CLI read before the typed replies; replaced next).
pub(crate) struct Raw(serde_json::Map<String, serde_json::Value>, String);

impl Raw {
    pub(crate) fn of(r: &Response) -> Raw {
        let map = match serde_json::from_str(r.json()) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        Raw(map, r.json().to_string())
    }
    pub(crate) fn get(&self, k: &str) -> Option<&serde_json::Value> {
        self.0.get(k)
    }
    pub(crate) fn object(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.0
    }
    pub(crate) fn str(&self, k: &str) -> Option<&str> {
        self.get(k).and_then(serde_json::Value::as_str)
    }
    pub(crate) fn msg(&self) -> Option<&str> {
        self.str("msg")
    }
    pub(crate) fn f64(&self, k: &str) -> Option<f64> {
        self.get(k).and_then(raw_number)
    }
    pub(crate) fn phases(&self, k: &str) -> Option<[Option<f64>; 3]> {
        match self.get(k)? {
            serde_json::Value::Array(a) => {
                let mut out = [None; 3];
                for (slot, v) in out.iter_mut().zip(a) {
                    *slot = raw_number(v);
                }
                Some(out)
            }
            v => raw_number(v).map(|x| [Some(x), None, None]),
        }
    }
    pub(crate) fn entries(&self) -> Vec<(String, serde_json::Value)> {
        use serde::Deserialize;
        struct Ordered(Vec<(String, serde_json::Value)>);
        impl<'de> Deserialize<'de> for Ordered {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Ordered;
                    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                        f.write_str("a JSON object")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut m: A,
                    ) -> Result<Ordered, A::Error> {
                        let mut out = Vec::new();
                        while let Some((k, v)) = m.next_entry::<String, serde_json::Value>()? {
                            out.push((k, v));
                        }
                        Ok(Ordered(out))
                    }
                }
                d.deserialize_map(V)
            }
        }
        serde_json::from_str::<Ordered>(&self.1)
            .map(|o| o.0)
            .unwrap_or_default()
    }
}

fn raw_number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// One refresh of `watch`.
struct Reading {
    v: Phases,
    i: Phases,
    p: Power64,
    f: Phases,
}

struct Power64 {
    active_w: Phases,
    reactive_var: Phases,
    apparent_va: Phases,
}

fn wide(p: crate::wire::reply::Phases) -> Phases {
    p.map(|x| x.map(f64::from))
}

async fn read(c: &Client) -> Result<Reading, ClientError> {
    let p = c.power().await?;
    Ok(Reading {
        p: Power64 {
            active_w: wide(p.active_w),
            reactive_var: wide(p.reactive_var),
            apparent_va: wide(p.apparent_va),
        },
        v: wide(c.voltage_v().await?),
        i: wide(c.current_ma().await?),
        f: wide(c.frequency_hz().await?),
    })
}

/// `watch`: one table per `interval` (redrawn in place on a terminal), or one JSON object per
/// refresh with `--json`, until Ctrl-C / SIGTERM (or `count` refreshes).
///
/// While another client samples, the meter refuses measurements (`busy`): the last table stays on
/// screen with a line saying so (`{"state":"busy"}` with `--json`) and the next refresh tries again.
/// Only a lost connection ends it with an error.
pub(crate) async fn watch(
    c: &Client,
    out: &Out,
    interval: Duration,
    count: Option<u64>,
    signals: &mut Signals,
) -> Result<(), CliError> {
    use std::io::IsTerminal;
    let tty = std::io::stdout().is_terminal() && !out.json;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u64;
    let mut last_table: Option<String> = None;
    let mut busy_said = false;
    let lost = |e: ClientError| -> CliError {
        match e {
            ClientError::Closed { .. } | ClientError::Timeout { .. } => {
                ClientError::ConnectionLost {
                    reason: e.to_string(),
                }
                .into()
            }
            other => other.into(),
        }
    };
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = signals.recv() => return Ok(()),
            e = c.closed() => return Err(lost(e)),
        }
        let reading = tokio::select! {
            r = read(c) => r,
            _ = signals.recv() => return Ok(()),
        };
        match reading {
            Ok(r) => {
                busy_said = false;
                let pf: Phases = core::array::from_fn(|k| {
                    match (
                        r.p.active_w.get(k).copied().flatten(),
                        r.p.apparent_va.get(k).copied().flatten(),
                    ) {
                        (Some(pw), Some(s)) if s > 0.0 => Some(pw / s),
                        _ => None,
                    }
                });
                if out.json {
                    let arr = |a: &Phases| serde_json::json!(a.to_vec());
                    let o = serde_json::json!({
                        "state": "idle",
                        "voltage": arr(&r.v), "current": arr(&r.i), "activePower": arr(&r.p.active_w),
                        "reactivePower": arr(&r.p.reactive_var), "apparentPower": arr(&r.p.apparent_va),
                        "powerFactor": arr(&pf), "frequency": arr(&r.f),
                    });
                    out.print(&format!("{o}\n"))?;
                } else {
                    let table = per_phase(&[
                        ("V (V)", r.v, 2),
                        ("I (mA)", r.i, 1),
                        ("P (W)", r.p.active_w, 2),
                        ("Q (var)", r.p.reactive_var, 2),
                        ("S (VA)", r.p.apparent_va, 2),
                        ("PF", pf, 3),
                        ("f (Hz)", r.f, 3),
                    ]);
                    let mut s = String::new();
                    if tty {
                        s.push_str("\x1b[H\x1b[2J");
                    }
                    s.push_str(&table);
                    if !tty {
                        s.push('\n');
                    }
                    out.print(&s)?;
                    last_table = Some(table);
                }
            }
            Err(ClientError::Busy { .. }) => {
                let note =
                    format!("meter busy: another client is sampling; retrying every {interval:?}");
                if out.json {
                    out.print("{\"state\":\"busy\"}\n")?;
                } else if tty {
                    let mut s = String::from("\x1b[H\x1b[2J");
                    if let Some(t) = &last_table {
                        s.push_str(t);
                        s.push_str("(last values)\n");
                    }
                    s.push_str(&note);
                    s.push('\n');
                    out.print(&s)?;
                } else if !busy_said {
                    out.print(&format!("{note}\n\n"))?;
                }
                busy_said = true;
            }
            Err(e) => return Err(lost(e)),
        }
        n += 1;
        if count.is_some_and(|c| n >= c) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_for_people() {
        assert_eq!(num(Some(-0.0001), 2), "0.00");
        assert_eq!(num(Some(-1.5), 1), "-1.5");
        assert_eq!(num(None, 2), "-");
        use serde_json::json;
        assert_eq!(
            value_text(
                "energy",
                &json!([0.2599394280260208, 0.13427009054042174, 12.0])
            ),
            "0.260, 0.134, 12.000 Wh"
        );
        assert_eq!(value_text("calibration", &json!([1.0, 0.98])), "1.0, 0.98");
        assert_eq!(value_text("name", &json!("kitchen")), "kitchen");
    }

    #[test]
    fn per_phase_table_golden() {
        let t = per_phase(&[("V (V)", [Some(230.0), None, Some(229.456)], 2)]);
        assert_eq!(
            t,
            "phase   V (V)\nL1     230.00\nL2          -\nL3     229.46\n"
        );
    }
}
