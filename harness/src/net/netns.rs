//! The namespaces network: a `netlab` [`Lab`] (a namespace per node on a
//! bridge in the harness's namespace) and the ports the members listen on
//! inside their namespaces.
//!
//! Every member has its own address (198.18.1.1, 198.18.1.2, ...), so the
//! ports are fixed: [`CLIENT_PORT`], and [`PEER_PORT`] for members with a
//! separate peer port. Peers dial each other's own addresses; the packet
//! filter of each namespace does the cutting.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use netlab::{Lab, LinkStats, NetNs, PacketFaults};

use super::{Link, Listen, NetError, Placement, Ports};

/// Where members serve clients (and peers, with [`Ports::Shared`]).
pub const CLIENT_PORT: u16 = 7000;
/// Where members with [`Ports::Separate`] serve peers.
pub const PEER_PORT: u16 = 7001;

/// A built network of namespaces.
pub(super) struct Namespaces {
    lab: Lab,
}

impl Namespaces {
    /// Builds the namespaces of `ids` in the calling thread's namespace,
    /// which must not be the machine's own (see [`in_private_namespace`]).
    pub fn build(
        ids: &[String],
        seed: u64,
        ports: Ports,
    ) -> Result<(Namespaces, Vec<(String, Listen)>), NetError> {
        if !in_private_namespace() {
            return Err(NetError::NotPrivate);
        }
        let lab = Lab::build(ids, seed)?;
        let mut members = Vec::new();
        for id in ids {
            let ip = lab.addr(id)?;
            let client = SocketAddr::from((ip, CLIENT_PORT));
            let peer = match ports {
                Ports::Shared => client,
                Ports::Separate => SocketAddr::from((ip, PEER_PORT)),
            };
            members.push((id.clone(), Listen { client, peer }));
        }
        Ok((Namespaces { lab }, members))
    }

    pub fn placement(&self, id: &str) -> Result<Placement, NetError> {
        Ok(Placement(Some(self.lab.namespace(id)?.clone())))
    }

    pub fn cut<'a>(&self, links: impl IntoIterator<Item = &'a Link>) -> Result<(), NetError> {
        Ok(self.lab.cut(links)?)
    }

    pub fn heal(&self) -> Result<(), NetError> {
        Ok(self.lab.heal()?)
    }

    pub fn impair(&self, faults: &BTreeMap<Link, PacketFaults>) -> Result<(), NetError> {
        Ok(self.lab.impair(faults)?)
    }

    pub fn unimpair(&self) -> Result<(), NetError> {
        Ok(self.lab.unimpair()?)
    }

    pub fn cut_links(&self) -> BTreeSet<Link> {
        self.lab.cut_links()
    }

    pub fn stats(&self) -> BTreeMap<Link, LinkStats> {
        self.lab.stats().unwrap_or_default()
    }
}

/// Whether the calling thread is outside the machine's network namespace
/// (that of process 1), where building namespaces is allowed: everything
/// built there dies with the harness. Where process 1's namespace cannot
/// be read, only a namespace the harness entered itself counts.
pub fn in_private_namespace() -> bool {
    let here = NetNs::current().map(|ns| ns.inode()).ok();
    let machine = std::fs::metadata("/proc/1/ns/net")
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    match (here, machine) {
        (Some(here), Some(machine)) => here != machine,
        _ => crate::sandbox::net_ns_private(),
    }
}
