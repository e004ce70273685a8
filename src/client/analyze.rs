//! `analyze`: the DSP pipeline ([`crate::dsp::Estimator`]) over a recording file, window by window.
//!
//! # What is reported
//! * **Waveform recordings** (`v,i` six channels, or one phase's `v,i`): one row per complete
//!   cycle-synchronous window of 10 line cycles (12 at 60 Hz, IEC 61000-4-30), each with its true
//!   start time, correct from the first window on:
//!   - The estimator's crossing detector needs a few cycles to settle, and the samples before the
//!     first zero crossing are no whole window. So the estimator is **primed**: it first runs over
//!     a prefix of the recording that is a whole number of line cycles long (at the frequency
//!     measured on the first second), then over the whole recording from sample 0. The prefix ends
//!     where the recording starts, phase-matched to a fraction of a sample, and is chosen so that
//!     a window edge falls on the recording's first zero crossing: the estimator arrives there
//!     settled. Rows start at that crossing; the part of the first cycle before it is in no row.
//!     (Window edges are the crossings as the detector's band-pass filters see them: at the
//!     nominal frequency that is the true crossing, off it a constant fraction of a cycle later.)
//!   - The nominal frequency (and so 10 or 12 cycles) is given, or decided from the first second
//!     (the nearer of 50 and 60 Hz).
//!   - Windows that are not cycle-synchronous (no voltage, synchronisation lost) are reported with
//!     `cycles` 0 and no frequency; such a window shorter than the nominal length (it ends at a
//!     re-synchronisation) is partial and left out.
//!   - Recordings below 1000 Hz (which `record` writes at any rate from 1 Hz) are interpolated by
//!     an integer factor to 1000 Hz or more first (the estimator needs 1000..=32000 Hz; the band
//!     below the meter's anti-alias cut-off is what such a file holds). The interpolation filter
//!     reaches 31 samples back, so rows start at the first crossing after the 31st sample.
//!     Waveforms below 200 Hz do not hold a 50/60 Hz line cycle and are refused.
//! * **`p,q` recordings** (`p_l1..p_l3,q_l1..q_l3`, already per-phase active and reactive power):
//!   one row per whole second, the mean P and Q of that second's samples; S and PF stay empty
//!   (the file does not hold them).
//! * **`v,i_RMS` recordings** (`vrms_l1..3,irms_l1..3`): one row per whole second, V and I the
//!   RMS aggregate of that second's values (IEC 61000-4-30 aggregation: root mean square) and
//!   S = V·I per phase.
//!
//! Memory is bounded whatever the file size: blocks of [`AnalyzeOptions::block_frames`], plus the
//! first [`HEAD_S`] seconds kept once for the priming.
//!
//! [`pq`] is `analyze --pq`: the power-quality core over a recording.

pub mod pq;

mod upsample;

use std::path::Path;
use std::string::{String, ToString};
use std::vec::Vec;

use crate::dsp::estimator::{Estimator, EstimatorConfig, PhaseMode, Window};

use super::recording::{ReadHints, RecordingError, RecordingMeta, RecordingReader};

use upsample::Upsampler;

/// Seconds at the start of a waveform recording used to measure its frequency and prime the
/// estimator.
pub const HEAD_S: f64 = 1.5;
/// Windows in the priming prefix (fewer when the recording is shorter).
const PRIME_WINDOWS: f64 = 5.0;
/// Lowest rate of a waveform recording that holds the line cycle (the meter's resampler is flat
/// to 0.3 × its output rate: 60 Hz at 200 Hz).
pub const MIN_WAVEFORM_RATE_HZ: u32 = 200;
/// Lowest rate the estimator takes; slower recordings are interpolated up to a multiple of their
/// rate at or above it.
const MIN_ESTIMATOR_RATE_HZ: u32 = 1000;

/// Settings of an analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzeOptions {
    /// For files that do not describe themselves (`.f32`, short `.csv`).
    pub hints: ReadHints,
    /// Nominal line frequency, 50 or 60 Hz; `None` decides from the first second.
    pub nominal_hz: Option<u32>,
    /// Frames read per block (bounded memory: `block_frames × channels × 8` bytes).
    pub block_frames: usize,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            hints: ReadHints::default(),
            nominal_hz: None,
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
    /// Whole line cycles in the window; 0 for a window that is not cycle-synchronous (no voltage,
    /// synchronisation lost) and for the one-second rows of `p,q` / `v,i_RMS` recordings.
    pub cycles: u32,
}

