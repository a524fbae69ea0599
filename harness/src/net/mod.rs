//! The network between the nodes, of one of two kinds (`--network`):
//!
//! - `netns`: a network namespace per node on a bridge, inside the
//!   harness's own private namespace ([`crate::sandbox`]), built by
//!   `netlab`. Each node listens on its own address (198.18.1.1, ...);
//!   partitions drop packets in the receiver's packet filter, one-way cuts
//!   included; packet faults (delay, loss, duplicate, reorder, corrupt,
//!   rate) are emulated per link. Needs root and `ip`, `nft`, `iptables`,
//!   `tc`.
//! - `proxy`: every node on a loopback port, and one TCP proxy per ordered
//!   pair that partitions cut (works anywhere, without privileges; no
//!   packet faults, no exact one-way cuts).
//!
//! [`Net`] is what the cluster and the nemeses use, whichever the kind:
//! where each member listens ([`Net::listen`]), what a member dials to
//! reach another ([`Net::peer_addr`]), how a member's process is started
//! in its place ([`Net::placement`]), and the faults: [`Net::cut`] /
//! [`Net::heal`], [`Net::impair`] / [`Net::unimpair`], [`Net::shape`] (cuts
//! and slow links as a whole, for figure 8) and [`Net::heal_all`].
//! Clients live in the harness's namespace and talk to the nodes' client
//! addresses directly: no fault ever touches them.
//!
//! - `proxies`, `proxy`, `link`: the proxies ([`Proxies`]).
//! - `netns`: the namespaces, over `netlab`.
//! - `choose`: which kind a run gets (`--network`, or the default).

mod choose;
mod link;
mod netns;
mod proxies;
mod proxy;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;

use serde_json::{Value, json};
use thiserror::Error;

pub use choose::{Chosen, choose};
pub use link::{CutMode, LinkState, LinkStats};
pub use netlab::{Behavior, PacketFaults};
pub use proxies::Proxies;

/// An ordered pair of node ids (from, to). On proxies: the connections
/// `from` opens to `to`; on namespaces: the packets `from` sends `to`.
/// Serializes as `["n1","n2"]`.
pub type Link = (String, String);

/// Which network a run uses (`--network`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetworkKind {
    /// A namespace per node; faults in the packet filter.
    Netns,
    /// Loopback ports and TCP proxies between the nodes.
    Proxy,
}

impl NetworkKind {
    /// The name on the command line and in `run.json`.
    pub fn name(self) -> &'static str {
        match self {
            NetworkKind::Netns => "netns",
            NetworkKind::Proxy => "proxy",
        }
    }

    /// Parses `--network`.
    pub fn parse(s: &str) -> Result<NetworkKind, String> {
        match s {
            "netns" => Ok(NetworkKind::Netns),
            "proxy" => Ok(NetworkKind::Proxy),
            _ => Err(format!("unknown network {s:?}; expected netns or proxy")),
        }
    }
}

impl std::fmt::Display for NetworkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a member serves clients and peers on one port (our node) or on
/// two (etcd's client and peer URLs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Ports {
    /// One port: [`Listen::client`] and [`Listen::peer`] are equal.
    #[default]
    Shared,
    /// A client port and a peer port.
    Separate,
}

/// What network to build for a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetSpec {
    /// Namespaces or proxies.
    pub kind: NetworkKind,
    /// Seeds the packet emulators (netns).
    pub seed: u64,
    /// On proxies: peers dial each other's own address, with no proxy in
    /// between (no partitions; for benchmarks). Namespaces are always
    /// direct.
    pub direct: bool,
    /// One port per member or two.
    pub ports: Ports,
}

impl NetSpec {
    /// A network of `kind` with proxies (on proxies), one port per member.
    pub fn new(kind: NetworkKind, seed: u64) -> NetSpec {
        NetSpec {
            kind,
            seed,
            direct: false,
            ports: Ports::Shared,
        }
    }
}

