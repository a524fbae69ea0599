//! The cluster a script drives: cores, what each made durable, and a wire
//! on which every message waits until the script delivers or drops it.
//! Nothing happens on its own: time passes, messages arrive and `Ready`s
//! are processed only when a command says so.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;

use super::command::Command;
use super::text;
use crate::sim::Durable;
use crate::{
    ConfChange, Config, Entry, EntryKind, HardState, LogIndex, Membership, Message, NodeId, Raft,
    Role, SeededBugs, SnapshotMeta, Term,
};

struct Node {
    raft: Option<Raft>,
    durable: Durable,
    /// The configuration it was formed with; empty for a node that joined.
    initial: Membership,
    joined: bool,
    incarnation: u64,
}

#[derive(Default)]
pub struct Env {
    template: Option<Config>,
    ids: Vec<NodeId>,
    nodes: BTreeMap<NodeId, Node>,
    /// Sent and not yet delivered, in the order sent.
    wire: Vec<Message>,
    /// Directed links that deliver nothing.
    cut: HashSet<(NodeId, NodeId)>,
    /// Every entry any node applied: all must agree (State Machine Safety).
    applied: BTreeMap<LogIndex, (Term, Bytes)>,
    /// The leader of each term (Election Safety).
    leaders: HashMap<Term, NodeId>,
    restarts: u64,
    wipes: u64,
    /// Safety violations seen, each also shown in the output; a script
    /// fails with any unless it says `allow-violations` (a bug's script).
    pub violations: Vec<String>,
    pub allow_violations: bool,
}

