//! TEMPORARY stand-ins for wire APIs being written on other branches (removed at merge).
#![allow(missing_docs, dead_code)]
use core::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum LogLevel {
    All,
    Debug,
    #[default]
    Info,
    Warning,
    Error,
}
impl LogLevel {
    pub const ALL: [LogLevel; 5] = [
        LogLevel::All,
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warning,
        LogLevel::Error,
    ];
    pub const fn as_str(self) -> &'static str {
        match self {
            LogLevel::All => "all",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
        }
    }
    pub const fn letter(self) -> char {
        match self {
            LogLevel::All => 'A',
            LogLevel::Debug => 'D',
            LogLevel::Info => 'I',
            LogLevel::Warning => 'W',
            LogLevel::Error => 'E',
        }
    }
    pub fn from_name(name: &str) -> Option<LogLevel> {
        LogLevel::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(name))
    }
}
pub fn write_escaped_text(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    for c in text.chars() {
        match c {
            '\n' => out.write_str("//n")?,
            '\r' => {}
            c => out.write_char(c)?,
        }
    }
    Ok(())
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    pub prefix: bool,
    pub line_end: bool,
}
impl Framing {
    pub const PREFIXED: Framing = Framing {
        prefix: true,
        line_end: false,
    };
    pub const RAW: Framing = Framing {
        prefix: false,
        line_end: false,
    };
    pub const SERIAL: Framing = Framing {
        prefix: true,
        line_end: true,
    };
    pub const SERIAL_RAW: Framing = Framing {
        prefix: false,
        line_end: true,
    };
}
pub const MAX_FRAME_LEN: usize = 11 + 48_000 + 2;
pub fn encode_frame(
    buf: &mut [u8],
    packet: u32,
    samples: &[f32],
    framing: Framing,
) -> Result<usize, ()> {
    let mut v = alloc::vec::Vec::new();
    if framing.prefix {
        v.extend_from_slice(b"Data:");
        v.extend_from_slice(&((samples.len() * 4) as u16).to_le_bytes());
        v.extend_from_slice(&packet.to_le_bytes());
    }
    for s in samples {
        v.extend_from_slice(&s.to_le_bytes());
    }
    if framing.line_end {
        v.extend_from_slice(b"\r\n");
    }
    let dst = buf.get_mut(..v.len()).ok_or(())?;
    dst.copy_from_slice(&v);
    Ok(v.len())
}
