//! The host side of a sampling session, without I/O: what the `sample` reply announced, packet-gap
//! accounting, zero-fill sizes, `reqSamples` credit (docs/protocol.md §3.3, §5).
//!
//! [`Connection`](super::Connection) runs one [`SampleTracker`] for a session whose frames come over
//! the command connection; a UDP receiver runs its own on the datagrams ([`SampleTracker::datagram`]).

use std::string::{String, ToString};
use std::vec::Vec;

use super::response::Response;
use crate::client::error::ClientError;
use crate::wire::command::{Measures, SampleRequest, StreamType};
use crate::wire::frame::Frame;
use crate::wire::reply::{Reply, SampleStarted};

/// What the meter said when the session started (its `sample` reply), and what follows from it.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingInfo {
    /// The reply as sent.
    pub response: Response,
    /// The measure set of the reply.
    pub measures: Measures,
    /// Channel names in frame order (`v_l1,i_l1,...`); `ch1,ch2,...` when the reply's
    /// `measurements` disagrees with its `measures` (docs/protocol.md §A).
    pub channels: Vec<String>,
    /// Units per channel (`V,mA,...`); empty texts when the channels are unnamed.
    pub units: Vec<String>,
    /// Samples per second.
    pub rate_hz: u32,
    /// Payload bytes of a full frame (`chunksize`).
    pub chunk_bytes: usize,
    /// `startTs` in µs since the Unix epoch.
    pub start_unix_us: Option<i64>,
    /// Where the data goes (the request's destination).
    pub stream: StreamType,
}

impl SamplingInfo {
    /// Reads a `sample` success reply for `req`. The channel count is the reply's (its
    /// `measurements` when that disagrees with `measures`); names and units come from `measures`
    /// only when the two agree.
    pub fn from_response(
        response: Response,
        req: &SampleRequest,
    ) -> Result<SamplingInfo, ClientError> {
        let Reply::SampleStarted(started) = response.reply() else {
            return Err(ClientError::Protocol(std::format!(
                "expected a sample reply, got {}",
                response.json()
            )));
        };
        let started: SampleStarted = *started;
        let count = started.channel_count();
        let (channels, units) = match started.measurements {
            None => (
                split(started.measures.channels()),
                split(started.measures.unit()),
            ),
            Some(_) => (
                (1..=count).map(|k| std::format!("ch{k}")).collect(),
                std::vec![String::new(); count],
            ),
        };
        let frame = count * 4;
        Ok(SamplingInfo {
            measures: started.measures,
            channels,
            units,
            rate_hz: started.rate_hz.max(1),
            chunk_bytes: usize::try_from(started.chunk_size_bytes)
                .unwrap_or(usize::MAX)
                .max(frame),
            start_unix_us: started.start_ts_ms.checked_mul(1000),
            stream: req.stream,
            response,
        })
    }

    /// Values per sample.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Samples per channel in a full frame.
    pub fn frames_per_packet(&self) -> usize {
        (self.chunk_bytes / (4 * self.channel_count().max(1))).max(1)
    }
}

fn split(list: &str) -> Vec<String> {
    list.split(',').map(str::to_string).collect()
}

/// The samples of one `Data:` frame, with the loss before it.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameSamples {
    /// The frame's packet number.
    pub packet: u32,
    /// Packets lost right before this frame.
    pub lost_packets: u32,
    /// Samples per channel those lost packets held (`lost_packets` × samples of a full frame): what
    /// a zero-fill inserts to keep the time base (sample `k` at `startTs + k / rate`).
    pub gap_frames: usize,
    /// Zero samples (per channel) in front of the frame's own ones: `gap_frames` after
    /// [`FrameSamples::fill_gap`], else 0.
    pub zero_filled: usize,
    /// Values per sample.
    pub channels: usize,
    /// Interleaved values (`zero_filled` zero samples first, then the frame's samples).
    pub samples: Vec<f32>,
}

