//! Running `ip`, `nft`, `iptables` and `tc` inside a namespace, with a
//! script on stdin where the tool takes one (one process per batch, and a
//! batch of `nft` is applied atomically).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
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
    // Outputs are small: read them after exit, through threads so that a
    // full pipe cannot block the child.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("no answer within {TIMEOUT:?}")));
            }
            Err(e) => return Err(fail(e.to_string())),
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
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
