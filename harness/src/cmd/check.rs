//! `harness check PATH`: runs the checkers and prints a summary; for a run
//! directory, rewrites its results.json and report.html. The verdict is
//! printed and sets the exit status even when those cannot be written.

use crate::check::linearizable::InitialValues;
use crate::check::{CheckError, CheckOptions, Interpretation, Verdict, check_path, summary};
use crate::cli::{CheckArgs, InputArgs};
use crate::history::jepsen::Dialect;
use crate::history::read::ReadOptions;

pub fn run(args: &CheckArgs) -> Result<Verdict, CheckError> {
    let opts = CheckOptions {
        budget: args.budget.duration(),
        ..CheckOptions::default()
    };
    let checked = check_path(&args.path, &opts, &interpretation(&args.input)?)?;
    print!(
        "{}",
        summary::render(&checked.results, &checked.history.display().to_string())
    );
    if args.timings {
        let t = &checked.timings;
        println!(
            "timings: read {:.3} s, check {:.3} s (linearizable {:.3} s)",
            t.read.as_secs_f64(),
            t.check.as_secs_f64(),
            checked.results.checkers.linearizable.elapsed_ms as f64 / 1e3
        );
    }
    match &checked.written {
        None => {}
        Some(Ok(written)) => {
            println!("wrote {}", written.display());
            // A run directory's report follows its results.
            match crate::report::write_run_report(&args.path, Some(&checked.results)) {
                Ok(path) => println!("wrote {}", path.display()),
                Err(e) => eprintln!("warning: report.html not rewritten: {e}"),
            }
        }
        Some(Err(e)) => {
            eprintln!("warning: results.json not written ({e}); the verdict above stands");
        }
    }
    let verdict = checked.results.valid;
    // The process exits next: letting the kernel take back a history of
    // millions of operations is quicker than freeing them one by one.
    std::mem::forget(checked.loaded);
    Ok(verdict)
}

/// The reading and initial-value flags, checked.
pub fn interpretation(args: &InputArgs) -> Result<Interpretation, CheckError> {
    let mut initial = InitialValues::default();
    for arg in &args.initial_values {
        initial
            .add_arg(arg)
            .map_err(|e| CheckError::Usage(format!("--initial-value {arg}: {e}")))?;
    }
    Ok(Interpretation {
        read: ReadOptions {
            format: args.format,
            ignore_times: args.ignore_times,
            strings: args.strings,
            dialect: Dialect {
                fail_cas_is_mismatch: args.fail_cas_mismatch,
            },
        },
        initial,
    })
}
