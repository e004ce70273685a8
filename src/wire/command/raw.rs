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

use super::number::parse_f64;
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Any JSON value, scalars kept, objects read as a nested [`RawCommand`] (for `payload`).
///
/// An array comes in two forms holding the same items: `List` on the heap (what serde reads, and
/// what the scanner builds for any other array), or `Nums`, up to [`Nums::CAPACITY`] numbers kept
/// inline (the scanner's form for `cal`, `energy`, `slot`: no allocation and nothing to drop).
/// Equality compares the items, whatever the form; [`Loose::list`] reads either.
#[derive(Debug, Clone)]
pub(crate) enum Loose<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    List(Vec<Loose<'a>>),
    Nums(Nums),
    Object(Box<RawCommand<'a>>),
}

/// A short array of numbers, each an integer below 10^15 in magnitude (exact in an `f64`, so
/// one `f64` per item holds either kind; bit `i` of `ints` marks an integer) or a float.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Nums {
    len: u8,
    ints: u8,
    vals: [f64; Nums::CAPACITY],
}

impl Nums {
    /// The most items kept inline: the longest array of the protocol (`cal`) has 6.
    pub(crate) const CAPACITY: usize = 6;

    /// Appends `v` (an integer must be below 2^53 in magnitude); `None` when full.
    #[inline]
    pub(crate) fn push(&mut self, v: Num) -> Option<()> {
        let slot = self.vals.get_mut(usize::from(self.len))?;
        match v {
            Num::Int(i) if i.unsigned_abs() < 1 << 53 => {
                *slot = i as f64;
                self.ints |= 1 << self.len;
            }
            Num::Int(_) => return None,
            Num::Float(f) => *slot = f,
        }
        self.len += 1;
        Some(())
    }

    fn get(&self, i: usize) -> Option<Num> {
        let v = *self.vals.get(i).filter(|_| i < usize::from(self.len))?;
        Some(if self.ints & (1 << i) != 0 {
            Num::Int(v as i64)
        } else {
            Num::Float(v)
        })
    }
}

/// A JSON number as [`Loose`] keeps it, without the drop glue of the whole enum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

impl From<Num> for Loose<'_> {
    #[inline]
    fn from(n: Num) -> Self {
        match n {
            Num::Int(i) => Loose::Int(i),
            Num::Float(f) => Loose::Float(f),
        }
    }
}

/// One item of a [`List`]: an inline number or a reference into the heap form (`Copy`: no drop glue).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Item<'r, 'a> {
    Num(Num),
    Ref(&'r Loose<'a>),
}

impl<'a> Item<'_, 'a> {
    /// [`Loose::as_i64`] of the item.
    #[inline]
    pub(crate) fn as_i64(self) -> Option<i64> {
        match self {
            Item::Num(Num::Int(i)) => Some(i),
            Item::Num(Num::Float(f)) => float_to_i64(f),
            Item::Ref(v) => v.as_i64(),
        }
    }

    /// [`Loose::as_f64`] of the item.
    #[inline]
    pub(crate) fn as_f64(self) -> Option<f64> {
        match self {
            Item::Num(Num::Int(i)) => Some(i as f64),
            Item::Num(Num::Float(f)) => f.is_finite().then_some(f),
            Item::Ref(v) => v.as_f64(),
        }
    }

    fn to_loose(self) -> Loose<'a> {
        match self {
            Item::Num(n) => n.into(),
            Item::Ref(v) => v.clone(),
        }
    }
}

impl PartialEq for Item<'_, '_> {
    fn eq(&self, other: &Self) -> bool {
        self.to_loose() == other.to_loose()
    }
}

impl fmt::Display for Item<'_, '_> {
    /// The item as [`Loose`] renders it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Item::Num(n) => fmt::Display::fmt(&Loose::from(n), f),
            Item::Ref(v) => fmt::Display::fmt(v, f),
        }
    }
}

/// Either form of an array (see [`Loose`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum List<'r, 'a> {
    Heap(&'r [Loose<'a>]),
    Nums(&'r Nums),
}

impl<'r, 'a> List<'r, 'a> {
    pub(crate) fn len(&self) -> usize {
        match self {
            List::Heap(l) => l.len(),
            List::Nums(n) => usize::from(n.len),
        }
    }

    /// The items in order.
    pub(crate) fn iter(&self) -> ListIter<'r, 'a> {
        match *self {
            List::Heap(l) => ListIter::Heap(l.iter()),
            List::Nums(n) => ListIter::Nums(n, 0),
        }
    }
}

/// Iterator of [`List::iter`].
pub(crate) enum ListIter<'r, 'a> {
    Heap(core::slice::Iter<'r, Loose<'a>>),
    Nums(&'r Nums, usize),
}

impl<'r, 'a> Iterator for ListIter<'r, 'a> {
    type Item = Item<'r, 'a>;

