//! The tokio [`Client`]: one task moves bytes between the socket (or serial port) and a sans-IO
//! [`Connection`], which holds every protocol rule (reply matching, handshake, timeouts, keepalive,
//! liveness, sampling). The task turns the connection's events into answers for the waiting
//! callers, blocks for the [`SampleStream`], and [`Notice`]s.

use std::collections::HashMap;
use std::string::{String, ToString};
use std::time::Duration;
use std::vec;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::channel::{AnswerTx, Delivered, SampleMsg, ToActor};
use super::connection::{
    Connection, ConnectionEvent, Greeting, Notice, Request, RequestId, Response,
};
use super::error::ClientError;
use super::host::Target;
use super::options::ClientOptions;
use super::sample::SampleStream;
use crate::wire::command::{Command, SampleRequest, StreamType};
use crate::wire::reply::{InfoReply, Reply};

/// A connection to one meter. Cheap to share behind an `Arc`; every method takes `&self`.
///
/// Requests are answered in the order they were sent (the protocol's ordering promise); log lines
/// and data frames may arrive in between and are routed to [`Client::notices`] and the
/// [`SampleStream`]. Dropping the client (and every stream) closes the connection, which also stops
/// a sampling session the connection owns.
#[derive(Debug)]
pub struct Client {
    tx: mpsc::UnboundedSender<ToActor>,
    /// Only the task holds the sender: when the connection ends, every notice receiver sees
    /// `Closed` (after the notices still queued).
    notices: broadcast::Receiver<Notice>,
    end: watch::Receiver<Option<ClientError>>,
    info: InfoReply,
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
        let (connected_tx, connected_rx) = oneshot::channel();
        let greeting = if serial {
            Greeting::Ask
        } else {
            Greeting::Unprompted
        };
        let actor = Actor {
            conn: Connection::new(std::time::Instant::now(), opts.clone(), greeting),
            rx,
            notices,
            end: end_tx,
            connected: Some(connected_tx),
            waiters: HashMap::new(),
            sink: None,
            frame_buffer: opts.frame_buffer.max(1),
        };
        tokio::spawn(actor.run(rd, wr));
        let info = match connected_rx.await {
            Ok(Ok(info)) => info,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(ClientError::Closed { reason: None }),
        };
        let Reply::Info(info) = info.into_reply() else {
            return Err(ClientError::Protocol(
                "the meter's greeting is no info".into(),
            ));
        };
        Ok(Client {
            tx,
            notices: notice_rx,
            end: end_rx,
            info: *info,
            opts,
            peer,
            serial,
        })
    }

    /// The `info` the meter sent (or was asked for) when connecting.
    pub fn connect_info(&self) -> &InfoReply {
        &self.info
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
                .map_or(ClientError::Closed { reason: None }, ClientError::duplicate),
            Err(_) => ClientError::Closed { reason: None },
        }
    }

    /// Sends a typed command and waits for its reply; an `"error":true` reply is an `Err`
    /// ([`ClientError::Refused`] with the meter's `msg`, or [`ClientError::Busy`]).
    ///
    /// `sample` is refused here (use [`Client::sample`], which returns the data stream), and so is
    /// `!`, which has no reply ([`Client::request_raw`] sends it).
    pub async fn request(&self, cmd: &Command) -> Result<Response, ClientError> {
        match cmd {
            Command::Sample(_) => {
                return Err(ClientError::InvalidCommand(
                    "use Client::sample to start sampling".into(),
                ));
            }
            Command::Keepalive => {
                return Err(ClientError::InvalidCommand(
                    "`!` has no reply (send it with Client::request_raw)".into(),
                ));
            }
            _ => {}
        }
        let name = cmd.name();
        let d = self.send(Request::Command(cmd.clone()), name).await?;
        d.answer
            .replies
            .into_iter()
            .last()
            .ok_or_else(|| ClientError::Protocol(std::format!("no reply to `{name}`")))?
            .check(name)
    }

    /// Sends a command line as given (one JSON object, `?` or `!`) and returns the reply whatever
    /// its `error` value, with the lines that came with it (getLog's log dump) first.
    /// `!` has no reply: the result is empty.
    pub async fn request_raw(&self, line: &str) -> Result<std::vec::Vec<Response>, ClientError> {
        let what = line.trim().to_string();
        let d = self.send(Request::Line(line.to_string()), &what).await?;
        Ok(d.answer.replies)
    }

    /// Sends `request` and waits for its answer (at most [`ClientOptions::timeout`], also when the
    /// connection task is held up by a sample reader that does not read).
    pub(crate) async fn send(
        &self,
        request: Request,
        what: &str,
    ) -> Result<Delivered, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(ToActor::Send {
                request,
                reply: Some(tx),
            })
            .map_err(|_| ClientError::Closed { reason: None })?;
        match tokio::time::timeout(self.opts.timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(ClientError::Closed { reason: None }),
            Err(_) => Err(ClientError::Timeout {
                what: what.to_string(),
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
        let d = self
            .send(Request::Command(Command::Sample(req)), "sample")
            .await?;
        let Delivered { answer, blocks } = d;
        if let Some(r) = answer.replies.last() {
            r.clone().check("sample")?;
        }
        let (Some(info), Some(blocks)) = (answer.sampling, blocks) else {
            return Err(ClientError::Protocol(
                "sample reply without a session".into(),
            ));
        };
        Ok(SampleStream::new(
            info,
            blocks,
            self.actor(),
            self.opts.timeout,
            true,
        ))
    }
}

/// The task that owns the transport and the [`Connection`].
struct Actor {
    conn: Connection,
    rx: mpsc::UnboundedReceiver<ToActor>,
    notices: broadcast::Sender<Notice>,
    end: watch::Sender<Option<ClientError>>,
    connected: Option<oneshot::Sender<Result<Response, ClientError>>>,
    waiters: HashMap<RequestId, AnswerTx>,
    sink: Option<mpsc::Sender<SampleMsg>>,
    frame_buffer: usize,
}

impl Actor {
    async fn run<R, W>(mut self, mut rd: R, mut wr: W)
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let mut buf = vec![0u8; 64 * 1024];
        let far = Duration::from_secs(86_400 * 365);
        loop {
            self.flush(&mut wr).await;
            while let Some(ev) = self.conn.poll_event() {
                self.deliver(ev).await;
            }
            if self.conn.is_closed() {
                break;
            }
            let deadline = self
                .conn
                .poll_timeout()
                .unwrap_or_else(|| std::time::Instant::now() + far);
            tokio::select! {
                read = rd.read(&mut buf) => {
                    let now = std::time::Instant::now();
                    match read {
                        Ok(0) => self.conn.handle_closed(None),
                        Ok(n) => self.conn.handle_input(now, buf.get(..n).unwrap_or_default()),
                        Err(e) => self.conn.handle_closed(Some(e.to_string())),
                    }
                }
                msg = self.rx.recv() => match msg {
                    Some(msg) => self.command(msg),
                    // The client and every stream are gone: close the connection.
                    None => {
                        let _ = wr.shutdown().await;
                        return;
                    }
                },
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                    self.conn.handle_timeout(std::time::Instant::now());
                }
            }
        }
        let _ = wr.shutdown().await;
    }

    /// Writes what the connection has to send.
    async fn flush<W: AsyncWrite + Unpin>(&mut self, wr: &mut W) {
        let mut wrote = false;
        while let Some(bytes) = self.conn.poll_transmit(std::time::Instant::now()) {
            if let Err(e) = wr.write_all(&bytes).await {
                self.conn.handle_closed(Some(e.to_string()));
                return;
            }
            wrote = true;
        }
        if wrote && let Err(e) = wr.flush().await {
            self.conn.handle_closed(Some(e.to_string()));
        }
    }

    fn command(&mut self, msg: ToActor) {
        let now = std::time::Instant::now();
        match msg {
            ToActor::Send { request, reply } => match self.conn.send(now, request) {
                Ok(id) => {
                    if let Some(reply) = reply {
                        self.waiters.insert(id, reply);
                    }
                }
                Err(e) => {
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(e));
                    }
                }
            },
            ToActor::WantSamples => self.conn.want_samples(now),
            ToActor::FlowCredit(n) => self.conn.set_flow_credit(n),
        }
    }

    async fn deliver(&mut self, ev: ConnectionEvent) {
        match ev {
            ConnectionEvent::Connected { info } => {
                if let Some(c) = self.connected.take() {
                    let _ = c.send(Ok(info));
                }
            }
            ConnectionEvent::Answered { id, result } => {
                let delivered = result.map(|answer| {
                    let blocks = answer.sampling.is_some().then(|| {
                        let (tx, rx) = mpsc::channel(self.frame_buffer);
                        self.sink = Some(tx);
                        rx
                    });
                    Delivered { answer, blocks }
                });
                if let Some(w) = self.waiters.remove(&id) {
                    let _ = w.send(delivered);
                }
            }
            ConnectionEvent::Samples(block) => {
                // Waiting here when the reader is slow is the back-pressure: nothing more is read
                // from the socket until the reader catches up.
                if let Some(sink) = &self.sink
                    && sink.send(SampleMsg::Block(block)).await.is_err()
                {
                    self.sink = None;
                }
            }
            ConnectionEvent::SamplingEnded { error } => {
                if let Some(sink) = self.sink.take() {
                    let _ = sink.send(SampleMsg::End(error)).await;
                }
            }
            ConnectionEvent::Notice(n) => {
                let _ = self.notices.send(n);
            }
            ConnectionEvent::Closed { error } => {
                if let Some(c) = self.connected.take() {
                    let _ = c.send(Err(error.duplicate()));
                }
                let _ = self.end.send(Some(error));
            }
        }
    }
}
