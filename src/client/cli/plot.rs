//! `analyze --plot out.png`: the first cycles of every waveform and the active power of every
//! window over time (for `p,q` / `v,i_RMS` recordings: their per-second values over time).
//!
//! Text is drawn with a small built-in 5×7 bitmap font, so the plot needs no system font and
//! plotters needs no font feature (which would make every criterion HTML report in the crate
//! depend on a registered font). Axes are labelled at round values (1, 2 or 5 × 10ⁿ apart). The
//! image is drawn in memory and encoded here, so a failure to write it is a plain I/O error.

use std::path::Path;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::client::analyze::{AnalyzeOptions, AnalyzeSummary, Content, WindowResult, scale_block};
use crate::client::recording::{RecordingError, RecordingReader};

/// Plotters' own errors only fail on a wrong buffer size or a layout bug here (the image is drawn
/// in memory); say so in words.
fn draw_err<E: std::fmt::Display>(e: E) -> RecordingError {
    RecordingError::Io(std::io::Error::other(std::format!(
        "cannot draw the plot: {e}"
    )))
}

const WIDTH: u32 = 1200;
const HEIGHT: u32 = 900;

/// Creates (or truncates) `png`, so that an unwritable path is reported before any work, as the
/// operating system words it.
pub(crate) fn check_writable(png: &Path) -> Result<(), RecordingError> {
    std::fs::File::create(png)?;
    Ok(())
}

const COLORS: [RGBColor; 3] = [
    RGBColor(200, 40, 40),
    RGBColor(30, 120, 30),
    RGBColor(40, 70, 200),
];

/// 5×7 glyphs, row by row (`#` = ink).
fn glyph(c: char) -> [&'static str; 7] {
    match c {
        '0' => [
            ".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###.",
        ],
        '1' => [
            "..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###.",
        ],
        '2' => [
            ".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####",
        ],
        '3' => [
            "#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###.",
        ],
        '4' => [
            "...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#.",
        ],
        '5' => [
            "#####", "#....", "####.", "....#", "....#", "#...#", ".###.",
        ],
        '6' => [
            "..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###.",
        ],
        '7' => [
            "#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#...",
        ],
        '8' => [
            ".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###.",
        ],
        '9' => [
            ".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##..",
        ],
        '.' => [
            ".....", ".....", ".....", ".....", ".....", ".##..", ".##..",
        ],
        '-' => [
            ".....", ".....", ".....", ".###.", ".....", ".....", ".....",
        ],
        '(' => [
            "...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#.",
        ],
        ')' => [
            ".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#...",
        ],
        '_' => [
            ".....", ".....", ".....", ".....", ".....", ".....", "#####",
        ],
        'a' => [
            ".....", ".....", ".###.", "....#", ".####", "#...#", ".####",
        ],
        'c' => [
            ".....", ".....", ".###.", "#....", "#....", "#...#", ".###.",
        ],
        'e' => [
            ".....", ".....", ".###.", "#...#", "#####", "#....", ".###.",
        ],
        'g' => [
            ".....", ".####", "#...#", "#...#", ".####", "....#", ".###.",
        ],
        'i' => [
            "..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###.",
        ],
        'l' => [
            ".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###.",
        ],
        'm' => [
            ".....", ".....", "##.#.", "#.#.#", "#.#.#", "#...#", "#...#",
        ],
        'n' => [
            ".....", ".....", "#.##.", "##..#", "#...#", "#...#", "#...#",
        ],
        'o' => [
            ".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###.",
        ],
        'p' => [
            ".....", ".....", "####.", "#...#", "####.", "#....", "#....",
        ],
        'r' => [
            ".....", ".....", "#.##.", "##..#", "#....", "#....", "#....",
        ],
        's' => [
            ".....", ".....", ".####", "#....", ".###.", "....#", "####.",
        ],
        't' => [
            ".#...", ".#...", "###..", ".#...", ".#...", ".#..#", "..##.",
        ],
        'u' => [
            ".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#",
        ],
        'v' => [
            ".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#..",
        ],
        'w' => [
            ".....", ".....", "#...#", "#...#", "#.#.#", "#.#.#", ".#.#.",
        ],
        'A' => [
            ".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#",
        ],
        'I' => [
            ".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###.",
        ],
        'Q' => [
            ".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#",
        ],
        'L' => [
            "#....", "#....", "#....", "#....", "#....", "#....", "#####",
        ],
        'P' => [
            "####.", "#...#", "#...#", "####.", "#....", "#....", "#....",
        ],
        'V' => [
            "#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#..",
        ],
        'W' => [
            "#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#.",
        ],
        _ => [
            ".....", ".....", ".....", ".....", ".....", ".....", ".....",
        ],
    }
}

/// Width in pixels of `text` at `scale`.
fn text_width(text: &str, scale: i32) -> i32 {
    text.chars().count() as i32 * 6 * scale
}

