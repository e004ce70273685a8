//! Sampling sessions (docs/protocol.md §5): channel sets, chunking, packet numbers, flow control, slots,
//! scheduled start and bounded buffering.
//!
//! A [`Sampling`] receives values at the *requested* rate (the engine resamples or derives them) with
//! [`Sampling::push`], and hands out [`OutFrame`]s with [`Sampling::poll_frame`] when the gates allow
//! (cts, slot second, reqSamples credit). Everything it holds is bounded: the sample ring by
//! `ring_values`; when it is full new samples are dropped and counted, and reported as
//! `MISSED <k> SAMPLES`. Packet numbers are assigned when a frame is formed, so a frame the destination
//! refuses (slow reader) leaves a gap the receiver can see; such drops are counted apart
//! ([`Sampling::take_dropped`]): they are the reader's business, not a device error.
//!
//! Time: sample `k` describes the wall time `started + k/rate` (the centre of its resampling filter,
//! see `convert`). `startTs` of the reply is that of the first sample for an immediate start
//! (the engine announces it in [`SamplingParams::start_at`]); a scheduled start's reply names the
//! requested `time`, and its first sample — the first within one output period after L1's
//! positive-going zero crossing at or after it — is what `stop` reports as `start_ts`.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::SocketAddr;
#[allow(unused_imports)] // inherent f64 methods shadow it with `std`
use num_traits::Float;

use super::{ConnId, Instant};
use crate::wire::command::{Measures, StreamType};

/// The source channels (`v_l1,i_l1,v_l2,i_l2,v_l3,i_l3` indices) a waveform set takes, in frame
/// order; derived sets (`p,q`, `v,i_RMS`) take none (they come from the estimator).
pub(crate) fn source_channels(m: Measures) -> &'static [usize] {
    match m {
        Measures::VoltCurrent3 => &[0, 1, 2, 3, 4, 5],
        Measures::VoltCurrentL1 => &[0, 1],
        Measures::VoltCurrentL2 => &[2, 3],
        Measures::VoltCurrentL3 => &[4, 5],
        Measures::PowerPQ | Measures::Rms => &[],
    }
}

/// Where the frames of a session go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The requesting TCP (or stream-server) connection.
    Tcp(ConnId),
    /// The serial connection (frames followed by `\r\n`).
    Serial(ConnId),
    /// Datagrams to this address, one frame each.
    Udp(SocketAddr),
    /// One MQTT publish per sample.
    Mqtt,
    /// The port-54322 reader: raw f32le, no prefix.
    Raw(ConnId),
}

impl Destination {
    /// The stream type the `sample` reply reports (`conn_type`, and `port` for UDP).
    pub fn stream_type(self) -> StreamType {
        match self {
            Destination::Tcp(_) => StreamType::Tcp,
            Destination::Serial(_) => StreamType::Serial,
            Destination::Udp(addr) => StreamType::Udp { port: addr.port() },
            Destination::Mqtt => StreamType::Mqtt,
            Destination::Raw(_) => StreamType::Ffmpeg,
        }
    }
    /// The connection carrying the frames, if any.
    pub fn conn(self) -> Option<ConnId> {
        match self {
            Destination::Tcp(c) | Destination::Serial(c) | Destination::Raw(c) => Some(c),
            _ => None,
        }
    }
}

/// Settings of a session after validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// Channel set.
    pub measures: Measures,
    /// Output rate, 1..=32000 (≤ 50 for derived sets).
    pub rate_hz: u32,
    /// `Data:` header on frames.
    pub prefix: bool,
    /// Credit-based flow control (`reqSamples`).
    pub flow_ctr: bool,
    /// `[s, n]`: frames only while `unix_seconds % n == s`.
    pub slot: Option<(u32, u32)>,
    /// Scheduled start (wall time); the session starts at the first positive-going L1 zero crossing at
    /// or after it. For an immediate start the engine sets it to the instant the first sample will
    /// describe (what the reply's `startTs` names).
    pub start_at: Option<Instant>,
    /// Payload bytes per frame (from the chunk-size rule).
    pub chunk_bytes: usize,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            measures: Measures::VoltCurrent3,
            rate_hz: 8000,
            prefix: true,
            flow_ctr: false,
            slot: None,
            start_at: None,
            chunk_bytes: 0,
        }
    }
}

