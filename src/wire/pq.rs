//! Power-quality objects of docs/protocol.md §11 as typed values: the aggregate ([`PqAggregate`], the
//! `getPQ` reply and the `powermeter/<name>/state/pq` payload) and the event ([`PqEvent`], an item of
//! `getEvents` and the `powermeter/<name>/state/event` payload).
//!
//! Encoding (`to_json`) is canonical and byte-exact: keys in the documented order, floats in
//! serde_json's shortest round-trip form (`230.0`, `0.1`), an undefined value as `null`, never NaN.
//! The device encodes with exactly these functions, so a collector can rely on the shape.
//!
//! Parsing (`parse`) is tolerant, for host tools reading whatever a meter sends: keys in any order,
//! `1` or `1.0`, numbers as strings, unknown keys ignored (the `error`/`cmd` keys of a `getPQ` reply
//! included), a missing optional measurement read as undefined. It never panics, and allocates at most
//! in proportion to the input.
//!
//! ```
//! use smartmeter::wire::pq::{EventKind, PhaseSet, PqEvent};
//!
//! let e = PqEvent {
//!     id: 7,
//!     kind: EventKind::Dip,
//!     phases: PhaseSet::from_phases(&[1, 3]).unwrap(),
//!     start_s: 1_700_000_000.25,
//!     duration_s: 0.1,
//!     extreme_v: 138.25,
//!     reference_v: 230.0,
//! };
//! let json = e.to_json();
//! assert_eq!(json, r#"{"id":7,"type":"dip","phases":[1,3],"start":1700000000.25,"duration":0.1,"extreme":138.25,"reference":230.0}"#);
//! assert_eq!(PqEvent::parse(json.as_bytes()), Ok(e));
//! ```

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt::Write as _;

use crate::wire::command::json::{Obj, push_f32};
use crate::wire::command::raw::Loose;

/// The interval selector lives beside the `getPQ` command that sends it (so `wire::command` needs
/// nothing from here); this is its home for PQ objects.
pub use crate::wire::command::PqInterval;

/// A 3-phase measurement `[L1, L2, L3]`, the same type as
/// [`reply::Phases`](crate::wire::reply::Phases) (spelled out so this module imports nothing from
/// `reply`, which imports it).
type Phases = [Option<f32>; 3];

/// Harmonic orders per phase in `harmonicsV` / `harmonicsI`: H1..H50, index 0 = H1.
pub const HARMONICS: usize = 50;

/// Per-phase harmonic subgroup magnitudes, `[phase][h - 1]`; `None` is undefined (`null`).
pub type Harmonics = [[Option<f32>; HARMONICS]; 3];

object_error! {
    /// Why a PQ object was rejected.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum PqError {}
}

/// The nominal values in force (`nominal` key): declared voltage Udin and nominal frequency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nominal {
    /// Udin, V.
    pub voltage_v: f32,
    /// Nominal frequency, Hz.
    pub frequency_hz: f32,
}

/// One power-quality aggregate: the `getPQ` object without `error`/`cmd`, as published on
/// `powermeter/<name>/state/pq`.
#[derive(Debug, Clone, PartialEq)]
pub struct PqAggregate {
    /// Which aggregation.
    pub interval: PqInterval,
    /// Start, Unix seconds.
    pub start_s: f64,
    /// End, Unix seconds.
    pub end_s: f64,
    /// A dip, swell or interruption was in progress during the interval.
    pub flagged: bool,
    /// The nominal values in force.
    pub nominal: Nominal,
    /// RMS voltage per phase (L-N), V.
    pub voltage_v: Phases,
    /// Lowest basic RMS voltage per phase, V.
    pub voltage_min_v: Phases,
    /// Highest basic RMS voltage per phase, V.
    pub voltage_max_v: Phases,
    /// The last IEC 10-s frequency, Hz (`None` before the first).
    pub frequency_hz: Option<f32>,
    /// Zero-sequence unbalance u0, %.
    pub u0_pct: Option<f32>,
    /// Negative-sequence unbalance u2, %.
    pub u2_pct: Option<f32>,
    /// Voltage THD per phase, %.
    pub thd_v_pct: Phases,
    /// Current THD per phase, %.
    pub thd_i_pct: Phases,
    /// Voltage harmonic subgroups H1..H50 per phase, V.
    pub harmonics_v: Box<Harmonics>,
    /// Current harmonic subgroups H1..H50 per phase, A.
    pub harmonics_i: Box<Harmonics>,
    /// Short-term flicker per phase (10-min aggregates only; `None` = `null` otherwise).
    pub pst: Option<Phases>,
    /// Long-term flicker per phase (2-h aggregates only; `None` = `null` otherwise).
    pub plt: Option<Phases>,
}

