//! The simulator as a process, for the end-to-end tests (`tests/sim_e2e/`) and the client and CLI
//! tests alike: [`Sim`] starts `smartmeter-sim` on free ports with its own state directory (args,
//! environment, seeded or factory state), waits for its `listening on` line, signals, crashes or
//! terminates it, and kills it on drop; [`Client`] talks to it over TCP or the pty, matching
//! replies by `cmd` and demultiplexing `Info:` lines and `Data:` frames ([`Demux`]); plus the
//! JSON assertions, temp dirs and free ports these tests share.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// Re-exported for `use crate::sim_support::*` in the end-to-end tests; crates that import only
// `Sim` do not use them.
#[allow(unused_imports)]
pub use serde_json::{Value, json};

/// Generous bound for anything the simulator should do "soon" (never a timing assertion: a test only
/// fails on it when the thing did not happen at all).
pub const SOON: Duration = Duration::from_secs(10);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh, unique, empty directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("smartmeter-e2e-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A free loopback TCP port (bound, read back, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `smartmeter-sim` on free ports (`--port 0 --stream-port 0`) with its own state
/// directory, started once its `listening on` line (and, with `--serial`, its `serial on` line)
/// arrived. Killed on drop; the state directory is removed too unless [`Sim::crash`] or
/// [`Sim::terminate`] handed it back for a restart.
pub struct Sim {
    pub child: Child,
    pub addr: SocketAddr,
    pub stream_addr: SocketAddr,
    /// The pseudo-terminal of `--serial`.
    pub serial: Option<PathBuf>,
    pub state: PathBuf,
    pub args: Vec<String>,
    /// Unix time (s) at which this process read the `listening on` line: the simulator's schedule
    /// zero lies at or (by the pipe's latency) shortly before it.
    pub listening_unix_s: f64,
    keep_state: bool,
}

impl Sim {
    /// Starts `smartmeter-sim --port 0 --stream-port 0 --state <fresh dir> ARGS`, with the time server
    /// stored as `-` so that no test asks a name server for the default `time.google.com`.
    pub fn start(args: &[&str]) -> Sim {
        let dir = temp_dir("state");
        seed_settings(&dir, |c| c.time_server = "-".into());
        Sim::start_in(dir, args)
    }

    /// Starts with the factory state (nothing stored).
    pub fn start_pristine(args: &[&str]) -> Sim {
        Sim::start_in(temp_dir("state"), args)
    }

    /// Starts with a given state directory.
    pub fn start_in(state: PathBuf, args: &[&str]) -> Sim {
        Sim::start_with_env(state, args, &[])
    }

    /// Starts with a given state directory and environment variables (the ambient
    /// `SMARTMETER_TOKEN` is never passed on, so tests do not depend on the developer's shell).
    pub fn start_with_env(state: PathBuf, args: &[&str], env: &[(&str, &str)]) -> Sim {
        Sim::launch(state, args, env, Stdio::inherit())
    }

    /// Starts the way the client and CLI tests expect their meter: the factory state, named
    /// `simtest` unless `args` name it, its log discarded (their output stays readable).
    pub fn start_for_clients(args: &[&str]) -> Sim {
        let mut all = Vec::new();
        if !args.contains(&"--name") {
            all.extend(["--name", "simtest"]);
        }
        all.extend_from_slice(args);
        Sim::launch(temp_dir("state"), &all, &[], Stdio::null())
    }

    fn launch(state: PathBuf, args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Sim {
        let mut all: Vec<String> = vec![
            "--port".into(),
            "0".into(),
            "--stream-port".into(),
            "0".into(),
            "--state".into(),
            state.display().to_string(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_smartmeter-sim"))
            .args(&all)
            .env_remove("SMARTMETER_TOKEN")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn smartmeter-sim");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let listening_unix_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let (addr, stream_addr) = parse_listening(&line)
            .unwrap_or_else(|| panic!("first line is not `listening on A (stream B)`: {line:?}"));
        let mut serial = None;
        if args.contains(&"--serial") {
            let mut l = String::new();
            out.read_line(&mut l).unwrap();
            let path = l
                .trim()
                .strip_prefix("serial on ")
                .unwrap_or_else(|| panic!("serial line: {l:?}"));
            serial = Some(PathBuf::from(path));
        }
        // Keep draining stdout so the simulator never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
        Sim {
            child,
            addr,
            stream_addr,
            serial,
            state,
            args: args.iter().map(|s| s.to_string()).collect(),
            listening_unix_s,
            keep_state: false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The command address as the CLI and the client take it: `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }

    /// A new command connection, with the unprompted `info` reply already consumed and returned.
    pub fn connect(&self) -> (Client, Value) {
        let mut c = Client::connect(self.addr);
        let info = c.reply_for("info");
        (c, info)
    }

    /// Resident set size in kB (Linux).
    pub fn rss_kb(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Sends the signal `sig` (`TERM`, `INT`, `STOP`, `CONT`, `KILL`, ...) with `kill(1)`.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Sends the signal `sig` and waits for the exit status.
    pub fn signal_and_wait(&mut self, sig: &str) -> std::process::ExitStatus {
        self.signal(sig);
        let deadline = Instant::now() + SOON;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "simulator did not exit after {sig}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`, keeping the state directory for a restart.
    pub fn crash(mut self) -> PathBuf {
        self.keep_state = true;
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.state.clone()
    }

    /// SIGTERM, keeping the state directory; returns the exit status.
    pub fn terminate(mut self) -> (std::process::ExitStatus, PathBuf) {
        self.keep_state = true;
        let st = self.signal_and_wait("TERM");
        (st, self.state.clone())
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // A stopped process is killed too (SIGKILL works on stopped processes).
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep_state {
            let _ = std::fs::remove_dir_all(&self.state);
        }
    }
}

/// Stores a settings record (the engine's own format) derived from the defaults.
pub fn seed_settings(dir: &Path, f: impl FnOnce(&mut smartmeter::device::Config)) {
    use smartmeter::device::{Config, Record, RecordKind};
    let mut config = Config::default();
    f(&mut config);
    let rec = Record::new(
        RecordKind::Settings,
        0,
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();
    // The simulator's state directory holds one `<slot>.rec` file per record slot.
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{}.rec", rec.slot().name())), rec.bytes()).unwrap();
}

/// Parses `listening on ADDR:PORT (stream ADDR:PORT)`.
pub fn parse_listening(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let rest = line.trim().strip_prefix("listening on ")?;
    let (a, b) = rest.split_once(" (stream ")?;
    Some((a.parse().ok()?, b.strip_suffix(')')?.parse().ok()?))
}

/// One item of the device-to-host byte stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// An `Info:` line, without the prefix and the `\r\n`.
    Line(String),
    /// A `Data:` frame.
    Frame { number: u32, payload: Vec<u8> },
}

impl Item {
    pub fn is_log(&self) -> bool {
        matches!(self, Item::Line(l) if l.starts_with('['))
    }
}

/// Demultiplexes `Info:` lines and `Data:` frames from any split of the byte stream.
#[derive(Debug, Default)]
pub struct Demux {
    buf: Vec<u8>,
    /// Frames whose length field was invalid (resynchronised past them).
    pub rejected: u32,
}

impl Demux {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn next(&mut self) -> Option<Item> {
        loop {
            if self.buf.len() < 5 {
                return None;
            }
            if self.buf.starts_with(b"Info:") {
                let end = self.buf.windows(2).position(|w| w == b"\r\n")?;
                let line = String::from_utf8_lossy(&self.buf[5..end]).into_owned();
                self.buf.drain(..end + 2);
                return Some(Item::Line(line));
            }
            if self.buf.starts_with(b"Data:") {
                if self.buf.len() < 11 {
                    return None;
                }
                let len = u16::from_le_bytes([self.buf[5], self.buf[6]]) as usize;
                if !len.is_multiple_of(4) || len > 48_000 {
                    self.rejected += 1;
                    self.buf.drain(..5);
                    continue;
                }
                if self.buf.len() < 11 + len {
                    return None;
                }
                let number =
                    u32::from_le_bytes([self.buf[7], self.buf[8], self.buf[9], self.buf[10]]);
                let payload = self.buf[11..11 + len].to_vec();
                self.buf.drain(..11 + len);
                return Some(Item::Frame { number, payload });
            }
            // Resynchronise on the next prefix.
            let skip = (1..self.buf.len())
                .find(|&i| {
                    self.buf[i..].starts_with(b"Info:")
                        || self.buf[i..].starts_with(b"Data:")
                        || (self.buf.len() - i < 5
                            && (b"Info:".starts_with(&self.buf[i..])
                                || b"Data:".starts_with(&self.buf[i..])))
                })
                .unwrap_or(self.buf.len());
            self.buf.drain(..skip);
        }
    }
}

/// A small command client over a byte stream (TCP or the pty), matching replies by `cmd`.
pub struct Client<S: Read + Write = TcpStream> {
    pub io: S,
    pub demux: Demux,
    /// Items read while looking for something else, in arrival order.
    pub seen: Vec<Item>,
}

impl Client<TcpStream> {
    pub fn connect(addr: SocketAddr) -> Client {
        let io = TcpStream::connect(addr).unwrap();
        io.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        io.set_nodelay(true).unwrap();
        Client::new(io)
    }
}

impl<S: Read + Write> Client<S> {
    pub fn new(io: S) -> Self {
        Client {
            io,
            demux: Demux::default(),
            seen: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).unwrap();
        self.io.flush().unwrap();
    }

    /// Sends one command line (`\n` appended).
    pub fn send_line(&mut self, line: &str) {
        self.send(format!("{line}\n").as_bytes());
    }

    /// The next item, or `None` when nothing arrived before `deadline` or the peer closed.
    pub fn next_until(&mut self, deadline: Instant) -> Option<Item> {
        let mut buf = [0u8; 16384];
        loop {
            if let Some(it) = self.demux.next() {
                return Some(it);
            }
            if Instant::now() >= deadline {
                return None;
            }
            match self.io.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.demux.push(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => return None,
            }
        }
    }

    pub fn next_item(&mut self) -> Option<Item> {
        self.next_until(Instant::now() + SOON)
    }

    /// The next JSON line (skipping log lines and frames, which are kept in `seen`).
    pub fn next_json(&mut self) -> Option<(String, Value)> {
        let deadline = Instant::now() + SOON;
        while let Some(it) = self.next_until(deadline) {
            if let Item::Line(l) = &it
                && l.starts_with('{')
            {
                let v: Value =
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}"));
                return Some((l.clone(), v));
            }
            self.seen.push(it);
        }
        None
    }

    /// Waits for the JSON reply whose `cmd` is `cmd` (other JSON lines are kept in `seen`).
    pub fn reply_for(&mut self, cmd: &str) -> Value {
        self.raw_reply_for(cmd).1
    }

    pub fn raw_reply_for(&mut self, cmd: &str) -> (String, Value) {
        let deadline = Instant::now() + SOON;
        while let Some(it) = self.next_until(deadline) {
            if let Item::Line(l) = &it
                && l.starts_with('{')
            {
                let v: Value =
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}"));
                if v.get("cmd").and_then(Value::as_str) == Some(cmd) {
                    return (l.clone(), v);
                }
            }
            self.seen.push(it);
        }
        panic!("no reply for `{cmd}`; seen: {:?}", self.seen_lines());
    }

    /// Sends `json` and returns the reply matching its `cmd`.
    pub fn cmd(&mut self, json: Value) -> Value {
        let cmd = json["cmd"].as_str().unwrap().to_string();
        self.send_line(&json.to_string());
        self.reply_for(&cmd)
    }

    /// Like [`Client::cmd`], also returning the exact reply text.
    pub fn cmd_raw(&mut self, json: Value) -> (String, Value) {
        let cmd = json["cmd"].as_str().unwrap().to_string();
        self.send_line(&json.to_string());
        self.raw_reply_for(&cmd)
    }

    /// Waits for a line satisfying `pred`.
    pub fn wait_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SOON;
        while let Some(it) = self.next_until(deadline) {
            if let Item::Line(l) = &it
                && pred(l)
            {
                return l.clone();
            }
            self.seen.push(it);
        }
        panic!("no line {what}; seen: {:?}", self.seen_lines());
    }

    /// Collects frames until `n` samples of `channels` values arrived; returns the values and the frame
    /// numbers. Text lines in between are kept.
    pub fn frames(&mut self, samples: usize, channels: usize) -> (Vec<f32>, Vec<u32>) {
        let mut values = Vec::new();
        let mut numbers = Vec::new();
        let deadline = Instant::now() + SOON * 3;
        while values.len() < samples * channels {
            match self.next_until(deadline) {
                Some(Item::Frame { number, payload }) => {
                    numbers.push(number);
                    values.extend(
                        payload
                            .chunks_exact(4)
                            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    );
                }
                Some(it) => self.seen.push(it),
                None => panic!(
                    "stream ended after {} values; seen {:?}",
                    values.len(),
                    self.seen_lines()
                ),
            }
        }
        (values, numbers)
    }

    pub fn seen_lines(&self) -> Vec<&str> {
        self.seen
            .iter()
            .filter_map(|i| match i {
                Item::Line(l) => Some(l.as_str()),
                Item::Frame { .. } => None,
            })
            .collect()
    }
}

/// The keys of a JSON object line, in their order of appearance.
pub fn keys_in_order(line: &str) -> Vec<String> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Vec<String>, A::Error> {
            let mut v = Vec::new();
            while let Some(k) = m.next_key::<String>()? {
                let _: IgnoredAny = m.next_value()?;
                v.push(k);
            }
            Ok(v)
        }
    }
    let mut de = serde_json::Deserializer::from_str(line);
    de.deserialize_map(Keys).unwrap()
}

/// Asserts a reply is a success (`"error":false`, or no `error` key for `info`).
#[track_caller]
pub fn assert_ok(v: &Value) {
    assert_ne!(
        v.get("error"),
        Some(&Value::Bool(true)),
        "expected success, got {v}"
    );
}

/// Asserts an error reply with exactly `msg`.
#[track_caller]
pub fn assert_err(v: &Value, msg: &str) {
    assert_eq!(v["error"], Value::Bool(true), "expected error, got {v}");
    assert_eq!(v["msg"].as_str(), Some(msg), "reply {v}");
}

/// `[L1, L2, L3]` of a reply key as f64.
#[track_caller]
pub fn triple(v: &Value, key: &str) -> [f64; 3] {
    let a = v[key]
        .as_array()
        .unwrap_or_else(|| panic!("`{key}` is not an array in {v}"));
    assert_eq!(a.len(), 3, "`{key}` in {v}");
    [
        a[0].as_f64().unwrap(),
        a[1].as_f64().unwrap(),
        a[2].as_f64().unwrap(),
    ]
}

/// Relative difference.
pub fn rel(a: f64, b: f64) -> f64 {
    ((a - b) / b).abs()
}

/// Polls `f` until it returns `Some` or `SOON` passes.
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + SOON;
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads a whole file of little-endian f32.
pub fn read_f32le(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}
