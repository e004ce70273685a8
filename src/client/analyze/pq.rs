//! `analyze --pq`: the power-quality core ([`crate::dsp::pq::Pq`], docs/protocol.md §11) over a
//! recording file, block by block.
//!
//! # What is reported
//! Every completed interval of the requested length ([`PqInterval`]: `200ms` = one basic 10/12-cycle
//! window, `3s` = 150/180 cycles, `10min` and `2h` aligned to the clock) as a [`PqAggregate`] (the
//! `getPQ` object without `error`/`cmd`), and every ended event as a [`PqEvent`] (the `getEvents`
//! event object, numbered from 1 in the file), in the order the core completes them. An event still
//! in progress at the end of the file and an interval the file ends inside are not reported (the
//! device does not report them either). A `10min` interval is complete only when it started on a
//! 10-min tick of the clock, so a recording shorter than 10 min after its first tick has none; the
//! flickermeter (Pst, Plt) runs only for `10min` and `2h`, which need it.
//!
//! # Times
//! Unix seconds from the file's start time (`.wav` and `.csv` carry it); seconds from the first
//! sample for a file without one (`.f32`), whose clock ticks (10 min, 2 h) then fall on whole
//! multiples of 600 s from the first sample.
//!
//! # Channels
//! By name, in any order: the three voltages `v_l1,v_l2,v_l3` with or without currents
//! (`i_l1..i_l3`; a missing one reads as zero), or one phase's voltage `v_lK` with or without its
//! current (results, events and phases then belong to that phase; the others are `null`). Files
//! without names (`ch0..`) are positional: 6 = `v,i,v,i,v,i`, 3 = three voltages, 2 = `v,i` of
//! L1, 1 = the voltage of L1. Other channels are ignored. Currents are in mA unless the file says
//! `A`.
//!
//! # Memory
//! Bounded whatever the file size: one block of [`PqAnalyzeOptions::block_frames`] frames, the
//! core's fixed state, and nothing kept per interval.

use std::path::Path;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use crate::client::recording::{ReadHints, RecordingError, RecordingMeta, RecordingReader};
use crate::dsp::pq::{
    self as core_pq, FlickerSink, Interval, Layout, Pq, PqConfig, PqFlicker, PqRecord, PqSink,
};
use crate::wire::pq::{
    EventKind, HARMONICS, Harmonics, Nominal, PhaseSet, PqAggregate, PqEvent, PqInterval,
};
use crate::wire::reply::Phases;

/// Lowest sample rate the core takes, Hz (its estimator's limit; IEC 61000-4-7 harmonics up to
/// H50 need more anyway).
pub const MIN_RATE_HZ: u32 = 1000;
/// Highest sample rate the core takes, Hz.
pub const MAX_RATE_HZ: u32 = 32000;

/// Settings of a power-quality analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct PqAnalyzeOptions {
    /// For files that do not describe themselves (`.f32`, short `.csv`).
    pub hints: ReadHints,
    /// Which aggregates to report (events are always reported).
    pub interval: PqInterval,
    /// Declared voltage Udin, V (`50..=1000`); `None` = auto from the first second (§11).
    pub udin_v: Option<f32>,
    /// Nominal frequency, 50 or 60 Hz; `None` = auto from the first second.
    pub nominal_hz: Option<u32>,
    /// Frames read per block (bounded memory: `block_frames × channels × 8` bytes).
    pub block_frames: usize,
}

impl Default for PqAnalyzeOptions {
    fn default() -> Self {
        PqAnalyzeOptions {
            hints: ReadHints::default(),
            interval: PqInterval::TenMinutes,
            udin_v: None,
            nominal_hz: None,
            block_frames: 4096,
        }
    }
}

/// One output of the analysis.
#[derive(Debug, Clone, PartialEq)]
pub enum PqItem {
    /// A completed interval of the requested length.
    Aggregate(PqAggregate),
    /// An ended event.
    Event(PqEvent),
}

