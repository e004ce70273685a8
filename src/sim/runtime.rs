//! The tokio runtime around the engine: one task owns the [`Device`]; sockets, the pty, the MQTT bridge,
//! the SNTP client and the sample pump only move bytes and events to and from it.
//!
//! ```text
//!  accept 54321 ─┐                         ┌─> writer task per connection (bounded queue)
//!  accept 54322 ─┤   Msg (bounded mpsc)    │
//!  reader tasks ─┼──────────────> engine task: Device ──> Persist → FileStore
//!  pty thread   ─┤                 ▲  │ poll_event ──> Publish → MQTT bridge, SendDatagram → UDP,
//!  MQTT bridge  ─┤     10 ms tick ─┘  │                Connect → stream server, NtpRequest → SNTP,
//!  SNTP results ─┘ (samples, timers)  │                Announce → mDNS, Restart → rebuild in place
//! ```
//!
//! Back-pressure, both ways: output is pulled from the engine only while a connection's writer queue
//! has room, so a reader that stops reading costs at most that queue plus the engine's own bounded
//! per-connection queue (the engine drops, and numbers, what does not fit). Input follows
//! [`Device::handle_input`]'s contract: a reader task sends one chunk and reads its socket again only
//! once the engine has taken all of it; bytes the engine does not take yet (its command queue is
//! full) stay here and are offered again after every round, so no line is ever dropped.

use std::string::ToString as _;
use std::vec;
use std::vec::Vec;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;

use crate::device::{ConnId, ConnKind, Device, DeviceOptions, Event, Instant, PhysicalBlock};
use crate::hal::Store as _;
use crate::sim::cli::Args;
use crate::sim::grid::GridSource;
use crate::sim::mdns::Announcer;
use crate::sim::mqtt::{Bridge, BridgeEvent, Stopped};
use crate::sim::store::FileStore;
use crate::sim::{SimError, ntp, pty};

/// Bytes read from a socket per message to the engine task.
const READ_CHUNK: usize = 4096;
/// Largest chunk pulled from the engine per `poll_output` call.
const WRITE_CHUNK: usize = 16 * 1024;
/// Chunks queued per connection writer before the engine task stops pulling output for it.
const WRITER_QUEUE: usize = 8;
/// Messages queued towards the engine task.
const ENGINE_QUEUE: usize = 256;
/// Period of the sample pump and the output flush.
const TICK: Duration = Duration::from_millis(10);
/// How long an SNTP exchange may take.
const NTP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an outgoing stream-server connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the first settled measurement window before listening.
const BOOT_MAX: Duration = Duration::from_secs(2);
/// How long a dropped connection's writer may take to put its last bytes on the wire (a peer that
/// never reads cannot hold a task and a socket forever).
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How long SIGTERM waits for the MQTT bridge to deliver `offline` and disconnect.
const MQTT_GOODBYE: Duration = Duration::from_secs(3);

/// The host clock as the engine's [`Instant`].
pub fn host_now() -> Instant {
    let us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    Instant::from_micros(us)
}

/// Where an accepted or connected socket belongs.
#[derive(Debug, Clone, Copy)]
enum Role {
    Command,
    Raw,
    StreamServer,
}

/// Everything that wakes the engine task.
#[derive(Debug)]
enum Msg {
    Accepted {
        stream: TcpStream,
        peer: SocketAddr,
        role: Role,
    },
    Input {
        epoch: u64,
        conn: ConnId,
        bytes: Vec<u8>,
    },
    Closed {
        epoch: u64,
        conn: ConnId,
    },
    SerialInput(Vec<u8>),
    Ntp(Result<ntp::SntpSample, ntp::NtpError>),
}

/// One live connection as the engine task sees it.
struct Conn {
    out: mpsc::Sender<Vec<u8>>,
    reader: Option<AbortHandle>,
    writer: AbortHandle,
    /// Bytes read that the engine has not taken yet (its reader waits meanwhile).
    pending: Vec<u8>,
    /// Lets the reader read again once `pending` is empty.
    resume: Arc<Notify>,
}

/// Input of one connection that the engine takes at its own pace ([`Device::handle_input`]).
/// Returns true when everything was taken (the reader may read again).
fn offer(device: &mut Device, conn: ConnId, pending: &mut Vec<u8>) -> bool {
    if !pending.is_empty() {
        let n = device.handle_input(conn, host_now(), pending);
        pending.drain(..n.min(pending.len()));
    }
    pending.is_empty()
}

