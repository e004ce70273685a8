//! `smartmeter analyze FILE --pq` over synthetic recordings written with the crate's recording
//! writer: the §11 aggregate and event objects, voltage within 0.05 % and frequency within 1 mHz,
//! a dip's start, duration and residual, 60 Hz auto-detection, voltage-only `.f32` files.
#![cfg(feature = "cli")]

mod cli_support;
mod pq_support;

use std::path::{Path, PathBuf};

use pq_support::{Signal, Step};
use serde_json::Value;
use smartmeter::client::analyze::pq::{PqAnalyzeOptions, analyze_pq_file};
use smartmeter::client::recording::{PendingRecording, ReadHints, RecordingMeta, RecordingStatus};
use smartmeter::wire::pq::PqInterval;

/// Start of the WAV/CSV recordings: 2023-11-14 22:13:20.25 UTC (not on a 3-s or 10-min tick).
const START_US: i64 = 1_700_000_000_250_000;
const START_S: f64 = START_US as f64 * 1e-6;
const RATE: u32 = 8000;

/// `seconds` of `sig` in the file's channels (`v_lK` in V, `i_lK` in mA), written to `path`.
fn write(path: &Path, sig: &Signal, seconds: f64, channels: &[&str], start_us: Option<i64>) {
    let units = channels
        .iter()
        .map(|c| if c.starts_with('i') { "mA" } else { "V" }.to_string())
        .collect();
    let mut meta = RecordingMeta::new(
        sig.rate_hz,
        channels.iter().map(|c| c.to_string()).collect(),
        units,
    );
    meta.start_unix_us = start_us;
    let mut w = PendingRecording::create(path).unwrap().start(meta).unwrap();
    let frames = (seconds * f64::from(sig.rate_hz)).round() as u64;
    let mut block = Vec::new();
    for n in 0..frames {
        let f = sig.frame(n);
        for c in channels {
            let p = usize::from(c.as_bytes()[3] - b'1');
            block.push(if c.starts_with('i') {
                (f[2 * p + 1] * 1e3) as f32
            } else {
                f[2 * p] as f32
            });
        }
        if block.len() >= 1 << 16 {
            w.write(&block).unwrap();
            block.clear();
        }
    }
    w.write(&block).unwrap();
    w.finish(RecordingStatus::Complete).unwrap();
}

const SIX: [&str; 6] = ["v_l1", "i_l1", "v_l2", "i_l2", "v_l3", "i_l3"];

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn file(d: &tempfile::TempDir, name: &str) -> PathBuf {
    d.path().join(name)
}

/// The library run: every item as its JSON object.
fn run(path: &Path, opts: &PqAnalyzeOptions) -> Vec<Value> {
    let mut out = Vec::new();
    analyze_pq_file(path, opts, |item| {
        out.push(serde_json::from_str(&item.to_json()).unwrap())
    })
    .unwrap();
    out
}

fn aggregates(items: &[Value]) -> Vec<&Value> {
    items
        .iter()
        .filter(|v| v.get("interval").is_some())
        .collect()
}

fn events(items: &[Value]) -> Vec<&Value> {
    items.iter().filter(|v| v.get("type").is_some()).collect()
}

fn f(v: &Value, key: &str, k: usize) -> f64 {
    v[key][k]
        .as_f64()
        .unwrap_or_else(|| panic!("{key}[{k}] in {v}"))
}

fn opts(interval: PqInterval) -> PqAnalyzeOptions {
    PqAnalyzeOptions {
        interval,
        ..PqAnalyzeOptions::default()
    }
}

/// Keys of a getPQ object without `error`/`cmd`, in order.
const AGGREGATE_KEYS: [&str; 18] = [
    "interval",
    "start",
    "end",
    "flagged",
    "nominal",
    "voltage",
    "voltageMin",
    "voltageMax",
    "frequency",
    "u0",
    "u2",
    "thdV",
    "thdI",
    "harmonicsV",
    "harmonicsI",
    "pst",
    "plt",
    "",
];

