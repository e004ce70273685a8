//! Issue 5 item 2: port 54322's raw stream, read by the real ffmpeg with the README's line.

use std::io::Read;
use std::process::Command;

use crate::peer_support::peer;
use crate::sim_support::*;

fn rms(values: &[f32], channels: usize, ch: usize) -> f64 {
    let (s, n) = values
        .iter()
        .skip(ch)
        .step_by(channels)
        .fold((0.0f64, 0usize), |(s, n), v| {
            (s + f64::from(*v) * f64::from(*v), n + 1)
        });
    (s / n as f64).sqrt()
}

/// Frequency from the positive-going zero crossings of channel `ch` (linear interpolation).
fn frequency(values: &[f32], channels: usize, ch: usize, rate: f64) -> f64 {
    let x: Vec<f64> = values
        .iter()
        .skip(ch)
        .step_by(channels)
        .map(|v| f64::from(*v))
        .collect();
    let mut crossings = Vec::new();
    for (k, w) in x.windows(2).enumerate() {
        if w[0] < 0.0 && w[1] >= 0.0 {
            crossings.push(k as f64 + w[0] / (w[0] - w[1]));
        }
    }
    let n = crossings.len();
    assert!(n > 10, "too few zero crossings: {n}");
    (n - 1) as f64 * rate / (crossings[n - 1] - crossings[0])
}

#[test]
fn ffmpeg_records_three_seconds_that_match_the_synthetic_grid() {
    if !peer("ffmpeg") {
        return;
    }
    let sim = Sim::start(&[]);
    let dir = temp_dir("ffmpeg");
    let mkv = dir.join("out.mkv");
    let url = format!("tcp://{}", sim.stream_addr);
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args([
            "-f", "f32le", "-ar", "8000", "-ac", "6", "-i", &url, "-t", "3", "-c:a", "wavpack",
        ])
        .arg(&mkv)
        .status()
        .unwrap();
    assert!(st.success(), "ffmpeg recording failed");
    let raw = dir.join("out.raw");
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
        .arg(&mkv)
        .args(["-f", "f32le", "-c:a", "pcm_f32le"])
        .arg(&raw)
        .status()
        .unwrap();
    assert!(st.success(), "ffmpeg decoding failed");
    let values = read_f32le(&raw);
    assert_eq!(values.len() % 6, 0);
    let samples = values.len() / 6;
    // Within one chunk (1008 bytes = 42 six-channel samples) of 3 s at 8000 Hz.
    assert!(samples.abs_diff(24_000) <= 42, "{samples} samples");
    // The analysis skips the first 0.1 s: the stream's anti-alias filter settles there.
    let steady = &values[800 * 6..];
    for (ch, want) in [
        (0, 230.0),
        (2, 230.0),
        (4, 230.0),
        (1, 5000.0),
        (3, 3000.0),
        (5, 1000.0),
    ] {
        let got = rms(steady, 6, ch);
        assert!(
            rel(got, want) < 0.002,
            "channel {ch}: rms {got}, want {want}"
        );
    }
    let f = frequency(steady, 6, 0, 8000.0);
    assert!(rel(f, 50.0) < 0.0005, "frequency {f}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_ffmpeg_sample_command_reconfigures_the_raw_stream() {
    let sim = Sim::start(&[]);
    let mut reader = std::net::TcpStream::connect(sim.stream_addr).unwrap();
    reader.set_read_timeout(Some(SOON)).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = reader.read(&mut buf).unwrap();
    assert!(n > 0, "raw stream sends at once");
    // A second reader while busy is closed at once.
    let mut second = std::net::TcpStream::connect(sim.stream_addr).unwrap();
    second.set_read_timeout(Some(SOON)).unwrap();
    assert_eq!(
        second.read(&mut buf).unwrap_or(0),
        0,
        "second raw reader must be closed"
    );

    let (mut c, _) = sim.connect();
    let v =
        c.cmd(json!({"cmd":"sample","payload":{"type":"FFMPEG","rate":10,"measures":"v,i_RMS"}}));
    assert_ok(&v);
    assert_eq!(v["measures"], "v,v,v,i,i,i_RMS");
    // Now the stream carries RMS values: 230 V ×3, then 5000, 3000, 1000 mA.
    let want = [230.0f32, 230.0, 230.0, 5000.0, 3000.0, 1000.0];
    let mut bytes = Vec::new();
    eventually("RMS tuple on the raw stream", || {
        let n = reader.read(&mut buf).ok()?;
        bytes.extend_from_slice(&buf[..n]);
        let vals: Vec<Vec<f32>> = (0..4)
            .map(|off| {
                bytes
                    .get(off..)
                    .unwrap_or(&[])
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect()
            })
            .collect();
        vals.iter()
            .any(|v| {
                v.windows(6)
                    .any(|w| w.iter().zip(want).all(|(a, b)| (a - b).abs() / b < 0.01))
            })
            .then_some(())
    });
    assert_ok(&c.cmd(json!({"cmd":"stop"})));
}
