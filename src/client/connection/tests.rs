//! Transcripts: the bytes a meter sends (golden replies of `tests/golden/`, log lines, frames), cut
//! at arbitrary points, against requests sent pipelined, with a manual clock.

mod sampling;

use std::format;
use std::string::{String, ToString};
use std::time::{Duration, Instant};
use std::vec::Vec;

use super::*;

const GOLDEN: &str = include_str!("../../../tests/golden/replies.txt");
const INFO: &str =
    r#"{"cmd":"info","type":"smartmeter","version":"2.2","name":"fake","state":"idle"}"#;
const LOG: &[u8] = b"Info:[I]03/02 10:42:24: \r\n";

fn line(payload: &str) -> Vec<u8> {
    format!("Info:{payload}\r\n").into_bytes()
}

fn frame(packet: u32, values: &[f32]) -> Vec<u8> {
    let mut f = b"Data:".to_vec();
    f.extend_from_slice(&u16::try_from(values.len() * 4).unwrap().to_le_bytes());
    f.extend_from_slice(&packet.to_le_bytes());
    for v in values {
        f.extend_from_slice(&v.to_le_bytes());
    }
    f
}

/// A connection under test with its own clock.
struct Meter {
    c: Connection,
    now: Instant,
}

impl Meter {
    fn new(opts: ClientOptions, greeting: Greeting) -> Meter {
        let now = Instant::now();
        Meter {
            c: Connection::new(now, opts, greeting),
            now,
        }
    }

    /// Connected over TCP with default options (no keepalive or liveness in the way).
    fn connected() -> Meter {
        Meter::connected_with(quiet_opts())
    }

    fn connected_with(opts: ClientOptions) -> Meter {
        let mut m = Meter::new(opts, Greeting::Unprompted);
        m.input(&line(INFO));
        match m.events().as_slice() {
            [ConnectionEvent::Connected { info }] => assert_eq!(info.json(), INFO),
            other => panic!("{other:?}"),
        }
        m
    }

    fn input(&mut self, bytes: &[u8]) {
        self.c.handle_input(self.now, bytes);
    }

    /// Feeds `bytes` cut before every offset in `cuts`.
    fn input_cut(&mut self, bytes: &[u8], cuts: &[usize]) {
        let mut at = 0;
        for &cut in cuts.iter().filter(|&&c| c > 0 && c < bytes.len()) {
            if cut > at {
                self.input(&bytes[at..cut]);
                at = cut;
            }
        }
        self.input(&bytes[at..]);
    }

    fn send(&mut self, r: impl Into<Request>) -> RequestId {
        self.c.send(self.now, r.into()).unwrap()
    }

    fn line(&mut self, l: &str) -> RequestId {
        self.send(Request::Line(l.to_string()))
    }

    /// Every line written so far (without `\n`).
    fn written(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(b) = self.c.poll_transmit(self.now) {
            assert_eq!(b.last(), Some(&b'\n'));
            out.push(String::from_utf8(b[..b.len() - 1].to_vec()).unwrap());
        }
        out
    }

    fn events(&mut self) -> Vec<ConnectionEvent> {
        std::iter::from_fn(|| self.c.poll_event()).collect()
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        if self.c.poll_timeout().is_some_and(|t| t <= self.now) {
            self.c.handle_timeout(self.now);
        }
    }

    /// The answer to `id` among the events (panics if there is none).
    fn answer(events: &[ConnectionEvent], id: RequestId) -> &Result<Answer, ClientError> {
        events
            .iter()
            .find_map(|e| match e {
                ConnectionEvent::Answered { id: i, result } if *i == id => Some(result),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no answer to {id:?} in {events:?}"))
    }
}

fn quiet_opts() -> ClientOptions {
    ClientOptions {
        keepalive: Duration::from_secs(3600),
        liveness: None,
        ..ClientOptions::default()
    }
}

fn golden() -> Vec<(&'static str, &'static str)> {
    GOLDEN
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_once(' ').unwrap())
        .collect()
}

/// A deterministic stream of cut points.
fn cuts(len: usize, seed: u64, step: usize) -> Vec<usize> {
    let mut state = seed | 1;
    let mut at = 0;
    let mut out = Vec::new();
    while at < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        at += 1 + (state as usize) % step;
        out.push(at);
    }
    out
}

