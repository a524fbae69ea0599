//! The driver's answers to clients, and [`Replier`], which hands them over
//! on the runtime instead of from the driver thread.

use bytes::Bytes;
use raft::{LogIndex, NodeId};
use tokio::sync::oneshot;

use crate::kv::Answer;

/// Why a client request got no answer from the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A definite failure: this node is not the leader (or lost the entry to
    /// a new leader), the request had no effect.
    NotLeader {
        /// The leader this node knows of, if any.
        leader: Option<NodeId>,
        /// Its client address, if known.
        addr: Option<String>,
    },
    /// The node is shutting down: the outcome is unknown.
    ShuttingDown,
    /// The entry's position was folded into a snapshot from the leader
    /// before this node applied it: whether it was ours is unknown.
    Unknown {
        /// What happened, for the client's error message.
        reason: &'static str,
    },
}

/// Where a write's outcome goes.
pub type WriteReply = oneshot::Sender<Result<Answer, Refusal>>;
/// Where a read's value (and the index it was read at) goes.
pub type ReadReply = oneshot::Sender<Result<(Option<Bytes>, LogIndex), Refusal>>;

/// An answer to a client, ready to go.
pub enum Reply {
    /// A write's outcome.
    Write(WriteReply, Result<Answer, Refusal>),
    /// A read's value.
    Read(ReadReply, Result<(Option<Bytes>, LogIndex), Refusal>),
}

impl Reply {
    /// Completes the waiting handler's channel (it may have given up).
    pub fn send(self) {
        match self {
            Reply::Write(tx, r) => {
                let _ = tx.send(r);
            }
            Reply::Read(tx, r) => {
                let _ = tx.send(r);
            }
        }
    }
}

/// Hands the driver's answers to the handlers waiting for them.
///
/// Completing a handler's oneshot from the driver thread wakes a runtime
/// worker from outside the runtime (a futex or eventfd system call and a
/// context switch, for every answer). Instead the driver passes each round's
/// answers in one batch to a task on the runtime, which completes them
/// there: one wake-up per round, however many clients it answers.
#[derive(Clone)]
pub struct Replier(tokio::sync::mpsc::UnboundedSender<Vec<Reply>>);

impl Replier {
    /// Starts the task on the current tokio runtime.
    pub fn spawn() -> Replier {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<Reply>>();
        tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                for r in batch {
                    r.send();
                }
            }
        });
        Replier(tx)
    }

    /// Hands over a round's answers; answers directly when the task is
    /// gone (the runtime is shutting down).
    pub fn deliver(&self, batch: Vec<Reply>) {
        if let Err(e) = self.0.send(batch) {
            for r in e.0 {
                r.send();
            }
        }
    }
}
