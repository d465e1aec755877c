//! `grid-worker`: the reference phone client (contract: "`grid-worker`"). Every command opens
//! the replica file; only `login` and `sync` talk to the server, every other command works
//! offline. A command that creates a record prints its id alone on standard output; `sync`,
//! `status` and `export` print JSON. Exit status 0 on success; otherwise one line on standard
//! error and the status of [`error::CliError::exit_status`].
//!
//! - [`cli`]: the arguments (clap);
//! - [`commands`]: what each command does over sync-core;
//! - [`error`]: the error type, its one-line message and exit status.

mod cli;
mod commands;
mod error;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return argument_error(&e),
    };
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("grid-worker: {}", e.one_line());
            ExitCode::from(e.exit_status())
        }
    }
}

/// `--help` and `--version` print in full (status 0); any other argument error is reduced to
/// one line (status 2).
fn argument_error(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprintln!("error: a subcommand is missing (see --help)");
            ExitCode::from(2)
        }
        _ => {
            // clap's message may continue on indented lines (the missing arguments) before
            // its usage section: fold those into the one line.
            let text = e.render().to_string();
            let parts: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
                .collect();
            if parts.is_empty() {
                eprintln!("error: bad arguments (see --help)");
            } else {
                eprintln!("{}", parts.join(" "));
            }
            ExitCode::from(2)
        }
    }
}
