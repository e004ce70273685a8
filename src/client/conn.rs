//! The connection actor: one task owns the socket (or serial port), demultiplexes what the meter
//! sends, matches JSON replies to requests in order, feeds data frames to the sampling stream,
//! forwards log lines, sends the keepalive `!` when nothing was written for 30 s, and notices a
//! meter that went away: after [`ClientOptions::liveness`] without a byte from it (a meter sends a
//! log line every second at the default level) it is asked for `info`, and if nothing at all comes
//! back within [`ClientOptions::timeout`] the connection is declared lost
//! ([`ClientError::ConnectionLost`]) even though the socket never reported an error (a meter that
//! lost power leaves a half-open TCP connection behind).

use std::collections::VecDeque;
use std::string::{String, ToString};
use std::time::Duration;
use std::vec::Vec;
use std::{format, vec};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use super::sample::{SampleMsg, SampleStream, SessionInfo};
use super::{ClientError, ClientOptions, Response, Target};
use crate::wire::command::{Command, MAX_LINE_BYTES, SampleRequest, StreamType};
use crate::wire::frame::{Demux, Event};
use crate::wire::log::LogLine;

/// Something the meter sent that is not the reply to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A log line (`Info:[I]...`).
    Log(LogLine),
    /// A JSON reply nobody asked for (e.g. an `info` after a reconnect of the meter's side).
    Reply(Response),
    /// Any other text line.
    Text(String),
}

/// What a request expects back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Nothing (`!`).
    Nothing,
    /// One JSON reply.
    Json,
    /// The `Setup done` text (`?`); also ends this connection's sampling session.
    SetupDone,
    /// getLog: a `{"cmd":"log",...}` line, then the reply.
    GetLog,
    /// sample over this connection: on success, frames go to a new stream.
    Sample,
    /// stop: the reply ends the stream.
    Stop,
}

impl Expect {
    pub(crate) fn for_cmd(cmd: &str, sample_here: bool) -> Expect {
        match cmd {
            "!" => Expect::Nothing,
            "?" => Expect::SetupDone,
            "getLog" => Expect::GetLog,
            "sample" if sample_here => Expect::Sample,
            "stop" => Expect::Stop,
            _ => Expect::Json,
        }
    }
}

/// Why the connection ended (what the actor tells everyone still waiting).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum End {
    /// The meter closed it (or reading failed); its last unprompted error text, if any.
    Closed(Option<String>),
    /// Nothing came back from the meter in time.
    Lost(String),
}

impl End {
    fn error(&self) -> ClientError {
        match self {
            End::Closed(reason) => ClientError::Closed {
                reason: reason.clone(),
            },
            End::Lost(reason) => ClientError::ConnectionLost {
                reason: reason.clone(),
            },
        }
    }
}

/// A reply with what came with it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) response: Response,
    /// Lines that belong to the reply and came before it (getLog's `{"cmd":"log",...}`).
    pub(crate) preludes: Vec<Response>,
    /// The frames of a sampling session this reply started.
    pub(crate) frames: Option<mpsc::Receiver<SampleMsg>>,
}

type AnswerTx = oneshot::Sender<Result<Answer, ClientError>>;

pub(crate) enum ToActor {
    Line {
        line: String,
        cmd: String,
        expect: Expect,
        reply: Option<AnswerTx>,
    },
}

struct Pending {
    cmd: String,
    expect: Expect,
    reply: Option<AnswerTx>,
    preludes: Vec<Response>,
}

/// A connection to one meter. Cheap to share behind an `Arc`; every method takes `&self`.
///
/// Requests are answered in the order they were sent (the protocol's ordering promise); log lines
/// and data frames may arrive in between and are routed to [`Client::notices`] and the
/// [`SampleStream`]. Dropping the client (and every stream) closes the connection, which also stops
/// a sampling session the connection owns.
#[derive(Debug)]
pub struct Client {
    tx: mpsc::UnboundedSender<ToActor>,
    /// Only the actor holds the sender: when the connection ends, every notice receiver sees
    /// `Closed` (after the notices still queued).
    notices: broadcast::Receiver<Notice>,
    end: watch::Receiver<Option<End>>,
    info: Option<Response>,
    opts: ClientOptions,
    peer: String,
    serial: bool,
}