#[track_caller]
fn check_keys(line: &str) {
    let mut at = 0;
    for k in AGGREGATE_KEYS.iter().filter(|k| !k.is_empty()) {
        let pat = format!("\"{k}\":");
        let i = line[at..]
            .find(&pat)
            .unwrap_or_else(|| panic!("{k} after {at} in {line}"));
        at += i + pat.len();
    }
    assert!(!line.contains("\"cmd\"") && !line.contains("\"error\""));
}

#[test]
fn clean_three_phase_wav_three_second_aggregates() {
    let d = dir();
    let path = file(&d, "clean.wav");
    let sig = Signal::new(RATE, 50.0, 230.0);
    write(&path, &sig, 30.0, &SIX, Some(START_US));
    let mut lines = Vec::new();
    let summary = analyze_pq_file(&path, &opts(PqInterval::ThreeSeconds), |item| {
        lines.push(item.to_json())
    })
    .unwrap();
    for l in &lines {
        check_keys(l);
    }
    let items: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let aggs = aggregates(&items);
    assert!(events(&items).is_empty(), "{items:?}");
    // 30 s less the first second (nominal detection) and the partial intervals at both ends
    assert!(aggs.len() >= 8, "{} aggregates", aggs.len());
    assert_eq!(summary.aggregates, aggs.len() as u64);
    let mut with_f = 0;
    for a in &aggs {
        assert_eq!(a["interval"], "3s");
        assert_eq!(a["flagged"], false);
        assert_eq!(a["nominal"]["voltage"], 230.0);
        assert_eq!(a["nominal"]["frequency"], 50.0);
        let (start, end) = (a["start"].as_f64().unwrap(), a["end"].as_f64().unwrap());
        assert!(start > START_S && end < START_S + 30.0, "{a}");
        assert!((end - start - 3.0).abs() < 0.01, "150 cycles: {a}");
        for p in 0..3 {
            let v = f(a, "voltage", p);
            assert!((v - 230.0).abs() / 230.0 < 5e-4, "{v} in {a}");
        }
        assert!(a["u2"].as_f64().unwrap() < 0.02, "{a}");
        assert!((a["harmonicsI"][0][0].as_f64().unwrap() - 5.0).abs() / 5.0 < 1e-2);
        if let Some(fr) = a["frequency"].as_f64() {
            assert!((fr - 50.0).abs() < 1e-3, "{fr}");
            with_f += 1;
        }
        assert!(a["pst"].is_null() && a["plt"].is_null());
    }
    assert!(with_f >= 5, "the 10-s frequency after the first 10 s");
}

#[test]
fn one_dip_on_l1_in_a_csv() {
    let d = dir();
    let path = file(&d, "dip.csv");
    let mut sig = Signal::new(RATE, 50.0, 230.0);
    let (at, dur) = (5.0137, 0.1);
    sig.steps = vec![
        Step {
            at_s: at,
            phases: [true, false, false],
            factor: 0.6,
        },
        Step {
            at_s: at + dur,
            phases: [true, false, false],
            factor: 1.0,
        },
    ];
    write(&path, &sig, 8.0, &SIX, Some(START_US));
    let items = run(&path, &opts(PqInterval::ThreeSeconds));
    let ev = events(&items);
    assert_eq!(ev.len(), 1, "{ev:?}");
    let e = ev[0];
    assert_eq!(e["type"], "dip");
    assert_eq!(e["id"], 1);
    assert_eq!(e["phases"], serde_json::json!([1]));
    assert_eq!(e["reference"], 230.0);
    let ds = e["start"].as_f64().unwrap() - (START_S + at);
    let dd = e["duration"].as_f64().unwrap() - dur;
    let dx = (e["extreme"].as_f64().unwrap() - 138.0).abs() / 230.0;
    eprintln!(
        "dip: start {:+.2} ms, duration {:+.2} ms, residual {:.4} % of Udin",
        ds * 1e3,
        dd * 1e3,
        dx * 100.0
    );
    assert!(ds.abs() <= 0.02, "start {ds}");
    assert!(dd.abs() <= 0.02, "duration {dd}");
    assert!(dx <= 0.002, "residual {dx}");
    // the 3-s interval the dip was in is flagged
    let flagged: Vec<_> = aggregates(&items)
        .into_iter()
        .filter(|a| a["flagged"] == true)
        .collect();
    assert_eq!(flagged.len(), 1, "{items:?}");
}