/// A frame the session formed, before it is framed for its destination.
#[derive(Debug, Clone, PartialEq)]
pub struct OutFrame {
    /// Packet number (from 0, +1 per frame formed).
    pub packet: u32,
    /// Interleaved values.
    pub values: Vec<f32>,
    /// Answers a `reqSamples` (the reply follows the frame).
    pub answers_request: bool,
}

/// What a sampling session counted, in device time; the engine turns it into the `stop` reply
/// ([`wire::reply::StopStats`](crate::wire::reply::StopStats)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionTally {
    /// Wall time of the first sample.
    pub start: Instant,
    /// Wall time of the stop.
    pub stop: Instant,
    /// Samples taken into the session.
    pub samples: u64,
    /// Samples in frames handed to a destination that accepted them.
    pub sent_samples: u64,
}

impl SessionTally {
    /// `sample_duration` in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.stop
            .saturating_since(self.start)
            .as_millis()
            .try_into()
            .unwrap_or(u64::MAX)
    }
    /// `avg_rate`: samples per second over the duration (0 when the duration is 0).
    pub fn avg_rate(&self) -> f64 {
        let s = self.stop.saturating_since(self.start).as_secs_f64();
        if s > 0.0 {
            self.samples as f64 / s
        } else {
            0.0
        }
    }
}

/// One running (or scheduled) sampling session.
#[derive(Debug, Clone)]
pub struct Sampling {
    /// The connection that started it (`None` for MQTT).
    pub owner: Option<ConnId>,
    /// Where frames go.
    pub dest: Destination,
    /// Validated settings.
    pub params: SamplingParams,
    /// Clear-to-send (`cts`); starts true unless flow control is on.
    pub cts: bool,
    /// Wall time the first sample describes (set when the session takes it); sample `k` describes
    /// `started + k/rate`.
    pub started: Option<Instant>,
    /// When the reply was sent.
    pub created: Instant,
    /// Whether a scheduled start waits for the first positive-going L1 zero crossing at or after
    /// `params.start_at` (true for a client's `time`); false for an immediate start, whose first sample
    /// describes `params.start_at` itself.
    pub align_start: bool,
    /// A scheduled start's zero crossing, once found: µs after `created` (sub-µs, so that the first
    /// sample at or after it is exactly the one within one sample period after the crossing).
    pub crossing_us: Option<f64>,
    ring: VecDeque<f32>,
    ring_values: usize,
    packet: u32,
    taken: u64,
    sent: u64,
    missed_unreported: u64,
    dropped_unreported: u64,
    /// Samples lost in total (ring overflow or refused frames).
    pub missed_total: u64,
    /// Frames refused by their destination.
    pub dropped_frames: u64,
    pending_req: Option<usize>,
    rate_mark: Option<(Instant, u64)>,
    /// Integer rate-conversion phase: advances by the output rate per source sample; an output
    /// sample is due each time it reaches the source rate (exact counts, no float drift).
    pub pace: u64,
}

impl Sampling {
    /// A new session; `ring_bytes` bounds its sample buffer (at least one frame or one reqSamples of
    /// 2000 samples is always accepted).
    pub fn new(
        owner: Option<ConnId>,
        dest: Destination,
        mut params: SamplingParams,
        ring_bytes: usize,
        created: Instant,
    ) -> Self {
        let ch = params.measures.count();
        if params.chunk_bytes == 0 {
            params.chunk_bytes = default_chunk_bytes(params.rate_hz, ch * 4, dest);
        }
        let min_values = (params.chunk_bytes / 4).max(ch * 2000);
        let ring_values = (ring_bytes / 4).max(min_values);
        Sampling {
            owner,
            dest,
            cts: !params.flow_ctr,
            started: None,
            created,
            align_start: true,
            crossing_us: None,
            ring: VecDeque::new(),
            ring_values,
            packet: 0,
            taken: 0,
            sent: 0,
            missed_unreported: 0,
            dropped_unreported: 0,
            missed_total: 0,
            dropped_frames: 0,
            pending_req: None,
            rate_mark: None,
            pace: 0,
            params,
        }
    }

    /// Values per sample.
    pub fn channels(&self) -> usize {
        self.params.measures.count()
    }

    /// Samples per regular frame.
    pub fn chunk_samples(&self) -> usize {
        (self.params.chunk_bytes / 4 / self.channels()).max(1)
    }

    /// Whether the session is waiting for its scheduled start.
    pub fn waiting(&self) -> bool {
        self.started.is_none()
    }

