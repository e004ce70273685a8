//! Writer and reader together, every format.

use std::path::Path;
use std::string::String;
use std::vec::Vec;

use super::wav::read_u32;
use super::*;

/// A recording at `path` started with [`meta6`].
fn started(path: &Path) -> RecordingWriter {
    PendingRecording::create(path)
        .unwrap()
        .start(meta6())
        .unwrap()
}

fn meta6() -> RecordingMeta {
    let mut m = RecordingMeta::new(
        8000,
        channel_names("v,i").unwrap(),
        ["V", "mA", "V", "mA", "V", "mA"].map(String::from).to_vec(),
    );
    m.start_unix_us = Some(1_614_697_441_119_000);
    m.name = Some("smartmeterX".into());
    m
}

fn samples(frames: usize) -> Vec<f32> {
    (0..frames * 6).map(|i| i as f32 * 0.5 - 7.25).collect()
}

#[test]
fn wav_round_trip_with_info() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.wav");
    let pending = PendingRecording::create(&path).unwrap();
    assert!(part_path(&path).exists());
    let mut w = pending.start(meta6()).unwrap();
    let s = samples(1001);
    w.write(&s[..600]).unwrap();
    w.checkpoint().unwrap();
    w.write(&s[600..]).unwrap();
    w.set_lost_packets(3);
    assert_eq!(w.finish(RecordingStatus::Complete).unwrap(), path);
    assert!(!part_path(&path).exists());
    let mut r = RecordingReader::open(&path, &ReadHints::default()).unwrap();
    let m = r.meta().clone();
    assert_eq!(m.rate_hz, 8000);
    assert_eq!(m.channels, meta6().channels);
    assert_eq!(m.units, meta6().units);
    assert_eq!(m.start_unix_us, Some(1_614_697_441_119_000));
    assert_eq!(m.name.as_deref(), Some("smartmeterX"));
    assert_eq!(m.status, RecordingStatus::Complete);
    assert_eq!(m.lost_packets, 3);
    assert!(!m.truncated);
    assert_eq!(r.read_all().unwrap(), s);
    // The header sizes are consistent: RIFF size = file length - 8.
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(read_u32(&bytes, 4).unwrap() as usize, bytes.len() - 8);
}

#[test]
fn killed_writer_leaves_flagged_valid_part() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.wav");
    let mut w = started(&path);
    w.write(&samples(100)).unwrap();
    w.checkpoint().unwrap();
    w.write(&samples(50)).unwrap();
    let part = w.part_path().to_path_buf();
    // Simulate a kill: the BufWriter is flushed on drop but the header is not patched again.
    drop(w);
    let mut r = RecordingReader::open(&part, &ReadHints::default()).unwrap();
    assert_eq!(r.meta().status, RecordingStatus::Recording);
    assert_eq!(
        r.read_all().unwrap().len(),
        600,
        "only checkpointed frames are claimed"
    );
    assert!(!path.exists());
}

#[test]
fn incomplete_stays_part() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.wav");
    let mut w = started(&path);
    w.write(&samples(10)).unwrap();
    let at = w.finish(RecordingStatus::Incomplete).unwrap();
    assert_eq!(at, part_path(&path));
    let r = RecordingReader::open(&at, &ReadHints::default()).unwrap();
    assert_eq!(r.meta().status, RecordingStatus::Incomplete);
}

#[test]
fn csv_timestamps_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.csv");
    let mut w = started(&path);
    let s = samples(5);
    w.write(&s).unwrap();
    w.finish(RecordingStatus::Complete).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "t,v_l1,i_l1,v_l2,i_l2,v_l3,i_l3");
    assert_eq!(
        lines[1],
        "1614697441.119000,-7.25,-6.75,-6.25,-5.75,-5.25,-4.75"
    );
    assert!(lines[2].starts_with("1614697441.119125,"));
    assert_eq!(lines.len(), 6);
    let mut r = RecordingReader::open(&path, &ReadHints::default()).unwrap();
    assert_eq!(r.meta().rate_hz, 8000);
    assert_eq!(r.meta().start_unix_us, Some(1_614_697_441_119_000));
    assert_eq!(r.read_all().unwrap(), s);
}

#[test]
fn f32_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.f32");
    let mut w = started(&path);
    let s = samples(33);
    w.write(&s).unwrap();
    w.finish(RecordingStatus::Interrupted).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 33 * 24);
    assert!(matches!(
        RecordingReader::open(&path, &ReadHints::default()),
        Err(RecordingError::Invalid { field: "rate", .. })
    ));
    let hints = ReadHints {
        rate_hz: Some(8000),
        channels: None,
    };
    let mut r = RecordingReader::open(&path, &hints).unwrap();
    assert_eq!(r.read_all().unwrap(), s);
}

