//! Outside programs the end-to-end tests run against (ffmpeg, mosquitto, PostgreSQL, promtool,
//! python3): find them on `PATH`, skip loudly when one is missing — or fail, when
//! `SMARTMETER_REQUIRE_PEERS=1` (CI installs every peer) — and a mosquitto broker on a free
//! loopback port.
//!
//! This is the only place that reads `SMARTMETER_REQUIRE_PEERS`.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether a missing peer fails the test instead of skipping it (`SMARTMETER_REQUIRE_PEERS=1`).
pub fn required() -> bool {
    std::env::var("SMARTMETER_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Where `program` is on `PATH`, if anywhere.
pub fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(program))
            .find(|f| f.is_file())
    })
}

/// A loud skip of (part of) the running test because `why`; a failure when peers are required.
/// The caller returns (or leaves out the part) after it.
#[track_caller]
pub fn skip(why: &str) {
    let current = std::thread::current();
    let test = current.name().unwrap_or("this test");
    assert!(!required(), "{test}: {why} (SMARTMETER_REQUIRE_PEERS=1)");
    eprintln!("\n*** SKIPPED {test}: {why} (set SMARTMETER_REQUIRE_PEERS=1 to fail instead) ***\n");
}

/// Is the peer program `name` on `PATH`? Missing: a loud [`skip`] (or a failure when peers are
/// required).
#[track_caller]
pub fn peer(name: &str) -> bool {
    let found = on_path(name).is_some();
    if !found {
        skip(&format!("peer program `{name}` is not installed"));
    }
    found
}

/// A free loopback TCP port (bound, read back, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A mosquitto broker on a free loopback port (anonymous, no persistence), stopped on drop.
/// Check [`peer`]`("mosquitto")` first.
pub struct Mosquitto {
    pub child: Child,
    pub port: u16,
    conf: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts the broker and waits until it accepts connections.
    pub fn start() -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .unwrap();
        let child = Mosquitto::spawn(&conf, port);
        Mosquitto {
            child,
            port,
            conf,
            _dir: dir,
        }
    }

    fn spawn(conf: &Path, port: u16) -> Child {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto");
        // A generous bound, never a timing assertion: it only fails when the broker never came up.
        let deadline = Instant::now() + Duration::from_secs(40);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "never happened: mosquitto accepts connections"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    /// Kills the broker and starts it again on the same port (its clients see it go away).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Mosquitto::spawn(&self.conf, self.port);
    }

    /// `127.0.0.1:PORT`, as `--mqtt` takes it.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
