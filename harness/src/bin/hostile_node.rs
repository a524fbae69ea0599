//! `hostile-node`: a node that misbehaves on purpose, for testing that the
//! harness survives the node it tests (`harness run --node-bin
//! hostile-node --node-arg=--hostile=MODE`). It takes the node's flags
//! (`--id`, `--listen`, `--peer ID=ADDR`; the rest are ignored), keeps no
//! data and runs no Raft. Every node says it leads (term 1) when asked for
//! its status, so a run gets past its set-up; what its `Kv` calls meet is
//! the mode:
//!
//! - `silent`: never answers (the call hangs until the client gives up);
//! - `reset`: resets the connection the call came on;
//! - `not-leader-self`: answers "not leader", naming itself as the leader;
//! - `not-leader-ring`: answers "not leader", naming the next node (n1 → n2
//!   → ... → n1), so redirects go round;
//! - `slow`: answers after `--hostile-delay-ms` (default 2000) from a store
//!   of its own (no replication: reads may well be stale);
//!
//! and two that act on every connection, before any call:
//!
//! - `mute`: accepts connections and never reads or answers them;
//! - `reset-all`: resets every connection as soon as it is accepted.
//!
//! With `--hostile-peers=flood`, whatever the mode, it also opens
//! connections to its peers as fast as it can and never closes them (a
//! node that leaks its peer connections, or reconnects in a tight loop).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use proto::kv as pb;
use proto::kv::admin_server::{Admin, AdminServer};
use proto::kv::kv_server::{Kv, KvServer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Silent,
    Reset,
    NotLeaderSelf,
    NotLeaderRing,
    Slow,
    Mute,
    ResetAll,
}

impl Mode {
    fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "silent" => Mode::Silent,
            "reset" => Mode::Reset,
            "not-leader-self" => Mode::NotLeaderSelf,
            "not-leader-ring" => Mode::NotLeaderRing,
            "slow" => Mode::Slow,
            "mute" => Mode::Mute,
            "reset-all" => Mode::ResetAll,
            _ => return None,
        })
    }
}

/// What the node was told on its command line.
struct Flags {
    id: String,
    listen: SocketAddr,
    /// Every member's id and address, this node included, sorted by id.
    members: Vec<(String, String)>,
    mode: Mode,
    delay: Duration,
    flood_peers: bool,
}

