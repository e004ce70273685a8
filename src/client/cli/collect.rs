//! `smartmeter collect`: the signal handling around [`crate::client::collect`] (its arguments are
//! in `args`).

use std::process::ExitCode;
use std::sync::Arc;

use super::args::CollectArgs;
use super::error::CliError;
use crate::client::collect;
use crate::client::collect::progress::Log;

/// SIGINT or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the collector until SIGINT/SIGTERM; exit 0 after flushing.
pub(crate) async fn collect(json: bool, args: &CollectArgs) -> Result<ExitCode, CliError> {
    let log = Arc::new(Log::new(json || args.json));
    collect::run(args.config(args.timeout), log, stop_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
