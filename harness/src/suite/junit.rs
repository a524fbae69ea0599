//! JUnit XML, the format CI systems read: one `<testcase>` per run of the
//! matrix (an invalid or undecided run is a `<failure>` carrying the anomaly
//! in words, a crashed run an `<error>`) and per seed of the self-test (a
//! bug not caught is a `<failure>`).

use std::fmt::Write as _;
use std::path::Path;

use super::RunRecord;
use crate::report::html::esc;

/// One testcase, as CI systems show it.
#[derive(Debug)]
pub struct Case {
    /// Groups cases (`test-all.partition`, `selftest.stale-read`).
    pub group: String,
    /// The case's name: the run's cell or the bug and seed.
    pub name: String,
    /// How long it took.
    pub seconds: f64,
    /// How it ended.
    pub outcome: CaseOutcome,
    /// Shown with the case: where its run directories are.
    pub out: String,
}

/// How a case ended, as JUnit says it.
#[derive(Debug)]
pub enum CaseOutcome {
    /// It passed.
    Pass,
    /// The case ran and its verdict was wrong (`type`: why).
    Failure {
        /// The kind of failure (`invalid`, `unknown`, `not-caught`).
        kind: String,
        /// One line: what was wrong.
        message: String,
        /// The details: the summary, with the anomaly in words.
        text: String,
    },
    /// The case could not run to a verdict.
    Error {
        /// One line: why it could not run.
        message: String,
        /// The details.
        text: String,
    },
}

impl From<&RunRecord> for Case {
    /// A run of the matrix passes when every checker found it valid.
    fn from(r: &RunRecord) -> Case {
        let (outcome, out) = match &r.outcome {
            Ok(f) => {
                let word = r.verdict_word();
                let outcome = if word == "valid" {
                    CaseOutcome::Pass
                } else {
                    let message = if f.caught_by.is_empty() {
                        format!("{word}: a checker could not decide")
                    } else {
                        format!("{word}: {}", f.caught_by.join(", "))
                    };
                    CaseOutcome::Failure {
                        kind: word.to_string(),
                        message,
                        text: f.summary.clone(),
                    }
                };
                (
                    outcome,
                    format!("run directory: {}\n{}", f.dir.display(), r.line()),
                )
            }
            Err(e) => (
                CaseOutcome::Error {
                    message: first_line(e).to_string(),
                    text: e.clone(),
                },
                String::new(),
            ),
        };
        Case {
            group: r.group.clone(),
            name: format!("{} seed {}", r.name, r.seed),
            seconds: r.seconds,
            outcome,
            out,
        }
    }
}

/// The JUnit XML of `cases`, as one suite named `suite`.
pub fn render(suite: &str, cases: &[Case]) -> String {
    let failures = cases
        .iter()
        .filter(|c| matches!(c.outcome, CaseOutcome::Failure { .. }))
        .count();
    let errors = cases
        .iter()
        .filter(|c| matches!(c.outcome, CaseOutcome::Error { .. }))
        .count();
    let time: f64 = cases.iter().map(|c| c.seconds).sum();
    let stamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S");
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.3}\">",
        esc(suite),
        cases.len()
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{time:.3}\" timestamp=\"{stamp}\">",
        esc(suite),
        cases.len()
    );
    for c in cases {
        let _ = writeln!(
            x,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
            esc(&c.group),
            esc(&c.name),
            c.seconds
        );
        match &c.outcome {
            CaseOutcome::Pass => {}
            CaseOutcome::Failure {
                kind,
                message,
                text,
            } => {
                let _ = writeln!(
                    x,
                    "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                    esc(kind),
                    esc(message),
                    esc(text)
                );
            }
            CaseOutcome::Error { message, text } => {
                let _ = writeln!(
                    x,
                    "      <error type=\"crashed\" message=\"{}\">{}</error>",
                    esc(message),
                    esc(text)
                );
            }
        }
        if !c.out.is_empty() {
            let _ = writeln!(x, "      <system-out>{}</system-out>", esc(&c.out));
        }
        x.push_str("    </testcase>\n");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// Writes the JUnit XML to `path`, creating its directory.
pub fn write(path: &Path, suite: &str, cases: &[Case]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, render(suite, cases))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Verdict;
    use crate::suite::Finished;

    fn rec(name: &str, outcome: Result<Verdict, &str>) -> RunRecord {
        RunRecord {
            name: name.into(),
            group: "test-all.kill".into(),
            seed: 7,
            seconds: 2.5,
            outcome: outcome
                .map(|verdict| Finished {
                    dir: "histories/x".into(),
                    verdict,
                    ops: (10, 1, 0),
                    faults: 2,
                    caught_by: if verdict == Verdict::Invalid {
                        vec!["linearizable"]
                    } else {
                        vec![]
                    },
                    anomaly_at: None,
                    load_seconds: 2.0,
                    summary: "key k1: read 3 <but> \"4\" & \u{1}".into(),
                })
                .map_err(str::to_string),
        }
    }

    #[test]
    fn failures_errors_and_passes_are_well_formed() {
        let records = [
            rec("kill n3 #1", Ok(Verdict::Valid)),
            rec("kill n3 #2", Ok(Verdict::Invalid)),
            rec("kill n3 #3", Ok(Verdict::Unknown)),
            rec("kill n3 #4", Err("no leader <elected>")),
        ];
        let cases: Vec<Case> = records.iter().map(Case::from).collect();
        let xml = render("harness <test-all>", &cases);
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        assert_eq!(root.attribute("tests"), Some("4"));
        assert_eq!(root.attribute("failures"), Some("2"));
        assert_eq!(root.attribute("errors"), Some("1"));
        let cases: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(cases.len(), 4);
        assert_eq!(cases[0].attribute("name"), Some("kill n3 #1 seed 7"));
        assert!(!cases[0].children().any(|c| c.has_tag_name("failure")));
        let failure = cases[1]
            .children()
            .find(|c| c.has_tag_name("failure"))
            .unwrap();
        assert_eq!(failure.attribute("message"), Some("invalid: linearizable"));
        assert_eq!(
            failure.text(),
            Some("key k1: read 3 <but> \"4\" & \u{fffd}")
        );
        let unknown = cases[2].children().find(|c| c.has_tag_name("failure"));
        assert_eq!(unknown.unwrap().attribute("type"), Some("unknown"));
        let error = cases[3]
            .children()
            .find(|c| c.has_tag_name("error"))
            .unwrap();
        assert_eq!(error.text(), Some("no leader <elected>"));
    }
}
