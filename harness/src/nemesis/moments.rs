//! Protocol moments, read from the nodes' event logs as they are written:
//! a node became leader, a node gave its vote. The schedule times some
//! faults on them ([`super::schedule`]).
//!
//! Why the logs and not Status: a node writes its event before anyone can
//! learn of the change (docs/contract.md, "events.jsonl"), so a tail that
//! looks every couple of milliseconds sees a new leader before its no-op
//! has committed, and a vote before the voter's next fsync; Status, polled
//! over gRPC, sees them tens of milliseconds later, when those windows
//! have mostly closed. A database without event logs (etcd) falls back to
//! Status.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::history::events::{EventKind, Role, parse_node_log};

/// How often a tail reads the nodes' event logs while waiting for a moment.
pub const TAIL_POLL: Duration = Duration::from_millis(2);

/// Which moment a fault waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MomentKind {
    /// A node became leader.
    Leader,
    /// A node gave its vote (durably, before sending it).
    Vote,
}

/// A moment seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moment {
    /// What happened.
    pub kind: MomentKind,
    /// The node it happened to: the new leader, or the voter.
    pub node: String,
    /// Its term.
    pub term: u64,
    /// For a vote, the candidate that got it.
    pub candidate: Option<String>,
}

impl Moment {
    /// The leader the moment points at: the new leader, or the candidate a
    /// vote went to (likely the next leader).
    pub fn leader(&self) -> Option<String> {
        match self.kind {
            MomentKind::Leader => Some(self.node.clone()),
            MomentKind::Vote => self.candidate.clone(),
        }
    }

    /// The history's record of what the fault was timed on: the key and
    /// its value, added to the `start-X` event.
    pub fn record(&self) -> (&'static str, Value) {
        match self.kind {
            MomentKind::Leader => (
                "after_leader_change",
                json!({"leader": self.node, "term": self.term}),
            ),
            MomentKind::Vote => (
                "after_vote",
                json!({"voter": self.node, "candidate": self.candidate, "term": self.term}),
            ),
        }
    }
}

/// Follows the event logs of a cluster's nodes from where they end now.
pub struct Tail {
    files: Vec<Followed>,
}

struct Followed {
    node: String,
    path: PathBuf,
    /// Bytes already looked at.
    offset: u64,
    /// A line whose end has not been written yet.
    partial: Vec<u8>,
}

impl Tail {
    /// Starts following `logs` (node id, path) at their current ends: only
    /// what is written from now on counts.
    pub fn new(logs: Vec<(String, PathBuf)>) -> Tail {
        let mut tail = Tail { files: Vec::new() };
        for (node, path) in logs {
            tail.follow(&node, path);
        }
        tail
    }

    /// Also follows `path` for `node` from its current end, unless it is
    /// followed already (a node that joined after the tail began).
    pub fn follow(&mut self, node: &str, path: PathBuf) {
        if self.files.iter().any(|f| f.path == path) {
            return;
        }
        self.files.push(Followed {
            offset: std::fs::metadata(&path).map_or(0, |m| m.len()),
            node: node.to_string(),
            path,
            partial: Vec::new(),
        });
    }

    /// Whether there is anything to follow.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The moments written since the last call, in each file's order.
    pub fn poll(&mut self) -> Vec<Moment> {
        let mut found = Vec::new();
        for f in &mut self.files {
            let Ok(text) = f.read_new() else {
                continue;
            };
            if text.is_empty() {
                continue;
            }
            // A line the node cut short is evidence for the checkers, not
            // a moment: skip what does not parse.
            let Ok(log) = parse_node_log(&text, &f.path, &f.node) else {
                continue;
            };
            for e in log.events {
                match e.kind {
                    EventKind::Role {
                        role: Role::Leader,
                        term,
                    } => found.push(Moment {
                        kind: MomentKind::Leader,
                        node: e.node,
                        term,
                        candidate: None,
                    }),
                    EventKind::Vote { term, candidate } => found.push(Moment {
                        kind: MomentKind::Vote,
                        node: e.node,
                        term,
                        candidate: Some(candidate),
                    }),
                    _ => {}
                }
            }
        }
        found
    }
}

