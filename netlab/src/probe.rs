//! Measuring the network from inside it: who reaches whom, round trips,
//! loss, throughput. Sockets are made inside the namespace they belong to
//! ([`Lab::run_in`]) and then used from any thread: a socket keeps its
//! namespace for life.
//!
//! Used by the tests (exact reachability of every partition shape, faults
//! that do what they say) and by `netlab measure` (the numbers).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::addr::CONTROL_ADDR;
use crate::error::NetlabError;
use crate::lab::{Lab, Link};

/// The name probes give the control side.
pub const CONTROL: &str = "control";

fn io_error(what: &str) -> impl Fn(io::Error) -> NetlabError + '_ {
    move |source| NetlabError::Io {
        what: what.to_string(),
        source,
    }
}

/// Runs `f` inside `place`'s namespace (a node id or [`CONTROL`]).
fn run_at<T: Send>(lab: &Lab, place: &str, f: impl FnOnce() -> T + Send) -> Result<T, NetlabError> {
    if place == CONTROL {
        lab.control_namespace().run(f)
    } else {
        lab.run_in(place, f)
    }
}

fn addr_of(lab: &Lab, place: &str) -> Result<Ipv4Addr, NetlabError> {
    if place == CONTROL {
        Ok(CONTROL_ADDR)
    } else {
        lab.addr(place)
    }
}

/// A TCP listener and a UDP socket on one port at every node and at the
/// control side, for probing every ordered pair.
pub struct Mesh {
    port: u16,
    places: Vec<String>,
    tcp: Vec<TcpListener>,
    udp: Vec<UdpSocket>,
}

/// Who reached whom in one round of [`Mesh::probe`], by ordered pair of
/// places (node ids and [`CONTROL`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reachability {
    /// A TCP connect from the first to the second completed. Needs both
    /// directions: the handshake's answer travels back.
    pub tcp: BTreeMap<Link, bool>,
    /// A datagram sent by the first reached the second: one direction.
    pub udp: BTreeMap<Link, bool>,
}

impl Mesh {
    pub fn start(lab: &Lab, port: u16) -> Result<Mesh, NetlabError> {
        let mut places = vec![CONTROL.to_string()];
        places.extend(lab.nodes().iter().cloned());
        let mut tcp = Vec::new();
        let mut udp = Vec::new();
        for place in &places {
            let at = SocketAddr::from((addr_of(lab, place)?, port));
            let (t, u) = run_at(lab, place, || {
                let t = TcpListener::bind(at)?;
                t.set_nonblocking(true)?;
                let u = UdpSocket::bind(at)?;
                u.set_nonblocking(true)?;
                io::Result::Ok((t, u))
            })?
            .map_err(io_error("binding probe sockets"))?;
            tcp.push(t);
            udp.push(u);
        }
        Ok(Mesh {
            port,
            places,
            tcp,
            udp,
        })
    }

    /// Probes every ordered pair of distinct places at once: a TCP connect
    /// (given `wait` to complete) and three datagrams (given `wait` to
    /// arrive).
    pub fn probe(&self, lab: &Lab, wait: Duration) -> Result<Reachability, NetlabError> {
        self.drain();
        let pairs: Vec<(usize, usize)> = (0..self.places.len())
            .flat_map(|a| (0..self.places.len()).map(move |b| (a, b)))
            .filter(|(a, b)| a != b)
            .collect();
        let mut addrs = Vec::new();
        for p in &self.places {
            addrs.push(SocketAddr::from((addr_of(lab, p)?, self.port)));
        }
        for &(a, b) in &pairs {
            for _ in 0..3 {
                let tag = format!("{a} {b}");
                // A refused or unroutable datagram is what we measure.
                let _ = self.udp[a].send_to(tag.as_bytes(), addrs[b]);
            }
        }
        let connects: Vec<Result<bool, NetlabError>> = std::thread::scope(|scope| {
            let jobs: Vec<_> = pairs
                .iter()
                .map(|&(a, b)| {
                    let (place, to) = (&self.places[a], addrs[b]);
                    scope.spawn(move || {
                        run_at(lab, place, || TcpStream::connect_timeout(&to, wait).is_ok())
                    })
                })
                .collect();
            jobs.into_iter()
                .map(|j| j.join().expect("probe thread"))
                .collect()
        });
        // The connects took at least as long as delivery needs.
        std::thread::sleep(wait / 2);
        let mut delivered = BTreeSet::new();
        let mut buf = [0u8; 64];
        for (b, sock) in self.udp.iter().enumerate() {
            while let Ok(n) = sock.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]);
                let mut parts = text.split(' ').map(|x| x.parse::<usize>());
                if let (Some(Ok(a)), Some(Ok(to))) = (parts.next(), parts.next())
                    && to == b
                {
                    delivered.insert((a, b));
                }
            }
        }
        let mut r = Reachability::default();
        for (&(a, b), connected) in pairs.iter().zip(connects) {
            let link = (self.places[a].clone(), self.places[b].clone());
            r.tcp.insert(link.clone(), connected?);
            r.udp.insert(link, delivered.contains(&(a, b)));
        }
        self.drain();
        Ok(r)
    }

    /// Accepts and closes whatever connected, so backlogs never fill.
    fn drain(&self) {
        for t in &self.tcp {
            while t.accept().is_ok() {}
        }
        let mut buf = [0u8; 64];
        for u in &self.udp {
            while u.recv(&mut buf).is_ok() {}
        }
    }
}

