//! The packet emulator of one node namespace: a thread inside it that
//! takes the packets the node sends to impaired peers off NFQUEUE, decides
//! their fate per link, and gives verdicts when their time comes.
//!
//! Per packet, in this order (each decision correlated as in
//! [`super::random`]):
//!
//! 1. loss: dropped at once (the sender's stack believes it was sent, as on
//!    a real wire: the verdict comes after the send returned);
//! 2. duplicate: a copy is sent too, through a raw socket of the
//!    namespace, after a delay of its own; it carries the mark that keeps
//!    it off the queue;
//! 3. corrupt: one random bit past the IP header flips, in the verdict's
//!    rewritten packet (the kernel then marks its checksum unverified, so
//!    the receiver's TCP or UDP checksum rejects it, as with netem);
//! 4. reorder: sent at once, overtaking the packets still held;
//! 5. otherwise held for the delay (time + correlated normal jitter,
//!    floored at zero). Verdicts go out in due order, not arrival order,
//!    so jitter alone reorders too, as with netem.
//!
//! Packets to peers without faults (a link healed while the rule still
//! marked it) pass at once. When the emulator stops, every packet it holds
//! passes at once.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::NetlabError;
use crate::ns::NetNs;
use crate::packet::faults::PacketFaults;
use crate::packet::nfqueue::{NfQueue, Queued};
use crate::packet::random::{Decisions, Jitter, Rng};
use crate::rules::{MARK_INJECTED, QUEUE_NUM};

/// Packets the kernel may hold for us before it fails open: at 1 Mbit/s
/// and beyond, far more than any delay we inject keeps in flight.
const QUEUE_MAX_LEN: u32 = 65_536;

/// What happened to the packets of one link, so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EmulatorStats {
    /// Packets that went through the emulator.
    pub queued: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub corrupted: u64,
    /// Packets sent at once, ahead of held ones.
    pub reordered: u64,
}

#[derive(Debug, Default)]
struct Counters {
    queued: AtomicU64,
    lost: AtomicU64,
    duplicated: AtomicU64,
    corrupted: AtomicU64,
    reordered: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> EmulatorStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EmulatorStats {
            queued: get(&self.queued),
            lost: get(&self.lost),
            duplicated: get(&self.duplicated),
            corrupted: get(&self.corrupted),
            reordered: get(&self.reordered),
        }
    }
}

/// The faults of every impaired peer, by address.
pub(crate) type Plan = HashMap<Ipv4Addr, PacketFaults>;

/// A running emulator. Dropping it lets every held packet go and stops
/// the thread; the queue is then unbound, and the rule's bypass lets
/// marked packets through untouched.
pub(crate) struct Emulator {
    plans: Option<mpsc::Sender<Plan>>,
    wake: Arc<OwnedFd>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<HashMap<Ipv4Addr, Counters>>,
}

impl Emulator {
    /// Starts the emulator of namespace `ns` (named `place` in errors),
    /// whose node talks to `peers`; it injects nothing until given a plan.
    pub fn start(
        ns: &NetNs,
        place: &str,
        peers: &[Ipv4Addr],
        seed: u64,
    ) -> Result<Emulator, NetlabError> {
        let counters: Arc<HashMap<Ipv4Addr, Counters>> =
            Arc::new(peers.iter().map(|p| (*p, Counters::default())).collect());
        let wake = Arc::new(eventfd().map_err(|e| NetlabError::Io {
            what: "creating an eventfd".into(),
            source: e,
        })?);
        let (plans, plan_rx) = mpsc::channel();
        let (ready, ready_rx) = mpsc::sync_channel(1);
        let ns = ns.clone();
        let worker = Worker {
            counters: counters.clone(),
            wake: wake.clone(),
            rng: Rng::new(seed),
            links: HashMap::new(),
            held: BinaryHeap::new(),
            next_seq: 0,
        };
        let thread = std::thread::Builder::new()
            .name(format!("netlab-emu-{place}"))
            .spawn(move || {
                let opened = ns.enter().and_then(|()| {
                    let queue = NfQueue::open(QUEUE_NUM, QUEUE_MAX_LEN)?;
                    let raw = raw_socket()?;
                    Ok((queue, raw))
                });
                match opened {
                    Ok((queue, raw)) => {
                        let _ = ready.send(Ok(()));
                        worker.run(queue, raw, plan_rx);
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                    }
                }
            })
            .map_err(|e| NetlabError::Io {
                what: "starting the emulator thread".into(),
                source: e,
            })?;
        let started = ready_rx
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the emulator thread died")));
        let emulator = Emulator {
            plans: Some(plans),
            wake,
            thread: Some(thread),
            counters,
        };
        started.map_err(|e| NetlabError::Io {
            what: format!("starting the packet emulator in {place} (NFQUEUE)"),
            source: e,
        })?;
        Ok(emulator)
    }

