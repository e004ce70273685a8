//! `Estimator::fork_with_cycles_per_window`: a one-cycle view of a running estimator is settled from
//! its first window (the derived `sample` streams rely on it), unlike a one-cycle estimator started cold.
use smartmeter::calibration::{Calibration, FrontEnd};
use smartmeter::dsp::synth::{Grid, GridConfig, PhaseSignal};
use smartmeter::dsp::{ConfigError, Estimator, EstimatorConfig, Window};

fn grid(rate_hz: u32, f: f64) -> Grid {
    let mut cfg = GridConfig {
        rate_hz,
        frequency_hz: f,
        ..GridConfig::default()
    };
    for p in &mut cfg.phases {
        *p = PhaseSignal {
            voltage_rms_v: 230.0,
            current_rms_a: 5.0,
            angle_deg: 30.0,
        };
    }
    Grid::new(cfg)
}

fn settled(w: &Window, g: &Grid) -> bool {
    let e = g.expected(0);
    w.phases.iter().all(|p| {
        let rel = |x: f32, y: f64| (f64::from(x) - y).abs() / y;
        rel(p.active_power_w, e.active_power_w) < 1e-4
            && rel(p.reactive_power_var, e.reactive_power_var) < 1e-4
            && rel(p.vrms_v, e.vrms_v) < 1e-4
            && rel(p.irms_a, e.irms_a) < 1e-4
    })
}

#[test]
fn a_fork_is_settled_from_its_first_window() {
    for rate in [8000u32, 32_000] {
        for f in [49.5, 50.0, 50.5] {
            for skip in [0usize, 37, 111] {
                let mut g = grid(rate, f);
                let mut main = Estimator::<f32>::new(EstimatorConfig::new(rate, 50)).unwrap();
                let mut buf = vec![0f32; 6 * (rate as usize + skip)];
                g.fill(&mut buf);
                main.feed(&buf, |_| {});
                let mut fast = main.fork_with_cycles_per_window(1).unwrap();
                let mut cold = {
                    let mut c = EstimatorConfig::new(rate, 50);
                    c.cycles_per_window = 1;
                    Estimator::<f32>::new(c).unwrap()
                };
                let mut buf = vec![0f32; 6 * rate as usize / 5];
                g.fill(&mut buf);
                let mut forked = Vec::new();
                fast.feed(&buf, |w| forked.push(*w));
                let mut fresh = Vec::new();
                cold.feed(&buf, |w| fresh.push(*w));
                let what = format!("{rate} Hz, {f} Hz grid, +{skip}");
                assert!(forked.len() >= 9, "{what}: {} windows", forked.len());
                for (k, w) in forked.iter().enumerate() {
                    assert!(settled(w, &g), "{what}: window {k}: {:?}", w.phases[0]);
                    if k > 0 {
                        assert_eq!(w.cycles, 1, "{what}: window {k}");
                    }
                }
                assert!(
                    !settled(&fresh[0], &g),
                    "{what}: a cold start is not settled"
                );
            }
        }
    }
}

#[test]
fn a_fork_of_the_integer_path_is_settled_too() {
    let fe = FrontEnd {
        volts_per_code: 400.0 / 8_388_608.0,
        amps_per_code: 10.0 / 8_388_608.0,
    };
    let mut g = grid(32_000, 50.0);
    let mut main = Estimator::<i32>::new(EstimatorConfig::new(32_000, 50)).unwrap();
    main.set_calibration(Calibration::default().with_front_end(fe).unwrap());
    let codes = |g: &mut Grid, n: usize| -> Vec<i32> {
        let mut v = vec![0f32; 6 * n];
        g.fill(&mut v);
        v.iter()
            .enumerate()
            .map(|(k, x)| {
                let per = if k % 2 == 0 {
                    fe.volts_per_code
                } else {
                    fe.amps_per_code
                };
                (f64::from(*x) / per).round() as i32
            })
            .collect()
    };
    main.feed(&codes(&mut g, 32_000), |_| {});
    let mut fast = main.fork_with_cycles_per_window(1).unwrap();
    let mut n = 0;
    fast.feed(&codes(&mut g, 6400), |w| {
        assert!(settled(w, &g), "window {n}: {:?}", w.phases[0]);
        n += 1;
    });
    assert!(n >= 9, "{n} windows");
}

#[test]
fn a_fork_validates_its_window_length() {
    let e = Estimator::<f32>::new(EstimatorConfig::new(8000, 50)).unwrap();
    assert_eq!(
        e.fork_with_cycles_per_window(0).unwrap_err(),
        ConfigError::CyclesPerWindow(0)
    );
}
