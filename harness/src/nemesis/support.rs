//! Which faults each database under test can take: a question about the
//! nemeses, answered here so that the database interface needs to know
//! nothing of them.

use super::Kind;
use crate::db::DbKind;
use crate::net::NetworkKind;

/// Why `db` cannot run `nemesis` on `network`, if it cannot.
pub fn unsupported(nemesis: Kind, db: DbKind, network: NetworkKind) -> Option<String> {
    if db == DbKind::Raftkv {
        return None;
    }
    match nemesis {
        Kind::Partition | Kind::Packet if network == NetworkKind::Proxy => Some(format!(
            "--nemesis {nemesis} with --db etcd needs --network netns: an etcd member dials \
             the one peer URL each peer advertises, so a proxy in front of B is shared by A \
             and C and cannot cut A→B apart from C→B"
        )),
        Kind::Figure8 => Some(
            "--nemesis figure8 steers Raft by our node's Status (commit and last log index), \
             which etcd does not report; it runs with --db raftkv only"
                .into(),
        ),
        Kind::Member | Kind::Wipe => Some(format!(
            "--nemesis {nemesis} speaks our node's Admin API (remove, re-add a member that lost \
             its data); with --db etcd it does not run yet"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_refuses_partitions_on_proxies_with_the_reason_and_our_node_nothing() {
        let why = unsupported(Kind::Partition, DbKind::Etcd, NetworkKind::Proxy).unwrap();
        assert!(why.contains("netns") && why.contains("A→B"), "{why}");
        assert_eq!(
            unsupported(Kind::Partition, DbKind::Etcd, NetworkKind::Netns),
            None
        );
        assert_eq!(
            unsupported(Kind::Kill, DbKind::Etcd, NetworkKind::Proxy),
            None
        );
        assert!(unsupported(Kind::Figure8, DbKind::Etcd, NetworkKind::Netns).is_some());
        assert_eq!(
            unsupported(Kind::Partition, DbKind::Raftkv, NetworkKind::Proxy),
            None
        );
    }
}
