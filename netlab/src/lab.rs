//! [`Lab`]: the network of one cluster. A namespace per node, each with one
//! `eth0` on a bridge in the builder's namespace (the control side, where
//! the harness, its clients and proxies live), and per node namespace the
//! rules of [`crate::rules`].
//!
//! Faults are two independent layers, each set as a whole ("exactly these
//! links") and undone by removing exactly what was added:
//!
//! - cuts ([`Lab::cut`], [`Lab::heal`]): a cut link (from, to) drops, at
//!   `to`'s input, every packet `from` sends it (Jepsen's approach); a
//!   two-way cut is both links. The control side is never cut off.
//! - packet faults ([`Lab::impair`], [`Lab::unimpair`]): the link's packets
//!   pass `from`'s emulator (delay, loss, duplicate, reorder, corrupt) and
//!   its rate class (an `htb` class on `from`'s `eth0`, shared by every
//!   rated link of `from`, as Jepsen's netem qdisc is).
//!
//! Changing either layer blocks for a few milliseconds (one `nft` batch per
//! namespace touched, run in parallel; `tc` when a rate comes or goes).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Mutex;

use crate::addr::{self, BRIDGE, CONTROL_ADDR, NODE_IFACE, PREFIX_LEN};
use crate::error::NetlabError;
use crate::ns::NetNs;
use crate::packet::emulator::{Emulator, Plan};
use crate::packet::faults::{PacketFaults, Rate};
use crate::rules::{self, RATED_CLASS, Set};
use crate::setedit::{Change, SetEditor};
use crate::stats::{self, LinkStats};
use crate::tool::{self, Tool};

/// An ordered pair of node ids (from, to): the packets `from` sends `to`.
pub type Link = (String, String);

/// The network of one cluster. Dropping it stops the emulators, deletes the
/// bridge and the veth pairs, and lets go of the node namespaces, which
/// the kernel frees as soon as no process runs in them.
///
/// One `Lab` per namespace at a time (the bridge has a fixed name).
pub struct Lab {
    nodes: Vec<String>,
    index: HashMap<String, usize>,
    home: NetNs,
    namespaces: Vec<NetNs>,
    /// Per node: the netlink socket that edits its sets.
    editors: Vec<Mutex<SetEditor>>,
    seed: u64,
    state: Mutex<State>,
}

/// What is applied now, kept in step with the kernel: a namespace's part
/// is updated only once its batch succeeded.
#[derive(Default)]
struct State {
    /// Cut links, as (from, to) positions.
    cut: BTreeSet<(usize, usize)>,
    /// Links whose `from` cannot call `to`, as (from, to) positions.
    no_dial: BTreeSet<(usize, usize)>,
    /// Impaired links and their faults.
    impaired: BTreeMap<(usize, usize), PacketFaults>,
    /// Per node: the rate of its `htb` class, if it has one.
    rates: Vec<Option<Rate>>,
    /// Per node: its emulator, started on first need.
    emulators: Vec<Option<Emulator>>,
}

