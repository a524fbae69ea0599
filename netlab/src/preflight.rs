//! Can namespaces run here? Tools, privilege and kernel features are tried
//! once, in a scratch namespace that vanishes right after, and the first
//! thing missing is named in one line.

use crate::error::NetlabError;
use crate::ns::NetNs;
use crate::packet::nfqueue::NfQueue;
use crate::tool::{self, Tool};

/// `CAP_NET_ADMIN`'s bit in the capability sets.
const CAP_NET_ADMIN: u32 = 12;
/// `CAP_SYS_ADMIN`: needed for `unshare` and `setns`.
const CAP_SYS_ADMIN: u32 = 21;

/// Whether a network of namespaces can be built here. `Err` carries one
/// line naming the first missing tool, privilege or kernel feature, e.g.
/// "network namespaces unavailable: nft not found on PATH (install nftables)".
///
/// Costs a few milliseconds and four short processes: it makes a scratch
/// namespace, adds the queue rule there and binds a packet queue.
pub fn check() -> Result<(), NetlabError> {
    let unavailable = |why: String| NetlabError::Unavailable(why);
    if !cfg!(target_os = "linux") {
        return Err(unavailable("needs Linux".into()));
    }
    for tool in Tool::ALL {
        if !tool::on_path(tool.program()) {
            return Err(unavailable(format!(
                "{} not found on PATH (install {})",
                tool.program(),
                tool.package()
            )));
        }
    }
    let caps =
        effective_caps().map_err(|e| unavailable(format!("cannot read capabilities: {e}")))?;
    for (bit, name) in [
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
    ] {
        if caps & (1 << bit) == 0 {
            return Err(unavailable(format!("no {name} (run as root)")));
        }
    }
    let scratch = NetNs::create().map_err(|e| unavailable(e.to_string()))?;
    for (tool, args) in [
        (Tool::Nft, &["list", "ruleset"][..]),
        (Tool::Ip, &["link", "add", "nlcheck", "type", "bridge"][..]),
        (
            Tool::Tc,
            &["qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb"][..],
        ),
        (Tool::Iptables, &crate::rules::queue_rule_args("-A")[..]),
    ] {
        tool::run(&scratch, "a scratch namespace", tool, args, None)
            .map_err(|e| unavailable(e.to_string()))?;
    }
    scratch
        .run(|| NfQueue::open(0, 16))
        .map_err(|e| unavailable(e.to_string()))?
        .map_err(|e| unavailable(format!("cannot bind an NFQUEUE (nfnetlink_queue): {e}")))?;
    Ok(())
}

/// The effective capability set of this process, from `/proc/self/status`.
fn effective_caps() -> std::io::Result<u64> {
    let status = std::fs::read_to_string("/proc/thread-self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .ok_or_else(|| std::io::Error::other("no CapEff: line"))
}
