//! Election safety (Raft §5.2, Figure 3): at most one leader per term.
//!
//! Reads the `role` events of every node's log and reports each term in
//! which more than one node said it became leader, with the nodes and the
//! times they said so.
//!
//! Members come and go. A node that joined late, or was removed, has a log
//! covering only the terms it took part in, and a node that never started
//! has none (it is not asked for one). A node that lost its data comes back
//! as a new incarnation (its `start` event names it) that votes afresh: to
//! Raft it is another server, so two of its incarnations leading one term
//! are two leaders (named `n2@<incarnation>`). A node restarted on its disk
//! is the same incarnation, and saying again that it leads a term is not a
//! second leader. The configurations the nodes applied (`config` events)
//! are counted for the report; they do not change the rule: whatever the
//! configuration, one leader per term.
//!
//! **Lost votes.** A node that says it gave its vote (`vote` events, which
//! our node writes only once the vote is durable) must keep it: one vote
//! per term (Figure 2: `votedFor` is persistent state). Within one
//! incarnation, a vote to another candidate in the same term, or a
//! restart that recovered a lower term, or the same term with another
//! vote, is a lost vote: a power cut took what the node had promised, and
//! the candidate it voted for may share the term with another leader. It
//! is reported even when no second leader came of it, since which one does
//! is luck.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::check::Verdict;
use crate::history::events::{EventKind, NodeLog, Role};

/// The `election` section of `results.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionResult {
    /// Invalid when some term had two leaders; unknown when some node's
    /// log is missing (see `reason`).
    pub valid: Verdict,
    /// Set when there was nothing to check (see [`crate::check`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Why the verdict is unknown: some node's events could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Terms in which some node became leader.
    pub terms: usize,
    /// Distinct sets of voters the nodes applied (0 when no node logs
    /// configurations).
    #[serde(default)]
    pub configurations: usize,
    /// Nodes that ran as more than one incarnation (lost their data), with
    /// how many.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub incarnations: BTreeMap<String, usize>,
    /// Every term with more than one leader, in term order.
    pub violations: Vec<ElectionViolation>,
    /// Votes given and then lost (see the module), in the order found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost_votes: Vec<LostVote>,
}

/// A node gave its vote, then acted as if it had not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostVote {
    /// The node (`n2@<incarnation>` after a wipe, as for leaders).
    pub node: String,
    /// The term of the vote.
    pub term: u64,
    /// Whom it voted for.
    pub candidate: String,
    /// When it gave the vote.
    pub given: String,
    /// What showed it lost, in words.
    pub then: String,
    /// When that happened: the restart, or the second vote.
    pub at: String,
}

/// Two or more leaders in one term.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionViolation {
    /// The term.
    pub term: u64,
    /// The nodes that said they became its leader, sorted.
    pub nodes: Vec<String>,
    /// When each node (same order) first logged that it became leader.
    pub times: Vec<String>,
}

