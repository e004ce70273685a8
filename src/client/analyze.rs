//! `analyze`: the DSP pipeline ([`crate::dsp::Estimator`]) over a recording file, window by window.

use std::path::Path;
use std::string::{String, ToString};
use std::vec::Vec;

use crate::dsp::estimator::{Estimator, EstimatorConfig, PhaseMode, Window};

use super::recording::{ReadHints, RecordingError, RecordingMeta, RecordingReader};

/// Settings of an analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzeOptions {
    /// For files that do not describe themselves (`.f32`, short `.csv`).
    pub hints: ReadHints,
    /// Nominal line frequency, 50 or 60 Hz.
    pub nominal_hz: u32,
    /// Frames read per block (bounded memory: `block_frames × channels × 8` bytes).
    pub block_frames: usize,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            hints: ReadHints::default(),
            nominal_hz: 50,
            block_frames: 4096,
        }
    }
}

/// The results of one window, in the protocol's units (current in mA like `getCurrent`).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowResult {
    /// Window start: Unix seconds when the recording has a `startTs`, else seconds from its start.
    pub t_s: f64,
    /// RMS voltage per phase, V.
    pub voltage_v: [Option<f64>; 3],
    /// RMS current per phase, mA.
    pub current_ma: [Option<f64>; 3],
    /// Active power per phase, W.
    pub active_w: [Option<f64>; 3],
    /// Fundamental reactive power per phase, var.
    pub reactive_var: [Option<f64>; 3],
    /// Apparent power per phase, VA.
    pub apparent_va: [Option<f64>; 3],
    /// Power factor per phase.
    pub power_factor: [Option<f64>; 3],
    /// Line frequency (measured on L1, the same for every phase), Hz.
    pub frequency_hz: [Option<f64>; 3],
    /// Window length, s.
    pub duration_s: f64,
}

impl WindowResult {
    /// The `--json` form: keys `t`, `voltage`, `current`, `activePower`, `reactivePower`,
    /// `apparentPower`, `frequency` (each a per-phase array, `null` where undefined), plus `powerFactor`.
    pub fn to_json(&self) -> String {
        use core::fmt::Write as _;
        let mut o = String::with_capacity(400);
        let _ = write!(o, "{{\"t\":{}", json_f64(self.t_s));
        for (key, a) in [
            ("voltage", &self.voltage_v),
            ("current", &self.current_ma),
            ("activePower", &self.active_w),
            ("reactivePower", &self.reactive_var),
            ("apparentPower", &self.apparent_va),
            ("frequency", &self.frequency_hz),
            ("powerFactor", &self.power_factor),
        ] {
            let _ = write!(o, ",\"{key}\":[");
            for (k, v) in a.iter().enumerate() {
                if k > 0 {
                    o.push(',');
                }
                match v {
                    // The estimator works in f32: print its shortest round-trip form.
                    Some(x) if x.is_finite() => {
                        let _ = write!(o, "{}", *x as f32);
                    }
                    _ => o.push_str("null"),
                }
            }
            o.push(']');
        }
        o.push('}');
        o
    }
}

/// A finite f64 as JSON (millisecond resolution is plenty for a window start), else `null`.
fn json_f64(x: f64) -> String {
    if x.is_finite() {
        let r = (x * 1e6).round() / 1e6;
        std::format!("{r}")
    } else {
        "null".into()
    }
}

/// Why an analysis failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyzeError {
    /// The file could not be read.
    #[error(transparent)]
    Recording(#[from] RecordingError),
    /// The recording has no waveform channels the estimator can use.
    #[error(
        "cannot analyze channels [{0}]: need the waveforms v_l1,i_l1,v_l2,i_l2,v_l3,i_l3 or one phase's v,i"
    )]
    Channels(String),
    /// The estimator refused the rate (it needs 1000..=32000 Hz) or the nominal frequency.
    #[error("cannot analyze: {0}")]
    Config(String),
}

/// What the file held and how it went.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzeSummary {
    /// The file's metadata.
    pub meta: RecordingMeta,
    /// Frames (samples per channel) processed.
    pub frames: u64,
    /// Windows emitted.
    pub windows: u64,
}

