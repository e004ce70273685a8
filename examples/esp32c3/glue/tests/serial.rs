//! The serial variant served by [`Link`] over in-memory byte pipes, against a real engine: what the
//! ESP32-C3 firmware does on its USB-Serial-JTAG port (issue item 18). Commands go in as bytes, the
//! `Info:` replies, log lines and `Data:` frames (each followed by `\r\n`, 128-byte chunks) come out.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::f32::consts::TAU;

use embassy_futures::select::{Either, select};
use embassy_futures::{block_on, yield_now};
use embedded_io_async::{ErrorType, Read, Write};
use smartmeter::device::{
    ConnId, ConnKind, Device, DeviceOptions, Action, Instant, PhysicalBlock, Restored,
};
use smartmeter_glue::{Ended, Host, Link, Logger};

/// One direction of a serial line: bytes written at one end, read at the other.
#[derive(Default)]
struct Pipe {
    bytes: RefCell<VecDeque<u8>>,
    flushes: Cell<u32>,
}

struct PipeRead<'a>(&'a Pipe);
struct PipeWrite<'a>(&'a Pipe);

impl ErrorType for PipeRead<'_> {
    type Error = Infallible;
}
impl ErrorType for PipeWrite<'_> {
    type Error = Infallible;
}

impl Read for PipeRead<'_> {
    /// Waits for at least one byte (a serial port never reports end of stream).
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        loop {
            {
                let mut q = self.0.bytes.borrow_mut();
                if !q.is_empty() {
                    let n = buf.len().min(q.len());
                    for (dst, src) in buf.iter_mut().zip(q.drain(..n)) {
                        *dst = src;
                    }
                    return Ok(n);
                }
            }
            yield_now().await;
        }
    }
}

impl Write for PipeWrite<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.0.bytes.borrow_mut().extend(buf);
        Ok(buf.len())
    }
    async fn flush(&mut self) -> Result<(), Infallible> {
        self.0.flushes.set(self.0.flushes.get() + 1);
        Ok(())
    }
}

const RATE_HZ: u32 = 8_000;
const T0_US: u64 = 1_700_000_000_000_000;

/// The binding around the engine: a clock that advances 1 ms per idle round, a 50 Hz grid that feeds
/// the engine as time passes, timeouts, and the events a firmware's pump would dispatch.
struct Bench {
    device: RefCell<Device>,
    now_us: Cell<u64>,
    fed: Cell<u64>,
    closes: RefCell<Vec<ConnId>>,
}

impl Bench {
    fn new(options: DeviceOptions) -> Self {
        let now = Instant::from_micros(T0_US);
        Bench {
            device: RefCell::new(Device::new(options, Restored::default(), now)),
            now_us: Cell::new(T0_US),
            fed: Cell::new(0),
            closes: RefCell::new(Vec::new()),
        }
    }

    fn now(&self) -> Instant {
        Instant::from_micros(self.now_us.get())
    }

    /// One millisecond of the grid (230 V, 5 A on each phase), timeouts and events.
    fn tick(&self) {
        self.now_us.set(self.now_us.get() + 1_000);
        let now = self.now();
        let due = (self.now_us.get() - T0_US) * u64::from(RATE_HZ) / 1_000_000;
        let first = self.fed.replace(due);
        let mut samples = Vec::new();
        for k in first..due {
            let t = k as f32 / RATE_HZ as f32;
            for phase in 0..3 {
                let angle = TAU * 50.0 * t - phase as f32 * TAU / 3.0;
                samples.push(325.3 * angle.sin());
                samples.push(7.07 * angle.sin());
            }
        }
        let mut d = self.device.borrow_mut();
        if !samples.is_empty() {
            let block = PhysicalBlock {
                rate_hz: RATE_HZ,
                samples: &samples,
                start: Instant::from_micros(T0_US + first * 1_000_000 / u64::from(RATE_HZ)),
            };
            d.handle_samples(now, &block);
        }
        if d.poll_timeout().is_some_and(|t| t <= now) {
            d.handle_timeout(now);
        }
        while let Some(ev) = d.poll_event() {
            if let Action::Close(c) = ev {
                self.closes.borrow_mut().push(c);
            }
        }
    }
}

impl Host for Bench {
    fn with_device<R>(&self, f: impl FnOnce(&mut Device, Instant) -> R) -> R {
        f(&mut self.device.borrow_mut(), self.now())
    }
    fn take_close(&self, conn: ConnId) -> bool {
        let mut c = self.closes.borrow_mut();
        let found = c.iter().position(|&x| x == conn);
        found.map(|k| c.swap_remove(k)).is_some()
    }
    async fn idle(&self) {
        self.tick();
        yield_now().await;
    }
}

