//! `analyze` and `power_quality` over a numpy array: the crate's in-memory pipelines
//! (`analyze_samples`, `analyze_pq_samples`), which give exactly the rows and objects
//! `smartmeter analyze [--pq] --json` gives for a file holding the same samples.
//!
//! The array is read in place (C-contiguous float32, checked here; the Python layer converts
//! anything else with one documented copy), without the GIL.

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use smartmeter::client::analyze::pq::{PqAnalyzeOptions, PqItem, analyze_pq_samples};
use smartmeter::client::analyze::{AnalyzeOptions, WindowResult, analyze_samples};
use smartmeter::client::recording::{RecordingMeta, channel_names};
use smartmeter::wire::pq::PqInterval;

use crate::errors::{analyze_error, pq_error};

/// The channel names a recording of `columns` columns has when none are given: the six waveforms,
/// one phase's `v,i`, three voltages, or one voltage.
#[pyfunction]
pub(crate) fn default_channels(columns: usize) -> PyResult<Vec<String>> {
    let names: Vec<String> = match columns {
        6 => channel_names("").unwrap_or_default(),
        3 => ["v_l1", "v_l2", "v_l3"].map(String::from).to_vec(),
        2 => ["v_l1", "i_l1"].map(String::from).to_vec(),
        1 => vec!["v_l1".to_string()],
        n => {
            return Err(PyValueError::new_err(format!(
                "{n} columns: give the channel names (e.g. channels=[\"v_l1\", \"i_l1\", ...])"
            )));
        }
    };
    Ok(names)
}

/// The meta of an in-memory recording, checked against the array's shape.
fn meta_for(
    samples: &PyReadonlyArray2<'_, f32>,
    rate: u32,
    channels: Option<Vec<String>>,
    units: Option<Vec<String>>,
    start_us: Option<i64>,
) -> PyResult<RecordingMeta> {
    let cols = samples.shape().get(1).copied().unwrap_or(0);
    let channels = match channels {
        Some(c) => c,
        None => default_channels(cols)?,
    };
    if channels.len() != cols {
        return Err(PyValueError::new_err(format!(
            "samples have {cols} columns but {} channel names were given",
            channels.len()
        )));
    }
    if rate == 0 {
        return Err(PyValueError::new_err("rate must be at least 1 Hz"));
    }
    let mut meta = RecordingMeta::new(rate, channels, units.unwrap_or_default());
    meta.start_unix_us = start_us;
    Ok(meta)
}

fn slice<'a>(samples: &'a PyReadonlyArray2<'_, f32>) -> PyResult<&'a [f32]> {
    samples.as_slice().map_err(|_| {
        PyValueError::new_err("samples must be a C-contiguous float32 array (n, channels)")
    })
}

/// Columns of the analysis, one value per window (per phase for the `(windows, 3)` ones).
#[derive(Default)]
struct Columns {
    t: Vec<f64>,
    cycles: Vec<u32>,
    /// voltage, current, activePower, reactivePower, apparentPower, frequency, powerFactor
    phases: [Vec<f32>; 7],
}

const PHASE_KEYS: [&str; 7] = [
    "voltage",
    "current",
    "activePower",
    "reactivePower",
    "apparentPower",
    "frequency",
    "powerFactor",
];

impl Columns {
    fn push(&mut self, w: &WindowResult) {
        // As `--json` prints it: t rounded to the µs, the rest as the estimator's f32.
        self.t.push(if w.t_s.is_finite() {
            (w.t_s * 1e6).round() / 1e6
        } else {
            f64::NAN
        });
        self.cycles.push(w.cycles);
        let arrays = [
            &w.voltage_v,
            &w.current_ma,
            &w.active_w,
            &w.reactive_var,
            &w.apparent_va,
            &w.frequency_hz,
            &w.power_factor,
        ];
        for (col, a) in self.phases.iter_mut().zip(arrays) {
            col.extend(a.iter().map(|v| match v {
                Some(x) if x.is_finite() => *x as f32,
                _ => f32::NAN,
            }));
        }
    }
}

/// `smartmeter analyze --json` over an array: a dict of numpy arrays.
#[pyfunction]
#[pyo3(signature = (samples, rate, channels=None, units=None, start_us=None, nominal=None))]
pub(crate) fn analyze<'py>(
    py: Python<'py>,
    samples: PyReadonlyArray2<'py, f32>,
    rate: u32,
    channels: Option<Vec<String>>,
    units: Option<Vec<String>>,
    start_us: Option<i64>,
    nominal: Option<u32>,
) -> PyResult<Bound<'py, PyDict>> {
    let meta = meta_for(&samples, rate, channels, units, start_us)?;
    let data = slice(&samples)?;
    let opts = AnalyzeOptions {
        nominal_hz: nominal,
        ..AnalyzeOptions::default()
    };
    let mut cols = Columns::default();
    py.detach(|| analyze_samples(&meta, data, &opts, |w| cols.push(w)))
        .map_err(analyze_error)?;
    let n = cols.t.len();
    let out = PyDict::new(py);
    out.set_item("t", PyArray1::from_vec(py, cols.t))?;
    out.set_item("cycles", PyArray1::from_vec(py, cols.cycles))?;
    for (key, col) in PHASE_KEYS.iter().zip(cols.phases) {
        out.set_item(*key, PyArray1::from_vec(py, col).reshape([n, 3])?)?;
    }
    Ok(out)
}

/// `smartmeter analyze --pq --json` over an array: the aggregates' and the events' JSON texts.
#[pyfunction]
#[pyo3(signature = (samples, rate, channels=None, units=None, start_us=None, interval="10min", udin=None, nominal=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn power_quality(
    py: Python<'_>,
    samples: PyReadonlyArray2<'_, f32>,
    rate: u32,
    channels: Option<Vec<String>>,
    units: Option<Vec<String>>,
    start_us: Option<i64>,
    interval: &str,
    udin: Option<f32>,
    nominal: Option<u32>,
) -> PyResult<(Vec<String>, Vec<String>)> {
    let meta = meta_for(&samples, rate, channels, units, start_us)?;
    let data = slice(&samples)?;
    let interval = PqInterval::parse(interval).ok_or_else(|| {
        PyValueError::new_err(format!(
            "interval `{interval}`: expected 200ms, 3s, 10min or 2h"
        ))
    })?;
    let opts = PqAnalyzeOptions {
        interval,
        udin_v: udin,
        nominal_hz: nominal,
        ..PqAnalyzeOptions::default()
    };
    let (mut aggregates, mut events) = (Vec::new(), Vec::new());
    py.detach(|| {
        analyze_pq_samples(&meta, data, &opts, |item| match &item {
            PqItem::Aggregate(_) => aggregates.push(item.to_json()),
            PqItem::Event(_) => events.push(item.to_json()),
        })
    })
    .map_err(pq_error)?;
    Ok((aggregates, events))
}
