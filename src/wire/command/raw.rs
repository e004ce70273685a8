//! The loose, borrowed form a command line is first deserialized into.
//!
//! Every field is optional and accepts any JSON value ([`Loose`]), so a value of the wrong type does
//! not fail the whole line: the typed conversion then reports *which* field was wrong, with the text
//! the protocol prescribes. Strings borrow from the input unless they contain escapes.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Any JSON value, scalars kept, objects read as a nested [`RawCommand`] (for `payload`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Loose<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    List(Vec<Loose<'a>>),
    Object(Box<RawCommand<'a>>),
}

impl<'a> Loose<'a> {
    /// A JSON boolean or the strings `"true"` / `"false"` (ASCII case-insensitive).
    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            Loose::Bool(b) => Some(*b),
            Loose::Str(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
            Loose::Str(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    /// An integer: a JSON integer, an integral float (`8000.0`), or a string holding either.
    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Loose::Int(i) => Some(*i),
            Loose::Float(f) => float_to_i64(*f),
            Loose::Str(s) => {
                let s = s.trim();
                s.parse::<i64>()
                    .ok()
                    .or_else(|| s.parse::<f64>().ok().and_then(float_to_i64))
            }
            _ => None,
        }
    }

    /// A finite number: JSON number or a string holding one.
    pub(crate) fn as_f64(&self) -> Option<f64> {
        let v = match self {
            Loose::Int(i) => *i as f64,
            Loose::Float(f) => *f,
            Loose::Str(s) => s.trim().parse::<f64>().ok()?,
            _ => return None,
        };
        v.is_finite().then_some(v)
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Loose::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_list(&self) -> Option<&[Loose<'a>]> {
        match self {
            Loose::List(l) => Some(l),
            _ => None,
        }
    }
}

fn float_to_i64(f: f64) -> Option<i64> {
    // 2^63 is exactly representable; everything strictly inside converts exactly when integral.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !(f.is_finite() && f > -LIMIT && f < LIMIT) {
        return None;
    }
    let i = f as i64;
    (i as f64 == f).then_some(i)
}

impl fmt::Display for Loose<'_> {
    /// A short rendering of the value as the sender wrote it, for error messages (`8000.5`, `abc`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loose::Null => f.write_str("null"),
            Loose::Bool(b) => write!(f, "{b}"),
            Loose::Int(i) => write!(f, "{i}"),
            Loose::Float(x) => f.write_str(&serde_json::to_string(x).unwrap_or_default()),
            Loose::Str(s) => f.write_str(s),
            Loose::List(l) => {
                f.write_str("[")?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Loose::Object(_) => f.write_str("{...}"),
        }
    }
}

/// Deepest nesting of arrays/objects a [`Loose`] value may have. Commands need 2 (`payload.slot`);
/// the limit bounds the recursion (stack) of the visitors below on small targets. Unknown keys are
/// skipped by serde_json iteratively, whatever their depth.
pub(crate) const MAX_DEPTH: u8 = 6;

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        LooseSeed(0, core::marker::PhantomData).deserialize(d)
    }
}

/// Reads a [`Loose`] at nesting depth `.0`.
pub(crate) struct LooseSeed<'a>(pub(crate) u8, core::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for LooseSeed<'a> {
    type Value = Loose<'a>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Loose<'a>, D::Error> {
        d.deserialize_any(LooseVisitor(self.0, core::marker::PhantomData))
    }
}

struct LooseVisitor<'a>(u8, core::marker::PhantomData<&'a ()>);