/// Where one member listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listen {
    /// Where clients (the harness's workers) connect.
    pub client: SocketAddr,
    /// Where its peers' connections arrive (through a proxy or not).
    pub peer: SocketAddr,
}

/// Where a member's process runs: the namespace it must be started in
/// (netns), or anywhere (proxies). Cheap to clone; holding it keeps the
/// namespace alive.
#[derive(Clone, Debug, Default)]
pub struct Placement(Option<netlab::NetNs>);

impl Placement {
    /// In the harness's own namespace: loopback, no namespace of its own.
    pub fn host() -> Placement {
        Placement(None)
    }

    /// Makes `cmd` start inside the member's namespace (nothing on
    /// proxies). The process needs nothing special: only its listen
    /// address and its peers' addresses.
    pub fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        match &self.0 {
            Some(ns) => ns.prepare(cmd),
            None => cmd,
        }
    }
}

/// Why the network could not be set up or changed.
#[derive(Debug, Error)]
pub enum NetError {
    /// A node id given twice.
    #[error("node id {0:?} is given twice")]
    DuplicateNode(String),
    /// A node id that is empty.
    #[error("empty node id")]
    EmptyNodeId,
    /// A proxy's port could not be bound.
    #[error("cannot bind a proxy for link {from} -> {to} on 127.0.0.1: {source}")]
    Bind {
        /// The node that connects through the proxy.
        from: String,
        /// The node it reaches.
        to: String,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// No free loopback port could be found.
    #[error("cannot find a free port: {0}")]
    Port(std::io::Error),
    /// A link between nodes that are not both members, or a node to itself.
    #[error("no link {from} -> {to}: both must be distinct nodes of the cluster")]
    UnknownLink {
        /// The node that would connect.
        from: String,
        /// The node it would reach.
        to: String,
    },
    /// An id that is not a member.
    #[error("no node {0:?} in the cluster")]
    UnknownNode(String),
    /// A fault this network cannot inject.
    #[error("{0}")]
    Unsupported(String),
    /// The namespaces could not be built or changed.
    #[error("{0}")]
    Netns(#[from] netlab::NetlabError),
    /// Namespaces would be built in the machine's own network namespace.
    #[error(
        "refusing to build namespaces in the machine's network namespace: the harness \
         must run in a private one (see harness::sandbox)"
    )]
    NotPrivate,
}

/// The network of one cluster. Dropping it stops the proxies, or deletes
/// the namespaces' interfaces (the kernel frees the namespaces with their
/// last process).
pub struct Net {
    kind: NetworkKind,
    members: Vec<(String, Listen)>,
    fabric: Fabric,
}

enum Fabric {
    Proxies(Proxies),
    /// Proxies asked for, but with `direct`: loopback, nothing in between.
    Direct,
    /// Boxed: the lab's state is several times a proxy set's size.
    Netns(Box<netns::Namespaces>),
}

impl Net {
    /// Builds the network of members `ids` (in this order: on netns, n1
    /// gets the first address).
    pub async fn start(spec: &NetSpec, ids: &[String]) -> Result<Net, NetError> {
        let mut seen = BTreeSet::new();
        for id in ids {
            if id.is_empty() {
                return Err(NetError::EmptyNodeId);
            }
            if !seen.insert(id) {
                return Err(NetError::DuplicateNode(id.clone()));
            }
        }
        match spec.kind {
            NetworkKind::Netns => {
                let (namespaces, members) = netns::Namespaces::build(ids, spec.seed, spec.ports)?;
                Ok(Net {
                    kind: NetworkKind::Netns,
                    members,
                    fabric: Fabric::Netns(Box::new(namespaces)),
                })
            }
            NetworkKind::Proxy => {
                let mut members = Vec::new();
                for id in ids {
                    let client = free_loopback_addr()?;
                    let peer = match spec.ports {
                        Ports::Shared => client,
                        Ports::Separate => free_loopback_addr()?,
                    };
                    members.push((id.clone(), Listen { client, peer }));
                }
                let fabric = if spec.direct {
                    Fabric::Direct
                } else {
                    let targets: Vec<(String, SocketAddr)> =
                        members.iter().map(|(id, l)| (id.clone(), l.peer)).collect();
                    Fabric::Proxies(Proxies::start(&targets).await?)
                };
                Ok(Net {
                    kind: NetworkKind::Proxy,
                    members,
                    fabric,
                })
            }
        }
    }

