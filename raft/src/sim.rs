//! An in-process cluster of cores over a simulated network that can drop,
//! delay, duplicate and reorder messages, partition nodes, and crash and
//! restart them from what they made durable.
//!
//! Every step checks the safety properties of §5.2 Figure 3: at most one
//! leader per term, leader completeness, and that no two nodes apply
//! different entries at the same index. A violation panics, unless
//! [`Sim::record_violations`] is set: then the first is kept in
//! [`Sim::violation`] for a sweep to count (the seeded bugs' sweeps).
//!
//! With `compact_every` set, nodes snapshot their state machine and compact
//! their logs (§7) as the driver does, so lagging nodes catch up by
//! InstallSnapshot. A node's state machine is the list of entries it
//! applied; a snapshot image is that list up to the snapshot's index, and
//! every step checks that a state machine is always a gapless prefix.
//!
//! Membership: nodes outside the initial configuration start as nodes
//! that join (an empty initial configuration), and [`Sim::wipe`] gives a
//! node a new, empty disk and a new incarnation, as an operator replacing
//! its disk would. Every committed configuration must differ from the one
//! before by one member (single-server changes), and a new leader must
//! hold the votes of a majority of its configuration's voters, each given
//! by the incarnation the configuration names if the voter joined with an
//! empty disk (so never by a learner, nor a node that lost its data).

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;

use super::{
    Body, Config, Entry, EntryKind, HardState, LogIndex, Membership, Message, NodeId, Raft, Ready,
    Role, SnapshotMeta, Term,
};
use splitmix::Rng;

/// Everything a node made durable: what survives a crash.
#[derive(Clone, Debug, Default)]
pub struct Durable {
    pub hard_state: HardState,
    pub snapshot: SnapshotMeta,
    pub log: Vec<Entry>,
}

impl Durable {
    /// What storage does with a `Ready`: install, write the hard state, cut, append.
    pub fn persist(&mut self, ready: &Ready) {
        if let Some(install) = &ready.snapshot {
            self.snapshot = install.meta.clone();
            self.log.retain(|e| e.index > install.meta.index);
        }
        if let Some(hs) = &ready.hard_state {
            self.hard_state = hs.clone();
        }
        if let Some(cut) = ready.truncate_from {
            self.log.retain(|e| e.index < cut);
        }
        for e in &ready.entries {
            let expected = self
                .log
                .last()
                .map_or(self.snapshot.index, |l| l.index)
                .next();
            assert_eq!(e.index, expected, "storage got a gap");
            self.log.push(e.clone());
        }
    }
}

pub struct SimNode {
    pub raft: Option<Raft>,
    pub durable: Durable,
    /// The state machine: every entry applied, from index 1, in order (what
    /// a snapshot image stands for included).
    pub applied: Vec<Entry>,
    /// Snapshots installed from a leader, by this node in all incarnations.
    pub installs: u64,
    /// Snapshots taken by compacting, in all incarnations.
    pub compactions: u64,
    /// The configuration it was formed with; empty for a node that joined.
    pub initial: Membership,
    /// It started with an empty disk in an existing cluster (see `Config::joined`).
    pub joined: bool,
    /// Its incarnation: new after every wipe.
    pub incarnation: u64,
}

#[derive(Clone, Debug)]
pub struct Faults {
    /// Chance per thousand that a message is lost.
    pub drop: u64,
    /// Chance per thousand that a message arrives twice.
    pub duplicate: u64,
    /// Extra ticks a message may wait; different waits reorder messages.
    pub max_delay: u64,
}

impl Faults {
    pub fn none() -> Faults {
        Faults {
            drop: 0,
            duplicate: 0,
            max_delay: 0,
        }
    }
    pub fn lossy() -> Faults {
        Faults {
            drop: 100,
            duplicate: 50,
            max_delay: 8,
        }
    }
}

