//! The `procbot` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = procbot::cli::Cli::parse();
    let code = procbot::cli::run(cli, &mut std::io::stdout().lock(), &mut std::io::stderr());
    ExitCode::from(code)
}
