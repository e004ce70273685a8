//! Human and `--json` output.

use std::io::Write;
use std::string::{String, ToString};
use std::time::Duration;
use std::vec::Vec;
use std::{format, vec};

use super::args::GetQuantity;
use super::error::CliError;
use super::signal::Signals;
use crate::client::{Client, ClientError, Discovered, MeterStatus, Response};
use crate::wire::command::json::push_f32;
use crate::wire::reply::{InfoReply, Reply};

/// A value per phase, as the tables print them.
pub(crate) type PrintedPhases = [Option<f64>; 3];

/// The value of an `f32` reading as its shortest decimal text says (what the meter wrote and a
/// person reads: `228.43`, not the `f32`'s binary `228.4299926…`).
pub(crate) fn decimal(x: f32) -> f64 {
    std::format!("{x}").parse().unwrap_or(f64::from(x))
}

/// A reading of the meter for the tables.
pub(crate) fn phases(p: &crate::wire::reply::Phases) -> PrintedPhases {
    p.map(|x| x.map(decimal))
}
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

/// Readings as the meter writes them (`1.0, 0.98`).
fn f32_list(values: &[f32]) -> String {
    let mut s = String::new();
    for (k, v) in values.iter().enumerate() {
        if k > 0 {
            s.push_str(", ");
        }
        push_f32(&mut s, *v);
    }
    s
}

/// Energies (f64 accumulators with 17 significant digits on the wire) to the milliwatt-hour.
fn energy_text(wh: &[f64]) -> String {
    let items: Vec<String> = wh.iter().map(|x| format!("{x:.3}")).collect();
    format!("{} Wh", items.join(", "))
}

