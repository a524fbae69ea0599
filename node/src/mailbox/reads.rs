//! [`ReadQueue`]: how reads reach the driver without waking it needlessly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::ReadReply;

/// Reads on their way from the gRPC handlers to the driver.
///
/// While a ReadIndex round is in flight a new read can only join the next
/// one, and the driver wakes anyway when the round ends (its heartbeats are
/// answered, a tick, a step-down). So a handler only queues its read then,
/// without waking the driver: a futex call and a context switch per read
/// saved. Otherwise it queues it and wakes the driver with
/// [`Event::ReadsQueued`](super::Event::ReadsQueued).
#[derive(Default)]
pub struct ReadQueue {
    queue: Mutex<Vec<(String, ReadReply)>>,
    /// Set by the driver while a round is in flight.
    round_in_flight: AtomicBool,
}

impl ReadQueue {
    /// Queues reads of these keys. True if the driver must be woken for them.
    pub fn push_all(&self, reads: Vec<(String, ReadReply)>) -> bool {
        self.lock().extend(reads);
        // After the push: a driver that clears the flag then looks at the
        // queue either finds this read or is woken for it.
        !self.round_in_flight.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(String, ReadReply)>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The driver takes every queued read.
    pub fn take(&self) -> Vec<(String, ReadReply)> {
        std::mem::take(&mut *self.lock())
    }

    /// The driver records whether a round is in flight; true if reads are
    /// waiting that it must take now (no round will wake it for them).
    pub fn set_round_in_flight(&self, in_flight: bool) -> bool {
        self.round_in_flight.store(in_flight, Ordering::SeqCst);
        !in_flight && !self.lock().is_empty()
    }
}
