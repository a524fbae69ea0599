//! A Raft key-value node.
//!
//! - [`storage`]: the durable log and hard state (files, fsync, recovery).
//! - [`kv`]: the replicated state machine and client sessions.
//! - [`events`]: `events.jsonl`, the record the harness checks.
//! - [`fnv`]: the hash of the commands client sessions remember.
//! - [`reader`]: reading the binary formats (WAL, snapshot, image).
//! - [`mailbox`]: what the transport and the driver hand each other.
//! - [`transport`]: gRPC — peer links and the three services.
//! - [`driver`]: the thread that runs the core and acts on its output.
//! - [`startup`]: the data directory's identity, and whether the node forms
//!   its cluster or joins it.
//! - [`server`]: assembling a node around a listener.
//! - [`config`], [`cli`]: what a node is told at start-up.
//! - [`client`]: a thin client of one node, for tests and the harness.

#![deny(missing_docs)]

pub mod cli;
pub mod client;
pub mod config;
pub mod driver;
pub mod events;
pub mod fnv;
pub mod kv;
pub mod mailbox;
pub mod reader;
pub mod server;
pub mod startup;
pub mod storage;
pub mod transport;

pub use cli::main_with_args;