/// Draws `text` with its top-left corner at `(x, y)` (pixels of `area`).
fn text(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    text: &str,
    x: i32,
    y: i32,
    scale: i32,
) -> Result<(), RecordingError> {
    for (k, c) in text.chars().enumerate() {
        let x0 = x + k as i32 * 6 * scale;
        for (row, bits) in glyph(c).iter().enumerate() {
            for (col, b) in bits.bytes().enumerate() {
                if b == b'#' {
                    let px = x0 + col as i32 * scale;
                    let py = y + row as i32 * scale;
                    area.draw(&Rectangle::new(
                        [(px, py), (px + scale, py + scale)],
                        BLACK.filled(),
                    ))
                    .map_err(draw_err)?;
                }
            }
        }
    }
    Ok(())
}

/// Round tick positions covering `lo..=hi`: a step of 1, 2 or 5 × 10ⁿ giving about `target`
/// intervals; returns the first tick, the step and the number of ticks. The axis is then drawn
/// from the first to the last tick, so both ends are round values too.
fn nice_ticks(lo: f64, hi: f64, target: f64) -> (f64, f64, usize) {
    let (lo, hi) = if hi > lo && (hi - lo).is_finite() {
        (lo, hi)
    } else {
        (lo - 1.0, lo + 1.0)
    };
    let raw = (hi - lo) / target.max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * 0.999)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).floor() * step;
    let last = (hi / step).ceil() * step;
    let n = ((last - first) / step).round() as usize + 1;
    (first, step, n.clamp(2, 50))
}

/// A tick label with as many decimals as the step needs (`0.5` → one, `200` → none).
fn tick(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    let s = std::format!("{v:.decimals$}");
    if s.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        "0".to_string()
    } else {
        s
    }
}

struct Panel {
    title: String,
    series: Vec<(String, Vec<(f64, f64)>)>,
    x_end: f64,
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    p: Panel,
) -> Result<(), RecordingError> {
    let (lo, hi) = p
        .series
        .iter()
        .flat_map(|(_, s)| s.iter().map(|q| q.1))
        .filter(|v| v.is_finite())
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (-1.0, 1.0) };
    let (y0, ystep, ny) = nice_ticks(lo, hi, 4.0);
    let y1 = y0 + ystep * (ny - 1) as f64;
    let (x0, xstep, nx) = nice_ticks(0.0, p.x_end.max(1e-9), 5.0);
    let x1 = x0 + xstep * (nx - 1) as f64;
    let mut chart = ChartBuilder::on(area)
        .margin_top(28)
        .margin_right(20)
        .margin_left(10)
        .margin_bottom(8)
        .x_label_area_size(22)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(draw_err)?;
    // No plotters text (see the module docs): no mesh labels; grid lines and ticks are drawn below.
    chart
        .configure_mesh()
        .x_labels(0)
        .y_labels(0)
        .draw()
        .map_err(draw_err)?;
    let grid = RGBColor(220, 220, 220);
    let ys: Vec<f64> = (0..ny).map(|k| y0 + ystep * k as f64).collect();
    let xs: Vec<f64> = (0..nx).map(|k| x0 + xstep * k as f64).collect();
    for v in &ys {
        chart
            .draw_series(LineSeries::new([(x0, *v), (x1, *v)], &grid))
            .map_err(draw_err)?;
    }
    for v in &xs {
        chart
            .draw_series(LineSeries::new([(*v, y0), (*v, y1)], &grid))
            .map_err(draw_err)?;
    }
    for (k, (_, pts)) in p.series.iter().enumerate() {
        let color = COLORS.get(k % 3).copied().unwrap_or(BLACK);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), &color))
            .map_err(draw_err)?;
    }
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    // Title, ticks and legend in the bitmap font (coordinates of the root area).
    text(root, &p.title, xr.start, yr.start - 22, 2)?;
    for v in &ys {
        let (_, py) = chart.backend_coord(&(x0, *v));
        let label = tick(*v, ystep);
        text(
            root,
            &label,
            xr.start - 6 - text_width(&label, 1),
            py - 3,
            1,
        )?;
    }
    for v in &xs {
        let (px, _) = chart.backend_coord(&(*v, y0));
        let label = tick(*v, xstep);
        text(root, &label, px - text_width(&label, 1) / 2, yr.end + 6, 1)?;
    }
    let mut lx = xr.end - 10;
    for (k, (name, _)) in p.series.iter().enumerate().rev() {
        let color = COLORS.get(k % 3).copied().unwrap_or(BLACK);
        lx -= text_width(name, 1) + 30;
        root.draw(&PathElement::new(
            [(lx, yr.start - 12), (lx + 18, yr.start - 12)],
            color.stroke_width(2),
        ))
        .map_err(draw_err)?;
        text(root, name, lx + 22, yr.start - 15, 1)?;
    }
    Ok(())
}

