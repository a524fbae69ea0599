//! What each node did: its roles over time (from `events.jsonl`), when it
//! was down, powered off or paused (from the history's faults), and the
//! per-node table (restarts, pauses, power cuts and what each lost, terms,
//! log length, links to its logs).
//!
//! Node events carry wall-clock times; the history counts nanoseconds from
//! the start of the load phase. [`Clock`] maps one onto the other: exactly
//! when `run.json` has `history_start`, otherwise approximately, taking the
//! first leader election as time 0 (the load starts right after it).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value as Json;

use super::faults::{DiskLoss, Fault};
use super::html::{esc, href_segment, thousands};
use crate::history::History;
use crate::history::events::{EventKind, NodeLog, Role, wall_ns};

/// Maps node wall-clock times to history time.
#[derive(Clone, Debug, PartialEq)]
pub struct Clock {
    /// Unix time of history time 0, in ns.
    pub origin: i128,
    /// Whether the origin is exact (`history_start` in `run.json`) or guessed
    /// from the first election.
    pub exact: bool,
}

impl Clock {
    /// From `run.json`'s `history_start`, else from the first leader event.
    pub fn new(run: &Json, logs: &[NodeLog]) -> Option<Clock> {
        if let Some(origin) = run
            .get("history_start")
            .and_then(Json::as_str)
            .and_then(wall_ns)
        {
            return Some(Clock {
                origin,
                exact: true,
            });
        }
        let first_leader = logs
            .iter()
            .flat_map(|l| &l.events)
            .filter(|e| {
                matches!(
                    e.kind,
                    EventKind::Role {
                        role: Role::Leader,
                        ..
                    }
                )
            })
            .filter_map(|e| e.time.as_deref().and_then(wall_ns))
            .min()?;
        Some(Clock {
            origin: first_leader,
            exact: false,
        })
    }

    /// History time of a wall-clock timestamp, clamped to `[0, end]`.
    pub fn at(&self, wall: Option<&str>, end: u64) -> Option<u64> {
        let ns = wall_ns(wall?)? - self.origin;
        Some(ns.clamp(0, end as i128) as u64)
    }
}

/// A stretch of time in one role.
#[derive(Clone, Debug, PartialEq)]
pub struct RoleSpan {
    /// When it began (history time, ns).
    pub start: u64,
    /// When it ended.
    pub end: u64,
    /// `leader`, `candidate`, `follower` or what the node wrote.
    pub role: String,
    /// The term.
    pub term: u64,
}

/// Everything the report says about one node.
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    /// The node's id.
    pub id: String,
    /// Its roles over time, from its event log.
    pub roles: Vec<RoleSpan>,
    /// When it was down (killed), from the faults.
    pub down: Vec<(u64, u64)>,
    /// When it was paused, from the faults.
    pub paused: Vec<(u64, u64)>,
    /// When its power was off, from the faults.
    pub powered_off: Vec<(u64, u64)>,
    /// What its disk lost at each power cut, in order.
    pub losses: Vec<DiskLoss>,
    /// Whether it has an event log.
    pub has_log: bool,
    /// Events in its log.
    pub events: usize,
    /// Terms it was in.
    pub terms: BTreeSet<u64>,
    /// Terms in which this node said it became leader.
    pub leader_terms: BTreeSet<u64>,
    /// The last index it applied.
    pub last_applied: Option<u64>,
    /// Entries it applied.
    pub applies: usize,
    /// Snapshots it took or installed.
    pub snapshots: usize,
    /// The index of its last snapshot.
    pub last_snapshot: Option<u64>,
    /// Lines of its log that could not be read (a torn last line, ...).
    pub warnings: usize,
    /// Process starts, from `run.json` (the first start counts).
    pub starts: Option<u64>,
    /// Kills and pauses: from `run.json` when it has them, else counted
    /// from the history's faults.
    pub kills: u64,
    /// Pauses, as kills.
    pub pauses: u64,
    /// Power cuts, as kills.
    pub power_offs: u64,
}

