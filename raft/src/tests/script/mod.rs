//! Scripted interactions with golden output: `raft/testdata/NAME.txt`.
//!
//! A script is a list of commands, each followed by `----` and the output
//! it must produce, up to a blank line. Lines starting with `#` are
//! comments. The cluster (`env`) does nothing on its own: a script ticks
//! nodes, delivers or drops the messages on the wire and processes `Ready`s
//! one command at a time, and the output shows each `Ready` as the core
//! hands it out (`text` has the notation). A new scenario is a few lines;
//! to write its output, or to accept changed output after reading the
//! diff, run
//!
//! ```text
//! REWRITE=1 cargo test -p raft scripts
//! ```
//!
//! Commands (`NODE...` without a node means every node):
//!
//! | command | what it does |
//! | --- | --- |
//! | `add-nodes N [voters=K] [pre-vote=B] [check-quorum=B] [election=T] [heartbeat=H] [max-append-bytes=N] [max-inflight=N] [seed=S] [bugs=NAME,...]` | nodes n1..nN (T = 10, H = 2 unless set); the first K (all) form the cluster, the others join it |
//! | `load NODE term=T [vote=X] [log=T1,T2,...] [snapshot=I@T]` | the node restarts from this durable state (and the safety checks start over) |
//! | `campaign NODE` | it starts an election now |
//! | `tick NODE... [times=K]` | time passes for these nodes |
//! | `step MESSAGE` | hand a message (see `text`) straight to its recipient |
//! | `process-ready [NODE...]` | act on each node's `Ready` as the driver does, and show it |
//! | `deliver-msgs [NODE...] [from=X] [type=KIND]` | deliver the messages waiting for these nodes |
//! | `drop-msgs [NODE...] [from=X] [type=KIND]` | lose them instead |
//! | `stabilize [NODE...]` | process and deliver until nothing is left |
//! | `propose NODE DATA`, `read-index NODE CTX...` | a client's write, or reads |
//! | `isolate NODE...`, `partition A B \| C`, `heal` | cut links (messages across are dropped on delivery) |
//! | `crash NODE...`, `restart NODE...` | lose everything not durable; come back from disk |
//! | `compact NODE INDEX` | snapshot the state machine at INDEX and drop the log before |
//! | `change NODE add-learner\|promote\|remove ID` | propose a configuration change |
//! | `transfer NODE TO` | hand leadership to TO |
//! | `wipe NODE` | a new, empty disk and a new incarnation; it joins the existing cluster |
//! | `lose-tail NODE INDEX` | a node that is down loses its log after INDEX |
//! | `config [NODE...]` | the configuration in force, and who awaits re-adding |
//! | `report-unreachable NODE PEER`, `report-snapshot NODE PEER delivered\|failed` | what a transport reports |
//! | `status [NODE...]`, `log [NODE...]`, `progress NODE` | look |
//! | `allow-violations` | a safety violation (shown as `!! safety violated: ...`) does not fail the script: for a seeded bug's script |
//!
//! A mismatch fails the test with a diff of every block that differs.

mod command;
mod env;
mod text;

use std::path::{Path, PathBuf};

use command::Command;
use env::Env;

/// A line of a script file, as read.
#[derive(Debug)]
enum Item {
    /// A comment or a blank line, kept as it is.
    Text(String),
    /// A command and the output it should produce.
    Case {
        line: usize,
        command: String,
        expected: Vec<String>,
    },
}

pub fn path_of(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(format!("{name}.txt"))
}

/// Runs `testdata/NAME.txt`; with `REWRITE` set, writes the actual output
/// into the file instead of comparing.
pub fn run(name: &str) {
    let path = path_of(name);
    let source = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let items = parse(&source).unwrap_or_else(|e| panic!("{}:{e}", path.display()));
    let rewrite = std::env::var_os("REWRITE").is_some();
    let mut env = Env::default();
    let mut rewritten = Vec::new();
    let mut mismatches = Vec::new();
    for item in items {
        match item {
            Item::Text(t) => rewritten.push(t),
            Item::Case {
                line,
                command,
                expected,
            } => {
                let actual = env
                    .run(&Command::parse(&command))
                    .unwrap_or_else(|e| panic!("{}:{line}: `{command}`: {e}", path.display()));
                if actual != expected {
                    mismatches.push(format!(
                        "{}:{line}: `{command}`\n{}",
                        path.display(),
                        diff(&expected, &actual)
                    ));
                }
                rewritten.push(command);
                rewritten.push("----".into());
                rewritten.extend(actual);
            }
        }
    }
    if !env.violations.is_empty() && !env.allow_violations {
        panic!(
            "{}: safety violated: {}",
            path.display(),
            env.violations.join("; ")
        );
    }
    if rewrite {
        let mut text = rewritten.join("\n");
        text.push('\n');
        std::fs::write(&path, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    } else if !mismatches.is_empty() {
        panic!(
            "{} block(s) of {} differ from their golden output (- expected, + actual):\n\n{}\n\n\
             If the new output is right: REWRITE=1 cargo test -p raft scripts",
            mismatches.len(),
            path.display(),
            mismatches.join("\n\n")
        );
    }
}

fn parse(source: &str) -> Result<Vec<Item>, String> {
    let lines: Vec<&str> = source.lines().collect();
    let mut items = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim().is_empty() || line.starts_with('#') {
            items.push(Item::Text(line.to_string()));
            i += 1;
            continue;
        }
        if lines.get(i + 1) != Some(&"----") {
            return Err(format!(
                "{}: `{line}` is not followed by a line `----`",
                i + 1
            ));
        }
        let mut expected = Vec::new();
        let mut j = i + 2;
        while j < lines.len() && !lines[j].trim().is_empty() {
            expected.push(lines[j].to_string());
            j += 1;
        }
        items.push(Item::Case {
            line: i + 1,
            command: line.to_string(),
            expected,
        });
        i = j;
    }
    Ok(items)
}

/// A line diff of two outputs: the longest common subsequence kept as
/// context, the rest marked `-` (expected only) and `+` (actual only).
fn diff(expected: &[String], actual: &[String]) -> String {
    let (n, m) = (expected.len(), actual.len());
    // lcs[i][j]: the longest common subsequence of expected[i..] and actual[j..].
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if expected[i] == actual[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            out.push(format!("  {}", expected[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(format!("- {}", expected[i]));
            i += 1;
        } else {
            out.push(format!("+ {}", actual[j]));
            j += 1;
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(String::from).collect()
    }

    #[test]
    fn a_diff_marks_what_changed_and_keeps_the_rest() {
        let d = diff(&lines("a\nb\nc"), &lines("a\nx\nc\nd"));
        assert_eq!(d, "  a\n- b\n+ x\n  c\n+ d");
    }

    #[test]
    fn a_script_is_commands_with_their_output() {
        let items = parse("# hello\n\ncampaign n1\n----\nok\n\nstatus\n----\na\nb\n").unwrap();
        let cases: Vec<(usize, &str, usize)> = items
            .iter()
            .filter_map(|i| match i {
                Item::Case {
                    line,
                    command,
                    expected,
                } => Some((*line, command.as_str(), expected.len())),
                Item::Text(_) => None,
            })
            .collect();
        assert_eq!(cases, vec![(3, "campaign n1", 1), (7, "status", 2)]);
        assert!(parse("campaign n1\nok\n").unwrap_err().contains("----"));
    }
}
