//! A cheap look at a command line's name (its top-level `"cmd"` string) without reading the command.
//!
//! The device needs the name before it may parse a line: a line that arrives while a `reqSamples`
//! is pending is held, except a `stop`, which ends the pending request early (docs/protocol.md §5).
//! [`peek_name`] answers that question in one pass over the bytes, with no allocation and no
//! recursion, so a hostile line costs no more than its length.

/// Deepest nesting of arrays and objects inside a member's value: the command scanner's limit for
/// skipped values (a 600-byte command line cannot reach it; serde_json has none for skipped values).
const MAX_DEPTH: usize = 1024;

/// The name of the command on `line`: the value of its top-level `"cmd"` member.
///
/// `line` must be one complete JSON object, optionally surrounded by JSON whitespace (the caller
/// trims the line end). Answers `None` when:
/// - the line is not a syntactically valid JSON object (bad nesting, bad escapes, control bytes or
///   invalid UTF-8 in a key or the name, a malformed number or literal, anything after the closing
///   `}`, nesting deeper than 1024);
/// - it has no `cmd` member, `cmd` is not a string, or `cmd` appears twice;
/// - the name is written with escapes (`"st\u006fp"`): the name is returned borrowed from `line`,
///   and no client escapes an ASCII command name. (The full [`Command::parse`](super::Command::parse)
///   still reads such a line.)
///
/// Keys are compared after decoding their escapes (`"c\u006dd"` is `cmd`), as a JSON parser does.
/// Like serde_json, the peek does not check the UTF-8 of strings it skips nor unpaired surrogate
/// escapes (`\ud800`) in them. Never panics; O(`line.len()`) time, O(1) memory (no recursion).
pub fn peek_name(line: &[u8]) -> Option<&str> {
    let mut p = Peek { s: line, i: 0 };
    p.ws();
    p.eat(b'{')?;
    p.ws();
    let mut name = None;
    if p.peek() == Some(b'}') {
        p.bump();
    } else {
        loop {
            let (key, key_escaped) = p.string()?;
            core::str::from_utf8(key).ok()?;
            p.ws();
            p.eat(b':')?;
            p.ws();
            if key_is_cmd(key, key_escaped) {
                if name.is_some() {
                    return None; // duplicate `cmd`
                }
                let (value, escaped) = p.string()?;
                if escaped {
                    return None;
                }
                name = Some(core::str::from_utf8(value).ok()?);
            } else {
                p.skip_value()?;
            }
            p.ws();
            match p.next()? {
                b',' => p.ws(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    p.ws();
    if p.i != line.len() {
        return None;
    }
    name
}

/// Whether the raw (still escaped, already validated) key text `raw` decodes to `cmd`.
fn key_is_cmd(raw: &[u8], escaped: bool) -> bool {
    if !escaped {
        return raw == b"cmd";
    }
    let mut want = b"cmd".iter();
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        let (c, len) = if b == b'\\' {
            match raw.get(i + 1) {
                Some(b'u') => match raw.get(i + 2..i + 6).and_then(hex4) {
                    // A key byte of "cmd" is ASCII; any other code unit cannot match.
                    Some(u) if u < 0x80 => (u as u8, 6),
                    _ => return false,
                },
                Some(&e) => (unescape(e), 2),
                None => return false,
            }
        } else {
            (b, 1)
        };
        if want.next() != Some(&c) {
            return false;
        }
        i += len;
    }
    want.next().is_none()
}

/// The byte a one-letter escape stands for (only called on validated escapes).
fn unescape(e: u8) -> u8 {
    match e {
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        other => other, // `"`, `\`, `/`
    }
}

/// Four hex digits as a UTF-16 code unit.
fn hex4(h: &[u8]) -> Option<u16> {
    h.iter().try_fold(0u16, |acc, &b| {
        let d = (b as char).to_digit(16)?;
        Some(acc << 4 | d as u16)
    })
}

/// A cursor over the line.
struct Peek<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Peek<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn bump(&mut self) {
        self.i += 1;
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.bump();
        Some(b)
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// Skips JSON whitespace (space, tab, CR, LF).
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.bump();
        }
    }

    /// A string at the cursor: its raw text between the quotes and whether it holds escapes.
    /// Validates the escapes and refuses control bytes (the caller checks UTF-8 where it matters).
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            match self.next()? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    match self.next()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let h = self.s.get(self.i..self.i + 4)?;
                            hex4(h)?;
                            self.i += 4;
                        }
                        _ => return None,
                    }
                }
                b if b < 0x20 => return None,
                _ => {}
            }
        }
        let raw = self.s.get(start..self.i - 1)?;
        Some((raw, escaped))
    }

    /// Skips `word` (`true`, `false`, `null`).
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.s.get(self.i..end)? == word).then_some(())?;
        self.i = end;
        Some(())
    }

    /// Skips one or more ASCII digits.
    fn digits(&mut self) -> Option<()> {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.bump();
        }
        (self.i > start).then_some(())
    }

    /// Skips a number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.bump();
        }
        if self.peek() == Some(b'0') {
            self.bump();
        } else {
            self.digits()?;
        }
        if self.peek() == Some(b'.') {
            self.bump();
            self.digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.bump();
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.bump();
            }
            self.digits()?;
        }
        Some(())
    }

    /// Skips one value of any kind, nested containers included, without recursion: bit `d` of the
    /// `objects` bit stack is set when the container at depth `d` is an object.
    fn skip_value(&mut self) -> Option<()> {
        let mut objects = [0u64; MAX_DEPTH / 64];
        let mut depth: usize = 0;
        loop {
            // A value starts here.
            self.ws();
            match self.peek()? {
                open @ (b'{' | b'[') => {
                    if depth >= MAX_DEPTH {
                        return None;
                    }
                    self.bump();
                    self.ws();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.bump();
                    } else {
                        let word = objects.get_mut(depth / 64)?;
                        let bit = 1u64 << (depth % 64);
                        if open == b'{' {
                            *word |= bit;
                            self.member_key()?;
                        } else {
                            *word &= !bit;
                        }
                        depth += 1;
                        continue;
                    }
                }
                b'"' => {
                    self.string()?;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return None,
            }
            // A value ended: close containers until one continues with a comma.
            loop {
                let Some(d) = depth.checked_sub(1) else {
                    return Some(());
                };
                let in_object = objects
                    .get(d / 64)
                    .is_some_and(|w| w & (1u64 << (d % 64)) != 0);
                self.ws();
                match (self.next()?, in_object) {
                    (b',', true) => {
                        self.ws();
                        self.member_key()?;
                        break;
                    }
                    (b',', false) => break,
                    (b'}', true) | (b']', false) => depth = d,
                    _ => return None,
                }
            }
        }
    }

    /// `"key" :` of an object member (the cursor is at the key).
    fn member_key(&mut self) -> Option<()> {
        self.string()?;
        self.ws();
        self.eat(b':')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;

    /// What the engine used before: a serde probe of `{"cmd": <borrowed str>}`.
    fn serde_probe(line: &[u8]) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Probe<'a> {
            #[serde(borrow)]
            cmd: Option<&'a str>,
        }
        serde_json::from_slice::<Probe<'_>>(line)
            .ok()
            .and_then(|p| p.cmd.map(String::from))
    }

    #[test]
    fn names() {
        assert_eq!(peek_name(br#"{"cmd":"stop"}"#), Some("stop"));
        assert_eq!(
            peek_name(br#" { "payload" : {"a":[1,2,{"b":null}]} , "cmd" : "sample" } "#),
            Some("sample")
        );
        assert_eq!(peek_name(b"{\r\n\t\"cmd\":\"stop\"\r\n}\r\n"), Some("stop"));
        assert_eq!(
            peek_name(br#"{"x":-1.5e+3,"cmd":"info","y":true}"#),
            Some("info")
        );
        assert_eq!(peek_name(br#"{"cmd":""}"#), Some(""));
        assert_eq!(peek_name("{\"cmd\":\"stöp\"}".as_bytes()), Some("stöp"));
    }

    #[test]
    fn escapes() {
        // An escaped key still names `cmd`.
        assert_eq!(peek_name(br#"{"c\u006dd":"stop"}"#), Some("stop"));
        assert_eq!(peek_name(br#"{"\u0063\u006D\u0064":"stop"}"#), Some("stop"));
        assert_eq!(peek_name(br#"{"cm\n":"stop"}"#), None);
        assert_eq!(peek_name(br#"{"cmdx":"stop"}"#), None);
        assert_eq!(peek_name(br#"{"c\u00e9d":"stop"}"#), None);
        // An escaped name is not peeked.
        assert_eq!(peek_name(br#"{"cmd":"st\u006fp"}"#), None);
        assert_eq!(peek_name(br#"{"cmd":"st\"op"}"#), None);
        // Escapes elsewhere are fine.
        assert_eq!(
            peek_name(br#"{"note":"a\"}\\\/\b\f\n\r\t\u00e9","cmd":"stop"}"#),
            Some("stop")
        );
        assert_eq!(peek_name(br#"{"note":"\x","cmd":"stop"}"#), None);
        assert_eq!(peek_name(br#"{"note":"\u12G4","cmd":"stop"}"#), None);
        assert_eq!(peek_name(br#"{"note":"\u12"#), None);
    }

    #[test]
    fn garbage() {
        for line in [
            &b""[..],
            b"   ",
            b"?",
            b"stop",
            b"\"stop\"",
            b"{",
            b"{}",
            b"{\"cmd\"}",
            b"{\"cmd\":}",
            b"{\"cmd\":\"stop\"",
            b"{\"cmd\":\"stop\",}",
            b"{\"cmd\":\"stop\"}}",
            b"{\"cmd\":\"stop\"} x",
            b"{\"cmd\":\"stop\"}{}",
            b"{\"cmd\":stop}",
            b"{\"cmd\":null}",
            b"{\"cmd\":1}",
            b"{\"cmd\":[\"stop\"]}",
            b"{\"cmd\":\"stop\",\"cmd\":\"stop\"}",
            b"{\"cmd\":\"stop\",\"x\":01}",
            b"{\"cmd\":\"stop\",\"x\":1.}",
            b"{\"cmd\":\"stop\",\"x\":-}",
            b"{\"cmd\":\"stop\",\"x\":1e}",
            b"{\"cmd\":\"stop\",\"x\":tru}",
            b"{\"cmd\":\"stop\",\"x\":[1,]}",
            b"{\"cmd\":\"stop\",\"x\":[1}",
            b"{\"cmd\":\"stop\",\"x\":{\"a\"}}",
            b"{\"cmd\":\"stop\",\"x\":{1:2}}",
            b"{\"cmd\":\"st\nop\"}",
            b"{\"cmd\":\"st\xffop\"}",
            b"{\"x\xff\":1,\"cmd\":\"stop\"}",
            b"{\"x\":[[[[]]],\"cmd\":\"stop\"}",
            b"{\"x\":[{\"a\":1]},\"cmd\":\"stop\"}",
            b"[\"stop\"]",
            b"\x00\xff\xfe{",
        ] {
            assert_eq!(peek_name(line), None, "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn depth_is_bounded_and_costs_no_stack() {
        let nest = |n: usize| {
            let mut s = String::from(r#"{"cmd":"stop","x":"#);
            s.extend(core::iter::repeat_n('[', n));
            s.extend(core::iter::repeat_n(']', n));
            s.push('}');
            s
        };
        for n in [1, 2, 63, 64, 65, 127, 128, 129, 1023] {
            let line = nest(n);
            let serde = serde_probe(line.as_bytes());
            assert_eq!(peek_name(line.as_bytes()), serde.as_deref(), "depth {n}");
        }
        assert_eq!(peek_name(nest(MAX_DEPTH).as_bytes()), Some("stop"));
        assert_eq!(peek_name(nest(MAX_DEPTH + 1).as_bytes()), None);
        assert_eq!(peek_name(nest(100_000).as_bytes()), None);
        let objs = format!(
            r#"{{"cmd":"stop","x":{}1{}}}"#,
            r#"{"a":"#.repeat(MAX_DEPTH),
            "}".repeat(MAX_DEPTH)
        );
        assert_eq!(peek_name(objs.as_bytes()), Some("stop"));
    }

    #[test]
    fn agrees_with_the_serde_probe_on_stop() {
        let seeds: [&[u8]; 10] = [
            b"{\"note\":\"\xff\xfe\",\"cmd\":\"stop\"}",
            br#"{"note":"\ud800","cmd":"stop"}"#,
            br#"{"cmd":"stop"}"#,
            br#"{"cmd":"sample","payload":{"type":"TCP","measures":"v,i","rate":4000}}"#,
            br#"{"payload":{"x":[1,2.5,-3e2,true,false,null,"s\"\\"]},"cmd":"stop"}"#,
            br#" { "cmd" : "stop" , "token" : "abc" } "#,
            br#"{"cmd":"reqSamples","samples":100}"#,
            br#"{"c\u006dd":"stop"}"#,
            br#"{"cmd":"st\u006fp"}"#,
            br#"{"cmd":"stop","cmd":"stop"}"#,
        ];
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for seed in seeds {
            lines.push(seed.to_vec());
            // Every truncation and every one-byte replacement by a JSON-significant byte.
            for cut in 0..seed.len() {
                lines.push(seed[..cut].to_vec());
            }
            for at in 0..seed.len() {
                for b in *br#"{}[]":,\ 0-.eu"# {
                    let mut l = seed.to_vec();
                    l[at] = b;
                    lines.push(l);
                }
            }
        }
        for line in &lines {
            let serde = serde_probe(line);
            let peek = peek_name(line);
            // serde_json only rejects a lone surrogate when it decodes, the peek never decodes;
            // both agree on every line a JSON parser accepts.
            assert_eq!(
                peek == Some("stop"),
                serde.as_deref() == Some("stop"),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