fn parse_flags(args: &[String]) -> Result<Flags, String> {
    let mut id = None;
    let mut listen = None;
    let mut peers = Vec::new();
    let mut mode = None;
    let mut delay = Duration::from_millis(2000);
    let mut flood_peers = false;
    let mut i = 0;
    while i < args.len() {
        // `--flag=value` and `--flag value` alike, as clap takes them.
        let (flag, inline) = match args[i].split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (args[i].clone(), None),
        };
        let takes_value = !matches!(flag.as_str(), "--help");
        let value = match inline {
            Some(v) => Some(v),
            None if takes_value && i + 1 < args.len() => {
                i += 1;
                Some(args[i].clone())
            }
            None => None,
        };
        i += 1;
        let value = value.unwrap_or_default();
        match flag.as_str() {
            "--id" => id = Some(value),
            "--listen" => {
                let addr = if value.contains(':') {
                    value.clone()
                } else {
                    format!("127.0.0.1:{value}")
                };
                listen = Some(addr.parse().map_err(|e| format!("--listen {value}: {e}"))?);
            }
            "--peer" => {
                let (p, a) = value
                    .split_once('=')
                    .ok_or_else(|| format!("--peer {value}: expected ID=HOST:PORT"))?;
                peers.push((p.to_string(), a.to_string()));
            }
            "--hostile" => {
                mode = Some(Mode::parse(&value).ok_or_else(|| format!("--hostile {value}?"))?)
            }
            "--hostile-peers" => match value.as_str() {
                "flood" => flood_peers = true,
                _ => return Err(format!("--hostile-peers {value}? (flood)")),
            },
            "--hostile-delay-ms" => {
                let ms: u64 = value
                    .parse()
                    .map_err(|e| format!("--hostile-delay-ms {value}: {e}"))?;
                delay = Duration::from_millis(ms);
            }
            _ => {} // the real node's other flags
        }
    }
    let id = id.ok_or("--id is required")?;
    let listen: SocketAddr = listen.ok_or("--listen is required")?;
    let mut members = peers;
    members.push((id.clone(), listen.to_string()));
    members.sort();
    Ok(Flags {
        id,
        listen,
        members,
        mode: mode.ok_or("--hostile MODE is required")?,
        delay,
        flood_peers,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flags = match parse_flags(&args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("hostile-node: error: {e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    if let Err(e) = rt.block_on(serve(flags)) {
        eprintln!("hostile-node: error: {e}");
        std::process::exit(1);
    }
}

async fn serve(flags: Flags) -> io::Result<()> {
    let listener = TcpListener::bind(flags.listen).await?;
    println!(
        "hostile-node {}: {:?} on {}",
        flags.id, flags.mode, flags.listen
    );
    if flags.flood_peers {
        for (id, addr) in flags.members.iter().filter(|(id, _)| *id != flags.id) {
            println!("flooding {id} at {addr} with connections");
            tokio::spawn(flood(addr.clone()));
        }
    }
    match flags.mode {
        Mode::Mute => {
            let mut held = Vec::new();
            loop {
                let (s, _) = listener.accept().await?;
                held.push(s);
            }
        }
        Mode::ResetAll => loop {
            let (s, _) = listener.accept().await?;
            let _ = s.set_zero_linger();
            drop(s);
        },
        _ => {}
    }
    let node = Arc::new(Node {
        store: Mutex::new(HashMap::new()),
        flags,
    });
    let incoming = futures_util::stream::unfold(listener, |l| async move {
        let accepted = l.accept().await.map(|(s, _)| Tripped::new(s));
        Some((accepted, l))
    });
    tonic::transport::Server::builder()
        .add_service(KvServer::new(KvService(node.clone())))
        .add_service(AdminServer::new(AdminService(node)))
        .serve_with_incoming(incoming)
        .await
        .map_err(io::Error::other)
}

/// Opens connections to `addr` as fast as it can and keeps them all.
async fn flood(addr: String) {
    let mut held = Vec::new();
    loop {
        match TcpStream::connect(&addr).await {
            Ok(s) => held.push(s),
            // Out of descriptors, or the peer is gone: try again shortly.
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

struct Node {
    flags: Flags,
    store: Mutex<HashMap<String, Bytes>>,
}

/// A connection that a call can reset: once its wire is tripped, the next
/// read or write fails and the socket closes with a reset.
struct Tripped {
    io: TcpStream,
    wire: Wire,
}

/// The switch of one connection, reachable from the calls it carries.
#[derive(Clone, Default)]
struct Wire(Arc<AtomicBool>);

impl Tripped {
    fn new(io: TcpStream) -> Tripped {
        Tripped {
            io,
            wire: Wire::default(),
        }
    }

    fn check(&self) -> Option<io::Error> {
        self.wire.0.load(Ordering::Relaxed).then(|| {
            let _ = self.io.set_zero_linger();
            io::Error::from(io::ErrorKind::ConnectionReset)
        })
    }
}

impl Connected for Tripped {
    type ConnectInfo = Wire;
    fn connect_info(&self) -> Wire {
        self.wire.clone()
    }
}

impl AsyncRead for Tripped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tripped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// What a `Kv` call does to the store when it is answered.
enum Effect {
    Read(String),
    Write(String, Bytes),
}

struct KvService(Arc<Node>);

impl KvService {
    async fn answer<T>(&self, req: &Request<T>, effect: Effect) -> Result<pb::KvResponse, Status> {
        let node = &self.0;
        let flags = &node.flags;
        match flags.mode {
            Mode::Silent | Mode::Mute => std::future::pending().await,
            Mode::Reset | Mode::ResetAll => {
                if let Some(wire) = req.extensions().get::<Wire>() {
                    wire.0.store(true, Ordering::Relaxed);
                }
                Err(Status::unavailable("hostile-node resets this connection"))
            }
            Mode::NotLeaderSelf => Ok(not_leader(&flags.id, &flags.listen.to_string())),
            Mode::NotLeaderRing => {
                let me = flags.members.iter().position(|(id, _)| *id == flags.id);
                let next = &flags.members[(me.unwrap_or(0) + 1) % flags.members.len()];
                Ok(not_leader(&next.0, &next.1))
            }
            Mode::Slow => {
                tokio::time::sleep(flags.delay).await;
                let mut store = node.store.lock().unwrap_or_else(|e| e.into_inner());
                let value = match effect {
                    Effect::Read(key) => store.get(&key).cloned(),
                    Effect::Write(key, value) => {
                        store.insert(key, value);
                        None
                    }
                };
                Ok(pb::KvResponse {
                    status: pb::Status::Ok as i32,
                    value,
                    ..Default::default()
                })
            }
        }
    }
}

fn not_leader(id: &str, addr: &str) -> pb::KvResponse {
    pb::KvResponse {
        status: pb::Status::NotLeader as i32,
        leader_id: id.to_string(),
        leader_addr: addr.to_string(),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn get(&self, r: Request<pb::GetRequest>) -> Result<Response<pb::KvResponse>, Status> {
        let effect = Effect::Read(r.get_ref().key.clone());
        self.answer(&r, effect).await.map(Response::new)
    }
    async fn put(&self, r: Request<pb::PutRequest>) -> Result<Response<pb::KvResponse>, Status> {
        let m = r.get_ref();
        let effect = Effect::Write(m.key.clone(), m.value.clone());
        self.answer(&r, effect).await.map(Response::new)
    }
    async fn cas(&self, r: Request<pb::CasRequest>) -> Result<Response<pb::KvResponse>, Status> {
        let m = r.get_ref();
        let effect = Effect::Write(m.key.clone(), m.new.clone());
        self.answer(&r, effect).await.map(Response::new)
    }
    async fn append(
        &self,
        r: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::KvResponse>, Status> {
        let m = r.get_ref();
        let effect = Effect::Write(m.key.clone(), m.suffix.clone());
        self.answer(&r, effect).await.map(Response::new)
    }

    type StreamStream = futures_util::stream::Empty<Result<pb::KvReplies, Status>>;
    async fn stream(
        &self,
        _: Request<tonic::Streaming<pb::KvCalls>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        Err(Status::unimplemented(
            "hostile-node serves unary calls only",
        ))
    }
}

struct AdminService(Arc<Node>);

fn no_membership<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("hostile-node has no membership"))
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(
        &self,
        r: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let flags = &self.0.flags;
        let ids: Vec<String> = flags.members.iter().map(|(id, _)| id.clone()).collect();
        Ok(Response::new(pb::StatusResponse {
            id: flags.id.clone(),
            role: "leader".into(),
            term: 1,
            leader_id: flags.id.clone(),
            cluster_id: r.get_ref().cluster_id.clone(),
            members: ids.clone(),
            voters: ids,
            standing: "founder".into(),
            ..Default::default()
        }))
    }
    async fn members(
        &self,
        _: Request<pb::MembersRequest>,
    ) -> Result<Response<pb::MemberResponse>, Status> {
        no_membership()
    }
    async fn add_member(
        &self,
        _: Request<pb::AddMemberRequest>,
    ) -> Result<Response<pb::MemberResponse>, Status> {
        no_membership()
    }
    async fn remove_member(
        &self,
        _: Request<pb::MemberRequest>,
    ) -> Result<Response<pb::MemberResponse>, Status> {
        no_membership()
    }
    async fn promote_member(
        &self,
        _: Request<pb::MemberRequest>,
    ) -> Result<Response<pb::MemberResponse>, Status> {
        no_membership()
    }
    async fn readd_member(
        &self,
        _: Request<pb::MemberRequest>,
    ) -> Result<Response<pb::MemberResponse>, Status> {
        no_membership()
    }
    async fn transfer_leader(
        &self,
        _: Request<pb::MemberRequest>,
    ) -> Result<Response<pb::MemberResponse>, Status> {
        no_membership()
    }
    async fn local_dump(
        &self,
        _: Request<pb::LocalDumpRequest>,
    ) -> Result<Response<pb::LocalDumpResponse>, Status> {
        Err(Status::unimplemented("hostile-node keeps no state to dump"))
    }
}
