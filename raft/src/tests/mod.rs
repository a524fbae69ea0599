//! Tests of the core. Scripted interactions with golden output come
//! first (`scripts`, over `testdata/*.txt`); the rest are Rust: the rules
//! that take loops or randomness to show, whole simulated clusters, and the
//! fault sweeps.

use bytes::Bytes;

use crate::sim::{self, Durable, Faults, Sim};
use crate::*;

mod chaos;
mod election;
mod membership;
mod replication;
mod script;
mod scripts;
mod snapshots;

pub(super) fn id(s: &str) -> NodeId {
    NodeId::new(s)
}

pub(super) fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index: LogIndex(index),
        term: Term(term),
        kind: EntryKind::Normal,
        data: Bytes::from(format!("{index}@{term}")),
    }
}

pub(super) fn log_of(terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, &t)| entry(i as u64 + 1, t))
        .collect()
}

pub(super) fn elect(sim: &mut Sim) -> NodeId {
    assert!(
        sim.run_until(500, |s| s.leader().is_some()),
        "no leader elected"
    );
    sim.leader().unwrap()
}

/// Proposes at the current leader until `n` proposals are applied by it.
pub(super) fn write_n(sim: &mut Sim, n: usize) {
    for i in 0..n {
        let ok = sim.run_until(2000, |s| s.leader().is_some());
        assert!(ok, "no leader to write to");
        let leader = sim.leader().unwrap();
        let data = format!("w{i}-{}", sim.now);
        sim.propose(&leader, data.as_bytes());
        let want = Bytes::from(data);
        sim.run_until(200, |s| s.applied.values().any(|(_, d)| *d == want));
    }
}