    /// Namespaces or proxies.
    pub fn kind(&self) -> NetworkKind {
        self.kind
    }

    /// The member ids, in order.
    pub fn nodes(&self) -> Vec<String> {
        self.members.iter().map(|(id, _)| id.clone()).collect()
    }

    /// Where member `id` listens.
    pub fn listen(&self, id: &str) -> Result<Listen, NetError> {
        self.members
            .iter()
            .find(|(m, _)| m == id)
            .map(|(_, l)| *l)
            .ok_or_else(|| NetError::UnknownNode(id.to_string()))
    }

    /// What `from` dials to reach `to`'s peer listener: the proxy of the
    /// link, or `to`'s own address.
    pub fn peer_addr(&self, from: &str, to: &str) -> Result<SocketAddr, NetError> {
        self.listen(from)?;
        let target = self.listen(to)?.peer;
        if from == to {
            return Err(NetError::UnknownLink {
                from: from.into(),
                to: to.into(),
            });
        }
        match &self.fabric {
            Fabric::Proxies(p) => p.proxy_addr(from, to),
            Fabric::Direct | Fabric::Netns(_) => Ok(target),
        }
    }

    /// Where member `id`'s process runs.
    pub fn placement(&self, id: &str) -> Result<Placement, NetError> {
        self.listen(id)?;
        match &self.fabric {
            Fabric::Netns(n) => n.placement(id),
            Fabric::Proxies(_) | Fabric::Direct => Ok(Placement::default()),
        }
    }

