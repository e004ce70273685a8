//! `Meter` and its sample streams: the crate's tokio [`Client`] on the shared runtime, driven from
//! Python without the GIL and interruptible by Ctrl-C.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use smartmeter::client::{Client, ClientError, ClientOptions, FrameSamples, SampleStream, Target};
use smartmeter::wire::command::{Command, Measures, SampleRequest, StreamType};
use tokio::sync::{mpsc, oneshot};

use crate::errors::{MeterError, client_error};
use crate::{SLICE, runtime, wait};

/// Blocks queued between the connection and a Python reader of a stream (about 1.3 s at
/// 32 kHz × 6 channels, on top of the client's own frame buffer); a reader slower than the meter
/// for longer makes the meter drop packets, which come back zero-filled and counted in `lost`.
const STREAM_QUEUE: usize = 1024;

/// Checks `rate` and `measures` as `smartmeter record` does, before the meter is contacted.
fn sample_request(rate: u32, measures: &str) -> PyResult<SampleRequest> {
    let parsed = Measures::parse(measures).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown measures `{measures}` (use v,i, v,i_L1, v,i_L2, v,i_L3, p,q or v,i_RMS)"
        ))
    })?;
    let max_rate = if parsed.is_derived() {
        SampleRequest::MAX_DERIVED_RATE_HZ
    } else {
        SampleRequest::MAX_RATE_HZ
    };
    if !(1..=max_rate).contains(&rate) {
        return Err(PyValueError::new_err(format!(
            "rate must be 1-{max_rate} Hz for these measures"
        )));
    }
    let mut req = SampleRequest::new(StreamType::Tcp);
    req.measures = parsed;
    req.rate_hz = rate;
    Ok(req)
}

fn seconds(what: &str, s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            PyValueError::new_err(format!("{what} must be a positive number of seconds"))
        })
}

/// A connection to one meter.
#[pyclass(module = "smartmeter._smartmeter", frozen)]
pub(crate) struct NativeMeter {
    host: String,
    client: Mutex<Option<Arc<Client>>>,
}

impl NativeMeter {
    fn client(&self) -> PyResult<Arc<Client>> {
        self.client
            .lock()
            .map_err(|_| PyRuntimeError::new_err("meter state poisoned"))?
            .clone()
            .ok_or_else(|| {
                MeterError::new_err(format!("meter `{}`: the connection is closed", self.host))
            })
    }
}

/// What `record` hands back: samples `(n, channels)`, channels, units, rate, start (µs), lost
/// packets, zero-filled samples, the meter's stop reply (JSON), and the exception that interrupted
/// the recording (`None` when it completed).
type RecordResult<'py> = (
    Bound<'py, PyAny>,
    Vec<String>,
    Vec<String>,
    u32,
    Option<i64>,
    u64,
    u64,
    Option<String>,
    Option<Py<PyAny>>,
);

/// What a recording task collected.
struct Recorded {
    samples: Vec<f32>,
    channels: Vec<String>,
    units: Vec<String>,
    rate_hz: u32,
    start_unix_us: Option<i64>,
    lost_packets: u64,
    zero_filled: u64,
    stop_json: Option<String>,
}

/// Samples until `total` frames are in, or `stop` fires; then stops the meter.
async fn record_task(
    client: Arc<Client>,
    req: SampleRequest,
    total: u64,
    mut stop: oneshot::Receiver<()>,
) -> Result<Recorded, ClientError> {
    let mut stream = client.sample(req).await?;
    // Lost packets become zeros, so sample k is always at startTs + k / rate (as the CLI writes).
    stream.set_zero_fill(true);
    let info = stream.info().clone();
    let ch = info.channel_count().max(1);
    let want = usize::try_from(total)
        .unwrap_or(usize::MAX)
        .saturating_mul(ch);
    let mut samples: Vec<f32> = Vec::with_capacity(want.min(1 << 26));
    let mut failure = None;
    while samples.len() < want {
        tokio::select! {
            biased;
            // A stop request, or its sender dropped (the reader is gone): stop either way.
            _ = &mut stop => break,
            block = stream.next() => match block {
                None => {
                    failure = Some(ClientError::Closed {
                        reason: Some("the session was stopped by someone else".into()),
                    });
                    break;
                }
                Some(Err(e)) => {
                    failure = Some(e);
                    break;
                }
                Some(Ok(block)) => {
                    let take = block.samples.len().min(want - samples.len());
                    samples.extend_from_slice(block.samples.get(..take).unwrap_or_default());
                }
            },
        }
    }
    let stats = stream.stats();
    if let Some(e) = failure {
        return Err(e);
    }
    let stop_json = stream.stop().await.ok().map(|r| r.json().to_string());
    Ok(Recorded {
        samples,
        channels: info.channels,
        units: info.units,
        rate_hz: info.rate_hz,
        start_unix_us: info.start_unix_us,
        lost_packets: stats.lost_packets,
        zero_filled: stats.zero_filled,
        stop_json,
    })
}

