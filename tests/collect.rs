//! `smartmeter collect` as a process against real peers, each started by the test on free loopback
//! ports: mosquitto (a group of two collectors splitting a stream; a broker restart), PostgreSQL
//! from the Debian package (a database restart in the middle of a stream), DuckDB from PyPI in a
//! venv under the target directory (the Parquet files read by a reader that is not ours), and
//! `promtool` (the metrics endpoint).
//!
//! The meters are simulated by publishing the §12/§11 payloads with the `wire` encoders. A missing
//! peer is a loud skip, or a failure with `SMARTMETER_REQUIRE_PEERS=1`.
#![cfg(feature = "cli")]

mod peer_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use peer_support::{Mosquitto, on_path, peer, skip};
use rumqttc::{Client as MqttClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use smartmeter::wire::mqtt::{self, Status};
use smartmeter::wire::pq::{EventKind, Nominal, PhaseSet, PqAggregate, PqEvent, PqInterval};

/// Generous bound for anything that should happen "soon" (never a timing assertion).
const SOON: Duration = Duration::from_secs(40);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `smartmeter ARGS` run to the end, stdin closed.
fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_smartmeter"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// What a run printed on stderr.
fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + SOON;
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn kill_term(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -TERM failed");
}

// ---- MQTT publisher ----------------------------------------------------------------------------

struct Publisher {
    client: MqttClient,
    acked: mpsc::Receiver<()>,
    sent: usize,
}

impl Publisher {
    fn connect(port: u16, id: &str) -> Publisher {
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_max_packet_size(1 << 20, 1 << 20);
        opts.set_inflight(200);
        let (client, mut conn) = MqttClient::new(opts, 1024);
        let (tx, acked) = mpsc::channel();
        std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        if tx.send(()).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        Publisher {
            client,
            acked,
            sent: 0,
        }
    }

    fn publish(&mut self, topic: String, payload: String) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into_bytes())
            .unwrap();
        self.sent += 1;
    }

    /// Waits until the broker acknowledged every publish.
    fn wait_acked(&mut self) {
        for _ in 0..self.sent {
            self.acked
                .recv_timeout(SOON)
                .expect("the broker acknowledged every publish");
        }
        self.sent = 0;
    }
}

fn meter_name(k: usize) -> String {
    format!("m{k:03}")
}

/// Meter `k`'s status in round `r`: `ts = base + r`, L1 voltage `230 + k/10`, import `r` kWh.
fn status(k: usize, r: usize, base: f64) -> Status {
    let v = 230.0 + k as f32 / 10.0;
    Status {
        ts_s: Some(base + r as f64),
        voltage_v: [Some(v), Some(v - 1.0), None],
        current_a: [Some(5.0), Some(3.0), Some(1.0)],
        active_power_w: [Some(1150.0), Some(600.0), Some(-200.0)],
        reactive_power_var: [Some(0.0), Some(345.0), Some(-78.5)],
        apparent_power_va: [Some(1150.0), Some(690.0), Some(231.0)],
        power_factor: [Some(1.0), Some(0.866), Some(-0.94)],
        frequency_hz: Some(50.0),
        energy_import_kwh: [Some(r as f64), Some(0.5), Some(0.0)],
        energy_export_kwh: [Some(0.0), None, Some(1.25)],
    }
}

fn publish_rounds(p: &mut Publisher, meters: usize, rounds: std::ops::Range<usize>, base: f64) {
    for r in rounds {
        for k in 0..meters {
            p.publish(
                mqtt::status_topic(&meter_name(k)),
                status(k, r, base).to_json(),
            );
        }
    }
    p.wait_acked();
}

// ---- the collector as a process ----------------------------------------------------------------

struct Collector {
    child: Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
    metrics: Option<String>,
}

impl Collector {
    /// Starts `smartmeter --json collect ARGS --metrics 127.0.0.1:0` and waits for "subscribed".
    fn start(args: &[&str]) -> Collector {
        let mut child = Command::new(env!("CARGO_BIN_EXE_smartmeter"))
            .arg("--json")
            .arg("collect")
            .args(args)
            .args(["--metrics", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start smartmeter collect");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!("collect --json printed a non-JSON line ({e}): {line}")
                });
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        let mut c = Collector {
            child,
            lines,
            seen: Vec::new(),
            metrics: None,
        };
        let m = c.wait_event("metrics");
        c.metrics = Some(m["addr"].as_str().unwrap().to_string());
        c.wait_event("subscribed");
        c
    }

