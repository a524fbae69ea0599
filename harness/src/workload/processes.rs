//! Jepsen's process numbering. A worker whose operation ended unknown might
//! still have that operation in flight, so it may not issue another one under
//! the same process number: it continues as process `p + concurrency`.

/// The process numbers of one worker.
#[derive(Debug, Clone)]
pub struct ProcessNumbers {
    concurrency: u64,
    current: u64,
}

impl ProcessNumbers {
    /// Worker `worker` of `concurrency` starts as process `worker`.
    pub fn new(worker: usize, concurrency: usize) -> ProcessNumbers {
        ProcessNumbers {
            concurrency: concurrency.max(1) as u64,
            current: worker as u64,
        }
    }

    /// The worker's current process number.
    pub fn current(&self) -> u64 {
        self.current
    }

    /// After an unknown outcome: the next free number of this worker.
    pub fn retire(&mut self) -> u64 {
        self.current += self.concurrency;
        self.current
    }

    /// A client session id unique to the current process (non-zero).
    pub fn client_id(&self) -> u64 {
        self.current + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn workers_never_share_or_reuse_a_process_number() {
        let mut seen = HashSet::new();
        let mut workers: Vec<ProcessNumbers> = (0..5).map(|w| ProcessNumbers::new(w, 5)).collect();
        for w in &workers {
            assert!(seen.insert(w.current()));
        }
        for round in 0..20 {
            for (i, w) in workers.iter_mut().enumerate() {
                if (round + i) % 3 == 0 {
                    assert!(seen.insert(w.retire()), "process reused");
                }
            }
        }
        assert_eq!(ProcessNumbers::new(2, 5).client_id(), 3);
    }
}
