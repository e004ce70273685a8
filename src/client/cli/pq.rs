//! `pq HOST` and `events HOST`: the meter's power quality (docs/protocol.md §11). `pq` shows the
//! last complete aggregate of an interval (`getPQ`) as tables; `events` lists the recorded events
//! (every page of `getEvents`) and, with `--follow`, each new one as it ends.
//!
//! `--follow` asks the meter again whenever it sends a warning log line (every ended event writes
//! one, `[W]… Dip L1 to 138.2 V (60.1 %) for 100 ms`) and every [`FOLLOW_POLL`] besides, so an
//! event is printed within a round trip of its end and none is missed if a line is (a lagging
//! reader, a meter that logs no events). The meter's `next` carries the position across pages and
//! polls, so every event is printed once.

use std::process::ExitCode;
use std::string::{String, ToString};
use std::time::Duration;
use std::vec::Vec;
use std::{format, vec};

use super::args::MeterArgs;
use super::error::CliError;
use super::output::{Out, decimal, num, table};
use super::signal::Signals;
use crate::client::{Client, ClientError, Notice};
use crate::wire::command::Command as WireCommand;
use crate::wire::log::{DateTime, LogLevel};
use crate::wire::pq::{EventKind, HARMONICS, PqAggregate, PqEvent, PqInterval};
use crate::wire::reply::Reply;

/// Harmonic subgroups listed per phase by `pq`: the largest of H2..H50.
const LARGEST: usize = 5;

/// How often `events --follow` asks the meter when no warning line came.
pub(crate) const FOLLOW_POLL: Duration = Duration::from_secs(5);

/// Most `getEvents` pages read in one go. A meter keeps 64 events (4 pages of 16); the bound only
/// ends the paging of a meter whose `next` keeps growing without end.
const MAX_PAGES: usize = 1 << 12;

const PHASES: [&str; 3] = ["L1", "L2", "L3"];

/// `2026-03-02 10:42:24.117` (UTC, to the millisecond); `-` for a time that is no number.
pub(crate) fn utc(unix_s: f64) -> String {
    if !unix_s.is_finite() {
        return "-".to_string();
    }
    // `as` saturates: a time beyond the i64 milliseconds prints as the extreme date.
    let t = DateTime::from_unix_millis((unix_s * 1e3).round() as i64);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.millis
    )
}

/// A reading for the tables: the value the meter wrote (shortest decimal of the `f32`), rounded.
fn val(x: Option<f32>, decimals: usize) -> String {
    num(x.filter(|v| v.is_finite()).map(decimal), decimals)
}

/// The `LARGEST` biggest subgroups of H2..H50 with H1, if H1 is a positive reading:
/// `(H1, [(order, magnitude)])`, largest first (ties: the lower order first).
fn largest(h: &[Option<f32>; HARMONICS]) -> Option<(f32, Vec<(usize, f32)>)> {
    let h1 = h
        .first()
        .copied()
        .flatten()
        .filter(|x| x.is_finite() && *x > 0.0)?;
    let mut rest: Vec<(usize, f32)> = h
        .iter()
        .enumerate()
        .skip(1)
        .filter_map(|(k, x)| x.filter(|x| x.is_finite()).map(|x| (k + 1, x)))
        .collect();
    rest.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    rest.truncate(LARGEST);
    Some((h1, rest))
}

