//! The sampling pipeline (docs/protocol.md §3, §5, §6): all sampling state in one place — the running
//! session ([`Sampling`]: ring, packet numbers, flow control, slots), a `sample` waiting for NTP
//! confidence, the conversion of source frames into the session's samples ([`Converter`]:
//! resampler, pacing, derived sets, the session clock), zero-crossing alignment of a scheduled
//! start, the buffers a block passes through, and the reports of lost samples.
//!
//! The engine hands it blocks ([`Pipeline::feed`], [`Pipeline::feed_codes`]) and asks it for frames
//! ([`Pipeline::pump`]); frames go straight into the destination's output queue or the outbox, so
//! nothing is taken out of the engine and put back.

mod convert;
mod session;

use alloc::vec::Vec;
use core::time::Duration;

pub(crate) use session::{Destination, Sampling, SamplingParams, default_chunk_bytes};

use self::convert::{Converter, first_instant, rising_crossing};
use self::session::OutFrame;
use super::conns::{Connections, Sink};
use super::measure::Meter;
use super::outbox::Outbox;
use super::{Action, ConnId, Instant};
use crate::calibration::Calibration;
use crate::hal::{CodeBlock, PhysicalBlock};
use crate::wire::command::Slot;
use crate::wire::frame::{Framing, encode_frame};
use crate::wire::log::format_unix_millis;
use crate::wire::mqtt;
use crate::wire::reply::{Reply, SampleStarted};

/// Most NTP exchanges a `sample` with `ntpConf` waits through (§5.7).
const NTP_TRIES: u8 = 10;
/// Shortest time between two informational lines about frames dropped for slow readers.
const DROP_REPORT_PERIOD: Duration = Duration::from_secs(10);
/// Most frames formed per [`Pipeline::pump`] (a bound on one call's work, never reached in practice).
const MAX_FRAMES_PER_PUMP: u32 = 4096;

/// A `sample` request waiting for NTP confidence (`ntpConf`, docs/protocol.md §5.7).
#[derive(Debug, Clone)]
pub(crate) struct PendingSample {
    /// Who asked.
    pub(crate) sink: Sink,
    /// The session to start.
    pub(crate) session: Sampling,
    /// The confidence asked for, ms.
    pub(crate) conf_ms: u32,
    /// NTP exchanges so far.
    tries: u8,
}

/// What an NTP outcome means for a [`PendingSample`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NtpGate {
    /// The confidence (ms) is reached: the session starts.
    Reached(u64),
    /// Not yet: ask again.
    Retry,
    /// Not reached within [`NTP_TRIES`] exchanges.
    GiveUp,
}

impl PendingSample {
    /// A `sample` of `sink` that starts `session` once NTP confidence `conf_ms` is reached (the
    /// first exchange is being asked for).
    pub(crate) fn new(sink: Sink, session: Sampling, conf_ms: u32) -> Self {
        PendingSample {
            sink,
            session,
            conf_ms,
            tries: 1,
        }
    }

    /// The error text of a `sample` whose confidence was not reached (given up, or cancelled by a
    /// `stop`): `Cannot reach NTP confidence of <ntpConf> ms` (§5.7).
    pub(crate) fn not_reached(&self) -> alloc::string::String {
        alloc::format!("Cannot reach NTP confidence of {} ms", self.conf_ms)
    }

    /// Counts one NTP outcome (`conf_ms`: the confidence it reached, `None` for a failure).
    pub(crate) fn on_sync(&mut self, conf_ms: Option<u64>) -> NtpGate {
        match conf_ms {
            Some(c) if c <= u64::from(self.conf_ms) => NtpGate::Reached(c),
            _ if self.tries < NTP_TRIES => {
                self.tries += 1;
                NtpGate::Retry
            }
            _ => NtpGate::GiveUp,
        }
    }
}

/// Where a block's samples and frames go besides the pipeline itself.
pub(crate) struct Outputs<'a> {
    /// Connections (TCP, serial and raw destinations; `reqSamples` answers).
    pub(crate) conns: &'a mut Connections,
    /// Datagrams and MQTT publishes.
    pub(crate) outbox: &'a mut Outbox,
    /// The device name while an MQTT broker is connected (MQTT sampling publishes), else `None`.
    pub(crate) mqtt_name: Option<&'a str>,
}

/// What the once-a-second tick reports about sampling.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct TickReport {
    /// Measured rate (Hz) and total samples of the running session.
    pub(crate) rate: Option<(f64, u64)>,
    /// Samples lost to ring overflow since the last report (`MISSED <k> SAMPLES`).
    pub(crate) missed: u64,
    /// Samples refused by slow readers, at most every [`DROP_REPORT_PERIOD`].
    pub(crate) slow_reader: Option<u64>,
    /// No session, running or waiting: the liveness line is due.
    pub(crate) idle: bool,
}

