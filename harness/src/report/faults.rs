//! Fault intervals from the nemesis ops of a history.
//!
//! `start-X` opens a fault of kind X and `stop-X` closes it; Jepsen's plain
//! `start` / `stop` pair is kind `fault`. A Jepsen nemesis logs each action
//! twice (invocation and completion, both `info`): a second `start` of a kind
//! already in force only fills in the targets. `recover` (the end of every
//! harness run) closes whatever is still open and is kept as a marker, as is
//! any other nemesis op (`node-exited`, Jepsen's `kill`, ...). A fault never
//! closed lasts until the end of the history.

use serde_json::Value as Json;

use super::html::truncate;
use crate::history::{History, Payload};

/// A fixed CSS class per fault kind (kinds come from the input: never a class).
pub fn kind_class(kind: &str) -> &'static str {
    match kind {
        "partition" => "fk-partition",
        "packet" => "fk-packet",
        "kill" => "fk-kill",
        "pause" => "fk-pause",
        "power" => "fk-power",
        "slow-disk" => "fk-slow-disk",
        "member" => "fk-member",
        "wipe" => "fk-wipe",
        _ => "fk-other",
    }
}

/// One fault, in history time.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// `partition`, `packet`, `kill`, `pause`, or another name from the
    /// history.
    pub kind: String,
    /// When it started (history time, ns).
    pub start: u64,
    /// When it ended (the end of the history if it never did).
    pub end: u64,
    /// The targets in words: `n1, n2 (majority)`, `bridge: n1 n2 | n1 n3`,
    /// `n2 (one): delay, loss`.
    pub targets: String,
    /// Nodes taken down (kill) or stopped (pause); empty for network faults.
    pub nodes: Vec<String>,
    /// How it ended: `stop-kill`, `recover`, or `end of history`.
    pub ended_by: String,
    /// History index of the op that started it.
    pub index: u64,
    /// What each node's disk lost (power cuts), in node order.
    pub lost: Vec<DiskLoss>,
}

/// What one node's disk lost at a power cut (`start-power`'s `lost`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiskLoss {
    /// The node.
    pub node: String,
    /// Bytes of unsynced writes thrown away.
    pub bytes: u64,
    /// Files whose content went back, and names whose creation was lost.
    pub files: u64,
    /// Unlinks and renames undone.
    pub names_restored: u64,
    /// What went wrong: the power-off failed, or lazyfs could not undo
    /// something.
    pub error: Option<String>,
}