/// What the host side reads from the port.
#[derive(Debug, PartialEq)]
enum Item {
    /// An `Info:` line, without its `\r\n`.
    Line(String),
    /// A `Data:` frame: packet number and payload (its trailing `\r\n` checked and removed).
    Frame(u32, Vec<u8>),
}

/// The host end of the port.
struct Terminal<'a> {
    from_device: &'a Pipe,
    to_device: &'a Pipe,
}

impl Terminal<'_> {
    fn send(&self, line: &str) {
        let mut q = self.to_device.bytes.borrow_mut();
        q.extend(line.as_bytes());
        q.push_back(b'\n');
    }

    /// The next complete item; panics on anything that is neither an `Info:` line nor a
    /// `Data:` frame followed by `\r\n`.
    async fn next(&self) -> Item {
        loop {
            if let Some(item) = self.parse() {
                return item;
            }
            yield_now().await;
        }
    }

    fn parse(&self) -> Option<Item> {
        let mut q = self.from_device.bytes.borrow_mut();
        let buf: Vec<u8> = q.iter().copied().collect();
        if buf.len() < 5 {
            return None;
        }
        match &buf[..5] {
            b"Info:" => {
                let end = buf.windows(2).position(|w| w == b"\r\n")?;
                let line = String::from_utf8(buf[..end].to_vec()).expect("utf-8 line");
                q.drain(..end + 2);
                Some(Item::Line(line))
            }
            b"Data:" => {
                if buf.len() < 11 {
                    return None;
                }
                let len = usize::from(u16::from_le_bytes([buf[5], buf[6]]));
                let pkt = u32::from_le_bytes([buf[7], buf[8], buf[9], buf[10]]);
                let total = 11 + len + 2;
                if buf.len() < total {
                    return None;
                }
                assert_eq!(
                    &buf[11 + len..total],
                    b"\r\n",
                    "serial frames end with CRLF"
                );
                let payload = buf[11..11 + len].to_vec();
                q.drain(..total);
                Some(Item::Frame(pkt, payload))
            }
            other => panic!("neither Info: nor Data: on the port: {other:?}"),
        }
    }

    /// The next `Info:` line that is not a log line (`Info:[`): a reply.
    async fn reply(&self) -> String {
        loop {
            match self.next().await {
                Item::Line(l) if !l.starts_with("Info:[") => return l,
                _ => {}
            }
        }
    }
}

