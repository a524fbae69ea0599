//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use netlab::{Lab, Link, PacketFaults};

pub fn ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

pub fn link(a: &str, b: &str) -> Link {
    (a.to_string(), b.to_string())
}

/// Both directions between every member of `a` and every member of `b`.
pub fn between(a: &[&str], b: &[&str]) -> BTreeSet<Link> {
    let mut cut = BTreeSet::new();
    for x in a {
        for y in b {
            cut.insert(link(x, y));
            cut.insert(link(y, x));
        }
    }
    cut
}

/// The same faults on every link of `links`.
pub fn uniform(
    links: impl IntoIterator<Item = Link>,
    f: PacketFaults,
) -> BTreeMap<Link, PacketFaults> {
    links.into_iter().map(|l| (l, f)).collect()
}

/// Runs `tool args` in `ns` and returns its stdout.
pub fn output(ns: &netlab::NetNs, tool: &str, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new(tool);
    cmd.args(args);
    ns.prepare(&mut cmd);
    let out = cmd.output().expect("run a tool");
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Everything of ours in a node namespace that a fault could have left
/// behind: rules and sets (counter values masked), qdiscs, iptables rules.
pub fn footprint(lab: &Lab, node: &str) -> String {
    let ns = lab.namespace(node).unwrap();
    let rules = mask_counters(&output(ns, "nft", &["list", "ruleset"]));
    format!(
        "{}\n{}\n{}",
        rules,
        output(ns, "tc", &["qdisc", "show"]),
        output(ns, "iptables", &["-w", "-t", "mangle", "-S"])
    )
}

/// `counter packets 12 bytes 3400` -> `counter`: what a footprint compares
/// is the rules, not the traffic.
fn mask_counters(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(" packets ") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + " packets ".len()..];
        let tail = tail.trim_start_matches(|c: char| c.is_ascii_digit());
        let tail = tail.strip_prefix(" bytes ").unwrap_or(tail);
        rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}