impl DiskLoss {
    /// `19.0 KiB in 1 file`, `nothing`, `3 names restored`, `failed: ...`.
    pub fn words(&self) -> String {
        if let Some(e) = &self.error {
            return format!("failed: {}", truncate(e, 80));
        }
        let mut parts = Vec::new();
        if self.bytes > 0 || self.files > 0 {
            let s = if self.files == 1 { "" } else { "s" };
            parts.push(format!(
                "{} in {} file{s}",
                bytes_words(self.bytes),
                self.files
            ));
        }
        if self.names_restored > 0 {
            parts.push(format!("{} names restored", self.names_restored));
        }
        if parts.is_empty() {
            "nothing".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// `312 B`, `19.0 KiB`, `2.4 MiB`.
pub fn bytes_words(b: u64) -> String {
    match b {
        0..1024 => format!("{b} B"),
        1024..1_048_576 => format!("{:.1} KiB", b as f64 / 1024.0),
        _ => format!("{:.1} MiB", b as f64 / 1_048_576.0),
    }
}

/// The per-node losses in a power cut's value: `{"lost": {"n1": {...}}}`.
fn losses(value: &Json) -> Vec<DiskLoss> {
    let Some(lost) = value.get("lost").and_then(Json::as_object) else {
        return Vec::new();
    };
    let count = |v: &Json, k: &str| v.get(k).and_then(Json::as_u64).unwrap_or(0);
    lost.iter()
        .map(|(node, v)| {
            let errors: Vec<String> = v
                .get("errors")
                .and_then(Json::as_array)
                .map(|a| a.iter().map(as_text).collect())
                .unwrap_or_default();
            let error = v
                .get("error")
                .map(as_text)
                .or_else(|| (!errors.is_empty()).then(|| errors.join("; ")));
            DiskLoss {
                node: node.clone(),
                bytes: count(v, "bytes_lost"),
                files: count(v, "files_changed") + count(v, "files_lost"),
                names_restored: count(v, "names_restored"),
                error,
            }
        })
        .collect()
}

impl Fault {
    /// `kill n1, n2 (majority)`.
    pub fn label(&self) -> String {
        if self.targets.is_empty() {
            self.kind.clone()
        } else {
            format!("{} {}", self.kind, self.targets)
        }
    }
}

/// A nemesis event without duration.
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    /// When it happened (history time, ns).
    pub time: u64,
    /// The nemesis operation (`recover`, `node-exited`, ...).
    pub f: String,
    /// Its value, in short.
    pub detail: String,
}

/// The faults (ordered by start) and markers of a history.
pub fn faults(history: &History) -> (Vec<Fault>, Vec<Marker>) {
    let end = history.ops().last().map_or(0, |o| o.time);
    let mut open: Vec<Fault> = Vec::new();
    let mut done: Vec<Fault> = Vec::new();
    let mut markers = Vec::new();
    for op in history.ops() {
        let Payload::Nemesis(n) = &op.payload else {
            continue;
        };
        let (verb, kind) = match n.f.as_str() {
            "start" => ("start", "fault"),
            "stop" => ("stop", "fault"),
            f => match f.split_once('-') {
                Some(("start", k)) if !k.is_empty() => ("start", k),
                Some(("stop", k)) if !k.is_empty() => ("stop", k),
                _ => ("", f),
            },
        };
        match verb {
            "start" => {
                let (targets, nodes) = describe(kind, &n.value);
                if let Some(f) = open.iter_mut().find(|f| f.kind == kind) {
                    if f.targets.is_empty() {
                        f.targets = targets;
                        f.nodes = nodes;
                    }
                    continue;
                }
                open.push(Fault {
                    kind: kind.to_string(),
                    start: op.time,
                    end,
                    targets,
                    nodes,
                    ended_by: "end of history".to_string(),
                    index: u64::from(op.index),
                    lost: losses(&n.value),
                });
            }
            "stop" => {
                if let Some(i) = open.iter().position(|f| f.kind == kind) {
                    let mut f = open.remove(i);
                    f.end = op.time;
                    f.ended_by = n.f.clone();
                    done.push(f);
                }
            }
            _ => {
                if n.f == "recover" {
                    for mut f in open.drain(..) {
                        f.end = op.time;
                        f.ended_by = "recover".to_string();
                        done.push(f);
                    }
                }
                markers.push(Marker {
                    time: op.time,
                    f: n.f.clone(),
                    detail: compact(&n.value, 80),
                });
            }
        }
    }
    done.extend(open);
    done.sort_by_key(|f| (f.start, f.index));
    (done, markers)
}

/// Targets in words and the nodes a kill or pause hit.
fn describe(kind: &str, value: &Json) -> (String, Vec<String>) {
    let strings = |v: Option<&Json>| -> Vec<String> {
        v.and_then(Json::as_array)
            .map(|a| a.iter().map(as_text).collect())
            .unwrap_or_default()
    };
    if let Some(e) = value.get("error") {
        return (format!("failed: {}", truncate(&as_text(e), 80)), Vec::new());
    }
    if let Some(s) = value.get("skipped") {
        return (
            format!("skipped: {}", truncate(&as_text(s), 80)),
            Vec::new(),
        );
    }
    let nodes = strings(value.get("nodes"));
    if !nodes.is_empty() {
        // A membership change names its action (shrink, grow) and says
        // when the leader refused it.
        let target = value
            .get("target")
            .or_else(|| value.get("action"))
            .map(|t| format!(" ({})", as_text(t)))
            .unwrap_or_default();
        let target = match value.get("refused").or_else(|| value.get("unknown")) {
            Some(why) => format!("{target}: not done: {}", truncate(&as_text(why), 60)),
            None => target,
        };
        // What a packet fault did to those nodes' links.
        let behaviours = strings(value.get("behaviours"));
        let did = if let Some(ms) = value.get("fsync_delay_ms").and_then(Json::as_u64) {
            format!(": fsync +{ms} ms")
        } else if behaviours.is_empty() {
            String::new()
        } else {
            format!(": {}", behaviours.join(", "))
        };
        let shown = nodes.join(", ");
        let nodes = if matches!(kind, "partition" | "packet" | "slow-disk") {
            Vec::new()
        } else {
            nodes
        };
        return (format!("{shown}{target}{did}"), nodes);
    }
    if let Some(groups) = value.get("groups").and_then(Json::as_array) {
        let groups: Vec<String> = groups.iter().map(|g| strings(Some(g)).join(" ")).collect();
        let shape = value
            .get("shape")
            .map(|s| format!("{}: ", as_text(s)))
            .unwrap_or_default();
        return (format!("{shape}{}", groups.join(" | ")), Vec::new());
    }
    // The history.jsonl example form: a list of groups.
    if let Some(groups) = value.as_array()
        && !groups.is_empty()
        && groups.iter().all(Json::is_array)
    {
        let groups: Vec<String> = groups.iter().map(|g| strings(Some(g)).join(" ")).collect();
        return (groups.join(" | "), Vec::new());
    }
    if value.is_null() {
        return (String::new(), Vec::new());
    }
    (compact(value, 60), Vec::new())
}

/// A JSON string as its text, anything else as compact JSON.
fn as_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// Compact JSON, cut to `max` characters.
fn compact(v: &Json, max: usize) -> String {
    if v.is_null() {
        return String::new();
    }
    truncate(&as_text(v), max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Action, ClientOp, Op, ProcessId};
    use serde_json::json;

    fn history(ops: Vec<Op>) -> History {
        History::numbered(ops).unwrap()
    }

    #[test]
    fn pairs_starts_and_stops_and_recover_closes_the_rest() {
        let w = ClientOp::new(ProcessId(0), "k", Action::Write(1));
        let h = history(vec![
            Op::invoke(1, w.clone()),
            Op::nemesis(
                10,
                "start-kill",
                json!({"target": "majority", "nodes": ["n1", "n2"]}),
            ),
            Op::nemesis(
                20,
                "start-partition",
                json!({"shape": "bridge", "groups": [["n1", "n2"], ["n1", "n3"]], "cut": []}),
            ),
            Op::nemesis(30, "stop-kill", json!({"restarted": ["n1", "n2"]})),
            Op::nemesis(
                35,
                "node-exited",
                json!({"node": "n3", "status": "signal 9"}),
            ),
            Op::nemesis(40, "recover", json!({"healed": true})),
            Op::ok(50, w),
        ]);
        let (faults, markers) = faults(&h);
        assert_eq!(faults.len(), 2);
        assert_eq!(faults[0].label(), "kill n1, n2 (majority)");
        assert_eq!(kind_class("packet"), "fk-packet");
        assert_eq!((faults[0].start, faults[0].end), (10, 30));
        assert_eq!(faults[0].nodes, vec!["n1", "n2"]);
        assert_eq!(faults[1].label(), "partition bridge: n1 n2 | n1 n3");
        assert_eq!(
            (faults[1].end, faults[1].ended_by.as_str()),
            (40, "recover")
        );
        assert!(faults[1].nodes.is_empty());
        let names: Vec<&str> = markers.iter().map(|m| m.f.as_str()).collect();
        assert_eq!(names, vec!["node-exited", "recover"]);
    }

    #[test]
    fn a_packet_fault_names_its_nodes_and_behaviours_and_downs_no_node() {
        let h = history(vec![
            Op::nemesis(
                10,
                "start-packet",
                json!({"target": "one", "nodes": ["n2"], "behaviours": ["delay", "loss"],
                       "faults": "delay 50ms 10ms 25% loss 20% 75%",
                       "links": [["n1", "n2"], ["n2", "n1"]]}),
            ),
            Op::nemesis(20, "stop-packet", json!({"restored": ["n2"]})),
        ]);
        let (faults, _) = faults(&h);
        assert_eq!(faults.len(), 1);
        assert_eq!(faults[0].label(), "packet n2 (one): delay, loss");
        assert_eq!((faults[0].start, faults[0].end), (10, 20));
        assert_eq!(faults[0].ended_by, "stop-packet");
        assert!(faults[0].nodes.is_empty(), "a packet fault downs no node");
    }

    #[test]
    fn power_cuts_say_what_each_disk_lost() {
        let h = history(vec![
            Op::nemesis(
                10,
                "start-power",
                json!({"target": "all", "nodes": ["n1", "n2"], "loss": "all", "lost": {
                    "n1": {"bytes_lost": 19456, "files_changed": 1, "files_lost": 0, "names_restored": 0},
                    "n2": {"bytes_lost": 0, "files_changed": 0, "files_lost": 0, "names_restored": 0,
                           "errors": ["raft.wal: could not undo"]}}}),
            ),
            Op::nemesis(20, "stop-power", json!({"restarted": ["n1", "n2"]})),
        ]);
        let (faults, _) = faults(&h);
        assert_eq!(faults.len(), 1);
        let f = &faults[0];
        assert_eq!(f.label(), "power n1, n2 (all)");
        assert_eq!(f.nodes, vec!["n1", "n2"]);
        assert_eq!(kind_class(&f.kind), "fk-power");
        let words: Vec<String> = f.lost.iter().map(DiskLoss::words).collect();
        assert_eq!(
            words,
            vec!["19.0 KiB in 1 file", "failed: raft.wal: could not undo"]
        );
        assert_eq!(DiskLoss::default().words(), "nothing");
    }

    #[test]
    fn membership_changes_and_wipes_name_their_node_and_action() {
        let h = history(vec![
            Op::nemesis(
                10,
                "start-member",
                json!({"action": "shrink", "nodes": ["n2"], "voters": ["n1", "n3"], "learners": [], "done": true}),
            ),
            Op::nemesis(
                20,
                "stop-member",
                json!({"action": "grow", "nodes": ["n4"], "refused": "another change in progress"}),
            ),
            Op::nemesis(
                30,
                "start-wipe",
                json!({"nodes": ["n3"], "target": "one", "restarted": true}),
            ),
            Op::nemesis(40, "stop-wipe", json!({"readded": ["n3"], "done": true})),
        ]);
        let (faults, _) = faults(&h);
        assert_eq!(faults.len(), 2);
        assert_eq!(faults[0].label(), "member n2 (shrink)");
        assert_eq!((faults[0].start, faults[0].end), (10, 20));
        assert_eq!(kind_class("member"), "fk-member");
        assert_eq!(faults[1].label(), "wipe n3 (one)");
        assert_eq!(faults[1].ended_by, "stop-wipe");
        assert_eq!(kind_class("wipe"), "fk-wipe");
    }

    #[test]
    fn jepsen_start_stop_pairs_and_unclosed_faults() {
        let h = history(vec![
            Op::nemesis(1, "start", serde_json::Value::Null),
            Op::nemesis(2, "start", json!("Cut off {:n1 #{:n2}}")),
            Op::nemesis(5, "stop", serde_json::Value::Null),
            Op::nemesis(6, "stop", json!("fully connected")),
            Op::nemesis(7, "start-pause", json!([["n3"], ["n1", "n2"]])),
            Op::nemesis(9, "start-kill", json!({"error": "no such <node>"})),
        ]);
        let (faults, _) = faults(&h);
        assert_eq!(faults.len(), 3);
        assert_eq!(faults[0].label(), "fault Cut off {:n1 #{:n2}}");
        assert_eq!((faults[0].start, faults[0].end), (1, 5));
        assert_eq!(faults[1].targets, "n3 | n1 n2");
        assert_eq!(faults[1].ended_by, "end of history");
        assert_eq!(faults[2].targets, "failed: no such <node>");
    }
}
