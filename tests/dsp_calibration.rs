//! Calibration applied in the pipeline, validation texts, serde, reference-load helper; the
//! fixed-point kernel against the float one; energy snapshot/restore.
mod dsp_support;

use dsp_support::*;
use smartmeter::calibration::{Calibration, CalibrationError, FrontEnd, PhaseCalibration};
use smartmeter::dsp::energy::{EnergyMeter, EnergySnapshot};
use smartmeter::dsp::fixed::{FixedEstimator, to_codes};
use smartmeter::dsp::synth::Grid;
use smartmeter::dsp::{ConfigError, Estimator, EstimatorConfig, Window};

fn windows_with(cal: Calibration, cfg: &smartmeter::dsp::GridConfig) -> Vec<Window> {
    let mut est = Estimator::<f32>::new(EstimatorConfig::new(cfg.rate_hz, 50)).unwrap();
    est.set_calibration(cal);
    let mut g = Grid::new(cfg.clone());
    let mut buf = vec![0.0f32; 6 * cfg.rate_hz as usize];
    g.fill(&mut buf);
    let mut out = Vec::new();
    est.feed(&buf, |w| out.push(*w));
    out
}

#[test]
fn gains_scale_v_i_and_powers_by_gv_gi() {
    let cfg = grid(8000, 50.0, 230.0, 5.0, 60.0);
    let base = *windows_with(Calibration::default(), &cfg).last().unwrap();
    let cal = Calibration::from_factors([1.1, 0.9, 1.0, 1.0, 0.5, 2.0]).unwrap();
    let w = *windows_with(cal, &cfg).last().unwrap();
    let close = |a: f32, b: f32| ((a - b) / b).abs() < 1e-6;
    assert!(close(w.phases[0].vrms_v, base.phases[0].vrms_v * 1.1));
    assert!(close(w.phases[0].irms_a, base.phases[0].irms_a * 0.9));
    assert!(close(
        w.phases[0].active_power_w,
        base.phases[0].active_power_w * 0.99
    ));
    assert!(close(
        w.phases[0].reactive_power_var,
        base.phases[0].reactive_power_var * 0.99
    ));
    assert!(close(
        w.phases[0].apparent_power_va,
        base.phases[0].apparent_power_va * 0.99
    ));
    assert!(close(
        w.phases[2].active_power_w,
        base.phases[2].active_power_w
    ));
    assert_eq!(
        w.phases[0].phase_deg.map(|d| (d * 1e3).round()),
        base.phases[0].phase_deg.map(|d| (d * 1e3).round())
    );
    let mut e = EnergyMeter::new();
    e.accumulate(&w);
    let mut e0 = EnergyMeter::new();
    e0.accumulate(&base);
    assert!((e.net_wh()[0] / e0.net_wh()[0] - 0.99).abs() < 1e-6);
}

#[test]
fn factor_errors_use_the_protocol_text() {
    let err = Calibration::from_factors([1.0, 1.0, 1.0, 0.4, 1.0, 1.0]).unwrap_err();
    assert_eq!(
        err,
        CalibrationError::Factor {
            index: 3,
            value: 0.4
        }
    );
    assert_eq!(
        err.to_string(),
        "Calibration parameter cal[3]: 0.4 not allowed [0.5-2.0]"
    );
    assert!(Calibration::from_factors([1.0, 1.0, 1.0, 1.0, 1.0, f32::NAN]).is_err());
    assert!(Calibration::from_factors([0.5, 2.0, 1.0, 1.0, 1.0, 1.0]).is_ok());
    let mut cal = Calibration::default();
    assert!(cal.set_factors([3.0; 6]).is_err());
    assert_eq!(cal.factors(), [1.0; 6], "a rejected update changes nothing");
}

#[test]
fn serde_round_trip_and_validation() {
    let mut cal = Calibration::from_factors([1.0, 1.02, 0.99, 1.0, 1.0, 1.5]).unwrap();
    cal.set_phase_corrections(1, 0.5, -0.01, 120.0).unwrap();
    let json = serde_json::to_string(&cal).unwrap();
    let back: Calibration = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cal);
    let bad = json.replace("1.5", "2.5");
    assert!(serde_json::from_str::<Calibration>(&bad).is_err());
}

#[test]
fn front_end_from_hardware() {
    // 1000:1 divider, 20 A/V CT+burden, ±1 V full scale, 24-bit
    let fe = FrontEnd::from_hardware(1000.0, 20.0, 1.0, 24).unwrap();
    assert!((fe.volts(8_388_607) - 1000.0).abs() < 1e-3);
    assert!((fe.amps(-8_388_608) + 20.0).abs() < 1e-6);
    assert_eq!(
        FrontEnd::from_hardware(0.0, 20.0, 1.0, 24)
            .unwrap_err()
            .to_string(),
        "Invalid divider_ratio: 0 (expected a finite value > 0)"
    );
}

#[test]
fn gains_derived_from_a_reference_load() {
    // the meter reads 2 % low on V1 and 3 % high on I2 against a known 230 V / 5 A load
    let cal = Calibration::default();
    let new = cal
        .derive_from_reference(
            [230.0; 3],
            [5.0; 3],
            [225.4, 230.0, 230.0],
            [5.0, 5.15, 5.0],
        )
        .unwrap();
    let f = new.factors();
    assert!((f[0] - 230.0 / 225.4).abs() < 1e-6);
    assert!((f[3] - 5.0 / 5.15).abs() < 1e-6);
    let err = cal
        .derive_from_reference([230.0; 3], [5.0; 3], [0.0, 230.0, 230.0], [5.0; 3])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid measured_v: 0 (expected a finite value > 0)"
    );
}

