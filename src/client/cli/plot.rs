//! `analyze --plot out.png`: the first cycles of every waveform and the active power of every
//! window over time (for `p,q` / `v,i_RMS` recordings: their per-second values over time); with
//! `--pq` the power-quality view ([`plot_pq`]): Urms(½) with the events, and a harmonic bar chart.
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

use crate::client::analyze::pq::UrmsHalfEnvelope;
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
        'd' => [
            "....#", "....#", ".####", "#...#", "#...#", "#...#", ".####",
        ],
        'f' => [
            "..##.", ".#..#", ".#...", "###..", ".#...", ".#...", ".#...",
        ],
        'h' => [
            "#....", "#....", "#.##.", "##..#", "#...#", "#...#", "#...#",
        ],
        'U' => [
            "#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###.",
        ],
        'H' => [
            "#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#",
        ],
        '/' => [
            ".....", "....#", "...#.", "..#..", ".#...", "#....", ".....",
        ],
        '%' => [
            "##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##",
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

/// Event colours of the PQ view: the span (light) and its start (dark).
const BAND: RGBColor = RGBColor(255, 215, 160);
const BAND_EDGE: RGBColor = RGBColor(230, 120, 0);

/// At most this many event labels are written (every event is still shaded).
const MAX_BAND_LABELS: usize = 20;

/// How a panel draws its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// Polylines over `0..=x_end` (the axis starts at a round value at or below 0).
    Lines,
    /// Bars at whole x values `1..=x_end`, the series side by side, from 0.
    Bars,
}

/// A shaded span of x (an event of the PQ view) with its label.
struct Band {
    from: f64,
    to: f64,
    label: String,
}

struct Panel {
    title: String,
    series: Vec<(String, Vec<(f64, f64)>)>,
    x_end: f64,
    style: Style,
    bands: Vec<Band>,
}

impl Panel {
    fn lines(title: &str, series: Vec<(String, Vec<(f64, f64)>)>, x_end: f64) -> Panel {
        Panel {
            title: title.to_string(),
            series,
            x_end,
            style: Style::Lines,
            bands: Vec::new(),
        }
    }
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
    let (lo, hi) = match p.style {
        Style::Lines => (lo, hi),
        Style::Bars => (lo.min(0.0), hi.max(0.0)),
    };
    let (y0, ystep, ny) = nice_ticks(lo, hi, 4.0);
    let y1 = y0 + ystep * (ny - 1) as f64;
    let (tx0, xstep, nx) = nice_ticks(0.0, p.x_end.max(1e-9), 5.0);
    // Lines span whole ticks; bars the categories 1..=x_end with half a bar of room each side.
    let (x0, x1) = match p.style {
        Style::Lines => (tx0, tx0 + xstep * (nx - 1) as f64),
        Style::Bars => (0.5, p.x_end + 0.5),
    };
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
    let xs: Vec<f64> = (0..nx)
        .map(|k| tx0 + xstep * k as f64)
        .filter(|x| (x0..=x1).contains(x))
        .collect();
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
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    // Events under the data: a span at least 2 px wide, its start as a darker line.
    for (k, b) in p.bands.iter().enumerate() {
        let (from, to) = (b.from.clamp(x0, x1), b.to.clamp(x0, x1));
        let (px0, _) = chart.backend_coord(&(from, y0));
        let (px1, _) = chart.backend_coord(&(to, y0));
        let px1 = px1.max(px0 + 2);
        root.draw(&Rectangle::new(
            [(px0, yr.start), (px1, yr.end - 1)],
            BAND.filled(),
        ))
        .map_err(draw_err)?;
        root.draw(&PathElement::new(
            [(px0, yr.start), (px0, yr.end - 1)],
            BAND_EDGE.stroke_width(1),
        ))
        .map_err(draw_err)?;
        if k < MAX_BAND_LABELS {
            text(
                root,
                &b.label,
                px0 + 3,
                yr.start + 4 + (k as i32 % 3) * 10,
                1,
            )?;
        }
    }
    let count = p.series.len().max(1) as f64;
    for (k, (_, pts)) in p.series.iter().enumerate() {
        let color = COLORS.get(k % 3).copied().unwrap_or(BLACK);
        match p.style {
            Style::Lines => {
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), &color))
                    .map_err(draw_err)?;
            }
            Style::Bars => {
                let w = 0.8 / count;
                let left = |x: f64| x - 0.4 + w * k as f64;
                chart
                    .draw_series(pts.iter().map(|(x, y)| {
                        Rectangle::new([(left(*x), 0.0), (left(*x) + w, *y)], color.filled())
                    }))
                    .map_err(draw_err)?;
            }
        }
    }
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
            Panel::lines(
                "active power (W) - time (s)",
                over_time(windows, "P", |w| &w.active_w),
                span,
            ),
            Panel::lines(
                "reactive power (var) - time (s)",
                over_time(windows, "Q", |w| &w.reactive_var),
                span,
            ),
        ],
        Content::Rms => vec![
            Panel::lines(
                "voltage (V) - time (s)",
                over_time(windows, "V", |w| &w.voltage_v),
                span,
            ),
            Panel::lines(
                "current (mA) - time (s)",
                over_time(windows, "I", |w| &w.current_ma),
                span,
            ),
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
                Panel::lines("voltage (V) - time (ms)", series("v_"), wave_ms),
                Panel::lines("current (A) - time (ms)", series("i_"), wave_ms),
                Panel::lines(
                    "active power (W) - time (s)",
                    over_time(windows, "P", |w| &w.active_w),
                    span,
                ),
            ]
        }
    };
    render(panels, png)
}

