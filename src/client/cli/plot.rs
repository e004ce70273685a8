//! `analyze --plot out.png`: the first cycles of every waveform and the power over time.

use std::path::Path;
use std::string::{String, ToString};
use std::vec::Vec;

use plotters::prelude::*;

use crate::client::analyze::{AnalyzeOptions, WindowResult, scale_block};
use crate::client::recording::{RecordingError, RecordingReader};

/// Registers a system font for the labels; without one the plot is drawn without text.
fn font() -> bool {
    static FONT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FONT.get_or_init(|| {
        const CANDIDATES: [&str; 6] = [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            "/System/Library/Fonts/Supplemental/Arial.ttf",
            "C:\\Windows\\Fonts\\arial.ttf",
        ];
        for c in CANDIDATES {
            if let Ok(bytes) = std::fs::read(c) {
                let bytes: &'static [u8] = std::vec::Vec::leak(bytes);
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

fn draw_err<E: std::fmt::Display>(e: E) -> RecordingError {
    RecordingError::Io(std::io::Error::other(e.to_string()))
}

const COLORS: [RGBColor; 3] = [
    RGBColor(200, 40, 40),
    RGBColor(30, 120, 30),
    RGBColor(40, 70, 200),
];

/// Writes the PNG.
pub(crate) fn plot(
    file: &Path,
    opts: &AnalyzeOptions,
    windows: &[WindowResult],
    png: &Path,
) -> Result<(), RecordingError> {
    let text = font();
    let mut reader = RecordingReader::open(file, &opts.hints)?;
    let meta = reader.meta().clone();
    let rate = f64::from(meta.rate_hz);
    // Three line cycles of waveform.
    let frames = ((rate * 3.0 / f64::from(opts.nominal_hz)).ceil() as usize).max(2);
    let mut block = Vec::new();
    reader.read_frames(&mut block, frames)?;
    scale_block(&mut block, &meta);
    let ch = meta.channels.len().max(1);
    let series = |prefix: &str| -> Vec<(String, Vec<(f64, f64)>)> {
        meta.channels
            .iter()
            .enumerate()
            .filter(|(_, n)| n.starts_with(prefix))
            .map(|(k, n)| {
                let pts = block
                    .iter()
                    .skip(k)
                    .step_by(ch)
                    .enumerate()
                    .map(|(i, v)| (i as f64 / rate * 1e3, f64::from(*v)))
                    .collect();
                (n.clone(), pts)
            })
            .collect()
    };
    let volts = series("v_");
    let amps = series("i_");

    let root = BitMapBackend::new(png, (1200, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let areas = root.split_evenly((3, 1));
    let panels: [(&str, &str, Vec<(String, Vec<(f64, f64)>)>); 2] =
        [("voltage", "V", volts), ("current", "A", amps)];
    for (area, (title, unit, data)) in areas.iter().zip(panels) {
        let (lo, hi) = data
            .iter()
            .flat_map(|(_, p)| p.iter().map(|q| q.1))
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (lo, hi) = if lo < hi {
            (lo * 1.05, hi * 1.05)
        } else {
            (-1.0, 1.0)
        };
        let t_end = frames as f64 / rate * 1e3;
        let mut b = ChartBuilder::on(area);
        b.margin(10);
        if text {
            b.caption(
                std::format!("{title} waveforms ({unit}) vs time (ms)"),
                ("sans-serif", 18),
            )
            .x_label_area_size(30)
            .y_label_area_size(60);
        }
        let mut chart = b.build_cartesian_2d(0.0..t_end, lo..hi).map_err(draw_err)?;
        let mut mesh = chart.configure_mesh();
        if !text {
            mesh.disable_x_mesh()
                .disable_y_mesh()
                .x_labels(0)
                .y_labels(0);
        }
        mesh.draw().map_err(draw_err)?;
        for (k, (name, pts)) in data.into_iter().enumerate() {
            let color = COLORS.get(k % 3).copied().unwrap_or(BLACK);
            let s = chart
                .draw_series(LineSeries::new(pts, &color))
                .map_err(draw_err)?;
            if text {
                s.label(name)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
            }
        }
        if text {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(draw_err)?;
        }
    }
    if let Some(area) = areas.get(2) {
        let t0 = windows.first().map_or(0.0, |w| w.t_s);
        let pts: [Vec<(f64, f64)>; 3] = core::array::from_fn(|k| {
            windows
                .iter()
                .filter_map(|w| {
                    w.active_w
                        .get(k)
                        .copied()
                        .flatten()
                        .map(|p| (w.t_s - t0, p))
                })
                .collect()
        });
        let (lo, hi) = pts
            .iter()
            .flatten()
            .fold((f64::MAX, f64::MIN), |(lo, hi), p| {
                (lo.min(p.1), hi.max(p.1))
            });
        let (lo, hi) = if lo < hi {
            (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        } else if lo == hi {
            (lo - 1.0, hi + 1.0)
        } else {
            (0.0, 1.0)
        };
        let t_end = windows
            .last()
            .map_or(1.0, |w| (w.t_s - t0 + w.duration_s).max(1e-3));
        let mut b = ChartBuilder::on(area);
        b.margin(10);
        if text {
            b.caption("active power (W) vs time (s)", ("sans-serif", 18))
                .x_label_area_size(30)
                .y_label_area_size(60);
        }
        let mut chart = b.build_cartesian_2d(0.0..t_end, lo..hi).map_err(draw_err)?;
        let mut mesh = chart.configure_mesh();
        if !text {
            mesh.disable_x_mesh()
                .disable_y_mesh()
                .x_labels(0)
                .y_labels(0);
        }
        mesh.draw().map_err(draw_err)?;
        for (k, p) in pts.into_iter().enumerate() {
            let color = COLORS.get(k).copied().unwrap_or(BLACK);
            let s = chart
                .draw_series(LineSeries::new(p, &color))
                .map_err(draw_err)?;
            if text {
                s.label(std::format!("P L{}", k + 1))
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
            }
        }
        if text {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(draw_err)?;
        }
    }
    root.present().map_err(draw_err)?;
    Ok(())
}
