//! A tiny ordered JSON object writer for replies: keys come out in the order they are added
//! (PROTOCOL.md §2 fixes the order), numbers in serde_json's shortest round-trip form, non-finite
//! numbers as `null`.

use alloc::string::String;
use core::fmt::Write;

/// An object under construction.
pub(crate) struct Obj {
    s: String,
    first: bool,
}

impl Obj {
    pub(crate) fn new() -> Self {
        Obj {
            s: String::from("{"),
            first: true,
        }
    }

    /// `{"error":<e>,"cmd":"<cmd>"` — the head of every reply but `info`.
    pub(crate) fn reply(error: bool, cmd: &str) -> Self {
        Obj::new().bool("error", error).str("cmd", cmd)
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.s.push(',');
        }
        self.first = false;
        push_str(&mut self.s, k);
        self.s.push(':');
    }

    pub(crate) fn str(mut self, k: &str, v: &str) -> Self {
        self.key(k);
        push_str(&mut self.s, v);
        self
    }

    pub(crate) fn bool(mut self, k: &str, v: bool) -> Self {
        self.key(k);
        self.s.push_str(if v { "true" } else { "false" });
        self
    }

    pub(crate) fn int(mut self, k: &str, v: i64) -> Self {
        self.key(k);
        let _ = write!(self.s, "{v}");
        self
    }

    pub(crate) fn uint(mut self, k: &str, v: u64) -> Self {
        self.key(k);
        let _ = write!(self.s, "{v}");
        self
    }

    pub(crate) fn uints(mut self, k: &str, v: &[u64]) -> Self {
        self.key(k);
        self.s.push('[');
        for (i, x) in v.iter().enumerate() {
            if i > 0 {
                self.s.push(',');
            }
            let _ = write!(self.s, "{x}");
        }
        self.s.push(']');
        self
    }

    pub(crate) fn f64(mut self, k: &str, v: f64) -> Self {
        self.key(k);
        push_f64(&mut self.s, v);
        self
    }

    pub(crate) fn f32s(mut self, k: &str, v: &[f32]) -> Self {
        self.key(k);
        self.s.push('[');
        for (i, x) in v.iter().enumerate() {
            if i > 0 {
                self.s.push(',');
            }
            push_f32(&mut self.s, Some(*x));
        }
        self.s.push(']');
        self
    }

    pub(crate) fn f64s(mut self, k: &str, v: &[f64]) -> Self {
        self.key(k);
        self.s.push('[');
        for (i, x) in v.iter().enumerate() {
            if i > 0 {
                self.s.push(',');
            }
            push_f64(&mut self.s, *x);
        }
        self.s.push(']');
        self
    }

    pub(crate) fn opt_f32(mut self, k: &str, v: Option<f32>) -> Self {
        self.key(k);
        push_f32(&mut self.s, v);
        self
    }

    pub(crate) fn finish(mut self) -> String {
        self.s.push('}');
        self.s
    }
}

pub(crate) fn push_str(out: &mut String, v: &str) {
    match serde_json::to_string(v) {
        Ok(s) => out.push_str(&s),
        Err(_) => out.push_str("\"\""),
    }
}

pub(crate) fn push_f32(out: &mut String, v: Option<f32>) {
    match v
        .filter(|x| x.is_finite())
        .map(|x| serde_json::to_string(&x))
    {
        Some(Ok(s)) => out.push_str(&s),
        _ => out.push_str("null"),
    }
}

pub(crate) fn push_f64(out: &mut String, v: f64) {
    match Some(v)
        .filter(|x| x.is_finite())
        .map(|x| serde_json::to_string(&x))
    {
        Some(Ok(s)) => out.push_str(&s),
        _ => out.push_str("null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ordered_and_canonical() {
        let s = Obj::reply(false, "x")
            .f32s("a", &[1.0, f32::INFINITY, f32::NAN, 0.1])
            .str("q", "a\"b")
            .finish();
        assert_eq!(
            s,
            r#"{"error":false,"cmd":"x","a":[1.0,null,null,0.1],"q":"a\"b"}"#
        );
    }
}
