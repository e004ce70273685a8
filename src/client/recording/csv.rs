//! `.csv`: a header `t,<channel>,...`, then one row per sample, `t` in Unix seconds with µs
//! resolution; the rate is read back from the first rows' timestamps.

use std::format;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::string::{String, ToString};
use std::vec::Vec;

use super::model::{ReadHints, RecordingError, RecordingMeta, RecordingStatus, parse_unix_ts_us};

fn parse_csv_row(line: &str, ch: usize, line_no: u64) -> Result<(f64, Vec<f32>), RecordingError> {
    let bad = |reason: String| RecordingError::Csv {
        line: line_no,
        reason,
    };
    let mut fields = line.trim_end().split(',');
    let t: f64 = fields
        .next()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| bad("first column must be the timestamp t".into()))?;
    let mut values = Vec::with_capacity(ch);
    for (i, f) in fields.enumerate() {
        let v: f32 = f
            .trim()
            .parse()
            .map_err(|_| bad(format!("column {} is not a number: `{}`", i + 2, f.trim())))?;
        values.push(v);
    }
    if values.len() != ch {
        return Err(bad(format!(
            "{} values, the header names {ch} channels",
            values.len()
        )));
    }
    Ok((t, values))
}

/// The header line `t,<channel>,...`.
pub(super) fn write_header(
    out: &mut impl Write,
    meta: &RecordingMeta,
) -> Result<(), RecordingError> {
    let mut line = String::from("t");
    for c in &meta.channels {
        line.push(',');
        line.push_str(c);
    }
    line.push('\n');
    out.write_all(line.as_bytes())?;
    Ok(())
}

/// One row per frame of `interleaved`, the first being frame number `first` of a recording that
/// started at `start_us` (the time of frame `k` is `start + k / rate`, rounded to the µs).
pub(super) fn write_rows(
    out: &mut impl Write,
    line: &mut String,
    interleaved: &[f32],
    channels: usize,
    rate_hz: u32,
    start_us: i64,
    first: u64,
) -> Result<(), RecordingError> {
    use std::fmt::Write as _;
    let rate = i64::from(rate_hz);
    for (k, frame) in interleaved.chunks_exact(channels).enumerate() {
        let idx = first as i64 + k as i64;
        let t = start_us + (idx * 1_000_000 + rate / 2) / rate;
        line.clear();
        let _ = write!(
            line,
            "{}.{:06}",
            t.div_euclid(1_000_000),
            t.rem_euclid(1_000_000)
        );
        for v in frame {
            let _ = write!(line, ",{v}");
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// The rows of a CSV recording still to read.
#[derive(Debug)]
pub(super) struct CsvSource {
    file: BufReader<File>,
    line: String,
    line_no: u64,
    /// Rows read ahead while opening (for the rate).
    pending: Option<Vec<f32>>,
}

impl CsvSource {
    /// Replaces nothing: appends up to `max_frames` frames of `ch` values to `out`, scaled per
    /// channel; returns the number of frames.
    pub(super) fn read(
        &mut self,
        out: &mut Vec<f32>,
        ch: usize,
        max_frames: usize,
        scale: Option<&[f32; 6]>,
    ) -> Result<usize, RecordingError> {
        let mut frames = 0;
        if let Some(ahead) = self.pending.take() {
            frames += ahead.len() / ch;
            out.extend_from_slice(&ahead);
        }
        while frames < max_frames {
            self.line.clear();
            if read_line(&mut self.file, &mut self.line, self.line_no + 1)? == 0 {
                break;
            }
            self.line_no += 1;
            if self.line.trim().is_empty() {
                continue;
            }
            let row = parse_csv_row(&self.line, ch, self.line_no)?;
            out.extend(row.1);
            frames += 1;
        }
        if let Some(scale) = scale {
            for (x, k) in out.iter_mut().zip(scale.iter().take(ch.min(6)).cycle()) {
                *x *= k;
            }
        }
        Ok(frames)
    }
}

/// The longest line read (header or row), bytes: a file that is not a recording (one huge line)
/// is refused instead of read into memory whole.
pub const MAX_CSV_LINE: usize = 64 * 1024;

/// Values of the first rows held while the rate is derived from their timestamps, at most.
const LOOK_AHEAD_VALUES: usize = 256 * 1024;

/// One line into `buf` (appended), at most [`MAX_CSV_LINE`] bytes; 0 at the end of the file.
fn read_line(
    file: &mut BufReader<File>,
    buf: &mut String,
    line_no: u64,
) -> Result<usize, RecordingError> {
    let n = std::io::Read::take(file, MAX_CSV_LINE as u64 + 1).read_line(buf)?;
    if n > MAX_CSV_LINE {
        return Err(RecordingError::Csv {
            line: line_no,
            reason: format!("longer than {} KiB", MAX_CSV_LINE / 1024),
        });
    }
    Ok(n)
}

/// Reads the header and the first rows (for the rate) of a CSV recording.
pub(super) fn open(
    mut file: BufReader<File>,
    hints: &ReadHints,
) -> Result<(RecordingMeta, CsvSource), RecordingError> {
    let mut header = String::new();
    read_line(&mut file, &mut header, 1)?;
    let mut cols = header.trim_end().split(',');
    if cols.next().map(str::trim) != Some("t") {
        return Err(RecordingError::Csv {
            line: 1,
            reason: "header must start with `t`".into(),
        });
    }
    let channels: Vec<String> = cols.map(|c| c.trim().to_string()).collect();
    if channels.is_empty() {
        return Err(RecordingError::Csv {
            line: 1,
            reason: "header names no channel".into(),
        });
    }
    // Derive the rate from the first rows (bounded look-ahead): timestamps have µs resolution, so
    // one interval alone cannot tell 3000 Hz from 3003 Hz.
    let mut pending = Vec::new();
    let mut first_last: Option<(i64, i64)> = None;
    let mut rows = 0u64;
    let mut line = String::new();
    let mut line_no = 1u64;
    while rows < 1024 && pending.len() < LOOK_AHEAD_VALUES {
        line.clear();
        if read_line(&mut file, &mut line, line_no + 1)? == 0 {
            break;
        }
        line_no += 1;
        if line.trim().is_empty() {
            continue;
        }
        let (_, values) = parse_csv_row(&line, channels.len(), line_no)?;
        let t_us =
            line.split(',')
                .next()
                .and_then(parse_unix_ts_us)
                .ok_or(RecordingError::Csv {
                    line: line_no,
                    reason: "bad timestamp".into(),
                })?;
        first_last = Some((first_last.map_or(t_us, |(f, _)| f), t_us));
        pending.extend(values);
        rows += 1;
    }
    let derived = match first_last {
        Some((f, l)) if l > f => Some(((rows - 1) as f64 * 1e6 / (l - f) as f64).round() as u32),
        _ => None,
    };
    let rate_hz = hints.rate_hz.or(derived).unwrap_or(8000).max(1);
    let mut meta = RecordingMeta::new(rate_hz, channels, Vec::new());
    meta.status = RecordingStatus::Complete;
    meta.start_unix_us = first_last.map(|(f, _)| f);
    let pending = (!pending.is_empty()).then_some(pending);
    Ok((
        meta,
        CsvSource {
            file,
            line: String::new(),
            line_no: 3,
            pending,
        },
    ))
}
