//! The collector's shared counters, the latest status of every meter, and the Prometheus endpoint
//! (`GET /metrics`, text exposition format 0.0.4) on a tiny HTTP/1.1 server.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::string::String;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::vec::Vec;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::rows::MeterName;
use crate::wire::mqtt::Status;

/// The tables, in the order of the per-table counters.
pub const TABLES: [&str; 3] = ["readings", "pq_intervals", "pq_events"];

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// The value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters of one sink.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Rows stored, per table ([`TABLES`] order).
    pub rows_written: [Counter; 3],
    /// Failed writes (a file that could not be written, a database statement that failed).
    pub write_errors: Counter,
    /// Rows accepted but not yet stored: in memory.
    pub rows_buffered: Gauge,
    /// Rows accepted but not yet stored: spilled to disk.
    pub rows_spooled: Gauge,
    /// Rows that could not be stored and were dropped (a file lost to a write error).
    pub rows_lost: Counter,
}

impl SinkStats {
    /// Rows stored in all tables.
    pub fn written(&self) -> u64 {
        self.rows_written.iter().map(Counter::get).sum()
    }
}

/// The latest status of one meter.
#[derive(Debug, Clone, Copy)]
pub struct MeterLive {
    /// The last `state/status` payload.
    pub status: Status,
    /// When the last message of any kind arrived, Unix seconds.
    pub last_seen_s: f64,
}

/// Everything the metrics endpoint and the progress line show; shared by every task.
#[derive(Debug, Default)]
pub struct Stats {
    /// MQTT messages received on the state topics.
    pub messages: Counter,
    /// Messages that were not valid payloads (not stored).
    pub invalid: Counter,
    /// Broker connections lost.
    pub broker_reconnects: Counter,
    /// Rows built from messages (before any sink).
    pub rows_received: Counter,
    /// The Parquet sink.
    pub parquet: SinkStats,
    /// The PostgreSQL sink.
    pub postgres: SinkStats,
    /// Per meter: the latest status and when it was seen.
    pub live: Mutex<HashMap<MeterName, MeterLive>>,
}

impl Stats {
    /// Meters seen so far.
    pub fn meters(&self) -> usize {
        self.live.lock().map_or(0, |m| m.len())
    }

    /// Notes a message of `meter` at `now_s`, with its status if it was one.
    pub fn seen(&self, meter: &MeterName, status: Option<&Status>, now_s: f64) {
        let Ok(mut live) = self.live.lock() else {
            return;
        };
        match live.get_mut(meter) {
            Some(m) => {
                m.last_seen_s = now_s;
                if let Some(s) = status {
                    m.status = *s;
                }
            }
            None => {
                live.insert(
                    meter.clone(),
                    MeterLive {
                        status: status.copied().unwrap_or_default(),
                        last_seen_s: now_s,
                    },
                );
            }
        }
    }

    /// Rows accepted but not yet stored, over both sinks.
    pub fn buffered(&self) -> u64 {
        self.parquet.rows_buffered.get()
            + self.postgres.rows_buffered.get()
            + self.postgres.rows_spooled.get()
    }

