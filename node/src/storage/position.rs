//! What the WAL remembers of the log: not the entries (the core keeps those),
//! only where the log starts and ends and the term of each run of entries.
//!
//! That is enough to check, on every write and every replay, that the log
//! keeps the shape Raft gives it: indexes contiguous from the snapshot on,
//! terms never decreasing along the log (§5.3 Log Matching), truncation only
//! of entries that exist. Terms change rarely, so the run list stays tiny.

use raft::{HardState, LogIndex, Term};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogPosition {
    /// The last index and term folded into a snapshot; (0, 0) without one.
    base: (LogIndex, Term),
    last: LogIndex,
    /// The first index of each run of entries with the same term, ascending,
    /// covering `base + 1 ..= last`.
    runs: Vec<(LogIndex, Term)>,
}

impl LogPosition {
    pub(crate) fn first_index(&self) -> LogIndex {
        self.base.0.next()
    }

    pub(crate) fn last_index(&self) -> LogIndex {
        self.last
    }

    /// The term of the last entry, or of the snapshot when the log is empty.
    pub(crate) fn last_term(&self) -> Term {
        self.runs.last().map_or(self.base.1, |&(_, t)| t)
    }

    /// The term of the entry at `index`, of the snapshot's last entry, or
    /// `None` when the WAL no longer (or not yet) has it.
    pub(crate) fn term(&self, index: LogIndex) -> Option<Term> {
        if index == self.base.0 {
            return Some(self.base.1);
        }
        if index < self.base.0 || index > self.last {
            return None;
        }
        let run = self.runs.partition_point(|&(start, _)| start <= index);
        Some(self.runs[run - 1].1)
    }

    /// Drops the entries at `from` and after; `from` may be one past the end.
    pub(crate) fn truncate(&mut self, from: LogIndex) -> Result<(), String> {
        if from <= self.base.0 {
            return Err(format!(
                "truncation from index {from} reaches into the snapshot, which ends at {}",
                self.base.0
            ));
        }
        if from > self.last.next() {
            return Err(format!(
                "truncation from index {from} is past the end of the log (last index {})",
                self.last
            ));
        }
        self.last = from.prev();
        let keep = self.runs.partition_point(|&(start, _)| start < from);
        self.runs.truncate(keep);
        Ok(())
    }

    /// Records one more entry at the end of the log.
    pub(crate) fn append(&mut self, index: LogIndex, term: Term) -> Result<(), String> {
        if index != self.last.next() {
            return Err(format!(
                "entry {index} does not follow the last index {}",
                self.last
            ));
        }
        let last_term = self.last_term();
        if term < last_term {
            return Err(format!(
                "entry {index} has term {term}, lower than the term {last_term} before it"
            ));
        }
        if term != last_term || self.runs.is_empty() {
            self.runs.push((index, term));
        }
        self.last = index;
        Ok(())
    }

    /// Replaces the whole log by a snapshot ending at (`index`, `term`).
    pub(crate) fn reset_to_snapshot(&mut self, index: LogIndex, term: Term) {
        *self = LogPosition {
            base: (index, term),
            last: index,
            runs: Vec::new(),
        };
    }
}

/// Checks that `next` may follow `prev` (Figure 2): the current term never
/// goes back, and a vote, once cast in a term, is never changed or withdrawn
/// in that term (that would allow two leaders in one term, §5.2).
pub(crate) fn check_hard_state(prev: &HardState, next: &HardState) -> Result<(), String> {
    if next.term < prev.term {
        return Err(format!(
            "the term would go back from {} to {}",
            prev.term, next.term
        ));
    }
    if next.term == prev.term && prev.voted_for.is_some() && next.voted_for != prev.voted_for {
        let show =
            |v: &Option<raft::NodeId>| v.as_ref().map_or("nobody".to_string(), |id| id.to_string());
        return Err(format!(
            "the vote of term {} would change from {} to {}",
            prev.term,
            show(&prev.voted_for),
            show(&next.voted_for)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::NodeId;

    fn pos(terms: &[u64]) -> LogPosition {
        let mut p = LogPosition::default();
        for (i, &t) in terms.iter().enumerate() {
            p.append(LogIndex(i as u64 + 1), Term(t)).unwrap();
        }
        p
    }

    #[test]
    fn tracks_terms_by_runs() {
        let p = pos(&[1, 1, 2, 2, 2, 5]);
        assert_eq!(p.runs.len(), 3);
        assert_eq!(p.term(LogIndex(0)), Some(Term(0)));
        assert_eq!(p.term(LogIndex(2)), Some(Term(1)));
        assert_eq!(p.term(LogIndex(3)), Some(Term(2)));
        assert_eq!(p.term(LogIndex(6)), Some(Term(5)));
        assert_eq!(p.term(LogIndex(7)), None);
        assert_eq!(p.last_term(), Term(5));
    }

    #[test]
    fn truncation_restores_the_last_term() {
        let mut p = pos(&[1, 1, 2, 2, 3]);
        p.truncate(LogIndex(4)).unwrap();
        assert_eq!((p.last_index(), p.last_term()), (LogIndex(3), Term(2)));
        p.truncate(LogIndex(3)).unwrap();
        assert_eq!((p.last_index(), p.last_term()), (LogIndex(2), Term(1)));
        p.truncate(LogIndex(1)).unwrap();
        assert_eq!(p, LogPosition::default());
        assert!(p.truncate(LogIndex(2)).is_err());
        assert!(p.truncate(LogIndex(0)).is_err());
    }

    #[test]
    fn refuses_gaps_and_falling_terms() {
        let mut p = pos(&[1, 2]);
        assert!(p.append(LogIndex(4), Term(2)).is_err());
        assert!(p.append(LogIndex(2), Term(2)).is_err());
        assert!(p.append(LogIndex(3), Term(1)).is_err());
        p.append(LogIndex(3), Term(2)).unwrap();
    }

    #[test]
    fn a_snapshot_is_the_new_base() {
        let mut p = pos(&[1, 1, 2]);
        p.reset_to_snapshot(LogIndex(10), Term(3));
        assert_eq!(p.first_index(), LogIndex(11));
        assert_eq!((p.last_index(), p.last_term()), (LogIndex(10), Term(3)));
        assert_eq!(p.term(LogIndex(10)), Some(Term(3)));
        assert_eq!(p.term(LogIndex(9)), None);
        assert!(p.truncate(LogIndex(10)).is_err());
        assert!(p.append(LogIndex(11), Term(2)).is_err());
        p.append(LogIndex(11), Term(3)).unwrap();
    }

    #[test]
    fn hard_state_rules() {
        let hs = |t, v: Option<&str>| HardState {
            term: Term(t),
            voted_for: v.map(NodeId::new),
        };
        assert!(check_hard_state(&hs(1, None), &hs(1, Some("n1"))).is_ok());
        assert!(check_hard_state(&hs(1, Some("n1")), &hs(1, Some("n1"))).is_ok());
        assert!(check_hard_state(&hs(1, Some("n1")), &hs(2, None)).is_ok());
        assert!(check_hard_state(&hs(1, Some("n1")), &hs(1, Some("n2"))).is_err());
        assert!(check_hard_state(&hs(1, Some("n1")), &hs(1, None)).is_err());
        assert!(check_hard_state(&hs(2, None), &hs(1, None)).is_err());
    }
}
