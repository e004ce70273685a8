//! MQTT payloads of docs/protocol.md §11/§12 (`state/pq`, `state/event`, `state/status`) and the
//! `powermeter/<name>/state/<leaf>` topics: golden payloads both ways, tolerant parsing, typed
//! rejections, proptest round trips, no panic on any input.

mod wire_support;

use proptest::prelude::*;
use smartmeter::wire::mqtt::{self, MqttError, StateLeaf, StateTopic, Status};
use smartmeter::wire::pq::{
    EventKind, HARMONICS, Harmonics, Nominal, PhaseSet, PqAggregate, PqError, PqEvent, PqInterval,
};
use wire_support::{aggregate, event, finite_f32, finite_f64, phases};

const GOLDEN: &str = include_str!("golden/pq.txt");

fn golden() -> Vec<(&'static str, &'static str)> {
    GOLDEN
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split_once(' ').expect("golden line is `name text`"))
        .collect()
}

fn golden_of(name: &str) -> &'static str {
    golden()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("no golden case {name}"))
}

enum Typed {
    Status(Box<Status>),
    Event(PqEvent),
    Aggregate(Box<PqAggregate>),
}

fn harmonics(fundamental: [Option<f32>; 3], h3: f32, h5: f32, h7: Option<f32>) -> Box<Harmonics> {
    let mut h = Box::new([[None; HARMONICS]; 3]);
    for (p, f) in fundamental.into_iter().enumerate() {
        let Some(f) = f else { continue };
        h[p] = [Some(0.0); HARMONICS];
        h[p][0] = Some(f);
        h[p][2] = Some(h3);
        h[p][4] = Some(h5);
        if let Some(h7) = h7 {
            h[p][6] = Some(h7);
        }
    }
    h
}

fn typed(name: &str) -> Typed {
    let nominal = Nominal {
        voltage_v: 230.0,
        frequency_hz: 50.0,
    };
    match name {
        "status" => Typed::Status(Box::new(Status {
            ts_s: Some(1_700_000_000.5),
            voltage_v: [Some(230.5), Some(229.75), Some(231.0)],
            current_a: [Some(5.0), Some(3.25), Some(1.0)],
            active_power_w: [Some(1152.5), Some(646.75), Some(-216.5)],
            reactive_power_var: [Some(0.0), Some(373.5), Some(-78.75)],
            apparent_power_va: [Some(1152.5), Some(747.5), Some(231.0)],
            power_factor: [Some(1.0), Some(0.865), Some(-0.9375)],
            frequency_hz: Some(49.998),
            energy_import_kwh: [Some(10149.5684), Some(5101.23238), Some(0.0)],
            energy_export_kwh: [Some(0.0), Some(0.0), Some(4.5)],
        })),
        "status_undefined" => Typed::Status(Box::default()),
        "event_dip" => Typed::Event(PqEvent {
            id: 7,
            kind: EventKind::Dip,
            phases: PhaseSet::from_phases(&[1, 3]).unwrap(),
            start_s: 1_700_000_000.25,
            duration_s: 0.1,
            extreme_v: 138.25,
            reference_v: 230.0,
        }),
        "event_swell" => Typed::Event(PqEvent {
            id: 8,
            kind: EventKind::Swell,
            phases: PhaseSet::from_phases(&[2]).unwrap(),
            start_s: 1_700_000_100.0,
            duration_s: 1.5,
            extreme_v: 260.5,
            reference_v: 230.0,
        }),
        "event_interruption" => Typed::Event(PqEvent {
            id: 9,
            kind: EventKind::Interruption,
            phases: PhaseSet::ALL,
            start_s: 1_700_000_200.01,
            duration_s: 185.25,
            extreme_v: 0.0,
            reference_v: 230.0,
        }),
        "event_rvc" => Typed::Event(PqEvent {
            id: u32::MAX,
            kind: EventKind::Rvc {
                delta_max_v: 15.5,
                delta_steady_v: -4.25,
            },
            phases: PhaseSet::from_phases(&[1]).unwrap(),
            start_s: 1_700_000_300.5,
            duration_s: 0.5,
            extreme_v: 245.5,
            reference_v: 230.0,
        }),
        "pq_3s" => {
            let mut a = PqAggregate::undefined(
                PqInterval::ThreeSeconds,
                1_700_000_000.0,
                1_700_000_003.0,
                nominal,
            );
            a.voltage_v = [Some(230.0), Some(229.5), Some(231.0)];
            a.voltage_min_v = [Some(229.75), Some(229.25), Some(230.5)];
            a.voltage_max_v = [Some(230.25), Some(229.75), Some(231.5)];
            a.frequency_hz = Some(49.998);
            a.u0_pct = Some(0.125);
            a.u2_pct = Some(0.5);
            a.thd_v_pct = [Some(1.25), Some(1.5), Some(1.75)];
            a.thd_i_pct = [Some(16.5), Some(25.0), None];
            a.harmonics_v = harmonics(a.voltage_v, 2.5, 1.25, Some(0.5));
            a.harmonics_i = harmonics([Some(5.0), Some(3.0), None], 0.75, 0.25, None);
            Typed::Aggregate(Box::new(a))
        }
        "pq_10min_undefined" => {
            let mut a = PqAggregate::undefined(
                PqInterval::TenMinutes,
                1_700_000_400.0,
                1_700_001_000.0,
                Nominal {
                    voltage_v: 120.0,
                    frequency_hz: 60.0,
                },
            );
            a.flagged = true;
            a.pst = Some([Some(0.25), Some(1.5), None]);
            Typed::Aggregate(Box::new(a))
        }
        other => panic!("unknown golden case {other}"),
    }
}

