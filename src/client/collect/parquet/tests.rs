use super::*;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

#[test]
fn dates_are_utc() {
    assert_eq!(date_of(0), "1970-01-01");
    assert_eq!(date_of(-1), "1969-12-31");
    assert_eq!(date_of(1_700_000_000_000_000), "2023-11-14");
}

#[test]
fn schemas_parse() {
    for s in [READINGS_SCHEMA, INTERVALS_SCHEMA, EVENTS_SCHEMA] {
        parse_message_type(s).unwrap();
    }
}

fn reading(t: i64, meter: &str, phase: i16) -> Reading {
    Reading {
        time_us: t,
        meter: Arc::from(meter),
        phase,
        voltage: Some(230.0 + f32::from(phase)),
        current: None,
        active_power: Some(1.5),
        reactive_power: None,
        apparent_power: None,
        power_factor: Some(-0.5),
        frequency: Some(50.0),
        energy_import: Some(1.25),
        energy_export: None,
    }
}

#[test]
fn writes_partitioned_files_read_back_by_the_parquet_reader() {
    let dir = tempfile::tempdir().unwrap();
    let stats = Arc::new(super::super::metrics::Stats::default());
    let mut sink =
        ParquetSink::new(dir.path(), Duration::from_secs(3600), "t1", stats.clone()).unwrap();
    let day = 86_400_000_000;
    let mut b = Batch {
        readings: std::vec![
            reading(day - 1, "a", 1),
            reading(day, "b", 2),
            reading(day + 5, "a", 3)
        ],
        ..Batch::default()
    };
    b.events.push(PqEventRow {
        time_us: day,
        meter: Arc::from("a"),
        id: 4,
        kind: "rvc".into(),
        phases: std::vec![1, 3],
        duration: 0.5,
        extreme: 240.0,
        reference: 230.0,
        delta_max: Some(10.0),
        delta_steady: None,
    });
    assert!(sink.push(&b).is_empty());
    // Nothing visible before closing: only hidden .part files.
    assert_eq!(stale_parts(dir.path()).len(), 3);
    let written: Vec<Written> = sink.close_all().into_iter().map(Result::unwrap).collect();
    assert_eq!(written.len(), 3);
    assert!(stale_parts(dir.path()).is_empty());
    assert_eq!(stats.parquet.rows_written[0].get(), 3);
    assert_eq!(stats.parquet.rows_written[2].get(), 1);
    let day2: Vec<&Written> = written
        .iter()
        .filter(|w| w.table == "readings" && w.path.to_string_lossy().contains("date=1970-01-02"))
        .collect();
    assert_eq!(day2.len(), 1);
    assert_eq!(day2[0].rows, 2);
    let r = SerializedFileReader::new(File::open(&day2[0].path).unwrap()).unwrap();
    let rows: Vec<_> = r.get_row_iter(None).unwrap().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    let cols: Vec<(String, Field)> = rows[1]
        .get_column_iter()
        .map(|(n, f)| (n.clone(), f.clone()))
        .collect();
    assert_eq!(cols[0], ("time".into(), Field::TimestampMicros(day + 5)));
    assert_eq!(cols[1], ("meter".into(), Field::Str("a".into())));
    assert_eq!(cols[2], ("phase".into(), Field::Short(3)));
    assert_eq!(cols[3], ("voltage".into(), Field::Float(233.0)));
    assert_eq!(cols[4], ("current".into(), Field::Null));
    assert_eq!(cols[10], ("energy_import".into(), Field::Double(1.25)));
    let ev = written.iter().find(|w| w.table == "pq_events").unwrap();
    let r = SerializedFileReader::new(File::open(&ev.path).unwrap()).unwrap();
    let row = r.get_row_iter(None).unwrap().next().unwrap().unwrap();
    let text = std::format!("{row}");
    assert!(text.contains("phases: [1, 3]"), "{text}");
    assert!(text.contains("type: \"rvc\""), "{text}");
    assert!(text.contains("delta_steady: null"), "{text}");
}