impl PqItem {
    /// The canonical §11 object ([`PqAggregate::to_json`] / [`PqEvent::to_json`]).
    pub fn to_json(&self) -> String {
        match self {
            PqItem::Aggregate(a) => a.to_json(),
            PqItem::Event(e) => e.to_json(),
        }
    }
}

/// Why a power-quality analysis failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PqAnalyzeError {
    /// The file could not be read.
    #[error(transparent)]
    Recording(#[from] RecordingError),
    /// The recording holds no voltage waveform set this analysis understands.
    #[error(
        "cannot analyze power quality of channels [{0}]: need the voltage waveforms v_l1,v_l2,v_l3 (currents i_l1..i_l3 optional) or one phase's v_lK (with or without i_lK)"
    )]
    Channels(String),
    /// The sample rate is outside what the core takes.
    #[error("cannot analyze power quality at {0} Hz: the rate must be 1000..=32000 Hz")]
    Rate(u32),
    /// The core refused the settings (Udin out of range, nominal frequency not 50/60).
    #[error("cannot analyze power quality: {0}")]
    Config(#[from] core_pq::PqConfigError),
}

/// What the file held and how it went.
#[derive(Debug, Clone, PartialEq)]
pub struct PqAnalyzeSummary {
    /// The file's metadata.
    pub meta: RecordingMeta,
    /// Frames (samples per channel) read from the file.
    pub frames: u64,
    /// Aggregates reported.
    pub aggregates: u64,
    /// Events reported.
    pub events: u64,
    /// The nominal values in force at the end (`None`: never decided, e.g. no voltage).
    pub nominal: Option<Nominal>,
    /// Phases with a voltage (index 0 = L1).
    pub phases: [bool; 3],
    /// Phases with a current.
    pub currents: [bool; 3],
}

/// Where each input channel of the core's layout comes from in the file.
#[derive(Debug, Clone, PartialEq)]
struct ChannelMap {
    layout: Layout,
    /// Per core channel: the file's channel index (`None` = zero) and its scale to volts/amps.
    src: Vec<(Option<usize>, f32)>,
    /// Single-phase layout: which phase (0..3) the core's phase 0 is.
    phase: usize,
    phases: [bool; 3],
    currents: [bool; 3],
}

/// `v_l2` → `(false, 1)`, `i_l3` → `(true, 2)`.
fn parse_name(name: &str) -> Option<(bool, usize)> {
    let n = name.trim().to_ascii_lowercase();
    let (current, rest) = if let Some(r) = n.strip_prefix("v_l") {
        (false, r)
    } else if let Some(r) = n.strip_prefix("i_l") {
        (true, r)
    } else {
        return None;
    };
    match rest {
        "1" => Some((current, 0)),
        "2" => Some((current, 1)),
        "3" => Some((current, 2)),
        _ => None,
    }
}

