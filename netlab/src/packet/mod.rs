//! Packet faults without netem (this kernel has no `sch_netem`): delay,
//! loss, duplication, reordering and corruption in user space, through
//! NFQUEUE; rate in the kernel, through an `htb` class.
//!
//! - [`faults`]: what can be asked for ([`PacketFaults`]), Jepsen's defaults.
//! - `random`: correlated decisions and jitter (what "correlation" means).
//! - `nfqueue`: a minimal nfnetlink_queue client.
//! - `emulator`: the per-namespace thread that applies the faults.

pub(crate) mod emulator;
pub mod faults;
pub(crate) mod nfqueue;
pub(crate) mod random;

pub use emulator::EmulatorStats;
pub use faults::{
    Behavior, Chance, DEFAULT_CHANCE, DEFAULT_DELAY, DEFAULT_RATE, Delay, PacketFaults, Rate,
};
