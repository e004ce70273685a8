//! The host side of one command connection, sans I/O (the quinn-proto contract): the caller moves
//! bytes and time in, and takes bytes, events and the next deadline out. Nothing here reads a
//! socket or a clock, so the tokio [`Client`](super::Client), a blocking binding or a test all
//! drive the same tested state machine.
//!
//! ```text
//! let mut c = Connection::new(now, config);
//! let id = c.send(now, Request::Command(Command::GetPower))?;   // queues the line
//! while let Some(bytes) = c.poll_transmit(now) { write(bytes) }
//! c.handle_input(now, &read_bytes);                             // any cut of the stream
//! while let Some(ev) = c.poll_event() { ... }                   // Answered { id, .. }, Samples, Notice, ...
//! if c.poll_timeout() <= now { c.handle_timeout(now) }
//! ```
//!
//! What it guarantees, from docs/protocol.md §1 and §5:
//! - replies are matched to requests in order, one per line; `!` gets none, `?` gets `Setup done`,
//!   getLog's `"cmd":"log"` dump comes before its reply and belongs to it; a reply that names
//!   another command answers nobody here and is a [`Notice::Reply`];
//! - after a `restart`, `factoryReset` or `basicReset` reply nothing more is sent (the meter closes);
//! - on connect it takes the meter's unprompted `info` (or asks for it, on serial), then sends
//!   `auth` with the token before any request;
//! - a request's reply is awaited for [`ClientOptions::timeout`]; `!` goes out after
//!   [`ClientOptions::keepalive`] without writing; after [`ClientOptions::liveness`] without a byte
//!   from the meter it is asked for `info`, and the connection is lost if nothing comes back;
//! - `Data:` frames of this connection's sampling session become [`FrameSamples`] with their packet
//!   gap and zero-fill size; with flow control, [`Connection::want_samples`] grants `reqSamples`
//!   credit; `stop`, `?`, a new `sample` or the end of the connection end the session.

mod requests;
mod response;
mod sampling;
mod timers;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::string::{String, ToString};
use std::time::Instant;
use std::vec::Vec;

pub use requests::{Request, RequestId};
pub use response::Response;
pub use sampling::{FrameSamples, SampleStats, SampleTracker, SamplingInfo};

use super::error::ClientError;
use super::options::ClientOptions;
use crate::wire::command::Command;
use crate::wire::frame::{Demux, DemuxError, Event as StreamItem};
use crate::wire::log::LogLine;
use crate::wire::reply::Reply;
use requests::{Expect, Pending, Waiter, classify};
use timers::{Timer, TimerTable};

/// How the meter's `info` arrives when a connection opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    /// TCP: the meter sends it unprompted; it is asked for only if it is late
    /// ([`ClientOptions::connect_timeout`]).
    Unprompted,
    /// Serial: the meter sends nothing on its own; ask at once.
    Ask,
}

/// Something the meter sent that answers no request.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A log line (`Info:[I]...`).
    Log(LogLine),
    /// A reply nobody asked for (an unprompted `info`, a stale reply on a serial line, an error
    /// the meter sends before it closes the connection).
    Reply(Response),
    /// Any other text, and what could not be read (a line that is no reply, stream errors).
    Text(String),
}

/// What a request got back.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Answer {
    /// The replies in arrival order: none for `!`, getLog's dump then its reply, else one.
    pub replies: Vec<Response>,
    /// For a `sample` streaming over this connection: the session it started.
    pub sampling: Option<SamplingInfo>,
}

impl Answer {
    /// The reply to the line itself (the last one); `None` for `!`.
    pub fn reply(&self) -> Option<&Response> {
        self.replies.last()
    }
}