/// The `info` reply for people: `key  value` lines in the reply's key order.
fn info_text(i: &InfoReply) -> String {
    let yes = |b: bool| if b { "true" } else { "false" }.to_string();
    let rows: [(&str, String); 21] = [
        ("type", "smartmeter".into()),
        ("version", i.version.clone()),
        ("compiled", i.compiled.clone()),
        ("sys_time", i.sys_time.clone()),
        ("name", i.name.clone()),
        ("ip", i.ip.clone()),
        ("mqtt_server", i.mqtt_server.clone()),
        ("stream_server", i.stream_server.clone()),
        ("time_server", i.time_server.clone()),
        ("sampling_rate", i.sampling_rate_hz.to_string()),
        ("buffer_size", i.buffer_size_bytes.to_string()),
        ("psram", yes(i.psram)),
        ("rtc", yes(i.rtc)),
        ("state", if i.busy { "busy" } else { "idle" }.into()),
        ("energy", energy_text(&i.energy_wh)),
        ("dailyReset", i.daily_reset.info_text()),
        ("calibration", f32_list(&i.calibration)),
        ("ssids", i.ssids_text()),
        ("ssid", i.ssid.clone()),
        ("rssi", i.rssi_dbm.to_string()),
        ("bssid", i.bssid.clone()),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut s = String::new();
    for (k, v) in &rows {
        s.push_str(&format!("{k:<width$}  {v}\n"));
    }
    s
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

fn per_phase(columns: &[(&str, PrintedPhases, usize)]) -> String {
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

    /// Exactly the meter's object with `--json`; for people `info` as `key  value` lines, any other
    /// reply as its message (or its JSON when it has none).
    pub(crate) fn response(&self, r: &Response) -> Result<(), CliError> {
        if self.json {
            return self.print(&format!("{}\n", r.json()));
        }
        match (r.reply(), r.reply().message()) {
            (Reply::Info(i), _) => self.print(&info_text(i)),
            (_, Some(msg)) => self.print(&format!("{msg}\n")),
            (_, None) => self.print(&format!("{}\n", r.json())),
        }
    }

    /// The reply of `set`: the meter's `msg` (the whole object with `--json`).
    pub(crate) fn confirmation(&self, r: &Response) -> Result<(), CliError> {
        self.response(r)
    }

    /// The raw reply of `cmd`: always the JSON object, one per line.
    pub(crate) fn raw(&self, r: &Response) -> Result<(), CliError> {
        self.print(&format!("{}\n", r.json()))
    }

    pub(crate) fn quantity(&self, what: GetQuantity, r: &Response) -> Result<(), CliError> {
        if self.json {
            return self.print(&format!("{}\n", r.json()));
        }
        let text = match (what, r.reply()) {
            (
                GetQuantity::Power,
                Reply::Power {
                    active_w,
                    reactive_var,
                    apparent_va,
                },
            ) => per_phase(&[
                ("P (W)", phases(active_w), 2),
                ("Q (var)", phases(reactive_var), 2),
                ("S (VA)", phases(apparent_va), 2),
            ]),
            (GetQuantity::Voltage, Reply::Voltage { voltage_v }) => {
                per_phase(&[("V (V)", phases(voltage_v), 2)])
            }
            (GetQuantity::Current, Reply::Current { current_ma }) => {
                per_phase(&[("I (mA)", phases(current_ma), 1)])
            }
            (GetQuantity::Frequency, Reply::Period { frequency_hz }) => {
                per_phase(&[("f (Hz)", phases(frequency_hz), 3)])
            }
            (GetQuantity::Phase, Reply::PhaseAngle { phase_deg }) => {
                per_phase(&[("phi (deg)", phases(phase_deg), 2)])
            }
            (GetQuantity::Quality, Reply::Quality(q)) => {
                let some = |e: &[f64; 3]| e.map(Some);
                let mut t = per_phase(&[
                    ("THD V (%)", phases(&q.thd_v_pct), 2),
                    ("THD I (%)", phases(&q.thd_i_pct), 2),
                    ("PF", phases(&q.power_factor), 3),
                    ("Q1 (var)", phases(&q.fundamental_reactive_power_var), 2),
                    ("N (VA)", phases(&q.nonactive_power_va), 2),
                    ("V min (V)", phases(&q.vrms_half_cycle_min_v), 2),
                    ("V max (V)", phases(&q.vrms_half_cycle_max_v), 2),
                    ("E+ (Wh)", some(&q.energy_import_wh), 3),
                    ("E- (Wh)", some(&q.energy_export_wh), 3),
                ]);
                let ll = phases(&q.line_voltage_v);
                t.push_str(&format!(
                    "line voltage L1-L2 {} V, L2-L3 {} V, L3-L1 {} V\n",
                    num(ll[0], 2),
                    num(ll[1], 2),
                    num(ll[2], 2)
                ));
                t.push_str(&format!(
                    "frequency (10 s) {} Hz; V min/max: half-cycle RMS since the last getQuality\n",
                    num(q.frequency_10s_hz.map(decimal), 3)
                ));
                t
            }
            (
                GetQuantity::Energy,
                Reply::Energy {
                    energy_wh,
                    start,
                    days,
                    ..
                },
            ) => {
                let mut t = per_phase(&[("E (Wh)", energy_wh.map(Some), 3)]);
                if !start.is_empty() {
                    t.push_str(&format!("since {start} ({days} days)\n"));
                }
                t
            }
            _ => {
                return Err(ClientError::Protocol(format!(
                    "unexpected reply to `{}`: {}",
                    what.command().name(),
                    r.json()
                ))
                .into());
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

/// One refresh of `watch`.
struct Reading {
    v: PrintedPhases,
    i: PrintedPhases,
    p: Power64,
    f: PrintedPhases,
}

/// `getPower` as the tables print it.
struct Power64 {
    active_w: PrintedPhases,
    reactive_var: PrintedPhases,
    apparent_va: PrintedPhases,
}

async fn read(c: &Client) -> Result<Reading, ClientError> {
    let p = c.power().await?;
    Ok(Reading {
        p: Power64 {
            active_w: phases(&p.active_w),
            reactive_var: phases(&p.reactive_var),
            apparent_va: phases(&p.apparent_va),
        },
        v: phases(&c.voltage_v().await?),
        i: phases(&c.current_ma().await?),
        f: phases(&c.frequency_hz().await?),
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
                let pf: PrintedPhases = core::array::from_fn(|k| {
                    match (
                        r.p.active_w.get(k).copied().flatten(),
                        r.p.apparent_va.get(k).copied().flatten(),
                    ) {
                        (Some(pw), Some(s)) if s > 0.0 => Some(pw / s),
                        _ => None,
                    }
                });
                if out.json {
                    let arr = |a: &PrintedPhases| serde_json::json!(a.to_vec());
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
        assert_eq!(
            energy_text(&[0.2599394280260208, 0.13427009054042174, 12.0]),
            "0.260, 0.134, 12.000 Wh"
        );
        assert_eq!(f32_list(&[1.0, 0.98]), "1.0, 0.98");
        assert_eq!(decimal(228.43), 228.43);
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
