//! The nodes' event logs (`nodes/<id>/events.jsonl`, `docs/contract.md`, "events.jsonl").
//!
//! Each line is one JSON object: `role` (a node became follower, candidate or
//! leader in a term), `apply` (an entry applied to the state machine, with
//! its index, term and digest), `snapshot`, and `state` (digests of the
//! state machine at an applied index). Unknown event kinds and
//! unknown fields are kept or ignored, so nodes can log more than the
//! checkers need.
//!
//! A node killed mid-write leaves a torn line. At the end of the file it is
//! skipped with a warning. When the node was restarted, its next event is
//! appended to the torn bytes on the same line; the event after the tear is
//! recovered, with a warning. Any other malformed line is an error: a
//! checker that silently skipped events could miss a violation.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::HistoryError;

/// An RFC 3339 time (as events and run.json write them) as Unix ns.
pub fn wall_ns(s: &str) -> Option<i128> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    Some(t.timestamp_nanos_opt()? as i128)
}

/// A Raft role, as logged in `role` events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// The node follows a leader (or waits for one) in the term.
    Follower,
    /// The node stands for election in the term.
    Candidate,
    /// The node won the term's election: what the election checker counts.
    Leader,
    /// A role this harness does not know (a pre-candidate, a learner, ...),
    /// as the node spelled it; ignored by the checkers.
    Other(String),
}

/// What a node reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The node took a role (`event: "role"`).
    Role {
        /// The role taken.
        role: Role,
        /// The term it was taken in.
        term: u64,
    },
    /// The node applied a log entry to its state machine (`event: "apply"`).
    Apply {
        /// The entry's log index.
        index: u64,
        /// The term the entry was created in.
        term: u64,
        /// The node's digest of the entry's command: equal digests at one
        /// index mean the same entry. Opaque to the harness.
        digest: String,
    },
    /// The node installed or took a snapshot (`event: "snapshot"`); not
    /// judged (see [`crate::check::state_machine`]).
    Snapshot {
        /// The last log index the snapshot covers.
        index: u64,
        /// The term the node logged with it (which one is not pinned down).
        term: u64,
    },
    /// The node started; a node that lost its data starts as a new
    /// incarnation (named in the `start` note of this repository's node).
    Start {
        /// The incarnation id, when the node names one.
        incarnation: Option<String>,
        /// The term and vote the node recovered from its disk, when it
        /// says (`term` and `vote` fields; `vote` null: none).
        recovered: Option<(u64, Option<String>)>,
    },
    /// The node gave its vote (not a pre-vote) to `candidate` in `term`,
    /// once the vote was durable (`event: "vote"`).
    Vote {
        /// The term of the vote.
        term: u64,
        /// Who got it.
        candidate: String,
    },
    /// As leader of `term`, the node appended a configuration entry at
    /// `index` (`event: "change"`), its commit index then `committed`, the
    /// configuration before it at `previous`.
    Change {
        /// The new entry's log index.
        index: u64,
        /// The leader's term.
        term: u64,
        /// The leader's commit index when it appended the entry.
        committed: u64,
        /// The index of the configuration entry in force before it.
        previous: u64,
    },
    /// The configuration in force from `index` on.
    Config {
        /// The log index of the configuration entry.
        index: u64,
        /// The members that vote and count toward quorums.
        voters: Vec<String>,
        /// The members that receive the log but do not vote.
        learners: Vec<String>,
    },
    /// The state machine's digest after applying `index`: of the values, of
    /// the client sessions, and (when few) of each key's value.
    State {
        /// The last applied log index.
        index: u64,
        /// Digest of the values.
        values: String,
        /// Digest of the client sessions.
        sessions: String,
        /// Each key's value digest, when the node has few keys.
        per_key: Option<std::collections::BTreeMap<String, String>>,
    },
    /// An event kind the checkers do not use.
    Other(String),
}

/// One line of a node's event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEvent {
    /// Line in the file, for messages.
    pub line: usize,
    /// RFC 3339 timestamp as written by the node, if any.
    pub time: Option<String>,
    /// The node's id: the line's `node` field, else the log's node.
    pub node: String,
    /// What happened.
    pub kind: EventKind,
}

/// The event log of one node.
#[derive(Clone, Debug, Default)]
pub struct NodeLog {
    /// The node's id: from the directory name (`nodes/n1/`).
    pub node: String,
    /// The file read, for messages.
    pub path: PathBuf,
    /// The events, in the order of the file.
    pub events: Vec<NodeEvent>,
    /// Torn lines that were skipped or recovered.
    pub warnings: Vec<String>,
}

