//! TEMPORARY stand-ins for wire APIs being written on other branches (removed at merge).
#![allow(missing_docs, dead_code)]

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
