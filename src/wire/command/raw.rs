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

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

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

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor(core::marker::PhantomData))
    }
}

struct LooseVisitor<'a>(core::marker::PhantomData<&'a ()>);

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
        Loose::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // The line is at most 600 bytes, so a list holds at most ~300 items.
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Loose<'a>>()? {
            items.push(item);
        }
        Ok(Loose::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let raw = RawCommand::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Loose::Object(Box::new(raw)))
    }
}

/// A command line as loosely read JSON: every key the protocol knows, each optional and untyped.
/// Unknown keys are ignored; a key given twice is a JSON format error.
///
/// Obtain it with [`RawCommand::from_json`] and turn it into a [`Command`](super::Command) with
/// `TryFrom`; [`Command::parse`](super::Command::parse) does both.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize)]
pub struct RawCommand<'a> {
    #[serde(borrow)]
    pub(crate) cmd: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) payload: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) level: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) cal: Option<Loose<'a>>,
    #[serde(borrow, rename = "calV")]
    pub(crate) cal_v: Option<Loose<'a>>,
    #[serde(borrow, rename = "calI")]
    pub(crate) cal_i: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) energy: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) ts: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) hour: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) minute: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) samples: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) value: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) offset: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) token: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) name: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) ssid: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) pwd: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) server: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) user: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) port: Option<Loose<'a>>,
    #[serde(borrow, rename = "type")]
    pub(crate) kind: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) measures: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) rate: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) prefix: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) time: Option<Loose<'a>>,
    #[serde(borrow, rename = "flowCtr")]
    pub(crate) flow_ctr: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(crate) slot: Option<Loose<'a>>,
    #[serde(borrow, rename = "ntpConf")]
    pub(crate) ntp_conf: Option<Loose<'a>>,
}

impl<'a> RawCommand<'a> {
    /// Reads one JSON object (no line handling: see [`Command::parse`](super::Command::parse)).
    /// Invalid JSON, a non-object, or a key given twice is [`CommandError::Json`](super::CommandError::Json).
    pub fn from_json(json: &'a [u8]) -> Result<RawCommand<'a>, super::CommandError> {
        serde_json::from_slice(json).map_err(|_| super::CommandError::Json)
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
