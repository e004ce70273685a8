//! The request path, top-down: bytes → line (`Connections::next_line`) → held behind a pending
//! answer or processed → `?`/`!` or a typed [`Command`] (parsed by `wire`; over MQTT with its token)
//! → the auth gate (docs/protocol.md §10) → the busy gate (§2.5) → its handler (`commands.rs`) → a
//! [`Reply`] → the connection's output queue or the MQTT bridge.
//!
//! Ordering (§1.6): a connection waiting for an answer (`reqSamples`, `ntp`, `sample` with
//! `ntpConf`, a throttled `auth`) has its later lines held and processed, in order, when the answer
//! is given ([`Device::release`]).

use alloc::string::String;

use super::access::{HeldCheck, ct_eq};
use super::conns::Sink;
use super::engine::Device;
use super::session::{Deferred, Wait};
use super::{ConnId, Instant, LogLevel};
use crate::wire::command::{Command, CommandError, Envelope, StreamType, peek_name};
use crate::wire::mqtt;
use crate::wire::reply::Reply;

/// Whether a command is refused while sampling (docs/protocol.md §2 busy guard).
fn busy_guarded(cmd: &Command) -> bool {
    cmd.is_reading()
        || matches!(
            cmd,
            Command::Sample(_)
                | Command::Mdns { .. }
                | Command::MqttServer(_)
                | Command::StreamServer { .. }
                | Command::TimeServer { .. }
                | Command::AddWifi(_)
                | Command::DelWifi { .. }
                | Command::Calibration(_)
                | Command::ResetEnergy(_)
                | Command::ClearLog
                | Command::GetLog
                | Command::DailyRestart(_)
        )
}

/// The reply to `auth` over MQTT (docs/protocol.md §10: MQTT has no sessions).
pub(crate) const MQTT_AUTH: &str = "Authentication over MQTT: put \"token\" in each command";

/// Whether a command changes state and so needs `auth` when a token is configured (§10: all but
/// info, get*, getQuality, log, `?`, `!`, sample, reqSamples, cts, stop).
fn needs_auth(cmd: &Command) -> bool {
    !cmd.is_reading()
        && !matches!(
            cmd,
            Command::Info
                | Command::GetLog
                | Command::GetPq { .. }
                | Command::GetEvents { .. }
                | Command::Log { .. }
                | Command::Availability
                | Command::Keepalive
                | Command::Sample(_)
                | Command::ReqSamples { .. }
                | Command::Cts { .. }
                | Command::Stop
                | Command::Auth { .. }
                | Command::SetToken { .. }
        )
}

/// A line that ends a pending `reqSamples` early (§5.10): `?` or a `stop` command.
fn is_stop_line(line: &[u8]) -> bool {
    let t = line.trim_ascii();
    t.first() == Some(&b'?') || peek_name(t) == Some("stop")
}

impl Device {
    // ----- bytes → lines ----------------------------------------------------------------------

    /// Reads lines of `conn` (a held one first, then from `bytes`) while it can take them; returns
    /// the bytes taken (all of them for a connection that takes no commands).
    pub(crate) fn read_lines(&mut self, conn: ConnId, now: Instant, bytes: &[u8]) -> usize {
        let mut taken = 0;
        loop {
            let rest = bytes.get(taken..).unwrap_or_default();
            let (n, work) = self.conns.next_line(conn, now, rest);
            taken += n;
            match work {
                Some(work) => self.dispatch(conn, now, work),
                None => return taken,
            }
        }
    }

    /// One line (or over-long line) read from `conn`: processed now, or held behind a pending
    /// answer. A `stop` or `?` behind a pending `reqSamples` first answers it with what is buffered.
    fn dispatch(&mut self, conn: ConnId, now: Instant, work: Deferred) {
        let Some(wait) = self.conns.waiting(conn) else {
            return self.run_work(conn, now, work);
        };
        let is_stop = matches!(&work, Deferred::Line(line) if is_stop_line(line));
        self.conns.defer(conn, work);
        if is_stop && wait == Wait::ReqSamples {
            self.answer_pending_request();
            self.release(conn, Wait::ReqSamples, now);
        }
    }