impl WindowResult {
    fn empty(t_s: f64, duration_s: f64) -> WindowResult {
        WindowResult {
            t_s,
            voltage_v: [None; 3],
            current_ma: [None; 3],
            active_w: [None; 3],
            reactive_var: [None; 3],
            apparent_va: [None; 3],
            power_factor: [None; 3],
            frequency_hz: [None; 3],
            duration_s,
            cycles: 0,
        }
    }

    /// The `--json` form: keys `t`, `cycles`, `voltage`, `current`, `activePower`,
    /// `reactivePower`, `apparentPower`, `frequency` (each a per-phase array, `null` where
    /// undefined), plus `powerFactor`.
    pub fn to_json(&self) -> String {
        use core::fmt::Write as _;
        let mut o = String::with_capacity(400);
        let _ = write!(
            o,
            "{{\"t\":{},\"cycles\":{}",
            json_f64(self.t_s),
            self.cycles
        );
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

/// A finite f64 as JSON (microsecond resolution is plenty for a window start), else `null`.
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
    /// The recording has no channels this analysis understands.
    #[error(
        "cannot analyze channels [{0}]: need the waveforms v_l1,i_l1,v_l2,i_l2,v_l3,i_l3, one phase's v,i, p,q (p_l1..q_l3) or v,i_RMS (vrms_l1..irms_l3)"
    )]
    Channels(String),
    /// The estimator refused the rate or the nominal frequency, or the rate is too low for
    /// waveforms.
    #[error("cannot analyze: {0}")]
    Config(String),
}

/// What the file held and how it went.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzeSummary {
    /// The file's metadata.
    pub meta: RecordingMeta,
    /// Frames (samples per channel) read from the file.
    pub frames: u64,
    /// Rows emitted (windows, or seconds for `p,q` / `v,i_RMS`).
    pub windows: u64,
    /// What the rows are.
    pub content: Content,
    /// The nominal frequency the windows were built for (waveforms only).
    pub nominal_hz: Option<u32>,
    /// The rate the estimator ran at, when the recording was interpolated up to it.
    pub interpolated_to_hz: Option<u32>,
}

/// What a recording holds, by its channel names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// The six waveforms `v_l1,i_l1,v_l2,i_l2,v_l3,i_l3` (or six unnamed channels).
    ThreePhase,
    /// One phase's `v,i` (index 0..=2), or two unnamed channels (L1).
    SinglePhase(usize),
    /// `p_l1,p_l2,p_l3,q_l1,q_l2,q_l3`.
    PowerPq,
    /// `vrms_l1,vrms_l2,vrms_l3,irms_l1,irms_l2,irms_l3`.
    Rms,
}

/// Classifies a recording by its channel names.
pub fn content(meta: &RecordingMeta) -> Result<Content, AnalyzeError> {
    let names: Vec<&str> = meta.channels.iter().map(String::as_str).collect();
    match names.as_slice() {
        ["v_l1", "i_l1", "v_l2", "i_l2", "v_l3", "i_l3"] => Ok(Content::ThreePhase),
        ["p_l1", "p_l2", "p_l3", "q_l1", "q_l2", "q_l3"] => Ok(Content::PowerPq),
        [
            "vrms_l1",
            "vrms_l2",
            "vrms_l3",
            "irms_l1",
            "irms_l2",
            "irms_l3",
        ] => Ok(Content::Rms),
        [v, i] if v.starts_with("v_l") && i.starts_with("i_l") && v.get(3..) == i.get(3..) => {
            let phase = match v.get(3..) {
                Some("2") => 1,
                Some("3") => 2,
                _ => 0,
            };
            Ok(Content::SinglePhase(phase))
        }
        // Files written by other tools (WAV without our INFO chunk): six or two unnamed channels.
        [_, _, _, _, _, _] if names.iter().all(|n| n.starts_with("ch")) => Ok(Content::ThreePhase),
        [_, _] if names.iter().all(|n| n.starts_with("ch")) => Ok(Content::SinglePhase(0)),
        _ => Err(AnalyzeError::Channels(meta.channels.join(","))),
    }
}

/// Synchronised windows after a (re)synchronisation in the middle of a recording whose frequency
/// is still reported as unknown: the crossing detector's filters settle over the first two (the
/// DSP accuracy suite skips them too). At the start of a recording the priming takes care of it.
const SETTLING_WINDOWS: u32 = 2;

