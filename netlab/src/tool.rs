//! Running `ip`, `nft`, `iptables` and `tc` inside a namespace, with a
//! script on stdin where the tool takes one (one process per batch, and a
//! batch of `nft` is applied atomically).

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::NetlabError;
use crate::ns::NetNs;

/// The programs we drive, with the Debian package that ships each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tool {
    Ip,
    Nft,
    Iptables,
    Tc,
}

impl Tool {
    pub const ALL: [Tool; 4] = [Tool::Ip, Tool::Nft, Tool::Iptables, Tool::Tc];

    pub fn program(self) -> &'static str {
        match self {
            Tool::Ip => "ip",
            Tool::Nft => "nft",
            Tool::Iptables => "iptables",
            Tool::Tc => "tc",
        }
    }

    pub fn package(self) -> &'static str {
        match self {
            Tool::Ip | Tool::Tc => "iproute2",
            Tool::Nft => "nftables",
            Tool::Iptables => "iptables",
        }
    }
}

/// No tool call takes long; one that hangs must not hang the harness.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `tool args` inside `ns` with `stdin` as its input; returns its
/// stdout. `place` names the namespace for the error message.
pub(crate) fn run(
    ns: &NetNs,
    place: &str,
    tool: Tool,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, NetlabError> {
    let command = std::iter::once(tool.program())
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let fail = |detail: String| NetlabError::Tool {
        command: command.clone(),
        place: place.to_string(),
        detail,
    };
    let mut cmd = Command::new(tool.program());
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    ns.prepare(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| {
        fail(if e.kind() == std::io::ErrorKind::NotFound {
            format!("{} not found (install {})", tool.program(), tool.package())
        } else {
            e.to_string()
        })
    })?;
    if let Some(script) = stdin {
        // The tools read all input before acting; a failed write shows in
        // the exit status.
        let mut input = child.stdin.take().expect("piped stdin");
        let _ = input.write_all(script.as_bytes());
    }
    let Finished {
        status,
        stdout,
        stderr,
    } = finish(child, TIMEOUT);
    let Some(status) = status else {
        return Err(fail(format!("no answer within {TIMEOUT:?}")));
    };
    if !status.success() {
        let detail = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
        return Err(fail(if detail.is_empty() {
            status.to_string()
        } else {
            detail
        }));
    }
    Ok(stdout)
}

/// How a child with piped stdout and stderr ended.
pub(crate) struct Finished {
    /// `None`: it ran past the timeout and was killed.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Waits for `child` at most `timeout` (then kills it), reading its piped
/// outputs on threads of their own so that a full pipe never blocks it.
pub(crate) fn finish(mut child: Child, timeout: Duration) -> Finished {
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut s);
            }
            s
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    Finished {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Whether `program` is an executable somewhere on `PATH`.
pub(crate) fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(program))
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}