#[test]
fn sixty_hz_120_v_is_detected() {
    let d = dir();
    let path = file(&d, "us.wav");
    let sig = Signal::new(RATE, 60.0, 120.0);
    write(&path, &sig, 3.0, &SIX, Some(START_US));
    let items = run(&path, &opts(PqInterval::Basic));
    let aggs = aggregates(&items);
    assert!(aggs.len() >= 6, "{}", aggs.len());
    for a in &aggs {
        assert_eq!(a["interval"], "200ms");
        assert_eq!(a["nominal"]["frequency"], 60.0);
        assert_eq!(a["nominal"]["voltage"], 120.0);
        let (start, end) = (a["start"].as_f64().unwrap(), a["end"].as_f64().unwrap());
        assert!((end - start - 0.2).abs() < 1e-3, "12 cycles: {a}");
        assert!((f(a, "voltage", 0) - 120.0).abs() / 120.0 < 5e-4, "{a}");
        assert!((a["harmonicsV"][0][0].as_f64().unwrap() - 120.0).abs() / 120.0 < 1e-3);
        assert!((a["harmonicsI"][2][0].as_f64().unwrap() - 5.0).abs() / 5.0 < 1e-3);
    }
    // the first 3-s interval is 180 whole 12-cycle windows: no window of the 50 Hz guess in it
    let path = file(&d, "us3.wav");
    write(&path, &sig, 5.0, &SIX, Some(START_US));
    let items = run(&path, &opts(PqInterval::ThreeSeconds));
    let a = aggregates(&items)[0];
    let (start, end) = (a["start"].as_f64().unwrap(), a["end"].as_f64().unwrap());
    assert!((end - start - 3.0).abs() < 1e-3, "{a}");
    assert!((a["harmonicsV"][1][0].as_f64().unwrap() - 120.0).abs() / 120.0 < 1e-3);
}

#[test]
fn voltage_only_f32_times_from_the_first_sample() {
    let d = dir();
    let one = file(&d, "l1.f32");
    let mut sig = Signal::new(RATE, 50.0, 230.0);
    sig.steps = vec![
        Step {
            at_s: 5.5,
            phases: [true, true, true],
            factor: 0.5,
        },
        Step {
            at_s: 5.7,
            phases: [true, true, true],
            factor: 1.0,
        },
    ];
    write(&one, &sig, 8.0, &["v_l1"], None);
    let hints = |ch: &str| ReadHints {
        rate_hz: Some(RATE),
        channels: Some(ch.split(',').map(String::from).collect()),
    };
    let o = PqAnalyzeOptions {
        hints: hints("v_l1"),
        interval: PqInterval::ThreeSeconds,
        ..PqAnalyzeOptions::default()
    };
    let items = run(&one, &o);
    let aggs = aggregates(&items);
    assert!(!aggs.is_empty());
    for a in &aggs {
        assert!(
            a["start"].as_f64().unwrap() < 8.0,
            "seconds from the first sample: {a}"
        );
        if a["flagged"] == true {
            continue;
        }
        assert!((f(a, "voltage", 0) - 230.0).abs() / 230.0 < 5e-4, "{a}");
        assert!(
            a["voltage"][1].is_null() && a["voltage"][2].is_null(),
            "{a}"
        );
        assert!(a["thdI"][0].is_null() && a["harmonicsI"][0][0].is_null());
        assert!(a["u2"].is_null());
    }
    let ev = events(&items);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["phases"], serde_json::json!([1]));
    assert!(
        (ev[0]["start"].as_f64().unwrap() - 5.5).abs() <= 0.02,
        "{}",
        ev[0]
    );

    // three voltages: unbalance from the phasors, the dip on all three phases
    let three = file(&d, "v3.f32");
    write(&three, &sig, 8.0, &["v_l1", "v_l2", "v_l3"], None);
    let o = PqAnalyzeOptions {
        hints: hints("v_l1,v_l2,v_l3"),
        ..o
    };
    let items = run(&three, &o);
    for a in aggregates(&items)
        .into_iter()
        .filter(|a| a["flagged"] == false)
    {
        assert!(a["u2"].as_f64().unwrap() < 0.02, "{a}");
        assert!((f(a, "voltage", 2) - 230.0).abs() / 230.0 < 5e-4, "{a}");
        assert!(a["harmonicsI"][2][0].is_null());
    }
    let ev = events(&items);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["phases"], serde_json::json!([1, 2, 3]));
}