    /// Wall time `t` as µs after the session's creation (negative before it), exact to well below a
    /// µs for any time within months of it.
    pub fn micros_since_created(&self, t: Instant) -> f64 {
        (t.as_micros() as i64).wrapping_sub(self.created.as_micros() as i64) as f64
    }

    /// The wall time `micros` µs after the session's creation (the inverse of
    /// [`micros_since_created`](Self::micros_since_created), truncated to the µs).
    pub fn instant_after_created(&self, micros: f64) -> Instant {
        let us = self.created.as_micros() as i64 + micros.floor() as i64;
        Instant::from_micros(u64::try_from(us).unwrap_or(0))
    }

    /// Samples taken so far (the index of the next one).
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// The wall time sample `k` describes: `k` output periods after the first sample.
    pub fn sample_instant(&self, k: u64) -> Instant {
        let start = self.started.unwrap_or(self.created);
        let rate = u64::from(self.params.rate_hz.max(1));
        let us = k / rate * 1_000_000 + k % rate * 1_000_000 / rate;
        Instant::from_micros(start.as_micros().saturating_add(us))
    }

    /// Marks the session as started: its first sample describes wall time `at`.
    pub fn start(&mut self, at: Instant) {
        self.started = Some(at);
        self.rate_mark = Some((at, 0));
    }

    /// Takes one sample (`channels()` values). When the ring is full the sample is dropped and counted.
    pub fn push(&mut self, values: &[f32]) {
        if self.started.is_none() {
            self.started = Some(self.created);
        }
        self.taken = self.taken.saturating_add(1);
        if self.ring.len() + values.len() > self.ring_values {
            self.missed(1);
            return;
        }
        self.ring.extend(values.iter().copied());
    }

    /// Counts `samples` as lost (reported by the next [`Sampling::take_missed`]).
    pub fn missed(&mut self, samples: u64) {
        self.missed_unreported = self.missed_unreported.saturating_add(samples);
        self.missed_total = self.missed_total.saturating_add(samples);
    }

    /// A frame formed earlier was refused by the destination (slow reader): its samples are lost,
    /// visible to the reader as a packet-number gap.
    pub fn frame_dropped(&mut self, frame: &OutFrame) {
        let n = (frame.values.len() / self.channels()) as u64;
        self.sent = self.sent.saturating_sub(n);
        self.dropped_frames = self.dropped_frames.saturating_add(1);
        self.dropped(n);
    }

    fn dropped(&mut self, samples: u64) {
        self.dropped_unreported = self.dropped_unreported.saturating_add(samples);
        self.missed_total = self.missed_total.saturating_add(samples);
    }

    /// Samples lost to ring overflow not yet reported (for the `MISSED <k> SAMPLES` line); resets
    /// the count.
    pub fn take_missed(&mut self) -> u64 {
        core::mem::take(&mut self.missed_unreported)
    }

    /// Samples a slow destination refused (frames or MQTT publishes) not yet reported; resets the
    /// count.
    pub fn take_dropped(&mut self) -> u64 {
        core::mem::take(&mut self.dropped_unreported)
    }

    /// Grants a `reqSamples` credit of `n` samples. Returns false if one is already pending.
    pub fn request(&mut self, n: usize) -> bool {
        if self.pending_req.is_some() {
            return false;
        }
        self.pending_req = Some(n);
        true
    }

    /// A sample sent directly (MQTT: one publish per sample, no ring); `sent` false = dropped.
    pub fn take_direct(&mut self, sent: bool) {
        if self.started.is_none() {
            self.started = Some(self.created);
        }
        self.taken = self.taken.saturating_add(1);
        if sent {
            self.sent = self.sent.saturating_add(1);
        } else {
            self.dropped(1);
        }
    }

    /// Answers a pending `reqSamples` right away with what is buffered (at most its N samples).
    pub fn flush_request(&mut self) -> Option<OutFrame> {
        let n = self.pending_req.take()?;
        let have = self.ring.len() / self.channels();
        Some(self.form(n.min(have), true))
    }

    fn in_slot(&self, wall: Instant) -> bool {
        match self.params.slot {
            Some((s, n)) if n > 0 => wall.as_secs() % u64::from(n) == u64::from(s),
            _ => true,
        }
    }

