//! `harness check PATH`: runs the checkers and prints a summary; for a run
//! directory, rewrites its results.json and report.html.

use crate::check::{CheckError, CheckOptions, Verdict, check_path, summary};
use crate::cli::CheckArgs;

pub fn run(args: &CheckArgs) -> Result<Verdict, CheckError> {
    let opts = CheckOptions {
        budget: args.budget.duration(),
        ..CheckOptions::default()
    };
    let checked = check_path(&args.path, &opts)?;
    print!(
        "{}",
        summary::render(&checked.results, &checked.history.display().to_string())
    );
    if let Some(written) = &checked.written {
        println!("wrote {}", written.display());
        // A run directory's report follows its results.
        match crate::report::write_run_report(&args.path, Some(&checked.results)) {
            Ok(path) => println!("wrote {}", path.display()),
            Err(e) => eprintln!("warning: report.html not rewritten: {e}"),
        }
    }
    Ok(checked.results.valid)
}
