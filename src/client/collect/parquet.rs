//! The Parquet sink: `DIR/<table>/date=YYYY-MM-DD/<table>-<UTC start>-<instance>-<n>.parquet`.
//!
//! Each file is written as `.<name>.part` next to its final name and renamed when complete (footer
//! written, synced), so a reader globbing `*.parquet` (DuckDB, Polars) or scanning the directory
//! (pyarrow/pandas skip names starting with `.`) never sees a half-written file. The date is the UTC
//! date of each row's `time` (a Hive partition: DuckDB's `hive_partitioning` and pyarrow datasets add
//! it as a `date` column). Files are closed after `rotate` (at most an hour), after
//! [`MAX_FILE_ROWS`], and when the collector stops. Rows are written in row groups of
//! [`ROW_GROUP_ROWS`].
//!
//! Written with the low-level column writer of the `parquet` crate (no arrow), Snappy-compressed:
//! timestamps are `INT64 TIMESTAMP(MICROS, UTC)`, names `BYTE_ARRAY STRING`, phases
//! `INT32 INTEGER(16, signed)`, measurements `FLOAT`/`DOUBLE` (optional: undefined = null), lists
//! the standard three-level `LIST`.
//!
//! Crashes: the rows of an open file are written out as a row group and made durable at least
//! every [`ParquetSink::with_checkpoint`] interval (default [`DEFAULT_CHECKPOINT`]): the `.part`
//! file is synced, then the footer that would close it *now* is stored next to it
//! (`.<name>.part.footer`, replaced atomically). A collector that is killed (`kill -9`, OOM, power
//! loss) leaves the `.part` and its footer; the next start ([`recover_parts`]) cuts the `.part` to
//! the length the footer describes, appends the footer, checks that the file reads, and renames it
//! to its final name. So a crash loses at most the rows of one checkpoint interval. Stopping with
//! SIGINT/SIGTERM closes every file whole. Open files are locked (`flock`), so a collector that
//! starts in a directory another one is writing to leaves that one's files alone.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::sync::Arc;
use std::time::{Duration, Instant};
use std::vec::Vec;

use parquet::basic::Compression;
use parquet::data_type::ByteArray;
use parquet::errors::ParquetError;
use parquet::file::metadata::{FileMetaData, ParquetMetaData, ParquetMetaDataWriter};
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::SchemaDescriptor;
use parquet::schema::types::Type;

use super::metrics::SinkStats;
use super::rows::{Batch, PqEventRow, PqIntervalRow, Reading};
use crate::wire::log::DateTime;

/// Rows per row group: DuckDB's own row-group size, a few MB of memory per table.
pub const ROW_GROUP_ROWS: usize = 122_880;

/// A file is closed once it holds this many rows, whatever `rotate` says.
pub const MAX_FILE_ROWS: u64 = 16 * 1024 * 1024;

/// How often the rows of open files are made durable by default (what a crash can lose).
pub const DEFAULT_CHECKPOINT: Duration = Duration::from_secs(60);

/// The first bytes of a `.part.footer` file (then the `u64` LE length of the data it closes).
const FOOTER_MAGIC: &[u8; 8] = b"SMPQFTR1";

/// Why a Parquet file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ParquetSinkError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The Parquet writer refused.
    #[error("{path}: {source}")]
    Parquet {
        /// The file.
        path: String,
        /// Why.
        source: ParquetError,
    },
    /// A column of the schema had another type than the code writes (a bug).
    #[error("{path}: column {column} has an unexpected type")]
    Column {
        /// The file.
        path: String,
        /// The column index.
        column: usize,
    },
}

/// A completed file, or a checkpoint of an open one, reported to the progress log.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// The final path (of a checkpoint: the `.part` file).
    pub path: PathBuf,
    /// The table.
    pub table: &'static str,
    /// Rows in the file (of a checkpoint: rows on disk so far).
    pub rows: u64,
    /// A checkpoint: the file stays open, its rows so far survive a crash.
    pub checkpoint: bool,
}

/// A table the sink can write: its name, schema and columns.
trait Table: Sized + Clone {
    const NAME: &'static str;
    const INDEX: usize;
    const SCHEMA: &'static str;
    fn time_us(&self) -> i64;
    fn write(rows: &[Self], cols: &mut Columns<'_, '_>) -> Result<(), ParquetError>;
}

const READINGS_SCHEMA: &str = "message readings {
  required int64 time (TIMESTAMP(MICROS,true));
  required binary meter (STRING);
  required int32 phase (INTEGER(16,true));
  optional float voltage;
  optional float current;
  optional float active_power;
  optional float reactive_power;
  optional float apparent_power;
  optional float power_factor;
  optional float frequency;
  optional double energy_import;
  optional double energy_export;
}";