/// The event logs of a run directory's nodes.
#[derive(Clone, Debug, Default)]
pub struct RunEvents {
    /// The logs found, sorted by node.
    pub logs: Vec<NodeLog>,
    /// Nodes (directories under `nodes/`) with no event log anywhere.
    pub missing: Vec<String>,
    /// Why the election checker cannot judge these logs (a member's log
    /// in a format that is not recognised), if it cannot.
    pub election_unknown: Option<String>,
    /// Why the state-machine checker cannot judge them (the members'
    /// states were never compared), if it cannot.
    pub state_machine_unknown: Option<String>,
}

/// Reads every `DIR/nodes/*/events.jsonl`, sorted by node. A run directory
/// without a `nodes/` directory has no logs (empty result).
pub fn read_run_events(dir: &Path) -> Result<Vec<NodeLog>, HistoryError> {
    find_run_events(dir).map(|r| r.logs)
}

/// Finds each node's event log: `nodes/<id>/events.jsonl`, where a finished
/// run copies it, else `nodes/<id>/data/events.jsonl`, where the node writes
/// it (a run that was interrupted never copied it). Nodes with neither are
/// listed as missing, unless they never ran ([`never_ran`]).
pub fn find_run_events(dir: &Path) -> Result<RunEvents, HistoryError> {
    let nodes = dir.join("nodes");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HistoryError::Io { path, source }
    };
    let entries = match std::fs::read_dir(&nodes) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RunEvents::default()),
        Err(e) => return Err(io(&nodes)(e)),
    };
    let mut found = RunEvents::default();
    for entry in entries {
        let entry = entry.map_err(io(&nodes))?;
        if !entry.path().is_dir() {
            continue;
        }
        let node = entry.file_name().to_string_lossy().into_owned();
        let copied = entry.path().join("events.jsonl");
        let written = entry.path().join("data").join("events.jsonl");
        if copied.is_file() {
            found.logs.push(read_node_log(&copied, &node)?);
        } else if written.is_file() {
            let mut log = read_node_log(&written, &node)?;
            log.warnings.push(format!(
                "{}: read from the node's data directory (the run did not finish and copy it)",
                written.display()
            ));
            found.logs.push(log);
        } else if !never_ran(dir, &entry.path(), &node) {
            found.missing.push(node);
        }
    }
    found.logs.sort_by(|a, b| a.node.cmp(&b.node));
    found.missing.sort();
    Ok(found)
}