impl ChannelMap {
    fn of(meta: &RecordingMeta) -> Result<ChannelMap, PqAnalyzeError> {
        let names = &meta.channels;
        let unnamed = !names.is_empty() && names.iter().all(|n| n.starts_with("ch"));
        // (is current, phase) of each file channel
        let roles: Vec<Option<(bool, usize)>> = if unnamed {
            let positional: &[(bool, usize)] = match names.len() {
                6 => &[
                    (false, 0),
                    (true, 0),
                    (false, 1),
                    (true, 1),
                    (false, 2),
                    (true, 2),
                ],
                3 => &[(false, 0), (false, 1), (false, 2)],
                2 => &[(false, 0), (true, 0)],
                1 => &[(false, 0)],
                _ => &[],
            };
            (0..names.len())
                .map(|k| positional.get(k).copied())
                .collect()
        } else {
            names.iter().map(|n| parse_name(n)).collect()
        };
        let mut v = [None; 3];
        let mut i = [None; 3];
        for (k, role) in roles.iter().enumerate() {
            match role {
                Some((false, p)) => {
                    if let Some(slot) = v.get_mut(*p) {
                        slot.get_or_insert(k);
                    }
                }
                Some((true, p)) => {
                    if let Some(slot) = i.get_mut(*p) {
                        slot.get_or_insert(k);
                    }
                }
                None => {}
            }
        }
        let amps = |k: Option<usize>| {
            let unit = k.and_then(|k| meta.units.get(k)).map(String::as_str);
            (k, if unit == Some("A") { 1.0 } else { 1e-3 })
        };
        let volts = |k: Option<usize>| (k, 1.0f32);
        let phases = v.map(|k| k.is_some());
        let vi: Vec<(Option<usize>, Option<usize>)> = v.iter().copied().zip(i).collect();
        let mut currents = [false; 3];
        for (c, (a, b)) in currents.iter_mut().zip(&vi) {
            *c = a.is_some() && b.is_some();
        }
        let count = phases.iter().filter(|x| **x).count();
        let (layout, src, phase) = if count == 3 {
            if currents.iter().any(|c| *c) {
                let src = vi
                    .iter()
                    .flat_map(|(a, b)| [volts(*a), amps(*b)])
                    .collect::<Vec<_>>();
                (Layout::ThreePhase, src, 0)
            } else {
                (Layout::ThreePhaseVoltage, v.map(volts).to_vec(), 0)
            }
        } else if count == 1 {
            let p = phases.iter().position(|x| *x).unwrap_or(0);
            let (a, b) = vi.get(p).copied().unwrap_or((None, None));
            (Layout::SinglePhase, vec![volts(a), amps(b)], p)
        } else {
            return Err(PqAnalyzeError::Channels(names.join(",")));
        };
        Ok(ChannelMap {
            layout,
            src,
            phase,
            phases,
            currents,
        })
    }

    /// Gathers the core's interleaved input from `frames` of `ch` file channels, scaled.
    fn gather(&self, frames: &[f32], ch: usize, out: &mut Vec<f32>) {
        out.clear();
        if ch == 0 {
            return;
        }
        for f in frames.chunks_exact(ch) {
            for (k, scale) in &self.src {
                out.push(match k.and_then(|k| f.get(k)) {
                    Some(x) => x * scale,
                    None => 0.0,
                });
            }
        }
    }

    /// The core's per-phase value `p` (0..3) in output phase order.
    fn phase_values<T: Copy>(&self, core: &[T; 3], present: [bool; 3]) -> [Option<T>; 3] {
        [0, 1, 2].map(|p| {
            if !present.get(p).copied().unwrap_or(false) {
                return None;
            }
            let from = if self.layout == Layout::SinglePhase {
                0
            } else {
                p
            };
            core.get(from).copied()
        })
    }

    /// The core's phase bits (bit 0 = its phase 0) as output phase bits.
    fn phase_bits(&self, core: [bool; 3]) -> u8 {
        if self.layout == Layout::SinglePhase {
            u8::from(core.first().copied().unwrap_or(false)) << self.phase
        } else {
            core.iter()
                .enumerate()
                .fold(0, |b, (p, on)| b | (u8::from(*on) << p))
        }
    }
}

const fn interval_of(i: PqInterval) -> Interval {
    match i {
        PqInterval::Basic => Interval::Basic,
        PqInterval::ThreeSeconds => Interval::ThreeSecond,
        PqInterval::TenMinutes => Interval::TenMinute,
        PqInterval::TwoHours => Interval::TwoHour,
    }
}

const fn wire_interval(i: Interval) -> PqInterval {
    match i {
        Interval::Basic => PqInterval::Basic,
        Interval::ThreeSecond => PqInterval::ThreeSeconds,
        Interval::TenMinute => PqInterval::TenMinutes,
        Interval::TwoHour => PqInterval::TwoHours,
    }
}

fn wire_nominal(n: &core_pq::NominalValues) -> Nominal {
    Nominal {
        voltage_v: n.voltage_v,
        frequency_hz: n.frequency_hz as f32,
    }
}

