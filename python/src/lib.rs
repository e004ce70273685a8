//! `smartmeter._smartmeter`: the native half of the `smartmeter` Python package.
//!
//! Everything here is a thin binding over the `smartmeter` crate (the tokio client, the recording
//! writers and readers, the analysis pipelines); the public, documented Python API lives in
//! `python/smartmeter/` and calls these functions.
//!
//! Two rules hold for every function that can take long:
//! - the GIL is released while Rust works or waits ([`Python::detach`]), so other Python threads
//!   run meanwhile;
//! - waiting on the meter happens in slices of [`SLICE`], between which pending signals are handled
//!   ([`Python::check_signals`]), so Ctrl-C interrupts a call promptly.

use std::sync::OnceLock;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

mod dsp;
mod errors;
mod files;
mod meter;

/// How long a blocking call waits without the GIL before it looks at pending signals.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// The runtime every meter connection of the process runs on: two worker threads keep reading
/// the sockets while Python code runs (so a `stream` loses nothing between two `next` calls).
pub(crate) fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("smartmeter-io")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| PyRuntimeError::new_err(format!("cannot start the I/O runtime: {e}")))
}

/// Runs `fut` on the runtime and waits for it without the GIL, handling signals every [`SLICE`].
/// A signal handler's exception (`KeyboardInterrupt`) aborts the task and is returned.
pub(crate) fn wait<T: Send + 'static>(
    py: Python<'_>,
    fut: impl Future<Output = T> + Send + 'static,
) -> PyResult<T> {
    let rt = runtime()?;
    let mut handle = rt.spawn(fut);
    loop {
        let slice =
            py.detach(|| rt.block_on(async { tokio::time::timeout(SLICE, &mut handle).await }));
        match slice {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => return Err(PyRuntimeError::new_err(format!("internal error: {e}"))),
            Err(_) => {
                if let Err(e) = py.check_signals() {
                    handle.abort();
                    return Err(e);
                }
            }
        }
    }
}

#[pymodule]
fn _smartmeter(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<meter::NativeMeter>()?;
    m.add_class::<meter::NativeStream>()?;
    m.add_function(wrap_pyfunction!(files::read_recording, m)?)?;
    m.add_function(wrap_pyfunction!(files::write_recording, m)?)?;
    m.add_function(wrap_pyfunction!(dsp::analyze, m)?)?;
    m.add_function(wrap_pyfunction!(dsp::power_quality, m)?)?;
    m.add_function(wrap_pyfunction!(dsp::default_channels, m)?)?;
    Ok(())
}
