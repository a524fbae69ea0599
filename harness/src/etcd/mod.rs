//! etcd as a database under test (issue 17): everything the harness needs
//! to run, drive and judge an etcd v3.4 cluster, as plain functions and
//! types with no tie to the run loop.
//!
//! - [`member`]: a member's addresses and command line; finding the binary.
//! - [`local`]: a cluster of member processes on loopback, killed on drop.
//! - [`client`]: etcd's v3 gRPC API (KV, Cluster, Maintenance), one lazily
//!   connected channel per member, a deadline per call, typed results.
//! - [`error`]: which failures are definite and which leave the outcome
//!   unknown, with the etcd source behind each decision.
//! - [`value`]: how register and list values are stored.
//! - [`workload`]: a history action against etcd, as an [`crate::client::Outcome`].
//! - [`survey`]: questions to every member: who leads, do the stores agree.
//! - [`logs`]: role changes from a member's zap log, for the election checker.
//!
//! The gRPC stubs come from etcd's own `.proto` files, vendored in
//! `proto/etcd/` (crate `etcd-proto`).

// main's harness denies missing docs crate-wide; this branch predates that.
#![deny(missing_docs)]

pub mod client;
pub mod error;
pub mod local;
pub mod logs;
pub mod member;
pub mod survey;
pub mod value;
pub mod workload;

pub use client::{ClientOptions, Consistency, EtcdClient};
pub use error::{Certainty, EtcdError};
