//! The `member` nemesis: the cluster shrinks and grows, as Jepsen's etcd
//! member nemesis does it.
//!
//! - **shrink**: a random member (the leader too) is removed through the
//!   leader, then killed and its data directory deleted; it stays outside
//!   the cluster.
//! - **grow**: a node outside the cluster (never added, or removed
//!   earlier) starts with an empty data directory and the command line it
//!   always has; it finds the cluster and waits as a non-voter; the leader
//!   adds it (a learner, promoted once caught up).
//!
//! `start-member` makes one change, drawn from those allowed; `stop-member`
//! makes the opposite kind of change (a grow after a shrink, and the other
//! way round) where allowed. A shrink never leaves fewer voters than a
//! majority of the run's nodes, and never fewer than two
//! ([`min_voters`]): `--nodes 5` keeps at least 3 voters, `--nodes 3` at
//! least 2. With `--initial-members` below `--nodes`, the other nodes start
//! outside, and the first changes grow the cluster.
//!
//! Each op's value says what changed: `{"action": "shrink"|"grow",
//! "nodes": [id], "voters", "learners"}` (the configuration after it), or
//! `"refused"`/`"unknown"` with why, or `"skipped"` when nothing was
//! allowed. Nothing shrinks while a wiped node waits to be re-added (the
//! leader refuses to remove another voter then, when it knows), and the
//! look at the configuration and the change are one step with respect to
//! the `wipe` nemesis (`Shared::changing`).

use std::time::Duration;

use serde_json::{Value, json};

use super::Kind;
use super::moments::Moment;
use super::schedule::{Actor, Shared};
use crate::cluster::membership::{Admin, Change, Members};
use raft::Rng;

/// How long a change may take: adding a voter waits for it to catch up.
const CHANGE_WITHIN: Duration = Duration::from_secs(10);

/// Of the changes, the share (in percent) timed on a protocol moment.
const MOMENT_PERCENT: u64 = 70;

/// How long a change waits for a leader to list the members.
const LEADER_WITHIN: Duration = Duration::from_secs(3);

/// The fewest voters a shrink leaves among `nodes` nodes: a majority of
/// them, and at least two.
pub fn min_voters(nodes: usize) -> usize {
    (nodes / 2 + 1).max(2)
}

/// Which change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Remove a member, kill it, wipe it.
    Shrink,
    /// Start a node outside the cluster, empty, and add it.
    Grow,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Shrink => "shrink",
            Action::Grow => "grow",
        }
    }
    fn opposite(self) -> Action {
        match self {
            Action::Shrink => Action::Grow,
            Action::Grow => Action::Shrink,
        }
    }
}

/// The member nemesis: what its last start did, so its stop undoes it.
#[derive(Default)]
pub struct MemberNemesis {
    started: Option<(Action, String)>,
    /// The configuration, listed before waiting for a moment.
    listed: Option<Members>,
}

impl MemberNemesis {
    /// A nemesis with no change made yet.
    pub fn new() -> MemberNemesis {
        MemberNemesis::default()
    }
}

/// The changes allowed now: shrink a member while at least `min` voters
/// remain after it and no member waits to be re-added (as the leader
/// knows, or as the harness does: `busy`, wiped and not yet re-added);
/// grow while a node is outside. Returns (shrinkable members, nodes
/// outside).
pub fn allowed(
    members: &Members,
    out: &[String],
    busy: &[String],
    min: usize,
) -> (Vec<String>, Vec<String>) {
    let voters = members.voters().len();
    let shrinkable = if members.awaiting_readd().is_empty() && busy.is_empty() {
        members
            .members
            .iter()
            .filter(|m| !m.voter || voters > min)
            .map(|m| m.id.clone())
            .collect()
    } else {
        Vec::new()
    };
    (shrinkable, out.to_vec())
}

impl Actor for MemberNemesis {
    fn kind(&self) -> Kind {
        Kind::Member
    }

