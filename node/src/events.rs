//! `events.jsonl`: what the node did, for the harness's election and
//! state-machine checkers. Lines are buffered within one driver iteration
//! and written with one plain `write` before the change they record becomes
//! visible to anyone (a message sent, a client answered): a write to the page
//! cache survives `kill -9`, so no fsync is needed. It is evidence, not
//! state: a harness that cuts the power of the data directory's disk keeps
//! it elsewhere (`--events-file`), where a power-off cannot cut its tail.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use raft::{Entry, EntryKind, LogIndex, Membership, NodeId, Role, Term};

use crate::kv::StateDigest;
use crate::kv::digest::fnv1a;

/// Every this many applied log indexes the node logs a `state` event.
pub const STATE_EVERY: u64 = 64;

/// `DIR/events.jsonl`. Lines wait in a buffer until [`EventLog::flush`]
/// writes them, before what they record becomes visible (see the module).
pub struct EventLog {
    path: PathBuf,
    file: File,
    node: String,
    buf: Vec<u8>,
}

impl EventLog {
    /// Appends to `path` (`--events-file`; by default `events.jsonl` in the
    /// data directory), creating it.
    pub fn open(path: &Path, node: &str) -> std::io::Result<EventLog> {
        let path = path.to_path_buf();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(EventLog {
            path,
            file,
            node: node.to_string(),
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The node took `role` in `term`.
    pub fn role(&mut self, role: Role, term: Term) {
        self.line(format_args!(
            r#""event":"role","role":"{}","term":{}"#,
            role.as_str(),
            term.0
        ));
    }

    /// The node applied `entry` (its digest lets the checker compare replicas).
    pub fn apply(&mut self, entry: &Entry) {
        self.line(format_args!(
            r#""event":"apply","index":{},"term":{},"digest":"{:016x}""#,
            entry.index.0,
            entry.term.0,
            digest(entry)
        ));
    }

    /// The state machine's digest after applying `index` (every
    /// [`STATE_EVERY`] entries, and at snapshots): replicas must agree at
    /// equal indexes. Each key's own digest is listed when there are few.
    pub fn state(&mut self, index: LogIndex, d: &StateDigest) {
        let per_key = match &d.per_key {
            Some(keys) => {
                let map: serde_json::Map<String, serde_json::Value> = keys
                    .iter()
                    .map(|(k, h)| (k.clone(), format!("{h:016x}").into()))
                    .collect();
                format!(r#","per_key":{}"#, serde_json::Value::Object(map))
            }
            None => String::new(),
        };
        self.line(format_args!(
            r#""event":"state","index":{},"values":"{:016x}","sessions":"{:016x}","keys":{}{per_key}"#,
            index.0, d.values, d.sessions, d.keys
        ));
    }

    /// `how` is "taken" (this node compacted) or "installed" (received from the leader).
    pub fn snapshot(&mut self, index: LogIndex, term: Term, how: &str) {
        self.line(format_args!(
            r#""event":"snapshot","index":{},"term":{},"how":"{how}""#,
            index.0, term.0
        ));
    }

    /// The configuration in force from `index` on: a committed
    /// configuration entry applied, a snapshot's, or the one known at start.
    pub fn config(&mut self, index: LogIndex, membership: &Membership) {
        let list = |ids: Vec<NodeId>| {
            serde_json::to_string(&ids.into_iter().map(|i| i.0).collect::<Vec<_>>())
                .unwrap_or_else(|_| "[]".into())
        };
        self.line(format_args!(
            r#""event":"config","index":{},"voters":{},"learners":{}"#,
            index.0,
            list(membership.voters_ids()),
            list(membership.learners_ids())
        ));
    }

    /// The node started on what its disk held: the term and vote it
    /// recovered (the harness holds them against the votes it gave before),
    /// and the rest in words.
    pub fn start(&mut self, term: Term, vote: Option<&NodeId>, detail: &str) {
        let vote = match vote {
            Some(v) => serde_json::to_string(&v.0).unwrap_or_else(|_| "null".into()),
            None => "null".into(),
        };
        let detail = serde_json::to_string(detail).unwrap_or_else(|_| "\"\"".into());
        self.line(format_args!(
            r#""event":"start","term":{},"vote":{vote},"detail":{detail}"#,
            term.0
        ));
    }

    /// As leader of `term`, the node appended a configuration entry at
    /// `index`, with `committed` its commit index then and `previous` the
    /// index of the configuration in force before it: the harness holds
    /// them against Raft's rules for changes (one at a time, none before
    /// the leader's term has committed an entry).
    pub fn change(&mut self, index: LogIndex, term: Term, committed: LogIndex, previous: LogIndex) {
        self.line(format_args!(
            r#""event":"change","index":{},"term":{},"committed":{},"previous":{}"#,
            index.0, term.0, committed.0, previous.0
        ));
    }

    /// The node gave its vote (not a pre-vote) to `candidate` in `term`.
    /// Logged only once the vote is durable, just before it is sent: a
    /// node that later restarts behind it broke its promise.
    pub fn vote(&mut self, term: Term, candidate: &NodeId) {
        let candidate = serde_json::to_string(&candidate.0).unwrap_or_else(|_| "\"\"".into());
        self.line(format_args!(
            r#""event":"vote","term":{},"candidate":{candidate}"#,
            term.0
        ));
    }

    /// Free-form lifecycle notes (start, recovery) that checkers ignore.
    pub fn note(&mut self, event: &str, detail: &str) {
        let detail = serde_json::to_string(detail).unwrap_or_else(|_| "\"\"".into());
        self.line(format_args!(r#""event":"{event}","detail":{detail}"#));
    }

    fn line(&mut self, fields: std::fmt::Arguments<'_>) {
        let time = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
        let _ = writeln!(
            self.buf,
            r#"{{"time":"{time}","node":"{}",{fields}}}"#,
            self.node
        );
    }

    /// Writes the buffered lines. Called before any effect they describe is released.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = self.file.write_all(&self.buf);
        self.buf.clear();
        r
    }
}

/// A 64-bit FNV-1a hash of what the entry asks the state machine to do: two
/// nodes applying different commands at one index get different digests.
pub fn digest(entry: &Entry) -> u64 {
    let kind: u8 = match entry.kind {
        EntryKind::Normal => 0,
        EntryKind::Noop => 1,
        EntryKind::Config => 2,
    };
    fnv1a(std::iter::once(kind).chain(entry.data.iter().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn lines_are_json_with_the_spec_fields() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = EventLog::open(&dir.path().join("events.jsonl"), "n1").unwrap();
        log.role(Role::Leader, Term(7));
        let e = Entry {
            index: LogIndex(42),
            term: Term(7),
            kind: EntryKind::Normal,
            data: Bytes::from_static(b"cmd"),
        };
        log.apply(&e);
        log.snapshot(LogIndex(40), Term(6), "taken");
        log.change(LogIndex(43), Term(7), LogIndex(42), LogIndex(30));
        log.start(
            Term(7),
            Some(&raft::NodeId::new("n2")),
            "recovered \"3\" entries",
        );
        let m = Membership::voters([raft::NodeId::new("n1"), raft::NodeId::new("n2")]);
        log.config(LogIndex(44), &m);
        log.vote(Term(8), &raft::NodeId::new("n3"));
        log.flush().unwrap();
        let text = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[3]["event"], "change");
        assert_eq!(lines[3]["index"], 43);
        assert_eq!(lines[3]["term"], 7);
        assert_eq!(lines[3]["committed"], 42);
        assert_eq!(lines[3]["previous"], 30);
        assert_eq!(lines[4]["event"], "start");
        assert_eq!(lines[4]["term"], 7);
        assert_eq!(lines[4]["vote"], "n2");
        assert_eq!(lines[6]["event"], "vote");
        assert_eq!(lines[6]["term"], 8);
        assert_eq!(lines[6]["candidate"], "n3");
        assert_eq!(lines[5]["event"], "config");
        assert_eq!(lines[5]["index"], 44);
        assert_eq!(lines[5]["voters"], serde_json::json!(["n1", "n2"]));
        assert_eq!(lines[5]["learners"], serde_json::json!([]));
        assert_eq!(lines[0]["event"], "role");
        assert_eq!(lines[0]["role"], "leader");
        assert_eq!(lines[0]["term"], 7);
        assert_eq!(lines[0]["node"], "n1");
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["index"], 42);
        assert_eq!(lines[1]["digest"].as_str().unwrap().len(), 16);
        assert_eq!(lines[2]["event"], "snapshot");
    }

    #[test]
    fn digests_tell_commands_and_noops_apart() {
        let mk = |kind, data: &'static [u8]| Entry {
            index: LogIndex(1),
            term: Term(1),
            kind,
            data: Bytes::from_static(data),
        };
        assert_ne!(
            digest(&mk(EntryKind::Normal, b"a")),
            digest(&mk(EntryKind::Normal, b"b"))
        );
        assert_ne!(
            digest(&mk(EntryKind::Normal, b"")),
            digest(&mk(EntryKind::Noop, b""))
        );
    }
}