#[pymethods]
impl NativeMeter {
    /// Connects to `host` (`host[:port]`, a meter name, a serial device), within `timeout` seconds.
    #[new]
    #[pyo3(signature = (host, timeout=5.0, token=None))]
    fn new(py: Python<'_>, host: String, timeout: f64, token: Option<String>) -> PyResult<Self> {
        let target = Target::parse(&host).map_err(|e| client_error(&host, e))?;
        let t = seconds("timeout", timeout)?;
        let opts = ClientOptions {
            timeout: t,
            connect_timeout: t,
            token: token.filter(|t| !t.is_empty()),
            ..ClientOptions::default()
        };
        let client = wait(py, async move { Client::connect_with(&target, opts).await })?
            .map_err(|e| client_error(&host, e))?;
        Ok(NativeMeter {
            host,
            client: Mutex::new(Some(Arc::new(client))),
        })
    }

    /// The host as given.
    #[getter]
    fn host(&self) -> &str {
        &self.host
    }

    /// The meter's name from the `info` it sent when the connection opened.
    #[getter]
    fn name(&self) -> PyResult<String> {
        Ok(self.client()?.connect_info().name.clone())
    }

    /// True until `close`.
    #[getter]
    fn is_open(&self) -> bool {
        self.client.lock().map(|c| c.is_some()).unwrap_or(false)
    }

    /// Sends one command line (`cmd_name` is the command's name, for the error message) and returns
    /// the JSON of its last reply; an `"error":true` reply raises.
    fn request(&self, py: Python<'_>, line: String, cmd_name: String) -> PyResult<String> {
        if matches!(Command::parse(line.as_bytes()), Ok(Command::Sample(_))) {
            return Err(PyValueError::new_err(
                "`sample` starts a data stream: use Meter.record() or Meter.stream()",
            ));
        }
        let client = self.client()?;
        let replies = wait(py, async move { client.request_raw(&line).await })?
            .map_err(|e| client_error(&self.host, e))?;
        let last = replies.into_iter().last().ok_or_else(|| {
            client_error(
                &self.host,
                ClientError::Protocol(format!("no reply to `{cmd_name}`")),
            )
        })?;
        let sent = last.cmd().unwrap_or(&cmd_name).to_string();
        let last = last.check(&sent).map_err(|e| client_error(&self.host, e))?;
        Ok(last.json().to_string())
    }

    /// Records `seconds` at `rate` Hz (see `smartmeter.Meter.record`).
    fn record<'py>(
        &self,
        py: Python<'py>,
        seconds: f64,
        rate: u32,
        measures: &str,
    ) -> PyResult<RecordResult<'py>> {
        let req = sample_request(rate, measures)?;
        let total = (f64::from(rate) * seconds).round();
        if !total.is_finite() || total < 1.0 {
            return Err(PyValueError::new_err(
                "rate × seconds is less than one sample",
            ));
        }
        let client = self.client()?;
        let rt = runtime()?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let mut stop_tx = Some(stop_tx);
        let mut handle = rt.spawn(record_task(client, req, total as u64, stop_rx));
        let mut interrupted: Option<PyErr> = None;
        let done = loop {
            match py
                .detach(|| rt.block_on(async { tokio::time::timeout(SLICE, &mut handle).await }))
            {
                Ok(done) => break done,
                Err(_) => {
                    if interrupted.is_none()
                        && let Err(e) = py.check_signals()
                    {
                        // Stop the meter cleanly, keep what was recorded, then re-raise.
                        interrupted = Some(e);
                        if let Some(tx) = stop_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                }
            }
        };
        let rec = match done {
            Err(e) => return Err(PyRuntimeError::new_err(format!("internal error: {e}"))),
            Ok(Err(e)) => return Err(interrupted.unwrap_or_else(|| client_error(&self.host, e))),
            Ok(Ok(rec)) => rec,
        };
        let ch = rec.channels.len().max(1);
        let frames = rec.samples.len() / ch;
        let samples = PyArray1::from_vec(py, rec.samples).reshape([frames, ch])?;
        Ok((
            samples.into_any(),
            rec.channels,
            rec.units,
            rec.rate_hz,
            rec.start_unix_us,
            rec.lost_packets,
            rec.zero_filled,
            rec.stop_json,
            interrupted.map(|e| e.into_value(py).into_any()),
        ))
    }

    /// Starts a sampling session read block by block (see `smartmeter.Meter.stream`).
    fn stream(
        &self,
        py: Python<'_>,
        rate: u32,
        measures: &str,
        block: usize,
    ) -> PyResult<NativeStream> {
        let req = sample_request(rate, measures)?;
        if block == 0 {
            return Err(PyValueError::new_err("block must be at least 1 sample"));
        }
        let client = self.client()?;
        let stream = wait(py, async move {
            let mut s = client.sample(req).await?;
            s.set_zero_fill(true);
            Ok::<_, ClientError>(s)
        })?
        .map_err(|e| client_error(&self.host, e))?;
        let info = stream.info().clone();
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = runtime()?.spawn(pump(stream, tx, stop_rx));
        Ok(NativeStream {
            host: self.host.clone(),
            channels: info.channels,
            units: info.units,
            rate: info.rate_hz,
            start_us: info.start_unix_us,
            block,
            state: Mutex::new(StreamState {
                rx: Some(rx),
                pending: Vec::new(),
                stop: Some(stop_tx),
                task: Some(task),
            }),
            lost: AtomicU64::new(0),
            zero_filled: AtomicU64::new(0),
            stop_json: Mutex::new(None),
        })
    }

    /// Closes the connection (a session it runs ends with it). Idempotent.
    fn close(&self) {
        if let Ok(mut c) = self.client.lock() {
            c.take();
        }
    }
}

