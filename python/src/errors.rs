//! Rust errors as Python exceptions. The meter's exception classes are defined in Python
//! (`smartmeter/_errors.py`, so they can also derive from `ConnectionError`, `TimeoutError`) and
//! imported here.

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use smartmeter::client::ClientError;
use smartmeter::client::analyze::AnalyzeError;
use smartmeter::client::analyze::pq::PqAnalyzeError;
use smartmeter::client::recording::RecordingError;

pyo3::import_exception!(smartmeter._errors, MeterError);
pyo3::import_exception!(smartmeter._errors, UnreachableError);
pyo3::import_exception!(smartmeter._errors, ConnectionLostError);
pyo3::import_exception!(smartmeter._errors, MeterTimeoutError);
pyo3::import_exception!(smartmeter._errors, RefusedError);
pyo3::import_exception!(smartmeter._errors, BusyError);
pyo3::import_exception!(smartmeter._errors, ProtocolError);

/// A client error of the meter at `host` (as the caller gave it) as the matching exception; the
/// message names the host.
pub(crate) fn client_error(host: &str, e: ClientError) -> PyErr {
    let text = e.to_string();
    match e {
        ClientError::InvalidHost { .. } | ClientError::InvalidCommand(_) => {
            PyValueError::new_err(text)
        }
        ClientError::Resolve { .. } | ClientError::Connect { .. } => {
            UnreachableError::new_err(format!("cannot reach the meter `{host}`: {text}"))
        }
        ClientError::Io(_) | ClientError::Closed { .. } | ClientError::ConnectionLost { .. } => {
            ConnectionLostError::new_err(format!("meter `{host}`: {text}"))
        }
        ClientError::Timeout { .. } => {
            MeterTimeoutError::new_err(format!("meter `{host}`: {text}"))
        }
        ClientError::Busy { cmd } => BusyError::new_err((format!("meter `{host}`: {text}"), cmd)),
        ClientError::Refused { cmd, msg } => {
            RefusedError::new_err((format!("meter `{host}`: {text}"), cmd, msg))
        }
        ClientError::Protocol(_) => ProtocolError::new_err(format!("meter `{host}`: {text}")),
        _ => MeterError::new_err(format!("meter `{host}`: {text}")),
    }
}

/// A recording file error: `OSError` for the file system, `ValueError` for contents and arguments.
pub(crate) fn recording_error(path: &str, e: RecordingError) -> PyErr {
    match e {
        RecordingError::Io(io) => {
            let errno = io.raw_os_error();
            let msg = format!("{path}: {io}");
            match errno {
                Some(n) => PyOSError::new_err((n, msg)),
                None => PyOSError::new_err(msg),
            }
        }
        other => PyValueError::new_err(format!("{path}: {other}")),
    }
}

pub(crate) fn analyze_error(e: AnalyzeError) -> PyErr {
    match e {
        AnalyzeError::Recording(r) => recording_error("samples", r),
        other => PyValueError::new_err(other.to_string()),
    }
}

pub(crate) fn pq_error(e: PqAnalyzeError) -> PyErr {
    match e {
        PqAnalyzeError::Recording(r) => recording_error("samples", r),
        other => PyValueError::new_err(other.to_string()),
    }
}
