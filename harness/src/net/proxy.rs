//! One proxy: a listener on a free loopback port whose accepted connections
//! are forwarded to one target address, blackholed or refused, as the link's
//! [`Policy`] says.
//!
//! - [`Proxy::bind`]: binds and spawns the accept loop.
//! - `accept_loop`: owns the listener and, in a `JoinSet`, every connection
//!   task, so ending the loop (on shutdown or abort) ends them all.
//! - `serve`: one inbound connection for as long as the policy it was born
//!   under lasts.
//!
//! The proxy connects to the target anew for each inbound connection, so a
//! node killed and restarted on the same port is reachable again as soon as
//! its peers reconnect; while it is down, inbound connections are closed,
//! which is what a client would see without a proxy.
//!
//! A link holds at most [`MAX_CONNECTIONS`] connections: a node that leaks
//! its peer connections, or opens them in a loop towards a peer that never
//! closes them (paused, blackholed), would otherwise make the harness hold
//! two descriptors for each, for every link at once, until the harness
//! (not the node) runs out. Past the bound the oldest is closed (and past
//! twice the bound, while closed ones are still going, the newest).

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle, JoinSet};

use super::link::{Counters, CutMode, LinkState, Policy};

/// Per-direction copy buffer. Raft messages are small; 16 KiB carries a
/// batch of entries or a snapshot chunk in a few reads.
const BUFFER: usize = 16 * 1024;

/// How long to wait for the target to accept. A stopped (SIGSTOP) process
/// still completes connects through the kernel's backlog, so this only
/// bounds pathological cases; a dead one refuses at once.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Open connections one link may hold; a node needs one or two per peer.
pub(crate) const MAX_CONNECTIONS: usize = 8;
/// Connection tasks one link may have, those evicted but not yet gone
/// included (an abort takes effect when the task next runs, which on a busy
/// machine may be after many more accepts): past this, new connections are
/// closed on arrival, so the bound holds however fast they come.
const MAX_TASKS: usize = 2 * MAX_CONNECTIONS;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// A running proxy. Dropping it (or its policy sender) stops the listener
/// and every connection.
pub(crate) struct Proxy {
    pub addr: SocketAddr,
    pub policy: watch::Sender<Policy>,
    pub counters: Arc<Counters>,
    pub task: JoinHandle<()>,
}

impl Proxy {
    /// Binds 127.0.0.1:0 and starts forwarding to `target`.
    pub async fn bind(target: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (policy, watcher) = watch::channel(Policy::OPEN);
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(accept_loop(listener, target, watcher, counters.clone()));
        Ok(Proxy {
            addr,
            policy,
            counters,
            task,
        })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Dropping the sender alone would also end every task, but only once
        // each is polled again; aborting closes the listener promptly.
        self.task.abort();
    }
}

