//! Access control (docs/protocol.md §10) on a meter with a token: getLog is a get* command (open), MQTT
//! has no sessions (every protected command carries its token, `auth` is refused there), and wrong
//! tokens are throttled device-wide without holding up anyone else.

mod device_support;

use core::time::Duration;
use device_support::*;
use smartmeter::device::{Action, ConnId, DeviceOptions};

fn protected() -> Bench {
    let opts = DeviceOptions {
        token: Some("s3cret".into()),
        ..DeviceOptions::default()
    };
    Bench::with(opts, Default::default())
}

const GUESS: &str = r#"{"cmd":"auth","token":"guess"}"#;
const INVALID: &str = "Info:{\"error\":true,\"cmd\":\"auth\",\"msg\":\"Invalid token\"}\r\n";

/// Replies (payloads on `…/state/info`) to one message on the meter's MQTT command topic.
fn mqtt_cmd(b: &mut Bench, line: &str) -> Vec<String> {
    b.dev
        .handle_mqtt(b.now, "powermeter/smartmeterX/cmd", line.as_bytes());
    info_replies(&b.drain_events())
}

fn info_replies(ev: &[Action]) -> Vec<String> {
    ev.iter()
        .filter_map(|e| match e {
            Action::Publish { topic, payload, .. } if topic.ends_with("/state/info") => {
                Some(String::from_utf8_lossy(payload).into_owned())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn get_log_is_open_and_clear_log_is_not() {
    let mut b = protected();
    let c = b.tcp(1);
    let r = b.cmd(c, r#"{"cmd":"getLog"}"#);
    assert!(
        r.starts_with("Info:{\"cmd\":\"log\",\"msg\":\"*** LOGFile *** "),
        "{r}"
    );
    assert!(
        r.ends_with("Info:{\"error\":false,\"cmd\":\"getLog\"}\r\n"),
        "{r}"
    );
    assert_eq!(
        b.cmd(c, r#"{"cmd":"clearLog"}"#),
        "Info:{\"error\":true,\"cmd\":\"clearLog\",\"msg\":\"Authentication required\"}\r\n"
    );
}

#[test]
fn mqtt_auth_unlocks_nobody_and_each_command_carries_its_token() {
    let mut b = protected();
    let c = b.tcp(1);
    b.cmd(c, r#"{"cmd":"auth","token":"s3cret"}"#);
    b.cmd(
        c,
        r#"{"cmd":"mqttServer","payload":{"server":"broker.lan"}}"#,
    );
    b.dev.handle_mqtt_connected(b.now, true);
    b.drain_events();
    // Publisher A "logs in": refused, nothing is remembered.
    assert_eq!(
        mqtt_cmd(&mut b, r#"{"cmd":"auth","token":"s3cret"}"#),
        [
            r#"{"error":true,"cmd":"auth","msg":"Authentication over MQTT: put \"token\" in each command"}"#
        ]
    );
    // Publisher B's command without a token is refused.
    let evil = r#"{"cmd":"addWifi","payload":{"ssid":"evil","pwd":"x"}}"#;
    assert_eq!(
        mqtt_cmd(&mut b, evil),
        [r#"{"error":true,"cmd":"addWifi","msg":"Authentication required"}"#]
    );
    // A wrong token is refused (and counts as a failed guess).
    assert_eq!(
        mqtt_cmd(
            &mut b,
            r#"{"cmd":"addWifi","payload":{"ssid":"evil","pwd":"x"},"token":"guess"}"#
        ),
        [r#"{"error":true,"cmd":"addWifi","msg":"Invalid token"}"#]
    );
    assert!(!b.dev.config().wifi.iter().any(|ap| ap.ssid == "evil"));
    // The right token in the same object: applied (after the throttle delay of the failure).
    b.idle(100);
    let r = mqtt_cmd(
        &mut b,
        r#"{"cmd":"addWifi","payload":{"ssid":"lab","pwd":"x"},"token":"s3cret"}"#,
    );
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        r[0].starts_with(r#"{"error":false,"cmd":"addWifi""#),
        "{r:?}"
    );
    assert!(b.dev.config().wifi.iter().any(|ap| ap.ssid == "lab"));
    // ... for that command only.
    assert_eq!(
        mqtt_cmd(&mut b, r#"{"cmd":"delWifi","payload":{"ssid":"lab"}}"#),
        [r#"{"error":true,"cmd":"delWifi","msg":"Authentication required"}"#]
    );
    // Reading stays open, with or without a token.
    assert!(mqtt_cmd(&mut b, r#"{"cmd":"getVoltage"}"#)[0].contains(r#""error":false"#));
    assert!(mqtt_cmd(&mut b, r#"{"cmd":"getLog"}"#)[1].contains(r#""error":false"#));
}

#[test]
fn mqtt_guesses_are_throttled_and_held_not_answered_early() {
    let mut b = protected();
    let c = b.tcp(1);
    b.cmd(c, r#"{"cmd":"auth","token":"s3cret"}"#);
    b.cmd(
        c,
        r#"{"cmd":"mqttServer","payload":{"server":"broker.lan"}}"#,
    );
    b.dev.handle_mqtt_connected(b.now, true);
    b.drain_events();
    let wrong = r#"{"cmd":"restart","token":"guess"}"#;
    assert_eq!(
        mqtt_cmd(&mut b, wrong),
        [r#"{"error":true,"cmd":"restart","msg":"Invalid token"}"#]
    );
    // Within the 100 ms delay the next guess is held, not answered.
    assert!(mqtt_cmd(&mut b, wrong).is_empty());
    b.idle(100);
    assert_eq!(
        info_replies(&b.drain_events()),
        [r#"{"error":true,"cmd":"restart","msg":"Invalid token"}"#]
    );
    // Now 200 ms: the right token waits its turn too, then works.
    let right = r#"{"cmd":"dailyRestart","hour":3,"minute":0,"token":"s3cret"}"#;
    assert!(mqtt_cmd(&mut b, right).is_empty());
    b.idle(199);
    assert!(info_replies(&b.drain_events()).is_empty());
    b.idle(1);
    let r = info_replies(&b.drain_events());
    assert!(
        r[0].starts_with(r#"{"error":false,"cmd":"dailyRestart""#),
        "{r:?}"
    );
    // A success resets the delay.
    assert_eq!(
        mqtt_cmd(&mut b, wrong),
        [r#"{"error":true,"cmd":"restart","msg":"Invalid token"}"#]
    );
}

/// The replies in a connection's text (log lines dropped).
fn replies(text: &str) -> String {
    text.split_inclusive("\r\n")
        .filter(|l| !l.starts_with("Info:["))
        .collect()
}

/// Everything `conn` got so far, and the number of `Invalid token` replies in it.
fn invalid_count(b: &mut Bench, conn: ConnId) -> usize {
    b.take_text(conn).matches(INVALID).count()
}

#[test]
fn fifty_guesses_over_many_connections_take_the_sum_of_the_delays() {
    let mut b = protected();
    let start = b.now;
    let bystander = b.tcp(1);
    let mut answered = 0usize;
    let mut port = 10;
    let mut closed = 0;
    while answered < 50 {
        let c = b.tcp(port);
        port += 1;
        let n = (50 - answered).min(3);
        // Guesses pipelined in one write, then a harmless command behind them.
        let mut write = format!("{GUESS}\n").repeat(n);
        write.push_str("{\"cmd\":\"getVoltage\"}\n");
        b.feed(c, write.as_bytes());
        let mut got = 0;
        while got < n {
            got += invalid_count(&mut b, c);
            // The delay never holds up another connection's commands.
            let r = b.cmd(bystander, r#"{"cmd":"getVoltage"}"#);
            assert!(r.contains("\"cmd\":\"getVoltage\""), "{r}");
            if got < n {
                let next = b.dev.poll_timeout().unwrap();
                b.idle(next.saturating_since(b.now).as_millis().max(1) as u64);
            }
            assert!(b.now < start + Duration::from_secs(3600), "stuck");
        }
        answered += n;
        if n == 3 {
            // Closed after three failures (the line behind them is not answered).
            assert!(b.drain_events().contains(&Action::Close(c)));
            closed += 1;
        }
    }
    assert_eq!(closed, 16);
    let delays: Duration = (0..49u32)
        .map(|k| Duration::from_millis(100 << k.min(7)).min(Duration::from_secs(10)))
        .sum();
    assert_eq!(delays, Duration::from_millis(432_700));
    let took = b.now.saturating_since(start);
    assert!(took >= delays, "{took:?} < {delays:?}");
    // Still ≤ 10 tries/s overall.
    assert!(50.0 / took.as_secs_f64() <= 10.0);
}

#[test]
fn a_held_auth_keeps_the_order_of_its_connection() {
    let mut b = protected();
    let a = b.tcp(1);
    assert_eq!(replies(&b.cmd(a, GUESS)), INVALID);
    // Within the delay: the guess and the line behind it wait; info is not answered first.
    let c = b.tcp(2);
    b.feed(
        c,
        format!("{GUESS}\n{{\"cmd\":\"log\",\"level\":\"error\"}}\n").as_bytes(),
    );
    assert_eq!(b.take_text(c), "");
    b.idle(100);
    assert_eq!(
        replies(&b.take_text(c)),
        format!(
            "{INVALID}Info:{{\"error\":false,\"cmd\":\"log\",\"msg\":\"Log Level set to: error\"}}\r\n"
        )
    );
    // The right token waits for the (now 200 ms) delay too, then resets it.
    b.feed(c, b"{\"cmd\":\"auth\",\"token\":\"s3cret\"}\n");
    assert_eq!(replies(&b.take_text(c)), "");
    b.idle(200);
    assert_eq!(
        replies(&b.take_text(c)),
        "Info:{\"error\":false,\"cmd\":\"auth\",\"msg\":\"Authenticated\"}\r\n"
    );
    assert_eq!(replies(&b.cmd(a, GUESS)), INVALID);
}
