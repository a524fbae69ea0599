//! Questions asked of every member at once: who leads, and do their stores
//! agree (the end-of-run state-machine check).

use std::time::Duration;

use futures_util::future::join_all;

use super::client::{EtcdClient, KvHash, MemberStatus};
use super::error::EtcdError;

/// Every member's Status (in member order), asked concurrently.
pub async fn statuses(
    client: &EtcdClient,
    timeout: Duration,
) -> Vec<Result<MemberStatus, EtcdError>> {
    join_all((0..client.len()).map(|i| client.status(i, timeout))).await
}

/// The member that says it leads, with its status; if several do (an old
/// leader that has not heard of the new term yet), the one of the highest
/// term. `None` when no reachable member leads.
pub async fn find_leader(client: &EtcdClient, timeout: Duration) -> Option<(usize, MemberStatus)> {
    statuses(client, timeout)
        .await
        .into_iter()
        .enumerate()
        .filter_map(|(i, s)| s.ok().filter(MemberStatus::is_leader).map(|s| (i, s)))
        .max_by_key(|(_, s)| s.raft_term)
}

/// The verdict of comparing the members' key-value hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashCheck {
    /// Every member hashed its keys up to `revision` to `hash`.
    Agree {
        /// The revision compared.
        revision: i64,
        /// Every member's hash.
        hash: u32,
    },
    /// Members disagree about the keys up to `revision`: each member's
    /// name and hash.
    Mismatch {
        /// The revision compared.
        revision: i64,
        /// Each member's name and hash, in member order.
        hashes: Vec<(String, u32)>,
    },
    /// The hashes could not be compared; why.
    Unknown(String),
}

/// Asks every member for its HashKV at one revision and compares.
///
/// The revision is the lowest current revision among the members (from
/// Status), so every member has applied it; a member that cannot answer,
/// or members whose compactions differ (their hashes cover different
/// revisions), make the result [`HashCheck::Unknown`], never a verdict.
/// Call it once the cluster is quiet, or the lowest revision moves on.
pub async fn check_hashes(client: &EtcdClient, timeout: Duration) -> HashCheck {
    let mut revision = i64::MAX;
    for (i, s) in statuses(client, timeout).await.into_iter().enumerate() {
        match s {
            Ok(s) => revision = revision.min(s.revision),
            Err(e) => return HashCheck::Unknown(format!("{}: status: {e}", client.name(i))),
        }
    }
    if client.is_empty() {
        return HashCheck::Unknown("no members".into());
    }
    let hashes = join_all((0..client.len()).map(|i| client.hash_kv(i, revision, timeout))).await;
    let mut got: Vec<(String, KvHash)> = Vec::new();
    for (i, h) in hashes.into_iter().enumerate() {
        match h {
            Ok(h) => got.push((client.name(i).to_string(), h)),
            Err(e) => {
                return HashCheck::Unknown(format!(
                    "{}: HashKV at revision {revision}: {e}",
                    client.name(i)
                ));
            }
        }
    }
    judge(revision, &got)
}

/// The verdict on hashes the members gave for `revision`.
pub fn judge(revision: i64, hashes: &[(String, KvHash)]) -> HashCheck {
    let Some((_, first)) = hashes.first() else {
        return HashCheck::Unknown("no members".into());
    };
    if let Some((name, h)) = hashes
        .iter()
        .find(|(_, h)| h.compact_revision != first.compact_revision)
    {
        return HashCheck::Unknown(format!(
            "{} compacted at revision {} and {} at {}: their hashes at {revision} cover different revisions",
            hashes[0].0, first.compact_revision, name, h.compact_revision
        ));
    }
    if hashes.iter().all(|(_, h)| h.hash == first.hash) {
        HashCheck::Agree {
            revision,
            hash: first.hash,
        }
    } else {
        HashCheck::Mismatch {
            revision,
            hashes: hashes.iter().map(|(n, h)| (n.clone(), h.hash)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, hash: u32, compact_revision: i64) -> (String, KvHash) {
        (
            name.to_string(),
            KvHash {
                member_id: 1,
                hash,
                compact_revision,
            },
        )
    }

    #[test]
    fn equal_hashes_agree_and_a_different_one_is_named() {
        assert_eq!(
            judge(9, &[h("e1", 7, 0), h("e2", 7, 0), h("e3", 7, 0)]),
            HashCheck::Agree {
                revision: 9,
                hash: 7
            }
        );
        assert_eq!(
            judge(9, &[h("e1", 7, 0), h("e2", 8, 0), h("e3", 7, 0)]),
            HashCheck::Mismatch {
                revision: 9,
                hashes: vec![("e1".into(), 7), ("e2".into(), 8), ("e3".into(), 7)]
            }
        );
    }

    #[test]
    fn different_compactions_are_not_compared() {
        let HashCheck::Unknown(why) = judge(9, &[h("e1", 7, 0), h("e2", 8, 5)]) else {
            panic!("compared hashes of different compactions");
        };
        assert!(why.contains("e2 at 5"), "{why}");
        assert!(matches!(judge(1, &[]), HashCheck::Unknown(_)));
    }
}