/// Accepts until the policy sender is dropped. Connection tasks live in a
/// `JoinSet` that is dropped (aborting them) when the loop ends.
async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    mut policy: watch::Receiver<Policy>,
    counters: Arc<Counters>,
) {
    let mut connections = JoinSet::new();
    // Open connections, oldest first, for eviction past the bound.
    let mut open: VecDeque<AbortHandle> = VecDeque::new();
    loop {
        tokio::select! {
            changed = policy.changed() => {
                if changed.is_err() {
                    break; // the Proxies are gone
                }
                // A new policy: each connection watches it for itself.
            }
            accepted = listener.accept() => match accepted {
                Ok((inbound, _)) if connections.len() >= MAX_TASKS => {
                    drop(inbound);
                    Counters::add(&counters.evicted, 1);
                }
                Ok((inbound, _)) => {
                    if open.len() >= MAX_CONNECTIONS
                        && let Some(oldest) = open.pop_front()
                    {
                        oldest.abort();
                        Counters::add(&counters.evicted, 1);
                    }
                    open.push_back(connections.spawn(serve(
                        inbound,
                        target,
                        policy.clone(),
                        counters.clone(),
                    )));
                }
                Err(e) => {
                    tracing::warn!(error = %e, %target, "proxy accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            // Reap finished connections so the set does not grow forever.
            Some(done) = connections.join_next_with_id(), if !connections.is_empty() => {
                let id = match &done {
                    Ok((id, ())) => *id,
                    Err(e) => e.id(),
                };
                open.retain(|h| h.id() != id);
            }
        }
    }
}

/// Handles one inbound connection under the policy in force when it
/// arrived, until that policy changes, the Proxies are dropped, or either end
/// closes. Dropping the sockets closes both halves, so neither node keeps a
/// half-open stream.
async fn serve(
    inbound: TcpStream,
    target: SocketAddr,
    mut policy: watch::Receiver<Policy>,
    counters: Arc<Counters>,
) {
    let born = *policy.borrow_and_update();
    let changed = async move {
        // Err means the sender is gone (shutdown): end as well.
        let _ = policy.wait_for(|p| p.generation != born.generation).await;
    };
    match born.state {
        LinkState::Cut(CutMode::Refuse) => {
            Counters::add(&counters.refused, 1);
            drop(inbound);
        }
        LinkState::Cut(CutMode::Blackhole) => {
            Counters::add(&counters.blackholed, 1);
            tokio::select! {
                () = changed => {}
                () = discard(inbound, &counters) => {}
            }
        }
        LinkState::Open => {
            tokio::select! {
                () = changed => Counters::add(&counters.severed, 1),
                () = forward(inbound, target, Duration::ZERO, &counters) => {}
            }
        }
        LinkState::Delay(delay) => {
            tokio::select! {
                () = changed => Counters::add(&counters.severed, 1),
                () = forward(inbound, target, delay, &counters) => {}
            }
        }
    }
}

/// Reads and throws away everything until the client closes.
async fn discard(mut inbound: TcpStream, counters: &Counters) {
    let mut buf = vec![0; BUFFER];
    while let Ok(n @ 1..) = inbound.read(&mut buf).await {
        Counters::add(&counters.bytes_discarded, n as u64);
    }
}

/// Connects to the target and copies both ways until both directions have
/// ended or one fails; the source's bytes are held back by `delay`.
async fn forward(mut inbound: TcpStream, target: SocketAddr, delay: Duration, counters: &Counters) {
    let outbound = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await;
    let Ok(Ok(mut outbound)) = outbound else {
        Counters::add(&counters.target_unreachable, 1);
        return;
    };
    // Heartbeats and acks are tiny: Nagle would hold them back by up to 40 ms.
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    Counters::add(&counters.forwarded, 1);
    let (mut in_read, mut in_write) = inbound.split();
    let (mut out_read, mut out_write) = outbound.split();
    if delay.is_zero() {
        let _ = tokio::try_join!(
            pump(&mut in_read, &mut out_write, &counters.bytes_forward),
            pump(&mut out_read, &mut in_write, &counters.bytes_backward),
        );
    } else {
        let _ = tokio::try_join!(
            pump_delayed(&mut in_read, &mut out_write, delay, &counters.bytes_forward),
            pump(&mut out_read, &mut in_write, &counters.bytes_backward),
        );
    }
}

/// Copies one direction, each chunk written `delay` after it was read.
/// Reading goes on meanwhile, so the delay does not cut the bandwidth; what
/// is queued dies with the future when the connection is severed.
async fn pump_delayed<R, W>(
    from: &mut R,
    to: &mut W,
    delay: Duration,
    bytes: &std::sync::atomic::AtomicU64,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (queue, mut due) =
        tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let read = async move {
        let mut buf = vec![0; BUFFER];
        loop {
            let n = from.read(&mut buf).await?;
            // An empty chunk carries the end of stream, delayed like the rest.
            let _ = queue.send((tokio::time::Instant::now() + delay, buf[..n].to_vec()));
            if n == 0 {
                return io::Result::Ok(());
            }
        }
    };
    let write = async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if chunk.is_empty() {
                break;
            }
            to.write_all(&chunk).await?;
            Counters::add(bytes, chunk.len() as u64);
        }
        to.shutdown().await
    };
    tokio::try_join!(read, write).map(|_| ())
}

/// Copies one direction. On end of stream it passes the half-close on, so
/// a client that shuts down its writing side still gets its answer.
async fn pump<R, W>(
    from: &mut R,
    to: &mut W,
    bytes: &std::sync::atomic::AtomicU64,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0; BUFFER];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
        Counters::add(bytes, n as u64);
    }
}