/// The nodes named anywhere: event logs, `run.json`, faults, client ops.
pub fn nodes(
    history: &History,
    logs: &[NodeLog],
    run: &Json,
    faults: &[Fault],
    clock: Option<&Clock>,
    end: u64,
) -> Vec<NodeInfo> {
    let mut by_id: BTreeMap<String, NodeInfo> = BTreeMap::new();
    fn entry<'m>(map: &'m mut BTreeMap<String, NodeInfo>, id: &str) -> &'m mut NodeInfo {
        map.entry(id.to_string()).or_insert_with(|| NodeInfo {
            id: id.to_string(),
            ..NodeInfo::default()
        })
    }
    for f in faults {
        for n in &f.nodes {
            let info = entry(&mut by_id, n);
            match f.kind.as_str() {
                "kill" => {
                    info.down.push((f.start, f.end));
                    info.kills += 1;
                }
                "pause" => {
                    info.paused.push((f.start, f.end));
                    info.pauses += 1;
                }
                "power" => {
                    info.powered_off.push((f.start, f.end));
                    info.power_offs += 1;
                    let loss = f.lost.iter().find(|l| l.node == *n).cloned();
                    info.losses.push(loss.unwrap_or_else(|| DiskLoss {
                        node: n.clone(),
                        error: Some("not recorded".into()),
                        ..DiskLoss::default()
                    }));
                }
                _ => {}
            }
        }
    }
    for op in history.ops().iter().take(100_000) {
        if let Some(n) = op.as_client().and_then(|c| c.node.as_ref()) {
            entry(&mut by_id, n.as_str());
        }
    }
    if let Some(stats) = run.get("nodes").and_then(Json::as_array) {
        for s in stats {
            let Some(id) = s.get("id").and_then(Json::as_str) else {
                continue;
            };
            let info = entry(&mut by_id, id);
            info.starts = s.get("starts").and_then(Json::as_u64);
            if let Some(k) = s.get("kills").and_then(Json::as_u64) {
                info.kills = k;
            }
            if let Some(p) = s.get("pauses").and_then(Json::as_u64) {
                info.pauses = p;
            }
            if let Some(p) = s.get("power_offs").and_then(Json::as_u64) {
                info.power_offs = p;
            }
        }
    }
    for log in logs {
        let kills: Vec<u64> = {
            let n = entry(&mut by_id, &log.node);
            n.down.iter().chain(&n.powered_off).map(|d| d.0).collect()
        };
        let info = entry(&mut by_id, &log.node);
        info.has_log = true;
        info.events = log.events.len();
        info.warnings = log.warnings.len();
        let mut last: Option<(u64, String, u64)> = None;
        let close = |from: (u64, String, u64), to: u64, roles: &mut Vec<RoleSpan>| {
            // A kill or power cut ends the role before the node's next
            // event says so.
            let cut = kills
                .iter()
                .copied()
                .filter(|&k| k > from.0 && k < to)
                .min()
                .unwrap_or(to);
            if cut > from.0 {
                roles.push(RoleSpan {
                    start: from.0,
                    end: cut,
                    role: from.1,
                    term: from.2,
                });
            }
        };
        for e in &log.events {
            match &e.kind {
                EventKind::Role { role, term } => {
                    info.terms.insert(*term);
                    let name = match role {
                        Role::Leader => {
                            info.leader_terms.insert(*term);
                            "leader".to_string()
                        }
                        Role::Candidate => "candidate".to_string(),
                        Role::Follower => "follower".to_string(),
                        Role::Other(s) => s.clone(),
                    };
                    if let Some(t) = clock.and_then(|c| c.at(e.time.as_deref(), end)) {
                        if let Some(prev) = last.take() {
                            close(prev, t, &mut info.roles);
                        }
                        last = Some((t, name, *term));
                    }
                }
                EventKind::Apply { index, .. } => {
                    info.applies += 1;
                    info.last_applied = info.last_applied.max(Some(*index));
                }
                EventKind::Snapshot { index, .. } => {
                    info.snapshots += 1;
                    info.last_snapshot = info.last_snapshot.max(Some(*index));
                }
                EventKind::Other(_)
                | EventKind::Start { .. }
                | EventKind::Vote { .. }
                | EventKind::Change { .. }
                | EventKind::Config { .. }
                | EventKind::State { .. } => {}
            }
        }
        if let Some(prev) = last {
            close(prev, end, &mut info.roles);
        }
    }
    let mut nodes: Vec<NodeInfo> = by_id.into_values().collect();
    nodes.sort_by_key(|n| natural_key(&n.id));
    nodes
}

