//! Sampling transcripts: the `sample` reply, frames with gaps, flow-control credit, the end of a
//! session (stop, `?`, a new session, the end of the connection).

use super::*;
use crate::wire::command::{Measures, SampleRequest, StreamType};
use crate::wire::reply::StopStats;

fn sample_line(measures: &str, n: usize, chunk: usize, flow: bool) -> String {
    format!(
        r#"{{"error":false,"cmd":"sample","measures":"{measures}","chunksize":{chunk},"samplingrate":100,"conn_type":"TCP","measurements":{n},"prefix":true,"flowCtr":{flow},"unit":"V,mA","startTs":"1614697441.119"}}"#
    )
}

fn blocks(events: &[ConnectionEvent]) -> Vec<&FrameSamples> {
    events
        .iter()
        .filter_map(|e| match e {
            ConnectionEvent::Samples(Ok(b)) => Some(b),
            _ => None,
        })
        .collect()
}

#[test]
fn sampling_counts_gaps_and_ends_with_stop() {
    let mut m = Meter::connected();
    let mut req = SampleRequest::new(StreamType::Tcp);
    req.measures = Measures::VoltCurrentL1;
    req.rate_hz = 100;
    let id = m.send(Command::Sample(req));
    let mut bytes = line(&sample_line("v,i_L1", 2, 16, false));
    bytes.extend(frame(0, &[1.0, 2.0, 3.0, 4.0]));
    bytes.extend_from_slice(b"Info:[I]03/02 10:42:24: 100.00Hz, 2s\r\n");
    bytes.extend(frame(1, &[5.0, 6.0, 7.0, 8.0]));
    bytes.extend(frame(4, &[9.0, 10.0])); // packets 2 and 3 lost
    for (seed, step) in [(5, 1), (9, 7)] {
        let mut m = Meter::connected();
        let id = m.send(Command::Sample(req));
        m.input_cut(&bytes, &cuts(bytes.len(), seed, step));
        let events = m.events();
        let started = Meter::answer(&events, id).as_ref().unwrap();
        let info = started.sampling.as_ref().unwrap();
        assert_eq!(info.channels, ["v_l1", "i_l1"]);
        assert_eq!((info.rate_hz, info.frames_per_packet()), (100, 2));
        assert_eq!(info.start_unix_us, Some(1_614_697_441_119_000));
        let b = blocks(&events);
        assert_eq!(b.len(), 3);
        assert_eq!(
            (b[0].packet, b[0].lost_packets, b[0].samples.as_slice()),
            (0, 0, &[1.0, 2.0, 3.0, 4.0][..])
        );
        assert_eq!((b[2].packet, b[2].lost_packets, b[2].gap_frames), (4, 2, 4));
        let mut filled = b[2].clone();
        filled.fill_gap();
        assert_eq!(
            filled.samples,
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 9.0, 10.0]
        );
    }
    m.input(&bytes);
    m.events();
    assert!(m.c.sampling().is_some());
    let stop = m.send(Command::Stop);
    let mut end = frame(5, &[11.0, 12.0]);
    end.extend(line(r#"{"error":false,"cmd":"stop","msg":"Received stop command","sample_duration":50,"samples":7,"sent_samples":5,"start_ts":"1614697441.119","stop_ts":"1614697441.169","ip":"127.0.0.1","avg_rate":100.0}"#));
    end.extend(frame(6, &[13.0, 14.0])); // after the stop reply: no session any more
    m.input(&end);
    let events = m.events();
    assert_eq!(
        blocks(&events).len(),
        1,
        "the flushed frame before the stop reply counts"
    );
    let pos_end = events
        .iter()
        .position(|e| matches!(e, ConnectionEvent::SamplingEnded { error: None }))
        .unwrap();
    let pos_stop = events
        .iter()
        .position(|e| matches!(e, ConnectionEvent::Answered { id, .. } if *id == stop))
        .unwrap();
    assert!(
        pos_end < pos_stop,
        "the stream ends before the stop answer is handed out"
    );
    assert!(matches!(
        Meter::answer(&events, stop)
            .as_ref()
            .unwrap()
            .reply()
            .unwrap()
            .reply(),
        Reply::Stopped(StopStats {
            samples: 7,
            sent_samples: 5,
            ..
        })
    ));
    assert!(m.c.sampling().is_none());
    let _ = id;
}

#[test]
fn a_new_session_restarts_the_numbering_and_question_mark_ends_it() {
    let mut m = Meter::connected();
    let req = SampleRequest::new(StreamType::Tcp);
    m.send(Command::Sample(req));
    let six = |p| frame(p, &[0.0; 6]);
    let mut bytes = line(&sample_line("v,i,v,i,v,i", 6, 24, false));
    bytes.extend(six(0));
    bytes.extend(six(1));
    m.input(&bytes);
    m.events();
    m.send(Command::Sample(req));
    // The second session's first frame follows its reply in the same read: numbering from 0.
    let mut bytes = line(&sample_line("v,i,v,i,v,i", 6, 24, false));
    bytes.extend(six(0));
    m.input(&bytes);
    let events = m.events();
    assert!(matches!(
        events[0],
        ConnectionEvent::SamplingEnded { error: None }
    ));
    assert_eq!(blocks(&events)[0].lost_packets, 0);
    let ping = m.send(Command::Availability);
    m.input(b"Info:Setup done\r\n");
    let events = m.events();
    assert!(matches!(
        events[0],
        ConnectionEvent::SamplingEnded { error: None }
    ));
    assert!(Meter::answer(&events, ping).is_ok());
    assert!(m.c.sampling().is_none());
}

#[test]
fn flow_control_grants_credit_when_the_consumer_wants_more() {
    let mut m = Meter::connected();
    let mut req = SampleRequest::new(StreamType::Tcp);
    req.measures = Measures::VoltCurrentL1;
    req.flow_control = true;
    m.send(Command::Sample(req));
    m.written();
    m.input(&line(&sample_line("v,i_L1", 2, 1024, true)));
    m.events();
    m.c.set_flow_credit(10);
    m.c.want_samples(m.now);
    m.c.want_samples(m.now);
    assert_eq!(
        m.written(),
        [r#"{"cmd":"reqSamples","samples":10}"#],
        "once per credit"
    );
    let mut bytes = frame(0, &[0.0; 20]);
    bytes.extend(line(r#"{"error":false,"cmd":"reqSamples"}"#));
    m.input(&bytes);
    assert_eq!(blocks(&m.events())[0].frames(), 10);
    m.c.want_samples(m.now);
    assert_eq!(m.written(), [r#"{"cmd":"reqSamples","samples":10}"#]);
    // The credit's reply keeps the order: the next request gets its own reply.
    let v = m.send(Command::GetVoltage);
    m.input(&line(r#"{"error":false,"cmd":"reqSamples"}"#));
    m.input(&line(
        r#"{"error":false,"cmd":"getVoltage","voltage":[1,2,3],"unit":"V"}"#,
    ));
    assert!(Meter::answer(&m.events(), v).is_ok());
}

#[test]
fn the_end_of_the_connection_ends_the_session_with_its_error() {
    let mut m = Meter::connected();
    m.send(Command::Sample(SampleRequest::new(StreamType::Tcp)));
    m.input(&line(&sample_line("v,i,v,i,v,i", 6, 24, false)));
    m.events();
    m.c.handle_closed(Some("connection reset".into()));
    let events = m.events();
    assert!(
        matches!(&events[0], ConnectionEvent::SamplingEnded { error: Some(ClientError::Closed { reason: Some(r) }) } if r == "connection reset")
    );
    assert!(matches!(
        events.last(),
        Some(ConnectionEvent::Closed { .. })
    ));
}

#[test]
fn a_frame_that_does_not_fit_the_session_is_an_error_item() {
    let mut m = Meter::connected();
    m.send(Command::Sample(SampleRequest::new(StreamType::Tcp)));
    let mut bytes = line(&sample_line("v,i,v,i,v,i", 6, 24, false));
    bytes.extend(frame(0, &[0.0; 4]));
    m.input(&bytes);
    let events = m.events();
    assert!(events.iter().any(|e| matches!(e, ConnectionEvent::Samples(Err(ClientError::Protocol(m))) if m.contains("6-channel"))));
}

/// The original firmware answers `v,i` with one phase (`"measurements":2`, the seed README's
/// example, docs/protocol.md §A): the channel count is the reply's, the channels are unnamed, and its
/// 8-byte frames are whole samples.
#[test]
fn the_original_firmwares_sample_reply_is_followed() {
    let mut m = Meter::connected();
    let mut req = SampleRequest::new(StreamType::Tcp);
    req.rate_hz = 1;
    let id = m.send(Command::Sample(req));
    let mut bytes = line(
        r#"{"error":false,"measures":"v,i","chunksize":8,"samplingrate":1,"conn_type":"TCP","measurements":2,"prefix":true,"flowCtr":false,"cmd":"sample","unit":"V,mA","startTs":"1614697441.119"}"#,
    );
    bytes.extend(frame(0, &[230.5, 512.25]));
    bytes.extend(frame(2, &[229.5, 511.0]));
    m.input(&bytes);
    let events = m.events();
    let info = Meter::answer(&events, id)
        .as_ref()
        .unwrap()
        .sampling
        .clone()
        .unwrap();
    assert_eq!((info.channel_count(), info.frames_per_packet()), (2, 1));
    assert_eq!(info.channels, ["ch1", "ch2"]);
    assert_eq!(info.units, ["", ""]);
    assert_eq!(info.measures, Measures::VoltCurrent3);
    let b = blocks(&events);
    assert_eq!(b.len(), 2, "{events:?}");
    assert_eq!(b[0].samples, [230.5, 512.25]);
    assert_eq!(
        (b[1].lost_packets, b[1].gap_frames, b[1].frames()),
        (1, 1, 1)
    );
}
