//! Active keys and their rotation.

use raft::Rng;

/// `slots` keys are in use at any time; a key that has had `ops_per_key`
/// operations is replaced by a fresh one.
#[derive(Debug)]
pub struct KeyPool {
    slots: Vec<(String, u64)>,
    next: u64,
    ops_per_key: u64,
    used: Vec<String>,
}

impl KeyPool {
    /// A pool of `slots` keys, each used for `ops_per_key` operations.
    pub fn new(slots: usize, ops_per_key: u64) -> KeyPool {
        let mut pool = KeyPool {
            slots: Vec::new(),
            next: 0,
            ops_per_key: ops_per_key.max(1),
            used: Vec::new(),
        };
        for _ in 0..slots.max(1) {
            let k = pool.fresh();
            pool.slots.push((k, 0));
        }
        pool
    }

    fn fresh(&mut self) -> String {
        let k = format!("k{}", self.next);
        self.next += 1;
        self.used.push(k.clone());
        k
    }

    /// A key for the next operation, counted against its budget.
    pub fn pick(&mut self, rng: &mut Rng) -> String {
        let i = rng.below(self.slots.len() as u64) as usize;
        let (key, count) = &mut self.slots[i];
        *count += 1;
        let key = key.clone();
        if self.slots[i].1 >= self.ops_per_key {
            let k = self.fresh();
            self.slots[i] = (k, 0);
        }
        key
    }

    /// The keys in use now.
    pub fn active(&self) -> Vec<String> {
        self.slots.iter().map(|(k, _)| k.clone()).collect()
    }

    /// Every key handed out or prepared so far, for the final reads.
    pub fn all_keys(&self) -> &[String] {
        &self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn keys_rotate_after_their_budget() {
        let mut pool = KeyPool::new(3, 10);
        let mut rng = Rng::new(1);
        let mut counts: HashMap<String, u64> = HashMap::new();
        for _ in 0..300 {
            *counts.entry(pool.pick(&mut rng)).or_default() += 1;
        }
        assert!(counts.values().all(|&c| c <= 10), "{counts:?}");
        // Every key but the (at most 3) still in use got its full budget.
        let partial = counts.values().filter(|&&c| c < 10).count();
        assert!(partial <= 3, "{counts:?}");
        assert_eq!(counts.values().sum::<u64>(), 300);
        // Used keys plus the fresh ones prepared for the slots.
        assert!(pool.all_keys().len() >= counts.len());
        assert!(pool.all_keys().len() <= counts.len() + 3);
    }

    #[test]
    fn a_single_slot_uses_keys_in_order() {
        let mut pool = KeyPool::new(1, 2);
        let mut rng = Rng::new(0);
        let keys: Vec<String> = (0..5).map(|_| pool.pick(&mut rng)).collect();
        assert_eq!(keys, ["k0", "k0", "k1", "k1", "k2"]);
        assert_eq!(pool.active(), ["k2"]);
    }
}