    /// The next frame to send at wall time `wall`, if the gates allow one.
    pub fn poll_frame(&mut self, wall: Instant) -> Option<OutFrame> {
        let ch = self.channels();
        if let Some(n) = self.pending_req {
            if self.ring.len() >= n * ch {
                self.pending_req = None;
                return Some(self.form(n, true));
            }
            return None;
        }
        if !self.cts || !self.in_slot(wall) {
            return None;
        }
        let chunk = self.chunk_samples();
        (self.ring.len() >= chunk * ch).then(|| self.form(chunk, false))
    }

    fn form(&mut self, samples: usize, answers_request: bool) -> OutFrame {
        let n = (samples * self.channels()).min(self.ring.len());
        let values: Vec<f32> = self.ring.drain(..n).collect();
        let packet = self.packet;
        self.packet = self.packet.wrapping_add(1);
        self.sent = self
            .sent
            .saturating_add((values.len() / self.channels()) as u64);
        OutFrame {
            packet,
            values,
            answers_request,
        }
    }

    /// On stop: answers a pending `reqSamples` with what is buffered, then (without flow control) the
    /// rest in chunk-sized frames and a last shorter one.
    pub fn flush(&mut self) -> Vec<OutFrame> {
        let mut out = Vec::new();
        let ch = self.channels();
        if let Some(n) = self.pending_req.take() {
            let have = self.ring.len() / ch;
            out.push(self.form(n.min(have), true));
        }
        if !self.params.flow_ctr {
            let chunk = self.chunk_samples();
            while self.ring.len() >= ch {
                let have = self.ring.len() / ch;
                out.push(self.form(chunk.min(have), false));
            }
        }
        self.ring.clear();
        out
    }

    /// Once-per-second rate report: `(measured rate Hz, total samples)` since the last report.
    pub fn rate_report(&mut self, wall: Instant) -> Option<(f64, u64)> {
        let (t0, n0) = self.rate_mark?;
        let dt = wall.saturating_since(t0).as_secs_f64();
        if dt <= 0.0 {
            return None;
        }
        let rate = (self.taken.saturating_sub(n0)) as f64 / dt;
        self.rate_mark = Some((wall, self.taken));
        Some((rate, self.taken))
    }

    /// The statistics for the `stop` reply.
    pub fn stats(&self, stop: Instant) -> SessionTally {
        SessionTally {
            start: self.started.unwrap_or(self.created),
            stop,
            samples: self.taken,
            sent_samples: self.sent,
        }
    }

    /// Heap bytes of the ring.
    pub fn heap_bytes(&self) -> usize {
        self.ring.capacity() * 4
    }
}

/// The chunk-size rule of docs/protocol.md §3 for a destination (delegates to
/// [`wire::frame::chunk_size`](crate::wire::frame::chunk_size); UDP caps at 512, serial at 128 bytes).
pub fn default_chunk_bytes(rate_hz: u32, bytes_per_sample: usize, dest: Destination) -> usize {
    use crate::wire::frame::{Transport, chunk_size};
    let t = match dest {
        Destination::Udp(_) => Transport::Udp,
        Destination::Serial(_) => Transport::Serial,
        _ => Transport::Tcp,
    };
    chunk_size(rate_hz, bytes_per_sample, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_per_chunk_numbered_from_zero() {
        let params = SamplingParams {
            measures: Measures::VoltCurrentL1,
            rate_hz: 10,
            ..SamplingParams::default()
        };
        let t = Instant::from_secs(1);
        let mut s = Sampling::new(
            Some(ConnId(1)),
            Destination::Tcp(ConnId(1)),
            params,
            1024,
            t,
        );
        assert_eq!(s.chunk_samples(), 1); // floor(0.1·10·8) = 8 bytes = one v,i sample
        s.push(&[230.0, 1000.0]);
        let f = s.poll_frame(t).unwrap();
        assert_eq!((f.packet, f.values.len()), (0, 2));
        assert!(s.poll_frame(t).is_none());
    }

    #[test]
    fn chunk_rule() {
        let tcp = Destination::Tcp(ConnId(0));
        assert_eq!(default_chunk_bytes(1, 8, tcp), 8);
        assert_eq!(default_chunk_bytes(8000, 24, tcp), 1008);
        assert_eq!(default_chunk_bytes(100, 24, tcp), 240); // 240 -> 256 -> 10 samples
        assert_eq!(
            default_chunk_bytes(8000, 24, Destination::Serial(ConnId(0))),
            120
        );
    }
}
