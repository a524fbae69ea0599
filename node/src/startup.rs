//! Who this node is, and how it enters its cluster, settled before the
//! core starts (docs/contract.md, "Identity and joining").
//!
//! 1. [`open_identity`]: `DIR/identity` names the cluster, the node and
//!    its incarnation. Another node's or cluster's directory is refused; a
//!    directory without one is either empty (a new incarnation, written
//!    durably before anything else) or was written before identities
//!    existed (its node formed the cluster of its `--peer` flags).
//! 2. A node whose directory was empty is *undecided* until it knows
//!    whether its cluster exists ([`decide`], [`settle`]):
//!    - `--initial-cluster-state new`: it forms the cluster of itself and
//!      its `--peer` flags;
//!    - `--initial-cluster-state existing`: it joins: it never votes nor
//!      counts until a configuration names its incarnation (the leader's
//!      operator re-adds it: `member readd`);
//!    - neither (the default): it asks every peer (`Hello`). A founder
//!      whose founding configuration names this very incarnation means
//!      this node took part in forming the cluster: it adopts that
//!      configuration. Any other answer that shows a cluster (a founder, a
//!      node that joined) means the cluster exists without this
//!      incarnation: it joins. Only when every peer answers that it is
//!      undecided too, all with the same members, do they form the cluster
//!      together (each naming the others' incarnations). Otherwise (a peer
//!      does not answer) it waits and asks again, saying what the operator
//!      can do: a node that lost its disk must never form a new cluster
//!      because the nodes that hold the data are out of reach.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proto::raft as pb;
use proto::raft::raft_client::RaftClient;
use raft::{Member, MemberRole, Membership, NodeId};
use tonic::transport::Endpoint;

use crate::config::{ClusterState, NodeConfig, Peer};
use crate::storage::identity::{self, Identity, Standing, WrongOwner};
use crate::storage::{StorageError, WAL_FILE_NAME};

/// Why a node cannot start on its data directory.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Another node's or another cluster's directory.
    #[error(transparent)]
    WrongOwner(#[from] WrongOwner),
    /// The identity file could not be read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The directory has run as a member, but its log and vote are gone.
    #[error(
        "{dir}/raft.wal is missing, but {dir}/identity says this node ({node}) has been a \
         member of cluster `{cluster}`: its log and vote are lost. Restore raft.wal, or \
         remove the whole data directory to come back as a new member (then re-add it: \
         `harness kv member readd {node}`)"
    )]
    LostLog {
        /// The data directory.
        dir: String,
        /// The node.
        node: String,
        /// The cluster.
        cluster: String,
    },
    /// Peers that would form a cluster together disagree on its members.
    #[error(
        "{peer} would form a cluster of {theirs}, this node of {ours}: give every node the \
         same members (its own --id and its --peer flags)"
    )]
    Mismatch {
        /// The peer.
        peer: NodeId,
        /// The members it names.
        theirs: String,
        /// The members this node names.
        ours: String,
    },
}

/// Reads (or, for an empty directory, writes) `DIR/identity`. Call with
/// the directory locked, before anything else is written in it.
pub fn open_identity(cfg: &NodeConfig) -> Result<Identity, StartupError> {
    let dir = &cfg.data_dir;
    let wal_exists = dir.join(WAL_FILE_NAME).exists();
    if let Some(id) = identity::load(dir)? {
        id.check_owner(dir, &cfg.cluster_id, &cfg.id)?;
        if id.standing != Standing::Undecided && !wal_exists {
            return Err(StartupError::LostLog {
                dir: dir.display().to_string(),
                node: id.node_id.0.clone(),
                cluster: id.cluster_id.clone(),
            });
        }
        return Ok(id);
    }
    let mut id = Identity::fresh(&cfg.cluster_id, &cfg.id);
    if wal_exists {
        // Written before identities: its node formed the cluster of its
        // --peer flags (the only way a cluster was formed then).
        id.standing = Standing::Founder(flags_membership(cfg, 0));
    }
    identity::save(dir, &id)?;
    Ok(id)
}

/// This node and its `--peer` flags, all voters; this node named with
/// `own_incarnation`, the others unknown.
fn flags_membership(cfg: &NodeConfig, own_incarnation: u64) -> Membership {
    let mut members = vec![Member {
        id: cfg.id.clone(),
        addr: cfg.listen.to_string(),
        role: MemberRole::Voter,
        incarnation: own_incarnation,
    }];
    members.extend(cfg.peers.iter().map(|p| Member {
        id: p.id.clone(),
        addr: p.addr.clone(),
        role: MemberRole::Voter,
        incarnation: 0,
    }));
    Membership::new(members).expect("--peer ids are checked unique")
}

