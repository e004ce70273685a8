//! Log lines: golden payloads both ways, the calendar formats, proptest round trips, no panic.

use proptest::prelude::*;
use smartmeter::wire::log::{
    DateTime, LogError, LogLevel, LogLine, format_unix_millis, parse_unix_millis,
};

const GOLDEN: &str = include_str!("golden/log.txt");

fn line(
    level: LogLevel,
    (month, day): (u8, u8),
    (hour, minute, second): (u8, u8, u8),
    text: &str,
) -> LogLine {
    LogLine {
        level,
        month,
        day,
        hour,
        minute,
        second,
        text: text.to_string(),
    }
}

fn typed(name: &str) -> LogLine {
    match name {
        "liveness" => line(LogLevel::Info, (3, 2), (10, 42, 24), ""),
        "mdns" => line(
            LogLevel::Info,
            (3, 2),
            (10, 42, 24),
            "MDNS Name: smartmeterX",
        ),
        "unknown" => line(
            LogLevel::Warning,
            (12, 31),
            (23, 59, 59),
            "Received unknown command",
        ),
        "missed" => line(LogLevel::Error, (1, 1), (0, 0, 0), "MISSED 42 SAMPLES"),
        "rate" => line(LogLevel::Info, (11, 27), (7, 45, 1), "7999.87Hz, 16000s"),
        "debug" => line(LogLevel::Debug, (2, 29), (12, 0, 0), "a\nb"),
        "all" => line(LogLevel::All, (6, 15), (6, 7, 8), "everything"),
        other => panic!("golden case {other} has no typed value"),
    }
}

#[test]
fn golden_log_lines_both_ways() {
    let cases: Vec<(&str, &str)> = GOLDEN
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split_once(' ').expect("golden line is `name text`"))
        .collect();
    assert_eq!(cases.len(), 7);
    for (name, text) in cases {
        let l = typed(name);
        assert_eq!(l.to_string(), text, "write {name}");
        assert_eq!(l.to_line(), format!("Info:{text}\r\n"), "to_line {name}");
        assert_eq!(
            LogLine::parse(text.as_bytes()),
            Ok(l.clone()),
            "parse {name}"
        );
        assert_eq!(
            LogLine::parse(format!("{text}\r\n").as_bytes()),
            Ok(l),
            "parse line {name}"
        );
    }
}

#[test]
fn level_names_letters_and_order() {
    let expect = [
        ("all", 'A'),
        ("debug", 'D'),
        ("info", 'I'),
        ("warning", 'W'),
        ("error", 'E'),
    ];
    for (level, (name, letter)) in LogLevel::ALL.into_iter().zip(expect) {
        assert_eq!(level.as_str(), name);
        assert_eq!(level.letter(), letter);
        assert_eq!(LogLevel::from_name(name), Some(level));
        assert_eq!(LogLevel::from_letter(letter as u8), Some(level));
    }
    assert!(LogLevel::ALL.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(LogLevel::default(), LogLevel::Info);
}

#[test]
fn protocol_time_formats() {
    // The seed's examples: getEnergy start and the ntp current_time.
    let t = DateTime::from_unix_millis(1_614_684_460_182);
    assert_eq!(t.to_long_string(), "03/02/2021 11:27:40.182");
    assert_eq!(t.to_short_string(), "03/02 11:27:40");
    assert_eq!(t.to_string(), "03/02/2021 11:27:40.182");
    assert_eq!(
        DateTime::from_unix_seconds(1_632_219_770).to_long_string(),
        "09/21/2021 10:22:50.000"
    );
    assert_eq!(format_unix_millis(1_614_697_441_119), "1614697441.119");
    assert_eq!(parse_unix_millis("1614697457.276"), Some(1_614_697_457_276));
    assert_eq!(DateTime::parse_long("03/02/2021 11:27:40.182"), Some(t));
    assert_eq!(DateTime::parse_long("13/02/2021 11:27:40.182"), None);
}

#[test]
fn errors_name_the_part() {
    assert_eq!(
        LogLine::parse(b"[I]03/32 10:42:24: x"),
        Err(LogError::Timestamp { field: "day" })
    );
    assert_eq!(
        LogLine::parse(b"[I]03/02 24:42:24: x"),
        Err(LogError::Timestamp { field: "hour" })
    );
    assert_eq!(
        LogLine::parse(b"[I]03/02 10:60:24: x"),
        Err(LogError::Timestamp { field: "minute" })
    );
    assert_eq!(
        LogLine::parse(b"[I]03/02 10:42:61: x"),
        Err(LogError::Timestamp { field: "second" })
    );
    assert_eq!(
        LogLine::parse(b"[I]03/02 10:42:24"),
        Err(LogError::Timestamp { field: "separator" })
    );
    assert_eq!(LogLine::parse(b"{\"cmd\":\"info\"}"), Err(LogError::Level));
    assert_eq!(
        LogError::Timestamp { field: "day" }.to_string(),
        "Invalid day: expected MM/DD HH:MM:SS"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn write_parse_round_trip(
        level in proptest::sample::select(LogLevel::ALL.to_vec()),
        month in 1u8..=12, day in 1u8..=31, hour in 0u8..24, minute in 0u8..60, second in 0u8..60,
        // Any text without `\r` and without the `//n` escape itself.
        text in "[^\r]*".prop_filter("no escape sequence", |t| !t.contains("//n"))
    ) {
        let l = LogLine { level, month, day, hour, minute, second, text };
        prop_assert_eq!(LogLine::parse(l.to_line().strip_prefix("Info:").unwrap_or_default().as_bytes()), Ok(l));
    }

    #[test]
    fn calendar_round_trip(ms in -100_000_000_000_000i64..100_000_000_000_000) {
        let t = DateTime::from_unix_millis(ms);
        prop_assert_eq!(t.to_unix_millis(), ms);
        prop_assert!((1..=12).contains(&t.month) && (1..=31).contains(&t.day));
        prop_assert!(t.hour < 24 && t.minute < 60 && t.second < 60 && t.millis < 1000);
        prop_assert_eq!(parse_unix_millis(&format_unix_millis(ms)), Some(ms));
        if (0..=9999).contains(&t.year) {
            prop_assert_eq!(DateTime::parse_long(&t.to_long_string()), Some(t));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = LogLine::parse(&bytes);
        let s = String::from_utf8_lossy(&bytes);
        let _ = parse_unix_millis(&s);
        let _ = DateTime::parse_long(&s);
    }
}
