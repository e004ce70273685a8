//! Ours vs the peer crate `metrology_insight` on the same signals (8 kHz, the peer's highest rate).
//! Our column is asserted against the issue's limits; the peer's numbers are recorded, not asserted.
//! Run with `--nocapture` to see the table.
mod dsp_support;

use dsp_support::peer::{PEER_WINDOW, Peer};
use dsp_support::*;
use smartmeter::dsp::synth::{Grid, GridConfig};

struct Row {
    v: f64,
    p: f64,
    q: f64,
    f_mhz: f64,
}

fn peer_errors(cfg: &GridConfig, seconds: f64) -> Row {
    let mut g = Grid::new(cfg.clone());
    let e = g.expected(0);
    let mut peer = Peer::new();
    let windows = (seconds * 8000.0) as usize / PEER_WINDOW;
    let mut buf = vec![0.0f32; 6 * PEER_WINDOW];
    let mut acc = [0.0f64; 4];
    let mut n = 0.0;
    for k in 0..windows {
        g.fill(&mut buf);
        peer.window(&buf);
        // the peer smooths with an EWMA (α = 0.02 per window): average its settled second half
        if k >= windows / 2 {
            let r = peer.read(0);
            acc[0] += r.vrms_v;
            acc[1] += r.p_w;
            acc[2] += r.q_var;
            acc[3] += r.freq_hz;
            n += 1.0;
        }
    }
    let s = e.apparent_power_va;
    Row {
        v: 100.0 * (acc[0] / n / e.vrms_v - 1.0),
        p: 100.0 * (acc[1] / n - e.active_power_w) / s,
        q: 100.0 * (acc[2] / n - e.reactive_power_var) / s,
        f_mhz: 1e3 * (acc[3] / n - cfg.frequency_hz),
    }
}

fn our_errors(cfg: &GridConfig, seconds: f64) -> Row {
    let windows = run(cfg, 50, seconds);
    let e = expected3(cfg);
    let w = compare(&windows, &e, cfg.frequency_hz, 2);
    assert!(
        w.v_rel <= ISSUE.rms_rel && w.p_rel_s <= ISSUE.p_rel_s && w.q_rel_s <= ISSUE.q_rel_s,
        "{w:?}"
    );
    assert!(w.freq_hz <= ISSUE.freq_hz, "{w:?}");
    Row {
        v: 100.0 * w.v_rel,
        p: 100.0 * w.p_rel_s,
        q: 100.0 * w.q_rel_s,
        f_mhz: 1e3 * w.freq_hz,
    }
}

#[test]
fn comparison_table_ours_vs_metrology_insight() {
    let mut cases: Vec<(&str, GridConfig)> = vec![
        ("50 Hz, PF 1", grid(8000, 50.0, 230.0, 5.0, 0.0)),
        ("49 Hz, PF 0.5 ind", grid(8000, 49.0, 230.0, 5.0, 60.0)),
        ("50.5 Hz, PF 0.8 cap", grid(8000, 50.5, 230.0, 5.0, -36.87)),
        ("45 Hz, PF 1", grid(8000, 45.0, 230.0, 5.0, 0.0)),
        ("51 Hz, 5 % In, PF 0.5", grid(8000, 51.0, 230.0, 0.25, 60.0)),
    ];
    let mut h = grid(8000, 50.0, 230.0, 5.0, 30.0);
    h.current_harmonics = harmonics(&[(3, 0.2, 0.0), (5, 0.1, 0.0), (7, 0.05, 0.0)]);
    h.voltage_harmonics = harmonics(&[(3, 0.05, 0.0), (5, 0.05, 0.0), (7, 0.05, 0.0)]);
    cases.push(("50 Hz, V 5 %/I 20 % harmonics, PF~0.87", h));
    let mut q = grid(8000, 50.2, 230.0, 5.0, 60.0);
    q.quantisation_bits = Some(16);
    q.noise_rel = 0.001;
    cases.push(("50.2 Hz, 16-bit, 0.1 % noise, PF 0.5", q));

    eprintln!(
        "\n| case | ours ΔV % | ours ΔP %S | ours ΔQ %S | ours Δf mHz | peer ΔV % | peer ΔP %S | peer ΔQ %S | peer Δf mHz |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|---|");
    for (name, cfg) in &cases {
        let o = our_errors(cfg, 1.2);
        let p = peer_errors(cfg, 20.0);
        eprintln!(
            "| {name} | {:.5} | {:.5} | {:.5} | {:.3} | {:+.3} | {:+.3} | {:+.3} | {:+.1} |",
            o.v, o.p, o.q, o.f_mhz, p.v, p.p, p.q, p.f_mhz
        );
    }
    eprintln!("(ours: worst |error| over windows; peer: signed error of its settled average)");
}
