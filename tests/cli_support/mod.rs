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
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smartmeter-sim"));
        cmd.args(["--port", "0", "--stream-port", "0"]);
        if !extra.contains(&"--name") {
            cmd.args(["--name", "simtest"]);
        }
        let mut child = cmd
            .arg("--state")
            .arg(dir.path().join("state"))
            .args(extra)
            .env_remove("SMARTMETER_TOKEN")
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

impl Sim {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal to the simulator (`STOP`, `CONT`, `KILL`, ...).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // A stopped process is killed too (SIGKILL works on stopped processes).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `smartmeter ARGS` to completion (without the caller's `SMARTMETER_TOKEN`).
pub fn cli(args: &[&str]) -> Output {
    cli_env(args, &[])
}

/// Runs `smartmeter ARGS` to completion with these environment variables.
pub fn cli_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smartmeter"))
        .args(args)
        .env_remove("SMARTMETER_TOKEN")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run smartmeter")
}

/// `smartmeter ARGS` running in the background, its stdout lines arriving on a channel.
pub struct Running {
    pub child: Child,
    pub lines: std::sync::mpsc::Receiver<String>,
}

impl Running {
    pub fn start(args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_smartmeter"))
            .args(args)
            .env_remove("SMARTMETER_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn smartmeter");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Running { child, lines }
    }

    /// The next stdout line satisfying `pred` (panics after `within`).
    pub fn wait_line(&self, within: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if pred(&l) => return l,
                Ok(_) => {}
                Err(e) => panic!("no matching line within {within:?}: {e}"),
            }
        }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Waits for the exit (panics after `within`); returns the status and stderr.
    pub fn finish(mut self, within: Duration) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return (st, err);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("smartmeter did not exit within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
