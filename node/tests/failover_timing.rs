//! A measurement, not a test: how long after SIGKILL of the leader a new
//! leader is elected and the next write is acknowledged. Prints the numbers.
//!
//!     cargo test --release -p node --test failover_timing -- --ignored --nocapture
//!
//! Set FAILOVER_ROUNDS (default 20) and pass extra node flags in
//! FAILOVER_NODE_ARGS (e.g. "--election-timeout-ms 150").

mod support;

use std::time::{Duration, Instant};

use node::client::{Reply, Session};
use support::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run by hand"]
async fn failover_time_after_leader_kill() {
    let rounds: usize = std::env::var("FAILOVER_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let extra = std::env::var("FAILOVER_NODE_ARGS").unwrap_or_default();
    let extra: Vec<&str> = extra.split_whitespace().collect();
    let mut c = Cluster::start(3, &extra);
    let mut elect = Vec::new();
    let mut write = Vec::new();
    for round in 0..rounds {
        let old = c.leader(Duration::from_secs(10)).await.expect("leader");
        assert!(
            c.put(
                "warm",
                "x",
                (round as u64 + 100, 1),
                Duration::from_secs(10)
            )
            .await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t0 = Instant::now();
        c.kill(old);
        // Poll every survivor for leadership and for an acknowledged write.
        let mut elected = None;
        let mut seq = 0;
        'outer: loop {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "no failover in round {round}"
            );
            for i in 0..3 {
                if i == old {
                    continue;
                }
                seq += 1;
                let probe = Session::new(round as u64 + 1000, seq).put("probe", "v");
                match c.client(i).call(probe, Duration::from_millis(100)).await {
                    Ok(r) if !r.is_not_leader() => {
                        write.push(t0.elapsed());
                        elect.push(elected.unwrap_or(t0.elapsed()));
                        break 'outer;
                    }
                    Ok(Reply::NotLeader {
                        leader_id: Some(l), ..
                    }) if l != c.nodes[old].id && elected.is_none() => elected = Some(t0.elapsed()),
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        c.restart(old);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let stats = |v: &mut Vec<Duration>| {
        v.sort();
        (v[v.len() / 2], v[(v.len() * 9) / 10], v[v.len() - 1])
    };
    let (m, p90, max) = stats(&mut elect);
    println!(
        "new leader named by a survivor after kill: median {m:?}, p90 {p90:?}, max {max:?} ({rounds} rounds)"
    );
    let (m, p90, max) = stats(&mut write);
    println!(
        "first acknowledged write after kill:   median {m:?}, p90 {p90:?}, max {max:?} ({rounds} rounds)"
    );
}
