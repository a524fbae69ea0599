//! The next operation of each workload.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::history::Action;
use crate::workload::Workload;
use raft::Rng;

/// Register values are drawn from `0..REGISTER_VALUES`: few enough that cas
/// often succeeds and reads often see a value several writes could explain,
/// which is where linearizability bugs hide.
pub const REGISTER_VALUES: u64 = 5;

/// Draws the workers' next operations.
pub struct Generator {
    workload: Workload,
    /// Append tokens are unique across the whole run (hence per key).
    tokens: Arc<AtomicI64>,
}

impl Generator {
    /// A generator for `workload`; `tokens` numbers the append tokens of the
    /// whole run.
    pub fn new(workload: Workload, tokens: Arc<AtomicI64>) -> Generator {
        Generator { workload, tokens }
    }

    /// The next operation: read, write or cas of a small integer, or read or
    /// append of a unique token.
    pub fn next(&self, rng: &mut Rng) -> Action {
        match self.workload {
            Workload::Register => match rng.below(3) {
                0 => Action::Read(None),
                1 => Action::Write(rng.below(REGISTER_VALUES) as i64),
                _ => Action::cas(
                    Some(rng.below(REGISTER_VALUES) as i64),
                    rng.below(REGISTER_VALUES) as i64,
                ),
            },
            Workload::Append => {
                if rng.below(2) == 0 {
                    Action::Read(None)
                } else {
                    Action::Append(self.tokens.fetch_add(1, Ordering::Relaxed))
                }
            }
        }
    }
}

/// The append-token counter that a run's workers share.
pub fn token_counter() -> Arc<AtomicI64> {
    Arc::new(AtomicI64::new(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::F;
    use std::collections::HashSet;

    #[test]
    fn register_mixes_reads_writes_and_cas_of_small_values() {
        let g = Generator::new(Workload::Register, token_counter());
        let mut rng = Rng::new(5);
        let ops: Vec<Action> = (0..300).map(|_| g.next(&mut rng)).collect();
        for f in [F::Read, F::Write, F::Cas] {
            assert!(
                ops.iter().filter(|a| a.f() == f).count() > 50,
                "{f:?} is rare"
            );
        }
        assert!(ops.iter().all(|a| match a {
            Action::Write(v) => (0..REGISTER_VALUES as i64).contains(v),
            Action::Cas(c) => c.expected.is_some() && c.new < REGISTER_VALUES as i64,
            _ => true,
        }));
    }

    #[test]
    fn append_tokens_are_unique() {
        let g = Generator::new(Workload::Append, token_counter());
        let mut rng = Rng::new(9);
        let tokens: Vec<i64> = (0..500)
            .filter_map(|_| match g.next(&mut rng) {
                Action::Append(t) => Some(t),
                _ => None,
            })
            .collect();
        assert!(tokens.len() > 150);
        assert_eq!(tokens.iter().collect::<HashSet<_>>().len(), tokens.len());
    }
}