    /// The next (or an already seen) event of this kind.
    fn wait_event(&mut self, kind: &str) -> Value {
        if let Some(v) = self.seen.iter().find(|v| v["event"] == kind) {
            return v.clone();
        }
        let deadline = Instant::now() + SOON;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if v["event"] == kind {
                        return v;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no `{kind}` event; seen {:?}", self.seen);
    }

    fn scrape(&self) -> String {
        http_get(self.metrics.as_deref().unwrap(), "/metrics")
    }

    /// One plain sample of the own counters (`name` without labels, or `name{labels}` exactly).
    fn counter(&self, sample: &str) -> f64 {
        metric(&self.scrape(), sample).unwrap_or(0.0)
    }

    /// SIGTERM, then the exit code and every remaining event.
    fn stop(mut self) -> (i32, Vec<Value>) {
        kill_term(&self.child);
        let status = eventually("the collector exits after SIGTERM", || {
            self.child.try_wait().unwrap()
        });
        while let Ok(v) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(v);
        }
        (status.code().unwrap_or(-1), std::mem::take(&mut self.seen))
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    body.to_string()
}

fn metric(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

/// A strict check of the Prometheus text format 0.0.4 as we emit it: every family has one HELP and
/// one TYPE line before its samples, names and label names are valid, label values are quoted and
/// escaped, values parse, no family appears twice, counters end in `_total`.
fn check_exposition(text: &str) {
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut families: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = BTreeSet::new();
    let mut current = String::new();
    let mut series = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(name_ok(name) && !help.is_empty(), "{line}");
            assert!(helped.insert(name.to_string()), "HELP twice: {line}");
            current = name.to_string();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert_eq!(name, current, "TYPE follows its HELP: {line}");
            assert!(["counter", "gauge"].contains(&kind), "known type: {line}");
            assert!(
                families
                    .insert(name.to_string(), kind.to_string())
                    .is_none(),
                "TYPE twice: {line}"
            );
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter name: {line}");
            }
        } else {
            assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
            let (series_part, value) = line.rsplit_once(' ').expect("sample value");
            let (name, labels) = match series_part.split_once('{') {
                Some((n, l)) => (n, l.strip_suffix('}').expect("closing brace")),
                None => (series_part, ""),
            };
            assert_eq!(name, current, "sample of the current family: {line}");
            assert!(families.contains_key(name), "{line}");
            assert!(
                value.parse::<f64>().is_ok() || ["NaN", "+Inf", "-Inf"].contains(&value),
                "{line}"
            );
            // label="value" pairs, values with \\ \" \n escapes only.
            let mut rest = labels;
            while !rest.is_empty() {
                let (lname, after) = rest.split_once("=\"").expect("label=\"");
                assert!(name_ok(lname), "{line}");
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next().expect("unterminated label value") {
                        (_, '\\') => {
                            let (_, c) = chars.next().unwrap();
                            assert!(matches!(c, '\\' | '"' | 'n'), "{line}");
                        }
                        (_, '\n') => panic!("{line}"),
                        (i, '"') => break i,
                        _ => {}
                    }
                };
                rest = &after[end + 1..];
                rest = rest.strip_prefix(',').unwrap_or(rest);
            }
            assert!(
                series.insert(series_part.to_string()),
                "series twice: {line}"
            );
        }
    }
    for required in [
        "smartmeter_voltage_volts",
        "smartmeter_current_amperes",
        "smartmeter_active_power_watts",
        "smartmeter_reactive_power_vars",
        "smartmeter_apparent_power_voltamperes",
        "smartmeter_power_factor",
        "smartmeter_frequency_hertz",
        "smartmeter_energy_import_kwh_total",
        "smartmeter_energy_export_kwh_total",
        "smartmeter_last_seen_timestamp_seconds",
        "smartmeter_collector_messages_total",
        "smartmeter_collector_rows_written_total",
        "smartmeter_collector_rows_buffered",
        "smartmeter_collector_write_errors_total",
    ] {
        assert!(families.contains_key(required), "{required} is exported");
    }
}

// ---- Parquet readers ---------------------------------------------------------------------------

/// One `readings` row as read back: meter, time µs, phase, voltage, energy_import.
type Row = (String, i64, i16, Option<f32>, Option<f64>);

/// Every `readings` row of the Parquet files under `dir`, read with the `parquet` crate.
fn read_readings(dir: &Path) -> Vec<Row> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    let mut out = Vec::new();
    let root = dir.join("readings");
    let Ok(dates) = std::fs::read_dir(&root) else {
        return out;
    };
    for d in dates {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            assert!(
                name.ends_with(".parquet") && !name.starts_with('.'),
                "only complete files after a clean stop: {name}"
            );
            let r = SerializedFileReader::new(std::fs::File::open(&p).unwrap()).unwrap();
            for row in r.get_row_iter(None).unwrap() {
                let row = row.unwrap();
                let f: BTreeMap<String, Field> = row
                    .get_column_iter()
                    .map(|(n, f)| (n.clone(), f.clone()))
                    .collect();
                let (Field::Str(m), Field::TimestampMicros(t), Field::Short(ph)) =
                    (&f["meter"], &f["time"], &f["phase"])
                else {
                    panic!("column types: {f:?}")
                };
                let v = match &f["voltage"] {
                    Field::Float(v) => Some(*v),
                    Field::Null => None,
                    other => panic!("{other:?}"),
                };
                let e = match &f["energy_import"] {
                    Field::Double(v) => Some(*v),
                    Field::Null => None,
                    other => panic!("{other:?}"),
                };
                out.push((m.clone(), *t, *ph, v, e));
            }
        }
    }
    out
}