    /// Replaces the plan; packets already held keep their schedule.
    pub fn set(&self, plan: Plan) {
        if let Some(plans) = &self.plans
            && plans.send(plan).is_ok()
        {
            signal(&self.wake);
        }
    }

    /// What the link to `peer` has seen.
    pub fn stats(&self, peer: Ipv4Addr) -> EmulatorStats {
        self.counters
            .get(&peer)
            .map(Counters::snapshot)
            .unwrap_or_default()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.plans.take();
        signal(&self.wake);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The per-link state: its faults and the memory of its random series.
struct LinkState {
    faults: PacketFaults,
    loss: Option<Decisions>,
    duplicate: Option<Decisions>,
    corrupt: Option<Decisions>,
    reorder: Option<Decisions>,
    jitter: Jitter,
}

impl LinkState {
    fn new(faults: PacketFaults, rng: &mut Rng) -> LinkState {
        let mut decide = |c| Decisions::new(c, rng);
        LinkState {
            faults,
            loss: faults.loss.map(&mut decide),
            duplicate: faults.duplicate.map(&mut decide),
            corrupt: faults.corrupt.map(&mut decide),
            reorder: faults.reorder.map(&mut decide),
            jitter: Jitter::new(faults.delay.map_or(0.0, |d| d.correlation), rng),
        }
    }

    fn delay(&mut self, rng: &mut Rng) -> Duration {
        let Some(d) = self.faults.delay else {
            return Duration::ZERO;
        };
        let jitter = d.jitter.as_secs_f64() * self.jitter.next(rng);
        Duration::from_secs_f64((d.time.as_secs_f64() + jitter).max(0.0))
    }
}

fn hit(decisions: &mut Option<Decisions>, rng: &mut Rng) -> bool {
    decisions.as_mut().is_some_and(|d| d.next(rng))
}

/// What to do when a held item's time comes.
enum Release {
    /// Let the queued packet go, rewritten if given.
    Verdict { id: u32, packet: Option<Vec<u8>> },
    /// Send a duplicate through the raw socket.
    Inject { to: Ipv4Addr, packet: Vec<u8> },
}

struct Held {
    due: Instant,
    seq: u64,
    release: Release,
}

impl PartialEq for Held {
    fn eq(&self, other: &Held) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Held) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Held) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

struct Worker {
    counters: Arc<HashMap<Ipv4Addr, Counters>>,
    wake: Arc<OwnedFd>,
    rng: Rng,
    links: HashMap<Ipv4Addr, LinkState>,
    held: BinaryHeap<Reverse<Held>>,
    next_seq: u64,
}

impl Worker {
    fn run(mut self, mut queue: NfQueue, raw: OwnedFd, plans: mpsc::Receiver<Plan>) {
        let mut arrived = Vec::new();
        loop {
            loop {
                match plans.try_recv() {
                    Ok(plan) => self.apply(plan),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        self.release_all(&mut queue);
                        return;
                    }
                }
            }
            if let Err(e) = queue.recv(&mut arrived) {
                tracing::warn!(error = %e, "packet emulator: reading the queue failed; stopping");
                self.release_all(&mut queue);
                return;
            }
            let now = Instant::now();
            for q in arrived.drain(..) {
                self.admit(q, now, &mut queue, &raw);
            }
            let now = Instant::now();
            while self.held.peek().is_some_and(|Reverse(h)| h.due <= now) {
                let Reverse(h) = self.held.pop().expect("peeked");
                release(h.release, &mut queue, &raw);
            }
            let timeout = self
                .held
                .peek()
                .map(|Reverse(h)| h.due.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(60));
            wait(&queue, &self.wake, timeout);
        }
    }

