//! [`Journal`]: the namespace changes (creates, links, unlinks, renames)
//! that are not yet durable under the strict metadata model, in the order
//! they happened.
//!
//! A change touches one or two directory entries (a rename touches its
//! source and its destination). Fsyncing a directory commits every pending
//! change that touches one of its entries, and with each, the pending
//! changes it builds on: the earlier change to each entry it touches (so a
//! rename of a file commits the create that named it, and a create of a
//! name commits the unlink that freed it), and for removing a directory,
//! the last change to each entry inside it. What is committed is therefore
//! always closed under "happened before, on the same entry", which keeps
//! undoing the rest (newest first) possible and every surviving state one a
//! real filesystem could be left in: a rename is never half done, and a
//! name never points at a file whose creation was undone.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;

/// An inode number of the mount.
pub(crate) type Ino = u64;

/// A directory entry: the directory's inode and the name in it.
pub(crate) type Entry = (Ino, OsString);

/// One namespace change, with what it takes to undo or finish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A new name for `ino` (create, mkdir, mknod, symlink, link).
    Added { at: Entry, ino: Ino },
    /// A name removed (unlink, rmdir); the object waits in the shadow
    /// directory under `shadow` until the removal is durable.
    Removed {
        at: Entry,
        ino: Ino,
        shadow: OsString,
    },
    /// A rename; what it replaced waits in the shadow directory.
    Renamed {
        from: Entry,
        to: Entry,
        ino: Ino,
        replaced: Option<(Ino, OsString)>,
    },
    /// `RENAME_EXCHANGE` of two entries.
    Exchanged { a: Entry, b: Entry },
}

impl Change {
    fn entries(&self) -> Vec<&Entry> {
        match self {
            Change::Added { at, .. } | Change::Removed { at, .. } => vec![at],
            Change::Renamed { from, to, .. } => vec![from, to],
            Change::Exchanged { a, b } => vec![a, b],
        }
    }

    /// Every inode the change refers to: they must stay known until it is
    /// committed or undone.
    pub fn inodes(&self) -> Vec<Ino> {
        let mut v: Vec<Ino> = self.entries().iter().map(|e| e.0).collect();
        match self {
            Change::Added { ino, .. } | Change::Removed { ino, .. } => v.push(*ino),
            Change::Renamed { ino, replaced, .. } => {
                v.push(*ino);
                v.extend(replaced.as_ref().map(|r| r.0));
            }
            Change::Exchanged { .. } => {}
        }
        v
    }
}

#[derive(Debug)]
struct Pending {
    change: Change,
    deps: Vec<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Journal {
    pending: BTreeMap<u64, Pending>,
    /// The newest pending change to each entry.
    last: HashMap<Entry, u64>,
    next: u64,
}

impl Journal {
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Records a change. `emptied_dir` is the directory a `Removed` of a
    /// directory took away: its removal builds on every change inside it.
    pub fn record(&mut self, change: Change, emptied_dir: Option<Ino>) {
        let id = self.next;
        self.next += 1;
        let mut deps: Vec<u64> = change
            .entries()
            .iter()
            .filter_map(|e| self.last.get(*e).copied())
            .collect();
        if let Some(dir) = emptied_dir {
            deps.extend(
                self.last
                    .iter()
                    .filter(|(e, _)| e.0 == dir)
                    .map(|(_, id)| *id),
            );
        }
        for e in change.entries() {
            self.last.insert(e.clone(), id);
        }
        self.pending.insert(id, Pending { change, deps });
    }

    /// Commits what an fsync of `dir` makes durable and returns it, oldest
    /// first.
    pub fn commit_dir(&mut self, dir: Ino) -> Vec<Change> {
        let mut todo: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.change.entries().iter().any(|e| e.0 == dir))
            .map(|(id, _)| *id)
            .collect();
        let mut chosen = std::collections::BTreeSet::new();
        while let Some(id) = todo.pop() {
            if let Some(p) = self.pending.get(&id)
                && chosen.insert(id)
            {
                todo.extend(&p.deps);
            }
        }
        let committed: Vec<Change> = chosen
            .iter()
            .filter_map(|id| self.pending.remove(id))
            .map(|p| p.change)
            .collect();
        self.last.retain(|_, id| !chosen.contains(id));
        committed
    }

    /// Commits everything (a clean unmount), oldest first.
    pub fn commit_all(&mut self) -> Vec<Change> {
        self.last.clear();
        std::mem::take(&mut self.pending)
            .into_values()
            .map(|p| p.change)
            .collect()
    }

    /// Takes every pending change, newest first, for undoing.
    pub fn take_for_undo(&mut self) -> Vec<Change> {
        let mut v = self.commit_all();
        v.reverse();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(dir: Ino, name: &str) -> Entry {
        (dir, name.into())
    }
    fn added(dir: Ino, name: &str, ino: Ino) -> Change {
        Change::Added {
            at: e(dir, name),
            ino,
        }
    }

    #[test]
    fn a_dir_fsync_commits_only_that_directory() {
        let mut j = Journal::default();
        j.record(added(1, "a", 10), None);
        j.record(added(2, "b", 11), None);
        assert_eq!(j.commit_dir(2), vec![added(2, "b", 11)]);
        assert_eq!(j.take_for_undo(), vec![added(1, "a", 10)]);
    }

    #[test]
    fn a_rename_is_committed_by_either_directory_with_what_it_builds_on() {
        let mut j = Journal::default();
        j.record(added(1, "tmp", 10), None);
        let rename = Change::Renamed {
            from: e(1, "tmp"),
            to: e(2, "final"),
            ino: 10,
            replaced: None,
        };
        j.record(rename.clone(), None);
        j.record(added(1, "other", 11), None);
        // The destination's fsync commits the rename and the create of its
        // source name, not the unrelated create in the source directory.
        assert_eq!(j.commit_dir(2), vec![added(1, "tmp", 10), rename]);
        assert_eq!(j.len(), 1);
    }

    #[test]
    fn a_new_name_over_a_removed_one_builds_on_the_removal() {
        // Committing the new "x" without the removal of the old one would
        // leave two objects to put back at one name.
        let mut j = Journal::default();
        let removed = Change::Removed {
            at: e(1, "x"),
            ino: 10,
            shadow: "0".into(),
        };
        let moved_in = Change::Renamed {
            from: e(3, "y"),
            to: e(1, "x"),
            ino: 12,
            replaced: None,
        };
        j.record(removed.clone(), None);
        j.record(added(1, "unrelated", 13), None);
        j.record(moved_in.clone(), None);
        assert_eq!(j.commit_dir(3), vec![removed, moved_in]);
        assert_eq!(j.take_for_undo(), vec![added(1, "unrelated", 13)]);
    }

    #[test]
    fn removing_a_directory_builds_on_the_changes_inside_it() {
        let mut j = Journal::default();
        j.record(
            Change::Removed {
                at: e(5, "f"),
                ino: 20,
                shadow: "0".into(),
            },
            None,
        );
        j.record(
            Change::Removed {
                at: e(1, "d"),
                ino: 5,
                shadow: "1".into(),
            },
            Some(5),
        );
        assert_eq!(j.commit_dir(1).len(), 2);
        assert_eq!(j.len(), 0);
    }
}
