//! Snapshots (§7) in the driver: every `--snapshot-every` applied entries
//! it takes an image of the state machine; a background thread writes and
//! fsyncs the file (the slow part) while the driver goes on, and once it is
//! done the driver makes it current and compacts the log
//! ([`Storage::finish`](crate::storage::Storage::finish)). A snapshot
//! streamed in by a leader is staged until the core accepts it in a
//! `Ready`, then installed the same way, durably, before the reply that
//! says so leaves.

use std::time::{Duration, Instant};

use raft::{HardState, SnapshotInstall, SnapshotMeta};

use super::{Driver, DriverError};
use crate::mailbox::{Refusal, Reply};
use crate::storage::snapshot::{self, Prepared};
use crate::storage::{Snapshot, StorageError};

/// A snapshot taken at `meta`, whose file a background thread is writing.
pub(super) struct PendingSnapshot {
    meta: SnapshotMeta,
    bytes: usize,
    started: Instant,
    /// How long taking the image held up the driver thread.
    blocked: Duration,
    writer: std::thread::JoinHandle<Result<Prepared, StorageError>>,
}

impl Driver {
    /// Installs a snapshot the core accepted from the leader: durable (file,
    /// then WAL) before anything that depends on it, then it becomes the
    /// state machine.
    pub(super) fn install_snapshot(
        &mut self,
        install: SnapshotInstall,
        hard_state: Option<&HardState>,
    ) -> Result<(), DriverError> {
        let meta = install.meta;
        let pos = self
            .incoming
            .iter()
            .position(|(s, _)| s.meta.index == meta.index && s.meta.term == meta.term)
            .expect("the core accepts only snapshots the transport delivered with their image");
        let (snapshot, state) = self.incoming.swap_remove(pos);
        // Our own snapshot in progress is older (it is at most at our
        // applied index): drop it.
        self.abandon_snapshot();
        let hard_state = hard_state
            .cloned()
            .unwrap_or_else(|| self.storage.hard_state().clone());
        let entries = self.raft.log().slice(meta.index.next(), usize::MAX);
        self.storage.install(&snapshot, &hard_state, &entries)?;
        if let Some(last) = entries.last() {
            self.raft.on_persisted(last.index, last.term);
        }
        // Seeded bug `install-skips-apply` (nats-io/nats-streaming-server#503,
        // huton-io/huton#4, cubefs/cubefs#671): "skip the restore if the
        // snapshot is not newer than ours", tested after the storage already
        // made it ours, so the state machine keeps its old contents.
        if !(cfg!(feature = "bugs") && self.cfg.has_bug(crate::config::Bug::InstallSkipsApply)) {
            self.kv = state;
        }
        self.applied = meta.index;
        self.events.snapshot(meta.index, meta.term, "installed");
        self.events.state(meta.index, &self.kv.digest());
        self.events.config(meta.index, &meta.membership);
        tracing::info!(node = %self.cfg.id, index = meta.index.0, term = meta.term.0, from = %install.from, "installed snapshot");
        // Proposals at positions the image covers were either applied in it
        // or replaced by another leader's entries: nobody can tell which.
        let rest = self.proposals.split_off(&meta.index.next());
        for (_, (_, reply)) in std::mem::replace(&mut self.proposals, rest) {
            let why = Refusal::Unknown {
                reason: "the entry was covered by a snapshot from the leader",
            };
            self.outgoing_writes.push(Reply::Write(reply, Err(why)));
        }
        Ok(())
    }

    /// Every `--snapshot-every` applied entries: take the state machine's
    /// image and start writing it; once written, make it current and drop
    /// the log it covers, on disk and in the core.
    pub(super) fn maybe_take_snapshot(&mut self) -> Result<(), DriverError> {
        if let Some(p) = &self.saving {
            // The new WAL is written from the core's log, so all of it must
            // be durable: an entry proposed since the last Ready (a
            // membership plan's next step) waits for its own write first.
            if !p.writer.is_finished() || self.raft.has_ready() {
                return Ok(());
            }
            self.finish_snapshot()?;
        }
        let every = self.cfg.snapshot_every;
        let base = self.raft.log().snapshot().index;
        if every == 0 || self.applied.0 < base.0.saturating_add(every) {
            return Ok(());
        }
        let index = self.applied;
        // A node that joined does not know the configuration before the
        // first one it received: it takes no snapshot there.
        let Some(membership) = self.raft.membership_at(index).cloned() else {
            return Ok(());
        };
        let meta = SnapshotMeta {
            index,
            term: self
                .raft
                .log()
                .term(index)
                .expect("applied entries after the snapshot are in the log"),
            membership,
        };
        let started = Instant::now();
        self.events.state(index, &self.kv.digest());
        let image = if cfg!(feature = "bugs")
            && self.cfg.has_bug(crate::config::Bug::SnapshotDropsSessions)
        {
            // Seeded bug `snapshot-drops-sessions` (dissertation §6.3,
            // atomix/atomix#1101): "sessions are a cache; a snapshot carries
            // the data".
            self.kv.without_sessions().to_image()
        } else {
            self.kv.to_image()
        };
        let snapshot = Snapshot::new(meta.clone(), &image);
        let dir = self.storage.dir().to_path_buf();
        let bytes = snapshot.file().len();
        let writer = std::thread::Builder::new()
            .name(format!("snapshot-{}", self.cfg.id))
            .spawn(move || snapshot::prepare(&dir, &snapshot))
            .map_err(|e| {
                StorageError::io(
                    self.storage.dir(),
                    "start a thread to write a snapshot in",
                    e,
                )
            })?;
        self.saving = Some(PendingSnapshot {
            meta,
            bytes,
            started,
            blocked: started.elapsed(),
            writer,
        });
        Ok(())
    }

    /// The writer is done: the snapshot becomes current, then the log it
    /// covers goes, from the WAL and from the core.
    fn finish_snapshot(&mut self) -> Result<(), DriverError> {
        let Some(p) = self.saving.take() else {
            return Ok(());
        };
        let index = p.meta.index;
        let prepared = p
            .writer
            .join()
            .map_err(|_| DriverError::SnapshotWriter { index: index.0 })??;
        // Everything the core holds is durable here (no Ready is pending:
        // see `maybe_take_snapshot`), so the new WAL is the entries after
        // the snapshot, as they are.
        let entries = self.raft.log().slice(index.next(), usize::MAX);
        let hard_state = self.storage.hard_state().clone();
        self.storage.finish(prepared, &hard_state, &entries)?;
        self.raft.compact(p.meta.clone());
        self.events.snapshot(index, p.meta.term, "taken");
        self.flush_events()?;
        tracing::info!(
            node = %self.cfg.id,
            index = index.0,
            bytes = p.bytes,
            blocked_ms = p.blocked.as_millis() as u64,
            ms = p.started.elapsed().as_millis() as u64,
            "took snapshot"
        );
        Ok(())
    }

    /// Drops our snapshot in progress, once its writer is done with the
    /// data directory: no writer is left behind.
    pub(super) fn abandon_snapshot(&mut self) {
        if let Some(p) = self.saving.take() {
            let _ = p.writer.join();
        }
    }
}
