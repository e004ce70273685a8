//! `record`: a sampling session into a file, with a progress bar, Ctrl-C handling and a summary.

use std::format;
use std::process::ExitCode;
use std::string::{String, ToString};
use std::time::Duration;
use std::vec::Vec;

use super::args::{Cli, CliCommand};
use super::error::CliError;
use super::output::Out;
use super::signal::{Signals, Stop};
use crate::client::recording::{Format, PendingRecording, RecordingMeta, RecordingStatus};
use crate::client::{ClientError, Response, SampleStream};
use crate::wire::command::{Measures, SampleRequest, StreamType};
use crate::wire::log::format_unix_millis;
use crate::wire::reply::Reply;

/// `record`: checks every argument and creates `FILE.part` before the meter is contacted; then
/// samples until rate × duration samples are written, Ctrl-C or SIGTERM (the meter is stopped and
/// the file finalised either way), or an error (the file stays `.part`, status `incomplete`).
pub(crate) async fn record(cli: &Cli, printer: &Out) -> Result<ExitCode, CliError> {
    let CliCommand::Record {
        meter,
        rate,
        measures,
        duration,
        out,
        udp,
        no_zero_fill,
        ..
    } = &cli.command
    else {
        return Err(CliError::Usage("not a record command".into()));
    };
    let measures = Measures::parse(measures).ok_or_else(|| {
        CliError::Usage(format!(
            "unknown measures `{measures}` (use v,i, v,i_L1, v,i_L2, v,i_L3, p,q or v,i_RMS)"
        ))
    })?;
    let max_rate = if measures.is_derived() {
        SampleRequest::MAX_DERIVED_RATE_HZ
    } else {
        SampleRequest::MAX_RATE_HZ
    };
    if !(1..=max_rate).contains(rate) {
        return Err(CliError::Usage(format!(
            "rate must be 1-{max_rate} Hz for these measures"
        )));
    }
    let total = (f64::from(*rate) * duration.as_secs_f64()).round() as u64;
    if total == 0 {
        return Err(CliError::Usage(
            "rate × duration is less than one sample".into(),
        ));
    }
    if Format::from_path(out).is_none() {
        return Err(CliError::Usage(format!(
            "{}: unknown recording format (use .wav, .csv or .f32)",
            out.display()
        )));
    }
    let path_text = out.display().to_string();
    let file_err = |source| CliError::File {
        path: path_text.clone(),
        source,
    };
    // Fail on an unwritable destination before the meter starts sampling.
    let pending = PendingRecording::create(out).map_err(file_err)?;
    let mut signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            pending.discard();
            return Err(e.into());
        }
    };

    let started = async {
        let client = meter.connect().await?;
        let mut req = SampleRequest::new(StreamType::Tcp);
        req.measures = measures;
        req.rate_hz = *rate;
        let stream = match udp {
            Some(port) => {
                req.stream = StreamType::Udp { port: *port };
                client.sample_udp(req).await?
            }
            None => client.sample(req).await?,
        };
        Ok::<_, CliError>((client, stream))
    };
    let (client, mut stream) = match started.await {
        Ok(x) => x,
        Err(e) => {
            pending.discard();
            return Err(e);
        }
    };
    stream.set_zero_fill(!*no_zero_fill);
    let info = stream.info().clone();
    let mut meta = RecordingMeta::new(info.rate_hz, info.channels.clone(), info.units.clone());
    meta.start_unix_us = info.start_unix_us;
    meta.name = Some(client.connect_info().name.clone()).filter(|n| !n.is_empty());
    let mut writer = pending.start(meta).map_err(file_err)?;
    let ch = info.channel_count();

    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} samples  {rate}  {msg}",
        )
        .map(|s| s.with_key("rate", rate_key))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message("lost packets: 0");

    let mut failure: Option<CliError> = None;
    let mut stopped_by: Option<Stop> = None;
    let mut last_checkpoint = tokio::time::Instant::now();
    let status = loop {
        tokio::select! {
            stop = signals.recv() => {
                stopped_by = Some(stop);
                break RecordingStatus::Interrupted;
            }
            block = stream.next() => match block {
                None => {
                    failure = Some(ClientError::Closed { reason: Some("the session was stopped by someone else".into()) }.into());
                    break RecordingStatus::Incomplete;
                }
                Some(Err(e)) => {
                    failure = Some(e.into());
                    break RecordingStatus::Incomplete;
                }
                Some(Ok(block)) => {
                    let left = total - writer.frames();
                    let take = (block.frames() as u64).min(left) as usize * ch;
                    if let Err(e) = writer.write(block.samples.get(..take).unwrap_or_default()) {
                        failure = Some(file_err(e));
                        break RecordingStatus::Incomplete;
                    }
                    bar.set_position(writer.frames());
                    if block.lost_packets > 0 {
                        bar.set_message(format!("lost packets: {}", stream.stats().lost_packets));
                    }
                    if writer.frames() >= total {
                        break RecordingStatus::Complete;
                    }
                    if last_checkpoint.elapsed() >= Duration::from_secs(1) {
                        last_checkpoint = tokio::time::Instant::now();
                        if let Err(e) = writer.checkpoint() {
                            failure = Some(file_err(e));
                            break RecordingStatus::Incomplete;
                        }
                    }
                }
            }
        }
    };
    bar.finish_and_clear();
    let stats = stream.stats();
    writer.set_lost_packets(stats.lost_packets);
    let frames = writer.frames();
    // Stop the meter (unless the connection is gone), then finalise the file.
    let stop = if matches!(failure, Some(CliError::Client(_))) {
        drop(stream);
        None
    } else {
        stop_quietly(stream).await
    };
    let path = writer.finish(status).map_err(file_err)?;

    let mut summary: Vec<String> = Vec::new();
    let secs = frames as f64 / f64::from(info.rate_hz);
    let what = match status {
        RecordingStatus::Complete => "recorded",
        RecordingStatus::Interrupted => "interrupted after",
        RecordingStatus::Recording | RecordingStatus::Incomplete => "INCOMPLETE:",
    };
    summary.push(format!(
        "{what} {frames} samples × {ch} channels at {} Hz ({secs:.3} s) in {}",
        info.rate_hz,
        path.display()
    ));
    summary.push(format!(
        "packets: {} received, {} lost ({} samples zero-filled)",
        stats.packets, stats.lost_packets, stats.zero_filled
    ));
    if let Some(Reply::Stopped(s)) = stop.as_ref().map(Response::reply) {
        summary.push(format!(
            "meter: {} samples taken, {} sent, average rate {:.2} Hz",
            s.samples, s.sent_samples, s.avg_rate_hz,
        ));
    }
    if printer.json {
        let o = serde_json::json!({
            "file": path.display().to_string(),
            "status": status.as_str(),
            "samples": frames,
            "channels": info.channels,
            "rate": info.rate_hz,
            "startTs": match info.response.reply() {
                Reply::SampleStarted(s) => Some(format_unix_millis(s.start_ts_ms)),
                _ => None,
            },
            "packets": stats.packets,
            "lostPackets": stats.lost_packets,
            "zeroFilled": stats.zero_filled,
            // The meter's own stop reply object, as it sent it.
            "stop": stop.as_ref().and_then(|s| serde_json::from_str::<serde_json::Value>(s.json()).ok()),
        });
        printer.print(&format!("{o}\n"))?;
    } else {
        printer.print(&format!("{}\n", summary.join("\n")))?;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if stats.lost_packets > 0 {
        return Err(CliError::DataLoss(format!(
            "lost {} packets ({} samples zero-filled); the file is complete but has gaps",
            stats.lost_packets, stats.zero_filled
        )));
    }
    Ok(match stopped_by {
        Some(stop) => stop.exit_code(),
        None => ExitCode::SUCCESS,
    })
}

/// The progress bar's rate: samples per second with one decimal and no digit grouping
/// (`1204.8/s`; indicatif's own `{per_sec}` prints `1,204.8255/s`).
fn rate_key(state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{}", rate_text(state.per_sec()));
}

fn rate_text(per_sec: f64) -> String {
    if per_sec.is_finite() {
        format!("{per_sec:.1}/s")
    } else {
        "-/s".into()
    }
}

async fn stop_quietly(stream: SampleStream) -> Option<Response> {
    stream.stop().await.ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rates_print_plainly() {
        assert_eq!(super::rate_text(1204.8255), "1204.8/s");
        assert_eq!(super::rate_text(0.0), "0.0/s");
        assert_eq!(super::rate_text(f64::NAN), "-/s");
    }
}