    /// Ends a wait of `conn` and processes the lines held behind it (until the next wait).
    pub(crate) fn release(&mut self, conn: ConnId, wait: Wait, now: Instant) {
        if !self.conns.end_wait(conn, wait) {
            return;
        }
        while let Some(work) = self.conns.next_deferred(conn) {
            self.run_work(conn, now, work);
        }
        // A line held for lack of room may fit now (its bytes were already taken).
        let _ = self.read_lines(conn, now, &[]);
    }

    fn run_work(&mut self, conn: ConnId, now: Instant, work: Deferred) {
        match work {
            Deferred::Line(line) => self.process_line(Sink::Conn(conn), now, &line),
            Deferred::TooLong => {
                let line = Reply::from_command_error(&CommandError::LineTooLong).to_line();
                self.send_line(conn, &line);
            }
        }
    }

    // ----- line → command ---------------------------------------------------------------------

    /// One command line from `sink` (already split, without line ending).
    pub(crate) fn process_line(&mut self, sink: Sink, now: Instant, line: &[u8]) {
        let t = line.trim_ascii();
        match t.first() {
            None | Some(b'!') => {}
            Some(b'?') => {
                if let Sink::Conn(c) = sink {
                    self.availability(c, now);
                    self.send_line(c, &Reply::SetupDone.to_line());
                }
            }
            Some(_) => self.command(sink, now, t),
        }
    }

    /// One command line (not `?`/`!`, already trimmed): parsed, then the auth gate.
    fn command(&mut self, sink: Sink, now: Instant, line: &[u8]) {
        let (cmd, token) = match sink {
            // Over MQTT the token travels in each command (docs/protocol.md §10).
            Sink::Mqtt => match Envelope::parse(line) {
                Ok(e) => (e.command, e.token),
                Err(e) => return self.command_error(sink, now, &e),
            },
            Sink::Conn(_) => match Command::parse(line) {
                Ok(c) => (c, None),
                Err(e) => return self.command_error(sink, now, &e),
            },
        };
        let name = cmd.name();
        if self.config.token.is_none() || !needs_auth(&cmd) {
            return self.guarded_execute(sink, now, cmd);
        }
        match sink {
            Sink::Conn(c) if self.conns.is_authenticated(c) => self.guarded_execute(sink, now, cmd),
            Sink::Conn(_) => self.error_reply(sink, name, "Authentication required"),
            Sink::Mqtt => {
                let Some(token) = token else {
                    return self.error_reply(sink, name, "Authentication required");
                };
                let throttle = &mut self.conns.throttle;
                if throttle.ready(now) && !throttle.has_held() {
                    return self.check_mqtt_command(now, cmd, &token);
                }
                let held = HeldCheck::Mqtt {
                    command: cmd,
                    token,
                };
                if throttle.hold(held).is_err() {
                    self.error_reply(sink, name, "Invalid token: too many attempts, retry later");
                }
                self.conns.arm_throttle(&mut self.timers);
            }
        }
    }

    /// The busy guard, then the command's handler.
    fn guarded_execute(&mut self, sink: Sink, now: Instant, cmd: Command) {
        let ffmpeg_reconfigure = matches!(
            &cmd,
            Command::Sample(r) if r.stream == StreamType::Ffmpeg
        ) && self.raw_stream_conn().is_some();
        if self.is_busy() && busy_guarded(&cmd) && !ffmpeg_reconfigure {
            return self.reply(sink, &Reply::busy(cmd.name()));
        }
        self.execute(sink, now, cmd);
    }

    fn command_error(&mut self, sink: Sink, now: Instant, e: &CommandError) {
        if *e == CommandError::Empty {
            return;
        }
        if let CommandError::UnknownCommand { .. } = e {
            self.log(now, LogLevel::Warning, "Received unknown command");
        }
        self.reply(sink, &Reply::from_command_error(e));
    }