/// Draws `panels` one below the other and writes the PNG.
fn render(panels: Vec<Panel>, png: &Path) -> Result<(), RecordingError> {
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

/// One event of the PQ view: its span in seconds from the first sample, and its type.
pub(crate) struct PlotEvent {
    pub(crate) from_s: f64,
    pub(crate) to_s: f64,
    pub(crate) kind: &'static str,
}

/// `analyze --pq --plot out.png`: Urms(½) per phase over the recording (each pixel column spans
/// the lowest to the highest value in it, so a dip of one cycle still shows) with the events
/// shaded and labelled, and the mean voltage harmonic subgroups H2..H50 per phase in % of H1
/// (`harmonics_pct[phase][h - 2]`; `None`: no voltage on that phase).
pub(crate) fn plot_pq(
    urms: &UrmsHalfEnvelope,
    events: &[PlotEvent],
    harmonics_pct: &[Option<Vec<f64>>; 3],
    png: &Path,
) -> Result<(), RecordingError> {
    let envelope: Vec<(String, Vec<(f64, f64)>)> = urms
        .phases
        .iter()
        .enumerate()
        .filter_map(|(p, buckets)| {
            let buckets = buckets.as_ref()?;
            let pts = buckets
                .iter()
                .enumerate()
                .filter_map(|(k, b)| {
                    let t = (k as f64 + 0.5) * urms.bucket_s;
                    b.map(|(lo, hi)| [(t, f64::from(lo)), (t, f64::from(hi))])
                })
                .flatten()
                .collect();
            Some((std::format!("L{}", p + 1), pts))
        })
        .collect();
    let span = urms
        .phases
        .iter()
        .flatten()
        .map(Vec::len)
        .max()
        .unwrap_or(1) as f64
        * urms.bucket_s;
    let mut top = Panel::lines("Urms(1/2) (V) - time (s)", envelope, span);
    top.bands = events
        .iter()
        .map(|e| Band {
            from: e.from_s,
            to: e.to_s,
            label: e.kind.to_string(),
        })
        .collect();
    let bars: Vec<(String, Vec<(f64, f64)>)> = harmonics_pct
        .iter()
        .enumerate()
        .filter_map(|(p, h)| {
            let pts = h
                .as_ref()?
                .iter()
                .enumerate()
                .map(|(k, v)| ((k + 2) as f64, *v))
                .collect();
            Some((std::format!("L{}", p + 1), pts))
        })
        .collect();
    let bottom = Panel {
        title: "mean voltage harmonics (% of H1) - order".into(),
        series: bars,
        x_end: 50.0,
        style: Style::Bars,
        bands: Vec::new(),
    };
    render(vec![top, bottom], png)
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