#[test]
fn golden_payloads_both_ways() {
    let cases = golden();
    assert_eq!(cases.len(), 8);
    for (name, text) in cases {
        match typed(name) {
            Typed::Status(s) => {
                assert_eq!(s.to_json(), text, "{name}: encode");
                assert_eq!(Status::parse(text.as_bytes()), Ok(*s), "{name}: parse");
            }
            Typed::Event(e) => {
                assert_eq!(e.to_json(), text, "{name}: encode");
                assert_eq!(PqEvent::parse(text.as_bytes()), Ok(e), "{name}: parse");
            }
            Typed::Aggregate(a) => {
                assert_eq!(a.to_json(), text, "{name}: encode");
                assert_eq!(
                    PqAggregate::parse(text.as_bytes()).as_ref(),
                    Ok(&*a),
                    "{name}: parse"
                );
            }
        }
    }
}

/// The top-level keys of a JSON object text, in the order written (no escapes in protocol keys).
fn top_level_keys(text: &str) -> Vec<&str> {
    let (mut keys, mut depth, mut in_str, mut start) = (Vec::new(), 0, false, 0);
    for (i, c) in text.char_indices() {
        match c {
            '"' if in_str => {
                in_str = false;
                if depth == 1 && text[i + 1..].starts_with(':') {
                    keys.push(&text[start..i]);
                }
            }
            '"' => {
                in_str = true;
                start = i + 1;
            }
            '{' | '[' if !in_str => depth += 1,
            '}' | ']' if !in_str => depth -= 1,
            _ => {}
        }
    }
    keys
}

#[test]
fn keys_in_protocol_order() {
    let aggregate = [
        "interval",
        "start",
        "end",
        "flagged",
        "nominal",
        "voltage",
        "voltageMin",
        "voltageMax",
        "frequency",
        "u0",
        "u2",
        "thdV",
        "thdI",
        "harmonicsV",
        "harmonicsI",
        "pst",
        "plt",
    ];
    assert_eq!(top_level_keys(golden_of("pq_3s")), aggregate);
    assert_eq!(top_level_keys(golden_of("pq_10min_undefined")), aggregate);
    let event = [
        "id",
        "type",
        "phases",
        "start",
        "duration",
        "extreme",
        "reference",
    ];
    assert_eq!(top_level_keys(golden_of("event_dip")), event);
    let mut rvc = event.to_vec();
    rvc.extend(["deltaMax", "deltaSteady"]);
    assert_eq!(top_level_keys(golden_of("event_rvc")), rvc);
    assert_eq!(
        top_level_keys(golden_of("status")),
        [
            "ts",
            "voltage",
            "current",
            "activePower",
            "reactivePower",
            "apparentPower",
            "powerFactor",
            "frequency",
            "energyImport",
            "energyExport"
        ]
    );
}