impl Client {
    /// Connects with default options. See [`Client::connect_with`].
    pub async fn connect(target: &Target) -> Result<Client, ClientError> {
        Client::connect_with(target, ClientOptions::default()).await
    }

    /// Connects to `target`: TCP (names are resolved by DNS, then by mDNS as `<name>.local` or a
    /// `_elec._tcp` instance name) or a serial device. Over TCP it waits for the `info` the meter
    /// sends on connect; over serial (or if it does not come) it asks for it. A serial device's
    /// input is discarded when it is opened: whatever is pending there (log lines, replies to an
    /// earlier program's requests) belongs to nobody. With [`ClientOptions::token`] it then
    /// authenticates (an `Invalid token` reply is [`ClientError::Refused`]).
    pub async fn connect_with(target: &Target, opts: ClientOptions) -> Result<Client, ClientError> {
        match target {
            Target::Tcp { host, port } => {
                let addr = super::discover::resolve(host, *port, opts.connect_timeout).await?;
                let peer = addr.to_string();
                let stream = tokio::time::timeout(
                    opts.connect_timeout,
                    tokio::net::TcpStream::connect(addr),
                )
                .await
                .map_err(|_| ClientError::Connect {
                    addr: peer.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "connection timed out",
                    ),
                })?
                .map_err(|source| ClientError::Connect {
                    addr: peer.clone(),
                    source,
                })?;
                let _ = stream.set_nodelay(true);
                let (rd, wr) = stream.into_split();
                Client::from_stream(rd, wr, peer, false, opts).await
            }
            Target::Serial { path } => {
                use tokio_serial::SerialPortBuilderExt;
                let peer = path.display().to_string();
                let port = tokio_serial::new(peer.clone(), opts.baud_rate)
                    .open_native_async()
                    .map_err(|e| ClientError::Connect {
                        addr: peer.clone(),
                        source: std::io::Error::other(e.to_string()),
                    })?;
                {
                    use tokio_serial::SerialPort;
                    port.clear(tokio_serial::ClearBuffer::Input).map_err(|e| {
                        ClientError::Connect {
                            addr: peer.clone(),
                            source: std::io::Error::other(e.to_string()),
                        }
                    })?;
                }
                let (rd, wr) = tokio::io::split(port);
                Client::from_stream(rd, wr, peer, true, opts).await
            }
        }
    }

    /// Runs the protocol over any byte stream (a socket pair in tests, a PTY, ...). `serial`
    /// means "the meter sends no `info` on connect; ask for it".
    pub async fn from_stream<R, W>(
        rd: R,
        wr: W,
        peer: String,
        serial: bool,
        opts: ClientOptions,
    ) -> Result<Client, ClientError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let (notices, notice_rx) = broadcast::channel(1024);
        let (end_tx, end_rx) = watch::channel(None);
        let (first_tx, first_rx) = oneshot::channel();
        let actor = Actor {
            rx,
            notices,
            first: if serial { None } else { Some(first_tx) },
            pending: VecDeque::new(),
            sink: None,
            keepalive: opts.keepalive,
            liveness: opts.liveness,
            probe_timeout: opts.timeout,
            frame_buffer: opts.frame_buffer.max(1),
            last_reason: None,
            end: end_tx,
        };
        tokio::spawn(actor.run(rd, wr));
        let mut client = Client {
            tx,
            notices: notice_rx,
            end: end_rx,
            info: None,
            opts,
            peer,
            serial,
        };
        client.handshake(serial, first_rx).await?;
        client.authenticate().await?;
        Ok(client)
    }

    /// Gets the `info` of the connection: the unprompted one (TCP), else asks for it.
    async fn handshake(
        &mut self,
        serial: bool,
        first_rx: oneshot::Receiver<Result<Response, ClientError>>,
    ) -> Result<(), ClientError> {
        let client = self;
        if !serial {
            match tokio::time::timeout(client.opts.connect_timeout, first_rx).await {
                Ok(Ok(Ok(info))) => {
                    if info.is_error() {
                        return Err(ClientError::Refused {
                            cmd: "connect".into(),
                            msg: info.msg().unwrap_or("(no message)").to_string(),
                        });
                    }
                    client.info = Some(info);
                    return Ok(());
                }
                Ok(Ok(Err(e))) => return Err(e),
                Ok(Err(_)) => return Err(ClientError::Closed { reason: None }),
                Err(_) => {}
            }
        }
        let info = client.request(&Command::Info).await?;
        client.info = Some(info);
        Ok(())
    }

    /// Sends `auth` with the configured token (nothing without one). A meter that does not know
    /// `auth` (firmware without access control) answers `unknown command`: it has nothing to
    /// unlock, so that is not an error.
    async fn authenticate(&self) -> Result<(), ClientError> {
        let Some(token) = self.opts.token.as_deref().filter(|t| !t.is_empty()) else {
            return Ok(());
        };
        let cmd = Command::Auth {
            token: token.to_string(),
        };
        match self.request(&cmd).await {
            Ok(_) => Ok(()),
            Err(ClientError::Refused { msg, .. }) if msg == "unknown command" => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The `info` reply received when connecting.
    pub fn connect_info(&self) -> Option<&Response> {
        self.info.as_ref()
    }

    /// The peer address (or device path).
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The options in force.
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// Log lines and unsolicited messages, from now on (a lagging receiver loses the oldest).
    /// When the connection ends, the receiver reports `Closed` (see [`Client::closed`] for why).
    pub fn notices(&self) -> broadcast::Receiver<Notice> {
        self.notices.resubscribe()
    }

    /// Resolves when the connection has ended, with the reason: [`ClientError::Closed`] (the meter
    /// closed it, or reading failed) or [`ClientError::ConnectionLost`] (the meter stopped
    /// answering).
    pub async fn closed(&self) -> ClientError {
        let mut end = self.end.clone();
        match end.wait_for(Option::is_some).await {
            Ok(e) => e
                .as_ref()
                .map_or(ClientError::Closed { reason: None }, End::error),
            Err(_) => ClientError::Closed { reason: None },
        }
    }

    /// Sends a typed command and waits for its reply; an `"error":true` reply is an `Err`
    /// ([`ClientError::Refused`] with the meter's `msg`, or [`ClientError::Busy`]).
    ///
    /// `sample` is refused here (use [`Client::sample`], which returns the data stream).
    pub async fn request(&self, cmd: &Command) -> Result<Response, ClientError> {
        if matches!(cmd, Command::Sample(_)) {
            return Err(ClientError::InvalidCommand(
                "use Client::sample to start sampling".into(),
            ));
        }
        let name = cmd.name();
        let answer = self
            .send(cmd.encode(), name.to_string(), Expect::for_cmd(name, false))
            .await?;
        answer.response.check(name)
    }

    /// Sends a command line as given (one JSON object, `?` or `!`) and returns the reply whatever
    /// its `error` value, with the lines that came with it (getLog's log dump) first.
    /// `!` has no reply: the result is empty.
    pub async fn request_raw(&self, line: &str) -> Result<Vec<Response>, ClientError> {
        let line = line.trim();
        if line.contains(['\n', '\r']) {
            return Err(ClientError::InvalidCommand("a command is one line".into()));
        }
        if line.len() > MAX_LINE_BYTES {
            return Err(ClientError::InvalidCommand(format!(
                "line longer than {MAX_LINE_BYTES} bytes"
            )));
        }
        let cmd = match line.as_bytes().first() {
            Some(b'?') => "?".to_string(),
            Some(b'!') => "!".to_string(),
            Some(b'{') => serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("cmd").and_then(|c| c.as_str()).map(str::to_string))
                .unwrap_or_default(),
            _ => {
                return Err(ClientError::InvalidCommand(
                    "expected a JSON object, `?` or `!`".into(),
                ));
            }
        };
        if cmd == "sample" {
            return Err(ClientError::InvalidCommand(
                "use `record` (or Client::sample) to sample".into(),
            ));
        }
        let expect = Expect::for_cmd(&cmd, false);
        let answer = self.send(line.to_string(), cmd, expect).await?;
        let mut all = answer.preludes;
        if expect != Expect::Nothing {
            all.push(answer.response);
        }
        Ok(all)
    }

    pub(crate) async fn send(
        &self,
        line: String,
        cmd: String,
        expect: Expect,
    ) -> Result<Answer, ClientError> {
        let (tx, rx) = oneshot::channel();
        let what = cmd.clone();
        self.tx
            .send(ToActor::Line {
                line,
                cmd,
                expect,
                reply: Some(tx),
            })
            .map_err(|_| ClientError::Closed { reason: None })?;
        match tokio::time::timeout(self.opts.timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(ClientError::Closed { reason: None }),
            Err(_) => Err(ClientError::Timeout {
                what,
                after: self.opts.timeout,
            }),
        }
    }

    pub(crate) fn actor(&self) -> mpsc::UnboundedSender<ToActor> {
        self.tx.clone()
    }

    /// Starts a sampling session whose data comes over this connection (`type` TCP, or Serial on a
    /// serial connection; any other type in `req` is replaced). Returns the stream of sample
    /// blocks; dropping it sends `stop`.
    pub async fn sample(&self, mut req: SampleRequest) -> Result<SampleStream, ClientError> {
        req.stream = if self.serial {
            StreamType::Serial
        } else {
            StreamType::Tcp
        };
        req.prefix = true;
        let cmd = Command::Sample(req);
        let answer = self
            .send(cmd.encode(), "sample".into(), Expect::Sample)
            .await?;
        let response = answer.response.check("sample")?;
        let frames = answer
            .frames
            .ok_or_else(|| ClientError::Protocol("sample reply without a session".into()))?;
        let info = SessionInfo::from_response(response, &req)?;
        Ok(SampleStream::new(
            info,
            frames,
            self.actor(),
            self.opts.timeout,
            req.flow_control,
        ))
    }
}

