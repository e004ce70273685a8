//! The `smartmeter` command-line tool (feature `cli`): argument parsing (clap), human and `--json`
//! output, and one function per subcommand. The binary `src/bin/smartmeter.rs` only calls [`main`].
//!
//! Not library API: the module is hidden and [`main`] is its only public item. The tool is built on
//! crate-private parts of the client (the connection task's requests, recording internals), so
//! moving it into the binary would make those public; one hidden entry point keeps the library's
//! surface what a host-tool author needs.
//!
//! Exit codes: 0 success (also when stdout is closed early, e.g. piped into `head`); 1 an error
//! (unreachable host, connection lost, unreadable or unwritable file); 2 bad arguments (checked
//! before the meter is contacted wherever the tool can tell, with the same rules the meter
//! applies); 3 the meter refused the command (its `msg` is printed) or is busy; 4 a recording lost
//! packets (the file is complete, zero-filled, and says so); 130 / 143 a recording stopped by
//! Ctrl-C / SIGTERM (the meter is stopped and the file finalised).
//!
//! | file | what |
//! |---|---|
//! | `args` | the command line (clap) and the checks of its values |
//! | `error` | `CliError` and the exit codes |
//! | `run` | the dispatch, and the subcommands that talk to one meter (`info`, `get`, `cmd`, `set`, `log`) |
//! | `pq` | the power-quality subcommands `pq` and `events` |
//! | `record`, `analyze`, `collect` | the subcommands with files, signals or a broker |
//! | `output`, `plot`, `signal` | human and `--json` output, PNG plots, Ctrl-C / SIGTERM |

mod analyze;
mod analyze_pq;
mod args;
mod collect;
mod error;
mod output;
mod plot;
mod pq;
mod record;
mod run;
mod signal;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Parses the arguments, runs the subcommand on a tokio runtime, prints one error line on failure.
pub fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            std::eprintln!("smartmeter: error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(run::run(cli));
    // Do not wait for blocking tasks (mDNS threads, stdin) at exit.
    rt.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(code) => code,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            std::eprintln!("smartmeter: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