/// The phase a two-channel recording belongs to (`v_l2,i_l2` → 1), or `None` for six channels.
fn layout(meta: &RecordingMeta) -> Result<(PhaseMode, usize), AnalyzeError> {
    let names: Vec<&str> = meta.channels.iter().map(String::as_str).collect();
    match names.as_slice() {
        ["v_l1", "i_l1", "v_l2", "i_l2", "v_l3", "i_l3"] => Ok((PhaseMode::Three, 0)),
        [v, i] if v.starts_with("v_l") && i.starts_with("i_l") && v.get(3..) == i.get(3..) => {
            let phase = match v.get(3..) {
                Some("2") => 1,
                Some("3") => 2,
                _ => 0,
            };
            Ok((PhaseMode::Single, phase))
        }
        // Files written by other tools (WAV without our INFO chunk): six or two unnamed channels.
        [_, _, _, _, _, _] if names.iter().all(|n| n.starts_with("ch")) => {
            Ok((PhaseMode::Three, 0))
        }
        [_, _] if names.iter().all(|n| n.starts_with("ch")) => Ok((PhaseMode::Single, 0)),
        _ => Err(AnalyzeError::Channels(meta.channels.join(","))),
    }
}

/// Synchronised windows after (re)synchronisation whose frequency is still reported as unknown: the
/// crossing detector's filters settle over the first two (the DSP accuracy suite skips them too), so
/// a window's `frequency` is non-null only once its values are settled.
const SETTLING_WINDOWS: u32 = 2;

/// Scale applied to each channel to get volts and amps: current channels are in mA unless the
/// file says `A`.
fn scales(meta: &RecordingMeta) -> [f32; 6] {
    let mut s = [1.0f32; 6];
    for (k, slot) in s.iter_mut().enumerate() {
        let is_current = meta.channels.get(k).map_or(k % 2 == 1, |n| {
            n.starts_with("i_") || (n.starts_with("ch") && k % 2 == 1)
        });
        let unit = meta.units.get(k).map(String::as_str).unwrap_or("mA");
        if is_current && unit != "A" {
            *slot = 1e-3;
        }
    }
    s
}

/// `amps_per_unit`: what one unit of the current samples fed to the estimator is (1 for A, 1e-3
/// when the raw mA samples of the file were fed unscaled: the estimator is linear in current, so
/// I, P, Q and S are rescaled here once per window instead of every sample being scaled).
fn window_result(
    w: &Window,
    settled: bool,
    phase_of_single: Option<usize>,
    t0: f64,
    rate: f64,
    amps_per_unit: f64,
) -> WindowResult {
    let mut r = WindowResult {
        t_s: t0 + w.start_sample / rate,
        voltage_v: [None; 3],
        current_ma: [None; 3],
        active_w: [None; 3],
        reactive_var: [None; 3],
        apparent_va: [None; 3],
        power_factor: [None; 3],
        frequency_hz: [None; 3],
        duration_s: w.duration_s,
    };
    let freq = w.frequency_hz.filter(|_| settled).map(f64::from);
    for (k, m) in w.phases.iter().enumerate() {
        let dst = match phase_of_single {
            None => k,
            Some(p) if k == 0 => p,
            Some(_) => continue,
        };
        let set = |a: &mut [Option<f64>; 3], v: f64| {
            if let Some(slot) = a.get_mut(dst) {
                *slot = Some(v);
            }
        };
        set(&mut r.voltage_v, f64::from(m.vrms_v));
        set(&mut r.current_ma, f64::from(m.irms_a) * amps_per_unit * 1e3);
        set(&mut r.active_w, f64::from(m.active_power_w) * amps_per_unit);
        set(
            &mut r.reactive_var,
            f64::from(m.reactive_power_var) * amps_per_unit,
        );
        set(
            &mut r.apparent_va,
            f64::from(m.apparent_power_va) * amps_per_unit,
        );
        if let Some(pf) = m.power_factor {
            set(&mut r.power_factor, f64::from(pf));
        }
        if let Some(f) = freq {
            set(&mut r.frequency_hz, f);
        }
    }
    r
}

/// An estimator set up for a recording with `meta`.
pub fn estimator_for(
    meta: &RecordingMeta,
    nominal_hz: u32,
) -> Result<Estimator<f32>, AnalyzeError> {
    estimator_with_current_unit(meta, nominal_hz, 1.0)
}

/// An estimator fed currents in units of `amps_per_unit` amps (its current threshold is scaled).
fn estimator_with_current_unit(
    meta: &RecordingMeta,
    nominal_hz: u32,
    amps_per_unit: f32,
) -> Result<Estimator<f32>, AnalyzeError> {
    let (mode, _) = layout(meta)?;
    let mut cfg = EstimatorConfig::new(meta.rate_hz, nominal_hz);
    cfg.phases = mode;
    cfg.min_current_a /= amps_per_unit;
    Estimator::new(cfg).map_err(|e| AnalyzeError::Config(e.to_string()))
}

