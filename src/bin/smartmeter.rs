//! `smartmeter`: discover, command, record and analyse SmartMeter devices (see `smartmeter --help`).

fn main() -> std::process::ExitCode {
    smartmeter::client::cli::main()
}
