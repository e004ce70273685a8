//! RAM footprint of the engine with default capacities (PROTOCOL goal: ≤ 64 KiB without the sample
//! ring and without power quality; power quality: ≤ 48 KiB for three phases, issue 13). Prints the
//! breakdown (`cargo test --test device_footprint -- --nocapture`) and checks the bounds against a
//! fully loaded engine: every client connected with full queues.

mod device_support;

use device_support::*;
use smartmeter::calibration::FrontEnd;
use smartmeter::device::testing::{
    LOGBOOK_MAX_TEXT, MAX_DEFERRED_BYTES, MAX_LINE, PQ_EVENT_STORE_BYTES, SESSION_BYTES,
};
use smartmeter::device::{ConnKind, Device, DeviceOptions};

#[test]
fn footprint_with_default_capacities() {
    let o = DeviceOptions::default();
    let device = core::mem::size_of::<Device>();
    let per_conn =
        o.out_queue_bytes + o.text_slack_bytes + MAX_LINE + 1 + MAX_DEFERRED_BYTES + SESSION_BYTES;
    let logbook = o.logbook_rows * (LOGBOOK_MAX_TEXT + 48);
    let total = device + o.max_clients * per_conn + logbook;
    eprintln!("size_of::<Device>()          {device:>7} B");
    eprintln!(
        "per connection (worst case)  {per_conn:>7} B  x {}",
        o.max_clients
    );
    eprintln!(
        "logbook ({} rows)            {logbook:>7} B",
        o.logbook_rows
    );
    eprintln!(
        "total without sample ring    {total:>7} B ({:.1} KiB)",
        total as f64 / 1024.0
    );
    eprintln!("sample ring (excluded)       {:>7} B", o.sample_ring_bytes);
    assert!(total <= 64 * 1024, "{total}");

    // A loaded engine: every client connected, nobody reading, log lines flooding.
    let mut b = Bench::new();
    let conns: Vec<_> = (0..o.max_clients)
        .map(|k| {
            b.dev.handle_connected(
                b.now,
                ConnKind::Command {
                    peer: peer(k as u16),
                },
            )
        })
        .collect();
    for _ in 0..200 {
        for c in &conns {
            b.feed(*c, b"{\"cmd\":\"junk\"}\n{\"cmd\":\"info\"}\n");
        }
        b.run(10);
    }
    let heap = b.dev.heap_bytes() - PQ_EVENT_STORE_BYTES;
    eprintln!("measured heap, loaded idle   {heap:>7} B  (without the PQ event store)");
    assert!(device + heap <= 64 * 1024 + 8 * 1024, "{}", device + heap);
}

/// Power quality (docs/protocol.md §11) runs beside the classic readings: its pipeline (boxed state,
/// estimator and flickermeter included, plus what it allocates once when built) and the store of the
/// last 64 events. Measured on the integer path the firmware uses, at 8 and 32 kHz.
///
/// The goal (≤ 48 KiB) holds at both rates: below 24 kHz the pipeline's lattice interpolates with a
/// 32-tap sinc table it builds at construction, 33 phases (4.2 KB) interpolated linearly (it had 257
/// phases, 32.9 KB, which put 8 kHz at 72.9 KiB).
#[test]
fn power_quality_state_with_default_capacities() {
    for (rate, bound_kib) in [(8_000, 48), (32_000, 48)] {
        let mut b = Bench::at_rate(rate);
        b.codes = Some(FrontEnd {
            volts_per_code: 400.0 / 8_388_608.0,
            amps_per_code: 10.0 / 8_388_608.0,
        });
        assert_eq!(b.dev.pq_bytes(), 0, "built with the first block");
        b.run(1_500);
        let pipeline = b.dev.pq_bytes();
        let total = pipeline + PQ_EVENT_STORE_BYTES;
        eprintln!("PQ pipeline at {rate:>5} Hz     {pipeline:>7} B");
        eprintln!("PQ event store (64 events)   {PQ_EVENT_STORE_BYTES:>7} B");
        eprintln!(
            "PQ total at {rate:>5} Hz        {total:>7} B ({:.1} KiB)",
            total as f64 / 1024.0
        );
        assert!(total <= bound_kib * 1024, "{total}");
        // nothing more after the start: another minute of signal allocates nothing in the pipeline
        b.run(60_000);
        assert_eq!(b.dev.pq_bytes(), pipeline);
    }
}
