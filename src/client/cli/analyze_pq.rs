//! `analyze FILE --pq`: the power-quality core over a recording; tables, or one §11 JSON object
//! per line (`--json`); with `--plot` also the PQ view ([`super::plot::plot_pq`]).

use std::io::Write;
use std::process::ExitCode;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use super::args::{Cli, CliCommand, NominalArg};
use super::error::CliError;
use super::output::{Out, num, table};
use super::plot::PlotEvent;
use crate::client::analyze::pq::{
    PqAnalyzeError, PqAnalyzeOptions, PqItem, analyze_pq_file, analyze_pq_file_with_basic,
    describe, urms_half_envelope,
};
use crate::client::recording::{Format, ReadHints, RecordingError};
use crate::wire::pq::{EventKind, PqAggregate, PqEvent};

/// One table row per phase with a voltage.
fn aggregate_rows(a: &PqAggregate, rows: &mut Vec<Vec<String>>) {
    let v = |x: Option<f32>, d| num(x.map(f64::from), d);
    for p in 0..3 {
        let Some(volts) = a.voltage_v.get(p).copied().flatten() else {
            continue;
        };
        let at = |x: &[Option<f32>; 3]| x.get(p).copied().flatten();
        rows.push(vec![
            format!("{:.3}", a.start_s),
            format!("{:.3}", a.end_s - a.start_s),
            if a.flagged { "yes" } else { "" }.to_string(),
            format!("L{}", p + 1),
            v(Some(volts), 2),
            v(at(&a.voltage_min_v), 2),
            v(at(&a.voltage_max_v), 2),
            v(a.frequency_hz, 3),
            v(a.u2_pct, 3),
            v(at(&a.thd_v_pct), 2),
            v(at(&a.thd_i_pct), 2),
            v(a.pst.as_ref().and_then(at), 3),
            v(a.plt.as_ref().and_then(at), 3),
        ]);
    }
}

fn event_row(e: &PqEvent) -> Vec<String> {
    let phases: Vec<String> = e.phases.iter().map(|p| format!("L{p}")).collect();
    let pct = if e.reference_v > 0.0 {
        format!(
            " ({:.1} %)",
            f64::from(e.extreme_v) / f64::from(e.reference_v) * 100.0
        )
    } else {
        String::new()
    };
    let rvc = match e.kind {
        EventKind::Rvc {
            delta_max_v,
            delta_steady_v,
        } => format!("ΔUmax {delta_max_v:.2} V, ΔUss {delta_steady_v:.2} V"),
        _ => String::new(),
    };
    vec![
        e.id.to_string(),
        e.kind.as_str().to_string(),
        phases.join(","),
        format!("{:.3}", e.start_s),
        format!("{:.1}", e.duration_s * 1e3),
        format!("{:.2}{pct}", e.extreme_v),
        format!("{}", e.reference_v),
        rvc,
    ]
}