/// Every golden reply that answers a command line: the line sent for it (the meter answers a line
/// whose arguments it refuses with an error naming the same command, so `{"cmd":X}` does).
fn golden_requests() -> Vec<(String, &'static str)> {
    golden()
        .into_iter()
        .filter_map(|(_, text)| {
            let reply = Reply::parse(text.as_bytes()).unwrap();
            match &reply {
                // Their own tests: getLog's two lines, the greeting, `?`, sampling (its frames need
                // a receiver), the restarting commands (the meter closes), line-level errors.
                Reply::GetLogDump { .. }
                | Reply::GetLogDone
                | Reply::Info(_)
                | Reply::SetupDone
                | Reply::SampleStarted(_)
                | Reply::Restarting { .. } => None,
                r => Some((format!("{{\"cmd\":\"{}\"}}", r.cmd()?), text)),
            }
        })
        .collect()
}

#[test]
fn pipelined_golden_replies_match_their_requests_whatever_the_cuts() {
    let cases = golden_requests();
    assert!(cases.len() > 30, "{}", cases.len());
    // What the meter sends back: each reply, with log lines and stray frames in between.
    let mut stream = Vec::new();
    for (k, (_, text)) in cases.iter().enumerate() {
        if k % 3 == 0 {
            stream.extend_from_slice(LOG);
        }
        if k % 5 == 0 {
            stream.extend(frame(k as u32, &[1.0, 2.0]));
        }
        stream.extend(line(text));
    }
    for (seed, step) in [(1, 1), (7, 3), (11, 17), (13, 200), (17, 100_000)] {
        let mut m = Meter::connected();
        let ids: Vec<RequestId> = cases.iter().map(|(l, _)| m.line(l)).collect();
        let written = m.written();
        assert_eq!(
            written,
            cases.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>()
        );
        m.input_cut(&stream, &cuts(stream.len(), seed, step));
        let events = m.events();
        for (id, (_, text)) in ids.iter().zip(&cases) {
            let answer = Meter::answer(&events, *id).as_ref().unwrap();
            assert_eq!(answer.replies.len(), 1);
            assert_eq!(answer.reply().unwrap().json(), *text, "cuts {seed}/{step}");
            assert_eq!(
                answer.reply().unwrap().reply(),
                &Reply::parse(text.as_bytes()).unwrap()
            );
        }
        let logs = events
            .iter()
            .filter(|e| matches!(e, ConnectionEvent::Notice(Notice::Log(_))))
            .count();
        assert_eq!(logs, cases.len().div_ceil(3), "every log line is a notice");
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, ConnectionEvent::Samples(_))),
            "no session: stray frames are dropped"
        );
    }
}

