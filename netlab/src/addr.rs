//! The address plan: everything lives in 198.18.0.0/15 (RFC 2544's
//! benchmarking range, never routed), one /15 subnet on one bridge.
//!
//! - the control side (the harness, its clients and proxies): 198.18.0.1;
//! - the node at position `p` (0-based, in the order the network was built
//!   with): 198.18.(1 + p / 254).(1 + p % 254), so n1, n2, ... of a small
//!   cluster are 198.18.1.1, 198.18.1.2, ...
//!
//! Interface names: the bridge and the host ends of the veth pairs live in
//! the control namespace; every node namespace has one `eth0`.

use std::net::Ipv4Addr;

/// The harness's own address, on the bridge.
pub const CONTROL_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// The prefix length of every address: one flat subnet, no routers.
pub const PREFIX_LEN: u8 = 15;

/// How many nodes the plan has addresses for (198.18.1.1 .. 198.18.255.x).
/// Far beyond what a local cluster needs; the bound keeps interface names
/// short.
pub const MAX_NODES: usize = 254 * 255;

/// The bridge in the control namespace.
pub(crate) const BRIDGE: &str = "nlbr0";

/// The node's end of its veth pair, inside its namespace.
pub(crate) const NODE_IFACE: &str = "eth0";

/// The address of the node at `position`.
pub fn node_addr(position: usize) -> Ipv4Addr {
    assert!(
        position < MAX_NODES,
        "node position {position} out of range"
    );
    let hi = 1 + position / 254;
    let lo = 1 + position % 254;
    Ipv4Addr::new(198, 18, hi as u8, lo as u8)
}

/// The control-side end of node `position`'s veth pair.
pub(crate) fn host_iface(position: usize) -> String {
    format!("nlv{position}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_numbered_from_198_18_1_1_and_never_collide_with_control() {
        assert_eq!(node_addr(0), Ipv4Addr::new(198, 18, 1, 1));
        assert_eq!(node_addr(2), Ipv4Addr::new(198, 18, 1, 3));
        assert_eq!(node_addr(253), Ipv4Addr::new(198, 18, 1, 254));
        assert_eq!(node_addr(254), Ipv4Addr::new(198, 18, 2, 1));
        let all: std::collections::HashSet<_> = (0..MAX_NODES).map(node_addr).collect();
        assert_eq!(all.len(), MAX_NODES);
        assert!(!all.contains(&CONTROL_ADDR));
        // Every address is inside 198.18.0.0/15.
        assert!(
            all.iter()
                .all(|a| a.octets()[0] == 198 && a.octets()[1] & 0xfe == 18)
        );
        assert!(host_iface(MAX_NODES - 1).len() < 16, "IFNAMSIZ");
    }
}