const INTERVALS_SCHEMA: &str = "message pq_intervals {
  required int64 time (TIMESTAMP(MICROS,true));
  required int64 end_time (TIMESTAMP(MICROS,true));
  required binary meter (STRING);
  required binary interval (STRING);
  required int32 phase (INTEGER(16,true));
  required boolean flagged;
  required float nominal_voltage;
  required float nominal_frequency;
  optional float voltage;
  optional float voltage_min;
  optional float voltage_max;
  optional float frequency;
  optional float u0;
  optional float u2;
  optional float thd_v;
  optional float thd_i;
  required group harmonics_v (LIST) {
    repeated group list {
      optional float element;
    }
  }
  required group harmonics_i (LIST) {
    repeated group list {
      optional float element;
    }
  }
  optional float pst;
  optional float plt;
}";

const EVENTS_SCHEMA: &str = "message pq_events {
  required int64 time (TIMESTAMP(MICROS,true));
  required binary meter (STRING);
  required int64 id;
  required binary type (STRING);
  required group phases (LIST) {
    repeated group list {
      required int32 element (INTEGER(16,true));
    }
  }
  required double duration;
  required float extreme;
  required float reference;
  optional float delta_max;
  optional float delta_steady;
}";

impl Table for Reading {
    const NAME: &'static str = "readings";
    const INDEX: usize = 0;
    const SCHEMA: &'static str = READINGS_SCHEMA;
    fn time_us(&self) -> i64 {
        self.time_us
    }
    fn write(rows: &[Self], c: &mut Columns<'_, '_>) -> Result<(), ParquetError> {
        c.i64(rows.iter().map(|r| r.time_us))?;
        c.str(rows.iter().map(|r| &*r.meter))?;
        c.i32(rows.iter().map(|r| i32::from(r.phase)))?;
        c.opt_f32(rows.iter().map(|r| r.voltage))?;
        c.opt_f32(rows.iter().map(|r| r.current))?;
        c.opt_f32(rows.iter().map(|r| r.active_power))?;
        c.opt_f32(rows.iter().map(|r| r.reactive_power))?;
        c.opt_f32(rows.iter().map(|r| r.apparent_power))?;
        c.opt_f32(rows.iter().map(|r| r.power_factor))?;
        c.opt_f32(rows.iter().map(|r| r.frequency))?;
        c.opt_f64(rows.iter().map(|r| r.energy_import))?;
        c.opt_f64(rows.iter().map(|r| r.energy_export))
    }
}

impl Table for PqIntervalRow {
    const NAME: &'static str = "pq_intervals";
    const INDEX: usize = 1;
    const SCHEMA: &'static str = INTERVALS_SCHEMA;
    fn time_us(&self) -> i64 {
        self.time_us
    }
    fn write(rows: &[Self], c: &mut Columns<'_, '_>) -> Result<(), ParquetError> {
        c.i64(rows.iter().map(|r| r.time_us))?;
        c.i64(rows.iter().map(|r| r.end_time_us))?;
        c.str(rows.iter().map(|r| &*r.meter))?;
        c.str(rows.iter().map(|r| r.interval.as_str()))?;
        c.i32(rows.iter().map(|r| i32::from(r.phase)))?;
        c.bool(rows.iter().map(|r| r.flagged))?;
        c.f32(rows.iter().map(|r| r.nominal_voltage))?;
        c.f32(rows.iter().map(|r| r.nominal_frequency))?;
        c.opt_f32(rows.iter().map(|r| r.voltage))?;
        c.opt_f32(rows.iter().map(|r| r.voltage_min))?;
        c.opt_f32(rows.iter().map(|r| r.voltage_max))?;
        c.opt_f32(rows.iter().map(|r| r.frequency))?;
        c.opt_f32(rows.iter().map(|r| r.u0))?;
        c.opt_f32(rows.iter().map(|r| r.u2))?;
        c.opt_f32(rows.iter().map(|r| r.thd_v))?;
        c.opt_f32(rows.iter().map(|r| r.thd_i))?;
        c.list_opt_f32(rows.iter().map(|r| r.harmonics_v.as_slice()))?;
        c.list_opt_f32(rows.iter().map(|r| r.harmonics_i.as_slice()))?;
        c.opt_f32(rows.iter().map(|r| r.pst))?;
        c.opt_f32(rows.iter().map(|r| r.plt))
    }
}