impl Env {
    /// Runs one command; its output, or what is wrong with it.
    pub fn run(&mut self, cmd: &Command) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        match cmd.name {
            "add-nodes" => self.add_nodes(cmd)?,
            "load" => self.load(cmd)?,
            "campaign" => {
                for id in self.nodes_of(cmd, false)? {
                    self.raft(&id)?.campaign();
                }
            }
            "tick" => {
                cmd.check_options(&["times"])?;
                let times = cmd.number("times", 1)?;
                for id in self.nodes_of(cmd, false)? {
                    for _ in 0..times {
                        self.raft(&id)?.tick();
                    }
                }
            }
            "step" => {
                let m = text::parse_message(cmd.rest)?;
                self.raft(&m.to)?.step(m);
            }
            "process-ready" => {
                for id in self.nodes_of(cmd, true)? {
                    self.process_ready(&id, &mut out);
                }
                if out.is_empty() {
                    out.push("nothing ready".into());
                }
            }
            "deliver-msgs" => self.deliver(cmd, true, &mut out)?,
            "drop-msgs" => self.deliver(cmd, false, &mut out)?,
            "stabilize" => self.stabilize(cmd, &mut out)?,
            "propose" => {
                let (id, data) = match cmd.words[..] {
                    [id, data] => (NodeId::new(id), data),
                    _ => return Err("propose NODE DATA".into()),
                };
                let data = Bytes::from(data.to_string());
                match self.raft(&id)?.propose(data) {
                    Ok((index, term)) => {
                        out.push(format!("{id} proposed {}", text::position(index, term)))
                    }
                    Err(e) => out.push(not_leader(&id, e.leader)),
                }
            }
            "read-index" => {
                let (id, ctxs) = match &cmd.words[..] {
                    [id, ctxs @ ..] if !ctxs.is_empty() => (NodeId::new(*id), ctxs),
                    _ => return Err("read-index NODE CTX...".into()),
                };
                for ctx in ctxs {
                    let ctx = text::parse_u64("ctx", ctx)?;
                    if let Err(e) = self.raft(&id)?.read_index(ctx) {
                        out.push(not_leader(&id, e.leader));
                    }
                }
            }
            "isolate" => {
                let ids = self.nodes_of(cmd, false)?;
                let rest: Vec<NodeId> = self
                    .ids
                    .iter()
                    .filter(|i| !ids.contains(i))
                    .cloned()
                    .collect();
                self.partition(&[ids, rest]);
            }
            "partition" => {
                let groups: Vec<Vec<NodeId>> = cmd
                    .rest
                    .split('|')
                    .map(|g| g.split_whitespace().map(NodeId::new).collect())
                    .collect();
                for id in groups.iter().flatten() {
                    self.node(id)?;
                }
                self.partition(&groups);
            }
            "heal" => self.cut.clear(),
            "allow-violations" => self.allow_violations = true,
            "crash" => {
                for id in self.nodes_of(cmd, false)? {
                    self.nodes.get_mut(&id).expect("checked").raft = None;
                }
            }
            "restart" => {
                for id in self.nodes_of(cmd, false)? {
                    self.start(&id);
                }
            }
            "change" => {
                let (id, change) = match cmd.words[..] {
                    [id, "add-learner", who] => (
                        id,
                        ConfChange::AddLearner {
                            id: NodeId::new(who),
                            addr: String::new(),
                        },
                    ),
                    [id, "promote", who] => (
                        id,
                        ConfChange::Promote {
                            id: NodeId::new(who),
                        },
                    ),
                    [id, "remove", who] => (
                        id,
                        ConfChange::Remove {
                            id: NodeId::new(who),
                        },
                    ),
                    _ => return Err("change NODE add-learner|promote|remove ID".into()),
                };
                let id = NodeId::new(id);
                match self.raft(&id)?.propose_change(change) {
                    Ok((index, term)) => out.push(format!(
                        "{id} proposed the change at {}",
                        text::position(index, term)
                    )),
                    Err(e) => out.push(format!("{id} refused: {e}")),
                }
            }
            "transfer" => {
                let [id, to] = self.two_nodes(cmd)?;
                if let Err(e) = self.raft(&id)?.transfer_leadership(&to) {
                    out.push(format!("{id} refused: {e}"));
                }
            }
            "wipe" => {
                for id in self.nodes_of(cmd, false)? {
                    self.wipes += 1;
                    let node = self.nodes.get_mut(&id).expect("checked");
                    node.durable = Durable::default();
                    node.initial = Membership::default();
                    node.joined = true;
                    node.incarnation = 200 + self.wipes;
                    self.start(&id);
                }
            }
            "lose-tail" => {
                let (id, keep) = match cmd.words[..] {
                    [id, keep] => (NodeId::new(id), LogIndex(text::parse_u64("index", keep)?)),
                    _ => return Err("lose-tail NODE INDEX".into()),
                };
                let node = self.node(&id)?;
                if node.raft.is_some() {
                    return Err(format!("{id} must be down"));
                }
                let node = self.nodes.get_mut(&id).expect("checked");
                node.durable.log.retain(|e| e.index <= keep);
            }
            "config" => {
                for id in self.nodes_of(cmd, true)? {
                    let s = self.raft(&id)?.status();
                    let shown = if s.membership.is_empty() {
                        "none".to_string()
                    } else {
                        text::config(&s.membership)
                    };
                    let mut line = format!("{id} config: {shown}");
                    if !s.awaiting_readd.is_empty() {
                        let names: Vec<&str> =
                            s.awaiting_readd.iter().map(NodeId::as_str).collect();
                        line += &format!(" (awaiting re-add: {})", names.join(","));
                    }
                    out.push(line);
                }
            }
            "compact" => {
                let (id, index) = match cmd.words[..] {
                    [id, index] => (NodeId::new(id), LogIndex(text::parse_u64("index", index)?)),
                    _ => return Err("compact NODE INDEX".into()),
                };
                self.compact(&id, index)?;
                out.push(self.log_line(&id)?);
            }
            "report-unreachable" => {
                let [id, peer] = self.two_nodes(cmd)?;
                self.raft(&id)?.report_unreachable(&peer);
            }
            "report-snapshot" => {
                let (id, peer, delivered) = match cmd.words[..] {
                    [id, peer, "delivered"] => (id, peer, true),
                    [id, peer, "failed"] => (id, peer, false),
                    _ => return Err("report-snapshot NODE PEER delivered|failed".into()),
                };
                self.raft(&NodeId::new(id))?
                    .report_snapshot(&NodeId::new(peer), delivered);
            }
            "status" => {
                for id in self.nodes_of(cmd, true)? {
                    out.push(self.status_line(&id)?);
                }
            }
            "log" => {
                for id in self.nodes_of(cmd, true)? {
                    out.push(self.log_line(&id)?);
                }
            }
            "progress" => {
                for id in self.nodes_of(cmd, false)? {
                    self.progress(&id, &mut out)?;
                }
            }
            other => return Err(format!("unknown command `{other}`")),
        }
        if out.is_empty() {
            out.push("ok".into());
        }
        Ok(out)
    }

    // ---- setting up ----------------------------------------------------------

    /// `add-nodes N [voters=K] [pre-vote=B] [check-quorum=B] [election=T]
    /// [heartbeat=H] [max-append-bytes=N] [max-inflight=N] [seed=S]
    /// [bugs=NAME,...]`: the first K nodes (all by default) form the
    /// cluster; the others join it (incarnation 100 + their number).
    fn add_nodes(&mut self, cmd: &Command) -> Result<(), String> {
        if self.template.is_some() {
            return Err("the nodes are already there".into());
        }
        cmd.check_options(&[
            "pre-vote",
            "check-quorum",
            "election",
            "heartbeat",
            "max-append-bytes",
            "max-inflight",
            "seed",
            "bugs",
            "voters",
        ])?;
        let n = match cmd.words[..] {
            [n] => text::parse_u64("node count", n)?,
            _ => return Err("add-nodes N".into()),
        };
        self.ids = (1..=n).map(|i| NodeId(format!("n{i}"))).collect();
        let mut cfg = Config::new(self.ids[0].clone(), Vec::new());
        cfg.pre_vote = cmd.flag("pre-vote", true)?;
        cfg.check_quorum = cmd.flag("check-quorum", true)?;
        cfg.election_ticks = cmd.number("election", 10)? as u32;
        cfg.heartbeat_ticks = cmd.number("heartbeat", 2)? as u32;
        cfg.max_append_bytes = cmd.number("max-append-bytes", 1 << 20)? as usize;
        cfg.max_inflight = cmd.number("max-inflight", 64)? as usize;
        cfg.seed = cmd.number("seed", 0)?;
        cfg.bugs = bugs(cmd.option("bugs").unwrap_or(""))?;
        self.template = Some(cfg);
        let voters = cmd.number("voters", n)? as usize;
        let formed = Membership::voters(self.ids.iter().take(voters).cloned());
        for (i, id) in self.ids.clone().into_iter().enumerate() {
            let joined = i >= voters;
            self.nodes.insert(
                id.clone(),
                Node {
                    raft: None,
                    durable: Durable::default(),
                    initial: if joined {
                        Membership::default()
                    } else {
                        formed.clone()
                    },
                    joined,
                    incarnation: if joined { 101 + i as u64 } else { 0 },
                },
            );
            self.start(&id);
        }
        Ok(())
    }

    /// `load NODE term=T [vote=X] [log=T1,T2,...] [snapshot=I@T]`: the node
    /// restarts from this durable state (the log's entries follow the
    /// snapshot, one per term listed). The safety checks start over.
    fn load(&mut self, cmd: &Command) -> Result<(), String> {
        cmd.check_options(&["term", "vote", "log", "snapshot"])?;
        let id = match &self.nodes_of(cmd, false)?[..] {
            [id] => id.clone(),
            _ => return Err("load NODE ...".into()),
        };
        let hard_state = HardState {
            term: Term(cmd.number("term", 0)?),
            voted_for: cmd.option("vote").map(NodeId::new),
        };
        let snapshot = match cmd.option("snapshot") {
            Some(s) => {
                let (index, term) = text::parse_position(s)?;
                SnapshotMeta {
                    index,
                    term,
                    membership: self.node(&id)?.initial.clone(),
                }
            }
            None => SnapshotMeta::default(),
        };
        let mut log = Vec::new();
        let mut index = snapshot.index;
        for t in cmd
            .option("log")
            .unwrap_or("")
            .split(',')
            .filter(|t| !t.is_empty())
        {
            index = index.next();
            log.push(Entry {
                index,
                term: Term(text::parse_u64("term", t)?),
                kind: EntryKind::Normal,
                data: Bytes::new(),
            });
        }
        self.nodes.get_mut(&id).expect("checked").durable = Durable {
            hard_state,
            snapshot,
            log,
        };
        // A history written by hand: what the safety checks saw before
        // belongs to another one.
        self.applied.clear();
        self.leaders.clear();
        self.start(&id);
        Ok(())
    }

    fn start(&mut self, id: &NodeId) {
        self.restarts += 1;
        let mut cfg = self.template.clone().expect("nodes are added");
        let node = self.nodes.get_mut(id).expect("a node");
        cfg.id = id.clone();
        cfg.initial = node.initial.clone();
        cfg.joined = node.joined;
        cfg.incarnation = node.incarnation;
        cfg.seed = cfg.seed.wrapping_add(self.restarts * 1000);
        let d = node.durable.clone();
        node.raft = Some(Raft::new(cfg, d.hard_state, d.snapshot, d.log));
    }

    fn partition(&mut self, groups: &[Vec<NodeId>]) {
        self.cut.clear();
        for (i, a) in groups.iter().enumerate() {
            for b in groups.iter().skip(i + 1) {
                for x in a {
                    for y in b {
                        self.cut.insert((x.clone(), y.clone()));
                        self.cut.insert((y.clone(), x.clone()));
                    }
                }
            }
        }
    }

    // ---- acting on Ready, delivering -----------------------------------------

    /// Acts on the node's `Ready` as the driver does, and writes it out.
    fn process_ready(&mut self, id: &NodeId, out: &mut Vec<String>) -> bool {
        let node = self.nodes.get_mut(id).expect("a node");
        let Some(raft) = node.raft.as_mut() else {
            return false;
        };
        if !raft.has_ready() {
            return false;
        }
        let rd = raft.ready();
        text::ready(id, &rd, out);
        node.durable.persist(&rd);
        if let Some(last) = node.durable.log.last() {
            raft.on_persisted(last.index, last.term);
        }
        self.wire.extend(rd.messages.iter().cloned());
        self.wire.extend(rd.persisted_messages.iter().cloned());
        let mut violations = Vec::new();
        for rc in &rd.role_changes {
            if rc.role == Role::Leader {
                let other = self.leaders.entry(rc.term).or_insert_with(|| id.clone());
                if other != id {
                    violations.push(format!("two leaders in term {}: {other} and {id}", rc.term));
                }
                // Leader Completeness: it holds every entry anyone applied.
                let log = raft.log();
                let missing = self.applied.iter().find(|(i, (t, data))| {
                    **i > log.snapshot().index
                        && !log
                            .entry(**i)
                            .is_some_and(|e| e.term == *t && e.data == *data)
                });
                if let Some((i, (t, _))) = missing {
                    violations.push(format!(
                        "leader {id} of term {} lacks committed entry {}",
                        rc.term,
                        text::position(*i, *t)
                    ));
                }
            }
        }
        for e in &rd.committed {
            let (t, data) = self
                .applied
                .entry(e.index)
                .or_insert_with(|| (e.term, e.data.clone()));
            if *t != e.term || *data != e.data {
                violations.push(format!(
                    "{id} applied {} where another node applied term {t}",
                    text::entry(e)
                ));
            }
        }
        for v in violations {
            out.push(format!("  !! safety violated: {v}"));
            self.violations.push(v);
        }
        true
    }

    /// `deliver-msgs`/`drop-msgs [NODE...] [from=X] [type=KIND]`: the
    /// queued messages to those nodes (all), from X, of that kind.
    fn deliver(
        &mut self,
        cmd: &Command,
        deliver: bool,
        out: &mut Vec<String>,
    ) -> Result<(), String> {
        cmd.check_options(&["from", "type"])?;
        let to = self.nodes_of(cmd, true)?;
        let from = cmd.option("from").map(NodeId::new);
        let kind = cmd.option("type");
        let chosen = |m: &Message| {
            to.contains(&m.to)
                && from.as_ref().is_none_or(|f| *f == m.from)
                && kind.is_none_or(|k| text::message(m).split(' ').nth(2) == Some(k))
        };
        let (picked, kept): (Vec<Message>, Vec<Message>) =
            std::mem::take(&mut self.wire).into_iter().partition(chosen);
        self.wire = kept;
        if !deliver {
            out.extend(
                picked
                    .iter()
                    .map(|m| format!("dropped: {}", text::message(m))),
            );
            return Ok(());
        }
        for id in &to {
            let mine: Vec<&Message> = picked.iter().filter(|m| m.to == *id).collect();
            if mine.is_empty() {
                continue;
            }
            out.push(format!("> {id} receives"));
            for m in mine {
                let why_not = if self.cut.contains(&(m.from.clone(), m.to.clone())) {
                    Some("the link is cut")
                } else if self.nodes[id].raft.is_none() {
                    Some("it is down")
                } else {
                    None
                };
                match why_not {
                    Some(why) => out.push(format!("  dropped ({why}): {}", text::message(m))),
                    None => {
                        out.push(format!("  {}", text::message(m)));
                        self.raft(id)?.step(m.clone());
                    }
                }
            }
        }
        Ok(())
    }

    /// `stabilize [NODE...]`: process every `Ready` and deliver every
    /// message among these nodes until nothing is left to do.
    fn stabilize(&mut self, cmd: &Command, out: &mut Vec<String>) -> Result<(), String> {
        cmd.check_options(&[])?;
        let ids = self.nodes_of(cmd, true)?;
        let words: Vec<&str> = ids.iter().map(NodeId::as_str).collect();
        let deliver = Command {
            name: "deliver-msgs",
            words,
            options: Vec::new(),
            rest: "",
        };
        for _ in 0..1000 {
            let mut busy = false;
            for id in &ids {
                busy |= self.process_ready(id, out);
            }
            busy |= self.wire.iter().any(|m| ids.contains(&m.to));
            if !busy {
                return Ok(());
            }
            self.deliver(&deliver, true, out)?;
        }
        Err("still busy after 1000 rounds".into())
    }

    /// `compact NODE INDEX`: the node snapshots its state machine at INDEX
    /// (applied already) and forgets the log up to it, as the driver does.
    fn compact(&mut self, id: &NodeId, index: LogIndex) -> Result<(), String> {
        let raft = self.raft(id)?;
        if index > raft.log().applied {
            return Err(format!(
                "{id} has applied only up to {}",
                raft.log().applied
            ));
        }
        let term = raft
            .log()
            .term(index)
            .ok_or_else(|| format!("{id} no longer holds index {index}"))?;
        let membership = raft
            .membership_at(index)
            .cloned()
            .ok_or_else(|| format!("{id} does not know the configuration at {index}"))?;
        let meta = SnapshotMeta {
            index,
            term,
            membership,
        };
        raft.compact(meta.clone());
        let durable = &mut self.nodes.get_mut(id).expect("a node").durable;
        durable.snapshot = meta;
        durable.log.retain(|e| e.index > index);
        Ok(())
    }

    // ---- looking -------------------------------------------------------------

    fn status_line(&mut self, id: &NodeId) -> Result<String, String> {
        let s = self.raft(id)?.status();
        let name = |n: &Option<NodeId>| n.as_ref().map_or("none".to_string(), |n| n.to_string());
        Ok(format!(
            "{id}: {} in term {}, leader {}, voted for {}, commit {}, applied {}",
            s.role.as_str(),
            s.term,
            name(&s.leader),
            name(&s.voted_for),
            s.commit_index,
            s.applied_index,
        ))
    }

    fn log_line(&mut self, id: &NodeId) -> Result<String, String> {
        let log = self.raft(id)?.log();
        let snap = log.snapshot();
        let entries: Vec<Entry> = (log.first_index().0..=log.last_index().0)
            .filter_map(|i| log.entry(LogIndex(i)).cloned())
            .collect();
        let mut line = format!("{id} log:");
        if snap.index.0 > 0 {
            line += &format!(" [snapshot {}]", text::position(snap.index, snap.term));
        }
        if !entries.is_empty() {
            line += &format!(" {}", text::entries(&entries));
        }
        if entries.is_empty() && snap.index.0 == 0 {
            line += " empty";
        }
        Ok(line)
    }

    fn progress(&mut self, id: &NodeId, out: &mut Vec<String>) -> Result<(), String> {
        let raft = self.raft(id)?;
        if raft.progress().is_empty() {
            out.push(format!("{id} is not leading"));
        }
        for (peer, pr) in raft.progress() {
            out.push(format!(
                "{id} sees {peer}: {:?}, match {}, next {}, {} in flight",
                pr.state,
                pr.match_index,
                pr.next_index,
                pr.inflight.len()
            ));
        }
        Ok(())
    }

    // ---- names -----------------------------------------------------------------

    fn node(&self, id: &NodeId) -> Result<&Node, String> {
        self.nodes.get(id).ok_or_else(|| format!("no node {id}"))
    }

    fn raft(&mut self, id: &NodeId) -> Result<&mut Raft, String> {
        self.node(id)?;
        self.nodes
            .get_mut(id)
            .expect("checked")
            .raft
            .as_mut()
            .ok_or_else(|| format!("{id} is down"))
    }

    /// The nodes a command names; with none named, every node if `all_if_none`.
    fn nodes_of(&self, cmd: &Command, all_if_none: bool) -> Result<Vec<NodeId>, String> {
        if cmd.words.is_empty() {
            return if all_if_none {
                Ok(self.ids.clone())
            } else {
                Err(format!("`{}` needs a node", cmd.name))
            };
        }
        let ids: Vec<NodeId> = cmd.words.iter().map(|w| NodeId::new(*w)).collect();
        for id in &ids {
            self.node(id)?;
        }
        Ok(ids)
    }

    fn two_nodes(&self, cmd: &Command) -> Result<[NodeId; 2], String> {
        match &self.nodes_of(cmd, false)?[..] {
            [a, b] => Ok([a.clone(), b.clone()]),
            _ => Err(format!("{} NODE PEER", cmd.name)),
        }
    }
}

fn not_leader(id: &NodeId, leader: Option<NodeId>) -> String {
    match leader {
        Some(l) => format!("{id} is not the leader: {l} is"),
        None => format!("{id} is not the leader and knows of none"),
    }
}

fn bugs(names: &str) -> Result<SeededBugs, String> {
    let mut bugs = SeededBugs::default();
    for name in names.split(',').filter(|n| !n.is_empty()) {
        match name {
            "vote-any-log" => bugs.vote_any_log = true,
            "commit-old-term" => bugs.commit_old_term = true,
            "config-before-noop" => bugs.config_before_noop = true,
            "ignore-lost-tail" => bugs.ignore_lost_tail = true,
            other => return Err(format!("unknown bug `{other}`")),
        }
    }
    Ok(bugs)
}
