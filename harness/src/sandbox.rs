//! The harness's own namespaces, entered once at the top of `main` for the
//! subcommands that start clusters (`run`, `test-all`, `selftest`,
//! `bench`), before any thread exists:
//!
//! - a private network namespace: the node namespaces, bridge, interfaces,
//!   rules and queues of `--network netns` are built inside it, so they
//!   vanish with the harness however it ends, `kill -9` included;
//! - a private mount namespace: mounts made for the nodes (lazyfs) die
//!   with it too.
//!
//! Either may be refused (no privilege); the harness then goes on, and
//! whatever needs it asks here and says why it cannot run:
//! [`net_ns_private`] / [`net_ns_error`], [`mount_ns_private`] /
//! [`mount_ns_error`].

use std::sync::{Mutex, OnceLock};

/// What [`enter`] achieved.
#[derive(Debug)]
struct Entered {
    /// `Err`: why the network namespace was not entered.
    net: Result<(), String>,
    /// `Err`: why the mount namespace was not entered.
    mount: Result<(), String>,
}

static ENTERED: OnceLock<Entered> = OnceLock::new();

/// The network namespaces (by inode) known to be private: the one
/// [`enter`] made, and any a test vouched for ([`vouch_for_this_netns`]).
static PRIVATE_NETNS: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// Moves the process into a private mount namespace, and into a private
/// network namespace when `network` is true (the network may be
/// namespaces; with `--network proxy` the harness stays in the machine's,
/// where it needs no privilege). Must be called while the process has one
/// thread; a second call changes nothing.
pub fn enter(network: bool) {
    ENTERED.get_or_init(|| {
        let net = if network {
            let entered = netlab::enter_private_netns().map_err(|e| e.to_string());
            if entered.is_ok() {
                vouch_for_this_netns();
            }
            entered
        } else {
            Err("not asked for (--network proxy)".into())
        };
        let mount = lazyfs::enter_private_mount_namespace().map_err(|e| e.to_string());
        Entered { net, mount }
    });
}

/// Whether the process entered a private network namespace.
pub fn net_ns_private() -> bool {
    ENTERED.get().is_some_and(|e| e.net.is_ok())
}

/// Whether the calling thread's network namespace is private: one [`enter`]
/// made or a test vouched for. Networks of namespaces are built only there
/// (they vanish with the process); never in the machine's namespace.
pub fn in_private_netns() -> bool {
    let Ok(here) = netlab::NetNs::current() else {
        return false;
    };
    private_netns().contains(&here.inode())
}

/// Declares the calling thread's network namespace private: for a test
/// that moved its thread into a namespace of its own (e.g. with
/// `netlab::testing::isolated`) and builds networks there.
pub fn vouch_for_this_netns() {
    if let Ok(here) = netlab::NetNs::current() {
        private_netns().push(here.inode());
    }
}

fn private_netns() -> std::sync::MutexGuard<'static, Vec<u64>> {
    PRIVATE_NETNS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why the process is not in a private network namespace (`None` if it is,
/// or if [`enter`] was never called).
pub fn net_ns_error() -> Option<&'static str> {
    ENTERED
        .get()
        .and_then(|e| e.net.as_ref().err().map(String::as_str))
}

/// Whether the process entered a private mount namespace: mounts it makes
/// are seen by its children only, and vanish with it.
pub fn mount_ns_private() -> bool {
    ENTERED.get().is_some_and(|e| e.mount.is_ok())
}

/// Why the process is not in a private mount namespace, for a feature
/// that needs one to say so (`None` if it is, or if [`enter`] was never
/// called).
pub fn mount_ns_error() -> Option<&'static str> {
    ENTERED
        .get()
        .and_then(|e| e.mount.as_ref().err().map(String::as_str))
}