    async fn act(
        &mut self,
        start: bool,
        shared: &Shared,
        rng: &mut Rng,
        moment: Option<Moment>,
    ) -> Value {
        let _changing = shared.changing.lock().await;
        // Timed on a new leader (or a vote for one): the change goes to it
        // at once, so that it lands while its term is young.
        let admin = match moment.as_ref().and_then(Moment::leader) {
            Some(leader) => shared.admin.leading(&leader),
            None => shared.admin.clone(),
        };
        let listed = match self.listed.take().filter(|_| moment.is_some()) {
            Some(m) => Ok(m),
            None => admin.members_within(LEADER_WITHIN).await,
        };
        let members = match listed {
            Ok(m) => m,
            Err(e) => {
                if !start {
                    self.started = None;
                }
                return json!({"skipped": e});
            }
        };
        let retired = take_out_strays(shared, &members);
        let (nodes, out, busy) = {
            let c = shared.cluster();
            let busy: Vec<String> = c
                .nodes()
                .iter()
                .filter(|n| n.awaiting_readd)
                .map(|n| n.id.clone())
                .collect();
            (c.ids().len(), c.out_ids(), busy)
        };
        let (shrinkable, growable) = allowed(&members, &out, &busy, min_voters(nodes));
        let possible = |a: Action| match a {
            Action::Shrink => !shrinkable.is_empty(),
            Action::Grow => !growable.is_empty(),
        };
        let wanted = match (&self.started, start) {
            (Some((a, _)), false) => a.opposite(),
            _ if rng.below(2) == 0 => Action::Shrink,
            _ => Action::Grow,
        };
        let action = if possible(wanted) {
            wanted
        } else if start && possible(wanted.opposite()) {
            wanted.opposite()
        } else {
            self.started = None;
            return json!({"skipped": format!("no {} allowed", wanted.name()), "voters": members.voters(),
                          "learners": members.learners(), "outside": out, "taken_out": retired});
        };
        let pool = match action {
            Action::Shrink => &shrinkable,
            Action::Grow => &growable,
        };
        let node = pool[rng.below(pool.len() as u64) as usize].clone();
        let outcome = match action {
            Action::Shrink => shrink(shared, &admin, &node).await,
            Action::Grow => grow(shared, &admin, &node).await,
        };
        self.started = start.then(|| (action, node.clone()));
        let mut value = json!({"action": action.name(), "nodes": [node]});
        if let Value::Object(o) = outcome {
            value.as_object_mut().expect("an object").extend(o);
        }
        if !retired.is_empty() {
            value["taken_out"] = json!(retired);
        }
        value
    }

    /// Lists the members now, so that a change timed on a new leader is
    /// one request to it (the list is at most one gap old: the leader
    /// refuses a change the configuration no longer allows).
    async fn prepare(&mut self, shared: &Shared) {
        self.listed = shared.admin.members_within(LEADER_WITHIN).await.ok();
    }

    /// Most changes wait for a new leader or a vote: a configuration
    /// change is riskiest while leadership moves (a change before the new
    /// leader's term has committed, Ongaro's 2015 correction; a change
    /// in flight when its leader falls), and at random times a change
    /// seldom meets one.
    fn moment_percent(&self) -> u64 {
        MOMENT_PERCENT
    }

    fn describe(&self) -> Option<String> {
        self.started
            .as_ref()
            .map(|(a, n)| format!("{} {n}", a.name()))
    }
}

/// Nodes the harness runs inside the cluster that the configuration no
/// longer (or never) names, and that do not wait to be re-added: a change
/// whose answer was lost but which took effect after all. They are taken
/// out as a shrink would (killed, wiped), so that a grow can bring them
/// back. Returns them.
fn take_out_strays(shared: &Shared, members: &crate::cluster::membership::Members) -> Vec<String> {
    let mut c = shared.cluster();
    let strays: Vec<String> = c
        .nodes()
        .iter()
        .filter(|n| !n.is_out() && !n.awaiting_readd && !members.contains(&n.id))
        .map(|n| n.id.clone())
        .collect();
    strays
        .into_iter()
        .filter(|id| c.retire(id).is_ok())
        .collect()
}

