//! The power-off: every change that was not durable is undone on the
//! backing tree (or, torn, all but a prefix of each file's writes), and the
//! caller learns which kernel caches to drop.

use std::os::fd::AsFd;

use crate::journal::{Change, Entry, Ino};
use crate::model::{LossReport, PowerLoss};
use crate::state::{Kind, State};
use crate::sys;
use crate::undo::Cut;
use splitmix::Rng;

/// At most this many detail lines per report.
const MAX_DETAILS: usize = 200;

/// The kernel caches a power-off made stale.
#[derive(Debug, Default)]
pub(crate) struct Stale {
    pub inodes: Vec<Ino>,
    pub entries: Vec<Entry>,
}

impl State {
    /// Throws away what is not durable. The processes using the mount must
    /// be gone (and their dirty mmap pages written back) first.
    pub fn power_off(&mut self, loss: PowerLoss) -> (LossReport, Stale) {
        self.epoch += 1;
        self.counters.power_offs += 1;
        let mut report = LossReport::default();
        let mut stale = Stale::default();
        let mut details = Vec::new();

        for change in self.journal.take_for_undo() {
            let what = self.describe(&change);
            let undid = self.undo_change(&change);
            self.unpin(&change);
            match undid {
                Ok(undid) => {
                    report.files_lost += undid.lost;
                    report.names_restored += undid.restored;
                    report.bytes_lost += undid.data.bytes;
                    report.data_changes_lost += undid.data.changes;
                    details.push(what);
                    stale.entries.extend(undid.entries);
                }
                Err(e) => report.errors.push(format!("{what}: could not undo: {e}")),
            }
        }

        let mut pending: Vec<Ino> = self
            .inodes
            .iter()
            .filter(|(_, i)| !i.data.is_empty() || i.durable_owner.is_some())
            .map(|(ino, _)| *ino)
            .collect();
        pending.sort_unstable();
        for ino in pending {
            let path = self.ino_path(ino);
            if let Err(e) = self.undo_inode(ino, &path, loss, &mut report, &mut details) {
                report.errors.push(format!("{path}: could not undo: {e}"));
            }
            self.maybe_drop(ino);
        }

        let inos: Vec<Ino> = self.inodes.keys().copied().collect();
        for ino in inos {
            self.maybe_drop(ino);
        }
        stale.inodes = self
            .inodes
            .iter()
            .filter(|(_, i)| i.lookups > 0)
            .map(|(ino, _)| *ino)
            .collect();
        if details.len() > MAX_DETAILS {
            let more = details.len() - MAX_DETAILS;
            details.truncate(MAX_DETAILS);
            details.push(format!("... and {more} more"));
        }
        report.details = details;
        (report, stale)
    }

    fn undo_inode(
        &mut self,
        ino: Ino,
        path: &str,
        loss: PowerLoss,
        report: &mut LossReport,
        details: &mut Vec<String>,
    ) -> std::io::Result<()> {
        let Some(inode) = self.inodes.get_mut(&ino) else {
            return Ok(());
        };
        let st = sys::fstat(inode.fd.as_fd())?;
        if st.st_nlink == 0 {
            // Unlinked for good: nothing of it can be seen again.
            inode.data.discard();
            inode.durable_owner = None;
            self.forget_key(ino);
            return Ok(());
        }
        if !inode.data.is_empty() {
            let cut = match loss {
                PowerLoss::All => Cut::All,
                PowerLoss::Torn { seed } => inode.data.random_cut(&mut Rng::new(seed ^ fnv(path))),
            };
            let file = sys::reopen(inode.fd.as_fd(), libc::O_RDWR)?;
            let undone = inode.data.undo(&file, cut)?;
            report.bytes_lost += undone.bytes;
            report.data_changes_lost += undone.changes;
            if undone.changes > 0 {
                report.files_changed += 1;
                details.push(format!(
                    "{path}: {} unsynced changes lost ({} bytes of writes)",
                    undone.changes, undone.bytes
                ));
            }
        }
        if let Some(owner) = inode.durable_owner.take() {
            if inode.kind != Kind::Symlink {
                sys::chmod(inode.fd.as_fd(), owner.mode)?;
            }
            sys::chown(inode.fd.as_fd(), Some(owner.uid), Some(owner.gid))?;
            details.push(format!("{path}: mode and owner back to their last fsync"));
        }
        Ok(())
    }

    fn describe(&self, change: &Change) -> String {
        match change {
            Change::Added { at, .. } => format!("{}: creation lost", self.entry_path(at)),
            Change::Removed { at, .. } => format!("{}: removal undone", self.entry_path(at)),
            Change::Renamed { from, to, .. } => format!(
                "{} -> {}: rename undone",
                self.entry_path(from),
                self.entry_path(to)
            ),
            Change::Exchanged { a, b } => format!(
                "{} <-> {}: exchange undone",
                self.entry_path(a),
                self.entry_path(b)
            ),
        }
    }
}

/// FNV-1a: a torn cut depends on the seed and the file's path, not on the
/// order inodes were met in.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