impl Table for PqEventRow {
    const NAME: &'static str = "pq_events";
    const INDEX: usize = 2;
    const SCHEMA: &'static str = EVENTS_SCHEMA;
    fn time_us(&self) -> i64 {
        self.time_us
    }
    fn write(rows: &[Self], c: &mut Columns<'_, '_>) -> Result<(), ParquetError> {
        c.i64(rows.iter().map(|r| r.time_us))?;
        c.str(rows.iter().map(|r| &*r.meter))?;
        c.i64(rows.iter().map(|r| r.id))?;
        c.str(rows.iter().map(|r| r.kind.as_str()))?;
        c.list_i32(rows.iter().map(|r| r.phases.as_slice()))?;
        c.f64(rows.iter().map(|r| r.duration))?;
        c.f32(rows.iter().map(|r| r.extreme))?;
        c.f32(rows.iter().map(|r| r.reference))?;
        c.opt_f32(rows.iter().map(|r| r.delta_max))?;
        c.opt_f32(rows.iter().map(|r| r.delta_steady))
    }
}

/// Writes the columns of one row group in schema order.
struct Columns<'g, 'w> {
    rg: &'g mut SerializedRowGroupWriter<'w, BufWriter<File>>,
    index: usize,
}

fn wrong_type(index: usize) -> ParquetError {
    ParquetError::General(std::format!("column {index} has an unexpected type"))
}

use parquet::column::writer::ColumnWriter as CW;

/// One method per physical column type: collects the values and writes them to the next column,
/// which must have that type (a schema mismatch is an error, never a panic).
macro_rules! typed_columns {
    ($($ty:ident => $writer:ident),* $(,)?) => {
        $(
            fn $ty(&mut self, v: impl Iterator<Item = $ty>) -> Result<(), ParquetError> {
                let values: Vec<$ty> = v.collect();
                self.next(|w, i| match w {
                    CW::$writer(w) => w.write_batch(&values, None, None).map(drop),
                    _ => Err(wrong_type(i)),
                })
            }
        )*
    };
}

impl Columns<'_, '_> {
    /// Runs `f` on the next column writer, then closes the column.
    fn next(
        &mut self,
        f: impl FnOnce(&mut CW<'_>, usize) -> Result<(), ParquetError>,
    ) -> Result<(), ParquetError> {
        let index = self.index;
        let mut col = self
            .rg
            .next_column()?
            .ok_or_else(|| ParquetError::General(std::format!("schema has no column {index}")))?;
        f(col.untyped(), index)?;
        col.close()?;
        self.index += 1;
        Ok(())
    }

    typed_columns! {
        i64 => Int64ColumnWriter,
        i32 => Int32ColumnWriter,
        bool => BoolColumnWriter,
        f32 => FloatColumnWriter,
        f64 => DoubleColumnWriter,
    }

    fn str<'s>(&mut self, v: impl Iterator<Item = &'s str>) -> Result<(), ParquetError> {
        let values: Vec<ByteArray> = v.map(ByteArray::from).collect();
        self.next(|w, i| match w {
            CW::ByteArrayColumnWriter(w) => w.write_batch(&values, None, None).map(drop),
            _ => Err(wrong_type(i)),
        })
    }

    fn opt_f32(&mut self, v: impl Iterator<Item = Option<f32>>) -> Result<(), ParquetError> {
        let (values, defs) = levels(v);
        self.next(|w, i| match w {
            CW::FloatColumnWriter(w) => w.write_batch(&values, Some(&defs), None).map(drop),
            _ => Err(wrong_type(i)),
        })
    }

    fn opt_f64(&mut self, v: impl Iterator<Item = Option<f64>>) -> Result<(), ParquetError> {
        let (values, defs) = levels(v);
        self.next(|w, i| match w {
            CW::DoubleColumnWriter(w) => w.write_batch(&values, Some(&defs), None).map(drop),
            _ => Err(wrong_type(i)),
        })
    }