/// Round trips of `count` UDP pings from `from` to an echo at `to`, one at
/// a time; `None` for a ping (or its answer) that did not come back within
/// `timeout`. Each ping carries its number, so a late answer is never
/// taken for a later ping's.
pub fn udp_round_trips(
    lab: &Lab,
    from: &str,
    to: &str,
    port: u16,
    count: usize,
    timeout: Duration,
) -> Result<Vec<Option<Duration>>, NetlabError> {
    let there = SocketAddr::from((addr_of(lab, to)?, port));
    let here = SocketAddr::from((addr_of(lab, from)?, port));
    let echo = run_at(lab, to, || UdpSocket::bind(there))?.map_err(io_error("binding the echo"))?;
    let pinger =
        run_at(lab, from, || UdpSocket::bind(here))?.map_err(io_error("binding the pinger"))?;
    echo.set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(io_error("echo timeout"))?;
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut buf = [0u8; 64];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, peer)) = echo.recv_from(&mut buf) {
                    let _ = echo.send_to(&buf[..n], peer);
                }
            }
        });
        let result = (|| {
            let mut rtts = Vec::with_capacity(count);
            let mut buf = [0u8; 64];
            for i in 0..count as u64 {
                let sent = Instant::now();
                pinger
                    .send_to(&i.to_be_bytes(), there)
                    .map_err(io_error("sending a ping"))?;
                let deadline = sent + timeout;
                let mut rtt = None;
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    pinger
                        .set_read_timeout(Some(left))
                        .map_err(io_error("ping timeout"))?;
                    match pinger.recv(&mut buf) {
                        Ok(8) if buf[..8] == i.to_be_bytes() => {
                            rtt = Some(sent.elapsed());
                            break;
                        }
                        Ok(_) => continue, // a late or duplicated answer
                        Err(_) => break,
                    }
                }
                rtts.push(rtt);
            }
            Ok(rtts)
        })();
        stop.store(true, Ordering::Relaxed);
        result
    })
}

/// What came of a stream of numbered datagrams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    pub sent: u64,
    /// Distinct datagrams that arrived.
    pub received: u64,
    /// Arrivals of a datagram already received.
    pub duplicates: u64,
    /// Arrivals with a lower number than one received before.
    pub out_of_order: u64,
}

impl Delivery {
    pub fn loss(&self) -> f64 {
        1.0 - self.received as f64 / self.sent.max(1) as f64
    }
}

