//! Issue 5 items 5–8: stream server, serial over a pty, mDNS, NTP.

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::sim_support::*;

#[test]
fn stream_server_gets_an_outgoing_command_connection_and_reconnects() {
    let sim = Sim::start(&["--reconnect-interval", "1"]);
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let (mut c, _) = sim.connect();
    let v = c.cmd(json!({"cmd":"streamServer","payload":{"server":format!("127.0.0.1:{port}")}}));
    assert_eq!(v["stream_server"], format!("127.0.0.1:{port}"));

    for round in 0..2 {
        let (sock, _) = server.accept().unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut out = Client::new(sock);
        // Treated exactly like a command connection: info first, then commands.
        let info = out.reply_for("info");
        assert_eq!(
            info["stream_server"],
            format!("127.0.0.1:{port}"),
            "round {round}"
        );
        let v = out.cmd(json!({"cmd":"getPeriod"}));
        assert_eq!(v["cmd"], "getPeriod");
        // Dropping it: the simulator connects again after the reconnect interval.
    }
    assert_ok(&c.cmd(json!({"cmd":"streamServer","payload":{"server":"-"}})));
}

/// A pty end with a read timeout (a reader thread feeding a channel).
struct PtyIo {
    file: std::fs::File,
    rx: mpsc::Receiver<Vec<u8>>,
    pending: Vec<u8>,
}

impl PtyIo {
    fn open(path: &std::path::Path) -> PtyIo {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let mut r = file.try_clone().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        PtyIo {
            file,
            rx,
            pending: Vec::new(),
        }
    }
}

