//! The harness's sandbox, entered by `main` as its first act, before any
//! thread starts: a private mount namespace, so that the lazyfs mounts of
//! power faults are seen by the harness and its nodes only and disappear
//! with them, also when the harness is killed with kill -9.
//!
//! Where it cannot be entered (not root), the harness goes on in the
//! machine's namespace: runs with lazy disks then detach the dead mounts
//! an earlier harness left under their store (`run::setup`).

use std::sync::OnceLock;

static MOUNT_NS: OnceLock<Result<(), String>> = OnceLock::new();

/// Enters a private mount namespace, once; must run before any thread
/// starts (lazyfs refuses otherwise). Never fails: the outcome is kept for
/// [`mount_ns_private`].
pub fn enter() {
    MOUNT_NS.get_or_init(|| lazyfs::enter_private_mount_namespace().map_err(|e| e.to_string()));
}

/// Whether [`enter`] made this process's mount namespace private.
pub fn mount_ns_private() -> bool {
    matches!(MOUNT_NS.get(), Some(Ok(())))
}

/// Why the mount namespace is not private, if [`enter`] was tried and failed.
pub fn mount_ns_error() -> Option<&'static str> {
    match MOUNT_NS.get() {
        Some(Err(e)) => Some(e),
        _ => None,
    }
}