/// One table of the largest harmonic subgroups per phase, in % of H1, those that round to at
/// least 0.01 % (nothing if no phase has H1).
fn harmonics_table(title: &str, unit: &str, h: &[[Option<f32>; HARMONICS]; 3]) -> String {
    let h1_head = format!("H1 ({unit})");
    let rows: Vec<Vec<String>> = h
        .iter()
        .zip(PHASES)
        .filter_map(|(row, name)| {
            let (h1, rest) = largest(row)?;
            let mut cells = vec![name.to_string(), val(Some(h1), 3)];
            // Only what shows at two decimals: a clean phase lists no noise floor.
            cells.extend(rest.iter().filter_map(|(k, x)| {
                let pct = decimal(*x) / decimal(h1) * 100.0;
                (pct >= 0.005).then(|| format!("H{k} {}", num(Some(pct), 2)))
            }));
            Some(cells)
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let listed = rows
        .iter()
        .map(|r| r.len().saturating_sub(2))
        .max()
        .unwrap_or(0);
    let mut header = vec!["phase", h1_head.as_str()];
    header.extend(["1st", "2nd", "3rd", "4th", "5th"].iter().take(listed));
    let mut s = format!("\n{title} (% of H1)\n{}", table(&header, &rows));
    if listed == 0 {
        s.push_str("(no subgroup of H2..H50 reaches 0.01 % of H1)\n");
    }
    s
}

/// `pq`'s human output: the interval, the nominal values, a per-phase table (voltage with its
/// min/max, THD, Pst/Plt where the interval has them), frequency and unbalance, and the largest
/// harmonic subgroups of the voltages (and of the currents, where there are any).
pub(crate) fn pq_text(a: &PqAggregate) -> String {
    let mut s = String::new();
    let (start, end) = (utc(a.start_s), utc(a.end_s));
    // The end's date only when it differs from the start's.
    let end = match (start.split_once(' '), end.split_once(' ')) {
        (Some((d0, _)), Some((d1, t1))) if d0 == d1 => t1.to_string(),
        _ => end,
    };
    s.push_str(&format!(
        "{} interval {start} to {end} UTC ({} s){}\n",
        a.interval.as_str(),
        num(Some(a.end_s - a.start_s), 3),
        if a.flagged {
            ", flagged: a dip, swell or interruption was in progress"
        } else {
            ""
        }
    ));
    s.push_str(&format!(
        "nominal {} V, {} Hz\n\n",
        a.nominal.voltage_v, a.nominal.frequency_hz
    ));
    let mut header = vec![
        "phase",
        "V (V)",
        "Vmin (V)",
        "Vmax (V)",
        "THD V (%)",
        "THD I (%)",
    ];
    if a.pst.is_some() {
        header.push("Pst");
    }
    if a.plt.is_some() {
        header.push("Plt");
    }
    let rows: Vec<Vec<String>> = PHASES
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let at = |x: &[Option<f32>; 3]| x.get(k).copied().flatten();
            let mut row = vec![
                name.to_string(),
                val(at(&a.voltage_v), 2),
                val(at(&a.voltage_min_v), 2),
                val(at(&a.voltage_max_v), 2),
                val(at(&a.thd_v_pct), 2),
                val(at(&a.thd_i_pct), 2),
            ];
            for flicker in [&a.pst, &a.plt].into_iter().flatten() {
                row.push(val(at(flicker), 3));
            }
            row
        })
        .collect();
    s.push_str(&table(&header, &rows));
    s.push('\n');
    let frequency = match a.frequency_hz {
        Some(f) => format!("{} Hz", val(Some(f), 3)),
        None => "- (no 10-s value yet)".to_string(),
    };
    s.push_str(&format!("frequency (10 s)  {frequency}\n"));
    s.push_str(&format!(
        "unbalance         u0 {} %, u2 {} %\n",
        val(a.u0_pct, 3),
        val(a.u2_pct, 3)
    ));
    s.push_str(&harmonics_table(
        "largest voltage harmonic subgroups",
        "V",
        &a.harmonics_v,
    ));
    s.push_str(&harmonics_table(
        "largest current harmonic subgroups",
        "A",
        &a.harmonics_i,
    ));
    s
}

/// The column titles of [`event_line`].
pub(crate) fn event_header() -> String {
    format!(
        "{:>6}  {:<23}  {:<12}  {:<8}  {:>10}  {:<18}  {:>8}\n",
        "id", "start (UTC)", "type", "phases", "duration", "extreme", "Udin (V)"
    )
}

/// A duration for people: milliseconds below a second (`209.1 ms`), else seconds (`2.000 s`).
fn duration_text(s: f64) -> String {
    if !s.is_finite() {
        "-".to_string()
    } else if s < 1.0 {
        format!("{} ms", num(Some(s * 1e3), 1))
    } else {
        format!("{} s", num(Some(s), 3))
    }
}