    /// Makes `links` exactly the set of cut links. On netns a cut link
    /// (from, to) drops at `to` what `from` sends, so a one-way cut is
    /// exact; on proxies a cut link blackholes `from`'s connections to
    /// `to` (both directions of their bytes). Unknown links are an error
    /// and change nothing.
    pub fn cut<'a>(&self, links: impl IntoIterator<Item = &'a Link>) -> Result<(), NetError> {
        match &self.fabric {
            Fabric::Proxies(p) => p.cut(links, CutMode::Blackhole),
            Fabric::Netns(n) => n.cut(links),
            Fabric::Direct => Err(self.no_faults("partitions")),
        }
    }

    /// Makes `links` exactly the set of links (from, to) on which `from`
    /// cannot call `to`: every connection `from` opens to `to` stalls or
    /// fails, both ways, while `to`'s connections to `from` work. A proxy
    /// carries exactly one node's calls to another, so on proxies this is
    /// [`Net::cut`]; on netns it is the `nodial` set of `to`'s packet filter.
    pub fn cut_dials<'a>(&self, links: impl IntoIterator<Item = &'a Link>) -> Result<(), NetError> {
        match &self.fabric {
            Fabric::Proxies(p) => p.cut(links, CutMode::Blackhole),
            Fabric::Netns(n) => n.cut_dials(links),
            Fabric::Direct => Err(self.no_faults("partitions")),
        }
    }

    /// Cuts nothing (packet cuts and dial cuts). On proxies every link opens (slow ones too: only
    /// figure 8 slows links, and it never runs with partitions); on netns
    /// packet faults stay.
    pub fn heal(&self) -> Result<(), NetError> {
        match &self.fabric {
            Fabric::Proxies(p) => {
                p.heal();
                Ok(())
            }
            Fabric::Netns(n) => n.heal(),
            Fabric::Direct => Ok(()),
        }
    }

    /// Makes `faults` exactly the set of impaired links (netns only).
    pub fn impair(&self, faults: &BTreeMap<Link, PacketFaults>) -> Result<(), NetError> {
        match &self.fabric {
            Fabric::Netns(n) => n.impair(faults),
            Fabric::Proxies(_) | Fabric::Direct => Err(NetError::Unsupported(
                "packet faults need --network netns (a TCP proxy cannot delay, drop, \
                 duplicate, reorder or corrupt packets)"
                    .into(),
            )),
        }
    }

    /// Impairs nothing (nothing to do on proxies).
    pub fn unimpair(&self) -> Result<(), NetError> {
        match &self.fabric {
            Fabric::Netns(n) => n.unimpair(),
            Fabric::Proxies(_) | Fabric::Direct => Ok(()),
        }
    }

    /// Puts every link in `states` in its state and every other link back
    /// to normal, as a whole: cuts, and slow links (every byte, or packet,
    /// from `from` to `to` that much late). For figure 8. On proxies a link
    /// whose state changes closes its connections; on netns connections
    /// stay and stall or slow down.
    pub fn shape(&self, states: &BTreeMap<Link, LinkState>) -> Result<(), NetError> {
        match &self.fabric {
            Fabric::Proxies(p) => p.shape(states),
            Fabric::Netns(n) => {
                let cut: Vec<Link> = states
                    .iter()
                    .filter(|(_, s)| matches!(s, LinkState::Cut(_)))
                    .map(|(l, _)| l.clone())
                    .collect();
                let slow: BTreeMap<Link, PacketFaults> = states
                    .iter()
                    .filter_map(|(l, s)| match s {
                        LinkState::Delay(d) => Some((l.clone(), PacketFaults::delay(*d))),
                        _ => None,
                    })
                    .collect();
                n.cut(&cut)?;
                n.impair(&slow)
            }
            Fabric::Direct if states.is_empty() => Ok(()),
            Fabric::Direct => Err(self.no_faults("slow links")),
        }
    }

    /// Undoes every network fault: cuts, slow links, packet faults.
    pub fn heal_all(&self) -> Result<(), NetError> {
        let healed = self.heal();
        let unimpaired = self.unimpair();
        healed.and(unimpaired)
    }

    /// The links cut now.
    pub fn cut_links(&self) -> BTreeSet<Link> {
        match &self.fabric {
            Fabric::Proxies(p) => p.cut_links(),
            Fabric::Netns(n) => n.cut_links(),
            Fabric::Direct => BTreeSet::new(),
        }
    }

    /// The network for `run.json`: its kind and where each member listens.
    pub fn describe(&self) -> Value {
        let members: serde_json::Map<String, Value> = self
            .members
            .iter()
            .map(|(id, l)| {
                (
                    id.clone(),
                    json!({"client": l.client.to_string(), "peer": l.peer.to_string()}),
                )
            })
            .collect();
        json!({"kind": self.kind.name(), "members": members})
    }

    /// What each link carried, keyed `from->to`: bytes and connections on
    /// proxies, packets (and what the emulator did) on netns. Never fails:
    /// statistics that cannot be read are left out.
    pub fn stats(&self) -> Value {
        let key = |(from, to): &Link| format!("{from}->{to}");
        let links: serde_json::Map<String, Value> = match &self.fabric {
            Fabric::Proxies(p) => p.stats().iter().map(|(l, s)| (key(l), json!(s))).collect(),
            Fabric::Netns(n) => n.stats().iter().map(|(l, s)| (key(l), json!(s))).collect(),
            Fabric::Direct => serde_json::Map::new(),
        };
        Value::Object(links)
    }

    fn no_faults(&self, what: &str) -> NetError {
        NetError::Unsupported(format!(
            "no {what}: the peers are connected directly, without proxies"
        ))
    }
}

/// A loopback address whose port was free a moment ago.
fn free_loopback_addr() -> Result<SocketAddr, NetError> {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(NetError::Port)?;
    l.local_addr().map_err(NetError::Port)
}
