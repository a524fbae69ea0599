//! The packet-filter rules of a node namespace, as text for `nft -f -` and
//! arguments for `iptables` (pure functions: unit-tested, no kernel).
//!
//! Every node namespace gets, once, when it is built:
//!
//! - our nftables table `inet netlab`, whose sets start empty. A cut, a
//!   packet fault or a rate only ever adds elements to a set, and undoing
//!   it deletes exactly those elements: no rule is added or removed while
//!   the network runs, and a batch of element changes is atomic (sent over
//!   netlink by `crate::setedit`).
//!   - `cut`: sources whose packets this node drops, in `prerouting` at
//!     priority `raw` (before conntrack: an established connection is not
//!     spared, its packets are dropped like any other, so it stalls).
//!   - `nodial`: peers whose connections to this node are dropped, both
//!     ways, in `input` and `output` after conntrack (`ct original ip
//!     saddr`): the peer cannot call this node, while this node's own
//!     connections to the peer, and the answers on them, pass.
//!   - `impaired`: destinations whose packets are marked for the emulator.
//!   - `rated`: destinations whose packets go through the rate-limited
//!     traffic class (`meta priority 1:2`, see `crate::lab`).
//!   - `tx`, `rx`: every peer, with per-element counters: what this node
//!     sent to each peer and what it received from each (after cuts).
//! - one iptables rule (`mangle OUTPUT`) that sends marked packets to
//!   NFQUEUE 0 with `--queue-bypass`: the kernel has no nftables `queue`
//!   expression here, but iptables' NFQUEUE target works. Bypass: with no
//!   emulator bound, marked packets pass untouched.
//!
//! Packets the emulator re-injects (duplicates) carry [`MARK_INJECTED`] and
//! are never marked for the queue again.

use std::net::Ipv4Addr;

/// Our nftables table, in family `inet`.
pub(crate) const TABLE: &str = "netlab";

/// The mark bit that sends a packet to the emulator's queue.
pub(crate) const MARK_QUEUE: u32 = 0x1000;
/// The mark of packets the emulator sent itself: they skip the queue.
pub(crate) const MARK_INJECTED: u32 = 0x2000;

/// The NFQUEUE number of every node namespace (queues are per namespace).
pub(crate) const QUEUE_NUM: u16 = 0;

/// The traffic class (`htb` class id) of rate-limited packets.
pub(crate) const RATED_CLASS: &str = "1:2";

/// The sets a change can touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Set {
    Cut,
    NoDial,
    Impaired,
    Rated,
}

impl Set {
    pub fn name(self) -> &'static str {
        match self {
            Set::Cut => "cut",
            Set::NoDial => "nodial",
            Set::Impaired => "impaired",
            Set::Rated => "rated",
        }
    }
}

/// The table of a node namespace whose peers are `peers`.
pub(crate) fn node_table(peers: &[Ipv4Addr]) -> String {
    let elements = if peers.is_empty() {
        String::new()
    } else {
        format!("elements = {{ {} }}; ", join(peers))
    };
    let q = MARK_QUEUE;
    let i = MARK_INJECTED;
    format!(
        "table inet {TABLE} {{
    set cut {{ type ipv4_addr; }}
    set nodial {{ type ipv4_addr; }}
    set impaired {{ type ipv4_addr; }}
    set rated {{ type ipv4_addr; }}
    set tx {{ type ipv4_addr; counter; {elements}}}
    set rx {{ type ipv4_addr; counter; {elements}}}
    chain ingress {{
        type filter hook prerouting priority raw; policy accept;
        ip saddr @cut drop
        ip saddr @rx
    }}
    chain dial_in {{
        type filter hook input priority filter; policy accept;
        ct original ip saddr @nodial drop
    }}
    chain dial_out {{
        type filter hook output priority filter; policy accept;
        ct original ip saddr @nodial drop
    }}
    chain egress {{
        type filter hook output priority mangle - 10; policy accept;
        ip daddr @tx
        meta mark and {i:#x} == 0 ip daddr @impaired meta mark set meta mark or {q:#x}
        ip daddr @rated meta priority set {RATED_CLASS}
    }}
}}
"
    )
}

/// `iptables` arguments of the queue rule, for `-A` (add) or `-C` (check).
pub(crate) fn queue_rule_args(op: &'static str) -> Vec<&'static str> {
    // Literal strings keep this a Vec<&'static str>; the constants above
    // say the same, and a unit test holds them together.
    vec![
        "-w",
        "-t",
        "mangle",
        op,
        "OUTPUT",
        "-m",
        "mark",
        "--mark",
        "0x1000/0x3000",
        "-j",
        "NFQUEUE",
        "--queue-num",
        "0",
        "--queue-bypass",
    ]
}

fn join(addrs: &[Ipv4Addr]) -> String {
    addrs
        .iter()
        .map(Ipv4Addr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_rule_matches_the_marks() {
        let args = queue_rule_args("-A");
        let mark = format!("{MARK_QUEUE:#x}/{:#x}", MARK_QUEUE | MARK_INJECTED);
        assert!(args.contains(&mark.as_str()), "{args:?} lacks {mark}");
        assert!(args.contains(&QUEUE_NUM.to_string().as_str()));
        assert!(args.contains(&"--queue-bypass"));
    }

    #[test]
    fn a_table_lists_its_peers_and_a_lone_node_has_none() {
        let t = node_table(&[Ipv4Addr::new(198, 18, 1, 2), Ipv4Addr::new(198, 18, 1, 3)]);
        assert!(t.contains("elements = { 198.18.1.2, 198.18.1.3 }"));
        assert!(t.contains("ip saddr @cut drop"));
        assert_eq!(t.matches("ct original ip saddr @nodial drop").count(), 2);
        assert!(!node_table(&[]).contains("elements"));
    }
}