/// What a peer said to `Hello`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerAnswer {
    /// No answer (or an error): why.
    Unreachable(String),
    /// It is undecided too: its incarnation and the members it names.
    Undecided {
        /// Its incarnation.
        incarnation: u64,
        /// Its own id and its `--peer` ids.
        members: Vec<NodeId>,
    },
    /// It formed the cluster with these founders.
    Founder(Membership),
    /// It joined the cluster.
    Joined,
}

/// What an undecided node does after a round of `Hello`s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Form the cluster: every peer is undecided and names the same members.
    Form(Membership),
    /// A founder's configuration names this incarnation: adopt it.
    Adopt(Membership),
    /// The cluster exists without this incarnation: join it.
    Join {
        /// Whose answer showed it.
        because: NodeId,
    },
    /// Not every peer answered, and none showed a cluster: ask again.
    Wait {
        /// The peers that did not answer, and why.
        unreachable: Vec<(NodeId, String)>,
    },
}

/// Decides from one round of answers (see the module comment).
pub fn decide(
    cfg: &NodeConfig,
    incarnation: u64,
    answers: &[(Peer, PeerAnswer)],
) -> Result<Decision, StartupError> {
    for (peer, answer) in answers {
        match answer {
            PeerAnswer::Founder(m) => {
                let named = m
                    .get(&cfg.id)
                    .is_some_and(|me| me.incarnation == incarnation);
                return Ok(if named {
                    Decision::Adopt(m.clone())
                } else {
                    Decision::Join {
                        because: peer.id.clone(),
                    }
                });
            }
            PeerAnswer::Joined => {
                return Ok(Decision::Join {
                    because: peer.id.clone(),
                });
            }
            _ => {}
        }
    }
    let unreachable: Vec<(NodeId, String)> = answers
        .iter()
        .filter_map(|(p, a)| match a {
            PeerAnswer::Unreachable(why) => Some((p.id.clone(), why.clone())),
            _ => None,
        })
        .collect();
    if !unreachable.is_empty() {
        return Ok(Decision::Wait { unreachable });
    }
    let mut formed = flags_membership(cfg, incarnation);
    let ours = member_ids(cfg);
    for (peer, answer) in answers {
        if let PeerAnswer::Undecided {
            incarnation,
            members,
        } = answer
        {
            let mut theirs = members.clone();
            theirs.sort();
            if theirs != ours {
                return Err(StartupError::Mismatch {
                    peer: peer.id.clone(),
                    theirs: names(&theirs),
                    ours: names(&ours),
                });
            }
            let m = formed.get(&peer.id).expect("a --peer").clone();
            formed = formed.with(Member {
                incarnation: *incarnation,
                ..m
            });
        }
    }
    Ok(Decision::Form(formed))
}

/// This node's id and its `--peer` ids, sorted.
fn member_ids(cfg: &NodeConfig) -> Vec<NodeId> {
    let mut ids: Vec<NodeId> = cfg.peers.iter().map(|p| p.id.clone()).collect();
    ids.push(cfg.id.clone());
    ids.sort();
    ids
}

fn names(ids: &[NodeId]) -> String {
    ids.iter().map(NodeId::as_str).collect::<Vec<_>>().join(",")
}

/// What this node answers to `Hello`, kept up to date as it settles.
#[derive(Clone)]
pub struct HelloState(Arc<Mutex<pb::HelloResponse>>);

impl HelloState {
    /// The answer for `identity`, with the members this node names.
    pub fn new(cfg: &NodeConfig, identity: &Identity) -> HelloState {
        let state = HelloState(Arc::new(Mutex::new(pb::HelloResponse::default())));
        state.set(cfg, identity);
        state
    }

    /// Answers as `identity` from now on.
    pub fn set(&self, cfg: &NodeConfig, identity: &Identity) {
        use pb::hello_response::Standing as S;
        let (standing, founders) = match &identity.standing {
            Standing::Undecided => (S::Undecided, Vec::new()),
            Standing::Founder(m) => (S::Founder, m.encode()),
            Standing::Joined => (S::Joined, Vec::new()),
        };
        let answer = pb::HelloResponse {
            node_id: identity.node_id.0.clone(),
            incarnation: identity.incarnation,
            standing: standing as i32,
            founders: founders.into(),
            peers: member_ids(cfg).into_iter().map(|i| i.0).collect(),
        };
        *self.0.lock().expect("never poisoned: no panics while held") = answer;
    }

    /// The current answer.
    pub fn answer(&self) -> pb::HelloResponse {
        self.0.lock().expect("never poisoned").clone()
    }
}