#[test]
fn garbage_files_give_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.wav");
    for bytes in [
        &b""[..],
        b"RIFF\0\0\0\0WAVE",
        b"RIFF\0\0\0\0WAVEdata\x10\0\0\0",
        b"RIFX0000WAVE",
    ] {
        std::fs::write(&p, bytes).unwrap();
        assert!(matches!(
            RecordingReader::open(&p, &ReadHints::default()),
            Err(RecordingError::Wav { .. })
        ));
    }
    let c = dir.path().join("g.csv");
    std::fs::write(&c, "t,a\n1.0,x\n").unwrap();
    assert!(matches!(
        RecordingReader::open(&c, &ReadHints::default()),
        Err(RecordingError::Csv { line: 2, .. })
    ));
    // one huge line (not a recording): refused at the limit, not read into memory whole
    let mut long = String::from("t,a\n1614697441.000000,");
    long.push_str(&"1".repeat(super::csv::MAX_CSV_LINE));
    std::fs::write(&c, &long).unwrap();
    let e = RecordingReader::open(&c, &ReadHints::default()).unwrap_err();
    assert!(
        matches!(&e, RecordingError::Csv { line: 2, reason } if reason.contains("64 KiB")),
        "{e:?}"
    );
    std::fs::write(&c, std::format!("t,{}\n", "a".repeat(70_000))).unwrap();
    assert!(matches!(
        RecordingReader::open(&c, &ReadHints::default()),
        Err(RecordingError::Csv { line: 1, .. })
    ));
    assert!(matches!(
        PendingRecording::create(&dir.path().join("a.mp3")),
        Err(RecordingError::UnknownFormat)
    ));
    assert!(PendingRecording::create(&dir.path().join("no/such/dir.wav")).is_err());
}

#[test]
fn names_and_timestamps() {
    assert_eq!(channel_names("v,i_L2").unwrap(), ["v_l2", "i_l2"]);
    assert_eq!(channel_names("p,q").unwrap().len(), 6);
    assert!(channel_names("x").is_none());
    assert_eq!(
        parse_unix_ts_us("1614697441.119"),
        Some(1_614_697_441_119_000)
    );
    assert_eq!(parse_unix_ts_us("12"), Some(12_000_000));
    assert_eq!(parse_unix_ts_us("1.x"), None);
}

/// Valid files of every format, damaged at random (bytes overwritten, cut short, lengths and
/// chunk sizes made huge): opening and reading them never panics, and what reads back is no more
/// than the file can hold (no allocation sized by a header's claim).
mod damaged_files {
    use super::*;
    use proptest::prelude::*;

    /// The bytes of a valid recording in format `ext` with `frames` frames.
    fn valid(ext: &str, frames: usize) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(std::format!("v.{ext}"));
        let mut w = started(&path);
        w.write(&samples(frames)).unwrap();
        w.finish(RecordingStatus::Complete).unwrap();
        std::fs::read(&path).unwrap()
    }

    #[derive(Debug, Clone)]
    enum Damage {
        /// Byte at (position mod length) replaced.
        Byte(usize, u8),
        /// A little-endian u32 (a RIFF/chunk length) at (position mod length) replaced.
        Len(usize, u32),
        /// Cut to (position mod length) bytes.
        Cut(usize),
        /// Bytes inserted at (position mod length).
        Insert(usize, Vec<u8>),
    }

    fn damage() -> impl Strategy<Value = Damage> {
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Damage::Byte(p, b)),
            (
                any::<usize>(),
                prop_oneof![Just(u32::MAX), Just(0x7fff_ffff), Just(0), any::<u32>()]
            )
                .prop_map(|(p, v)| Damage::Len(p, v)),
            any::<usize>().prop_map(Damage::Cut),
            (
                any::<usize>(),
                proptest::collection::vec(any::<u8>(), 1..40)
            )
                .prop_map(|(p, b)| Damage::Insert(p, b)),
        ]
    }

    fn apply(bytes: &mut Vec<u8>, d: &Damage) {
        let n = bytes.len().max(1);
        match d {
            Damage::Byte(p, b) => {
                if let Some(x) = bytes.get_mut(p % n) {
                    *x = *b;
                }
            }
            Damage::Len(p, v) => {
                let at = p % n;
                for (k, b) in v.to_le_bytes().into_iter().enumerate() {
                    if let Some(x) = bytes.get_mut(at + k) {
                        *x = b;
                    }
                }
            }
            Damage::Cut(p) => bytes.truncate(p % n),
            Damage::Insert(p, b) => {
                let at = (p % n).min(bytes.len());
                bytes.splice(at..at, b.iter().copied());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(600))]
        #[test]
        fn never_panic_nor_read_more_than_the_file_holds(
            ext in prop_oneof![Just("wav"), Just("csv"), Just("f32")],
            frames in 0usize..300,
            damages in proptest::collection::vec(damage(), 1..6),
            rate in proptest::option::of(prop_oneof![Just(8000u32), Just(0), any::<u32>()]),
            channels in proptest::option::of(0usize..9),
        ) {
            let mut bytes = valid(ext, frames);
            for d in &damages {
                apply(&mut bytes, d);
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(std::format!("d.{ext}"));
            std::fs::write(&path, &bytes).unwrap();
            let channels = channels.map(|n| (0..n).map(|k| std::format!("c{k}")).collect());
            let hints = ReadHints { rate_hz: rate, channels };
            if let Ok(mut r) = RecordingReader::open(&path, &hints) {
                let ch = r.channels();
                prop_assert!((1..=65_535).contains(&ch), "{ch} channels");
                if let Ok(all) = r.read_all() {
                    prop_assert_eq!(all.len() % ch, 0);
                    // a binary sample takes 4 bytes of the file, a CSV value at least 2
                    prop_assert!(all.len() <= bytes.len() / 2, "{} values from {} bytes", all.len(), bytes.len());
                }
            }
        }
    }
}
