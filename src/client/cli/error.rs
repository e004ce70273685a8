//! What a subcommand can fail with, and the exit code for each.

use std::string::String;

use crate::client::ClientError;
use crate::client::recording::RecordingError;

/// Everything a subcommand can fail with; `Display` is the one line printed after `smartmeter: error: `.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Talking to the meter failed or the meter refused.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: RecordingError,
    },
    /// An argument is invalid (beyond what clap checks).
    #[error("{0}")]
    Usage(String),
    /// The meter refused because it has nothing to report yet (`getPQ` before an interval of
    /// that length completed): its words and what to do about it.
    #[error("{0}")]
    NotReady(String),
    /// Packets were lost during a recording.
    #[error("{0}")]
    DataLoss(String),
    /// Analysis failed.
    #[error(transparent)]
    Analyze(#[from] crate::client::analyze::AnalyzeError),
    /// The collector could not start.
    #[error(transparent)]
    Collect(#[from] crate::client::collect::CollectError),
    /// Writing to stdout failed (closed pipe).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Client(e) if e.is_refusal() => 3,
            CliError::Client(ClientError::InvalidHost { .. } | ClientError::InvalidCommand(_)) => 2,
            CliError::Usage(_)
            | CliError::Collect(crate::client::collect::CollectError::Usage(_)) => 2,
            CliError::NotReady(_) => 3,
            CliError::DataLoss(_) => 4,
            _ => 1,
        }
    }

    /// Stdout was closed by its reader (`smartmeter log … | head`): not worth a message.
    pub(crate) fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}