impl Followed {
    /// The complete lines written since the last read.
    fn read_new(&mut self) -> std::io::Result<String> {
        let mut file = std::fs::File::open(&self.path)?;
        let len = file.metadata()?.len();
        if len < self.offset {
            // Replaced by a shorter file: follow the new one from its start.
            self.offset = 0;
            self.partial.clear();
        }
        if len == self.offset {
            return Ok(String::new());
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = std::mem::take(&mut self.partial);
        let read = file.take(len - self.offset).read_to_end(&mut buf)?;
        self.offset += read as u64;
        let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.partial = buf.split_off(complete);
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// The event logs of the cluster's nodes that exist (see [`existing`]).
pub fn of_cluster(cluster: &crate::cluster::Cluster) -> Vec<(String, PathBuf)> {
    existing(
        cluster
            .nodes()
            .iter()
            .map(|n| (n.id.clone(), n.events_path())),
    )
}

/// The event logs of `nodes` (id, path) that exist: a database whose
/// nodes write none has nothing to follow.
pub fn existing(nodes: impl IntoIterator<Item = (String, PathBuf)>) -> Vec<(String, PathBuf)> {
    nodes.into_iter().filter(|(_, p)| p.is_file()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_tail_sees_new_leaders_and_votes_once_their_lines_are_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut f = std::fs::File::create(&path).unwrap();
        // Written before the tail starts: not a moment.
        writeln!(
            f,
            r#"{{"node":"n1","event":"role","role":"leader","term":1}}"#
        )
        .unwrap();
        let mut tail = Tail::new(existing([
            ("n1".to_string(), path.clone()),
            ("n2".to_string(), dir.path().join("absent.jsonl")),
        ]));
        assert!(tail.poll().is_empty());
        writeln!(
            f,
            r#"{{"node":"n1","event":"role","role":"follower","term":2}}"#
        )
        .unwrap();
        write!(f, r#"{{"node":"n1","event":"vote","term":2,"#).unwrap();
        f.flush().unwrap();
        assert!(
            tail.poll().is_empty(),
            "a follower is no moment, half a line not yet"
        );
        writeln!(f, r#""candidate":"n3"}}"#).unwrap();
        writeln!(
            f,
            r#"{{"node":"n1","event":"role","role":"leader","term":3}}"#
        )
        .unwrap();
        let seen = tail.poll();
        assert_eq!(
            seen,
            vec![
                Moment {
                    kind: MomentKind::Vote,
                    node: "n1".into(),
                    term: 2,
                    candidate: Some("n3".into()),
                },
                Moment {
                    kind: MomentKind::Leader,
                    node: "n1".into(),
                    term: 3,
                    candidate: None,
                },
            ]
        );
        assert_eq!(seen[0].leader().as_deref(), Some("n3"));
        assert_eq!(seen[0].record().0, "after_vote");
        assert_eq!(seen[1].record().1["leader"], "n1");
        assert!(tail.poll().is_empty());
        // Following a file again changes nothing; a new one is read from
        // its end.
        tail.follow("n1", path.clone());
        let other = dir.path().join("n2.jsonl");
        std::fs::write(
            &other,
            "{\"node\":\"n2\",\"event\":\"role\",\"role\":\"leader\",\"term\":4}\n",
        )
        .unwrap();
        tail.follow("n2", other.clone());
        assert!(tail.poll().is_empty());
        let mut f2 = std::fs::OpenOptions::new()
            .append(true)
            .open(&other)
            .unwrap();
        writeln!(
            f2,
            r#"{{"node":"n2","event":"role","role":"leader","term":5}}"#
        )
        .unwrap();
        writeln!(
            f,
            r#"{{"node":"n1","event":"role","role":"leader","term":6}}"#
        )
        .unwrap();
        let terms: Vec<u64> = tail.poll().iter().map(|m| m.term).collect();
        assert_eq!(terms, [6, 5]);
    }
}
