//! The cluster's membership, asked of its leader through the node's Admin
//! API: list the members, add one, remove one, re-add one that lost its
//! data, and each node's own view (Status). The nemeses and recovery call
//! these functions only, so the system under test can later answer them
//! behind a trait of its own.
//!
//! Every call is bounded; a change whose answer does not arrive may or may
//! not have happened ([`Change::Unknown`]): the caller lists the members to
//! find out.

use std::net::SocketAddr;
use std::time::Duration;

use node::client::{MemberChange, MemberReply, NodeClient, StatusResponse};
use serde_json::{Value, json};

/// How long a listing or a Status may take.
const ASK: Duration = Duration::from_millis(500);
/// How many not-leader redirects a call follows.
const REDIRECTS: usize = 4;

/// How soon a listing asked of a hinted leader is asked again.
const HINTED_RETRY: Duration = Duration::from_millis(5);

/// Where the cluster's nodes are, and the cluster id requests carry.
#[derive(Clone, Debug)]
pub struct Admin {
    addrs: Vec<(String, SocketAddr)>,
    cluster_id: String,
    /// A node believed to lead, asked first (see [`Admin::leading`]).
    hint: Option<String>,
}

/// One member, as the leader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberView {
    /// Its id.
    pub id: String,
    /// A voter (else a learner).
    pub voter: bool,
    /// It lost its data and waits to be re-added.
    pub awaiting_readd: bool,
    /// The incarnation the configuration names (new after a wipe and a
    /// re-add).
    pub incarnation: u64,
}

/// The configuration in force, as the leader answered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Members {
    /// The leader that answered.
    pub leader: String,
    /// Every member, voters and learners.
    pub members: Vec<MemberView>,
}

impl Members {
    /// The voters' ids.
    pub fn voters(&self) -> Vec<String> {
        self.ids(|m| m.voter)
    }
    /// The learners' ids.
    pub fn learners(&self) -> Vec<String> {
        self.ids(|m| !m.voter)
    }
    /// The ids of members that wait to be re-added.
    pub fn awaiting_readd(&self) -> Vec<String> {
        self.ids(|m| m.awaiting_readd)
    }
    /// Whether `id` is a member (voter or learner).
    pub fn contains(&self, id: &str) -> bool {
        self.members.iter().any(|m| m.id == id)
    }
    /// Whether `id` is a member under `incarnation` and not waiting to be
    /// re-added: a re-add of that incarnation took effect.
    pub fn counts(&self, id: &str, incarnation: u64) -> bool {
        self.members
            .iter()
            .any(|m| m.id == id && m.incarnation == incarnation && !m.awaiting_readd)
    }
    fn ids(&self, keep: impl Fn(&MemberView) -> bool) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| keep(m))
            .map(|m| m.id.clone())
            .collect()
    }
    /// `{"voters": [..], "learners": [..]}` for the history.
    pub fn to_json(&self) -> Value {
        json!({"voters": self.voters(), "learners": self.learners()})
    }
}

/// How a change ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Done; the configuration after it.
    Done(Members),
    /// Refused, and why: nothing changed.
    Refused(String),
    /// No answer (timeout, connection lost, no leader): it may or may not
    /// have happened.
    Unknown(String),
}

impl Admin {
    /// The nodes (id, client address) and the cluster id.
    pub fn new(addrs: Vec<(String, SocketAddr)>, cluster_id: &str) -> Admin {
        Admin {
            addrs,
            cluster_id: cluster_id.to_string(),
            hint: None,
        }
    }

    /// This admin, asking `id` first (a node that just became leader):
    /// a change then reaches it in one round trip, not after every node's
    /// Status, while its term is young.
    pub fn leading(&self, id: &str) -> Admin {
        Admin {
            hint: Some(id.to_string()),
            ..self.clone()
        }
    }

    /// The configuration in force, from the leader (found by asking the
    /// nodes in turn and following redirects).
    pub async fn members(&self) -> Result<Members, String> {
        let mut last = "no node answered".to_string();
        let first = self.hint.iter();
        for id in first.chain(self.addrs.iter().map(|(id, _)| id)) {
            match self.ask_leader(id, None, ASK).await {
                Change::Done(m) => return Ok(m),
                Change::Refused(why) | Change::Unknown(why) => last = why,
            }
        }
        Err(last)
    }