/// A core record as the §11 aggregate object, phases placed where the file has them.
fn aggregate(r: &PqRecord, map: &ChannelMap) -> PqAggregate {
    let some = |a: &[f32; 3], present| -> Phases { map.phase_values(a, present) };
    let opt = |a: &[Option<f32>; 3], present| -> Phases {
        map.phase_values(a, present).map(Option::flatten)
    };
    let spectrum = |h: &[[f32; core_pq::HARMONICS]; 3], present| -> Harmonics {
        map.phase_values(h, present).map(|row| match row {
            Some(row) => core::array::from_fn(|k| row.get(k).copied()),
            None => [None; HARMONICS],
        })
    };
    let interval = wire_interval(r.interval);
    PqAggregate {
        interval,
        start_s: r.start_unix_s,
        end_s: r.end_unix_s,
        flagged: r.flagged,
        nominal: wire_nominal(&r.nominal),
        voltage_v: some(&r.voltage_v, map.phases),
        voltage_min_v: some(&r.voltage_min_v, map.phases),
        voltage_max_v: some(&r.voltage_max_v, map.phases),
        frequency_hz: r.frequency_hz,
        u0_pct: r.u0_pct,
        u2_pct: r.u2_pct,
        thd_v_pct: opt(&r.thd_v_pct, map.phases),
        thd_i_pct: opt(&r.thd_i_pct, map.currents),
        harmonics_v: std::boxed::Box::new(spectrum(&r.harmonics_v, map.phases)),
        harmonics_i: std::boxed::Box::new(spectrum(&r.harmonics_i_a, map.currents)),
        pst: (interval == PqInterval::TenMinutes).then(|| opt(&r.pst, map.phases)),
        plt: (interval == PqInterval::TwoHours).then(|| opt(&r.plt, map.phases)),
    }
}

/// A core event as the §11 event object.
fn event(e: &core_pq::VoltageEvent, id: u32, map: &ChannelMap) -> PqEvent {
    let kind = match e.kind {
        core_pq::VoltageEventKind::Dip => EventKind::Dip,
        core_pq::VoltageEventKind::Swell => EventKind::Swell,
        core_pq::VoltageEventKind::Interruption => EventKind::Interruption,
        core_pq::VoltageEventKind::Rvc => EventKind::Rvc {
            delta_max_v: e.delta_max_v.unwrap_or(0.0),
            delta_steady_v: e.delta_steady_v.unwrap_or(0.0),
        },
    };
    let phases = PhaseSet::from_bits(map.phase_bits(e.phases)).unwrap_or(PhaseSet::ALL);
    PqEvent {
        id,
        kind,
        phases,
        start_s: e.start_unix_s,
        duration_s: e.duration_s,
        extreme_v: e.extreme_v,
        reference_v: e.reference_v,
    }
}

/// The flickermeter when the requested interval needs Pst/Plt, else nothing (it is the most
/// expensive part of the core and `200ms`/`3s` aggregates do not carry it).
struct Flicker(Option<PqFlicker>);

impl FlickerSink for Flicker {
    fn push(&mut self, phase: usize, voltage_v: f32) {
        if let Some(f) = &mut self.0 {
            f.push(phase, voltage_v);
        }
    }
    fn take_pst(&mut self, phase: usize) -> Option<f32> {
        self.0.as_mut().and_then(|f| f.take_pst(phase))
    }
    fn set_nominal(&mut self, nominal: &core_pq::NominalValues) {
        if let Some(f) = &mut self.0 {
            f.set_nominal(nominal);
        }
    }
}

/// Turns the core's outputs into [`PqItem`]s as they complete.
struct Emit<'a, 'b, F: FnMut(PqItem)> {
    want: Interval,
    map: &'a ChannelMap,
    next_id: u32,
    aggregates: u64,
    events: u64,
    on_item: &'a mut F,
    /// Every basic interval, whatever `want` is ([`analyze_pq_file_with_basic`]).
    on_basic: Option<&'b mut (dyn FnMut(&PqAggregate) + 'b)>,
}