    /// The whole exposition (text format 0.0.4), meters sorted by name.
    pub fn render(&self) -> String {
        let mut meters: Vec<(MeterName, MeterLive)> = match self.live.lock() {
            Ok(m) => m.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            Err(_) => Vec::new(),
        };
        meters.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::with_capacity(512 + meters.len() * 1200);
        type PerPhase = fn(&Status) -> &[Option<f32>; 3];
        let phased: [(&str, &str, PerPhase); 6] = [
            (
                "smartmeter_voltage_volts",
                "RMS voltage per phase (L-N) of the latest status.",
                |s| &s.voltage_v,
            ),
            (
                "smartmeter_current_amperes",
                "RMS current per phase of the latest status.",
                |s| &s.current_a,
            ),
            (
                "smartmeter_active_power_watts",
                "Active power per phase of the latest status.",
                |s| &s.active_power_w,
            ),
            (
                "smartmeter_reactive_power_vars",
                "Reactive power per phase of the latest status.",
                |s| &s.reactive_power_var,
            ),
            (
                "smartmeter_apparent_power_voltamperes",
                "Apparent power per phase of the latest status.",
                |s| &s.apparent_power_va,
            ),
            (
                "smartmeter_power_factor",
                "Power factor per phase of the latest status.",
                |s| &s.power_factor,
            ),
        ];
        for (name, help, get) in phased {
            header(&mut out, name, help, "gauge");
            for (m, l) in &meters {
                for (k, v) in get(&l.status).iter().enumerate() {
                    if let Some(v) = v {
                        sample_phase(&mut out, name, m, k + 1, Value::F32(*v));
                    }
                }
            }
        }
        header(
            &mut out,
            "smartmeter_frequency_hertz",
            "Line frequency of the latest status.",
            "gauge",
        );
        for (m, l) in &meters {
            if let Some(f) = l.status.frequency_hz {
                sample_meter(&mut out, "smartmeter_frequency_hertz", m, Value::F32(f));
            }
        }
        type Energy = fn(&Status) -> &[Option<f64>; 3];
        let energy: [(&str, &str, Energy); 2] = [
            (
                "smartmeter_energy_import_kwh_total",
                "Imported energy per phase, kWh, of the latest status.",
                |s| &s.energy_import_kwh,
            ),
            (
                "smartmeter_energy_export_kwh_total",
                "Exported energy per phase, kWh, of the latest status.",
                |s| &s.energy_export_kwh,
            ),
        ];
        for (name, help, get) in energy {
            header(&mut out, name, help, "counter");
            for (m, l) in &meters {
                for (k, v) in get(&l.status).iter().enumerate() {
                    if let Some(v) = v {
                        sample_phase(&mut out, name, m, k + 1, Value::F64(*v));
                    }
                }
            }
        }
        header(
            &mut out,
            "smartmeter_last_seen_timestamp_seconds",
            "When the collector last received a message of the meter (Unix time).",
            "gauge",
        );
        for (m, l) in &meters {
            sample_meter(
                &mut out,
                "smartmeter_last_seen_timestamp_seconds",
                m,
                Value::F64(l.last_seen_s),
            );
        }
        self.render_own(&mut out, meters.len());
        out
    }

    fn render_own(&self, out: &mut String, meters: usize) {
        let plain = |out: &mut String, name: &str, help: &str, kind: &str, v: u64| {
            header(out, name, help, kind);
            let _ = writeln!(out, "{name} {v}");
        };
        plain(
            out,
            "smartmeter_collector_meters",
            "Meters seen since the collector started.",
            "gauge",
            meters as u64,
        );
        plain(
            out,
            "smartmeter_collector_messages_total",
            "MQTT messages received on powermeter/+/state/#.",
            "counter",
            self.messages.get(),
        );
        plain(
            out,
            "smartmeter_collector_invalid_messages_total",
            "Messages whose payload could not be read (not stored).",
            "counter",
            self.invalid.get(),
        );
        plain(
            out,
            "smartmeter_collector_broker_reconnects_total",
            "Broker connections lost (each followed by a reconnect).",
            "counter",
            self.broker_reconnects.get(),
        );
        let sinks = [("parquet", &self.parquet), ("postgres", &self.postgres)];
        header(
            out,
            "smartmeter_collector_rows_written_total",
            "Rows stored, per sink and table.",
            "counter",
        );
        for (sink, s) in sinks {
            for (table, c) in TABLES.iter().zip(&s.rows_written) {
                let _ = writeln!(
                    out,
                    "smartmeter_collector_rows_written_total{{sink=\"{sink}\",table=\"{table}\"}} {}",
                    c.get()
                );
            }
        }
        header(
            out,
            "smartmeter_collector_rows_buffered",
            "Rows accepted but not yet stored, per sink and place (memory, disk).",
            "gauge",
        );
        for (sink, s) in sinks {
            for (place, v) in [("memory", &s.rows_buffered), ("disk", &s.rows_spooled)] {
                let _ = writeln!(
                    out,
                    "smartmeter_collector_rows_buffered{{sink=\"{sink}\",place=\"{place}\"}} {}",
                    v.get()
                );
            }
        }
        header(
            out,
            "smartmeter_collector_write_errors_total",
            "Failed writes per sink (each retried, or counted in rows_lost).",
            "counter",
        );
        for (sink, s) in sinks {
            let _ = writeln!(
                out,
                "smartmeter_collector_write_errors_total{{sink=\"{sink}\"}} {}",
                s.write_errors.get()
            );
        }
        header(
            out,
            "smartmeter_collector_rows_lost_total",
            "Rows dropped because they could not be stored.",
            "counter",
        );
        for (sink, s) in sinks {
            let _ = writeln!(
                out,
                "smartmeter_collector_rows_lost_total{{sink=\"{sink}\"}} {}",
                s.rows_lost.get()
            );
        }
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the text format wants it: `\`, `"` and newline escaped.
fn push_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample value, printed in the shortest form that reads back to the same number of its type
/// (an f32 reading prints `230.1`, not `230.10000610351563`).
#[derive(Debug, Clone, Copy)]
enum Value {
    F32(f32),
    F64(f64),
}

fn push_value(out: &mut String, v: Value) {
    let wide = match v {
        Value::F32(x) => f64::from(x),
        Value::F64(x) => x,
    };
    if wide.is_nan() {
        out.push_str("NaN");
    } else if wide.is_infinite() {
        out.push_str(if wide > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = match v {
            Value::F32(x) => write!(out, "{x}"),
            Value::F64(x) => write!(out, "{x}"),
        };
    }
}

fn sample_phase(out: &mut String, name: &str, meter: &str, phase: usize, v: Value) {
    out.push_str(name);
    out.push_str("{meter=\"");
    push_label(out, meter);
    let _ = write!(out, "\",phase=\"{phase}\"}} ");
    push_value(out, v);
    out.push('\n');
}

fn sample_meter(out: &mut String, name: &str, meter: &str, v: Value) {
    out.push_str(name);
    out.push_str("{meter=\"");
    push_label(out, meter);
    out.push_str("\"} ");
    push_value(out, v);
    out.push('\n');
}

/// Serves `GET /metrics` on `listener` until the task is dropped; every other path is 404.
pub async fn serve(listener: TcpListener, stats: Arc<Stats>) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let stats = stats.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(30), answer(conn, &stats)).await;
        });
    }
}

