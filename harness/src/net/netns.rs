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

use netlab::{Lab, LinkStats, PacketFaults};

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

    pub fn cut_dials<'a>(&self, links: impl IntoIterator<Item = &'a Link>) -> Result<(), NetError> {
        Ok(self.lab.cut_dials(links)?)
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

/// Whether the calling thread's namespace is one where building namespaces
/// is allowed: a private one, whose contents die with the harness (see
/// [`crate::sandbox`]), never the machine's.
pub fn in_private_namespace() -> bool {
    crate::sandbox::in_private_netns()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::super::{LinkState, Net, NetSpec, NetworkKind};
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn namespaces_are_never_built_in_the_machines_namespace() {
        // The test runner lives in the machine's namespace (or in one it
        // did not vouch for): refused before anything is made.
        assert!(!in_private_namespace());
        let refused = block_on(Net::start(&NetSpec::new(NetworkKind::Netns, 1), &ids(2)));
        assert!(matches!(refused, Err(NetError::NotPrivate)));
    }

    #[test]
    fn members_listen_on_their_own_addresses_and_run_in_their_namespaces() {
        netlab::testing::isolated(
            "net::netns::tests::members_listen_on_their_own_addresses_and_run_in_their_namespaces",
            || {
                crate::sandbox::vouch_for_this_netns();
                let spec = NetSpec {
                    ports: Ports::Separate,
                    ..NetSpec::new(NetworkKind::Netns, 1)
                };
                let net = block_on(Net::start(&spec, &ids(3))).unwrap();
                assert_eq!(net.kind(), NetworkKind::Netns);
                let n2 = net.listen("n2").unwrap();
                assert_eq!(n2.client, "198.18.1.2:7000".parse().unwrap());
                assert_eq!(n2.peer, "198.18.1.2:7001".parse().unwrap());
                // Peers dial each other's own peer address: no proxy.
                assert_eq!(net.peer_addr("n1", "n2").unwrap(), n2.peer);
                assert!(net.peer_addr("n1", "n1").is_err());
                assert!(net.peer_addr("n1", "n9").is_err());
                // A process placed for n3 sees n3's address and no other.
                let mut cmd = std::process::Command::new("ip");
                cmd.args(["-o", "-4", "addr", "show"]);
                let out = net
                    .placement("n3")
                    .unwrap()
                    .apply(&mut cmd)
                    .output()
                    .unwrap();
                let shown = String::from_utf8_lossy(&out.stdout);
                assert!(shown.contains("198.18.1.3/15"), "{shown}");
                assert!(!shown.contains("198.18.1.1/"), "{shown}");

                // Figure 8's shapes: cuts and slow links as a whole.
                let link = |a: &str, b: &str| (a.to_string(), b.to_string());
                let states = BTreeMap::from([
                    (
                        link("n1", "n2"),
                        LinkState::Cut(super::super::CutMode::Blackhole),
                    ),
                    (
                        link("n2", "n3"),
                        LinkState::Delay(Duration::from_millis(100)),
                    ),
                ]);
                net.shape(&states).unwrap();
                assert_eq!(net.cut_links(), BTreeSet::from([link("n1", "n2")]));
                net.cut(&[link("n3", "n1")]).unwrap();
                assert_eq!(net.cut_links(), BTreeSet::from([link("n3", "n1")]));
                net.heal_all().unwrap();
                assert!(net.cut_links().is_empty());
                let d = net.describe();
                assert_eq!(d["kind"], "netns");
                assert_eq!(d["members"]["n1"]["peer"], "198.18.1.1:7001");
                assert_eq!(net.stats().as_object().unwrap().len(), 6);
            },
        );
    }
}
