//! A real 3-member etcd cluster on free loopback ports: the client's calls
//! and their outcomes, a SIGKILLed leader and its successor, HashKV
//! agreement, and the role changes read back from the members' logs.
//!
//! Skipped (with the reason printed) when etcd is not installed. Every
//! process is killed when the test ends, however it ends (`LocalCluster`'s
//! members are killed on drop, and die with the test process anyway through
//! PR_SET_PDEATHSIG); every wait is bounded.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use harness::check::Verdict;
use harness::client::Outcome;
use harness::etcd::client::{AppendResult, CasResult, ListState, MemberStatus};
use harness::etcd::local::LocalCluster;
use harness::etcd::member;
use harness::etcd::survey::{self, HashCheck};
use harness::etcd::value::{self, Kind};
use harness::etcd::workload::{self, OpOptions};
use harness::etcd::{ClientOptions, Consistency, logs};
use harness::history::{Action, Value};

const CALL: Duration = Duration::from_secs(3);

/// The cluster, its directory, and its logs printed if the test fails.
struct Cluster {
    local: LocalCluster,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start(bin: PathBuf, n: usize) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalCluster::start(&bin, dir.path(), n, &[]).unwrap();
        Cluster { local, _dir: dir }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.local.logs_tail(15));
        }
        // The members are SIGKILLed and reaped as `local` drops.
    }
}