impl FrameSamples {
    /// Samples per channel in this block.
    pub fn frames(&self) -> usize {
        self.samples.len() / self.channels.max(1)
    }

    /// Puts `gap_frames` zero samples in front of the frame's own (once), as the original Python
    /// client does, so that a recording keeps its time base across a loss.
    pub fn fill_gap(&mut self) {
        let missing = self.gap_frames.saturating_sub(self.zero_filled);
        if missing == 0 {
            return;
        }
        let zeros = missing * self.channels.max(1);
        self.samples.splice(0..0, std::iter::repeat_n(0.0, zeros));
        self.zero_filled = self.gap_frames;
    }
}

/// Totals of a sampling session so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SampleStats {
    /// Frames received.
    pub packets: u64,
    /// Packets lost (gaps in the numbering).
    pub lost_packets: u64,
    /// Samples per channel received.
    pub samples: u64,
    /// Zero samples per channel inserted for lost packets.
    pub zero_filled: u64,
}

impl SampleStats {
    /// Counts one block (its own samples, its loss, the zeros it carries).
    pub fn add(&mut self, block: &FrameSamples) {
        self.packets += 1;
        self.lost_packets += u64::from(block.lost_packets);
        self.samples += (block.frames() - block.zero_filled) as u64;
        self.zero_filled += block.zero_filled as u64;
    }
}

/// Packet-number accounting for frames in arrival order (docs/protocol.md §3.3): the first frame has no
/// gap, a frame `k` ahead of the expected number follows `k` lost frames, and one that goes
/// backwards (a duplicate or late datagram) is reported so that it can be dropped.
#[derive(Debug, Default, Clone, Copy)]
pub struct PacketCounter {
    next: Option<u32>,
}

impl PacketCounter {
    /// The gap before `packet`, or `None` for a duplicate / late packet (to drop).
    pub fn accept(&mut self, packet: u32) -> Option<u32> {
        let gap = match self.next {
            None => 0,
            Some(n) => {
                let ahead = packet.wrapping_sub(n);
                if ahead > u32::MAX / 2 {
                    return None;
                }
                ahead
            }
        };
        self.next = Some(packet.wrapping_add(1));
        Some(gap)
    }

    /// The gap before `packet` on an ordered stream (TCP, serial), where a number that goes
    /// backwards is a restarted numbering, not a loss: it reports 0 and numbering goes on from it.
    pub fn observe(&mut self, packet: u32) -> u32 {
        let gap = self.accept(packet).unwrap_or(0);
        self.next = Some(packet.wrapping_add(1));
        gap
    }
}

/// One sampling session as the host follows it: decodes frames into [`FrameSamples`], counts
/// gaps, and with flow control hands out `reqSamples` credit.
#[derive(Debug, Clone)]
pub struct SampleTracker {
    info: SamplingInfo,
    counter: PacketCounter,
    /// Number of the next prefix-less datagram (they carry none).
    raw_packet: u32,
    /// With flow control: the credit asked for at a time.
    flow_credit: Option<u16>,
    /// Credit granted and not yet used up by arrived samples.
    credit_left: i64,
}

impl SampleTracker {
    /// Default `reqSamples` credit: the largest the protocol allows.
    pub const DEFAULT_CREDIT: u16 = 2000;

    /// Follows the session `info` announced; with `flow_control` nothing arrives without credit.
    pub fn new(info: SamplingInfo, flow_control: bool) -> SampleTracker {
        SampleTracker {
            info,
            counter: PacketCounter::default(),
            raw_packet: 0,
            flow_credit: flow_control.then_some(SampleTracker::DEFAULT_CREDIT),
            credit_left: 0,
        }
    }

    /// The session's parameters.
    pub fn info(&self) -> &SamplingInfo {
        &self.info
    }

