//! Shared helpers of the client/CLI tests: the simulator as a process, the CLI as a process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running `smartmeter-sim` on free ports with its own state directory; killed on drop.
pub struct Sim {
    child: Child,
    pub port: u16,
    pub stream_port: u16,
    pub serial: Option<String>,
    pub dir: tempfile::TempDir,
}

impl Sim {
    pub fn start(extra: &[&str]) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_smartmeter-sim"))
            .args([
                "--port",
                "0",
                "--stream-port",
                "0",
                "--name",
                "simtest",
                "--state",
            ])
            .arg(dir.path().join("state"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smartmeter-sim");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let want_serial = extra.contains(&"--serial");
        let (mut port, mut stream_port, mut serial) = (0, 0, None);
        while let Some(Ok(line)) = lines.next() {
            if let Some(rest) = line.strip_prefix("listening on ") {
                // listening on 127.0.0.1:P (stream 127.0.0.1:S)
                let mut it = rest.split([':', ' ', ')']);
                let _ = it.next();
                port = it.next().unwrap().parse().unwrap();
                stream_port = rest
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .trim_end_matches(')')
                    .parse()
                    .unwrap();
            }
            if let Some(path) = line.strip_prefix("serial on ") {
                serial = Some(path.trim().to_string());
            }
            if port != 0 && (!want_serial || serial.is_some()) {
                break;
            }
        }
        assert!(port != 0, "the simulator did not print its port");
        // Keep draining stdout so the simulator never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Sim {
            child,
            port,
            stream_port,
            serial,
            dir,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `smartmeter ARGS` to completion.
pub fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smartmeter"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run smartmeter")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the CLI, asserts success and parses its stdout as one JSON object.
pub fn cli_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let o = cli(&all);
    assert!(o.status.success(), "smartmeter {args:?}: {}", stderr(&o));
    serde_json::from_str(stdout(&o).trim()).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)))
}

/// Waits until `path` exists and is larger than `bytes`.
pub fn wait_for_size(path: &Path, bytes: u64, within: Duration) {
    let start = Instant::now();
    while start.elapsed() < within {
        if std::fs::metadata(path)
            .map(|m| m.len() > bytes)
            .unwrap_or(false)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} did not grow past {bytes} bytes", path.display());
}

/// Whether tests must fail (rather than skip) when an outside program is missing.
pub fn peers_required() -> bool {
    std::env::var("SMARTMETER_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Whether `program` can be run.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// RMS of channel `k` of interleaved `samples`.
pub fn rms(samples: &[f32], channels: usize, k: usize) -> f64 {
    let v: Vec<f64> = samples
        .iter()
        .skip(k)
        .step_by(channels)
        .map(|x| f64::from(*x))
        .collect();
    (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt()
}