impl PqAggregate {
    /// An aggregate with every measurement undefined: a starting point for builders and tests.
    pub fn undefined(interval: PqInterval, start_s: f64, end_s: f64, nominal: Nominal) -> Self {
        PqAggregate {
            interval,
            start_s,
            end_s,
            flagged: false,
            nominal,
            voltage_v: [None; 3],
            voltage_min_v: [None; 3],
            voltage_max_v: [None; 3],
            frequency_hz: None,
            u0_pct: None,
            u2_pct: None,
            thd_v_pct: [None; 3],
            thd_i_pct: [None; 3],
            harmonics_v: Box::new([[None; HARMONICS]; 3]),
            harmonics_i: Box::new([[None; HARMONICS]; 3]),
            pst: None,
            plt: None,
        }
    }

    /// The canonical JSON object (keys `interval,start,end,flagged,nominal,voltage,voltageMin,
    /// voltageMax,frequency,u0,u2,thdV,thdI,harmonicsV,harmonicsI,pst,plt`).
    pub fn to_json(&self) -> String {
        let mut o = Obj::new();
        o.str("interval", self.interval.as_str())
            .f64("start", self.start_s)
            .f64("end", self.end_s)
            .bool("flagged", self.flagged);
        {
            let out = o.key("nominal");
            out.push_str("{\"voltage\":");
            push_f32(out, self.nominal.voltage_v);
            out.push_str(",\"frequency\":");
            push_f32(out, self.nominal.frequency_hz);
            out.push('}');
        }
        o.opt_f32s("voltage", &self.voltage_v)
            .opt_f32s("voltageMin", &self.voltage_min_v)
            .opt_f32s("voltageMax", &self.voltage_max_v);
        push_opt_f32(o.key("frequency"), self.frequency_hz);
        push_opt_f32(o.key("u0"), self.u0_pct);
        push_opt_f32(o.key("u2"), self.u2_pct);
        o.opt_f32s("thdV", &self.thd_v_pct)
            .opt_f32s("thdI", &self.thd_i_pct);
        push_harmonics(o.key("harmonicsV"), &self.harmonics_v);
        push_harmonics(o.key("harmonicsI"), &self.harmonics_i);
        match &self.pst {
            Some(p) => o.opt_f32s("pst", p),
            None => o.raw("pst", "null"),
        };
        match &self.plt {
            Some(p) => o.opt_f32s("plt", p),
            None => o.raw("plt", "null"),
        };
        o.finish()
    }

    /// Reads an aggregate (a `getPQ` reply or a `state/pq` payload). `interval`, `start`, `end`,
    /// `flagged` and `nominal` are required; every measurement may be absent or `null` (undefined).
    /// A number beyond the range of f32 is undefined, as the encoder writes it.
    pub fn parse(json: &[u8]) -> Result<PqAggregate, PqError> {
        let raw: RawAggregate<'_> =
            serde_json::from_slice(json.trim_ascii()).map_err(|_| PqError::Json)?;
        let interval = read::string(&raw.interval, "interval")?;
        let interval = PqInterval::parse(&interval).ok_or(PqError::Invalid {
            field: "interval",
            reason: "expected 200ms, 3s, 10min or 2h",
        })?;
        let nominal = match &raw.nominal {
            Some(RawNominal::Object(n)) => Nominal {
                voltage_v: read::f32_req(&n.voltage, "nominal.voltage")?,
                frequency_hz: read::f32_req(&n.frequency, "nominal.frequency")?,
            },
            Some(RawNominal::Other(Loose::Null)) | None => {
                return Err(PqError::Missing { field: "nominal" });
            }
            Some(RawNominal::Other(_)) => {
                return Err(PqError::Invalid {
                    field: "nominal",
                    reason: "expected an object with voltage and frequency",
                });
            }
        };
        Ok(PqAggregate {
            interval,
            start_s: read::f64_req(&raw.start, "start")?,
            end_s: read::f64_req(&raw.end, "end")?,
            flagged: read::bool_req(&raw.flagged, "flagged")?,
            nominal,
            voltage_v: read::phases(&raw.voltage, "voltage")?,
            voltage_min_v: read::phases(&raw.voltage_min, "voltageMin")?,
            voltage_max_v: read::phases(&raw.voltage_max, "voltageMax")?,
            frequency_hz: read::f32_opt(&raw.frequency, "frequency")?,
            u0_pct: read::f32_opt(&raw.u0, "u0")?,
            u2_pct: read::f32_opt(&raw.u2, "u2")?,
            thd_v_pct: read::phases(&raw.thd_v, "thdV")?,
            thd_i_pct: read::phases(&raw.thd_i, "thdI")?,
            harmonics_v: harmonics(&raw.harmonics_v, "harmonicsV")?,
            harmonics_i: harmonics(&raw.harmonics_i, "harmonicsI")?,
            pst: read::opt_phases(&raw.pst, "pst")?,
            plt: read::opt_phases(&raw.plt, "plt")?,
        })
    }
}

