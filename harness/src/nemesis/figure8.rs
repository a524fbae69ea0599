//! Figure 8 of the Raft paper, played on a real cluster with network faults
//! only (cuts and slow links, on either network: a proxy holds a slow
//! link's bytes back, the namespaces' emulator its packets). Random faults practically never reach the one bug it is about — a
//! leader that counts replicas of an entry from an earlier term as enough to
//! commit it (§5.4.2) — because a new leader's own entry normally travels in
//! the same message as the older ones. This nemesis steers the cluster, from
//! what the nodes' Status calls report, through the one history where that
//! rule matters. A round, with A the leader when it starts:
//!
//! 1. A is cut off. It goes on taking writes it cannot commit until it
//!    notices (check-quorum). The others elect a leader X over slow links
//!    (every byte `DELAY` late), and X is cut off the moment it leads, so
//!    its election entry reaches no one.
//! 2. A comes back to a bare majority Y (the others stay cut off), its links
//!    to them slow. With the longest log, A wins, and catches Y up with the
//!    entries of its old term, in as many AppendEntries as their size needs.
//!    As soon as A's commit index moves (or `CUT_AFTER` delays after it
//!    leads, if it never does), A is cut off. A catch-up message reaches Y
//!    at least one delay before anything sent in answer to its reply, so a
//!    leader that commits on the reply to an old-term message is cut off
//!    before its own election entry arrives.
//! 3. X meets Y. X's last entry is of a later term than anything Y got from
//!    A, so X wins and replaces those entries with its own.
//!
//! A correct A commits nothing in step 2, so nothing is lost. One that
//! counts old-term replicas has applied entries that X then replaced: the
//! state-machine checker finds two entries at one index, and A itself trips
//! over the overwrite when it rejoins.
//!
//! Each step is in the history (`start-figure8`, `figure8-step` markers,
//! `stop-figure8` with how the round went), and every wait is bounded: a
//! round that cannot go on (no leader, A has nothing the others lack) heals
//! and says why.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use node::client::{NodeClient, StatusResponse};
use serde_json::{Value, json};

use super::Kind;
use super::schedule::{Schedule, Shared, sleep_until};
use crate::cluster::join_all;
use crate::net::{CutMode, Link, LinkState};
use raft::Rng;

/// One-way delay of the slow links. Far over the Status polling period,
/// and short enough that a pre-vote and a vote round trip (four delays)
/// fit in the default 250 ms election timeout: at 100 ms most rounds
/// ended with the others electing no leader.
const DELAY: Duration = Duration::from_millis(50);
/// In step 2, how long A may lead before it is cut off even though its
/// commit index has not moved: its election entry has reached Y by then.
const CUT_AFTER: f64 = 10.0;
/// How often leaders and commit indexes are polled.
const POLL: Duration = Duration::from_millis(5);
const STATUS_TIMEOUT: Duration = Duration::from_millis(150);
/// Bound on each election the round waits for.
const ELECTION_WAIT: Duration = Duration::from_secs(5);
/// Bound on A noticing it lost its majority.
const STEP_DOWN_WAIT: Duration = Duration::from_secs(2);

/// Runs rounds until the schedule ends, with a calm gap after each.
pub async fn run(schedule: Schedule, shared: Arc<Shared>, seed: u64) {
    let mut rng = Rng::new(seed);
    if !sleep_until(Instant::now() + schedule.quiet, schedule.end).await {
        return;
    }
    let ids: Vec<String> = shared
        .members
        .addrs()
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    // The options refuse figure8 for a database that does not speak
    // `proto/` (docs/contract.md, "--nemesis").
    let Some(clients) = shared.members.raftkv_clients() else {
        return;
    };
    let round = Round {
        shared: &shared,
        ids,
        clients,
        end: schedule.end,
    };
    while Instant::now() < schedule.end {
        let outcome = round.play().await;
        round.heal(outcome);
        if !sleep_until(Instant::now() + schedule.gap(&mut rng), schedule.end).await {
            break;
        }
    }
}

struct Round<'a> {
    shared: &'a Shared,
    ids: Vec<String>,
    clients: Vec<(String, NodeClient)>,
    end: Instant,
}

/// How a round ended, for `stop-figure8`.
type Outcome = Value;