/// Checks the `role` events of every log. No logs at all is a skip, not a
/// verdict (valid, with [`super::NO_EVENT_LOGS`]); a node whose log is
/// missing is for the caller to judge.
pub fn check(logs: &[NodeLog]) -> ElectionResult {
    if logs.is_empty() {
        return ElectionResult {
            valid: Verdict::Valid,
            skipped: Some(super::NO_EVENT_LOGS.to_string()),
            reason: None,
            terms: 0,
            configurations: 0,
            incarnations: BTreeMap::new(),
            violations: Vec::new(),
            lost_votes: Vec::new(),
        };
    }
    // term -> server (node, or node@incarnation after a wipe) -> time of
    // its first leader event in that term.
    let mut leaders: BTreeMap<u64, BTreeMap<String, String>> = BTreeMap::new();
    let mut configurations: BTreeSet<&[String]> = BTreeSet::new();
    let mut incarnations = BTreeMap::new();
    let mut lost_votes = Vec::new();
    for log in logs {
        // Incarnations in the order the node ran them; the first is named
        // by the node id alone.
        let mut seen: Vec<&str> = Vec::new();
        let mut server = log.node.clone();
        // This incarnation's votes: term -> (candidate, when).
        let mut votes: BTreeMap<u64, (&str, String)> = BTreeMap::new();
        let when = |e: &crate::history::events::NodeEvent| {
            e.time
                .clone()
                .unwrap_or_else(|| format!("{}:{} (no time)", log.path.display(), e.line))
        };
        for e in &log.events {
            match &e.kind {
                EventKind::Start {
                    incarnation,
                    recovered,
                } => {
                    if let Some(inc) = incarnation {
                        if !seen.contains(&inc.as_str()) {
                            seen.push(inc);
                            // A new incarnation: a new server, no votes yet.
                            votes.clear();
                        }
                        server = if seen.first() == Some(&inc.as_str()) {
                            e.node.clone()
                        } else {
                            format!("{}@{inc}", e.node)
                        };
                    }
                    if let (Some((term, vote)), Some((&given_term, (candidate, given)))) =
                        (recovered, votes.last_key_value())
                        && (*term < given_term
                            || (*term == given_term && vote.as_deref() != Some(*candidate)))
                    {
                        let then = match vote {
                            Some(v) => format!("restarted in term {term} with its vote for {v}"),
                            None => format!("restarted in term {term} with no vote"),
                        };
                        lost_votes.push(LostVote {
                            node: server.clone(),
                            term: given_term,
                            candidate: candidate.to_string(),
                            given: given.clone(),
                            then,
                            at: when(e),
                        });
                        // Reported once; what it recovered is its word now.
                        votes.retain(|&t, _| t < *term);
                    }
                }
                EventKind::Vote { term, candidate } => match votes.get(term) {
                    Some((first, given)) if first != candidate => {
                        lost_votes.push(LostVote {
                            node: server.clone(),
                            term: *term,
                            candidate: first.to_string(),
                            given: given.clone(),
                            then: format!("voted for {candidate} in the same term"),
                            at: when(e),
                        });
                    }
                    Some(_) => {}
                    None => {
                        votes.insert(*term, (candidate, when(e)));
                    }
                },
                EventKind::Config { voters, .. } => {
                    configurations.insert(voters.as_slice());
                }
                EventKind::Role {
                    role: Role::Leader,
                    term,
                } => {
                    let time = when(e);
                    leaders
                        .entry(*term)
                        .or_default()
                        .entry(server.clone())
                        .or_insert(time);
                }
                _ => {}
            }
        }
        if seen.len() > 1 {
            incarnations.insert(log.node.clone(), seen.len());
        }
    }
    let violations: Vec<ElectionViolation> = leaders
        .iter()
        .filter(|(_, nodes)| nodes.len() > 1)
        .map(|(&term, nodes)| ElectionViolation {
            term,
            nodes: nodes.keys().map(|n| n.to_string()).collect(),
            times: nodes.values().cloned().collect(),
        })
        .collect();
    ElectionResult {
        valid: if violations.is_empty() && lost_votes.is_empty() {
            Verdict::Valid
        } else {
            Verdict::Invalid
        },
        skipped: None,
        reason: None,
        terms: leaders.len(),
        configurations: configurations.len(),
        incarnations,
        violations,
        lost_votes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::events::parse_node_log;
    use std::path::Path;

    fn log(node: &str, lines: &[(&str, &str, u64)]) -> NodeLog {
        let text: String = lines
            .iter()
            .map(|(time, role, term)| {
                format!(
                    "{{\"time\":\"{time}\",\"node\":\"{node}\",\"event\":\"role\",\"role\":\"{role}\",\"term\":{term}}}\n"
                )
            })
            .collect();
        parse_node_log(&text, Path::new("events.jsonl"), node).unwrap()
    }

    #[test]
    fn one_leader_per_term_is_valid_even_when_repeated() {
        let r = check(&[
            log(
                "n1",
                &[
                    ("t1", "candidate", 1),
                    ("t2", "leader", 1),
                    ("t9", "leader", 1),
                ],
            ),
            log(
                "n2",
                &[
                    ("t1", "follower", 1),
                    ("t3", "candidate", 2),
                    ("t4", "leader", 2),
                ],
            ),
            log("n3", &[("t5", "candidate", 2), ("t6", "follower", 2)]),
        ]);
        assert_eq!(r.valid, Verdict::Valid);
        assert_eq!(r.terms, 2);
        assert!(r.violations.is_empty());
    }

    #[test]
    fn two_leaders_in_a_term_name_the_term_nodes_and_times() {
        let r = check(&[
            log("n1", &[("10:00:01", "leader", 3)]),
            log("n2", &[("10:00:00", "leader", 2)]),
            log(
                "n3",
                &[("10:00:02", "leader", 3), ("10:00:03", "leader", 4)],
            ),
        ]);
        assert_eq!(r.valid, Verdict::Invalid);
        assert_eq!(
            r.violations,
            vec![ElectionViolation {
                term: 3,
                nodes: vec!["n1".into(), "n3".into()],
                times: vec!["10:00:01".into(), "10:00:02".into()],
            }]
        );
    }

    fn text_log(node: &str, lines: &[&str]) -> NodeLog {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        parse_node_log(&text, Path::new("events.jsonl"), node).unwrap()
    }

    fn start(inc: &str) -> String {
        format!(
            r#"{{"event":"start","detail":"term 0 vote None, 0 log entries; incarnation {inc}, founder"}}"#
        )
    }

    fn leader(term: u64) -> String {
        format!(r#"{{"time":"t{term}","event":"role","role":"leader","term":{term}}}"#)
    }

    #[test]
    fn members_that_come_and_go_and_restarts_are_one_leader_per_term() {
        let config = |voters: &str| {
            format!(r#"{{"event":"config","index":1,"voters":{voters},"learners":[]}}"#)
        };
        let r = check(&[
            // n1 leads term 2, restarts on its disk and says once more that
            // it leads term 2: the same incarnation, one leader.
            text_log(
                "n1",
                &[
                    &start("aa"),
                    &config(r#"["n1","n2","n3"]"#),
                    &leader(2),
                    &start("aa"),
                    &leader(2),
                ],
            ),
            // n2 lost its disk in term 3 and came back as a new incarnation,
            // then led term 5.
            text_log("n2", &[&start("b1"), &leader(3), &start("b2"), &leader(5)]),
            // n4 joined later, and led term 6 in the grown configuration.
            text_log(
                "n4",
                &[
                    &start("d1"),
                    &config(r#"["n1","n2","n3","n4"]"#),
                    &leader(6),
                ],
            ),
        ]);
        assert_eq!(r.valid, Verdict::Valid, "{r:?}");
        assert_eq!(r.terms, 4);
        assert_eq!(r.configurations, 2);
        assert_eq!(r.incarnations.get("n2"), Some(&2));
    }

    #[test]
    fn two_incarnations_of_a_node_leading_one_term_are_two_leaders() {
        let r = check(&[text_log(
            "n2",
            &[&start("b1"), &leader(3), &start("b2"), &leader(3)],
        )]);
        assert_eq!(r.valid, Verdict::Invalid);
        assert_eq!(r.violations[0].nodes, vec!["n2", "n2@b2"]);
    }

    fn start_at(inc: &str, term: u64, vote: Option<&str>) -> String {
        let vote = vote.map_or("null".to_string(), |v| format!("{v:?}"));
        format!(
            r#"{{"time":"s{term}","event":"start","term":{term},"vote":{vote},"detail":"incarnation {inc}, founder"}}"#
        )
    }

    fn vote(term: u64, candidate: &str) -> String {
        format!(
            r#"{{"time":"v{term}{candidate}","event":"vote","term":{term},"candidate":"{candidate}"}}"#
        )
    }

    #[test]
    fn votes_kept_across_restarts_and_wipes_are_valid() {
        let r = check(&[text_log(
            "n3",
            &[
                &start_at("c1", 0, None),
                &vote(2, "n1"),
                &vote(2, "n1"),
                // Restarted on its disk: the vote survived, or a later term.
                &start_at("c1", 2, Some("n1")),
                &vote(3, "n2"),
                &start_at("c1", 4, None),
                // Wiped: a new incarnation votes afresh.
                &start_at("c2", 0, None),
                &vote(4, "n1"),
            ],
        )]);
        assert_eq!(r.valid, Verdict::Valid, "{r:?}");
        assert!(r.lost_votes.is_empty());
    }

    #[test]
    fn a_restart_behind_a_vote_or_a_second_vote_in_a_term_is_a_lost_vote() {
        let r = check(&[
            text_log(
                "n2",
                &[
                    &start_at("b1", 0, None),
                    &vote(5, "n1"),
                    &start_at("b1", 4, None),
                ],
            ),
            text_log(
                "n3",
                &[
                    &start_at("c1", 0, None),
                    &vote(5, "n1"),
                    &start_at("c1", 5, None),
                ],
            ),
            text_log("n4", &[&vote(7, "n1"), &vote(7, "n2")]),
        ]);
        assert_eq!(r.valid, Verdict::Invalid);
        assert!(r.violations.is_empty(), "no second leader is needed");
        let lost: Vec<(&str, u64, &str, &str)> = r
            .lost_votes
            .iter()
            .map(|l| {
                (
                    l.node.as_str(),
                    l.term,
                    l.candidate.as_str(),
                    l.then.as_str(),
                )
            })
            .collect();
        assert_eq!(
            lost,
            vec![
                ("n2", 5, "n1", "restarted in term 4 with no vote"),
                ("n3", 5, "n1", "restarted in term 5 with no vote"),
                ("n4", 7, "n1", "voted for n2 in the same term"),
            ]
        );
        assert_eq!(r.lost_votes[0].given, "v5n1");
        assert_eq!(r.lost_votes[0].at, "s4");
    }

    #[test]
    fn no_logs_is_skipped() {
        let r = check(&[]);
        assert_eq!(r.valid, Verdict::Valid);
        assert!(r.skipped.is_some());
    }
}