fn push_opt_f32(out: &mut String, v: Option<f32>) {
    match v {
        Some(v) => push_f32(out, v),
        None => out.push_str("null"),
    }
}

fn push_harmonics(out: &mut String, h: &Harmonics) {
    out.push('[');
    for (p, phase) in h.iter().enumerate() {
        if p > 0 {
            out.push(',');
        }
        out.push('[');
        for (i, v) in phase.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_opt_f32(out, *v);
        }
        out.push(']');
    }
    out.push(']');
}

/// `[[50],[50],[50]]`; the whole key or one phase `null`/absent is undefined; a phase with fewer than
/// 50 values has the rest undefined; more than 50 is refused.
fn harmonics(v: &Option<Loose<'_>>, field: &'static str) -> Result<Box<Harmonics>, PqError> {
    let bad = PqError::Invalid {
        field,
        reason: "expected 3 arrays of at most 50 numbers or nulls",
    };
    let mut out = Box::new([[None; HARMONICS]; 3]);
    let l = match v {
        None | Some(Loose::Null) => return Ok(out),
        Some(v) => v.as_list().ok_or_else(|| bad.clone())?,
    };
    if l.len() != 3 {
        return Err(bad);
    }
    for (slot, phase) in out.iter_mut().zip(l) {
        let items = match phase {
            Loose::Null => continue,
            p => p.as_list().ok_or_else(|| bad.clone())?,
        };
        if items.len() > HARMONICS {
            return Err(bad);
        }
        for (s, x) in slot.iter_mut().zip(items) {
            *s = read::num_or_null(x).ok_or_else(|| bad.clone())?;
        }
    }
    Ok(out)
}

/// The kind of a power-quality event (`type` key); an RVC carries its two deltas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EventKind {
    /// `dip`: any phase below 90 % of Udin.
    Dip,
    /// `swell`: any phase above 110 % of Udin.
    Swell,
    /// `interruption`: all phases below 5 % of Udin.
    Interruption,
    /// `rvc`: a rapid voltage change.
    Rvc {
        /// Largest departure from the steady mean during the change, V (`deltaMax`).
        delta_max_v: f32,
        /// Difference between the steady states before and after, V (`deltaSteady`).
        delta_steady_v: f32,
    },
}

impl EventKind {
    /// The wire name: `dip`, `swell`, `interruption`, `rvc`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::Dip => "dip",
            EventKind::Swell => "swell",
            EventKind::Interruption => "interruption",
            EventKind::Rvc { .. } => "rvc",
        }
    }
}

/// A non-empty set of phases (1..=3), written as an ascending array (`[1,3]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PhaseSet(u8);

impl PhaseSet {
    /// All three phases.
    pub const ALL: PhaseSet = PhaseSet(0b111);

    /// The set of `phases` (each 1..=3, duplicates allowed); `None` if empty or out of range.
    pub fn from_phases(phases: &[u8]) -> Option<PhaseSet> {
        let mut bits = 0u8;
        for p in phases {
            if !(1..=3).contains(p) {
                return None;
            }
            bits |= 1 << (p - 1);
        }
        (bits != 0).then_some(PhaseSet(bits))
    }

    /// The set from its bit mask (bit 0 = L1); `None` if empty or above `0b111`.
    pub fn from_bits(bits: u8) -> Option<PhaseSet> {
        (bits != 0 && bits <= 0b111).then_some(PhaseSet(bits))
    }

