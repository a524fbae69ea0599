//! Whose fault a failed command is: the one thing the exit status says
//! about a failure (`docs/contract.md`): bad arguments or input (254), or the harness
//! itself (255). Every error a subcommand returns says which with
//! [`Blame`]; `main.rs` turns that into the status, and nothing else does.

/// Who is to blame for a command that could not finish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Bad arguments, or an input file that is malformed or missing: exit 254.
    BadInput,
    /// The harness could not do its job (a cluster that would not start, a
    /// file it could not write): exit 255.
    Harness,
}

impl Fault {
    /// The process exit status this fault ends with.
    pub const fn exit_status(self) -> u8 {
        match self {
            Fault::BadInput => 254,
            Fault::Harness => 255,
        }
    }
}

/// An error that knows whose fault it is.
pub trait Blame: std::fmt::Display {
    /// Whose fault this error is.
    fn fault(&self) -> Fault;
}

/// A subcommand's error, reduced to what `main` needs: the message and the
/// fault.
#[derive(Debug)]
pub struct Failed {
    /// Whose fault it was.
    pub fault: Fault,
    /// What to print.
    pub message: String,
}

impl<E: Blame> From<E> for Failed {
    fn from(e: E) -> Failed {
        Failed {
            fault: e.fault(),
            message: e.to_string(),
        }
    }
}
