//! Sampling sessions as an async stream of sample blocks, with packet-gap accounting.

use std::string::{String, ToString};
use std::time::Duration;
use std::vec::Vec;

use tokio::sync::{mpsc, oneshot};

use super::conn::{Expect, ToActor};
use super::recording::parse_unix_ts_us;
use super::{ClientError, Response};
use crate::wire::command::{Command, Measures, SampleRequest, StreamType};

pub(crate) enum SampleMsg {
    Frame {
        packet: u32,
        gap: u32,
        payload: Vec<u8>,
    },
    End(Option<ClientError>),
}

/// What the meter said when the session started (its `sample` reply), parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    /// The reply as sent.
    pub response: Response,
    /// The measure set (from the reply's `measures`, else the request's).
    pub measures: Measures,
    /// Channel names in frame order (`v_l1,i_l1,...`).
    pub channels: Vec<String>,
    /// Units per channel (`V,mA,...`).
    pub units: Vec<String>,
    /// Samples per second.
    pub rate_hz: u32,
    /// Payload bytes of a full frame (`chunksize`).
    pub chunk_bytes: usize,
    /// `startTs` in µs since the Unix epoch.
    pub start_unix_us: Option<i64>,
    /// Where the data goes.
    pub stream: StreamType,
}

impl SessionInfo {
    /// Reads the `sample` reply keys (`measures`, `chunksize`, `samplingrate`, `unit`, `startTs`).
    pub fn from_response(
        response: Response,
        req: &SampleRequest,
    ) -> Result<SessionInfo, ClientError> {
        let measures = response
            .str("measures")
            .and_then(Measures::parse)
            .unwrap_or(req.measures);
        let channels: Vec<String> = measures.channels().split(',').map(str::to_string).collect();
        let units: Vec<String> = response
            .str("unit")
            .unwrap_or(measures.unit())
            .split(',')
            .map(str::to_string)
            .collect();
        if let Some(m) = response.f64("measurements")
            && m as usize != channels.len()
        {
            return Err(ClientError::Protocol(std::format!(
                "sample reply: measurements {m} does not match measures {}",
                measures.reported()
            )));
        }
        let rate_hz = response
            .f64("samplingrate")
            .map_or(req.rate_hz, |r| r.round() as u32)
            .max(1);
        let frame = channels.len() * 4;
        let chunk_bytes = response
            .f64("chunksize")
            .map_or(frame, |c| c as usize)
            .max(frame);
        let start_unix_us = response.get("startTs").and_then(|v| match v {
            serde_json::Value::String(s) => parse_unix_ts_us(s),
            serde_json::Value::Number(n) => n.as_f64().map(|s| (s * 1e6).round() as i64),
            _ => None,
        });
        Ok(SessionInfo {
            response,
            measures,
            channels,
            units,
            rate_hz,
            chunk_bytes,
            start_unix_us,
            stream: req.stream,
        })
    }

    /// Values per sample.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }
}

/// One frame's worth of samples.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleBlock {
    /// The frame's packet number.
    pub packet: u32,
    /// Packets lost right before this frame.
    pub lost_packets: u32,
    /// Zero samples inserted in front of the real ones for the lost packets (per channel), when
    /// zero-fill is on.
    pub zero_filled: usize,
    /// Values per sample.
    pub channels: usize,
    /// Interleaved values (`zero_filled` zero frames first, then the frame's samples).
    pub samples: Vec<f32>,
}

impl SampleBlock {
    /// Samples per channel in this block.
    pub fn frames(&self) -> usize {
        self.samples.len() / self.channels.max(1)
    }
}

/// Totals of a stream so far.
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

/// The data of one sampling session. Read it with [`SampleStream::next`] (or as a
/// `futures_core::Stream`); stop it with [`SampleStream::stop`], or drop it (a `stop` is sent).
///
/// Reading slowly makes the connection stop reading once its frame buffer is full; the meter then
/// drops frames, which show up as `lost_packets`.
pub struct SampleStream {
    info: SessionInfo,
    rx: mpsc::Receiver<SampleMsg>,
    actor: mpsc::UnboundedSender<ToActor>,
    timeout: Duration,
    zero_fill: bool,
    flow_credit: Option<u16>,
    credit_left: i64,
    frames_per_packet: usize,
    stats: SampleStats,
    ended: bool,
    stop_sent: bool,
    udp_task: Option<tokio::task::JoinHandle<()>>,
}

