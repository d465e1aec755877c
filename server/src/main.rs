//! `grid-server` binary: parse the command line and hand over to `grid_server::cli`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = grid_server::cli::Cli::parse();
    match grid_server::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, for people and scripts.
            eprintln!("error: {}", grid_server::cli::one_line(&err));
            ExitCode::FAILURE
        }
    }
}