/// When every voltage channel is in V and every current channel in the same unit (mA, or A), the
/// samples can be fed as they are: returns that unit in amps. `None` for mixed units.
fn uniform_current_unit(meta: &RecordingMeta) -> Option<f32> {
    let s = scales(meta);
    let n = meta.channels.len().min(6);
    let mut unit = None;
    for (k, f) in s.iter().take(n).enumerate() {
        let is_current = meta.channels.get(k).map_or(k % 2 == 1, |c| {
            c.starts_with("i_") || (c.starts_with("ch") && k % 2 == 1)
        });
        if is_current {
            match unit {
                None => unit = Some(*f),
                Some(u) if u == *f => {}
                Some(_) => return None,
            }
        } else if *f != 1.0 {
            return None;
        }
    }
    Some(unit.unwrap_or(1.0))
}

/// Scales a block of interleaved samples in place to volts and amps (see [`analyze_file`]).
pub fn scale_block(block: &mut [f32], meta: &RecordingMeta) {
    let s = scales(meta);
    if meta.channels.len() == 6 {
        let (frames, _) = block.as_chunks_mut::<6>();
        for f in frames {
            for (x, k) in f.iter_mut().zip(&s) {
                *x *= k;
            }
        }
    } else {
        let (frames, _) = block.as_chunks_mut::<2>();
        let k = [
            s.first().copied().unwrap_or(1.0),
            s.get(1).copied().unwrap_or(1.0),
        ];
        for f in frames {
            for (x, k) in f.iter_mut().zip(&k) {
                *x *= k;
            }
        }
    }
}

/// Runs the estimator over the recording at `path`, calling `on_window` for each window in order.
/// Memory is bounded by the block size whatever the file size.
pub fn analyze_file(
    path: &Path,
    opts: &AnalyzeOptions,
    mut on_window: impl FnMut(&WindowResult),
) -> Result<AnalyzeSummary, AnalyzeError> {
    let mut reader = RecordingReader::open(path, &opts.hints)?;
    let meta = reader.meta().clone();
    let (_, phase) = layout(&meta)?;
    let single = (meta.channels.len() == 2).then_some(phase);
    // Fed as stored when the units allow (one copy from the file, no per-sample work here).
    let direct = uniform_current_unit(&meta);
    let amps_per_unit = direct.unwrap_or(1.0);
    let mut est = estimator_with_current_unit(&meta, opts.nominal_hz, amps_per_unit)?;
    let t0 = meta.start_unix_us.map_or(0.0, |us| us as f64 * 1e-6);
    let rate = f64::from(meta.rate_hz);
    let scale = scales(&meta);
    let amps_per_unit = f64::from(amps_per_unit);
    let block_frames = opts.block_frames.max(1);
    let mut frames = 0u64;
    let mut windows = 0u64;
    let mut in_row = 0u32;
    // Reading and decoding run on a second thread, one block ahead of the estimator, so file
    // handling overlaps the DSP instead of adding to it. Blocks are recycled (bounded memory:
    // three blocks).
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Result<Vec<f32>, RecordingError>>(1);
    let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<f32>>();
    for _ in 0..3 {
        let _ = empty_tx.send(Vec::with_capacity(block_frames * meta.channels.len()));
    }
    std::thread::scope(|scope| {
        // Owned by this closure: an early return drops them, which ends the reader thread.
        let (empty_tx, full_rx) = (empty_tx, full_rx);
        scope.spawn(move || {
            while let Ok(mut block) = empty_rx.recv() {
                let read = if direct.is_some() {
                    reader.read_frames_direct(&mut block, block_frames)
                } else {
                    reader.read_frames_scaled(&mut block, block_frames, Some(&scale))
                };
                match read {
                    Ok(0) => return,
                    Ok(_) => {
                        if full_tx.send(Ok(block)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = full_tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        while let Ok(block) = full_rx.recv() {
            let block = block?;
            frames += (block.len() / meta.channels.len().max(1)) as u64;
            windows += est.feed(&block, |w| {
                in_row = if w.synchronised { in_row + 1 } else { 0 };
                let settled = in_row > SETTLING_WINDOWS;
                on_window(&window_result(w, settled, single, t0, rate, amps_per_unit))
            }) as u64;
            // The reader may have finished already; then the block is simply dropped.
            let _ = empty_tx.send(block);
        }
        Ok::<(), AnalyzeError>(())
    })?;
    Ok(AnalyzeSummary {
        meta,
        frames,
        windows,
    })
}