/// One event, in fixed columns (so `--follow` can print rows as they come): id, start, type,
/// phases, duration, the extreme Urms(½) in V and in % of Udin (a dip's residual voltage), Udin,
/// and an RVC's ΔUmax / ΔUss.
pub(crate) fn event_line(e: &PqEvent) -> String {
    let phases: Vec<String> = e.phases.iter().map(|p| format!("L{p}")).collect();
    let extreme = decimal(e.extreme_v);
    let reference = decimal(e.reference_v);
    let mut extreme_text = format!("{} V", num(Some(extreme), 2));
    if reference > 0.0 {
        extreme_text.push_str(&format!(
            " ({} %)",
            num(Some(extreme / reference * 100.0), 1)
        ));
    }
    let mut line = format!(
        "{:>6}  {:<23}  {:<12}  {:<8}  {:>10}  {:<18}  {:>8}",
        e.id,
        utc(e.start_s),
        e.kind.as_str(),
        phases.join(","),
        duration_text(e.duration_s),
        extreme_text,
        reference
    );
    if let EventKind::Rvc {
        delta_max_v,
        delta_steady_v,
    } = e.kind
    {
        line.push_str(&format!(
            "  ΔUmax {} V, ΔUss {} V",
            val(Some(delta_max_v), 2),
            val(Some(delta_steady_v), 2)
        ));
    }
    line.push('\n');
    line
}

/// A refusal of `getPQ`/`getEvents` in words that say what to do.
fn refusal(e: ClientError, interval: Option<PqInterval>) -> CliError {
    match e {
        ClientError::Refused { cmd, msg } if msg.starts_with("No complete") => {
            let what = interval.map_or("an", PqInterval::as_str);
            CliError::NotReady(format!(
                "the meter refused `{cmd}`: {msg} (a meter reports power quality once it has \
                 decided its nominal values, about a second after it starts; a {what} interval \
                 is reported when one has completed after that: 200ms and 3s within seconds, \
                 10min and 2h at the clock's 10-minute and 2-hour ticks)"
            ))
        }
        ClientError::Refused { cmd, msg } if msg == "unknown command" => {
            CliError::NotReady(format!(
                "the meter refused `{cmd}`: {msg} (its firmware has no power quality, docs/protocol.md §11)"
            ))
        }
        other => other.into(),
    }
}

