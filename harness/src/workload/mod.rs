//! What the clients do: which keys they touch, which operations they issue,
//! and how workers are numbered as processes.
//!
//! - [`Workload`]: the two kinds of load, as named on the command line.
//! - `keys`: a fixed number of active keys, each retired after a number of
//!   operations, so that every key's history stays small enough to check.
//! - `generator`: the next operation for the `register` and `append` workloads.
//! - `processes`: Jepsen's process numbering (a new number after an unknown outcome).

pub mod generator;
pub mod keys;
pub mod processes;

pub use generator::Generator;
pub use keys::KeyPool;
pub use processes::ProcessNumbers;

/// Which operations the workers issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Read, write and cas on integer registers.
    Register,
    /// Read and append on lists of unique tokens.
    Append,
}

impl Workload {
    /// The name on the command line and in `run.json`.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::Append => "append",
        }
    }

    /// Parses `--workload`.
    pub fn parse(s: &str) -> Result<Workload, String> {
        match s {
            "register" => Ok(Workload::Register),
            "append" => Ok(Workload::Append),
            _ => Err(format!(
                "unknown workload {s:?}; expected register or append"
            )),
        }
    }
}
