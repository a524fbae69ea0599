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

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;

use super::{
    Config, Entry, HardState, LogIndex, Message, NodeId, Raft, Ready, Role, SnapshotMeta, Term,
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
}

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

    pub fn with_config(ids: Vec<NodeId>, template: Config, seed: u64) -> Sim {
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
            template,
            ids: ids.clone(),
        };
        for id in ids {
            sim.nodes.insert(
                id.clone(),
                SimNode {
                    raft: None,
                    durable: Durable::default(),
                    applied: Vec::new(),
                    installs: 0,
                    compactions: 0,
                },
            );
            sim.start(&id);
        }
        sim
    }

    /// Replaces a node's durable state before it starts (for scripted scenarios).
    pub fn set_durable(&mut self, id: &NodeId, durable: Durable) {
        self.nodes.get_mut(id).unwrap().durable = durable;
        self.start(id);
    }

    fn config_for(&self, id: &NodeId) -> Config {
        let mut cfg = self.template.clone();
        cfg.id = id.clone();
        cfg.peers = self.ids.iter().filter(|p| *p != id).cloned().collect();
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
        let meta = SnapshotMeta {
            index: applied,
            term: raft
                .log()
                .term(applied)
                .expect("applied entries are in the log"),
            members: Vec::new(),
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

    /// State Machine Safety: no two nodes apply different entries at one index.
    fn check_apply(&mut self, id: &NodeId, e: &Entry) {
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

    /// All live nodes applied the same entries up to the same index.
    pub fn converged(&self) -> bool {
        let live: Vec<&SimNode> = self.nodes.values().filter(|n| n.raft.is_some()).collect();
        let Some(first) = live.first() else {
            return true;
        };
        let a = first.raft.as_ref().unwrap().log().applied;
        live.iter()
            .all(|n| n.raft.as_ref().unwrap().log().applied == a)
            && live.iter().all(|n| {
                n.raft.as_ref().unwrap().log().last_index()
                    == first.raft.as_ref().unwrap().log().last_index()
            })
    }
}
