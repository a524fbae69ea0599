//! The core's in-memory copy of the log, and the bookkeeping of which part is
//! durable, committed and applied.
//!
//! Positions, from low to high: `snapshot.index` (folded into the snapshot)
//! ≤ `applied` ≤ `committed` ≤ `last_index()`; independently, `unstable` is
//! the first index not yet handed to storage and `persisted` the highest index
//! storage reported durable.
//!
//! The log also knows the configurations in it: the snapshot's, and those
//! of its configuration entries, so that the one in force (the latest,
//! §4.1 of the thesis) follows every append, truncation and snapshot.

use super::{Entry, EntryKind, LogIndex, Membership, SnapshotMeta, Term};

/// The log as the core holds it; the caller may look (through
/// [`Raft::log`](crate::Raft::log)), only the core changes it.
#[derive(Debug)]
pub struct RaftLog {
    snapshot: SnapshotMeta,
    /// `entries[i].index == snapshot.index + 1 + i`.
    entries: Vec<Entry>,
    /// The highest index known to be committed.
    pub committed: LogIndex,
    /// Highest index handed out to be applied.
    pub applied: LogIndex,
    /// First index not yet handed to storage.
    unstable: LogIndex,
    /// Where storage must cut the log before writing the unstable entries.
    pending_truncate: Option<LogIndex>,
    /// Highest index storage reported durable.
    persisted: LogIndex,
    /// The configuration entries among `entries`, in index order.
    configs: Vec<(LogIndex, Membership)>,
    /// Changes whenever the configuration in force may have changed.
    config_version: u64,
}

impl RaftLog {
    /// A log recovered from storage: everything given is already durable.
    pub(crate) fn new(snapshot: SnapshotMeta, entries: Vec<Entry>) -> RaftLog {
        debug_assert!(
            entries
                .iter()
                .enumerate()
                .all(|(i, e)| e.index.0 == snapshot.index.0 + 1 + i as u64)
        );
        let last = LogIndex(snapshot.index.0 + entries.len() as u64);
        let mut log = RaftLog {
            committed: snapshot.index,
            applied: snapshot.index,
            unstable: last.next(),
            pending_truncate: None,
            persisted: last,
            snapshot,
            entries: Vec::new(),
            configs: Vec::new(),
            config_version: 0,
        };
        log.note_configs(&entries);
        log.entries = entries;
        log
    }

    /// The configuration in force: the latest in the log, else the snapshot's.
    pub fn membership(&self) -> &Membership {
        self.configs
            .last()
            .map_or(&self.snapshot.membership, |(_, m)| m)
    }

    /// Where the configuration in force comes from: its entry's index, or
    /// the snapshot's index.
    pub fn config_index(&self) -> LogIndex {
        self.configs.last().map_or(self.snapshot.index, |(i, _)| *i)
    }

    /// The configuration in force at `index` (at or after the snapshot's
    /// index), if known: a node that joined does not know the one before
    /// the first configuration entry it received.
    pub fn membership_at(&self, index: LogIndex) -> Option<&Membership> {
        if index < self.snapshot.index {
            return None;
        }
        let m = self
            .configs
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map_or(&self.snapshot.membership, |(_, m)| m);
        (!m.is_empty()).then_some(m)
    }

    /// Changes whenever [`RaftLog::membership`] may have changed.
    pub(crate) fn config_version(&self) -> u64 {
        self.config_version
    }

    /// Records the configuration entries among `entries` (appended after
    /// the ones known).
    fn note_configs(&mut self, entries: &[Entry]) {
        for e in entries.iter().filter(|e| e.kind == EntryKind::Config) {
            // The transport and storage refuse undecodable configurations;
            // one here would be a bug, and skipping it keeps the last good one.
            match Membership::decode(&e.data) {
                Ok(m) => {
                    self.configs.push((e.index, m));
                    self.config_version += 1;
                }
                Err(err) => debug_assert!(false, "configuration at {}: {err}", e.index),
            }
        }
    }

