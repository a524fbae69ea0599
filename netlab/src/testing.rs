//! Tests that build networks run in a child process of their own, inside a
//! namespace of its own: whatever the test does or however it dies,
//! nothing touches the machine's namespace, and everything it made dies
//! with the child.
//!
//! ```ignore
//! #[test]
//! fn partitions_cut_exactly() {
//!     netlab::testing::isolated("partitions_cut_exactly", || {
//!         let lab = netlab::Lab::build(&ids, 1).unwrap();
//!         // ...
//!     });
//! }
//! ```
//!
//! The test binary runs itself again with `--exact NAME` and an
//! environment variable naming the test; in that child, the test's thread
//! moves into a fresh namespace (loopback up) and runs the body. Where
//! namespaces cannot run ([`crate::check`]), the test prints why and
//! passes as skipped.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Set in the child to the name of the test it runs.
const CHILD_ENV: &str = "NETLAB_ISOLATED_TEST";

/// How long a test's child may run before it is killed and the test fails.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `body` in a child process, in a namespace of its own. `name` must be
/// the test's path as libtest names it (for a test at the top of an
/// integration-test file, its function name).
pub fn isolated(name: &str, body: impl FnOnce()) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        crate::ns::unshare_this_thread().expect("unshare a namespace for the test");
        body();
        return;
    }
    if let Err(why) = crate::check() {
        eprintln!("skipped {name}: {why}");
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_parent(&mut cmd);
    let child = cmd.spawn().expect("run the test binary again");
    let crate::tool::Finished {
        status,
        stdout: out,
        stderr: err,
    } = crate::tool::finish(child, TIMEOUT);
    print!("{out}");
    eprint!("{err}");
    let status = status.unwrap_or_else(|| panic!("{name}: no result within {TIMEOUT:?}"));
    assert!(
        status.success(),
        "{name} failed in its namespace ({status})"
    );
    assert!(
        out.contains("1 passed"),
        "{name}: the child ran no test (is the name the test's exact path?)"
    );
}

/// Makes `cmd`'s process get SIGKILL when the calling thread's process
/// dies, so that no test child (or node) outlives a killed parent.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl, getppid and _exit are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        })
    }
}

/// Every network namespace something still refers to, by inode: the
/// namespace of every thread of every process, open namespace fds, and
/// nsfs bind mounts. A namespace not in this set is gone.
pub fn netns_in_use() -> std::collections::BTreeSet<u64> {
    let mut found = std::collections::BTreeSet::new();
    let net_inode = |link: std::path::PathBuf| -> Option<u64> {
        let target = std::fs::read_link(link).ok()?;
        let s = target.to_str()?;
        s.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for p in procs.flatten() {
        let dir = p.path();
        if !p
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        for tasks in std::fs::read_dir(dir.join("task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            found.extend(net_inode(tasks.path().join("ns/net")));
        }
        for fd in std::fs::read_dir(dir.join("fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            found.extend(net_inode(fd.path()));
        }
        if let Ok(mounts) = std::fs::read_to_string(dir.join("mountinfo")) {
            for field in mounts.split_whitespace() {
                if let Some(n) = field
                    .strip_prefix("net:[")
                    .and_then(|f| f.strip_suffix(']'))
                {
                    found.extend(n.parse::<u64>().ok());
                }
            }
        }
    }
    found
}
