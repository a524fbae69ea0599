//! Scenarios for the proxies ([`Proxies`]) over real loopback sockets: two "nodes" `a` and
//! `b` that are echo servers, so a byte sent through link (a → b) comes back
//! only if the link forwards both ways. Every wait is bounded.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;

use super::*;

/// How long a cut may take to close a connection. The requirement is a few
/// milliseconds; the margin is for a loaded 2-core CI machine.
const PROMPT: Duration = Duration::from_millis(300);
/// How long a blackholed connection must stay silent.
const SILENCE: Duration = Duration::from_millis(300);
/// Bound on anything that should simply work.
const WORKS: Duration = Duration::from_secs(5);

/// An echo server; aborting its task closes the listener and every
/// connection, as a SIGKILL would.
struct Echo {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Echo {
    async fn start() -> Echo {
        Echo::on(TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    /// Restarts on the same port (tokio sets SO_REUSEADDR).
    async fn restart(addr: SocketAddr) -> Echo {
        Echo::on(TcpListener::bind(addr).await.unwrap())
    }

    fn on(listener: TcpListener) -> Echo {
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut s, _)) = listener.accept().await {
                s.set_nodelay(true).unwrap();
                connections.spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        Echo { addr, task }
    }

    /// Kills the server and waits until its port is closed.
    async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn two_nodes() -> (Echo, Echo, Proxies) {
    let (a, b) = (Echo::start().await, Echo::start().await);
    let net = Proxies::start(&[("a".into(), a.addr), ("b".into(), b.addr)])
        .await
        .unwrap();
    (a, b, net)
}

fn link(from: &str, to: &str) -> Link {
    (from.to_string(), to.to_string())
}

fn both_ways(x: &str, y: &str) -> HashSet<Link> {
    HashSet::from([link(x, y), link(y, x)])
}

async fn connect(net: &Proxies, from: &str, to: &str) -> TcpStream {
    let addr = net.proxy_addr(from, to).unwrap();
    let s = timeout(WORKS, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Sends `msg` and expects it back within `wait`.
async fn echoes(s: &mut TcpStream, msg: &[u8], wait: Duration) -> bool {
    if s.write_all(msg).await.is_err() {
        return false;
    }
    let mut back = vec![0; msg.len()];
    matches!(timeout(wait, s.read_exact(&mut back)).await, Ok(Ok(_)) if back == msg)
}

/// True when the connection reads EOF or fails within `wait`.
async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0; 64];
    loop {
        match timeout(wait, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue, // a late echo; keep reading
        }
    }
}

/// A link that forwards, probed with a fresh connection.
async fn link_works(net: &Proxies, from: &str, to: &str) -> bool {
    let mut s = connect(net, from, to).await;
    echoes(&mut s, b"probe", WORKS).await
}

#[tokio::test]
async fn bytes_flow_both_ways_through_the_proxy() {
    let (_a, _b, net) = two_nodes().await;
    let mut s = connect(&net, "a", "b").await;
    assert!(echoes(&mut s, b"hello", WORKS).await);
    assert!(
        echoes(&mut s, &[7; 100_000], WORKS).await,
        "a large write crosses in pieces"
    );
    let stats = net.link_stats("a", "b").unwrap();
    assert_eq!(stats.bytes_forward, 100_005);
    assert_eq!(stats.bytes_backward, 100_005);
    assert_eq!(stats.forwarded, 1);
    assert_eq!(net.link_stats("b", "a").unwrap(), LinkStats::default());
}

#[tokio::test]
async fn peers_of_gives_every_other_node_its_proxy() {
    let (x, y, z) = (
        Echo::start().await,
        Echo::start().await,
        Echo::start().await,
    );
    let targets = [
        ("n1".into(), x.addr),
        ("n2".into(), y.addr),
        ("n3".into(), z.addr),
    ];
    let net = Proxies::start(&targets).await.unwrap();
    assert_eq!(net.links().count(), 6);
    let peers = net.peers_of("n2").unwrap();
    let ids: Vec<&str> = peers.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["n1", "n3"]);
    assert_eq!(peers[1].1, net.proxy_addr("n2", "n3").unwrap());
    assert!(matches!(net.peers_of("n9"), Err(NetError::UnknownNode(_))));
}

#[tokio::test]
async fn small_messages_cross_quickly_one_after_another() {
    // Raft heartbeats and acks are small and sequential: with Nagle's
    // algorithm on either socket, each round trip would stall for ~40 ms.
    let (_a, _b, net) = two_nodes().await;
    let mut s = connect(&net, "a", "b").await;
    let start = Instant::now();
    for _ in 0..2000 {
        assert!(echoes(&mut s, &[1; 64], WORKS).await);
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(4),
        "2000 round trips took {elapsed:?}"
    );
}

#[tokio::test]
async fn refusing_cut_closes_open_connections_and_refuses_new_ones() {
    let (_a, _b, net) = two_nodes().await;
    let mut ab = connect(&net, "a", "b").await;
    let mut ba = connect(&net, "b", "a").await;
    assert!(echoes(&mut ab, b"x", WORKS).await && echoes(&mut ba, b"x", WORKS).await);

    net.cut(&both_ways("a", "b"), CutMode::Refuse).unwrap();
    assert!(
        closed_within(&mut ab, PROMPT).await,
        "a -> b outlived the cut"
    );
    assert!(
        closed_within(&mut ba, PROMPT).await,
        "b -> a outlived the cut"
    );
    let mut fresh = connect(&net, "a", "b").await;
    assert!(
        closed_within(&mut fresh, PROMPT).await,
        "a refused connection stays open"
    );
    assert_eq!(net.cut_links(), both_ways("a", "b").into_iter().collect());
    let stats = net.link_stats("a", "b").unwrap();
    assert_eq!((stats.severed, stats.refused), (1, 1));
}

#[tokio::test]
async fn blackhole_cut_swallows_new_connections_until_healed() {
    let (_a, _b, net) = two_nodes().await;
    let mut open = connect(&net, "a", "b").await;
    assert!(echoes(&mut open, b"x", WORKS).await);

    net.cut(&both_ways("a", "b"), CutMode::Blackhole).unwrap();
    assert!(
        closed_within(&mut open, PROMPT).await,
        "a -> b outlived the cut"
    );
    // Connecting works, as to a host that is up but never answers.
    let mut held = connect(&net, "a", "b").await;
    assert!(!echoes(&mut held, b"anyone?", SILENCE).await);
    let mut other_way = connect(&net, "b", "a").await;
    assert!(!echoes(&mut other_way, b"anyone?", SILENCE).await);

    net.heal();
    assert!(net.cut_links().is_empty());
    // The held connections are closed so their clients reconnect...
    assert!(
        closed_within(&mut held, PROMPT).await,
        "blackholed connection outlived the heal"
    );
    assert!(closed_within(&mut other_way, PROMPT).await);
    // ...and new connections get through.
    assert!(link_works(&net, "a", "b").await);
    assert!(link_works(&net, "b", "a").await);
    let stats = net.link_stats("a", "b").unwrap();
    assert_eq!(stats.blackholed, 1);
    assert_eq!(stats.bytes_discarded, 7);
}

#[tokio::test]
async fn heal_after_a_refusing_cut_restores_new_connections() {
    let (_a, _b, net) = two_nodes().await;
    net.cut(&both_ways("a", "b"), CutMode::Refuse).unwrap();
    net.heal();
    assert!(link_works(&net, "a", "b").await);
    assert!(link_works(&net, "b", "a").await);
}

#[tokio::test]
async fn cutting_a_to_b_leaves_b_to_a_alone() {
    let (_a, _b, net) = two_nodes().await;
    let mut ab = connect(&net, "a", "b").await;
    let mut ba = connect(&net, "b", "a").await;
    assert!(echoes(&mut ab, b"x", WORKS).await && echoes(&mut ba, b"x", WORKS).await);

    net.cut(&HashSet::from([link("a", "b")]), CutMode::Blackhole)
        .unwrap();
    assert!(closed_within(&mut ab, PROMPT).await);
    assert!(
        echoes(&mut ba, b"still here", WORKS).await,
        "the open connection b -> a survives"
    );
    assert!(
        link_works(&net, "b", "a").await,
        "new connections b -> a get through"
    );
    assert_eq!(net.link_stats("b", "a").unwrap().severed, 0);
}

#[tokio::test]
async fn replacing_the_cut_set_keeps_connections_on_unchanged_links() {
    let (x, y, z) = (
        Echo::start().await,
        Echo::start().await,
        Echo::start().await,
    );
    let targets = [
        ("a".into(), x.addr),
        ("b".into(), y.addr),
        ("c".into(), z.addr),
    ];
    let net = Proxies::start(&targets).await.unwrap();
    let mut ac = connect(&net, "a", "c").await;
    assert!(echoes(&mut ac, b"x", WORKS).await);

    net.cut(&both_ways("a", "b"), CutMode::Blackhole).unwrap();
    net.cut(&both_ways("b", "c"), CutMode::Blackhole).unwrap();
    assert!(echoes(&mut ac, b"y", WORKS).await, "a -> c was never cut");
    assert!(
        link_works(&net, "a", "b").await,
        "a -> b is no longer in the cut set"
    );
    assert_eq!(net.cut_links(), both_ways("b", "c").into_iter().collect());
}

#[tokio::test]
async fn a_cut_and_heal_in_quick_succession_still_severs_connections() {
    // The watch channel keeps only the latest value: a connection task that
    // wakes after both sees "open" again. The generation tells it that a cut
    // happened in between, so the connection closes as a cut requires.
    let (_a, _b, net) = two_nodes().await;
    let mut open = connect(&net, "a", "b").await;
    assert!(echoes(&mut open, b"x", WORKS).await);
    net.cut(&both_ways("a", "b"), CutMode::Blackhole).unwrap();
    net.heal();
    assert!(closed_within(&mut open, PROMPT).await);
    assert!(link_works(&net, "a", "b").await);
}

#[tokio::test]
async fn a_target_restarted_on_the_same_port_is_reachable_again() {
    let (_a, b, net) = two_nodes().await;
    let b_addr = b.addr;
    let mut open = connect(&net, "a", "b").await;
    assert!(echoes(&mut open, b"x", WORKS).await);

    b.kill().await;
    assert!(
        closed_within(&mut open, PROMPT).await,
        "the target's death reaches the client"
    );
    let mut while_down = connect(&net, "a", "b").await;
    assert!(
        closed_within(&mut while_down, PROMPT).await,
        "a dead target closes new connections"
    );
    assert_eq!(net.link_stats("a", "b").unwrap().target_unreachable, 1);

    let _b = Echo::restart(b_addr).await;
    assert!(link_works(&net, "a", "b").await);
}

#[tokio::test]
async fn unknown_links_are_refused_and_change_nothing() {
    let (_a, _b, net) = two_nodes().await;
    let bad = HashSet::from([link("a", "b"), link("a", "z")]);
    assert!(matches!(
        net.cut(&bad, CutMode::Refuse),
        Err(NetError::UnknownLink { to, .. }) if to == "z"
    ));
    let self_link = HashSet::from([link("a", "a")]);
    assert!(net.cut(&self_link, CutMode::Refuse).is_err());
    assert!(net.cut_links().is_empty());
    assert!(net.proxy_addr("a", "a").is_err());
}

#[tokio::test]
async fn duplicate_node_ids_are_rejected() {
    let a = Echo::start().await;
    let targets = [("a".into(), a.addr), ("a".into(), a.addr)];
    assert!(
        matches!(Proxies::start(&targets).await, Err(NetError::DuplicateNode(id)) if id == "a")
    );
}

/// Connecting to `addr` is refused within the bound (the listener is gone).
async fn refused_soon(addr: SocketAddr) -> bool {
    let deadline = Instant::now() + WORKS;
    while Instant::now() < deadline {
        match TcpStream::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    false
}

#[tokio::test]
async fn dropping_the_net_stops_every_listener_and_connection() {
    let (_a, _b, net) = two_nodes().await;
    let addrs: Vec<SocketAddr> = net
        .links()
        .map(|l| net.proxy_addr(&l.0, &l.1).unwrap())
        .collect();
    let mut open = connect(&net, "a", "b").await;
    assert!(echoes(&mut open, b"x", WORKS).await);
    net.cut(&HashSet::from([link("b", "a")]), CutMode::Blackhole)
        .unwrap();
    let mut held = connect(&net, "b", "a").await;

    drop(net);
    assert!(closed_within(&mut open, WORKS).await);
    assert!(closed_within(&mut held, WORKS).await);
    for addr in addrs {
        assert!(refused_soon(addr).await, "proxy {addr} still listens");
    }
}

#[tokio::test]
async fn shutdown_returns_once_listeners_are_closed() {
    let (_a, _b, net) = two_nodes().await;
    let addr = net.proxy_addr("a", "b").unwrap();
    let mut open = connect(&net, "a", "b").await;
    timeout(WORKS, net.shutdown()).await.unwrap();
    let err = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(closed_within(&mut open, PROMPT).await);
}

#[tokio::test]
async fn a_slow_link_delivers_late_and_loses_what_is_in_flight_when_cut() {
    let (_a, _b, net) = two_nodes().await;
    let delay = Duration::from_millis(200);
    net.shape(&BTreeMap::from([(link("a", "b"), LinkState::Delay(delay))]))
        .unwrap();
    let mut s = connect(&net, "a", "b").await;
    let sent = Instant::now();
    assert!(echoes(&mut s, b"slow", WORKS).await);
    let took = sent.elapsed();
    assert!(
        took >= delay,
        "echoed after {took:?}, before the {delay:?} delay"
    );
    // The opposite direction is a link of its own and stays fast.
    let mut back = connect(&net, "b", "a").await;
    assert!(echoes(&mut back, b"fast", delay / 2).await);

    // Bytes still held back when the link is cut never arrive.
    s.write_all(b"doomed").await.unwrap();
    net.cut([&link("a", "b")], CutMode::Blackhole).unwrap();
    assert!(closed_within(&mut s, PROMPT).await);
    assert_eq!(net.link_stats("a", "b").unwrap().bytes_forward, 4);
    assert_eq!(net.cut_links(), BTreeSet::from([link("a", "b")]));
}

#[tokio::test]
async fn a_link_holds_a_bounded_number_of_connections_and_closes_the_oldest() {
    let (_a, _b, net) = two_nodes().await;
    let many = 3 * proxy::MAX_CONNECTIONS;
    let mut held = Vec::new();
    for i in 0..many {
        let mut s = connect(&net, "a", "b").await;
        // Each is forwarding before the next arrives: the order is known.
        assert!(echoes(&mut s, b"x", WORKS).await, "connection {i}");
        held.push(s);
    }
    let (old, new) = held.split_at_mut(many - proxy::MAX_CONNECTIONS);
    for (i, s) in old.iter_mut().enumerate() {
        assert!(closed_within(s, WORKS).await, "connection {i} still open");
    }
    for (i, s) in new.iter_mut().enumerate() {
        assert!(echoes(s, b"y", WORKS).await, "recent connection {i} closed");
    }
    let evicted = net.link_stats("a", "b").unwrap().evicted;
    assert_eq!(evicted, (many - proxy::MAX_CONNECTIONS) as u64);
}