impl Read for PtyIo {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() {
            match self.rx.recv_timeout(Duration::from_millis(200)) {
                Ok(b) => self.pending = b,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(std::io::ErrorKind::WouldBlock.into());
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

impl Write for PtyIo {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[test]
fn serial_pty_speaks_commands_and_frames_followed_by_crlf() {
    let sim = Sim::start(&["--serial"]);
    let path = sim.serial.clone().unwrap();
    let mut c = Client::new(PtyIo::open(&path));
    let v = c.cmd(json!({"cmd":"getVoltage"}));
    assert_eq!(v["cmd"], "getVoltage");
    let v =
        c.cmd(json!({"cmd":"sample","payload":{"type":"Serial","rate":1000,"measures":"v,i_L1"}}));
    assert_ok(&v);
    assert_eq!(v["conn_type"], "Serial");
    let chunk = v["chunksize"].as_u64().unwrap() as usize;
    assert!(
        chunk <= 128,
        "serial chunks are capped at 128 bytes: {chunk}"
    );
    // Read raw bytes and check that every frame is followed by \r\n.
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + SOON;
    let mut frames = 0;
    while frames < 20 && Instant::now() < deadline {
        if let Ok(n) = c.io.read(&mut buf) {
            bytes.extend_from_slice(&buf[..n]);
        }
        frames = 0;
        let mut at = 0;
        while let Some(p) = bytes[at..].windows(5).position(|w| w == b"Data:") {
            let s = at + p;
            if bytes.len() < s + 7 {
                break;
            }
            let len = u16::from_le_bytes([bytes[s + 5], bytes[s + 6]]) as usize;
            let end = s + 11 + len;
            if bytes.len() < end + 2 {
                break;
            }
            assert_eq!(&bytes[end..end + 2], b"\r\n", "frame not followed by CRLF");
            frames += 1;
            at = end + 2;
        }
    }
    assert!(frames >= 20, "only {frames} frames over serial");
    c.send_line(r#"{"cmd":"stop"}"#);
    c.demux = Demux::default();
    c.reply_for("stop");
}

#[test]
fn mdns_announces_name_local_and_the_elec_service() {
    use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent};
    let sim = Sim::start(&["--mdns", "--name", "mdnstest7"]);
    // Resolver restricted to loopback like the simulator: nothing leaves the machine.
    let resolver = ServiceDaemon::new().unwrap();
    resolver.disable_interface(IfKind::All).unwrap();
    resolver.enable_interface(IfKind::LoopbackV4).unwrap();
    let rx = resolver.browse("_elec._tcp.local.").unwrap();
    let deadline = Instant::now() + SOON;
    let mut found = None;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(ServiceEvent::ServiceResolved(info))
                if info.get_fullname().starts_with("mdnstest7.") =>
            {
                found = Some(info);
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let info = found.expect("_elec._tcp service of mdnstest7 not resolved over loopback multicast");
    assert_eq!(info.get_hostname(), "mdnstest7.local.");
    assert_eq!(info.get_port(), sim.addr.port());
    assert_eq!(info.get_property_val_str("type"), Some("smartmeter"));
    assert_eq!(
        info.get_property_val_str("stream"),
        Some(sim.stream_addr.port().to_string().as_str())
    );
    assert!(info.get_property_val_str("version").is_some());
    assert!(
        info.get_addresses()
            .iter()
            .any(|a| a.to_ip_addr() == sim.addr.ip()),
        "{:?}",
        info.get_addresses()
    );
    // A rename re-announces under the new name.
    let (mut c, _) = sim.connect();
    c.cmd(json!({"cmd":"mdns","payload":{"name":"mdnstest8"}}));
    let rx = resolver.browse("_elec._tcp.local.").unwrap();
    let renamed = eventually("renamed service", || {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(ServiceEvent::ServiceResolved(i)) if i.get_fullname().starts_with("mdnstest8.") => {
                Some(i)
            }
            _ => None,
        }
    });
    assert_eq!(renamed.get_hostname(), "mdnstest8.local.");
    let _ = resolver.shutdown();
}

/// A tiny SNTP responder whose clock runs `offset_s` ahead of the host; counts requests.
fn sntp_responder(offset_s: i64) -> (u16, mpsc::Receiver<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    // The thread ends after a minute of silence.
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                return;
            };
            if n < 48 {
                continue;
            }
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            let secs = (now.as_secs() as i64 + offset_s) as u64 + 2_208_988_800;
            let frac = ((now.subsec_nanos() as u64) << 32) / 1_000_000_000;
            let ts = (secs << 32) | frac;
            let mut r = [0u8; 48];
            r[0] = 0x24; // version 4, mode 4 (server)
            r[1] = 2; // stratum
            r[24..32].copy_from_slice(&buf[40..48]); // originate = client's transmit
            r[32..40].copy_from_slice(&ts.to_be_bytes());
            r[40..48].copy_from_slice(&ts.to_be_bytes());
            let _ = sock.send_to(&r, from);
            if tx.send(()).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

/// Parses `MM/DD/YYYY HH:MM:SS.mmm` into Unix seconds.
fn parse_long_time(s: &str) -> f64 {
    let (date, time) = s.split_once(' ').unwrap();
    let d: Vec<i64> = date.split('/').map(|x| x.parse().unwrap()).collect();
    let (m, day, y) = (d[0], d[1], d[2]);
    let t: Vec<f64> = time.split(':').map(|x| x.parse().unwrap()).collect();
    // Days from civil (Howard Hinnant).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days as f64 * 86_400.0 + t[0] * 3600.0 + t[1] * 60.0 + t[2]
}

fn host_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn ntp_syncs_against_a_local_sntp_responder() {
    let sim = Sim::start(&[]);
    let (port, hits) = sntp_responder(1000);
    let (mut c, _) = sim.connect();
    let server = format!("127.0.0.1:{port}");
    let v = c.cmd(json!({"cmd":"timeServer","payload":{"server":server}}));
    assert_eq!(v["msg"], format!("Set TimeServer address to: {server}"));
    let before = host_secs();
    let v = c.cmd(json!({"cmd":"ntp"}));
    let after = host_secs();
    assert_eq!(v["error"], false, "{v}");
    assert_eq!(v["msg"], "Time synced");
    assert!(hits.try_recv().is_ok(), "the responder was not asked");
    // The simulator's clock is now the responder's: host + 1000 s.
    let t = parse_long_time(v["current_time"].as_str().unwrap());
    assert!(
        t >= before + 999.0 && t <= after + 1001.0,
        "current_time {t} vs host {before}..{after}"
    );
    let info = c.cmd(json!({"cmd":"info"}));
    let t = parse_long_time(info["sys_time"].as_str().unwrap());
    assert!(t >= before + 999.0, "sys_time {t} not corrected");

    // ntpConf: a loopback responder easily meets 50 ms.
    let v = c.cmd(json!({"cmd":"sample","payload":{"type":"TCP","rate":100,"ntpConf":50}}));
    assert_ok(&v);
    assert!(v["ntpConfidence"].as_f64().unwrap() <= 50.0, "{v}");
    assert_ok(&c.cmd(json!({"cmd":"stop"})));

    // No responder: the sync fails with the documented text.
    let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    c.cmd(json!({"cmd":"timeServer","payload":{"server":format!("127.0.0.1:{dead_port}")}}));
    assert_err(&c.cmd(json!({"cmd":"ntp"})), "Error syncing time");
}