/// Sends `count` numbered datagrams from `from` to `to`, one every `gap`,
/// then waits `settle` for stragglers, and counts what arrived.
pub fn udp_delivery(
    lab: &Lab,
    from: &str,
    to: &str,
    port: u16,
    count: u64,
    gap: Duration,
    settle: Duration,
) -> Result<Delivery, NetlabError> {
    let there = SocketAddr::from((addr_of(lab, to)?, port));
    let here = SocketAddr::from((addr_of(lab, from)?, port));
    let sink = run_at(lab, to, || UdpSocket::bind(there))?.map_err(io_error("binding the sink"))?;
    // Room for every datagram even if the counting thread falls behind:
    // what is lost must be the network's doing.
    grow_receive_buffer(&sink, 32 << 20);
    let source =
        run_at(lab, from, || UdpSocket::bind(here))?.map_err(io_error("binding the source"))?;
    sink.set_read_timeout(Some(Duration::from_millis(20)))
        .map_err(io_error("sink timeout"))?;
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let counter = scope.spawn(|| {
            let mut seen = vec![false; count as usize];
            let mut d = Delivery {
                sent: count,
                ..Delivery::default()
            };
            let mut highest = None;
            let mut buf = [0u8; 64];
            let mut quiet_since = None::<Instant>;
            loop {
                match sink.recv(&mut buf) {
                    Ok(8) => {
                        let i = u64::from_be_bytes(buf[..8].try_into().expect("8 bytes"));
                        let Some(slot) = seen.get_mut(i as usize) else {
                            continue;
                        };
                        if *slot {
                            d.duplicates += 1;
                        } else {
                            *slot = true;
                            d.received += 1;
                        }
                        if highest.is_some_and(|h| i < h) {
                            d.out_of_order += 1;
                        }
                        highest = highest.max(Some(i));
                    }
                    Ok(_) => {}
                    Err(_) if done.load(Ordering::Relaxed) => {
                        let since = *quiet_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= settle {
                            return d;
                        }
                    }
                    Err(_) => {}
                }
            }
        });
        let start = Instant::now();
        let sent = (0..count).try_for_each(|i| {
            // Paced against the clock, not by sleeping per packet, so the
            // rate holds however long each send takes.
            let due = start + gap * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            source.send_to(&i.to_be_bytes(), there).map(|_| ())
        });
        done.store(true, Ordering::Relaxed);
        let d = counter.join().expect("counter thread");
        sent.map_err(io_error("sending datagrams"))?;
        Ok(d)
    })
}

/// Bulk TCP from `from` to `to` for `duration`: the receiver's rate, in
/// bits per second, and whether every byte arrived intact (the stream is
/// a known pattern).
pub fn tcp_throughput(
    lab: &Lab,
    from: &str,
    to: &str,
    port: u16,
    duration: Duration,
) -> Result<(f64, bool), NetlabError> {
    let there = SocketAddr::from((addr_of(lab, to)?, port));
    let listener =
        run_at(lab, to, || TcpListener::bind(there))?.map_err(io_error("binding the sink"))?;
    let stream = run_at(lab, from, || {
        TcpStream::connect_timeout(&there, Duration::from_secs(5))
    })?
    .map_err(io_error("connecting for throughput"))?;
    let (mut sink, _) = listener.accept().map_err(io_error("accepting"))?;
    sink.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io_error("sink timeout"))?;
    let pattern = |i: u64| (i % 251) as u8;
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let mut stream = stream;
            let end = Instant::now() + duration;
            let mut next = 0u64;
            let mut chunk = vec![0u8; 16 * 1024];
            while Instant::now() < end {
                for (k, b) in chunk.iter_mut().enumerate() {
                    *b = pattern(next + k as u64);
                }
                if stream.write_all(&chunk).is_err() {
                    break;
                }
                next += chunk.len() as u64;
            }
            // Closing ends the reader; bytes still queued are not counted.
        });
        let mut buf = vec![0u8; 64 * 1024];
        let mut received = 0u64;
        let mut intact = true;
        let start = Instant::now();
        while let Ok(n @ 1..) = sink.read(&mut buf) {
            for (k, b) in buf[..n].iter().enumerate() {
                intact &= *b == pattern(received + k as u64);
            }
            received += n as u64;
            if start.elapsed() >= duration {
                break;
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        drop(sink);
        let _ = writer.join();
        Ok((received as f64 * 8.0 / elapsed, intact))
    })
}

/// Raises a socket's receive buffer past the system limit (we are root);
/// best effort.
fn grow_receive_buffer(socket: &impl std::os::fd::AsRawFd, bytes: libc::c_int) {
    // SAFETY: an int option, by pointer with its size.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&raw const bytes).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// A counter of `/proc/net/snmp` in `node`'s namespace, e.g.
/// `("Tcp", "InCsumErrors")`: packets the transport threw away for a bad
/// checksum.
pub fn snmp_counter(lab: &Lab, node: &str, proto: &str, field: &str) -> Result<u64, NetlabError> {
    let text = lab
        .run_in(node, || {
            std::fs::read_to_string("/proc/thread-self/net/snmp")
        })?
        .map_err(io_error("reading /proc/net/snmp"))?;
    let prefix = format!("{proto}:");
    let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
    let (names, values) = (lines.next(), lines.next());
    let found = names.zip(values).and_then(|(names, values)| {
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(n, _)| *n == field)
            .and_then(|(_, v)| v.parse().ok())
    });
    found.ok_or_else(|| NetlabError::Io {
        what: format!("reading /proc/net/snmp in {node}"),
        source: io::Error::other(format!("no counter {proto} {field}")),
    })
}

/// Percentiles (0..=100) of a sample, by nearest rank.
pub fn percentile(sorted: &[Duration], pct: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((pct / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
