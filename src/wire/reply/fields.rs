//! Tolerant readers of one loose reply field: numbers as integers, floats or strings, booleans as
//! `true`/`"true"`/`1`, `null` as absent; each failure names the wire key.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::raw::RawReply;
use super::types::{Phases, ReplyError};
use crate::wire::command::raw::Loose;

pub(super) type Field<'r, 'a> = Option<&'r Loose<'a>>;

pub(super) fn present<'r, 'a>(v: &'r Option<Loose<'a>>) -> Field<'r, 'a> {
    v.as_ref().filter(|v| !matches!(v, Loose::Null))
}

pub(super) fn req<'r, 'a>(
    v: &'r Option<Loose<'a>>,
    field: &'static str,
) -> Result<&'r Loose<'a>, ReplyError> {
    present(v).ok_or(ReplyError::Missing { field })
}

pub(super) fn string(v: &Option<Loose<'_>>, field: &'static str) -> Result<String, ReplyError> {
    match present(v) {
        None => Err(ReplyError::Missing { field }),
        Some(Loose::Str(s)) => Ok(s.to_string()),
        Some(other @ (Loose::Int(_) | Loose::Float(_) | Loose::Bool(_))) => Ok(other.to_string()),
        Some(_) => Err(ReplyError::Invalid {
            field,
            reason: "expected a string",
        }),
    }
}

pub(super) fn opt_string(v: &Option<Loose<'_>>, field: &'static str) -> Result<String, ReplyError> {
    match present(v) {
        None => Ok(String::new()),
        Some(_) => string(v, field),
    }
}

pub(super) fn int<T: TryFrom<i64>>(
    v: &Option<Loose<'_>>,
    field: &'static str,
) -> Result<T, ReplyError> {
    req(v, field)?
        .as_i64()
        .and_then(|i| T::try_from(i).ok())
        .ok_or(ReplyError::Invalid {
            field,
            reason: "expected an integer in range",
        })
}

pub(super) fn opt_int<T: TryFrom<i64> + Default>(
    v: &Option<Loose<'_>>,
    field: &'static str,
) -> Result<T, ReplyError> {
    match present(v) {
        None => Ok(T::default()),
        Some(_) => int(v, field),
    }
}

pub(super) fn float(v: &Option<Loose<'_>>, field: &'static str) -> Result<f64, ReplyError> {
    req(v, field)?.as_f64().ok_or(ReplyError::Invalid {
        field,
        reason: "expected a number",
    })
}

/// Unix seconds as an integer; a fractional value (older encoders) is floored.
pub(super) fn whole_seconds(v: &Option<Loose<'_>>, field: &'static str) -> Result<i64, ReplyError> {
    let bad = ReplyError::Invalid {
        field,
        reason: "expected Unix seconds",
    };
    let x = req(v, field)?;
    if let Some(i) = x.as_i64() {
        return Ok(i);
    }
    // 2^63 is exact in f64; a floored value in [-2^63, 2^63) converts exactly.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let floor = x
        .as_f64()
        .map(num_traits::Float::floor)
        .filter(|f| (-LIMIT..LIMIT).contains(f))
        .ok_or(bad)?;
    #[allow(clippy::cast_possible_truncation)]
    Ok(floor as i64)
}

pub(super) fn boolean(v: &Option<Loose<'_>>, field: &'static str) -> Result<bool, ReplyError> {
    match present(v) {
        None => Ok(false),
        Some(Loose::Int(i)) => Ok(*i != 0),
        Some(b) => b.as_bool().ok_or(ReplyError::Invalid {
            field,
            reason: "expected true or false",
        }),
    }
}

pub(super) fn list<'r, 'a>(
    v: &'r Option<Loose<'a>>,
    field: &'static str,
) -> Result<&'r [Loose<'a>], ReplyError> {
    req(v, field)?.as_list().ok_or(ReplyError::Invalid {
        field,
        reason: "expected an array",
    })
}

pub(super) fn phases(v: &Option<Loose<'_>>, field: &'static str) -> Result<Phases, ReplyError> {
    let bad = ReplyError::Invalid {
        field,
        reason: "expected 3 numbers or nulls",
    };
    let l = list(v, field)?;
    if l.len() != 3 {
        return Err(bad);
    }
    let mut out = [None; 3];
    for (slot, x) in out.iter_mut().zip(l) {
        *slot = match x {
            Loose::Null => None,
            // A number beyond f32 is undefined, as the encoder writes it: `null`.
            x => finite_f32(x.as_f64().ok_or_else(|| bad.clone())?),
        };
    }
    Ok(out)
}

/// `x` as an f32 when it is one (finite after narrowing), else `None`.
pub(super) fn finite_f32(x: f64) -> Option<f32> {
    let f = x as f32;
    f.is_finite().then_some(f)
}

pub(super) fn f64x3(v: &Option<Loose<'_>>, field: &'static str) -> Result<[f64; 3], ReplyError> {
    let bad = ReplyError::Invalid {
        field,
        reason: "expected 3 numbers",
    };
    let l = list(v, field)?;
    if l.len() != 3 {
        return Err(bad);
    }
    let mut out = [0.0; 3];
    for (slot, x) in out.iter_mut().zip(l) {
        *slot = x.as_f64().ok_or_else(|| bad.clone())?;
    }
    Ok(out)
}

/// `[6]` as is, `[v,i]` (old single-phase) repeated per phase.
pub(super) fn factors(v: &Option<Loose<'_>>, field: &'static str) -> Result<[f32; 6], ReplyError> {
    let bad = ReplyError::Invalid {
        field,
        reason: "expected 6 (or 2) numbers",
    };
    let nums = list(v, field)?
        .iter()
        .map(|x| x.as_f64().and_then(finite_f32).ok_or_else(|| bad.clone()))
        .collect::<Result<Vec<f32>, ReplyError>>()?;
    match *nums.as_slice() {
        [v, i] => Ok([v, i, v, i, v, i]),
        [a, b, c, d, e, f] => Ok([a, b, c, d, e, f]),
        _ => Err(bad),
    }
}

pub(super) fn msg<'r>(raw: &'r RawReply<'_>) -> &'r str {
    present(&raw.msg).and_then(Loose::as_str).unwrap_or("")
}

pub(super) fn msg_after<'r>(
    raw: &'r RawReply<'_>,
    prefix: &'static str,
) -> Result<&'r str, ReplyError> {
    msg(raw).strip_prefix(prefix).ok_or(ReplyError::Invalid {
        field: "msg",
        reason: "unexpected text",
    })
}