/// `n2` before `n10`.
fn natural_key(s: &str) -> (String, u64, String) {
    let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (head, tail) = s.split_at(s.len() - digits);
    (head.to_string(), tail.parse().unwrap_or(0), s.to_string())
}

/// A fixed colour per node position (never from input).
pub fn node_colour(i: usize) -> &'static str {
    const PALETTE: [&str; 8] = [
        "#1f5fbf", "#7b3fb5", "#0f8a8a", "#b5457b", "#5a6e12", "#8a5a0f", "#3d4f9e", "#9e3d3d",
    ];
    PALETTE[i % PALETTE.len()]
}

/// `0, 1, 2` or `1–57 (40 terms)`.
fn terms_text(terms: &BTreeSet<u64>) -> String {
    match (terms.first(), terms.last()) {
        (None, _) | (_, None) => "–".to_string(),
        _ if terms.len() <= 8 => terms
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        (Some(a), Some(b)) => format!("{a}–{b} ({} terms)", terms.len()),
    }
}

/// The per-node section: a table, or why there is none.
pub fn section(nodes: &[NodeInfo], dir: Option<&Path>, has_logs: bool, source: &str) -> String {
    let mut out = String::new();
    if !has_logs {
        let _ = write!(
            out,
            "<p class=\"note\">No node event logs: this is {}. Leaders, terms and applied \
             indexes are not known, and election and state-machine safety were not checked.</p>",
            esc(source)
        );
    }
    if nodes.is_empty() {
        out.push_str("<p>No node is named in this history.</p>");
        return out;
    }
    // Only runs with power cuts get the column.
    let power = nodes
        .iter()
        .any(|n| n.power_offs > 0 || !n.losses.is_empty());
    let _ = write!(
        out,
        "<table class=\"nodes\"><thead><tr><th>node</th><th>starts</th><th>restarts</th>\
         <th>kills</th><th>pauses</th>{}<th>leader in terms</th><th>terms seen</th>\
         <th>last applied index</th><th>apply events</th><th>snapshots</th><th>logs</th></tr></thead><tbody>",
        if power {
            "<th>power cuts: what each lost</th>"
        } else {
            ""
        }
    );
    for (i, n) in nodes.iter().enumerate() {
        let starts = n.starts.map_or("–".to_string(), |s| s.to_string());
        let restarts = n
            .starts
            .map_or(n.kills.to_string(), |s| s.saturating_sub(1).to_string());
        let leader = if n.has_log {
            terms_text(&n.leader_terms)
        } else {
            "?".into()
        };
        let terms = if n.has_log {
            terms_text(&n.terms)
        } else {
            "?".into()
        };
        let applied = match (n.has_log, n.last_applied) {
            (false, _) => "?".to_string(),
            (true, None) => "none".to_string(),
            (true, Some(i)) => thousands(i as usize),
        };
        let snaps = match n.last_snapshot {
            Some(s) => format!("{} (last at {})", n.snapshots, thousands(s as usize)),
            None if n.has_log => "0".into(),
            None => "?".into(),
        };
        let mut links = Vec::new();
        if let Some(dir) = dir {
            let seg = href_segment(&n.id);
            for file in ["node.log", "events.jsonl"] {
                if dir.join("nodes").join(&n.id).join(file).is_file() {
                    links.push(format!("<a href=\"nodes/{seg}/{file}\">{file}</a>"));
                }
            }
        }
        if n.warnings > 0 {
            links.push(format!(
                "<span class=\"warn\">{} torn line(s)</span>",
                n.warnings
            ));
        }
        let power_cell = if power {
            let each: Vec<String> = n.losses.iter().map(DiskLoss::words).collect();
            let count = n.power_offs.max(n.losses.len() as u64);
            if each.is_empty() {
                format!("<td>{count}</td>")
            } else {
                format!("<td>{count}: {}</td>", esc(&each.join("; ")))
            }
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "<tr><td><span class=\"swatch\" style=\"background:{}\"></span>{}</td><td>{starts}</td>\
             <td>{restarts}</td><td>{}</td><td>{}</td>{power_cell}<td>{}</td><td>{}</td><td>{applied}</td><td>{}</td><td>{snaps}</td><td>{}</td></tr>",
            node_colour(i),
            esc(&n.id),
            n.kills,
            n.pauses,
            esc(&leader),
            esc(&terms),
            if n.has_log {
                thousands(n.applies)
            } else {
                "?".into()
            },
            if links.is_empty() {
                "–".to_string()
            } else {
                links.join(" ")
            }
        );
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::events::parse_node_log;
    use serde_json::json;

    fn log(node: &str, lines: &[&str]) -> NodeLog {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        parse_node_log(&text, Path::new("events.jsonl"), node).unwrap()
    }

    fn role(sec: &str, role: &str, term: u64) -> String {
        format!(
            "{{\"time\":\"2026-01-01T00:00:{sec}Z\",\"event\":\"role\",\"role\":\"{role}\",\"term\":{term}}}"
        )
    }

    #[test]
    fn roles_are_placed_on_the_history_clock_and_cut_by_kills() {
        let run = json!({"history_start": "2026-01-01T00:00:01Z",
                         "nodes": [{"id": "n1", "starts": 2, "kills": 1, "pauses": 0}]});
        let logs = vec![log(
            "n1",
            &[
                &role("00.5", "follower", 0),
                &role("01.0", "leader", 1),
                &role("05.0", "follower", 1),
                r#"{"event":"apply","index":7,"term":1,"digest":"a"}"#,
            ],
        )];
        let clock = Clock::new(&run, &logs).unwrap();
        assert!(clock.exact);
        let kill = Fault {
            kind: "kill".into(),
            start: 3_000_000_000,
            end: 4_000_000_000,
            targets: String::new(),
            nodes: vec!["n1".into()],
            ended_by: "stop-kill".into(),
            index: 0,
            lost: Vec::new(),
        };
        let nodes = nodes(
            &History::default(),
            &logs,
            &run,
            &[kill],
            Some(&clock),
            10_000_000_000,
        );
        assert_eq!(nodes.len(), 1);
        let n = &nodes[0];
        let roles: Vec<(u64, u64, &str)> = n
            .roles
            .iter()
            .map(|r| {
                (
                    r.start / 1_000_000_000,
                    r.end / 1_000_000_000,
                    r.role.as_str(),
                )
            })
            .collect();
        // Before time 0 clamps to 0; the leader span ends at the kill.
        assert_eq!(roles, vec![(0, 3, "leader"), (4, 10, "follower")]);
        assert_eq!(n.down, vec![(3_000_000_000, 4_000_000_000)]);
        assert_eq!(n.last_applied, Some(7));
        assert_eq!(n.starts, Some(2));
        let html = section(&nodes, None, true, "run");
        assert!(
            html.contains("<td>n1</td>") || html.contains("</span>n1</td>"),
            "{html}"
        );
        assert!(html.contains("<td>7</td>"), "{html}");
    }

    #[test]
    fn without_history_start_the_first_election_is_time_zero() {
        let logs = vec![log("n2", &[&role("03.0", "leader", 1)])];
        let clock = Clock::new(&json!({}), &logs).unwrap();
        assert!(!clock.exact);
        assert_eq!(
            clock.at(Some("2026-01-01T00:00:04Z"), u64::MAX),
            Some(1_000_000_000)
        );
        assert_eq!(
            natural_key("n10").cmp(&natural_key("n2")),
            std::cmp::Ordering::Greater
        );
    }

    #[test]
    fn no_logs_says_so() {
        let html = section(&[], None, false, "a history imported from Jepsen EDN");
        assert!(
            html.contains("No node event logs: this is a history imported from Jepsen EDN"),
            "{html}"
        );
    }
}
