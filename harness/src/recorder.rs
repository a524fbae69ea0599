//! The history as a run writes it: one writer shared by workers and nemeses.
//! The timestamp is taken while holding the writer, so the file is in time
//! order, and each line is flushed as it is written (a crashed harness leaves
//! a readable history).

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::history::{ClientOp, HistoryWriter, Op, OpType};

/// Writes the history; shared by every worker and nemesis of a run.
pub struct Recorder {
    start: Instant,
    writer: Mutex<HistoryWriter>,
    /// Client operations completed ok.
    pub ok: AtomicU64,
    /// Client operations that failed.
    pub fail: AtomicU64,
    /// Client operations with an unknown outcome.
    pub info: AtomicU64,
    /// Faults started (`start-*` nemesis operations).
    pub faults: AtomicU64,
    /// The first write error, if any: the run fails rather than record less than happened.
    error: Mutex<Option<String>>,
}

impl Recorder {
    /// A recorder writing to `path`; history time 0 is `start`.
    pub fn create(path: &Path, start: Instant) -> std::io::Result<Recorder> {
        Ok(Recorder {
            start,
            writer: Mutex::new(HistoryWriter::create(path)?),
            ok: AtomicU64::new(0),
            fail: AtomicU64::new(0),
            info: AtomicU64::new(0),
            faults: AtomicU64::new(0),
            error: Mutex::new(None),
        })
    }

    /// Nanoseconds since the run began.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn write(&self, make: impl FnOnce(u64) -> Op) {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let op = make(self.now());
        if let Err(e) = w.write(op) {
            let mut err = self.error.lock().unwrap_or_else(|e| e.into_inner());
            err.get_or_insert_with(|| format!("cannot write {}: {e}", w.path().display()));
        }
    }

    /// Records the invocation of `op`.
    pub fn invoke(&self, op: &ClientOp) {
        self.write(|t| Op::invoke(t, op.clone()));
    }

    /// Records the completion of `op` as `kind` (ok, fail or info).
    pub fn complete(&self, kind: OpType, op: ClientOp) {
        match kind {
            OpType::Ok => self.ok.fetch_add(1, Ordering::Relaxed),
            OpType::Fail => self.fail.fetch_add(1, Ordering::Relaxed),
            _ => self.info.fetch_add(1, Ordering::Relaxed),
        };
        self.write(|t| Op::client(t, kind, op));
    }

    /// Records a nemesis operation `f` (`start-kill`, `recover`, ...) with its
    /// `value`.
    pub fn nemesis(&self, f: &str, value: serde_json::Value) {
        if f.starts_with("start-") {
            self.faults.fetch_add(1, Ordering::Relaxed);
        }
        self.write(|t| Op::nemesis(t, f, value));
    }

    /// Operations completed so far: ok, fail, info.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.fail.load(Ordering::Relaxed),
            self.info.load(Ordering::Relaxed),
        )
    }

    /// The first write error, if any; the run must then fail.
    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
