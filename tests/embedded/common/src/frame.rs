//! `Data:` frames: golden bytes, the chunk-size rule, and the demultiplexer fed one byte at a time.

use alloc::vec;
use alloc::vec::Vec;

use smartmeter::wire::frame::{
    Demux, Event, Frame, Framing, HEADER_LEN, Transport, chunk_size, encode_frame,
};

use crate::{Platform, Runner};

#[derive(Debug, PartialEq)]
enum Ev {
    Reply(Vec<u8>),
    Log(Vec<u8>),
    Text(Vec<u8>),
    Frame(u32, u32, Vec<u8>),
    Error,
}

fn frame(packet: u32, values: &[f32], framing: Framing) -> Vec<u8> {
    let mut buf = vec![0u8; framing.encoded_len(values.len())];
    let n = encode_frame(&mut buf, packet, values, framing).unwrap_or(0);
    buf.truncate(n);
    buf
}

fn le(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn run<P: Platform>(r: &mut Runner<'_, P>) {
    r.group("wire::frame");
    let values = [230.0f32, 1000.0, 231.5, -250.0, 0.0, 1.0];
    let bytes = frame(0, &values, Framing::PREFIXED);
    #[rustfmt::skip]
    let golden: &[u8] = &[
        b'D', b'a', b't', b'a', b':',
        0x18, 0x00,
        0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x66, 0x43,
        0x00, 0x00, 0x7a, 0x44,
        0x00, 0x80, 0x67, 0x43,
        0x00, 0x00, 0x7a, 0xc3,
        0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x80, 0x3f,
    ];
    r.eq("golden_six_channel_frame", bytes.as_slice(), golden);
    r.eq(
        "packet_number_little_endian",
        frame(0x0102_0304, &[], Framing::PREFIXED).as_slice(),
        &b"Data:\x00\x00\x04\x03\x02\x01"[..],
    );
    match Frame::new_checked(golden) {
        Ok(view) => {
            r.eq("view_payload_len", view.payload_len(), 24);
            r.eq("view_total_len", view.total_len(), golden.len());
            r.eq("view_payload", view.payload(), &golden[HEADER_LEN..]);
            r.eq(
                "view_samples",
                view.samples().collect::<Vec<_>>(),
                values.to_vec(),
            );
        }
        Err(e) => r.check("view", false, format_args!("{e:?}")),
    }
    let odd = b"Data:\x03\x00\x00\x00\x00\x00abc";
    r.check(
        "view_rejects_odd_length",
        Frame::new_checked(&odd[..]).is_err(),
        format_args!("accepted"),
    );
    r.eq("chunk_size_seed", chunk_size(1, 8, Transport::Tcp), 8);
    r.eq(
        "chunk_size_tcp_8k",
        chunk_size(8000, 24, Transport::Tcp),
        1008,
    );
    r.eq(
        "chunk_size_udp_8k",
        chunk_size(8000, 24, Transport::Udp),
        504,
    );
    r.eq(
        "chunk_size_serial_8k",
        chunk_size(8000, 24, Transport::Serial),
        120,
    );

    r.group("wire::frame::demux");
    let mut stream = Vec::new();
    let mut want = Vec::new();
    let line = |s: &mut Vec<u8>, text: &str| {
        s.extend_from_slice(b"Info:");
        s.extend_from_slice(text.as_bytes());
        s.extend_from_slice(b"\r\n");
    };
    line(
        &mut stream,
        r#"{"cmd":"info","type":"smartmeter","state":"idle"}"#,
    );
    want.push(Ev::Reply(
        br#"{"cmd":"info","type":"smartmeter","state":"idle"}"#.to_vec(),
    ));
    line(&mut stream, "[I]03/02 15:04:01: ");
    want.push(Ev::Log(b"[I]03/02 15:04:01: ".to_vec()));
    line(&mut stream, "Setup done");
    want.push(Ev::Text(b"Setup done".to_vec()));
    for packet in 0..3u32 {
        // Payload bytes that look like text (`Info:`, `\r\n`) must not split a frame.
        let values = [
            packet as f32,
            1.5,
            f32::from_le_bytes(*b"Info"),
            f32::from_le_bytes(*b":\r\n\0"),
            5.0,
            6.0,
        ];
        stream.extend_from_slice(&frame(packet, &values, Framing::PREFIXED));
        want.push(Ev::Frame(packet, 0, le(&values)));
    }
    // Packet 5 after 2: a gap of two lost frames.
    stream.extend_from_slice(&frame(5, &[7.0, 8.0], Framing::PREFIXED));
    want.push(Ev::Frame(5, 2, le(&[7.0, 8.0])));
    // A bad length, then resynchronisation on the next line.
    stream.extend_from_slice(b"Data:\x03\x00\x06\x00\x00\x00xyz");
    want.push(Ev::Error);
    line(&mut stream, r#"{"error":false,"cmd":"stop"}"#);
    want.push(Ev::Reply(br#"{"error":false,"cmd":"stop"}"#.to_vec()));

    for (name, step) in [
        ("whole", stream.len()),
        ("byte_by_byte", 1),
        ("7_byte_cuts", 7),
    ] {
        let mut demux = Demux::new();
        let mut got = Vec::new();
        for chunk in stream.chunks(step) {
            demux.push(chunk, |e| {
                got.push(match e {
                    Ok(Event::Reply(b)) => Ev::Reply(b.to_vec()),
                    Ok(Event::Log(b)) => Ev::Log(b.to_vec()),
                    Ok(Event::Text(b)) => Ev::Text(b.to_vec()),
                    Ok(Event::Frame(f)) => Ev::Frame(f.packet, f.gap, f.payload.to_vec()),
                    Err(_) => Ev::Error,
                })
            });
        }
        // Errors may be reported once per resync; compare the non-error events and require one error.
        let errors = got.iter().filter(|e| **e == Ev::Error).count();
        got.retain(|e| *e != Ev::Error);
        let want_ok: Vec<&Ev> = want.iter().filter(|e| **e != Ev::Error).collect();
        let got_ref: Vec<&Ev> = got.iter().collect();
        let ok = got_ref == want_ok && errors >= 1;
        r.check(
            name,
            ok,
            format_args!("{} events, {errors} errors: {got:?}", got.len()),
        );
    }
}
