//! Recording files through the crate's own writer and reader, so a file is byte for byte what
//! `smartmeter record` writes, and reads back as `smartmeter analyze` reads it.

use std::path::PathBuf;

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use smartmeter::client::recording::{
    PendingRecording, ReadHints, RecordingMeta, RecordingReader, RecordingStatus, part_path,
};

use crate::errors::recording_error;

/// What `read_recording` returns: samples `(n, channels)`, channel names, units, rate (Hz),
/// start (µs since the Unix epoch, if known), lost packets, meter name, status, truncated.
type ReadResult<'py> = (
    Bound<'py, PyAny>,
    Vec<String>,
    Vec<String>,
    u32,
    Option<i64>,
    u64,
    Option<String>,
    &'static str,
    bool,
);

/// Reads a whole recording (`.wav`, `.csv`, `.f32`) into memory, without the GIL.
#[pyfunction]
#[pyo3(signature = (path, rate=None, channels=None))]
pub(crate) fn read_recording<'py>(
    py: Python<'py>,
    path: PathBuf,
    rate: Option<u32>,
    channels: Option<Vec<String>>,
) -> PyResult<ReadResult<'py>> {
    let shown = path.display().to_string();
    let hints = ReadHints {
        rate_hz: rate,
        channels,
    };
    let read = py.detach(|| {
        let mut reader = RecordingReader::open(&path, &hints)?;
        let meta = reader.meta().clone();
        let mut all: Vec<f32> = Vec::new();
        let mut block: Vec<f32> = Vec::new();
        while reader.read_frames_direct(&mut block, 1 << 16)? > 0 {
            all.extend_from_slice(&block);
        }
        Ok::<_, smartmeter::client::recording::RecordingError>((meta, all))
    });
    let (meta, all) = read.map_err(|e| recording_error(&shown, e))?;
    let ch = meta.channels.len().max(1);
    let frames = all.len() / ch;
    let samples = PyArray1::from_vec(py, all).reshape([frames, ch])?;
    Ok((
        samples.into_any(),
        meta.channels,
        meta.units,
        meta.rate_hz,
        meta.start_unix_us,
        meta.lost_packets,
        meta.name,
        meta.status.as_str(),
        meta.truncated,
    ))
}

/// Writes a recording with the crate's crash-safe writer (`<path>.part`, renamed when done).
#[pyfunction]
#[pyo3(signature = (path, samples, channels, units, rate, start_us=None, lost=0, name=None, interrupted=false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_recording(
    py: Python<'_>,
    path: PathBuf,
    samples: PyReadonlyArray2<'_, f32>,
    channels: Vec<String>,
    units: Vec<String>,
    rate: u32,
    start_us: Option<i64>,
    lost: u64,
    name: Option<String>,
    interrupted: bool,
) -> PyResult<PathBuf> {
    let shown = path.display().to_string();
    let cols = samples.shape().get(1).copied().unwrap_or(0);
    if cols != channels.len() {
        return Err(PyValueError::new_err(format!(
            "samples have {cols} columns but {} channel names were given",
            channels.len()
        )));
    }
    let data = samples.as_slice().map_err(|_| {
        PyValueError::new_err("samples must be a C-contiguous float32 array (n, channels)")
    })?;
    let mut meta = RecordingMeta::new(rate, channels, units);
    meta.start_unix_us = start_us;
    meta.name = name.filter(|n| !n.is_empty());
    let status = if interrupted {
        RecordingStatus::Interrupted
    } else {
        RecordingStatus::Complete
    };
    let ch = meta.channels.len().max(1);
    py.detach(|| {
        let written = (|| {
            let mut writer = PendingRecording::create(&path)?.start(meta)?;
            // In blocks: the writer converts each call's samples in one buffer.
            for block in data.chunks(ch << 16) {
                writer.write(block)?;
            }
            writer.set_lost_packets(lost);
            writer.finish(status)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(part_path(&path));
        }
        written
    })
    .map_err(|e| recording_error(&shown, e))
}
