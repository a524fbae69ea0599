//! Role changes from an etcd member's log, for the election-safety checker.
//!
//! etcd started with `--logger=zap --log-outputs=stderr` (see
//! [`super::member`]) writes one JSON object per line; its Raft library
//! logs each role change as
//!
//! ```text
//! {"level":"info","ts":"2026-12-02T04:44:49.075Z","caller":"raft/raft.go:771","msg":"c3146e312e839a31 became leader at term 2"}
//! ```
//!
//! with `follower`, `candidate`, `pre-candidate` (with `--pre-vote`; its
//! term is the current one, not a new one) or `leader`, the member's Raft
//! id in hex first. [`parse_etcd_log`] turns those lines into the `role`
//! events of [`crate::history::events`] (a pre-candidate is
//! `Role::Other("pre-candidate")`), named after the member, so the
//! election checker reads etcd exactly as it reads our nodes.
//!
//! A log it cannot read is an error that says why, so the checker can say
//! "unknown" with the reason instead of "valid" on no evidence: etcd's
//! default text format (capnslog, `raft2026/12/02 04:45:33 INFO: ...`),
//! or a log with no role change at all (every member logs `became follower
//! at term 0` when Raft starts). A torn last line (the member was killed
//! mid-write) is skipped and a line appended after a torn one is
//! recovered, with warnings; other lines that are not JSON (a Go panic's
//! stack trace) are skipped with a warning.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::history::events::{EventKind, NodeEvent, NodeLog, Role};

/// Why an etcd log yields no role events.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The log file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not an etcd zap log with role changes.
    #[error("{}: unrecognised etcd log format: {reason}", path.display())]
    Unrecognised {
        /// The log file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
}

/// A member's role events, and what else the log said about it.
#[derive(Clone, Debug)]
pub struct EtcdLog {
    /// Role events as `events.jsonl` would have them (`node` = the member's name).
    pub log: NodeLog,
    /// The Raft ids that logged role changes, in order of appearance (more
    /// than one if the member was removed and added again under its name).
    pub raft_ids: Vec<u64>,
}