/// The sampling pipeline.
#[derive(Debug)]
pub(crate) struct Pipeline {
    /// The running (or scheduled) session.
    session: Option<Sampling>,
    /// A `sample` waiting for NTP confidence.
    pending: Option<PendingSample>,
    /// The session's conversion state.
    conv: Option<Converter>,
    /// The last L1 voltage of the previous block (a crossing may lie between two blocks).
    zc_prev: f32,
    /// The session's samples produced from one block.
    values: Vec<f32>,
    /// A block of codes in volts and amps, while a session needs them.
    code_values: Vec<f32>,
    /// Samples in frames refused by slow readers, not yet mentioned in an informational line.
    dropped_unreported: u64,
    /// Earliest time of the next such line.
    next_drop_report: Instant,
    /// Bytes of samples a session may buffer.
    ring_bytes: usize,
}

impl Pipeline {
    /// An idle pipeline whose sessions buffer at most `ring_bytes`.
    pub(crate) fn new(ring_bytes: usize, now: Instant) -> Self {
        Pipeline {
            session: None,
            pending: None,
            conv: None,
            zc_prev: 0.0,
            values: Vec::new(),
            code_values: Vec::new(),
            dropped_unreported: 0,
            next_drop_report: now,
            ring_bytes,
        }
    }

    /// Bytes of samples a session may buffer.
    pub(crate) fn ring_bytes(&self) -> usize {
        self.ring_bytes
    }

    /// A session runs (or waits for its start or NTP confidence).
    pub(crate) fn is_busy(&self) -> bool {
        self.session.is_some() || self.pending.is_some()
    }

    /// The running session.
    pub(crate) fn session(&self) -> Option<&Sampling> {
        self.session.as_ref()
    }

    /// The running session, to change its gates (`reqSamples`, `cts`).
    pub(crate) fn session_mut(&mut self) -> Option<&mut Sampling> {
        self.session.as_mut()
    }

