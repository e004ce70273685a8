//! `analyze FILE`: the DSP pipeline over a recording; a table, CSV or JSON per window, and a plot.

use std::io::Write;
use std::process::ExitCode;
use std::string::String;
use std::string::ToString;
use std::vec::Vec;
use std::{format, vec};

use super::args::{Cli, CliCommand, NominalArg};
use super::error::CliError;
use super::output::{Out, num, table};
use crate::client::analyze::{AnalyzeError, AnalyzeOptions, Content, WindowResult, analyze_file};
use crate::client::recording::{Format, ReadHints, RecordingError, RecordingStatus};

/// Checks what can be checked without reading the file: a known extension, and the hints only
/// for the formats that need them (a `.f32` file does not say its rate: `--rate` is required).
fn check_args(
    file: &std::path::Path,
    rate: Option<u32>,
    channels: Option<&Vec<String>>,
) -> Result<(), CliError> {
    let shown = file.display();
    match Format::from_path(file) {
        None => Err(CliError::Usage(format!(
            "{shown}: unknown recording format (use .wav, .csv or .f32)"
        ))),
        Some(Format::F32) if rate.is_none() => Err(CliError::Usage(format!(
            "{shown}: a .f32 file does not record its sample rate: give it with --rate (and --channels unless it holds the six waveforms v_l1,i_l1,v_l2,i_l2,v_l3,i_l3)"
        ))),
        Some(Format::Wav) if rate.is_some() || channels.is_some() => Err(CliError::Usage(format!(
            "{shown}: a WAV file states its rate and channels; --rate and --channels are for .f32 and .csv files"
        ))),
        Some(_) => Ok(()),
    }
}

pub(crate) fn analyze(cli: &Cli, printer: &Out) -> Result<ExitCode, CliError> {
    let CliCommand::Analyze {
        file,
        csv,
        plot,
        rate,
        channels,
        nominal,
        pq,
        ..
    } = &cli.command
    else {
        return Err(CliError::Usage("not an analyze command".into()));
    };
    if *pq {
        return super::analyze_pq::analyze_pq(cli, printer);
    }
    check_args(file, *rate, channels.as_ref())?;
    // A plot that cannot be written is found before the analysis, with the system's reason.
    if let Some(png) = plot {
        super::plot::check_writable(png).map_err(|source| CliError::File {
            path: png.display().to_string(),
            source,
        })?;
    }
    let opts = AnalyzeOptions {
        hints: ReadHints {
            rate_hz: *rate,
            channels: channels.clone(),
        },
        nominal_hz: match nominal {
            NominalArg::Auto => None,
            NominalArg::Hz(f) => Some(*f),
        },
        ..AnalyzeOptions::default()
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut io_err: Option<std::io::Error> = None;
    let mut keep: Vec<WindowResult> = Vec::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let json = printer.json;
    let want_plot = plot.is_some();
    if *csv {
        let mut h = String::from("t");
        for q in ["v", "i", "p", "q", "s", "pf", "f"] {
            for l in 1..=3 {
                h.push_str(&format!(",{q}_l{l}"));
            }
        }
        h.push_str(",cycles\n");
        out.write_all(h.as_bytes())?;
    }
    let summary = analyze_file(file, &opts, |w| {
        if io_err.is_some() {
            return;
        }
        let r = if json {
            writeln!(out, "{}", w.to_json())
        } else if *csv {
            let mut line = format!("{:.6}", w.t_s);
            for a in [
                &w.voltage_v,
                &w.current_ma,
                &w.active_w,
                &w.reactive_var,
                &w.apparent_va,
                &w.power_factor,
                &w.frequency_hz,
            ] {
                for v in a {
                    line.push(',');
                    if let Some(v) = v {
                        line.push_str(&format!("{}", *v as f32));
                    }
                }
            }
            writeln!(out, "{line},{}", w.cycles)
        } else {
            for (k, name) in ["L1", "L2", "L3"].iter().enumerate() {
                if w.voltage_v.get(k).copied().flatten().is_none()
                    && w.active_w.get(k).copied().flatten().is_none()
                {
                    continue;
                }
                let g = |a: &[Option<f64>; 3], d| num(a.get(k).copied().flatten(), d);
                rows.push(vec![
                    format!("{:.3}", w.t_s),
                    name.to_string(),
                    g(&w.voltage_v, 2),
                    g(&w.current_ma, 1),
                    g(&w.active_w, 2),
                    g(&w.reactive_var, 2),
                    g(&w.apparent_va, 2),
                    g(&w.power_factor, 3),
                    g(&w.frequency_hz, 3),
                ]);
            }
            Ok(())
        };
        if let Err(e) = r {
            io_err = Some(e);
        }
        if want_plot {
            keep.push(w.clone());
        }
    })
    .map_err(|e| match e {
        AnalyzeError::Recording(RecordingError::UnknownFormat) => CliError::Usage(format!(
            "{}: unknown recording format (use .wav, .csv or .f32)",
            file.display()
        )),
        AnalyzeError::Recording(source) => CliError::File {
            path: file.display().to_string(),
            source,
        },
        other => other.into(),
    })?;
    if let Some(e) = io_err {
        return Err(e.into());
    }
    if !json && !*csv {
        out.write_all(
            table(
                &[
                    "t (s)", "phase", "V (V)", "I (mA)", "P (W)", "Q (var)", "S (VA)", "PF",
                    "f (Hz)",
                ],
                &rows,
            )
            .as_bytes(),
        )?;
        let what = match summary.content {
            Content::PowerPq | Content::Rms => "one-second rows",
            Content::ThreePhase | Content::SinglePhase(_) => "windows",
        };
        let mut line = format!(
            "{} {what} over {} samples × {} channels at {} Hz",
            summary.windows,
            summary.frames,
            summary.meta.channels.len(),
            summary.meta.rate_hz
        );
        if let Some(n) = summary.nominal_hz {
            line.push_str(&format!(
                " ({} cycles at {n} Hz nominal",
                if n == 60 { 12 } else { 10 }
            ));
            if let Some(up) = summary.interpolated_to_hz {
                line.push_str(&format!(", interpolated to {up} Hz"));
            }
            line.push(')');
        }
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    drop(out);
    let m = &summary.meta;
    if m.truncated
        || m.status == RecordingStatus::Recording
        || m.status == RecordingStatus::Incomplete
    {
        std::eprintln!(
            "smartmeter: warning: {} is an unfinished recording (status {}{})",
            file.display(),
            m.status.as_str(),
            if m.truncated { ", truncated" } else { "" }
        );
    }
    if m.lost_packets > 0 {
        std::eprintln!(
            "smartmeter: warning: the recording lost {} packets (zero-filled)",
            m.lost_packets
        );
    }
    if let Some(png) = plot {
        super::plot::plot(file, &opts, &summary, &keep, png).map_err(|e| CliError::File {
            path: png.display().to_string(),
            source: e,
        })?;
    }
    Ok(ExitCode::SUCCESS)
}
