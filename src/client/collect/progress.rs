//! What the collector tells its operator: a one-line progress display on a terminal (meters seen,
//! rows/s, rows buffered), or one JSON object per line with `--json` (for a log shipper), or plain
//! text lines when stderr is not a terminal.
//!
//! JSON lines go to stdout, each `{"ts":<unix s>,"event":<kind>,…}`; human text goes to stderr.

use std::io::{IsTerminal, Write};
use std::string::String;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::metrics::Stats;

/// How events are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Nothing (library use, tests).
    Quiet,
    /// JSON lines on stdout.
    Json,
    /// Text lines on stderr; with a live progress line when stderr is a terminal.
    Text { tty: bool },
}

/// Where and how events are reported.
#[derive(Debug)]
pub struct Log {
    mode: Mode,
    /// Whether a progress line is on screen (and must be cleared before a message).
    line_shown: Mutex<bool>,
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Log {
    /// `json`: JSON lines on stdout; else text on stderr, with a live line when it is a terminal.
    pub fn new(json: bool) -> Log {
        let mode = if json {
            Mode::Json
        } else {
            Mode::Text {
                tty: std::io::stderr().is_terminal(),
            }
        };
        Log {
            mode,
            line_shown: Mutex::new(false),
        }
    }

    /// A log that prints nothing.
    pub fn quiet() -> Log {
        Log {
            mode: Mode::Quiet,
            line_shown: Mutex::new(false),
        }
    }

    fn tty(&self) -> bool {
        self.mode == Mode::Text { tty: true }
    }

    /// An event frequent enough to clutter a terminal (a checkpoint every minute per file): in the
    /// JSON log only.
    pub fn detail(&self, kind: &str, fields: Value) {
        if matches!(self.mode, Mode::Json) {
            self.event(kind, "", fields);
        }
    }

    /// Reports one event: `text` for people, `fields` (an object) for `--json`.
    pub fn event(&self, kind: &str, text: &str, fields: Value) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Json => {
                let mut obj = json!({"ts": now_s(), "event": kind});
                if let (Some(o), Value::Object(f)) = (obj.as_object_mut(), fields) {
                    o.extend(f);
                }
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{obj}");
                let _ = out.flush();
            }
            Mode::Text { .. } => {
                let mut err = std::io::stderr().lock();
                if let Ok(mut shown) = self.line_shown.lock()
                    && *shown
                {
                    let _ = write!(err, "\r\x1b[2K");
                    *shown = false;
                }
                let _ = writeln!(err, "smartmeter collect: {text}");
            }
        }
    }

    /// Repaints the progress line (terminal only).
    fn progress(&self, text: &str) {
        if !self.tty() {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{text}");
        let _ = err.flush();
        if let Ok(mut shown) = self.line_shown.lock() {
            *shown = true;
        }
    }

    /// Ends the progress line (before exit).
    pub fn finish(&self) {
        if let Ok(mut shown) = self.line_shown.lock()
            && *shown
        {
            let _ = writeln!(std::io::stderr());
            *shown = false;
        }
    }
}

/// One line of numbers: meters, rows/s since the last report, rows buffered.
pub fn summary(stats: &Stats, rate: f64) -> (String, Value) {
    let meters = stats.meters();
    let buffered = stats.buffered();
    let written = stats.parquet.written() + stats.postgres.written();
    let errors = stats.parquet.write_errors.get() + stats.postgres.write_errors.get();
    let text = std::format!(
        "{meters} meters, {rate:.0} rows/s, {buffered} buffered, {written} written, {} messages, {errors} write errors",
        stats.messages.get()
    );
    let fields = json!({
        "meters": meters,
        "rows_per_s": (rate * 10.0).round() / 10.0,
        "messages": stats.messages.get(),
        "invalid": stats.invalid.get(),
        "rows_received": stats.rows_received.get(),
        "rows_written": written,
        "rows_buffered": buffered,
        "rows_spooled": stats.postgres.rows_spooled.get(),
        "write_errors": errors,
        "rows_lost": stats.parquet.rows_lost.get() + stats.postgres.rows_lost.get(),
        "broker_reconnects": stats.broker_reconnects.get(),
    });
    (text, fields)
}

/// Reports progress until dropped: every second on a terminal, every 10 s as JSON, every 60 s as
/// a text line otherwise.
pub async fn report(log: Arc<Log>, stats: Arc<Stats>) {
    let every = match log.mode {
        Mode::Quiet => return,
        Mode::Text { tty: true } => Duration::from_secs(1),
        Mode::Json => Duration::from_secs(10),
        Mode::Text { tty: false } => Duration::from_secs(60),
    };
    let mut last = (Instant::now(), stats.rows_received.get());
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let rows = stats.rows_received.get();
        let dt = last.0.elapsed().as_secs_f64().max(1e-3);
        let rate = rows.saturating_sub(last.1) as f64 / dt;
        last = (Instant::now(), rows);
        let (text, fields) = summary(&stats, rate);
        if log.tty() {
            log.progress(&text);
        } else {
            log.event("stats", &text, fields);
        }
    }
}