    /// Whether `conn` owns the session, is its destination, or waits for NTP confidence for one.
    pub(crate) fn owns(&self, conn: ConnId) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.owner == Some(conn) || s.dest.conn() == Some(conn))
            || self.pending_of(Sink::Conn(conn))
    }

    /// The port-54322 reader the session streams to, if any.
    pub(crate) fn raw_conn(&self) -> Option<ConnId> {
        match self.session.as_ref().map(|s| s.dest) {
            Some(Destination::Raw(c)) => Some(c),
            _ => None,
        }
    }

    /// Whether a `sample` of `sink` waits for NTP confidence.
    pub(crate) fn pending_of(&self, sink: Sink) -> bool {
        self.pending.as_ref().is_some_and(|p| p.sink == sink)
    }

    /// A `sample` now waits for NTP confidence.
    pub(crate) fn set_pending(&mut self, p: PendingSample) {
        self.pending = Some(p);
    }

    /// Takes the `sample` waiting for NTP confidence.
    pub(crate) fn take_pending(&mut self) -> Option<PendingSample> {
        self.pending.take()
    }

    /// Installs a session that never started (a `stop` ends a `sample` still waiting for NTP
    /// confidence like a running one).
    pub(crate) fn adopt(&mut self, session: Sampling) {
        self.session = Some(session);
    }

    /// A new calibration for the running conversion.
    pub(crate) fn set_calibration(&mut self, cal: Calibration) {
        if let Some(c) = self.conv.as_mut() {
            c.set_calibration(cal);
        }
    }

    // ----- lifecycle ------------------------------------------------------------------------------

    /// Starts `session` (replacing any other) at wall time `wall` on a source at `source_rate_hz`;
    /// returns its `sample` reply. An immediate start's `startTs` is the instant its first sample
    /// describes: the earliest one whose filter input the session still gets.
    pub(crate) fn begin(
        &mut self,
        mut session: Sampling,
        wall: Instant,
        source_rate_hz: u32,
        meter: &Meter,
        ntp_conf_ms: Option<u64>,
    ) -> SampleStarted {
        session.created = wall;
        session.crossing_us = None;
        let (conv, lead) = Converter::new(&session, source_rate_hz.max(1), meter);
        self.conv = Some(conv);
        if session.params.start_at.is_none() {
            session.params.start_at = Some(first_instant(wall + lead, source_rate_hz));
            session.align_start = false;
        }
        let start_ts = session.params.start_at.unwrap_or(wall);
        let p = &session.params;
        let reply = SampleStarted {
            stream: session.dest.stream_type(),
            slot: p.slot.map(|(slot, slots)| Slot { slot, slots }),
            measures: p.measures,
            measurements: None,
            chunk_size_bytes: u32::try_from(p.chunk_bytes).unwrap_or(u32::MAX),
            rate_hz: p.rate_hz,
            prefix: p.prefix,
            flow_control: p.flow_ctr,
            start_ts_ms: unix_ms(start_ts),
            ntp_confidence_ms: ntp_conf_ms.map(|c| u32::try_from(c).unwrap_or(u32::MAX)),
        };
        self.session = Some(session);
        reply
    }

    /// Ends the session: answers a pending `reqSamples` and flushes what is buffered to its
    /// destination (unless that connection is gone: what it would have got is simply not sent).
    /// Returns the ended session (its statistics, owner and lost samples), `None` if none ran.
    pub(crate) fn stop(&mut self, out: &mut Outputs<'_>) -> Option<Sampling> {
        let mut s = self.session.take()?;
        self.conv = None;
        let gone = s.dest.conn().is_some_and(|c| out.conns.get(c).is_none());
        let tail = s.flush();
        if !gone {
            for f in tail {
                route_frame(&mut s, f, out);
            }
            self.dropped_unreported = self.dropped_unreported.saturating_add(s.take_dropped());
        }
        Some(s)
    }

    /// Answers the pending `reqSamples` with what is buffered now (before a `stop`/`?` of its
    /// owner).
    pub(crate) fn answer_request(&mut self, out: &mut Outputs<'_>) {
        if let Some(s) = self.session.as_mut()
            && let Some(f) = s.flush_request()
        {
            route_frame(s, f, out);
        }
    }

    // ----- samples in -----------------------------------------------------------------------------

    /// A block in volts and amps (`codes`: the same frames as ADC codes, when the binding delivered
    /// codes): the session's share of it — its start (the announced instant of an immediate start,
    /// or the first positive-going L1 zero crossing at or after a scheduled one; earlier input only
    /// warms the filters), resampling or derivation — into the ring or the MQTT publishes.
    pub(crate) fn feed(
        &mut self,
        block: &PhysicalBlock<'_>,
        codes: Option<&[i32]>,
        wall_start: Instant,
        meter: &Meter,
        out: &mut Outputs<'_>,
    ) {
        if let Some(s) = self.session.as_mut() {
            let conv = match self.conv.as_mut() {
                Some(c) if c.source_rate_hz() == block.rate_hz => c,
                // the first block, or the source rate changed: the conversion starts (over)
                _ => self.conv.insert(Converter::new(s, block.rate_hz, meter).0),
            };
            ingest(
                s,
                conv,
                self.zc_prev,
                &mut self.values,
                block,
                codes,
                wall_start,
                meter,
                out,
            );
        }
        if let Some(v) = block.samples.chunks_exact(6).last().and_then(|c| c.first()) {
            self.zc_prev = *v;
        }
    }

    /// A block of ADC codes: scaled to volts and amps only while a session needs them.
    pub(crate) fn feed_codes(
        &mut self,
        block: &CodeBlock<'_>,
        wall_start: Instant,
        meter: &Meter,
        out: &mut Outputs<'_>,
    ) {
        let (vpc, apc) = (block.volts_per_code as f32, block.amps_per_code as f32);
        if self.session.is_none() {
            if let Some(c) = block.codes.chunks_exact(6).last().and_then(|c| c.first()) {
                self.zc_prev = *c as f32 * vpc;
            }
            return;
        }
        let mut values = core::mem::take(&mut self.code_values);
        values.clear();
        let whole = block.codes.len() / 6 * 6;
        values.extend(
            block
                .codes
                .iter()
                .take(whole)
                .enumerate()
                .map(|(k, c)| *c as f32 * if k.is_multiple_of(2) { vpc } else { apc }),
        );
        let physical = PhysicalBlock {
            rate_hz: block.rate_hz,
            samples: &values,
            start: block.start,
        };
        self.feed(&physical, block.codes.get(..whole), wall_start, meter, out);
        self.code_values = values;
    }

    // ----- frames out -----------------------------------------------------------------------------

    /// Forms and routes every frame the session's gates allow at wall time `wall`. Returns the
    /// owner whose `reqSamples` was answered (its held lines may go on).
    pub(crate) fn pump(&mut self, wall: Instant, out: &mut Outputs<'_>) -> Option<ConnId> {
        let s = self.session.as_mut()?;
        let mut answered = false;
        let mut frames = 0u32;
        while let Some(f) = s.poll_frame(wall) {
            answered |= f.answers_request;
            route_frame(s, f, out);
            frames += 1;
            if frames > MAX_FRAMES_PER_PUMP {
                break;
            }
        }
        s.owner.filter(|_| answered)
    }

    // ----- reports --------------------------------------------------------------------------------

    /// The once-a-second report at wall time `wall` (`now`: the binding's clock).
    pub(crate) fn tick(&mut self, wall: Instant, now: Instant) -> TickReport {
        let mut r = TickReport::default();
        match self.session.as_mut() {
            Some(s) => {
                if s.started.is_some() {
                    r.rate = s.rate_report(wall);
                }
                r.missed = s.take_missed();
                self.dropped_unreported = self.dropped_unreported.saturating_add(s.take_dropped());
            }
            None => r.idle = self.pending.is_none(),
        }
        // Frames refused by a slow reader are no error: the reader sees them as packet-number gaps
        // (§3). An informational line (never kept in the logbook) says so now and then.
        if self.dropped_unreported > 0 && now >= self.next_drop_report {
            r.slow_reader = Some(core::mem::take(&mut self.dropped_unreported));
            self.next_drop_report = now + DROP_REPORT_PERIOD;
        }
        r
    }

    /// Heap held by the session's ring, its conversion and the block buffers.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.session.as_ref().map_or(0, Sampling::heap_bytes)
            + self.conv.as_ref().map_or(0, Converter::heap_bytes)
            + self.values.capacity() * 4
            + self.code_values.capacity() * 4
    }
}

