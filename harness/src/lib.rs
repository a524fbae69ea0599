//! The harness as a library: the binary (`main.rs`), the integration tests
//! and the benchmarks all use it.
//!
//! - [`history`]: the history format (types, JSONL, Jepsen EDN, node event logs).
//! - [`check`]: the checkers and `results.json`; they depend on `history` only.
//! - [`sim`]: a simulated linearizable store that generates histories.
//! - [`cli`]: the command line; [`cmd`]: one module per subcommand.

pub mod bench;
pub mod check;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod cmd;
pub mod etcd;
pub mod history;
pub mod nemesis;
pub mod net;
pub mod report;
pub mod run;
pub mod sim;
pub mod suite;
pub mod workload;