/// Per-phase series of one quantity of the rows, against seconds since the first row.
fn over_time(
    windows: &[WindowResult],
    label: &str,
    pick: impl Fn(&WindowResult) -> &[Option<f64>; 3],
) -> Vec<(String, Vec<(f64, f64)>)> {
    let t0 = windows.first().map_or(0.0, |w| w.t_s);
    (0..3)
        .map(|k| {
            let pts: Vec<(f64, f64)> = windows
                .iter()
                .filter_map(|w| pick(w).get(k).copied().flatten().map(|v| (w.t_s - t0, v)))
                .collect();
            (std::format!("{label} L{}", k + 1), pts)
        })
        .filter(|(_, pts)| !pts.is_empty())
        .collect()
}

/// Writes the PNG. Waveform recordings: voltage and current of the first three line cycles, then
/// the active power of every window (the reported windows only: no start-up transient). `p,q` and
/// `v,i_RMS` recordings: their two quantities per second over the recording.
pub(crate) fn plot(
    file: &Path,
    opts: &AnalyzeOptions,
    summary: &AnalyzeSummary,
    windows: &[WindowResult],
    png: &Path,
) -> Result<(), RecordingError> {
    let span = windows
        .last()
        .zip(windows.first())
        .map_or(1.0, |(l, f)| (l.t_s - f.t_s + l.duration_s).max(1e-3));
    let panels = match summary.content {
        Content::PowerPq => vec![
            Panel {
                title: "active power (W) - time (s)".into(),
                series: over_time(windows, "P", |w| &w.active_w),
                x_end: span,
            },
            Panel {
                title: "reactive power (var) - time (s)".into(),
                series: over_time(windows, "Q", |w| &w.reactive_var),
                x_end: span,
            },
        ],
        Content::Rms => vec![
            Panel {
                title: "voltage (V) - time (s)".into(),
                series: over_time(windows, "V", |w| &w.voltage_v),
                x_end: span,
            },
            Panel {
                title: "current (mA) - time (s)".into(),
                series: over_time(windows, "I", |w| &w.current_ma),
                x_end: span,
            },
        ],
        Content::ThreePhase | Content::SinglePhase(_) => {
            let mut reader = RecordingReader::open(file, &opts.hints)?;
            let meta = reader.meta().clone();
            let rate = f64::from(meta.rate_hz);
            let nominal = f64::from(summary.nominal_hz.unwrap_or(50));
            let frames = ((rate * 3.0 / nominal).ceil() as usize).max(2);
            let mut block = Vec::new();
            reader.read_frames(&mut block, frames)?;
            scale_block(&mut block, &meta);
            let ch = meta.channels.len().max(1);
            let got = block.len() / ch;
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
            let wave_ms = (got.max(2) - 1) as f64 / rate * 1e3;
            vec![
                Panel {
                    title: "voltage (V) - time (ms)".into(),
                    series: series("v_"),
                    x_end: wave_ms,
                },
                Panel {
                    title: "current (A) - time (ms)".into(),
                    series: series("i_"),
                    x_end: wave_ms,
                },
                Panel {
                    title: "active power (W) - time (s)".into(),
                    series: over_time(windows, "P", |w| &w.active_w),
                    x_end: span,
                },
            ]
        }
    };
    let mut rgb = vec![0u8; WIDTH as usize * HEIGHT as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let areas = root.split_evenly((panels.len(), 1));
        for (area, panel) in areas.iter().zip(panels) {
            draw_panel(area, &root, panel)?;
        }
        root.present().map_err(draw_err)?;
    }
    write_png(png, &rgb)
}

/// Encodes the RGB buffer as a PNG at `path`.
fn write_png(path: &Path, rgb: &[u8]) -> Result<(), RecordingError> {
    let file = std::fs::File::create(path)?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), WIDTH, HEIGHT);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let png_err = |e: png::EncodingError| match e {
        png::EncodingError::IoError(e) => RecordingError::Io(e),
        other => RecordingError::Io(std::io::Error::other(other.to_string())),
    };
    let mut w = enc.write_header().map_err(png_err)?;
    w.write_image_data(rgb).map_err(png_err)?;
    w.finish().map_err(png_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_ticks(0.0, 3.3, 5.0), (0.0, 1.0, 5));
        assert_eq!(nice_ticks(0.0, 2.2, 5.0), (0.0, 0.5, 6));
        let (first, step, n) = nice_ticks(-325.3, 325.3, 4.0);
        assert_eq!((first, step, n), (-400.0, 200.0, 5));
        let labels: Vec<String> = (0..n)
            .map(|k| tick(first + step * k as f64, step))
            .collect();
        assert_eq!(labels, ["-400", "-200", "0", "200", "400"]);
        let (first, step, n) = nice_ticks(0.0, 59.9, 5.0);
        assert_eq!((first, step, n), (0.0, 20.0, 4));
        assert_eq!(tick(0.5, 0.5), "0.5");
        assert_eq!(tick(0.25, 0.05), "0.25");
        // Degenerate ranges still give an axis.
        assert_eq!(nice_ticks(5.0, 5.0, 4.0), (4.0, 0.5, 5));
    }
}