    /// `required group (LIST) { repeated group list { optional float element } }`: definition level
    /// 0 = empty list, 1 = null element, 2 = element; repetition 0 starts a row.
    fn list_opt_f32<'s>(
        &mut self,
        v: impl Iterator<Item = &'s [Option<f32>]>,
    ) -> Result<(), ParquetError> {
        let (mut values, mut defs, mut reps) = (Vec::new(), Vec::new(), Vec::new());
        for list in v {
            if list.is_empty() {
                defs.push(0);
                reps.push(0);
            }
            for (k, x) in list.iter().enumerate() {
                reps.push(i16::from(k > 0));
                match x {
                    Some(x) => {
                        values.push(*x);
                        defs.push(2);
                    }
                    None => defs.push(1),
                }
            }
        }
        self.next(|w, i| match w {
            CW::FloatColumnWriter(w) => w.write_batch(&values, Some(&defs), Some(&reps)).map(drop),
            _ => Err(wrong_type(i)),
        })
    }

    /// `required group (LIST) { repeated group list { required int32 element } }`.
    fn list_i32<'s>(&mut self, v: impl Iterator<Item = &'s [i16]>) -> Result<(), ParquetError> {
        let (mut values, mut defs, mut reps) = (Vec::new(), Vec::new(), Vec::new());
        for list in v {
            if list.is_empty() {
                defs.push(0);
                reps.push(0);
            }
            for (k, x) in list.iter().enumerate() {
                reps.push(i16::from(k > 0));
                values.push(i32::from(*x));
                defs.push(1);
            }
        }
        self.next(|w, i| match w {
            CW::Int32ColumnWriter(w) => w.write_batch(&values, Some(&defs), Some(&reps)).map(drop),
            _ => Err(wrong_type(i)),
        })
    }
}

/// Present values and definition levels (1 = present, 0 = null) of an optional column.
fn levels<T>(v: impl Iterator<Item = Option<T>>) -> (Vec<T>, Vec<i16>) {
    let (mut values, mut defs) = (Vec::new(), Vec::new());
    for x in v {
        match x {
            Some(x) => {
                values.push(x);
                defs.push(1);
            }
            None => defs.push(0),
        }
    }
    (values, defs)
}

/// One file being written.
struct OpenFile<R> {
    writer: SerializedFileWriter<BufWriter<File>>,
    part: PathBuf,
    path: PathBuf,
    pending: Vec<R>,
    rows: u64,
    opened: Instant,
    /// When the rows on disk were last made durable, and how many they were.
    checkpointed: (Instant, u64),
}

impl<R> OpenFile<R> {
    fn footer_path(&self) -> PathBuf {
        footer_path(&self.part)
    }
}

/// `.<name>.part` → `.<name>.part.footer`.
fn footer_path(part: &Path) -> PathBuf {
    with_suffix(part, FOOTER_SUFFIX)
}

/// What a footer's name adds to its `.part`'s, and what its temporary name adds to the footer's.
const FOOTER_SUFFIX: &str = ".footer";
const TMP_SUFFIX: &str = ".tmp";

/// `path` with `suffix` appended to its name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_os_string();
    p.push(suffix);
    PathBuf::from(p)
}

/// The `.part` a footer (or its temporary) belongs to; `None` for any other file.
fn part_of_footer(path: &Path) -> Option<PathBuf> {
    let s = path.to_str()?;
    let footer = s.strip_suffix(TMP_SUFFIX).unwrap_or(s);
    let part = footer.strip_suffix(FOOTER_SUFFIX)?;
    part.ends_with(".part").then(|| PathBuf::from(part))
}

/// The open files of one table, by date partition (UTC days since the epoch).
struct TableFiles<R> {
    schema: Arc<Type>,
    files: BTreeMap<i64, OpenFile<R>>,
}

impl<R: Table> TableFiles<R> {
    fn new() -> Result<Self, ParquetError> {
        Ok(TableFiles {
            schema: Arc::new(parse_message_type(R::SCHEMA)?),
            files: BTreeMap::new(),
        })
    }
}

/// The Parquet sink's state: open files of every table, rotation, counters.
pub struct ParquetSink {
    root: PathBuf,
    rotate: Duration,
    checkpoint: Duration,
    instance: String,
    seq: u64,
    props: Arc<WriterProperties>,
    readings: TableFiles<Reading>,
    intervals: TableFiles<PqIntervalRow>,
    events: TableFiles<PqEventRow>,
    stats: Arc<super::metrics::Stats>,
}

impl ParquetSink {
    /// A sink writing under `root` (created if absent); `instance` makes file names unique per
    /// collector (several may share a directory).
    pub fn new(
        root: &Path,
        rotate: Duration,
        instance: &str,
        stats: Arc<super::metrics::Stats>,
    ) -> Result<ParquetSink, ParquetSinkError> {
        std::fs::create_dir_all(root).map_err(|source| ParquetSinkError::Io {
            path: root.display().to_string(),
            source,
        })?;
        let schema_err = |source| ParquetSinkError::Parquet {
            path: root.display().to_string(),
            source,
        };
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_created_by(std::format!(
                "smartmeter collect {}",
                env!("CARGO_PKG_VERSION")
            ))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        Ok(ParquetSink {
            root: root.to_path_buf(),
            rotate,
            checkpoint: DEFAULT_CHECKPOINT,
            instance: instance.to_string(),
            seq: 0,
            props: Arc::new(props),
            readings: TableFiles::new().map_err(schema_err)?,
            intervals: TableFiles::new().map_err(schema_err)?,
            events: TableFiles::new().map_err(schema_err)?,
            stats,
        })
    }