/// Settles an undecided `identity` (see the module comment), durably, and
/// answers `Hello` as it goes. Returns when decided; `None` if `shutdown`
/// came first.
pub async fn settle(
    cfg: &NodeConfig,
    mut identity: Identity,
    hello: &HelloState,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<Option<Identity>, StartupError> {
    if identity.standing != Standing::Undecided {
        return Ok(Some(identity));
    }
    let standing = match cfg.initial_cluster_state {
        Some(ClusterState::New) => {
            tracing::info!(node = %cfg.id, "--initial-cluster-state new: forming the cluster");
            Standing::Founder(flags_membership(cfg, identity.incarnation))
        }
        Some(ClusterState::Existing) => {
            tracing::warn!(node = %cfg.id, "{}", joined_note(cfg, None));
            Standing::Joined
        }
        None => {
            let Some(standing) = probe(cfg, identity.incarnation, &mut shutdown).await? else {
                return Ok(None);
            };
            standing
        }
    };
    identity.standing = standing;
    identity::save(&cfg.data_dir, &identity)?;
    hello.set(cfg, &identity);
    Ok(Some(identity))
}

/// Asks the peers until the answers decide; `None` on shutdown.
async fn probe(
    cfg: &NodeConfig,
    incarnation: u64,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<Option<Standing>, StartupError> {
    let timeout = Duration::from_millis(500);
    let clients: Vec<(Peer, Option<RaftClient<tonic::transport::Channel>>)> = cfg
        .peers
        .iter()
        .map(|p| {
            let channel = Endpoint::from_shared(format!("http://{}", p.addr))
                .ok()
                .map(|e| e.connect_timeout(timeout).connect_lazy());
            (p.clone(), channel.map(RaftClient::new))
        })
        .collect();
    let mut last_said: Option<Instant> = None;
    loop {
        let asked = clients.iter().map(|(peer, client)| {
            let client = client.clone();
            let request = pb::HelloRequest {
                cluster_id: cfg.cluster_id.clone(),
                from: cfg.id.0.clone(),
                to: peer.id.0.clone(),
            };
            async move {
                let Some(mut client) = client else {
                    let why = format!("`{}` is not an address", peer.addr);
                    return (peer.clone(), PeerAnswer::Unreachable(why));
                };
                let mut req = tonic::Request::new(request);
                req.set_timeout(timeout);
                let answer = match tokio::time::timeout(timeout, client.hello(req)).await {
                    Ok(Ok(r)) => read_answer(peer, r.into_inner()),
                    Ok(Err(status)) => PeerAnswer::Unreachable(status.message().to_string()),
                    Err(_) => PeerAnswer::Unreachable("no answer".into()),
                };
                (peer.clone(), answer)
            }
        });
        let answers = futures_util::future::join_all(asked).await;
        match decide(cfg, incarnation, &answers)? {
            Decision::Form(m) => {
                tracing::info!(node = %cfg.id, "every peer is new too: forming the cluster ({m})");
                return Ok(Some(Standing::Founder(m)));
            }
            Decision::Adopt(m) => {
                tracing::info!(node = %cfg.id, "a founder names this node: joining the cluster it formed ({m})");
                return Ok(Some(Standing::Founder(m)));
            }
            Decision::Join { because } => {
                tracing::warn!(node = %cfg.id, "{}", joined_note(cfg, Some(&because)));
                return Ok(Some(Standing::Joined));
            }
            Decision::Wait { unreachable } => {
                if last_said.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    last_said = Some(Instant::now());
                    tracing::warn!(node = %cfg.id, "{}", waiting_note(cfg, &unreachable));
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(timeout) => {}
            _ = shutdown.changed() => return Ok(None),
        }
    }
}

fn read_answer(peer: &Peer, r: pb::HelloResponse) -> PeerAnswer {
    use pb::hello_response::Standing as S;
    if r.node_id != peer.id.0 {
        return PeerAnswer::Unreachable(format!(
            "{} answers as `{}`: check --peer {}={}",
            peer.addr, r.node_id, peer.id, peer.addr
        ));
    }
    match S::try_from(r.standing) {
        Ok(S::Undecided) => PeerAnswer::Undecided {
            incarnation: r.incarnation,
            members: r.peers.into_iter().map(NodeId).collect(),
        },
        Ok(S::Founder) => match Membership::decode(&r.founders) {
            Ok(m) => PeerAnswer::Founder(m),
            Err(e) => PeerAnswer::Unreachable(format!("a bad founding configuration: {e}")),
        },
        Ok(S::Joined) => PeerAnswer::Joined,
        Err(_) => PeerAnswer::Unreachable(format!("unknown standing {}", r.standing)),
    }
}

/// What the operator reads when this node joins an existing cluster.
fn joined_note(cfg: &NodeConfig, because: Option<&NodeId>) -> String {
    let why = match because {
        Some(p) => format!("{p} says the cluster exists without this node's data"),
        None => "--initial-cluster-state existing".to_string(),
    };
    format!(
        "{} starts with an empty data directory and joins the existing cluster ({why}): it \
         will not vote or count until its leader adds it; if it was a member before its \
         disk was lost, run `harness kv member readd {}` against the cluster; if it is new, \
         `harness kv member add {} {}`",
        cfg.id, cfg.id, cfg.id, cfg.listen
    )
}

/// What the operator reads while this node waits for its peers.
fn waiting_note(cfg: &NodeConfig, unreachable: &[(NodeId, String)]) -> String {
    let who: Vec<String> = unreachable
        .iter()
        .map(|(p, why)| format!("{p} ({why})"))
        .collect();
    format!(
        "{} has an empty data directory and cannot tell whether its cluster exists: no \
         answer from {}. Waiting, asking again every 0.5 s. A new cluster forms once every \
         node is up (or start every node with --initial-cluster-state new); a node that \
         lost its disk joins as soon as a peer answers (or start it with \
         --initial-cluster-state existing)",
        cfg.id,
        who.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(me: &str, peers: &[&str]) -> NodeConfig {
        let mut args = vec![
            "node".to_string(),
            "--id".into(),
            me.into(),
            "--listen".into(),
            "7001".into(),
            "--data-dir".into(),
            "/tmp/x".into(),
        ];
        for (i, p) in peers.iter().enumerate() {
            args.push("--peer".into());
            args.push(format!("{p}=127.0.0.1:{}", 7002 + i));
        }
        use clap::Parser;
        crate::cli::Args::try_parse_from(args)
            .unwrap()
            .into_config()
            .unwrap()
    }

    fn peer(c: &NodeConfig, id: &str) -> Peer {
        c.peers.iter().find(|p| p.id.0 == id).unwrap().clone()
    }

    fn undecided(inc: u64, ids: &[&str]) -> PeerAnswer {
        PeerAnswer::Undecided {
            incarnation: inc,
            members: ids.iter().map(|i| NodeId::new(*i)).collect(),
        }
    }

    #[test]
    fn every_peer_new_forms_the_cluster_naming_every_incarnation() {
        let c = cfg("n1", &["n2", "n3"]);
        let all = ["n3", "n1", "n2"];
        let answers = [
            (peer(&c, "n2"), undecided(22, &all)),
            (peer(&c, "n3"), undecided(33, &all)),
        ];
        let Decision::Form(m) = decide(&c, 11, &answers).unwrap() else {
            panic!("not formed");
        };
        let incs: Vec<u64> = m.members().iter().map(|m| m.incarnation).collect();
        assert_eq!(incs, [11, 22, 33]);
        assert_eq!(m.voter_count(), 3);
        // Alone, a node forms its cluster at once.
        let alone = cfg("n1", &[]);
        assert!(matches!(decide(&alone, 5, &[]), Ok(Decision::Form(_))));
    }

    #[test]
    fn a_peer_out_of_reach_means_waiting_never_forming() {
        let c = cfg("n3", &["n1", "n2"]);
        let answers = [
            (peer(&c, "n1"), PeerAnswer::Unreachable("no answer".into())),
            (peer(&c, "n2"), undecided(2, &["n1", "n2", "n3"])),
        ];
        assert_eq!(
            decide(&c, 3, &answers).unwrap(),
            Decision::Wait {
                unreachable: vec![(NodeId::new("n1"), "no answer".into())]
            }
        );
    }

    #[test]
    fn a_cluster_that_exists_is_joined_unless_it_names_this_incarnation() {
        let c = cfg("n3", &["n1", "n2"]);
        let founders = |inc3: u64| {
            let m = flags_membership(&c, inc3);
            PeerAnswer::Founder(m)
        };
        let down = (peer(&c, "n1"), PeerAnswer::Unreachable("no answer".into()));
        // Finding 1: n3 wiped, n1 down, n2 (which has the data, or not) up.
        let answers = [down.clone(), (peer(&c, "n2"), founders(99))];
        assert_eq!(
            decide(&c, 7, &answers).unwrap(),
            Decision::Join {
                because: NodeId::new("n2")
            }
        );
        let answers = [down.clone(), (peer(&c, "n2"), PeerAnswer::Joined)];
        assert!(matches!(decide(&c, 7, &answers), Ok(Decision::Join { .. })));
        // n2 formed the cluster with this very incarnation of n3: adopt.
        let answers = [down, (peer(&c, "n2"), founders(7))];
        assert!(matches!(decide(&c, 7, &answers), Ok(Decision::Adopt(_))));
    }

    #[test]
    fn peers_that_disagree_on_the_members_are_refused() {
        let c = cfg("n1", &["n2"]);
        let answers = [(peer(&c, "n2"), undecided(2, &["n2", "n1", "n4"]))];
        let err = decide(&c, 1, &answers).unwrap_err().to_string();
        assert!(err.contains("n2 would form a cluster of n1,n2,n4"), "{err}");
    }
}