impl<'a> LooseVisitor<'a> {
    fn deeper<E: de::Error>(&self) -> Result<LooseSeed<'a>, E> {
        if self.0 >= MAX_DEPTH {
            return Err(E::custom("nesting too deep"));
        }
        Ok(LooseSeed(self.0 + 1, core::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> Visitor<'de> for LooseVisitor<'a> {
    type Value = Loose<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Loose::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Loose::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_or(Loose::Float(v as f64), Loose::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Loose::Float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(String::from(v))))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        LooseSeed(self.0, core::marker::PhantomData).deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let inner = self.deeper()?;
        // The line is at most 600 bytes, so a list holds at most ~300 items.
        let mut items = Vec::with_capacity(6);
        while let Some(item) =
            seq.next_element_seed(LooseSeed(inner.0, core::marker::PhantomData))?
        {
            items.push(item);
        }
        Ok(Loose::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let inner = self.deeper()?;
        let mut raw = Box::new(RawCommand::default());
        fill(&mut raw, map, inner.0, None)?;
        Ok(Loose::Object(raw))
    }
}

/// A command line as loosely read JSON: every key the protocol knows, each optional and untyped.
/// Unknown keys are ignored; a key given twice is a JSON format error.
///
/// Obtain it with [`RawCommand::from_json`] and turn it into a [`Command`](super::Command) with
/// `TryFrom`; [`Command::parse`](super::Command::parse) does both.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawCommand<'a> {
    pub(crate) cmd: Option<Loose<'a>>,
    pub(crate) payload: Option<Loose<'a>>,
    pub(crate) level: Option<Loose<'a>>,
    pub(crate) cal: Option<Loose<'a>>,
    pub(crate) cal_v: Option<Loose<'a>>,
    pub(crate) cal_i: Option<Loose<'a>>,
    pub(crate) energy: Option<Loose<'a>>,
    pub(crate) ts: Option<Loose<'a>>,
    pub(crate) hour: Option<Loose<'a>>,
    pub(crate) minute: Option<Loose<'a>>,
    pub(crate) samples: Option<Loose<'a>>,
    pub(crate) value: Option<Loose<'a>>,
    pub(crate) offset: Option<Loose<'a>>,
    pub(crate) token: Option<Loose<'a>>,
    pub(crate) name: Option<Loose<'a>>,
    pub(crate) ssid: Option<Loose<'a>>,
    pub(crate) pwd: Option<Loose<'a>>,
    pub(crate) server: Option<Loose<'a>>,
    pub(crate) user: Option<Loose<'a>>,
    pub(crate) port: Option<Loose<'a>>,
    pub(crate) kind: Option<Loose<'a>>,
    pub(crate) measures: Option<Loose<'a>>,
    pub(crate) rate: Option<Loose<'a>>,
    pub(crate) prefix: Option<Loose<'a>>,
    pub(crate) time: Option<Loose<'a>>,
    pub(crate) flow_ctr: Option<Loose<'a>>,
    pub(crate) slot: Option<Loose<'a>>,
    pub(crate) ntp_conf: Option<Loose<'a>>,
}

/// The keys the protocol knows; anything else is skipped without being stored.
enum Key {
    Cmd,
    Payload,
    Level,
    Cal,
    CalV,
    CalI,
    Energy,
    Ts,
    Hour,
    Minute,
    Samples,
    Value,
    Offset,
    Token,
    Name,
    Ssid,
    Pwd,
    Server,
    User,
    Port,
    Kind,
    Measures,
    Rate,
    Prefix,
    Time,
    FlowCtr,
    Slot,
    NtpConf,
    Other,
}

impl Key {
    /// Dispatches on the length first: a handful of comparisons instead of a chain of 28.
    fn from_bytes(k: &[u8]) -> Key {
        match k.len() {
            2 => match k {
                b"ts" => Key::Ts,
                _ => Key::Other,
            },
            3 => match k {
                b"cmd" => Key::Cmd,
                b"cal" => Key::Cal,
                b"pwd" => Key::Pwd,
                _ => Key::Other,
            },
            4 => match k {
                b"calV" => Key::CalV,
                b"calI" => Key::CalI,
                b"hour" => Key::Hour,
                b"name" => Key::Name,
                b"ssid" => Key::Ssid,
                b"user" => Key::User,
                b"port" => Key::Port,
                b"type" => Key::Kind,
                b"rate" => Key::Rate,
                b"time" => Key::Time,
                b"slot" => Key::Slot,
                _ => Key::Other,
            },
            5 => match k {
                b"level" => Key::Level,
                b"value" => Key::Value,
                b"token" => Key::Token,
                _ => Key::Other,
            },
            6 => match k {
                b"energy" => Key::Energy,
                b"minute" => Key::Minute,
                b"offset" => Key::Offset,
                b"server" => Key::Server,
                b"prefix" => Key::Prefix,
                _ => Key::Other,
            },
            7 => match k {
                b"payload" => Key::Payload,
                b"samples" => Key::Samples,
                b"flowCtr" => Key::FlowCtr,
                b"ntpConf" => Key::NtpConf,
                _ => Key::Other,
            },
            8 => match k {
                b"measures" => Key::Measures,
                _ => Key::Other,
            },
            _ => Key::Other,
        }
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key::from_bytes(v.as_bytes()))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Key, E> {
        Ok(Key::from_bytes(v))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawCommand<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut raw = RawCommand::default();
        d.deserialize_map(RawSeed(&mut raw))?;
        Ok(raw)
    }
}

/// Fills a caller-owned [`RawCommand`] in place. The struct is ~900 bytes; returning it by value
/// through serde's layers copies it several times, which costs more than the parsing itself.
struct RawSeed<'r, 'a>(&'r mut RawCommand<'a>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for RawSeed<'_, 'a> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for RawSeed<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        fill(self.0, map, 0, None)
    }
}

struct SplitSeed<'r, 'a>(&'r mut RawCommand<'a>, &'r mut Option<RawCommand<'a>>);

impl<'de: 'a, 'a> Visitor<'de> for SplitSeed<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        fill(self.0, map, 0, Some(self.1))
    }
}

/// Reads the value of a top-level `payload` into a caller's buffer if it is an object; answers
/// whether it was (anything else is consumed and dropped).
struct PayloadSeed<'r, 'a>(&'r mut RawCommand<'a>, u8);

impl<'de: 'a, 'a> DeserializeSeed<'de> for PayloadSeed<'_, 'a> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for PayloadSeed<'_, 'a> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        fill(self.0, map, self.1 + 1, None)?;
        Ok(true)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_none<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
}

