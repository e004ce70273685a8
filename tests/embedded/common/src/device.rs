//! The sans-IO engine itself on the target: connect, the unprompted `info`, commands answered with
//! the exact bytes of the host transcript tests, and measurements from synthetic samples.

use alloc::string::String;
use alloc::vec;

use smartmeter::device::{ConnKind, Device, DeviceOptions, Instant, Restored, SampleBlock};
use smartmeter::dsp::{Grid, GridConfig};

use crate::{Platform, Runner};

/// 03/02/2021 10:39:35 UTC, the seed README's session.
const T0_S: u64 = 1_614_681_575;

fn take(dev: &mut Device, conn: smartmeter::device::ConnId) -> String {
    let mut out = vec![0u8; 8192];
    let mut text = String::new();
    loop {
        let n = dev.poll_output(conn, &mut out);
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(out.get(..n).unwrap_or_default()));
    }
    text
}

pub fn run<P: Platform>(r: &mut Runner<'_, P>) {
    r.group("device");
    let mut now = Instant::from_secs(T0_S);
    let mut dev = Device::new(DeviceOptions::default(), Restored::default(), now);
    let conn = dev.handle_connected(now, ConnKind::Serial);
    let info = take(&mut dev, conn);
    r.check(
        "info_on_connect",
        info.starts_with("Info:{\"cmd\":\"info\",\"type\":\"smartmeter\",\"version\":\"2.2\"")
            && info.ends_with(
                "\"ssids\":\"[energywifi]\",\"ssid\":\"-\",\"rssi\":0,\"bssid\":\"-\"}\r\n",
            ),
        format_args!("{info:?}"),
    );
    dev.handle_input(conn, now, b"  {\"cmd\":\"log\",\"level\":\"error\"}  \r\n");
    r.eq(
        "log_level_reply",
        take(&mut dev, conn).as_str(),
        "Info:{\"error\":false,\"cmd\":\"log\",\"msg\":\"Log Level set to: error\"}\r\n",
    );
    dev.handle_input(conn, now, b"?\n");
    r.eq(
        "setup_done",
        take(&mut dev, conn).as_str(),
        "Info:Setup done\r\n",
    );
    dev.handle_input(conn, now, b"{\"cmd\":\"fly\"}\n");
    r.eq(
        "unknown_command",
        take(&mut dev, conn).as_str(),
        "Info:{\"error\":true,\"cmd\":\"fly\",\"msg\":\"unknown command\"}\r\n",
    );
    dev.handle_input(conn, now, b"{\"cmd\":\"getVoltage\"}\n");
    r.eq(
        "no_signal_is_null",
        take(&mut dev, conn).as_str(),
        "Info:{\"error\":false,\"cmd\":\"getVoltage\",\"voltage\":[null,null,null],\"unit\":\"V\"}\r\n",
    );
    // One second of a 230 V grid through the engine, 100 ms blocks.
    let mut grid = Grid::new(GridConfig::default());
    let mut block = vec![0.0f32; 6 * 800];
    for _ in 0..10 {
        grid.fill(&mut block);
        dev.handle_samples(
            now,
            &SampleBlock {
                rate_hz: 8000,
                samples: &block,
                start: now,
            },
        );
        now = Instant::from_micros(now.as_micros() + 100_000);
        dev.handle_timeout(now);
    }
    let _ = take(&mut dev, conn);
    dev.handle_input(conn, now, b"{\"cmd\":\"getVoltage\"}\n");
    let reply = take(&mut dev, conn);
    r.check(
        "voltage_from_samples",
        reply.starts_with("Info:{\"error\":false,\"cmd\":\"getVoltage\",\"voltage\":[230.0")
            || reply
                .starts_with("Info:{\"error\":false,\"cmd\":\"getVoltage\",\"voltage\":[229.99"),
        format_args!("{reply:?}"),
    );
    while dev.poll_event().is_some() {}
    r.check(
        "events_drain",
        dev.poll_event().is_none(),
        format_args!("endless events"),
    );
}