pub(crate) fn analyze_pq(cli: &Cli, printer: &Out) -> Result<ExitCode, CliError> {
    let CliCommand::Analyze {
        file,
        rate,
        channels,
        nominal,
        interval,
        udin,
        plot,
        ..
    } = &cli.command
    else {
        return Err(CliError::Usage("not an analyze command".into()));
    };
    let shown = file.display().to_string();
    match Format::from_path(file) {
        None => {
            return Err(CliError::Usage(format!(
                "{shown}: unknown recording format (use .wav, .csv or .f32)"
            )));
        }
        Some(Format::F32) if rate.is_none() => {
            return Err(CliError::Usage(format!(
                "{shown}: a .f32 file does not record its sample rate: give it with --rate (and --channels, e.g. v_l1 or v_l1,v_l2,v_l3, unless it holds the six waveforms v_l1,i_l1,v_l2,i_l2,v_l3,i_l3)"
            )));
        }
        Some(Format::Wav) if rate.is_some() || channels.is_some() => {
            return Err(CliError::Usage(format!(
                "{shown}: a WAV file states its rate and channels; --rate and --channels are for .f32 and .csv files"
            )));
        }
        Some(_) => {}
    }
    // A plot that cannot be written is found before the analysis, with the system's reason.
    if let Some(png) = plot {
        super::plot::check_writable(png).map_err(|source| CliError::File {
            path: png.display().to_string(),
            source,
        })?;
    }
    let opts = PqAnalyzeOptions {
        hints: ReadHints {
            rate_hz: *rate,
            channels: channels.clone(),
        },
        interval: *interval,
        udin_v: *udin,
        nominal_hz: match nominal {
            NominalArg::Auto => None,
            NominalArg::Hz(f) => Some(*f),
        },
        ..PqAnalyzeOptions::default()
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut io_err: Option<std::io::Error> = None;
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut events: Vec<Vec<String>> = Vec::new();
    let json = printer.json;
    let mut view = plot.as_ref().map(|_| PqView::default());
    let on_item = |item: PqItem| {
        if let (Some(v), PqItem::Event(e)) = (view.as_mut(), &item) {
            v.event(e);
        }
        if json {
            if io_err.is_none()
                && let Err(e) = writeln!(out, "{}", item.to_json())
            {
                io_err = Some(e);
            }
            return;
        }
        match &item {
            PqItem::Aggregate(a) => aggregate_rows(a, &mut rows),
            PqItem::Event(e) => events.push(event_row(e)),
        }
    };
    let mut harmonics = HarmonicMeans::default();
    let result = if plot.is_some() {
        analyze_pq_file_with_basic(file, &opts, on_item, |a| harmonics.add(a))
    } else {
        analyze_pq_file(file, &opts, on_item)
    };
    let summary = result.map_err(|e| match e {
        PqAnalyzeError::Recording(RecordingError::UnknownFormat) => CliError::Usage(format!(
            "{shown}: unknown recording format (use .wav, .csv or .f32)"
        )),
        PqAnalyzeError::Recording(source) => CliError::File {
            path: shown.clone(),
            source,
        },
        other => CliError::Usage(format!("{shown}: {other}")),
    })?;
    if let Some(e) = io_err {
        return Err(e.into());
    }
    if !json {
        out.write_all(
            table(
                &[
                    "start (s)",
                    "length (s)",
                    "flagged",
                    "phase",
                    "V (V)",
                    "Vmin (V)",
                    "Vmax (V)",
                    "f (Hz)",
                    "u2 (%)",
                    "THD V (%)",
                    "THD I (%)",
                    "Pst",
                    "Plt",
                ],
                &rows,
            )
            .as_bytes(),
        )?;
        if !events.is_empty() {
            writeln!(out)?;
            out.write_all(
                table(
                    &[
                        "event",
                        "type",
                        "phases",
                        "start (s)",
                        "duration (ms)",
                        "extreme (V)",
                        "Udin (V)",
                        "RVC",
                    ],
                    &events,
                )
                .as_bytes(),
            )?;
        }
        writeln!(out, "{}", describe(&summary, *interval))?;
    }
    out.flush()?;
    drop(out);
    if let (Some(png), Some(view)) = (plot, view) {
        let file_err = |source| CliError::File {
            path: shown.clone(),
            source,
        };
        // Urms(½) at the nominal frequency the core decided (or was given), from a second read.
        let frequency_hz = summary
            .nominal
            .map(|n| f64::from(n.frequency_hz))
            .or(opts.nominal_hz.map(f64::from))
            .unwrap_or(50.0);
        let urms = urms_half_envelope(
            file,
            &opts.hints,
            frequency_hz,
            summary.frames,
            PLOT_BUCKETS,
        )
        .map_err(|e| match e {
            PqAnalyzeError::Recording(source) => file_err(source),
            other => CliError::Usage(format!("{shown}: {other}")),
        })?;
        let start_s = summary
            .meta
            .start_unix_us
            .map_or(0.0, |us| us as f64 * 1e-6);
        let marks: Vec<PlotEvent> = view
            .events
            .iter()
            .map(|e| PlotEvent {
                from_s: e.start_s - start_s,
                to_s: e.start_s - start_s + e.duration_s,
                kind: e.kind.as_str(),
            })
            .collect();
        super::plot::plot_pq(&urms, &marks, &harmonics.percent_of_h1(), png).map_err(|e| {
            CliError::File {
                path: png.display().to_string(),
                source: e,
            }
        })?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Pixel columns of the plot's time axis get one Urms(½) bucket each (at most).
const PLOT_BUCKETS: usize = 1200;

/// Events kept for the plot (a recording with more shades the first ones only).
const PLOT_EVENTS: usize = 10_000;

/// What `--plot` keeps of the items: the events.
#[derive(Default)]
struct PqView {
    events: Vec<PqEvent>,
}

impl PqView {
    fn event(&mut self, e: &PqEvent) {
        if self.events.len() < PLOT_EVENTS {
            self.events.push(e.clone());
        }
    }
}

/// The mean voltage harmonic subgroups over every basic interval, aggregated as §11 aggregates
/// RMS quantities: the root mean square of the basic values, per phase and order.
#[derive(Default)]
struct HarmonicMeans {
    sum_sq: [Vec<f64>; 3],
}

impl HarmonicMeans {
    fn add(&mut self, a: &PqAggregate) {
        // The mean square's 1/n cancels in the ratio to H1.
        for (row, sums) in a.harmonics_v.iter().zip(self.sum_sq.iter_mut()) {
            if row.first().copied().flatten().is_none() {
                continue;
            }
            if sums.is_empty() {
                sums.resize(row.len(), 0.0);
            }
            for (s, h) in sums.iter_mut().zip(row) {
                let h = f64::from(h.unwrap_or(0.0));
                *s += h * h;
            }
        }
    }

    /// Per phase, H2..H50 in % of H1 (`None`: no interval had a voltage on it, or H1 is 0).
    fn percent_of_h1(&self) -> [Option<Vec<f64>>; 3] {
        core::array::from_fn(|p| {
            let sums = self.sum_sq.get(p)?;
            let h1 = sums.first().copied().filter(|x| *x > 0.0)?.sqrt();
            Some(sums.iter().skip(1).map(|s| s.sqrt() / h1 * 100.0).collect())
        })
    }
}
