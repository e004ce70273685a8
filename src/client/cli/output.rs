//! Human and `--json` output.

use std::io::Write;
use std::string::{String, ToString};
use std::time::Duration;
use std::vec::Vec;
use std::{format, vec};

use super::{CliError, Quantity};
use crate::client::{Client, Discovered, MeterStatus, Phases, Response};
use crate::wire::log::LogLine;

/// Where output goes and in which form.
pub(crate) struct Out {
    pub(crate) json: bool,
}

/// `1116.89`, `-` for undefined.
pub(crate) fn num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "-".to_string(),
    }
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
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
        let entries = r.entries();
        // A reply that only confirms: print its message.
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        if let Some(msg) = r.msg()
            && keys.iter().all(|k| matches!(*k, "error" | "cmd" | "msg"))
        {
            return self.print(&format!("{msg}\n"));
        }
        let width = keys.iter().map(|k| k.len()).max().unwrap_or(0);
        let mut s = String::new();
        for (k, v) in entries.iter().filter(|(k, _)| k != "error") {
            s.push_str(&format!("{k:<width$}  {}\n", value_text(v)));
        }
        self.print(&s)
    }

    /// The reply of `set`: the meter's `msg` (the whole object with `--json`).
    pub(crate) fn confirmation(&self, r: &Response) -> Result<(), CliError> {
        match r.msg() {
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
        let ph = |k: &str| r.phases(k).unwrap_or([None; 3]);
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
            Quantity::Energy => {
                let mut t = per_phase(&[("E (Wh)", ph("energy"), 3)]);
                if let Some(start) = r.str("start") {
                    t.push_str(&format!("since {start}"));
                    if let Some(days) = r.f64("days") {
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

/// `watch`: one table per `interval` (redrawn in place on a terminal), or one JSON object per
/// refresh with `--json`.
pub(crate) async fn watch(
    c: &Client,
    out: &Out,
    interval: Duration,
    count: Option<u64>,
) -> Result<(), CliError> {
    use std::io::IsTerminal;
    let tty = std::io::stdout().is_terminal() && !out.json;
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(100)));
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        let p = c.power().await?;
        let v = c.voltage_v().await?;
        let i = c.current_ma().await?;
        let f = c.frequency_hz().await?;
        let pf: Phases = core::array::from_fn(|k| {
            match (
                p.active_w.get(k).copied().flatten(),
                p.apparent_va.get(k).copied().flatten(),
            ) {
                (Some(pw), Some(s)) if s > 0.0 => Some(pw / s),
                _ => None,
            }
        });
        if out.json {
            let arr = |a: &Phases| serde_json::json!(a.to_vec());
            let o = serde_json::json!({
                "voltage": arr(&v), "current": arr(&i), "activePower": arr(&p.active_w),
                "reactivePower": arr(&p.reactive_var), "apparentPower": arr(&p.apparent_va),
                "powerFactor": arr(&pf), "frequency": arr(&f),
            });
            out.print(&format!("{o}\n"))?;
        } else {
            let mut s = String::new();
            if tty {
                s.push_str("\x1b[H\x1b[2J");
            }
            s.push_str(&per_phase(&[
                ("V (V)", v, 2),
                ("I (mA)", i, 1),
                ("P (W)", p.active_w, 2),
                ("Q (var)", p.reactive_var, 2),
                ("S (VA)", p.apparent_va, 2),
                ("PF", pf, 3),
                ("f (Hz)", f, 3),
            ]));
            if !tty {
                s.push('\n');
            }
            out.print(&s)?;
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
    fn per_phase_table_golden() {
        let t = per_phase(&[("V (V)", [Some(230.0), None, Some(229.456)], 2)]);
        assert_eq!(
            t,
            "phase   V (V)\nL1     230.00\nL2          -\nL3     229.46\n"
        );
    }
}