/// Binds the metrics address (an error here is a start-up error).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Reads one request (at most 8 KiB of head) and answers it; the connection is then closed.
async fn answer(mut conn: TcpStream, stats: &Stats) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
        if head.len() > 8192 {
            return respond(
                &mut conn,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"",
            )
            .await;
        }
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let body = stats.render();
            let body = if method == "HEAD" { "" } else { body.as_str() };
            respond(
                &mut conn,
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                body.as_bytes(),
            )
            .await
        }
        ("GET" | "HEAD", _) => {
            respond(
                &mut conn,
                "404 Not Found",
                "text/plain",
                b"smartmeter collect: the metrics are at /metrics\n",
            )
            .await
        }
        _ => respond(&mut conn, "405 Method Not Allowed", "text/plain", b"").await,
    }
}

async fn respond(
    conn: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = std::format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body).await?;
    conn.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_latest_values_with_escaped_labels() {
        let s = Stats::default();
        let m: MeterName = Arc::from("a\"b");
        let st = Status {
            voltage_v: [Some(230.1), None, Some(231.0)],
            frequency_hz: Some(50.0),
            energy_import_kwh: [Some(1.5), None, None],
            ..Status::default()
        };
        s.seen(&m, Some(&st), 1_700_000_000.0);
        s.messages.add(3);
        s.parquet.rows_written[0].add(6);
        let text = s.render();
        assert!(text.contains("smartmeter_voltage_volts{meter=\"a\\\"b\",phase=\"1\"} 230.1\n"));
        assert!(
            !text.contains("phase=\"2\"} "),
            "undefined values are left out"
        );
        assert!(text.contains("smartmeter_frequency_hertz{meter=\"a\\\"b\"} 50\n"));
        assert!(text.contains("# TYPE smartmeter_energy_import_kwh_total counter\n"));
        assert!(
            text.contains("smartmeter_energy_import_kwh_total{meter=\"a\\\"b\",phase=\"1\"} 1.5\n")
        );
        assert!(
            text.contains("smartmeter_last_seen_timestamp_seconds{meter=\"a\\\"b\"} 1700000000\n")
        );
        assert!(text.contains("smartmeter_collector_messages_total 3\n"));
        assert!(text.contains(
            "smartmeter_collector_rows_written_total{sink=\"parquet\",table=\"readings\"} 6\n"
        ));
        // Every sample line follows its HELP and TYPE.
        let mut typed = std::collections::HashSet::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                typed.insert(std::string::String::from(rest.split(' ').next().unwrap()));
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                assert!(typed.contains(name), "{l}");
            }
        }
    }
}
