//! `analyze --plot out.png`: the first cycles of every waveform and the active power over time.
//!
//! Text is drawn with a small built-in 5×7 bitmap font, so the plot needs no system font and
//! plotters needs no font feature (which would make every criterion HTML report in the crate
//! depend on a registered font).

use std::path::Path;
use std::string::{String, ToString};
use std::vec::Vec;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::client::analyze::{AnalyzeOptions, WindowResult, scale_block};
use crate::client::recording::{RecordingError, RecordingReader};

fn draw_err<E: std::fmt::Display>(e: E) -> RecordingError {
    RecordingError::Io(std::io::Error::other(e.to_string()))
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

/// A tick label: few significant digits.
fn tick(v: f64, span: f64) -> String {
    let decimals = if span >= 100.0 {
        0
    } else if span >= 10.0 {
        1
    } else if span >= 1.0 {
        2
    } else {
        3
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
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo < hi {
        let pad = 0.05 * (hi - lo);
        (lo - pad, hi + pad)
    } else if lo == hi {
        (lo - 1.0, hi + 1.0)
    } else {
        (-1.0, 1.0)
    };
    let mut chart = ChartBuilder::on(area)
        .margin_top(28)
        .margin_right(20)
        .margin_left(10)
        .margin_bottom(8)
        .x_label_area_size(22)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..p.x_end, lo..hi)
        .map_err(draw_err)?;
    // No plotters text (see the module docs): no mesh labels; grid lines and ticks are drawn below.
    chart
        .configure_mesh()
        .x_labels(0)
        .y_labels(0)
        .draw()
        .map_err(draw_err)?;
    let grid = RGBColor(220, 220, 220);
    for k in 0..=4 {
        let v = lo + (hi - lo) * f64::from(k) / 4.0;
        chart
            .draw_series(LineSeries::new([(0.0, v), (p.x_end, v)], &grid))
            .map_err(draw_err)?;
    }
    for k in 0..=5 {
        let v = p.x_end * f64::from(k) / 5.0;
        chart
            .draw_series(LineSeries::new([(v, lo), (v, hi)], &grid))
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
    for k in 0..=4 {
        let v = lo + (hi - lo) * f64::from(k) / 4.0;
        let (_, py) = chart.backend_coord(&(0.0, v));
        let label = tick(v, hi - lo);
        text(
            root,
            &label,
            xr.start - 6 - text_width(&label, 1),
            py - 3,
            1,
        )?;
    }
    for k in 0..=5 {
        let v = p.x_end * f64::from(k) / 5.0;
        let (px, _) = chart.backend_coord(&(v, lo));
        let label = tick(v, p.x_end);
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

/// Writes the PNG: voltage and current waveforms of the first three line cycles, then the active
/// power of every window over the whole recording.
pub(crate) fn plot(
    file: &Path,
    opts: &AnalyzeOptions,
    windows: &[WindowResult],
    png: &Path,
) -> Result<(), RecordingError> {
    let mut reader = RecordingReader::open(file, &opts.hints)?;
    let meta = reader.meta().clone();
    let rate = f64::from(meta.rate_hz);
    let frames = ((rate * 3.0 / f64::from(opts.nominal_hz)).ceil() as usize).max(2);
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
    let t0 = windows.first().map_or(0.0, |w| w.t_s);
    let power: Vec<(String, Vec<(f64, f64)>)> = (0..3)
        .map(|k| {
            let pts: Vec<(f64, f64)> = windows
                .iter()
                .filter_map(|w| {
                    w.active_w
                        .get(k)
                        .copied()
                        .flatten()
                        .map(|p| (w.t_s - t0, p))
                })
                .collect();
            (std::format!("P L{}", k + 1), pts)
        })
        .filter(|(_, pts)| !pts.is_empty())
        .collect();
    let power_end = windows
        .last()
        .map_or(1.0, |w| (w.t_s - t0 + w.duration_s).max(1e-3));

    let root = BitMapBackend::new(png, (1200, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let areas = root.split_evenly((3, 1));
    let panels = [
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
            series: power,
            x_end: power_end,
        },
    ];
    for (area, panel) in areas.iter().zip(panels) {
        draw_panel(area, &root, panel)?;
    }
    root.present().map_err(draw_err)?;
    Ok(())
}
