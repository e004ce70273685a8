//! A zero-copy JSON object scanner that fills a [`RawCommand`] in place.
//!
//! It replaces serde_json on the command path: one forward pass over the line, byte loops at the
//! token level, strings borrowed from the input unless they hold escapes, known keys dispatched by
//! length, unknown values skipped iteratively. It accepts exactly what serde_json accepts for the
//! same [`RawCommand`] (same grammar, whitespace set, escapes and surrogate rules, UTF-8 checks on
//! keys and known strings, number forms and range, duplicate keys refused, nesting limit
//! [`MAX_DEPTH`] on known values), so [`Command::parse`](super::Command::parse) keeps its texts.
//!
//! The one intentional limit beyond serde_json: unknown values may nest at most
//! [`MAX_SKIP_DEPTH`] levels (a 600-byte command line cannot reach it), so skipping needs no heap.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use super::number::{number_value, short_number};
use super::raw::{Key, Loose, MAX_DEPTH, Nums, RawCommand};
use super::types::known_name;

/// Deepest nesting of an unknown (skipped) value.
pub(crate) const MAX_SKIP_DEPTH: usize = 1024;

/// Why bytes are not a JSON object we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanError {
    /// The input ended before the object did (what a missing final `}` gives).
    Eof,
    /// Anything else: bad syntax, a duplicate key, nesting too deep, invalid UTF-8 in a string
    /// that is read, a number out of `f64` range, trailing bytes.
    Syntax,
}

type Scan<T> = Result<T, ScanError>;

/// Fills `raw` from one JSON object. With `payload_buf`, an object-valued top-level `payload` is
/// read into that buffer (created on demand) instead of a heap box, and `raw.payload` keeps a
/// marker: `Null` when the payload was an object, `Bool(false)` otherwise.
///
/// Answers whether any stored value owns heap memory (an escaped string, a list, a nested object):
/// when none does, the caller may skip dropping the raw form.
pub(crate) fn fill<'a>(
    raw: &mut RawCommand<'a>,
    payload_buf: Option<&mut Option<RawCommand<'a>>>,
    json: &'a [u8],
) -> Scan<bool> {
    // No whole-line UTF-8 pass (measured: it costs as much as the per-string checks it saves):
    // only what serde_json would check is checked, the strings that are kept and the keys that are
    // not one of the (ASCII) known keys. Unknown values are skipped.
    let mut s = Scanner {
        rest: json,
        owns_heap: false,
    };
    s.ws();
    if s.peek()? != b'{' {
        return Err(ScanError::Syntax);
    }
    s.bump();
    s.object(raw, 0, payload_buf)?;
    s.ws();
    if s.rest.is_empty() {
        Ok(s.owns_heap)
    } else {
        Err(ScanError::Syntax)
    }
}

struct Scanner<'a> {
    rest: &'a [u8],
    /// A stored value owns heap memory.
    owns_heap: bool,
}

/// Bytes that end a plain run inside a string: the control characters, `"` and `\\` (one table
/// load per byte instead of three comparisons).
// Indexing here runs at compile time: an out-of-range index would be a build error, never a panic.
#[allow(clippy::indexing_slicing)]
static STR_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

#[inline]
fn is_str_special(b: u8) -> bool {
    STR_SPECIAL.get(usize::from(b)).copied().unwrap_or(true)
}

fn hex4(s: &[u8]) -> Option<u16> {
    let mut n = 0u16;
    for &b in s {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        n = (n << 4) | u16::from(d);
    }
    Some(n)
}

impl<'a> Scanner<'a> {
    #[inline]
    fn ws(&mut self) {
        // Most tokens follow one another directly: one comparison answers that case.
        if self.rest.first().is_none_or(|&b| b > b' ') {
            return;
        }
        while let [b' ' | b'\t' | b'\n' | b'\r', tail @ ..] = self.rest {
            self.rest = tail;
        }
    }

    #[inline]
    fn peek(&self) -> Scan<u8> {
        self.rest.first().copied().ok_or(ScanError::Eof)
    }

    #[inline]
    fn bump(&mut self) {
        self.rest = self.rest.get(1..).unwrap_or_default();
    }