impl<F: FnMut(PqItem)> Emit<'_, '_, F> {
    fn record(&mut self, r: &PqRecord) {
        if r.interval == self.want {
            self.aggregates += 1;
            (self.on_item)(PqItem::Aggregate(aggregate(r, self.map)));
        }
    }
}

impl<F: FnMut(PqItem)> PqSink for Emit<'_, '_, F> {
    fn basic(&mut self, record: &PqRecord) {
        if let Some(f) = self.on_basic.as_mut() {
            f(&aggregate(record, self.map));
        }
        self.record(record);
    }
    fn aggregate(&mut self, record: &PqRecord) {
        self.record(record);
    }
    fn event(&mut self, e: &core_pq::VoltageEvent) {
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        self.events += 1;
        (self.on_item)(PqItem::Event(event(e, id, self.map)));
    }
}

/// Runs the power-quality core over the recording at `path`, calling `on_item` for every
/// completed interval of [`PqAnalyzeOptions::interval`] and every ended event, in order (see the
/// module docs). Memory is bounded whatever the file size.
///
/// # Errors
/// The file cannot be read or parsed, holds no usable voltage channels, has a rate outside
/// `1000..=32000` Hz, or the options are out of range.
pub fn analyze_pq_file(
    path: &Path,
    opts: &PqAnalyzeOptions,
    on_item: impl FnMut(PqItem),
) -> Result<PqAnalyzeSummary, PqAnalyzeError> {
    run_file(path, opts, on_item, None)
}

/// [`analyze_pq_file`], also calling `on_basic` with every completed basic (10/12-cycle)
/// interval, as a `200ms` aggregate, whatever [`PqAnalyzeOptions::interval`] reports: what a view
/// of the whole recording needs (the harmonic bar chart of `analyze --pq --plot`).
///
/// # Errors
/// As [`analyze_pq_file`].
pub fn analyze_pq_file_with_basic(
    path: &Path,
    opts: &PqAnalyzeOptions,
    on_item: impl FnMut(PqItem),
    mut on_basic: impl FnMut(&PqAggregate),
) -> Result<PqAnalyzeSummary, PqAnalyzeError> {
    run_file(path, opts, on_item, Some(&mut on_basic))
}

fn run_file(
    path: &Path,
    opts: &PqAnalyzeOptions,
    on_item: impl FnMut(PqItem),
    on_basic: Option<&mut dyn FnMut(&PqAggregate)>,
) -> Result<PqAnalyzeSummary, PqAnalyzeError> {
    let mut reader = RecordingReader::open(path, &opts.hints)?;
    let meta = reader.meta().clone();
    let block = opts.block_frames.max(1);
    let mut raw: Vec<f32> = Vec::with_capacity(block * reader.channels());
    let source = |consume: &mut dyn FnMut(&[f32])| -> Result<(), PqAnalyzeError> {
        while reader.read_frames_direct(&mut raw, block)? > 0 {
            consume(&raw);
        }
        Ok(())
    };
    analyze_pq_blocks(meta, opts, source, on_item, on_basic)
}

/// [`analyze_pq_file`] over interleaved samples already in memory, described by `meta` (rate,
/// channels, units, start time): the same items as for a file holding these samples and `meta`
/// (fed in the same blocks of [`PqAnalyzeOptions::block_frames`]). `opts.hints` is not used.
///
/// # Errors
/// As [`analyze_pq_file`]; also when `samples` is not a whole number of frames.
pub fn analyze_pq_samples(
    meta: &RecordingMeta,
    samples: &[f32],
    opts: &PqAnalyzeOptions,
    on_item: impl FnMut(PqItem),
) -> Result<PqAnalyzeSummary, PqAnalyzeError> {
    let ch = meta.channels.len().max(1);
    if !samples.len().is_multiple_of(ch) {
        return Err(RecordingError::Invalid {
            field: "samples",
            reason: format!(
                "{} values is not a whole number of {ch}-channel frames",
                samples.len()
            ),
        }
        .into());
    }
    let block = opts.block_frames.max(1) * ch;
    let source = |consume: &mut dyn FnMut(&[f32])| -> Result<(), PqAnalyzeError> {
        samples.chunks(block).for_each(consume);
        Ok(())
    };
    analyze_pq_blocks(meta.clone(), opts, source, on_item, None)
}