/// What happened, for the caller of [`Connection::poll_event`].
#[derive(Debug)]
pub enum ConnectionEvent {
    /// The meter's `info` came and the token (if any) was accepted: requests go out now.
    Connected {
        /// The `info` reply.
        info: Response,
    },
    /// A request is answered, refused by the transport, or timed out. An `"error":true` reply is
    /// an `Ok` here ([`Response::check`] turns it into an error).
    Answered {
        /// Which request.
        id: RequestId,
        /// Its answer.
        result: Result<Answer, ClientError>,
    },
    /// One frame of this connection's sampling session (or a frame that does not fit it).
    Samples(Result<FrameSamples, ClientError>),
    /// This connection's sampling session is over: `error` is `None` when it was stopped (`stop`,
    /// `?`, or a new `sample`), else why the connection ended.
    SamplingEnded {
        /// Why, when the connection ended.
        error: Option<ClientError>,
    },
    /// Something that answers no request.
    Notice(Notice),
    /// The connection is over: the meter closed it, the transport failed, the meter stopped
    /// answering, or it refused the connection (then this is the connect error). Nothing more
    /// happens; the caller closes the transport.
    Closed {
        /// Why.
        error: ClientError,
    },
}

/// Where the connection is in its life.
#[derive(Debug)]
enum Phase {
    /// Waiting for the unprompted `info`.
    Greeting,
    /// `info` asked for.
    Info,
    /// `auth` sent; the `info` reply kept.
    Auth(Response),
    /// Requests go out.
    Ready,
    /// Over, for this reason.
    Closed(ClientError),
}

/// A request sent before the connection was ready: it goes out after the handshake.
#[derive(Debug)]
struct Held {
    id: RequestId,
    line: String,
    cmd: String,
    expect: Expect,
}

/// The sans-IO state of one command connection to a meter. The caller moves the bytes; see the two layers in [`client`](crate::client).
#[derive(Debug)]
pub struct Connection {
    /// Splits the byte stream into replies, log lines and frames.
    demux: Demux,
    /// Everything that reacts to what the demultiplexer finds.
    core: Core,
}

#[derive(Debug)]
struct Core {
    opts: ClientOptions,
    phase: Phase,
    pending: VecDeque<Pending>,
    held: VecDeque<Held>,
    outbox: VecDeque<Vec<u8>>,
    events: VecDeque<ConnectionEvent>,
    sampling: Option<SampleTracker>,
    timers: TimerTable,
    last_read: Instant,
    /// When the liveness probe went out (nothing has arrived since).
    probed: Option<Instant>,
    /// The last error text the meter sent unprompted (e.g. `Idle connection closed`), for `Closed`.
    last_reason: Option<String>,
    next_id: u64,
    /// A restarting command was answered: the meter closes the connection next.
    restarting: bool,
}

impl Connection {
    /// A connection that has just opened at `now`.
    pub fn new(now: Instant, opts: ClientOptions, greeting: Greeting) -> Connection {
        let mut core = Core {
            opts,
            phase: Phase::Greeting,
            pending: VecDeque::new(),
            held: VecDeque::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            sampling: None,
            timers: TimerTable::default(),
            last_read: now,
            probed: None,
            last_reason: None,
            next_id: 0,
            restarting: false,
        };
        match greeting {
            Greeting::Unprompted => core
                .timers
                .set(Timer::Greeting, now + core.opts.connect_timeout),
            Greeting::Ask => core.ask_info(now),
        }
        Connection {
            demux: Demux::new(),
            core,
        }
    }

    /// Queues a request; its answer comes as [`ConnectionEvent::Answered`] with the returned id.
    /// Requests sent before the connection is ready go out after the handshake. Fails at once for
    /// a malformed raw line, after a restarting command, and on a closed connection.
    pub fn send(&mut self, now: Instant, request: Request) -> Result<RequestId, ClientError> {
        self.core.send(now, request)
    }