/// Decides which messages a scripted scenario loses.
pub type DropFilter = Box<dyn Fn(&Message) -> bool>;

pub struct Sim {
    pub ids: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, SimNode>,
    pub now: u64,
    pub faults: Faults,
    template: Config,
    rng: Rng,
    in_flight: Vec<(u64, Message)>,
    /// Directed links that deliver nothing.
    blocked: HashSet<(NodeId, NodeId)>,
    leaders: HashMap<Term, NodeId>,
    /// Every entry any node applied, by index: all nodes must agree.
    pub applied: BTreeMap<LogIndex, (Term, Bytes)>,
    restarts: u64,
    /// Snapshot images by index: every node that snapshots at an index must
    /// have applied the same entries, so one image per index is enough.
    pub images: HashMap<LogIndex, Vec<Entry>>,
    /// Scripted scenarios drop the messages this returns true for.
    pub drop_if: Option<DropFilter>,
    /// Scripted scenarios hold back the messages this returns true for, in
    /// `held`, to deliver them later (or never) with [`Sim::deliver`].
    pub hold_if: Option<DropFilter>,
    pub held: Vec<Message>,
    /// Snapshot and compact a node's log once it has applied this many
    /// entries past its last snapshot.
    pub compact_every: Option<u64>,
    /// Keep the first safety violation in `violation` instead of panicking.
    pub record_violations: bool,
    /// The first safety violation seen, with `record_violations`.
    pub violation: Option<String>,
    /// Every committed configuration, by index, starting with the one the
    /// cluster was formed with at index 0.
    pub configs: BTreeMap<LogIndex, Membership>,
    next_incarnation: u64,
    /// Real votes granted, by candidate and term.
    votes: HashMap<(NodeId, Term), Vec<Vote>>,
}

/// A vote granted: by whom, its incarnation then, and whether it had
/// joined with an empty disk.
type Vote = (NodeId, u64, bool);

/// The configuration of every simulated node but its id and peers: short
/// timers (T = 10 ticks, heartbeats every 2) so runs are quick.
pub fn config(seed: u64) -> Config {
    let mut cfg = Config::new(NodeId::new("n1"), Vec::new());
    cfg.election_ticks = 10;
    cfg.heartbeat_ticks = 2;
    cfg.seed = seed;
    cfg
}

/// `n1` to `nN`.
pub fn ids(n: usize) -> Vec<NodeId> {
    (1..=n).map(|i| NodeId(format!("n{i}"))).collect()
}

impl Sim {
    /// `n` nodes configured as [`config`] says.
    pub fn new(n: usize, seed: u64) -> Sim {
        Sim::with_config(ids(n), config(seed), seed)
    }

    /// A cluster formed of all of `ids`.
    pub fn with_config(ids: Vec<NodeId>, template: Config, seed: u64) -> Sim {
        let voters = ids.clone();
        Sim::with_members(ids, &voters, template, seed)
    }

    /// A cluster formed of `voters`; the other `ids` are nodes that join it
    /// (not members until a leader adds them).
    pub fn with_members(ids: Vec<NodeId>, voters: &[NodeId], template: Config, seed: u64) -> Sim {
        let formed = Membership::voters(voters.iter().cloned());
        let mut sim = Sim {
            nodes: BTreeMap::new(),
            now: 0,
            faults: Faults::none(),
            rng: Rng::new(seed.wrapping_mul(31).wrapping_add(7)),
            in_flight: Vec::new(),
            blocked: HashSet::new(),
            leaders: HashMap::new(),
            applied: BTreeMap::new(),
            restarts: 0,
            images: HashMap::new(),
            drop_if: None,
            hold_if: None,
            held: Vec::new(),
            compact_every: None,
            record_violations: false,
            violation: None,
            configs: BTreeMap::from([(LogIndex(0), formed.clone())]),
            votes: HashMap::new(),
            next_incarnation: 1000,
            template,
            ids: ids.clone(),
        };
        for id in ids {
            let joined = !formed.contains(&id);
            let incarnation = sim.new_incarnation();
            sim.nodes.insert(
                id.clone(),
                SimNode {
                    raft: None,
                    durable: Durable::default(),
                    applied: Vec::new(),
                    installs: 0,
                    compactions: 0,
                    initial: if joined {
                        Membership::default()
                    } else {
                        formed.clone()
                    },
                    joined,
                    incarnation,
                },
            );
            sim.start(&id);
        }
        sim
    }