/// The power-quality analysis of a recording described by `meta` whose samples `source` hands
/// to its argument block by block.
fn analyze_pq_blocks(
    meta: RecordingMeta,
    opts: &PqAnalyzeOptions,
    source: impl FnOnce(&mut dyn FnMut(&[f32])) -> Result<(), PqAnalyzeError>,
    mut on_item: impl FnMut(PqItem),
    on_basic: Option<&mut dyn FnMut(&PqAggregate)>,
) -> Result<PqAnalyzeSummary, PqAnalyzeError> {
    let map = ChannelMap::of(&meta)?;
    let rate = meta.rate_hz;
    if !(MIN_RATE_HZ..=MAX_RATE_HZ).contains(&rate) {
        return Err(PqAnalyzeError::Rate(rate));
    }
    let config = PqConfig {
        rate_hz: rate,
        layout: map.layout,
        nominal_voltage_v: opts.udin_v,
        nominal_frequency_hz: opts.nominal_hz,
    };
    let want = interval_of(opts.interval);
    let flicker = Flicker(if matches!(want, Interval::TenMinute | Interval::TwoHour) {
        PqFlicker::new(rate)
    } else {
        None
    });
    let mut pq = Pq::<f32, Flicker>::with_flicker(config, flicker)?;
    let start_us = meta.start_unix_us.unwrap_or(0);
    let ch = meta.channels.len().max(1);
    let mut input: Vec<f32> = Vec::with_capacity(opts.block_frames.max(1) * map.layout.channels());
    let mut frames: u64 = 0;
    let mut sink = Emit {
        want,
        map: &map,
        next_id: 1,
        aggregates: 0,
        events: 0,
        on_item: &mut on_item,
        on_basic,
    };
    source(&mut |raw| {
        map.gather(raw, ch, &mut input);
        // the clock of the block's first sample from the sample count (the ADC is the time base)
        let offset_us = i128::from(frames) * 1_000_000 / i128::from(rate);
        let t_us = i64::try_from(i128::from(start_us) + offset_us).unwrap_or(i64::MAX);
        pq.feed(&input, t_us, &mut sink);
        frames += (raw.len() / ch) as u64;
    })?;
    let (aggregates, events) = (sink.aggregates, sink.events);
    Ok(PqAnalyzeSummary {
        meta,
        frames,
        aggregates,
        events,
        nominal: pq.nominal().as_ref().map(wire_nominal),
        phases: map.phases,
        currents: map.currents,
    })
}

impl ChannelMap {
    /// Where each output phase's voltage sits in a gathered frame (`None`: no voltage).
    fn voltage_slots(&self) -> [Option<usize>; 3] {
        [0, 1, 2].map(|p| {
            if !self.phases.get(p).copied().unwrap_or(false) {
                return None;
            }
            Some(match self.layout {
                Layout::ThreePhase => 2 * p,
                Layout::ThreePhaseVoltage => p,
                Layout::SinglePhase => 0,
            })
        })
    }
}

/// One phase's Urms(½) per time bucket: the lowest and highest value, V (`None`: no value).
pub type UrmsHalfBuckets = Vec<Option<(f32, f32)>>;

/// Urms(½) over a recording, reduced for a plot: the lowest and highest value in each of a fixed
/// number of equal time buckets, per phase.
#[derive(Debug, Clone, PartialEq)]
pub struct UrmsHalfEnvelope {
    /// Width of a bucket, s; bucket `k` covers `k × bucket_s ..(k + 1) × bucket_s` from the first
    /// sample.
    pub bucket_s: f64,
    /// Per phase (index 0 = L1; `None`: the file has no voltage of that phase), per bucket: the
    /// lowest and highest Urms(½) whose cycle is centred in it, V (`None`: no value centred there).
    pub phases: [Option<UrmsHalfBuckets>; 3],
}