    /// [`Admin::members`], asked again until a leader answers or `within`
    /// has passed (an election, a partition healing).
    pub async fn members_within(&self, within: Duration) -> Result<Members, String> {
        let deadline = std::time::Instant::now() + within;
        loop {
            match self.members().await {
                Ok(m) => return Ok(m),
                Err(e) if std::time::Instant::now() >= deadline => {
                    return Err(format!("no leader answered within {within:?} (last: {e})"));
                }
                // A hinted node may be a candidate about to win: ask
                // again soon, while its term is still young.
                Err(_) if self.hint.is_some() => tokio::time::sleep(HINTED_RETRY).await,
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Adds `id`, reached at `addr`, as a voter: the leader adds it as a
    /// learner and promotes it once caught up; answered once it counts.
    pub async fn add(&self, id: &str, addr: SocketAddr, within: Duration) -> Change {
        let change = MemberChange::Add {
            id: id.to_string(),
            addr: addr.to_string(),
            learner: false,
        };
        self.change(change, within).await
    }

    /// Removes `id` (the leader hands over first if it is `id`).
    pub async fn remove(&self, id: &str, within: Duration) -> Change {
        self.change(MemberChange::Remove(id.to_string()), within)
            .await
    }

    /// Re-adds `id`, which lost its data: removed, added back as a learner
    /// under its new incarnation, promoted once caught up.
    pub async fn readd(&self, id: &str, within: Duration) -> Change {
        self.change(MemberChange::Readd(id.to_string()), within)
            .await
    }

    /// The incarnation node `id` answers with now, if it answers.
    pub async fn incarnation_of(&self, id: &str) -> Option<u64> {
        let (_, addr) = self.addrs.iter().find(|(n, _)| n == id)?;
        let client = NodeClient::new(&addr.to_string(), &self.cluster_id, ASK).ok()?;
        client.status(ASK).await.ok().map(|s| s.incarnation)
    }

    /// Each node's Status (`None`: it did not answer in time), in node order.
    pub async fn statuses(&self) -> Vec<(String, Option<StatusResponse>)> {
        let asks = self.addrs.iter().map(|(id, addr)| {
            let (id, addr, cluster_id) = (id.clone(), addr.to_string(), self.cluster_id.clone());
            async move {
                let status = match NodeClient::new(&addr, &cluster_id, ASK) {
                    Ok(c) => c.status(ASK).await.ok(),
                    Err(_) => None,
                };
                (id, status)
            }
        });
        super::join_all(asks).await
    }

    /// Asks the first node that answers, following redirects to the
    /// leader; a change is sent once.
    async fn change(&self, change: MemberChange, within: Duration) -> Change {
        let leader = match &self.hint {
            Some(h) => Some(h.clone()),
            None => self.leader_hint().await,
        };
        let Some(leader) = leader else {
            return Change::Unknown("no leader known".into());
        };
        self.ask_leader(&leader, Some(change), within).await
    }

    /// The leader some node names (or is), if any.
    async fn leader_hint(&self) -> Option<String> {
        for (id, s) in self.statuses().await {
            let Some(s) = s else { continue };
            if s.role == "leader" {
                return Some(id);
            }
            if !s.leader_id.is_empty() {
                return Some(s.leader_id);
            }
        }
        None
    }

    /// Asks `first` (a listing without `change`), following redirects by
    /// leader id to the leader's client address.
    async fn ask_leader(
        &self,
        first: &str,
        change: Option<MemberChange>,
        within: Duration,
    ) -> Change {
        let mut at = first.to_string();
        for _ in 0..REDIRECTS {
            let Some(addr) = self.addr(&at) else {
                return Change::Unknown(format!("unknown node `{at}`"));
            };
            let client = match NodeClient::new(&addr.to_string(), &self.cluster_id, within) {
                Ok(c) => c,
                Err(e) => return Change::Unknown(e.to_string()),
            };
            let reply = match &change {
                None => client.members(within).await,
                Some(c) => client.change_members(c.clone(), within).await,
            };
            match reply {
                Err(e) => return Change::Unknown(format!("{at}: {}", e.message)),
                Ok(MemberReply::Refused(why)) => return Change::Refused(why),
                Ok(MemberReply::NotLeader {
                    leader_id: Some(l), ..
                }) if l != at => at = l,
                Ok(MemberReply::NotLeader { .. }) => {
                    return Change::Unknown(format!("{at}: no leader known"));
                }
                Ok(MemberReply::Done { members, .. }) => {
                    return Change::Done(Members {
                        leader: at,
                        members: members
                            .into_iter()
                            .map(|m| MemberView {
                                voter: m.role == "voter",
                                awaiting_readd: m.awaiting_readd,
                                incarnation: m.incarnation,
                                id: m.id,
                            })
                            .collect(),
                    });
                }
            }
        }
        Change::Unknown("too many redirects".into())
    }

    fn addr(&self, id: &str) -> Option<SocketAddr> {
        self.addrs.iter().find(|(i, _)| i == id).map(|(_, a)| *a)
    }
}

impl Change {
    /// How it ended, for the history: `{"done": true, "voters", "learners"}`,
    /// `{"refused": why}` or `{"unknown": why}`.
    pub fn to_json(&self) -> Value {
        match self {
            Change::Done(m) => {
                let mut v = m.to_json();
                v["done"] = json!(true);
                v
            }
            Change::Refused(why) => json!({"refused": why}),
            Change::Unknown(why) => json!({"unknown": why}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_split_into_voters_learners_and_those_awaiting_readd() {
        let m = |id: &str, voter, awaiting_readd| MemberView {
            id: id.into(),
            voter,
            awaiting_readd,
            incarnation: 1,
        };
        let members = Members {
            leader: "n1".into(),
            members: vec![
                m("n1", true, false),
                m("n2", true, true),
                m("n4", false, false),
            ],
        };
        assert_eq!(members.voters(), vec!["n1", "n2"]);
        assert_eq!(members.learners(), vec!["n4"]);
        assert_eq!(members.awaiting_readd(), vec!["n2"]);
        assert!(members.contains("n4") && !members.contains("n3"));
        // A re-add took effect only for the incarnation the list names,
        // and not while the member still waits.
        assert!(members.counts("n1", 1) && !members.counts("n1", 2));
        assert!(!members.counts("n2", 1) && !members.counts("n3", 1));
        assert_eq!(
            Change::Done(members).to_json(),
            json!({"voters": ["n1", "n2"], "learners": ["n4"], "done": true})
        );
        assert_eq!(
            Change::Refused("busy".into()).to_json(),
            json!({"refused": "busy"})
        );
    }
}