/// Whether a node without events never ran: `run.json` says it was never
/// started (it stayed outside the cluster for the `member` nemesis to
/// add), or its `node.log` exists and is empty (killed before it wrote a
/// line: a grow the leader refused at once). A node with no `node.log` at
/// all may have run (a run directory from elsewhere): it is missing.
fn never_ran(run_dir: &Path, node_dir: &Path, node: &str) -> bool {
    let log_empty = std::fs::metadata(node_dir.join("node.log")).is_ok_and(|m| m.len() == 0);
    let never_started = std::fs::read(run_dir.join("run.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
        .and_then(|run| {
            run.get("nodes")?
                .as_array()?
                .iter()
                .find(|n| n.get("id").and_then(Json::as_str) == Some(node))?
                .get("starts")?
                .as_u64()
        })
        == Some(0);
    log_empty || never_started
}

/// Reads one node's `events.jsonl`; `node` names events without a `node` field.
pub fn read_node_log(path: &Path, node: &str) -> Result<NodeLog, HistoryError> {
    let bytes = std::fs::read(path).map_err(|source| HistoryError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_node_log(&String::from_utf8_lossy(&bytes), path, node)
}

/// Parses the text of an event log; `path` is used in messages only.
pub fn parse_node_log(text: &str, path: &Path, node: &str) -> Result<NodeLog, HistoryError> {
    let mut log = NodeLog {
        node: node.to_string(),
        path: path.to_path_buf(),
        ..NodeLog::default()
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let last_content = lines.iter().rposition(|l| !l.trim().is_empty());
    for (i, line) in lines.iter().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let json = match serde_json::from_str::<Json>(line) {
            Ok(json) => json,
            Err(e) => match recover_after_tear(line) {
                Some(json) => {
                    log.warnings.push(format!(
                        "{}:{line_no}: torn event (node killed mid-write?) followed by a complete one; kept the complete one",
                        path.display()
                    ));
                    json
                }
                None if Some(i) == last_content => {
                    log.warnings.push(format!(
                        "{}:{line_no}: skipped a torn last line (node killed mid-write?)",
                        path.display()
                    ));
                    continue;
                }
                None => {
                    return Err(HistoryError::line(
                        path,
                        line_no,
                        format!("invalid JSON: {e}"),
                    ));
                }
            },
        };
        let event =
            parse_event(&json, node, line_no).map_err(|m| HistoryError::line(path, line_no, m))?;
        log.events.push(event);
    }
    Ok(log)
}

/// The incarnation a `start` note names: `..., incarnation 0e8a0f3ff4b99996, founder`.
fn incarnation_in(detail: &str) -> Option<String> {
    let rest = detail.split("incarnation ").nth(1)?;
    let id: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    (!id.is_empty()).then_some(id)
}

/// The last complete JSON object on a line that starts with a torn one.
fn recover_after_tear(line: &str) -> Option<Json> {
    line.match_indices('{')
        .skip(1)
        .find_map(|(i, _)| serde_json::from_str::<Json>(&line[i..]).ok())
        .filter(Json::is_object)
}

fn parse_event(json: &Json, default_node: &str, line: usize) -> Result<NodeEvent, String> {
    let Json::Object(obj) = json else {
        return Err("expected a JSON object".into());
    };
    let u64_field = |name: &str| {
        obj.get(name)
            .ok_or_else(|| format!("field {name:?}: missing"))?
            .as_u64()
            .ok_or_else(|| format!("field {name:?}: expected a non-negative integer"))
    };
    let str_field = |name: &str| match obj.get(name) {
        Some(Json::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("field {name:?}: expected a string")),
        None => Err(format!("field {name:?}: missing")),
    };
    let event = str_field("event")?;
    let kind = match event.as_str() {
        "role" => EventKind::Role {
            role: match str_field("role")?.as_str() {
                "follower" => Role::Follower,
                "candidate" => Role::Candidate,
                "leader" => Role::Leader,
                other => Role::Other(other.to_string()),
            },
            term: u64_field("term")?,
        },
        "apply" => EventKind::Apply {
            index: u64_field("index")?,
            term: u64_field("term")?,
            digest: str_field("digest")?,
        },
        "snapshot" => EventKind::Snapshot {
            index: u64_field("index")?,
            term: u64_field("term")?,
        },
        "start" => EventKind::Start {
            incarnation: obj
                .get("detail")
                .and_then(Json::as_str)
                .and_then(incarnation_in),
            recovered: match obj.get("term") {
                None => None,
                Some(_) => Some((
                    u64_field("term")?,
                    match obj.get("vote") {
                        None | Some(Json::Null) => None,
                        Some(Json::String(v)) => Some(v.clone()),
                        Some(_) => return Err("field \"vote\": expected a string or null".into()),
                    },
                )),
            },
        },
        "vote" => EventKind::Vote {
            term: u64_field("term")?,
            candidate: str_field("candidate")?,
        },
        "change" => EventKind::Change {
            index: u64_field("index")?,
            term: u64_field("term")?,
            committed: u64_field("committed")?,
            previous: u64_field("previous")?,
        },
        "config" => {
            let ids = |name: &str| -> Result<Vec<String>, String> {
                match obj.get(name) {
                    None => Ok(Vec::new()),
                    Some(Json::Array(a)) => a
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_string)
                                .ok_or_else(|| format!("field {name:?}: expected strings"))
                        })
                        .collect(),
                    Some(_) => Err(format!("field {name:?}: expected a list of ids")),
                }
            };
            EventKind::Config {
                index: u64_field("index")?,
                voters: ids("voters")?,
                learners: ids("learners")?,
            }
        }
        "state" => EventKind::State {
            index: u64_field("index")?,
            values: str_field("values")?,
            sessions: str_field("sessions")?,
            per_key: match obj.get("per_key") {
                None | Some(Json::Null) => None,
                Some(Json::Object(m)) => Some(
                    m.iter()
                        .map(|(k, v)| match v {
                            Json::String(h) => Ok((k.clone(), h.clone())),
                            _ => Err(format!("field \"per_key\": {k:?} is not a string")),
                        })
                        .collect::<Result<_, _>>()?,
                ),
                Some(_) => return Err("field \"per_key\": expected an object".into()),
            },
        },
        _ => EventKind::Other(event),
    };
    Ok(NodeEvent {
        line,
        time: str_field("time").ok(),
        node: str_field("node").unwrap_or_else(|_| default_node.to_string()),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NodeLog, HistoryError> {
        parse_node_log(text, Path::new("nodes/n1/events.jsonl"), "n1")
    }

    fn role(role: Role, term: u64) -> EventKind {
        EventKind::Role { role, term }
    }

    #[test]
    fn parses_the_spec_lines_and_tolerates_unknown_kinds() {
        let log = parse(concat!(
            r#"{"time":"2026-11-22T10:00:00.123456Z","node":"n1","event":"role","role":"leader","term":7}"#,
            "\n",
            r#"{"time":"t","node":"n1","event":"apply","index":42,"term":7,"digest":"9f2c","extra":1}"#,
            "\n",
            r#"{"time":"t","event":"snapshot","index":1000,"term":6}"#,
            "\n",
            r#"{"time":"t","node":"n1","event":"gossip","with":"n2"}"#,
            "\n",
        ))
        .unwrap();
        assert_eq!(log.events.len(), 4);
        assert_eq!(log.events[0].kind, role(Role::Leader, 7));
        assert_eq!(
            log.events[1].kind,
            EventKind::Apply {
                index: 42,
                term: 7,
                digest: "9f2c".into()
            }
        );
        assert_eq!(log.events[2].node, "n1");
        assert_eq!(log.events[3].kind, EventKind::Other("gossip".into()));
        assert!(log.warnings.is_empty());
    }

    #[test]
    fn starts_say_what_they_recovered_and_votes_whom_they_chose() {
        let log = parse(concat!(
            r#"{"time":"t","node":"n1","event":"start","term":4,"vote":"n3","detail":"term 4; incarnation 0e8a, founder"}"#,
            "\n",
            r#"{"time":"t","node":"n1","event":"start","term":5,"vote":null,"detail":""}"#,
            "\n",
            r#"{"time":"t","node":"n1","event":"start","detail":"an older node"}"#,
            "\n",
            r#"{"time":"t","node":"n1","event":"vote","term":6,"candidate":"n2"}"#,
            "\n",
        ))
        .unwrap();
        let start = |inc: Option<&str>, rec: Option<(u64, Option<&str>)>| EventKind::Start {
            incarnation: inc.map(str::to_string),
            recovered: rec.map(|(t, v)| (t, v.map(str::to_string))),
        };
        assert_eq!(
            log.events[0].kind,
            start(Some("0e8a"), Some((4, Some("n3"))))
        );
        assert_eq!(log.events[1].kind, start(None, Some((5, None))));
        assert_eq!(log.events[2].kind, start(None, None));
        assert_eq!(
            log.events[3].kind,
            EventKind::Vote {
                term: 6,
                candidate: "n2".into()
            }
        );
        let bad = parse(r#"{"time":"t","node":"n1","event":"vote","term":6}"#).unwrap_err();
        assert!(bad.to_string().contains("candidate"), "{bad}");
    }

    #[test]
    fn a_torn_last_line_is_a_warning() {
        let log = parse(concat!(
            r#"{"event":"role","role":"leader","term":7}"#,
            "\n",
            r#"{"event":"apply","ind"#
        ))
        .unwrap();
        assert_eq!(log.events.len(), 1);
        assert_eq!(log.warnings.len(), 1);
        assert!(
            log.warnings[0].contains(":2: skipped a torn last line"),
            "{:?}",
            log.warnings
        );
    }

    #[test]
    fn an_event_appended_after_a_tear_is_recovered() {
        let log = parse(concat!(
            r#"{"event":"apply","ind{"event":"role","role":"follower","term":8}"#,
            "\n",
            r#"{"event":"role","role":"leader","term":9}"#,
            "\n"
        ))
        .unwrap();
        assert_eq!(log.events.len(), 2);
        assert_eq!(log.events[0].kind, role(Role::Follower, 8));
        assert_eq!(log.warnings.len(), 1);
    }

    #[test]
    fn logs_are_found_where_a_run_left_them() {
        let dir = tempfile::tempdir().unwrap();
        let line = "{\"event\":\"role\",\"role\":\"leader\",\"term\":1}\n";
        for (node, at) in [("n1", ""), ("n2", "data"), ("n3", "elsewhere")] {
            let d = dir.path().join("nodes").join(node).join(at);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("events.jsonl"), line).unwrap();
        }
        // n3's events are nowhere (and nothing says it never ran); run.json
        // says n4 never started; n5 was killed before it wrote anything.
        std::fs::create_dir_all(dir.path().join("nodes/n4/data")).unwrap();
        std::fs::create_dir_all(dir.path().join("nodes/n5/data")).unwrap();
        std::fs::write(dir.path().join("nodes/n5/node.log"), "").unwrap();
        std::fs::write(
            dir.path().join("run.json"),
            r#"{"nodes": [{"id": "n3", "starts": 1}, {"id": "n4", "starts": 0}]}"#,
        )
        .unwrap();
        let found = find_run_events(dir.path()).unwrap();
        let nodes: Vec<&str> = found.logs.iter().map(|l| l.node.as_str()).collect();
        assert_eq!(nodes, ["n1", "n2"]);
        assert!(found.logs[1].warnings[0].contains("did not finish"));
        assert_eq!(found.missing, ["n3"]);
    }

    #[test]
    fn garbage_in_the_middle_is_an_error_with_the_line() {
        let e = parse(
            "{\"event\":\"role\",\"role\":\"leader\",\"term\":1}\ngarbage\n{\"event\":\"x\"}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("nodes/n1/events.jsonl:2: invalid JSON"),
            "{e}"
        );
        let e = parse("{\"event\":\"apply\",\"index\":1,\"term\":\"one\",\"digest\":\"a\"}\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("nodes/n1/events.jsonl:1: field \"term\""),
            "{e}"
        );
    }
}