/// The engine task's state.
struct Engine {
    args: Args,
    device: Device,
    store: FileStore,
    /// Bumped on every in-place restart; messages of older connections are ignored.
    epoch: u64,
    conns: HashMap<ConnId, Conn>,
    serial_out: Option<mpsc::Sender<Vec<u8>>>,
    serial_conn: Option<ConnId>,
    serial_pending: Vec<u8>,
    serial_resume: Arc<Notify>,
    tx: mpsc::Sender<Msg>,
    udp: Option<UdpSocket>,
    bridge: Option<Bridge>,
    /// Bridges stopped and still delivering their last publishes; the next bridge waits for them.
    retired: Stopped,
    bridge_tx: mpsc::Sender<BridgeEvent>,
    announcer: Option<Announcer>,
    source: GridSource,
    samples: Vec<f32>,
    out_buf: Vec<u8>,
    local: SocketAddr,
    stream_local: SocketAddr,
}

/// The options the engine gets from the command line.
pub fn device_options(args: &Args, local: SocketAddr) -> DeviceOptions {
    crate::sim::options::from_args(args, local)
}

/// Loads every stored record slot.
fn restore(store: &mut FileStore) -> crate::device::Restored {
    crate::device::driver::restore(store)
}

impl Engine {
    fn now(&self) -> Instant {
        host_now()
    }

    fn boot(args: &Args, store: &mut FileStore, local: SocketAddr) -> Device {
        let restored = restore(store);
        Device::new(device_options(args, local), restored, host_now())
    }

    fn register(&mut self, kind: ConnKind) -> ConnId {
        let now = self.now();
        self.device.handle_connected(now, kind)
    }

