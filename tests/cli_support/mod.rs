//! The `smartmeter` CLI as a process, for the CLI tests: run it to completion ([`cli`],
//! [`cli_json`]) or in the background with its stdout lines on a channel ([`Running`]), read its
//! stdout/stderr, wait for a recording to grow. The simulator they talk to is
//! `sim_support::Sim`, shared with the end-to-end tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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