    /// The next line to write (with its `\n`); `now` is when it is written.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        let bytes = self.core.outbox.pop_front()?;
        if matches!(self.core.phase, Phase::Ready) {
            self.core
                .timers
                .set(Timer::Keepalive, now + self.core.opts.keepalive);
        }
        Some(bytes)
    }

    /// Bytes read from the meter, cut anywhere.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if self.is_closed() {
            return;
        }
        self.core.heard(now);
        let Connection { demux, core } = self;
        demux.push(bytes, |item| core.on_item(now, item));
    }

    /// The transport ended: the meter closed it (`error` `None`) or reading or writing failed.
    pub fn handle_closed(&mut self, error: Option<String>) {
        let reason = error.or_else(|| self.core.last_reason.take());
        self.core.close(ClientError::Closed { reason });
    }

    /// The next event, in the order things happened.
    pub fn poll_event(&mut self) -> Option<ConnectionEvent> {
        self.core.events.pop_front()
    }

    /// The earliest deadline; call [`Connection::handle_timeout`] when it has passed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.timers.next()
    }

    /// Runs what was due by `now`: the greeting fallback, reply timeouts, keepalive, liveness.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<Timer> = self.core.timers.expired(now).collect();
        for timer in due {
            self.core.on_timer(now, timer);
        }
    }

    /// With flow control: grants the next `reqSamples` credit once the previous one is used up.
    /// Call it whenever the consumer is ready for more samples.
    pub fn want_samples(&mut self, now: Instant) {
        self.core.want_samples(now);
    }

    /// With flow control, the credit asked for with each `reqSamples` (10..=2000, default 2000).
    pub fn set_flow_credit(&mut self, samples: u16) {
        if let Some(t) = self.core.sampling.as_mut() {
            t.set_flow_credit(samples);
        }
    }

    /// The sampling session of this connection, if one runs.
    pub fn sampling(&self) -> Option<&SamplingInfo> {
        self.core.sampling.as_ref().map(SampleTracker::info)
    }

    /// True once [`ConnectionEvent::Closed`] was produced.
    pub fn is_closed(&self) -> bool {
        matches!(self.core.phase, Phase::Closed(_))
    }

    /// Why the connection is over, if it is.
    pub fn close_reason(&self) -> Option<ClientError> {
        match &self.core.phase {
            Phase::Closed(e) => Some(e.duplicate()),
            _ => None,
        }
    }
}

impl Core {
    fn send(&mut self, now: Instant, request: Request) -> Result<RequestId, ClientError> {
        if let Phase::Closed(e) = &self.phase {
            return Err(e.duplicate());
        }
        if self.restarting {
            return Err(ClientError::Closed {
                reason: Some("the meter is restarting".into()),
            });
        }
        let (line, cmd, expect) = classify(request)?;
        let id = RequestId(self.next_id);
        self.next_id += 1;
        let held = Held {
            id,
            line,
            cmd,
            expect,
        };
        if matches!(self.phase, Phase::Ready) {
            self.release(now, held);
        } else {
            self.held.push_back(held);
        }
        Ok(id)
    }

    /// Puts a user request on the wire (queue) and into the list of replies awaited.
    fn release(&mut self, now: Instant, h: Held) {
        self.queue_line(&h.line);
        if h.expect == Expect::Nothing {
            self.events.push_back(ConnectionEvent::Answered {
                id: h.id,
                result: Ok(Answer::default()),
            });
            return;
        }
        self.await_reply(now, h.cmd, h.expect, Waiter::User(h.id));
    }

    fn queue_line(&mut self, line: &str) {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.outbox.push_back(bytes);
    }

    fn await_reply(&mut self, now: Instant, cmd: String, expect: Expect, waiter: Waiter) {
        let deadline = match waiter {
            Waiter::User(_) | Waiter::Handshake => Some(now + self.opts.timeout),
            Waiter::Probe | Waiter::Credit | Waiter::Abandoned => None,
        };
        self.pending.push_back(Pending {
            cmd,
            expect,
            waiter,
            deadline,
            preludes: Vec::new(),
        });
        self.arm_reply_timer();
    }

    /// The connection's own request (handshake, probe, credit).
    fn send_own(&mut self, now: Instant, cmd: &Command, waiter: Waiter) {
        self.queue_line(&cmd.encode());
        self.await_reply(now, cmd.name().to_string(), Expect::Reply, waiter);
    }

