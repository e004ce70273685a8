//! Profiling aid: 20 s of 3-phase 32 kHz codes through `Pq<i32>`.
use smartmeter::calibration::{Calibration, FrontEnd};
use smartmeter::dsp::fixed::to_codes;
use smartmeter::dsp::pq::{Pq, PqConfig};
use smartmeter::dsp::synth::{Grid, GridConfig};
fn main() {
    let rate = 32000;
    let mut g = Grid::new(GridConfig {
        rate_hz: rate,
        ..GridConfig::default()
    });
    let mut buf = vec![0.0f32; 6 * rate as usize];
    g.fill(&mut buf);
    let vpc = 400.0 / 8_388_608.0;
    let apc = 10.0 / 8_388_608.0;
    let mut codes = vec![0i32; buf.len()];
    to_codes(&buf, vpc, apc, &mut codes);
    let mut pq = Pq::<i32>::new(PqConfig {
        nominal_voltage_v: Some(230.0),
        nominal_frequency_hz: Some(50),
        ..PqConfig::new(rate)
    })
    .unwrap();
    pq.set_calibration(
        Calibration::default()
            .with_front_end(FrontEnd {
                volts_per_code: vpc,
                amps_per_code: apc,
            })
            .unwrap(),
    );
    let t = std::time::Instant::now();
    for s in 0..400 {
        pq.feed(&codes, 1_700_000_000_000_000 + s * 1_000_000, &mut ());
    }
    eprintln!("{:?} per second of signal", t.elapsed() / 400);
}