// Hand-written instead of derived: a derived visitor spends much of its time resolving the two
// dozen absent optional fields one by one; here an absent field simply stays `None`.
fn fill<'de: 'a, 'a, A: MapAccess<'de>>(
    raw: &mut RawCommand<'a>,
    mut map: A,
    depth: u8,
    mut payload_buf: Option<&mut Option<RawCommand<'a>>>,
) -> Result<(), A::Error> {
    while let Some(key) = map.next_key::<Key>()? {
        let (slot, name) = match key {
            Key::Cmd => (&mut raw.cmd, "cmd"),
            // Top level: an object payload goes into the caller's buffer (no allocation); the
            // slot keeps `Null` as a "seen" marker so a second `payload` key is still refused.
            Key::Payload if payload_buf.is_some() => {
                if raw.payload.is_some() {
                    return Err(de::Error::duplicate_field("payload"));
                }
                if let Some(buf) = payload_buf.as_deref_mut() {
                    let buf = buf.get_or_insert_with(RawCommand::default);
                    let is_object = map.next_value_seed(PayloadSeed(buf, depth))?;
                    raw.payload = Some(if is_object {
                        Loose::Null
                    } else {
                        Loose::Bool(false)
                    });
                }
                continue;
            }
            Key::Payload => (&mut raw.payload, "payload"),
            Key::Level => (&mut raw.level, "level"),
            Key::Cal => (&mut raw.cal, "cal"),
            Key::CalV => (&mut raw.cal_v, "calV"),
            Key::CalI => (&mut raw.cal_i, "calI"),
            Key::Energy => (&mut raw.energy, "energy"),
            Key::Ts => (&mut raw.ts, "ts"),
            Key::Hour => (&mut raw.hour, "hour"),
            Key::Minute => (&mut raw.minute, "minute"),
            Key::Samples => (&mut raw.samples, "samples"),
            Key::Value => (&mut raw.value, "value"),
            Key::Offset => (&mut raw.offset, "offset"),
            Key::Token => (&mut raw.token, "token"),
            Key::Name => (&mut raw.name, "name"),
            Key::Ssid => (&mut raw.ssid, "ssid"),
            Key::Pwd => (&mut raw.pwd, "pwd"),
            Key::Server => (&mut raw.server, "server"),
            Key::User => (&mut raw.user, "user"),
            Key::Port => (&mut raw.port, "port"),
            Key::Kind => (&mut raw.kind, "type"),
            Key::Measures => (&mut raw.measures, "measures"),
            Key::Rate => (&mut raw.rate, "rate"),
            Key::Prefix => (&mut raw.prefix, "prefix"),
            Key::Time => (&mut raw.time, "time"),
            Key::FlowCtr => (&mut raw.flow_ctr, "flowCtr"),
            Key::Slot => (&mut raw.slot, "slot"),
            Key::NtpConf => (&mut raw.ntp_conf, "ntpConf"),
            Key::Other => {
                map.next_value::<de::IgnoredAny>()?;
                continue;
            }
        };
        if slot.is_some() {
            return Err(de::Error::duplicate_field(name));
        }
        *slot = Some(map.next_value_seed(LooseSeed(depth, core::marker::PhantomData))?);
    }
    Ok(())
}

impl<'a> RawCommand<'a> {
    /// Reads one JSON object (no line handling: see [`Command::parse`](super::Command::parse)).
    /// Invalid JSON, a non-object, or a key given twice is [`CommandError::Json`](super::CommandError::Json).
    pub fn from_json(json: &'a [u8]) -> Result<RawCommand<'a>, super::CommandError> {
        let mut raw = RawCommand::default();
        raw.fill_from_json(json)
            .map_err(|_| super::CommandError::Json)?;
        Ok(raw)
    }

    /// Parses `json` into `self` (which should be empty), without moving the large struct around.
    pub(crate) fn fill_from_json(&mut self, json: &'a [u8]) -> Result<(), serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(json);
        de.deserialize_map(RawSeed(self))?;
        de.end()
    }

    /// Like [`RawCommand::fill_from_json`], but an object `payload` is read into `payload` (set
    /// only when there is one, so commands without payload pay nothing for it) instead of a heap box.
    pub(crate) fn fill_split_from_json(
        &mut self,
        payload: &mut Option<RawCommand<'a>>,
        json: &'a [u8],
    ) -> Result<(), serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(json);
        de.deserialize_map(SplitSeed(self, payload))?;
        de.end()?;
        if !matches!(self.payload, Some(Loose::Null)) {
            *payload = None;
        }
        Ok(())
    }

    /// The nested `payload` object, if there is one.
    pub(crate) fn payload(&self) -> Option<&RawCommand<'a>> {
        match &self.payload {
            Some(Loose::Object(p)) => Some(p),
            _ => None,
        }
    }

    /// The command name, if `cmd` is a string.
    pub fn cmd(&self) -> Option<&str> {
        self.cmd.as_ref().and_then(Loose::as_str)
    }
}
