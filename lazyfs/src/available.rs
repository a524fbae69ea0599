//! [`check_available`]: can this process mount a FUSE filesystem?

use std::io;
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::error::{Error, Reason, Unavailable};
use crate::model::Options;

const DEV_FUSE: &str = "/dev/fuse";

/// Checks, once per process, that FUSE mounts work here by mounting and
/// unmounting an empty lazyfs in a temporary directory. The error says in
/// one line what is missing and how to get it.
pub fn check_available() -> Result<(), Unavailable> {
    static RESULT: OnceLock<Result<(), Unavailable>> = OnceLock::new();
    RESULT.get_or_init(probe).clone()
}

fn unavailable(reason: Reason, missing: &str, fix: &str) -> Unavailable {
    Unavailable {
        reason,
        missing: missing.into(),
        fix: fix.into(),
    }
}

fn probe() -> Result<(), Unavailable> {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(DEV_FUSE)
    {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(unavailable(
                Reason::NoDevice,
                "no /dev/fuse",
                "load the fuse module (modprobe fuse), or give the container the device \
                 (docker run --device /dev/fuse --cap-add SYS_ADMIN)",
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(unavailable(
                Reason::NotPermitted,
                "no permission to open /dev/fuse",
                "run as root (or make /dev/fuse read-write for this user and install fuse3 \
                 for fusermount3)",
            ));
        }
        Err(e) => {
            return Err(unavailable(
                Reason::NoDevice,
                &format!("cannot open /dev/fuse ({e})"),
                "check the fuse module (modprobe fuse)",
            ));
        }
    }
    let dir = std::env::temp_dir().join(format!("lazyfs-probe-{}", std::process::id()));
    let result = probe_mount(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn probe_mount(dir: &std::path::Path) -> Result<(), Unavailable> {
    let (mnt, backing): (PathBuf, PathBuf) = (dir.join("mnt"), dir.join("backing"));
    for d in [&mnt, &backing] {
        std::fs::create_dir_all(d).map_err(|e| {
            unavailable(
                Reason::ProbeFailed,
                &format!("cannot make a probe directory {} ({e})", d.display()),
                "make the temporary directory writable (TMPDIR)",
            )
        })?;
    }
    let options = Options {
        threads: 1,
        ..Options::default()
    };
    match crate::mount(&mnt, &backing, options) {
        Ok(m) => m.unmount().map_err(|e| {
            unavailable(
                Reason::ProbeFailed,
                &format!("a probe mount did not unmount ({e})"),
                "check for a stuck FUSE mount under the temporary directory",
            )
        }),
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::PermissionDenied => {
            Err(unavailable(
                Reason::NotPermitted,
                "no permission to mount (not root, or no CAP_SYS_ADMIN)",
                "run as root, e.g. docker run --cap-add SYS_ADMIN --device /dev/fuse, or install \
                 fuse3 so fusermount3 can mount for a user",
            ))
        }
        Err(e) => Err(unavailable(
            Reason::ProbeFailed,
            &format!("a probe mount failed ({e})"),
            "run as root with /dev/fuse and CAP_SYS_ADMIN (or install fuse3 for fusermount3)",
        )),
    }
}
