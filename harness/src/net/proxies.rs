//! The proxies between the nodes: one TCP proxy for every ordered pair, so
//! the harness can partition the cluster without the nodes' cooperation,
//! on any machine (no namespaces, no privileges).
//!
//! Node `i` is started with `--peer j=<proxy (i → j)>`, so every connection
//! `i` opens to `j` (and thus every RPC `i` sends to `j`, with its reply)
//! goes through the proxy of link (i → j). Cutting that link closes its
//! connections at once and blackholes or refuses new ones; healing lets new
//! connections through again, and the nodes reconnect by themselves.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::Mutex;

use super::link::{CutMode, LinkState, LinkStats};
use super::proxy::Proxy;
use super::{Link, NetError};

/// All the proxies of a cluster. Dropping it stops every listener and
/// closes every proxied connection; [`Proxies::shutdown`] does the same and
/// waits until the listeners are closed.
pub struct Proxies {
    nodes: Vec<String>,
    proxies: BTreeMap<Link, Proxy>,
    /// Serializes `cut` and `heal` so that a cut set is applied as a whole.
    control: Mutex<()>,
}

impl Proxies {
    /// Binds one proxy per ordered pair of distinct nodes on free
    /// 127.0.0.1 ports. `targets` are (node id, the node's real listen
    /// address). Every link starts open.
    pub async fn start(targets: &[(String, SocketAddr)]) -> Result<Proxies, NetError> {
        let mut seen = HashSet::new();
        for (id, _) in targets {
            if id.is_empty() {
                return Err(NetError::EmptyNodeId);
            }
            if !seen.insert(id) {
                return Err(NetError::DuplicateNode(id.clone()));
            }
        }
        let mut proxies = BTreeMap::new();
        for (from, _) in targets {
            for (to, target) in targets.iter().filter(|(to, _)| to != from) {
                let proxy = Proxy::bind(*target)
                    .await
                    .map_err(|source| NetError::Bind {
                        from: from.clone(),
                        to: to.clone(),
                        source,
                    })?;
                proxies.insert((from.clone(), to.clone()), proxy);
            }
        }
        Ok(Proxies {
            nodes: targets.iter().map(|(id, _)| id.clone()).collect(),
            proxies,
            control: Mutex::new(()),
        })
    }

    /// The node ids, in the order given to [`Proxies::start`].
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// Every link, in order.
    pub fn links(&self) -> impl Iterator<Item = &Link> {
        self.proxies.keys()
    }

    /// The address `from` must use to reach `to` (its `--peer to=ADDR`).
    pub fn proxy_addr(&self, from: &str, to: &str) -> Result<SocketAddr, NetError> {
        Ok(self.proxy(from, to)?.addr)
    }

    /// The `--peer` flags of node `from`: (peer id, proxy address) for every
    /// other node, in the order given to [`Proxies::start`].
    pub fn peers_of(&self, from: &str) -> Result<Vec<(String, SocketAddr)>, NetError> {
        if !self.nodes.iter().any(|n| n == from) {
            return Err(NetError::UnknownNode(from.to_string()));
        }
        self.nodes
            .iter()
            .filter(|to| *to != from)
            .map(|to| Ok((to.clone(), self.proxy_addr(from, to)?)))
            .collect()
    }

    /// Makes `links` exactly the set of cut links: they are cut in `mode`,
    /// every other link is open. A link whose state does not change keeps its
    /// connections; a link that is cut now closes them at once. Unknown links
    /// are an error and leave the network unchanged.
    pub fn cut<'a>(
        &self,
        links: impl IntoIterator<Item = &'a Link>,
        mode: CutMode,
    ) -> Result<(), NetError> {
        let states: BTreeMap<Link, LinkState> = links
            .into_iter()
            .map(|link| (link.clone(), LinkState::Cut(mode)))
            .collect();
        self.shape(&states)
    }

    /// Puts every link in `states` in its state and opens every other one.
    /// A link whose state changes closes its connections (a slow link's
    /// bytes in flight are lost); unknown links are an error and leave the
    /// network unchanged.
    pub fn shape(&self, states: &BTreeMap<Link, LinkState>) -> Result<(), NetError> {
        for link in states.keys() {
            self.proxy(&link.0, &link.1)?;
        }
        let _guard = self.control.lock().unwrap_or_else(|e| e.into_inner());
        for (link, proxy) in &self.proxies {
            let state = states.get(link).copied().unwrap_or(LinkState::Open);
            proxy.policy.send_if_modified(|p| p.set(state));
        }
        tracing::debug!(links = states.len(), "network shaped");
        Ok(())
    }

    /// Opens every link. Connections held by a blackhole are closed, so their
    /// clients reconnect and get through.
    pub fn heal(&self) {
        // No link named, so none unknown: this cannot fail.
        let _ = self.shape(&BTreeMap::new());
    }

    /// The links cut now.
    pub fn cut_links(&self) -> BTreeSet<Link> {
        self.proxies
            .iter()
            .filter(|(_, proxy)| matches!(proxy.policy.borrow().state, LinkState::Cut(_)))
            .map(|(link, _)| link.clone())
            .collect()
    }

    /// What every link has carried so far.
    pub fn stats(&self) -> BTreeMap<Link, LinkStats> {
        self.proxies
            .iter()
            .map(|(link, proxy)| (link.clone(), proxy.counters.snapshot()))
            .collect()
    }

    /// What link `from` → `to` has carried so far.
    pub fn link_stats(&self, from: &str, to: &str) -> Result<LinkStats, NetError> {
        Ok(self.proxy(from, to)?.counters.snapshot())
    }

    /// Stops every proxy and waits until their listeners are closed and
    /// their connections dropped.
    pub async fn shutdown(mut self) {
        for proxy in self.proxies.values_mut() {
            proxy.task.abort();
            let _ = (&mut proxy.task).await;
        }
    }

    fn proxy(&self, from: &str, to: &str) -> Result<&Proxy, NetError> {
        // BTreeMap<(String, String), _> cannot be queried by (&str, &str)
        // without allocating; the map is small, and this is not a hot path.
        self.proxies
            .get(&(from.to_string(), to.to_string()))
            .ok_or_else(|| NetError::UnknownLink {
                from: from.to_string(),
                to: to.to_string(),
            })
    }
}
