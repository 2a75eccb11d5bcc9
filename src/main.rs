//! The `engage-sync` binary: parse, run, turn the outcome into an exit code.

use clap::Parser;

use engage_sync::cli::Cli;
use engage_sync::commands::exit::{exit_code_for, is_lock_skip};
use engage_sync::error::{hint_for, is_broken_pipe, ExitCode};
use engage_sync::printable::escape;

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            let code = if e.use_stderr() {
                ExitCode::Usage
            } else {
                ExitCode::Ok
            };
            return std::process::ExitCode::from(code.code());
        }
    };
    match engage_sync::commands::run(cli) {
        Ok(code) => std::process::ExitCode::from(code.code()),
        Err(err) if is_broken_pipe(&err) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // Escaped: an error may name a file, and file names come from outside.
            let level = if is_lock_skip(&err) {
                "warning"
            } else {
                "error"
            };
            eprintln!("engage-sync: {level}: {}", escape(&format!("{err:#}")));
            if let Some(hint) = hint_for(&err) {
                eprintln!("engage-sync: {hint}");
            }
            std::process::ExitCode::from(exit_code_for(&err).code())
        }
    }
}
