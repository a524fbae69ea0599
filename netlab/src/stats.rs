//! What a link has carried, from the counters of our nftables sets and
//! from the emulator.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::packet::EmulatorStats;

/// What one link (from → to) has carried since the network was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkStats {
    /// Packets (and their bytes) `from` sent `to`, counted as they left
    /// `from`'s stack, before any fault.
    pub sent_packets: u64,
    pub sent_bytes: u64,
    /// Packets (and bytes) from `from` that reached `to` and passed its cut
    /// filter (duplicates included, corrupted ones too: the checksum is
    /// checked later, by the transport).
    pub received_packets: u64,
    pub received_bytes: u64,
    /// What the emulator did to the link's packets.
    pub emulator: EmulatorStats,
}

/// One element's counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

/// The per-element counters in `nft -j list set ...` output. Anything it
/// cannot read counts as zero: statistics never fail a run.
pub(crate) fn set_counters(json: &str) -> HashMap<Ipv4Addr, Counter> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return HashMap::new();
    };
    let mut out = HashMap::new();
    let sets = v["nftables"].as_array().into_iter().flatten();
    for elem in sets.filter_map(|o| o["set"]["elem"].as_array()).flatten() {
        let e = &elem["elem"];
        let Some(addr) = e["val"].as_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let get = |k: &str| e["counter"][k].as_u64().unwrap_or(0);
        out.insert(
            addr,
            Counter {
                packets: get("packets"),
                bytes: get("bytes"),
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_from_nft_json() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
            {"set": {"family": "inet", "name": "tx", "table": "netlab", "type": "ipv4_addr",
             "elem": [{"elem": {"val": "198.18.1.2", "counter": {"packets": 3, "bytes": 180}}},
                      {"elem": {"val": "198.18.1.3", "counter": {"packets": 0, "bytes": 0}}}]}}]}"#;
        let c = set_counters(json);
        assert_eq!(
            c[&Ipv4Addr::new(198, 18, 1, 2)],
            Counter {
                packets: 3,
                bytes: 180
            }
        );
        assert_eq!(c.len(), 2);
        assert!(set_counters("not json").is_empty());
    }
}
