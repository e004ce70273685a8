//! `smartmeter-sim`: a virtual 3-phase SmartMeter on real sockets (see `smartmeter::sim`).
//!
//! `cargo sim -- --help` lists the options.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let level = std::env::var("SMARTMETER_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::WARN);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let args = smartmeter::sim::Args::parse();
    match smartmeter::sim::run_blocking(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smartmeter-sim: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
