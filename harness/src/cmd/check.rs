//! `harness check PATH`: runs the checkers and prints a summary.

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
    }
    Ok(checked.results.valid)
}