impl Lab {
    /// Builds the network of `nodes` (ids, in the order that gives them
    /// their addresses, see [`crate::addr`]) inside the calling thread's
    /// namespace, which becomes the control side. `seed` seeds the packet
    /// emulators.
    pub fn build(nodes: &[String], seed: u64) -> Result<Lab, NetlabError> {
        if nodes.is_empty() || nodes.len() > addr::MAX_NODES {
            return Err(NetlabError::NodeCount {
                n: nodes.len(),
                max: addr::MAX_NODES,
            });
        }
        let mut index = HashMap::new();
        for (i, id) in nodes.iter().enumerate() {
            if id.is_empty() {
                return Err(NetlabError::EmptyNodeId);
            }
            if index.insert(id.clone(), i).is_some() {
                return Err(NetlabError::DuplicateNode(id.clone()));
            }
        }
        let home = NetNs::current().map_err(|e| NetlabError::Io {
            what: "opening the control namespace".into(),
            source: e,
        })?;
        let existing = tool::run(
            &home,
            "the control namespace",
            Tool::Ip,
            &["-o", "link", "show"],
            None,
        )?;
        if existing
            .lines()
            .any(|l| l.split(": ").nth(1) == Some(BRIDGE))
        {
            return Err(NetlabError::Tool {
                command: format!("ip link add {BRIDGE}"),
                place: "the control namespace".into(),
                detail: "already exists: another network is built here".into(),
            });
        }
        let namespaces = (0..nodes.len())
            .map(|_| NetNs::create())
            .collect::<Result<Vec<_>, _>>()?;
        let editors = namespaces
            .iter()
            .map(|ns| {
                let editor = ns.run(SetEditor::open)?;
                editor.map(Mutex::new).map_err(|e| NetlabError::Io {
                    what: "opening an nftables netlink socket".into(),
                    source: e,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let lab = Lab {
            nodes: nodes.to_vec(),
            index,
            home,
            namespaces,
            editors,
            seed,
            state: Mutex::new(State {
                rates: vec![None; nodes.len()],
                emulators: (0..nodes.len()).map(|_| None).collect(),
                ..State::default()
            }),
        };
        // From here on, Drop undoes whatever part was built.
        lab.wire()?;
        for (_, result) in lab.in_parallel(0..lab.nodes.len(), |i| lab.set_up_node(i)) {
            result?;
        }
        Ok(lab)
    }

    /// The node ids, in the order given to [`Lab::build`].
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// The control side's address: where clients connect from.
    pub fn control_addr(&self) -> Ipv4Addr {
        CONTROL_ADDR
    }

    /// The address `node` listens on, inside its namespace.
    pub fn addr(&self, node: &str) -> Result<Ipv4Addr, NetlabError> {
        Ok(addr::node_addr(self.position(node)?))
    }

    /// The namespace of `node`: to run threads or processes inside it.
    pub fn namespace(&self, node: &str) -> Result<&NetNs, NetlabError> {
        Ok(&self.namespaces[self.position(node)?])
    }

    /// The control side's namespace (the one the network was built in).
    pub fn control_namespace(&self) -> &NetNs {
        &self.home
    }

    /// Makes `cmd` start inside `node`'s namespace (see [`NetNs::prepare`]):
    /// how the harness starts a node, whose binary needs nothing special,
    /// only its listen address ([`Lab::addr`]) and its peers'.
    pub fn command<'c>(
        &self,
        node: &str,
        cmd: &'c mut Command,
    ) -> Result<&'c mut Command, NetlabError> {
        Ok(self.namespace(node)?.prepare(cmd))
    }

    /// Runs `f` on a thread inside `node`'s namespace (see [`NetNs::run`]).
    pub fn run_in<T: Send>(
        &self,
        node: &str,
        f: impl FnOnce() -> T + Send,
    ) -> Result<T, NetlabError> {
        self.namespace(node)?.run(f)
    }

    /// Makes `links` exactly the set of cut links. Unknown links are an
    /// error and change nothing; a failing namespace leaves the others
    /// applied (and [`Lab::cut_links`] says what is).
    pub fn cut<'a>(&self, links: impl IntoIterator<Item = &'a Link>) -> Result<(), NetlabError> {
        self.set_links(Set::Cut, links)
    }

    /// Makes `links` exactly the set of links (from, to) on which `from`
    /// cannot call `to`: at `to`, every packet of a connection `from`
    /// opened is dropped, both ways, while the connections `to` opens to
    /// `from` work. To a node whose peers each push their messages over a
    /// connection of their own, `from`'s messages to `to` are lost and
    /// `to`'s to `from` arrive. Errors as for [`Lab::cut`].
    pub fn cut_dials<'a>(
        &self,
        links: impl IntoIterator<Item = &'a Link>,
    ) -> Result<(), NetlabError> {
        self.set_links(Set::NoDial, links)
    }

