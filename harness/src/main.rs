//! The `harness` binary: parse the command line, run the subcommand, and
//! map its outcome to the exit status of `docs/contract.md`, here and
//! nowhere else: 0 valid, 1 invalid, 2 unknown, 254 bad arguments or
//! input, 255 the harness itself failed.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use harness::check::{CheckError, Verdict};
use harness::cli::{Cli, Command};
use harness::run::RunError;

const BAD_INPUT: u8 = 254;
const INTERNAL: u8 = 255;

fn main() -> ExitCode {
    // Node mode: the harness ships the node, so a run needs no second
    // binary. `harness node FLAGS` is exactly `node FLAGS`.
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == "node") {
        let code = node::main_with_args(std::iter::once("node".into()).chain(args));
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    harness::sandbox::enter();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ExitCode::SUCCESS,
                _ => ExitCode::from(BAD_INPUT),
            };
        }
    };
    match run(cli.command) {
        Ok(Verdict::Valid) => ExitCode::SUCCESS,
        Ok(Verdict::Invalid) => ExitCode::from(1),
        Ok(Verdict::Unknown) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(error_status(&e))
        }
    }
}

/// One match arm per subcommand.
fn run(command: Command) -> anyhow::Result<Verdict> {
    Ok(match command {
        Command::Run(args) => harness::cmd::run::run(&args)?,
        Command::TestAll(args) => harness::cmd::test_all::run(&args)?,
        Command::Selftest(args) => harness::cmd::selftest::run(&args)?,
        Command::Bench(args) => harness::cmd::bench::run(&args)?,
        Command::Kv(args) => harness::cmd::kv::run(&args)?,
        Command::Check(args) => harness::cmd::check::run(&args)?,
        Command::Report(args) => harness::cmd::report::run(&args)?,
        Command::BenchCheck(args) => harness::cmd::bench_check::run(&args)?,
    })
}

/// Bad input (254) or a failure of the harness (255).
fn error_status(e: &anyhow::Error) -> u8 {
    if let Some(e) = e.downcast_ref::<CheckError>() {
        return if e.is_bad_input() {
            BAD_INPUT
        } else {
            INTERNAL
        };
    }
    if let Some(e) = e.downcast_ref::<harness::report::ReportError>() {
        return if e.is_bad_input() {
            BAD_INPUT
        } else {
            INTERNAL
        };
    }
    if let Some(e) = e.downcast_ref::<RunError>() {
        return if e.is_bad_input() {
            BAD_INPUT
        } else {
            INTERNAL
        };
    }
    INTERNAL
}