/// `smartmeter analyze FILE --pq ARGS`: its stdout.
fn cli_pq(path: &Path, args: &[&str]) -> String {
    let mut all = vec!["analyze", path.to_str().unwrap(), "--pq"];
    all.extend_from_slice(args);
    let o = cli_support::cli(&all);
    assert!(o.status.success(), "{args:?}: {}", cli_support::stderr(&o));
    cli_support::stdout(&o)
}

#[test]
fn the_cli_prints_the_same_objects_and_a_table() {
    let d = dir();
    let path = file(&d, "dip.f32");
    let mut sig = Signal::new(RATE, 50.0, 230.0);
    sig.steps = vec![
        Step {
            at_s: 5.0,
            phases: [false, true, false],
            factor: 0.6,
        },
        Step {
            at_s: 5.1,
            phases: [false, true, false],
            factor: 1.0,
        },
    ];
    write(
        &path,
        &sig,
        8.0,
        &["v_l1", "v_l2", "v_l3", "i_l1", "i_l2", "i_l3"],
        None,
    );
    let args = [
        "--rate",
        "8000",
        "--channels",
        "v_l1,v_l2,v_l3,i_l1,i_l2,i_l3",
        "--interval",
        "3s",
        "--udin",
        "230",
        "--nominal",
        "50",
    ];
    let mut all = vec!["--json"];
    all.extend_from_slice(&args);
    let json = cli_pq(&path, &all);
    let o = PqAnalyzeOptions {
        hints: ReadHints {
            rate_hz: Some(RATE),
            channels: Some(SIX.iter().map(|c| c.to_string()).collect()),
        },
        interval: PqInterval::ThreeSeconds,
        udin_v: Some(230.0),
        nominal_hz: Some(50),
        ..PqAnalyzeOptions::default()
    };
    // the library over the same samples in the six-channel order of the device
    let six = file(&d, "dip6.f32");
    write(&six, &sig, 8.0, &SIX, None);
    let mut lib = String::new();
    analyze_pq_file(&six, &o, |item| {
        lib.push_str(&item.to_json());
        lib.push('\n');
    })
    .unwrap();
    assert_eq!(json, lib);
    let items: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ev = events(&items);
    assert_eq!(ev.len(), 1, "{json}");
    assert_eq!(ev[0]["phases"], serde_json::json!([2]));
    assert!(aggregates(&items).len() >= 2);

    let text = cli_pq(&path, &args);
    assert!(
        text.contains("Vmin (V)") && text.contains("THD V (%)"),
        "{text}"
    );
    assert!(text.contains("dip") && text.contains("L2"), "{text}");
    assert!(text.contains("3s intervals and 1 events"), "{text}");

    // the default interval is 10 min: none in 8 s, the event still reported
    let json = cli_pq(
        &path,
        &[
            "--json",
            "--rate",
            "8000",
            "--channels",
            "v_l1,v_l2,v_l3,i_l1,i_l2,i_l3",
        ],
    );
    assert_eq!(json.lines().count(), 1, "{json}");

    for bad in [
        vec!["--interval", "5s"],
        vec!["--udin", "20"],
        vec!["--csv"],
        vec!["--channels", "v_l1,v_l2"],
    ] {
        let mut all = vec!["analyze", path.to_str().unwrap(), "--pq", "--rate", "8000"];
        all.extend_from_slice(&bad);
        let o = cli_support::cli(&all);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{bad:?}: {}",
            cli_support::stderr(&o)
        );
    }
    // --interval belongs to --pq
    let o = cli_support::cli(&[
        "analyze",
        path.to_str().unwrap(),
        "--rate",
        "8000",
        "--interval",
        "3s",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

/// An RGB image as decoded from a PNG.
struct Image {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Image {
    fn read(path: &Path) -> Image {
        let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buf.truncate(info.buffer_size());
        Image {
            width: info.width as usize,
            height: info.height as usize,
            rgb: buf,
        }
    }

    fn is(&self, x: usize, y: usize, c: [u8; 3]) -> bool {
        let k = 3 * (y * self.width + x);
        self.rgb[k..k + 3] == c
    }

    /// The columns with at least one pixel of colour `c` in rows `rows`, and how many per column.
    fn columns(&self, c: [u8; 3], rows: std::ops::Range<usize>) -> Vec<(usize, usize)> {
        (0..self.width)
            .filter_map(|x| {
                let n = rows.clone().filter(|y| self.is(x, *y, c)).count();
                (n > 0).then_some((x, n))
            })
            .collect()
    }
}

/// Contiguous runs of columns: (first, last, tallest count).
fn runs(cols: &[(usize, usize)]) -> Vec<(usize, usize, usize)> {
    let mut out: Vec<(usize, usize, usize)> = Vec::new();
    for &(x, n) in cols {
        match out.last_mut() {
            Some(r) if r.1 + 1 == x => {
                r.1 = x;
                r.2 = r.2.max(n);
            }
            _ => out.push((x, x, n)),
        }
    }
    out
}

const RED: [u8; 3] = [200, 40, 40];
const GREEN: [u8; 3] = [30, 120, 30];
const BLUE: [u8; 3] = [40, 70, 200];
const BAND: [u8; 3] = [255, 215, 160];

#[test]
fn the_pq_plot_shows_urms_half_with_the_events_and_the_harmonic_bars() {
    let d = dir();
    let path = file(&d, "events.wav");
    let mut sig = Signal::new(RATE, 50.0, 230.0);
    let comp = |order: f64, rel: f64| pq_support::Comp {
        order,
        rel,
        phase_deg: 0.0,
    };
    sig.v_comps = vec![comp(5.0, 0.05), comp(3.0, 0.02)];
    let step = |at_s: f64, phases: [bool; 3], factor: f64| Step {
        at_s,
        phases,
        factor,
    };
    // a dip on L1 at 2.5 s for 200 ms, a swell on L3 at 4 s for 100 ms; 6 s in all (the
    // events after the first seconds, in which the nominal values are decided)
    sig.steps = vec![
        step(2.5, [true, false, false], 0.6),
        step(2.7, [true, false, false], 1.0),
        step(4.0, [false, false, true], 1.15),
        step(4.1, [false, false, true], 1.0),
    ];
    let span_s = 6.0;
    write(&path, &sig, span_s, &SIX, Some(START_US));
    let png_path = file(&d, "pq.png");
    let json = cli_pq(
        &path,
        &[
            "--json",
            "--interval",
            "3s",
            "--plot",
            png_path.to_str().unwrap(),
        ],
    );
    // --plot changes nothing on stdout
    assert_eq!(json, cli_pq(&path, &["--json", "--interval", "3s"]));
    let items: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ev = events(&items);
    assert_eq!(ev.len(), 2, "{json}");

    let img = Image::read(&png_path);
    // the top panel's plotting area (below its title and legend), and the bottom panel
    let (top, bottom) = (40..img.height / 2, img.height / 2..img.height);
    // Urms(½): the three phases (L3 drawn last, over the others where they are equal; L1 alone
    // in its dip), together over the whole time axis, which they give: the first bucket is
    // centred just after 0, the last just before 6 s
    let mut line: Vec<(usize, usize)> = [RED, GREEN, BLUE]
        .iter()
        .flat_map(|c| img.columns(*c, top.clone()))
        .collect();
    line.sort();
    let (x0, x1) = (line[0].0, line.last().unwrap().0);
    assert!(x1 - x0 > img.width * 3 / 4, "{line:?}");
    let red = runs(&img.columns(RED, top.clone()));
    assert!(!red.is_empty() && !img.columns(BLUE, top.clone()).is_empty());
    // L1 is visible where it is alone: in its dip
    let dip_s = (red[0].0 as f64 - x0 as f64) / ((x1 - x0) as f64 / span_s);
    assert!((dip_s - 2.5).abs() < 0.05, "L1 departs at {dip_s} s");
    // every event shaded from its start for its duration, in time order, nothing else shaded
    let bands = runs(&img.columns(BAND, top.clone()));
    assert_eq!(bands.len(), 2, "{bands:?}");
    let px_per_s = (x1 - x0) as f64 / span_s;
    for (b, e) in bands.iter().zip(&ev) {
        let start = e["start"].as_f64().unwrap() - START_S;
        let duration = e["duration"].as_f64().unwrap();
        let at = (b.0 as f64 - x0 as f64) / px_per_s;
        let len = (b.1 + 1 - b.0) as f64 / px_per_s;
        assert!(
            (at - start).abs() < 0.05,
            "band at {at} s, event at {start} s"
        );
        assert!(
            (len - duration).abs() < 0.05,
            "band of {len} s, event of {duration} s"
        );
    }
    assert!(
        bands.iter().all(|b| b.2 > img.height / 4),
        "full height: {bands:?}"
    );
    // no shading in the harmonic chart
    assert!(img.columns(BAND, bottom.clone()).is_empty());
    // the harmonic bars of each phase, below the panel's title and legend: the two tallest are
    // H3 (2 %) then H5 (5 %)
    let plot_rows = img.height / 2 + 40..img.height;
    for c in [RED, GREEN, BLUE] {
        let mut bars = runs(&img.columns(c, plot_rows.clone()));
        bars.sort_by_key(|b| std::cmp::Reverse(b.2));
        let (h5, h3) = (bars[0], bars[1]);
        assert!(h3.0 < h5.0, "H3 left of H5: {bars:?}");
        let ratio = h5.2 as f64 / h3.2 as f64;
        assert!((ratio - 2.5).abs() < 0.1, "H5/H3 = {ratio}: {bars:?}");
        // the others are small (L1's dip spreads a little into the orders near H1 of the
        // windows it falls in: H2 ≈ 0.5 %)
        let third = bars.get(2).map_or(0, |b| b.2);
        assert!(third * 3 < h3.2, "the other orders are small: {bars:?}");
    }

    // without events: no shading
    let clean = file(&d, "clean.wav");
    sig.steps.clear();
    write(&clean, &sig, 4.0, &SIX, Some(START_US));
    cli_pq(&clean, &["--plot", png_path.to_str().unwrap()]);
    let img = Image::read(&png_path);
    assert!(img.columns(BAND, 0..img.height).is_empty());
    assert!(!img.columns(RED, 0..img.height / 2).is_empty());
}
