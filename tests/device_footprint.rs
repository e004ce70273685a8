//! RAM footprint of the engine with default capacities (PROTOCOL goal: ≤ 64 KiB without the sample
//! ring). Prints the breakdown (`cargo test --test device_footprint -- --nocapture`) and checks the
//! bound against a fully loaded engine: every client connected with full queues.

mod device_support;

use device_support::*;
use smartmeter::device::testing::{LOGBOOK_MAX_TEXT, MAX_DEFERRED_BYTES, MAX_LINE, SESSION_BYTES};
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
    let heap = b.dev.heap_bytes();
    eprintln!("measured heap, loaded idle   {heap:>7} B");
    assert!(device + heap <= 64 * 1024 + 8 * 1024, "{}", device + heap);
}
