//! The harness as a library: the binary (`main.rs`), the integration tests
//! and the benchmarks all use it. Data flows one way: a [`run`] starts a
//! [`cluster`], drives [`client`]s with a [`workload`] while the
//! [`nemesis`] injects faults (through [`net`] for the network), records the
//! [`history`], and the checkers ([`check`]) and the [`report`] read only
//! files.
//!
//! - [`cli`]: the command line; [`cmd`]: one module per subcommand.
//! - [`run`]: one test, set-up to verdict; [`suite`]: a matrix of runs
//!   (`test-all`) and JUnit XML.
//! - [`db`]: the database under test (our node or etcd) behind one
//!   interface: members' command lines, leaders, workload clients, evidence.
//! - [`cluster`]: the nodes of a run, their ports and data directories.
//! - [`launch`]: one node process: started, signalled, reaped.
//! - [`net`]: the network between the nodes: a namespace per node, or TCP
//!   proxies; partitions and packet faults.
//! - [`sandbox`]: the private namespaces the harness enters at start.
//! - [`nemesis`]: the faults, and when they happen.
//! - [`workload`]: keys, operations, process numbers.
//! - [`client`]: operations against the cluster, sorted into ok, fail, info.
//! - [`recorder`]: the history as a run writes it, shared by workers and
//!   nemeses.
//! - [`history`]: the history format (types, JSONL, Jepsen EDN, node event logs).
//! - [`check`]: the checkers and `results.json`; they depend on `history` only.
//! - [`report`]: the page a run ends with, `report.html`.
//! - [`mod@bench`]: throughput, latency and failover of the node.
//! - [`sim`]: a simulated linearizable store that generates histories.
//! - [`error`]: whose fault a failed command is (exit 254 or 255).
//!
//! Every random choice of a run (keys, operations, faults, their targets and
//! timing) comes from one `splitmix::Rng` (re-exported as `raft::Rng`) seeded from
//! `--seed`, so a run can be reproduced.

#![deny(missing_docs)]

pub mod bench;
pub mod check;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod cmd;
pub mod db;
pub mod error;
pub mod etcd;
pub mod history;
pub mod launch;
pub mod nemesis;
pub mod net;
pub mod recorder;
pub mod report;
pub mod run;
pub mod sandbox;
pub mod sim;
pub mod suite;
pub mod workload;