    /// Makes `links` exactly the elements of `set` (`cut` or `nodial`),
    /// kept in `to`'s namespace as `from`'s address.
    fn set_links<'a>(
        &self,
        set: Set,
        links: impl IntoIterator<Item = &'a Link>,
    ) -> Result<(), NetlabError> {
        let want = self.positions(links)?;
        let mut state = self.lock();
        let now = match set {
            Set::NoDial => &mut state.no_dial,
            _ => &mut state.cut,
        };
        let mut changes: BTreeMap<usize, (Vec<Ipv4Addr>, Vec<Ipv4Addr>)> = BTreeMap::new();
        for &(from, to) in want.difference(now) {
            changes.entry(to).or_default().0.push(addr::node_addr(from));
        }
        for &(from, to) in now.difference(&want) {
            changes.entry(to).or_default().1.push(addr::node_addr(from));
        }
        let results = self.in_parallel(changes.keys().copied(), |to| {
            let (add, remove) = &changes[&to];
            self.edit(to, &[(set, add.clone(), remove.clone())])
        });
        let mut first_error = None;
        for (to, result) in results {
            match result {
                Ok(()) => {
                    now.retain(|&(_, t)| t != to);
                    now.extend(want.iter().filter(|&&(_, t)| t == to));
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Cuts nothing: removes every element [`Lab::cut`] and
    /// [`Lab::cut_dials`] added.
    pub fn heal(&self) -> Result<(), NetlabError> {
        let cut = self.cut(std::iter::empty());
        let dials = self.cut_dials(std::iter::empty());
        cut.and(dials)
    }

    /// The links cut now.
    pub fn cut_links(&self) -> BTreeSet<Link> {
        self.lock().cut.iter().map(|&l| self.link(l)).collect()
    }

    /// The links whose `from` cannot call `to` now.
    pub fn dial_cut_links(&self) -> BTreeSet<Link> {
        self.lock().no_dial.iter().map(|&l| self.link(l)).collect()
    }

    /// Makes `links` exactly the set of impaired links, each with its
    /// faults. Every rated link from one node must have the same rate (one
    /// class per node). Links whose faults are empty count as not impaired.
    pub fn impair(&self, links: &BTreeMap<Link, PacketFaults>) -> Result<(), NetlabError> {
        let mut want: BTreeMap<(usize, usize), PacketFaults> = BTreeMap::new();
        for (link, faults) in links {
            faults.validate()?;
            let pos = self
                .positions([link])?
                .into_iter()
                .next()
                .expect("one link");
            if !faults.is_empty() {
                want.insert(pos, *faults);
            }
        }
        let mut rates: Vec<Option<Rate>> = vec![None; self.nodes.len()];
        for (&(from, _), faults) in &want {
            if let Some(r) = faults.rate {
                if rates[from].is_some_and(|other| other != r) {
                    return Err(NetlabError::InvalidFaults(format!(
                        "links from {} have different rates; one rate per node",
                        self.nodes[from]
                    )));
                }
                rates[from] = Some(r);
            }
        }
        let mut state = self.lock();
        let touched: BTreeSet<usize> = want
            .iter()
            .chain(state.impaired.iter())
            .map(|(&(from, _), _)| from)
            .collect();
        // Emulators start here, under the lock, before any packet is
        // marked for them.
        for &from in &touched {
            let needs = want
                .iter()
                .any(|(&(f, _), x)| f == from && x.needs_emulator());
            if needs && state.emulators[from].is_none() {
                let peers = self.peer_addrs(from);
                let seed = self.seed ^ (from as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let place = self.place(from);
                state.emulators[from] = Some(Emulator::start(
                    &self.namespaces[from],
                    &place,
                    &peers,
                    seed,
                )?);
            }
        }
        let results = {
            let state = &*state;
            self.in_parallel(touched.iter().copied(), |from| {
                self.reshape_node(from, state, &want, rates[from])
            })
        };
        let mut first_error = None;
        for (from, result) in results {
            match result {
                Ok(()) => {
                    state.impaired.retain(|&(f, _), _| f != from);
                    state
                        .impaired
                        .extend(want.iter().filter(|((f, _), _)| *f == from));
                    state.rates[from] = rates[from];
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Impairs nothing: removes every element, class and plan
    /// [`Lab::impair`] added (the emulator threads stay, idle).
    pub fn unimpair(&self) -> Result<(), NetlabError> {
        self.impair(&BTreeMap::new())
    }

    /// The links impaired now, with their faults.
    pub fn impaired_links(&self) -> BTreeMap<Link, PacketFaults> {
        self.lock()
            .impaired
            .iter()
            .map(|(&l, f)| (self.link(l), *f))
            .collect()
    }

    /// What every link has carried so far. Reads the counters of every
    /// namespace (one `nft` call each).
    pub fn stats(&self) -> Result<BTreeMap<Link, LinkStats>, NetlabError> {
        let counters = self.in_parallel(0..self.nodes.len(), |i| {
            let place = self.place(i);
            let tx = tool::run(
                &self.namespaces[i],
                &place,
                Tool::Nft,
                &["-j", "list", "set", "inet", rules::TABLE, "tx"],
                None,
            )?;
            let rx = tool::run(
                &self.namespaces[i],
                &place,
                Tool::Nft,
                &["-j", "list", "set", "inet", rules::TABLE, "rx"],
                None,
            )?;
            Ok((stats::set_counters(&tx), stats::set_counters(&rx)))
        });
        let mut tx = Vec::new();
        let mut rx = Vec::new();
        for (_, c) in counters {
            let (t, r) = c?;
            tx.push(t);
            rx.push(r);
        }
        let state = self.lock();
        let mut all = BTreeMap::new();
        for (from, sent_by) in tx.iter().enumerate() {
            for to in (0..self.nodes.len()).filter(|&t| t != from) {
                let (a, b) = (addr::node_addr(from), addr::node_addr(to));
                let sent = sent_by.get(&b).copied().unwrap_or_default();
                let received = rx[to].get(&a).copied().unwrap_or_default();
                let emulator = state.emulators[from]
                    .as_ref()
                    .map(|e| e.stats(b))
                    .unwrap_or_default();
                all.insert(
                    self.link((from, to)),
                    LinkStats {
                        sent_packets: sent.packets,
                        sent_bytes: sent.bytes,
                        received_packets: received.packets,
                        received_bytes: received.bytes,
                        emulator,
                    },
                );
            }
        }
        Ok(all)
    }

    /// The bridge and every veth pair, in the control namespace.
    fn wire(&self) -> Result<(), NetlabError> {
        let mut batch = format!(
            "link add {BRIDGE} type bridge\n\
             addr add {CONTROL_ADDR}/{PREFIX_LEN} dev {BRIDGE}\n\
             link set {BRIDGE} up\n"
        );
        for (i, ns) in self.namespaces.iter().enumerate() {
            let host = addr::host_iface(i);
            batch.push_str(&format!(
                "link add {host} type veth peer name {NODE_IFACE} netns {}\n\
                 link set {host} master {BRIDGE}\n\
                 link set {host} up\n",
                ns.proc_path()
            ));
        }
        tool::run(
            &self.home,
            "the control namespace",
            Tool::Ip,
            &["-batch", "-"],
            Some(&batch),
        )?;
        Ok(())
    }

    /// A node namespace's address, table and queue rule.
    fn set_up_node(&self, i: usize) -> Result<(), NetlabError> {
        let ns = &self.namespaces[i];
        let place = self.place(i);
        let batch = format!(
            "addr add {}/{PREFIX_LEN} dev {NODE_IFACE}\nlink set {NODE_IFACE} up\n",
            addr::node_addr(i)
        );
        tool::run(ns, &place, Tool::Ip, &["-batch", "-"], Some(&batch))?;
        tool::run(
            ns,
            &place,
            Tool::Nft,
            &["-f", "-"],
            Some(&rules::node_table(&self.peer_addrs(i))),
        )?;
        tool::run(
            ns,
            &place,
            Tool::Iptables,
            &rules::queue_rule_args("-A"),
            None,
        )?;
        Ok(())
    }

    /// Brings node `from`'s emulator plan, rate class and set elements to
    /// `want`: new faults are ready before packets are marked for them,
    /// old ones are unmarked before they go.
    fn reshape_node(
        &self,
        from: usize,
        state: &State,
        want: &BTreeMap<(usize, usize), PacketFaults>,
        rate: Option<Rate>,
    ) -> Result<(), NetlabError> {
        let ns = &self.namespaces[from];
        let place = self.place(from);
        let mine = |m: &BTreeMap<(usize, usize), PacketFaults>,
                    pick: &dyn Fn(&PacketFaults) -> bool|
         -> BTreeSet<usize> {
            m.iter()
                .filter(|((f, _), x)| *f == from && pick(x))
                .map(|(&(_, t), _)| t)
                .collect()
        };
        let emulated = |x: &PacketFaults| x.needs_emulator();
        let rated = |x: &PacketFaults| x.rate.is_some();
        let (emu_now, emu_want) = (mine(&state.impaired, &emulated), mine(want, &emulated));
        let (rated_now, rated_want) = (mine(&state.impaired, &rated), mine(want, &rated));

        if let Some(emulator) = &state.emulators[from] {
            let plan: Plan = want
                .iter()
                .filter(|((f, _), x)| *f == from && x.needs_emulator())
                .map(|(&(_, t), x)| (addr::node_addr(t), *x))
                .collect();
            emulator.set(plan);
        }
        let tc = |args: &[&str]| tool::run(ns, &place, Tool::Tc, args, None);
        let was = state.rates[from];
        if let Some(r) = rate {
            let bits = format!("{}bit", r.bits_per_second);
            let class = [
                "class",
                "",
                "dev",
                NODE_IFACE,
                "parent",
                "1:",
                "classid",
                RATED_CLASS,
                "htb",
                "rate",
                &bits,
                "ceil",
                &bits,
            ];
            if was.is_none() {
                // Unclassified traffic (the control side's) bypasses htb's
                // classes; only what `rated` marks into 1:2 is shaped.
                tc(&[
                    "qdisc", "add", "dev", NODE_IFACE, "root", "handle", "1:", "htb",
                ])?;
                tc(&with_verb(&class, "add"))?;
            } else if was != rate {
                tc(&with_verb(&class, "change"))?;
            }
        }
        let addrs = |s: &BTreeSet<usize>| s.iter().map(|&t| addr::node_addr(t)).collect::<Vec<_>>();
        let changes = [
            (
                Set::Impaired,
                addrs(&(&emu_want - &emu_now)),
                addrs(&(&emu_now - &emu_want)),
            ),
            (
                Set::Rated,
                addrs(&(&rated_want - &rated_now)),
                addrs(&(&rated_now - &rated_want)),
            ),
        ];
        self.edit(from, &changes)?;
        if rate.is_none() && was.is_some() {
            tc(&["qdisc", "del", "dev", NODE_IFACE, "root"])?;
        }
        Ok(())
    }

    /// Applies `changes` to node `node`'s sets, atomically.
    fn edit(&self, node: usize, changes: &[Change]) -> Result<(), NetlabError> {
        let mut editor = self.editors[node].lock().unwrap_or_else(|e| e.into_inner());
        editor.apply(changes).map_err(|e| NetlabError::Tool {
            command: format!("nftables set change {changes:?}"),
            place: self.place(node),
            detail: e.to_string(),
        })
    }

    /// Runs `job` for each node on its own thread; results in node order.
    fn in_parallel<T: Send>(
        &self,
        nodes: impl IntoIterator<Item = usize>,
        job: impl Fn(usize) -> Result<T, NetlabError> + Sync,
    ) -> Vec<(usize, Result<T, NetlabError>)> {
        let job = &job;
        std::thread::scope(|scope| {
            let handles: Vec<_> = nodes
                .into_iter()
                .map(|i| (i, scope.spawn(move || job(i))))
                .collect();
            handles
                .into_iter()
                .map(|(i, h)| (i, h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))))
                .collect()
        })
    }

    fn position(&self, node: &str) -> Result<usize, NetlabError> {
        self.index
            .get(node)
            .copied()
            .ok_or_else(|| NetlabError::UnknownNode(node.to_string()))
    }

    fn positions<'a>(
        &self,
        links: impl IntoIterator<Item = &'a Link>,
    ) -> Result<BTreeSet<(usize, usize)>, NetlabError> {
        links
            .into_iter()
            .map(|(from, to)| {
                let unknown = || NetlabError::UnknownLink {
                    from: from.clone(),
                    to: to.clone(),
                };
                let f = self.index.get(from).copied().ok_or_else(unknown)?;
                let t = self.index.get(to).copied().ok_or_else(unknown)?;
                if f == t {
                    return Err(unknown());
                }
                Ok((f, t))
            })
            .collect()
    }

    fn link(&self, (from, to): (usize, usize)) -> Link {
        (self.nodes[from].clone(), self.nodes[to].clone())
    }

    fn peer_addrs(&self, i: usize) -> Vec<Ipv4Addr> {
        (0..self.nodes.len())
            .filter(|&j| j != i)
            .map(addr::node_addr)
            .collect()
    }

    fn place(&self, i: usize) -> String {
        format!("{}'s namespace", self.nodes[i])
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for emulator in &mut self.lock().emulators {
            emulator.take();
        }
        // Deleting a host end deletes its pair, even if a process still
        // holds the node's namespace; `-force` goes on past what was never
        // made.
        let mut batch = String::new();
        for i in 0..self.namespaces.len() {
            batch.push_str(&format!("link del {}\n", addr::host_iface(i)));
        }
        batch.push_str(&format!("link del {BRIDGE}\n"));
        let _ = tool::run(
            &self.home,
            "the control namespace",
            Tool::Ip,
            &["-force", "-batch", "-"],
            Some(&batch),
        );
    }
}

/// `args` with its second word (the verb) set to `verb`.
fn with_verb<'a>(args: &[&'a str], verb: &'a str) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v[1] = verb;
    v
}

/// Every ordered link with a target at one end or both: whom a packet
/// fault on `targets` touches (as in Jepsen, a target's packets to every
/// other node, and every other node's packets to it).
pub fn links_touching(nodes: &[String], targets: &[String]) -> BTreeSet<Link> {
    let hit = |n: &String| targets.contains(n);
    nodes
        .iter()
        .flat_map(|from| nodes.iter().map(move |to| (from, to)))
        .filter(|(from, to)| from != to && (hit(from) || hit(to)))
        .map(|(from, to)| (from.clone(), to.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn a_queue_without_its_emulator_lets_packets_through() {
        crate::testing::isolated(
            "lab::tests::a_queue_without_its_emulator_lets_packets_through",
            || {
                let lab = Lab::build(&ids(2), 1).unwrap();
                let gap = std::time::Duration::from_micros(500);
                let settle = std::time::Duration::from_millis(200);
                // Marked for the queue, no emulator ever bound: bypass.
                lab.edit(0, &[(Set::Impaired, vec![addr::node_addr(1)], vec![])])
                    .unwrap();
                let d =
                    crate::probe::udp_delivery(&lab, "n1", "n2", 7001, 200, gap, settle).unwrap();
                assert_eq!(d.received, 200, "{d:?}");
                lab.edit(0, &[(Set::Impaired, vec![], vec![addr::node_addr(1)])])
                    .unwrap();

                // An emulator delaying every packet goes away (as if it died)
                // while its link is still marked: packets pass again, at once.
                let slow = PacketFaults::delay(std::time::Duration::from_millis(300));
                let link = ("n1".to_string(), "n2".to_string());
                lab.impair(&[(link, slow)].into_iter().collect()).unwrap();
                let rtt = crate::probe::udp_round_trips(
                    &lab,
                    "n1",
                    "n2",
                    7002,
                    1,
                    std::time::Duration::from_secs(2),
                )
                .unwrap();
                assert!(
                    rtt[0].unwrap() >= std::time::Duration::from_millis(300),
                    "{rtt:?}"
                );
                lab.lock().emulators[0].take();
                let d =
                    crate::probe::udp_delivery(&lab, "n1", "n2", 7003, 200, gap, settle).unwrap();
                assert_eq!(d.received, 200, "{d:?}");
                let rtt = crate::probe::udp_round_trips(
                    &lab,
                    "n1",
                    "n2",
                    7004,
                    5,
                    std::time::Duration::from_secs(2),
                )
                .unwrap();
                assert!(
                    rtt.iter()
                        .all(|r| r.unwrap() < std::time::Duration::from_millis(100)),
                    "{rtt:?}"
                );
            },
        );
    }

    #[test]
    fn a_lab_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Lab>();
    }

    #[test]
    fn packet_faults_touch_every_link_of_a_target_both_ways() {
        let links = links_touching(&ids(3), &["n2".to_string()]);
        let want: BTreeSet<Link> = [("n1", "n2"), ("n2", "n1"), ("n2", "n3"), ("n3", "n2")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(links, want);
        assert_eq!(links_touching(&ids(3), &ids(3)).len(), 6);
        assert!(links_touching(&ids(3), &[]).is_empty());
    }
}