/// One block into session `s` (see [`Pipeline::feed`]).
#[allow(clippy::too_many_arguments)]
fn ingest(
    s: &mut Sampling,
    conv: &mut Converter,
    zc_prev: f32,
    values: &mut Vec<f32>,
    block: &PhysicalBlock<'_>,
    codes: Option<&[i32]>,
    wall_start: Instant,
    meter: &Meter,
    out: &mut Outputs<'_>,
) {
    let n = block.samples.len() / 6;
    let block_t0 = conv.clock(s, block.rate_hz, wall_start);
    let emit_from = if !s.waiting() {
        Some(f64::NEG_INFINITY)
    } else {
        match s.params.start_at {
            None => Some(f64::NEG_INFINITY),
            Some(at) if !s.align_start => Some(s.micros_since_created(at)),
            Some(at) => {
                if s.crossing_us.is_none() {
                    s.crossing_us =
                        rising_crossing(zc_prev, s.micros_since_created(at), block_t0, block);
                }
                s.crossing_us
            }
        }
    };
    values.clear();
    let (produced, first) = conv.derive(s, block, codes, 0..n, block_t0, values, emit_from, meter);
    if s.waiting()
        && let Some(t) = first
    {
        s.start(s.instant_after_created(t));
    }
    let ch = s.channels();
    if s.dest != Destination::Mqtt {
        for sample in values.chunks_exact(ch).take(produced) {
            s.push(sample);
        }
        return;
    }
    // One publish per sample on the info topic (§8.3).
    let topic = out.mqtt_name.map(mqtt::info_topic);
    for sample in values.chunks_exact(ch).take(produced) {
        let t = s.sample_instant(s.taken());
        let body = mqtt::sample_values(
            s.params.measures.unit(),
            &format_unix_millis(unix_ms(t)),
            sample,
        );
        let sent = match topic.as_ref() {
            Some(topic) if out.outbox.has_room() => {
                out.outbox.push(Action::Publish {
                    topic: topic.clone(),
                    payload: body,
                    retain: false,
                });
                true
            }
            _ => false,
        };
        s.take_direct(sent);
    }
}

/// Frames `f` for the session's destination and queues it; a refused frame is counted as dropped.
/// A frame that answers a `reqSamples` is followed by its reply.
fn route_frame(s: &mut Sampling, f: OutFrame, out: &mut Outputs<'_>) {
    let framing = match s.dest {
        Destination::Raw(_) => Framing::RAW,
        Destination::Serial(_) if s.params.prefix => Framing::SERIAL,
        Destination::Serial(_) => Framing::SERIAL_RAW,
        _ if s.params.prefix => Framing::PREFIXED,
        _ => Framing::RAW,
    };
    let mut buf = alloc::vec![0u8; f.values.len() * 4 + 16];
    let n = encode_frame(&mut buf, f.packet, &f.values, framing).unwrap_or(0);
    buf.truncate(n);
    let ok = match s.dest {
        Destination::Tcp(c) | Destination::Serial(c) | Destination::Raw(c) => {
            out.conns.get_mut(c).is_some_and(|x| {
                if f.answers_request {
                    x.out.push_big_frame(&buf)
                } else {
                    x.out.push_frame(&buf)
                }
            })
        }
        Destination::Udp(addr) => {
            let room = out.outbox.has_room();
            if room {
                out.outbox.push(Action::SendDatagram { addr, bytes: buf });
            }
            room
        }
        Destination::Mqtt => true,
    };
    if !ok {
        s.frame_dropped(&f);
    }
    if f.answers_request
        && let Some(o) = s.owner
    {
        out.conns
            .send_reply(o, Reply::ReqSamplesDone.to_line().as_bytes());
    }
}

/// Unix milliseconds of `t` for the wire (saturating; `Instant` cannot be negative).
pub(crate) fn unix_ms(t: Instant) -> i64 {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}
