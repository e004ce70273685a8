//! The tokio runtime around the engine: one task owns the [`Driver`] (the engine on the simulator's
//! HAL: the synthetic grid, the host clock, the state directory, a restart in place); sockets, the
//! pty, the MQTT bridge, mDNS and the SNTP client only move bytes and actions to and from it.
//!
//! ```text
//!  accept 54321 ─┐                         ┌─> writer task per connection (bounded queue)
//!  accept 54322 ─┤   Msg (bounded mpsc)    │
//!  reader tasks ─┼──────────────> engine task: Driver ─ Persist → FileStore, Restart → reboot in place
//!  pty thread   ─┤                 ▲  │ serve_actions ──> Publish → MQTT bridge, SendDatagram → UDP,
//!  MQTT bridge  ─┤     10 ms tick ─┘  │                  Connect → stream server, NtpRequest → SNTP,
//!  SNTP results ─┘ (samples, timers)  │                  Announce → mDNS, Close → drop the socket
//! ```
//!
//! Back-pressure, both ways: output is pulled from the engine only while a connection's writer queue
//! has room ([`Engine::flush_conn`], the one routine that moves output), so a reader that stops
//! reading costs at most that queue plus the engine's own bounded per-connection queue (the engine
//! drops, and numbers, what does not fit). Input follows
//! [`Device::handle_input`](crate::device::Device::handle_input)'s contract: a reader task sends one
//! chunk and reads its socket again only once the engine has taken all of it; bytes the engine does
//! not take yet (its command queue is full) stay here and are offered again after every round, so no
//! line is ever dropped.

use std::string::ToString as _;
use std::vec;
use std::vec::Vec;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;

use crate::device::driver::Driver;
use crate::device::{Action, ConnId, ConnKind, DeviceOptions};
use crate::sim::cli::Args;
use crate::sim::grid::GridSource;
use crate::sim::hal::{HostClock, InPlaceRestart};
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

/// The engine on the simulator's HAL: the synthetic grid, the host clock, the state directory and a
/// restart in place.
type SimDriver = Driver<GridSource<HostClock>, HostClock, FileStore, InPlaceRestart>;

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

/// One live connection as the engine task sees it: a socket (reader and writer tasks) or the pty.
struct Conn {
    out: mpsc::Sender<Vec<u8>>,
    /// The socket's reader and writer tasks (`None` for the pty, whose threads outlive engines).
    tasks: Option<(Option<AbortHandle>, AbortHandle)>,
    /// Bytes read that the engine has not taken yet (its reader waits meanwhile).
    pending: Vec<u8>,
    /// Lets the reader read again once `pending` is empty.
    resume: Arc<Notify>,
}

/// What [`Engine::flush_conn`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flushed {
    /// Everything the engine had went out, or the writer queue is full.
    Open,
    /// The writer is gone (the peer closed).
    Gone,
}

/// The pty's ends, kept across in-place restarts.
struct Serial {
    out: mpsc::Sender<Vec<u8>>,
    resume: Arc<Notify>,
}

/// The engine task's state.
struct Engine {
    args: Args,
    driver: SimDriver,
    /// Bumped on every in-place restart; messages of older connections are ignored.
    epoch: u64,
    conns: HashMap<ConnId, Conn>,
    serial: Option<Serial>,
    serial_conn: Option<ConnId>,
    tx: mpsc::Sender<Msg>,
    udp: Option<UdpSocket>,
    bridge: Option<Bridge>,
    /// Bridges stopped and still delivering their last publishes; the next bridge waits for them.
    retired: Stopped,
    bridge_tx: mpsc::Sender<BridgeEvent>,
    announcer: Option<Announcer>,
    out_buf: Vec<u8>,
    local: SocketAddr,
}

impl Engine {
    /// The engine options of this run.
    fn options(&self) -> DeviceOptions {
        crate::sim::options::from_args(&self.args, self.local)
    }

    fn spawn_conn<S>(&mut self, stream: S, kind: ConnKind)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let now = self.driver.now();
        let conn = self.driver.device.handle_connected(now, kind);
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
                tasks: Some((Some(reader.abort_handle()), writer.abort_handle())),
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

    /// Connects the pty to the (new) engine as its serial console.
    fn attach_serial(&mut self) {
        let Some(serial) = self.serial.as_ref() else {
            return;
        };
        let (out, resume) = (serial.out.clone(), serial.resume.clone());
        let now = self.driver.now();
        let conn = self.driver.device.handle_connected(now, ConnKind::Serial);
        self.serial_conn = Some(conn);
        self.conns.insert(
            conn,
            Conn {
                out,
                tasks: None,
                pending: Vec::new(),
                resume,
            },
        );
    }