struct Actor {
    rx: mpsc::UnboundedReceiver<ToActor>,
    notices: broadcast::Sender<Notice>,
    first: Option<oneshot::Sender<Result<Response, ClientError>>>,
    pending: VecDeque<Pending>,
    sink: Option<mpsc::Sender<SampleMsg>>,
    keepalive: Duration,
    liveness: Option<Duration>,
    probe_timeout: Duration,
    frame_buffer: usize,
    /// The last error text the meter sent unprompted (e.g. `Too many clients`), for `Closed`.
    last_reason: Option<String>,
    end: watch::Sender<Option<End>>,
}

/// An owned copy of a demultiplexer event.
enum Item {
    Reply(Vec<u8>),
    Log(Vec<u8>),
    Text(Vec<u8>),
    Frame {
        packet: u32,
        gap: u32,
        payload: Vec<u8>,
    },
    Garbage(String),
}

impl Actor {
    async fn run<R, W>(mut self, mut rd: R, mut wr: W)
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let mut demux = Demux::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut items: Vec<Item> = Vec::new();
        let mut last_write = Instant::now();
        let mut last_read = Instant::now();
        // When the liveness probe was sent (nothing has arrived since).
        let mut probed: Option<Instant> = None;
        let far = Duration::from_secs(86_400 * 365);
        let end = loop {
            let liveness_at = match (probed, self.liveness) {
                (Some(at), _) => at + self.probe_timeout,
                (None, Some(quiet)) => last_read + quiet,
                (None, None) => last_read + far,
            };
            tokio::select! {
                read = rd.read(&mut buf) => {
                    let n = match read {
                        Ok(0) => break End::Closed(self.last_reason.take()),
                        Ok(n) => n,
                        Err(e) => break End::Closed(Some(e.to_string())),
                    };
                    last_read = Instant::now();
                    probed = None;
                    demux.push(buf.get(..n).unwrap_or_default(), |ev| items.push(match ev {
                        Ok(Event::Reply(b)) => Item::Reply(b.to_vec()),
                        Ok(Event::Log(b)) => Item::Log(b.to_vec()),
                        Ok(Event::Text(b)) => Item::Text(b.to_vec()),
                        Ok(Event::Frame(f)) => Item::Frame { packet: f.packet, gap: f.gap, payload: f.payload.to_vec() },
                        Err(e) => Item::Garbage(e.to_string()),
                    }));
                    for item in items.drain(..) {
                        self.dispatch(item, &mut demux).await;
                    }
                }
                msg = self.rx.recv() => {
                    let Some(ToActor::Line { line, cmd, expect, reply }) = msg else {
                        let _ = wr.shutdown().await;
                        return;
                    };
                    let mut bytes = line.into_bytes();
                    bytes.push(b'\n');
                    if let Err(e) = wr.write_all(&bytes).await {
                        if let Some(r) = reply {
                            let _ = r.send(Err(ClientError::Io(e)));
                        }
                        continue;
                    }
                    let _ = wr.flush().await;
                    last_write = Instant::now();
                    match expect {
                        Expect::Nothing => {
                            if let Some(r) = reply {
                                let _ = r.send(Ok(Answer {
                                    response: Response::empty(),
                                    preludes: Vec::new(),
                                    frames: None,
                                }));
                            }
                        }
                        _ => self.pending.push_back(Pending { cmd, expect, reply, preludes: Vec::new() }),
                    }
                }
                () = tokio::time::sleep_until(last_write + self.keepalive) => {
                    if let Err(e) = wr.write_all(b"!\n").await {
                        break End::Closed(Some(e.to_string()));
                    }
                    let _ = wr.flush().await;
                    last_write = Instant::now();
                }
                () = tokio::time::sleep_until(liveness_at) => {
                    if probed.is_some() {
                        let quiet = last_read.elapsed();
                        break End::Lost(format!(
                            "no data from the meter for {:.0} s",
                            quiet.as_secs_f64()
                        ));
                    }
                    // `info` is answered in every state (busy, unauthenticated) and changes nothing;
                    // its reply is matched in order like any other and dropped.
                    let probe = Command::Info;
                    let mut bytes = probe.encode().into_bytes();
                    bytes.push(b'\n');
                    if let Err(e) = wr.write_all(&bytes).await {
                        break End::Closed(Some(e.to_string()));
                    }
                    let _ = wr.flush().await;
                    last_write = Instant::now();
                    probed = Some(Instant::now());
                    self.pending.push_back(Pending {
                        cmd: probe.name().to_string(),
                        expect: Expect::Json,
                        reply: None,
                        preludes: Vec::new(),
                    });
                }
            }
        };
        // The connection is gone: fail everything that waits.
        let closed = || end.error();
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(closed()));
        }
        for p in self.pending.drain(..) {
            if let Some(r) = p.reply {
                let _ = r.send(Err(closed()));
            }
        }
        if let Some(sink) = self.sink.take() {
            let _ = sink.send(SampleMsg::End(Some(closed()))).await;
        }
        let _ = self.end.send(Some(end));
    }

    async fn dispatch(&mut self, item: Item, demux: &mut Demux) {
        match item {
            Item::Frame {
                packet,
                gap,
                payload,
            } => {
                if let Some(sink) = &self.sink
                    && sink
                        .send(SampleMsg::Frame {
                            packet,
                            gap,
                            payload,
                        })
                        .await
                        .is_err()
                {
                    self.sink = None;
                }
            }
            Item::Log(bytes) => {
                if let Ok(line) = LogLine::parse(&bytes) {
                    let _ = self.notices.send(Notice::Log(line));
                } else {
                    let _ = self
                        .notices
                        .send(Notice::Text(String::from_utf8_lossy(&bytes).into_owned()));
                }
            }
            Item::Text(bytes) => {
                let text = String::from_utf8_lossy(&bytes).trim().to_string();
                if text == "Setup done"
                    && self
                        .pending
                        .front()
                        .is_some_and(|p| p.expect == Expect::SetupDone)
                {
                    self.end_session(None).await;
                    if let Some(p) = self.pending.pop_front()
                        && let Some(r) = p.reply
                    {
                        let mut obj = serde_json::Map::new();
                        obj.insert("msg".into(), serde_json::Value::String(text));
                        let _ = r.send(Ok(Answer {
                            response: Response::from_object(obj),
                            preludes: p.preludes,
                            frames: None,
                        }));
                    }
                } else {
                    let _ = self.notices.send(Notice::Text(text));
                }
            }
            Item::Garbage(e) => {
                let _ = self
                    .notices
                    .send(Notice::Text(format!("(stream error: {e})")));
            }
            Item::Reply(bytes) => {
                let parsed = Response::parse(&bytes);
                if let Some(p) = self.pending.front_mut() {
                    // getLog: the dump line comes first and belongs to the request.
                    if p.expect == Expect::GetLog
                        && let Ok(r) = &parsed
                        && r.cmd() == Some("log")
                        && r.get("error").is_none()
                    {
                        p.preludes.push(r.clone());
                        return;
                    }
                    // Replies come in request order and name their command. One that names
                    // another command answers nobody here: a stale reply on a serial line (to an
                    // earlier program's request), an unprompted `info`. It must not be taken as
                    // the answer to the waiting request (old firmware omits `cmd`: those still
                    // match in order).
                    if let Ok(r) = &parsed
                        && let Some(got) = r.cmd()
                        && !p.cmd.is_empty()
                        && got != p.cmd
                    {
                        let _ = self.notices.send(Notice::Reply(r.clone()));
                        return;
                    }
                } else {
                    match parsed {
                        Ok(r) => {
                            if let Some(first) = self.first.take() {
                                let _ = first.send(Ok(r));
                            } else {
                                if r.is_error() {
                                    self.last_reason = r.msg().map(str::to_string);
                                }
                                let _ = self.notices.send(Notice::Reply(r));
                            }
                        }
                        Err(e) => {
                            let _ = self.notices.send(Notice::Text(e.to_string()));
                        }
                    }
                    return;
                }
                let Some(p) = self.pending.pop_front() else {
                    return;
                };
                let mut frames = None;
                match (&parsed, p.expect) {
                    (Ok(r), Expect::Sample) if !r.is_error() => {
                        let (tx, rx) = mpsc::channel(self.frame_buffer);
                        self.end_session(None).await;
                        demux.reset_packet_numbering();
                        self.sink = Some(tx);
                        frames = Some(rx);
                    }
                    (Ok(r), Expect::Stop) if !r.is_error() => self.end_session(None).await,
                    _ => {}
                }
                if let Some(reply) = p.reply {
                    let _ = reply.send(parsed.map(|response| Answer {
                        response,
                        preludes: p.preludes,
                        frames,
                    }));
                }
            }
        }
    }

    async fn end_session(&mut self, error: Option<ClientError>) {
        if let Some(sink) = self.sink.take() {
            let _ = sink.send(SampleMsg::End(error)).await;
        }
    }
}