#[test]
fn bare_commands_and_get_log() {
    let mut m = Meter::connected();
    let bang = m.line("!");
    let ping = m.send(Command::Availability);
    let log = m.send(Command::GetLog);
    assert_eq!(m.written(), ["!", "?", r#"{"cmd":"getLog"}"#]);
    let dump = golden()
        .into_iter()
        .find(|(n, _)| *n == "getLog_dump")
        .unwrap()
        .1;
    let mut bytes = b"Info:Setup done\r\n".to_vec();
    bytes.extend(line(dump));
    bytes.extend(line(r#"{"error":false,"cmd":"getLog"}"#));
    m.input_cut(&bytes, &cuts(bytes.len(), 3, 4));
    let events = m.events();
    assert_eq!(
        Meter::answer(&events, bang).as_ref().unwrap(),
        &Answer::default()
    );
    let setup = Meter::answer(&events, ping).as_ref().unwrap();
    assert_eq!(setup.reply().unwrap().reply(), &Reply::SetupDone);
    assert_eq!(setup.reply().unwrap().json(), r#"{"msg":"Setup done"}"#);
    let log = Meter::answer(&events, log).as_ref().unwrap();
    assert_eq!(
        log.replies.len(),
        2,
        "the dump comes first and belongs to getLog"
    );
    assert!(matches!(log.replies[0].reply(), Reply::GetLogDump { rows } if rows.len() == 2));
    assert_eq!(log.replies[1].reply(), &Reply::GetLogDone);
    // `Setup done` nobody asked for, and `Info: Setup done` with a space, are text notices.
    m.input(b"Info: Setup done\r\n");
    assert!(
        matches!(m.events().as_slice(), [ConnectionEvent::Notice(Notice::Text(t))] if t == "Setup done")
    );
}

#[test]
fn a_reply_naming_another_command_is_unsolicited() {
    let mut m = Meter::connected();
    let v = m.send(Command::GetVoltage);
    m.written();
    let mut bytes = line(INFO); // stale, e.g. an earlier program's on a serial line
    bytes.extend(line(
        r#"{"error":false,"cmd":"getVoltage","voltage":[230.5,231,229.25],"unit":"V"}"#,
    ));
    m.input(&bytes);
    let events = m.events();
    assert!(
        matches!(&events[0], ConnectionEvent::Notice(Notice::Reply(r)) if r.cmd() == Some("info"))
    );
    let got = Meter::answer(&events, v).as_ref().unwrap();
    assert!(
        matches!(got.reply().unwrap().reply(), Reply::Voltage { voltage_v } if voltage_v[1] == Some(231.0))
    );
    // A reply without `cmd` (old firmware) still answers in order, as does an unreadable one.
    let p = m.send(Command::GetPower);
    let e = m.send(Command::GetEnergy);
    m.input(&line(
        r#"{"activePower":[1,2,3],"reactivePower":[1,2,3],"apparentPower":[1,2,3]}"#,
    ));
    m.input(&line(r#"{"error":false,"cmd":"getEnergy"}"#));
    let events = m.events();
    assert!(
        matches!(Meter::answer(&events, p), Ok(a) if matches!(a.reply().unwrap().reply(), Reply::Power { .. }))
    );
    let err = Meter::answer(&events, e).as_ref().unwrap_err();
    assert!(
        err.to_string()
            .starts_with("protocol error: unreadable reply to `getEnergy`"),
        "{err}"
    );
}

#[test]
fn refusals_stay_replies_until_checked() {
    let mut m = Meter::connected();
    let id = m.send(Command::GetCurrent);
    m.input(&line(
        r#"{"error":true,"cmd":"getCurrent","msg":"Device currently sampling","state":"busy"}"#,
    ));
    let events = m.events();
    let r = Meter::answer(&events, id)
        .as_ref()
        .unwrap()
        .reply()
        .unwrap()
        .clone();
    assert!(r.is_error());
    assert!(matches!(r.check("getCurrent"), Err(ClientError::Busy { cmd }) if cmd == "getCurrent"));
}

#[test]
fn a_late_reply_is_matched_and_dropped_after_a_timeout() {
    let mut m = Meter::connected();
    let slow = m.send(Command::GetPower);
    m.written();
    m.advance(Duration::from_secs(4));
    assert!(m.events().is_empty());
    let next = m.send(Command::GetVoltage);
    m.advance(Duration::from_secs(1));
    let events = m.events();
    assert!(
        matches!(Meter::answer(&events, slow), Err(ClientError::Timeout { what, .. }) if what == "getPower")
    );
    assert_eq!(
        events.len(),
        1,
        "the second request has time left: {events:?}"
    );
    // The late reply to getPower must not be taken as getVoltage's.
    m.input(&line(r#"{"error":false,"cmd":"getPower","activePower":[1,2,3],"reactivePower":[1,2,3],"apparentPower":[1,2,3]}"#));
    assert!(m.events().is_empty());
    m.input(&line(
        r#"{"error":false,"cmd":"getVoltage","voltage":[1,2,3],"unit":"V"}"#,
    ));
    assert!(Meter::answer(&m.events(), next).is_ok());
    assert_eq!(
        m.c.poll_timeout(),
        Some(m.now + Duration::from_secs(3595)),
        "only the keepalive is left"
    );
}

#[test]
fn keepalive_after_quiet_writing() {
    let opts = ClientOptions {
        keepalive: Duration::from_secs(30),
        liveness: None,
        ..ClientOptions::default()
    };
    let mut m = Meter::connected_with(opts);
    m.advance(Duration::from_secs(29));
    assert!(m.written().is_empty());
    m.advance(Duration::from_secs(1));
    assert_eq!(m.written(), ["!"]);
    // Writing anything pushes the next one back.
    m.advance(Duration::from_secs(20));
    m.send(Command::Info);
    m.written();
    m.advance(Duration::from_secs(20));
    assert!(m.written().is_empty());
    m.advance(Duration::from_secs(10));
    assert_eq!(m.written(), ["!"]);
}

#[test]
fn a_silent_meter_is_probed_then_lost() {
    let opts = ClientOptions {
        timeout: Duration::from_millis(300),
        liveness: Some(Duration::from_millis(200)),
        keepalive: Duration::from_secs(3600),
        ..ClientOptions::default()
    };
    let mut m = Meter::connected_with(opts);
    m.advance(Duration::from_millis(150));
    m.input(LOG); // anything counts as a sign of life
    m.events();
    m.advance(Duration::from_millis(150));
    assert!(m.written().is_empty());
    m.advance(Duration::from_millis(50));
    assert_eq!(m.written(), [r#"{"cmd":"info"}"#], "the probe");
    m.advance(Duration::from_millis(100));
    let waiting = m.send(Command::GetPower);
    m.advance(Duration::from_millis(199));
    assert!(!m.c.is_closed());
    m.advance(Duration::from_millis(1));
    let events = m.events();
    assert!(matches!(
        Meter::answer(&events, waiting),
        Err(ClientError::ConnectionLost { .. })
    ));
    match events.last() {
        Some(ConnectionEvent::Closed { error }) => {
            assert_eq!(
                error.to_string(),
                "connection lost: no data from the meter for 0 s"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        m.c.send(m.now, Command::Info.into()),
        Err(ClientError::ConnectionLost { .. })
    ));
    assert_eq!(m.c.poll_timeout(), None);
}

#[test]
fn the_probe_answer_is_dropped_in_order() {
    let opts = ClientOptions {
        liveness: Some(Duration::from_secs(5)),
        keepalive: Duration::from_secs(3600),
        ..ClientOptions::default()
    };
    let mut m = Meter::connected_with(opts);
    m.advance(Duration::from_secs(5));
    assert_eq!(m.written(), [r#"{"cmd":"info"}"#]);
    let v = m.send(Command::GetVoltage);
    let mut bytes = line(INFO);
    bytes.extend(line(
        r#"{"error":false,"cmd":"getVoltage","voltage":[1,2,3],"unit":"V"}"#,
    ));
    m.input(&bytes);
    let events = m.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(Meter::answer(&events, v).is_ok());
}

#[test]
fn auth_goes_first_and_requests_wait_for_it() {
    let opts = ClientOptions {
        token: Some("s3cret".into()),
        ..quiet_opts()
    };
    let mut m = Meter::new(opts.clone(), Greeting::Unprompted);
    let early = m.send(Command::GetVoltage);
    assert!(m.written().is_empty(), "nothing before the greeting");
    m.input(&line(INFO));
    assert_eq!(m.written(), [r#"{"cmd":"auth","token":"s3cret"}"#]);
    assert!(m.events().is_empty());
    m.input(&line(
        r#"{"error":false,"cmd":"auth","msg":"Authenticated"}"#,
    ));
    assert!(matches!(
        m.events().as_slice(),
        [ConnectionEvent::Connected { .. }]
    ));
    assert_eq!(m.written(), [r#"{"cmd":"getVoltage"}"#]);
    m.input(&line(
        r#"{"error":false,"cmd":"getVoltage","voltage":[1,2,3],"unit":"V"}"#,
    ));
    assert!(Meter::answer(&m.events(), early).is_ok());

    // A wrong token fails the connection (and what waited); firmware without `auth` is open.
    let mut m = Meter::new(opts.clone(), Greeting::Unprompted);
    let early = m.send(Command::GetVoltage);
    m.input(&line(INFO));
    m.input(&line(
        r#"{"error":true,"cmd":"auth","msg":"Invalid token"}"#,
    ));
    let events = m.events();
    assert!(matches!(
        Meter::answer(&events, early),
        Err(ClientError::Refused { .. })
    ));
    assert!(
        matches!(events.last(), Some(ConnectionEvent::Closed { error }) if error.to_string() == "the meter refused `auth`: Invalid token")
    );
    let mut m = Meter::new(opts, Greeting::Unprompted);
    m.input(&line(INFO));
    m.input(&line(
        r#"{"error":true,"cmd":"auth","msg":"unknown command"}"#,
    ));
    assert!(matches!(
        m.events().as_slice(),
        [ConnectionEvent::Connected { .. }]
    ));
}

#[test]
fn greeting_refusal_late_greeting_and_serial() {
    let mut m = Meter::new(quiet_opts(), Greeting::Unprompted);
    m.input(&line(r#"{"error":true,"msg":"Too many clients"}"#));
    assert!(
        matches!(m.events().as_slice(), [ConnectionEvent::Closed { error }] if error.to_string() == "the meter refused `connect`: Too many clients")
    );

    // No unprompted info within the connect timeout: ask for it.
    let mut m = Meter::new(quiet_opts(), Greeting::Unprompted);
    m.advance(Duration::from_secs(5));
    assert_eq!(m.written(), [r#"{"cmd":"info"}"#]);
    m.input(&line(INFO));
    assert!(matches!(
        m.events().as_slice(),
        [ConnectionEvent::Connected { .. }]
    ));

    // Serial: ask at once; a stale reply of an earlier program is a notice.
    let mut m = Meter::new(quiet_opts(), Greeting::Ask);
    assert_eq!(m.written(), [r#"{"cmd":"info"}"#]);
    m.input(&line(
        r#"{"error":false,"cmd":"getVoltage","voltage":[1,2,3],"unit":"V"}"#,
    ));
    m.input(&line(INFO));
    let events = m.events();
    assert!(matches!(
        &events[0],
        ConnectionEvent::Notice(Notice::Reply(_))
    ));
    assert!(matches!(&events[1], ConnectionEvent::Connected { .. }));

    // Nobody answers the asked-for info: the connect times out.
    let mut m = Meter::new(quiet_opts(), Greeting::Ask);
    m.advance(Duration::from_secs(5));
    assert!(
        matches!(m.events().as_slice(), [ConnectionEvent::Closed { error: ClientError::Timeout { what, .. } }] if what == "info")
    );
}

#[test]
fn closing_fails_what_waits_with_the_meters_last_words() {
    let mut m = Meter::connected();
    m.input(&line(r#"{"error":true,"msg":"Idle connection closed"}"#));
    let a = m.send(Command::GetPower);
    m.c.handle_closed(None);
    let events = m.events();
    assert!(matches!(
        &events[0],
        ConnectionEvent::Notice(Notice::Reply(_))
    ));
    let err = Meter::answer(&events, a).as_ref().unwrap_err();
    assert_eq!(
        err.to_string(),
        "the meter closed the connection (Idle connection closed)"
    );
    assert!(matches!(
        events.last(),
        Some(ConnectionEvent::Closed { .. })
    ));
    m.input(&line(INFO));
    assert!(m.events().is_empty(), "nothing happens after the end");
}

#[test]
fn nothing_is_sent_after_a_restart_reply() {
    let mut m = Meter::connected();
    let r = m.send(Command::FactoryReset);
    m.input(&line(
        r#"{"error":false,"cmd":"factoryReset","msg":"Restarting"}"#,
    ));
    assert!(
        matches!(Meter::answer(&m.events(), r), Ok(a) if matches!(a.reply().unwrap().reply(), Reply::Restarting { .. }))
    );
    assert!(matches!(
        m.c.send(m.now, Command::Info.into()),
        Err(ClientError::Closed { .. })
    ));
}

#[test]
fn raw_lines_are_checked_for_shape() {
    let mut m = Meter::connected();
    for (bad, said) in [
        ("{\"cmd\":\"info\"}\n{}", "a command is one line"),
        ("hello", "expected a JSON object, `?` or `!`"),
        (
            r#"{"cmd":"sample","payload":{"type":"TCP"}}"#,
            "use `record`",
        ),
        (r#"{"cmd":"sample"}"#, "use `record`"),
    ] {
        let err = m.c.send(m.now, Request::Line(bad.into())).unwrap_err();
        assert!(err.to_string().contains(said), "{bad}: {err}");
    }
    let long = format!("{{\"cmd\":\"info\",\"x\":\"{}\"}}", "a".repeat(600));
    assert!(m.c.send(m.now, Request::Line(long)).is_err());
    // Refused values and unknown commands go to the meter, which answers with one error.
    let bogus = m.line(r#"{"cmd":"bogus"}"#);
    let json = m.line("{not json");
    m.input(&line(
        r#"{"error":true,"cmd":"bogus","msg":"unknown command"}"#,
    ));
    m.input(&line(r#"{"error":true,"msg":"JSON format error, syntax: {\"cmd\":<cmdName>, \"[payload\":{<data>}]}}"}"#));
    let events = m.events();
    assert!(
        Meter::answer(&events, bogus)
            .as_ref()
            .unwrap()
            .reply()
            .unwrap()
            .is_error()
    );
    assert!(
        Meter::answer(&events, json)
            .as_ref()
            .unwrap()
            .reply()
            .unwrap()
            .is_error()
    );
}