/// Urms(½) (docs/protocol.md §11.3: the RMS over one cycle, refreshed every half cycle) of every
/// phase with a voltage in the recording at `path`, as an [`UrmsHalfEnvelope`] of `buckets`
/// buckets over `frames` frames (the file's length as [`PqAnalyzeSummary::frames`] reports it;
/// later values go into the last bucket).
///
/// Half cycles are of the nominal `frequency_hz` (fractional lengths alternate between the two
/// nearest whole sample counts), not synchronised to the fundamental as the core's event detector
/// is: at a frequency within 1 % of nominal the window drifts by less than a cycle per 50 cycles,
/// which moves a plotted value by a small fraction of the ripple of a distorted wave. Memory is
/// bounded by `buckets`, whatever the file size.
///
/// # Errors
/// The file cannot be read or holds no usable voltage channels (as [`analyze_pq_file`]), or
/// `frequency_hz` is not a frequency the core measures (40..=70 Hz).
pub fn urms_half_envelope(
    path: &Path,
    hints: &ReadHints,
    frequency_hz: f64,
    frames: u64,
    buckets: usize,
) -> Result<UrmsHalfEnvelope, PqAnalyzeError> {
    let mut reader = RecordingReader::open(path, hints)?;
    let meta = reader.meta().clone();
    let map = ChannelMap::of(&meta)?;
    let rate = meta.rate_hz;
    if !(MIN_RATE_HZ..=MAX_RATE_HZ).contains(&rate) {
        return Err(PqAnalyzeError::Rate(rate));
    }
    if !(40.0..=70.0).contains(&frequency_hz) {
        return Err(PqAnalyzeError::Channels(format!(
            "no Urms(½) at {frequency_hz} Hz"
        )));
    }
    let buckets = buckets.max(1);
    let rate_f = f64::from(rate);
    let bucket_s = (frames as f64 / rate_f / buckets as f64).max(1.0 / rate_f);
    let slots = map.voltage_slots();
    let mut phases: [Option<UrmsHalfBuckets>; 3] = slots.map(|s| s.map(|_| vec![None; buckets]));
    let half = rate_f / (2.0 * frequency_hz);
    let mut next_edge = half;
    // Sums of squares of the current and the previous half cycle, and their sample counts.
    let (mut acc, mut prev) = ([0f64; 3], [0f64; 3]);
    let (mut acc_n, mut prev_n) = (0u32, 0u32);
    let mut n: u64 = 0;
    let ch = reader.channels();
    let width = map.layout.channels();
    let mut raw: Vec<f32> = Vec::with_capacity(4096 * ch);
    let mut input: Vec<f32> = Vec::with_capacity(4096 * width);
    loop {
        if reader.read_frames_direct(&mut raw, 4096)? == 0 {
            break;
        }
        map.gather(&raw, ch, &mut input);
        for frame in input.chunks_exact(width.max(1)) {
            for (a, slot) in acc.iter_mut().zip(slots) {
                if let Some(x) = slot.and_then(|k| frame.get(k)) {
                    *a += f64::from(*x) * f64::from(*x);
                }
            }
            acc_n += 1;
            n += 1;
            if (n as f64) < next_edge {
                continue;
            }
            next_edge += half;
            let cycle_n = acc_n + prev_n;
            if prev_n > 0 {
                let centre_s = (n as f64 - f64::from(cycle_n) / 2.0) / rate_f;
                let k = ((centre_s / bucket_s) as usize).min(buckets - 1);
                for ((series, a), b) in phases.iter_mut().zip(acc).zip(prev) {
                    let Some(slot) = series.as_mut().and_then(|s| s.get_mut(k)) else {
                        continue;
                    };
                    let v = ((a + b) / f64::from(cycle_n)).sqrt() as f32;
                    *slot = Some(match *slot {
                        Some((lo, hi)) => (lo.min(v), hi.max(v)),
                        None => (v, v),
                    });
                }
            }
            prev = acc;
            prev_n = acc_n;
            acc = [0.0; 3];
            acc_n = 0;
        }
    }
    Ok(UrmsHalfEnvelope { bucket_s, phases })
}

