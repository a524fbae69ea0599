//! `report.html`: one self-contained page (inline SVG and CSS, no script,
//! nothing fetched) that shows what a run did and what went wrong.
//!
//! - This file: what a report is made from ([`Input`], read by [`load`]
//!   from a run directory, a `history.jsonl` or a Jepsen `history.edn`),
//!   what the sections share ([`View`]), and writing the file ([`write()`],
//!   [`write_run_report`]).
//! - [`page`]: the page and its style; [`verdict`]: section 1, the
//!   verdicts, options and the command that reproduces the run.
//! - [`timeline`]: section 2; [`latency`]: section 3 (latency, throughput);
//!   [`anomaly`]: section 4; [`nodes`]: section 5 and the node rows of the
//!   timeline; [`faults`]: fault intervals from the nemesis ops.
//! - [`html`] and [`svg`]: escaping, formatting and the SVG writer.
//!
//! Everything read from files is untrusted and escaped. The markup is
//! XHTML-compatible (every element closed, attributes quoted), so an XML
//! parser can check a report is well formed.

pub mod anomaly;
pub mod faults;
pub mod html;
pub mod latency;
pub mod nodes;
pub mod page;
pub mod svg;
pub mod timeline;
pub mod verdict;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::check::{self, CheckOptions, Results};
use crate::history::events::NodeLog;
use crate::history::read::{Format, ReadOptions, read_history};
use crate::history::{History, Operation, read_jsonl};

/// Why a report could not be made: the same inputs as a check, the same
/// errors.
pub use crate::check::CheckError as ReportError;

/// What the history came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A run directory: history, results, `run.json` and node event logs.
    RunDir,
    /// A bare `history.jsonl`.
    Jsonl,
    /// A Jepsen `history.edn`.
    Edn,
}

/// Everything a report is made from.
#[derive(Debug)]
pub struct Input {
    /// The path the user gave.
    pub path: PathBuf,
    /// What kind of input the path is.
    pub source: Source,
    /// The history.
    pub history: History,
    /// The nodes' event logs (none for a bare history or a Jepsen import).
    pub logs: Vec<NodeLog>,
    /// The checkers' results: `None` when the history was not checked.
    pub results: Option<Results>,
    /// `run.json`, else the `run` section of the results, else `{}`.
    pub run: serde_json::Value,
    /// Where the results came from, and other things the page should say.
    pub notes: Vec<String>,
}

/// How [`load`] gets results when none are saved.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    /// Run the checkers (in memory, nothing is written) when there is no
    /// `results.json`.
    pub check: bool,
    /// The checkers' budget when they run.
    pub check_options: CheckOptions,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            check: true,
            check_options: CheckOptions::default(),
        }
    }
}

/// Reads a run directory (history, event logs, `run.json`, `results.json`),
/// a `history.jsonl`, or a Jepsen `.edn` file.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Input, ReportError> {
    let meta = std::fs::metadata(path).map_err(|source| ReportError::NotFound {
        path: path.to_path_buf(),
        source,
    })?;
    let mut input = if meta.is_dir() {
        load_run_dir(path, None)?
    } else {
        // Any format `check` reads, told from the content.
        let loaded = read_history(path, &ReadOptions::default())?;
        let source = match loaded.format {
            Format::Jsonl => Source::Jsonl,
            Format::Edn | Format::Text => Source::Edn,
        };
        let history = loaded.history;
        Input {
            path: path.to_path_buf(),
            source,
            history,
            logs: Vec::new(),
            results: None,
            run: serde_json::json!({}),
            notes: Vec::new(),
        }
    };
    if input.results.is_none() && opts.check {
        let results = check::check_history(&input.history, &input.logs, &opts.check_options);
        input.notes.push(match input.source {
            Source::RunDir => "no results.json: the checkers ran for this report (nothing saved; `harness check` saves results.json)".to_string(),
            _ => "the checkers ran for this report".to_string(),
        });
        input.results = Some(results);
    }
    Ok(input)
}

