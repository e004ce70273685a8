//! Proptest strategies for the wire tests (`wire_pq`, `wire_reply`): finite numbers, per-phase
//! values and the power-quality objects of docs/protocol.md §11 with every field drawn.
#![allow(dead_code)]

use proptest::prelude::*;
use smartmeter::wire::pq::{
    EventKind, HARMONICS, Harmonics, Nominal, PhaseSet, PqAggregate, PqEvent, PqInterval,
};

pub fn finite_f32() -> impl Strategy<Value = f32> {
    any::<f32>().prop_filter("finite", |f| f.is_finite())
}

pub fn finite_f64() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |f| f.is_finite())
}

pub fn phases() -> impl Strategy<Value = [Option<f32>; 3]> {
    proptest::array::uniform3(proptest::option::of(finite_f32()))
}

pub fn harmonic_table() -> impl Strategy<Value = Box<Harmonics>> {
    proptest::collection::vec(proptest::option::of(finite_f32()), 3 * HARMONICS).prop_map(|v| {
        let mut h = Box::new([[None; HARMONICS]; 3]);
        for (slot, x) in h.iter_mut().flatten().zip(v) {
            *slot = x;
        }
        h
    })
}

pub fn aggregate() -> impl Strategy<Value = PqAggregate> {
    (
        (
            proptest::sample::select(PqInterval::ALL.to_vec()),
            finite_f64(),
            finite_f64(),
            any::<bool>(),
            finite_f32(),
            finite_f32(),
        ),
        (phases(), phases(), phases()),
        (
            proptest::option::of(finite_f32()),
            proptest::option::of(finite_f32()),
            proptest::option::of(finite_f32()),
        ),
        (phases(), phases(), harmonic_table(), harmonic_table()),
        (
            proptest::option::of(phases()),
            proptest::option::of(phases()),
        ),
    )
        .prop_map(
            |(
                (interval, start, end, flagged, u, f),
                (v, vmin, vmax),
                (freq, u0, u2),
                (tv, ti, hv, hi),
                (pst, plt),
            )| {
                PqAggregate {
                    interval,
                    start_s: start,
                    end_s: end,
                    flagged,
                    nominal: Nominal {
                        voltage_v: u,
                        frequency_hz: f,
                    },
                    voltage_v: v,
                    voltage_min_v: vmin,
                    voltage_max_v: vmax,
                    frequency_hz: freq,
                    u0_pct: u0,
                    u2_pct: u2,
                    thd_v_pct: tv,
                    thd_i_pct: ti,
                    harmonics_v: hv,
                    harmonics_i: hi,
                    pst,
                    plt,
                }
            },
        )
}

pub fn event() -> impl Strategy<Value = PqEvent> {
    let kind = prop_oneof![
        Just(EventKind::Dip),
        Just(EventKind::Swell),
        Just(EventKind::Interruption),
        (finite_f32(), finite_f32()).prop_map(|(a, b)| EventKind::Rvc {
            delta_max_v: a,
            delta_steady_v: b
        }),
    ];
    (
        any::<u32>(),
        kind,
        1u8..=7,
        finite_f64(),
        finite_f64(),
        finite_f32(),
        finite_f32(),
    )
        .prop_map(|(id, kind, bits, start, dur, ext, reference)| PqEvent {
            id,
            kind,
            phases: PhaseSet::from_bits(bits).unwrap(),
            start_s: start,
            duration_s: dur,
            extreme_v: ext,
            reference_v: reference,
        })
}
