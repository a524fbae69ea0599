//! `harness report PATH`: (re)writes the HTML report of a run directory, a
//! history.jsonl or a Jepsen history.edn.

use crate::check::{CheckOptions, Verdict};
use crate::cli::ReportArgs;
use crate::report::{self, LoadOptions, ReportError};

/// Writes the report; the verdict is always `Valid` (exit 0) once it is
/// written: judging is `harness check`'s job.
pub fn run(args: &ReportArgs) -> Result<Verdict, ReportError> {
    let opts = LoadOptions {
        check: !args.no_check,
        check_options: CheckOptions {
            budget: args.budget.duration(),
            ..CheckOptions::default()
        },
    };
    let input = report::load(&args.path, &opts)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| report::default_output(&args.path));
    let bytes = report::write(&input, &out)?;
    println!(
        "wrote {} ({:.1} KB, verdict: {})",
        out.display(),
        bytes as f64 / 1024.0,
        input
            .results
            .as_ref()
            .map_or("not checked", |r| r.valid.as_str())
    );
    Ok(Verdict::Valid)
}
