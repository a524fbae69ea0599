//! One node process: how it is started, signalled and reaped.
//!
//! Children get `PR_SET_PDEATHSIG = SIGKILL`, so even a harness that is
//! itself SIGKILLed leaves no node behind; a normal exit, a panic or Ctrl-C
//! kill them explicitly through `Drop`.
//!
//! The kernel sends that signal when the *thread* that forked the child
//! exits, not the process: nodes are started from threads that live as
//! long as the run (the runtime's), never from a short-lived one, which is
//! why a node joins its namespace between fork and exec ([`Placement`])
//! rather than being spawned from a thread inside the namespace.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::net::Placement;

/// Why a node process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The binary is missing or cannot be run.
    #[error("{0}")]
    Binary(String),
    /// Its log or directory could not be set up.
    #[error("{0}")]
    Io(String),
}

/// What to execute for a node.
#[derive(Clone, Debug)]
pub enum NodeBin {
    /// An executable with a `node` subcommand (the harness itself): `EXE node FLAGS`.
    NodeMode(PathBuf),
    /// A binary that takes the node's flags directly: `EXE FLAGS`.
    External(PathBuf),
}

impl NodeBin {
    /// The harness's own executable in node mode. Through `/proc/self/exe`
    /// where there is one: it stays the running harness's file when the
    /// path is replaced under it (a build or an upgrade while a suite
    /// runs), where the path would then start another version, or nothing.
    pub fn this_executable() -> Result<NodeBin, LaunchError> {
        let own = Path::new("/proc/self/exe");
        if own.exists() {
            return Ok(NodeBin::NodeMode(own.to_path_buf()));
        }
        std::env::current_exe().map(NodeBin::NodeMode).map_err(|e| {
            LaunchError::Binary(format!("cannot find the harness's own executable: {e}"))
        })
    }

    /// Whether the binary exists and is executable: checked before any node
    /// starts, so that a wrong `--node-bin` is one clear error.
    pub fn check(&self) -> Result<(), LaunchError> {
        let path = match self {
            NodeBin::NodeMode(p) | NodeBin::External(p) => p,
        };
        let meta = std::fs::metadata(path).map_err(|e| {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_string(),
                _ => e.to_string(),
            };
            LaunchError::Binary(format!("node binary {}: {why}", path.display()))
        })?;
        use std::os::unix::fs::PermissionsExt;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(LaunchError::Binary(format!(
                "node binary {} is not an executable file",
                path.display()
            )));
        }
        Ok(())
    }

    fn command(&self) -> Command {
        match self {
            NodeBin::NodeMode(p) => {
                let mut c = Command::new(p);
                // `ps` shows the harness's name, not /proc/self/exe.
                if let Ok(name) = std::env::current_exe() {
                    c.arg0(name);
                }
                c.arg("node");
                c
            }
            NodeBin::External(p) => Command::new(p),
        }
    }
}

/// A running node process; dropping it kills and reaps the process.
#[derive(Debug)]
pub struct NodeProcess {
    child: Child,
    paused: bool,
}

impl NodeProcess {
    /// Starts the node where `place` says (its namespace on netns),
    /// appending its stdout and stderr to `log`.
    pub fn spawn(
        bin: &NodeBin,
        args: &[String],
        log: &Path,
        place: &Placement,
    ) -> Result<NodeProcess, LaunchError> {
        let io = |e: std::io::Error| LaunchError::Io(format!("{}: {e}", log.display()));
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(io)?;
        let err = out.try_clone().map_err(io)?;
        let mut cmd = bin.command();
        cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
        place.apply(&mut cmd);
        let parent = std::process::id();
        // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
                // The harness may have died before the prctl took effect.
                if nix::unistd::getppid().as_raw() as u32 != parent {
                    nix::libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| LaunchError::Binary(format!("cannot start node: {e}")))?;
        Ok(NodeProcess {
            child,
            paused: false,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is stopped by SIGSTOP.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// SIGKILL without waiting for the process to go: it may still finish
    /// a request its file system is serving (a FUSE request already taken
    /// is waited out by the kernel). [`NodeProcess::kill`] reaps it.
    pub fn send_kill(&mut self) {
        let _ = self.child.kill();
    }

    /// SIGKILL and reap. Works on a stopped process too.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGSTOP: the process keeps its sockets but answers nothing.
    pub fn pause(&mut self) {
        if !self.paused && self.signal(Signal::SIGSTOP) {
            self.paused = true;
        }
    }

    /// SIGCONT after a pause.
    pub fn resume(&mut self) {
        if self.paused && self.signal(Signal::SIGCONT) {
            self.paused = false;
        }
    }

    /// Whether the process exited on its own, and how.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn signal(&self, sig: Signal) -> bool {
        kill(Pid::from_raw(self.child.id() as i32), sig).is_ok()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A suite ran its nodes from the harness's path; a build that replaced
    /// the file mid-suite made every later run crash ("node binary ...
    /// (deleted): no such file").
    #[test]
    fn our_own_nodes_start_from_the_running_file_not_its_path() {
        let bin = NodeBin::this_executable().unwrap();
        assert!(
            matches!(&bin, NodeBin::NodeMode(p) if p == Path::new("/proc/self/exe")),
            "{bin:?}"
        );
        bin.check().unwrap();
        let c = bin.command();
        assert_eq!(c.get_program(), "/proc/self/exe");
        assert_eq!(c.get_args().collect::<Vec<_>>(), ["node"]);
    }
}