    fn ask_info(&mut self, now: Instant) {
        self.timers.stop(Timer::Greeting);
        self.phase = Phase::Info;
        self.send_own(now, &Command::Info, Waiter::Handshake);
    }

    fn arm_reply_timer(&mut self) {
        match self.pending.iter().filter_map(|p| p.deadline).min() {
            Some(at) => self.timers.set(Timer::Reply, at),
            None => self.timers.stop(Timer::Reply),
        }
    }

    /// Something arrived: the meter is there.
    fn heard(&mut self, now: Instant) {
        self.last_read = now;
        self.probed = None;
        if matches!(self.phase, Phase::Ready)
            && let Some(quiet) = self.opts.liveness
        {
            self.timers.set(Timer::Liveness, now + quiet);
        }
    }

    // ---- what the meter sends ----------------------------------------------------------------

    fn on_item(&mut self, now: Instant, item: Result<StreamItem<'_>, DemuxError>) {
        match item {
            Ok(StreamItem::Reply(payload)) => self.on_reply(now, payload),
            Ok(StreamItem::Log(payload)) => {
                let notice = match LogLine::parse(payload) {
                    Ok(line) => Notice::Log(line),
                    Err(_) => Notice::Text(String::from_utf8_lossy(payload).into_owned()),
                };
                self.notice(notice);
            }
            Ok(StreamItem::Text(payload)) => self.on_text(now, payload),
            Ok(StreamItem::Frame(frame)) => {
                // A frame with no session of ours (a stray one, or one after a stop) is dropped.
                if let Some(t) = self.sampling.as_mut() {
                    let block = t.frame(frame.packet, frame.payload);
                    self.events.push_back(ConnectionEvent::Samples(block));
                }
            }
            Err(e) => self.notice(Notice::Text(std::format!("(stream error: {e})"))),
        }
    }

    fn notice(&mut self, notice: Notice) {
        self.events.push_back(ConnectionEvent::Notice(notice));
    }

    fn on_text(&mut self, now: Instant, payload: &[u8]) {
        let text = String::from_utf8_lossy(payload).trim().to_string();
        let setup_done = text == "Setup done"
            && self
                .pending
                .front()
                .is_some_and(|p| p.expect == Expect::SetupDone);
        if !setup_done {
            self.notice(Notice::Text(text));
            return;
        }
        // `?` ends this connection's sampling session (without a `stop` reply).
        self.end_sampling(None);
        if let Some(p) = self.pending.pop_front() {
            self.arm_reply_timer();
            let mut replies = p.preludes;
            replies.push(Response::setup_done());
            self.deliver(
                now,
                p.waiter,
                Ok(Answer {
                    replies,
                    sampling: None,
                }),
            );
        }
    }