    fn spawn_conn<S>(&mut self, stream: S, kind: ConnKind)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let conn = self.register(kind);
        let (mut rd, mut wr) = tokio::io::split(stream);
        let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(WRITER_QUEUE);
        let writer = tokio::spawn(async move {
            while let Some(chunk) = out_rx.recv().await {
                if wr.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            let _ = wr.shutdown().await;
        });
        let tx = self.tx.clone();
        let epoch = self.epoch;
        let resume = Arc::new(Notify::new());
        let taken = resume.clone();
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let bytes = buf.get(..n).unwrap_or(&[]).to_vec();
                        if tx.send(Msg::Input { epoch, conn, bytes }).await.is_err() {
                            return;
                        }
                        // Back-pressure: no more reading until the engine took all of it.
                        taken.notified().await;
                    }
                }
            }
            let _ = tx.send(Msg::Closed { epoch, conn }).await;
        });
        self.conns.insert(
            conn,
            Conn {
                out: out_tx,
                reader: Some(reader.abort_handle()),
                writer: writer.abort_handle(),
                pending: Vec::new(),
                resume,
            },
        );
    }

    fn accept(&mut self, stream: TcpStream, peer: SocketAddr, role: Role) {
        let _ = stream.set_nodelay(true);
        let kind = match role {
            Role::Command => ConnKind::Command { peer },
            Role::Raw => ConnKind::RawStream { peer },
            Role::StreamServer => ConnKind::StreamServer { peer },
        };
        self.spawn_conn(stream, kind);
    }

    /// Forgets a connection: its writer drains what is queued (for at most [`CLOSE_GRACE`]), then
    /// shuts the socket down.
    fn drop_conn(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            if let Some(r) = c.reader {
                r.abort();
            }
            let writer = c.writer;
            tokio::spawn(async move {
                tokio::time::sleep(CLOSE_GRACE).await;
                writer.abort();
            });
        }
    }

    /// Offers every connection's held input to the engine again (after each round).
    fn offer_input(&mut self) {
        for (&id, c) in &mut self.conns {
            if !c.pending.is_empty() && offer(&mut self.device, id, &mut c.pending) {
                c.resume.notify_one();
            }
        }
        if let Some(id) = self.serial_conn
            && !self.serial_pending.is_empty()
            && offer(&mut self.device, id, &mut self.serial_pending)
        {
            self.serial_resume.notify_one();
        }
    }

    fn closed_by_peer(&mut self, conn: ConnId) {
        if self.conns.contains_key(&conn) {
            self.drop_conn(conn);
            let now = self.now();
            self.device.handle_closed(conn, now);
        }
    }

    /// Pulls output for every connection while its writer has room.
    fn flush(&mut self) {
        let mut dead = Vec::new();
        for (&id, c) in &self.conns {
            loop {
                match c.out.try_reserve() {
                    Ok(permit) => {
                        let n = self.device.poll_output(id, &mut self.out_buf);
                        match self.out_buf.get(..n) {
                            Some(b) if n > 0 => permit.send(b.to_vec()),
                            _ => break,
                        }
                    }
                    Err(mpsc::error::TrySendError::Full(())) => break,
                    Err(mpsc::error::TrySendError::Closed(())) => {
                        dead.push(id);
                        break;
                    }
                }
            }
        }
        if let (Some(id), Some(out)) = (self.serial_conn, self.serial_out.as_ref()) {
            while let Ok(permit) = out.try_reserve() {
                let n = self.device.poll_output(id, &mut self.out_buf);
                match self.out_buf.get(..n) {
                    Some(b) if n > 0 => permit.send(b.to_vec()),
                    _ => break,
                }
            }
        }
        for id in dead {
            self.closed_by_peer(id);
        }
    }

    /// Feeds the samples the synthetic grid produced since the last call.
    fn pump_samples(&mut self) {
        let now = self.now();
        while let Some(start) = self.source.next_block(now, &mut self.samples) {
            let block = PhysicalBlock {
                rate_hz: self.source.rate_hz(),
                samples: &self.samples,
                start,
            };
            self.device.handle_samples(now, &block);
        }
    }

    fn timers(&mut self) {
        let now = self.now();
        if self.device.poll_timeout().is_some_and(|t| t <= now) {
            self.device.handle_timeout(now);
        }
    }

    /// Serves every pending engine event; returns true when the engine asked to restart.
    fn events(&mut self) -> bool {
        let mut restart = false;
        while let Some(ev) = self.device.poll_event() {
            match ev {
                Event::Persist(record) => {
                    if self.store.save(record.slot(), record.bytes()).is_err() {
                        tracing::warn!(
                            "state: cannot write {}",
                            self.store.path(record.slot()).display()
                        );
                    }
                }
                Event::NtpRequest { server } => {
                    let tx = self.tx.clone();
                    tokio::spawn(async move {
                        let r = ntp::query(&server, NTP_TIMEOUT).await;
                        let _ = tx.send(Msg::Ntp(r)).await;
                    });
                }
                Event::Restart(_) => restart = true,
                Event::Publish {
                    topic,
                    payload,
                    retain,
                } => {
                    if let Some(b) = &self.bridge {
                        b.publish(topic, payload, retain);
                    }
                }
                Event::SendDatagram { addr, bytes } => {
                    if let Some(u) = &self.udp {
                        // Non-blocking: a full socket buffer drops the frame (the gap shows in its number).
                        let _ = u.try_send_to(&bytes, addr);
                    }
                }
                Event::Connect { host, port } => {
                    let tx = self.tx.clone();
                    tokio::spawn(async move {
                        let c = tokio::time::timeout(
                            CONNECT_TIMEOUT,
                            TcpStream::connect((host.as_str(), port)),
                        )
                        .await;
                        match c {
                            Ok(Ok(stream)) => {
                                if let Ok(peer) = stream.peer_addr() {
                                    let _ = tx
                                        .send(Msg::Accepted {
                                            stream,
                                            peer,
                                            role: Role::StreamServer,
                                        })
                                        .await;
                                }
                            }
                            _ => tracing::info!("stream server {host}:{port} not reachable"),
                        }
                    });
                }
                Event::Close(conn) => {
                    // Whatever the engine still holds for it goes out first.
                    self.flush_one(conn);
                    self.drop_conn(conn);
                    let now = self.now();
                    self.device.handle_closed(conn, now);
                }
                Event::MqttConfigure(settings) => self.configure_mqtt(settings),
                Event::Announce { name } => {
                    if let Some(a) = self.announcer.as_mut()
                        && let Err(e) = a.announce(&name)
                    {
                        tracing::warn!("mdns: {e}");
                    }
                }
            }
        }
        restart
    }

    fn flush_one(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get(&conn) {
            while let Ok(permit) = c.out.try_reserve() {
                let n = self.device.poll_output(conn, &mut self.out_buf);
                match self.out_buf.get(..n) {
                    Some(b) if n > 0 => permit.send(b.to_vec()),
                    _ => break,
                }
            }
        }
    }

    /// Follows `Event::MqttConfigure`: the old session (if any) delivers what was published on it,
    /// then disconnects cleanly; the new one connects after that.
    fn configure_mqtt(&mut self, settings: Option<crate::device::MqttSettings>) {
        let wanted = settings;
        if self.bridge.as_ref().map(|b| &b.config) == wanted.as_ref() {
            return;
        }
        if let Some(b) = self.bridge.take() {
            self.retired.merge(b.stop());
        }
        if let Some(cfg) = wanted {
            let after = std::mem::take(&mut self.retired);
            self.bridge = Some(Bridge::start(
                cfg,
                self.args.reconnect_interval,
                self.bridge_tx.clone(),
                Some(after),
            ));
        }
    }

    /// Rebuilds the engine from the store; listeners, pty and bridge stay.
    fn restart(&mut self) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.flush_one(id);
            self.drop_conn(id);
        }
        // Input of the old engine's serial session is void; let the pty forwarder go on.
        self.serial_pending.clear();
        self.serial_resume.notify_one();
        // Like a rebooting meter, the new engine connects to its broker afresh (it starts
        // disconnected), after the old session delivered its `offline`.
        if let Some(b) = self.bridge.take() {
            self.retired.merge(b.stop());
        }
        self.epoch = self.epoch.wrapping_add(1);
        self.device = Engine::boot(&self.args, &mut self.store, self.local);
        self.serial_conn = if self.serial_out.is_some() {
            Some(self.device.handle_connected(host_now(), ConnKind::Serial))
        } else {
            None
        };
        self.announce();
        tracing::info!("engine restarted in place");
    }

    /// Announces the current name (at boot and after a restart; renames arrive as `Event::Announce`).
    fn announce(&mut self) {
        let name = self.device.config().name.clone();
        if let Some(a) = self.announcer.as_mut()
            && let Err(e) = a.announce(&name)
        {
            tracing::warn!("mdns: {e}");
        }
    }

    fn on_msg(&mut self, msg: Msg) {
        match msg {
            Msg::Accepted { stream, peer, role } => self.accept(stream, peer, role),
            Msg::Input { epoch, conn, bytes } if epoch == self.epoch => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.pending.extend_from_slice(&bytes);
                    if offer(&mut self.device, conn, &mut c.pending) {
                        c.resume.notify_one();
                    }
                }
            }
            Msg::Closed { epoch, conn } if epoch == self.epoch => self.closed_by_peer(conn),
            Msg::Input { .. } | Msg::Closed { .. } => {}
            Msg::SerialInput(bytes) => {
                let taken = match self.serial_conn {
                    Some(id) => {
                        self.serial_pending.extend_from_slice(&bytes);
                        offer(&mut self.device, id, &mut self.serial_pending)
                    }
                    None => true,
                };
                if taken {
                    self.serial_resume.notify_one();
                }
            }
            Msg::Ntp(r) => {
                let now = self.now();
                let result = crate::sim::options::ntp_result(r);
                self.device.handle_ntp(now, result);
            }
        }
    }

    fn on_bridge(&mut self, ev: BridgeEvent) {
        let now = self.now();
        match ev {
            BridgeEvent::Connected(up) => self.device.handle_mqtt_connected(now, up),
            BridgeEvent::Message { topic, payload } => {
                self.device.handle_mqtt(now, &topic, &payload)
            }
        }
    }

    /// One round after anything happened: timers, events (maybe restart), output, held input.
    fn settle(&mut self) {
        self.timers();
        if self.events() {
            self.restart();
            let _ = self.events();
        }
        self.flush();
        self.offer_input();
    }

    /// SIGTERM: the engine persists and publishes `offline`; returns the bridges to wait for (they
    /// deliver it, then disconnect cleanly).
    fn shutdown(&mut self) -> Stopped {
        let now = self.now();
        self.device.handle_shutdown(now);
        let _ = self.events();
        self.flush();
        if let Some(b) = self.bridge.take() {
            self.retired.merge(b.stop());
        }
        if let Some(a) = self.announcer.take() {
            a.shutdown();
        }
        std::mem::take(&mut self.retired)
    }
}