#[test]
fn phase_delay_is_compensated() {
    // the current channel lags by 200 µs more than the load does (3.6° at 50 Hz)
    let delay_deg = 0.0002 * 50.0 * 360.0;
    let cfg = grid(8000, 50.0, 230.0, 5.0, 30.0 + delay_deg);
    let mut cal = Calibration::default();
    for p in 0..3 {
        cal.set_phase_corrections(p, 0.0, 0.0, 200.0).unwrap();
    }
    let w = *windows_with(cal, &cfg).last().unwrap();
    let m = w.phases[0];
    assert!(
        (f64::from(m.phase_deg.unwrap()) - 30.0).abs() < 0.01,
        "{:?}",
        m.phase_deg
    );
    let p = 230.0 * 5.0 * 30f64.to_radians().cos();
    assert!(
        (f64::from(m.active_power_w) - p).abs() / 1150.0 < 2e-4,
        "{}",
        m.active_power_w
    );
}

#[test]
fn invalid_estimator_config_names_the_field() {
    let mut c = EstimatorConfig::new(8000, 50);
    c.nominal_hz = 55;
    assert_eq!(
        Estimator::<f32>::new(c).unwrap_err(),
        ConfigError::NominalHz(55)
    );
    let c = EstimatorConfig::new(500, 50);
    assert_eq!(
        Estimator::<f32>::new(c).unwrap_err().to_string(),
        "Invalid rate_hz: 500 (expected 1000..=32000)"
    );
    let mut c = EstimatorConfig::new(8000, 60);
    assert_eq!(c.cycles_per_window, 12);
    c.cycles_per_window = 0;
    assert!(matches!(
        Estimator::<f32>::new(c),
        Err(ConfigError::CyclesPerWindow(0))
    ));
}

#[test]
fn fixed_point_matches_float_within_0_01_percent() {
    for (rate, f, angle) in [
        (32000, 49.7, 60.0),
        (8000, 50.2, -36.87),
        (4000, 61.0, 10.0),
    ] {
        let mut cfg = grid(rate, f, 230.0, 5.0, angle);
        cfg.current_harmonics = harmonics(&[(3, 0.2, 0.0)]);
        let mut g = Grid::new(cfg);
        let mut buf = vec![0.0f32; 6 * rate as usize];
        g.fill(&mut buf);
        // 24-bit codes over ±400 V / ±10 A
        let vpc = 400.0 / 8_388_608.0;
        let apc = 10.0 / 8_388_608.0;
        let mut codes = vec![0i32; buf.len()];
        to_codes(&buf, vpc, apc, &mut codes);
        let mut fl = Estimator::<f32>::new(EstimatorConfig::new(rate, 50)).unwrap();
        let mut fx = FixedEstimator::new(EstimatorConfig::new(rate, 50)).unwrap();
        fx.set_calibration(
            Calibration::default()
                .with_front_end(FrontEnd {
                    volts_per_code: vpc,
                    amps_per_code: apc,
                })
                .unwrap(),
        );
        let mut a = Vec::new();
        let mut b = Vec::new();
        fl.feed(&buf, |w| a.push(*w));
        fx.feed(&codes, |w| b.push(*w));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b).filter(|(x, _)| x.synchronised).skip(1) {
            for (m, n) in x.phases.iter().zip(&y.phases) {
                let s = f64::from(m.apparent_power_va);
                for (u, v, r) in [
                    (m.vrms_v, n.vrms_v, f64::from(m.vrms_v)),
                    (m.irms_a, n.irms_a, f64::from(m.irms_a)),
                    (m.active_power_w, n.active_power_w, s),
                    (m.reactive_power_var, n.reactive_power_var, s),
                ] {
                    let rel = (f64::from(u) - f64::from(v)).abs() / r;
                    assert!(rel <= 1e-4, "{rate} Hz: {u} vs {v} ({rel:e})");
                }
            }
            assert_eq!(
                x.frequency_hz.map(|f| (f * 1e3).round()),
                y.frequency_hz.map(|f| (f * 1e3).round())
            );
        }
    }
}

#[test]
fn energy_snapshot_round_trip_and_reset() {
    let mut m = EnergyMeter::new();
    m.accumulate_power([1000.0, -200.0, 0.5], [10.0, -10.0, 0.0], 7200.0);
    assert_eq!(m.net_wh(), [2000.0, -400.0, 1.0]);
    assert_eq!(m.import_wh(), [2000.0, 0.0, 1.0]);
    assert_eq!(m.export_wh(), [0.0, 400.0, 0.0]);
    let snap = m.snapshot();
    let json = serde_json::to_string(&snap).unwrap();
    let back: EnergySnapshot = serde_json::from_str(&json).unwrap();
    let mut r = EnergyMeter::new();
    r.restore(&back);
    assert_eq!(r.net_wh(), m.net_wh());
    assert_eq!(r.reactive_lead_varh(), [0.0, 20.0, 0.0]);
    r.reset_to([12.5, -3.0, 0.0]).unwrap();
    assert_eq!(r.net_wh(), [12.5, -3.0, 0.0]);
    assert_eq!(r.export_wh(), [0.0, 3.0, 0.0]);
    // garbage never poisons the registers
    r.accumulate_power([f64::NAN, f64::INFINITY, 1.0], [0.0; 3], 1.0);
    r.accumulate_power([1.0; 3], [0.0; 3], f64::NAN);
    assert!(r.net_wh().iter().all(|x| x.is_finite()));
}

#[test]
fn state_size_per_phase_is_small() {
    let per_phase = Estimator::<f32>::state_size_bytes() / 3;
    eprintln!(
        "estimator state: {} bytes total, {per_phase} per phase",
        Estimator::<f32>::state_size_bytes()
    );
    assert!(per_phase <= 4096);
    let _ = PhaseCalibration::default();
}
