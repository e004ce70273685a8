//! A tiny JSON object writer shared by commands and replies: keys in the order they are written,
//! strings escaped exactly as serde_json escapes them, floats in serde_json's shortest round-trip form
//! (`1.0`, `0.1`, `1e20`), non-finite floats as `null`.

use alloc::string::String;
use core::fmt::Write as _;

/// Appends `s` as a JSON string literal (quotes included), escaping like serde_json does.
pub(crate) fn push_str_lit(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            0..=0x1f => None,
            _ => continue,
        };
        if let Some(prev) = s.get(start..i) {
            out.push_str(prev);
        }
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        start = i + 1;
    }
    if let Some(rest) = s.get(start..) {
        out.push_str(rest);
    }
    out.push('"');
}

/// Appends an f32 in serde_json's form, `null` if not finite.
pub(crate) fn push_f32(out: &mut String, v: f32) {
    if v.is_finite() {
        out.push_str(&serde_json::to_string(&v).unwrap_or_default());
    } else {
        out.push_str("null");
    }
}

/// Appends an f64 in serde_json's form, `null` if not finite.
pub(crate) fn push_f64(out: &mut String, v: f64) {
    if v.is_finite() {
        out.push_str(&serde_json::to_string(&v).unwrap_or_default());
    } else {
        out.push_str("null");
    }
}

/// Builds one JSON object, key by key.
pub(crate) struct Obj {
    out: String,
    empty: bool,
}

impl Obj {
    pub(crate) fn new() -> Obj {
        let mut out = String::with_capacity(96);
        out.push('{');
        Obj { out, empty: true }
    }

    /// Starts a member; `key` must not need escaping (all protocol keys are plain identifiers).
    pub(crate) fn key(&mut self, key: &str) -> &mut String {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
        &mut self.out
    }

    pub(crate) fn str(&mut self, key: &str, v: &str) -> &mut Obj {
        push_str_lit(self.key(key), v);
        self
    }

    pub(crate) fn bool(&mut self, key: &str, v: bool) -> &mut Obj {
        self.key(key).push_str(if v { "true" } else { "false" });
        self
    }

    pub(crate) fn int(&mut self, key: &str, v: impl core::fmt::Display) -> &mut Obj {
        let _ = write!(self.key(key), "{v}");
        self
    }

    pub(crate) fn f32(&mut self, key: &str, v: f32) -> &mut Obj {
        push_f32(self.key(key), v);
        self
    }

    pub(crate) fn f64(&mut self, key: &str, v: f64) -> &mut Obj {
        push_f64(self.key(key), v);
        self
    }

    pub(crate) fn f32s(&mut self, key: &str, vs: &[f32]) -> &mut Obj {
        let out = self.key(key);
        out.push('[');
        for (i, v) in vs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_f32(out, *v);
        }
        out.push(']');
        self
    }

    pub(crate) fn opt_f32s(&mut self, key: &str, vs: &[Option<f32>]) -> &mut Obj {
        let out = self.key(key);
        out.push('[');
        for (i, v) in vs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match v {
                Some(v) => push_f32(out, *v),
                None => out.push_str("null"),
            }
        }
        out.push(']');
        self
    }

    pub(crate) fn f64s(&mut self, key: &str, vs: &[f64]) -> &mut Obj {
        let out = self.key(key);
        out.push('[');
        for (i, v) in vs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_f64(out, *v);
        }
        out.push(']');
        self
    }

    /// Appends an already encoded JSON value.
    pub(crate) fn raw(&mut self, key: &str, json: &str) -> &mut Obj {
        self.key(key).push_str(json);
        self
    }

    pub(crate) fn finish(&mut self) -> String {
        self.out.push('}');
        core::mem::take(&mut self.out)
    }
}