    #[inline]
    fn eat(&mut self, b: u8) -> Scan<()> {
        if self.peek()? == b {
            self.bump();
            Ok(())
        } else {
            Err(ScanError::Syntax)
        }
    }

    /// Advances past the longest run of plain string bytes and returns it.
    #[inline]
    fn plain_run(&mut self) -> &'a [u8] {
        let n = self
            .rest
            .iter()
            .position(|&b| is_str_special(b))
            .unwrap_or(self.rest.len());
        let (run, tail) = self.rest.split_at_checked(n).unwrap_or((self.rest, &[]));
        self.rest = tail;
        run
    }

    /// Reads `\uXXXX` hex digits (after the `u`).
    fn hex_escape(&mut self) -> Scan<u16> {
        let (digits, tail) = self.rest.split_at_checked(4).ok_or(ScanError::Eof)?;
        self.rest = tail;
        hex4(digits).ok_or(ScanError::Syntax)
    }

    /// After a `\`: decodes one escape into `out` (surrogates must pair, as serde_json requires
    /// for strings).
    fn escape(&mut self, out: &mut Vec<u8>) -> Scan<()> {
        let c = self.peek()?;
        self.bump();
        let b = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let n = self.hex_escape()?;
                let cp = match n {
                    0xDC00..=0xDFFF => return Err(ScanError::Syntax),
                    0xD800..=0xDBFF => {
                        self.eat(b'\\')?;
                        self.eat(b'u')?;
                        let n2 = self.hex_escape()?;
                        if !(0xDC00..=0xDFFF).contains(&n2) {
                            return Err(ScanError::Syntax);
                        }
                        ((u32::from(n - 0xD800) << 10) | u32::from(n2 - 0xDC00)) + 0x1_0000
                    }
                    _ => u32::from(n),
                };
                let ch = char::from_u32(cp).ok_or(ScanError::Syntax)?;
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
                return Ok(());
            }
            _ => return Err(ScanError::Syntax),
        };
        out.push(b);
        Ok(())
    }

    /// After the opening quote: the string, borrowed when it has no escapes. UTF-8 is checked.
    fn string(&mut self) -> Scan<Cow<'a, str>> {
        let head = self.plain_run();
        match self.peek()? {
            b'"' => {
                self.bump();
                core::str::from_utf8(head)
                    .map(Cow::Borrowed)
                    .map_err(|_| ScanError::Syntax)
            }
            b'\\' => {
                let buf = self.escaped_rest(head, 16)?;
                String::from_utf8(buf)
                    .map(|s| {
                        self.owns_heap = true;
                        Cow::Owned(s)
                    })
                    .map_err(|_| ScanError::Syntax)
            }
            _ => Err(ScanError::Syntax),
        }
    }

    /// The rest of a string whose unescaped start `head` was read and which continues with a
    /// backslash or an invalid byte: its bytes with escapes decoded, up to and past the closing
    /// quote (`extra` is room reserved for the rest). UTF-8 is left to the caller.
    fn escaped_rest(&mut self, head: &[u8], extra: usize) -> Scan<Vec<u8>> {
        let mut buf = Vec::with_capacity(head.len() + extra);
        buf.extend_from_slice(head);
        loop {
            match self.peek()? {
                b'"' => {
                    self.bump();
                    return Ok(buf);
                }
                b'\\' => {
                    self.bump();
                    self.escape(&mut buf)?;
                }
                _ => return Err(ScanError::Syntax),
            }
            buf.extend_from_slice(self.plain_run());
        }
    }

    /// After the opening quote: skips a string of an unknown value (escapes are checked, UTF-8 is
    /// not, as serde_json does when ignoring a value).
    fn skip_string(&mut self) -> Scan<()> {
        loop {
            self.plain_run();
            match self.peek()? {
                b'"' => {
                    self.bump();
                    return Ok(());
                }
                b'\\' => {
                    self.bump();
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.bump(),
                        b'u' => {
                            self.bump();
                            self.hex_escape()?;
                        }
                        _ => return Err(ScanError::Syntax),
                    }
                }
                _ => return Err(ScanError::Syntax),
            }
        }
    }

    /// After the opening quote of a key: which known key it is.
    #[inline]
    fn key(&mut self) -> Scan<Key> {
        // Fast path: every known key but `frequency` (found by the slow path) is at most 8 plain
        // ASCII bytes. Load 8 bytes as one word,
        // find the closing quote in it (SWAR zero-byte search on `word ^ "\"\"…"`) and compare the
        // bytes before it as an integer. Anything else (unknown, long, escaped keys, the end of the
        // input) takes the general path from the key's start.
        if let Some(chunk) = self.rest.first_chunk::<8>() {
            let w = u64::from_le_bytes(*chunk);
            let x = w ^ 0x2222_2222_2222_2222;
            let quotes = x.wrapping_sub(0x0101_0101_0101_0101) & !x & 0x8080_8080_8080_8080;
            let len = if quotes != 0 {
                (quotes.trailing_zeros() / 8) as usize
            } else if self.rest.get(8) == Some(&b'"') {
                8
            } else {
                usize::MAX
            };
            let mask = match len {
                0..=7 => (1u64 << (8 * len)) - 1,
                _ => u64::MAX,
            };
            let key = Key::from_packed(w & mask, len);
            if key != Key::Other {
                self.rest = self.rest.get(len + 1..).unwrap_or_default();
                return Ok(key);
            }
        }
        self.key_slow()
    }

    /// [`Scanner::key`] for long, non-ASCII or escaped keys.
    #[cold]
    fn key_slow(&mut self) -> Scan<Key> {
        let head = self.plain_run();
        if self.peek()? == b'"' {
            self.bump();
            // Keys are read as strings by serde_json, so they must be UTF-8; a known key is ASCII
            // by construction, so only the others need the check.
            let key = Key::from_bytes(head);
            if key == Key::Other && core::str::from_utf8(head).is_err() {
                return Err(ScanError::Syntax);
            }
            return Ok(key);
        }
        // Escaped or invalid: take the slow path from the key's start.
        let buf = self.escaped_rest(head, 8)?;
        if core::str::from_utf8(&buf).is_err() {
            return Err(ScanError::Syntax);
        }
        Ok(Key::from_bytes(&buf))
    }

    fn literal(&mut self, word: &[u8]) -> Scan<()> {
        for &w in word {
            match self.rest.split_first() {
                Some((&b, tail)) if b == w => self.rest = tail,
                Some(_) => return Err(ScanError::Syntax),
                None => return Err(ScanError::Eof),
            }
        }
        Ok(())
    }

    /// The bytes of a JSON number (grammar checked), and whether it is an integer.
    #[inline]
    fn number_token(&mut self) -> Scan<(&'a [u8], bool)> {
        let s = self.rest;
        // A run of digits at `i`; none is the end of the input (`Eof`) or a syntax error.
        let digits = |i: usize| -> Scan<usize> {
            let tail = s.get(i..).unwrap_or_default();
            match tail.iter().position(|b| !b.is_ascii_digit()) {
                Some(0) => Err(ScanError::Syntax),
                Some(n) => Ok(n),
                None if tail.is_empty() => Err(ScanError::Eof),
                None => Ok(tail.len()),
            }
        };
        let mut i = usize::from(s.first() == Some(&b'-'));
        let n = digits(i)?;
        if n > 1 && s.get(i) == Some(&b'0') {
            return Err(ScanError::Syntax);
        }
        i += n;
        let mut integer = true;
        if s.get(i) == Some(&b'.') {
            integer = false;
            i += 1;
            i += digits(i)?;
        }
        if matches!(s.get(i), Some(b'e' | b'E')) {
            integer = false;
            i += 1;
            if matches!(s.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            i += digits(i)?;
        }
        let (tok, tail) = s.split_at_checked(i).ok_or(ScanError::Syntax)?;
        self.rest = tail;
        Ok((tok, integer))
    }

    /// A number as serde_json hands it to a visitor: `u64`/`i64` when integral and in range
    /// (`-0` is a float), else a correctly rounded `f64`; an infinite one is an error.
    fn number(&mut self) -> Scan<Loose<'a>> {
        if let Some((v, n)) = short_number(self.rest) {
            self.rest = self.rest.get(n..).unwrap_or_default();
            return Ok(v.into());
        }
        let (tok, integer) = self.number_token()?;
        number_value(tok, integer).ok_or(ScanError::Syntax)
    }

    /// A value of a known key at nesting `depth`.
    fn value(&mut self, depth: u8) -> Scan<Loose<'a>> {
        match self.peek()? {
            b'"' => {
                self.bump();
                Ok(Loose::Str(self.string()?))
            }
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal(b"true").map(|()| Loose::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Loose::Bool(false)),
            b'n' => self.literal(b"null").map(|()| Loose::Null),
            b'[' => {
                if depth >= MAX_DEPTH {
                    return Err(ScanError::Syntax);
                }
                self.bump();
                let start = self.rest;
                if let Some(nums) = self.short_nums() {
                    return Ok(Loose::Nums(nums));
                }
                // Anything else, or an error: read it again into the heap form, which also
                // reports any error exactly as before.
                self.rest = start;
                let mut items = Vec::with_capacity(6);
                self.ws();
                if self.peek()? == b']' {
                    self.bump();
                    self.owns_heap = true;
                    return Ok(Loose::List(items));
                }
                loop {
                    self.ws();
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek()? {
                        b',' => self.bump(),
                        b']' => {
                            self.bump();
                            self.owns_heap = true;
                            return Ok(Loose::List(items));
                        }
                        _ => return Err(ScanError::Syntax),
                    }
                }
            }
            b'{' => {
                if depth >= MAX_DEPTH {
                    return Err(ScanError::Syntax);
                }
                self.bump();
                let mut obj = Box::new(RawCommand::default());
                self.object(&mut obj, depth + 1, None)?;
                self.owns_heap = true;
                Ok(Loose::Object(obj))
            }
            _ => Err(ScanError::Syntax),
        }
    }

    /// [`Scanner::value`] of the known key `key`, written straight into its (empty) slot: the
    /// common scalars are stored in place instead of being moved there.
    ///
    /// The value of `cmd`, when it is a known command name spelled plainly, is recognised by its
    /// bytes and stored as the crate's own `&'static str` (it is ASCII, so the UTF-8 check of the
    /// general path cannot fail and is skipped).
    #[inline]
    fn value_into(&mut self, key: Key, depth: u8, slot: &mut Option<Loose<'a>>) -> Scan<()> {
        match self.rest {
            [b'"', tail @ ..] => {
                self.rest = tail;
                if key == Key::Cmd {
                    let start = self.rest;
                    let head = self.plain_run();
                    if let ([b'"', tail @ ..], Some(name)) = (self.rest, known_name(head)) {
                        self.rest = tail;
                        *slot = Some(Loose::Str(Cow::Borrowed(name)));
                        return Ok(());
                    }
                    self.rest = start;
                }
                *slot = Some(Loose::Str(self.string()?));
            }
            [b'-' | b'0'..=b'9', ..] => match short_number(self.rest) {
                Some((v, n)) => {
                    self.rest = self.rest.get(n..).unwrap_or_default();
                    *slot = Some(v.into());
                }
                None => *slot = Some(self.number()?),
            },
            [b't', b'r', b'u', b'e', tail @ ..] => {
                self.rest = tail;
                *slot = Some(Loose::Bool(true));
            }
            [b'f', b'a', b'l', b's', b'e', tail @ ..] => {
                self.rest = tail;
                *slot = Some(Loose::Bool(false));
            }
            _ => *slot = Some(self.value(depth)?),
        }
        Ok(())
    }

    /// After `[`: an array of at most [`Nums::CAPACITY`] numbers of the common forms (see
    /// [`short_number`]), kept inline. `None` for anything else, including every error; the
    /// caller then rewinds and takes the general path.
    #[inline]
    fn short_nums(&mut self) -> Option<Nums> {
        let mut nums = Nums::default();
        self.ws();
        if self.rest.first() == Some(&b']') {
            self.bump();
            return Some(nums);
        }
        loop {
            self.ws();
            let (v, n) = short_number(self.rest)?;
            nums.push(v)?;
            self.rest = self.rest.get(n..).unwrap_or_default();
            self.ws();
            match self.rest.first()? {
                b',' => self.bump(),
                b']' => {
                    self.bump();
                    return Some(nums);
                }
                _ => return None,
            }
        }
    }

    /// Skips any value without storing it; nesting is tracked in a bit stack (1 = object).
    fn skip_value(&mut self) -> Scan<()> {
        let mut stack = [0u64; MAX_SKIP_DEPTH / 64];
        let mut depth = 0usize;
        loop {
            // A value is expected here.
            self.ws();
            let opened = match self.peek()? {
                b'"' => {
                    self.bump();
                    self.skip_string()?;
                    None
                }
                b'-' | b'0'..=b'9' => {
                    self.number_token()?;
                    None
                }
                b't' => self.literal(b"true").map(|()| None)?,
                b'f' => self.literal(b"false").map(|()| None)?,
                b'n' => self.literal(b"null").map(|()| None)?,
                c @ (b'[' | b'{') => {
                    self.bump();
                    Some(c == b'{')
                }
                _ => return Err(ScanError::Syntax),
            };
            if let Some(is_obj) = opened {
                let word = stack.get_mut(depth / 64).ok_or(ScanError::Syntax)?;
                let bit = 1u64 << (depth % 64);
                if is_obj {
                    *word |= bit;
                } else {
                    *word &= !bit;
                }
                depth += 1;
                self.ws();
                let close = if is_obj { b'}' } else { b']' };
                if self.peek()? != close {
                    if is_obj {
                        self.skip_key()?;
                    }
                    continue;
                }
                // Empty container: falls through to the closing logic below.
            }
            // After a value (or at an empty container's closing bracket).
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let top = depth - 1;
                let is_obj = stack
                    .get(top / 64)
                    .is_some_and(|w| w & (1u64 << (top % 64)) != 0);
                self.ws();
                match self.peek()? {
                    b'}' if is_obj => {
                        self.bump();
                        depth = top;
                    }
                    b']' if !is_obj => {
                        self.bump();
                        depth = top;
                    }
                    b',' => {
                        self.bump();
                        if is_obj {
                            self.ws();
                            self.skip_key()?;
                        }
                        break;
                    }
                    _ => return Err(ScanError::Syntax),
                }
            }
        }
    }

    /// In a skipped object: a key and its colon.
    fn skip_key(&mut self) -> Scan<()> {
        self.eat(b'"')?;
        self.skip_string()?;
        self.ws();
        self.eat(b':')
    }

    /// After `{`: the members of an object whose values are stored at nesting `depth`.
    fn object(
        &mut self,
        raw: &mut RawCommand<'a>,
        depth: u8,
        mut payload_buf: Option<&mut Option<RawCommand<'a>>>,
    ) -> Scan<()> {
        self.ws();
        if self.peek()? == b'}' {
            self.bump();
            return Ok(());
        }
        loop {
            // Each separator is tried first where compact JSON has it, then after whitespace.
            match self.rest {
                [b'"', tail @ ..] => self.rest = tail,
                _ => {
                    self.ws();
                    self.eat(b'"')?;
                }
            }
            let key = self.key()?;
            match self.rest {
                [b':', tail @ ..] => self.rest = tail,
                _ => {
                    self.ws();
                    self.eat(b':')?;
                }
            }
            self.ws();
            let slot = match key {
                Key::Payload if payload_buf.is_some() => {
                    if raw.payload.is_some() {
                        return Err(ScanError::Syntax);
                    }
                    if self.peek()? == b'{' {
                        self.bump();
                        if let Some(buf) = payload_buf.as_deref_mut() {
                            let buf = buf.get_or_insert_with(RawCommand::default);
                            self.object(buf, depth + 1, None)?;
                        }
                        raw.payload = Some(Loose::Null);
                    } else {
                        self.skip_value()?;
                        raw.payload = Some(Loose::Bool(false));
                    }
                    None
                }
                Key::Other => {
                    self.skip_value()?;
                    None
                }
                known => Some(raw.slot(known)),
            };
            if let Some(slot) = slot {
                if slot.is_some() {
                    return Err(ScanError::Syntax);
                }
                self.value_into(key, depth, slot)?;
            }
            match self.rest {
                [b',', tail @ ..] => self.rest = tail,
                [b'}', tail @ ..] => {
                    self.rest = tail;
                    return Ok(());
                }
                _ => {
                    self.ws();
                    match self.peek()? {
                        b',' => self.bump(),
                        b'}' => {
                            self.bump();
                            return Ok(());
                        }
                        _ => return Err(ScanError::Syntax),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scanner accepts and reads exactly what serde_json reads into the same [`RawCommand`].
    fn same_as_serde(json: &[u8]) {
        let ours = {
            let mut raw = RawCommand::default();
            fill(&mut raw, None, json).map(|_| raw)
        };
        let theirs = serde_json::from_slice::<RawCommand<'_>>(json);
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "{:?}", alloc::string::String::from_utf8_lossy(json))
            }
            (Err(_), Err(_)) => {}
            _ => panic!(
                "{:?}: scanner {:?} vs serde_json {:?}",
                alloc::string::String::from_utf8_lossy(json),
                ours.is_ok(),
                theirs
                    .map(|_| ())
                    .map_err(|e| alloc::string::ToString::to_string(&e))
            ),
        }
    }

    const SEEDS: &[&str] = &[
        r#"{"cmd":"info"}"#,
        r#" { "cmd" : "sample" , "payload" : { "type":"UDP","port":54323,"measures":"p,q","rate":50,"time":1614697443.5,"slot":[1,4],"ntpConf":20 } } "#,
        r#"{"cmd":"calibration","cal":[1.0,1.0,0.98,1.02,1.0,1.0]}"#,
        r#"{"cmd":"resetEnergy","energy":[1.5,-2.5e3,3.5E-2],"ts":1614697441,"x":{"a":[1,{"b":null}],"c":"\u00e9\n"}}"#,
        r#"{"cmd":"addWifi","payload":{"ssid":"caf\u00e9 \ud83d\ude00","pwd":"a\"b\\c\/d\b\f\r\t"}}"#,
        r#"{"c\u006dd":"info","value":true,"level":false,"hour":null,"minute":-0,"samples":18446744073709551616,"offset":-9223372036854775808,"rate":9223372036854775808}"#,
        r#"{"cmd":"x","payload":[1,2,[3,[4]]],"name":{"payload":{"payload":1}}}"#,
        // Inline number arrays and their limits (7 items, strings, nesting, long or exponent
        // forms fall back to the heap form), short-number edge cases, and keys around the 8-byte
        // packed fast path (unknown 8- and 9-byte keys, prefixes of known keys, non-ASCII).
        r#"{"cal":[1,-0,0.5,2.25,-7,123456789012345],"energy":[],"slot":[1,2,3,4,5,6,7],"calV":[1,"2"],"calI":[[1],2],"ts":[1e2,1234567890123456,0.1234567890123456]}"#,
        r#"{"measures":-0.0,"measurez":1,"measuresX":2,"cm":3,"cmdd":4,"ntpConf":-0,"rate":999999999999999,"café":5,"é":[-1.5,0]}"#,
    ];

    #[test]
    fn agrees_with_serde_json_on_seeds_and_mutations() {
        let mut next = crate::xorshift(0x2545_f491_4f6c_dd1du64);
        const BYTES: &[u8] =
            b"{}[]\",:\\ u0123456789abcdefABCDEF-+.eEtrunlsf\x01\x7f\xc3\xa9\xff\n\r\t/";
        for seed in SEEDS {
            same_as_serde(seed.as_bytes());
            for _ in 0..3000 {
                let mut v = seed.as_bytes().to_vec();
                for _ in 0..(next() % 3 + 1) {
                    let at = (next() as usize) % (v.len() + 1);
                    let b = BYTES[(next() as usize) % BYTES.len()];
                    match next() % 3 {
                        0 if at < v.len() => v[at] = b,
                        1 if at < v.len() => {
                            v.remove(at);
                        }
                        _ => v.insert(at, b),
                    }
                }
                same_as_serde(&v);
                let cut = (next() as usize) % (v.len() + 1);
                same_as_serde(&v[..cut]);
            }
        }
        let lits: [&[u8]; 14] = [
            b"1e400",
            b"-1e400",
            b"0e400",
            b"1e-400",
            b"01",
            b"-",
            b"1.",
            b".5",
            b"+1",
            b"1.e5",
            b"\"\\ud800\"",
            b"\"\\udc00\"",
            b"\"\\ud800\\u0041\"",
            b"\"\xff\"",
        ];
        for lit in lits {
            for key in [&b"{\"cmd\":"[..], b"{\"zz\":"] {
                let mut v = key.to_vec();
                v.extend_from_slice(lit);
                v.push(b'}');
                same_as_serde(&v);
            }
        }
    }
}
