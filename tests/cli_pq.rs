//! `smartmeter pq` and `smartmeter events` as processes against `smartmeter-sim` as a process whose
//! grid misbehaves on schedule (issue 13 item 4): the getPQ object and its table for the voltage,
//! frequency and harmonics the simulator was given; a scheduled dip listed with its type, phase,
//! duration and residual; every page of getEvents; `--follow` printing an event that ends after it
//! started, until SIGINT (exit 0).
#![cfg(all(feature = "cli", feature = "sim"))]

mod cli_support;
mod sim_support;

use std::time::{Duration, Instant};

use cli_support::*;
use serde_json::Value;
use sim_support::{SOON, Sim};

/// Runs `smartmeter ARGS` until it succeeds (the meter has no complete interval, or not every
/// event, yet) and `done` accepts its stdout; panics after `within` with the last output.
fn until(args: &[&str], within: Duration, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
    loop {
        let o = cli(args);
        let out = stdout(&o);
        if o.status.success() && done(&out) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "smartmeter {args:?} within {within:?}: exit {:?}, stdout {out}, stderr {}",
            o.status.code(),
            stderr(&o)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn rel(a: f64, b: f64) -> f64 {
    ((a - b) / b).abs()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// A 120 V / 60 Hz grid with 4 % H5 and 2 % H3 on every phase: `pq --json` is the getPQ reply
/// object with those values (nominal values detected as 120 V, 60 Hz), the table shows them, and a
/// 10-min interval that has not completed is the meter's refusal (exit 3) in words.
#[test]
fn pq_shows_the_simulated_grid() {
    let sim = Sim::start_for_clients(&[
        "--voltage",
        "120",
        "--frequency",
        "60",
        "--vharmonic",
        "5:0.04",
        "--vharmonic",
        "3:0.02",
    ]);
    let h = sim.host();
    let h = h.as_str();
    let out = until(&["pq", h, "--json"], 2 * SOON, |_| true);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with(r#"{"error":false,"cmd":"getPQ","interval":"3s","start":"#),
        "the reply object as sent: {out}"
    );
    let r: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        r["nominal"],
        serde_json::json!({"voltage": 120.0, "frequency": 60.0})
    );
    assert_eq!(r["flagged"], false);
    let (start, end) = (num(&r["start"]), num(&r["end"]));
    assert!((end - start - 3.0).abs() < 0.01, "180 cycles at 60 Hz: {r}");
    // --voltage is the fundamental's RMS; the harmonics add to the total.
    let h1 = 120.0;
    let total = 120.0 * (1.0 + 0.04f64.powi(2) + 0.02f64.powi(2)).sqrt();
    for p in 0..3 {
        let v = num(&r["voltage"][p]);
        assert!(rel(v, total) < 5e-4, "L{} {v} V, want {total}", p + 1);
        // (the RMS of equal basic values may differ from them in the last bits of an f32)
        let (lo, hi) = (num(&r["voltageMin"][p]), num(&r["voltageMax"][p]));
        assert!(
            lo <= v * (1.0 + 1e-6) && v <= hi * (1.0 + 1e-6),
            "{lo} {v} {hi}"
        );
        assert!(rel(lo, total) < 5e-4 && rel(hi, total) < 5e-4, "{lo} {hi}");
        let hv = r["harmonicsV"][p].as_array().unwrap();
        assert_eq!(hv.len(), 50);
        assert!(rel(num(&hv[0]), h1) < 5e-4, "H1 {}", hv[0]);
        assert!(rel(num(&hv[4]) / num(&hv[0]), 0.04) < 0.01, "H5 {}", hv[4]);
        assert!(rel(num(&hv[2]) / num(&hv[0]), 0.02) < 0.01, "H3 {}", hv[2]);
        for (k, x) in hv.iter().enumerate().skip(1) {
            if k != 2 && k != 4 {
                assert!(num(x) < 0.001 * h1, "H{} {x}", k + 1);
            }
        }
        let thd = num(&r["thdV"][p]);
        assert!(rel(thd, 20f64.sqrt()) < 0.01, "THD {thd}");
        assert_eq!(r["harmonicsI"][p].as_array().unwrap().len(), 50);
    }
    assert!(num(&r["u2"]) < 0.02 && num(&r["u0"]) < 0.02, "{r}");
    // The 10-s frequency comes after the first whole 10-s interval; until then it is null.
    assert!(r["frequency"].is_null() || (num(&r["frequency"]) - 60.0).abs() < 1e-3);
    assert!(r["pst"].is_null() && r["plt"].is_null());

    // The table: the same values, as people read them.
    let text = until(&["pq", h], SOON, |_| true);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("3s interval ") && lines[0].ends_with(" UTC (3.000 s)"),
        "{text}"
    );
    assert_eq!(lines[1], "nominal 120 V, 60 Hz");
    let header: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "phase", "V", "(V)", "Vmin", "(V)", "Vmax", "(V)", "THD", "V", "(%)", "THD", "I", "(%)"
        ]
    );
    for (k, row) in lines[4..7].iter().enumerate() {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[0], format!("L{}", k + 1));
        let v: f64 = cells[1].parse().unwrap();
        assert!(rel(v, total) < 5e-4, "{row}");
        let thd: f64 = cells[4].parse().unwrap();
        assert!((thd - 4.47).abs() <= 0.01, "{row}");
    }
    assert!(
        text.contains("\nfrequency (10 s)  ") && text.contains("\nunbalance         u0 "),
        "{text}"
    );
    let harmonics = text
        .split("largest voltage harmonic subgroups (% of H1)\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    for row in harmonics.lines().skip(1).take(3) {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[2..6], ["H5", "4.00", "H3", "2.00"], "{text}");
    }

    // No complete 10-min interval in the first minutes: the meter's words, exit 3.
    let o = cli(&["pq", h, "--interval", "10min"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    let err = stderr(&o);
    assert!(
        err.starts_with(
            "smartmeter: error: the meter refused `getPQ`: No complete 10min interval yet ("
        ) && err.ends_with(")\n")
            && err.lines().count() == 1,
        "{err}"
    );
    // Bad intervals are usage errors (exit 2) found before connecting.
    for bad in ["5s", "1h", ""] {
        let o = cli(&["pq", h, "--interval", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
    }
}

/// One dip of L1 at 2 s for 200 ms to 60 %, then 17 short dips of L2: `events --json` reads every
/// page (16 events each) and prints each event object exactly as getEvents sent it; the first is
/// the dip with its phase, start and duration within one cycle, and residual within 0.2 % of Udin.
#[test]
fn events_lists_every_page_and_the_scheduled_dip() {
    let mut args: Vec<String> = ["--token", "s3cret", "--dip", "2s:200ms:0.6:1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for k in 0..17 {
        args.push("--dip".into());
        args.push(format!("{}ms:60ms:0.5:2", 3000 + 250 * k));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let sim = Sim::start_for_clients(&args);
    let h = sim.host();
    let h = h.as_str();
    let out = until(&["events", h, "--json"], Duration::from_secs(30), |out| {
        out.lines().count() >= 18
    });
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(events.len(), 18, "{out}");
    let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=18).collect::<Vec<u64>>());

    let dip = &events[0];
    assert_eq!(dip["type"], "dip");
    assert_eq!(dip["phases"], serde_json::json!([1]));
    assert_eq!(dip["reference"], 230.0);
    let period = 1.0 / 50.0;
    let duration = num(&dip["duration"]);
    assert!(
        (duration - 0.2).abs() <= period,
        "{duration} s, want 0.2 s ± one cycle"
    );
    let start = num(&dip["start"]) - sim.listening_unix_s;
    // The schedule's zero lies at or shortly before the `listening on` line was read.
    assert!(
        (1.9..=2.0 + period).contains(&start),
        "starts {start} s after the listening line, want 2 s"
    );
    let residual = num(&dip["extreme"]);
    assert!(
        (residual - 0.6 * 230.0).abs() <= 0.002 * 230.0,
        "residual {residual} V, want 138 V ± 0.2 % of Udin"
    );
    for e in &events[1..] {
        assert_eq!(e["type"], "dip", "{e}");
        assert_eq!(e["phases"], serde_json::json!([2]), "{e}");
        assert!((num(&e["extreme"]) - 115.0).abs() <= 0.46, "{e}");
    }

    // Each line is the event object exactly as the meter sent it in its getEvents reply.
    let mut raw = String::new();
    for since in [0, 16] {
        let o = cli(&[
            "cmd",
            h,
            &format!(r#"{{"cmd":"getEvents","since":{since}}}"#),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        raw.push_str(&stdout(&o));
    }
    for l in out.lines() {
        assert!(raw.contains(l), "{l} not in {raw}");
    }

    // --since: only the later ones; the human table: a header and one row per event.
    let later = stdout(&cli(&["events", h, "--json", "--since", "16"]));
    assert_eq!(later.lines().count(), 2, "{later}");
    assert!(later.starts_with(r#"{"id":17,"#), "{later}");
    let text = stdout(&cli(&["events", h]));
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 19, "{text}");
    let header: Vec<&str> = rows[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "id", "start", "(UTC)", "type", "phases", "duration", "extreme", "Udin", "(V)"
        ]
    );
    let first: Vec<&str> = rows[1].split_whitespace().collect();
    assert_eq!(first[0], "1");
    assert_eq!(first[3..5], ["dip", "L1"], "{}", rows[1]);
    assert_eq!(first[6], "ms", "{}", rows[1]);
    let ms: f64 = first[5].parse().unwrap();
    assert!((ms - 200.0).abs() <= 20.0, "{}", rows[1]);
    assert_eq!(
        first[7..9],
        [format!("{residual:.2}").as_str(), "V"],
        "{}",
        rows[1]
    );
    let pct = format!("({:.1}", residual / 230.0 * 100.0);
    assert_eq!(first[9..12], [pct.as_str(), "%)", "230"], "{}", rows[1]);
    assert_eq!(
        stdout(&cli(&["events", h, "--since", "18"])),
        "no events after id 18\n"
    );

    // The token as every subcommand takes it: reading needs none, a wrong one is refused.
    let o = cli_env(
        &["events", h, "--since", "17", "--json"],
        &[("SMARTMETER_TOKEN", "s3cret")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with(r#"{"id":18,"#));
    for args in [
        &["events", h, "--token", "wrong"][..],
        &["pq", h, "--token", "wrong"],
    ] {
        let o = cli(args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("Invalid token"), "{}", stderr(&o));
    }
}

/// What `--help` says of the two subcommands and of `analyze --pq --plot`.
#[test]
fn help_texts() {
    let help = |args: &[&str]| {
        let o = cli(args);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let top = help(&["--help"]);
    assert!(top.contains("\n  pq "), "{top}");
    assert!(top.contains("\n  events "), "{top}");
    let pq = help(&["pq", "--help"]);
    for want in [
        "Usage: smartmeter pq [OPTIONS] <HOST>",
        "getPQ",
        "Pst/Plt",
        "--interval <INTERVAL>",
        "200ms (the last 10/12-cycle window), 3s, 10min or 2h",
        "[default: 3s]",
        "--json",
        "--token <TOKEN>",
        "SMARTMETER_TOKEN",
        "--timeout <TIMEOUT>",
    ] {
        assert!(pq.contains(want), "pq --help lacks {want:?}:\n{pq}");
    }
    let events = help(&["events", "--help"]);
    for want in [
        "Usage: smartmeter events [OPTIONS] <HOST>",
        "getEvents",
        "--since <N>",
        "[default: 0]",
        "-f, --follow",
        "until Ctrl-C (exit 0)",
        "every 5 s",
        "One getEvents event object per line",
        "--token <TOKEN>",
    ] {
        assert!(
            events.contains(want),
            "events --help lacks {want:?}:\n{events}"
        );
    }
    let analyze = help(&["analyze", "--help"]);
    assert!(
        analyze.contains("with --pq the power-quality view"),
        "{analyze}"
    );
}

/// `events --follow`, started before the scheduled dip: the one-shot listing is still empty, then
/// both followers print the dip once when it has ended, and SIGINT ends them with exit 0.
#[test]
fn follow_prints_an_event_that_ends_after_it_started() {
    let sim = Sim::start_for_clients(&["--dip", "5s:100ms:0.7:2"]);
    let h = sim.host();
    let h = h.as_str();
    let json = Running::start(&["events", h, "--follow", "--json"]);
    let human = Running::start(&["events", h, "-f"]);
    // The human follower prints its header once it has listed the (no) past events.
    human.wait_line(SOON, |l| l.trim_start().starts_with("id  start (UTC)"));
    let before = cli(&["events", h, "--json"]);
    assert!(before.status.success(), "{}", stderr(&before));
    assert_eq!(
        stdout(&before),
        "",
        "the dip is over before the followers started: the test cannot tell"
    );
    let line = json.wait_line(SOON + Duration::from_secs(5), |_| true);
    let e: Value = serde_json::from_str(&line).unwrap_or_else(|err| panic!("{err}: {line}"));
    assert_eq!(e["id"], 1);
    assert_eq!(e["type"], "dip");
    assert_eq!(e["phases"], serde_json::json!([2]));
    assert!((num(&e["duration"]) - 0.1).abs() <= 0.02, "{e}");
    let row = human.wait_line(SOON, |_| true);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[0], "1", "{row}");
    assert_eq!(cells[3..5], ["dip", "L2"], "{row}");
    for (p, name) in [(json, "--json"), (human, "table")] {
        p.signal("INT");
        // The rest of its output, to its end: the dip is not printed twice.
        let rest: Vec<String> = std::iter::from_fn(|| p.lines.recv_timeout(SOON).ok()).collect();
        assert!(rest.is_empty(), "{name}: {rest:?}");
        let (status, err) = p.finish(SOON);
        assert!(status.success(), "{name}: {status:?}: {err}");
        assert!(err.is_empty(), "{name}: {err}");
    }
}
