//! `smartmeter record` against a scripted fake meter: lost packets and a connection lost mid-way.
#![cfg(feature = "cli")]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;

use smartmeter::client::recording::{ReadHints, RecordingReader, RecordingStatus, part_path};

const INFO: &[u8] = b"Info:{\"cmd\":\"info\",\"type\":\"smartmeter\",\"version\":\"2.2\",\"name\":\"fake\",\"state\":\"idle\"}\r\n";
const SAMPLE_OK: &[u8] = b"Info:{\"error\":false,\"cmd\":\"sample\",\"measures\":\"v,i_L1\",\"chunksize\":16,\"samplingrate\":100,\"conn_type\":\"TCP\",\"measurements\":2,\"prefix\":true,\"flowCtr\":false,\"unit\":\"V,mA\",\"startTs\":\"1614697441.119\"}\r\n";

fn frame(packet: u32, values: &[f32]) -> Vec<u8> {
    let mut f = b"Data:".to_vec();
    f.extend_from_slice(&((values.len() * 4) as u16).to_le_bytes());
    f.extend_from_slice(&packet.to_le_bytes());
    for v in values {
        f.extend_from_slice(&v.to_le_bytes());
    }
    f
}

/// Serves one connection: info, then the sample reply followed by `frames`; if `close_after_frames`
/// the connection is closed right after them, else `stop` is answered.
fn fake_meter(frames: Vec<Vec<u8>>, close_after_frames: bool) -> u16 {
    fake_meter_with(SAMPLE_OK, frames, close_after_frames)
}

/// [`fake_meter`] answering `sample` with `sample_reply`.
fn fake_meter_with(
    sample_reply: &'static [u8],
    frames: Vec<Vec<u8>>,
    close_after_frames: bool,
) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(INFO).unwrap();
        let mut lines = BufReader::new(s.try_clone().unwrap()).lines();
        while let Some(Ok(line)) = lines.next() {
            if line.contains("\"sample\"") {
                s.write_all(sample_reply).unwrap();
                for f in &frames {
                    s.write_all(f).unwrap();
                }
                if close_after_frames {
                    return;
                }
            } else if line.contains("stop") {
                let _ = s.write_all(b"Info:{\"error\":false,\"cmd\":\"stop\",\"msg\":\"Received stop command\",\"samples\":10,\"sent_samples\":6}\r\n");
            }
        }
    });
    port
}

fn record(port: u16, out: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_smartmeter"))
        .args([
            "record",
            &format!("127.0.0.1:{port}"),
            "--rate",
            "100",
            "--measures",
            "v,i_L1",
            "--duration",
            "100ms",
            "--out",
        ])
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn lost_packets_are_zero_filled_flagged_and_exit_4() {
    let port = fake_meter(
        vec![
            frame(0, &[1.0, 10.0, 2.0, 20.0]),
            frame(1, &[3.0, 30.0, 4.0, 40.0]),
            // packets 2 and 3 lost
            frame(4, &[9.0, 90.0, 10.0, 100.0]),
            frame(5, &[11.0, 110.0, 12.0, 120.0]),
        ],
        false,
    );
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("gaps.wav");
    let o = record(port, &wav);
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "smartmeter: error: lost 2 packets (4 samples zero-filled); the file is complete but has gaps\n"
    );
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("packets: 3 received, 2 lost (4 samples zero-filled)")
    );
    let mut r = RecordingReader::open(&wav, &ReadHints::default()).unwrap();
    assert_eq!(r.meta().status, RecordingStatus::Complete);
    assert_eq!(r.meta().lost_packets, 2);
    assert_eq!(r.meta().channels, ["v_l1", "i_l1"]);
    assert_eq!(r.meta().start_unix_us, Some(1_614_697_441_119_000));
    assert_eq!(
        r.read_all().unwrap(),
        [
            1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
            9.0, 90.0, 10.0, 100.0
        ],
        "exactly rate × duration = 10 samples, the lost ones as zeros"
    );
}

#[test]
fn a_lost_connection_leaves_a_flagged_part_file() {
    let port = fake_meter(vec![frame(0, &[1.0, 10.0, 2.0, 20.0])], true);
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("cut.wav");
    let o = record(port, &wav);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("smartmeter: error: the meter closed the connection"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("INCOMPLETE: 2 samples"));
    assert!(!wav.exists(), "nothing half-written under the final name");
    let mut r = RecordingReader::open(&part_path(&wav), &ReadHints::default()).unwrap();
    assert_eq!(r.meta().status, RecordingStatus::Incomplete);
    assert_eq!(r.read_all().unwrap(), [1.0, 10.0, 2.0, 20.0]);
}

/// The original firmware answers `"measures":"v,i"` with `"measurements":2` (one phase, docs/protocol.md
/// §A): `record` follows the reply's channel count and names the channels it cannot name `ch1,ch2`.
#[test]
fn records_from_the_original_firmware() {
    const SEED_SAMPLE: &[u8] = b"Info:{\"error\":false,\"measures\":\"v,i\",\"chunksize\":8,\"samplingrate\":1,\"conn_type\":\"TCP\",\"measurements\":2,\"prefix\":true,\"flowCtr\":false,\"cmd\":\"sample\",\"unit\":\"V,mA\",\"startTs\":\"1614697441.119\"}\r\n";
    let port = fake_meter_with(
        SEED_SAMPLE,
        vec![frame(0, &[230.5, 512.25]), frame(1, &[229.5, 511.0])],
        false,
    );
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("seed.csv");
    let o = Command::new(env!("CARGO_BIN_EXE_smartmeter"))
        .args([
            "record",
            &format!("127.0.0.1:{port}"),
            "--rate",
            "1",
            "--duration",
            "2s",
            "--out",
        ])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        "t,ch1,ch2\n1614697441.119000,230.5,512.25\n1614697442.119000,229.5,511\n"
    );
}