    /// With flow control, the credit asked for with each `reqSamples` (clamped to 10..=2000).
    pub fn set_flow_credit(&mut self, samples: u16) {
        if self.flow_credit.is_some() {
            self.flow_credit = Some(samples.clamp(10, 2000));
        }
    }

    /// With flow control, once the previous credit is used up: the `reqSamples` count to ask for
    /// now (and it is counted as granted). `None` without flow control or while credit is left.
    pub fn credit_to_grant(&mut self) -> Option<u16> {
        let credit = self.flow_credit?;
        if self.credit_left > 0 {
            return None;
        }
        self.credit_left += i64::from(credit);
        Some(credit)
    }

    /// A `Data:` frame of the command connection (`gap` is ignored: the tracker numbers frames
    /// itself from the session's start).
    pub fn frame(&mut self, packet: u32, payload: &[u8]) -> Result<FrameSamples, ClientError> {
        let lost = self.counter.observe(packet);
        self.block(packet, lost, payload)
    }

    /// A UDP datagram: a `Data:` frame with `prefix`, else bare samples (no loss can be seen).
    /// `None` for a datagram to drop: not a frame, a duplicate, or late.
    pub fn datagram(
        &mut self,
        datagram: &[u8],
        prefix: bool,
    ) -> Option<Result<FrameSamples, ClientError>> {
        if !prefix {
            let packet = self.raw_packet;
            self.raw_packet = self.raw_packet.wrapping_add(1);
            return Some(self.block(packet, 0, datagram));
        }
        let frame = Frame::new_checked(datagram).ok()?;
        let lost = self.counter.accept(frame.packet_number())?;
        Some(self.block(frame.packet_number(), lost, frame.payload()))
    }

    fn block(
        &mut self,
        packet: u32,
        lost: u32,
        payload: &[u8],
    ) -> Result<FrameSamples, ClientError> {
        let ch = self.info.channel_count().max(1);
        if !payload.len().is_multiple_of(4 * ch) {
            return Err(ClientError::Protocol(std::format!(
                "frame {packet}: {} bytes is not a whole number of {ch}-channel samples",
                payload.len()
            )));
        }
        let (quads, _) = payload.as_chunks::<4>();
        let block = FrameSamples {
            packet,
            lost_packets: lost,
            gap_frames: lost as usize * self.info.frames_per_packet(),
            zero_filled: 0,
            channels: ch,
            samples: quads.iter().map(|q| f32::from_le_bytes(*q)).collect(),
        };
        self.credit_left -= block.frames() as i64;
        Ok(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_gaps_and_duplicates() {
        let mut c = PacketCounter::default();
        assert_eq!(c.accept(5), Some(0));
        assert_eq!(c.accept(6), Some(0));
        assert_eq!(c.accept(9), Some(2));
        assert_eq!(c.accept(8), None);
        assert_eq!(c.accept(9), None);
        assert_eq!(c.accept(10), Some(0));
        let mut c = PacketCounter::default();
        assert_eq!(c.accept(u32::MAX), Some(0));
        assert_eq!(c.accept(1), Some(1), "numbers wrap after 2^32 - 1");
        let mut c = PacketCounter::default();
        assert_eq!(
            (c.observe(7), c.observe(9), c.observe(0), c.observe(1)),
            (0, 1, 0, 0)
        );
    }

    #[test]
    fn fill_gap_inserts_zeros_once() {
        let mut b = FrameSamples {
            packet: 4,
            lost_packets: 2,
            gap_frames: 4,
            zero_filled: 0,
            channels: 2,
            samples: std::vec![9.0, 10.0],
        };
        b.fill_gap();
        b.fill_gap();
        assert_eq!(b.zero_filled, 4);
        assert_eq!(
            b.samples,
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 9.0, 10.0]
        );
        let mut stats = SampleStats::default();
        stats.add(&b);
        assert_eq!(
            stats,
            SampleStats {
                packets: 1,
                lost_packets: 2,
                samples: 1,
                zero_filled: 4
            }
        );
    }
}