    #[inline]
    fn next(&mut self) -> Option<Item<'r, 'a>> {
        match self {
            ListIter::Heap(l) => l.next().map(Item::Ref),
            ListIter::Nums(n, i) => {
                let v = n.get(*i)?;
                *i += 1;
                Some(Item::Num(v))
            }
        }
    }
}

impl PartialEq for Loose<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Loose::Null, Loose::Null) => true,
            (Loose::Bool(a), Loose::Bool(b)) => a == b,
            (Loose::Int(a), Loose::Int(b)) => a == b,
            (Loose::Float(a), Loose::Float(b)) => a == b,
            (Loose::Str(a), Loose::Str(b)) => a == b,
            (Loose::Object(a), Loose::Object(b)) => a == b,
            (a, b) => match (a.list(), b.list()) {
                (Some(x), Some(y)) => x.len() == y.len() && x.iter().eq(y.iter()),
                _ => false,
            },
        }
    }
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
                    .or_else(|| parse_f64(s.as_bytes()).and_then(float_to_i64))
            }
            _ => None,
        }
    }

    /// A finite number: JSON number or a string holding one.
    pub(crate) fn as_f64(&self) -> Option<f64> {
        let v = match self {
            Loose::Int(i) => *i as f64,
            Loose::Float(f) => *f,
            Loose::Str(s) => parse_f64(s.trim().as_bytes())?,
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

    /// The heap form of an array only: for values read by serde (replies), which never hold the
    /// `Nums` form. Command code reads arrays with [`Loose::list`].
    pub(crate) fn as_list(&self) -> Option<&[Loose<'a>]> {
        match self {
            Loose::List(l) => Some(l),
            _ => None,
        }
    }

    /// An array in either form.
    pub(crate) fn list(&self) -> Option<List<'_, 'a>> {
        match self {
            Loose::List(l) => Some(List::Heap(l)),
            Loose::Nums(n) => Some(List::Nums(n)),
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
            Loose::List(_) | Loose::Nums(_) => {
                f.write_str("[")?;
                for (i, v) in self.list().iter().flat_map(List::iter).enumerate() {
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
    pub(crate) voltage: Option<Loose<'a>>,
    pub(crate) frequency: Option<Loose<'a>>,
    pub(crate) interval: Option<Loose<'a>>,
    pub(crate) since: Option<Loose<'a>>,
    pub(crate) enable: Option<Loose<'a>>,
}

/// The keys the protocol knows; anything else is skipped without being stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
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
    Voltage,
    Frequency,
    Interval,
    Since,
    Enable,
    Other,
}

/// A key of at most 8 bytes packed into an integer (little-endian, zero padded), so recognising a
/// key is one load and a few integer comparisons instead of a chain of slice comparisons.
const fn pack(k: &[u8]) -> u64 {
    let mut w = 0u64;
    let mut i = k.len();
    while i > 0 {
        i -= 1;
        // Compile-time only (every caller is a `const` below), so no runtime index.
        #[allow(clippy::indexing_slicing)]
        let b = k[i];
        w = (w << 8) | b as u64;
    }
    w
}

impl Key {
    /// Any key as bytes (the scanner's escaped-key path and serde's).
    pub(crate) fn from_bytes(k: &[u8]) -> Key {
        if k == b"frequency" {
            return Key::Frequency; // the one known key longer than a packed word
        }
        if k.len() > 8 {
            return Key::Other;
        }
        let w = k.iter().rev().fold(0u64, |w, &b| (w << 8) | u64::from(b));
        Key::from_packed(w, k.len())
    }

    /// The key whose `len` bytes, packed little-endian and zero padded, are `w`. The length is
    /// compared too, so zero padding cannot confuse `ts` with `ts\0`.
    #[inline]
    pub(crate) fn from_packed(w: u64, len: usize) -> Key {
        const TS: u64 = pack(b"ts");
        const CMD: u64 = pack(b"cmd");
        const CAL: u64 = pack(b"cal");
        const PWD: u64 = pack(b"pwd");
        const CAL_V: u64 = pack(b"calV");
        const CAL_I: u64 = pack(b"calI");
        const HOUR: u64 = pack(b"hour");
        const NAME: u64 = pack(b"name");
        const SSID: u64 = pack(b"ssid");
        const USER: u64 = pack(b"user");
        const PORT: u64 = pack(b"port");
        const TYPE: u64 = pack(b"type");
        const RATE: u64 = pack(b"rate");
        const TIME: u64 = pack(b"time");
        const SLOT: u64 = pack(b"slot");
        const LEVEL: u64 = pack(b"level");
        const VALUE: u64 = pack(b"value");
        const TOKEN: u64 = pack(b"token");
        const ENERGY: u64 = pack(b"energy");
        const MINUTE: u64 = pack(b"minute");
        const OFFSET: u64 = pack(b"offset");
        const SERVER: u64 = pack(b"server");
        const PREFIX: u64 = pack(b"prefix");
        const PAYLOAD: u64 = pack(b"payload");
        const SAMPLES: u64 = pack(b"samples");
        const FLOW_CTR: u64 = pack(b"flowCtr");
        const NTP_CONF: u64 = pack(b"ntpConf");
        const MEASURES: u64 = pack(b"measures");
        const VOLTAGE: u64 = pack(b"voltage");
        const INTERVAL: u64 = pack(b"interval");
        const SINCE: u64 = pack(b"since");
        const ENABLE: u64 = pack(b"enable");
        let (key, key_len) = match w {
            TS => (Key::Ts, 2),
            CMD => (Key::Cmd, 3),
            CAL => (Key::Cal, 3),
            PWD => (Key::Pwd, 3),
            CAL_V => (Key::CalV, 4),
            CAL_I => (Key::CalI, 4),
            HOUR => (Key::Hour, 4),
            NAME => (Key::Name, 4),
            SSID => (Key::Ssid, 4),
            USER => (Key::User, 4),
            PORT => (Key::Port, 4),
            TYPE => (Key::Kind, 4),
            RATE => (Key::Rate, 4),
            TIME => (Key::Time, 4),
            SLOT => (Key::Slot, 4),
            LEVEL => (Key::Level, 5),
            VALUE => (Key::Value, 5),
            TOKEN => (Key::Token, 5),
            ENERGY => (Key::Energy, 6),
            MINUTE => (Key::Minute, 6),
            OFFSET => (Key::Offset, 6),
            SERVER => (Key::Server, 6),
            PREFIX => (Key::Prefix, 6),
            PAYLOAD => (Key::Payload, 7),
            SAMPLES => (Key::Samples, 7),
            FLOW_CTR => (Key::FlowCtr, 7),
            NTP_CONF => (Key::NtpConf, 7),
            MEASURES => (Key::Measures, 8),
            VOLTAGE => (Key::Voltage, 7),
            INTERVAL => (Key::Interval, 8),
            SINCE => (Key::Since, 5),
            ENABLE => (Key::Enable, 6),
            _ => return Key::Other,
        };
        if len == key_len { key } else { Key::Other }
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

/// Fills a caller-owned [`RawCommand`] in place. The struct is ~1.8 KB; returning it by value
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

/// Reads a top-level object `payload` into a caller's buffer; answers whether it was one (else dropped).
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
            Key::Voltage => (&mut raw.voltage, "voltage"),
            Key::Frequency => (&mut raw.frequency, "frequency"),
            Key::Interval => (&mut raw.interval, "interval"),
            Key::Since => (&mut raw.since, "since"),
            Key::Enable => (&mut raw.enable, "enable"),
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
    /// The storage of a known key (`Key::Other` has none and maps to `cmd`, never asked for).
    pub(crate) fn slot(&mut self, key: Key) -> &mut Option<Loose<'a>> {
        match key {
            Key::Cmd | Key::Other => &mut self.cmd,
            Key::Payload => &mut self.payload,
            Key::Level => &mut self.level,
            Key::Cal => &mut self.cal,
            Key::CalV => &mut self.cal_v,
            Key::CalI => &mut self.cal_i,
            Key::Energy => &mut self.energy,
            Key::Ts => &mut self.ts,
            Key::Hour => &mut self.hour,
            Key::Minute => &mut self.minute,
            Key::Samples => &mut self.samples,
            Key::Value => &mut self.value,
            Key::Offset => &mut self.offset,
            Key::Token => &mut self.token,
            Key::Name => &mut self.name,
            Key::Ssid => &mut self.ssid,
            Key::Pwd => &mut self.pwd,
            Key::Server => &mut self.server,
            Key::User => &mut self.user,
            Key::Port => &mut self.port,
            Key::Kind => &mut self.kind,
            Key::Measures => &mut self.measures,
            Key::Rate => &mut self.rate,
            Key::Prefix => &mut self.prefix,
            Key::Time => &mut self.time,
            Key::FlowCtr => &mut self.flow_ctr,
            Key::Slot => &mut self.slot,
            Key::NtpConf => &mut self.ntp_conf,
            Key::Voltage => &mut self.voltage,
            Key::Frequency => &mut self.frequency,
            Key::Interval => &mut self.interval,
            Key::Since => &mut self.since,
            Key::Enable => &mut self.enable,
        }
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
