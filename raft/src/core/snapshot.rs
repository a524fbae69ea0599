//! InstallSnapshot (§7): a follower that needs entries the leader has
//! compacted away gets the leader's snapshot instead. The transport carries
//! the image; the core decides whether it replaces the follower's state.

use super::{Raft, State};
use crate::progress::ProgressState;
use crate::ready::SnapshotInstall;
use crate::{Body, NodeId, SnapshotMeta, SnapshotResponse};

impl Raft {
    /// The follower's side: install the snapshot, keep what follows it, or
    /// refuse it as old.
    pub(super) fn handle_snapshot(&mut self, from: NodeId, mut meta: SnapshotMeta) {
        // Every snapshot a leader takes names its configuration; one that
        // does not (a hand-written one) keeps the configuration in force
        // rather than leave the node with none.
        if meta.membership.is_empty() {
            meta.membership = self.log.membership().clone();
        }
        if self.state != State::Follower || self.leader.as_ref() != Some(&from) {
            self.become_follower(self.term, Some(from.clone()));
        }
        self.election_elapsed = 0;
        // The reply's index is one the leader may count as matching: the
        // snapshot's (it is committed), or our commit index (committed
        // entries are in every later leader's log). Never our last index:
        // entries after the snapshot may be stale ones from an old term.
        let (accepted, index) = if meta.index <= self.log.committed {
            // An old, duplicated or reordered snapshot would roll the state
            // machine back: refuse it, and say how far we are.
            (false, self.log.committed)
        } else if self.log.matches(meta.index, meta.term) {
            // We hold the snapshot's last entry, hence the whole prefix it
            // covers (Log Matching): commit it and keep the entries after it,
            // instead of replacing the state machine.
            self.log.commit_to(meta.index);
            (true, meta.index)
        } else {
            let index = meta.index;
            self.log.restore(meta.clone());
            // The snapshot's configuration is in force unless a later entry says otherwise.
            self.after_log_change();
            self.snapshot_install = Some(SnapshotInstall {
                meta,
                from: from.clone(),
            });
            (true, index)
        };
        self.send(
            from,
            Body::SnapshotResponse(SnapshotResponse { index, accepted }),
        );
    }

    /// The leader's side: the transfer is over, one way or the other.
    pub(super) fn handle_snapshot_response(&mut self, from: NodeId, resp: SnapshotResponse) {
        // Accepted or not, the follower's log matches ours up to `index`:
        // its committed prefix, or the snapshot it just installed.
        let index = resp.index.min(self.log.last_index());
        let Some(pr) = self.heard_from(&from) else {
            return;
        };
        pr.on_success(index);
        // A late or duplicated reply must not disturb a pipeline that has
        // moved on; only a pending transfer ends here.
        if matches!(pr.state, ProgressState::Snapshot(_)) {
            pr.become_probe();
            pr.next_index = pr.match_index.next();
        }
        self.maybe_commit();
        self.send_appends(&from);
    }
}
