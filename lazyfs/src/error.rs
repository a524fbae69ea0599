//! Errors of the library: typed, each naming what failed and where.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// FUSE cannot run here.
    #[error("lazyfs cannot run here: {0}")]
    Unavailable(#[from] Unavailable),
    #[error("lazyfs: cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A call made where it cannot work (bad paths, too late to unshare).
    #[error("lazyfs: {0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

/// Why FUSE mounts cannot be made here, in one line: what is missing and
/// how to get it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{missing}; {fix}")]
pub struct Unavailable {
    pub reason: Reason,
    pub missing: String,
    pub fix: String,
}

/// What kind of thing is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No FUSE device: the module is not loaded or the container lacks it.
    NoDevice,
    /// Not allowed to open the device or to mount.
    NotPermitted,
    /// Everything seemed there, yet a probe mount failed: a fault of this
    /// machine or of lazyfs itself, not a missing prerequisite.
    ProbeFailed,
}