fn is_current(meta: &RecordingMeta, k: usize) -> bool {
    meta.channels.get(k).map_or(k % 2 == 1, |n| {
        n.starts_with("i_") || (n.starts_with("ch") && k % 2 == 1)
    })
}

/// Scale applied to each channel to get volts and amps: current channels are in mA unless the
/// file says `A`.
fn scales(meta: &RecordingMeta) -> [f32; 6] {
    let mut s = [1.0f32; 6];
    for (k, slot) in s.iter_mut().enumerate() {
        let unit = meta.units.get(k).map(String::as_str).unwrap_or("mA");
        if is_current(meta, k) && unit != "A" {
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
    t_s: f64,
    settled: bool,
    phase_of_single: Option<usize>,
    amps_per_unit: f64,
) -> WindowResult {
    let mut r = WindowResult::empty(t_s, w.duration_s);
    r.cycles = w.cycles;
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

/// An estimator set up for a waveform recording with `meta` at its own rate.
pub fn estimator_for(
    meta: &RecordingMeta,
    nominal_hz: u32,
) -> Result<Estimator<f32>, AnalyzeError> {
    estimator(meta, meta.rate_hz, nominal_hz, 1.0)
}

/// An estimator at `rate_hz` fed currents in units of `amps_per_unit` amps (its current
/// threshold is scaled).
fn estimator(
    meta: &RecordingMeta,
    rate_hz: u32,
    nominal_hz: u32,
    amps_per_unit: f32,
) -> Result<Estimator<f32>, AnalyzeError> {
    let mode = match content(meta)? {
        Content::ThreePhase => PhaseMode::Three,
        Content::SinglePhase(_) => PhaseMode::Single,
        Content::PowerPq | Content::Rms => {
            return Err(AnalyzeError::Config(
                "p,q and v,i_RMS recordings hold no waveforms".into(),
            ));
        }
    };
    let mut cfg = EstimatorConfig::new(rate_hz, nominal_hz);
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
        if is_current(meta, k) {
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

/// Runs the analysis over the recording at `path`, calling `on_window` for each row in order (see
/// the module docs for what a row is). Memory is bounded whatever the file size.
pub fn analyze_file(
    path: &Path,
    opts: &AnalyzeOptions,
    on_window: impl FnMut(&WindowResult),
) -> Result<AnalyzeSummary, AnalyzeError> {
    let reader = RecordingReader::open(path, &opts.hints)?;
    let meta = reader.meta().clone();
    let block_frames = opts.block_frames.max(1);
    analyze_blocks(
        meta,
        opts,
        |scale, consume| pump(reader, scale, block_frames, consume),
        on_window,
    )
}

/// [`analyze_file`] over interleaved samples already in memory, described by `meta` (rate,
/// channels, units, start time): the same rows as for a file holding these samples and `meta`
/// (they are fed in the same blocks of [`AnalyzeOptions::block_frames`]). `samples` is read in
/// place; only mixed current units (some channels in mA, others in A) make a scaled copy of one
/// block at a time. `opts.hints` is not used.
pub fn analyze_samples(
    meta: &RecordingMeta,
    samples: &[f32],
    opts: &AnalyzeOptions,
    on_window: impl FnMut(&WindowResult),
) -> Result<AnalyzeSummary, AnalyzeError> {
    let ch = meta.channels.len().max(1);
    if !samples.len().is_multiple_of(ch) {
        return Err(RecordingError::Invalid {
            field: "samples",
            reason: std::format!(
                "{} values is not a whole number of {ch}-channel frames",
                samples.len()
            ),
        }
        .into());
    }
    let block = opts.block_frames.max(1) * ch;
    let source = |scale: Option<[f32; 6]>,
                  consume: &mut dyn FnMut(&[f32]) -> Result<(), AnalyzeError>| {
        let mut scaled: Vec<f32> = Vec::new();
        for chunk in samples.chunks(block) {
            match &scale {
                None => consume(chunk)?,
                Some(s) => {
                    // As the file reader scales while decoding: channel k times s[k].
                    scaled.clear();
                    scaled.extend(
                        chunk
                            .iter()
                            .zip(s.iter().take(ch.min(6)).cycle())
                            .map(|(x, k)| x * k),
                    );
                    consume(&scaled)?;
                }
            }
        }
        Ok((samples.len() / ch) as u64)
    };
    analyze_blocks(meta.clone(), opts, source, on_window)
}

/// The analysis of a recording described by `meta` whose samples `source` hands to its second
/// argument block by block (scaled per channel by its first, when given), returning the frame count.
fn analyze_blocks(
    meta: RecordingMeta,
    opts: &AnalyzeOptions,
    source: impl FnOnce(
        Option<[f32; 6]>,
        &mut dyn FnMut(&[f32]) -> Result<(), AnalyzeError>,
    ) -> Result<u64, AnalyzeError>,
    mut on_window: impl FnMut(&WindowResult),
) -> Result<AnalyzeSummary, AnalyzeError> {
    let kind = content(&meta)?;
    let t0 = meta.start_unix_us.map_or(0.0, |us| us as f64 * 1e-6);
    let ch = meta.channels.len().max(1);
    match kind {
        Content::PowerPq | Content::Rms => {
            let mut rows = PerSecond::new(kind, meta.rate_hz, t0);
            let frames = source(None, &mut |block| {
                rows.push(block, &mut on_window);
                Ok(())
            })?;
            Ok(AnalyzeSummary {
                meta,
                frames,
                windows: rows.rows,
                content: kind,
                nominal_hz: None,
                interpolated_to_hz: None,
            })
        }
        Content::ThreePhase | Content::SinglePhase(_) => {
            if meta.rate_hz < MIN_WAVEFORM_RATE_HZ {
                return Err(AnalyzeError::Config(std::format!(
                    "a waveform recording at {} Hz does not hold the line cycle (need at least {MIN_WAVEFORM_RATE_HZ} Hz; record p,q or v,i_RMS for slow rates)",
                    meta.rate_hz
                )));
            }
            // Fed as stored when the units allow (one copy from the file, no per-sample work here).
            let direct = uniform_current_unit(&meta);
            let amps_per_unit = direct.unwrap_or(1.0);
            let single = match kind {
                Content::SinglePhase(p) => Some(p),
                _ => None,
            };
            let (rate, upsampler) = if meta.rate_hz < MIN_ESTIMATOR_RATE_HZ {
                let factor = MIN_ESTIMATOR_RATE_HZ.div_ceil(meta.rate_hz);
                (
                    meta.rate_hz * factor,
                    Some(Upsampler::new(ch, meta.rate_hz, factor)),
                )
            } else {
                (meta.rate_hz, None)
            };
            // The time of output frame 0 relative to the file's first sample.
            let t_shift = upsampler.as_ref().map_or(0.0, Upsampler::time_of_first_s);
            let mut w = Windows {
                meta: meta.clone(),
                rate,
                nominal: opts.nominal_hz,
                amps_per_unit,
                single,
                t_base: t0 + t_shift,
                head: Vec::new(),
                head_frames: (HEAD_S * f64::from(rate)).ceil() as usize,
                ch,
                run: None,
                windows: 0,
            };
            let scale = if direct.is_some() {
                None
            } else {
                Some(scales(&meta))
            };
            let mut upsampler = upsampler;
            let mut up_buf: Vec<f32> = Vec::new();
            let frames = source(scale, &mut |block| match &mut upsampler {
                Some(u) => {
                    u.process(block, &mut up_buf);
                    w.push(&up_buf, &mut on_window)
                }
                None => w.push(block, &mut on_window),
            })?;
            w.finish(&mut on_window)?;
            Ok(AnalyzeSummary {
                meta,
                frames,
                windows: w.windows,
                content: kind,
                nominal_hz: w.run.as_ref().map(|r| r.nominal),
                interpolated_to_hz: upsampler.map(|_| rate),
            })
        }
    }
}

/// Reads the file on a second thread, one block ahead of `consume`, so file handling overlaps the
/// DSP instead of adding to it. Blocks are recycled (bounded memory: three blocks). `scale`
/// multiplies each channel while decoding; `None` reads the samples as stored. Returns the number
/// of frames read.
fn pump(
    mut reader: RecordingReader,
    scale: Option<[f32; 6]>,
    block_frames: usize,
    mut consume: impl FnMut(&[f32]) -> Result<(), AnalyzeError>,
) -> Result<u64, AnalyzeError> {
    let ch = reader.channels().max(1);
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Result<Vec<f32>, RecordingError>>(1);
    let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<f32>>();
    for _ in 0..3 {
        let _ = empty_tx.send(Vec::with_capacity(block_frames * ch));
    }
    let mut frames = 0u64;
    std::thread::scope(|scope| {
        // Owned by this closure: an early return drops them, which ends the reader thread.
        let (empty_tx, full_rx) = (empty_tx, full_rx);
        scope.spawn(move || {
            while let Ok(mut block) = empty_rx.recv() {
                let read = match &scale {
                    None => reader.read_frames_direct(&mut block, block_frames),
                    Some(s) => reader.read_frames_scaled(&mut block, block_frames, Some(s)),
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
            frames += (block.len() / ch) as u64;
            consume(&block)?;
            // The reader may have finished already; then the block is simply dropped.
            let _ = empty_tx.send(block);
        }
        Ok::<(), AnalyzeError>(())
    })?;
    Ok(frames)
}

/// The estimator's run after the head of the recording decided how to window it.
struct Run {
    est: Estimator<f32>,
    nominal: u32,
    /// Frames fed before the recording's frame 0 (the priming prefix).
    offset: f64,
    /// Nominal window length, frames (unsynchronised windows shorter than this are partial).
    nominal_len: f64,
    in_row: u32,
}

/// Windowing of a waveform recording (see the module docs).
struct Windows {
    meta: RecordingMeta,
    rate: u32,
    nominal: Option<u32>,
    amps_per_unit: f32,
    single: Option<usize>,
    /// Unix (or file) time of frame 0 of what is fed.
    t_base: f64,
    head: Vec<f32>,
    head_frames: usize,
    ch: usize,
    run: Option<Run>,
    windows: u64,
}

impl Windows {
    fn push(
        &mut self,
        block: &[f32],
        on_window: &mut impl FnMut(&WindowResult),
    ) -> Result<(), AnalyzeError> {
        if self.run.is_none() {
            self.head.extend_from_slice(block);
            if self.head.len() / self.ch < self.head_frames {
                return Ok(());
            }
            self.start(on_window)?;
            return Ok(());
        }
        self.feed(block, on_window);
        Ok(())
    }

    fn finish(&mut self, on_window: &mut impl FnMut(&WindowResult)) -> Result<(), AnalyzeError> {
        if self.run.is_none() {
            self.start(on_window)?;
        }
        Ok(())
    }

    /// Runs a throw-away estimator over the head: the line frequency (of a settled synchronised
    /// window) and where the estimator first synchronised (its first synchronised window's start).
    fn probe(&self, nominal: u32) -> Result<(Option<f64>, Option<f64>), AnalyzeError> {
        let mut est = estimator(&self.meta, self.rate, nominal, self.amps_per_unit)?;
        let mut synced = 0u32;
        let mut f_meas: Option<f64> = None;
        let mut first_sync: Option<f64> = None;
        est.feed(&self.head, |w| {
            if w.synchronised {
                synced += 1;
                first_sync.get_or_insert(w.start_sample);
                // The first synchronised window starts at a crossing found by unsettled filters.
                if synced >= 2 || f_meas.is_none() {
                    f_meas = w.frequency_hz.map(f64::from).or(f_meas);
                }
            } else {
                synced = 0;
            }
        });
        Ok((f_meas.filter(|f| f.is_finite() && *f > 0.0), first_sync))
    }

    /// Measures the head, primes the estimator, then feeds the head from frame 0.
    ///
    /// The estimator is deterministic: fed the prefix, it synchronises at the same crossing `c0` as
    /// the probe and closes a window every `C` crossings after it. With `j` whole cycles between the
    /// recording's first crossing and `c0`, a prefix of `(C·M + j)` periods puts the edge of the
    /// window that closes after `M` windows exactly on the recording's first crossing once the
    /// recording itself follows the prefix.
    fn start(&mut self, on_window: &mut impl FnMut(&WindowResult)) -> Result<(), AnalyzeError> {
        let rate = f64::from(self.rate);
        let guess = self.nominal.unwrap_or(50);
        let (f_meas, mut first_sync) = self.probe(guess)?;
        let nominal = self.nominal.unwrap_or(match f_meas {
            Some(f) if f >= 55.0 => 60,
            _ => 50,
        });
        if nominal != guess {
            first_sync = self.probe(nominal)?.1;
        }
        let mut est = estimator(&self.meta, self.rate, nominal, self.amps_per_unit)?;
        let cycles = f64::from(est.config().cycles_per_window);
        let nominal_len = cycles * rate / f64::from(nominal);
        let head_frames = (self.head.len() / self.ch) as f64;
        let mut offset = 0.0;
        let mut in_row = 0u32;
        if let (Some(f), Some(c0)) = (f_meas, first_sync) {
            let period = rate / f;
            let j = (c0 / period).floor();
            let m = ((head_frames - j * period) / (cycles * period))
                .floor()
                .min(PRIME_WINDOWS);
            if m >= 1.0 {
                let prefix = ((cycles * m + j) * period).round() as usize;
                if let Some(p) = self.head.get(..prefix * self.ch) {
                    est.feed(p, |w| {
                        in_row = if w.synchronised { in_row + 1 } else { 0 };
                    });
                    offset = prefix as f64;
                }
            }
        }
        self.run = Some(Run {
            est,
            nominal,
            offset,
            nominal_len,
            in_row,
        });
        let head = core::mem::take(&mut self.head);
        self.feed(&head, on_window);
        Ok(())
    }

    fn feed(&mut self, block: &[f32], on_window: &mut impl FnMut(&WindowResult)) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let rate = f64::from(self.rate);
        let (t_base, single, apu) = (self.t_base, self.single, f64::from(self.amps_per_unit));
        let (offset, nominal_len) = (run.offset, run.nominal_len);
        let in_row = &mut run.in_row;
        let windows = &mut self.windows;
        run.est.feed(block, |w| {
            *in_row = if w.synchronised { *in_row + 1 } else { 0 };
            // The window that straddles the end of the priming prefix holds prefix samples (up
            // to a sample's worth of tolerance for where the detector puts the edge).
            if w.start_sample < offset - 1.0 {
                return;
            }
            // A partial window: it ends at a (re)synchronisation.
            if !w.synchronised && (w.end_sample - w.start_sample) < 0.9 * nominal_len {
                return;
            }
            let settled = *in_row > SETTLING_WINDOWS;
            let t = t_base + ((w.start_sample - offset) / rate).max(0.0);
            *windows += 1;
            on_window(&window_result(w, t, settled, single, apu));
        });
    }
}

/// One row per whole second of a `p,q` or `v,i_RMS` recording.
struct PerSecond {
    kind: Content,
    rate: u32,
    t0: f64,
    /// Σ value (p,q) or Σ value² (RMS) per channel over the current second.
    acc: [f64; 6],
    n: u32,
    second: u64,
    rows: u64,
}

impl PerSecond {
    fn new(kind: Content, rate: u32, t0: f64) -> PerSecond {
        PerSecond {
            kind,
            rate: rate.max(1),
            t0,
            acc: [0.0; 6],
            n: 0,
            second: 0,
            rows: 0,
        }
    }

    fn push(&mut self, block: &[f32], on_window: &mut impl FnMut(&WindowResult)) {
        let (frames, _) = block.as_chunks::<6>();
        for f in frames {
            for (a, x) in self.acc.iter_mut().zip(f) {
                let x = f64::from(*x);
                *a += if self.kind == Content::Rms { x * x } else { x };
            }
            self.n += 1;
            if self.n == self.rate {
                self.emit(on_window);
            }
        }
    }

    fn emit(&mut self, on_window: &mut impl FnMut(&WindowResult)) {
        let n = f64::from(self.n);
        let mut r = WindowResult::empty(self.t0 + self.second as f64, n / f64::from(self.rate));
        for p in 0..3 {
            let (a, b) = (
                self.acc.get(p).copied().unwrap_or(0.0),
                self.acc.get(p + 3).copied().unwrap_or(0.0),
            );
            let set = |arr: &mut [Option<f64>; 3], v: f64| {
                if let Some(slot) = arr.get_mut(p)
                    && v.is_finite()
                {
                    *slot = Some(v);
                }
            };
            match self.kind {
                Content::PowerPq => {
                    set(&mut r.active_w, a / n);
                    set(&mut r.reactive_var, b / n);
                }
                _ => {
                    let (v, i_ma) = ((a / n).sqrt(), (b / n).sqrt());
                    set(&mut r.voltage_v, v);
                    set(&mut r.current_ma, i_ma);
                    set(&mut r.apparent_va, v * i_ma * 1e-3);
                }
            }
        }
        on_window(&r);
        self.rows += 1;
        self.second += 1;
        self.acc = [0.0; 6];
        self.n = 0;
    }
}
