//! Random sequences of batches (hard states, truncations, entries) and
//! compactions, with a restart after each, against a plain in-memory model of
//! Figure 2's persistent state. Proptest prints the failing sequence, shrunk,
//! and saves its seed under `node/proptest-regressions/` to rerun it first.

use proptest::prelude::*;
use testkit::repeatable;

use super::*;
use raft::SnapshotMeta;

#[derive(Clone, Debug)]
enum Op {
    /// Turned into a valid [`PersistBatch`] against the model's state.
    Persist {
        /// (term increase, vote): a vote already cast in the term is kept.
        hard_state: Option<(u64, Option<u8>)>,
        /// Truncate this many entries back from the end (0: none dropped).
        truncate_back: Option<u64>,
        count: usize,
        term_increase: u64,
        data: Vec<u8>,
    },
    /// Snapshot at `keep` entries before the end and rewrite the WAL.
    Compact { keep: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    let persist = (
        proptest::option::of((0u64..2, proptest::option::of(0u8..3))),
        proptest::option::of(0u64..4),
        0usize..5,
        0u64..2,
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(
            |(hard_state, truncate_back, count, term_increase, data)| Op::Persist {
                hard_state,
                truncate_back,
                count,
                term_increase,
                data,
            },
        );
    prop_oneof![8 => persist, 1 => (0u64..4).prop_map(|keep| Op::Compact { keep })]
}

/// What the WAL should hold.
#[derive(Default)]
struct Model {
    hard_state: HardState,
    snapshot: Option<SnapshotMeta>,
    entries: Vec<Entry>,
}

impl Model {
    fn base(&self) -> (u64, Term) {
        self.snapshot
            .as_ref()
            .map_or((0, Term(0)), |s| (s.index.0, s.term))
    }
    fn last_index(&self) -> u64 {
        self.entries.last().map_or(self.base().0, |e| e.index.0)
    }
    fn term_at(&self, index: u64) -> Term {
        let (base, base_term) = self.base();
        if index == base {
            base_term
        } else {
            self.entries[(index - base - 1) as usize].term
        }
    }

    /// Applies `op` to the model and to the WAL.
    fn step(&mut self, wal: &mut Wal, op: &Op) {
        match op {
            Op::Persist {
                hard_state,
                truncate_back,
                count,
                term_increase,
                data,
            } => {
                let hard_state = hard_state.map(|(increase, vote)| {
                    let term = Term(self.hard_state.term.0 + increase);
                    let voted_for = if increase == 0 && self.hard_state.voted_for.is_some() {
                        self.hard_state.voted_for.clone()
                    } else {
                        vote.map(|v| NodeId::new(format!("n{v}")))
                    };
                    HardState { term, voted_for }
                });
                let base = self.base().0;
                let truncate_from = truncate_back
                    .map(|back| (self.last_index() + 1).saturating_sub(back).max(base + 1));
                let start = truncate_from.unwrap_or(self.last_index() + 1);
                let term = Term(self.term_at(start - 1).0 + term_increase);
                let new: Vec<Entry> = (0..*count as u64)
                    .map(|i| Entry {
                        index: LogIndex(start + i),
                        term,
                        kind: if data.len() % 3 == 0 {
                            EntryKind::Noop
                        } else {
                            EntryKind::Normal
                        },
                        data: Bytes::from([&data[..], &i.to_le_bytes()[..]].concat()),
                    })
                    .collect();
                wal.persist(&PersistBatch {
                    hard_state: hard_state.as_ref(),
                    truncate_from: truncate_from.map(LogIndex),
                    entries: &new,
                })
                .unwrap();
                if let Some(hs) = hard_state {
                    self.hard_state = hs;
                }
                self.entries.truncate((start - base - 1) as usize);
                self.entries.extend(new);
            }
            Op::Compact { keep } => {
                let base = self.base().0;
                let index = self.last_index().saturating_sub(*keep).max(base);
                let snapshot = SnapshotMeta {
                    index: LogIndex(index),
                    term: self.term_at(index),
                    membership: raft::Membership::voters([NodeId::new("n1"), NodeId::new("n2")]),
                };
                self.entries.drain(..(index - base) as usize);
                wal.rewrite(Some(&snapshot), &self.hard_state, &self.entries)
                    .unwrap();
                self.snapshot = Some(snapshot);
            }
        }
    }
}

proptest! {
    #![proptest_config(repeatable(64))]

    #[test]
    fn random_batches_survive_restarts_like_the_model(
        ops in proptest::collection::vec(op(), 1..30)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Model::default();
        // The bytes written are the same with either policy; syncing each
        // batch would only slow the search down.
        let (mut wal, _) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
        for op in &ops {
            model.step(&mut wal, op);
            drop(wal);
            let (reopened, rec) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
            wal = reopened;
            prop_assert_eq!(&rec.hard_state, &model.hard_state);
            prop_assert_eq!(&rec.snapshot, &model.snapshot);
            prop_assert_eq!(&rec.entries, &model.entries);
            prop_assert_eq!(rec.repaired_tail, None);
            prop_assert_eq!(wal.last_index(), LogIndex(model.last_index()));
            prop_assert_eq!(wal.last_term(), model.term_at(model.last_index()));
            prop_assert_eq!(wal.first_index(), LogIndex(model.base().0 + 1));
        }
    }
}