    /// The bit mask (bit 0 = L1).
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether phase `p` (1..=3) is in the set.
    pub fn contains(self, p: u8) -> bool {
        (1..=3).contains(&p) && self.0 & (1 << (p - 1)) != 0
    }

    /// The phases, ascending.
    pub fn iter(self) -> impl Iterator<Item = u8> {
        (1..=3u8).filter(move |p| self.contains(*p))
    }
}

/// One ended power-quality event, as listed by `getEvents` and published on
/// `powermeter/<name>/state/event` (QoS 1).
#[derive(Debug, Clone, PartialEq)]
pub struct PqEvent {
    /// Increasing id (the device keeps the last 64).
    pub id: u32,
    /// Dip, swell, interruption or RVC (with its deltas).
    pub kind: EventKind,
    /// The phases involved.
    pub phases: PhaseSet,
    /// The first half-cycle across the threshold, Unix seconds.
    pub start_s: f64,
    /// Start to end, s.
    pub duration_s: f64,
    /// Lowest (dip, interruption) or highest (swell) Urms(½) over the involved phases, V.
    pub extreme_v: f32,
    /// Udin, V.
    pub reference_v: f32,
}

impl PqEvent {
    /// The canonical JSON object (keys `id,type,phases,start,duration,extreme,reference`, then an
    /// RVC's `deltaMax,deltaSteady`).
    pub fn to_json(&self) -> String {
        let mut o = Obj::new();
        o.int("id", self.id).str("type", self.kind.as_str());
        {
            let out = o.key("phases");
            out.push('[');
            for (i, p) in self.phases.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{p}");
            }
            out.push(']');
        }
        o.f64("start", self.start_s)
            .f64("duration", self.duration_s)
            .f32("extreme", self.extreme_v)
            .f32("reference", self.reference_v);
        if let EventKind::Rvc {
            delta_max_v,
            delta_steady_v,
        } = self.kind
        {
            o.f32("deltaMax", delta_max_v)
                .f32("deltaSteady", delta_steady_v);
        }
        o.finish()
    }

    /// Reads an event object. Every key is required (an RVC's `deltaMax`/`deltaSteady` too).
    pub fn parse(json: &[u8]) -> Result<PqEvent, PqError> {
        let raw: RawEvent<'_> =
            serde_json::from_slice(json.trim_ascii()).map_err(|_| PqError::Json)?;
        PqEvent::from_raw(&raw)
    }

    /// The typed event of its loose form (an item of a `getEvents` reply, read by `wire::reply`).
    pub(crate) fn from_raw(raw: &RawEvent<'_>) -> Result<PqEvent, PqError> {
        let id = read::req(&raw.id, "id")?
            .as_i64()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or(PqError::Invalid {
                field: "id",
                reason: "expected an integer 0..=4294967295",
            })?;
        let kind = match read::string(&raw.kind, "type")?.trim() {
            "dip" => EventKind::Dip,
            "swell" => EventKind::Swell,
            "interruption" => EventKind::Interruption,
            "rvc" => EventKind::Rvc {
                delta_max_v: read::f32_req(&raw.delta_max, "deltaMax")?,
                delta_steady_v: read::f32_req(&raw.delta_steady, "deltaSteady")?,
            },
            _ => {
                return Err(PqError::Invalid {
                    field: "type",
                    reason: "expected dip, swell, interruption or rvc",
                });
            }
        };
        let bad_phases = PqError::Invalid {
            field: "phases",
            reason: "expected a non-empty array of phases 1..3",
        };
        let mut bits = 0u8;
        let list = read::req(&raw.phases, "phases")?
            .as_list()
            .ok_or_else(|| bad_phases.clone())?;
        for p in list {
            match p.as_i64() {
                Some(p @ 1..=3) => bits |= 1 << (p - 1),
                _ => return Err(bad_phases),
            }
        }
        let phases = PhaseSet::from_bits(bits).ok_or(bad_phases)?;
        Ok(PqEvent {
            id,
            kind,
            phases,
            start_s: read::f64_req(&raw.start, "start")?,
            duration_s: read::f64_req(&raw.duration, "duration")?,
            extreme_v: read::f32_req(&raw.extreme, "extreme")?,
            reference_v: read::f32_req(&raw.reference, "reference")?,
        })
    }
}