    /// Forgets a connection: its writer drains what is queued (for at most [`CLOSE_GRACE`]), then
    /// shuts the socket down.
    fn drop_conn(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        match c.tasks {
            Some((reader, writer)) => {
                if let Some(r) = reader {
                    r.abort();
                }
                tokio::spawn(async move {
                    tokio::time::sleep(CLOSE_GRACE).await;
                    writer.abort();
                });
            }
            None => {
                // The pty: its input for the old engine is void; let the forwarder go on.
                self.serial_conn = None;
                c.resume.notify_one();
            }
        }
    }

    /// Offers a connection's held input to the engine (`Device::handle_input`'s back-pressure
    /// contract); its reader may read again once the engine took all of it.
    fn offer(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !c.pending.is_empty() {
            let n = self.driver.handle_input(conn, &c.pending);
            c.pending.drain(..n.min(c.pending.len()));
            if c.pending.is_empty() {
                c.resume.notify_one();
            }
        }
    }

    /// Offers every connection's held input again (after each round).
    fn offer_input(&mut self) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.offer(id);
        }
    }

    fn closed_by_peer(&mut self, conn: ConnId) {
        if self.conns.contains_key(&conn) {
            self.drop_conn(conn);
            let now = self.driver.now();
            self.driver.device.handle_closed(conn, now);
        }
    }

    /// Pulls output for one connection while its writer has room: the one routine that moves bytes
    /// from the engine to a socket or the pty.
    fn flush_conn(&mut self, conn: ConnId) -> Flushed {
        let Some(c) = self.conns.get(&conn) else {
            return Flushed::Open;
        };
        loop {
            match c.out.try_reserve() {
                Ok(permit) => {
                    let n = self.driver.device.poll_output(conn, &mut self.out_buf);
                    match self.out_buf.get(..n) {
                        Some(b) if n > 0 => permit.send(b.to_vec()),
                        _ => return Flushed::Open,
                    }
                }
                Err(mpsc::error::TrySendError::Full(())) => return Flushed::Open,
                // A pty that went away is no peer closing: its engine connection stays.
                Err(mpsc::error::TrySendError::Closed(())) if c.tasks.is_none() => {
                    return Flushed::Open;
                }
                Err(mpsc::error::TrySendError::Closed(())) => return Flushed::Gone,
            }
        }
    }

    /// Pulls output for every connection while its writer has room.
    fn flush(&mut self) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            if self.flush_conn(id) == Flushed::Gone {
                self.closed_by_peer(id);
            }
        }
    }

    /// Serves the engine's actions until there are none left (carrying one out may cause more);
    /// returns true when the engine asked to restart.
    fn actions(&mut self) -> bool {
        let mut restart = false;
        loop {
            let pumped = self.driver.serve_actions();
            restart |= pumped.restarted;
            if pumped.network.is_empty() {
                return restart;
            }
            for action in pumped.network {
                self.carry_out(action);
            }
        }
    }

    /// One action the driver leaves to the binding: the network side of the engine.
    fn carry_out(&mut self, action: Action) {
        match action {
            Action::NtpRequest { server } => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let r = ntp::query(&server, NTP_TIMEOUT).await;
                    let _ = tx.send(Msg::Ntp(r)).await;
                });
            }
            Action::Publish {
                topic,
                payload,
                retain,
            } => {
                if let Some(b) = &self.bridge {
                    b.publish(topic, payload, retain);
                }
            }
            Action::SendDatagram { addr, bytes } => {
                if let Some(u) = &self.udp {
                    // Non-blocking: a full socket buffer drops the frame (the gap shows in its number).
                    let _ = u.try_send_to(&bytes, addr);
                }
            }
            Action::Connect { host, port } => {
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
            Action::Close(conn) => {
                // Whatever the engine still holds for it goes out first.
                let _ = self.flush_conn(conn);
                self.drop_conn(conn);
                let now = self.driver.now();
                self.driver.device.handle_closed(conn, now);
            }
            Action::MqttConfigure(settings) => self.configure_mqtt(settings),
            Action::Announce { name } => self.announce(&name),
            // Persist and Restart are the driver's; anything newer is logged.
            other => tracing::warn!("engine action not handled by the simulator: {other:?}"),
        }
    }

    /// Follows `Action::MqttConfigure`: the old session (if any) delivers what was published on it,
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
            let _ = self.flush_conn(id);
            self.drop_conn(id);
        }
        // Like a rebooting meter, the new engine connects to its broker afresh (it starts
        // disconnected), after the old session delivered its `offline`.
        if let Some(b) = self.bridge.take() {
            self.retired.merge(b.stop());
        }
        self.epoch = self.epoch.wrapping_add(1);
        let options = self.options();
        self.driver.reboot(options);
        self.attach_serial();
        let name = self.driver.device.config().name.clone();
        self.announce(&name);
        tracing::info!("engine restarted in place");
    }

    /// Announces the name (at boot, after a restart, and on `Action::Announce`).
    fn announce(&mut self, name: &str) {
        if let Some(a) = self.announcer.as_mut()
            && let Err(e) = a.announce(name)
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
                    self.offer(conn);
                }
            }
            Msg::Closed { epoch, conn } if epoch == self.epoch => self.closed_by_peer(conn),
            Msg::Input { .. } | Msg::Closed { .. } => {}
            Msg::SerialInput(bytes) => match self.serial_conn {
                Some(id) => {
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.pending.extend_from_slice(&bytes);
                    }
                    self.offer(id);
                }
                None => {
                    if let Some(s) = self.serial.as_ref() {
                        s.resume.notify_one();
                    }
                }
            },
            Msg::Ntp(r) => {
                let now = self.driver.now();
                let result = crate::sim::options::ntp_result(r);
                self.driver.device.handle_ntp(now, result);
            }
        }
    }

    fn on_bridge(&mut self, ev: BridgeEvent) {
        let now = self.driver.now();
        match ev {
            BridgeEvent::Connected(up) => self.driver.device.handle_mqtt_connected(now, up),
            BridgeEvent::Message { topic, payload } => {
                self.driver.device.handle_mqtt(now, &topic, &payload)
            }
        }
    }

    /// One round after anything happened: timers, actions (maybe a restart), output, held input.
    fn settle(&mut self) {
        self.driver.run_timers();
        if self.actions() {
            self.restart();
            let _ = self.actions();
        }
        self.flush();
        self.offer_input();
    }

    /// SIGTERM: the engine persists and publishes `offline`; returns the bridges to wait for (they
    /// deliver it, then disconnect cleanly).
    fn shutdown(&mut self) -> Stopped {
        let goodbye = self.driver.shutdown();
        for action in goodbye.network {
            self.carry_out(action);
        }
        let _ = self.actions();
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

    let source = GridSource::new(&args, HostClock).map_err(SimError::Grid)?;
    let options = crate::sim::options::from_args(&args, local);
    let driver = Driver::new(options, source, HostClock, store, InPlaceRestart);
    let mut engine = Engine {
        driver,
        epoch: 0,
        conns: HashMap::new(),
        serial: None,
        serial_conn: None,
        tx: tx.clone(),
        udp,
        bridge: None,
        retired: Stopped::default(),
        bridge_tx,
        announcer,
        out_buf: vec![0u8; WRITE_CHUNK],
        local,
        args: args.clone(),
    };

    // Boot: measure in real time until the first settled window (≈0.6 s) before listening, so a host
    // program that connects at once reads a real value, never a half-filled window.
    let booted = std::time::Instant::now();
    while engine
        .driver
        .device
        .measurements(HostClock::now())
        .is_none()
        && booted.elapsed() < BOOT_MAX
    {
        tokio::time::sleep(TICK).await;
        engine.driver.feed_source();
    }
    {
        let mut out = std::io::stdout().lock();
        // The grid's disturbance schedule counts from this line.
        engine.driver.source.arm_schedule(HostClock::now());
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
        let resume = Arc::new(Notify::new());
        let taken = resume.clone();
        engine.serial = Some(Serial {
            out: to_host,
            resume,
        });
        engine.attach_serial();
        let stx = tx.clone();
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

    let name = engine.driver.device.config().name.clone();
    engine.announce(&name);
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
            _ = tick.tick() => engine.driver.feed_source(),
        }
        engine.settle();
    }
    let goodbye = engine.shutdown();
    // `offline` reaches the broker before the clean disconnect (which sends no last will).
    goodbye.wait(MQTT_GOODBYE).await;
    // Give the writers a moment to put the last bytes on the wire.
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}