/// Reads a run directory; `results` replaces its `results.json`.
fn load_run_dir(dir: &Path, results: Option<Results>) -> Result<Input, ReportError> {
    let history_path = dir.join("history.jsonl");
    if !history_path.is_file() {
        return Err(ReportError::NoHistory(dir.to_path_buf()));
    }
    let history = read_jsonl(&history_path)?;
    let logs = crate::db::DbKind::of_run_dir(dir).run_events(dir)?.logs;
    let results = match results {
        Some(r) => Some(r),
        None => read_json::<Results>(&dir.join("results.json"))?,
    };
    let mut run = read_json::<serde_json::Value>(&dir.join("run.json"))?;
    if run.is_none() {
        run = results.as_ref().map(|r| r.run.clone());
    }
    Ok(Input {
        path: dir.to_path_buf(),
        source: Source::RunDir,
        history,
        logs,
        results,
        run: run.unwrap_or_else(|| serde_json::json!({})),
        notes: Vec::new(),
    })
}

/// A JSON file if it exists; malformed content names the file and line.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, ReportError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ReportError::NotFound {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ReportError::Json {
            path: path.to_path_buf(),
            line: e.line(),
            message: e.to_string(),
        })
}

/// What the sections share: the input and what is derived from it once.
pub struct View<'a> {
    /// What the report is about.
    pub input: &'a Input,
    /// Client operations in invocation order.
    pub ops: Vec<Operation<'a>>,
    /// The last time in the history (ns); every chart spans `[0, end]`.
    pub end: u64,
    /// The faults, ordered by start.
    pub faults: Vec<faults::Fault>,
    /// Nemesis events without duration.
    pub markers: Vec<faults::Marker>,
    /// Every node named anywhere, with what the report says about it.
    pub nodes: Vec<nodes::NodeInfo>,
    /// How node event times map to history time, when they can.
    pub clock: Option<nodes::Clock>,
    /// Failing operations to point at on the timeline.
    pub anomalies: Vec<anomaly::Mark>,
}

impl<'a> View<'a> {
    /// Derives what the sections share from `input`.
    pub fn new(input: &'a Input) -> View<'a> {
        let end = input
            .history
            .ops()
            .iter()
            .map(|o| o.time)
            .max()
            .unwrap_or(0)
            .max(1);
        let (faults, markers) = faults::faults(&input.history);
        let clock = nodes::Clock::new(&input.run, &input.logs);
        let nodes = nodes::nodes(
            &input.history,
            &input.logs,
            &input.run,
            &faults,
            clock.as_ref(),
            end,
        );
        View {
            input,
            ops: input.history.operations().collect(),
            end,
            faults,
            markers,
            nodes,
            clock,
            anomalies: anomaly::marks(input.results.as_ref()),
        }
    }
}

/// The whole page.
pub fn render(input: &Input) -> String {
    page::page(&View::new(input))
}

/// Where `harness report PATH` writes by default: `PATH/report.html` for a
/// run directory, `report.html` beside a history file.
pub fn default_output(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("report.html")
    } else {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join("report.html")
    }
}

/// Renders and writes atomically (a temporary file renamed over `out`).
/// Returns the size in bytes.
pub fn write(input: &Input, out: &Path) -> Result<usize, ReportError> {
    let text = render(input);
    let werr = |source| ReportError::Write {
        path: out.to_path_buf(),
        source,
    };
    let tmp = out.with_extension("html.tmp");
    std::fs::write(&tmp, &text).map_err(werr)?;
    std::fs::rename(&tmp, out).map_err(werr)?;
    Ok(text.len())
}

/// `report.html` for a run directory just checked (`results`), or not
/// checked (`None`, as with `--no-check`). Returns the file written.
pub fn write_run_report(dir: &Path, results: Option<&Results>) -> Result<PathBuf, ReportError> {
    let mut input = load_run_dir(dir, results.cloned())?;
    if results.is_none() {
        input.results = None;
        input.notes.push(
            "the checkers were skipped (--no-check): `harness check` on this directory checks it and rewrites this report"
                .to_string(),
        );
    }
    let out = dir.join("report.html");
    write(&input, &out)?;
    Ok(out)
}