/// The loose form of an aggregate: every key optional and untyped. A key given twice is an error.
#[derive(Debug, Default, serde::Deserialize)]
struct RawAggregate<'a> {
    #[serde(borrow)]
    interval: Option<Loose<'a>>,
    #[serde(borrow)]
    start: Option<Loose<'a>>,
    #[serde(borrow)]
    end: Option<Loose<'a>>,
    #[serde(borrow)]
    flagged: Option<Loose<'a>>,
    #[serde(borrow)]
    nominal: Option<RawNominal<'a>>,
    #[serde(borrow)]
    voltage: Option<Loose<'a>>,
    #[serde(borrow, rename = "voltageMin")]
    voltage_min: Option<Loose<'a>>,
    #[serde(borrow, rename = "voltageMax")]
    voltage_max: Option<Loose<'a>>,
    #[serde(borrow)]
    frequency: Option<Loose<'a>>,
    #[serde(borrow)]
    u0: Option<Loose<'a>>,
    #[serde(borrow)]
    u2: Option<Loose<'a>>,
    #[serde(borrow, rename = "thdV")]
    thd_v: Option<Loose<'a>>,
    #[serde(borrow, rename = "thdI")]
    thd_i: Option<Loose<'a>>,
    #[serde(borrow, rename = "harmonicsV")]
    harmonics_v: Option<Loose<'a>>,
    #[serde(borrow, rename = "harmonicsI")]
    harmonics_i: Option<Loose<'a>>,
    #[serde(borrow)]
    pst: Option<Loose<'a>>,
    #[serde(borrow)]
    plt: Option<Loose<'a>>,
}

/// `nominal`: the object, or any other value (refused by the typed conversion with its key).
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum RawNominal<'a> {
    Object(#[serde(borrow)] RawNominalObject<'a>),
    Other(#[serde(borrow)] Loose<'a>),
}

#[derive(Debug, Default, serde::Deserialize)]
struct RawNominalObject<'a> {
    #[serde(borrow)]
    voltage: Option<Loose<'a>>,
    #[serde(borrow)]
    frequency: Option<Loose<'a>>,
}

/// The loose form of an event.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RawEvent<'a> {
    #[serde(borrow)]
    id: Option<Loose<'a>>,
    #[serde(borrow, rename = "type")]
    kind: Option<Loose<'a>>,
    #[serde(borrow)]
    phases: Option<Loose<'a>>,
    #[serde(borrow)]
    start: Option<Loose<'a>>,
    #[serde(borrow)]
    duration: Option<Loose<'a>>,
    #[serde(borrow)]
    extreme: Option<Loose<'a>>,
    #[serde(borrow)]
    reference: Option<Loose<'a>>,
    #[serde(borrow, rename = "deltaMax")]
    delta_max: Option<Loose<'a>>,
    #[serde(borrow, rename = "deltaSteady")]
    delta_steady: Option<Loose<'a>>,
}

/// Typed reads of loose values, shared with [`crate::wire::mqtt`]'s status payload. Each answers
/// [`PqError`]; the MQTT module maps it onto its own error.
pub(crate) mod read {
    use super::{Loose, Phases, PqError};
    use alloc::string::{String, ToString};

    pub(crate) fn req<'r, 'a>(
        v: &'r Option<Loose<'a>>,
        field: &'static str,
    ) -> Result<&'r Loose<'a>, PqError> {
        match v {
            None | Some(Loose::Null) => Err(PqError::Missing { field }),
            Some(v) => Ok(v),
        }
    }

    pub(crate) fn string(v: &Option<Loose<'_>>, field: &'static str) -> Result<String, PqError> {
        req(v, field)?
            .as_str()
            .map(ToString::to_string)
            .ok_or(PqError::Invalid {
                field,
                reason: "expected a string",
            })
    }

    pub(crate) fn bool_req(v: &Option<Loose<'_>>, field: &'static str) -> Result<bool, PqError> {
        req(v, field)?.as_bool().ok_or(PqError::Invalid {
            field,
            reason: "expected true or false",
        })
    }

    pub(crate) fn f64_req(v: &Option<Loose<'_>>, field: &'static str) -> Result<f64, PqError> {
        req(v, field)?.as_f64().ok_or(PqError::Invalid {
            field,
            reason: "expected a number",
        })
    }