/// Polls `f` until it gives `Some`, for at most `limit`.
async fn within<T, F: Future<Output = Option<T>>>(
    limit: Duration,
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(start.elapsed() < limit, "no {what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn etcd_or_skip() -> Option<PathBuf> {
    match member::find_binary(None) {
        Ok(bin) => Some(bin),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_cluster_ops_failover_hashes_and_logs() {
    let Some(bin) = etcd_or_skip() else { return };
    let mut cluster = Cluster::start(bin, 3);
    tokio::time::timeout(Duration::from_secs(120), scenario(&mut cluster))
        .await
        .expect("the scenario took over 120 s");
}

async fn scenario(cluster: &mut Cluster) {
    let client = &cluster.local.client(ClientOptions::default()).unwrap();
    let (leader, first) = within(Duration::from_secs(20), "leader", || {
        survey::find_leader(client, CALL)
    })
    .await;
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;

    // Register: put, linearizable and serializable reads, cas both ways.
    client
        .put(follower, b"r", value::encode_int(1), CALL)
        .await
        .unwrap();
    let r = client
        .get(other, b"r", Consistency::Linearizable, CALL)
        .await
        .unwrap();
    assert_eq!(r.value.as_deref(), Some(&b"1"[..]));
    assert!(r.mod_revision > 0 && r.revision >= r.mod_revision);
    let absent = client
        .get(leader, b"nope", Consistency::Serializable, CALL)
        .await
        .unwrap();
    assert_eq!((absent.value, absent.mod_revision), (None, 0));
    let swapped = client
        .cas(
            follower,
            b"r",
            Some(value::encode_int(1)),
            value::encode_int(2),
            CALL,
        )
        .await
        .unwrap();
    assert!(matches!(swapped, CasResult::Swapped { revision } if revision > r.revision));
    let mismatch = client
        .cas(
            other,
            b"r",
            Some(value::encode_int(1)),
            value::encode_int(3),
            CALL,
        )
        .await
        .unwrap();
    assert_eq!(
        mismatch,
        CasResult::Mismatch {
            actual: Some(b"2".to_vec())
        }
    );
    let create = client
        .cas(leader, b"c", None, value::encode_int(0), CALL)
        .await
        .unwrap();
    assert!(matches!(create, CasResult::Swapped { .. }));
    let again = client
        .cas(follower, b"c", None, value::encode_int(4), CALL)
        .await
        .unwrap();
    assert_eq!(
        again,
        CasResult::Mismatch {
            actual: Some(b"0".to_vec())
        }
    );

    // Append: a conditional write from a stale state fails and says what is there.
    let a = client.append(follower, b"l", 5, 1, CALL).await.unwrap();
    assert!(matches!(a, AppendResult::Appended { ref list, .. } if list == &[5]));
    let a = client.append(other, b"l", 6, 1, CALL).await.unwrap();
    let AppendResult::Appended { revision, list } = a else {
        panic!("{a:?}")
    };
    assert_eq!(list, [5, 6]);
    let stale = client
        .append_after(leader, b"l", &ListState::default(), 9, CALL)
        .await
        .unwrap();
    assert_eq!(
        stale,
        AppendResult::Mismatch {
            now: ListState {
                list: vec![5, 6],
                mod_revision: revision
            }
        }
    );
    // Concurrent appends through every member, retrying failed compares:
    // every one lands exactly once.
    let tasks: Vec<_> = (0..9)
        .map(|t| {
            let c = client.clone();
            tokio::spawn(async move { c.append(t % 3, b"l", 100 + t as i64, 20, CALL).await })
        })
        .collect();
    for t in tasks {
        assert!(matches!(
            t.await.unwrap().unwrap(),
            AppendResult::Appended { .. }
        ));
    }
    let l = client
        .read_list(leader, b"l", Consistency::Linearizable, CALL)
        .await
        .unwrap();
    let mut tokens = l.list.clone();
    tokens.sort();
    assert_eq!(tokens, [5, 6, 100, 101, 102, 103, 104, 105, 106, 107, 108]);

    // The workload layer records what the history needs.
    let ops = |kind| OpOptions {
        kind,
        reads: Consistency::Linearizable,
        append_attempts: 1,
        timeout: CALL,
    };
    let out = workload::perform(client, other, "l", &Action::Append(7), &ops(Kind::List)).await;
    assert_eq!(out, Outcome::Ok(Action::Append(7)));
    let Outcome::Ok(Action::Read(Some(Value::List(read)))) =
        workload::perform(client, follower, "l", &Action::Read(None), &ops(Kind::List)).await
    else {
        panic!("a list read failed");
    };
    assert_eq!(read.last(), Some(&7));
    let out = workload::perform(
        client,
        other,
        "r",
        &Action::cas(Some(4), 1),
        &ops(Kind::Register),
    )
    .await;
    let Outcome::Fail {
        error,
        action: Action::Cas(cas),
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!((error.as_str(), cas.actual), ("mismatch", Some(Some(2))));

    // Membership as every member reports it.
    let list = client.member_list(other, CALL).await.unwrap();
    let mut names: Vec<&str> = list.iter().map(|m| m.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["e1", "e2", "e3"]);
    for m in &list {
        let mine = &cluster.local.members()[client.index_of(&m.name).unwrap()];
        assert_eq!(m.client_urls, [mine.client_url()]);
        assert_eq!(m.peer_urls, [mine.peer_url()]);
        assert!(!m.is_learner);
    }
    assert!(list.iter().any(|m| m.id == first.member_id));

    // SIGKILL the leader. Its connection refuses, which is definite.
    cluster.local.kill(leader);
    let refused = within(
        Duration::from_secs(10),
        "a refused connection",
        || async move {
            match client.put(leader, b"r", value::encode_int(3), CALL).await {
                Ok(_) => panic!("a killed member answered"),
                Err(e) if e.label == "connect-failed" => Some(e),
                Err(_) => None,
            }
        },
    )
    .await;
    assert!(refused.is_definite(), "{refused}");
    let (new_leader, next) = within(Duration::from_secs(20), "new leader", || async move {
        survey::find_leader(client, CALL)
            .await
            .filter(|(i, _)| *i != leader)
    })
    .await;
    assert!(next.raft_term > first.raft_term, "{next:?} after {first:?}");
    let survivor = (0..3).find(|&i| i != leader && i != new_leader).unwrap();
    client
        .put(survivor, b"r", value::encode_int(4), CALL)
        .await
        .unwrap();

    // The old leader comes back; all three stores agree at one revision.
    cluster.local.restart(leader).unwrap();
    let check = within(Duration::from_secs(30), "hash agreement", || async move {
        match survey::check_hashes(client, CALL).await {
            HashCheck::Agree { revision, hash } => Some((revision, hash)),
            HashCheck::Mismatch { revision, hashes } => {
                panic!("members disagree at revision {revision}: {hashes:?}")
            }
            HashCheck::Unknown(_) => None,
        }
    })
    .await;
    assert!(check.0 > 1);
    let statuses: Vec<MemberStatus> = survey::statuses(client, CALL)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(
        statuses.iter().all(|s| s.leader == next.member_id),
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| s.raft_applied_index > 0 && !s.is_learner)
    );

    // The logs say the same: two leaders, one per term, the right members.
    let logs: Vec<_> = (0..3)
        .map(|i| {
            logs::read_etcd_log(&cluster.local.log(i), &cluster.local.members()[i].name).unwrap()
        })
        .collect();
    let node_logs: Vec<_> = logs.iter().map(|l| l.log.clone()).collect();
    let election = harness::check::election::check(&node_logs);
    assert_eq!(election.valid, Verdict::Valid);
    assert_eq!(logs[leader].raft_ids, [first.member_id]);
    assert_eq!(logs[new_leader].raft_ids, [next.member_id]);
    assert!(became_leader(&logs[leader].log, first.raft_term));
    assert!(became_leader(&logs[new_leader].log, next.raft_term));

    // Alone, a member campaigns forever and knows no leader. With
    // `hasleader` (our default) etcd refuses an update at once, definite.
    let alone = survivor;
    for i in (0..3).filter(|&i| i != alone) {
        cluster.local.kill(i);
    }
    let no_leader = within(
        Duration::from_secs(20),
        "no-leader refusal",
        || async move {
            match client.put(alone, b"r", value::encode_int(1), CALL).await {
                Err(e) if e.label == "no-leader" => Some(e),
                _ => None,
            }
        },
    )
    .await;
    assert!(no_leader.is_definite());
    assert_eq!(no_leader.message, "etcdserver: no leader");
    // Reads: a linearizable one is refused the same way; a serializable one
    // is served from the member's own state, as etcd documents.
    let e = client
        .get(alone, b"r", Consistency::Linearizable, CALL)
        .await
        .unwrap_err();
    assert_eq!((e.label, e.is_definite()), ("no-leader", true));
    let stale = client
        .get(alone, b"r", Consistency::Serializable, CALL)
        .await
        .unwrap();
    assert_eq!(stale.value.as_deref(), Some(&b"4"[..]));
    let plain = cluster
        .local
        .client(ClientOptions {
            require_leader: false,
            ..ClientOptions::default()
        })
        .unwrap();
    // Without it, Raft takes no proposal while it has no leader
    // (raft/node.go:334) and the put waits out its deadline: unknown.
    let started = Instant::now();
    let waited = plain
        .put(alone, b"r", value::encode_int(1), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(!waited.is_definite(), "{waited}");
    assert!(started.elapsed() >= Duration::from_millis(900));
}

fn became_leader(log: &harness::history::events::NodeLog, term: u64) -> bool {
    use harness::history::events::{EventKind, Role};
    log.events.iter().any(|e| {
        e.kind
            == EventKind::Role {
                role: Role::Leader,
                term,
            }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_membership_add_promote_remove() {
    let Some(bin) = etcd_or_skip() else { return };
    let mut cluster = Cluster::start(bin, 3);
    tokio::time::timeout(Duration::from_secs(120), membership(&mut cluster))
        .await
        .expect("the scenario took over 120 s");
}

async fn membership(cluster: &mut Cluster) {
    let mut client = cluster.local.client(ClientOptions::default()).unwrap();
    let (leader, _) = within(Duration::from_secs(20), "leader", || {
        survey::find_leader(&client, CALL)
    })
    .await;

    // A learner joins: added first, then started with the cluster it joins.
    let new = cluster.local.plan_member().unwrap();
    let addrs = cluster.local.members()[new].clone();
    assert_eq!(addrs.name, "e4");
    // Refused (definitely) until every member has been connected a while.
    let c = &client;
    let peer_url = addrs.peer_url();
    let (added, members) = within(Duration::from_secs(20), "member added", || {
        let peer_url = peer_url.clone();
        async move {
            match c.member_add(leader, vec![peer_url], true, CALL).await {
                Ok(added) => Some(added),
                Err(e) => {
                    assert_eq!((e.label, e.is_definite()), ("unhealthy", true), "{e}");
                    None
                }
            }
        }
    })
    .await;
    assert!(added.is_learner && added.name.is_empty(), "{added:?}");
    assert_eq!(members.len(), 4);
    cluster.local.restart(new).unwrap();
    assert_eq!(
        client.add_member(&addrs.name, &addrs.client_url()).unwrap(),
        new
    );

    // Promotion waits until the learner has caught up; until then etcd
    // refuses it, definitely.
    let c = &client;
    let voters = within(Duration::from_secs(30), "promotion", || async move {
        match c.member_promote(leader, added.id, CALL).await {
            Ok(members) => Some(members),
            Err(e) => {
                assert!(e.is_definite(), "{e}");
                assert_eq!(e.label, "learner-not-ready", "{e}");
                None
            }
        }
    })
    .await;
    assert!(voters.iter().all(|m| !m.is_learner), "{voters:?}");
    let listed = within(
        Duration::from_secs(10),
        "e4 listed as started",
        || async move {
            let list = c.member_list(new, CALL).await.ok()?;
            list.into_iter()
                .find(|m| m.id == added.id && m.name == "e4")
        },
    )
    .await;
    assert_eq!(listed.client_urls, [addrs.client_url()]);
    let status = within(Duration::from_secs(10), "e4's status", || async move {
        c.status(new, CALL).await.ok().filter(|s| s.leader != 0)
    })
    .await;
    assert_eq!(status.member_id, added.id);
    assert!(!status.is_learner);
    client
        .put(new, b"k", value::encode_int(1), CALL)
        .await
        .unwrap();

    // And leaves.
    let after = client.member_remove(leader, added.id, CALL).await.unwrap();
    assert_eq!(after.len(), 3);
    assert!(after.iter().all(|m| m.id != added.id));
    cluster.local.forget(new);
    let e = client
        .member_remove(leader, added.id, CALL)
        .await
        .unwrap_err();
    assert_eq!((e.label, e.is_definite()), ("member-not-found", true));
}
