//! Helpers the workspace's tests share. Only ever a dev-dependency.
//!
//! - [`repeatable`]: the proptest settings of every property test.
//! - [`free_port`]: a loopback port for a test's own process.

#![deny(missing_docs)]

use std::net::TcpListener;

use proptest::test_runner::{Config, RngSeed};

/// Proptest settings that try the same `cases` on every run, so that CI is
/// repeatable. Setting `PROPTEST_RNG_SEED` (and `PROPTEST_CASES`) in the
/// environment explores others.
pub fn repeatable(cases: u32) -> Config {
    let env = Config::default();
    let set = |name| std::env::var_os(name).is_some();
    Config {
        cases: if set("PROPTEST_CASES") {
            env.cases
        } else {
            cases
        },
        rng_seed: if set("PROPTEST_RNG_SEED") {
            env.rng_seed
        } else {
            RngSeed::Fixed(0x5eed_0001)
        },
        ..env
    }
}

/// A loopback port that was free a moment ago (the OS picked it), for a
/// process the test starts.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("a free loopback port")
        .local_addr()
        .expect("a bound socket has an address")
        .port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_is_fixed_unless_the_environment_names_one() {
        if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
            assert_eq!(repeatable(5).rng_seed, RngSeed::Fixed(0x5eed_0001));
        }
        if std::env::var_os("PROPTEST_CASES").is_none() {
            assert_eq!(repeatable(5).cases, 5);
        }
    }
}
