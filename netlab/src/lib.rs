//! A real network for every node of a local cluster: a network namespace
//! per node, partitions by packet filter, packet faults.
//!
//! ```text
//!   control namespace (the harness: clients, proxies)        node namespaces
//!   ┌──────────────────────────────────────────┐       ┌───────────────────────┐
//!   │ nlbr0 198.18.0.1/15 ── nlv0 ═════════════╪═══════╪ eth0 198.18.1.1 (n1)   │
//!   │        (bridge)     ── nlv1 ═════════════╪═══════╪ eth0 198.18.1.2 (n2)   │
//!   │                     ── ...               │       │ table inet netlab, ...│
//!   └──────────────────────────────────────────┘       └───────────────────────┘
//! ```
//!
//! Nothing outlives the process: the harness moves itself into a private
//! namespace at start ([`enter_private_netns`]), node namespaces are held by
//! file descriptors only (no `/run/netns` names), node processes die with
//! the harness (`PR_SET_PDEATHSIG`), and the kernel frees a namespace, its
//! interfaces, rules and queues with its last user, `kill -9` included.
//!
//! - [`check`]: can it run here? One line naming what is missing.
//! - [`Lab`]: build the network; [`Lab::command`] starts a process in a
//!   node's namespace; [`Lab::cut`] / [`Lab::heal`] partition;
//!   [`Lab::impair`] / [`Lab::unimpair`] inject packet faults;
//!   [`Lab::stats`] counts.
//! - [`packet`]: what the packet faults are and how they are emulated
//!   (this kernel has no netem: NFQUEUE in user space, `htb` for rate).
//! - [`addr`]: the address plan (198.18.0.0/15 only).
//! - [`probe`]: reachability, round trips, loss and throughput between
//!   namespaces, for tests and `netlab measure`.
//! - [`testing`]: running a test in a throwaway namespace of its own.

pub mod addr;
mod error;
mod lab;
mod netlink;
mod ns;
pub mod packet;
mod preflight;
pub mod probe;
mod rules;
mod setedit;
mod stats;
pub mod testing;
mod tool;

pub use error::NetlabError;
pub use lab::{Lab, Link, links_touching};
pub use ns::{NetNs, enter_private_netns};
pub use packet::{Behavior, EmulatorStats, PacketFaults};
pub use preflight::check;
pub use stats::LinkStats;