/// `pq HOST [--interval I] [--json]`.
pub(crate) async fn pq(
    meter: &MeterArgs,
    interval: PqInterval,
    out: &Out,
) -> Result<ExitCode, CliError> {
    let c = meter.connect().await?;
    let r = c
        .request(&WireCommand::GetPq { interval })
        .await
        .map_err(|e| refusal(e, Some(interval)))?;
    if out.json {
        out.print(&format!("{}\n", r.json()))?;
        return Ok(ExitCode::SUCCESS);
    }
    match r.reply() {
        Reply::Pq(a) => out.print(&pq_text(a))?,
        _ => {
            return Err(ClientError::Protocol(format!(
                "unexpected reply to `getPQ`: {}",
                r.json()
            ))
            .into());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where `events` stands: the last id seen and whether the human header was printed.
struct Cursor {
    since: u32,
    header: bool,
}

impl Cursor {
    /// Reads and prints every event after `since`, page by page, and moves `since` on. Events at
    /// or below `since` (a meter that ignores it) are not printed twice. With nothing newer the
    /// meter's `next` is taken even when it is lower: the meter lost its events (a new store), and
    /// its new ones start again from 1.
    async fn drain(&mut self, c: &Client, out: &Out) -> Result<usize, CliError> {
        let mut printed = 0;
        for _ in 0..MAX_PAGES {
            let (page, next) = c
                .events_page(self.since)
                .await
                .map_err(|e| refusal(e, None))?;
            let mut text = String::new();
            let mut newest = self.since;
            for e in page.iter().filter(|e| e.id > self.since) {
                if out.json {
                    text.push_str(&e.to_json());
                    text.push('\n');
                } else {
                    text.push_str(&event_line(e));
                }
                newest = newest.max(e.id);
                printed += 1;
            }
            if !text.is_empty() {
                if !out.json && !self.header {
                    text.insert_str(0, &event_header());
                    self.header = true;
                }
                out.print(&text)?;
            }
            if page.is_empty() {
                self.since = next;
                return Ok(printed);
            }
            let advanced = next.max(newest);
            if advanced <= self.since {
                return Ok(printed);
            }
            self.since = advanced;
        }
        Ok(printed)
    }
}

/// A failure while following: the connection is gone (exit 1, "connection lost").
fn lost(e: CliError) -> CliError {
    match e {
        CliError::Client(ClientError::Closed { .. } | ClientError::Timeout { .. }) => {
            ClientError::ConnectionLost {
                reason: e.to_string(),
            }
            .into()
        }
        other => other,
    }
}

/// `events HOST [--since N] [--follow] [--json]`.
pub(crate) async fn events(
    meter: &MeterArgs,
    since: u32,
    follow: bool,
    out: &Out,
) -> Result<ExitCode, CliError> {
    let mut signals = if follow {
        Some(Signals::install()?)
    } else {
        None
    };
    let c = meter.connect().await?;
    // Subscribed before the first page is asked for, so no event's log line is missed.
    let mut notices = c.notices();
    let mut cursor = Cursor {
        since,
        header: false,
    };
    let printed = cursor.drain(&c, out).await?;
    let Some(signals) = signals.as_mut() else {
        if printed == 0 && !out.json {
            out.print(&if since > 0 {
                format!("no events after id {since}\n")
            } else {
                "no events\n".to_string()
            })?;
        }
        return Ok(ExitCode::SUCCESS);
    };
    if !out.json && !cursor.header {
        out.print(&event_header())?;
        cursor.header = true;
    }
    let mut tick = tokio::time::interval(FOLLOW_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            n = notices.recv() => match n {
                Ok(Notice::Log(line)) if line.level >= LogLevel::Warning => {}
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    return Err(lost(c.closed().await.into()));
                }
            },
            _ = tick.tick() => {}
            _ = signals.recv() => return Ok(ExitCode::SUCCESS),
        }
        tokio::select! {
            r = cursor.drain(&c, out) => { r.map_err(lost)?; }
            _ = signals.recv() => return Ok(ExitCode::SUCCESS),
        }
        tick.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::pq::{Nominal, PhaseSet};

    #[test]
    fn times_are_utc_to_the_millisecond() {
        assert_eq!(utc(0.0), "1970-01-01 00:00:00.000");
        assert_eq!(utc(1_700_000_000.250_4), "2023-11-14 22:13:20.250");
        assert_eq!(utc(f64::NAN), "-");
    }

    fn dip() -> PqEvent {
        PqEvent {
            id: 7,
            kind: EventKind::Dip,
            phases: PhaseSet::from_phases(&[1, 3]).unwrap(),
            start_s: 1_700_000_000.25,
            duration_s: 0.1,
            extreme_v: 138.2,
            reference_v: 230.0,
        }
    }

    #[test]
    fn event_rows_golden() {
        assert_eq!(
            event_header(),
            "    id  start (UTC)              type          phases      duration  extreme             Udin (V)\n"
        );
        assert_eq!(
            event_line(&dip()),
            "     7  2023-11-14 22:13:20.250  dip           L1,L3       100.0 ms  138.20 V (60.1 %)        230\n"
        );
        let rvc = PqEvent {
            kind: EventKind::Rvc {
                delta_max_v: 12.5,
                delta_steady_v: 8.0,
            },
            duration_s: 2.5,
            extreme_v: 250.0,
            ..dip()
        };
        let line = event_line(&rvc);
        assert!(line.contains("rvc "), "{line}");
        assert!(line.contains("   2.500 s  "), "{line}");
        assert!(line.ends_with("  ΔUmax 12.50 V, ΔUss 8.00 V\n"), "{line}");
    }

    fn aggregate() -> PqAggregate {
        let nominal = Nominal {
            voltage_v: 230.0,
            frequency_hz: 50.0,
        };
        let mut a = PqAggregate::undefined(
            PqInterval::ThreeSeconds,
            1_700_000_000.25,
            1_700_000_003.25,
            nominal,
        );
        a.voltage_v = [Some(230.01), Some(229.5), Some(231.0)];
        a.voltage_min_v = [Some(229.9), Some(229.4), Some(230.9)];
        a.voltage_max_v = [Some(230.1), Some(229.6), Some(231.1)];
        a.frequency_hz = Some(50.002);
        a.u0_pct = Some(0.01);
        a.u2_pct = Some(0.25);
        a.thd_v_pct = [Some(5.39), Some(5.39), Some(5.39)];
        for p in 0..3 {
            a.harmonics_v[p] = [Some(0.0); HARMONICS];
            a.harmonics_v[p][0] = Some(230.0);
            a.harmonics_v[p][4] = Some(11.5);
            a.harmonics_v[p][2] = Some(4.6);
            a.harmonics_v[p][6] = Some(1.15);
            a.harmonics_v[p][10] = Some(0.01);
        }
        a.harmonics_i[0] = [Some(0.0); HARMONICS];
        a.harmonics_i[0][0] = Some(5.0);
        a
    }

    #[test]
    fn pq_table_golden() {
        let text = pq_text(&aggregate());
        assert_eq!(
            text,
            "3s interval 2023-11-14 22:13:20.250 to 22:13:23.250 UTC (3.000 s)
nominal 230 V, 50 Hz

phase   V (V)  Vmin (V)  Vmax (V)  THD V (%)  THD I (%)
L1     230.01    229.90    230.10       5.39          -
L2     229.50    229.40    229.60       5.39          -
L3     231.00    230.90    231.10       5.39          -

frequency (10 s)  50.002 Hz
unbalance         u0 0.010 %, u2 0.250 %

largest voltage harmonic subgroups (% of H1)
phase   H1 (V)      1st      2nd      3rd
L1     230.000  H5 5.00  H3 2.00  H7 0.50
L2     230.000  H5 5.00  H3 2.00  H7 0.50
L3     230.000  H5 5.00  H3 2.00  H7 0.50

largest current harmonic subgroups (% of H1)
phase  H1 (A)
L1      5.000
(no subgroup of H2..H50 reaches 0.01 % of H1)
"
        );
    }

    #[test]
    fn pq_table_shows_flicker_and_flags_where_present() {
        let mut a = aggregate();
        a.interval = PqInterval::TenMinutes;
        a.flagged = true;
        a.frequency_hz = None;
        a.pst = Some([Some(1.0), Some(0.25), None]);
        let text = pq_text(&a);
        let first = text.lines().next().unwrap();
        assert!(first.starts_with("10min interval "), "{first}");
        assert!(first.ends_with(", flagged: a dip, swell or interruption was in progress"));
        let header: Vec<&str> = text.lines().nth(3).unwrap().split_whitespace().collect();
        assert_eq!(header.last(), Some(&"Pst"), "{text}");
        assert!(text.lines().nth(4).unwrap().ends_with("  1.000"), "{text}");
        assert!(text.lines().nth(6).unwrap().ends_with("  -"), "{text}");
        assert!(text.contains("frequency (10 s)  - (no 10-s value yet)\n"));
        assert!(!text.contains("Plt"));
    }

    #[test]
    fn largest_orders_by_size_then_order_and_needs_h1() {
        let mut h = [None; HARMONICS];
        assert_eq!(largest(&h), None);
        h[0] = Some(100.0);
        h[2] = Some(3.0);
        h[10] = Some(3.0);
        h[49] = Some(4.0);
        h[5] = Some(f32::NAN);
        assert_eq!(
            largest(&h),
            Some((100.0, vec![(50, 4.0), (3, 3.0), (11, 3.0)]))
        );
        h[0] = Some(0.0);
        assert_eq!(largest(&h), None);
    }
}