impl core::fmt::Debug for SampleStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SampleStream")
            .field("info", &self.info)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl SampleStream {
    pub(crate) fn new(
        info: SessionInfo,
        rx: mpsc::Receiver<SampleMsg>,
        actor: mpsc::UnboundedSender<ToActor>,
        timeout: Duration,
        flow_control: bool,
    ) -> SampleStream {
        let frames_per_packet = (info.chunk_bytes / (4 * info.channel_count().max(1))).max(1);
        SampleStream {
            info,
            rx,
            actor,
            timeout,
            zero_fill: false,
            flow_credit: flow_control.then_some(2000),
            credit_left: 0,
            frames_per_packet,
            stats: SampleStats::default(),
            ended: false,
            stop_sent: false,
            udp_task: None,
        }
    }

    pub(crate) fn with_udp_task(mut self, task: tokio::task::JoinHandle<()>) -> SampleStream {
        self.udp_task = Some(task);
        self
    }

    /// The session's parameters.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// Totals so far.
    pub fn stats(&self) -> SampleStats {
        self.stats
    }

    /// Insert zero samples for lost packets so that sample `k` is always at `startTs + k / rate`
    /// (as the original Python client does). Off by default.
    pub fn set_zero_fill(&mut self, on: bool) {
        self.zero_fill = on;
    }

    /// With flow control (`flowCtr`), the credit asked for with each `reqSamples` (10..=2000,
    /// default 2000). No effect without flow control.
    pub fn set_flow_credit(&mut self, samples: u16) {
        if self.flow_credit.is_some() {
            self.flow_credit = Some(samples.clamp(10, 2000));
        }
    }

    /// The next block; `None` when the session ended (stopped by anyone), `Some(Err)` when the
    /// connection failed or the meter sent something impossible.
    pub async fn next(&mut self) -> Option<Result<SampleBlock, ClientError>> {
        if self.ended {
            return None;
        }
        self.grant_credit();
        let msg = self.rx.recv().await;
        self.on_msg(msg)
    }

    /// With flow control: ask for the next `reqSamples` credit once the previous one is used up.
    fn grant_credit(&mut self) {
        if let Some(credit) = self.flow_credit
            && self.credit_left <= 0
        {
            let cmd = Command::ReqSamples { samples: credit };
            let _ = self.actor.send(ToActor::Line {
                line: cmd.encode(),
                cmd: "reqSamples".into(),
                expect: Expect::Json,
                reply: None,
            });
            self.credit_left += i64::from(credit);
        }
    }

    fn on_msg(&mut self, msg: Option<SampleMsg>) -> Option<Result<SampleBlock, ClientError>> {
        match msg {
            None => {
                self.ended = true;
                Some(Err(ClientError::Closed { reason: None }))
            }
            Some(SampleMsg::End(e)) => {
                self.ended = true;
                self.stop_sent = true;
                e.map(Err)
            }
            Some(SampleMsg::Frame {
                packet,
                gap,
                payload,
            }) => Some(self.block(packet, gap, &payload)),
        }
    }

    fn block(&mut self, packet: u32, gap: u32, payload: &[u8]) -> Result<SampleBlock, ClientError> {
        let ch = self.info.channel_count().max(1);
        if !payload.len().is_multiple_of(4 * ch) {
            return Err(ClientError::Protocol(std::format!(
                "frame {packet}: {} bytes is not a whole number of {ch}-channel samples",
                payload.len()
            )));
        }
        let frames = payload.len() / (4 * ch);
        let zero_filled = if self.zero_fill {
            gap as usize * self.frames_per_packet
        } else {
            0
        };
        let mut samples = Vec::with_capacity((zero_filled + frames) * ch);
        samples.resize(zero_filled * ch, 0.0);
        let (quads, _) = payload.as_chunks::<4>();
        samples.extend(quads.iter().map(|q| f32::from_le_bytes(*q)));
        self.stats.packets += 1;
        self.stats.lost_packets += u64::from(gap);
        self.stats.samples += frames as u64;
        self.stats.zero_filled += zero_filled as u64;
        self.credit_left -= frames as i64;
        Ok(SampleBlock {
            packet,
            lost_packets: gap,
            zero_filled,
            channels: ch,
            samples,
        })
    }

    /// Sends `stop` and returns the meter's summary (`samples`, `sent_samples`, `avg_rate`, ...).
    /// Frames still in flight are discarded.
    pub async fn stop(mut self) -> Result<Response, ClientError> {
        self.stop_sent = true;
        let (tx, mut reply) = oneshot::channel();
        let cmd = Command::Stop;
        self.actor
            .send(ToActor::Line {
                line: cmd.encode(),
                cmd: "stop".into(),
                expect: Expect::Stop,
                reply: Some(tx),
            })
            .map_err(|_| ClientError::Closed { reason: None })?;
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                answer = &mut reply => {
                    self.ended = true;
                    return match answer {
                        Ok(a) => a.and_then(|a| a.response.check("stop")),
                        Err(_) => Err(ClientError::Closed { reason: None }),
                    };
                }
                // Keep draining so the connection is never blocked on a full frame buffer.
                msg = self.rx.recv(), if !self.ended => {
                    if matches!(msg, None | Some(SampleMsg::End(_))) {
                        self.ended = true;
                    }
                }
                () = &mut deadline => {
                    return Err(ClientError::Timeout { what: "stop".into(), after: self.timeout });
                }
            }
        }
    }
}

impl futures_core::Stream for SampleStream {
    type Item = Result<SampleBlock, ClientError>;

    fn poll_next(
        self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
    ) -> core::task::Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return core::task::Poll::Ready(None);
        }
        this.grant_credit();
        match this.rx.poll_recv(cx) {
            core::task::Poll::Pending => core::task::Poll::Pending,
            core::task::Poll::Ready(msg) => core::task::Poll::Ready(this.on_msg(msg)),
        }
    }
}

impl Drop for SampleStream {
    fn drop(&mut self) {
        if let Some(task) = self.udp_task.take() {
            task.abort();
        }
        if !self.stop_sent && !self.ended {
            let cmd = Command::Stop;
            let _ = self.actor.send(ToActor::Line {
                line: cmd.encode(),
                cmd: "stop".into(),
                expect: Expect::Stop,
                reply: None,
            });
        }
    }
}

impl SampleStream {
    /// The session's start reply (the stop summary comes from [`SampleStream::stop`]).
    pub fn start_reply(&self) -> &Response {
        &self.info.response
    }
}