/// Moves a session's blocks to the Python reader until it stops; then stops the meter and returns
/// its stop reply.
async fn pump(
    mut stream: SampleStream,
    tx: mpsc::Sender<Result<FrameSamples, ClientError>>,
    mut stop: oneshot::Receiver<()>,
) -> Option<String> {
    loop {
        tokio::select! {
            biased;
            // A stop request, or its sender dropped (the reader is gone): stop either way.
            _ = &mut stop => break,
            block = stream.next() => match block {
                None => return None,
                Some(b) => {
                    let failed = b.is_err();
                    if tx.send(b).await.is_err() {
                        break;
                    }
                    if failed {
                        return None;
                    }
                }
            },
        }
    }
    stream.stop().await.ok().map(|r| r.json().to_string())
}

/// The reader's side of a stream. Locked for a whole `next_block`/`close` (which wait without the
/// GIL), so the counters other threads may read meanwhile live outside it.
struct StreamState {
    rx: Option<mpsc::Receiver<Result<FrameSamples, ClientError>>>,
    /// Samples received but not yet handed out (less than one block).
    pending: Vec<f32>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Option<String>>>,
}

/// The blocks of one sampling session.
#[pyclass(module = "smartmeter._smartmeter", frozen)]
pub(crate) struct NativeStream {
    host: String,
    channels: Vec<String>,
    units: Vec<String>,
    rate: u32,
    start_us: Option<i64>,
    block: usize,
    state: Mutex<StreamState>,
    lost: AtomicU64,
    zero_filled: AtomicU64,
    stop_json: Mutex<Option<String>>,
}

#[pymethods]
impl NativeStream {
    #[getter]
    fn channels(&self) -> Vec<String> {
        self.channels.clone()
    }
    #[getter]
    fn units(&self) -> Vec<String> {
        self.units.clone()
    }
    #[getter]
    fn rate(&self) -> u32 {
        self.rate
    }
    #[getter]
    fn start_us(&self) -> Option<i64> {
        self.start_us
    }
    /// Packets lost so far (their samples are zeros).
    #[getter]
    fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
    /// Samples (per channel) zero-filled so far.
    #[getter]
    fn zero_filled(&self) -> u64 {
        self.zero_filled.load(Ordering::Relaxed)
    }
    /// The meter's stop reply (JSON) once the stream is closed.
    #[getter]
    fn stop_reply(&self) -> Option<String> {
        self.stop_json.lock().ok().and_then(|s| s.clone())
    }

    /// The next block `(block, channels)`; a shorter last block when the session ended; `None`
    /// after that.
    fn next_block<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let mut guard = self.state.try_lock().map_err(|_| {
            PyRuntimeError::new_err("this stream is being read or closed by another thread")
        })?;
        let st = &mut *guard;
        let ch = self.channels.len().max(1);
        let want = self.block * ch;
        while let Some(rx) = st.rx.as_mut() {
            if st.pending.len() >= want {
                break;
            }
            let rt = runtime()?;
            let msg = match py
                .detach(|| rt.block_on(async { tokio::time::timeout(SLICE, rx.recv()).await }))
            {
                Ok(msg) => msg,
                Err(_) => {
                    py.check_signals()?;
                    continue;
                }
            };
            match msg {
                Some(Ok(b)) => {
                    self.lost
                        .fetch_add(u64::from(b.lost_packets), Ordering::Relaxed);
                    self.zero_filled
                        .fetch_add(b.zero_filled as u64, Ordering::Relaxed);
                    st.pending.extend_from_slice(&b.samples);
                }
                Some(Err(e)) => {
                    st.rx = None;
                    return Err(client_error(&self.host, e));
                }
                None => st.rx = None,
            }
        }
        if st.pending.is_empty() {
            return Ok(None);
        }
        let take = want.min(st.pending.len() - st.pending.len() % ch);
        let rest = st.pending.split_off(take);
        let out = std::mem::replace(&mut st.pending, rest);
        let frames = out.len() / ch;
        Ok(Some(
            PyArray1::from_vec(py, out)
                .reshape([frames, ch])?
                .into_any(),
        ))
    }

    /// Stops the session (the meter stops sampling) and waits for the meter's stop reply.
    /// Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let mut guard = self
            .state
            .try_lock()
            .map_err(|_| PyRuntimeError::new_err("this stream is being read by another thread"))?;
        if let Some(tx) = guard.stop.take() {
            let _ = tx.send(());
        }
        guard.rx = None;
        guard.pending.clear();
        if let Some(task) = guard.task.take() {
            let reply = wait(py, task)?.ok().flatten();
            if let Ok(mut s) = self.stop_json.lock() {
                *s = reply;
            }
        }
        Ok(())
    }
}
