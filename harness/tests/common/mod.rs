//! What the integration tests share. Each test file that says `mod common;`
//! compiles all of it and uses a part, hence `dead_code` is allowed.
//!
//! - `histories`: histories written as data, and the checkers run on them.
//! - `cli`: the harness binary as a user runs it, bounded in time, with
//!   every process it started cleaned up.

#![allow(dead_code)]

pub mod cli;
pub mod histories;