    fn on_reply(&mut self, now: Instant, payload: &[u8]) {
        let parsed = Response::parse(payload);
        let Some(front) = self.pending.front_mut() else {
            self.unsolicited(now, parsed, payload);
            return;
        };
        if let Ok(r) = &parsed {
            // getLog: the dump line comes first and belongs to the request.
            if front.expect == Expect::GetLog && matches!(r.reply(), Reply::GetLogDump { .. }) {
                front.preludes.push(r.clone());
                return;
            }
            // Replies come in request order and name their command. One that names another
            // command answers nobody here (a stale reply on a serial line, an unprompted `info`);
            // replies without `cmd` (old firmware) still match in order.
            if let Some(got) = r.cmd()
                && !front.cmd.is_empty()
                && got != front.cmd
            {
                let r = r.clone();
                self.notice(Notice::Reply(r));
                return;
            }
        }
        let Some(p) = self.pending.pop_front() else {
            return;
        };
        self.arm_reply_timer();
        let mut sampling = None;
        let result = match parsed {
            Ok(r) => {
                match p.expect {
                    Expect::Sample(req) if !r.is_error() && p.waiter != Waiter::Abandoned => {
                        // A new session: the old one (if any) is over, numbering starts again.
                        self.end_sampling(None);
                        match SamplingInfo::from_response(r.clone(), &req) {
                            Ok(info) => {
                                self.sampling =
                                    Some(SampleTracker::new(info.clone(), req.flow_control));
                                sampling = Some(info);
                            }
                            Err(e) => {
                                self.deliver(now, p.waiter, Err(e));
                                return;
                            }
                        }
                    }
                    Expect::Stop if !r.is_error() => self.end_sampling(None),
                    Expect::Restart if !r.is_error() => self.restarting = true,
                    _ => {}
                }
                let mut replies = p.preludes;
                replies.push(r);
                Ok(Answer { replies, sampling })
            }
            Err(e) => {
                // The meter answered the line, unreadably: a `stop` still ended the session.
                if p.expect == Expect::Stop {
                    self.end_sampling(None);
                }
                Err(ClientError::Protocol(std::format!(
                    "unreadable reply to `{}` ({e}): {}",
                    if p.cmd.is_empty() {
                        "the command"
                    } else {
                        &p.cmd
                    },
                    String::from_utf8_lossy(payload).trim()
                )))
            }
        };
        self.deliver(now, p.waiter, result);
    }

    /// A reply with no request waiting: the greeting, or a notice.
    fn unsolicited(
        &mut self,
        now: Instant,
        parsed: Result<Response, crate::wire::reply::ReplyError>,
        payload: &[u8],
    ) {
        match parsed {
            Ok(r) => {
                if matches!(self.phase, Phase::Greeting) {
                    match r.reply() {
                        Reply::Info(_) => return self.got_info(now, r),
                        Reply::Error { .. } => {
                            let msg = r.reply().message().unwrap_or_default();
                            return self.close(ClientError::Refused {
                                cmd: "connect".into(),
                                msg,
                            });
                        }
                        _ => {}
                    }
                }
                if r.is_error() {
                    self.last_reason = r.reply().message();
                }
                self.notice(Notice::Reply(r));
            }
            Err(e) => self.notice(Notice::Text(std::format!(
                "unreadable reply ({e}): {}",
                String::from_utf8_lossy(payload).trim()
            ))),
        }
    }

    /// Hands an answer to whoever waits for it.
    fn deliver(&mut self, now: Instant, waiter: Waiter, result: Result<Answer, ClientError>) {
        match waiter {
            Waiter::User(id) => self
                .events
                .push_back(ConnectionEvent::Answered { id, result }),
            Waiter::Handshake => self.handshake_answer(now, result),
            Waiter::Probe | Waiter::Credit | Waiter::Abandoned => {}
        }
    }

    // ---- connecting ----------------------------------------------------------------------------

    fn handshake_answer(&mut self, now: Instant, result: Result<Answer, ClientError>) {
        let response = result.and_then(|a| {
            a.replies
                .into_iter()
                .last()
                .ok_or_else(|| ClientError::Protocol("empty handshake reply".into()))
        });
        match std::mem::replace(&mut self.phase, Phase::Ready) {
            Phase::Info => match response.and_then(|r| r.check("info")) {
                Ok(info) => self.got_info(now, info),
                Err(e) => self.close(e),
            },
            Phase::Auth(info) => match response.and_then(|r| r.check("auth")) {
                Ok(_) => self.ready(now, info),
                // Firmware without access control does not know `auth`: nothing to unlock.
                Err(ClientError::Refused { msg, .. }) if msg == "unknown command" => {
                    self.ready(now, info);
                }
                Err(e) => self.close(e),
            },
            other => self.phase = other,
        }
    }

    fn got_info(&mut self, now: Instant, info: Response) {
        self.timers.stop(Timer::Greeting);
        match self.opts.token.clone().filter(|t| !t.is_empty()) {
            Some(token) => {
                self.phase = Phase::Auth(info);
                self.send_own(now, &Command::Auth { token }, Waiter::Handshake);
            }
            None => self.ready(now, info),
        }
    }