    /// Where the snapshot the log starts after ends.
    pub fn snapshot(&self) -> &SnapshotMeta {
        &self.snapshot
    }

    /// The first index held in memory (just after the snapshot).
    pub fn first_index(&self) -> LogIndex {
        self.snapshot.index.next()
    }

    /// The last index of the log (the snapshot's when the log is empty).
    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.snapshot.index.0 + self.entries.len() as u64)
    }

    /// The term of the last entry (the snapshot's when the log is empty).
    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.snapshot.term, |e| e.term)
    }

    /// The highest index storage reported durable.
    pub fn persisted(&self) -> LogIndex {
        self.persisted
    }

    /// The term of the entry at `index`: known for the snapshot's last entry and
    /// the entries after it, `None` for compacted or missing positions.
    pub fn term(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if it is in memory.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        if index <= self.snapshot.index {
            return None;
        }
        self.entries
            .get((index.0 - self.snapshot.index.0 - 1) as usize)
    }

    fn pos(&self, index: LogIndex) -> usize {
        (index.0 - self.snapshot.index.0 - 1) as usize
    }

    /// Whether the log holds an entry of `term` at `index` (Log Matching:
    /// then it holds the same entries as any log that does, up to there).
    pub fn matches(&self, index: LogIndex, term: Term) -> bool {
        self.term(index) == Some(term)
    }

    /// Entries from `from` on, at most `max_bytes` of them but at least one.
    pub fn slice(&self, from: LogIndex, max_bytes: usize) -> Vec<Entry> {
        if from > self.last_index() || from <= self.snapshot.index {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut size = 0;
        for e in &self.entries[self.pos(from)..] {
            size += e.size();
            if !out.is_empty() && size > max_bytes {
                break;
            }
            out.push(e.clone());
        }
        out
    }

    /// The leader appends its own new entry.
    pub(crate) fn append(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.last_index().next());
        self.note_configs(std::slice::from_ref(&entry));
        self.entries.push(entry);
    }

    /// A follower merges the entries of an AppendEntries whose prev entry
    /// matched: entries it already has with the same term are kept, the first
    /// conflicting one and everything after it are dropped (§5.3), the rest
    /// appended. Returns the index of the last entry of the request.
    pub(crate) fn merge(&mut self, prev_index: LogIndex, entries: &[Entry]) -> LogIndex {
        let last_new = LogIndex(prev_index.0 + entries.len() as u64);
        for (i, e) in entries.iter().enumerate() {
            match self.term(e.index) {
                Some(t) if t == e.term => continue,
                Some(_) => {
                    // Committed entries never conflict (Log Matching + Leader
                    // Completeness); reaching one means a broken invariant.
                    assert!(
                        e.index > self.committed,
                        "conflict at committed index {}",
                        e.index
                    );
                    self.truncate_from(e.index);
                    self.note_configs(&entries[i..]);
                    self.entries.extend_from_slice(&entries[i..]);
                    return last_new;
                }
                None => {
                    self.note_configs(&entries[i..]);
                    self.entries.extend_from_slice(&entries[i..]);
                    return last_new;
                }
            }
        }
        last_new
    }

    fn truncate_from(&mut self, index: LogIndex) {
        let pos = self.pos(index);
        self.entries.truncate(pos);
        let before = self.configs.len();
        self.configs.retain(|(i, _)| *i < index);
        if self.configs.len() != before {
            self.config_version += 1;
        }
        if index < self.unstable {
            self.unstable = index;
            self.pending_truncate = Some(self.pending_truncate.map_or(index, |t| t.min(index)));
        }
        if self.persisted >= index {
            self.persisted = index.prev();
        }
    }

    pub(crate) fn commit_to(&mut self, index: LogIndex) -> bool {
        let index = index.min(self.last_index());
        if index > self.committed {
            self.committed = index;
            true
        } else {
            false
        }
    }

    pub(crate) fn has_unstable(&self) -> bool {
        self.pending_truncate.is_some() || self.unstable <= self.last_index()
    }

    /// Hands the not-yet-durable suffix to storage: where to cut first, and what to write.
    pub(crate) fn take_unstable(&mut self) -> (Option<LogIndex>, Vec<Entry>) {
        let truncate = self.pending_truncate.take();
        let entries = if self.unstable <= self.last_index() {
            self.entries[self.pos(self.unstable)..].to_vec()
        } else {
            Vec::new()
        };
        self.unstable = self.last_index().next();
        (truncate, entries)
    }

    /// Storage made everything up to `index` durable, if that entry still has `term`.
    pub(crate) fn persisted_to(&mut self, index: LogIndex, term: Term) {
        if index > self.persisted && index < self.unstable && self.matches(index, term) {
            self.persisted = index;
        }
    }

    pub(crate) fn has_committed_unapplied(&self) -> bool {
        self.committed > self.applied
    }

    pub(crate) fn take_committed(&mut self) -> Vec<Entry> {
        if self.committed <= self.applied {
            return Vec::new();
        }
        let from = self.pos(self.applied.next());
        let to = self.pos(self.committed) + 1;
        self.applied = self.committed;
        self.entries[from..to].to_vec()
    }

    /// The first index of the run of entries with the same term as `index`.
    pub(crate) fn first_index_of_term(&self, index: LogIndex) -> LogIndex {
        let Some(term) = self.term(index) else {
            return index;
        };
        let mut i = index;
        while i > self.first_index() && self.term(i.prev()) == Some(term) {
            i = i.prev();
        }
        i
    }

    /// The last index holding an entry of `term`, if any is in memory.
    pub(crate) fn last_index_of_term(&self, term: Term) -> Option<LogIndex> {
        // Terms never decrease along the log, so a binary search finds the end of the run.
        let end = self.entries.partition_point(|e| e.term <= term);
        if end > 0 && self.entries[end - 1].term == term {
            Some(self.entries[end - 1].index)
        } else if end == 0 && self.snapshot.term == term && self.snapshot.index.0 > 0 {
            Some(self.snapshot.index)
        } else {
            None
        }
    }

    /// Replaces everything with a snapshot, keeping the entries that follow it
    /// when the log holds the snapshot's last entry (§7).
    pub(crate) fn restore(&mut self, meta: SnapshotMeta) {
        if self.matches(meta.index, meta.term) && meta.index <= self.last_index() {
            let keep = self.pos(meta.index) + 1;
            self.entries.drain(..keep);
            self.configs.retain(|(i, _)| *i > meta.index);
        } else {
            self.entries.clear();
            self.configs.clear();
            self.pending_truncate = Some(meta.index.next());
        }
        self.config_version += 1;
        self.committed = self.committed.max(meta.index);
        self.applied = self.applied.max(meta.index);
        self.unstable = self.unstable.max(meta.index.next());
        self.persisted = self.persisted.max(meta.index);
        if self.entries.is_empty() {
            self.unstable = meta.index.next();
            self.persisted = meta.index;
        }
        self.snapshot = meta;
    }

    /// Drops entries up to `meta.index`, which the caller has made durable in a snapshot.
    pub(crate) fn compact(&mut self, meta: SnapshotMeta) {
        if meta.index <= self.snapshot.index || meta.index > self.applied {
            return;
        }
        let keep = self.pos(meta.index) + 1;
        self.entries.drain(..keep);
        self.configs.retain(|(i, _)| *i > meta.index);
        self.snapshot = meta;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EntryKind;
    use bytes::Bytes;

    fn e(index: u64, term: u64) -> Entry {
        Entry {
            index: LogIndex(index),
            term: Term(term),
            kind: EntryKind::Normal,
            data: Bytes::new(),
        }
    }

    fn log_of(terms: &[u64]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, &t)| e(i as u64 + 1, t))
            .collect();
        RaftLog::new(SnapshotMeta::default(), entries)
    }

    #[test]
    fn terms_and_bounds() {
        let log = log_of(&[1, 1, 2]);
        assert_eq!(log.last_index(), LogIndex(3));
        assert_eq!(log.last_term(), Term(2));
        assert_eq!(log.term(LogIndex(0)), Some(Term(0)));
        assert_eq!(log.term(LogIndex(2)), Some(Term(1)));
        assert_eq!(log.term(LogIndex(4)), None);
    }

    #[test]
    fn merge_keeps_matching_truncates_conflicts() {
        let mut log = log_of(&[1, 1, 1, 1]);
        // Same entries again (a duplicated request) change nothing.
        assert_eq!(log.merge(LogIndex(1), &[e(2, 1), e(3, 1)]), LogIndex(3));
        assert_eq!(log.last_index(), LogIndex(4));
        assert!(!log.has_unstable());
        // A conflict at 3 drops 3 and 4, then appends.
        assert_eq!(log.merge(LogIndex(2), &[e(3, 2)]), LogIndex(3));
        assert_eq!(log.last_index(), LogIndex(3));
        assert_eq!(log.term(LogIndex(3)), Some(Term(2)));
        let (cut, entries) = log.take_unstable();
        assert_eq!(cut, Some(LogIndex(3)));
        assert_eq!(entries, vec![e(3, 2)]);
        assert_eq!(log.persisted(), LogIndex(2));
    }

    #[test]
    fn shorter_request_never_truncates_a_longer_matching_log() {
        let mut log = log_of(&[1, 1, 1, 1]);
        assert_eq!(log.merge(LogIndex(0), &[e(1, 1)]), LogIndex(1));
        assert_eq!(log.last_index(), LogIndex(4));
    }

    #[test]
    fn term_runs() {
        let log = log_of(&[1, 1, 3, 3, 3, 5]);
        assert_eq!(log.first_index_of_term(LogIndex(5)), LogIndex(3));
        assert_eq!(log.first_index_of_term(LogIndex(2)), LogIndex(1));
        assert_eq!(log.last_index_of_term(Term(3)), Some(LogIndex(5)));
        assert_eq!(log.last_index_of_term(Term(2)), None);
        assert_eq!(log.last_index_of_term(Term(5)), Some(LogIndex(6)));
    }

    #[test]
    fn slice_respects_byte_budget_but_returns_one() {
        let log = log_of(&[1, 1, 1]);
        assert_eq!(log.slice(LogIndex(1), 0).len(), 1);
        assert_eq!(log.slice(LogIndex(1), 1 << 20).len(), 3);
        assert!(log.slice(LogIndex(4), 1 << 20).is_empty());
    }

    #[test]
    fn commit_and_apply() {
        let mut log = log_of(&[1, 1, 1]);
        assert!(log.commit_to(LogIndex(2)));
        assert!(!log.commit_to(LogIndex(1)));
        assert_eq!(log.take_committed().len(), 2);
        assert!(log.take_committed().is_empty());
        log.commit_to(LogIndex(9));
        assert_eq!(log.committed, LogIndex(3));
    }

    #[test]
    fn compact_and_restore_keep_following_entries() {
        let mut log = log_of(&[1, 1, 2, 2]);
        log.commit_to(LogIndex(3));
        log.take_committed();
        log.compact(SnapshotMeta {
            index: LogIndex(2),
            term: Term(1),
            membership: Membership::default(),
        });
        assert_eq!(log.first_index(), LogIndex(3));
        assert_eq!(log.term(LogIndex(2)), Some(Term(1)));
        assert_eq!(log.term(LogIndex(1)), None);
        // A snapshot whose last entry we hold keeps what follows it.
        log.restore(SnapshotMeta {
            index: LogIndex(3),
            term: Term(2),
            membership: Membership::default(),
        });
        assert_eq!(log.last_index(), LogIndex(4));
        // One we do not hold replaces the log.
        log.restore(SnapshotMeta {
            index: LogIndex(9),
            term: Term(4),
            membership: Membership::default(),
        });
        assert_eq!(log.last_index(), LogIndex(9));
        assert_eq!(log.committed, LogIndex(9));
        assert_eq!(log.take_unstable().0, Some(LogIndex(10)));
    }
}
