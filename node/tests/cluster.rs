//! Three real node processes on loopback: acknowledged writes survive the
//! leader's SIGKILL, a restarted node catches up, and a whole-cluster crash
//! loses nothing that was acknowledged.

mod support;

use std::time::{Duration, Instant};

use node::client::{CallError, ErrorKind, NodeClient, Reply, Request, Session};
use support::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_the_leader_being_killed() {
    let mut c = Cluster::start(3, &[]);
    let old = c
        .leader(Duration::from_secs(10))
        .await
        .expect("a leader within 10 s");
    let mut acked = Vec::new();
    for i in 0..40 {
        let (k, v) = (format!("k{}", i % 10), format!("v{i}"));
        assert!(
            c.put(&k, &v, (1, i + 1), Duration::from_secs(10)).await,
            "write {i}"
        );
        acked.push((k, v));
    }

    let killed_at = Instant::now();
    c.kill(old);
    let new = c
        .leader(Duration::from_secs(10))
        .await
        .expect("a new leader within 10 s");
    assert_ne!(new, old);
    eprintln!("new leader after {:?}", killed_at.elapsed());

    // The last acknowledged value of every key is still there.
    for (k, v) in acked.iter().rev().take(10) {
        assert_eq!(
            c.get(k, Duration::from_secs(10)).await,
            Some(Some(v.clone())),
            "key {k}"
        );
    }
    assert!(
        c.put("after", "kill", (2, 1), Duration::from_secs(10))
            .await
    );

    // The killed node comes back on the same data dir and catches up.
    c.restart(old);
    let target = c
        .client(new)
        .status(Duration::from_secs(1))
        .await
        .unwrap()
        .commit_index;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(s) = c.client(old).status(Duration::from_millis(500)).await
            && s.last_applied >= target
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restarted node did not catch up to {target}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_cluster_crash_loses_nothing_acknowledged() {
    let mut c = Cluster::start(3, &[]);
    c.leader(Duration::from_secs(10)).await.expect("a leader");
    for i in 0..30u64 {
        assert!(
            c.put(
                &format!("key{i}"),
                &format!("{i}"),
                (7, i + 1),
                Duration::from_secs(10)
            )
            .await
        );
    }
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.restart(i);
    }
    c.leader(Duration::from_secs(10))
        .await
        .expect("a leader after restart");
    for i in 0..30u64 {
        assert_eq!(
            c.get(&format!("key{i}"), Duration::from_secs(10)).await,
            Some(Some(format!("{i}"))),
            "key{i} lost in the crash"
        );
    }
    // Events show each node recovering its term and log. A leader needs
    // two of the three: the third may still be starting, so wait for it.
    let starts = |ev: &str| {
        ev.lines()
            .filter(|l| l.contains(r#""event":"start""#))
            .count()
    };
    for i in 0..3 {
        let path = c.nodes[i].dir.join("events.jsonl");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut ev = std::fs::read_to_string(&path).unwrap();
        while starts(&ev) < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            ev = std::fs::read_to_string(&path).unwrap();
        }
        assert_eq!(starts(&ev), 2, "{ev}");
        assert!(ev.contains(r#""event":"apply""#));
    }
    // Votes are on record, and a restart recovers at least the term (and
    // the very vote) of the last vote the node gave before it.
    let mut votes_for_leaders = 0;
    let logs: Vec<Vec<serde_json::Value>> = (0..3)
        .map(|i| {
            let text = std::fs::read_to_string(c.nodes[i].dir.join("events.jsonl")).unwrap();
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        })
        .collect();
    let leaders: Vec<(u64, String)> = logs
        .iter()
        .flatten()
        .filter(|e| e["event"] == "role" && e["role"] == "leader")
        .map(|e| {
            (
                e["term"].as_u64().unwrap(),
                e["node"].as_str().unwrap().into(),
            )
        })
        .collect();
    for log in &logs {
        let mut last_vote: Option<(u64, String)> = None;
        for e in log {
            if e["event"] == "vote" {
                let v = (
                    e["term"].as_u64().unwrap(),
                    e["candidate"].as_str().unwrap().to_string(),
                );
                votes_for_leaders += usize::from(leaders.contains(&v));
                last_vote = Some(v);
            }
            if e["event"] == "start"
                && let Some((term, candidate)) = &last_vote
            {
                let recovered = e["term"].as_u64().unwrap();
                assert!(
                    recovered > *term || (recovered == *term && e["vote"] == candidate.as_str()),
                    "a vote for {candidate} in term {term} was lost: {e}"
                );
            }
        }
    }
    assert!(
        votes_for_leaders >= 2,
        "one vote per election at least: {logs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_api_and_not_leader_redirects() {
    let c = Cluster::start(3, &[]);
    let l = c.leader(Duration::from_secs(10)).await.expect("a leader");
    let f = (l + 1) % 3;
    let leader = c.client(l);
    let t = Duration::from_secs(2);
    let b = |s: &str| bytes::Bytes::from(s.to_string());
    let call = |client: &NodeClient, request| {
        let client = client.clone();
        async move { client.call(request, t).await }
    };
    // The leader knows it leads before its first heartbeat reaches f.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c.client(f).status(t).await.map(|s| s.leader_id).ok() != Some(c.nodes[l].id.clone()) {
        assert!(
            std::time::Instant::now() < deadline,
            "f never heard of the leader"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A follower refuses without touching state, and names the leader.
    let r = call(&c.client(f), Session::new(5, 1).put("x", b("1"))).await;
    let named = Reply::NotLeader {
        leader_id: Some(c.nodes[l].id.clone()),
        leader_addr: Some(c.nodes[l].addr.clone()),
    };
    assert_eq!(r, Ok(named.clone()));
    let r = call(&c.client(f), Request::get("x")).await;
    assert_eq!(r, Ok(named));

    let value = |r: Result<Reply, CallError>| r.unwrap().value().cloned();
    assert_eq!(value(call(&leader, Request::get("x")).await), None);
    call(&leader, Session::new(5, 1).put("x", b("1")))
        .await
        .unwrap();
    // Cas: mismatch reports the current value; a match swaps.
    let r = call(&leader, Session::new(5, 2).cas("x", Some(b("9")), b("2"))).await;
    assert!(
        matches!(&r, Ok(Reply::Mismatch { current: Some(v), .. }) if *v == b("1")),
        "{r:?}"
    );
    let r = call(&leader, Session::new(5, 3).cas("x", Some(b("1")), b("2"))).await;
    assert!(matches!(r, Ok(Reply::Done { .. })), "{r:?}");
    let r = call(&leader, Session::new(5, 4).cas("new", None, b("a"))).await;
    assert!(matches!(r, Ok(Reply::Done { .. })), "{r:?}");
    call(&leader, Session::new(5, 5).append("log", b("a,")))
        .await
        .unwrap();
    let first = call(&leader, Session::new(5, 6).append("log", b("b,"))).await;
    // A retried request is applied once and answered the same way.
    let again = call(&leader, Session::new(5, 6).append("log", b("b,"))).await;
    assert!(matches!(again, Ok(Reply::Done { .. })), "{again:?}");
    assert_eq!(again, first);
    assert_eq!(
        value(call(&leader, Request::get("log")).await),
        Some(b("a,b,"))
    );
    // The same (client, seq) with another command is refused, not taken
    // for a retry, and changes nothing.
    let e = call(&leader, Session::new(5, 6).append("log", b("c,")))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e:?}");
    assert!(e.message.contains("another command"), "{e}");
    let e = call(&leader, Session::new(5, 6).put("x", b("9")))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e:?}");
    assert_eq!(
        value(call(&leader, Request::get("log")).await),
        Some(b("a,b,"))
    );
    assert_eq!(value(call(&leader, Request::get("x")).await), Some(b("2")));

    // Wrong cluster id and bad requests are refused with a reason.
    let stranger = NodeClient::new(&c.nodes[l].addr, "other", t).unwrap();
    let e = call(&stranger, Request::get("x")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition);
    assert!(e.message.contains("cluster id"), "{e}");
    let e = call(&leader, Session::new(5, 7).put("", b("1")))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    let e = call(&leader, Session::new(0, 1).put("k", b("1")))
        .await
        .unwrap_err();
    assert!(e.message.contains("client_id"), "{e}");

    let s = leader.status(t).await.unwrap();
    assert_eq!(s.role, "leader");
    assert_eq!(s.members.len(), 3);
    assert!(s.commit_index >= 6 && s.last_applied >= 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_above_the_limit_gets_a_clear_refusal_whatever_its_size() {
    let c = Cluster::start(1, &[]);
    let l = c.leader(Duration::from_secs(10)).await.expect("a leader");
    let leader = c.client(l);
    for size in [100 << 20, (1 << 20) + 1, 10 << 20] {
        let value = bytes::Bytes::from(vec![b'v'; size]);
        let r = leader
            .call(
                Session::new(9, 1).put("big", value),
                Duration::from_secs(20),
            )
            .await;
        let e = r.expect_err("an oversized value is refused");
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{size} bytes: {e:?}");
        assert!(e.message.contains("limit"), "{size} bytes: {e}");
    }
    // And the node goes on serving.
    let r = leader
        .call(Session::new(9, 2).put("small", "1"), Duration::from_secs(5))
        .await;
    assert!(matches!(r, Ok(Reply::Done { .. })), "{r:?}");
}