async fn accept_loop(listener: TcpListener, role: Role, tx: mpsc::Sender<Msg>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if tx.send(Msg::Accepted { stream, peer, role }).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Runs the simulator until SIGINT/SIGTERM (then persists and returns `Ok`).
pub async fn run(args: Args) -> Result<(), SimError> {
    let mut store =
        FileStore::open(&args.state).map_err(|e| SimError::State(args.state.clone(), e))?;
    crate::sim::options::apply_overrides(&args, &mut store)
        .map_err(|e| SimError::State(args.state.clone(), std::io::Error::other(e)))?;
    let cmd = TcpListener::bind((args.bind, args.port))
        .await
        .map_err(|e| SimError::Bind(SocketAddr::new(args.bind, args.port), e))?;
    let raw = TcpListener::bind((args.bind, args.stream_port))
        .await
        .map_err(|e| SimError::Bind(SocketAddr::new(args.bind, args.stream_port), e))?;
    let local = cmd.local_addr().map_err(SimError::Io)?;
    let stream_local = raw.local_addr().map_err(SimError::Io)?;
    let udp = UdpSocket::bind(SocketAddr::new(args.bind, 0)).await.ok();

    let (tx, mut rx) = mpsc::channel::<Msg>(ENGINE_QUEUE);
    let (bridge_tx, mut bridge_rx) = mpsc::channel::<BridgeEvent>(ENGINE_QUEUE);

    let announcer = if args.mdns {
        Some(
            Announcer::new(
                args.bind,
                local.port(),
                stream_local.port(),
                &crate::sim::options::firmware_version(),
            )
            .map_err(|e| SimError::Mdns(e.to_string()))?,
        )
    } else {
        None
    };

    let device = Engine::boot(&args, &mut store, local);
    let source = GridSource::new(&args, host_now()).map_err(SimError::Grid)?;
    let mut engine = Engine {
        device,
        store,
        epoch: 0,
        conns: HashMap::new(),
        serial_out: None,
        serial_conn: None,
        serial_pending: Vec::new(),
        serial_resume: Arc::new(Notify::new()),
        tx: tx.clone(),
        udp,
        bridge: None,
        retired: Stopped::default(),
        bridge_tx,
        announcer,
        source,
        samples: Vec::new(),
        out_buf: vec![0u8; WRITE_CHUNK],
        local,
        stream_local,
        args: args.clone(),
    };

    // Boot: measure in real time until the first settled window (≈0.6 s) before listening, so a host
    // program that connects at once reads a real value, never a half-filled window.
    let booted = std::time::Instant::now();
    while engine.device.measurements(host_now()).is_none() && booted.elapsed() < BOOT_MAX {
        tokio::time::sleep(TICK).await;
        engine.pump_samples();
    }
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {local} (stream {stream_local})");
        let _ = out.flush();
    }

    if args.serial {
        let p = pty::Pty::open().map_err(SimError::Pty)?;
        let (mut from_host, to_host, path) = p.spawn().map_err(SimError::Pty)?;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "serial on {}", path.display());
        let _ = out.flush();
        drop(out);
        engine.serial_out = Some(to_host);
        let now = host_now();
        engine.serial_conn = Some(engine.device.handle_connected(now, ConnKind::Serial));
        let stx = tx.clone();
        let taken = engine.serial_resume.clone();
        tokio::spawn(async move {
            while let Some(b) = from_host.recv().await {
                if stx.send(Msg::SerialInput(b)).await.is_err() {
                    return;
                }
                // Back-pressure: the pty is read again once the engine took this chunk.
                taken.notified().await;
            }
        });
    }

    tokio::spawn(accept_loop(cmd, Role::Command, tx.clone()));
    tokio::spawn(accept_loop(raw, Role::Raw, tx.clone()));
    drop(tx);

    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(SimError::Io)?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(SimError::Io)?;

    engine.announce();
    engine.settle();
    loop {
        tokio::select! {
            biased;
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            Some(msg) = rx.recv() => {
                engine.on_msg(msg);
                // Take what else is queued before the (comparatively costly) settle round.
                for _ in 0..64 {
                    match rx.try_recv() {
                        Ok(m) => engine.on_msg(m),
                        Err(_) => break,
                    }
                }
            }
            Some(ev) = bridge_rx.recv() => engine.on_bridge(ev),
            _ = tick.tick() => engine.pump_samples(),
        }
        engine.settle();
    }
    let goodbye = engine.shutdown();
    let _ = engine.stream_local;
    // `offline` reaches the broker before the clean disconnect (which sends no last will).
    goodbye.wait(MQTT_GOODBYE).await;
    // Give the writers a moment to put the last bytes on the wire.
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}