#[test]
fn tolerant_status() {
    // Keys in any order, integers, numbers as strings, unknown keys, absent keys undefined.
    let s = Status::parse(
        br#" {"frequency":"50","voltage":[230,"229.5",null],"ts":1700000000,"fw":"x","powerFactor":[1,1,1]} "#,
    )
    .unwrap();
    assert_eq!(s.ts_s, Some(1_700_000_000.0));
    assert_eq!(s.voltage_v, [Some(230.0), Some(229.5), None]);
    assert_eq!(s.frequency_hz, Some(50.0));
    assert_eq!(s.power_factor, [Some(1.0); 3]);
    assert_eq!(s.current_a, [None; 3]);
    assert_eq!(s.energy_import_kwh, [None; 3]);
    // Beyond f32: undefined, as the encoder writes it.
    let s = Status::parse(br#"{"voltage":[1e300,1,2]}"#).unwrap();
    assert_eq!(s.voltage_v, [None, Some(1.0), Some(2.0)]);
    // NaN/inf never appear in the output.
    let s = Status {
        voltage_v: [Some(f32::NAN), Some(f32::INFINITY), Some(1.0)],
        ts_s: Some(f64::NAN),
        ..Status::default()
    };
    let j = s.to_json();
    assert!(
        j.starts_with(r#"{"ts":null,"voltage":[null,null,1.0]"#),
        "{j}"
    );
}

#[test]
fn status_rejections() {
    for (text, err) in [
        (&b"not json"[..], MqttError::Json),
        (b"[1,2,3]", MqttError::Json),
        (b"", MqttError::Json),
        (br#"{"ts":1,"ts":2}"#, MqttError::Json),
        (
            br#"{"voltage":[1,2]}"#,
            MqttError::Invalid {
                field: "voltage",
                reason: "expected 3 numbers or nulls",
            },
        ),
        (
            br#"{"current":"5"}"#,
            MqttError::Invalid {
                field: "current",
                reason: "expected 3 numbers or nulls",
            },
        ),
        (
            br#"{"ts":"yesterday"}"#,
            MqttError::Invalid {
                field: "ts",
                reason: "expected a number or null",
            },
        ),
        (
            br#"{"energyExport":[1,true,3]}"#,
            MqttError::Invalid {
                field: "energyExport",
                reason: "expected 3 numbers or nulls",
            },
        ),
    ] {
        assert_eq!(
            Status::parse(text),
            Err(err),
            "{}",
            String::from_utf8_lossy(text)
        );
    }
    assert_eq!(MqttError::Missing { field: "ts" }.to_string(), "Missing ts");
}

#[test]
fn tolerant_aggregate() {
    // A getPQ reply (with error/cmd), keys reordered, harmonics short and partly null.
    let a = PqAggregate::parse(
        br#"{"error":false,"cmd":"getPQ","plt":[1,2,3],"harmonicsV":[[230,0,2.5],null,[]],
            "nominal":{"frequency":"50","voltage":230},"end":"1700000600","start":1700000000,
            "interval":"2h","flagged":"true","extra":{"deep":[[[]]]}}"#,
    )
    .unwrap();
    assert_eq!(a.interval, PqInterval::TwoHours);
    assert_eq!((a.start_s, a.end_s), (1_700_000_000.0, 1_700_000_600.0));
    assert!(a.flagged);
    assert_eq!(
        a.nominal,
        Nominal {
            voltage_v: 230.0,
            frequency_hz: 50.0
        }
    );
    assert_eq!(
        a.harmonics_v[0][..4],
        [Some(230.0), Some(0.0), Some(2.5), None]
    );
    assert_eq!(a.harmonics_v[1], [None; HARMONICS]);
    assert_eq!(a.harmonics_i[2], [None; HARMONICS]);
    assert_eq!(a.plt, Some([Some(1.0), Some(2.0), Some(3.0)]));
    assert_eq!(a.pst, None);
    assert_eq!(a.voltage_v, [None; 3]);
    assert_eq!(a.frequency_hz, None);
}

#[test]
fn aggregate_rejections() {
    let base = |patch: &str| {
        format!(
            r#"{{"interval":"3s","start":1,"end":4,"flagged":false,"nominal":{{"voltage":230,"frequency":50}}{patch}}}"#
        )
    };
    assert!(PqAggregate::parse(base("").as_bytes()).is_ok());
    let too_many = format!(
        r#","harmonicsI":[[{}],[],[]]"#,
        vec!["1"; HARMONICS + 1].join(",")
    );
    for (text, err) in [
        ("[]".to_string(), PqError::Json),
        (
            r#"{"start":1,"end":2,"flagged":false,"nominal":{"voltage":230,"frequency":50}}"#
                .into(),
            PqError::Missing { field: "interval" },
        ),
        (
            r#"{"interval":"1h","start":1,"end":2,"flagged":false,"nominal":{"voltage":230,"frequency":50}}"#.into(),
            PqError::Invalid {
                field: "interval",
                reason: "expected 200ms, 3s, 10min or 2h",
            },
        ),
        (
            r#"{"interval":"3s","start":1,"end":2,"flagged":false}"#.into(),
            PqError::Missing { field: "nominal" },
        ),
        (
            r#"{"interval":"3s","start":1,"end":2,"flagged":false,"nominal":230}"#.into(),
            PqError::Invalid {
                field: "nominal",
                reason: "expected an object with voltage and frequency",
            },
        ),
        (
            r#"{"interval":"3s","start":1,"end":2,"flagged":false,"nominal":{"voltage":230}}"#
                .into(),
            PqError::Missing {
                field: "nominal.frequency",
            },
        ),
        (
            r#"{"interval":"3s","start":1,"end":2,"flagged":"maybe","nominal":{"voltage":230,"frequency":50}}"#.into(),
            PqError::Invalid {
                field: "flagged",
                reason: "expected true or false",
            },
        ),
        (
            base(r#","thdV":[1,2,3,4]"#),
            PqError::Invalid {
                field: "thdV",
                reason: "expected 3 numbers or nulls",
            },
        ),
        (
            base(&too_many),
            PqError::Invalid {
                field: "harmonicsI",
                reason: "expected 3 arrays of at most 50 numbers or nulls",
            },
        ),
        (
            base(r#","harmonicsV":[[1],[2]]"#),
            PqError::Invalid {
                field: "harmonicsV",
                reason: "expected 3 arrays of at most 50 numbers or nulls",
            },
        ),
        (
            base(r#","u2":"x""#),
            PqError::Invalid {
                field: "u2",
                reason: "expected a number or null",
            },
        ),
    ] {
        assert_eq!(PqAggregate::parse(text.as_bytes()), Err(err), "{text}");
    }
}

#[test]
fn event_tolerance_and_rejections() {
    let e = PqEvent::parse(
        br#"{"reference":"230","extreme":138,"duration":1,"start":"1700000000.5","phases":[3,1,3],"type":" dip ","id":7.0,"next":8}"#,
    )
    .unwrap();
    assert_eq!(e.id, 7);
    assert_eq!(e.phases.iter().collect::<Vec<_>>(), [1, 3]);
    assert_eq!(e.kind, EventKind::Dip);
    let ok =
        r#""id":1,"type":"dip","phases":[1],"start":1,"duration":1,"extreme":1,"reference":230"#;
    assert!(PqEvent::parse(format!("{{{ok}}}").as_bytes()).is_ok());
    for (text, err) in [
        ("null".to_string(), PqError::Json),
        (
            ok.replace(r#""id":1"#, r#""id":-1"#),
            PqError::Invalid {
                field: "id",
                reason: "expected an integer 0..=4294967295",
            },
        ),
        (
            ok.replace(r#""id":1,"#, ""),
            PqError::Missing { field: "id" },
        ),
        (
            ok.replace("dip", "sag"),
            PqError::Invalid {
                field: "type",
                reason: "expected dip, swell, interruption or rvc",
            },
        ),
        (
            ok.replace("dip", "rvc"),
            PqError::Missing { field: "deltaMax" },
        ),
        (
            ok.replace("[1]", "[]"),
            PqError::Invalid {
                field: "phases",
                reason: "expected a non-empty array of phases 1..3",
            },
        ),
        (
            ok.replace("[1]", "[0,1]"),
            PqError::Invalid {
                field: "phases",
                reason: "expected a non-empty array of phases 1..3",
            },
        ),
        (
            ok.replace(r#""extreme":1"#, r#""extreme":1e40"#),
            PqError::Invalid {
                field: "extreme",
                reason: "expected a number within the range of f32",
            },
        ),
        (
            ok.replace(r#""start":1"#, r#""start":null"#),
            PqError::Missing { field: "start" },
        ),
    ] {
        let text = if text.starts_with('"') {
            format!("{{{text}}}")
        } else {
            text
        };
        assert_eq!(PqEvent::parse(text.as_bytes()), Err(err), "{text}");
    }
}

#[test]
fn state_topics_and_filters() {
    assert_eq!(mqtt::STATE_FILTER, "powermeter/+/state/#");
    assert_eq!(
        mqtt::shared_state_filter("g1").unwrap(),
        "$share/g1/powermeter/+/state/#"
    );
    for bad in ["", "a/b", "a+", "#", "a\nb"] {
        assert_eq!(
            mqtt::shared_state_filter(bad),
            Err(MqttError::Group(bad.to_string()))
        );
    }
    assert_eq!(
        mqtt::parse_state_topic(&mqtt::status_topic("kitchen")),
        Some(StateTopic {
            meter: "kitchen",
            leaf: StateLeaf::Status
        })
    );
    assert_eq!(
        mqtt::parse_state_topic(&mqtt::pq_topic("k")).map(|t| t.leaf),
        Some(StateLeaf::Pq)
    );
    assert_eq!(
        mqtt::parse_state_topic(&mqtt::event_topic("k")).map(|t| t.leaf),
        Some(StateLeaf::Event)
    );
}

// ---- proptest ------------------------------------------------------------------------------------

fn phases64() -> impl Strategy<Value = [Option<f64>; 3]> {
    proptest::array::uniform3(proptest::option::of(finite_f64()))
}

fn status() -> impl Strategy<Value = Status> {
    (
        proptest::option::of(finite_f64()),
        (phases(), phases(), phases(), phases(), phases(), phases()),
        proptest::option::of(finite_f32()),
        phases64(),
        phases64(),
    )
        .prop_map(|(ts_s, (v, i, p, q, s, pf), f, ei, ee)| Status {
            ts_s,
            voltage_v: v,
            current_a: i,
            active_power_w: p,
            reactive_power_var: q,
            apparent_power_va: s,
            power_factor: pf,
            frequency_hz: f,
            energy_import_kwh: ei,
            energy_export_kwh: ee,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn status_round_trips(s in status()) {
        let json = s.to_json();
        prop_assert_eq!(Status::parse(json.as_bytes()), Ok(s));
        // The encoding is canonical: encoding the parsed value gives the same bytes.
        prop_assert_eq!(Status::parse(json.as_bytes()).unwrap().to_json(), json);
    }

    #[test]
    fn aggregate_round_trips(a in aggregate()) {
        let json = a.to_json();
        let back = PqAggregate::parse(json.as_bytes());
        prop_assert_eq!(back.as_ref(), Ok(&a));
        prop_assert_eq!(back.unwrap().to_json(), json);
    }

    #[test]
    fn event_round_trips(e in event()) {
        let json = e.to_json();
        prop_assert_eq!(PqEvent::parse(json.as_bytes()), Ok(e));
    }

    #[test]
    fn state_topic_round_trips(name in "[A-Za-z0-9_-]{1,24}", leaf in "[a-z]{1,8}") {
        let t = format!("powermeter/{name}/state/{leaf}");
        let parsed = mqtt::parse_state_topic(&t).unwrap();
        prop_assert_eq!(parsed.meter, name.as_str());
        prop_assert_eq!(parsed.leaf.as_str(), leaf.as_str());
        prop_assert_eq!(mqtt::state_topic(parsed.meter, parsed.leaf), t);
    }

    #[test]
    fn no_panic_on_any_input(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Status::parse(&bytes);
        let _ = PqAggregate::parse(&bytes);
        let _ = PqEvent::parse(&bytes);
        let _ = mqtt::parse_state_topic(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn no_panic_on_json_like_input(text in r#"\{("[a-zA-Z]{1,12}":(null|true|-?[0-9]{1,3}(\.[0-9])?|"[a-z0-9]{0,4}"|\[[0-9,\[\]null]{0,20}\]|\{\}),?){0,8}\}"#) {
        let _ = Status::parse(text.as_bytes());
        let _ = PqAggregate::parse(text.as_bytes());
        let _ = PqEvent::parse(text.as_bytes());
    }
}