    fn new_incarnation(&mut self) -> u64 {
        self.next_incarnation += 1;
        self.next_incarnation
    }

    /// Replaces a node's durable state before it starts (for scripted scenarios).
    pub fn set_durable(&mut self, id: &NodeId, durable: Durable) {
        self.nodes.get_mut(id).unwrap().durable = durable;
        self.start(id);
    }

    fn config_for(&self, id: &NodeId) -> Config {
        let node = &self.nodes[id];
        let mut cfg = self.template.clone();
        cfg.id = id.clone();
        cfg.initial = node.initial.clone();
        cfg.joined = node.joined;
        cfg.incarnation = node.incarnation;
        cfg.seed = self.template.seed.wrapping_add(self.restarts * 1000);
        cfg
    }

    fn start(&mut self, id: &NodeId) {
        self.restarts += 1;
        let cfg = self.config_for(id);
        let image = self.image(self.nodes[id].durable.snapshot.index);
        let node = self.nodes.get_mut(id).unwrap();
        let d = node.durable.clone();
        // Restart = load the snapshot, then replay the log after it.
        node.applied = image;
        node.raft = Some(Raft::new(cfg, d.hard_state, d.snapshot, d.log));
    }

    pub fn crash(&mut self, id: &NodeId) {
        self.nodes.get_mut(id).unwrap().raft = None;
    }

    pub fn restart(&mut self, id: &NodeId) {
        self.start(id);
        self.process(id);
    }

    /// The node's disk is replaced by an empty one: it comes back as a new
    /// incarnation that joins the existing cluster.
    pub fn wipe(&mut self, id: &NodeId) {
        let incarnation = self.new_incarnation();
        let node = self.nodes.get_mut(id).unwrap();
        node.raft = None;
        node.durable = Durable::default();
        node.applied = Vec::new();
        node.initial = Membership::default();
        node.joined = true;
        node.incarnation = incarnation;
        self.restart(id);
    }

    /// The node (down) lost the entries after `keep` from its disk.
    pub fn lose_tail(&mut self, id: &NodeId, keep: LogIndex) {
        let node = self.nodes.get_mut(id).unwrap();
        assert!(node.raft.is_none(), "{id} must be down");
        node.durable.log.retain(|e| e.index <= keep);
    }

    pub fn is_up(&self, id: &NodeId) -> bool {
        self.nodes[id].raft.is_some()
    }

    pub fn raft(&self, id: &NodeId) -> &Raft {
        self.nodes[id].raft.as_ref().expect("node is up")
    }

    fn raft_mut(&mut self, id: &NodeId) -> &mut Raft {
        self.nodes
            .get_mut(id)
            .unwrap()
            .raft
            .as_mut()
            .expect("node is up")
    }

