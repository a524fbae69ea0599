//! The `wipe` nemesis: a node loses its disk, and an operator re-adds it.
//!
//! `start-wipe` kills a voter, deletes its data directory and restarts it
//! at once with the same command line, as an operator whose disk was
//! replaced would. A correct node then finds the cluster, joins as a new
//! incarnation that votes for no one and counts toward nothing, and waits
//! to be re-added. `stop-wipe` re-adds it through the leader
//! (`ReaddMember`: removed, added back as a learner, promoted once caught
//! up), retrying while the leader has not yet heard from the new
//! incarnation.
//!
//! One node at a time, only while no member waits to be re-added, and only
//! among three voters or more: two voters of three that lost their disks,
//! or one of two, are a majority that lost its data, which nothing can
//! bring back, and which can never elect a leader again (README,
//! "Membership"). The look at the configuration and the wipe are one step
//! with respect to the `member` nemesis (`Shared::changing`).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Kind;
use super::moments::Moment;
use super::schedule::{Actor, Shared};
use crate::cluster::membership::Change;
use raft::Rng;

/// How long `stop-wipe` keeps asking for the re-add.
const READD_WITHIN: Duration = Duration::from_secs(10);
/// The fewest voters a wipe needs: the others must still be a majority
/// of them (of 2 voters, the one left is not).
const MIN_VOTERS: usize = 3;
/// How long a wipe waits for a leader to list the members.
const LEADER_WITHIN: Duration = Duration::from_secs(3);
/// Between two asks while the leader cannot re-add yet.
const RETRY: Duration = Duration::from_millis(300);

/// The wipe nemesis: the node wiped by the fault in force.
#[derive(Default)]
pub struct WipeNemesis {
    wiped: Option<String>,
}

impl WipeNemesis {
    /// A nemesis with nothing wiped yet.
    pub fn new() -> WipeNemesis {
        WipeNemesis::default()
    }
}

impl Actor for WipeNemesis {
    fn kind(&self) -> Kind {
        Kind::Wipe
    }

    async fn act(
        &mut self,
        start: bool,
        shared: &Shared,
        rng: &mut Rng,
        _moment: Option<Moment>,
    ) -> Value {
        if start {
            self.start(shared, rng).await
        } else {
            match self.wiped.take() {
                Some(node) => readd(shared, &node).await,
                None => json!({"skipped": "nothing was wiped"}),
            }
        }
    }

    fn describe(&self) -> Option<String> {
        self.wiped.as_ref().map(|n| format!("wiped {n}"))
    }
}

impl WipeNemesis {
    async fn start(&mut self, shared: &Shared, rng: &mut Rng) -> Value {
        let _changing = shared.changing.lock().await;
        let members = match shared.admin.members_within(LEADER_WITHIN).await {
            Ok(m) => m,
            Err(e) => return json!({"skipped": e}),
        };
        let waiting = members.awaiting_readd();
        if !waiting.is_empty() {
            return json!({"skipped": format!("{} waits to be re-added", waiting.join(", "))});
        }
        // The leader may not know yet that a node lost its data (the new
        // incarnation has not answered it): what the harness wiped and has
        // not seen re-added counts too.
        let unreadded: Vec<String> = shared
            .cluster()
            .nodes()
            .iter()
            .filter(|n| n.awaiting_readd && !n.is_out())
            .map(|n| n.id.clone())
            .collect();
        if !unreadded.is_empty() {
            return json!({"skipped": format!(
                "{} was wiped and not yet seen re-added",
                unreadded.join(", ")
            )});
        }
        let voters = members.voters().len();
        if voters < MIN_VOTERS {
            return json!({"skipped": format!(
                "{voters} voters: wiping one would leave no majority of voters with their data"
            )});
        }
        let mut c = shared.cluster();
        let candidates: Vec<String> = members
            .voters()
            .into_iter()
            .filter(|v| {
                c.node(v)
                    .is_ok_and(|n| !n.is_out() && !n.awaiting_readd && n.is_running())
            })
            .collect();
        if candidates.is_empty() {
            return json!({"skipped": "no running voter to wipe"});
        }
        let node = candidates[rng.below(candidates.len() as u64) as usize].clone();
        let done = c
            .wipe(&node)
            .and_then(|()| c.start_node(&node))
            .and_then(|()| c.set_awaiting_readd(&node, true));
        match done {
            Ok(()) => {
                self.wiped = Some(node.clone());
                json!({"nodes": [node], "target": "one", "restarted": true})
            }
            Err(e) => json!({"nodes": [node], "error": e.to_string()}),
        }
    }
}

/// Re-adds `node`, as an operator would, retrying refusals until the
/// leader knows the new incarnation (or [`READD_WITHIN`] has passed); a
/// node no longer in the configuration (a re-add cut off after its
/// removal) is added back instead. Also used by recovery for nodes still
/// waiting.
pub async fn readd(shared: &Shared, node: &str) -> Value {
    // Between the removal and the add, the node is no member: the member
    // nemesis must not take it for a stray meanwhile.
    let _changing = shared.changing.lock().await;
    let deadline = Instant::now() + READD_WITHIN;
    let mut tries = 0;
    loop {
        if shared.cluster().node(node).is_ok_and(|n| n.is_out()) {
            return json!({"readded": [], "skipped": format!("{node} was removed meanwhile")});
        }
        tries += 1;
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(RETRY);
        let mut change = shared.admin.readd(node, left).await;
        // A re-add cut off between its removal and its add (a new leader)
        // leaves the node outside: the operator adds it back.
        if matches!(change, Change::Refused(_))
            && shared
                .admin
                .members()
                .await
                .is_ok_and(|m| !m.contains(node))
        {
            let addr = shared.cluster().peer_addr(node);
            if let Ok(addr) = addr {
                change = shared.admin.add(node, addr, left).await;
            }
        }
        let readded = match &change {
            Change::Done(m) => m.contains(node),
            Change::Refused(_) => false,
            // The leader lists the node as a member in good standing also
            // before it has heard from the new incarnation: only the
            // incarnation the node answers with now, named in the
            // configuration, says the re-add took effect.
            Change::Unknown(_) => match shared.admin.incarnation_of(node).await {
                Some(now) => shared
                    .admin
                    .members()
                    .await
                    .is_ok_and(|m| m.counts(node, now)),
                None => false,
            },
        };
        if readded {
            let _ = shared.cluster().set_awaiting_readd(node, false);
        }
        if readded || Instant::now() + RETRY >= deadline {
            let mut value = change.to_json();
            value["readded"] = json!(if readded { vec![node] } else { vec![] });
            value["tries"] = json!(tries);
            return value;
        }
        tokio::time::sleep(RETRY).await;
    }
}