    /// Makes the rows of open files durable at least this often (see the module docs); at least
    /// a second.
    pub fn with_checkpoint(mut self, every: Duration) -> ParquetSink {
        self.checkpoint = every.max(Duration::from_secs(1));
        self
    }

    fn sink_stats(&self) -> &SinkStats {
        &self.stats.parquet
    }

    /// Takes the rows of a batch: appended to their date's open file, written out a row group at a
    /// time. Errors are counted and returned (the rows of a failed file are lost and counted).
    pub fn push(&mut self, batch: &Batch) -> Vec<Result<Written, ParquetSinkError>> {
        let mut out = Vec::new();
        let now = Instant::now();
        let ctx = Ctx {
            root: &self.root,
            instance: &self.instance,
            props: &self.props,
            stats: &self.stats.parquet,
        };
        push_rows(
            &ctx,
            &mut self.seq,
            &mut self.readings,
            &batch.readings,
            now,
            &mut out,
        );
        push_rows(
            &ctx,
            &mut self.seq,
            &mut self.intervals,
            &batch.intervals,
            now,
            &mut out,
        );
        push_rows(
            &ctx,
            &mut self.seq,
            &mut self.events,
            &batch.events,
            now,
            &mut out,
        );
        self.update_buffered();
        out
    }

    /// Closes the files that are due (open for `rotate` or longer) and checkpoints the others
    /// whose last checkpoint is older than the interval.
    pub fn tick(&mut self) -> Vec<Result<Written, ParquetSinkError>> {
        let rotate = self.rotate;
        let now = Instant::now();
        let due = |f: &Instant| now.duration_since(*f) >= rotate;
        let mut out = Vec::new();
        close_where(&mut self.readings, &self.stats.parquet, &due, &mut out);
        close_where(&mut self.intervals, &self.stats.parquet, &due, &mut out);
        close_where(&mut self.events, &self.stats.parquet, &due, &mut out);
        let every = self.checkpoint;
        out.extend(self.checkpoint_where(now, &|last| now.duration_since(*last) >= every));
        self.update_buffered();
        out
    }

    /// Checkpoints every open file now (what `tick` does once a file's interval has passed).
    pub fn checkpoint_all(&mut self) -> Vec<Result<Written, ParquetSinkError>> {
        let out = self.checkpoint_where(Instant::now(), &|_| true);
        self.update_buffered();
        out
    }

    /// What a crash does to the open files (tests): buffered bytes never reach them, their locks
    /// go with the process; nothing is closed.
    #[cfg(test)]
    pub(crate) fn crash(self) {
        fn leave<R>(t: TableFiles<R>) {
            for (_, f) in t.files {
                let _ = f.writer.inner().get_ref().unlock();
                core::mem::forget(f);
            }
        }
        leave(self.readings);
        leave(self.intervals);
        leave(self.events);
    }

    fn checkpoint_where(
        &mut self,
        now: Instant,
        due: &dyn Fn(&Instant) -> bool,
    ) -> Vec<Result<Written, ParquetSinkError>> {
        let mut out = Vec::new();
        let stats = &self.stats.parquet;
        checkpoint_due(&mut self.readings, stats, now, due, &mut out);
        checkpoint_due(&mut self.intervals, stats, now, due, &mut out);
        checkpoint_due(&mut self.events, stats, now, due, &mut out);
        out
    }

    /// Closes every file (on shutdown).
    pub fn close_all(&mut self) -> Vec<Result<Written, ParquetSinkError>> {
        let mut out = Vec::new();
        let all = |_: &Instant| true;
        close_where(&mut self.readings, &self.stats.parquet, &all, &mut out);
        close_where(&mut self.intervals, &self.stats.parquet, &all, &mut out);
        close_where(&mut self.events, &self.stats.parquet, &all, &mut out);
        self.update_buffered();
        out
    }

    fn update_buffered(&self) {
        let pending = self
            .readings
            .files
            .values()
            .map(|f| f.pending.len())
            .sum::<usize>()
            + self
                .intervals
                .files
                .values()
                .map(|f| f.pending.len())
                .sum::<usize>()
            + self
                .events
                .files
                .values()
                .map(|f| f.pending.len())
                .sum::<usize>();
        self.sink_stats().rows_buffered.set(pending as u64);
    }
}

