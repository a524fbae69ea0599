//! `Kv.Stream` against real node processes: every call gets the answer the
//! unary API would give, concurrent calls on one stream each get their own,
//! bad calls are refused one by one without ending the stream, and calls
//! cut off by a dying node end unknown while the next call reconnects.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use node::client::{StreamClient, is_not_leader};
use proto::kv as pb;
use support::{CLUSTER, Cluster};
use tonic::Code;

const T: Duration = Duration::from_secs(3);

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

fn stream(c: &Cluster, i: usize) -> StreamClient {
    StreamClient::new(&c.nodes[i].addr, CLUSTER, Duration::from_millis(500)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_calls_answer_as_the_unary_calls_do() {
    let c = Cluster::start(3, &[]);
    let l = c.leader(Duration::from_secs(10)).await.expect("a leader");
    let s = stream(&c, l);

    // A follower refuses without touching state and names the leader.
    let r = stream(&c, (l + 1) % 3)
        .put("x", b("1"), (5, 1), T)
        .await
        .unwrap();
    assert!(is_not_leader(&r));
    assert_eq!(r.leader_id, c.nodes[l].id);
    assert_eq!(r.leader_addr, c.nodes[l].addr);

    assert_eq!(s.get("x", T).await.unwrap().value, None);
    let put = s.put("x", b("1"), (5, 1), T).await.unwrap();
    assert_eq!(put.status, pb::Status::Ok as i32);
    let r = s.cas("x", Some(b("9")), b("2"), (5, 2), T).await.unwrap();
    assert_eq!(r.status, pb::Status::Mismatch as i32);
    assert_eq!(r.value, Some(b("1")));
    let r = s.cas("x", Some(b("1")), b("2"), (5, 3), T).await.unwrap();
    assert_eq!(r.status, pb::Status::Ok as i32);
    s.append("log", b("a,"), (5, 4), T).await.unwrap();
    let first = s.append("log", b("b,"), (5, 5), T).await.unwrap();
    // A retry, over the unary API this time, is applied once and answered
    // the same way: both paths share the client sessions.
    let again = c.client(l).append("log", b("b,"), (5, 5), T).await.unwrap();
    assert_eq!((again.status, again.index), (first.status, first.index));
    assert_eq!(s.get("log", T).await.unwrap().value, Some(b("a,b,")));

    // Bad calls are refused one by one, with the unary API's codes, and
    // the stream goes on serving.
    let e = s.put("", b("1"), (5, 6), T).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = s.put("k", b("1"), (0, 1), T).await.unwrap_err();
    assert!(e.message().contains("client_id"), "{}", e.message());
    let stranger = pb::kv_call::Op::Get(pb::GetRequest {
        cluster_id: "another-cluster".into(),
        key: "x".into(),
    });
    let e = s.call(stranger, T).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("cluster id"), "{}", e.message());
    assert_eq!(s.get("x", T).await.unwrap().value, Some(b("2")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_on_one_stream_each_get_their_own_answer() {
    let c = Cluster::start(3, &[]);
    let l = c.leader(Duration::from_secs(10)).await.expect("a leader");
    let s = stream(&c, l);
    let mut tasks = Vec::new();
    for i in 0..300u64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("k{i}");
            let w = s.put(&key, b(&format!("v{i}")), (100 + i, 1), T).await;
            let r = s.get(&key, T).await;
            (i, w, r)
        }));
    }
    let mut indexes = Vec::new();
    for t in tasks {
        let (i, w, r) = t.await.unwrap();
        let w = w.unwrap_or_else(|e| panic!("put {i}: {e:?}"));
        assert_eq!(w.status, pb::Status::Ok as i32, "put {i}");
        indexes.push(w.index);
        let r = r.unwrap_or_else(|e| panic!("get {i}: {e:?}"));
        assert_eq!(r.value, Some(b(&format!("v{i}"))), "get {i}");
        assert!(r.index >= w.index, "get {i} read before its own put");
    }
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(
        indexes.len(),
        300,
        "every put has a log position of its own"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_cut_off_by_a_dying_node_end_unknown_and_the_next_call_reconnects() {
    let mut c = Cluster::start(1, &[]);
    c.leader(Duration::from_secs(10)).await.expect("a leader");
    let s = stream(&c, 0);
    s.put("k", b("1"), (1, 1), T).await.unwrap();

    // Calls keep going while the node is killed: each ends either answered
    // or unknown (UNAVAILABLE / DEADLINE_EXCEEDED), never as a definite
    // failure it was not.
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let until = Instant::now() + Duration::from_secs(10);
            let mut seq = 1;
            while Instant::now() < until {
                seq += 1;
                let r = s
                    .put(
                        "k",
                        b(&seq.to_string()),
                        (1, seq),
                        Duration::from_millis(500),
                    )
                    .await;
                let unknown = matches!(&r, Err(e) if matches!(e.code(), Code::Unavailable | Code::DeadlineExceeded));
                outcomes.push((r.is_ok(), unknown));
                if unknown {
                    break;
                }
            }
            outcomes
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.kill(0);
    let outcomes = tokio::time::timeout(Duration::from_secs(20), writer)
        .await
        .expect("the writer finishes")
        .unwrap();
    assert!(
        outcomes.iter().all(|&(ok, unknown)| ok || unknown),
        "{outcomes:?}"
    );
    assert!(outcomes.last().is_some_and(|o| o.1), "the kill was noticed");

    // Same client, restarted node: the next calls open a new stream.
    c.restart(0);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match s.get("k", Duration::from_millis(500)).await {
            Ok(r) if !is_not_leader(&r) => {
                assert!(r.value.is_some());
                break;
            }
            _ => {
                assert!(Instant::now() < deadline, "no answer after the restart");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_calls_are_refused_by_id_and_an_oversized_message_ends_the_stream() {
    let c = Cluster::start(1, &[]);
    c.leader(Duration::from_secs(10)).await.expect("a leader");
    let mut kv = pb::kv_client::KvClient::connect(format!("http://{}", c.nodes[0].addr))
        .await
        .unwrap();
    let get = |id| pb::KvCall {
        id,
        timeout_ms: 1000,
        op: Some(pb::kv_call::Op::Get(pb::GetRequest {
            cluster_id: CLUSTER.into(),
            key: "k".into(),
        })),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut replies = kv
        .stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();

    // A call without an operation is answered by its id; its neighbour is served.
    let empty = pb::KvCall {
        id: 7,
        timeout_ms: 0,
        op: None,
    };
    tx.send(pb::KvCalls {
        calls: vec![empty, get(8)],
    })
    .await
    .unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let msg = tokio::time::timeout(T, replies.message())
            .await
            .expect("replies in time")
            .unwrap()
            .expect("the stream is open");
        got.extend(msg.replies);
    }
    got.sort_by_key(|r| r.id);
    assert_eq!(got[0].id, 7);
    assert_eq!(got[0].code, Code::InvalidArgument as i32);
    assert!(got[0].message.contains("call 7"), "{}", got[0].message);
    assert_eq!((got[1].id, got[1].code), (8, 0));
    assert_eq!(
        got[1].response.as_ref().unwrap().status,
        pb::Status::Ok as i32
    );

    let n = node::transport::kv_stream::MAX_CALLS_PER_MESSAGE + 1;
    tx.send(pb::KvCalls {
        calls: (0..n as u64).map(get).collect(),
    })
    .await
    .unwrap();
    let e = tokio::time::timeout(T, replies.message())
        .await
        .expect("an answer in time")
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains(&format!("{n} calls")),
        "{}",
        e.message()
    );
}
