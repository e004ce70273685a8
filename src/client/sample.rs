//! Sampling sessions as an async stream of [`FrameSamples`]. The gap accounting, zero-fill sizes
//! and flow-control credit are the sans-IO core's ([`SampleTracker`](super::SampleTracker)); this
//! only carries blocks from the connection task (or the UDP receiver) to the reader.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::channel::{SampleMsg, ToActor};
use super::connection::{FrameSamples, Request, Response, SampleStats, SamplingInfo};
use super::error::ClientError;
use crate::wire::command::Command;

/// The data of one sampling session. Read it with [`SampleStream::next`] (or as a
/// `futures_core::Stream`); stop it with [`SampleStream::stop`], or drop it (a `stop` is sent).
///
/// Reading slowly makes the connection stop reading once its frame buffer is full; the meter then
/// drops frames, which show up as `lost_packets`.
pub struct SampleStream {
    info: SamplingInfo,
    rx: mpsc::Receiver<SampleMsg>,
    actor: mpsc::UnboundedSender<ToActor>,
    timeout: Duration,
    zero_fill: bool,
    /// The blocks come over the command connection (which grants flow-control credit), not UDP.
    over_connection: bool,
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
        info: SamplingInfo,
        rx: mpsc::Receiver<SampleMsg>,
        actor: mpsc::UnboundedSender<ToActor>,
        timeout: Duration,
        over_connection: bool,
    ) -> SampleStream {
        SampleStream {
            info,
            rx,
            actor,
            timeout,
            zero_fill: false,
            over_connection,
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
    pub fn info(&self) -> &SamplingInfo {
        &self.info
    }

    /// The session's start reply (the stop summary comes from [`SampleStream::stop`]).
    pub fn start_reply(&self) -> &Response {
        &self.info.response
    }

    /// Totals of the blocks read so far.
    pub fn stats(&self) -> SampleStats {
        self.stats
    }

    /// Insert zero samples for lost packets so that sample `k` is always at `startTs + k / rate`
    /// (as the original Python client does), from the next block read on. Off by default.
    pub fn set_zero_fill(&mut self, on: bool) {
        self.zero_fill = on;
    }

    /// With flow control (`flowCtr`), the credit asked for with each `reqSamples` (10..=2000,
    /// default 2000). No effect without flow control.
    pub fn set_flow_credit(&mut self, samples: u16) {
        if self.over_connection {
            let _ = self.actor.send(ToActor::FlowCredit(samples));
        }
    }

    /// The next block; `None` when the session ended (stopped by anyone), `Some(Err)` when the
    /// connection failed or the meter sent something impossible.
    pub async fn next(&mut self) -> Option<Result<FrameSamples, ClientError>> {
        if self.ended {
            return None;
        }
        self.want_more();
        let msg = self.rx.recv().await;
        self.on_msg(msg)
    }

    /// With flow control the connection grants the next credit once the previous one is used up.
    fn want_more(&self) {
        if self.over_connection {
            let _ = self.actor.send(ToActor::WantSamples);
        }
    }

    fn on_msg(&mut self, msg: Option<SampleMsg>) -> Option<Result<FrameSamples, ClientError>> {
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
            Some(SampleMsg::Block(Ok(mut block))) => {
                if self.zero_fill {
                    block.fill_gap();
                }
                self.stats.add(&block);
                Some(Ok(block))
            }
            Some(SampleMsg::Block(Err(e))) => Some(Err(e)),
        }
    }

    /// Sends `stop` and returns the meter's summary (a [`Reply::Stopped`](crate::wire::reply::Reply::Stopped)
    /// with `samples`, `sent_samples`, `avg_rate`, ...). Frames still in flight are discarded.
    pub async fn stop(mut self) -> Result<Response, ClientError> {
        self.stop_sent = true;
        let (tx, mut reply) = oneshot::channel();
        self.actor
            .send(ToActor::Send {
                request: Request::Command(Command::Stop),
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
                        Ok(d) => d.and_then(|d| {
                            d.answer
                                .replies
                                .into_iter()
                                .last()
                                .ok_or_else(|| ClientError::Protocol("no reply to `stop`".into()))?
                                .check("stop")
                        }),
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
    type Item = Result<FrameSamples, ClientError>;

    fn poll_next(
        self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
    ) -> core::task::Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return core::task::Poll::Ready(None);
        }
        this.want_more();
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
            let _ = self.actor.send(ToActor::Send {
                request: Request::Command(Command::Stop),
                reply: None,
            });
        }
    }
}
