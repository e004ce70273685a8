//! Issue 13 item 3: the simulator's grid misbehaves on schedule (a dip seen in the sample stream of
//! L1 only, at the right time), and a 60 Hz grid with per-phase voltages is measured end to end.

use crate::sim_support::*;

/// Mean square of channel `ch` of 6-channel `values` over frames `[from, from + len)`.
fn mean_square(values: &[f32], ch: usize, from: usize, len: usize) -> f64 {
    (from..from + len)
        .map(|k| f64::from(values[6 * k + ch]).powi(2))
        .sum::<f64>()
        / len as f64
}

#[test]
fn a_dip_on_l1_shows_in_the_sample_stream_of_l1_only_at_its_time() {
    const RATE: usize = 8000;
    const CYCLE: usize = RATE / 50;
    let sim = Sim::start(&["--dip", "1s:200ms:0.5:1"]);
    let seen = sim.listening_unix_s;
    let mut c = Client::connect(sim.addr);
    let v = c.cmd(json!({"cmd":"sample","payload":{"type":"TCP","rate":RATE}}));
    assert_ok(&v);
    let start_ts: f64 = v["startTs"].as_str().unwrap().parse().unwrap();
    assert!(
        start_ts < seen + 0.8,
        "sampling started {} s after the listening line: too late to see the dip at 1 s",
        start_ts - seen
    );
    // Until 1.6 s after the listening line: the dip (1.0-1.2 s) and 0.4 s after it.
    let frames = ((seen + 1.6 - start_ts) * RATE as f64) as usize;
    let (values, _) = c.frames(frames, 6);
    let n = values.len() / 6;

    // One-cycle mean squares, centred on each frame; half way between 230² and 115² marks the edges.
    let half = CYCLE / 2;
    let ms: Vec<f64> = (half..n - half)
        .map(|k| mean_square(&values, 0, k - half, CYCLE))
        .collect();
    let mid = (230.0f64.powi(2) + 115.0f64.powi(2)) / 2.0;
    let first = ms.iter().position(|m| *m < mid).expect("no dip in L1") + half;
    let last = ms.iter().rposition(|m| *m < mid).expect("no dip in L1") + half;
    let dip_start = start_ts + first as f64 / RATE as f64;
    let dip_s = (last + 1 - first) as f64 / RATE as f64;
    let period = 0.02;
    eprintln!(
        "dip: starts {:.4} s after the listening line was read, lasts {dip_s:.4} s",
        dip_start - seen
    );
    // The schedule's zero is at or just before `seen`; startTs has 1 ms steps.
    assert!(
        (dip_start - (seen + 1.0)).abs() <= period + 0.001,
        "dip starts {:.4} s after the listening line was read, want 1 s ± 1 cycle",
        dip_start - seen
    );
    assert!(
        (dip_s - 0.2).abs() <= period,
        "dip lasts {dip_s:.4} s, want 0.2 s ± 1 cycle"
    );
    // Inside: half the voltage; around it and on L2/L3 everywhere: the set 230 V.
    for k in (first + CYCLE..last - 2 * CYCLE).step_by(CYCLE) {
        let rms = mean_square(&values, 0, k, CYCLE).sqrt();
        assert!(rel(rms, 115.0) < 0.002, "L1 in the dip at {k}: {rms} V");
    }
    for k in (0..n - CYCLE).step_by(CYCLE / 4) {
        let outside = k + CYCLE + 16 < first || k > last + 16;
        for ch in [2, 4] {
            let rms = mean_square(&values, ch, k, CYCLE).sqrt();
            assert!(rel(rms, 230.0) < 0.002, "channel {ch} at {k}: {rms} V");
        }
        if outside {
            let rms = mean_square(&values, 0, k, CYCLE).sqrt();
            assert!(
                rel(rms, 230.0) < 0.002,
                "L1 outside the dip at {k}: {rms} V"
            );
        }
    }
    // Currents do not follow the voltage.
    let i1 = mean_square(&values, 1, first + CYCLE, CYCLE).sqrt();
    assert!(rel(i1, 5000.0) < 0.002, "L1 current in the dip: {i1} mA");
}

#[test]
fn a_60_hz_grid_with_per_phase_voltages_is_measured_end_to_end() {
    let sim = Sim::start(&["--frequency", "60", "--voltage", "120,121,122.5"]);
    let mut c = Client::connect(sim.addr);
    let get = |c: &mut Client, cmd: &str| {
        eventually(cmd, || {
            let v = c.cmd(json!({ "cmd": cmd }));
            (v["error"] == false && !v.to_string().contains("null")).then_some(v)
        })
    };
    get(&mut c, "getVoltage");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let v = triple(&get(&mut c, "getVoltage"), "voltage");
    for (got, want) in v.iter().zip([120.0, 121.0, 122.5]) {
        assert!(rel(*got, want) < 0.0005, "voltage {v:?}");
    }
    let f = triple(&get(&mut c, "getPeriod"), "period");
    assert!(f.iter().all(|f| rel(*f, 60.0) < 0.0005), "frequency {f:?}");
    let info = c.cmd(json!({"cmd":"info"}));
    assert_eq!(info["state"], "idle", "{info}");
    assert_eq!(info["sampling_rate"], 32000, "{info}");
    // The waveform: 60 positive-going zero crossings a second on L1, L2 lagging by 120°.
    let v = c.cmd(json!({"cmd":"sample","payload":{"type":"TCP","rate":8000}}));
    assert_ok(&v);
    let (values, _) = c.frames(8000, 6);
    let ups = |ch: usize| -> Vec<usize> {
        (1..8000)
            .filter(|&k| values[6 * (k - 1) + ch] < 0.0 && values[6 * k + ch] >= 0.0)
            .collect()
    };
    let (u1, u2) = (ups(0), ups(2));
    assert!((59..=61).contains(&u1.len()), "{} crossings", u1.len());
    let per_cycle = 8000.0 / 60.0;
    let span = (u1[u1.len() - 1] - u1[0]) as f64 / (u1.len() - 1) as f64;
    assert!(rel(span, per_cycle) < 0.001, "period {span} samples");
    let lag = u2.iter().find(|&&k| k > u1[0]).unwrap() - u1[0];
    assert!(
        (lag as f64 - per_cycle / 3.0).abs() <= 1.0,
        "L2 lags by {lag} samples, want 1/3 cycle"
    );
}