/// Reads a member's log file; `node` is the member's name.
pub fn read_etcd_log(path: &Path, node: &str) -> Result<EtcdLog, LogError> {
    let bytes = std::fs::read(path).map_err(|source| LogError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_etcd_log(&String::from_utf8_lossy(&bytes), path, node)
}

/// Parses the text of a member's log; `path` is used in messages only.
pub fn parse_etcd_log(text: &str, path: &Path, node: &str) -> Result<EtcdLog, LogError> {
    let unrecognised = |reason: String| LogError::Unrecognised {
        path: path.to_path_buf(),
        reason,
    };
    let mut out = EtcdLog {
        log: NodeLog {
            node: node.to_string(),
            path: path.to_path_buf(),
            ..NodeLog::default()
        },
        raft_ids: Vec::new(),
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let last = lines.iter().rposition(|l| !l.trim().is_empty());
    let mut json_lines = 0;
    let mut non_empty = 0;
    let mut skipped: Vec<usize> = Vec::new();
    // The first line in etcd's text format, if any.
    let mut capnslog: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        non_empty += 1;
        let obj = match serde_json::from_str::<Json>(line) {
            Ok(Json::Object(obj)) => obj,
            // etcd 3.4 logs a few warnings through capnslog even with
            // zap (pkg/fileutil's permission check): those are skipped, but a
            // role change in text would be one the checker cannot see.
            _ if is_capnslog(line) => {
                if line.contains(" became ") {
                    return Err(unrecognised(format!(
                        "line {line_no} is etcd's text format (capnslog), not zap JSON: start \
                         etcd with --logger=zap --log-outputs=stderr"
                    )));
                }
                capnslog.get_or_insert(line_no);
                continue;
            }
            _ => match recover_after_tear(line) {
                Some(obj) => {
                    out.log.warnings.push(format!(
                        "{}:{line_no}: torn line (member killed mid-write?) followed by a complete one; kept the complete one",
                        path.display()
                    ));
                    obj
                }
                None if Some(i) == last => {
                    out.log.warnings.push(format!(
                        "{}:{line_no}: skipped a torn last line (member killed mid-write?)",
                        path.display()
                    ));
                    continue;
                }
                None => {
                    skipped.push(line_no);
                    continue;
                }
            },
        };
        json_lines += 1;
        let Some(msg) = obj.get("msg").and_then(Json::as_str) else {
            return Err(unrecognised(format!(
                "line {line_no} is JSON without a \"msg\" string: not etcd's zap format"
            )));
        };
        let Some((raft_id, role, term)) = role_change(msg) else {
            continue;
        };
        if !out.raft_ids.contains(&raft_id) {
            out.raft_ids.push(raft_id);
        }
        let time = match obj.get("ts") {
            None => None,
            Some(ts) => Some(rfc3339(ts).ok_or_else(|| {
                unrecognised(format!(
                    "line {line_no}: timestamp {ts} is not one etcd writes"
                ))
            })?),
        };
        out.log.events.push(NodeEvent {
            line: line_no,
            time,
            node: node.to_string(),
            kind: EventKind::Role { role, term },
        });
    }
    if !skipped.is_empty() {
        out.log.warnings.push(format!(
            "{}: skipped {} line(s) that are not JSON (first: line {})",
            path.display(),
            skipped.len(),
            skipped[0]
        ));
    }
    if let Some(line_no) = capnslog {
        if json_lines == 0 {
            return Err(unrecognised(format!(
                "line {line_no} is etcd's text format (capnslog), not zap JSON: start etcd \
                 with --logger=zap --log-outputs=stderr"
            )));
        }
        out.log.warnings.push(format!(
            "{}: skipped lines in etcd's text format (first: line {line_no}), which etcd 3.4 \
             writes for a few warnings even with --logger=zap; none is a role change",
            path.display()
        ));
    }
    if json_lines == 0 {
        return Err(unrecognised(if non_empty == 0 {
            "the log is empty".to_string()
        } else {
            format!("none of its {non_empty} lines is a zap JSON line")
        }));
    }
    if out.log.events.is_empty() {
        return Err(unrecognised(format!(
            "none of its {json_lines} JSON lines is a Raft role change (\"<id> became <role> at \
             term <n>\"), which every member logs when Raft starts"
        )));
    }
    Ok(out)
}

/// `<hex id> became <role> at term <n>`, as etcd's Raft logs it.
fn role_change(msg: &str) -> Option<(u64, Role, u64)> {
    let (id, rest) = msg.split_once(" became ")?;
    if id.is_empty() || id.len() > 16 {
        return None;
    }
    let id = u64::from_str_radix(id, 16).ok()?;
    let (role, term) = rest.split_once(" at term ")?;
    let role = match role {
        "follower" => Role::Follower,
        "candidate" => Role::Candidate,
        "leader" => Role::Leader,
        "pre-candidate" => Role::Other("pre-candidate".into()),
        _ => return None,
    };
    Some((id, role, term.parse().ok()?))
}

/// etcd 3.4 writes ISO 8601 with milliseconds (`2026-12-02T04:44:49.075Z`,
/// or `+0100` away from UTC); zap's default is seconds since the epoch.
fn rfc3339(ts: &Json) -> Option<String> {
    use chrono::{DateTime, SecondsFormat, Utc};
    let t: DateTime<Utc> = match ts {
        Json::String(s) => DateTime::parse_from_rfc3339(s)
            .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
            .ok()?
            .with_timezone(&Utc),
        Json::Number(n) => {
            let secs = n.as_f64()?;
            DateTime::from_timestamp(secs.floor() as i64, (secs.fract() * 1e9) as u32)?
        }
        _ => return None,
    };
    Some(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// capnslog's lines: `raft2026/12/02 04:45:33 INFO: ...` from the Raft
/// library, `2026-12-02 04:45:33.123456 I | etcdserver: ...` from etcd.
fn is_capnslog(line: &str) -> bool {
    let b = line.as_bytes();
    let date_at = |i: usize, sep: u8| {
        b.len() > i + 10
            && b[i..i + 4].iter().all(u8::is_ascii_digit)
            && b[i + 4] == sep
            && b[i + 7] == sep
    };
    line.starts_with("raft") && date_at(4, b'/') || date_at(0, b'-') && line.contains(" | ")
}

/// The complete JSON object at the end of a line that starts with a torn one.
fn recover_after_tear(line: &str) -> Option<serde_json::Map<String, Json>> {
    line.match_indices('{').skip(1).find_map(|(i, _)| {
        match serde_json::from_str::<Json>(&line[i..]) {
            Ok(Json::Object(obj)) if obj.contains_key("msg") => Some(obj),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EtcdLog, LogError> {
        parse_etcd_log(text, Path::new("nodes/e1/etcd.log"), "e1")
    }

    fn roles(log: &EtcdLog) -> Vec<(String, u64)> {
        log.log
            .events
            .iter()
            .map(|e| match &e.kind {
                EventKind::Role { role, term } => (
                    match role {
                        Role::Follower => "follower".to_string(),
                        Role::Candidate => "candidate".into(),
                        Role::Leader => "leader".into(),
                        Role::Other(o) => o.clone(),
                    },
                    *term,
                ),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// Real logs of etcd 3.4.23: three members, the leader (e2) SIGKILLed,
    /// e3 elected, e2 restarted with the same flags (its log appended).
    const E1: &str = include_str!("testdata/kill-leader-e1.log");
    const E2: &str = include_str!("testdata/kill-leader-e2.log");
    const E3: &str = include_str!("testdata/kill-leader-e3.log");

    #[test]
    fn real_logs_give_every_role_change() {
        let e2 = parse(E2).unwrap();
        assert_eq!(e2.raft_ids, [0xc3146e312e839a31]);
        assert_eq!(
            roles(&e2),
            [
                ("follower".to_string(), 0),
                ("follower".into(), 1),
                ("candidate".into(), 2),
                ("leader".into(), 2),
                // Restarted after the SIGKILL: its saved term, then the new leader's.
                ("follower".into(), 2),
                ("follower".into(), 3),
            ]
        );
        assert!(e2.log.warnings.is_empty(), "{:?}", e2.log.warnings);
        let leader = &e2.log.events[3];
        assert_eq!(leader.time.as_deref(), Some("2026-12-02T04:44:49.075Z"));
        // Named as the caller names the member, not by its Raft id.
        assert_eq!(leader.node, "e1");
        assert_eq!(leader.line, 66);
        let e3 = parse(E3).unwrap();
        assert_eq!(e3.raft_ids, [0x6cbceb12c20fa7cb]);
        assert_eq!(
            roles(&e3),
            [
                ("follower".to_string(), 0),
                ("follower".into(), 1),
                ("follower".into(), 2),
                ("candidate".into(), 3),
                ("leader".into(), 3),
            ]
        );
        assert_eq!(
            roles(&parse(E1).unwrap()).last(),
            Some(&("follower".into(), 3))
        );
    }

    #[test]
    fn the_election_checker_reads_etcd_logs_like_our_nodes() {
        let logs: Vec<NodeLog> = [("e1", E1), ("e2", E2), ("e3", E3)]
            .iter()
            .map(|(n, t)| parse_etcd_log(t, Path::new("x"), n).unwrap().log)
            .collect();
        let r = crate::check::election::check(&logs);
        assert_eq!(r.valid, crate::check::Verdict::Valid);
        assert_eq!(r.terms, 2);
        // The same logs with e1 also claiming term 3: a violation, named.
        let forged = E1.replace(
            "bc377623e84a69ab became follower at term 3",
            "bc377623e84a69ab became leader at term 3",
        );
        let mut logs = logs;
        logs[0] = parse_etcd_log(&forged, Path::new("x"), "e1").unwrap().log;
        let r = crate::check::election::check(&logs);
        assert_eq!(r.valid, crate::check::Verdict::Invalid);
        assert_eq!(r.violations[0].term, 3);
        assert_eq!(r.violations[0].nodes, ["e1", "e3"]);
    }

    #[test]
    fn pre_candidates_are_reported_at_their_current_term() {
        let e3 = parse(include_str!("testdata/prevote-e3.log")).unwrap();
        let r = roles(&e3);
        let i = r
            .iter()
            .position(|(role, _)| role == "pre-candidate")
            .unwrap();
        assert_eq!(r[i], ("pre-candidate".into(), 2));
        assert_eq!(r[i + 1], ("candidate".into(), 3));
        assert_eq!(r[i + 2], ("leader".into(), 3));
        let e2 = parse(include_str!("testdata/prevote-e2.log")).unwrap();
        assert!(roles(&e2).contains(&("pre-candidate".into(), 1)));
    }

    #[test]
    fn a_warning_in_text_among_zap_lines_is_skipped_but_a_role_change_in_text_is_not() {
        let warning = "2026-12-02 08:11:19.150183 W | pkg/fileutil: check file permission: \
                       directory \"/x/data\" exist, but the permission is \"drwxr-xr-x\".";
        let mixed: String = E1
            .lines()
            .take(3)
            .chain([warning])
            .chain(E1.lines().skip(3))
            .map(|l| format!("{l}\n"))
            .collect();
        let log = parse(&mixed).unwrap();
        let kinds = |l: &EtcdLog| -> Vec<EventKind> {
            l.log.events.iter().map(|e| e.kind.clone()).collect()
        };
        assert_eq!(kinds(&log), kinds(&parse(E1).unwrap()));
        assert!(
            log.log.warnings.iter().any(|w| w.contains("text format")),
            "{:?}",
            log.log.warnings
        );
        let role_in_text =
            format!("{mixed}raft2026/12/02 04:45:33 INFO: 1 became leader at term 9\n");
        let m = parse(&role_in_text).unwrap_err().to_string();
        assert!(m.contains("capnslog"), "{m}");
    }

    #[test]
    fn text_logs_and_logs_without_roles_are_unrecognised() {
        let e = parse(include_str!("testdata/capnslog.log")).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("unrecognised etcd log format"), "{m}");
        assert!(m.contains("--logger=zap"), "{m}");
        // Zap lines, but none about roles (a format change would look so).
        let only_noise: String = E1
            .lines()
            .filter(|l| !l.contains(" became "))
            .map(|l| format!("{l}\n"))
            .collect();
        let m = parse(&only_noise).unwrap_err().to_string();
        assert!(m.contains("none of its"), "{m}");
        assert!(parse("").unwrap_err().to_string().contains("empty"));
        let m = parse("hello\nworld\n").unwrap_err().to_string();
        assert!(m.contains("none of its 2 lines"), "{m}");
        let m = parse("{\"level\":\"info\"}\n").unwrap_err().to_string();
        assert!(m.contains("without a \"msg\""), "{m}");
    }

    #[test]
    fn torn_and_foreign_lines_are_warnings() {
        let mut lines: Vec<&str> = E3.lines().collect();
        let leader_line = lines
            .iter()
            .position(|l| l.contains("became leader"))
            .unwrap();
        let torn = &lines[leader_line - 1][..30];
        let joined = format!("{torn}{}", lines[leader_line]);
        lines[leader_line] = &joined;
        lines.insert(5, "panic: something");
        let mut text = lines.join("\n");
        text.push_str("\n{\"level\":\"info\",\"ts\":\"2026-12-");
        let log = parse(&text).unwrap();
        assert!(roles(&log).contains(&("leader".into(), 3)));
        let w = log.log.warnings.join("\n");
        assert!(w.contains("torn line"), "{w}");
        assert!(w.contains("torn last line"), "{w}");
        assert!(
            w.contains("skipped 1 line(s) that are not JSON (first: line 6)"),
            "{w}"
        );
    }

    #[test]
    fn role_messages_and_timestamps() {
        assert_eq!(
            role_change("8e9e05c52164694d became leader at term 12"),
            Some((0x8e9e05c52164694d, Role::Leader, 12))
        );
        assert_eq!(role_change("peer became active"), None);
        assert_eq!(role_change("8e9e became leader at term x"), None);
        assert_eq!(role_change("8e9e became learner at term 2"), None);
        assert_eq!(
            rfc3339(&Json::from("2026-12-02T05:44:49.075+0100")).as_deref(),
            Some("2026-12-02T04:44:49.075Z")
        );
        assert_eq!(
            rfc3339(&serde_json::json!(1764650689.5)).as_deref(),
            Some("2025-12-02T04:44:49.500Z")
        );
        assert_eq!(rfc3339(&Json::from("yesterday")), None);
        assert!(is_capnslog(
            "raft2026/12/02 04:45:33 INFO: x became follower at term 0"
        ));
        assert!(is_capnslog(
            "2026-12-02 04:45:33.123456 I | etcdserver: name = x"
        ));
        assert!(!is_capnslog("{\"level\":\"info\"}"));
    }
}