struct Ctx<'a> {
    root: &'a Path,
    instance: &'a str,
    props: &'a Arc<WriterProperties>,
    stats: &'a SinkStats,
}

const US_PER_DAY: i64 = 86_400_000_000;

/// `YYYY-MM-DD` (UTC) of a time in µs.
pub fn date_of(time_us: i64) -> String {
    let d = DateTime::from_unix_millis(time_us.div_euclid(1000));
    std::format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

fn stamp() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let d = DateTime::from_unix_millis(ms);
    std::format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        d.year,
        d.month,
        d.day,
        d.hour,
        d.minute,
        d.second
    )
}

fn push_rows<R: Table>(
    ctx: &Ctx<'_>,
    seq: &mut u64,
    t: &mut TableFiles<R>,
    rows: &[R],
    now: Instant,
    out: &mut Vec<Result<Written, ParquetSinkError>>,
) {
    for row in rows {
        let day = row.time_us().div_euclid(US_PER_DAY);
        if !t.files.contains_key(&day) {
            match open::<R>(ctx, seq, &t.schema, &date_of(row.time_us()), now) {
                Ok(f) => {
                    t.files.insert(day, f);
                }
                Err(e) => {
                    ctx.stats.write_errors.add(1);
                    ctx.stats.rows_lost.add(1);
                    out.push(Err(e));
                    continue;
                }
            }
        }
        let Some(f) = t.files.get_mut(&day) else {
            continue;
        };
        f.pending.push(row.clone());
        if f.pending.len() >= ROW_GROUP_ROWS {
            let full = f.rows + f.pending.len() as u64 >= MAX_FILE_ROWS;
            if let Err(e) = flush(f) {
                fail(t, day, ctx.stats, e, out);
            } else if full && let Some(f) = t.files.remove(&day) {
                out.push(finish(f, ctx.stats));
            }
        }
    }
}

/// Drops a failed file: its `.part` is removed, its rows counted as lost.
fn fail<R: Table>(
    t: &mut TableFiles<R>,
    day: i64,
    stats: &SinkStats,
    e: ParquetSinkError,
    out: &mut Vec<Result<Written, ParquetSinkError>>,
) {
    stats.write_errors.add(1);
    if let Some(f) = t.files.remove(&day) {
        stats.rows_lost.add(f.rows + f.pending.len() as u64);
        let _ = std::fs::remove_file(f.footer_path());
        let _ = std::fs::remove_file(&f.part);
    }
    out.push(Err(e));
}

fn open<R: Table>(
    ctx: &Ctx<'_>,
    seq: &mut u64,
    schema: &Arc<Type>,
    date: &str,
    now: Instant,
) -> Result<OpenFile<R>, ParquetSinkError> {
    let dir = ctx.root.join(R::NAME).join(std::format!("date={date}"));
    std::fs::create_dir_all(&dir).map_err(|source| ParquetSinkError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    *seq += 1;
    let name = std::format!("{}-{}-{}-{}.parquet", R::NAME, stamp(), ctx.instance, seq);
    let path = dir.join(&name);
    let part = dir.join(std::format!(".{name}.part"));
    let file = File::create(&part).map_err(|source| ParquetSinkError::Io {
        path: part.display().to_string(),
        source,
    })?;
    // Held until the file is closed (or the process dies): a collector starting in the same
    // directory sees that this `.part` is in use and leaves it alone ([`recover_parts`]). On a
    // file system without locks the lock fails and recovery is left to the operator.
    let _ = file.try_lock();
    let writer = SerializedFileWriter::new(
        BufWriter::with_capacity(1 << 20, file),
        schema.clone(),
        ctx.props.clone(),
    )
    .map_err(|source| ParquetSinkError::Parquet {
        path: part.display().to_string(),
        source,
    })?;
    Ok(OpenFile {
        writer,
        part,
        path,
        pending: Vec::new(),
        rows: 0,
        opened: now,
        checkpointed: (now, 0),
    })
}

/// Writes the pending rows as one row group.
fn flush<R: Table>(f: &mut OpenFile<R>) -> Result<(), ParquetSinkError> {
    if f.pending.is_empty() {
        return Ok(());
    }
    let err = |source| ParquetSinkError::Parquet {
        path: f.part.display().to_string(),
        source,
    };
    let mut rg = f.writer.next_row_group().map_err(err)?;
    let mut cols = Columns {
        rg: &mut rg,
        index: 0,
    };
    R::write(&f.pending, &mut cols).map_err(err)?;
    rg.close().map_err(err)?;
    f.rows += f.pending.len() as u64;
    f.pending.clear();
    Ok(())
}

/// Writes the last row group and the footer, syncs, renames `.part` to the final name.
fn finish<R: Table>(mut f: OpenFile<R>, stats: &SinkStats) -> Result<Written, ParquetSinkError> {
    let flushed = flush(&mut f);
    let OpenFile {
        writer,
        part,
        path,
        pending,
        rows,
        ..
    } = f;
    let result = flushed.and_then(|()| {
        let buf = writer
            .into_inner()
            .map_err(|source| ParquetSinkError::Parquet {
                path: part.display().to_string(),
                source,
            })?;
        let io = |source| ParquetSinkError::Io {
            path: part.display().to_string(),
            source,
        };
        let file = buf.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&part, &path).map_err(io)?;
        let _ = std::fs::remove_file(footer_path(&part));
        Ok(Written {
            path,
            table: R::NAME,
            rows,
            checkpoint: false,
        })
    });
    match &result {
        Ok(w) => {
            if let Some(c) = stats.rows_written.get(R::INDEX) {
                c.add(w.rows);
            }
        }
        Err(_) => {
            stats.write_errors.add(1);
            stats.rows_lost.add(rows + pending.len() as u64);
            let _ = std::fs::remove_file(footer_path(&part));
            let _ = std::fs::remove_file(&part);
        }
    }
    result
}