/// A Python venv with DuckDB under the target directory (made once, reused by later runs).
fn duckdb_python() -> Option<PathBuf> {
    // made once per test process: two tests making it at the same time removed each other's venv
    static PYTHON: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    PYTHON.get_or_init(make_duckdb_python).clone()
}

fn make_duckdb_python() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("collect-duckdb-venv");
    let py = venv.join("bin").join("python");
    let works = |py: &Path| {
        Command::new(py)
            .args(["-c", "import duckdb"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if py.is_file() && works(&py) {
        return Some(py);
    }
    let python = on_path("python3")?;
    let _ = std::fs::remove_dir_all(&venv);
    let ok = Command::new(&python)
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(&py)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "duckdb",
            ])
            .status()
            .is_ok_and(|s| s.success());
    (ok && works(&py)).then_some(py)
}

/// Runs one DuckDB query and returns its rows as JSON arrays.
fn duckdb(py: &Path, sql: &str) -> Vec<Vec<Value>> {
    let script = "import duckdb, json, sys\n\
        rows = duckdb.sql(sys.argv[1]).fetchall()\n\
        print(json.dumps([[str(c) if not isinstance(c, (int, float, type(None))) else c for c in r] for r in rows]))\n";
    let o = Command::new(py).args(["-c", script, sql]).output().unwrap();
    assert!(
        o.status.success(),
        "duckdb: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice::<Vec<Vec<Value>>>(&o.stdout).unwrap()
}

// ---- tests -------------------------------------------------------------------------------------

#[test]
fn a_group_of_two_splits_the_stream_nothing_doubled_nothing_lost() {
    if !peer("mosquitto") {
        return;
    }
    const METERS: usize = 12;
    const ROUNDS: usize = 15;
    let broker = Mosquitto::start();
    let out = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (out.path().join("a"), out.path().join("b"));
    let addr = broker.addr();
    let a = Collector::start(&[
        "--mqtt",
        &addr,
        "--group",
        "archive",
        "--out",
        a_dir.to_str().unwrap(),
    ]);
    let b = Collector::start(&[
        "--mqtt",
        &addr,
        "--group",
        "archive",
        "--out",
        b_dir.to_str().unwrap(),
    ]);
    let base = 1_767_225_600.0; // 2026-01-01T00:00:00Z
    let mut p = Publisher::connect(broker.port, "fleet");
    publish_rounds(&mut p, METERS, 0..ROUNDS, base);
    // A power-quality aggregate and an event (QoS 1) from one meter.
    let mut agg = PqAggregate::undefined(
        PqInterval::TenMinutes,
        base,
        base + 600.0,
        Nominal {
            voltage_v: 230.0,
            frequency_hz: 50.0,
        },
    );
    agg.harmonics_v[0][2] = Some(4.5);
    agg.pst = Some([Some(0.5), Some(0.25), None]);
    p.publish(mqtt::pq_topic("m000"), agg.to_json());
    let ev = PqEvent {
        id: 42,
        kind: EventKind::Rvc {
            delta_max_v: 12.5,
            delta_steady_v: 3.0,
        },
        phases: PhaseSet::from_phases(&[1, 3]).unwrap(),
        start_s: base + 1.5,
        duration_s: 0.25,
        extreme_v: 245.0,
        reference_v: 230.0,
    };
    p.publish(mqtt::event_topic("m001"), ev.to_json());
    p.wait_acked();
    let total = (METERS * ROUNDS + 2) as f64;
    let (na, nb) = eventually("both collectors together received every message", || {
        let na = a.counter("smartmeter_collector_messages_total");
        let nb = b.counter("smartmeter_collector_messages_total");
        (na + nb >= total).then_some((na, nb))
    });
    assert_eq!(
        na + nb,
        total,
        "each message went to one member of the group"
    );
    assert!(na > 0.0 && nb > 0.0, "the stream was split: {na} + {nb}");

    // The metrics endpoint: promtool where it is installed, our strict check always.
    let text = a.scrape();
    check_exposition(&text);
    match on_path("promtool") {
        Some(promtool) => {
            let mut c = Command::new(promtool)
                .args(["check", "metrics"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
            let o = c.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "promtool check metrics: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        None => {
            skip("promtool check metrics: promtool is not installed (apt-get install prometheus)")
        }
    }

    // A clean stop closes every file: exit 0, `.part` files renamed.
    let (code_a, events_a) = a.stop();
    let (code_b, _) = b.stop();
    assert_eq!((code_a, code_b), (0, 0));
    assert!(events_a.iter().any(|e| e["event"] == "stopped"));

    // Our reader: every (meter, round, phase) exactly once over both outputs, values intact.
    let mut rows = read_readings(&a_dir);
    let from_a = rows.len();
    rows.extend(read_readings(&b_dir));
    assert!(from_a > 0 && from_a < rows.len(), "both wrote rows");
    assert_eq!(
        rows.len(),
        METERS * ROUNDS * 3,
        "nothing lost, nothing doubled"
    );
    let keys: BTreeSet<(String, i64, i16)> = rows.iter().map(|r| (r.0.clone(), r.1, r.2)).collect();
    assert_eq!(keys.len(), rows.len(), "no duplicate (meter, time, phase)");
    for (m, t, ph, v, e) in &rows {
        let k: usize = m[1..].parse().unwrap();
        let r = ((*t as f64 / 1e6) - base).round() as usize;
        assert!(r < ROUNDS, "{m} {t}");
        let want = status(k, r, base);
        let i = usize::try_from(*ph - 1).unwrap();
        assert_eq!(*v, want.voltage_v[i], "{m} round {r} phase {ph}");
        assert_eq!(*e, want.energy_import_kwh[i], "{m} round {r} phase {ph}");
    }

    // A reader that is not ours: DuckDB over both directories, Hive partitions included.
    let Some(py) = duckdb_python() else {
        return skip("DuckDB read-back: no python3 with venv/pip to install duckdb from PyPI");
    };
    let glob = |t: &str| {
        format!(
            "read_parquet('{}/*/{t}/*/*.parquet', hive_partitioning = true)",
            out.path().display()
        )
    };
    let r = duckdb(
        &py,
        &format!(
            "SELECT count(*), count(DISTINCT (meter, time, phase)), count(DISTINCT meter), min(date)::VARCHAR, \
             sum(CASE WHEN voltage IS NULL THEN 1 ELSE 0 END), typeof(any_value(time)), typeof(any_value(phase)), \
             typeof(any_value(voltage)), typeof(any_value(energy_import)) FROM {}",
            glob("readings")
        ),
    );
    assert_eq!(
        r[0],
        [
            Value::from(METERS * ROUNDS * 3),
            Value::from(METERS * ROUNDS * 3),
            Value::from(METERS),
            Value::from("2026-01-01"),
            Value::from(METERS * ROUNDS),
            Value::from("TIMESTAMP WITH TIME ZONE"),
            Value::from("SMALLINT"),
            Value::from("FLOAT"),
            Value::from("DOUBLE"),
        ]
    );
    let r = duckdb(
        &py,
        &format!(
            "SELECT meter, phase, \"interval\", harmonics_v[3], len(harmonics_v), pst FROM {} ORDER BY phase",
            glob("pq_intervals")
        ),
    );
    assert_eq!(r.len(), 3, "{r:?}");
    assert_eq!(
        r[0],
        [
            Value::from("m000"),
            1.into(),
            "10min".into(),
            4.5.into(),
            50.into(),
            0.5.into()
        ]
    );
    assert_eq!(r[2][5], Value::Null);
    let r = duckdb(
        &py,
        &format!(
            "SELECT meter, id, type, phases::VARCHAR, duration, delta_max, epoch_us(time) FROM {}",
            glob("pq_events")
        ),
    );
    assert_eq!(
        r,
        [[
            Value::from("m001"),
            42.into(),
            "rvc".into(),
            "[1, 3]".into(),
            0.25.into(),
            12.5.into(),
            Value::from(1_767_225_601_500_000i64)
        ]]
    );
}

#[test]
fn a_broker_restart_is_ridden_out_and_resubscribed() {
    if !peer("mosquitto") {
        return;
    }
    let mut broker = Mosquitto::start();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("d");
    let addr = broker.addr();
    let mut c = Collector::start(&["--mqtt", &addr, "--out", dir.to_str().unwrap()]);
    let base = 1_767_225_600.0;
    let mut p = Publisher::connect(broker.port, "before");
    publish_rounds(&mut p, 3, 0..2, base);
    eventually("the first rounds arrive", || {
        (c.counter("smartmeter_collector_messages_total") >= 6.0).then_some(())
    });
    drop(p);
    broker.restart();
    c.wait_event("broker_lost");
    c.wait_event("broker_back");
    let mut p = Publisher::connect(broker.port, "after");
    publish_rounds(&mut p, 3, 2..4, base);
    eventually("the rounds after the restart arrive", || {
        (c.counter("smartmeter_collector_messages_total") >= 12.0).then_some(())
    });
    assert!(c.counter("smartmeter_collector_broker_reconnects_total") >= 1.0);
    let (code, _) = c.stop();
    assert_eq!(code, 0);
    assert_eq!(read_readings(&dir).len(), 3 * 4 * 3);
}

#[test]
fn a_tls_broker_is_trusted_by_its_ca_file_and_by_nothing_else() {
    if !peer("mosquitto") {
        return;
    }
    let broker = Mosquitto::start_tls();
    let listeners = broker.tls.clone().unwrap();
    let ca = listeners.ca.to_str().unwrap().to_string();
    let tls = format!("mqtts://127.0.0.1:{}", listeners.port);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("d");
    let dir = dir.to_str().unwrap();
    // The platform does not trust the broker's CA: exit 1, and the reason names the certificate.
    let o = run(&["collect", "--mqtt", &tls, "--out", dir, "--timeout", "10s"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).starts_with(&format!("smartmeter: error: MQTT broker {tls}: "))
            && err(&o).contains("certificate"),
        "{}",
        err(&o)
    );
    // A CA file is for TLS only; a plain listener spoken to with TLS fails.
    let plain = broker.addr();
    let o = run(&["collect", "--mqtt", &plain, "--ca-file", &ca, "--out", dir]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("mqtts://"), "{}", err(&o));
    let o = run(&[
        "collect",
        "--mqtt",
        &format!("mqtts://{plain}"),
        "--ca-file",
        &ca,
        "--out",
        dir,
        "--timeout",
        "10s",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    // With the CA: subscribed over TLS, the meters publish on the plain listener, nothing is lost.
    let mut c = Collector::start(&["--mqtt", &tls, "--ca-file", &ca, "--out", dir]);
    let subscribed = c.wait_event("subscribed");
    assert_eq!(subscribed["broker"], tls.as_str(), "{subscribed}");
    let mut p = Publisher::connect(broker.port, "meters");
    assert_eq!(store_rounds(c, &mut p, 0..2), 0);
    assert_eq!(read_readings(Path::new(dir)).len(), 3 * 2 * 3);
    // `fleet` over TLS: with the CA it connects, listens and exits 0; without it, exit 1 with the
    // certificate named; an address that cannot be one is a usage error (exit 2).
    let o = run(&["fleet", &tls, "--ca-file", &ca, "--wait", "1s", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let o = run(&["fleet", &tls, "--wait", "1s"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("certificate"), "{}", err(&o));
    let o = run(&["fleet", "mqtts://127.0.0.1:0"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));

    // Mutual TLS: a listener that wants a client certificate refuses a client without one, and
    // takes the collector that presents the CA's client certificate.
    let mtls = format!("mqtts://localhost:{}", listeners.mtls_port);
    let o = run(&["fleet", &mtls, "--ca-file", &ca, "--wait", "1s"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("client certificate"), "{}", err(&o));
    let (cert, key) = (
        listeners.client_cert.to_str().unwrap(),
        listeners.client_key.to_str().unwrap(),
    );
    let o = run(&[
        "fleet",
        &mtls,
        "--ca-file",
        &ca,
        "--client-cert",
        cert,
        "--wait",
        "1s",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "--client-cert without --client-key: {}",
        err(&o)
    );
    let c = Collector::start(&[
        "--mqtt",
        &mtls,
        "--ca-file",
        &ca,
        "--client-cert",
        cert,
        "--client-key",
        key,
        "--out",
        dir,
    ]);
    assert_eq!(store_rounds(c, &mut p, 2..3), 0);
    assert_eq!(read_readings(Path::new(dir)).len(), 3 * 3 * 3);
}

/// Publishes `rounds` of three meters, waits until the collector counted them and stops it; its
/// exit code.
fn store_rounds(c: Collector, p: &mut Publisher, rounds: std::ops::Range<usize>) -> i32 {
    let messages = 3.0 * rounds.len() as f64;
    publish_rounds(p, 3, rounds, 1_767_225_600.0);
    eventually("the rounds arrive", || {
        (c.counter("smartmeter_collector_messages_total") >= messages).then_some(())
    });
    c.stop().0
}

#[test]
fn a_killed_collector_loses_at_most_a_checkpoint_and_the_next_start_recovers_it() {
    if !peer("mosquitto") {
        return;
    }
    let broker = Mosquitto::start();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("d");
    let dir_s = dir.to_str().unwrap();
    let addr = broker.addr();
    let args = ["--mqtt", &addr, "--out", dir_s, "--checkpoint", "1s"];
    let mut c = Collector::start(&args);
    let base = 1_767_225_600.0;
    let mut p = Publisher::connect(broker.port, "meters");
    publish_rounds(&mut p, 3, 0..4, base);
    // every row of those rounds on disk (a checkpoint counts the rows of its open file)
    eventually("a checkpoint holds every row", || {
        loop {
            match c.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(v) if v["event"] == "checkpoint" && v["rows"] == 3 * 4 * 3 => return Some(()),
                Ok(v) => c.seen.push(v),
                Err(_) => return None,
            }
        }
    });
    let _ = c.child.kill(); // SIGKILL: no chance to close the file
    let _ = c.child.wait();
    assert!(read_readings_part_only(&dir));
    // The next start completes the file from its checkpoint, then works on.
    let mut c = Collector::start(&args);
    let rec = c.wait_event("recovered");
    assert_eq!(rec["rows"], 3 * 4 * 3, "{rec}");
    assert_eq!(rec["table"], "readings", "{rec}");
    publish_rounds(&mut p, 3, 4..5, base);
    eventually("the next round arrives", || {
        (c.counter("smartmeter_collector_messages_total") >= 3.0).then_some(())
    });
    let (code, _) = c.stop();
    assert_eq!(code, 0);
    assert_eq!(read_readings(&dir).len(), 3 * 5 * 3);
    // A reader that is not ours reads the completed file (its footer written by the checkpoint).
    let Some(py) = duckdb_python() else {
        return skip("DuckDB read-back: no python3 with venv/pip to install duckdb from PyPI");
    };
    let r = duckdb(
        &py,
        &format!(
            "SELECT count(*), count(DISTINCT meter) FROM read_parquet('{}')",
            rec["path"].as_str().unwrap()
        ),
    );
    assert_eq!(r, [[Value::from(3 * 4 * 3), Value::from(3)]]);
}

/// True when the only readings files are hidden `.part` files (and their footers).
fn read_readings_part_only(dir: &Path) -> bool {
    let root = dir.join("readings");
    std::fs::read_dir(root).unwrap().flatten().all(|d| {
        std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .all(|f| f.file_name().to_string_lossy().starts_with('.'))
    })
}

// ---- PostgreSQL --------------------------------------------------------------------------------

/// A throwaway PostgreSQL cluster from the Debian package, on a free port, as user `postgres`
/// when the test runs as root (the server refuses root).
struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    run_as: Option<String>,
    /// With TLS: the PEM files of the server certificate's CA and of a client certificate (CN
    /// `smartmeter`, the user) and its key.
    tls: Option<[PathBuf; 3]>,
    _dir: tempfile::TempDir,
}

fn pg_bindir() -> Option<PathBuf> {
    if let Ok(o) = Command::new("pg_config").arg("--bindir").output() {
        let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        if p.join("initdb").is_file() {
            return Some(p);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop()
}

impl Postgres {
    /// A cluster; with `tls` one that takes TCP connections over TLS only (`hostssl`), with a
    /// certificate from a CA made for it.
    fn start_with(tls: bool) -> Option<Postgres> {
        let bin = pg_bindir()?;
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        let run_as = root.then(|| "postgres".to_string());
        let dir = tempfile::tempdir().unwrap();
        if let Some(user) = &run_as {
            let ok = Command::new("chown")
                .args(["-R", user])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the data directory to {user}");
        }
        let pg = Postgres {
            bin,
            data: dir.path().join("data"),
            port: free_port(),
            run_as,
            tls: None,
            _dir: dir,
        };
        let o = pg
            .cmd("initdb")
            .arg("-D")
            .arg(&pg.data)
            .args([
                "-U",
                "smartmeter",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut pg = pg;
        if tls {
            pg.enable_tls();
        }
        pg.up();
        Some(pg)
    }

    fn enable_tls(&mut self) {
        let pki = peer_support::TestPki::new();
        let dir = self.data.parent().unwrap();
        let files = [
            dir.join("ca.pem"),
            dir.join("client.pem"),
            dir.join("client.key"),
        ];
        for (f, pem) in files
            .iter()
            .zip([&pki.ca_pem, &pki.client_cert_pem, &pki.client_key_pem])
        {
            std::fs::write(f, pem).unwrap();
        }
        let (crt, key) = (self.data.join("server.crt"), self.data.join("server.key"));
        std::fs::write(&crt, &pki.cert_pem).unwrap();
        std::fs::write(&key, &pki.key_pem).unwrap();
        if let Some(user) = &self.run_as {
            let ok = Command::new("chown")
                .arg(user)
                .arg(&crt)
                .arg(&key)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the certificate to {user}");
        }
        // the server refuses a key others can read
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let conf = self.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str(&format!(
            "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = '{}'\n",
            files[0].display()
        ));
        std::fs::write(&conf, text).unwrap();
        let hba = self.data.join("pg_hba.conf");
        let text: String = std::fs::read_to_string(&hba)
            .unwrap()
            .lines()
            .map(|l| match l.strip_prefix("host ") {
                // TCP over TLS only, and the client proves its user name with a certificate
                Some(rest) => format!(
                    "hostssl {} cert\n",
                    rest.trim_end().trim_end_matches("trust")
                ),
                None => format!("{l}\n"),
            })
            .collect();
        assert!(text.contains("hostssl "), "pg_hba.conf has host lines");
        std::fs::write(&hba, text).unwrap();
        self.tls = Some(files);
    }

    fn cmd(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    fn up(&self) {
        let sock = self.data.parent().unwrap();
        let o = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                self.port,
                sock.display()
            ))
            .arg("-l")
            .arg(sock.join("server.log"))
            .args(["-w", "-t", "60", "start"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn down(&self) {
        let o = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://smartmeter@127.0.0.1:{}/postgres", self.port)
    }

    /// One query through `psql`, rows as `|`-separated text.
    fn query(&self, sql: &str) -> Vec<String> {
        // over the socket (trusted), whatever TCP asks for
        let sock = self.data.parent().unwrap();
        let o = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-q", "-U", "smartmeter", "-d", "postgres"])
            .arg("-h")
            .arg(sock)
            .args(["-p", &self.port.to_string(), "-c", sql])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(String::from)
            .collect()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// A broker and a PostgreSQL cluster (TLS-only with `tls`), or `None` after a loud skip.
fn postgres_and_broker(tls: bool) -> Option<(Postgres, Mosquitto)> {
    if !peer("mosquitto") {
        return None;
    }
    let Some(pg) = Postgres::start_with(tls) else {
        skip("PostgreSQL server binaries not found (apt-get install postgresql)");
        return None;
    };
    Some((pg, Mosquitto::start()))
}

#[test]
fn postgres_restart_in_the_middle_of_a_stream_loses_no_round() {
    let Some((pg, broker)) = postgres_and_broker(false) else {
        return;
    };
    const METERS: usize = 8;
    let out = tempfile::tempdir().unwrap();
    let data = out.path().join("data");
    let addr = broker.addr();
    let url = pg.url();
    // A tiny memory bound, so that the outage also goes through the disk spool.
    let mut c = Collector::start(&[
        "--mqtt",
        &addr,
        "--postgres",
        &url,
        "--out",
        data.to_str().unwrap(),
        "--buffer-rows",
        "40",
    ]);
    let base = 1_767_225_600.0;
    let mut p = Publisher::connect(broker.port, "fleet");
    let count = |pg: &Postgres| {
        pg.query("SELECT count(*) FROM readings")[0]
            .parse::<usize>()
            .unwrap()
    };

    publish_rounds(&mut p, METERS, 0..5, base);
    eventually("the first rounds are in the database", || {
        (count(&pg) == METERS * 5 * 3).then_some(())
    });

    pg.down();
    publish_rounds(&mut p, METERS, 5..15, base);
    eventually("the rows wait in memory and on disk", || {
        (c.counter("smartmeter_collector_rows_buffered{sink=\"postgres\",place=\"disk\"}") > 0.0)
            .then_some(())
    });
    c.wait_event("spooled");
    pg.up();
    publish_rounds(&mut p, METERS, 15..20, base);
    // Events and an aggregate too, one of them twice (a QoS 1 redelivery): stored once.
    let ev = PqEvent {
        id: 7,
        kind: EventKind::Dip,
        phases: PhaseSet::from_phases(&[2]).unwrap(),
        start_s: base + 3.25,
        duration_s: 0.1,
        extreme_v: 180.5,
        reference_v: 230.0,
    };
    p.publish(mqtt::event_topic("m003"), ev.to_json());
    p.publish(mqtt::event_topic("m003"), ev.to_json());
    let mut agg = PqAggregate::undefined(
        PqInterval::TenMinutes,
        base,
        base + 600.0,
        Nominal {
            voltage_v: 230.0,
            frequency_hz: 50.0,
        },
    );
    agg.harmonics_v[1][2] = Some(3.25);
    agg.thd_v_pct = [Some(1.5), Some(2.5), None];
    p.publish(mqtt::pq_topic("m002"), agg.to_json());
    p.wait_acked();
    c.wait_event("database_back");
    eventually("every round is in the database after the restart", || {
        (count(&pg) == METERS * 20 * 3).then_some(())
    });
    eventually("the event and the aggregate are stored", || {
        (pg.query("SELECT count(*) FROM pq_events")[0] == "1"
            && pg.query("SELECT count(*) FROM pq_intervals")[0] == "3")
            .then_some(())
    });

    // Nothing doubled, every (meter, round) present, values intact.
    assert_eq!(
        pg.query(
            "SELECT count(*) FROM (SELECT meter, time, phase FROM readings GROUP BY 1, 2, 3 HAVING count(*) > 1) d"
        ),
        ["0"]
    );
    assert_eq!(
        pg.query("SELECT count(DISTINCT (meter, time)) FROM readings"),
        [(METERS * 20).to_string()]
    );
    assert_eq!(
        pg.query(
            "SELECT meter, phase, voltage, energy_import, extract(epoch FROM time)::bigint FROM readings \
             WHERE meter = 'm005' AND phase = 1 ORDER BY time DESC LIMIT 1"
        ),
        [format!("m005|1|230.5|19|{}", base as i64 + 19)]
    );
    assert_eq!(
        pg.query("SELECT count(*) FROM readings WHERE phase = 3 AND voltage IS NULL"),
        [(METERS * 20).to_string()]
    );
    // Column types.
    assert_eq!(
        pg.query(
            "SELECT column_name || ':' || data_type FROM information_schema.columns \
             WHERE table_name = 'readings' ORDER BY ordinal_position"
        ),
        [
            "time:timestamp with time zone",
            "meter:text",
            "phase:smallint",
            "voltage:real",
            "current:real",
            "active_power:real",
            "reactive_power:real",
            "apparent_power:real",
            "power_factor:real",
            "frequency:real",
            "energy_import:double precision",
            "energy_export:double precision",
        ]
    );
    assert_eq!(
        pg.query(
            "SELECT meter, id, type, phases, extreme, extract(epoch FROM time) FROM pq_events"
        ),
        ["m003|7|dip|{2}|180.5|1767225603.250000"]
    );
    assert_eq!(
        pg.query(
            "SELECT phase, \"interval\", harmonics_v[3], array_length(harmonics_v, 1), thd_v FROM pq_intervals ORDER BY phase"
        ),
        ["1|10min||50|1.5", "2|10min|3.25|50|2.5", "3|10min||50|"]
    );

    let (code, events) = c.stop();
    assert_eq!(code, 0);
    assert!(events.iter().any(|e| e["event"] == "database_lost"));
    // The spool is empty again.
    let left: Vec<_> = std::fs::read_dir(data.join(".spool").join("postgres"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn postgres_over_tls_verifies_the_server_and_stores_every_round() {
    let Some((pg, broker)) = postgres_and_broker(true) else {
        return;
    };
    const METERS: usize = 4;
    let [ca, cert, key] = pg.tls.clone().unwrap();
    let addr = broker.addr();
    let out = tempfile::tempdir().unwrap();
    let data = out.path().join("data");
    let data = data.to_str().unwrap();
    let run_pg = |url: &str| {
        run(&[
            "collect",
            "--mqtt",
            &addr,
            "--postgres",
            url,
            "--out",
            data,
            "--timeout",
            "10s",
        ])
    };
    // Refused at start (exit 1), the reason naming `words`.
    let refused = |url: &str, words: &str| {
        let o = run_pg(url);
        assert_eq!(o.status.code(), Some(1), "{}", err(&o));
        assert!(err(&o).contains(words), "{}", err(&o));
    };
    // The server takes TCP over TLS only: a plain connection is refused.
    refused(&pg.url(), "PostgreSQL at 127.0.0.1:");
    // TLS, but the system does not trust the test CA: the way out is named.
    refused(&format!("{}?sslmode=require", pg.url()), "sslrootcert");
    // The CA, but no client certificate: the server refuses.
    let verified = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        pg.url(),
        ca.display()
    );
    refused(&verified, "client certificate");
    // The CA and the client certificate (libpq's spelling): every round stored, over TLS.
    let url = format!(
        "{verified}&sslcert={}&sslkey={}",
        cert.display(),
        key.display()
    );
    let c = Collector::start(&["--mqtt", &addr, "--postgres", &url, "--out", data]);
    let mut p = Publisher::connect(broker.port, "fleet");
    publish_rounds(&mut p, METERS, 0..3, 1_767_225_600.0);
    eventually("every round is in the database", || {
        (pg.query("SELECT count(*) FROM readings")[0] == (METERS * 3 * 3).to_string()).then_some(())
    });
    assert_eq!(
        pg.query(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'smartmeter collect'"
        ),
        ["1|1"]
    );
    let (code, _) = c.stop();
    assert_eq!(code, 0);
}

#[test]
fn start_errors_and_exit_codes() {
    // Nothing listens on this port: exit 1, one clear line.
    let port = free_port();
    let broker = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = run(&[
        "collect",
        "--mqtt",
        &broker,
        "--out",
        out,
        "--timeout",
        "3s",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).starts_with(&format!("smartmeter: error: MQTT broker {broker}: ")),
        "{}",
        err(&o)
    );
    // A bad database URL: exit 1 before anything else.
    let o = run(&[
        "collect",
        "--mqtt",
        &broker,
        "--postgres",
        "postgres://h:notaport/x",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).starts_with("smartmeter: error: invalid PostgreSQL URL"),
        "{}",
        err(&o)
    );
    // A bad broker address: exit 1.
    let o = run(&["collect", "--mqtt", "host:99999", "--out", out]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("port must be 1-65535"), "{}", err(&o));
    // Bad arguments: exit 2.
    for bad in [
        &["collect"][..],
        &["collect", "--mqtt", "h", "--group", "a/b"],
        &["collect", "--mqtt", "h", "--metrics", "nowhere"],
        &["collect", "--mqtt", "h", "--password", "p"],
    ] {
        let o = run(bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", err(&o));
    }
}