    /// Cuts every link between the groups; links inside a group stay.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        self.blocked.clear();
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                if i != j {
                    for x in a {
                        for y in b {
                            self.blocked.insert((x.clone(), y.clone()));
                        }
                    }
                }
            }
        }
    }

    pub fn isolate(&mut self, id: &NodeId) {
        let rest: Vec<NodeId> = self.ids.iter().filter(|p| *p != id).cloned().collect();
        self.partition(&[vec![id.clone()], rest]);
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// The live leader of the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter_map(|(id, n)| n.raft.as_ref().map(|r| (id, r)))
            .filter(|(_, r)| r.role() == Role::Leader)
            .max_by_key(|(_, r)| r.term())
            .map(|(id, _)| id.clone())
    }

    pub fn propose(&mut self, id: &NodeId, data: &[u8]) -> Option<(LogIndex, Term)> {
        let r = self.raft_mut(id).propose(Bytes::copy_from_slice(data)).ok();
        self.process(id);
        r
    }

    /// One unit of time: every live node ticks, then due messages arrive.
    pub fn step(&mut self) {
        self.now += 1;
        for id in self.ids.clone() {
            if let Some(r) = self.nodes.get_mut(&id).unwrap().raft.as_mut() {
                r.tick();
                self.process(&id);
            }
        }
        // Messages due now arrive in random order.
        let now = self.now;
        let mut due: Vec<Message> = Vec::new();
        self.in_flight.retain(|(t, m)| {
            if *t <= now {
                due.push(m.clone());
                false
            } else {
                true
            }
        });
        for i in (1..due.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            due.swap(i, j);
        }
        for m in due {
            self.deliver(m);
        }
    }

    pub fn run(&mut self, ticks: u64) {
        for _ in 0..ticks {
            self.step();
        }
    }

    /// Steps until `done` holds, at most `max` ticks. Returns whether it
    /// held; false at once after a recorded safety violation.
    pub fn run_until(&mut self, max: u64, mut done: impl FnMut(&Sim) -> bool) -> bool {
        for _ in 0..max {
            if self.violation.is_some() {
                return false;
            }
            if done(self) {
                return true;
            }
            self.step();
        }
        self.violation.is_none() && done(self)
    }

    pub fn deliver(&mut self, m: Message) {
        let to = m.to.clone();
        let Some(r) = self.nodes.get_mut(&to).unwrap().raft.as_mut() else {
            return;
        };
        r.step(m);
        self.process(&to);
    }

    fn send(&mut self, m: Message) {
        if self.blocked.contains(&(m.from.clone(), m.to.clone())) {
            return;
        }
        if self.drop_if.as_ref().is_some_and(|f| f(&m)) {
            return;
        }
        if self.hold_if.as_ref().is_some_and(|f| f(&m)) {
            self.held.push(m);
            return;
        }
        if self.rng.below(1000) < self.faults.drop {
            return;
        }
        let copies = if self.rng.below(1000) < self.faults.duplicate {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = 1 + self.rng.below(self.faults.max_delay + 1);
            self.in_flight.push((self.now + delay, m.clone()));
        }
    }

    /// Acts on a node's Ready the way the real driver does, checking safety as it goes.
    pub fn process(&mut self, id: &NodeId) {
        loop {
            let node = self.nodes.get_mut(id).unwrap();
            let Some(raft) = node.raft.as_mut() else {
                return;
            };
            if !raft.has_ready() {
                return;
            }
            let ready = raft.ready();
            for rc in &ready.role_changes {
                if rc.role == Role::Leader {
                    self.check_new_leader(id, rc.term);
                }
            }
            for m in ready.messages.clone() {
                self.send(m);
            }
            let node = self.nodes.get_mut(id).unwrap();
            node.durable.persist(&ready);
            if let Some(install) = &ready.snapshot {
                // The state machine becomes the snapshot image; the transport
                // carried it from the leader, which saved it when it compacted.
                let image = self.image(install.meta.index);
                let at = self.nodes[id].applied.len();
                if image.len() <= at {
                    self.violated(format!(
                        "{id} installed a snapshot at {} over a state machine at {at}",
                        install.meta.index
                    ));
                }
                let node = self.nodes.get_mut(id).unwrap();
                node.applied = image;
                node.installs += 1;
            }
            let node = self.nodes.get_mut(id).unwrap();
            if let Some(last) = node.durable.log.last() {
                let (i, t) = (last.index, last.term);
                node.raft.as_mut().unwrap().on_persisted(i, t);
            }
            for m in ready.persisted_messages.clone() {
                if let Body::VoteResponse(v) = &m.body
                    && v.granted
                    && !v.pre_vote
                {
                    let node = &self.nodes[id];
                    let vote = (id.clone(), node.incarnation, node.joined);
                    self.votes
                        .entry((m.to.clone(), m.term))
                        .or_default()
                        .push(vote);
                }
                self.send(m);
            }
            for e in &ready.committed {
                self.check_apply(id, e);
                if e.index.0 != self.nodes[id].applied.len() as u64 + 1 {
                    self.violated(format!("{id} applied {} out of order", e.index));
                }
                self.nodes.get_mut(id).unwrap().applied.push(e.clone());
            }
            self.maybe_compact(id);
        }
    }

    /// The image of the snapshot at `index`: what every node applied up to it.
    fn image(&mut self, index: LogIndex) -> Vec<Entry> {
        if index == LogIndex(0) {
            return Vec::new();
        }
        match self.images.get(&index) {
            Some(image) => image.clone(),
            None => {
                self.violated(format!("no node took a snapshot at index {index}"));
                Vec::new()
            }
        }
    }

    /// A safety property does not hold: panic, or keep the first for the
    /// sweep that asked to count them.
    fn violated(&mut self, what: String) {
        if !self.record_violations {
            panic!("{what}");
        }
        self.violation.get_or_insert(what);
    }

    /// What the driver does after applying: snapshot the state machine once
    /// it is `compact_every` entries past the last snapshot, then compact.
    fn maybe_compact(&mut self, id: &NodeId) {
        let Some(every) = self.compact_every else {
            return;
        };
        let node = self.nodes.get_mut(id).unwrap();
        let raft = node.raft.as_mut().unwrap();
        let applied = raft.log().applied;
        let base = raft.log().snapshot().index;
        if applied.0 < base.0 + every.max(1) {
            return;
        }
        // A node that joined does not know the configuration before the
        // first one it received: no snapshot there (the driver's rule too).
        let Some(membership) = raft.membership_at(applied).cloned() else {
            return;
        };
        let meta = SnapshotMeta {
            index: applied,
            term: raft
                .log()
                .term(applied)
                .expect("applied entries are in the log"),
            membership,
        };
        let mut wrong = None;
        if node.applied.len() as u64 != applied.0 {
            wrong = Some(format!(
                "{id}'s state machine holds {} entries, its core says {applied}",
                node.applied.len()
            ));
        }
        match self.images.get(&applied) {
            Some(image) if *image != node.applied => {
                wrong = Some(format!(
                    "{id}'s snapshot at {applied} differs from another node's"
                ));
            }
            Some(_) => {}
            None => {
                self.images.insert(applied, node.applied.clone());
            }
        }
        // Durable first (the snapshot file, then the WAL rewrite), then the core forgets.
        node.durable.snapshot = meta.clone();
        node.durable.log.retain(|e| e.index > applied);
        raft.compact(meta);
        node.compactions += 1;
        if let Some(what) = wrong {
            self.violated(what);
        }
    }

    /// A new leader holds the votes of a majority of its configuration's
    /// voters: granted by voters (never learners), each as the incarnation
    /// the configuration names if it joined with an empty disk.
    fn check_votes(&mut self, id: &NodeId, term: Term) {
        let membership = self.nodes[id].raft.as_ref().unwrap().membership().clone();
        let granted = self
            .votes
            .get(&(id.clone(), term))
            .cloned()
            .unwrap_or_default();
        let mut counted: HashSet<NodeId> = granted
            .into_iter()
            .filter(|(voter, incarnation, joined)| {
                membership.get(voter).is_some_and(|m| {
                    m.role == crate::MemberRole::Voter && (!joined || m.incarnation == *incarnation)
                })
            })
            .map(|(voter, _, _)| voter)
            .collect();
        if membership.is_voter(id) {
            counted.insert(id.clone());
        }
        let need = crate::quorum::majority(membership.voter_count());
        if counted.len() < need {
            let what = format!(
                "{id} leads term {term} with {} votes that count, of {need} needed ({membership})",
                counted.len()
            );
            self.violated(what);
        }
    }

    /// Election Safety (at most one leader per term) and Leader Completeness
    /// (a new leader holds every entry anyone applied).
    fn check_new_leader(&mut self, id: &NodeId, term: Term) {
        if let Some(other) = self.leaders.get(&term)
            && other != id
        {
            let what = format!("two leaders in term {term}: {other} and {id}");
            self.violated(what);
        }
        self.leaders.insert(term, id.clone());
        self.check_votes(id, term);
        let raft = self.nodes[id].raft.as_ref().unwrap();
        let missing = self.applied.iter().find(|(index, (t, data))| {
            **index > raft.log().snapshot().index
                && !raft
                    .log()
                    .entry(**index)
                    .is_some_and(|e| e.term == *t && e.data == *data)
        });
        if let Some((index, _)) = missing {
            let what = format!("leader {id} of term {term} lacks committed entry {index}");
            self.violated(what);
        }
    }

    /// State Machine Safety: no two nodes apply different entries at one
    /// index. The first application of a configuration entry must differ
    /// from the configuration committed before it by one member.
    fn check_apply(&mut self, id: &NodeId, e: &Entry) {
        if e.kind == EntryKind::Config && !self.applied.contains_key(&e.index) {
            let next = Membership::decode(&e.data).expect("configurations decode");
            let prev = self
                .configs
                .range(..e.index)
                .next_back()
                .map(|(_, m)| m.clone())
                .unwrap_or_default();
            let changed = single_change(&prev, &next);
            if changed != 1 {
                let what = format!(
                    "configuration at {} changes {changed} members: {prev} -> {next}",
                    e.index
                );
                self.violated(what);
            }
            self.configs.insert(e.index, next);
        }
        match self.applied.get(&e.index) {
            Some((t, data)) if *t != e.term || *data != e.data => {
                let what = format!(
                    "{id} applied ({}, term {}) where another node applied term {t}",
                    e.index, e.term
                );
                self.violated(what);
            }
            Some(_) => {}
            None => {
                self.applied.insert(e.index, (e.term, e.data.clone()));
            }
        }
    }

    /// All live members (of the leader's configuration, if there is a
    /// leader) applied the same entries up to the same index, and as far
    /// as any node applied (a node removed since may have applied entries a
    /// new leader has not yet committed again).
    pub fn converged(&self) -> bool {
        let furthest = self
            .nodes
            .values()
            .filter_map(|n| n.raft.as_ref())
            .map(|r| r.log().applied)
            .max();
        let members = self.leader().map(|l| self.raft(&l).membership().clone());
        let live: Vec<&SimNode> = self
            .nodes
            .iter()
            .filter(|(id, n)| n.raft.is_some() && members.as_ref().is_none_or(|m| m.contains(id)))
            .map(|(_, n)| n)
            .collect();
        let Some(first) = live.first() else {
            return true;
        };
        let a = first.raft.as_ref().unwrap().log().applied;
        Some(a) >= furthest
            && live
                .iter()
                .all(|n| n.raft.as_ref().unwrap().log().applied == a)
            && live.iter().all(|n| {
                n.raft.as_ref().unwrap().log().last_index()
                    == first.raft.as_ref().unwrap().log().last_index()
            })
    }
}

/// How many members two configurations disagree on (presence or role).
pub fn single_change(a: &Membership, b: &Membership) -> usize {
    let ids: std::collections::BTreeSet<&NodeId> = a
        .members()
        .iter()
        .chain(b.members())
        .map(|m| &m.id)
        .collect();
    ids.into_iter()
        .filter(|id| a.get(id).map(|m| m.role) != b.get(id).map(|m| m.role))
        .count()
}