impl Round<'_> {
    async fn play(&self) -> Outcome {
        let majority = self.ids.len() / 2 + 1;
        if self.ids.len() < 3 {
            return json!({"skipped": "figure 8 needs at least 3 nodes"});
        }
        let Some((a, first)) = self.wait_for_leader(&self.ids, 0).await else {
            return json!({"skipped": "no leader to start from"});
        };
        let rest: Vec<String> = self.ids.iter().filter(|i| **i != a).cloned().collect();

        // 1. A alone; the rest elect X over slow links; X is cut off at once.
        let mut states = isolate(&a, &self.ids);
        for (from, to) in pairs(&rest) {
            states.insert((from, to), LinkState::Delay(DELAY));
        }
        if let Err(e) = self.shape(&states) {
            return json!({"error": e});
        }
        self.record(
            "start-figure8",
            json!({"nodes": [a], "leader": a, "term": first.term,
                   "step": "cut off the leader; slow links among the others"}),
        );
        self.show(&format!("figure8: {a} cut off, others electing"));
        let Some((x, xs)) = self.wait_for_leader(&rest, first.term).await else {
            return json!({"skipped": "the others elected no leader"});
        };
        let mut states = isolate(&a, &self.ids);
        states.extend(isolate(&x, &self.ids));
        if let Err(e) = self.shape(&states) {
            return json!({"error": e});
        }
        self.step(json!({"step": "cut off the new leader", "node": x, "term": xs.term}));
        self.wait_until(&a, STEP_DOWN_WAIT, |s| s.role != "leader")
            .await;

        // Y: a bare majority with A, the others with the longest logs (so
        // X's election entry falls where A's catch-up begins).
        let others: Vec<String> = rest.iter().filter(|i| **i != x).cloned().collect();
        let now = self.statuses(&self.ids).await;
        let last = |id: &String| now.get(id).map_or(0, |s| s.last_log_index);
        let mut by_length = others;
        by_length.sort_by_key(|id| std::cmp::Reverse(last(id)));
        let y: Vec<String> = by_length.into_iter().take(majority - 1).collect();
        let y_last = y.iter().map(last).max().unwrap_or(0);
        let logs: BTreeMap<&String, u64> = self.ids.iter().map(|id| (id, last(id))).collect();
        if last(&a) <= y_last {
            return json!({"skipped": "the old leader has no entries the others lack",
                          "last_log_index": logs});
        }

        // 2. A and Y, A's links slow; everyone else cut off.
        let mut states = BTreeMap::new();
        for id in self.ids.iter().filter(|i| **i != a && !y.contains(i)) {
            states.extend(isolate(id, &self.ids));
        }
        for to in &y {
            states.insert((a.clone(), to.clone()), LinkState::Delay(DELAY));
        }
        if let Err(e) = self.shape(&states) {
            return json!({"error": e});
        }
        self.step(json!({"step": "old leader back with slow links", "node": a,
                         "with": y, "last_log_index": logs}));
        self.show(&format!("figure8: {a} back, slow"));
        let mut among = y.clone();
        among.push(a.clone());
        let Some((leader, ls)) = self.wait_for_leader(&among, xs.term).await else {
            return json!({"skipped": "no leader among the old leader and Y"});
        };
        if leader != a {
            return json!({"skipped": format!("{leader} led instead of the old leader")});
        }
        let led = Instant::now();
        let cut_at = led + DELAY.mul_f64(CUT_AFTER);
        let committed = self
            .wait_until(&a, cut_at.saturating_duration_since(Instant::now()), |s| {
                s.commit_index > ls.commit_index
            })
            .await;
        let mut states = isolate(&a, &self.ids);
        for id in self
            .ids
            .iter()
            .filter(|i| **i != x && !y.contains(i) && **i != a)
        {
            states.extend(isolate(id, &self.ids));
        }
        if let Err(e) = self.shape(&states) {
            return json!({"error": e});
        }
        let a_commit = committed
            .as_ref()
            .map_or(ls.commit_index, |s| s.commit_index);
        self.step(
            json!({"step": "cut off the old leader", "node": a, "term": ls.term,
                         "after_ms": led.elapsed().as_millis() as u64,
                         "commit_index": a_commit,
                         "its_entry_at": ls.last_log_index}),
        );

        // 3. X meets Y.
        self.show(&format!("figure8: {x} meets {}", y.join(",")));
        let mut among = y.clone();
        among.push(x.clone());
        let Some((last_leader, s)) = self.wait_for_leader(&among, ls.term).await else {
            return json!({"skipped": "no leader among the new leader and Y"});
        };
        let settled = self
            .wait_until(&last_leader, ELECTION_WAIT, |t| {
                t.commit_index >= s.last_log_index
            })
            .await
            .is_some();
        json!({"old_leader": a, "old_leader_commit_index": a_commit,
               "old_leader_entry_at": ls.last_log_index,
               "leader": last_leader, "term": s.term, "settled": settled})
    }

    /// Polls `among` until one of them leads in a term above `above`.
    async fn wait_for_leader(
        &self,
        among: &[String],
        above: u64,
    ) -> Option<(String, StatusResponse)> {
        let deadline = (Instant::now() + ELECTION_WAIT).min(self.end);
        loop {
            let found = self
                .statuses(among)
                .await
                .into_iter()
                .filter(|(_, s)| s.role == "leader" && s.term > above)
                .max_by_key(|(_, s)| s.term);
            if found.is_some() {
                return found;
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls `id` until `done` holds (returning that status) or `within` passes.
    async fn wait_until(
        &self,
        id: &str,
        within: Duration,
        done: impl Fn(&StatusResponse) -> bool,
    ) -> Option<StatusResponse> {
        let deadline = (Instant::now() + within).min(self.end);
        loop {
            if let Some(s) = self.statuses(&[id.to_string()]).await.remove(id)
                && done(&s)
            {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The Status of each of `ids` that answers in time, asked concurrently.
    async fn statuses(&self, ids: &[String]) -> BTreeMap<String, StatusResponse> {
        let asks = self
            .clients
            .iter()
            .filter(|(id, _)| ids.contains(id))
            .map(|(id, c)| {
                let (id, c) = (id.clone(), c.clone());
                async move { (id, c.status(STATUS_TIMEOUT).await.ok()) }
            });
        join_all(asks)
            .await
            .into_iter()
            .filter_map(|(id, s)| Some((id, s?)))
            .collect()
    }

    fn shape(&self, states: &BTreeMap<Link, LinkState>) -> Result<(), String> {
        let cluster = self
            .shared
            .cluster
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        cluster.net().shape(states).map_err(|e| e.to_string())
    }

    fn heal(&self, mut outcome: Outcome) {
        let healed = self
            .shared
            .cluster
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .net()
            .heal_all();
        if let (Err(e), Some(o)) = (healed, outcome.as_object_mut()) {
            o.insert("heal_error".into(), json!(e.to_string()));
        }
        self.record("stop-figure8", outcome);
        self.shared
            .in_force
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&Kind::Figure8);
    }

    fn step(&self, value: Value) {
        self.record("figure8-step", value);
    }

    fn record(&self, f: &str, value: Value) {
        self.shared.recorder.nemesis(f, value);
    }

    fn show(&self, what: &str) {
        self.shared
            .in_force
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(Kind::Figure8, what.to_string());
    }
}

/// Every link between `node` and the others, both ways, cut.
fn isolate(node: &str, ids: &[String]) -> BTreeMap<Link, LinkState> {
    let cut = LinkState::Cut(CutMode::Blackhole);
    ids.iter()
        .filter(|id| *id != node)
        .flat_map(|id| {
            [
                ((node.to_string(), id.clone()), cut),
                ((id.clone(), node.to_string()), cut),
            ]
        })
        .collect()
}

/// Every ordered pair of distinct members of `ids`.
fn pairs(ids: &[String]) -> Vec<Link> {
    ids.iter()
        .flat_map(|f| {
            ids.iter()
                .filter(move |t| *t != f)
                .map(move |t| (f.clone(), t.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn isolating_a_node_cuts_exactly_its_links_both_ways() {
        let cut = isolate("n2", &ids(3));
        let links: Vec<&Link> = cut.keys().collect();
        assert_eq!(links.len(), 4);
        assert!(links.iter().all(|(f, t)| f == "n2" || t == "n2"));
        assert!(cut.values().all(|s| matches!(s, LinkState::Cut(_))));
    }

    #[test]
    fn pairs_are_every_ordered_pair() {
        assert_eq!(pairs(&ids(3)).len(), 6);
        assert!(pairs(&ids(1)).is_empty());
    }
}