/// A one-line description of what was analysed, for the end of the human output.
pub fn describe(summary: &PqAnalyzeSummary, interval: PqInterval) -> String {
    let phases: Vec<String> = (0..3)
        .filter(|p| summary.phases.get(*p).copied().unwrap_or(false))
        .map(|p| format!("L{}", p + 1))
        .collect();
    let currents = if summary.currents.iter().any(|c| *c) {
        "voltages and currents"
    } else {
        "voltages only"
    };
    let nominal = match &summary.nominal {
        Some(n) => format!("{} V, {} Hz", n.voltage_v, n.frequency_hz),
        None => "not decided (no voltage)".to_string(),
    };
    format!(
        "{} {} intervals and {} events over {} samples at {} Hz ({} of {}; nominal {nominal})",
        summary.aggregates,
        interval.as_str(),
        summary.events,
        summary.frames,
        summary.meta.rate_hz,
        currents,
        phases.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(names: &str, units: &str) -> RecordingMeta {
        RecordingMeta::new(
            8000,
            names.split(',').map(String::from).collect(),
            units.split(',').map(String::from).collect(),
        )
    }

    #[test]
    fn channel_sets_map_to_layouts() {
        let m = ChannelMap::of(&meta("v_l1,i_l1,v_l2,i_l2,v_l3,i_l3", "V,mA,V,mA,V,A")).unwrap();
        assert_eq!(m.layout, Layout::ThreePhase);
        assert_eq!(m.src[5], (Some(5), 1.0));
        assert_eq!(m.src[1], (Some(1), 1e-3));
        let m = ChannelMap::of(&meta("v_l1,v_l2,v_l3,i_l1,i_l2,i_l3", "")).unwrap();
        assert_eq!(m.layout, Layout::ThreePhase);
        let order: Vec<_> = m.src.iter().map(|s| s.0).collect();
        assert_eq!(
            order,
            [Some(0), Some(3), Some(1), Some(4), Some(2), Some(5)]
        );
        let m = ChannelMap::of(&meta("v_l3,v_l1,v_l2", "")).unwrap();
        assert_eq!(m.layout, Layout::ThreePhaseVoltage);
        assert_eq!(m.currents, [false; 3]);
        let m = ChannelMap::of(&meta("v_l2", "")).unwrap();
        assert_eq!((m.layout, m.phase), (Layout::SinglePhase, 1));
        assert_eq!(m.phase_bits([true, false, false]), 0b010);
        assert_eq!(
            m.phase_values(&[1.0, 0.0, 0.0], m.phases),
            [None, Some(1.0), None]
        );
        let m = ChannelMap::of(&meta("ch0,ch1,ch2", "")).unwrap();
        assert_eq!(m.layout, Layout::ThreePhaseVoltage);
        for bad in [
            "v_l1,v_l2",
            "p_l1,p_l2,p_l3,q_l1,q_l2,q_l3",
            "i_l1",
            "ch0,ch1,ch2,ch3",
        ] {
            assert!(
                matches!(
                    ChannelMap::of(&meta(bad, "")),
                    Err(PqAnalyzeError::Channels(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn gather_reorders_scales_and_zero_fills() {
        let m = ChannelMap::of(&meta("v_l1,v_l2,v_l3,i_l1,x", "V,V,V,mA,")).unwrap();
        let mut out = Vec::new();
        m.gather(&[1.0, 2.0, 3.0, 4000.0, 9.0], 5, &mut out);
        assert_eq!(out, [1.0, 4.0, 2.0, 0.0, 3.0, 0.0]);
    }
}