    // ----- token checks (docs/protocol.md §10) ------------------------------------------------------

    /// Answers the token checks that are due, oldest first.
    pub(crate) fn run_held_checks(&mut self, now: Instant) {
        while let Some(check) = self.conns.throttle.next_due(now) {
            match check {
                HeldCheck::Auth { conn, token } => {
                    if self.conns.get(conn).is_some_and(|s| s.takes_commands()) {
                        self.check_auth(conn, now, &token);
                        self.release(conn, Wait::Auth, now);
                    }
                }
                HeldCheck::Mqtt { command, token } => {
                    self.check_mqtt_command(now, command, &token);
                }
            }
        }
        self.conns.arm_throttle(&mut self.timers);
    }

    /// An `auth` of `conn`: checked now if the throttle allows it and nobody is queued, else held
    /// (this connection's later lines wait behind it, others carry on).
    pub(crate) fn auth(&mut self, conn: ConnId, now: Instant, token: String) {
        let throttle = &mut self.conns.throttle;
        if throttle.ready(now) && !throttle.has_held() {
            self.check_auth(conn, now, &token);
        } else if throttle.hold(HeldCheck::Auth { conn, token }).is_ok() {
            self.conns.set_wait(conn, Wait::Auth);
            self.conns.arm_throttle(&mut self.timers);
        }
    }

    /// Whether `token` is the configured one; a wrong token is logged and counts in the throttle.
    fn token_ok(&mut self, now: Instant, token: &str) -> bool {
        let ok = self
            .config
            .token
            .as_ref()
            .is_none_or(|t| ct_eq(t.as_bytes(), token.as_bytes()));
        if ok {
            self.conns.throttle.succeeded(now);
        } else {
            self.conns.throttle.failed(now);
            self.log(now, LogLevel::Warning, "Authentication failed");
        }
        self.conns.arm_throttle(&mut self.timers);
        ok
    }

    /// A protected command from MQTT, its token checked now (the throttle allows it).
    fn check_mqtt_command(&mut self, now: Instant, cmd: Command, token: &str) {
        if self.token_ok(now, token) {
            self.guarded_execute(Sink::Mqtt, now, cmd);
        } else {
            self.error_reply(Sink::Mqtt, cmd.name(), "Invalid token");
        }
    }

    /// An `auth` of `conn`, checked now: authenticated, or one more failure (closed after the
    /// third).
    fn check_auth(&mut self, conn: ConnId, now: Instant, token: &str) {
        let sink = Sink::Conn(conn);
        if self.token_ok(now, token) {
            self.conns.authenticated(conn);
            self.reply(sink, &Reply::Auth);
            return;
        }
        let failures = self.conns.auth_failed(conn);
        self.error_reply(sink, "auth", "Invalid token");
        if failures >= 3 {
            self.conns.close(conn);
        }
    }

    // ----- reply → output ---------------------------------------------------------------------

    /// Sends a reply: an `Info:` line on a connection, the bare JSON on MQTT.
    pub(crate) fn reply(&mut self, sink: Sink, reply: &Reply) {
        match sink {
            Sink::Conn(c) => self.send_line(c, &reply.to_line()),
            Sink::Mqtt => {
                let topic = mqtt::info_topic(&self.config.name);
                self.publish(topic, reply.to_json().into_bytes(), false);
            }
        }
    }

    /// `{"error":true,"cmd":cmd,"msg":msg}` to `sink`.
    pub(crate) fn error_reply(&mut self, sink: Sink, cmd: &str, msg: &str) {
        self.reply(sink, &Reply::error(Some(cmd), msg));
    }

    /// A text line (already framed) for `conn`.
    pub(crate) fn send_line(&mut self, conn: ConnId, line: &str) {
        self.conns.send_reply(conn, line.as_bytes());
    }
}