    fn ready(&mut self, now: Instant, info: Response) {
        self.phase = Phase::Ready;
        self.events.push_back(ConnectionEvent::Connected { info });
        self.timers.set(Timer::Keepalive, now + self.opts.keepalive);
        if let Some(quiet) = self.opts.liveness {
            self.timers
                .set(Timer::Liveness, self.last_read.max(now) + quiet);
        }
        while let Some(h) = self.held.pop_front() {
            self.release(now, h);
        }
    }

    // ---- time ----------------------------------------------------------------------------------

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        if matches!(self.phase, Phase::Closed(_)) {
            return;
        }
        match timer {
            Timer::Greeting => {
                if matches!(self.phase, Phase::Greeting) {
                    self.ask_info(now);
                } else {
                    self.timers.stop(Timer::Greeting);
                }
            }
            Timer::Reply => self.expire_replies(now),
            Timer::Keepalive => {
                self.queue_line(Command::Keepalive.name());
                self.timers.set(Timer::Keepalive, now + self.opts.keepalive);
            }
            Timer::Liveness => self.liveness(now),
        }
    }

    fn expire_replies(&mut self, now: Instant) {
        let after = self.opts.timeout;
        let mut expired = Vec::new();
        for p in self.pending.iter_mut() {
            if p.deadline.is_some_and(|d| d <= now) {
                p.deadline = None;
                expired.push((
                    std::mem::replace(&mut p.waiter, Waiter::Abandoned),
                    p.cmd.clone(),
                ));
            }
        }
        self.arm_reply_timer();
        for (waiter, what) in expired {
            let error = ClientError::Timeout { what, after };
            match waiter {
                Waiter::User(id) => self.events.push_back(ConnectionEvent::Answered {
                    id,
                    result: Err(error),
                }),
                Waiter::Handshake => return self.close(error),
                Waiter::Probe | Waiter::Credit | Waiter::Abandoned => {}
            }
        }
    }

    fn liveness(&mut self, now: Instant) {
        if self.probed.is_some() {
            let quiet = now.saturating_duration_since(self.last_read);
            return self.close(ClientError::ConnectionLost {
                reason: std::format!("no data from the meter for {:.0} s", quiet.as_secs_f64()),
            });
        }
        // `info` is answered in every state (busy, unauthenticated) and changes nothing; its reply
        // is matched in order like any other and dropped.
        self.send_own(now, &Command::Info, Waiter::Probe);
        self.probed = Some(now);
        self.timers.set(Timer::Liveness, now + self.opts.timeout);
    }

    // ---- sampling ------------------------------------------------------------------------------

    fn want_samples(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Ready) || self.restarting {
            return;
        }
        if let Some(samples) = self
            .sampling
            .as_mut()
            .and_then(SampleTracker::credit_to_grant)
        {
            self.send_own(now, &Command::ReqSamples { samples }, Waiter::Credit);
        }
    }

    fn end_sampling(&mut self, error: Option<ClientError>) {
        if self.sampling.take().is_some() {
            self.events
                .push_back(ConnectionEvent::SamplingEnded { error });
        }
    }

    // ---- the end -------------------------------------------------------------------------------

    fn close(&mut self, error: ClientError) {
        if matches!(self.phase, Phase::Closed(_)) {
            return;
        }
        for p in std::mem::take(&mut self.pending) {
            if let Waiter::User(id) = p.waiter {
                self.events.push_back(ConnectionEvent::Answered {
                    id,
                    result: Err(error.duplicate()),
                });
            }
        }
        for h in std::mem::take(&mut self.held) {
            self.events.push_back(ConnectionEvent::Answered {
                id: h.id,
                result: Err(error.duplicate()),
            });
        }
        self.end_sampling(Some(error.duplicate()));
        self.outbox.clear();
        self.timers.clear();
        self.events.push_back(ConnectionEvent::Closed {
            error: error.duplicate(),
        });
        self.phase = Phase::Closed(error);
    }
}