    /// Takes a new plan; links whose faults did not change keep their
    /// random series.
    fn apply(&mut self, plan: Plan) {
        let mut old = std::mem::take(&mut self.links);
        for (peer, faults) in plan {
            let state = match old.remove(&peer) {
                Some(s) if s.faults == faults => s,
                _ => LinkState::new(faults, &mut self.rng),
            };
            self.links.insert(peer, state);
        }
    }

    fn admit(&mut self, q: Queued, now: Instant, queue: &mut NfQueue, raw: &OwnedFd) {
        let all_counters = self.counters.clone();
        let target = destination(&q.packet).and_then(|to| {
            let state = self.links.get_mut(&to)?;
            Some((to, state, all_counters.get(&to)?))
        });
        let Some((to, link, counters)) = target else {
            let pass = Release::Verdict {
                id: q.id,
                packet: None,
            };
            return release(pass, queue, raw);
        };
        let rng = &mut self.rng;
        Counters::bump(&counters.queued);
        if hit(&mut link.loss, rng) {
            Counters::bump(&counters.lost);
            if let Err(e) = queue.verdict(q.id, false, None) {
                tracing::debug!(error = %e, "packet emulator: drop verdict failed");
            }
            return;
        }
        let copy = hit(&mut link.duplicate, rng).then(|| q.packet.clone());
        let rewritten = hit(&mut link.corrupt, rng).then(|| {
            let mut p = q.packet.clone();
            flip_a_bit(&mut p, rng);
            p
        });
        if rewritten.is_some() {
            Counters::bump(&counters.corrupted);
        }
        let delay = if hit(&mut link.reorder, rng) {
            Counters::bump(&counters.reordered);
            Duration::ZERO
        } else {
            link.delay(rng)
        };
        let copy_delay = copy.as_ref().map(|_| link.delay(rng));
        self.hold(
            now + delay,
            Release::Verdict {
                id: q.id,
                packet: rewritten,
            },
            queue,
            raw,
        );
        if let (Some(packet), Some(d)) = (copy, copy_delay) {
            Counters::bump(&counters.duplicated);
            self.hold(now + d, Release::Inject { to, packet }, queue, raw);
        }
    }

    /// Releases at once what is due (a reordered packet overtakes the
    /// held ones), holds the rest.
    fn hold(&mut self, due: Instant, what: Release, queue: &mut NfQueue, raw: &OwnedFd) {
        if due <= Instant::now() {
            return release(what, queue, raw);
        }
        self.next_seq += 1;
        self.held.push(Reverse(Held {
            due,
            seq: self.next_seq,
            release: what,
        }));
    }

    /// On the way out: every held packet passes now, unchanged;
    /// duplicates not yet sent are forgotten.
    fn release_all(&mut self, queue: &mut NfQueue) {
        for Reverse(h) in self.held.drain() {
            if let Release::Verdict { id, .. } = h.release {
                let _ = queue.verdict(id, true, None);
            }
        }
    }
}

fn release(what: Release, queue: &mut NfQueue, raw: &OwnedFd) {
    let result = match &what {
        Release::Verdict { id, packet } => queue.verdict(*id, true, packet.as_deref()),
        Release::Inject { to, packet } => inject(raw, *to, packet),
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "packet emulator: release failed");
    }
}

/// The destination of an IPv4 packet.
fn destination(packet: &[u8]) -> Option<Ipv4Addr> {
    if packet.len() < 20 || packet[0] >> 4 != 4 {
        return None;
    }
    Some(Ipv4Addr::new(
        packet[16], packet[17], packet[18], packet[19],
    ))
}

