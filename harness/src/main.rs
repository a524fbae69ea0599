//! The `harness` binary: parse the command line, run the subcommand, and
//! map its outcome to the exit status of `docs/contract.md`, here and
//! nowhere else: 0 valid, 1 invalid, 2 unknown, 254 bad arguments or
//! input, 255 the harness itself failed. A subcommand's error says whose fault it is
//! ([`harness::error::Blame`]). Before `run`, `test-all`, `selftest` and
//! `bench`, the process enters its own namespaces ([`harness::sandbox`])
//! while it has one thread, and the network is chosen
//! ([`harness::net::choose`]); no thread exists before that.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use harness::check::Verdict;
use harness::cli::{Cli, Command};
use harness::error::{Failed, Fault};
use harness::net::NetworkKind;

fn main() -> ExitCode {
    // Node mode: the harness ships the node, so a run needs no second
    // binary. `harness node FLAGS` is exactly `node FLAGS`, except that bad
    // arguments exit 254 as every other subcommand's do (the node says 2).
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == "node") {
        let code = node::main_with_args(std::iter::once("node".into()).chain(args));
        return match code {
            NODE_BAD_ARGUMENTS => ExitCode::from(Fault::BadInput.exit_status()),
            code => ExitCode::from(code.clamp(0, 255) as u8),
        };
    }
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ExitCode::SUCCESS,
                _ => ExitCode::from(Fault::BadInput.exit_status()),
            };
        }
    };
    // Subcommands that start clusters move into namespaces of their own
    // first, while this is the only thread (a namespace is per thread),
    // then settle the network: a refused `--network netns` is one line.
    if let Some(network) = cli.command.network_mut() {
        harness::sandbox::enter(network.network != Some(NetworkKind::Proxy));
        match harness::net::choose(network.network) {
            Ok(chosen) => {
                println!("{}", chosen.line());
                network.network = Some(chosen.kind);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(Fault::BadInput.exit_status());
            }
        }
    }
    match run(cli.command) {
        Ok(Verdict::Valid) => ExitCode::SUCCESS,
        Ok(Verdict::Invalid) => ExitCode::from(1),
        Ok(Verdict::Unknown) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.fault.exit_status())
        }
    }
}

/// What `node::main_with_args` returns for flags it refuses.
const NODE_BAD_ARGUMENTS: i32 = 2;

/// One match arm per subcommand.
fn run(command: Command) -> Result<Verdict, Failed> {
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
