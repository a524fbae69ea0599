//! The state machine image. Filled in with snapshots and compaction.