/// Checkpoints the open files of `t` whose last checkpoint time is `due` (see the module docs).
/// A file that fails is dropped like a failed write.
fn checkpoint_due<R: Table>(
    t: &mut TableFiles<R>,
    stats: &SinkStats,
    now: Instant,
    due: &dyn Fn(&Instant) -> bool,
    out: &mut Vec<Result<Written, ParquetSinkError>>,
) {
    let due: Vec<i64> = t
        .files
        .iter()
        .filter(|(_, f)| due(&f.checkpointed.0))
        .map(|(d, _)| *d)
        .collect();
    for day in due {
        let Some(f) = t.files.get_mut(&day) else {
            continue;
        };
        f.checkpointed.0 = now;
        match flush(f).and_then(|()| checkpoint(f, &t.schema)) {
            Ok(Some(w)) => out.push(Ok(w)),
            Ok(None) => {}
            Err(e) => fail(t, day, stats, e, out),
        }
    }
}

/// Makes the row groups written so far durable: syncs the `.part` file, then stores the footer
/// that closes it at this length next to it (written to a temporary name and renamed, so a crash
/// leaves the previous footer or this one, never half of one). `None` if nothing new was written.
fn checkpoint<R: Table>(
    f: &mut OpenFile<R>,
    schema: &Arc<Type>,
) -> Result<Option<Written>, ParquetSinkError> {
    if f.rows == f.checkpointed.1 {
        return Ok(None);
    }
    let part = f.part.display().to_string();
    let io = |source| ParquetSinkError::Io {
        path: part.clone(),
        source,
    };
    let pq = |source| ParquetSinkError::Parquet {
        path: part.clone(),
        source,
    };
    f.writer.flush().map_err(io)?;
    f.writer.inner().get_ref().sync_data().map_err(io)?;
    let len = f.writer.bytes_written() as u64;
    let props = f.writer.properties();
    let meta = ParquetMetaData::new(
        FileMetaData::new(
            props.writer_version().as_num(),
            i64::try_from(f.rows).unwrap_or(i64::MAX),
            Some(props.created_by().to_string()),
            None,
            Arc::new(SchemaDescriptor::new(schema.clone())),
            None,
        ),
        f.writer.flushed_row_groups().to_vec(),
    );
    let mut bytes = Vec::with_capacity(4096);
    bytes.extend_from_slice(FOOTER_MAGIC);
    bytes.extend_from_slice(&len.to_le_bytes());
    ParquetMetaDataWriter::new(&mut bytes, &meta)
        .finish()
        .map_err(pq)?;
    let footer = f.footer_path();
    let tmp = with_suffix(&footer, TMP_SUFFIX);
    std::fs::write(&tmp, &bytes).map_err(io)?;
    std::fs::rename(&tmp, &footer).map_err(io)?;
    f.checkpointed.1 = f.rows;
    Ok(Some(Written {
        path: f.part.clone(),
        table: R::NAME,
        rows: f.rows,
        checkpoint: true,
    }))
}

