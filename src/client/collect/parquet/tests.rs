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

/// The footer files (and their temporaries) under `dir`.
fn footers(dir: &Path) -> Vec<PathBuf> {
    hidden_files(dir)
        .into_iter()
        .filter(|p| part_of_footer(p).is_some())
        .collect()
}

/// A sink under `dir` with hourly rotation, named `instance`, on counters of its own.
fn sink_in(dir: &Path, instance: &str) -> ParquetSink {
    let stats = Arc::new(super::super::metrics::Stats::default());
    ParquetSink::new(dir, Duration::from_secs(3600), instance, stats).unwrap()
}

/// Rows of one day (all in one `readings` file), `n` of them from `from`.
fn day_rows(from: usize, n: usize) -> Batch {
    Batch {
        readings: (from..from + n)
            .map(|k| reading(1_700_000_000_000_000 + k as i64 * 1000, "m", 1))
            .collect(),
        ..Batch::default()
    }
}

fn read_times(path: &Path) -> Vec<i64> {
    let r = SerializedFileReader::new(File::open(path).unwrap()).unwrap();
    r.get_row_iter(None)
        .unwrap()
        .map(|row| match row.unwrap().get_column_iter().next() {
            Some((_, Field::TimestampMicros(t))) => *t,
            other => panic!("{other:?}"),
        })
        .collect()
}

/// A sink dropped without closing its files (what `kill -9` does to the process): the rows up
/// to the last checkpoint come back as a complete file at the next start, the rows after it are
/// lost, and nothing half-written stays behind.
#[test]
fn a_crash_loses_only_the_rows_after_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = sink_in(dir.path(), "t1");
    // the rows on disk of each file checkpointed
    let checkpoint = |sink: &mut ParquetSink| -> Vec<u64> {
        let cp = sink.checkpoint_all().into_iter().map(Result::unwrap);
        cp.inspect(|w| assert!(w.checkpoint, "{w:?}"))
            .map(|w| w.rows)
            .collect()
    };
    assert!(sink.push(&day_rows(0, 1000)).is_empty());
    assert_eq!(checkpoint(&mut sink), [1000]);
    // nothing new: no second checkpoint
    assert!(checkpoint(&mut sink).is_empty());
    assert!(sink.push(&day_rows(1000, 500)).is_empty());
    assert_eq!(checkpoint(&mut sink), [1500]);
    // rows after the last checkpoint, some written out as a row group, some still in memory
    assert!(sink.push(&day_rows(1500, ROW_GROUP_ROWS + 10)).is_empty());
    sink.crash();

    let left = recover_parts(dir.path());
    let [Leftover::Recovered(w)] = left.as_slice() else {
        panic!("{left:?}")
    };
    assert_eq!((w.table, w.rows, w.checkpoint), ("readings", 1500, false));
    assert!(
        w.path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("readings-")
    );
    let times = read_times(&w.path);
    assert_eq!(times.len(), 1500);
    assert!(times.windows(2).all(|p| p[1] - p[0] == 1000));
    // nothing left to recover, no footer left behind
    assert!(stale_parts(dir.path()).is_empty());
    assert!(footers(dir.path()).is_empty());
    assert!(recover_parts(dir.path()).is_empty());
}

/// Several collectors may share a directory: one that starts must not take the open files of one
/// that runs for leftovers.
#[test]
fn the_open_files_of_a_running_collector_are_not_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = sink_in(dir.path(), "t1");
    assert!(sink.push(&day_rows(0, 100)).is_empty());
    assert_eq!(sink.checkpoint_all().len(), 1);
    assert!(recover_parts(dir.path()).is_empty());
    assert_eq!(stale_parts(dir.path()).len(), 1);
    assert!(sink.push(&day_rows(100, 100)).is_empty());
    let w: Vec<Written> = sink.close_all().into_iter().map(Result::unwrap).collect();
    assert_eq!(w.len(), 1);
    assert_eq!(read_times(&w[0].path).len(), 200);
    assert!(footers(dir.path()).is_empty());
}

#[test]
fn leftovers_without_a_usable_checkpoint_stay_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    // killed before the first checkpoint
    let mut sink = sink_in(dir.path(), "t1");
    assert!(sink.push(&day_rows(0, 10)).is_empty());
    sink.crash();
    // a checkpoint that describes more data than the file holds (a truncated copy)
    let mut sink = sink_in(dir.path(), "t2");
    assert!(sink.push(&day_rows(0, 10)).is_empty());
    let cp = sink.checkpoint_all().pop().unwrap().unwrap();
    sink.crash();
    let len = std::fs::metadata(&cp.path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cp.path)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    // a footer whose file is gone
    let orphan = dir
        .path()
        .join("readings/date=2023-11-14/.readings-x.parquet.part.footer");
    std::fs::write(&orphan, b"junk").unwrap();

    let left = recover_parts(dir.path());
    assert_eq!(left.len(), 2, "{left:?}");
    for l in &left {
        let Leftover::Stale { path, reason } = l else {
            panic!("{l:?}")
        };
        assert!(path.exists(), "{path:?} is left for inspection");
        assert!(
            reason.contains("no checkpoint") || reason.contains("bytes on disk"),
            "{reason}"
        );
    }
    assert!(!orphan.exists());
}