/// Removes `node`; once it is out of the configuration, kills and wipes it.
async fn shrink(shared: &Shared, admin: &Admin, node: &str) -> Value {
    let change = admin.remove(node, CHANGE_WITHIN).await;
    let gone = match &change {
        Change::Done(m) => !m.contains(node),
        Change::Refused(_) => false,
        // Find out whether it happened (if no leader can say, a later
        // change takes it out: `take_out_strays`).
        Change::Unknown(_) => shared
            .admin
            .members_within(LEADER_WITHIN)
            .await
            .is_ok_and(|m| !m.contains(node)),
    };
    let mut value = change.to_json();
    if gone {
        if let Err(e) = shared.cluster().retire(node) {
            value["error"] = json!(e.to_string());
        }
        value["wiped"] = json!(true);
    }
    value
}

/// Starts `node` (outside, its data directory empty) and adds it; if it
/// is not a member in the end, takes it out again.
async fn grow(shared: &Shared, admin: &Admin, node: &str) -> Value {
    let addr = {
        let mut c = shared.cluster();
        if let Err(e) = c.admit(node) {
            return json!({"error": e.to_string()});
        }
        c.peer_addr(node)
    };
    let addr = match addr {
        Ok(a) => a,
        Err(e) => return json!({"error": e.to_string()}),
    };
    let change = admin.add(node, addr, CHANGE_WITHIN).await;
    let member = match &change {
        Change::Done(m) => m.contains(node),
        Change::Refused(_) => false,
        // No leader can say: leave it running; a later change takes it
        // out if it is not a member (`take_out_strays`).
        Change::Unknown(_) => match shared.admin.members_within(LEADER_WITHIN).await {
            Ok(m) => m.contains(node),
            Err(_) => true,
        },
    };
    let mut value = change.to_json();
    if !member {
        if let Err(e) = shared.cluster().retire(node) {
            value["error"] = json!(e.to_string());
        }
        value["taken_out_again"] = json!(true);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::membership::MemberView;

    fn members(voters: &[&str], learners: &[&str], awaiting: &[&str]) -> Members {
        let view = |id: &&str, voter| MemberView {
            id: id.to_string(),
            voter,
            awaiting_readd: awaiting.contains(id),
            incarnation: 1,
        };
        Members {
            leader: "n1".into(),
            members: voters
                .iter()
                .map(|v| view(v, true))
                .chain(learners.iter().map(|l| view(l, false)))
                .collect(),
        }
    }

    #[test]
    fn a_majority_of_the_nodes_and_at_least_two_voters_stay() {
        assert_eq!(min_voters(3), 2);
        assert_eq!(min_voters(5), 3);
        assert_eq!(min_voters(1), 2);
        let out = vec!["n4".to_string(), "n5".to_string()];
        // 3 voters of 5 nodes: no voter may go, a learner may.
        let (shrink, grow) = allowed(&members(&["n1", "n2", "n3"], &["n4"], &[]), &out, &[], 3);
        assert_eq!(shrink, vec!["n4"]);
        assert_eq!(grow, out);
        let (shrink, _) = allowed(&members(&["n1", "n2", "n3", "n4"], &[], &[]), &[], &[], 3);
        assert_eq!(shrink.len(), 4);
    }

    #[test]
    fn nothing_shrinks_while_a_member_waits_to_be_readded_or_is_busy() {
        let m = members(&["n1", "n2", "n3", "n4"], &[], &["n2"]);
        assert!(allowed(&m, &[], &[], 2).0.is_empty());
        let m = members(&["n1", "n2", "n3", "n4"], &[], &[]);
        assert!(allowed(&m, &[], &["n3".to_string()], 2).0.is_empty());
    }
}