fn close_where<R: Table>(
    t: &mut TableFiles<R>,
    stats: &SinkStats,
    due: &dyn Fn(&Instant) -> bool,
    out: &mut Vec<Result<Written, ParquetSinkError>>,
) {
    let dates: Vec<i64> = t
        .files
        .iter()
        .filter(|(_, f)| due(&f.opened))
        .map(|(d, _)| *d)
        .collect();
    for d in dates {
        if let Some(f) = t.files.remove(&d) {
            if f.rows == 0 && f.pending.is_empty() {
                let _ = std::fs::remove_file(&f.part);
                continue;
            }
            out.push(finish(f, stats));
        }
    }
}

/// What became of a `.part` file a killed collector left.
#[derive(Debug, Clone, PartialEq)]
pub enum Leftover {
    /// Completed from its checkpoint and renamed to its final name.
    Recovered(Written),
    /// No usable checkpoint (killed before the first one, or the footer does not fit the data):
    /// left as it is for inspection; its rows are lost.
    Stale {
        /// The `.part` file.
        path: PathBuf,
        /// Why it could not be completed.
        reason: String,
    },
}

/// Completes the `.part` files under `root` that a killed collector left, from their last
/// checkpoint (see the module docs); footers without a `.part` are removed. A `.part` another
/// running collector holds (it locks its open files) is not a leftover and is not touched.
pub fn recover_parts(root: &Path) -> Vec<Leftover> {
    let hidden = hidden_files(root);
    let mut out = Vec::new();
    for part in hidden.iter().filter(|p| is_part(p)) {
        match recover(part) {
            Ok(Some(w)) => out.push(Leftover::Recovered(w)),
            Ok(None) => {}
            Err(reason) => out.push(Leftover::Stale {
                path: part.clone(),
                reason,
            }),
        }
    }
    for footer in &hidden {
        if part_of_footer(footer).is_some_and(|part| !part.exists()) {
            let _ = std::fs::remove_file(footer);
        }
    }
    out
}

/// One `.part` file completed from its footer (`None`: in use by a running collector), or why
/// not.
fn recover(part: &Path) -> Result<Option<Written>, String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use std::io::{Seek, SeekFrom, Write};
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(part)
    {
        Ok(f) => f,
        // another collector starting at the same time completed it first
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(std::format!("cannot tell whether it is in use: {e}"));
        }
    }
    let footer_file = footer_path(part);
    let bytes = std::fs::read(&footer_file).map_err(|e| std::format!("no checkpoint: {e}"))?;
    let (len, footer) = match (
        bytes.get(..8),
        bytes.get(8..16).and_then(|b| <[u8; 8]>::try_from(b).ok()),
        bytes.get(16..),
    ) {
        (Some(magic), Some(len), Some(footer)) if magic == FOOTER_MAGIC => {
            (u64::from_le_bytes(len), footer)
        }
        _ => return Err("the checkpoint is not a smartmeter footer".into()),
    };
    let name = part
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let Some(final_name) = name
        .strip_prefix('.')
        .and_then(|n| n.strip_suffix(".part"))
        .filter(|n| n.ends_with(".parquet"))
    else {
        return Err("not a .<name>.parquet.part file".into());
    };
    let have = file.metadata().map_err(|e| e.to_string())?.len();
    if have < len {
        return Err(std::format!(
            "{have} bytes on disk, the checkpoint describes {len}"
        ));
    }
    file.set_len(len).map_err(|e| e.to_string())?;
    file.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
    file.write_all(footer).map_err(|e| e.to_string())?;
    file.sync_all().map_err(|e| e.to_string())?;
    let reader = SerializedFileReader::new(file.try_clone().map_err(|e| e.to_string())?)
        .map_err(|e| std::format!("does not read: {e}"))?;
    let rows = u64::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0);
    let table = super::metrics::TABLES
        .into_iter()
        .find(|t| final_name.starts_with(&std::format!("{t}-")))
        .unwrap_or("readings");
    let path = part.with_file_name(final_name);
    std::fs::rename(part, &path).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&footer_file);
    Ok(Some(Written {
        path,
        table,
        rows,
        checkpoint: false,
    }))
}

/// Leftover `.part` files under `root` (from a collector that was killed). Returns their paths.
pub fn stale_parts(root: &Path) -> Vec<PathBuf> {
    hidden_files(root)
        .into_iter()
        .filter(|p| is_part(p))
        .collect()
}

fn is_part(path: &Path) -> bool {
    path.to_string_lossy().ends_with(".part")
}

/// The hidden files (`.<…>`: parts, footers) in the date directories of every table under `root`,
/// sorted.
fn hidden_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for table in super::metrics::TABLES {
        let Ok(dates) = std::fs::read_dir(root.join(table)) else {
            continue;
        };
        for d in dates.flatten() {
            let Ok(files) = std::fs::read_dir(d.path()) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') {
                    found.push(f.path());
                }
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests;
