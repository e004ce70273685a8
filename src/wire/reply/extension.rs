//! The replies of the power-quality and Home Assistant commands (docs/protocol.md §11, §12) both ways:
//! `setNominal` and `homeAssistant` texts, and the `getPQ` / `getEvents` objects, whose payloads are
//! [`PqAggregate`] and [`PqEvent`] encoded and read by `wire::pq`.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use super::fields::msg_after;
use super::raw::RawReply;
use super::types::{NominalInForce, NominalSet, Reply, ReplyError};
use crate::wire::command::NominalFrequency;
use crate::wire::command::json::push_f32;
use crate::wire::command::raw::Loose;
use crate::wire::pq::{PqAggregate, PqEvent, RawEvent};

/// The start of the `setNominal` text.
pub(super) const NOMINAL_SET: &str = "Nominal set to ";
/// The `clearEvents` text.
pub(super) const EVENTS_CLEARED: &str = "Events cleared";
/// The start of the `homeAssistant` text.
pub(super) const HOME_ASSISTANT: &str = "Home Assistant discovery ";

/// `230 V`, `120.5 V`: whole volts without a fraction, as docs/protocol.md writes them.
fn volts_text(out: &mut String, v: f32) {
    // Whole and within i64 (no `f32::fract` in `core`).
    if (v as i64) as f32 == v {
        out.push_str(&alloc::format!("{}", v as i64));
    } else {
        push_f32(out, v);
    }
    out.push_str(" V");
}

fn hz_text(out: &mut String, f: NominalFrequency) {
    out.push_str(&alloc::format!("{} Hz", f.hz()));
}

fn in_force_text<T: Copy>(out: &mut String, v: &NominalInForce<T>, text: impl Fn(&mut String, T)) {
    match *v {
        NominalInForce::Fixed(x) => text(out, x),
        NominalInForce::Auto(None) => out.push_str("auto"),
        NominalInForce::Auto(Some(x)) => {
            out.push_str("auto (");
            text(out, x);
            out.push(')');
        }
    }
}

/// `Nominal set to 230 V, 50 Hz` (`auto (230 V)`, or `auto` while undecided).
pub(super) fn nominal_text(n: &NominalSet) -> String {
    let mut s = String::from(NOMINAL_SET);
    in_force_text(&mut s, &n.voltage_v, volts_text);
    s.push_str(", ");
    in_force_text(&mut s, &n.frequency, hz_text);
    s
}

/// `Home Assistant discovery on (homeassistant)` / `… off (<prefix>)`.
pub(super) fn home_assistant_text(enabled: bool, prefix: &str) -> String {
    alloc::format!(
        "{HOME_ASSISTANT}{} ({prefix})",
        if enabled { "on" } else { "off" }
    )
}

fn read_in_force<T>(text: &str, value: impl Fn(&str) -> Option<T>) -> Option<NominalInForce<T>> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("auto") {
        return Some(NominalInForce::Auto(None));
    }
    match text.strip_prefix("auto") {
        Some(rest) => {
            let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
            Some(NominalInForce::Auto(Some(value(inner)?)))
        }
        None => Some(NominalInForce::Fixed(value(text)?)),
    }
}

fn read_volts(s: &str) -> Option<f32> {
    let v: f32 = s.trim().strip_suffix('V')?.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

fn read_hz(s: &str) -> Option<NominalFrequency> {
    let hz: f64 = s.trim().strip_suffix("Hz")?.trim().parse().ok()?;
    NominalFrequency::from_hz(hz as i64).filter(|f| f64::from(f.hz()) == hz)
}

/// The `setNominal` reply, read from its `msg`.
pub(super) fn nominal(raw: &RawReply<'_>) -> Result<Reply, ReplyError> {
    let bad = ReplyError::Invalid {
        field: "msg",
        reason: "expected Nominal set to <U> V, <F> Hz",
    };
    let rest = msg_after(raw, NOMINAL_SET)?;
    let (v, f) = rest.split_once(',').ok_or_else(|| bad.clone())?;
    Ok(Reply::Nominal(NominalSet {
        voltage_v: read_in_force(v, read_volts).ok_or_else(|| bad.clone())?,
        frequency: read_in_force(f, read_hz).ok_or(bad)?,
    }))
}

/// The `homeAssistant` reply, read from its `msg`.
pub(super) fn home_assistant(raw: &RawReply<'_>) -> Result<Reply, ReplyError> {
    let bad = ReplyError::Invalid {
        field: "msg",
        reason: "expected Home Assistant discovery on|off (<prefix>)",
    };
    let rest = msg_after(raw, HOME_ASSISTANT)?;
    let (state, prefix) = rest.split_once(" (").ok_or_else(|| bad.clone())?;
    let enabled = match state.trim() {
        "on" => true,
        "off" => false,
        _ => return Err(bad),
    };
    let prefix = prefix.trim_end().strip_suffix(')').ok_or(bad)?;
    Ok(Reply::HomeAssistant {
        enabled,
        prefix: String::from(prefix),
    })
}

/// `{"error":false,"cmd":"getPQ",` followed by the aggregate's own keys.
pub(super) fn encode_pq(a: &PqAggregate) -> String {
    let body = a.to_json();
    let mut s = String::with_capacity(body.len() + 32);
    s.push_str("{\"error\":false,\"cmd\":\"getPQ\",");
    s.push_str(body.strip_prefix('{').unwrap_or(&body));
    s
}

/// `[e1,e2,…]` of canonical event objects.
pub(super) fn events_json(events: &[PqEvent]) -> String {
    let mut s = String::from("[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&e.to_json());
    }
    s.push(']');
    s
}

/// The `getPQ` reply: the whole object read as an aggregate (its `error`/`cmd` keys ignored).
pub(super) fn pq(json: &[u8]) -> Result<Reply, ReplyError> {
    Ok(Reply::Pq(Box::new(PqAggregate::parse(json)?)))
}

/// The keys of a `getEvents` reply; everything else is ignored.
#[derive(serde::Deserialize)]
struct RawEvents<'a> {
    #[serde(borrow, default)]
    events: Option<Vec<RawEvent<'a>>>,
    #[serde(borrow, default)]
    next: Option<Loose<'a>>,
}

/// The `getEvents` reply. `events` absent or `null` is no event; `next` absent is the last listed
/// id (0 without events), what the device would have answered.
pub(super) fn events(json: &[u8]) -> Result<Reply, ReplyError> {
    let raw: RawEvents<'_> = serde_json::from_slice(json).map_err(|_| ReplyError::Invalid {
        field: "events",
        reason: "expected an array of event objects",
    })?;
    let events = raw
        .events
        .unwrap_or_default()
        .iter()
        .map(PqEvent::from_raw)
        .collect::<Result<Vec<_>, _>>()?;
    let next = match raw.next {
        None | Some(Loose::Null) => events.last().map_or(0, |e| e.id),
        Some(n) => n
            .as_i64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(ReplyError::Invalid {
                field: "next",
                reason: "expected an event id 0-4294967295",
            })?,
    };
    Ok(Reply::Events { events, next })
}
