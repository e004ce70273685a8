//! A reply as the meter sent it: the exact JSON text (for `--json`) plus a parsed view.

use std::string::{String, ToString};
use std::vec::Vec;

use serde_json::{Map, Value};

use super::ClientError;

/// One JSON reply object. Keeps the exact text the meter sent, so tools can print it unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    text: String,
    object: Map<String, Value>,
}

impl Response {
    /// Parses the bytes after `Info:`; anything but a JSON object is a protocol error.
    pub fn parse(json: &[u8]) -> Result<Response, ClientError> {
        let text = core::str::from_utf8(json)
            .map_err(|_| ClientError::Protocol("reply is not UTF-8".into()))?
            .trim()
            .to_string();
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(object)) => Ok(Response { text, object }),
            Ok(_) => Err(ClientError::Protocol(std::format!(
                "reply is not a JSON object: {text}"
            ))),
            Err(e) => Err(ClientError::Protocol(std::format!(
                "reply is not JSON ({e}): {text}"
            ))),
        }
    }

    /// An empty object (the "reply" of `!`).
    pub fn empty() -> Response {
        Response::from_object(Map::new())
    }

    /// A response built locally (e.g. `{"msg":"Setup done"}` for `?`).
    pub fn from_object(object: Map<String, Value>) -> Response {
        let text = serde_json::to_string(&object).unwrap_or_default();
        Response { text, object }
    }

    /// Exactly the JSON object the meter sent (without `Info:` and line end).
    pub fn json(&self) -> &str {
        &self.text
    }

    /// The parsed object.
    pub fn object(&self) -> &Map<String, Value> {
        &self.object
    }

    /// The object's keys and values in the order the meter sent them (for human output).
    pub fn entries(&self) -> Vec<(String, Value)> {
        use serde::Deserialize;
        struct Ordered(Vec<(String, Value)>);
        impl<'de> Deserialize<'de> for Ordered {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Ordered;
                    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                        f.write_str("a JSON object")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut m: A,
                    ) -> Result<Ordered, A::Error> {
                        let mut out = Vec::new();
                        while let Some((k, v)) = m.next_entry::<String, Value>()? {
                            out.push((k, v));
                        }
                        Ok(Ordered(out))
                    }
                }
                d.deserialize_map(V)
            }
        }
        serde_json::from_str::<Ordered>(&self.text)
            .map(|o| o.0)
            .unwrap_or_else(|_| {
                self.object
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
    }

    /// A key of the object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.object.get(key)
    }

    /// The `cmd` key (old devices omit it in some replies).
    pub fn cmd(&self) -> Option<&str> {
        self.get("cmd").and_then(Value::as_str)
    }

    /// `"error":true` (also the string `"true"`, as old firmware sometimes wrote).
    pub fn is_error(&self) -> bool {
        match self.get("error") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        }
    }

    /// The `msg` text.
    pub fn msg(&self) -> Option<&str> {
        self.get("msg").and_then(Value::as_str)
    }

    /// A string key.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// A number key (`null` and non-numbers are `None`; numeric strings are accepted).
    pub fn f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(number)
    }

    /// A per-phase key: `[L1,L2,L3]`, `null` entries stay `None`; a scalar (single-phase firmware) is L1.
    pub fn phases(&self, key: &str) -> Option<[Option<f64>; 3]> {
        match self.get(key)? {
            Value::Array(a) => {
                let mut out = [None; 3];
                for (slot, v) in out.iter_mut().zip(a) {
                    *slot = number(v);
                }
                Some(out)
            }
            v => number(v).map(|x| [Some(x), None, None]),
        }
    }

    /// A numeric array key of any length (`calibration`).
    pub fn numbers(&self, key: &str) -> Option<Vec<Option<f64>>> {
        match self.get(key)? {
            Value::Array(a) => Some(a.iter().map(number).collect()),
            v => number(v).map(|x| std::vec![Some(x)]),
        }
    }

    /// Turns an error reply into the matching [`ClientError`] (`Busy` for `"state":"busy"`).
    pub fn check(self, sent_cmd: &str) -> Result<Response, ClientError> {
        if !self.is_error() {
            return Ok(self);
        }
        let cmd = self.cmd().unwrap_or(sent_cmd).to_string();
        if self.str("state") == Some("busy") {
            return Err(ClientError::Busy { cmd });
        }
        Err(ClientError::Refused {
            cmd,
            msg: self.msg().unwrap_or("(no message)").to_string(),
        })
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_examples() {
        let r = Response::parse(br#"{"error":false,"cmd":"getEnergy","energy":[10149.5684,5101.23238,4509.21022],"unit":"Wh","startTs":1632219770,"start":"09/20/2021 12:22:50.068","days":1}"#).unwrap();
        assert_eq!(r.cmd(), Some("getEnergy"));
        assert!(!r.is_error());
        assert_eq!(r.phases("energy").unwrap()[1], Some(5101.23238));
        assert_eq!(r.f64("startTs"), Some(1632219770.0));
        let r = Response::parse(
            br#"{"error":true,"cmd":"getPower","msg":"Device currently sampling","state":"busy"}"#,
        )
        .unwrap();
        assert!(matches!(r.check("getPower"), Err(ClientError::Busy { cmd }) if cmd == "getPower"));
        let r = Response::parse(br#"{"error":true,"msg":"JSON format error"}"#).unwrap();
        let e = r.check("x").unwrap_err();
        assert_eq!(e.to_string(), "the meter refused `x`: JSON format error");
        let r = Response::parse(br#"{"voltage":[230.1,null,229.9],"unit":"V"}"#).unwrap();
        assert_eq!(
            r.phases("voltage").unwrap(),
            [Some(230.1), None, Some(229.9)]
        );
        let keys: Vec<String> = r.entries().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["voltage", "unit"]);
        assert!(Response::parse(b"[1]").is_err());
        assert!(Response::parse(b"{").is_err());
        assert!(Response::parse(b"\xff").is_err());
    }
}