    pub(crate) fn f64_opt(
        v: &Option<Loose<'_>>,
        field: &'static str,
    ) -> Result<Option<f64>, PqError> {
        match v {
            None | Some(Loose::Null) => Ok(None),
            Some(x) => x.as_f64().map(Some).ok_or(PqError::Invalid {
                field,
                reason: "expected a number or null",
            }),
        }
    }

    pub(crate) fn f32_req(v: &Option<Loose<'_>>, field: &'static str) -> Result<f32, PqError> {
        let x = f64_req(v, field)?;
        narrow(x).ok_or(PqError::Invalid {
            field,
            reason: "expected a number within the range of f32",
        })
    }

    pub(crate) fn f32_opt(
        v: &Option<Loose<'_>>,
        field: &'static str,
    ) -> Result<Option<f32>, PqError> {
        match v {
            None | Some(Loose::Null) => Ok(None),
            Some(x) => num_or_null(x).ok_or(PqError::Invalid {
                field,
                reason: "expected a number or null",
            }),
        }
    }

    /// `null` → `Some(None)`; a number → `Some(Some(f32))` (undefined beyond f32); else `None`.
    pub(crate) fn num_or_null(x: &Loose<'_>) -> Option<Option<f32>> {
        match x {
            Loose::Null => Some(None),
            x => x.as_f64().map(narrow),
        }
    }

    /// An f32 when `x` is one after narrowing (finite), else undefined.
    pub(crate) fn narrow(x: f64) -> Option<f32> {
        let f = x as f32;
        f.is_finite().then_some(f)
    }

    /// `[a,b,c]` of numbers or nulls; the key absent or `null` is all undefined.
    pub(crate) fn phases(v: &Option<Loose<'_>>, field: &'static str) -> Result<Phases, PqError> {
        Ok(opt_phases(v, field)?.unwrap_or([None; 3]))
    }

    /// Like [`phases`], keeping an absent/`null` key apart (`None`) from `[null,null,null]`.
    pub(crate) fn opt_phases(
        v: &Option<Loose<'_>>,
        field: &'static str,
    ) -> Result<Option<Phases>, PqError> {
        let bad = PqError::Invalid {
            field,
            reason: "expected 3 numbers or nulls",
        };
        let l = match v {
            None | Some(Loose::Null) => return Ok(None),
            Some(v) => v.as_list().ok_or_else(|| bad.clone())?,
        };
        if l.len() != 3 {
            return Err(bad);
        }
        let mut out = [None; 3];
        for (slot, x) in out.iter_mut().zip(l) {
            *slot = num_or_null(x).ok_or_else(|| bad.clone())?;
        }
        Ok(Some(out))
    }

    /// `[a,b,c]` of numbers or nulls as f64 (energies), absent/`null` all undefined.
    pub(crate) fn phases_f64(
        v: &Option<Loose<'_>>,
        field: &'static str,
    ) -> Result<[Option<f64>; 3], PqError> {
        let bad = PqError::Invalid {
            field,
            reason: "expected 3 numbers or nulls",
        };
        let l = match v {
            None | Some(Loose::Null) => return Ok([None; 3]),
            Some(v) => v.as_list().ok_or_else(|| bad.clone())?,
        };
        if l.len() != 3 {
            return Err(bad);
        }
        let mut out = [None; 3];
        for (slot, x) in out.iter_mut().zip(l) {
            *slot = match x {
                Loose::Null => None,
                x => Some(x.as_f64().ok_or_else(|| bad.clone())?),
            };
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_names() {
        for i in PqInterval::ALL {
            assert_eq!(PqInterval::parse(i.as_str()), Some(i));
        }
        assert_eq!(PqInterval::parse(" 10min "), Some(PqInterval::TenMinutes));
        assert_eq!(PqInterval::parse("1h"), None);
    }

    #[test]
    fn phase_sets() {
        assert_eq!(
            PhaseSet::from_phases(&[3, 1, 3]).map(PhaseSet::bits),
            Some(0b101)
        );
        assert_eq!(PhaseSet::from_phases(&[]), None);
        assert_eq!(PhaseSet::from_phases(&[4]), None);
        assert_eq!(PhaseSet::from_bits(8), None);
        assert_eq!(
            PhaseSet::ALL.iter().collect::<alloc::vec::Vec<_>>(),
            [1, 2, 3]
        );
    }
}