/// Runs `script` against a serial port served by [`Link::serve_forever`] until the script ends.
fn with_port(bench: &Bench, script: impl AsyncFnOnce(&Terminal<'_>, &Cell<u32>)) -> u32 {
    let (to_device, from_device) = (Pipe::default(), Pipe::default());
    let term = Terminal {
        from_device: &from_device,
        to_device: &to_device,
    };
    let reopened = Cell::new(0u32);
    let (mut input, mut output) = ([0u8; 64], [0u8; 256]);
    let mut link = Link::new(
        PipeRead(&to_device),
        PipeWrite(&from_device),
        &mut input,
        &mut output,
    )
    .flush_when_idle();
    let served = link.serve_forever(bench, ConnKind::Serial, |why| {
        assert_eq!(
            why,
            Ended::ClosedByEngine,
            "a serial port is only closed by the engine"
        );
        reopened.set(reopened.get() + 1);
    });
    match block_on(select(served, script(&term, &reopened))) {
        Either::First(never) => match never {},
        Either::Second(()) => {}
    }
    from_device.flushes.get()
}

#[test]
fn a_command_over_serial_gets_its_info_reply_after_the_unprompted_info() {
    let bench = Bench::new(DeviceOptions::default());
    let flushes = with_port(&bench, async |term, _| {
        let info = term.reply().await;
        assert!(
            info.starts_with("Info:{\"cmd\":\"info\",\"type\":\"smartmeter\""),
            "{info}"
        );
        term.send("{\"cmd\":\"log\",\"level\":\"warning\"}");
        assert_eq!(
            term.reply().await,
            "Info:{\"error\":false,\"cmd\":\"log\",\"msg\":\"Log Level set to: warning\"}"
        );
        // A trailing `\r` is ignored, `?` answers exactly.
        term.send("?\r");
        assert_eq!(term.reply().await, "Info:Setup done");
    });
    // The port is flushed whenever its output runs dry (a USB transfer of 64·k bytes needs it).
    assert!(flushes >= 3, "{flushes} flushes");
    // The port's connection stays open for as long as the port is served.
    let kinds: Vec<ConnKind> = bench.device.borrow().connections().map(|c| c.1).collect();
    assert_eq!(kinds, [ConnKind::Serial]);
}

#[test]
fn serial_sampling_streams_128_byte_frames_each_followed_by_crlf() {
    let bench = Bench::new(DeviceOptions::default());
    with_port(&bench, async |term, _| {
        term.reply().await; // info
        term.send(
            r#"{"cmd":"sample","payload":{"type":"Serial","rate":8000,"measures":"v,i_L1"}}"#,
        );
        let reply = term.reply().await;
        assert!(
            reply.starts_with("Info:{\"error\":false,\"cmd\":\"sample\""),
            "{reply}"
        );
        assert!(reply.contains("\"chunksize\":128,"), "{reply}");
        assert!(reply.contains("\"conn_type\":\"Serial\""), "{reply}");
        let mut frames = Vec::new();
        while frames.len() < 20 {
            if let Item::Frame(pkt, payload) = term.next().await {
                frames.push((pkt, payload));
            }
        }
        for (k, (pkt, payload)) in frames.iter().enumerate() {
            assert_eq!(*pkt as usize, k, "packet numbers from 0, no gap");
            assert_eq!(payload.len(), 128);
        }
        // v, i of L1 as f32le: the voltage stays within the 325 V peak, the current within 7.1 A
        // (reported in mA).
        let values: Vec<f32> = frames
            .iter()
            .flat_map(|(_, p)| p.chunks_exact(4))
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let v_peak = values.iter().step_by(2).fold(0f32, |m, v| m.max(v.abs()));
        let i_peak = values
            .iter()
            .skip(1)
            .step_by(2)
            .fold(0f32, |m, v| m.max(v.abs()));
        assert!((300.0..330.0).contains(&v_peak), "{v_peak}");
        assert!((6_500.0..7_200.0).contains(&i_peak), "{i_peak}");
        term.send(r#"{"cmd":"stop"}"#);
        let stop = term.reply().await;
        assert!(
            stop.starts_with("Info:{\"error\":false,\"cmd\":\"stop\""),
            "{stop}"
        );
    });
}

#[test]
fn a_connection_the_engine_closes_is_reopened_with_a_fresh_info() {
    let options = DeviceOptions {
        token: Some("secret".into()),
        ..DeviceOptions::default()
    };
    let bench = Bench::new(options);
    with_port(&bench, async |term, reopened| {
        term.reply().await;
        for _ in 0..3 {
            term.send(r#"{"cmd":"auth","token":"wrong"}"#);
            let r = term.reply().await;
            assert!(r.contains("Invalid token"), "{r}");
        }
        // Three failures close the connection; the port stays: a new connection, a new info.
        let info = term.reply().await;
        assert!(info.starts_with("Info:{\"cmd\":\"info\""), "{info}");
        assert_eq!(reopened.get(), 1);
        term.send(r#"{"cmd":"auth","token":"secret"}"#);
        let r = term.reply().await;
        assert!(r.contains("\"msg\":\"Authenticated\""), "{r}");
    });
    // The closed connection was reported closed: only its successor is left.
    let conns: Vec<(ConnId, ConnKind)> = bench.device.borrow().connections().collect();
    assert_eq!(conns, [(ConnId(1), ConnKind::Serial)]);
}

#[test]
fn firmware_log_records_reach_the_port_as_protocol_log_lines() {
    static LOGGER: Logger<8> = Logger::new();
    log::set_max_level(log::LevelFilter::Info);
    let bench = Bench::new(DeviceOptions::default());
    with_port(&bench, async |term, _| {
        term.reply().await;
        let record = |level, args| {
            log::Log::log(
                &LOGGER,
                &log::Record::builder().level(level).args(args).build(),
            );
        };
        record(
            log::Level::Warn,
            format_args!("udp: datagram dropped, queue full"),
        );
        record(
            log::Level::Debug,
            format_args!("below the max level: never queued"),
        );
        let drained = bench.with_device(|d, now| LOGGER.drain_into(d, now));
        assert_eq!(drained, 1);
        loop {
            if let Item::Line(l) = term.next().await
                && l.starts_with("Info:[W]")
            {
                // `Info:[W]MM/DD HH:MM:SS: text`
                assert!(l.ends_with(": udp: datagram dropped, queue full"), "{l}");
                break;
            }
        }
    });
}
