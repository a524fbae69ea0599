//! `Kv.Stream` against real node processes: every call gets the answer the
//! unary API would give, concurrent calls on one stream each get their own,
//! bad calls are refused one by one without ending the stream, and calls
//! cut off by a dying node end unknown while the next call reconnects.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use node::client::{ErrorKind, Reply, Request, Session, StreamClient};
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
        .call(Session::new(5, 1).put("x", b("1")), T)
        .await;
    assert_eq!(
        r,
        Ok(Reply::NotLeader {
            leader_id: Some(c.nodes[l].id.clone()),
            leader_addr: Some(c.nodes[l].addr.clone()),
        })
    );

    let value = |r: Result<Reply, _>| r.unwrap().value().cloned();
    assert_eq!(value(s.call(Request::get("x"), T).await), None);
    let put = s.call(Session::new(5, 1).put("x", b("1")), T).await;
    assert!(matches!(put, Ok(Reply::Done { .. })), "{put:?}");
    let r = s
        .call(Session::new(5, 2).cas("x", Some(b("9")), b("2")), T)
        .await;
    assert!(
        matches!(&r, Ok(Reply::Mismatch { current: Some(v), .. }) if *v == b("1")),
        "{r:?}"
    );
    let r = s
        .call(Session::new(5, 3).cas("x", Some(b("1")), b("2")), T)
        .await;
    assert!(matches!(r, Ok(Reply::Done { .. })), "{r:?}");
    s.call(Session::new(5, 4).append("log", b("a,")), T)
        .await
        .unwrap();
    let first = s.call(Session::new(5, 5).append("log", b("b,")), T).await;
    // A retry, over the unary API this time, is applied once and answered
    // the same way: both paths share the client sessions.
    let again = c
        .client(l)
        .call(Session::new(5, 5).append("log", b("b,")), T)
        .await;
    assert_eq!(again, first);
    assert_eq!(value(s.call(Request::get("log"), T).await), Some(b("a,b,")));
    // The same (client, seq) with another command is refused by its id.
    let e = s
        .call(Session::new(5, 5).append("log", b("c,")), T)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e:?}");
    assert!(e.message.contains("another command"), "{e}");
    assert_eq!(value(s.call(Request::get("log"), T).await), Some(b("a,b,")));

    // Bad calls are refused one by one, with the unary API's codes, and
    // the stream goes on serving.
    let e = s
        .call(Session::new(5, 6).put("", b("1")), T)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e:?}");
    let e = s
        .call(Session::new(0, 1).put("k", b("1")), T)
        .await
        .unwrap_err();
    assert!(e.message.contains("client_id"), "{e}");
    let stranger = StreamClient::new(&c.nodes[l].addr, "another-cluster", T).unwrap();
    let e = stranger.call(Request::get("x"), T).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition);
    assert!(e.message.contains("cluster id"), "{e}");
    assert_eq!(value(s.call(Request::get("x"), T).await), Some(b("2")));
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
            let w = s
                .call(Session::new(100 + i, 1).put(&key, b(&format!("v{i}"))), T)
                .await;
            let r = s.call(Request::get(&key), T).await;
            (i, w, r)
        }));
    }
    let mut indexes = Vec::new();
    for t in tasks {
        let (i, w, r) = t.await.unwrap();
        let Ok(Reply::Done { index: written, .. }) = w else {
            panic!("put {i}: {w:?}");
        };
        indexes.push(written);
        let Ok(Reply::Done { value, index: read }) = r else {
            panic!("get {i}: {r:?}");
        };
        assert_eq!(value, Some(b(&format!("v{i}"))), "get {i}");
        assert!(read >= written, "get {i} read before its own put");
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
    s.call(Session::new(1, 1).put("k", b("1")), T)
        .await
        .unwrap();

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
                let put = Session::new(1, seq).put("k", b(&seq.to_string()));
                let r = s.call(put, Duration::from_millis(500)).await;
                let unknown = matches!(&r, Err(e) if matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Timeout));
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
        match s.call(Request::get("k"), Duration::from_millis(500)).await {
            Ok(r) if !r.is_not_leader() => {
                assert!(r.value().is_some());
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
