//! What one proxy shares with the [`Proxies`](super::Proxies) that controls it: the
//! link's policy (open or cut, stamped with a generation) and its counters.
//!
//! - [`CutMode`]: what a cut link does with new connections.
//! - [`LinkState`]: open, cut, or slow.
//! - [`Policy`]: the value every connection task watches. Each change bumps
//!   the generation, so a task can tell "the link changed since I started"
//!   even when it wakes up only after a cut *and* a heal (a watch channel
//!   keeps only the latest value).
//! - [`Counters`] and their snapshot [`LinkStats`].

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// What a cut link does with the connections its source opens while cut.
/// Connections that were open when the cut began are closed either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CutMode {
    /// Accept, read and discard, never forward, and hold the connection open
    /// until the link heals. To the client the target looks like a dead host:
    /// connecting works but nothing ever answers, so only the client's own
    /// timeouts get it out. The nastier case, hence the default.
    #[default]
    Blackhole,
    /// Accept, then close at once: the client learns immediately, as when a
    /// process has crashed on a host that is still up.
    Refuse,
}

/// Whether and how a link forwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Forwards at once, both ways.
    Open,
    /// Forwards nothing; how the source notices is the mode's business.
    Cut(CutMode),
    /// Forwards, but every byte from the source reaches the target this
    /// much later (replies are not held back). What is still on its way
    /// when the link changes again is lost, as packets in flight are when a
    /// slow link fails.
    Delay(std::time::Duration),
}

/// The current state of a link and how many times it has changed.
///
/// A connection task remembers the generation it was born under and ends
/// as soon as the generation moves on: a forwarding connection must not
/// outlive a cut, and a blackholed one must not outlive the heal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Policy {
    pub generation: u64,
    pub state: LinkState,
}

impl Policy {
    pub const OPEN: Policy = Policy {
        generation: 0,
        state: LinkState::Open,
    };

    /// Moves to `state`; returns false (and keeps the generation, so no
    /// connection is disturbed) when the link is already there.
    pub fn set(&mut self, state: LinkState) -> bool {
        if self.state == state {
            return false;
        }
        self.state = state;
        self.generation += 1;
        true
    }
}

/// Live counters of one link, updated by its connection tasks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub bytes_forward: AtomicU64,
    pub bytes_backward: AtomicU64,
    pub bytes_discarded: AtomicU64,
    pub forwarded: AtomicU64,
    pub refused: AtomicU64,
    pub blackholed: AtomicU64,
    pub severed: AtomicU64,
    pub target_unreachable: AtomicU64,
    pub evicted: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> LinkStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LinkStats {
            bytes_forward: get(&self.bytes_forward),
            bytes_backward: get(&self.bytes_backward),
            bytes_discarded: get(&self.bytes_discarded),
            forwarded: get(&self.forwarded),
            refused: get(&self.refused),
            blackholed: get(&self.blackholed),
            severed: get(&self.severed),
            target_unreachable: get(&self.target_unreachable),
            evicted: get(&self.evicted),
        }
    }
}

/// What one link (from → to) has carried since the [`Proxies`](super::Proxies) started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkStats {
    /// Bytes forwarded from the source to the target (requests).
    pub bytes_forward: u64,
    /// Bytes forwarded from the target back to the source (responses).
    pub bytes_backward: u64,
    /// Bytes read from blackholed connections and thrown away.
    pub bytes_discarded: u64,
    /// Connections forwarded to the target.
    pub forwarded: u64,
    /// Connections closed on arrival because the link was cut (refuse mode).
    pub refused: u64,
    /// Connections held without forwarding because the link was cut (blackhole mode).
    pub blackholed: u64,
    /// Forwarding connections closed by a cut.
    pub severed: u64,
    /// Connections closed because the target could not be reached (node down).
    pub target_unreachable: u64,
    /// Connections closed to keep the link within its bound of open
    /// connections (a node that leaks them or reconnects in a loop): the
    /// oldest, or a new one on arrival while evicted ones are still going.
    pub evicted: u64,
}