/// Flips one random bit past the IP header (in the IP header if there is
/// nothing past it), so that a checksum at the receiver catches it.
fn flip_a_bit(packet: &mut [u8], rng: &mut Rng) {
    if packet.is_empty() {
        return;
    }
    let header = usize::from(packet[0] & 0x0f) * 4;
    let start = if header < packet.len() { header } else { 0 };
    let at = start + rng.below((packet.len() - start) as u64) as usize;
    packet[at] ^= 1 << rng.below(8);
}

/// A raw IPv4 socket of the calling thread's namespace for sending whole
/// packets, marked so that the queue rule leaves them alone.
fn raw_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket calls; the fd is owned at once.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_RAW,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let mark = MARK_INJECTED as libc::c_int;
        if libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MARK,
            (&raw const mark).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(fd)
    }
}

fn inject(raw: &OwnedFd, to: Ipv4Addr, packet: &[u8]) -> io::Result<()> {
    // SAFETY: a sockaddr_in on the stack; the buffer outlives the call.
    let n = unsafe {
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from(to).to_be();
        libc::sendto(
            raw.as_raw_fd(),
            packet.as_ptr().cast(),
            packet.len(),
            libc::MSG_DONTWAIT,
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain eventfd; the fd is owned at once.
    unsafe {
        let fd = libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

fn signal(wake: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: an 8-byte write to an eventfd.
    unsafe {
        libc::write(wake.as_raw_fd(), (&raw const one).cast(), 8);
    }
}

/// Sleeps until the queue or the wake-up fd is readable, or `timeout`
/// passes (to the microsecond: delays are what we emulate); clears the
/// wake-up.
fn wait(queue: &NfQueue, wake: &OwnedFd, timeout: Duration) {
    let mut fds = [
        libc::pollfd {
            fd: queue.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: two pollfds and a timespec on the stack.
    unsafe {
        libc::ppoll(fds.as_mut_ptr(), 2, &ts, std::ptr::null());
        if fds[1].revents & libc::POLLIN != 0 {
            let mut count: u64 = 0;
            libc::read(wake.as_raw_fd(), (&raw mut count).cast(), 8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flip_lands_past_the_ip_header_and_changes_one_bit() {
        let mut rng = Rng::new(9);
        for _ in 0..1000 {
            let original: Vec<u8> = (0..60).map(|i| i as u8).collect();
            let mut p = original.clone();
            p[0] = 0x45;
            let before = p.clone();
            flip_a_bit(&mut p, &mut rng);
            let diffs: Vec<usize> = (0..p.len()).filter(|i| p[*i] != before[*i]).collect();
            assert_eq!(diffs.len(), 1);
            assert!(
                diffs[0] >= 20,
                "flipped inside the IP header at {}",
                diffs[0]
            );
            assert_eq!((p[diffs[0]] ^ before[diffs[0]]).count_ones(), 1);
        }
    }

    #[test]
    fn only_ipv4_packets_have_a_destination() {
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[16..20].copy_from_slice(&[198, 18, 1, 2]);
        assert_eq!(destination(&p), Some(Ipv4Addr::new(198, 18, 1, 2)));
        p[0] = 0x60;
        assert_eq!(destination(&p), None);
        assert_eq!(destination(&[0x45; 10]), None);
    }

    #[test]
    fn held_items_come_out_by_due_time_then_arrival() {
        let t = Instant::now();
        let mut heap = BinaryHeap::new();
        for (seq, ms) in [(1, 30), (2, 10), (3, 10), (4, 0)] {
            heap.push(Reverse(Held {
                due: t + Duration::from_millis(ms),
                seq,
                release: Release::Verdict {
                    id: seq as u32,
                    packet: None,
                },
            }));
        }
        let order: Vec<u64> = std::iter::from_fn(|| heap.pop().map(|Reverse(h)| h.seq)).collect();
        assert_eq!(order, vec![4, 2, 3, 1]);
    }
}
